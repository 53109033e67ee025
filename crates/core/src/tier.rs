//! Tiers: 普通 / 银卡 / 金卡 / 黑金. Thresholds and multipliers are data (the
//! loyalty engine reads them from the database); these are the defaults of a
//! fresh database (API.md "Defaults").

use serde::{Deserialize, Serialize};

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
pub enum Tier {
    Regular,
    Silver,
    Gold,
    BlackGold,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Regular, Tier::Silver, Tier::Gold, Tier::BlackGold];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Regular => "regular",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
            Tier::BlackGold => "black_gold",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn chinese_name(self) -> &'static str {
        match self {
            Tier::Regular => "普通",
            Tier::Silver => "银卡",
            Tier::Gold => "金卡",
            Tier::BlackGold => "黑金",
        }
    }

    /// Rolling-12-month qualifying spend (fen) that reaches this tier by default.
    pub fn default_threshold_fen(self) -> i64 {
        match self {
            Tier::Regular => 0,
            Tier::Silver => 50_000,
            Tier::Gold => 200_000,
            Tier::BlackGold => 500_000,
        }
    }

    /// Earning multiplier in per-mille (1000 = ×1.0), exact in integers.
    pub fn default_multiplier_permille(self) -> i64 {
        match self {
            Tier::Regular => 1000,
            Tier::Silver => 1200,
            Tier::Gold => 1500,
            Tier::BlackGold => 2000,
        }
    }
}

/// What one tier gives and takes: data, with the defaults of API.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierBenefits {
    pub tier: Tier,
    /// Rolling-12-month qualifying spend (fen) that reaches the tier.
    pub threshold_fen: i64,
    pub multiplier_permille: i64,
    /// Months until points earned at this tier expire.
    pub expiry_months: u32,
    /// Birthday-month gift in points (issued once a year by the job).
    pub birthday_points: i64,
    /// Coupon templates of the birthday pack (one coupon each, same once-a-year
    /// guard as the points).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub birthday_coupon_templates: Vec<String>,
    pub priority_reservation: bool,
    pub account_manager: bool,
}

/// The whole tier ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierPolicy {
    pub tiers: Vec<TierBenefits>,
}

impl Default for TierPolicy {
    fn default() -> TierPolicy {
        TierPolicy {
            tiers: Tier::ALL
                .into_iter()
                .map(|tier| TierBenefits {
                    tier,
                    threshold_fen: tier.default_threshold_fen(),
                    multiplier_permille: tier.default_multiplier_permille(),
                    expiry_months: match tier {
                        Tier::Gold => 18,
                        Tier::BlackGold => 24,
                        _ => 12,
                    },
                    birthday_points: match tier {
                        Tier::Regular => 0,
                        Tier::Silver => 100,
                        Tier::Gold => 300,
                        Tier::BlackGold => 800,
                    },
                    birthday_coupon_templates: Vec::new(),
                    priority_reservation: tier >= Tier::Gold,
                    account_manager: tier == Tier::BlackGold,
                })
                .collect(),
        }
    }
}

impl TierPolicy {
    pub fn benefits(&self, tier: Tier) -> TierBenefits {
        self.tiers
            .iter()
            .find(|b| b.tier == tier)
            .cloned()
            .unwrap_or(TierBenefits {
                tier,
                threshold_fen: tier.default_threshold_fen(),
                multiplier_permille: tier.default_multiplier_permille(),
                expiry_months: 12,
                birthday_points: 0,
                birthday_coupon_templates: Vec::new(),
                priority_reservation: false,
                account_manager: false,
            })
    }

    /// The highest tier whose threshold `spend_fen` reaches (at exactly the
    /// threshold, the tier is reached).
    pub fn tier_for_spend(&self, spend_fen: i64) -> Tier {
        Tier::ALL
            .into_iter()
            .rev()
            .find(|t| spend_fen >= self.benefits(*t).threshold_fen)
            .unwrap_or(Tier::Regular)
    }

    /// The next tier up and the spend still missing to reach it.
    pub fn next_tier(&self, current: Tier, spend_fen: i64) -> Option<(Tier, i64)> {
        Tier::ALL
            .into_iter()
            .find(|t| *t > current)
            .map(|t| (t, (self.benefits(t).threshold_fen - spend_fen).max(0)))
    }
}

/// The tier after an order: upgrades happen at once, never a downgrade
/// (downgrades wait for the review), never below a manual floor.
pub fn after_order(
    policy: &TierPolicy,
    current: Tier,
    spend_after_fen: i64,
    floor: Option<Tier>,
) -> Tier {
    current
        .max(policy.tier_for_spend(spend_after_fen))
        .max(floor.unwrap_or(Tier::Regular))
}

/// What the periodic review does to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Stays (or rises to) this tier; any pending grace is cleared.
    Keep(Tier),
    /// Spend no longer holds the tier: one review period of grace starts.
    Grace,
    /// Grace ran out: the member moves down to this tier.
    Downgrade(Tier),
}

/// The monthly review: a member whose spend no longer holds their tier gets
/// one period of grace; still short at the next review, they move down to the
/// tier their spend reaches (never below a floor still in force).
pub fn review(
    policy: &TierPolicy,
    current: Tier,
    spend_fen: i64,
    floor: Option<Tier>,
    in_grace: bool,
) -> Review {
    let earned = policy
        .tier_for_spend(spend_fen)
        .max(floor.unwrap_or(Tier::Regular));
    if earned >= current {
        Review::Keep(earned)
    } else if in_grace {
        Review::Downgrade(earned)
    } else {
        Review::Grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_at_the_threshold_reaches_the_tier() {
        let p = TierPolicy::default();
        assert_eq!(p.tier_for_spend(49_999), Tier::Regular);
        assert_eq!(p.tier_for_spend(50_000), Tier::Silver);
        assert_eq!(p.tier_for_spend(200_000), Tier::Gold);
        assert_eq!(p.tier_for_spend(500_000), Tier::BlackGold);
        assert_eq!(
            p.next_tier(Tier::Silver, 120_000),
            Some((Tier::Gold, 80_000))
        );
        assert_eq!(p.next_tier(Tier::BlackGold, 0), None);
    }

    #[test]
    fn orders_only_upgrade_and_reviews_downgrade_after_grace() {
        let p = TierPolicy::default();
        assert_eq!(after_order(&p, Tier::Gold, 10, None), Tier::Gold);
        assert_eq!(after_order(&p, Tier::Regular, 50_000, None), Tier::Silver);
        assert_eq!(
            after_order(&p, Tier::Regular, 0, Some(Tier::Gold)),
            Tier::Gold
        );
        assert_eq!(review(&p, Tier::Gold, 60_000, None, false), Review::Grace);
        assert_eq!(
            review(&p, Tier::Gold, 60_000, None, true),
            Review::Downgrade(Tier::Silver)
        );
        assert_eq!(
            review(&p, Tier::Gold, 250_000, None, true),
            Review::Keep(Tier::Gold)
        );
        assert_eq!(
            review(&p, Tier::Gold, 0, Some(Tier::Gold), true),
            Review::Keep(Tier::Gold)
        );
    }
}
