//! Segments over HTTP: counts and lists that agree with the language's own
//! evaluator on the same members, errors that point at the column, saved
//! segments, the CSV export with masked phones, and store scope.

use crate::helpers::{random_phone, TestApp};
use crate::loyalty::{ago, order, order_json, run_jobs};
use crate::on_both_backends;
use chrono::{Duration, Utc};
use regulars_core::access::Role;
use regulars_core::segment::{self, FactValue, Facts, Field};
use serde_json::{json, Value};
use std::collections::BTreeSet;

on_both_backends!(
    sql_counts_agree_with_the_languages_evaluator,
    bad_expressions_point_at_the_column,
    saved_segments_and_the_masked_export,
);

struct Guest {
    id: String,
    phone: String,
    facts: Facts,
}

/// Members with varied tiers, cities, tags, consents and visit histories.
async fn population(app: &TestApp) -> Vec<Guest> {
    app.create_store("CD01", "成都").await;
    app.create_store("GZ01", "广州").await;
    let mut guests = Vec::new();
    for k in 0..16i64 {
        let store = if k % 3 == 0 { "GZ01" } else { "CD01" };
        let mut tags = vec![];
        if k % 2 == 0 {
            tags.push("辣");
        }
        if k % 5 == 0 {
            tags.push("带娃");
        }
        let phone = random_phone();
        let r = app
            .create_member(json!({"phone": phone, "home_store": store, "tags": tags,
                "birthday": format!("1990-{:02}-15", 1 + k % 12),
                "consents": {"sms": k % 4 != 0}}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        // k visits, the last one 3·k days ago; big spenders climb tiers.
        for v in 0..(k % 6) {
            let body = order_json(
                &format!("S-{k}-{v}"),
                Some(&id),
                &ago(Duration::days(3 * k + 20 * v) + Duration::hours(2)),
                json!([{"sku": "X1", "name": "锅底", "category": "锅底", "quantity": 1,
                    "unit_price_fen": 40_000 * (k % 4 + 1)}]),
                40_000 * (k % 4 + 1),
            );
            let mut body = body;
            body["store_code"] = json!(store);
            assert_eq!(order(app, body).await.status, 201);
        }
        guests.push(Guest {
            id,
            phone,
            facts: Facts::default(),
        });
    }
    run_jobs(app, Utc::now().timestamp_millis()).await;
    // What each member looks like, read back through the API.
    for g in &mut guests {
        let m = app.get(&format!("/api/v1/members/{}", g.id)).await.body;
        let i = app
            .get(&format!("/api/v1/members/{}/insights", g.id))
            .await
            .body;
        let mut f = Facts::default();
        f.values.insert(
            Field::Tier,
            FactValue::Text(m["tier"].as_str().unwrap().into()),
        );
        f.values.insert(
            Field::City,
            FactValue::Text(m["city"].as_str().unwrap().into()),
        );
        f.values.insert(
            Field::Lifecycle,
            FactValue::Text(i["lifecycle"].as_str().unwrap().into()),
        );
        f.values.insert(
            Field::Visits12m,
            FactValue::Int(i["visits_12m"].as_i64().unwrap()),
        );
        f.values.insert(
            Field::Spend12mFen,
            FactValue::Int(i["spend_12m_fen"].as_i64().unwrap()),
        );
        if let Some(d) = i["days_since_visit"].as_i64() {
            f.values.insert(Field::DaysSinceVisit, FactValue::Int(d));
        }
        if let Some(b) = m["consents"]["sms"]["granted"].as_bool() {
            f.values.insert(Field::ConsentSms, FactValue::Bool(b));
        }
        f.tags = m["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        g.facts = f;
    }
    guests
}

async fn matching(app: &TestApp, expression: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let r = app
            .post(
                "/api/v1/segments/members",
                json!({"expression": expression, "limit": 5, "after": after}),
            )
            .await;
        assert_eq!(r.status, 200, "{expression}: {}", r.body);
        for m in r.body["members"].as_array().unwrap() {
            assert!(m["phone_masked"].as_str().unwrap().contains("****"));
            ids.insert(m["id"].as_str().unwrap().to_string());
        }
        match r.body["next_after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => return ids,
        }
    }
}

async fn sql_counts_agree_with_the_languages_evaluator(app: TestApp) {
    let guests = population(&app).await;
    for expression in [
        "tier >= silver",
        r#"city = "成都" and tag = "辣""#,
        "tag in [带娃, 辣] and not city = 广州",
        "lifecycle in [potential, new] or visits_12m >= 3",
        "days_since_visit > 20 and spend_12m_fen >= 80000",
        "not (consent_sms = true) or tag != 辣",
        "tier = regular and (days_since_visit <= 10 or lifecycle = potential)",
    ] {
        let expr = segment::parse(expression).expect(expression);
        let expected: BTreeSet<String> = guests
            .iter()
            .filter(|g| segment::matches(&expr, &g.facts) == Some(true))
            .map(|g| g.id.clone())
            .collect();
        let got = matching(&app, expression).await;
        assert_eq!(got, expected, "{expression}");
        let r = app
            .post("/api/v1/segments/count", json!({"expression": expression}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["count"], expected.len() as i64, "{expression}");
    }
}

async fn bad_expressions_point_at_the_column(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let r = app
        .post(
            "/api/v1/segments/count",
            json!({"expression": "city = \"成都\" and tier >= "}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "bad_segment");
    // Column 25 in characters (成都 counts two, not six bytes).
    assert_eq!(r.body["error"]["column"], 25, "{}", r.body);
    assert!(
        r.body["error"]["expected"]
            .as_str()
            .unwrap()
            .contains("value"),
        "{}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/segments/count",
            json!({"expression": "tiers = gold"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tier"),
        "{}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/segments",
            json!({"name": "x", "expression": "tier = platinum"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(app.get("/api/v1/segments").await.body, json!([]));
    let fields = app.get("/api/v1/segments/fields").await;
    assert_eq!(fields.status, 200);
    assert!(fields
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "days_since_visit"));
}

async fn saved_segments_and_the_masked_export(app: TestApp) {
    let guests = population(&app).await;
    let r = app
        .post(
            "/api/v1/segments",
            json!({"name": "成都辣友", "expression": "city = 成都 AND tag = 辣"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["expression"], r#"city = "成都" and tag = "辣""#);
    let again = app
        .post(
            "/api/v1/segments",
            json!({"name": "成都辣友", "expression": "tier = gold"}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let changed = app
        .send(
            "PUT",
            &format!("/api/v1/segments/{id}"),
            Some(&app.admin_key.clone()),
            Some(json!({"name": "成都辣友", "expression": "city = 成都", "description": "全部成都会员"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let listed = app.get("/api/v1/segments").await.body;
    assert_eq!(listed[0]["expression"], r#"city = "成都""#);

    // The export: every match, phones masked, no plaintext number anywhere.
    let r = app
        .client
        .post(format!("{}/api/v1/segments/export", app.base))
        .bearer_auth(&app.admin_key)
        .json(&json!({"expression": "city = 成都"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let chengdu = guests
        .iter()
        .filter(|g| g.facts.values.get(&Field::City) == Some(&FactValue::Text("成都".into())))
        .count();
    assert_eq!(lines.len(), 1 + chengdu, "{text}");
    assert!(lines[1].contains("****"), "{text}");
    for g in &guests {
        assert!(!text.contains(&g.phone), "a plaintext phone in the export");
    }

    // A store manager counts only their own store's members; staff may not at all.
    let manager = app.key_for(Role::StoreManager, Some("GZ01")).await;
    let r = app
        .send(
            "POST",
            "/api/v1/segments/count",
            Some(&manager),
            Some(json!({"expression": "city = 成都"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["count"], 0);
    let staff = app.key_for(Role::Staff, Some("CD01")).await;
    let r = app
        .send(
            "POST",
            "/api/v1/segments/count",
            Some(&staff),
            Some(json!({"expression": "city = 成都"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let deleted = app
        .send(
            "DELETE",
            &format!("/api/v1/segments/{id}"),
            Some(&app.admin_key.clone()),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let _: Value = app.get("/api/v1/segments").await.body;
}
