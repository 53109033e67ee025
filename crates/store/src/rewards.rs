//! Coupon templates, coupons and the rewards catalogue. What a coupon is
//! worth and who may have a reward is decided in `regulars_core::coupon` and
//! `regulars_core::reward`; these are the rows.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub spec_json: String,
    pub active: i64,
    pub created_at: i64,
}

pub async fn insert_template(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    spec_json: &str,
    actor: &str,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO coupon_templates (id, name, spec_json, active, created_by, created_at) \
         VALUES ($1, $2, $3, 1, $4, $5)",
    )
    .bind(id)
    .bind(name)
    .bind(spec_json)
    .bind(actor)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

const TEMPLATE_COLUMNS: &str = "id, name, spec_json, active, created_at";

pub async fn get_template(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<TemplateRow>> {
    sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn list_templates(conn: &mut AnyConnection) -> StoreResult<Vec<TemplateRow>> {
    sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM coupon_templates ORDER BY created_at, id"
    ))
    .fetch_all(conn)
    .await
    .store()
}

pub async fn set_template_active(
    conn: &mut AnyConnection,
    id: &str,
    active: bool,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE coupon_templates SET active = $2 WHERE id = $1")
        .bind(id)
        .bind(i64::from(active))
        .execute(conn)
        .await
        .store()?;
    Ok(done.rows_affected() == 1)
}

/// A coupon with its template's name and spec.
#[derive(Debug, Clone, FromRow)]
pub struct CouponRow {
    pub id: String,
    pub code: String,
    pub template_id: String,
    pub template_name: String,
    pub spec_json: String,
    pub member_id: String,
    pub source: String,
    pub source_ref: String,
    pub status: String,
    pub issued_at: i64,
    pub valid_from: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    pub redeemed_store: Option<String>,
    pub redeemed_order: Option<String>,
    pub discount_fen: Option<i64>,
    pub redeem_hash: Option<String>,
}

const COUPON_SELECT: &str = "SELECT c.id, c.code, c.template_id, t.name AS template_name, \
    t.spec_json, c.member_id, c.source, c.source_ref, c.status, c.issued_at, c.valid_from, \
    c.expires_at, c.redeemed_at, c.redeemed_store, c.redeemed_order, c.discount_fen, \
    c.redeem_hash FROM coupons c JOIN coupon_templates t ON t.id = c.template_id";

pub struct NewCoupon<'a> {
    pub id: &'a str,
    pub code: &'a str,
    pub template_id: &'a str,
    pub member_id: &'a str,
    pub source: &'a str,
    pub source_ref: &'a str,
    pub issued_at: i64,
    pub valid_from: i64,
    pub expires_at: i64,
}

/// Issue a coupon unless `(source, source_ref, template_id)` already issued
/// one; true when this call issued it.
pub async fn insert_coupon(conn: &mut AnyConnection, c: &NewCoupon<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO coupons (id, code, template_id, member_id, source, source_ref, status, \
         issued_at, valid_from, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'issued', $7, $8, $9) \
         ON CONFLICT (source, source_ref, template_id) DO NOTHING",
    )
    .bind(c.id)
    .bind(c.code)
    .bind(c.template_id)
    .bind(c.member_id)
    .bind(c.source)
    .bind(c.source_ref)
    .bind(c.issued_at)
    .bind(c.valid_from)
    .bind(c.expires_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

pub async fn coupon_by_source(
    conn: &mut AnyConnection,
    source: &str,
    source_ref: &str,
    template_id: &str,
) -> StoreResult<Option<CouponRow>> {
    sqlx::query_as(&format!(
        "{COUPON_SELECT} WHERE c.source = $1 AND c.source_ref = $2 AND c.template_id = $3"
    ))
    .bind(source)
    .bind(source_ref)
    .bind(template_id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn coupon_by_code(
    conn: &mut AnyConnection,
    code: &str,
) -> StoreResult<Option<CouponRow>> {
    sqlx::query_as(&format!("{COUPON_SELECT} WHERE c.code = $1"))
        .bind(code)
        .fetch_optional(conn)
        .await
        .store()
}

/// A member's coupons, newest first; `usable_at` keeps those still issued
/// and not past their expiry at that instant.
pub async fn coupons_of(
    conn: &mut AnyConnection,
    member_id: &str,
    usable_at: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<CouponRow>> {
    match usable_at {
        Some(now) => {
            sqlx::query_as(&format!(
            "{COUPON_SELECT} WHERE c.member_id = $1 AND c.status = 'issued' AND c.expires_at > $2 \
                 ORDER BY c.expires_at, c.id LIMIT $3"
        ))
            .bind(member_id)
            .bind(now)
            .bind(limit)
            .fetch_all(conn)
            .await
        }
        None => {
            sqlx::query_as(&format!(
            "{COUPON_SELECT} WHERE c.member_id = $1 ORDER BY c.issued_at DESC, c.id DESC LIMIT $2"
        ))
            .bind(member_id)
            .bind(limit)
            .fetch_all(conn)
            .await
        }
    }
    .store()
}

pub struct Redeemed<'a> {
    pub coupon_id: &'a str,
    pub at: i64,
    pub store_code: &'a str,
    pub pos_order_id: &'a str,
    pub discount_fen: i64,
    pub request_hash: &'a str,
}

/// Mark a coupon used, if it is still issued: false when someone else got
/// there first (the caller re-reads to tell a replay from a second use).
pub async fn mark_redeemed(conn: &mut AnyConnection, r: &Redeemed<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE coupons SET status = 'redeemed', redeemed_at = $2, redeemed_store = $3, \
         redeemed_order = $4, discount_fen = $5, redeem_hash = $6 \
         WHERE id = $1 AND status = 'issued'",
    )
    .bind(r.coupon_id)
    .bind(r.at)
    .bind(r.store_code)
    .bind(r.pos_order_id)
    .bind(r.discount_fen)
    .bind(r.request_hash)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// Withdraw a coupon that has not been used.
pub async fn void_coupon(conn: &mut AnyConnection, coupon_id: &str) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE coupons SET status = 'void' WHERE id = $1 AND status = 'issued'")
            .bind(coupon_id)
            .execute(conn)
            .await
            .store()?;
    Ok(done.rows_affected() == 1)
}

/// Mark up to `limit` coupons past their expiry as expired; answers
/// `(coupon id, member id)` of each.
pub async fn expire_coupons(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<(String, String)>> {
    sqlx::query_as(
        "UPDATE coupons SET status = 'expired' WHERE id IN (SELECT id FROM coupons \
         WHERE status = 'issued' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2) \
         RETURNING id, member_id",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

#[derive(Debug, Clone, FromRow)]
pub struct RewardRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub points_cost: i64,
    pub coupon_template_id: Option<String>,
    pub stock_total: Option<i64>,
    pub stock_left: Option<i64>,
    pub per_member_limit: Option<i64>,
    pub min_tier: String,
    pub description: Option<String>,
    pub active: i64,
    pub created_at: i64,
}

const REWARD_COLUMNS: &str = "id, name, kind, points_cost, coupon_template_id, stock_total, \
    stock_left, per_member_limit, min_tier, description, active, created_at";

pub async fn insert_reward(conn: &mut AnyConnection, r: &RewardRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rewards (id, name, kind, points_cost, coupon_template_id, stock_total, \
         stock_left, per_member_limit, min_tier, description, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.kind)
    .bind(r.points_cost)
    .bind(&r.coupon_template_id)
    .bind(r.stock_total)
    .bind(r.stock_left)
    .bind(r.per_member_limit)
    .bind(&r.min_tier)
    .bind(&r.description)
    .bind(r.active)
    .bind(r.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

pub async fn get_reward(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<RewardRow>> {
    sqlx::query_as(&format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn list_rewards(
    conn: &mut AnyConnection,
    active_only: bool,
) -> StoreResult<Vec<RewardRow>> {
    sqlx::query_as(&format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE active >= $1 ORDER BY points_cost, id"
    ))
    .bind(i64::from(active_only))
    .fetch_all(conn)
    .await
    .store()
}

/// Change what a catalogue entry says; `add_stock` raises both the total and
/// what is left (a restock), so `total − left` stays the units handed out.
#[allow(clippy::too_many_arguments)]
pub async fn update_reward(
    conn: &mut AnyConnection,
    id: &str,
    name: Option<&str>,
    points_cost: Option<i64>,
    active: Option<bool>,
    add_stock: i64,
    description: Option<&str>,
    at: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE rewards SET name = COALESCE($2, name), points_cost = COALESCE($3, points_cost), \
         active = COALESCE($4, active), stock_total = stock_total + $5, \
         stock_left = stock_left + $5, description = COALESCE($6, description), updated_at = $7 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(points_cost)
    .bind(active.map(i64::from))
    .bind(add_stock)
    .bind(description)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// Take one unit off the shelf; false when none is left. Rewards without a
/// stock count are never short.
pub async fn take_stock(conn: &mut AnyConnection, id: &str, at: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE rewards SET stock_left = stock_left - 1, updated_at = $2 \
         WHERE id = $1 AND (stock_left IS NULL OR stock_left > 0)",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// How many times this member redeemed this reward.
pub async fn redemptions_of_reward(
    conn: &mut AnyConnection,
    reward_id: &str,
    member_id: &str,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM redemptions WHERE reward_id = $1 AND member_id = $2",
    )
    .bind(reward_id)
    .bind(member_id)
    .fetch_one(conn)
    .await
    .store()
}
