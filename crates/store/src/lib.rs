//! Persistence of Regulars. One query text serves both backends (sqlx's `Any`
//! driver, `$n` placeholders, BIGINT times, no backend-specific types); where the
//! SQL must differ, [`Backend`] says which one is in use. Migrations live in
//! `migrations/sqlite` and `migrations/postgres`, one folder per backend.

/// Manual points adjustments waiting for approval.
pub mod adjustments;
/// HQ reports: member visits streamed; dish sales, coupons and members summed in SQL.
pub mod analytics;
/// Bulk writes of generated or imported history (COPY / multi-row INSERT).
pub mod bulk;
/// The campaign outbox, who triggers find, the inbox, opt-outs, results rows.
pub mod campaign_sends;
/// Campaigns: definitions, status and approval.
pub mod campaigns;
/// Brands, regions and stores.
pub mod chain;
/// Opening the database, pools and migrations.
pub mod db;
/// The persistence error type.
pub mod error;
/// Feedback, complaints, compensations, service tasks.
pub mod feedback;
/// Scoring: the scan of every member's orders, insights rows, model fits.
pub mod insights;
/// The points ledger: entries, lots, allocations, shortfalls, outbox, idempotency.
pub mod ledger;
/// Member sign-in codes and sessions, the message log, export and erasure.
pub mod member_login;
/// Members: profile rows (personal data already encrypted), tags, consents.
pub mod members;
/// Order ingest of a whole group-commit batch, one statement per table.
pub mod order_batch;
/// Orders, their lines, refunds, earning rule versions.
pub mod orders;
/// Coupon templates, coupons, the rewards catalogue.
pub mod rewards;
/// Segments: fields to SQL, counting and listing members, saved segments.
pub mod segments;
/// Staff users, API keys, console sessions and the audit log.
pub mod staff;
/// Fresh databases for tests.
#[cfg(feature = "test-support")]
pub mod testing;
/// The ledger invariants as SQL (`regulars verify`).
pub mod verify;
/// Webhook subscriptions, deliveries (claimed with leases), the fan-out cursor.
pub mod webhooks;

/// A database connection of either backend.
pub type Conn = sqlx::AnyConnection;

pub use db::{commit, Backend, Db, Tx};
pub use error::{StoreError, StoreResult};

/// Milliseconds since the Unix epoch: the one time format in the schema.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
