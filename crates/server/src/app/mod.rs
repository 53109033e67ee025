//! Application services. Each public function is one thing a caller can ask
//! for: it checks the caller's permission (through
//! [`regulars_core::access::Principal::check`], the one authorisation point),
//! applies the domain rules, and talks to the store. No HTTP in here, so the
//! CLI and the console call the same functions as the REST API.

/// Store alerts: complaint rates by store and region.
pub mod alerts;
/// HQ reports: repurchase, cohorts, dishes, promotions, distributions.
pub mod analytics;
/// Staff users, API keys, console sessions: who the caller is.
pub mod auth;
/// What a campaign brought: funnel, visits, spend, uplift over control.
pub mod campaign_results;
/// Sending the campaign outbox: delivery rules at send time, rewards, retries.
pub mod campaign_sender;
/// Who enters a campaign and when: one row per (campaign, member, occasion).
pub mod campaign_triggers;
/// Campaigns: definitions, approval, status; HQ's delivery settings.
pub mod campaigns;
/// Brands, regions, stores.
pub mod chain;
/// Message channels (SMS, WeChat, e-mail, inbox) behind one adapter.
pub mod channels;
/// The POS checkout quote and pay codes.
pub mod checkout;
/// Coupon templates, issuing, validating and redeeming coupons.
pub mod coupons;
/// The application error type.
pub mod error;
/// Feedback, complaints, compensation, the service task queue.
pub mod feedback;
/// Group commit: orders arriving together share one durable transaction.
pub mod group_commit;
/// Scoring: RFM, grades, lifecycle, P(alive), CLV, taste, recommendations.
pub mod insights;
/// Periodic jobs: point expiry and reminders, tier review, birthday gifts.
pub mod jobs;
/// Posting to the points ledger; idempotent results; loyalty settings.
pub mod ledger;
/// Member sign-in on the H5 pages: one-time codes, sessions, the message log.
pub mod member_login;
/// The member's inbox, messaging preferences and marketing opt-out.
pub mod member_messages;
/// What a signed-in member does on their own account (H5 pages).
pub mod member_self;
/// Members: registration, lookup, profile, tags, consents, personal data.
pub mod members;
/// A group-commit batch of orders written with one statement per table.
pub mod order_batch;
/// Orders: ingest, earning, refunds, claims, preview.
pub mod orders;
/// Points and tiers: balance, history, redemptions, transfers, adjustments.
pub mod points;
/// The rewards catalogue and what a redemption with a reward gives.
pub mod rewards;
/// Segments: count, list and export members by expression; saved segments.
pub mod segments;
/// Staff accounts and API keys managed by HQ; the audit log read back.
pub mod staff_accounts;
/// Surveys: NPS and monthly satisfaction, results.
pub mod surveys;
/// `regulars verify`: every ledger invariant, checked against the rows.
pub mod verify;
/// Outgoing webhooks: subscriptions, fan-out from the outbox, signed delivery with retries.
pub mod webhooks;

pub use error::{AppError, AppResult};

use regulars_core::privacy::PiiKeys;
use regulars_store::Db;
use std::sync::Arc;

/// The running application: the database and the keys for personal data.
/// Cheap to clone; handlers get it as axum state.
#[derive(Clone)]
pub struct Regulars {
    pub db: Db,
    pub keys: Arc<PiiKeys>,
    pub timezone: chrono_tz::Tz,
    pub loyalty: Arc<ledger::LoyaltyConfig>,
    /// Writer lanes for orders, started on the first order.
    pub order_lanes: Arc<tokio::sync::OnceCell<group_commit::Lanes>>,
    /// API keys seen in the last seconds (see `auth::ApiKeyCache`).
    pub api_keys: Arc<auth::ApiKeyCache>,
}

impl Regulars {
    pub fn new(db: Db, keys: PiiKeys, timezone: chrono_tz::Tz) -> Regulars {
        Regulars {
            db,
            keys: Arc::new(keys),
            timezone,
            loyalty: Arc::default(),
            order_lanes: Arc::default(),
            api_keys: Arc::default(),
        }
    }

    /// A keyed signature of `message` under its own `domain` (the HMAC of the
    /// privacy index key), `bytes` long, in hex: pay codes, table links.
    pub fn signature(&self, domain: &str, message: &str, bytes: usize) -> String {
        self.keys
            .blind_index(domain, message)
            .iter()
            .take(bytes)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `given` is the signature of `message`, compared in constant
    /// time (a signature check must not leak by timing).
    pub fn signature_matches(&self, domain: &str, message: &str, given: &str) -> bool {
        let expected = self.signature(domain, message, given.len() / 2);
        !given.is_empty() && regulars_core::secret::same_secret(&expected, given)
    }

    /// Today's date in the chain's time zone.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.timezone)
            .date_naive()
    }
}
