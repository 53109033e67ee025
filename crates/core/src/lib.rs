//! Domain types and rules of Regulars. Plain Rust over plain values: nothing in
//! this crate touches a database, a socket or a clock it was not handed.

/// Who may do what: roles, actions and the one permission matrix.
pub mod access;
/// Campaign delivery: consent, caps, quiet hours, control groups, templates,
/// uplift, webhook signatures.
pub mod campaign;
/// Organisation → brands → regions → stores: codes and their validation.
pub mod chain;
/// Customer lifetime value: BG/NBD and Gamma-Gamma fitted by maximum likelihood.
pub mod clv;
/// Coupon templates, codes, and what a coupon takes off a bill.
pub mod coupon;
/// How points are earned: rules as data, explanations.
pub mod earning;
/// The domain error type shared by every rule in this crate.
pub mod error;
/// Guest feedback: categories, severities, the phrase-rule classifier.
pub mod feedback;
/// Customer intelligence: RFM, grades, lifecycle, taste, recommendations.
pub mod insight;
/// The points ledger: lots, soonest-expiring-first consumption, refunds.
pub mod ledger;
/// Members: the validated shape of a guest's profile, consents, tags, taste.
pub mod member;
/// Orders: channels, lines, what the guest paid for.
pub mod order;
/// Phone numbers: normalisation to E.164, validation, masked display.
pub mod phone;
/// Encryption of personal data at rest and the phone blind index.
pub mod privacy;
/// The rewards catalogue: tier eligibility, per-member limits, stock.
pub mod reward;
/// Staff passwords (argon2id) and API key secrets.
pub mod secret;
/// The segments language: parse, check and compile member filters.
pub mod segment;
/// Surveys: question sets as data, answers, NPS.
pub mod survey;
/// Tiers and their default thresholds.
pub mod tier;
/// Outgoing webhooks: event patterns, the delivery body, retry outcomes.
pub mod webhook;

pub use error::{DomainError, Result};
