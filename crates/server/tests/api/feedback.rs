//! Feedback and service recovery over HTTP: classification on arrival,
//! refusals that store nothing, the whole complaint workflow with
//! compensation through the ledger, SLA escalation driven by the jobs,
//! approval above a role's limit, corrections and editable rules.

use crate::helpers::{random_phone, Reply, TestApp};
use crate::loyalty::{
    ago, assert_ledger_sound, balance, dish, entries, keyed, keyed_as, member, order, order_json,
    run_jobs, simple_order,
};
use crate::on_both_backends;
use chrono::Utc;
use regulars_core::access::Role;
use serde_json::{json, Value};

on_both_backends!(
    feedback_is_classified_on_arrival_as_api_md_says,
    bad_feedback_is_refused_and_nothing_is_stored,
    a_complaint_runs_the_whole_workflow,
    overdue_complaints_escalate_to_the_region_then_hq,
    compensation_above_the_limit_waits_for_approval,
    corrections_are_kept_and_measure_the_classifier,
    staff_edit_the_classifier_rules,
    store_staff_see_only_their_stores_feedback,
    table_qr_links_take_feedback_without_login,
    bad_table_submissions_are_refused_and_store_nothing,
    platform_reviews_import_all_or_nothing,
    surveys_take_one_answer_per_visit_and_month_and_report_nps,
    complaint_rates_flag_stores_and_the_jobs_raise_alerts_once,
    top_tier_birthdays_become_call_tasks,
    declining_vips_get_a_care_call_first,
    staff_attach_photos_to_feedback,
);

async fn import(app: &TestApp, csv: &str) -> Reply {
    let resp = app
        .client
        .post(format!("{}/api/v1/feedback/import", app.base))
        .bearer_auth(&app.admin_key)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    Reply::read(resp).await
}

/// The smallest valid PNG header (what the type check reads) and some bytes.
fn png(len: usize) -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    b.resize(len.max(8), 7);
    b
}

async fn table_post(app: &TestApp, token: &str, form: reqwest::multipart::Form) -> Reply {
    // A fresh connection each time: after refusing an oversized body the
    // server closes its connection, which a pooled client would reuse.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let sent = client
        .post(format!("{}/q/{token}/feedback", app.base))
        .multipart(form)
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        // The server refused an oversized body before it was all sent and
        // closed the connection: the client may see that instead of the 413.
        Err(e) if e.is_request() => {
            return Reply {
                status: 413,
                body: json!({"error": {"code": "too_large", "message": "connection closed: too large"}}),
                headers: Default::default(),
            }
        }
        Err(e) => panic!("request: {e}"),
    };
    Reply::read(resp).await
}

fn photo_part(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str("image/png")
        .unwrap()
}

async fn table_token(app: &TestApp) -> String {
    let r = app
        .post("/api/v1/stores/CD01/table-links", json!({"table": "A12"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["path"],
        format!("/q/{}", r.body["token"].as_str().unwrap())
    );
    r.body["token"].as_str().unwrap().to_string()
}

async fn submit(app: &TestApp, body: Value) -> Reply {
    app.post("/api/v1/feedback", body).await
}

async fn complaint(app: &TestApp, member: Option<&str>, text: &str, rating: i64) -> Value {
    let mut body = json!({"store_code": "CD01", "channel": "h5", "text": text, "rating": rating});
    if let Some(m) = member {
        body["member_id"] = json!(m);
    }
    let r = submit(app, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn move_to(app: &TestApp, id: &str, body: Value) -> Reply {
    app.post(&format!("/api/v1/feedback/{id}/transitions"), body)
        .await
}

async fn feedback_count(app: &TestApp) -> usize {
    app.get("/api/v1/feedback?limit=500")
        .await
        .body
        .as_array()
        .unwrap()
        .len()
}

async fn outbox(app: &TestApp, kind: &str) -> i64 {
    app.outbox_count(kind).await
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

async fn feedback_is_classified_on_arrival_as_api_md_says(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let before = Utc::now().timestamp_millis();
    let r = submit(
        &app,
        json!({"store_code": "CD01", "channel": "table_qr", "rating": 4,
            "text": "锅底不错，但是毛肚里吃出一根头发，电话13812345678"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["category"], "food_safety");
    assert_eq!(
        r.body["severity"], "critical",
        "food safety is always critical, whatever the stars"
    );
    assert!(!r.body["reasons"].as_array().unwrap().is_empty());
    let due = ms(r.body["due_at"].as_str().unwrap());
    assert!(
        (due - before - 30 * 60_000).abs() < 60_000,
        "due in 30 minutes"
    );
    let id = r.body["id"].as_str().unwrap();
    let stored = app.get(&format!("/api/v1/feedback/{id}")).await;
    assert_eq!(stored.body["status"], "open");
    let text = stored.body["text"].as_str().unwrap();
    assert!(
        text.contains("138****5678") && !text.contains("13812345678"),
        "{text}"
    );

    let praise = submit(
        &app,
        json!({"store_code": "CD01", "channel": "staff", "rating": 5, "nps": 10,
            "text": "服务员小李特别热情，锅底也好吃，下次还来"}),
    )
    .await;
    assert_eq!(praise.status, 201);
    assert_eq!(praise.body["category"], "praise");
    assert_eq!(praise.body["severity"], "none");
    assert!(praise.body.get("due_at").is_none(), "{}", praise.body);
    let slow = submit(
        &app,
        json!({"store_code": "CD01", "channel": "call_center", "rating": 2, "text": "等了五十分钟才上菜"}),
    )
    .await;
    assert_eq!(slow.body["category"], "waiting_time");
    assert_eq!(slow.body["severity"], "medium");
    assert_eq!(outbox(&app, "complaint.opened").await, 2);
    assert_eq!(outbox(&app, "feedback.received").await, 1);
    let tasks = app.get("/api/v1/tasks?store=CD01").await;
    assert_eq!(
        tasks.body.as_array().unwrap().len(),
        2,
        "one complaint task each"
    );
}

async fn bad_feedback_is_refused_and_nothing_is_stored(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let ok = json!({"store_code": "CD01", "channel": "h5", "text": "上菜太慢", "rating": 2});
    let cases = [
        (json!({"rating": 6}), 422, "rating"),
        (json!({"rating": 0}), 422, "rating"),
        (json!({"nps": 11}), 422, "nps"),
        (json!({"text": "   "}), 422, "text"),
        (json!({"text": "长".repeat(2001)}), 422, "text"),
        (json!({"store_code": "NOPE"}), 422, "unknown_store"),
        (json!({"member_id": "ghost"}), 422, "unknown_member"),
        (
            json!({"pos_order_id": "NO-SUCH-ORDER"}),
            422,
            "unknown_order",
        ),
    ];
    for (change, status, what) in cases {
        let mut body = ok.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = submit(&app, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let said = format!("{} {}", r.code(), r.body["error"]["message"]);
        assert!(said.contains(what), "{what}: {said}");
    }
    let r = submit(
        &app,
        json!({"store_code": "CD01", "channel": "fax", "text": "x"}),
    )
    .await;
    assert!(r.status == 400 || r.status == 422, "{}", r.body);
    let r = submit(
        &app,
        json!({"store_code": "CD01", "channel": "h5", "text": "x", "photo": "a.exe"}),
    )
    .await;
    assert!(
        r.status == 400 || r.status == 422,
        "unknown fields are refused: {}",
        r.body
    );
    assert_eq!(feedback_count(&app).await, 0, "nothing stored");

    assert_eq!(submit(&app, ok.clone()).await.status, 201);
    let again = submit(&app, ok.clone()).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.code(), "duplicate_feedback");
    assert_eq!(feedback_count(&app).await, 1);
}

async fn a_complaint_runs_the_whole_workflow(app: TestApp) {
    let m = member(&app).await;
    simple_order(&app, "W-1", &m, 30_000).await;
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let tpl = app
        .post(
            "/api/v1/coupon-templates",
            json!({"name": "致歉券", "valid_days": 30,
            "benefit": {"kind": "amount_off", "amount_off_fen": 3000}}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = submit(
        &app,
        json!({"store_code": "CD01", "channel": "h5", "member_id": m, "pos_order_id": "W-1",
            "rating": 1, "text": "服务员态度恶劣，叫了好几次都不理人"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["category"], "service_attitude");
    assert_eq!(r.body["severity"], "high");
    let id = r.body["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/feedback/{id}/transitions");
    let send = |to: &str, extra: Value| {
        let mut body = json!({"to": to});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        app.send("POST", &path, Some(&manager), Some(body))
    };
    assert_eq!(
        send("closed", json!({})).await.status,
        409,
        "cannot skip to closed"
    );
    let r = send("acknowledged", json!({"note": "已致电顾客道歉"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["acknowledged_at"].is_string());
    assert_eq!(r.body["sla_breached"], false);
    assert_eq!(
        send("in_progress", json!({})).await.body["status"],
        "in_progress"
    );

    // Compensation: points within the manager's limit, and a coupon.
    let before = balance(&app, &m).await;
    let comp = keyed_as(
        &app,
        &manager,
        "POST",
        &format!("/api/v1/feedback/{id}/compensations"),
        Some("comp-1"),
        Some(json!({"kind": "points", "points": 200, "note": "服务态度致歉"})),
    )
    .await;
    assert_eq!(comp.status, 201, "{}", comp.body);
    assert_eq!(comp.body["status"], "granted");
    let replay = keyed_as(
        &app,
        &manager,
        "POST",
        &format!("/api/v1/feedback/{id}/compensations"),
        Some("comp-1"),
        Some(json!({"kind": "points", "points": 200, "note": "服务态度致歉"})),
    )
    .await;
    assert_eq!(replay.status, 200, "a retry gives nothing twice");
    assert_eq!(balance(&app, &m).await, before + 200);
    let ledger = entries(&app, &m).await;
    assert_eq!(ledger[0], ("compensation".to_string(), 200));
    let points = app.get(&format!("/api/v1/members/{m}/points")).await;
    assert!(
        points.body["entries"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("投诉补偿"),
        "{}",
        points.body
    );
    let coupon = keyed_as(
        &app,
        &manager,
        "POST",
        &format!("/api/v1/feedback/{id}/compensations"),
        Some("comp-2"),
        Some(json!({"kind": "coupon", "template_id": tpl, "note": "下次用餐减30"})),
    )
    .await;
    assert_eq!(coupon.status, 201, "{}", coupon.body);
    let mine = app.get(&format!("/api/v1/members/{m}/coupons")).await;
    assert_eq!(mine.body[0]["source"], "compensation");

    // Resolution needs a root cause and what the guest is told.
    assert_eq!(
        send("resolved", json!({"note": "已道歉并补偿"}))
            .await
            .status,
        422
    );
    assert_eq!(
        send("resolved", json!({"root_cause": "staff_training"}))
            .await
            .status,
        422
    );
    let r = send(
        "resolved",
        json!({"root_cause": "staff_training", "note": "已道歉并补偿200积分和30元券"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["root_cause"], "staff_training");
    assert_eq!(
        outbox(&app, "complaint.resolved").await,
        1,
        "the guest is told"
    );
    let tasks = app.send("GET", "/api/v1/tasks", Some(&manager), None).await;
    let open: Vec<&Value> = tasks.body.as_array().unwrap().iter().collect();
    assert_eq!(
        open.len(),
        1,
        "the complaint task is done; the follow-up is due: {}",
        tasks.body
    );
    assert_eq!(open[0]["kind"], "follow_up");
    assert!(
        ms(open[0]["due_at"].as_str().unwrap()) > Utc::now().timestamp_millis() + 2 * 86_400_000
    );

    assert_eq!(
        send("followed_up", json!({})).await.status,
        422,
        "say what the guest said"
    );
    assert_eq!(
        send("followed_up", json!({"note": "回访：顾客表示满意"}))
            .await
            .status,
        422,
        "was the guest won back?"
    );
    let r = send(
        "followed_up",
        json!({"note": "回访：顾客表示满意", "satisfied": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tasks = app
        .send("GET", "/api/v1/tasks?all=true", Some(&manager), None)
        .await;
    assert!(
        tasks
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "done"),
        "{}",
        tasks.body
    );
    let r = send("closed", json!({})).await;
    assert_eq!(r.body["status"], "closed");
    let full = app.get(&format!("/api/v1/feedback/{id}")).await.body;
    for stamp in [
        "acknowledged_at",
        "started_at",
        "resolved_at",
        "followed_up_at",
        "closed_at",
    ] {
        assert!(full[stamp].is_string(), "{stamp}: {full}");
    }
    let kinds: Vec<&str> = full["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "received",
            "acknowledged",
            "in_progress",
            "compensated",
            "compensated",
            "resolved",
            "followed_up",
            "closed"
        ]
    );
    assert_eq!(full["compensations"].as_array().unwrap().len(), 2);
    assert_eq!(send("in_progress", json!({})).await.status, 409);
    assert_eq!(full["recovered"], true);

    let kpis = app.get("/api/v1/feedback/kpis").await.body;
    let store = &kpis["stores"][0];
    assert_eq!(store["key"], "CD01");
    assert_eq!(store["complaints"], 1);
    assert_eq!(store["sla_met"], 1.0);
    assert_eq!(store["resolved"], 1);
    assert_eq!(store["recovered"], 1.0);
    let resolver = kpis["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["resolved"] == 1)
        .expect("the manager who resolved it");
    assert!(
        resolver["key"].as_str().unwrap().starts_with("key:"),
        "{kpis}"
    );
    let registrar = kpis["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["sign_ups"].as_i64().unwrap())
        .sum::<i64>();
    assert!(registrar >= 1, "member sign-ups are counted: {kpis}");
    assert_ledger_sound(&app).await;
}

async fn overdue_complaints_escalate_to_the_region_then_hq(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let late = complaint(&app, None, "上菜太慢，等了一个小时", 2).await;
    let answered = complaint(&app, None, "服务员态度不好", 2).await;
    let r = move_to(
        &app,
        answered["id"].as_str().unwrap(),
        json!({"to": "acknowledged"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let due = ms(late["due_at"].as_str().unwrap());
    assert_eq!(run_jobs(&app, due - 60_000).await.complaints_escalated, 0);
    assert_eq!(
        run_jobs(&app, due + 1).await.complaints_escalated,
        1,
        "only the unanswered one"
    );
    assert_eq!(
        run_jobs(&app, due + 2).await.complaints_escalated,
        0,
        "once per level"
    );
    let id = late["id"].as_str().unwrap();
    let v = app.get(&format!("/api/v1/feedback/{id}")).await.body;
    assert_eq!(v["escalation_level"], 1);
    assert_eq!(v["sla_breached"], true);
    assert_eq!(
        run_jobs(&app, due + 30 * 60_000 + 1)
            .await
            .complaints_escalated,
        1
    );
    let v = app.get(&format!("/api/v1/feedback/{id}")).await.body;
    assert_eq!(v["escalation_level"], 2);
    assert!(v["escalated_at"].is_string());
    assert_eq!(
        run_jobs(&app, due + 90 * 60_000).await.complaints_escalated,
        0,
        "HQ is the top"
    );
    assert_eq!(outbox(&app, "complaint.escalated").await, 2);
    let escalations = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .count();
    assert_eq!(escalations, 2);
    // Answered late: the KPIs count one deadline met (the other complaint) of two.
    assert_eq!(
        move_to(&app, id, json!({"to": "acknowledged"}))
            .await
            .status,
        200
    );
    let kpis = app.get("/api/v1/feedback/kpis").await.body;
    assert_eq!(kpis["stores"][0]["sla_met"], 0.5, "{kpis}");
    assert_ledger_sound(&app).await;
}

async fn compensation_above_the_limit_waits_for_approval(app: TestApp) {
    let m = member(&app).await;
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let agent = app.key_for(Role::ServiceAgent, None).await;
    let c = complaint(&app, Some(&m), "锅底太咸了根本没法吃", 1).await;
    let id = c["id"].as_str().unwrap();
    let r = keyed_as(
        &app,
        &manager,
        "POST",
        &format!("/api/v1/feedback/{id}/compensations"),
        Some("big"),
        Some(json!({"kind": "points", "points": 800, "note": "重大失误"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(balance(&app, &m).await, 0, "nothing given before approval");
    let comp = r.body["id"].as_str().unwrap().to_string();
    let decision = format!("/api/v1/compensations/{comp}/decision");
    let r = app
        .send(
            "POST",
            &decision,
            Some(&manager),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(r.code(), "approver_is_requester");
    let r = app
        .send(
            "POST",
            &decision,
            Some(&agent),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "an agent may approve 800 (limit 2,000): {}",
        r.body
    );
    assert_eq!(r.body["status"], "granted");
    assert_eq!(balance(&app, &m).await, 800);
    let r = app
        .send(
            "POST",
            &decision,
            Some(&app.admin_key.clone()),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(r.status, 409, "decided once");
    assert_eq!(balance(&app, &m).await, 800);
    // A refund note and a rejection.
    let r = keyed(
        &app,
        &format!("/api/v1/feedback/{id}/compensations"),
        "refund",
        json!({"kind": "refund_note", "amount_fen": 5800, "note": "锅底已退款"}),
    )
    .await;
    assert_eq!(r.body["status"], "granted");
    let r = keyed_as(
        &app,
        &manager,
        "POST",
        &format!("/api/v1/feedback/{id}/compensations"),
        Some("big2"),
        Some(json!({"kind": "points", "points": 900, "note": "再补"})),
    )
    .await;
    let second = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/compensations/{second}/decision"),
            json!({"approve": false, "note": "已补偿过"}),
        )
        .await;
    assert_eq!(r.body["status"], "rejected");
    assert_eq!(balance(&app, &m).await, 800);
    let bad = keyed(
        &app,
        &format!("/api/v1/feedback/{id}/compensations"),
        "bad",
        json!({"kind": "points", "points": 0, "note": "x"}),
    )
    .await;
    assert_eq!(bad.status, 422);
    let anonymous = complaint(&app, None, "环境太吵了", 2).await;
    let r = keyed(
        &app,
        &format!(
            "/api/v1/feedback/{}/compensations",
            anonymous["id"].as_str().unwrap()
        ),
        "anon",
        json!({"kind": "points", "points": 10, "note": "x"}),
    )
    .await;
    assert_eq!(r.code(), "no_member");
    assert_ledger_sound(&app).await;
}

async fn corrections_are_kept_and_measure_the_classifier(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let a = complaint(&app, None, "上菜太慢", 2).await;
    complaint(&app, None, "服务员态度很差", 1).await;
    complaint(&app, None, "价格太贵了", 3).await;
    let id = a["id"].as_str().unwrap();
    let path = format!("/api/v1/feedback/{id}/classification");
    let r = app
        .post(&path, json!({"category": "food_safety", "severity": "low"}))
        .await;
    assert_eq!(r.status, 422, "food safety is always critical");
    let r = app
        .post(&path, json!({"category": "praise", "severity": "low"}))
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .post(
            &path,
            json!({"category": "dish_quality", "severity": "high", "note": "其实是菜凉了"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["category"], "dish_quality");
    assert_eq!(
        r.body["auto_category"], "waiting_time",
        "the classifier's answer is kept"
    );
    let acc = app.get("/api/v1/feedback/accuracy").await.body;
    assert_eq!(acc["feedback"], 3);
    assert_eq!(acc["corrected"], 1);
    let got = acc["category_accuracy"].as_f64().unwrap();
    assert!((got - 2.0 / 3.0).abs() < 1e-9, "{acc}");
}

async fn staff_edit_the_classifier_rules(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let before = complaint(&app, None, "汤里漂着一只蜗牛壳", 3).await;
    assert_ne!(before["severity"], "critical");
    let mut rules = app.get("/api/v1/feedback/rules").await.body;
    let critical = rules["rules"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["critical"] == true)
        .unwrap();
    critical["phrases"]
        .as_array_mut()
        .unwrap()
        .push(json!("蜗牛"));
    let r = app
        .send(
            "PUT",
            "/api/v1/feedback/rules",
            Some(&app.admin_key.clone()),
            Some(rules.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after = complaint(&app, None, "凉菜里有一只小蜗牛", 3).await;
    assert_eq!(after["severity"], "critical");
    assert_eq!(after["category"], "food_safety");
    let mut gutted = rules.clone();
    gutted["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["critical"] != true);
    let r = app
        .send(
            "PUT",
            "/api/v1/feedback/rules",
            Some(&app.admin_key.clone()),
            Some(gutted),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let staff = app.key_for(Role::Staff, Some("CD01")).await;
    let r = app
        .send("PUT", "/api/v1/feedback/rules", Some(&staff), Some(rules))
        .await;
    assert_eq!(r.status, 403);
}

async fn store_staff_see_only_their_stores_feedback(app: TestApp) {
    app.create_store("CD01", "成都").await;
    app.create_store("BJ01", "北京").await;
    let theirs = submit(
        &app,
        json!({"store_code": "BJ01", "channel": "h5", "text": "环境太吵"}),
    )
    .await;
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let r = app
        .send(
            "GET",
            &format!("/api/v1/feedback/{}", theirs.body["id"].as_str().unwrap()),
            Some(&manager),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = app
        .send(
            "POST",
            "/api/v1/feedback",
            Some(&manager),
            Some(json!({"store_code": "BJ01", "channel": "staff", "text": "代录"})),
        )
        .await;
    assert_eq!(r.status, 403);
    let list = app
        .send("GET", "/api/v1/feedback", Some(&manager), None)
        .await;
    assert!(list.body.as_array().unwrap().is_empty(), "{}", list.body);
    let pos = app.key_for(Role::Pos, Some("CD01")).await;
    let r = app.send("POST", "/api/v1/feedback", Some(&pos),
        Some(json!({"store_code": "CD01", "channel": "table_qr", "text": "酸梅汤很好喝", "phone": random_phone()}))).await;
    assert!(
        r.status == 400 || r.status == 422,
        "phone is not a field of this call: {}",
        r.body
    );
}

async fn table_qr_links_take_feedback_without_login(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let phone = random_phone();
    let m = app
        .create_member(json!({"phone": phone, "home_store": "CD01"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = table_token(&app).await;
    let page = app
        .client
        .get(format!("{}/q/{token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("A12") && html.contains("成都CD01店"),
        "{html}"
    );

    let photo = png(50_000);
    let form = reqwest::multipart::Form::new()
        .text("text", "虾滑里吃出一根头发")
        .text("rating", "2")
        .text("phone", phone.clone())
        .part("photo", photo_part(photo.clone(), "hair.png"));
    let r = table_post(&app, &token, form).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["severity"], "critical");
    let id = r.body["id"].as_str().unwrap();
    let v = app.get(&format!("/api/v1/feedback/{id}")).await.body;
    assert_eq!(v["channel"], "table_qr");
    assert_eq!(v["table"], "A12");
    assert_eq!(v["member_id"], m.as_str(), "the phone found the member");
    assert_eq!(v["photos"][0]["content_type"], "image/png");
    assert_eq!(v["photos"][0]["size_bytes"], 50_000);
    let got = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            v["photos"][0]["path"].as_str().unwrap()
        ))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().to_vec(), photo);
    // Without a key the photo is not public.
    let anon = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            v["photos"][0]["path"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    // A guest who is not a member is still heard.
    let form = reqwest::multipart::Form::new()
        .text("text", "环境很好，服务很周到")
        .text("rating", "5");
    let r = table_post(&app, &token, form).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["category"], "praise");
}

async fn bad_table_submissions_are_refused_and_store_nothing(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let token = table_token(&app).await;
    let text = || reqwest::multipart::Form::new().text("text", "上菜太慢");
    // Forged: the signature of another table; tampered: one digit changed.
    let mut forged = token.replace("~A12~", "~A13~");
    let r = table_post(&app, &forged, text()).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "invalid_table_link"),
        "{}",
        r.body
    );
    forged = format!("{}0", &token[..token.len() - 1]);
    if forged == token {
        forged = format!("{}1", &token[..token.len() - 1]);
    }
    let r = table_post(&app, &forged, text()).await;
    assert_eq!(r.status, 403);
    let r = app
        .client
        .get(format!("{}/q/garbage", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let expired = regulars_server::app::feedback::table_token(
        &app.regulars,
        "CD01",
        "A12",
        Utc::now().timestamp_millis() - 1,
    );
    let r = table_post(&app, &expired, text()).await;
    assert_eq!(
        (r.status, r.code()),
        (410, "table_link_expired"),
        "{}",
        r.body
    );

    let cases: Vec<(reqwest::multipart::Form, u16, &str)> = vec![
        (text().text("rating", "9"), 422, "rating"),
        (text().text("rating", "五"), 422, "rating"),
        (text().text("nps", "-1"), 422, "nps"),
        (
            reqwest::multipart::Form::new().text("text", ""),
            422,
            "text",
        ),
        (text().text("phone", "12345"), 422, "phone"),
        (text().text("table", "B1"), 422, "unknown field"),
        (
            text().part(
                "photo",
                photo_part(b"MZ\x90\x00this is a program".to_vec(), "cat.png"),
            ),
            422,
            "not a JPEG",
        ),
        (
            text().part("photo", photo_part(png(2 * 1024 * 1024 + 1), "big.png")),
            422,
            "KiB",
        ),
        (
            text()
                .part("photo", photo_part(png(100), "1.png"))
                .part("photo", photo_part(png(100), "2.png"))
                .part("photo", photo_part(png(100), "3.png"))
                .part("photo", photo_part(png(100), "4.png")),
            422,
            "at most 3",
        ),
        (
            text()
                .part("photo", photo_part(png(2_500_000), "1.png"))
                .part("photo", photo_part(png(2_500_000), "2.png"))
                .part("photo", photo_part(png(2_500_000), "3.png")),
            413,
            "too large",
        ),
        (
            // A good photo after a bad one: nothing of it is kept either.
            text()
                .part("photo", photo_part(png(100), "ok.png"))
                .part("photo", photo_part(b"GIF89a".to_vec(), "x.png")),
            422,
            "photo 2",
        ),
    ];
    for (form, status, what) in cases {
        let r = table_post(&app, &token, form).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let said = format!("{} {}", r.code(), r.body["error"]["message"]);
        assert!(said.contains(what), "{what}: {said}");
    }
    assert_eq!(feedback_count(&app).await, 0, "nothing stored");
    let mut conn = app.regulars.db.reader().await.unwrap();
    let photos: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM feedback_photos")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(photos, 0);
    drop(conn);
    let ok = table_post(&app, &token, text().text("rating", "2")).await;
    assert_eq!(ok.status, 201);
    let twice = table_post(&app, &token, text().text("rating", "2")).await;
    assert_eq!((twice.status, twice.code()), (409, "duplicate_feedback"));
}

async fn platform_reviews_import_all_or_nothing(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let header = "store_code,platform,review_id,rating,text,reviewed_at\n";
    let bad = format!(
        "{header}CD01,dianping,D-1,5,锅底好吃，服务热情,2026-11-20\n\
         CD01,meituan,M-1,7,太慢了,2026-11-21\n\
         XX99,dianping,D-2,2,一般,2026-11-21\n\
         CD01,dianping,D-1,3,重复的点评,2026-11-22\n\
         CD01,weibo,W-1,2,,yesterday\n"
    );
    let r = import(&app, &bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.code(), "invalid_import");
    let message = r.body["error"]["message"].as_str().unwrap();
    for expected in [
        "line 3: rating `7`",
        "line 4: unknown store `XX99`",
        "line 5: repeats the review of line 2",
        "line 6: platform must be",
        "text must be",
        "reviewed_at `yesterday`",
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    assert!(
        !message.contains("line 2:"),
        "a good line is not blamed: {message}"
    );
    assert_eq!(feedback_count(&app).await, 0, "nothing imported");
    let r = import(&app, "store,text\nCD01,hi\n").await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{}",
        r.body
    );
    let r = app
        .client
        .post(format!("{}/api/v1/feedback/import", app.base))
        .bearer_auth(&app.admin_key)
        .body(vec![0xB9u8, 0xF8, 0xB5, 0xD7])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "GBK bytes are refused with a hint");

    let good = format!(
        "{bom}{header}CD01,dianping,D-1,5,锅底好吃，服务热情,2026-11-20\n\
         CD01,meituan,M-1,1,\"外卖里吃出一根头发，电话13800001111\",2026-11-21T19:30:00+08:00\n\
         CD01,eleme,E-1,,等了一个半小时才送到,\n",
        bom = '\u{feff}'
    );
    let r = import(&app, &good).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["imported"], 3);
    assert_eq!(r.body["complaints"], 2);
    assert_eq!(r.body["critical"], 1);
    assert_eq!(r.body["by_category"]["praise"], 1);
    let again = import(&app, &good).await;
    assert_eq!(again.body["imported"], 0);
    assert_eq!(again.body["already_imported"], 3);
    assert_eq!(feedback_count(&app).await, 3);
    let list = app.get("/api/v1/feedback?limit=10").await.body;
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["channel"] == "review_import"));
    assert!(
        list.to_string().contains("138****1111"),
        "phones in reviews are masked"
    );
    assert!(!list.to_string().contains("13800001111"));
}

async fn surveys_take_one_answer_per_visit_and_month_and_report_nps(app: TestApp) {
    let m = member(&app).await;
    let other = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    for pos in ["V-1", "V-2"] {
        simple_order(&app, pos, &m, 10_000).await;
    }
    simple_order(&app, "V-3", &other, 10_000).await;
    let nps = app
        .post(
            "/api/v1/surveys",
            json!({"name": "用餐后推荐度", "kind": "post_visit", "questions": [
            {"id": "nps", "text": "推荐给朋友的可能性", "kind": "nps"},
            {"id": "reason", "text": "原因", "kind": "text", "required": false}]}),
        )
        .await;
    assert_eq!(nps.status, 201, "{}", nps.body);
    let nps = nps.body["id"].as_str().unwrap().to_string();
    let bad = app
        .post(
            "/api/v1/surveys",
            json!({"name": "x", "kind": "monthly", "questions": [
            {"id": "a", "text": "q", "kind": "nps"}, {"id": "a", "text": "q", "kind": "scale5"}]}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let answer = |survey: String, member: String, pos: Option<&str>, answers: Value| {
        let mut body = json!({"member_id": member, "store_code": "CD01", "answers": answers});
        if let Some(p) = pos {
            body["pos_order_id"] = json!(p);
        }
        let app = &app;
        async move {
            app.post(&format!("/api/v1/surveys/{survey}/responses"), body)
                .await
        }
    };
    let r = answer(nps.clone(), m.clone(), Some("V-1"), json!({"nps": 10})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["nps_group"], "promoter");
    assert!(r.body["feedback_id"].is_null());
    let r = answer(nps.clone(), m.clone(), Some("V-1"), json!({"nps": 9})).await;
    assert_eq!((r.status, r.code()), (409, "already_answered"));
    let r = answer(nps.clone(), m.clone(), Some("V-3"), json!({"nps": 9})).await;
    assert_eq!(r.code(), "unknown_order", "another member's visit");
    let r = answer(nps.clone(), m.clone(), None, json!({"nps": 9})).await;
    assert_eq!(r.status, 422);
    let r = answer(nps.clone(), m.clone(), Some("V-2"), json!({"nps": 12})).await;
    assert_eq!(r.status, 422);
    let r = answer(
        nps.clone(),
        m.clone(),
        Some("V-2"),
        json!({"nps": 3, "reason": "上菜太慢，等了四十分钟"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["nps_group"], "detractor");
    let fid = r.body["feedback_id"]
        .as_str()
        .expect("a detractor becomes feedback")
        .to_string();
    let f = app.get(&format!("/api/v1/feedback/{fid}")).await.body;
    assert_eq!(f["category"], "waiting_time");
    assert_eq!(f["member_id"], m.as_str());
    assert_eq!(f["status"], "open");
    assert_eq!(
        answer(nps.clone(), other.clone(), Some("V-3"), json!({"nps": 8}))
            .await
            .status,
        201
    );

    let monthly = app
        .post("/api/v1/surveys", json!({"name": "月度满意度", "kind": "monthly", "questions": [
            {"id": "food", "text": "菜品", "kind": "scale5"}, {"id": "service", "text": "服务", "kind": "scale5"},
            {"id": "environment", "text": "环境", "kind": "scale5"}, {"id": "value", "text": "性价比", "kind": "scale5"},
            {"id": "speed", "text": "速度", "kind": "scale5"}]}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let full = json!({"food": 5, "service": 4, "environment": 4, "value": 3, "speed": 4});
    assert_eq!(
        answer(monthly.clone(), m.clone(), None, json!({"food": 6}))
            .await
            .status,
        422
    );
    assert_eq!(
        answer(monthly.clone(), m.clone(), None, full.clone())
            .await
            .status,
        201
    );
    let again = answer(monthly.clone(), m.clone(), None, full).await;
    assert_eq!((again.status, again.code()), (409, "already_answered"));
    assert_eq!(
        answer(
            monthly.clone(),
            other.clone(),
            None,
            json!({"food": 3, "service": 2, "environment": 4, "value": 3, "speed": 4})
        )
        .await
        .status,
        201
    );

    let results = app
        .get(&format!("/api/v1/surveys/{nps}/results"))
        .await
        .body;
    assert_eq!(results["responses"], 3);
    // One promoter (10), one passive (8), one detractor (3): NPS 0.
    assert_eq!(results["nps"], 0.0);
    assert_eq!(results["groups"][0]["key"], "CD01");
    assert_eq!(results["groups"][0]["detractors"], 1);
    let by_month = app
        .get(&format!("/api/v1/surveys/{monthly}/results?by=month"))
        .await
        .body;
    assert_eq!(by_month["averages"]["food"], 4.0);
    assert_eq!(by_month["averages"]["service"], 3.0);
    assert_eq!(by_month["groups"].as_array().unwrap().len(), 1);
    let by_region = app
        .get(&format!("/api/v1/surveys/{monthly}/results?by=region"))
        .await
        .body;
    assert_eq!(by_region["groups"][0]["key"], "西南");
    assert_eq!(
        app.get(&format!("/api/v1/surveys/{monthly}/results?by=week"))
            .await
            .status,
        422
    );
    assert_ledger_sound(&app).await;
}

async fn complaint_rates_flag_stores_and_the_jobs_raise_alerts_once(app: TestApp) {
    app.create_store("CD01", "成都").await;
    app.create_store("CD02", "成都").await;
    for store in ["CD01", "CD02"] {
        for i in 0..60 {
            let mut body = order_json(
                &format!("{store}-{i}"),
                None,
                &ago(chrono::Duration::hours(2)),
                json!([dish("D1", "毛肚", 1, 5_000)]),
                5_000,
            );
            body["store_code"] = json!(store);
            assert_eq!(order(&app, body).await.status, 201);
        }
    }
    complaint(&app, None, "服务员态度很差", 1).await; // CD01
    let rates = app.get("/api/v1/alerts/complaint-rates").await.body;
    let line = |key: &str| {
        rates["stores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(line("CD01")["orders"], 60);
    assert_eq!(line("CD01")["complaints"], 1);
    assert_eq!(line("CD01")["per_1000"], 16.7);
    assert_eq!(line("CD01")["flags"], json!(["over_threshold"]));
    assert!(line("CD02").get("flags").is_none());
    assert_eq!(rates["regions"][0]["per_1000"], 8.3);
    let now = Utc::now().timestamp_millis();
    let first = run_jobs(&app, now).await;
    assert_eq!(first.alerts_raised, 2, "CD01 and its region");
    assert_eq!(
        run_jobs(&app, now + 60_000).await.alerts_raised,
        0,
        "once a day"
    );
    let alerts = app.get("/api/v1/alerts").await.body;
    assert_eq!(alerts.as_array().unwrap().len(), 2);
    assert!(alerts.to_string().contains("store:CD01"));
    assert_eq!(outbox(&app, "alert.complaint_rate").await, 2);
    let manager = app.key_for(Role::StoreManager, Some("CD02")).await;
    let mine = app
        .send("GET", "/api/v1/alerts", Some(&manager), None)
        .await
        .body;
    assert!(
        mine.as_array().unwrap().is_empty(),
        "CD02 sees only its own alerts"
    );
}

async fn top_tier_birthdays_become_call_tasks(app: TestApp) {
    use chrono::Datelike;
    app.create_store("CD01", "成都").await;
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let birthday = format!("1985-{:02}-{:02}", today.month(), today.day().min(28));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = app
            .create_member(
                json!({"phone": random_phone(), "home_store": "CD01", "birthday": birthday}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let floor = app
        .send(
            "PUT",
            &format!("/api/v1/members/{}/tier-floor", ids[0]),
            Some(&app.admin_key.clone()),
            Some(json!({"tier": "gold", "until": "2099-12-31", "reason": "VIP"})),
        )
        .await;
    assert_eq!(floor.status, 200, "{}", floor.body);
    let now = Utc::now().timestamp_millis();
    run_jobs(&app, now).await;
    run_jobs(&app, now + 60_000).await;
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let tasks = app
        .send("GET", "/api/v1/tasks", Some(&manager), None)
        .await
        .body;
    let calls: Vec<&Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "birthday_call")
        .collect();
    assert_eq!(
        calls.len(),
        1,
        "one call, for the gold member only, once: {tasks}"
    );
    assert_eq!(calls[0]["member_id"], ids[0].as_str());
    let id = calls[0]["id"].as_str().unwrap();
    let done = app
        .send(
            "POST",
            &format!("/api/v1/tasks/{id}/done"),
            Some(&manager),
            Some(json!({"outcome": "已致电祝福，预订了周六包间"})),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "done");
    let again = app
        .send(
            "POST",
            &format!("/api/v1/tasks/{id}/done"),
            Some(&manager),
            Some(json!({"outcome": "x"})),
        )
        .await;
    assert_eq!(again.status, 409);
}

async fn declining_vips_get_a_care_call_first(app: TestApp) {
    let vip = member(&app).await;
    let steady = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    // ¥6,000 four to five months ago makes both VIPs (12-month spend over
    // ¥5,000); only one keeps coming.
    for (i, m) in [&vip, &steady].iter().enumerate() {
        for k in 0..2 {
            let at = ago(chrono::Duration::days(120 + k * 20));
            let body = order_json(
                &format!("OLD-{i}-{k}"),
                Some(m),
                &at,
                json!([dish("D1", "和牛", 1, 300_000)]),
                300_000,
            );
            assert_eq!(order(&app, body).await.status, 201);
        }
    }
    for k in 0..2 {
        let at = ago(chrono::Duration::days(10 + k * 20));
        let body = order_json(
            &format!("NEW-{k}"),
            Some(&steady),
            &at,
            json!([dish("D1", "和牛", 1, 300_000)]),
            300_000,
        );
        assert_eq!(order(&app, body).await.status, 201);
    }
    let now = Utc::now().timestamp_millis();
    assert_eq!(run_jobs(&app, now).await.care_calls, 1);
    assert_eq!(
        run_jobs(&app, now + 60_000).await.care_calls,
        0,
        "once a quarter"
    );
    let tasks = app.get("/api/v1/tasks?store=CD01").await.body;
    let calls: Vec<&Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "care_call")
        .collect();
    assert_eq!(calls.len(), 1, "{tasks}");
    assert_eq!(calls[0]["member_id"], vip.as_str());
    assert!(
        calls[0]["title"].as_str().unwrap().contains("¥6000"),
        "{}",
        calls[0]
    );
    assert_eq!(outbox(&app, "member.vip_decline").await, 1);
}

async fn staff_attach_photos_to_feedback(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let f = complaint(&app, None, "顾客来电：菜里有异物，已拍照", 1).await;
    let id = f["id"].as_str().unwrap();
    let staff = app.key_for(Role::Staff, Some("CD01")).await;
    let send = |form: reqwest::multipart::Form| {
        let (base, staff) = (app.base.clone(), staff.clone());
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{base}/api/v1/feedback/{id}/photos"))
                .bearer_auth(staff)
                .multipart(form)
                .send()
                .await
                .unwrap();
            Reply::read(resp).await
        }
    };
    let two = reqwest::multipart::Form::new()
        .part("photo", photo_part(png(1_500_000), "a.png"))
        .part(
            "photo",
            photo_part(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], "b.jpg"),
        );
    let r = send(two).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(r.body[1]["content_type"], "image/jpeg");
    let bad =
        reqwest::multipart::Form::new().part("photo", photo_part(b"%PDF-1.7".to_vec(), "c.png"));
    assert_eq!(send(bad).await.status, 422);
    let too_many = reqwest::multipart::Form::new()
        .part("photo", photo_part(png(100), "c.png"))
        .part("photo", photo_part(png(100), "d.png"));
    let r = send(too_many).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("it has 2"));
    let v = app.get(&format!("/api/v1/feedback/{id}")).await.body;
    assert_eq!(
        v["photos"].as_array().unwrap().len(),
        2,
        "the refused uploads stored nothing"
    );
    app.create_store("BJ01", "北京").await;
    let other = app.key_for(Role::Staff, Some("BJ01")).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/feedback/{id}/photos", app.base))
        .bearer_auth(other)
        .multipart(reqwest::multipart::Form::new().part("photo", photo_part(png(100), "e.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
