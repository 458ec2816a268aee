//! Operations kit (issue 5): `manchengo backup` and `manchengo restore` as an operator runs them, on both backends.

use std::process::{Command, Output, Stdio};

use domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestDb, TestServer, bearer, client, on_both};

fn manchengo(t: &TestDb, args: &[&str], stdin: &str) -> Output {
    manchengo_with(t, args, stdin, &[])
}

fn manchengo_with(t: &TestDb, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_manchengo"))
        .args(args)
        .env_remove("BACKUP_DIR")
        .env("DATABASE_URL", &t.url)
        .env("DATA_DIR", t.dir.path())
        .env("LOG_LEVEL", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

async fn receptions(t: &TestDb) -> usize {
    let db = t.open().await;
    let n = store::procurement::list(&db).await.unwrap().len();
    db.close().await;
    n
}

/// PLATFORM.md §12: a verified backup with its `latest` link(s) and its row in `backup_runs` (health and metric);
/// a truncated file is refused with the current data untouched; `latest` brings the data back to the backup; the
/// result passes `manchengo check`.
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_then_restore_brings_the_data_back_and_refuses_a_truncated_file() {
    on_both(|t| async move {
        let srv = TestServer::start_without_scheduled_backup(&t, &[]).await;
        let appro = bearer(&srv, Role::Appro).await;
        let admin = bearer(&srv, Role::Admin).await;
        let post = |path: &'static str, body: Value| {
            let (srv, appro) = (&srv, appro.clone());
            async move {
                let r = client().post(srv.url(path)).bearer_auth(appro).json(&body).send().await.unwrap();
                assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap());
            }
        };
        post("/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})).await;
        post("/api/catalogue/mp", json!({"code": "MP-SEL", "name": "Sel", "category": "ADDITIVE", "baseUnit": "KG", "perishable": false})).await;
        let reception = json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-SEL", "quantity": 5_000, "unitCostHt": 100}]});
        post("/api/receptions", reception.clone()).await;

        let out = manchengo(&t, &["backup"], "");
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("sauvegarde vérifiée"), "{}", text(&out));
        let dir = t.dir.path().join("backups");
        let links: &[&str] = match t.kind {
            crate::support::Kind::Sqlite => &["latest.db.gz"],
            crate::support::Kind::Postgres => &["latest.dump", "latest.sql.gz"],
        };
        for l in links {
            let target = std::fs::read_link(dir.join(l)).unwrap_or_else(|e| panic!("{l}: {e}"));
            assert!(target.to_string_lossy().starts_with("manchengo_"), "{l} → {}", target.display());
        }
        // Detailed health and the metric know it.
        let d = backups_seen(&srv).await;
        assert_eq!(d["ageHours"], 0.0, "{d}");
        assert!(d["lastFile"].as_str().unwrap().starts_with("manchengo_"));
        let m = client().get(srv.url("/metrics")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
        assert!(m.contains("backup_last_success_timestamp_seconds"), "{m}");
        // §12.4: the backup restores into a throw-away database and passes the checks; health shows it.
        let out = manchengo(&t, &["backup", "test-restore"], "");
        assert!(out.status.success(), "{}", text(&out));
        let report = text(&out);
        assert!(report.contains("test de restauration réussi") && report.contains("users : 2") && report.contains("lots : 1"), "{report}");
        let d = backups_with(&srv, "lastRestoreTestStatus").await;
        assert_eq!(d["lastRestoreTestStatus"], "ok", "{d}");

        // Work after the backup: lost by the restore, by design (the runbook prints the boundary).
        post("/api/receptions", reception).await;
        srv.stop().await;
        assert_eq!(receptions(&t).await, 2);

        // A truncated copy of the backup: refused, nothing touched.
        let latest = std::fs::canonicalize(dir.join(links[0])).unwrap();
        let bytes = std::fs::read(&latest).unwrap();
        let truncated = t.dir.path().join(format!("tronque.{}", latest.file_name().unwrap().to_string_lossy().split_once('.').unwrap().1));
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let out = manchengo(&t, &["restore", truncated.to_str().unwrap(), "--yes"], "");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("les données actuelles n'ont pas été modifiées"), "{}", text(&out));
        assert_eq!(receptions(&t).await, 2);
        let out = manchengo(&t, &["backup", "test-restore", "--file", truncated.to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("TEST DE RESTAURATION EN ÉCHEC"), "{}", text(&out));
        // Without --yes the operator must type RESTAURER.
        let out = manchengo(&t, &["restore", "latest"], "oui\n");
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).contains("abandon : rien n'a été modifié"), "{}", text(&out));
        assert_eq!(receptions(&t).await, 2);

        let out = manchengo(&t, &["restore", "latest"], "RESTAURER\n");
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("les données saisies après ce moment seront perdues"), "{}", text(&out));
        assert_eq!(receptions(&t).await, 1, "the data of the backup ({:?}): {}", t.kind, text(&out));
        let out = manchengo(&t, &["check"], "");
        assert!(out.status.success(), "{}", text(&out));
        if matches!(t.kind, crate::support::Kind::Postgres) {
            // The database before the restore was kept under <name>_pre_<ts>.
            assert_eq!(drop_kept_databases(&t.url).await, 1, "the previous database is kept aside");
        }
    })
    .await;
}

/// PLATFORM.md §8: the embedded server backs itself up (a missed slot — here the first — runs at start); with
/// PostgreSQL the `backup` container does it and the server has no such job.
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_server_backs_itself_up_and_postgres_leaves_it_to_the_container() {
    on_both(|t| async move {
        let srv = TestServer::start(&t, &[]).await;
        let admin = bearer(&srv, Role::Admin).await;
        let jobs = || async {
            let v: Value = client()
                .get(srv.url("/api/system/jobs"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        };
        // Jobs register in the database shortly after start: wait for the list to be there.
        let others = ["stock-expiry", "stock-pre-expiry", "inventory-expiry", "retention", "integrity-check"];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let listed = loop {
            let v = jobs().await;
            let names: Vec<String> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|j| j["name"].as_str().map(str::to_string))
                .collect();
            if others.iter().all(|o| names.iter().any(|n| n == o)) {
                break names;
            }
            assert!(std::time::Instant::now() < deadline, "jobs not registered: {v}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        let names: Vec<&str> = listed.iter().map(String::as_str).collect();
        if matches!(t.kind, crate::support::Kind::Postgres) {
            assert!(!names.contains(&"backup"), "{names:?}");
            srv.stop().await;
            return;
        }
        assert!(names.contains(&"backup"), "{names:?}");
        let dir = t.dir.path().join("backups");
        crate::support::eventually(std::time::Duration::from_secs(60), "the first scheduled backup", || {
            let link = dir.join("latest.db.gz");
            async move { link.exists() }
        })
        .await;
        let d = backups_seen(&srv).await;
        assert!(d["lastFile"].as_str().is_some_and(|f| f.starts_with("manchengo_") && f.ends_with(".db.gz")), "{d}");
        srv.stop().await;
    })
    .await;
}

/// PLATFORM.md §12.1 steps 5–6: local copies encrypted with the passphrase file, restored only with it; old runs pruned
/// after a verified backup, never the 4 newest; a failed run prunes nothing and leaves no partial file.
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_backups_and_retention() {
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let srv = TestServer::start_without_scheduled_backup(&t, &[]).await;
    bearer(&srv, Role::Admin).await;
    srv.stop().await;
    let dir = t.dir.path().join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
    for d in 1..=6 {
        let f = std::fs::File::create(dir.join(format!("manchengo_2025010{d}_000000.db.gz"))).unwrap();
        f.set_modified(old + std::time::Duration::from_secs(d * 3_600)).unwrap();
    }
    let pass = t.dir.path().join("phrase");
    std::fs::write(&pass, "une phrase secrète assez longue\n").unwrap();
    let pass = pass.to_str().unwrap();
    let enc = [("BACKUP_PASSPHRASE_FILE", pass), ("BACKUP_ENCRYPT_LOCAL", "true"), ("BACKUP_RETENTION_DAYS", "30")];

    // A failing run (unreadable passphrase file) prunes nothing and leaves nothing half-written.
    let broken = [("BACKUP_PASSPHRASE_FILE", "/nonexistent/phrase"), ("BACKUP_ENCRYPT_LOCAL", "true")];
    let out = manchengo_with(&t, &["backup"], "", &broken);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("rien n'a été élagué"), "{}", text(&out));
    let names = || {
        let mut n: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names().len(), 6, "{:?}", names());

    let out = manchengo_with(&t, &["backup"], "", &enc);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("élagués (plus de 30 jours) : manchengo_20250101_000000.db.gz"), "{}", text(&out));
    let left = names();
    assert!(
        left.iter().all(|n| !n.starts_with("manchengo_2025010") || n > &"manchengo_20250103".to_string()),
        "{left:?}"
    );
    assert_eq!(
        left.iter().filter(|n| n.starts_with("manchengo_2025010")).count(),
        3,
        "the 3 newest old runs stay: {left:?}"
    );
    assert!(left.contains(&"latest.db.gz.enc".to_string()), "{left:?}");
    let latest = std::fs::canonicalize(dir.join("latest.db.gz.enc")).unwrap();
    let head = std::fs::read(&latest).unwrap();
    assert!(head.starts_with(b"Salted__"), "OpenSSL-encrypted, not gzip");

    // Restore: the wrong passphrase is refused with the data untouched; the right one restores.
    let wrong = t.dir.path().join("autre");
    std::fs::write(&wrong, "pas la bonne phrase\n").unwrap();
    let out =
        manchengo_with(&t, &["restore", "latest", "--yes"], "", &[("BACKUP_PASSPHRASE_FILE", wrong.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("phrase secrète incorrecte"), "{}", text(&out));
    let out = manchengo_with(&t, &["restore", "latest", "--yes"], "", &enc);
    assert!(out.status.success(), "{}", text(&out));
    let out = manchengo(&t, &["check"], "");
    assert!(out.status.success(), "{}", text(&out));
}

/// The series an alert expression reads: identifiers that are not PromQL functions, keywords or label names.
fn series_of(expr: &str) -> Vec<String> {
    const PROMQL: &[&str] = &[
        "sum",
        "rate",
        "max",
        "min",
        "avg",
        "count",
        "by",
        "without",
        "on",
        "ignoring",
        "time",
        "histogram_quantile",
        "increase",
        "bool",
        "and",
        "or",
        "unless",
    ];
    // Drop label matchers, ranges and strings: what is left are names, functions and numbers.
    let mut plain = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for word in plain.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.is_empty() || word.chars().next().unwrap().is_ascii_digit() || PROMQL.contains(&word) {
            continue;
        }
        // `sum by (le)`: a grouping label, not a series.
        if ["le", "instance"].contains(&word) {
            continue;
        }
        out.push(word.trim_end_matches("_bucket").to_string());
    }
    out
}

/// PLATFORM.md §9.3: every series an alert rule reads is one the server exports (`up` is Prometheus' own).
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_only_read_series_the_server_exports() {
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/monitoring/alerts.yml")).unwrap();
    let exprs: Vec<&str> =
        rules.lines().filter_map(|l| l.trim().strip_prefix("expr: '").and_then(|r| r.strip_suffix('\''))).collect();
    assert!(exprs.len() >= 9, "{exprs:?}");
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let cert = t.dir.path().join("fullchain.pem");
    let key = t.dir.path().join("privkey.pem");
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "20", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let srv = TestServer::start_without_scheduled_backup(&t, &[("TLS_CERT_FILE", cert.to_str().unwrap())]).await;
    let admin = bearer(&srv, Role::Admin).await;
    client().get(srv.url("/api/health")).send().await.unwrap();
    app::ops::backup::backup(&srv.state.config, srv.state.dbmon.db(), None, chrono::Utc::now()).await.unwrap();
    let text = client().get(srv.url("/metrics")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().trim_end_matches("_bucket").to_string())
        .collect();
    // Exported only where the kernel says so: a memory limit exists in the container, not on every machine.
    let conditional =
        |name: &str| name == "process_memory_limit_bytes" && app::platform::telemetry::memory_limit_bytes().is_none();
    for expr in exprs {
        for s in series_of(expr) {
            if s == "up" || conditional(&s) {
                continue;
            }
            assert!(exported.contains(&s), "rule `{expr}` reads `{s}`, which /metrics does not export:\n{text}");
        }
    }
    // The certificate's expiry is read from TLS_CERT_FILE: about 20 days ahead.
    let line = text.lines().find(|l| l.starts_with("tls_certificate_not_after_seconds")).unwrap();
    let at: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let days = (at - chrono::Utc::now().timestamp() as f64) / 86_400.0;
    assert!((19.0..=20.1).contains(&days), "{line}");
    srv.stop().await;
}

/// DR drill (PLATFORM.md §15, runbook « Restauration complète »): a fresh database and nothing but the backup
/// directory → `manchengo restore latest --yes` → `manchengo serve` → ready, with the data of the backup. The elapsed
/// time from the restore to ready is the RTO of the software part (printed; the closing note records it).
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_a_fresh_host_comes_back_from_the_backup_directory_alone() {
    on_both(|t| async move {
        let srv = TestServer::start_without_scheduled_backup(&t, &[]).await;
        let appro = bearer(&srv, Role::Appro).await;
        for (path, body) in [
            ("/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})),
            ("/api/catalogue/mp", json!({"code": "MP-SEL", "name": "Sel", "category": "ADDITIVE", "baseUnit": "KG", "perishable": false})),
            ("/api/receptions", json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-SEL", "quantity": 5_000, "unitCostHt": 100}]})),
        ] {
            let r = client().post(srv.url(path)).bearer_auth(&appro).json(&body).send().await.unwrap();
            assert!(r.status().is_success());
        }
        srv.stop().await;
        let out = manchengo(&t, &["backup"], "");
        assert!(out.status.success(), "{}", text(&out));
        let backups = t.dir.path().join("backups");
        let backups = backups.to_str().unwrap();

        // The new host: an empty database (PostgreSQL) or nothing at all (embedded), and the backup directory.
        let fresh = TestDb::new(t.kind).await.unwrap();
        let started = std::time::Instant::now();
        let out = manchengo_with(&fresh, &["restore", "latest", "--yes"], "", &[("BACKUP_DIR", backups)]);
        assert!(out.status.success(), "{}", text(&out));
        let data = fresh.dir.path().join("srv");
        let mut server = crate::support::procs::Manchengo::spawn(&[
            ("DATABASE_URL", &fresh.url),
            ("DATA_DIR", &data.display().to_string()),
        ]);
        let deadline = started + std::time::Duration::from_secs(60);
        loop {
            let ready = client().get(server.url("/api/health/ready")).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            if ready == 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not ready:\n{}", server.logs());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        println!("DR {:?} : restauration + démarrage jusqu'à prêt en {} ms", t.kind, started.elapsed().as_millis());
        let email = crate::support::email_of(Role::Appro);
        let login = crate::support::login_as_device(&client(), &server.url("/api/auth/login"), &email, crate::support::PASSWORD).await;
        let token = login["accessToken"].as_str().unwrap();
        let list: Value =
            client().get(server.url("/api/receptions")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        let year = domain::stock::today_algiers(chrono::Utc::now()).format("%Y").to_string();
        assert_eq!(list["items"][0]["reference"], format!("REC-{year}-00001"), "{list}");
        server.terminate();
        let out = manchengo(&fresh, &["check"], "");
        assert!(out.status.success(), "{}", text(&out));
        if matches!(fresh.kind, crate::support::Kind::Postgres) {
            assert_eq!(drop_kept_databases(&fresh.url).await, 1);
        }
    })
    .await;
}

/// Drops the `<name>_pre_<ts>` databases a PostgreSQL restore kept aside; returns how many there were.
async fn drop_kept_databases(url: &str) -> usize {
    use sea_orm::ConnectionTrait;
    let name = url.rsplit('/').next().unwrap().to_string();
    let conn = sea_orm::Database::connect(&crate::support::pg_admin_url()).await.unwrap();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{name}_pre_%'"),
        ))
        .await
        .unwrap();
    for r in &rows {
        let n: String = r.try_get("", "datname").unwrap();
        conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)")).await.unwrap();
    }
    rows.len()
}

/// The `backups` block of detailed health. The block is null while the server believes its database down (a probe
/// slower than 1 s on a loaded CI machine says so for a second), so this waits for the database to be seen up again.
async fn backups_seen(srv: &TestServer) -> Value {
    backups_with(srv, "lastAt").await
}

/// The `backups` block once `key` is filled: health answers nulls when its read fails on a loaded machine (the
/// pool's 2 s acquire), so the test waits for the value rather than for the block.
async fn backups_with(srv: &TestServer, key: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let d: Value = client().get(srv.url("/api/health/detailed")).send().await.unwrap().json().await.unwrap();
        if d["backups"].is_object() && !d["backups"][key].is_null() {
            return d["backups"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no backups block in detailed health: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// BK drill (PLATFORM.md §15.1): a full disk while compressing, a truncated PostgreSQL dump — the run fails, `latest`
/// still points at the last good backup, nothing is pruned, nothing half-written stays, the failure is recorded and the
/// backup age keeps growing (BackupTooOld, promtool-tested); a backup of broken data fails its restore test loudly.
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bk_failed_backups_publish_and_prune_nothing_and_restore_tests_fail_loudly() {
    on_both(|t| async move {
        let srv = TestServer::start_without_scheduled_backup(&t, &[]).await;
        let appro = bearer(&srv, Role::Appro).await;
        for (path, body) in [
            ("/api/suppliers", json!({"raisonSociale": "Laiterie du Djurdjura SARL"})),
            ("/api/catalogue/mp", json!({"code": "MP-SEL", "name": "Sel", "category": "ADDITIVE", "baseUnit": "KG", "perishable": false})),
            ("/api/receptions", json!({"supplierCode": "FOUR-0001", "lines": [{"productCode": "MP-SEL", "quantity": 5_000, "unitCostHt": 100}]})),
        ] {
            assert!(client().post(srv.url(path)).bearer_auth(&appro).json(&body).send().await.unwrap().status().is_success());
        }
        let out = manchengo(&t, &["backup"], "");
        assert!(out.status.success(), "{}", text(&out));
        let dir = t.dir.path().join("backups");
        let link = if matches!(t.kind, crate::support::Kind::Sqlite) { "latest.db.gz" } else { "latest.dump" };
        let good = std::fs::read_link(dir.join(link)).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60 * 86_400);
        for d in 1..=6 {
            let f = std::fs::File::create(dir.join(format!("manchengo_2025010{d}_000000.db.gz"))).unwrap();
            f.set_modified(old).unwrap();
        }
        let listing = || {
            let mut n: Vec<String> =
                std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
            n.sort();
            n
        };
        let before = listing();

        // Fakes on PATH: gzip as on a full disk; pg_dump that leaves a truncated file and says nothing.
        let bin = t.dir.path().join("fakebin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        script("gzip", "echo 'gzip: stdout: No space left on device' >&2\nexit 1");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let out = manchengo_with(&t, &["backup"], "", &[("PATH", &path)]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("rien n'a été élagué"), "{}", text(&out));
        assert_eq!(listing(), before, "nothing published, pruned or left half-written");
        assert_eq!(std::fs::read_link(dir.join(link)).unwrap(), good);
        if matches!(t.kind, crate::support::Kind::Postgres) {
            std::fs::remove_file(bin.join("gzip")).unwrap();
            let real = String::from_utf8(Command::new("sh").args(["-c", "command -v pg_dump"]).output().unwrap().stdout).unwrap();
            script(
                "pg_dump",
                &format!("{} \"$@\" || exit $?\nfor a; do [ \"$prev\" = --file ] && f=$a; prev=$a; done\ntruncate -s 200 \"$f\"", real.trim()),
            );
            let out = manchengo_with(&t, &["backup"], "", &[("PATH", &path)]);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            assert!(text(&out).contains("pg_restore --list"), "{}", text(&out));
            assert_eq!(listing(), before);
        }
        let last = store::backups::last(srv.state.dbmon.db(), "BACKUP").await.unwrap().unwrap();
        assert_eq!(last.status, "failed");
        let d = backups_seen(&srv).await;
        assert_eq!(d["lastFile"], good.to_string_lossy().as_ref(), "age still counted from the last good one");

        // Broken data backed up faithfully: the restore test says so, loudly.
        use sea_orm::ConnectionTrait;
        srv.state.dbmon.db().conn().execute_unprepared("UPDATE lots SET quantity_remaining = quantity_remaining + 1").await.unwrap();
        assert!(manchengo(&t, &["backup"], "").status.success());
        let out = manchengo(&t, &["backup", "test-restore"], "");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("registre des stocks : 1 écart(s)") && text(&out).contains("TEST DE RESTAURATION EN ÉCHEC"), "{}", text(&out));
        let recorded = store::backups::last(srv.state.dbmon.db(), "RESTORE_TEST").await.unwrap();
        assert!(recorded.as_ref().is_some_and(|r| r.status == "failed"), "restore test not recorded: {recorded:?}\n{}", text(&out));
        let d = backups_with(&srv, "lastRestoreTestStatus").await;
        assert_eq!(d["lastRestoreTestStatus"], "failed", "{d}");
        srv.stop().await;
    })
    .await;
}

/// PLATFORM.md §11.3 (DRB): a binary older than the schema's `min_reader_version` refuses to start, with the message
/// `rollback.sh` stops on, instead of running on a schema it cannot read.
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_older_than_the_schema_refuses_to_start() {
    on_both(|t| async move {
        let db = t.migrated().await;
        assert_eq!(store::migration::min_reader_version(&db).await.unwrap().as_deref(), Some("0.1.0"));
        use sea_orm::ConnectionTrait;
        db.conn().execute_unprepared("UPDATE schema_meta SET min_reader_version = '99.0.0'").await.unwrap();
        db.close().await;
        let out = Command::new(env!("CARGO_BIN_EXE_manchengo"))
            .arg("serve")
            .env("DATABASE_URL", &t.url)
            .env("DATA_DIR", t.dir.path().join("srv"))
            .env("PORT", crate::support::free_port().to_string())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(text(&out).contains("schéma trop récent pour cette version (min 99.0.0)"), "{}", text(&out));
    })
    .await;
}

/// The compose `backup` service runs `manchengo backup --daemon`: it stays up waiting for its slot and stops cleanly
/// on SIGTERM (no crash loop).
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_daemon_waits_for_its_slot_and_stops_on_sigterm() {
    let t = TestDb::new(crate::support::Kind::Sqlite).await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_manchengo"))
        .args(["backup", "--daemon"])
        .env("DATABASE_URL", &t.url)
        .env("DATA_DIR", t.dir.path())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(child.try_wait().unwrap().is_none(), "the daemon must stay up");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let logs = text(&out);
    assert!(logs.contains("backup daemon started") && logs.contains("backup daemon stopped"), "{logs}");
}

/// DRB (PLATFORM.md §11.3, §15.1): after a newer release expanded the schema (a table and a migration this binary does
/// not know), this binary — the one `rollback.sh` puts back — migrates nothing, starts and serves; only a raised
/// `min_reader_version` stops it (tested above).
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_binary_runs_on_a_schema_a_newer_release_expanded() {
    on_both(|t| async move {
        let db = t.migrated().await;
        use sea_orm::ConnectionTrait;
        let now = chrono::Utc::now().timestamp();
        db.conn().execute_unprepared("CREATE TABLE future_feature (id BIGINT PRIMARY KEY, note TEXT)").await.unwrap();
        db.conn().execute_unprepared("ALTER TABLE lots ADD COLUMN future_note TEXT").await.unwrap();
        db.conn()
            .execute_unprepared(&format!(
                "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_future_feature', {now})"
            ))
            .await
            .unwrap();
        db.close().await;
        let out = manchengo(&t, &["migrate"], "");
        assert!(out.status.success(), "{}", text(&out));
        let server = crate::support::procs::Manchengo::spawn(&[
            ("DATABASE_URL", &t.url),
            ("DATA_DIR", &t.dir.path().join("srv").display().to_string()),
        ]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready =
                client().get(server.url("/api/health/ready")).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            if ready == 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not ready:\n{}", server.logs());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Its reads name their columns, so a lot row with an extra column still reads.
        let lots = store::stock::lots_of(t.open().await.conn(), uuid::Uuid::now_v7()).await;
        assert!(lots.is_ok(), "{lots:?}");
    })
    .await;
}

/// PLATFORM.md §12.1 step 5 and the DR certificate step: each verified backup is copied off the host encrypted for
/// the age recipients (readable with the private key kept offline), the certificates are archived next to the
/// backups; a failed off-site copy leaves the local backup valid and says so; nothing leaves the host in clear.
// The CLI runs synchronously beside a server of this runtime: worker threads keep the server's tasks (and the
// transaction a job may hold) moving while the test thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsite_copies_are_age_encrypted_and_certificates_archived() {
    on_both(|t| async move {
        t.migrated().await.close().await;
        let w = t.dir.path();
        let out =
            Command::new("age-keygen").arg("-o").arg(w.join("cle.txt")).output().expect("age-keygen (Debian age)");
        assert!(out.status.success());
        let public =
            String::from_utf8(Command::new("age-keygen").arg("-y").arg(w.join("cle.txt")).output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string();
        let le = w.join("letsencrypt");
        std::fs::create_dir_all(le.join("live/manchengo")).unwrap();
        std::fs::write(le.join("live/manchengo/fullchain.pem"), "certificat").unwrap();
        let offsite = w.join("hors-site");
        let (offsite_s, le_s) = (offsite.display().to_string(), le.display().to_string());
        let env = [
            ("BACKUP_AGE_RECIPIENTS", public.as_str()),
            ("BACKUP_OFFSITE_TARGET", offsite_s.as_str()),
            ("BACKUP_LETSENCRYPT_DIR", le_s.as_str()),
        ];
        let out = manchengo_with(&t, &["backup"], "", &env);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("copie hors site : manchengo_"), "{}", text(&out));
        let mut copies: Vec<_> = std::fs::read_dir(&offsite).unwrap().map(|e| e.unwrap().path()).collect();
        copies.sort();
        let expected = if matches!(t.kind, crate::support::Kind::Postgres) { 2 } else { 1 };
        assert_eq!(copies.len(), expected, "{copies:?}");
        for copy in &copies {
            assert!(copy.extension().unwrap() == "age", "{copy:?}");
            assert!(std::fs::read(copy).unwrap().starts_with(b"age-encryption.org/v1"), "never in clear");
            let plain = w.join("dechiffre");
            let out = Command::new("age")
                .arg("-d")
                .arg("-i")
                .arg(w.join("cle.txt"))
                .arg("-o")
                .arg(&plain)
                .arg(copy)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let local = std::fs::read(t.dir.path().join("backups").join(copy.file_stem().unwrap())).unwrap();
            assert_eq!(std::fs::read(&plain).unwrap(), local, "the off-site copy is the verified local file");
        }
        let archive = w.join("letsencrypt_latest.tar.gz");
        let out = Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("letsencrypt/live/manchengo/fullchain.pem"));

        // An unreachable destination: the local backup stands, the operator is told.
        let out = manchengo_with(
            &t,
            &["backup"],
            "",
            &[("BACKUP_AGE_RECIPIENTS", public.as_str()), ("BACKUP_OFFSITE_TARGET", "/proc/hors-site")],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("copie hors site échouée (rsync (copie hors site) a échoué"), "{}", text(&out));
        // Without a key or a passphrase nothing is copied.
        let out = manchengo_with(&t, &["backup"], "", &[("BACKUP_OFFSITE_TARGET", offsite_s.as_str())]);
        assert!(text(&out).contains("aucune copie en clair hors du serveur"), "{}", text(&out));
        assert_eq!(std::fs::read_dir(&offsite).unwrap().count(), expected);
    })
    .await;
}
