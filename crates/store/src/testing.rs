//! Test support (feature `test-support`): fresh, uniquely named databases on
//! either backend. Tests never share a database and never skip PostgreSQL.

use crate::Backend;

/// A folder removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the PostgreSQL server for tests is. `scripts/test` sets
/// `REGULARS_TEST_PG_URL`; without it the machine's default is tried, and a
/// failure to connect fails the test.
pub fn pg_admin_url() -> String {
    std::env::var("REGULARS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Create a fresh database; returns its URL and, for SQLite, its folder.
pub async fn fresh_database(backend: Backend) -> (String, Option<TempDir>) {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("regulars-test-{unique}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}/regulars.db", dir.display());
            (url, Some(TempDir(dir)))
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = pg_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the tests and did not answer at {admin}: {e}. \
                     Run the tests with scripts/test, which starts one if needed."
                    )
                });
            let name = format!("regulars_t_{unique}");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            (format!("{base}/{name}"), None)
        }
    }
}
