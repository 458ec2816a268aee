//! `manchengo`: the server and the operators' commands of Manchengo Smart ERP.

use std::process::ExitCode;
use std::time::Duration;

use app::config::{Config, help_table};

mod bench;
mod bench_documents;
mod bench_stock;
mod bench_sync;
mod bench_trace;
mod seed;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "manchengo", version, about = "Manchengo Smart ERP — serveur et commandes d'exploitation", after_long_help = help_table(), after_help = "Variables d'environnement : voir `manchengo --help` (liste complète) ou README.md.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Données de démonstration : `seed --demo` charge une fromagerie fictive (catalogue, partenaires, 90 jours
    /// d'activité) sur une installation vide et affiche une fois les mots de passe des comptes créés.
    Seed {
        /// Obligatoire : confirme qu'il s'agit du jeu de démonstration.
        #[arg(long)]
        demo: bool,
        /// Jours d'historique (90 par défaut, 7 au minimum).
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
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
    /// Comptes : premier administrateur, réinitialisation de mot de passe, déverrouillage.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Événements de synchronisation des appareils (runbook INC-005) : liste et remise en file.
    Sync {
        #[command(subcommand)]
        action: SyncAction,
    },
    /// Client d'appareil de référence : rejoue un fichier d'envois (outbox) vers un serveur, comme un téléphone.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// Vérifications d'intégrité ; --audit : la chaîne du journal d'audit seule. Code 1 si une violation est trouvée.
    Check {
        /// Vérifie seulement la chaîne d'audit.
        #[arg(long)]
        audit: bool,
        /// Commence à l'entrée SEQ (la précédente est tenue pour sûre).
        #[arg(long, value_name = "SEQ")]
        from: Option<i64>,
        /// Base à vérifier (défaut : DATABASE_URL), par exemple une restauration de test.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Une sauvegarde vérifiée dans BACKUP_DIR (SQLite : copie cohérente gzip ; PostgreSQL : pg_dump + SQL gzip),
    /// liens latest, élagage après vérification. Code 1 en cas d'échec (sauvegardes précédentes intactes).
    Backup {
        #[command(subcommand)]
        action: Option<BackupAction>,
        /// Reste en service (conteneur backup) : une sauvegarde toutes les BACKUP_INTERVAL_HOURS (créneaux depuis
        /// 00:00 Africa/Algiers) et un test de restauration le dimanche à 04:00 ; s'arrête proprement sur SIGTERM.
        #[arg(long)]
        daemon: bool,
        /// Étiquette ajoutée au nom du fichier (par exemple pre-deploy-3f2a1b).
        #[arg(long)]
        label: Option<String>,
    },
    /// Restaure une sauvegarde (fichier, nom dans BACKUP_DIR ou « latest ») : vérifiée d'abord, données actuelles
    /// mises de côté, migrations ensuite. Arrêtez « manchengo serve » avant (base embarquée).
    Restore {
        /// Fichier .db.gz, .dump ou .sql.gz (éventuellement .enc), ou « latest ».
        file: String,
        /// Ne demande pas de taper RESTAURER.
        #[arg(long)]
        yes: bool,
    },
    /// Mesures de performance écrites dans docs/BENCHMARKS.md (jamais des assertions).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Affiche la version.
    Version,
}

#[derive(Subcommand)]
enum BackupAction {
    /// Restaure une sauvegarde dans une base jetable, lance la vérification d'intégrité, compte les lignes, supprime
    /// la copie et enregistre le résultat (santé : lastRestoreTestStatus). Code 1 en cas d'échec.
    TestRestore {
        /// Fichier à tester (défaut : latest).
        #[arg(long)]
        file: Option<String>,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Durée d'une connexion : argon2id seul, puis des connexions HTTP complètes sur un serveur en mémoire.
    Login {
        /// Nombre de connexions mesurées.
        #[arg(long, default_value_t = 40)]
        logins: usize,
        /// Fichier où écrire la section (ex. docs/BENCHMARKS.md).
        #[arg(long)]
        write: Option<std::path::PathBuf>,
        /// Base à utiliser (défaut : une base SQLite temporaire).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Mouvements de stock par seconde (base brute, couche store, API HTTP) et stock à date sur un million de mouvements.
    Stock {
        /// Opérations mesurées par chemin.
        #[arg(long, default_value_t = 400)]
        ops: usize,
        /// Taille du registre pour le stock à date.
        #[arg(long, default_value_t = 1_000_000)]
        movements: usize,
        /// Fichier où écrire la section (ex. docs/BENCHMARKS.md).
        #[arg(long)]
        write: Option<std::path::PathBuf>,
        /// Base à utiliser (défaut : une base SQLite temporaire ; PostgreSQL : une base vide).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Validation d'une facture de 40 lignes et rendu des documents imprimés (facture, BL, étiquette).
    Documents {
        /// Factures de 40 lignes validées et rendues.
        #[arg(long, default_value_t = 50)]
        samples: usize,
        /// Fichier où écrire la section (ex. docs/BENCHMARKS.md).
        #[arg(long)]
        write: Option<std::path::PathBuf>,
        /// Base à utiliser (défaut : une base SQLite temporaire ; PostgreSQL : une base vide).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Synchronisation : un envoi de 500 événements et la lecture de 5 000 changements, par HTTP, avec le client
    /// d'appareil de référence.
    Sync {
        /// Événements envoyés (par lots de 100).
        #[arg(long, default_value_t = 500)]
        events: usize,
        /// Changements lus dans le journal de l'appareil.
        #[arg(long, default_value_t = 5_000)]
        changes: usize,
        /// Fichier où écrire la section (ex. docs/BENCHMARKS.md).
        #[arg(long)]
        write: Option<std::path::PathBuf>,
        /// Base à utiliser (défaut : une base SQLite temporaire ; PostgreSQL : une base vide).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Traçabilité amont et aval sur une année de production (réceptions et ordres écrits par la couche store).
    Trace {
        /// Jours de production générés (trois ordres par jour).
        #[arg(long, default_value_t = 365)]
        days: usize,
        /// Traces mesurées de chaque sens.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Fichier où écrire la section (ex. docs/BENCHMARKS.md).
        #[arg(long)]
        write: Option<std::path::PathBuf>,
        /// Base à utiliser (défaut : une base SQLite temporaire ; PostgreSQL : une base vide).
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum SyncAction {
    /// Liste les événements : id, client_event_id, appareil, utilisateur, action, entité, statut, tentatives, erreur,
    /// date.
    List {
        /// PENDING, APPLIED, ACKED ou FAILED (défaut : tous).
        #[arg(long)]
        status: Option<String>,
        /// Seulement les événements reçus depuis (ex. 24h, 7d).
        #[arg(long)]
        since: Option<String>,
    },
    /// Remet en file un événement en échec, ou tous ceux reçus depuis --since (ce que fait l'UPDATE du runbook).
    Retry {
        /// Identifiant de l'événement (serveur ou client).
        id: Option<String>,
        /// Tous les événements FAILED.
        #[arg(long)]
        all_failed: bool,
        /// Avec --all-failed : reçus depuis (ex. 24h, 7d ; défaut 24h).
        #[arg(long)]
        since: Option<String>,
    },
    /// Nouvelle époque du journal des appareils (après une restauration) : chaque appareil recharge ses données.
    ResetFeed,
}

#[derive(Subcommand)]
enum DeviceAction {
    /// Envoie les commandes en attente du fichier (par lots de 100, dans l'ordre), attend comme un téléphone (429,
    /// 503, réseau absent), réécrit le fichier après chaque réponse, puis lit le journal de l'appareil.
    Replay {
        /// Fichier d'envois : {"pending":[{id, entityType, entityId, action, occurredAt, payload}], …}.
        #[arg(long)]
        outbox: std::path::PathBuf,
        /// Adresse du serveur (ex. https://erp.fromagerie.dz).
        #[arg(long)]
        url: String,
        #[arg(long)]
        email: String,
        /// Mot de passe (sinon demandé, ou MANCHENGO_PASSWORD).
        #[arg(long, env = "MANCHENGO_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Identifiant de l'appareil (gardé dans le fichier d'envois après la première fois).
        #[arg(long)]
        device_id: Option<uuid::Uuid>,
        #[arg(long, default_value = "Client de référence")]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Crée un administrateur. Le mot de passe est demandé deux fois (ou lu sur l'entrée standard), jamais en argument.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// « Prénom Nom ».
        #[arg(long)]
        name: String,
    },
    /// Remplace le mot de passe par un mot de passe à usage unique affiché une fois, à changer à la connexion ;
    /// ferme toutes les sessions de l'utilisateur.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
    /// Lève le verrouillage de connexion (5 échecs) d'une adresse e-mail.
    Unlock {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Valide la configuration.
    Check,
}

/// A bench's section: written into `write` (between its markers) when asked, always printed.
fn bench_result(result: Result<String, String>, write: Option<std::path::PathBuf>) -> ExitCode {
    match result {
        Ok(section) => {
            if let Some(path) = write
                && let Err(e) = bench::write_section(&path, &section)
            {
                eprintln!("écriture impossible : {e}");
                return ExitCode::from(1);
            }
            println!("{section}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("échec du banc d'essai : {e}");
            ExitCode::from(1)
        }
    }
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
        Command::User { action } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(user_command(config, action))
        }
        Command::Sync { action } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(sync_command(config, action))
        }
        Command::Device { action: DeviceAction::Replay { outbox, url, email, password, device_id, name } } => {
            let password = match password {
                Some(p) => p,
                None => match rpassword::prompt_password("Mot de passe : ") {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("mot de passe illisible : {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            runtime().block_on(device_replay(&outbox, &url, &email, &password, device_id, &name))
        }
        Command::Check { audit, from, database_url } => {
            let mut config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Some(url) = database_url {
                config.database_url = url;
            }
            runtime().block_on(check(config, audit, from))
        }
        Command::Backup { action, label, daemon } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            match action {
                None if daemon => runtime().block_on(backup_daemon(config)),
                None => runtime().block_on(backup(config, label)),
                Some(BackupAction::TestRestore { file }) => {
                    runtime().block_on(test_restore(config, file.unwrap_or_else(|| "latest".into())))
                }
            }
        }
        Command::Restore { file, yes } => {
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(restore(config, file, yes))
        }
        Command::Bench { what: BenchWhat::Login { logins, write, database_url } } => {
            match runtime().block_on(bench::login_bench(database_url, logins.max(4), write)) {
                Ok(section) => {
                    println!("{section}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("échec du banc d'essai : {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench { what: BenchWhat::Trace { days, samples, write, database_url } } => {
            bench_result(runtime().block_on(bench_trace::trace_bench(database_url, days.max(2), samples.max(1))), write)
        }
        Command::Bench { what: BenchWhat::Sync { events, changes, write, database_url } } => bench_result(
            runtime().block_on(bench_sync::sync_bench(database_url, events.max(100), changes.max(200))),
            write,
        ),
        Command::Bench { what: BenchWhat::Documents { samples, write, database_url } } => {
            bench_result(runtime().block_on(bench_documents::documents_bench(database_url, samples.max(2))), write)
        }
        Command::Bench { what: BenchWhat::Stock { ops, movements, write, database_url } } => bench_result(
            runtime().block_on(bench_stock::stock_bench(database_url, ops.max(4), movements.max(1_000))),
            write,
        ),
        Command::Seed { demo, days } => {
            if !demo {
                eprintln!("précisez --demo : seul le jeu de démonstration existe.");
                return ExitCode::from(2);
            }
            let config = match load_config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(async {
                let db = match open_db(&config).await {
                    Ok(db) => db,
                    Err(code) => return code,
                };
                let result = seed::demo(&db, days.max(7)).await;
                db.close().await;
                match result {
                    Ok(text) => {
                        println!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::from(1)
                    }
                }
            })
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
    let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(120)).patient()).await {
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

async fn open_db(config: &Config) -> Result<store::Db, ExitCode> {
    let db =
        store::Db::open(&app::server::db_options(config, Duration::from_secs(120)).patient()).await.map_err(|e| {
            eprintln!("échec de connexion à la base : {e}");
            ExitCode::from(1)
        })?;
    // A fresh installation may run `user create-admin` before the first `serve`.
    store::migration::migrate(&db).await.map_err(|e| {
        eprintln!("échec de la migration : {e}");
        ExitCode::from(1)
    })?;
    Ok(db)
}

/// Reads the new password: twice at a terminal without echo, or from standard input (one line, or two equal lines).
fn read_new_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Mot de passe : ").map_err(|e| e.to_string())?;
        let b = rpassword::prompt_password("Confirmation : ").map_err(|e| e.to_string())?;
        if a != b {
            return Err("les deux saisies diffèrent".into());
        }
        return Ok(a);
    }
    let lines: Vec<String> =
        std::io::stdin().lock().lines().take(2).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match lines.as_slice() {
        [a] => Ok(a.clone()),
        [a, b] if a == b => Ok(a.clone()),
        [_, _] => Err("les deux lignes lues diffèrent".into()),
        _ => Err("aucun mot de passe sur l'entrée standard".into()),
    }
}

async fn user_command(config: Config, action: UserAction) -> ExitCode {
    use domain::identity::{normalize_email, password_failures, password_rule_fr};
    let db = match open_db(&config).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    let now = chrono::Utc::now();
    let actor = store::audit::Actor::system("cli");
    let email_of = |raw: &str| normalize_email(raw).ok_or_else(|| format!("adresse e-mail invalide : {raw}"));
    let result: Result<String, String> = async {
        match action {
            UserAction::CreateAdmin { email, name } => {
                let email = email_of(&email)?;
                let (first, last) = name.trim().split_once(' ').ok_or("--name \"Prénom Nom\" attendu")?;
                let password = read_new_password()?;
                let failed = password_failures(&password, None, &email);
                if !failed.is_empty() {
                    let rules: Vec<&str> = failed.iter().map(|c| password_rule_fr(c)).collect();
                    return Err(format!("mot de passe trop faible : {}", rules.join(" ; ")));
                }
                let new = store::identity::NewUser {
                    email: email.clone(),
                    first_name: first.trim().into(),
                    last_name: last.trim().into(),
                    role: domain::identity::Role::Admin,
                    password_hash: app::auth::password::hash_now(&password),
                    must_change_password: false,
                };
                let u = db
                    .write(|tx| {
                        let (new, actor) = (new.clone(), actor.clone());
                        Box::pin(async move {
                            let u = store::identity::create_user(&**tx, new, &actor, now, false).await?;
                            store::secrets::delete(&**tx, store::secrets::SETUP_TOKEN).await?;
                            Ok::<_, store::OpError>(u)
                        })
                    })
                    .await
                    .map_err(describe)?;
                Ok(format!("administrateur créé : {} ({})", u.email, u.code))
            }
            UserAction::ResetPassword { email } => {
                let email = email_of(&email)?;
                let user = store::identity::user_by_email(db.conn(), &email)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("aucun utilisateur {email}"))?;
                let otp = app::auth::tokens::one_time_password();
                let hash = app::auth::password::hash_now(&otp);
                db.write(|tx| {
                    let (user, actor, hash) = (user.clone(), actor.clone(), hash.clone());
                    Box::pin(async move { store::identity::set_password(&**tx, &user, hash, true, None, &actor, now).await })
                })
                .await
                .map_err(|e| e.to_string())?;
                Ok(format!(
                    "mot de passe à usage unique de {email} (affiché une seule fois, à changer à la connexion) :\n\n    {otp}\n\ntoutes ses sessions ont été fermées"
                ))
            }
            UserAction::Unlock { email } => {
                let key = app::auth::session::email_key(&email);
                let user = match normalize_email(&email) {
                    Some(e) => store::identity::user_by_email(db.conn(), &e).await.map_err(|e| e.to_string())?,
                    None => None,
                };
                let cleared = db
                    .write(|tx| {
                        let (key, actor) = (key.clone(), actor.clone());
                        let uid = user.as_ref().map(|u| u.id);
                        Box::pin(async move {
                            let cleared = store::identity::clear_attempts(&**tx, &key).await?;
                            let mut change = store::audit::Change::new("ACCOUNT_UNLOCKED");
                            if let Some(uid) = uid {
                                change = change.entity("user", uid);
                            }
                            store::audit::append(&**tx, &actor, change, now).await?;
                            Ok::<_, store::StoreError>(cleared)
                        })
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(if cleared { format!("{email} : verrouillage levé") } else { format!("{email} : aucun verrouillage en cours") })
            }
        }
    }
    .await;
    db.close().await;
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("échec : {e}");
            ExitCode::from(1)
        }
    }
}

fn describe(e: store::OpError) -> String {
    match e {
        store::OpError::Rejected(r) => r.message,
        store::OpError::Store(e) => e.to_string(),
    }
}

async fn backup(config: Config, label: Option<String>) -> ExitCode {
    let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(600)).patient()).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("échec de connexion à la base : {e}");
            return ExitCode::from(1);
        }
    };
    let res = app::ops::backup::backup(&config, &db, label.as_deref(), chrono::Utc::now()).await;
    db.close().await;
    match res {
        Ok(r) => {
            for f in &r.files {
                println!("sauvegarde vérifiée : {}", f.display());
            }
            println!("taille {} octets, sha256 {}, durée {} ms", r.size_bytes, r.sha256, r.elapsed_ms);
            if !r.pruned.is_empty() {
                println!("élagués (plus de {} jours) : {}", config.backup_retention_days, r.pruned.join(", "));
            }
            match &r.offsite {
                Ok(sent) if !sent.is_empty() => println!("copie hors site : {}", sent.join(", ")),
                Ok(_) => {}
                Err(e) => eprintln!("ATTENTION : copie hors site échouée ({e}) ; la sauvegarde locale est valide"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sauvegarde impossible : {e}");
            eprintln!("les sauvegardes précédentes sont intactes ; rien n'a été élagué");
            ExitCode::from(1)
        }
    }
}

/// The `backup` container's scheduler (PLATFORM.md §12.1, §12.4): verified backups on the interval's slots, a restore
/// test every Sunday 04:00 (Algiers). A failed run is logged and recorded; the daemon keeps going.
async fn backup_daemon(config: Config) -> ExitCode {
    use domain::platform::schedule::{Calendar, next_slot, next_sunday_at};
    app::platform::telemetry::init_logging(&config);
    let every = Calendar::EveryHours { hours: config.backup_interval_hours.clamp(1, 24) as u32 };
    let mut shutdown = std::pin::pin!(app::server::shutdown_signal());
    tracing::info!(interval_hours = config.backup_interval_hours, "backup daemon started");
    loop {
        let now = chrono::Utc::now().timestamp();
        let (backup_at, test_at) = (next_slot(every, now), next_sunday_at(4, now));
        let at = backup_at.min(test_at);
        let wait = Duration::from_secs((at - now).max(1) as u64);
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("backup daemon stopped");
                return ExitCode::SUCCESS;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(600)).patient()).await {
            Ok(db) => db,
            Err(e) => {
                tracing::error!(error = %e, "backup: database unreachable");
                continue;
            }
        };
        let now = chrono::Utc::now();
        if at == backup_at {
            match app::ops::backup::backup(&config, &db, None, now).await {
                Ok(r) => tracing::info!(files = ?r.files, ms = r.elapsed_ms as u64, "backup verified"),
                Err(e) => tracing::error!(error = %e, "backup failed"),
            }
        }
        if at == test_at {
            let path = app::ops::backup::resolve(&config, "latest");
            match app::ops::backup::test_restore(&config, &db, &path, now).await {
                Ok(r) if r.ok => tracing::info!(ms = r.elapsed_ms as u64, "restore test passed"),
                Ok(r) => tracing::error!(findings = ?r.check, "RESTORE TEST FAILED"),
                Err(e) => tracing::error!(error = %e, "RESTORE TEST FAILED"),
            }
        }
        db.close().await;
    }
}

async fn test_restore(config: Config, file: String) -> ExitCode {
    let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(600)).patient()).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("échec de connexion à la base : {e}");
            return ExitCode::from(1);
        }
    };
    let path = app::ops::backup::resolve(&config, &file);
    let res = app::ops::backup::test_restore(&config, &db, &path, chrono::Utc::now()).await;
    db.close().await;
    match res {
        Ok(r) => {
            println!("test de restauration de {} ({} ms)", r.file.display(), r.elapsed_ms);
            for (table, n) in &r.counts {
                println!("  {table} : {n}");
            }
            for line in &r.check {
                println!("{line}");
            }
            if r.ok {
                println!("test de restauration réussi");
                ExitCode::SUCCESS
            } else {
                eprintln!("TEST DE RESTAURATION EN ÉCHEC");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("TEST DE RESTAURATION EN ÉCHEC : {e}");
            ExitCode::from(1)
        }
    }
}

async fn restore(config: Config, file: String, yes: bool) -> ExitCode {
    // The embedded database must not be in use: the data-directory lock of `serve` says so.
    let _lock = if store::Backend::from_url(&config.database_url) == Some(store::Backend::Sqlite) {
        match take_data_lock(&config.data_dir) {
            Ok(l) => Some(l),
            Err(_) => {
                eprintln!(
                    "restauration refusée : « manchengo serve » tourne sur {} ; arrêtez-le d'abord",
                    config.data_dir.display()
                );
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let path = app::ops::backup::resolve(&config, &file);
    if !path.exists() {
        eprintln!("fichier de sauvegarde introuvable : {file}");
        return ExitCode::from(1);
    }
    if let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) {
        let at = chrono::DateTime::<chrono::Utc>::from(modified);
        println!(
            "sauvegarde {} du {} : les données saisies après ce moment seront perdues",
            path.display(),
            domain::format::datetime_algiers(at.timestamp())
        );
    }
    if !yes {
        use std::io::BufRead;
        println!("Tapez RESTAURER pour confirmer :");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if line.trim() != "RESTAURER" {
            eprintln!("abandon : rien n'a été modifié");
            return ExitCode::from(1);
        }
    }
    match app::ops::backup::restore(&config, &path, chrono::Utc::now()).await {
        Ok(r) => {
            println!("restauration terminée en {} ms ; données précédentes conservées : {}", r.elapsed_ms, r.kept);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("restauration impossible : {e}");
            eprintln!("les données actuelles n'ont pas été modifiées");
            ExitCode::from(1)
        }
    }
}

async fn sync_command(config: Config, action: SyncAction) -> ExitCode {
    let since_of =
        |s: &Option<String>, default: Option<&str>| -> Result<Option<chrono::DateTime<chrono::Utc>>, ExitCode> {
            match s.as_deref().or(default) {
                None => Ok(None),
                Some(v) => match domain::sync::parse_since(v) {
                    Some(d) => Ok(Some(chrono::Utc::now() - d)),
                    None => {
                        eprintln!("--since attend une durée comme 24h, 7d ou 90m (reçu : {v}).");
                        Err(ExitCode::from(2))
                    }
                },
            }
        };
    let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(30)).patient()).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("échec de connexion à la base : {e}");
            return ExitCode::from(1);
        }
    };
    match action {
        SyncAction::List { status, since } => {
            let since = match since_of(&since, None) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match store::sync::list(db.conn(), status.as_deref(), since).await {
                Ok(events) => {
                    println!(
                        "id\tclient_event_id\tdevice\tuser\taction\tentity\tstatus\tattempts\terror_code\tcreated_at"
                    );
                    for e in &events {
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}:{}\t{}\t{}\t{}\t{}",
                            e.id,
                            e.client_event_id,
                            e.device_id,
                            e.user_id,
                            e.action,
                            e.entity_type,
                            e.entity_id,
                            e.status,
                            e.attempts,
                            e.error_code.as_deref().unwrap_or("-"),
                            e.created_at.to_rfc3339()
                        );
                    }
                    println!("{} événement(s)", events.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("lecture impossible : {e}");
                    ExitCode::from(1)
                }
            }
        }
        SyncAction::Retry { id, all_failed, since } => {
            let result = match (id, all_failed) {
                (Some(id), false) => match id.parse::<uuid::Uuid>() {
                    Ok(id) => db
                        .write(|tx| Box::pin(async move { store::sync::retry(&**tx, id).await.map(|_| 1u64) }))
                        .await
                        .map_err(|e| match e {
                            store::OpError::Rejected(r) => r.message,
                            other => other.to_string(),
                        }),
                    Err(_) => Err(format!("identifiant invalide : {id}")),
                },
                (None, true) => {
                    let since = match since_of(&since, Some("24h")) {
                        Ok(s) => s.unwrap_or_else(chrono::Utc::now),
                        Err(code) => return code,
                    };
                    db.write(|tx| {
                        Box::pin(
                            async move { store::sync::retry_failed(&**tx, since).await.map_err(store::OpError::from) },
                        )
                    })
                    .await
                    .map_err(|e| e.to_string())
                }
                _ => {
                    eprintln!("précisez un identifiant ou --all-failed.");
                    return ExitCode::from(2);
                }
            };
            match result {
                Ok(n) => {
                    println!("{n} événement(s) remis en file");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        SyncAction::ResetFeed => {
            let now = chrono::Utc::now();
            match db.write(|tx| Box::pin(async move { store::sync::reset_epoch(&**tx, now).await })).await {
                Ok(epoch) => {
                    println!("nouvelle époque du journal : {epoch} (les appareils rechargent leurs données)");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn device_replay(
    path: &std::path::Path,
    url: &str,
    email: &str,
    password: &str,
    device_id: Option<uuid::Uuid>,
    name: &str,
) -> ExitCode {
    let mut outbox = match device::Outbox::load(path) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fichier d'envois illisible : {e}");
            return ExitCode::from(2);
        }
    };
    // The device id lives with the outbox: the same file always speaks as the same device.
    let id_file = path.with_extension("device");
    let device = device_id
        .or_else(|| std::fs::read_to_string(&id_file).ok().and_then(|s| s.trim().parse().ok()))
        .unwrap_or_else(uuid::Uuid::new_v4);
    let _ = std::fs::write(&id_file, device.to_string());
    let client = match device::Client::login(url, email, password, device, name).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connexion impossible : {e}");
            return ExitCode::from(1);
        }
    };
    let before = outbox.pending.len();
    let pushed = client
        .push_all(&mut outbox, device::Backoff::default(), |o| {
            if let Err(e) = o.save(path) {
                eprintln!("{e}");
            }
        })
        .await;
    if let Err(e) = pushed {
        let _ = outbox.save(path);
        eprintln!("envoi interrompu : {e} ({} commande(s) toujours en attente)", outbox.pending.len());
        return ExitCode::from(1);
    }
    let changes = match client.pull_all(&mut outbox, 500).await {
        Ok(c) => c.len(),
        Err(e) => {
            eprintln!("lecture du journal impossible : {e}");
            0
        }
    };
    if let Err(e) = outbox.save(path) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    let settled: Vec<&device::Outcome> =
        outbox.outcomes.iter().rev().take(before - outbox.pending.len().min(before)).collect();
    for o in settled.iter().rev() {
        println!(
            "{}\t{}\t{}\t{}",
            o.id,
            o.action,
            o.status,
            o.server_ref
                .clone()
                .or_else(|| o.code.clone().map(|c| format!("{c} : {}", o.message.clone().unwrap_or_default())))
                .unwrap_or_default()
        );
    }
    println!(
        "{} commande(s) réglée(s), {} en attente ; {changes} changement(s) lus, curseur {}",
        before - outbox.pending.len().min(before),
        outbox.pending.len(),
        outbox.cursor
    );
    ExitCode::SUCCESS
}

async fn check(config: Config, audit_only: bool, from: Option<i64>) -> ExitCode {
    let db = match store::Db::open(&app::server::db_options(&config, Duration::from_secs(120)).patient()).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("échec de connexion à la base : {e}");
            return ExitCode::from(1);
        }
    };
    // Audit chain, then every lot recomputed from the ledger and every sequence against its documents; reported,
    // never repaired (DOMAIN.md §5.4, §15, §16).
    let clean = match store::integrity::run(&db, from, audit_only).await {
        Ok(report) => {
            for line in report.lines() {
                println!("{line}");
            }
            // DOMAIN.md §20, scenario 62: a failure, whoever finds it, raises INTEGRITE_ECHEC for the dashboard.
            if !report.clean()
                && let Err(e) = store::integrity::raise_failure(&db, &report, chrono::Utc::now()).await
            {
                eprintln!("alerte INTEGRITE_ECHEC non enregistrée : {e}");
            }
            report.clean()
        }
        Err(e) => {
            eprintln!("vérification impossible : {e}");
            false
        }
    };
    db.close().await;
    if clean { ExitCode::SUCCESS } else { ExitCode::from(1) }
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
    // PLATFORM.md §11.3: a binary older than the schema's min_reader_version refuses to start (exit 4), so a rollback
    // never runs silently on a contracted schema. With the database unreachable the server starts degraded as usual.
    if let Err(msg) = schema_compatible(&config).await {
        eprintln!("{msg}");
        return ExitCode::from(4);
    }
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

async fn schema_compatible(config: &Config) -> Result<(), String> {
    // At most 2 s: a database that does not answer is the outage path (the server starts and reports 503).
    let options = app::server::db_options(config, Duration::from_secs(2));
    let read = async {
        let db = store::Db::open(&options).await.ok()?;
        let min = store::migration::min_reader_version(&db).await.ok().flatten();
        db.close().await;
        min
    };
    match tokio::time::timeout(Duration::from_secs(2), read).await.ok().flatten() {
        Some(min) if !domain::platform::version::at_least(env!("CARGO_PKG_VERSION"), &min) => Err(format!(
            "schéma trop récent pour cette version (min {min}) : cette version est {} ; voir docs/RUNBOOK.md#rollback",
            env!("CARGO_PKG_VERSION")
        )),
        _ => Ok(()),
    }
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
