use crate::helpers::{random_phone, Reply, TestApp};
use crate::loyalty::{assert_ledger_sound, keyed_as};
use crate::on_both_backends;
use regulars_core::access::{allows, Action, Role};
use serde_json::json;

on_both_backends!(
    missing_or_bad_key_is_401,
    store_scoped_keys_stay_in_their_store,
    every_role_meets_the_permission_matrix,
);

async fn missing_or_bad_key_is_401(app: TestApp) {
    for path in [
        "/api/v1/members",
        "/api/v1/stores",
        "/api/v1/members/lookup?phone=13800138000",
    ] {
        let r = app.send("GET", path, None, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.code(), "unauthorized");
        let r = app.send("GET", path, Some("rk_not-a-real-key"), None).await;
        assert_eq!(r.status, 401, "{path}");
    }
    let r = app
        .send(
            "POST",
            "/api/v1/members",
            None,
            Some(json!({"phone": random_phone()})),
        )
        .await;
    assert_eq!(r.status, 401);
    let page = app.get("/api/v1/members").await;
    assert_eq!(
        page.body["members"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

async fn store_scoped_keys_stay_in_their_store(app: TestApp) {
    app.create_store("CD01", "成都").await;
    app.create_store("BJ01", "北京").await;
    let beijing_member = app
        .create_member(json!({"phone": random_phone(), "home_store": "BJ01"}))
        .await;
    let bj_id = beijing_member.body["id"].as_str().unwrap().to_string();

    for role in [Role::StoreManager, Role::Staff, Role::Pos] {
        let key = app.key_for(role, Some("CD01")).await;
        let own = app
            .send("GET", "/api/v1/stores/CD01", Some(&key), None)
            .await;
        assert_eq!(own.status, 200, "{role}");
        let other = app
            .send("GET", "/api/v1/stores/BJ01", Some(&key), None)
            .await;
        assert_eq!(other.status, 403, "{role}");
        assert_eq!(other.code(), "forbidden");
        let list = app.send("GET", "/api/v1/stores", Some(&key), None).await;
        assert_eq!(
            list.body.as_array().unwrap().len(),
            1,
            "{role} sees only its store"
        );

        let r = app
            .send(
                "POST",
                "/api/v1/members",
                Some(&key),
                Some(json!({"phone": random_phone(), "home_store": "BJ01"})),
            )
            .await;
        assert_eq!(r.status, 403, "{role} registering into another store");
        if allows(role, Action::MemberList) {
            let r = app
                .send("GET", "/api/v1/members?store=BJ01", Some(&key), None)
                .await;
            assert_eq!(r.status, 403, "{role} listing another store");
            let r = app.send("GET", "/api/v1/members", Some(&key), None).await;
            assert_eq!(r.status, 200);
            assert!(r.body["members"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["home_store"] == "CD01"));
        }
        if allows(role, Action::MemberUpdate) {
            let r = app
                .send(
                    "PATCH",
                    &format!("/api/v1/members/{bj_id}"),
                    Some(&key),
                    Some(json!({"city": "成都"})),
                )
                .await;
            assert_eq!(r.status, 403, "{role} changing another store's member");
        }
    }
    let still = app.get(&format!("/api/v1/members/{bj_id}")).await;
    assert_eq!(
        still.body["city"], "北京",
        "the refused change changed nothing"
    );
}

/// For every role, call one endpoint per action and check that the answer
/// is 403 exactly when the matrix says no.
async fn every_role_meets_the_permission_matrix(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let coupon_template = app
        .post(
            "/api/v1/coupon-templates",
            json!({"name": "¥5", "valid_days": 7,
            "benefit": {"kind": "amount_off", "amount_off_fen": 500}}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    for role in Role::ALL {
        let store = role.is_store_scoped().then_some("CD01");
        let key = app.key_for(role, store).await;
        let member = app
            .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let k = Some(key.as_str());
        // An order (by HQ) to refund, and points to redeem: 100 points.
        let order = |pos: String| {
            json!({"store_code": "CD01", "pos_order_id": pos, "member_id": member,
                "occurred_at": "2026-03-04T12:00:00+08:00", "channel": "dine_in",
                "items": [{"sku": "D001", "name": "毛肚", "category": "荤菜", "quantity": 1, "unit_price_fen": 10_000}],
                "paid_fen": 10_000})
        };
        let placed = app.post("/api/v1/orders", order(format!("R-{role}"))).await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        let complaint = app
            .post(
                "/api/v1/feedback",
                json!({"store_code": "CD01", "channel": "staff",
                "text": format!("上菜太慢（{role}）"), "rating": 2}),
            )
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let points = format!("/api/v1/members/{member}/points");
        let redemptions = format!("/api/v1/members/{member}/redemptions");
        let adjustments = format!("/api/v1/members/{member}/adjustments");
        let checks: Vec<(Action, Reply)> = vec![
            (Action::StoreRead, app.send("GET", "/api/v1/stores/CD01", k, None).await),
            (Action::StoreWrite, app.send("POST", "/api/v1/stores", k,
                Some(json!({"code": format!("N{}", rand::random::<u32>()), "name": "n", "region": "r", "city": "c"}))).await),
            (Action::MemberCreate, app.send("POST", "/api/v1/members", k,
                Some(json!({"phone": random_phone(), "home_store": "CD01"}))).await),
            (Action::MemberRead, app.send("GET", &format!("/api/v1/members/{member}"), k, None).await),
            (Action::MemberList, app.send("GET", "/api/v1/members?store=CD01", k, None).await),
            (Action::MemberUpdate, app.send("PATCH", &format!("/api/v1/members/{member}"), k,
                Some(json!({"gender": "female"}))).await),
            (Action::MemberTag, app.send("POST", &format!("/api/v1/members/{member}/tags"), k,
                Some(json!({"tag": "常客"}))).await),
            (Action::MemberConsent, app.send("PUT", &format!("/api/v1/members/{member}/consents"), k,
                Some(json!({"sms": true}))).await),
            (Action::MemberRevealPii, app.send("GET", &format!("/api/v1/members/{member}?reveal=true"), k, None).await),
            (Action::OrderIngest, app.send("POST", "/api/v1/orders", k, Some(order(format!("I-{role}")))).await),
            (Action::OrderRefund, app.send("POST", &format!("/api/v1/orders/CD01/R-{role}/refunds"), k,
                Some(json!({"refund_id": format!("RF-{role}"), "amount_fen": 100}))).await),
            (Action::PointsRead, app.send("GET", &points, k, None).await),
            (Action::PointsRedeem, keyed_as(&app, &key, "POST", &redemptions, Some("redeem-1"),
                Some(json!({"points": 1, "store_code": "CD01"}))).await),
            (Action::PointsAdjust, keyed_as(&app, &key, "POST", &adjustments, Some("adjust-1"),
                Some(json!({"points": 5, "reason": "补录积分"}))).await),
            (Action::PointsGrant, keyed_as(&app, &key, "POST", &adjustments, Some("grant-1"),
                Some(json!({"points": 5, "reason": "联名卡赠分", "kind": "bonus"}))).await),
            (Action::CouponIssue, keyed_as(&app, &key, "POST", &format!("/api/v1/members/{member}/coupons"),
                Some("coupon-1"), Some(json!({"template_id": coupon_template}))).await),
            (Action::FeedbackSubmit, app.send("POST", "/api/v1/feedback", k,
                Some(json!({"store_code": "CD01", "channel": "staff", "text": format!("环境太吵（{role}）")}))).await),
            (Action::FeedbackRead, app.send("GET", "/api/v1/feedback?store=CD01", k, None).await),
            (Action::FeedbackHandle, app.send("POST", &format!("/api/v1/feedback/{complaint}/transitions"), k,
                Some(json!({"to": "acknowledged"}))).await),
            (Action::RulesManage, app.send("PUT", "/api/v1/earning-rules", k,
                Some(json!({"rules": [], "note": format!("by {role}")}))).await),
        ];
        for (action, reply) in checks {
            if allows(role, action) {
                assert!(
                    (200..300).contains(&reply.status),
                    "{role} should be allowed {action:?}, got {} {}",
                    reply.status,
                    reply.body
                );
            } else {
                assert_eq!(
                    reply.status, 403,
                    "{role} must be refused {action:?}: {}",
                    reply.body
                );
            }
        }
    }
    assert_ledger_sound(&app).await;
}
