//! Outgoing webhooks end to end: events caused through the real API reach a
//! real local receiver, signed with the secret shown at creation; failures
//! are retried with backoff until delivered (then never again) or dead;
//! replay sends a dead letter again; unsubscribed kinds and inactive
//! subscriptions get nothing; two passes at once send each event once.

use crate::helpers::{Reply, TestApp};
use crate::loyalty::{member, simple_order};
use crate::on_both_backends;
use crate::receivers::{gateway, Gateway, GatewayRequest};
use regulars_core::access::{allows, Action, Role};
use regulars_core::campaign::{verify_webhook, SignatureError, MAX_ATTEMPTS};
use regulars_server::app::webhooks::deliver_due;
use regulars_store::now_ms;
use serde_json::{json, Value};

on_both_backends!(
    deliveries_are_signed_and_only_what_was_asked_for,
    failures_are_retried_with_backoff_until_delivered_then_never_again,
    dead_letters_after_max_attempts_and_replay_sends_again,
    concurrent_passes_deliver_each_event_once,
    a_lease_left_by_a_dead_node_is_taken_over_once_it_runs_out,
    bad_input_unknown_ids_and_other_roles_are_refused,
);

/// A real receiver on 127.0.0.1:0 that answers its first `fail_first`
/// requests with 500 (`usize::MAX`: every one).
async fn receiver(fail_first: usize) -> Gateway {
    let receiver = gateway().await;
    receiver.fail_next(fail_first);
    receiver
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Subscribe `url` to `kinds`; the id and the secret shown once.
async fn subscribe(app: &TestApp, url: &str, kinds: Value, active: bool) -> (String, String) {
    let r = app
        .post(
            "/api/v1/webhooks",
            json!({"url": url, "event_kinds": kinds, "active": active, "description": "POS bridge"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().expect("secret").to_string();
    assert_eq!(secret.len(), 64);
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    (r.body["id"].as_str().expect("id").to_string(), secret)
}

async fn deliveries(app: &TestApp, hook: &str, status: Option<&str>) -> Vec<Value> {
    let path = match status {
        Some(s) => format!("/api/v1/webhooks/{hook}/deliveries?status={s}"),
        None => format!("/api/v1/webhooks/{hook}/deliveries"),
    };
    let r = app.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().expect("array").clone()
}

async fn run(app: &TestApp, at: i64) -> regulars_server::app::webhooks::WebhookReport {
    deliver_due(&app.regulars, at).await.expect("deliver_due")
}

fn verify(secret: &str, r: &GatewayRequest) -> Result<(), SignatureError> {
    verify_webhook(
        secret.as_bytes(),
        r.header("regulars-signature"),
        &r.body,
        chrono::Utc::now().timestamp(),
        300,
    )
}

async fn fan_out_cursor(app: &TestApp) -> i64 {
    let mut conn = app.regulars.db.reader().await.expect("conn");
    sqlx::query_scalar("SELECT last_event_id FROM webhook_cursor WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .expect("cursor")
}

async fn last_event_id(app: &TestApp) -> i64 {
    let mut conn = app.regulars.db.reader().await.expect("conn");
    sqlx::query_scalar("SELECT CAST(MAX(id) AS BIGINT) FROM outbox_events")
        .fetch_one(&mut *conn)
        .await
        .expect("max id")
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

async fn deliveries_are_signed_and_only_what_was_asked_for(app: TestApp) {
    let m = member(&app).await;
    // Before any subscription: not sent later (no history).
    simple_order(&app, "W-OLD", &m, 3_000).await;

    let orders = receiver(0).await;
    let coupons = receiver(0).await;
    let off = receiver(0).await;
    let (hook, secret) = subscribe(&app, &orders.url("/hook"), json!(["order.*"]), true).await;
    let (coupon_hook, _) = subscribe(&app, &coupons.url("/hook"), json!(["coupon.*"]), true).await;
    let (_, _) = subscribe(&app, &off.url("/hook"), json!(["*"]), false).await;

    let placed = simple_order(&app, "W-1", &m, 4_200).await;
    let order_id = placed.body["order_id"]
        .as_str()
        .expect("order id")
        .to_string();
    let report = run(&app, now_ms()).await;
    assert_eq!(report.queued, 1, "{report:?}");
    assert_eq!(report.delivered, 1, "{report:?}");

    let got = orders.requests();
    assert_eq!(got.len(), 1, "only the order after the subscription");
    let r = &got[0];
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("regulars-event"), "order.accrued");
    let body = r.json.clone();
    assert_eq!(body["event"], "order.accrued");
    assert_eq!(body["id"], r.header("regulars-delivery"));
    assert_eq!(body["subject"], order_id.as_str());
    assert_eq!(body["member_id"], m.as_str());
    assert!(body["data"].is_object(), "{body}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap_or("")).is_ok(),
        "{body}"
    );

    // The signature holds under the secret shown at creation, and a bad
    // one is detectable.
    assert_eq!(verify(&secret, r), Ok(()));
    let mut tampered = r.clone();
    tampered.body = String::from_utf8_lossy(&r.body)
        .replace("order.accrued", "order.refunded")
        .into_bytes();
    assert_eq!(verify(&secret, &tampered), Err(SignatureError::Mismatch));
    assert_eq!(verify(&"0".repeat(64), r), Err(SignatureError::Mismatch));
    let mut unsigned = r.clone();
    unsigned.headers.remove("regulars-signature");
    assert_eq!(verify(&secret, &unsigned), Err(SignatureError::Malformed));

    // The secret is encrypted at rest.
    let mut conn = app.regulars.db.reader().await.expect("conn");
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_enc FROM webhook_subscriptions WHERE id = $1")
            .bind(&hook)
            .fetch_one(&mut *conn)
            .await
            .expect("secret_enc");
    drop(conn);
    assert!(!stored
        .windows(16)
        .any(|w| secret.as_bytes().windows(16).any(|s| s == w)));

    // Nothing for kinds not asked for, nothing for an inactive subscription.
    assert_eq!(coupons.requests().len(), 0);
    assert_eq!(off.requests().len(), 0);
    assert!(deliveries(&app, &coupon_hook, None).await.is_empty());

    // The log.
    let log = deliveries(&app, &hook, None).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status_code"], 200);
    assert_eq!(log[0]["event_kind"], "order.accrued");
    assert_eq!(log[0]["id"], body["id"]);
    assert!(deliveries(&app, &hook, Some("pending")).await.is_empty());
    assert_eq!(deliveries(&app, &hook, Some("delivered")).await.len(), 1);

    // Running again, even far later, sends nothing more.
    run(&app, now_ms()).await;
    run(&app, now_ms() + 30 * 24 * HOUR).await;
    assert_eq!(orders.requests().len(), 1);

    // A rotated secret signs what comes next; the old one no longer does.
    let rotated = app
        .post(&format!("/api/v1/webhooks/{hook}/rotate-secret"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_string();
    assert_ne!(new_secret, secret);
    simple_order(&app, "W-2", &m, 1_800).await;
    run(&app, now_ms()).await;
    let got = orders.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(verify(&new_secret, &got[1]), Ok(()));
    assert_eq!(verify(&secret, &got[1]), Err(SignatureError::Mismatch));

    // Listing and reading never show the secret.
    let list = app.get("/api/v1/webhooks").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().map(Vec::len), Some(3));
    assert!(!list.body.to_string().contains(&new_secret));
    let one = app.get(&format!("/api/v1/webhooks/{hook}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["event_kinds"], json!(["order.*"]));
    assert!(one.body.get("secret").is_none());

    // Deactivated: new events are not sent.
    let off_now = app
        .send(
            "PATCH",
            &format!("/api/v1/webhooks/{hook}"),
            Some(&app.admin_key),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(off_now.status, 200, "{}", off_now.body);
    assert_eq!(off_now.body["active"], false);
    simple_order(&app, "W-3", &m, 1_500).await;
    run(&app, now_ms()).await;
    assert_eq!(orders.requests().len(), 2);

    // Deleted with its log.
    let gone = app
        .send(
            "DELETE",
            &format!("/api/v1/webhooks/{hook}"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{hook}")).await.status,
        404
    );
}

async fn failures_are_retried_with_backoff_until_delivered_then_never_again(app: TestApp) {
    let m = member(&app).await;
    let receiver = receiver(2).await;
    let (hook, secret) =
        subscribe(&app, &receiver.url("/hook"), json!(["order.accrued"]), true).await;
    simple_order(&app, "R-1", &m, 5_000).await;

    let t0 = now_ms();
    let first = run(&app, t0).await;
    assert_eq!((first.attempted, first.retrying), (1, 1), "{first:?}");
    let log = deliveries(&app, &hook, Some("pending")).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status_code"], 500);
    assert_eq!(log[0]["last_error"], "HTTP 500 Internal Server Error");
    let next = log[0]["next_attempt_at"].as_i64().expect("next attempt");
    assert!(next > t0 && next <= t0 + 30_000, "30 s backoff with jitter");

    // Not due yet: nothing sent.
    run(&app, t0 + 10_000).await;
    assert_eq!(receiver.requests().len(), 1);

    // Second attempt fails, third succeeds.
    let t1 = t0 + 31_000;
    run(&app, t1).await;
    assert_eq!(receiver.requests().len(), 2);
    let t2 = t1 + 61_000;
    let third = run(&app, t2).await;
    assert_eq!(third.delivered, 1, "{third:?}");
    assert_eq!(receiver.requests().len(), 3);

    // Retries stop after success.
    run(&app, t2 + 7 * 24 * HOUR).await;
    run(&app, t2 + 30 * 24 * HOUR).await;
    assert_eq!(receiver.requests().len(), 3);
    // Once the events are old enough, the fan-out cursor has moved past them.
    assert_eq!(fan_out_cursor(&app).await, last_event_id(&app).await);

    let log = deliveries(&app, &hook, None).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status_code"], 200);
    assert_eq!(log[0]["delivered_at"], t2);

    // Every attempt carried the same body and delivery id, each signed.
    let got = receiver.requests();
    for r in &got {
        assert_eq!(r.body, got[0].body);
        assert_eq!(
            r.header("regulars-delivery"),
            log[0]["id"].as_str().unwrap_or("?")
        );
        assert_eq!(verify(&secret, r), Ok(()));
    }
}

async fn dead_letters_after_max_attempts_and_replay_sends_again(app: TestApp) {
    let m = member(&app).await;
    let receiver = receiver(usize::MAX).await;
    let (hook, _) = subscribe(&app, &receiver.url("/hook"), json!(["*"]), true).await;
    simple_order(&app, "D-1", &m, 2_000).await;

    let mut at = now_ms();
    for _ in 0..MAX_ATTEMPTS {
        run(&app, at).await;
        at += 7 * HOUR;
    }
    assert_eq!(receiver.requests().len(), MAX_ATTEMPTS as usize);
    let dead = deliveries(&app, &hook, Some("dead")).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["attempts"], i64::from(MAX_ATTEMPTS));
    assert_eq!(dead[0]["last_status_code"], 500);
    assert!(dead[0]["next_attempt_at"].is_null());
    // A dead letter is not tried again by itself.
    run(&app, at + 30 * 24 * HOUR).await;
    assert_eq!(receiver.requests().len(), MAX_ATTEMPTS as usize);

    // The receiver is fixed; HQ replays the dead letter.
    receiver.fail_next(0);
    let id = dead[0]["id"].as_str().expect("id").to_string();
    let replayed = app
        .post(
            &format!("/api/v1/webhook-deliveries/{id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.body["status"], "pending");
    assert_eq!(replayed.body["attempts"], 0);
    let report = run(&app, now_ms()).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(receiver.requests().len(), MAX_ATTEMPTS as usize + 1);
    let last = receiver.requests().pop().expect("last");
    assert_eq!(last.header("regulars-delivery"), id);
    let log = deliveries(&app, &hook, None).await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 1);

    // Replaying a delivered one sends it once more; the replays are audited.
    let again = app
        .post(
            &format!("/api/v1/webhook-deliveries/{id}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    run(&app, now_ms()).await;
    assert_eq!(receiver.requests().len(), MAX_ATTEMPTS as usize + 2);
    let mut conn = app.regulars.db.reader().await.expect("conn");
    let audit = regulars_store::staff::audit_of(&mut conn, &format!("webhook_delivery:{id}"))
        .await
        .expect("audit");
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["webhook.replay", "webhook.replay"]);
    assert!(
        audit[0].detail.starts_with("dead after 8 attempts"),
        "{}",
        audit[0].detail
    );
}

async fn concurrent_passes_deliver_each_event_once(app: TestApp) {
    let m = member(&app).await;
    let receiver = receiver(0).await;
    let (hook, _) = subscribe(&app, &receiver.url("/hook"), json!(["order.*"]), true).await;
    for i in 0..6 {
        simple_order(&app, &format!("C-{i}"), &m, 1_000 + i).await;
    }
    let at = now_ms();
    let (a, b) = tokio::join!(
        tokio::spawn({
            let regulars = app.regulars.clone();
            async move { deliver_due(&regulars, at).await }
        }),
        tokio::spawn({
            let regulars = app.regulars.clone();
            async move { deliver_due(&regulars, at).await }
        }),
    );
    let (a, b) = (a.expect("join").expect("a"), b.expect("join").expect("b"));
    assert_eq!(a.queued + b.queued, 6, "{a:?} {b:?}");
    assert_eq!(a.delivered + b.delivered, 6, "{a:?} {b:?}");
    // And a third and fourth pass, at once again, find nothing to do.
    let (c, d) = tokio::join!(
        deliver_due(&app.regulars, at),
        deliver_due(&app.regulars, at)
    );
    assert_eq!(c.expect("c").attempted + d.expect("d").attempted, 0);

    let got = receiver.requests();
    assert_eq!(got.len(), 6);
    let mut ids: Vec<_> = got
        .iter()
        .map(|r| r.header("regulars-delivery").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "each event once");
    let log = deliveries(&app, &hook, Some("delivered")).await;
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|d| d["attempts"] == 1));
}

/// A node claims a delivery and dies before sending it: nobody else sends
/// it while its lease lives; afterwards the next pass does, once.
async fn a_lease_left_by_a_dead_node_is_taken_over_once_it_runs_out(app: TestApp) {
    use regulars_server::app::webhooks::LEASE_MS;
    let m = member(&app).await;
    let receiver = receiver(0).await;
    let (hook, _) = subscribe(&app, &receiver.url("/hook"), json!(["order.*"]), true).await;
    simple_order(&app, "L-1", &m, 2_500).await;
    let t0 = now_ms();
    // A first pass queues it and its first attempt fails: due again within 30 s.
    receiver.fail_next(usize::MAX);
    let first = run(&app, t0).await;
    assert_eq!(first.retrying, 1, "{first:?}");
    receiver.fail_next(0);
    let due = t0 + 31_000;
    let claimed = {
        let mut conn = app.regulars.db.writer().await.expect("conn");
        regulars_store::webhooks::claim_due(
            &mut conn,
            app.regulars.db.backend,
            due,
            due + LEASE_MS,
            10,
        )
        .await
        .expect("claim")
    };
    assert_eq!(claimed.len(), 1, "the dead node's claim");
    // While the lease lives, other passes leave it alone.
    run(&app, due).await;
    run(&app, due + LEASE_MS - 1).await;
    assert_eq!(receiver.requests().len(), 1);
    // After it, it is sent once, and its log says so.
    let taken = run(&app, due + LEASE_MS).await;
    assert_eq!(taken.delivered, 1, "{taken:?}");
    run(&app, due + 2 * LEASE_MS).await;
    assert_eq!(receiver.requests().len(), 2);
    let log = deliveries(&app, &hook, None).await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 2);
}

async fn bad_input_unknown_ids_and_other_roles_are_refused(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let cases = [
        (
            json!({"url": "ftp://example.com/x", "event_kinds": ["order.*"]}),
            "invalid_field",
        ),
        (
            json!({"url": "not a url", "event_kinds": ["order.*"]}),
            "invalid_field",
        ),
        (
            json!({"url": "http://user:pw@example.com/", "event_kinds": ["*"]}),
            "invalid_field",
        ),
        (
            json!({"url": "https://example.com/h", "event_kinds": []}),
            "invalid_field",
        ),
        (
            json!({"url": "https://example.com/h", "event_kinds": ["orders.*"]}),
            "invalid_field",
        ),
        (
            json!({"url": "https://example.com/h", "event_kinds": ["order.shipped"]}),
            "invalid_field",
        ),
        (
            json!({"url": "https://example.com/h", "event_kinds": ["*"], "description": "x".repeat(201)}),
            "invalid_field",
        ),
        (json!({"event_kinds": ["*"]}), "invalid_body"),
        (
            json!({"url": "https://example.com/h", "event_kinds": "order.*"}),
            "invalid_body",
        ),
        (
            json!({"url": "https://example.com/h", "event_kinds": ["*"], "secret": "mine"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        let r = app.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!((r.status, r.code()), (422, code), "{body}: {}", r.body);
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.get("/api/v1/webhooks").await.body, json!([]));

    let (hook, _) = subscribe(&app, "https://example.com/hook", json!(["coupon.*"]), true).await;
    let admin = Some(app.admin_key.as_str());
    let bad_patch = app
        .send(
            "PATCH",
            &format!("/api/v1/webhooks/{hook}"),
            admin,
            Some(json!({"url": "mailto:hq@example.com"})),
        )
        .await;
    assert_eq!((bad_patch.status, bad_patch.code()), (422, "invalid_field"));
    let bad_kinds = app
        .send(
            "PATCH",
            &format!("/api/v1/webhooks/{hook}"),
            admin,
            Some(json!({"event_kinds": ["nope"]})),
        )
        .await;
    assert_eq!((bad_kinds.status, bad_kinds.code()), (422, "invalid_field"));
    let bad_status = app
        .get(&format!("/api/v1/webhooks/{hook}/deliveries?status=lost"))
        .await;
    assert_eq!(
        (bad_status.status, bad_status.code()),
        (422, "invalid_field")
    );
    let good = app
        .send("PATCH", &format!("/api/v1/webhooks/{hook}"), admin,
            Some(json!({"event_kinds": ["coupon.issued", "tier.*"], "url": "https://example.com/v2"})))
        .await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.body["event_kinds"], json!(["coupon.issued", "tier.*"]));
    assert_eq!(good.body["url"], "https://example.com/v2");

    // Unknown ids: 404, never 500.
    let missing: Vec<Reply> = vec![
        app.get("/api/v1/webhooks/nope").await,
        app.send(
            "PATCH",
            "/api/v1/webhooks/nope",
            admin,
            Some(json!({"active": false})),
        )
        .await,
        app.send("DELETE", "/api/v1/webhooks/nope", admin, None)
            .await,
        app.post("/api/v1/webhooks/nope/rotate-secret", json!({}))
            .await,
        app.get("/api/v1/webhooks/nope/deliveries").await,
    ];
    for r in missing {
        assert_eq!(
            (r.status, r.code()),
            (404, "webhook_not_found"),
            "{}",
            r.body
        );
    }
    let r = app
        .post("/api/v1/webhook-deliveries/nope/replay", json!({}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "delivery_not_found"),
        "{}",
        r.body
    );

    // Only hq_admin may see or change webhooks.
    for role in Role::ALL {
        let store = role.is_store_scoped().then_some("CD01");
        let key = app.key_for(role, store).await;
        let k = Some(key.as_str());
        let checks = [
            app.send("GET", "/api/v1/webhooks", k, None).await,
            app.send(
                "POST",
                "/api/v1/webhooks",
                k,
                Some(json!({"url": "https://example.com/r", "event_kinds": ["*"]})),
            )
            .await,
            app.send("GET", &format!("/api/v1/webhooks/{hook}"), k, None)
                .await,
            app.send(
                "PATCH",
                &format!("/api/v1/webhooks/{hook}"),
                k,
                Some(json!({"description": format!("by {role}")})),
            )
            .await,
            app.send(
                "GET",
                &format!("/api/v1/webhooks/{hook}/deliveries"),
                k,
                None,
            )
            .await,
        ];
        for r in checks {
            if allows(role, Action::WebhookManage) {
                assert!(
                    (200..300).contains(&r.status),
                    "{role}: {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    (r.status, r.code()),
                    (403, "forbidden"),
                    "{role}: {}",
                    r.body
                );
            }
        }
        assert_eq!(allows(role, Action::WebhookManage), role == Role::HqAdmin);
    }
}
