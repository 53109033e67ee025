//! Manual points adjustments waiting for an HQ admin's approval.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct AdjustmentRequestRow {
    pub id: String,
    pub member_id: String,
    pub member_code: String,
    pub kind: String,
    pub points: i64,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub entry_id: Option<String>,
}

const COLUMNS: &str = "r.id, r.member_id, m.member_code, r.kind, r.points, r.reason, \
    r.requested_by, r.requested_at, r.status, r.decided_by, r.decided_at, r.entry_id";

pub struct NewAdjustmentRequest<'a> {
    pub id: &'a str,
    pub member_id: &'a str,
    pub kind: &'a str,
    pub points: i64,
    pub reason: &'a str,
    pub requested_by: &'a str,
    pub requested_at: i64,
}

pub async fn insert_request(
    conn: &mut AnyConnection,
    r: &NewAdjustmentRequest<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO adjustment_requests (id, member_id, kind, points, reason, requested_by, requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id)
    .bind(r.member_id)
    .bind(r.kind)
    .bind(r.points)
    .bind(r.reason)
    .bind(r.requested_by)
    .bind(r.requested_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Pending requests first (oldest first), then the latest decided ones.
pub async fn list_requests(
    conn: &mut AnyConnection,
    limit: i64,
) -> StoreResult<Vec<AdjustmentRequestRow>> {
    sqlx::query_as::<_, AdjustmentRequestRow>(&format!(
        "SELECT {COLUMNS} FROM adjustment_requests r JOIN members m ON m.id = r.member_id \
         ORDER BY CASE WHEN r.status = 'pending' THEN 0 ELSE 1 END, \
         CASE WHEN r.status = 'pending' THEN r.requested_at ELSE -r.requested_at END, r.id \
         LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

pub async fn get_request(
    conn: &mut AnyConnection,
    id: &str,
) -> StoreResult<Option<AdjustmentRequestRow>> {
    sqlx::query_as::<_, AdjustmentRequestRow>(&format!(
        "SELECT {COLUMNS} FROM adjustment_requests r JOIN members m ON m.id = r.member_id \
         WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

/// Mark a pending request decided; false when it was no longer pending
/// (someone else decided first).
pub async fn decide_request(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    decided_by: &str,
    decided_at: i64,
    entry_id: Option<&str>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE adjustment_requests SET status = $1, decided_by = $2, decided_at = $3, entry_id = $4 \
         WHERE id = $5 AND status = 'pending'",
    )
    .bind(status)
    .bind(decided_by)
    .bind(decided_at)
    .bind(entry_id)
    .bind(id)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}
