//! `spawn_app`: the real server on a random port over a fresh database, and a
//! client that talks to it like a POS would.

use regulars_core::access::Role;
use regulars_core::privacy::MasterKey;
use regulars_server::app::auth;
use regulars_server::{Regulars, Server};
use regulars_store::testing::{fresh_database, TempDir};
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

pub async fn spawn_app(backend: Backend) -> TestApp {
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
    /// Read a response: its status, headers and JSON body.
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

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
        Reply::read(req.send().await.expect("request")).await
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
        auth::create_api_key(&self.regulars, "cli", role, store, "test")
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

impl TestApp {
    /// Events of `kind` in the outbox.
    pub async fn outbox_count(&self, kind: &str) -> i64 {
        let mut conn = self.regulars.db.reader().await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox_events WHERE kind = $1",
        )
        .bind(kind)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    }
}
