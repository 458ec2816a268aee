//! `multipart/form-data` for the few forms that send a file (UI.md principle 2: the signature works without
//! JavaScript as a PNG file). The body is already bounded by the body limit and read whole; parts are split on the
//! boundary. No crate: the format needed here is small and fixed.

/// One part: its field name, the file name when it is a file, its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type, `None` for anything else.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    (from..=haystack.len() - needle.len()).find(|&i| &haystack[i..i + needle.len()] == needle)
}

/// `name="x"` (or `filename="y"`) from a Content-Disposition header line.
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of a body; a malformed body gives the parts read before the fault.
pub fn parse(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let Some(mut at) = find(body, &delimiter, 0) else { return parts };
    loop {
        let start = at + delimiter.len();
        // `--` after the delimiter closes the body.
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(headers_end) = find(body, b"\r\n\r\n", start) else { break };
        let Some(next) = find(body, &delimiter, headers_end + 4) else { break };
        let headers = String::from_utf8_lossy(&body[start..headers_end]);
        // The part's data ends with the CRLF that precedes the next delimiter.
        let data_end = next.saturating_sub(2).max(headers_end + 4);
        let disposition = headers.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"));
        if let Some(name) = disposition.and_then(|d| param(d, "name")) {
            parts.push(Part {
                name,
                filename: disposition.and_then(|d| param(d, "filename")),
                data: body[headers_end + 4..data_end].to_vec(),
            });
        }
        at = next;
    }
    parts
}

/// A text field's value (UTF-8, lossy), `None` when absent.
pub fn text(parts: &[Part], name: &str) -> Option<String> {
    parts.iter().find(|p| p.name == name).map(|p| String::from_utf8_lossy(&p.data).to_string())
}

/// A file field's bytes, `None` when absent or sent empty (no file chosen).
pub fn file(parts: &[Part], name: &str) -> Option<Vec<u8>> {
    parts.iter().find(|p| p.name == name && !p.data.is_empty()).map(|p| p.data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files_are_read_from_a_browser_body() {
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryX3";
        let b = boundary(ct).unwrap();
        assert_eq!(b, "----WebKitFormBoundaryX3");
        let png = [0x89u8, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 1, 2];
        let mut body = Vec::new();
        body.extend_from_slice(
            b"------WebKitFormBoundaryX3\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nabc123\r\n",
        );
        body.extend_from_slice(
            "------WebKitFormBoundaryX3\r\nContent-Disposition: form-data; name=\"recipient_name\"\r\n\r\nMourad Benali\r\n"
                .as_bytes(),
        );
        body.extend_from_slice(b"------WebKitFormBoundaryX3\r\nContent-Disposition: form-data; name=\"signature_file\"; filename=\"sig.png\"\r\nContent-Type: image/png\r\n\r\n");
        body.extend_from_slice(&png);
        body.extend_from_slice(b"\r\n------WebKitFormBoundaryX3\r\nContent-Disposition: form-data; name=\"photo_file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n------WebKitFormBoundaryX3--\r\n");
        let parts = parse(&body, &b);
        assert_eq!(parts.len(), 4);
        assert_eq!(text(&parts, "_csrf").as_deref(), Some("abc123"));
        assert_eq!(text(&parts, "recipient_name").as_deref(), Some("Mourad Benali"));
        assert_eq!(file(&parts, "signature_file").as_deref(), Some(&png[..]), "binary data kept, CRLF inside too");
        assert_eq!(parts[2].filename.as_deref(), Some("sig.png"));
        assert_eq!(file(&parts, "photo_file"), None, "no file chosen");
        assert_eq!(text(&parts, "absent"), None);
    }

    #[test]
    fn other_bodies_are_not_multipart() {
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert!(parse(b"garbage", "x").is_empty());
        assert!(parse(b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1", "x").is_empty(), "truncated");
    }
}
