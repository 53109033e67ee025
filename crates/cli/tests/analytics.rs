//! `regulars analytics fit` as a script uses it: the CDNOW sample against the
//! lifetimes reference figures, and malformed files.
//!
//! The reference figures are those of crates/core/tests/clv_reference.rs
//! (lifetimes 0.11.3; how they were produced is written there and in
//! docs/analytics.md). Tolerances as there: parameters 1% relative,
//! log-likelihood 1e-6 relative.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cdnow() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/cdnow_sample.csv")
}

fn fit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulars"))
        .args(["analytics", "fit"])
        .args(args)
        // Analytics needs neither settings nor a database: make sure none is used.
        .env_remove("REGULARS_DATABASE_URL")
        .env("REGULARS_LOG", "warn")
        .output()
        .expect("regulars runs")
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

fn check(output: &Output, bg: [f64; 4], bg_ll: f64, gg: [f64; 3], gg_customers: u64) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["customers"], 2357);
    for (name, want) in ["r", "alpha", "a", "b"].iter().zip(bg) {
        let got = json["bgnbd"][name].as_f64().expect("number");
        assert!(rel(got, want) < 0.01, "{name} = {got}, lifetimes {want}");
    }
    let ll = json["bgnbd"]["log_likelihood"].as_f64().expect("number");
    assert!(
        rel(ll, bg_ll) < 1e-6,
        "log-likelihood {ll}, lifetimes {bg_ll}"
    );
    for (name, want) in ["p", "q", "v"].iter().zip(gg) {
        let got = json["gamma_gamma"][name].as_f64().expect("number");
        assert!(rel(got, want) < 0.01, "{name} = {got}, lifetimes {want}");
    }
    assert_eq!(json["gamma_gamma"]["customers"], gg_customers);
    assert!(json["fit_ms"].as_f64().expect("fit_ms") >= 0.0);
}

#[test]
fn cdnow_matches_lifetimes() {
    let path = cdnow();
    let path = path.to_str().expect("utf-8 path");

    // freq='D', observation end = last date (the default).
    let output = fit(&["--transactions", path]);
    check(
        &output,
        [
            0.25356104359918297,
            38.13076285952146,
            0.60736605156438,
            2.647234680319884,
        ],
        -25581.538101389266,
        [4.683454180076477, 4.189783063353315, 24.39054763132042],
        1139,
    );

    // freq='W'.
    let output = fit(&["--transactions", path, "--time-unit", "week"]);
    check(
        &output,
        [
            0.27530759031853896,
            7.0498361125673314,
            0.6018820364121813,
            2.708171673570215,
        ],
        -16492.35735568223,
        [4.784997901983691, 3.8821001586572574, 22.653201353730548],
        1126,
    );

    // freq='W', observation_period_end='1997-09-30'.
    let output = fit(&[
        "--transactions",
        path,
        "--time-unit",
        "week",
        "--observation-end",
        "1997-09-30",
    ]);
    check(
        &output,
        [
            0.29093631940289466,
            6.852093906789362,
            0.6652493616034663,
            2.3203235036765664,
        ],
        -9260.993845121819,
        [6.5878528307580595, 3.3533888474902844, 13.39896989832192],
        935,
    );
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "regulars-analytics-{}-{nanos}-{name}.csv",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fails_with(name: &str, text: &str, extra: &[&str], wanted: &str) {
    let file = TempFile::new(name, text);
    let mut args = vec!["--transactions", file.0.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let output = fit(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{name}: should fail");
    assert!(
        output.stdout.is_empty(),
        "{name}: printed {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains(wanted),
        "{name}: stderr {stderr:?} lacks {wanted:?}"
    );
}

#[test]
fn malformed_files_fail_naming_the_line() {
    let good = "customer_id,date,amount\n1,2024-01-01,10.5\n1,2024-01-09,3\n";
    fails_with(
        "bad-date",
        &format!("{good}2,2024-02-30,4\n"),
        &[],
        "line 4: bad date \"2024-02-30\"",
    );
    fails_with(
        "bad-amount",
        &format!("{good}2,2024-02-03,4,50\n2,2024-02-04,x\n"),
        &[],
        "line 5: bad amount \"x\"",
    );
    fails_with(
        "missing-column",
        &format!("{good}2,2024-02-03\n"),
        &[],
        "line 4: missing column amount",
    );
    fails_with(
        "bad-header",
        "customer,date,amount\n1,2024-01-01,1\n",
        &[],
        "line 1: missing column customer_id",
    );
    fails_with("empty", "", &[], "empty file");
    fails_with(
        "header-only",
        "customer_id,date,amount\n",
        &[],
        "no transactions",
    );
    fails_with(
        "bad-unit",
        good,
        &["--time-unit", "month"],
        "unknown time unit",
    );
    fails_with(
        "bad-end",
        good,
        &["--observation-end", "2024-1-1"],
        "bad --observation-end",
    );
    fails_with("too-few", good, &[], "too few customers");
    let missing = fit(&["--transactions", "/nonexistent/regulars-transactions.csv"]);
    assert!(!missing.status.success());
    assert!(missing.stdout.is_empty());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open"));
}
