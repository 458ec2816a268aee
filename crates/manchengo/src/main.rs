//! `manchengo`: the server and the operators' commands of Manchengo Smart ERP.

use std::process::ExitCode;
use std::time::Duration;

use app::config::{Config, help_table};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "manchengo", version, about = "Manchengo Smart ERP — serveur et commandes d'exploitation", after_long_help = help_table(), after_help = "Variables d'environnement : voir `manchengo --help` (liste complète) ou README.md.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Démarre le serveur HTTP (API, pages, tâches planifiées). Applique les migrations sauf MIGRATE_ON_START=false.
    #[command(after_long_help = help_table())]
    Serve,
    /// Applique les migrations en attente (ou affiche leur état avec --status).
    Migrate {
        /// Liste les migrations appliquées et en attente, sans rien changer.
        #[arg(long)]
        status: bool,
        /// Affiche ce qui serait appliqué, sans rien changer.
        #[arg(long)]
        dry_run: bool,
    },
    /// Interroge /api/health/ready du serveur local : code 0 si prêt ou dégradé, 1 sinon (HEALTHCHECK de l'image).
    Healthcheck {
        /// Adresse à interroger (défaut : http://127.0.0.1:$PORT/api/health/ready).
        #[arg(long)]
        url: Option<String>,
    },
    /// Vérifie la configuration et affiche les valeurs effectives (secrets masqués).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Affiche la version.
    Version,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Valide la configuration.
    Check,
}

fn load_config() -> Result<Config, ExitCode> {
    Config::load().map_err(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!(
                "manchengo {} (git {})",
                env!("CARGO_PKG_VERSION"),
                option_env!("MANCHENGO_GIT_COMMIT").unwrap_or("inconnu")
            );
            ExitCode::SUCCESS
        }
        Command::Config { action: ConfigAction::Check } => match load_config() {
            Ok(c) => {
                println!("configuration valide");
                for (k, v) in &c.effective {
                    println!("{k}={v}");
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Healthcheck { url } => {
            let url = url.unwrap_or_else(|| {
                let port = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(3000);
                format!("http://127.0.0.1:{port}/api/health/ready")
            });
            match healthcheck(&url) {
                Ok(200) => ExitCode::SUCCESS,
                Ok(code) => {
                    eprintln!("non prêt : HTTP {code}");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("injoignable : {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Migrate { status, dry_run } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(migrate(config, status || dry_run))
        }
        Command::Serve => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(serve(config))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

async fn migrate(config: Config, read_only: bool) -> ExitCode {
    app::platform::telemetry::init_logging(&config);
    let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(120))).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("échec de connexion à la base : {e}");
            return ExitCode::from(1);
        }
    };
    let result = if read_only {
        store::migration::status(&db).await.map(|list| {
            for m in list {
                println!("{} {}", if m.applied { "appliquée  " } else { "en attente " }, m.name);
            }
        })
    } else {
        store::migration::migrate(&db).await.map(|applied| {
            if applied.is_empty() {
                println!("schéma à jour : aucune migration en attente");
            }
            for m in applied {
                println!("appliquée : {m}");
            }
        })
    };
    db.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("échec de la migration : {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    app::platform::telemetry::init_logging(&config);
    let _sentry = app::platform::telemetry::init_sentry(&config);
    // One `serve` per SQLite file: the data-directory lock (exit code 3 for a second one).
    let _lock = if store::Backend::from_url(&config.database_url) == Some(store::Backend::Sqlite) {
        match take_data_lock(&config.data_dir) {
            Ok(f) => Some(f),
            Err(msg) => {
                eprintln!("{msg}");
                return ExitCode::from(3);
            }
        }
    } else {
        None
    };
    let addr = std::net::SocketAddr::new(config.bind_addr, config.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("impossible d'écouter sur {addr} / cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let built = app::server::App::build(config, app::server::Options::default()).await;
    let app = match built {
        Ok(a) => a,
        Err(e) => {
            eprintln!("démarrage impossible / cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(%addr, backend = app.state.dbmon.db().backend().name(), cache = app.state.cache.mode().metric_label(), "listening");
    app.serve(listener, app::server::shutdown_signal()).await;
    ExitCode::SUCCESS
}

fn take_data_lock(data_dir: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        format!("répertoire de données inaccessible / data directory not writable: {} ({e})", data_dir.display())
    })?;
    let path = data_dir.join("manchengo.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("verrou inaccessible / cannot open lock {}: {e}", path.display()))?;
    file.try_lock().map_err(|_| {
        format!("un autre « manchengo serve » utilise déjà {} / another serve holds the lock", data_dir.display())
    })?;
    Ok(file)
}

/// A minimal HTTP/1.1 GET on loopback: the image has no curl.
fn healthcheck(url: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("seules les URL http:// sont acceptées")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("adresse introuvable")?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| "réponse illisible".into())
}
