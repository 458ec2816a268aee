//! Configuration (PLATFORM.md §3): process environment over the env file over built-in defaults, read once at start,
//! validated fail-fast. There is no built-in secret: `JWT_SECRET` and `QR_SECRET` without a value are generated once
//! and kept in the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::platform::config_values::{
    check_secret, parse_bool, parse_duration_secs, parse_positive, parse_size_bytes,
};
use domain::platform::net::Cidr;

/// One documented variable: its name, its default (as written in the env file) and what it means (French).
pub struct Var {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub help: &'static str,
    pub secret: bool,
}

const fn var(name: &'static str, default: Option<&'static str>, help: &'static str) -> Var {
    Var { name, default, help, secret: false }
}

const fn secret(name: &'static str, help: &'static str) -> Var {
    Var { name, default: None, help, secret: true }
}

/// Every variable the server reads; `--help` prints this table and `config check` validates it.
pub const VARS: &[Var] = &[
    var("APP_ENV", Some("development"), "development ou production (production : cookies sécurisés, HSTS, logs JSON)"),
    var("MANCHENGO_ENV_FILE", None, "fichier d'environnement à lire (sinon ./.env s'il existe)"),
    var("PORT", Some("3000"), "port d'écoute HTTP"),
    var("BIND_ADDR", Some("127.0.0.1"), "adresse d'écoute (0.0.0.0 dans l'image)"),
    var("PUBLIC_URL", None, "URL publique (https://erp.example.dz), obligatoire en production"),
    var("INSTANCE_NAME", None, "nom de l'instance dans les logs, la santé et les baux de tâches (défaut : nom d'hôte)"),
    var(
        "DATABASE_URL",
        Some("sqlite://./data/manchengo.db"),
        "base de données : sqlite://… (embarquée) ou postgres://…",
    ),
    var("DB_POOL_MAX", Some("10"), "taille du pool PostgreSQL (SQLite : lecteurs, plafonné à 8)"),
    var("DATABASE_REPLICA_URL", None, "réplique en lecture pour les rapports (optionnelle)"),
    var("DB_POOLER", Some("none"), "none ou pgbouncer"),
    var("MIGRATE_ON_START", Some("true"), "serve applique les migrations en attente au démarrage"),
    var("DATA_DIR", Some("./data"), "répertoire des données embarquées, du verrou et des sauvegardes locales"),
    var("REDIS_URL", None, "redis://hôte:6379/0 ; absent : cache en mémoire et limites locales"),
    secret("REDIS_PASSWORD", "mot de passe Redis si REDIS_URL n'en porte pas"),
    var("REDIS_RATE_LIMIT_DB", Some("1"), "base Redis des compteurs de limitation"),
    var("CACHE_MAX_ENTRIES", Some("10000"), "entrées max du cache en mémoire"),
    var("CACHE_MAX_BYTES", Some("64MiB"), "taille max du cache en mémoire"),
    var("LOG_FORMAT", None, "json ou pretty (défaut : json en production, pretty sinon)"),
    var("LOG_LEVEL", Some("info"), "error, warn, info, debug, trace ou filtre par module"),
    var("RATE_LIMIT_TTL", Some("60"), "fenêtre de limitation générale, secondes"),
    var("RATE_LIMIT_MAX", Some("100"), "requêtes par fenêtre et par client"),
    var("RATE_LIMIT_LOGIN_MAX", Some("5"), "tentatives de connexion par 15 min et par (IP, e-mail)"),
    var("RATE_LIMIT_SYNC_PUSH_MAX", Some("120"), "envois de synchro par appareil et par minute"),
    var("RATE_LIMIT_SYNC_PULL_MAX", Some("240"), "lectures de synchro par appareil et par minute"),
    var("RATE_LIMIT_EXPORT_MAX", Some("10"), "exports par utilisateur et par minute"),
    var("TRUSTED_PROXIES", Some(""), "réseaux CIDR dont X-Forwarded-For est cru (compose : 172.28.0.10/32)"),
    secret("JWT_SECRET", "clé HS256 ≥ 32 octets ; absente : générée une fois et gardée en base"),
    secret("JWT_SECRET_PREVIOUS", "ancienne clé acceptée en vérification pendant une rotation"),
    secret("QR_SECRET", "clé HMAC des QR codes imprimés ; absente : générée une fois et gardée en base"),
    var("ACCESS_TOKEN_TTL", Some("15m"), "durée du jeton d'accès"),
    var("REFRESH_TOKEN_TTL_WEB", Some("1d"), "durée glissante de session web"),
    var("REFRESH_TOKEN_TTL_DEVICE", Some("30d"), "durée glissante de session appareil"),
    var("CORS_ORIGINS", Some(""), "origines autorisées (exactes, séparées par des virgules)"),
    var("DOCS_ENABLED", None, "documentation /docs (défaut : oui en développement, non en production)"),
    var("BODY_LIMIT", Some("2MiB"), "taille max d'une requête"),
    var("SYNC_BODY_LIMIT", Some("10MiB"), "taille max d'un envoi de synchro"),
    var("SHUTDOWN_TIMEOUT", Some("20s"), "délai laissé aux requêtes en cours à l'arrêt"),
    secret("SENTRY_DSN", "active Sentry (server_name manchengo-backend)"),
    var("SENTRY_TRACES_SAMPLE_RATE", Some("0.1"), "échantillonnage des traces Sentry, 0 à 1"),
    var("HEALTH_DETAILED_ALLOW", Some("127.0.0.1/32,::1/128"), "IP pouvant lire /api/health/detailed sans jeton"),
    var("METRICS_ALLOW", Some("127.0.0.1/32,::1/128"), "IP pouvant lire /metrics sans jeton"),
    var("TLS_CERT_FILE", None, "certificat dont l'expiration est surveillée"),
    var("MIN_DEVICE_APP_VERSION", None, "version minimale de l'application des appareils"),
    var("BACKUP_DIR", None, "répertoire des sauvegardes (défaut : $DATA_DIR/backups)"),
    var("BACKUP_INTERVAL_HOURS", Some("6"), "période des sauvegardes embarquées, heures"),
    var("BACKUP_RETENTION_DAYS", Some("30"), "durée de conservation des sauvegardes, jours"),
    var("BACKUP_AGE_RECIPIENTS", None, "clés publiques age chiffrant les copies hors site"),
    var("BACKUP_ENCRYPT_LOCAL", Some("false"), "chiffrer aussi les copies locales"),
    var("BACKUP_PASSPHRASE_FILE", None, "fichier de phrase secrète (chiffrement OpenSSL)"),
    var("BACKUP_OFFSITE_TARGET", None, "destination rsync/rclone des copies vérifiées"),
    var(
        "BACKUP_LETSENCRYPT_DIR",
        None,
        "répertoire des certificats archivé à chaque sauvegarde (letsencrypt_latest.tar.gz)",
    ),
    secret("POSTGRES_PASSWORD", "compose seulement : mot de passe du service postgres"),
    var("TZ", None, "ignorée par la logique métier (Africa/Algiers est fixe)"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

impl AppEnv {
    pub fn name(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub port: u16,
    pub bind_addr: std::net::IpAddr,
    pub public_url: Option<String>,
    pub instance_name: String,
    pub database_url: String,
    pub db_pool_max: u32,
    pub migrate_on_start: bool,
    pub data_dir: PathBuf,
    pub redis_url: Option<String>,
    pub redis_rate_limit_db: u32,
    pub cache_max_entries: u64,
    pub cache_max_bytes: u64,
    pub log_format: LogFormat,
    pub log_level: String,
    pub rate_limit_ttl: Duration,
    pub rate_limit_max: u64,
    pub rate_limit_login_max: u64,
    /// Sync pushes and pulls per device per minute (PLATFORM.md §5).
    pub rate_limit_sync_push_max: u64,
    pub rate_limit_sync_pull_max: u64,
    /// Devices below this app version get `426 APP_VERSION_UNSUPPORTED` on sync routes.
    pub min_device_app_version: Option<String>,
    pub trusted_proxies: Vec<Cidr>,
    pub jwt_secret: Option<String>,
    pub jwt_secret_previous: Option<String>,
    pub qr_secret: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl_web: Duration,
    pub refresh_token_ttl_device: Duration,
    pub cors_origins: Vec<String>,
    pub docs_enabled: bool,
    pub body_limit: usize,
    pub sync_body_limit: usize,
    pub shutdown_timeout: Duration,
    pub sentry_dsn: Option<String>,
    pub sentry_traces_sample_rate: f32,
    pub health_detailed_allow: Vec<Cidr>,
    pub metrics_allow: Vec<Cidr>,
    pub backup_dir: PathBuf,
    pub backup_interval_hours: u64,
    pub backup_retention_days: u64,
    /// OpenSSL AES-256 + PBKDF2 encryption of the local copies when set (with `BACKUP_ENCRYPT_LOCAL`).
    pub backup_passphrase_file: Option<PathBuf>,
    pub backup_encrypt_local: bool,
    /// Archived next to `BACKUP_DIR` as `letsencrypt_latest.tar.gz` after each successful backup.
    pub backup_letsencrypt_dir: Option<PathBuf>,
    /// age public keys: the off-site copies are encrypted for them.
    pub backup_age_recipients: Vec<String>,
    /// rsync destination of the verified (encrypted) copies.
    pub backup_offsite_target: Option<String>,
    /// Certificate whose expiry `/metrics` exports (`tls_certificate_not_after_seconds`).
    pub tls_cert_file: Option<PathBuf>,
    /// The values as read (for `config check`), secrets masked.
    pub effective: Vec<(String, String)>,
}

/// Reads an env file: `KEY=value`, `#` comments, optional double quotes, no interpolation.
pub fn parse_env_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("ligne {} : KEY=valeur attendu", n + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("ligne {} : nom de variable invalide « {key} »", n + 1));
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(rest) => {
                rest.strip_suffix('"').ok_or_else(|| format!("ligne {} : guillemet non fermé", n + 1))?.to_string()
            }
            // An unquoted value stops at a " #" comment.
            None => value.split(" #").next().unwrap_or("").trim().to_string(),
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// Merges the env file under the process environment (PLATFORM.md §3.1). `MANCHENGO_ENV_FILE` names the file (a
/// missing one is an error); otherwise `./.env` is read when present.
pub fn gather(process: &HashMap<String, String>, cwd: &Path) -> Result<HashMap<String, String>, Vec<String>> {
    let (path, required) = match process.get("MANCHENGO_ENV_FILE").filter(|p| !p.is_empty()) {
        Some(p) => (PathBuf::from(p), true),
        None => (cwd.join(".env"), false),
    };
    let mut merged = HashMap::new();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            merged =
                parse_env_file(&text).map_err(|e| vec![line("MANCHENGO_ENV_FILE", &path.display().to_string(), &e)])?;
        }
        Err(e) if required || e.kind() != std::io::ErrorKind::NotFound => {
            return Err(vec![line("MANCHENGO_ENV_FILE", &path.display().to_string(), "fichier illisible ou absent")]);
        }
        Err(_) => {}
    }
    for v in VARS {
        if let Some(value) = process.get(v.name) {
            merged.insert(v.name.to_string(), value.clone());
        }
    }
    Ok(merged)
}

/// The one-line message of an invalid value, French then English, naming the variable.
fn line(name: &str, value: &str, why: &str) -> String {
    format!("configuration invalide / invalid configuration : {name}='{value}' ({why})")
}

struct Reader<'a> {
    values: &'a HashMap<String, String>,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        let explicit = self.values.get(name).filter(|v| !v.trim().is_empty()).cloned();
        explicit.or_else(|| {
            VARS.iter().find(|v| v.name == name).and_then(|v| v.default).filter(|d| !d.is_empty()).map(str::to_string)
        })
    }

    fn get<T>(&mut self, name: &str, fallback: T, parse: impl Fn(&str) -> Result<T, String>) -> T {
        match self.raw(name) {
            None => fallback,
            Some(raw) => match parse(&raw) {
                Ok(v) => v,
                Err(why) => {
                    let is_secret = VARS.iter().any(|v| v.name == name && v.secret);
                    self.errors.push(line(name, if is_secret { "********" } else { &raw }, &why));
                    fallback
                }
            },
        }
    }
}

impl Config {
    /// Builds and validates the configuration from merged values; every problem is reported, one line each.
    pub fn from_values(values: &HashMap<String, String>) -> Result<Config, Vec<String>> {
        let mut r = Reader { values, errors: Vec::new() };
        let app_env = r.get("APP_ENV", AppEnv::Development, |s| match s {
            "development" => Ok(AppEnv::Development),
            "production" => Ok(AppEnv::Production),
            _ => Err("development ou production attendu".into()),
        });
        let prod = app_env == AppEnv::Production;
        let port = r.get("PORT", 3000u16, |s| s.trim().parse::<u16>().map_err(|_| "port 0–65535 attendu".into()));
        let bind_addr = r.get("BIND_ADDR", std::net::IpAddr::from([127, 0, 0, 1]), |s| {
            s.trim().parse().map_err(|_| "adresse IP attendue".into())
        });
        let public_url = r.get("PUBLIC_URL", None, |s| {
            if s.starts_with("http://") || s.starts_with("https://") {
                Ok(Some(s.trim_end_matches('/').to_string()))
            } else {
                Err("URL http(s):// attendue".into())
            }
        });
        if prod && public_url.is_none() {
            r.errors.push(line("PUBLIC_URL", "", "obligatoire en production"));
        }
        let instance_name = r.raw("INSTANCE_NAME").unwrap_or_else(hostname);
        let database_url = r.get("DATABASE_URL", String::new(), |s| {
            store::Backend::from_url(s)
                .map(|_| s.to_string())
                .ok_or_else(|| "sqlite://… ou postgres://… attendu".into())
        });
        let db_pool_max = r.get("DB_POOL_MAX", 10u32, |s| parse_positive(s).map(|n| n.min(1000) as u32));
        r.get("DB_POOLER", (), |s| match s {
            "none" | "pgbouncer" => Ok(()),
            _ => Err("none ou pgbouncer attendu".into()),
        });
        let migrate_on_start = r.get("MIGRATE_ON_START", true, parse_bool);
        let data_dir = PathBuf::from(r.raw("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let redis_password = r.raw("REDIS_PASSWORD");
        let redis_url = r.get("REDIS_URL", None, |s| {
            if s.starts_with("redis://") || s.starts_with("rediss://") {
                Ok(Some(with_redis_password(s, redis_password.as_deref())))
            } else {
                Err("redis://hôte:port/base attendu".into())
            }
        });
        let redis_rate_limit_db = r.get("REDIS_RATE_LIMIT_DB", 1u32, |s| {
            s.trim().parse::<u32>().ok().filter(|n| *n < 16).ok_or_else(|| "entier 0–15 attendu".into())
        });
        let cache_max_entries = r.get("CACHE_MAX_ENTRIES", 10_000, parse_positive);
        let cache_max_bytes = r.get("CACHE_MAX_BYTES", 64 << 20, parse_size_bytes);
        let log_format = r.get("LOG_FORMAT", if prod { LogFormat::Json } else { LogFormat::Pretty }, |s| match s {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err("json ou pretty attendu".into()),
        });
        let log_level = r.get("LOG_LEVEL", "info".to_string(), |s| {
            tracing_subscriber::EnvFilter::try_new(s)
                .map(|_| s.to_string())
                .map_err(|_| "niveau ou filtre de logs attendu (info, warn, info,manchengo=debug)".into())
        });
        let rate_limit_ttl = r.get("RATE_LIMIT_TTL", Duration::from_secs(60), |s| {
            parse_duration_secs(s)
                .and_then(|n| if n == 0 { Err("durée > 0 attendue".into()) } else { Ok(Duration::from_secs(n)) })
        });
        let rate_limit_max = r.get("RATE_LIMIT_MAX", 100, parse_positive);
        let rate_limit_login_max = r.get("RATE_LIMIT_LOGIN_MAX", 5, parse_positive);
        let rate_limit_sync_push_max = r.get("RATE_LIMIT_SYNC_PUSH_MAX", 120, parse_positive);
        let rate_limit_sync_pull_max = r.get("RATE_LIMIT_SYNC_PULL_MAX", 240, parse_positive);
        r.get("RATE_LIMIT_EXPORT_MAX", 0, parse_positive);
        let min_device_app_version = r.get("MIN_DEVICE_APP_VERSION", None, |s| {
            if domain::sync::version_parts(s).is_some() {
                Ok(Some(s.trim().to_string()))
            } else {
                Err("version attendue : 1.4.0".into())
            }
        });
        let trusted_proxies = r.get("TRUSTED_PROXIES", Vec::new(), Cidr::parse_list);
        let jwt_secret = r.get("JWT_SECRET", None, |s| check_secret(s).map(|_| Some(s.to_string())));
        let jwt_secret_previous = r.get("JWT_SECRET_PREVIOUS", None, |s| check_secret(s).map(|_| Some(s.to_string())));
        let qr_secret = r.get("QR_SECRET", None, |s| check_secret(s).map(|_| Some(s.to_string())));
        let ttl = |s: &str| {
            parse_duration_secs(s)
                .and_then(|n| if n == 0 { Err("durée > 0 attendue".into()) } else { Ok(Duration::from_secs(n)) })
        };
        let access_token_ttl = r.get("ACCESS_TOKEN_TTL", Duration::from_secs(15 * 60), ttl);
        let refresh_token_ttl_web = r.get("REFRESH_TOKEN_TTL_WEB", Duration::from_secs(86_400), ttl);
        let refresh_token_ttl_device = r.get("REFRESH_TOKEN_TTL_DEVICE", Duration::from_secs(30 * 86_400), ttl);
        let cors_origins = r.get("CORS_ORIGINS", Vec::new(), |s| {
            s.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| {
                    if (o.starts_with("https://") || o.starts_with("http://")) && !o.ends_with('/') {
                        Ok(o.to_string())
                    } else {
                        Err(format!("origine exacte attendue (https://hôte[:port]) : « {o} »"))
                    }
                })
                .collect()
        });
        let docs_enabled = r.get("DOCS_ENABLED", !prod, parse_bool);
        let body_limit = r.get("BODY_LIMIT", 2 << 20, parse_size_bytes) as usize;
        let sync_body_limit = r.get("SYNC_BODY_LIMIT", 10 << 20, parse_size_bytes) as usize;
        let shutdown_timeout =
            r.get("SHUTDOWN_TIMEOUT", Duration::from_secs(20), |s| parse_duration_secs(s).map(Duration::from_secs));
        let sentry_dsn = r.get("SENTRY_DSN", None, |s| {
            if s.starts_with("https://") || s.starts_with("http://") {
                Ok(Some(s.to_string()))
            } else {
                Err("DSN https://…@…/projet attendu".into())
            }
        });
        let sentry_traces_sample_rate = r.get("SENTRY_TRACES_SAMPLE_RATE", 0.1f32, |s| {
            s.trim()
                .parse::<f32>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| "nombre de 0 à 1 attendu".into())
        });
        let health_detailed_allow = r.get("HEALTH_DETAILED_ALLOW", Vec::new(), Cidr::parse_list);
        let metrics_allow = r.get("METRICS_ALLOW", Vec::new(), Cidr::parse_list);
        if prod {
            for (name, list) in [("HEALTH_DETAILED_ALLOW", &health_detailed_allow), ("METRICS_ALLOW", &metrics_allow)] {
                if list.iter().any(Cidr::is_everything) {
                    let shown = list.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                    r.errors.push(line(name, &shown, "0.0.0.0/0 et ::/0 interdits en production"));
                }
            }
        }
        let backup_dir = r.raw("BACKUP_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("backups"));
        let backup_interval_hours = r.get("BACKUP_INTERVAL_HOURS", 6, parse_positive);
        let backup_retention_days = r.get("BACKUP_RETENTION_DAYS", 30, parse_positive);
        let backup_passphrase_file = r.raw("BACKUP_PASSPHRASE_FILE").map(PathBuf::from);
        let tls_cert_file = r.raw("TLS_CERT_FILE").map(PathBuf::from);
        let backup_encrypt_local = r.get("BACKUP_ENCRYPT_LOCAL", false, parse_bool);
        let backup_letsencrypt_dir = r.raw("BACKUP_LETSENCRYPT_DIR").map(PathBuf::from);
        let backup_age_recipients: Vec<String> = r
            .raw("BACKUP_AGE_RECIPIENTS")
            .map(|v| v.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect())
            .unwrap_or_default();
        for key in &backup_age_recipients {
            if !key.starts_with("age1") {
                r.errors.push(line("BACKUP_AGE_RECIPIENTS", key, "clé publique age attendue (age1…)"));
            }
        }
        let backup_offsite_target = r.raw("BACKUP_OFFSITE_TARGET");

        if !r.errors.is_empty() {
            return Err(r.errors);
        }
        let effective = VARS
            .iter()
            .filter_map(|v| {
                let value = r.raw(v.name)?;
                Some((v.name.to_string(), if v.secret { "********".to_string() } else { mask_url(&value) }))
            })
            .collect();
        Ok(Config {
            app_env,
            port,
            bind_addr,
            public_url,
            instance_name,
            database_url,
            db_pool_max,
            migrate_on_start,
            data_dir,
            redis_url,
            redis_rate_limit_db,
            cache_max_entries,
            cache_max_bytes,
            log_format,
            log_level,
            rate_limit_ttl,
            rate_limit_max,
            rate_limit_login_max,
            rate_limit_sync_push_max,
            rate_limit_sync_pull_max,
            min_device_app_version,
            trusted_proxies,
            jwt_secret,
            jwt_secret_previous,
            qr_secret,
            access_token_ttl,
            refresh_token_ttl_web,
            refresh_token_ttl_device,
            cors_origins,
            docs_enabled,
            body_limit,
            sync_body_limit,
            shutdown_timeout,
            sentry_dsn,
            sentry_traces_sample_rate,
            health_detailed_allow,
            metrics_allow,
            backup_dir,
            backup_interval_hours,
            backup_retention_days,
            backup_passphrase_file,
            backup_encrypt_local,
            backup_letsencrypt_dir,
            backup_age_recipients,
            backup_offsite_target,
            tls_cert_file,
            effective,
        })
    }

    /// Reads the process environment and the env file of the current directory.
    pub fn load() -> Result<Config, Vec<String>> {
        let process: HashMap<String, String> = std::env::vars().collect();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Config::from_values(&gather(&process, &cwd)?)
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "manchengo".into())
}

/// Adds `REDIS_PASSWORD` to a Redis URL that carries none.
pub fn with_redis_password(url: &str, password: Option<&str>) -> String {
    let Some(pw) = password.filter(|p| !p.is_empty()) else { return url.to_string() };
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    if rest.split('/').next().is_some_and(|authority| authority.contains('@')) {
        return url.to_string();
    }
    format!("{scheme}://:{}@{rest}", percent_encode(pw))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Hides the password of a URL in printed values.
fn mask_url(value: &str) -> String {
    if value.contains("://") && value.contains('@') { store::db::redact_url(value) } else { value.to_string() }
}

/// The help text listing each variable with its default, for `--help`.
pub fn help_table() -> String {
    let mut out = String::from("Variables d'environnement (ou fichier .env / MANCHENGO_ENV_FILE) :\n");
    for v in VARS {
        let default = match v.default {
            Some(d) if !d.is_empty() => format!(" [défaut : {d}]"),
            _ => String::new(),
        };
        out.push_str(&format!("  {:<26} {}{}\n", v.name, v.help, default));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn nothing_configured_means_the_embedded_default() {
        let c = Config::from_values(&HashMap::new()).unwrap();
        assert_eq!(c.database_url, "sqlite://./data/manchengo.db");
        assert_eq!(c.port, 3000);
        assert_eq!(c.redis_url, None);
        assert_eq!(c.rate_limit_max, 100);
        assert_eq!(c.rate_limit_ttl, Duration::from_secs(60));
        assert_eq!(c.body_limit, 2 * 1024 * 1024);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(c.jwt_secret, None, "no built-in secret");
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.health_detailed_allow.len(), 2);
    }

    #[test]
    fn an_invalid_value_names_the_variable_in_french_and_english() {
        let errs = Config::from_values(&values(&[("RATE_LIMIT_MAX", "abc"), ("PORT", "70000")])).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs.contains(
            &"configuration invalide / invalid configuration : RATE_LIMIT_MAX='abc' (entier > 0 attendu)".to_string()
        ));
        assert!(errs.iter().any(|e| e.contains("PORT='70000'")));
    }

    #[test]
    fn production_requires_public_url_and_refuses_open_diagnostics() {
        let errs =
            Config::from_values(&values(&[("APP_ENV", "production"), ("METRICS_ALLOW", "0.0.0.0/0")])).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("PUBLIC_URL")));
        assert!(errs.iter().any(|e| e.contains("METRICS_ALLOW")));
        let ok = Config::from_values(&values(&[("APP_ENV", "production"), ("PUBLIC_URL", "https://erp.example.dz")]))
            .unwrap();
        assert_eq!(ok.log_format, LogFormat::Json);
        assert!(!ok.docs_enabled);
    }

    #[test]
    fn placeholder_secrets_are_refused() {
        let errs = Config::from_values(&values(&[("JWT_SECRET", "change-me-please-change-me-please-!!")])).unwrap_err();
        assert!(errs[0].contains("JWT_SECRET"));
        assert!(!errs[0].contains("change-me"), "a secret's value never appears in messages");
    }

    #[test]
    fn env_file_syntax() {
        let parsed =
            parse_env_file("# commentaire\nRATE_LIMIT_MAX=200\nPUBLIC_URL=\"https://x.dz\"\nLOG_LEVEL=info # note\n\n")
                .unwrap();
        assert_eq!(parsed["RATE_LIMIT_MAX"], "200");
        assert_eq!(parsed["PUBLIC_URL"], "https://x.dz");
        assert_eq!(parsed["LOG_LEVEL"], "info");
        assert!(parse_env_file("NOT A LINE").is_err());
        assert!(parse_env_file("A=\"open").is_err());
    }

    #[test]
    fn process_environment_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("mcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".env"), "RATE_LIMIT_MAX=200\nRATE_LIMIT_TTL=30\n").unwrap();
        let merged = gather(&values(&[("RATE_LIMIT_MAX", "150")]), &dir).unwrap();
        assert_eq!(merged["RATE_LIMIT_MAX"], "150");
        assert_eq!(merged["RATE_LIMIT_TTL"], "30");
        let missing = gather(&values(&[("MANCHENGO_ENV_FILE", "/nonexistent/m.env")]), &dir).unwrap_err();
        assert!(missing[0].contains("MANCHENGO_ENV_FILE"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redis_password_goes_into_a_url_without_one() {
        assert_eq!(with_redis_password("redis://redis:6379/0", Some("p@ss")), "redis://:p%40ss@redis:6379/0");
        assert_eq!(with_redis_password("redis://:x@redis:6379/0", Some("y")), "redis://:x@redis:6379/0");
        assert_eq!(with_redis_password("redis://redis:6379/0", None), "redis://redis:6379/0");
    }
}
