//! Référentiels and company settings pages (UI.md rows 21 and 88): every role reads them, ADMIN changes them through
//! the same functions as the API.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use domain::identity::Role;
use store::settings::RefKind;

use super::catalogue::{Field, fields_with, form_page_for};
use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::settings::{CompanyBody, ReferenceBody};
use crate::auth::Identity;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "references.html")]
struct ReferencesPage {
    layout: Layout,
    tabs: Vec<(&'static str, &'static str)>,
    tab: String,
    caption: &'static str,
    rows: Vec<(String, String, bool)>,
    editable: bool,
    empty: &'static str,
    add_title: &'static str,
    new_code: String,
    new_name: String,
    code_error: String,
    name_error: String,
}

fn kind_of(tab: &str) -> Option<RefKind> {
    match tab {
        "marques" => Some(RefKind::Brand),
        "familles" => Some(RefKind::Family),
        _ => None,
    }
}

async fn references_page(
    st: &AppState,
    pc: &PageCtx,
    id: &Identity,
    tab: &str,
    typed: (String, String),
    errors: (String, String),
    status: StatusCode,
) -> Response {
    let (caption, rows, empty, add_title) = match kind_of(tab) {
        Some(kind) => {
            let rows = store::settings::references(st.dbmon.db().conn(), kind)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.code, r.name, r.active))
                .collect();
            match kind {
                RefKind::Brand => ("Marques", rows, "Aucune marque.", "Ajouter une marque"),
                RefKind::Family => ("Familles", rows, "Aucune famille.", "Ajouter une famille"),
            }
        }
        None => (
            "Unités de mesure (liste fixe)",
            domain::stock::Unit::ALL.iter().map(|u| (u.code().to_string(), u.label_fr().to_string(), true)).collect(),
            "",
            "",
        ),
    };
    let tab = if kind_of(tab).is_some() { tab.to_string() } else { "unites".into() };
    let p = ReferencesPage {
        layout: Layout::for_page("Référentiels", "/catalogue/referentiels", pc),
        tabs: vec![("unites", "Unités"), ("marques", "Marques"), ("familles", "Familles")],
        editable: id.role == Role::Admin && tab != "unites",
        tab,
        caption,
        rows,
        empty,
        add_title,
        new_code: typed.0,
        new_name: typed.1,
        code_error: errors.0,
        name_error: errors.1,
    };
    page(status, p, pc)
}

async fn references(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let tab = q.get("onglet").cloned().unwrap_or_default();
    references_page(&st, &pc, &id, &tab, Default::default(), Default::default(), StatusCode::OK).await
}

async fn save_reference(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(v): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| v.get(k).map(|x| x.trim().to_string()).unwrap_or_default();
    let tab = get("onglet");
    let Some(kind) = kind_of(&tab) else { return super::not_found().await };
    let create = get("nouveau") == "1";
    let body = ReferenceBody { code: get("code"), name: get("name"), active: create || get("active") == "true" };
    let back = format!("/catalogue/referentiels?onglet={tab}");
    match crate::api::settings::save_reference(&st, &id, &pc.ctx, kind, create, body).await {
        Ok(r) => {
            let verb = if create { "ajouté" } else { "enregistré" };
            redirect_with_flash(&back, "succes", &format!("{} {} {verb}.", kind.label_fr(), r.code))
        }
        Err(e) if create => {
            let message_of = |field: &str| {
                e.details["fields"]
                    .as_array()
                    .and_then(|a| a.iter().find(|f| f["field"] == field))
                    .and_then(|f| f["message"].as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let mut errors = (message_of("code"), message_of("name"));
            if errors.0.is_empty() && errors.1.is_empty() {
                errors.0 = e.message.clone();
            }
            references_page(&st, &pc, &id, &tab, (get("code"), get("name")), errors, e.status).await
        }
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

// ---- Société -----------------------------------------------------------------------------------------------------

fn company_fields() -> Vec<Field> {
    let select = |name, label, required, options: &[(&str, &str)]| Field {
        options: options.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect(),
        ..Field::new(name, label, "select", required)
    };
    vec![
        Field::new("raisonSociale", "Raison sociale", "text", true),
        select(
            "formeJuridique",
            "Forme juridique",
            true,
            &[
                ("", "— Choisir —"),
                ("SARL", "SARL"),
                ("EURL", "EURL"),
                ("SPA", "SPA"),
                ("SNC", "SNC"),
                ("EI", "EI"),
                ("AUTRE", "Autre"),
            ],
        ),
        Field {
            hint: "En dinars ; facultatif pour une EI.",
            decimal: true,
            ..Field::new("capitalSocial", "Capital social", "text", false)
        },
        Field::new("adresse", "Adresse", "text", true),
        Field { hint: "01 à 58.", ..Field::new("wilaya", "Wilaya", "text", true) },
        Field::new("commune", "Commune", "text", true),
        Field {
            hint: "Obligatoires avant la première facture : RC, NIF, AI et NIS.",
            ..Field::new("rc", "Registre du commerce (RC)", "text", false)
        },
        Field::new("nif", "NIF", "text", false),
        Field::new("ai", "Article d'imposition (AI)", "text", false),
        Field::new("nis", "NIS", "text", false),
        Field::new("telephone", "Téléphone", "tel", false),
        Field::new("email", "E-mail", "email", false),
        Field { hint: "20 chiffres, espaces ignorés.", ..Field::new("rib", "RIB", "text", false) },
        Field::new("bankName", "Banque", "text", false),
        Field { hint: "300 caractères au plus.", ..Field::new("invoiceFooter", "Pied de facture", "text", false) },
    ]
}

fn company_values(s: &store::settings::CompanySettings) -> HashMap<String, String> {
    let v = store::settings::company_json(s);
    let mut out = HashMap::new();
    for f in company_fields() {
        let text = match &v[f.name] {
            serde_json::Value::String(x) => x.clone(),
            serde_json::Value::Number(n) if f.name == "capitalSocial" => {
                domain::money::fmt_money(n.as_i64().unwrap_or(0)).replace("\u{a0}DA", "").replace('\u{202f}', " ")
            }
            _ => String::new(),
        };
        out.insert(f.name.to_string(), text);
    }
    out
}

async fn company(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let current = store::settings::company(st.dbmon.db().conn()).await.ok().flatten();
    let values = current.as_ref().map(company_values).unwrap_or_default();
    if id.role != Role::Admin {
        let rows: Vec<Vec<String>> = company_fields()
            .into_iter()
            .map(|f| {
                vec![f.label.to_string(), values.get(f.name).cloned().filter(|v| !v.is_empty()).unwrap_or("—".into())]
            })
            .collect();
        return super::catalogue::list_page_for(
            &pc,
            &HashMap::new(),
            "Société",
            "/parametres/societe",
            "Paramètres › Société",
            vec!["Rubrique", "Valeur"],
            if current.is_some() { rows } else { Vec::new() },
            None,
            "Les paramètres de la société n'ont pas encore été saisis par l'administrateur.",
        );
    }
    let mut fields = company_fields();
    for f in fields.iter_mut() {
        f.value = values.get(f.name).cloned().unwrap_or_default();
    }
    form_page_for(
        &pc,
        "Société",
        "/parametres/societe",
        "/parametres/societe",
        "Paramètres › Société",
        "Enregistrer",
        fields,
        Vec::new(),
        StatusCode::OK,
    )
}

async fn save_company(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(v): Form<HashMap<String, String>>,
) -> Response {
    let opt = |k: &str| v.get(k).map(|x| x.trim().to_string()).filter(|x| !x.is_empty());
    let capital = opt("capitalSocial").map(|c| domain::money::parse_money(&c));
    let err = match capital {
        Some(None) => Some(crate::api::admin::field_error(
            "capitalSocial",
            "VALEUR_INVALIDE",
            "Montant attendu en dinars, par exemple 1 000 000,00.",
        )),
        _ => None,
    };
    let res = match err {
        Some(e) => Err(e),
        None => {
            let body = CompanyBody {
                raison_sociale: opt("raisonSociale").unwrap_or_default(),
                forme_juridique: opt("formeJuridique"),
                capital_social: capital.flatten(),
                adresse: opt("adresse"),
                wilaya: opt("wilaya"),
                commune: opt("commune"),
                rc: opt("rc"),
                nif: opt("nif"),
                ai: opt("ai"),
                nis: opt("nis"),
                telephone: opt("telephone"),
                email: opt("email"),
                rib: opt("rib"),
                bank_name: opt("bankName"),
                invoice_footer: opt("invoiceFooter"),
            };
            crate::api::settings::save_company(&st, &id, &pc.ctx, &body).await
        }
    };
    match res {
        Ok((_, warnings)) => {
            let mut text = "Paramètres de la société enregistrés.".to_string();
            for w in &warnings {
                text.push(' ');
                text.push_str(&w.message);
            }
            redirect_with_flash(
                "/parametres/societe",
                if warnings.is_empty() { "succes" } else { "avertissement" },
                &text,
            )
        }
        Err(e) => {
            let (fields, summary) = fields_with(company_fields(), &v, &e);
            form_page_for(
                &pc,
                "Société (à corriger)",
                "/parametres/societe",
                "/parametres/societe",
                "Paramètres › Société",
                "Enregistrer",
                fields,
                summary,
                e.status,
            )
        }
    }
}

// ---- Chart of accounts (DOMAIN.md §19: defaults to be confirmed by the accountant) ------------------------------------

const CHART: &str = "/parametres/plan-comptable";

fn chart_fields() -> Vec<Field> {
    domain::accounting::DEFAULT_CHART
        .iter()
        .map(|(key, _, label)| Field {
            hint: "Numéro de compte du plan comptable (SCF), 2 à 10 chiffres.",
            ..Field::new(key, label, "text", true)
        })
        .collect()
}

async fn chart(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let rows = match store::accounting::chart_rows(st.dbmon.db().conn()).await {
        Ok(r) => r,
        Err(e) => return super::unavailable_page(&crate::platform::errors::ApiError::from(e).message),
    };
    if id.role != Role::Admin {
        return super::catalogue::list_page_for(
            &pc,
            &HashMap::new(),
            "Plan comptable",
            CHART,
            "Paramètres › Plan comptable",
            vec!["Rubrique", "Compte", "Libellé"],
            rows.into_iter().map(|(k, a, l)| vec![k, a, l]).collect(),
            None,
            "Le plan comptable est vide.",
        );
    }
    let mut fields = chart_fields();
    for f in fields.iter_mut() {
        f.value = rows.iter().find(|(k, _, _)| k == f.name).map(|(_, a, _)| a.clone()).unwrap_or_default();
    }
    form_page_for(
        &pc,
        "Plan comptable",
        CHART,
        CHART,
        "Paramètres › Plan comptable",
        "Enregistrer",
        fields,
        Vec::new(),
        StatusCode::OK,
    )
}

async fn save_chart(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(v): Form<HashMap<String, String>>,
) -> Response {
    let accounts: HashMap<String, String> = domain::accounting::DEFAULT_CHART
        .iter()
        .map(|(k, _, _)| (k.to_string(), v.get(*k).cloned().unwrap_or_default()))
        .collect();
    match crate::api::settings::save_chart(&st, &id, &pc.ctx, &accounts).await {
        Ok(changed) => redirect_with_flash(
            CHART,
            "succes",
            &match changed.len() {
                0 => "Plan comptable inchangé.".to_string(),
                1 => "Plan comptable enregistré : 1 compte modifié.".to_string(),
                n => format!("Plan comptable enregistré : {n} comptes modifiés."),
            },
        ),
        Err(e) => {
            let (fields, summary) = fields_with(chart_fields(), &v, &e);
            form_page_for(
                &pc,
                "Plan comptable (à corriger)",
                CHART,
                CHART,
                "Paramètres › Plan comptable",
                "Enregistrer",
                fields,
                summary,
                e.status,
            )
        }
    }
}

// ---- Logo (DOMAIN.md §18: printed on the documents) -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "logo.html")]
struct LogoPage {
    layout: Layout,
    has_logo: bool,
}

async fn logo_page(State(st): State<AppState>, pc: PageCtx) -> Response {
    let current = store::settings::company(st.dbmon.db().conn()).await.ok().flatten();
    let p = LogoPage {
        layout: Layout::for_page("Logo", "/parametres/logo", &pc),
        has_logo: current.and_then(|c| c.logo_sha256).is_some(),
    };
    page(StatusCode::OK, p, &pc)
}

/// The upload (multipart): checked by its first bytes and size in `domain`, kept by its hash.
async fn save_logo(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use super::multipart;
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let file = multipart::boundary(content_type).and_then(|b| multipart::file(&multipart::parse(&body, &b), "logo"));
    let Some(bytes) = file else {
        return redirect_with_flash("/parametres/logo", "erreur", "Choisissez une image PNG ou JPEG.");
    };
    let (actor, now) = (id.actor(&pc.ctx), st.clock.now());
    let saved = crate::api::catalogue::write(&st, move |tx| {
        let (bytes, actor) = (bytes.clone(), actor.clone());
        Box::pin(async move { store::settings::save_logo(&**tx, bytes, &actor, now).await })
    })
    .await;
    match saved {
        Ok(_) => redirect_with_flash(
            "/parametres/logo",
            "succes",
            "Logo enregistré : il figure sur les prochains documents.",
        ),
        Err(e) => redirect_with_flash("/parametres/logo", "erreur", &e.message),
    }
}

/// The current logo's image.
async fn logo_image(State(st): State<AppState>) -> Response {
    use axum::response::IntoResponse;
    let c = st.dbmon.db().conn();
    let sha = store::settings::company(c).await.ok().flatten().and_then(|s| s.logo_sha256);
    match sha {
        Some(sha) => match store::settings::logo(c, &sha).await {
            Ok(Some((kind, bytes))) => ([(axum::http::header::CONTENT_TYPE, kind)], bytes).into_response(),
            _ => super::not_found().await,
        },
        None => super::not_found().await,
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalogue/referentiels", get(references).post(save_reference))
        .route("/parametres/societe", get(company).post(save_company))
        .route(CHART, get(chart).post(save_chart))
        .route("/parametres/logo", get(logo_page).post(save_logo))
        .route("/parametres/logo/image", get(logo_image))
}
