//! Inventory count pages (UI.md §3 rows 35–37): the list, the blind declaration, the count with its decision.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::identity::Role;
use domain::stock::{Unit, fmt_qty};
use serde_json::json;

use super::catalogue::{Field, form_page_for, list_page_for};
use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

fn qty(milli: i64, unit: &str) -> String {
    fmt_qty(milli, Unit::parse(unit).unwrap_or(Unit::Kg))
}

fn status_badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "APPROVED" => ("vert", "Approuvé"),
        "PENDING" => ("ambre", "À valider"),
        "PENDING_DOUBLE" => ("ambre", "Double validation (0/2)"),
        "REJECTED" => ("rouge", "Rejeté"),
        _ => ("gris", "Expiré"),
    }
}

fn risk_fr(risk: &str) -> &'static str {
    match risk {
        "LOW" => "Faible",
        "MEDIUM" => "Moyen",
        "HIGH" => "Élevé",
        _ => "Critique",
    }
}

async fn list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let db = st.dbmon.db();
    let mut rows = Vec::new();
    for c in store::inventory::list(db).await.unwrap_or_default() {
        let p = store::stock::product(db.conn(), c.product_id).await.ok().flatten();
        let (code, unit) = p.map(|p| (p.code, p.base_unit)).unwrap_or_default();
        rows.push(vec![
            c.reference.clone(),
            code,
            domain::format::datetime_algiers(c.declared_at.timestamp()),
            qty(c.difference, &unit),
            domain::money::fmt_rate(c.pct_bp, 2),
            risk_fr(&c.risk).to_string(),
            status_badge(&c.status).1.to_string(),
        ]);
    }
    list_page_for(
        &pc,
        &query,
        "Comptages",
        "/stock/comptages",
        "Stock › Comptages",
        vec!["Référence", "Produit", "Déclaré le", "Écart", "Écart %", "Risque", "Statut"],
        rows,
        matches!(id.role, Role::Admin | Role::Appro | Role::Production)
            .then_some(("/stock/comptages/nouveau", "Nouveau comptage")),
        "Aucun comptage déclaré.",
    )
}

async fn fields(st: &AppState) -> Vec<Field> {
    let db = st.dbmon.db();
    let mut options = vec![(String::new(), "— Choisir —".to_string())];
    for kind in ["MP", "PF"] {
        for p in store::catalogue::list_products(db, kind).await.unwrap_or_default().into_iter().filter(|p| p.active) {
            options.push((p.code.clone(), format!("{} — {} ({})", p.code, p.name, p.base_unit.to_lowercase())));
        }
    }
    vec![
        Field { options, ..Field::new("productCode", "Produit", "select", true) },
        Field {
            decimal: true,
            hint: "Ce que vous avez compté, dans l'unité du produit ; le stock théorique n'est montré qu'après la déclaration.",
            ..Field::new("declaredQuantity", "Quantité comptée", "text", true)
        },
        Field {
            hint: "Seulement pour un surplus de produit périssable.",
            ..Field::new("dlc", "DLC du surplus", "date", false)
        },
        Field::new("note", "Note", "text", false),
    ]
}

async fn new(State(st): State<AppState>, pc: PageCtx) -> Response {
    form_page_for(
        &pc,
        "Nouveau comptage",
        "/stock/comptages",
        "/stock/comptages/nouveau",
        "Stock › Comptages › Nouveau comptage",
        "Déclarer",
        fields(&st).await,
        Vec::new(),
        StatusCode::OK,
    )
}

async fn create(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let v: HashMap<String, String> = raw.into_iter().collect();
    let get = |k: &str| v.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let db = st.dbmon.db();
    let refuse = |e: ApiError, fields: Vec<Field>| {
        let (fields, summary) = super::catalogue::fields_with(fields, &v, &e);
        form_page_for(
            &pc,
            "Nouveau comptage",
            "/stock/comptages",
            "/stock/comptages/nouveau",
            "Stock › Comptages › Nouveau comptage",
            "Déclarer",
            fields,
            summary,
            e.status,
        )
    };
    let Some(declared) = domain::money::parse_qty(&get("declaredQuantity")) else {
        return refuse(
            crate::api::admin::field_error(
                "declaredQuantity",
                "VALEUR_INVALIDE",
                "Quantité attendue, par exemple 12,5.",
            ),
            fields(&st).await,
        );
    };
    let product = match store::catalogue::product_by_code(db.conn(), &get("productCode")).await {
        Ok(Some(p)) => p,
        _ => {
            return refuse(
                crate::api::admin::field_error("productCode", "OBLIGATOIRE", "Choisissez le produit compté."),
                fields(&st).await,
            );
        }
    };
    let body = crate::api::stock::CountBody {
        product_code: product.code.clone(),
        declared_quantity: declared,
        dlc: chrono::NaiveDate::parse_from_str(&get("dlc"), "%Y-%m-%d").ok(),
        note: Some(get("note")).filter(|n| !n.is_empty()),
    };
    let idem =
        crate::api::idempotency::Idem::from_form(&get("_commande"), &id, "/api/stock/counts", &serde_json::json!(body));
    let res =
        crate::api::idempotency::run_value(&st, idem, |idem| crate::api::stock::count(&st, &pc.ctx, &id, body, idem))
            .await;
    match res {
        Ok((_, c, _)) => {
            let reference = c["reference"].as_str().unwrap_or_default();
            let text = if c["status"] == "APPROVED" {
                format!(
                    "Comptage {reference} approuvé : écart {} passé en stock.",
                    qty(c["difference"].as_i64().unwrap_or(0), &product.base_unit)
                )
            } else {
                format!("Comptage {reference} déclaré : il attend sa validation par une autre personne.")
            };
            redirect_with_flash(&format!("/stock/comptages/{reference}"), "succes", &text)
        }
        Err(e) => refuse(e, fields(&st).await),
    }
}

#[derive(Template)]
#[template(path = "count.html")]
struct CountPage {
    layout: Layout,
    reference: String,
    tone: &'static str,
    status: &'static str,
    facts: Vec<(&'static str, String)>,
    can_decide: bool,
    decision_text: String,
    why_not: String,
}

async fn show(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(reference): Path<String>) -> Response {
    let db = st.dbmon.db();
    let c = match store::inventory::by_reference(db.conn(), &reference).await {
        Ok(Some(c)) => c,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let p = store::stock::product(db.conn(), c.product_id).await.ok().flatten();
    let (code, unit) = p.map(|p| (p.code, p.base_unit)).unwrap_or_default();
    let counter = store::identity::user_by_id(db.conn(), c.counter_id)
        .await
        .ok()
        .flatten()
        .map(|u| format!("{} {}", u.first_name, u.last_name))
        .unwrap_or_default();
    let (tone, status) = status_badge(&c.status);
    let mut facts = vec![
        ("Produit", code),
        ("Compté par", counter),
        ("Déclaré le", domain::format::datetime_algiers(c.declared_at.timestamp())),
        ("Stock théorique", qty(c.theoretical, &unit)),
        ("Quantité comptée", qty(c.declared, &unit)),
        ("Écart", format!("{} ({})", qty(c.difference, &unit), domain::money::fmt_rate(c.pct_bp, 2))),
        ("Risque", format!("{}{}", risk_fr(&c.risk), if c.suspect { " · suspect" } else { "" })),
    ];
    if !matches!(id.role, Role::Production) {
        facts.push(("Valeur de l'écart", domain::money::fmt_money(c.value)));
    }
    let waiting = matches!(c.status.as_str(), "PENDING" | "PENDING_DOUBLE");
    let validator = matches!(id.role, Role::Admin | Role::Comptable);
    let own = id.user.id == c.counter_id;
    let already = c.first_validator_id == Some(id.user.id);
    let can_decide = waiting && validator && !own && !already;
    let why_not = if waiting && validator && own {
        "Vous avez compté ce produit : la validation revient à une autre personne.".to_string()
    } else if waiting && validator && already {
        "Vous avez déjà donné la première validation : la seconde revient à une autre personne.".to_string()
    } else {
        String::new()
    };
    let decision_text = if c.status == "PENDING_DOUBLE" {
        "Comptage critique : vous êtes le 1er validateur sur 2.".to_string()
    } else {
        "La validation passe l'écart en stock ; le rejet ne change rien au stock.".to_string()
    };
    let page_ = CountPage {
        layout: Layout::for_page(&c.reference, "/stock/comptages", &pc),
        reference: c.reference.clone(),
        tone,
        status,
        facts,
        can_decide,
        decision_text,
        why_not,
    };
    page(StatusCode::OK, page_, &pc)
}

async fn decide(st: &AppState, pc: &PageCtx, id: &Identity, reference: String, reject: Option<String>) -> Response {
    let (actor, now) = (id.actor(&pc.ctx), st.clock.now());
    let res = st
        .dbmon
        .db()
        .write(|tx| {
            let (reference, actor, reject) = (reference.clone(), actor.clone(), reject.clone());
            Box::pin(async move {
                match reject {
                    Some(reason) => store::inventory::reject(&**tx, &reference, &reason, &actor, now).await,
                    None => store::inventory::validate(&**tx, &reference, &actor, now).await,
                }
            })
        })
        .await;
    let back = format!("/stock/comptages/{reference}");
    match res {
        Ok(c) => redirect_with_flash(
            &back,
            "succes",
            &format!("Comptage {} : {}.", c.reference, status_badge(&c.status).1.to_lowercase()),
        ),
        Err(e) => redirect_with_flash(&back, "erreur", &crate::auth::session::op_err(st, e).message),
    }
}

async fn validate(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(reference): Path<String>) -> Response {
    decide(&st, &pc, &id, reference, None).await
}

async fn reject(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let reason = raw.into_iter().find(|(k, _)| k == "reason").map(|(_, v)| v).unwrap_or_default();
    decide(&st, &pc, &id, reference, Some(reason)).await
}

pub fn router() -> Router<AppState> {
    let _ = json!({});
    Router::new()
        .route("/stock/comptages", get(list))
        .route("/stock/comptages/nouveau", get(new).post(create))
        .route("/stock/comptages/{reference}", get(show))
        .route("/stock/comptages/{reference}/valider", post(validate))
        .route("/stock/comptages/{reference}/rejeter", post(reject))
}
