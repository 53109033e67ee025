use thiserror::Error;

/// What went wrong talking to the database, in the few shapes callers act on.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit; `constraint` names it (on SQLite as
    /// `table.column`, on PostgreSQL as the constraint's name — the schema names
    /// constraints `table_column` so both read alike).
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    #[error("the stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Map a unique violation to `Conflict`, anything else stays a database error.
    pub fn from_sqlx(err: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                let constraint = db
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| sqlite_unique_columns(db.message()));
                return StoreError::Conflict { constraint };
            }
        }
        if matches!(err, sqlx::Error::RowNotFound) {
            return StoreError::NotFound;
        }
        StoreError::Database(err)
    }

    /// Is this a conflict on a constraint whose name mentions `column`?
    pub fn is_conflict_on(&self, column: &str) -> bool {
        matches!(self, StoreError::Conflict { constraint } if constraint.contains(column))
    }
}

/// SQLite says `UNIQUE constraint failed: members.phone_index`; turn that into
/// `members_phone_index`, the name PostgreSQL would report.
fn sqlite_unique_columns(message: &str) -> String {
    message
        .rsplit(": ")
        .next()
        .unwrap_or(message)
        .replace('.', "_")
        .replace(", ", "+")
}

/// `?`-friendly conversion for repository code.
pub(crate) trait SqlxResultExt<T> {
    fn store(self) -> StoreResult<T>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn store(self) -> StoreResult<T> {
        self.map_err(StoreError::from_sqlx)
    }
}
