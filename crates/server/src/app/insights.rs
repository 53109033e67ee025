//! `regulars score` and the nightly scoring job: one streamed pass over every
//! member's orders, then RFM, grades, lifecycle, BG/NBD P(alive) and expected
//! visits, Gamma-Gamma spend, CLV, churn risk, VIP decline, taste and
//! recommendations for every member, written in one transaction. The rules
//! are in `regulars_core::insight` and `regulars_core::clv`; this file only
//! gathers the facts and stores the answers.

use super::{AppError, AppResult, Regulars};
use chrono::{Datelike, TimeZone, Timelike};
use regulars_core::access::{Action, Principal};
use regulars_core::clv::{BgNbd, CustomerSummary, GammaGamma};
use regulars_core::insight::{
    self, ChurnRisk, CoOccurrence, Dish, Grade, InsightPolicy, Lifecycle, Rfm, Visit, VisitFacts,
};
use regulars_core::member::TasteProfile;
use regulars_store::insights::{self as repo, InsightRow};
use regulars_store::{commit, staff};
use serde::Serialize;
use std::collections::HashMap;

pub const POLICY_SETTING: &str = "insights.policy";
/// How many dishes a member's recommendation holds.
pub const RECOMMENDATIONS: usize = 5;
/// Days in the CLV horizon (12 months).
const CLV_DAYS: f64 = 365.0;

/// What one scoring run did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ScoreReport {
    pub members: u64,
    pub members_with_visits: u64,
    pub orders: u64,
    pub vip: u64,
    pub vip_declines: u64,
    pub lifecycle: Vec<(String, u64)>,
    /// BG/NBD parameters (r, alpha, a, b) when the fit succeeded.
    pub bgnbd: Option<[f64; 4]>,
    /// Gamma-Gamma parameters (p, q, v) when the fit succeeded.
    pub gamma_gamma: Option<[f64; 3]>,
    /// Why a model could not be fitted (too few members, …).
    pub model_note: Option<String>,
    pub seconds: f64,
    /// Where the time went: the scan of orders, the model fits, the per-member
    /// rules, the write.
    pub phase_seconds: [f64; 4],
    #[serde(skip)]
    pub declines: Vec<Decline>,
}

/// A VIP whose spend fell: the care task the job raises.
#[derive(Debug, Clone)]
pub struct Decline {
    pub member_id: String,
    pub home_store: Option<String>,
    pub tier: String,
    pub recent_fen: i64,
    pub prior_fen: i64,
}

/// The recommender measured on held-out visits (each member's last order).
#[derive(Debug, Clone, Serialize)]
pub struct RecommenderEvaluation {
    pub members: u64,
    pub hit_rate_recommender: f64,
    pub hit_rate_popular: f64,
}

pub async fn policy(app: &Regulars) -> AppResult<InsightPolicy> {
    let mut conn = app.db.reader().await?;
    Ok(staff::get_setting(&mut conn, POLICY_SETTING)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// One order in a member's history: when (ms), what they paid net, dishes.
type PastOrder = (i64, i64, Vec<(usize, u32)>);

/// The policy as a caller who may read segments sees it.
pub async fn policy_for(app: &Regulars, caller: &Principal) -> AppResult<InsightPolicy> {
    caller.check(Action::SegmentRead, None)?;
    policy(app).await
}

/// The policy as HQ sets it: every knob checked before it is kept.
pub async fn set_policy(
    app: &Regulars,
    caller: &Principal,
    policy: InsightPolicy,
) -> AppResult<InsightPolicy> {
    caller.check(Action::RulesManage, None)?;
    policy.validate()?;
    let text = serde_json::to_string(&policy)
        .map_err(|e| AppError::unprocessable("invalid_field", e.to_string()))?;
    let mut tx = app.db.begin().await?;
    staff::put_setting(&mut tx, POLICY_SETTING, &text).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "insights.policy",
        "settings:insights.policy",
        &text,
        chrono::Utc::now().timestamp_millis(),
    )
    .await?;
    commit(tx).await?;
    Ok(policy)
}

/// Per member, what the scan gathered.
#[derive(Default)]
struct Gathered {
    facts: Option<VisitFacts>,
    /// The models' view of the member (frequency, recency, T, repeat spend).
    summary: Option<CustomerSummary>,
    dishes: Vec<(u16, u32)>,
    buckets: [u32; 8],
    /// The last order's dishes, when holding it out for evaluation.
    held_out: Vec<usize>,
    first_at: Option<i64>,
    last_at: Option<i64>,
}

struct Scan {
    menu_index: HashMap<String, usize>,
    co: CoOccurrence,
    gathered: Vec<Gathered>,
    orders: u64,
}

/// One pass over every member's orders. With `hold_out_last`, each
/// member's last order is kept aside (not counted in their history nor in the
/// co-occurrence) so the recommender can be measured against it.
async fn scan(
    app: &Regulars,
    members: &HashMap<String, usize>,
    middle_id: Option<&str>,
    menu: &[Dish],
    today: i64,
    hold_out_last: bool,
) -> AppResult<Scan> {
    // Two halves of the members on two connections at once (two cores).
    let Some(middle) = middle_id else {
        return scan_range(app, members, menu, today, hold_out_last, None, None).await;
    };
    let (low, high) = tokio::try_join!(
        scan_range(app, members, menu, today, hold_out_last, None, Some(middle)),
        scan_range(app, members, menu, today, hold_out_last, Some(middle), None),
    )?;
    let mut out = low;
    out.co.merge(&high.co);
    out.orders += high.orders;
    for (mine, theirs) in out.gathered.iter_mut().zip(high.gathered) {
        if theirs.facts.is_some() || theirs.first_at.is_some() || !theirs.dishes.is_empty() {
            *mine = theirs;
        }
    }
    Ok(out)
}

async fn scan_range(
    app: &Regulars,
    members: &HashMap<String, usize>,
    menu: &[Dish],
    today: i64,
    hold_out_last: bool,
    from: Option<&str>,
    to: Option<&str>,
) -> AppResult<Scan> {
    let menu_index: HashMap<String, usize> = menu
        .iter()
        .enumerate()
        .map(|(i, d)| (d.sku.clone(), i))
        .collect();
    let mut out = Scan {
        co: CoOccurrence::new(menu.len()),
        gathered: (0..members.len()).map(|_| Gathered::default()).collect(),
        menu_index,
        orders: 0,
    };
    let tz = app.timezone;
    // The member being read: their visits so far.
    let mut visits: Vec<Visit> = Vec::new();

    fn count_order(scan: &mut Scan, m: usize, dishes: &[(usize, u32)]) {
        let ids: Vec<usize> = dishes.iter().map(|(d, _)| *d).collect();
        scan.co.add_order(&ids);
        let g = &mut scan.gathered[m];
        for &(d, q) in dishes {
            match g.dishes.iter_mut().find(|(x, _)| usize::from(*x) == d) {
                Some((_, n)) => *n += q,
                None => g.dishes.push((d as u16, q)),
            }
        }
    }
    fn finish_member(
        scan: &mut Scan,
        m: usize,
        visits: &mut Vec<Visit>,
        pending: Option<Vec<(usize, u32)>>,
        hold_out_last: bool,
        today: i64,
    ) {
        if let Some(last) = pending {
            if hold_out_last {
                scan.gathered[m].held_out = last.iter().map(|(d, _)| *d).collect();
            } else {
                count_order(scan, m, &last);
            }
        }
        let g = &mut scan.gathered[m];
        for v in visits.iter() {
            g.buckets[insight::time_bucket(v.minute, v.weekday)] += 1;
        }
        g.facts = insight::visit_facts(visits, today);
        if let Some(f) = g.facts.as_mut() {
            g.summary = Some(f.summary(today));
            // Only the summary needs the per-day spend; a million members'
            // days need not stay in memory.
            f.day_spend_fen = Vec::new();
        }
        visits.clear();
    }

    let mut conn = app.db.reader().await?;
    let mut skipped_unknown = 0u64;
    let mut history: Vec<PastOrder> = Vec::new();
    repo::scan_member_histories(&mut conn, app.db.backend, from, to, |row| {
        let Some(&m) = members.get(&row.member_id) else {
            skipped_unknown += 1;
            return;
        };
        history.clear();
        for order in row.history.split(';') {
            let mut parts = order.splitn(3, '|');
            let (Some(Ok(at)), Some(Ok(net))) = (
                parts.next().map(str::parse::<i64>),
                parts.next().map(str::parse::<i64>),
            ) else {
                continue;
            };
            let dishes: Vec<(usize, u32)> = parts
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|line| {
                    let (sku, quantity) = line.rsplit_once(':')?;
                    Some((*out.menu_index.get(sku)?, quantity.parse::<u32>().ok()?))
                })
                .collect();
            history.push((at, net, dishes));
        }
        history.sort_by_key(|(at, _, _)| *at);
        out.orders += history.len() as u64;
        let mut pending: Option<Vec<(usize, u32)>> = None;
        for (at, net, dishes) in history.drain(..) {
            let g = &mut out.gathered[m];
            g.first_at.get_or_insert(at);
            g.last_at = Some(at);
            if let Some(local) = tz.timestamp_millis_opt(at).single() {
                visits.push(Visit {
                    day: i64::from(local.date_naive().num_days_from_ce()),
                    minute: (local.hour() * 60 + local.minute()) as u16,
                    weekday: local.weekday().num_days_from_monday() as u8,
                    spend_fen: net,
                });
            }
            // The previous order is final now that a later one exists.
            if let Some(p) = pending.replace(dishes) {
                count_order(&mut out, m, &p);
            }
        }
        finish_member(&mut out, m, &mut visits, pending, hold_out_last, today);
    })
    .await?;
    if skipped_unknown > 0 {
        tracing::debug!(skipped_unknown, "orders of erased members skipped");
    }
    Ok(out)
}

/// Today as a day number in the same count the scan uses.
fn day_number(app: &Regulars, now_ms: i64) -> AppResult<i64> {
    app.timezone
        .timestamp_millis_opt(now_ms)
        .single()
        .map(|t| i64::from(t.date_naive().num_days_from_ce()))
        .ok_or_else(|| AppError::unprocessable("bad_time", "time out of range"))
}

async fn load_menu(app: &Regulars) -> AppResult<Vec<Dish>> {
    let mut conn = app.db.reader().await?;
    Ok(repo::menu(&mut conn)
        .await?
        .into_iter()
        .map(|(sku, name, category, spice_level)| Dish {
            sku,
            name,
            category,
            spice_level,
        })
        .collect())
}

/// Score every member as of `now_ms` and store the results. Returns what it
/// did, including the VIP declines for the job to raise care tasks.
pub async fn score(app: &Regulars, now_ms: i64) -> AppResult<ScoreReport> {
    let started = std::time::Instant::now();
    let policy = policy(app).await?;
    let today = day_number(app, now_ms)?;
    let menu = load_menu(app).await?;
    let (members, marks) = {
        let mut conn = app.db.reader().await?;
        let members = repo::scoring_members(&mut conn).await?;
        let tags: Vec<&str> = Grade::STAFF_TAGS.iter().map(|(t, _)| *t).collect();
        let marks = repo::tags_among(&mut conn, &tags).await?;
        (members, marks)
    };
    let index: HashMap<String, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    let mut staff_mark: Vec<Option<Grade>> = vec![None; members.len()];
    for (id, tag) in &marks {
        if let Some(&i) = index.get(id) {
            staff_mark[i] = Grade::from_staff_tag(tag);
        }
    }
    let middle = members.get(members.len() / 2).map(|m| m.id.as_str());
    let scan = scan(app, &index, middle, &menu, today, false).await?;
    let scanned = started.elapsed().as_secs_f64();
    let popular = scan.co.popular();

    // Population facts: the usual cadence for one-visit members, RFM quintiles.
    let with_visits: Vec<usize> = (0..members.len())
        .filter(|&i| scan.gathered[i].facts.is_some())
        .collect();
    let mut cadences: Vec<f64> = with_visits
        .iter()
        .filter_map(|&i| scan.gathered[i].facts.as_ref().and_then(|f| f.cadence_days))
        .collect();
    cadences.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let usual_cadence = cadences.get(cadences.len() / 2).copied().unwrap_or(30.0);
    let fact = |i: usize| scan.gathered[i].facts.as_ref();
    let recency: Vec<f64> = with_visits
        .iter()
        .filter_map(|&i| fact(i).map(|f| (today - f.last_day) as f64))
        .collect();
    let frequency: Vec<f64> = with_visits
        .iter()
        .filter_map(|&i| fact(i).map(|f| f.visits_12m as f64))
        .collect();
    let monetary: Vec<f64> = with_visits
        .iter()
        .filter_map(|&i| fact(i).map(|f| f.spend_12m_fen as f64))
        .collect();
    let (r, f, m) = (
        insight::quintiles(&recency, false),
        insight::quintiles(&frequency, true),
        insight::quintiles(&monetary, true),
    );
    let mut rfm: Vec<Option<Rfm>> = vec![None; members.len()];
    for (k, &i) in with_visits.iter().enumerate() {
        rfm[i] = Some(Rfm {
            r: r[k],
            f: f[k],
            m: m[k],
        });
    }

    // The models, fitted on everyone with a visit (one period = one day).
    let summaries: Vec<CustomerSummary> = with_visits
        .iter()
        .filter_map(|&i| scan.gathered[i].summary)
        .collect();
    let mut report = ScoreReport::default();
    let bgnbd = match BgNbd::fit(&summaries) {
        Ok(fit) => {
            report.bgnbd = Some([fit.r, fit.alpha, fit.a, fit.b]);
            Some(fit)
        }
        Err(e) => {
            report.model_note = Some(format!("BG/NBD not fitted: {e}"));
            None
        }
    };
    let gamma = match GammaGamma::fit(&summaries) {
        // q ≤ 1: the fitted spend distribution has no mean (a tiny or odd
        // population); the observed average serves better than infinity.
        Ok(fit) if fit.q <= 1.0 => {
            report.model_note = Some(format!(
                "Gamma-Gamma q = {:.3} ≤ 1: observed averages used",
                fit.q
            ));
            None
        }
        Ok(fit) => {
            report.gamma_gamma = Some([fit.p, fit.q, fit.v]);
            Some(fit)
        }
        Err(e) => {
            report.model_note = Some(format!(
                "{}Gamma-Gamma not fitted: {e}",
                report.model_note.map(|n| n + "; ").unwrap_or_default()
            ));
            None
        }
    };

    let fitted = started.elapsed().as_secs_f64();
    let mut rows: Vec<InsightRow> = Vec::with_capacity(members.len());
    let mut lifecycle_counts: HashMap<Lifecycle, u64> = HashMap::new();
    for (i, member) in members.iter().enumerate() {
        let g = &scan.gathered[i];
        let facts = g.facts.as_ref();
        let taste: TasteProfile = serde_json::from_str(&member.taste_json).unwrap_or_default();
        let declared: Vec<String> = taste
            .allergies
            .iter()
            .chain(&taste.dislikes)
            .cloned()
            .collect();
        let dishes: Vec<(usize, u32)> = g
            .dishes
            .iter()
            .map(|(d, n)| (usize::from(*d), *n))
            .collect();
        let summary = insight::taste(&dishes, &menu, &g.buckets, &declared, &popular);
        let excluded = insight::excluded_dishes(&menu, &taste);
        let recommended = insight::recommend(&scan.co, &dishes, &|d| excluded[d], RECOMMENDATIONS);
        let stage = insight::lifecycle(facts, today, usual_cadence, &policy);
        *lifecycle_counts.entry(stage).or_default() += 1;
        let vip = insight::is_vip(facts, &policy);
        let decline = insight::vip_decline(facts, &policy);
        let model = facts.zip(g.summary).and_then(|(f, c)| {
            let (x, tx, t) = (c.frequency, c.recency, c.t);
            let bg = bgnbd.as_ref()?;
            let p_alive = bg.p_alive(x, tx, t);
            let e30 = bg.expected_purchases(30.0, x, tx, t);
            let e90 = bg.expected_purchases(90.0, x, tx, t);
            let e365 = bg.expected_purchases(CLV_DAYS, x, tx, t);
            let spend = gamma
                .as_ref()
                .map(|gg| gg.expected_average_value(x, c.monetary_value))
                .unwrap_or_else(|| f.spend_total_fen as f64 / f.visit_days.max(1) as f64);
            Some((p_alive, e30, e90, spend, e365 * spend))
        });
        if vip {
            report.vip += 1;
        }
        if decline {
            if let Some(f) = facts {
                report.declines.push(Decline {
                    member_id: member.id.clone(),
                    home_store: member.home_store_code.clone(),
                    tier: member.tier.clone(),
                    recent_fen: f.spend_90d_fen,
                    prior_fen: f.spend_prev_90d_fen,
                });
            }
        }
        let recommendations: Vec<serde_json::Value> = recommended
            .iter()
            .map(|&d| serde_json::json!({"sku": menu[d].sku, "name": menu[d].name}))
            .collect();
        rows.push(InsightRow {
            member_id: member.id.clone(),
            scored_at: now_ms,
            first_visit_at: g.first_at,
            last_visit_at: g.last_at,
            visits_total: facts.map_or(0, |f| f.visit_days),
            visits_12m: facts.map_or(0, |f| f.visits_12m),
            spend_total_fen: facts.map_or(0, |f| f.spend_total_fen),
            spend_12m_fen: facts.map_or(0, |f| f.spend_12m_fen),
            spend_90d_fen: facts.map_or(0, |f| f.spend_90d_fen),
            spend_prev_90d_fen: facts.map_or(0, |f| f.spend_prev_90d_fen),
            cadence_days: facts.and_then(|f| f.cadence_days),
            r_score: rfm[i].map(|s| i64::from(s.r)),
            f_score: rfm[i].map(|s| i64::from(s.f)),
            m_score: rfm[i].map(|s| i64::from(s.m)),
            rfm: rfm[i].map(Rfm::code),
            grade: insight::grade(rfm[i], facts.map_or(0, |f| f.visits_12m), staff_mark[i])
                .as_str()
                .into(),
            vip: i64::from(vip),
            vip_decline: i64::from(decline),
            lifecycle: stage.as_str().into(),
            p_alive: model.map(|m| m.0),
            expected_visits_30: model.map(|m| m.1),
            expected_visits_90: model.map(|m| m.2),
            expected_spend_fen: model.map(|m| m.3.round() as i64),
            clv_fen: model.map(|m| m.4.round() as i64),
            churn_risk: model.map(|m| ChurnRisk::of(m.0).as_str().to_string()),
            spice_level: summary.spice_level.map(i64::from),
            taste_json: serde_json::to_string(&summary).unwrap_or_else(|_| "{}".into()),
            recommendations_json: serde_json::Value::Array(recommendations).to_string(),
        });
    }

    let computed = started.elapsed().as_secs_f64();
    let mut tx = app.db.begin().await?;
    repo::clear_insights(&mut tx).await?;
    for batch in rows.chunks(2_000) {
        repo::insert_insights(&mut tx, app.db.backend, batch).await?;
    }
    repo::insert_model_fit(
        &mut tx,
        &uuid::Uuid::now_v7().to_string(),
        now_ms,
        summaries.len() as i64,
        &serde_json::to_string(&bgnbd.as_ref().map(|b| {
            serde_json::json!({"r": b.r, "alpha": b.alpha, "a": b.a, "b": b.b,
                "log_likelihood": b.log_likelihood})
        }))
        .unwrap_or_else(|_| "null".into()),
        gamma
            .as_ref()
            .map(|g| {
                serde_json::json!({"p": g.p, "q": g.q, "v": g.v, "customers": g.customers})
                    .to_string()
            })
            .as_deref(),
        &serde_json::json!({"usual_cadence_days": usual_cadence, "note": report.model_note})
            .to_string(),
    )
    .await?;
    commit(tx).await?;

    report.members = members.len() as u64;
    report.members_with_visits = with_visits.len() as u64;
    report.orders = scan.orders;
    report.vip_declines = report.declines.len() as u64;
    report.lifecycle = Lifecycle::ALL
        .iter()
        .map(|l| {
            (
                l.as_str().to_string(),
                lifecycle_counts.get(l).copied().unwrap_or(0),
            )
        })
        .collect();
    report.seconds = started.elapsed().as_secs_f64();
    report.phase_seconds = [
        scanned,
        fitted - scanned,
        computed - fitted,
        report.seconds - computed,
    ];
    Ok(report)
}

/// Hit rate at 5 of the recommender and of the popularity baseline, each
/// member's last order held out (members with at least two orders).
pub async fn evaluate_recommender(app: &Regulars, now_ms: i64) -> AppResult<RecommenderEvaluation> {
    let today = day_number(app, now_ms)?;
    let menu = load_menu(app).await?;
    let members = {
        let mut conn = app.db.reader().await?;
        repo::scoring_members(&mut conn).await?
    };
    let index: HashMap<String, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    let middle = members.get(members.len() / 2).map(|m| m.id.as_str());
    let scan = scan(app, &index, middle, &menu, today, true).await?;
    let (mut n, mut ours, mut popular) = (0u64, 0.0, 0.0);
    for (i, member) in members.iter().enumerate() {
        let g = &scan.gathered[i];
        if g.held_out.is_empty() || g.dishes.is_empty() {
            continue;
        }
        let taste: TasteProfile = serde_json::from_str(&member.taste_json).unwrap_or_default();
        let excluded = insight::excluded_dishes(&menu, &taste);
        let dishes: Vec<(usize, u32)> = g
            .dishes
            .iter()
            .map(|(d, c)| (usize::from(*d), *c))
            .collect();
        let actual: Vec<usize> = g
            .held_out
            .iter()
            .copied()
            .filter(|&d| !excluded[d])
            .collect();
        if actual.is_empty() {
            continue;
        }
        let rec = insight::recommend(&scan.co, &dishes, &|d| excluded[d], RECOMMENDATIONS);
        let pop = insight::recommend_popular(&scan.co, &|d| excluded[d], RECOMMENDATIONS);
        ours += insight::hit_rate(&rec, &actual);
        popular += insight::hit_rate(&pop, &actual);
        n += 1;
    }
    let denom = n.max(1) as f64;
    Ok(RecommenderEvaluation {
        members: n,
        hit_rate_recommender: ours / denom,
        hit_rate_popular: popular / denom,
    })
}

/// A member's insights as the API shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberInsights {
    pub member_id: String,
    pub scored_at: i64,
    pub lifecycle: String,
    pub grade: String,
    pub vip: bool,
    pub vip_decline: bool,
    pub rfm: Option<RfmView>,
    pub visits_total: i64,
    pub visits_12m: i64,
    pub spend_12m_fen: i64,
    pub last_visit_at: Option<i64>,
    pub days_since_visit: Option<i64>,
    pub cadence_days: Option<f64>,
    pub p_alive: Option<f64>,
    pub expected_visits_30: Option<f64>,
    pub expected_visits_90: Option<f64>,
    pub expected_spend_fen: Option<i64>,
    pub clv_fen: Option<i64>,
    pub churn_risk: Option<String>,
    #[schema(value_type = Object)]
    pub taste: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub recommendations: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RfmView {
    pub r: i64,
    pub f: i64,
    pub m: i64,
    pub code: i64,
}

pub async fn member_insights(
    app: &Regulars,
    caller: &Principal,
    member_id: &str,
) -> AppResult<MemberInsights> {
    let member = {
        let mut conn = app.db.reader().await?;
        regulars_store::members::get_member(&mut conn, member_id)
            .await?
            .ok_or(AppError::NotFound { what: "member" })?
    };
    caller.check(Action::MemberRead, member.home_store_code.as_deref())?;
    let row = {
        let mut conn = app.db.reader().await?;
        repo::insight_of(&mut conn, member_id).await?
    }
    .ok_or_else(|| {
        AppError::unprocessable(
            "not_scored",
            "this member has not been scored yet; scores are computed nightly (regulars score)",
        )
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(MemberInsights {
        member_id: row.member_id,
        scored_at: row.scored_at,
        lifecycle: row.lifecycle,
        grade: row.grade,
        vip: row.vip != 0,
        vip_decline: row.vip_decline != 0,
        rfm: match (row.r_score, row.f_score, row.m_score, row.rfm) {
            (Some(r), Some(f), Some(m), Some(code)) => Some(RfmView { r, f, m, code }),
            _ => None,
        },
        visits_total: row.visits_total,
        visits_12m: row.visits_12m,
        spend_12m_fen: row.spend_12m_fen,
        last_visit_at: row.last_visit_at,
        days_since_visit: row.last_visit_at.map(|t| (now - t).max(0) / 86_400_000),
        cadence_days: row.cadence_days,
        p_alive: row.p_alive,
        expected_visits_30: row.expected_visits_30,
        expected_visits_90: row.expected_visits_90,
        expected_spend_fen: row.expected_spend_fen,
        clv_fen: row.clv_fen,
        churn_risk: row.churn_risk,
        taste: serde_json::from_str(&row.taste_json).unwrap_or_default(),
        recommendations: serde_json::from_str(&row.recommendations_json).unwrap_or_default(),
    })
}
