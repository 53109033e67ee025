//! The loyalty calls of API.md, end to end: orders and their replays,
//! claims, refunds, redemptions, the points and tier views, earning rules and
//! the preview, transfers, adjustments, and the expiry and tier-review jobs.
//! Every test ends with `verify` finding the ledger sound.

use crate::helpers::{random_phone, Reply, TestApp};
use crate::on_both_backends;
use chrono::{DateTime, Duration, FixedOffset, Months, Utc};
use regulars_core::access::Role;
use serde_json::{json, Value};

on_both_backends!(
    order_answers_with_points_explanation_and_balance,
    concurrent_identical_orders_count_once,
    a_burst_of_orders_earns_as_if_sent_one_after_another,
    a_burst_under_a_daily_cap_is_capped_once,
    unmatched_phone_order_is_claimed_by_receipt_code,
    refunds_reverse_points_in_proportion,
    redemptions_are_idempotent_and_never_overdraw,
    points_view_lists_expiring_soonest_first_and_entries_newest_first,
    tier_view_reports_spend_and_distance,
    earning_rules_apply_to_orders_with_explanations,
    preview_predicts_what_the_order_earns,
    transfers_move_points_and_keep_the_ledger_sound,
    adjustments_respect_the_role_limit,
    expiry_job_removes_expired_points_once,
    tier_review_downgrades_only_after_grace,
);

// ---------------------------------------------------------------------------
// Helpers (shared with regressions.rs and access.rs)
// ---------------------------------------------------------------------------

/// The chain's wall clock (Asia/Shanghai has no daylight saving).
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// An RFC 3339 time in China time, `d` before now.
pub fn ago(d: Duration) -> String {
    (Utc::now() - d).with_timezone(&cst()).to_rfc3339()
}

/// Unix ms of an RFC 3339 time.
pub fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("rfc3339")
        .timestamp_millis()
}

/// `at_ms` plus whole months, the way lots get their expiry.
pub fn plus_months(at_ms: i64, months: u32) -> i64 {
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap()
        .checked_add_months(Months::new(months))
        .unwrap()
        .timestamp_millis()
}

/// `YYYY-MM-DD` of a unix-ms instant in China time.
pub fn local_date(at_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap()
        .with_timezone(&cst())
        .date_naive()
        .to_string()
}

/// One order line.
pub fn dish(sku: &str, name: &str, quantity: i64, unit_price_fen: i64) -> Value {
    json!({"sku": sku, "name": name, "category": "菜品", "quantity": quantity,
        "unit_price_fen": unit_price_fen})
}

/// A dine-in order at CD01.
pub fn order_json(pos: &str, member: Option<&str>, at: &str, items: Value, paid_fen: i64) -> Value {
    let mut body = json!({"store_code": "CD01", "pos_order_id": pos, "occurred_at": at,
        "channel": "dine_in", "items": items, "paid_fen": paid_fen});
    if let Some(m) = member {
        body["member_id"] = json!(m);
    }
    body
}

pub async fn order(app: &TestApp, body: Value) -> Reply {
    app.post("/api/v1/orders", body).await
}

/// A one-dish order of `fen`, paid in full, an hour ago.
pub async fn simple_order(app: &TestApp, pos: &str, member: &str, fen: i64) -> Reply {
    let r = order(
        app,
        order_json(
            pos,
            Some(member),
            &ago(Duration::hours(1)),
            json!([dish("D001", "毛肚", 1, fen)]),
            fen,
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r
}

/// A request with an optional `Idempotency-Key` header.
pub async fn keyed_as(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    idempotency_key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app
        .client
        .request(method, format!("{}{}", app.base, path))
        .bearer_auth(key);
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Reply::read(req.send().await.expect("request")).await
}

/// A POST as HQ admin with an `Idempotency-Key`.
pub async fn keyed(app: &TestApp, path: &str, idempotency_key: &str, body: Value) -> Reply {
    keyed_as(
        app,
        &app.admin_key,
        "POST",
        path,
        Some(idempotency_key),
        Some(body),
    )
    .await
}

pub async fn redeem(app: &TestApp, member: &str, key: &str, points: i64) -> Reply {
    keyed(
        app,
        &format!("/api/v1/members/{member}/redemptions"),
        key,
        json!({"points": points, "store_code": "CD01"}),
    )
    .await
}

pub async fn refund(app: &TestApp, pos: &str, refund_id: &str, amount_fen: i64) -> Reply {
    app.post(
        &format!("/api/v1/orders/CD01/{pos}/refunds"),
        json!({"refund_id": refund_id, "amount_fen": amount_fen}),
    )
    .await
}

pub fn replayed(r: &Reply) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// The store CD01 (created once per app) and a new member of it.
pub async fn member(app: &TestApp) -> String {
    app.create_store("CD01", "成都").await;
    let r = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

pub async fn points_view(app: &TestApp, member: &str) -> Value {
    let r = app.get(&format!("/api/v1/members/{member}/points")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

pub async fn balance(app: &TestApp, member: &str) -> i64 {
    points_view(app, member).await["balance"].as_i64().unwrap()
}

pub async fn tier_view(app: &TestApp, member: &str) -> Value {
    let r = app.get(&format!("/api/v1/members/{member}/tier")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// `(kind, points)` of the member's entries, newest first.
pub async fn entries(app: &TestApp, member: &str) -> Vec<(String, i64)> {
    points_view(app, member).await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["points"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub fn kinds(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(k, p)| (k.to_string(), *p)).collect()
}

pub async fn assert_ledger_sound(app: &TestApp) {
    let report = regulars_server::app::verify::verify(&app.regulars)
        .await
        .expect("verify");
    assert!(
        report.ok(),
        "ledger invariants broken: {:?}",
        report.violations
    );
}

pub async fn run_jobs(app: &TestApp, at_ms: i64) -> regulars_server::app::jobs::JobReport {
    regulars_server::app::jobs::run_due(&app.regulars, at_ms)
        .await
        .expect("jobs")
}

pub async fn put_rules(app: &TestApp, rules: Value) -> Reply {
    app.send(
        "PUT",
        "/api/v1/earning-rules",
        Some(&app.admin_key.clone()),
        Some(json!({"rules": rules, "note": "test"})),
    )
    .await
}

fn rule_ids(explanation: &Value) -> Vec<String> {
    explanation
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rule"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

async fn order_answers_with_points_explanation_and_balance(app: TestApp) {
    let m = member(&app).await;
    let mut maodu = dish("D001", "毛肚", 2, 4_800);
    maodu["discount_fen"] = json!(600);
    let body = order_json(
        "P1",
        Some(&m),
        &ago(Duration::hours(2)),
        json!([maodu, dish("D002", "酸梅汤", 1, 850)]),
        9_850,
    );
    let first = order(&app, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!replayed(&first));
    let b = &first.body;
    assert!(b["order_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(b["member_id"], m.as_str());
    assert_eq!(b["points_earned"], 98, "floor(9850 / 100) at ×1.0");
    assert_eq!(
        b["explanation"],
        json!([{"rule": "base", "text": "消费 ¥98 × 1 分/元 = 98", "points": 98}])
    );
    assert_eq!(b["balance"], 98);
    assert_eq!(b["tier"], "regular");
    assert_eq!(b["receipt_code"].as_str().unwrap().len(), 10);

    // The same body again: the first answer, once.
    let again = order(&app, body.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(replayed(&again), "Idempotent-Replayed: true");
    assert_eq!(again.body, first.body);

    // The same key with another body.
    let mut other = body.clone();
    other["paid_fen"] = json!(9_000);
    let conflict = order(&app, other).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_eq!(conflict.code(), "idempotency_conflict");
    assert_eq!(balance(&app, &m).await, 98);

    // Without a member: stored, earns nothing.
    let anon = order(
        &app,
        order_json(
            "P2",
            None,
            &ago(Duration::hours(1)),
            json!([dish("D001", "毛肚", 1, 4_800)]),
            4_800,
        ),
    )
    .await;
    assert_eq!(anon.status, 201, "{}", anon.body);
    assert!(anon.body["member_id"].is_null());
    assert_eq!(anon.body["points_earned"], 0);
    assert!(anon.body["balance"].is_null());

    // Unknown member and unknown store are refused, and store nothing.
    let mut bad = order_json(
        "P3",
        Some("01234567-89ab-7def-8123-456789abcdef"),
        &ago(Duration::hours(1)),
        json!([dish("D001", "毛肚", 1, 4_800)]),
        4_800,
    );
    let r = order(&app, bad.clone()).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "unknown_member");
    bad["member_id"] = json!(m);
    bad["store_code"] = json!("NOPE");
    let r = order(&app, bad.clone()).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "unknown_store");
    bad["store_code"] = json!("CD01");
    bad["occurred_at"] = json!("2026-03-04 12:00");
    let r = order(&app, bad).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "invalid_date");

    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 98);
    assert_eq!(view["owed"], 0);
    let e = &view["entries"].as_array().unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["kind"], "earn");
    assert_eq!(e[0]["points"], 98);
    assert_eq!(e[0]["order_ref"], "CD01/P1");
    assert!(e[0]["reason"].as_str().unwrap().contains("98"));
    assert_ledger_sound(&app).await;
}

async fn concurrent_identical_orders_count_once(app: TestApp) {
    let m = member(&app).await;
    let body = order_json(
        "RACE-1",
        Some(&m),
        &ago(Duration::hours(1)),
        json!([dish("D001", "毛肚", 3, 4_800)]),
        14_400,
    );
    let send = || order(&app, body.clone());
    let (a, b, c, d, e) = tokio::join!(send(), send(), send(), send(), send());
    let replies = [a, b, c, d, e];
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 200, 200, 201], "one effect");
    let first = replies.iter().find(|r| r.status == 201).unwrap();
    for r in &replies {
        assert_eq!(r.body, first.body, "every answer is the first one");
        assert_eq!(replayed(r), r.status == 200);
    }
    assert_eq!(first.body["points_earned"], 144);
    assert_eq!(balance(&app, &m).await, 144, "counted once");
    assert_eq!(entries(&app, &m).await, kinds(&[("earn", 144)]));
    assert_ledger_sound(&app).await;
}

/// Orders that arrive together are written in one batch (group commit, one
/// statement per table). What each earns must be what it would have earned
/// sent one after another: the fifth ¥100 order crosses silver and earns at
/// regular, the later ones at silver; a member owing points from a refund
/// pays them back from the first earnings; duplicates count once.
async fn a_burst_of_orders_earns_as_if_sent_one_after_another(app: TestApp) {
    let a = member(&app).await;
    let b = member(&app).await;
    // C owes 100 points: earned, spent, then the order was refunded.
    let c = member(&app).await;
    simple_order(&app, "C-0", &c, 10_000).await;
    assert_eq!(redeem(&app, &c, "c-spend", 100).await.status, 201);
    let r = refund(&app, "C-0", "C-0-R", 10_000).await;
    assert_eq!(r.body["shortfall"], 100, "{}", r.body);
    assert_eq!(points_view(&app, &c).await["owed"], 100);

    let at = ago(Duration::hours(2));
    let hundred = |pos: String, m: Option<&str>| {
        order_json(
            &pos,
            m,
            &at,
            json!([dish("D001", "毛肚", 1, 10_000)]),
            10_000,
        )
    };
    let mut bodies = Vec::new();
    for n in 0..12 {
        bodies.push(hundred(format!("A-{n}"), Some(&a)));
        bodies.push(hundred(format!("B-{n}"), Some(&b)));
    }
    for n in 0..3 {
        bodies.push(hundred(format!("WALKIN-{n}"), None));
    }
    // The same order twice in the burst.
    bodies.push(hundred("A-0".into(), Some(&a)));
    let replies = futures_util::future::join_all(bodies.into_iter().map(|b| order(&app, b))).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let replayed_count = replies
        .iter()
        .filter(|r| r.status == 200 && replayed(r))
        .count();
    assert_eq!(
        (created, replayed_count),
        (27, 1),
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.body))
            .collect::<Vec<_>>()
    );
    let a0: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.body["order_id"].is_string())
        .filter(|r| r.body == replies[0].body)
        .collect();
    assert_eq!(a0.len(), 2, "the duplicate got the first answer");
    assert_batches_were_set_based(&app);
    // C's burst: a member in debt is written order by order inside the batch.
    let c_burst = (1..=4).map(|n| order(&app, hundred(format!("C-{n}"), Some(&c))));
    let c_replies = futures_util::future::join_all(c_burst).await;
    assert!(
        c_replies.iter().all(|r| r.status == 201),
        "{:?}",
        c_replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );

    for m in [&a, &b] {
        // 5 × 100 at regular (the fifth crosses ¥500) + 7 × 120 at silver.
        assert_eq!(balance(&app, m).await, 5 * 100 + 7 * 120, "member {m}");
        let t = tier_view(&app, m).await;
        assert_eq!(t["tier"], "silver");
        assert_eq!(t["qualifying_spend_fen"], 120_000);
        let history = t["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "one upgrade: {history:?}");
        assert_eq!(history[0]["qualifying_spend_fen"], 50_000);
        let mut earned: Vec<i64> = entries(&app, m)
            .await
            .into_iter()
            .map(|(kind, points)| {
                assert_eq!(kind, "earn");
                points
            })
            .collect();
        earned.sort();
        assert_eq!(earned, [vec![100; 5], vec![120; 7]].concat());
    }
    let c_view = points_view(&app, &c).await;
    assert_eq!(c_view["owed"], 0, "the shortfall was paid back once");
    assert_eq!(c_view["balance"], 4 * 100 - 100);
    // One answer per new order, each with the balance after it.
    let mut a_balances: Vec<i64> = replies
        .iter()
        .filter(|r| r.status == 201 && r.body["member_id"] == json!(a))
        .map(|r| r.body["balance"].as_i64().unwrap())
        .collect();
    a_balances.sort();
    assert_eq!(
        a_balances,
        [100, 200, 300, 400, 500, 620, 740, 860, 980, 1100, 1220, 1340]
    );
    assert_eq!(app.outbox_count("order.accrued").await, 1 + 24 + 4);
    assert_eq!(app.outbox_count("tier.changed").await, 2);
    assert_batches_were_set_based(&app);
    assert_ledger_sound(&app).await;
}

/// The burst really went through the batch path (not one by one), and no
/// batch failed and had to be split.
fn assert_batches_were_set_based(app: &TestApp) {
    use std::sync::atomic::Ordering::Relaxed;
    let lanes = app.regulars.order_lanes.get().expect("lanes started");
    let counts = lanes.counts();
    assert!(counts.set_based.load(Relaxed) >= 1, "{counts:?}");
    assert_eq!(counts.split.load(Relaxed), 0, "{counts:?}");
}

/// A daily cap counts the points of earlier orders of the same burst.
async fn a_burst_under_a_daily_cap_is_capped_once(app: TestApp) {
    let m = member(&app).await;
    let put = put_rules(
        &app,
        json!([{"id": "day_cap", "name": "每日上限 1000 分",
            "effect": {"kind": "cap", "per_day": 1000}}]),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let at = ago(Duration::minutes(30));
    let bodies = (0..12).map(|n| {
        order_json(
            &format!("CAP-{n}"),
            Some(&m),
            &at,
            json!([dish("D001", "毛肚", 1, 10_000)]),
            10_000,
        )
    });
    let replies = futures_util::future::join_all(bodies.map(|b| order(&app, b))).await;
    assert!(replies.iter().all(|r| r.status == 201));
    let mut earned: Vec<i64> = replies
        .iter()
        .map(|r| r.body["points_earned"].as_i64().unwrap())
        .collect();
    earned.sort();
    // 5 × 100, then 120 each until the day's 1,000 (620, 740, 860, 980),
    // 20 more, then nothing.
    assert_eq!(
        earned,
        [vec![0, 0, 20], vec![100; 5], vec![120; 4]].concat()
    );
    assert_eq!(balance(&app, &m).await, 1000);
    assert_batches_were_set_based(&app);
    assert_ledger_sound(&app).await;
}

async fn unmatched_phone_order_is_claimed_by_receipt_code(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let phone = random_phone();
    let mut body = order_json(
        "WALKIN-1",
        None,
        &ago(Duration::hours(3)),
        json!([dish("D001", "毛肚", 2, 6_800)]),
        13_600,
    );
    body["member_phone"] = json!(phone);
    let r = order(&app, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.body["member_id"].is_null(),
        "no member has this phone yet"
    );
    assert_eq!(r.body["points_earned"], 0);
    let code = r.body["receipt_code"].as_str().unwrap().to_string();

    let joined = app
        .create_member(json!({"phone": phone, "home_store": "CD01"}))
        .await;
    assert_eq!(joined.status, 201);
    let m = joined.body["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&app, &m).await, 0);

    let claim = app
        .post(
            &format!("/api/v1/members/{m}/claims"),
            json!({"receipt_code": code.to_lowercase()}),
        )
        .await;
    assert_eq!(claim.status, 200, "{}", claim.body);
    assert_eq!(claim.body["order_id"], r.body["order_id"]);
    assert_eq!(claim.body["points_earned"], 136);
    assert_eq!(claim.body["balance"], 136);
    assert_eq!(claim.body["tier"], "regular");
    assert_eq!(rule_ids(&claim.body["explanation"]), vec!["base"]);

    let twice = app
        .post(
            &format!("/api/v1/members/{m}/claims"),
            json!({"receipt_code": code}),
        )
        .await;
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert_eq!(twice.code(), "order_already_claimed");
    let someone_else = member(&app).await;
    let r = app
        .post(
            &format!("/api/v1/members/{someone_else}/claims"),
            json!({"receipt_code": code}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = app
        .post(
            &format!("/api/v1/members/{m}/claims"),
            json!({"receipt_code": "ZZZZZZZZZZ"}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "receipt_not_found");

    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 136, "earned once");
    assert_eq!(view["entries"][0]["kind"], "earn");
    assert_eq!(view["entries"][0]["order_ref"], "CD01/WALKIN-1");
    assert_eq!(tier_view(&app, &m).await["qualifying_spend_fen"], 13_600);
    assert_eq!(balance(&app, &someone_else).await, 0);

    // Past the 7-day window.
    let old = order(
        &app,
        order_json(
            "WALKIN-OLD",
            None,
            &ago(Duration::days(8)),
            json!([dish("D001", "毛肚", 1, 5_000)]),
            5_000,
        ),
    )
    .await;
    let old_code = old.body["receipt_code"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/members/{m}/claims"),
            json!({"receipt_code": old_code}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.code(), "claim_window_passed");

    // Two members claim one receipt at the same moment: one earns.
    let fresh = order(
        &app,
        order_json(
            "WALKIN-2",
            None,
            &ago(Duration::hours(1)),
            json!([dish("D001", "毛肚", 1, 5_000)]),
            5_000,
        ),
    )
    .await;
    let fresh_code = fresh.body["receipt_code"].as_str().unwrap().to_string();
    let (claim_m, claim_other) = (
        format!("/api/v1/members/{m}/claims"),
        format!("/api/v1/members/{someone_else}/claims"),
    );
    let (x, y) = tokio::join!(
        app.post(&claim_m, json!({"receipt_code": fresh_code})),
        app.post(&claim_other, json!({"receipt_code": fresh_code})),
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", x.body, y.body);
    assert_eq!(
        balance(&app, &m).await + balance(&app, &someone_else).await,
        136 + 50
    );
    assert_ledger_sound(&app).await;
}

async fn refunds_reverse_points_in_proportion(app: TestApp) {
    let m = member(&app).await;
    simple_order(&app, "P1", &m, 12_800).await;
    assert_eq!(balance(&app, &m).await, 128);

    let half = refund(&app, "P1", "RF-1", 6_400).await;
    assert_eq!(half.status, 201, "{}", half.body);
    assert_eq!(
        half.body,
        json!({"points_reversed": 64, "shortfall": 0, "balance": 64})
    );
    let again = refund(&app, "P1", "RF-1", 6_400).await;
    assert_eq!(again.status, 200);
    assert!(replayed(&again));
    assert_eq!(again.body, half.body);
    let other = refund(&app, "P1", "RF-1", 100).await;
    assert_eq!(other.status, 409);
    assert_eq!(other.code(), "idempotency_conflict");

    let too_much = refund(&app, "P1", "RF-2", 6_401).await;
    assert_eq!(too_much.status, 422, "{}", too_much.body);
    assert_eq!(too_much.code(), "refund_exceeds_order");
    assert_eq!(balance(&app, &m).await, 64);

    let rest = refund(&app, "P1", "RF-2", 6_400).await;
    assert_eq!(rest.status, 201, "{}", rest.body);
    assert_eq!(
        rest.body,
        json!({"points_reversed": 64, "shortfall": 0, "balance": 0})
    );
    let r = refund(&app, "NOPE", "RF-3", 100).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "order_not_found");
    let r = refund(&app, "P1", "RF-4", 0).await;
    assert_eq!(r.status, 422);

    // Thirds of an odd amount: floors on the running total add up to the whole.
    simple_order(&app, "P2", &m, 999).await;
    let mut reversed = 0;
    for (i, part) in [333, 333, 333].into_iter().enumerate() {
        let r = refund(&app, "P2", &format!("THIRD-{i}"), part).await;
        assert_eq!(r.status, 201, "{}", r.body);
        reversed += r.body["points_reversed"].as_i64().unwrap();
    }
    assert_eq!(reversed, 9);
    // A whole refund in one go.
    simple_order(&app, "P3", &m, 5_000).await;
    let whole = refund(&app, "P3", "WHOLE", 5_000).await;
    assert_eq!(whole.body["points_reversed"], 50);
    assert_eq!(whole.body["balance"], 0);

    let e = entries(&app, &m).await;
    assert_eq!(
        e,
        kinds(&[
            ("reverse", -50),
            ("earn", 50),
            ("reverse", -3),
            ("reverse", -3),
            ("reverse", -3),
            ("earn", 9),
            ("reverse", -64),
            ("reverse", -64),
            ("earn", 128),
        ])
    );
    assert_eq!(points_view(&app, &m).await["owed"], 0);
    assert_ledger_sound(&app).await;
}

async fn redemptions_are_idempotent_and_never_overdraw(app: TestApp) {
    let m = member(&app).await;
    simple_order(&app, "P1", &m, 20_000).await;
    let path = format!("/api/v1/members/{m}/redemptions");

    let first = redeem(&app, &m, "K1", 50).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(first.body["redemption_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(first.body["points"], 50);
    assert_eq!(first.body["balance"], 150);
    let again = redeem(&app, &m, "K1", 50).await;
    assert_eq!(again.status, 200);
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    let conflict = redeem(&app, &m, "K1", 60).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.code(), "idempotency_conflict");

    let short = redeem(&app, &m, "K2", 151).await;
    assert_eq!(short.status, 422, "{}", short.body);
    assert_eq!(short.code(), "insufficient_points");
    assert_eq!(balance(&app, &m).await, 150, "nothing deducted");
    assert_eq!(entries(&app, &m).await.len(), 2);

    let no_key = keyed_as(
        &app,
        &app.admin_key,
        "POST",
        &path,
        None,
        Some(json!({"points": 1, "store_code": "CD01"})),
    )
    .await;
    assert_eq!(no_key.status, 422);
    assert_eq!(no_key.code(), "idempotency_key_required");
    let r = keyed(
        &app,
        &path,
        "K9",
        json!({"points": 1, "store_code": "NOPE"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "unknown_store");
    let r = redeem(&app, &m, "K8", 0).await;
    assert_eq!(r.status, 422);

    // A refused key was not used up: the same key may be tried again.
    let all = redeem(&app, &m, "K2", 150).await;
    assert_eq!(all.status, 201, "{}", all.body);
    assert_eq!(all.body["balance"], 0);

    // Five identical redemptions at once: one effect.
    simple_order(&app, "P2", &m, 10_000).await;
    let send = || redeem(&app, &m, "K3", 40);
    let (a, b, c, d, e) = tokio::join!(send(), send(), send(), send(), send());
    let replies = [a, b, c, d, e];
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 200, 200, 201]);
    for r in &replies {
        assert_eq!(r.body, replies[0].body);
    }
    assert_eq!(balance(&app, &m).await, 60);
    let before = entries(&app, &m).await;

    // Five different redemptions of 25 at once against 60 points: two pass.
    let (a, b, c, d, e) = tokio::join!(
        redeem(&app, &m, "K4", 25),
        redeem(&app, &m, "K5", 25),
        redeem(&app, &m, "K6", 25),
        redeem(&app, &m, "K7", 25),
        redeem(&app, &m, "K8", 25),
    );
    let mut statuses: Vec<u16> = [a, b, c, d, e].iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, vec![201, 201, 422, 422, 422]);
    assert_eq!(balance(&app, &m).await, 10);
    assert_eq!(entries(&app, &m).await.len(), before.len() + 2);
    assert_eq!(
        before,
        kinds(&[
            ("redeem", -40),
            ("earn", 100),
            ("redeem", -150),
            ("redeem", -50),
            ("earn", 200)
        ])
    );
    assert_ledger_sound(&app).await;
}

async fn points_view_lists_expiring_soonest_first_and_entries_newest_first(app: TestApp) {
    let m = member(&app).await;
    let at_a = ago(Duration::days(3));
    let at_b = ago(Duration::days(2));
    // ¥2,000 reaches gold; this order still earns (and expires) as regular.
    let a = order(
        &app,
        order_json(
            "A",
            Some(&m),
            &at_a,
            json!([dish("D001", "宴席套餐", 1, 200_000)]),
            200_000,
        ),
    )
    .await;
    assert_eq!(a.body["points_earned"], 2_000);
    assert_eq!(a.body["tier"], "gold");
    let b = order(
        &app,
        order_json(
            "B",
            Some(&m),
            &at_b,
            json!([dish("D001", "毛肚", 1, 10_000)]),
            10_000,
        ),
    )
    .await;
    assert_eq!(b.body["points_earned"], 150, "gold ×1.5");
    assert_eq!(
        b.body["explanation"][1],
        json!({"rule": "tier", "text": "金卡 ×1.5: +50", "points": 50})
    );
    let adj = keyed(
        &app,
        &format!("/api/v1/members/{m}/adjustments"),
        "ADJ-1",
        json!({"points": 5, "reason": "上菜慢致歉", "kind": "compensation"}),
    )
    .await;
    assert_eq!(adj.status, 201, "{}", adj.body);
    assert_eq!(redeem(&app, &m, "R1", 10).await.status, 201);

    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 2_145);
    assert_eq!(view["owed"], 0);
    let expiring = view["expiring"].as_array().unwrap();
    let points: Vec<i64> = expiring
        .iter()
        .map(|e| e["points"].as_i64().unwrap())
        .collect();
    assert_eq!(
        points,
        vec![1_990, 150, 5],
        "the redemption took from the lot expiring soonest: {expiring:?}"
    );
    assert_eq!(expiring[0]["on"], local_date(plus_months(ms(&at_a), 12)));
    assert_eq!(expiring[1]["on"], local_date(plus_months(ms(&at_b), 18)));
    let dates: Vec<&str> = expiring.iter().map(|e| e["on"].as_str().unwrap()).collect();
    let mut sorted = dates.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(dates, sorted, "soonest first, one row per date");

    let listed = view["entries"].as_array().unwrap();
    let got: Vec<(String, i64)> = listed
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["points"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        kinds(&[
            ("redeem", -10),
            ("compensation", 5),
            ("earn", 150),
            ("earn", 2_000)
        ])
    );
    assert_eq!(listed[2]["order_ref"], "CD01/B");
    assert_eq!(listed[3]["order_ref"], "CD01/A");
    assert!(listed[0]["order_ref"].is_null());
    assert!(DateTime::parse_from_rfc3339(listed[3]["at"].as_str().unwrap()).is_ok());
    assert!(view["next_before"].is_null());

    // Pages of two, newest first, every entry once.
    let page1 = app
        .get(&format!("/api/v1/members/{m}/points?limit=2"))
        .await;
    assert_eq!(page1.body["entries"].as_array().unwrap().len(), 2);
    let before = page1.body["next_before"].as_str().unwrap().to_string();
    let page2 = app
        .get(&format!(
            "/api/v1/members/{m}/points?limit=2&before={before}"
        ))
        .await;
    let ids: Vec<&Value> = page1.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2.body["entries"].as_array().unwrap())
        .map(|e| &e["id"])
        .collect();
    let all: Vec<&Value> = listed.iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, all);
    assert!(page2.body["next_before"].is_null());
    let bad = app
        .get(&format!("/api/v1/members/{m}/points?limit=0"))
        .await;
    assert_eq!(bad.status, 422);
    assert_ledger_sound(&app).await;
}

async fn tier_view_reports_spend_and_distance(app: TestApp) {
    let m = member(&app).await;
    let t = tier_view(&app, &m).await;
    assert_eq!(t["tier"], "regular");
    assert_eq!(t["qualifying_spend_fen"], 0);
    assert_eq!(t["next_tier"], "silver");
    assert_eq!(t["spend_to_next_fen"], 50_000);
    assert_eq!(t["benefits"]["multiplier_permille"], 1000);
    assert!(t["floor"].is_null());
    assert_eq!(t["downgrade_pending"], false);
    assert_eq!(t["history"], json!([]));

    simple_order(&app, "P1", &m, 30_000).await;
    let t = tier_view(&app, &m).await;
    assert_eq!(t["qualifying_spend_fen"], 30_000);
    assert_eq!(t["spend_to_next_fen"], 20_000);

    let up = simple_order(&app, "P2", &m, 25_000).await;
    assert_eq!(up.body["tier"], "silver");
    let t = tier_view(&app, &m).await;
    assert_eq!(t["tier"], "silver");
    assert_eq!(t["qualifying_spend_fen"], 55_000);
    assert_eq!(t["next_tier"], "gold");
    assert_eq!(t["spend_to_next_fen"], 145_000);
    assert_eq!(t["benefits"]["multiplier_permille"], 1200);
    let history = t["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["from"], "regular");
    assert_eq!(history[0]["to"], "silver");
    assert_eq!(history[0]["qualifying_spend_fen"], 55_000);

    // A refund takes its share out of the qualifying spend; the tier waits
    // for the review.
    assert_eq!(refund(&app, "P2", "RF-1", 5_000).await.status, 201);
    let t = tier_view(&app, &m).await;
    assert_eq!(t["qualifying_spend_fen"], 50_000);
    assert_eq!(t["tier"], "silver");
    assert_eq!(t["spend_to_next_fen"], 150_000);

    // A manual floor lifts the member at once.
    let until = (Utc::now().with_timezone(&cst()).date_naive() + Duration::days(30)).to_string();
    let floor = app
        .send(
            "PUT",
            &format!("/api/v1/members/{m}/tier-floor"),
            Some(&app.admin_key.clone()),
            Some(json!({"tier": "gold", "until": until, "reason": "投诉补偿"})),
        )
        .await;
    assert_eq!(floor.status, 200, "{}", floor.body);
    assert_eq!(floor.body["tier"], "gold");
    assert_eq!(floor.body["floor"], "gold");
    assert!(floor.body["floor_until"].as_str().is_some());
    let past = app
        .send(
            "PUT",
            &format!("/api/v1/members/{m}/tier-floor"),
            Some(&app.admin_key.clone()),
            Some(json!({"tier": "gold", "until": "2020-01-01", "reason": "x"})),
        )
        .await;
    assert_eq!(past.status, 422);
    assert_eq!(
        tier_view(&app, &m).await["history"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_ledger_sound(&app).await;
}

async fn earning_rules_apply_to_orders_with_explanations(app: TestApp) {
    let m = member(&app).await;
    let rules = json!([
        {"id": "afternoon_x2", "name": "工作日下午茶 ×2",
         "scope": {"weekdays": [1, 2, 3, 4, 5], "time_from": "14:00", "time_to": "17:00"},
         "effect": {"kind": "multiplier", "permille": 2000}},
        {"id": "online_10", "name": "线上 +10%", "scope": {"channels": ["online"]},
         "effect": {"kind": "multiplier", "permille": 1100}},
        {"id": "new_dish", "name": "新品", "effect": {"kind": "product_bonus", "skus": ["N1"], "permille": 2000}}
    ]);
    let put = put_rules(&app, rules.clone()).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let version = put.body["version"].as_i64().unwrap();
    assert!(version >= 1);
    assert_eq!(put.body["summaries"].as_array().unwrap().len(), 3);
    let got = app.get("/api/v1/earning-rules").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["version"], version);
    assert_eq!(got.body["rules"][0]["id"], "afternoon_x2");
    assert_eq!(got.body["rules"].as_array().unwrap().len(), 3);

    // A rule set that does not validate changes nothing.
    let bad = put_rules(
        &app,
        json!([{"id": "x", "name": "x", "scope": {"time_from": "25:00"},
            "effect": {"kind": "multiplier", "permille": 2000}}]),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        app.get("/api/v1/earning-rules").await.body["version"],
        version
    );

    let sixty = || json!([dish("D001", "毛肚", 1, 6_000)]);
    // Wednesday 2026-03-04, Saturday 2026-03-07.
    let cases = [
        (
            "WED-1500",
            "2026-03-04T15:00:00+08:00",
            "dine_in",
            120,
            vec!["base", "afternoon_x2"],
        ),
        (
            "WED-1400",
            "2026-03-04T14:00:00+08:00",
            "dine_in",
            120,
            vec!["base", "afternoon_x2"],
        ),
        (
            "WED-1700",
            "2026-03-04T17:00:00+08:00",
            "dine_in",
            60,
            vec!["base"],
        ),
        (
            "WED-1800",
            "2026-03-04T18:00:00+08:00",
            "dine_in",
            60,
            vec!["base"],
        ),
        (
            "SAT-1500",
            "2026-03-07T15:00:00+08:00",
            "dine_in",
            60,
            vec!["base"],
        ),
        (
            "WED-1800-ONLINE",
            "2026-03-04T18:00:00+08:00",
            "online",
            66,
            vec!["base", "online_10"],
        ),
        // 15:00 in Shanghai written in UTC is still the afternoon.
        (
            "WED-0700Z",
            "2026-03-04T07:00:00Z",
            "dine_in",
            120,
            vec!["base", "afternoon_x2"],
        ),
    ];
    let mut total = 0;
    for (pos, at, channel, points, rules) in cases {
        let mut body = order_json(pos, Some(&m), at, sixty(), 6_000);
        body["channel"] = json!(channel);
        let r = order(&app, body).await;
        assert_eq!(r.status, 201, "{pos}: {}", r.body);
        assert_eq!(r.body["points_earned"], points, "{pos}: {}", r.body);
        assert_eq!(rule_ids(&r.body["explanation"]), rules, "{pos}");
        let sum: i64 = r.body["explanation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["points"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, points, "{pos}: the lines add up");
        total += points;
    }
    let r = order(
        &app,
        order_json(
            "WED-1500-TEXT",
            Some(&m),
            "2026-03-04T15:30:00+08:00",
            sixty(),
            6_000,
        ),
    )
    .await;
    assert_eq!(
        r.body["explanation"][1],
        json!({"rule": "afternoon_x2", "text": "工作日下午茶 ×2 ×2: +60", "points": 60})
    );
    total += 120;

    // The new dish earns double on its own amount only (Saturday evening).
    let r = order(
        &app,
        order_json(
            "NEW-DISH",
            Some(&m),
            "2026-03-07T19:00:00+08:00",
            json!([
                dish("N1", "麻辣牛肉", 1, 3_000),
                dish("D001", "毛肚", 1, 3_000)
            ]),
            6_000,
        ),
    )
    .await;
    assert_eq!(r.body["points_earned"], 90, "{}", r.body);
    assert_eq!(rule_ids(&r.body["explanation"]), vec!["base", "new_dish"]);
    assert!(r.body["explanation"][1]["text"]
        .as_str()
        .unwrap()
        .contains("麻辣牛肉"));
    total += 90;
    assert_eq!(balance(&app, &m).await, total);

    // That order took the member past ¥500 in March: silver from now on.
    assert_eq!(r.body["tier"], "silver");

    // Back to no rules: the default formula again (a regular member).
    assert_eq!(put_rules(&app, json!([])).await.status, 200);
    let fresh = member(&app).await;
    let r = order(
        &app,
        order_json(
            "WED-1500-NORULES",
            Some(&fresh),
            "2026-03-04T15:00:00+08:00",
            sixty(),
            6_000,
        ),
    )
    .await;
    assert_eq!(r.body["points_earned"], 60);
    assert_eq!(rule_ids(&r.body["explanation"]), vec!["base"]);
    assert_ledger_sound(&app).await;
}

async fn preview_predicts_what_the_order_earns(app: TestApp) {
    let m = member(&app).await;
    simple_order(&app, "SILVER", &m, 50_000).await;
    assert_eq!(tier_view(&app, &m).await["tier"], "silver");
    let put = put_rules(
        &app,
        json!([{"id": "afternoon_x2", "name": "工作日下午茶 ×2",
            "scope": {"weekdays": [1, 2, 3, 4, 5], "time_from": "14:00", "time_to": "17:00"},
            "effect": {"kind": "multiplier", "permille": 2000}}]),
    )
    .await;
    let version = put.body["version"].clone();
    let mut voided = dish("D009", "啤酒", 2, 1_500);
    voided["voided"] = json!(true);
    let items = json!([dish("D001", "毛肚", 2, 4_850), voided]);
    let at = "2026-03-04T15:00:00+08:00";
    let before = balance(&app, &m).await;

    let preview = app
        .post(
            "/api/v1/orders/preview",
            json!({"store_code": "CD01", "member_id": m, "occurred_at": at, "channel": "dine_in",
                "items": items, "paid_fen": 9_700}),
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(preview.body["eligible_fen"], 9_700);
    assert_eq!(preview.body["tier"], "silver");
    assert_eq!(preview.body["rule_version"], version);
    // 97 base + 19 silver (floor 97 × 0.2) + 97 afternoon.
    assert_eq!(preview.body["points"], 213);
    assert_eq!(balance(&app, &m).await, before, "a preview writes nothing");

    let as_gold = app
        .post(
            "/api/v1/orders/preview",
            json!({"store_code": "CD01", "member_id": m, "tier": "gold", "occurred_at": at,
                "channel": "dine_in", "items": items, "paid_fen": 9_700}),
        )
        .await;
    assert_eq!(as_gold.body["points"], 97 + 48 + 97);

    let placed = order(
        &app,
        order_json("PREVIEWED", Some(&m), at, items.clone(), 9_700),
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert_eq!(placed.body["points_earned"], preview.body["points"]);
    assert_eq!(placed.body["explanation"], preview.body["explanation"]);
    assert_eq!(balance(&app, &m).await, before + 213);

    let r = app
        .post(
            "/api/v1/orders/preview",
            json!({"store_code": "NOPE", "channel": "dine_in", "items": items, "paid_fen": 9_700}),
        )
        .await;
    assert!(r.status == 404 || r.status == 422, "{}", r.status);
    assert_ledger_sound(&app).await;
}

async fn transfers_move_points_and_keep_the_ledger_sound(app: TestApp) {
    let from = member(&app).await;
    let to = member(&app).await;
    simple_order(&app, "P1", &from, 10_000).await;
    let path = format!("/api/v1/members/{from}/transfers");

    let t = keyed(&app, &path, "T1", json!({"to_member_id": to, "points": 30})).await;
    assert_eq!(t.status, 201, "{}", t.body);
    assert_eq!(t.body["points"], 30);
    assert_eq!(t.body["balance"], 70);
    assert_eq!(t.body["to_balance"], 30);
    let again = keyed(&app, &path, "T1", json!({"to_member_id": to, "points": 30})).await;
    assert_eq!(again.status, 200);
    assert!(replayed(&again));
    assert_eq!(again.body, t.body);
    let conflict = keyed(&app, &path, "T1", json!({"to_member_id": to, "points": 31})).await;
    assert_eq!(conflict.status, 409);

    let r = keyed(&app, &path, "T2", json!({"to_member_id": to, "points": 71})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "insufficient_points");
    let r = keyed(
        &app,
        &path,
        "T3",
        json!({"to_member_id": from, "points": 1}),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = keyed(
        &app,
        &path,
        "T4",
        json!({"to_member_id": "01234567-89ab-7def-8123-456789abcdef", "points": 1}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "unknown_member");

    assert_eq!(balance(&app, &from).await, 70);
    assert_eq!(
        entries(&app, &from).await,
        kinds(&[("transfer_out", -30), ("earn", 100)])
    );
    let received = points_view(&app, &to).await;
    assert_eq!(received["balance"], 30);
    assert_eq!(received["entries"][0]["kind"], "transfer_in");
    assert_eq!(received["entries"][0]["points"], 30);
    let sender = points_view(&app, &from).await;
    assert_eq!(
        received["expiring"][0]["on"], sender["expiring"][0]["on"],
        "transferred points keep their expiry"
    );
    // The receiver can spend them.
    assert_eq!(redeem(&app, &to, "R1", 30).await.status, 201);
    assert_eq!(balance(&app, &to).await, 0);

    // Transfers both ways at once neither deadlock nor lose a point.
    simple_order(&app, "P2", &to, 10_000).await;
    let back = format!("/api/v1/members/{to}/transfers");
    let (a, b, c, d) = tokio::join!(
        keyed(&app, &path, "X1", json!({"to_member_id": to, "points": 10})),
        keyed(
            &app,
            &back,
            "Y1",
            json!({"to_member_id": from, "points": 20})
        ),
        keyed(&app, &path, "X2", json!({"to_member_id": to, "points": 10})),
        keyed(
            &app,
            &back,
            "Y2",
            json!({"to_member_id": from, "points": 20})
        ),
    );
    for r in [&a, &b, &c, &d] {
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert_eq!(balance(&app, &from).await, 70 - 20 + 40);
    assert_eq!(balance(&app, &to).await, 100 + 20 - 40);
    assert_ledger_sound(&app).await;
}

async fn adjustments_respect_the_role_limit(app: TestApp) {
    let m = member(&app).await;
    let path = format!("/api/v1/members/{m}/adjustments");
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let adjust = |key: String, idem: &'static str, body: Value| {
        let path = path.clone();
        let app = &app;
        async move { keyed_as(app, &key, "POST", &path, Some(idem), Some(body)).await }
    };

    let r = adjust(
        manager.clone(),
        "A1",
        json!({"points": 500, "reason": "补录积分"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["points"], 500);
    assert_eq!(r.body["balance"], 500);
    let r = adjust(
        manager.clone(),
        "A2",
        json!({"points": 501, "reason": "补录积分"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "over_adjust_limit");
    let r = adjust(
        manager.clone(),
        "A3",
        json!({"points": -501, "reason": "误操作"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "over_adjust_limit");
    let r = adjust(
        manager.clone(),
        "A4",
        json!({"points": -200, "reason": "误操作", "approver": "店长张三"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["balance"], 300);

    let admin = app.admin_key.clone();
    let r = adjust(
        admin.clone(),
        "A5",
        json!({"points": 10_000, "reason": "总部活动"}),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = adjust(
        admin.clone(),
        "A6",
        json!({"points": -20_000, "reason": "冲正"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "insufficient_points");
    let r = adjust(
        admin.clone(),
        "A7",
        json!({"points": 10, "reason": "x", "kind": "earn"}),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = adjust(
        admin.clone(),
        "A8",
        json!({"points": -10, "reason": "x", "kind": "bonus"}),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = keyed_as(
        &app,
        &admin,
        "POST",
        &path,
        None,
        Some(json!({"points": 1, "reason": "x"})),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "idempotency_key_required");

    // Partners grant bonuses within their quota, and nothing else.
    let partner = app.key_for(Role::Partner, None).await;
    let r = adjust(
        partner.clone(),
        "P1",
        json!({"points": 1_000, "reason": "联名卡赠分", "kind": "bonus"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = adjust(
        partner.clone(),
        "P2",
        json!({"points": 1_001, "reason": "联名卡赠分", "kind": "bonus"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "over_adjust_limit");
    let r = adjust(
        partner.clone(),
        "P3",
        json!({"points": 5, "reason": "改分"}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let staff = app.key_for(Role::Staff, Some("CD01")).await;
    let r = adjust(staff, "S1", json!({"points": 1, "reason": "x"})).await;
    assert_eq!(r.status, 403);

    assert_eq!(balance(&app, &m).await, 300 + 10_000 + 1_000);
    assert_eq!(
        entries(&app, &m).await,
        kinds(&[
            ("bonus", 1_000),
            ("adjust", 10_000),
            ("adjust", -200),
            ("adjust", 500)
        ])
    );
    assert_ledger_sound(&app).await;
}

async fn expiry_job_removes_expired_points_once(app: TestApp) {
    let m = member(&app).await;
    let old = "2025-09-01T12:00:00+08:00";
    let r = order(
        &app,
        order_json(
            "OLD",
            Some(&m),
            old,
            json!([dish("D001", "毛肚", 1, 10_000)]),
            10_000,
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    simple_order(&app, "NEW", &m, 5_000).await;
    assert_eq!(balance(&app, &m).await, 150);
    let expires = plus_months(ms(old), 12);

    let early = run_jobs(&app, expires - 1).await;
    assert_eq!(early.expired_points, 0);
    assert_eq!(balance(&app, &m).await, 150);

    // Two nodes run the same pass at once: the points expire once.
    let (due, twin) = tokio::join!(run_jobs(&app, expires), run_jobs(&app, expires));
    assert_eq!(due.expired_points + twin.expired_points, 100);
    assert_eq!(due.expired_members + twin.expired_members, 1);
    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 50);
    assert_eq!(view["entries"][0]["kind"], "expire");
    assert_eq!(view["entries"][0]["points"], -100);
    assert_eq!(view["expiring"].as_array().unwrap().len(), 1);
    assert_eq!(view["expiring"][0]["points"], 50);

    let again = run_jobs(&app, expires).await;
    assert_eq!(again.expired_points, 0);
    let later = run_jobs(&app, expires + 86_400_000).await;
    assert_eq!(later.expired_points, 0);
    assert_eq!(balance(&app, &m).await, 50);
    assert_eq!(
        entries(&app, &m).await,
        kinds(&[("expire", -100), ("earn", 50), ("earn", 100)])
    );
    assert_ledger_sound(&app).await;
}

async fn tier_review_downgrades_only_after_grace(app: TestApp) {
    let lapsing = member(&app).await;
    let returning = member(&app).await;
    for (pos, m) in [("L1", &lapsing), ("R1", &returning)] {
        let r = order(
            &app,
            order_json(
                pos,
                Some(m),
                "2025-06-10T12:00:00+08:00",
                json!([dish("D001", "宴席", 1, 60_000)]),
                60_000,
            ),
        )
        .await;
        assert_eq!(r.body["tier"], "silver", "{}", r.body);
    }
    let floored = member(&app).await;
    let r = order(
        &app,
        order_json(
            "F1",
            Some(&floored),
            "2025-06-10T12:00:00+08:00",
            json!([dish("D001", "宴席", 1, 200_000)]),
            200_000,
        ),
    )
    .await;
    assert_eq!(r.body["tier"], "gold", "{}", r.body);
    let tier = |m: String| {
        let app = &app;
        async move { tier_view(app, &m).await }
    };

    // June 2026: the June 2025 order still counts.
    let june = run_jobs(&app, ms("2026-06-01T03:00:00+08:00")).await;
    assert_eq!(june.tier_grace_started, 0);
    assert_eq!(tier(lapsing.clone()).await["downgrade_pending"], false);

    // July: spend no longer holds silver, grace starts; the tier stays.
    let july = run_jobs(&app, ms("2026-07-01T03:00:00+08:00")).await;
    assert_eq!(july.tier_grace_started, 3);
    assert_eq!(july.tier_downgraded, 0);
    let t = tier(lapsing.clone()).await;
    assert_eq!(t["tier"], "silver");
    assert_eq!(t["downgrade_pending"], true);
    let again = run_jobs(&app, ms("2026-07-20T03:00:00+08:00")).await;
    assert_eq!(again.tier_grace_started, 0);
    assert_eq!(again.tier_downgraded, 0);
    assert_eq!(tier(lapsing.clone()).await["tier"], "silver");

    // One guest comes back during the grace month.
    let r = order(
        &app,
        order_json(
            "R2",
            Some(&returning),
            "2026-07-10T12:00:00+08:00",
            json!([dish("D001", "宴席", 1, 50_000)]),
            50_000,
        ),
    )
    .await;
    assert_eq!(r.status, 201);
    let t = tier(returning.clone()).await;
    assert_eq!(t["tier"], "silver");
    assert_eq!(
        t["downgrade_pending"], false,
        "the spend holds silver again"
    );

    // HQ keeps the gold guest at least silver: the pending downgrade stays
    // pending (a floor does not restart the grace), down to the floor.
    let until = (Utc::now().with_timezone(&cst()).date_naive() + Duration::days(60)).to_string();
    let r = app
        .send(
            "PUT",
            &format!("/api/v1/members/{floored}/tier-floor"),
            Some(&app.admin_key.clone()),
            Some(json!({"tier": "silver", "until": until, "reason": "老客保级"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tier"], "gold");
    assert_eq!(r.body["floor"], "silver");
    assert_eq!(r.body["downgrade_pending"], true);

    // August: the lapsed guests go down, the returning one keeps silver.
    let august = run_jobs(&app, ms("2026-08-01T03:00:00+08:00")).await;
    assert_eq!(august.tier_downgraded, 2);
    let t = tier(floored.clone()).await;
    assert_eq!(t["tier"], "silver", "down to the floor, not below");
    assert_eq!(t["downgrade_pending"], false);
    let t = tier(lapsing.clone()).await;
    assert_eq!(t["tier"], "regular");
    assert_eq!(t["downgrade_pending"], false);
    assert_eq!(t["history"][0]["from"], "silver");
    assert_eq!(t["history"][0]["to"], "regular");
    let t = tier(returning.clone()).await;
    assert_eq!(t["tier"], "silver");
    assert_eq!(t["downgrade_pending"], false);

    let rerun = run_jobs(&app, ms("2026-08-01T03:00:00+08:00")).await;
    assert_eq!(rerun.tier_downgraded, 0);
    assert_eq!(rerun.tier_grace_started, 0);
    assert_eq!(
        tier(lapsing.clone()).await["history"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_ledger_sound(&app).await;
}
