//! The expiry of the certificate nginx serves (PLATFORM.md §9.2 `tls_certificate_not_after_seconds`, runbook INC-006),
//! read with `openssl x509 -enddate` again whenever the file changes.

use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

/// `notAfter=Mar 14 12:00:00 2026 GMT` → Unix seconds.
pub fn parse_enddate(line: &str) -> Option<i64> {
    let v = line.trim().strip_prefix("notAfter=")?;
    let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
    chrono::NaiveDateTime::parse_from_str(&v, "%b %d %H:%M:%S %Y GMT").ok().map(|t| t.and_utc().timestamp())
}

fn read(path: &Path) -> Option<i64> {
    let out =
        std::process::Command::new("openssl").args(["x509", "-enddate", "-noout", "-in"]).arg(path).output().ok()?;
    out.status.success().then(|| parse_enddate(&String::from_utf8_lossy(&out.stdout))).flatten()
}

/// The certificate's `notAfter`, `None` when unreadable. Re-read only when the file (links followed) changes: a
/// renewal by certbot repoints the links to new files, so the next scrape sees it without a restart.
pub fn not_after(path: &Path) -> Option<i64> {
    type Seen = (Option<(SystemTime, u64, std::path::PathBuf)>, Option<i64>);
    static CACHE: Mutex<Option<Seen>> = Mutex::new(None);
    let identity = std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len(), std::fs::canonicalize(path).ok()?)));
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((seen, v)) = &*c
        && identity.is_some()
        && *seen == identity
    {
        return *v;
    }
    let v = read(path);
    *c = Some((identity, v));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_enddates() {
        assert_eq!(parse_enddate("notAfter=Mar 14 12:00:00 2026 GMT\n"), Some(1_773_489_600));
        assert_eq!(parse_enddate("notAfter=Jan  2 00:00:00 2030 GMT"), Some(1_893_542_400));
        assert_eq!(parse_enddate("garbage"), None);
    }
}
