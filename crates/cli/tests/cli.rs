//! The `regulars` binary as an operator and a script use it, on both backends.

use regulars_store::testing::{fresh_database, TempDir};
use regulars_store::Backend;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // test only

struct Env {
    url: String,
    _dir: Option<TempDir>,
}

async fn env(backend: Backend) -> Env {
    let (url, dir) = fresh_database(backend).await;
    Env { url, _dir: dir }
}

fn regulars(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regulars"));
    cmd.arg("--database-url")
        .arg(&env.url)
        .args(args)
        .env("REGULARS_MASTER_KEY", MASTER_KEY)
        .env_remove("REGULARS_LISTEN")
        .env("REGULARS_LOG", "debug");
    cmd
}

fn run(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = regulars(env, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("regulars runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Start `serve` on a random port; returns the child and the base URL.
fn serve(env: &Env) -> (Child, String) {
    let mut child = regulars(env, &["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    (child, base)
}

fn stop(child: Child) -> String {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let out = child.wait_with_output().unwrap();
    text(&out.stderr)
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(super::env(regulars_store::Backend::Sqlite).await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(super::env(regulars_store::Backend::Postgres).await).await }
        }
    )*};
}

on_both_backends!(
    apikey_create_prints_a_working_key_on_the_last_line,
    user_create_reads_the_password_from_stdin,
    migrate_twice_changes_nothing,
    logs_carry_no_personal_data,
    jobs_run_now_escalates_an_overdue_complaint,
);

/// The SLA clock as an operator drives it: a complaint arrives over HTTP;
/// `regulars jobs run --now` past its deadline escalates it to the region,
/// one SLA period later to HQ, and `verify` still passes.
async fn jobs_run_now_escalates_an_overdue_complaint(env: Env) {
    let out = run(
        &env,
        &["apikey", "create", "--role", "hq_admin", "--name", "ops"],
        None,
    );
    let key = text(&out.stdout).lines().last().unwrap().trim().to_string();
    let (server, base) = serve(&env);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/stores"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"code": "CD01", "name": "春熙路店", "region": "西南", "city": "成都"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let complaint: serde_json::Value = client
        .post(format!("{base}/api/v1/feedback"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"store_code": "CD01", "channel": "call_center",
            "text": "服务员态度很差，叫了三次都不理", "rating": 1}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = complaint["id"].as_str().unwrap().to_string();
    let due = chrono::DateTime::parse_from_rfc3339(complaint["due_at"].as_str().unwrap()).unwrap();
    stop(server);

    let jobs = |at: chrono::DateTime<chrono::FixedOffset>| {
        let out = run(&env, &["jobs", "run", "--now", &at.to_rfc3339()], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        jobs(due - chrono::Duration::minutes(1))["complaints_escalated"],
        0
    );
    assert_eq!(
        jobs(due + chrono::Duration::minutes(1))["complaints_escalated"],
        1
    );
    assert_eq!(
        jobs(due + chrono::Duration::minutes(2))["complaints_escalated"],
        0
    );
    assert_eq!(
        jobs(due + chrono::Duration::minutes(31))["complaints_escalated"],
        1
    );

    let (server, base) = serve(&env);
    let view: serde_json::Value = client
        .get(format!("{base}/api/v1/feedback/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stop(server);
    assert_eq!(view["escalation_level"], 2, "{view}");
    assert_eq!(view["sla_breached"], true);
    let out = run(&env, &["verify"], None);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

async fn apikey_create_prints_a_working_key_on_the_last_line(env: Env) {
    let out = run(
        &env,
        &["apikey", "create", "--role", "hq_admin", "--name", "ops"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let key = stdout.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("rk_"), "{stdout}");

    let (server, base) = serve(&env);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/stores"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"code": "CD01", "name": "春熙路店", "region": "西南", "city": "成都"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // A store-scoped key for that store works; without --store it is refused.
    let out = run(
        &env,
        &["apikey", "create", "--role", "pos", "--store", "CD01"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pos_key = text(&out.stdout).lines().last().unwrap().trim().to_string();
    let r = client
        .get(format!("{base}/api/v1/stores/CD01"))
        .bearer_auth(&pos_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = run(&env, &["apikey", "create", "--role", "pos"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--store"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &env,
        &["apikey", "create", "--role", "pos", "--store", "NOPE"],
        None,
    );
    assert!(!out.status.success());
    let out = run(&env, &["apikey", "create", "--role", "emperor"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown role"));
    stop(server);
}

async fn user_create_reads_the_password_from_stdin(env: Env) {
    let out = run(
        &env,
        &[
            "user",
            "create",
            "--username",
            "wang",
            "--role",
            "hq_admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = run(
        &env,
        &[
            "user",
            "create",
            "--username",
            "wang",
            "--role",
            "hq_admin",
            "--password-stdin",
        ],
        Some("another long password\n"),
    );
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));
    let short = run(
        &env,
        &[
            "user",
            "create",
            "--username",
            "li",
            "--role",
            "hq_admin",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("at least 10"));

    // The password works in the console, and the stored hash is argon2id.
    let (server, base) = serve(&env);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let login = client
        .post(format!("{base}/console/login"))
        .header("cookie", cookie)
        .form(&[
            ("username", "wang"),
            ("password", "a long enough password"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    stop(server);
}

async fn migrate_twice_changes_nothing(env: Env) {
    for _ in 0..2 {
        let out = run(&env, &["migrate"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("migrations applied"));
    }
}

async fn logs_carry_no_personal_data(env: Env) {
    let out = run(&env, &["apikey", "create", "--role", "hq_admin"], None);
    let key = text(&out.stdout).lines().last().unwrap().trim().to_string();
    let (server, base) = serve(&env);
    let client = reqwest::Client::new();
    let phone = "13912340001";
    let r = client
        .post(format!("{base}/api/v1/members"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"phone": phone, "name": "欧阳锋", "email": "ouyang@example.cn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .get(format!("{base}/api/v1/members/lookup?phone={phone}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dup = client
        .post(format!("{base}/api/v1/members"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"phone": format!("+86 {phone}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let logs = stop(server);
    assert!(
        logs.contains("/api/v1/members/lookup"),
        "debug logs were captured: {logs}"
    );
    for secret in [phone, "欧阳锋", "ouyang@example.cn", &key] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
}

#[tokio::test]
async fn serve_refuses_postgres_without_a_master_key() {
    let env = env(Backend::Postgres).await;
    let out = regulars(&env, &["serve", "--listen", "127.0.0.1:0"])
        .env_remove("REGULARS_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("REGULARS_MASTER_KEY"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn sqlite_without_a_key_makes_a_private_key_file_once() {
    let env = env(Backend::Sqlite).await;
    let out = regulars(&env, &["apikey", "create", "--role", "hq_admin"])
        .env_remove("REGULARS_MASTER_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = regulars_store::db::sqlite_path(&env.url);
    let key_file = std::path::Path::new(&path)
        .parent()
        .unwrap()
        .join("master.key");
    let first = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let out = regulars(&env, &["apikey", "create", "--role", "hq_admin"])
        .env_remove("REGULARS_MASTER_KEY")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        first,
        "the key is reused, not replaced"
    );
}
