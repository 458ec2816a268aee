//! Server-rendered French pages (UI.md §1). Every page extends `base.html`; scripts and styles are our own files,
//! embedded in the binary and served under content-hashed paths.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use domain::format::{datetime_algiers, percent_tenths};
use domain::platform::health::{DatabaseState, Overall, hit_rate_tenths, memory_human, uptime_human};

use crate::platform::cache::CacheMode;

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

/// Badge tone and word of a probe (UI.md §1.5: santé — Vert OK, Ambre Dégradé, Rouge Indisponible).
fn probe_badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "up" => ("vert", "OK"),
        "fallback" => ("ambre", "Dégradé"),
        _ => ("rouge", "Indisponible"),
    }
}

fn overall_tone(o: Overall) -> &'static str {
    match o {
        Overall::Ready => "vert",
        Overall::Degraded | Overall::Draining => "ambre",
        Overall::Unavailable => "rouge",
    }
}

fn job_badge(last_status: Option<&str>) -> (&'static str, &'static str) {
    match last_status {
        Some("ok") => ("vert", "OK"),
        Some("error") => ("rouge", "Erreur"),
        Some("skipped") => ("gris", "Ignorée"),
        _ => ("gris", "Pas encore exécutée"),
    }
}

fn fmt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| datetime_algiers(t.timestamp())).unwrap_or_else(|| "—".into())
}

/// `/`: the system status (until the role dashboards exist), from the same probes as `/api/health/detailed`.
async fn status_page(State(st): State<AppState>) -> Response {
    let c = crate::api::health::run_checks(&st).await;
    let stats = st.cache.stats();
    let backend = match st.dbmon.db().backend() {
        store::Backend::Postgres => "PostgreSQL",
        store::Backend::Sqlite => "SQLite (embarquée)",
    };
    let cache_mode = match stats.mode {
        CacheMode::Redis => "Redis",
        CacheMode::Fallback => "Mémoire (secours, Redis injoignable)",
        CacheMode::Memory => "Mémoire",
    };
    let (db_tone, db_badge) = probe_badge(if c.db_state == DatabaseState::Up { "up" } else { "down" });
    let (cache_tone, cache_badge) = probe_badge(c.cache.status);
    let checks = vec![
        CheckRow {
            label: "Base de données",
            value: format!("{backend} — {} ms", c.db_ms),
            tone: db_tone,
            badge: db_badge.into(),
        },
        CheckRow {
            label: "Cache",
            value: format!(
                "{cache_mode} — taux de succès {}",
                percent_tenths(hit_rate_tenths(stats.hits, stats.misses))
            ),
            tone: cache_tone,
            badge: cache_badge.into(),
        },
    ];
    let uptime = st.started.elapsed().as_secs();
    let facts = vec![
        ("Version", env!("CARGO_PKG_VERSION").to_string()),
        ("Instance", st.config.instance_name.clone()),
        ("Environnement", if st.config.is_production() { "Production".into() } else { "Développement".into() }),
        ("En service depuis", uptime_human(uptime)),
        ("Mémoire utilisée", memory_human(crate::platform::telemetry::rss_bytes())),
        (
            "Limite de requêtes",
            format!("{} par {} s et par client", st.config.rate_limit_max, st.config.rate_limit_ttl.as_secs()),
        ),
    ];
    let jobs = st
        .scheduler
        .views(&st.dbmon)
        .await
        .into_iter()
        .map(|j| {
            let (tone, badge) = job_badge(j.last_status.as_deref());
            JobRow { name: j.name, last_run: fmt_time(j.last_run_at), next_run: fmt_time(j.next_run_at), tone, badge }
        })
        .collect();
    let mut layout = Layout::new("État du système", "/");
    match c.overall {
        Overall::Ready => {}
        Overall::Degraded => layout.flash.push(Flash {
            tone: "avertissement",
            text: "Le cache Redis est injoignable : le serveur fonctionne sur son cache en mémoire, sans perte de données."
                .into(),
        }),
        Overall::Draining => layout.flash.push(Flash {
            tone: "avertissement",
            text: "Le serveur s'arrête : les opérations en cours se terminent.".into(),
        }),
        Overall::Unavailable => layout.flash.push(Flash {
            tone: "erreur",
            text: "La base de données est injoignable : les opérations sont suspendues jusqu'à son retour.".into(),
        }),
    }
    let page = StatusPage {
        layout,
        overall_tone: overall_tone(c.overall),
        overall_label: c.overall.label_fr(),
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
