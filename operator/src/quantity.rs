//! Just enough of Kubernetes' quantity grammar to compare storage sizes.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The number of bytes `q` stands for, or `None` when it is not a storage size we understand
/// (negative, fractional bytes, unknown suffix).
pub fn bytes(q: &Quantity) -> Option<u128> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let multiplier: u128 = match suffix {
        "" => 1,
        "k" => 1000,
        "M" => 1000u128.pow(2),
        "G" => 1000u128.pow(3),
        "T" => 1000u128.pow(4),
        "P" => 1000u128.pow(5),
        "E" => 1000u128.pow(6),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return None,
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(multiplier)?;
    if !frac.is_empty() {
        let digits: u32 = frac.len().try_into().ok()?;
        let scale = 10u128.checked_pow(digits)?;
        let f: u128 = frac.parse().ok()?;
        let part = f.checked_mul(multiplier)?;
        if part % scale != 0 {
            return None;
        }
        total = total.checked_add(part / scale)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Option<u128> {
        bytes(&Quantity(s.into()))
    }

    #[test]
    fn parses_binary_and_decimal_suffixes() {
        assert_eq!(b("1Gi"), Some(1 << 30));
        assert_eq!(b("1.5Gi"), Some(3 << 29));
        assert_eq!(b("500M"), Some(500_000_000));
        assert_eq!(b("1024"), Some(1024));
        assert!(b("2Gi") > b("1500Mi"));
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        assert_eq!(b(""), None);
        assert_eq!(b("-1Gi"), None);
        assert_eq!(b("1Xi"), None);
        assert_eq!(b("0.1"), None);
        assert_eq!(b("."), None);
    }
}
