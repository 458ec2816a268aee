//! The binary's commands: help, configuration errors, migrate on both backends.

use std::process::Command;

use crate::support::{on_both, tempdir::Dir};

fn manchengo(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_manchengo"));
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(dir);
    c
}

#[test]
fn help_lists_the_subcommands_and_every_variable() {
    let dir = Dir::new("cli");
    let out = manchengo(dir.path()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "healthcheck", "config", "version"] {
        assert!(text.contains(word), "{word} missing from --help");
    }
    for v in app::config::VARS {
        assert!(text.contains(v.name), "{} missing from --help", v.name);
    }
}

#[test]
fn an_invalid_value_stops_the_start_with_exit_code_2_and_names_the_variable() {
    let dir = Dir::new("cli");
    let out = manchengo(dir.path()).arg("serve").env("RATE_LIMIT_MAX", "abc").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("configuration invalide / invalid configuration : RATE_LIMIT_MAX='abc' (entier > 0 attendu)"),
        "{err}"
    );
    // The same through the env file.
    std::fs::write(dir.path().join(".env"), "PORT=soixante\n").unwrap();
    let out = manchengo(dir.path()).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT='soixante'"));
}

#[test]
fn config_check_masks_secrets() {
    let dir = Dir::new("cli");
    let out = manchengo(dir.path())
        .args(["config", "check"])
        .env("JWT_SECRET", "q8Jf0c1VbX9mN2pL7rT4sW6yZ3aE5dG8hK1")
        .env("DATABASE_URL", "postgres://manchengo:motdepasse@db:5432/manchengo_erp")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("JWT_SECRET=********"));
    assert!(!text.contains("q8Jf0c1V"));
    assert!(!text.contains("motdepasse"));
}

#[tokio::test]
async fn migrate_applies_then_reports_up_to_date_on_both_backends() {
    on_both(|t| async move {
        let out = manchengo(t.dir.path()).arg("migrate").env("DATABASE_URL", &t.url).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("appliquée : m20261127_000001_platform"));
        let out = manchengo(t.dir.path()).arg("migrate").env("DATABASE_URL", &t.url).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("schéma à jour"));
        let out = manchengo(t.dir.path()).args(["migrate", "--status"]).env("DATABASE_URL", &t.url).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("appliquée   m20261127_000001_platform"));
    })
    .await;
}

#[test]
fn a_second_serve_on_the_same_data_directory_exits_with_code_3() {
    let first = crate::support::procs::Manchengo::spawn(&[]);
    let data = first.workdir.path().join("data");
    let out = manchengo(first.workdir.path())
        .arg("serve")
        .env("DATA_DIR", &data)
        .env("PORT", crate::support::free_port().to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    drop(first);
}

fn with_stdin(mut c: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// DOMAIN.md §20 and PLATFORM.md §1: the first administrator from the command line (password from standard input,
/// never an argument), a password reset with a one-time password, an unlock; each audited as `SYSTEM cli`.
#[tokio::test]
async fn user_commands_create_the_first_admin_reset_and_unlock_on_both_backends() {
    on_both(|t| async move {
        let cmd = |args: &[&str]| {
            let mut c = manchengo(t.dir.path());
            c.args(args).env("DATABASE_URL", &t.url).env("DATA_DIR", t.dir.path());
            c
        };
        let create = ["user", "create-admin", "--email", "K.Benali@Fromagerie.dz", "--name", "Karim Benali"];
        let out = with_stdin(cmd(&create), "court\n");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("mot de passe trop faible : 12 à 128 caractères"));
        let out = with_stdin(cmd(&create), "Fromage#2025!\nFromage#2025?\n");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("diffèrent"));
        let out = with_stdin(cmd(&create), "Fromage#2025!\nFromage#2025!\n");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("administrateur créé : k.benali@fromagerie.dz (U0001)"));
        let out = with_stdin(cmd(&create), "Fromage#2025!\n");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Cette adresse e-mail est déjà utilisée."));

        let db = t.open().await;
        let u = store::identity::user_by_email(db.conn(), "k.benali@fromagerie.dz").await.unwrap().unwrap();
        assert_eq!((u.role.as_str(), u.must_change_password), ("ADMIN", false));
        assert_eq!(app::auth::password::verify_now("Fromage#2025!", &u.password_hash), (true, false));
        assert_eq!(store::secrets::get(&db, store::secrets::SETUP_TOKEN).await.unwrap(), None, "first run is over");

        let out = cmd(&["user", "reset-password", "--email", "k.benali@fromagerie.dz"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let otp = text.lines().map(str::trim).find(|l| l.len() == 16).unwrap().to_string();
        let u = store::identity::user_by_email(db.conn(), "k.benali@fromagerie.dz").await.unwrap().unwrap();
        assert!(u.must_change_password);
        assert!(app::auth::password::verify_now(&otp, &u.password_hash).0);

        let key = app::auth::session::email_key("k.benali@fromagerie.dz");
        let locked = domain::identity::Attempts {
            failures: 5,
            first_failure_at: Some(0),
            locked_until: Some(i64::from(i32::MAX)),
        };
        store::identity::save_attempts(db.conn(), &key, locked).await.unwrap();
        let out = cmd(&["user", "unlock", "--email", "k.benali@fromagerie.dz"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("verrouillage levé"));
        assert_eq!(store::identity::attempts(db.conn(), &key).await.unwrap(), domain::identity::Attempts::default());

        let f = store::audit::Filter::default();
        let actions: Vec<String> =
            store::audit::list(&db, &f, 100).await.unwrap().into_iter().rev().map(|r| r.action).collect();
        assert_eq!(actions, vec!["USER_CREATED", "PASSWORD_RESET", "ACCOUNT_UNLOCKED"]);
        let out = cmd(&["check", "--audit"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("chaîne d'audit intacte : 3 entrées vérifiées"));
        db.close().await;
    })
    .await;
}

/// The server prints the first-run token while no user exists, in its JSON log.
#[test]
fn serve_prints_the_setup_token_while_no_user_exists() {
    let srv = crate::support::procs::Manchengo::spawn(&[]);
    // The bootstrap (migrations, secrets, token) runs right after the listener opens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !srv.logs().contains("setup_token") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let logs = srv.logs();
    let line = logs.lines().find(|l| l.contains("setup_token")).unwrap_or_else(|| panic!("no setup token in:\n{logs}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["setup_token"].as_str().unwrap().len(), 64);
}

/// DOMAIN.md §20: `seed --demo` fills an empty installation through the store (the checks of `manchengo check`
/// pass), prints each role's one-time password, and refuses to run a second time.
#[tokio::test]
async fn the_demo_seed_fills_an_empty_installation_once_and_stays_consistent() {
    on_both(|t| async move {
        // Three weeks of history keep the test light on a two-core CI machine; the default is 90 days.
        let seed = || {
            manchengo(t.dir.path())
                .args(["seed", "--demo", "--days", "21"])
                .env("DATABASE_URL", &t.url)
                .output()
                .unwrap()
        };
        let out = seed();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("20 MP, 10 PF et leurs recettes, 6 fournisseurs, 25 clients, 3 tarifs."), "{stdout}");
        for line in [
            "registre des stocks cohérent",
            "numérotation continue",
            "timbre fiscal cohérent",
            "chaîne d'audit intacte",
        ] {
            assert!(stdout.contains(line), "{line}: {stdout}");
        }
        assert_eq!(stdout.matches("@demo-fromagerie.dz").count(), 5);
        assert!(stdout.contains("Stock : 6 comptages d'inventaire validés, 3 pertes déclarées."), "{stdout}");
        // The history is real documents: invoices validated with their BLs, payments, two credit notes.
        let db = t.migrated().await;
        let c = db.conn();
        let invoices = store::sales::list_invoices(c, None, None).await.unwrap();
        // About five attempted per working day; those refused for lack of stock that day are skipped.
        assert!(invoices.len() >= 40, "{} invoices", invoices.len());
        assert!(invoices.iter().all(|i| i.reference.is_some()));
        let notes: usize = {
            let mut n = 0;
            for i in invoices.iter().take(5) {
                n += store::sales::credit_notes_of(c, i.id).await.unwrap().len();
            }
            n
        };
        assert_eq!(notes, 2, "the two credit notes are on the latest invoices");
        let counts = store::inventory::list(&db).await.unwrap();
        assert_eq!(counts.len(), 6);
        assert!(
            counts.iter().all(|c| c.status == "APPROVED"),
            "{:?}",
            counts.iter().map(|c| &c.status).collect::<Vec<_>>()
        );
        // Seeded documents print with the DÉMO watermark.
        assert!(store::settings::is_demo(c).await.unwrap());
        let k = store::kpi::sales_kpis(c, domain::stock::today_algiers(chrono::Utc::now())).await.unwrap();
        assert!(k.aging.buckets.iter().sum::<i64>() > 0, "some invoices stay open for the aging");
        db.close().await;

        let out = seed();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("refusé : la base contient déjà des données métier"));
    })
    .await;
}
