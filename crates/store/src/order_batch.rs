//! Order ingest for a whole group-commit batch with one statement per table.
//!
//! Each statement takes the batch as one JSON parameter and reads it as a
//! table (`json_each` on SQLite, `jsonb_to_recordset` on PostgreSQL), so a
//! batch of 64 orders costs about ten round trips instead of ten per order,
//! and binding stays cheap (sqlx's SQLite binding cost grows with the square
//! of a statement's parameter count). What the rows say is decided by the
//! caller; this module only moves them.

use crate::error::{SqlxResultExt, StoreResult};
use crate::ledger::MemberLedger;
use crate::StoreError;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// The batch parameter `$<param>` as a table `<alias>` with these
/// columns: a derived table on SQLite (`->>` gives SQL values of the JSON's
/// types), a typed record set on PostgreSQL. Statements name the columns as
/// `<alias>.<column>` and read the same on both backends.
pub(crate) fn batch_table(
    conn: &AnyConnection,
    param: usize,
    alias: &str,
    columns: &[(&str, &str)],
) -> String {
    if is_postgres(conn) {
        let typed = columns
            .iter()
            .map(|(name, ty)| format!("{name} {ty}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("jsonb_to_recordset(CAST(${param} AS jsonb)) AS {alias}({typed})")
    } else {
        let picked = columns
            .iter()
            .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("(SELECT {picked} FROM json_each(${param})) AS {alias}")
    }
}

pub(crate) fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

pub(crate) fn to_json<T: Serialize>(rows: &[T]) -> StoreResult<String> {
    serde_json::to_string(rows)
        .map_err(|e| StoreError::Corrupt(format!("a batch does not serialise: {e}")))
}

#[derive(Serialize)]
struct MemberId<'a> {
    id: &'a str,
}

/// The ledger state of these members, taking their row locks (PostgreSQL:
/// in id order, the order transfers lock in, so a batch cannot deadlock with
/// one; SQLite: the `UPDATE` takes the database's write lock at once).
pub async fn lock_members(
    conn: &mut AnyConnection,
    member_ids: &[&str],
    now: i64,
) -> StoreResult<Vec<MemberLedger>> {
    let rows: Vec<MemberId> = member_ids.iter().map(|id| MemberId { id }).collect();
    let table = batch_table(conn, 1, "j", &[("id", "TEXT")]);
    let sql = if is_postgres(conn) {
        format!(
            "SELECT {cols} FROM members WHERE id = ANY(ARRAY(SELECT j.id FROM {table})) \
             ORDER BY id FOR UPDATE",
            cols = crate::ledger::LEDGER_COLUMNS
        )
    } else {
        format!(
            "UPDATE members SET updated_at = $2 WHERE id IN (SELECT j.id FROM {table}) RETURNING {cols}",
            cols = crate::ledger::LEDGER_COLUMNS
        )
    };
    let query = sqlx::query_as::<_, MemberLedger>(&sql).bind(to_json(&rows)?);
    let query = if is_postgres(conn) {
        query
    } else {
        query.bind(now)
    };
    query.fetch_all(conn).await.store()
}

/// What the batch needs to know about one of its orders from what is stored.
#[derive(Serialize)]
pub struct LookBack<'a> {
    pub store_code: &'a str,
    pub pos_order_id: &'a str,
    /// `None` for an order without a member (its sums are 0).
    pub member_id: Option<&'a str>,
    /// Qualifying spend of the member's orders with `spend_from < occurred_at <= spend_to`.
    pub spend_from: i64,
    pub spend_to: i64,
    /// Points earned on the member's orders with `day_from <= occurred_at < day_to`.
    pub day_from: i64,
    pub day_to: i64,
}

/// The answer for one [`LookBack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// `(store_code, pos_order_id)` is already stored.
    pub stored: bool,
    pub spend: i64,
    pub points: i64,
}

/// One round trip for the whole batch. Each question is a scalar subquery,
/// run per batch row as an index lookup whatever the planner's statistics
/// say (a join could turn into a scan of every order).
pub async fn look_back(conn: &mut AnyConnection, asks: &[LookBack<'_>]) -> StoreResult<Vec<Seen>> {
    #[derive(Serialize)]
    struct Numbered<'a> {
        k: usize,
        #[serde(flatten)]
        ask: &'a LookBack<'a>,
    }
    let rows: Vec<Numbered> = asks
        .iter()
        .enumerate()
        .map(|(k, ask)| Numbered { k, ask })
        .collect();
    let table = batch_table(
        conn,
        1,
        "j",
        &[
            ("k", "BIGINT"),
            ("store_code", "TEXT"),
            ("pos_order_id", "TEXT"),
            ("member_id", "TEXT"),
            ("spend_from", "BIGINT"),
            ("spend_to", "BIGINT"),
            ("day_from", "BIGINT"),
            ("day_to", "BIGINT"),
        ],
    );
    let found = sqlx::query(&format!(
        "SELECT CAST(j.k AS BIGINT), \
         CAST(COALESCE((SELECT 1 FROM orders o WHERE o.store_code = j.store_code \
           AND o.pos_order_id = j.pos_order_id), 0) AS BIGINT), \
         (SELECT CAST(COALESCE(SUM(o.qualifying_fen), 0) AS BIGINT) FROM orders o \
          WHERE o.member_id = j.member_id AND o.occurred_at > j.spend_from AND o.occurred_at <= j.spend_to), \
         (SELECT CAST(COALESCE(SUM(o.points_earned), 0) AS BIGINT) FROM orders o \
          WHERE o.member_id = j.member_id AND o.occurred_at >= j.day_from AND o.occurred_at < j.day_to) \
         FROM {table}"
    ))
    .bind(to_json(&rows)?)
    .fetch_all(conn)
    .await
    .store()?;
    let mut seen = vec![
        Seen {
            stored: false,
            spend: 0,
            points: 0
        };
        asks.len()
    ];
    for row in found {
        let k: i64 = row.try_get(0).store()?;
        let slot = seen
            .get_mut(k as usize)
            .ok_or_else(|| StoreError::Corrupt(format!("look_back answered for row {k}")))?;
        *slot = Seen {
            stored: row.try_get::<i64, _>(1).store()? == 1,
            spend: row.try_get(2).store()?,
            points: row.try_get(3).store()?,
        };
    }
    Ok(seen)
}

/// An order row as it is finally stored (member, points and answer known).
#[derive(Serialize)]
pub struct BatchOrder<'a> {
    #[serde(flatten)]
    pub row: crate::orders::NewOrderRow<'a>,
    pub points_earned: i64,
    pub rule_version: i64,
    pub response_json: String,
}

/// An order line with its order and line number.
#[derive(Serialize)]
pub struct BatchItem<'a> {
    pub order_id: &'a str,
    pub line: i64,
    #[serde(flatten)]
    pub item: crate::orders::ItemRow<'a>,
}

/// The earn entry of an order and the lot it opens.
#[derive(Serialize)]
pub struct BatchEarn<'a> {
    pub member_id: &'a str,
    pub points: i64,
    pub reason: String,
    pub order_id: &'a str,
    pub actor: &'a str,
    pub at: i64,
    pub expires_at: i64,
}

/// A tier change an order caused.
#[derive(Serialize)]
pub struct BatchTierChange<'a> {
    pub member_id: &'a str,
    pub from_tier: &'a str,
    pub to_tier: &'a str,
    pub reason: String,
    pub qualifying_spend_fen: i64,
    pub actor: &'a str,
    pub at: i64,
}

/// A member's balance cache and tier after the batch.
#[derive(Serialize)]
pub struct BatchMember<'a> {
    pub id: &'a str,
    pub points_balance: i64,
    pub points_debt: i64,
    pub tier: &'a str,
    pub updated_at: i64,
}

/// An outbox event (same once-per-kind-and-subject rule as `ledger::emit`).
#[derive(Serialize)]
pub struct BatchEvent<'a> {
    pub kind: &'a str,
    pub member_id: Option<&'a str>,
    pub subject: String,
    pub payload: String,
    pub created_at: i64,
}

/// Everything a batch writes.
#[derive(Default)]
pub struct BatchRows<'a> {
    pub orders: Vec<BatchOrder<'a>>,
    pub items: Vec<BatchItem<'a>>,
    pub earns: Vec<BatchEarn<'a>>,
    pub tier_changes: Vec<BatchTierChange<'a>>,
    pub members: Vec<BatchMember<'a>>,
    pub events: Vec<BatchEvent<'a>>,
}

/// Write the batch in one round trip: one statement of data-modifying CTEs
/// on PostgreSQL, one multi-statement query on SQLite (six parameters, each
/// a table's rows as JSON). An order whose key another transaction stored
/// since [`look_back`] makes the whole write fail (its lines would
/// reference a missing order, or the key is taken), and the caller rolls back.
pub async fn write_rows(conn: &mut AnyConnection, rows: &BatchRows<'_>) -> StoreResult<()> {
    let orders = batch_table(
        conn,
        1,
        "o",
        &[
            ("id", "TEXT"),
            ("store_code", "TEXT"),
            ("pos_order_id", "TEXT"),
            ("member_id", "TEXT"),
            ("channel", "TEXT"),
            ("occurred_at", "BIGINT"),
            ("paid_fen", "BIGINT"),
            ("eligible_fen", "BIGINT"),
            ("party_size", "BIGINT"),
            ("receipt_code", "TEXT"),
            ("request_hash", "TEXT"),
            ("points_earned", "BIGINT"),
            ("rule_version", "BIGINT"),
            ("response_json", "TEXT"),
            ("created_at", "BIGINT"),
        ],
    );
    let items = batch_table(
        conn,
        2,
        "i",
        &[
            ("order_id", "TEXT"),
            ("line", "BIGINT"),
            ("sku", "TEXT"),
            ("name", "TEXT"),
            ("category", "TEXT"),
            ("quantity", "BIGINT"),
            ("unit_price_fen", "BIGINT"),
            ("discount_fen", "BIGINT"),
            ("voided", "BIGINT"),
            ("comped", "BIGINT"),
            ("staff_meal", "BIGINT"),
        ],
    );
    let earn_columns = [
        ("member_id", "TEXT"),
        ("points", "BIGINT"),
        ("reason", "TEXT"),
        ("order_id", "TEXT"),
        ("actor", "TEXT"),
        ("at", "BIGINT"),
        ("expires_at", "BIGINT"),
    ];
    let earns = batch_table(conn, 3, "e", &earn_columns);
    let lots = batch_table(conn, 3, "l", &earn_columns);
    let tiers = batch_table(
        conn,
        4,
        "t",
        &[
            ("member_id", "TEXT"),
            ("from_tier", "TEXT"),
            ("to_tier", "TEXT"),
            ("reason", "TEXT"),
            ("qualifying_spend_fen", "BIGINT"),
            ("actor", "TEXT"),
            ("at", "BIGINT"),
        ],
    );
    let members = batch_table(
        conn,
        5,
        "m",
        &[
            ("id", "TEXT"),
            ("points_balance", "BIGINT"),
            ("points_debt", "BIGINT"),
            ("tier", "TEXT"),
            ("updated_at", "BIGINT"),
        ],
    );
    let events = batch_table(
        conn,
        6,
        "v",
        &[
            ("kind", "TEXT"),
            ("member_id", "TEXT"),
            ("subject", "TEXT"),
            ("payload", "TEXT"),
            ("created_at", "BIGINT"),
        ],
    );
    let insert_orders = format!(
        "INSERT INTO orders (id, store_code, pos_order_id, member_id, channel, occurred_at, paid_fen, \
         eligible_fen, qualifying_fen, party_size, receipt_code, request_hash, points_earned, rule_version, \
         response_json, created_at) \
         SELECT o.id, o.store_code, o.pos_order_id, o.member_id, o.channel, o.occurred_at, o.paid_fen, \
         o.eligible_fen, o.eligible_fen, o.party_size, o.receipt_code, o.request_hash, o.points_earned, \
         o.rule_version, o.response_json, o.created_at FROM {orders}"
    );
    let insert_items = format!(
        "INSERT INTO order_items (order_id, line, sku, name, category, quantity, unit_price_fen, \
         discount_fen, voided, comped, staff_meal) \
         SELECT i.order_id, i.line, i.sku, i.name, i.category, i.quantity, i.unit_price_fen, \
         i.discount_fen, i.voided, i.comped, i.staff_meal FROM {items}"
    );
    let insert_entries = format!(
        "INSERT INTO ledger_entries (member_id, kind, points, reason, order_id, actor, at) \
         SELECT e.member_id, 'earn', e.points, e.reason, e.order_id, e.actor, e.at FROM {earns}"
    );
    let insert_tiers = format!(
        "INSERT INTO tier_history (member_id, from_tier, to_tier, reason, qualifying_spend_fen, actor, at) \
         SELECT t.member_id, t.from_tier, t.to_tier, t.reason, t.qualifying_spend_fen, t.actor, t.at FROM {tiers}"
    );
    let insert_events = format!(
        "INSERT INTO outbox_events (kind, member_id, subject, payload, created_at) \
         SELECT v.kind, v.member_id, v.subject, v.payload, v.created_at FROM {events} WHERE true \
         ON CONFLICT (kind, subject) DO NOTHING"
    );
    let sql = if is_postgres(conn) {
        // The lots take their entry ids from the entries' RETURNING; members
        // are found by their key (`= ANY`), never by scanning the table.
        format!(
            "WITH o AS ({insert_orders}), i AS ({insert_items}), \
             e AS ({insert_entries} RETURNING id, order_id, member_id, points), \
             l AS (INSERT INTO lots (entry_id, member_id, points, remaining, earned_at, expires_at) \
                   SELECT e.id, e.member_id, e.points, e.points, l.at, l.expires_at \
                   FROM e JOIN {lots} ON l.order_id = e.order_id), \
             t AS ({insert_tiers}), \
             m AS (UPDATE members SET points_balance = m.points_balance, points_debt = m.points_debt, \
                   tier = m.tier, updated_at = m.updated_at FROM {members} \
                   WHERE members.id = m.id AND members.id = ANY(ARRAY( \
                     SELECT x ->> 'id' FROM jsonb_array_elements(CAST($5 AS jsonb)) AS x))), \
             v AS ({insert_events}) \
             SELECT 1"
        )
    } else {
        // One writer: nothing can store a key between `look_back` and
        // here, and a plain INSERT fails loudly if it somehow did. Each lot
        // finds its entry by the partial unique index on earn entries.
        format!(
            "{insert_orders}; {insert_items}; {insert_entries}; \
             INSERT INTO lots (entry_id, member_id, points, remaining, earned_at, expires_at) \
             SELECT (SELECT x.id FROM ledger_entries x WHERE x.order_id = l.order_id AND x.kind = 'earn'), \
             l.member_id, l.points, l.points, l.at, l.expires_at FROM {lots}; \
             {insert_tiers}; \
             UPDATE members SET points_balance = m.points_balance, points_debt = m.points_debt, \
             tier = m.tier, updated_at = m.updated_at FROM {members} WHERE members.id = m.id; \
             {insert_events}"
        )
    };
    sqlx::query(&sql)
        .bind(to_json(&rows.orders)?)
        .bind(to_json(&rows.items)?)
        .bind(to_json(&rows.earns)?)
        .bind(to_json(&rows.tier_changes)?)
        .bind(to_json(&rows.members)?)
        .bind(to_json(&rows.events)?)
        .execute(conn)
        .await
        .store()?;
    Ok(())
}
