//! Webhook subscriptions, their deliveries and the fan-out cursor. Claiming
//! due deliveries takes a lease: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! several nodes never take the same row; on SQLite the one writer
//! connection makes the single `UPDATE … RETURNING` the lock.

use crate::error::{SqlxResultExt, StoreResult};
use crate::Backend;
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct SubscriptionRow {
    pub id: String,
    pub url: String,
    pub event_kinds: String,
    pub description: String,
    pub secret_enc: Vec<u8>,
    pub active: i64,
    pub from_event_id: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_kinds, description, secret_enc, active, \
    from_event_id, created_by, created_at, updated_at";

pub async fn insert_subscription(conn: &mut AnyConnection, s: &SubscriptionRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&s.id)
    .bind(&s.url)
    .bind(&s.event_kinds)
    .bind(&s.description)
    .bind(&s.secret_enc)
    .bind(s.active)
    .bind(s.from_event_id)
    .bind(&s.created_by)
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_subscription(
    conn: &mut AnyConnection,
    id: &str,
) -> StoreResult<Option<SubscriptionRow>> {
    sqlx::query_as::<_, SubscriptionRow>(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

/// Every subscription, newest first; only active ones when asked.
pub async fn list_subscriptions(
    conn: &mut AnyConnection,
    active_only: bool,
) -> StoreResult<Vec<SubscriptionRow>> {
    sqlx::query_as::<_, SubscriptionRow>(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
         WHERE ($1 = 0 OR active = 1) ORDER BY created_at DESC, id DESC"
    ))
    .bind(i64::from(active_only))
    .fetch_all(conn)
    .await
    .store()
}

/// Replace what can change (url, kinds, description, active); `false` when
/// there is no such subscription.
pub async fn update_subscription(
    conn: &mut AnyConnection,
    s: &SubscriptionRow,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_subscriptions SET url = $2, event_kinds = $3, description = $4, \
         active = $5, from_event_id = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.url)
    .bind(&s.event_kinds)
    .bind(&s.description)
    .bind(s.active)
    .bind(s.from_event_id)
    .bind(s.updated_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_secret(
    conn: &mut AnyConnection,
    id: &str,
    secret_enc: &[u8],
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_subscriptions SET secret_enc = $2, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(secret_enc)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// Delete a subscription and its delivery log.
pub async fn delete_subscription(conn: &mut AnyConnection, id: &str) -> StoreResult<bool> {
    sqlx::query("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .store()?;
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .store()?;
    Ok(done.rows_affected() == 1)
}

/// The largest outbox id now (0 for an empty outbox).
pub async fn last_event_id(conn: &mut AnyConnection) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM outbox_events")
        .fetch_one(conn)
        .await
        .store()
}

// ---------------------------------------------------------------------------
// Fan-out
// ---------------------------------------------------------------------------

pub async fn cursor(conn: &mut AnyConnection) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>("SELECT last_event_id FROM webhook_cursor WHERE id = 1")
        .fetch_optional(conn)
        .await
        .store()
        .map(|c| c.unwrap_or(0))
}

/// Move the cursor forward (never back: two nodes may race).
pub async fn advance_cursor(conn: &mut AnyConnection, to: i64) -> StoreResult<()> {
    sqlx::query("UPDATE webhook_cursor SET last_event_id = $1 WHERE id = 1 AND last_event_id < $1")
        .bind(to)
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct OutboxEvent {
    pub id: i64,
    pub kind: String,
    pub member_id: Option<String>,
    pub subject: String,
    pub payload: String,
    pub created_at: i64,
}

/// Outbox events with an id above `after`, oldest first.
pub async fn events_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<OutboxEvent>> {
    sqlx::query_as::<_, OutboxEvent>(
        "SELECT id, kind, member_id, subject, payload, created_at FROM outbox_events \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// A delivery to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub subscription_id: String,
    pub event_id: i64,
    pub event_kind: String,
    pub payload: String,
    pub created_at: i64,
}

/// Queue a delivery, due at once; `false` when the subscription already has
/// one for that event.
pub async fn queue(conn: &mut AnyConnection, d: &NewDelivery) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_kind, payload, \
         status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) \
         ON CONFLICT (subscription_id, event_id) DO NOTHING",
    )
    .bind(&d.id)
    .bind(&d.subscription_id)
    .bind(d.event_id)
    .bind(&d.event_kind)
    .bind(&d.payload)
    .bind(d.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

/// A delivery taken for sending, with where it goes.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: String,
    pub subscription_id: String,
    pub event_kind: String,
    pub payload: String,
    pub attempts: i64,
    pub lease_until: i64,
}

/// Take up to `limit` due deliveries of active subscriptions: pending,
/// `next_attempt_at <= now`, and nobody holding a live lease. Each is
/// leased until `lease_until`; a node that dies mid-send leaves it for
/// another once that passes.
pub async fn claim_due(
    conn: &mut AnyConnection,
    backend: Backend,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> StoreResult<Vec<Claimed>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query_as::<_, Claimed>(&format!(
        "UPDATE webhook_deliveries SET lease_until = $2 WHERE id IN (\
           SELECT d.id FROM webhook_deliveries d \
           JOIN webhook_subscriptions s ON s.id = d.subscription_id \
           WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.lease_until IS NULL OR d.lease_until <= $1) AND s.active = 1 \
           ORDER BY d.next_attempt_at, d.id LIMIT $3 {lock}) \
         RETURNING id, subscription_id, event_kind, payload, attempts, lease_until"
    ))
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub id: &'a str,
    /// The lease this node took: a row leased again since (the lease ran
    /// out, or it was replayed) is not overwritten.
    pub lease_until: i64,
    pub status: &'a str,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub delivered_at: Option<i64>,
}

pub async fn record(conn: &mut AnyConnection, o: &Outcome<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5, \
         last_status_code = $6, last_error = $7, delivered_at = $8, lease_until = NULL \
         WHERE id = $1 AND lease_until = $2 AND status = 'pending'",
    )
    .bind(o.id)
    .bind(o.lease_until)
    .bind(o.status)
    .bind(o.attempts)
    .bind(o.next_attempt_at)
    .bind(o.status_code)
    .bind(o.error)
    .bind(o.delivered_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------
// The delivery log
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub subscription_id: String,
    pub event_id: i64,
    pub event_kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_kind, payload, status, \
    attempts, next_attempt_at, lease_until, last_status_code, last_error, delivered_at, created_at";

/// A subscription's deliveries, newest event first; only those in `status`
/// when given.
pub async fn list_deliveries(
    conn: &mut AnyConnection,
    subscription_id: &str,
    status: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    sqlx::query_as::<_, DeliveryRow>(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
         WHERE subscription_id = $1 AND ($2 = '' OR status = $2) \
         ORDER BY event_id DESC LIMIT $3"
    ))
    .bind(subscription_id)
    .bind(status.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

pub async fn get_delivery(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<DeliveryRow>> {
    sqlx::query_as::<_, DeliveryRow>(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

/// Send a delivery again from the start: pending, due `now`, no attempts,
/// no lease (an attempt in flight will not record over it).
pub async fn replay(conn: &mut AnyConnection, id: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, \
         lease_until = NULL, delivered_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}
