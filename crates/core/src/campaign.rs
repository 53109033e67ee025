//! Campaign delivery rules, decided without I/O: whether a member may be
//! messaged on a channel now (consent, unsubscribe, de-duplication across
//! campaigns, frequency caps, quiet hours in the member's own time), who is
//! held out as the control group and which variant the others see, message
//! templates with variables in Chinese and English, the uplift a campaign
//! measured against its control group, webhook signatures and retry backoff.
//!
//! The sender (a later layer) asks [`decide`] at send time — never earlier —
//! so a consent withdrawn between scheduling and sending is honoured.

use crate::error::{DomainError, Result};
use crate::member::ConsentChannel;
use chrono::{Duration, NaiveDateTime, NaiveTime};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    Sms,
    Wechat,
    Email,
    /// The member's inbox in the H5 pages: seen only when the member opens
    /// them, so it needs no channel consent (the marketing opt-out still
    /// applies) and has no quiet hours.
    Inbox,
}

impl DeliveryChannel {
    pub const ALL: [DeliveryChannel; 4] = [
        DeliveryChannel::Sms,
        DeliveryChannel::Wechat,
        DeliveryChannel::Email,
        DeliveryChannel::Inbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryChannel::Sms => "sms",
            DeliveryChannel::Wechat => "wechat",
            DeliveryChannel::Email => "email",
            DeliveryChannel::Inbox => "inbox",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryChannel> {
        DeliveryChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The consent that must be given to use this channel, if any.
    pub fn consent(self) -> Option<ConsentChannel> {
        match self {
            DeliveryChannel::Sms => Some(ConsentChannel::Sms),
            DeliveryChannel::Wechat => Some(ConsentChannel::Wechat),
            DeliveryChannel::Email => Some(ConsentChannel::Email),
            DeliveryChannel::Inbox => None,
        }
    }

    /// Whether the channel interrupts the guest (and so keeps quiet hours).
    pub fn interrupts(self) -> bool {
        self != DeliveryChannel::Inbox
    }
}

/// At most `max` messages on `channel` (every channel when `None`) in any
/// `window_days` days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrequencyCap {
    pub channel: Option<DeliveryChannel>,
    pub max: u32,
    pub window_days: u32,
}

/// HQ's delivery rules. The defaults: quiet from 21:00 to 09:00, at most two
/// messages a week on each interrupting channel and four in all, and one
/// campaign message a day whatever the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPolicy {
    pub quiet_from: NaiveTime,
    pub quiet_until: NaiveTime,
    pub caps: Vec<FrequencyCap>,
    /// Two campaigns reaching the same member within this many hours: the
    /// second is skipped (the member hears from the chain once).
    pub dedup_hours: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        let weekly = |channel| FrequencyCap {
            channel: Some(channel),
            max: 2,
            window_days: 7,
        };
        DeliveryPolicy {
            quiet_from: hm(21, 0),
            quiet_until: hm(9, 0),
            caps: vec![
                weekly(DeliveryChannel::Sms),
                weekly(DeliveryChannel::Wechat),
                weekly(DeliveryChannel::Email),
                FrequencyCap {
                    channel: None,
                    max: 4,
                    window_days: 7,
                },
            ],
            dedup_hours: 24,
        }
    }
}

impl DeliveryPolicy {
    pub fn validate(&self) -> Result<()> {
        if self.quiet_from == self.quiet_until {
            return Err(DomainError::invalid(
                "quiet_hours",
                "start and end are the same time; leave quiet hours out by setting caps instead",
            ));
        }
        for cap in &self.caps {
            if cap.max == 0 || cap.window_days == 0 || cap.window_days > 366 {
                return Err(DomainError::invalid(
                    "caps",
                    "each cap needs max ≥ 1 and a window of 1–366 days",
                ));
            }
        }
        if self.dedup_hours > 24 * 30 {
            return Err(DomainError::invalid(
                "dedup_hours",
                "must be at most 720 (30 days)",
            ));
        }
        Ok(())
    }

    /// Whether `local` (the member's wall clock) is inside quiet hours. The
    /// window may wrap midnight (21:00–09:00) or not (13:00–14:00).
    pub fn is_quiet(&self, local: NaiveTime) -> bool {
        if self.quiet_from < self.quiet_until {
            local >= self.quiet_from && local < self.quiet_until
        } else {
            local >= self.quiet_from || local < self.quiet_until
        }
    }

    /// The first moment at or after `local` outside quiet hours.
    pub fn next_allowed(&self, local: NaiveDateTime) -> NaiveDateTime {
        if !self.is_quiet(local.time()) {
            return local;
        }
        let today_end = local.date().and_time(self.quiet_until);
        if today_end > local {
            today_end
        } else {
            today_end + Duration::days(1)
        }
    }
}

/// A message the member was already sent (any campaign), for caps and
/// de-duplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastSend {
    pub campaign_id: String,
    pub channel: DeliveryChannel,
    /// Unix ms.
    pub at: i64,
}

/// What the sender knows about the member at send time.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub consents: &'a [(ConsentChannel, bool)],
    /// The member opted out of all marketing (unsubscribe link or keyword).
    pub unsubscribed: bool,
    pub past_sends: &'a [PastSend],
    /// The member's wall clock now (their time zone, or the chain's).
    pub local_now: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Unsubscribed,
    NoConsent,
    /// Another campaign reached the member within the de-duplication window.
    Duplicate,
    Capped,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Unsubscribed => "unsubscribed",
            SkipReason::NoConsent => "no_consent",
            SkipReason::Duplicate => "duplicate",
            SkipReason::Capped => "capped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Quiet hours: try again at this wall-clock time of the member.
    Defer {
        until_local: NaiveDateTime,
    },
    Skip(SkipReason),
}

/// May campaign `campaign_id` message this member on `channel` now? Checked
/// in the order a guest would care about: an opt-out or a missing consent is
/// final; then the chain's own restraint (one campaign a day, caps); quiet
/// hours only delay.
pub fn decide(
    policy: &DeliveryPolicy,
    campaign_id: &str,
    channel: DeliveryChannel,
    member: &Recipient<'_>,
    now_ms: i64,
) -> Decision {
    if member.unsubscribed {
        return Decision::Skip(SkipReason::Unsubscribed);
    }
    if let Some(needed) = channel.consent() {
        let given = member
            .consents
            .iter()
            .any(|(c, granted)| *c == needed && *granted);
        if !given {
            return Decision::Skip(SkipReason::NoConsent);
        }
    }
    let dedup_from = now_ms - i64::from(policy.dedup_hours) * 3_600_000;
    if member
        .past_sends
        .iter()
        .any(|s| s.campaign_id != campaign_id && s.at > dedup_from && s.at <= now_ms)
    {
        return Decision::Skip(SkipReason::Duplicate);
    }
    for cap in &policy.caps {
        if cap.channel.is_some_and(|c| c != channel) {
            continue;
        }
        if cap.channel.is_none() && !channel.interrupts() {
            continue;
        }
        let from = now_ms - i64::from(cap.window_days) * 86_400_000;
        let used = member
            .past_sends
            .iter()
            .filter(|s| cap.channel.is_none_or(|c| c == s.channel) && s.channel.interrupts())
            .filter(|s| s.at > from && s.at <= now_ms)
            .count();
        if used >= cap.max as usize {
            return Decision::Skip(SkipReason::Capped);
        }
    }
    if channel.interrupts() && policy.is_quiet(member.local_now.time()) {
        return Decision::Defer {
            until_local: policy.next_allowed(member.local_now),
        };
    }
    Decision::Send
}

/// What the sender does with one message: the first of the campaign's
/// channels (in marketing's order of preference) the member may be reached on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelChoice {
    Send(DeliveryChannel),
    /// Every usable channel is in quiet hours: try again then.
    Defer {
        until_local: NaiveDateTime,
    },
    /// No channel may be used; the reason of the most preferred channel
    /// (an opt-out or a cap says more to marketing than a missing consent on
    /// a fallback channel).
    Skip(SkipReason),
}

/// Ask [`decide`] for each channel in order: a channel that may be used now
/// wins; a quiet-hours delay on a preferred channel beats sending on a
/// worse one now (the guest chose that channel), so the message waits.
pub fn choose_channel(
    policy: &DeliveryPolicy,
    campaign_id: &str,
    channels: &[DeliveryChannel],
    member: &Recipient<'_>,
    now_ms: i64,
) -> ChannelChoice {
    let mut first_skip = None;
    for channel in channels {
        match decide(policy, campaign_id, *channel, member, now_ms) {
            Decision::Send => return ChannelChoice::Send(*channel),
            Decision::Defer { until_local } => return ChannelChoice::Defer { until_local },
            Decision::Skip(reason) => {
                first_skip.get_or_insert(reason);
            }
        }
    }
    ChannelChoice::Skip(first_skip.unwrap_or(SkipReason::NoConsent))
}

// ---------------------------------------------------------------------------
// The campaign itself

// ---------------------------------------------------------------------------

/// What starts a campaign's messages to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Once, to the whole audience, at `send_at` (RFC 3339): holiday promotions.
    Scheduled { send_at: String },
    /// After sign-up.
    Welcome,
    /// `days_before` the member's birthday (0–30), with the tier's birthday pack.
    Birthday { days_before: u32 },
    /// On the anniversary of joining.
    Anniversary,
    /// When the member has not come for `days` (14–730) after coming before.
    Dormant { days: u32 },
    /// A VIP whose spend fell (from the nightly scoring): a staff call first.
    VipDecline,
    /// On an upgrade, and "¥N to the next tier".
    TierUpgrade,
    /// `days_before` points expire (1–90).
    PointsExpiring { days_before: u32 },
    /// `hours_after` an order (1–72): the survey invitation.
    PostVisit { hours_after: u32 },
    /// A new dish, to members whose taste matches it.
    NewDish { sku: String },
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Scheduled { .. } => "scheduled",
            Trigger::Welcome => "welcome",
            Trigger::Birthday { .. } => "birthday",
            Trigger::Anniversary => "anniversary",
            Trigger::Dormant { .. } => "dormant",
            Trigger::VipDecline => "vip_decline",
            Trigger::TierUpgrade => "tier_upgrade",
            Trigger::PointsExpiring { .. } => "points_expiring",
            Trigger::PostVisit { .. } => "post_visit",
            Trigger::NewDish { .. } => "new_dish",
        }
    }

    fn validate(&self) -> Result<()> {
        let within = |value: u32, low: u32, high: u32, what: &str| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(DomainError::invalid(
                    "trigger",
                    format!("{what} must be between {low} and {high}"),
                ))
            }
        };
        match self {
            Trigger::Scheduled { send_at } => chrono::DateTime::parse_from_rfc3339(send_at)
                .map(|_| ())
                .map_err(|_| {
                    DomainError::invalid(
                        "trigger",
                        "send_at must be RFC 3339 with offset, e.g. 2026-12-24T10:00:00+08:00",
                    )
                }),
            Trigger::Birthday { days_before } => within(*days_before, 0, 30, "days_before"),
            Trigger::Dormant { days } => within(*days, 14, 730, "days"),
            Trigger::PointsExpiring { days_before } => within(*days_before, 1, 90, "days_before"),
            Trigger::PostVisit { hours_after } => within(*hours_after, 1, 72, "hours_after"),
            Trigger::NewDish { sku } if sku.trim().is_empty() || sku.chars().count() > 64 => Err(
                DomainError::invalid("trigger", "sku must be 1–64 characters"),
            ),
            _ => Ok(()),
        }
    }
}

/// One version of the message; members outside the control group are split
/// between variants by weight (A/B tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[schema(value_type = Object)]
    pub template: Template,
}

fn one() -> u32 {
    1
}

/// A campaign as marketing defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub name: String,
    pub trigger: Trigger,
    /// A saved segment that narrows the audience (all members when absent).
    #[serde(default)]
    pub segment_id: Option<String>,
    /// Channels in order of preference: each member gets the message on the
    /// first one they may be reached on.
    #[schema(value_type = Vec<String>)]
    pub channels: Vec<DeliveryChannel>,
    pub variants: Vec<Variant>,
    /// Members held out and measured (‰); 100 = 10%.
    #[serde(default = "ten_percent")]
    pub control_permille: u32,
    /// A coupon template issued with the message.
    #[serde(default)]
    pub coupon_template_id: Option<String>,
    /// Points granted with the message.
    #[serde(default)]
    pub bonus_points: i64,
    /// The most points and coupons the campaign may give away in all.
    #[serde(default)]
    pub budget_points: Option<i64>,
    #[serde(default)]
    pub budget_coupons: Option<i64>,
    /// Visits and spend this many days after a message count for the campaign.
    #[serde(default = "two_weeks")]
    pub attribution_days: u32,
}

fn ten_percent() -> u32 {
    100
}

fn two_weeks() -> u32 {
    14
}

impl CampaignSpec {
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "1–100 characters"));
        }
        self.trigger.validate()?;
        if self.channels.is_empty() {
            return Err(DomainError::invalid(
                "channels",
                "name at least one channel",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if !self.channels.iter().all(|c| seen.insert(*c)) {
            return Err(DomainError::invalid("channels", "a channel is named twice"));
        }
        if self.variants.is_empty() || self.variants.len() > 5 {
            return Err(DomainError::invalid("variants", "1 to 5 variants"));
        }
        let mut names = std::collections::BTreeSet::new();
        for v in &self.variants {
            let n = v.name.trim();
            if n.is_empty() || n.chars().count() > 40 || !names.insert(n) {
                return Err(DomainError::invalid(
                    "variants",
                    "each variant needs its own name of 1–40 characters",
                ));
            }
            v.template.validate()?;
        }
        let weights: Vec<u32> = self.variants.iter().map(|v| v.weight).collect();
        validate_arms(self.control_permille, &weights)?;
        if !(0..=100_000).contains(&self.bonus_points) {
            return Err(DomainError::invalid("bonus_points", "0 to 100,000 points"));
        }
        for (field, budget) in [
            ("budget_points", self.budget_points),
            ("budget_coupons", self.budget_coupons),
        ] {
            if budget.is_some_and(|b| b < 0) {
                return Err(DomainError::invalid(field, "must not be negative"));
            }
        }
        if !(1..=90).contains(&self.attribution_days) {
            return Err(DomainError::invalid("attribution_days", "1 to 90 days"));
        }
        Ok(())
    }

    pub fn weights(&self) -> Vec<u32> {
        self.variants.iter().map(|v| v.weight).collect()
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    /// Its audience is above HQ's line: someone else must approve it.
    PendingApproval,
    Active,
    Paused,
    Ended,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 5] = [
        CampaignStatus::Draft,
        CampaignStatus::PendingApproval,
        CampaignStatus::Active,
        CampaignStatus::Paused,
        CampaignStatus::Ended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::PendingApproval => "pending_approval",
            CampaignStatus::Active => "active",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignStatus> {
        CampaignStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Only a draft can be edited: what was approved is what runs.
    pub fn editable(self) -> bool {
        self == CampaignStatus::Draft
    }
}

/// What marketing or HQ asks of a campaign's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// Submit a draft: active at once, or pending when the audience is above
    /// the approval line.
    Submit {
        needs_approval: bool,
    },
    Approve,
    /// Send back to draft with a reason (recorded by the caller).
    Reject,
    Pause,
    Resume,
    End,
}

/// The status after `change`, or why it is not allowed now.
pub fn next_status(current: CampaignStatus, change: StatusChange) -> Result<CampaignStatus> {
    use CampaignStatus::*;
    let next = match (current, change) {
        (Draft, StatusChange::Submit { needs_approval }) => {
            if needs_approval {
                PendingApproval
            } else {
                Active
            }
        }
        (PendingApproval, StatusChange::Approve) => Active,
        (PendingApproval, StatusChange::Reject) => Draft,
        (Active, StatusChange::Pause) => Paused,
        (Paused, StatusChange::Resume) => Active,
        (Draft | PendingApproval | Active | Paused, StatusChange::End) => Ended,
        _ => {
            return Err(DomainError::invalid(
                "status",
                format!(
                    "a campaign that is {} cannot be {change:?}",
                    current.as_str()
                )
                .to_lowercase(),
            ))
        }
    };
    Ok(next)
}

// ---------------------------------------------------------------------------
// Control group and variants
// ---------------------------------------------------------------------------

/// Which arm of a campaign a member is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "arm", content = "variant")]
pub enum Arm {
    /// Held out: sent nothing, measured all the same.
    Control,
    /// Sent variant number `n` (0 = A, 1 = B, …).
    Variant(usize),
}

/// A uniform number in [0, 1) fixed by campaign and member: the same member
/// lands in the same arm on every node, after every crash and on every rerun.
fn draw(campaign_id: &str, member_id: &str) -> f64 {
    let digest = Sha256::digest(format!("{campaign_id}:{member_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The member's arm: `control_permille` of members are held out, the rest
/// split between variants by their weights (at least one variant, weights
/// not all zero — see [`validate_arms`]).
pub fn assign(
    campaign_id: &str,
    member_id: &str,
    control_permille: u32,
    variant_weights: &[u32],
) -> Arm {
    let u = draw(campaign_id, member_id);
    let control = f64::from(control_permille.min(1000)) / 1000.0;
    if u < control {
        return Arm::Control;
    }
    let total: u64 = variant_weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return Arm::Variant(0);
    }
    // Rescale the rest of [control, 1) onto the variants.
    let v = (u - control) / (1.0 - control).max(f64::MIN_POSITIVE);
    let mut edge = 0.0;
    for (n, w) in variant_weights.iter().enumerate() {
        edge += *w as f64 / total as f64;
        if v < edge {
            return Arm::Variant(n);
        }
    }
    Arm::Variant(variant_weights.len().saturating_sub(1))
}

pub fn validate_arms(control_permille: u32, variant_weights: &[u32]) -> Result<()> {
    if control_permille >= 1000 {
        return Err(DomainError::invalid(
            "control_permille",
            "must be below 1000 (someone has to receive the campaign)",
        ));
    }
    if variant_weights.is_empty() || variant_weights.iter().all(|w| *w == 0) {
        return Err(DomainError::invalid(
            "variants",
            "at least one variant with a weight above 0",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

/// Variables a message may use.
pub const TEMPLATE_VARIABLES: [&str; 8] = [
    "name",
    "tier",
    "balance",
    "expiring_points",
    "expiring_date",
    "coupon",
    "store",
    "unsubscribe",
];

/// A message in Chinese and English; `{name}` is a variable, `{{` and `}}`
/// are literal braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Brace(char),
    Var(&'a str),
}

fn pieces(text: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            out.push(Piece::Brace('{'));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            out.push(Piece::Brace('}'));
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| "a `{` is not closed (write `{{` for a brace)".to_string())?;
            out.push(Piece::Var(after[..end].trim()));
            rest = &after[end + 1..];
        } else if rest.starts_with('}') {
            return Err("a `}` has no `{` (write `}}` for a brace)".into());
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

impl Template {
    /// Both languages present, well formed and using only known variables.
    pub fn validate(&self) -> Result<()> {
        for (field, text) in [("template.zh", &self.zh), ("template.en", &self.en)] {
            if text.trim().is_empty() {
                return Err(DomainError::invalid(field, "must not be empty"));
            }
            if text.chars().count() > 1000 {
                return Err(DomainError::invalid(field, "at most 1,000 characters"));
            }
            for piece in pieces(text).map_err(|reason| DomainError::invalid(field, reason))? {
                if let Piece::Var(v) = piece {
                    if !TEMPLATE_VARIABLES.contains(&v) {
                        return Err(DomainError::invalid(
                            field,
                            format!(
                                "unknown variable {{{v}}}; known: {}",
                                TEMPLATE_VARIABLES.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The message in `lang` ("en" for English, Chinese otherwise) with the
    /// variables filled in; a variable without a value is an error, so no
    /// guest ever reads a raw `{coupon}`.
    pub fn render(&self, lang: &str, values: &BTreeMap<&str, String>) -> Result<String> {
        let (field, text) = if lang.starts_with("en") {
            ("template.en", &self.en)
        } else {
            ("template.zh", &self.zh)
        };
        let mut out = String::with_capacity(text.len() + 32);
        for piece in pieces(text).map_err(|reason| DomainError::invalid(field, reason))? {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Brace(c) => out.push(c),
                Piece::Var(v) => {
                    out.push_str(values.get(v).ok_or_else(|| {
                        DomainError::invalid(field, format!("no value for {{{v}}}"))
                    })?)
                }
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Uplift
// ---------------------------------------------------------------------------

/// An estimate with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of a proportion.
fn wilson(successes: u64, n: u64) -> (f64, f64, f64) {
    if n == 0 {
        return (0.0, 0.0, 1.0);
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    (p, centre - half, centre + half)
}

/// Uplift in a rate (visited, redeemed): treated rate − control rate, with
/// Newcombe's hybrid score interval (good for small groups and rates near 0,
/// where the textbook Wald interval is too narrow).
pub fn rate_uplift(treated: u64, treated_n: u64, control: u64, control_n: u64) -> Interval {
    let (p1, l1, u1) = wilson(treated, treated_n);
    let (p2, l2, u2) = wilson(control, control_n);
    let d = p1 - p2;
    Interval {
        estimate: d,
        low: d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        high: d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    }
}

/// Uplift in a mean (spend per member, in fen): difference of means with
/// Welch's standard error and a normal 95% interval (the groups a chain
/// measures are hundreds of members or more).
pub fn mean_uplift(treated: &[f64], control: &[f64]) -> Option<Interval> {
    if treated.len() < 2 || control.len() < 2 {
        return None;
    }
    let stats = |xs: &[f64]| {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var / n)
    };
    let (m1, se1) = stats(treated);
    let (m2, se2) = stats(control);
    let d = m1 - m2;
    let se = (se1 + se2).sqrt();
    Some(Interval {
        estimate: d,
        low: d - Z95 * se,
        high: d + Z95 * se,
    })
}

// ---------------------------------------------------------------------------
// Webhooks and retries
// ---------------------------------------------------------------------------

/// The `Regulars-Signature` header of a webhook: `t=<unix seconds>,v1=<hex>`
/// where the hex is HMAC-SHA256 of `<t>.<body>` under the subscription's
/// secret. Signing the time stops a captured delivery being replayed later.
pub fn sign_webhook(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(webhook_mac(secret, unix_seconds, body))
    )
}

fn webhook_mac(secret: &[u8], unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `t=<seconds>,v1=<hex>`")]
    Malformed,
    #[error("the signature is older or newer than the allowed tolerance")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// What a receiver does with the header: checks the time is within
/// `tolerance_seconds` of `now` and the MAC matches, in constant time.
pub fn verify_webhook(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix_seconds: i64,
    tolerance_seconds: i64,
) -> std::result::Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(given)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    if (now_unix_seconds - t).abs() > tolerance_seconds {
        return Err(SignatureError::Stale);
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// How long to wait before attempt `attempt` (1 = the first retry):
/// 30 s doubling to at most 6 h, with `jitter` in [0, 1) spreading retries
/// of many messages over the last quarter of the wait.
pub fn retry_delay(attempt: u32, jitter: f64) -> Duration {
    let base = 30i64.saturating_mul(1i64 << attempt.saturating_sub(1).min(20));
    let capped = base.min(6 * 3600);
    let spread = (capped as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as i64;
    Duration::seconds(capped - spread)
}

/// Attempts after which a message is a dead letter (shown in the console).
pub const MAX_ATTEMPTS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 24)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .unwrap()
    }

    #[test]
    fn the_first_reachable_channel_is_chosen_and_quiet_hours_wait_for_it() {
        let policy = DeliveryPolicy::default();
        let sms_only = [(ConsentChannel::Sms, true)];
        let member_at = |consents, h| Recipient {
            consents,
            unsubscribed: false,
            past_sends: &[],
            local_now: at(h, 0),
        };
        let prefs = [
            DeliveryChannel::Wechat,
            DeliveryChannel::Sms,
            DeliveryChannel::Inbox,
        ];
        assert_eq!(
            choose_channel(&policy, "c", &prefs, &member_at(&sms_only, 12), 0),
            ChannelChoice::Send(DeliveryChannel::Sms)
        );
        assert_eq!(
            choose_channel(&policy, "c", &prefs, &member_at(&sms_only, 22), 0),
            ChannelChoice::Defer {
                until_local: at(9, 0) + Duration::days(1)
            }
        );
        assert_eq!(
            choose_channel(&policy, "c", &prefs, &member_at(&[], 22), 0),
            ChannelChoice::Send(DeliveryChannel::Inbox)
        );
        assert_eq!(
            choose_channel(&policy, "c", &prefs[..2], &member_at(&[], 12), 0),
            ChannelChoice::Skip(SkipReason::NoConsent)
        );
    }

    const ALL_CONSENTS: [(ConsentChannel, bool); 3] = [
        (ConsentChannel::Sms, true),
        (ConsentChannel::Email, true),
        (ConsentChannel::Wechat, true),
    ];

    fn member<'a>(consents: &'a [(ConsentChannel, bool)], sends: &'a [PastSend]) -> Recipient<'a> {
        Recipient {
            consents,
            unsubscribed: false,
            past_sends: sends,
            local_now: at(12, 0),
        }
    }

    const NOW: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn quiet_hours_wrap_midnight_and_defer_to_their_end() {
        let p = DeliveryPolicy::default();
        assert!(p.is_quiet(at(21, 0).time()));
        assert!(p.is_quiet(at(23, 59).time()));
        assert!(p.is_quiet(at(0, 0).time()));
        assert!(p.is_quiet(at(8, 59).time()));
        assert!(!p.is_quiet(at(9, 0).time()));
        assert!(!p.is_quiet(at(20, 59).time()));
        assert_eq!(p.next_allowed(at(22, 30)), at(9, 0) + Duration::days(1));
        assert_eq!(p.next_allowed(at(3, 0)), at(9, 0));
        assert_eq!(p.next_allowed(at(15, 0)), at(15, 0));
        let lunch = DeliveryPolicy {
            quiet_from: at(13, 0).time(),
            quiet_until: at(14, 0).time(),
            ..DeliveryPolicy::default()
        };
        assert!(lunch.is_quiet(at(13, 30).time()));
        assert!(!lunch.is_quiet(at(23, 0).time()));
        assert_eq!(lunch.next_allowed(at(13, 30)), at(14, 0));
    }

    #[test]
    fn consent_and_unsubscribe_are_final() {
        let p = DeliveryPolicy::default();
        let only_sms = [(ConsentChannel::Sms, true), (ConsentChannel::Email, false)];
        let m = member(&only_sms, &[]);
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Sms, &m, NOW),
            Decision::Send
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Email, &m, NOW),
            Decision::Skip(SkipReason::NoConsent)
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Wechat, &m, NOW),
            Decision::Skip(SkipReason::NoConsent)
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Inbox, &m, NOW),
            Decision::Send
        );
        let gone = Recipient {
            unsubscribed: true,
            ..member(&ALL_CONSENTS, &[])
        };
        for channel in DeliveryChannel::ALL {
            assert_eq!(
                decide(&p, "c1", channel, &gone, NOW),
                Decision::Skip(SkipReason::Unsubscribed)
            );
        }
        // Outside quiet hours only: consent is checked before the clock.
        let night = Recipient {
            local_now: at(23, 0),
            ..member(&only_sms, &[])
        };
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Email, &night, NOW),
            Decision::Skip(SkipReason::NoConsent)
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Sms, &night, NOW),
            Decision::Defer {
                until_local: at(9, 0) + Duration::days(1)
            }
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Inbox, &night, NOW),
            Decision::Send
        );
    }

    #[test]
    fn caps_count_recent_sends_on_the_channel_and_in_all() {
        let p = DeliveryPolicy::default();
        let send = |campaign: &str, channel, hours_ago: i64| PastSend {
            campaign_id: campaign.into(),
            channel,
            at: NOW - hours_ago * HOUR,
        };
        // Two SMS this week (of this campaign's earlier steps): SMS capped, WeChat not.
        let sends = [
            send("c1", DeliveryChannel::Sms, 30),
            send("c1", DeliveryChannel::Sms, 100),
        ];
        let m = member(&ALL_CONSENTS, &sends);
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Sms, &m, NOW),
            Decision::Skip(SkipReason::Capped)
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Wechat, &m, NOW),
            Decision::Send
        );
        // One of them eight days ago: out of the window.
        let sends = [
            send("c1", DeliveryChannel::Sms, 30),
            send("c1", DeliveryChannel::Sms, 8 * 24),
        ];
        let m = member(&ALL_CONSENTS, &sends);
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Sms, &m, NOW),
            Decision::Send
        );
        // Four across channels this week: every interrupting channel capped,
        // the inbox still open.
        let sends = [
            send("c1", DeliveryChannel::Sms, 30),
            send("c1", DeliveryChannel::Email, 40),
            send("c1", DeliveryChannel::Wechat, 50),
            send("c1", DeliveryChannel::Email, 60),
        ];
        let m = member(&ALL_CONSENTS, &sends);
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Sms, &m, NOW),
            Decision::Skip(SkipReason::Capped)
        );
        assert_eq!(
            decide(&p, "c1", DeliveryChannel::Inbox, &m, NOW),
            Decision::Send
        );
    }

    #[test]
    fn another_campaign_the_same_day_is_a_duplicate() {
        let p = DeliveryPolicy::default();
        let sends = [PastSend {
            campaign_id: "birthday".into(),
            channel: DeliveryChannel::Inbox,
            at: NOW - 5 * HOUR,
        }];
        let m = member(&ALL_CONSENTS, &sends);
        assert_eq!(
            decide(&p, "winback", DeliveryChannel::Sms, &m, NOW),
            Decision::Skip(SkipReason::Duplicate)
        );
        // The same campaign's own next step is not a duplicate of itself.
        assert_eq!(
            decide(&p, "birthday", DeliveryChannel::Sms, &m, NOW),
            Decision::Send
        );
        let later = NOW + 20 * HOUR;
        assert_eq!(
            decide(&p, "winback", DeliveryChannel::Sms, &m, later),
            Decision::Send
        );
    }

    #[test]
    fn policy_validation_names_the_problem() {
        assert!(DeliveryPolicy::default().validate().is_ok());
        let same = DeliveryPolicy {
            quiet_until: at(21, 0).time(),
            ..DeliveryPolicy::default()
        };
        assert!(same.validate().is_err());
        let zero = DeliveryPolicy {
            caps: vec![FrequencyCap {
                channel: None,
                max: 0,
                window_days: 7,
            }],
            ..DeliveryPolicy::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn arms_are_stable_and_in_proportion() {
        let weights = [1, 1];
        let mut counts = [0usize; 3];
        for n in 0..20_000 {
            let member = format!("m{n}");
            let arm = assign("spring", &member, 100, &weights);
            assert_eq!(arm, assign("spring", &member, 100, &weights), "stable");
            match arm {
                Arm::Control => counts[0] += 1,
                Arm::Variant(v) => counts[v + 1] += 1,
            }
        }
        // 10% control, the rest split evenly: within 4 standard deviations.
        assert!((counts[0] as i64 - 2_000).abs() < 170, "{counts:?}");
        assert!((counts[1] as i64 - 9_000).abs() < 290, "{counts:?}");
        assert!((counts[2] as i64 - 9_000).abs() < 290, "{counts:?}");
        // Another campaign draws afresh: not the same members held out.
        let both = (0..20_000)
            .filter(|n| {
                let m = format!("m{n}");
                assign("spring", &m, 100, &weights) == Arm::Control
                    && assign("autumn", &m, 100, &weights) == Arm::Control
            })
            .count();
        assert!(both < 300, "control groups are independent: {both}");
        assert!(validate_arms(1000, &[1]).is_err());
        assert!(validate_arms(100, &[]).is_err());
        assert!(validate_arms(100, &[0, 0]).is_err());
        assert!(validate_arms(0, &[3, 1]).is_ok());
    }

    #[test]
    fn templates_fill_variables_in_either_language() {
        let t = Template {
            zh: "{name}您好，您有 {expiring_points} 积分将于 {expiring_date} 到期。{{退订回T}}"
                .into(),
            en: "Hi {name}, {expiring_points} points expire on {expiring_date}.".into(),
        };
        t.validate().unwrap();
        let values: BTreeMap<&str, String> = [
            ("name", "王女士".to_string()),
            ("expiring_points", "320".into()),
            ("expiring_date", "2026-12-31".into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            t.render("zh-CN", &values).unwrap(),
            "王女士您好，您有 320 积分将于 2026-12-31 到期。{退订回T}"
        );
        assert_eq!(
            t.render("en", &values).unwrap(),
            "Hi 王女士, 320 points expire on 2026-12-31."
        );
        let missing: BTreeMap<&str, String> = BTreeMap::new();
        assert!(t.render("zh", &missing).is_err(), "never a raw {{name}}");
        for bad in ["{nmae}您好", "您好 {name", "您好 }", ""] {
            let t = Template {
                zh: bad.into(),
                en: "ok".into(),
            };
            assert!(t.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rate_uplift_interval_covers_the_true_effect() {
        // 200 simulated campaigns with a true uplift of 5 points (10% → 15%);
        // a 95% interval should contain it about 190 times.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut covered = 0;
        for _ in 0..200 {
            let treated = (0..2_000).filter(|_| rng.gen::<f64>() < 0.15).count() as u64;
            let control = (0..500).filter(|_| rng.gen::<f64>() < 0.10).count() as u64;
            let i = rate_uplift(treated, 2_000, control, 500);
            assert!(i.low <= i.estimate && i.estimate <= i.high);
            if i.contains(0.05) {
                covered += 1;
            }
        }
        assert!((180..=199).contains(&covered), "covered {covered} of 200");
        // No difference and tiny groups: the interval is wide and holds 0.
        let i = rate_uplift(1, 10, 1, 10);
        assert!(i.contains(0.0) && i.high - i.low > 0.4);
    }

    #[test]
    fn mean_uplift_interval_covers_the_true_effect() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut covered = 0;
        for _ in 0..200 {
            let treated: Vec<f64> = (0..1_000)
                .map(|_| rng.gen_range(0.0..20_000.0) + 1_500.0)
                .collect();
            let control: Vec<f64> = (0..300).map(|_| rng.gen_range(0.0..20_000.0)).collect();
            let i = mean_uplift(&treated, &control).unwrap();
            if i.contains(1_500.0) {
                covered += 1;
            }
        }
        assert!((180..=199).contains(&covered), "covered {covered} of 200");
        assert!(mean_uplift(&[1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn webhook_signatures_verify_and_reject_tampering() {
        let secret = b"whsec_test";
        let body = br#"{"kind":"order.accrued","points":213}"#;
        let header = sign_webhook(secret, 1_800_000_000, body);
        assert!(header.starts_with("t=1800000000,v1="));
        assert_eq!(
            verify_webhook(secret, &header, body, 1_800_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify_webhook(
                secret,
                &header,
                br#"{"kind":"order.accrued","points":999}"#,
                1_800_000_100,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(b"other", &header, body, 1_800_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(secret, &header, body, 1_800_001_000, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_webhook(secret, "v1=abc", body, 1_800_000_000, 300),
            Err(SignatureError::Malformed)
        );
        // A replay with a new time but the old MAC does not verify.
        let forged = header.replace("t=1800000000", "t=1800000900");
        assert_eq!(
            verify_webhook(secret, &forged, body, 1_800_000_900, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1, 0.0), Duration::seconds(30));
        assert_eq!(retry_delay(2, 0.0), Duration::seconds(60));
        assert_eq!(retry_delay(5, 0.0), Duration::seconds(480));
        assert_eq!(retry_delay(30, 0.0), Duration::hours(6));
        assert!(retry_delay(3, 0.99) < retry_delay(3, 0.0));
        assert!(retry_delay(3, 0.99) > Duration::seconds(90));
    }

    fn spec() -> CampaignSpec {
        serde_json::from_value(serde_json::json!({
            "name": "沉睡会员唤醒",
            "trigger": {"kind": "dormant", "days": 60},
            "channels": ["wechat", "sms", "inbox"],
            "variants": [
                {"name": "A", "template": {"zh": "{name}，好久不见！", "en": "{name}, we miss you!"}},
                {"name": "B", "weight": 2, "template": {"zh": "{name}，送您一张券：{coupon}", "en": "{name}: {coupon}"}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_campaign_spec_reads_with_defaults_and_checks_each_field() {
        let s = spec();
        assert_eq!(s.control_permille, 100);
        assert_eq!(s.attribution_days, 14);
        assert_eq!(s.weights(), vec![1, 2]);
        s.validate().unwrap();
        let broken: Vec<(CampaignSpec, &str)> = vec![
            (
                CampaignSpec {
                    name: " ".into(),
                    ..spec()
                },
                "name",
            ),
            (
                CampaignSpec {
                    trigger: Trigger::Dormant { days: 3 },
                    ..spec()
                },
                "trigger",
            ),
            (
                CampaignSpec {
                    trigger: Trigger::Scheduled {
                        send_at: "tomorrow".into(),
                    },
                    ..spec()
                },
                "trigger",
            ),
            (
                CampaignSpec {
                    channels: vec![],
                    ..spec()
                },
                "channels",
            ),
            (
                CampaignSpec {
                    channels: vec![DeliveryChannel::Sms, DeliveryChannel::Sms],
                    ..spec()
                },
                "channels",
            ),
            (
                CampaignSpec {
                    variants: vec![],
                    ..spec()
                },
                "variants",
            ),
            (
                CampaignSpec {
                    control_permille: 1000,
                    ..spec()
                },
                "control_permille",
            ),
            (
                CampaignSpec {
                    bonus_points: -5,
                    ..spec()
                },
                "bonus_points",
            ),
            (
                CampaignSpec {
                    budget_coupons: Some(-1),
                    ..spec()
                },
                "budget_coupons",
            ),
            (
                CampaignSpec {
                    attribution_days: 0,
                    ..spec()
                },
                "attribution_days",
            ),
        ];
        for (s, field) in broken {
            match s.validate() {
                Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut twice = spec();
        twice.variants[1].name = "A".into();
        assert!(twice.validate().is_err());
        let mut unknown = spec();
        unknown.variants[0].template.zh = "{phone}".into();
        assert!(unknown.validate().is_err());
        assert!(
            serde_json::from_value::<CampaignSpec>(serde_json::json!({
                "name": "x", "trigger": {"kind": "birthday"}, "channels": ["sms"], "variants": []
            }))
            .is_err(),
            "birthday needs days_before"
        );
    }

    #[test]
    fn status_changes_follow_the_approval_flow() {
        use CampaignStatus::*;
        let submit = |needs_approval| StatusChange::Submit { needs_approval };
        assert_eq!(next_status(Draft, submit(false)).unwrap(), Active);
        assert_eq!(next_status(Draft, submit(true)).unwrap(), PendingApproval);
        assert_eq!(
            next_status(PendingApproval, StatusChange::Approve).unwrap(),
            Active
        );
        assert_eq!(
            next_status(PendingApproval, StatusChange::Reject).unwrap(),
            Draft
        );
        assert_eq!(next_status(Active, StatusChange::Pause).unwrap(), Paused);
        assert_eq!(next_status(Paused, StatusChange::Resume).unwrap(), Active);
        assert_eq!(next_status(Active, StatusChange::End).unwrap(), Ended);
        assert!(
            next_status(Draft, StatusChange::Approve).is_err(),
            "nothing to approve"
        );
        assert!(next_status(Active, StatusChange::Approve).is_err());
        assert!(next_status(Ended, StatusChange::Resume).is_err());
        assert!(next_status(Active, submit(false)).is_err());
        assert!(Draft.editable() && !Active.editable());
    }

    proptest! {
        #[test]
        fn template_parsing_never_panics(text in "\\PC{0,60}") {
            let t = Template { zh: text.clone(), en: text };
            let _ = t.validate();
            let _ = t.render("zh", &BTreeMap::new());
        }

        #[test]
        fn a_deferred_send_lands_outside_quiet_hours(h in 0u32..24, m in 0u32..60,
            from_h in 0u32..24, until_h in 0u32..24) {
            prop_assume!(from_h != until_h);
            let p = DeliveryPolicy {
                quiet_from: NaiveTime::from_hms_opt(from_h, 0, 0).unwrap(),
                quiet_until: NaiveTime::from_hms_opt(until_h, 0, 0).unwrap(),
                ..DeliveryPolicy::default()
            };
            let now = at(h, m);
            let next = p.next_allowed(now);
            prop_assert!(next >= now);
            prop_assert!(next - now <= Duration::hours(24));
            prop_assert!(!p.is_quiet(next.time()));
        }
    }
}
