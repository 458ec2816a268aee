//! Amounts in French words for invoices and credit notes (DOMAIN.md §18), traditional spelling: hyphens below one
//! hundred except around "et", "vingts" and "cents" plural only when multiplied and ending the number (or before
//! "million(s)" / "milliard(s)", which are nouns), "mille" invariable and never "un mille".

const UNITS: [&str; 17] = [
    "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze", "treize",
    "quatorze", "quinze", "seize",
];
const TENS: [&str; 7] = ["", "", "vingt", "trente", "quarante", "cinquante", "soixante"];

/// 0 ≤ n < 100; `last` tells whether nothing follows (for "quatre-vingts").
fn below_100(n: u64, last: bool) -> String {
    match n {
        0..=16 => UNITS[n as usize].to_string(),
        17..=19 => format!("dix-{}", UNITS[(n - 10) as usize]),
        20..=69 => {
            let (t, u) = (n / 10, n % 10);
            match u {
                0 => TENS[t as usize].to_string(),
                1 => format!("{} et un", TENS[t as usize]),
                _ => format!("{}-{}", TENS[t as usize], UNITS[u as usize]),
            }
        }
        70..=79 => {
            if n == 71 {
                "soixante et onze".into()
            } else {
                format!("soixante-{}", below_100(n - 60, false))
            }
        }
        80 => if last { "quatre-vingts" } else { "quatre-vingt" }.into(),
        _ => format!("quatre-vingt-{}", below_100(n - 80, false)),
    }
}

/// 0 < n < 1000.
fn below_1000(n: u64, last: bool) -> String {
    let (h, rest) = (n / 100, n % 100);
    let mut out = match h {
        0 => String::new(),
        1 => "cent".to_string(),
        _ if rest == 0 && last => format!("{} cents", UNITS[h as usize]),
        _ => format!("{} cent", UNITS[h as usize]),
    };
    if rest > 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&below_100(rest, last));
    }
    out
}

/// A whole number in words (lower case).
pub fn number(n: u64) -> String {
    if n == 0 {
        return "zéro".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let scales: [(u64, &str, &str); 3] =
        [(1_000_000_000, "milliard", "milliards"), (1_000_000, "million", "millions"), (1_000, "mille", "mille")];
    let mut rest = n;
    for (size, one, many) in scales {
        let k = rest / size;
        rest %= size;
        if k == 0 {
            continue;
        }
        if size == 1_000 {
            // "mille", never "un mille"; the multiplier never takes its plural before "mille".
            parts.push(if k == 1 { "mille".into() } else { format!("{} mille", below_1000(k, false)) });
        } else {
            // Before the nouns million / milliard the multiplier counts as final ("deux cents millions").
            let word = if k == 1 { one } else { many };
            parts.push(format!("{} {word}", number_below_million(k)));
        }
    }
    if rest > 0 {
        parts.push(below_1000(rest, true));
    }
    parts.join(" ")
}

/// Multipliers of million / milliard can themselves exceed 999 (a thousand millions is a milliard, so never here
/// for millions; kept general for milliards).
fn number_below_million(k: u64) -> String {
    if k < 1000 { below_1000(k, true) } else { number(k) }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// "Vingt-trois mille six cent soixante-dix-huit dinars algériens et zéro centime" for 2 367 800 centimes. Documents
/// print amounts as positive (a credit note says "avoir"), so the sign is dropped.
pub fn amount_dinars(centimes: i64) -> String {
    let c = centimes.unsigned_abs();
    let (da, cts) = (c / 100, c % 100);
    let dinars = match da {
        0 | 1 => format!("{} dinar algérien", number(da)),
        // "deux millions de dinars": "de" when a million / milliard ends the number.
        _ if da % 1_000_000 == 0 => format!("{} de dinars algériens", number(da)),
        _ => format!("{} dinars algériens", number(da)),
    };
    let centimes = if cts <= 1 { format!("{} centime", number(cts)) } else { format!("{} centimes", number(cts)) };
    capitalize(&format!("{dinars} et {centimes}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_of_domain_18() {
        assert_eq!(
            amount_dinars(2_367_800),
            "Vingt-trois mille six cent soixante-dix-huit dinars algériens et zéro centime"
        );
        assert_eq!(amount_dinars(45_150), "Quatre cent cinquante et un dinars algériens et cinquante centimes");
        assert_eq!(
            amount_dinars(128_007_181),
            "Un million deux cent quatre-vingt mille soixante et onze dinars algériens et quatre-vingt-un centimes"
        );
        assert_eq!(amount_dinars(20_000), "Deux cents dinars algériens et zéro centime");
        assert_eq!(amount_dinars(200_000_000), "Deux millions de dinars algériens et zéro centime");
        assert_eq!(amount_dinars(101), "Un dinar algérien et un centime");
    }

    #[test]
    fn the_spelling_rules() {
        let cases = [
            (21, "vingt et un"),
            (31, "trente et un"),
            (61, "soixante et un"),
            (71, "soixante et onze"),
            (72, "soixante-douze"),
            (77, "soixante-dix-sept"),
            (80, "quatre-vingts"),
            (81, "quatre-vingt-un"),
            (91, "quatre-vingt-onze"),
            (99, "quatre-vingt-dix-neuf"),
            (100, "cent"),
            (101, "cent un"),
            (180, "cent quatre-vingts"),
            (200, "deux cents"),
            (201, "deux cent un"),
            (1_000, "mille"),
            (1_001, "mille un"),
            (2_000, "deux mille"),
            (80_000, "quatre-vingt mille"),
            (200_000, "deux cent mille"),
            (1_000_000, "un million"),
            (2_000_000, "deux millions"),
            (200_000_000, "deux cents millions"),
            (3_000_000_000, "trois milliards"),
            (1_000_001_000, "un milliard mille"),
        ];
        for (n, words) in cases {
            assert_eq!(number(n), words, "{n}");
        }
        assert_eq!(amount_dinars(0), "Zéro dinar algérien et zéro centime");
        assert_eq!(amount_dinars(300_000_000_000), "Trois milliards de dinars algériens et zéro centime");
    }
}
