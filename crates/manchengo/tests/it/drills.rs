//! Runbook drills (PLATFORM.md §15.1) against real processes: INC-002 database outage, INC-003 Redis killed,
//! INC-004 rate limiting and its `.env` fix. Deadlines are asserted generously but as behaviour.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::procs::{Manchengo, PrivatePostgres, PrivateRedis};
use crate::support::{client, eventually, get_json};

async fn status_of(url: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let r = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap().get(url).send().await;
    match r {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null), started.elapsed())
        }
        Err(_) => (0, Value::Null, started.elapsed()),
    }
}

/// INC-002: the server starts without its database, fails fast while it is down, and recovers without a restart.
#[tokio::test]
async fn inc_002_database_outage() {
    let pg = PrivatePostgres::start();
    pg.stop_immediate();
    let srv = Manchengo::spawn(&[("DATABASE_URL", &pg.url())]);

    // Started while PostgreSQL is down: alive, not ready, API refuses at once.
    let (s, _, _) = status_of(&srv.url("/api/health")).await;
    assert_eq!(s, 200);
    let (s, body, _) = status_of(&srv.url("/api/health/ready")).await;
    assert_eq!((s, body["checks"]["database"]["status"].as_str()), (503, Some("down")));
    let (s, body, took) = status_of(&srv.url("/api/system/jobs")).await;
    assert_eq!((s, body["error"]["code"].as_str()), (503, Some("DATABASE_UNAVAILABLE")));
    assert!(took < Duration::from_secs(2), "fail fast: {took:?}");

    pg.start_server();
    eventually(Duration::from_secs(20), "ready after the database arrives", || async {
        status_of(&srv.url("/api/health/ready")).await.0 == 200
    })
    .await;
    let (s, _, _) = status_of(&srv.url("/api/system/jobs")).await;
    assert_eq!(s, 200, "migrations and secrets ran once the database came");

    // The database stops under requests for 30 s.
    pg.stop_immediate();
    let stopped = Instant::now();
    let ready_down = eventually(Duration::from_secs(3), "ready says 503 database down", || async {
        let (s, b, _) = status_of(&srv.url("/api/health/ready")).await;
        s == 503 && b["status"] == "unavailable" && b["checks"]["database"]["status"] == "down"
    })
    .await;
    assert!(ready_down <= Duration::from_secs(3));
    while stopped.elapsed() < Duration::from_secs(30) {
        let (s, body, took) = status_of(&srv.url("/api/system/jobs")).await;
        assert_eq!(s, 503, "{body}");
        assert_eq!(body["error"]["code"], "DATABASE_UNAVAILABLE");
        assert!(took < Duration::from_secs(2), "no hanging request: {took:?}");
        let (s, _, _) = status_of(&srv.url("/api/health")).await;
        assert_eq!(s, 200, "liveness stays up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let page = client().get(srv.url("/pas-encore")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Service momentanément indisponible"));

    pg.start_server();
    let back = eventually(Duration::from_secs(15), "recovery without restart", || async {
        status_of(&srv.url("/api/health/ready")).await.0 == 200
            && status_of(&srv.url("/api/system/jobs")).await.0 == 200
    })
    .await;
    eprintln!("INC-002: ready down after {ready_down:?}, recovered {back:?} after the database returned");
    let logs = srv.logs();
    assert!(logs.contains("database_down") && logs.contains("database_up"), "transitions logged");
}

/// INC-003: Redis killed at runtime — no 5xx, memory mode within one request, back to Redis after it returns.
#[tokio::test]
async fn inc_003_redis_killed() {
    let mut redis = PrivateRedis::start();
    let srv = Manchengo::spawn(&[("REDIS_URL", &redis.url())]);
    eventually(Duration::from_secs(20), "ready with redis", || async {
        let (s, b, _) = status_of(&srv.url("/api/health/ready")).await;
        s == 200 && b["checks"]["cache"]["mode"] == "redis"
    })
    .await;
    let (_, d, _) = status_of(&srv.url("/api/health/detailed")).await;
    assert_eq!(d["cache"]["mode"], "redis");
    assert_eq!(d["rateLimit"]["backend"], "redis");
    for _ in 0..5 {
        assert_eq!(status_of(&srv.url("/api/system/jobs")).await.0, 200);
    }

    redis.kill();
    // The first readiness probe after the kill already reports the fallback.
    let (s, b, _) = status_of(&srv.url("/api/health/ready")).await;
    assert_eq!(s, 200);
    assert_eq!(b["status"], "degraded");
    assert_eq!(b["checks"]["cache"]["status"], "down");
    assert_eq!(b["checks"]["cache"]["mode"], "memory");
    for _ in 0..30 {
        let (s, _, _) = status_of(&srv.url("/api/system/jobs")).await;
        assert!(s < 500, "no 5xx while Redis is down (got {s})");
        let (s, _, _) = status_of(&srv.url("/")).await;
        assert!(s < 500);
    }
    let (_, d, _) = status_of(&srv.url("/api/health/detailed")).await;
    assert_eq!(d["cache"]["mode"], "fallback");
    assert!(d["cache"]["fallbackSince"].is_string());

    redis.restart();
    let back = eventually(Duration::from_secs(10), "back to redis", || async {
        let (s, b, _) = status_of(&srv.url("/api/health/ready")).await;
        s == 200 && b["status"] == "ready" && b["checks"]["cache"]["mode"] == "redis"
    })
    .await;
    eprintln!("INC-003: back to redis {back:?} after restart");
    let logs = srv.logs();
    assert_eq!(logs.matches("\"cache_fallback\"").count(), 1, "the fallback is logged once:\n{logs}");
    assert_eq!(logs.matches("\"cache_recovered\"").count(), 1);
    let mut access_lines = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("every log line is JSON: {line}"));
        if v["message"] == "request" {
            access_lines += 1;
            assert!(v["request_id"].is_string() && v["status"].is_number() && v["route"].is_string(), "{line}");
        }
    }
    assert!(access_lines > 30, "one access line per request ({access_lines})");
}

/// INC-004: limits per real client behind a trusted proxy, 429 with headers, and `RATE_LIMIT_MAX=200` in `.env`
/// followed by a restart lets more requests through.
#[tokio::test]
async fn inc_004_rate_limiting_and_the_env_fix() {
    let env_file_dir = crate::support::tempdir::Dir::new("env");
    let env_file = env_file_dir.path().join("manchengo.env");
    std::fs::write(&env_file, "RATE_LIMIT_MAX=100\nRATE_LIMIT_TTL=60\nTRUSTED_PROXIES=127.0.0.2/32\n").unwrap();
    let mut srv = Manchengo::spawn(&[("MANCHENGO_ENV_FILE", env_file.to_str().unwrap())]);
    // "nginx" is 127.0.0.2; it forwards two real clients.
    let proxy = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let url = srv.url("/api/openapi.json");
    let send = |ip: &'static str| proxy.get(&url).header("x-forwarded-for", ip).send();

    let mut statuses = Vec::new();
    for _ in 0..150 {
        statuses.push(send("41.200.0.1").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 100);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 50);
    let r = send("41.200.0.1").await.unwrap();
    assert_eq!(r.status(), 429);
    for h in ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "RATE_LIMITED");
    assert_eq!(send("41.200.0.2").await.unwrap().status(), 200, "another client keeps its own budget");

    // The runbook's fix: edit .env, restart.
    let status = std::process::Command::new("sed")
        .args(["-i", "s/^RATE_LIMIT_MAX=.*/RATE_LIMIT_MAX=200/"])
        .arg(&env_file)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(srv.terminate(), Some(0), "graceful stop");
    srv.start();
    eventually(Duration::from_secs(20), "ready after restart", || async {
        status_of(&srv.url("/api/health/ready")).await.0 == 200
    })
    .await;
    let mut ok = 0;
    for _ in 0..150 {
        if send("41.200.0.3").await.unwrap().status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 150);
    let (_, d) = get_json(&srv.url("/api/health/detailed")).await;
    assert_eq!(d["rateLimit"]["max"], 200);
}

/// INC-001 / D1 (issue 4): `kill -9` of the server during a stream of receptions and losses; after a restart every
/// acknowledged operation is there and `manchengo check` is clean. On the embedded SQLite and on PostgreSQL.
#[tokio::test]
async fn inc_001_kill_9_during_stock_writes_loses_no_acknowledged_operation() {
    crate::support::on_both(|t| async move {
        // The first administrator and a product, straight in the database the server will use.
        {
            let db = t.migrated().await;
            let actor = store::audit::Actor::system("drill");
            let now = chrono::Utc::now();
            let hash = app::auth::password::hash_now(crate::support::PASSWORD);
            db.write(|tx| {
                let (actor, hash) = (actor.clone(), hash.clone());
                Box::pin(async move {
                    let u = store::identity::NewUser {
                        email: "admin@drill.dz".into(),
                        first_name: "Drill".into(),
                        last_name: "Admin".into(),
                        role: domain::identity::Role::Admin,
                        password_hash: hash,
                        must_change_password: false,
                    };
                    store::identity::create_user(&**tx, u, &actor, now, false).await?;
                    Ok::<_, store::OpError>(())
                })
            })
            .await
            .unwrap();
            db.close().await;
        }
        let data = t.dir.path().join("srv-data");
        let mut srv = Manchengo::spawn(&[("DATABASE_URL", &t.url), ("DATA_DIR", &data.display().to_string())]);
        eventually(Duration::from_secs(20), "ready", || async { status_of(&srv.url("/api/health/ready")).await.0 == 200 }).await;
        let login = client()
            .post(srv.url("/api/auth/login"))
            .json(&serde_json::json!({"email": "admin@drill.dz", "password": crate::support::PASSWORD, "client": "device"}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let token = login["accessToken"].as_str().unwrap().to_string();
        let c = client();
        let post = {
            let (c, token) = (c.clone(), token.clone());
            move |path: String, body: Value| {
            let (c, token) = (c.clone(), token.clone());
            async move {
                let r = c.post(path).bearer_auth(token).json(&body).send().await.ok()?;
                let status = r.status().as_u16();
                Some((status, r.json::<Value>().await.ok()?))
            }
            }
        };
        post(srv.url("/api/suppliers"), serde_json::json!({"raisonSociale": "Laiterie Drill"})).await.unwrap();
        post(srv.url("/api/catalogue/mp"), serde_json::json!({"code": "MP-LAIT", "name": "Lait", "category": "RAW_MATERIAL", "baseUnit": "KG", "perishable": false})).await.unwrap();

        // The stream: a reception of 10 kg, then a loss of 1 kg on its lot, again and again; each 201 is acknowledged.
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let stream = {
            let (acked, base) = (acked.clone(), srv.url(""));
            let post = post.clone();
            tokio::spawn(async move {
                for _ in 0..10_000 {
                    let body = serde_json::json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-LAIT", "quantity": 10_000, "unitCostHt": 300}]});
                    let Some((201, r)) = post(format!("{base}/api/receptions"), body).await else { break };
                    let reference = r["reception"]["reference"].as_str().unwrap().to_string();
                    let lot = r["reception"]["lines"][0]["lotNumber"].as_str().unwrap().to_string();
                    acked.lock().unwrap().push(("reception".into(), reference));
                    let loss = serde_json::json!({"lotNumber": lot, "quantity": 1_000, "reason": "OTHER", "note": "Échantillon laboratoire"});
                    let Some((201, l)) = post(format!("{base}/api/stock/losses"), loss).await else { break };
                    acked.lock().unwrap().push(("loss".into(), l["reference"].as_str().unwrap().to_string()));
                }
            })
        };
        // Let a few dozen operations through, then pull the plug.
        eventually(Duration::from_secs(30), "operations acknowledged", || async { acked.lock().unwrap().len() >= 40 }).await;
        srv.kill9();
        let _ = tokio::time::timeout(Duration::from_secs(15), stream).await;
        let acked = acked.lock().unwrap().clone();
        assert!(acked.len() >= 40);

        srv.start();
        eventually(Duration::from_secs(30), "ready again after kill -9", || async { status_of(&srv.url("/api/health/ready")).await.0 == 200 }).await;
        for (kind, reference) in acked.iter().filter(|(k, _)| k == "reception") {
            let r = c.get(srv.url(&format!("/api/receptions/{reference}"))).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 200, "acknowledged {kind} {reference} lost after kill -9 ({:?})", t.kind);
        }
        srv.terminate();
        let db = t.open().await;
        for (_, reference) in acked.iter().filter(|(k, _)| k == "loss") {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let found = store::stock::losses::Entity::find()
                .filter(store::stock::losses::Column::Reference.eq(reference.clone()))
                .one(db.conn())
                .await
                .unwrap();
            assert!(found.is_some(), "acknowledged loss {reference} lost after kill -9 ({:?})", t.kind);
        }
        db.close().await;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_manchengo"))
            .args(["check", "--database-url", &t.url])
            .env("DATA_DIR", &data)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "manchengo check after kill -9 ({:?}):\n{text}", t.kind);
        assert!(text.contains("registre des stocks cohérent"), "{text}");
        eprintln!("INC-001 ({:?}): {} acknowledged operations survived kill -9", t.kind, acked.len());
    })
    .await;
}

/// D1 through nginx (PLATFORM.md §15.1, runbook INC-001): two instances (`backend`, `web`) on one PostgreSQL behind
/// the shipped nginx configuration; `kill -9` of `backend` during a stream of GETs: every GET still answers 200 (nginx
/// retries the failed upstream on `web`), the access log is one JSON object per line, and after a restart `backend`
/// serves again.
#[tokio::test]
async fn d1_nginx_keeps_serving_through_web_when_backend_is_killed() {
    let Some(t) = crate::support::TestDb::new(crate::support::Kind::Postgres).await else { return };
    {
        let db = t.migrated().await;
        let hash = app::auth::password::hash_now(crate::support::PASSWORD);
        db.write(|tx| {
            let hash = hash.clone();
            Box::pin(async move {
                let u = store::identity::NewUser {
                    email: "admin@drill.dz".into(),
                    first_name: "Drill".into(),
                    last_name: "Admin".into(),
                    role: domain::identity::Role::Admin,
                    password_hash: hash,
                    must_change_password: false,
                };
                store::identity::create_user(
                    &**tx,
                    u,
                    &store::audit::Actor::system("drill"),
                    chrono::Utc::now(),
                    false,
                )
                .await?;
                Ok::<_, store::OpError>(())
            })
        })
        .await
        .unwrap();
        db.close().await;
    }
    // D1 is about failover, not limits: the application limit is raised, and the pace (20 requests/s) stays under the
    // edge zone's 30 r/s.
    let env = [("DATABASE_URL", t.url.as_str()), ("TRUSTED_PROXIES", "127.0.0.10/32"), ("RATE_LIMIT_MAX", "1000")];
    let mut backend = Manchengo::spawn(&env);
    let mut web_env = env.to_vec();
    web_env.push(("INSTANCE_NAME", "web"));
    let web = Manchengo::spawn(&web_env);
    for srv in [&backend, &web] {
        eventually(Duration::from_secs(20), "ready", || async {
            status_of(&srv.url("/api/health/ready")).await.0 == 200
        })
        .await;
    }
    let Some(nginx) = crate::support::procs::Nginx::start(backend.port, web.port) else { return };
    let tls =
        reqwest::Client::builder().danger_accept_invalid_certs(true).timeout(Duration::from_secs(10)).build().unwrap();
    let login = crate::support::login_as_device(
        &tls,
        &nginx.url("/api/auth/login"),
        "admin@drill.dz",
        crate::support::PASSWORD,
    )
    .await;
    let token = login["accessToken"].as_str().unwrap().to_string();
    let get = |tls: reqwest::Client, url: String, token: String| async move {
        tls.get(url).bearer_auth(token).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    };
    let mut statuses = Vec::new();
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(3) {
        if !killed && started.elapsed() > Duration::from_millis(500) {
            backend.kill9();
            killed = true;
        }
        statuses.push(get(tls.clone(), nginx.url("/api/stock/lots"), token.clone()).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(statuses.len() > 30, "{}", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "a GET failed while backend was down: {statuses:?}\n{}", nginx.logs());
    // INC-001 « docker compose up -d backend »: it comes back and takes traffic again.
    backend.start();
    eventually(Duration::from_secs(30), "backend ready", || async {
        status_of(&backend.url("/api/health/ready")).await.0 == 200
    })
    .await;
    for _ in 0..20 {
        assert_eq!(get(tls.clone(), nginx.url("/api/stock/lots"), token.clone()).await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let access: Vec<Value> = nginx
        .logs()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(access.len() >= statuses.len(), "every request is logged");
    assert!(access.iter().all(|a| a["request_id"].is_string() && a["status"].is_number()), "{:?}", access.first());
    drop(web);
}
