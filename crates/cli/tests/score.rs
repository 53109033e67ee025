//! `regulars score` on generated history, on both backends: the models find
//! the behaviour the generator put in, lifecycle stages all appear, the
//! recommender beats popularity on held-out visits, and the ledger is sound.

use regulars_store::testing::{fresh_database, TempDir};
use regulars_store::Backend;
use std::process::{Command, Output};

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // test only

struct Env {
    url: String,
    _dir: Option<TempDir>,
}

fn run(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regulars"))
        .arg("--database-url")
        .arg(&env.url)
        .args(args)
        .env("REGULARS_MASTER_KEY", MASTER_KEY)
        .env("REGULARS_LOG", "warn")
        .output()
        .expect("regulars runs")
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

async fn scores_generated_history(backend: Backend) {
    let (url, dir) = fresh_database(backend).await;
    let env = Env { url, _dir: dir };
    let generated = json_of(&run(
        &env,
        &[
            "generate",
            "--members",
            "600",
            "--months",
            "18",
            "--seed",
            "11",
        ],
    ));
    let report = json_of(&run(&env, &["score", "--evaluate"]));
    assert_eq!(report["members"], generated["members"], "{report}");
    assert!(report["bgnbd"].is_array(), "BG/NBD fitted: {report}");
    assert!(
        report["gamma_gamma"].is_array(),
        "Gamma-Gamma fitted: {report}"
    );
    let stages: std::collections::BTreeMap<String, u64> = report["lifecycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    for stage in ["potential", "active", "dormant", "churned"] {
        assert!(stages[stage] > 0, "no {stage} members: {report}");
    }
    let rec = &report["recommender"];
    let ours = rec["hit_rate_recommender"].as_f64().unwrap();
    let popular = rec["hit_rate_popular"].as_f64().unwrap();
    eprintln!(
        "{backend:?}: hit rate @5 recommender {ours:.3}, popularity {popular:.3} over {} members",
        rec["members"]
    );
    assert!(rec["members"].as_u64().unwrap() > 100, "{report}");
    assert!(
        ours > popular,
        "the recommender must beat popularity: {rec}"
    );
    let verify = run(&env, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_generated_history_sqlite() {
    scores_generated_history(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_generated_history_postgres() {
    scores_generated_history(Backend::Postgres).await
}
