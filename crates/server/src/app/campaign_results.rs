//! What a campaign brought: each arm's funnel (reached, delivered, opened
//! where the channel says, coupons redeemed) and its members' visits and
//! spend in the attribution window after they entered the campaign, and the
//! uplift of the treated arms over the control group with 95% intervals.
//!
//! The comparison is by assignment (intention to treat): every member drawn
//! into a variant counts, sent or not, exactly as every control member
//! counts though none was sent anything. That is what keeps the two groups
//! alike; comparing only the members reached would flatter the campaign.
//! Also here: the send list (dead letters) and putting a dead letter back.

use super::{AppError, AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::campaign::{mean_uplift, rate_uplift, Interval};
use regulars_store::campaign_sends::{self as repo, Attribution};
use regulars_store::{campaigns as campaigns_repo, commit, now_ms, staff};
use serde::Serialize;
use std::collections::BTreeMap;

/// One arm's figures.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ArmResult {
    /// "control" or the variant's name.
    pub arm: String,
    /// Members drawn into the arm.
    pub members: u64,
    /// Messages delivered to the channel.
    pub delivered: u64,
    pub skipped: u64,
    /// Waiting: deferred by quiet hours or to be retried.
    pub waiting: u64,
    pub dead: u64,
    /// Opened, where the channel says (the inbox).
    pub opened: u64,
    pub coupons_redeemed: u64,
    /// Members with at least one visit in the attribution window.
    pub visitors: u64,
    pub visits: u64,
    /// Paid less refunded, fen.
    pub spend_fen: i64,
    pub visit_rate: f64,
    pub spend_per_member_fen: f64,
}

/// The treated arms against the control group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Uplift {
    /// Which treated arm ("all" for every variant together).
    pub arm: String,
    /// Difference in the share of members who came back (95% interval).
    #[schema(value_type = Object)]
    pub visit_rate: Interval,
    /// Difference in spend per member, fen (95% interval).
    #[schema(value_type = Option<Object>)]
    pub spend_per_member_fen: Option<Interval>,
    /// Difference in the share who redeemed the campaign's coupon.
    #[schema(value_type = Object)]
    pub coupon_redemption_rate: Interval,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignResults {
    pub campaign_id: String,
    pub attribution_days: u32,
    pub arms: Vec<ArmResult>,
    /// Messages delivered by channel.
    pub delivered_by_channel: BTreeMap<String, u64>,
    /// Per variant and for all variants together; empty until both the
    /// control group and a treated arm have members.
    pub uplift: Vec<Uplift>,
}

pub async fn results(app: &Regulars, caller: &Principal, id: &str) -> AppResult<CampaignResults> {
    caller.check(Action::CampaignRead, None)?;
    let mut conn = app.db.reader().await?;
    let row = campaigns_repo::get(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound { what: "campaign" })?;
    let spec = super::campaigns::spec_of(&row)?;
    let window = i64::from(spec.attribution_days) * 86_400_000;
    let rows = repo::attribution(&mut conn, id, window).await?;
    let funnel = repo::funnel(&mut conn, id).await?;
    let arm_name = |arm: &str| match arm.parse::<usize>() {
        Ok(n) => spec
            .variants
            .get(n)
            .map(|v| v.name.clone())
            .unwrap_or_else(|| arm.to_string()),
        Err(_) => "control".to_string(),
    };
    let mut by_arm: BTreeMap<String, Vec<&Attribution>> = BTreeMap::new();
    for r in &rows {
        by_arm.entry(r.arm.clone()).or_default().push(r);
    }
    let mut delivered_by_channel = BTreeMap::new();
    for (_, status, channel, n) in &funnel {
        if status == "sent" {
            *delivered_by_channel
                .entry(channel.clone().unwrap_or_default())
                .or_insert(0) += *n as u64;
        }
    }
    let arms: Vec<ArmResult> = by_arm
        .iter()
        .map(|(arm, members)| summarise(arm_name(arm), members))
        .collect();
    let control = by_arm.get("control");
    let mut uplift = Vec::new();
    if let Some(control) = control.filter(|c| !c.is_empty()) {
        let treated: Vec<&Attribution> = rows.iter().filter(|r| r.arm != "control").collect();
        let mut groups: Vec<(String, Vec<&Attribution>)> = by_arm
            .iter()
            .filter(|(arm, _)| arm.as_str() != "control")
            .map(|(arm, members)| (arm_name(arm), members.clone()))
            .collect();
        if groups.len() > 1 {
            groups.push(("all".into(), treated.clone()));
        } else if let Some(only) = groups.first_mut() {
            only.0 = "all".into();
        }
        for (arm, members) in groups.into_iter().filter(|(_, m)| !m.is_empty()) {
            uplift.push(compare(arm, &members, control));
        }
    }
    Ok(CampaignResults {
        campaign_id: id.to_string(),
        attribution_days: spec.attribution_days,
        arms,
        delivered_by_channel,
        uplift,
    })
}

fn summarise(arm: String, members: &[&Attribution]) -> ArmResult {
    let mut r = ArmResult {
        arm,
        members: members.len() as u64,
        ..ArmResult::default()
    };
    for m in members {
        match m.status.as_str() {
            "sent" => r.delivered += 1,
            "skipped" => r.skipped += 1,
            "dead" => r.dead += 1,
            "pending" | "sending" => r.waiting += 1,
            _ => {}
        }
        r.opened += u64::from(m.opened > 0);
        r.coupons_redeemed += m.coupons_redeemed.max(0) as u64;
        r.visitors += u64::from(m.visits > 0);
        r.visits += m.visits.max(0) as u64;
        r.spend_fen += m.spend_fen;
    }
    if r.members > 0 {
        r.visit_rate = r.visitors as f64 / r.members as f64;
        r.spend_per_member_fen = r.spend_fen as f64 / r.members as f64;
    }
    r
}

fn compare(arm: String, treated: &[&Attribution], control: &[&Attribution]) -> Uplift {
    let count = |group: &[&Attribution], f: fn(&Attribution) -> bool| {
        group.iter().filter(|m| f(m)).count() as u64
    };
    let spend =
        |group: &[&Attribution]| group.iter().map(|m| m.spend_fen as f64).collect::<Vec<_>>();
    let (nt, nc) = (treated.len() as u64, control.len() as u64);
    Uplift {
        arm,
        visit_rate: rate_uplift(
            count(treated, |m| m.visits > 0),
            nt,
            count(control, |m| m.visits > 0),
            nc,
        ),
        spend_per_member_fen: mean_uplift(&spend(treated), &spend(control)),
        coupon_redemption_rate: rate_uplift(
            count(treated, |m| m.coupons_redeemed > 0),
            nt,
            count(control, |m| m.coupons_redeemed > 0),
            nc,
        ),
    }
}

/// A send as the console lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SendView {
    pub id: String,
    pub member_id: String,
    pub step: String,
    pub arm: String,
    pub status: String,
    pub channel: Option<String>,
    pub skip_reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const SEND_STATUSES: [&str; 6] = ["pending", "sending", "sent", "control", "skipped", "dead"];

/// The campaign's sends, those in `status` when given (`dead`: the dead letters).
pub async fn sends(
    app: &Regulars,
    caller: &Principal,
    id: &str,
    status: Option<&str>,
    limit: Option<i64>,
) -> AppResult<Vec<SendView>> {
    caller.check(Action::CampaignRead, None)?;
    if let Some(s) = status.filter(|s| !SEND_STATUSES.contains(s)) {
        return Err(AppError::unprocessable(
            "invalid_status",
            format!("status {s} is none of {}", SEND_STATUSES.join(", ")),
        ));
    }
    let mut conn = app.db.reader().await?;
    if campaigns_repo::get(&mut conn, id).await?.is_none() {
        return Err(AppError::NotFound { what: "campaign" });
    }
    let rows = repo::sends_of(&mut conn, id, status, limit.unwrap_or(500).clamp(1, 20_000)).await?;
    Ok(rows
        .into_iter()
        .map(|r| SendView {
            id: r.id,
            member_id: r.member_id,
            step: r.step,
            arm: r.arm,
            status: r.status,
            channel: r.channel,
            skip_reason: r.skip_reason,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
        .collect())
}

/// Put a dead letter back in the queue (after the provider was fixed).
pub async fn retry(app: &Regulars, caller: &Principal, id: &str, send_id: &str) -> AppResult<()> {
    caller.check(Action::CampaignManage, None)?;
    let mut tx = app.db.begin().await?;
    let at = now_ms();
    if !repo::retry_dead(&mut tx, id, send_id, at).await? {
        return Err(AppError::NotFound {
            what: "dead letter",
        });
    }
    staff::audit(
        &mut tx,
        &caller.actor,
        "campaign.send.retry",
        &format!("campaign:{id}"),
        send_id,
        at,
    )
    .await?;
    commit(tx).await?;
    Ok(())
}
