//! Coupons: templates marketing defines, coupons issued to members (by a
//! reward redemption, the birthday pack, a compensation, a campaign or by
//! hand), checked against a bill and redeemed at the POS exactly once.
//!
//! Every issue goes through [`issue_in`], inside the caller's transaction,
//! with a once-guard `(source, source_ref, template)`: a retried redemption,
//! birthday run or complaint never issues a second coupon.

use super::ledger::{self, rfc3339, Recorded};
use super::orders::parse_time;
use super::points::{idempotency_key, once};
use super::{AppError, AppResult, Regulars};
use chrono::TimeZone;
use regulars_core::access::{Action, Principal};
use regulars_core::coupon::{
    check_state, display_code, new_code, normalize_code, Bill, CouponStatus, CouponTemplate,
    Refusal,
};
use regulars_core::order::OrderLine;
use regulars_core::DomainError;
use regulars_store::ledger as ledger_repo;
use regulars_store::rewards::{self as repo, CouponRow, NewCoupon, Redeemed, TemplateRow};
use regulars_store::{chain, commit, now_ms, staff, Conn};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where a coupon came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponSource {
    /// Bought with points from the rewards catalogue.
    Redemption,
    /// The tier's birthday pack.
    Birthday,
    /// Service recovery after a complaint.
    Compensation,
    Campaign,
    /// Given by staff.
    Manual,
}

impl CouponSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponSource::Redemption => "redemption",
            CouponSource::Birthday => "birthday",
            CouponSource::Compensation => "compensation",
            CouponSource::Campaign => "campaign",
            CouponSource::Manual => "manual",
        }
    }
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub id: String,
    pub active: bool,
    #[serde(flatten)]
    pub template: CouponTemplate,
    /// The template in one line, as the guest reads it.
    pub summary: String,
    pub created_at: String,
}

fn parse_template(row: &TemplateRow) -> AppResult<CouponTemplate> {
    serde_json::from_str(&row.spec_json).map_err(|e| {
        AppError::Store(regulars_store::StoreError::Corrupt(format!(
            "coupon template {}: {e}",
            row.id
        )))
    })
}

fn template_view(app: &Regulars, row: &TemplateRow) -> AppResult<TemplateView> {
    let template = parse_template(row)?;
    Ok(TemplateView {
        id: row.id.clone(),
        active: row.active != 0,
        summary: template.describe(),
        template,
        created_at: rfc3339(app, row.created_at),
    })
}

/// `POST /api/v1/coupon-templates`
pub async fn create_template(
    app: &Regulars,
    caller: &Principal,
    template: CouponTemplate,
) -> AppResult<TemplateView> {
    caller.check(Action::RulesManage, None)?;
    template.validate()?;
    let mut tx = app.db.begin().await?;
    for store in &template.stores {
        if chain::get_store(&mut tx, store).await?.is_none() {
            return Err(AppError::unprocessable(
                "unknown_store",
                format!("no store {store}"),
            ));
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let json = serde_json::to_string(&template)
        .map_err(|e| AppError::unprocessable("invalid_template", e.to_string()))?;
    repo::insert_template(
        &mut tx,
        &id,
        template.name.trim(),
        &json,
        &caller.actor,
        now,
    )
    .await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "coupon_template.create",
        &format!("coupon_template:{id}"),
        &template.describe(),
        now,
    )
    .await?;
    commit(tx).await?;
    let mut conn = app.db.reader().await?;
    let row = repo::get_template(&mut conn, &id)
        .await?
        .ok_or(AppError::NotFound { what: "template" })?;
    template_view(app, &row)
}

/// `GET /api/v1/coupon-templates`
pub async fn list_templates(app: &Regulars, caller: &Principal) -> AppResult<Vec<TemplateView>> {
    caller.check(Action::PointsRead, None)?;
    let mut conn = app.db.reader().await?;
    repo::list_templates(&mut conn)
        .await?
        .iter()
        .map(|row| template_view(app, row))
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateChange {
    /// A retired template issues no new coupons; coupons already out stay valid.
    pub active: bool,
}

/// `PATCH /api/v1/coupon-templates/{id}`
pub async fn change_template(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    change: TemplateChange,
) -> AppResult<TemplateView> {
    caller.check(Action::RulesManage, None)?;
    let mut tx = app.db.begin().await?;
    if !repo::set_template_active(&mut tx, id, change.active).await? {
        return Err(AppError::NotFound {
            what: "coupon template",
        });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "coupon_template.change",
        &format!("coupon_template:{id}"),
        if change.active { "active" } else { "retired" },
        now_ms(),
    )
    .await?;
    commit(tx).await?;
    let mut conn = app.db.reader().await?;
    let row = repo::get_template(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound {
            what: "coupon template",
        })?;
    template_view(app, &row)
}

/// A template that exists and still issues coupons.
pub(crate) async fn active_template(
    conn: &mut Conn,
    id: &str,
) -> AppResult<(TemplateRow, CouponTemplate)> {
    let row = repo::get_template(conn, id)
        .await?
        .filter(|t| t.active != 0)
        .ok_or_else(|| {
            AppError::unprocessable(
                "unknown_coupon_template",
                format!("no active coupon template {id}"),
            )
        })?;
    let template = parse_template(&row)?;
    Ok((row, template))
}

// ---------------------------------------------------------------------------
// Issuing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CouponView {
    /// As printed and typed: `ABCD-EFGH-JKMN-PQRS`.
    pub code: String,
    pub template_id: String,
    pub name: String,
    pub summary: String,
    pub member_id: String,
    pub source: String,
    pub status: CouponStatus,
    pub issued_at: String,
    pub valid_from: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_fen: Option<i64>,
}

fn coupon_view(app: &Regulars, row: &CouponRow) -> AppResult<CouponView> {
    let template: CouponTemplate = serde_json::from_str(&row.spec_json).map_err(|e| {
        AppError::Store(regulars_store::StoreError::Corrupt(format!(
            "coupon template {}: {e}",
            row.template_id
        )))
    })?;
    Ok(CouponView {
        code: display_code(&row.code),
        template_id: row.template_id.clone(),
        name: row.template_name.clone(),
        summary: template.describe(),
        member_id: row.member_id.clone(),
        source: row.source.clone(),
        status: CouponStatus::parse(&row.status).unwrap_or(CouponStatus::Void),
        issued_at: rfc3339(app, row.issued_at),
        valid_from: rfc3339(app, row.valid_from),
        expires_at: rfc3339(app, row.expires_at),
        redeemed_at: row.redeemed_at.map(|t| rfc3339(app, t)),
        redeemed_store: row.redeemed_store.clone(),
        redeemed_order: row.redeemed_order.clone(),
        discount_fen: row.discount_fen,
    })
}

/// Issue one coupon of `template` to a member inside the caller's
/// transaction, unless `(source, source_ref, template)` already issued one;
/// either way answers that coupon. Writes `coupon.issued` to the outbox.
pub(crate) async fn issue_in(
    app: &Regulars,
    conn: &mut Conn,
    member_id: &str,
    template_id: &str,
    source: CouponSource,
    source_ref: &str,
    now: i64,
) -> AppResult<CouponView> {
    let (row, template) = active_template(conn, template_id).await?;
    let today = app
        .timezone
        .timestamp_millis_opt(now)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let after_last_day = template.last_day(today) + chrono::Days::new(1);
    let expires_at = app
        .timezone
        .from_local_datetime(&after_last_day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(now);
    if expires_at <= now {
        return Err(AppError::unprocessable(
            "coupon_template_expired",
            format!(
                "coupons of {} were valid until {}",
                row.name,
                template.last_day(today)
            ),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let code = new_code();
    let fresh = repo::insert_coupon(
        conn,
        &NewCoupon {
            id: &id,
            code: &code,
            template_id,
            member_id,
            source: source.as_str(),
            source_ref,
            issued_at: now,
            valid_from: now,
            expires_at,
        },
    )
    .await?;
    let stored = repo::coupon_by_source(conn, source.as_str(), source_ref, template_id)
        .await?
        .ok_or(AppError::NotFound { what: "coupon" })?;
    let view = coupon_view(app, &stored)?;
    if fresh {
        ledger_repo::emit(
            conn,
            "coupon.issued",
            Some(member_id),
            &stored.id,
            &serde_json::json!({"member_id": member_id, "coupon_id": stored.id,
                "template_id": template_id, "name": view.name, "source": source.as_str(),
                "expires_at": view.expires_at})
            .to_string(),
            now,
        )
        .await?;
    }
    Ok(view)
}

/// `POST /api/v1/members/{id}/coupons`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCoupon {
    pub template_id: String,
    /// `manual` (default), `compensation` or `campaign`.
    #[serde(default = "manual")]
    pub source: CouponSource,
    /// Why, for the audit log (e.g. the complaint it puts right).
    pub reason: Option<String>,
}

fn manual() -> CouponSource {
    CouponSource::Manual
}

/// Give a member a coupon. Send an `Idempotency-Key`: a retry answers the
/// same coupon (200); the key with another request is 409.
pub async fn issue(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    key: Option<&str>,
    input: IssueCoupon,
) -> AppResult<Recorded> {
    caller.check(Action::CouponIssue, None)?;
    let key = idempotency_key(key)?;
    if matches!(
        input.source,
        CouponSource::Redemption | CouponSource::Birthday
    ) {
        return Err(DomainError::invalid(
            "source",
            "redemption and birthday coupons are issued by the engine; use manual, compensation or campaign",
        )
        .into());
    }
    if let Some(reason) = &input.reason {
        regulars_core::member::parse_note("reason", reason)?;
    }
    let hash = ledger::request_hash(&input);
    let scope = format!("coupon:{member_id}");
    let source_ref = format!("{member_id}:{key}");
    let actor = caller.actor.clone();
    let member_id = member_id.to_string();
    let app2 = app.clone();
    once(app, &scope, &key, &hash, move |tx| {
        Box::pin(async move {
            let now = now_ms();
            ledger_repo::lock_member(tx, &member_id, now)
                .await?
                .filter(|m| m.erased_at.is_none())
                .ok_or(AppError::NotFound { what: "member" })?;
            let coupon = issue_in(
                &app2,
                tx,
                &member_id,
                &input.template_id,
                input.source,
                &source_ref,
                now,
            )
            .await?;
            staff::audit(
                tx,
                &actor,
                "coupon.issue",
                &format!("member:{member_id}"),
                &format!(
                    "{} {} {}",
                    input.source.as_str(),
                    coupon.name,
                    input.reason.as_deref().unwrap_or("")
                ),
                now,
            )
            .await?;
            Ok(Recorded::first(&coupon)?.json)
        })
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CouponFilter {
    /// `usable` (default: issued and not expired) or `all`.
    pub status: Option<String>,
}

/// `GET /api/v1/members/{id}/coupons`
pub async fn member_coupons(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
    filter: CouponFilter,
) -> AppResult<Vec<CouponView>> {
    caller.check(Action::PointsRead, None)?;
    let usable_at = match filter.status.as_deref() {
        None | Some("usable") => Some(now_ms()),
        Some("all") => None,
        Some(_) => return Err(DomainError::invalid("status", "usable or all").into()),
    };
    let mut conn = app.db.reader().await?;
    ledger_repo::read_member(&mut conn, member_id)
        .await?
        .ok_or(AppError::NotFound { what: "member" })?;
    repo::coupons_of(&mut conn, member_id, usable_at, 500)
        .await?
        .iter()
        .map(|row| coupon_view(app, row))
        .collect()
}

// ---------------------------------------------------------------------------
// At the till
// ---------------------------------------------------------------------------

/// `POST /api/v1/coupons/validate`: would this coupon work on this bill?
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponCheck {
    pub code: String,
    pub store_code: String,
    pub items: Vec<OrderLine>,
    /// The bill's time (RFC 3339); default now. Weekday and hour windows are
    /// read on the chain's wall clock.
    pub occurred_at: Option<String>,
    /// When the guest is known: a coupon of another member is refused.
    pub member_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponVerdict {
    pub usable: bool,
    /// What the coupon takes off this bill (0 when not usable).
    pub discount_fen: i64,
    /// Why not, when not: a stable code and a sentence for the cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalView>,
    pub coupon: CouponView,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefusalView {
    pub code: String,
    pub message: String,
}

impl From<&Refusal> for RefusalView {
    fn from(r: &Refusal) -> RefusalView {
        RefusalView {
            code: r.code().to_string(),
            message: r.to_string(),
        }
    }
}

/// Check a coupon row against a bill: its state at `now`, then the template.
pub(crate) fn evaluate(
    row: &CouponRow,
    store_code: &str,
    local_time: chrono::NaiveDateTime,
    lines: &[OrderLine],
    now: i64,
) -> Result<i64, Refusal> {
    let status = CouponStatus::parse(&row.status).unwrap_or(CouponStatus::Void);
    check_state(status, row.valid_from, row.expires_at, now)?;
    let template: CouponTemplate =
        serde_json::from_str(&row.spec_json).map_err(|_| Refusal::Void)?;
    template.discount(&Bill {
        store_code,
        local_time,
        lines,
    })
}

fn check_lines(lines: &[OrderLine]) -> AppResult<()> {
    if lines.len() > regulars_core::order::MAX_LINES {
        return Err(DomainError::invalid("items", "at most 500 lines").into());
    }
    for (i, l) in lines.iter().enumerate() {
        if l.quantity < 0 || !(0..=regulars_core::order::MAX_ORDER_FEN).contains(&l.unit_price_fen)
        {
            return Err(DomainError::invalid(
                "items",
                format!(
                    "line {}: quantity and unit_price_fen must not be negative",
                    i + 1
                ),
            )
            .into());
        }
    }
    Ok(())
}

async fn find_coupon(conn: &mut Conn, typed: &str) -> AppResult<CouponRow> {
    let code = normalize_code(typed).ok_or_else(|| {
        DomainError::invalid(
            "code",
            "a coupon code is 16 letters and digits, e.g. ABCD-EFGH-JKMN-PQRS",
        )
    })?;
    repo::coupon_by_code(conn, &code)
        .await?
        .ok_or(AppError::NotFound { what: "coupon" })
}

fn bill_time(app: &Regulars, occurred_at: Option<&str>) -> AppResult<chrono::NaiveDateTime> {
    Ok(match occurred_at {
        Some(t) => parse_time(app, "occurred_at", t)?.1,
        None => chrono::Utc::now()
            .with_timezone(&app.timezone)
            .naive_local(),
    })
}

pub async fn validate(
    app: &Regulars,
    caller: &Principal,
    input: CouponCheck,
) -> AppResult<CouponVerdict> {
    caller.check(Action::PointsRead, Some(&input.store_code))?;
    check_lines(&input.items)?;
    let local = bill_time(app, input.occurred_at.as_deref())?;
    let mut conn = app.db.reader().await?;
    let row = find_coupon(&mut conn, &input.code).await?;
    let verdict = if input
        .member_id
        .as_ref()
        .is_some_and(|m| m != &row.member_id)
    {
        Err(RefusalView {
            code: "coupon_other_member".into(),
            message: "this coupon belongs to another member".into(),
        })
    } else {
        evaluate(&row, &input.store_code, local, &input.items, now_ms())
            .map_err(|r| RefusalView::from(&r))
    };
    Ok(CouponVerdict {
        usable: verdict.is_ok(),
        discount_fen: *verdict.as_ref().unwrap_or(&0),
        refusal: verdict.err(),
        coupon: coupon_view(app, &row)?,
    })
}

/// `POST /api/v1/coupons/{code}/redeem`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponRedemption {
    pub store_code: String,
    /// The order the coupon is used on: a retry for the same order answers
    /// the first result (200, `Idempotent-Replayed: true`).
    pub pos_order_id: String,
    pub items: Vec<OrderLine>,
    pub occurred_at: Option<String>,
    pub member_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CouponReceipt {
    pub code: String,
    pub member_id: String,
    pub store_code: String,
    pub pos_order_id: String,
    pub discount_fen: i64,
    pub redeemed_at: String,
}

fn receipt(app: &Regulars, row: &CouponRow) -> AppResult<Recorded> {
    Recorded::first(&CouponReceipt {
        code: display_code(&row.code),
        member_id: row.member_id.clone(),
        store_code: row.redeemed_store.clone().unwrap_or_default(),
        pos_order_id: row.redeemed_order.clone().unwrap_or_default(),
        discount_fen: row.discount_fen.unwrap_or(0),
        redeemed_at: rfc3339(app, row.redeemed_at.unwrap_or(0)),
    })
}

/// Use a coupon on an order, exactly once: the first order to redeem it
/// wins; a retry from that order gets the same answer; any other order gets
/// 409 `coupon_used`. A coupon that does not fit the bill is 422 with the
/// refusal's code and nothing changes.
pub async fn redeem(
    app: &Regulars,
    caller: &Principal,
    typed_code: &str,
    input: CouponRedemption,
) -> AppResult<Recorded> {
    caller.check(Action::PointsRedeem, Some(&input.store_code))?;
    check_lines(&input.items)?;
    let pos_order_id = input.pos_order_id.trim();
    if pos_order_id.is_empty() || pos_order_id.len() > 64 {
        return Err(DomainError::invalid("pos_order_id", "1 to 64 characters").into());
    }
    let local = bill_time(app, input.occurred_at.as_deref())?;
    let hash = ledger::request_hash(&(&input.store_code, pos_order_id));
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let row = find_coupon(&mut tx, typed_code).await?;
    let replay = |row: &CouponRow| -> AppResult<Recorded> {
        if row.redeem_hash.as_deref() == Some(hash.as_str()) {
            let mut r = receipt(app, row)?;
            r.replayed = true;
            Ok(r)
        } else {
            Err(AppError::Conflict {
                code: "coupon_used",
                message: format!(
                    "this coupon was used on order {} at {}",
                    row.redeemed_order.as_deref().unwrap_or("?"),
                    row.redeemed_store.as_deref().unwrap_or("?")
                ),
            })
        }
    };
    if row.status == CouponStatus::Redeemed.as_str() {
        return replay(&row);
    }
    if input
        .member_id
        .as_ref()
        .is_some_and(|m| m != &row.member_id)
    {
        return Err(AppError::unprocessable(
            "coupon_other_member",
            "this coupon belongs to another member",
        ));
    }
    let discount = evaluate(&row, &input.store_code, local, &input.items, now)
        .map_err(|r| AppError::unprocessable(r.code(), r.to_string()))?;
    let won = repo::mark_redeemed(
        &mut tx,
        &Redeemed {
            coupon_id: &row.id,
            at: now,
            store_code: &input.store_code,
            pos_order_id,
            discount_fen: discount,
            request_hash: &hash,
        },
    )
    .await?;
    let stored = repo::coupon_by_code(&mut tx, &row.code)
        .await?
        .ok_or(AppError::NotFound { what: "coupon" })?;
    if !won {
        // Another request redeemed it between our read and our write.
        tx.rollback()
            .await
            .map_err(regulars_store::StoreError::from_sqlx)?;
        return replay(&stored);
    }
    ledger_repo::emit(
        &mut tx,
        "coupon.redeemed",
        Some(&row.member_id),
        &row.id,
        &serde_json::json!({"member_id": row.member_id, "coupon_id": row.id,
            "store_code": input.store_code, "pos_order_id": pos_order_id, "discount_fen": discount})
        .to_string(),
        now,
    )
    .await?;
    commit(tx).await?;
    receipt(app, &stored)
}

/// `POST /api/v1/coupons/{code}/void`: withdraw a coupon not yet used.
pub async fn void(app: &Regulars, caller: &Principal, typed_code: &str) -> AppResult<CouponView> {
    caller.check(Action::CouponIssue, None)?;
    let mut tx = app.db.begin().await?;
    let row = find_coupon(&mut tx, typed_code).await?;
    if !repo::void_coupon(&mut tx, &row.id).await? {
        return Err(AppError::Conflict {
            code: "coupon_not_issued",
            message: format!("the coupon is {}, not issued", row.status),
        });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "coupon.void",
        &format!("member:{}", row.member_id),
        &row.template_name,
        now_ms(),
    )
    .await?;
    let stored = repo::coupon_by_code(&mut tx, &row.code)
        .await?
        .ok_or(AppError::NotFound { what: "coupon" })?;
    commit(tx).await?;
    coupon_view(app, &stored)
}

/// The member's usable coupons judged against a bill, best first: what the
/// checkout quote shows the cashier.
pub(crate) async fn usable_for_bill(
    app: &Regulars,
    conn: &mut Conn,
    member_id: &str,
    store_code: &str,
    lines: &[OrderLine],
) -> AppResult<Vec<CouponVerdict>> {
    let now = now_ms();
    let local = chrono::Utc::now()
        .with_timezone(&app.timezone)
        .naive_local();
    let mut out = Vec::new();
    for row in repo::coupons_of(conn, member_id, Some(now), 100).await? {
        let verdict = evaluate(&row, store_code, local, lines, now);
        out.push(CouponVerdict {
            usable: verdict.is_ok(),
            discount_fen: *verdict.as_ref().unwrap_or(&0),
            refusal: verdict.as_ref().err().map(RefusalView::from),
            coupon: coupon_view(app, &row)?,
        });
    }
    out.sort_by_key(|v| (!v.usable, -v.discount_fen));
    Ok(out)
}
