//! Customer intelligence rules: RFM quintiles, value grades, lifecycle stages
//! measured against each member's own cadence, churn-risk bands, VIP spend
//! decline, taste profiles and dish recommendations.
//!
//! Everything here works on plain values handed in by the scoring job
//! (`server::app::insights`); the BG/NBD and Gamma-Gamma models are in
//! [`crate::clv`]. Days are local calendar day numbers (any fixed count; the scoring job uses
//! days from the common era).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One visit: an order with a member, as the scoring job sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// Local calendar day (days since 1970-01-01).
    pub day: i64,
    /// Minutes after local midnight.
    pub minute: u16,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// What the guest paid, net of refunds.
    pub spend_fen: i64,
}

/// The knobs HQ can turn (settings `insights.*`); defaults follow seed 001.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InsightPolicy {
    /// 12-month spend (fen) that makes a member a VIP: ¥5,000.
    pub vip_spend_fen: i64,
    /// VIP spend decline: last 90 days below the 90 before by this share (%).
    pub decline_drop_percent: i64,
    /// …and the 90 days before were at least this much (fen), so one missed
    /// dinner of a light spender is not a "decline".
    pub decline_min_prior_fen: i64,
    /// A member whose first visit is this recent is `new`.
    pub new_days: i64,
    /// Dormant after this many of the member's own usual gaps without a visit…
    pub dormant_cadences: f64,
    /// …but never before this many days.
    pub min_dormant_days: i64,
    /// Churned after this many usual gaps…
    pub churned_cadences: f64,
    /// …but never before this many days.
    pub min_churned_days: i64,
    /// A return after a dormant-length gap counts as `reactivated` for this long.
    pub reactivated_days: i64,
}

impl Default for InsightPolicy {
    fn default() -> Self {
        InsightPolicy {
            vip_spend_fen: 500_000,
            decline_drop_percent: 50,
            decline_min_prior_fen: 100_000,
            new_days: 90,
            dormant_cadences: 3.0,
            min_dormant_days: 45,
            churned_cadences: 8.0,
            min_churned_days: 180,
            reactivated_days: 90,
        }
    }
}

/// A member's visits reduced to what the rules need.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitFacts {
    pub first_day: i64,
    pub last_day: i64,
    /// Distinct visit days (two orders on one day are one visit).
    pub visit_days: i64,
    pub visits_12m: i64,
    pub spend_total_fen: i64,
    pub spend_12m_fen: i64,
    pub spend_90d_fen: i64,
    pub spend_prev_90d_fen: i64,
    /// Mean gap in days between visit days, when there are at least two.
    pub cadence_days: Option<f64>,
    /// Mean gap before the latest one, and the latest gap: what reactivation reads.
    pub cadence_before_last: Option<f64>,
    pub last_gap_days: Option<i64>,
    /// Spend per visit day (the first day included), in visit-day order.
    pub day_spend_fen: Vec<i64>,
}

impl VisitFacts {
    /// Mean spend of the repeat visit days (the first day excluded): the
    /// Gamma-Gamma monetary value; 0 with a single visit.
    pub fn repeat_mean_fen(&self) -> f64 {
        let repeat = self.day_spend_fen.get(1..).unwrap_or_default();
        if repeat.is_empty() {
            0.0
        } else {
            repeat.iter().sum::<i64>() as f64 / repeat.len() as f64
        }
    }

    /// The BG/NBD / Gamma-Gamma summary as of `today`, one period = one day.
    pub fn summary(&self, today: i64) -> crate::clv::CustomerSummary {
        crate::clv::CustomerSummary {
            frequency: (self.visit_days - 1) as f64,
            recency: (self.last_day - self.first_day) as f64,
            t: (today - self.first_day) as f64,
            monetary_value: self.repeat_mean_fen(),
        }
    }
}

/// Reduce visits (any order) to facts as of `today`.
pub fn visit_facts(visits: &[Visit], today: i64) -> Option<VisitFacts> {
    let mut by_day: Vec<(i64, i64)> = Vec::with_capacity(visits.len());
    let mut sorted: Vec<&Visit> = visits.iter().filter(|v| v.day <= today).collect();
    sorted.sort_by_key(|v| v.day);
    for v in sorted {
        match by_day.last_mut() {
            Some((d, s)) if *d == v.day => *s += v.spend_fen,
            _ => by_day.push((v.day, v.spend_fen)),
        }
    }
    let first_day = by_day.first()?.0;
    let last_day = by_day.last()?.0;
    let sum_since = |from: i64, to: i64| -> i64 {
        by_day
            .iter()
            .filter(|(d, _)| *d > from && *d <= to)
            .map(|(_, s)| s)
            .sum()
    };
    let gaps: Vec<i64> = by_day.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let mean = |g: &[i64]| (!g.is_empty()).then(|| g.iter().sum::<i64>() as f64 / g.len() as f64);
    Some(VisitFacts {
        first_day,
        last_day,
        visit_days: by_day.len() as i64,
        visits_12m: by_day.iter().filter(|(d, _)| *d > today - 365).count() as i64,
        spend_total_fen: by_day.iter().map(|(_, s)| s).sum(),
        spend_12m_fen: sum_since(today - 365, today),
        spend_90d_fen: sum_since(today - 90, today),
        spend_prev_90d_fen: sum_since(today - 180, today - 90),
        cadence_days: mean(&gaps),
        cadence_before_last: gaps.split_last().and_then(|(_, before)| mean(before)),
        last_gap_days: gaps.last().copied(),
        day_spend_fen: by_day.iter().map(|(_, s)| *s).collect(),
    })
}

/// Where a member is in their life with the brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Registered, never visited.
    Potential,
    New,
    Active,
    Dormant,
    Churned,
    /// Came back after a dormant-length absence.
    Reactivated,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 6] = [
        Lifecycle::Potential,
        Lifecycle::New,
        Lifecycle::Active,
        Lifecycle::Dormant,
        Lifecycle::Churned,
        Lifecycle::Reactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Potential => "potential",
            Lifecycle::New => "new",
            Lifecycle::Active => "active",
            Lifecycle::Dormant => "dormant",
            Lifecycle::Churned => "churned",
            Lifecycle::Reactivated => "reactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Lifecycle> {
        Lifecycle::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl InsightPolicy {
    /// Every knob within its range, and churn after dormancy.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::DomainError;
        if !(0..=100_000_000_000).contains(&self.vip_spend_fen) {
            return Err(DomainError::invalid(
                "vip_spend_fen",
                "must be 0 to 100,000,000,000 fen",
            ));
        }
        if !(1..=100).contains(&self.decline_drop_percent) {
            return Err(DomainError::invalid(
                "decline_drop_percent",
                "must be 1–100",
            ));
        }
        if self.decline_min_prior_fen < 0 {
            return Err(DomainError::invalid(
                "decline_min_prior_fen",
                "must be 0 or more fen",
            ));
        }
        for (field, days) in [
            ("new_days", self.new_days),
            ("min_dormant_days", self.min_dormant_days),
            ("min_churned_days", self.min_churned_days),
            ("reactivated_days", self.reactivated_days),
        ] {
            if !(1..=3650).contains(&days) {
                return Err(DomainError::invalid(field, "must be 1–3650 days"));
            }
        }
        if !(1.0..=100.0).contains(&self.dormant_cadences) {
            return Err(DomainError::invalid("dormant_cadences", "must be 1–100"));
        }
        if !(self.churned_cadences > self.dormant_cadences && self.churned_cadences <= 200.0) {
            return Err(DomainError::invalid(
                "churned_cadences",
                "must be above dormant_cadences, at most 200",
            ));
        }
        if self.min_churned_days <= self.min_dormant_days {
            return Err(DomainError::invalid(
                "min_churned_days",
                "must be more than min_dormant_days",
            ));
        }
        Ok(())
    }

    fn dormant_after(&self, cadence: f64) -> f64 {
        (self.dormant_cadences * cadence).max(self.min_dormant_days as f64)
    }

    fn churned_after(&self, cadence: f64) -> f64 {
        (self.churned_cadences * cadence).max(self.min_churned_days as f64)
    }
}

/// The lifecycle stage. Dormancy is measured against the member's own usual
/// gap between visits (a weekly regular is dormant after three weeks, a
/// twice-a-year guest is not); `usual_cadence` stands in for members with a
/// single visit (the scoring job passes the organisation's median).
pub fn lifecycle(
    facts: Option<&VisitFacts>,
    today: i64,
    usual_cadence: f64,
    policy: &InsightPolicy,
) -> Lifecycle {
    let Some(f) = facts else {
        return Lifecycle::Potential;
    };
    let since = (today - f.last_day) as f64;
    let cadence = f.cadence_days.unwrap_or(usual_cadence);
    if since > policy.churned_after(cadence) {
        return Lifecycle::Churned;
    }
    if since > policy.dormant_after(cadence) {
        return Lifecycle::Dormant;
    }
    if today - f.first_day <= policy.new_days {
        return Lifecycle::New;
    }
    if let Some(gap) = f.last_gap_days {
        let before = f.cadence_before_last.unwrap_or(usual_cadence);
        if gap as f64 > policy.dormant_after(before)
            && today - f.last_day <= policy.reactivated_days
        {
            return Lifecycle::Reactivated;
        }
    }
    Lifecycle::Active
}

/// Quintile scores 1–5 within the organisation. Equal values get equal
/// scores (the score of their middle rank), so a tie never splits across a
/// boundary by accident of ordering.
pub fn quintiles(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (values[a], values[b]);
        let c = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
        if higher_is_better {
            c
        } else {
            c.reverse()
        }
    });
    let mut scores = vec![0u8; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let score = (1 + ((i + j) / 2 * 5) / n.max(1)).min(5) as u8;
        for &k in &order[i..=j] {
            scores[k] = score;
        }
        i = j + 1;
    }
    scores
}

/// Seed 001's value grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// 忠诚顾客: comes often and recently.
    Loyal,
    /// 潜力顾客: spends well or is building a habit.
    Potential,
    /// 普通顾客.
    Ordinary,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Loyal => "loyal",
            Grade::Potential => "potential",
            Grade::Ordinary => "ordinary",
        }
    }

    pub fn chinese_name(self) -> &'static str {
        match self {
            Grade::Loyal => "忠诚顾客",
            Grade::Potential => "潜力顾客",
            Grade::Ordinary => "普通顾客",
        }
    }

    /// The member tags that are staff marks (what a store manager knows that
    /// numbers do not), and the grade each sets.
    pub const STAFF_TAGS: [(&'static str, Grade); 5] = [
        ("忠诚顾客", Grade::Loyal),
        ("忠诚", Grade::Loyal),
        ("潜力顾客", Grade::Potential),
        ("潜力", Grade::Potential),
        ("普通顾客", Grade::Ordinary),
    ];

    /// The grade a staff mark sets, if `tag` is one.
    pub fn from_staff_tag(tag: &str) -> Option<Grade> {
        Grade::STAFF_TAGS
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, g)| *g)
    }
}

/// RFM scores of one member (1–5 each, 5 best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rfm {
    pub r: u8,
    pub f: u8,
    pub m: u8,
}

impl Rfm {
    /// The three digits as one number, 111–555.
    pub fn code(self) -> i64 {
        i64::from(self.r) * 100 + i64::from(self.f) * 10 + i64::from(self.m)
    }
}

/// The grade from the quantitative scores, overridden by a staff mark. Loyal:
/// recent and frequent with a repeat habit (2+ visits in 12 months).
/// Potential: recent enough and either spending well or visiting fairly
/// often. Everyone else, and members with no visit, ordinary.
pub fn grade(rfm: Option<Rfm>, visits_12m: i64, staff_mark: Option<Grade>) -> Grade {
    if let Some(mark) = staff_mark {
        return mark;
    }
    let Some(s) = rfm else {
        return Grade::Ordinary;
    };
    if s.r >= 4 && s.f >= 4 && visits_12m >= 2 {
        Grade::Loyal
    } else if s.r >= 3 && (s.m >= 4 || s.f >= 3) {
        Grade::Potential
    } else {
        Grade::Ordinary
    }
}

/// Churn risk from the BG/NBD probability that the member is still a customer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChurnRisk {
    Low,
    Medium,
    High,
}

impl ChurnRisk {
    pub fn of(p_alive: f64) -> ChurnRisk {
        if p_alive < 0.3 {
            ChurnRisk::High
        } else if p_alive < 0.7 {
            ChurnRisk::Medium
        } else {
            ChurnRisk::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChurnRisk::Low => "low",
            ChurnRisk::Medium => "medium",
            ChurnRisk::High => "high",
        }
    }
}

/// VIP by 12-month spend.
pub fn is_vip(facts: Option<&VisitFacts>, policy: &InsightPolicy) -> bool {
    facts.is_some_and(|f| f.spend_12m_fen >= policy.vip_spend_fen)
}

/// A VIP whose last 90 days fell below the 90 before by the configured share.
/// The VIP test uses the spend of the 12 months, so a guest who was a VIP
/// three months ago and has now dropped is still caught while it matters.
pub fn vip_decline(facts: Option<&VisitFacts>, policy: &InsightPolicy) -> bool {
    let Some(f) = facts else {
        return false;
    };
    is_vip(facts, policy)
        && f.spend_prev_90d_fen >= policy.decline_min_prior_fen
        && f.spend_90d_fen * 100 < f.spend_prev_90d_fen * (100 - policy.decline_drop_percent)
}

/// A dish on the menu, as taste and recommendations see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dish {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub spice_level: i64,
}

/// Dishes a member must not be offered (menu order): staff meals, and every
/// dish whose name contains a declared allergy or dislike (花生 excludes 花生酱).
pub fn excluded_dishes(menu: &[Dish], taste: &crate::member::TasteProfile) -> Vec<bool> {
    menu.iter()
        .map(|d| {
            d.category == "员工餐"
                || taste
                    .allergies
                    .iter()
                    .chain(&taste.dislikes)
                    .any(|a| !a.is_empty() && d.name.contains(a.as_str()))
        })
        .collect()
}

/// What a member's orders say about their taste.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TasteSummary {
    /// Quantity-weighted spice level of what they order (0–4), when they have
    /// ordered anything with a known spice level.
    pub spice_level: Option<u8>,
    /// Top three categories by quantity.
    pub favourite_categories: Vec<String>,
    /// Top five dishes by quantity (names).
    pub favourite_dishes: Vec<String>,
    /// What they avoid: declared allergies and dislikes, and popular dishes
    /// they have never ordered in 5+ visits.
    pub avoided: Vec<String>,
    /// When they come: `weekday_lunch`, `weekend_dinner`, … (buckets with at
    /// least a quarter of their visits, most frequent first).
    pub usual_times: Vec<String>,
}

/// When guests come: weekday/weekend × lunch, afternoon, dinner, late.
pub const TIME_BUCKETS: [&str; 8] = [
    "weekday_lunch",
    "weekday_afternoon",
    "weekday_dinner",
    "weekday_late",
    "weekend_lunch",
    "weekend_afternoon",
    "weekend_dinner",
    "weekend_late",
];

/// The index in [`TIME_BUCKETS`] of a visit at `minute` on `weekday` (0 = Monday).
pub fn time_bucket(minute: u16, weekday: u8) -> usize {
    let part = match minute / 60 {
        10..=14 => 0,
        15..=16 => 1,
        17..=20 => 2,
        _ => 3,
    };
    if weekday >= 5 {
        4 + part
    } else {
        part
    }
}

/// The taste profile from a member's dish counts (menu index → quantity),
/// visits per time bucket ([`time_bucket`]) and declared allergies/dislikes.
/// `popular` is the organisation's dish order by popularity (menu indexes).
pub fn taste(
    dish_counts: &[(usize, u32)],
    menu: &[Dish],
    buckets: &[u32; 8],
    declared_avoid: &[String],
    popular: &[usize],
) -> TasteSummary {
    let visits: u32 = buckets.iter().sum();
    let mut summary = TasteSummary::default();
    let (mut spice_sum, mut spice_n) = (0i64, 0i64);
    let mut categories: Vec<(String, u64)> = Vec::new();
    let mut dishes: Vec<(usize, u32)> = dish_counts
        .iter()
        .copied()
        .filter(|(i, _)| *i < menu.len())
        .collect();
    for &(i, n) in &dishes {
        let dish = &menu[i];
        spice_sum += dish.spice_level * i64::from(n);
        spice_n += i64::from(n);
        match categories.iter_mut().find(|(c, _)| *c == dish.category) {
            Some((_, total)) => *total += u64::from(n),
            None => categories.push((dish.category.clone(), u64::from(n))),
        }
    }
    if spice_n > 0 {
        summary.spice_level =
            Some(((spice_sum as f64 / spice_n as f64).round() as i64).clamp(0, 4) as u8);
    }
    categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    summary.favourite_categories = categories.into_iter().take(3).map(|(c, _)| c).collect();
    dishes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    summary.favourite_dishes = dishes
        .iter()
        .take(5)
        .map(|(i, _)| menu[*i].name.clone())
        .collect();
    summary.avoided = declared_avoid.to_vec();
    if visits >= 5 {
        let ordered: HashSet<usize> = dish_counts.iter().map(|(i, _)| *i).collect();
        for &i in popular.iter().take(10) {
            if !ordered.contains(&i) && i < menu.len() && !summary.avoided.contains(&menu[i].name) {
                summary.avoided.push(menu[i].name.clone());
            }
        }
    }
    let mut by_count: Vec<(usize, u32)> = buckets.iter().copied().enumerate().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    summary.usual_times = by_count
        .into_iter()
        .filter(|(_, n)| *n > 0 && *n * 4 >= visits)
        .map(|(b, _)| TIME_BUCKETS[b].to_string())
        .collect();
    summary
}

/// Item-to-item co-occurrence over order history: how often two dishes are
/// ordered together, against how often each is ordered at all.
#[derive(Debug, Clone)]
pub struct CoOccurrence {
    dishes: usize,
    /// Orders containing each dish.
    orders_with: Vec<u64>,
    /// Orders containing both (dishes × dishes, symmetric).
    together: Vec<u64>,
}

impl CoOccurrence {
    pub fn new(dishes: usize) -> CoOccurrence {
        CoOccurrence {
            dishes,
            orders_with: vec![0; dishes],
            together: vec![0; dishes * dishes],
        }
    }

    /// Count one order's distinct dishes (menu indexes; out-of-range ignored).
    pub fn add_order(&mut self, dishes: &[usize]) {
        let mut seen: Vec<usize> = dishes
            .iter()
            .copied()
            .filter(|&d| d < self.dishes)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for (k, &a) in seen.iter().enumerate() {
            self.orders_with[a] += 1;
            for &b in &seen[k + 1..] {
                self.together[a * self.dishes + b] += 1;
                self.together[b * self.dishes + a] += 1;
            }
        }
    }

    /// Merge counts made over another part of the history.
    pub fn merge(&mut self, other: &CoOccurrence) {
        if other.dishes != self.dishes {
            return;
        }
        for (a, b) in self.orders_with.iter_mut().zip(&other.orders_with) {
            *a += b;
        }
        for (a, b) in self.together.iter_mut().zip(&other.together) {
            *a += b;
        }
    }

    /// Cosine similarity of two dishes' order sets.
    pub fn similarity(&self, a: usize, b: usize) -> f64 {
        if a >= self.dishes || b >= self.dishes || a == b {
            return 0.0;
        }
        let both = self.together[a * self.dishes + b] as f64;
        let norm = (self.orders_with[a] as f64 * self.orders_with[b] as f64).sqrt();
        if norm == 0.0 {
            0.0
        } else {
            both / norm
        }
    }

    /// Dishes by how many orders hold them, most first (ties by menu order).
    pub fn popular(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dishes).collect();
        order.sort_by(|&a, &b| {
            self.orders_with[b]
                .cmp(&self.orders_with[a])
                .then(a.cmp(&b))
        });
        order
    }

    pub fn orders_with(&self, dish: usize) -> u64 {
        self.orders_with.get(dish).copied().unwrap_or(0)
    }
}

/// Up to `k` dishes for a member's next visit. Each dish the member has
/// ordered votes for itself (how often they come back to it) and, through
/// co-occurrence, for the dishes ordered with it; excluded dishes (allergies,
/// dislikes, staff meals) never appear. A member with no history gets the
/// most popular dishes.
pub fn recommend(
    co: &CoOccurrence,
    history: &[(usize, u32)],
    excluded: &dyn Fn(usize) -> bool,
    k: usize,
) -> Vec<usize> {
    let total: f64 = history.iter().map(|(_, n)| f64::from(*n)).sum();
    let mut score = vec![0.0f64; co.dishes];
    if total > 0.0 {
        for &(d, n) in history {
            if d >= co.dishes {
                continue;
            }
            let w = f64::from(n) / total;
            score[d] += w;
            for (j, s) in score.iter_mut().enumerate() {
                *s += w * co.similarity(d, j) * 0.5;
            }
        }
    }
    // Popularity breaks ties and fills in for thin histories.
    let max_orders = co.orders_with.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut ranked: Vec<(usize, f64)> = (0..co.dishes)
        .filter(|&d| !excluded(d) && co.orders_with[d] > 0)
        .map(|d| (d, score[d] + 1e-3 * co.orders_with[d] as f64 / max_orders))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    ranked.into_iter().take(k).map(|(d, _)| d).collect()
}

/// The popularity baseline: the `k` most ordered dishes not excluded.
pub fn recommend_popular(
    co: &CoOccurrence,
    excluded: &dyn Fn(usize) -> bool,
    k: usize,
) -> Vec<usize> {
    co.popular()
        .into_iter()
        .filter(|&d| !excluded(d) && co.orders_with[d] > 0)
        .take(k)
        .collect()
}

/// Hit rate at k of one held-out visit: the share of the visit's dishes
/// (at most k of them count) that the recommendation named.
pub fn hit_rate(recommended: &[usize], visit_dishes: &[usize]) -> f64 {
    let mut actual: Vec<usize> = visit_dishes.to_vec();
    actual.sort_unstable();
    actual.dedup();
    if actual.is_empty() || recommended.is_empty() {
        return 0.0;
    }
    let hits = recommended.iter().filter(|d| actual.contains(d)).count();
    hits as f64 / actual.len().min(recommended.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(day: i64, spend: i64) -> Visit {
        Visit {
            day,
            minute: 18 * 60,
            weekday: (day % 7) as u8,
            spend_fen: spend,
        }
    }

    #[test]
    fn two_orders_on_one_day_are_one_visit() {
        let f = visit_facts(&[visit(100, 5000), visit(100, 3000), visit(110, 1000)], 120)
            .expect("facts");
        assert_eq!(f.visit_days, 2);
        assert_eq!(f.day_spend_fen, vec![8000, 1000]);
        assert_eq!(f.cadence_days, Some(10.0));
        let c = f.summary(120);
        assert_eq!(
            (c.frequency, c.recency, c.t, c.monetary_value),
            (1.0, 10.0, 20.0, 1000.0)
        );
        assert!(InsightPolicy::default().validate().is_ok());
        let backwards = InsightPolicy {
            min_churned_days: 30,
            ..InsightPolicy::default()
        };
        assert!(backwards.validate().is_err());
    }

    #[test]
    fn dormancy_follows_the_members_own_cadence() {
        let p = InsightPolicy::default();
        // A weekly regular, 50 days away: dormant. A quarterly guest, 50 days away: active.
        let weekly: Vec<Visit> = (0..20).map(|i| visit(1000 + i * 7, 10000)).collect();
        let last = 1000 + 19 * 7;
        let f = visit_facts(&weekly, last + 50);
        assert_eq!(
            lifecycle(f.as_ref(), last + 50, 30.0, &p),
            Lifecycle::Dormant
        );
        let quarterly: Vec<Visit> = (0..6).map(|i| visit(1000 + i * 90, 10000)).collect();
        let last = 1000 + 5 * 90;
        let f = visit_facts(&quarterly, last + 50);
        assert_eq!(
            lifecycle(f.as_ref(), last + 50, 30.0, &p),
            Lifecycle::Active
        );
        // …and churned once far beyond eight of their gaps.
        let f = visit_facts(&quarterly, last + 800);
        assert_eq!(
            lifecycle(f.as_ref(), last + 800, 30.0, &p),
            Lifecycle::Churned
        );
    }

    #[test]
    fn stages_potential_new_and_reactivated() {
        let p = InsightPolicy::default();
        assert_eq!(lifecycle(None, 500, 30.0, &p), Lifecycle::Potential);
        let f = visit_facts(&[visit(480, 100)], 500);
        assert_eq!(lifecycle(f.as_ref(), 500, 30.0, &p), Lifecycle::New);
        let mut v: Vec<Visit> = (0..10).map(|i| visit(100 + i * 10, 100)).collect();
        v.push(visit(500, 100)); // back after 310 days away
        let f = visit_facts(&v, 510);
        assert_eq!(lifecycle(f.as_ref(), 510, 30.0, &p), Lifecycle::Reactivated);
        let f = visit_facts(&v, 700);
        assert_ne!(lifecycle(f.as_ref(), 700, 30.0, &p), Lifecycle::Reactivated);
    }

    #[test]
    fn quintiles_split_evenly_and_keep_ties_together() {
        let values: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(quintiles(&values, true), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert_eq!(
            quintiles(&values, false),
            vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
        );
        let tied = vec![1.0, 1.0, 1.0, 1.0, 9.0];
        assert_eq!(quintiles(&tied, true), vec![2, 2, 2, 2, 5]);
        assert!(quintiles(&[], true).is_empty());
    }

    #[test]
    fn grades_and_staff_marks() {
        let top = Rfm { r: 5, f: 5, m: 3 };
        assert_eq!(grade(Some(top), 6, None), Grade::Loyal);
        assert_eq!(
            grade(Some(Rfm { r: 3, f: 1, m: 5 }), 1, None),
            Grade::Potential
        );
        assert_eq!(
            grade(Some(Rfm { r: 1, f: 1, m: 1 }), 1, None),
            Grade::Ordinary
        );
        assert_eq!(grade(Some(top), 6, Some(Grade::Ordinary)), Grade::Ordinary);
        assert_eq!(grade(None, 0, None), Grade::Ordinary);
        assert_eq!(top.code(), 553);
    }

    #[test]
    fn vip_decline_needs_a_real_drop() {
        let p = InsightPolicy::default();
        // ¥6,000 in the prior 90 days, ¥1,000 in the last 90: a decline.
        let v = vec![
            visit(1000, 300_000),
            visit(1050, 300_000),
            visit(1130, 100_000),
        ];
        let f = visit_facts(&v, 1160);
        assert!(vip_decline(f.as_ref(), &p));
        // Same spend both periods: no decline.
        let v = vec![visit(1000, 300_000), visit(1130, 300_000)];
        let f = visit_facts(&v, 1160);
        assert!(!vip_decline(f.as_ref(), &p));
    }

    fn menu() -> Vec<Dish> {
        [
            ("A", "麻辣锅", "锅底", 4),
            ("B", "肥牛", "肉类", 0),
            ("C", "毛肚", "肉类", 0),
            ("D", "冰粉", "小吃", 0),
        ]
        .iter()
        .map(|(s, n, c, l)| Dish {
            sku: s.to_string(),
            name: n.to_string(),
            category: c.to_string(),
            spice_level: *l,
        })
        .collect()
    }

    #[test]
    fn taste_from_orders() {
        let mut buckets = [0u32; 8];
        buckets[time_bucket(18 * 60, 2)] += 5;
        buckets[time_bucket(12 * 60, 6)] += 1;
        let t = taste(
            &[(0, 6), (1, 2)],
            &menu(),
            &buckets,
            &["香菜".into()],
            &[2, 1, 0, 3],
        );
        assert_eq!(t.spice_level, Some(3));
        assert_eq!(t.favourite_categories, vec!["锅底", "肉类"]);
        assert_eq!(t.favourite_dishes, vec!["麻辣锅", "肥牛"]);
        assert!(t.avoided.contains(&"香菜".to_string()));
        assert!(t.avoided.contains(&"毛肚".to_string()));
        assert_eq!(t.usual_times, vec!["weekday_dinner"]);
    }

    #[test]
    fn recommendations_follow_pairings_and_respect_exclusions() {
        let mut co = CoOccurrence::new(4);
        for _ in 0..50 {
            co.add_order(&[1, 2]);
        }
        for _ in 0..80 {
            co.add_order(&[3]);
        }
        // Someone who orders 肥牛 gets 毛肚 (its pair) before the popular 冰粉.
        let r = recommend(&co, &[(1, 3)], &|_| false, 2);
        assert_eq!(r, vec![1, 2]);
        let r = recommend(&co, &[(1, 3)], &|d| d == 2, 2);
        assert_eq!(r, vec![1, 3]);
        // No history: the most popular.
        assert_eq!(recommend(&co, &[], &|_| false, 1), vec![3]);
        assert_eq!(recommend_popular(&co, &|_| false, 2), vec![3, 1]);
        assert!((hit_rate(&[1, 2], &[2, 3]) - 0.5).abs() < 1e-9);
    }
}
