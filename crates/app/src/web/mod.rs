//! Server-rendered French pages (UI.md §1). Every page extends `base.html`; scripts and styles are our own files,
//! embedded in the binary and served under content-hashed paths.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use domain::format::datetime_algiers;
use serde_json::Value;

use crate::state::AppState;

pub mod assets;

/// What every page's layout needs.
pub struct Layout {
    pub title: String,
    pub css: String,
    pub js: String,
    pub icon: String,
    pub company: String,
    pub nav: Vec<NavSection>,
    pub flash: Vec<Flash>,
}

pub struct NavSection {
    pub title: &'static str,
    pub items: Vec<NavItem>,
}

pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

pub struct Flash {
    /// `succes`, `avertissement` or `erreur`.
    pub tone: &'static str,
    pub text: String,
}

impl Layout {
    pub fn new(title: &str, current: &str) -> Layout {
        // Until identity exists every visitor sees the system section only (UI.md §2 builds menus per role).
        let nav = vec![NavSection {
            title: "Système",
            items: vec![NavItem { label: "État du système", href: "/", current: current == "/" }],
        }];
        Layout {
            title: title.to_string(),
            css: assets::url("css/app.css"),
            js: assets::url("js/app.js"),
            icon: assets::url("img/logo.svg"),
            company: "Manchengo Smart ERP".into(),
            nav,
            flash: Vec::new(),
        }
    }
}

fn render(status: StatusCode, t: impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Une erreur interne est survenue.").into_response()
        }
    }
}

pub struct CheckRow {
    pub label: &'static str,
    pub value: String,
    pub tone: &'static str,
    pub badge: String,
}

pub struct JobRow {
    pub name: String,
    pub last_run: String,
    pub next_run: String,
    pub tone: &'static str,
    pub badge: &'static str,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    overall_tone: &'static str,
    overall_label: &'static str,
    checks: Vec<CheckRow>,
    facts: Vec<(&'static str, String)>,
    jobs: Vec<JobRow>,
    generated_at: String,
}

fn tone_of(status: &str) -> (&'static str, &'static str) {
    match status {
        "up" | "ok" | "ready" => ("vert", "OK"),
        "degraded" | "fallback" => ("ambre", "Dégradé"),
        "draining" => ("ambre", "Arrêt en cours"),
        _ => ("rouge", "Indisponible"),
    }
}

fn fmt_time(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| datetime_algiers(t.timestamp()))
        .unwrap_or_else(|| "—".into())
}

/// `/`: the system status (until the role dashboards exist).
async fn status_page(State(st): State<AppState>) -> Response {
    let r = crate::api::health::detailed_report(&st).await;
    let overall = match r["status"].as_str().unwrap_or("") {
        "ok" => domain::platform::health::Overall::Ready,
        "degraded" => domain::platform::health::Overall::Degraded,
        "draining" => domain::platform::health::Overall::Draining,
        _ => domain::platform::health::Overall::Unavailable,
    };
    let db = &r["checks"]["database"];
    let cache = &r["checks"]["cache"];
    let (db_tone, db_badge) = tone_of(db["status"].as_str().unwrap_or(""));
    let (cache_tone, cache_badge) = tone_of(cache["status"].as_str().unwrap_or(""));
    let backend = match db["backend"].as_str() {
        Some("postgres") => "PostgreSQL",
        _ => "SQLite (embarquée)",
    };
    let cache_mode = match r["cache"]["mode"].as_str() {
        Some("redis") => "Redis",
        Some("fallback") => "Mémoire (secours, Redis injoignable)",
        _ => "Mémoire",
    };
    let checks = vec![
        CheckRow {
            label: "Base de données",
            value: format!("{backend} — {} ms", db["responseTimeMs"]),
            tone: db_tone,
            badge: db_badge.into(),
        },
        CheckRow {
            label: "Cache",
            value: format!(
                "{cache_mode} — taux de succès {}",
                r["cache"]["hitRateFormatted"].as_str().unwrap_or("0.0%").replace('.', ",")
            ),
            tone: cache_tone,
            badge: cache_badge.into(),
        },
    ];
    let facts = vec![
        ("Version", r["version"].as_str().unwrap_or("").to_string()),
        ("Instance", r["instance"].as_str().unwrap_or("").to_string()),
        ("Environnement", if r["environment"] == "production" { "Production".into() } else { "Développement".into() }),
        ("En service depuis", r["uptime"]["human"].as_str().unwrap_or("").to_string()),
        ("Mémoire utilisée", r["memory"]["rss"].as_str().unwrap_or("").to_string()),
        (
            "Limite de requêtes",
            format!("{} par {} s et par client", r["rateLimit"]["max"], r["rateLimit"]["ttlSeconds"]),
        ),
    ];
    let jobs = r["jobs"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|j| {
                    let (tone, badge) = match j["lastStatus"].as_str() {
                        Some("ok") => ("vert", "OK"),
                        Some("error") => ("rouge", "Erreur"),
                        Some("skipped") => ("gris", "Ignorée"),
                        _ => ("gris", "Pas encore exécutée"),
                    };
                    JobRow {
                        name: j["name"].as_str().unwrap_or("").to_string(),
                        last_run: fmt_time(&j["lastRunAt"]),
                        next_run: fmt_time(&j["nextRunAt"]),
                        tone,
                        badge,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut layout = Layout::new("État du système", "/");
    if overall != domain::platform::health::Overall::Ready {
        layout.flash.push(Flash {
            tone: if overall == domain::platform::health::Overall::Degraded { "avertissement" } else { "erreur" },
            text: match overall {
                domain::platform::health::Overall::Degraded => {
                    "Le cache Redis est injoignable : le serveur fonctionne sur son cache en mémoire, sans perte de données.".into()
                }
                _ => "La base de données est injoignable : les opérations sont suspendues jusqu'à son retour.".into(),
            },
        });
    }
    let page = StatusPage {
        layout,
        overall_tone: match overall {
            domain::platform::health::Overall::Ready => "vert",
            domain::platform::health::Overall::Degraded | domain::platform::health::Overall::Draining => "ambre",
            domain::platform::health::Overall::Unavailable => "rouge",
        },
        overall_label: overall.label_fr(),
        checks,
        facts,
        jobs,
        generated_at: datetime_algiers(chrono::Utc::now().timestamp()),
    };
    render(StatusCode::OK, page)
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    heading: String,
    text: String,
}

/// The French HTML page shown while the database is unreachable (PLATFORM.md §2.1).
pub fn unavailable_page(detail: &str) -> Response {
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        MessagePage {
            layout: Layout::new("Service momentanément indisponible", ""),
            heading: "Service momentanément indisponible".into(),
            text: detail.to_string(),
        },
    )
}

pub async fn not_found() -> Response {
    render(
        StatusCode::NOT_FOUND,
        MessagePage {
            layout: Layout::new("Page introuvable", ""),
            heading: "Page introuvable".into(),
            text: "Cette page n'existe pas ou a été déplacée. Revenez à l'accueil.".into(),
        },
    )
}

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(status_page)).route("/assets/{hash}/{*path}", get(assets::serve))
}
