//! Backup naming and retention (PLATFORM.md §12.1): names in UTC, prune only what is older than the retention, never
//! the 4 newest nor a `latest` target, nothing after a failed run.

use chrono::{DateTime, Utc};

/// The backup files of one run: `manchengo_20250314_050003.db.gz` (embedded) or `….dump` + `….sql.gz` (PostgreSQL);
/// a label (`pre-deploy-<sha>`) is kept in the name.
pub fn stem(label: Option<&str>, at: DateTime<Utc>) -> String {
    let ts = at.format("%Y%m%d_%H%M%S");
    match label.map(sanitize).filter(|l| !l.is_empty()) {
        Some(l) => format!("manchengo_{ts}_{l}"),
        None => format!("manchengo_{ts}"),
    }
}

fn sanitize(label: &str) -> String {
    label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(40).collect()
}

const SUFFIXES: [&str; 6] = [".db.gz.enc", ".dump.enc", ".sql.gz.enc", ".db.gz", ".dump", ".sql.gz"];

/// Whether a file name is one of our backups, encrypted or not (not a `latest` link, not a safety copy).
pub fn is_backup(name: &str) -> bool {
    name.starts_with("manchengo_") && SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The run a file belongs to (`manchengo_20250314_050003` for its `.dump`, `.sql.gz` and their `.enc`).
pub fn run_of(name: &str) -> &str {
    SUFFIXES.iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

pub const KEEP_NEWEST: usize = 4;

/// Which files to delete: runs older than `retention_days`, except the `KEEP_NEWEST` newest runs and any run a
/// `latest` link points to. `files` are (name, modification time).
pub fn to_prune(
    files: &[(String, DateTime<Utc>)],
    protected: &[String],
    retention_days: i64,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut runs: Vec<(&str, DateTime<Utc>)> = Vec::new();
    for (name, at) in files.iter().filter(|(n, _)| is_backup(n)) {
        let run = run_of(name);
        match runs.iter_mut().find(|(r, _)| *r == run) {
            Some((_, t)) => *t = (*t).max(*at),
            None => runs.push((run, *at)),
        }
    }
    runs.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(a.0)));
    let keep: Vec<&str> =
        runs.iter().take(KEEP_NEWEST).map(|r| r.0).chain(protected.iter().map(|p| run_of(p))).collect();
    let old: Vec<&str> = runs
        .iter()
        .filter(|(run, at)| (now - *at).num_days() >= retention_days && !keep.contains(run))
        .map(|r| r.0)
        .collect();
    let mut out: Vec<String> =
        files.iter().filter(|(n, _)| is_backup(n) && old.contains(&run_of(n))).map(|(n, _)| n.clone()).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn names_are_utc_and_keep_a_clean_label() {
        assert_eq!(stem(None, at("2025-03-14T05:00:03Z")), "manchengo_20250314_050003");
        assert_eq!(
            stem(Some("pre-deploy-3f2a1b/../x"), at("2025-03-14T05:00:03Z")),
            "manchengo_20250314_050003_pre-deploy-3f2a1bx"
        );
        assert!(is_backup("manchengo_20250314_050003.sql.gz") && !is_backup("latest.sql.gz"));
        assert_eq!(run_of("manchengo_20250314_050003.dump"), "manchengo_20250314_050003");
        assert_eq!(run_of("manchengo_20250314_050003.sql.gz.enc"), "manchengo_20250314_050003");
        assert!(is_backup("manchengo_20250314_050003.db.gz.enc"));
    }

    #[test]
    fn old_runs_go_but_never_the_four_newest_nor_latest() {
        let now = at("2025-04-30T12:00:00Z");
        let day = |d: u32| at(&format!("2025-03-{d:02}T06:00:00Z"));
        let mut files: Vec<(String, DateTime<Utc>)> = Vec::new();
        for d in 1..=6 {
            files.push((format!("manchengo_202503{d:02}_060000.dump"), day(d)));
            files.push((format!("manchengo_202503{d:02}_060000.sql.gz"), day(d)));
        }
        files.push(("latest.dump".into(), day(6)));
        // All are older than 30 days: the 4 newest runs (3–6) stay, run 1 is `latest`'s target, run 2 goes.
        let gone = to_prune(&files, &["manchengo_20250301_060000.dump".into()], 30, now);
        assert_eq!(gone, vec!["manchengo_20250302_060000.dump", "manchengo_20250302_060000.sql.gz"]);
        // Within the retention nothing goes.
        assert!(to_prune(&files, &[], 90, now).is_empty());
    }
}
