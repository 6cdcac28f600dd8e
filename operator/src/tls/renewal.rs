//! When in its life a certificate is renewed. A fleet created on one day would otherwise renew on
//! one day, in one minute: each Atsign renews at its own point between 60 % and 75 % of the
//! lifetime, fixed by a hash of its namespace and name so that the point never moves between
//! reconciles or operator restarts (and two replicas agree on it).

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::cert_info::CertInfo;

/// Earliest and latest renewal point, in thousandths of the lifetime.
const EARLIEST: u32 = 600;
const SPREAD: u32 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPoint {
    permille: u32,
}

impl RenewalPoint {
    /// The renewal point of the Atsign `namespace/name`.
    pub fn for_atsign(namespace: &str, name: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(namespace.as_bytes())
            .chain_update(b"/")
            .chain_update(name.as_bytes())
            .finalize();
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        Self {
            permille: EARLIEST + n % SPREAD,
        }
    }

    /// Thousandths of the lifetime after which the certificate is renewed.
    pub fn permille(self) -> u32 {
        self.permille
    }

    /// When a certificate with this validity is renewed.
    pub fn time(self, info: &CertInfo) -> Timestamp {
        let life = info.not_after.duration_since(info.not_before);
        info.not_before + life * self.permille as i32 / 1000
    }

    /// cert-manager's `renewBefore` for a certificate of `lifetime`: the rest of the life after
    /// the renewal point, whole minutes (at least one).
    pub fn renew_before(self, lifetime: SignedDuration) -> SignedDuration {
        let minutes = lifetime.as_mins() * i64::from(1000 - self.permille) / 1000;
        SignedDuration::from_mins(minutes.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_stay_in_range_and_spread_out() {
        let points: Vec<u32> = (0..200)
            .map(|i| RenewalPoint::for_atsign("fleet", &format!("a{i}")).permille())
            .collect();
        assert!(points.iter().all(|p| (600..750).contains(p)), "{points:?}");
        let mut distinct = points.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 100, "{} distinct points", distinct.len());
        assert_eq!(
            RenewalPoint::for_atsign("fleet", "a1"),
            RenewalPoint::for_atsign("fleet", "a1")
        );
    }

    #[test]
    fn time_and_renew_before_agree() {
        let p = RenewalPoint { permille: 650 };
        let start = Timestamp::from_second(1_800_000_000).expect("time");
        let info = CertInfo {
            not_before: start,
            not_after: start + SignedDuration::from_hours(100),
            names: vec![],
        };
        assert_eq!(p.time(&info), start + SignedDuration::from_hours(65));
        assert_eq!(
            p.renew_before(SignedDuration::from_hours(100)),
            SignedDuration::from_hours(35)
        );
        assert_eq!(
            p.renew_before(SignedDuration::from_secs(30)),
            SignedDuration::from_mins(1)
        );
    }
}
