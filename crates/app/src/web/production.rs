//! Production pages (UI.md §3 rows 48–55, 57): orders by tab, a new order, the order with its needs or consumptions
//! and its actions (start, complete, reschedule, cancel), recipes with their versions and the new-version form, and
//! the traceability search. They call the JSON API's functions, so the rules and refusals are the API's.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::identity::Role;
use domain::money::{fmt_money, fmt_qty_input, parse_money, parse_qty};
use domain::production::OpStatus;
use domain::stock::{Unit, fmt_date, fmt_qty};
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::idempotency::{Idem, run_value};
use crate::api::production::{CompleteBody, OrderBody, RecipeBody, RecipeItemBody, Transition};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

const ORDERS: &str = "/production/ordres";
const RECIPES: &str = "/production/recettes";

fn qty(milli: i64, unit: &str) -> String {
    fmt_qty(milli, Unit::parse(unit).unwrap_or(Unit::Kg))
}

fn jqty(v: &Value, unit: &Value) -> String {
    v.as_i64().map(|q| qty(q, unit.as_str().unwrap_or("KG"))).unwrap_or_else(|| "—".into())
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

fn jdate(v: &Value) -> String {
    v.as_str().and_then(|d| d.parse().ok()).map(fmt_date).unwrap_or_else(|| "—".into())
}

fn badge(status: OpStatus) -> &'static str {
    match status {
        OpStatus::Pending => "gris",
        OpStatus::InProgress => "bleu",
        OpStatus::Completed => "vert",
        OpStatus::Cancelled => "rouge",
    }
}

fn writer(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Production)
}

/// Costs are shown to ADMIN and COMPTABLE (UI.md row 50); APPRO reads without them (R−), PRODUCTION runs the floor.
fn sees_costs(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Comptable)
}

/// The French lines of an API refusal on a recipe: each field error with its item number, or the message.
fn refusal_lines(e: &ApiError) -> Vec<String> {
    super::refusal_lines(e, "items[", "Élément")
}

// ---- orders list ----------------------------------------------------------------------------------------------

struct OrderRow {
    reference: String,
    product: String,
    batches: i32,
    planned: String,
    target: String,
    produced: String,
    yield_pct: String,
    tone: &'static str,
    status: &'static str,
    blocked: bool,
}

#[derive(Template)]
#[template(path = "production_orders.html")]
struct OrdersPage {
    layout: Layout,
    tabs: Vec<(&'static str, &'static str, usize, bool)>,
    rows: Vec<OrderRow>,
    can_create: bool,
    empty: &'static str,
}

fn tab_of(s: OpStatus) -> &'static str {
    match s {
        OpStatus::Pending => "planifies",
        OpStatus::InProgress => "en-cours",
        OpStatus::Completed => "termines",
        OpStatus::Cancelled => "annules",
    }
}

async fn orders(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let db = st.dbmon.db();
    let all = match store::production::list(db).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let tab = q.get("onglet").map(String::as_str).unwrap_or("planifies");
    let now = st.clock.now();
    let mut rows = Vec::new();
    for (o, p) in &all {
        let status = store::production::status_of(o);
        // UI.md row 48: a planned order that cannot start today is flagged "non démarrable".
        let blocked = store::production::not_startable(db.conn(), o, now).await.unwrap_or(false);
        let row = OrderRow {
            reference: o.reference.clone(),
            product: format!("{} ({})", p.name, p.code),
            batches: o.batch_count,
            planned: fmt_date(o.planned_date),
            target: qty(o.target_quantity, &p.base_unit),
            produced: o.quantity_produced.map(|q| qty(q, &p.base_unit)).unwrap_or_else(|| "—".into()),
            yield_pct: o.yield_bp.map(|b| domain::format::percent_bp(i64::from(b))).unwrap_or_else(|| "—".into()),
            tone: badge(status),
            status: status.label(),
            blocked,
        };
        rows.push((row, tab_of(status)));
    }
    let tabs = [("planifies", "Planifiés"), ("en-cours", "En cours"), ("termines", "Terminés"), ("annules", "Annulés")]
        .into_iter()
        .map(|(k, label)| (k, label, rows.iter().filter(|(_, t)| *t == k).count(), k == tab))
        .collect();
    let empty = match tab {
        "en-cours" => "Aucun ordre en cours.",
        "termines" => "Aucun ordre terminé.",
        "annules" => "Aucun ordre annulé.",
        _ => "Aucun ordre planifié.",
    };
    let p = OrdersPage {
        layout: Layout::for_page("Ordres de production", ORDERS, &pc),
        tabs,
        rows: rows.into_iter().filter(|(_, t)| *t == tab).map(|(r, _)| r).collect(),
        can_create: writer(id.role),
        empty,
    };
    page(StatusCode::OK, p, &pc)
}

// ---- new order ------------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct NewOrderForm {
    product: String,
    batches: String,
    planned: String,
    notes: String,
}

#[derive(Template)]
#[template(path = "production_order_new.html")]
struct NewOrderPage {
    layout: Layout,
    form: NewOrderForm,
    products: Vec<(String, String)>,
    errors: Vec<String>,
}

async fn new_order_page(
    st: &AppState,
    pc: &PageCtx,
    form: NewOrderForm,
    errors: Vec<String>,
    s: StatusCode,
) -> Response {
    let products = match store::production::active_recipes(st.dbmon.db()).await {
        Ok(r) => r.into_iter().filter(|(_, p, _)| p.active).map(|(_, p, _)| (p.code, p.name)).collect(),
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let mut layout = Layout::for_page("Nouvel ordre de production", ORDERS, pc);
    if !errors.is_empty() {
        layout.title = "Nouvel ordre de production (à corriger)".into();
    }
    page(s, NewOrderPage { layout, form, products, errors }, pc)
}

async fn new_order(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let form = NewOrderForm {
        product: q.get("produit").map(|p| p.to_uppercase()).unwrap_or_default(),
        batches: "1".into(),
        planned: q.get("date").cloned().unwrap_or_else(|| today.to_string()),
        notes: String::new(),
    };
    new_order_page(&st, &pc, form, Vec::new(), StatusCode::OK).await
}

async fn create_order(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| raw.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let form =
        NewOrderForm { product: get("product"), batches: get("batches"), planned: get("planned"), notes: get("notes") };
    let mut errors = Vec::new();
    if form.product.is_empty() {
        errors.push("Choisissez le produit fini.".into());
    }
    let batches = form.batches.parse::<i64>().ok();
    if batches.is_none() {
        errors.push("Nombre de fournées illisible (un entier de 1 à 100).".into());
    }
    let planned = chrono::NaiveDate::parse_from_str(&form.planned, "%Y-%m-%d").ok();
    if planned.is_none() {
        errors.push("Date prévue illisible.".into());
    }
    let (Some(batches), Some(planned), true) = (batches, planned, errors.is_empty()) else {
        return new_order_page(&st, &pc, form, errors, StatusCode::BAD_REQUEST).await;
    };
    let body = OrderBody {
        product_code: form.product.clone(),
        batch_count: batches,
        planned_date: planned,
        notes: Some(form.notes.clone()),
    };
    let idem = Idem::from_form(&get("_commande"), &id, "/api/production-orders", &serde_json::json!(body));
    match run_value(&st, idem, |idem| crate::api::production::create_order(&st, &body, &id, &pc.ctx, idem)).await {
        Ok((_, o, _)) => {
            let reference = o["reference"].as_str().unwrap_or_default();
            redirect_with_flash(&format!("{ORDERS}/{reference}"), "succes", &format!("Ordre {reference} planifié."))
        }
        Err(e) => {
            let errors = refusal_lines(&e);
            new_order_page(&st, &pc, form, errors, e.status).await
        }
    }
}

// ---- one order ------------------------------------------------------------------------------------------------

struct NeedRow {
    item: String,
    need: String,
    available: String,
    committed: String,
    missing: String,
    short: bool,
}

struct UsedRow {
    product: String,
    lot: String,
    dlc: String,
    quantity: String,
    cost: String,
}

#[derive(Template)]
#[template(path = "production_order.html")]
struct OrderPage {
    layout: Layout,
    reference: String,
    tone: &'static str,
    status: &'static str,
    facts: Vec<(&'static str, String)>,
    needs: Vec<NeedRow>,
    startable: bool,
    used: Vec<UsedRow>,
    show_costs: bool,
    pf_lot: Option<(String, String)>,
    yield_alert: Option<String>,
    can_start: bool,
    can_complete: bool,
    can_reschedule: bool,
    can_cancel: bool,
    in_progress: bool,
    planned: String,
}

async fn order(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(reference): Path<String>) -> Response {
    let o = match crate::api::production::order_detail(&st, &reference, id.role).await {
        Ok(o) => o,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let status = OpStatus::parse(o["status"].as_str().unwrap_or_default()).unwrap_or(OpStatus::Pending);
    let unit = &o["productUnit"];
    let show_costs = sees_costs(id.role);
    let mut facts = vec![
        ("Produit", format!("{} ({})", text(&o["productName"]), text(&o["productCode"]))),
        ("Recette", format!("version {}", o["recipeVersion"].as_i64().unwrap_or(0))),
        ("Fournées", o["batchCount"].to_string()),
        ("Quantité cible", jqty(&o["targetQuantity"], unit)),
        ("Date prévue", jdate(&o["plannedDate"])),
    ];
    if let Some(t) = o["startedAt"].as_str().and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()) {
        facts.push(("Démarré le", domain::format::datetime_algiers(t.timestamp())));
    }
    let mut yield_alert = None;
    if status == OpStatus::Completed {
        facts.push(("Quantité produite", jqty(&o["quantityProduced"], unit)));
        let (y, tol) = (o["yieldBp"].as_i64().unwrap_or(0), o["lossToleranceBp"].as_i64().unwrap_or(0));
        facts.push((
            "Rendement",
            format!("{} (tolérance ± {})", domain::format::percent_bp(y), domain::format::percent_bp(tol)),
        ));
        if domain::production::outside_tolerance(y, tol) {
            yield_alert = Some(format!(
                "Rendement hors tolérance : {} pour ± {}. Une alerte a été créée.",
                domain::format::percent_bp(y),
                domain::format::percent_bp(tol)
            ));
        }
        let qc = match o["qcStatus"].as_str() {
            Some("PASSED") => "Conforme",
            Some("PENDING") => "En attente",
            _ => "Non conforme",
        };
        facts.push(("Contrôle qualité", qc.to_string()));
        if let Some(n) = o["qcNote"].as_str() {
            facts.push(("Note QC", n.to_string()));
        }
        if show_costs {
            facts.push(("Coût matières", o["consumedCost"].as_i64().map(fmt_money).unwrap_or_default()));
            facts.push(("Coût fluides", o["fluidCost"].as_i64().map(fmt_money).unwrap_or_default()));
            facts.push(("Coût unitaire", o["unitCost"].as_i64().map(fmt_money).unwrap_or_default()));
        }
    }
    if let Some(n) = o["notes"].as_str() {
        facts.push(("Notes", n.to_string()));
    }
    if let Some(r) = o["cancelReason"].as_str() {
        facts.push(("Motif d'annulation", r.to_string()));
    }
    let needs = o["needs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let stocked = n["productCode"].is_string();
            let item = if stocked {
                format!("{} ({})", text(&n["productName"]), text(&n["productCode"]))
            } else {
                format!("{} (fluide, {})", text(&n["name"]), text(&n["unitLabel"]))
            };
            let u = &n["unit"];
            let need = if stocked {
                jqty(&n["need"], u)
            } else {
                format!("{} {}", fmt_qty_input(n["need"].as_i64().unwrap_or(0)), text(&n["unitLabel"]))
            };
            NeedRow {
                item,
                need,
                available: if stocked { jqty(&n["available"], u) } else { "—".into() },
                committed: if stocked { jqty(&n["committedElsewhere"], u) } else { "—".into() },
                missing: if stocked { jqty(&n["missing"], u) } else { "—".into() },
                short: n["missing"].as_i64().unwrap_or(0) > 0,
            }
        })
        .collect();
    let used = o["consumptions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| UsedRow {
            product: format!("{} ({})", text(&c["productName"]), text(&c["productCode"])),
            lot: text(&c["lotNumber"]),
            dlc: jdate(&c["dlc"]),
            quantity: jqty(&c["quantity"], &c["unit"]),
            cost: c["unitCost"].as_i64().map(fmt_money).unwrap_or_default(),
        })
        .collect();
    let pf_lot = o["pfLot"].as_object().map(|l| {
        let s =
            domain::stock::LotStatus::from_codes(l["status"].as_str().unwrap_or_default(), l["blockReason"].as_str())
                .map(|s| s.label_fr())
                .unwrap_or_default();
        (text(&l["lotNumber"]), s.to_string())
    });
    let w = writer(id.role);
    let p = OrderPage {
        layout: Layout::for_page(&text(&o["reference"]), ORDERS, &pc),
        reference: text(&o["reference"]),
        tone: badge(status),
        status: status.label(),
        facts,
        needs,
        startable: o["startable"].as_bool().unwrap_or(false),
        used,
        show_costs,
        pf_lot,
        yield_alert,
        can_start: w && status == OpStatus::Pending,
        can_complete: w && status == OpStatus::InProgress,
        can_reschedule: w && status == OpStatus::Pending,
        can_cancel: w && matches!(status, OpStatus::Pending | OpStatus::InProgress),
        in_progress: status == OpStatus::InProgress,
        planned: text(&o["plannedDate"]),
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActionForm {
    planned_date: String,
    quantity: String,
    qc_status: String,
    qc_note: String,
    weight: String,
    reason: String,
    #[allow(dead_code)]
    _csrf: String,
}

async fn act(st: &AppState, pc: &PageCtx, id: &Identity, reference: &str, change: Transition, done: &str) -> Response {
    let back = format!("{ORDERS}/{}", reference.to_uppercase());
    match crate::api::production::transition(st, reference, id, &pc.ctx, change).await {
        Ok(o) => {
            redirect_with_flash(&back, "succes", &format!("{} {done}.", o["reference"].as_str().unwrap_or(reference)))
        }
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

async fn start(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(reference): Path<String>) -> Response {
    act(&st, &pc, &id, &reference, Transition::Start, "démarré : matières sorties du stock").await
}

async fn complete(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let back = format!("{ORDERS}/{}", reference.to_uppercase());
    let Some(quantity) = parse_qty(&f.quantity) else {
        return redirect_with_flash(&back, "erreur", "Quantité produite illisible (par exemple 45).");
    };
    let weight = if f.weight.trim().is_empty() {
        None
    } else {
        match f.weight.trim().parse::<i64>() {
            Ok(w) => Some(w),
            Err(_) => return redirect_with_flash(&back, "erreur", "Poids réel illisible (en grammes)."),
        }
    };
    let body = CompleteBody {
        quantity_produced: quantity,
        qc_status: f.qc_status.clone(),
        qc_note: Some(f.qc_note.clone()).filter(|n| !n.trim().is_empty()),
        actual_batch_weight_g: weight,
    };
    match crate::api::production::completion_of(&body) {
        Ok(done) => act(&st, &pc, &id, &reference, Transition::Complete(done), "terminé").await,
        Err(r) => redirect_with_flash(&back, "erreur", &r.message),
    }
}

async fn reschedule(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let Ok(d) = chrono::NaiveDate::parse_from_str(&f.planned_date, "%Y-%m-%d") else {
        return redirect_with_flash(&format!("{ORDERS}/{reference}"), "erreur", "Date prévue illisible.");
    };
    act(&st, &pc, &id, &reference, Transition::Reschedule(d), "replanifié").await
}

async fn cancel(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    act(&st, &pc, &id, &reference, Transition::Cancel(f.reason), "annulé").await
}

// ---- recipes --------------------------------------------------------------------------------------------------

struct RecipeRow {
    code: String,
    name: String,
    version: i64,
    output: String,
    items: usize,
    date: String,
}

#[derive(Template)]
#[template(path = "recipes.html")]
struct RecipesPage {
    layout: Layout,
    rows: Vec<RecipeRow>,
    missing: Vec<(String, String)>,
    can_write: bool,
}

async fn recipes(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let db = st.dbmon.db();
    let (active, pfs) =
        match (store::production::active_recipes(db).await, store::catalogue::list_products(db, "PF").await) {
            (Ok(a), Ok(p)) => (a, p),
            (Err(e), _) | (_, Err(e)) => return super::unavailable_page(&ApiError::from(e).message),
        };
    let rows: Vec<RecipeRow> = active
        .iter()
        .map(|(v, p, items)| RecipeRow {
            code: p.code.clone(),
            name: p.name.clone(),
            version: i64::from(v.version),
            output: qty(v.output_quantity, &p.base_unit),
            items: items.len(),
            date: fmt_date(domain::stock::today_algiers(v.created_at)),
        })
        .collect();
    let missing = pfs
        .into_iter()
        .filter(|p| p.active && !rows.iter().any(|r| r.code == p.code))
        .map(|p| (p.code, p.name))
        .collect();
    let p =
        RecipesPage { layout: Layout::for_page("Recettes", RECIPES, &pc), rows, missing, can_write: writer(id.role) };
    page(StatusCode::OK, p, &pc)
}

struct ItemRow {
    kind: &'static str,
    item: String,
    quantity: String,
    cost: String,
}

struct VersionRow {
    version: i64,
    status: String,
    date: String,
    output: String,
    items: Vec<ItemRow>,
    tolerance: String,
    shelf_life: String,
}

#[derive(Template)]
#[template(path = "recipe.html")]
struct RecipePage {
    layout: Layout,
    code: String,
    name: String,
    versions: Vec<VersionRow>,
    show_costs: bool,
    can_write: bool,
}

fn kind_label(k: &str) -> &'static str {
    match k {
        "MP" => "Matière",
        "PACKAGING" => "Emballage",
        _ => "Fluide",
    }
}

fn version_row(v: &Value) -> VersionRow {
    let pf_unit = &v["productUnit"];
    VersionRow {
        version: v["version"].as_i64().unwrap_or(0),
        status: if v["status"] == "ACTIVE" { "Active".into() } else { "Archivée".into() },
        date: v["createdAt"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .map(|t| domain::format::datetime_algiers(t.timestamp()))
            .unwrap_or_default(),
        output: jqty(&v["outputQuantity"], pf_unit),
        tolerance: domain::format::percent_bp(v["lossToleranceBp"].as_i64().unwrap_or(0)),
        shelf_life: v["shelfLifeOverrideDays"]
            .as_i64()
            .map(|d| format!("{d} jours"))
            .unwrap_or_else(|| "celle du produit".into()),
        items: v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let kind = i["kind"].as_str().unwrap_or_default();
                let stocked = kind != "FLUID";
                ItemRow {
                    kind: kind_label(kind),
                    item: if stocked {
                        format!("{} ({})", text(&i["productName"]), text(&i["productCode"]))
                    } else {
                        text(&i["name"])
                    },
                    quantity: if stocked {
                        jqty(&i["quantity"], &i["unit"])
                    } else {
                        format!("{} {}", fmt_qty_input(i["quantity"].as_i64().unwrap_or(0)), text(&i["unitLabel"]))
                    },
                    cost: i["unitCost"].as_i64().map(fmt_money).unwrap_or_default(),
                }
            })
            .collect(),
    }
}

async fn recipe(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(code): Path<String>) -> Response {
    let r = match crate::api::production::recipe_of(&st, &code, id.role).await {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let p = RecipePage {
        layout: Layout::for_page(&format!("Recette — {}", text(&r["productName"])), RECIPES, &pc),
        code: text(&r["productCode"]),
        name: text(&r["productName"]),
        versions: r["versions"].as_array().into_iter().flatten().map(version_row).collect(),
        show_costs: sees_costs(id.role),
        can_write: writer(id.role),
    };
    page(StatusCode::OK, p, &pc)
}

struct DiffRow {
    item: String,
    quantity: String,
    change: String,
    tone: &'static str,
}

#[derive(Template)]
#[template(path = "recipe_version.html")]
struct VersionPage {
    layout: Layout,
    code: String,
    name: String,
    version: i32,
    active: bool,
    has_previous: bool,
    facts: Vec<(&'static str, String)>,
    rows: Vec<DiffRow>,
    orders: Vec<(String, &'static str)>,
}

/// UI.md row 55: one version read-only, each item compared with the version before it, and the orders that used it.
async fn recipe_version(State(st): State<AppState>, pc: PageCtx, Path((code, v)): Path<(String, String)>) -> Response {
    let db = st.dbmon.db();
    let c = db.conn();
    let Some(n) = v.strip_prefix('v').and_then(|n| n.parse::<i32>().ok()) else { return super::not_found().await };
    let pf = match store::catalogue::product_by_code(c, &code).await {
        Ok(Some(p)) if p.kind == "PF" => p,
        Ok(_) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let versions = store::production::versions_of(c, pf.id).await.unwrap_or_default();
    let Some(version) = versions.iter().find(|x| x.version == n).cloned() else { return super::not_found().await };
    let previous = versions.iter().find(|x| x.version == n - 1).cloned();
    // Items keyed by MP code (or fluid name), with their display and quantity.
    let keyed = |items: Vec<store::production::Item>| async move {
        let mut out = Vec::new();
        for i in items {
            let (key, label, unit) = match i.product_id {
                Some(id) => match store::stock::product(c, id).await.ok().flatten() {
                    Some(p) => (p.code.clone(), format!("{} ({})", p.name, p.code), p.base_unit.clone()),
                    None => continue,
                },
                None => {
                    let name = i.fluid_name.clone().unwrap_or_default();
                    (name.clone(), format!("{name} (fluide)"), String::new())
                }
            };
            let shown = if unit.is_empty() {
                format!("{} {}", fmt_qty_input(i.quantity), i.unit_label.clone().unwrap_or_default())
            } else {
                qty(i.quantity, &unit)
            };
            out.push((key, label, i.quantity, shown));
        }
        out
    };
    let current = keyed(store::production::items_of(c, version.id).await.unwrap_or_default()).await;
    let before = match &previous {
        Some(p) => keyed(store::production::items_of(c, p.id).await.unwrap_or_default()).await,
        None => Vec::new(),
    };
    let cur_keys: Vec<(&str, i64)> = current.iter().map(|(k, _, q, _)| (k.as_str(), *q)).collect();
    let prev_keys: Vec<(&str, i64)> = before.iter().map(|(k, _, q, _)| (k.as_str(), *q)).collect();
    let rows = domain::production::diff_items(&prev_keys, &cur_keys)
        .into_iter()
        .map(|(k, change)| {
            let row = current.iter().chain(before.iter()).find(|(key, ..)| key == k);
            let (label, shown) = row.map(|(_, l, _, s)| (l.clone(), s.clone())).unwrap_or_default();
            let (change, tone) = match change {
                _ if previous.is_none() => (String::new(), ""),
                domain::production::ItemChange::Added => ("Ajouté".to_string(), "vert"),
                domain::production::ItemChange::Removed => ("Retiré".to_string(), "rouge"),
                domain::production::ItemChange::Changed(a, _) => {
                    let was = before
                        .iter()
                        .find(|(key, ..)| key == k)
                        .map(|(.., s)| s.clone())
                        .unwrap_or_else(|| a.to_string());
                    (format!("Modifié (avant : {was})"), "ambre")
                }
                domain::production::ItemChange::Same => (String::new(), ""),
            };
            DiffRow { item: label, quantity: if tone == "rouge" { "—".into() } else { shown }, change, tone }
        })
        .collect();
    let orders = store::production::list(db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|(o, _)| o.recipe_version_id == version.id)
        .map(|(o, _)| (o.reference.clone(), store::production::status_of(&o).label()))
        .collect();
    let facts = vec![
        ("Sortie par fournée", qty(version.output_quantity, &pf.base_unit)),
        ("Poids d'une fournée", format!("{} g", version.batch_weight_g)),
        ("Tolérance de perte", format!("± {}", domain::format::percent_bp(i64::from(version.loss_tolerance_bp)))),
        ("Enregistrée le", domain::format::datetime_algiers(version.created_at.timestamp())),
    ];
    let p = VersionPage {
        layout: Layout::for_page(&format!("{} — version {n}", pf.name), RECIPES, &pc),
        code: pf.code.clone(),
        name: pf.name.clone(),
        version: n,
        active: version.status == "ACTIVE",
        has_previous: previous.is_some(),
        facts,
        rows,
        orders,
    };
    page(StatusCode::OK, p, &pc)
}

const ITEM_ROWS: usize = 8;

#[derive(Default, Clone)]
struct ItemForm {
    kind: String,
    code: String,
    quantity: String,
    unit_label: String,
    cost: String,
}

#[derive(Default, Clone)]
struct RecipeForm {
    output: String,
    weight: String,
    tolerance: String,
    shelf_life: String,
    notes: String,
    items: Vec<ItemForm>,
}

#[derive(Template)]
#[template(path = "recipe_new.html")]
struct RecipeNewPage {
    layout: Layout,
    code: String,
    name: String,
    unit: String,
    next: i64,
    form: RecipeForm,
    mps: Vec<(String, String, String)>,
    errors: Vec<String>,
}

async fn recipe_form_page(
    st: &AppState,
    pc: &PageCtx,
    code: &str,
    form: RecipeForm,
    errors: Vec<String>,
    s: StatusCode,
) -> Response {
    let db = st.dbmon.db();
    let pf = match store::catalogue::product_by_code(db.conn(), code).await {
        Ok(Some(p)) if p.kind == "PF" => p,
        Ok(_) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let next = store::production::versions_of(db.conn(), pf.id)
        .await
        .ok()
        .and_then(|v| v.first().map(|v| i64::from(v.version) + 1))
        .unwrap_or(1);
    let mps = store::catalogue::list_products(db, "MP")
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.active && p.stock_tracked)
        .map(|p| (p.code, p.name, p.base_unit.to_lowercase()))
        .collect();
    let mut layout = Layout::for_page(&format!("Nouvelle version — {}", pf.name), RECIPES, pc);
    if !errors.is_empty() {
        layout.title = format!("Nouvelle version — {} (à corriger)", pf.name);
    }
    let unit = Unit::parse(&pf.base_unit).map(|u| u.label_fr().to_string()).unwrap_or_default();
    page(s, RecipeNewPage { layout, code: pf.code, name: pf.name, unit, next, form, mps, errors }, pc)
}

/// The form pre-filled from the active version (UI.md row 54).
async fn new_version(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(code): Path<String>) -> Response {
    let mut form = RecipeForm { tolerance: "2".into(), ..Default::default() };
    if let Ok(r) = crate::api::production::recipe_of(&st, &code, id.role).await
        && r["active"].is_object()
    {
        let a = &r["active"];
        form.output = fmt_qty_input(a["outputQuantity"].as_i64().unwrap_or(0));
        form.weight = a["batchWeightG"].to_string();
        form.tolerance = fmt_qty_input(a["lossToleranceBp"].as_i64().unwrap_or(200) * 10);
        form.shelf_life = a["shelfLifeOverrideDays"].as_i64().map(|d| d.to_string()).unwrap_or_default();
        form.notes = text(&a["notes"]);
        form.items = a["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| ItemForm {
                kind: text(&i["kind"]),
                code: if i["kind"] == "FLUID" { text(&i["name"]) } else { text(&i["productCode"]) },
                quantity: fmt_qty_input(i["quantity"].as_i64().unwrap_or(0)),
                unit_label: text(&i["unitLabel"]),
                cost: i["unitCost"].as_i64().map(|c| format!("{},{:02}", c / 100, c % 100)).unwrap_or_default(),
            })
            .collect();
    }
    form.items.resize(ITEM_ROWS.max(form.items.len()), ItemForm { kind: "MP".into(), ..Default::default() });
    recipe_form_page(&st, &pc, &code, form, Vec::new(), StatusCode::OK).await
}

async fn save_version(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(code): Path<String>,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| raw.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let rows = (0..).take_while(|i| raw.contains_key(&format!("kind_{i}"))).count();
    let form = RecipeForm {
        output: get("output"),
        weight: get("weight"),
        tolerance: get("tolerance"),
        shelf_life: get("shelf_life"),
        notes: get("notes"),
        items: (0..rows)
            .map(|i| ItemForm {
                kind: get(&format!("kind_{i}")),
                code: get(&format!("code_{i}")),
                quantity: get(&format!("quantity_{i}")),
                unit_label: get(&format!("unit_label_{i}")),
                cost: get(&format!("cost_{i}")),
            })
            .collect(),
    };
    let mut errors = Vec::new();
    let output = parse_qty(&form.output);
    if output.is_none() {
        errors.push("Quantité produite par fournée illisible.".into());
    }
    let weight = form.weight.replace([' ', '\u{202F}', '\u{00A0}'], "").parse::<i64>().ok();
    if weight.is_none() {
        errors.push("Poids d'une fournée illisible (en grammes).".into());
    }
    // The tolerance is typed in percent (2 or 2,5) and stored in basis points.
    let tolerance = if form.tolerance.is_empty() { None } else { parse_qty(&form.tolerance).map(|m| m / 10) };
    if !form.tolerance.is_empty() && tolerance.is_none() {
        errors.push("Tolérance de perte illisible (en %, par exemple 2).".into());
    }
    let shelf_life = if form.shelf_life.is_empty() { None } else { form.shelf_life.parse::<i64>().ok() };
    if !form.shelf_life.is_empty() && shelf_life.is_none() {
        errors.push("Durée de vie illisible (en jours).".into());
    }
    let mut items = Vec::new();
    for (i, it) in form.items.iter().enumerate().filter(|(_, it)| !it.code.is_empty()) {
        let quantity = parse_qty(&it.quantity);
        if quantity.is_none() {
            errors.push(format!("Élément {} : quantité illisible (par exemple 12,5).", i + 1));
        }
        let fluid = it.kind == "FLUID";
        let cost = if fluid { parse_money(&it.cost) } else { None };
        if fluid && cost.is_none() {
            errors.push(format!("Élément {} : coût unitaire illisible (en dinars).", i + 1));
        }
        items.push(RecipeItemBody {
            kind: it.kind.clone(),
            product_code: (!fluid).then(|| it.code.clone()),
            name: fluid.then(|| it.code.clone()),
            unit_label: fluid.then(|| it.unit_label.clone()),
            quantity: quantity.unwrap_or(0),
            unit_cost: cost,
        });
    }
    if !errors.is_empty() {
        return recipe_form_page(&st, &pc, &code, form, errors, StatusCode::BAD_REQUEST).await;
    }
    let body = RecipeBody {
        output_quantity: output.unwrap_or(0),
        batch_weight_g: weight.unwrap_or(0),
        loss_tolerance_bp: tolerance,
        shelf_life_override_days: shelf_life,
        notes: Some(form.notes.clone()),
        items,
    };
    match crate::api::production::save_recipe(&st, &code, &body, &id, &pc.ctx).await {
        Ok(r) => {
            let v = r["active"]["version"].as_i64().unwrap_or(0);
            redirect_with_flash(
                &format!("{RECIPES}/{}", text(&r["productCode"])),
                "succes",
                &format!("Version {v} enregistrée : elle est active, la précédente est archivée."),
            )
        }
        Err(e) => {
            let errors = refusal_lines(&e);
            recipe_form_page(&st, &pc, &code, form, errors, e.status).await
        }
    }
}

// ---- traceability ---------------------------------------------------------------------------------------------

struct TraceRow {
    depth: u8,
    label: String,
    lot: String,
    quantity: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    layout: Layout,
    lot: String,
    sens: String,
    head: Option<String>,
    rows: Vec<TraceRow>,
    error: Option<String>,
}

fn trace_rows(t: &Value) -> Vec<TraceRow> {
    let mut rows = Vec::new();
    let b = &t["backward"];
    if b["order"].is_object() {
        rows.push(TraceRow {
            depth: 1,
            label: "Ordre de production".into(),
            lot: text(&b["order"]["reference"]),
            quantity: String::new(),
            detail: format!(
                "recette v{}, terminé le {}",
                b["order"]["recipeVersion"].as_i64().unwrap_or(0),
                jdate(&b["order"]["completionDate"])
            ),
        });
    }
    for i in b["inputs"].as_array().into_iter().flatten() {
        rows.push(TraceRow {
            depth: 2,
            label: format!("{} ({})", text(&i["productName"]), text(&i["productCode"])),
            lot: text(&i["lotNumber"]),
            quantity: jqty(&i["quantityConsumed"], &i["unit"]),
            detail: format!("DLC {}", jdate(&i["dlc"])),
        });
        let r = &i["reception"];
        if r.is_object() {
            rows.push(TraceRow {
                depth: 3,
                label: "Réception".into(),
                lot: text(&r["reference"]),
                quantity: String::new(),
                detail: format!(
                    "{} — {}{}",
                    jdate(&r["date"]),
                    text(&r["supplier"]["name"]),
                    r["supplier"]["phone"].as_str().map(|p| format!(", {p}")).unwrap_or_default()
                ),
            });
        }
    }
    if b["reception"].is_object() {
        let r = &b["reception"];
        rows.push(TraceRow {
            depth: 1,
            label: "Réception".into(),
            lot: text(&r["reference"]),
            quantity: String::new(),
            detail: format!("{} — {}", jdate(&r["date"]), text(&r["supplier"]["name"])),
        });
    }
    for u in t["forward"]["usedBy"].as_array().into_iter().flatten() {
        rows.push(TraceRow {
            depth: 1,
            label: "Consommé par".into(),
            lot: text(&u["order"]["reference"]),
            quantity: jqty(&u["quantityConsumed"], &t["lot"]["unit"]),
            detail: String::new(),
        });
        let p = &u["pfLot"];
        if p.is_object() {
            rows.push(TraceRow {
                depth: 2,
                label: format!("{} ({})", text(&p["productName"]), text(&p["productCode"])),
                lot: text(&p["lotNumber"]),
                quantity: jqty(&p["initialQuantity"], &p["unit"]),
                detail: format!("reste en stock {}", jqty(&p["quantityRemaining"], &p["unit"])),
            });
        }
    }
    rows
}

async fn trace(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    // A scanned label (`MCG:LOT:…`, its signature checked) or a typed lot number.
    let raw = q.get("lot").map(|l| l.trim().to_string()).unwrap_or_default();
    let (lot, scan_error) = match crate::print::scanned_lot(&st, &raw) {
        Ok(Some(number)) => (number, None),
        Ok(None) => (raw.to_uppercase(), None),
        Err(e) => (String::new(), Some(e.message)),
    };
    let sens = q.get("sens").cloned().unwrap_or_else(|| "BOTH".into());
    let mut p = TracePage {
        layout: Layout::for_page("Traçabilité", "/tracabilite", &pc),
        lot: lot.clone(),
        sens: sens.clone(),
        head: None,
        rows: Vec::new(),
        error: scan_error,
    };
    if !lot.is_empty() {
        let d = store::trace::Direction::parse(&sens).unwrap_or(store::trace::Direction::Both);
        match store::trace::trace(st.dbmon.db().conn(), &lot, d).await {
            Ok(Some(t)) => {
                let l = &t["lot"];
                p.head = Some(format!(
                    "{} — {} ({}), reste {}",
                    text(&l["lotNumber"]),
                    text(&l["productName"]),
                    text(&l["productCode"]),
                    jqty(&l["quantityRemaining"], &l["unit"])
                ));
                p.rows = trace_rows(&t);
            }
            Ok(None) => p.error = Some(format!("Aucun lot {lot}.")),
            Err(e) => return super::unavailable_page(&ApiError::from(e).message),
        }
    }
    page(StatusCode::OK, p, &pc).into_response()
}

// ---- QC queue -------------------------------------------------------------------------------------------------

struct QcRow {
    lot: String,
    origin: &'static str,
    product: String,
    quantity: String,
    dlc: String,
}

#[derive(Template)]
#[template(path = "qc_queue.html")]
struct QcPage {
    layout: Layout,
    rows: Vec<QcRow>,
}

/// UI.md row 56: the lots waiting for a QC decision; the decision is the lot page's (same rules, same route).
async fn qc_queue(State(st): State<AppState>, pc: PageCtx) -> Response {
    let all = match store::production::quarantine_queue(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let rows = all
        .iter()
        .map(|(l, p)| QcRow {
            lot: l.lot_number.clone(),
            origin: match l.origin.as_str() {
                "RECEPTION" => "Réception",
                "PRODUCTION" => "Production",
                "RETURN" => "Retour client",
                _ => "Inventaire",
            },
            product: format!("{} ({})", p.name, p.code),
            quantity: qty(l.quantity_remaining, &p.base_unit),
            dlc: l.dlc.map(fmt_date).unwrap_or_else(|| "—".into()),
        })
        .collect();
    page(StatusCode::OK, QcPage { layout: Layout::for_page("Contrôle qualité", "/production/qualite", &pc), rows }, &pc)
}

// ---- planning -------------------------------------------------------------------------------------------------

struct PlanOrder {
    reference: String,
    product: String,
    batches: i32,
    tone: &'static str,
    status: &'static str,
    blocked: bool,
}

struct PlanDay {
    label: String,
    iso: String,
    friday: bool,
    future: bool,
    orders: Vec<PlanOrder>,
}

#[derive(Template)]
#[template(path = "planning.html")]
struct PlanningPage {
    layout: Layout,
    week_label: String,
    previous: String,
    next: String,
    days: Vec<PlanDay>,
    can_create: bool,
}

/// UI.md row 51: the week from Sunday (the Algerian week; Friday shaded), orders per day with the shortage flag.
async fn planning(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    use chrono::Datelike;
    let db = st.dbmon.db();
    let now = st.clock.now();
    let today = domain::stock::today_algiers(now);
    let any = q.get("semaine").and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).unwrap_or(today);
    let sunday = any - chrono::Duration::days(i64::from(any.weekday().num_days_from_sunday()));
    let all = match store::production::list(db).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    const NAMES: [&str; 7] = ["Dimanche", "Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi", "Samedi"];
    let mut days = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let d = sunday + chrono::Duration::days(i as i64);
        let mut orders = Vec::new();
        for (o, p) in all.iter().filter(|(o, _)| o.planned_date == d) {
            let status = store::production::status_of(o);
            let blocked = store::production::not_startable(db.conn(), o, now).await.unwrap_or(false);
            orders.push(PlanOrder {
                reference: o.reference.clone(),
                product: p.name.clone(),
                batches: o.batch_count,
                tone: badge(status),
                status: status.label(),
                blocked,
            });
        }
        orders.sort_by(|a, b| a.reference.cmp(&b.reference));
        days.push(PlanDay {
            label: format!("{name} {}", d.format("%d/%m")),
            iso: d.to_string(),
            friday: i == 5,
            future: d >= today,
            orders,
        });
    }
    let p = PlanningPage {
        layout: Layout::for_page("Planning de production", "/production/planning", &pc),
        week_label: fmt_date(sunday),
        previous: (sunday - chrono::Duration::days(7)).to_string(),
        next: (sunday + chrono::Duration::days(7)).to_string(),
        days,
        can_create: writer(id.role),
    };
    page(StatusCode::OK, p, &pc)
}

// ---- dashboard ------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "production_dashboard.html")]
struct DashboardPage {
    layout: Layout,
    yield_7: String,
    outside: usize,
    today_orders: Vec<(String, String, &'static str)>,
    qc_waiting: usize,
    products: Vec<(String, String, bool)>,
    unit: String,
    output_chart: String,
    yield_chart: String,
    cost_chart: Option<String>,
    can_create: bool,
}

/// UI.md row 12: the week's yield, today's orders, the QC queue, and 30 days of output, yield and unit cost of one
/// PF as SVG charts.
async fn dashboard(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    use super::charts::{Point, bars, line};
    let db = st.dbmon.db();
    let today = domain::stock::today_algiers(st.clock.now());
    let from = today - chrono::Duration::days(29);
    let (done, all) = match (store::production::completed_since(db, from).await, store::production::list(db).await) {
        (Ok(d), Ok(a)) => (d, a),
        (Err(e), _) | (_, Err(e)) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let facts = |pick: &dyn Fn(&store::stock::Product) -> bool| -> Vec<domain::production::Done> {
        done.iter()
            .filter(|(_, p, _)| pick(p))
            .filter_map(|(o, _, tol)| store::production::done_fact(o, *tol))
            .collect()
    };
    let (mean, outside) = domain::production::yield_7_days(&facts(&|_| true), today);
    let mut products: Vec<(String, String, bool)> = Vec::new();
    for (_, p, _) in &done {
        if !products.iter().any(|x| x.0 == p.code) {
            products.push((p.code.clone(), p.name.clone(), false));
        }
    }
    let chosen = q
        .get("produit")
        .map(|c| c.to_uppercase())
        .filter(|c| products.iter().any(|p| &p.0 == c))
        .or_else(|| products.first().map(|p| p.0.clone()));
    for p in &mut products {
        p.2 = Some(&p.0) == chosen.as_ref();
    }
    let pf = done.iter().map(|(_, p, _)| p).find(|p| Some(&p.code) == chosen.as_ref()).cloned();
    let (mut unit, mut output_chart, mut yield_chart, mut cost_chart) =
        (String::new(), String::new(), String::new(), None);
    if let Some(pf) = &pf {
        let series = domain::production::daily_series(&facts(&|p| p.id == pf.id), from, today);
        let label = |d: chrono::NaiveDate| d.format("%d/%m").to_string();
        let u = Unit::parse(&pf.base_unit).unwrap_or(Unit::Kg);
        unit = u.label_fr().to_string();
        let output: Vec<Point> = series
            .iter()
            .map(|s| Point { label: label(s.date), value: Some(s.output), text: qty(s.output, &pf.base_unit) })
            .collect();
        output_chart = bars("graphe-production", &format!("Production de {} par jour", pf.name), &unit, &output);
        let yields: Vec<Point> = series
            .iter()
            .map(|s| Point {
                label: label(s.date),
                value: s.mean_yield_bp,
                text: s.mean_yield_bp.map(domain::format::percent_bp).unwrap_or_default(),
            })
            .collect();
        let tol = done.iter().filter(|(_, p, _)| p.id == pf.id).map(|(_, _, t)| *t).next_back().unwrap_or(200);
        yield_chart =
            line("graphe-rendement", "Rendement moyen par jour", "%", &yields, Some((10_000 - tol, 10_000 + tol)));
        if sees_costs(id.role) {
            let costs: Vec<Point> = series
                .iter()
                .map(|s| Point {
                    label: label(s.date),
                    value: s.unit_cost,
                    text: s.unit_cost.map(fmt_money).unwrap_or_default(),
                })
                .collect();
            cost_chart = Some(line("graphe-cout", "Coût de revient unitaire par jour", "DA", &costs, None));
        }
    }
    let today_orders = all
        .iter()
        .filter(|(o, _)| {
            o.planned_date == today
                && matches!(store::production::status_of(o), OpStatus::Pending | OpStatus::InProgress)
        })
        .map(|(o, p)| (o.reference.clone(), p.name.clone(), store::production::status_of(o).label()))
        .collect();
    let qc_waiting = store::production::qc_waiting(db).await.unwrap_or(0) as usize;
    let p = DashboardPage {
        layout: Layout::for_page("Tableau de bord production", "/production", &pc),
        yield_7: mean.map(domain::format::percent_bp).unwrap_or_else(|| "—".into()),
        outside,
        today_orders,
        qc_waiting,
        products,
        unit,
        output_chart,
        yield_chart,
        cost_chart,
        can_create: writer(id.role),
    };
    page(StatusCode::OK, p, &pc)
}

struct RecallRow {
    lot: String,
    product: String,
    status: String,
    dlc: String,
    initial: String,
    remaining: String,
    used: String,
    delivered: String,
    lost: String,
    ecart: String,
    gap: bool,
}

#[derive(Template)]
#[template(path = "recall.html")]
struct RecallPage {
    layout: Layout,
    lot: String,
    rows: Vec<RecallRow>,
    totals: (String, String, String, String),
    can_block: bool,
    /// (client, telephone, BL, lot, quantity, date)
    clients: Vec<(String, String, String, String, String, String)>,
    /// (credit note, client, quantity, return lot)
    returns: Vec<(String, String, String, String)>,
}

/// The recall report (DOMAIN.md §9, UI.md row 57 "Rapport de rappel").
async fn recall(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lot = q.get("lot").map(|l| l.trim().to_uppercase()).unwrap_or_default();
    let lots = match store::trace::recall(st.dbmon.db().conn(), &lot).await {
        Ok(Some(l)) => l,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let v = match crate::api::production::recall_value(st.dbmon.db().conn(), &lots).await {
        Ok(v) => v,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let rows = v["lots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let u = &l["unit"];
            let status = domain::stock::LotStatus::from_codes(
                l["status"].as_str().unwrap_or_default(),
                l["blockReason"].as_str(),
            )
            .map(|s| s.label_fr())
            .unwrap_or_default();
            RecallRow {
                lot: text(&l["lotNumber"]),
                product: format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
                status: status.to_string(),
                dlc: jdate(&l["dlc"]),
                initial: jqty(&l["initial"], u),
                remaining: jqty(&l["remaining"], u),
                used: jqty(&l["usedInProduction"], u),
                delivered: jqty(&l["delivered"], u),
                lost: jqty(&l["lost"], u),
                ecart: jqty(&l["ecart"], u),
                gap: l["ecart"].as_i64().unwrap_or(0) != 0,
            }
        })
        .collect();
    // Totals are over the PF lots, in the PF's unit (the first PF lot's; one recall concerns one PF in practice).
    let pf_unit = lots.iter().find(|r| r.product.kind == "PF").map(|r| r.product.base_unit.clone());
    let t = &v["totals"];
    let total = |k: &str| match &pf_unit {
        Some(u) => jqty(&t[k], &Value::String(u.clone())),
        None => "—".into(),
    };
    let unit_of = |lot_number: &str| {
        lots.iter()
            .find(|r| r.lot.lot_number == lot_number)
            .map_or(Value::Null, |r| Value::String(r.product.base_unit.clone()))
    };
    let clients = v["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let lot_number = text(&c["lotNumber"]);
            (
                format!("{} ({})", text(&c["clientName"]), text(&c["clientCode"])),
                text(&c["telephone"]),
                text(&c["delivery"]),
                lot_number.clone(),
                jqty(&c["quantity"], &unit_of(&lot_number)),
                c["validatedAt"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| domain::format::datetime_algiers(t.timestamp()))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let returns = v["returns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                text(&r["creditNote"]),
                text(&r["clientCode"]),
                jqty(&r["quantity"], &pf_unit.clone().map_or(Value::Null, Value::String)),
                text(&r["returnLot"]),
            )
        })
        .collect();
    let p = RecallPage {
        clients,
        returns,
        layout: Layout::for_page(&format!("Rapport de rappel — {lot}"), "/tracabilite", &pc),
        totals: (total("produced"), total("delivered"), total("inStock"), total("lost")),
        lot,
        rows,
        can_block: id.role == Role::Admin,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RecallBlockForm {
    lot: String,
    note: String,
    #[allow(dead_code)]
    _csrf: String,
}

async fn recall_block(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(f): Form<RecallBlockForm>,
) -> Response {
    let back = format!("/tracabilite/rappel?lot={}", crate::auth::urlencode(&f.lot));
    let body = crate::api::production::RecallBlockBody { lot: f.lot.clone(), note: f.note.clone() };
    match crate::api::production::block_all(&st, &body, &id, &pc.ctx).await {
        Ok(v) => {
            let n = v["blocked"].as_array().map_or(0, Vec::len);
            redirect_with_flash(&back, "succes", &format!("{n} lot(s) bloqué(s) avec la note de rappel."))
        }
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/production", get(dashboard))
        .route(ORDERS, get(orders))
        .route("/production/planning", get(planning))
        .route("/production/qualite", get(qc_queue))
        .route("/production/ordres/nouveau", get(new_order).post(create_order))
        .route("/production/ordres/{reference}", get(order))
        .route("/production/ordres/{reference}/demarrer", post(start))
        .route("/production/ordres/{reference}/terminer", post(complete))
        .route("/production/ordres/{reference}/replanifier", post(reschedule))
        .route("/production/ordres/{reference}/annuler", post(cancel))
        .route(RECIPES, get(recipes))
        .route("/production/recettes/{code}", get(recipe))
        .route("/production/recettes/{code}/nouvelle-version", get(new_version).post(save_version))
        .route("/production/recettes/{code}/{version}", get(recipe_version))
        .route("/tracabilite", get(trace))
        .route("/tracabilite/rappel", get(recall))
        .route("/tracabilite/rappel/bloquer", post(recall_block))
}
