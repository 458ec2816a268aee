//! Display formats shared by pages, documents and exports (UI.md §1.4).

/// `14/03/2025 09:12` in Africa/Algiers (fixed UTC+1, no DST: PLATFORM.md §0) from a Unix timestamp in seconds.
pub fn datetime_algiers(unix_secs: i64) -> String {
    let local = unix_secs + 3_600;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{d:02}/{m:02}/{y:04} {:02}:{:02}", secs / 3_600, secs / 60 % 60)
}

/// `80,0 %` — a rate given in tenths of a percent, French style (comma, U+202F before `%`, UI.md §1.4).
pub fn percent_tenths(tenths: u64) -> String {
    format!("{},{}\u{202F}%", tenths / 10, tenths % 10)
}

/// `90,0 %` — a rate in basis points (yields, tolerances), rounded half up to a tenth of a percent.
pub fn percent_bp(bp: i64) -> String {
    percent_tenths(crate::money::round_div(i128::from(bp.max(0)), 10) as u64)
}

/// One CSV line as French spreadsheets open it: `;`-separated, a field quoted when it holds `;`, `"` or a line
/// break (quotes doubled), CRLF-terminated.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut out = fields
        .iter()
        .map(|f| {
            let f = f.as_ref();
            if f.contains([';', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.to_string() }
        })
        .collect::<Vec<_>>()
        .join(";");
    out.push_str("\r\n");
    out
}

/// A milli-unit quantity for files: a dot and three decimals (`120.000`), like the accounting exports' amounts.
pub fn qty_dot(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", milli.unsigned_abs() / 1000, milli.unsigned_abs() % 1000)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_the_french_way() {
        assert_eq!(percent_tenths(800), "80,0\u{202F}%");
        assert_eq!(percent_tenths(0), "0,0\u{202F}%");
        assert_eq!(percent_tenths(667), "66,7\u{202F}%");
        assert_eq!(percent_bp(9_000), "90,0\u{202F}%");
        assert_eq!(percent_bp(200), "2,0\u{202F}%");
        assert_eq!(percent_bp(9_855), "98,6\u{202F}%");
    }

    #[test]
    fn csv_lines_quote_only_what_needs_it() {
        assert_eq!(csv_line(&["L250314-001", "Lait cru", "120.000"]), "L250314-001;Lait cru;120.000\r\n");
        assert_eq!(csv_line(&["SARL \"El Baraka\"; Blida", ""]), "\"SARL \"\"El Baraka\"\"; Blida\";\r\n");
        assert_eq!(qty_dot(120_000), "120.000");
        assert_eq!(qty_dot(1_500), "1.500");
        assert_eq!(qty_dot(-5), "-0.005");
    }

    #[test]
    fn algiers_is_utc_plus_one_all_year() {
        // 2025-03-14T08:12:00Z
        assert_eq!(datetime_algiers(1_741_939_920), "14/03/2025 09:12");
        // 2025-07-01T23:30:00Z is already the 2nd in Algiers (no summer time).
        assert_eq!(datetime_algiers(1_751_412_600), "02/07/2025 00:30");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
