//! Catalogue and parties pages (UI.md §3 rows 15, 16, 18, 19, 22, 23, 25, 26): lists and creation forms. One generic
//! form and one generic list: the fields and their French labels are declared here, the rules are the API's.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use domain::identity::Role;
use serde_json::{Value, json};

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub required: bool,
    pub decimal: bool,
    pub hint: &'static str,
    pub options: Vec<(String, String)>,
    pub value: String,
    pub error: String,
}

impl Field {
    pub fn new(name: &'static str, label: &'static str, kind: &'static str, required: bool) -> Field {
        field(name, label, kind, required)
    }
}

fn field(name: &'static str, label: &'static str, kind: &'static str, required: bool) -> Field {
    Field {
        name,
        label,
        kind,
        required,
        decimal: false,
        hint: "",
        options: Vec::new(),
        value: String::new(),
        error: String::new(),
    }
}

fn select(name: &'static str, label: &'static str, required: bool, options: &[(&str, &str)]) -> Field {
    Field {
        options: options.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect(),
        ..field(name, label, "select", required)
    }
}

#[derive(Template)]
#[template(path = "simple_form.html")]
struct FormPage {
    layout: Layout,
    crumb: String,
    action: &'static str,
    back: &'static str,
    button: &'static str,
    refused_title: &'static str,
    fields: Vec<Field>,
    summary: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "simple_list.html")]
struct ListPage {
    layout: Layout,
    crumb: String,
    caption: &'static str,
    path: String,
    search: String,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    create: Option<(&'static str, &'static str)>,
    empty: &'static str,
    prev: Option<String>,
    next: Option<String>,
    summary: String,
    /// When set, the first cell links to `{link}/{cell}`.
    link: &'static str,
}

/// One kind of object: its pages, its fields, how a form becomes an API body, and how the API creates it.
struct Kind {
    path: &'static str,
    new_path: &'static str,
    title: &'static str,
    new_title: &'static str,
    section: &'static str,
    button: &'static str,
}

pub fn fields_with(
    mut fields: Vec<Field>,
    values: &HashMap<String, String>,
    err: &ApiError,
) -> (Vec<Field>, Vec<(String, String)>) {
    let mut summary = Vec::new();
    let listed = err.details["fields"].as_array().cloned().unwrap_or_default();
    for f in fields.iter_mut() {
        f.value = values.get(f.name).cloned().unwrap_or_default();
    }
    for fe in &listed {
        let name = fe["field"].as_str().unwrap_or_default();
        let message = fe["message"].as_str().unwrap_or_default().to_string();
        if let Some(f) = fields.iter_mut().find(|f| f.name == name) {
            f.error = message.clone();
        }
        summary.push((name.to_string(), message));
    }
    if listed.is_empty() {
        summary.push((fields.first().map(|f| f.name.to_string()).unwrap_or_default(), err.message.clone()));
    }
    (fields, summary)
}

fn form_page(
    pc: &PageCtx,
    k: &Kind,
    fields: Vec<Field>,
    summary: Vec<(String, String)>,
    status: StatusCode,
) -> Response {
    let crumb = format!("{} › {} › {}", k.section, k.title, k.new_title);
    form_page_for(pc, k.new_title, k.path, k.new_path, &crumb, k.button, fields, summary, status)
}

/// A creation form: its fields with their values and errors, and the summary of refusals at the top.
#[allow(clippy::too_many_arguments)]
pub fn form_page_for(
    pc: &PageCtx,
    title: &str,
    list_path: &'static str,
    action: &'static str,
    crumb: &str,
    button: &'static str,
    fields: Vec<Field>,
    summary: Vec<(String, String)>,
    status: StatusCode,
) -> Response {
    let p = FormPage {
        layout: Layout::for_page(title, list_path, pc),
        crumb: crumb.to_string(),
        action,
        back: list_path,
        button,
        refused_title: "L'enregistrement a été refusé",
        fields,
        summary,
    };
    page(status, p, pc)
}

/// A list of rows whose first cell is a reference, searched (`?q=`, any cell, case-insensitive) and paginated
/// (`?page=`).
#[allow(clippy::too_many_arguments)]
pub fn list_page_for(
    pc: &PageCtx,
    query: &HashMap<String, String>,
    title: &'static str,
    path: &str,
    crumb: &str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    create: Option<(&'static str, &'static str)>,
    empty: &'static str,
) -> Response {
    let search = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let needle = search.to_lowercase();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| needle.is_empty() || r.iter().any(|c| c.to_lowercase().contains(&needle)))
        .collect();
    let page_no = super::views::page_of(query);
    let filters = [super::views::Filter {
        name: "q",
        label: "Rechercher",
        kind: "search",
        value: search.clone(),
        options: Vec::new(),
    }];
    let (prev, next, summary) = super::views::pager(path, &filters, page_no, rows.len() as u64);
    let size = super::views::PAGE_SIZE as usize;
    let p = ListPage {
        layout: Layout::for_page(title, path, pc),
        crumb: crumb.to_string(),
        caption: title,
        path: path.to_string(),
        search,
        headers,
        rows: rows.into_iter().skip((page_no as usize - 1) * size).take(size).collect(),
        create,
        empty,
        prev,
        next,
        summary,
        link: if path == SUPPLIERS.path { SUPPLIERS.path } else { "" },
    };
    page(StatusCode::OK, p, pc)
}

fn opt(values: &HashMap<String, String>, k: &str) -> Value {
    values.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()).map(|v| json!(v)).unwrap_or(Value::Null)
}

fn number(values: &HashMap<String, String>, k: &str, parse: fn(&str) -> Option<i64>) -> Value {
    values
        .get(k)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| parse(v).map(|n| json!(n)).unwrap_or(json!(v)))
        .unwrap_or(Value::Null)
}

fn integer(values: &HashMap<String, String>, k: &str) -> Value {
    number(values, k, |v| v.parse().ok())
}

// ---- MP ---------------------------------------------------------------------------------------------------------

const MP: Kind = Kind {
    path: "/catalogue/matieres",
    new_path: "/catalogue/matieres/nouvelle",
    title: "Matières premières",
    new_title: "Nouvelle matière",
    section: "Catalogue",
    button: "Enregistrer",
};

fn mp_fields() -> Vec<Field> {
    vec![
        Field {
            hint: "MP- suivi de 3 à 30 caractères (A-Z, 0-9, -), par exemple MP-LAIT-CRU.",
            ..field("code", "Code", "text", true)
        },
        field("name", "Désignation", "text", true),
        select(
            "category",
            "Catégorie",
            true,
            &[
                ("RAW_MATERIAL", "Matière première"),
                ("PACKAGING", "Emballage"),
                ("ADDITIVE", "Additif"),
                ("CONSUMABLE", "Consommable"),
            ],
        ),
        select(
            "baseUnit",
            "Unité",
            true,
            &[
                ("KG", "kg"),
                ("G", "g"),
                ("L", "L"),
                ("ML", "mL"),
                ("U", "pièce"),
                ("CRT", "carton"),
                ("RLX", "rouleau"),
            ],
        ),
        Field {
            decimal: true,
            hint: "Dans l'unité de la matière.",
            ..field("minStock", "Stock minimum", "text", false)
        },
        field("leadTimeDays", "Délai d'approvisionnement (jours)", "number", false),
        select(
            "criticite",
            "Criticité",
            false,
            &[("MOYENNE", "Moyenne"), ("FAIBLE", "Faible"), ("HAUTE", "Haute"), ("BLOQUANTE", "Bloquante")],
        ),
        field("qcRequired", "Contrôle qualité à la réception (lots en quarantaine)", "checkbox", false),
    ]
}

fn mp_body(v: &HashMap<String, String>) -> Value {
    json!({"code": v.get("code").cloned().unwrap_or_default(), "name": v.get("name").cloned().unwrap_or_default(),
           "category": v.get("category").cloned().unwrap_or_default(), "baseUnit": v.get("baseUnit").cloned().unwrap_or_default(),
           "minStock": number(v, "minStock", domain::money::parse_qty), "leadTimeDays": integer(v, "leadTimeDays"),
           "criticite": opt(v, "criticite"), "qcRequired": v.get("qcRequired").is_some_and(|x| x == "true")})
}

async fn mp_list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let rows = store::catalogue::list_products(st.dbmon.db(), "MP")
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let unit = domain::stock::Unit::parse(&p.base_unit).unwrap_or(domain::stock::Unit::Kg);
            vec![
                p.code,
                p.name,
                p.category.unwrap_or_default(),
                p.base_unit.clone(),
                domain::stock::fmt_qty(p.min_stock, unit),
                p.criticite.unwrap_or_default(),
                if p.active { "Actif".into() } else { "Inactif".into() },
            ]
        })
        .collect();
    list_page_for(
        &pc,
        &query,
        MP.title,
        MP.path,
        &format!("{} › {}", MP.section, MP.title),
        vec!["Code", "Désignation", "Catégorie", "Unité", "Stock minimum", "Criticité", "Statut"],
        rows,
        matches!(id.role, Role::Admin | Role::Appro).then_some((MP.new_path, MP.new_title)),
        "Aucune matière première. Créez la première avec « Nouvelle matière ».",
    )
}

async fn mp_new(pc: PageCtx) -> Response {
    let mut fields = mp_fields();
    fields[2].value = "RAW_MATERIAL".into();
    fields[3].value = "KG".into();
    form_page(&pc, &MP, fields, Vec::new(), StatusCode::OK)
}

async fn mp_create(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let v: HashMap<String, String> = raw.into_iter().collect();
    let res = match serde_json::from_value::<crate::api::catalogue::MpBody>(mp_body(&v)) {
        Ok(b) => crate::api::catalogue::save_mp(&st, None, &b, &id, &pc.ctx).await.map(|p| p.code),
        Err(_) => Err(typing_error()),
    };
    match res {
        Ok(code) => redirect_with_flash(MP.path, "succes", &format!("Matière {code} créée.")),
        Err(e) => {
            let (fields, summary) = fields_with(mp_fields(), &v, &e);
            form_page(&pc, &MP, fields, summary, e.status)
        }
    }
}

// ---- PF ---------------------------------------------------------------------------------------------------------

const PF: Kind = Kind {
    path: "/catalogue/produits",
    new_path: "/catalogue/produits/nouveau",
    title: "Produits finis",
    new_title: "Nouveau produit fini",
    section: "Catalogue",
    button: "Enregistrer",
};

fn pf_fields() -> Vec<Field> {
    vec![
        Field {
            hint: "PF- suivi de 3 à 30 caractères (A-Z, 0-9, -), par exemple PF-EDAM-400.",
            ..field("code", "Code", "text", true)
        },
        field("name", "Désignation (imprimée sur les factures)", "text", true),
        select("baseUnit", "Unité de vente", true, &[("U", "pièce"), ("KG", "kg")]),
        Field {
            hint: "Obligatoire pour un produit à la pièce.",
            ..field("weightG", "Poids d'une pièce (g)", "number", false)
        },
        select(
            "packagingType",
            "Conditionnement",
            true,
            &[
                ("SAC_THERMO", "Sac thermo"),
                ("SEAU", "Seau"),
                ("BARQUETTE", "Barquette"),
                ("BOITE", "Boîte"),
                ("FILM", "Film"),
                ("VRAC", "Vrac"),
                ("AUTRE", "Autre"),
            ],
        ),
        select("storageType", "Conservation", true, &domain::catalogue::STORAGE_LABELS),
        field("shelfLifeDays", "Durée de conservation (jours)", "number", true),
        Field {
            decimal: true,
            hint: "Prix catalogue HT par unité de vente, en dinars.",
            ..field("listPriceHt", "Prix catalogue HT", "text", true)
        },
        select("tvaRate", "TVA", true, &[("1900", "19 %"), ("900", "9 %"), ("0", "0 %")]),
    ]
}

fn pf_body(v: &HashMap<String, String>) -> Value {
    let text = |k: &str| v.get(k).cloned().unwrap_or_default();
    json!({"code": text("code"), "name": text("name"), "baseUnit": text("baseUnit"), "weightG": integer(v, "weightG"),
           "packagingType": text("packagingType"), "storageType": text("storageType"),
           "shelfLifeDays": integer(v, "shelfLifeDays"), "listPriceHt": number(v, "listPriceHt", domain::money::parse_money),
           "tvaRate": integer(v, "tvaRate"), "familyCode": opt(v, "familyCode"), "brandCode": opt(v, "brandCode")})
}

async fn pf_list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let prices = !matches!(id.role, Role::Appro | Role::Production);
    let rows = store::catalogue::list_products(st.dbmon.db(), "PF")
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let price = if prices { domain::money::fmt_money(p.list_price_ht) } else { "—".into() };
            vec![
                p.code,
                p.name,
                p.base_unit.to_lowercase(),
                p.weight_g.map(|w| format!("{w} g")).unwrap_or_else(|| "—".into()),
                p.shelf_life_days.map(|d| format!("{d} j")).unwrap_or_default(),
                price,
                domain::money::fmt_rate(i64::from(p.tva_rate), 0),
            ]
        })
        .collect();
    list_page_for(
        &pc,
        &query,
        PF.title,
        PF.path,
        "Catalogue › Produits finis",
        vec!["Code", "Désignation", "Unité", "Poids", "Conservation", "Prix catalogue HT", "TVA"],
        rows,
        (id.role == Role::Admin).then_some((PF.new_path, PF.new_title)),
        "Aucun produit fini au catalogue.",
    )
}

/// The PF fields with the active families and brands to choose from.
async fn pf_fields_of(st: &AppState) -> Vec<Field> {
    use store::settings::RefKind;
    let conn = st.dbmon.db().conn();
    let mut fields = pf_fields();
    for (kind, name, label, required, none) in [
        (RefKind::Family, "familyCode", "Famille", true, "— Choisir —"),
        (RefKind::Brand, "brandCode", "Marque", false, "— Sans marque —"),
    ] {
        let mut options = vec![(String::new(), none.to_string())];
        options.extend(
            store::settings::references(conn, kind)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.active)
                .map(|r| (r.code, r.name)),
        );
        fields.push(Field {
            options,
            hint: if required { "Les familles se créent dans Catalogue › Référentiels." } else { "" },
            ..field(name, label, "select", required)
        });
    }
    fields
}

async fn pf_new(State(st): State<AppState>, pc: PageCtx) -> Response {
    let mut fields = pf_fields_of(&st).await;
    fields[2].value = "U".into();
    fields[8].value = "1900".into();
    form_page(&pc, &PF, fields, Vec::new(), StatusCode::OK)
}

async fn pf_create(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let v: HashMap<String, String> = raw.into_iter().collect();
    let res = match serde_json::from_value::<crate::api::catalogue::PfBody>(pf_body(&v)) {
        Ok(b) => crate::api::catalogue::save_pf(&st, None, &b, &id, &pc.ctx).await.map(|p| p.code),
        Err(_) => Err(crate::api::admin::field_error(
            "listPriceHt",
            "VALEUR_INVALIDE",
            "Nombres attendus : prix en dinars, durée et poids entiers.",
        )),
    };
    match res {
        Ok(code) => redirect_with_flash(PF.path, "succes", &format!("Produit {code} créé.")),
        Err(e) => {
            let (fields, summary) = fields_with(pf_fields_of(&st).await, &v, &e);
            form_page(&pc, &PF, fields, summary, e.status)
        }
    }
}

fn typing_error() -> ApiError {
    crate::api::admin::field_error("minStock", "VALEUR_INVALIDE", "Nombre attendu, par exemple 12,5.")
}

// ---- suppliers and clients ---------------------------------------------------------------------------------------

const SUPPLIERS: Kind = Kind {
    path: "/fournisseurs",
    new_path: "/fournisseurs/nouveau",
    title: "Fournisseurs",
    new_title: "Nouveau fournisseur",
    section: "Approvisionnement",
    button: "Enregistrer",
};

const CLIENTS: Kind = Kind {
    path: "/clients",
    new_path: "/clients/nouveau",
    title: "Clients",
    new_title: "Nouveau client",
    section: "Ventes",
    button: "Enregistrer",
};

fn party_fields() -> Vec<Field> {
    let mut wilayas = vec![(String::new(), "—".to_string())];
    wilayas.extend((1..=58).map(|n| (format!("{n:02}"), format!("{n:02}"))));
    vec![
        field("raisonSociale", "Raison sociale", "text", true),
        select(
            "formeJuridique",
            "Forme juridique",
            false,
            &[
                ("", "—"),
                ("SARL", "SARL"),
                ("EURL", "EURL"),
                ("SPA", "SPA"),
                ("SNC", "SNC"),
                ("EI", "EI"),
                ("AUTRE", "Autre"),
            ],
        ),
        field("adresse", "Adresse", "text", false),
        Field { options: wilayas, ..field("wilaya", "Wilaya", "select", false) },
        field("commune", "Commune", "text", false),
        Field {
            hint: "Mobile 05, 06, 07 ou fixe 02, 03, 04 ; +213 accepté.",
            ..field("telephone", "Téléphone", "tel", false)
        },
        field("email", "Adresse e-mail", "email", false),
        Field { hint: "Par exemple 25 B 1204921 16/00.", ..field("rc", "Registre du commerce (RC)", "text", false) },
        Field { hint: "15 chiffres.", ..field("nif", "NIF", "text", false) },
        Field { hint: "11 chiffres.", ..field("ai", "Article d'imposition (AI)", "text", false) },
        Field { hint: "15 chiffres.", ..field("nis", "NIS", "text", false) },
        field("contactName", "Contact", "text", false),
    ]
}

fn party_body(v: &HashMap<String, String>) -> Value {
    let mut b = json!({"raisonSociale": v.get("raisonSociale").cloned().unwrap_or_default()});
    for k in [
        "formeJuridique",
        "adresse",
        "wilaya",
        "commune",
        "telephone",
        "email",
        "rc",
        "nif",
        "ai",
        "nis",
        "contactName",
    ] {
        b[k] = opt(v, k);
    }
    b
}

fn parties_page(
    pc: &PageCtx,
    query: &HashMap<String, String>,
    k: &Kind,
    rows: Vec<Vec<String>>,
    can_create: bool,
) -> Response {
    list_page_for(
        pc,
        query,
        k.title,
        k.path,
        &format!("{} › {}", k.section, k.title),
        vec!["Code", "Raison sociale", "Wilaya", "Téléphone", "NIF", "Statut"],
        rows,
        can_create.then_some((k.new_path, k.new_title)),
        "Aucun tiers enregistré pour l'instant.",
    )
}

fn dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "—".into())
}

async fn supplier_list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let rows = store::catalogue::list_suppliers(st.dbmon.db())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let status = if !s.active {
                "Inactif".to_string()
            } else if domain::catalogue::supplier_blocked(s.block_reason.as_deref(), s.blocked_until, today) {
                match s.blocked_until {
                    Some(d) => format!("Bloqué jusqu'au {}", domain::stock::fmt_date(d)),
                    None => "Bloqué jusqu'à nouvel ordre".into(),
                }
            } else {
                "Actif".into()
            };
            vec![s.code, s.raison_sociale, dash(s.wilaya), dash(s.telephone), dash(s.nif), status]
        })
        .collect();
    parties_page(&pc, &query, &SUPPLIERS, rows, matches!(id.role, Role::Admin | Role::Appro))
}

async fn client_list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let rows = store::catalogue::list_clients(st.dbmon.db())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            vec![
                c.code,
                c.raison_sociale,
                dash(c.wilaya),
                dash(c.telephone),
                dash(c.nif),
                if c.active { "Actif".into() } else { "Inactif".into() },
            ]
        })
        .collect();
    parties_page(&pc, &query, &CLIENTS, rows, matches!(id.role, Role::Admin | Role::Commercial))
}

async fn supplier_new(pc: PageCtx) -> Response {
    form_page(&pc, &SUPPLIERS, party_fields(), Vec::new(), StatusCode::OK)
}

async fn client_new(pc: PageCtx) -> Response {
    form_page(&pc, &CLIENTS, party_fields(), Vec::new(), StatusCode::OK)
}

fn warned(text: String, warnings: &[domain::rejection::Rejection]) -> (String, &'static str) {
    if warnings.is_empty() {
        (text, "succes")
    } else {
        let w: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        (format!("{text} {}", w.join(" ")), "avertissement")
    }
}

/// Creates a supplier or a client from its form: the same identity fields, the same refusals under their fields.
async fn party_create(st: &AppState, pc: &PageCtx, id: &Identity, raw: Vec<(String, String)>, k: &Kind) -> Response {
    let v: HashMap<String, String> = raw.into_iter().collect();
    let body: crate::api::catalogue::PartyBody = match serde_json::from_value(party_body(&v)) {
        Ok(b) => b,
        Err(_) => {
            let summary = vec![("raisonSociale".into(), "Formulaire illisible.".into())];
            return form_page(pc, k, party_fields(), summary, StatusCode::BAD_REQUEST);
        }
    };
    let saved = if k.path == SUPPLIERS.path {
        crate::api::catalogue::save_supplier(st, None, &body, id, &pc.ctx)
            .await
            .map(|(s, w)| (format!("Fournisseur {} créé.", s.code), w))
    } else {
        crate::api::catalogue::save_client(st, None, &body, id, &pc.ctx)
            .await
            .map(|(c, w)| (format!("Client {} créé.", c.code), w))
    };
    match saved {
        Ok((text, w)) => {
            let (text, tone) = warned(text, &w);
            redirect_with_flash(k.path, tone, &text)
        }
        Err(e) => {
            let (fields, summary) = fields_with(party_fields(), &v, &e);
            form_page(pc, k, fields, summary, e.status)
        }
    }
}

async fn supplier_create(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    party_create(&st, &pc, &id, raw, &SUPPLIERS).await
}

async fn client_create(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    party_create(&st, &pc, &id, raw, &CLIENTS).await
}

#[derive(Template)]
#[template(path = "supplier.html")]
struct SupplierPage {
    layout: Layout,
    code: String,
    name: String,
    tone: &'static str,
    status: String,
    facts: Vec<(&'static str, String)>,
    can_block: bool,
    blocked: bool,
    /// §6.4: (label, value) of the scorecard, then the supplier's orders (reference, status, expected, first reception,
    /// on time).
    performance: Vec<(&'static str, String)>,
    grade: String,
    orders: Vec<(String, &'static str, String, String, &'static str)>,
}

async fn supplier_page(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Response {
    let Some(s) = store::catalogue::supplier_by_code(st.dbmon.db().conn(), &code).await.ok().flatten() else {
        return super::not_found().await;
    };
    let today = domain::stock::today_algiers(st.clock.now());
    let blocked = domain::catalogue::supplier_blocked(s.block_reason.as_deref(), s.blocked_until, today);
    let (tone, status) = match (s.active, blocked, s.blocked_until) {
        (false, _, _) => ("gris", "Inactif".to_string()),
        (true, true, Some(d)) => ("rouge", format!("Bloqué jusqu'au {}", domain::stock::fmt_date(d))),
        (true, true, None) => ("rouge", "Bloqué jusqu'à nouvel ordre".to_string()),
        _ => ("vert", "Actif".to_string()),
    };
    let mut facts = vec![
        ("Code", s.code.clone()),
        ("Forme juridique", dash(s.forme_juridique.clone())),
        ("Adresse", dash(s.adresse.clone())),
        ("Wilaya", dash(s.wilaya.clone())),
        ("Commune", dash(s.commune.clone())),
        ("Téléphone", dash(s.telephone.clone())),
        ("E-mail", dash(s.email.clone())),
        ("RC", dash(s.rc.clone())),
        ("NIF", dash(s.nif.clone())),
        ("AI", dash(s.ai.clone())),
        ("NIS", dash(s.nis.clone())),
        ("Délai de paiement", format!("{} jour(s)", s.payment_terms_days)),
    ];
    if blocked {
        facts.push(("Motif du blocage", s.block_reason.clone().unwrap_or_default()));
    }
    let db = st.dbmon.db();
    let perf = store::purchase::performance_of(db.conn(), s.id).await.ok().flatten();
    let rate = |bp: Option<i32>| bp.map_or("—".to_string(), |b| domain::money::fmt_rate(i64::from(b), 1));
    let performance = vec![
        ("Score", perf.as_ref().and_then(|p| p.score).map_or("—".into(), |v| format!("{v}/100"))),
        ("Ponctualité", rate(perf.as_ref().and_then(|p| p.on_time_bp))),
        ("Exactitude des quantités", rate(perf.as_ref().and_then(|p| p.accuracy_bp))),
        ("Bons de commande pris en compte", perf.as_ref().map_or(0, |p| p.orders).to_string()),
    ];
    let orders = store::purchase::list(db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|(o, _, _)| o.supplier_id == s.id)
        .take(domain::purchase::PERFORMANCE_WINDOW)
        .map(|(o, _, _)| {
            let on_time = match (o.first_reception_date, o.expected_date) {
                (Some(f), Some(e)) if f <= e => "À l'heure",
                (Some(_), Some(_)) => "En retard",
                _ => "—",
            };
            let status = store::purchase::status_of(&o).label();
            let fmt = |d: Option<chrono::NaiveDate>| d.map(domain::stock::fmt_date).unwrap_or_else(|| "—".into());
            (o.reference.clone(), status, fmt(o.expected_date), fmt(o.first_reception_date), on_time)
        })
        .collect();
    let p = SupplierPage {
        performance,
        grade: perf.map_or_else(|| "N/A".to_string(), |p| p.grade),
        orders,
        layout: Layout::for_page(&s.raison_sociale, SUPPLIERS.path, &pc),
        code: s.code.clone(),
        name: s.raison_sociale.clone(),
        tone,
        status,
        facts,
        can_block: id.role == Role::Admin && s.active,
        blocked,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct BlockForm {
    reason: String,
    until: String,
    #[serde(rename = "_csrf")]
    _csrf: String,
}

async fn supplier_block_change(
    st: &AppState,
    pc: &PageCtx,
    id: &Identity,
    code: String,
    block: bool,
    f: BlockForm,
) -> Response {
    let back = format!("{}/{code}", SUPPLIERS.path);
    let until = chrono::NaiveDate::parse_from_str(f.until.trim(), "%Y-%m-%d").ok();
    if block && !f.until.trim().is_empty() && until.is_none() {
        return redirect_with_flash(&back, "erreur", "Date de fin illisible.");
    }
    match crate::api::catalogue::supplier_block(st, id, &pc.ctx, &code, block, f.reason, until).await {
        Ok(s) => {
            let text = if block {
                format!("Fournisseur {} bloqué.", s.code)
            } else {
                format!("Fournisseur {} débloqué.", s.code)
            };
            redirect_with_flash(&back, "succes", &text)
        }
        Err(e) => {
            let details: Vec<String> = e.details["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["message"].as_str().map(str::to_string))
                .collect();
            let text = if details.is_empty() { e.message.clone() } else { details.join(" ") };
            redirect_with_flash(&back, "erreur", &text)
        }
    }
}

async fn supplier_block(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    axum::extract::Path(code): axum::extract::Path<String>,
    Form(f): Form<BlockForm>,
) -> Response {
    supplier_block_change(&st, &pc, &id, code, true, f).await
}

async fn supplier_unblock(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    axum::extract::Path(code): axum::extract::Path<String>,
    Form(f): Form<BlockForm>,
) -> Response {
    supplier_block_change(&st, &pc, &id, code, false, f).await
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalogue/matieres", get(mp_list))
        .route("/catalogue/matieres/nouvelle", get(mp_new).post(mp_create))
        .route("/catalogue/produits", get(pf_list))
        .route("/catalogue/produits/nouveau", get(pf_new).post(pf_create))
        .route("/fournisseurs", get(supplier_list))
        .route("/fournisseurs/nouveau", get(supplier_new).post(supplier_create))
        .route("/fournisseurs/{code}", get(supplier_page))
        .route("/fournisseurs/{code}/bloquer", axum::routing::post(supplier_block))
        .route("/fournisseurs/{code}/debloquer", axum::routing::post(supplier_unblock))
        .route("/clients", get(client_list))
        .route("/clients/nouveau", get(client_new).post(client_create))
}
