//! The client-side ledger of key writes: what every key must hold after a restart. An
//! acknowledged update or delete is definite; one cut off by the kill may or may not have
//! happened, but it must have happened whole (the key holds exactly the old or the new value).

use std::collections::BTreeMap;

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Absent,
    Value(String),
}

#[derive(Debug)]
struct Entry {
    definite: State,
    /// Commit id of the acknowledged operation behind `definite` (0: never written).
    commit: i64,
    /// Operations sent but not acknowledged since `definite`.
    maybe: Vec<State>,
}

#[derive(Debug, Default)]
pub struct Ledger {
    keys: BTreeMap<String, Entry>,
    /// Acknowledged updates and deletes.
    pub acknowledged: u64,
    /// Updates and deletes cut off by a kill.
    pub unacknowledged: u64,
    /// The highest commit id any acknowledgement carried.
    last_commit: i64,
    /// Acknowledged writes whose effect was not there after a restart.
    pub lost: u64,
    /// Acknowledged commit ids handed out again after a restart.
    pub reused_commit_ids: u64,
    pub violations: Vec<String>,
}

impl Ledger {
    fn entry(&mut self, key: &str) -> &mut Entry {
        self.keys.entry(key.to_owned()).or_insert(Entry {
            definite: State::Absent,
            commit: 0,
            maybe: Vec::new(),
        })
    }

    /// An acknowledged write; `commit` is the id the reply carried.
    pub fn acked(&mut self, cycle: usize, key: &str, state: State, commit: Option<i64>) {
        self.acknowledged += 1;
        if let Some(c) = commit {
            // One writer, one write at a time: each acknowledgement's commit id must be above
            // every earlier one, restarts included (AUTOINCREMENT never hands an id out twice).
            if c <= self.last_commit {
                self.reused_commit_ids += 1;
                self.violations.push(format!(
                    "cycle {cycle}: the write of {key} was acknowledged with commit id {c}, not above the earlier acknowledged {}",
                    self.last_commit
                ));
            }
            self.last_commit = self.last_commit.max(c);
        }
        let e = self.entry(key);
        e.definite = state;
        e.maybe.clear();
        if let Some(c) = commit {
            e.commit = c;
        }
    }

    /// A write whose reply never came (the server was killed first).
    pub fn unacked(&mut self, key: &str, state: State) {
        self.unacknowledged += 1;
        self.entry(key).maybe.push(state);
    }

    /// The keys to read back after a restart.
    pub fn keys(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// Checks what `key` holds after a restart; a write cut off by the kill is settled by it.
    pub fn observe(&mut self, cycle: usize, key: &str, actual: State) {
        let Some(e) = self.keys.get_mut(key) else {
            return;
        };
        if actual == e.definite {
            e.maybe.clear();
        } else if e.maybe.contains(&actual) {
            e.definite = actual;
            e.maybe.clear();
        } else {
            let expected = format!("{:?}", e.definite);
            let maybe = format!("{:?}", e.maybe);
            // Settle on what is there, so one loss is counted once.
            e.definite = actual.clone();
            e.maybe.clear();
            self.lost += 1;
            self.violations.push(format!(
                "cycle {cycle}: after the restart {key} holds {actual:?}; acknowledged {expected}, unacknowledged candidates {maybe}"
            ));
        }
    }

    /// The commit id of the last acknowledged write of each key (the store's commit row for the
    /// key must be at least that).
    pub fn acked_commits(&self) -> impl Iterator<Item = (&str, i64)> {
        self.keys
            .iter()
            .filter(|(_, e)| e.commit > 0)
            .map(|(k, e)| (k.as_str(), e.commit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledged_write_must_be_there() {
        let mut l = Ledger::default();
        l.acked(0, "a", State::Value("1".into()), Some(1));
        l.observe(1, "a", State::Value("1".into()));
        assert_eq!(l.lost, 0);
        l.observe(1, "a", State::Absent);
        assert_eq!(l.lost, 1);
        assert_eq!(l.violations.len(), 1);
    }

    #[test]
    fn a_cut_off_write_may_go_either_way_but_whole() {
        let mut l = Ledger::default();
        l.acked(0, "a", State::Value("1".into()), Some(1));
        l.unacked("a", State::Value("2".into()));
        l.observe(1, "a", State::Value("2".into()));
        assert_eq!(l.lost, 0);
        l.unacked("a", State::Absent);
        l.observe(2, "a", State::Value("2".into()));
        assert_eq!(l.lost, 0);
        l.observe(3, "a", State::Value("3".into()));
        assert_eq!(l.lost, 1);
    }

    #[test]
    fn commit_ids_must_rise_across_restarts() {
        let mut l = Ledger::default();
        l.acked(0, "a", State::Value("1".into()), Some(5));
        l.acked(1, "b", State::Value("1".into()), Some(5));
        assert_eq!(l.reused_commit_ids, 1);
        assert_eq!(l.acked_commits().count(), 2);
    }
}
