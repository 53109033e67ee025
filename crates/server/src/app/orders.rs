//! Orders: ingest from every channel (exactly once per `(store_code,
//! pos_order_id)`), earning with explanations, refunds with clawback, claims
//! of orders placed before the guest was a member, and the earning preview.

use super::ledger::{self, Loaded, Posting, Recorded};
use super::{AppError, AppResult, Regulars};
use chrono::{DateTime, Duration, NaiveTime, TimeZone};
use rand::Rng;
use regulars_core::access::{Action, Principal};
use regulars_core::earning::{earn, EarnContext, Earning, ExplanationLine};
use regulars_core::ledger::{clawback, refund_reversal, settle_debt, EntryKind};
use regulars_core::order::{Channel, Order, OrderLine};
use regulars_core::phone::Phone;
use regulars_core::tier::{after_order, Tier};
use regulars_core::DomainError;
use regulars_store::ledger::{self as ledger_repo, MemberLedger};
use regulars_store::orders::{self as repo, ItemRow, NewOrderRow, NewRefundRow, OrderRow};
use regulars_store::{chain, commit, members, now_ms, Conn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/orders`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestOrder {
    pub store_code: String,
    pub pos_order_id: String,
    pub member_id: Option<String>,
    /// Any common writing of the member's phone; an unknown phone stores the
    /// order unclaimed.
    pub member_phone: Option<String>,
    /// RFC 3339 with offset.
    pub occurred_at: String,
    pub channel: Channel,
    pub items: Vec<OrderLine>,
    pub paid_fen: i64,
    pub party_size: Option<i64>,
}

/// The answer to an order (and, unchanged, to its replays).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderReceipt {
    pub order_id: String,
    pub member_id: Option<String>,
    pub points_earned: i64,
    pub explanation: Vec<ExplanationLine>,
    /// The member's balance after this order (absent without a member).
    pub balance: Option<i64>,
    pub tier: Option<Tier>,
    /// Printed on the receipt: a guest who joins within the claim window
    /// enters it to earn for this order.
    pub receipt_code: String,
}

/// `POST /api/v1/orders/{store_code}/{pos_order_id}/refunds`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    pub refund_id: String,
    pub amount_fen: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundReceipt {
    pub points_reversed: i64,
    /// Of the reversed points, how many the balance could not give; they are
    /// taken from the member's next earnings.
    pub shortfall: i64,
    pub balance: Option<i64>,
}

/// `POST /api/v1/members/{id}/claims`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimOrder {
    pub receipt_code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimReceipt {
    pub order_id: String,
    pub points_earned: i64,
    pub explanation: Vec<ExplanationLine>,
    pub balance: i64,
    pub tier: Tier,
}

/// `POST /api/v1/orders/preview`: the order as it would be sent, for a member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewOrder {
    pub store_code: String,
    pub member_id: Option<String>,
    /// Preview as if the member were at this tier (default: their tier, or regular).
    pub tier: Option<Tier>,
    pub occurred_at: Option<String>,
    pub channel: Channel,
    pub items: Vec<OrderLine>,
    pub paid_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewAnswer {
    pub points: i64,
    pub eligible_fen: i64,
    pub explanation: Vec<ExplanationLine>,
    pub tier: Tier,
    pub rule_version: i64,
}

fn parse_key(field: &'static str, value: &str) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "must be 1–64 printable characters").into());
    }
    Ok(v.to_string())
}

pub(crate) fn parse_time(
    app: &Regulars,
    field: &'static str,
    value: &str,
) -> AppResult<(DateTime<chrono::FixedOffset>, chrono::NaiveDateTime)> {
    let at = DateTime::parse_from_rfc3339(value).map_err(|_| DomainError::InvalidDate {
        field,
        reason: "expected RFC 3339 with offset, e.g. 2026-03-04T12:30:00+08:00".into(),
    })?;
    let local = at.with_timezone(&app.timezone).naive_local();
    Ok((at, local))
}

fn receipt_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Unix ms of local midnight starting the day of `local`, and of the next.
pub(crate) fn local_day_bounds(app: &Regulars, local: chrono::NaiveDateTime) -> (i64, i64) {
    let start = local.date().and_time(NaiveTime::MIN);
    let ms = |t: chrono::NaiveDateTime| {
        app.timezone
            .from_local_datetime(&t)
            .earliest()
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    };
    (ms(start), ms(start + Duration::days(1)))
}

/// The rolling window tiers count spend over: the 12 months up to `at_ms`.
pub fn tier_window_start(at_ms: i64) -> i64 {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms)
        .and_then(|t| t.checked_sub_months(chrono::Months::new(12)))
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MIN)
}

/// What accrual did, for the receipt.
struct Accrued {
    plan: AccrualPlan,
    /// The version the points were worked out with (the cache may have
    /// moved on since).
    rule_version: i64,
}

/// What an order does to its member's ledger, decided from what was read
/// before anything is written. Order ingest one by one and in batches (see
/// `order_batch`) both write exactly this.
pub(crate) struct AccrualPlan {
    pub earning: Earning,
    /// The explanation as one line, for the ledger entry's `reason`.
    pub reason: String,
    /// When the earned lot expires (the tier's expiry months).
    pub expires_at: i64,
    /// Refund shortfall paid back from these earnings.
    pub settle: i64,
    pub balance: i64,
    pub debt: i64,
    pub tier_before: Tier,
    pub tier_after: Tier,
    pub spend_after: i64,
}

/// The sums an accrual needs from the member's past orders.
pub(crate) struct PastOrders {
    /// Qualifying spend in the tier window before this order.
    pub spend_before: i64,
    /// Points already earned on the order's local day (only read when a rule
    /// caps points per day).
    pub points_earned_today: i64,
}

/// The order earns at the member's tier *before* it (an order that crosses a
/// threshold upgrades the member at once, and earns at the old multiplier).
pub(crate) fn plan_accrual(
    config: &Loaded,
    member: &MemberLedger,
    order: &Order,
    store_code: &str,
    brand_code: &str,
    past: PastOrders,
) -> AccrualPlan {
    let at = order.occurred_at.timestamp_millis();
    let tier_before = Tier::parse(&member.tier).unwrap_or(Tier::Regular);
    let benefits = config.tiers.benefits(tier_before);
    let earning = earn(
        &EarnContext {
            order,
            store_code,
            brand_code,
            tier: tier_before,
            tier_multiplier_permille: benefits.multiplier_permille,
            birthday_month: member.birth_month.map(|m| m as u32),
            points_earned_today: past.points_earned_today,
            new_skus: &config.new_skus,
        },
        &config.rules,
    );
    let settle = settle_debt(member.points_debt, earning.points);
    let spend_after = past.spend_before + order.eligible_fen();
    let floor = ledger::active_floor(member, at);
    let tier_after = after_order(&config.tiers, tier_before, spend_after, floor);
    AccrualPlan {
        reason: explain(&earning.lines),
        expires_at: regulars_core::ledger::add_months_ms(at, benefits.expiry_months),
        settle,
        balance: member.points_balance + earning.points - settle,
        debt: member.points_debt - settle,
        tier_before,
        tier_after,
        spend_after,
        earning,
    }
}

impl AccrualPlan {
    /// The answer to the order `p` of `member_id`.
    pub fn receipt(self, p: &PreparedOrder, member_id: &str) -> OrderReceipt {
        OrderReceipt {
            order_id: p.order_id.clone(),
            member_id: Some(member_id.to_string()),
            points_earned: self.earning.points,
            explanation: self.earning.lines,
            balance: Some(self.balance),
            tier: Some(self.tier_after),
            receipt_code: p.receipt_code.clone(),
        }
    }

    pub fn tier_change_reason(&self, order_id: &str) -> String {
        format!(
            "order {order_id}: 12-month spend ¥{}",
            self.spend_after / 100
        )
    }

    pub fn tier_changed_event(&self, member_id: &str, order_id: &str) -> String {
        serde_json::json!({"member_id": member_id, "from": self.tier_before, "to": self.tier_after,
            "qualifying_spend_fen": self.spend_after, "order_id": order_id})
        .to_string()
    }

    pub fn accrued_event(
        &self,
        member_id: &str,
        order_id: &str,
        store_code: &str,
        paid_fen: i64,
    ) -> String {
        serde_json::json!({"member_id": member_id, "order_id": order_id, "store_code": store_code,
            "points": self.earning.points, "balance": self.balance, "paid_fen": paid_fen})
        .to_string()
    }
}

/// Earn for `order` (already stored as `order_id`) on the locked member:
/// entry and lot, shortfall settlement, balance, upgrade, events.
#[allow(clippy::too_many_arguments)]
async fn accrue(
    app: &Regulars,
    conn: &mut Conn,
    member: &MemberLedger,
    order_id: &str,
    order: &Order,
    store_code: &str,
    brand_code: &str,
    actor: &str,
) -> AppResult<Accrued> {
    let config = app.loyalty.get(app).await?;
    let at = order.occurred_at.timestamp_millis();
    let points_earned_today = if config.rules.has_daily_cap() {
        let (from, to) = local_day_bounds(app, order.local_time);
        repo::points_earned_between(conn, &member.id, from, to).await?
    } else {
        0
    };
    let spend_before =
        repo::qualifying_spend(conn, &member.id, tier_window_start(at), at, Some(order_id)).await?;
    let plan = plan_accrual(
        &config,
        member,
        order,
        store_code,
        brand_code,
        PastOrders {
            spend_before,
            points_earned_today,
        },
    );
    if plan.earning.points > 0 {
        let posting = Posting {
            member_id: &member.id,
            kind: EntryKind::Earn,
            reason: &plan.reason,
            order_id: Some(order_id),
            reference: None,
            actor,
            approver: None,
            at,
        };
        let lot = ledger::credit(conn, &posting, plan.earning.points, at, plan.expires_at).await?;
        if plan.settle > 0 {
            let reason = format!("抵扣退款欠分 {} 分", plan.settle);
            let posting = Posting {
                kind: EntryKind::Reverse,
                reason: &reason,
                ..posting
            };
            let entry = ledger::debit(
                conn,
                &posting,
                &[regulars_core::ledger::Allocation {
                    lot_id: lot,
                    points: plan.settle,
                }],
            )
            .await?;
            ledger_repo::insert_debt(
                conn,
                &member.id,
                -plan.settle,
                Some(order_id),
                Some(entry),
                "settled from earnings",
                at,
            )
            .await?;
        }
    }
    if plan.tier_after != plan.tier_before {
        ledger_repo::insert_tier_change(
            conn,
            &member.id,
            plan.tier_before.as_str(),
            plan.tier_after.as_str(),
            &plan.tier_change_reason(order_id),
            plan.spend_after,
            actor,
            at,
        )
        .await?;
        ledger_repo::emit(
            conn,
            "tier.changed",
            Some(&member.id),
            &format!("order:{order_id}"),
            &plan.tier_changed_event(&member.id, order_id),
            now_ms(),
        )
        .await?;
    }
    ledger_repo::save_member(
        conn,
        &member.id,
        plan.balance,
        plan.debt,
        plan.tier_after.as_str(),
    )
    .await?;
    ledger_repo::emit(
        conn,
        "order.accrued",
        Some(&member.id),
        order_id,
        &plan.accrued_event(&member.id, order_id, store_code, order.paid_fen),
        now_ms(),
    )
    .await?;
    Ok(Accrued {
        plan,
        rule_version: config.rules.version,
    })
}

/// The explanation as one line for the ledger entry's `reason`.
fn explain(lines: &[ExplanationLine]) -> String {
    lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("；")
}

/// Which member an order names, if any. An unknown phone is not an error:
/// the order is stored unclaimed. An unknown id is (the POS sent a wrong one).
async fn resolve_member(
    app: &Regulars,
    conn: &mut Conn,
    member_id: Option<&str>,
    member_phone: Option<&str>,
) -> AppResult<Option<String>> {
    match (member_id, member_phone) {
        (Some(_), Some(_)) => Err(DomainError::invalid(
            "member_id",
            "send member_id or member_phone, not both",
        )
        .into()),
        (Some(id), None) => match members::get_member(conn, id).await? {
            Some(m) if m.erased_at.is_none() => Ok(Some(m.id)),
            _ => Err(AppError::unprocessable(
                "unknown_member",
                "no member has this member_id",
            )),
        },
        (None, Some(phone)) => {
            let phone = Phone::parse(phone)?;
            Ok(members::find_by_phone_index(conn, &app.phone_index(&phone))
                .await?
                .filter(|m| m.erased_at.is_none())
                .map(|m| m.id))
        }
        (None, None) => Ok(None),
    }
}

pub(crate) fn items_of(order: &Order) -> Vec<ItemRow<'_>> {
    order
        .lines
        .iter()
        .map(|l| ItemRow {
            sku: &l.sku,
            name: &l.name,
            category: &l.category,
            quantity: l.quantity,
            unit_price_fen: l.unit_price_fen,
            discount_fen: l.discount_fen,
            voided: l.voided,
            comped: l.comped,
            staff_meal: l.staff_meal,
        })
        .collect()
}

/// `POST /api/v1/orders`
pub async fn ingest_order(
    app: &Regulars,
    caller: &Principal,
    input: IngestOrder,
) -> AppResult<Recorded> {
    let store_code = parse_key("store_code", &input.store_code)?;
    caller.check(Action::OrderIngest, Some(&store_code))?;
    let pos_order_id = parse_key("pos_order_id", &input.pos_order_id)?;
    let hash = ledger::request_hash(&input);
    let (occurred_at, local) = parse_time(app, "occurred_at", &input.occurred_at)?;
    if let Some(p) = input.party_size {
        if !(1..=1000).contains(&p) {
            return Err(DomainError::invalid("party_size", "must be between 1 and 1000").into());
        }
    }
    let order = Order::new(
        input.channel,
        occurred_at,
        local,
        input.items.clone(),
        input.paid_fen,
    )?;

    let brand_code = app
        .loyalty
        .brand_of(app, &store_code)
        .await?
        .ok_or_else(|| {
            AppError::unprocessable("unknown_store", format!("no store {store_code}"))
        })?;
    // A named member is checked inside the transaction (its row lock is the
    // first thing accrual needs anyway); a phone is looked up here.
    let member_id = match (input.member_id.as_deref(), input.member_phone.as_deref()) {
        (Some(id), None) => Some(parse_key("member_id", id)?),
        (id, phone) => {
            let mut conn = app.db.reader().await?;
            resolve_member(app, &mut conn, id, phone).await?
        }
    };

    let prepared = PreparedOrder {
        order_id: uuid::Uuid::now_v7().to_string(),
        receipt_code: receipt_code(),
        store_code,
        pos_order_id,
        brand_code,
        member_id,
        hash,
        order,
        party_size: input.party_size,
        actor: caller.actor.clone(),
    };
    let (store_code, pos_order_id, hash) = (
        prepared.store_code.clone(),
        prepared.pos_order_id.clone(),
        prepared.hash.clone(),
    );
    match super::group_commit::submit(app, prepared).await? {
        Ingested::Done(recorded) => Ok(recorded),
        Ingested::Exists => {
            let mut conn = app.db.reader().await?;
            let existing = repo::order_by_pos_id(&mut conn, &store_code, &pos_order_id)
                .await?
                .ok_or(AppError::NotFound { what: "order" })?;
            replay_order(existing, &hash)
        }
    }
}

/// An order checked and resolved, ready to be written.
#[derive(Debug)]
pub struct PreparedOrder {
    pub order_id: String,
    pub receipt_code: String,
    pub store_code: String,
    pub pos_order_id: String,
    pub brand_code: String,
    pub member_id: Option<String>,
    pub hash: String,
    pub order: Order,
    pub party_size: Option<i64>,
    pub actor: String,
}

impl PreparedOrder {
    /// The order's row, naming `member_id` as its member.
    pub fn row<'a>(&'a self, member_id: Option<&'a str>, created_at: i64) -> NewOrderRow<'a> {
        NewOrderRow {
            id: &self.order_id,
            store_code: &self.store_code,
            pos_order_id: &self.pos_order_id,
            member_id,
            channel: self.order.channel.as_str(),
            occurred_at: self.order.occurred_at.timestamp_millis(),
            paid_fen: self.order.paid_fen,
            eligible_fen: self.order.eligible_fen(),
            party_size: self.party_size,
            receipt_code: &self.receipt_code,
            request_hash: &self.hash,
            created_at,
        }
    }

    /// Orders of one member always go to the same writer lane (see
    /// `group_commit`), so they never wait on each other's row locks.
    pub fn lane_key(&self) -> &str {
        self.member_id.as_deref().unwrap_or(&self.pos_order_id)
    }
}

/// What writing an order did.
#[derive(Debug)]
pub enum Ingested {
    Done(Recorded),
    /// `(store_code, pos_order_id)` was already there: answer with the stored result.
    Exists,
}

/// Write one order inside the caller's transaction: member row lock first
/// (so an unknown member is found before anything is written), then the
/// order row (its unique key is the idempotency check), lines, earning.
pub async fn write_order(
    app: &Regulars,
    conn: &mut Conn,
    p: &PreparedOrder,
) -> AppResult<Ingested> {
    let member = match &p.member_id {
        Some(id) => match ledger_repo::lock_member(conn, id, now_ms()).await? {
            Some(m) if m.erased_at.is_none() => Some(m),
            _ => {
                return Err(AppError::unprocessable(
                    "unknown_member",
                    "no member has this member_id",
                ))
            }
        },
        None => None,
    };
    // The member is set by `settle_order` with what the order earned.
    let inserted = repo::insert_order(conn, &p.row(None, now_ms())).await?;
    if !inserted {
        return Ok(Ingested::Exists);
    }
    repo::insert_items(conn, &p.order_id, &items_of(&p.order)).await?;
    let (receipt, rule_version) = match &member {
        Some(member) => {
            let accrued = accrue(
                app,
                conn,
                member,
                &p.order_id,
                &p.order,
                &p.store_code,
                &p.brand_code,
                &p.actor,
            )
            .await?;
            (accrued.plan.receipt(p, &member.id), accrued.rule_version)
        }
        None => (
            unclaimed_receipt(p),
            app.loyalty.get(app).await?.rules.version,
        ),
    };
    let recorded = Recorded::first(&receipt)?;
    repo::settle_order(
        conn,
        &p.order_id,
        p.member_id.as_deref(),
        receipt.points_earned,
        rule_version,
        None,
        &recorded.json,
    )
    .await?;
    Ok(Ingested::Done(recorded))
}

/// The answer for an order without a member: stored, claimable, no points.
pub(crate) fn unclaimed_receipt(p: &PreparedOrder) -> OrderReceipt {
    OrderReceipt {
        order_id: p.order_id.clone(),
        member_id: None,
        points_earned: 0,
        explanation: vec![ExplanationLine {
            rule: "no_member".into(),
            text: "未关联会员，不积分；凭小票码 7 天内注册可补积分".into(),
            points: 0,
        }],
        balance: None,
        tier: None,
        receipt_code: p.receipt_code.clone(),
    }
}

fn replay_order(existing: OrderRow, hash: &str) -> AppResult<Recorded> {
    Recorded::replay(
        &existing.request_hash,
        hash,
        existing.response_json,
        "this (store_code, pos_order_id)",
    )
}

/// `POST /api/v1/orders/{store_code}/{pos_order_id}/refunds`
pub async fn refund_order(
    app: &Regulars,
    caller: &Principal,
    store_code: &str,
    pos_order_id: &str,
    input: RefundOrder,
) -> AppResult<Recorded> {
    caller.check(Action::OrderRefund, Some(store_code))?;
    let refund_id = parse_key("refund_id", &input.refund_id)?;
    if input.amount_fen <= 0 {
        return Err(DomainError::invalid("amount_fen", "must be a positive amount of fen").into());
    }
    let hash = ledger::request_hash(&(pos_order_id, &input));
    let mut tx = app.db.begin().await?;
    let order = repo::lock_order(&mut tx, store_code, pos_order_id)
        .await?
        .ok_or(AppError::NotFound { what: "order" })?;
    if let Some(done) = repo::refund_by_id(&mut tx, store_code, &refund_id).await? {
        return Recorded::replay(
            &done.request_hash,
            &hash,
            done.response_json,
            "this refund_id",
        );
    }
    if order.refunded_fen + input.amount_fen > order.paid_fen {
        return Err(AppError::unprocessable(
            "refund_exceeds_order",
            format!(
                "the order was paid ¥{:.2} and ¥{:.2} is already refunded; ¥{:.2} more is too much",
                order.paid_fen as f64 / 100.0,
                order.refunded_fen as f64 / 100.0,
                input.amount_fen as f64 / 100.0
            ),
        ));
    }
    let now = now_ms();
    let reversal = refund_reversal(
        order.points_earned,
        order.paid_fen,
        order.refunded_fen,
        input.amount_fen,
    );
    let refunded = order.refunded_fen + input.amount_fen;
    let qualifying = order.eligible_fen
        - (order.eligible_fen as i128 * refunded as i128 / order.paid_fen.max(1) as i128) as i64;
    let mut shortfall = 0;
    let mut balance = None;
    if let Some(member_id) = &order.member_id {
        let member = ledger_repo::lock_member(&mut tx, member_id, now)
            .await?
            .ok_or(AppError::NotFound { what: "member" })?;
        let split = clawback(member.points_balance, reversal);
        let reference = format!("refund:{store_code}:{refund_id}");
        if split.taken > 0 {
            let own_lot = ledger_repo::earn_entry_of_order(&mut tx, &order.id).await?;
            let allocations = ledger::take_up_to(&mut tx, member_id, split.taken, own_lot).await?;
            let reason = format!("退款 ¥{:.2}，冲回积分", input.amount_fen as f64 / 100.0);
            ledger::debit(
                &mut tx,
                &Posting {
                    member_id,
                    kind: EntryKind::Reverse,
                    reason: &reason,
                    order_id: Some(&order.id),
                    reference: Some(&reference),
                    actor: &caller.actor,
                    approver: None,
                    at: now,
                },
                &allocations,
            )
            .await?;
        }
        if split.shortfall > 0 {
            ledger_repo::insert_debt(
                &mut tx,
                member_id,
                split.shortfall,
                Some(&order.id),
                None,
                &format!("refund {refund_id}: balance short"),
                now,
            )
            .await?;
        }
        shortfall = split.shortfall;
        let new_balance = member.points_balance - split.taken;
        ledger_repo::save_member(
            &mut tx,
            member_id,
            new_balance,
            member.points_debt + split.shortfall,
            &member.tier,
        )
        .await?;
        ledger_repo::emit(
            &mut tx,
            "order.refunded",
            Some(member_id),
            &reference,
            &serde_json::json!({"member_id": member_id, "order_id": order.id, "amount_fen": input.amount_fen,
                "points_reversed": reversal, "shortfall": split.shortfall})
            .to_string(),
            now,
        )
        .await?;
        balance = Some(new_balance);
    }
    let receipt = RefundReceipt {
        points_reversed: reversal,
        shortfall,
        balance,
    };
    let recorded = Recorded::first(&receipt)?;
    let inserted = repo::insert_refund(
        &mut tx,
        &NewRefundRow {
            store_code,
            refund_id: &refund_id,
            order_id: &order.id,
            amount_fen: input.amount_fen,
            points_reversed: reversal,
            shortfall,
            request_hash: &hash,
            response_json: &recorded.json,
            created_at: now,
        },
    )
    .await?;
    if !inserted {
        // The same refund_id, concurrently, for another order of this store.
        tx.rollback()
            .await
            .map_err(regulars_store::StoreError::from_sqlx)?;
        let mut conn = app.db.reader().await?;
        let done = repo::refund_by_id(&mut conn, store_code, &refund_id)
            .await?
            .ok_or(AppError::NotFound { what: "refund" })?;
        return Recorded::replay(
            &done.request_hash,
            &hash,
            done.response_json,
            "this refund_id",
        );
    }
    repo::record_refund_on_order(
        &mut tx,
        &order.id,
        refunded,
        order.points_reversed + reversal,
        qualifying,
    )
    .await?;
    commit(tx).await?;
    Ok(recorded)
}

/// `POST /api/v1/members/{id}/claims`: a guest who joined after eating
/// enters the receipt code within the claim window and earns for the order.
pub async fn claim_order(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    input: ClaimOrder,
) -> AppResult<ClaimReceipt> {
    let code = input.receipt_code.trim().to_uppercase();
    let config = app.loyalty.get(app).await?;
    let mut tx = app.db.begin().await?;
    let order = repo::order_by_receipt_code(&mut tx, &code)
        .await?
        .ok_or(AppError::NotFound { what: "receipt" })?;
    caller.check(Action::OrderIngest, Some(&order.store_code))?;
    if order.member_id.is_some() {
        return Err(AppError::Conflict {
            code: "order_already_claimed",
            message: "this order already earned for a member".into(),
        });
    }
    let now = now_ms();
    if now - order.occurred_at > config.claim_days * 86_400_000 {
        return Err(AppError::unprocessable(
            "claim_window_passed",
            format!("orders can be claimed within {} days", config.claim_days),
        ));
    }
    if order.refunded_fen > 0 {
        return Err(AppError::unprocessable(
            "order_refunded",
            "a refunded order cannot be claimed",
        ));
    }
    let member = ledger_repo::lock_member(&mut tx, member_id, now)
        .await?
        .filter(|m| m.erased_at.is_none())
        .ok_or(AppError::NotFound { what: "member" })?;
    let store = chain::get_store(&mut tx, &order.store_code)
        .await?
        .ok_or(AppError::NotFound { what: "store" })?;
    let occurred_at = app
        .timezone
        .timestamp_millis_opt(order.occurred_at)
        .single()
        .ok_or_else(|| regulars_store::StoreError::Corrupt("order time".into()))?;
    let lines = repo::items_of(&mut tx, &order.id)
        .await?
        .into_iter()
        .map(|i| OrderLine {
            sku: i.sku,
            name: i.name,
            category: i.category,
            quantity: i.quantity,
            unit_price_fen: i.unit_price_fen,
            discount_fen: i.discount_fen,
            voided: i.voided != 0,
            comped: i.comped != 0,
            staff_meal: i.staff_meal != 0,
        })
        .collect();
    let channel = Channel::parse(&order.channel)
        .ok_or_else(|| regulars_store::StoreError::Corrupt("order channel".into()))?;
    let domain_order = Order::new(
        channel,
        occurred_at.fixed_offset(),
        occurred_at.naive_local(),
        lines,
        order.paid_fen,
    )?;
    let accrued = accrue(
        app,
        &mut tx,
        &member,
        &order.id,
        &domain_order,
        &order.store_code,
        &store.brand_code,
        &caller.actor,
    )
    .await?;
    repo::claim_order(
        &mut tx,
        &order.id,
        member_id,
        accrued.plan.earning.points,
        accrued.rule_version,
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(ClaimReceipt {
        order_id: order.id,
        points_earned: accrued.plan.earning.points,
        explanation: accrued.plan.earning.lines,
        balance: accrued.plan.balance,
        tier: accrued.plan.tier_after,
    })
}

/// `POST /api/v1/orders/preview`: what an order would earn, and why. Writes nothing.
pub async fn preview_order(
    app: &Regulars,
    caller: &Principal,
    input: PreviewOrder,
) -> AppResult<PreviewAnswer> {
    caller.check(Action::PointsRead, Some(&input.store_code))?;
    let brand_code = app
        .loyalty
        .brand_of(app, &input.store_code)
        .await?
        .ok_or_else(|| {
            AppError::unprocessable(
                "unknown_store",
                format!("no store with code {}", input.store_code),
            )
        })?;
    let (occurred_at, local) = match &input.occurred_at {
        Some(t) => parse_time(app, "occurred_at", t)?,
        None => {
            let now = chrono::Utc::now().with_timezone(&app.timezone);
            (now.fixed_offset(), now.naive_local())
        }
    };
    let order = Order::new(
        input.channel,
        occurred_at,
        local,
        input.items,
        input.paid_fen,
    )?;
    let config = app.loyalty.get(app).await?;
    let mut conn = app.db.reader().await?;
    let member = match &input.member_id {
        Some(id) => Some(
            ledger_repo::read_member(&mut conn, id)
                .await?
                .ok_or(AppError::NotFound { what: "member" })?,
        ),
        None => None,
    };
    let tier = input
        .tier
        .or_else(|| member.as_ref().and_then(|m| Tier::parse(&m.tier)))
        .unwrap_or(Tier::Regular);
    let points_earned_today = match &member {
        Some(m) if config.rules.has_daily_cap() => {
            let (from, to) = local_day_bounds(app, order.local_time);
            repo::points_earned_between(&mut conn, &m.id, from, to).await?
        }
        _ => 0,
    };
    let earning = earn(
        &EarnContext {
            order: &order,
            store_code: &input.store_code,
            brand_code: &brand_code,
            tier,
            tier_multiplier_permille: config.tiers.benefits(tier).multiplier_permille,
            birthday_month: member
                .as_ref()
                .and_then(|m| m.birth_month.map(|b| b as u32)),
            points_earned_today,
            new_skus: &config.new_skus,
        },
        &config.rules,
    );
    Ok(PreviewAnswer {
        points: earning.points,
        eligible_fen: earning.eligible_fen,
        explanation: earning.lines,
        tier,
        rule_version: config.rules.version,
    })
}
