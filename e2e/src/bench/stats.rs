//! Summaries over repetitions (min, median, max) and percentiles over latency samples.

use serde::Serialize;

/// Min, median and max of one figure over its repetitions.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub repetitions: usize,
}

impl Summary {
    /// `None` for no values (a benchmark that did not run).
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Summary {
            min: v[0],
            median: percentile_sorted(&v, 50.0),
            max: v[v.len() - 1],
            repetitions: v.len(),
        })
    }
}

/// The `p`th percentile (nearest rank) of sorted values; 0 for none.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // The small epsilon keeps float noise (0.99 × 1000 = 990.0000000000001) from moving up a rank.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99 and p99.9 of latency samples in milliseconds.
pub fn latency_percentiles(samples_ms: &[f64]) -> [f64; 3] {
    let mut v = samples_ms.to_vec();
    v.sort_by(f64::total_cmp);
    [
        percentile_sorted(&v, 50.0),
        percentile_sorted(&v, 99.0),
        percentile_sorted(&v, 99.9),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_orders_values() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.repetitions), (1.0, 2.0, 3.0, 3));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(latency_percentiles(&v), [500.0, 990.0, 999.0]);
        assert_eq!(percentile_sorted(&[7.0], 99.9), 7.0);
    }
}
