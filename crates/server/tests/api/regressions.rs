//! One test per failure that users of other loyalty systems reported, named
//! for it. Each checks the whole story through the API and ends with the
//! ledger invariants holding.

use crate::helpers::TestApp;
use crate::loyalty::{
    ago, assert_ledger_sound, balance, dish, entries, kinds, member, ms, order, order_json,
    plus_months, points_view, put_rules, redeem, refund, replayed, run_jobs, simple_order,
    tier_view,
};
use crate::on_both_backends;
use chrono::Duration;
use serde_json::json;

on_both_backends!(
    points_counted_twice_on_a_retried_pos_call,
    refund_after_a_partial_redemption_takes_the_rest_from_later_earnings,
    expiry_after_a_partial_redemption_deducts_only_what_is_left,
    points_earned_on_voided_comped_and_staff_meal_items,
    tier_decided_one_order_late_or_early_at_the_threshold,
    refund_larger_than_the_order_is_refused_and_changes_nothing,
);

/// A POS that times out retries the same call; some retry several times at
/// once. The guest must earn once.
async fn points_counted_twice_on_a_retried_pos_call(app: TestApp) {
    let m = member(&app).await;
    app.create_store("BJ01", "北京").await;

    // Retries after a success, even after the earning rules changed.
    let body = order_json(
        "T-1001",
        Some(&m),
        &ago(Duration::hours(2)),
        json!([dish("D001", "毛肚", 2, 4_800)]),
        9_600,
    );
    let first = order(&app, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["points_earned"], 96);
    for _ in 0..3 {
        let retry = order(&app, body.clone()).await;
        assert_eq!(retry.status, 200);
        assert!(replayed(&retry));
        assert_eq!(retry.body, first.body);
    }
    let x3 = put_rules(
        &app,
        json!([{"id": "triple", "name": "三倍", "effect": {"kind": "multiplier", "permille": 3000}}]),
    )
    .await;
    assert_eq!(x3.status, 200);
    let retry = order(&app, body.clone()).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body, first.body, "a replay is the first answer");
    assert_eq!(balance(&app, &m).await, 96);
    assert_eq!(put_rules(&app, json!([])).await.status, 200);

    // Eight copies of one call at the same moment.
    let body = order_json(
        "T-1002",
        Some(&m),
        &ago(Duration::hours(1)),
        json!([dish("D001", "毛肚", 1, 5_000)]),
        5_000,
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, base, key, body) = (
            app.client.clone(),
            app.base.clone(),
            app.admin_key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(format!("{base}/api/v1/orders"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| *s == 201 || *s == 200),
        "{answers:?}"
    );
    for (_, b) in &answers {
        assert_eq!(b["order_id"], created[0].1["order_id"]);
        assert_eq!(b["points_earned"], 50);
    }
    assert_eq!(balance(&app, &m).await, 96 + 50);
    assert_eq!(
        entries(&app, &m).await,
        kinds(&[("earn", 50), ("earn", 96)]),
        "one earn entry per order"
    );

    // The same POS number at another store is another order.
    let mut elsewhere = body.clone();
    elsewhere["store_code"] = json!("BJ01");
    let r = order(&app, elsewhere).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_ne!(r.body["order_id"], created[0].1["order_id"]);
    assert_eq!(balance(&app, &m).await, 96 + 50 + 50);
    assert_ledger_sound(&app).await;
}

/// Earn 100, spend 70, then the order is refunded in full. Systems that
/// reversed from the balance went negative (or reversed the spent points
/// twice); here the balance stops at 0 and the 70 are owed, taken from the
/// next earnings first.
async fn refund_after_a_partial_redemption_takes_the_rest_from_later_earnings(app: TestApp) {
    let m = member(&app).await;
    simple_order(&app, "P1", &m, 10_000).await;
    assert_eq!(redeem(&app, &m, "R1", 70).await.status, 201);
    assert_eq!(balance(&app, &m).await, 30);

    let full = refund(&app, "P1", "RF-1", 10_000).await;
    assert_eq!(full.status, 201, "{}", full.body);
    assert_eq!(
        full.body,
        json!({"points_reversed": 100, "shortfall": 70, "balance": 0})
    );
    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 0);
    assert_eq!(view["owed"], 70);
    let again = refund(&app, "P1", "RF-1", 10_000).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, full.body);
    assert_eq!(
        points_view(&app, &m).await["owed"],
        70,
        "a replay owes nothing more"
    );

    // The next order pays the debt first: 50 earned, 50 settled.
    let next = simple_order(&app, "P2", &m, 5_000).await;
    assert_eq!(next.body["points_earned"], 50);
    assert_eq!(next.body["balance"], 0);
    let view = points_view(&app, &m).await;
    assert_eq!(view["owed"], 20);
    assert_eq!(view["entries"][0]["kind"], "reverse");
    assert_eq!(view["entries"][0]["points"], -50);
    assert_eq!(view["entries"][0]["order_ref"], "CD01/P2");

    // The one after settles the rest and keeps the remainder.
    let last = simple_order(&app, "P3", &m, 10_000).await;
    assert_eq!(last.body["balance"], 80);
    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 80);
    assert_eq!(view["owed"], 0);
    assert_eq!(
        entries(&app, &m).await,
        kinds(&[
            ("reverse", -20),
            ("earn", 100),
            ("reverse", -50),
            ("earn", 50),
            ("reverse", -30),
            ("redeem", -70),
            ("earn", 100),
        ])
    );
    // What is left can be spent, and no more.
    assert_eq!(redeem(&app, &m, "R2", 81).await.status, 422);
    assert_eq!(redeem(&app, &m, "R2", 80).await.status, 201);
    assert_ledger_sound(&app).await;
}

/// Earn 100 in one lot, redeem 60, let the lot expire. Systems that expired
/// "points earned 12 months ago" took 100 again; only the 40 still in the lot
/// may expire, and the balance never goes below zero.
async fn expiry_after_a_partial_redemption_deducts_only_what_is_left(app: TestApp) {
    let m = member(&app).await;
    let at = ago(Duration::hours(3));
    let r = order(
        &app,
        order_json(
            "P1",
            Some(&m),
            &at,
            json!([dish("D001", "毛肚", 1, 10_000)]),
            10_000,
        ),
    )
    .await;
    assert_eq!(r.body["points_earned"], 100);
    assert_eq!(redeem(&app, &m, "R1", 60).await.status, 201);
    let expires = plus_months(ms(&at), 12);

    let run = run_jobs(&app, expires).await;
    assert_eq!(run.expired_points, 40);
    let view = points_view(&app, &m).await;
    assert_eq!(view["balance"], 0);
    assert_eq!(view["entries"][0]["kind"], "expire");
    assert_eq!(view["entries"][0]["points"], -40);
    assert_eq!(run_jobs(&app, expires + 1).await.expired_points, 0);
    assert_eq!(balance(&app, &m).await, 0);

    // Two lots; a redemption empties the first and dips into the second.
    let two = member(&app).await;
    let at1 = ago(Duration::hours(2));
    let at2 = ago(Duration::hours(1));
    for (pos, at) in [("Q1", &at1), ("Q2", &at2)] {
        let r = order(
            &app,
            order_json(
                pos,
                Some(&two),
                at,
                json!([dish("D001", "毛肚", 1, 5_000)]),
                5_000,
            ),
        )
        .await;
        assert_eq!(r.body["points_earned"], 50);
    }
    assert_eq!(redeem(&app, &two, "R1", 70).await.status, 201);
    let expiring = &points_view(&app, &two).await["expiring"];
    assert_eq!(expiring.as_array().unwrap().len(), 1, "{expiring}");
    assert_eq!(expiring[0]["points"], 30);

    let first = run_jobs(&app, plus_months(ms(&at1), 12)).await;
    assert_eq!(first.expired_points, 0, "the first lot was spent");
    assert_eq!(balance(&app, &two).await, 30);
    let second = run_jobs(&app, plus_months(ms(&at2), 12)).await;
    assert_eq!(second.expired_points, 30);
    assert_eq!(balance(&app, &two).await, 0);
    assert_eq!(
        entries(&app, &two).await,
        kinds(&[("expire", -30), ("redeem", -70), ("earn", 50), ("earn", 50)])
    );
    assert_ledger_sound(&app).await;
}

/// Voided, comped and staff-meal lines were counted by POS integrations that
/// summed the lines instead of what the guest paid for.
async fn points_earned_on_voided_comped_and_staff_meal_items(app: TestApp) {
    let m = member(&app).await;
    let mut voided = dish("B1", "啤酒", 2, 1_200);
    voided["voided"] = json!(true);
    let mut comped = dish("F1", "果盘", 1, 3_800);
    comped["comped"] = json!(true);
    let mut staff = dish("S1", "员工餐", 1, 2_500);
    staff["staff_meal"] = json!(true);
    let mut discounted = dish("D002", "鸭肠", 1, 3_200);
    discounted["discount_fen"] = json!(200);
    let items = json!([
        dish("D001", "毛肚", 1, 6_800),
        voided,
        comped,
        staff,
        discounted
    ]);

    // A bonus on the voided and comped dishes must not pay either.
    let rules = put_rules(
        &app,
        json!([{"id": "drinks_x3", "name": "酒水果盘 ×3",
            "effect": {"kind": "product_bonus", "skus": ["B1", "F1", "S1"], "permille": 3000}}]),
    )
    .await;
    assert_eq!(rules.status, 200, "{}", rules.body);

    let preview = app
        .post(
            "/api/v1/orders/preview",
            json!({"store_code": "CD01", "member_id": m, "channel": "dine_in",
                "items": items, "paid_fen": 9_800}),
        )
        .await;
    assert_eq!(preview.body["eligible_fen"], 9_800, "{}", preview.body);
    assert_eq!(preview.body["points"], 98);

    let paid = order(
        &app,
        order_json(
            "P1",
            Some(&m),
            &ago(Duration::hours(2)),
            items.clone(),
            9_800,
        ),
    )
    .await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.body["points_earned"], 98, "{}", paid.body);
    assert_eq!(
        paid.body["explanation"].as_array().unwrap().len(),
        1,
        "no bonus on dishes that earn nothing: {}",
        paid.body
    );
    // A POS that sends the lines' total as paid still earns on what counts.
    let overstated = order(
        &app,
        order_json("P2", Some(&m), &ago(Duration::hours(1)), items, 19_500),
    )
    .await;
    assert_eq!(overstated.body["points_earned"], 98, "{}", overstated.body);

    // An order of nothing but voided, comped and staff-meal lines.
    let mut v = dish("D001", "毛肚", 1, 6_800);
    v["voided"] = json!(true);
    let mut c = dish("D003", "黄喉", 1, 3_000);
    c["comped"] = json!(true);
    let mut s = dish("D004", "员工餐", 1, 1_500);
    s["staff_meal"] = json!(true);
    let nothing = order(
        &app,
        order_json(
            "P3",
            Some(&m),
            &ago(Duration::minutes(30)),
            json!([v, c, s]),
            0,
        ),
    )
    .await;
    assert_eq!(nothing.status, 201, "{}", nothing.body);
    assert_eq!(nothing.body["points_earned"], 0);

    assert_eq!(balance(&app, &m).await, 196);
    assert_eq!(
        entries(&app, &m).await,
        kinds(&[("earn", 98), ("earn", 98)])
    );
    assert_eq!(
        tier_view(&app, &m).await["qualifying_spend_fen"],
        9_800 * 2,
        "nor do they count toward the tier"
    );
    assert_ledger_sound(&app).await;
}

/// Tiers moved one order late (the order that reached ¥500 was not
/// upgraded until the next) or early (¥499.99 counted as silver, or the
/// crossing order already earned at the new multiplier).
async fn tier_decided_one_order_late_or_early_at_the_threshold(app: TestApp) {
    // ¥499.99 is regular; the fen that makes ¥500.00 makes silver at once.
    let a = member(&app).await;
    assert_eq!(
        simple_order(&app, "A1", &a, 30_000).await.body["tier"],
        "regular"
    );
    let short = simple_order(&app, "A2", &a, 19_999).await;
    assert_eq!(short.body["tier"], "regular", "not early");
    assert_eq!(short.body["points_earned"], 199);
    let t = tier_view(&app, &a).await;
    assert_eq!(t["tier"], "regular");
    assert_eq!(t["qualifying_spend_fen"], 49_999);
    assert_eq!(t["spend_to_next_fen"], 1);
    let exact = simple_order(&app, "A3", &a, 1).await;
    assert_eq!(exact.body["tier"], "silver", "not late");
    assert_eq!(tier_view(&app, &a).await["tier"], "silver");
    let next = simple_order(&app, "A4", &a, 10_000).await;
    assert_eq!(next.body["points_earned"], 120);
    assert_eq!(
        next.body["explanation"][1],
        json!({"rule": "tier", "text": "银卡 ×1.2: +20", "points": 20})
    );

    // The order that reaches exactly ¥500 earns at the old multiplier.
    let b = member(&app).await;
    simple_order(&app, "B1", &b, 30_000).await;
    let crossing = simple_order(&app, "B2", &b, 20_000).await;
    assert_eq!(crossing.body["tier"], "silver");
    assert_eq!(crossing.body["points_earned"], 200, "×1.0, not ×1.2");
    assert_eq!(
        crossing.body["explanation"],
        json!([{"rule": "base", "text": "消费 ¥200 × 1 分/元 = 200", "points": 200}])
    );
    let t = tier_view(&app, &b).await;
    assert_eq!(t["tier"], "silver");
    assert_eq!(t["qualifying_spend_fen"], 50_000);
    assert_eq!(t["history"][0]["qualifying_spend_fen"], 50_000);
    assert_eq!(
        simple_order(&app, "B3", &b, 10_000).await.body["points_earned"],
        120
    );
    assert_eq!(balance(&app, &b).await, 300 + 200 + 120);
    assert_ledger_sound(&app).await;
}

/// Refunds past the order's amount, at once or in parts, were accepted and
/// took more points than the order earned.
async fn refund_larger_than_the_order_is_refused_and_changes_nothing(app: TestApp) {
    let m = member(&app).await;
    simple_order(&app, "P1", &m, 10_000).await;
    let before = points_view(&app, &m).await;

    let r = refund(&app, "P1", "RF-1", 10_001).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.code(), "refund_exceeds_order");
    assert_eq!(points_view(&app, &m).await, before, "nothing changed");

    assert_eq!(
        refund(&app, "P1", "RF-2", 6_000).await.body["points_reversed"],
        60
    );
    let r = refund(&app, "P1", "RF-3", 4_001).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "refund_exceeds_order");
    assert_eq!(balance(&app, &m).await, 40);
    // The refused refund id was not used up.
    let rest = refund(&app, "P1", "RF-3", 4_000).await;
    assert_eq!(rest.status, 201, "{}", rest.body);
    assert_eq!(rest.body["points_reversed"], 40);
    let r = refund(&app, "P1", "RF-4", 1).await;
    assert_eq!(r.status, 422);
    let r = refund(&app, "P1", "RF-5", -100).await;
    assert_eq!(r.status, 422);
    assert_eq!(balance(&app, &m).await, 0);

    // Two refunds of 60% each at the same moment: one of them is refused.
    simple_order(&app, "P2", &m, 10_000).await;
    let (x, y) = tokio::join!(
        refund(&app, "P2", "RACE-A", 6_000),
        refund(&app, "P2", "RACE-B", 6_000)
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(statuses, [201, 422], "{} {}", x.body, y.body);
    assert_eq!(balance(&app, &m).await, 40);

    // An order without a member is held to its amount too.
    let anon = order(
        &app,
        order_json(
            "ANON",
            None,
            &ago(Duration::hours(1)),
            json!([dish("D001", "毛肚", 1, 3_000)]),
            3_000,
        ),
    )
    .await;
    assert_eq!(anon.status, 201);
    assert_eq!(refund(&app, "ANON", "RF-6", 3_001).await.status, 422);
    let ok = refund(&app, "ANON", "RF-6", 3_000).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["points_reversed"], 0);

    assert_eq!(
        entries(&app, &m).await,
        kinds(&[
            ("reverse", -60),
            ("earn", 100),
            ("reverse", -40),
            ("reverse", -60),
            ("earn", 100),
        ])
    );
    assert_ledger_sound(&app).await;
}
