//! What the load sent and what the directories acknowledged, and the judgement of every answer
//! against it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::Rng;
use tokio::time::Instant;

/// Most violation messages kept per kind; the counts are exact.
const KEEP: usize = 20;

/// Which names a lookup asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Registered and looked up on both replicas before the load: in both caches.
    Seeded,
    /// Registered during the load and acknowledged before the lookup was sent.
    Acked,
    /// Never registered by anyone.
    Unknown,
}

#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every registration sent: name → (host, port). Sent but unacknowledged ones may or may not
    /// have been committed; either answer is right for them.
    sent: HashMap<String, (String, u16)>,
    /// Acknowledged registrations in order: name, when sent, when acknowledged.
    acked: Vec<(String, Instant, Instant)>,
    seeded: Vec<String>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address registered for `name`: unique per name, so a mix-up shows as a wrong answer.
    pub fn address_for(name: &str) -> (String, u16) {
        let hash = name
            .bytes()
            .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let port = 1024 + (hash % 60_000) as u16;
        (format!("{name}.outage.example"), port)
    }

    pub fn sending(&self, name: &str, host: &str, port: u16) {
        self.lock()
            .sent
            .insert(name.to_owned(), (host.to_owned(), port));
    }

    pub fn acked(&self, name: &str, sent: Instant) {
        self.lock()
            .acked
            .push((name.to_owned(), sent, Instant::now()));
    }

    pub fn seeded(&self, name: &str) {
        self.lock().seeded.push(name.to_owned());
    }

    pub fn acked_count(&self) -> usize {
        self.lock().acked.len()
    }

    /// A name of `kind` to look up (an acknowledged one falls back to a seeded one before the
    /// first acknowledgement).
    pub fn pick(&self, kind: Kind, rng: &mut StdRng, worker: usize, i: u64) -> (Kind, String) {
        let inner = self.lock();
        let seeded = |rng: &mut StdRng| -> Option<(Kind, String)> {
            let n = inner.seeded.len();
            (n > 0).then(|| (Kind::Seeded, inner.seeded[rng.gen_range(0..n)].clone()))
        };
        let unknown = (Kind::Unknown, format!("nx{worker}y{i}"));
        match kind {
            Kind::Seeded => seeded(rng).unwrap_or(unknown),
            Kind::Acked => {
                let n = inner.acked.len();
                if n > 0 {
                    (Kind::Acked, inner.acked[rng.gen_range(0..n)].0.clone())
                } else {
                    seeded(rng).unwrap_or(unknown)
                }
            }
            Kind::Unknown => unknown,
        }
    }

    /// Every `step`-th acknowledged name, for the final check.
    pub fn acked_sample(&self, most: usize) -> Vec<String> {
        let inner = self.lock();
        let step = inner.acked.len().div_ceil(most.max(1)).max(1);
        inner
            .acked
            .iter()
            .step_by(step)
            .map(|(n, _, _)| n.clone())
            .collect()
    }

    /// `Err(why)` when `answer` is wrong for a name of `kind`.
    pub fn judge(
        &self,
        kind: Kind,
        name: &str,
        answer: &Option<(String, u16)>,
    ) -> Result<(), String> {
        let inner = self.lock();
        let registered = inner.sent.get(name);
        match answer {
            Some(got) if registered == Some(got) => Ok(()),
            Some((host, port)) => Err(format!(
                "{name}: answered {host}:{port}, registered {}",
                registered.map_or("nothing".to_owned(), |(h, p)| format!("{h}:{p}"))
            )),
            None if kind == Kind::Unknown => Ok(()),
            None => Err(format!(
                "{name}: answered null although its registration was acknowledged ({kind:?})"
            )),
        }
    }

    /// Seconds from `at` to the first acknowledgement of a registration sent at or after it.
    pub fn resumed_after(&self, at: Instant) -> Option<f64> {
        self.lock()
            .acked
            .iter()
            .filter(|(_, sent, _)| *sent >= at)
            .map(|(_, _, acked)| acked.duration_since(at).as_secs_f64())
            .min_by(f64::total_cmp)
    }

    /// Counts acknowledged registrations missing (or different) in `rows` (psql output,
    /// `name|host|port` a line).
    pub fn lost(&self, rows: &str, violations: &mut Vec<String>) -> u64 {
        let stored: HashMap<&str, (&str, &str)> = rows
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '|');
                Some((f.next()?, (f.next()?, f.next()?)))
            })
            .collect();
        let inner = self.lock();
        let mut lost = 0;
        for (name, _, _) in &inner.acked {
            let want = inner.sent.get(name);
            let have = stored.get(name.as_str());
            let same = match (want, have) {
                (Some((h, p)), Some((sh, sp))) => h == sh && p.to_string() == *sp,
                _ => false,
            };
            if !same {
                lost += 1;
                if lost <= KEEP as u64 {
                    violations.push(format!(
                        "{name}: acknowledged, but the promoted standby has {have:?}"
                    ));
                }
            }
        }
        lost
    }
}

/// What one load task counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub answered: u64,
    pub answered_in_outage: u64,
    pub refused: u64,
    pub wrong: u64,
    pub cached_refused: u64,
    pub reg_refused: u64,
    pub violations: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.answered += other.answered;
        self.answered_in_outage += other.answered_in_outage;
        self.refused += other.refused;
        self.wrong += other.wrong;
        self.cached_refused += other.cached_refused;
        self.reg_refused += other.reg_refused;
        let room = (KEEP * 2).saturating_sub(self.violations.len());
        self.violations
            .extend(other.violations.into_iter().take(room));
    }

    pub fn violation(&mut self, what: String) {
        if self.violations.len() < KEEP {
            self.violations.push(what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn judges_answers_against_what_was_acknowledged() {
        let l = Ledger::default();
        let (host, port) = Ledger::address_for("r0y1");
        l.sending("r0y1", &host, port);
        l.acked("r0y1", Instant::now());
        assert!(l
            .judge(Kind::Acked, "r0y1", &Some((host.clone(), port)))
            .is_ok());
        assert!(l.judge(Kind::Acked, "r0y1", &None).is_err());
        assert!(l
            .judge(Kind::Acked, "r0y1", &Some((host.clone(), port + 1)))
            .is_err());
        assert!(l.judge(Kind::Unknown, "nx0y1", &None).is_ok());
        assert!(l
            .judge(Kind::Unknown, "nx0y1", &Some((host, port)))
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn counts_acknowledged_rows_the_standby_lacks() {
        let l = Ledger::default();
        for name in ["a", "b"] {
            let (h, p) = Ledger::address_for(name);
            l.sending(name, &h, p);
            l.acked(name, Instant::now());
        }
        let (h, p) = Ledger::address_for("a");
        let mut v = Vec::new();
        assert_eq!(l.lost(&format!("a|{h}|{p}\n"), &mut v), 1);
        assert_eq!(v.len(), 1);
        assert!(v[0].starts_with("b:"));
    }

    #[tokio::test(start_paused = true)]
    async fn resumption_counts_from_the_first_ack_sent_after_recovery() {
        let l = Ledger::default();
        l.acked("before", Instant::now());
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let at = Instant::now();
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        let sent = Instant::now();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        l.acked("after", sent);
        assert_eq!(l.resumed_after(at), Some(4.0));
    }
}
