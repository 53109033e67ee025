//! `regulars generate --members N --months M --seed S [--end YYYY-MM-DD]`:
//! realistic members and order history at scale, for the headquarters
//! analytics (RFM, BG/NBD, recommendations) to find something true in. See
//! docs/generate.md.
//!
//! The pipeline: worker threads (one per core) each take every other chunk
//! of members, draw them and their history from the [`model`], encrypt
//! their personal data exactly as registration does
//! ([`members::seal_member`]) and shape the rows; the writer takes the
//! chunks back in order and bulk-writes each in one transaction
//! ([`regulars_store::bulk`]). Ids sort in insertion order, so every primary
//! key insert appends.

pub mod model;

use anyhow::Context;
use chrono::{Duration, NaiveDate, TimeZone};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use model::{DishInfo, Model, Params, StoreInfo};
use regulars_core::access::{Principal, Role};
use regulars_core::member::TasteProfile;
use regulars_server::app::members::{self, ConsentInput, CreateMember};
use regulars_server::app::orders::tier_window_start;
use regulars_server::Regulars;
use regulars_store::bulk::{
    self, Batch, BulkConsent, BulkItem, BulkMember, BulkOrder, BulkRefund, BulkTag, BulkTierChange,
    BulkWriter,
};
use regulars_store::{now_ms, staff};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

/// At most this many members per run (the phone numbers' 10^8 range, with
/// room for other seeds).
pub const MAX_MEMBERS: u64 = 20_000_000;
/// At most this many months of history.
pub const MAX_MONTHS: u32 = 120;
/// Members per chunk: one transaction, one batch of COPYs or INSERTs.
const CHUNK: u64 = 1_000;
/// Who the generated rows say made them (audit, tags, tier changes).
const ACTOR: &str = "generate";
/// Id kinds of [`bulk::sortable_id`].
const MEMBER_IDS: u16 = 0x6e1;
const ORDER_IDS: u16 = 0x6e2;
/// Order numbers per member in the ids (2^22 visits is far beyond anyone).
const VISIT_BITS: u32 = 22;

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// How many members to make (1 to 20,000,000).
    #[arg(long)]
    pub members: u64,
    /// Months of history (1 to 120), ending with --end.
    #[arg(long)]
    pub months: u32,
    /// The seed: the same seed makes the same members and orders.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The last day of history, YYYY-MM-DD (default: today; not later).
    #[arg(long)]
    pub end: Option<String>,
}

/// Arguments checked before anything is opened or written.
#[derive(Debug, Clone)]
pub struct Plan {
    pub members: u64,
    pub months: u32,
    pub seed: u64,
    pub end: Option<NaiveDate>,
}

/// Check the arguments; a bad one is a clear error and nothing is written.
pub fn check(args: &GenerateArgs) -> anyhow::Result<Plan> {
    if args.members == 0 || args.members > MAX_MEMBERS {
        anyhow::bail!(
            "--members must be between 1 and {MAX_MEMBERS} (got {})",
            args.members
        );
    }
    if args.months == 0 || args.months > MAX_MONTHS {
        anyhow::bail!(
            "--months must be between 1 and {MAX_MONTHS} (got {})",
            args.months
        );
    }
    let end = match &args.end {
        Some(text) => Some(
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .with_context(|| format!("--end {text}: expected YYYY-MM-DD"))?,
        ),
        None => None,
    };
    // No time zone is a day ahead of UTC; the exact check (in the chain's
    // zone) is in `run`.
    if let Some(end) = end {
        let latest = chrono::Utc::now().date_naive() + Duration::days(1);
        if end > latest {
            anyhow::bail!("--end {end} is in the future; history ends today at the latest");
        }
    }
    Ok(Plan {
        members: args.members,
        months: args.months,
        seed: args.seed,
        end,
    })
}

/// What was written, printed as one JSON line.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub members: u64,
    pub orders: u64,
    pub order_items: u64,
    pub refunds: u64,
    pub seconds: f64,
    /// Members not written because their phone number already belongs to
    /// someone (another seed's range, or an earlier run of this seed).
    pub skipped_members: u64,
    pub tier_changes: u64,
}

fn principal() -> Principal {
    Principal {
        actor: ACTOR.into(),
        role: Role::HqAdmin,
        store: None,
    }
}

/// Run the generator against the opened application; prints progress to
/// stderr and returns the summary.
pub async fn run(regulars: &Regulars, database_url: &str, plan: Plan) -> anyhow::Result<Summary> {
    let started = std::time::Instant::now();
    let run_ms = now_ms();
    let admin = principal();
    let today = regulars.today();
    let end = plan.end.unwrap_or(today);
    if end > today {
        anyhow::bail!("--end {end} is in the future; history ends today at the latest");
    }

    // The chain: the demo chain when the database has none.
    let stores_count = {
        let mut conn = regulars.db.reader().await?;
        regulars_store::chain::count_stores(&mut conn).await?
    };
    if stores_count == 0 {
        eprintln!("  no chain in this database: creating the demo chain");
        crate::demo::seed_chain(regulars, &admin).await?;
    }
    let (stores, menu) = {
        let mut conn = regulars.db.reader().await?;
        bulk::chain_and_menu(&mut conn).await?
    };
    if stores.is_empty() {
        anyhow::bail!("the chain has no open store to generate orders for");
    }
    if !menu.iter().any(|d| d.price_fen > 0) {
        anyhow::bail!("the chain has no menu; add dishes first (or start from an empty database)");
    }

    // The calendar of the history, in the chain's time zone.
    let first_day = end
        .checked_sub_months(chrono::Months::new(plan.months))
        .context("--end and --months reach before the calendar")?
        + Duration::days(1);
    let tz = regulars.timezone;
    let midnight = |d: NaiveDate| -> anyhow::Result<i64> {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| t.timestamp_millis())
            .with_context(|| format!("no midnight on {d} in {tz}"))
    };
    let days = (end - first_day).num_days() + 1;
    let day_starts = (0..days)
        .map(|i| midnight(first_day + Duration::days(i)))
        .collect::<anyhow::Result<Vec<i64>>>()?;
    let horizon_ms = midnight(end + Duration::days(1))?.min(run_ms);
    let tiers = regulars
        .loyalty
        .get(regulars)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .tiers
        .clone();
    let model = Arc::new(Model::new(
        Params {
            seed: plan.seed,
            day_starts,
            first_day,
            horizon_ms,
            tier_window_start_ms: tier_window_start(horizon_ms),
            tiers,
        },
        stores
            .iter()
            .map(|s| StoreInfo {
                code: s.code.clone(),
                city: s.city.clone(),
            })
            .collect(),
        menu.iter()
            .map(|d| DishInfo {
                sku: d.sku.clone(),
                name: d.name.clone(),
                category: d.category.clone(),
                spice_level: d.spice_level,
                price_fen: d.price_fen,
                is_new: d.is_new,
            })
            .collect(),
    ));
    eprintln!(
        "  generating {} members over {} months ({first_day} to {end}), seed {}, {} stores, {} dishes",
        plan.members,
        plan.months,
        plan.seed,
        stores.len(),
        menu.len()
    );

    let bars = MultiProgress::new();
    let member_bar = bars.add(
        ProgressBar::new(plan.members).with_style(
            ProgressStyle::with_template("  members {bar:40} {pos}/{len} {per_sec} {eta}")
                .expect("static progress template"),
        ),
    );
    let order_bar = bars.add(
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("  orders  {pos} {per_sec}")
                .expect("static progress template"),
        ),
    );

    // Writers: PostgreSQL takes two batches at once (its COPY and index
    // work then uses both cores); SQLite has one writer.
    let backend = regulars.db.backend;
    let writer_count = match backend {
        regulars_store::Backend::Postgres => 2,
        regulars_store::Backend::Sqlite => 1,
    };
    let mut to_writers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..writer_count {
        let mut writer = BulkWriter::connect(database_url, ACTOR, &admin.role.to_string()).await?;
        if backend == regulars_store::Backend::Postgres && !writer.fk_triggers_off() {
            eprintln!("  (not a superuser: foreign keys are checked row by row, which is slower)");
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(1);
        to_writers.push(tx);
        let (member_bar, order_bar) = (member_bar.clone(), order_bar.clone());
        writers.push(tokio::spawn(async move {
            let mut done = Summary::default();
            while let Some(batch) = rx.recv().await {
                let made = batch.members.len() as u64;
                let indexes: Vec<&[u8]> = batch
                    .members
                    .iter()
                    .map(|m| m.row.phone_index.as_slice())
                    .collect();
                let taken = writer.taken_phone_indexes(&indexes).await?;
                let batch = if taken.is_empty() {
                    batch
                } else {
                    without_members(batch, &taken)
                };
                writer.write(&batch).await?;
                done.skipped_members += made - batch.members.len() as u64;
                done.members += batch.members.len() as u64;
                done.orders += batch.orders.len() as u64;
                done.order_items += batch.items.len() as u64;
                done.refunds += batch.refunds.len() as u64;
                done.tier_changes += batch.tier_changes.len() as u64;
                member_bar.inc(made);
                order_bar.inc(batch.orders.len() as u64);
            }
            writer.finish().await?;
            Ok::<Summary, anyhow::Error>(done)
        }));
    }

    // Workers: one per core, each every other chunk, in order.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let chunks = plan.members.div_ceil(CHUNK);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<Batch>>(2);
        senders.push(tx);
        receivers.push(rx);
    }
    let producer = {
        let model = model.clone();
        let regulars = regulars.clone();
        let members = plan.members;
        let seed = plan.seed;
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|scope| {
                for (w, tx) in senders.into_iter().enumerate() {
                    let (model, regulars) = (&model, &regulars);
                    scope.spawn(move || {
                        let mut k = w as u64;
                        while k < chunks {
                            let from = k * CHUNK;
                            let to = (from + CHUNK).min(members);
                            let batch = make_batch(model, regulars, seed, run_ms, from..to);
                            let failed = batch.is_err();
                            if tx.blocking_send(batch).is_err() || failed {
                                return;
                            }
                            k += workers as u64;
                        }
                    });
                }
            });
        })
    };

    // Hand the chunks to the writers in order.
    let handed: anyhow::Result<()> = async {
        for k in 0..chunks {
            let batch = receivers[(k % workers as u64) as usize]
                .recv()
                .await
                .context("a generator thread stopped")??;
            if to_writers[(k % writer_count as u64) as usize]
                .send(batch)
                .await
                .is_err()
            {
                break; // that writer failed: its error is reported below
            }
        }
        Ok(())
    }
    .await;
    drop(to_writers);
    let mut summary = Summary::default();
    let mut failed = handed.err();
    for writer in writers {
        match writer.await.context("a writer stopped")? {
            Ok(done) => {
                summary.members += done.members;
                summary.orders += done.orders;
                summary.order_items += done.order_items;
                summary.refunds += done.refunds;
                summary.tier_changes += done.tier_changes;
                summary.skipped_members += done.skipped_members;
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    // Stop the workers (if something failed) and wait for them.
    drop(receivers);
    producer.await.context("generator threads")?;
    if let Some(e) = failed {
        return Err(e);
    }
    member_bar.finish_and_clear();
    order_bar.finish_and_clear();
    summary.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    {
        let mut conn = regulars.db.writer().await?;
        staff::audit(
            &mut conn,
            ACTOR,
            "generate.run",
            &format!("seed:{}", plan.seed),
            &serde_json::json!({"members": summary.members, "orders": summary.orders,
                "months": plan.months, "end": end.to_string(),
                "skipped_members": summary.skipped_members})
            .to_string(),
            now_ms(),
        )
        .await?;
    }
    if summary.skipped_members > 0 {
        eprintln!(
            "  skipped {} members whose phone number is already in the database \
             (another seed's numbers, or an earlier run of seed {})",
            summary.skipped_members, plan.seed
        );
    }
    Ok(summary)
}

/// Leak a string for the rest of the run (a chain's few codes and dishes).
fn forever(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Static copies of the store codes and dish texts, made once per thread.
struct Texts {
    stores: Vec<&'static str>,
    dishes: Vec<(&'static str, &'static str, &'static str)>,
}

fn texts(model: &Model) -> Texts {
    Texts {
        stores: model.stores.iter().map(|s| forever(&s.code)).collect(),
        dishes: model
            .menu
            .iter()
            .map(|d| (forever(&d.sku), forever(&d.name), forever(&d.category)))
            .collect(),
    }
}

/// Members `range` and their histories as rows, personal data encrypted.
fn make_batch(
    model: &Model,
    regulars: &Regulars,
    seed: u64,
    run_ms: i64,
    range: std::ops::Range<u64>,
) -> anyhow::Result<Batch> {
    thread_local! {
        static TEXTS: std::cell::OnceCell<Texts> = const { std::cell::OnceCell::new() };
    }
    let admin = principal();
    let horizon = model.params.horizon_ms;
    let mut batch = Batch::default();
    TEXTS.with(|cell| {
        let texts = cell.get_or_init(|| texts(model));
        for index in range {
            let m = model.member(index);
            let member = batch.members.len();
            let id = bulk::sortable_id(run_ms, MEMBER_IDS, index);
            let input = CreateMember {
                phone: m.phone.clone(),
                name: m.name.clone(),
                gender: Some(m.gender),
                birthday: m.birthday.map(|b| b.format("%Y-%m-%d").to_string()),
                email: m.email.clone(),
                home_store: Some(model.stores[m.home_store].code.clone()),
                city: Some(model.stores[m.home_store].city.clone()),
                age_group: None,
                source: Some(m.source),
                referrer_code: None,
                consents: Some(ConsentInput {
                    sms: Some(m.consents[0]),
                    email: Some(m.consents[1]),
                    wechat: Some(m.consents[2]),
                }),
                tags: m.tags.iter().map(|t| t.to_string()).collect(),
                taste: Some(TasteProfile {
                    spice_level: Some(m.spice),
                    allergies: m.allergies.iter().map(|a| a.to_string()).collect(),
                    dislikes: m.dislikes.iter().map(|d| d.to_string()).collect(),
                    favourite_dishes: m
                        .favourites
                        .iter()
                        .map(|&d| model.menu[d as usize].name.clone())
                        .collect(),
                }),
                notes: m.notes.clone(),
                anniversaries: vec![],
            };
            let mut sealed = members::seal_member(regulars, &admin, input, id, m.joined_at)
                .map_err(|e| anyhow::anyhow!("member {index}: {e}"))?;
            // Codes that can never meet the random ones of the normal path
            // (those are all digits, and 7 letters and digits without `-`).
            sealed.row.member_code = format!("G{seed}-{index}");
            sealed.row.referral_code = format!("GR{seed}-{index}");
            for (channel, granted) in &sealed.consents {
                batch.consents.push(BulkConsent {
                    member,
                    channel: channel.as_str(),
                    granted: *granted,
                    at: m.joined_at,
                });
            }
            for tag in sealed.tags.drain(..) {
                batch.tags.push(BulkTag {
                    member,
                    tag,
                    at: m.joined_at,
                });
            }
            if m.tier != regulars_core::tier::Tier::Regular {
                batch.tier_changes.push(BulkTierChange {
                    member,
                    from: regulars_core::tier::Tier::Regular.as_str(),
                    to: m.tier.as_str(),
                    reason: format!(
                        "generated history: 12-month spend ¥{}",
                        m.spend_12m_fen / 100
                    ),
                    qualifying_spend_fen: m.spend_12m_fen,
                    at: horizon,
                });
            }
            for v in &m.visits {
                let order = batch.orders.len();
                let n = (index << VISIT_BITS) | u64::from(v.number);
                let refunded = v.refund.map_or(0, |r| r.0);
                batch.orders.push(BulkOrder {
                    id: bulk::sortable_id(run_ms, ORDER_IDS, n),
                    store_code: Cow::Borrowed(texts.stores[v.store]),
                    pos_order_id: format!("GEN-{seed}-{index:08}-{:04}", v.number),
                    member: Some(member),
                    channel: v.channel.as_str(),
                    occurred_at: v.occurred_at,
                    paid_fen: v.paid_fen,
                    eligible_fen: v.eligible_fen,
                    qualifying_fen: v.qualifying_fen(),
                    refunded_fen: refunded,
                    party_size: Some(v.party_size),
                    receipt_code: format!("G{seed}-{index:08}-{:04}", v.number),
                    created_at: v.occurred_at,
                });
                for (line, l) in v.lines.iter().enumerate() {
                    let (sku, name, category) = texts.dishes[l.dish as usize];
                    batch.items.push(BulkItem {
                        order,
                        line: line as i64 + 1,
                        sku: Cow::Borrowed(sku),
                        name: Cow::Borrowed(name),
                        category: Cow::Borrowed(category),
                        quantity: l.quantity,
                        unit_price_fen: model.menu[l.dish as usize].price_fen,
                        discount_fen: l.discount_fen,
                        voided: l.voided,
                        comped: l.comped,
                        staff_meal: false,
                    });
                }
                if let Some((amount, at)) = v.refund {
                    batch.refunds.push(BulkRefund {
                        order,
                        refund_id: format!("GEN-{seed}-{index:08}-{:04}-R", v.number),
                        amount_fen: amount,
                        created_at: at,
                    });
                }
            }
            batch.members.push(BulkMember {
                row: sealed.row,
                tier: m.tier.as_str(),
            });
        }
        Ok(batch)
    })
}

/// The batch without the members whose phone index is `taken`, nor anything
/// of theirs.
fn without_members(batch: Batch, taken: &HashSet<Vec<u8>>) -> Batch {
    let mut member_map = vec![None; batch.members.len()];
    let mut out = Batch::default();
    for (i, m) in batch.members.into_iter().enumerate() {
        if !taken.contains(&m.row.phone_index) {
            member_map[i] = Some(out.members.len());
            out.members.push(m);
        }
    }
    let mut order_map = vec![None; batch.orders.len()];
    for (i, mut o) in batch.orders.into_iter().enumerate() {
        if let Some(Some(m)) = o.member.map(|m| member_map[m]) {
            o.member = Some(m);
            order_map[i] = Some(out.orders.len());
            out.orders.push(o);
        }
    }
    out.consents = batch
        .consents
        .into_iter()
        .filter_map(|mut c| {
            member_map[c.member].map(|m| {
                c.member = m;
                c
            })
        })
        .collect();
    out.tags = batch
        .tags
        .into_iter()
        .filter_map(|mut t| {
            member_map[t.member].map(|m| {
                t.member = m;
                t
            })
        })
        .collect();
    out.tier_changes = batch
        .tier_changes
        .into_iter()
        .filter_map(|mut t| {
            member_map[t.member].map(|m| {
                t.member = m;
                t
            })
        })
        .collect();
    out.items = batch
        .items
        .into_iter()
        .filter_map(|mut i| {
            order_map[i.order].map(|o| {
                i.order = o;
                i
            })
        })
        .collect();
    out.refunds = batch
        .refunds
        .into_iter()
        .filter_map(|mut r| {
            order_map[r.order].map(|o| {
                r.order = o;
                r
            })
        })
        .collect();
    out
}
