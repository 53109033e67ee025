//! A group-commit batch of orders written with one statement per table.
//!
//! The batch is read first (members locked, which keys exist, the members'
//! past spend and points), then every order is decided in memory in batch
//! order with the same [`plan_accrual`] the one-by-one path uses, carrying
//! each member's balance and tier from one order to the next, and finally all
//! rows are written. The rows are the ones `write_order` would have written
//! for the same orders one after another.

use super::ledger::Recorded;
use super::orders::{
    items_of, local_day_bounds, plan_accrual, tier_window_start, unclaimed_receipt, Ingested,
    PastOrders, PreparedOrder,
};
use super::{AppError, AppResult, Regulars};
use regulars_store::ledger::MemberLedger;
use regulars_store::order_batch::{
    self as repo, BatchEarn, BatchEvent, BatchItem, BatchMember, BatchOrder, BatchRows,
    BatchTierChange, LookBack,
};
use regulars_store::{now_ms, Conn};
use std::collections::{HashMap, HashSet};

/// An order of this batch already decided, for the sums of later orders of
/// the same member.
struct Decided<'a> {
    member_id: &'a str,
    at: i64,
    eligible_fen: i64,
    points: i64,
}

/// Write `batch` in the caller's transaction. `Ok(None)`, having written
/// nothing, when an order needs what only the one-by-one path does: a member
/// that is not there (that order's error is its own) or a refund shortfall
/// to settle from the earnings. An error after writing means the caller
/// rolls back.
pub async fn write_batch(
    app: &Regulars,
    conn: &mut Conn,
    batch: &[&PreparedOrder],
) -> AppResult<Option<Vec<Ingested>>> {
    let config = app.loyalty.get(app).await?;
    let now = now_ms();

    let mut member_ids: Vec<&str> = batch
        .iter()
        .filter_map(|p| p.member_id.as_deref())
        .collect();
    member_ids.sort_unstable();
    member_ids.dedup();
    let mut members: HashMap<String, MemberLedger> = if member_ids.is_empty() {
        HashMap::new()
    } else {
        repo::lock_members(conn, &member_ids, now)
            .await?
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect()
    };
    let usable = |id: &str| {
        members
            .get(id)
            .is_some_and(|m| m.erased_at.is_none() && m.points_debt == 0)
    };
    if !member_ids.iter().all(|id| usable(id)) {
        return Ok(None);
    }

    // What is stored: each key, and the member's past orders in the order's
    // tier window and local day.
    let daily_cap = config.rules.has_daily_cap();
    let asks: Vec<LookBack> = batch
        .iter()
        .map(|p| {
            let at = p.order.occurred_at.timestamp_millis();
            let (day_from, day_to) = if daily_cap && p.member_id.is_some() {
                local_day_bounds(app, p.order.local_time)
            } else {
                (0, 0)
            };
            LookBack {
                store_code: &p.store_code,
                pos_order_id: &p.pos_order_id,
                member_id: p.member_id.as_deref(),
                spend_from: tier_window_start(at),
                spend_to: at,
                day_from,
                day_to,
            }
        })
        .collect();
    let seen = repo::look_back(conn, &asks).await?;
    // New: not stored, and the first of its key in this batch.
    let mut keys_here = HashSet::new();
    let fresh: Vec<bool> = batch
        .iter()
        .zip(&seen)
        .map(|(p, seen)| {
            !seen.stored && keys_here.insert((p.store_code.as_str(), p.pos_order_id.as_str()))
        })
        .collect();

    let mut results = Vec::with_capacity(batch.len());
    let mut decided: Vec<Decided> = Vec::new();
    let mut rows = BatchRows::default();
    for (i, p) in batch.iter().enumerate() {
        if !fresh[i] {
            results.push(Ingested::Exists);
            continue;
        }
        let at = p.order.occurred_at.timestamp_millis();
        let (receipt, member_id) = match p.member_id.as_deref() {
            Some(member_id) => {
                let (ask, past) = (&asks[i], seen[i]);
                let member = members
                    .get_mut(member_id)
                    .ok_or(AppError::NotFound { what: "member" })?;
                let earlier = decided.iter().filter(|d| d.member_id == member_id);
                let spend_before = past.spend
                    + earlier
                        .clone()
                        .filter(|d| d.at > ask.spend_from && d.at <= ask.spend_to)
                        .map(|d| d.eligible_fen)
                        .sum::<i64>();
                let points_earned_today = past.points
                    + earlier
                        .filter(|d| d.at >= ask.day_from && d.at < ask.day_to)
                        .map(|d| d.points)
                        .sum::<i64>();
                let plan = plan_accrual(
                    &config,
                    member,
                    &p.order,
                    &p.store_code,
                    &p.brand_code,
                    PastOrders {
                        spend_before,
                        points_earned_today,
                    },
                );
                decided.push(Decided {
                    member_id,
                    at,
                    eligible_fen: p.order.eligible_fen(),
                    points: plan.earning.points,
                });
                member.points_balance = plan.balance;
                member.points_debt = plan.debt;
                member.tier = plan.tier_after.as_str().to_string();
                if plan.earning.points > 0 {
                    rows.earns.push(BatchEarn {
                        member_id,
                        points: plan.earning.points,
                        reason: plan.reason.clone(),
                        order_id: &p.order_id,
                        actor: &p.actor,
                        at,
                        expires_at: plan.expires_at,
                    });
                }
                if plan.tier_after != plan.tier_before {
                    rows.events.push(BatchEvent {
                        kind: "tier.changed",
                        member_id: Some(member_id),
                        subject: format!("order:{}", p.order_id),
                        payload: plan.tier_changed_event(member_id, &p.order_id),
                        created_at: now,
                    });
                    rows.tier_changes.push(BatchTierChange {
                        member_id,
                        from_tier: plan.tier_before.as_str(),
                        to_tier: plan.tier_after.as_str(),
                        reason: plan.tier_change_reason(&p.order_id),
                        qualifying_spend_fen: plan.spend_after,
                        actor: &p.actor,
                        at,
                    });
                }
                rows.events.push(BatchEvent {
                    kind: "order.accrued",
                    member_id: Some(member_id),
                    subject: p.order_id.clone(),
                    payload: plan.accrued_event(
                        member_id,
                        &p.order_id,
                        &p.store_code,
                        p.order.paid_fen,
                    ),
                    created_at: now,
                });
                (plan.receipt(p, member_id), Some(member_id))
            }
            None => (unclaimed_receipt(p), None),
        };
        let recorded = Recorded::first(&receipt)?;
        rows.orders.push(BatchOrder {
            row: p.row(member_id, now),
            points_earned: receipt.points_earned,
            rule_version: config.rules.version,
            response_json: recorded.json.clone(),
        });
        rows.items.extend(
            items_of(&p.order)
                .into_iter()
                .enumerate()
                .map(|(n, item)| BatchItem {
                    order_id: &p.order_id,
                    line: n as i64 + 1,
                    item,
                }),
        );
        results.push(Ingested::Done(recorded));
    }

    rows.members = members
        .values()
        .map(|m| BatchMember {
            id: &m.id,
            points_balance: m.points_balance,
            points_debt: m.points_debt,
            tier: &m.tier,
            updated_at: now,
        })
        .collect();
    repo::write_rows(conn, &rows).await?;
    Ok(Some(results))
}
