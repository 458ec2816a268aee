//! One Redis logical database reached through a multiplexed connection that we drop on the first failure and rebuild
//! from the 5 s probe, so that no request ever waits on a dead Redis for more than 250 ms.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::RwLock;

pub const OP_TIMEOUT: Duration = Duration::from_millis(250);

pub struct RedisLink {
    client: Client,
    conn: RwLock<Option<MultiplexedConnection>>,
}

/// Short class of a Redis failure for health (`TIMEOUT`, `CONNECTION_REFUSED`, `AUTH_FAILED`, `UNKNOWN`).
pub fn error_class(e: &redis::RedisError) -> &'static str {
    let text = e.to_string().to_ascii_lowercase();
    if e.is_timeout() || text.contains("timed out") {
        "TIMEOUT"
    } else if e.is_connection_refusal() || text.contains("refused") {
        "CONNECTION_REFUSED"
    } else if text.contains("auth") || text.contains("password") || text.contains("noperm") {
        "AUTH_FAILED"
    } else {
        "UNKNOWN"
    }
}

impl RedisLink {
    pub fn new(url: &str) -> Result<RedisLink, String> {
        let client = Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        Ok(RedisLink { client, conn: RwLock::new(None) })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The live connection, if any (none after a failure until the probe reconnects).
    pub async fn current(&self) -> Option<MultiplexedConnection> {
        self.conn.read().await.clone()
    }

    pub async fn drop_connection(&self) {
        *self.conn.write().await = None;
    }

    /// Opens a new connection and checks it with `PING`; keeps it on success.
    pub async fn connect(&self) -> Result<MultiplexedConnection, &'static str> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT));
        let attempt = async {
            let mut conn = self.client.get_multiplexed_async_connection_with_config(&cfg).await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        match tokio::time::timeout(OP_TIMEOUT * 2, attempt).await {
            Ok(Ok(conn)) => {
                *self.conn.write().await = Some(conn.clone());
                Ok(conn)
            }
            Ok(Err(e)) => Err(error_class(&e)),
            Err(_) => Err("TIMEOUT"),
        }
    }

    /// Runs one command with the 250 ms budget; any failure drops the connection.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, &'static str>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let Some(conn) = self.current().await else { return Err("CONNECTION_REFUSED") };
        match tokio::time::timeout(OP_TIMEOUT, op(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.drop_connection().await;
                Err(error_class(&e))
            }
            Err(_) => {
                self.drop_connection().await;
                Err("TIMEOUT")
            }
        }
    }
}

/// The URL of another logical database on the same server (`redis://h:6379/0` → `/1`).
pub fn with_db(url: &str, db: u32) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("redis", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_db;

    #[test]
    fn another_logical_database() {
        assert_eq!(with_db("redis://redis:6379/0", 1), "redis://redis:6379/1");
        assert_eq!(with_db("redis://:pw@redis:6379", 1), "redis://:pw@redis:6379/1");
        assert_eq!(with_db("redis://127.0.0.1:6390/3?protocol=resp3", 1), "redis://127.0.0.1:6390/1?protocol=resp3");
    }
}
