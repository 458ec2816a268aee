//! Sales and delivery pages (UI.md rows 59–75): invoices by tab, a new invoice, the invoice (draft: validate or
//! delete; validated: payments, BLs, credit notes), the credit note, price lists, BLs by tab and the BL page with
//! its QR code, the scan (camera where the browser offers it, typed payload always), manual confirmation, proof of
//! delivery and cancellation. Every action calls the API's functions; refusals come back as French flashes.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::delivery::BlStatus;
use domain::identity::Role;
use domain::money::{fmt_money, parse_money, parse_qty};
use domain::sales::InvoiceStatus;
use domain::stock::{Unit, fmt_date, fmt_qty};
use serde_json::Value;

use super::{Layout, PageCtx, page, redirect_with_flash};
use crate::api::delivery::Attempt;
use crate::api::idempotency::{Idem, run_value};
use crate::api::sales::{InvoiceBody, InvoiceLineBody, PaymentBody};
use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

const INVOICES: &str = "/ventes/factures";
const DELIVERIES: &str = "/livraisons";

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

fn money(v: &Value) -> String {
    v.as_i64().map(fmt_money).unwrap_or_else(|| "—".into())
}

fn jdate(v: &Value) -> String {
    v.as_str().and_then(|d| d.parse().ok()).map(fmt_date).unwrap_or_else(|| "—".into())
}

fn jtime(v: &Value) -> String {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| domain::format::datetime_algiers(t.timestamp()))
        .unwrap_or_else(|| "—".into())
}

fn jqty(v: &Value, unit: &Value) -> String {
    v.as_i64().map(|q| fmt_qty(q, Unit::parse(unit.as_str().unwrap_or("U")).unwrap_or(Unit::U))).unwrap_or_default()
}

fn invoice_badge(status: InvoiceStatus) -> &'static str {
    match status {
        InvoiceStatus::Draft | InvoiceStatus::Credited => "gris",
        InvoiceStatus::Validated => "bleu",
        InvoiceStatus::PartiallyPaid => "ambre",
        InvoiceStatus::Paid => "vert",
    }
}

fn bl_badge(status: BlStatus) -> &'static str {
    match status {
        BlStatus::Pending => "gris",
        BlStatus::Validated => "bleu",
        BlStatus::Delivered => "vert",
        BlStatus::Cancelled => "rouge",
    }
}

fn sales_writer(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Commercial)
}

// ---- invoices list ---------------------------------------------------------------------------------------------------

pub struct InvoiceRow {
    key: String,
    reference: String,
    client: String,
    date: String,
    due: String,
    overdue: bool,
    net: String,
    remaining: String,
    tone: &'static str,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "invoices.html")]
struct InvoicesPage {
    layout: Layout,
    tabs: Vec<(&'static str, &'static str, usize, bool)>,
    rows: Vec<InvoiceRow>,
    can_create: bool,
    empty: &'static str,
}

async fn invoices(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = st.dbmon.db().conn();
    let all = match store::sales::list_invoices(c, None, None).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let today = domain::stock::today_algiers(st.clock.now());
    let mut rows = Vec::new();
    for i in &all {
        let status = store::sales::status_of(i);
        let (credited, paid) = store::sales::credited_and_paid(c, i.id).await.unwrap_or_default();
        let left = if status.is_validated() { i.net - credited - paid } else { 0 };
        let client = store::catalogue::client_by_id(c, i.client_id).await.ok().flatten();
        let overdue = left > 0 && i.due_date.is_some_and(|d| d < today);
        let tab = match status {
            InvoiceStatus::Draft => "brouillons",
            _ if overdue => "echues",
            InvoiceStatus::Validated | InvoiceStatus::PartiallyPaid => "a-encaisser",
            _ => "payees",
        };
        rows.push((
            InvoiceRow {
                key: i.reference.clone().unwrap_or_else(|| i.id.to_string()),
                reference: i.reference.clone().unwrap_or_else(|| "Brouillon".into()),
                client: client.map(|c| format!("{} ({})", c.raison_sociale, c.code)).unwrap_or_default(),
                date: i.invoice_date.map(fmt_date).unwrap_or_else(|| "—".into()),
                due: i.due_date.map(fmt_date).unwrap_or_else(|| "—".into()),
                overdue,
                net: fmt_money(i.net),
                remaining: fmt_money(left),
                tone: if overdue { "rouge" } else { invoice_badge(status) },
                status: if overdue { "Échue" } else { status.label_fr() },
            },
            tab,
        ));
    }
    let tab = q.get("onglet").map(String::as_str).unwrap_or("toutes");
    let in_tab = |t: &str, rt: &str| t == "toutes" || t == rt || (t == "a-encaisser" && rt == "echues");
    let tabs = [
        ("brouillons", "Brouillons"),
        ("a-encaisser", "À encaisser"),
        ("echues", "Échues"),
        ("payees", "Payées"),
        ("toutes", "Toutes"),
    ]
    .into_iter()
    .map(|(k, label)| (k, label, rows.iter().filter(|(_, rt)| in_tab(k, rt)).count(), k == tab))
    .collect();
    let empty = match tab {
        "brouillons" => "Aucun brouillon : toutes les factures saisies sont validées.",
        "echues" => "Aucune facture échue.",
        "payees" => "Aucune facture payée pour l'instant.",
        _ => "Aucune facture. Créez la première depuis « Nouvelle facture ».",
    };
    let p = InvoicesPage {
        layout: Layout::for_page("Factures", INVOICES, &pc),
        tabs,
        rows: rows.into_iter().filter(|(_, rt)| in_tab(tab, rt)).map(|(r, _)| r).collect(),
        can_create: sales_writer(id.role),
        empty,
    };
    page(StatusCode::OK, p, &pc)
}

// ---- new invoice -----------------------------------------------------------------------------------------------------

const LINES: usize = 6;

#[derive(Default, Clone)]
pub struct LineForm {
    product: String,
    quantity: String,
    price: String,
    reason: String,
    discount: String,
}

#[derive(Default, Clone)]
pub struct InvoiceForm {
    client: String,
    method: String,
    notes: String,
    lines: Vec<LineForm>,
}

#[derive(Template)]
#[template(path = "invoice_new.html")]
struct NewInvoicePage {
    layout: Layout,
    form: InvoiceForm,
    clients: Vec<(String, String)>,
    products: Vec<(String, String)>,
    methods: Vec<(&'static str, &'static str)>,
    errors: Vec<String>,
}

async fn new_invoice_page(
    st: &AppState,
    pc: &PageCtx,
    form: InvoiceForm,
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let db = st.dbmon.db();
    let clients = store::catalogue::list_clients(db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.active)
        .map(|c| (c.code, c.raison_sociale))
        .collect();
    let products = store::catalogue::list_products(db, "PF")
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.active)
        .map(|p| (p.code, format!("{} — {}", p.name, fmt_money(p.list_price_ht))))
        .collect();
    let methods = vec![("", "Celui du client"), ("ESPECES", "Espèces"), ("CHEQUE", "Chèque"), ("VIREMENT", "Virement")];
    let mut layout = Layout::for_page("Nouvelle facture", INVOICES, pc);
    if !errors.is_empty() {
        layout.title = "Nouvelle facture (à corriger)".into();
    }
    page(status, NewInvoicePage { layout, form, clients, products, methods, errors }, pc)
}

async fn new_invoice(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let form = InvoiceForm {
        client: q.get("client").cloned().unwrap_or_default().to_uppercase(),
        lines: vec![LineForm::default(); LINES],
        ..Default::default()
    };
    new_invoice_page(&st, &pc, form, Vec::new(), StatusCode::OK).await
}

/// The form as the API's body; typing errors in the user's words.
fn invoice_body(raw: &HashMap<String, String>) -> (InvoiceForm, Result<InvoiceBody, Vec<String>>) {
    let get = |k: &str| raw.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let form = InvoiceForm {
        client: get("client"),
        method: get("method"),
        notes: get("notes"),
        lines: (0..LINES)
            .map(|i| LineForm {
                product: get(&format!("product_{i}")),
                quantity: get(&format!("quantity_{i}")),
                price: get(&format!("price_{i}")),
                reason: get(&format!("reason_{i}")),
                discount: get(&format!("discount_{i}")),
            })
            .collect(),
    };
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    for (i, l) in form.lines.iter().enumerate().filter(|(_, l)| !l.product.is_empty()) {
        let quantity = parse_qty(&l.quantity);
        if quantity.is_none() {
            errors.push(format!("Ligne {} : quantité illisible (par exemple 24).", i + 1));
        }
        let price = if l.price.is_empty() { None } else { parse_money(&l.price) };
        if !l.price.is_empty() && price.is_none() {
            errors.push(format!("Ligne {} : prix illisible (en dinars, par exemple 650,00).", i + 1));
        }
        let discount = if l.discount.is_empty() { Some(0) } else { parse_money(&l.discount) };
        if discount.is_none() {
            errors.push(format!("Ligne {} : remise illisible (en dinars).", i + 1));
        }
        lines.push(InvoiceLineBody {
            product_code: l.product.clone(),
            quantity: quantity.unwrap_or(0),
            unit_price_ht: price,
            price_reason: Some(l.reason.clone()).filter(|r| !r.is_empty()),
            discount: discount.filter(|d| *d > 0),
            tva_rate: None,
        });
    }
    if form.client.is_empty() {
        errors.push("Choisissez le client.".into());
    }
    if lines.is_empty() {
        errors.push("Ajoutez au moins une ligne.".into());
    }
    let body = InvoiceBody {
        client_code: form.client.clone(),
        payment_method: Some(form.method.clone()).filter(|m| !m.is_empty()),
        notes: Some(form.notes.clone()).filter(|n| !n.is_empty()),
        lines,
    };
    (form, if errors.is_empty() { Ok(body) } else { Err(errors) })
}

async fn create_invoice(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let (form, body) = invoice_body(&raw);
    let body = match body {
        Ok(b) => b,
        Err(errors) => return new_invoice_page(&st, &pc, form, errors, StatusCode::BAD_REQUEST).await,
    };
    let key = raw.get("_commande").cloned().unwrap_or_default();
    let idem = Idem::from_form(&key, &id, "/api/invoices", &serde_json::json!(body));
    match run_value(&st, idem, |idem| crate::api::sales::create_invoice(&st, &body, &id, &pc.ctx, idem)).await {
        Ok((_, v, _)) => {
            let key = text(&v["id"]);
            redirect_with_flash(
                &format!("{INVOICES}/{key}"),
                "succes",
                &format!("Brouillon enregistré : net à payer {}.", money(&v["net"])),
            )
        }
        Err(e) => {
            let errors = super::refusal_lines(&e, "lines[", "Ligne");
            new_invoice_page(&st, &pc, form, errors, e.status).await
        }
    }
}

// ---- one invoice -----------------------------------------------------------------------------------------------------

pub struct LineView {
    product: String,
    quantity: String,
    price: String,
    source: String,
    discount: String,
    rate: String,
    ht: String,
    delivered: String,
    remaining: String,
}

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage {
    layout: Layout,
    /// The printed document ("PDF" button), when this role may print it.
    pdf_url: Option<String>,
    key: String,
    reference: String,
    tone: &'static str,
    status: &'static str,
    draft: bool,
    facts: Vec<(&'static str, String)>,
    lines: Vec<LineView>,
    vat: Vec<(String, String, String)>,
    totals: Vec<(&'static str, String)>,
    words: String,
    /// (reference, date, method, amount, status)
    payments: Vec<(String, String, String, String, String)>,
    /// (key, reference, status, net)
    credit_notes: Vec<(String, String, String, String)>,
    /// (reference, status, created)
    deliveries: Vec<(String, String, String)>,
    remaining: String,
    method: String,
    can_write: bool,
    is_admin: bool,
    can_pay: bool,
    can_deliver: bool,
    can_credit: bool,
}

async fn invoice(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(key): Path<String>) -> Response {
    let v = match crate::api::sales::invoice_detail(st.dbmon.db().conn(), &key).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let status = InvoiceStatus::parse(v["status"].as_str().unwrap_or_default()).unwrap_or(InvoiceStatus::Draft);
    let draft = status == InvoiceStatus::Draft;
    let method = domain::timbre::Method::parse(&text(&v["paymentMethod"])).unwrap_or(domain::timbre::Method::Especes);
    let mut facts = vec![
        ("Client", format!("{} ({})", text(&v["clientName"]), text(&v["clientCode"]))),
        ("Mode de règlement", method.label_fr().to_string()),
    ];
    if !draft {
        facts.push(("Date", jdate(&v["invoiceDate"])));
        facts.push(("Échéance", jdate(&v["dueDate"])));
    }
    if let Some(n) = v["notes"].as_str() {
        facts.push(("Notes", n.to_string()));
    }
    if let Some(r) = v["creditOverrideReason"].as_str() {
        facts.push(("Dépassement du plafond accordé", r.to_string()));
    }
    let lines = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| LineView {
            product: format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
            quantity: jqty(&l["quantity"], &l["baseUnit"]),
            price: money(&l["unitPriceHt"]),
            source: domain::sales::PriceSource::parse(l["priceSource"].as_str().unwrap_or_default())
                .map(|s| s.label_fr().to_string())
                .unwrap_or_default(),
            discount: money(&l["discount"]),
            rate: domain::money::fmt_rate(l["tvaRate"].as_i64().unwrap_or(0), 0),
            ht: money(&l["ht"]),
            delivered: jqty(&l["delivered"], &l["baseUnit"]),
            remaining: jqty(&l["remainingToDeliver"], &l["baseUnit"]),
        })
        .collect();
    let vat = v["vat"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (domain::money::fmt_rate(r["rateBp"].as_i64().unwrap_or(0), 0), money(&r["base"]), money(&r["tva"])))
        .collect();
    let mut totals = vec![
        ("Total HT", money(&v["totalHt"])),
        ("Total TVA", money(&v["totalTva"])),
        ("Total TTC", money(&v["totalTtc"])),
    ];
    if v["timbre"].as_i64().unwrap_or(0) > 0 {
        totals.push(("Timbre fiscal (espèces)", money(&v["timbre"])));
    }
    totals.push(("NET À PAYER", money(&v["net"])));
    if !draft {
        totals.push(("Réglé", money(&v["paid"])));
        totals.push(("Crédité par avoir", money(&v["credited"])));
        totals.push(("Reste à payer", money(&v["remaining"])));
    }
    let payments = v["payments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let m = domain::timbre::Method::parse(&text(&p["method"])).map(|m| m.label_fr()).unwrap_or_default();
            let s = if p["status"] == "ANNULE" {
                format!("Annulé : {}", text(&p["cancelReason"]))
            } else {
                "Enregistré".into()
            };
            (text(&p["reference"]), jdate(&p["date"]), m.to_string(), money(&p["amount"]), s)
        })
        .collect();
    let credit_notes = v["creditNotes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let s = if n["status"] == "VALIDATED" { "Validé" } else { "Brouillon" };
            (
                text(&n["id"]),
                n["reference"].as_str().unwrap_or("Brouillon").to_string(),
                s.to_string(),
                money(&n["net"]),
            )
        })
        .collect();
    let deliveries = v["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let s = BlStatus::parse(&text(&d["status"])).map(|s| s.label_fr()).unwrap_or_default();
            (text(&d["reference"]), s.to_string(), jtime(&d["createdAt"]))
        })
        .collect();
    let open = matches!(status, InvoiceStatus::Validated | InvoiceStatus::PartiallyPaid | InvoiceStatus::Paid);
    let to_deliver =
        v["lines"].as_array().into_iter().flatten().any(|l| l["remainingToDeliver"].as_i64().unwrap_or(0) > 0);
    let writer = sales_writer(id.role);
    let reference = v["reference"].as_str().map(str::to_string);
    let title = reference.clone().unwrap_or_else(|| "Facture (brouillon)".into());
    let p = InvoicePage {
        pdf_url: reference.as_ref().map(|r| format!("/api/invoices/{r}/pdf")),
        layout: Layout::for_page(&title, INVOICES, &pc),
        key: reference.clone().unwrap_or_else(|| text(&v["id"])),
        reference: title,
        tone: invoice_badge(status),
        status: status.label_fr(),
        draft,
        facts,
        lines,
        vat,
        totals,
        words: text(&v["amountInWords"]),
        payments,
        credit_notes,
        deliveries,
        remaining: v["remaining"].as_i64().map(|c| format!("{},{:02}", c / 100, c % 100)).unwrap_or_default(),
        method: method.code().into(),
        can_write: writer && draft,
        is_admin: id.role == Role::Admin,
        can_pay: writer && matches!(status, InvoiceStatus::Validated | InvoiceStatus::PartiallyPaid),
        can_deliver: writer && open && to_deliver,
        can_credit: writer && open,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ActionForm {
    override_reason: String,
    reason: String,
    amount: String,
    date: String,
    cheque_number: String,
    bank_name: String,
    cheque_date: String,
    bank_reference: String,
    note: String,
    payload: String,
    recipient_name: String,
    signature: String,
    #[allow(dead_code)]
    _csrf: String,
}

async fn validate_invoice(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let reason = Some(f.override_reason.trim().to_string()).filter(|r| !r.is_empty());
    match crate::api::sales::validate_invoice(&st, &key, reason, &id, &pc.ctx).await {
        Ok(v) => {
            let reference = text(&v["reference"]);
            redirect_with_flash(&format!("{INVOICES}/{reference}"), "succes", &format!("Facture {reference} validée."))
        }
        Err(e) => redirect_with_flash(&format!("{INVOICES}/{key}"), "erreur", &e.message),
    }
}

async fn delete_invoice(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(key): Path<String>) -> Response {
    match crate::api::sales::delete_invoice(&st, &key, &id, &pc.ctx).await {
        Ok(()) => redirect_with_flash(INVOICES, "succes", "Brouillon supprimé."),
        Err(e) => redirect_with_flash(&format!("{INVOICES}/{key}"), "erreur", &e.message),
    }
}

async fn pay(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| raw.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let back = format!("{INVOICES}/{key}");
    let Some(amount) = get("amount").as_deref().and_then(parse_money) else {
        return redirect_with_flash(&back, "erreur", "Montant illisible (en dinars, par exemple 10 000,00).");
    };
    let date = |k: &str| get(k).and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let body = PaymentBody {
        method: get("method").unwrap_or_default(),
        amount,
        date: date("date"),
        cheque_number: get("cheque_number"),
        bank_name: get("bank_name"),
        cheque_date: date("cheque_date"),
        bank_reference: get("bank_reference"),
        notes: get("notes"),
    };
    let idem = Idem::from_form(
        &get("_commande").unwrap_or_default(),
        &id,
        "/api/invoices/{key}/payments",
        &serde_json::json!({"invoice": key, "body": body}),
    );
    match run_value(&st, idem, |idem| crate::api::sales::record_payment(&st, &key, &body, &id, &pc.ctx, idem)).await {
        Ok((_, v, _)) => redirect_with_flash(
            &back,
            "succes",
            &format!(
                "Règlement {} enregistré. Reste à payer : {}.",
                text(&v["payment"]["reference"]),
                money(&v["remaining"])
            ),
        ),
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

async fn credit_total(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let body = crate::api::sales::CreditNoteBody { reason: f.reason, total: Some(true), lines: None };
    match crate::api::sales::create_credit_note(&st, &key, &body, &id, &pc.ctx).await {
        Ok(v) => redirect_with_flash(
            &format!("/ventes/avoirs/{}", text(&v["id"])),
            "succes",
            &format!("Avoir enregistré en brouillon : {}.", money(&v["net"])),
        ),
        Err(e) => redirect_with_flash(&format!("{INVOICES}/{key}"), "erreur", &e.message),
    }
}

async fn deliver_rest(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(key): Path<String>) -> Response {
    let body = crate::api::delivery::DeliveryBody {
        invoice: key.clone(),
        lines: None,
        delivery_address: None,
        vehicle: None,
        driver_user_id: None,
        driver_name: None,
        notes: None,
    };
    match crate::api::delivery::create_delivery(&st, &body, &id, &pc.ctx).await {
        Ok(v) => {
            let r = text(&v["reference"]);
            redirect_with_flash(&format!("{DELIVERIES}/{r}"), "succes", &format!("Bon de livraison {r} préparé."))
        }
        Err(e) => redirect_with_flash(&format!("{INVOICES}/{key}"), "erreur", &e.message),
    }
}

// ---- new delivery note (UI.md row 74) ----------------------------------------------------------------------------------

pub struct BlLineForm {
    line_no: i64,
    label: String,
    remaining: String,
    value: String,
    error: String,
}

#[derive(Template)]
#[template(path = "delivery_new.html")]
struct NewDeliveryPage {
    layout: Layout,
    invoice: String,
    lines: Vec<BlLineForm>,
    address: String,
    vehicle: String,
    driver: String,
    driver_name: String,
    /// (user id, "Prénom Nom (rôle)")
    drivers: Vec<(String, String)>,
    summary: Vec<String>,
}

async fn new_delivery_page(
    st: &AppState,
    pc: &PageCtx,
    key: &str,
    form: Option<(&HashMap<String, String>, &ApiError)>,
) -> Response {
    let v = match crate::api::sales::invoice_detail(st.dbmon.db().conn(), key).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let field = |k: &str| form.and_then(|(f, _)| f.get(k).cloned());
    let errors: Vec<(String, String)> = form
        .map(|(_, e)| {
            e.details["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| (text(&f["field"]), text(&f["message"])))
                .collect()
        })
        .unwrap_or_default();
    let lines = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["remainingToDeliver"].as_i64().unwrap_or(0) > 0)
        .enumerate()
        .map(|(i, l)| {
            let name = format!("qty_{i}");
            BlLineForm {
                line_no: l["lineNo"].as_i64().unwrap_or(0),
                label: format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
                remaining: jqty(&l["remainingToDeliver"], &l["baseUnit"]),
                value: field(&name)
                    .unwrap_or_else(|| domain::money::fmt_qty_input(l["remainingToDeliver"].as_i64().unwrap_or(0))),
                error: errors.iter().find(|(f, _)| *f == name).map(|(_, m)| m.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let client = store::catalogue::client_by_code(st.dbmon.db().conn(), &text(&v["clientCode"])).await.ok().flatten();
    let drivers = store::identity::list_users(st.dbmon.db())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.is_active && (u.role == "COMMERCIAL" || u.role == "ADMIN"))
        .map(|u| (u.id.to_string(), format!("{} {}", u.first_name, u.last_name)))
        .collect();
    let summary = match form {
        Some((_, e)) if errors.is_empty() => vec![e.message.clone()],
        Some(_) => errors.iter().map(|(_, m)| m.clone()).collect(),
        None => Vec::new(),
    };
    let p = NewDeliveryPage {
        layout: Layout::for_page("Nouvelle livraison", DELIVERIES, pc),
        invoice: text(&v["reference"]),
        lines,
        address: field("address")
            .unwrap_or_else(|| client.and_then(|c| c.delivery_address.or(c.adresse)).unwrap_or_default()),
        vehicle: field("vehicle").unwrap_or_default(),
        driver: field("driver").unwrap_or_default(),
        driver_name: field("driver_name").unwrap_or_default(),
        drivers,
        summary,
    };
    let status = form.map_or(StatusCode::OK, |(_, e)| e.status);
    page(status, p, pc)
}

async fn new_delivery(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    new_delivery_page(&st, &pc, q.get("facture").map(String::as_str).unwrap_or_default(), None).await
}

/// Quantities typed per line (empty or 0: the line is not on this BL), driver, vehicle, address.
async fn create_delivery(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let key = q.get("facture").cloned().unwrap_or_default();
    let opt = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut fields = domain::validation::Fields::new();
    let mut lines = Vec::new();
    for i in 0.. {
        let Some(line_no) = f.get(&format!("line_{i}")).and_then(|v| v.parse::<i32>().ok()) else { break };
        let name = format!("qty_{i}");
        match opt(&name).map(|v| domain::money::parse_qty(&v)) {
            None | Some(Some(0)) => {}
            Some(Some(q)) => lines.push(crate::api::delivery::DeliveryLineBody { line_no, quantity: q }),
            Some(None) => fields.add(&name, "VALEUR_INVALIDE", "Quantité attendue, par exemple 12 ou 12,5."),
        }
    }
    if lines.is_empty() && fields.is_empty() {
        fields.add("qty_0", "OBLIGATOIRE", "Indiquez au moins une quantité à livrer.");
    }
    let driver_user_id = opt("driver").and_then(|d| d.parse().ok());
    let result = match fields.into_result() {
        Err(r) => Err(ApiError::from(r)),
        Ok(()) => {
            let body = crate::api::delivery::DeliveryBody {
                invoice: key.clone(),
                lines: Some(lines),
                delivery_address: opt("address"),
                vehicle: opt("vehicle"),
                driver_user_id,
                driver_name: opt("driver_name"),
                notes: None,
            };
            crate::api::delivery::create_delivery(&st, &body, &id, &pc.ctx).await
        }
    };
    match result {
        Ok(v) => {
            let r = text(&v["reference"]);
            redirect_with_flash(&format!("{DELIVERIES}/{r}"), "succes", &format!("Bon de livraison {r} préparé."))
        }
        Err(e) => new_delivery_page(&st, &pc, &key, Some((&f, &e))).await,
    }
}

// ---- credit note -----------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "credit_note.html")]
struct CreditNotePage {
    layout: Layout,
    /// The printed document ("PDF" button), when this role may print it.
    pdf_url: Option<String>,
    key: String,
    reference: String,
    validated: bool,
    facts: Vec<(&'static str, String)>,
    /// (kind, product, quantity, HT, return lot)
    lines: Vec<(String, String, String, String, String)>,
    totals: Vec<(&'static str, String)>,
    can_validate: bool,
}

async fn credit_note(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(key): Path<String>) -> Response {
    let v = match crate::api::sales::credit_note_detail(st.dbmon.db().conn(), &key).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let validated = v["status"] == "VALIDATED";
    let reference = v["reference"].as_str().unwrap_or("Avoir (brouillon)").to_string();
    let facts =
        vec![("Sur facture", text(&v["invoice"])), ("Motif", text(&v["reason"])), ("Date", jdate(&v["creditDate"]))];
    let lines = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let kind = domain::sales::CreditKind::parse(&text(&l["kind"])).map(|k| k.label_fr()).unwrap_or_default();
            // A price correction has no quantity; a quantity shows in the product's own unit.
            let q = if l["quantity"].as_i64().unwrap_or(0) > 0 {
                jqty(&l["quantity"], &l["baseUnit"])
            } else {
                "—".into()
            };
            (kind.to_string(), text(&l["productCode"]), q, money(&l["ht"]), text(&l["returnLot"]))
        })
        .collect();
    let totals = vec![
        ("Total HT", money(&v["totalHt"])),
        ("TVA", money(&v["totalTva"])),
        ("Total TTC", money(&v["totalTtc"])),
        ("Timbre crédité", money(&v["timbre"])),
        ("Net de l'avoir", money(&v["net"])),
    ];
    let p = CreditNotePage {
        pdf_url: validated.then(|| format!("/api/credit-notes/{reference}/pdf")),
        layout: Layout::for_page(&reference, INVOICES, &pc),
        key: text(&v["id"]),
        reference,
        validated,
        facts,
        lines,
        totals,
        can_validate: !validated && id.role == Role::Admin,
    };
    page(StatusCode::OK, p, &pc)
}

async fn validate_credit_note(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
) -> Response {
    match crate::api::sales::validate_credit_note(&st, &key, &id, &pc.ctx).await {
        Ok(v) => redirect_with_flash(
            &format!("/ventes/avoirs/{key}"),
            "succes",
            &format!("Avoir {} validé.", text(&v["reference"])),
        ),
        Err(e) => redirect_with_flash(&format!("/ventes/avoirs/{key}"), "erreur", &e.message),
    }
}

// ---- price lists ------------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "price_lists.html")]
struct PriceListsPage {
    layout: Layout,
    /// (name, client type, validity, active, tiers "PF ≥ q : price", id)
    rows: Vec<(String, String, String, bool, Vec<String>, String)>,
    can_write: bool,
}

async fn price_lists(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let c = st.dbmon.db().conn();
    let all = match store::sales::price_lists_with_items(c).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let mut codes = HashMap::new();
    for p in store::catalogue::list_products(st.dbmon.db(), "PF").await.unwrap_or_default() {
        codes.insert(p.id, p.code);
    }
    let rows = all
        .iter()
        .map(|(l, items)| {
            let validity = match l.valid_to {
                Some(t) => format!("du {} au {}", fmt_date(l.valid_from), fmt_date(t)),
                None => format!("depuis le {}", fmt_date(l.valid_from)),
            };
            let tiers = items
                .iter()
                .map(|i| {
                    format!(
                        "{} à partir de {} : {}",
                        codes.get(&i.product_id).cloned().unwrap_or_default(),
                        fmt_qty(i.min_quantity, Unit::U),
                        fmt_money(i.unit_price)
                    )
                })
                .collect();
            (l.name.clone(), l.client_type.clone(), validity, l.active, tiers, l.id.to_string())
        })
        .collect();
    let p = PriceListsPage {
        layout: Layout::for_page("Tarifs", PRICE_LISTS, &pc),
        rows,
        can_write: id.role == Role::Admin,
    };
    page(StatusCode::OK, p, &pc)
}

const PRICE_LISTS: &str = "/ventes/tarifs";

/// Tiers a price list form offers (empty rows are ignored).
const TIER_ROWS: usize = 12;

pub struct TierForm {
    product: String,
    min: String,
    price: String,
}

#[derive(Template)]
#[template(path = "price_list_form.html")]
struct PriceListForm {
    layout: Layout,
    action: String,
    name: String,
    client_type: String,
    valid_from: String,
    valid_to: String,
    active: bool,
    tiers: Vec<TierForm>,
    /// (code, "Nom (code)")
    products: Vec<(String, String)>,
    client_types: Vec<&'static str>,
    errors: Vec<String>,
}

async fn price_list_form(
    st: &AppState,
    pc: &PageCtx,
    action: String,
    values: &HashMap<String, String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let products = store::catalogue::list_products(st.dbmon.db(), "PF")
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.active)
        .map(|p| (p.code.clone(), format!("{} ({})", p.name, p.code)))
        .collect();
    let v = |k: &str| values.get(k).cloned().unwrap_or_default();
    let p = PriceListForm {
        layout: Layout::for_page(if errors.is_empty() { "Tarif" } else { "Tarif (à corriger)" }, PRICE_LISTS, pc),
        action,
        name: v("name"),
        client_type: v("client_type"),
        valid_from: v("valid_from"),
        valid_to: v("valid_to"),
        active: values.get("active").is_some_and(|a| a == "on" || a == "true") || values.is_empty(),
        tiers: (0..TIER_ROWS)
            .map(|i| TierForm {
                product: v(&format!("product_{i}")),
                min: v(&format!("min_{i}")),
                price: v(&format!("price_{i}")),
            })
            .collect(),
        products,
        client_types: domain::catalogue::CLIENT_TYPES.to_vec(),
        errors,
    };
    page(status, p, pc)
}

async fn new_price_list(State(st): State<AppState>, pc: PageCtx) -> Response {
    price_list_form(&st, &pc, format!("{PRICE_LISTS}/nouveau"), &HashMap::new(), Vec::new(), StatusCode::OK).await
}

/// The form's values of a saved list (for "Modifier").
fn price_list_values(v: &Value) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("name".into(), text(&v["name"]));
    m.insert("client_type".into(), text(&v["clientType"]));
    m.insert("valid_from".into(), text(&v["validFrom"]));
    m.insert("valid_to".into(), text(&v["validTo"]));
    m.insert("active".into(), if v["active"] == true { "on".into() } else { String::new() });
    for (i, it) in v["items"].as_array().into_iter().flatten().enumerate() {
        m.insert(format!("product_{i}"), text(&it["productCode"]));
        m.insert(format!("min_{i}"), domain::money::fmt_qty_input(it["minQuantity"].as_i64().unwrap_or(0)));
        let c = it["unitPriceHt"].as_i64().unwrap_or(0);
        m.insert(format!("price_{i}"), format!("{},{:02}", c / 100, c % 100));
    }
    m
}

async fn edit_price_list(State(st): State<AppState>, pc: PageCtx, Path(pid): Path<uuid::Uuid>) -> Response {
    let v = match crate::api::sales::price_list_detail(&st, pid).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let values = price_list_values(&v);
    price_list_form(&st, &pc, format!("{PRICE_LISTS}/{pid}/modifier"), &values, Vec::new(), StatusCode::OK).await
}

/// Reads the form; quantities and prices as users type them. Every problem is reported, with its row.
fn price_list_body(f: &HashMap<String, String>) -> Result<crate::api::sales::PriceListBody, Vec<String>> {
    let mut errors = Vec::new();
    let date = |k: &str, label: &str, errors: &mut Vec<String>| {
        let raw = f.get(k).map(|s| s.trim()).unwrap_or_default();
        if raw.is_empty() {
            return None;
        }
        let d = raw.parse::<chrono::NaiveDate>().ok();
        if d.is_none() {
            errors.push(format!("{label} : date attendue."));
        }
        d
    };
    let valid_from = date("valid_from", "Valable à partir du", &mut errors);
    if valid_from.is_none() && f.get("valid_from").is_none_or(|s| s.trim().is_empty()) {
        errors.push("Valable à partir du : ce champ est obligatoire.".into());
    }
    let valid_to = date("valid_to", "Jusqu'au", &mut errors);
    let mut items = Vec::new();
    for i in 0..TIER_ROWS {
        let get = |k: &str| f.get(&format!("{k}_{i}")).map(|s| s.trim().to_string()).unwrap_or_default();
        let (product, min, price) = (get("product"), get("min"), get("price"));
        if product.is_empty() && min.is_empty() && price.is_empty() {
            continue;
        }
        let row = i + 1;
        let min = if min.is_empty() { Some(0) } else { domain::money::parse_qty(&min) };
        let price = domain::money::parse_money(&price);
        match (product.is_empty(), min, price) {
            (true, _, _) => errors.push(format!("Palier {row} : choisissez le produit.")),
            (_, None, _) => errors.push(format!("Palier {row} : quantité minimale attendue, par exemple 50.")),
            (_, _, None) => errors.push(format!("Palier {row} : prix HT attendu en dinars, par exemple 610,00.")),
            (false, Some(min), Some(price)) => items.push(crate::api::sales::PriceItemBody {
                product_code: product,
                min_quantity: min,
                unit_price_ht: price,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(crate::api::sales::PriceListBody {
        name: f.get("name").cloned().unwrap_or_default(),
        client_type: f.get("client_type").cloned().unwrap_or_default(),
        valid_from: valid_from.unwrap_or_default(),
        valid_to,
        active: Some(f.get("active").is_some_and(|a| a == "on")),
        items,
    })
}

async fn save_price_list_form(
    st: &AppState,
    pc: &PageCtx,
    id: &Identity,
    pid: Option<uuid::Uuid>,
    f: HashMap<String, String>,
) -> Response {
    let action = match pid {
        Some(p) => format!("{PRICE_LISTS}/{p}/modifier"),
        None => format!("{PRICE_LISTS}/nouveau"),
    };
    let body = match price_list_body(&f) {
        Ok(b) => b,
        Err(errors) => return price_list_form(st, pc, action, &f, errors, StatusCode::BAD_REQUEST).await,
    };
    match crate::api::sales::save_price_list(st, pid, &body, id, &pc.ctx).await {
        Ok(v) => redirect_with_flash(
            &format!("{PRICE_LISTS}/{}", text(&v["id"])),
            "succes",
            &format!("Tarif « {} » enregistré.", text(&v["name"])),
        ),
        Err(e) => {
            let mut errors: Vec<String> =
                e.details["fields"].as_array().into_iter().flatten().map(|x| text(&x["message"])).collect();
            if errors.is_empty() {
                errors.push(e.message.clone());
            }
            price_list_form(st, pc, action, &f, errors, e.status).await
        }
    }
}

async fn create_price_list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    save_price_list_form(&st, &pc, &id, None, f).await
}

async fn update_price_list(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(pid): Path<uuid::Uuid>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    save_price_list_form(&st, &pc, &id, Some(pid), f).await
}

#[derive(Template)]
#[template(path = "price_list.html")]
struct PriceListPage {
    layout: Layout,
    id: String,
    facts: Vec<(&'static str, String)>,
    /// (PF, "à partir de", prix HT)
    tiers: Vec<(String, String, String)>,
    can_write: bool,
    /// The "Tester un prix" form and its answer.
    test_type: String,
    test_product: String,
    test_qty: String,
    test_result: Option<String>,
    test_error: Option<String>,
    products: Vec<(String, String)>,
    client_types: Vec<&'static str>,
}

/// UI.md row 61: the tiers per PF, and "Tester un prix" — the price an invoice line would take today for a client
/// type, a PF and a quantity, with its source (this list, another one, or the list price).
async fn price_list_page(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(pid): Path<uuid::Uuid>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let v = match crate::api::sales::price_list_detail(&st, pid).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let c = st.dbmon.db().conn();
    let pfs = store::catalogue::list_products(st.dbmon.db(), "PF").await.unwrap_or_default();
    let name_of = |code: &str| pfs.iter().find(|p| p.code == code).map(|p| format!("{} ({})", p.name, p.code));
    let tiers = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let code = text(&i["productCode"]);
            let unit = pfs.iter().find(|p| p.code == code).map(|p| p.base_unit.clone()).unwrap_or_default();
            (name_of(&code).unwrap_or(code), jqty(&i["minQuantity"], &Value::from(unit)), money(&i["unitPriceHt"]))
        })
        .collect();
    let validity = match v["validTo"].as_str() {
        Some(_) => format!("du {} au {}", jdate(&v["validFrom"]), jdate(&v["validTo"])),
        None => format!("à partir du {}", jdate(&v["validFrom"])),
    };
    let facts = vec![
        ("Type de client", text(&v["clientType"])),
        ("Validité", validity),
        ("État", if v["active"] == true { "Actif".into() } else { "Inactif".into() }),
    ];
    let test_type = q.get("type").cloned().unwrap_or_else(|| text(&v["clientType"]));
    let test_product = q.get("produit").cloned().unwrap_or_default();
    let test_qty = q.get("quantite").cloned().unwrap_or_default();
    let (mut test_result, mut test_error) = (None, None);
    if !test_product.is_empty() {
        let today = domain::stock::today_algiers(st.clock.now());
        match (pfs.iter().find(|p| p.code == test_product), domain::money::parse_qty(&test_qty)) {
            (None, _) => test_error = Some("Choisissez un produit fini.".to_string()),
            (_, None) => test_error = Some("Quantité attendue, par exemple 60.".to_string()),
            (Some(p), Some(qty)) => {
                let lists = store::sales::domain_lists(c).await.unwrap_or_default();
                let (price, source) =
                    domain::sales::resolve_price(&lists, &test_type, &p.id.to_string(), qty, today, p.list_price_ht);
                let list = lists
                    .iter()
                    .filter(|l| l.active && l.client_type == test_type && l.valid_on(today))
                    .map(|l| l.id.clone())
                    .next();
                let from = match (source, list) {
                    (domain::sales::PriceSource::Tarif, Some(id)) if id == pid.to_string() => " (ce tarif)".to_string(),
                    (domain::sales::PriceSource::Tarif, _) => " (un autre tarif de ce type)".to_string(),
                    _ => String::new(),
                };
                test_result = Some(format!(
                    "{} de {} pour un client {} aujourd'hui : {} HT l'unité — source : {}{from}.",
                    fmt_qty(qty, Unit::parse(&p.base_unit).unwrap_or(Unit::U)),
                    p.name,
                    test_type,
                    fmt_money(price),
                    source.label_fr()
                ));
            }
        }
    }
    let p = PriceListPage {
        layout: Layout::for_page(&text(&v["name"]), PRICE_LISTS, &pc),
        id: pid.to_string(),
        facts,
        tiers,
        can_write: id.role == Role::Admin,
        test_type,
        test_product,
        test_qty,
        test_result,
        test_error,
        products: pfs
            .iter()
            .filter(|p| p.active)
            .map(|p| (p.code.clone(), format!("{} ({})", p.name, p.code)))
            .collect(),
        client_types: domain::catalogue::CLIENT_TYPES.to_vec(),
    };
    page(StatusCode::OK, p, &pc)
}

// ---- deliveries ------------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    layout: Layout,
    tabs: Vec<(&'static str, &'static str, usize, bool)>,
    /// (reference, invoice, client, driver, date, tone, status)
    rows: Vec<(String, String, String, String, String, &'static str, &'static str)>,
    empty: &'static str,
}

async fn deliveries(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let c = st.dbmon.db().conn();
    let all = match store::delivery::list(c, None, None, None).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let mut rows = Vec::new();
    for d in &all {
        let status = store::delivery::status_of(d);
        let invoice = store::sales::find_invoice(c, &d.invoice_id.to_string()).await.ok().flatten();
        let client = store::catalogue::client_by_id(c, d.client_id).await.ok().flatten();
        let tab = match status {
            BlStatus::Pending => "a-valider",
            BlStatus::Validated => "a-livrer",
            BlStatus::Delivered => "livrees",
            BlStatus::Cancelled => "annulees",
        };
        rows.push((
            (
                d.reference.clone(),
                invoice.and_then(|i| i.reference).unwrap_or_default(),
                client.map(|c| c.raison_sociale).unwrap_or_default(),
                d.driver_name.clone().unwrap_or_else(|| "—".into()),
                domain::format::datetime_algiers(d.created_at.timestamp()),
                bl_badge(status),
                status.label_fr(),
            ),
            tab,
        ));
    }
    let tab = q.get("onglet").map(String::as_str).unwrap_or("a-valider");
    let tabs = [("a-valider", "À valider"), ("a-livrer", "À livrer"), ("livrees", "Livrées"), ("annulees", "Annulées")]
        .into_iter()
        .map(|(k, label)| (k, label, rows.iter().filter(|(_, t)| *t == k).count(), k == tab))
        .collect();
    let empty = match tab {
        "a-valider" => "Aucun bon de livraison à valider. Préparez-en un depuis une facture validée.",
        "a-livrer" => "Aucun bon de livraison sorti du stock en attente de livraison.",
        "livrees" => "Aucune livraison terminée.",
        _ => "Aucun bon de livraison annulé.",
    };
    let p = DeliveriesPage {
        layout: Layout::for_page("Livraisons", DELIVERIES, &pc),
        tabs,
        rows: rows.into_iter().filter(|(_, t)| *t == tab).map(|(r, _)| r).collect(),
        empty,
    };
    page(StatusCode::OK, p, &pc)
}

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    layout: Layout,
    /// The printed document ("PDF" button), when this role may print it.
    pdf_url: Option<String>,
    reference: String,
    tone: &'static str,
    status: &'static str,
    qr_svg: String,
    facts: Vec<(&'static str, String)>,
    /// (product, quantity, storage, lots "L (DLC) : q")
    lines: Vec<(String, String, String, Vec<String>)>,
    /// (time, outcome)
    scans: Vec<(String, String)>,
    can_validate: bool,
    can_deliver: bool,
    can_cancel: bool,
    has_signature: bool,
}

async fn delivery(State(st): State<AppState>, pc: PageCtx, id: Identity, Path(key): Path<String>) -> Response {
    let v = match crate::api::delivery::delivery_detail(&st, &key).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let status = BlStatus::parse(&text(&v["status"])).unwrap_or(BlStatus::Pending);
    let mut facts = vec![
        ("Facture", text(&v["invoice"])),
        ("Client", format!("{} ({})", text(&v["clientName"]), text(&v["clientCode"]))),
        ("Adresse de livraison", text(&v["deliveryAddress"])),
        ("Préparé le", jtime(&v["createdAt"])),
    ];
    if let Some(d) = v["vehicle"].as_str() {
        facts.push(("Véhicule", d.to_string()));
    }
    if let Some(d) = v["driverName"].as_str() {
        facts.push(("Livreur", d.to_string()));
    }
    if v["validatedAt"].is_string() {
        let mode = if v["validationMode"] == "QR" { "scan du QR code" } else { "confirmation manuelle" };
        facts.push(("Sorti du stock", format!("{} ({mode})", jtime(&v["validatedAt"]))));
    }
    if let Some(n) = v["validationNote"].as_str() {
        facts.push(("Note de validation", n.to_string()));
    }
    if v["deliveredAt"].is_string() {
        facts.push(("Livré", format!("{} — reçu par {}", jtime(&v["deliveredAt"]), text(&v["recipientName"]))));
    }
    if let Some(r) = v["cancelReason"].as_str() {
        facts.push(("Motif d'annulation", r.to_string()));
    }
    let lines = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let lots = l["lots"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!("{} (DLC {}) : {}", text(&a["lot"]), jdate(&a["dlc"]), jqty(&a["quantity"], &l["baseUnit"]))
                })
                .collect();
            (
                format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
                jqty(&l["quantity"], &l["baseUnit"]),
                domain::catalogue::storage_label(&text(&l["storageType"])).to_string(),
                lots,
            )
        })
        .collect();
    let reference = text(&v["reference"]);
    let scans = store::delivery::scans_of(st.dbmon.db().conn(), &reference)
        .await
        .unwrap_or_default()
        .iter()
        .map(|s| (domain::format::datetime_algiers(s.at.timestamp()), format!("{} — {}", s.mode, s.outcome)))
        .collect();
    let writer = sales_writer(id.role);
    let d_id = v["id"].as_str().and_then(|s| s.parse().ok());
    let has_signature = match d_id {
        Some(did) => store::delivery::proof_of(st.dbmon.db().conn(), did, "SIGNATURE").await.ok().flatten().is_some(),
        None => false,
    };
    let p = DeliveryPage {
        pdf_url: Some(format!("/api/deliveries/{reference}/pdf")),
        layout: Layout::for_page(&reference, DELIVERIES, &pc),
        qr_svg: v["qr"].as_str().map(crate::print::qr_svg).unwrap_or_default(),
        reference,
        tone: bl_badge(status),
        status: status.label_fr(),
        facts,
        lines,
        scans,
        can_validate: writer && status == BlStatus::Pending,
        can_deliver: writer && status == BlStatus::Validated,
        can_cancel: writer && status == BlStatus::Pending,
        has_signature,
    };
    page(StatusCode::OK, p, &pc)
}

/// Back to the BL page with the outcome: "{LIV} {done}." or the refusal in French.
fn bl_outcome(key: &str, result: Result<Value, ApiError>, done: &str) -> Response {
    match result {
        Ok(v) => {
            let r = text(&v["reference"]);
            redirect_with_flash(&format!("{DELIVERIES}/{r}"), "succes", &format!("{r} {done}."))
        }
        Err(e) => redirect_with_flash(&format!("{DELIVERIES}/{key}"), "erreur", &e.message),
    }
}

const SHIPPED: &str = "validé : le stock est sorti";

async fn scan_bl(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let how = Attempt::Scan { payload: f.payload };
    bl_outcome(&key, crate::api::delivery::attempt(&st, &id, &pc.ctx, how, None, None).await, SHIPPED)
}

async fn confirm_bl(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let how = Attempt::Manual { key: key.clone(), note: f.note };
    bl_outcome(&key, crate::api::delivery::attempt(&st, &id, &pc.ctx, how, None, None).await, SHIPPED)
}

/// The form is `multipart/form-data`: the signature drawn on the pad (with JavaScript, a data URL), or a PNG file
/// chosen without it (UI.md row 75), and an optional JPEG photo. A chosen file wins over the pad.
async fn deliver_bl(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use super::multipart;
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (name, drawn, file, photo) = match multipart::boundary(content_type) {
        Some(b) => {
            let parts = multipart::parse(&body, &b);
            (
                multipart::text(&parts, "recipient_name").unwrap_or_default(),
                multipart::text(&parts, "signature"),
                multipart::file(&parts, "signature_file"),
                multipart::file(&parts, "photo_file"),
            )
        }
        None => {
            let f: ActionForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            (f.recipient_name, Some(f.signature), None, None)
        }
    };
    let signature = match file {
        Some(png) => Ok(Some(png)),
        None => crate::api::delivery::decode("signature", &drawn),
    };
    let result = match signature {
        Err(e) => Err(e),
        Ok(signature_png) => {
            let proof =
                store::delivery::Proof { recipient_name: name, signature_png, photo_jpeg: photo, gps: None, at: None };
            crate::api::delivery::deliver_proof(&st, &key, proof, &id, &pc.ctx).await
        }
    };
    bl_outcome(&key, result, "livré")
}

async fn cancel_bl(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(key): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    bl_outcome(&key, crate::api::delivery::cancel_with(&st, &key, &f.reason, &id, &pc.ctx).await, "annulé")
}

async fn signature(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    use axum::response::IntoResponse;
    let c = st.dbmon.db().conn();
    let Ok(Some(d)) = store::delivery::find(c, &key).await else { return super::not_found().await };
    match store::delivery::proof_of(c, d.id, "SIGNATURE").await {
        Ok(Some((ct, data))) => ([(axum::http::header::CONTENT_TYPE, ct)], data).into_response(),
        _ => super::not_found().await,
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(INVOICES, get(invoices))
        .route("/ventes/factures/nouvelle", get(new_invoice).post(create_invoice))
        .route("/ventes/factures/{key}", get(invoice))
        .route("/ventes/factures/{key}/valider", post(validate_invoice))
        .route("/ventes/factures/{key}/supprimer", post(delete_invoice))
        .route("/ventes/factures/{key}/reglement", post(pay))
        .route("/ventes/factures/{key}/avoir-total", post(credit_total))
        .route("/ventes/factures/{key}/livrer", post(deliver_rest))
        .route("/ventes/avoirs/{key}", get(credit_note))
        .route("/ventes/avoirs/{key}/valider", post(validate_credit_note))
        .route("/ventes/tarifs", get(price_lists))
        .route("/ventes/tarifs/nouveau", get(new_price_list).post(create_price_list))
        .route("/ventes/tarifs/{id}", get(price_list_page))
        .route("/ventes/tarifs/{id}/modifier", get(edit_price_list).post(update_price_list))
        .route(DELIVERIES, get(deliveries))
        .route("/livraisons/nouvelle", get(new_delivery).post(create_delivery))
        .route("/livraisons/{key}", get(delivery))
        .route("/livraisons/{key}/scanner", post(scan_bl))
        .route("/livraisons/{key}/confirmer", post(confirm_bl))
        .route("/livraisons/{key}/livrer", post(deliver_bl))
        .route("/livraisons/{key}/annuler", post(cancel_bl))
        .route("/livraisons/{key}/signature", get(signature))
}

// ---- accounting exports ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "accounting_exports.html")]
struct ExportsPage {
    layout: Layout,
    from: String,
    to: String,
    from_fr: String,
    to_fr: String,
    exports: Vec<(&'static str, &'static str, usize)>,
    g50: Vec<(String, String, String, String)>,
    verdict: String,
    net: String,
    timbre: String,
}

/// UI.md rows 78–79: the period, the five exports with their line counts, and the G50 of the period.
async fn exports(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let date = |k: &str| q.get(k).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let pq = crate::api::accounting::PeriodQuery { from: date("from"), to: date("to"), format: None };
    let (from, to) = match crate::api::accounting::period(&pq, today) {
        Ok(p) => p,
        Err(e) => return redirect_with_flash("/comptabilite/exports", "erreur", &e.message),
    };
    let mut list = Vec::new();
    let mut g = Value::Null;
    for (kind, label) in crate::api::accounting::EXPORTS {
        match crate::api::accounting::export(&st, kind, from, to).await {
            Ok((rows, v)) => {
                list.push((kind, label, rows.len().saturating_sub(1)));
                if kind == "g50" {
                    g = v;
                }
            }
            Err(e) => return super::unavailable_page(&e.message),
        }
    }
    let mut g50 = Vec::new();
    for (label, key) in [("TVA collectée", "collected"), ("TVA déductible", "deductible")] {
        for r in g[key].as_array().into_iter().flatten() {
            g50.push((
                label.to_string(),
                domain::money::fmt_rate(r["rateBp"].as_i64().unwrap_or(0), 0),
                money(&r["base"]),
                money(&r["tva"]),
            ));
        }
    }
    let p = ExportsPage {
        layout: Layout::for_page("Exports comptables", "/comptabilite/exports", &pc),
        from: from.to_string(),
        to: to.to_string(),
        from_fr: fmt_date(from),
        to_fr: fmt_date(to),
        exports: list,
        g50,
        verdict: text(&g["verdict"]),
        net: g["net"].as_i64().map(|n| fmt_money(n.abs())).unwrap_or_default(),
        timbre: money(&g["timbre"]),
    };
    page(StatusCode::OK, p, &pc)
}

pub fn accounting_router() -> Router<AppState> {
    Router::new().route("/comptabilite/exports", get(exports))
}

// ---- sales dashboard ------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "sales_dashboard.html")]
struct SalesDashboard {
    layout: Layout,
    ca: String,
    invoices_today: i64,
    collected: String,
    cash: (String, String, String),
    drafts: i64,
    bl_pending: i64,
    bl_road: i64,
    aging: Vec<(&'static str, String)>,
    overdue: String,
    chart: String,
    can_create: bool,
}

/// UI.md row 13: today's sales and cash, drafts to finish, BLs waiting, receivables aging, 30 days of sales.
async fn dashboard(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let today = domain::stock::today_algiers(st.clock.now());
    let k = match store::kpi::sales_kpis(st.dbmon.db().conn(), today).await {
        Ok(k) => k,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let points: Vec<super::charts::Point> = k
        .daily_ht
        .iter()
        .map(|(d, v)| super::charts::Point {
            label: d.format("%d/%m").to_string(),
            value: Some(*v / 100),
            text: format!("{} : {}", fmt_date(*d), fmt_money(*v)),
        })
        .collect();
    let p = SalesDashboard {
        layout: Layout::for_page("Tableau de bord ventes", "/ventes", &pc),
        ca: fmt_money(k.ca_ht),
        invoices_today: k.invoices_today,
        collected: fmt_money(k.collected.iter().sum()),
        cash: (fmt_money(k.collected[0]), fmt_money(k.collected[1]), fmt_money(k.collected[2])),
        drafts: k.drafts,
        bl_pending: k.bl_pending,
        bl_road: k.bl_on_the_road,
        aging: domain::sales::AGING_LABELS.iter().zip(k.aging.buckets).map(|(l, v)| (*l, fmt_money(v))).collect(),
        overdue: fmt_money(k.aging.overdue),
        chart: super::charts::bars("graphe-ventes", "CA HT par jour", "DA", &points),
        can_create: sales_writer(id.role),
    };
    page(StatusCode::OK, p, &pc)
}

pub fn dashboard_router() -> Router<AppState> {
    Router::new().route("/ventes", get(dashboard))
}

// ---- payments and aging ---------------------------------------------------------------------------------------------

pub struct PaymentRow {
    reference: String,
    date: String,
    client: String,
    invoice: String,
    method: &'static str,
    amount: String,
    kind: &'static str,
    active: bool,
    cancel_reason: String,
}

#[derive(Template)]
#[template(path = "payments.html")]
struct PaymentsPage {
    layout: Layout,
    rows: Vec<PaymentRow>,
    day: (String, String, String),
    can_cancel: bool,
}

/// UI.md rows 68 and 70: payments and refunds, the day's cash per method, and the ADMIN's cancellation with a reason.
async fn payments(State(st): State<AppState>, pc: PageCtx, id: Identity) -> Response {
    let c = st.dbmon.db().conn();
    let all = match store::sales::all_payments(c).await {
        Ok(a) => a,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let today = domain::stock::today_algiers(st.clock.now());
    let k = store::kpi::sales_kpis(c, today).await.unwrap_or_default();
    let mut rows = Vec::new();
    for p in &all {
        let client = store::catalogue::client_by_id(c, p.client_id).await.ok().flatten();
        let invoice = match p.invoice_id {
            Some(i) => store::sales::find_invoice(c, &i.to_string()).await.ok().flatten().and_then(|i| i.reference),
            None => None,
        };
        rows.push(PaymentRow {
            reference: p.reference.clone(),
            date: fmt_date(p.payment_date),
            client: client.map(|c| c.raison_sociale).unwrap_or_default(),
            invoice: invoice.unwrap_or_default(),
            method: domain::timbre::Method::parse(&p.method).map(|m| m.label_fr()).unwrap_or_default(),
            amount: fmt_money(p.amount),
            kind: if p.kind == "REMBOURSEMENT" { "Remboursement" } else { "Règlement" },
            active: p.status == "ACTIVE",
            cancel_reason: p.cancel_reason.clone().unwrap_or_default(),
        });
    }
    let p = PaymentsPage {
        layout: Layout::for_page("Règlements", "/ventes/reglements", &pc),
        rows,
        day: (fmt_money(k.collected[0]), fmt_money(k.collected[1]), fmt_money(k.collected[2])),
        can_cancel: id.role == Role::Admin,
    };
    page(StatusCode::OK, p, &pc)
}

async fn cancel_payment(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(reference): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    match crate::api::sales::cancel_payment(&st, &reference, &f.reason, &id, &pc.ctx).await {
        Ok(v) => redirect_with_flash(
            "/ventes/reglements",
            "succes",
            &format!("Règlement {} annulé : la facture et le solde du client sont recalculés.", text(&v["reference"])),
        ),
        Err(e) => redirect_with_flash("/ventes/reglements", "erreur", &e.message),
    }
}

#[derive(Template)]
#[template(path = "aging.html")]
struct AgingPage {
    layout: Layout,
    today: String,
    labels: Vec<&'static str>,
    /// (client, buckets, overdue, total, client code)
    rows: Vec<(String, Vec<String>, String, String, String)>,
    totals: (Vec<String>, String, String),
}

/// UI.md row 72: receivables per client by age of the invoice, overdue and total, with the totals row.
async fn aging(State(st): State<AppState>, pc: PageCtx) -> Response {
    let c = st.dbmon.db().conn();
    let today = domain::stock::today_algiers(st.clock.now());
    let clients = store::catalogue::list_clients(st.dbmon.db()).await.unwrap_or_default();
    let mut rows = Vec::new();
    let (mut sums, mut overdue) = ([0i64; 4], 0i64);
    for cl in clients {
        let a = match store::sales::aging(c, Some(cl.id), today).await {
            Ok(a) => a,
            Err(e) => return super::unavailable_page(&ApiError::from(e).message),
        };
        let total: i64 = a.buckets.iter().sum();
        if total == 0 {
            continue;
        }
        for (s, b) in sums.iter_mut().zip(a.buckets) {
            *s += b;
        }
        overdue += a.overdue;
        rows.push((
            format!("{} ({})", cl.raison_sociale, cl.code),
            a.buckets.iter().map(|b| fmt_money(*b)).collect(),
            fmt_money(a.overdue),
            fmt_money(total),
            cl.code.clone(),
        ));
    }
    let p = AgingPage {
        layout: Layout::for_page("Balance âgée", "/ventes/balance-agee", &pc),
        today: fmt_date(today),
        labels: domain::sales::AGING_LABELS.to_vec(),
        rows,
        totals: (sums.iter().map(|s| fmt_money(*s)).collect(), fmt_money(overdue), fmt_money(sums.iter().sum())),
    };
    page(StatusCode::OK, p, &pc)
}

pub struct StatementRow {
    date: String,
    reference: String,
    /// The document's page (invoices, credit notes).
    link: Option<String>,
    label: String,
    debit: String,
    credit: String,
    balance: String,
}

/// UI.md row 28: a client's statement for a period — opening balance, invoices, credit notes, payments and refunds
/// by date with the running balance, closing balance, what is overdue.
#[derive(Template)]
#[template(path = "statement.html")]
struct StatementPage {
    layout: Layout,
    code: String,
    from: String,
    to: String,
    facts: Vec<(&'static str, String)>,
    rows: Vec<StatementRow>,
    opening: String,
    closing: String,
    error: Option<String>,
    /// ADMIN, and the client has overpaid.
    can_refund: bool,
}

async fn statement(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let date = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(|v| v.parse::<chrono::NaiveDate>());
    // An unreadable date is said, and the default period shown meanwhile.
    let (from, to, unreadable) = match (date("from"), date("to")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            (None, None, Some("Date invalide : format attendu JJ/MM/AAAA.".to_string()))
        }
        (f, t) => (f.and_then(Result::ok), t.and_then(Result::ok), None),
    };
    let (v, error) = match crate::api::sales::statement(&st, &code, from, to).await {
        Ok(v) => (v, unreadable),
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) if e.code == "DATE_INVALIDE" => match crate::api::sales::statement(&st, &code, None, None).await {
            Ok(v) => (v, Some(e.message)),
            Err(e) => return super::unavailable_page(&e.message),
        },
        Err(e) => return super::unavailable_page(&e.message),
    };
    let name = format!("{} ({})", text(&v["clientName"]), text(&v["clientCode"]));
    let facts = vec![
        ("Client", name.clone()),
        ("Période", format!("du {} au {}", jdate(&v["from"]), jdate(&v["to"]))),
        ("Solde à ce jour", money(&v["balance"])),
        ("Dont échu", money(&v["aging"]["overdue"])),
        ("Plafond de crédit", v["creditLimit"].as_i64().map(fmt_money).unwrap_or_else(|| "aucun".into())),
    ];
    let amount = |x: &Value| match x.as_i64() {
        Some(0) | None => String::new(),
        Some(c) => fmt_money(c),
    };
    let rows = v["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let r = text(&e["reference"]);
            let link = if r.starts_with("F-") {
                Some(format!("/ventes/factures/{r}"))
            } else if r.starts_with("AV-") {
                Some(format!("/ventes/avoirs/{r}"))
            } else {
                None
            };
            StatementRow {
                date: jdate(&e["date"]),
                reference: r,
                link,
                label: text(&e["label"]),
                debit: amount(&e["debit"]),
                credit: amount(&e["credit"]),
                balance: money(&e["balance"]),
            }
        })
        .collect();
    let p = StatementPage {
        layout: Layout::for_page(&format!("Relevé de compte — {name}"), "/ventes/balance-agee", &pc),
        code: text(&v["clientCode"]),
        from: text(&v["from"]),
        to: text(&v["to"]),
        facts,
        rows,
        opening: money(&v["opening"]),
        closing: money(&v["closing"]),
        error,
        can_refund: id.role == Role::Admin && v["balance"].as_i64().unwrap_or(0) < 0,
    };
    page(StatusCode::OK, p, &pc)
}

/// UI.md row 71 (ADMIN): refunding what a client overpaid (negative balance), never more.
#[derive(Template)]
#[template(path = "refund_new.html")]
struct RefundPage {
    layout: Layout,
    code: String,
    client: String,
    overpaid: String,
    method: String,
    values: HashMap<String, String>,
    methods: Vec<(&'static str, &'static str)>,
    errors: Vec<String>,
}

async fn refund_page(
    st: &AppState,
    pc: &PageCtx,
    code: &str,
    values: HashMap<String, String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let v = match crate::api::sales::statement(st, code, None, None).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let p = RefundPage {
        layout: Layout::for_page("Nouveau remboursement", "/ventes/reglements", pc),
        code: text(&v["clientCode"]),
        client: format!("{} ({})", text(&v["clientName"]), text(&v["clientCode"])),
        overpaid: fmt_money((-v["balance"].as_i64().unwrap_or(0)).max(0)),
        method: values.get("method").cloned().unwrap_or_default(),
        values,
        methods: domain::timbre::Method::ALL.iter().map(|m| (m.code(), m.label_fr())).collect(),
        errors,
    };
    page(status, p, pc)
}

async fn new_refund(State(st): State<AppState>, pc: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = q.get("client").cloned().unwrap_or_default();
    refund_page(&st, &pc, &code, HashMap::new(), Vec::new(), StatusCode::OK).await
}

async fn create_refund(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let code = q.get("client").cloned().unwrap_or_default();
    let opt = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let date = |k: &str| opt(k).and_then(|d| d.parse::<chrono::NaiveDate>().ok());
    let Some(amount) = opt("amount").and_then(|a| domain::money::parse_money(&a)) else {
        let e = vec!["Montant attendu en dinars, par exemple 1 500,00.".to_string()];
        return refund_page(&st, &pc, &code, f, e, StatusCode::BAD_REQUEST).await;
    };
    let body = crate::api::sales::PaymentBody {
        method: opt("method").unwrap_or_default(),
        amount,
        date: date("date"),
        cheque_number: opt("cheque_number"),
        bank_name: opt("bank_name"),
        cheque_date: date("cheque_date"),
        bank_reference: opt("bank_reference"),
        notes: opt("notes"),
    };
    match crate::api::sales::refund_for(&st, &code, &body, &id, &pc.ctx).await {
        Ok(v) => redirect_with_flash(
            &format!("/clients/{code}/releve"),
            "succes",
            &format!("Remboursement {} de {} enregistré.", text(&v["reference"]), money(&v["amount"])),
        ),
        Err(e) => refund_page(&st, &pc, &code, f, vec![e.message.clone()], e.status).await,
    }
}

pub fn ledger_router() -> Router<AppState> {
    Router::new()
        .route("/clients/{code}/releve", get(statement))
        .route("/ventes/remboursements/nouveau", get(new_refund).post(create_refund))
        .route("/ventes/reglements", get(payments))
        .route("/ventes/reglements/{reference}/annuler", post(cancel_payment))
        .route("/ventes/balance-agee", get(aging))
}

// ---- new credit note ------------------------------------------------------------------------------------------------

pub struct CreditLineForm {
    line_no: i64,
    label: String,
    max: String,
}

#[derive(Template)]
#[template(path = "credit_note_new.html")]
struct NewCreditNotePage {
    layout: Layout,
    invoice: String,
    reason: String,
    lines: Vec<CreditLineForm>,
    kinds: Vec<(&'static str, &'static str)>,
}

/// UI.md row 66: each invoice line with what each kind may still take.
async fn new_credit_note(
    State(st): State<AppState>,
    pc: PageCtx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = q.get("facture").cloned().unwrap_or_default();
    let v = match crate::api::sales::invoice_detail(st.dbmon.db().conn(), &key).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return super::not_found().await,
        Err(e) => return super::unavailable_page(&e.message),
    };
    let lines = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let delivered = l["delivered"].as_i64().unwrap_or(0) - l["returned"].as_i64().unwrap_or(0);
            CreditLineForm {
                line_no: l["lineNo"].as_i64().unwrap_or(0),
                label: format!(
                    "{} — {} à {}",
                    text(&l["productName"]),
                    jqty(&l["quantity"], &l["baseUnit"]),
                    money(&l["unitPriceHt"])
                ),
                max: format!(
                    "non livré {} · livré {}",
                    jqty(&l["remainingToDeliver"], &l["baseUnit"]),
                    jqty(&Value::from(delivered.max(0)), &l["baseUnit"])
                ),
            }
        })
        .collect();
    let kinds = domain::sales::CreditKind::ALL.iter().map(|k| (k.code(), k.label_fr())).collect();
    let p = NewCreditNotePage {
        layout: Layout::for_page("Nouvel avoir", INVOICES, &pc),
        invoice: text(&v["reference"]),
        reason: String::new(),
        lines,
        kinds,
    };
    page(StatusCode::OK, p, &pc)
}

async fn create_credit_note(
    State(st): State<AppState>,
    pc: PageCtx,
    id: Identity,
    Query(q): Query<HashMap<String, String>>,
    Form(raw): Form<HashMap<String, String>>,
) -> Response {
    let key = q.get("facture").cloned().unwrap_or_default();
    let back = format!("/ventes/avoirs/nouveau?facture={key}");
    let get = |k: &str| raw.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let mut lines = Vec::new();
    for i in 0..100 {
        let Some(line) = raw.get(&format!("line_{i}")) else { break };
        let amount = get(&format!("amount_{i}"));
        if amount.is_empty() {
            continue;
        }
        let kind = get(&format!("kind_{i}"));
        let prix = kind == domain::sales::CreditKind::Prix.code();
        let parsed = if prix { parse_money(&amount) } else { parse_qty(&amount) };
        let Some(value) = parsed else {
            return redirect_with_flash(&back, "erreur", &format!("Ligne {} : quantité ou montant illisible.", i + 1));
        };
        lines.push(crate::api::sales::CreditLineBody {
            line_no: line.parse().unwrap_or(0),
            kind,
            quantity: (!prix).then_some(value),
            amount_ht: prix.then_some(value),
        });
    }
    if lines.is_empty() {
        return redirect_with_flash(&back, "erreur", "Indiquez au moins une quantité ou un montant à créditer.");
    }
    let body = crate::api::sales::CreditNoteBody { reason: get("reason"), total: None, lines: Some(lines) };
    match crate::api::sales::create_credit_note(&st, &key, &body, &id, &pc.ctx).await {
        Ok(v) => redirect_with_flash(
            &format!("/ventes/avoirs/{}", text(&v["id"])),
            "succes",
            &format!("Avoir enregistré en brouillon : {}.", money(&v["net"])),
        ),
        Err(e) => redirect_with_flash(&back, "erreur", &e.message),
    }
}

pub fn credit_router() -> Router<AppState> {
    Router::new().route("/ventes/avoirs/nouveau", get(new_credit_note).post(create_credit_note))
}

// ---- scan log ------------------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "scan_log.html")]
struct ScanLogPage {
    layout: Layout,
    /// (time, user, device, IP, mode, reference, outcome)
    rows: Vec<(String, String, String, String, String, String, String)>,
}

/// UI.md row 77 (DOMAIN §12.1): every attempt, success or not, the latest 500.
async fn scan_log(State(st): State<AppState>, pc: PageCtx) -> Response {
    let c = st.dbmon.db().conn();
    let rows = match store::delivery::recent_scans(c, 500).await {
        Ok(r) => r,
        Err(e) => return super::unavailable_page(&ApiError::from(e).message),
    };
    let mut out = Vec::new();
    for r in rows {
        let user = match r.user_id {
            Some(u) => store::identity::user_by_id(c, u).await.ok().flatten().map(|u| u.email).unwrap_or_default(),
            None => String::new(),
        };
        out.push((
            domain::format::datetime_algiers(r.at.timestamp()),
            user,
            r.device_id.unwrap_or_else(|| "—".into()),
            r.ip.unwrap_or_default(),
            r.mode,
            r.reference.unwrap_or_else(|| "—".into()),
            r.outcome,
        ));
    }
    page(
        StatusCode::OK,
        ScanLogPage { layout: Layout::for_page("Journal des scans", "/livraisons/scans", &pc), rows: out },
        &pc,
    )
}

pub fn scan_router() -> Router<AppState> {
    Router::new().route("/livraisons/scans", get(scan_log))
}
