//! Campaign rows: the definition (JSON), status and approval.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub trigger_kind: String,
    pub spec_json: String,
    pub status: String,
    pub audience_estimate: i64,
    pub created_by: String,
    pub submitted_by: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, trigger_kind, spec_json, status, audience_estimate, created_by, \
    submitted_by, approved_by, approved_at, created_at, updated_at";

pub async fn insert(conn: &mut AnyConnection, c: &CampaignRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO campaigns ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.trigger_kind)
    .bind(&c.spec_json)
    .bind(&c.status)
    .bind(c.audience_estimate)
    .bind(&c.created_by)
    .bind(&c.submitted_by)
    .bind(&c.approved_by)
    .bind(c.approved_at)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<CampaignRow>> {
    sqlx::query_as::<_, CampaignRow>(&format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .store()
}

/// Campaigns, newest first; only those in `status` when given.
pub async fn list(conn: &mut AnyConnection, status: Option<&str>) -> StoreResult<Vec<CampaignRow>> {
    sqlx::query_as::<_, CampaignRow>(&format!(
        "SELECT {COLUMNS} FROM campaigns WHERE ($1 = '' OR status = $1) ORDER BY created_at DESC, id DESC"
    ))
    .bind(status.unwrap_or(""))
    .fetch_all(conn)
    .await
    .store()
}

/// Replace a draft's definition; `false` when it is no longer a draft.
pub async fn update_draft(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    trigger_kind: &str,
    spec_json: &str,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE campaigns SET name = $2, trigger_kind = $3, spec_json = $4, updated_at = $5 \
         WHERE id = $1 AND status = 'draft'",
    )
    .bind(id)
    .bind(name)
    .bind(trigger_kind)
    .bind(spec_json)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// A status change, only from the status the caller read (two people
/// approving at once: one wins, the other is told it moved on).
pub struct StatusUpdate<'a> {
    pub id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub submitted_by: Option<&'a str>,
    pub approved_by: Option<&'a str>,
    pub audience_estimate: Option<i64>,
    pub at: i64,
}

pub async fn set_status(conn: &mut AnyConnection, u: &StatusUpdate<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE campaigns SET status = $3, \
         submitted_by = COALESCE($4, submitted_by), \
         approved_by = CASE WHEN $5 = '' THEN approved_by ELSE $5 END, \
         approved_at = CASE WHEN $5 <> '' THEN $7 \
           WHEN $3 = 'active' AND approved_at IS NULL THEN $7 ELSE approved_at END, \
         audience_estimate = CASE WHEN $6 < 0 THEN audience_estimate ELSE $6 END, \
         updated_at = $7 \
         WHERE id = $1 AND status = $2",
    )
    .bind(u.id)
    .bind(u.from)
    .bind(u.to)
    .bind(u.submitted_by)
    .bind(u.approved_by.unwrap_or(""))
    .bind(u.audience_estimate.unwrap_or(-1))
    .bind(u.at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}
