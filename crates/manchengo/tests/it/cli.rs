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
