//! The points ledger against an independent model, on SQLite and PostgreSQL.
//!
//! proptest draws sequences of 20–60 operations — orders (voided, comped and
//! staff-meal lines, discounts, underpaid and tipped bills, now and then no
//! member), replays, replays with another body, two identical orders at the
//! same moment, partial, full and excessive refunds and their replays,
//! redemptions that may ask for more than the member can use (also twice at
//! once), transfers between members, and the clock moved forward with the
//! jobs run (point expiry, monthly tier review) — sends them to the real
//! server over HTTP and, after every operation, compares each member's
//! balance, debt, tier, grace mark, expiring points and ledger entries with a
//! model written here in plain Rust. At the end `verify` must pass.
//!
//! The model shares no code with the server: lots consumed soonest-expiring
//! first (a refund clawback takes the order's own lot first and may reach
//! points past their date the job has not removed yet; redemptions and
//! transfers only use points still valid at the real time); refunds reversed
//! in proportion to the refunded share, on the running total, taken from the
//! balance down to zero, the rest owed and taken from the next earning;
//! tiers on rolling 12-month spend, upgraded at once with the crossing order
//! earning at the old multiplier, reviewed by the job with one month of grace
//! before a downgrade.
//!
//! The simulated clock starts 380 days before the real time and moves
//! forward past it (the last step is always 400 days on), so points expire
//! at the job's time, some are already past their date at the real time
//! without the job having run, and tiers rise, go into grace and fall.
//! `PROPTEST_CASES` sets the number of cases per backend (default 32); run
//! with `--nocapture` to see what each case exercised.

use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use regulars_core::access::Role;
use regulars_core::privacy::MasterKey;
use regulars_server::app::{auth, jobs, verify};
use regulars_server::{Regulars, Server};
use regulars_store::testing::{fresh_database, TempDir};
use regulars_store::{Backend, Db};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

// ---------------------------------------------------------------- the app

struct TestApp {
    base: String,
    client: reqwest::Client,
    admin_key: String,
    regulars: Regulars,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: Option<TempDir>,
}

async fn spawn_app(backend: Backend) -> TestApp {
    let (database_url, dir) = fresh_database(backend).await;
    let db = Db::connect(&database_url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let regulars = Regulars::new(
        db,
        MasterKey::generate().keyring(),
        chrono_tz::Asia::Shanghai,
    );
    let (_, admin_key) = auth::create_api_key(&regulars, "cli", Role::HqAdmin, None, "test admin")
        .await
        .expect("admin key");
    let server = Server::bind("127.0.0.1:0", regulars.clone())
        .await
        .expect("bind");
    let base = format!("http://{}", server.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        admin_key,
        regulars,
        shutdown: Some(tx),
        _dir: dir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct Reply {
    status: u16,
    replayed: bool,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_key);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let replayed = resp
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let text = resp.text().await.expect("body");
        Reply {
            status,
            replayed,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> Reply {
        self.call("POST", path, Some(body), key).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None, None).await
    }

    async fn close(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.regulars.db.read.close().await;
        self.regulars.db.write.close().await;
    }
}

// ---------------------------------------------------------------- time

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .expect("a valid instant")
}

fn add_months(ms: i64, months: u32) -> i64 {
    utc(ms)
        .checked_add_months(Months::new(months))
        .unwrap()
        .timestamp_millis()
}

fn sub_months(ms: i64, months: u32) -> i64 {
    utc(ms)
        .checked_sub_months(Months::new(months))
        .unwrap()
        .timestamp_millis()
}

fn local_date(ms: i64) -> String {
    utc(ms)
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string()
}

/// Midnight starting the chain's calendar month of `ms`.
fn local_month_start(ms: i64) -> i64 {
    let date = utc(ms)
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .with_day(1)
        .unwrap();
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .unwrap()
        .timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    utc(ms)
        .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339()
}

// ---------------------------------------------------------------- the model

const TIERS: [&str; 4] = ["regular", "silver", "gold", "black_gold"];
const THRESHOLDS: [i64; 4] = [0, 50_000, 200_000, 500_000];
const MULTIPLIERS: [i64; 4] = [1000, 1200, 1500, 2000];
const EXPIRY_MONTHS: [u32; 4] = [12, 12, 18, 24];
const MEMBERS: usize = 3;
const STORES: [&str; 2] = ["S1", "S2"];

fn tier_for(spend: i64) -> usize {
    (0..4).rev().find(|&t| spend >= THRESHOLDS[t]).unwrap_or(0)
}

#[derive(Debug, Clone)]
struct Lot {
    id: u64,
    remaining: i64,
    expires_at: i64,
}

#[derive(Debug, Default, Clone)]
struct MemberModel {
    id: String,
    lots: Vec<Lot>,
    balance: i64,
    debt: i64,
    tier: usize,
    grace_since: Option<i64>,
    /// (kind, signed points), oldest first.
    entries: Vec<(&'static str, i64)>,
}

#[derive(Debug, Clone)]
struct OrderModel {
    store: &'static str,
    pos: String,
    member: Option<usize>,
    body: Value,
    paid: i64,
    eligible: i64,
    qualifying: i64,
    at: i64,
    earned: i64,
    lot: Option<u64>,
    refunded: i64,
    receipt: Value,
    /// The server has it (an order sent together with another operation
    /// is not, until the model applies it).
    done: bool,
}

#[derive(Clone)]
struct Recorded {
    path: String,
    body: Value,
    key: Option<String>,
    receipt: Value,
}

/// What a case exercised (printed with `--nocapture`).
#[derive(Debug, Default, Clone)]
struct Seen {
    orders: usize,
    upgrades: usize,
    settlements: usize,
    refunds: usize,
    shortfalls: usize,
    refused_refunds: usize,
    redemptions: usize,
    refused_redemptions: usize,
    /// Refused though the balance held enough: points past their date.
    refused_with_balance: usize,
    transfers: usize,
    refused_transfers: usize,
    expiries: usize,
    graces: usize,
    downgrades: usize,
    /// Operations sent together, and how often the second one sent was
    /// the one the server ran first.
    together: usize,
    second_first: usize,
}

#[derive(Clone)]
struct Model {
    seen: Seen,
    members: Vec<MemberModel>,
    orders: Vec<OrderModel>,
    refunds: Vec<Recorded>,
    redemptions: Vec<Recorded>,
    next_lot: u64,
    /// Idempotency keys handed out.
    keys: usize,
    /// The simulated clock: orders happen at it, the jobs run at it.
    now: i64,
    /// The real time when the case began: redemptions and transfers use
    /// points still valid then; `expiring` lists what is due after it.
    real: i64,
}

impl Model {
    /// Qualifying spend of member `m`'s orders in `(after, upto]`.
    fn spend(&self, m: usize, after: i64, upto: i64) -> i64 {
        self.orders
            .iter()
            .filter(|o| o.done && o.member == Some(m) && o.at > after && o.at <= upto)
            .map(|o| o.qualifying)
            .sum()
    }

    fn usable(&self, m: usize) -> i64 {
        self.members[m]
            .lots
            .iter()
            .filter(|l| l.expires_at > self.real)
            .map(|l| l.remaining)
            .sum()
    }

    fn open_lot(&mut self, m: usize, points: i64, expires_at: i64) -> u64 {
        self.next_lot += 1;
        self.members[m].lots.push(Lot {
            id: self.next_lot,
            remaining: points,
            expires_at,
        });
        self.next_lot
    }

    /// Take up to `points`, `prefer`'s lot first, then soonest-expiring
    /// (ties: oldest lot). Returns (points, expiry) per lot taken from.
    fn take(
        &mut self,
        m: usize,
        points: i64,
        prefer: Option<u64>,
        usable_only: bool,
    ) -> Vec<(i64, i64)> {
        let real = self.real;
        let lots = &mut self.members[m].lots;
        let mut order: Vec<usize> = (0..lots.len())
            .filter(|&i| lots[i].remaining > 0 && (!usable_only || lots[i].expires_at > real))
            .collect();
        order.sort_by_key(|&i| (Some(lots[i].id) != prefer, lots[i].expires_at, lots[i].id));
        let mut left = points;
        let mut taken = Vec::new();
        for i in order {
            if left == 0 {
                break;
            }
            let t = lots[i].remaining.min(left);
            lots[i].remaining -= t;
            left -= t;
            taken.push((t, lots[i].expires_at));
        }
        taken
    }

    /// An order of member `m` (already pushed as `self.orders[oi]`):
    /// (points earned, balance, tier after).
    fn earn(&mut self, oi: usize) -> (i64, Option<i64>, Option<usize>) {
        let (member, eligible, at) = {
            let o = &self.orders[oi];
            (o.member, o.eligible, o.at)
        };
        let Some(m) = member else {
            self.orders[oi].done = true;
            return (0, None, None);
        };
        let before = self.members[m].tier;
        let points = eligible / 100 * MULTIPLIERS[before] / 1000;
        if points > 0 {
            let lot = self.open_lot(m, points, add_months(at, EXPIRY_MONTHS[before]));
            self.orders[oi].lot = Some(lot);
            let mm = &mut self.members[m];
            mm.entries.push(("earn", points));
            mm.balance += points;
            let settle = mm.debt.min(points);
            if settle > 0 {
                self.seen.settlements += 1;
                mm.lots.last_mut().unwrap().remaining -= settle;
                mm.balance -= settle;
                mm.debt -= settle;
                mm.entries.push(("reverse", -settle));
            }
        }
        self.orders[oi].earned = points;
        let spend = self.spend(m, sub_months(at, 12), at) + eligible;
        self.orders[oi].done = true;
        let after = before.max(tier_for(spend));
        self.seen.orders += 1;
        self.seen.upgrades += (after > before) as usize;
        self.members[m].tier = after;
        (points, Some(self.members[m].balance), Some(after))
    }

    /// A refund of `amount` on order `oi`: (reversed, shortfall, balance), or
    /// `None` when it is more than is left to refund.
    fn refund(&mut self, oi: usize, amount: i64) -> Option<(i64, i64, Option<i64>)> {
        let (paid, earned, refunded, member, lot, eligible) = {
            let o = &self.orders[oi];
            (o.paid, o.earned, o.refunded, o.member, o.lot, o.eligible)
        };
        if refunded + amount > paid {
            self.seen.refused_refunds += 1;
            return None;
        }
        self.seen.refunds += 1;
        let share = |fen: i64| (earned as i128 * fen as i128 / paid as i128) as i64;
        let reversed = if paid > 0 && earned > 0 {
            share(refunded + amount) - share(refunded)
        } else {
            0
        };
        let total = refunded + amount;
        self.orders[oi].refunded = total;
        self.orders[oi].qualifying =
            eligible - (eligible as i128 * total as i128 / paid.max(1) as i128) as i64;
        let Some(m) = member else {
            return Some((reversed, 0, None));
        };
        let taken = reversed.min(self.members[m].balance.max(0));
        let got: i64 = self.take(m, taken, lot, false).iter().map(|t| t.0).sum();
        assert_eq!(got, taken, "model: the balance is the lots' sum");
        let mm = &mut self.members[m];
        if taken > 0 {
            mm.entries.push(("reverse", -taken));
        }
        mm.balance -= taken;
        mm.debt += reversed - taken;
        self.seen.shortfalls += (reversed > taken) as usize;
        Some((reversed, reversed - taken, Some(mm.balance)))
    }

    fn redeem(&mut self, m: usize, points: i64) -> Option<i64> {
        if self.usable(m) < points {
            self.seen.refused_redemptions += 1;
            self.seen.refused_with_balance += (self.members[m].balance >= points) as usize;
            return None;
        }
        self.seen.redemptions += 1;
        self.take(m, points, None, true);
        let mm = &mut self.members[m];
        mm.balance -= points;
        mm.entries.push(("redeem", -points));
        Some(mm.balance)
    }

    fn transfer(&mut self, from: usize, to: usize, points: i64) -> Option<(i64, i64)> {
        if self.usable(from) < points {
            self.seen.refused_transfers += 1;
            return None;
        }
        self.seen.transfers += 1;
        let taken = self.take(from, points, None, true);
        self.members[from].balance -= points;
        self.members[from].entries.push(("transfer_out", -points));
        for (p, expires_at) in taken {
            self.open_lot(to, p, expires_at);
            self.members[to].entries.push(("transfer_in", p));
        }
        self.members[to].balance += points;
        Some((self.members[from].balance, self.members[to].balance))
    }

    /// The jobs at `self.now`: expiry, then the tier review. Returns
    /// (points expired, graces started, downgrades).
    fn run_jobs(&mut self) -> (i64, u64, u64) {
        let now = self.now;
        let mut expired = 0;
        for mm in &mut self.members {
            let mut points = 0;
            for lot in mm.lots.iter_mut().filter(|l| l.expires_at <= now) {
                points += lot.remaining;
                lot.remaining = 0;
            }
            if points > 0 {
                mm.balance -= points;
                mm.entries.push(("expire", -points));
                expired += points;
                self.seen.expiries += 1;
            }
        }
        let period_start = local_month_start(now);
        let (mut graces, mut downgrades) = (0, 0);
        for m in 0..self.members.len() {
            let (tier, grace) = (self.members[m].tier, self.members[m].grace_since);
            if tier == 0 && grace.is_none() {
                continue;
            }
            let reached = tier_for(self.spend(m, sub_months(now, 12), now));
            let mm = &mut self.members[m];
            if reached >= tier {
                mm.tier = reached;
                mm.grace_since = None;
            } else if grace.is_some_and(|g| g < period_start) {
                mm.tier = reached;
                mm.grace_since = None;
                downgrades += 1;
                self.seen.downgrades += 1;
            } else if grace.is_none() {
                mm.grace_since = Some(now);
                self.seen.graces += 1;
                graces += 1;
            }
        }
        (expired, graces, downgrades)
    }

    /// In grace, and the spend of the 12 months up to the real time does
    /// not hold the tier.
    fn downgrade_pending(&self, m: usize) -> bool {
        let held = tier_for(self.spend(m, sub_months(self.real, 12), self.real));
        self.members[m].grace_since.is_some() && held < self.members[m].tier
    }

    /// Points still to expire after the real time, by local date.
    fn expiring(&self, m: usize) -> Vec<(String, i64)> {
        let mut by_day: BTreeMap<i64, i64> = BTreeMap::new();
        for l in &self.members[m].lots {
            if l.remaining > 0 && l.expires_at > self.real {
                *by_day.entry(l.expires_at).or_default() += l.remaining;
            }
        }
        let mut out: Vec<(String, i64)> = Vec::new();
        for (at, points) in by_day {
            let on = local_date(at);
            match out.last_mut() {
                Some(last) if last.0 == on => last.1 += points,
                _ => out.push((on, points)),
            }
        }
        out
    }
}

// ---------------------------------------------------------------- operations

#[derive(Debug, Clone)]
struct LineSpec {
    price: i64,
    qty: i64,
    discount_pm: i64,
    /// 0 counts, 1 voided, 2 comped, 3 staff meal.
    flag: u8,
}

#[derive(Debug, Clone)]
enum Paid {
    Exact,
    /// Per mille of the bill (a discount at the till).
    Less(i64),
    /// A tip on top.
    More(i64),
    Zero,
}

#[derive(Debug, Clone)]
enum Points {
    /// Per mille of the points the member can use (at least 1).
    Share(i64),
    /// Every point the member can use.
    All,
    /// The whole balance (which may hold points past their date).
    Balance,
    /// More than the member can use.
    Over(i64),
}

#[derive(Debug, Clone)]
enum RefundAmount {
    /// Per mille of what is left to refund (at least 1 fen).
    Part(i64),
    Rest,
    Over(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Order {
        member: Option<usize>,
        lines: Vec<LineSpec>,
        paid: Paid,
        /// The clock moves on this much after the order; negative: the
        /// order happened this long ago (a till that was offline sends it
        /// late) and the clock stays.
        gap_minutes: i64,
    },
    DoubleSend {
        member: usize,
        lines: Vec<LineSpec>,
        paid: Paid,
        gap_minutes: i64,
    },
    ReplayOrder(Index),
    ConflictOrder(Index),
    Refund(Index, RefundAmount),
    ReplayRefund(Index),
    Redeem(usize, Points),
    DoubleRedeem(usize, Points),
    ReplayRedeem(Index),
    /// Two of Order, Refund, Redeem, Transfer at the same moment: the
    /// outcome must be that of one of the two orders of running them.
    Together(Box<Op>, Box<Op>),
    Transfer(usize, usize, Points),
    Advance {
        days: i64,
        minutes: i64,
    },
}

fn line() -> impl Strategy<Value = LineSpec> {
    (
        100i64..=40_000,
        1i64..=3,
        prop_oneof![4 => Just(0i64), 1 => 1i64..=500],
        prop_oneof![12 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
    )
        .prop_map(|(price, qty, discount_pm, flag)| LineSpec {
            price,
            qty,
            discount_pm,
            flag,
        })
}

fn paid() -> impl Strategy<Value = Paid> {
    prop_oneof![
        12 => Just(Paid::Exact),
        3 => (500i64..1000).prop_map(Paid::Less),
        2 => (1i64..5_000).prop_map(Paid::More),
        1 => Just(Paid::Zero),
    ]
}

fn points() -> impl Strategy<Value = Points> {
    prop_oneof![
        4 => (0i64..=1000).prop_map(Points::Share),
        3 => Just(Points::All),
        1 => Just(Points::Balance),
        2 => (1i64..=100).prop_map(Points::Over),
    ]
}

fn order_op() -> impl Strategy<Value = Op> {
    (
        prop_oneof![19 => (0..MEMBERS).prop_map(Some), 1 => Just(None)],
        prop::collection::vec(line(), 1..=4),
        paid(),
        prop_oneof![8 => 0i64..=5_760, 1 => -288_000i64..=-1_440],
    )
        .prop_map(|(member, lines, paid, gap_minutes)| Op::Order {
            member,
            lines,
            paid,
            gap_minutes,
        })
}

fn refund_op() -> impl Strategy<Value = Op> {
    (
        any::<Index>(),
        prop_oneof![
            3 => (1i64..=1000).prop_map(RefundAmount::Part),
            2 => Just(RefundAmount::Rest),
            1 => (1i64..=500).prop_map(RefundAmount::Over),
        ],
    )
        .prop_map(|(i, a)| Op::Refund(i, a))
}

fn redeem_op() -> impl Strategy<Value = Op> {
    (0..MEMBERS, points()).prop_map(|(m, p)| Op::Redeem(m, p))
}

fn transfer_op() -> impl Strategy<Value = Op> {
    (0..MEMBERS, 1..MEMBERS, points()).prop_map(|(m, d, p)| Op::Transfer(m, (m + d) % MEMBERS, p))
}

/// The operations that may run together with another.
fn solo_op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => order_op(), 2 => refund_op(), 2 => redeem_op(), 2 => transfer_op()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => order_op(),
        5 => (0..MEMBERS, prop::collection::vec(line(), 1..=4), paid(), 0i64..=5_760)
            .prop_map(|(member, lines, paid, gap_minutes)| Op::DoubleSend { member, lines, paid, gap_minutes }),
        4 => any::<Index>().prop_map(Op::ReplayOrder),
        2 => any::<Index>().prop_map(Op::ConflictOrder),
        12 => refund_op(),
        3 => any::<Index>().prop_map(Op::ReplayRefund),
        10 => redeem_op(),
        3 => (0..MEMBERS, points()).prop_map(|(m, p)| Op::DoubleRedeem(m, p)),
        3 => any::<Index>().prop_map(Op::ReplayRedeem),
        8 => transfer_op(),
        8 => (solo_op(), solo_op()).prop_map(|(a, b)| Op::Together(Box::new(a), Box::new(b))),
        8 => (prop_oneof![1 => Just(0i64), 9 => 15i64..=150], 0i64..1_440)
            .prop_map(|(days, minutes)| Op::Advance { days, minutes }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 20..=60)
}

// ---------------------------------------------------------------- running

type Outcome = Result<(), String>;

macro_rules! same {
    ($got:expr, $want:expr, $($ctx:tt)+) => {{
        let (got, want) = (&$got, &$want);
        if got != want {
            return Err(format!("{}: server {:?}, model {:?}", format!($($ctx)+), got, want));
        }
    }};
}

macro_rules! ensure {
    ($cond:expr, $($ctx:tt)+) => {{
        if !$cond {
            return Err(format!($($ctx)+));
        }
    }};
}

fn resolve_points(model: &Model, m: usize, p: &Points) -> i64 {
    let usable = model.usable(m);
    match p {
        Points::Share(pm) => (usable * pm / 1000).max(1),
        Points::All => usable.max(1),
        Points::Balance => model.members[m].balance.max(1),
        Points::Over(x) => usable + x,
    }
}

/// Build and record a new order in the model (not yet earned).
fn new_order(
    model: &mut Model,
    member: Option<usize>,
    lines: &[LineSpec],
    paid: &Paid,
    gap_minutes: i64,
) -> usize {
    // Keep every expiry date clear of the real time by an hour either way,
    // so that the real clock moving during the case changes nothing.
    // Likewise the 12-month window the tier view counts spend over at the
    // real time.
    let mut at = model.now + gap_minutes.min(0) * MINUTE;
    let window_start = sub_months(model.real, 12);
    while EXPIRY_MONTHS
        .iter()
        .any(|&months| (add_months(at, months) - model.real).abs() < HOUR)
        || (at - model.real).abs() < HOUR
        || (at - window_start).abs() < HOUR
    {
        at += 3 * HOUR;
    }
    if gap_minutes >= 0 {
        model.now = at + gap_minutes * MINUTE;
    }
    let n = model.orders.len();
    let store = STORES[n % STORES.len()];
    let pos = format!("P{n:04}");
    let mut counted = 0;
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let gross = l.price * l.qty;
            let discount = gross * l.discount_pm / 1000;
            if l.flag == 0 {
                counted += gross - discount;
            }
            json!({"sku": format!("D{i}{}", l.price % 7), "name": "毛肚", "category": "荤菜",
                "quantity": l.qty, "unit_price_fen": l.price, "discount_fen": discount,
                "voided": l.flag == 1, "comped": l.flag == 2, "staff_meal": l.flag == 3})
        })
        .collect();
    let paid_fen = match paid {
        Paid::Exact => counted,
        Paid::Less(pm) => counted * pm / 1000,
        Paid::More(x) => counted + x,
        Paid::Zero => 0,
    };
    let mut body = json!({"store_code": store, "pos_order_id": pos, "occurred_at": rfc3339(at),
        "channel": "dine_in", "items": items, "paid_fen": paid_fen});
    if let Some(m) = member {
        body["member_id"] = json!(model.members[m].id);
    }
    model.orders.push(OrderModel {
        store,
        pos,
        member,
        body,
        paid: paid_fen,
        eligible: counted.min(paid_fen),
        qualifying: counted.min(paid_fen),
        at,
        earned: 0,
        lot: None,
        refunded: 0,
        receipt: Value::Null,
        done: false,
    });
    n
}

/// A request made from the model's state, and what it does to the model.
struct Call {
    path: String,
    body: Value,
    key: Option<String>,
    effect: Effect,
}

enum Effect {
    Order(usize),
    Refund(usize, i64),
    Redeem(usize, i64),
    Transfer(usize, usize, i64),
}

/// The request for an Order, Refund, Redeem or Transfer (`None`: a refund
/// with no order to refund yet).
fn prepare(model: &mut Model, op: &Op) -> Option<Call> {
    match op {
        Op::Order {
            member,
            lines,
            paid,
            gap_minutes,
        } => {
            let oi = new_order(model, *member, lines, paid, *gap_minutes);
            Some(Call {
                path: "/api/v1/orders".into(),
                body: model.orders[oi].body.clone(),
                key: None,
                effect: Effect::Order(oi),
            })
        }
        Op::Refund(i, amount) => {
            let done: Vec<usize> = (0..model.orders.len())
                .filter(|&o| model.orders[o].done)
                .collect();
            if done.is_empty() {
                return None;
            }
            let oi = done[i.index(done.len())];
            let o = &model.orders[oi];
            let left = o.paid - o.refunded;
            let fen = match amount {
                RefundAmount::Part(pm) => left * pm / 1000,
                RefundAmount::Rest => left,
                RefundAmount::Over(x) => left + x,
            }
            .max(1);
            let path = format!("/api/v1/orders/{}/{}/refunds", o.store, o.pos);
            model.keys += 1;
            let body = json!({"refund_id": format!("RF{:04}", model.keys), "amount_fen": fen});
            Some(Call {
                path,
                body,
                key: None,
                effect: Effect::Refund(oi, fen),
            })
        }
        Op::Redeem(m, p) | Op::DoubleRedeem(m, p) => {
            let points = resolve_points(model, *m, p);
            model.keys += 1;
            Some(Call {
                path: format!("/api/v1/members/{}/redemptions", model.members[*m].id),
                body: json!({"points": points, "store_code": "S1"}),
                key: Some(format!("RD{:04}", model.keys)),
                effect: Effect::Redeem(*m, points),
            })
        }
        Op::Transfer(from, to, p) => {
            let points = resolve_points(model, *from, p);
            model.keys += 1;
            Some(Call {
                path: format!("/api/v1/members/{}/transfers", model.members[*from].id),
                body: json!({"to_member_id": model.members[*to].id, "points": points}),
                key: Some(format!("TR{:04}", model.keys)),
                effect: Effect::Transfer(*from, *to, points),
            })
        }
        _ => unreachable!("not a call: {op:?}"),
    }
}

async fn send(app: &TestApp, call: &Call) -> Reply {
    app.post(&call.path, &call.body, call.key.as_deref()).await
}

/// The answers to one request sent once or more: one took effect (201), the
/// others replayed it (200, same body).
fn took_effect(replies: &[Reply], what: &str) -> Result<Value, String> {
    let mut statuses: Vec<(u16, bool)> = replies.iter().map(|r| (r.status, r.replayed)).collect();
    statuses.sort();
    let mut want = vec![(200, true); replies.len() - 1];
    want.push((201, false));
    same!(statuses, want, "{what}: {}", replies[0].body);
    for r in replies {
        same!(r.body, replies[0].body, "{what}: the answers differ");
    }
    Ok(replies[0].body.clone())
}

/// The answers to a request refused with `code`, however often sent.
fn refused(replies: &[Reply], code: &str, what: &str) -> Outcome {
    for r in replies {
        same!((r.status, r.code()), (422, code), "{what}: {}", r.body);
    }
    Ok(())
}

/// Apply `call` to the model and compare the server's answers with it.
fn apply(model: &mut Model, call: &Call, replies: &[Reply]) -> Outcome {
    match call.effect {
        Effect::Order(oi) => {
            let o = &model.orders[oi];
            let what = format!(
                "order {} of member {:?}, eligible {}",
                o.pos, o.member, o.eligible
            );
            let got = took_effect(replies, &what)?;
            let (points, balance, tier) = model.earn(oi);
            same!(
                got["points_earned"].as_i64(),
                Some(points),
                "{what}: points"
            );
            same!(got["balance"].as_i64(), balance, "{what}: balance");
            same!(got["tier"].as_str(), tier.map(|t| TIERS[t]), "{what}: tier");
            model.orders[oi].receipt = got;
        }
        Effect::Refund(oi, fen) => {
            let o = &model.orders[oi];
            let what = format!(
                "refund of {fen} fen on order {} (paid {}, refunded {}, earned {}, member {:?})",
                o.pos, o.paid, o.refunded, o.earned, o.member
            );
            match model.refund(oi, fen) {
                None => refused(replies, "refund_exceeds_order", &what)?,
                Some((reversed, shortfall, balance)) => {
                    let got = took_effect(replies, &what)?;
                    same!(
                        got["points_reversed"].as_i64(),
                        Some(reversed),
                        "{what}: reversed"
                    );
                    same!(
                        got["shortfall"].as_i64(),
                        Some(shortfall),
                        "{what}: shortfall"
                    );
                    same!(got["balance"].as_i64(), balance, "{what}: balance");
                    model.refunds.push(Recorded {
                        path: call.path.clone(),
                        body: call.body.clone(),
                        key: None,
                        receipt: got,
                    });
                }
            }
        }
        Effect::Redeem(m, points) => {
            let what = format!(
                "member {m} redeems {points} (balance {}, usable {})",
                model.members[m].balance,
                model.usable(m)
            );
            match model.redeem(m, points) {
                None => refused(replies, "insufficient_points", &what)?,
                Some(balance) => {
                    let got = took_effect(replies, &what)?;
                    same!(got["balance"].as_i64(), Some(balance), "{what}: balance");
                    same!(got["points"].as_i64(), Some(points), "{what}: points");
                    model.redemptions.push(Recorded {
                        path: call.path.clone(),
                        body: call.body.clone(),
                        key: call.key.clone(),
                        receipt: got,
                    });
                }
            }
        }
        Effect::Transfer(from, to, points) => {
            let what = format!(
                "member {from} gives {points} to member {to} (usable {})",
                model.usable(from)
            );
            match model.transfer(from, to, points) {
                None => refused(replies, "insufficient_points", &what)?,
                Some((balance, to_balance)) => {
                    let got = took_effect(replies, &what)?;
                    same!(got["balance"].as_i64(), Some(balance), "{what}: balance");
                    same!(
                        got["to_balance"].as_i64(),
                        Some(to_balance),
                        "{what}: to_balance"
                    );
                }
            }
        }
    }
    Ok(())
}

async fn step(app: &TestApp, model: &mut Model, op: &Op) -> Outcome {
    match op {
        Op::Order { .. } | Op::Refund(..) | Op::Redeem(..) | Op::Transfer(..) => {
            if let Some(call) = prepare(model, op) {
                let reply = send(app, &call).await;
                apply(model, &call, &[reply])?;
            }
        }
        Op::DoubleSend {
            member,
            lines,
            paid,
            gap_minutes,
        } => {
            let order = Op::Order {
                member: Some(*member),
                lines: lines.clone(),
                paid: paid.clone(),
                gap_minutes: *gap_minutes,
            };
            let call = prepare(model, &order).expect("an order");
            let (a, b) = tokio::join!(send(app, &call), send(app, &call));
            apply(model, &call, &[a, b])?;
        }
        Op::DoubleRedeem(..) => {
            let call = prepare(model, op).expect("a redemption");
            let (a, b) = tokio::join!(send(app, &call), send(app, &call));
            apply(model, &call, &[a, b])?;
        }
        Op::Together(a, b) => {
            let calls: Vec<Call> = [a, b]
                .into_iter()
                .filter_map(|op| prepare(model, op))
                .collect();
            let [first, second] = &calls[..] else {
                for call in &calls {
                    let reply = send(app, call).await;
                    apply(model, call, &[reply])?;
                }
                return Ok(());
            };
            let (ra, rb) = tokio::join!(send(app, first), send(app, second));
            let mut tried = Vec::new();
            model.seen.together += 1;
            for (n, (one, two)) in [((first, &ra), (second, &rb)), ((second, &rb), (first, &ra))]
                .into_iter()
                .enumerate()
            {
                let mut m = model.clone();
                let outcome = match apply(&mut m, one.0, std::slice::from_ref(one.1))
                    .and_then(|()| apply(&mut m, two.0, std::slice::from_ref(two.1)))
                {
                    Ok(()) => compare(app, &m).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => {
                        m.seen.second_first += n;
                        *model = m;
                        return Ok(());
                    }
                    Err(e) => tried.push(e),
                }
            }
            return Err(format!(
                "no order of the two explains the outcome: {}",
                tried.join(" / ")
            ));
        }
        Op::ReplayOrder(i) => {
            if model.orders.is_empty() {
                return Ok(());
            }
            let o = &model.orders[i.index(model.orders.len())];
            let r = app.post("/api/v1/orders", &o.body, None).await;
            same!(
                (r.status, r.replayed),
                (200, true),
                "replay of order {}: {}",
                o.pos,
                r.body
            );
            same!(r.body, o.receipt, "replay of order {}", o.pos);
        }
        Op::ConflictOrder(i) => {
            if model.orders.is_empty() {
                return Ok(());
            }
            let o = &model.orders[i.index(model.orders.len())];
            let mut other = o.body.clone();
            other["paid_fen"] = json!(o.paid + 1);
            let r = app.post("/api/v1/orders", &other, None).await;
            same!(
                (r.status, r.code()),
                (409, "idempotency_conflict"),
                "order {} with another body",
                o.pos
            );
        }
        Op::ReplayRefund(i) => {
            if model.refunds.is_empty() {
                return Ok(());
            }
            let rec = &model.refunds[i.index(model.refunds.len())];
            let r = app.post(&rec.path, &rec.body, None).await;
            same!(r.status, 200, "replay of refund {}", rec.body);
            same!(r.body, rec.receipt, "replay of refund {}", rec.body);
        }
        Op::ReplayRedeem(i) => {
            if model.redemptions.is_empty() {
                return Ok(());
            }
            let rec = &model.redemptions[i.index(model.redemptions.len())];
            let r = app.post(&rec.path, &rec.body, rec.key.as_deref()).await;
            same!(
                (r.status, r.replayed),
                (200, true),
                "replay of redemption {:?}",
                rec.key
            );
            same!(r.body, rec.receipt, "replay of redemption {:?}", rec.key);
        }
        Op::Advance { days, minutes } => {
            model.now += days * DAY + minutes * MINUTE;
            let report = jobs::run_due(&app.regulars, model.now)
                .await
                .map_err(|e| format!("jobs at {}: {e}", rfc3339(model.now)))?;
            let (expired, graces, downgrades) = model.run_jobs();
            let what = format!("jobs at {}", rfc3339(model.now));
            same!(report.expired_points, expired, "{what}: points expired");
            same!(report.tier_grace_started, graces, "{what}: graces started");
            same!(report.tier_downgraded, downgrades, "{what}: downgrades");
        }
    }
    Ok(())
}

/// Every member as the server shows them, against the model.
async fn compare(app: &TestApp, model: &Model) -> Outcome {
    for (m, mm) in model.members.iter().enumerate() {
        let r = app
            .get(&format!("/api/v1/members/{}/points?limit=200", mm.id))
            .await;
        same!(r.status, 200, "points of member {m}");
        let b = &r.body;
        same!(
            b["balance"].as_i64(),
            Some(mm.balance),
            "member {m}: balance"
        );
        same!(b["owed"].as_i64(), Some(mm.debt), "member {m}: owed");
        let expiring: Vec<(String, i64)> = b["expiring"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["on"].as_str().unwrap().to_string(),
                    e["points"].as_i64().unwrap(),
                )
            })
            .collect();
        same!(expiring, model.expiring(m), "member {m}: expiring");
        ensure!(
            b["next_before"].is_null(),
            "member {m}: more than 200 entries"
        );
        let entries: Vec<(String, i64)> = b["entries"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["points"].as_i64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, i64)> = mm
            .entries
            .iter()
            .map(|(k, p)| (k.to_string(), *p))
            .collect();
        same!(entries, want, "member {m}: entries, oldest first");
        let t = app.get(&format!("/api/v1/members/{}/tier", mm.id)).await;
        same!(t.status, 200, "tier of member {m}");
        same!(
            t.body["tier"].as_str(),
            Some(TIERS[mm.tier]),
            "member {m}: tier"
        );
        same!(
            t.body["downgrade_pending"].as_bool(),
            Some(model.downgrade_pending(m)),
            "member {m}: downgrade pending (grace since {:?})",
            mm.grace_since
        );
    }
    Ok(())
}

async fn run(backend: Backend, ops: Vec<Op>) -> Outcome {
    let app = spawn_app(backend).await;
    for code in STORES {
        let r = app
            .post(
                "/api/v1/stores",
                &json!({"code": code, "name": format!("{code}店"), "region": "西南", "city": "成都"}),
                None,
            )
            .await;
        same!(r.status, 201, "store {code}");
    }
    let real = Utc::now().timestamp_millis();
    let mut model = Model {
        seen: Seen::default(),
        members: Vec::new(),
        orders: Vec::new(),
        refunds: Vec::new(),
        redemptions: Vec::new(),
        next_lot: 0,
        keys: 0,
        now: real / MINUTE * MINUTE - 380 * DAY,
        real,
    };
    for m in 0..MEMBERS {
        let r = app
            .post(
                "/api/v1/members",
                &json!({"phone": format!("1391234{m:04}")}),
                None,
            )
            .await;
        same!(r.status, 201, "member {m}: {}", r.body);
        model.members.push(MemberModel {
            id: r.body["id"].as_str().unwrap().to_string(),
            ..MemberModel::default()
        });
    }
    let start = model.now;
    // Finally a year and more later, when every point left has expired.
    let last = Op::Advance {
        days: 400,
        minutes: 0,
    };
    for (i, op) in ops.iter().chain([&last]).enumerate() {
        let sim = rfc3339(model.now);
        step(&app, &mut model, op)
            .await
            .map_err(|e| format!("op {i} {op:?} at {sim}: {e}"))?;
        compare(&app, &model)
            .await
            .map_err(|e| format!("after op {i} {op:?} at {sim}: {e}"))?;
    }
    let report = verify::verify(&app.regulars)
        .await
        .map_err(|e| format!("verify: {e}"))?;
    ensure!(report.ok(), "verify: {:?}", report.violations);
    println!(
        "[{backend:?}] {} ops over {} days: {:?}",
        ops.len(),
        (model.now - start) / DAY,
        model.seen
    );
    app.close().await;
    Ok(())
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        // Each case is a fresh database and server: shrink, but not forever.
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

mod ledger_matches_the_model {
    use super::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn sqlite(ops in ops()) {
            RUNTIME.block_on(run(Backend::Sqlite, ops)).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn postgres(ops in ops()) {
            RUNTIME.block_on(run(Backend::Postgres, ops)).map_err(TestCaseError::fail)?;
        }
    }
}
