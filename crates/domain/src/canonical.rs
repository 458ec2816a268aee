//! RFC 8785 canonical JSON (JCS) for the values we hash: the audit chain (DOMAIN.md §16) and sync checksums.
//!
//! Keys are sorted by their UTF-16 code units, no whitespace, strings escaped as ECMAScript's `JSON.stringify` does.
//! Numbers are integers everywhere in this product (money in centimes, quantities in milli-units); a float is written
//! by serde_json's shortest representation, which agrees with ECMAScript for the values we could meet.

use serde_json::Value;

pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
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
                write(&map[k], out);
            }
            out.push('}');
        }
    }
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
