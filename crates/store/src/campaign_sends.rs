//! The campaign outbox (`campaign_sends`), who each trigger finds, the
//! member's inbox, the marketing opt-out and the rows a campaign's results
//! are measured from. What a send may do is decided by the caller
//! (`regulars_core::campaign`); this module only moves rows.

use crate::error::{SqlxResultExt, StoreResult};
use crate::order_batch::{batch_table, is_postgres, to_json};
use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

/// A member entering a campaign (both arms).
#[derive(Debug, Clone, Serialize)]
pub struct NewSend {
    pub id: String,
    pub campaign_id: String,
    pub member_id: String,
    pub step: String,
    pub arm: String,
    /// `pending`, or `control` for the held-out.
    pub status: String,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

/// Add sends; one already there for the same (campaign, member, step) is
/// left as it is. Returns how many were new.
pub async fn enqueue(conn: &mut AnyConnection, sends: &[NewSend]) -> StoreResult<u64> {
    let mut added = 0;
    for chunk in sends.chunks(500) {
        let rows = batch_table(
            conn,
            1,
            "n",
            &[
                ("id", "text"),
                ("campaign_id", "text"),
                ("member_id", "text"),
                ("step", "text"),
                ("arm", "text"),
                ("status", "text"),
                ("next_attempt_at", "bigint"),
                ("created_at", "bigint"),
            ],
        );
        let done = sqlx::query(&format!(
            "INSERT INTO campaign_sends (id, campaign_id, member_id, step, arm, status, next_attempt_at, created_at) \
             SELECT n.id, n.campaign_id, n.member_id, n.step, n.arm, n.status, n.next_attempt_at, n.created_at \
             FROM {rows} WHERE true ON CONFLICT (campaign_id, member_id, step) DO NOTHING"
        ))
        .bind(to_json(chunk)?)
        .execute(&mut *conn)
        .await
        .store()?;
        added += done.rows_affected();
    }
    Ok(added)
}

/// A send this node now holds the lease of.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedSend {
    pub id: String,
    pub campaign_id: String,
    pub member_id: String,
    pub step: String,
    pub arm: String,
    pub attempts: i64,
    pub created_at: i64,
    /// The lease this claim holds; a finish only applies under it.
    pub lease_until: i64,
}

/// Take up to `limit` due sends of active campaigns: pending ones whose time
/// has come, and ones whose sender died (lease run out). On PostgreSQL
/// several nodes claim side by side (`FOR UPDATE SKIP LOCKED`); SQLite has
/// one writer.
pub async fn claim_due(
    conn: &mut AnyConnection,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> StoreResult<Vec<ClaimedSend>> {
    let skip_locked = if is_postgres(conn) {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    sqlx::query_as::<_, ClaimedSend>(&format!(
        "UPDATE campaign_sends SET status = 'sending', lease_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT s.id FROM campaign_sends s \
           WHERE s.status IN ('pending', 'sending') AND s.next_attempt_at <= $1 \
             AND (s.lease_until IS NULL OR s.lease_until < $1) \
             AND s.campaign_id IN (SELECT c.id FROM campaigns c WHERE c.status = 'active') \
           ORDER BY s.next_attempt_at, s.id LIMIT $3 {skip_locked}) \
         RETURNING id, campaign_id, member_id, step, arm, attempts, created_at, lease_until"
    ))
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// What became of a claimed send.
#[derive(Debug, Clone, Serialize)]
pub struct SendOutcome {
    pub id: String,
    pub lease_until: i64,
    /// pending (deferred or to retry) | sent | skipped | dead
    pub status: String,
    pub channel: Option<String>,
    pub skip_reason: Option<String>,
    pub next_attempt_at: i64,
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    /// 1 when the claim should not count as an attempt (a quiet-hours delay).
    pub attempts_back: i64,
}

/// Record outcomes in one statement. A row whose lease another node has
/// taken since (this node was too slow) is left to that node.
pub async fn finish(conn: &mut AnyConnection, outcomes: &[SendOutcome]) -> StoreResult<u64> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let rows = batch_table(
        conn,
        1,
        "o",
        &[
            ("id", "text"),
            ("lease_until", "bigint"),
            ("status", "text"),
            ("channel", "text"),
            ("skip_reason", "text"),
            ("next_attempt_at", "bigint"),
            ("provider_ref", "text"),
            ("last_error", "text"),
            ("sent_at", "bigint"),
            ("attempts_back", "bigint"),
        ],
    );
    let done = sqlx::query(&format!(
        "UPDATE campaign_sends SET status = o.status, channel = o.channel, skip_reason = o.skip_reason, \
         next_attempt_at = o.next_attempt_at, provider_ref = o.provider_ref, last_error = o.last_error, \
         sent_at = o.sent_at, attempts = campaign_sends.attempts - o.attempts_back, lease_until = NULL \
         FROM {rows} WHERE campaign_sends.id = o.id AND campaign_sends.lease_until = o.lease_until \
         AND campaign_sends.status = 'sending'"
    ))
    .bind(to_json(outcomes)?)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected())
}

/// `column IN (the ids of JSON parameter $param)`, planned as an index
/// lookup on both backends.
fn among(conn: &AnyConnection, column: &str, param: usize) -> String {
    let ids = batch_table(conn, param, "ids", &[("id", "text")]);
    if is_postgres(conn) {
        format!("{column} = ANY(ARRAY(SELECT ids.id FROM {ids}))")
    } else {
        format!("{column} IN (SELECT ids.id FROM {ids})")
    }
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

fn id_json(ids: &[&str]) -> StoreResult<String> {
    to_json(&ids.iter().map(|id| Id { id }).collect::<Vec<_>>())
}

/// A message a member was sent (any campaign), for caps and de-duplication.
#[derive(Debug, Clone, FromRow)]
pub struct SentRow {
    pub member_id: String,
    pub campaign_id: String,
    pub channel: String,
    pub sent_at: i64,
}

pub async fn sent_since(
    conn: &mut AnyConnection,
    member_ids: &[&str],
    since: i64,
) -> StoreResult<Vec<SentRow>> {
    let sql = format!(
        "SELECT member_id, campaign_id, channel, sent_at FROM campaign_sends \
         WHERE {} AND status = 'sent' AND sent_at > $2",
        among(conn, "member_id", 1)
    );
    sqlx::query_as::<_, SentRow>(&sql)
        .bind(id_json(member_ids)?)
        .bind(since)
        .fetch_all(conn)
        .await
        .store()
}

/// What the sender needs of a member (personal data still encrypted).
#[derive(Debug, Clone, FromRow)]
pub struct RecipientRow {
    pub id: String,
    pub phone_enc: Option<Vec<u8>>,
    pub name_enc: Option<Vec<u8>>,
    pub email_enc: Option<Vec<u8>>,
    pub tier: String,
    pub points_balance: i64,
    pub home_store_code: Option<String>,
    pub time_zone: Option<String>,
    pub language: Option<String>,
    pub marketing_opt_out_at: Option<i64>,
    pub erased_at: Option<i64>,
}

pub async fn recipients(
    conn: &mut AnyConnection,
    member_ids: &[&str],
) -> StoreResult<Vec<RecipientRow>> {
    let sql = format!(
        "SELECT id, phone_enc, name_enc, email_enc, tier, points_balance, home_store_code, time_zone, \
         language, marketing_opt_out_at, erased_at FROM members WHERE {}",
        among(conn, "id", 1)
    );
    sqlx::query_as::<_, RecipientRow>(&sql)
        .bind(id_json(member_ids)?)
        .fetch_all(conn)
        .await
        .store()
}

/// Granted consents of these members: (member, channel).
pub async fn granted_consents(
    conn: &mut AnyConnection,
    member_ids: &[&str],
) -> StoreResult<Vec<(String, String)>> {
    let sql = format!(
        "SELECT member_id, channel FROM member_consents WHERE {} AND granted = 1",
        among(conn, "member_id", 1)
    );
    sqlx::query_as::<_, (String, String)>(&sql)
        .bind(id_json(member_ids)?)
        .fetch_all(conn)
        .await
        .store()
}

/// Points of these members that expire in `(from, until]`: (member, points,
/// first expiry).
pub async fn expiring_points(
    conn: &mut AnyConnection,
    member_ids: &[&str],
    from: i64,
    until: i64,
) -> StoreResult<Vec<(String, i64, i64)>> {
    let sql = format!(
        "SELECT member_id, CAST(SUM(remaining) AS BIGINT), MIN(expires_at) FROM lots \
         WHERE {} AND remaining > 0 AND expires_at > $2 AND expires_at <= $3 GROUP BY member_id",
        among(conn, "member_id", 1)
    );
    sqlx::query_as::<_, (String, i64, i64)>(&sql)
        .bind(id_json(member_ids)?)
        .bind(from)
        .bind(until)
        .fetch_all(conn)
        .await
        .store()
}

// ------------------------------------------------------------- who triggers find

/// Whether anyone has entered the campaign yet.
pub async fn has_entries(conn: &mut AnyConnection, campaign_id: &str) -> StoreResult<bool> {
    let found =
        sqlx::query_scalar::<_, i64>("SELECT 1 FROM campaign_sends WHERE campaign_id = $1 LIMIT 1")
            .bind(campaign_id)
            .fetch_optional(conn)
            .await
            .store()?;
    Ok(found.is_some())
}

/// Every member not erased (a scheduled campaign without a segment).
pub async fn member_ids(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>("SELECT id FROM members WHERE erased_at IS NULL ORDER BY id")
        .fetch_all(conn)
        .await
        .store()
}

/// Members (not erased) born on one of these (month, day).
pub async fn born_on(
    conn: &mut AnyConnection,
    days: &[(u32, u32)],
) -> StoreResult<Vec<(String, i64, i64)>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    // Integers from the calendar, not from input: safe to write inline.
    let any_day = days
        .iter()
        .map(|(m, d)| format!("(birth_month = {m} AND birth_day = {d})"))
        .collect::<Vec<_>>()
        .join(" OR ");
    sqlx::query_as::<_, (String, i64, i64)>(&format!(
        "SELECT id, birth_month, birth_day FROM members WHERE erased_at IS NULL AND ({any_day})"
    ))
    .fetch_all(conn)
    .await
    .store()
}

/// Members whose last order was at or before `cutoff`: (member, last order time).
pub async fn last_visit_before(
    conn: &mut AnyConnection,
    cutoff: i64,
) -> StoreResult<Vec<(String, i64)>> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT o.member_id, MAX(o.occurred_at) FROM orders o JOIN members m ON m.id = o.member_id \
         WHERE m.erased_at IS NULL GROUP BY o.member_id HAVING MAX(o.occurred_at) <= $1",
    )
    .bind(cutoff)
    .fetch_all(conn)
    .await
    .store()
}

/// Members who joined in one of these `[from, until)` windows: (member, joined).
pub async fn joined_within(
    conn: &mut AnyConnection,
    windows: &[(i64, i64)],
) -> StoreResult<Vec<(String, i64)>> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let any = windows
        .iter()
        .map(|(from, until)| format!("(created_at >= {from} AND created_at < {until})"))
        .collect::<Vec<_>>()
        .join(" OR ");
    sqlx::query_as::<_, (String, i64)>(&format!(
        "SELECT id, created_at FROM members WHERE erased_at IS NULL AND ({any})"
    ))
    .fetch_all(conn)
    .await
    .store()
}

/// Members with points expiring in `(from, until]`: (member, points, first expiry).
pub async fn members_with_expiring_points(
    conn: &mut AnyConnection,
    from: i64,
    until: i64,
) -> StoreResult<Vec<(String, i64, i64)>> {
    sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT member_id, CAST(SUM(remaining) AS BIGINT), MIN(expires_at) FROM lots \
         WHERE remaining > 0 AND expires_at > $1 AND expires_at <= $2 GROUP BY member_id",
    )
    .bind(from)
    .bind(until)
    .fetch_all(conn)
    .await
    .store()
}

/// Members' orders placed in `[from, until)`: (member, order id, placed).
pub async fn orders_within(
    conn: &mut AnyConnection,
    from: i64,
    until: i64,
) -> StoreResult<Vec<(String, String, i64)>> {
    sqlx::query_as::<_, (String, String, i64)>(
        "SELECT member_id, id, occurred_at FROM orders \
         WHERE member_id IS NOT NULL AND occurred_at >= $1 AND occurred_at < $2",
    )
    .bind(from)
    .bind(until)
    .fetch_all(conn)
    .await
    .store()
}

/// Outbox events of `kind` since `since`: (event id, member, created).
pub async fn events_since(
    conn: &mut AnyConnection,
    kind: &str,
    since: i64,
) -> StoreResult<Vec<(i64, String, i64, String)>> {
    sqlx::query_as::<_, (i64, String, i64, String)>(
        "SELECT id, member_id, created_at, payload FROM outbox_events \
         WHERE kind = $1 AND created_at >= $2 AND member_id IS NOT NULL",
    )
    .bind(kind)
    .bind(since)
    .fetch_all(conn)
    .await
    .store()
}

/// Members whose orders show a taste for dishes like `sku`: twice or more
/// they ordered another dish of its category within one level of its heat.
pub async fn taste_matches(conn: &mut AnyConnection, sku: &str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>(
        "SELECT o.member_id FROM menu_items d \
         JOIN menu_items mi ON mi.category = d.category AND mi.sku <> d.sku \
           AND mi.spice_level BETWEEN d.spice_level - 1 AND d.spice_level + 1 \
         JOIN order_items oi ON oi.sku = mi.sku \
         JOIN orders o ON o.id = oi.order_id \
         WHERE d.sku = $1 AND o.member_id IS NOT NULL \
         GROUP BY o.member_id HAVING COUNT(DISTINCT o.id) >= 2",
    )
    .bind(sku)
    .fetch_all(conn)
    .await
    .store()
}

// ------------------------------------------------------------- inbox, opt-out

pub async fn put_in_inbox(
    conn: &mut AnyConnection,
    id: &str,
    member_id: &str,
    send_id: &str,
    campaign_id: &str,
    body: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO member_inbox (id, member_id, send_id, campaign_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (send_id) DO NOTHING",
    )
    .bind(id)
    .bind(member_id)
    .bind(send_id)
    .bind(campaign_id)
    .bind(body)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct InboxRow {
    pub id: String,
    pub campaign_id: String,
    pub body: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

pub async fn inbox_of(conn: &mut AnyConnection, member_id: &str) -> StoreResult<Vec<InboxRow>> {
    sqlx::query_as::<_, InboxRow>(
        "SELECT id, campaign_id, body, created_at, read_at FROM member_inbox \
         WHERE member_id = $1 ORDER BY created_at DESC, id DESC LIMIT 200",
    )
    .bind(member_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Mark a message read (the open the inbox reports); `false` if not theirs.
pub async fn mark_read(
    conn: &mut AnyConnection,
    member_id: &str,
    id: &str,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE member_inbox SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND member_id = $2",
    )
    .bind(id)
    .bind(member_id)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// Record the marketing opt-out (the first one's time is kept).
pub async fn opt_out(conn: &mut AnyConnection, member_id: &str, at: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE members SET marketing_opt_out_at = COALESCE(marketing_opt_out_at, $2), updated_at = $2 \
         WHERE id = $1 AND erased_at IS NULL",
    )
    .bind(member_id)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// The member's time zone and message language (`None` clears one).
pub async fn set_locale(
    conn: &mut AnyConnection,
    member_id: &str,
    time_zone: Option<&str>,
    language: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE members SET time_zone = $2, language = $3 WHERE id = $1")
        .bind(member_id)
        .bind(time_zone)
        .bind(language)
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

// ------------------------------------------------------------- watching a campaign

/// One send as the console's lists show it.
#[derive(Debug, Clone, FromRow)]
pub struct SendRow {
    pub id: String,
    pub member_id: String,
    pub step: String,
    pub arm: String,
    pub status: String,
    pub channel: Option<String>,
    pub skip_reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub async fn sends_of(
    conn: &mut AnyConnection,
    campaign_id: &str,
    status: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<SendRow>> {
    sqlx::query_as::<_, SendRow>(
        "SELECT id, member_id, step, arm, status, channel, skip_reason, attempts, next_attempt_at, \
         last_error, created_at, sent_at FROM campaign_sends \
         WHERE campaign_id = $1 AND ($2 = '' OR status = $2) ORDER BY created_at, id LIMIT $3",
    )
    .bind(campaign_id)
    .bind(status.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// A dead letter back in the queue, due now; `false` if it was not dead.
pub async fn retry_dead(
    conn: &mut AnyConnection,
    campaign_id: &str,
    send_id: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE campaign_sends SET status = 'pending', attempts = 0, next_attempt_at = $3, \
         lease_until = NULL WHERE id = $1 AND campaign_id = $2 AND status = 'dead'",
    )
    .bind(send_id)
    .bind(campaign_id)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// Sends by (arm, status, channel): the funnel.
pub async fn funnel(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> StoreResult<Vec<(String, String, Option<String>, i64)>> {
    sqlx::query_as::<_, (String, String, Option<String>, i64)>(
        "SELECT arm, status, channel, CAST(COUNT(*) AS BIGINT) FROM campaign_sends \
         WHERE campaign_id = $1 GROUP BY arm, status, channel",
    )
    .bind(campaign_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Each member's visits and spend (paid less refunded, fen) in the
/// attribution window after they entered the campaign, with their arm.
#[derive(Debug, Clone, FromRow)]
pub struct Attribution {
    pub arm: String,
    pub status: String,
    pub visits: i64,
    pub spend_fen: i64,
    pub opened: i64,
    pub coupons_redeemed: i64,
}

pub async fn attribution(
    conn: &mut AnyConnection,
    campaign_id: &str,
    window_ms: i64,
) -> StoreResult<Vec<Attribution>> {
    sqlx::query_as::<_, Attribution>(
        "SELECT s.arm, s.status, \
           (SELECT CAST(COUNT(*) AS BIGINT) FROM orders o WHERE o.member_id = s.member_id \
              AND o.occurred_at >= s.created_at AND o.occurred_at < s.created_at + $2) AS visits, \
           (SELECT CAST(COALESCE(SUM(o.paid_fen - o.refunded_fen), 0) AS BIGINT) FROM orders o \
              WHERE o.member_id = s.member_id \
              AND o.occurred_at >= s.created_at AND o.occurred_at < s.created_at + $2) AS spend_fen, \
           (SELECT CAST(COUNT(*) AS BIGINT) FROM member_inbox b WHERE b.send_id = s.id \
              AND b.read_at IS NOT NULL) AS opened, \
           (SELECT CAST(COUNT(*) AS BIGINT) FROM coupons c WHERE c.source = 'campaign' \
              AND c.source_ref = s.id AND c.status = 'redeemed') AS coupons_redeemed \
         FROM campaign_sends s WHERE s.campaign_id = $1",
    )
    .bind(campaign_id)
    .bind(window_ms)
    .fetch_all(conn)
    .await
    .store()
}

/// Messages the campaign has sent: each gave the same points and coupon,
/// so this is what its budget has spent.
pub async fn sent_count(conn: &mut AnyConnection, campaign_id: &str) -> StoreResult<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM campaign_sends WHERE campaign_id = $1 AND status = 'sent'",
    )
    .bind(campaign_id)
    .fetch_one(conn)
    .await
    .store()
}
