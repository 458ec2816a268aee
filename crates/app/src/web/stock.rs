//! Stock pages (UI.md §3 rows 30, 31, 45–47): stock per product, lots, receptions (list, new with lines, view). They
//! call the same functions as the JSON API and show its refusals next to the fields.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use domain::identity::Role;
use domain::money::{fmt_money, parse_money, parse_qty};
use domain::stock::{LotStatus, Unit, fmt_date, fmt_qty};
use serde::Deserialize;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::idempotency::{Idem, run_value};
use crate::api::stock::{ReceptionBody, ReceptionLineBody};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

fn qty(milli: i64, unit: &str) -> String {
    fmt_qty(milli, Unit::parse(unit).unwrap_or(Unit::Kg))
}

fn lot_badge(status: &str, reason: Option<&str>) -> (&'static str, &'static str) {
    match LotStatus::from_codes(status, reason) {
        Some(s @ LotStatus::Available) => ("vert", s.label_fr()),
        Some(s @ LotStatus::Quarantine) => ("ambre", s.label_fr()),
        Some(s @ LotStatus::Blocked(_)) => ("rouge", s.label_fr()),
        Some(s @ LotStatus::Consumed) => ("gris", s.label_fr()),
        None => ("gris", "Inconnu"),
    }
}

fn shows_values(role: Role) -> bool {
    role != Role::Production
}

// ---- receptions --------------------------------------------------------------------------------------------------

struct ReceptionRow {
    reference: String,
    date: String,
    ht: String,
    ttc: String,
}

#[derive(Template)]
#[template(path = "receptions.html")]
struct ReceptionsPage {
    layout: Layout,
    rows: Vec<ReceptionRow>,
    show_values: bool,
    can_create: bool,
    prev: Option<String>,
    next: Option<String>,
    summary: String,
}

async fn receptions(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let page_no = super::views::page_of(&raw);
    let all = match store::procurement::list(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let (prev, next, summary) = super::views::pager("/appro/receptions", &[], page_no, all.len() as u64);
    let size = super::views::PAGE_SIZE as usize;
    let rows = all
        .iter()
        .skip((page_no as usize - 1) * size)
        .take(size)
        .map(|r| ReceptionRow {
            reference: r.reference.clone(),
            date: fmt_date(r.reception_date),
            ht: fmt_money(r.total_ht),
            ttc: fmt_money(r.total_ttc),
        })
        .collect();
    let p = ReceptionsPage {
        layout: Layout::for_page("Réceptions", "/appro/receptions", &pc),
        rows,
        show_values: shows_values(id.role),
        can_create: matches!(id.role, Role::Admin | Role::Appro),
        prev,
        next,
        summary,
    };
    page(StatusCode::OK, p, &pc)
}

const LINES: usize = 5;

#[derive(Default, Clone)]
struct LineForm {
    product: String,
    quantity: String,
    cost: String,
    tva: String,
    supplier_lot: String,
    dlc: String,
    /// `(field, message)` of the API's refusals for this line.
    errors: Vec<(String, String)>,
}

impl LineForm {
    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|(f, _)| f == field)
    }

    fn messages(&self, field: &str) -> Vec<String> {
        self.errors.iter().filter(|(f, _)| f == field).map(|(_, m)| m.clone()).collect()
    }
}

#[derive(Default, Clone)]
struct ReceptionForm {
    /// The purchase order received against (`?bc=`), empty for a direct reception.
    bc: String,
    supplier: String,
    reception_date: String,
    delivery_note: String,
    lines: Vec<LineForm>,
}

#[derive(Template)]
#[template(path = "reception_new.html")]
struct NewReceptionPage {
    layout: Layout,
    form: ReceptionForm,
    suppliers: Vec<(String, String)>,
    products: Vec<(String, String, String)>,
    tvas: Vec<(String, &'static str)>,
    /// `(anchor, message)` for the summary at the top.
    errors: Vec<(String, String)>,
}

async fn new_reception_page(
    st: &AppState,
    pc: &PageCtx,
    form: ReceptionForm,
    errors: Vec<(String, String)>,
    status: StatusCode,
) -> Response {
    let db = st.dbmon.db();
    let suppliers = store::catalogue::list_suppliers(db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.active)
        .map(|s| (s.code, s.raison_sociale))
        .collect();
    let products = store::catalogue::list_products(db, "MP")
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.active && p.stock_tracked)
        .map(|p| (p.code, p.name, p.base_unit.to_lowercase()))
        .collect();
    let mut layout = Layout::for_page("Nouvelle réception", "/appro/receptions", pc);
    if !errors.is_empty() {
        layout.title = "Nouvelle réception (à corriger)".into();
    }
    let p = NewReceptionPage {
        layout,
        form,
        suppliers,
        products,
        tvas: vec![("1900".into(), "19 %"), ("900".into(), "9 %"), ("0".into(), "0 %")],
        errors,
    };
    page(status, p, pc)
}

async fn new_reception(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let mut form = ReceptionForm {
        reception_date: today.format("%Y-%m-%d").to_string(),
        lines: vec![LineForm { tva: "1900".into(), ..Default::default() }; LINES],
        ..Default::default()
    };
    // Against an order: its supplier, and per line the quantity still due; price and rate come from the order.
    if let Some(bc) = q.get("bc")
        && let Ok(Some((o, lines, _))) = store::purchase::detail(st.dbmon.db().conn(), bc).await
    {
        form.bc = o.reference.clone();
        form.supplier =
            store::purchase::supplier_names(st.dbmon.db().conn(), o.supplier_id).await.unwrap_or_default().0;
        let due = lines.iter().filter(|(l, _, _)| l.quantity_received < l.quantity_ordered);
        for (row, (l, code, _)) in form.lines.iter_mut().zip(due) {
            row.product = code.clone();
            row.quantity = domain::money::fmt_qty_input(l.quantity_ordered - l.quantity_received);
            row.tva = l.tva_rate.to_string();
        }
    }
    new_reception_page(&st, &pc, form, Vec::new(), StatusCode::OK).await
}

/// The id of the input a field error points at.
fn anchor(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("lines[")
        && let Some((i, name)) = rest.split_once("].")
    {
        let input = match name {
            "productCode" => "product",
            "quantity" => "quantity",
            "unitCostHt" => "cost",
            "tvaRate" => "tva",
            "supplierLotNumber" => "supplier_lot",
            _ => "dlc",
        };
        return format!("{input}_{i}");
    }
    match field {
        "supplierCode" => "supplier".into(),
        _ => "reception_date".into(),
    }
}

async fn create_reception(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<Vec<(String, String)>>,
) -> Response {
    let f: HashMap<String, String> = raw.into_iter().collect();
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let mut form = ReceptionForm {
        bc: get("bc"),
        supplier: get("supplier"),
        reception_date: get("reception_date"),
        delivery_note: get("delivery_note"),
        lines: (0..LINES)
            .map(|i| LineForm {
                product: get(&format!("product_{i}")),
                quantity: get(&format!("quantity_{i}")),
                cost: get(&format!("cost_{i}")),
                tva: get(&format!("tva_{i}")),
                supplier_lot: get(&format!("supplier_lot_{i}")),
                dlc: get(&format!("dlc_{i}")),
                errors: Vec::new(),
            })
            .collect(),
    };
    // Typing errors are caught here, in the user's words; the rules are the API's.
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut lines = Vec::new();
    let mut index = Vec::new();
    for (i, l) in form.lines.iter_mut().enumerate() {
        if l.product.is_empty() {
            continue;
        }
        let quantity = parse_qty(&l.quantity);
        if quantity.is_none() {
            l.errors.push(("quantity".into(), "Quantité attendue, par exemple 12,5.".into()));
            errors.push((format!("quantity_{i}"), format!("Ligne {} : quantité illisible.", i + 1)));
        }
        // Against an order an empty cost takes the order line's price.
        let from_order = l.cost.is_empty() && !form.bc.is_empty();
        let cost = if from_order { None } else { parse_money(&l.cost) };
        if cost.is_none() && !from_order {
            l.errors.push(("unitCostHt".into(), "Montant attendu en dinars, par exemple 1 234,50.".into()));
            errors.push((format!("cost_{i}"), format!("Ligne {} : coût illisible.", i + 1)));
        }
        let dlc = if l.dlc.is_empty() { None } else { NaiveDate::parse_from_str(&l.dlc, "%Y-%m-%d").ok() };
        lines.push(ReceptionLineBody {
            product_code: l.product.clone(),
            quantity: quantity.unwrap_or(0),
            unit_cost_ht: cost,
            tva_rate: l.tva.parse().ok(),
            supplier_lot_number: Some(l.supplier_lot.clone()).filter(|s| !s.is_empty()),
            dlc,
            manufacture_date: None,
        });
        index.push(i);
    }
    if form.supplier.is_empty() {
        errors.push(("supplier".into(), "Choisissez le fournisseur.".into()));
    }
    if lines.is_empty() {
        errors.push(("product_0".into(), "Ajoutez au moins une ligne.".into()));
    }
    if !errors.is_empty() {
        return new_reception_page(&st, &pc, form, errors, StatusCode::BAD_REQUEST).await;
    }
    let body = ReceptionBody {
        supplier_code: form.supplier.clone(),
        purchase_order_reference: Some(form.bc.clone()).filter(|b| !b.is_empty()),
        reception_date: NaiveDate::parse_from_str(&form.reception_date, "%Y-%m-%d").ok(),
        supplier_delivery_note: Some(form.delivery_note.clone()),
        supplier_invoice_number: None,
        lines,
    };
    let idem = Idem::from_form(&get("_commande"), &id, "/api/receptions", &serde_json::json!(body));
    let res = run_value(&st, idem, |idem| crate::api::stock::receive(&st, &body, &id, &pc.ctx, idem)).await;
    match res {
        Ok((_, r, _)) => {
            let reference = r["reception"]["reference"].as_str().unwrap_or_default().to_string();
            let mut text = format!("Réception {reference} enregistrée.");
            for w in r["warnings"].as_array().into_iter().flatten() {
                text.push(' ');
                text.push_str(w["message"].as_str().unwrap_or_default());
            }
            redirect_with_flash(
                &format!("/appro/receptions/{reference}"),
                if text.contains("Attention") { "avertissement" } else { "succes" },
                &text,
            )
        }
        Err(e) => {
            let fields = e.details["fields"].as_array().cloned().unwrap_or_default();
            if fields.is_empty() {
                errors.push(("supplier".into(), e.message.clone()));
            }
            for fe in fields {
                let field = fe["field"].as_str().unwrap_or_default();
                let message = fe["message"].as_str().unwrap_or_default().to_string();
                // `lines[k]` counts the lines sent; `index` maps them back to the form's rows.
                if let Some(rest) = field.strip_prefix("lines[")
                    && let Some((k, name)) = rest.split_once("].")
                    && let Some(&row) = k.parse::<usize>().ok().and_then(|k| index.get(k))
                {
                    form.lines[row].errors.push((name.to_string(), message.clone()));
                    errors.push((anchor(&format!("lines[{row}].{name}")), format!("Ligne {} : {message}", row + 1)));
                } else {
                    errors.push((anchor(field), message));
                }
            }
            new_reception_page(&st, &pc, form, errors, e.status).await
        }
    }
}

struct LineView {
    lot: String,
    product: String,
    quantity: String,
    ht: String,
    dlc: String,
    tone: &'static str,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "reception.html")]
struct ReceptionPage {
    layout: Layout,
    /// "Étiquettes des lots (PDF)", when this role prints labels.
    labels_url: Option<String>,
    reference: String,
    supplier: String,
    date: String,
    delivery_note: String,
    ht: String,
    tva: String,
    ttc: String,
    lines: Vec<LineView>,
    show_values: bool,
}

async fn reception(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(reference): Path<String>) -> Response {
    let db = st.dbmon.db();
    let (r, supplier_code, lines) = match store::procurement::detail(db.conn(), &reference).await {
        Ok(Some(x)) => x,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let supplier = store::catalogue::supplier_by_code(db.conn(), &supplier_code)
        .await
        .ok()
        .flatten()
        .map(|s| format!("{} ({})", s.raison_sociale, s.code))
        .unwrap_or(supplier_code);
    let mut views = Vec::new();
    for (l, code, lot, status) in lines {
        let unit = store::stock::product(db.conn(), l.product_id)
            .await
            .ok()
            .flatten()
            .map(|p| p.base_unit)
            .unwrap_or_default();
        let (tone, label) = lot_badge(&status, None);
        views.push(LineView {
            lot,
            product: code,
            quantity: qty(l.quantity, &unit),
            ht: fmt_money(l.amount_ht),
            dlc: l.dlc.map(fmt_date).unwrap_or_else(|| "—".into()),
            tone,
            status: label,
        });
    }
    let p = ReceptionPage {
        labels_url: crate::access::may_open(id.role, "/api/receptions/{reference}/labels")
            .then(|| format!("/api/receptions/{}/labels", r.reference)),
        layout: Layout::for_page(&r.reference, "/appro/receptions", &pc),
        reference: r.reference.clone(),
        supplier,
        date: fmt_date(r.reception_date),
        delivery_note: r.supplier_delivery_note.clone().unwrap_or_else(|| "—".into()),
        ht: fmt_money(r.total_ht),
        tva: fmt_money(r.total_tva),
        ttc: fmt_money(r.total_ttc),
        lines: views,
        show_values: shows_values(id.role),
    };
    page(StatusCode::OK, p, &pc)
}

// ---- lots and stock per product -----------------------------------------------------------------------------------

struct LotRow {
    number: String,
    product: String,
    dlc: String,
    remaining: String,
    tone: &'static str,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "lots.html")]
struct LotsPage {
    layout: Layout,
    search: String,
    search_error: Option<String>,
    rows: Vec<LotRow>,
    statut: String,
    statuses: Vec<(&'static str, &'static str)>,
    prev: Option<String>,
    next: Option<String>,
    summary: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LotFilter {
    statut: String,
    page: String,
    /// A lot number typed, or a label scanned (`MCG:LOT:…`): the lot card opens.
    q: String,
}

async fn lots(State(st): State<AppState>, pc: PageCtx, id: Identity, Query(q): Query<LotFilter>) -> Response {
    let db = st.dbmon.db();
    // A scanned label opens its lot card (DOMAIN.md §12.2); so does an exact lot number.
    let mut search_error = None;
    if !q.q.trim().is_empty() {
        match crate::print::scanned_lot(&st, &q.q) {
            Ok(Some(number)) => return axum::response::Redirect::to(&format!("/stock/lots/{number}")).into_response(),
            Ok(None) => {
                let typed = q.q.trim().to_uppercase();
                match store::stock::lot_by_number(db.conn(), &typed).await {
                    Ok(Some(l)) => {
                        return axum::response::Redirect::to(&format!("/stock/lots/{}", l.lot_number)).into_response();
                    }
                    _ => search_error = Some(format!("Aucun lot {typed}.")),
                }
            }
            Err(e) => search_error = Some(e.message),
        }
    }
    let today = domain::stock::today_algiers(st.clock.now());
    let mut products = store::catalogue::list_products(db, "PF").await.unwrap_or_default();
    if id.role != Role::Commercial {
        products.extend(store::catalogue::list_products(db, "MP").await.unwrap_or_default());
    }
    let mut rows = Vec::new();
    for p in &products {
        let mut ls = store::stock::lots_of(db.conn(), p.id).await.unwrap_or_default();
        ls.retain(|l| if q.statut.is_empty() { l.status != "CONSUMED" } else { l.status == q.statut });
        for l in ls {
            let facts = store::stock::lot_facts(&l);
            let (tone, status) = if facts.expired(today) && l.quantity_remaining > 0 {
                ("rouge", "Périmé")
            } else {
                lot_badge(&l.status, l.block_reason.as_deref())
            };
            let left = l.dlc.map(|d| (d - today).num_days());
            let dlc = match (l.dlc, left) {
                (Some(d), Some(n)) if n >= 0 => format!("{} (J+{n})", fmt_date(d)),
                (Some(d), _) => fmt_date(d),
                _ => "—".into(),
            };
            rows.push((
                domain::stock::fefo_key(&facts),
                LotRow {
                    number: l.lot_number,
                    product: p.code.clone(),
                    dlc,
                    remaining: qty(l.quantity_remaining, &p.base_unit),
                    tone,
                    status,
                },
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let page_no = q.page.parse::<u64>().ok().filter(|p| *p >= 1).unwrap_or(1);
    let filters = [super::views::Filter {
        name: "statut",
        label: "Statut",
        kind: "select",
        value: q.statut.clone(),
        options: Vec::new(),
    }];
    let (prev, next, summary) = super::views::pager("/stock/lots", &filters, page_no, rows.len() as u64);
    let size = super::views::PAGE_SIZE as usize;
    let p = LotsPage {
        search: q.q.trim().to_string(),
        search_error,
        layout: Layout::for_page("Lots", "/stock/lots", &pc),
        rows: rows.into_iter().skip((page_no as usize - 1) * size).take(size).map(|r| r.1).collect(),
        prev,
        next,
        summary,
        statut: q.statut,
        statuses: vec![
            ("", "En stock (tous sauf épuisés)"),
            ("AVAILABLE", "Disponibles"),
            ("QUARANTINE", "En quarantaine"),
            ("BLOCKED", "Bloqués"),
            ("CONSUMED", "Épuisés"),
        ],
    };
    page(StatusCode::OK, p, &pc)
}

struct StockRow {
    code: String,
    name: String,
    total: String,
    usable: String,
    quarantine: String,
    blocked: String,
    value: String,
    below: bool,
}

#[derive(Template)]
#[template(path = "stock_products.html")]
struct StockPage {
    layout: Layout,
    kind: &'static str,
    show_mp: bool,
    show_values: bool,
    rows: Vec<StockRow>,
    /// The date asked for (`YYYY-MM-DD`), empty for now.
    date: String,
    /// "au 31/03/2025 (fin de journée)" when a past date is shown.
    at: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KindQuery {
    #[serde(rename = "type")]
    kind: String,
    /// `YYYY-MM-DD`: the stock at the end of that day, from the ledger.
    date: String,
}

async fn stock_products(State(st): State<AppState>, pc: PageCtx, id: Identity, Query(q): Query<KindQuery>) -> Response {
    let kind = if id.role == Role::Commercial || q.kind == "pf" { "PF" } else { "MP" };
    let db = st.dbmon.db();
    let today = domain::stock::today_algiers(st.clock.now());
    let show_values = matches!(id.role, Role::Admin | Role::Comptable) || (id.role == Role::Appro && kind == "MP");
    let mut rows = Vec::new();
    let products = store::catalogue::list_products(db, kind).await.unwrap_or_default();
    if let Ok(date) = NaiveDate::parse_from_str(q.date.trim(), "%Y-%m-%d") {
        // Stock at a past date: one read per lot alive that day (DECISIONS.md), totals only.
        let at = match store::stock::stock_at(db, date).await {
            Ok(a) => a,
            Err(e) => return super::unavailable_page(&ApiError::from(e).message),
        };
        let dash = || "—".to_string();
        for p in products {
            let total = at.iter().find(|x| x.0 == p.id).map_or(0, |x| x.1);
            rows.push(StockRow {
                total: qty(total, &p.base_unit),
                usable: dash(),
                quarantine: dash(),
                blocked: dash(),
                value: dash(),
                below: false,
                code: p.code,
                name: p.name,
            });
        }
        let p = StockPage {
            layout: Layout::for_page("Stock par produit", "/stock/produits", &pc),
            kind,
            show_mp: id.role != Role::Commercial,
            show_values: false,
            rows,
            date: q.date.trim().to_string(),
            at: format!("au {} (fin de journée)", fmt_date(date)),
        };
        return page(StatusCode::OK, p, &pc);
    }
    for p in products {
        let lots = store::stock::lots_of(db.conn(), p.id).await.unwrap_or_default();
        let sum = |f: &dyn Fn(&store::stock::Lot) -> bool| {
            lots.iter().filter(|l| f(l)).map(|l| l.quantity_remaining).sum::<i64>()
        };
        let usable = sum(&|l| store::stock::lot_facts(l).usable(today));
        let value: i64 =
            lots.iter().map(|l| domain::money::amount(l.quantity_remaining, l.unit_cost).unwrap_or(0)).sum();
        rows.push(StockRow {
            total: qty(sum(&|_| true), &p.base_unit),
            usable: qty(usable, &p.base_unit),
            quarantine: qty(sum(&|l| l.status == "QUARANTINE"), &p.base_unit),
            blocked: qty(sum(&|l| l.status == "BLOCKED"), &p.base_unit),
            value: fmt_money(value),
            below: usable < p.min_stock,
            code: p.code,
            name: p.name,
        });
    }
    let p = StockPage {
        layout: Layout::for_page("Stock par produit", "/stock/produits", &pc),
        kind,
        show_mp: id.role != Role::Commercial,
        show_values,
        rows,
        date: String::new(),
        at: String::new(),
    };
    page(StatusCode::OK, p, &pc)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/appro/receptions", get(receptions))
        .route("/appro/receptions/nouvelle", get(new_reception).post(create_reception))
        .route("/appro/receptions/{reference}", get(reception))
        .route("/stock/lots", get(lots))
        .route("/stock/produits", get(stock_products))
}

// ---- one lot --------------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "lot.html")]
struct LotPage {
    layout: Layout,
    /// "Étiquette PDF", when this role prints labels.
    label_url: Option<String>,
    number: String,
    tone: &'static str,
    status: &'static str,
    facts: Vec<(&'static str, String)>,
    can_qc: bool,
    can_block: bool,
    can_unblock: bool,
    can_lose: bool,
    unit: String,
    expired_block: bool,
    movements: Vec<(String, &'static str, String, String, String, String)>,
}

async fn lot_page(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(number): Path<String>) -> Response {
    let db = st.dbmon.db();
    let Some(lot) = store::stock::lot_by_number(db.conn(), &number).await.ok().flatten() else {
        return super::not_found().await;
    };
    let Some(p) = store::stock::product(db.conn(), lot.product_id).await.ok().flatten() else {
        return super::not_found().await;
    };
    if id.role == Role::Commercial && p.kind != "PF" {
        return super::not_found().await;
    }
    let (tone, status) = lot_badge(&lot.status, lot.block_reason.as_deref());
    let mut facts = vec![
        ("Produit", format!("{} — {}", p.code, p.name)),
        ("Origine", lot.origin.clone()),
        ("DLC", lot.dlc.map(fmt_date).unwrap_or_else(|| "—".into())),
        ("Restant", qty(lot.quantity_remaining, &p.base_unit)),
        ("Quantité initiale", qty(lot.initial_quantity, &p.base_unit)),
        ("Lot fournisseur", lot.supplier_lot_number.clone().unwrap_or_else(|| "—".into())),
    ];
    if let Some(note) = &lot.block_note {
        facts.push(("Motif du blocage", note.clone()));
    }
    let costs = matches!(id.role, Role::Admin | Role::Comptable) || (id.role == Role::Appro && p.kind == "MP");
    if costs {
        facts.push(("Coût unitaire HT", fmt_money(lot.unit_cost)));
    }
    let movements = store::stock::movements(
        db,
        &store::stock::MovementFilter { lot_id: Some(lot.id), ..Default::default() },
        0,
        200,
    )
    .await
    .map(|x| x.0)
    .unwrap_or_default()
    .into_iter()
    .map(|m| {
        (
            domain::format::datetime_algiers(m.created_at.timestamp()),
            if m.direction == "IN" { "Entrée" } else { "Sortie" },
            m.origin,
            m.source_reference.unwrap_or_else(|| "—".into()),
            qty(m.quantity, &p.base_unit),
            qty(m.remaining_after, &p.base_unit),
        )
    })
    .collect();
    let page_ = LotPage {
        label_url: crate::access::may_open(id.role, "/api/stock/lots/{number}/label")
            .then(|| format!("/api/stock/lots/{}/label", lot.lot_number)),
        layout: Layout::for_page(&lot.lot_number, "/stock/lots", &pc),
        number: lot.lot_number.clone(),
        tone,
        status,
        facts,
        can_qc: lot.status == "QUARANTINE" && matches!(id.role, Role::Admin | Role::Production),
        can_block: matches!(lot.status.as_str(), "AVAILABLE" | "QUARANTINE") && id.role == Role::Admin,
        can_unblock: lot.status == "BLOCKED"
            && lot.block_reason.as_deref() != Some("EXPIRED")
            && id.role == Role::Admin,
        can_lose: lot.status != "CONSUMED" && crate::api::stock::may_declare_loss(id.role, &p.kind),
        unit: p.base_unit.to_lowercase(),
        expired_block: lot.block_reason.as_deref() == Some("EXPIRED"),
        movements,
    };
    page(StatusCode::OK, page_, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DecisionForm {
    decision: String,
    note: String,
    /// The page to come back to (the QC queue posts here too); the lot page otherwise.
    retour: String,
    #[serde(rename = "_csrf")]
    _csrf: String,
}

/// Applies a lot decision from a page and comes back to the lot with the outcome.
/// The QC queue (UI.md row 56), the one other page a lot decision may come back to.
const QC_QUEUE: &str = "/production/qualite";

#[allow(clippy::too_many_arguments)]
async fn lot_decision(
    st: &AppState,
    pc: &PageCtx,
    id: &Identity,
    back: &str,
    number: String,
    action: &'static str,
    note: String,
    decide: impl FnOnce(&domain::stock::LotFacts) -> Result<LotStatus, domain::rejection::Rejection>
    + Clone
    + Send
    + 'static,
) -> Response {
    let (actor, now) = (id.actor(&pc.ctx), st.clock.now());
    let back = if back == QC_QUEUE { back.to_string() } else { format!("/stock/lots/{number}") };
    let res = st
        .dbmon
        .db()
        .write(|tx| {
            let (number, note, actor, decide) = (number.clone(), note.clone(), actor.clone(), decide.clone());
            Box::pin(
                async move { store::stock::change_status(&**tx, &number, action, &note, decide, &actor, now).await },
            )
        })
        .await;
    match res {
        Ok(l) => {
            let (_, label) = lot_badge(&l.status, l.block_reason.as_deref());
            redirect_with_flash(&back, "succes", &format!("Lot {} : {}.", l.lot_number, label.to_lowercase()))
        }
        Err(e) => redirect_with_flash(&back, "erreur", &crate::auth::session::op_err(st, e).message),
    }
}

async fn lot_qc(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(number): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let conforme = f.decision == "CONFORME";
    let today = domain::stock::today_algiers(st.clock.now());
    let note = f.note.clone();
    let action = if conforme { "LOT_QC_RELEASED" } else { "LOT_QC_REFUSED" };
    lot_decision(&st, &pc, &id, &f.retour, number, action, f.note, move |l| {
        domain::stock::qc_release(l, conforme, &note, today)
    })
    .await
}

async fn lot_block(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(number): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let note = f.note.clone();
    lot_decision(&st, &pc, &id, "", number, "LOT_BLOCKED", f.note, move |l| domain::stock::block(l, &note)).await
}

async fn lot_unblock(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(number): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let note = f.note.clone();
    lot_decision(&st, &pc, &id, "", number, "LOT_UNBLOCKED", f.note, move |l| domain::stock::unblock(l, &note, today))
        .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LossForm {
    quantity: String,
    reason: String,
    note: String,
    #[serde(rename = "_commande")]
    commande: String,
    #[serde(rename = "_csrf")]
    _csrf: String,
}

async fn lot_loss(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(number): Path<String>,
    Form(f): Form<LossForm>,
) -> Response {
    let back = format!("/stock/lots/{number}");
    let db = st.dbmon.db();
    let Some(lot) = store::stock::lot_by_number(db.conn(), &number).await.ok().flatten() else {
        return super::not_found().await;
    };
    let Some(p) = store::stock::product(db.conn(), lot.product_id).await.ok().flatten() else {
        return super::not_found().await;
    };
    if !crate::api::stock::may_declare_loss(id.role, &p.kind) {
        return super::forbidden_page(&st, &id, &axum::http::HeaderMap::new());
    }
    let Some(quantity) = parse_qty(&f.quantity) else {
        return redirect_with_flash(&back, "erreur", "Quantité attendue, par exemple 12,5.");
    };
    let body = crate::api::stock::LossBody {
        lot_number: number.clone(),
        quantity,
        reason: f.reason.clone(),
        note: f.note.clone(),
    };
    let idem = Idem::from_form(&f.commande, &id, "/api/stock/losses", &serde_json::json!(body));
    match run_value(&st, idem, |idem| crate::api::stock::loss(&st, &pc.ctx, &id, body, idem)).await {
        Ok((_, b, _)) => redirect_with_flash(
            &back,
            "succes",
            &format!(
                "Perte {} enregistrée : {}, valeur {}.",
                b["reference"].as_str().unwrap_or_default(),
                qty(b["quantity"].as_i64().unwrap_or(0), &p.base_unit),
                fmt_money(b["value"].as_i64().unwrap_or(0))
            ),
        ),
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

pub fn lot_router() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route("/stock/lots/{number}", get(lot_page))
        .route("/stock/lots/{number}/qc", post(lot_qc))
        .route("/stock/lots/{number}/bloquer", post(lot_block))
        .route("/stock/lots/{number}/debloquer", post(lot_unblock))
        .route("/stock/lots/{number}/perte", post(lot_loss))
}
