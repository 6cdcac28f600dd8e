//! The report model and its two renderings: `report.json` and `report.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::error::BenchError;
use super::stats::Summary;

/// How a figure is judged against its first target.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// Our median divided by the baseline's median must reach this.
    RatioAtLeast { ratio: f64 },
    /// Our median must not exceed this (in the figure's unit).
    AtMost { value: f64 },
    /// No target; shown for information.
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub name: String,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub unit: String,
    pub ours: Summary,
    pub baseline: Option<Baseline>,
    /// ours.median / baseline.median.
    pub ratio: Option<f64>,
    pub target: Target,
    /// `None` when there is no target.
    pub met: Option<bool>,
    /// The reference atServer's documented figure, where there is one.
    pub reference: Option<String>,
}

impl Figure {
    pub fn new(name: &str, unit: &str, ours: Summary, target: Target) -> Figure {
        let mut f = Figure {
            name: name.into(),
            unit: unit.into(),
            ours,
            baseline: None,
            ratio: None,
            target,
            met: None,
            reference: None,
        };
        f.judge();
        f
    }

    pub fn with_baseline(mut self, name: &str, summary: Option<Summary>) -> Figure {
        if let Some(summary) = summary {
            self.baseline = Some(Baseline {
                name: name.into(),
                summary,
            });
        }
        self.judge();
        self
    }

    pub fn with_reference(mut self, reference: &str) -> Figure {
        self.reference = Some(reference.into());
        self
    }

    fn judge(&mut self) {
        self.ratio = self
            .baseline
            .as_ref()
            .filter(|b| b.summary.median > 0.0)
            .map(|b| self.ours.median / b.summary.median);
        self.met = match self.target {
            Target::RatioAtLeast { ratio } => self.ratio.map(|r| r >= ratio),
            Target::AtMost { value } => Some(self.ours.median <= value),
            Target::None => None,
        };
    }
}

/// A figure the run could not take, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct NotMeasured {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    /// What is timed, warm-up and repetitions.
    pub method: String,
    pub figures: Vec<Figure>,
    pub not_measured: Vec<NotMeasured>,
    /// PNG files next to the report.
    pub plots: Vec<String>,
    /// Extra observations (counts, percentiles) as text.
    pub notes: Vec<String>,
    /// Wall time of the whole benchmark, setup and baselines included.
    pub seconds: f64,
}

impl Section {
    pub fn new(id: &str, title: &str, method: String) -> Section {
        Section {
            id: id.into(),
            title: title.into(),
            method,
            figures: Vec::new(),
            not_measured: Vec::new(),
            plots: Vec::new(),
            notes: Vec::new(),
            seconds: 0.0,
        }
    }

    pub fn not_measured(&mut self, name: &str, reason: impl Into<String>) {
        self.not_measured.push(NotMeasured {
            name: name.into(),
            reason: reason.into(),
        });
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_mib: u64,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub git_commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub started_at: String,
    /// This run's wall time (every section plus the harness's own setup).
    pub duration_seconds: f64,
    /// How long building the binaries took before the run, when the caller measured it.
    pub build_seconds: Option<f64>,
    /// The limit for build plus run (`make bench`: 15 minutes).
    pub limit_seconds: Option<f64>,
    /// Whether build plus run kept to the limit; `None` without a limit.
    pub within_limit: Option<bool>,
    pub machine: Machine,
    pub sections: Vec<Section>,
}

impl Report {
    /// Build plus run.
    pub fn total_seconds(&self) -> f64 {
        self.build_seconds.unwrap_or(0.0) + self.duration_seconds
    }

    /// Sets [`Report::within_limit`] from the durations.
    pub fn judge_limit(mut self) -> Report {
        self.within_limit = self.limit_seconds.map(|l| self.total_seconds() <= l);
        self
    }

    /// What the run's wall time was, against the limit when there is one.
    pub fn timing_text(&self) -> String {
        let mut t = match self.build_seconds {
            Some(b) => format!(
                "build {b:.0} s + benchmarks {:.0} s = {:.0} s",
                self.duration_seconds,
                self.total_seconds()
            ),
            None => format!(
                "benchmarks {:.0} s (build not measured)",
                self.duration_seconds
            ),
        };
        if let Some(limit) = self.limit_seconds {
            let _ = match self.within_limit {
                Some(true) => write!(t, ", within the {limit:.0} s limit"),
                _ => write!(
                    t,
                    ", **over the {limit:.0} s limit by {:.0} s**",
                    self.total_seconds() - limit
                ),
            };
        }
        t
    }

    pub fn write(&self, dir: &Path) -> Result<(), BenchError> {
        std::fs::create_dir_all(dir).map_err(BenchError::io(dir))?;
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| BenchError::Setup(format!("serialising the report: {e}")))?;
        let path = dir.join("report.json");
        std::fs::write(&path, json).map_err(BenchError::io(&path))?;
        let path = dir.join("report.md");
        std::fs::write(&path, self.markdown()).map_err(BenchError::io(&path))?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# atfleet benchmarks ({} run)\n", self.mode);
        let _ = writeln!(
            md,
            "Run at {} for {:.0} s on {} ({} cores, {} MiB RAM, Linux {}), commit `{}`.  \n\
             Load average before: {}; after: {}. The machine is shared, so every figure is set \
             beside a baseline measured in the same run.\n",
            self.started_at,
            self.duration_seconds,
            m.cpu,
            m.cores,
            m.memory_mib,
            m.kernel,
            m.git_commit,
            m.load_before,
            m.load_after
        );
        let _ = writeln!(md, "Wall time: {}.\n", self.timing_text());
        let _ = writeln!(md, "| section | wall time |");
        let _ = writeln!(md, "|---|---|");
        for s in &self.sections {
            let _ = writeln!(md, "| {} | {:.1} s |", s.title, s.seconds);
        }
        let _ = writeln!(md, "\n## Summary\n");
        let _ = writeln!(
            md,
            "| figure | ours (median) | baseline (median) | ratio | target | met | reference atServer |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for s in &self.sections {
            for f in &s.figures {
                let _ = writeln!(
                    md,
                    "| {} | {} {} | {} | {} | {} | {} | {} |",
                    f.name,
                    num(f.ours.median),
                    f.unit,
                    f.baseline
                        .as_ref()
                        .map(|b| format!("{} ({})", num(b.summary.median), b.name))
                        .unwrap_or_else(|| "—".into()),
                    f.ratio
                        .map(|r| format!("{r:.2}"))
                        .unwrap_or_else(|| "—".into()),
                    target_text(&f.target, &f.unit),
                    match f.met {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "—",
                    },
                    f.reference.as_deref().unwrap_or("—"),
                );
            }
            for n in &s.not_measured {
                let _ = writeln!(md, "| {} | not measured: {} | | | | | |", n.name, n.reason);
            }
        }
        for s in &self.sections {
            let _ = writeln!(
                md,
                "\n## {}\n\n**Method.** {}\n\n**Wall time.** {:.1} s (setup and baselines included).\n",
                s.title, s.method, s.seconds
            );
            if !s.figures.is_empty() {
                let _ = writeln!(
                    md,
                    "| figure | min | median | max | reps | baseline min / median / max |"
                );
                let _ = writeln!(md, "|---|---|---|---|---|---|");
                for f in &s.figures {
                    let o = &f.ours;
                    let _ = writeln!(
                        md,
                        "| {} ({}) | {} | {} | {} | {} | {} |",
                        f.name,
                        f.unit,
                        num(o.min),
                        num(o.median),
                        num(o.max),
                        o.repetitions,
                        f.baseline
                            .as_ref()
                            .map(|b| format!(
                                "{}: {} / {} / {}",
                                b.name,
                                num(b.summary.min),
                                num(b.summary.median),
                                num(b.summary.max)
                            ))
                            .unwrap_or_else(|| "—".into()),
                    );
                }
            }
            for n in &s.not_measured {
                let _ = writeln!(md, "\n- {}: not measured: {}", n.name, n.reason);
            }
            for note in &s.notes {
                let _ = writeln!(md, "\n- {note}");
            }
            for p in &s.plots {
                let _ = writeln!(md, "\n![{p}]({p})");
            }
        }
        md
    }
}

fn target_text(t: &Target, unit: &str) -> String {
    match t {
        Target::RatioAtLeast { ratio } => format!("≥ {ratio} × baseline"),
        Target::AtMost { value } => format!("≤ {} {unit}", num(*value)),
        Target::None => "—".into(),
    }
}

/// Three significant-ish digits without scientific notation.
fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: f64) -> Summary {
        Summary::of(&[v]).unwrap()
    }

    #[test]
    fn ratio_targets_are_judged_on_medians() {
        let f = Figure::new("x", "req/s", s(60.0), Target::RatioAtLeast { ratio: 0.5 })
            .with_baseline("echo", Some(s(100.0)));
        assert_eq!(f.ratio, Some(0.6));
        assert_eq!(f.met, Some(true));
        let f = Figure::new("x", "ms", s(120.0), Target::AtMost { value: 100.0 });
        assert_eq!(f.met, Some(false));
        let f = Figure::new("x", "req/s", s(1.0), Target::RatioAtLeast { ratio: 0.5 });
        assert_eq!(f.met, None, "no baseline, no verdict");
    }

    fn report(build: Option<f64>, run: f64, limit: Option<f64>) -> Report {
        Report {
            mode: "full".into(),
            started_at: "now".into(),
            duration_seconds: run,
            build_seconds: build,
            limit_seconds: limit,
            within_limit: None,
            machine: Machine {
                cpu: "cpu".into(),
                cores: 2,
                memory_mib: 1,
                kernel: "k".into(),
                load_before: "0".into(),
                load_after: "0".into(),
                git_commit: "c".into(),
            },
            sections: Vec::new(),
        }
        .judge_limit()
    }

    #[test]
    fn build_and_run_are_judged_together_against_the_limit() {
        let r = report(Some(400.0), 450.0, Some(900.0));
        assert_eq!(r.within_limit, Some(true));
        assert_eq!(
            r.timing_text(),
            "build 400 s + benchmarks 450 s = 850 s, within the 900 s limit"
        );
        let r = report(Some(500.0), 450.0, Some(900.0));
        assert_eq!(r.within_limit, Some(false));
        assert!(r.markdown().contains("**over the 900 s limit by 50 s**"));
        let r = report(None, 30.0, None);
        assert_eq!(r.within_limit, None);
        assert_eq!(r.timing_text(), "benchmarks 30 s (build not measured)");
    }
}
