//! How points are earned. Rules are data (stored as JSON, versioned, edited in
//! the console); this module turns an order, the member's situation and the
//! active rule set into points and the explanation lines that produced them.
//!
//! Evaluation is deterministic integer arithmetic (always `floor`, never
//! negative), in a fixed order: exclusions → minimum spend → base → tier →
//! multipliers → product bonuses → flat bonuses → caps. Multipliers are
//! additive on the base yuan: ×2 and ×1.5 together give +100% and +50% of the
//! base, they do not compound. `Earning::points` is always the sum of the
//! explanation lines' points.

use crate::order::{Channel, Order, OrderLine};
use crate::tier::Tier;
use crate::{DomainError, Result};
use chrono::{Datelike, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Everything about the order and the member that rules may look at.
#[derive(Debug, Clone)]
pub struct EarnContext<'a> {
    pub order: &'a Order,
    pub store_code: &'a str,
    pub brand_code: &'a str,
    /// The member's tier before this order (the crossing order earns at the old tier).
    pub tier: Tier,
    pub tier_multiplier_permille: i64,
    /// 1–12, when the member's birthday is known.
    pub birthday_month: Option<u32>,
    /// Points this member already earned today (chain's calendar day), for daily caps.
    pub points_earned_today: i64,
    /// SKUs flagged as new dishes on the menu.
    pub new_skus: &'a BTreeSet<String>,
}

/// One line of the explanation a member or staff can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExplanationLine {
    /// `base`, `tier`, or the id of the rule that produced the line.
    pub rule: String,
    /// Human text, Chinese first: "金卡 ×1.5: +64".
    pub text: String,
    /// Signed points this line contributed (caps are negative).
    pub points: i64,
}

/// What an order earns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Earning {
    pub eligible_fen: i64,
    pub points: i64,
    pub lines: Vec<ExplanationLine>,
}

/// A versioned set of active rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleSet {
    pub version: i64,
    pub rules: Vec<EarningRule>,
}

impl RuleSet {
    /// The rule set of a fresh database: version 0, no rules, so orders earn
    /// by the API.md default formula.
    pub fn default_rules() -> RuleSet {
        RuleSet {
            version: 0,
            rules: Vec::new(),
        }
    }

    /// Whether any enabled rule caps points per day, i.e. whether
    /// [`EarnContext::points_earned_today`] matters (callers may skip the
    /// lookup otherwise and pass 0).
    pub fn has_daily_cap(&self) -> bool {
        self.rules.iter().any(|r| {
            r.enabled
                && matches!(
                    r.effect,
                    Effect::Cap {
                        per_day: Some(_),
                        ..
                    }
                )
        })
    }
}

// ---------------------------------------------------------------------------
// Rule data
// ---------------------------------------------------------------------------

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One earning rule, as stored (JSON) and edited in the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarningRule {
    /// Stable id, 1–64 characters of `[a-z0-9_-]`, e.g. `afternoon_x2`.
    pub id: String,
    /// Display name, 1–100 characters, e.g. "工作日下午茶 ×2".
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub scope: Scope,
    pub effect: Effect,
}

/// When a rule applies. Every present condition must hold; an absent (empty)
/// condition matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Store codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// Brand codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// ISO weekdays, 1 = Monday … 7 = Sunday, of the order's local time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<u8>,
    /// "HH:MM", inclusive, on the order's local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_from: Option<String>,
    /// "HH:MM", exclusive. A `time_to` earlier than `time_from` is a window
    /// across midnight ("22:00" … "02:00").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to: Option<String>,
    /// First day (inclusive) of the local date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_on: Option<NaiveDate>,
    /// Last day (inclusive) of the local date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_on: Option<NaiveDate>,
    /// Only in the member's birthday month.
    #[serde(default, skip_serializing_if = "is_false")]
    pub birthday_month: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Adds `(permille − 1000)/1000` of the base yuan: 2000 = ×2, 1100 = +10%.
    Multiplier { permille: i64 },
    /// Like a multiplier, on the matching dishes only.
    ProductBonus {
        #[serde(default)]
        skus: Vec<String>,
        #[serde(default)]
        categories: Vec<String>,
        /// Dishes flagged as new on the menu.
        #[serde(default)]
        new_dishes: bool,
        permille: i64,
    },
    /// A fixed number of extra points.
    FlatBonus { points: i64 },
    /// These dishes earn nothing.
    Exclude {
        #[serde(default)]
        skus: Vec<String>,
        #[serde(default)]
        categories: Vec<String>,
    },
    /// Orders below this eligible amount earn nothing.
    MinimumSpend { fen: i64 },
    /// Upper limits on the points of one order and of one member's day.
    Cap {
        per_order: Option<i64>,
        per_day: Option<i64>,
    },
}

// ---------------------------------------------------------------------------
// Scope matching
// ---------------------------------------------------------------------------

/// "HH:MM" (two digits each, 00:00–23:59) as minutes since midnight.
pub(crate) fn parse_hhmm(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let digit = |i: usize| b[i].is_ascii_digit().then(|| u32::from(b[i] - b'0'));
    let h = digit(0)? * 10 + digit(1)?;
    let m = digit(3)? * 10 + digit(4)?;
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl Scope {
    /// Whether every condition holds for this order and member. A malformed
    /// time (a rule that skipped validation) never matches.
    pub fn matches(&self, ctx: &EarnContext<'_>) -> bool {
        let at = ctx.order.local_time;
        let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|s| s == v);
        if !listed(&self.stores, ctx.store_code) || !listed(&self.brands, ctx.brand_code) {
            return false;
        }
        if !self.channels.is_empty() && !self.channels.contains(&ctx.order.channel) {
            return false;
        }
        if !self.tiers.is_empty() && !self.tiers.contains(&ctx.tier) {
            return false;
        }
        if !self.weekdays.is_empty() {
            let day = at.weekday().number_from_monday();
            if !self.weekdays.iter().any(|d| u32::from(*d) == day) {
                return false;
            }
        }
        if self.time_from.is_some() || self.time_to.is_some() {
            let now = at.hour() * 60 + at.minute();
            let from = match &self.time_from {
                Some(s) => match parse_hhmm(s) {
                    Some(m) => Some(m),
                    None => return false,
                },
                None => None,
            };
            let to = match &self.time_to {
                Some(s) => match parse_hhmm(s) {
                    Some(m) => Some(m),
                    None => return false,
                },
                None => None,
            };
            let inside = match (from, to) {
                (Some(f), Some(t)) if f <= t => f <= now && now < t,
                // Across midnight.
                (Some(f), Some(t)) => now >= f || now < t,
                (Some(f), None) => now >= f,
                (None, Some(t)) => now < t,
                (None, None) => true,
            };
            if !inside {
                return false;
            }
        }
        let date = at.date();
        if self.starts_on.is_some_and(|d| date < d) || self.ends_on.is_some_and(|d| date > d) {
            return false;
        }
        if self.birthday_month && ctx.birthday_month != Some(at.month()) {
            return false;
        }
        true
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// No single line may carry more than this (far above any real order:
/// ¥10,000,000 × 10 is 10^8), so that summing lines can never overflow.
const LINE_LIMIT: i128 = 1_000_000_000_000;

fn clamp_points(v: i128) -> i64 {
    v.clamp(-LINE_LIMIT, LINE_LIMIT) as i64
}

/// floor(yuan × (permille − 1000) / 1000), never negative.
fn extra(yuan: i64, permille: i64) -> i64 {
    let over = (i128::from(permille) - 1000).max(0);
    clamp_points(i128::from(yuan.max(0)) * over / 1000)
}

/// "2", "1.5", "1.25" for 2000, 1500, 1250 permille.
fn times(permille: i64) -> String {
    let whole = permille.div_euclid(1000);
    let frac = permille.rem_euclid(1000);
    if frac == 0 {
        whole.to_string()
    } else {
        let digits = format!("{frac:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// "88" or "88.50" for 8800 or 8850 fen (without the ¥).
fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let cents = abs % 100;
    if cents == 0 {
        format!("{sign}{}", abs / 100)
    } else {
        format!("{sign}{}.{cents:02}", abs / 100)
    }
}

/// "+64" or "−37".
fn signed(points: i64) -> String {
    if points < 0 {
        format!("−{}", points.unsigned_abs())
    } else {
        format!("+{points}")
    }
}

/// Distinct names in order, at most three, then "等 N 项".
fn name_list<'n>(names: impl IntoIterator<Item = &'n str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for n in names {
        let n = n.trim();
        if !n.is_empty() && !seen.contains(&n) {
            seen.push(n);
        }
    }
    let shown = seen.iter().take(3).copied().collect::<Vec<_>>().join("、");
    if seen.len() > 3 {
        format!("{shown} 等 {} 项", seen.len())
    } else {
        shown
    }
}

fn line_name(l: &OrderLine) -> &str {
    if l.name.trim().is_empty() {
        &l.sku
    } else {
        &l.name
    }
}

struct Tally {
    lines: Vec<ExplanationLine>,
    total: i64,
}

impl Tally {
    fn push(&mut self, rule: &str, text: String, points: i64) {
        self.total += points;
        self.lines.push(ExplanationLine {
            rule: rule.to_string(),
            text,
            points,
        });
    }
}

/// What this order earns under these rules, and why.
pub fn earn(ctx: &EarnContext<'_>, rules: &RuleSet) -> Earning {
    let order = ctx.order;
    let active: Vec<&EarningRule> = rules
        .rules
        .iter()
        .filter(|r| r.enabled && r.scope.matches(ctx))
        .collect();
    let mut tally = Tally {
        lines: Vec::new(),
        total: 0,
    };

    // 1. Exclusions: each line is attributed to the first exclusion that hits it.
    let excluded_by: Vec<Option<usize>> = order
        .lines
        .iter()
        .map(|l| {
            active.iter().position(|r| match &r.effect {
                Effect::Exclude { skus, categories } => {
                    skus.contains(&l.sku) || categories.contains(&l.category)
                }
                _ => false,
            })
        })
        .collect();
    let counts = |i: usize| order.lines[i].earns() && excluded_by[i].is_none();
    let lines_fen = (0..order.lines.len())
        .filter(|&i| counts(i))
        .fold(0i64, |acc, i| acc.saturating_add(order.lines[i].net_fen()));
    let eligible_fen = lines_fen.min(order.paid_fen).max(0);
    for (ri, rule) in active.iter().enumerate() {
        let hit: Vec<&OrderLine> = order
            .lines
            .iter()
            .zip(&excluded_by)
            .filter(|(l, by)| l.earns() && **by == Some(ri))
            .map(|(l, _)| l)
            .collect();
        if hit.is_empty() {
            continue;
        }
        let fen = hit
            .iter()
            .fold(0i64, |acc, l| acc.saturating_add(l.net_fen()));
        let names = name_list(hit.iter().map(|l| line_name(l)));
        tally.push(&rule.id, format!("不积分: {names} ¥{}", yuan_text(fen)), 0);
    }

    // 2. Minimum spend: the largest unmet minimum explains the zero.
    let unmet = active
        .iter()
        .filter_map(|r| match r.effect {
            Effect::MinimumSpend { fen } if fen > eligible_fen => Some((*r, fen)),
            _ => None,
        })
        .fold(None::<(&EarningRule, i64)>, |best, cur| match best {
            Some(b) if b.1 >= cur.1 => Some(b),
            _ => Some(cur),
        });
    if let Some((rule, fen)) = unmet {
        tally.push(
            &rule.id,
            format!("未达最低消费 ¥{}，不积分", yuan_text(fen)),
            0,
        );
        return Earning {
            eligible_fen,
            points: 0,
            lines: tally.lines,
        };
    }

    // 3. Base: one point per whole yuan.
    let yuan = eligible_fen / 100;
    tally.push("base", format!("消费 ¥{yuan} × 1 分/元 = {yuan}"), yuan);

    // 4. Tier.
    let tier_permille = ctx.tier_multiplier_permille;
    if tier_permille != 1000 {
        let with_tier = clamp_points(i128::from(yuan) * i128::from(tier_permille.max(0)) / 1000);
        let points = with_tier - yuan;
        tally.push(
            "tier",
            format!(
                "{} ×{}: {}",
                ctx.tier.chinese_name(),
                times(tier_permille),
                signed(points)
            ),
            points,
        );
    }

    // 5. Multipliers, additive on the base yuan.
    for rule in &active {
        if let Effect::Multiplier { permille } = rule.effect {
            let points = extra(yuan, permille);
            tally.push(
                &rule.id,
                format!("{} ×{}: {}", rule.name, times(permille), signed(points)),
                points,
            );
        }
    }

    // 6. Product bonuses, on the matching dishes that count.
    for rule in &active {
        if let Effect::ProductBonus {
            skus,
            categories,
            new_dishes,
            permille,
        } = &rule.effect
        {
            let hit: Vec<&OrderLine> = order
                .lines
                .iter()
                .enumerate()
                .filter(|&(i, l)| {
                    counts(i)
                        && (skus.contains(&l.sku)
                            || categories.contains(&l.category)
                            || (*new_dishes && ctx.new_skus.contains(&l.sku)))
                })
                .map(|(_, l)| l)
                .collect();
            if hit.is_empty() {
                continue;
            }
            let fen = hit
                .iter()
                .fold(0i64, |acc, l| acc.saturating_add(l.net_fen()))
                .min(eligible_fen);
            let points = extra(fen / 100, *permille);
            let names = name_list(hit.iter().map(|l| line_name(l)));
            tally.push(
                &rule.id,
                format!(
                    "{} {names} ×{}: {}",
                    rule.name,
                    times(*permille),
                    signed(points)
                ),
                points,
            );
        }
    }

    // 7. Flat bonuses: only for an order that paid for something.
    if eligible_fen > 0 {
        for rule in &active {
            if let Effect::FlatBonus { points } = rule.effect {
                let points = clamp_points(i128::from(points.max(0)));
                tally.push(
                    &rule.id,
                    format!("{}: {}", rule.name, signed(points)),
                    points,
                );
            }
        }
    }

    // 8. Caps: the smallest per-order cap, then the tightest daily allowance.
    let per_order = active
        .iter()
        .filter_map(|r| match r.effect {
            Effect::Cap {
                per_order: Some(c), ..
            } => Some((*r, c.max(0))),
            _ => None,
        })
        .min_by_key(|(_, c)| *c);
    if let Some((rule, cap)) = per_order {
        if tally.total > cap {
            let cut = cap - tally.total;
            tally.push(&rule.id, format!("单笔上限 {cap} 分: {}", signed(cut)), cut);
        }
    }
    let per_day = active
        .iter()
        .filter_map(|r| match r.effect {
            Effect::Cap {
                per_day: Some(d), ..
            } => {
                let d = d.max(0);
                Some((*r, d, d.saturating_sub(ctx.points_earned_today).max(0)))
            }
            _ => None,
        })
        .min_by_key(|(_, _, allowed)| *allowed);
    if let Some((rule, cap, allowed)) = per_day {
        if tally.total > allowed {
            let cut = allowed - tally.total;
            tally.push(&rule.id, format!("每日上限 {cap} 分: {}", signed(cut)), cut);
        }
    }

    Earning {
        eligible_fen,
        points: tally.total,
        lines: tally.lines,
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// The highest multiplier a rule may set: ×10.
pub const MAX_PERMILLE: i64 = 10_000;
/// The largest flat bonus one rule may give.
pub const MAX_FLAT_BONUS: i64 = 1_000_000;
/// The most rules one rule set may hold.
pub const MAX_RULES: usize = 200;

fn check_codes(field: &'static str, list: &[String], what: &str) -> Result<()> {
    for s in list {
        if s.trim().is_empty() || s.chars().count() > 64 {
            return Err(DomainError::invalid(
                field,
                format!("each {what} must be 1–64 characters"),
            ));
        }
    }
    Ok(())
}

fn check_permille(permille: i64) -> Result<()> {
    if !(1000..=MAX_PERMILLE).contains(&permille) {
        return Err(DomainError::invalid(
            "effect.permille",
            format!("must be between 1000 (×1) and {MAX_PERMILLE} (×10), got {permille}"),
        ));
    }
    Ok(())
}

/// Check one rule before it is stored. Errors name the field and the reason.
pub fn validate_rule(rule: &EarningRule) -> Result<()> {
    let id_ok = (1..=64).contains(&rule.id.len())
        && rule
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(DomainError::invalid(
            "id",
            "must be 1–64 characters of a–z, 0–9, _ and -",
        ));
    }
    let name_len = rule.name.chars().count();
    if rule.name.trim().is_empty() || name_len > 100 {
        return Err(DomainError::invalid("name", "must be 1–100 characters"));
    }

    let s = &rule.scope;
    check_codes("scope.stores", &s.stores, "store code")?;
    check_codes("scope.brands", &s.brands, "brand code")?;
    if let Some(d) = s.weekdays.iter().find(|d| !(1..=7).contains(*d)) {
        return Err(DomainError::invalid(
            "scope.weekdays",
            format!("weekdays are 1 (Monday) to 7 (Sunday), got {d}"),
        ));
    }
    let time = |field: &'static str, v: &Option<String>| -> Result<Option<u32>> {
        match v {
            None => Ok(None),
            Some(t) => parse_hhmm(t).map(Some).ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!("must be a time \"HH:MM\" (00:00–23:59), got {t:?}"),
                )
            }),
        }
    };
    let from = time("scope.time_from", &s.time_from)?;
    let to = time("scope.time_to", &s.time_to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f == t {
            return Err(DomainError::invalid(
                "scope.time_to",
                "must differ from time_from (the window would be empty)",
            ));
        }
    }
    if let (Some(a), Some(b)) = (s.starts_on, s.ends_on) {
        if b < a {
            return Err(DomainError::invalid(
                "scope.ends_on",
                format!("must be on or after starts_on ({a})"),
            ));
        }
    }

    match &rule.effect {
        Effect::Multiplier { permille } => check_permille(*permille)?,
        Effect::ProductBonus {
            skus,
            categories,
            new_dishes,
            permille,
        } => {
            check_permille(*permille)?;
            if skus.is_empty() && categories.is_empty() && !new_dishes {
                return Err(DomainError::invalid(
                    "effect.skus",
                    "name at least one sku or category, or set new_dishes",
                ));
            }
            check_codes("effect.skus", skus, "sku")?;
            check_codes("effect.categories", categories, "category")?;
        }
        Effect::FlatBonus { points } => {
            if !(1..=MAX_FLAT_BONUS).contains(points) {
                return Err(DomainError::invalid(
                    "effect.points",
                    format!("must be between 1 and {MAX_FLAT_BONUS}"),
                ));
            }
        }
        Effect::Exclude { skus, categories } => {
            if skus.is_empty() && categories.is_empty() {
                return Err(DomainError::invalid(
                    "effect.skus",
                    "name at least one sku or category to exclude",
                ));
            }
            check_codes("effect.skus", skus, "sku")?;
            check_codes("effect.categories", categories, "category")?;
        }
        Effect::MinimumSpend { fen } => {
            if !(1..=crate::order::MAX_ORDER_FEN).contains(fen) {
                return Err(DomainError::invalid(
                    "effect.fen",
                    format!("must be between 1 and {}", crate::order::MAX_ORDER_FEN),
                ));
            }
        }
        Effect::Cap { per_order, per_day } => {
            if per_order.is_none() && per_day.is_none() {
                return Err(DomainError::invalid(
                    "effect.per_order",
                    "set per_order, per_day or both",
                ));
            }
            if per_order.is_some_and(|c| c <= 0) {
                return Err(DomainError::invalid(
                    "effect.per_order",
                    "must be greater than 0",
                ));
            }
            if per_day.is_some_and(|c| c <= 0) {
                return Err(DomainError::invalid(
                    "effect.per_day",
                    "must be greater than 0",
                ));
            }
        }
    }
    Ok(())
}

/// Check a whole rule set: every rule, ids unique, at most [`MAX_RULES`].
/// Errors keep the field of the failing rule and prefix the reason with its id.
pub fn validate_rules(rules: &[EarningRule]) -> Result<()> {
    if rules.len() > MAX_RULES {
        return Err(DomainError::invalid(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut ids = BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        validate_rule(rule).map_err(|e| match e {
            DomainError::Invalid { field, reason } => DomainError::Invalid {
                field,
                reason: format!("rule {} ({}): {reason}", i + 1, rule.id),
            },
            other => other,
        })?;
        if !ids.insert(rule.id.as_str()) {
            return Err(DomainError::invalid(
                "id",
                format!("rule {}: id {} is used twice", i + 1, rule.id),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Console summary
// ---------------------------------------------------------------------------

const WEEKDAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::DineIn => "堂食",
        Channel::Takeaway => "外带",
        Channel::Delivery => "外卖",
        Channel::Online => "线上",
    }
}

/// "周一至周五", "周六、周日", "周一、周三至周五".
fn weekdays_text(days: &[u8]) -> String {
    let mut days: Vec<u8> = days
        .iter()
        .copied()
        .filter(|d| (1..=7).contains(d))
        .collect();
    days.sort_unstable();
    days.dedup();
    if days.len() == 7 {
        return "每天".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let mut j = i;
        while j + 1 < days.len() && days[j + 1] == days[j] + 1 {
            j += 1;
        }
        let name = |d: u8| WEEKDAYS[usize::from(d - 1)];
        if j - i >= 2 {
            parts.push(format!("{}至{}", name(days[i]), name(days[j])));
        } else {
            parts.extend((i..=j).map(|k| name(days[k]).to_string()));
        }
        i = j + 1;
    }
    parts.join("、")
}

fn list_text(list: &[String]) -> String {
    name_list(list.iter().map(String::as_str))
}

/// A one-line Chinese summary for the console, e.g. "周一至周五 14:00–17:00 积分 ×2".
pub fn describe(rule: &EarningRule) -> String {
    let s = &rule.scope;
    let mut parts: Vec<String> = Vec::new();
    if !rule.enabled {
        parts.push("（已停用）".into());
    }
    if !s.brands.is_empty() {
        parts.push(format!("品牌 {}", list_text(&s.brands)));
    }
    if !s.stores.is_empty() {
        parts.push(format!("门店 {}", list_text(&s.stores)));
    }
    if !s.channels.is_empty() {
        let names: Vec<&str> = s.channels.iter().map(|c| channel_name(*c)).collect();
        parts.push(name_list(names));
    }
    if !s.tiers.is_empty() {
        let names: Vec<&str> = s.tiers.iter().map(|t| t.chinese_name()).collect();
        parts.push(format!("{}会员", name_list(names)));
    }
    match (s.starts_on, s.ends_on) {
        (Some(a), Some(b)) if a == b => parts.push(a.to_string()),
        (Some(a), Some(b)) => parts.push(format!("{a} 至 {b}")),
        (Some(a), None) => parts.push(format!("{a} 起")),
        (None, Some(b)) => parts.push(format!("至 {b}")),
        (None, None) => {}
    }
    if s.birthday_month {
        parts.push("生日月".into());
    }
    if !s.weekdays.is_empty() {
        parts.push(weekdays_text(&s.weekdays));
    }
    let from = s.time_from.as_deref();
    let to = s.time_to.as_deref();
    match (from, to) {
        (Some(f), Some(t)) => {
            let overnight = matches!((parse_hhmm(f), parse_hhmm(t)), (Some(a), Some(b)) if b < a);
            parts.push(if overnight {
                format!("{f}–次日{t}")
            } else {
                format!("{f}–{t}")
            });
        }
        (Some(f), None) => parts.push(format!("{f} 起")),
        (None, Some(t)) => parts.push(format!("{t} 前")),
        (None, None) => {}
    }
    parts.push(match &rule.effect {
        Effect::Multiplier { permille } => format!("积分 ×{}", times(*permille)),
        Effect::ProductBonus {
            skus,
            categories,
            new_dishes,
            permille,
        } => {
            let mut what = Vec::new();
            if *new_dishes {
                what.push("新品".to_string());
            }
            if !categories.is_empty() {
                what.push(format!("品类 {}", list_text(categories)));
            }
            if !skus.is_empty() {
                what.push(format!("菜品 {}", list_text(skus)));
            }
            format!("{} 积分 ×{}", what.join("、"), times(*permille))
        }
        Effect::FlatBonus { points } => format!("额外赠送 {points} 分"),
        Effect::Exclude { skus, categories } => {
            let mut what = Vec::new();
            if !categories.is_empty() {
                what.push(format!("品类 {}", list_text(categories)));
            }
            if !skus.is_empty() {
                what.push(format!("菜品 {}", list_text(skus)));
            }
            format!("{} 不积分", what.join("、"))
        }
        Effect::MinimumSpend { fen } => format!("消费满 ¥{} 才积分", yuan_text(*fen)),
        Effect::Cap { per_order, per_day } => {
            let mut what = Vec::new();
            if let Some(c) = per_order {
                what.push(format!("单笔上限 {c} 分"));
            }
            if let Some(c) = per_day {
                what.push(format!("每日上限 {c} 分"));
            }
            what.join("、")
        }
    });
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, FixedOffset, NaiveDateTime, TimeZone, Weekday};
    use proptest::prelude::*;

    static NO_NEW: BTreeSet<String> = BTreeSet::new();

    fn dish(sku: &str, name: &str, category: &str, fen: i64) -> OrderLine {
        OrderLine {
            sku: sku.into(),
            name: name.into(),
            category: category.into(),
            quantity: 1,
            unit_price_fen: fen,
            discount_fen: 0,
            voided: false,
            comped: false,
            staff_meal: false,
        }
    }

    fn order_at(channel: Channel, local: &str, lines: Vec<OrderLine>, paid: i64) -> Order {
        let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        let at = FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .from_local_datetime(&local)
            .unwrap();
        Order::new(channel, at, local, lines, paid).unwrap()
    }

    /// A Wednesday lunch, ¥128.50 of food, paid in full.
    fn lunch() -> Order {
        order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![
                dish("D001", "毛肚", "荤菜", 8_850),
                dish("D002", "土豆片", "素菜", 4_000),
            ],
            12_850,
        )
    }

    fn ctx<'a>(order: &'a Order) -> EarnContext<'a> {
        EarnContext {
            order,
            store_code: "SH001",
            brand_code: "HOTPOT",
            tier: Tier::Regular,
            tier_multiplier_permille: 1000,
            birthday_month: None,
            points_earned_today: 0,
            new_skus: &NO_NEW,
        }
    }

    fn rule(id: &str, name: &str, scope: Scope, effect: Effect) -> EarningRule {
        EarningRule {
            id: id.into(),
            name: name.into(),
            enabled: true,
            scope,
            effect,
        }
    }

    fn x2(scope: Scope) -> EarningRule {
        rule("x2", "双倍", scope, Effect::Multiplier { permille: 2000 })
    }

    fn set(rules: Vec<EarningRule>) -> RuleSet {
        RuleSet { version: 1, rules }
    }

    /// Earn, checking the invariants every result must meet.
    fn run(ctx: &EarnContext<'_>, rules: &RuleSet) -> Earning {
        let e = earn(ctx, rules);
        assert!(e.points >= 0, "{e:?}");
        assert_eq!(
            e.points,
            e.lines.iter().map(|l| l.points).sum::<i64>(),
            "{e:?}"
        );
        e
    }

    fn has_rule(e: &Earning, id: &str) -> bool {
        e.lines.iter().any(|l| l.rule == id)
    }

    fn at_time(local: &str) -> Order {
        order_at(
            Channel::DineIn,
            local,
            vec![dish("D001", "毛肚", "荤菜", 10_000)],
            10_000,
        )
    }

    #[test]
    fn no_rules_is_the_api_default_formula() {
        let o = lunch();
        let e = run(&ctx(&o), &RuleSet::default_rules());
        assert_eq!(e.eligible_fen, 12_850);
        assert_eq!(e.points, 128);
        assert_eq!(e.lines.len(), 1);
        assert_eq!(e.lines[0].rule, "base");
        assert_eq!(e.lines[0].text, "消费 ¥128 × 1 分/元 = 128");

        let mut c = ctx(&o);
        c.tier = Tier::Gold;
        c.tier_multiplier_permille = 1500;
        let e = run(&c, &RuleSet::default());
        assert_eq!(e.points, 192);
        assert_eq!(e.lines[1].rule, "tier");
        assert_eq!(e.lines[1].text, "金卡 ×1.5: +64");
        assert_eq!(e.lines[1].points, 64);

        c.tier = Tier::Silver;
        c.tier_multiplier_permille = 1200;
        assert_eq!(run(&c, &RuleSet::default()).points, 153); // floor(128 × 1.2)
    }

    #[test]
    fn voided_comped_and_staff_meal_lines_earn_nothing() {
        let mut v = dish("D9", "啤酒", "酒水", 5_000);
        v.voided = true;
        let mut c = dish("D8", "果盘", "小吃", 3_000);
        c.comped = true;
        let mut s = dish("D7", "员工餐", "主食", 2_000);
        s.staff_meal = true;
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("D1", "毛肚", "荤菜", 6_600), v, c, s],
            20_000,
        );
        let e = run(&ctx(&o), &RuleSet::default());
        assert_eq!(e.eligible_fen, 6_600);
        assert_eq!(e.points, 66);
        // Paid less than the lines: paid wins.
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("D1", "毛肚", "荤菜", 6_600)],
            5_099,
        );
        assert_eq!(run(&ctx(&o), &RuleSet::default()).points, 50);
    }

    #[test]
    fn time_window_includes_the_start_and_excludes_the_end() {
        let rules = set(vec![x2(Scope {
            time_from: Some("14:00".into()),
            time_to: Some("17:00".into()),
            ..Scope::default()
        })]);
        for (t, hit) in [
            ("2026-03-04 13:59:59", false),
            ("2026-03-04 14:00:00", true),
            ("2026-03-04 16:59:59", true),
            ("2026-03-04 17:00:00", false),
        ] {
            let o = at_time(t);
            let e = run(&ctx(&o), &rules);
            assert_eq!(e.points, if hit { 200 } else { 100 }, "{t}");
            assert_eq!(has_rule(&e, "x2"), hit, "{t}");
        }
        let e = run(&ctx(&at_time("2026-03-04 14:00:00")), &rules);
        assert_eq!(e.lines[1].text, "双倍 ×2: +100");
    }

    #[test]
    fn time_window_can_cross_midnight() {
        let rules = set(vec![x2(Scope {
            time_from: Some("22:00".into()),
            time_to: Some("02:00".into()),
            ..Scope::default()
        })]);
        for (t, hit) in [
            ("2026-03-04 21:59:00", false),
            ("2026-03-04 22:00:00", true),
            ("2026-03-04 23:59:59", true),
            ("2026-03-05 01:59:59", true),
            ("2026-03-05 02:00:00", false),
            ("2026-03-05 12:00:00", false),
        ] {
            assert_eq!(has_rule(&run(&ctx(&at_time(t)), &rules), "x2"), hit, "{t}");
        }
        // Only a start or only an end.
        let from = set(vec![x2(Scope {
            time_from: Some("20:00".into()),
            ..Scope::default()
        })]);
        assert!(has_rule(
            &run(&ctx(&at_time("2026-03-04 20:00:00")), &from),
            "x2"
        ));
        assert!(!has_rule(
            &run(&ctx(&at_time("2026-03-04 19:59:59")), &from),
            "x2"
        ));
        let to = set(vec![x2(Scope {
            time_to: Some("10:00".into()),
            ..Scope::default()
        })]);
        assert!(has_rule(
            &run(&ctx(&at_time("2026-03-04 09:59:59")), &to),
            "x2"
        ));
        assert!(!has_rule(
            &run(&ctx(&at_time("2026-03-04 10:00:00")), &to),
            "x2"
        ));
    }

    #[test]
    fn malformed_times_never_match() {
        let rules = set(vec![x2(Scope {
            time_from: Some("2pm".into()),
            ..Scope::default()
        })]);
        assert_eq!(
            run(&ctx(&at_time("2026-03-04 15:00:00")), &rules).points,
            100
        );
    }

    #[test]
    fn weekdays_are_iso_on_local_time() {
        let rules = set(vec![x2(Scope {
            weekdays: vec![1, 2, 3, 4, 5],
            ..Scope::default()
        })]);
        let wed = at_time("2026-03-04 12:00:00");
        assert_eq!(wed.local_time.weekday(), Weekday::Wed);
        assert_eq!(run(&ctx(&wed), &rules).points, 200);
        let sat = at_time("2026-03-07 12:00:00");
        assert_eq!(sat.local_time.weekday(), Weekday::Sat);
        assert_eq!(run(&ctx(&sat), &rules).points, 100);
        let sun_only = set(vec![x2(Scope {
            weekdays: vec![7],
            ..Scope::default()
        })]);
        assert_eq!(
            run(&ctx(&at_time("2026-03-08 12:00:00")), &sun_only).points,
            200
        );
    }

    #[test]
    fn date_range_is_inclusive_at_both_ends() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let rules = set(vec![x2(Scope {
            starts_on: Some(d("2026-03-01")),
            ends_on: Some(d("2026-03-31")),
            ..Scope::default()
        })]);
        for (t, hit) in [
            ("2026-02-28 23:59:59", false),
            ("2026-03-01 00:00:00", true),
            ("2026-03-31 23:59:59", true),
            ("2026-04-01 00:00:00", false),
        ] {
            assert_eq!(has_rule(&run(&ctx(&at_time(t)), &rules), "x2"), hit, "{t}");
        }
    }

    #[test]
    fn birthday_month_needs_a_known_birthday_in_this_month() {
        let rules = set(vec![x2(Scope {
            birthday_month: true,
            ..Scope::default()
        })]);
        let o = at_time("2026-03-04 12:00:00");
        let mut c = ctx(&o);
        assert_eq!(run(&c, &rules).points, 100);
        c.birthday_month = Some(4);
        assert_eq!(run(&c, &rules).points, 100);
        c.birthday_month = Some(3);
        assert_eq!(run(&c, &rules).points, 200);
    }

    #[test]
    fn online_channel_earns_ten_percent_more() {
        let rules = set(vec![rule(
            "online_10",
            "线上 +10%",
            Scope {
                channels: vec![Channel::Online],
                ..Scope::default()
            },
            Effect::Multiplier { permille: 1100 },
        )]);
        let mut online = lunch();
        online.channel = Channel::Online;
        let e = run(&ctx(&online), &rules);
        assert_eq!(e.points, 128 + 12);
        assert_eq!(e.lines[1].text, "线上 +10% ×1.1: +12");
        assert_eq!(run(&ctx(&lunch()), &rules).points, 128);
    }

    #[test]
    fn store_brand_and_tier_scopes() {
        let o = at_time("2026-03-04 12:00:00");
        let store = set(vec![x2(Scope {
            stores: vec!["SH001".into(), "SH002".into()],
            ..Scope::default()
        })]);
        let brand = set(vec![x2(Scope {
            brands: vec!["NOODLE".into()],
            ..Scope::default()
        })]);
        let tiers = set(vec![x2(Scope {
            tiers: vec![Tier::Gold, Tier::BlackGold],
            ..Scope::default()
        })]);
        let mut c = ctx(&o);
        assert_eq!(run(&c, &store).points, 200);
        assert_eq!(run(&c, &brand).points, 100);
        assert_eq!(run(&c, &tiers).points, 100);
        c.store_code = "BJ001";
        c.brand_code = "NOODLE";
        c.tier = Tier::Gold;
        c.tier_multiplier_permille = 1500;
        assert_eq!(run(&c, &store).points, 150);
        assert_eq!(run(&c, &brand).points, 250);
        assert_eq!(run(&c, &tiers).points, 250);
    }

    #[test]
    fn disabled_rules_are_skipped() {
        let mut r = x2(Scope::default());
        r.enabled = false;
        assert_eq!(
            run(&ctx(&at_time("2026-03-04 12:00:00")), &set(vec![r])).points,
            100
        );
    }

    #[test]
    fn multipliers_add_on_the_base_and_do_not_compound() {
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("D1", "毛肚", "荤菜", 10_099)],
            10_099,
        );
        let mut c = ctx(&o);
        c.tier = Tier::Gold;
        c.tier_multiplier_permille = 1500;
        let rules = set(vec![
            x2(Scope::default()),
            rule(
                "half",
                "半倍",
                Scope::default(),
                Effect::Multiplier { permille: 1500 },
            ),
        ]);
        let e = run(&c, &rules);
        // base 100, tier +50, ×2 +100, ×1.5 +50.
        assert_eq!(e.points, 300);
        let pts: Vec<i64> = e.lines.iter().map(|l| l.points).collect();
        assert_eq!(pts, vec![100, 50, 100, 50]);
        // Floors: 33 yuan × 0.1 = 3.3 → 3.
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("D1", "毛肚", "荤菜", 3_399)],
            3_399,
        );
        let plus10 = set(vec![rule(
            "p",
            "加一成",
            Scope::default(),
            Effect::Multiplier { permille: 1100 },
        )]);
        assert_eq!(run(&ctx(&o), &plus10).points, 36);
    }

    #[test]
    fn product_bonus_on_skus_categories_and_new_dishes() {
        let new: BTreeSet<String> = ["N1".to_string()].into();
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![
                dish("N1", "麻辣牛肉", "荤菜", 5_880),
                dish("D2", "土豆片", "素菜", 1_000),
                dish("D3", "鸭血", "荤菜", 2_000),
            ],
            8_880,
        );
        let mut c = ctx(&o);
        c.new_skus = &new;
        let new_x2 = set(vec![rule(
            "new_x2",
            "新品",
            Scope::default(),
            Effect::ProductBonus {
                skus: vec![],
                categories: vec![],
                new_dishes: true,
                permille: 2000,
            },
        )]);
        let e = run(&c, &new_x2);
        assert_eq!(e.points, 88 + 58);
        assert_eq!(e.lines[1].text, "新品 麻辣牛肉 ×2: +58");

        let meat = set(vec![rule(
            "meat",
            "荤菜",
            Scope::default(),
            Effect::ProductBonus {
                skus: vec!["D2".into()],
                categories: vec!["荤菜".into()],
                new_dishes: false,
                permille: 1500,
            },
        )]);
        // All three match: 88.80 → 88 yuan → +44.
        assert_eq!(run(&c, &meat).points, 88 + 44);

        // Without new_skus flagged nothing matches and no line is written.
        let e = run(&ctx(&o), &new_x2);
        assert_eq!(e.points, 88);
        assert!(!has_rule(&e, "new_x2"));

        // Bonus never on more than was paid.
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("N1", "麻辣牛肉", "荤菜", 5_880)],
            1_000,
        );
        let mut c = ctx(&o);
        c.new_skus = &new;
        assert_eq!(run(&c, &new_x2).points, 10 + 10);

        // A voided new dish gets no bonus.
        let mut v = dish("N1", "麻辣牛肉", "荤菜", 5_880);
        v.voided = true;
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![v, dish("D2", "土豆片", "素菜", 1_000)],
            1_000,
        );
        let mut c = ctx(&o);
        c.new_skus = &new;
        assert_eq!(run(&c, &new_x2).points, 10);
    }

    #[test]
    fn flat_bonus_adds_points_to_orders_that_paid() {
        let rules = set(vec![rule(
            "welcome",
            "到店礼",
            Scope::default(),
            Effect::FlatBonus { points: 20 },
        )]);
        let e = run(&ctx(&lunch()), &rules);
        assert_eq!(e.points, 148);
        assert_eq!(e.lines[1].text, "到店礼: +20");
        let mut free = dish("D1", "毛肚", "荤菜", 8_850);
        free.comped = true;
        let o = order_at(Channel::DineIn, "2026-03-04 12:00:00", vec![free], 0);
        assert_eq!(run(&ctx(&o), &rules).points, 0);
    }

    #[test]
    fn minimum_spend_below_earns_nothing_at_earns() {
        let rules = set(vec![
            rule(
                "min100",
                "满百积分",
                Scope::default(),
                Effect::MinimumSpend { fen: 10_000 },
            ),
            x2(Scope::default()),
        ]);
        let o = at_time("2026-03-04 12:00:00"); // exactly ¥100
        assert_eq!(run(&ctx(&o), &rules).points, 200);
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("D1", "毛肚", "荤菜", 9_999)],
            9_999,
        );
        let e = run(&ctx(&o), &rules);
        assert_eq!(e.points, 0);
        assert_eq!(e.eligible_fen, 9_999);
        assert_eq!(e.lines.len(), 1);
        assert_eq!(e.lines[0].rule, "min100");
        assert_eq!(e.lines[0].text, "未达最低消费 ¥100，不积分");
        assert_eq!(e.lines[0].points, 0);
    }

    #[test]
    fn exclusions_leave_dishes_out_and_say_so() {
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![
                dish("D1", "毛肚", "荤菜", 12_800),
                dish("W1", "茅台", "酒水", 8_800),
                dish("T1", "香烟", "烟", 2_000),
            ],
            23_600,
        );
        let rules = set(vec![
            rule(
                "no_drinks",
                "酒水不积分",
                Scope::default(),
                Effect::Exclude {
                    skus: vec![],
                    categories: vec!["酒水".into()],
                },
            ),
            rule(
                "no_t1",
                "香烟不积分",
                Scope::default(),
                Effect::Exclude {
                    skus: vec!["T1".into()],
                    categories: vec![],
                },
            ),
        ]);
        let e = run(&ctx(&o), &rules);
        assert_eq!(e.eligible_fen, 12_800);
        assert_eq!(e.points, 128);
        assert_eq!(e.lines[0].rule, "no_drinks");
        assert_eq!(e.lines[0].text, "不积分: 茅台 ¥88");
        assert_eq!(e.lines[1].text, "不积分: 香烟 ¥20");
        assert_eq!(e.lines[2].rule, "base");
        // Excluded dishes get no product bonus either.
        let mut with_bonus = rules.clone();
        with_bonus.rules.push(rule(
            "drinks_x3",
            "酒水",
            Scope::default(),
            Effect::ProductBonus {
                skus: vec![],
                categories: vec!["酒水".into()],
                new_dishes: false,
                permille: 3000,
            },
        ));
        assert_eq!(run(&ctx(&o), &with_bonus).points, 128);
    }

    #[test]
    fn per_order_cap_takes_the_smallest() {
        let o = order_at(
            Channel::DineIn,
            "2026-03-04 12:00:00",
            vec![dish("D1", "毛肚", "荤菜", 53_700)],
            53_700,
        );
        let rules = set(vec![
            rule(
                "cap900",
                "上限",
                Scope::default(),
                Effect::Cap {
                    per_order: Some(900),
                    per_day: None,
                },
            ),
            rule(
                "cap500",
                "上限",
                Scope::default(),
                Effect::Cap {
                    per_order: Some(500),
                    per_day: None,
                },
            ),
        ]);
        let e = run(&ctx(&o), &rules);
        assert_eq!(e.points, 500);
        let last = e.lines.last().unwrap();
        assert_eq!(last.rule, "cap500");
        assert_eq!(last.text, "单笔上限 500 分: −37");
        assert_eq!(last.points, -37);
        // Under the cap: no line.
        let e = run(&ctx(&lunch()), &rules);
        assert_eq!(e.points, 128);
        assert_eq!(e.lines.len(), 1);
    }

    #[test]
    fn per_day_cap_counts_what_was_earned_today() {
        let rules = set(vec![rule(
            "daily",
            "每日上限",
            Scope::default(),
            Effect::Cap {
                per_order: Some(100),
                per_day: Some(1_000),
            },
        )]);
        let o = lunch();
        let mut c = ctx(&o);
        c.points_earned_today = 950;
        let e = run(&c, &rules);
        assert_eq!(e.points, 50);
        let cuts: Vec<&str> = e.lines.iter().skip(1).map(|l| l.text.as_str()).collect();
        assert_eq!(cuts, vec!["单笔上限 100 分: −28", "每日上限 1000 分: −50"]);
        c.points_earned_today = 1_200;
        assert_eq!(run(&c, &rules).points, 0);
        c.points_earned_today = 0;
        assert_eq!(run(&c, &rules).points, 100);
    }

    #[test]
    fn validate_rule_names_the_field() {
        let field = |r: &EarningRule| match validate_rule(r) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        };
        let ok = rule(
            "afternoon_x2",
            "工作日下午茶 ×2",
            Scope {
                weekdays: vec![1, 2, 3, 4, 5],
                time_from: Some("14:00".into()),
                time_to: Some("17:00".into()),
                ..Scope::default()
            },
            Effect::Multiplier { permille: 2000 },
        );
        validate_rule(&ok).unwrap();

        let with = |f: &dyn Fn(&mut EarningRule)| {
            let mut r = ok.clone();
            f(&mut r);
            r
        };
        assert_eq!(field(&with(&|r| r.id = "Afternoon".into())), "id");
        assert_eq!(field(&with(&|r| r.id = String::new())), "id");
        assert_eq!(field(&with(&|r| r.id = "a".repeat(65))), "id");
        validate_rule(&with(&|r| r.id = "a-1_b".repeat(12))).unwrap();
        assert_eq!(field(&with(&|r| r.name = " ".into())), "name");
        assert_eq!(field(&with(&|r| r.name = "茶".repeat(101))), "name");
        validate_rule(&with(&|r| r.name = "茶".repeat(100))).unwrap();
        assert_eq!(
            field(&with(&|r| r.effect = Effect::Multiplier { permille: 999 })),
            "effect.permille"
        );
        assert_eq!(
            field(&with(
                &|r| r.effect = Effect::Multiplier { permille: 10_001 }
            )),
            "effect.permille"
        );
        validate_rule(&with(&|r| {
            r.effect = Effect::Multiplier { permille: 10_000 }
        }))
        .unwrap();
        for bad in ["25:00", "9:00", "14:60", "14-00", "", "１4:00"] {
            assert_eq!(
                field(&with(&|r| r.scope.time_from = Some(bad.into()))),
                "scope.time_from",
                "{bad}"
            );
        }
        assert_eq!(
            field(&with(&|r| r.scope.time_to = Some("14:00".into()))),
            "scope.time_to"
        );
        assert_eq!(
            field(&with(&|r| r.scope.weekdays = vec![0])),
            "scope.weekdays"
        );
        assert_eq!(
            field(&with(&|r| r.scope.weekdays = vec![8])),
            "scope.weekdays"
        );
        assert_eq!(
            field(&with(&|r| r.scope.stores = vec![String::new()])),
            "scope.stores"
        );
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert_eq!(
            field(&with(&|r| {
                r.scope.starts_on = d("2026-03-02");
                r.scope.ends_on = d("2026-03-01");
            })),
            "scope.ends_on"
        );
        validate_rule(&with(&|r| {
            r.scope.starts_on = d("2026-03-01");
            r.scope.ends_on = d("2026-03-01");
        }))
        .unwrap();
        let effect = |e: Effect| field(&with(&move |r| r.effect = e.clone()));
        assert_eq!(
            effect(Effect::Cap {
                per_order: Some(0),
                per_day: None
            }),
            "effect.per_order"
        );
        assert_eq!(
            effect(Effect::Cap {
                per_order: None,
                per_day: Some(-1)
            }),
            "effect.per_day"
        );
        assert_eq!(
            effect(Effect::Cap {
                per_order: None,
                per_day: None
            }),
            "effect.per_order"
        );
        assert_eq!(
            effect(Effect::Exclude {
                skus: vec![],
                categories: vec![]
            }),
            "effect.skus"
        );
        assert_eq!(
            effect(Effect::ProductBonus {
                skus: vec![],
                categories: vec![],
                new_dishes: false,
                permille: 2000
            }),
            "effect.skus"
        );
        assert_eq!(
            effect(Effect::ProductBonus {
                skus: vec![],
                categories: vec![],
                new_dishes: true,
                permille: 500
            }),
            "effect.permille"
        );
        assert_eq!(effect(Effect::FlatBonus { points: 0 }), "effect.points");
        assert_eq!(effect(Effect::MinimumSpend { fen: 0 }), "effect.fen");

        let err = validate_rules(&[ok.clone(), ok.clone()]).unwrap_err();
        assert!(err.to_string().contains("used twice"), "{err}");
        let err = validate_rules(&[with(&|r| r.effect = Effect::Multiplier { permille: 1 })])
            .unwrap_err();
        assert!(err.to_string().contains("afternoon_x2"), "{err}");
    }

    #[test]
    fn json_round_trip_of_the_console_example() {
        let json = r#"{"id":"afternoon_x2","name":"工作日下午茶 ×2","scope":{"weekdays":[1,2,3,4,5],"time_from":"14:00","time_to":"17:00"},"effect":{"kind":"multiplier","permille":2000}}"#;
        let r: EarningRule = serde_json::from_str(json).unwrap();
        assert!(r.enabled);
        assert_eq!(r.scope.weekdays, vec![1, 2, 3, 4, 5]);
        assert_eq!(r.effect, Effect::Multiplier { permille: 2000 });
        validate_rule(&r).unwrap();
        let back: EarningRule = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let v = serde_json::to_value(&r).unwrap();
        let mut expected: serde_json::Value = serde_json::from_str(json).unwrap();
        expected["enabled"] = true.into();
        assert_eq!(v, expected);
        assert_eq!(describe(&r), "周一至周五 14:00–17:00 积分 ×2");

        // A whole set, every effect.
        let set_json = r#"{"version":3,"rules":[
            {"id":"a","name":"A","effect":{"kind":"product_bonus","new_dishes":true,"permille":2000}},
            {"id":"b","name":"B","enabled":false,"scope":{"channels":["online"],"tiers":["gold"],"starts_on":"2026-03-01","birthday_month":true},"effect":{"kind":"flat_bonus","points":20}},
            {"id":"c","name":"C","effect":{"kind":"exclude","categories":["酒水"]}},
            {"id":"d","name":"D","effect":{"kind":"minimum_spend","fen":10000}},
            {"id":"e","name":"E","effect":{"kind":"cap","per_day":1000}}]}"#;
        let s: RuleSet = serde_json::from_str(set_json).unwrap();
        assert_eq!(s.rules.len(), 5);
        validate_rules(&s.rules).unwrap();
        let again: RuleSet = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);

        // Unknown fields and kinds are refused.
        for bad in [
            r#"{"id":"a","name":"A","effect":{"kind":"multiplier","permille":2000,"x":1}}"#,
            r#"{"id":"a","name":"A","effect":{"kind":"double"}}"#,
            r#"{"id":"a","name":"A","scope":{"weekday":[1]},"effect":{"kind":"flat_bonus","points":1}}"#,
            r#"{"id":"a","name":"A","colour":"red","effect":{"kind":"flat_bonus","points":1}}"#,
        ] {
            assert!(serde_json::from_str::<EarningRule>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn describe_summarises_each_effect() {
        let d = |scope: Scope, effect: Effect| describe(&rule("r", "R", scope, effect));
        assert_eq!(
            d(
                Scope {
                    channels: vec![Channel::Online],
                    ..Scope::default()
                },
                Effect::Multiplier { permille: 1100 }
            ),
            "线上 积分 ×1.1"
        );
        assert_eq!(
            d(
                Scope {
                    weekdays: vec![6, 7],
                    birthday_month: true,
                    tiers: vec![Tier::Gold],
                    ..Scope::default()
                },
                Effect::FlatBonus { points: 20 }
            ),
            "金卡会员 生日月 周六、周日 额外赠送 20 分"
        );
        assert_eq!(
            d(
                Scope {
                    time_from: Some("22:00".into()),
                    time_to: Some("02:00".into()),
                    ..Scope::default()
                },
                Effect::Cap {
                    per_order: Some(500),
                    per_day: Some(1000)
                }
            ),
            "22:00–次日02:00 单笔上限 500 分、每日上限 1000 分"
        );
        assert_eq!(
            d(
                Scope::default(),
                Effect::Exclude {
                    skus: vec![],
                    categories: vec!["酒水".into()]
                }
            ),
            "品类 酒水 不积分"
        );
        assert_eq!(
            d(Scope::default(), Effect::MinimumSpend { fen: 10_050 }),
            "消费满 ¥100.50 才积分"
        );
        assert_eq!(
            d(
                Scope {
                    weekdays: vec![1, 3, 4, 5],
                    ..Scope::default()
                },
                Effect::ProductBonus {
                    skus: vec![],
                    categories: vec![],
                    new_dishes: true,
                    permille: 2000
                }
            ),
            "周一、周三至周五 新品 积分 ×2"
        );
        let mut off = rule(
            "r",
            "R",
            Scope::default(),
            Effect::Multiplier { permille: 1250 },
        );
        off.enabled = false;
        assert_eq!(describe(&off), "（已停用） 积分 ×1.25");
    }

    #[test]
    fn default_rules_are_empty_version_zero() {
        let d = RuleSet::default_rules();
        assert_eq!(d.version, 0);
        assert!(d.rules.is_empty());
        assert_eq!(d, RuleSet::default());
        assert!(!d.has_daily_cap());
        let cap = |per_day| {
            rule(
                "c",
                "上限",
                Scope::default(),
                Effect::Cap {
                    per_order: Some(10),
                    per_day,
                },
            )
        };
        assert!(!set(vec![cap(None)]).has_daily_cap());
        assert!(set(vec![cap(Some(100))]).has_daily_cap());
        let mut off = cap(Some(100));
        off.enabled = false;
        assert!(!set(vec![off]).has_daily_cap());
    }

    // -------------------------------------------------------------------
    // Properties
    // -------------------------------------------------------------------

    const SKUS: [&str; 4] = ["A", "B", "C", "N"];
    const CATS: [&str; 3] = ["荤菜", "素菜", "酒水"];

    fn base_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    fn arb_line() -> impl Strategy<Value = OrderLine> {
        (
            0..SKUS.len(),
            0..CATS.len(),
            1i64..4,
            0i64..20_000,
            0i64..3_000,
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(s, c, q, p, disc, voided, comped, staff_meal)| OrderLine {
                sku: SKUS[s].into(),
                name: format!("菜{s}"),
                category: CATS[c].into(),
                quantity: q,
                unit_price_fen: p,
                discount_fen: disc,
                voided,
                comped,
                staff_meal,
            })
    }

    fn arb_order() -> impl Strategy<Value = Order> {
        (
            prop::collection::vec(arb_line(), 0..8),
            0..Channel::ALL.len(),
            0i64..60,
            0u32..1440,
            50i64..=120,
        )
            .prop_map(|(lines, ch, day, minute, pct)| {
                let sum: i64 = lines.iter().map(OrderLine::net_fen).sum();
                let local = (base_date() + Duration::days(day))
                    .and_hms_opt(minute / 60, minute % 60, 0)
                    .unwrap();
                let at = FixedOffset::east_opt(8 * 3600)
                    .unwrap()
                    .from_local_datetime(&local)
                    .unwrap();
                Order::new(Channel::ALL[ch], at, local, lines, sum * pct / 100).unwrap()
            })
    }

    fn arb_scope() -> impl Strategy<Value = Scope> {
        let pick =
            |opts: &'static [&'static str]| prop::collection::vec(prop::sample::select(opts), 0..2);
        (
            pick(&["S1", "S2"]),
            pick(&["B1", "B2"]),
            prop::collection::vec(prop::sample::select(Channel::ALL.to_vec()), 0..2),
            prop::collection::vec(1u8..=7, 0..3),
            prop::option::weighted(0.3, (0u32..24, 0u32..24)),
            prop::option::weighted(0.3, (0i64..60, 0i64..30)),
            prop::bool::weighted(0.2),
            prop::collection::vec(prop::sample::select(Tier::ALL.to_vec()), 0..2),
        )
            .prop_map(
                |(stores, brands, channels, weekdays, hours, dates, birthday_month, tiers)| {
                    let (time_from, time_to) = match hours {
                        Some((f, t)) if f != t => {
                            (Some(format!("{f:02}:00")), Some(format!("{t:02}:00")))
                        }
                        _ => (None, None),
                    };
                    let (starts_on, ends_on) = match dates {
                        Some((a, len)) => {
                            let s = base_date() + Duration::days(a);
                            (Some(s), Some(s + Duration::days(len)))
                        }
                        None => (None, None),
                    };
                    Scope {
                        stores: stores.into_iter().map(String::from).collect(),
                        brands: brands.into_iter().map(String::from).collect(),
                        channels,
                        weekdays,
                        time_from,
                        time_to,
                        starts_on,
                        ends_on,
                        birthday_month,
                        tiers,
                    }
                },
            )
    }

    fn arb_effect() -> impl Strategy<Value = Effect> {
        let skus = || {
            prop::collection::vec(
                prop::sample::select(SKUS.to_vec()).prop_map(String::from),
                0..2,
            )
        };
        let cats = || {
            prop::collection::vec(
                prop::sample::select(CATS.to_vec()).prop_map(String::from),
                0..2,
            )
        };
        prop_oneof![
            (1000i64..=3000).prop_map(|permille| Effect::Multiplier { permille }),
            (skus(), cats(), any::<bool>(), 1000i64..=3000).prop_map(
                |(skus, categories, new_dishes, permille)| {
                    Effect::ProductBonus {
                        skus,
                        categories,
                        new_dishes,
                        permille,
                    }
                }
            ),
            (1i64..200).prop_map(|points| Effect::FlatBonus { points }),
            (skus(), cats()).prop_map(|(skus, categories)| Effect::Exclude { skus, categories }),
            (1i64..50_000).prop_map(|fen| Effect::MinimumSpend { fen }),
            (prop::option::of(1i64..500), prop::option::of(1i64..1000))
                .prop_map(|(per_order, per_day)| Effect::Cap { per_order, per_day }),
        ]
    }

    fn arb_rules() -> impl Strategy<Value = RuleSet> {
        prop::collection::vec((arb_scope(), arb_effect(), prop::bool::weighted(0.9)), 0..6)
            .prop_map(|rs| RuleSet {
                version: 1,
                rules: rs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (scope, effect, enabled))| EarningRule {
                        id: format!("r{i}"),
                        name: format!("规则{i}"),
                        enabled,
                        scope,
                        effect,
                    })
                    .collect(),
            })
    }

    /// Member situation: store, brand, tier, tier permille, birthday month, earned today.
    type Member = (&'static str, &'static str, Tier, i64, Option<u32>, i64);

    fn arb_member() -> impl Strategy<Value = Member> {
        (
            prop::sample::select(vec!["S1", "S2"]),
            prop::sample::select(vec!["B1", "B2"]),
            prop::sample::select(Tier::ALL.to_vec()),
            prop_oneof![Just(None), (1000i64..=2500).prop_map(Some)],
            prop::option::of(1u32..=12),
            0i64..2_000,
        )
            .prop_map(|(s, b, tier, permille, bday, today)| {
                let permille = permille.unwrap_or(tier.default_multiplier_permille());
                (s, b, tier, permille, bday, today)
            })
    }

    fn member_ctx<'a>(order: &'a Order, m: &Member, new: &'a BTreeSet<String>) -> EarnContext<'a> {
        EarnContext {
            order,
            store_code: m.0,
            brand_code: m.1,
            tier: m.2,
            tier_multiplier_permille: m.3,
            birthday_month: m.4,
            points_earned_today: m.5,
            new_skus: new,
        }
    }

    fn new_skus() -> BTreeSet<String> {
        ["N".to_string()].into()
    }

    proptest! {
        #[test]
        fn points_are_never_negative_and_equal_the_lines(o in arb_order(), rules in arb_rules(), m in arb_member()) {
            let new = new_skus();
            let e = earn(&member_ctx(&o, &m, &new), &rules);
            prop_assert!(e.points >= 0);
            prop_assert_eq!(e.points, e.lines.iter().map(|l| l.points).sum::<i64>());
            prop_assert!(e.eligible_fen <= o.eligible_fen());
        }

        #[test]
        fn no_rules_is_the_default_formula(o in arb_order(), m in arb_member()) {
            let new = new_skus();
            let e = earn(&member_ctx(&o, &m, &new), &RuleSet::default_rules());
            prop_assert_eq!(e.eligible_fen, o.eligible_fen());
            prop_assert_eq!(e.points, (o.eligible_fen() / 100) * m.3 / 1000);
            prop_assert_eq!(e.points, e.lines.iter().map(|l| l.points).sum::<i64>());
        }

        #[test]
        fn voiding_a_line_never_increases_points(
            o in arb_order(),
            rules in arb_rules(),
            m in arb_member(),
            idx in any::<prop::sample::Index>(),
        ) {
            if o.lines.is_empty() {
                return Ok(());
            }
            let new = new_skus();
            let before = earn(&member_ctx(&o, &m, &new), &rules).points;
            let mut voided = o.clone();
            let i = idx.index(voided.lines.len());
            voided.lines[i].voided = true;
            let after = earn(&member_ctx(&voided, &m, &new), &rules).points;
            prop_assert!(after <= before, "{} > {}", after, before);
        }

        #[test]
        fn caps_are_respected(
            o in arb_order(),
            rules in arb_rules(),
            m in arb_member(),
            per_order in 1i64..400,
            per_day in 1i64..3_000,
        ) {
            let new = new_skus();
            let mut capped = rules.clone();
            capped.rules.push(rule("cap", "上限", Scope::default(), Effect::Cap { per_order: Some(per_order), per_day: None }));
            let e = earn(&member_ctx(&o, &m, &new), &capped);
            prop_assert!(e.points <= per_order);
            prop_assert_eq!(e.points, e.lines.iter().map(|l| l.points).sum::<i64>());

            let mut daily = rules;
            daily.rules.push(rule("day", "每日", Scope::default(), Effect::Cap { per_order: None, per_day: Some(per_day) }));
            let e = earn(&member_ctx(&o, &m, &new), &daily);
            prop_assert!(e.points <= (per_day - m.5).max(0));
        }
    }
}
