//! Simulation recovery: 50,000 customers drawn from BG/NBD and Gamma-Gamma
//! with known parameters; the fits must find them again within sampling error.
//!
//! Tolerances (relative), from the spread of the estimates over seeds 1–20
//! (`CLV_RECOVERY_SEEDS=20 cargo test --release -p regulars-core --test
//! clv_recovery -- --nocapture` prints them): each is about 3.5 standard
//! deviations of that spread, and above the largest error seen.
//!
//! | quantity    | sd over 20 seeds | worst of 20 | tolerance |
//! |-------------|------------------|-------------|-----------|
//! | r           | 0.8%             | 1.7%        | 4%        |
//! | alpha       | 1.8%             | 4.3%        | 8%        |
//! | a           | 2.5%             | 4.9%        | 10%       |
//! | b           | 3.6%             | 6.8%        | 14%       |
//! | p           | 2.9%             | 6.6%        | 12%       |
//! | q           | 1.4%             | 3.2%        | 6%        |
//! | v           | 4.5%             | 12.1%       | 15%       |
//! | r/alpha     |                  | 2.9%        | 5%        |
//! | a/(a+b)     |                  | 2.6%        | 5%        |
//! | p·v/(q−1)   |                  | 0.9%        | 2%        |
//!
//! a with b, and q with v, are strongly correlated, so single parameters
//! wander more than the quantities the models use (mean purchase rate r/α,
//! mean dropout a/(a+b), mean spend p·v/(q−1)), which are checked tightly.
//! An error in a likelihood or its gradient moves the estimates far more.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regulars_core::clv::{BgNbd, CustomerSummary, GammaGamma};

const CUSTOMERS: usize = 50_000;
// BG/NBD, per period.
const R: f64 = 0.25;
const ALPHA: f64 = 4.0;
const A: f64 = 0.8;
const B: f64 = 2.5;
// Gamma-Gamma.
const P: f64 = 6.0;
const Q: f64 = 4.0;
const V: f64 = 15.0;

fn uniform(rng: &mut StdRng) -> f64 {
    // (0, 1]: safe under ln.
    1.0 - rng.gen::<f64>()
}

fn normal(rng: &mut StdRng) -> f64 {
    let (u1, u2) = (uniform(rng), uniform(rng));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Gamma(shape, scale 1) by Marsaglia and Tsang (2000), boosted below shape 1.
fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        return gamma(rng, shape + 1.0) * uniform(rng).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = normal(rng);
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        if uniform(rng).ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// One customer: BG/NBD purchase history over an age T uniform in [30, 80]
/// periods (continuous time), and the mean spend of the repeat purchases.
fn customer(rng: &mut StdRng) -> CustomerSummary {
    let t_end = 30.0 + 50.0 * rng.gen::<f64>();
    let lambda = gamma(rng, R) / ALPHA;
    let g1 = gamma(rng, A);
    let dropout = g1 / (g1 + gamma(rng, B));
    let (mut t, mut x, mut tx) = (0.0, 0u32, 0.0);
    loop {
        t += -uniform(rng).ln() / lambda;
        if t > t_end {
            break;
        }
        x += 1;
        tx = t;
        // Dropout happens only right after a repeat purchase.
        if rng.gen::<f64>() < dropout {
            break;
        }
    }
    let monetary_value = if x > 0 {
        // The mean of x Gamma(p, rate ν) spends is Gamma(p·x, rate ν)/x.
        let nu = gamma(rng, Q) / V;
        gamma(rng, P * f64::from(x)) / nu / f64::from(x)
    } else {
        0.0
    };
    CustomerSummary {
        frequency: f64::from(x),
        recency: tx,
        t: t_end,
        monetary_value,
    }
}

fn recover(seed: u64) -> ([f64; 4], [f64; 3]) {
    let mut rng = StdRng::seed_from_u64(seed);
    let customers: Vec<CustomerSummary> = (0..CUSTOMERS).map(|_| customer(&mut rng)).collect();
    let bg = BgNbd::fit(&customers).expect("BG/NBD fit");
    let gg = GammaGamma::fit(&customers).expect("Gamma-Gamma fit");
    ([bg.r, bg.alpha, bg.a, bg.b], [gg.p, gg.q, gg.v])
}

/// (name, estimate, truth, tolerance) for every checked quantity.
fn checks(bg: [f64; 4], gg: [f64; 3]) -> Vec<(&'static str, f64, f64, f64)> {
    let [r, alpha, a, b] = bg;
    let [p, q, v] = gg;
    vec![
        ("r", r, R, 0.04),
        ("alpha", alpha, ALPHA, 0.08),
        ("a", a, A, 0.10),
        ("b", b, B, 0.14),
        ("p", p, P, 0.12),
        ("q", q, Q, 0.06),
        ("v", v, V, 0.15),
        ("r/alpha", r / alpha, R / ALPHA, 0.05),
        ("a/(a+b)", a / (a + b), A / (A + B), 0.05),
        ("p*v/(q-1)", p * v / (q - 1.0), P * V / (Q - 1.0), 0.02),
    ]
}

#[test]
fn recovers_known_parameters() {
    let seeds: u64 = std::env::var("CLV_RECOVERY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let (bg, gg) = recover(seed);
        let mut line = format!("seed {seed}:");
        for (name, got, want, tolerance) in checks(bg, gg) {
            let error = (got - want).abs() / want;
            line += &format!(" {name} {got:.4} ({:+.1}%)", 100.0 * (got - want) / want);
            if error >= tolerance {
                failures.push(format!(
                    "seed {seed}: {name} = {got}, true {want}, tolerance {tolerance}"
                ));
            }
        }
        eprintln!("{line}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
