//! Sending the campaign outbox. A sender claims due rows with a lease
//! (several `serve` nodes claim side by side; a node that dies leaves its
//! rows to the next claim after the lease), asks the delivery rules at send
//! time for each member (consent, opt-out, de-duplication, caps, quiet hours
//! in the member's own clock), gives the campaign's points and coupon once
//! per send, renders the member's variant in their language, delivers it
//! through the channel, and records what became of it. Failures are retried
//! with backoff; after `MAX_ATTEMPTS` a send is a dead letter.
//!
//! Exactly once, end to end: a row is sent by the holder of its lease; the
//! provider gets the row id as its idempotency key, so the message a crash
//! or a time-out makes us send again is the same message to the provider.

use super::channels::{self, ChannelError, Channels, OutgoingMessage};
use super::coupons::{self, CouponSource};
use super::ledger::{self, Posting};
use super::{AppError, AppResult, Regulars};
use chrono::TimeZone;
use futures_util::StreamExt;
use rand::Rng;
use regulars_core::campaign::{
    choose_channel, CampaignSpec, ChannelChoice, DeliveryChannel, DeliveryPolicy, PastSend,
    Recipient,
};
use regulars_core::ledger::{add_months_ms, EntryKind};
use regulars_core::member::ConsentChannel;
use regulars_core::tier::Tier;
use regulars_core::webhook::{after_attempt, DeliveryStatus};
use regulars_store::campaign_sends::{self as repo, ClaimedSend, RecipientRow, SendOutcome};
use regulars_store::{campaigns as campaigns_repo, commit, ledger as ledger_repo};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

const ACTOR: &str = "campaign";
/// Messages delivered at the same time.
const IN_FLIGHT: usize = 16;

/// What one pass of the sender did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SendReport {
    pub sent: u64,
    pub skipped: u64,
    pub deferred: u64,
    pub retrying: u64,
    pub dead: u64,
}

/// A positive whole number from the environment (tests and operators tune
/// the sender with these), else `default`.
fn tunable(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A campaign as the sender needs it.
struct Live {
    name: String,
    spec: CampaignSpec,
    /// Messages sent so far in this pass and before (budget).
    sent: i64,
}

/// Send every due message, batch after batch, as of `now`.
pub async fn send_due(app: &Regulars, now: i64) -> AppResult<SendReport> {
    let mut report = SendReport::default();
    let (policy, channels) = {
        let mut conn = app.db.reader().await?;
        let policy = super::campaigns::delivery_policy(&mut conn).await?;
        let settings = channels::load(app, &mut conn).await?;
        (policy, Channels::open(app, settings)?)
    };
    let mut live: HashMap<String, Option<Live>> = HashMap::new();
    loop {
        let claimed = {
            let mut tx = app.db.begin().await?;
            let lease_ms = tunable("REGULARS_SEND_LEASE_SECS", 120) * 1000;
            let batch = tunable("REGULARS_SEND_BATCH", 200);
            let claimed = repo::claim_due(&mut tx, now, now + lease_ms, batch).await?;
            commit(tx).await?;
            claimed
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        for c in &claimed {
            if !live.contains_key(&c.campaign_id) {
                let loaded = load_campaign(app, &c.campaign_id).await?;
                live.insert(c.campaign_id.clone(), loaded);
            }
        }
        let outcomes = send_batch(app, &policy, &channels, &mut live, claimed, now).await?;
        for o in &outcomes {
            match (o.status.as_str(), o.attempts_back) {
                ("sent", _) => report.sent += 1,
                ("skipped", _) => report.skipped += 1,
                ("dead", _) => report.dead += 1,
                ("pending", 1) => report.deferred += 1,
                _ => report.retrying += 1,
            }
        }
        let mut tx = app.db.begin().await?;
        repo::finish(&mut tx, &outcomes).await?;
        commit(tx).await?;
    }
}

async fn load_campaign(app: &Regulars, id: &str) -> AppResult<Option<Live>> {
    let mut conn = app.db.reader().await?;
    let Some(row) = campaigns_repo::get(&mut conn, id).await? else {
        return Ok(None);
    };
    let Ok(spec) = super::campaigns::spec_of(&row) else {
        tracing::error!(
            campaign = id,
            "unreadable campaign definition; its sends wait"
        );
        return Ok(None);
    };
    let sent = repo::sent_count(&mut conn, id).await?;
    Ok(Some(Live {
        name: row.name,
        spec,
        sent,
    }))
}

/// What the sender knows of a member for this batch.
struct Member {
    row: RecipientRow,
    consents: Vec<(ConsentChannel, bool)>,
    past: Vec<PastSend>,
    expiring: Option<(i64, i64)>,
    /// A message to the member is already planned in this batch.
    planned_now: bool,
}

/// A message decided on, not yet delivered.
struct Planned {
    claim: ClaimedSend,
    message: OutgoingMessage,
}

async fn send_batch(
    app: &Regulars,
    policy: &DeliveryPolicy,
    channels: &Channels,
    live: &mut HashMap<String, Option<Live>>,
    mut claimed: Vec<ClaimedSend>,
    now: i64,
) -> AppResult<Vec<SendOutcome>> {
    claimed.sort_by(|a, b| (&a.member_id, a.created_at).cmp(&(&b.member_id, b.created_at)));
    let mut members = members_of(app, policy, &claimed, now).await?;
    let base_url = public_url(&channels.settings);
    let mut outcomes = Vec::with_capacity(claimed.len());
    let mut planned = Vec::new();
    for claim in claimed {
        let campaign = live.get_mut(&claim.campaign_id).and_then(Option::as_mut);
        let member = members.get_mut(&claim.member_id);
        let (Some(campaign), Some(member)) = (campaign, member) else {
            outcomes.push(skip(&claim, "gone"));
            continue;
        };
        if member.row.erased_at.is_some() {
            outcomes.push(skip(&claim, "erased"));
            continue;
        }
        if member.planned_now {
            // Another campaign's message to this member is going out in this
            // batch; whether it arrives decides caps and de-duplication, so
            // this one goes back in the queue for the next batch, which sees
            // that message recorded.
            outcomes.push(SendOutcome {
                status: "pending".into(),
                next_attempt_at: now,
                attempts_back: 1,
                ..outcome(&claim)
            });
            continue;
        }
        let zone = member
            .row
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(app.timezone);
        let local_now = zone
            .timestamp_millis_opt(now)
            .single()
            .map(|t| t.naive_local())
            .unwrap_or_default();
        // The channels set up on which the member has an address, each
        // address decrypted once.
        let addresses: Vec<(DeliveryChannel, String)> = campaign
            .spec
            .channels
            .iter()
            .filter(|c| channels.settings.configured(**c))
            .filter_map(|c| Some((*c, address(app, &member.row, *c)?)))
            .collect();
        let reachable: Vec<DeliveryChannel> = addresses.iter().map(|(c, _)| *c).collect();
        let recipient = Recipient {
            consents: &member.consents,
            unsubscribed: member.row.marketing_opt_out_at.is_some(),
            past_sends: &member.past,
            local_now,
        };
        match choose_channel(policy, &claim.campaign_id, &reachable, &recipient, now) {
            _ if reachable.is_empty() => outcomes.push(skip(&claim, "no_channel")),
            ChannelChoice::Skip(reason) => outcomes.push(skip(&claim, reason.as_str())),
            ChannelChoice::Defer { until_local } => {
                let at = zone
                    .from_local_datetime(&until_local)
                    .earliest()
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(now + 3_600_000);
                outcomes.push(SendOutcome {
                    status: "pending".into(),
                    next_attempt_at: at,
                    attempts_back: 1,
                    ..outcome(&claim)
                });
            }
            ChannelChoice::Send(channel) => {
                if over_budget(&campaign.spec, campaign.sent) {
                    outcomes.push(skip(&claim, "budget_spent"));
                    continue;
                }
                let to = addresses
                    .iter()
                    .find(|(c, _)| *c == channel)
                    .map(|(_, a)| a.as_str())
                    .unwrap_or_default();
                let recipient = Addressee { channel, to };
                let message = match prepare(
                    app, campaign, member, &claim, recipient, &base_url, now,
                )
                .await
                {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(send = claim.id, error = %e, "message cannot be prepared");
                        outcomes.push(SendOutcome {
                            status: "dead".into(),
                            last_error: Some(e.to_string()),
                            ..outcome(&claim)
                        });
                        continue;
                    }
                };
                campaign.sent += 1;
                member.planned_now = true;
                planned.push(Planned { claim, message });
            }
        }
    }
    let delivered: Vec<SendOutcome> = futures_util::stream::iter(planned)
        .map(|p| async move {
            let result = channels.deliver(&p.message).await;
            delivered_outcome(&p.claim, p.message.channel, result, now)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    outcomes.extend(delivered);
    Ok(outcomes)
}

fn outcome(claim: &ClaimedSend) -> SendOutcome {
    SendOutcome {
        id: claim.id.clone(),
        lease_until: claim.lease_until,
        status: String::new(),
        channel: None,
        skip_reason: None,
        next_attempt_at: 0,
        provider_ref: None,
        last_error: None,
        sent_at: None,
        attempts_back: 0,
    }
}

fn skip(claim: &ClaimedSend, reason: &str) -> SendOutcome {
    SendOutcome {
        status: "skipped".into(),
        skip_reason: Some(reason.into()),
        ..outcome(claim)
    }
}

fn delivered_outcome(
    claim: &ClaimedSend,
    channel: DeliveryChannel,
    result: Result<Option<String>, ChannelError>,
    now: i64,
) -> SendOutcome {
    let base = SendOutcome {
        channel: Some(channel.as_str().into()),
        ..outcome(claim)
    };
    match result {
        Ok(provider_ref) => SendOutcome {
            status: "sent".into(),
            provider_ref,
            sent_at: Some(now),
            ..base
        },
        Err(ChannelError::Temporary { reason, after }) => {
            // The same backoff and attempt limit as webhooks; a provider's
            // `Retry-After` says better when to come back.
            let attempts = u32::try_from(claim.attempts).unwrap_or(u32::MAX);
            let jitter = rand::thread_rng().gen::<f64>();
            match after_attempt(false, attempts, now, jitter) {
                (DeliveryStatus::Pending, backoff_until) => SendOutcome {
                    status: "pending".into(),
                    next_attempt_at: after
                        .and_then(|a| i64::try_from(a.as_millis()).ok())
                        .map_or(backoff_until, |ms| now + ms),
                    last_error: Some(reason),
                    ..base
                },
                _ => SendOutcome {
                    status: "dead".into(),
                    last_error: Some(format!("temporary: {reason}")),
                    ..base
                },
            }
        }
        Err(e) => SendOutcome {
            status: "dead".into(),
            last_error: Some(e.to_string()),
            ..base
        },
    }
}

fn over_budget(spec: &CampaignSpec, sent: i64) -> bool {
    let next = sent + 1;
    let points_over = spec
        .budget_points
        .is_some_and(|b| spec.bonus_points > 0 && next * spec.bonus_points > b);
    let coupons_over = spec
        .budget_coupons
        .is_some_and(|b| spec.coupon_template_id.is_some() && next > b);
    points_over || coupons_over
}

/// The channel chosen and the member's address on it.
struct Addressee<'a> {
    channel: DeliveryChannel,
    to: &'a str,
}

/// Where the member is reached on `channel`, if anywhere.
fn address(app: &Regulars, m: &RecipientRow, channel: DeliveryChannel) -> Option<String> {
    let open = |column: &str, value: Option<&[u8]>| app.open(&m.id, column, value).ok().flatten();
    match channel {
        DeliveryChannel::Sms | DeliveryChannel::Wechat => open("phone", m.phone_enc.as_deref()),
        DeliveryChannel::Email => open("email", m.email_enc.as_deref()),
        DeliveryChannel::Inbox => Some(m.id.clone()),
    }
}

async fn members_of(
    app: &Regulars,
    policy: &DeliveryPolicy,
    claimed: &[ClaimedSend],
    now: i64,
) -> AppResult<HashMap<String, Member>> {
    let mut ids: Vec<&str> = claimed.iter().map(|c| c.member_id.as_str()).collect();
    ids.dedup();
    let longest_window_ms = policy
        .caps
        .iter()
        .map(|c| i64::from(c.window_days) * 86_400_000)
        .chain([i64::from(policy.dedup_hours) * 3_600_000])
        .max()
        .unwrap_or(0);
    let mut conn = app.db.reader().await?;
    let mut members: HashMap<String, Member> = repo::recipients(&mut conn, &ids)
        .await?
        .into_iter()
        .map(|row| {
            let member = Member {
                row,
                consents: Vec::new(),
                past: Vec::new(),
                expiring: None,
                planned_now: false,
            };
            (member.row.id.clone(), member)
        })
        .collect();
    for (member_id, channel) in repo::granted_consents(&mut conn, &ids).await? {
        if let (Some(m), Some(c)) = (members.get_mut(&member_id), ConsentChannel::parse(&channel)) {
            m.consents.push((c, true));
        }
    }
    for sent in repo::sent_since(&mut conn, &ids, now - longest_window_ms).await? {
        if let (Some(m), Some(channel)) = (
            members.get_mut(&sent.member_id),
            DeliveryChannel::parse(&sent.channel),
        ) {
            m.past.push(PastSend {
                campaign_id: sent.campaign_id,
                channel,
                at: sent.sent_at,
            });
        }
    }
    let horizon = now + 90 * 86_400_000;
    for (member_id, points, first) in repo::expiring_points(&mut conn, &ids, now, horizon).await? {
        if let Some(m) = members.get_mut(&member_id) {
            m.expiring = Some((points, first));
        }
    }
    Ok(members)
}

/// Give what the campaign gives (once per send, whatever retries follow)
/// and render the member's message.
async fn prepare(
    app: &Regulars,
    campaign: &Live,
    member: &Member,
    claim: &ClaimedSend,
    addressee: Addressee<'_>,
    base_url: &str,
    now: i64,
) -> AppResult<OutgoingMessage> {
    let coupon = reward(app, campaign, &member.row, claim, now).await?;
    let english = member
        .row
        .language
        .as_deref()
        .is_some_and(|l| l.starts_with("en"));
    let tier = Tier::parse(&member.row.tier).unwrap_or(Tier::Regular);
    let name = app
        .open(&member.row.id, "name", member.row.name_enc.as_deref())?
        .unwrap_or_else(|| if english { "member" } else { "会员" }.to_string());
    let unsubscribe_url = super::member_messages::unsubscribe_url(app, base_url, &member.row.id);
    let (expiring_points, expiring_date) = match member.expiring {
        Some((points, first)) => (points.to_string(), super::jobs::local_date(app, first)),
        None => ("0".into(), String::new()),
    };
    let variables: BTreeMap<String, String> = [
        ("name", name),
        (
            "tier",
            if english {
                tier.as_str().replace('_', " ")
            } else {
                tier.chinese_name().to_string()
            },
        ),
        ("balance", member.row.points_balance.to_string()),
        ("expiring_points", expiring_points),
        ("expiring_date", expiring_date),
        ("coupon", coupon.unwrap_or_default()),
        (
            "store",
            member.row.home_store_code.clone().unwrap_or_default(),
        ),
        ("unsubscribe", unsubscribe_url.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let arm: usize = claim.arm.parse().unwrap_or(0);
    let variant = campaign
        .spec
        .variants
        .get(arm)
        .or_else(|| campaign.spec.variants.first())
        .ok_or_else(|| {
            AppError::unprocessable("invalid_campaign", "the campaign has no variant")
        })?;
    let values: BTreeMap<&str, String> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let text = variant
        .template
        .render(if english { "en" } else { "zh" }, &values)?;
    Ok(OutgoingMessage {
        send_id: claim.id.clone(),
        campaign_id: claim.campaign_id.clone(),
        member_id: member.row.id.clone(),
        channel: addressee.channel,
        to: addressee.to.to_string(),
        variant: variant.name.clone(),
        text,
        variables,
        unsubscribe_url,
    })
}

/// The campaign's bonus points and coupon, given in one transaction whose
/// outbox event (`campaign.reward`, subject the send) makes a second try a
/// no-op. Answers the coupon's name for the message.
async fn reward(
    app: &Regulars,
    campaign: &Live,
    member: &RecipientRow,
    claim: &ClaimedSend,
    now: i64,
) -> AppResult<Option<String>> {
    let spec = &campaign.spec;
    if spec.bonus_points <= 0 && spec.coupon_template_id.is_none() {
        return Ok(None);
    }
    let mut tx = app.db.begin().await?;
    let Some(locked) = ledger_repo::lock_member(&mut tx, &member.id, now).await? else {
        return Ok(None);
    };
    let fresh = ledger_repo::emit(
        &mut tx,
        "campaign.reward",
        Some(&member.id),
        &claim.id,
        &serde_json::json!({"campaign_id": claim.campaign_id, "member_id": member.id,
            "points": spec.bonus_points, "coupon_template_id": spec.coupon_template_id})
        .to_string(),
        now,
    )
    .await?;
    if fresh && spec.bonus_points > 0 {
        let config = app.loyalty.get(app).await?;
        let benefits = config
            .tiers
            .benefits(Tier::parse(&locked.tier).unwrap_or(Tier::Regular));
        ledger::credit(
            &mut tx,
            &Posting {
                member_id: &member.id,
                kind: EntryKind::Bonus,
                reason: &format!("活动赠分：{}", campaign.name),
                order_id: None,
                reference: Some(&format!("campaign:{}:{}", claim.campaign_id, claim.id)),
                actor: ACTOR,
                approver: None,
                at: now,
            },
            spec.bonus_points,
            now,
            add_months_ms(now, benefits.expiry_months),
        )
        .await?;
        ledger_repo::save_member(
            &mut tx,
            &member.id,
            locked.points_balance + spec.bonus_points,
            locked.points_debt,
            &locked.tier,
        )
        .await?;
    }
    let mut coupon = None;
    if let Some(template) = &spec.coupon_template_id {
        // Answers the same coupon on a second try (source, ref, template).
        let issued = coupons::issue_in(
            app,
            &mut tx,
            &member.id,
            template,
            CouponSource::Campaign,
            &claim.id,
            now,
        )
        .await?;
        coupon = Some(format!("{} {}", issued.name, issued.code));
    }
    commit(tx).await?;
    Ok(coupon)
}

/// Where guests reach the server: HQ's setting, else `REGULARS_PUBLIC_URL`.
fn public_url(settings: &channels::ChannelSettings) -> String {
    settings
        .public_url
        .clone()
        .or_else(|| std::env::var("REGULARS_PUBLIC_URL").ok())
        .unwrap_or_else(|| "http://localhost:8080".into())
}
