//! `regulars verify`: every ledger invariant of DESIGN.md §2 (the SQL lives
//! in `regulars_store::verify`). An empty report means the ledger is sound.

use super::{AppResult, Regulars};
use regulars_store::verify::{count, violations, CHECKS};

/// One broken invariant and up to 20 examples.
#[derive(Debug, serde::Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    pub count: usize,
    pub examples: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct VerifyReport {
    pub checks: usize,
    pub violations: Vec<Violation>,
    pub members: i64,
    pub entries: i64,
    pub orders: i64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

pub async fn verify(app: &Regulars) -> AppResult<VerifyReport> {
    let mut conn = app.db.reader().await?;
    let mut found = Vec::new();
    for (invariant, sql) in CHECKS {
        let rows = violations(&mut conn, sql).await?;
        if !rows.is_empty() {
            found.push(Violation {
                invariant,
                count: rows.len(),
                examples: rows.into_iter().take(20).collect(),
            });
        }
    }
    Ok(VerifyReport {
        checks: CHECKS.len(),
        violations: found,
        members: count(&mut conn, "members").await?,
        entries: count(&mut conn, "ledger_entries").await?,
        orders: count(&mut conn, "orders").await?,
    })
}
