//! Latency histograms as PNG. plotters is built without font support (no system font libraries),
//! so the plots carry no text; report.md gives the axes and colours in the caption.

use std::path::Path;

use plotters::prelude::*;

use super::error::BenchError;
use super::stats::percentile_sorted;

const BINS: usize = 60;

/// Overlaid histograms of `ours` (red) and `baseline` (blue): x from 0 to the combined p99 in
/// equal bins, y the share of each series' samples per bin. Returns false when there is nothing
/// to draw.
pub fn latency_histogram(path: &Path, ours: &[f64], baseline: &[f64]) -> Result<bool, BenchError> {
    let mut all: Vec<f64> = ours.iter().chain(baseline).copied().collect();
    if ours.is_empty() || baseline.is_empty() {
        return Ok(false);
    }
    all.sort_by(f64::total_cmp);
    let top = percentile_sorted(&all, 99.0).max(1e-6);
    let width = top / BINS as f64;
    let shares = |v: &[f64]| -> Vec<f64> {
        let mut bins = vec![0usize; BINS];
        for x in v {
            let b = ((x / width) as usize).min(BINS - 1);
            bins[b] += 1;
        }
        bins.iter().map(|&c| c as f64 / v.len() as f64).collect()
    };
    let (o, b) = (shares(ours), shares(baseline));
    let ymax = o.iter().chain(&b).copied().fold(0.0, f64::max).max(1e-6);
    let err = |e: String| BenchError::Setup(format!("plot {}: {e}", path.display()));
    let root = BitMapBackend::new(path, (800, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .build_cartesian_2d(0f64..top, 0f64..ymax * 1.05)
        .map_err(|e| err(e.to_string()))?;
    for (series, colour) in [(&b, BLUE.mix(0.5)), (&o, RED.mix(0.5))] {
        chart
            .draw_series(series.iter().enumerate().map(|(i, &share)| {
                let x0 = i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, share)], colour.filled())
            }))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .plotting_area()
        .draw(&Rectangle::new([(0.0, 0.0), (top, ymax * 1.05)], BLACK))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}
