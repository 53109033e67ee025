//! Rewards and coupons end to end: templates, issuing (by hand, by a reward
//! redemption, by the birthday pack), checking a coupon against a bill,
//! redeeming it exactly once, expiry, and the catalogue's tier, limit and
//! stock rules — each refusal leaving points and stock untouched.

use crate::helpers::{random_phone, Reply, TestApp};
use crate::loyalty::{
    assert_ledger_sound, balance, dish, keyed, member, redeem, replayed, run_jobs, simple_order,
};
use crate::on_both_backends;
use chrono::{Datelike, Utc};
use serde_json::{json, Value};

on_both_backends!(
    coupon_templates_are_checked_listed_and_retired,
    issuing_by_hand_is_idempotent_and_codes_are_unguessable,
    a_coupon_is_judged_against_the_bill,
    a_coupon_is_redeemed_once_and_its_retry_is_a_replay,
    concurrent_redemptions_of_one_coupon_have_one_winner,
    expired_coupons_are_refused_and_marked_by_the_job,
    the_catalogue_enforces_tier_limit_and_stock,
    a_coupon_reward_issues_its_coupon_with_the_points,
    concurrent_reward_redemptions_never_oversell,
    cash_offset_buys_whole_yuan,
    the_birthday_pack_gives_points_and_coupons_once_a_year,
    the_checkout_quote_lists_usable_coupons_best_first,
);

fn at_hour(hour: u32) -> String {
    // A Tuesday in the chain's zone.
    format!("2026-11-24T{hour:02}:30:00+08:00")
}

async fn template(app: &TestApp, body: Value) -> String {
    let r = app.post("/api/v1/coupon-templates", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn amount_off(app: &TestApp, off: i64, min: i64) -> String {
    template(
        app,
        json!({"name": format!("满{}减{}", min / 100, off / 100),
            "benefit": {"kind": "amount_off", "amount_off_fen": off},
            "min_spend_fen": min, "valid_days": 30}),
    )
    .await
}

async fn issue(app: &TestApp, member: &str, template: &str, key: &str) -> Reply {
    keyed(
        app,
        &format!("/api/v1/members/{member}/coupons"),
        key,
        json!({"template_id": template, "reason": "test"}),
    )
    .await
}

async fn issued_code(app: &TestApp, member: &str, template: &str) -> String {
    let r = issue(
        app,
        member,
        template,
        &format!("k-{}", rand::random::<u64>()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["code"].as_str().unwrap().to_string()
}

async fn validate(app: &TestApp, code: &str, store: &str, items: Value, at: &str) -> Reply {
    let r = app
        .post(
            "/api/v1/coupons/validate",
            json!({"code": code, "store_code": store, "items": items, "occurred_at": at}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

async fn redeem_coupon(app: &TestApp, code: &str, pos: &str, items: Value) -> Reply {
    app.post(
        &format!("/api/v1/coupons/{code}/redeem"),
        json!({"store_code": "CD01", "pos_order_id": pos, "items": items}),
    )
    .await
}

async fn reward(app: &TestApp, body: Value) -> String {
    let r = app.post("/api/v1/rewards", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn redeem_reward(app: &TestApp, member: &str, key: &str, reward: &str, points: i64) -> Reply {
    keyed(
        app,
        &format!("/api/v1/members/{member}/redemptions"),
        key,
        json!({"points": points, "store_code": "CD01", "reward_id": reward}),
    )
    .await
}

async fn stock_left(app: &TestApp, reward: &str) -> Option<i64> {
    let r = app.get("/api/v1/rewards?all=true").await;
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == reward)
        .unwrap()["stock_left"]
        .as_i64()
}

/// A member with `fen` of spend behind them (and the points it earned).
async fn member_with_spend(app: &TestApp, fen: i64) -> String {
    app.create_store("CD01", "成都").await;
    let r = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    simple_order(app, &format!("S-{}", rand::random::<u64>()), &id, fen).await;
    id
}

async fn coupon_templates_are_checked_listed_and_retired(app: TestApp) {
    app.create_store("CD01", "成都").await;
    for (bad, field) in [
        (
            json!({"name": "x", "benefit": {"kind": "amount_off", "amount_off_fen": 0}, "valid_days": 3}),
            "amount_off_fen",
        ),
        (
            json!({"name": "x", "benefit": {"kind": "percent_off", "percent_off": 120}, "valid_days": 3}),
            "percent_off",
        ),
        (
            json!({"name": "x", "benefit": {"kind": "amount_off", "amount_off_fen": 100}}),
            "valid_days",
        ),
        (
            json!({"name": "x", "benefit": {"kind": "amount_off", "amount_off_fen": 100}, "valid_days": 3, "valid_until": "2027-01-01"}),
            "valid_days",
        ),
        (
            json!({"name": "x", "benefit": {"kind": "amount_off", "amount_off_fen": 100}, "valid_days": 3, "weekdays": [0]}),
            "weekdays",
        ),
        (
            json!({"name": "x", "benefit": {"kind": "amount_off", "amount_off_fen": 100}, "valid_days": 3, "time_from": "25:00"}),
            "time_from",
        ),
        (
            json!({"name": "", "benefit": {"kind": "free_item", "sku": "N1", "item_name": "面"}, "valid_days": 3}),
            "name",
        ),
    ] {
        let r = app.post("/api/v1/coupon-templates", bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{bad}: {}",
            r.body
        );
    }
    let r = app
        .post(
            "/api/v1/coupon-templates",
            json!({"name": "x", "benefit": {"kind": "amount_off", "amount_off_fen": 100},
                "valid_days": 3, "stores": ["NOPE"]}),
        )
        .await;
    assert_eq!(r.code(), "unknown_store");
    let r = app
        .post(
            "/api/v1/coupon-templates",
            json!({"name": "x", "benefit": {"kind": "cashback"}}),
        )
        .await;
    assert!(r.status == 400 || r.status == 422, "{}", r.body);
    assert!(app
        .get("/api/v1/coupon-templates")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());

    let id = template(
        &app,
        json!({"name": "下午茶满100减15", "benefit": {"kind": "amount_off", "amount_off_fen": 1500},
            "min_spend_fen": 10_000, "weekdays": [1, 2, 3, 4, 5], "time_from": "14:00", "time_to": "17:00",
            "valid_days": 14}),
    )
    .await;
    let list = app.get("/api/v1/coupon-templates").await;
    assert_eq!(list.body[0]["id"], id.as_str());
    let summary = list.body[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("满¥100减¥15") && summary.contains("14:00–17:00"),
        "{summary}"
    );

    let m = member(&app).await;
    issued_code(&app, &m, &id).await;
    let r = app
        .send(
            "PATCH",
            &format!("/api/v1/coupon-templates/{id}"),
            Some(&app.admin_key.clone()),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    let r = issue(&app, &m, &id, "after-retire").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "unknown_coupon_template");
    // Coupons already out stay usable.
    let coupons = app.get(&format!("/api/v1/members/{m}/coupons")).await;
    assert_eq!(coupons.body.as_array().unwrap().len(), 1);
}

async fn issuing_by_hand_is_idempotent_and_codes_are_unguessable(app: TestApp) {
    let m = member(&app).await;
    let tpl = amount_off(&app, 2000, 0).await;
    let other = amount_off(&app, 500, 0).await;
    let first = issue(&app, &m, &tpl, "goodwill-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = issue(&app, &m, &tpl, "goodwill-1").await;
    assert_eq!(again.status, 200);
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    let clash = issue(&app, &m, &other, "goodwill-1").await;
    assert_eq!(clash.status, 409, "{}", clash.body);
    let unkeyed = app
        .post(
            &format!("/api/v1/members/{m}/coupons"),
            json!({"template_id": tpl}),
        )
        .await;
    assert_eq!(unkeyed.code(), "idempotency_key_required");
    let r = keyed(
        &app,
        &format!("/api/v1/members/{m}/coupons"),
        "b",
        json!({"template_id": tpl, "source": "birthday"}),
    )
    .await;
    assert_eq!(r.status, 422, "engine-only sources are refused: {}", r.body);
    let r = issue(&app, "no-such-member", &tpl, "x").await;
    assert_eq!(r.status, 404);
    assert_eq!(app.outbox_count("coupon.issued").await, 1);

    let mut codes = std::collections::HashSet::new();
    for i in 0..30 {
        let code = issued_code(&app, &m, &tpl).await;
        assert_eq!(code.len(), 19, "{code}");
        assert!(code.split('-').all(|g| g.len() == 4), "{code}");
        assert!(!code.contains(['I', 'L', 'O', 'U']), "{code}");
        assert!(codes.insert(code), "code {i} repeated");
    }
    let mine = app.get(&format!("/api/v1/members/{m}/coupons")).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 31);
    assert_eq!(mine.body[0]["status"], "issued");
    assert_eq!(mine.body[0]["source"], "manual");
    assert_ledger_sound(&app).await;
}

async fn a_coupon_is_judged_against_the_bill(app: TestApp) {
    let m = member(&app).await;
    app.create_store("BJ01", "北京").await;
    let tea = template(
        &app,
        json!({"name": "下午茶", "benefit": {"kind": "amount_off", "amount_off_fen": 1500},
            "min_spend_fen": 10_000, "weekdays": [1, 2, 3, 4, 5], "time_from": "14:00", "time_to": "17:00",
            "stores": ["CD01"], "valid_days": 14}),
    )
    .await;
    let code = issued_code(&app, &m, &tea).await;
    let bill = json!([dish("D1", "毛肚", 2, 6_000)]);
    let ok = validate(&app, &code, "CD01", bill.clone(), &at_hour(15)).await;
    assert_eq!(ok.body["usable"], true, "{}", ok.body);
    assert_eq!(ok.body["discount_fen"], 1500);
    for (store, at, items, why) in [
        ("CD01", at_hour(17), bill.clone(), "coupon_outside_hours"),
        (
            "CD01",
            "2026-11-29T15:00:00+08:00".to_string(),
            bill.clone(),
            "coupon_wrong_day",
        ),
        ("BJ01", at_hour(15), bill.clone(), "coupon_wrong_store"),
        (
            "CD01",
            at_hour(15),
            json!([dish("D1", "毛肚", 1, 9_999)]),
            "coupon_below_minimum",
        ),
    ] {
        let r = validate(&app, &code, store, items, &at).await;
        assert_eq!(r.body["usable"], false, "{why}");
        assert_eq!(r.body["discount_fen"], 0);
        assert_eq!(r.body["refusal"]["code"], why, "{}", r.body);
    }
    // Voided dishes do not count towards the minimum.
    let mut voided = dish("D2", "鸭肠", 1, 9_000);
    voided["voided"] = json!(true);
    let r = validate(
        &app,
        &code,
        "CD01",
        json!([dish("D1", "毛肚", 1, 5_000), voided]),
        &at_hour(15),
    )
    .await;
    assert_eq!(r.body["refusal"]["code"], "coupon_below_minimum");

    let noodle = template(
        &app,
        json!({"name": "长寿面", "benefit": {"kind": "free_item", "sku": "N1", "item_name": "长寿面"}, "valid_days": 7}),
    )
    .await;
    let code2 = issued_code(&app, &m, &noodle).await;
    let r = validate(&app, &code2, "CD01", bill.clone(), &at_hour(12)).await;
    assert_eq!(r.body["refusal"]["code"], "coupon_item_missing");
    let r = validate(
        &app,
        &code2,
        "CD01",
        json!([dish("D1", "毛肚", 1, 6_000), dish("N1", "长寿面", 1, 1_800)]),
        &at_hour(12),
    )
    .await;
    assert_eq!(r.body["discount_fen"], 1800);

    let pct = template(
        &app,
        json!({"name": "88折", "benefit": {"kind": "percent_off", "percent_off": 12, "max_off_fen": 3000}, "valid_days": 7}),
    )
    .await;
    let code3 = issued_code(&app, &m, &pct).await;
    let r = validate(
        &app,
        &code3,
        "CD01",
        json!([dish("D1", "毛肚", 1, 10_099)]),
        &at_hour(12),
    )
    .await;
    assert_eq!(r.body["discount_fen"], 1211, "floor of 12%");
    let r = validate(
        &app,
        &code3,
        "CD01",
        json!([dish("D1", "毛肚", 10, 10_000)]),
        &at_hour(12),
    )
    .await;
    assert_eq!(r.body["discount_fen"], 3000, "capped");

    // Another member's coupon, a typo, an unknown code.
    let r = app
        .post(
            "/api/v1/coupons/validate",
            json!({"code": code, "store_code": "CD01",
            "items": bill, "occurred_at": at_hour(15), "member_id": "someone-else"}),
        )
        .await;
    assert_eq!(r.body["refusal"]["code"], "coupon_other_member");
    let r = app
        .post(
            "/api/v1/coupons/validate",
            json!({"code": "ABC", "store_code": "CD01", "items": []}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = app
        .post(
            "/api/v1/coupons/validate",
            json!({"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "store_code": "CD01", "items": []}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Validating changed nothing.
    let mine = app.get(&format!("/api/v1/members/{m}/coupons")).await;
    assert!(mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "issued"));
}

async fn a_coupon_is_redeemed_once_and_its_retry_is_a_replay(app: TestApp) {
    let m = member(&app).await;
    let tpl = amount_off(&app, 3000, 20_000).await;
    let code = issued_code(&app, &m, &tpl).await;
    let small = json!([dish("D1", "毛肚", 1, 10_000)]);
    let r = redeem_coupon(&app, &code, "P-1", small).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "coupon_below_minimum");
    let bill = json!([dish("D1", "毛肚", 3, 10_000)]);
    // Typed in lower case without dashes, as a cashier might.
    let typed = code.replace('-', "").to_lowercase();
    let first = redeem_coupon(&app, &typed, "P-1", bill.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["discount_fen"], 3000);
    assert_eq!(first.body["code"], code.as_str());
    let retry = redeem_coupon(&app, &code, "P-1", bill.clone()).await;
    assert_eq!(retry.status, 200);
    assert!(replayed(&retry));
    assert_eq!(retry.body, first.body);
    let other = redeem_coupon(&app, &code, "P-2", bill.clone()).await;
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.code(), "coupon_used");
    let v = validate(&app, &code, "CD01", bill, &at_hour(12)).await;
    assert_eq!(v.body["refusal"]["code"], "coupon_used");
    assert_eq!(v.body["coupon"]["status"], "redeemed");
    assert_eq!(v.body["coupon"]["redeemed_order"], "P-1");
    assert_eq!(app.outbox_count("coupon.redeemed").await, 1);
    // Usable list no longer has it; the full list does.
    assert!(app
        .get(&format!("/api/v1/members/{m}/coupons"))
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    let all = app
        .get(&format!("/api/v1/members/{m}/coupons?status=all"))
        .await;
    assert_eq!(all.body[0]["status"], "redeemed");
    // A used coupon cannot be voided; an unused one can, and is then refused.
    let r = app
        .post(&format!("/api/v1/coupons/{code}/void"), json!({}))
        .await;
    assert_eq!(r.status, 409);
    let code2 = issued_code(&app, &m, &tpl).await;
    let r = app
        .post(&format!("/api/v1/coupons/{code2}/void"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = redeem_coupon(&app, &code2, "P-3", json!([dish("D1", "毛肚", 3, 10_000)])).await;
    assert_eq!(r.code(), "coupon_void");
    assert_ledger_sound(&app).await;
}

async fn concurrent_redemptions_of_one_coupon_have_one_winner(app: TestApp) {
    let m = member(&app).await;
    let tpl = amount_off(&app, 1000, 0).await;
    let code = issued_code(&app, &m, &tpl).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (base, key, code) = (app.base.clone(), app.admin_key.clone(), code.clone());
        let client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/coupons/{code}/redeem"))
                .bearer_auth(key)
                .json(
                    &json!({"store_code": "CD01", "pos_order_id": format!("RACE-{i}"),
                    "items": [dish("D1", "毛肚", 1, 5_000)]}),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.outbox_count("coupon.redeemed").await, 1);
}

async fn expired_coupons_are_refused_and_marked_by_the_job(app: TestApp) {
    let m = member(&app).await;
    let tpl = template(
        &app,
        json!({"name": "当日有效", "benefit": {"kind": "amount_off", "amount_off_fen": 500}, "valid_days": 1}),
    )
    .await;
    let code = issued_code(&app, &m, &tpl).await;
    let coupon = &app.get(&format!("/api/v1/members/{m}/coupons")).await.body[0];
    let expires =
        chrono::DateTime::parse_from_rfc3339(coupon["expires_at"].as_str().unwrap()).unwrap();
    let local = expires.with_timezone(&chrono_tz::Asia::Shanghai);
    assert_eq!(
        local.format("%H:%M").to_string(),
        "00:00",
        "valid to the end of the local day"
    );
    assert!(expires.timestamp_millis() - Utc::now().timestamp_millis() <= 86_400_000);
    let past_template = app
        .post(
            "/api/v1/coupon-templates",
            json!({"name": "旧券", "benefit": {"kind": "amount_off",
            "amount_off_fen": 500}, "valid_until": "2020-01-01"}),
        )
        .await;
    let old = past_template.body["id"].as_str().unwrap().to_string();
    let r = issue(&app, &m, &old, "old").await;
    assert_eq!(r.code(), "coupon_template_expired");

    let before = run_jobs(&app, Utc::now().timestamp_millis()).await;
    assert_eq!(before.coupons_expired, 0);
    let later = expires.timestamp_millis() + 1;
    assert_eq!(run_jobs(&app, later).await.coupons_expired, 1);
    assert_eq!(run_jobs(&app, later).await.coupons_expired, 0, "once");
    let r = redeem_coupon(&app, &code, "P-9", json!([dish("D1", "毛肚", 1, 5_000)])).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "coupon_expired");
    let all = app
        .get(&format!("/api/v1/members/{m}/coupons?status=all"))
        .await;
    assert_eq!(all.body[0]["status"], "expired");
    assert_eq!(app.outbox_count("coupon.expired").await, 1);
}

async fn the_catalogue_enforces_tier_limit_and_stock(app: TestApp) {
    let silver1 = member_with_spend(&app, 60_000).await; // 600 points, silver
    let silver2 = member_with_spend(&app, 60_000).await;
    let silver3 = member_with_spend(&app, 60_000).await;
    let regular = member_with_spend(&app, 30_000).await; // 300 points, regular
    let mug = reward(
        &app,
        json!({"name": "定制马克杯", "kind": "merchandise", "points_cost": 200, "stock": 2,
            "per_member_limit": 1, "min_tier": "silver"}),
    )
    .await;
    let bad = app
        .post(
            "/api/v1/rewards",
            json!({"name": "面", "kind": "free_dish", "points_cost": 100}),
        )
        .await;
    assert_eq!(bad.status, 422, "a free dish names its coupon template");
    let bad = app
        .post(
            "/api/v1/rewards",
            json!({"name": "x", "kind": "merchandise", "points_cost": 0}),
        )
        .await;
    assert_eq!(bad.status, 422);

    let seen = app
        .get(&format!("/api/v1/rewards?member_id={regular}"))
        .await;
    assert_eq!(seen.body[0]["eligible"], false);
    assert_eq!(seen.body[0]["refusal"]["code"], "reward_tier_too_low");

    let r = redeem_reward(&app, &regular, "mug-r", &mug, 200).await;
    assert_eq!(r.code(), "reward_tier_too_low");
    assert_eq!(balance(&app, &regular).await, 300, "nothing deducted");
    let r = redeem_reward(&app, &silver1, "mug-1", &mug, 150).await;
    assert_eq!(r.code(), "reward_points_mismatch");
    let r = redeem_reward(&app, &silver1, "mug-1", &mug, 200).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["balance"], 400);
    assert_eq!(r.body["reward"]["name"], "定制马克杯");
    assert_eq!(r.body["reward"]["kind"], "merchandise");
    let again = redeem_reward(&app, &silver1, "mug-1", &mug, 200).await;
    assert!(replayed(&again), "a retry is a replay, not a second mug");
    assert_eq!(stock_left(&app, &mug).await, Some(1));
    let r = redeem_reward(&app, &silver1, "mug-1b", &mug, 200).await;
    assert_eq!(r.code(), "reward_limit_reached");
    assert_eq!(balance(&app, &silver1).await, 400);
    let r = redeem_reward(&app, &silver2, "mug-2", &mug, 200).await;
    assert_eq!(r.status, 201);
    let r = redeem_reward(&app, &silver3, "mug-3", &mug, 200).await;
    assert_eq!(r.code(), "reward_out_of_stock");
    assert_eq!(balance(&app, &silver3).await, 600);
    assert_eq!(stock_left(&app, &mug).await, Some(0));

    let r = app
        .send(
            "PATCH",
            &format!("/api/v1/rewards/{mug}"),
            Some(&app.admin_key.clone()),
            Some(json!({"add_stock": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["stock_left"], 1);
    assert_eq!(r.body["stock"], 3);
    let r = redeem_reward(&app, &silver3, "mug-3", &mug, 200).await;
    assert_eq!(r.status, 201, "restocked: {}", r.body);

    app.send(
        "PATCH",
        &format!("/api/v1/rewards/{mug}"),
        Some(&app.admin_key.clone()),
        Some(json!({"active": false, "add_stock": 5})),
    )
    .await;
    let r = redeem_reward(
        &app,
        &member_with_spend(&app, 60_000).await,
        "mug-4",
        &mug,
        200,
    )
    .await;
    assert_eq!(r.code(), "reward_retired");
    assert!(app
        .get("/api/v1/rewards")
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    let r = redeem_reward(&app, &silver1, "none", "no-such-reward", 200).await;
    assert_eq!(r.code(), "unknown_reward");
    assert_ledger_sound(&app).await;
}

async fn a_coupon_reward_issues_its_coupon_with_the_points(app: TestApp) {
    let m = member_with_spend(&app, 30_000).await;
    let noodle = template(
        &app,
        json!({"name": "长寿面一份", "benefit": {"kind": "free_item", "sku": "N1", "item_name": "长寿面"}, "valid_days": 30}),
    )
    .await;
    let dish_reward = reward(
        &app,
        json!({"name": "免费长寿面", "kind": "free_dish", "points_cost": 120, "coupon_template_id": noodle}),
    )
    .await;
    let first = redeem_reward(&app, &m, "noodle-1", &dish_reward, 120).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let code = first.body["reward"]["coupon"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first.body["reward"]["coupon"]["source"], "redemption");
    let again = redeem_reward(&app, &m, "noodle-1", &dish_reward, 120).await;
    assert_eq!(again.body, first.body, "the retry names the same coupon");
    let mine = app.get(&format!("/api/v1/members/{m}/coupons")).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    assert_eq!(mine.body[0]["code"], code.as_str());
    assert_eq!(balance(&app, &m).await, 180);
    let r = redeem_coupon(&app, &code, "P-N", json!([dish("N1", "长寿面", 1, 1_800)])).await;
    assert_eq!(r.body["discount_fen"], 1800);
    // Not enough points: no coupon, no stock taken.
    let r = redeem_reward(&app, &m, "noodle-2", &dish_reward, 120).await;
    assert_eq!(r.status, 201);
    let r = redeem_reward(&app, &m, "noodle-3", &dish_reward, 120).await;
    assert_eq!(r.code(), "insufficient_points");
    assert_eq!(
        app.get(&format!("/api/v1/members/{m}/coupons?status=all"))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_ledger_sound(&app).await;
}

async fn concurrent_reward_redemptions_never_oversell(app: TestApp) {
    let mut members = Vec::new();
    for _ in 0..8 {
        members.push(member_with_spend(&app, 20_000).await);
    }
    let class = reward(
        &app,
        json!({"name": "后厨参观", "kind": "experience", "points_cost": 100, "stock": 3}),
    )
    .await;
    let mut tasks = Vec::new();
    for m in &members {
        let (base, key, m, class) = (
            app.base.clone(),
            app.admin_key.clone(),
            m.clone(),
            class.clone(),
        );
        let client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/members/{m}/redemptions"))
                .bearer_auth(key)
                .header("Idempotency-Key", "tour")
                .json(&json!({"points": 100, "store_code": "CD01", "reward_id": class}))
                .send()
                .await
                .unwrap();
            (m, r.status().as_u16())
        }));
    }
    let mut won = 0;
    for t in tasks {
        let (m, status) = t.await.unwrap();
        let expected = if status == 201 {
            won += 1;
            100
        } else {
            200
        };
        assert!(status == 201 || status == 422, "{status}");
        assert_eq!(balance(&app, &m).await, expected);
    }
    assert_eq!(won, 3);
    assert_eq!(stock_left(&app, &class).await, Some(0));
    assert_ledger_sound(&app).await;
}

async fn cash_offset_buys_whole_yuan(app: TestApp) {
    let m = member_with_spend(&app, 50_000).await;
    let offset = reward(
        &app,
        json!({"name": "积分抵现", "kind": "cash_offset", "points_cost": 100}),
    )
    .await;
    let r = redeem_reward(&app, &m, "off-1", &offset, 250).await;
    assert_eq!(r.code(), "reward_points_mismatch");
    let r = redeem_reward(&app, &m, "off-1", &offset, 300).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["reward"]["units"], 3);
    assert_eq!(r.body["reward"]["offset_fen"], 300);
    assert_eq!(r.body["balance"], 200);
    // A plain redemption is still a plain redemption.
    let r = redeem(&app, &m, "plain", 7).await;
    assert_eq!(r.status, 201);
    assert!(r.body.get("reward").is_none());
}

async fn the_birthday_pack_gives_points_and_coupons_once_a_year(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let birthday = format!("1990-{:02}-{:02}", today.month(), today.day().min(28));
    let r = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01", "birthday": birthday}))
        .await;
    let m = r.body["id"].as_str().unwrap().to_string();
    let cake = template(
        &app,
        json!({"name": "生日蛋糕", "benefit": {"kind": "free_item", "sku": "CAKE", "item_name": "生日蛋糕"}, "valid_days": 30}),
    )
    .await;
    let policy = app.get("/api/v1/tier-policy").await.body;
    let mut bad = policy.clone();
    bad["tiers"][0]["birthday_coupon_templates"] = json!(["no-such-template"]);
    let r = app
        .send(
            "PUT",
            "/api/v1/tier-policy",
            Some(&app.admin_key.clone()),
            Some(bad),
        )
        .await;
    assert_eq!(r.code(), "unknown_coupon_template", "{}", r.body);
    let mut good = policy.clone();
    good["tiers"][0]["birthday_points"] = json!(50);
    good["tiers"][0]["birthday_coupon_templates"] = json!([cake]);
    let r = app
        .send(
            "PUT",
            "/api/v1/tier-policy",
            Some(&app.admin_key.clone()),
            Some(good),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let now = Utc::now().timestamp_millis();
    let first = run_jobs(&app, now).await;
    assert_eq!(first.birthday_gifts, 1);
    assert_eq!(first.birthday_coupons, 1);
    let second = run_jobs(&app, now + 60_000).await;
    assert_eq!((second.birthday_gifts, second.birthday_coupons), (0, 0));
    assert_eq!(balance(&app, &m).await, 50);
    let mine = app.get(&format!("/api/v1/members/{m}/coupons")).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    assert_eq!(mine.body[0]["source"], "birthday");
    assert_eq!(mine.body[0]["name"], "生日蛋糕");
    assert_ledger_sound(&app).await;
}

async fn the_checkout_quote_lists_usable_coupons_best_first(app: TestApp) {
    let m = member(&app).await;
    app.create_store("BJ01", "北京").await;
    let big = amount_off(&app, 3000, 20_000).await;
    let small = amount_off(&app, 500, 0).await;
    let mid = amount_off(&app, 1000, 0).await;
    let elsewhere = template(
        &app,
        json!({"name": "北京专享", "benefit": {"kind": "amount_off", "amount_off_fen": 2000}, "stores": ["BJ01"], "valid_days": 7}),
    )
    .await;
    for t in [&big, &small, &mid, &elsewhere] {
        issued_code(&app, &m, t).await;
    }
    let used = issued_code(&app, &m, &small).await;
    redeem_coupon(&app, &used, "P-U", json!([dish("D1", "毛肚", 1, 5_000)])).await;
    let code = app.get(&format!("/api/v1/members/{m}")).await.body["member_code"]
        .as_str()
        .unwrap()
        .to_string();
    let q = app
        .post(
            "/api/v1/checkout/quote",
            json!({"store_code": "CD01", "member_code": code,
            "channel": "dine_in", "items": [dish("D1", "毛肚", 1, 10_000)]}),
        )
        .await;
    assert_eq!(q.status, 200, "{}", q.body);
    let coupons = q.body["coupons"].as_array().unwrap();
    let seen: Vec<(bool, i64, String)> = coupons
        .iter()
        .map(|c| {
            (
                c["usable"].as_bool().unwrap(),
                c["discount_fen"].as_i64().unwrap(),
                c["refusal"]["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 4, "the used coupon is not offered: {seen:?}");
    assert_eq!(
        &seen[..2],
        &[(true, 1000, String::new()), (true, 500, String::new())]
    );
    let refusals: std::collections::BTreeSet<_> = seen[2..].iter().map(|s| s.2.clone()).collect();
    assert_eq!(
        refusals,
        [
            "coupon_below_minimum".to_string(),
            "coupon_wrong_store".to_string()
        ]
        .into()
    );
}
