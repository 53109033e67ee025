//! `regulars-load`: the one load client `scripts/bench` uses for every HTTP
//! measurement, so the no-op endpoint and the order endpoint are driven the
//! same way.
//!
//! - `--mode max`: `--connections` workers, each sending its next request as
//!   soon as the last answered (closed loop): the maximum rate.
//! - `--mode rate --rate R`: requests are scheduled at R per second whatever
//!   the server does (open loop); latency counts from the scheduled moment,
//!   so a stalled server cannot hide its queue (no coordinated omission).
//!
//! `--target healthz` sends `GET /healthz`; `--target orders` sends
//! `POST /api/v1/orders` with 5 items for a member drawn from `--members`,
//! each with a fresh `pos_order_id`. Prints one JSON line.

use clap::{Parser, ValueEnum};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Target {
    Healthz,
    Orders,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Mode {
    Max,
    Rate,
}

#[derive(Parser)]
struct Args {
    #[arg(long)]
    base: String,
    #[arg(long, value_enum)]
    target: Target,
    #[arg(long, value_enum, default_value = "max")]
    mode: Mode,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Requests per second in `rate` mode.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    #[arg(long, default_value = "")]
    key: String,
    /// File with one member id per line.
    #[arg(long)]
    members: Option<String>,
    #[arg(long, default_value = "BENCH01")]
    store: String,
    /// Prefix making this run's pos_order_ids unique.
    #[arg(long, default_value = "run")]
    run: String,
}

struct Shared {
    args: Args,
    members: Vec<String>,
    seq: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

fn order_body(shared: &Shared, n: u64) -> String {
    let member = &shared.members[(n as usize * 7919) % shared.members.len()];
    let items: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            serde_json::json!({"sku": format!("D{:03}", (n + i) % 30), "name": "毛肚", "category": "荤菜",
                "quantity": 1 + (i % 2), "unit_price_fen": 2800 + 500 * i as i64})
        })
        .collect();
    let paid: i64 = (0..5).map(|i| (1 + (i % 2)) * (2800 + 500 * i)).sum();
    serde_json::json!({"store_code": shared.args.store, "pos_order_id": format!("{}-{n}", shared.args.run),
        "member_id": member, "occurred_at": "2026-11-20T12:30:00+08:00", "channel": "dine_in",
        "items": items, "paid_fen": paid})
    .to_string()
}

async fn one(client: &reqwest::Client, shared: &Shared) -> bool {
    let n = shared.seq.fetch_add(1, Ordering::Relaxed);
    let req = match shared.args.target {
        Target::Healthz => client.get(format!("{}/healthz", shared.args.base)),
        Target::Orders => client
            .post(format!("{}/api/v1/orders", shared.args.base))
            .bearer_auth(&shared.args.key)
            .header("content-type", "application/json")
            .body(order_body(shared, n)),
    };
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            if !status.is_success() && shared.errors.load(Ordering::Relaxed) < 3 {
                eprintln!("{status}: {}", String::from_utf8_lossy(&body));
            }
            status.is_success()
        }
        Err(e) => {
            if shared.errors.load(Ordering::Relaxed) < 3 {
                eprintln!("request failed: {e}");
            }
            false
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let members = match &args.members {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        None => vec![],
    };
    if args.target == Target::Orders && members.is_empty() {
        anyhow::bail!("--target orders needs --members FILE");
    }
    let shared = Arc::new(Shared {
        args,
        members,
        seq: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latencies: Mutex::new(Vec::with_capacity(1 << 20)),
    });
    let duration = Duration::from_secs_f64(shared.args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    match shared.args.mode {
        Mode::Max => {
            for _ in 0..shared.args.connections {
                let shared = shared.clone();
                tasks.push(tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(1)
                        .build()?;
                    let mut local = Vec::new();
                    while started.elapsed() < duration {
                        let t = Instant::now();
                        if !one(&client, &shared).await {
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        local.push(t.elapsed().as_micros() as u64);
                    }
                    shared.latencies.lock().unwrap().extend(local);
                    anyhow::Ok(())
                }));
            }
        }
        Mode::Rate => {
            // A pool of clients; each request is scheduled at start + k/rate.
            let clients: Vec<reqwest::Client> = (0..shared.args.connections)
                .map(|_| reqwest::Client::builder().build())
                .collect::<Result<_, _>>()?;
            let total = (shared.args.rate * shared.args.seconds) as u64;
            let interval = Duration::from_secs_f64(1.0 / shared.args.rate);
            for k in 0..total {
                let due = started + interval * k as u32;
                tokio::time::sleep_until(due.into()).await;
                let shared = shared.clone();
                let client = clients[k as usize % clients.len()].clone();
                tasks.push(tokio::spawn(async move {
                    if !one(&client, &shared).await {
                        shared.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let latency = due.elapsed().as_micros() as u64;
                    shared.latencies.lock().unwrap().push(latency);
                    anyhow::Ok(())
                }));
            }
        }
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *shared.latencies.lock().unwrap());
    lat.sort_unstable();
    let done = lat.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len(),
            "errors": shared.errors.load(Ordering::Relaxed),
            "seconds": elapsed,
            "rps": done / elapsed,
            "p50_ms": percentile(&lat, 0.50),
            "p90_ms": percentile(&lat, 0.90),
            "p99_ms": percentile(&lat, 0.99),
            "max_ms": percentile(&lat, 1.0),
        })
    );
    Ok(())
}
