//! Customer lifetime value: the BG/NBD model of repeat purchasing (Fader,
//! Hardie and Lee 2005) and the Gamma-Gamma model of spend per visit (Fader,
//! Hardie and Lee 2005, Hardie's note 025), fitted by maximum likelihood.
//!
//! The conventions are those of the Python `lifetimes` package (0.11.3), so
//! that figures can be checked against it (docs/analytics.md):
//!
//! * [`summarize`] is `summary_data_from_transaction_data(..., freq='D' or 'W',
//!   monetary_value_col=...)`: one period is a day or a Monday–Sunday week,
//!   purchases in one period count once with their amounts summed;
//! * [`BgNbd::fit`] is `BetaGeoFitter().fit(frequency, recency, T)`: time is
//!   scaled so that the largest `T` is 1 while fitting (as lifetimes does), the
//!   parameters are reported in the input's time unit;
//! * [`GammaGamma::fit`] is `GammaGammaFitter().fit(frequency, monetary_value)`
//!   on the customers with `frequency > 0` and `monetary_value > 0`.
//!
//! The log-likelihoods reported are the total (not mean) log-likelihoods of
//! the data in the input's units: for BG/NBD, `-N` times lifetimes'
//! `BetaGeoFitter._negative_log_likelihood` evaluated at the fitted parameters
//! on the unscaled data with penalizer 0 (lifetimes' stored
//! `_negative_log_likelihood_` is the mean in *scaled* time; it equals
//! `-(log_likelihood + Σx·ln(max T)) / N`, see [`BgNbd::lifetimes_objective`]).
//!
//! Fitting compresses the customers to distinct `(x, t_x, T)` (or `(x, m)`)
//! patterns with weights, and minimises the mean negative log-likelihood over
//! the log-parameters by BFGS with analytic gradients (digamma) and a Wolfe
//! line search that tolerates rounding noise, warm-started from a subsample's
//! fit on large inputs, then polishes with Newton steps on a finite-difference
//! Hessian of the analytic gradient; large BG/NBD likelihoods are evaluated on
//! scoped threads. Nothing here does I/O or reads a clock.

use chrono::{Datelike, NaiveDate};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::str::FromStr;

// ---------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------

/// One period of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// Calendar days (lifetimes `freq='D'`).
    Day,
    /// Monday–Sunday weeks, i.e. ISO weeks (lifetimes `freq='W'`, pandas `W-SUN`).
    Week,
}

impl TimeUnit {
    /// The index of the period holding `date`: days, or Monday-based weeks,
    /// counted from 0001-01-01 (a Monday in the proleptic Gregorian calendar).
    pub fn period(self, date: NaiveDate) -> i64 {
        let day = i64::from(date.num_days_from_ce()) - 1;
        match self {
            TimeUnit::Day => day,
            TimeUnit::Week => day.div_euclid(7),
        }
    }
}

impl FromStr for TimeUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "day" | "d" => Ok(TimeUnit::Day),
            "week" | "w" => Ok(TimeUnit::Week),
            _ => Err(format!("unknown time unit {s:?} (expected day or week)")),
        }
    }
}

/// One purchase.
#[derive(Clone, Debug, PartialEq)]
pub struct Transaction<K> {
    pub customer: K,
    pub date: NaiveDate,
    pub amount: f64,
}

/// A customer's purchase history as the models see it, in periods.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CustomerSummary {
    /// Number of repeat periods (periods with a purchase, less the first).
    pub frequency: f64,
    /// Periods from the first to the last purchase period.
    pub recency: f64,
    /// Periods from the first purchase period to the observation end's period.
    pub t: f64,
    /// Mean of the repeat periods' summed amounts; 0 when `frequency == 0`.
    pub monetary_value: f64,
}

/// Summaries of every customer with a purchase in or before the observation
/// end's period, sorted by customer key. Conventions of lifetimes'
/// `summary_data_from_transaction_data`: purchases are grouped into periods
/// ([`TimeUnit::period`]) and purchases in one period count once, amounts
/// summed; purchases in periods after the observation end's period are
/// dropped; `observation_end` defaults to the latest date among the
/// transactions. `transactions` is sorted in place (by customer, then date).
pub fn summarize<K: Ord + Clone>(
    transactions: &mut [Transaction<K>],
    unit: TimeUnit,
    observation_end: Option<NaiveDate>,
) -> Vec<(K, CustomerSummary)> {
    let end = match observation_end.or_else(|| transactions.iter().map(|t| t.date).max()) {
        Some(end) => unit.period(end),
        None => return Vec::new(),
    };
    transactions.sort_unstable_by(|a, b| {
        a.customer
            .cmp(&b.customer)
            .then_with(|| a.date.cmp(&b.date))
    });
    let mut out = Vec::new();
    let mut start = 0;
    while start < transactions.len() {
        let key = &transactions[start].customer;
        let mut stop = start + 1;
        while stop < transactions.len() && transactions[stop].customer == *key {
            stop += 1;
        }
        if let Some(summary) = summarize_one(&transactions[start..stop], unit, end) {
            out.push((key.clone(), summary));
        }
        start = stop;
    }
    out
}

/// One customer's rows, sorted by date.
fn summarize_one<K>(rows: &[Transaction<K>], unit: TimeUnit, end: i64) -> Option<CustomerSummary> {
    let mut first: Option<i64> = None;
    let mut last = 0i64;
    let mut periods = 0u64;
    let mut repeat_total = 0.0;
    for row in rows {
        let period = unit.period(row.date);
        if period > end {
            break;
        }
        match first {
            None => {
                first = Some(period);
                last = period;
                periods = 1;
            }
            Some(f) => {
                if period != last {
                    periods += 1;
                    last = period;
                }
                if period != f {
                    repeat_total += row.amount;
                }
            }
        }
    }
    let first = first?;
    let frequency = (periods - 1) as f64;
    Some(CustomerSummary {
        frequency,
        recency: (last - first) as f64,
        t: (end - first) as f64,
        monetary_value: if periods > 1 {
            repeat_total / frequency
        } else {
            0.0
        },
    })
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a model could not be fitted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("too few customers to fit {model}: {got}, at least {needed} needed")]
    TooFewCustomers {
        model: &'static str,
        got: usize,
        needed: usize,
    },
    #[error("{model} fit did not converge (no maximum of the likelihood found; the data may not identify the model)")]
    DidNotConverge { model: &'static str },
    #[error("customer {index}: non-finite {field}")]
    NonFiniteInput { index: usize, field: &'static str },
    #[error("customer {index}: {reason}")]
    InvalidInput { index: usize, reason: &'static str },
}

// ---------------------------------------------------------------------------
// BG/NBD
// ---------------------------------------------------------------------------

/// A fitted BG/NBD model, in the time unit of the summaries it was fitted on.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    /// Total log-likelihood of the fitted data in its own time unit (module docs).
    pub log_likelihood: f64,
}

const BG_MODEL: &str = "BG/NBD";
const GG_MODEL: &str = "Gamma-Gamma";

impl BgNbd {
    /// Customers needed at the least (one per parameter).
    pub const MIN_CUSTOMERS: usize = 4;

    /// Maximum-likelihood fit (lifetimes `BetaGeoFitter().fit`, penalizer 0).
    pub fn fit(customers: &[CustomerSummary]) -> Result<BgNbd, FitError> {
        let scale = BgData::validate(customers)?;
        // lifetimes' start first (log-parameters 0.1 in scaled time), then two others.
        let starts = [[0.1; 4], [0.0, 1.0, 0.0, 1.0], [-1.0, 0.0, 1.0, 2.0]];
        let (data, best) = fit_log_parameters(
            customers,
            |c| BgData::build(c, scale),
            BgData::objective,
            &starts,
            WARM_START,
        )
        .ok_or(FitError::DidNotConverge { model: BG_MODEL })?;
        let (theta, f) = (best.x, best.f);
        let [r, alpha_scaled, a, b] = theta.map(f64::exp);
        let scaled_ll = -f * data.total_weight;
        Ok(BgNbd {
            r,
            alpha: alpha_scaled / data.scale,
            a,
            b,
            // Scaling time by s subtracts x·ln s from each customer's log-likelihood.
            log_likelihood: scaled_ll + data.sum_x * data.scale.ln(),
        })
    }

    /// Total log-likelihood of `customers` under this model (same quantity as
    /// the `log_likelihood` field reports for the fitted data).
    pub fn evaluate_log_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        customers
            .iter()
            .map(|c| bg_customer_ll(self.r, self.alpha, self.a, self.b, c))
            .sum()
    }

    /// The value lifetimes stores as `BetaGeoFitter._negative_log_likelihood_`
    /// (mean negative log-likelihood in time scaled by 1/max T), given this
    /// model's total log-likelihood and the fitted data's N, Σx and max T.
    pub fn lifetimes_objective(log_likelihood: f64, n: f64, sum_x: f64, max_t: f64) -> f64 {
        -(log_likelihood + sum_x * max_t.ln()) / n
    }

    /// Probability that a customer with this history is still alive
    /// (lifetimes `conditional_probability_alive`).
    pub fn p_alive(&self, frequency: f64, recency: f64, t: f64) -> f64 {
        if frequency <= 0.0 {
            return 1.0;
        }
        let log_div = (self.r + frequency) * ((self.alpha + t) / (self.alpha + recency)).ln()
            + (self.a / (self.b + frequency - 1.0)).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// Expected number of purchases in the next `horizon` periods for a
    /// customer with this history (lifetimes
    /// `conditional_expected_number_of_purchases_up_to_time`, equation 10).
    pub fn expected_purchases(&self, horizon: f64, frequency: f64, recency: f64, t: f64) -> f64 {
        let (r, alpha, a, b, x) = (self.r, self.alpha, self.a, self.b, frequency);
        if horizon <= 0.0 {
            return 0.0;
        }
        let z = horizon / (alpha + t + horizon);
        // (1-z)^(r+x) · 2F1(r+x, b+x; a+b+x-1; z) by Euler's transformation:
        // (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z), whose series terms stay bounded.
        let tail =
            (1.0 - z).powf(a - 1.0) * hyp2f1_series(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z);
        let numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail);
        let denominator = if x > 0.0 {
            1.0 + a / (b + x - 1.0) * ((alpha + t) / (alpha + recency)).powf(r + x)
        } else {
            1.0
        };
        numerator / denominator
    }
}

/// One customer's BG/NBD log-likelihood (lifetimes' per-customer term).
fn bg_customer_ll(r: f64, alpha: f64, a: f64, b: f64, c: &CustomerSummary) -> f64 {
    let x = c.frequency;
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
    let a3 = -(r + x) * (alpha + c.t).ln();
    if x > 0.0 {
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.recency).ln();
        a1 + a2 + log_add_exp(a3, a4)
    } else {
        a1 + a2 + a3
    }
}

fn log_add_exp(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    m + (-(u - v).abs()).exp().ln_1p()
}

/// Customers with x > 0 compressed to patterns: indexes into the tables.
#[derive(Clone, Copy)]
struct BgPattern {
    xi: u32,
    ti: u32,
    txi: u32,
    w: f64,
}

/// BG/NBD data in scaled time, compressed.
struct BgData {
    scale: f64,
    total_weight: f64,
    sum_x: f64,
    /// x = 0 customers: (scaled T, weight).
    zeros: Vec<(f64, f64)>,
    /// Distinct x > 0 with their total weights.
    xs: Vec<(f64, f64)>,
    /// Distinct scaled T and t_x values of the x > 0 patterns.
    t_values: Vec<f64>,
    tx_values: Vec<f64>,
    patterns: Vec<BgPattern>,
}

/// Per-evaluation accumulators of the x > 0 patterns' log-sum-exp part.
#[derive(Clone, Copy, Default)]
struct BgAcc {
    ll: f64,
    /// Σ w·[(1-π)·ln(α+T) + π·ln(α+t_x)]
    d_r: f64,
    /// Σ w·(r+x)·[(1-π)/(α+T) + π/(α+t_x)]
    d_alpha: f64,
    /// Σ w·π
    d_a: f64,
    /// Σ w·π/(b+x-1)
    d_b: f64,
}

impl BgAcc {
    fn add(mut self, o: BgAcc) -> BgAcc {
        self.ll += o.ll;
        self.d_r += o.d_r;
        self.d_alpha += o.d_alpha;
        self.d_a += o.d_a;
        self.d_b += o.d_b;
        self
    }
}

/// Below this many patterns the likelihood is evaluated on one thread.
const PARALLEL_MIN: usize = 50_000;

fn bits(v: f64) -> u64 {
    // Inputs are validated non-negative; + 0.0 turns -0.0 into 0.0.
    (v + 0.0).to_bits()
}

/// Distinct (x, t_x bits, T bits) of validated customers, sorted, with counts.
fn distinct_patterns(customers: &[CustomerSummary]) -> Vec<((u32, u64, u64), f64)> {
    // Whole numbers of periods (as `summarize` makes) pack into one u64, which
    // sorts faster; the packed order is the same (x, t_x, T) order.
    const BELOW: f64 = (1u64 << 24) as f64;
    let packed: Option<Vec<u64>> = customers
        .iter()
        .map(|c| {
            let whole = c.recency.fract() == 0.0 && c.t.fract() == 0.0;
            (whole && c.frequency < 65_536.0 && c.t < BELOW)
                .then_some(((c.frequency as u64) << 48) | ((c.recency as u64) << 24) | c.t as u64)
        })
        .collect();
    let mut out: Vec<((u32, u64, u64), f64)> = Vec::new();
    let mut push = |k: (u32, u64, u64)| match out.last_mut() {
        Some((last, w)) if *last == k => *w += 1.0,
        _ => out.push((k, 1.0)),
    };
    if let Some(mut keys) = packed {
        keys.sort_unstable();
        const MASK: u64 = (1 << 24) - 1;
        for k in keys {
            push((
                (k >> 48) as u32,
                bits(((k >> 24) & MASK) as f64),
                bits((k & MASK) as f64),
            ));
        }
    } else {
        return distinct_patterns_by_tuple(customers);
    }
    out
}

/// `distinct_patterns` for any values: sorts the tuples themselves.
fn distinct_patterns_by_tuple(customers: &[CustomerSummary]) -> Vec<((u32, u64, u64), f64)> {
    let mut keys: Vec<(u32, u64, u64)> = customers
        .iter()
        .map(|c| (c.frequency as u32, bits(c.recency), bits(c.t)))
        .collect();
    keys.sort_unstable();
    let mut out: Vec<((u32, u64, u64), f64)> = Vec::new();
    for k in keys {
        match out.last_mut() {
            Some((last, w)) if *last == k => *w += 1.0,
            _ => out.push((k, 1.0)),
        }
    }
    out
}

impl BgData {
    /// Check the customers; the time scale 1/max T.
    fn validate(customers: &[CustomerSummary]) -> Result<f64, FitError> {
        if customers.len() < BgNbd::MIN_CUSTOMERS {
            return Err(FitError::TooFewCustomers {
                model: BG_MODEL,
                got: customers.len(),
                needed: BgNbd::MIN_CUSTOMERS,
            });
        }
        let mut max_t = 0.0f64;
        let mut any_repeat = false;
        for (index, c) in customers.iter().enumerate() {
            for (v, field) in [
                (c.frequency, "frequency"),
                (c.recency, "recency"),
                (c.t, "T"),
            ] {
                if !v.is_finite() {
                    return Err(FitError::NonFiniteInput { index, field });
                }
            }
            let invalid = |reason| Err(FitError::InvalidInput { index, reason });
            if c.frequency < 0.0 || c.frequency.fract() != 0.0 || c.frequency > f64::from(u32::MAX)
            {
                return invalid("frequency is not a whole number of periods");
            }
            if c.recency < 0.0 || c.recency > c.t {
                return invalid("recency is negative or larger than T");
            }
            if c.frequency == 0.0 && c.recency != 0.0 {
                return invalid("recency is not 0 for a customer with frequency 0");
            }
            any_repeat |= c.frequency > 0.0;
            max_t = max_t.max(c.t);
        }
        if max_t <= 0.0 || !any_repeat {
            return Err(FitError::DidNotConverge { model: BG_MODEL });
        }
        Ok(1.0 / max_t)
    }

    /// Compress validated customers, times scaled by `scale`.
    fn build(customers: &[CustomerSummary], scale: f64) -> BgData {
        let uniq = distinct_patterns(customers);
        let mut zeros = Vec::new();
        let mut xs: Vec<(f64, f64)> = Vec::new();
        let mut patterns = Vec::with_capacity(uniq.len());
        let mut sum_x = 0.0;
        // Tables of the distinct T and t_x values (in order of appearance).
        let mut t_index: HashMap<u64, u32> = HashMap::new();
        let mut tx_index: HashMap<u64, u32> = HashMap::new();
        let mut t_values = Vec::new();
        let mut tx_values = Vec::new();
        let slot = |index: &mut HashMap<u64, u32>, values: &mut Vec<f64>, b: u64| {
            *index.entry(b).or_insert_with(|| {
                values.push(f64::from_bits(b) * scale);
                (values.len() - 1) as u32
            })
        };
        for &((x, tx, t), w) in &uniq {
            sum_x += f64::from(x) * w;
            if x == 0 {
                zeros.push((f64::from_bits(t) * scale, w));
                continue;
            }
            let xf = f64::from(x);
            match xs.last_mut() {
                Some((lx, lw)) if *lx == xf => *lw += w,
                _ => xs.push((xf, w)),
            }
            patterns.push(BgPattern {
                xi: (xs.len() - 1) as u32,
                ti: slot(&mut t_index, &mut t_values, t),
                txi: slot(&mut tx_index, &mut tx_values, tx),
                w,
            });
        }
        BgData {
            scale,
            total_weight: customers.len() as f64,
            sum_x,
            zeros,
            xs,
            t_values,
            tx_values,
            patterns,
        }
    }

    /// Mean negative log-likelihood (scaled time) and its gradient with
    /// respect to the log-parameters.
    fn objective(&self, theta: &[f64; 4]) -> (f64, [f64; 4]) {
        let [r, alpha, a, b] = theta.map(f64::exp);
        let ln_alpha = alpha.ln();
        let mut ll = 0.0;
        let (mut g_r, mut g_alpha, mut g_a, mut g_b) = (0.0, 0.0, 0.0, 0.0);

        // x = 0: r·(ln α − ln(α+T)).
        for &(t, w) in &self.zeros {
            let lt = (alpha + t).ln();
            ll += w * r * (ln_alpha - lt);
            g_r += w * (ln_alpha - lt);
            g_alpha += w * r * (1.0 / alpha - 1.0 / (alpha + t));
        }

        // x > 0, the parts that depend on x only.
        let (lg_r, dg_r) = (ln_gamma(r), digamma(r));
        let (lg_b, dg_b) = (ln_gamma(b), digamma(b));
        let (lg_ab, dg_ab) = (ln_gamma(a + b), digamma(a + b));
        let mut x_tables = Vec::with_capacity(self.xs.len());
        for &(x, w) in &self.xs {
            let a1 = ln_gamma(r + x) - lg_r + r * ln_alpha;
            let a2 = lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x);
            ll += w * (a1 + a2);
            g_r += w * (digamma(r + x) - dg_r + ln_alpha);
            g_alpha += w * r / alpha;
            let dg_abx = digamma(a + b + x);
            g_a += w * (dg_ab - dg_abx);
            g_b += w * (dg_ab + digamma(b + x) - dg_b - dg_abx);
            let bx = b + x - 1.0;
            x_tables.push(XTable {
                rx: r + x,
                c: a.ln() - bx.ln(),
                inv_bx: 1.0 / bx,
            });
        }
        let t_tab: Vec<(f64, f64)> = self
            .t_values
            .iter()
            .map(|&t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();
        let tx_tab: Vec<(f64, f64)> = self
            .tx_values
            .iter()
            .map(|&t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();

        let run = |chunk: &[BgPattern]| bg_patterns(chunk, &x_tables, &t_tab, &tx_tab);
        let acc = if self.patterns.len() >= PARALLEL_MIN {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .clamp(1, 8);
            let size = self.patterns.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = self
                    .patterns
                    .chunks(size)
                    .map(|chunk| s.spawn(move || run(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .fold(BgAcc::default(), BgAcc::add)
            })
        } else {
            run(&self.patterns)
        };
        ll += acc.ll;
        g_r -= acc.d_r;
        g_alpha -= acc.d_alpha;
        g_a += acc.d_a / a;
        g_b -= acc.d_b;

        let n = self.total_weight;
        // Chain rule to log-parameters; negate and average.
        (
            -ll / n,
            [
                -g_r * r / n,
                -g_alpha * alpha / n,
                -g_a * a / n,
                -g_b * b / n,
            ],
        )
    }
}

struct XTable {
    rx: f64,
    c: f64,
    inv_bx: f64,
}

fn bg_patterns(
    patterns: &[BgPattern],
    xs: &[XTable],
    t_tab: &[(f64, f64)],
    tx_tab: &[(f64, f64)],
) -> BgAcc {
    let mut acc = BgAcc::default();
    for p in patterns {
        let xt = &xs[p.xi as usize];
        let (lt, it) = t_tab[p.ti as usize];
        let (ltx, itx) = tx_tab[p.txi as usize];
        let u = -xt.rx * lt;
        let v = xt.c - xt.rx * ltx;
        let e = (-(u - v).abs()).exp();
        let (m, pi) = if v >= u {
            (v, 1.0 / (1.0 + e))
        } else {
            (u, e / (1.0 + e))
        };
        let w = p.w;
        acc.ll += w * (m + e.ln_1p());
        let wpi = w * pi;
        let wq = w - wpi;
        acc.d_r += wq * lt + wpi * ltx;
        acc.d_alpha += xt.rx * (wq * it + wpi * itx);
        acc.d_a += wpi;
        acc.d_b += wpi * xt.inv_bx;
    }
    acc
}

// ---------------------------------------------------------------------------
// Gamma-Gamma
// ---------------------------------------------------------------------------

/// A fitted Gamma-Gamma model of the mean spend per repeat period.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
    /// Customers used: those with `frequency > 0` and `monetary_value > 0`.
    pub customers: usize,
    /// Total log-likelihood of those customers (−N × lifetimes'
    /// `GammaGammaFitter._negative_log_likelihood` at the fit, penalizer 0).
    pub log_likelihood: f64,
}

impl GammaGamma {
    /// Customers with a repeat period and positive spend needed at the least.
    pub const MIN_CUSTOMERS: usize = 3;

    /// Maximum-likelihood fit on the customers with `frequency > 0` and
    /// `monetary_value > 0` (the others are skipped).
    pub fn fit(customers: &[CustomerSummary]) -> Result<GammaGamma, FitError> {
        let scale = GgData::validate(customers)?;
        // lifetimes' start first (log-parameters 0.1, here with spend scaled
        // to mean 1), then two others.
        let starts = [[0.1; 3], [1.0, 1.0, 0.0], [0.0, 0.5, 1.0]];
        let (data, best) = fit_log_parameters(
            customers,
            |c| GgData::build(c, scale),
            GgData::objective,
            &starts,
            WARM_START,
        )
        .ok_or(FitError::DidNotConverge { model: GG_MODEL })?;
        let (theta, f) = (best.x, best.f);
        let [p, q, v_scaled] = theta.map(f64::exp);
        let n = data.total_weight;
        Ok(GammaGamma {
            p,
            q,
            v: v_scaled / data.scale,
            customers: data.customers,
            // Scaling spend by c subtracts ln c from each customer's log-likelihood.
            log_likelihood: -f * n + n * data.scale.ln(),
        })
    }

    /// Total log-likelihood of the eligible customers under this model.
    pub fn evaluate_log_likelihood(&self, customers: &[CustomerSummary]) -> f64 {
        let (p, q, v) = (self.p, self.q, self.v);
        customers
            .iter()
            .filter(|c| c.frequency > 0.0 && c.monetary_value > 0.0)
            .map(|c| {
                let (x, m) = (c.frequency, c.monetary_value);
                ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
                    + q * v.ln()
                    + (p * x - 1.0) * m.ln()
                    + p * x * x.ln()
                    - (p * x + q) * (x * m + v).ln()
            })
            .sum()
    }

    /// Expected mean spend per period of a customer with this history
    /// (lifetimes `conditional_expected_average_profit`).
    pub fn expected_average_value(&self, frequency: f64, monetary_value: f64) -> f64 {
        let (p, q, v) = (self.p, self.q, self.v);
        let weight = p * frequency / (p * frequency + q - 1.0);
        let population_mean = v * p / (q - 1.0);
        (1.0 - weight) * population_mean + weight * monetary_value
    }
}

/// Gamma-Gamma data: distinct (x, m) with weights, spend scaled by 1/mean.
struct GgData {
    scale: f64,
    customers: usize,
    total_weight: f64,
    /// Distinct x with total weight.
    xs: Vec<(f64, f64)>,
    /// Per pattern: x index, x·m, ln m, weight.
    patterns: Vec<GgPattern>,
    /// Σ w·x·(ln m + ln x) and Σ w·ln m over patterns (constant in the parameters).
    const_p: f64,
    sum_ln_m: f64,
}

struct GgPattern {
    xi: u32,
    xm: f64,
    w: f64,
}

impl GgData {
    /// Check the customers; the spend scale 1/(mean monetary value of the
    /// eligible customers).
    fn validate(customers: &[CustomerSummary]) -> Result<f64, FitError> {
        let mut eligible = 0usize;
        let mut total = 0.0;
        for (index, c) in customers.iter().enumerate() {
            for (v, field) in [
                (c.frequency, "frequency"),
                (c.monetary_value, "monetary value"),
            ] {
                if !v.is_finite() {
                    return Err(FitError::NonFiniteInput { index, field });
                }
            }
            if c.frequency < 0.0 || c.frequency.fract() != 0.0 || c.frequency > f64::from(u32::MAX)
            {
                return Err(FitError::InvalidInput {
                    index,
                    reason: "frequency is not a whole number of periods",
                });
            }
            if c.frequency > 0.0 && c.monetary_value > 0.0 {
                eligible += 1;
                total += c.monetary_value;
            }
        }
        if eligible < GammaGamma::MIN_CUSTOMERS {
            return Err(FitError::TooFewCustomers {
                model: GG_MODEL,
                got: eligible,
                needed: GammaGamma::MIN_CUSTOMERS,
            });
        }
        Ok(eligible as f64 / total)
    }

    /// Compress the eligible customers of validated input, spend scaled by `scale`.
    fn build(customers: &[CustomerSummary], scale: f64) -> GgData {
        let mut keys: Vec<(u32, u64)> = customers
            .iter()
            .filter(|c| c.frequency > 0.0 && c.monetary_value > 0.0)
            .map(|c| (c.frequency as u32, c.monetary_value.to_bits()))
            .collect();
        let customers = keys.len();
        keys.sort_unstable();
        let mut xs: Vec<(f64, f64)> = Vec::new();
        let mut patterns: Vec<GgPattern> = Vec::new();
        let mut last: Option<(u32, u64)> = None;
        let (mut const_p, mut sum_ln_m) = (0.0, 0.0);
        for k in keys {
            let x = f64::from(k.0);
            let m = f64::from_bits(k.1) * scale;
            const_p += x * (m.ln() + x.ln());
            sum_ln_m += m.ln();
            match xs.last_mut() {
                Some((lx, lw)) if *lx == x => *lw += 1.0,
                _ => xs.push((x, 1.0)),
            }
            if last == Some(k) {
                if let Some(p) = patterns.last_mut() {
                    p.w += 1.0;
                }
            } else {
                patterns.push(GgPattern {
                    xi: (xs.len() - 1) as u32,
                    xm: x * m,
                    w: 1.0,
                });
            }
            last = Some(k);
        }
        GgData {
            scale,
            customers,
            total_weight: customers as f64,
            xs,
            patterns,
            const_p,
            sum_ln_m,
        }
    }

    /// Mean negative log-likelihood (scaled spend) and its gradient with
    /// respect to the log-parameters.
    fn objective(&self, theta: &[f64; 3]) -> (f64, [f64; 3]) {
        let [p, q, v] = theta.map(f64::exp);
        let ln_v = v.ln();
        let (lg_q, dg_q) = (ln_gamma(q), digamma(q));
        // Constant-in-x parts: (p·x − 1)·ln m + p·x·ln x summed → p·const_p − Σ ln m.
        let mut ll = p * self.const_p - self.sum_ln_m;
        let mut g_p = self.const_p;
        let (mut g_q, mut g_v) = (0.0, 0.0);
        for &(x, w) in &self.xs {
            let px = p * x;
            ll += w * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v);
            let dg_pxq = digamma(px + q);
            g_p += w * x * (dg_pxq - digamma(px));
            g_q += w * (dg_pxq - dg_q + ln_v);
            g_v += w * q / v;
        }
        for pat in &self.patterns {
            let x = self.xs[pat.xi as usize].0;
            let pxq = p * x + q;
            let l = (pat.xm + v).ln();
            let w = pat.w;
            ll -= w * pxq * l;
            g_p -= w * x * l;
            g_q -= w * l;
            g_v -= w * pxq / (pat.xm + v);
        }
        let n = self.total_weight;
        (-ll / n, [-g_p * p / n, -g_q * q / n, -g_v * v / n])
    }
}

// ---------------------------------------------------------------------------
// Optimiser: BFGS with a strong Wolfe line search, then Newton polishing.
// ---------------------------------------------------------------------------

/// Above `min` customers a fit starts from the optimum of a systematic
/// subsample of about `sample` customers, with that fit's inverse Hessian:
/// the mean log-likelihood's curvature is the same up to sampling noise, so
/// BFGS on the full data needs only a few steps. The answer is the full
/// data's maximum either way (the subsample only chooses the start).
#[derive(Clone, Copy)]
struct WarmStart {
    min: usize,
    sample: usize,
}

const WARM_START: WarmStart = WarmStart {
    min: 200_000,
    sample: 50_000,
};

/// Build the data, then find the first start from which the objective
/// converges (warm-started from a subsample on large inputs).
fn fit_log_parameters<const N: usize, D>(
    customers: &[CustomerSummary],
    build: impl Fn(&[CustomerSummary]) -> D,
    objective: fn(&D, &[f64; N]) -> (f64, [f64; N]),
    starts: &[[f64; N]],
    warm_start: WarmStart,
) -> Option<(D, Minimum<N>)> {
    let first_converged = |data: &D| {
        starts
            .iter()
            .find_map(|&start| minimize(|th: &[f64; N]| objective(data, th), start, None))
    };
    if customers.len() > warm_start.min {
        let stride = (customers.len() / warm_start.sample).max(1);
        let sample: Vec<CustomerSummary> = customers.iter().step_by(stride).copied().collect();
        let warm = first_converged(&build(&sample));
        let data = build(customers);
        if let Some(warm) = warm {
            if let Some(best) = minimize(|th: &[f64; N]| objective(&data, th), warm.x, Some(warm.h))
            {
                return Some((data, best));
            }
        }
        let best = first_converged(&data)?;
        return Some((data, best));
    }
    let data = build(customers);
    let best = first_converged(&data)?;
    Some((data, best))
}

/// Iteration cap of the BFGS phase.
const MAX_ITERATIONS: usize = 500;
/// Converged when every component of the gradient of the mean negative
/// log-likelihood is below this.
const GRADIENT_TOLERANCE: f64 = 1e-10;
/// Accepted when the line search can make no more progress but the gradient
/// is this small (the objective is at its rounding floor).
const GRADIENT_FLOOR: f64 = 1e-6;
/// Log-parameters beyond this mean a parameter is running off to 0 or ∞.
const THETA_LIMIT: f64 = 40.0;

fn max_abs<const N: usize>(g: &[f64; N]) -> f64 {
    g.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn all_finite<const N: usize>(f: f64, g: &[f64; N]) -> bool {
    f.is_finite() && g.iter().all(|v| v.is_finite())
}

/// Minimise `obj` from `x0`; `None` when no converged minimum was found.
/// A converged minimum: the point, the objective there, and BFGS's inverse
/// Hessian approximation.
struct Minimum<const N: usize> {
    x: [f64; N],
    f: f64,
    h: [[f64; N]; N],
}

/// Minimise `obj` from `x0`, with `h0` as the initial inverse Hessian when
/// known; `None` when no converged minimum was found.
#[allow(clippy::needless_range_loop)] // small dense matrices: indices read best
fn minimize<const N: usize>(
    obj: impl Fn(&[f64; N]) -> (f64, [f64; N]),
    x0: [f64; N],
    h0: Option<[[f64; N]; N]>,
) -> Option<Minimum<N>> {
    let mut x = x0;
    let (mut f, mut g) = obj(&x);
    if !all_finite(f, &g) {
        return None;
    }
    let mut h = h0.unwrap_or_else(identity::<N>);
    let mut fresh = h0.is_none();
    let mut converged = false;
    for _ in 0..MAX_ITERATIONS {
        if max_abs(&g) < GRADIENT_TOLERANCE {
            converged = true;
            break;
        }
        // d = −H g
        let mut d = [0.0; N];
        for i in 0..N {
            d[i] = -(0..N).map(|j| h[i][j] * g[j]).sum::<f64>();
        }
        let mut slope = dot(&d, &g);
        if slope >= 0.0 {
            h = identity::<N>();
            fresh = true;
            d = g.map(|v| -v);
            slope = dot(&d, &g);
        }
        // Keep the first trial step moderate in log-parameter space.
        let step_cap = 2.0 / max_abs(&d).max(1e-300);
        let initial = if fresh { 1.0f64.min(step_cap) } else { 1.0 };
        let Some((step, fx, gx)) = line_search(&obj, &x, f, slope, &d, initial) else {
            if fresh {
                converged = max_abs(&g) < GRADIENT_FLOOR;
                break;
            }
            h = identity::<N>();
            fresh = true;
            continue;
        };
        let mut s = [0.0; N];
        let mut y = [0.0; N];
        let mut xn = x;
        for i in 0..N {
            s[i] = step * d[i];
            xn[i] = x[i] + s[i];
            y[i] = gx[i] - g[i];
        }
        if max_abs(&xn) > THETA_LIMIT {
            return None;
        }
        let sy = dot(&s, &y);
        if sy > 1e-14 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if fresh {
                // Scale the initial inverse Hessian (Nocedal & Wright 6.20).
                let gamma = sy / dot(&y, &y);
                h = identity::<N>();
                for (i, row) in h.iter_mut().enumerate() {
                    row[i] = gamma;
                }
            }
            bfgs_update(&mut h, &s, &y, sy);
            fresh = false;
        }
        let no_progress = (f - fx).abs() <= 1e-16 * f.abs().max(1.0) && max_abs(&s) < 1e-14;
        x = xn;
        f = fx;
        g = gx;
        if no_progress {
            converged = max_abs(&g) < GRADIENT_FLOOR;
            break;
        }
    }
    if !converged && max_abs(&g) >= GRADIENT_FLOOR {
        return None;
    }
    let (x, f) = newton_polish(&obj, x, f, g);
    if max_abs(&x) > THETA_LIMIT {
        return None;
    }
    Some(Minimum { x, f, h })
}

fn identity<const N: usize>() -> [[f64; N]; N] {
    let mut h = [[0.0; N]; N];
    for (i, row) in h.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    h
}

/// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ.
#[allow(clippy::needless_range_loop)] // small dense matrices: indices read best
fn bfgs_update<const N: usize>(h: &mut [[f64; N]; N], s: &[f64; N], y: &[f64; N], sy: f64) {
    let rho = 1.0 / sy;
    let mut hy = [0.0; N];
    for i in 0..N {
        hy[i] = (0..N).map(|j| h[i][j] * y[j]).sum();
    }
    let yhy = dot(y, &hy);
    for i in 0..N {
        for j in 0..N {
            h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

/// A point on the search line: step, objective, directional derivative, gradient.
type LinePoint<const N: usize> = (f64, f64, f64, [f64; N]);

/// Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6) made robust
/// to rounding noise in the objective: near the optimum of a large data set
/// the mean log-likelihood changes by less than its rounding error, so a step
/// is also accepted on Hager and Zhang's approximate Wolfe conditions (the
/// objective within `noise` of the start and the directional derivative at
/// most 0.8 of the start's, in size), and bracketing interpolates the
/// directional derivative (secant) rather than the objective where it can.
fn line_search<const N: usize>(
    obj: &impl Fn(&[f64; N]) -> (f64, [f64; N]),
    x: &[f64; N],
    f0: f64,
    slope0: f64,
    d: &[f64; N],
    initial: f64,
) -> Option<(f64, f64, [f64; N])> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let noise = 1e-11 * f0.abs().max(1.0);
    let phi = |alpha: f64| -> Option<LinePoint<N>> {
        let mut xa = *x;
        for i in 0..N {
            xa[i] += alpha * d[i];
        }
        let (f, g) = obj(&xa);
        all_finite(f, &g).then(|| (alpha, f, dot(&g, d), g))
    };
    let decrease = |p: &LinePoint<N>| {
        p.1 <= f0 + C1 * p.0 * slope0 || (p.1 <= f0 + noise && p.2 <= -0.8 * slope0)
    };
    let curvature = |p: &LinePoint<N>| p.2.abs() <= -C2 * slope0;

    let mut lo: LinePoint<N> = (0.0, f0, slope0, [0.0; N]);
    let mut alpha = initial;
    for i in 0..40 {
        let Some(p) = phi(alpha) else {
            // Outside the region where the likelihood is computable: shrink.
            return zoom(
                &phi,
                lo,
                (alpha, f64::INFINITY, f64::NAN),
                noise,
                &decrease,
                &curvature,
            );
        };
        if !decrease(&p) || (i > 0 && p.1 > lo.1 + noise) {
            let hi = (p.0, p.1, p.2);
            return zoom(&phi, lo, hi, noise, &decrease, &curvature);
        }
        if curvature(&p) {
            return Some((p.0, p.1, p.3));
        }
        if p.2 >= 0.0 {
            // Passed the minimum along d: zoom between this point and lo.
            let hi = (lo.0, lo.1, lo.2);
            return zoom(&phi, p, hi, noise, &decrease, &curvature);
        }
        lo = p;
        alpha *= 2.0;
    }
    None
}

/// Shrink the bracket [lo, hi] (lo: acceptable decrease, slope pointing at
/// hi) until a point meets the curvature condition; failing that, the best
/// acceptable point found.
fn zoom<const N: usize>(
    phi: &impl Fn(f64) -> Option<LinePoint<N>>,
    mut lo: LinePoint<N>,
    mut hi: (f64, f64, f64),
    noise: f64,
    decrease: &impl Fn(&LinePoint<N>) -> bool,
    curvature: &impl Fn(&LinePoint<N>) -> bool,
) -> Option<(f64, f64, [f64; N])> {
    for _ in 0..30 {
        let (a_lo, f_lo, s_lo) = (lo.0, lo.1, lo.2);
        let (a_hi, f_hi, s_hi) = hi;
        let width = a_hi - a_lo;
        if width.abs() <= 1e-14 * a_lo.abs().max(a_hi.abs()) {
            break;
        }
        let (left, right) = if a_lo < a_hi {
            (a_lo, a_hi)
        } else {
            (a_hi, a_lo)
        };
        let inside = |c: f64| c > left + 0.1 * (right - left) && c < right - 0.1 * (right - left);
        let mut alpha = a_lo + 0.5 * width;
        if s_hi.is_finite() && s_hi * width > 0.0 && s_lo * width < 0.0 {
            // The directional derivative changes sign: secant on it.
            let c = a_lo - s_lo * width / (s_hi - s_lo);
            if inside(c) {
                alpha = c;
            }
        } else if f_hi.is_finite() {
            // Quadratic through lo's value and slope and hi's value.
            let denom = 2.0 * (f_hi - f_lo - s_lo * width);
            if denom > 0.0 {
                let c = a_lo - s_lo * width * width / denom;
                if inside(c) {
                    alpha = c;
                }
            }
        }
        let Some(p) = phi(alpha) else {
            hi = (alpha, f64::INFINITY, f64::NAN);
            continue;
        };
        if !decrease(&p) || p.1 > f_lo + noise {
            hi = (p.0, p.1, p.2);
        } else {
            if curvature(&p) {
                return Some((p.0, p.1, p.3));
            }
            if p.2 * width >= 0.0 {
                hi = (a_lo, f_lo, s_lo);
            }
            lo = p;
        }
    }
    // No point met the curvature condition: take the best acceptable one.
    (lo.0 > 0.0).then_some((lo.0, lo.1, lo.3))
}

/// Newton steps with a forward-difference Hessian of the analytic gradient,
/// kept only while they lower the gradient: takes BFGS's answer (gradient
/// below 1e-10) to the objective's rounding floor. Each round costs N + 1
/// evaluations.
#[allow(clippy::needless_range_loop)] // small dense matrices: indices read best
fn newton_polish<const N: usize>(
    obj: &impl Fn(&[f64; N]) -> (f64, [f64; N]),
    mut x: [f64; N],
    mut f: f64,
    mut g: [f64; N],
) -> ([f64; N], f64) {
    const H: f64 = 1e-6;
    for _ in 0..2 {
        if max_abs(&g) < 1e-13 {
            break;
        }
        let mut hess = [[0.0; N]; N];
        for j in 0..N {
            let mut xp = x;
            xp[j] += H;
            let (_, gp) = obj(&xp);
            for i in 0..N {
                hess[i][j] = (gp[i] - g[i]) / H;
            }
        }
        // Symmetrise, then solve H δ = −g.
        for i in 0..N {
            for j in 0..i {
                let m = 0.5 * (hess[i][j] + hess[j][i]);
                hess[i][j] = m;
                hess[j][i] = m;
            }
        }
        let Some(delta) = solve(hess, g.map(|v| -v)) else {
            break;
        };
        if max_abs(&delta) > 1e-3 {
            break;
        }
        let mut xn = x;
        for i in 0..N {
            xn[i] += delta[i];
        }
        let (fn_, gn) = obj(&xn);
        if !all_finite(fn_, &gn)
            || max_abs(&gn) >= max_abs(&g)
            || fn_ > f + 1e-11 * f.abs().max(1.0)
        {
            break;
        }
        x = xn;
        f = fn_;
        g = gn;
    }
    (x, f)
}

/// Gaussian elimination with partial pivoting.
#[allow(clippy::needless_range_loop)] // small dense matrices: indices read best
fn solve<const N: usize>(mut m: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| {
            m[i][col]
                .abs()
                .partial_cmp(&m[j][col].abs())
                .unwrap_or(Ordering::Equal)
        })?;
        if m[pivot][col].abs() < 1e-300 || !m[pivot][col].is_finite() {
            return None;
        }
        m.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..N {
            let factor = m[row][col] / m[col][col];
            for k in col..N {
                m[row][k] -= factor * m[col][k];
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        let s: f64 = (i + 1..N).map(|k| m[i][k] * x[k]).sum();
        x[i] = (b[i] - s) / m[i][i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

// ---------------------------------------------------------------------------
// Special functions
// ---------------------------------------------------------------------------

/// ln Γ(x) for x > 0: Lanczos approximation (g = 607/128, 15 terms; Godfrey's
/// coefficients), relative error about 1e-15.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 607.0 / 128.0;
    const C: [f64; 15] = [
        0.999_999_999_999_997_1,
        57.156_235_665_862_92,
        -59.597_960_355_475_49,
        14.136_097_974_741_746,
        -0.491_913_816_097_620_2,
        0.339_946_499_848_118_9e-4,
        4.652_362_892_704_858e-5,
        -0.983_744_753_048_795_6e-4,
        0.158_088_703_224_912_5e-3,
        -0.210_264_441_724_104_9e-3,
        0.217_439_618_115_212_64e-3,
        -0.164_318_106_536_763_9e-3,
        0.844_182_239_838_527_4e-4,
        -0.261_908_384_015_814_1e-4,
        0.368_991_826_595_316_2e-5,
    ];
    const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
    if x < 0.5 {
        // ln Γ(x) = ln Γ(x + 1) − ln x: accurate for tiny x.
        return ln_gamma(x + 1.0) - x.ln();
    }
    let z = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (z + i as f64);
    }
    let t = z + G + 0.5;
    HALF_LN_2PI + (z + 0.5) * t.ln() - t + sum.ln()
}

/// ψ(x) = d ln Γ(x)/dx for x > 0: recurrence up to x ≥ 12, then the
/// asymptotic series (error below 1e-16 there).
pub fn digamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 12.0 {
        result -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f
        * (1.0 / 12.0
            - f * (1.0 / 120.0
                - f * (1.0 / 252.0
                    - f * (1.0 / 240.0 - f * (1.0 / 132.0 - f * (691.0 / 32760.0))))));
    result + x.ln() - 0.5 / x - series
}

/// Gauss's hypergeometric series 2F1(a, b; c; z) for 0 ≤ z < 1, summed until
/// the terms no longer change the sum (slow only when z is very near 1).
fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 0.0;
    let mut small = 0;
    for _ in 0..10_000_000 {
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        k += 1.0;
        if term == 0.0 {
            break;
        }
        if term.abs() <= 1e-17 * sum.abs() {
            small += 1;
            if small >= 3 {
                break;
            }
        } else {
            small = 0;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_known_values() {
        let cases = [
            (0.5, 0.5 * std::f64::consts::PI.ln()),
            (1.0, 0.0),
            (2.0, 0.0),
            (3.0, 2.0f64.ln()),
            (10.0, 362_880.0f64.ln()),
            (0.1, 2.252_712_651_734_206),
            (1e-8, 18.420_680_738_180_21),
            (100.0, 359.134_205_369_575_4),
            (2.5, 0.284_682_870_472_919_2),
        ];
        for (x, want) in cases {
            let got = ln_gamma(x);
            assert!(
                (got - want).abs() <= 1e-13 * want.abs().max(1.0),
                "lnΓ({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn digamma_known_values_and_derivative_of_ln_gamma() {
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-14);
        assert!((digamma(0.5) + euler + 2.0 * 2.0f64.ln()).abs() < 1e-14);
        assert!(
            (digamma(13.0) - (digamma(1.0) + (1..13).map(|k| 1.0 / k as f64).sum::<f64>())).abs()
                < 1e-14
        );
        for x in [0.05, 0.7, 3.3, 11.9, 12.1, 40.0, 1234.5] {
            let h = 1e-5 * x;
            let fd = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(
                (digamma(x) - fd).abs() < 1e-6 * digamma(x).abs().max(1.0),
                "ψ({x})"
            );
        }
    }

    #[test]
    fn periods_days_and_monday_weeks() {
        assert_eq!(TimeUnit::Day.period(d("0001-01-01")), 0);
        assert_eq!(
            TimeUnit::Day.period(d("2024-03-02")) - TimeUnit::Day.period(d("2024-02-28")),
            3
        );
        // 2024-01-01 is a Monday; 2023-12-31 a Sunday.
        let monday = TimeUnit::Week.period(d("2024-01-01"));
        assert_eq!(TimeUnit::Week.period(d("2024-01-07")), monday);
        assert_eq!(TimeUnit::Week.period(d("2024-01-08")), monday + 1);
        assert_eq!(TimeUnit::Week.period(d("2023-12-31")), monday - 1);
        assert_eq!("week".parse::<TimeUnit>(), Ok(TimeUnit::Week));
        assert!("month".parse::<TimeUnit>().is_err());
    }

    #[test]
    fn summary_conventions() {
        let tx = |c: &str, date: &str, amount: f64| Transaction {
            customer: c.to_string(),
            date: d(date),
            amount,
        };
        let mut rows = vec![
            tx("b", "2024-01-10", 5.0),
            tx("a", "2024-01-03", 10.0),
            tx("a", "2024-01-03", 2.0), // same day as the first: not a repeat
            tx("a", "2024-01-05", 4.0),
            tx("a", "2024-01-05", 6.0), // same day: one repeat period of 10
            tx("a", "2024-01-09", 20.0),
            tx("c", "2024-01-20", 7.0), // after the observation end: dropped
        ];
        let days = summarize(&mut rows, TimeUnit::Day, Some(d("2024-01-12")));
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].0, "a");
        assert_eq!(
            days[0].1,
            CustomerSummary {
                frequency: 2.0,
                recency: 6.0,
                t: 9.0,
                monetary_value: 15.0
            }
        );
        assert_eq!(
            days[1].1,
            CustomerSummary {
                frequency: 0.0,
                recency: 0.0,
                t: 2.0,
                monetary_value: 0.0
            }
        );
        // Weeks: 01-03 and 01-05 share the week of Monday 01-01; 01-09 is the next.
        let weeks = summarize(&mut rows, TimeUnit::Week, Some(d("2024-01-12")));
        assert_eq!(
            weeks[0].1,
            CustomerSummary {
                frequency: 1.0,
                recency: 1.0,
                t: 1.0,
                monetary_value: 20.0
            }
        );
        // Default observation end: the latest date (01-20), so c is kept.
        let all = summarize(&mut rows, TimeUnit::Day, None);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].1.t, 17.0);
    }

    fn bg() -> BgNbd {
        BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
            log_likelihood: 0.0,
        }
    }

    #[test]
    fn bg_predictions_match_lifetimes() {
        // lifetimes 0.11.3, params_ set to r=0.243, alpha=4.414, a=0.793, b=2.426:
        //   conditional_probability_alive(x, t_x, T) and
        //   conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T).
        let m = bg();
        let alive = [
            ((0.0, 0.0, 38.86), 1.0),
            ((2.0, 30.43, 38.86), 0.726_578_570_080_673),
            ((7.0, 35.0, 38.86), 0.843_767_821_928_012_1),
            ((5.0, 10.0, 38.86), 0.024_804_366_168_778_5),
        ];
        for ((x, tx, t), want) in alive {
            let got = m.p_alive(x, tx, t);
            assert!(
                close(got, want, 1e-9),
                "p_alive({x},{tx},{t}) = {got}, want {want}"
            );
        }
        let expected = [
            ((10.0, 0.0, 0.0, 38.86), 0.054_299_848_380_449_43),
            ((39.0, 2.0, 30.43, 38.86), 1.226_028_174_767_131_8),
            ((39.0, 7.0, 35.0, 38.86), 4.387_487_854_487_85),
            ((1.0, 1.0, 1.71, 38.86), 0.006_062_951_798_283_454_5),
            ((200.0, 3.0, 38.0, 38.86), 6.706_360_623_145_652_5),
            ((500.0, 40.0, 38.0, 38.86), 131.582_162_766_781_92),
        ];
        for ((h, x, tx, t), want) in expected {
            let got = m.expected_purchases(h, x, tx, t);
            assert!(
                close(got, want, 1e-8),
                "E({h}|{x},{tx},{t}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn gamma_gamma_expected_value_matches_lifetimes() {
        let m = GammaGamma {
            p: 6.25,
            q: 3.74,
            v: 15.44,
            customers: 0,
            log_likelihood: 0.0,
        };
        // (1 − w)·v·p/(q − 1) + w·m with w = p·x/(p·x + q − 1).
        let pop = 15.44 * 6.25 / 2.74;
        assert!(close(m.expected_average_value(0.0, 0.0), pop, 1e-12));
        let w = 12.5 / (12.5 + 2.74);
        assert!(close(
            m.expected_average_value(2.0, 40.0),
            (1.0 - w) * pop + w * 40.0,
            1e-12
        ));
    }

    fn sample() -> Vec<CustomerSummary> {
        let raw = [
            (0.0, 0.0, 30.0, 0.0),
            (0.0, 0.0, 12.0, 0.0),
            (1.0, 3.0, 30.0, 12.0),
            (2.0, 20.0, 25.0, 30.0),
            (5.0, 28.0, 30.0, 18.5),
            (3.0, 5.0, 30.0, 22.0),
            (0.0, 0.0, 30.0, 0.0),
            (1.0, 10.0, 11.0, 40.0),
            (4.0, 15.0, 29.0, 9.0),
            (0.0, 0.0, 5.0, 0.0),
            (2.0, 2.0, 3.0, 14.0),
            (8.0, 29.0, 30.0, 25.0),
            (6.0, 8.0, 30.0, 16.0),
            (4.0, 6.0, 28.0, 31.0),
            (7.0, 9.0, 30.0, 12.5),
        ];
        raw.iter()
            .map(|&(frequency, recency, t, monetary_value)| CustomerSummary {
                frequency,
                recency,
                t,
                monetary_value,
            })
            .collect()
    }

    #[test]
    fn bg_gradient_matches_finite_differences_and_likelihood_matches_direct_sum() {
        let customers = sample();
        let data = BgData::build(&customers, BgData::validate(&customers).expect("valid"));
        let theta = [-0.7, 0.9, -0.2, 0.6];
        let (f, g) = data.objective(&theta);
        // Direct sum in scaled time at the same parameters.
        let [r, alpha, a, b] = theta.map(f64::exp);
        let scaled: Vec<CustomerSummary> = customers
            .iter()
            .map(|c| CustomerSummary {
                recency: c.recency * data.scale,
                t: c.t * data.scale,
                ..*c
            })
            .collect();
        let direct = BgNbd {
            r,
            alpha,
            a,
            b,
            log_likelihood: 0.0,
        }
        .evaluate_log_likelihood(&scaled);
        assert!(close(-f * customers.len() as f64, direct, 1e-13));
        for j in 0..4 {
            let h = 1e-6;
            let mut tp = theta;
            let mut tm = theta;
            tp[j] += h;
            tm[j] -= h;
            let fd = (data.objective(&tp).0 - data.objective(&tm).0) / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-7, "component {j}: {fd} vs {}", g[j]);
        }
    }

    #[test]
    fn gg_gradient_matches_finite_differences() {
        let customers = sample();
        let data = GgData::build(&customers, GgData::validate(&customers).expect("valid"));
        assert_eq!(data.customers, 11);
        let theta = [1.2, 0.8, 0.4];
        let (_, g) = data.objective(&theta);
        for j in 0..3 {
            let h = 1e-6;
            let mut tp = theta;
            let mut tm = theta;
            tp[j] += h;
            tm[j] -= h;
            let fd = (data.objective(&tp).0 - data.objective(&tm).0) / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-7, "component {j}: {fd} vs {}", g[j]);
        }
    }

    #[test]
    fn fits_report_the_likelihood_of_their_own_parameters() {
        // On this small sample the BG/NBD maximum is at a, b → ∞ (no
        // heterogeneity in dropout): ln Γ(a + b) is then ~1e8, so the direct
        // sum agrees only to ~1e-9 relative.
        let customers = sample();
        let bg = BgNbd::fit(&customers).expect("bg fit");
        let direct = bg.evaluate_log_likelihood(&customers);
        assert!(close(bg.log_likelihood, direct, 1e-8), "{bg:?} {direct}");
        let gg = GammaGamma::fit(&customers).expect("gg fit");
        assert_eq!(gg.customers, 11);
        let direct = gg.evaluate_log_likelihood(&customers);
        assert!(close(gg.log_likelihood, direct, 1e-10), "{gg:?} {direct}");
    }

    #[test]
    fn warm_start_finds_the_same_maximum() {
        use rand::{Rng, SeedableRng};
        // BG/NBD with r = 1 (exponential rates, mean 0.1) and a = 0.5, b = 1
        // (dropout = U²), spend exponential around a per-customer mean.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut u = move || 1.0 - rng.gen::<f64>();
        let customers: Vec<CustomerSummary> = (0..30_000)
            .map(|_| {
                let t_end = 30.0 + 50.0 * u();
                let lambda = -u().ln() * 0.1;
                let dropout = u() * u();
                let (mut t, mut x, mut tx) = (0.0, 0.0, 0.0);
                loop {
                    t += -u().ln() / lambda;
                    if t > t_end {
                        break;
                    }
                    x += 1.0;
                    tx = t;
                    if u() < dropout {
                        break;
                    }
                }
                let mean = 10.0 + 20.0 * u();
                let monetary_value = if x > 0.0 {
                    (0..x as usize).map(|_| -u().ln() * mean).sum::<f64>() / x
                } else {
                    0.0
                };
                CustomerSummary {
                    frequency: x,
                    recency: tx,
                    t: t_end,
                    monetary_value,
                }
            })
            .collect();
        let cold = WarmStart {
            min: usize::MAX,
            sample: 0,
        };
        let warm = WarmStart {
            min: 10_000,
            sample: 3_000,
        };
        let scale = BgData::validate(&customers).expect("valid");
        let bg = |w| {
            let starts = [[0.1; 4]];
            let (_, m) = fit_log_parameters(
                &customers,
                |c| BgData::build(c, scale),
                BgData::objective,
                &starts,
                w,
            )
            .expect("BG/NBD converges");
            m
        };
        let (c, w) = (bg(cold), bg(warm));
        for i in 0..4 {
            assert!(
                (c.x[i] - w.x[i]).abs() < 1e-7,
                "log-parameter {i}: {} vs {}",
                c.x[i],
                w.x[i]
            );
        }
        assert!((c.f - w.f).abs() < 1e-12 * c.f.abs());
        let scale = GgData::validate(&customers).expect("valid");
        let gg = |w| {
            let starts = [[0.1; 3]];
            let (_, m) = fit_log_parameters(
                &customers,
                |c| GgData::build(c, scale),
                GgData::objective,
                &starts,
                w,
            )
            .expect("Gamma-Gamma converges");
            m
        };
        let (c, w) = (gg(cold), gg(warm));
        for i in 0..3 {
            assert!(
                (c.x[i] - w.x[i]).abs() < 1e-7,
                "log-parameter {i}: {} vs {}",
                c.x[i],
                w.x[i]
            );
        }
    }

    #[test]
    fn packed_patterns_match_tuple_patterns() {
        let mut customers = sample();
        customers.extend(sample());
        customers.push(CustomerSummary {
            frequency: 300.0,
            recency: 70_000.0,
            t: 16_000_000.0,
            monetary_value: 1.0,
        });
        let packed = distinct_patterns(&customers);
        assert_eq!(packed, distinct_patterns_by_tuple(&customers));
        assert_eq!(
            packed.iter().map(|(_, w)| w).sum::<f64>(),
            customers.len() as f64
        );
        // Not whole numbers: the general path.
        customers[0].t = 30.5;
        assert_eq!(
            distinct_patterns(&customers),
            distinct_patterns_by_tuple(&customers)
        );
    }

    #[test]
    fn fit_errors() {
        let customers = sample();
        assert!(matches!(
            BgNbd::fit(&customers[..3]),
            Err(FitError::TooFewCustomers { got: 3, .. })
        ));
        let mut bad = customers.clone();
        bad[4].recency = f64::NAN;
        assert_eq!(
            BgNbd::fit(&bad),
            Err(FitError::NonFiniteInput {
                index: 4,
                field: "recency"
            })
        );
        bad[4].recency = 31.0;
        assert!(matches!(
            BgNbd::fit(&bad),
            Err(FitError::InvalidInput { index: 4, .. })
        ));
        let mut bad = customers.clone();
        bad[2].monetary_value = f64::INFINITY;
        assert!(matches!(
            GammaGamma::fit(&bad),
            Err(FitError::NonFiniteInput { index: 2, .. })
        ));
        let nobody_returns: Vec<CustomerSummary> = customers
            .iter()
            .map(|c| CustomerSummary {
                frequency: 0.0,
                recency: 0.0,
                monetary_value: 0.0,
                ..*c
            })
            .collect();
        assert!(matches!(
            BgNbd::fit(&nobody_returns),
            Err(FitError::DidNotConverge { .. })
        ));
        assert!(matches!(
            GammaGamma::fit(&nobody_returns),
            Err(FitError::TooFewCustomers { got: 0, .. })
        ));
    }
}
