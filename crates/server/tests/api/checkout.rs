//! The POS checkout quote: the guest found by phone, member code or pay
//! code; usable points, the most the bill can take, what it would earn.

use crate::helpers::{random_phone, TestApp};
use crate::loyalty::{assert_ledger_sound, dish, redeem, simple_order};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    quote_finds_the_guest_every_way_and_answers_what_the_till_needs,
    pay_codes_are_signed_and_short_lived,
);

async fn quote_finds_the_guest_every_way_and_answers_what_the_till_needs(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let phone = random_phone();
    let created = app
        .create_member(json!({"phone": phone, "home_store": "CD01"}))
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let code = created.body["member_code"].as_str().unwrap().to_string();
    simple_order(&app, "Q1", &id, 45_600).await; // 456 points
    let items = json!([
        dish("M001", "精品肥牛", 2, 6_800),
        dish("V001", "土豆片", 1, 1_200)
    ]);

    let by_phone = app
        .post(
            "/api/v1/checkout/quote",
            json!({"store_code": "CD01", "member_phone": phone, "channel": "dine_in", "items": items}),
        )
        .await;
    assert_eq!(by_phone.status, 200, "{}", by_phone.body);
    let q = &by_phone.body;
    assert_eq!(q["member_id"], id.as_str());
    assert_eq!(q["tier"], "regular");
    assert_eq!(q["balance"], 456);
    assert_eq!(q["usable_points"], 456);
    assert_eq!(q["offset_points_per_yuan"], 100);
    // The bill is ¥148: 456 points cover ¥4 (whole yuan), 400 points.
    assert_eq!(q["max_redeemable_points"], 400);
    assert_eq!(q["max_offset_fen"], 400);
    assert_eq!(q["would_earn"], 148);
    assert!(!q["explanation"].as_array().unwrap().is_empty());

    let by_code = app
        .post(
            "/api/v1/checkout/quote",
            json!({"store_code": "CD01", "member_code": code, "channel": "dine_in", "items": items, "paid_fen": 300}),
        )
        .await;
    assert_eq!(by_code.status, 200, "{}", by_code.body);
    assert_eq!(by_code.body["member_id"], id.as_str());
    assert_eq!(
        by_code.body["max_redeemable_points"], 300,
        "never above the bill"
    );

    // After spending, the quote follows the balance.
    assert_eq!(redeem(&app, &id, "k1", 400).await.status, 201);
    let after = app
        .post(
            "/api/v1/checkout/quote",
            json!({"store_code": "CD01", "member_code": code, "channel": "dine_in", "items": items}),
        )
        .await;
    assert_eq!(after.body["usable_points"], 56);
    assert_eq!(after.body["max_redeemable_points"], 0);

    // Unknown guest, two ways to find one, nothing to find by.
    let r = app
        .post(
            "/api/v1/checkout/quote",
            json!({"store_code": "CD01", "member_phone": random_phone(), "channel": "dine_in", "items": items}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "member_not_found");
    for body in [
        json!({"store_code": "CD01", "member_phone": phone, "member_code": code, "channel": "dine_in", "items": items}),
        json!({"store_code": "CD01", "channel": "dine_in", "items": items}),
    ] {
        let r = app.post("/api/v1/checkout/quote", body).await;
        assert_eq!(r.status, 422, "{}", r.body);
    }
    assert_ledger_sound(&app).await;
}

async fn pay_codes_are_signed_and_short_lived(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let id = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = app
        .post(&format!("/api/v1/members/{id}/pay-code"), json!({}))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let code = issued.body["code"].as_str().unwrap().to_string();
    let items = json!([dish("M001", "精品肥牛", 1, 6_800)]);
    let quote = |pay_code: String| {
        app.post(
            "/api/v1/checkout/quote",
            json!({"store_code": "CD01", "pay_code": pay_code, "channel": "dine_in", "items": items}),
        )
    };
    let ok = quote(code.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["member_id"], id.as_str());

    // A forged signature, another member's id under this signature, an expired code.
    let (expires, rest) = code.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged = format!("{expires}.{id}.{}", "0".repeat(signature.len()));
    assert_eq!(quote(forged).await.code(), "invalid_pay_code");
    let other = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        quote(format!("{expires}.{other}.{signature}")).await.code(),
        "invalid_pay_code"
    );
    let moved = format!(
        "{}.{id}.{signature}",
        expires.parse::<i64>().unwrap() + 60_000
    );
    assert_eq!(
        quote(moved).await.code(),
        "invalid_pay_code",
        "the expiry is signed too"
    );
    assert_eq!(quote("garbage".into()).await.code(), "invalid_pay_code");
}
