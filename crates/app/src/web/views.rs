//! Stock screens built on one paginated table (UI.md rows 29, 33, 34, 38): stock health, DLC échéances with the
//! write-off of expired lots, the movement ledger, losses. They call the store and the API's functions; the rules
//! stay in `domain`.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::NaiveDate;
use domain::identity::Role;
use domain::kpi::{ApproStatus, HealthBand};
use domain::money::fmt_money;
use domain::stock::{Unit, fmt_date, fmt_qty};

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::dashboard::{kinds_for, sees_value};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

pub const PAGE_SIZE: u64 = 50;

fn qty(milli: i64, unit: &str) -> String {
    fmt_qty(milli, Unit::parse(unit).unwrap_or(Unit::Kg))
}

#[derive(Default)]
pub struct Cell {
    pub text: String,
    pub href: String,
    pub tone: &'static str,
    pub code: bool,
}

impl Cell {
    fn text(t: impl Into<String>) -> Cell {
        Cell { text: t.into(), ..Default::default() }
    }
    fn code(t: impl Into<String>) -> Cell {
        Cell { text: t.into(), code: true, ..Default::default() }
    }
    fn link(t: impl Into<String>, href: String) -> Cell {
        Cell { text: t.into(), href, ..Default::default() }
    }
    fn badge(t: impl Into<String>, tone: &'static str) -> Cell {
        Cell { text: t.into(), tone, ..Default::default() }
    }
}

pub struct Row {
    pub key: String,
    pub cells: Vec<Cell>,
}

pub struct Filter {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<(String, String)>,
}

pub struct Selection {
    pub action: &'static str,
    pub button: &'static str,
}

#[derive(Template)]
#[template(path = "table.html")]
struct TablePage {
    layout: Layout,
    crumb: String,
    path: &'static str,
    intro: String,
    actions: Vec<(String, String)>,
    filters: Vec<Filter>,
    caption: String,
    headers: Vec<(&'static str, bool)>,
    rows: Vec<Row>,
    selection: Option<Selection>,
    empty: &'static str,
    prev: Option<String>,
    next: Option<String>,
    summary: String,
}

/// Previous / next links keeping the filters, and "Page 2 sur 7 · 321 élément(s)".
pub fn pager(path: &str, filters: &[Filter], page: u64, total: u64) -> (Option<String>, Option<String>, String) {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let href = |p: u64| {
        let mut q: Vec<(String, String)> =
            filters.iter().filter(|f| !f.value.is_empty()).map(|f| (f.name.to_string(), f.value.clone())).collect();
        q.push(("page".into(), p.to_string()));
        format!("{path}?{}", serde_urlencoded::to_string(&q).unwrap_or_default())
    };
    let prev = (page > 1).then(|| href(page - 1));
    let next = (page < pages).then(|| href(page + 1));
    (prev, next, format!("Page {page} sur {pages} · {total} élément(s)"))
}

pub fn page_of(raw: &HashMap<String, String>) -> u64 {
    raw.get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1)
}

fn get_of(raw: &HashMap<String, String>, k: &str) -> String {
    raw.get(k).map(|v| v.trim().to_string()).unwrap_or_default()
}

// ---- Santé du stock ----------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "stock_health.html")]
struct HealthPage {
    layout: Layout,
    date: String,
    score: i64,
    band: &'static str,
    band_tone: &'static str,
    ruptures: i64,
    ruptures_detail: String,
    expired_count: i64,
    expired_detail: String,
    pending_counts: i64,
    near_dlc: i64,
    show_values: bool,
    echeances: Vec<(&'static str, i64, String)>,
    values: Vec<(&'static str, String, String, String)>,
    watch: Vec<(String, String, String, &'static str, String)>,
}

async fn health(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let d = match store::kpi::stock_dashboard(st.dbmon.db().conn(), kinds_for(id.role), st.clock.now()).await {
        Ok(d) => d,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let all_values = sees_value(id.role, "PF");
    let mut values = Vec::new();
    for (i, label) in [(0, "Matières premières"), (1, "Produits finis")] {
        if sees_value(id.role, if i == 0 { "MP" } else { "PF" }) {
            let v = d.value[i];
            values.push((label, fmt_money(v[0]), fmt_money(v[1]), fmt_money(v[2])));
        }
    }
    let p = HealthPage {
        layout: Layout::for_page("Santé du stock", "/stock", &pc),
        date: fmt_date(d.today),
        score: d.score,
        band: d.band.label_fr(),
        band_tone: match d.band {
            HealthBand::Excellent => "vert",
            HealthBand::Bon => "bleu",
            HealthBand::ASurveiller => "ambre",
            HealthBand::Critique => "rouge",
        },
        ruptures: d.inputs.b + d.inputs.r + d.inputs.p,
        ruptures_detail: format!(
            "{} matière(s) bloquante(s), {} autre(s) matière(s), {} produit(s) fini(s) ; {} matière(s) critique(s)",
            d.inputs.b, d.inputs.r, d.inputs.p, d.inputs.c
        ),
        expired_count: d.expired.count,
        expired_detail: if all_values {
            format!("Valeur au coût des lots : {}", fmt_money(d.expired.value))
        } else {
            "Lots bloqués à la DLC, à déclarer en perte.".into()
        },
        pending_counts: d.inputs.i,
        near_dlc: d.inputs.x,
        show_values: all_values,
        echeances: domain::kpi::ECHEANCE_LABELS
            .iter()
            .zip(&d.echeances)
            .map(|(l, t)| (*l, t.count, fmt_money(t.value)))
            .collect(),
        values,
        watch: d
            .watch
            .iter()
            .map(|w| {
                let (tone, label) = match (w.status, w.bloquante) {
                    (ApproStatus::Rupture, true) => ("rouge", "Bloque la production".to_string()),
                    (ApproStatus::Rupture, false) => ("rouge", "Rupture".into()),
                    (ApproStatus::Critique, _) => ("ambre", "Critique".into()),
                    (s, _) => ("bleu", s.label_fr().to_string()),
                };
                (w.code.clone(), w.name.clone(), qty(w.stock_disponible, &w.base_unit), tone, label)
            })
            .collect(),
    };
    page(StatusCode::OK, p, &pc)
}

// ---- Échéances DLC -----------------------------------------------------------------------------------------------

async fn echeances(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let lots = match store::kpi::due_lots(st.dbmon.db().conn(), kinds_for(id.role), st.clock.now()).await {
        Ok(l) => l,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let show_values = matches!(id.role, Role::Admin | Role::Comptable | Role::Appro);
    let (due, expired): (Vec<_>, Vec<_>) = lots.iter().partition(|d| d.bucket.is_some());
    let row = |d: &store::kpi::DueLot, echeance: Cell| Row {
        key: d.lot.lot_number.clone(),
        cells: vec![
            Cell::link(&d.lot.lot_number, format!("/stock/lots/{}", d.lot.lot_number)),
            Cell::text(&d.product_code),
            Cell::text(d.lot.dlc.map(fmt_date).unwrap_or_default()),
            echeance,
            Cell::text(qty(d.lot.quantity_remaining, &d.base_unit)),
            Cell::text(if sees_value(id.role, &d.product_kind) { fmt_money(d.value) } else { "—".into() }),
        ],
    };
    let headers = vec![
        ("N° lot", false),
        ("Produit", false),
        ("DLC", false),
        ("Échéance", false),
        ("Restant", true),
        ("Valeur", true),
    ];
    let headers = if show_values { headers } else { headers[..5].to_vec() };
    let trim = |mut r: Row| {
        r.cells.truncate(headers.len());
        r
    };
    // Expired lots first (the action), then the 7 coming days.
    let mut rows: Vec<Row> = expired
        .iter()
        .map(|d| {
            let (tone, label) = ("rouge", "Périmé à sortir");
            trim(row(d, Cell::badge(label, tone)))
        })
        .collect();
    let can_write_off = matches!(id.role, Role::Admin | Role::Appro | Role::Production);
    let expired_total = rows.len();
    if !can_write_off {
        rows.clear();
    }
    let expired_rows = rows;
    let due_rows: Vec<Row> = due
        .iter()
        .map(|d| {
            let b = d.bucket.unwrap_or(0);
            let tone = match b {
                0 => "rouge",
                1 => "ambre",
                _ => "bleu",
            };
            trim(row(d, Cell::badge(domain::kpi::ECHEANCE_LABELS[b], tone)))
        })
        .collect();
    // Two tables on one page would need two templates; the expired lots (with checkboxes) lead, the coming DLCs
    // follow in a second section of the same table page when there is nothing to write off.
    let mut intro = format!(
        "{} lot(s) périmé(s) à sortir, {} lot(s) arrivant à DLC dans les 7 jours.",
        expired_total,
        due_rows.len()
    );
    if expired_total > 0 && !can_write_off {
        intro.push_str(" La perte se déclare par l'administrateur, l'approvisionnement (MP) ou la production (PF).");
    }
    let (rows, selection, caption) = if !expired_rows.is_empty() {
        let mut all = expired_rows;
        all.extend(due_rows);
        (
            all,
            Some(Selection { action: "/stock/echeances/perte", button: "Déclarer la perte des lots cochés" }),
            "Périmés à sortir, puis échéances des 7 prochains jours".to_string(),
        )
    } else {
        (due_rows, None, "Échéances des 7 prochains jours".to_string())
    };
    let total = rows.len() as u64;
    let p = TablePage {
        layout: Layout::for_page("Échéances DLC", "/stock/echeances", &pc),
        crumb: "Stock › Échéances DLC".into(),
        path: "/stock/echeances",
        intro,
        actions: Vec::new(),
        filters: Vec::new(),
        caption,
        headers,
        rows,
        selection,
        empty: "Aucun lot ne périme dans les 7 prochains jours.",
        prev: None,
        next: None,
        summary: format!("{total} lot(s)"),
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Template)]
#[template(path = "write_off.html")]
struct WriteOffPage {
    layout: Layout,
    text: String,
    lots: Vec<(String, String, String, String)>,
    show_values: bool,
}

async fn write_off(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let lots: Vec<String> = raw.iter().filter(|(k, _)| k == "lot").map(|(_, v)| v.clone()).collect();
    let confirmed = raw.iter().any(|(k, v)| k == "confirme" && v == "1");
    if lots.is_empty() {
        return redirect_with_flash("/stock/echeances", "erreur", "Cochez au moins un lot périmé.");
    }
    if !confirmed {
        // The confirmation names every lot and the total value before anything is written (UI.md §4).
        let db = st.dbmon.db();
        let mut shown = Vec::new();
        let mut total = 0;
        for number in &lots {
            let Some(l) = store::stock::lot_by_number(db.conn(), number).await.ok().flatten() else { continue };
            let Some(p) = store::stock::product(db.conn(), l.product_id).await.ok().flatten() else { continue };
            let value = domain::money::amount(l.quantity_remaining, l.unit_cost).unwrap_or(0);
            total += value;
            shown.push((l.lot_number, p.code, qty(l.quantity_remaining, &p.base_unit), fmt_money(value)));
        }
        // APPRO writes off MP lots and sees their value; PRODUCTION writes off PF lots and sees none.
        let show_values = sees_value(id.role, "MP");
        let mut text = format!(
            "Déclarer la perte de {} lot(s) périmé(s) : tout leur restant sort du stock (motif « périmé »). Une perte ne s'annule pas.",
            shown.len()
        );
        if show_values {
            text.push_str(&format!(" Valeur totale : {}.", fmt_money(total)));
        }
        let p = WriteOffPage {
            layout: Layout::for_page("Déclarer la perte", "/stock/echeances", &pc),
            text,
            lots: shown,
            show_values,
        };
        return page(StatusCode::OK, p, &pc);
    }
    let key = raw.iter().find(|(k, _)| k == "_commande").map(|(_, v)| v.as_str()).unwrap_or_default();
    let idem = crate::api::idempotency::Idem::from_form(
        key,
        &id,
        "/api/stock/losses/write-off",
        &serde_json::json!({ "lots": lots }),
    );
    let res = crate::api::idempotency::run_value(&st, idem, |idem| {
        crate::api::stock::write_off(&st, &id, &pc.ctx, lots.clone(), idem)
    });
    match res.await {
        Ok((_, b, _)) => {
            let items = b["items"].as_array().cloned().unwrap_or_default();
            let refs: Vec<&str> = items.iter().filter_map(|l| l["reference"].as_str()).collect();
            redirect_with_flash(
                "/stock/echeances",
                "succes",
                &format!(
                    "{} perte(s) enregistrée(s) ({}), valeur {}.",
                    items.len(),
                    refs.join(", "),
                    fmt_money(b["totalValue"].as_i64().unwrap_or(0))
                ),
            )
        }
        Err(e) => redirect_with_flash("/stock/echeances", "erreur", &e.message),
    }
}

// ---- Mouvements --------------------------------------------------------------------------------------------------

fn origin_label(origin: &str) -> &str {
    match origin {
        "RECEPTION" => "Réception",
        "LOSS" => "Perte",
        "INVENTORY_IN" => "Comptage (surplus)",
        "INVENTORY_OUT" => "Comptage (manquant)",
        "PRODUCTION_OUT" => "Production (consommation)",
        "PRODUCTION_IN" => "Production (fabrication)",
        "PRODUCTION_CANCEL" => "Annulation de production",
        "SALE" => "Livraison",
        "RETURN" => "Retour client",
        other => other,
    }
}

async fn movements(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let page_no = page_of(&raw);
    let value = |k| get_of(&raw, k);
    let q = crate::api::stock::MovementQuery {
        product: Some(value("produit")).filter(|v| !v.is_empty()),
        lot: Some(value("lot")).filter(|v| !v.is_empty()),
        direction: Some(value("sens")).filter(|v| !v.is_empty()),
        origin: Some(value("origine")).filter(|v| !v.is_empty()),
        from: NaiveDate::parse_from_str(&value("du"), "%Y-%m-%d").ok(),
        to: NaiveDate::parse_from_str(&value("au"), "%Y-%m-%d").ok(),
        page: None,
        page_size: None,
    };
    let filters = vec![
        Filter { name: "produit", label: "Produit (code)", kind: "text", value: value("produit"), options: Vec::new() },
        Filter { name: "lot", label: "Lot", kind: "text", value: value("lot"), options: Vec::new() },
        Filter {
            name: "sens",
            label: "Sens",
            kind: "select",
            value: value("sens"),
            options: vec![
                ("".into(), "Tous".into()),
                ("IN".into(), "Entrées".into()),
                ("OUT".into(), "Sorties".into()),
            ],
        },
        Filter {
            name: "origine",
            label: "Origine",
            kind: "select",
            value: value("origine"),
            options: std::iter::once(("".to_string(), "Toutes".to_string()))
                .chain(
                    ["RECEPTION", "LOSS", "INVENTORY_IN", "INVENTORY_OUT", "PRODUCTION_OUT", "PRODUCTION_IN", "SALE"]
                        .iter()
                        .map(|o| (o.to_string(), origin_label(o).to_string())),
                )
                .collect(),
        },
        Filter { name: "du", label: "Du", kind: "date", value: value("du"), options: Vec::new() },
        Filter { name: "au", label: "Au", kind: "date", value: value("au"), options: Vec::new() },
    ];
    let db = st.dbmon.db();
    let (rows, total, intro) = match crate::api::stock::movement_filter(db, id.role, &q).await {
        Ok(f) => match store::stock::movements(db, &f, (page_no - 1) * PAGE_SIZE, PAGE_SIZE).await {
            Ok((rows, total)) => {
                let labels = store::stock::movement_labels(db, &rows).await.unwrap_or_default();
                let out: Vec<Row> = rows
                    .iter()
                    .zip(labels)
                    .map(|(m, (lot, product, unit))| Row {
                        key: m.id.to_string(),
                        cells: vec![
                            Cell::text(domain::format::datetime_algiers(m.created_at.timestamp())),
                            Cell::link(&lot, format!("/stock/lots/{lot}")),
                            Cell::code(product),
                            if m.direction == "IN" {
                                Cell::badge("Entrée", "vert")
                            } else {
                                Cell::badge("Sortie", "gris")
                            },
                            Cell::text(qty(m.quantity, &unit)),
                            Cell::text(origin_label(&m.origin)),
                            Cell::text(m.source_reference.clone().unwrap_or_else(|| "—".into())),
                            Cell::text(qty(m.remaining_after, &unit)),
                        ],
                    })
                    .collect();
                (out, total, String::new())
            }
            Err(e) => return super::unavailable_page(&ApiError::from(e).message),
        },
        Err(e) => (Vec::new(), 0, e.message),
    };
    let (prev, next, summary) = pager("/stock/mouvements", &filters, page_no, total);
    let p = TablePage {
        layout: Layout::for_page("Mouvements", "/stock/mouvements", &pc),
        crumb: "Stock › Mouvements".into(),
        path: "/stock/mouvements",
        intro,
        actions: Vec::new(),
        filters,
        caption: "Registre des mouvements, du plus récent au plus ancien".into(),
        headers: vec![
            ("Date", false),
            ("Lot", false),
            ("Produit", false),
            ("Sens", false),
            ("Quantité", true),
            ("Origine", false),
            ("Document", false),
            ("Restant après", true),
        ],
        rows,
        selection: None,
        empty: "Aucun mouvement ne correspond à ces filtres.",
        prev,
        next,
        summary,
    };
    page(StatusCode::OK, p, &pc)
}

// ---- Pertes ------------------------------------------------------------------------------------------------------

fn reason_label(reason: &str) -> &str {
    match reason {
        "EXPIRED" => "Périmé",
        "DAMAGED" => "Abîmé",
        "QC_FAILED" => "Non conforme",
        "OTHER" => "Autre",
        other => other,
    }
}

async fn losses(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let page_no = page_of(&raw);
    let db = st.dbmon.db();
    let (rows, total) =
        match store::stock::losses(db, crate::api::stock::loss_kinds(id.role), (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
            .await
        {
            Ok(x) => x,
            Err(e) => return super::unavailable_page(&ApiError::from(e).message),
        };
    let users = store::identity::list_users(db).await.unwrap_or_default();
    let show_values = matches!(id.role, Role::Admin | Role::Comptable | Role::Appro);
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(l, lot, product, unit)| {
            let author = users
                .iter()
                .find(|u| Some(u.id) == l.declared_by)
                .map(|u| format!("{} {}", u.first_name, u.last_name))
                .unwrap_or_else(|| "—".into());
            let mut cells = vec![
                Cell::code(&l.reference),
                Cell::text(fmt_date(l.business_date)),
                Cell::link(&lot, format!("/stock/lots/{lot}")),
                Cell::code(product),
                Cell::text(qty(l.quantity, &unit)),
                Cell::text(reason_label(&l.reason)),
                Cell::text(author),
            ];
            if show_values {
                cells.insert(5, Cell::text(fmt_money(l.value)));
            }
            Row { key: l.reference, cells }
        })
        .collect();
    let mut headers = vec![
        ("Référence", false),
        ("Date", false),
        ("Lot", false),
        ("Produit", false),
        ("Quantité", true),
        ("Motif", false),
        ("Auteur", false),
    ];
    if show_values {
        headers.insert(5, ("Valeur", true));
    }
    let (prev, next, summary) = pager("/stock/pertes", &[], page_no, total);
    let p = TablePage {
        layout: Layout::for_page("Pertes", "/stock/pertes", &pc),
        crumb: "Stock › Pertes".into(),
        path: "/stock/pertes",
        intro: "Une perte se déclare depuis la fiche du lot ; les lots périmés se sortent depuis les échéances DLC."
            .into(),
        actions: Vec::new(),
        filters: Vec::new(),
        caption: "Pertes déclarées".into(),
        headers,
        rows,
        selection: None,
        empty: "Aucune perte déclarée.",
        prev,
        next,
        summary,
    };
    page(StatusCode::OK, p, &pc)
}

pub fn router() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route("/stock", get(health))
        .route("/stock/echeances", get(echeances))
        .route("/stock/echeances/perte", post(write_off))
        .route("/stock/mouvements", get(movements))
        .route("/stock/pertes", get(losses))
}
