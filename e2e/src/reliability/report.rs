//! The reliability report and its two renderings: `report.json` and `report.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::error::ReliabilityError;
use super::options::Scale;
use crate::bench::report::Machine;

/// What a figure must be for its section to pass.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Must {
    /// Exactly this value (0 lost, 0 duplicated, 0 wrong).
    Equal {
        value: f64,
    },
    AtMost {
        value: f64,
    },
    AtLeast {
        value: f64,
    },
    /// Shown for information.
    Nothing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub must: Must,
    /// `None` when there is nothing to meet.
    pub met: Option<bool>,
}

impl Figure {
    pub fn new(name: &str, value: f64, unit: &str, must: Must) -> Figure {
        let met = match must {
            Must::Equal { value: v } => Some(value == v),
            Must::AtMost { value: v } => Some(value <= v),
            Must::AtLeast { value: v } => Some(value >= v),
            Must::Nothing => None,
        };
        Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            must,
            met,
        }
    }

    /// A count shown for information.
    pub fn count(name: &str, value: u64) -> Figure {
        Figure::new(name, value as f64, "", Must::Nothing)
    }

    /// A count that must be zero (lost, duplicated, wrong answers).
    pub fn zero(name: &str, value: u64) -> Figure {
        Figure::new(name, value as f64, "", Must::Equal { value: 0.0 })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionReport {
    pub id: String,
    pub title: String,
    /// What was done, in a sentence or two (processes, load, faults).
    pub method: String,
    pub figures: Vec<Figure>,
    /// Every broken promise, with enough detail to reproduce it (key, cycle, seed).
    pub violations: Vec<String>,
    /// Set when the section could not run to its end.
    pub error: Option<String>,
    pub seconds: f64,
}

impl SectionReport {
    pub fn new(id: &str, title: &str, method: String) -> SectionReport {
        SectionReport {
            id: id.into(),
            title: title.into(),
            method,
            figures: Vec::new(),
            violations: Vec::new(),
            error: None,
            seconds: 0.0,
        }
    }

    pub fn failed_to_run(id: &str, error: &ReliabilityError) -> SectionReport {
        let mut s = SectionReport::new(id, id, "the section failed before it finished".into());
        s.error = Some(error.to_string());
        s
    }

    pub fn figure(&mut self, f: Figure) -> &mut Self {
        self.figures.push(f);
        self
    }

    /// Looks a figure up by name (tests read the figures they assert on).
    pub fn value(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }

    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.violations.is_empty()
            && self.figures.iter().all(|f| f.met != Some(false))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scale: Scale,
    pub started_at: String,
    pub duration_seconds: f64,
    pub machine: Machine,
    pub sections: Vec<SectionReport>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.sections.iter().all(SectionReport::passed)
    }

    pub fn write(&self, dir: &Path) -> Result<(), ReliabilityError> {
        std::fs::create_dir_all(dir).map_err(ReliabilityError::io(dir))?;
        let json = dir.join("report.json");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ReliabilityError::Setup(format!("serialising the report: {e}")))?;
        std::fs::write(&json, text).map_err(ReliabilityError::io(&json))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown()).map_err(ReliabilityError::io(&md))?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# atfleet reliability report\n");
        let _ = writeln!(
            out,
            "Scale: {:?}. Started {}; took {:.0} s. Result: **{}**.\n",
            self.scale,
            self.started_at,
            self.duration_seconds,
            if self.passed() { "passed" } else { "FAILED" }
        );
        for s in &self.sections {
            let _ = writeln!(
                out,
                "## {} ({}, {:.0} s)\n\n{}\n",
                s.title,
                if s.passed() { "passed" } else { "FAILED" },
                s.seconds,
                s.method
            );
            if let Some(e) = &s.error {
                let _ = writeln!(out, "Could not run to its end: {e}\n");
            }
            if !s.figures.is_empty() {
                let _ = writeln!(
                    out,
                    "| figure | value | must be | met |\n|---|---:|---|---|"
                );
                for f in &s.figures {
                    let must = match f.must {
                        Must::Equal { value } => format!("= {value}"),
                        Must::AtMost { value } => format!("≤ {value}"),
                        Must::AtLeast { value } => format!("≥ {value}"),
                        Must::Nothing => String::new(),
                    };
                    let met = match f.met {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "",
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} {} | {must} | {met} |",
                        f.name,
                        trim_number(f.value),
                        f.unit
                    );
                }
                out.push('\n');
            }
            for v in &s.violations {
                let _ = writeln!(out, "- violation: {v}");
            }
            if !s.violations.is_empty() {
                out.push('\n');
            }
        }
        out
    }
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}
