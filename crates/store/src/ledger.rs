//! Ledger rows: entries (append-only), lots, allocations, refund shortfalls,
//! the balance cache on the member row, idempotency records and the outbox.
//! Callers run these inside one transaction per change; what the rows should
//! say is decided in `regulars_core::ledger`.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow, Row};

/// The member's ledger state, read with the row locked for this transaction
/// (PostgreSQL: the `UPDATE` takes the row lock; SQLite has one writer).
#[derive(Debug, Clone, FromRow)]
pub struct MemberLedger {
    pub id: String,
    pub tier: String,
    pub points_balance: i64,
    pub points_debt: i64,
    pub birth_month: Option<i64>,
    pub tier_floor: Option<String>,
    pub tier_floor_until: Option<i64>,
    pub tier_grace_since: Option<i64>,
    pub family_group_id: Option<String>,
    pub family_share: i64,
    pub erased_at: Option<i64>,
}

pub(crate) const LEDGER_COLUMNS: &str =
    "id, tier, points_balance, points_debt, birth_month, tier_floor, \
    tier_floor_until, tier_grace_since, family_group_id, family_share, erased_at";

pub async fn lock_member(
    conn: &mut AnyConnection,
    member_id: &str,
    now: i64,
) -> StoreResult<Option<MemberLedger>> {
    sqlx::query_as::<_, MemberLedger>(&format!(
        "UPDATE members SET updated_at = $2 WHERE id = $1 RETURNING {LEDGER_COLUMNS}"
    ))
    .bind(member_id)
    .bind(now)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn read_member(
    conn: &mut AnyConnection,
    member_id: &str,
) -> StoreResult<Option<MemberLedger>> {
    sqlx::query_as::<_, MemberLedger>(&format!(
        "SELECT {LEDGER_COLUMNS} FROM members WHERE id = $1"
    ))
    .bind(member_id)
    .fetch_optional(conn)
    .await
    .store()
}

/// Write the caches back after a change.
pub async fn save_member(
    conn: &mut AnyConnection,
    member_id: &str,
    balance: i64,
    debt: i64,
    tier: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE members SET points_balance = $2, points_debt = $3, tier = $4 WHERE id = $1",
    )
    .bind(member_id)
    .bind(balance)
    .bind(debt)
    .bind(tier)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub struct NewEntry<'a> {
    pub member_id: &'a str,
    pub kind: &'a str,
    pub points: i64,
    pub reason: &'a str,
    pub order_id: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub actor: &'a str,
    pub approver: Option<&'a str>,
    pub at: i64,
}

/// Append an entry; returns its id.
pub async fn insert_entry(conn: &mut AnyConnection, e: &NewEntry<'_>) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO ledger_entries (member_id, kind, points, reason, order_id, ref, actor, approver, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(e.member_id)
    .bind(e.kind)
    .bind(e.points)
    .bind(e.reason)
    .bind(e.order_id)
    .bind(e.reference)
    .bind(e.actor)
    .bind(e.approver)
    .bind(e.at)
    .fetch_one(conn)
    .await
    .store()?;
    row.try_get::<i64, _>(0).store()
}

/// Open a lot for a positive entry.
pub async fn insert_lot(
    conn: &mut AnyConnection,
    entry_id: i64,
    member_id: &str,
    points: i64,
    earned_at: i64,
    expires_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO lots (entry_id, member_id, points, remaining, earned_at, expires_at) \
         VALUES ($1, $2, $3, $3, $4, $5)",
    )
    .bind(entry_id)
    .bind(member_id)
    .bind(points)
    .bind(earned_at)
    .bind(expires_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[derive(Debug, Clone, Copy, FromRow)]
pub struct LotRow {
    pub entry_id: i64,
    pub points: i64,
    pub remaining: i64,
    pub earned_at: i64,
    pub expires_at: i64,
}

/// The member's lots with points left that have not expired by `now`.
pub async fn open_lots(
    conn: &mut AnyConnection,
    member_id: &str,
    now: i64,
) -> StoreResult<Vec<LotRow>> {
    sqlx::query_as::<_, LotRow>(
        "SELECT entry_id, points, remaining, earned_at, expires_at FROM lots \
         WHERE member_id = $1 AND remaining > 0 AND expires_at > $2 ORDER BY expires_at, entry_id",
    )
    .bind(member_id)
    .bind(now)
    .fetch_all(conn)
    .await
    .store()
}

/// Record that `entry_id` took `points` from lot `lot_id`.
pub async fn consume_lot(
    conn: &mut AnyConnection,
    entry_id: i64,
    lot_id: i64,
    member_id: &str,
    points: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO lot_allocations (entry_id, lot_id, member_id, points) VALUES ($1, $2, $3, $4)",
    )
    .bind(entry_id)
    .bind(lot_id)
    .bind(member_id)
    .bind(points)
    .execute(&mut *conn)
    .await
    .store()?;
    let done = sqlx::query(
        "UPDATE lots SET remaining = remaining - $2 WHERE entry_id = $1 AND remaining >= $2",
    )
    .bind(lot_id)
    .bind(points)
    .execute(conn)
    .await
    .store()?;
    if done.rows_affected() != 1 {
        return Err(crate::StoreError::Corrupt(format!(
            "lot {lot_id} holds fewer than {points} points"
        )));
    }
    Ok(())
}

/// Record a change of a member's refund shortfall (+ owed, − settled).
pub async fn insert_debt(
    conn: &mut AnyConnection,
    member_id: &str,
    points: i64,
    order_id: Option<&str>,
    entry_id: Option<i64>,
    reason: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO point_debts (member_id, points, order_id, entry_id, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(member_id)
    .bind(points)
    .bind(order_id)
    .bind(entry_id)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub kind: String,
    pub points: i64,
    pub reason: String,
    pub order_id: Option<String>,
    pub pos_order_id: Option<String>,
    pub store_code: Option<String>,
    pub at: i64,
    /// When the entry's points expire (entries that made a lot).
    pub expires_at: Option<i64>,
}

/// Entries newest first, a page at a time (`before` = the last id seen).
pub async fn entries_of(
    conn: &mut AnyConnection,
    member_id: &str,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<EntryRow>> {
    sqlx::query_as::<_, EntryRow>(
        "SELECT e.id, e.kind, e.points, e.reason, e.order_id, o.pos_order_id, o.store_code, e.at, \
         l.expires_at FROM ledger_entries e LEFT JOIN orders o ON o.id = e.order_id \
         LEFT JOIN lots l ON l.entry_id = e.id \
         WHERE e.member_id = $1 AND e.id < $2 ORDER BY e.id DESC LIMIT $3",
    )
    .bind(member_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// Points still due to expire, per expiry instant, soonest first.
pub async fn expiring_of(
    conn: &mut AnyConnection,
    member_id: &str,
    now: i64,
) -> StoreResult<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT expires_at, CAST(SUM(remaining) AS BIGINT) FROM lots \
         WHERE member_id = $1 AND remaining > 0 AND expires_at > $2 \
         GROUP BY expires_at ORDER BY expires_at",
    )
    .bind(member_id)
    .bind(now)
    .fetch_all(conn)
    .await
    .store()?;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .store()
}

/// `(member_id, lot)` rows of `SELECT member_id, entry_id, points, remaining, earned_at, expires_at`.
fn member_lots(rows: &[sqlx::any::AnyRow]) -> StoreResult<Vec<(String, LotRow)>> {
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>(0)?,
                LotRow {
                    entry_id: r.try_get(1)?,
                    points: r.try_get(2)?,
                    remaining: r.try_get(3)?,
                    earned_at: r.try_get(4)?,
                    expires_at: r.try_get(5)?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .store()
}

/// Lots past their expiry with points left (the expiry job's work list).
pub async fn expired_lots(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<(String, LotRow)>> {
    let rows = sqlx::query(
        "SELECT member_id, entry_id, points, remaining, earned_at, expires_at FROM lots \
         WHERE remaining > 0 AND expires_at <= $1 ORDER BY expires_at, entry_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()?;
    member_lots(&rows)
}

/// Lots expiring in `(from, to]` with points left: reminder candidates.
pub async fn lots_expiring_between(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> StoreResult<Vec<(String, LotRow)>> {
    let rows = sqlx::query(
        "SELECT member_id, entry_id, points, remaining, earned_at, expires_at FROM lots \
         WHERE remaining > 0 AND expires_at > $1 AND expires_at <= $2 ORDER BY member_id, expires_at",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
    .store()?;
    member_lots(&rows)
}

/// Insert an event into the outbox in the caller's transaction. A second
/// event of the same kind for the same subject is ignored (jobs re-run).
pub async fn emit(
    conn: &mut AnyConnection,
    kind: &str,
    member_id: Option<&str>,
    subject: &str,
    payload: &str,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO outbox_events (kind, member_id, subject, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, subject) DO NOTHING",
    )
    .bind(kind)
    .bind(member_id)
    .bind(subject)
    .bind(payload)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// A stored result of an idempotent call.
#[derive(Debug, Clone, FromRow)]
pub struct IdempotentResult {
    pub request_hash: String,
    pub status: i64,
    pub response_json: String,
}

/// Claim `(scope, key)` for this transaction. `false` when the key is already
/// taken (by a committed call, or — on PostgreSQL — the insert waits for a
/// concurrent one to finish, so a `false` always has a result to read).
pub async fn claim_key(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response_json, created_at) \
         VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_key(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
    status: i64,
    response_json: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, response_json = $4 WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(status)
    .bind(response_json)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn stored_result(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
) -> StoreResult<Option<IdempotentResult>> {
    sqlx::query_as::<_, IdempotentResult>(
        "SELECT request_hash, status, response_json FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(conn)
    .await
    .store()
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_tier_change(
    conn: &mut AnyConnection,
    member_id: &str,
    from: &str,
    to: &str,
    reason: &str,
    spend_fen: i64,
    actor: &str,
    at: i64,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO tier_history (member_id, from_tier, to_tier, reason, qualifying_spend_fen, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(member_id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(spend_fen)
    .bind(actor)
    .bind(at)
    .fetch_one(conn)
    .await
    .store()?;
    row.try_get::<i64, _>(0).store()
}

#[derive(Debug, Clone, FromRow)]
pub struct TierChangeRow {
    pub from_tier: String,
    pub to_tier: String,
    pub reason: String,
    pub qualifying_spend_fen: i64,
    pub actor: String,
    pub at: i64,
}

pub async fn tier_history_of(
    conn: &mut AnyConnection,
    member_id: &str,
) -> StoreResult<Vec<TierChangeRow>> {
    sqlx::query_as::<_, TierChangeRow>(
        "SELECT from_tier, to_tier, reason, qualifying_spend_fen, actor, at FROM tier_history \
         WHERE member_id = $1 ORDER BY id DESC",
    )
    .bind(member_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Set or clear the downgrade grace mark and the manual floor.
pub async fn set_tier_marks(
    conn: &mut AnyConnection,
    member_id: &str,
    grace_since: Option<i64>,
    floor: Option<&str>,
    floor_until: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE members SET tier_grace_since = $2, tier_floor = $3, tier_floor_until = $4 WHERE id = $1",
    )
    .bind(member_id)
    .bind(grace_since)
    .bind(floor)
    .bind(floor_until)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Mark a periodic job's period as started; `false` if it already ran.
pub async fn start_job(
    conn: &mut AnyConnection,
    job: &str,
    period: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO job_runs (job, period, started_at) VALUES ($1, $2, $3) \
         ON CONFLICT (job, period) DO NOTHING",
    )
    .bind(job)
    .bind(period)
    .bind(now)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_job(
    conn: &mut AnyConnection,
    job: &str,
    period: &str,
    detail: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE job_runs SET finished_at = $3, detail = $4 WHERE job = $1 AND period = $2")
        .bind(job)
        .bind(period)
        .bind(now)
        .bind(detail)
        .execute(conn)
        .await
        .store()?;
    Ok(())
}

/// The lot an order's earning opened, if it earned.
pub async fn earn_entry_of_order(
    conn: &mut AnyConnection,
    order_id: &str,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query("SELECT id FROM ledger_entries WHERE order_id = $1 AND kind = 'earn'")
        .bind(order_id)
        .fetch_optional(conn)
        .await
        .store()?;
    row.map(|r| r.try_get::<i64, _>(0)).transpose().store()
}

pub struct NewRedemption<'a> {
    pub id: &'a str,
    pub member_id: &'a str,
    pub entry_id: i64,
    pub points: i64,
    pub store_code: &'a str,
    pub reward_id: Option<&'a str>,
    pub note: Option<&'a str>,
    pub at: i64,
}

pub async fn insert_redemption(conn: &mut AnyConnection, r: &NewRedemption<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO redemptions (id, member_id, entry_id, points, store_code, reward_id, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.id)
    .bind(r.member_id)
    .bind(r.entry_id)
    .bind(r.points)
    .bind(r.store_code)
    .bind(r.reward_id)
    .bind(r.note)
    .bind(r.at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_transfer(
    conn: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    points: i64,
    out_entry: i64,
    in_entry: i64,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO transfers (id, from_member_id, to_member_id, points, out_entry_id, in_entry_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(points)
    .bind(out_entry)
    .bind(in_entry)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Members the tier review looks at (above regular, or in grace), by id pages.
pub async fn members_for_review(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>(
        "SELECT id FROM members WHERE id > $1 AND erased_at IS NULL \
         AND (tier <> 'regular' OR tier_grace_since IS NOT NULL) ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// Members born in `month`, with their tier, by id pages.
/// `(id, tier, home store)` of members born in `month`, in id order.
pub async fn members_born_in(
    conn: &mut AnyConnection,
    month: i64,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<(String, String, Option<String>)>> {
    sqlx::query_as(
        "SELECT id, tier, home_store_code FROM members WHERE id > $1 AND birth_month = $2 \
         AND erased_at IS NULL ORDER BY id LIMIT $3",
    )
    .bind(after)
    .bind(month)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// Append a positive entry and open its lot: one statement on PostgreSQL (a
/// data-modifying CTE, one round trip on the hot path), two on SQLite.
pub async fn insert_entry_with_lot(
    conn: &mut AnyConnection,
    e: &NewEntry<'_>,
    earned_at: i64,
    expires_at: i64,
) -> StoreResult<i64> {
    if conn.backend_name() != "PostgreSQL" {
        let id = insert_entry(conn, e).await?;
        insert_lot(conn, id, e.member_id, e.points, earned_at, expires_at).await?;
        return Ok(id);
    }
    let row = sqlx::query(
        "WITH e AS (INSERT INTO ledger_entries (member_id, kind, points, reason, order_id, ref, actor, approver, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id) \
         INSERT INTO lots (entry_id, member_id, points, remaining, earned_at, expires_at) \
         SELECT id, $1, $3, $3, $10, $11 FROM e RETURNING entry_id",
    )
    .bind(e.member_id)
    .bind(e.kind)
    .bind(e.points)
    .bind(e.reason)
    .bind(e.order_id)
    .bind(e.reference)
    .bind(e.actor)
    .bind(e.approver)
    .bind(e.at)
    .bind(earned_at)
    .bind(expires_at)
    .fetch_one(conn)
    .await
    .store()?;
    row.try_get::<i64, _>(0).store()
}

/// Members of a family group who agreed to share their points, by id.
pub async fn family_sharers(conn: &mut AnyConnection, group: &str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>(
        "SELECT id FROM members WHERE family_group_id = $1 AND family_share = 1 \
         AND erased_at IS NULL ORDER BY id",
    )
    .bind(group)
    .fetch_all(conn)
    .await
    .store()
}

/// A member's consent to let their family group redeem from their points.
pub async fn set_family_share(
    conn: &mut AnyConnection,
    member_id: &str,
    share: bool,
) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE members SET family_share = $2 WHERE id = $1 AND erased_at IS NULL")
            .bind(member_id)
            .bind(share as i64)
            .execute(conn)
            .await
            .store()?;
    Ok(done.rows_affected() == 1)
}
