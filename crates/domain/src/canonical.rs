//! RFC 8785 canonical JSON (JCS) for the values we hash: the audit chain (DOMAIN.md §16) and sync checksums.
//!
//! Keys are sorted by their UTF-16 code units, no whitespace, strings escaped as ECMAScript's `JSON.stringify` does.
//! Numbers are integers almost everywhere (money in centimes, quantities in milli-units); a float (GPS coordinates)
//! is written as ECMAScript's `Number.prototype.toString` does — what a device's `JSON.stringify` produces.

use serde_json::Value;

/// The canonical text the audit chain, idempotency keys and alert data hash. Floats keep serde_json's shortest form
/// (`12.0`): hashes already stored must verify forever, so this form never changes.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, false);
    out
}

/// RFC 8785 exactly, floats included (`12.0` → `12`, `1e-7`, `1e+21`): what a device's JavaScript produces, for the
/// sync checksum (PLATFORM.md §7.1).
pub fn jcs(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, true);
    out
}

fn write(v: &Value, out: &mut String, es_floats: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64().filter(|_| es_floats && n.is_f64()) {
            Some(x) => out.push_str(&es_number(x)),
            None => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out, es_floats);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(&map[k], out, es_floats);
            }
            out.push('}');
        }
    }
}

/// ECMAScript's shortest form of a double (ECMA-262 Number::toString): the shortest round-trip digits (Rust's `{:e}`),
/// laid out in plain notation for exponents in [-7, 21), else `d.ddde±x`; `-0` is `0`.
fn es_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // JSON has no NaN or infinity; serde_json never holds them.
        return "0".into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let (k, n) = (digits.len() as i32, exp + 1);
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = if n > 0 { format!("+{}", n - 1) } else { format!("{}", n - 1) };
        if k == 1 { format!("{digits}e{e}") } else { format!("{}.{}e{e}", &digits[..1], &digits[1..]) }
    };
    format!("{sign}{body}")
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_are_written_as_ecmascript_does() {
        for (x, js) in [
            (5.0, "5"),
            (36.7538, "36.7538"),
            (-3.0588, "-3.0588"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.23456e-8, "1.23456e-8"),
            (-0.0, "0"),
            (123456.789, "123456.789"),
        ] {
            assert_eq!(es_number(x), js, "{x}");
        }
        assert_eq!(jcs(&json!({"lat": 36.0, "n": 12})), "{\"lat\":36,\"n\":12}");
        assert_eq!(to_string(&json!({"lat": 36.0})), "{\"lat\":36.0}", "the audit's form is kept");
    }

    #[test]
    fn keys_sorted_no_spaces_unicode_kept() {
        let v = json!({"b": 1, "a": {"z": [true, null, "é\n\u{1}"], "A": -5}, "\u{ff21}": 0, "\u{10000}": 1});
        // U+10000 is a surrogate pair (D800 …) and sorts before U+FF21 in UTF-16, unlike in UTF-8.
        assert_eq!(
            to_string(&v),
            "{\"a\":{\"A\":-5,\"z\":[true,null,\"é\\n\\u0001\"]},\"b\":1,\"\u{10000}\":1,\"\u{ff21}\":0}"
        );
    }

    #[test]
    fn rfc8785_sample_strings() {
        assert_eq!(to_string(&json!("\u{20ac}$\u{f}\nA'B\"\\\\\"/")), "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"");
    }
}
