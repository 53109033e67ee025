//! Outgoing webhooks (docs/webhooks.md): HQ subscribes URLs to outbox event
//! kinds; [`deliver_due`] fans new outbox events out to one delivery per
//! matching subscription, claims due deliveries with a lease, POSTs them
//! signed (`Regulars-Signature`), and retries failures with backoff until
//! they are delivered or dead letters. Subscriptions and replays are
//! audited; the signing secret is encrypted at rest and shown once.

use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::campaign::sign_webhook;
use regulars_core::privacy::Slot;
use regulars_core::webhook::{self as rules, DeliveryStatus};
use regulars_core::DomainError;
use regulars_store::webhooks::{self as repo, Claimed, NewDelivery, Outcome, SubscriptionRow};
use regulars_store::{commit, now_ms, staff, Conn};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long one attempt may take before it counts as failed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is reserved for the node sending it.
pub const LEASE_MS: i64 = 60_000;
/// Deliveries sent at once by one node.
pub const CONCURRENCY: usize = 8;
/// An outbox event younger than this may still have an older neighbour in
/// an uncommitted transaction (PostgreSQL hands out ids before commit), so
/// fan-out reads it again on later runs and moves its cursor past it only
/// once it is this old.
pub const SETTLE_MS: i64 = 120_000;
/// Outbox events read per fan-out batch, and batches per run.
const FAN_OUT_BATCH: i64 = 500;
const FAN_OUT_BATCHES: usize = 20;
/// Claims per run, each of up to `CLAIM_BATCH` deliveries: sent
/// `CONCURRENCY` at a time, a claim takes at most 4 rounds of
/// `SEND_TIMEOUT` (40 s), well inside its lease, so no claimed delivery
/// waits past its lease for its turn and is taken by a second node.
const CLAIM_BATCH: i64 = 4 * CONCURRENCY as i64;
const CLAIM_ROUNDS: usize = 20;
const MAX_URL_LEN: usize = 2_000;
const MAX_DESCRIPTION: usize = 200;
const MAX_LOG: i64 = 500;

/// A subscription as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Patterns: exact kinds (`coupon.issued`), families (`order.*`) or `*`.
    pub event_kinds: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new or rotated subscription: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (64 hex characters). The HMAC key is this text
    /// as it is, in UTF-8. Shown once; rotate it if it is lost.
    pub secret: String,
}

/// A new subscription.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `http://` or `https://`.
    pub url: String,
    pub event_kinds: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A change to a subscription; fields left out stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_kinds: Option<Vec<String>>,
    pub description: Option<String>,
    /// `false` stops deliveries (pending ones wait; new events are not
    /// queued for it meanwhile); `true` resumes.
    pub active: Option<bool>,
}

/// One delivery in a subscription's log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Also the `Regulars-Delivery` header: the receiver's idempotency key.
    pub id: String,
    pub subscription_id: String,
    /// The outbox event's id.
    pub event_id: i64,
    pub event_kind: String,
    /// pending, delivered or dead.
    pub status: String,
    /// Attempts since it was queued (or last replayed).
    pub attempts: i64,
    /// When the next attempt is due (unix ms), while pending.
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    /// The body sent on every attempt.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

fn corrupt(what: String) -> AppError {
    AppError::Store(regulars_store::StoreError::Corrupt(what))
}

fn view(row: &SubscriptionRow) -> AppResult<WebhookView> {
    Ok(WebhookView {
        id: row.id.clone(),
        url: row.url.clone(),
        event_kinds: serde_json::from_str(&row.event_kinds)
            .map_err(|_| corrupt(format!("webhook {}: unreadable event kinds", row.id)))?,
        description: row.description.clone(),
        active: row.active != 0,
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn delivery_view(row: repo::DeliveryRow) -> DeliveryView {
    DeliveryView {
        body: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::String(row.payload)),
        next_attempt_at: (row.status == DeliveryStatus::Pending.as_str())
            .then_some(row.next_attempt_at),
        id: row.id,
        subscription_id: row.subscription_id,
        event_id: row.event_id,
        event_kind: row.event_kind,
        status: row.status,
        attempts: row.attempts,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        delivered_at: row.delivered_at,
        created_at: row.created_at,
    }
}

fn secret_slot(id: &str) -> Slot<'_> {
    Slot {
        table: "webhook_subscriptions",
        column: "secret",
        row_id: id,
    }
}

/// 32 random bytes in hex.
fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// An absolute `http(s)` URL with a host, no credentials in it.
fn checked_url(url: &str) -> AppResult<String> {
    let url = url.trim();
    if url.len() > MAX_URL_LEN {
        return Err(
            DomainError::invalid("url", format!("at most {MAX_URL_LEN} characters")).into(),
        );
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| DomainError::invalid("url", format!("not an absolute URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DomainError::invalid("url", "must start with http:// or https://").into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(DomainError::invalid("url", "has no host").into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DomainError::invalid(
            "url",
            "must not carry a user name or password (the signature authenticates us)",
        )
        .into());
    }
    Ok(url.to_string())
}

fn checked_description(d: Option<&str>) -> AppResult<String> {
    let d = d.unwrap_or("").trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(DomainError::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        )
        .into());
    }
    Ok(d.to_string())
}

fn kinds_json(kinds: &[String]) -> AppResult<String> {
    let parsed = rules::parse_patterns(kinds)?;
    serde_json::to_string(&parsed)
        .map_err(|e| AppError::unprocessable("invalid_event_kinds", e.to_string()))
}

/// The subscription `id`, or 404.
async fn stored(conn: &mut Conn, id: &str) -> AppResult<SubscriptionRow> {
    repo::get_subscription(conn, id)
        .await?
        .ok_or(AppError::NotFound { what: "webhook" })
}

pub async fn create(
    app: &Regulars,
    caller: &Principal,
    input: WebhookInput,
) -> AppResult<WebhookWithSecret> {
    caller.check(Action::WebhookManage, None)?;
    let url = checked_url(&input.url)?;
    let event_kinds = kinds_json(&input.event_kinds)?;
    let description = checked_description(input.description.as_deref())?;
    let id = uuid::Uuid::now_v7().to_string();
    let secret = new_secret();
    let at = now_ms();
    let mut tx = app.db.begin().await?;
    let row = SubscriptionRow {
        secret_enc: app.keys.encrypt(secret_slot(&id), &secret),
        id,
        url,
        event_kinds,
        description,
        active: i64::from(input.active.unwrap_or(true)),
        from_event_id: repo::last_event_id(&mut tx).await?,
        created_by: caller.actor.clone(),
        created_at: at,
        updated_at: at,
    };
    repo::insert_subscription(&mut tx, &row).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "webhook.create",
        &format!("webhook:{}", row.id),
        &format!("{} {}", row.url, row.event_kinds),
        at,
    )
    .await?;
    commit(tx).await?;
    Ok(WebhookWithSecret {
        webhook: view(&row)?,
        secret,
    })
}

pub async fn list(app: &Regulars, caller: &Principal) -> AppResult<Vec<WebhookView>> {
    caller.check(Action::WebhookManage, None)?;
    let mut conn = app.db.reader().await?;
    repo::list_subscriptions(&mut conn, false)
        .await?
        .iter()
        .map(view)
        .collect()
}

pub async fn get(app: &Regulars, caller: &Principal, id: &str) -> AppResult<WebhookView> {
    caller.check(Action::WebhookManage, None)?;
    let mut conn = app.db.reader().await?;
    view(&stored(&mut conn, id).await?)
}

pub async fn update(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    patch: WebhookPatch,
) -> AppResult<WebhookView> {
    caller.check(Action::WebhookManage, None)?;
    let url = patch.url.as_deref().map(checked_url).transpose()?;
    let kinds = patch.event_kinds.as_deref().map(kinds_json).transpose()?;
    let description = patch
        .description
        .as_deref()
        .map(|d| checked_description(Some(d)))
        .transpose()?;
    let mut tx = app.db.begin().await?;
    let mut row = stored(&mut tx, id).await?;
    let at = now_ms();
    let mut changes = Vec::new();
    if let Some(url) = url {
        changes.push(format!("url {url}"));
        row.url = url;
    }
    if let Some(kinds) = kinds {
        changes.push(format!("event_kinds {kinds}"));
        row.event_kinds = kinds;
    }
    if let Some(description) = description {
        changes.push("description".to_string());
        row.description = description;
    }
    if let Some(active) = patch.active {
        if active && row.active == 0 {
            // Resumed: what happened while it was off is not sent.
            row.from_event_id = repo::last_event_id(&mut tx).await?;
        }
        changes.push(format!("active {active}"));
        row.active = i64::from(active);
    }
    row.updated_at = at;
    if !repo::update_subscription(&mut tx, &row).await? {
        return Err(AppError::NotFound { what: "webhook" });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "webhook.update",
        &format!("webhook:{id}"),
        &changes.join("; "),
        at,
    )
    .await?;
    commit(tx).await?;
    view(&row)
}

pub async fn delete(app: &Regulars, caller: &Principal, id: &str) -> AppResult<()> {
    caller.check(Action::WebhookManage, None)?;
    let mut tx = app.db.begin().await?;
    let row = stored(&mut tx, id).await?;
    repo::delete_subscription(&mut tx, id).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "webhook.delete",
        &format!("webhook:{id}"),
        &row.url,
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

/// A new secret; the old one stops signing at once.
pub async fn rotate_secret(
    app: &Regulars,
    caller: &Principal,
    id: &str,
) -> AppResult<WebhookWithSecret> {
    caller.check(Action::WebhookManage, None)?;
    let secret = new_secret();
    let at = now_ms();
    let mut tx = app.db.begin().await?;
    let mut row = stored(&mut tx, id).await?;
    row.secret_enc = app.keys.encrypt(secret_slot(id), &secret);
    row.updated_at = at;
    repo::set_secret(&mut tx, id, &row.secret_enc, at).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "webhook.rotate_secret",
        &format!("webhook:{id}"),
        "",
        at,
    )
    .await?;
    commit(tx).await?;
    Ok(WebhookWithSecret {
        webhook: view(&row)?,
        secret,
    })
}

/// A subscription's delivery log, newest event first (at most 500).
pub async fn deliveries(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    status: Option<&str>,
) -> AppResult<Vec<DeliveryView>> {
    caller.check(Action::WebhookManage, None)?;
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            DeliveryStatus::parse(s)
                .ok_or_else(|| DomainError::invalid("status", "one of pending, delivered, dead"))?,
        ),
    };
    let mut conn = app.db.reader().await?;
    stored(&mut conn, id).await?;
    Ok(
        repo::list_deliveries(&mut conn, id, status.map(DeliveryStatus::as_str), MAX_LOG)
            .await?
            .into_iter()
            .map(delivery_view)
            .collect(),
    )
}

/// Send a delivery again, whatever became of it: pending, due now, with a
/// fresh run of attempts. Audited with what it was before.
pub async fn replay(
    app: &Regulars,
    caller: &Principal,
    delivery_id: &str,
) -> AppResult<DeliveryView> {
    caller.check(Action::WebhookManage, None)?;
    let at = now_ms();
    let mut tx = app.db.begin().await?;
    let before = repo::get_delivery(&mut tx, delivery_id)
        .await?
        .ok_or(AppError::NotFound {
            what: "webhook delivery",
        })?;
    repo::replay(&mut tx, delivery_id, at).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "webhook.replay",
        &format!("webhook_delivery:{delivery_id}"),
        &format!(
            "{} after {} attempts (last status {})",
            before.status,
            before.attempts,
            before
                .last_status_code
                .map_or_else(|| "none".to_string(), |c| c.to_string())
        ),
        at,
    )
    .await?;
    let after = repo::get_delivery(&mut tx, delivery_id)
        .await?
        .ok_or(AppError::NotFound {
            what: "webhook delivery",
        })?;
    commit(tx).await?;
    Ok(delivery_view(after))
}

// ---------------------------------------------------------------------------
// Delivering
// ---------------------------------------------------------------------------

/// What one pass of [`deliver_due`] did.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct WebhookReport {
    /// Deliveries queued from new outbox events.
    pub queued: u64,
    /// Attempts made.
    pub attempted: u64,
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retrying: u64,
    /// Deliveries that became dead letters.
    pub dead: u64,
}

/// One pass: queue deliveries for new outbox events, then send what is due
/// as of `now_ms`. Safe on several nodes at once.
pub async fn deliver_due(app: &Regulars, now_ms: i64) -> AppResult<WebhookReport> {
    let mut report = WebhookReport {
        queued: fan_out(app, now_ms).await?,
        ..WebhookReport::default()
    };
    let client = http_client();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    for _ in 0..CLAIM_ROUNDS {
        let claimed = {
            let mut conn = app.db.writer().await?;
            repo::claim_due(
                &mut conn,
                app.db.backend,
                now_ms,
                now_ms.saturating_add(LEASE_MS),
                CLAIM_BATCH,
            )
            .await?
        };
        if claimed.is_empty() {
            break;
        }
        let secrets = secrets_of(app, &claimed).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in claimed {
            let target = secrets.get(&delivery.subscription_id).cloned();
            let permits = permits.clone();
            let client = client.clone();
            let app = app.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                attempt(&app, &client, delivery, target, now_ms).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(Some(status))) => {
                    report.attempted += 1;
                    match status {
                        DeliveryStatus::Delivered => report.delivered += 1,
                        DeliveryStatus::Pending => report.retrying += 1,
                        DeliveryStatus::Dead => report.dead += 1,
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "recording a webhook attempt failed"),
                Err(e) => tracing::error!(error = %e, "a webhook attempt panicked"),
            }
        }
    }
    Ok(report)
}

/// Queue a delivery for each new outbox event and each active subscription
/// that wants it. Idempotent (one delivery per subscription and event), so
/// re-reading recent events is harmless; the cursor moves past an event
/// once it is [`SETTLE_MS`] old.
async fn fan_out(app: &Regulars, now_ms: i64) -> AppResult<u64> {
    let (subscriptions, cursor) = {
        let mut conn = app.db.reader().await?;
        let subs = repo::list_subscriptions(&mut conn, true).await?;
        (subs, repo::cursor(&mut conn).await?)
    };
    if subscriptions.is_empty() {
        return Ok(0);
    }
    let wanted: Vec<(SubscriptionRow, Vec<String>)> = subscriptions
        .into_iter()
        .map(|s| {
            let kinds = serde_json::from_str::<Vec<String>>(&s.event_kinds)
                .map_err(|_| corrupt(format!("webhook {}: unreadable event kinds", s.id)))?;
            Ok((s, kinds))
        })
        .collect::<AppResult<_>>()?;
    let oldest_wanted = wanted
        .iter()
        .map(|(s, _)| s.from_event_id)
        .min()
        .unwrap_or(0);
    let mut position = cursor.max(oldest_wanted);
    // The cursor may move to the end of the run of events old enough that
    // nothing older can still appear.
    let mut settled_to = position;
    let mut settling = true;
    let mut queued = 0;
    for _ in 0..FAN_OUT_BATCHES {
        let events = {
            let mut conn = app.db.reader().await?;
            repo::events_after(&mut conn, position, FAN_OUT_BATCH).await?
        };
        let Some(last) = events.last() else { break };
        let full = events.len() as i64 == FAN_OUT_BATCH;
        position = last.id;
        let mut batch = Vec::new();
        for event in &events {
            if settling {
                if event.created_at <= now_ms.saturating_sub(SETTLE_MS) {
                    settled_to = event.id;
                } else {
                    settling = false;
                }
            }
            for (sub, kinds) in &wanted {
                if event.id > sub.from_event_id && rules::matches(kinds, &event.kind) {
                    let id = uuid::Uuid::now_v7().to_string();
                    let payload = rules::delivery_body(
                        &id,
                        &rules::Event {
                            kind: &event.kind,
                            subject: &event.subject,
                            member_id: event.member_id.as_deref(),
                            created_at: event.created_at,
                            payload: &event.payload,
                        },
                    );
                    batch.push(NewDelivery {
                        id,
                        subscription_id: sub.id.clone(),
                        event_id: event.id,
                        event_kind: event.kind.clone(),
                        payload,
                        created_at: now_ms,
                    });
                }
            }
        }
        if !batch.is_empty() {
            let mut tx = app.db.begin().await?;
            for d in &batch {
                if repo::queue(&mut tx, d).await? {
                    queued += 1;
                }
            }
            commit(tx).await?;
        }
        if !full {
            break;
        }
    }
    if settled_to > cursor {
        let mut conn = app.db.writer().await?;
        repo::advance_cursor(&mut conn, settled_to).await?;
    }
    Ok(queued)
}

/// Where a subscription's deliveries go and the secret that signs them.
#[derive(Clone)]
struct Target {
    url: String,
    secret: String,
}

/// The URL and decrypted secret of each subscription among `claimed`.
async fn secrets_of(app: &Regulars, claimed: &[Claimed]) -> AppResult<HashMap<String, Target>> {
    let mut out = HashMap::new();
    let mut conn = app.db.reader().await?;
    for d in claimed {
        if out.contains_key(&d.subscription_id) {
            continue;
        }
        if let Some(row) = repo::get_subscription(&mut conn, &d.subscription_id).await? {
            let Ok(secret) = app.keys.decrypt(secret_slot(&row.id), &row.secret_enc) else {
                // Left leased: tried again once the lease runs out.
                tracing::error!(subscription = %row.id, "webhook secret does not decrypt");
                continue;
            };
            out.insert(
                row.id.clone(),
                Target {
                    url: row.url,
                    secret,
                },
            );
        }
    }
    Ok(out)
}

/// One HTTP client for every delivery: a timeout per attempt, and no
/// redirects (a receiver that moved says so by failing).
fn http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .connect_timeout(SEND_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("Regulars-Webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// Send one claimed delivery and record what came of it. `None` when the
/// row had moved on meanwhile (replayed, or its lease ran out and another
/// node took it), so nothing was recorded.
async fn attempt(
    app: &Regulars,
    client: &reqwest::Client,
    delivery: Claimed,
    target: Option<Target>,
    now_ms: i64,
) -> AppResult<Option<DeliveryStatus>> {
    let (code, error) = match target {
        // Deleted between the claim and now: its rows are gone too.
        None => return Ok(None),
        Some(target) => send(client, &delivery, &target).await,
    };
    let succeeded = code.is_some_and(|c| (200..300).contains(&c));
    let attempts = delivery.attempts.saturating_add(1);
    let (status, next_at) = rules::after_attempt(
        succeeded,
        u32::try_from(attempts).unwrap_or(u32::MAX),
        now_ms,
        rand::random::<f64>(),
    );
    let recorded = {
        let mut conn = app.db.writer().await?;
        repo::record(
            &mut conn,
            &Outcome {
                id: &delivery.id,
                lease_until: delivery.lease_until,
                status: status.as_str(),
                attempts,
                next_attempt_at: next_at,
                status_code: code,
                error: error.as_deref(),
                delivered_at: succeeded.then_some(now_ms),
            },
        )
        .await?
    };
    if !succeeded {
        tracing::warn!(
            delivery = %delivery.id,
            subscription = %delivery.subscription_id,
            attempts,
            status = status.as_str(),
            error = error.as_deref().unwrap_or(""),
            "webhook attempt failed"
        );
    }
    Ok(recorded.then_some(status))
}

/// POST the body, signed now with the current secret: the status code, or
/// why there was none; a non-2xx answer also gets an error text.
async fn send(
    client: &reqwest::Client,
    delivery: &Claimed,
    target: &Target,
) -> (Option<i64>, Option<String>) {
    let signature = sign_webhook(
        target.secret.as_bytes(),
        chrono::Utc::now().timestamp(),
        delivery.payload.as_bytes(),
    );
    let sent = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Regulars-Signature", signature)
        .header("Regulars-Event", &delivery.event_kind)
        .header("Regulars-Delivery", &delivery.id)
        .body(delivery.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let code = i64::from(response.status().as_u16());
            let error =
                (!response.status().is_success()).then(|| format!("HTTP {}", response.status()));
            (Some(code), error)
        }
        Err(e) => {
            let why = if e.is_timeout() {
                format!("timed out after {} s", SEND_TIMEOUT.as_secs())
            } else if e.is_connect() {
                "could not connect".to_string()
            } else {
                "request failed".to_string()
            };
            // The error's own text (without the URL, which may carry a token).
            let detail = e.without_url().to_string();
            (None, Some(truncate(&format!("{why}: {detail}"), 500)))
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
