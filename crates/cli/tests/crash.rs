//! Chaos: a POS client sends 20,000 orders (each 1–3 times, some duplicates
//! at the same moment, some attempts cut off by the client and retried),
//! a few hundred refunds and redemptions, while a supervisor kills the
//! server with SIGKILL every 0.5–3 s and starts it again on the same
//! database. Afterwards, on SQLite and on PostgreSQL:
//!
//! - `regulars verify` finds every ledger invariant intact;
//! - every order was acknowledged, earned at most once, and every answer to
//!   it (first or replay) is the same answer;
//! - every member's balance, debt and ledger entries are exactly what the
//!   acknowledged answers imply.
//!
//! `REGULARS_CRASH_ORDERS` sets the number of orders (default 20000),
//! `REGULARS_CRASH_SEED` the random seed (printed on every run).

mod support;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regulars_store::testing::{fresh_database, TempDir};
use regulars_store::Backend;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use support::{admin_key, regulars, start_server, tail, Running};

const WORKERS: usize = 16;
const MEMBERS: usize = 200;
const STORES: [&str; 2] = ["CR01", "CR02"];
const REFUNDS: usize = 300;
const REDEMPTIONS: usize = 300;
/// Multipliers of the default tier ladder, per mille.
const MULTIPLIERS: [i64; 4] = [1000, 1200, 1500, 2000];

/// The two backends run one after the other: each gets the whole machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod chaos {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::chaos(regulars_store::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::chaos(regulars_store::Backend::Postgres).await
    }
}

// ---------------------------------------------------------------- processes

// ---------------------------------------------------------------- the work

/// One order the POS sends, decided before the run.
struct OrderSpec {
    store: &'static str,
    pos: String,
    member: Option<usize>,
    body: Value,
    paid: i64,
    eligible: i64,
    sends: usize,
    together: bool,
}

enum Job {
    Order(usize),
    Refund(usize),
    Redeem(usize),
}

/// An answer the client got (a 2xx or an expected 4xx).
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    replayed: bool,
    body: Value,
    /// When the request that got this answer was first sent, and when the
    /// answer came.
    sent: Instant,
    got: Instant,
}

struct RefundRec {
    order: usize,
    id: String,
    amount: i64,
    over: bool,
    answers: Vec<Answer>,
}

struct RedeemRec {
    member: usize,
    key: String,
    points: i64,
    answers: Vec<Answer>,
}

#[derive(Default)]
struct Records {
    orders: Vec<Vec<Answer>>,
    acked: Vec<usize>,
    acked_by_member: Vec<Vec<usize>>,
    /// Fen of refunds sent or planned, per order (never past what was paid).
    refund_reserved: HashMap<usize, i64>,
    refunds: Vec<RefundRec>,
    redemptions: Vec<RedeemRec>,
    last_balance: Vec<i64>,
    skipped_refunds: usize,
}

#[derive(Default)]
struct Stats {
    attempts: AtomicU64,
    connection_errors: AtomicU64,
    server_errors: AtomicU64,
    client_aborts: AtomicU64,
    restarts: AtomicU64,
    orders_done: AtomicUsize,
    samples_5xx: Mutex<Vec<String>>,
}

struct Ctx {
    client: reqwest::Client,
    key: String,
    base: RwLock<String>,
    members: Vec<String>,
    orders: Vec<OrderSpec>,
    jobs: Vec<Job>,
    next: AtomicUsize,
    records: Mutex<Records>,
    stats: Stats,
}

/// POST until the server gives an answer that is not a connection error, a
/// cut-off or a 5xx. With `may_abort`, an attempt is now and then cut off by
/// the client after a few milliseconds (a POS that gave up waiting) and sent
/// again.
async fn post(ctx: &Ctx, path: &str, body: &Value, idem: Option<&str>, may_abort: bool) -> Answer {
    let sent = Instant::now();
    let mut backoff = Duration::from_millis(10);
    loop {
        assert!(
            sent.elapsed() < Duration::from_secs(60),
            "{path}: no answer for a minute (is the server down? see its log)"
        );
        let base = ctx.base.read().unwrap().clone();
        let abort = may_abort && rand::random::<f64>() < 0.03;
        let timeout = if abort {
            Duration::from_millis(rand::thread_rng().gen_range(1..40))
        } else {
            Duration::from_secs(60)
        };
        let mut req = ctx
            .client
            .post(format!("{base}{path}"))
            .bearer_auth(&ctx.key)
            .timeout(timeout)
            .json(body);
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        ctx.stats.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let replayed = resp
                    .headers()
                    .get("idempotent-replayed")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                resp.text().await.map(|text| (status, replayed, text))
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok((status, replayed, text)) if status < 500 => {
                return Answer {
                    status,
                    replayed,
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                    sent,
                    got: Instant::now(),
                }
            }
            Ok((status, _, text)) => {
                ctx.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                let mut samples = ctx.stats.samples_5xx.lock().unwrap();
                if samples.len() < 10 {
                    samples.push(format!("{status} {path}: {text}"));
                }
            }
            Err(e) if e.is_timeout() => {
                assert!(abort, "{path}: no answer within {timeout:?}: {e}");
                ctx.stats.client_aborts.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                ctx.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(Duration::from_millis(200));
    }
}

/// Send the same request `times` times, one after the other with a short
/// pause, or all at the same moment.
async fn send_n(
    ctx: &Ctx,
    path: &str,
    body: &Value,
    idem: Option<&str>,
    may_abort: bool,
    times: usize,
    together: bool,
) -> Vec<Answer> {
    if together && times > 1 {
        let one = || post(ctx, path, body, idem, may_abort);
        if times == 2 {
            let (a, b) = tokio::join!(one(), one());
            vec![a, b]
        } else {
            let (a, b, c) = tokio::join!(one(), one(), one());
            vec![a, b, c]
        }
    } else {
        let mut out = Vec::new();
        for i in 0..times {
            if i > 0 {
                let pause = rand::thread_rng().gen_range(0..30);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            out.push(post(ctx, path, body, idem, may_abort).await);
        }
        out
    }
}

fn note_balance(ctx: &Ctx, member: Option<usize>, body: &Value) {
    if let (Some(m), Some(b)) = (member, body["balance"].as_i64()) {
        ctx.records.lock().unwrap().last_balance[m] = b;
    }
}

async fn do_order(ctx: &Ctx, i: usize) {
    let spec = &ctx.orders[i];
    let answers = send_n(
        ctx,
        "/api/v1/orders",
        &spec.body,
        None,
        true,
        spec.sends,
        spec.together,
    )
    .await;
    for a in &answers {
        assert!(
            a.status == 201 || a.status == 200,
            "order {}/{}: {} {}",
            spec.store,
            spec.pos,
            a.status,
            a.body
        );
    }
    note_balance(ctx, spec.member, &answers[0].body);
    let mut records = ctx.records.lock().unwrap();
    records.orders[i] = answers;
    records.acked.push(i);
    if let Some(m) = spec.member {
        records.acked_by_member[m].push(i);
    }
}

/// A refund of one of the acknowledged orders (of `member`'s, if given:
/// then all that is left of it, right after the member spent their points).
async fn do_refund(ctx: &Ctx, id: String, member: Option<usize>, rng: &mut StdRng) {
    let planned = {
        let mut records = ctx.records.lock().unwrap();
        let pool = match member {
            Some(m) => &records.acked_by_member[m],
            None => &records.acked,
        };
        if pool.is_empty() {
            records.skipped_refunds += 1;
            None
        } else {
            let order = pool[rng.gen_range(0..pool.len())];
            let paid = ctx.orders[order].paid;
            let reserved = records.refund_reserved.get(&order).copied().unwrap_or(0);
            let left = paid - reserved;
            let roll: f64 = if member.is_some() { 0.3 } else { rng.gen() };
            let (amount, over) = if left <= 0 || roll < 0.08 {
                (paid + 1 + rng.gen_range(0..500), true)
            } else if roll < 0.45 {
                (left, false)
            } else {
                (rng.gen_range(1..=left), false)
            };
            if !over {
                records.refund_reserved.insert(order, reserved + amount);
            }
            Some((order, amount, over))
        }
    };
    let Some((order, amount, over)) = planned else {
        return;
    };
    let spec = &ctx.orders[order];
    let path = format!("/api/v1/orders/{}/{}/refunds", spec.store, spec.pos);
    let body = json!({"refund_id": id, "amount_fen": amount});
    let times = if rng.gen_bool(0.4) { 2 } else { 1 };
    let together = rng.gen_bool(0.3);
    let answers = send_n(ctx, &path, &body, None, true, times, together).await;
    for a in &answers {
        if over {
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (422, Some("refund_exceeds_order")),
                "over-refund {id} of {path}: {}",
                a.body
            );
        } else {
            assert!(
                a.status == 201 || a.status == 200,
                "refund {id} of {path}: {} {}",
                a.status,
                a.body
            );
        }
    }
    note_balance(ctx, spec.member, &answers[0].body);
    ctx.records.lock().unwrap().refunds.push(RefundRec {
        order,
        id,
        amount,
        over,
        answers,
    });
}

async fn do_redeem(ctx: &Ctx, r: usize, rng: &mut StdRng) {
    let member = rng.gen_range(0..MEMBERS);
    let last = ctx.records.lock().unwrap().last_balance[member].max(1);
    let points = if rng.gen_bool(0.5) {
        rng.gen_range(1..=(last / 3).max(1))
    } else {
        rng.gen_range((last * 7 / 10).max(1)..=(last * 13 / 10).max(2))
    };
    let key = format!("RK{r:05}");
    let store = STORES[rng.gen_range(0..STORES.len())];
    let body = json!({"points": points, "store_code": store, "note": key});
    let path = format!("/api/v1/members/{}/redemptions", ctx.members[member]);
    let times = rng.gen_range(1..=3);
    let together = rng.gen_bool(0.3);
    // No client cut-offs here: an answer lost by the client (not by a
    // killed server) would leave it unsure whether the points were taken.
    let answers = send_n(ctx, &path, &body, Some(&key), false, times, together).await;
    for a in &answers {
        let ok = a.status == 201
            || a.status == 200
            || (a.status == 422 && a.body["error"]["code"] == "insufficient_points");
        assert!(ok, "redemption {key}: {} {}", a.status, a.body);
    }
    let taken = answers.iter().find(|a| a.status < 300).cloned();
    ctx.records.lock().unwrap().redemptions.push(RedeemRec {
        member,
        key,
        points,
        answers,
    });
    if let Some(a) = taken {
        note_balance(ctx, Some(member), &a.body);
        // Points spent, then an order refunded: the clawback may find the
        // balance short, and the rest is taken from the next earnings.
        if rng.gen_bool(0.5) {
            do_refund(ctx, format!("RX{r:05}"), Some(member), rng).await;
        }
    }
}

async fn worker(ctx: Arc<Ctx>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let j = ctx.next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = ctx.jobs.get(j) else {
            return;
        };
        match *job {
            Job::Order(i) => {
                do_order(&ctx, i).await;
                ctx.stats.orders_done.fetch_add(1, Ordering::Relaxed);
            }
            Job::Refund(r) => do_refund(&ctx, format!("RF{r:05}"), None, &mut rng).await,
            Job::Redeem(r) => do_redeem(&ctx, r, &mut rng).await,
        }
    }
}

/// Kill the server at random moments and start it again, until `done`.
async fn supervisor(
    ctx: Arc<Ctx>,
    running: Arc<Running>,
    url: String,
    log: PathBuf,
    done: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    while !done.load(Ordering::Relaxed) {
        let wait = Duration::from_millis(rng.gen_range(500..=3000));
        let until = Instant::now() + wait;
        while Instant::now() < until && !done.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if done.load(Ordering::Relaxed) {
            return;
        }
        running.kill();
        let (url, log) = (url.clone(), log.clone());
        let (child, base) = tokio::task::spawn_blocking(move || start_server(&url, &log))
            .await
            .expect("restart");
        running.put(child);
        *ctx.base.write().unwrap() = base;
        ctx.stats.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------- the plan

fn order_count() -> usize {
    std::env::var("REGULARS_CRASH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

const MENU: [(&str, &str, &str, i64); 8] = [
    ("D001", "毛肚", "荤菜", 4_800),
    ("D002", "鸭肠", "荤菜", 3_600),
    ("D003", "嫩牛肉", "荤菜", 5_800),
    ("D004", "藕片", "素菜", 1_200),
    ("D005", "宽粉", "素菜", 1_000),
    ("D006", "锅底", "锅底", 6_800),
    ("D007", "酸梅汤", "饮品", 1_500),
    ("D008", "红糖糍粑", "小吃", 2_200),
];

fn plan_order(
    rng: &mut StdRng,
    i: usize,
    members: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> OrderSpec {
    let store = STORES[rng.gen_range(0..STORES.len())];
    let member = (!rng.gen_bool(0.02)).then(|| rng.gen_range(0..members.len()));
    let mut items = Vec::new();
    let mut counted = 0i64;
    for _ in 0..rng.gen_range(1..=4) {
        let (sku, name, category, price) = MENU[rng.gen_range(0..MENU.len())];
        let quantity = rng.gen_range(1..=3i64);
        let discount = if rng.gen_bool(0.1) {
            rng.gen_range(0..=price / 2)
        } else {
            0
        };
        let voided = rng.gen_bool(0.06);
        let comped = !voided && rng.gen_bool(0.04);
        if !voided && !comped {
            counted += (quantity * price - discount).max(0);
        }
        items.push(
            json!({"sku": sku, "name": name, "category": category, "quantity": quantity,
            "unit_price_fen": price, "discount_fen": discount, "voided": voided, "comped": comped}),
        );
    }
    let paid = if rng.gen_bool(0.15) {
        counted - rng.gen_range(0..=counted / 5)
    } else {
        counted
    };
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let at =
        (now - chrono::Duration::seconds(rng.gen_range(0..60 * 86_400))).with_timezone(&offset);
    let pos = format!("P{i:06}");
    let mut body = json!({"store_code": store, "pos_order_id": pos, "occurred_at": at.to_rfc3339(),
        "channel": "dine_in", "items": items, "paid_fen": paid});
    if let Some(m) = member {
        body["member_id"] = json!(members[m]);
    }
    let roll: f64 = rng.gen();
    let sends = if roll < 0.5 {
        1
    } else if roll < 0.8 {
        2
    } else {
        3
    };
    OrderSpec {
        store,
        pos,
        member,
        body,
        paid,
        eligible: counted.min(paid),
        sends,
        together: sends > 1 && rng.gen_bool(0.4),
    }
}

// ---------------------------------------------------------------- the test

async fn chaos(backend: Backend) {
    let _one = ONE_AT_A_TIME.lock().await;
    let seed: u64 = std::env::var("REGULARS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    let n_orders = order_count();
    println!("[{backend:?}] seed {seed} (REGULARS_CRASH_SEED), {n_orders} orders");
    let (url, dir): (String, Option<TempDir>) = fresh_database(backend).await;
    let log = std::env::temp_dir().join(format!("regulars-crash-{}.log", uuid_like(seed)));
    let _ = std::fs::remove_file(&log);
    println!(
        "[{backend:?}] server log: {} (removed when the test passes)",
        log.display()
    );

    let key = admin_key(&url);

    let running = Arc::new(Running::default());
    let (child, base) = {
        let (url, log) = (url.clone(), log.clone());
        tokio::task::spawn_blocking(move || start_server(&url, &log))
            .await
            .unwrap()
    };
    running.put(child);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(WORKERS * 2)
        .build()
        .unwrap();

    // Stores and members, before the chaos starts.
    for code in STORES {
        let r = client
            .post(format!("{base}/api/v1/stores"))
            .bearer_auth(&key)
            .json(&json!({"code": code, "name": format!("春熙路{code}店"), "region": "西南", "city": "成都"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut members = Vec::new();
    for m in 0..MEMBERS {
        let r = client
            .post(format!("{base}/api/v1/members"))
            .bearer_auth(&key)
            .json(&json!({"phone": format!("1380013{m:04}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        members.push(body["id"].as_str().unwrap().to_string());
    }

    let mut rng = StdRng::seed_from_u64(seed);
    let now = chrono::Utc::now();
    let orders: Vec<OrderSpec> = (0..n_orders)
        .map(|i| plan_order(&mut rng, i, &members, now))
        .collect();
    let mut jobs: Vec<Job> = (0..n_orders).map(Job::Order).collect();
    // Refunds and redemptions go anywhere after the first 10% of the orders.
    let start = n_orders / 10;
    for r in 0..REFUNDS {
        let at = rng.gen_range(start..=jobs.len());
        jobs.insert(at, Job::Refund(r));
    }
    for r in 0..REDEMPTIONS {
        let at = rng.gen_range(start..=jobs.len());
        jobs.insert(at, Job::Redeem(r));
    }
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        key: key.clone(),
        base: RwLock::new(base),
        members: members.clone(),
        orders,
        jobs,
        next: AtomicUsize::new(0),
        records: Mutex::new(Records {
            orders: vec![Vec::new(); n_orders],
            last_balance: vec![0; MEMBERS],
            acked_by_member: vec![Vec::new(); MEMBERS],
            ..Records::default()
        }),
        stats: Stats::default(),
    });

    // The run.
    let began = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let sup = tokio::spawn(supervisor(
        ctx.clone(),
        running.clone(),
        url.clone(),
        log.clone(),
        done.clone(),
        seed ^ 0x5eed,
    ));
    let progress = {
        let (ctx, done) = (ctx.clone(), done.clone());
        tokio::spawn(async move {
            let mut last = 0;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let d = ctx.stats.orders_done.load(Ordering::Relaxed);
                println!(
                    "[{backend:?}] {:>5.0}s  {d} orders ({:.0}/s last 10 s), {} restarts",
                    began.elapsed().as_secs_f64(),
                    (d - last) as f64 / 10.0,
                    ctx.stats.restarts.load(Ordering::Relaxed)
                );
                last = d;
            }
        })
    };
    let handles: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(ctx.clone(), seed.wrapping_add(w as u64 + 1))))
        .collect();
    let mut failure = None;
    for h in handles {
        if let Err(e) = h.await {
            failure.get_or_insert(e);
        }
    }
    done.store(true, Ordering::Relaxed);
    sup.await.unwrap();
    progress.abort();
    let elapsed = began.elapsed();
    running.kill();
    if let Some(e) = failure {
        eprintln!("server log (tail):\n{}", tail(&log));
        std::panic::resume_unwind(e.into_panic());
    }

    let s = &ctx.stats;
    println!(
        "[{backend:?}] {n_orders} orders in {:.1}s = {:.0} orders/s ({:.0} requests/s); {} restarts, \
         {} attempts, {} connection errors, {} client cut-offs, {} 5xx",
        elapsed.as_secs_f64(),
        n_orders as f64 / elapsed.as_secs_f64(),
        s.attempts.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        s.restarts.load(Ordering::Relaxed),
        s.attempts.load(Ordering::Relaxed),
        s.connection_errors.load(Ordering::Relaxed),
        s.client_aborts.load(Ordering::Relaxed),
        s.server_errors.load(Ordering::Relaxed),
    );
    for sample in s.samples_5xx.lock().unwrap().iter() {
        println!("[{backend:?}] 5xx: {sample}");
    }

    // With the server stopped: verify.
    let out = regulars(&url, &["verify"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "regulars verify failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "[{backend:?}] verify: {}",
        report.lines().next().unwrap_or("")
    );
    let orders_line = report.lines().next().unwrap_or("");
    let counted = orders_line
        .trim_end_matches(" orders")
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(counted, Some(n_orders), "orders stored: {orders_line}");

    // Restart once and compare with what the client was told.
    let (child, base) = {
        let (url, log) = (url.clone(), log.clone());
        tokio::task::spawn_blocking(move || start_server(&url, &log))
            .await
            .unwrap()
    };
    running.put(child);
    check(&ctx, &client, &base, &key, backend).await;
    running.kill();
    let _ = std::fs::remove_file(&log);
    drop(dir);
}

fn uuid_like(seed: u64) -> String {
    format!("{}-{seed:x}", std::process::id())
}

/// Everything the client was told, against what the server now says.
async fn check(ctx: &Ctx, client: &reqwest::Client, base: &str, key: &str, backend: Backend) {
    let records = std::mem::take(&mut *ctx.records.lock().unwrap());
    #[derive(Default, Debug)]
    struct Expect {
        earned: i64,
        earning_orders: BTreeSet<String>,
        reversed: i64,
        shortfall: i64,
        redeemed: i64,
        redeemed_keys: BTreeSet<String>,
        /// The balance each answer told, by order (that earned), by
        /// redemption key, and (points taken, balance) by refunded order.
        told_orders: HashMap<String, i64>,
        told_redemptions: HashMap<String, i64>,
        told_refunds: HashMap<String, Vec<(i64, i64)>>,
    }
    let mut expect: Vec<Expect> = (0..MEMBERS).map(|_| Expect::default()).collect();

    // Orders: acknowledged, one first answer at most, every answer the same.
    let mut earned_by_order = vec![0i64; ctx.orders.len()];
    let (mut total_sends, mut replays) = (0, 0);
    for (i, spec) in ctx.orders.iter().enumerate() {
        let answers = &records.orders[i];
        assert!(
            !answers.is_empty(),
            "order {} was never acknowledged",
            spec.pos
        );
        total_sends += answers.len();
        let first = &answers[0].body;
        let firsts = answers.iter().filter(|a| a.status == 201).count();
        assert!(
            firsts <= 1,
            "order {} was created {firsts} times: {answers:?}",
            spec.pos
        );
        for a in answers {
            assert_eq!(&a.body, first, "order {}: answers differ", spec.pos);
            assert_eq!(
                a.status == 200,
                a.replayed,
                "order {}: replay header",
                spec.pos
            );
            replays += a.replayed as usize;
        }
        let points = first["points_earned"].as_i64().expect("points_earned");
        match spec.member {
            Some(m) => {
                assert_eq!(first["member_id"].as_str(), Some(ctx.members[m].as_str()));
                let yuan = spec.eligible / 100;
                assert!(
                    MULTIPLIERS.iter().any(|p| yuan * p / 1000 == points),
                    "order {}: {points} points for ¥{yuan} is no tier's earning",
                    spec.pos
                );
                expect[m].earned += points;
                if points > 0 {
                    let at = format!("{}/{}", spec.store, spec.pos);
                    let told = first["balance"].as_i64().expect("balance");
                    expect[m].earning_orders.insert(at.clone());
                    expect[m].told_orders.insert(at, told);
                }
            }
            None => assert_eq!(points, 0, "order {} without a member earned", spec.pos),
        }
        earned_by_order[i] = points;
    }

    // Refunds: every answer the same; reversal proportional on the running total.
    let mut refunded: HashMap<usize, (i64, i64)> = HashMap::new();
    let (mut n_refunds, mut n_over, mut total_taken, mut total_short) = (0, 0, 0i64, 0i64);
    for rf in &records.refunds {
        if rf.over {
            n_over += 1;
            continue;
        }
        n_refunds += 1;
        let first = &rf.answers[0].body;
        let firsts = rf.answers.iter().filter(|a| a.status == 201).count();
        assert!(firsts <= 1, "refund {} applied {firsts} times", rf.id);
        for a in &rf.answers {
            assert_eq!(&a.body, first, "refund {}: answers differ", rf.id);
        }
        let reversed = first["points_reversed"].as_i64().unwrap();
        let short = first["shortfall"].as_i64().unwrap();
        assert!((0..=reversed).contains(&short), "refund {}: {first}", rf.id);
        let e = refunded.entry(rf.order).or_default();
        e.0 += rf.amount;
        e.1 += reversed;
        if let Some(m) = ctx.orders[rf.order].member {
            expect[m].reversed += reversed;
            expect[m].shortfall += short;
            if reversed > short {
                let at = format!(
                    "{}/{}",
                    ctx.orders[rf.order].store, ctx.orders[rf.order].pos
                );
                let told = first["balance"].as_i64().expect("balance");
                let list = expect[m].told_refunds.entry(at).or_default();
                list.push((reversed - short, told));
                list.sort();
            }
        }
        total_taken += reversed - short;
        total_short += short;
    }
    for (order, (amount, reversed)) in &refunded {
        let spec = &ctx.orders[*order];
        let earned = earned_by_order[*order];
        assert!(*amount <= spec.paid);
        assert_eq!(
            *reversed,
            (earned as i128 * *amount as i128 / spec.paid as i128) as i64,
            "order {}: earned {earned}, paid {}, refunded {amount}",
            spec.pos,
            spec.paid
        );
    }

    // Redemptions: one effect per key; once taken, always the same answer.
    let (mut n_redeemed, mut n_short) = (0, 0);
    for rd in &records.redemptions {
        let success = rd
            .answers
            .iter()
            .filter(|a| a.status < 300)
            .min_by_key(|a| a.got);
        for a in rd.answers.iter().filter(|a| a.status < 300) {
            assert_eq!(
                Some(&a.body),
                success.map(|s| &s.body),
                "redemption {}: answers differ",
                rd.key
            );
        }
        let firsts = rd.answers.iter().filter(|a| a.status == 201).count();
        assert!(firsts <= 1, "redemption {} applied {firsts} times", rd.key);
        match success {
            Some(s) => {
                for a in &rd.answers {
                    assert!(
                        a.status < 300 || a.sent < s.got,
                        "redemption {}: refused after it was taken: {:?}",
                        rd.key,
                        a.body
                    );
                }
                assert_eq!(s.body["points"].as_i64(), Some(rd.points));
                expect[rd.member].redeemed += rd.points;
                expect[rd.member].redeemed_keys.insert(rd.key.clone());
                let told = s.body["balance"].as_i64().expect("balance");
                expect[rd.member]
                    .told_redemptions
                    .insert(rd.key.clone(), told);
                n_redeemed += 1;
            }
            None => n_short += 1,
        }
    }

    // What the server says now, member by member.
    let (mut sum_balance, mut sum_owed) = (0i64, 0i64);
    for (m, id) in ctx.members.iter().enumerate() {
        let mut entries: Vec<Value> = Vec::new();
        let mut before: Option<String> = None;
        let (balance, owed) = loop {
            let mut url = format!("{base}/api/v1/members/{id}/points?limit=200");
            if let Some(b) = &before {
                url.push_str(&format!("&before={b}"));
            }
            let page: Value = client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            entries.extend(page["entries"].as_array().unwrap().iter().cloned());
            match page["next_before"].as_str() {
                Some(b) => before = Some(b.to_string()),
                None => {
                    break (
                        page["balance"].as_i64().unwrap(),
                        page["owed"].as_i64().unwrap(),
                    )
                }
            }
        };
        let e = &expect[m];
        let sum_of = |kind: &str| -> i64 {
            entries
                .iter()
                .filter(|x| x["kind"] == kind)
                .map(|x| x["points"].as_i64().unwrap())
                .sum()
        };
        let earn_refs: BTreeSet<String> = entries
            .iter()
            .filter(|x| x["kind"] == "earn")
            .map(|x| x["order_ref"].as_str().unwrap_or("").to_string())
            .collect();
        let earn_count = entries.iter().filter(|x| x["kind"] == "earn").count();
        let redeem_reasons: Vec<&str> = entries
            .iter()
            .filter(|x| x["kind"] == "redeem")
            .map(|x| x["reason"].as_str().unwrap_or(""))
            .collect();
        let all: i64 = entries.iter().map(|x| x["points"].as_i64().unwrap()).sum();
        let who = format!("member {m} ({id}): {e:?}, balance {balance}, owed {owed}");
        assert_eq!(sum_of("earn"), e.earned, "earned, {who}");
        assert_eq!(earn_count, e.earning_orders.len(), "earn entries, {who}");
        assert_eq!(earn_refs, e.earning_orders, "orders that earned, {who}");
        assert_eq!(-sum_of("redeem"), e.redeemed, "redeemed, {who}");
        assert_eq!(
            redeem_reasons.len(),
            e.redeemed_keys.len(),
            "redemptions, {who}"
        );
        for k in &e.redeemed_keys {
            assert!(
                redeem_reasons.iter().any(|r| r.contains(k.as_str())),
                "redemption {k} missing, {who}"
            );
        }
        // Refund clawbacks and shortfalls settled from later earnings.
        assert_eq!(-sum_of("reverse"), e.reversed - owed, "reversed, {who}");
        assert_eq!(all, balance, "balance vs entries, {who}");
        assert!(balance >= 0 && (0..=e.shortfall).contains(&owed), "{who}");
        assert_eq!(balance - owed, e.earned - e.redeemed - e.reversed, "{who}");
        for x in &entries {
            let kind = x["kind"].as_str().unwrap();
            assert!(
                ["earn", "redeem", "reverse"].contains(&kind),
                "unexpected {kind} entry, {who}: {x}"
            );
        }
        // Replayed in the ledger's order, the entries give, after each
        // operation, the balance its answer told.
        let mut running = 0;
        let mut refunds: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        let oldest_first: Vec<&Value> = entries.iter().rev().collect();
        let mut k = 0;
        while k < oldest_first.len() {
            let x = oldest_first[k];
            running += x["points"].as_i64().unwrap();
            let at = x["order_ref"].as_str().unwrap_or("").to_string();
            match x["kind"].as_str().unwrap() {
                "earn" => {
                    // A shortfall settled from this earning: the next entry,
                    // same order, same time.
                    if let Some(y) = oldest_first.get(k + 1) {
                        if y["kind"] == "reverse"
                            && y["order_ref"] == x["order_ref"]
                            && y["at"] == x["at"]
                        {
                            running += y["points"].as_i64().unwrap();
                            k += 1;
                        }
                    }
                    assert_eq!(
                        Some(&running),
                        e.told_orders.get(&at),
                        "balance told by order {at}, {who}"
                    );
                }
                "redeem" => {
                    let reason = x["reason"].as_str().unwrap_or("");
                    let told = e
                        .told_redemptions
                        .iter()
                        .find(|(key, _)| reason.contains(key.as_str()))
                        .map(|(_, b)| *b);
                    assert_eq!(
                        Some(running),
                        told,
                        "balance told by redemption {reason}, {who}"
                    );
                }
                "reverse" => {
                    let list = refunds.entry(at).or_default();
                    list.push((-x["points"].as_i64().unwrap(), running));
                    list.sort();
                }
                _ => {}
            }
            k += 1;
        }
        assert_eq!(
            refunds, e.told_refunds,
            "refund clawbacks and balances told, {who}"
        );
        sum_balance += balance;
        sum_owed += owed;
    }
    let earned: i64 = expect.iter().map(|e| e.earned).sum();
    let redeemed: i64 = expect.iter().map(|e| e.redeemed).sum();
    let settled = total_short - sum_owed;
    assert_eq!(
        sum_balance,
        earned - total_taken - redeemed - settled,
        "Σ balance = Σ earned − Σ refund clawback − Σ redeemed − Σ shortfall settled"
    );
    println!(
        "[{backend:?}] checked: {} orders ({total_sends} sends, {replays} replays), {n_refunds} refunds \
         (+{n_over} refused over-refunds, {} skipped), {n_redeemed} redemptions ({n_short} refused for \
         points); Σ balance {sum_balance} = earned {earned} − clawback {total_taken} − redeemed {redeemed} \
         − settled {settled}; still owed {sum_owed}",
        ctx.orders.len(),
        records.skipped_refunds,
    );
}
