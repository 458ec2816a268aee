//! The runbook's own commands and the `infra/` scripts, run verbatim against the compose deployment as processes
//! (`support::procs::Deployment`: `docker` is `infra/drills/docker`). D2R: `restore-postgres.sh`; D0: the
//! diagnostics.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::procs::{Deployment, output_text};
use crate::support::{client, eventually};

const ADMIN: &str = "admin@fromagerie.dz";
const PASSWORD: &str = "Fromage-Djurdjura-2026";

/// `manchengo migrate`, the first administrator (the CLI reads the password twice on stdin), then `backend` and `web`
/// up and ready. Returns an access token.
async fn install(d: &Deployment) -> String {
    let out = d.sh("docker compose run --rm --no-deps backend manchengo migrate");
    assert!(out.status.success(), "{}", output_text(&out));
    let out = d.sh_with(
        &format!(
            "docker compose run --rm --no-deps backend manchengo user create-admin --email {ADMIN} --name 'Amine Admin'"
        ),
        &format!("{PASSWORD}\n{PASSWORD}\n"),
        &[],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let out = d.sh("docker compose up -d backend web");
    assert!(out.status.success(), "{}", output_text(&out));
    for port in [d.backend, d.web] {
        ready(d, port).await;
    }
    admin_token(d).await
}

async fn admin_token(d: &Deployment) -> String {
    let login = crate::support::login_as_device(&client(), &d.url(d.backend, "/api/auth/login"), ADMIN, PASSWORD).await;
    login["accessToken"].as_str().unwrap().to_string()
}

async fn ready(d: &Deployment, port: u16) {
    let url = d.url(port, "/api/health/ready");
    eventually(Duration::from_secs(30), "instance ready", || async {
        client().get(&url).send().await.map(|r| r.status() == 200).unwrap_or(false)
    })
    .await;
}

async fn post(d: &Deployment, token: &str, path: &str, body: Value) -> Value {
    let r = client().post(d.url(d.backend, path)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

async fn reception_refs(d: &Deployment, token: &str) -> Vec<String> {
    let v: Value = client()
        .get(d.url(d.backend, "/api/receptions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut refs: Vec<String> =
        v["items"].as_array().unwrap().iter().map(|i| i["reference"].as_str().unwrap().to_string()).collect();
    refs.sort();
    refs
}

async fn receive(d: &Deployment, token: &str, qty: i64) -> String {
    let v = post(
        d,
        token,
        "/api/receptions",
        json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-LAIT", "quantity": qty, "unitCostHt": 6_500}]}),
    )
    .await;
    v["reception"]["reference"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

fn psql(d: &Deployment, sql: &str) -> String {
    let out = d.sh(&format!("docker compose exec -T postgres psql -U manchengo -d manchengo_erp -tA -c \"{sql}\""));
    assert!(out.status.success(), "{sql}: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// D2R (PLATFORM.md §15.1, runbook INC-002 step 3): a table corrupted after the last backup; every bad input to
/// `restore-postgres.sh` (no file, refused confirmation, truncated archive, wrong passphrase, SQL failing halfway)
/// exits non-zero with a French message and leaves the current database and the running services as they were; then
/// the runbook's command on `/backups/latest.sql.gz` brings back exactly the backup, keeps a safety dump and the old
/// database, migrates, restarts what ran and passes its health gate.
#[tokio::test]
async fn d2r_restore_postgres_sh_brings_back_latest_and_bad_inputs_change_nothing() {
    let d = Deployment::new(false, "");
    let token = install(&d).await;
    post(&d, &token, "/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})).await;
    post(
        &d,
        &token,
        "/api/catalogue/mp",
        json!({"code": "MP-LAIT", "name": "Lait cru", "category": "RAW_MATERIAL", "baseUnit": "L", "perishable": false}),
    )
    .await;
    let before = receive(&d, &token, 1_000_000).await;
    let out = d.sh("./infra/backup/backup-postgres.sh --label avant-intervention");
    assert!(out.status.success(), "{}", output_text(&out));
    let root_link = d.backups().join("latest.sql.gz");
    assert_eq!(std::fs::read_link(&root_link).unwrap(), std::path::Path::new("manchengo/latest.sql.gz"));
    assert!(root_link.exists(), "the root link resolves");

    // After the backup: one more reception, then a lot balance corrupted by hand.
    let after = receive(&d, &token, 250_000).await;
    psql(&d, "UPDATE lots SET quantity_remaining = quantity_remaining + 7 WHERE initial_quantity = 250000");
    // A driver's phone synchronised after the backup: the restore names it (PLATFORM.md §12.3).
    psql(
        &d,
        "INSERT INTO devices (id, name, user_id, platform, app_version, last_sync_at, registered_at) \
         SELECT gen_random_uuid(), 'Camion 2 Yacine', id, 'android', '1.0.0', now(), now() FROM users LIMIT 1",
    );
    let out = d.sh("docker compose exec backend manchengo check");
    assert_eq!(out.status.code(), Some(1), "the corruption is detected: {}", output_text(&out));
    let corrupted = psql(&d, "SELECT string_agg(quantity_remaining::text, ',' ORDER BY quantity_remaining) FROM lots");

    let latest = std::fs::canonicalize(&root_link).unwrap();
    let work = crate::support::tempdir::Dir::new("d2r");
    let truncated = work.path().join("manchengo_20260101_000000.sql.gz");
    let bytes = std::fs::read(&latest).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // A valid archive with the completion marker whose SQL fails halfway (a statement on a table that does not exist).
    let broken = work.path().join("manchengo_20260101_000001.sql.gz");
    let sql =
        String::from_utf8(std::process::Command::new("gzip").arg("-dc").arg(&latest).output().unwrap().stdout).unwrap();
    let cut = sql.find("COPY public.").expect("data section");
    let bad_sql = format!("{}INSERT INTO table_absente VALUES (1);\n{}", &sql[..cut], &sql[cut..]);
    let gz = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("gzip -c > {}", broken.display()))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut gz = gz;
        gz.stdin.take().unwrap().write_all(bad_sql.as_bytes()).unwrap();
        assert!(gz.wait().unwrap().success());
    }
    let (pass, wrong) = (work.path().join("phrase"), work.path().join("autre-phrase"));
    std::fs::write(&pass, "une phrase secrète assez longue\n").unwrap();
    std::fs::write(&wrong, "pas la bonne phrase\n").unwrap();
    let encrypted = work.path().join("manchengo_20260101_000002.sql.gz.enc");
    let out = std::process::Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "600000", "-salt", "-pass"])
        .arg(format!("file:{}", pass.display()))
        .arg("-in")
        .arg(&latest)
        .arg("-out")
        .arg(&encrypted)
        .output()
        .unwrap();
    assert!(out.status.success());

    let restore = "./infra/backup/restore-postgres.sh";
    // (command, answer typed at the prompt, extra environment, expected message)
    type Case<'a> = (String, &'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (format!("{restore} /backups/introuvable.sql.gz --yes"), "", vec![], "fichier introuvable"),
        (format!("{restore} {}", latest.display()), "non\n", vec![], "abandon : rien n'a été modifié"),
        (format!("{restore} {} --yes", truncated.display()), "", vec![], "archive corrompue"),
        (
            format!("{restore} {} --yes", encrypted.display()),
            "",
            vec![("BACKUP_PASSPHRASE_FILE", wrong.to_str().unwrap())],
            "déchiffrement impossible : phrase secrète incorrecte",
        ),
        (
            format!("{restore} {} --yes", broken.display()),
            "",
            vec![],
            "restauration échouée : la base actuelle est intacte",
        ),
    ];
    for (cmd, stdin, env, message) in &cases {
        let out = d.sh_with(cmd, stdin, env);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {text}");
        assert!(text.contains(message), "{cmd}: {text}");
        // Untouched: the same (corrupted) data, both instances serving again, no half-restored database left.
        for port in [d.backend, d.web] {
            ready(&d, port).await;
        }
        assert_eq!(reception_refs(&d, &token).await, vec![before.clone(), after.clone()], "{cmd}");
        assert_eq!(
            psql(&d, "SELECT string_agg(quantity_remaining::text, ',' ORDER BY quantity_remaining) FROM lots"),
            corrupted
        );
        assert_eq!(psql(&d, "SELECT count(*) FROM pg_database WHERE datname LIKE 'manchengo_erp_%'"), "0", "{cmd}");
    }

    // The runbook's command (INC-002 step 3 / DR step 5), through the root link.
    let started = std::time::Instant::now();
    let out = d.sh(&format!("{restore} {} --yes", root_link.display()));
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    println!("D2R : restore-postgres.sh terminé en {} ms", started.elapsed().as_millis());
    assert!(text.contains("Restauration terminée en"), "{text}");
    assert!(text.contains("DROP DATABASE manchengo_erp_pre_"), "{text}");
    assert!(text.contains("Appareils synchronisés après la sauvegarde"), "{text}");
    assert!(text.contains("Camion 2 Yacine — "), "{text}");
    // The health gate passed before the script returned: both instances run and the backend answers at once.
    let running = d.sh("docker compose ps --services --status running");
    let running = String::from_utf8_lossy(&running.stdout).to_string();
    assert!(running.contains("backend") && running.contains("web"), "{running}");
    assert_eq!(client().get(d.url(d.backend, "/api/health/ready")).send().await.unwrap().status(), 200);
    // Exactly the backup: the later reception is gone, the lot balances are consistent again.
    let token = admin_token(&d).await;
    assert_eq!(reception_refs(&d, &token).await, vec![before.clone()]);
    assert_eq!(psql(&d, "SELECT string_agg(quantity_remaining::text, ',') FROM lots"), "1000000");
    let out = d.sh("docker compose exec backend manchengo check");
    assert!(out.status.success(), "{}", output_text(&out));
    // The safety dump of the corrupted database is readable, and that database is kept aside.
    let dumps: Vec<_> = std::fs::read_dir(d.backups().join("manchengo"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("pre-restore_"))
        .collect();
    // One per attempt that got past the checks: the SQL that failed halfway, then the real restore.
    assert_eq!(dumps.len(), 2, "{dumps:?}");
    for dump in &dumps {
        let out = std::process::Command::new("pg_restore").arg("--list").arg(dump).output().unwrap();
        assert!(out.status.success());
    }
    assert_eq!(psql(&d, "SELECT count(*) FROM pg_database WHERE datname LIKE 'manchengo_erp_pre_%'"), "1");
}

/// The command lines of the runbook's diagnostic blocks: the « Procédures de diagnostic » section (code blocks and the
/// commands quoted in its lists) and every block introduced by « **Diagnostic** ». Continuation lines are joined;
/// comments dropped.
fn diagnostic_commands(runbook: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_diagnostics = false;
    let mut take_next_block = false;
    let mut in_block = false;
    let mut keep_block = false;
    let mut pending = String::new();
    for line in runbook.lines() {
        if line.starts_with("## ") {
            in_diagnostics = line.contains("Procédures de diagnostic");
        }
        if line.trim_start().starts_with("```") {
            if in_block {
                in_block = false;
            } else {
                in_block = true;
                keep_block = in_diagnostics || take_next_block;
                take_next_block = false;
            }
            continue;
        }
        if in_block {
            if !keep_block {
                continue;
            }
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(head) = l.strip_suffix('\\') {
                pending.push_str(head.trim_end());
                pending.push(' ');
                continue;
            }
            pending.push_str(l);
            commands.push(std::mem::take(&mut pending));
            continue;
        }
        if line.starts_with("**Diagnostic**") {
            take_next_block = true;
        }
        if in_diagnostics && line.starts_with("- ") {
            // `curl …` and `docker …` quoted in the « Métriques clés » list.
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 1 && (span.starts_with("curl ") || span.starts_with("docker ")) {
                    commands.push(span.to_string());
                }
            }
        }
    }
    commands
}

#[test]
fn the_diagnostic_commands_are_read_from_the_runbook() {
    let runbook = std::fs::read_to_string(format!("{}/docs/RUNBOOK.md", crate::support::procs::REPO)).unwrap();
    let cmds = diagnostic_commands(&runbook);
    assert!(cmds.contains(&"curl -s http://localhost:3000/api/health/detailed | jq .".to_string()), "{cmds:#?}");
    assert!(cmds.iter().any(|c| c.starts_with("docker compose exec postgres psql -U manchengo -d manchengo_erp -c \"SELECT id, name, platform, last_sync_at FROM devices")), "{cmds:#?}");
    assert!(cmds.contains(&"docker compose exec redis redis-cli ping".to_string()));
    assert!(
        !cmds.iter().any(|c| c.contains("restart") || c.contains("FLUSHALL") || c.contains("UPDATE ")),
        "only diagnostics: {cmds:#?}"
    );
}

/// Keys of PLATFORM.md §9.1's detailed report (the `sync` section arrives with the sync API, issue 8).
const DETAILED_KEYS: &[&str] = &[
    "status",
    "timestamp",
    "version",
    "commit",
    "environment",
    "instance",
    "uptime.seconds",
    "uptime.human",
    "checks.database.status",
    "checks.database.responseTimeMs",
    "checks.database.backend",
    "checks.database.pool.size",
    "checks.database.pool.idle",
    "checks.database.pool.max",
    "checks.database.schemaVersion",
    "checks.cache.status",
    "checks.cache.mode",
    "cache.hits",
    "cache.misses",
    "cache.sets",
    "cache.invalidations",
    "cache.hitRate",
    "cache.hitRateFormatted",
    "cache.mode",
    "cache.fallbackSince",
    "rateLimit.backend",
    "rateLimit.limited429Total",
    "rateLimit.max",
    "rateLimit.ttlSeconds",
    "rateLimit.loginMax",
    "jobs",
    "memory.rssBytes",
    "memory.rss",
    "memory.limitBytes",
    "backups.lastAt",
    "backups.lastFile",
    "backups.ageHours",
    "backups.lastRestoreTestAt",
    "backups.lastRestoreTestStatus",
    "tls.notAfter",
    "tls.daysLeft",
];

/// D0 (PLATFORM.md §15.1): every diagnostic command of the runbook runs verbatim against the deployment (PostgreSQL,
/// Redis, `backend` and `web`, nginx in front) — only `localhost:3000` becomes the backend's port — and succeeds with
/// an answer, except the few that need a container engine (`docker stats`, `docker inspect`, the logs of the
/// postgres/redis/nginx/certbot containers, certbot), whose spellings the compose parse checks. The detailed JSON
/// has every key of §9.1; through nginx, from an address outside `HEALTH_DETAILED_ALLOW`, it is 401; every log line
/// of both instances is JSON.
#[tokio::test]
async fn d0_every_runbook_diagnostic_runs_verbatim() {
    // The certificate nginx serves, watched by the backend (TLS_CERT_FILE): 30 days left.
    let certs = crate::support::tempdir::Dir::new("cert");
    let cert = certs.path().join("cert.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=erp.example.dz",
            "-keyout",
        ])
        .arg(certs.path().join("privkey.pem"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    let d = Deployment::new(true, &format!("TLS_CERT_FILE={}\n", cert.display()));
    let token = install(&d).await;
    post(&d, &token, "/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})).await;
    let out = d.sh("./infra/backup/backup-postgres.sh");
    assert!(out.status.success(), "{}", output_text(&out));
    let Some(nginx) = crate::support::procs::Nginx::start(d.backend, d.web) else { return };

    let runbook = std::fs::read_to_string(format!("{}/docs/RUNBOOK.md", crate::support::procs::REPO)).unwrap();
    let commands = diagnostic_commands(&runbook);
    let (mut ran, mut engine) = (Vec::new(), Vec::new());
    for original in &commands {
        let cmd = original.replace("localhost:3000", &format!("127.0.0.1:{}", d.backend));
        let out = d.sh(&cmd);
        let text = output_text(&out);
        if text.contains("pas de moteur de conteneurs") || original.starts_with("df -h /var/lib/docker") {
            assert!(engine_only(original), "this diagnostic should run here: {original}\n{text}");
            engine.push(original.clone());
            continue;
        }
        if original.starts_with("echo | openssl s_client") {
            // TLS is D6's drill; here the command is run against nginx's port.
            let cmd = original.replace("localhost:443", &format!("127.0.0.1:{}", nginx.https));
            let out = d.sh(&cmd);
            assert!(String::from_utf8_lossy(&out.stdout).contains("notAfter="), "{cmd}: {}", output_text(&out));
            ran.push(original.clone());
            continue;
        }
        let grep_without_match = original.contains("| grep") && out.status.code() == Some(1) && out.stdout.is_empty();
        assert!(out.status.success() || grep_without_match, "{original}\n{text}");
        if !grep_without_match {
            assert!(!out.stdout.is_empty(), "an answer: {original}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("\"error\": {") && stdout.trim() != "null", "{original}\n{stdout}");
        ran.push(original.clone());
    }
    println!(
        "D0 : {} commandes exécutées, {} réservées au moteur de conteneurs : {engine:#?}",
        ran.len(),
        engine.len()
    );
    assert!(ran.len() >= 25, "{ran:#?}");

    let (status, detailed) = crate::support::get_json(&d.url(d.backend, "/api/health/detailed")).await;
    assert_eq!(status, 200);
    for key in DETAILED_KEYS {
        let mut v = &detailed;
        for part in key.split('.') {
            v = v.get(part).unwrap_or_else(|| panic!("{key} missing in {detailed:#}"));
        }
    }
    assert_eq!(detailed["checks"]["database"]["backend"], "postgres");
    assert_eq!(detailed["checks"]["cache"]["mode"], "redis");
    assert!(detailed["backups"]["lastFile"].as_str().unwrap().ends_with(".dump"), "{}", detailed["backups"]);
    assert!(matches!(detailed["tls"]["daysLeft"].as_i64(), Some(29 | 30)), "{}", detailed["tls"]);

    // Through nginx from a client outside HEALTH_DETAILED_ALLOW (nginx forwards the real address).
    let outsider = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 5]))
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = outsider.get(nginx.url("/api/health/detailed")).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", nginx.logs());
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "UNAUTHENTICATED");

    for svc in ["backend", "web"] {
        let log = d.log(svc);
        assert!(log.lines().count() >= 2, "{svc}: {log}");
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            assert!(serde_json::from_str::<Value>(line).is_ok(), "{svc}: not JSON: {line}");
        }
    }
}

/// Diagnostics that need the container engine itself, not a process of ours.
fn engine_only(cmd: &str) -> bool {
    cmd.starts_with("docker stats ")
        || cmd.starts_with("docker inspect ")
        || cmd.starts_with("df -h /var/lib/docker")
        || ["postgres", "redis", "nginx", "certbot"]
            .iter()
            .any(|s| cmd.starts_with(&format!("docker compose logs {s}")))
        || cmd.starts_with("docker compose run --rm certbot")
}

/// A client with its own loopback address, talking HTTPS to nginx (self-signed certificate of the rendered config).
fn client_at(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, last_octet]))
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// Requests at 25 per second: under nginx's `general` zone (30 r/s), so only the application's limits answer.
async fn paced_statuses(c: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = std::time::Instant::now();
        out.push(c.get(url).send().await.unwrap().status().as_u16());
        tokio::time::sleep(Duration::from_millis(40).saturating_sub(started.elapsed())).await;
    }
    out
}

/// D4 / INC-004 through nginx (PLATFORM.md §15.1, §16): two app instances behind the shipped nginx config sharing
/// their counters in Redis. Limits follow the real client address, not nginx's: client A gets exactly
/// `RATE_LIMIT_MAX` answers over both instances then `429 RATE_LIMITED` (`layer: app`, `Retry-After`, `RateLimit-*`)
/// while client B is served; a burst above nginx's zone gets nginx's own 429 (`layer: edge`). Refresh and `me` never
/// meet the login zone; the 6th wrong login is `429 ACCOUNT_LOCKED`. The runbook's fix, verbatim: `sed -i` on `.env`,
/// `docker compose restart backend web` → 150 requests pass and the detailed report shows `max: 200`.
#[tokio::test]
async fn d4_rate_limits_through_nginx_and_the_env_fix_on_both_instances() {
    let d = Deployment::new(true, "RATE_LIMIT_MAX=100\nRATE_LIMIT_TTL=60\n");
    let token = install(&d).await;
    let Some(nginx) = crate::support::procs::Nginx::start(d.backend, d.web) else { return };
    let url = nginx.url("/api/openapi.json");

    let (a, b) = (client_at(2), client_at(3));
    let statuses = paced_statuses(&a, &url, 150).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 100, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 50);
    let r = a.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    for h in ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(body["error"]["details"]["layer"], "app");
    assert_eq!(b.get(&url).send().await.unwrap().status(), 200, "client B has its own budget");
    // Both instances served client A: the budget was shared, not 100 per instance.
    for svc in ["backend", "web"] {
        assert!(d.log(svc).contains("/api/openapi.json"), "{svc} served some of the requests");
    }

    // nginx's own limit: 120 requests at once from client C.
    let c = client_at(4);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..120 {
        let (c, u) = (c.clone(), nginx.url("/api/auth/me"));
        burst.spawn(async move { c.get(u).send().await.unwrap() });
    }
    let mut edge = Vec::new();
    while let Some(r) = burst.join_next().await {
        let r = r.unwrap();
        if r.status() == 429 {
            edge.push(r);
        }
    }
    assert!(!edge.is_empty(), "the general zone (30 r/s, burst 60) refused part of the burst");
    let body: Value = edge.into_iter().next().unwrap().json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(body["error"]["details"]["layer"], "edge");

    // A device session: 50 refreshes and 50 `me`, never refused.
    let e = client_at(5);
    let login = crate::support::login_as_device(&e, &nginx.url("/api/auth/login"), ADMIN, PASSWORD).await;
    let mut refresh = login["refreshToken"].as_str().unwrap().to_string();
    for _ in 0..50 {
        let r = e.post(nginx.url("/api/auth/refresh")).json(&json!({"refreshToken": refresh})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        refresh = v["refreshToken"].as_str().unwrap().to_string();
        let access = v["accessToken"].as_str().unwrap();
        let r = e.get(nginx.url("/api/auth/me")).bearer_auth(access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    // The runbook's fix, verbatim.
    let out = d.sh("sed -i 's/^RATE_LIMIT_MAX=.*/RATE_LIMIT_MAX=200/' .env");
    assert!(out.status.success(), "{}", output_text(&out));
    let out = d.sh("docker compose restart backend web");
    assert!(out.status.success(), "{}", output_text(&out));
    for port in [d.backend, d.web] {
        ready(&d, port).await;
    }
    let statuses = paced_statuses(&client_at(6), &url, 150).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let out = d.sh(&format!("curl -s http://127.0.0.1:{}/api/health/detailed | jq .rateLimit.max", d.backend));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200", "{}", output_text(&out));
    let (_, detailed) = crate::support::get_json(&d.url(d.web, "/api/health/detailed")).await;
    assert_eq!(detailed["rateLimit"]["max"], 200, "web read the same .env");

    // Wrong passwords: five refusals, then the account is locked (the login zone lets 6 through at once).
    let f = client_at(7);
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = f
            .post(nginx.url("/api/auth/login"))
            .json(&json!({"email": ADMIN, "password": "mauvais-mot-de-passe", "client": "device"}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        codes.push((status, v["error"]["code"].as_str().unwrap_or_default().to_string()));
    }
    assert!(codes[..5].iter().all(|(s, c)| *s == 401 && c == "INVALID_CREDENTIALS"), "{codes:?}");
    assert_eq!(codes[5], (429, "ACCOUNT_LOCKED".to_string()));
    drop(token);
}

fn has(program: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn bash(script: &str) -> std::process::Output {
    std::process::Command::new("bash").arg("-c").arg(script).output().unwrap()
}

/// `notAfter` of the certificate nginx serves for the domain, as the runbook's `openssl s_client` line shows it.
fn served_not_after(https: u16) -> i64 {
    let out = bash(&format!(
        "echo | openssl s_client -connect 127.0.0.1:{https} -servername erp.example.dz 2>/dev/null | openssl x509 -noout -enddate"
    ));
    app::platform::tls::parse_enddate(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|| panic!("{}", output_text(&out)))
}

async fn scraped_not_after(d: &Deployment) -> i64 {
    let text = client().get(d.url(d.backend, "/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("tls_certificate_not_after_seconds")).expect("metric exported");
    line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as i64
}

/// `TlsCertificateExpiresSoon` evaluated by promtool on a certificate's real `notAfter` (shifted to promtool's clock,
/// which starts at 0).
fn alert_fires(not_after: i64) -> bool {
    let now = chrono::Utc::now().timestamp();
    let dir = crate::support::tempdir::Dir::new("promtool");
    let rules = format!("{}/infra/monitoring/alerts.yml", crate::support::procs::REPO);
    let test = format!(
        "rule_files: ['{rules}']\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'tls_certificate_not_after_seconds{{instance=\"backend\"}}'\n        values: '{}x5'\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: TlsCertificateExpiresSoon\n        exp_alerts:\n          - exp_labels:\n              severity: warning\n            exp_annotations:\n              runbook: \"docs/RUNBOOK.md#inc-006\"\n              summary: \"Le certificat TLS expire dans moins de 14 jours.\"\n",
        not_after - now + 60
    );
    std::fs::write(dir.path().join("t.yml"), test).unwrap();
    std::process::Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(dir.path().join("t.yml"))
        .output()
        .unwrap()
        .status
        .success()
}

/// D6 / INC-006 offline (PLATFORM.md §15.1): Debian's pebble is the ACME CA on loopback (its DNS answers 127.0.0.1, its
/// HTTP-01 check reaches nginx's port 80 and the ACME webroot). nginx starts on the placeholder the entrypoint hook
/// makes; `init-letsencrypt.sh` gets the first certificate; that certificate then expires (rewritten in certbot's
/// archive, same key): nginx serves it, the metric reads it, the alert fires. The runbook's two commands —
/// `docker compose run --rm certbot renew` (through the certbot entrypoint) and `docker compose exec nginx nginx -s
/// reload` — bring a valid certificate back, seen by clients and by the metric without restarting the backend.
#[tokio::test]
async fn d6_an_expired_certificate_is_renewed_by_certbot_and_served_after_reload() {
    let tools = ["certbot", "pebble", "pebble-challtestsrv", "nginx", "promtool"];
    if let Some(missing) = tools.iter().find(|t| !has(t)) {
        assert!(!crate::support::in_ci(), "{missing} is required in CI");
        eprintln!("{missing} absent : exercice D6 ignoré localement");
        return;
    }
    use crate::support::procs::free_port;
    let work = crate::support::tempdir::Dir::new("d6");
    let w = work.path();
    let le = w.join("letsencrypt");
    let live = le.join("live/manchengo");
    // The nginx image's hook: a self-signed placeholder (CN manchengo-placeholder) where certbot's lineage goes.
    let out = std::process::Command::new("sh")
        .arg(format!("{}/infra/nginx/docker-entrypoint.d/40-self-signed.sh", crate::support::procs::REPO))
        .env("MANCHENGO_CERT_DIR", &live)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let cert = live.join("fullchain.pem");
    let d = Deployment::new(false, &format!("TLS_CERT_FILE={}\n", cert.display()));
    install(&d).await;
    let nginx = crate::support::procs::Nginx::start_with(d.backend, d.web, Some(&live)).unwrap();
    let webroot = nginx.conf.join("certbot");
    let placeholder = served_not_after(nginx.https);
    assert!(placeholder - chrono::Utc::now().timestamp() <= 7 * 86_400, "the placeholder lasts 7 days");

    // A CA for pebble's own HTTPS endpoint, which certbot trusts through REQUESTS_CA_BUNDLE.
    let out = bash(&format!(
        "cd {} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=drill-ca -keyout ca.key -out ca.pem \
         && openssl req -new -newkey rsa:2048 -nodes -subj /CN=localhost -keyout pebble.key -out pebble.csr \
         && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext \
         && openssl x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out pebble.pem",
        w.display()
    ));
    assert!(out.status.success(), "{}", output_text(&out));
    let (acme, pebble_mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
    let config = json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme}"), "managementListenAddress": format!("127.0.0.1:{pebble_mgmt}"),
        "certificate": w.join("pebble.pem"), "privateKey": w.join("pebble.key"),
        "httpPort": nginx.http, "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    std::fs::write(w.join("pebble.json"), config.to_string()).unwrap();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let quiet = || std::process::Stdio::null();
    let _dns = Killed(
        std::process::Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-management", &format!("127.0.0.1:{dns_mgmt}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(quiet())
            .stderr(quiet())
            .spawn()
            .unwrap(),
    );
    let pebble_log = std::fs::File::create(w.join("pebble.log")).unwrap();
    let _pebble = Killed(
        std::process::Command::new("pebble")
            .arg("-config")
            .arg(w.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(pebble_log.try_clone().unwrap())
            .stderr(pebble_log)
            .spawn()
            .unwrap(),
    );
    eventually(Duration::from_secs(20), "pebble listening", || async {
        std::net::TcpStream::connect(("127.0.0.1", acme)).is_ok()
    })
    .await;
    let ca = w.join("ca.pem");
    let (le_s, webroot_s, conf_s, ca_s) = (
        le.display().to_string(),
        webroot.display().to_string(),
        nginx.conf.display().to_string(),
        ca.display().to_string(),
    );
    let acme_url = format!("https://127.0.0.1:{acme}/dir");
    let env = [
        ("DRILL_LETSENCRYPT", le_s.as_str()),
        ("DRILL_WEBROOT", webroot_s.as_str()),
        ("DRILL_NGINX_CONF", conf_s.as_str()),
        ("REQUESTS_CA_BUNDLE", ca_s.as_str()),
        ("ACME_SERVER", acme_url.as_str()),
    ];

    // First certificate (runbook « Pas de certificat »).
    let out = d.sh_with("./infra/certbot/init-letsencrypt.sh --email exploitation@example.dz", "", &env);
    assert!(
        out.status.success(),
        "{}\n{}",
        output_text(&out),
        std::fs::read_to_string(w.join("pebble.log")).unwrap_or_default()
    );
    eventually(Duration::from_secs(10), "nginx serves pebble's certificate", || async {
        served_not_after(nginx.https) != placeholder
    })
    .await;
    let out = d.sh_with("./infra/certbot/init-letsencrypt.sh --email exploitation@example.dz", "", &env);
    assert_eq!(out.status.code(), Some(1), "never replaces a real certificate: {}", output_text(&out));

    // The certificate expires: certbot's archive files rewritten with a certificate that ended yesterday.
    let archive = le.join("archive/manchengo");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(EXPIRED_CERT_PY)
        .arg(archive.join("privkey1.pem"))
        .arg(archive.join("cert1.pem"))
        .arg(archive.join("fullchain1.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let out = d.sh_with("docker compose exec nginx nginx -s reload", "", &env);
    assert!(out.status.success(), "{}", output_text(&out));
    let now = chrono::Utc::now().timestamp();
    eventually(Duration::from_secs(10), "nginx serves the expired certificate", || async {
        served_not_after(nginx.https) < now
    })
    .await;
    let expired = scraped_not_after(&d).await;
    assert!(expired < now, "the metric follows the file without a restart");
    assert!(alert_fires(expired), "TlsCertificateExpiresSoon fires on the expired certificate");

    // The runbook's resolution, verbatim.
    let out = d.sh_with("docker compose run --rm certbot renew", "", &env);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        std::fs::read_link(live.join("fullchain.pem")).unwrap(),
        std::path::Path::new("../../archive/manchengo/fullchain2.pem"),
        "a new certificate in the lineage"
    );
    let out = d.sh_with("docker compose exec nginx nginx -s reload", "", &env);
    assert!(out.status.success(), "{}", output_text(&out));
    eventually(Duration::from_secs(10), "nginx serves the renewed certificate", || async {
        served_not_after(nginx.https) > now + 30 * 86_400
    })
    .await;
    let renewed = scraped_not_after(&d).await;
    assert_eq!(renewed, served_not_after(nginx.https));
    assert!(!alert_fires(renewed), "no alert once renewed");
}

/// A certificate for the same key that ended yesterday (python3-cryptography comes with Debian's certbot).
const EXPIRED_CERT_PY: &str = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "erp.example.dz")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=91)).not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("erp.example.dz")]), critical=False)
        .sign(key, hashes.SHA256()))
pem = cert.public_bytes(serialization.Encoding.PEM)
for path in sys.argv[2:]:
    open(path, "wb").write(pem)
"#;
