//! The POS checkout quote: find the guest (phone, member code, or the
//! short-lived pay code their phone shows as a QR), and answer in one call
//! what the cashier needs — tier, balance, points usable now, the most points
//! this bill can take as cash offset, and what the order would earn.
//! The member's coupons come judged against the bill, usable ones first.

use super::ledger::rfc3339;
use super::orders::{preview_order, PreviewOrder};
use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::earning::ExplanationLine;
use regulars_core::order::{Channel, OrderLine};
use regulars_core::phone::Phone;
use regulars_core::tier::Tier;
use regulars_core::DomainError;
use regulars_store::{ledger as ledger_repo, members, now_ms, staff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a pay code stays valid.
pub const PAY_CODE_SECONDS: i64 = 120;
/// Cash offset: points per ¥1 (setting `points.offset_points_per_yuan`).
pub const OFFSET_SETTING: &str = "points.offset_points_per_yuan";
const DEFAULT_OFFSET: i64 = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct PayCode {
    /// Show as a QR code; the POS scans it into `pay_code`.
    pub code: String,
    pub expires_at: String,
}

/// Signature over `member_id` and expiry under the `pay_code` domain,
/// 64 bits (a pay code lives two minutes).
fn sign(app: &Regulars, member_id: &str, expires_ms: i64) -> String {
    app.signature("pay_code", &format!("{member_id}|{expires_ms}"), 8)
}

/// `POST /api/v1/members/{id}/pay-code`: a code valid for two minutes.
pub async fn issue_pay_code(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
) -> AppResult<PayCode> {
    caller.check(Action::PointsRead, None)?;
    let mut conn = app.db.reader().await?;
    ledger_repo::read_member(&mut conn, member_id)
        .await?
        .filter(|m| m.erased_at.is_none())
        .ok_or(AppError::NotFound { what: "member" })?;
    let expires = now_ms() + PAY_CODE_SECONDS * 1000;
    Ok(PayCode {
        code: format!("{expires}.{member_id}.{}", sign(app, member_id, expires)),
        expires_at: rfc3339(app, expires),
    })
}

/// The member a pay code names, if it is genuine and current.
fn open_pay_code(app: &Regulars, code: &str) -> AppResult<String> {
    let bad = || {
        AppError::unprocessable(
            "invalid_pay_code",
            "the pay code is not valid; ask the guest to refresh it",
        )
    };
    let mut parts = code.trim().splitn(3, '.');
    let (Some(expires), Some(member_id), Some(signature)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let expires: i64 = expires.parse().map_err(|_| bad())?;
    if signature.len() != 16
        || !app.signature_matches("pay_code", &format!("{member_id}|{expires}"), signature)
    {
        return Err(bad());
    }
    if expires < now_ms() {
        return Err(AppError::unprocessable(
            "pay_code_expired",
            "the pay code has expired; ask the guest to refresh it",
        ));
    }
    Ok(member_id.to_string())
}

/// `POST /api/v1/checkout/quote`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub store_code: String,
    /// One of these finds the guest.
    pub member_phone: Option<String>,
    pub member_code: Option<String>,
    pub pay_code: Option<String>,
    pub channel: Channel,
    pub items: Vec<OrderLine>,
    /// What the bill comes to before any points; defaults to the lines' total.
    pub paid_fen: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Quote {
    pub member_id: String,
    pub member_code: String,
    pub tier: Tier,
    pub balance: i64,
    /// Points not past their expiry: what can be spent now.
    pub usable_points: i64,
    /// Points per ¥1 of cash offset.
    pub offset_points_per_yuan: i64,
    /// The most points this bill can take (whole yuan, never above the bill).
    pub max_redeemable_points: i64,
    pub max_offset_fen: i64,
    /// What the order would earn as it stands (before any offset).
    pub would_earn: i64,
    pub explanation: Vec<ExplanationLine>,
    /// The member's unexpired coupons judged against these items: usable
    /// ones first, the largest discount first; the others say why not.
    pub coupons: Vec<super::coupons::CouponVerdict>,
}

pub async fn quote(app: &Regulars, caller: &Principal, input: QuoteRequest) -> AppResult<Quote> {
    caller.check(Action::PointsRead, Some(&input.store_code))?;
    let mut conn = app.db.reader().await?;
    let member = match (&input.member_phone, &input.member_code, &input.pay_code) {
        (Some(phone), None, None) => {
            let phone = Phone::parse(phone)?;
            members::find_by_phone_index(&mut conn, &app.phone_index(&phone)).await?
        }
        (None, Some(code), None) => members::find_by_member_code(&mut conn, code.trim()).await?,
        (None, None, Some(code)) => {
            let id = open_pay_code(app, code)?;
            members::get_member(&mut conn, &id).await?
        }
        _ => {
            return Err(DomainError::invalid(
                "member_phone",
                "send exactly one of member_phone, member_code, pay_code",
            )
            .into())
        }
    }
    .filter(|m| m.erased_at.is_none())
    .ok_or(AppError::NotFound { what: "member" })?;
    let lines_total: i64 = input
        .items
        .iter()
        .filter(|l| !l.voided && !l.comped && !l.staff_meal)
        .map(|l| l.net_fen())
        .sum();
    let paid_fen = input.paid_fen.unwrap_or(lines_total);
    let rate = staff::get_setting(&mut conn, OFFSET_SETTING)
        .await?
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|r| *r > 0)
        .unwrap_or(DEFAULT_OFFSET);
    let usable: i64 = ledger_repo::open_lots(&mut conn, &member.id, now_ms())
        .await?
        .iter()
        .map(|l| l.remaining)
        .sum();
    let coupons = super::coupons::usable_for_bill(
        app,
        &mut conn,
        &member.id,
        &input.store_code,
        &input.items,
    )
    .await?;
    drop(conn);
    let preview = preview_order(
        app,
        caller,
        PreviewOrder {
            store_code: input.store_code,
            member_id: Some(member.id.clone()),
            tier: None,
            occurred_at: None,
            channel: input.channel,
            items: input.items,
            paid_fen,
        },
    )
    .await?;
    let whole_yuan = (usable / rate).min(paid_fen.max(0) / 100);
    Ok(Quote {
        member_id: member.id,
        member_code: member.member_code,
        tier: Tier::parse(&member.tier).unwrap_or(Tier::Regular),
        balance: member.points_balance,
        usable_points: usable,
        offset_points_per_yuan: rate,
        max_redeemable_points: whole_yuan * rate,
        max_offset_fen: whole_yuan * 100,
        would_earn: preview.points,
        explanation: preview.explanation,
        coupons,
    })
}
