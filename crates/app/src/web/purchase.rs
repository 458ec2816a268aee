//! Purchase-order pages (UI.md §3 rows 42–44): the list by tab, a new order with its lines, the order with its
//! actions (send with proof, confirm, receive, close, cancel). They call the JSON API's functions and show its
//! refusals in French.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::identity::Role;
use domain::money::{fmt_money, parse_money, parse_qty};
use domain::purchase::BcStatus;
use domain::stock::{Unit, fmt_date, fmt_qty};
use serde::Deserialize;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::idempotency::{Idem, run_value};
use crate::api::purchase::{OrderBody, OrderLineBody, Transition};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

const BASE: &str = "/appro/bons-de-commande";

fn qty(milli: i64, unit: &str) -> String {
    fmt_qty(milli, Unit::parse(unit).unwrap_or(Unit::Kg))
}

fn badge(status: BcStatus) -> &'static str {
    match status {
        BcStatus::Draft => "gris",
        BcStatus::Sent | BcStatus::Confirmed => "bleu",
        BcStatus::Partial => "ambre",
        BcStatus::Received => "vert",
        BcStatus::Cancelled => "rouge",
    }
}

// ---- list -----------------------------------------------------------------------------------------------------------

struct Row {
    reference: String,
    supplier: String,
    expected: String,
    late: Option<i64>,
    ht: String,
    tone: &'static str,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "purchase_orders.html")]
struct ListPage {
    layout: Layout,
    tabs: Vec<(&'static str, &'static str, usize, bool)>,
    rows: Vec<Row>,
    show_values: bool,
    can_create: bool,
    empty: &'static str,
}

/// The tab an order belongs to (UI.md row 42); "en-retard" also lists its orders under "chez-le-fournisseur".
fn tab_of(status: BcStatus) -> &'static str {
    match status {
        BcStatus::Draft => "a-envoyer",
        BcStatus::Sent | BcStatus::Confirmed | BcStatus::Partial => "chez-le-fournisseur",
        BcStatus::Received | BcStatus::Cancelled => "termines",
    }
}

async fn list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let all = match store::purchase::list(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let today = domain::stock::today_algiers(st.clock.now());
    let tab = q.get("onglet").map(String::as_str).unwrap_or("a-envoyer");
    let rows: Vec<(Row, &'static str)> = all
        .iter()
        .map(|(o, code, name)| {
            let status = store::purchase::status_of(o);
            let late = match (tab_of(status), o.expected_date) {
                ("chez-le-fournisseur", Some(e)) => domain::purchase::days_late(e, today),
                _ => None,
            };
            let row = Row {
                reference: o.reference.clone(),
                supplier: format!("{name} ({code})"),
                expected: o.expected_date.map(fmt_date).unwrap_or_else(|| "—".into()),
                late,
                ht: fmt_money(o.total_ht),
                tone: badge(status),
                status: status.label(),
            };
            (row, tab_of(status))
        })
        .collect();
    let in_tab = |t: &str, r: &Row, rt: &str| if t == "en-retard" { r.late.is_some() } else { rt == t };
    let tabs = [
        ("a-envoyer", "À envoyer"),
        ("chez-le-fournisseur", "Chez le fournisseur"),
        ("en-retard", "En retard"),
        ("termines", "Terminés"),
    ]
    .into_iter()
    .map(|(k, label)| (k, label, rows.iter().filter(|(r, rt)| in_tab(k, r, rt)).count(), k == tab))
    .collect();
    let empty = match tab {
        "a-envoyer" => "Aucun brouillon à envoyer.",
        "en-retard" => "Aucun bon de commande en retard.",
        "termines" => "Aucun bon de commande terminé.",
        _ => "Aucun bon de commande chez un fournisseur.",
    };
    let p = ListPage {
        layout: Layout::for_page("Bons de commande", BASE, &pc),
        tabs,
        rows: rows.into_iter().filter(|(r, rt)| in_tab(tab, r, rt)).map(|(r, _)| r).collect(),
        show_values: id.role != Role::Production,
        can_create: matches!(id.role, Role::Admin | Role::Appro),
        empty,
    };
    page(StatusCode::OK, p, &pc)
}

// ---- new order ------------------------------------------------------------------------------------------------------

const LINES: usize = 5;

#[derive(Default, Clone)]
struct LineForm {
    product: String,
    quantity: String,
    price: String,
    tva: String,
}

#[derive(Default, Clone)]
struct OrderForm {
    supplier: String,
    expected: String,
    notes: String,
    lines: Vec<LineForm>,
}

#[derive(Template)]
#[template(path = "purchase_order_new.html")]
struct NewPage {
    layout: Layout,
    form: OrderForm,
    suppliers: Vec<(String, String)>,
    products: Vec<(String, String, String)>,
    tvas: Vec<(String, &'static str)>,
    errors: Vec<String>,
}

async fn new_page(st: &AppState, pc: &PageCtx, form: OrderForm, errors: Vec<String>, status: StatusCode) -> Response {
    let db = st.dbmon.db();
    let today = domain::stock::today_algiers(st.clock.now());
    let suppliers = store::catalogue::list_suppliers(db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.active && !domain::catalogue::supplier_blocked(s.block_reason.as_deref(), s.blocked_until, today))
        .map(|s| (s.code, s.raison_sociale))
        .collect();
    let products = store::catalogue::list_products(db, "MP")
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.active && p.stock_tracked)
        .map(|p| (p.code, p.name, p.base_unit.to_lowercase()))
        .collect();
    let mut layout = Layout::for_page("Nouveau bon de commande", BASE, pc);
    if !errors.is_empty() {
        layout.title = "Nouveau bon de commande (à corriger)".into();
    }
    let tvas = vec![("1900".into(), "19 %"), ("900".into(), "9 %"), ("0".into(), "0 %")];
    page(status, NewPage { layout, form, suppliers, products, tvas, errors }, pc)
}

async fn new_order(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut lines = vec![LineForm { tva: "1900".into(), ..Default::default() }; LINES];
    if let Some(mp) = q.get("matiere") {
        lines[0].product = mp.to_uppercase();
        // From the cockpit's suggestion (UI.md row 11, "Créer un BC").
        lines[0].quantity = q.get("quantite").cloned().unwrap_or_default();
    }
    let form = OrderForm { supplier: q.get("fournisseur").cloned().unwrap_or_default(), lines, ..Default::default() };
    new_page(&st, &pc, form, Vec::new(), StatusCode::OK).await
}

async fn create(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| raw.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let form = OrderForm {
        supplier: get("supplier"),
        expected: get("expected"),
        notes: get("notes"),
        lines: (0..LINES)
            .map(|i| LineForm {
                product: get(&format!("product_{i}")),
                quantity: get(&format!("quantity_{i}")),
                price: get(&format!("price_{i}")),
                tva: get(&format!("tva_{i}")),
            })
            .collect(),
    };
    // Typing errors in the user's words; the rules are the API's.
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    for (i, l) in form.lines.iter().enumerate().filter(|(_, l)| !l.product.is_empty()) {
        let (quantity, price) = (parse_qty(&l.quantity), parse_money(&l.price));
        if quantity.is_none() {
            errors.push(format!("Ligne {} : quantité illisible (par exemple 12,5).", i + 1));
        }
        if price.is_none() {
            errors.push(format!("Ligne {} : prix illisible (en dinars, par exemple 1 234,50).", i + 1));
        }
        lines.push(OrderLineBody {
            product_code: l.product.clone(),
            quantity: quantity.unwrap_or(0),
            unit_price_ht: price.unwrap_or(0),
            tva_rate: l.tva.parse().ok(),
        });
    }
    if form.supplier.is_empty() {
        errors.push("Choisissez le fournisseur.".into());
    }
    if lines.is_empty() {
        errors.push("Ajoutez au moins une ligne.".into());
    }
    let expected = chrono::NaiveDate::parse_from_str(&form.expected, "%Y-%m-%d").ok();
    if !form.expected.is_empty() && expected.is_none() {
        errors.push("Date de livraison prévue illisible.".into());
    }
    if !errors.is_empty() {
        return new_page(&st, &pc, form, errors, StatusCode::BAD_REQUEST).await;
    }
    let body = OrderBody {
        supplier_code: form.supplier.clone(),
        expected_date: expected,
        notes: Some(form.notes.clone()),
        lines,
    };
    let idem = Idem::from_form(&get("_commande"), &id, "/api/purchase-orders", &serde_json::json!(body));
    match run_value(&st, idem, |idem| crate::api::purchase::create_order(&st, &body, &id, &pc.ctx, idem)).await {
        Ok((_, o, _)) => {
            let reference = o["reference"].as_str().unwrap_or_default();
            redirect_with_flash(&format!("{BASE}/{reference}"), "succes", &format!("Brouillon {reference} enregistré."))
        }
        Err(e) => {
            let errors = super::refusal_lines(&e, "lines[", "Ligne");
            new_page(&st, &pc, form, errors, e.status).await
        }
    }
}

// ---- one order ------------------------------------------------------------------------------------------------------

struct LineView {
    product: String,
    ordered: String,
    received: String,
    remaining: String,
    price: String,
    ht: String,
}

#[derive(Template)]
#[template(path = "purchase_order.html")]
struct OrderPage {
    layout: Layout,
    /// The printed document ("PDF" button), when this role may print it.
    pdf_url: Option<String>,
    reference: String,
    tone: &'static str,
    status: &'static str,
    facts: Vec<(&'static str, String)>,
    lines: Vec<LineView>,
    receptions: Vec<String>,
    show_values: bool,
    can_send: bool,
    can_confirm: bool,
    can_receive: bool,
    can_close: bool,
    can_cancel: bool,
}

async fn order(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(reference): Path<String>) -> Response {
    let db = st.dbmon.db();
    let (o, lines, receptions) = match store::purchase::detail(db.conn(), &reference).await {
        Ok(Some(x)) => x,
        Ok(None) => return super::not_found().await,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let (code, name) = store::purchase::supplier_names(db.conn(), o.supplier_id).await.unwrap_or_default();
    let status = store::purchase::status_of(&o);
    let today = domain::stock::today_algiers(st.clock.now());
    let show_values = id.role != Role::Production;
    let mut facts = vec![
        ("Fournisseur", format!("{name} ({code})")),
        ("Date du bon", fmt_date(o.order_date)),
        ("Livraison prévue", o.expected_date.map(fmt_date).unwrap_or_else(|| "— (obligatoire pour envoyer)".into())),
    ];
    if let (true, Some(days)) =
        (status.receivable(), o.expected_date.and_then(|e| domain::purchase::days_late(e, today)))
    {
        facts.push(("Retard", format!("{days} jour(s)")));
    }
    if let (Some(mode), Some(proof)) = (&o.send_mode, &o.send_proof) {
        let how = if mode == "EMAIL" { "par e-mail à" } else { "manuel :" };
        facts.push((
            "Envoi",
            format!(
                "{} {how} {proof}",
                o.sent_at.map(|t| domain::format::datetime_algiers(t.timestamp())).unwrap_or_default()
            ),
        ));
    }
    if let Some(d) = o.confirmed_date {
        facts.push(("Livraison confirmée", fmt_date(d)));
    }
    if show_values {
        facts.push(("Total HT", fmt_money(o.total_ht)));
        facts.push(("TVA", fmt_money(o.total_tva)));
        facts.push(("Total TTC", fmt_money(o.total_ttc)));
    }
    if let Some(n) = &o.notes {
        facts.push(("Notes", n.clone()));
    }
    if let Some(r) = &o.close_reason {
        facts.push(("Soldé", r.clone()));
    }
    if let Some(r) = &o.cancel_reason {
        facts.push(("Motif d'annulation", r.clone()));
    }
    let mut views = Vec::new();
    for (l, code, pname) in &lines {
        let unit = store::stock::product(db.conn(), l.product_id)
            .await
            .ok()
            .flatten()
            .map(|p| p.base_unit)
            .unwrap_or_default();
        views.push(LineView {
            product: format!("{pname} ({code})"),
            ordered: qty(l.quantity_ordered, &unit),
            received: qty(l.quantity_received, &unit),
            remaining: qty((l.quantity_ordered - l.quantity_received).max(0), &unit),
            price: fmt_money(l.unit_price_ht),
            ht: fmt_money(l.amount_ht),
        });
    }
    let writer = matches!(id.role, Role::Admin | Role::Appro);
    let received_any = lines.iter().any(|(l, _, _)| l.quantity_received > 0);
    let p = OrderPage {
        pdf_url: crate::access::may_open(id.role, "/api/purchase-orders/{reference}/pdf")
            .then(|| format!("/api/purchase-orders/{}/pdf", o.reference)),
        layout: Layout::for_page(&o.reference, BASE, &pc),
        reference: o.reference.clone(),
        tone: badge(status),
        status: status.label(),
        facts,
        lines: views,
        receptions,
        show_values,
        can_send: writer && status == BcStatus::Draft,
        can_confirm: writer && status == BcStatus::Sent,
        can_receive: writer && status.receivable(),
        can_close: writer && status == BcStatus::Partial,
        can_cancel: id.role == Role::Admin
            && matches!(status, BcStatus::Draft | BcStatus::Sent | BcStatus::Confirmed)
            && !received_any,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActionForm {
    mode: String,
    email: String,
    note: String,
    confirmed_date: String,
    reason: String,
    #[allow(dead_code)]
    _csrf: String,
}

async fn act(st: &AppState, pc: &PageCtx, id: &Identity, reference: &str, change: Transition, done: &str) -> Response {
    let back = format!("{BASE}/{}", reference.to_uppercase());
    match crate::api::purchase::transition(st, reference, id, &pc.ctx, change).await {
        Ok(o) => {
            redirect_with_flash(&back, "succes", &format!("{} {done}.", o["reference"].as_str().unwrap_or(reference)))
        }
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

async fn send(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let proof = match crate::api::purchase::proof_of(&f.mode, Some(f.email), Some(f.note)) {
        Ok(p) => p,
        Err(r) => return redirect_with_flash(&format!("{BASE}/{reference}"), "erreur", &r.message),
    };
    act(&st, &pc, &id, &reference, Transition::Send(proof), "envoyé").await
}

async fn confirm(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let d = chrono::NaiveDate::parse_from_str(&f.confirmed_date, "%Y-%m-%d").ok();
    act(&st, &pc, &id, &reference, Transition::Confirm(d), "confirmé par le fournisseur").await
}

async fn close(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    act(&st, &pc, &id, &reference, Transition::Close(f.reason), "soldé").await
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list))
        .route("/appro/bons-de-commande/nouveau", get(new_order).post(create))
        .route("/appro/bons-de-commande/{reference}", get(order))
        .route("/appro/bons-de-commande/{reference}/envoyer", post(send))
        .route("/appro/bons-de-commande/{reference}/confirmer", post(confirm))
        .route("/appro/bons-de-commande/{reference}/solder", post(close))
        .route("/appro/bons-de-commande/{reference}/annuler", post(cancel))
}
