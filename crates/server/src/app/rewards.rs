//! The rewards catalogue: HQ lists what points buy; guests and cashiers see
//! what a member may have; a redemption with `reward_id` goes through
//! [`claim_in`], inside the points redemption's transaction, so a refused
//! reward deducts nothing and a granted one takes stock, points and (for a
//! coupon or free dish) issues the coupon all together.

use super::coupons::{self, CouponSource, CouponView, RefusalView};
use super::ledger::rfc3339;
use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::reward::{check_claim, Claim, RewardKind, RewardRefusal, RewardSpec};
use regulars_core::tier::Tier;
use regulars_core::DomainError;
use regulars_store::ledger::{self as ledger_repo, MemberLedger};
use regulars_store::rewards::{self as repo, RewardRow};
use regulars_store::{commit, now_ms, staff, Conn};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct RewardView {
    pub id: String,
    #[serde(flatten)]
    pub spec: RewardSpec,
    /// Units left; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_left: Option<i64>,
    pub active: bool,
    pub created_at: String,
    /// With `member_id`: whether that member may redeem it now (points aside
    /// for a cash offset), and why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalView>,
}

fn spec_of(row: &RewardRow) -> RewardSpec {
    RewardSpec {
        name: row.name.clone(),
        kind: RewardKind::parse(&row.kind).unwrap_or(RewardKind::Merchandise),
        points_cost: row.points_cost,
        coupon_template_id: row.coupon_template_id.clone(),
        stock: row.stock_total,
        per_member_limit: row.per_member_limit,
        min_tier: Tier::parse(&row.min_tier).unwrap_or(Tier::Regular),
        description: row.description.clone(),
    }
}

fn view(app: &Regulars, row: &RewardRow) -> RewardView {
    RewardView {
        id: row.id.clone(),
        spec: spec_of(row),
        stock_left: row.stock_left,
        active: row.active != 0,
        created_at: rfc3339(app, row.created_at),
        eligible: None,
        refusal: None,
    }
}

/// `POST /api/v1/rewards`
pub async fn create(app: &Regulars, caller: &Principal, spec: RewardSpec) -> AppResult<RewardView> {
    caller.check(Action::RulesManage, None)?;
    spec.validate()?;
    let mut tx = app.db.begin().await?;
    if let Some(template) = &spec.coupon_template_id {
        coupons::active_template(&mut tx, template).await?;
    }
    let now = now_ms();
    let row = RewardRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: spec.name.trim().to_string(),
        kind: spec.kind.as_str().to_string(),
        points_cost: spec.points_cost,
        coupon_template_id: spec.coupon_template_id.clone(),
        stock_total: spec.stock,
        stock_left: spec.stock,
        per_member_limit: spec.per_member_limit,
        min_tier: spec.min_tier.as_str().to_string(),
        description: spec.description.clone(),
        active: 1,
        created_at: now,
    };
    repo::insert_reward(&mut tx, &row).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "reward.create",
        &format!("reward:{}", row.id),
        &format!("{} {} points", row.name, row.points_cost),
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(view(app, &row))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CatalogueQuery {
    /// Judge each reward for this member (tier, limit, stock).
    pub member_id: Option<String>,
    /// Include retired rewards (staff views).
    #[serde(default)]
    pub all: bool,
}

/// `GET /api/v1/rewards`
pub async fn catalogue(
    app: &Regulars,
    caller: &Principal,
    query: CatalogueQuery,
) -> AppResult<Vec<RewardView>> {
    caller.check(Action::PointsRead, None)?;
    let mut conn = app.db.reader().await?;
    let member = match &query.member_id {
        Some(id) => Some(
            ledger_repo::read_member(&mut conn, id)
                .await?
                .filter(|m| m.erased_at.is_none())
                .ok_or(AppError::NotFound { what: "member" })?,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for row in repo::list_rewards(&mut conn, !query.all).await? {
        let mut v = view(app, &row);
        if let Some(member) = &member {
            let spec = spec_of(&row);
            let before = repo::redemptions_of_reward(&mut conn, &row.id, &member.id).await?;
            let verdict = check_claim(
                &spec,
                row.active != 0,
                &Claim {
                    tier: Tier::parse(&member.tier).unwrap_or(Tier::Regular),
                    redeemed_before: before,
                    stock_left: row.stock_left,
                    points: spec.points_cost,
                },
            );
            v.eligible = Some(verdict.is_ok());
            v.refusal = verdict.err().map(|r| refusal_view(&r));
        }
        out.push(v);
    }
    Ok(out)
}

fn refusal_view(r: &RewardRefusal) -> RefusalView {
    RefusalView {
        code: r.code().to_string(),
        message: r.to_string(),
    }
}

/// `PATCH /api/v1/rewards/{id}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardChange {
    pub name: Option<String>,
    pub points_cost: Option<i64>,
    pub description: Option<String>,
    /// Retire (false) or offer again (true).
    pub active: Option<bool>,
    /// Units added to the shelf (a restock); only for rewards with a stock count.
    #[serde(default)]
    pub add_stock: i64,
}

pub async fn change(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    input: RewardChange,
) -> AppResult<RewardView> {
    caller.check(Action::RulesManage, None)?;
    if input
        .name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 100)
    {
        return Err(DomainError::invalid("name", "1 to 100 characters").into());
    }
    if input
        .points_cost
        .is_some_and(|p| !(1..=10_000_000).contains(&p))
    {
        return Err(DomainError::invalid("points_cost", "between 1 and 10000000 points").into());
    }
    if !(0..=100_000_000).contains(&input.add_stock) {
        return Err(DomainError::invalid("add_stock", "between 0 and 100000000").into());
    }
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let row = repo::get_reward(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "reward" })?;
    if input.add_stock > 0 && row.stock_total.is_none() {
        return Err(AppError::unprocessable(
            "unlimited_stock",
            "this reward has no stock count to add to",
        ));
    }
    repo::update_reward(
        &mut tx,
        id,
        input.name.as_deref().map(str::trim),
        input.points_cost,
        input.active,
        input.add_stock,
        input.description.as_deref(),
        now,
    )
    .await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "reward.change",
        &format!("reward:{id}"),
        &format!(
            "active={:?} add_stock={} points_cost={:?}",
            input.active, input.add_stock, input.points_cost
        ),
        now,
    )
    .await?;
    let row = repo::get_reward(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "reward" })?;
    commit(tx).await?;
    Ok(view(app, &row))
}

/// What a redemption with a reward gave.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RewardOutcome {
    pub reward_id: String,
    pub name: String,
    pub kind: RewardKind,
    /// One, or for a cash offset the whole yuan bought.
    pub units: i64,
    /// A cash offset: what comes off the bill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_fen: Option<i64>,
    /// A coupon or free dish: the coupon issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<CouponView>,
}

/// The reward part of a points redemption, in its transaction, with the
/// member's row already locked (so the per-member count cannot race).
pub(crate) async fn claim_in(
    app: &Regulars,
    conn: &mut Conn,
    member: &MemberLedger,
    reward_id: &str,
    points: i64,
    redemption_id: &str,
    now: i64,
) -> AppResult<RewardOutcome> {
    let row = repo::get_reward(conn, reward_id).await?.ok_or_else(|| {
        AppError::unprocessable("unknown_reward", format!("no reward {reward_id}"))
    })?;
    let spec = spec_of(&row);
    let before = repo::redemptions_of_reward(conn, reward_id, &member.id).await?;
    let refuse = |r: RewardRefusal| AppError::unprocessable(r.code(), r.to_string());
    let units = check_claim(
        &spec,
        row.active != 0,
        &Claim {
            tier: Tier::parse(&member.tier).unwrap_or(Tier::Regular),
            redeemed_before: before,
            stock_left: row.stock_left,
            points,
        },
    )
    .map_err(refuse)?;
    // The stock read above may be stale under concurrency; the conditional
    // update is what decides who gets the last unit.
    if spec.kind != RewardKind::CashOffset && !repo::take_stock(conn, reward_id, now).await? {
        return Err(refuse(RewardRefusal::OutOfStock));
    }
    let coupon = match &spec.coupon_template_id {
        Some(template) => Some(
            coupons::issue_in(
                app,
                conn,
                &member.id,
                template,
                CouponSource::Redemption,
                redemption_id,
                now,
            )
            .await?,
        ),
        None => None,
    };
    Ok(RewardOutcome {
        reward_id: row.id,
        name: row.name,
        kind: spec.kind,
        units,
        offset_fen: (spec.kind == RewardKind::CashOffset).then_some(units * 100),
        coupon,
    })
}
