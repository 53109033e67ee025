//! Campaigns: drafts checked field by field, the approval line, who may
//! approve, the status flow, HQ's delivery settings.

use crate::helpers::{random_phone, TestApp};
use crate::on_both_backends;
use regulars_core::access::Role;
use serde_json::{json, Value};

on_both_backends!(
    a_campaign_goes_from_draft_to_active_and_pauses,
    a_large_campaign_waits_for_someone_else_to_approve_it,
    bad_campaigns_and_settings_are_refused_with_the_field,
    roles_see_and_change_campaigns_as_the_matrix_says,
);

fn winback() -> Value {
    json!({
        "name": "沉睡会员唤醒",
        "trigger": {"kind": "dormant", "days": 60},
        "channels": ["wechat", "sms", "inbox"],
        "variants": [
            {"name": "A", "template": {"zh": "{name}，好久不见！", "en": "{name}, we miss you!"}},
            {"name": "B", "weight": 2, "template": {"zh": "{name}，送您一张券：{coupon}", "en": "{name}: {coupon}"}}
        ],
        "control_permille": 200
    })
}

async fn status(app: &TestApp, key: &str, id: &str, change: &str) -> crate::helpers::Reply {
    app.send(
        "POST",
        &format!("/api/v1/campaigns/{id}/status"),
        Some(key),
        Some(json!({"change": change, "note": "测试"})),
    )
    .await
}

async fn members(app: &TestApp, n: usize) {
    for _ in 0..n {
        let r = app.create_member(json!({"phone": random_phone()})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

async fn a_campaign_goes_from_draft_to_active_and_pauses(app: TestApp) {
    members(&app, 3).await;
    let marketing = app.key_for(Role::Marketing, None).await;
    let created = app
        .send(
            "POST",
            "/api/v1/campaigns",
            Some(&marketing),
            Some(winback()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["status"], "draft");
    assert_eq!(created.body["spec"]["control_permille"], 200);
    assert_eq!(created.body["spec"]["attribution_days"], 14, "default");

    // A draft can be changed.
    let mut changed = winback();
    changed["name"] = json!("沉睡会员唤醒（60 天）");
    let put = app
        .send(
            "PUT",
            &format!("/api/v1/campaigns/{id}"),
            Some(&marketing),
            Some(changed),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["spec"]["name"], "沉睡会员唤醒（60 天）");

    // 3 members, under the default line of 5,000: active at once.
    let submitted = status(&app, &marketing, &id, "submit").await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    assert_eq!(submitted.body["status"], "active");
    assert_eq!(submitted.body["audience_estimate"], 3);
    assert!(submitted.body["submitted_by"]
        .as_str()
        .unwrap()
        .starts_with("key:"));

    // What runs is what was submitted.
    let late = app
        .send(
            "PUT",
            &format!("/api/v1/campaigns/{id}"),
            Some(&marketing),
            Some(winback()),
        )
        .await;
    assert_eq!(late.status, 409, "{}", late.body);
    assert_eq!(late.code(), "campaign_not_draft");

    assert_eq!(
        status(&app, &marketing, &id, "pause").await.body["status"],
        "paused"
    );
    let twice = status(&app, &marketing, &id, "pause").await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.code(), "campaign_status");
    assert_eq!(
        status(&app, &marketing, &id, "resume").await.body["status"],
        "active"
    );
    assert_eq!(
        status(&app, &marketing, &id, "end").await.body["status"],
        "ended"
    );

    let listed = app.get("/api/v1/campaigns?status=ended").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/api/v1/campaigns?status=active").await.body,
        json!([])
    );
    assert_eq!(
        app.get(&format!("/api/v1/campaigns/{id}")).await.body["status"],
        "ended"
    );
    let mut conn = app.regulars.db.reader().await.unwrap();
    let audited: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_log WHERE subject = $1")
            .bind(format!("campaign:{id}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(audited, 6, "create, change, submit, pause, resume, end");
}

async fn a_large_campaign_waits_for_someone_else_to_approve_it(app: TestApp) {
    members(&app, 4).await;
    // HQ lowers the line to 3 members.
    let mut settings = app.get("/api/v1/campaign-settings").await.body;
    assert_eq!(settings["approval_above"], 5000);
    settings["approval_above"] = json!(3);
    let put = app
        .send(
            "PUT",
            "/api/v1/campaign-settings",
            Some(&app.admin_key.clone()),
            Some(settings),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);

    let marketing = app.key_for(Role::Marketing, None).await;
    let id = app
        .send(
            "POST",
            "/api/v1/campaigns",
            Some(&marketing),
            Some(winback()),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let submitted = status(&app, &marketing, &id, "submit").await;
    assert_eq!(
        submitted.body["status"], "pending_approval",
        "{}",
        submitted.body
    );
    assert_eq!(submitted.body["audience_estimate"], 4);

    // Marketing may not approve; nor may whoever submitted it.
    let by_marketing = status(&app, &marketing, &id, "approve").await;
    assert_eq!(by_marketing.status, 403, "{}", by_marketing.body);
    let hq = app.key_for(Role::HqAdmin, None).await;
    let hq_id = app
        .send("POST", "/api/v1/campaigns", Some(&hq), Some(winback()))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        status(&app, &hq, &hq_id, "submit").await.body["status"],
        "pending_approval"
    );
    let own = status(&app, &hq, &hq_id, "approve").await;
    assert_eq!(own.status, 422, "{}", own.body);
    assert_eq!(own.code(), "own_campaign");

    // Another HQ admin approves the first, rejects the second.
    let approved = status(&app, &app.admin_key.clone(), &id, "approve").await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "active");
    assert!(approved.body["approved_by"].is_string());
    assert!(approved.body["approved_at"].is_i64());
    let rejected = status(&app, &app.admin_key.clone(), &hq_id, "reject").await;
    assert_eq!(rejected.body["status"], "draft");
    let again = status(&app, &app.admin_key.clone(), &id, "approve").await;
    assert_eq!(again.status, 409, "already active");
}

async fn bad_campaigns_and_settings_are_refused_with_the_field(app: TestApp) {
    let cases = [
        (json!({"name": ""}), "name"),
        (
            json!({"trigger": {"kind": "dormant", "days": 5}}),
            "trigger",
        ),
        (json!({"channels": []}), "channels"),
        (json!({"control_permille": 1000}), "control_permille"),
        (json!({"attribution_days": 365}), "attribution_days"),
        (
            json!({"variants": [{"name": "A", "template": {"zh": "{手机号}", "en": "x"}}]}),
            "template.zh",
        ),
    ];
    for (patch, field) in cases {
        let mut body = winback();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.post("/api/v1/campaigns", body).await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        assert!(r.body.to_string().contains(field), "{field}: {}", r.body);
    }
    let mut unknown_field = winback();
    unknown_field["colour"] = json!("red");
    assert_eq!(
        app.post("/api/v1/campaigns", unknown_field).await.status,
        422
    );
    let mut no_segment = winback();
    no_segment["segment_id"] = json!("nope");
    let r = app.post("/api/v1/campaigns", no_segment).await;
    assert_eq!((r.status, r.code()), (422, "unknown_segment"), "{}", r.body);
    assert_eq!(
        app.get("/api/v1/campaigns").await.body,
        json!([]),
        "nothing stored"
    );

    let mut settings = app.get("/api/v1/campaign-settings").await.body;
    settings["delivery"]["quiet_until"] = settings["delivery"]["quiet_from"].clone();
    let r = app
        .send(
            "PUT",
            "/api/v1/campaign-settings",
            Some(&app.admin_key.clone()),
            Some(settings),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        app.get("/api/v1/campaign-settings").await.body["delivery"]["quiet_until"],
        "09:00:00",
        "unchanged"
    );
    assert_eq!(app.get("/api/v1/campaigns/nope").await.status, 404);
}

async fn roles_see_and_change_campaigns_as_the_matrix_says(app: TestApp) {
    let analyst = app.key_for(Role::Analyst, None).await;
    let agent = app.key_for(Role::ServiceAgent, None).await;
    assert_eq!(
        app.send("GET", "/api/v1/campaigns", Some(&analyst), None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.send("POST", "/api/v1/campaigns", Some(&analyst), Some(winback()))
            .await
            .status,
        403
    );
    assert_eq!(
        app.send("GET", "/api/v1/campaigns", Some(&agent), None)
            .await
            .status,
        403
    );
    let marketing = app.key_for(Role::Marketing, None).await;
    let settings = app.get("/api/v1/campaign-settings").await.body;
    assert_eq!(
        app.send(
            "PUT",
            "/api/v1/campaign-settings",
            Some(&marketing),
            Some(settings)
        )
        .await
        .status,
        403,
        "the line is HQ's"
    );
    assert_eq!(
        app.send("GET", "/api/v1/campaigns", None, None)
            .await
            .status,
        401
    );
}
