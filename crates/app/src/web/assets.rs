//! Static files embedded in the binary and served under `/assets/<hash>/<file>` (immutable, one year).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../static/"]
struct Static;

/// path → (short content hash)
fn hashes() -> &'static HashMap<String, String> {
    static H: OnceLock<HashMap<String, String>> = OnceLock::new();
    H.get_or_init(|| {
        Static::iter()
            .filter_map(|p| {
                let f = Static::get(&p)?;
                let hash: String = f.metadata.sha256_hash().iter().take(6).map(|b| format!("{b:02x}")).collect();
                Some((p.to_string(), hash))
            })
            .collect()
    })
}

/// The hashed URL of an embedded file.
pub fn url(path: &str) -> String {
    match hashes().get(path) {
        Some(h) => format!("/assets/{h}/{path}"),
        None => format!("/assets/0/{path}"),
    }
}

/// The bytes of an embedded file.
pub fn file(path: &str) -> Option<Vec<u8>> {
    Static::get(path).map(|f| f.data.into_owned())
}

/// A short hash of embedded files together (the drivers' app version).
pub fn combined_hash(paths: &[&str]) -> String {
    let h = hashes();
    paths
        .iter()
        .map(|p| h.get(*p).map(String::as_str).unwrap_or("0"))
        .collect::<Vec<_>>()
        .join("")
        .chars()
        .take(16)
        .collect()
}

pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

pub async fn serve(Path((hash, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(file) = Static::get(&path) else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let current = hashes().get(&path).cloned().unwrap_or_default();
    let etag = format!("\"{current}\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    // An old hash still gets the file, but only the current one may be cached forever.
    let cache = if hash == current { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut res = file.data.into_owned().into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}
