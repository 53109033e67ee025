//! The rewards catalogue: what points buy, for whom, how many. A reward is
//! redeemed through the ordinary points redemption (`reward_id`), so the
//! ledger rules apply unchanged; these are the rules on top.

use crate::tier::Tier;
use crate::{DomainError, Result};
use serde::{Deserialize, Serialize};

/// What the guest gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// A dish on the house, delivered as a free-item coupon.
    FreeDish,
    /// A coupon from a template.
    Coupon,
    /// Goods handed over at the store (mugs, chopsticks, sauce jars).
    Merchandise,
    /// Points off the bill: `points_cost` points per ¥1.
    CashOffset,
    /// A kitchen tour, a cooking class, a chef's table.
    Experience,
    /// One ticket into a draw.
    LotteryEntry,
}

impl RewardKind {
    pub const ALL: [RewardKind; 6] = [
        RewardKind::FreeDish,
        RewardKind::Coupon,
        RewardKind::Merchandise,
        RewardKind::CashOffset,
        RewardKind::Experience,
        RewardKind::LotteryEntry,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::FreeDish => "free_dish",
            RewardKind::Coupon => "coupon",
            RewardKind::Merchandise => "merchandise",
            RewardKind::CashOffset => "cash_offset",
            RewardKind::Experience => "experience",
            RewardKind::LotteryEntry => "lottery_entry",
        }
    }
    pub fn parse(s: &str) -> Option<RewardKind> {
        RewardKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Kinds delivered as a coupon need a template.
    pub fn needs_template(self) -> bool {
        matches!(self, RewardKind::FreeDish | RewardKind::Coupon)
    }
}

/// A catalogue entry as HQ defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    pub name: String,
    pub kind: RewardKind,
    /// Points for one unit (for a cash offset: points per ¥1).
    pub points_cost: i64,
    /// The coupon template a free dish or coupon reward issues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_template_id: Option<String>,
    /// Units in stock; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    /// Redemptions one member may make, over the reward's life; absent = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_member_limit: Option<i64>,
    /// The lowest tier that may redeem it.
    #[serde(default = "lowest_tier")]
    pub min_tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn lowest_tier() -> Tier {
    Tier::Regular
}

impl RewardSpec {
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "1 to 100 characters"));
        }
        if !(1..=10_000_000).contains(&self.points_cost) {
            return Err(DomainError::invalid(
                "points_cost",
                "between 1 and 10000000 points",
            ));
        }
        match (self.kind.needs_template(), &self.coupon_template_id) {
            (true, None) => {
                return Err(DomainError::invalid(
                    "coupon_template_id",
                    format!(
                        "a {} reward is delivered as a coupon: name its template",
                        self.kind.as_str()
                    ),
                ))
            }
            (false, Some(_)) => {
                return Err(DomainError::invalid(
                    "coupon_template_id",
                    format!("a {} reward issues no coupon", self.kind.as_str()),
                ))
            }
            _ => {}
        }
        if self.stock.is_some_and(|s| !(0..=100_000_000).contains(&s)) {
            return Err(DomainError::invalid("stock", "between 0 and 100000000"));
        }
        if self
            .per_member_limit
            .is_some_and(|l| !(1..=1_000_000).contains(&l))
        {
            return Err(DomainError::invalid(
                "per_member_limit",
                "between 1 and 1000000",
            ));
        }
        if self
            .description
            .as_deref()
            .is_some_and(|d| d.chars().count() > 1000)
        {
            return Err(DomainError::invalid(
                "description",
                "at most 1000 characters",
            ));
        }
        Ok(())
    }
}

/// What the member and the shelf look like at the moment of redemption.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub tier: Tier,
    /// Redemptions of this reward the member already made.
    pub redeemed_before: i64,
    /// Units left; `None` = unlimited.
    pub stock_left: Option<i64>,
    /// Points the member offers.
    pub points: i64,
}

/// Why a reward cannot be redeemed. Each has a stable code for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewardRefusal {
    #[error("this reward is no longer offered")]
    Retired,
    #[error("this reward is for {0:?} members and above")]
    TierTooLow(Tier),
    #[error("this member has already redeemed this reward {0} time(s), the most allowed")]
    LimitReached(i64),
    #[error("this reward is out of stock")]
    OutOfStock,
    #[error("this reward costs {expected} points; {offered} were offered")]
    WrongPoints { expected: i64, offered: i64 },
}

impl RewardRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            RewardRefusal::Retired => "reward_retired",
            RewardRefusal::TierTooLow(_) => "reward_tier_too_low",
            RewardRefusal::LimitReached(_) => "reward_limit_reached",
            RewardRefusal::OutOfStock => "reward_out_of_stock",
            RewardRefusal::WrongPoints { .. } => "reward_points_mismatch",
        }
    }
}

/// May this member redeem this reward now, for these points? Answers the
/// units bought: one, or for a cash offset the whole yuan the points make.
pub fn check_claim(
    spec: &RewardSpec,
    active: bool,
    claim: &Claim,
) -> std::result::Result<i64, RewardRefusal> {
    if !active {
        return Err(RewardRefusal::Retired);
    }
    if claim.tier < spec.min_tier {
        return Err(RewardRefusal::TierTooLow(spec.min_tier));
    }
    if spec
        .per_member_limit
        .is_some_and(|limit| claim.redeemed_before >= limit)
    {
        return Err(RewardRefusal::LimitReached(claim.redeemed_before));
    }
    let units = match spec.kind {
        RewardKind::CashOffset if claim.points > 0 && claim.points % spec.points_cost == 0 => {
            claim.points / spec.points_cost
        }
        RewardKind::CashOffset => {
            return Err(RewardRefusal::WrongPoints {
                expected: (claim.points / spec.points_cost).max(1) * spec.points_cost,
                offered: claim.points,
            })
        }
        _ if claim.points == spec.points_cost => 1,
        _ => {
            return Err(RewardRefusal::WrongPoints {
                expected: spec.points_cost,
                offered: claim.points,
            })
        }
    };
    // A cash offset draws on no shelf; anything else takes one unit.
    if spec.kind != RewardKind::CashOffset && claim.stock_left.is_some_and(|s| s < 1) {
        return Err(RewardRefusal::OutOfStock);
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mug() -> RewardSpec {
        RewardSpec {
            name: "定制马克杯".into(),
            kind: RewardKind::Merchandise,
            points_cost: 800,
            coupon_template_id: None,
            stock: Some(10),
            per_member_limit: Some(2),
            min_tier: Tier::Silver,
            description: None,
        }
    }

    fn claim(tier: Tier, before: i64, stock: Option<i64>, points: i64) -> Claim {
        Claim {
            tier,
            redeemed_before: before,
            stock_left: stock,
            points,
        }
    }

    #[test]
    fn tier_limit_stock_and_price_are_each_enforced() {
        let m = mug();
        assert_eq!(
            check_claim(&m, true, &claim(Tier::Silver, 0, Some(1), 800)),
            Ok(1)
        );
        assert_eq!(
            check_claim(&m, true, &claim(Tier::Regular, 0, Some(5), 800)),
            Err(RewardRefusal::TierTooLow(Tier::Silver))
        );
        assert_eq!(
            check_claim(&m, true, &claim(Tier::Gold, 2, Some(5), 800)),
            Err(RewardRefusal::LimitReached(2))
        );
        assert_eq!(
            check_claim(&m, true, &claim(Tier::Gold, 0, Some(0), 800)),
            Err(RewardRefusal::OutOfStock)
        );
        assert_eq!(
            check_claim(&m, true, &claim(Tier::Gold, 0, Some(3), 700)),
            Err(RewardRefusal::WrongPoints {
                expected: 800,
                offered: 700
            })
        );
        assert_eq!(
            check_claim(&m, false, &claim(Tier::Gold, 0, Some(3), 800)),
            Err(RewardRefusal::Retired)
        );
    }

    #[test]
    fn cash_offset_takes_whole_yuan_only() {
        let offset = RewardSpec {
            name: "积分抵现".into(),
            kind: RewardKind::CashOffset,
            points_cost: 100,
            coupon_template_id: None,
            stock: None,
            per_member_limit: None,
            min_tier: Tier::Regular,
            description: None,
        };
        assert_eq!(
            check_claim(&offset, true, &claim(Tier::Regular, 9, None, 2500)),
            Ok(25)
        );
        assert!(check_claim(&offset, true, &claim(Tier::Regular, 0, None, 250)).is_err());
    }

    #[test]
    fn coupon_rewards_must_name_a_template_and_others_must_not() {
        let mut m = mug();
        assert!(m.validate().is_ok());
        m.kind = RewardKind::FreeDish;
        assert!(m.validate().is_err());
        m.coupon_template_id = Some("tpl".into());
        assert!(m.validate().is_ok());
        m.kind = RewardKind::Experience;
        assert!(m.validate().is_err());
    }
}
