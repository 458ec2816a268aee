//! `manchengo backup` and `manchengo restore` (PLATFORM.md §12): a consistent copy, verified before anything is
//! published or pruned; a restore that checks the file first and leaves the current data untouched when anything fails.
//! The external tools are the ones of the runtime image: `gzip`, `pg_dump`/`pg_restore`/`psql`, `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::platform::backup as rules;
use sha2::{Digest, Sha256};
use store::Backend;

use crate::config::Config;

#[derive(Debug, Clone)]
pub struct Report {
    /// The published files (the embedded copy, or the PostgreSQL `.dump` and `.sql.gz`).
    pub files: Vec<PathBuf>,
    pub size_bytes: u64,
    pub sha256: String,
    pub pruned: Vec<String>,
    /// What went to `BACKUP_OFFSITE_TARGET` (names as copied), or why it did not.
    pub offsite: Result<Vec<String>, String>,
    pub elapsed_ms: u128,
}

fn run(cmd: &mut Command, what: &str) -> Result<Vec<u8>, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{what} : lancement impossible ({e})"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!("{what} a échoué : {}", err.lines().last().unwrap_or("").trim()))
    }
}

fn gzip_to(src: &Path, dst: &Path) -> Result<(), String> {
    let out = std::fs::File::create(dst).map_err(|e| format!("écriture de {} impossible : {e}", dst.display()))?;
    let status = Command::new("gzip")
        .arg("-c")
        .arg(src)
        .stdout(out)
        .status()
        .map_err(|e| format!("gzip : lancement impossible ({e})"))?;
    if status.success() { Ok(()) } else { Err(format!("gzip a échoué sur {}", src.display())) }
}

fn gunzip_to(src: &Path, dst: &Path) -> Result<(), String> {
    let out = std::fs::File::create(dst).map_err(|e| format!("écriture de {} impossible : {e}", dst.display()))?;
    let status = Command::new("gzip")
        .args(["-dc"])
        .arg(src)
        .stdout(out)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("gzip : lancement impossible ({e})"))?;
    if status.success() { Ok(()) } else { Err(format!("{} : archive gzip illisible", src.display())) }
}

fn gzip_test(path: &Path) -> Result<(), String> {
    run(Command::new("gzip").arg("-t").arg(path), "gzip -t")
        .map(|_| ())
        .map_err(|_| format!("{} est tronqué ou corrompu (gzip -t)", path.display()))
}

fn sha256_of(path: &Path) -> Result<(String, u64), String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{} illisible : {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((h.finalize().iter().map(|b| format!("{b:02x}")).collect(), size))
}

#[cfg(unix)]
fn private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Points `dir/link` at `target` (a name in the same directory), replacing it atomically.
fn publish(dir: &Path, link: &str, target: &str) -> Result<(), String> {
    let tmp = dir.join(format!(".{link}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| format!("lien {link} impossible : {e}"))?;
    std::fs::rename(&tmp, dir.join(link)).map_err(|e| format!("lien {link} impossible : {e}"))
}

/// The runbook's `/backups/latest.sql.gz`: a link in the parent of `BACKUP_DIR` to `<dir name>/latest.sql.gz`. A
/// convenience only: the backup is verified and published without it, so a failure is a warning.
fn publish_in_parent(dir: &Path, link: &str) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else { return };
    if parent.as_os_str().is_empty() {
        return;
    }
    let target = Path::new(name).join(link);
    if let Err(e) = publish(parent, link, &target.to_string_lossy()) {
        tracing::warn!(error = %e, dir = %parent.display(), "latest link in the parent directory not written");
    }
}

/// `letsencrypt_latest.tar.gz` next to `BACKUP_DIR` (the DR step that restores certificates): the whole certificate
/// directory, archived to a temporary name, gzip-tested, then renamed over the previous archive.
pub fn archive_certificates(config: &Config) -> Result<Option<PathBuf>, String> {
    let Some(le) = &config.backup_letsencrypt_dir else { return Ok(None) };
    if !le.is_dir() {
        return Err(format!("certificats : {} introuvable", le.display()));
    }
    let dest_dir = config.backup_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(&config.backup_dir);
    let (Some(base), Some(name)) = (le.parent(), le.file_name()) else {
        return Err(format!("certificats : chemin {} invalide", le.display()));
    };
    let tmp = dest_dir.join(".letsencrypt_latest.tar.gz.part");
    let out = dest_dir.join("letsencrypt_latest.tar.gz");
    let res = run(Command::new("tar").arg("czf").arg(&tmp).arg("-C").arg(base).arg(name), "tar (certificats)")
        .and_then(|_| gzip_test(&tmp));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    #[cfg(unix)]
    private(&tmp, 0o600);
    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
    Ok(Some(out))
}

/// Copies each published file to `BACKUP_OFFSITE_TARGET` with `rsync` (a directory or `host:path`), encrypted first:
/// with `age` for `BACKUP_AGE_RECIPIENTS` (the private key never on this server), else with the OpenSSL passphrase
/// (already done when local copies are encrypted). Never a plain copy: without either, nothing leaves the host.
fn offsite_copy(config: &Config, files: &[PathBuf]) -> Result<Vec<String>, String> {
    let Some(target) = &config.backup_offsite_target else { return Ok(Vec::new()) };
    if config.backup_age_recipients.is_empty() && config.backup_passphrase_file.is_none() {
        return Err("ni BACKUP_AGE_RECIPIENTS ni BACKUP_PASSPHRASE_FILE : aucune copie en clair hors du serveur".into());
    }
    let staging = config.backup_dir.join(".offsite");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
    let res = (|| {
        let mut sent = Vec::new();
        for file in files {
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let copy = if !config.backup_age_recipients.is_empty() {
                let out = staging.join(format!("{name}.age"));
                let mut age = Command::new("age");
                for r in &config.backup_age_recipients {
                    age.arg("-r").arg(r);
                }
                run(age.arg("-o").arg(&out).arg(file), "age (chiffrement)")?;
                out
            } else if name.ends_with(".enc") {
                file.clone()
            } else {
                let out = staging.join(&name);
                std::fs::copy(file, &out).map_err(|e| e.to_string())?;
                encrypt(config, &out)?
            };
            let dest = format!("{}/", target.trim_end_matches('/'));
            run(Command::new("rsync").arg("-a").arg(&copy).arg(&dest), "rsync (copie hors site)")?;
            sent.push(copy.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
        }
        Ok(sent)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    res
}

fn encrypt(config: &Config, path: &Path) -> Result<PathBuf, String> {
    let Some(pass) = &config.backup_passphrase_file else { return Ok(path.to_path_buf()) };
    let out = PathBuf::from(format!("{}.enc", path.display()));
    run(
        Command::new("openssl")
            .args(["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "600000", "-salt", "-pass"])
            .arg(format!("file:{}", pass.display()))
            .arg("-in")
            .arg(path)
            .arg("-out")
            .arg(&out),
        "openssl (chiffrement)",
    )?;
    std::fs::remove_file(path).map_err(|e| e.to_string())?;
    Ok(out)
}

fn decrypt(config: &Config, path: &Path, out: &Path) -> Result<(), String> {
    let pass = config
        .backup_passphrase_file
        .as_ref()
        .ok_or("fichier chiffré (.enc) : BACKUP_PASSPHRASE_FILE n'est pas défini")?;
    run(
        Command::new("openssl")
            .args(["enc", "-d", "-aes-256-cbc", "-pbkdf2", "-iter", "600000", "-pass"])
            .arg(format!("file:{}", pass.display()))
            .arg("-in")
            .arg(path)
            .arg("-out")
            .arg(out),
        "openssl (déchiffrement)",
    )
    .map(|_| ())
    .map_err(|_| "déchiffrement impossible : phrase secrète incorrecte ou fichier corrompu".to_string())
}

/// The names `latest*` links point to (never pruned).
fn latest_targets(dir: &Path) -> Vec<String> {
    ["latest.db.gz", "latest.db.gz.enc", "latest.dump", "latest.dump.enc", "latest.sql.gz", "latest.sql.gz.enc"]
        .iter()
        .filter_map(|l| std::fs::read_link(dir.join(l)).ok())
        .filter_map(|t| t.file_name().map(|n| n.to_string_lossy().to_string()))
        .collect()
}

fn prune(config: &Config, now: DateTime<Utc>) -> Vec<String> {
    let dir = &config.backup_dir;
    let files: Vec<(String, DateTime<Utc>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let modified = e.metadata().ok()?.modified().ok()?;
                    Some((e.file_name().to_string_lossy().to_string(), DateTime::<Utc>::from(modified)))
                })
                .collect()
        })
        .unwrap_or_default();
    let gone = rules::to_prune(&files, &latest_targets(dir), config.backup_retention_days as i64, now);
    gone.into_iter().filter(|n| std::fs::remove_file(dir.join(n)).is_ok()).collect()
}

/// One verified backup into `BACKUP_DIR`; every run is recorded in `backup_runs`. A failed run publishes and prunes
/// nothing and leaves the earlier backups as they were.
pub async fn backup(
    config: &Config,
    db: &store::Db,
    label: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Report, String> {
    let started = Instant::now();
    let mut run_row = store::backups::new_run("BACKUP", now);
    run_row.label = label.map(str::to_string);
    run_row.host = Some(config.instance_name.clone());
    let res = backup_files(config, db, label, now).await;
    // Step 5 of §12.1: only a verified backup leaves the host. A failed copy does not undo the local backup; it is
    // kept on the run's row (and in the log) for the operator.
    let offsite = match &res {
        Ok((files, _, _)) => {
            let (config, files) = (config.clone(), files.clone());
            tokio::task::spawn_blocking(move || offsite_copy(&config, &files))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
        Err(_) => Ok(Vec::new()),
    };
    if let Err(e) = &offsite {
        tracing::error!(error = %e, "off-site copy failed");
        run_row.error = Some(format!("copie hors site : {e}"));
    }
    run_row.finished_at = Utc::now().max(now);
    match &res {
        Ok((files, sha, size)) => {
            run_row.status = "ok".into();
            run_row.verified = true;
            run_row.file = files.first().map(|f| f.display().to_string());
            run_row.sha256 = Some(sha.clone());
            run_row.size_bytes = Some(*size as i64);
        }
        Err(e) => run_row.error = Some(e.clone()),
    }
    if let Err(e) = store::backups::record(db, run_row).await {
        tracing::error!(error = %e, "backup run not recorded");
    }
    let (files, sha256, size_bytes) = res?;
    // The certificates travel with the backups; failing to archive them does not make the database backup fail.
    if let Err(e) = archive_certificates(config) {
        tracing::warn!(error = %e, "certificate archive not written");
    }
    let pruned = prune(config, now);
    Ok(Report { files, size_bytes, sha256, pruned, offsite, elapsed_ms: started.elapsed().as_millis() })
}

async fn backup_files(
    config: &Config,
    db: &store::Db,
    label: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(Vec<PathBuf>, String, u64), String> {
    let dir = config.backup_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| format!("répertoire {} inaccessible : {e}", dir.display()))?;
    #[cfg(unix)]
    private(&dir, 0o700);
    let stem = rules::stem(label, now);
    let encrypt_local = config.backup_encrypt_local && config.backup_passphrase_file.is_some();
    match db.backend() {
        Backend::Sqlite => {
            let copy = dir.join(format!(".{stem}.db.part"));
            let _ = std::fs::remove_file(&copy);
            store::backups::sqlite_copy(db, &copy).await.map_err(|e| format!("copie de la base impossible : {e}"))?;
            let checked = store::backups::sqlite_verify(&copy).await;
            let gz = dir.join(format!(".{stem}.db.gz.part"));
            let done = checked.and_then(|_| {
                let (copy, gz) = (copy.clone(), gz.clone());
                gzip_to(&copy, &gz)?;
                gzip_test(&gz)
            });
            let _ = std::fs::remove_file(&copy);
            if let Err(e) = done {
                let _ = std::fs::remove_file(&gz);
                return Err(e);
            }
            let gz = if encrypt_local {
                encrypt(config, &gz).inspect_err(|_| {
                    let _ = std::fs::remove_file(&gz);
                })?
            } else {
                gz
            };
            let suffix = if encrypt_local { ".db.gz.enc" } else { ".db.gz" };
            let name = format!("{stem}{suffix}");
            let final_path = dir.join(&name);
            std::fs::rename(&gz, &final_path).map_err(|e| e.to_string())?;
            #[cfg(unix)]
            private(&final_path, 0o600);
            publish(&dir, &format!("latest{suffix}"), &name)?;
            let (sha, size) = sha256_of(&final_path)?;
            Ok((vec![final_path], sha, size))
        }
        Backend::Postgres => {
            let url = config.database_url.clone();
            let dump = dir.join(format!(".{stem}.dump.part"));
            let sql = dir.join(format!(".{stem}.sql.gz.part"));
            let (d, s) = (dump.clone(), sql.clone());
            let res = tokio::task::spawn_blocking(move || pg_backup_files(&url, &d, &s))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            if let Err(e) = res {
                let _ = std::fs::remove_file(&dump);
                let _ = std::fs::remove_file(&sql);
                return Err(e);
            }
            let mut published = Vec::new();
            if encrypt_local {
                for part in [&dump, &sql] {
                    if let Err(e) = encrypt(config, part) {
                        for p in [&dump, &sql] {
                            let _ = std::fs::remove_file(p);
                            let _ = std::fs::remove_file(format!("{}.enc", p.display()));
                        }
                        return Err(e);
                    }
                }
            }
            for (part, ext) in [(dump, "dump"), (sql, "sql.gz")] {
                let part = if encrypt_local { PathBuf::from(format!("{}.enc", part.display())) } else { part };
                let suffix = if encrypt_local { format!("{ext}.enc") } else { ext.to_string() };
                let name = format!("{stem}.{suffix}");
                let final_path = dir.join(&name);
                std::fs::rename(&part, &final_path).map_err(|e| e.to_string())?;
                #[cfg(unix)]
                private(&final_path, 0o600);
                publish(&dir, &format!("latest.{suffix}"), &name)?;
                if ext == "sql.gz" {
                    publish_in_parent(&dir, &format!("latest.{suffix}"));
                }
                published.push(final_path);
            }
            let (sha, size) = sha256_of(&published[0])?;
            Ok((published, sha, size))
        }
    }
}

/// `pg_dump` in custom format, `pg_restore --list`, then the plain SQL derived from the same dump, gzip-tested and
/// ending with PostgreSQL's completion marker.
fn pg_backup_files(url: &str, dump: &Path, sql: &Path) -> Result<(), String> {
    run(Command::new("pg_dump").args(["--format=custom", "--no-password", "--file"]).arg(dump).arg(url), "pg_dump")?;
    run(Command::new("pg_restore").arg("--list").arg(dump), "pg_restore --list")?;
    let out = std::fs::File::create(sql).map_err(|e| e.to_string())?;
    let mut restore = Command::new("pg_restore")
        .args(["--no-owner", "--no-privileges", "-f", "-"])
        .arg(dump)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("pg_restore : lancement impossible ({e})"))?;
    let stdout = restore.stdout.take().ok_or("pg_restore sans sortie")?;
    let gz = Command::new("gzip").arg("-c").stdin(stdout).stdout(out).status().map_err(|e| e.to_string())?;
    let rs = restore.wait().map_err(|e| e.to_string())?;
    if !rs.success() || !gz.success() {
        return Err("conversion du dump en SQL impossible".into());
    }
    gzip_test(sql)?;
    sql_gz_complete(sql)
}

/// A plain-SQL dump is complete when it ends with `-- PostgreSQL database dump complete`.
fn sql_gz_complete(sql: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .arg(sql)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("gzip sans sortie")?;
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = stdout.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 8192 {
            tail.drain(..tail.len() - 4096);
        }
    }
    let _ = child.wait();
    if String::from_utf8_lossy(&tail).contains("-- PostgreSQL database dump complete") {
        Ok(())
    } else {
        Err(format!("{} est incomplet (marqueur de fin absent)", sql.display()))
    }
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Where the data before the restore was kept (a file for SQLite, a database for PostgreSQL).
    pub kept: String,
    pub elapsed_ms: u128,
}

/// Resolves `latest` (or a name relative to `BACKUP_DIR`) to the file it designates, links followed.
pub fn resolve(config: &Config, file: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = if file == "latest" {
        ["latest.db.gz", "latest.dump", "latest.db.gz.enc", "latest.dump.enc"]
            .iter()
            .map(|l| config.backup_dir.join(l))
            .collect()
    } else {
        vec![PathBuf::from(file), config.backup_dir.join(file)]
    };
    let p = candidates.into_iter().find(|p| p.exists()).unwrap_or_else(|| PathBuf::from(file));
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// Restores a backup file. The file is checked (decrypted, gzip-tested, integrity-checked) before anything is
/// touched; the current data is kept aside; migrations run on the result. The caller has stopped `serve`.
pub async fn restore(config: &Config, file: &Path, now: DateTime<Utc>) -> Result<RestoreReport, String> {
    let started = Instant::now();
    if !file.exists() {
        return Err(format!("fichier de sauvegarde introuvable : {}", file.display()));
    }
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let work = std::env::temp_dir().join(format!("manchengo-restore-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let res = restore_in(config, file, &name, &work, now).await;
    let _ = std::fs::remove_dir_all(&work);
    res.map(|kept| RestoreReport { kept, elapsed_ms: started.elapsed().as_millis() })
}

async fn restore_in(
    config: &Config,
    file: &Path,
    name: &str,
    work: &Path,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let plain = if let Some(inner) = name.strip_suffix(".enc") {
        let out = work.join(inner);
        decrypt(config, file, &out)?;
        out
    } else {
        file.to_path_buf()
    };
    let plain_name = plain.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let ts = now.format("%Y%m%d_%H%M%S").to_string();
    match Backend::from_url(&config.database_url) {
        Some(Backend::Sqlite) => {
            if !plain_name.ends_with(".db.gz") {
                return Err(format!("{name} n'est pas une sauvegarde de la base embarquée (.db.gz)"));
            }
            gzip_test(&plain)?;
            let candidate = work.join("restored.db");
            gunzip_to(&plain, &candidate)?;
            store::backups::sqlite_verify(&candidate).await?;
            let target =
                PathBuf::from(store::db::sqlite_path(&config.database_url).ok_or("DATABASE_URL SQLite sans fichier")?);
            let kept = PathBuf::from(format!("{}.pre-{ts}", target.display()));
            if target.exists() {
                std::fs::copy(&target, &kept).map_err(|e| format!("copie de sécurité impossible : {e}"))?;
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            // The restored file goes next to the target first, then replaces it by rename (atomic).
            let staged = PathBuf::from(format!("{}.restore-{ts}", target.display()));
            std::fs::copy(&candidate, &staged).map_err(|e| e.to_string())?;
            for ext in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", target.display()));
            }
            std::fs::rename(&staged, &target).map_err(|e| e.to_string())?;
            migrate(config).await?;
            Ok(kept.display().to_string())
        }
        Some(Backend::Postgres) => {
            let is_dump = plain_name.ends_with(".dump");
            if !is_dump && !plain_name.ends_with(".sql.gz") {
                return Err(format!("{name} n'est pas une sauvegarde PostgreSQL (.dump ou .sql.gz)"));
            }
            if is_dump {
                run(Command::new("pg_restore").arg("--list").arg(&plain), "pg_restore --list")
                    .map_err(|_| format!("{name} est tronqué ou corrompu (pg_restore --list)"))?;
            } else {
                gzip_test(&plain)?;
                sql_gz_complete(&plain)?;
            }
            pg_restore_swap(config, &plain, is_dump, &ts).await
        }
        None => Err("DATABASE_URL non reconnue".into()),
    }
}

async fn migrate(config: &Config) -> Result<(), String> {
    let db = store::Db::open(&crate::server::db_options(config, std::time::Duration::from_secs(60)).patient())
        .await
        .map_err(|e| format!("base restaurée illisible : {e}"))?;
    let mut res = store::migration::migrate(&db).await.map(|_| ()).map_err(|e| format!("migrations : {e}"));
    if res.is_ok() {
        // The restored feed is behind what devices saw: a new epoch makes them bootstrap again (PLATFORM.md §12.3).
        let now = chrono::Utc::now();
        res = db
            .write(|tx| Box::pin(async move { store::sync::reset_epoch(&**tx, now).await }))
            .await
            .map(|_| ())
            .map_err(|e| format!("époque du journal des appareils : {e}"));
    }
    db.close().await;
    res
}

/// The URL of another database on the same server.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').map_or(base.len(), |i| i);
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn database_name(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or_default().to_string()
}

/// PostgreSQL: restore into `<db>_restore` in one transaction; on success terminate the sessions and swap names,
/// keeping the current database as `<db>_pre_<ts>`; on failure drop the restore database — the current one is untouched.
async fn pg_restore_swap(config: &Config, file: &Path, is_dump: bool, ts: &str) -> Result<String, String> {
    let url = config.database_url.clone();
    let name = database_name(&url);
    let restore_name = format!("{name}_restore");
    let kept = format!("{name}_pre_{ts}");
    let admin = with_database(&url, "postgres");
    let psql = |sql: String| {
        run(
            Command::new("psql").args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-d"]).arg(&admin).arg("-c").arg(sql),
            "psql",
        )
    };
    psql(format!("DROP DATABASE IF EXISTS \"{restore_name}\""))?;
    psql(format!("CREATE DATABASE \"{restore_name}\""))?;
    let target = with_database(&url, &restore_name);
    let loaded = if is_dump {
        run(
            Command::new("pg_restore")
                .args(["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "-d"])
                .arg(&target)
                .arg(file),
            "pg_restore",
        )
    } else {
        let mut gz =
            Command::new("gzip").arg("-dc").arg(file).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let input = gz.stdout.take().ok_or("gzip sans sortie")?;
        let out = Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "--single-transaction", "-d"])
            .arg(&target)
            .stdin(input)
            .stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let _ = gz.wait();
        if out.status.success() { Ok(Vec::new()) } else { Err("psql a échoué pendant la restauration".into()) }
    };
    if let Err(e) = loaded {
        let _ = psql(format!("DROP DATABASE IF EXISTS \"{restore_name}\""));
        return Err(format!("restauration refusée, base actuelle intacte : {e}"));
    }
    psql(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN ('{name}', '{restore_name}') \
         AND pid <> pg_backend_pid()"
    ))?;
    psql(format!("ALTER DATABASE \"{name}\" RENAME TO \"{kept}\""))?;
    psql(format!("ALTER DATABASE \"{restore_name}\" RENAME TO \"{name}\""))?;
    migrate(config).await?;
    Ok(format!("base {kept}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_databases_on_the_same_server() {
        let url = "postgres://postgres@127.0.0.1:5432/manchengo_erp?sslmode=disable";
        assert_eq!(with_database(url, "postgres"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable");
        assert_eq!(database_name(url), "manchengo_erp");
    }
}

/// What a restore test found (PLATFORM.md §12.4).
#[derive(Debug, Clone)]
pub struct TestReport {
    pub file: PathBuf,
    /// (table, rows) of the restored copy.
    pub counts: Vec<(&'static str, i64)>,
    /// `manchengo check` on the copy.
    pub check: Vec<String>,
    pub ok: bool,
    pub elapsed_ms: u128,
}

const COUNTED: [&str; 6] = ["users", "products", "clients", "lots", "stock_movements", "audit_log"];

async fn counts_of(db: &store::Db) -> Result<Vec<(&'static str, i64)>, String> {
    let mut out = Vec::new();
    for table in COUNTED {
        let n = store::schema::count_rows(db, table).await.map_err(|e| e.to_string())?;
        out.push((table, n));
    }
    Ok(out)
}

/// Restores `file` into a throw-away database, runs the integrity check and counts the rows, always drops the copy,
/// and records the outcome in `backup_runs` of the live database (health `lastRestoreTestStatus`).
pub async fn test_restore(
    config: &Config,
    live: &store::Db,
    file: &Path,
    now: DateTime<Utc>,
) -> Result<TestReport, String> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("manchengo-restore-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let res = test_restore_in(config, file, &work, now).await;
    let _ = std::fs::remove_dir_all(&work);
    let mut row = store::backups::new_run("RESTORE_TEST", now);
    row.finished_at = Utc::now().max(now);
    row.file = Some(file.display().to_string());
    row.host = Some(config.instance_name.clone());
    match &res {
        Ok((_, _, true)) => {
            row.status = "ok".into();
            row.verified = true;
        }
        Ok((_, check, false)) => row.error = Some(check.join(" ; ")),
        Err(e) => row.error = Some(e.clone()),
    }
    if let Err(e) = store::backups::record(live, row).await {
        tracing::error!(error = %e, "restore test not recorded");
        eprintln!("résultat du test de restauration non enregistré dans la base : {e}");
    }
    let (counts, check, ok) = res?;
    Ok(TestReport { file: file.to_path_buf(), counts, check, ok, elapsed_ms: started.elapsed().as_millis() })
}

async fn check_copy(url: &str) -> Result<(Vec<(&'static str, i64)>, Vec<String>, bool), String> {
    let db =
        store::Db::open(&store::DbOptions::new(url).patient()).await.map_err(|e| format!("copie illisible : {e}"))?;
    let res = async {
        let counts = counts_of(&db).await?;
        let report = store::integrity::run(&db, None, false).await.map_err(|e| e.to_string())?;
        let users = counts.iter().find(|c| c.0 == "users").map_or(0, |c| c.1);
        let mut lines = report.lines();
        if users == 0 {
            lines.push("aucun utilisateur dans la copie".into());
        }
        Ok((counts, lines, report.clean() && users > 0))
    }
    .await;
    db.close().await;
    res
}

async fn test_restore_in(
    config: &Config,
    file: &Path,
    work: &Path,
    now: DateTime<Utc>,
) -> Result<(Vec<(&'static str, i64)>, Vec<String>, bool), String> {
    if !file.exists() {
        return Err(format!("fichier de sauvegarde introuvable : {}", file.display()));
    }
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let plain = if let Some(inner) = name.strip_suffix(".enc") {
        let out = work.join(inner);
        decrypt(config, file, &out)?;
        out
    } else {
        file.to_path_buf()
    };
    let plain_name = plain.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if plain_name.ends_with(".db.gz") {
        gzip_test(&plain)?;
        let copy = work.join("copy.db");
        gunzip_to(&plain, &copy)?;
        store::backups::sqlite_verify(&copy).await?;
        return check_copy(&format!("sqlite://{}", copy.display())).await;
    }
    if !plain_name.ends_with(".dump") {
        return Err(format!("{name} : le test de restauration PostgreSQL lit un fichier .dump"));
    }
    run(Command::new("pg_restore").arg("--list").arg(&plain), "pg_restore --list")
        .map_err(|_| format!("{name} est tronqué ou corrompu (pg_restore --list)"))?;
    // The process id keeps two restore tests started in the same second (two servers, or CI) apart.
    let scratch = format!("manchengo_restore_test_{}_{}", now.timestamp(), std::process::id());
    let admin = with_database(&config.database_url, "postgres");
    let psql = |sql: String| {
        run(
            Command::new("psql").args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-d"]).arg(&admin).arg("-c").arg(sql),
            "psql",
        )
    };
    psql(format!("DROP DATABASE IF EXISTS \"{scratch}\""))?;
    psql(format!("CREATE DATABASE \"{scratch}\""))?;
    let url = with_database(&config.database_url, &scratch);
    let res = match run(
        Command::new("pg_restore")
            .args(["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "-d"])
            .arg(&url)
            .arg(&plain),
        "pg_restore",
    ) {
        Ok(_) => check_copy(&url).await,
        Err(e) => Err(e),
    };
    let _ = psql(format!("DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"));
    res
}
