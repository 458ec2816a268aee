//! Sales (DOMAIN.md §4.4, §10, §11): price lists, invoices from DRAFT to paid, payments and refunds, credit notes,
//! the client statement. Amounts are computed by the server whatever the client sends.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::identity::Role;
use domain::rejection::Rejection;
use domain::sales::{CreditKind, InvoiceStatus, PaymentInput};
use domain::timbre::Method;
use domain::validation::Fields;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::sales::{Invoice, NewCreditLine, NewInvoice, NewLine};
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalogue::write;
use super::idempotency::Idem;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

// ---- Bodies --------------------------------------------------------------------------------------------------------

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriceItemBody {
    pub product_code: String,
    /// Milli-units, ≥ 0: the tier applies from this quantity.
    pub min_quantity: i64,
    /// Centimes per base unit, HT.
    pub unit_price_ht: i64,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriceListBody {
    pub name: String,
    /// DISTRIBUTEUR, GROSSISTE, SUPERETTE, FAST_FOOD.
    pub client_type: String,
    #[schema(value_type = String, format = Date)]
    pub valid_from: NaiveDate,
    #[schema(value_type = Option<String>, format = Date)]
    pub valid_to: Option<NaiveDate>,
    pub active: Option<bool>,
    pub items: Vec<PriceItemBody>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvoiceLineBody {
    pub product_code: String,
    /// Milli-units (whole pieces for U).
    pub quantity: i64,
    /// An override of the resolved price (centimes per base unit); needs `priceReason` (≥ 10 characters).
    pub unit_price_ht: Option<i64>,
    pub price_reason: Option<String>,
    /// Remise in centimes, 0 ≤ remise ≤ gross.
    pub discount: Option<i64>,
    /// 0, 900 or 1900; default the PF's rate.
    pub tva_rate: Option<i64>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvoiceBody {
    pub client_code: String,
    /// ESPECES, CHEQUE, VIREMENT; default the client's.
    pub payment_method: Option<String>,
    pub notes: Option<String>,
    pub lines: Vec<InvoiceLineBody>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidateBody {
    /// ADMIN only: validates past the credit limit (≥ 10 characters, audited).
    pub override_reason: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentBody {
    /// ESPECES, CHEQUE, VIREMENT: the invoice's.
    pub method: String,
    /// Centimes, > 0 and ≤ the remaining amount.
    pub amount: i64,
    /// Default today; between the invoice date and today.
    #[schema(value_type = Option<String>, format = Date)]
    pub date: Option<NaiveDate>,
    pub cheque_number: Option<String>,
    pub bank_name: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub cheque_date: Option<NaiveDate>,
    pub bank_reference: Option<String>,
    pub notes: Option<String>,
}

impl PaymentBody {
    fn input(&self) -> PaymentInput {
        PaymentInput {
            method: self.method.clone(),
            amount: self.amount,
            date: self.date,
            cheque_number: self.cheque_number.clone(),
            bank_name: self.bank_name.clone(),
            cheque_date: self.cheque_date,
            bank_reference: self.bank_reference.clone(),
        }
    }
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreditLineBody {
    /// The invoice line number.
    pub line_no: i32,
    /// NON_LIVRE, RETOUR, SANS_RETOUR (a quantity) or PRIX (an HT amount).
    pub kind: String,
    pub quantity: Option<i64>,
    pub amount_ht: Option<i64>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreditNoteBody {
    /// At least 10 characters.
    pub reason: String,
    /// "Avoir total": every line's full remaining creditable quantity (the lines are then ignored).
    pub total: Option<bool>,
    pub lines: Option<Vec<CreditLineBody>>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceQuery {
    /// DRAFT, VALIDATED, PARTIALLY_PAID, PAID, CREDITED.
    pub status: Option<String>,
    /// Client code.
    pub client: Option<String>,
}

// ---- JSON ----------------------------------------------------------------------------------------------------------

fn vat_json(text: &str) -> Value {
    json!(
        store::sales::vat_rows(text)
            .iter()
            .map(|r| json!({"rateBp": r.rate_bp, "base": r.base, "tva": r.tva}))
            .collect::<Vec<_>>()
    )
}

async fn client_names(c: &impl store::ConnectionTrait, id: Uuid) -> Result<(String, String), ApiError> {
    let cl = store::catalogue::client_by_id(c, id).await?;
    Ok(cl.map_or_else(|| ("?".into(), "?".into()), |c| (c.code, c.raison_sociale)))
}

/// An invoice's header as lists show it, with what is paid, credited and left.
pub fn invoice_summary(i: &Invoice, client: &(String, String), credited: i64, paid: i64) -> Value {
    let status = store::sales::status_of(i);
    json!({
        "id": i.id, "reference": i.reference, "status": i.status, "statusLabel": status.label_fr(),
        "clientCode": client.0, "clientName": client.1, "paymentMethod": i.payment_method,
        "invoiceDate": i.invoice_date, "dueDate": i.due_date, "createdAt": i.created_at,
        "totalHt": i.total_ht, "totalTva": i.total_tva, "totalTtc": i.total_ttc, "timbre": i.timbre, "net": i.net,
        "credited": credited, "paid": paid,
        "remaining": if status.is_validated() { i.net - credited - paid } else { 0 },
    })
}

/// The whole invoice: lines with what each has been delivered and credited, payments, credit notes, BLs.
pub async fn invoice_detail(c: &impl store::ConnectionTrait, key: &str) -> Result<Value, ApiError> {
    let i =
        store::sales::find_invoice(c, key).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Facture")))?;
    let client = client_names(c, i.client_id).await?;
    let (credited, paid) = store::sales::credited_and_paid(c, i.id).await?;
    let mut v = invoice_summary(&i, &client, credited, paid);
    let mut lines = Vec::new();
    for (l, f) in store::sales::creditable_lines(c, i.id).await? {
        let p = store::stock::product(c, l.product_id).await?;
        lines.push(json!({
            "id": l.id, "lineNo": l.line_no, "productCode": p.as_ref().map(|p| p.code.clone()),
            "productName": p.as_ref().map(|p| p.name.clone()), "baseUnit": p.as_ref().map(|p| p.base_unit.clone()),
            "quantity": l.quantity, "unitPriceHt": l.unit_price, "priceSource": l.price_source,
            "priceReason": l.price_reason, "discount": l.discount, "tvaRate": l.rate_bp, "gross": l.gross,
            "ht": l.ht, "tva": l.tva, "remainingToDeliver": f.remaining_to_deliver(), "delivered": f.delivered,
            "returned": f.returned, "creditedQuantity": f.credited_quantity(),
        }));
    }
    let payments: Vec<Value> = store::sales::payments_of(c, i.id).await?.iter().map(payment_json).collect();
    let notes: Vec<Value> = store::sales::credit_notes_of(c, i.id)
        .await?
        .iter()
        .map(|n| json!({"id": n.id, "reference": n.reference, "status": n.status, "net": n.net, "creditDate": n.credit_date, "reason": n.reason}))
        .collect();
    let deliveries: Vec<Value> = store::delivery::list(c, None, Some(i.id), None)
        .await?
        .iter()
        .map(|d| json!({"id": d.id, "reference": d.reference, "status": d.status, "createdAt": d.created_at}))
        .collect();
    let extra = json!({
        "notes": i.notes, "vat": vat_json(&i.vat_breakdown), "timbreRule": i.timbre_rule,
        "timbreTranches": i.timbre_tranches, "creditOverrideReason": i.credit_override_reason,
        "validatedAt": i.validated_at, "paidAt": i.paid_at,
        "amountInWords": i.reference.as_ref().map(|_| domain::words::amount_dinars(i.net)),
        "lines": lines, "payments": payments, "creditNotes": notes, "deliveries": deliveries,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Ok(v)
}

pub fn payment_json(p: &store::sales::Payment) -> Value {
    json!({
        "reference": p.reference, "kind": p.kind, "method": p.method, "amount": p.amount, "date": p.payment_date,
        "chequeNumber": p.cheque_number, "bankName": p.bank_name, "chequeDate": p.cheque_date,
        "bankReference": p.bank_reference, "status": p.status, "cancelReason": p.cancel_reason,
        "cancelDate": p.cancel_date,
    })
}

pub async fn credit_note_detail(c: &impl store::ConnectionTrait, key: &str) -> Result<Value, ApiError> {
    let n =
        store::sales::find_credit_note(c, key).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Avoir")))?;
    let invoice = store::sales::find_invoice(c, &n.invoice_id.to_string()).await?;
    let by_id: HashMap<Uuid, store::sales::InvoiceLine> =
        store::sales::lines_of(c, n.invoice_id).await?.into_iter().map(|l| (l.id, l)).collect();
    let mut lines = Vec::new();
    for l in store::sales::credit_note_lines_of(c, n.id).await? {
        let il = by_id.get(&l.invoice_line_id);
        let product = match il {
            Some(il) => store::stock::product(c, il.product_id).await?,
            None => None,
        };
        let lot = match l.return_lot_id {
            Some(id) => store::stock::lot_by_id(c, id).await?.map(|l| l.lot_number),
            None => None,
        };
        lines.push(json!({
            "lineNo": l.line_no, "invoiceLineNo": il.map(|i| i.line_no), "productCode": product.as_ref().map(|p| p.code.clone()),
            "productName": product.as_ref().map(|p| p.name.clone()),
            "baseUnit": product.as_ref().map(|p| p.base_unit.clone()), "kind": l.kind,
            "quantity": l.quantity, "ht": l.ht, "tva": l.tva, "tvaRate": l.rate_bp, "returnLot": lot,
        }));
    }
    Ok(json!({
        "id": n.id, "reference": n.reference, "status": n.status, "reason": n.reason, "creditDate": n.credit_date,
        "invoice": invoice.as_ref().and_then(|i| i.reference.clone()), "invoiceId": n.invoice_id,
        "totalHt": n.total_ht, "totalTva": n.total_tva, "totalTtc": n.total_ttc, "timbre": n.timbre, "net": n.net,
        "vat": vat_json(&n.vat_breakdown), "lines": lines,
        "amountInWords": n.reference.as_ref().map(|_| domain::words::amount_dinars(n.net)),
    }))
}

// ---- Price lists ---------------------------------------------------------------------------------------------------

async fn price_list_input(st: &AppState, b: &PriceListBody) -> Result<store::sales::NewPriceList, ApiError> {
    let c = st.dbmon.db().conn();
    let mut f = Fields::new();
    let name = f.text("name", &b.name, 2, 120);
    let mut items = Vec::new();
    for (i, it) in b.items.iter().enumerate() {
        match store::catalogue::product_by_code(c, &it.product_code).await? {
            Some(p) if p.kind == "PF" => items.push((p, it.min_quantity, it.unit_price_ht)),
            _ => f.add(
                &format!("items[{i}].productCode"),
                "NON_TROUVE",
                format!("Produit fini {} introuvable.", it.product_code),
            ),
        }
    }
    f.into_result()?;
    Ok(store::sales::NewPriceList {
        name,
        client_type: b.client_type.trim().to_uppercase(),
        valid_from: b.valid_from,
        valid_to: b.valid_to,
        active: b.active.unwrap_or(true),
        items,
    })
}

/// One price list as JSON (API and pages).
pub async fn price_list_detail(st: &AppState, id: Uuid) -> Result<Value, ApiError> {
    price_list_value(st, id).await
}

async fn price_list_value(st: &AppState, id: Uuid) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let (l, items) =
        store::sales::price_list(c, id).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Tarif")))?;
    let mut codes = HashMap::new();
    for i in &items {
        if let Some(p) = store::stock::product(c, i.product_id).await? {
            codes.insert(p.id, p.code);
        }
    }
    Ok(store::sales::price_list_json(&l, &items, &codes))
}

pub async fn save_price_list(
    st: &AppState,
    id: Option<Uuid>,
    b: &PriceListBody,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let new = price_list_input(st, b).await?;
    let (actor, now) = (who.actor(ctx), st.clock.now());
    let row = write(st, move |tx| {
        let (new, actor) = (new.clone(), actor.clone());
        Box::pin(async move { store::sales::save_price_list(&**tx, id, new, &actor, now).await })
    })
    .await?;
    price_list_value(st, row.id).await
}

#[utoipa::path(get, path = "/api/price-lists", tag = "sales", responses((status = 200, description = "Tarifs par type de client")))]
pub async fn list_price_lists(State(st): State<AppState>) -> Response {
    let c = st.dbmon.db().conn();
    let result: Result<Value, ApiError> = async {
        let all = store::sales::price_lists_with_items(c).await?;
        let mut codes = HashMap::new();
        for p in store::catalogue::list_products(st.dbmon.db(), "PF").await? {
            codes.insert(p.id, p.code);
        }
        Ok(json!({"items": all.iter().map(|(l, i)| store::sales::price_list_json(l, i, &codes)).collect::<Vec<_>>()}))
    }
    .await;
    result.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/price-lists", tag = "sales", request_body = PriceListBody, responses(
    (status = 201, description = "Tarif créé"), (status = 409, description = "TARIF_CHEVAUCHEMENT"),
    (status = 422, description = "LIGNE_DOUBLON, DATE_INVALIDE")))]
pub async fn create_price_list(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<PriceListBody>,
) -> Response {
    save_price_list(&st, None, &b, &id, &ctx).await.map(|v| (StatusCode::CREATED, Json(v))).into_response()
}

#[utoipa::path(get, path = "/api/price-lists/{id}", tag = "sales", responses((status = 200, description = "Un tarif et ses paliers")))]
pub async fn get_price_list(State(st): State<AppState>, Path(pid): Path<Uuid>) -> Response {
    price_list_value(&st, pid).await.map(Json).into_response()
}

#[utoipa::path(put, path = "/api/price-lists/{id}", tag = "sales", request_body = PriceListBody, responses(
    (status = 200, description = "Tarif remplacé"), (status = 409, description = "TARIF_CHEVAUCHEMENT")))]
pub async fn update_price_list(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(pid): Path<Uuid>,
    ApiJson(b): ApiJson<PriceListBody>,
) -> Response {
    save_price_list(&st, Some(pid), &b, &id, &ctx).await.map(Json).into_response()
}

// ---- Invoices ------------------------------------------------------------------------------------------------------

/// The client and lines of an invoice body, checked field by field.
pub async fn invoice_input(st: &AppState, b: &InvoiceBody) -> Result<NewInvoice, ApiError> {
    let c = st.dbmon.db().conn();
    let mut f = Fields::new();
    let client = store::catalogue::client_by_code(c, &b.client_code).await?;
    if client.is_none() {
        f.add("clientCode", "NON_TROUVE", format!("Client {} introuvable.", b.client_code));
    }
    let method = match b.payment_method.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => {
            let parsed = Method::parse(m);
            if parsed.is_none() {
                f.add("paymentMethod", "INVALID", "Mode de règlement : ESPECES, CHEQUE ou VIREMENT.");
            }
            parsed
        }
    };
    let mut lines = Vec::new();
    for (i, l) in b.lines.iter().enumerate() {
        match store::catalogue::product_by_code(c, &l.product_code).await? {
            Some(p) if p.kind == "PF" => lines.push(NewLine {
                product: p,
                quantity: l.quantity,
                unit_price: l.unit_price_ht,
                price_reason: l.price_reason.clone(),
                discount: l.discount.unwrap_or(0),
                rate_bp: l.tva_rate,
            }),
            _ => f.add(
                &format!("lines[{i}].productCode"),
                "NON_TROUVE",
                format!("Produit fini {} introuvable.", l.product_code),
            ),
        }
    }
    f.into_result()?;
    Ok(NewInvoice { client: client.expect("checked above"), method, notes: b.notes.clone(), lines })
}

pub async fn create_invoice(
    st: &AppState,
    b: &InvoiceBody,
    who: &Identity,
    ctx: &Ctx,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let new = invoice_input(st, b).await?;
    let (actor, now) = (who.actor(ctx), st.clock.now());
    super::idempotency::create(st, &idem, now, |tx| {
        let (new, actor) = (new.clone(), actor.clone());
        Box::pin(async move {
            let i = store::sales::create_draft(&**tx, new, &actor, now).await?;
            invoice_detail(&**tx, &i.id.to_string()).await.map_err(api_to_op)
        })
    })
    .await
}

/// Reading inside a write (the answer stored with an idempotency key) fails only on the database.
fn api_to_op(e: ApiError) -> store::OpError {
    store::OpError::Store(store::StoreError::Other(format!("{e:?}")))
}

#[utoipa::path(post, path = "/api/invoices", tag = "sales", request_body = InvoiceBody, responses(
    (status = 201, description = "Facture créée en brouillon (sans numéro), prix résolus et totaux calculés"),
    (status = 422, description = "LIGNE_DOUBLON, QUANTITE_INVALIDE, REMISE_INVALIDE, TVA_INVALIDE, MOTIF_TROP_COURT"),
    (status = 409, description = "CLIENT_INACTIF, PRODUIT_INACTIF")))]
pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    ApiJson(b): ApiJson<InvoiceBody>,
) -> Response {
    super::idempotency::handle(&st, &headers, &id, "/api/invoices", json!(b), |idem| {
        create_invoice(&st, &b, &id, &ctx, idem)
    })
    .await
}

#[utoipa::path(get, path = "/api/invoices", tag = "sales", params(InvoiceQuery), responses(
    (status = 200, description = "Factures, les plus récentes d'abord")))]
pub async fn list(State(st): State<AppState>, Query(q): Query<InvoiceQuery>) -> Response {
    let c = st.dbmon.db().conn();
    let result: Result<Value, ApiError> = async {
        let status =
            match q.status.as_deref() {
                Some(s) => Some(InvoiceStatus::parse(s.trim()).ok_or_else(|| {
                    ApiError::from(Rejection::new("VALEUR_HORS_LIMITES", 422, "Valeur hors limites."))
                })?),
                None => None,
            };
        let client = match q.client.as_deref() {
            Some(code) => Some(
                store::catalogue::client_by_code(c, code)
                    .await?
                    .ok_or_else(|| ApiError::from(Rejection::non_trouve("Client")))?
                    .id,
            ),
            None => None,
        };
        let mut items = Vec::new();
        for i in store::sales::list_invoices(c, status, client).await? {
            let names = client_names(c, i.client_id).await?;
            let (credited, paid) = store::sales::credited_and_paid(c, i.id).await?;
            items.push(invoice_summary(&i, &names, credited, paid));
        }
        Ok(json!({"items": items}))
    }
    .await;
    result.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/invoices/{key}", tag = "sales", responses(
    (status = 200, description = "La facture (id ou numéro) avec lignes, règlements, avoirs et BL")))]
pub async fn get(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    invoice_detail(st.dbmon.db().conn(), &key).await.map(Json).into_response()
}

#[utoipa::path(put, path = "/api/invoices/{key}", tag = "sales", request_body = InvoiceBody, responses(
    (status = 200, description = "Brouillon modifié, tout recalculé"),
    (status = 409, description = "FACTURE_VALIDEE_NON_MODIFIABLE")))]
pub async fn update(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<InvoiceBody>,
) -> Response {
    update_invoice(&st, &key, &b, &id, &ctx).await.map(Json).into_response()
}

pub async fn update_invoice(
    st: &AppState,
    key: &str,
    b: &InvoiceBody,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    // A validated invoice is refused before its body is even read.
    if let Some(i) = store::sales::find_invoice(st.dbmon.db().conn(), key).await? {
        domain::sales::check_editable(store::sales::status_of(&i))?;
    }
    let new = invoice_input(st, b).await?;
    let (actor, now, k) = (who.actor(ctx), st.clock.now(), key.to_string());
    let i = write(st, move |tx| {
        let (new, actor, k) = (new.clone(), actor.clone(), k.clone());
        Box::pin(async move { store::sales::update_draft(&**tx, &k, new, &actor, now).await })
    })
    .await?;
    invoice_detail(st.dbmon.db().conn(), &i.id.to_string()).await
}

#[utoipa::path(delete, path = "/api/invoices/{key}", tag = "sales", responses(
    (status = 204, description = "Brouillon supprimé (le journal d'audit en garde le contenu)"),
    (status = 409, description = "FACTURE_VALIDEE_NON_MODIFIABLE")))]
pub async fn delete(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(key): Path<String>) -> Response {
    delete_invoice(&st, &key, &id, &ctx).await.map(|_| StatusCode::NO_CONTENT).into_response()
}

pub async fn delete_invoice(st: &AppState, key: &str, who: &Identity, ctx: &Ctx) -> Result<(), ApiError> {
    let (actor, now, k) = (who.actor(ctx), st.clock.now(), key.to_string());
    write(st, move |tx| {
        let (actor, k) = (actor.clone(), k.clone());
        Box::pin(async move { store::sales::delete_draft(&**tx, &k, &actor, now).await })
    })
    .await
}

pub async fn validate_invoice(
    st: &AppState,
    key: &str,
    override_reason: Option<String>,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let (actor, now, k, admin) = (who.actor(ctx), st.clock.now(), key.to_string(), who.role == Role::Admin);
    let i = write(st, move |tx| {
        let (actor, k, r) = (actor.clone(), k.clone(), override_reason.clone());
        Box::pin(async move { store::sales::validate(&**tx, &k, r.as_deref(), admin, &actor, now).await })
    })
    .await?;
    invoice_detail(st.dbmon.db().conn(), &i.id.to_string()).await
}

#[utoipa::path(post, path = "/api/invoices/{key}/validate", tag = "sales", request_body = ValidateBody, responses(
    (status = 200, description = "Validée : numéro F-AAAA-NNNNN, date, échéance, totaux et timbre figés"),
    (status = 409, description = "TRANSITION_INVALIDE, PARAMETRES_SOCIETE_INCOMPLETS, PRIX_MODIFIES, STOCK_NON_DISPONIBLE, PLAFOND_CREDIT_DEPASSE, CLIENT_INACTIF"),
    (status = 422, description = "FACTURE_VIDE, CLIENT_IDENTIFIANTS_MANQUANTS")))]
pub async fn validate(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ValidateBody>,
) -> Response {
    validate_invoice(&st, &key, b.override_reason, &id, &ctx).await.map(Json).into_response()
}

// ---- Payments ------------------------------------------------------------------------------------------------------

pub async fn record_payment(
    st: &AppState,
    key: &str,
    b: &PaymentBody,
    who: &Identity,
    ctx: &Ctx,
    idem: Option<Idem>,
) -> Result<(StatusCode, Value), ApiError> {
    let (actor, now, k, input, notes) = (who.actor(ctx), st.clock.now(), key.to_string(), b.input(), b.notes.clone());
    super::idempotency::create(st, &idem, now, |tx| {
        let (actor, k, input, notes) = (actor.clone(), k.clone(), input.clone(), notes.clone());
        Box::pin(async move {
            let (p, i) = store::sales::record_payment(&**tx, &k, input, notes, &actor, now).await?;
            let left = store::sales::remaining(&**tx, &i).await?;
            Ok(json!({"payment": payment_json(&p), "invoiceStatus": i.status, "remaining": left}))
        })
    })
    .await
}

#[utoipa::path(post, path = "/api/invoices/{key}/payments", tag = "sales", request_body = PaymentBody, responses(
    (status = 201, description = "Règlement REG-AAAA-NNNNN enregistré ; statut de la facture recalculé"),
    (status = 409, description = "FACTURE_STATUT_INVALIDE"),
    (status = 422, description = "MODE_REGLEMENT_DIFFERENT, MONTANT_SUPERIEUR_RESTANT, CHEQUE_INCOMPLET, REFERENCE_VIREMENT_REQUISE, DATE_INVALIDE")))]
pub async fn pay(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    headers: HeaderMap,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<PaymentBody>,
) -> Response {
    super::idempotency::handle(
        &st,
        &headers,
        &id,
        "/api/invoices/{key}/payments",
        json!({"invoice": key, "body": b}),
        |idem| record_payment(&st, &key, &b, &id, &ctx, idem),
    )
    .await
}

pub async fn cancel_payment(
    st: &AppState,
    reference: &str,
    reason: &str,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let (actor, now, r, why) = (who.actor(ctx), st.clock.now(), reference.to_string(), reason.to_string());
    let p = write(st, move |tx| {
        let (actor, r, why) = (actor.clone(), r.clone(), why.clone());
        Box::pin(async move { store::sales::cancel_payment(&**tx, &r, &why, &actor, now).await })
    })
    .await?;
    Ok(payment_json(&p))
}

#[utoipa::path(post, path = "/api/payments/{reference}/cancel", tag = "sales", request_body = ReasonBody, responses(
    (status = 200, description = "Règlement annulé (chèque impayé…) ; la facture et le solde sont recalculés"),
    (status = 422, description = "MOTIF_TROP_COURT"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn cancel_pay(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(reference): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Response {
    cancel_payment(&st, &reference, &b.reason, &id, &ctx).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/clients/{code}/refunds", tag = "sales", request_body = PaymentBody, responses(
    (status = 201, description = "Remboursement d'un trop-perçu"),
    (status = 422, description = "MONTANT_SUPERIEUR_RESTANT, CHEQUE_INCOMPLET, REFERENCE_VIREMENT_REQUISE")))]
pub async fn refund(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<PaymentBody>,
) -> Response {
    refund_for(&st, &code, &b, &id, &ctx).await.map(|v| (StatusCode::CREATED, Json(v))).into_response()
}

/// Refunds a client's overpayment (API and page).
pub async fn refund_for(
    st: &AppState,
    code: &str,
    b: &PaymentBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let client = store::catalogue::client_by_code(st.dbmon.db().conn(), code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Client")))?;
    let (actor, now, input, notes) = (id.actor(ctx), st.clock.now(), b.input(), b.notes.clone());
    let p = write(st, move |tx| {
        let (actor, input, notes) = (actor.clone(), input.clone(), notes.clone());
        Box::pin(async move { store::sales::refund(&**tx, client.id, input, notes, &actor, now).await })
    })
    .await?;
    Ok(payment_json(&p))
}

/// The client statement: account, aging and invoices.
pub async fn statement(
    st: &AppState,
    code: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let client = store::catalogue::client_by_code(c, code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Client")))?;
    let today = domain::stock::today_algiers(st.clock.now());
    let account = store::sales::account(c, client.id).await?;
    let aging = store::sales::aging(c, Some(client.id), today).await?;
    // The dated ledger of the period (default: the calendar year to date) with its running balance.
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| NaiveDate::from_ymd_opt(chrono::Datelike::year(&to), 1, 1).unwrap_or(to));
    if to < from {
        return Err(
            Rejection::new("DATE_INVALIDE", 422, "Date invalide : la fin de la période précède son début.").into()
        );
    }
    let ledger = domain::sales::account_statement(store::sales::account_entries(c, client.id).await?, from, to);
    let entries: Vec<Value> = ledger
        .lines
        .iter()
        .map(|(e, balance)| {
            json!({"date": e.date, "reference": e.reference, "label": e.label, "debit": e.debit, "credit": e.credit,
                   "balance": balance})
        })
        .collect();
    let mut invoices = Vec::new();
    for i in store::sales::list_invoices(c, None, Some(client.id)).await? {
        let (credited, paid) = store::sales::credited_and_paid(c, i.id).await?;
        invoices.push(invoice_summary(&i, &(client.code.clone(), client.raison_sociale.clone()), credited, paid));
    }
    Ok(json!({
        "clientCode": client.code, "clientName": client.raison_sociale, "creditLimit": client.credit_limit,
        "paymentTermsDays": client.payment_terms_days, "invoiced": account.invoiced, "credited": account.credited,
        "paid": account.paid, "refunded": account.refunded, "balance": account.balance(),
        "outstanding": account.balance().max(0),
        "aging": {"d0_30": aging.buckets[0], "d31_60": aging.buckets[1], "d61_90": aging.buckets[2], "over90": aging.buckets[3], "overdue": aging.overdue},
        "invoices": invoices, "from": from, "to": to, "opening": ledger.opening, "entries": entries,
        "closing": ledger.closing,
    }))
}

#[utoipa::path(get, path = "/api/clients/{code}/statement", tag = "sales", params(super::accounting::PeriodQuery), responses(
    (status = 200, description = "Relevé client : solde, balance âgée, factures, écritures datées avec solde progressif (CSV, Excel)")))]
pub async fn get_statement(
    State(st): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<super::accounting::PeriodQuery>,
) -> Response {
    let v = match statement(&st, &code, q.from, q.to).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match q.format.as_deref() {
        Some(f) if f.eq_ignore_ascii_case("csv") || f.eq_ignore_ascii_case("xlsx") => {
            super::production::file_answer("Releve", &code, f, &statement_rows(&v))
        }
        _ => Json(v).into_response(),
    }
}

/// The statement as export rows: opening, entries with the running balance, closing.
pub fn statement_rows(v: &Value) -> Vec<Vec<crate::export::Cell>> {
    use crate::export::Cell::{Number, Text};
    let amount = |c: i64| {
        let a = c.unsigned_abs();
        Number(format!("{}{}.{:02}", if c < 0 { "-" } else { "" }, a / 100, a % 100))
    };
    let t = |s: &str| Text(s.to_string());
    let date =
        |v: &Value| Text(v.as_str().and_then(|d| d.parse().ok()).map(domain::stock::fmt_date).unwrap_or_default());
    let mut rows = vec![["date", "piece", "libelle", "debit", "credit", "solde"].map(t).to_vec()];
    rows.push(vec![
        date(&v["from"]),
        t(""),
        t("Solde d'ouverture"),
        t(""),
        t(""),
        amount(v["opening"].as_i64().unwrap_or(0)),
    ]);
    for e in v["entries"].as_array().into_iter().flatten() {
        rows.push(vec![
            date(&e["date"]),
            Text(e["reference"].as_str().unwrap_or_default().to_string()),
            Text(e["label"].as_str().unwrap_or_default().to_string()),
            amount(e["debit"].as_i64().unwrap_or(0)),
            amount(e["credit"].as_i64().unwrap_or(0)),
            amount(e["balance"].as_i64().unwrap_or(0)),
        ]);
    }
    rows.push(vec![
        date(&v["to"]),
        t(""),
        t("Solde de clôture"),
        t(""),
        t(""),
        amount(v["closing"].as_i64().unwrap_or(0)),
    ]);
    rows
}

// ---- Credit notes --------------------------------------------------------------------------------------------------

pub async fn create_credit_note(
    st: &AppState,
    invoice_key: &str,
    b: &CreditNoteBody,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let invoice = store::sales::find_invoice(c, invoice_key)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Facture")))?;
    let lines = if b.total.unwrap_or(false) {
        store::sales::full_credit_lines(c, invoice.id).await?
    } else {
        let by_no: HashMap<i32, Uuid> =
            store::sales::lines_of(c, invoice.id).await?.iter().map(|l| (l.line_no, l.id)).collect();
        let mut f = Fields::new();
        let mut out = Vec::new();
        for (i, l) in b.lines.clone().unwrap_or_default().iter().enumerate() {
            let kind = CreditKind::parse(&l.kind);
            let line = by_no.get(&l.line_no);
            match (kind, line) {
                (None, _) => {
                    f.add(&format!("lines[{i}].kind"), "INVALID", "Type : NON_LIVRE, RETOUR, SANS_RETOUR ou PRIX.")
                }
                (_, None) => f.add(&format!("lines[{i}].lineNo"), "NON_TROUVE", "Ligne de facture introuvable."),
                (Some(kind), Some(id)) => {
                    let amount = if kind == CreditKind::Prix { l.amount_ht } else { l.quantity };
                    out.push(NewCreditLine { invoice_line_id: *id, kind, amount: amount.unwrap_or(0) });
                }
            }
        }
        f.into_result()?;
        out
    };
    let (actor, now, k, reason) = (who.actor(ctx), st.clock.now(), invoice.id.to_string(), b.reason.clone());
    let note = write(st, move |tx| {
        let (actor, k, reason, lines) = (actor.clone(), k.clone(), reason.clone(), lines.clone());
        Box::pin(async move { store::sales::create_credit_note(&**tx, &k, &reason, lines, &actor, now).await })
    })
    .await?;
    credit_note_detail(c, &note.id.to_string()).await
}

#[utoipa::path(post, path = "/api/invoices/{key}/credit-notes", tag = "sales", request_body = CreditNoteBody, responses(
    (status = 201, description = "Avoir créé en brouillon"),
    (status = 409, description = "FACTURE_STATUT_INVALIDE"),
    (status = 422, description = "MOTIF_TROP_COURT, QUANTITE_INVALIDE, AVOIR_SUPERIEUR_FACTURE")))]
pub async fn credit(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<CreditNoteBody>,
) -> Response {
    create_credit_note(&st, &key, &b, &id, &ctx).await.map(|v| (StatusCode::CREATED, Json(v))).into_response()
}

#[utoipa::path(get, path = "/api/credit-notes/{key}", tag = "sales", responses((status = 200, description = "Un avoir (id ou numéro)")))]
pub async fn get_credit_note(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    credit_note_detail(st.dbmon.db().conn(), &key).await.map(Json).into_response()
}

pub async fn validate_credit_note(st: &AppState, key: &str, who: &Identity, ctx: &Ctx) -> Result<Value, ApiError> {
    let (actor, now, k) = (who.actor(ctx), st.clock.now(), key.to_string());
    let n = write(st, move |tx| {
        let (actor, k) = (actor.clone(), k.clone());
        Box::pin(async move { store::sales::validate_credit_note(&**tx, &k, &actor, now).await })
    })
    .await?;
    credit_note_detail(st.dbmon.db().conn(), &n.id.to_string()).await
}

#[utoipa::path(post, path = "/api/credit-notes/{key}/validate", tag = "sales", responses(
    (status = 200, description = "Avoir validé : numéro AV-AAAA-NNNNN, retours en quarantaine, facture recalculée"),
    (status = 422, description = "AVOIR_SUPERIEUR_FACTURE, QUANTITE_INVALIDE"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn validate_credit(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(key): Path<String>) -> Response {
    validate_credit_note(&st, &key, &id, &ctx).await.map(Json).into_response()
}

#[utoipa::path(delete, path = "/api/credit-notes/{key}", tag = "sales", responses(
    (status = 204, description = "Brouillon d'avoir supprimé"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn delete_credit(State(st): State<AppState>, ctx: Ctx, id: Identity, Path(key): Path<String>) -> Response {
    let (actor, now) = (id.actor(&ctx), st.clock.now());
    write(&st, move |tx| {
        let (actor, k) = (actor.clone(), key.clone());
        Box::pin(async move { store::sales::delete_credit_note(&**tx, &k, &actor, now).await })
    })
    .await
    .map(|_| StatusCode::NO_CONTENT)
    .into_response()
}

#[utoipa::path(get, path = "/api/invoices/{key}/pdf", tag = "sales", responses(
    (status = 200, description = "La facture en PDF (A4, mentions obligatoires, montant en lettres)", content_type = "application/pdf"),
    (status = 409, description = "FACTURE_STATUT_INVALIDE : un brouillon ne s'imprime pas")))]
pub async fn invoice_pdf(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    crate::print::answer(crate::print::invoice(&st, &key).await).await
}

#[utoipa::path(get, path = "/api/credit-notes/{key}/pdf", tag = "sales", responses(
    (status = 200, description = "L'avoir en PDF", content_type = "application/pdf"),
    (status = 409, description = "TRANSITION_INVALIDE : un brouillon ne s'imprime pas")))]
pub async fn credit_note_pdf(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    crate::print::answer(crate::print::credit_note(&st, &key).await).await
}
