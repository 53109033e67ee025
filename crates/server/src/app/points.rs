//! Points and tiers as members and staff see them, and the calls that spend
//! or move points: redemptions, transfers, manual adjustments. Earning rules
//! and the tier ladder are edited here too.

use super::ledger::{self, rfc3339, Posting, Recorded, TIER_POLICY_SETTING};
use super::orders::tier_window_start;
use super::{AppError, AppResult, Regulars};
use chrono::TimeZone;
use regulars_core::access::{Action, Principal, Role};
use regulars_core::earning::{validate_rules, EarningRule};
use regulars_core::ledger::{add_months_ms, allocate_up_to, EntryKind, OpenLot};
use regulars_core::tier::{Tier, TierBenefits, TierPolicy};
use regulars_core::DomainError;
use regulars_store::ledger::{self as repo, MemberLedger};
use regulars_store::{chain, commit, now_ms, orders, staff, Conn, Tx};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct Expiring {
    /// `YYYY-MM-DD` in the chain's time zone.
    pub on: String,
    pub points: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub id: String,
    pub kind: EntryKind,
    /// Signed.
    pub points: i64,
    pub reason: String,
    /// `store_code/pos_order_id` of the order the entry belongs to.
    pub order_ref: Option<String>,
    pub at: String,
    /// When the points of this entry expire (entries that add points).
    /// For the console and member pages only: the REST answer keeps the
    /// shape API.md fixes (`{id, kind, points, reason, order_ref?, at}`).
    #[serde(skip)]
    #[schema(ignore)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PointsView {
    pub balance: i64,
    /// Refund shortfall still to be taken from future earnings.
    pub owed: i64,
    pub expiring: Vec<Expiring>,
    pub entries: Vec<EntryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PointsQuery {
    /// Entries per page, 1–200 (default 50).
    pub limit: Option<i64>,
    /// `next_before` of the previous page.
    pub before: Option<String>,
}

async fn member_in_scope(
    conn: &mut Conn,
    caller: &Principal,
    action: Action,
    member_id: &str,
) -> AppResult<MemberLedger> {
    let member = repo::read_member(conn, member_id)
        .await?
        .ok_or(AppError::NotFound { what: "member" })?;
    // Points belong to the chain-wide member; store scope does not narrow
    // which members a store may serve (guests visit any store).
    caller.check(action, None)?;
    Ok(member)
}

/// `GET /api/v1/members/{id}/points`
pub async fn points_of(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    q: PointsQuery,
) -> AppResult<PointsView> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be between 1 and 200").into());
    }
    let before = q
        .before
        .as_deref()
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| DomainError::invalid("before", "use next_before of the previous page"))
        })
        .transpose()?;
    let mut conn = app.db.reader().await?;
    let member = member_in_scope(&mut conn, caller, Action::PointsRead, member_id).await?;
    let now = now_ms();
    let mut expiring: Vec<Expiring> = Vec::new();
    for (at, points) in repo::expiring_of(&mut conn, member_id, now).await? {
        let on = app
            .timezone
            .timestamp_millis_opt(at)
            .single()
            .map(|t| t.date_naive().to_string())
            .unwrap_or_default();
        match expiring.last_mut() {
            Some(last) if last.on == on => last.points += points,
            _ => expiring.push(Expiring { on, points }),
        }
    }
    let rows = repo::entries_of(&mut conn, member_id, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<EntryView> = rows
        .into_iter()
        .take(limit as usize)
        .map(|e| EntryView {
            id: e.id.to_string(),
            kind: EntryKind::parse(&e.kind).unwrap_or(EntryKind::Adjust),
            points: e.points,
            reason: e.reason,
            order_ref: match (e.store_code, e.pos_order_id) {
                (Some(s), Some(p)) => Some(format!("{s}/{p}")),
                _ => None,
            },
            at: rfc3339(app, e.at),
            expires_at: e.expires_at.map(|x| rfc3339(app, x)),
        })
        .collect();
    let next_before = if more {
        entries.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(PointsView {
        balance: member.points_balance,
        owed: member.points_debt,
        expiring,
        entries,
        next_before,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierChangeView {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub qualifying_spend_fen: i64,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierView {
    pub tier: Tier,
    pub qualifying_spend_fen: i64,
    pub next_tier: Option<Tier>,
    pub spend_to_next_fen: Option<i64>,
    pub benefits: TierBenefits,
    /// A manual floor: the member keeps at least this tier until `floor_until`.
    pub floor: Option<Tier>,
    pub floor_until: Option<String>,
    /// The spend no longer holds the tier: it goes down at the next review.
    pub downgrade_pending: bool,
    pub history: Vec<TierChangeView>,
}

/// `GET /api/v1/members/{id}/tier`
pub async fn tier_of(app: &Regulars, caller: &Principal, member_id: &str) -> AppResult<TierView> {
    let config = app.loyalty.get(app).await?;
    let mut conn = app.db.reader().await?;
    let member = member_in_scope(&mut conn, caller, Action::PointsRead, member_id).await?;
    let now = now_ms();
    let spend =
        orders::qualifying_spend(&mut conn, member_id, tier_window_start(now), now, None).await?;
    let tier = Tier::parse(&member.tier).unwrap_or(Tier::Regular);
    let next = config.tiers.next_tier(tier, spend);
    let floor = ledger::active_floor(&member, now);
    let held = config
        .tiers
        .tier_for_spend(spend)
        .max(floor.unwrap_or(Tier::Regular));
    let history = repo::tier_history_of(&mut conn, member_id)
        .await?
        .into_iter()
        .map(|h| TierChangeView {
            from: h.from_tier,
            to: h.to_tier,
            reason: h.reason,
            qualifying_spend_fen: h.qualifying_spend_fen,
            at: rfc3339(app, h.at),
        })
        .collect();
    Ok(TierView {
        tier,
        qualifying_spend_fen: spend,
        next_tier: next.map(|n| n.0),
        spend_to_next_fen: next.map(|n| n.1),
        benefits: config.tiers.benefits(tier),
        floor,
        floor_until: member
            .tier_floor_until
            .filter(|u| *u > now)
            .map(|u| rfc3339(app, u)),
        // In grace, and the spend (or a floor) does not hold the tier now:
        // a guest who spent again during the grace is not told otherwise.
        downgrade_pending: member.tier_grace_since.is_some() && held < tier,
        history,
    })
}

/// `POST /api/v1/members/{id}/redemptions`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    pub points: i64,
    pub store_code: String,
    pub reward_id: Option<String>,
    pub note: Option<String>,
    /// Draw on the family group too: the member's own points first, then
    /// those of family members who agreed to share, in member-id order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub family: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RedemptionReceipt {
    pub redemption_id: String,
    pub points: i64,
    /// The member's own balance after the redemption.
    pub balance: i64,
    /// With `family`: how many points each member gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<Contribution>,
    /// With `reward_id`: what the points bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<super::rewards::RewardOutcome>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Contribution {
    pub member_id: String,
    pub points: i64,
}

/// `PUT /api/v1/members/{id}/family-share`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyShare {
    pub share: bool,
}

/// Record a member's consent to share points with their family group.
pub async fn set_family_share(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    input: FamilyShare,
) -> AppResult<FamilyShareView> {
    caller.check(Action::MemberConsent, None)?;
    let mut tx = app.db.begin().await?;
    if !repo::set_family_share(&mut tx, member_id, input.share).await? {
        return Err(AppError::NotFound { what: "member" });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "member.family_share",
        &format!("member:{member_id}"),
        if input.share { "granted" } else { "withdrawn" },
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    Ok(FamilyShareView {
        member_id: member_id.to_string(),
        share: input.share,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FamilyShareView {
    pub member_id: String,
    pub share: bool,
}

/// A family redemption: lock every sharer in id order, take the member's own
/// usable points first, then the others'; one `redeem` entry per giver, all
/// under the redemption's id. Nothing is taken unless the whole amount is there.
async fn redeem_from_family(
    tx: &mut Tx,
    member: &MemberLedger,
    points: i64,
    posting: &Posting<'_>,
    now: i64,
) -> AppResult<(i64, Vec<Contribution>)> {
    let group = member.family_group_id.clone().ok_or_else(|| {
        AppError::unprocessable("no_family_group", "the member belongs to no family group")
    })?;
    let mut givers = repo::family_sharers(tx, &group).await?;
    givers.retain(|id| id != &member.id);
    let mut locked = Vec::new();
    for id in &givers {
        if let Some(m) = repo::lock_member(tx, id, now).await? {
            locked.push(m);
        }
    }
    let mut order: Vec<&MemberLedger> = vec![member];
    order.extend(locked.iter());
    let mut left = points;
    let mut plan = Vec::new();
    for giver in &order {
        if left == 0 {
            break;
        }
        let lots = repo::open_lots(tx, &giver.id, now).await?;
        let open: Vec<OpenLot> = lots
            .iter()
            .map(|l| OpenLot {
                id: l.entry_id,
                expires_at: l.expires_at,
                remaining: l.remaining,
            })
            .collect();
        let take = allocate_up_to(&open, left, None);
        let taken: i64 = take.iter().map(|a| a.points).sum();
        if taken > 0 {
            left -= taken;
            plan.push((*giver, take, taken));
        }
    }
    if left > 0 {
        return Err(AppError::unprocessable(
            "insufficient_points",
            format!(
                "the member and their sharing family hold {} usable points; {points} asked",
                points - left
            ),
        ));
    }
    let mut first_entry = None;
    let mut contributions = Vec::new();
    for (giver, allocations, taken) in plan {
        let reason = if giver.id == member.id {
            posting.reason.to_string()
        } else {
            format!("家庭共享：{}（为家人兑换）", posting.reason)
        };
        let entry = ledger::debit(
            tx,
            &Posting {
                member_id: &giver.id,
                reason: &reason,
                ..*posting
            },
            &allocations,
        )
        .await?;
        first_entry.get_or_insert(entry);
        repo::save_member(
            tx,
            &giver.id,
            giver.points_balance - taken,
            giver.points_debt,
            &giver.tier,
        )
        .await?;
        contributions.push(Contribution {
            member_id: giver.id.clone(),
            points: taken,
        });
    }
    Ok((first_entry.unwrap_or_default(), contributions))
}

/// Validate an `Idempotency-Key` header value.
pub fn idempotency_key(key: Option<&str>) -> AppResult<String> {
    let key = key.map(str::trim).unwrap_or("");
    if key.is_empty() {
        return Err(AppError::unprocessable(
            "idempotency_key_required",
            "send an Idempotency-Key header (any unique string up to 128 characters)",
        ));
    }
    if key.chars().count() > 128 || key.chars().any(char::is_control) {
        return Err(
            DomainError::invalid("Idempotency-Key", "at most 128 printable characters").into(),
        );
    }
    Ok(key.to_string())
}

/// Run `change` once per `(scope, key)`: a replay returns the first answer,
/// the same key with another request is 409. The key is claimed in the same
/// transaction as the change, so a crash leaves neither or both; a failed
/// change (e.g. not enough points) stores nothing, and may be retried.
pub(crate) async fn once<F>(
    app: &Regulars,
    scope: &str,
    key: &str,
    hash: &str,
    change: F,
) -> AppResult<Recorded>
where
    F: for<'t> FnOnce(&'t mut Tx) -> futures_boxed::BoxFuture<'t, AppResult<String>>,
{
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    if !repo::claim_key(&mut tx, scope, key, hash, now).await? {
        tx.rollback()
            .await
            .map_err(regulars_store::StoreError::from_sqlx)?;
        let mut conn = app.db.reader().await?;
        let stored =
            repo::stored_result(&mut conn, scope, key)
                .await?
                .ok_or(AppError::NotFound {
                    what: "idempotency key",
                })?;
        return Recorded::replay(
            &stored.request_hash,
            hash,
            stored.response_json,
            "this Idempotency-Key",
        );
    }
    let json = change(&mut tx).await?;
    repo::finish_key(&mut tx, scope, key, 201, &json).await?;
    commit(tx).await?;
    Ok(Recorded {
        replayed: false,
        json,
    })
}

/// A boxed future type for the closures `once` takes.
pub mod futures_boxed {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// `POST /api/v1/members/{id}/redemptions`: spend points, soonest-expiring first.
pub async fn redeem(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    key: Option<&str>,
    input: Redeem,
) -> AppResult<Recorded> {
    caller.check(Action::PointsRedeem, Some(&input.store_code))?;
    let key = idempotency_key(key)?;
    if !(1..=100_000_000).contains(&input.points) {
        return Err(DomainError::invalid("points", "must be between 1 and 100000000").into());
    }
    if let Some(note) = &input.note {
        regulars_core::member::parse_note("note", note)?;
    }
    {
        let mut conn = app.db.reader().await?;
        if chain::get_store(&mut conn, &input.store_code)
            .await?
            .is_none()
        {
            return Err(AppError::unprocessable(
                "unknown_store",
                format!("no store {}", input.store_code),
            ));
        }
    }
    let hash = ledger::request_hash(&input);
    let scope = format!("redeem:{member_id}");
    let actor = caller.actor.clone();
    let member_id = member_id.to_string();
    let app2 = app.clone();
    once(app, &scope, &key, &hash, move |tx| {
        Box::pin(async move {
            let now = now_ms();
            let member = repo::lock_member(tx, &member_id, now)
                .await?
                .filter(|m| m.erased_at.is_none())
                .ok_or(AppError::NotFound { what: "member" })?;
            let redemption_id = uuid::Uuid::now_v7().to_string();
            let reward = match &input.reward_id {
                Some(r) => Some(
                    super::rewards::claim_in(
                        &app2,
                        tx,
                        &member,
                        r,
                        input.points,
                        &redemption_id,
                        now,
                    )
                    .await?,
                ),
                None => None,
            };
            let reason = match (&reward, &input.note) {
                (Some(r), _) => format!("兑换 {}", r.name),
                (None, Some(n)) => format!("积分抵扣：{n}"),
                (None, None) => format!("积分抵扣 @{}", input.store_code),
            };
            let posting = Posting {
                member_id: &member_id,
                kind: EntryKind::Redeem,
                reason: &reason,
                order_id: None,
                reference: Some(&redemption_id),
                actor: &actor,
                approver: None,
                at: now,
            };
            let (entry, contributions) = if input.family {
                redeem_from_family(tx, &member, input.points, &posting, now).await?
            } else {
                let allocations = ledger::take_exactly(tx, &member_id, input.points, now).await?;
                let entry = ledger::debit(tx, &posting, &allocations).await?;
                repo::save_member(
                    tx,
                    &member_id,
                    member.points_balance - input.points,
                    member.points_debt,
                    &member.tier,
                )
                .await?;
                (entry, Vec::new())
            };
            let own = contributions
                .iter()
                .find(|c| c.member_id == member_id)
                .map(|c| c.points)
                .unwrap_or(if input.family { 0 } else { input.points });
            repo::insert_redemption(
                tx,
                &repo::NewRedemption {
                    id: &redemption_id,
                    member_id: &member_id,
                    entry_id: entry,
                    points: input.points,
                    store_code: &input.store_code,
                    reward_id: input.reward_id.as_deref(),
                    note: input.note.as_deref(),
                    at: now,
                },
            )
            .await?;
            let balance = member.points_balance - own;
            repo::emit(
                tx,
                "points.redeemed",
                Some(&member_id),
                &redemption_id,
                &serde_json::json!({"member_id": member_id, "points": input.points,
                    "store_code": input.store_code, "reward_id": input.reward_id, "balance": balance})
                .to_string(),
                now,
            )
            .await?;
            Ok(Recorded::first(&RedemptionReceipt {
                redemption_id,
                points: input.points,
                balance,
                contributions,
                reward,
            })?
            .json)
        })
    })
    .await
}

/// `POST /api/v1/members/{id}/transfers`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub to_member_id: String,
    pub points: i64,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferReceipt {
    pub transfer_id: String,
    pub points: i64,
    pub balance: i64,
    pub to_balance: i64,
}

/// Move points to another member. The points keep their expiry: each lot
/// taken from the sender opens a lot of the same expiry for the receiver, so
/// a transfer can never make points live longer.
pub async fn transfer(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    key: Option<&str>,
    input: Transfer,
) -> AppResult<Recorded> {
    caller.check(Action::PointsAdjust, None)?;
    let key = idempotency_key(key)?;
    if !(1..=100_000_000).contains(&input.points) {
        return Err(DomainError::invalid("points", "must be between 1 and 100000000").into());
    }
    if input.to_member_id == member_id {
        return Err(
            DomainError::invalid("to_member_id", "cannot transfer to the same member").into(),
        );
    }
    let hash = ledger::request_hash(&input);
    let scope = format!("transfer:{member_id}");
    let actor = caller.actor.clone();
    let from_id = member_id.to_string();
    once(app, &scope, &key, &hash, move |tx| {
        Box::pin(async move {
            let now = now_ms();
            // Lock both rows in id order, so two opposite transfers cannot deadlock.
            let (first, second) = if from_id < input.to_member_id {
                (from_id.as_str(), input.to_member_id.as_str())
            } else {
                (input.to_member_id.as_str(), from_id.as_str())
            };
            let a = repo::lock_member(tx, first, now).await?;
            let b = repo::lock_member(tx, second, now).await?;
            let (from, to) = if first == from_id { (a, b) } else { (b, a) };
            let from = from
                .filter(|m| m.erased_at.is_none())
                .ok_or(AppError::NotFound { what: "member" })?;
            let to = to.filter(|m| m.erased_at.is_none()).ok_or_else(|| {
                AppError::unprocessable("unknown_member", "no member has this to_member_id")
            })?;
            let lots = repo::open_lots(tx, &from.id, now).await?;
            let allocations = ledger::take_exactly(tx, &from.id, input.points, now).await?;
            let transfer_id = uuid::Uuid::now_v7().to_string();
            let reason_out = format!("转赠给会员 {}", short(&to.id));
            let out = ledger::debit(
                tx,
                &Posting {
                    member_id: &from.id,
                    kind: EntryKind::TransferOut,
                    reason: &reason_out,
                    order_id: None,
                    reference: Some(&transfer_id),
                    actor: &actor,
                    approver: None,
                    at: now,
                },
                &allocations,
            )
            .await?;
            let reason_in = format!("来自会员 {} 的转赠", short(&from.id));
            let mut first_in = None;
            for a in &allocations {
                let expires_at = lots
                    .iter()
                    .find(|l| l.entry_id == a.lot_id)
                    .map(|l| l.expires_at)
                    .unwrap_or(now);
                let id = ledger::credit(
                    tx,
                    &Posting {
                        member_id: &to.id,
                        kind: EntryKind::TransferIn,
                        reason: &reason_in,
                        order_id: None,
                        reference: Some(&transfer_id),
                        actor: &actor,
                        approver: None,
                        at: now,
                    },
                    a.points,
                    now,
                    expires_at,
                )
                .await?;
                first_in.get_or_insert(id);
            }
            repo::insert_transfer(
                tx,
                &transfer_id,
                &from.id,
                &to.id,
                input.points,
                out,
                first_in.unwrap_or(out),
                now,
            )
            .await?;
            let balance = from.points_balance - input.points;
            let to_balance = to.points_balance + input.points;
            repo::save_member(tx, &from.id, balance, from.points_debt, &from.tier).await?;
            repo::save_member(tx, &to.id, to_balance, to.points_debt, &to.tier).await?;
            Ok(Recorded::first(&TransferReceipt {
                transfer_id,
                points: input.points,
                balance,
                to_balance,
            })?
            .json)
        })
    })
    .await
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(6)..).unwrap_or(id)
}

/// `POST /api/v1/members/{id}/adjustments`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    /// Signed: positive adds a lot, negative takes from lots.
    pub points: i64,
    pub reason: String,
    /// Who approved it (required above the caller's own limit is not enough:
    /// above the limit the call is refused; the approver is recorded).
    pub approver: Option<String>,
    /// `adjust` (default), `bonus` or `compensation`.
    pub kind: Option<EntryKind>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdjustReceipt {
    pub entry_id: String,
    pub points: i64,
    pub balance: i64,
}

/// Largest manual adjustment (either sign) a role may make alone.
pub fn adjust_limit(role: Role) -> Option<i64> {
    match role {
        Role::HqAdmin => None,
        Role::ServiceAgent => Some(2_000),
        Role::StoreManager => Some(500),
        Role::Partner => Some(1_000),
        _ => Some(0),
    }
}

/// Manual adjustment, bonus or compensation, with reason and approver.
pub async fn adjust(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    key: Option<&str>,
    input: Adjust,
) -> AppResult<Recorded> {
    let kind = input.kind.unwrap_or(EntryKind::Adjust);
    // A bonus is a grant of points (HQ, partners within their quota);
    // adjustments and compensation are staff corrections. One kind, one
    // row of the permission matrix: a partner key cannot "adjust".
    let action = if kind == EntryKind::Bonus {
        Action::PointsGrant
    } else {
        Action::PointsAdjust
    };
    caller.check(action, None)?;
    let key = idempotency_key(key)?;
    if !matches!(
        kind,
        EntryKind::Adjust | EntryKind::Bonus | EntryKind::Compensation
    ) {
        return Err(DomainError::invalid("kind", "adjust, bonus or compensation").into());
    }
    if input.points == 0 || input.points.abs() > 100_000_000 {
        return Err(
            DomainError::invalid("points", "non-zero, at most 100000000 either way").into(),
        );
    }
    if input.points < 0 && kind != EntryKind::Adjust {
        return Err(DomainError::invalid("points", "bonus and compensation add points").into());
    }
    if caller.role == Role::Partner && input.points < 0 {
        return Err(DomainError::invalid("points", "partners may only grant points").into());
    }
    let reason = regulars_core::member::parse_note("reason", &input.reason)?;
    if let Some(limit) = adjust_limit(caller.role) {
        if input.points.abs() > limit {
            return Err(AppError::unprocessable(
                "over_adjust_limit",
                format!(
                    "a {} may adjust at most {limit} points at once; ask HQ",
                    caller.role
                ),
            ));
        }
    }
    let hash = ledger::request_hash(&input);
    let scope = format!("adjust:{member_id}");
    let actor = caller.actor.clone();
    let member_id = member_id.to_string();
    let config = app.loyalty.get(app).await?;
    once(app, &scope, &key, &hash, move |tx| {
        Box::pin(async move {
            let now = now_ms();
            let member = repo::lock_member(tx, &member_id, now)
                .await?
                .filter(|m| m.erased_at.is_none())
                .ok_or(AppError::NotFound { what: "member" })?;
            let posting = Posting {
                member_id: &member_id,
                kind,
                reason: &reason,
                order_id: None,
                reference: None,
                actor: &actor,
                approver: input.approver.as_deref(),
                at: now,
            };
            let entry = if input.points > 0 {
                let tier = Tier::parse(&member.tier).unwrap_or(Tier::Regular);
                let months = config.tiers.benefits(tier).expiry_months;
                ledger::credit(tx, &posting, input.points, now, add_months_ms(now, months)).await?
            } else {
                let allocations = ledger::take_exactly(tx, &member_id, -input.points, now).await?;
                ledger::debit(tx, &posting, &allocations).await?
            };
            let balance = member.points_balance + input.points;
            repo::save_member(tx, &member_id, balance, member.points_debt, &member.tier).await?;
            staff::audit(
                tx,
                &actor,
                "points.adjust",
                &format!("member:{member_id}"),
                &format!("{} {} ({reason})", kind.as_str(), input.points),
                now,
            )
            .await?;
            Ok(Recorded::first(&AdjustReceipt {
                entry_id: entry.to_string(),
                points: input.points,
                balance,
            })?
            .json)
        })
    })
    .await
}

/// `GET/PUT /api/v1/earning-rules`
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RulesView {
    pub version: i64,
    pub rules: Vec<EarningRule>,
    /// One line per rule for people.
    #[serde(default)]
    pub summaries: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRules {
    pub rules: Vec<EarningRule>,
    /// Why the rules changed (kept with the version).
    pub note: Option<String>,
}

pub async fn rules(app: &Regulars, caller: &Principal) -> AppResult<RulesView> {
    caller.check(Action::PointsRead, None)?;
    let loaded = app.loyalty.get(app).await?;
    Ok(RulesView {
        version: loaded.rules.version,
        summaries: loaded
            .rules
            .rules
            .iter()
            .map(regulars_core::earning::describe)
            .collect(),
        rules: loaded.rules.rules.clone(),
    })
}

/// Replace the rule set: a new version; older versions stay for the record.
pub async fn put_rules(
    app: &Regulars,
    caller: &Principal,
    input: PutRules,
) -> AppResult<RulesView> {
    caller.check(Action::RulesManage, None)?;
    validate_rules(&input.rules)?;
    let json = serde_json::to_string(&input.rules)
        .map_err(|e| AppError::unprocessable("invalid_rules", e.to_string()))?;
    let mut tx = app.db.begin().await?;
    let version = orders::insert_rules(
        &mut tx,
        &json,
        input.note.as_deref().unwrap_or(""),
        &caller.actor,
        now_ms(),
    )
    .await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "earning_rules.put",
        "earning_rules",
        &format!("version {version}"),
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    app.loyalty.invalidate().await;
    Ok(RulesView {
        version,
        summaries: input
            .rules
            .iter()
            .map(regulars_core::earning::describe)
            .collect(),
        rules: input.rules,
    })
}

/// `GET /api/v1/tier-policy`: the tier ladder in force.
pub async fn tier_policy(app: &Regulars, caller: &Principal) -> AppResult<TierPolicy> {
    caller.check(Action::PointsRead, None)?;
    Ok(app.loyalty.get(app).await?.tiers.clone())
}

/// `PUT /api/v1/tier-policy`
pub async fn put_tier_policy(
    app: &Regulars,
    caller: &Principal,
    policy: TierPolicy,
) -> AppResult<TierPolicy> {
    caller.check(Action::RulesManage, None)?;
    let mut last = -1;
    for tier in Tier::ALL {
        let b = policy
            .tiers
            .iter()
            .find(|b| b.tier == tier)
            .ok_or_else(|| {
                DomainError::invalid("tiers", format!("missing tier {}", tier.as_str()))
            })?;
        if b.threshold_fen <= last || (tier == Tier::Regular && b.threshold_fen != 0) {
            return Err(DomainError::invalid(
                "tiers",
                "thresholds start at 0 for regular and rise with each tier",
            )
            .into());
        }
        last = b.threshold_fen;
        if !(1000..=10_000).contains(&b.multiplier_permille)
            || !(1..=120).contains(&b.expiry_months)
            || b.birthday_points < 0
        {
            return Err(DomainError::invalid(
                "tiers",
                "multiplier_permille 1000–10000, expiry_months 1–120, birthday_points ≥ 0",
            )
            .into());
        }
    }
    let json = serde_json::to_string(&policy)
        .map_err(|e| AppError::unprocessable("invalid_policy", e.to_string()))?;
    let mut tx = app.db.begin().await?;
    for b in &policy.tiers {
        for template in &b.birthday_coupon_templates {
            super::coupons::active_template(&mut tx, template).await?;
        }
    }
    staff::put_setting(&mut tx, TIER_POLICY_SETTING, &json).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "tier_policy.put",
        "tier_policy",
        "",
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    app.loyalty.invalidate().await;
    Ok(policy)
}

/// `PUT /api/v1/members/{id}/tier-floor`: keep a member at least at a tier
/// until a date (a VIP guest, a complaint put right).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFloor {
    pub tier: Tier,
    /// `YYYY-MM-DD`, the last day the floor holds.
    pub until: String,
    pub reason: String,
}

pub async fn set_tier_floor(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    input: TierFloor,
) -> AppResult<TierView> {
    caller.check(Action::RulesManage, None)?;
    let until = chrono::NaiveDate::parse_from_str(&input.until, "%Y-%m-%d").map_err(|_| {
        DomainError::InvalidDate {
            field: "until",
            reason: "expected YYYY-MM-DD".into(),
        }
    })?;
    if until < app.today() {
        return Err(DomainError::InvalidDate {
            field: "until",
            reason: "is in the past".into(),
        }
        .into());
    }
    let reason = regulars_core::member::parse_note("reason", &input.reason)?;
    let until_ms = app
        .timezone
        .from_local_datetime(&(until + chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MAX);
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let member = repo::lock_member(&mut tx, member_id, now)
        .await?
        .ok_or(AppError::NotFound { what: "member" })?;
    // A pending downgrade stays pending: a floor is no reason to restart the grace.
    repo::set_tier_marks(
        &mut tx,
        member_id,
        member.tier_grace_since,
        Some(input.tier.as_str()),
        Some(until_ms),
    )
    .await?;
    let current = Tier::parse(&member.tier).unwrap_or(Tier::Regular);
    if input.tier > current {
        repo::save_member(
            &mut tx,
            member_id,
            member.points_balance,
            member.points_debt,
            input.tier.as_str(),
        )
        .await?;
        repo::insert_tier_change(
            &mut tx,
            member_id,
            current.as_str(),
            input.tier.as_str(),
            &format!("manual floor until {until}: {reason}"),
            0,
            &caller.actor,
            now,
        )
        .await?;
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "tier.floor",
        &format!("member:{member_id}"),
        &format!("{} until {until}: {reason}", input.tier.as_str()),
        now,
    )
    .await?;
    commit(tx).await?;
    tier_of(app, caller, member_id).await
}

/// A manual adjustment above its requester's limit, waiting for (or decided
/// by) an HQ admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentRequestView {
    pub id: String,
    pub member_id: String,
    pub member_code: String,
    pub kind: String,
    pub points: i64,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    /// `pending`, `approved`, `rejected`
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

/// Ask for an adjustment the caller may not make alone: checked as
/// [`adjust`] checks it (kind, amount, reason), recorded as pending.
pub async fn request_adjustment(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    input: Adjust,
) -> AppResult<String> {
    caller.check(Action::PointsAdjust, None)?;
    let kind = input.kind.unwrap_or(EntryKind::Adjust);
    if !matches!(kind, EntryKind::Adjust | EntryKind::Compensation) {
        return Err(DomainError::invalid("kind", "adjust or compensation").into());
    }
    if input.points == 0 || input.points.abs() > 100_000_000 {
        return Err(
            DomainError::invalid("points", "non-zero, at most 100000000 either way").into(),
        );
    }
    if input.points < 0 && kind != EntryKind::Adjust {
        return Err(DomainError::invalid("points", "compensation adds points").into());
    }
    let reason = regulars_core::member::parse_note("reason", &input.reason)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    repo::read_member(&mut tx, member_id)
        .await?
        .filter(|m| m.erased_at.is_none())
        .ok_or(AppError::NotFound { what: "member" })?;
    regulars_store::adjustments::insert_request(
        &mut tx,
        &regulars_store::adjustments::NewAdjustmentRequest {
            id: &id,
            member_id,
            kind: kind.as_str(),
            points: input.points,
            reason: &reason,
            requested_by: &caller.actor,
            requested_at: now,
        },
    )
    .await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "points.adjust.request",
        &format!("member:{member_id}"),
        &format!("{} {} ({reason}) request {id}", kind.as_str(), input.points),
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(id)
}

/// Pending requests (oldest first), then the latest decided ones. For the
/// roles that may approve (no adjustment limit of their own).
pub async fn adjustment_requests(
    app: &Regulars,
    caller: &Principal,
) -> AppResult<Vec<AdjustmentRequestView>> {
    caller.check(Action::PointsAdjust, None)?;
    if adjust_limit(caller.role).is_some() {
        caller.check(Action::StaffManage, None)?;
    }
    let mut conn = app.db.reader().await?;
    Ok(regulars_store::adjustments::list_requests(&mut conn, 200)
        .await?
        .into_iter()
        .map(|r| AdjustmentRequestView {
            requested_at: rfc3339(app, r.requested_at),
            decided_at: r.decided_at.map(|d| rfc3339(app, d)),
            id: r.id,
            member_id: r.member_id,
            member_code: r.member_code,
            kind: r.kind,
            points: r.points,
            reason: r.reason,
            requested_by: r.requested_by,
            status: r.status,
            decided_by: r.decided_by,
        })
        .collect())
}

/// Approve (apply through [`adjust`], the approver recorded on the entry)
/// or reject a pending request. Not one's own; only roles without a limit.
pub async fn decide_adjustment(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    approve: bool,
) -> AppResult<()> {
    caller.check(Action::PointsAdjust, None)?;
    if adjust_limit(caller.role).is_some() {
        // Only a role without a limit of its own can approve beyond one.
        caller.check(Action::StaffManage, None)?;
    }
    let request = {
        let mut conn = app.db.reader().await?;
        regulars_store::adjustments::get_request(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound {
                what: "adjustment request",
            })?
    };
    if request.status != "pending" {
        return Err(AppError::Conflict {
            code: "already_decided",
            message: format!("the request is already {}", request.status),
        });
    }
    if request.requested_by == caller.actor {
        return Err(AppError::unprocessable(
            "own_request",
            "the requester cannot approve or reject their own request",
        ));
    }
    let now = now_ms();
    let entry = if approve {
        // One key per request: two approvers at once apply it once.
        let recorded = adjust(
            app,
            caller,
            &request.member_id,
            Some(&format!("approval:{id}")),
            Adjust {
                points: request.points,
                reason: request.reason.clone(),
                approver: Some(caller.actor.clone()),
                kind: EntryKind::parse(&request.kind),
            },
        )
        .await?;
        serde_json::from_str::<AdjustReceipt>(&recorded.json)
            .ok()
            .map(|r| r.entry_id)
    } else {
        None
    };
    let mut tx = app.db.begin().await?;
    let decided = regulars_store::adjustments::decide_request(
        &mut tx,
        id,
        if approve { "approved" } else { "rejected" },
        &caller.actor,
        now,
        entry.as_deref(),
    )
    .await?;
    if !decided && !approve {
        return Err(AppError::Conflict {
            code: "already_decided",
            message: "the request was decided by someone else".into(),
        });
    }
    if decided {
        staff::audit(
            &mut tx,
            &caller.actor,
            if approve {
                "points.adjust.approve"
            } else {
                "points.adjust.reject"
            },
            &format!("member:{}", request.member_id),
            &format!(
                "{} {} requested by {} (request {id})",
                request.kind, request.points, request.requested_by
            ),
            now,
        )
        .await?;
    }
    commit(tx).await?;
    Ok(())
}
