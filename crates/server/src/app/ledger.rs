//! Posting to the points ledger inside a caller's transaction: opening lots,
//! consuming them soonest-expiring first with allocation records, keeping the
//! balance cache. Every change of points in the application goes through
//! these few functions, so the invariants `regulars verify` checks are kept in
//! one place. Also: idempotent results and the loyalty settings cache.

use super::{AppError, AppResult, Regulars};
use chrono::TimeZone;
use regulars_core::earning::RuleSet;
use regulars_core::ledger::{allocate, allocate_up_to, Allocation, EntryKind, OpenLot};
use regulars_core::tier::TierPolicy;
use regulars_store::ledger::{self as repo, LotRow, NewEntry};
use regulars_store::{orders, staff, Conn};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Who did it, for the entry's `actor` column.
pub struct Posting<'a> {
    pub member_id: &'a str,
    pub kind: EntryKind,
    pub reason: &'a str,
    pub order_id: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub actor: &'a str,
    pub approver: Option<&'a str>,
    pub at: i64,
}

impl Posting<'_> {
    fn entry(&self, points: i64) -> NewEntry<'_> {
        NewEntry {
            member_id: self.member_id,
            kind: self.kind.as_str(),
            points,
            reason: self.reason,
            order_id: self.order_id,
            reference: self.reference,
            actor: self.actor,
            approver: self.approver,
            at: self.at,
        }
    }
}

/// Append a positive entry and open its lot. Returns the entry (= lot) id.
pub async fn credit(
    conn: &mut Conn,
    posting: &Posting<'_>,
    points: i64,
    earned_at: i64,
    expires_at: i64,
) -> AppResult<i64> {
    debug_assert!(points > 0);
    Ok(repo::insert_entry_with_lot(conn, &posting.entry(points), earned_at, expires_at).await?)
}

/// Append a negative entry of exactly the allocated points and record which
/// lots it took them from. Returns the entry id.
pub async fn debit(
    conn: &mut Conn,
    posting: &Posting<'_>,
    allocations: &[Allocation],
) -> AppResult<i64> {
    let points: i64 = allocations.iter().map(|a| a.points).sum();
    let id = repo::insert_entry(conn, &posting.entry(-points)).await?;
    for a in allocations {
        repo::consume_lot(conn, id, a.lot_id, posting.member_id, a.points).await?;
    }
    Ok(id)
}

fn open(lots: &[LotRow]) -> Vec<OpenLot> {
    lots.iter()
        .map(|l| OpenLot {
            id: l.entry_id,
            expires_at: l.expires_at,
            remaining: l.remaining,
        })
        .collect()
}

/// Take exactly `points` from the member's unexpired lots, or fail with
/// `insufficient_points` having taken nothing.
pub async fn take_exactly(
    conn: &mut Conn,
    member_id: &str,
    points: i64,
    now: i64,
) -> AppResult<Vec<Allocation>> {
    let lots = repo::open_lots(conn, member_id, now).await?;
    allocate(&open(&lots), points).ok_or_else(|| {
        let held: i64 = lots.iter().map(|l| l.remaining).sum();
        AppError::unprocessable(
            "insufficient_points",
            format!("the member has {held} usable points; {points} asked"),
        )
    })
}

/// Take up to `points` from any lot that still holds points (a clawback also
/// reaches points past expiry the job has not yet removed), the lot `prefer`
/// first.
pub async fn take_up_to(
    conn: &mut Conn,
    member_id: &str,
    points: i64,
    prefer: Option<i64>,
) -> AppResult<Vec<Allocation>> {
    let lots = repo::open_lots(conn, member_id, i64::MIN).await?;
    Ok(allocate_up_to(&open(&lots), points, prefer))
}

/// SHA-256 of the canonical JSON of a request: the same request written with
/// other spacing or key order hashes the same.
pub fn request_hash<T: Serialize>(request: &T) -> String {
    let canonical = serde_json::to_value(request)
        .map(|v| v.to_string())
        .unwrap_or_default();
    hex_digest(canonical.as_bytes())
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The JSON answer of a mutating call, and whether it is a replay.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub replayed: bool,
    pub json: String,
}

impl Recorded {
    pub fn first<T: Serialize>(body: &T) -> AppResult<Recorded> {
        Ok(Recorded {
            replayed: false,
            json: serde_json::to_string(body)
                .map_err(|e| AppError::unprocessable("internal", e.to_string()))?,
        })
    }

    /// The stored answer, if this is the same request; 409 if not.
    pub fn replay(stored_hash: &str, hash: &str, json: String, what: &str) -> AppResult<Recorded> {
        if stored_hash != hash {
            return Err(AppError::Conflict {
                code: "idempotency_conflict",
                message: format!("{what} was already used for a different request"),
            });
        }
        Ok(Recorded {
            replayed: true,
            json,
        })
    }
}

/// The manual tier floor still in force at `at_ms`, if any.
pub fn active_floor(
    member: &regulars_store::ledger::MemberLedger,
    at_ms: i64,
) -> Option<regulars_core::tier::Tier> {
    member
        .tier_floor
        .as_deref()
        .and_then(regulars_core::tier::Tier::parse)
        .filter(|_| member.tier_floor_until.is_some_and(|u| u > at_ms))
}

/// Unix ms → RFC 3339 in the chain's zone.
pub fn rfc3339(app: &Regulars, ms: i64) -> String {
    app.timezone
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// Earning rules, new dishes and the tier policy, read from the database and
/// kept for a moment: they change rarely, are read on every order, and a
/// change on another node is seen within [`LoyaltyConfig::TTL`].
#[derive(Default)]
pub struct LoyaltyConfig {
    cached: RwLock<Option<(Instant, Arc<Loaded>)>>,
    /// Bumped by [`LoyaltyConfig::invalidate`]: a load that started before
    /// an edit must not put the old settings back into the cache.
    generation: AtomicU64,
    /// Store code → brand code. Stores are never deleted and never change
    /// brand, so a found store stays cached.
    brands: std::sync::RwLock<std::collections::HashMap<String, String>>,
}

#[derive(Debug)]
pub struct Loaded {
    pub rules: RuleSet,
    pub new_skus: BTreeSet<String>,
    pub tiers: TierPolicy,
    pub claim_days: i64,
}

pub const TIER_POLICY_SETTING: &str = "loyalty.tier_policy";
pub const CLAIM_DAYS_SETTING: &str = "orders.claim_days";

impl LoyaltyConfig {
    pub const TTL: Duration = Duration::from_secs(2);

    pub async fn get(&self, app: &Regulars) -> AppResult<Arc<Loaded>> {
        if let Some((at, loaded)) = self.cached.read().await.as_ref() {
            if at.elapsed() < Self::TTL {
                return Ok(loaded.clone());
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let loaded = Arc::new(load(app).await?);
        let mut cached = self.cached.write().await;
        if self.generation.load(Ordering::SeqCst) == generation {
            *cached = Some((Instant::now(), loaded.clone()));
        }
        Ok(loaded)
    }

    /// The brand of a store, `None` when there is no such store.
    pub async fn brand_of(&self, app: &Regulars, store_code: &str) -> AppResult<Option<String>> {
        if let Some(brand) = self
            .brands
            .read()
            .ok()
            .and_then(|b| b.get(store_code).cloned())
        {
            return Ok(Some(brand));
        }
        let mut conn = app.db.reader().await?;
        let Some(store) = regulars_store::chain::get_store(&mut conn, store_code).await? else {
            return Ok(None);
        };
        if let Ok(mut brands) = self.brands.write() {
            brands.insert(store.code, store.brand_code.clone());
        }
        Ok(Some(store.brand_code))
    }

    /// Forget the cache (after an edit on this node).
    pub async fn invalidate(&self) {
        let mut cached = self.cached.write().await;
        self.generation.fetch_add(1, Ordering::SeqCst);
        *cached = None;
    }
}

async fn load(app: &Regulars) -> AppResult<Loaded> {
    let mut conn = app.db.reader().await?;
    let rules = match orders::current_rules(&mut conn).await? {
        Some((version, json)) => {
            let rules = serde_json::from_str(&json).map_err(|e| {
                regulars_store::StoreError::Corrupt(format!("earning rules v{version}: {e}"))
            })?;
            RuleSet { version, rules }
        }
        None => RuleSet::default(),
    };
    let new_skus = orders::new_skus(&mut conn).await?.into_iter().collect();
    let tiers = match staff::get_setting(&mut conn, TIER_POLICY_SETTING).await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            regulars_store::StoreError::Corrupt(format!("tier policy setting: {e}"))
        })?,
        None => TierPolicy::default(),
    };
    let claim_days = staff::get_setting(&mut conn, CLAIM_DAYS_SETTING)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    Ok(Loaded {
        rules,
        new_skus,
        tiers,
        claim_days,
    })
}
