//! Campaigns sent end to end through the jobs run (`regulars jobs run
//! --now` calls the same `run_due`): a birthday and a dormant win-back
//! campaign reach members over a real SMTP server and a real HTTP gateway;
//! members without consent, inside quiet hours or over the cap get nothing;
//! a second run sends nothing again; a failing gateway is retried, then
//! dead-lettered and replayed; opt-outs by link and by SMS reply; and the
//! reported uplift on data whose true effect is known.

use crate::helpers::{random_phone, TestApp};
use crate::loyalty::{ago, dish, order, order_json, run_jobs};
use crate::on_both_backends;
use crate::receivers::{gateway, smtp_sink, Gateway};
use chrono::{DateTime, Datelike, Duration, FixedOffset, TimeZone, Utc};
use regulars_core::campaign::{sign_webhook, verify_webhook};
use serde_json::{json, Value};
use std::collections::BTreeSet;

on_both_backends!(
    birthday_and_winback_campaigns_reach_the_right_members_once,
    a_failing_gateway_is_retried_then_dead_lettered_and_replayed,
    members_opt_out_by_link_and_by_sms_reply,
    uplift_on_generated_data_contains_the_true_effect,
);

const SECRET: &str = "gateway-secret-for-tests";

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

/// Tomorrow at `hour`:00 in China: after every member and order the test
/// makes, and at a known wall-clock time.
fn tomorrow_at(hour: u32) -> DateTime<FixedOffset> {
    let tomorrow = Utc::now().with_timezone(&china()).date_naive() + Duration::days(1);
    china()
        .from_local_datetime(&tomorrow.and_hms_opt(hour, 0, 0).unwrap())
        .unwrap()
}

/// Noon in China on the day after `ms`: outside quiet hours.
fn noon_after(ms: i64) -> i64 {
    let day = DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&china())
        .date_naive()
        + Duration::days(1);
    china()
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis()
}

async fn put_channels(app: &TestApp, sms: &Gateway, smtp_port: u16) {
    let r = app
        .send(
            "PUT",
            "/api/v1/campaign-channels",
            Some(&app.admin_key.clone()),
            Some(json!({
                "sms": {"url": format!("{}/sms", sms.base), "secret": SECRET, "rate_per_second": 500},
                "email": {"host": "127.0.0.1", "port": smtp_port,
                          "from": "蜀香会员 <members@shuxiang.test>", "security": "none"},
                "public_url": "https://crm.shuxiang.test"
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["sms"]["secret"], "(set)",
        "a secret is never shown again"
    );
}

/// HQ's rules for these tests: quiet 21:00–09:00, one SMS a week, no
/// cross-campaign de-duplication (so the cap is what stops the second).
async fn put_delivery_rules(app: &TestApp) {
    let r = app
        .send(
            "PUT",
            "/api/v1/campaign-settings",
            Some(&app.admin_key.clone()),
            Some(json!({
                "delivery": {"quiet_from": "21:00:00", "quiet_until": "09:00:00",
                             "caps": [{"channel": "sms", "max": 1, "window_days": 7}],
                             "dedup_hours": 0},
                "approval_above": 5000
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn active_campaign(app: &TestApp, spec: Value) -> String {
    let created = app.post("/api/v1/campaigns", spec).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let live = app
        .post(
            &format!("/api/v1/campaigns/{id}/status"),
            json!({"change": "submit"}),
        )
        .await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert_eq!(live.body["status"], "active");
    id
}

struct Guest {
    id: String,
    phone: String,
}

async fn guest(app: &TestApp, extra: Value) -> Guest {
    app.create_store("CD01", "成都").await;
    let phone = random_phone();
    let mut body = json!({"phone": phone, "home_store": "CD01"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.create_member(body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    Guest {
        id: r.body["id"].as_str().unwrap().to_string(),
        phone: format!("+86{phone}"),
    }
}

async fn sends(app: &TestApp, campaign: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/campaigns/{campaign}/sends?limit=5000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

fn send_of<'a>(list: &'a [Value], member: &str) -> Option<&'a Value> {
    list.iter().find(|s| s["member_id"] == member)
}

/// Phones the gateway delivered to.
fn phones(sms: &Gateway) -> Vec<String> {
    let mut p: Vec<String> = sms
        .messages()
        .iter()
        .map(|r| r.json["to"].as_str().unwrap_or_default().to_string())
        .collect();
    p.sort();
    p
}

async fn birthday_and_winback_campaigns_reach_the_right_members_once(app: TestApp) {
    let sms = gateway().await;
    let smtp = smtp_sink().await;
    put_channels(&app, &sms, smtp.port).await;
    put_delivery_rules(&app).await;
    let now = tomorrow_at(14);
    let birthday = (now.date_naive() + Duration::days(3))
        .with_year(1990)
        .unwrap();
    let born = |extra: Value| {
        let mut v = json!({"birthday": birthday.to_string()});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };

    let by_sms = guest(
        &app,
        born(json!({"name": "王芳", "consents": {"sms": true}})),
    )
    .await;
    let by_mail = guest(
        &app,
        born(json!({"name": "李雷", "email": "lilei@guest.test", "consents": {"email": true}})),
    )
    .await;
    let no_consent = guest(&app, born(json!({"email": "x@guest.test"}))).await;
    let abroad = guest(&app, born(json!({"consents": {"sms": true}}))).await;
    // 14:00 in China is 22:00 the day before in Los Angeles: quiet hours.
    let r = app
        .send(
            "PUT",
            &format!("/api/v1/members/{}/messaging", abroad.id),
            Some(&app.admin_key.clone()),
            Some(json!({"time_zone": "America/Los_Angeles", "language": "en"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lapsed = guest(&app, json!({"consents": {"sms": true}})).await;
    // Born in three days and lapsed: two campaigns, one SMS a week.
    let capped = guest(&app, born(json!({"consents": {"sms": true}}))).await;
    let regular = guest(&app, json!({"consents": {"sms": true}})).await;
    for (n, (who, days)) in [(&lapsed, 90), (&capped, 100), (&regular, 3)]
        .into_iter()
        .enumerate()
    {
        let r = order(
            &app,
            order_json(
                &format!("P{n}"),
                Some(&who.id),
                &ago(Duration::days(days)),
                json!([dish("D001", "毛肚", 1, 6800)]),
                6800,
            ),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    let template = |zh: &str, en: &str| json!({"name": "A", "template": {"zh": zh, "en": en}});
    let birthday_campaign = active_campaign(
        &app,
        json!({"name": "生日关怀", "trigger": {"kind": "birthday", "days_before": 3},
               "channels": ["sms", "email"], "control_permille": 0,
               "variants": [template("{name}，三天后是您的生日！{tier}会员生日礼已备好。退订：{unsubscribe}",
                                     "{name}, your birthday is in three days! Unsubscribe: {unsubscribe}")]}),
    )
    .await;
    let winback = active_campaign(
        &app,
        json!({"name": "沉睡唤醒", "trigger": {"kind": "dormant", "days": 60},
               "channels": ["sms", "email"], "control_permille": 0,
               "variants": [template("{name}，好久不见，回来尝尝新菜吧！", "{name}, we miss you!")]}),
    )
    .await;

    let report = run_jobs(&app, now.timestamp_millis()).await;
    assert_eq!(report.campaign_messages.sent, 4, "{report:?}");

    // The gateway: the birthday SMS, the win-back SMS, one of two for the
    // capped guest; every request signed with the gateway's secret.
    assert_eq!(
        phones(&sms),
        {
            let mut p = vec![
                by_sms.phone.clone(),
                lapsed.phone.clone(),
                capped.phone.clone(),
            ];
            p.sort();
            p
        },
        "SMS to the birthday guest, the lapsed guest and once to the capped guest"
    );
    for r in sms.requests() {
        assert_eq!(r.path, "/sms");
        verify_webhook(
            SECRET.as_bytes(),
            r.header("regulars-signature"),
            &r.body,
            Utc::now().timestamp(),
            300,
        )
        .expect("each gateway request is signed");
    }
    let to_wang = sms
        .messages()
        .into_iter()
        .find(|r| r.json["to"] == by_sms.phone.as_str())
        .unwrap();
    let text = to_wang.json["text"].as_str().unwrap();
    assert!(
        text.starts_with("王芳，三天后是您的生日！普通会员生日礼已备好。"),
        "{text}"
    );
    assert!(text.contains("https://crm.shuxiang.test/u/"), "{text}");

    // The SMTP server: one mail, to the guest who consented to e-mail only.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, vec!["<lilei@guest.test>".to_string()]);
    assert_eq!(mails[0].from, "<members@shuxiang.test>");
    let data = &mails[0].data;
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(
        data.contains("text/plain") && data.contains("text/html"),
        "{data}"
    );
    assert!(
        data.contains("List-Unsubscribe: <https://crm.shuxiang.test/u/"),
        "{data}"
    );
    let birthday_sends = sends(&app, &birthday_campaign).await;
    let mail_send = send_of(&birthday_sends, &by_mail.id).unwrap();
    assert!(
        data.contains(&format!(
            "Message-ID: <{}@regulars>",
            mail_send["id"].as_str().unwrap()
        )),
        "the send id is the mail's Message-ID: {data}"
    );

    // Who got nothing, and why.
    let reason = |list: &[Value], m: &Guest| {
        let s = send_of(list, &m.id).unwrap();
        (
            s["status"].as_str().unwrap().to_string(),
            s["skip_reason"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        reason(&birthday_sends, &no_consent),
        ("skipped".into(), Some("no_consent".into()))
    );
    assert_eq!(
        reason(&birthday_sends, &abroad),
        ("pending".into(), None),
        "deferred to 09:00 LA"
    );
    let winback_sends = sends(&app, &winback).await;
    assert!(
        send_of(&winback_sends, &regular.id).is_none(),
        "came 3 days ago"
    );
    let capped_outcomes: BTreeSet<(String, Option<String>)> = [
        reason(&birthday_sends, &capped),
        reason(&winback_sends, &capped),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        capped_outcomes,
        [
            ("sent".into(), None),
            ("skipped".into(), Some("capped".into()))
        ]
        .into(),
    );

    // A second run finds the same members and sends nothing again.
    let again = run_jobs(&app, now.timestamp_millis()).await;
    assert_eq!(again.campaign_entries, 0, "{again:?}");
    assert_eq!(again.campaign_messages.sent, 0, "{again:?}");
    assert_eq!(sms.messages().len(), 3);
    assert_eq!(sms.requests().len(), 3, "not even a repeated request");
    assert_eq!(smtp.mails().len(), 1);

    // Once it is 09:00 in Los Angeles, the deferred birthday SMS goes, in English.
    let la_morning = now + Duration::hours(12);
    let later = run_jobs(&app, la_morning.timestamp_millis()).await;
    assert_eq!(later.campaign_messages.sent, 1, "{later:?}");
    let to_abroad = sms
        .messages()
        .into_iter()
        .find(|r| r.json["to"] == abroad.phone.as_str())
        .expect("the deferred SMS arrived");
    assert!(
        to_abroad.json["text"]
            .as_str()
            .unwrap()
            .starts_with("member, your birthday is in three days!"),
        "{}",
        to_abroad.json
    );

    // The funnel in the results.
    let results = app
        .get(&format!("/api/v1/campaigns/{birthday_campaign}/results"))
        .await;
    assert_eq!(results.status, 200, "{}", results.body);
    let capped_birthday_sent = send_of(&birthday_sends, &capped.id).unwrap()["status"] == "sent";
    assert_eq!(
        results.body["delivered_by_channel"]["sms"],
        2 + u64::from(capped_birthday_sent)
    );
    assert_eq!(results.body["delivered_by_channel"]["email"], 1);
}

async fn a_failing_gateway_is_retried_then_dead_lettered_and_replayed(app: TestApp) {
    let sms = gateway().await;
    let smtp = smtp_sink().await;
    put_channels(&app, &sms, smtp.port).await;
    let first = guest(&app, json!({"consents": {"sms": true}})).await;
    let now = tomorrow_at(12);
    let campaign = active_campaign(
        &app,
        json!({"name": "周末新品", "channels": ["sms"], "control_permille": 0,
               "trigger": {"kind": "scheduled", "send_at": now.to_rfc3339()},
               "variants": [{"name": "A", "template": {"zh": "新品上市", "en": "New dishes"}}]}),
    )
    .await;

    // Two 500s: retried after 30 s and 60 s, delivered on the third try.
    sms.fail_next(2);
    let mut at = now.timestamp_millis();
    let r = run_jobs(&app, at).await;
    assert_eq!(r.campaign_messages.retrying, 1, "{r:?}");
    assert_eq!(
        run_jobs(&app, at + 1_000).await.campaign_messages.sent,
        0,
        "not before its time"
    );
    at += 31_000;
    assert_eq!(run_jobs(&app, at).await.campaign_messages.retrying, 1);
    at += 61_000;
    assert_eq!(run_jobs(&app, at).await.campaign_messages.sent, 1);
    let list = sends(&app, &campaign).await;
    let s = send_of(&list, &first.id).unwrap();
    assert_eq!(
        (s["status"].as_str(), s["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );
    let keys: BTreeSet<String> = sms
        .requests()
        .iter()
        .map(|r| r.idempotency_key().to_string())
        .collect();
    assert_eq!(keys.len(), 1, "every try carried the same idempotency key");
    assert_eq!(sms.messages().len(), 1);
    at += 86_400_000;
    run_jobs(&app, at).await;
    assert_eq!(sms.requests().len(), 3, "retries stop after success");

    // A gateway that keeps failing: eight attempts, then a dead letter.
    let second = guest(&app, json!({"consents": {"sms": true}})).await;
    let later = active_campaign(
        &app,
        json!({"name": "会员日", "channels": ["sms"], "control_permille": 0,
               "trigger": {"kind": "scheduled", "send_at": now.to_rfc3339()},
               "variants": [{"name": "A", "template": {"zh": "会员日", "en": "Member day"}}]}),
    )
    .await;
    sms.fail_next(1_000);
    let mut letter = None;
    for _ in 0..60 {
        run_jobs(&app, at).await;
        at += 3 * 3_600_000;
        let dead = app
            .get(&format!("/api/v1/campaigns/{later}/sends?status=dead"))
            .await;
        assert_eq!(dead.status, 200);
        letter = dead
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["member_id"] == second.id.as_str())
            .cloned();
        if letter.is_some() {
            break;
        }
    }
    let Some(letter) = letter else {
        panic!(
            "no dead letter for the second guest: {:?}",
            sends(&app, &later).await
        );
    };
    assert_eq!(letter["attempts"], 8);
    assert!(letter["last_error"].as_str().unwrap().contains("500"));
    let tries = sms.requests().len();
    run_jobs(&app, noon_after(at)).await;
    assert_eq!(
        sms.requests().len(),
        tries,
        "a dead letter is not retried by itself"
    );

    // Replayed from the console once the provider is back.
    sms.fail_next(0);
    let id = letter["id"].as_str().unwrap();
    let replay = app
        .post(
            &format!("/api/v1/campaigns/{later}/sends/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(replay.status, 204, "{}", replay.body);
    let again = app
        .post(
            &format!("/api/v1/campaigns/{later}/sends/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 404, "only a dead letter can be replayed");
    run_jobs(&app, noon_after(at)).await;
    assert!(sms
        .messages()
        .iter()
        .any(|r| r.json["to"] == second.phone.as_str()));
    let bad = app
        .get(&format!("/api/v1/campaigns/{later}/sends?status=lost"))
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_status"));
}

async fn members_opt_out_by_link_and_by_sms_reply(app: TestApp) {
    let sms = gateway().await;
    let smtp = smtp_sink().await;
    put_channels(&app, &sms, smtp.port).await;
    let by_link = guest(&app, json!({"consents": {"sms": true}})).await;
    let by_reply = guest(&app, json!({"consents": {"sms": true}})).await;
    let now = tomorrow_at(11);
    active_campaign(
        &app,
        json!({"name": "新品", "channels": ["sms", "inbox"], "control_permille": 0,
               "trigger": {"kind": "scheduled", "send_at": now.to_rfc3339()},
               "variants": [{"name": "A", "template": {"zh": "新品上市 {unsubscribe}", "en": "New {unsubscribe}"}}]}),
    )
    .await;
    run_jobs(&app, now.timestamp_millis()).await;
    let link = sms
        .messages()
        .into_iter()
        .find(|r| r.json["to"] == by_link.phone.as_str())
        .unwrap()
        .json["unsubscribe_url"]
        .as_str()
        .unwrap()
        .to_string();
    let path = link.trim_start_matches("https://crm.shuxiang.test");

    // The link asks first (mail scanners open links), the form records it.
    let page = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("确认退订"));
    let member = app.get(&format!("/api/v1/members/{}", by_link.id)).await;
    assert_eq!(
        member.body["consents"]["sms"]["granted"], true,
        "a GET changes nothing"
    );
    let done = app
        .client
        .post(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let member = app.get(&format!("/api/v1/members/{}", by_link.id)).await;
    assert_eq!(member.body["consents"]["sms"]["granted"], false);
    let forged = app
        .client
        .post(format!(
            "{}/u/{}/00112233445566778899aabbccddeeff",
            app.base, by_link.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a forged link opts nobody out");

    // "TD" by SMS reply, forwarded signed by the gateway.
    let reply = json!({"phone": by_reply.phone, "text": " td "}).to_string();
    let unsigned = app
        .client
        .post(format!("{}/api/v1/channels/sms/inbound", app.base))
        .body(reply.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let signed = app
        .client
        .post(format!("{}/api/v1/channels/sms/inbound", app.base))
        .header(
            "regulars-signature",
            sign_webhook(SECRET.as_bytes(), Utc::now().timestamp(), reply.as_bytes()),
        )
        .body(reply)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    assert_eq!(signed.json::<Value>().await.unwrap()["action"], "opted_out");

    // The next campaign reaches neither, not even in the inbox.
    let next = active_campaign(
        &app,
        json!({"name": "会员日", "channels": ["sms", "inbox"], "control_permille": 0,
               "trigger": {"kind": "scheduled", "send_at": now.to_rfc3339()},
               "variants": [{"name": "A", "template": {"zh": "会员日", "en": "Member day"}}]}),
    )
    .await;
    let before = sms.requests().len();
    run_jobs(&app, now.timestamp_millis() + 86_400_000 * 2).await;
    assert_eq!(sms.requests().len(), before);
    let list = sends(&app, &next).await;
    for who in [&by_link, &by_reply] {
        assert_eq!(
            send_of(&list, &who.id).unwrap()["skip_reason"],
            "unsubscribed"
        );
        let inbox = app.get(&format!("/api/v1/members/{}/inbox", who.id)).await;
        assert_eq!(inbox.status, 200, "{}", inbox.body);
        assert_eq!(
            inbox.body.as_array().unwrap().len(),
            0,
            "not even in the inbox"
        );
    }
}

/// A campaign to 1,200 members through the inbox, 30% held out. The test
/// then plays the members' behaviour with a known effect: 35% of the
/// treated come back within the window against 20% of the control group
/// (true uplift 15 points), each visit ¥80 (true spend uplift ¥12 a
/// member). Exact shares are drawn in each arm, so the truth is the
/// effect in these very members; the interval must contain it and be
/// narrow enough to say something.
async fn uplift_on_generated_data_contains_the_true_effect(app: TestApp) {
    app.create_store("CD01", "成都").await;
    for _ in 0..1_200 {
        let r = app
            .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // The campaign went out three days ago, so the visits that follow are in the past.
    let sent_at = Utc::now() - Duration::days(3);
    let campaign = active_campaign(
        &app,
        json!({"name": "回归礼", "channels": ["inbox"], "control_permille": 300,
               "attribution_days": 14,
               "trigger": {"kind": "scheduled", "send_at": sent_at.to_rfc3339()},
               "variants": [{"name": "A", "template": {"zh": "回来吃火锅", "en": "Come back"}}]}),
    )
    .await;
    run_jobs(&app, sent_at.timestamp_millis()).await;
    let list = sends(&app, &campaign).await;
    assert_eq!(list.len(), 1_200);
    let arm = |name: &str| -> Vec<String> {
        let mut ids: Vec<String> = list
            .iter()
            .filter(|s| (s["arm"] == "control") == (name == "control"))
            .map(|s| s["member_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let (treated, control) = (arm("treated"), arm("control"));
    assert!(
        (300..=420).contains(&control.len()),
        "about 30% held out: {}",
        control.len()
    );
    assert!(list
        .iter()
        .filter(|s| s["arm"] != "control")
        .all(|s| s["status"] == "sent"));
    assert!(list
        .iter()
        .filter(|s| s["arm"] == "control")
        .all(|s| s["status"] == "control"));

    let visit_at = (Utc::now() - Duration::days(1))
        .with_timezone(&china())
        .to_rfc3339();
    let mut pos = 0;
    for (members, share) in [(&treated, 0.35), (&control, 0.20)] {
        let visitors = (members.len() as f64 * share).round() as usize;
        for m in members.iter().take(visitors) {
            pos += 1;
            let r = order(
                &app,
                order_json(
                    &format!("U{pos}"),
                    Some(m),
                    &visit_at,
                    json!([dish("D001", "锅底", 1, 8000)]),
                    8000,
                ),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }
    let true_rate = |members: &[String], share: f64| {
        (members.len() as f64 * share).round() / members.len() as f64
    };
    let truth = true_rate(&treated, 0.35) - true_rate(&control, 0.20);
    let truth_spend = truth * 8000.0;

    let results = app
        .get(&format!("/api/v1/campaigns/{campaign}/results"))
        .await;
    assert_eq!(results.status, 200, "{}", results.body);
    let uplift = &results.body["uplift"][0];
    assert_eq!(uplift["arm"], "all");
    let (est, low, high) = (
        uplift["visit_rate"]["estimate"].as_f64().unwrap(),
        uplift["visit_rate"]["low"].as_f64().unwrap(),
        uplift["visit_rate"]["high"].as_f64().unwrap(),
    );
    assert!(low <= truth && truth <= high, "{truth} in [{low}, {high}]");
    assert!(
        (est - truth).abs() < 1e-9,
        "the estimate is the effect in these members"
    );
    assert!(
        low > 0.0 && high - low < 0.2,
        "a useful interval: [{low}, {high}]"
    );
    let spend = &uplift["spend_per_member_fen"];
    let (slow, shigh) = (
        spend["low"].as_f64().unwrap(),
        spend["high"].as_f64().unwrap(),
    );
    assert!(
        slow <= truth_spend && truth_spend <= shigh,
        "{truth_spend} in [{slow}, {shigh}]"
    );
    let arms = results.body["arms"].as_array().unwrap();
    let control_arm = arms.iter().find(|a| a["arm"] == "control").unwrap();
    assert_eq!(control_arm["members"], control.len());
    assert_eq!(
        control_arm["delivered"], 0,
        "the control group is sent nothing"
    );
}
