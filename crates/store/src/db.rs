//! The database handle: one SeaORM connection on SQLite or PostgreSQL, chosen from `DATABASE_URL`.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub url: String,
    pub pool_max: u32,
    /// `application_name` on PostgreSQL (`manchengo-<instance>`).
    pub application_name: String,
    /// PostgreSQL `statement_timeout` (15 s for API requests, 120 s for CLI and jobs).
    pub statement_timeout: Duration,
    /// How long to wait for a connection: 2 s for the server, which answers 503 fast rather than queue (PLATFORM.md
    /// §10.1); longer for operator commands, which should wait out a loaded machine rather than fail.
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for the file lock (5 s for the server; 30 s for operator commands, which share
    /// the file with a running server and must not give up on a loaded machine).
    pub busy_timeout: Duration,
}

impl DbOptions {
    pub fn new(url: impl Into<String>) -> DbOptions {
        DbOptions {
            url: url.into(),
            pool_max: 10,
            application_name: "manchengo".into(),
            statement_timeout: Duration::from_secs(15),
            acquire_timeout: Duration::from_secs(2),
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// For operator commands (backup, restore, check…): wait up to 30 s for a connection and for the SQLite lock.
    pub fn patient(mut self) -> DbOptions {
        self.acquire_timeout = Duration::from_secs(30);
        self.busy_timeout = Duration::from_secs(30);
        self
    }
}

/// Shared handle. Cloning is cheap.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    pool_max: u32,
    /// SQLite has one writer: writes are queued here rather than fighting over the file lock.
    sqlite_writer: Option<Arc<Mutex<()>>>,
}

/// A writing transaction: `BEGIN IMMEDIATE` on SQLite (holding the writer), a plain transaction on PostgreSQL.
pub struct WriteTx {
    tx: DatabaseTransaction,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(StoreError::from)
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await.map_err(StoreError::from)
    }

    /// A savepoint in this transaction: a refused step rolls back to it and the rest of the transaction goes on.
    pub async fn savepoint(&self) -> Result<DatabaseTransaction, StoreError> {
        self.tx.begin().await.map_err(StoreError::from)
    }
}

impl Db {
    /// Opens the pool without waiting for the server: the server starts even when the database is down
    /// (PLATFORM.md §10.1) and connections are made on first use. Pool acquisition and connection wait `acquire_timeout`.
    pub async fn open(opts: &DbOptions) -> Result<Db, StoreError> {
        let backend = Backend::from_url(&opts.url)
            .ok_or_else(|| StoreError::Other(format!("unsupported database url scheme: {}", redact_url(&opts.url))))?;
        let mut co = ConnectOptions::new(opts.url.clone());
        co.connect_timeout(opts.acquire_timeout)
            .acquire_timeout(opts.acquire_timeout)
            .sqlx_logging(false)
            .connect_lazy(true);
        match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_path(&opts.url)
                    && let Some(dir) = std::path::Path::new(&path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Other(format!("cannot create data directory {}: {e}", dir.display()))
                    })?;
                }
                // Pragmas go into the connect options so that every connection of the pool has them.
                co.max_connections(opts.pool_max.clamp(2, 9)).min_connections(1);
                let busy = opts.busy_timeout;
                co.map_sqlx_sqlite_opts(move |o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Full)
                        .foreign_keys(true)
                        .busy_timeout(busy)
                });
            }
            Backend::Postgres => {
                let statement_ms = opts.statement_timeout.as_millis().to_string();
                let app = opts.application_name.clone();
                co.max_connections(opts.pool_max.max(2)).min_connections(0);
                co.map_sqlx_postgres_opts(move |o| {
                    o.application_name(&app).options([
                        ("timezone", "UTC"),
                        ("statement_timeout", statement_ms.as_str()),
                        ("lock_timeout", "5000"),
                        ("idle_in_transaction_session_timeout", "30000"),
                    ])
                });
            }
        }
        let conn = Database::connect(co).await?;
        Ok(Db {
            conn,
            backend,
            pool_max: opts.pool_max,
            sqlite_writer: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn sea_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Starts a writing transaction (see [`WriteTx`]).
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let writer = match &self.sqlite_writer {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        };
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == Backend::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let tx = self.conn.begin_with_options(options).await?;
        Ok(WriteTx { tx, _writer: writer })
    }

    /// Runs one business operation in one writing transaction: commits on `Ok`, rolls back on `Err`, and replays the
    /// whole operation up to 3 more times with jitter when it failed on a transient conflict (serialization failure,
    /// deadlock, lock timeout — PLATFORM.md §10.1), so a conflict surfaces only when it persists.
    ///
    /// ```ignore
    /// db.write(|tx| Box::pin(async move { lots::lock(tx, id).await?; … Ok(outcome) })).await
    /// ```
    pub async fn write<T, E, F>(&self, mut op: F) -> Result<T, E>
    where
        E: From<StoreError> + Transient,
        F: for<'t> FnMut(&'t WriteTx) -> futures_util::future::BoxFuture<'t, Result<T, E>>,
    {
        let mut attempt = 0u32;
        loop {
            let tx = self.begin_write().await?;
            let result = op(&tx).await;
            let result = match result {
                Ok(v) => tx.commit().await.map(|_| v).map_err(E::from),
                Err(e) => {
                    // Dropping the transaction rolls it back; do it explicitly so the writer is free before a retry.
                    let _ = tx.tx.rollback().await;
                    Err(e)
                }
            };
            match result {
                Err(e) if e.is_transient() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(retry_delay(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// A read-only snapshot: REPEATABLE READ on PostgreSQL; on SQLite (WAL) a read transaction sees one state.
    pub async fn snapshot(&self) -> Result<DatabaseTransaction, StoreError> {
        let tx = if self.backend == Backend::Postgres {
            self.conn
                .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), Some(sea_orm::AccessMode::ReadOnly))
                .await
        } else {
            self.conn.begin().await
        };
        tx.map_err(StoreError::from)
    }

    /// `SELECT 1`, bounded by `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(timeout, self.conn.execute_unprepared("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError::from(e)),
            Err(_) => Err(StoreError::Unavailable("timeout".into())),
        }
    }

    /// (connections open, idle, max) of the pool.
    pub fn pool_stats(&self) -> (u32, u32, u32) {
        match self.backend {
            Backend::Sqlite => {
                let p = self.conn.get_sqlite_connection_pool();
                (p.size(), p.num_idle() as u32, p.options().get_max_connections())
            }
            Backend::Postgres => {
                let p = self.conn.get_postgres_connection_pool();
                (p.size(), p.num_idle() as u32, self.pool_max.max(2))
            }
        }
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// Errors that say "try the same thing again": implemented by [`StoreError`] and by the error types of business
/// operations that wrap it.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

const MAX_RETRIES: u32 = 3;

/// 10–40 ms, 20–80 ms, 40–160 ms: spread so that two colliding writers do not collide again.
fn retry_delay(attempt: u32) -> Duration {
    let base = 10u64 << (attempt - 1).min(4);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (base * 3 + 1);
    Duration::from_millis(base + jitter)
}

/// The file path of a `sqlite://` URL, without its query string; `None` for in-memory databases.
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// A URL without its password, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        for attempt in 1..=MAX_RETRIES {
            let base = 10u64 << (attempt - 1);
            let d = retry_delay(attempt).as_millis() as u64;
            assert!((base..=base * 4).contains(&d), "attempt {attempt}: {d} ms");
        }
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite://./data/manchengo.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgres://u:p@h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("mysql://h/db"), None);
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://./data/manchengo.db").as_deref(), Some("./data/manchengo.db"));
        assert_eq!(sqlite_path("sqlite:///var/lib/m.db?mode=rwc").as_deref(), Some("/var/lib/m.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn passwords_never_leave_in_messages() {
        assert_eq!(
            redact_url("postgres://manchengo:s3cret@postgres:5432/manchengo_erp"),
            "postgres://manchengo:***@postgres:5432/manchengo_erp"
        );
        assert_eq!(redact_url("sqlite://./data/m.db"), "sqlite://./data/m.db");
    }
}
