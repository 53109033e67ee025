//! BG/NBD and Gamma-Gamma on the CDNOW sample, checked against the Python
//! `lifetimes` package.
//!
//! Data: `data/cdnow_sample.csv` is lifetimes' `datasets/CDNOW_sample.txt`
//! (6,919 purchases of 2,357 customers, 1997-01-01 to 1998-06-30) as
//! `customer_id,date,amount` rows: the second column (the sample's customer
//! number, leading zeros dropped), the date as YYYY-MM-DD, and the dollar
//! amount as written (the number-of-CDs column is dropped).
//!
//! Reference figures: lifetimes 0.11.3 with pandas 2.1.4, numpy 1.26.4,
//! scipy 1.11.4, autograd 1.6.2 on CPython 3.11 (lifetimes does not run on
//! pandas 3 / numpy 2), produced by the script in docs/analytics.md
//! ("Reference figures"):
//!
//! ```text
//! s  = summary_data_from_transaction_data(tx, "customer_id", "date",
//!          monetary_value_col="amount", freq=FREQ, observation_period_end=END)
//! bg = BetaGeoFitter().fit(s.frequency, s.recency, s["T"])          # defaults
//! g  = s[(s.frequency > 0) & (s.monetary_value > 0)]
//! gg = GammaGammaFitter().fit(g.frequency, g.monetary_value)         # defaults
//! LL_bg = -len(s) * BetaGeoFitter._negative_log_likelihood(
//!             log(bg.params_), frequency, recency, T, ones, 0.0)     # unscaled data
//! LL_gg = -len(g) * GammaGammaFitter._negative_log_likelihood(
//!             log(gg.params_), frequency, monetary_value, ones, 0.0)
//! ```
//!
//! `bg._negative_log_likelihood_` (lifetimes' own stored optimum, a mean in
//! time scaled by 1/max T) is recorded too and checked through
//! `BgNbd::lifetimes_objective`.
//!
//! Tolerances: parameters within 1% relative, log-likelihoods within 1e-6
//! relative (the acceptance tolerances). The actual differences are at most
//! 2e-6 (parameters; lifetimes stops BFGS at tol=1e-7, and refitting it with
//! tol=1e-9 lands within 1e-8 of our weekly figures) and 3e-14
//! (log-likelihoods).

use chrono::NaiveDate;
use regulars_core::clv::{summarize, BgNbd, CustomerSummary, GammaGamma, TimeUnit, Transaction};

fn transactions() -> Vec<Transaction<String>> {
    let text = include_str!("data/cdnow_sample.csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let mut cols = line.split(',');
            let mut next = || cols.next().expect("three columns");
            let customer = next().to_string();
            let date = NaiveDate::parse_from_str(next(), "%Y-%m-%d").expect("date");
            let amount = next().parse().expect("amount");
            Transaction {
                customer,
                date,
                amount,
            }
        })
        .collect()
}

struct Reference {
    unit: TimeUnit,
    end: Option<&'static str>,
    customers: usize,
    sum_x: f64,
    max_t: f64,
    /// r, alpha, a, b
    bg: [f64; 4],
    bg_ll: f64,
    /// lifetimes' `_negative_log_likelihood_`.
    bg_objective: f64,
    /// p, q, v
    gg: [f64; 3],
    gg_customers: usize,
    gg_ll: f64,
}

const REFERENCES: [Reference; 3] = [
    // freq='D', observation_period_end=None (1998-06-30).
    Reference {
        unit: TimeUnit::Day,
        end: None,
        customers: 2357,
        sum_x: 4339.0,
        max_t: 545.0,
        bg: [
            0.25356104359918297,
            38.13076285952146,
            0.60736605156438,
            2.647234680319884,
        ],
        bg_ll: -25581.538101389266,
        bg_objective: -0.7456815704940819,
        gg: [4.683454180076477, 4.189783063353315, 24.39054763132042],
        gg_customers: 1139,
        gg_ll: -4884.566320733573,
    },
    // freq='W', observation_period_end=None.
    Reference {
        unit: TimeUnit::Week,
        end: None,
        customers: 2357,
        sum_x: 4004.0,
        max_t: 78.0,
        bg: [
            0.27530759031853896,
            7.0498361125673314,
            0.6018820364121813,
            2.708171673570215,
        ],
        bg_ll: -16492.35735568223,
        bg_objective: -0.40386287076066807,
        gg: [4.784997901983691, 3.8821001586572574, 22.653201353730548],
        gg_customers: 1126,
        gg_ll: -4899.764620828807,
    },
    // freq='W', observation_period_end='1997-09-30' (the classic 39-week
    // calibration period).
    Reference {
        unit: TimeUnit::Week,
        end: Some("1997-09-30"),
        customers: 2357,
        sum_x: 2248.0,
        max_t: 39.0,
        bg: [
            0.29093631940289466,
            6.852093906789362,
            0.6652493616034663,
            2.3203235036765664,
        ],
        bg_ll: -9260.993845121819,
        bg_objective: 0.43500520348849114,
        gg: [6.5878528307580595, 3.3533888474902844, 13.39896989832192],
        gg_customers: 935,
        gg_ll: -4085.704177367984,
    },
];

const PARAM_TOLERANCE: f64 = 0.01;
const LL_TOLERANCE: f64 = 1e-6;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

fn summaries(unit: TimeUnit, end: Option<&str>) -> Vec<(String, CustomerSummary)> {
    let end = end.map(|e| NaiveDate::parse_from_str(e, "%Y-%m-%d").expect("end"));
    summarize(&mut transactions(), unit, end)
}

#[test]
fn fits_match_lifetimes() {
    for reference in &REFERENCES {
        let label = format!("{:?} to {:?}", reference.unit, reference.end);
        let rows = summaries(reference.unit, reference.end);
        assert_eq!(rows.len(), reference.customers, "{label}");
        let customers: Vec<CustomerSummary> = rows.iter().map(|(_, s)| *s).collect();
        let sum_x: f64 = customers.iter().map(|c| c.frequency).sum();
        let max_t = customers.iter().map(|c| c.t).fold(0.0, f64::max);
        assert_eq!(
            (sum_x, max_t),
            (reference.sum_x, reference.max_t),
            "{label}"
        );

        let bg = BgNbd::fit(&customers).expect("BG/NBD fit");
        let got = [bg.r, bg.alpha, bg.a, bg.b];
        for (name, (g, w)) in ["r", "alpha", "a", "b"]
            .iter()
            .zip(got.iter().zip(reference.bg))
        {
            assert!(
                rel(*g, w) < PARAM_TOLERANCE,
                "{label}: {name} = {g}, lifetimes {w}"
            );
        }
        assert!(
            rel(bg.log_likelihood, reference.bg_ll) < LL_TOLERANCE,
            "{label}: BG/NBD log-likelihood {} vs lifetimes {}",
            bg.log_likelihood,
            reference.bg_ll
        );
        // Our maximum is at least as high as lifetimes' (it converges further).
        assert!(bg.log_likelihood >= reference.bg_ll - 1e-9 * reference.bg_ll.abs());
        let objective =
            BgNbd::lifetimes_objective(bg.log_likelihood, customers.len() as f64, sum_x, max_t);
        assert!(
            (objective - reference.bg_objective).abs()
                < 1e-6 * reference.bg_objective.abs().max(1.0),
            "{label}: lifetimes objective {objective} vs {}",
            reference.bg_objective
        );
        // The likelihood at lifetimes' own parameters, by our formula.
        let at_lifetimes = BgNbd {
            r: reference.bg[0],
            alpha: reference.bg[1],
            a: reference.bg[2],
            b: reference.bg[3],
            log_likelihood: 0.0,
        }
        .evaluate_log_likelihood(&customers);
        assert!(
            rel(at_lifetimes, reference.bg_ll) < 1e-12,
            "{label}: {at_lifetimes}"
        );

        let gg = GammaGamma::fit(&customers).expect("Gamma-Gamma fit");
        assert_eq!(gg.customers, reference.gg_customers, "{label}");
        let got = [gg.p, gg.q, gg.v];
        for (name, (g, w)) in ["p", "q", "v"].iter().zip(got.iter().zip(reference.gg)) {
            assert!(
                rel(*g, w) < PARAM_TOLERANCE,
                "{label}: {name} = {g}, lifetimes {w}"
            );
        }
        assert!(
            rel(gg.log_likelihood, reference.gg_ll) < LL_TOLERANCE,
            "{label}: Gamma-Gamma log-likelihood {} vs lifetimes {}",
            gg.log_likelihood,
            reference.gg_ll
        );
        eprintln!(
            "{label}: r {:.6} alpha {:.6} a {:.6} b {:.6} LL {:.6} | p {:.6} q {:.6} v {:.6} LL {:.6}",
            bg.r, bg.alpha, bg.a, bg.b, bg.log_likelihood, gg.p, gg.q, gg.v, gg.log_likelihood
        );
    }
}

/// Rows of lifetimes' `summary_data_from_transaction_data` output (same data
/// and versions as above): (customer, frequency, recency, T, monetary_value).
#[allow(clippy::type_complexity)]
const SUMMARY_ROWS: [(TimeUnit, Option<&str>, &[(&str, f64, f64, f64, f64)]); 3] = [
    (
        TimeUnit::Day,
        None,
        &[
            ("1", 3.0, 345.0, 545.0, 23.723333333333333),
            ("2", 1.0, 12.0, 545.0, 11.77),
            ("3", 0.0, 0.0, 545.0, 0.0),
            ("18", 1.0, 34.0, 545.0, 9.99),
            ("100", 1.0, 167.0, 541.0, 26.22),
            ("763", 2.0, 515.0, 515.0, 158.49),
            ("1000", 7.0, 456.0, 508.0, 20.998571428571428),
            ("2357", 0.0, 0.0, 462.0, 0.0),
        ],
    ),
    (
        TimeUnit::Week,
        None,
        &[
            ("1", 3.0, 49.0, 78.0, 23.723333333333333),
            ("2", 1.0, 2.0, 78.0, 11.77),
            ("3", 0.0, 0.0, 78.0, 0.0),
            ("18", 1.0, 5.0, 78.0, 9.99),
            ("100", 1.0, 24.0, 78.0, 26.22),
            ("763", 2.0, 74.0, 74.0, 158.49),
            ("1000", 7.0, 65.0, 73.0, 20.998571428571428),
            ("2357", 0.0, 0.0, 66.0, 0.0),
        ],
    ),
    (
        TimeUnit::Week,
        Some("1997-09-30"),
        &[
            ("1", 2.0, 30.0, 39.0, 22.345),
            ("2", 1.0, 2.0, 39.0, 11.77),
            ("18", 1.0, 5.0, 39.0, 9.99),
            ("100", 1.0, 24.0, 39.0, 26.22),
            ("763", 0.0, 0.0, 35.0, 0.0),
            ("1000", 4.0, 25.0, 34.0, 16.26),
            ("2357", 0.0, 0.0, 27.0, 0.0),
        ],
    ),
];

#[test]
fn summaries_match_lifetimes() {
    for (unit, end, rows) in SUMMARY_ROWS {
        let summaries = summaries(unit, end);
        for &(id, frequency, recency, t, monetary_value) in rows {
            let (_, got) = summaries
                .iter()
                .find(|(k, _)| k == id)
                .unwrap_or_else(|| panic!("customer {id} summarized"));
            assert_eq!(
                (got.frequency, got.recency, got.t),
                (frequency, recency, t),
                "{unit:?} {end:?} customer {id}"
            );
            assert!(
                (got.monetary_value - monetary_value).abs() <= 1e-12 * monetary_value.max(1.0),
                "{unit:?} {end:?} customer {id}: {} vs {monetary_value}",
                got.monetary_value
            );
        }
    }
}
