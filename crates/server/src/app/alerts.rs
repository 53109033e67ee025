//! Store alerts: the complaint rate per 1,000 orders by store and region
//! over a rolling window, raised when a store passes the chain's threshold
//! or stands far above the other stores (more than two standard deviations
//! over the mean). The jobs raise each alert once a day.

use super::ledger::rfc3339;
use super::{AppResult, Regulars};
use regulars_core::access::{Action, Principal};
use regulars_core::DomainError;
use regulars_store::feedback as repo;
use regulars_store::ledger as ledger_repo;
use regulars_store::{commit, now_ms, staff};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Setting: complaints per 1,000 orders that raise an alert (default 5).
pub const RATE_SETTING: &str = "feedback.alert_rate_per_1000";
const DEFAULT_RATE: f64 = 5.0;
/// Stores with fewer orders in the window are listed but not judged.
const MIN_ORDERS: i64 = 30;
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
pub struct RateQuery {
    /// Window in days ending now (default 30, at most 365).
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintRates {
    pub days: i64,
    pub threshold_per_1000: f64,
    /// The chain's stores (with enough orders): mean and standard deviation.
    pub chain_mean_per_1000: f64,
    pub chain_sd_per_1000: f64,
    pub stores: Vec<RateLine>,
    pub regions: Vec<RateLine>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RateLine {
    pub key: String,
    pub region: String,
    pub orders: i64,
    pub complaints: i64,
    pub per_1000: f64,
    /// Why it is flagged, if it is: `over_threshold`, `outlier`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

fn per_1000(complaints: i64, orders: i64) -> f64 {
    if orders == 0 {
        0.0
    } else {
        (complaints as f64 * 1000.0 / orders as f64 * 10.0).round() / 10.0
    }
}

async fn measure(app: &Regulars, days: i64, now: i64) -> AppResult<ComplaintRates> {
    let mut conn = app.db.reader().await?;
    let threshold = staff::get_setting(&mut conn, RATE_SETTING)
        .await?
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(DEFAULT_RATE);
    let counts = repo::complaint_counts(&mut conn, now - days * 86_400_000, now + 1).await?;
    let judged: Vec<f64> = counts
        .iter()
        .filter(|c| c.2 >= MIN_ORDERS)
        .map(|c| per_1000(c.3, c.2))
        .collect();
    let mean = if judged.is_empty() {
        0.0
    } else {
        judged.iter().sum::<f64>() / judged.len() as f64
    };
    let sd = if judged.len() < 2 {
        0.0
    } else {
        (judged.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (judged.len() - 1) as f64).sqrt()
    };
    let flags = |orders: i64, rate: f64| {
        let mut f = Vec::new();
        if orders >= MIN_ORDERS && rate > threshold {
            f.push("over_threshold".to_string());
        }
        if orders >= MIN_ORDERS && sd > 0.0 && rate > mean + 2.0 * sd {
            f.push("outlier".to_string());
        }
        f
    };
    let mut regions: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let stores = counts
        .into_iter()
        .map(|(store, region, orders, complaints)| {
            let r = regions.entry(region.clone()).or_default();
            r.0 += orders;
            r.1 += complaints;
            let rate = per_1000(complaints, orders);
            RateLine {
                key: store,
                region,
                orders,
                complaints,
                per_1000: rate,
                flags: flags(orders, rate),
            }
        })
        .collect();
    Ok(ComplaintRates {
        days,
        threshold_per_1000: threshold,
        chain_mean_per_1000: (mean * 10.0).round() / 10.0,
        chain_sd_per_1000: (sd * 10.0).round() / 10.0,
        stores,
        regions: regions
            .into_iter()
            .map(|(region, (orders, complaints))| {
                let rate = per_1000(complaints, orders);
                RateLine {
                    key: region.clone(),
                    region,
                    orders,
                    complaints,
                    per_1000: rate,
                    flags: if orders >= MIN_ORDERS && rate > threshold {
                        vec!["over_threshold".into()]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect(),
    })
}

/// `GET /api/v1/alerts/complaint-rates`
pub async fn complaint_rates(
    app: &Regulars,
    caller: &Principal,
    query: RateQuery,
) -> AppResult<ComplaintRates> {
    caller.check(Action::FeedbackRead, None)?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=365).contains(&days) {
        return Err(DomainError::invalid("days", "1 to 365").into());
    }
    let mut rates = measure(app, days, now_ms()).await?;
    if let Some(store) = caller.store_scope() {
        rates.stores.retain(|s| s.key == store);
    }
    Ok(rates)
}

/// Raise today's alerts for stores and regions flagged over the default
/// window: once per subject and day, with an outbox event for each.
pub async fn raise(app: &Regulars, now: i64) -> AppResult<u64> {
    let rates = measure(app, DEFAULT_DAYS, now).await?;
    let day = rfc3339(app, now).get(..10).unwrap_or("").to_string();
    let mut raised = 0;
    let mut tx = app.db.begin().await?;
    let flagged = rates
        .stores
        .iter()
        .map(|l| ("store", l))
        .chain(rates.regions.iter().map(|l| ("region", l)))
        .filter(|(_, l)| !l.flags.is_empty());
    for (scope, line) in flagged {
        let detail = format!(
            "{} 近{}天投诉 {} 单 / 订单 {} 单 = {}‰ ({}); 阈值 {}‰, 全国均值 {}‰",
            line.key,
            rates.days,
            line.complaints,
            line.orders,
            line.per_1000,
            line.flags.join(", "),
            rates.threshold_per_1000,
            rates.chain_mean_per_1000
        );
        let fresh = repo::insert_alert(
            &mut tx,
            &repo::NewAlert {
                kind: "complaint_rate",
                scope,
                subject: &format!("{scope}:{}", line.key),
                day: &day,
                value: line.per_1000,
                threshold: rates.threshold_per_1000,
                detail: &detail,
                at: now,
            },
        )
        .await?;
        if fresh {
            ledger_repo::emit(
                &mut tx,
                "alert.complaint_rate",
                None,
                &format!("{scope}:{}:{day}", line.key),
                &serde_json::json!({"scope": scope, "subject": line.key, "per_1000": line.per_1000,
                    "flags": line.flags, "orders": line.orders, "complaints": line.complaints})
                .to_string(),
                now,
            )
            .await?;
            raised += 1;
        }
    }
    commit(tx).await?;
    Ok(raised)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub kind: String,
    pub scope: String,
    pub subject: String,
    pub day: String,
    pub value: f64,
    pub threshold: f64,
    pub detail: String,
    pub raised_at: String,
}

/// `GET /api/v1/alerts`: the latest alerts.
pub async fn recent(app: &Regulars, caller: &Principal) -> AppResult<Vec<AlertView>> {
    caller.check(Action::FeedbackRead, None)?;
    let mut conn = app.db.reader().await?;
    let scope = caller.store_scope().map(|s| format!("store:{s}"));
    Ok(repo::recent_alerts(&mut conn, 200)
        .await?
        .into_iter()
        .filter(|a| scope.as_ref().is_none_or(|s| &a.subject == s))
        .map(|a| AlertView {
            raised_at: rfc3339(app, a.raised_at),
            kind: a.kind,
            scope: a.scope,
            subject: a.subject,
            day: a.day,
            value: a.value,
            threshold: a.threshold,
            detail: a.detail,
        })
        .collect())
}
