//! Group commit for order ingest. Every acknowledged order is durable
//! (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`); paying
//! one flush per order would cap ingest at the disk's flush rate, so orders
//! that arrive together are written in one transaction and acknowledged
//! together after its commit.
//!
//! Orders go to writer *lanes* by member (one lane on SQLite, which has one
//! writer anyway; several on PostgreSQL). A member's orders always share a
//! lane, so two batches never wait on each other's member row locks, and
//! within a batch rows are locked in member-id order, the same order
//! transfers use, so a batch cannot deadlock with them.
//!
//! A batch is written with one statement per table (`order_batch`); the
//! rare batch that needs more (a refund shortfall to settle, an unknown
//! member) is written order by order in the same transaction.
//!
//! If anything in a batch fails, the batch is rolled back and each of its
//! orders is written again in a transaction of its own: one bad order never
//! takes its neighbours with it, and each caller gets its own answer.

use super::order_batch::write_batch;
use super::orders::{write_order, Ingested, PreparedOrder};
use super::{AppError, AppResult, Regulars};
use regulars_store::{commit, Backend};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Orders per transaction at most.
const MAX_BATCH: usize = 64;

struct Job {
    order: PreparedOrder,
    reply: oneshot::Sender<AppResult<Ingested>>,
}

/// The lanes of one running application.
pub struct Lanes {
    senders: Vec<mpsc::Sender<Job>>,
    counts: Arc<LaneCounts>,
}

/// How batches were written, for tests and operators: a batch that keeps
/// falling back to one-by-one writing is a bug or a costly workload.
#[derive(Debug, Default)]
pub struct LaneCounts {
    /// Batches of two or more orders written with one statement per table.
    pub set_based: AtomicU64,
    /// Batches written order by order in one transaction (see `write_batch`).
    pub one_by_one: AtomicU64,
    /// Batches rolled back and written again one transaction per order.
    pub split: AtomicU64,
}

impl Lanes {
    pub fn counts(&self) -> &LaneCounts {
        &self.counts
    }
}

fn lanes_for(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    }
}

fn start(app: &Regulars) -> Lanes {
    let counts = Arc::new(LaneCounts::default());
    let senders = (0..lanes_for(app.db.backend))
        .map(|_| {
            let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
            tokio::spawn(run_lane(app.clone(), rx, counts.clone()));
            tx
        })
        .collect();
    Lanes { senders, counts }
}

/// Write an order through its lane and wait for the commit.
pub async fn submit(app: &Regulars, order: PreparedOrder) -> AppResult<Ingested> {
    let lanes = app.order_lanes.get_or_init(|| async { start(app) }).await;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    order.lane_key().hash(&mut hasher);
    let lane = &lanes.senders[hasher.finish() as usize % lanes.senders.len()];
    let (reply, answer) = oneshot::channel();
    lane.send(Job { order, reply })
        .await
        .map_err(|_| AppError::unprocessable("shutting_down", "the server is stopping"))?;
    answer
        .await
        .map_err(|_| AppError::unprocessable("shutting_down", "the server is stopping"))?
}

async fn run_lane(app: Regulars, mut rx: mpsc::Receiver<Job>, counts: Arc<LaneCounts>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        batch.sort_by(|a, b| a.order.member_id.cmp(&b.order.member_id));
        if batch.len() > 1 && !write_together(&app, &mut batch, &counts).await {
            counts.split.fetch_add(1, Ordering::Relaxed);
        }
        if !batch.is_empty() {
            for job in batch {
                let result = write_alone(&app, &job.order).await;
                let _ = job.reply.send(result);
            }
        }
    }
}

/// All of `batch` in one transaction. On success every job is answered and
/// `true` is returned; on any failure nothing is kept and nobody is answered.
async fn write_together(app: &Regulars, batch: &mut Vec<Job>, counts: &LaneCounts) -> bool {
    let Ok(mut tx) = app.db.begin().await else {
        return false;
    };
    let orders: Vec<&PreparedOrder> = batch.iter().map(|job| &job.order).collect();
    let results = match write_batch(app, &mut tx, &orders).await {
        Ok(Some(results)) => {
            counts.set_based.fetch_add(1, Ordering::Relaxed);
            results
        }
        // Something only the one-by-one path handles: the same transaction,
        // order after order.
        Ok(None) => {
            counts.one_by_one.fetch_add(1, Ordering::Relaxed);
            let mut results = Vec::with_capacity(batch.len());
            for order in orders {
                match write_order(app, &mut tx, order).await {
                    Ok(done) => results.push(done),
                    Err(_) => {
                        let _ = tx.rollback().await;
                        return false;
                    }
                }
            }
            results
        }
        Err(_) => {
            let _ = tx.rollback().await;
            return false;
        }
    };
    if commit(tx).await.is_err() {
        // Perhaps committed, perhaps not: writing each again is safe, an
        // order already there answers as a replay.
        return false;
    }
    for (job, result) in batch.drain(..).zip(results) {
        let _ = job.reply.send(Ok(result));
    }
    true
}

async fn write_alone(app: &Regulars, order: &PreparedOrder) -> AppResult<Ingested> {
    let mut tx = app.db.begin().await?;
    match write_order(app, &mut tx, order).await {
        Ok(done) => {
            commit(tx).await?;
            Ok(done)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
