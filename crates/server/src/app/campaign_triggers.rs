//! Who enters an active campaign, and when: each trigger finds its members
//! and writes one `campaign_sends` row per (campaign, member, step). The
//! step names the occasion (`birthday:2027`, `dormant:<last visit>`,
//! `post_visit:<order>`), so a second run finds the same rows and adds
//! nothing, while the next birthday or the next lapse is a new occasion.
//! The control group is drawn here and recorded (status `control`): held-out
//! members are measured like the others and sent nothing.
//!
//! Run by `jobs run` (and `serve`'s job timer), as of the job's `now`.

use super::analytics::day_start;
use super::{AppError, AppResult, Regulars};
use chrono::{Datelike, Days, NaiveDate, TimeZone};
use regulars_core::campaign::{assign, Arm, CampaignSpec, Trigger};
use regulars_core::tier::Tier;
use regulars_store::campaign_sends::{self as repo, NewSend};
use regulars_store::campaigns::{self as campaigns_repo, CampaignRow};
use regulars_store::{commit, segments, Conn};
use std::collections::HashSet;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// A welcome, a post-visit survey or an event-driven message older than this
/// when first found is no longer timely and is not sent.
const CATCH_UP_MS: i64 = 7 * DAY_MS;
/// A VIP whose spend fell gets a staff call first (the nightly scoring
/// opens the task); the message follows this long after.
const VIP_MESSAGE_AFTER_MS: i64 = 2 * DAY_MS;

/// A member found by a trigger: the occasion and when the message is due.
struct Entry {
    member_id: String,
    step: String,
    due_at: i64,
}

/// Find every active campaign's new members and record them. Returns the
/// rows added (both arms).
pub async fn enqueue_due(app: &Regulars, now: i64) -> AppResult<u64> {
    let active = {
        let mut conn = app.db.reader().await?;
        campaigns_repo::list(&mut conn, Some("active")).await?
    };
    let mut added = 0;
    for row in active {
        let spec = super::campaigns::spec_of(&row)?;
        let entries = {
            let mut conn = app.db.reader().await?;
            let mut found = found_by_trigger(app, &mut conn, &row, &spec, now).await?;
            if let Some(segment) = &spec.segment_id {
                let audience = segment_members(&mut conn, segment, now).await?;
                found.retain(|e| audience.contains(&e.member_id));
            }
            found
        };
        let weights = spec.weights();
        let sends: Vec<NewSend> = entries
            .into_iter()
            .map(|e| {
                let arm = assign(&row.id, &e.member_id, spec.control_permille, &weights);
                let (arm, status) = match arm {
                    Arm::Control => ("control".to_string(), "control"),
                    Arm::Variant(n) => (n.to_string(), "pending"),
                };
                NewSend {
                    id: uuid::Uuid::now_v7().to_string(),
                    campaign_id: row.id.clone(),
                    member_id: e.member_id,
                    step: e.step,
                    arm,
                    status: status.to_string(),
                    next_attempt_at: e.due_at.max(now),
                    created_at: now,
                }
            })
            .collect();
        if sends.is_empty() {
            continue;
        }
        let mut tx = app.db.begin().await?;
        added += repo::enqueue(&mut tx, &sends).await?;
        commit(tx).await?;
    }
    Ok(added)
}

/// The saved segment's members now.
async fn segment_members(conn: &mut Conn, id: &str, now: i64) -> AppResult<HashSet<String>> {
    let saved = segments::get_saved(conn, id).await?.ok_or_else(|| {
        AppError::unprocessable("unknown_segment", format!("no saved segment {id}"))
    })?;
    let compiled = segments::compile(
        &regulars_core::segment::parse(&saved.expression)?,
        now,
        None,
    );
    let mut members = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = segments::page(conn, &compiled, after.as_deref(), 5_000).await?;
        let Some(last) = page.last() else {
            return Ok(members);
        };
        after = Some(last.id.clone());
        members.extend(page.into_iter().map(|m| m.id));
    }
}

fn day_of(app: &Regulars, now: i64) -> NaiveDate {
    app.timezone
        .timestamp_millis_opt(now)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// The birthday a member born on `month`/`day` has on `date`'s calendar
/// year: 29 February is kept on the 28th in other years.
fn birthday_in(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).or_else(|| {
        (month == 2 && day == 29)
            .then(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .flatten()
    })
}

async fn found_by_trigger(
    app: &Regulars,
    conn: &mut Conn,
    campaign: &CampaignRow,
    spec: &CampaignSpec,
    now: i64,
) -> AppResult<Vec<Entry>> {
    // When the campaign went live: event-driven triggers look at what
    // happened since, not at the whole history.
    let live_since = campaign.approved_at.unwrap_or(campaign.updated_at);
    let recent = live_since.max(now - CATCH_UP_MS);
    let today = day_of(app, now);
    let entry = |member_id: String, step: String, due_at: i64| Entry {
        member_id,
        step,
        due_at,
    };
    Ok(match &spec.trigger {
        Trigger::Scheduled { send_at } => {
            let at = chrono::DateTime::parse_from_rfc3339(send_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or(i64::MAX);
            // The audience is who is in it when the time comes: taken once,
            // by the first run after `send_at`; who joins later is not sent
            // yesterday's promotion.
            if now < at || repo::has_entries(conn, &campaign.id).await? {
                Vec::new()
            } else {
                repo::member_ids(conn)
                    .await?
                    .into_iter()
                    .map(|m| entry(m, "scheduled".into(), at))
                    .collect()
            }
        }
        Trigger::Welcome => repo::joined_within(conn, &[(recent, now + 1)])
            .await?
            .into_iter()
            .map(|(m, joined)| entry(m, "welcome".into(), joined))
            .collect(),
        Trigger::Birthday { days_before } => {
            // Every birthday from today to `days_before` ahead: a run missed
            // yesterday still reaches its members, a little late.
            let dates: Vec<NaiveDate> = (0..=u64::from(*days_before))
                .filter_map(|d| today.checked_add_days(Days::new(d)))
                .collect();
            let mut month_days: Vec<(u32, u32)> =
                dates.iter().map(|d| (d.month(), d.day())).collect();
            if dates.iter().any(|d| d.month() == 2 && d.day() == 28) {
                month_days.push((2, 29));
            }
            repo::born_on(conn, &month_days)
                .await?
                .into_iter()
                .filter_map(|(m, month, day)| {
                    let (month, day) = (u32::try_from(month).ok()?, u32::try_from(day).ok()?);
                    let birthday = dates
                        .iter()
                        .filter_map(|d| birthday_in(d.year(), month, day))
                        .find(|b| dates.contains(b))?;
                    Some(entry(m, format!("birthday:{}", birthday.year()), now))
                })
                .collect()
        }
        Trigger::Anniversary => {
            let windows: Vec<(i64, i64)> = (1..=30)
                .filter_map(|years| today.with_year(today.year() - years))
                .map(|day| {
                    (
                        day_start(app.timezone, day),
                        day_start(app.timezone, day + Days::new(1)),
                    )
                })
                .collect();
            repo::joined_within(conn, &windows)
                .await?
                .into_iter()
                .map(|(m, _)| entry(m, format!("anniversary:{}", today.year()), now))
                .collect()
        }
        Trigger::Dormant { days } => {
            // One message per lapse: the step is the last visit, so a guest
            // who comes back and lapses again is a new occasion.
            repo::last_visit_before(conn, now - i64::from(*days) * DAY_MS)
                .await?
                .into_iter()
                .map(|(m, last)| entry(m, format!("dormant:{last}"), now))
                .collect()
        }
        Trigger::VipDecline => repo::events_since(conn, "member.vip_decline", recent)
            .await?
            .into_iter()
            .map(|(id, m, at, _)| entry(m, format!("vip_decline:{id}"), at + VIP_MESSAGE_AFTER_MS))
            .collect(),
        Trigger::TierUpgrade => repo::events_since(conn, "tier.changed", recent)
            .await?
            .into_iter()
            .filter(|(_, _, _, payload)| is_upgrade(payload))
            .map(|(id, m, at, _)| entry(m, format!("tier_upgrade:{id}"), at))
            .collect(),
        Trigger::PointsExpiring { days_before } => {
            repo::members_with_expiring_points(conn, now, now + i64::from(*days_before) * DAY_MS)
                .await?
                .into_iter()
                .map(|(m, _, first)| {
                    let day = day_of(app, first);
                    entry(m, format!("points_expiring:{day}"), now)
                })
                .collect()
        }
        Trigger::PostVisit { hours_after } => {
            let delay = i64::from(*hours_after) * HOUR_MS;
            repo::orders_within(conn, recent - delay, now - delay + 1)
                .await?
                .into_iter()
                .filter(|(_, _, at)| *at + delay >= live_since)
                .map(|(m, order, at)| entry(m, format!("post_visit:{order}"), at + delay))
                .collect()
        }
        Trigger::NewDish { sku } => repo::taste_matches(conn, sku)
            .await?
            .into_iter()
            .map(|m| entry(m, format!("new_dish:{sku}"), now))
            .collect(),
    })
}

/// A `tier.changed` event that moved the member up.
fn is_upgrade(payload: &str) -> bool {
    let event: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let tier = |k: &str| event[k].as_str().and_then(Tier::parse);
    matches!((tier("from"), tier("to")), (Some(from), Some(to)) if to > from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_day_birthday_is_kept_on_the_28th_in_other_years() {
        assert_eq!(
            birthday_in(2027, 2, 29),
            NaiveDate::from_ymd_opt(2027, 2, 28)
        );
        assert_eq!(
            birthday_in(2028, 2, 29),
            NaiveDate::from_ymd_opt(2028, 2, 29)
        );
        assert_eq!(birthday_in(2027, 4, 31), None);
    }

    #[test]
    fn only_a_move_up_is_an_upgrade() {
        assert!(is_upgrade(r#"{"from":"silver","to":"gold"}"#));
        assert!(!is_upgrade(r#"{"from":"gold","to":"silver"}"#));
        assert!(!is_upgrade("not json"));
    }
}
