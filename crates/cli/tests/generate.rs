//! `regulars generate` on both backends: what it writes adds up, passes
//! `verify`, is the same for the same seed, keeps phone numbers encrypted,
//! and looks like guests (uneven visit counts, drop-outs, regional taste,
//! meal-time peaks, allergies respected).

use regulars_store::testing::{fresh_database, TempDir};
use regulars_store::{Backend, Db};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // test only
const END: &str = "2026-01-31";

struct Env {
    backend: Backend,
    url: String,
    dir: Option<TempDir>,
}

async fn env(backend: Backend) -> Env {
    let (url, dir) = fresh_database(backend).await;
    Env { backend, url, dir }
}

fn regulars(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regulars"));
    cmd.arg("--database-url")
        .arg(&env.url)
        .args(args)
        .env("REGULARS_MASTER_KEY", MASTER_KEY)
        .env("REGULARS_TZ", "Asia/Shanghai")
        .env("REGULARS_LOG", "debug")
        .env_remove("REGULARS_LISTEN");
    cmd
}

fn run(env: &Env, args: &[&str]) -> Output {
    regulars(env, args)
        .stdin(Stdio::null())
        .output()
        .expect("regulars runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Run `generate` and read its one-line JSON summary.
fn generate(env: &Env, members: u32, months: u32, seed: u64) -> serde_json::Value {
    let out = run(
        env,
        &[
            "generate",
            "--members",
            &members.to_string(),
            "--months",
            &months.to_string(),
            "--seed",
            &seed.to_string(),
            "--end",
            END,
        ],
    );
    assert!(out.status.success(), "generate: {}", text(&out.stderr));
    // Not a phone number in the output or the (debug) log.
    let said = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    for index in 0..u64::from(members) {
        let phone = phone_of(seed, index);
        assert!(
            !said.windows(phone.len()).any(|w| w == phone.as_bytes()),
            "a phone number in the output of generate"
        );
    }
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary {last:?}: {e}"))
}

/// Rows of a two-column query (both columns cast to text by the query).
async fn rows(env: &Env, sql: &str) -> Vec<(String, String)> {
    let db = Db::connect(&env.url).await.expect("database opens");
    let mut conn = db.reader().await.unwrap();
    let found = regulars_store::verify::violations(&mut conn, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(conn);
    db.close().await;
    found
        .into_iter()
        .map(|l| {
            let (a, b) = l.split_once(": ").unwrap_or((&l, ""));
            (a.to_string(), b.to_string())
        })
        .collect()
}

/// One number from `SELECT CAST(x AS TEXT), ''`.
async fn number(env: &Env, sql: &str) -> f64 {
    let r = rows(env, sql).await;
    r.first()
        .and_then(|(a, _)| a.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{sql}: {r:?}"))
}

async fn count(env: &Env, table: &str) -> u64 {
    number(
        env,
        &format!("SELECT CAST(COUNT(*) AS TEXT), '' FROM {table}"),
    )
    .await as u64
}

/// The generator's phone numbers (docs/generate.md): `171` and eight digits,
/// (offset(seed) + index) mod 10^8, offset from splitmix64.
fn phone_of(seed: u64, index: u64) -> String {
    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
    let offset = mix(seed ^ 0x5EED_0171) % 100_000_000;
    format!("171{:08}", (offset + index) % 100_000_000)
}

/// Everything the database holds on disk (SQLite) or would put in a backup
/// (`pg_dump`), as bytes.
fn database_bytes(env: &Env) -> Vec<u8> {
    match env.backend {
        Backend::Sqlite => {
            let path = regulars_store::db::sqlite_path(&env.url);
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                    all.extend(bytes);
                }
            }
            assert!(all.len() > 100_000, "the SQLite file was read");
            all
        }
        Backend::Postgres => {
            let out = Command::new("pg_dump")
                .arg("--no-owner")
                .arg(format!("--dbname={}", env.url))
                .output()
                .expect("pg_dump must be installed to run this test");
            assert!(out.status.success(), "pg_dump: {}", text(&out.stderr));
            out.stdout
        }
    }
}

/// Start `serve` on a random port; returns the child and the base URL.
fn serve(env: &Env) -> (Child, String) {
    let mut child = regulars(env, &["serve", "--listen", "127.0.0.1:0"])
        .env("REGULARS_JOBS_INTERVAL_SECS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    counts_verify_determinism_and_privacy,
    behaviour_is_realistic,
    bad_input_writes_nothing,
);

async fn counts_verify_determinism_and_privacy(env: Env) {
    let summary = generate(&env, 300, 12, 42);
    for (key, table) in [
        ("members", "members"),
        ("orders", "orders"),
        ("order_items", "order_items"),
        ("refunds", "refunds"),
    ] {
        assert_eq!(
            summary[key].as_u64().unwrap(),
            count(&env, table).await,
            "{key}: {summary}"
        );
    }
    assert!(summary["orders"].as_u64().unwrap() > 1_000, "{summary}");
    assert!(summary["seconds"].as_f64().is_some());
    // Every generated order is imported history that earned nothing.
    let odd = number(
        &env,
        "SELECT CAST(COUNT(*) AS TEXT), '' FROM orders WHERE imported <> 1 OR points_earned <> 0 \
         OR request_hash <> 'generated' OR member_id IS NULL",
    )
    .await;
    assert_eq!(odd, 0.0);
    let refunds_match = number(
        &env,
        "SELECT CAST(COUNT(*) AS TEXT), '' FROM orders o JOIN refunds r ON r.order_id = o.id \
         WHERE o.refunded_fen <> r.amount_fen OR r.amount_fen <= 0 OR r.amount_fen > o.paid_fen",
    )
    .await;
    assert_eq!(refunds_match, 0.0);
    // Tiers follow the 12-month spend, with their history.
    let tiered = number(
        &env,
        "SELECT CAST(COUNT(*) AS TEXT), '' FROM members m JOIN tier_history t ON t.member_id = m.id \
         WHERE t.to_tier = m.tier",
    )
    .await;
    let not_regular = number(
        &env,
        "SELECT CAST(COUNT(*) AS TEXT), '' FROM members WHERE tier <> 'regular'",
    )
    .await;
    assert!(not_regular > 0.0);
    assert_eq!(tiered, not_regular);

    // Every reference holds (the bulk writer does not re-check them row by row).
    for (what, sql) in [
        ("items without order", "SELECT CAST(COUNT(*) AS TEXT), '' FROM order_items i LEFT JOIN orders o ON o.id = i.order_id WHERE o.id IS NULL"),
        ("orders without member or store", "SELECT CAST(COUNT(*) AS TEXT), '' FROM orders o LEFT JOIN members m ON m.id = o.member_id LEFT JOIN stores s ON s.code = o.store_code WHERE m.id IS NULL OR s.code IS NULL"),
        ("refunds without order", "SELECT CAST(COUNT(*) AS TEXT), '' FROM refunds r LEFT JOIN orders o ON o.id = r.order_id WHERE o.id IS NULL"),
        ("consents without member", "SELECT CAST(COUNT(*) AS TEXT), '' FROM member_consents c LEFT JOIN members m ON m.id = c.member_id WHERE m.id IS NULL"),
        ("tags without member", "SELECT CAST(COUNT(*) AS TEXT), '' FROM member_tags t LEFT JOIN members m ON m.id = t.member_id WHERE m.id IS NULL"),
        ("members with unknown home store", "SELECT CAST(COUNT(*) AS TEXT), '' FROM members m LEFT JOIN stores s ON s.code = m.home_store_code WHERE s.code IS NULL"),
    ] {
        assert_eq!(number(&env, sql).await, 0.0, "{what}");
    }
    assert_eq!(
        count(&env, "member_consents").await,
        900,
        "three consents each"
    );

    let verify = run(&env, &["verify"]);
    assert!(
        verify.status.success(),
        "verify: {}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );

    // The same seed on a fresh database: the same history.
    let paid_sql = "SELECT CAST(SUM(paid_fen) AS TEXT), CAST(COUNT(*) AS TEXT) FROM orders";
    let first = rows(&env, paid_sql).await;
    let again = self::env(env.backend).await;
    let summary2 = generate(&again, 300, 12, 42);
    assert_eq!(summary2["orders"], summary["orders"]);
    assert_eq!(summary2["order_items"], summary["order_items"]);
    assert_eq!(rows(&again, paid_sql).await, first);

    // No phone number in the clear, in any writing: one pass collects every
    // `171` + 8 digits in the bytes, none may be a generated number.
    let bytes = database_bytes(&env);
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"CD01"), "sanity: store data is visible");
    assert!(!contains(b"+86171"), "no E.164 171 number at all");
    let mut seen = std::collections::HashSet::new();
    for w in bytes.windows(11) {
        if w.starts_with(b"171") && w.iter().all(u8::is_ascii_digit) {
            seen.insert(w.to_vec());
        }
    }
    for index in 0..300 {
        assert!(
            !seen.contains(phone_of(42, index).as_bytes()),
            "plaintext phone of member {index} found in the database"
        );
    }

    // ... yet each member is found by phone through the blind index.
    let out = run(
        &env,
        &["apikey", "create", "--role", "hq_admin", "--name", "t"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).lines().last().unwrap().trim().to_string();
    let (mut server, base) = serve(&env);
    let client = reqwest::Client::new();
    for index in [0u64, 7, 299] {
        let r = client
            .get(format!(
                "{base}/api/v1/members/lookup?phone={}",
                phone_of(42, index)
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "member {index}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["member_code"], format!("G42-{index}"));
    }
    let _ = server.kill();
    let _ = server.wait();

    // Another seed on the same database adds its own members; running a
    // seed again skips the members it already wrote and writes nothing.
    let other = generate(&env, 50, 12, 43);
    assert_eq!(other["members"], 50);
    assert_eq!(count(&env, "members").await, 350);
    let rerun = generate(&env, 300, 12, 42);
    assert_eq!(rerun["members"], 0, "{rerun}");
    assert_eq!(rerun["orders"], 0, "{rerun}");
    assert_eq!(rerun["skipped_members"], 300, "{rerun}");
    assert_eq!(count(&env, "members").await, 350);
    let verify = run(&env, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

async fn behaviour_is_realistic(env: Env) {
    let summary = generate(&env, 1_500, 24, 7);
    assert_eq!(summary["members"], 1_500);

    // Visit counts are uneven: the top decile visits several times as often
    // as the median member.
    let mut visits: Vec<f64> = rows(
        &env,
        "SELECT CAST(COUNT(*) AS TEXT), '' FROM orders GROUP BY member_id",
    )
    .await
    .iter()
    .map(|(n, _)| n.parse().unwrap())
    .collect();
    visits.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = visits[visits.len() / 2];
    let top = &visits[visits.len() * 9 / 10..];
    let top_mean = top.iter().sum::<f64>() / top.len() as f64;
    assert!(
        top_mean > 4.0 * median,
        "top decile {top_mean} vs median {median}"
    );
    // Some members registered and never came.
    let potential = number(
        &env,
        "SELECT CAST(COUNT(*) AS TEXT), '' FROM members m WHERE NOT EXISTS \
         (SELECT 1 FROM orders o WHERE o.member_id = m.id)",
    )
    .await;
    assert!((40.0..250.0).contains(&potential), "{potential} potential");

    // Some members stop coming: regulars (5+ visits) whose last visit is
    // more than half a year before the end.
    let end_ms = number(
        &env,
        "SELECT CAST(MAX(occurred_at) AS TEXT), '' FROM orders",
    )
    .await;
    let gone = number(
        &env,
        &format!(
            "SELECT CAST(COUNT(*) AS TEXT), '' FROM (SELECT member_id FROM orders GROUP BY member_id \
             HAVING COUNT(*) >= 5 AND MAX(occurred_at) < {}) x",
            end_ms as i64 - 183 * 86_400_000
        ),
    )
    .await;
    assert!(gone >= 30.0, "{gone} regulars stopped coming");

    // Spicier in 成都/重庆 than in 广州/深圳.
    let spice = |cities: &str| {
        format!(
            "SELECT CAST(AVG(CAST(mi.spice_level AS DOUBLE PRECISION)) AS TEXT), '' FROM order_items i \
             JOIN orders o ON o.id = i.order_id JOIN stores s ON s.code = o.store_code \
             JOIN menu_items mi ON mi.sku = i.sku WHERE s.city IN ({cities})"
        )
    };
    let hot = number(&env, &spice("'成都', '重庆'")).await;
    let mild = number(&env, &spice("'广州', '深圳'")).await;
    assert!(
        hot > mild + 0.3,
        "spice 成都/重庆 {hot} vs 广州/深圳 {mild}"
    );

    // Lunch (11–13h) and dinner (17–20h) hold most orders (Asia/Shanghai).
    let hours = rows(
        &env,
        "SELECT CAST(h AS TEXT), CAST(COUNT(*) AS TEXT) FROM \
         (SELECT ((occurred_at / 1000 + 28800) % 86400) / 3600 AS h FROM orders) x GROUP BY h",
    )
    .await;
    let (mut meals, mut all) = (0.0, 0.0);
    for (h, n) in &hours {
        let (h, n): (i64, f64) = (h.parse().unwrap(), n.parse().unwrap());
        all += n;
        if (11..=13).contains(&h) || (17..=20).contains(&h) {
            meals += n;
        }
    }
    assert!(meals / all > 0.8, "meal hours hold {:.2}", meals / all);

    // No allergen dish for an allergic member, and there are some.
    for (allergen, dishes) in [
        ("花生", "'冰粉', '红糖糍粑'"),
        ("海鲜", "'虾滑', '巴沙鱼片'"),
        ("虾", "'虾滑'"),
    ] {
        let allergic = format!("m.taste_json LIKE '%\"allergies\":[\"{allergen}\"]%'");
        let members = number(
            &env,
            &format!("SELECT CAST(COUNT(*) AS TEXT), '' FROM members m WHERE {allergic}"),
        )
        .await;
        let eaten = number(
            &env,
            &format!(
                "SELECT CAST(COUNT(*) AS TEXT), '' FROM order_items i JOIN orders o ON o.id = i.order_id \
                 JOIN members m ON m.id = o.member_id WHERE {allergic} AND i.name IN ({dishes})"
            ),
        )
        .await;
        assert_eq!(eaten, 0.0, "{allergen}: {members} allergic members");
        if allergen == "花生" {
            assert!(members > 10.0, "{members} members allergic to 花生");
        }
    }

    // Pairings: 毛肚 is far more likely on an order with 精品肥牛.
    let share = |cond: &str| {
        format!(
            "SELECT CAST(AVG(CASE WHEN EXISTS (SELECT 1 FROM order_items j WHERE j.order_id = o.id \
             AND j.name = '毛肚') THEN 1.0 ELSE 0.0 END) AS TEXT), '' FROM orders o WHERE {cond}"
        )
    };
    let with = number(
        &env,
        &share(
            "EXISTS (SELECT 1 FROM order_items k WHERE k.order_id = o.id AND k.name = '精品肥牛')",
        ),
    )
    .await;
    let without = number(
        &env,
        &share("NOT EXISTS (SELECT 1 FROM order_items k WHERE k.order_id = o.id AND k.name = '精品肥牛')"),
    )
    .await;
    assert!(
        with > without * 1.3,
        "毛肚 with 肥牛 {with} vs without {without}"
    );

    // New dishes only in the last four months.
    let first_new = number(
        &env,
        "SELECT CAST(MIN(o.occurred_at) AS TEXT), '' FROM order_items i JOIN orders o ON o.id = i.order_id \
         JOIN menu_items mi ON mi.sku = i.sku WHERE mi.is_new = 1",
    )
    .await;
    assert!(first_new > end_ms - 121.0 * 86_400_000.0);

    let verify = run(&env, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

async fn bad_input_writes_nothing(env: Env) {
    for args in [
        ["generate", "--members", "0", "--months", "12"],
        ["generate", "--members", "10", "--months", "0"],
    ] {
        let out = run(&env, &args);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        let flag = if args[2] == "0" {
            "--members"
        } else {
            "--months"
        };
        assert!(
            err.contains(flag) && err.contains("between"),
            "a clear error: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    match env.backend {
        Backend::Sqlite => {
            let path = regulars_store::db::sqlite_path(&env.url);
            assert!(
                !std::path::Path::new(&path).exists(),
                "the SQLite file was not even created"
            );
            assert!(env.dir.is_some());
        }
        Backend::Postgres => {
            let tables = rows(
                &env,
                "SELECT CAST(table_name AS TEXT), '' FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .await;
            assert!(tables.is_empty(), "no tables were made: {tables:?}");
        }
    }
}
