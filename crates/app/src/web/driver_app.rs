//! The drivers' app (UI.md §6) at stable paths under `/app/` (PLATFORM §16: never under the hashed `/assets/`):
//! the manifest, the service worker, the scripts and icons, and the one shell page every navigation under `/app/`
//! gets. The shell holds no data (it reads IndexedDB and the sync API with the device's token), so it is public.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::assets;
use crate::state::AppState;

const FILES: [&str; 7] =
    ["app.js", "app.css", "sw.js", "manifest.webmanifest", "icon-192.png", "icon-512.png", "icon-maskable-512.png"];

/// Everything the service worker precaches: its version name changes with any of them.
const VERSIONED: [&str; 8] = [
    "app/shell.html",
    "app/app.js",
    "app/app.css",
    "app/manifest.webmanifest",
    "app/icon-192.png",
    "app/icon-512.png",
    "app/icon-maskable-512.png",
    "app/sw.js",
];

fn respond(path: &str, body: Vec<u8>) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(assets::content_type(path)));
    // Revalidated every time: the service worker keeps the offline copy, versioned.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn shell() -> Response {
    let mut res = respond("shell.html", assets::file("app/shell.html").unwrap_or_default());
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    res
}

async fn home() -> Response {
    shell()
}

async fn any(Path(rest): Path<String>) -> Response {
    if !FILES.contains(&rest.as_str()) {
        return shell();
    }
    let path = format!("app/{rest}");
    let Some(mut body) = assets::file(&path) else { return shell() };
    if rest == "sw.js" {
        let version = assets::combined_hash(&VERSIONED);
        body = String::from_utf8_lossy(&body).replace("__VERSION__", &version).into_bytes();
    }
    respond(&rest, body)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(home))
        .route("/app/{*rest}", get(any))
}
