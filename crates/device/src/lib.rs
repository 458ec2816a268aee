//! The reference device client of the sync protocol v1 (PLATFORM.md §7, UI.md §6 "Offline behaviour"): what a
//! driver's phone does, in Rust. Commands go to an outbox (a file, written before any network attempt), are pushed in
//! creation order by batches of at most 100, keep their id until the server gives a final outcome, and wait as the
//! frozen client contract says (429 → `Retry-After`, 503 or no network → exponential backoff, 401 `DEVICE_REVOKED` →
//! wipe). The feed is pulled from a cursor; `FEED_RESET` or `CURSOR_EXPIRED` → bootstrap again, outbox kept.
//!
//! The integration tests drive the server with it, and `manchengo device replay` replays an outbox file.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Events per push (PLATFORM.md §7.1).
pub const BATCH: usize = 100;

/// One command waiting in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    pub id: Uuid,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub occurred_at: String,
    pub payload: Value,
    /// Computed when the command is recorded (an outbox file written by hand may leave it out).
    #[serde(default)]
    pub checksum: String,
}

/// A final outcome the device keeps to show (Appliqué, Déjà appliqué, Rejeté with the server's message).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub id: Uuid,
    pub action: String,
    pub status: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub server_ref: Option<String>,
}

/// The device's local state: commands not yet settled, outcomes, the feed cursor and epoch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    #[serde(default)]
    pub pending: Vec<Command>,
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
    #[serde(default)]
    pub cursor: i64,
    #[serde(default)]
    pub epoch: Option<Uuid>,
}

impl Outbox {
    /// The outbox of a file; an absent file is an empty outbox. Commands without a checksum get theirs.
    pub fn load(path: &Path) -> Result<Outbox, String> {
        let mut o: Outbox = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outbox::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for c in &mut o.pending {
            if c.checksum.is_empty() {
                c.checksum = domain::sync::checksum(&c.payload);
            }
        }
        Ok(o)
    }

    /// Writes the outbox whole (a temporary file renamed over the old one: never half written).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Records a command (UUID v7, checksum of its payload, the device's clock) and answers its id.
    pub fn record(&mut self, action: &str, entity_type: &str, entity_id: &str, payload: Value) -> Uuid {
        let id = Uuid::now_v7();
        self.pending.push(Command {
            id,
            entity_type: entity_type.into(),
            entity_id: entity_id.into(),
            action: action.into(),
            occurred_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            checksum: domain::sync::checksum(&payload),
            payload,
        });
        id
    }

    pub fn outcome(&self, id: Uuid) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.id == id)
    }
}

/// Why a sync call did not go through.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SyncError {
    /// 401 DEVICE_REVOKED: wipe local data (frozen contract).
    #[error("appareil révoqué")]
    Revoked,
    /// 401 TOKEN_EXPIRED or SESSION_REVOKED: log in again; the outbox is kept.
    #[error("session expirée ou fermée : {0}")]
    Session(String),
    /// 429: wait this long.
    #[error("trop de requêtes, attendre {0} s")]
    RateLimited(u64),
    /// 503, a lost connection or no network: back off and try again.
    #[error("serveur indisponible : {0}")]
    Unavailable(String),
    /// Anything else (a bug on one side): the status and the body.
    #[error("réponse inattendue {0} : {1}")]
    Unexpected(u16, String),
}

/// The client contract's waits (UI.md §6 point 6): exponential from `base`, at most `max` per wait.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Give up after this many failed tries in a row.
    pub tries: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { base: Duration::from_secs(5), max: Duration::from_secs(300), tries: 12 }
    }
}

impl Backoff {
    /// The wait after the `n`-th failure in a row (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        self.base.saturating_mul(1u32 << (n.saturating_sub(1)).min(16)).min(self.max)
    }
}

/// A device session against one server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    pub device: Uuid,
}

async fn answer(r: reqwest::Response) -> Result<Value, SyncError> {
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or_default().to_string();
    match status {
        200 | 201 => Ok(body),
        401 if code == "DEVICE_REVOKED" => Err(SyncError::Revoked),
        401 => Err(SyncError::Session(code)),
        429 => Err(SyncError::RateLimited(retry_after.unwrap_or(60))),
        502..=504 => Err(SyncError::Unavailable(code)),
        _ => Err(SyncError::Unexpected(status, body.to_string())),
    }
}

fn network(e: reqwest::Error) -> SyncError {
    SyncError::Unavailable(e.to_string())
}

impl Client {
    /// Device login (`client: device`, the device id) then registration under `name`.
    pub async fn login(base: &str, email: &str, password: &str, device: Uuid, name: &str) -> Result<Client, SyncError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(network)?;
        let base = base.trim_end_matches('/').to_string();
        let body = json!({"email": email, "password": password, "client": "device", "deviceId": device});
        let login =
            answer(http.post(format!("{base}/api/auth/login")).json(&body).send().await.map_err(network)?).await?;
        let token = login["accessToken"].as_str().unwrap_or_default().to_string();
        let c = Client { http, base, token, device };
        let info = json!({"id": device, "name": name, "platform": "web", "appVersion": env!("CARGO_PKG_VERSION")});
        c.call(reqwest::Method::POST, "/api/devices/register", Some(info)).await?;
        Ok(c)
    }

    /// A session from a token the caller already holds.
    pub fn with_token(base: &str, token: &str, device: Uuid) -> Client {
        Client { http: reqwest::Client::new(), base: base.trim_end_matches('/').into(), token: token.into(), device }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, SyncError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("X-Device-Id", self.device.to_string())
            .header("X-Sync-Protocol", "1");
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.map_err(network)?).await
    }

    /// One push of the oldest commands (at most [`BATCH`]): final outcomes leave the outbox for `outcomes`, DEFERRED
    /// ones stay. The number of commands settled.
    pub async fn push_once(&self, outbox: &mut Outbox) -> Result<usize, SyncError> {
        if outbox.pending.is_empty() {
            return Ok(0);
        }
        let batch: Vec<Command> = outbox.pending.iter().take(BATCH).cloned().collect();
        let body = json!({"deviceId": self.device, "batchId": Uuid::now_v7(), "events": batch});
        let answer = self.call(reqwest::Method::POST, "/api/sync/push", Some(body)).await?;
        let mut settled = Vec::new();
        for r in answer["results"].as_array().into_iter().flatten() {
            let Some(id) = r["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) else { continue };
            if r["retryable"] == true {
                continue;
            }
            let action = batch.iter().find(|c| c.id == id).map(|c| c.action.clone()).unwrap_or_default();
            let text = |k: &str| r[k].as_str().map(str::to_string);
            outbox.outcomes.push(Outcome {
                id,
                action,
                status: text("status").unwrap_or_default(),
                code: text("code"),
                message: text("message"),
                server_ref: text("serverRef"),
            });
            settled.push(id);
        }
        outbox.pending.retain(|c| !settled.contains(&c.id));
        if !settled.is_empty() {
            // The outcomes are stored: the server may mark its APPLIED rows ACKED.
            let _ = self
                .call(
                    reqwest::Method::POST,
                    "/api/sync/ack",
                    Some(json!({"deviceId": self.device, "eventIds": settled})),
                )
                .await;
        }
        Ok(settled.len())
    }

    /// Pushes until the outbox holds nothing but DEFERRED commands, waiting as the contract says between tries; the
    /// outbox is saved through `save` after every answer (the device may die at any moment).
    pub async fn push_all(
        &self,
        outbox: &mut Outbox,
        backoff: Backoff,
        mut save: impl FnMut(&Outbox),
    ) -> Result<usize, SyncError> {
        let mut failures = 0;
        let mut settled = 0;
        loop {
            match self.push_once(outbox).await {
                Ok(n) => {
                    failures = 0;
                    settled += n;
                    save(outbox);
                    // Nothing settled in this round: what is left is DEFERRED, for a later push (or the feed).
                    if outbox.pending.is_empty() || n == 0 {
                        return Ok(settled);
                    }
                }
                Err(SyncError::RateLimited(secs)) => tokio::time::sleep(Duration::from_secs(secs)).await,
                Err(SyncError::Unavailable(e)) => {
                    failures += 1;
                    if failures >= backoff.tries {
                        return Err(SyncError::Unavailable(e));
                    }
                    tokio::time::sleep(backoff.delay(failures)).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Starts over from a snapshot: the feed epoch and cursor are set, the outbox is kept.
    pub async fn bootstrap(&self, outbox: &mut Outbox) -> Result<Value, SyncError> {
        let b = self.call(reqwest::Method::POST, "/api/sync/bootstrap", Some(json!({"deviceId": self.device}))).await?;
        outbox.cursor = b["cursor"].as_i64().unwrap_or(0);
        outbox.epoch = b["feedEpoch"].as_str().and_then(|s| Uuid::parse_str(s).ok());
        Ok(b)
    }

    /// Reads the feed from the outbox's cursor to its head; a reset feed or an expired cursor bootstraps first.
    pub async fn pull_all(&self, outbox: &mut Outbox, limit: u32) -> Result<Vec<Value>, SyncError> {
        let mut out = Vec::new();
        loop {
            let mut path = format!("/api/sync/pull?cursor={}&limit={limit}", outbox.cursor);
            if let Some(e) = outbox.epoch {
                path.push_str(&format!("&epoch={e}"));
            }
            let page = match self.call(reqwest::Method::GET, &path, None).await {
                Err(SyncError::Unexpected(409 | 410, _)) => {
                    self.bootstrap(outbox).await?;
                    continue;
                }
                other => other?,
            };
            out.extend(page["changes"].as_array().cloned().unwrap_or_default());
            outbox.cursor = page["nextCursor"].as_i64().unwrap_or(outbox.cursor);
            if page["hasMore"] != true {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_five_seconds_up_to_five_minutes() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn an_outbox_survives_a_save_and_a_load_and_fills_missing_checksums() {
        let dir = std::env::temp_dir().join(format!("outbox-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outbox.json");
        assert_eq!(Outbox::load(&path).unwrap(), Outbox::default());
        let mut o = Outbox::default();
        let id = o.record("DELIVERY_CANCELLED", "DELIVERY", "x", json!({"reason": "Client absent"}));
        o.save(&path).unwrap();
        let back = Outbox::load(&path).unwrap();
        assert_eq!(back, o);
        assert_eq!(back.pending[0].id, id);
        let hand = json!({"pending": [{"id": Uuid::now_v7(), "entityType": "DELIVERY", "entityId": "x",
            "action": "DELIVERY_CANCELLED", "occurredAt": "2025-03-14T09:00:00Z", "payload": {"reason": "Client absent"}}]});
        std::fs::write(&path, hand.to_string()).unwrap();
        let o = Outbox::load(&path).unwrap();
        assert_eq!(o.pending[0].checksum, domain::sync::checksum(&json!({"reason": "Client absent"})));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
