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

pub mod appro;
pub mod assets;
pub mod catalogue;
pub mod charts;
pub mod counts;
pub mod dashboards;
pub mod driver_app;
pub mod identity;
pub mod multipart;
pub mod production;
pub mod purchase;
pub mod sales;
pub mod settings;
pub mod stock;
pub mod sync;
pub mod views;

/// What every page's layout needs.
pub struct Layout {
    pub title: String,
    pub css: String,
    pub js: String,
    pub icon: String,
    pub company: String,
    pub nav: Vec<NavSection>,
    pub flash: Vec<Flash>,
    /// The signed-in user (header menu); `None` on the login, first-run and error pages of anonymous visitors.
    pub user: Option<UserMenu>,
    /// The CSRF token forms carry in `_csrf`.
    pub csrf: String,
    /// A fresh command id for the page's document-creating form (`_commande`, PLATFORM.md §2.5): submitting the
    /// same form twice creates one document.
    pub command: String,
}

pub struct UserMenu {
    pub name: String,
    pub role_label: &'static str,
}

/// What a page handler knows about its request: the caller, the CSRF token for its forms, a pending flash.
pub struct PageCtx {
    pub identity: Option<crate::auth::Identity>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub ctx: crate::auth::Ctx,
}

const FLASH_COOKIE: &str = "mc_flash";

fn read_flash(headers: &axum::http::HeaderMap) -> Option<Flash> {
    let raw = crate::auth::read_cookie(headers, FLASH_COOKIE)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("f={raw}")).ok()?;
    let value = pairs.into_iter().next()?.1;
    let (tone, text) = value.split_once('|')?;
    let tone = match tone {
        "succes" => "succes",
        "avertissement" => "avertissement",
        _ => "erreur",
    };
    Some(Flash { tone, text: text.to_string() })
}

impl PageCtx {
    pub fn from_parts(ext: &axum::http::Extensions, headers: &axum::http::HeaderMap, production: bool) -> PageCtx {
        let csrf = ext
            .get::<crate::auth::FreshCsrf>()
            .map(|c| c.0.clone())
            .or_else(|| crate::auth::read_cookie(headers, crate::auth::cookie_names(production).csrf))
            .unwrap_or_default();
        PageCtx {
            identity: ext.get::<crate::auth::Identity>().cloned(),
            csrf,
            flash: read_flash(headers),
            ctx: crate::auth::Ctx::of(ext, headers),
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for PageCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PageCtx::from_parts(&parts.extensions, &parts.headers, st.config.is_production()))
    }
}

/// The French lines of an API refusal for a form with numbered rows: each field error, prefixed `{label} n : ` when
/// its field is `{prefix}i]…` (i counted from 0), or the refusal's message when it has no field errors.
pub fn refusal_lines(e: &crate::platform::errors::ApiError, prefix: &str, label: &str) -> Vec<String> {
    let mut out: Vec<String> = e.details["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let field = f["field"].as_str().unwrap_or_default();
            let msg = f["message"].as_str().unwrap_or_default();
            match field.strip_prefix(prefix).and_then(|r| r.split_once(']')) {
                Some((k, _)) => format!("{label} {} : {msg}", k.parse::<usize>().unwrap_or(0) + 1),
                None => msg.to_string(),
            }
        })
        .collect();
    if out.is_empty() {
        out.push(e.message.clone());
    }
    out
}

/// 303 to `to`, carrying a flash message that survives exactly this redirect.
pub fn redirect_with_flash(to: &str, tone: &str, text: &str) -> Response {
    let mut res = axum::response::Redirect::to(to).into_response();
    let value = crate::auth::urlencode(&format!("{tone}|{text}"));
    res.headers_mut().append(header::SET_COOKIE, crate::auth::set_cookie(FLASH_COOKIE, &value, 60, true, false));
    res
}

/// Renders a page for a signed-in (or anonymous) visitor; a flash shown here is then cleared.
pub fn page(status: StatusCode, t: impl Template, pc: &PageCtx) -> Response {
    let mut res = render(status, t);
    if pc.flash.is_some() {
        res.headers_mut().append(header::SET_COOKIE, crate::auth::set_cookie(FLASH_COOKIE, "", 0, true, false));
    }
    res
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
    /// The layout of a page without a signed-in user: no navigation, no user menu.
    pub fn new(title: &str) -> Layout {
        Layout {
            title: title.to_string(),
            css: assets::url("css/app.css"),
            js: assets::url("js/app.js"),
            icon: assets::url("img/logo.svg"),
            company: "Manchengo Smart ERP".into(),
            nav: Vec::new(),
            flash: Vec::new(),
            user: None,
            csrf: String::new(),
            command: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// The layout of a page: the role's navigation (built from the route table, UI.md §2), the user menu, the flash.
    pub fn for_page(title: &str, current: &str, pc: &PageCtx) -> Layout {
        let mut l = Layout::new(title);
        l.csrf = pc.csrf.clone();
        l.flash.extend(pc.flash.iter().map(|f| Flash { tone: f.tone, text: f.text.clone() }));
        if let Some(id) = &pc.identity {
            l.user = Some(UserMenu {
                name: format!("{}. {}", id.user.first_name.chars().next().unwrap_or(' '), id.user.last_name),
                role_label: id.role.label_fr(),
            });
            if !id.user.must_change_password {
                l.nav = crate::access::menu(id.role)
                    .into_iter()
                    .map(|(title, items)| NavSection {
                        title,
                        items: items
                            .into_iter()
                            .map(|(label, href)| NavItem { label, href, current: current == href })
                            .collect(),
                    })
                    .collect();
            }
        }
        l
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

/// `/systeme/sante`: the system status, from the same probes as `/api/health/detailed`.
async fn status_page(State(st): State<AppState>, pc: PageCtx) -> Response {
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
    let mut layout = Layout::for_page("État du système", "/systeme/sante", &pc);
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
    self::page(StatusCode::OK, page, &pc)
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
            layout: Layout::new("Service momentanément indisponible"),
            heading: "Service momentanément indisponible".into(),
            text: detail.to_string(),
        },
    )
}

pub async fn not_found() -> Response {
    render(
        StatusCode::NOT_FOUND,
        MessagePage {
            layout: Layout::new("Page introuvable"),
            heading: "Page introuvable".into(),
            text: "Cette page n'existe pas ou a été déplacée. Revenez à l'accueil.".into(),
        },
    )
}

/// The 403 page (UI.md §3 row 7), with the request id to quote.
pub fn forbidden_page(st: &AppState, id: &crate::auth::Identity, headers: &axum::http::HeaderMap) -> Response {
    message_for(
        st,
        id,
        headers,
        StatusCode::FORBIDDEN,
        "Accès refusé",
        &format!(
            "Votre rôle ({}) ne permet pas d'ouvrir cette page. Référence : {}.",
            id.role.label_fr(),
            crate::platform::errors::current_request_id()
        ),
    )
}

/// The page answered to a form posted without a valid CSRF token.
pub fn csrf_page(st: &AppState, id: &crate::auth::Identity, headers: &axum::http::HeaderMap) -> Response {
    message_for(
        st,
        id,
        headers,
        StatusCode::FORBIDDEN,
        "Formulaire expiré",
        "Le formulaire n'a pas pu être vérifié (jeton anti-falsification absent ou périmé). Rechargez la page et recommencez : rien n'a été enregistré.",
    )
}

fn message_for(
    st: &AppState,
    id: &crate::auth::Identity,
    headers: &axum::http::HeaderMap,
    status: StatusCode,
    heading: &str,
    text: &str,
) -> Response {
    let mut ext = axum::http::Extensions::new();
    ext.insert(id.clone());
    let pc = PageCtx::from_parts(&ext, headers, st.config.is_production());
    let page = MessagePage { layout: Layout::for_page(heading, "", &pc), heading: heading.into(), text: text.into() };
    render(status, page)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/systeme/sante", get(status_page))
        .route("/assets/{hash}/{*path}", get(assets::serve))
        .merge(identity::router())
        .merge(stock::router())
        .merge(purchase::router())
        .merge(sales::router())
        .merge(sales::accounting_router())
        .merge(sales::dashboard_router())
        .merge(dashboards::router())
        .merge(sales::ledger_router())
        .merge(sales::credit_router())
        .merge(sales::scan_router())
        .merge(production::router())
        .merge(appro::router())
        .merge(stock::lot_router())
        .merge(catalogue::router())
        .merge(counts::router())
        .merge(views::router())
        .merge(settings::router())
        .merge(sync::router())
        .merge(driver_app::router())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_row_of_each_field_error() {
        let mut f = domain::validation::Fields::new();
        f.add("items[1].quantity", "MUST_BE_POSITIVE", "La quantité par lot doit être positive.");
        f.add("outputQuantity", "MUST_BE_POSITIVE", "La quantité produite par lot doit être positive.");
        let e = crate::platform::errors::ApiError::from(f.into_result().unwrap_err());
        assert_eq!(
            refusal_lines(&e, "items[", "Élément"),
            ["Élément 2 : La quantité par lot doit être positive.", "La quantité produite par lot doit être positive."]
        );
        let e = crate::platform::errors::ApiError::from(domain::production::recette_absente("PF-EDAM"));
        assert_eq!(refusal_lines(&e, "lines[", "Ligne"), ["Recette active absente pour PF-EDAM."]);
    }
}
