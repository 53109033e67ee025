//! Orders as the POS sends them: channel, lines, what the guest paid. The
//! validation here is every rule an order must meet before it is stored, and
//! [`Order::eligible_fen`] is the one definition of "what the guest paid for"
//! that earning starts from (API.md "Defaults").

use crate::{DomainError, Result};
use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Where the order was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    DineIn,
    Takeaway,
    Delivery,
    Online,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::DineIn,
        Channel::Takeaway,
        Channel::Delivery,
        Channel::Online,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::DineIn => "dine_in",
            Channel::Takeaway => "takeaway",
            Channel::Delivery => "delivery",
            Channel::Online => "online",
        }
    }
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
    #[serde(default)]
    pub discount_fen: i64,
    #[serde(default)]
    pub voided: bool,
    #[serde(default)]
    pub comped: bool,
    #[serde(default)]
    pub staff_meal: bool,
}

impl OrderLine {
    /// Voided, comped and staff-meal lines earn nothing.
    pub fn earns(&self) -> bool {
        !(self.voided || self.comped || self.staff_meal)
    }

    /// What the guest was charged for this line (never below zero).
    pub fn net_fen(&self) -> i64 {
        (self.quantity * self.unit_price_fen - self.discount_fen).max(0)
    }
}

/// The largest amount one order may carry: ¥10,000,000. Far above any
/// restaurant bill, far below where i64 arithmetic on fen could overflow.
pub const MAX_ORDER_FEN: i64 = 1_000_000_000;
pub const MAX_LINES: usize = 500;

/// An order, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub channel: Channel,
    /// When it happened, with the offset the POS sent.
    pub occurred_at: DateTime<FixedOffset>,
    /// The same instant on the chain's wall clock (time windows, days, caps).
    pub local_time: NaiveDateTime,
    pub lines: Vec<OrderLine>,
    pub paid_fen: i64,
}

impl Order {
    /// Check an order's lines and amounts. `local_time` is `occurred_at` in the
    /// chain's time zone, worked out by the caller (this crate has no zones).
    pub fn new(
        channel: Channel,
        occurred_at: DateTime<FixedOffset>,
        local_time: NaiveDateTime,
        lines: Vec<OrderLine>,
        paid_fen: i64,
    ) -> Result<Order> {
        if !(0..=MAX_ORDER_FEN).contains(&paid_fen) {
            return Err(DomainError::invalid(
                "paid_fen",
                format!("must be between 0 and {MAX_ORDER_FEN}"),
            ));
        }
        if lines.len() > MAX_LINES {
            return Err(DomainError::invalid(
                "items",
                format!("at most {MAX_LINES} lines per order"),
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            let at =
                |reason: &str| DomainError::invalid("items", format!("line {}: {reason}", i + 1));
            if line.sku.trim().is_empty() || line.sku.chars().count() > 64 {
                return Err(at("sku must be 1–64 characters"));
            }
            if line.name.chars().count() > 200 || line.category.chars().count() > 64 {
                return Err(at("name (≤200) or category (≤64) too long"));
            }
            if !(1..=10_000).contains(&line.quantity) {
                return Err(at("quantity must be between 1 and 10000"));
            }
            if !(0..=MAX_ORDER_FEN).contains(&line.unit_price_fen) {
                return Err(at("unit_price_fen must be between 0 and 1000000000"));
            }
            if line.discount_fen < 0 {
                return Err(at("discount_fen cannot be negative"));
            }
            if line.quantity.saturating_mul(line.unit_price_fen) > MAX_ORDER_FEN {
                return Err(at("quantity × unit_price_fen is too large"));
            }
        }
        Ok(Order {
            channel,
            occurred_at,
            local_time,
            lines,
            paid_fen,
        })
    }

    /// `min(paid_fen, Σ quantity × unit_price_fen − discount_fen)` over the lines
    /// that earn.
    pub fn eligible_fen(&self) -> i64 {
        let lines: i64 = self
            .lines
            .iter()
            .filter(|l| l.earns())
            .map(OrderLine::net_fen)
            .sum();
        lines.min(self.paid_fen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(qty: i64, price: i64) -> OrderLine {
        OrderLine {
            sku: "D001".into(),
            name: "毛肚".into(),
            category: "荤菜".into(),
            quantity: qty,
            unit_price_fen: price,
            discount_fen: 0,
            voided: false,
            comped: false,
            staff_meal: false,
        }
    }

    fn order(lines: Vec<OrderLine>, paid: i64) -> Result<Order> {
        let at = DateTime::parse_from_rfc3339("2026-03-04T12:00:00+08:00").unwrap();
        Order::new(Channel::DineIn, at, at.naive_local(), lines, paid)
    }

    #[test]
    fn voided_comped_and_staff_meals_are_not_eligible() {
        let mut voided = line(1, 10_000);
        voided.voided = true;
        let mut comped = line(1, 5_000);
        comped.comped = true;
        let mut staff = line(1, 3_000);
        staff.staff_meal = true;
        let o = order(vec![line(2, 4_800), voided, comped, staff], 100_000).unwrap();
        assert_eq!(o.eligible_fen(), 9_600);
    }

    #[test]
    fn eligible_never_exceeds_paid_and_discounts_reduce_it() {
        let mut l = line(2, 4_800);
        l.discount_fen = 600;
        assert_eq!(
            order(vec![l.clone()], 100_000).unwrap().eligible_fen(),
            9_000
        );
        assert_eq!(order(vec![l], 5_000).unwrap().eligible_fen(), 5_000);
    }

    #[test]
    fn bad_lines_are_refused_with_the_line_number() {
        let err = order(vec![line(1, 100), line(0, 100)], 100).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(order(vec![line(1, -1)], 100).is_err());
        assert!(order(vec![line(1, 100)], -5).is_err());
    }
}
