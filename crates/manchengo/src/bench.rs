//! `manchengo bench login`: how long a login takes (argon2id hash and verify alone, then whole HTTP logins against
//! an in-process server), written as a section of docs/BENCHMARKS.md. Figures, never assertions.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "Banc#Essai2026!";

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (percentile(&v, 0.5), percentile(&v, 0.95))
}

async fn login(addr: std::net::SocketAddr, email: &str, password: &str) -> Result<u16, String> {
    let body = format!("{{\"email\":\"{email}\",\"password\":\"{password}\",\"client\":\"device\"}}");
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let req = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&out[..out.len().min(32)]).to_string();
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("réponse illisible : {head}"))
}

pub async fn login_bench(
    database_url: Option<String>,
    logins: usize,
    write: Option<std::path::PathBuf>,
) -> Result<String, String> {
    use app::auth::password;
    // argon2id alone, on one core.
    let mut hashes = Vec::new();
    let mut verifies = Vec::new();
    let mut phc = String::new();
    for _ in 0..20 {
        let t = Instant::now();
        phc = password::hash_now(PASSWORD);
        hashes.push(t.elapsed());
        let t = Instant::now();
        assert!(password::verify_now(PASSWORD, &phc).0);
        verifies.push(t.elapsed());
    }
    let (h50, h95) = summary(hashes);
    let (v50, v95) = summary(verifies);

    // Whole logins over HTTP: embedded default unless a database is given.
    let server =
        BenchServer::start(database_url, &[("RATE_LIMIT_LOGIN_MAX", "1000000"), ("RATE_LIMIT_MAX", "1000000")]).await?;
    let (state, addr, backend, tag) = (server.state.clone(), server.addr, server.backend, server.tag());
    // One section per backend, replaced in place at each run.
    let (begin, end) = (format!("<!-- bench:login:{tag} -->"), format!("<!-- /bench:login:{tag} -->"));
    let email = format!("banc.{}@essai.dz", uuid::Uuid::now_v7().simple());
    let new = store::identity::NewUser {
        email: email.clone(),
        first_name: "Banc".into(),
        last_name: "Essai".into(),
        role: domain::identity::Role::Commercial,
        password_hash: phc,
        must_change_password: false,
    };
    let actor = store::audit::Actor::system("bench");
    state
        .dbmon
        .db()
        .write(|tx| {
            let (new, actor) = (new.clone(), actor.clone());
            Box::pin(async move { store::identity::create_user(&**tx, new, &actor, chrono::Utc::now(), false).await })
        })
        .await
        .map_err(|e| format!("{e}"))?;

    let mut sequential = Vec::new();
    for _ in 0..logins {
        let t = Instant::now();
        let status = login(addr, &email, PASSWORD).await?;
        if status != 200 {
            return Err(format!("connexion refusée : HTTP {status}"));
        }
        sequential.push(t.elapsed());
    }
    let (s50, s95) = summary(sequential);
    let mut wrong = Vec::new();
    for _ in 0..4 {
        let t = Instant::now();
        login(addr, "inconnu@essai.dz", "Mauvais#Essai26").await?;
        wrong.push(t.elapsed());
    }
    let (w50, _) = summary(wrong);
    // Four clients at once: throughput on two cores (hashing is limited to one per core).
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let email = email.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..logins / 4 {
                login(addr, &email, PASSWORD).await?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let per_sec = (logins / 4 * 4) as f64 / t.elapsed().as_secs_f64();
    server.stop().await;

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let section = format!(
        "{begin}\n## Connexion, {backend} (argon2id m = {} KiB, t = {}, p = {}) — {}\n\n\
         Written by `manchengo bench login` (release build, {cores} cores, {backend}).\n\n\
         | What | Median | p95 |\n|---|---|---|\n\
         | argon2id hash (one core) | {} | {} |\n\
         | argon2id verify (one core) | {} | {} |\n\
         | `POST /api/auth/login`, one client, {logins} logins (verify + session + refresh token + audit, one transaction) | {} | {} |\n\
         | Unknown e-mail (verified against the dummy hash: same work) | {} | — |\n\
         | Four clients at once | {per_sec:.0} logins/s | — |\n{end}\n",
        app::auth::password::M_COST,
        app::auth::password::T_COST,
        app::auth::password::P_COST,
        chrono::Utc::now().format("%Y-%m-%d"),
        ms(h50),
        ms(h95),
        ms(v50),
        ms(v95),
        ms(s50),
        ms(s95),
        ms(w50),
    );
    if let Some(path) = write {
        write_section(&path, &section)?;
    }
    Ok(section)
}

/// Replaces the section between its `<!-- bench:… -->` markers in `path`, or puts it before the first section.
pub fn write_section(path: &std::path::Path, section: &str) -> Result<(), String> {
    let begin = section.lines().next().unwrap_or_default().to_string();
    let end = begin.replacen("<!-- ", "<!-- /", 1);
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let updated = match (text.find(&begin), text.find(&end)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &text[..a], section, text[b + end.len()..].trim_start_matches('\n'))
        }
        _ => {
            // A new section goes before the first existing one (newest first), after the introduction.
            let at = [text.find("\n## "), text.find("\n<!-- bench:")].into_iter().flatten().min();
            match at {
                Some(i) => format!("{}\n{}\n{}", &text[..i], section, &text[i + 1..]),
                None => format!("{}\n\n{section}", text.trim_end()),
            }
        }
    };
    std::fs::write(path, updated).map_err(|e| e.to_string())
}

/// Median and 95th percentile in milliseconds (benches' tables).
pub fn spread_ms(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.95))
}

/// A server built in process for a bench: a throw-away data directory, the given database (a temporary SQLite file
/// by default), quiet logs, listening on a free port.
pub struct BenchServer {
    pub state: app::state::AppState,
    pub addr: std::net::SocketAddr,
    pub dir: std::path::PathBuf,
    /// "SQLite (embarquée)" or "PostgreSQL", for the section title.
    pub backend: &'static str,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    pub async fn start(database_url: Option<String>, extra: &[(&str, &str)]) -> Result<BenchServer, String> {
        let dir = std::env::temp_dir().join(format!("manchengo-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let url = database_url.unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
        let backend = if url.starts_with("sqlite:") { "SQLite (embarquée)" } else { "PostgreSQL" };
        let mut values = std::collections::HashMap::new();
        for (k, v) in [
            ("DATABASE_URL", url.as_str()),
            ("DATA_DIR", &dir.display().to_string()),
            ("LOG_LEVEL", "error"),
            ("LOG_FORMAT", "json"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            values.insert(k.to_string(), v.to_string());
        }
        let config = app::config::Config::from_values(&values).map_err(|e| e.join("; "))?;
        let built = app::server::App::build(config, app::server::Options::default()).await?;
        let state = built.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(built.serve(listener, async move {
            let _ = stopped.await;
        }));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !state.dbmon.is_up() {
            if std::time::Instant::now() > deadline {
                return Err("base de données injoignable".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(BenchServer { state, addr, dir, backend, stop, handle })
    }

    /// The section tag of this backend (`sqlite` or `postgres`).
    pub fn tag(&self) -> &'static str {
        if self.backend.starts_with("SQLite") { "sqlite" } else { "postgres" }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
