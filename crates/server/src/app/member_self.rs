//! What a signed-in member may do on the H5 pages, always on their own
//! account: every function takes the [`MemberSession`] and nothing that
//! names another member. They call the same services as the REST API with
//! the member's principal ([`Principal::member`], role `member`), so the
//! permission matrix still decides, and the audit log names `member:<id>`.
//!
//! [`Principal::member`]: regulars_core::access::Principal::member

use super::member_login::MemberSession;
use super::{checkout, coupons, feedback, member_messages, members, points, rewards};
use super::{AppError, AppResult, Regulars};
use regulars_core::feedback::FeedbackChannel;
use regulars_core::member::ConsentChannel;
use regulars_store::{chain, commit, member_login as repo, members as member_repo, now_ms, staff};
use serde::Serialize;
use std::collections::BTreeMap;

pub async fn profile(app: &Regulars, me: &MemberSession) -> AppResult<members::MemberView> {
    members::get_member(app, &me.principal(), &me.member_id, false).await
}

pub async fn tier(app: &Regulars, me: &MemberSession) -> AppResult<points::TierView> {
    points::tier_of(app, &me.principal(), &me.member_id).await
}

pub async fn pay_code(app: &Regulars, me: &MemberSession) -> AppResult<checkout::PayCode> {
    checkout::issue_pay_code(app, &me.principal(), &me.member_id).await
}

/// One page of the history, newest first, each positive entry with the
/// date its points expire (`YYYY-MM-DD`, the chain's time zone).
pub async fn points(
    app: &Regulars,
    me: &MemberSession,
    before: Option<String>,
    limit: i64,
) -> AppResult<(points::PointsView, BTreeMap<String, String>)> {
    let view = points::points_of(
        app,
        &me.principal(),
        &me.member_id,
        points::PointsQuery {
            limit: Some(limit),
            before,
        },
    )
    .await?;
    let mut conn = app.db.reader().await?;
    let expiries = repo::lot_expiries(&mut conn, &me.member_id)
        .await?
        .into_iter()
        .map(|(entry, at)| (entry.to_string(), local_date(app, at)))
        .collect();
    Ok((view, expiries))
}

fn local_date(app: &Regulars, ms: i64) -> String {
    super::ledger::rfc3339(app, ms)
        .get(..10)
        .unwrap_or("")
        .to_string()
}

pub async fn rewards(app: &Regulars, me: &MemberSession) -> AppResult<Vec<rewards::RewardView>> {
    rewards::catalogue(
        app,
        &me.principal(),
        rewards::CatalogueQuery {
            member_id: Some(me.member_id.clone()),
            all: false,
        },
    )
    .await
}

/// The store an H5 redemption is booked at: the member's home store, else
/// the chain's first store (a reward is collected at any store).
async fn booking_store(app: &Regulars, me: &MemberSession) -> AppResult<String> {
    let mut conn = app.db.reader().await?;
    let home = member_repo::get_member(&mut conn, &me.member_id)
        .await?
        .and_then(|m| m.home_store_code);
    if let Some(home) = home {
        return Ok(home);
    }
    chain::list_stores(&mut conn, None)
        .await?
        .into_iter()
        .next()
        .map(|s| s.code)
        .ok_or_else(|| AppError::unprocessable("unknown_store", "the chain has no store yet"))
}

/// Redeem a reward from the catalogue at its points cost; `key` is the
/// form's idempotency key (a second press answers the first receipt).
pub async fn redeem(
    app: &Regulars,
    me: &MemberSession,
    reward_id: &str,
    key: &str,
) -> AppResult<points::RedemptionReceipt> {
    let reward = rewards(app, me)
        .await?
        .into_iter()
        .find(|r| r.id == reward_id)
        .ok_or(AppError::NotFound { what: "reward" })?;
    let store_code = booking_store(app, me).await?;
    let recorded = points::redeem(
        app,
        &me.principal(),
        &me.member_id,
        Some(key),
        points::Redeem {
            points: reward.spec.points_cost,
            store_code,
            reward_id: Some(reward.id),
            note: None,
            family: false,
        },
    )
    .await?;
    serde_json::from_str(&recorded.json)
        .map_err(|e| AppError::Store(regulars_store::StoreError::Corrupt(e.to_string())))
}

pub async fn coupons(app: &Regulars, me: &MemberSession) -> AppResult<Vec<coupons::CouponView>> {
    coupons::member_coupons(
        app,
        &me.principal(),
        &me.member_id,
        coupons::CouponFilter { status: None },
    )
    .await
}

/// Feedback from the member pages (channel `h5`), about a visit to `store`.
pub async fn give_feedback(
    app: &Regulars,
    me: &MemberSession,
    store: &str,
    text: &str,
    rating: Option<i64>,
) -> AppResult<feedback::FeedbackReceipt> {
    feedback::submit(
        app,
        &me.principal(),
        feedback::SubmitFeedback {
            store_code: store.to_string(),
            channel: FeedbackChannel::H5,
            text: text.to_string(),
            rating,
            nps: None,
            member_id: Some(me.member_id.clone()),
            pos_order_id: None,
        },
    )
    .await
}

/// The stores a guest can choose from (code, name), for the feedback form.
pub async fn stores(app: &Regulars) -> AppResult<Vec<(String, String)>> {
    let mut conn = app.db.reader().await?;
    Ok(chain::list_stores(&mut conn, None)
        .await?
        .into_iter()
        .map(|s| (s.code, s.name))
        .collect())
}

pub async fn set_consents(
    app: &Regulars,
    me: &MemberSession,
    sms: bool,
    email: bool,
    wechat: bool,
) -> AppResult<members::MemberView> {
    members::set_consents(
        app,
        &me.principal(),
        &me.member_id,
        members::UpdateConsents {
            sms: Some(sms),
            email: Some(email),
            wechat: Some(wechat),
            source: Some("h5".into()),
        },
    )
    .await
}

/// The member's messaging language and time zone as stored.
pub async fn preferences(
    app: &Regulars,
    me: &MemberSession,
) -> AppResult<member_messages::MessagingPreferences> {
    let mut conn = app.db.reader().await?;
    let row: Option<(Option<String>, Option<String>)> =
        repo::locale_of(&mut conn, &me.member_id).await?;
    let (time_zone, language) = row.ok_or(AppError::NotFound { what: "member" })?;
    Ok(member_messages::MessagingPreferences {
        time_zone,
        language,
    })
}

pub async fn set_preferences(
    app: &Regulars,
    me: &MemberSession,
    input: member_messages::MessagingPreferences,
) -> AppResult<member_messages::MessagingPreferences> {
    member_messages::set_preferences(app, &me.principal(), &me.member_id, input).await
}

/// Everything the chain holds about the member, as they may take it away.
#[derive(Debug, Serialize)]
pub struct Export {
    pub exported_at: String,
    pub profile: serde_json::Value,
    pub personal: BTreeMap<&'static str, Option<String>>,
    pub consents: BTreeMap<String, members::ConsentView>,
    pub points: Vec<points::EntryView>,
    pub balance: i64,
    pub coupons: Vec<coupons::CouponView>,
    pub orders: Vec<serde_json::Value>,
}

pub async fn export(app: &Regulars, me: &MemberSession) -> AppResult<Export> {
    let view = profile(app, me).await?;
    let id = me.member_id.as_str();
    let row = {
        let mut conn = app.db.reader().await?;
        member_repo::get_member(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound { what: "member" })?
    };
    let personal = BTreeMap::from([
        ("phone", app.open(id, "phone", row.phone_enc.as_deref())?),
        ("name", app.open(id, "name", row.name_enc.as_deref())?),
        ("email", app.open(id, "email", row.email_enc.as_deref())?),
        (
            "birthday",
            app.open(id, "birthday", row.birthday_enc.as_deref())?,
        ),
        ("notes", app.open(id, "notes", row.notes_enc.as_deref())?),
    ]);
    // The whole history, page by page.
    let mut entries = Vec::new();
    let mut before = None;
    let balance = loop {
        let (page, _) = points(app, me, before, 200).await?;
        entries.extend(page.entries);
        match page.next_before {
            Some(next) => before = Some(next),
            None => break page.balance,
        }
    };
    let all_coupons = coupons::member_coupons(
        app,
        &me.principal(),
        id,
        coupons::CouponFilter {
            status: Some("all".into()),
        },
    )
    .await?;
    let orders = {
        let mut conn = app.db.reader().await?;
        repo::orders_of(&mut conn, id).await?
    };
    let mut conn = app.db.writer().await?;
    staff::audit(
        &mut conn,
        &me.principal().actor,
        "member.export",
        &format!("member:{id}"),
        "h5",
        now_ms(),
    )
    .await?;
    let profile = serde_json::to_value(&view)
        .map_err(|e| AppError::Store(regulars_store::StoreError::Corrupt(e.to_string())))?;
    Ok(Export {
        exported_at: super::ledger::rfc3339(app, now_ms()),
        consents: view.consents,
        profile,
        personal,
        points: entries,
        balance,
        coupons: all_coupons,
        orders: orders
            .into_iter()
            .map(|o| {
                serde_json::json!({
                    "store_code": o.store_code,
                    "pos_order_id": o.pos_order_id,
                    "channel": o.channel,
                    "occurred_at": super::ledger::rfc3339(app, o.occurred_at),
                    "paid_fen": o.paid_fen,
                    "refunded_fen": o.refunded_fen,
                    "points_earned": o.points_earned,
                    "points_reversed": o.points_reversed,
                    "id": o.id,
                })
            })
            .collect(),
    })
}

/// Delete the account: personal data erased, consents withdrawn, every
/// session ended; the anonymous ledger and orders stay (docs/h5.md).
pub async fn erase(app: &Regulars, me: &MemberSession) -> AppResult<()> {
    let actor = me.principal().actor;
    let id = me.member_id.as_str();
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    for channel in ConsentChannel::ALL {
        member_repo::set_consent(
            &mut tx,
            id,
            channel.as_str(),
            false,
            "h5_erase",
            &actor,
            now,
        )
        .await?;
    }
    if !repo::erase_member(&mut tx, id, now).await? {
        return Err(AppError::NotFound { what: "member" });
    }
    staff::audit(
        &mut tx,
        &actor,
        "member.erase",
        &format!("member:{id}"),
        "h5: personal data erased, sessions ended",
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(())
}
