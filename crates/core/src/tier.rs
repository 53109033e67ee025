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
