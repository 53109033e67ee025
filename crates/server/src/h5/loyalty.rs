//! Home (balance, expiring points, tier progress, the QR for the POS), the
//! points history with reasons, rewards with "redeem", and coupons.

use super::{qr_svg, Chrome, Member};
use crate::app::{member_self, AppError};
use crate::console::frame::{redirect, render, yuan, FieldErrors};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::secret;
use regulars_core::tier::Tier;
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/m", get(home))
        .route("/m/", get(home))
        .route("/m/points", get(points))
        .route("/m/rewards", get(rewards))
        .route("/m/rewards/redeem", post(redeem))
        .route("/m/coupons", get(coupons))
}

fn tier_name(c: &Chrome, tier: Tier) -> String {
    match tier {
        Tier::Regular => c.t("普通会员", "Regular"),
        Tier::Silver => c.t("银卡会员", "Silver"),
        Tier::Gold => c.t("金卡会员", "Gold"),
        Tier::BlackGold => c.t("黑金会员", "Black gold"),
    }
    .to_string()
}

#[derive(Template)]
#[template(path = "h5/home.html")]
struct HomePage {
    c: Chrome,
    name: String,
    member_code: String,
    balance: i64,
    /// Points expiring in the next 30 days, and when the first of them go.
    expiring_soon: i64,
    expiring_first: String,
    tier: String,
    next_tier: Option<String>,
    to_next: String,
    /// 0–100: how far the spend is towards the next tier.
    progress: i64,
    qr: String,
    pay_code: String,
}

async fn home(State(state): State<ApiState>, member: Member) -> Response {
    let app = &state.regulars;
    let me = &member.session;
    let c = member.chrome();
    let (profile, tier, points, pay) = match tokio::try_join!(
        member_self::profile(app, me),
        member_self::tier(app, me),
        member_self::points(app, me, None, 1),
        member_self::pay_code(app, me),
    ) {
        Ok(all) => all,
        Err(e) => return member.fail(e),
    };
    let (points, _) = points;
    let horizon = (app.today() + chrono::Days::new(30)).to_string();
    let soon: Vec<_> = points.expiring.iter().filter(|e| e.on <= horizon).collect();
    let progress = match tier.spend_to_next_fen {
        Some(left) if left + tier.qualifying_spend_fen > 0 => {
            tier.qualifying_spend_fen * 100 / (left + tier.qualifying_spend_fen)
        }
        Some(_) => 0,
        None => 100,
    };
    render(
        StatusCode::OK,
        HomePage {
            name: profile
                .name_masked
                .clone()
                .unwrap_or_else(|| profile.phone_masked.clone()),
            member_code: profile.member_code,
            balance: points.balance,
            expiring_soon: soon.iter().map(|e| e.points).sum(),
            expiring_first: soon.first().map(|e| e.on.clone()).unwrap_or_default(),
            tier: tier_name(&c, tier.tier),
            next_tier: tier.next_tier.map(|t| tier_name(&c, t)),
            to_next: yuan(tier.spend_to_next_fen.unwrap_or(0)),
            progress: progress.clamp(0, 100),
            qr: qr_svg(&pay.code),
            pay_code: pay.code,
            c,
        },
    )
}

pub(super) struct EntryRow {
    id: String,
    kind: String,
    kind_label: String,
    points: i64,
    reason: String,
    date: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "h5/points.html")]
struct PointsPage {
    c: Chrome,
    balance: i64,
    entries: Vec<EntryRow>,
    next_before: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    before: Option<String>,
}

fn kind_label(c: &Chrome, kind: &str) -> String {
    match kind {
        "earn" => c.t("消费积分", "Earned"),
        "redeem" => c.t("兑换", "Redeemed"),
        "expire" => c.t("过期", "Expired"),
        "reverse" => c.t("退款扣回", "Refund"),
        "adjust" => c.t("调整", "Adjustment"),
        "transfer_in" => c.t("转入", "Transfer in"),
        "transfer_out" => c.t("转出", "Transfer out"),
        "bonus" => c.t("奖励", "Bonus"),
        "compensation" => c.t("补偿", "Compensation"),
        other => other,
    }
    .to_string()
}

async fn points(
    State(state): State<ApiState>,
    member: Member,
    Query(q): Query<PageQuery>,
) -> Response {
    // A cursor that is not a number is the first page, not an error.
    let before = q.before.filter(|b| b.parse::<i64>().is_ok());
    let (view, expiries) =
        match member_self::points(&state.regulars, &member.session, before, 50).await {
            Ok(v) => v,
            Err(e) => return member.fail(e),
        };
    let c = member.chrome();
    let entries = view
        .entries
        .into_iter()
        .map(|e| {
            let kind = e.kind.as_str().to_string();
            EntryRow {
                kind_label: kind_label(&c, &kind),
                expires: expiries.get(&e.id).cloned().unwrap_or_default(),
                date: e.at.get(..10).unwrap_or("").to_string(),
                id: e.id,
                kind,
                points: e.points,
                reason: e.reason,
            }
        })
        .collect();
    render(
        StatusCode::OK,
        PointsPage {
            c,
            balance: view.balance,
            entries,
            next_before: view.next_before,
        },
    )
}

pub(super) struct RewardRow {
    id: String,
    name: String,
    cost: i64,
    description: String,
    eligible: bool,
    affordable: bool,
    why_not: String,
}

#[derive(Template)]
#[template(path = "h5/rewards.html")]
struct RewardsPage {
    c: Chrome,
    balance: i64,
    rewards: Vec<RewardRow>,
    /// The idempotency key of this rendering's redeem forms.
    key: String,
    notice: Option<String>,
    errors: FieldErrors,
}

async fn rewards_page(
    state: &ApiState,
    member: &Member,
    status: StatusCode,
    notice: Option<String>,
    errors: FieldErrors,
) -> Response {
    let app = &state.regulars;
    let (catalogue, points) = match tokio::try_join!(
        member_self::rewards(app, &member.session),
        member_self::points(app, &member.session, None, 1),
    ) {
        Ok(v) => v,
        Err(e) => return member.fail(e),
    };
    let c = member.chrome();
    let balance = points.0.balance;
    let rewards = catalogue
        .into_iter()
        // Points off a bill are spent at the till, not here.
        .filter(|r| r.spec.kind.as_str() != "cash_offset")
        .map(|r| {
            let affordable = r.spec.points_cost <= balance;
            // The button shows whenever the rules allow it; with too few
            // points the hint says so and the redemption is refused.
            let eligible = r.eligible.unwrap_or(false);
            let why_not = match (&r.refusal, affordable) {
                (Some(refusal), _) => match refusal.code.as_str() {
                    "reward_tier_too_low" => c.t("会员等级不够", "Your tier is too low"),
                    "reward_out_of_stock" => c.t("已兑完", "Out of stock"),
                    "reward_limit_reached" => c.t("已达兑换上限", "Limit reached"),
                    _ => c.t("暂不可兑换", "Not available now"),
                }
                .to_string(),
                (None, false) => c.t("积分不足", "Not enough points").to_string(),
                (None, true) => String::new(),
            };
            RewardRow {
                id: r.id,
                name: r.spec.name,
                cost: r.spec.points_cost,
                description: r.spec.description.unwrap_or_default(),
                eligible,
                affordable,
                why_not,
            }
        })
        .collect();
    render(
        status,
        RewardsPage {
            c,
            balance,
            rewards,
            key: secret::random_token(16),
            notice,
            errors,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct RewardsQuery {
    redeemed: Option<String>,
}

async fn rewards(
    State(state): State<ApiState>,
    member: Member,
    Query(q): Query<RewardsQuery>,
) -> Response {
    let notice = q
        .redeemed
        .filter(|b| b.parse::<i64>().is_ok())
        .map(|balance| {
            format!(
                "{} {balance}",
                member
                    .lang
                    .t("兑换成功！当前积分", "Redeemed! Your balance is now")
            )
        });
    rewards_page(
        &state,
        &member,
        StatusCode::OK,
        notice,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct RedeemForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reward_id: String,
    #[serde(default)]
    key: String,
}

async fn redeem(
    State(state): State<ApiState>,
    member: Member,
    Form(form): Form<RedeemForm>,
) -> Response {
    if let Some(refused) = member.csrf_refusal(&form.csrf) {
        return refused;
    }
    let key = format!("h5:{}", form.key.trim());
    match member_self::redeem(&state.regulars, &member.session, &form.reward_id, &key).await {
        Ok(receipt) => redirect(&format!("/m/rewards?redeemed={}", receipt.balance)),
        Err(e) => {
            let lang = member.lang;
            let mut errors = FieldErrors::default();
            let message = match &e {
                AppError::Unprocessable { code, .. } if *code == "insufficient_points" => lang.t(
                    "积分不足，未兑换",
                    "Not enough points; nothing was redeemed",
                ),
                AppError::Unprocessable { .. } | AppError::Conflict { .. } => lang.t(
                    "这份奖励现在不能兑换，未扣积分",
                    "This reward cannot be redeemed now; no points were taken",
                ),
                AppError::NotFound { .. } => {
                    lang.t("找不到这份奖励", "That reward is no longer offered")
                }
                _ => return member.fail(e),
            };
            errors.add(&format!("reward-{}", form.reward_id), message);
            errors.add("form", message);
            rewards_page(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                errors,
            )
            .await
        }
    }
}

pub(super) struct CouponRow {
    code: String,
    name: String,
    summary: String,
    expires: String,
    qr: String,
}

#[derive(Template)]
#[template(path = "h5/coupons.html")]
struct CouponsPage {
    c: Chrome,
    coupons: Vec<CouponRow>,
}

async fn coupons(State(state): State<ApiState>, member: Member) -> Response {
    let list = match member_self::coupons(&state.regulars, &member.session).await {
        Ok(v) => v,
        Err(e) => return member.fail(e),
    };
    render(
        StatusCode::OK,
        CouponsPage {
            c: member.chrome(),
            coupons: list
                .into_iter()
                .map(|v| CouponRow {
                    qr: qr_svg(&v.code),
                    expires: v.expires_at.get(..10).unwrap_or("").to_string(),
                    code: v.code,
                    name: v.name,
                    summary: v.summary,
                })
                .collect(),
        },
    )
}
