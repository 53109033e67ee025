//! Coupons: what a template gives (amount off, percent off, a free dish),
//! where and when it may be used, and what it takes off a given bill. Codes
//! are unguessable and forgiving to type. Everything here is plain values;
//! the loyalty engine stores templates as JSON and coupons as rows.

use crate::earning::parse_hhmm;
use crate::order::OrderLine;
use crate::{DomainError, Result};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What the coupon gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Benefit {
    /// A fixed amount off the bill (never more than the bill).
    AmountOff { amount_off_fen: i64 },
    /// A share off the bill, e.g. 12 = 12% off (打八八折), optionally capped.
    PercentOff {
        percent_off: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_off_fen: Option<i64>,
    },
    /// One portion of this dish free; the dish must be on the bill.
    FreeItem { sku: String, item_name: String },
}

/// A coupon template, as stored and edited by marketing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplate {
    /// Display name, e.g. "满200减30".
    pub name: String,
    pub benefit: Benefit,
    /// The bill (eligible lines) must reach this amount.
    #[serde(default)]
    pub min_spend_fen: i64,
    /// Store codes where the coupon may be used; empty = every store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
    /// ISO weekdays (1 = Monday … 7 = Sunday); empty = every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<u8>,
    /// "HH:MM", inclusive, local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_from: Option<String>,
    /// "HH:MM", exclusive; earlier than `time_from` crosses midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to: Option<String>,
    /// Valid for this many days from issue (the last day included) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
    /// … or until the end of this local date, whenever issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
}

/// The most a template may promise: ¥100,000 off, a validity of 3 years.
const MAX_OFF_FEN: i64 = 10_000_000;
const MAX_VALID_DAYS: u32 = 1096;

impl CouponTemplate {
    /// Every rule a template must meet before it is stored.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "1 to 100 characters"));
        }
        match &self.benefit {
            Benefit::AmountOff { amount_off_fen } => {
                if !(1..=MAX_OFF_FEN).contains(amount_off_fen) {
                    return Err(DomainError::invalid(
                        "amount_off_fen",
                        "between 1 and 10000000 fen",
                    ));
                }
            }
            Benefit::PercentOff {
                percent_off,
                max_off_fen,
            } => {
                if !(1..=100).contains(percent_off) {
                    return Err(DomainError::invalid("percent_off", "between 1 and 100"));
                }
                if max_off_fen.is_some_and(|m| !(1..=MAX_OFF_FEN).contains(&m)) {
                    return Err(DomainError::invalid(
                        "max_off_fen",
                        "between 1 and 10000000 fen",
                    ));
                }
            }
            Benefit::FreeItem { sku, item_name } => {
                if sku.trim().is_empty() || sku.len() > 64 {
                    return Err(DomainError::invalid("sku", "1 to 64 characters"));
                }
                if item_name.trim().is_empty() || item_name.chars().count() > 100 {
                    return Err(DomainError::invalid("item_name", "1 to 100 characters"));
                }
            }
        }
        if !(0..=MAX_OFF_FEN * 10).contains(&self.min_spend_fen) {
            return Err(DomainError::invalid(
                "min_spend_fen",
                "between 0 and 100000000 fen",
            ));
        }
        if self.weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return Err(DomainError::invalid(
                "weekdays",
                "ISO weekdays, 1 (Monday) to 7 (Sunday)",
            ));
        }
        for (field, time) in [("time_from", &self.time_from), ("time_to", &self.time_to)] {
            if time.as_deref().is_some_and(|t| parse_hhmm(t).is_none()) {
                return Err(DomainError::invalid(field, "\"HH:MM\", 00:00 to 23:59"));
            }
        }
        match (self.valid_days, self.valid_until) {
            (Some(days), None) if (1..=MAX_VALID_DAYS).contains(&days) => Ok(()),
            (Some(_), None) => Err(DomainError::invalid(
                "valid_days",
                "between 1 and 1096 days",
            )),
            (None, Some(_)) => Ok(()),
            _ => Err(DomainError::invalid(
                "valid_days",
                "give exactly one of valid_days and valid_until",
            )),
        }
    }

    /// The last local date a coupon issued on `issued_on` may be used.
    pub fn last_day(&self, issued_on: NaiveDate) -> NaiveDate {
        match (self.valid_days, self.valid_until) {
            (_, Some(until)) => until,
            (Some(days), None) => issued_on + chrono::Days::new(u64::from(days.max(1)) - 1),
            (None, None) => issued_on,
        }
    }

    /// What this coupon takes off the bill, or why it cannot be used here
    /// and now. The coupon's own state (used, expired) is checked by
    /// [`check_state`]; this is about the bill.
    pub fn discount(&self, bill: &Bill<'_>) -> std::result::Result<i64, Refusal> {
        if !self.stores.is_empty() && !self.stores.iter().any(|s| s == bill.store_code) {
            return Err(Refusal::WrongStore);
        }
        let at = bill.local_time;
        if !self.weekdays.is_empty()
            && !self
                .weekdays
                .iter()
                .any(|d| u32::from(*d) == at.weekday().number_from_monday())
        {
            return Err(Refusal::WrongDay);
        }
        let from = self.time_from.as_deref().and_then(parse_hhmm);
        let to = self.time_to.as_deref().and_then(parse_hhmm);
        let now = at.hour() * 60 + at.minute();
        let inside = match (from, to) {
            (Some(f), Some(t)) if f <= t => f <= now && now < t,
            (Some(f), Some(t)) => now >= f || now < t,
            (Some(f), None) => now >= f,
            (None, Some(t)) => now < t,
            (None, None) => true,
        };
        if !inside {
            return Err(Refusal::OutsideHours);
        }
        let subtotal = bill.subtotal_fen();
        if subtotal < self.min_spend_fen {
            return Err(Refusal::BelowMinimum {
                min_spend_fen: self.min_spend_fen,
                subtotal_fen: subtotal,
            });
        }
        let off = match &self.benefit {
            Benefit::AmountOff { amount_off_fen } => *amount_off_fen,
            Benefit::PercentOff {
                percent_off,
                max_off_fen,
            } => {
                let off = subtotal * percent_off / 100;
                max_off_fen.map_or(off, |m| off.min(m))
            }
            Benefit::FreeItem { sku, .. } => bill
                .lines
                .iter()
                .filter(|l| l.earns() && l.quantity > 0 && &l.sku == sku)
                .map(|l| l.unit_price_fen)
                .max()
                .ok_or_else(|| Refusal::ItemMissing { sku: sku.clone() })?,
        };
        Ok(off.min(subtotal).max(0))
    }

    /// One line for a guest or a cashier: "满¥200减¥30，周一至周五 14:00–17:00".
    pub fn describe(&self) -> String {
        let mut out = match &self.benefit {
            Benefit::AmountOff { amount_off_fen } => format!("减{}", yuan(*amount_off_fen)),
            Benefit::PercentOff {
                percent_off,
                max_off_fen,
            } => {
                let mut s = format!("立减{percent_off}%");
                if let Some(m) = max_off_fen {
                    s.push_str(&format!("（最多减{}）", yuan(*m)));
                }
                s
            }
            Benefit::FreeItem { item_name, .. } => format!("赠{item_name}一份"),
        };
        if self.min_spend_fen > 0 {
            out = format!("满{}{}", yuan(self.min_spend_fen), out);
        }
        if !self.weekdays.is_empty() {
            let days: Vec<String> = self.weekdays.iter().map(|d| format!("周{d}")).collect();
            out.push_str(&format!("，限{}", days.join("/")));
        }
        if self.time_from.is_some() || self.time_to.is_some() {
            out.push_str(&format!(
                "，{}–{}",
                self.time_from.as_deref().unwrap_or("00:00"),
                self.time_to.as_deref().unwrap_or("24:00")
            ));
        }
        if !self.stores.is_empty() {
            out.push_str(&format!("，限门店 {}", self.stores.join("/")));
        }
        out
    }
}

fn yuan(fen: i64) -> String {
    if fen % 100 == 0 {
        format!("¥{}", fen / 100)
    } else {
        format!("¥{}.{:02}", fen / 100, fen % 100)
    }
}

/// The bill a coupon is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Bill<'a> {
    pub store_code: &'a str,
    /// The chain's wall clock at the till.
    pub local_time: NaiveDateTime,
    pub lines: &'a [OrderLine],
}

impl Bill<'_> {
    /// What the guest is paying for: the lines that are not voided, comped
    /// or staff meals, after their discounts.
    pub fn subtotal_fen(&self) -> i64 {
        self.lines
            .iter()
            .filter(|l| l.earns())
            .map(OrderLine::net_fen)
            .sum()
    }
}

/// Where a coupon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponStatus {
    Issued,
    Redeemed,
    Expired,
    Void,
}

impl CouponStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponStatus::Issued => "issued",
            CouponStatus::Redeemed => "redeemed",
            CouponStatus::Expired => "expired",
            CouponStatus::Void => "void",
        }
    }
    pub fn parse(s: &str) -> Option<CouponStatus> {
        [
            CouponStatus::Issued,
            CouponStatus::Redeemed,
            CouponStatus::Expired,
            CouponStatus::Void,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Why a coupon cannot be used. Each has a stable code for the POS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this coupon has already been used")]
    AlreadyUsed,
    #[error("this coupon has expired")]
    Expired,
    #[error("this coupon is not valid yet")]
    NotYetValid,
    #[error("this coupon was withdrawn")]
    Void,
    #[error("this coupon is not valid at this store")]
    WrongStore,
    #[error("this coupon is not valid on this day of the week")]
    WrongDay,
    #[error("this coupon is not valid at this time of day")]
    OutsideHours,
    #[error("the bill of {subtotal_fen} fen is below the coupon's minimum of {min_spend_fen} fen")]
    BelowMinimum {
        min_spend_fen: i64,
        subtotal_fen: i64,
    },
    #[error("the free dish {sku} is not on the bill")]
    ItemMissing { sku: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyUsed => "coupon_used",
            Refusal::Expired => "coupon_expired",
            Refusal::NotYetValid => "coupon_not_yet_valid",
            Refusal::Void => "coupon_void",
            Refusal::WrongStore => "coupon_wrong_store",
            Refusal::WrongDay => "coupon_wrong_day",
            Refusal::OutsideHours => "coupon_outside_hours",
            Refusal::BelowMinimum { .. } => "coupon_below_minimum",
            Refusal::ItemMissing { .. } => "coupon_item_missing",
        }
    }
}

/// Whether a coupon in this state may be used at `now` (epoch ms).
pub fn check_state(
    status: CouponStatus,
    valid_from: i64,
    expires_at: i64,
    now: i64,
) -> std::result::Result<(), Refusal> {
    match status {
        CouponStatus::Redeemed => Err(Refusal::AlreadyUsed),
        CouponStatus::Void => Err(Refusal::Void),
        CouponStatus::Expired => Err(Refusal::Expired),
        CouponStatus::Issued if now >= expires_at => Err(Refusal::Expired),
        CouponStatus::Issued if now < valid_from => Err(Refusal::NotYetValid),
        CouponStatus::Issued => Ok(()),
    }
}

/// Crockford's base 32: no I, L, O or U, so a code read aloud or typed from
/// a receipt is hard to get wrong.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 characters of base 32: 80 random bits, beyond guessing at any rate a
/// server would answer.
pub const CODE_LEN: usize = 16;

/// A fresh coupon code from the operating system's random source, stored in
/// its canonical form (no dashes).
pub fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..CODE_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..32)]))
        .collect()
}

/// The canonical form of a typed code: case, dashes and spaces ignored, and
/// the letters people confuse with digits read as those digits.
pub fn normalize_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

/// A code as printed: groups of four, `ABCD-EFGH-JKMN-PQRS`.
pub fn display_code(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, qty: i64, price: i64) -> OrderLine {
        OrderLine {
            sku: sku.into(),
            name: sku.into(),
            category: "hot".into(),
            quantity: qty,
            unit_price_fen: price,
            discount_fen: 0,
            voided: false,
            comped: false,
            staff_meal: false,
        }
    }

    fn template(benefit: Benefit) -> CouponTemplate {
        CouponTemplate {
            name: "test".into(),
            benefit,
            min_spend_fen: 0,
            stores: vec![],
            weekdays: vec![],
            time_from: None,
            time_to: None,
            valid_days: Some(30),
            valid_until: None,
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn bill<'a>(lines: &'a [OrderLine], when: &str) -> Bill<'a> {
        Bill {
            store_code: "CD01",
            local_time: at(when),
            lines,
        }
    }

    #[test]
    fn amount_off_never_exceeds_the_bill_and_respects_the_minimum() {
        let mut t = template(Benefit::AmountOff {
            amount_off_fen: 3000,
        });
        t.min_spend_fen = 20_000;
        let lines = [line("a", 2, 10_000)];
        assert_eq!(t.discount(&bill(&lines, "2026-11-24 12:00")), Ok(3000));
        let small = [line("a", 1, 19_999)];
        assert_eq!(
            t.discount(&bill(&small, "2026-11-24 12:00")),
            Err(Refusal::BelowMinimum {
                min_spend_fen: 20_000,
                subtotal_fen: 19_999
            })
        );
        t.min_spend_fen = 0;
        let tiny = [line("a", 1, 1000)];
        assert_eq!(t.discount(&bill(&tiny, "2026-11-24 12:00")), Ok(1000));
    }

    #[test]
    fn voided_and_comped_lines_do_not_count_towards_the_minimum() {
        let mut t = template(Benefit::AmountOff {
            amount_off_fen: 1000,
        });
        t.min_spend_fen = 10_000;
        let mut voided = line("b", 1, 9_000);
        voided.voided = true;
        let lines = [line("a", 1, 5_000), voided];
        assert!(matches!(
            t.discount(&bill(&lines, "2026-11-24 12:00")),
            Err(Refusal::BelowMinimum { .. })
        ));
    }

    #[test]
    fn percent_off_rounds_down_and_is_capped() {
        let t = template(Benefit::PercentOff {
            percent_off: 12,
            max_off_fen: Some(5000),
        });
        let lines = [line("a", 1, 10_099)];
        assert_eq!(t.discount(&bill(&lines, "2026-11-24 12:00")), Ok(1211));
        let big = [line("a", 1, 100_000)];
        assert_eq!(t.discount(&bill(&big, "2026-11-24 12:00")), Ok(5000));
    }

    #[test]
    fn free_item_needs_the_dish_on_the_bill_and_gives_one_portion() {
        let t = template(Benefit::FreeItem {
            sku: "noodle".into(),
            item_name: "长寿面".into(),
        });
        let with = [line("a", 1, 5000), line("noodle", 2, 1800)];
        assert_eq!(t.discount(&bill(&with, "2026-11-24 12:00")), Ok(1800));
        let without = [line("a", 1, 5000)];
        assert_eq!(
            t.discount(&bill(&without, "2026-11-24 12:00")),
            Err(Refusal::ItemMissing {
                sku: "noodle".into()
            })
        );
        let mut comped = line("noodle", 1, 1800);
        comped.comped = true;
        let comped = [line("a", 1, 5000), comped];
        assert!(t.discount(&bill(&comped, "2026-11-24 12:00")).is_err());
    }

    #[test]
    fn store_weekday_and_hours_limit_where_and_when() {
        let mut t = template(Benefit::AmountOff {
            amount_off_fen: 500,
        });
        t.stores = vec!["BJ01".into()];
        let lines = [line("a", 1, 5000)];
        assert_eq!(
            t.discount(&bill(&lines, "2026-11-24 15:00")),
            Err(Refusal::WrongStore)
        );
        t.stores = vec!["CD01".into()];
        t.weekdays = vec![1, 2, 3, 4, 5];
        t.time_from = Some("14:00".into());
        t.time_to = Some("17:00".into());
        // 2026-11-24 is a Tuesday.
        assert_eq!(t.discount(&bill(&lines, "2026-11-24 14:00")), Ok(500));
        assert_eq!(
            t.discount(&bill(&lines, "2026-11-24 17:00")),
            Err(Refusal::OutsideHours)
        );
        assert_eq!(
            t.discount(&bill(&lines, "2026-11-29 15:00")),
            Err(Refusal::WrongDay)
        );
    }

    #[test]
    fn state_checks_order_used_before_expired() {
        assert_eq!(check_state(CouponStatus::Issued, 0, 100, 50), Ok(()));
        assert_eq!(
            check_state(CouponStatus::Issued, 0, 100, 100),
            Err(Refusal::Expired)
        );
        assert_eq!(
            check_state(CouponStatus::Issued, 60, 100, 50),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(
            check_state(CouponStatus::Redeemed, 0, 100, 500),
            Err(Refusal::AlreadyUsed)
        );
    }

    #[test]
    fn validity_by_days_includes_the_last_day() {
        let t = template(Benefit::AmountOff { amount_off_fen: 1 });
        let issued = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(
            t.last_day(issued),
            NaiveDate::from_ymd_opt(2026, 12, 23).unwrap()
        );
    }

    #[test]
    fn templates_are_checked_field_by_field() {
        let mut t = template(Benefit::PercentOff {
            percent_off: 0,
            max_off_fen: None,
        });
        assert!(t.validate().is_err());
        t.benefit = Benefit::PercentOff {
            percent_off: 10,
            max_off_fen: None,
        };
        assert!(t.validate().is_ok());
        t.valid_until = NaiveDate::from_ymd_opt(2027, 1, 1);
        assert!(t.validate().is_err(), "both validity forms at once");
        t.valid_days = None;
        assert!(t.validate().is_ok());
        t.weekdays = vec![8];
        assert!(t.validate().is_err());
        t.weekdays = vec![];
        t.time_to = Some("24:00".into());
        assert!(t.validate().is_err());
    }

    #[test]
    fn codes_are_long_random_and_forgiving_to_type() {
        let a = new_code();
        let b = new_code();
        assert_eq!(a.len(), CODE_LEN);
        assert_ne!(a, b);
        let shown = display_code(&a);
        assert_eq!(shown.len(), CODE_LEN + 3);
        assert_eq!(
            normalize_code(&shown.to_lowercase()).as_deref(),
            Some(a.as_str())
        );
        assert_eq!(
            normalize_code("oooo-iiii-llll-0000").as_deref(),
            Some("0000111111110000")
        );
        assert_eq!(normalize_code("ABCD"), None);
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQR!"), None);
    }
}
