//! Order rows, their lines, refunds, and the sums tiers and caps need.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, FromRow, Row};

/// An order row to insert (serialised as is for batch writes).
#[derive(serde::Serialize)]
pub struct NewOrderRow<'a> {
    pub id: &'a str,
    pub store_code: &'a str,
    pub pos_order_id: &'a str,
    pub member_id: Option<&'a str>,
    pub channel: &'a str,
    pub occurred_at: i64,
    pub paid_fen: i64,
    pub eligible_fen: i64,
    pub party_size: Option<i64>,
    pub receipt_code: &'a str,
    pub request_hash: &'a str,
    pub created_at: i64,
}

/// Insert the order unless `(store_code, pos_order_id)` exists. `false` means
/// it exists; on PostgreSQL a concurrent insert of the same key waits for the
/// other transaction, so `false` always has a committed row behind it.
pub async fn insert_order(conn: &mut AnyConnection, o: &NewOrderRow<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO orders (id, store_code, pos_order_id, member_id, channel, occurred_at, paid_fen, \
         eligible_fen, qualifying_fen, party_size, receipt_code, request_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12) \
         ON CONFLICT (store_code, pos_order_id) DO NOTHING",
    )
    .bind(o.id)
    .bind(o.store_code)
    .bind(o.pos_order_id)
    .bind(o.member_id)
    .bind(o.channel)
    .bind(o.occurred_at)
    .bind(o.paid_fen)
    .bind(o.eligible_fen)
    .bind(o.party_size)
    .bind(o.receipt_code)
    .bind(o.request_hash)
    .bind(o.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

/// An order line as stored. Serialised for batch writes with the flags as
/// 0/1, the schema's booleans.
#[derive(serde::Serialize)]
pub struct ItemRow<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub category: &'a str,
    pub quantity: i64,
    pub unit_price_fen: i64,
    pub discount_fen: i64,
    #[serde(serialize_with = "as_0_or_1")]
    pub voided: bool,
    #[serde(serialize_with = "as_0_or_1")]
    pub comped: bool,
    #[serde(serialize_with = "as_0_or_1")]
    pub staff_meal: bool,
}

fn as_0_or_1<S: serde::Serializer>(flag: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(i64::from(*flag))
}

/// All lines of an order in one statement.
pub async fn insert_items(
    conn: &mut AnyConnection,
    order_id: &str,
    items: &[ItemRow<'_>],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    // 11 binds per line, `$n` placeholders written out (sqlx's QueryBuilder
    // writes `?` for the Any driver, which PostgreSQL does not read); chunks
    // stay far below both backends' bind limits.
    for (chunk_no, chunk) in items.chunks(80).enumerate() {
        let mut sql = String::from(
            "INSERT INTO order_items (order_id, line, sku, name, category, quantity, unit_price_fen, \
             discount_fen, voided, comped, staff_meal) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let b = i * 11;
            sql.push('(');
            sql.push_str(
                &(1..=11)
                    .map(|k| format!("${}", b + k))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for (i, item) in chunk.iter().enumerate() {
            q = q
                .bind(order_id)
                .bind((chunk_no * 80 + i + 1) as i64)
                .bind(item.sku)
                .bind(item.name)
                .bind(item.category)
                .bind(item.quantity)
                .bind(item.unit_price_fen)
                .bind(item.discount_fen)
                .bind(item.voided as i64)
                .bind(item.comped as i64)
                .bind(item.staff_meal as i64);
        }
        q.execute(&mut *conn).await.store()?;
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: String,
    pub store_code: String,
    pub pos_order_id: String,
    pub member_id: Option<String>,
    pub channel: String,
    pub occurred_at: i64,
    pub paid_fen: i64,
    pub eligible_fen: i64,
    pub qualifying_fen: i64,
    pub refunded_fen: i64,
    pub points_earned: i64,
    pub points_reversed: i64,
    pub receipt_code: String,
    pub request_hash: String,
    pub response_json: String,
    pub claimed_at: Option<i64>,
    pub created_at: i64,
}

const ORDER_COLUMNS: &str =
    "id, store_code, pos_order_id, member_id, channel, occurred_at, paid_fen, \
    eligible_fen, qualifying_fen, refunded_fen, points_earned, points_reversed, receipt_code, \
    request_hash, response_json, claimed_at, created_at";

pub async fn order_by_pos_id(
    conn: &mut AnyConnection,
    store_code: &str,
    pos_order_id: &str,
) -> StoreResult<Option<OrderRow>> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE store_code = $1 AND pos_order_id = $2"
    ))
    .bind(store_code)
    .bind(pos_order_id)
    .fetch_optional(conn)
    .await
    .store()
}

/// The latest orders that have a member, newest first (surveys, demos).
pub async fn recent_member_orders(
    conn: &mut AnyConnection,
    limit: i64,
) -> StoreResult<Vec<OrderRow>> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE member_id IS NOT NULL \
         ORDER BY occurred_at DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}

/// The same, taking PostgreSQL's row lock so refunds of one order queue.
pub async fn lock_order(
    conn: &mut AnyConnection,
    store_code: &str,
    pos_order_id: &str,
) -> StoreResult<Option<OrderRow>> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "UPDATE orders SET refunded_fen = refunded_fen WHERE store_code = $1 AND pos_order_id = $2 \
         RETURNING {ORDER_COLUMNS}"
    ))
    .bind(store_code)
    .bind(pos_order_id)
    .fetch_optional(conn)
    .await
    .store()
}

pub async fn order_by_receipt_code(
    conn: &mut AnyConnection,
    receipt_code: &str,
) -> StoreResult<Option<OrderRow>> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "UPDATE orders SET refunded_fen = refunded_fen WHERE receipt_code = $1 RETURNING {ORDER_COLUMNS}"
    ))
    .bind(receipt_code)
    .fetch_optional(conn)
    .await
    .store()
}

#[derive(Debug, Clone, FromRow)]
pub struct StoredItem {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
    pub discount_fen: i64,
    pub voided: i64,
    pub comped: i64,
    pub staff_meal: i64,
}

pub async fn items_of(conn: &mut AnyConnection, order_id: &str) -> StoreResult<Vec<StoredItem>> {
    sqlx::query_as::<_, StoredItem>(
        "SELECT sku, name, category, quantity, unit_price_fen, discount_fen, voided, comped, staff_meal \
         FROM order_items WHERE order_id = $1 ORDER BY line",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await
    .store()
}

/// Record the outcome of ingest (or of a later claim) on the order row.
pub async fn settle_order(
    conn: &mut AnyConnection,
    order_id: &str,
    member_id: Option<&str>,
    points_earned: i64,
    rule_version: i64,
    claimed_at: Option<i64>,
    response_json: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE orders SET member_id = $2, points_earned = $3, rule_version = $4, claimed_at = $5, \
         response_json = $6 WHERE id = $1",
    )
    .bind(order_id)
    .bind(member_id)
    .bind(points_earned)
    .bind(rule_version)
    .bind(claimed_at)
    .bind(response_json)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// Σ qualifying spend of a member's orders with `from < occurred_at <= to`,
/// leaving out one order (the one being ingested).
pub async fn qualifying_spend(
    conn: &mut AnyConnection,
    member_id: &str,
    from: i64,
    to: i64,
    except_order: Option<&str>,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(qualifying_fen), 0) AS BIGINT) FROM orders \
         WHERE member_id = $1 AND occurred_at > $2 AND occurred_at <= $3 AND id <> $4",
    )
    .bind(member_id)
    .bind(from)
    .bind(to)
    .bind(except_order.unwrap_or(""))
    .fetch_one(conn)
    .await
    .store()?;
    row.try_get::<i64, _>(0).store()
}

/// Points a member earned on orders that happened in `[from, to)`.
pub async fn points_earned_between(
    conn: &mut AnyConnection,
    member_id: &str,
    from: i64,
    to: i64,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(points_earned), 0) AS BIGINT) FROM orders \
         WHERE member_id = $1 AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(member_id)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
    .store()?;
    row.try_get::<i64, _>(0).store()
}

pub struct NewRefundRow<'a> {
    pub store_code: &'a str,
    pub refund_id: &'a str,
    pub order_id: &'a str,
    pub amount_fen: i64,
    pub points_reversed: i64,
    pub shortfall: i64,
    pub request_hash: &'a str,
    pub response_json: &'a str,
    pub created_at: i64,
}

/// Insert a refund unless its id exists (`false`).
pub async fn insert_refund(conn: &mut AnyConnection, r: &NewRefundRow<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO refunds (store_code, refund_id, order_id, amount_fen, points_reversed, shortfall, \
         request_hash, response_json, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (store_code, refund_id) DO NOTHING",
    )
    .bind(r.store_code)
    .bind(r.refund_id)
    .bind(r.order_id)
    .bind(r.amount_fen)
    .bind(r.points_reversed)
    .bind(r.shortfall)
    .bind(r.request_hash)
    .bind(r.response_json)
    .bind(r.created_at)
    .execute(conn)
    .await
    .store()?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct RefundRow {
    pub order_id: String,
    pub request_hash: String,
    pub response_json: String,
}

pub async fn refund_by_id(
    conn: &mut AnyConnection,
    store_code: &str,
    refund_id: &str,
) -> StoreResult<Option<RefundRow>> {
    sqlx::query_as::<_, RefundRow>(
        "SELECT order_id, request_hash, response_json FROM refunds WHERE store_code = $1 AND refund_id = $2",
    )
    .bind(store_code)
    .bind(refund_id)
    .fetch_optional(conn)
    .await
    .store()
}

/// After a refund: the order's refunded amount, reversed points and what
/// still counts toward tiers.
pub async fn record_refund_on_order(
    conn: &mut AnyConnection,
    order_id: &str,
    refunded_fen: i64,
    points_reversed: i64,
    qualifying_fen: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE orders SET refunded_fen = $2, points_reversed = $3, qualifying_fen = $4 WHERE id = $1",
    )
    .bind(order_id)
    .bind(refunded_fen)
    .bind(points_reversed)
    .bind(qualifying_fen)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// SKUs flagged as new dishes.
pub async fn new_skus(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>("SELECT sku FROM menu_items WHERE is_new = 1")
        .fetch_all(conn)
        .await
        .store()
}

/// The current earning rule set: `(version, rules_json)`; `None` before the
/// first edit (the defaults apply).
pub async fn current_rules(conn: &mut AnyConnection) -> StoreResult<Option<(i64, String)>> {
    let row = sqlx::query(
        "SELECT version, rules_json FROM earning_rule_versions ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .store()?;
    row.map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
        .transpose()
        .store()
}

pub async fn insert_rules(
    conn: &mut AnyConnection,
    rules_json: &str,
    note: &str,
    created_by: &str,
    at: i64,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO earning_rule_versions (rules_json, note, created_by, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING version",
    )
    .bind(rules_json)
    .bind(note)
    .bind(created_by)
    .bind(at)
    .fetch_one(conn)
    .await
    .store()?;
    row.try_get::<i64, _>(0).store()
}

/// A claimed order: now the member's, with what it earned.
pub async fn claim_order(
    conn: &mut AnyConnection,
    order_id: &str,
    member_id: &str,
    points_earned: i64,
    rule_version: i64,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE orders SET member_id = $2, points_earned = $3, claimed_at = $4, rule_version = $5 \
         WHERE id = $1 AND member_id IS NULL",
    )
    .bind(order_id)
    .bind(member_id)
    .bind(points_earned)
    .bind(at)
    .bind(rule_version)
    .execute(conn)
    .await
    .store()?;
    Ok(())
}

/// A member's orders, newest first.
pub async fn orders_of_member(
    conn: &mut AnyConnection,
    member_id: &str,
    limit: i64,
) -> StoreResult<Vec<OrderRow>> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE member_id = $1 \
         ORDER BY occurred_at DESC, id DESC LIMIT $2"
    ))
    .bind(member_id)
    .bind(limit)
    .fetch_all(conn)
    .await
    .store()
}
