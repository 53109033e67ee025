//! The ledger invariants of DESIGN.md §2 as SQL that lists violations:
//! checked against the rows, not through the code that wrote them.

use crate::error::{SqlxResultExt, StoreResult};
use sqlx::{AnyConnection, Row};

/// One invariant and the SQL that finds its violations (first column: what,
/// second: detail). Same text on both backends.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "balance cache equals the sum of the member's entries",
        "SELECT m.id, CAST(m.points_balance AS TEXT) || ' cached vs ' || CAST(COALESCE(e.s, 0) AS TEXT) || ' in entries' \
         FROM members m LEFT JOIN (SELECT member_id, CAST(SUM(points) AS BIGINT) AS s FROM ledger_entries GROUP BY member_id) e \
         ON e.member_id = m.id WHERE m.points_balance <> COALESCE(e.s, 0)",
    ),
    (
        "no balance below zero",
        "SELECT id, CAST(points_balance AS TEXT) FROM members WHERE points_balance < 0",
    ),
    (
        "balance equals the points left in the member's lots",
        "SELECT m.id, CAST(m.points_balance AS TEXT) || ' vs ' || CAST(COALESCE(l.s, 0) AS TEXT) || ' in lots' \
         FROM members m LEFT JOIN (SELECT member_id, CAST(SUM(remaining) AS BIGINT) AS s FROM lots GROUP BY member_id) l \
         ON l.member_id = m.id WHERE m.points_balance <> COALESCE(l.s, 0)",
    ),
    (
        "every lot's remaining = earned − consumed, between 0 and earned",
        "SELECT CAST(l.entry_id AS TEXT), 'earned ' || CAST(l.points AS TEXT) || ', consumed ' || CAST(COALESCE(a.s, 0) AS TEXT) \
         || ', remaining ' || CAST(l.remaining AS TEXT) \
         FROM lots l LEFT JOIN (SELECT lot_id, CAST(SUM(points) AS BIGINT) AS s FROM lot_allocations GROUP BY lot_id) a \
         ON a.lot_id = l.entry_id \
         WHERE l.remaining <> l.points - COALESCE(a.s, 0) OR l.remaining < 0 OR l.remaining > l.points",
    ),
    (
        "every lot holds exactly its positive entry's points",
        "SELECT CAST(l.entry_id AS TEXT), CAST(l.points AS TEXT) || ' vs entry ' || CAST(e.points AS TEXT) \
         FROM lots l JOIN ledger_entries e ON e.id = l.entry_id \
         WHERE e.points <> l.points OR e.member_id <> l.member_id",
    ),
    (
        "every positive entry opened a lot",
        "SELECT CAST(e.id AS TEXT), e.kind FROM ledger_entries e LEFT JOIN lots l ON l.entry_id = e.id \
         WHERE e.points > 0 AND l.entry_id IS NULL",
    ),
    (
        "every negative entry took exactly its points from lots of its member",
        "SELECT CAST(e.id AS TEXT), e.kind || ' ' || CAST(e.points AS TEXT) || ' vs allocated ' || CAST(COALESCE(a.s, 0) AS TEXT) \
         FROM ledger_entries e LEFT JOIN (SELECT al.entry_id, CAST(SUM(al.points) AS BIGINT) AS s, \
           MIN(CASE WHEN lo.member_id = al.member_id THEN 1 ELSE 0 END) AS same \
           FROM lot_allocations al JOIN lots lo ON lo.entry_id = al.lot_id GROUP BY al.entry_id) a \
         ON a.entry_id = e.id \
         WHERE e.points < 0 AND (COALESCE(a.s, 0) <> -e.points OR a.same = 0)",
    ),
    (
        "no allocation belongs to a positive entry or is not positive",
        "SELECT CAST(al.entry_id AS TEXT), CAST(al.points AS TEXT) FROM lot_allocations al \
         JOIN ledger_entries e ON e.id = al.entry_id WHERE e.points >= 0 OR al.points <= 0",
    ),
    (
        "transfers sum to zero",
        "SELECT ref, CAST(CAST(SUM(points) AS BIGINT) AS TEXT) FROM ledger_entries \
         WHERE kind IN ('transfer_in', 'transfer_out') GROUP BY ref HAVING SUM(points) <> 0",
    ),
    (
        "every order earns at most once, and its row says what it earned",
        "SELECT o.id, CAST(o.points_earned AS TEXT) || ' on order vs ' || CAST(COALESCE(e.s, 0) AS TEXT) || ' in ' || CAST(COALESCE(e.n, 0) AS TEXT) || ' earn entries' \
         FROM orders o LEFT JOIN (SELECT order_id, CAST(SUM(points) AS BIGINT) AS s, COUNT(*) AS n FROM ledger_entries \
           WHERE kind = 'earn' GROUP BY order_id) e ON e.order_id = o.id \
         WHERE COALESCE(e.n, 0) > 1 OR o.points_earned <> COALESCE(e.s, 0)",
    ),
    (
        "every refund reverses at most what its order earned",
        "SELECT o.id, 'earned ' || CAST(o.points_earned AS TEXT) || ', reversed ' || CAST(o.points_reversed AS TEXT) \
         || ', refunds say ' || CAST(COALESCE(r.s, 0) AS TEXT) \
         FROM orders o LEFT JOIN (SELECT order_id, CAST(SUM(points_reversed) AS BIGINT) AS s, \
           CAST(SUM(amount_fen) AS BIGINT) AS f FROM refunds GROUP BY order_id) r ON r.order_id = o.id \
         WHERE o.points_reversed > o.points_earned OR o.points_reversed <> COALESCE(r.s, 0) \
           OR o.refunded_fen <> COALESCE(r.f, 0) OR o.refunded_fen > o.paid_fen",
    ),
    (
        "refund reversals and shortfalls in the ledger match the refunds",
        "SELECT r.store_code || '/' || r.refund_id, 'reversed ' || CAST(r.points_reversed AS TEXT) || ' = taken ' \
         || CAST(COALESCE(-e.s, 0) AS TEXT) || ' + short ' || CAST(r.shortfall AS TEXT) \
         FROM refunds r LEFT JOIN (SELECT ref, CAST(SUM(points) AS BIGINT) AS s FROM ledger_entries \
           WHERE kind = 'reverse' AND ref IS NOT NULL GROUP BY ref) e ON e.ref = 'refund:' || r.store_code || ':' || r.refund_id \
         WHERE r.points_reversed <> COALESCE(-e.s, 0) + r.shortfall",
    ),
    (
        "shortfall cache equals the recorded shortfalls, never below zero",
        "SELECT m.id, CAST(m.points_debt AS TEXT) || ' cached vs ' || CAST(COALESCE(d.s, 0) AS TEXT) \
         FROM members m LEFT JOIN (SELECT member_id, CAST(SUM(points) AS BIGINT) AS s FROM point_debts GROUP BY member_id) d \
         ON d.member_id = m.id WHERE m.points_debt <> COALESCE(d.s, 0) OR m.points_debt < 0",
    ),
    (
        "every earned order has its event in the outbox",
        "SELECT o.id, 'no order.accrued event' FROM orders o LEFT JOIN outbox_events v \
         ON v.kind = 'order.accrued' AND v.subject = o.id WHERE o.member_id IS NOT NULL AND o.imported = 0 AND v.id IS NULL",
    ),
    (
        "a reward's units handed out equal its redemptions, and stock never below zero",
        "SELECT r.id, 'total ' || CAST(r.stock_total AS TEXT) || ' − left ' || CAST(r.stock_left AS TEXT) \
         || ' vs ' || CAST(COALESCE(x.n, 0) AS TEXT) || ' redemptions' \
         FROM rewards r LEFT JOIN (SELECT reward_id, CAST(COUNT(*) AS BIGINT) AS n FROM redemptions \
           WHERE reward_id IS NOT NULL GROUP BY reward_id) x ON x.reward_id = r.id \
         WHERE r.kind <> 'cash_offset' AND r.stock_total IS NOT NULL \
           AND (r.stock_left < 0 OR r.stock_total - r.stock_left <> COALESCE(x.n, 0))",
    ),
    (
        "a redeemed coupon says when, where and how much; no other coupon does",
        "SELECT id, status FROM coupons WHERE (status = 'redeemed' AND (redeemed_at IS NULL \
         OR redeemed_order IS NULL OR discount_fen IS NULL OR discount_fen < 0)) \
         OR (status <> 'redeemed' AND redeemed_at IS NOT NULL)",
    ),
    (
        "every redemption of a coupon reward issued exactly one coupon to its member",
        "SELECT d.id, CAST(COUNT(c.id) AS TEXT) || ' coupons' FROM redemptions d \
         JOIN rewards r ON r.id = d.reward_id \
         LEFT JOIN coupons c ON c.source = 'redemption' AND c.source_ref = d.id AND c.member_id = d.member_id \
         WHERE r.coupon_template_id IS NOT NULL GROUP BY d.id HAVING COUNT(c.id) <> 1",
    ),
    (
        "every redemption coupon comes from a redemption",
        "SELECT c.id, c.source_ref FROM coupons c LEFT JOIN redemptions d ON d.id = c.source_ref \
         WHERE c.source = 'redemption' AND d.id IS NULL",
    ),
];

/// Run one check: `what: detail` of each violating row.
pub async fn violations(conn: &mut AnyConnection, sql: &str) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(sql).fetch_all(conn).await.store()?;
    Ok(rows
        .iter()
        .map(|r| {
            let what: String = r.try_get(0).unwrap_or_default();
            let detail: String = r.try_get(1).unwrap_or_default();
            format!("{what}: {detail}")
        })
        .collect())
}

/// Rows in a table (for the report's totals).
pub async fn count(conn: &mut AnyConnection, table: &'static str) -> StoreResult<i64> {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .store()
}
