//! `spawn_app`: the real server on a random port over a fresh database, and a
//! client that talks to it like a POS would.

use regulars_core::access::Role;
use regulars_core::privacy::MasterKey;
use regulars_server::app::auth;
use regulars_server::{Regulars, Server};
use regulars_store::{Backend, Db};
use serde_json::{json, Value};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub admin_key: String,
    pub regulars: Regulars,
    pub backend: Backend,
    pub database_url: String,
    /// The SQLite file, for tests that read the bytes on disk.
    pub sqlite_path: Option<std::path::PathBuf>,
    _dir: Option<TempDir>,
}

/// A folder removed when the test ends.
pub struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the PostgreSQL server for tests is. `scripts/test` sets it; without it
/// the machine's default is tried, and a failure to connect fails the test.
pub fn pg_admin_url() -> String {
    std::env::var("REGULARS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Create a uniquely named database; returns its URL.
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

pub async fn spawn_app(backend: Backend) -> TestApp {
    let (database_url, dir) = fresh_database(backend).await;
    let db = Db::connect(&database_url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let regulars = Regulars::new(
        db,
        MasterKey::generate().keyring(),
        chrono_tz::Asia::Shanghai,
    );
    let (_, admin_key) = auth::create_api_key(&regulars, Role::HqAdmin, None, "test admin")
        .await
        .expect("admin key");
    let server = Server::bind("127.0.0.1:0", regulars.clone())
        .await
        .expect("bind");
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    TestApp {
        base,
        client: reqwest::Client::new(),
        admin_key,
        regulars,
        backend,
        sqlite_path: dir.as_ref().map(|d| d.0.join("regulars.db")),
        database_url,
        _dir: dir,
    }
}

/// A status and a JSON body (or `Null` for an empty/non-JSON body).
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Some(&self.admin_key.clone()), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(&self.admin_key.clone()), Some(body))
            .await
    }

    pub async fn create_store(&self, code: &str, city: &str) -> Reply {
        self.post(
            "/api/v1/stores",
            json!({"code": code, "name": format!("{city}{code}店"), "region": "西南", "city": city, "brand": "shuxiang"}),
        )
        .await
    }

    pub async fn create_member(&self, body: Value) -> Reply {
        self.post("/api/v1/members", body).await
    }

    pub async fn key_for(&self, role: Role, store: Option<&str>) -> String {
        auth::create_api_key(&self.regulars, role, store, "test")
            .await
            .expect("key")
            .1
    }
}

/// A random valid mainland mobile (199 + 8 random digits).
pub fn random_phone() -> String {
    let n: u64 = rand::random::<u64>() % 100_000_000;
    format!("199{n:08}")
}

/// Run a test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::spawn_app(regulars_store::Backend::Sqlite).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::spawn_app(regulars_store::Backend::Postgres).await).await
                }
            }
        )*
    };
}
