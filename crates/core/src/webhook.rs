//! Outgoing webhooks: which outbox events a subscription asks for (exact
//! kinds, `family.*` or `*`), the body a receiver gets, and what a failed
//! attempt leads to. The signature and the backoff schedule are in
//! [`crate::campaign`] (`sign_webhook`, `retry_delay`, `MAX_ATTEMPTS`).

use crate::campaign::{retry_delay, MAX_ATTEMPTS};
use crate::{DomainError, Result};
use chrono::{DateTime, SecondsFormat, Utc};

/// Every kind of event the outbox holds (docs/webhooks.md lists them with
/// their payloads). A subscription may only name these, their families
/// (`coupon.*`) or `*`.
pub const EVENT_KINDS: &[&str] = &[
    "alert.complaint_rate",
    "birthday.gift",
    "campaign.reward",
    "complaint.compensation",
    "complaint.escalated",
    "complaint.opened",
    "complaint.resolved",
    "coupon.expired",
    "coupon.issued",
    "coupon.redeemed",
    "feedback.received",
    "member.vip_decline",
    "order.accrued",
    "order.refunded",
    "points.expired",
    "points.expiring",
    "points.redeemed",
    "tier.changed",
    "tier.grace",
];

/// At most this many patterns per subscription.
pub const MAX_PATTERNS: usize = 50;

/// The patterns of a subscription, trimmed, de-duplicated and checked: each
/// is `*`, a known family followed by `.*`, or a known kind.
pub fn parse_patterns(patterns: &[String]) -> Result<Vec<String>> {
    if patterns.is_empty() {
        return Err(DomainError::invalid(
            "event_kinds",
            "name at least one event kind (e.g. \"order.*\" or \"*\")",
        ));
    }
    if patterns.len() > MAX_PATTERNS {
        return Err(DomainError::invalid(
            "event_kinds",
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(patterns.len());
    for raw in patterns {
        let p = raw.trim();
        let known = if p == "*" {
            true
        } else if let Some(family) = p.strip_suffix(".*") {
            !family.is_empty()
                && EVENT_KINDS
                    .iter()
                    .any(|k| k.split_once('.').is_some_and(|(f, _)| f == family))
        } else {
            EVENT_KINDS.contains(&p)
        };
        if !known {
            return Err(DomainError::invalid(
                "event_kinds",
                format!(
                    "unknown event kind `{p}`; use `*`, a family such as `order.*`, or one of {}",
                    EVENT_KINDS.join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    Ok(out)
}

/// Does an event of `kind` match any of `patterns`?
pub fn matches(patterns: &[String], kind: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == kind
            || p.strip_suffix(".*")
                .is_some_and(|family| kind.split_once('.').is_some_and(|(f, _)| f == family))
    })
}

/// An outbox event as the delivery body carries it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub member_id: Option<&'a str>,
    /// Unix ms.
    pub created_at: i64,
    /// The outbox payload (JSON text; anything else is sent as a string).
    pub payload: &'a str,
}

/// The JSON body of a delivery: `{"id", "event", "subject", "member_id",
/// "created_at" (RFC 3339), "data"}`. Built once, when the delivery is
/// queued, so every attempt sends the same bytes.
pub fn delivery_body(delivery_id: &str, event: &Event<'_>) -> String {
    let data = serde_json::from_str::<serde_json::Value>(event.payload)
        .unwrap_or_else(|_| serde_json::Value::String(event.payload.to_string()));
    let created_at = DateTime::<Utc>::from_timestamp_millis(event.created_at)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default();
    serde_json::json!({
        "id": delivery_id,
        "event": event.kind,
        "subject": event.subject,
        "member_id": event.member_id,
        "created_at": created_at,
        "data": data,
    })
    .to_string()
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// What an attempt leads to: `attempts` is the count including this one.
/// A 2xx answer delivers; anything else waits [`retry_delay`] and tries
/// again, until [`MAX_ATTEMPTS`] make it a dead letter.
pub fn after_attempt(
    succeeded: bool,
    attempts: u32,
    now_ms: i64,
    jitter: f64,
) -> (DeliveryStatus, i64) {
    if succeeded {
        (DeliveryStatus::Delivered, now_ms)
    } else if attempts >= MAX_ATTEMPTS {
        (DeliveryStatus::Dead, now_ms)
    } else {
        let wait = retry_delay(attempts, jitter).num_milliseconds();
        (DeliveryStatus::Pending, now_ms.saturating_add(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn patterns_are_checked_and_deduplicated() {
        assert_eq!(
            parse_patterns(&s(&[" order.* ", "coupon.issued", "order.*"])).unwrap(),
            s(&["order.*", "coupon.issued"])
        );
        assert!(parse_patterns(&s(&["*"])).is_ok());
        assert!(parse_patterns(&[]).is_err());
        assert!(parse_patterns(&s(&["orders.*"])).is_err());
        assert!(parse_patterns(&s(&["order.shipped"])).is_err());
        assert!(parse_patterns(&s(&[".*"])).is_err());
        assert!(parse_patterns(&s(&["order*"])).is_err());
        assert!(parse_patterns(&s(&[""])).is_err());
    }

    #[test]
    fn patterns_match_kinds_and_families() {
        let p = s(&["order.*", "tier.changed"]);
        assert!(matches(&p, "order.accrued"));
        assert!(matches(&p, "order.refunded"));
        assert!(matches(&p, "tier.changed"));
        assert!(!matches(&p, "tier.grace"));
        assert!(!matches(&p, "coupon.issued"));
        assert!(!matches(&p, "orders.accrued"));
        assert!(matches(&s(&["*"]), "coupon.issued"));
    }

    #[test]
    fn body_carries_the_event_and_its_payload() {
        let body = delivery_body(
            "d1",
            &Event {
                kind: "order.accrued",
                subject: "o1",
                member_id: Some("m1"),
                created_at: 1_800_000_000_123,
                payload: r#"{"points": 88}"#,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "d1");
        assert_eq!(v["event"], "order.accrued");
        assert_eq!(v["member_id"], "m1");
        assert_eq!(v["data"]["points"], 88);
        assert_eq!(v["created_at"], "2027-01-15T08:00:00.123Z");
    }

    #[test]
    fn failures_back_off_then_die() {
        assert_eq!(
            after_attempt(true, 3, 1_000, 0.0),
            (DeliveryStatus::Delivered, 1_000)
        );
        assert_eq!(
            after_attempt(false, 1, 1_000, 0.0),
            (DeliveryStatus::Pending, 31_000)
        );
        assert_eq!(
            after_attempt(false, 2, 1_000, 0.0),
            (DeliveryStatus::Pending, 61_000)
        );
        assert_eq!(
            after_attempt(false, MAX_ATTEMPTS, 1_000, 0.0).0,
            DeliveryStatus::Dead
        );
    }
}
