//! Chaos for the campaign outbox: a scheduled campaign to 10,000 members is
//! being sent by `regulars serve` (its job timer) through a real HTTP SMS
//! gateway while a supervisor kills the server with SIGKILL every 1–3 s and
//! starts it again on the same database. Afterwards, on SQLite and on
//! PostgreSQL: every member of the treated arm got exactly one message
//! (one idempotency key, delivered once by the gateway, which like a real
//! provider answers a repeated key with the first message), and no member
//! of the control group got anything.
//!
//! `REGULARS_CAMPAIGN_CRASH_MEMBERS` sets the audience (default 10000).

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use regulars_store::testing::fresh_database;
use regulars_store::Backend;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{admin_key, regulars, start_server_with, tail, Running};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod chaos {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::chaos(regulars_store::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::chaos(regulars_store::Backend::Postgres).await
    }
}

/// The gateway: every request kept; one message per idempotency key.
#[derive(Default)]
struct Gateway {
    /// Idempotency key → the phone it was for.
    messages: Mutex<HashMap<String, String>>,
    requests: AtomicU64,
}

async fn receive(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> String {
    g.requests.fetch_add(1, Ordering::SeqCst);
    // A little provider latency, so the kills land mid-send.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let to = serde_json::from_slice::<Value>(&body).unwrap_or_default()["to"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    g.messages.lock().unwrap().entry(key.clone()).or_insert(to);
    json!({"message_id": key}).to_string()
}

async fn chaos(backend: Backend) {
    let _one = ONE_AT_A_TIME.lock().await;
    let audience: usize = std::env::var("REGULARS_CAMPAIGN_CRASH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (url, _dir) = fresh_database(backend).await;
    let log = std::env::temp_dir().join(format!(
        "regulars-campaign-crash-{backend:?}-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);

    let gateway = Arc::new(Gateway::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}/sms", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/sms", post(receive))
        .with_state(gateway.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let key = admin_key(&url);

    let start = |url: String, log: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = regulars(&url, &["serve", "--listen", "127.0.0.1:0"]);
            cmd.env("REGULARS_JOBS_INTERVAL_SECS", "1")
                .env("REGULARS_SEND_LEASE_SECS", "4")
                .env("REGULARS_SEND_BATCH", "100");
            start_server_with(cmd, &log)
        })
    };
    let running = Running::default();
    let (child, base) = start(url.clone(), log.clone()).await.unwrap();
    running.put(child);
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };

    // HQ's settings: the gateway; quiet hours far from now (the test runs at
    // any hour); an approval line above the audience.
    let r = call(
        reqwest::Method::PUT,
        "/api/v1/campaign-channels",
        json!({"sms": {"url": gateway_url, "secret": "s", "rate_per_second": 5000}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let quiet_from = (chrono::Utc::now() + chrono::Duration::hours(20))
        .with_timezone(&chrono_tz_shanghai())
        .format("%H:00:00")
        .to_string();
    let quiet_until = (chrono::Utc::now() + chrono::Duration::hours(21))
        .with_timezone(&chrono_tz_shanghai())
        .format("%H:00:00")
        .to_string();
    let r = call(
        reqwest::Method::PUT,
        "/api/v1/campaign-settings",
        json!({"delivery": {"quiet_from": quiet_from, "quiet_until": quiet_until,
                            "caps": [{"channel": "sms", "max": 2, "window_days": 7}], "dedup_hours": 24},
               "approval_above": 1_000_000}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // The audience, through the API, 16 at a time.
    let made = Instant::now();
    let phones: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, base, key, phones, next) = (
            client.clone(),
            base.clone(),
            key.clone(),
            phones.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst) as usize;
                if n >= audience {
                    return;
                }
                let phone = format!("1980{n:07}");
                let r = client
                    .post(format!("{base}/api/v1/members"))
                    .bearer_auth(&key)
                    .json(&json!({"phone": phone, "consents": {"sms": true}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let body: Value = r.json().await.unwrap();
                phones.lock().unwrap().insert(
                    body["id"].as_str().unwrap().to_string(),
                    format!("+86{phone}"),
                );
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    println!("[{backend:?}] {audience} members in {:?}", made.elapsed());

    let created = call(
        reqwest::Method::POST,
        "/api/v1/campaigns",
        json!({"name": "万人新品推送", "channels": ["sms"], "control_permille": 100,
               "trigger": {"kind": "scheduled", "send_at": chrono::Utc::now().to_rfc3339()},
               "variants": [{"name": "A", "template": {"zh": "新品上市", "en": "New dishes"}}]}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let campaign = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        reqwest::Method::POST,
        &format!("/api/v1/campaigns/{campaign}/status"),
        json!({"change": "submit"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Kill and restart until every send is settled.
    let sending = Instant::now();
    let mut kills = 0;
    let mut kills_mid_send = 0;
    let settled = loop {
        let pause = Duration::from_millis(1_000 + rand::random::<u64>() % 2_000);
        tokio::time::sleep(pause).await;
        let before = gateway.messages.lock().unwrap().len();
        running.kill();
        kills += 1;
        if before > 0 && before < audience * 8 / 10 {
            kills_mid_send += 1;
        }
        let (child, new_base) = start(url.clone(), log.clone()).await.unwrap();
        running.put(child);
        let sends: Value = client
            .get(format!(
                "{new_base}/api/v1/campaigns/{campaign}/sends?limit=20000"
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sends = sends.as_array().unwrap().clone();
        let open = sends
            .iter()
            .filter(|s| matches!(s["status"].as_str(), Some("pending" | "sending")))
            .count();
        println!(
            "[{backend:?}] kill {kills}: {} entered, {open} open, gateway has {} messages",
            sends.len(),
            gateway.messages.lock().unwrap().len()
        );
        if sends.len() == audience && open == 0 {
            break sends;
        }
        assert!(
            sending.elapsed() < Duration::from_secs(900),
            "not settled in 15 minutes; server log:\n{}",
            tail(&log)
        );
    };
    running.kill();
    assert!(
        kills_mid_send >= 2,
        "the server was killed mid-send only {kills_mid_send} times"
    );

    let phones = phones.lock().unwrap().clone();
    let messages = gateway.messages.lock().unwrap().clone();
    let mut per_phone: HashMap<&str, usize> = HashMap::new();
    for to in messages.values() {
        *per_phone.entry(to.as_str()).or_default() += 1;
    }
    let mut treated = 0;
    let mut keys = HashSet::new();
    for s in &settled {
        let phone = phones[s["member_id"].as_str().unwrap()].as_str();
        if s["arm"] == "control" {
            assert_eq!(s["status"], "control");
            assert_eq!(
                per_phone.get(phone),
                None,
                "a control member was sent a message"
            );
        } else {
            treated += 1;
            assert_eq!(s["status"], "sent", "{s}");
            assert_eq!(
                per_phone.get(phone),
                Some(&1),
                "{phone}: exactly one message"
            );
            let id = s["id"].as_str().unwrap().to_string();
            assert!(
                messages.contains_key(&id),
                "the message carried its send's id"
            );
            keys.insert(id);
        }
    }
    assert_eq!(
        messages.len(),
        treated,
        "no message beyond the treated arm's"
    );
    assert_eq!(keys.len(), treated);
    println!(
        "[{backend:?}] {treated} messages to {treated} treated members, {} control, \
         {} gateway requests (repeats after kills answered once), {kills} kills, {:?}",
        audience - treated,
        gateway.requests.load(Ordering::SeqCst),
        sending.elapsed()
    );
    let _ = std::fs::remove_file(&log);
}

fn chrono_tz_shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}
