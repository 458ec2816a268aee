//! Test harness: databases on both backends, in-process servers, private PostgreSQL and Redis processes for drills,
//! and the real binary.

#![allow(dead_code)]

pub mod procs;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use app::config::Config;
use sea_orm::{ConnectionTrait, Database};

pub use procs::{PrivateRedis, free_port};

/// In CI a missing service is a failure; locally the skip is printed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test: a SQLite file in a temp dir, or a PostgreSQL database created from
/// `TEST_DATABASE_URL` and dropped afterwards.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    pub dir: tempdir::Dir,
    pg_name: Option<String>,
}

pub mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("manchengo-{tag}-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestDb {
    pub async fn new(kind: Kind) -> Option<TestDb> {
        let dir = tempdir::Dir::new("db");
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite://{}/manchengo.db", dir.path().display());
                Some(TestDb { kind, url, dir, pg_name: None })
            }
            Kind::Postgres => {
                let admin = pg_admin_url();
                let conn = match Database::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) if !in_ci() => {
                        eprintln!("PostgreSQL absent ({e}) : test PostgreSQL ignoré localement");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL is required in CI ({admin}): {e}"),
                };
                let name = format!("mt_{}", uuid::Uuid::now_v7().simple());
                conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
                Some(TestDb { kind, url: format!("{base}/{name}"), dir, pg_name: Some(name) })
            }
        }
    }

    pub async fn open(&self) -> store::Db {
        store::Db::open(&store::DbOptions::new(&self.url)).await.expect("open test database")
    }

    pub async fn migrated(&self) -> store::Db {
        let db = self.open().await;
        store::migration::migrate(&db).await.expect("migrate");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = pg_admin_url();
            // Drop from another thread: we may be inside a runtime that is shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async move {
                    let conn = Database::connect(&admin).await.ok()?;
                    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()?;
                    let _ = conn.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

/// Runs `body` on SQLite, then on a fresh PostgreSQL database.
pub async fn on_both<F, Fut>(body: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    for kind in [Kind::Sqlite, Kind::Postgres] {
        if let Some(db) = TestDb::new(kind).await {
            body(db).await;
        }
    }
}

pub fn config_for(db_url: &str, data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut values: HashMap<String, String> = HashMap::new();
    values.insert("DATABASE_URL".into(), db_url.into());
    values.insert("DATA_DIR".into(), data_dir.display().to_string());
    values.insert("INSTANCE_NAME".into(), "test".into());
    values.insert("LOG_LEVEL".into(), "warn".into());
    for (k, v) in extra {
        values.insert(k.to_string(), v.to_string());
    }
    Config::from_values(&values).expect("valid test configuration")
}

/// The application served in-process on a random loopback port.
pub struct TestServer {
    pub base: String,
    pub state: app::state::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
        TestServer::start_with(config_for(&db.url, db.dir.path(), extra), app::server::Options::default()).await
    }

    /// Like [`TestServer::start`], without the embedded backup job: the test drives `manchengo backup` itself.
    pub async fn start_without_scheduled_backup(db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
        let options = app::server::Options { scheduled_backup: false, ..Default::default() };
        TestServer::start_with(config_for(&db.url, db.dir.path(), extra), options).await
    }

    pub async fn start_with(config: Config, options: app::server::Options) -> TestServer {
        let app = app::server::App::build(config, options).await.expect("build app");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = app.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        let server = TestServer { base, state, stop: Some(tx), handle: Some(handle) };
        server.wait_ready(Duration::from_secs(20)).await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn wait_ready(&self, within: Duration) {
        let client = client();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(r) = client.get(self.url("/api/health/ready")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "server not ready within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = client().get(url).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Polls `check` every 100 ms until it returns true or `within` elapses; returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The password of every seeded test user (satisfies the policy).
pub const PASSWORD: &str = "Fromage#2025!";

/// Creates a user straight in the store, with [`PASSWORD`].
pub async fn seed_user(
    srv: &TestServer,
    email: &str,
    role: domain::identity::Role,
    must_change: bool,
) -> store::identity::User {
    let db = srv.state.dbmon.db().clone();
    let new = store::identity::NewUser {
        email: email.into(),
        first_name: "Karim".into(),
        last_name: format!("Test {}", role.code()),
        role,
        password_hash: app::auth::password::hash_now(PASSWORD),
        must_change_password: must_change,
    };
    let actor = store::audit::Actor::system("test");
    db.write(|tx| {
        let (new, actor) = (new.clone(), actor.clone());
        Box::pin(async move { store::identity::create_user(&**tx, new, &actor, chrono::Utc::now(), false).await })
    })
    .await
    .expect("seed user")
}

/// `role@test.dz` for each role.
pub fn email_of(role: domain::identity::Role) -> String {
    format!("{}@test.dz", role.code().to_lowercase())
}

/// A device login: returns the JSON body (accessToken, refreshToken …) after asserting 200.
pub async fn device_login(srv: &TestServer, email: &str, device_id: Option<uuid::Uuid>) -> serde_json::Value {
    let mut body = serde_json::json!({"email": email, "password": PASSWORD, "client": "device"});
    if let Some(d) = device_id {
        body["deviceId"] = serde_json::json!(d);
    }
    let r = client().post(srv.url("/api/auth/login")).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "device login of {email}: {json}");
    json
}

/// `POST <login_url>` as a device (`client: device`) with `http`; the answer with its tokens (panics with the body if
/// there is no access token).
pub async fn login_as_device(
    http: &reqwest::Client,
    login_url: &str,
    email: &str,
    password: &str,
) -> serde_json::Value {
    let body = serde_json::json!({"email": email, "password": password, "client": "device"});
    let v: serde_json::Value = http.post(login_url).json(&body).send().await.unwrap().json().await.unwrap();
    assert!(v["accessToken"].is_string(), "login of {email}: {v}");
    v
}

/// Seeds a user of `role` and returns a bearer access token for it.
pub async fn bearer(srv: &TestServer, role: domain::identity::Role) -> String {
    let email = email_of(role);
    if store::identity::user_by_email(srv.state.dbmon.db().conn(), &email).await.unwrap().is_none() {
        seed_user(srv, &email, role, false).await;
    }
    device_login(srv, &email, None).await["accessToken"].as_str().unwrap().to_string()
}

/// A browser-like client (cookie jar) signed in through the web login; returns it with its CSRF token.
pub async fn web_session(srv: &TestServer, email: &str) -> (reqwest::Client, String) {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = c
        .post(srv.url("/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD, "client": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "web login of {email}");
    let body: serde_json::Value = r.json().await.unwrap();
    (c, body["csrfToken"].as_str().unwrap().to_string())
}

/// Rows of the audit log with this action, oldest first.
pub async fn audit_actions(srv: &TestServer, action: &str) -> Vec<store::audit::Row> {
    let f = store::audit::Filter { action: Some(action.into()), ..Default::default() };
    let mut rows = store::audit::list(srv.state.dbmon.db(), &f, 1000).await.unwrap();
    rows.reverse();
    rows
}

/// One API call with a bearer token: the status and the JSON body (`Null` when there is none).
pub async fn call(
    srv: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(m, srv.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null))
}

pub async fn post(srv: &TestServer, path: &str, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    call(srv, "POST", path, token, Some(body)).await
}

/// A GET that must answer 200.
pub async fn get(srv: &TestServer, path: &str, token: &str) -> serde_json::Value {
    let (s, b) = call(srv, "GET", path, token, None).await;
    assert_eq!(s, 200, "{path}: {b}");
    b
}
