//! A tiny smoke run of every benchmark through the real `atfleet-bench` binary against the debug
//! `atserver` and `atdirectory`: the report files must be written and well formed. Nothing is timed
//! or compared here; the figures of a smoke run mean nothing.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn target_bin(name: &str) -> PathBuf {
    // The test runs as <target>/debug/deps/<test>-<hash>; the binaries sit in <target>/debug.
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build -p atserver -p atdirectory -p atfleet-operator; `make test` does)",
        bin.display()
    );
    bin
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

#[test]
fn smoke_run_writes_a_well_formed_report() {
    let atserver = target_bin("atserver");
    target_bin("atdirectory");
    let out = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_atfleet-bench"))
        .args(["run", "--smoke", "--bin-dir"])
        .arg(atserver.parent().expect("bin dir"))
        .arg("--out")
        .arg(out.path())
        .args(["--build-seconds", "7", "--limit-seconds", "100000"])
        .status()
        .expect("atfleet-bench runs");
    assert!(status.success(), "atfleet-bench exited with {status}");

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).expect("report.json"),
    )
    .expect("report.json is JSON");
    assert_eq!(json["mode"], "smoke");
    assert_eq!(json["build_seconds"], 7.0);
    assert_eq!(json["within_limit"], true);
    assert!(num(&json, "duration_seconds") > 0.0);
    assert!(json["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    let sections = json["sections"].as_array().expect("sections");
    let ids: Vec<&str> = sections.iter().filter_map(|s| s["id"].as_str()).collect();
    for id in [
        "throughput",
        "notification",
        "memory",
        "startup",
        "directory",
        "operator",
    ] {
        assert!(ids.contains(&id), "section {id} missing from {ids:?}");
    }
    let with_postgres = std::env::var_os("DATABASE_URL").is_some();
    for s in sections {
        let id = s["id"].as_str().unwrap_or_default();
        assert!(
            !s["method"].as_str().unwrap_or_default().is_empty(),
            "{id}: no method"
        );
        assert!(num(s, "seconds") > 0.0, "{id}: no wall time");
        let figures = s["figures"].as_array().expect("figures");
        let not_measured = s["not_measured"].as_array().expect("not_measured");
        for n in not_measured {
            let reason = n["reason"].as_str().unwrap_or_default();
            assert!(!reason.starts_with("benchmark failed"), "{id}: {reason}");
        }
        let expect_figures = !matches!(id, "directory" | "operator") || with_postgres;
        if expect_figures {
            assert!(!figures.is_empty(), "{id}: no figures ({not_measured:?})");
        }
        for f in figures {
            let o = &f["ours"];
            assert!(
                num(o, "min") <= num(o, "median") && num(o, "median") <= num(o, "max"),
                "{f}"
            );
            assert!(o["repetitions"].as_u64().unwrap_or(0) >= 1, "{f}");
            if f["baseline"].is_object() {
                assert!(f["ratio"].is_number(), "a baseline comes with a ratio: {f}");
            }
        }
        for plot in s["plots"].as_array().expect("plots") {
            let png =
                std::fs::read(out.path().join(plot.as_str().expect("plot name"))).expect("png");
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{plot} is not a PNG");
        }
    }
    // With PostgreSQL (make test) the directory-backed figures are really taken.
    if with_postgres {
        for (id, prefix) in [
            ("notification", "notification latency @alice"),
            ("directory", "atDirectory lookups"),
            ("operator", "operator: "),
        ] {
            let section = sections.iter().find(|s| s["id"] == id).expect(id);
            let names: Vec<&str> = section["figures"]
                .as_array()
                .expect("figures")
                .iter()
                .filter_map(|f| f["name"].as_str())
                .collect();
            assert!(
                names.iter().any(|n| n.starts_with(prefix)),
                "{id}: no {prefix:?} figure in {names:?}"
            );
        }
    }

    let md = std::fs::read_to_string(out.path().join("report.md")).expect("report.md");
    assert!(md.starts_with("# atfleet benchmarks (smoke run)"), "{md}");
    for heading in [
        "Wall time: build 7 s + benchmarks",
        "| section | wall time |",
        "## Summary",
        "**Method.**",
        "**Wall time.**",
        "| figure | min | median | max |",
    ] {
        assert!(md.contains(heading), "report.md lacks {heading:?}");
    }
    for s in sections {
        let title = s["title"].as_str().expect("title");
        assert!(
            md.contains(&format!("## {title}")),
            "report.md lacks section {title}"
        );
    }
}
