//! One pass of the periodic jobs as of a given time (`regulars jobs run
//! [--now]`; `serve` runs the same pass on a timer): point expiry, expiry
//! reminders 30 and 7 days ahead, the monthly tier review, birthday gifts
//! (points and the tier's birthday coupons), coupon expiry, and the
//! escalation of complaints whose first response is overdue.
//! Every job is safe to run twice for the same moment, and to be cut off
//! half-way: each member's change is one transaction, and what was done is
//! recognisable from the rows themselves.

use super::coupons::{self, CouponSource};
use super::ledger::{self, Posting};
use super::orders::tier_window_start;
use super::{AppError, AppResult, Regulars};
use chrono::{Datelike, NaiveTime, TimeZone};
use regulars_core::ledger::{add_months_ms, Allocation, EntryKind};
use regulars_core::tier::{review, Review, Tier};
use regulars_store::ledger as repo;
use regulars_store::{commit, orders};
use serde::Serialize;
use std::collections::BTreeMap;

const ACTOR: &str = "job";

#[derive(Debug, Default, Serialize)]
pub struct JobReport {
    pub expired_members: u64,
    pub expired_points: i64,
    pub expiry_reminders: u64,
    pub tier_reviewed: u64,
    pub tier_grace_started: u64,
    pub tier_downgraded: u64,
    pub birthday_gifts: u64,
    pub birthday_coupons: u64,
    pub coupons_expired: u64,
    pub complaints_escalated: u64,
    pub alerts_raised: u64,
    pub care_calls: u64,
    /// Members scored by the nightly scoring (0 when it already ran today).
    pub members_scored: u64,
    /// Members who entered a campaign (both arms; 0 on a rerun).
    pub campaign_entries: u64,
    /// What the campaign sender did.
    pub campaign_messages: super::campaign_sender::SendReport,
    pub webhooks: super::webhooks::WebhookReport,
}

/// Run every due job as of `now_ms`.
pub async fn run_due(app: &Regulars, now_ms: i64) -> AppResult<JobReport> {
    let mut report = JobReport::default();
    expire_points(app, now_ms, &mut report).await?;
    remind_expiring(app, now_ms, &mut report).await?;
    review_tiers(app, now_ms, &mut report).await?;
    birthday_gifts(app, now_ms, &mut report).await?;
    expire_coupons(app, now_ms, &mut report).await?;
    report.complaints_escalated = super::feedback::escalate_overdue(app, now_ms).await?;
    report.alerts_raised = super::alerts::raise(app, now_ms).await?;
    nightly_scoring(app, now_ms, &mut report).await?;
    report.campaign_entries = super::campaign_triggers::enqueue_due(app, now_ms).await?;
    report.campaign_messages = super::campaign_sender::send_due(app, now_ms).await?;
    report.webhooks = super::webhooks::deliver_due(app, now_ms).await?;
    Ok(report)
}

/// Lots past their expiry give up what is left in them: one `expire` entry
/// per member, with an allocation per lot, so points already redeemed from a
/// lot are never expired again.
async fn expire_points(app: &Regulars, now: i64, report: &mut JobReport) -> AppResult<()> {
    loop {
        let due = {
            let mut conn = app.db.reader().await?;
            repo::expired_lots(&mut conn, now, 500).await?
        };
        if due.is_empty() {
            return Ok(());
        }
        let mut members: Vec<String> = due.into_iter().map(|(m, _)| m).collect();
        members.dedup();
        for member_id in members {
            let mut tx = app.db.begin().await?;
            let Some(member) = repo::lock_member(&mut tx, &member_id, now).await? else {
                continue;
            };
            // Re-read inside the transaction: a redemption may have emptied a lot since.
            let lots: Vec<_> = repo::open_lots(&mut tx, &member_id, i64::MIN)
                .await?
                .into_iter()
                .filter(|l| l.expires_at <= now)
                .collect();
            let allocations: Vec<Allocation> = lots
                .iter()
                .map(|l| Allocation {
                    lot_id: l.entry_id,
                    points: l.remaining,
                })
                .collect();
            let points: i64 = allocations.iter().map(|a| a.points).sum();
            if points == 0 {
                tx.rollback()
                    .await
                    .map_err(regulars_store::StoreError::from_sqlx)?;
                continue;
            }
            let reason = format!("{points} 分积分到期");
            ledger::debit(
                &mut tx,
                &Posting {
                    member_id: &member_id,
                    kind: EntryKind::Expire,
                    reason: &reason,
                    order_id: None,
                    reference: None,
                    actor: ACTOR,
                    approver: None,
                    at: now,
                },
                &allocations,
            )
            .await?;
            let balance = member.points_balance - points;
            repo::save_member(
                &mut tx,
                &member_id,
                balance,
                member.points_debt,
                &member.tier,
            )
            .await?;
            repo::emit(
                &mut tx,
                "points.expired",
                Some(&member_id),
                &format!("{member_id}:{now}"),
                &serde_json::json!({"member_id": member_id, "points": points, "balance": balance})
                    .to_string(),
                now,
            )
            .await?;
            commit(tx).await?;
            report.expired_members += 1;
            report.expired_points += points;
        }
    }
}

/// `points.expiring` events 30 and 7 days ahead, once per member, expiry
/// date and window.
async fn remind_expiring(app: &Regulars, now: i64, report: &mut JobReport) -> AppResult<()> {
    for days in [30i64, 7] {
        let rows = {
            let mut conn = app.db.reader().await?;
            repo::lots_expiring_between(&mut conn, now, now + days * 86_400_000).await?
        };
        let mut due: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (member_id, lot) in rows {
            let on = local_date(app, lot.expires_at);
            *due.entry((member_id, on)).or_default() += lot.remaining;
        }
        let mut tx = app.db.begin().await?;
        for ((member_id, on), points) in due {
            let fresh = repo::emit(
                &mut tx,
                "points.expiring",
                Some(&member_id),
                &format!("{member_id}:{on}:{days}d"),
                &serde_json::json!({"member_id": member_id, "on": on, "points": points,
                    "days_ahead": days})
                .to_string(),
                now,
            )
            .await?;
            report.expiry_reminders += fresh as u64;
        }
        commit(tx).await?;
    }
    Ok(())
}

/// `YYYY-MM-DD` of an instant in the chain's time zone.
pub(crate) fn local_date(app: &Regulars, ms: i64) -> String {
    app.timezone
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
}

/// The start of the local calendar month containing `now`.
fn month_start(app: &Regulars, now: i64) -> (i64, chrono::NaiveDate) {
    let today = app
        .timezone
        .timestamp_millis_opt(now)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let first = today.with_day(1).unwrap_or(today);
    let ms = app
        .timezone
        .from_local_datetime(&first.and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(now);
    (ms, today)
}

/// The monthly review. A member whose 12-month spend no longer holds their
/// tier is marked (grace) at one review and moved down at the next if still
/// short. Re-running within a month changes nothing more.
async fn review_tiers(app: &Regulars, now: i64, report: &mut JobReport) -> AppResult<()> {
    let config = app.loyalty.get(app).await?;
    let (period_start, today) = month_start(app, now);
    let period = format!("{:04}-{:02}", today.year(), today.month());
    let mut after = String::new();
    loop {
        let batch: Vec<String> = {
            let mut conn = app.db.reader().await?;
            repo::members_for_review(&mut conn, &after, 500).await?
        };
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.clone();
        for member_id in batch {
            let mut tx = app.db.begin().await?;
            let Some(member) = repo::lock_member(&mut tx, &member_id, now).await? else {
                continue;
            };
            let current = Tier::parse(&member.tier).unwrap_or(Tier::Regular);
            let spend =
                orders::qualifying_spend(&mut tx, &member_id, tier_window_start(now), now, None)
                    .await?;
            let floor = ledger::active_floor(&member, now);
            let in_grace = member.tier_grace_since.is_some_and(|g| g < period_start);
            let keep_floor = |conn| {
                repo::set_tier_marks(
                    conn,
                    &member_id,
                    None,
                    member.tier_floor.as_deref(),
                    member.tier_floor_until,
                )
            };
            match review(&config.tiers, current, spend, floor, in_grace) {
                Review::Keep(tier) => {
                    if member.tier_grace_since.is_some() {
                        keep_floor(&mut tx).await?;
                    }
                    if tier != current {
                        change_tier(&mut tx, &member, current, tier, spend, &period, now).await?;
                    }
                }
                Review::Grace => {
                    if member.tier_grace_since.is_none() {
                        repo::set_tier_marks(
                            &mut tx,
                            &member_id,
                            Some(now),
                            member.tier_floor.as_deref(),
                            member.tier_floor_until,
                        )
                        .await?;
                        repo::emit(
                            &mut tx,
                            "tier.grace",
                            Some(&member_id),
                            &format!("{member_id}:{period}"),
                            &serde_json::json!({"member_id": member_id, "tier": current,
                                "qualifying_spend_fen": spend,
                                "keep_at_fen": config.tiers.benefits(current).threshold_fen})
                            .to_string(),
                            now,
                        )
                        .await?;
                        report.tier_grace_started += 1;
                    }
                }
                Review::Downgrade(tier) => {
                    keep_floor(&mut tx).await?;
                    change_tier(&mut tx, &member, current, tier, spend, &period, now).await?;
                    report.tier_downgraded += 1;
                }
            }
            commit(tx).await?;
            report.tier_reviewed += 1;
        }
    }
}

async fn change_tier(
    conn: &mut regulars_store::Conn,
    member: &repo::MemberLedger,
    from: Tier,
    to: Tier,
    spend: i64,
    period: &str,
    now: i64,
) -> AppResult<()> {
    repo::save_member(
        conn,
        &member.id,
        member.points_balance,
        member.points_debt,
        to.as_str(),
    )
    .await?;
    repo::insert_tier_change(
        conn,
        &member.id,
        from.as_str(),
        to.as_str(),
        &format!("tier review {period}: 12-month spend ¥{}", spend / 100),
        spend,
        ACTOR,
        now,
    )
    .await?;
    repo::emit(
        conn,
        "tier.changed",
        Some(&member.id),
        &format!("review:{period}:{}", member.id),
        &serde_json::json!({"member_id": member.id, "from": from, "to": to,
            "qualifying_spend_fen": spend})
        .to_string(),
        now,
    )
    .await?;
    Ok(())
}

/// The birthday-month gift of the member's tier, once a year: the
/// `birthday.gift` event for `(member, year)` is the once-guard, written in
/// the same transaction as the points.
async fn birthday_gifts(app: &Regulars, now: i64, report: &mut JobReport) -> AppResult<()> {
    let config = app.loyalty.get(app).await?;
    let (_, today) = month_start(app, now);
    let month = today.month() as i64;
    let mut after = String::new();
    loop {
        let batch: Vec<(String, String, Option<String>)> = {
            let mut conn = app.db.reader().await?;
            repo::members_born_in(&mut conn, month, &after, 500).await?
        };
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.0.clone();
        for (member_id, tier, home_store) in batch {
            let benefits = config
                .tiers
                .benefits(Tier::parse(&tier).unwrap_or(Tier::Regular));
            if benefits.birthday_points <= 0 && benefits.birthday_coupon_templates.is_empty() {
                continue;
            }
            let mut tx = app.db.begin().await?;
            let Some(member) = repo::lock_member(&mut tx, &member_id, now).await? else {
                continue;
            };
            let fresh = repo::emit(
                &mut tx,
                "birthday.gift",
                Some(&member_id),
                &format!("{member_id}:{}", today.year()),
                &serde_json::json!({"member_id": member_id, "points": benefits.birthday_points,
                    "coupon_templates": benefits.birthday_coupon_templates,
                    "tier": tier, "year": today.year()})
                .to_string(),
                now,
            )
            .await?;
            if !fresh {
                tx.rollback()
                    .await
                    .map_err(regulars_store::StoreError::from_sqlx)?;
                continue;
            }
            if benefits.birthday_points > 0 {
                let reason = format!(
                    "{}生日礼 {} 分",
                    benefits.tier.chinese_name(),
                    benefits.birthday_points
                );
                ledger::credit(
                    &mut tx,
                    &Posting {
                        member_id: &member_id,
                        kind: EntryKind::Bonus,
                        reason: &reason,
                        order_id: None,
                        reference: Some(&format!("birthday:{}", today.year())),
                        actor: ACTOR,
                        approver: None,
                        at: now,
                    },
                    benefits.birthday_points,
                    now,
                    add_months_ms(now, benefits.expiry_months),
                )
                .await?;
                repo::save_member(
                    &mut tx,
                    &member_id,
                    member.points_balance + benefits.birthday_points,
                    member.points_debt,
                    &member.tier,
                )
                .await?;
            }
            let pack_ref = format!("{member_id}:{}", today.year());
            for template in &benefits.birthday_coupon_templates {
                // A template retired since the policy was set is skipped, not
                // a reason to withhold the rest of the pack.
                match coupons::issue_in(
                    app,
                    &mut tx,
                    &member_id,
                    template,
                    CouponSource::Birthday,
                    &pack_ref,
                    now,
                )
                .await
                {
                    Ok(_) => report.birthday_coupons += 1,
                    Err(AppError::Unprocessable { .. }) => {
                        tracing::warn!(template, "birthday coupon template not active; skipped")
                    }
                    Err(e) => return Err(e),
                }
            }
            // Gold and black-gold guests also get a call from their store.
            if Tier::parse(&tier).is_some_and(|t| t >= Tier::Gold) {
                regulars_store::feedback::insert_task(
                    &mut tx,
                    &format!("birthday_call:{member_id}:{}", today.year()),
                    "birthday_call",
                    home_store.as_deref(),
                    Some(&member_id),
                    None,
                    &format!("{}会员生日关怀电话", benefits.tier.chinese_name()),
                    now + 2 * 86_400_000,
                    now,
                )
                .await?;
            }
            commit(tx).await?;
            report.birthday_gifts += 1;
        }
    }
}

/// Coupons past their last day are marked expired (they were already
/// refused at the till; this keeps lists and counts honest) and a
/// `coupon.expired` event goes out for each.
async fn expire_coupons(app: &Regulars, now: i64, report: &mut JobReport) -> AppResult<()> {
    loop {
        let mut tx = app.db.begin().await?;
        let expired = regulars_store::rewards::expire_coupons(&mut tx, now, 500).await?;
        for (coupon_id, member_id) in &expired {
            repo::emit(
                &mut tx,
                "coupon.expired",
                Some(member_id),
                coupon_id,
                &serde_json::json!({"member_id": member_id, "coupon_id": coupon_id}).to_string(),
                now,
            )
            .await?;
        }
        commit(tx).await?;
        report.coupons_expired += expired.len() as u64;
        if expired.len() < 500 {
            return Ok(());
        }
    }
}

/// Once a day: score every member (`regulars score`), then raise care calls
/// for the VIPs whose spend fell.
async fn nightly_scoring(app: &Regulars, now: i64, report: &mut JobReport) -> AppResult<()> {
    let day = app
        .timezone
        .timestamp_millis_opt(now)
        .single()
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default();
    {
        let mut conn = app.db.writer().await?;
        if !repo::start_job(&mut conn, "score", &day, now).await? {
            return Ok(());
        }
    }
    let scored = super::insights::score(app, now).await?;
    report.members_scored = scored.members;
    report.care_calls = care_calls(app, now, &scored.declines).await?;
    let mut conn = app.db.writer().await?;
    repo::finish_job(
        &mut conn,
        "score",
        &day,
        &serde_json::to_string(&scored).unwrap_or_default(),
        now,
    )
    .await?;
    Ok(())
}

/// VIP spend decline (`regulars_core::insight::vip_decline`): the member's
/// home store gets a care call task first — once a quarter — and a
/// `member.vip_decline` event goes out for the messaging that may follow.
async fn care_calls(
    app: &Regulars,
    now: i64,
    declining: &[super::insights::Decline],
) -> AppResult<u64> {
    let quarter = app
        .timezone
        .timestamp_millis_opt(now)
        .single()
        .map(|t| format!("{}-Q{}", t.year(), (t.month() - 1) / 3 + 1))
        .unwrap_or_default();
    let mut added = 0;
    for d in declining {
        let (member_id, recent, prior) = (&d.member_id, d.recent_fen, d.prior_fen);
        let mut tx = app.db.begin().await?;
        let fresh = regulars_store::feedback::insert_task(
            &mut tx,
            &format!("care_call:{member_id}:{quarter}"),
            "care_call",
            d.home_store.as_deref(),
            Some(member_id),
            None,
            &format!(
                "{}会员消费下滑关怀：近90天 ¥{}，此前90天 ¥{}",
                Tier::parse(&d.tier).unwrap_or(Tier::Gold).chinese_name(),
                recent / 100,
                prior / 100
            ),
            now + 2 * 86_400_000,
            now,
        )
        .await?;
        if fresh {
            repo::emit(
                &mut tx,
                "member.vip_decline",
                Some(member_id),
                &format!("{member_id}:{quarter}"),
                &serde_json::json!({"member_id": member_id, "tier": d.tier,
                    "recent_fen": recent, "prior_fen": prior})
                .to_string(),
                now,
            )
            .await?;
            added += 1;
        }
        commit(tx).await?;
    }
    Ok(added)
}
