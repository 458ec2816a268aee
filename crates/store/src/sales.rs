//! Sales (DOMAIN.md §4.4, §10, §11): price lists, invoices from DRAFT to their derived status, payments and refunds,
//! credit notes with their returns. Every amount is computed by `domain::sales` and every command is one transaction
//! in the caller's hands; numbers are taken at validation from gapless sequences.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::rejection::Rejection;
use domain::sales::{self, CreditKind, CreditableLine, InvoiceStatus, LineAmounts, PriceSource};
use domain::timbre::{Method, Rule};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::catalogue::{Client, clients};
use crate::error::{OpError, StoreError};
use crate::stock::{Product, columns_of, stmt};

entity!(price_lists, "price_lists", {
    name: String, client_type: String, valid_from: ChronoDate, valid_to: Option<ChronoDate>, active: bool,
    created_at: ChronoDateTimeUtc, updated_at: ChronoDateTimeUtc,
});
entity!(price_list_items, "price_list_items", {
    price_list_id: Uuid, product_id: Uuid, min_quantity: i64, unit_price: i64,
});
entity!(invoices, "invoices", {
    reference: Option<String>, client_id: Uuid, status: String, payment_method: String, notes: Option<String>,
    invoice_date: Option<ChronoDate>, due_date: Option<ChronoDate>, total_ht: i64, total_tva: i64, total_ttc: i64,
    timbre: i64, net: i64, timbre_rule: Option<String>, timbre_tranches: Option<i64>, vat_breakdown: String,
    seller_snapshot: Option<String>, buyer_snapshot: Option<String>, credit_override_reason: Option<String>,
    created_by: Option<Uuid>, created_at: ChronoDateTimeUtc, updated_at: ChronoDateTimeUtc,
    validated_at: Option<ChronoDateTimeUtc>, validated_by: Option<Uuid>, paid_at: Option<ChronoDateTimeUtc>,
});
entity!(invoice_lines, "invoice_lines", {
    invoice_id: Uuid, line_no: i32, product_id: Uuid, quantity: i64, unit_price: i64, price_source: String,
    price_reason: Option<String>, discount: i64, rate_bp: i32, gross: i64, ht: i64, tva: i64,
});
entity!(credit_notes, "credit_notes", {
    reference: Option<String>, invoice_id: Uuid, status: String, reason: String, credit_date: Option<ChronoDate>,
    total_ht: i64, total_tva: i64, total_ttc: i64, timbre: i64, net: i64, vat_breakdown: String,
    created_by: Option<Uuid>, created_at: ChronoDateTimeUtc, updated_at: ChronoDateTimeUtc,
    validated_at: Option<ChronoDateTimeUtc>, validated_by: Option<Uuid>,
});
entity!(credit_note_lines, "credit_note_lines", {
    credit_note_id: Uuid, line_no: i32, invoice_line_id: Uuid, kind: String, quantity: i64, ht: i64, tva: i64,
    rate_bp: i32, return_lot_id: Option<Uuid>,
});
entity!(payments, "payments", {
    reference: String, kind: String, invoice_id: Option<Uuid>, client_id: Uuid, method: String, amount: i64,
    payment_date: ChronoDate, cheque_number: Option<String>, bank_name: Option<String>,
    cheque_date: Option<ChronoDate>, bank_reference: Option<String>, notes: Option<String>, status: String,
    cancel_reason: Option<String>, cancelled_at: Option<ChronoDateTimeUtc>, cancel_date: Option<ChronoDate>,
    cancelled_by: Option<Uuid>, created_by: Option<Uuid>, created_at: ChronoDateTimeUtc,
});

pub type PriceListRow = price_lists::Model;
pub type PriceListItem = price_list_items::Model;
pub type Invoice = invoices::Model;
pub type InvoiceLine = invoice_lines::Model;
pub type CreditNote = credit_notes::Model;
pub type CreditNoteLine = credit_note_lines::Model;
pub type Payment = payments::Model;

/// A document addressed by its id (a UUID) or its number: the column and the value to look for.
fn by_key(key: &str) -> (&'static str, sea_orm::Value) {
    match Uuid::parse_str(key.trim()) {
        Ok(id) => ("id", id.into()),
        Err(_) => ("reference", key.trim().to_uppercase().into()),
    }
}

/// Reads a document by id or number — with a row lock when `lock` (PostgreSQL `FOR UPDATE`; SQLite's writer is
/// exclusive). Invoices, credit notes and BLs are all addressed this way.
pub(crate) async fn document_by_key<E, C>(c: &C, key: &str, lock: bool) -> Result<Option<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
    C: ConnectionTrait,
{
    let (col, value) = by_key(key);
    let lock = if lock { lock_clause(c) } else { "" };
    let row = c
        .query_one_raw(stmt(
            c.get_database_backend(),
            &format!("SELECT {} FROM {} WHERE {col} = $1{lock}", columns_of::<E>(""), E::default().table_name()),
            vec![value],
        ))
        .await?;
    Ok(row.map(|r| E::Model::from_query_result(&r, "")).transpose()?)
}

pub fn unit_of(p: &Product) -> domain::stock::Unit {
    domain::stock::Unit::parse(&p.base_unit).unwrap_or(domain::stock::Unit::U)
}

fn lock_clause(c: &impl ConnectionTrait) -> &'static str {
    if c.get_database_backend() == DbBackend::Postgres { " FOR UPDATE" } else { "" }
}

fn year_of(d: NaiveDate) -> String {
    d.year().to_string()
}

async fn sum_i64<C: ConnectionTrait>(c: &C, sql: &str, values: Vec<sea_orm::Value>) -> Result<i64, StoreError> {
    let row = c.query_one_raw(stmt(c.get_database_backend(), sql, values)).await?;
    Ok(row.map(|r| r.try_get::<Option<i64>>("", "n")).transpose()?.flatten().unwrap_or(0))
}

// ---- Reference data: timbre rules and chart of accounts ---------------------------------------------------------

/// The timbre rule table, oldest first.
pub async fn timbre_rules<C: ConnectionTrait>(c: &C) -> Result<Vec<Rule>, StoreError> {
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT definition FROM timbre_rules ORDER BY valid_from",
            vec![],
        ))
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let text: String = r.try_get("", "definition")?;
        let v: Value = serde_json::from_str(&text).map_err(|e| StoreError::Other(format!("timbre rule: {e}")))?;
        out.push(Rule::from_json(&v).ok_or_else(|| StoreError::Other(format!("unreadable timbre rule {text}")))?);
    }
    Ok(out)
}

/// Chart of accounts: key → account number.
pub async fn chart<C: ConnectionTrait>(c: &C) -> Result<HashMap<String, String>, StoreError> {
    let rows =
        c.query_all_raw(stmt(c.get_database_backend(), "SELECT key, account FROM chart_of_accounts", vec![])).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String>("", "key")?, r.try_get::<String>("", "account")?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
}

// ---- Price lists (§4.4) -----------------------------------------------------------------------------------------

/// A checked price list to save (items carry their PF).
#[derive(Debug, Clone)]
pub struct NewPriceList {
    pub name: String,
    pub client_type: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub active: bool,
    pub items: Vec<(Product, i64, i64)>,
}

/// Every list with its items, as the domain reads them.
pub async fn domain_lists<C: ConnectionTrait>(c: &C) -> Result<Vec<sales::PriceList>, StoreError> {
    Ok(price_lists_with_items(c).await?.into_iter().map(|(l, items)| to_domain_list(&l, &items)).collect())
}

fn to_domain_list(l: &PriceListRow, items: &[PriceListItem]) -> sales::PriceList {
    sales::PriceList {
        id: l.id.to_string(),
        client_type: l.client_type.clone(),
        valid_from: l.valid_from,
        valid_to: l.valid_to,
        active: l.active,
        items: items
            .iter()
            .map(|i| sales::PriceItem {
                product_id: i.product_id.to_string(),
                min_quantity: i.min_quantity,
                unit_price: i.unit_price,
            })
            .collect(),
    }
}

pub async fn price_lists_with_items<C: ConnectionTrait>(
    c: &C,
) -> Result<Vec<(PriceListRow, Vec<PriceListItem>)>, StoreError> {
    let lists = price_lists::Entity::find()
        .order_by_asc(price_lists::Column::ClientType)
        .order_by_desc(price_lists::Column::ValidFrom)
        .all(c)
        .await?;
    let mut items: HashMap<Uuid, Vec<PriceListItem>> = HashMap::new();
    for i in price_list_items::Entity::find()
        .order_by_asc(price_list_items::Column::ProductId)
        .order_by_asc(price_list_items::Column::MinQuantity)
        .all(c)
        .await?
    {
        items.entry(i.price_list_id).or_default().push(i);
    }
    Ok(lists.into_iter().map(|l| (l.clone(), items.remove(&l.id).unwrap_or_default())).collect())
}

pub async fn price_list<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
) -> Result<Option<(PriceListRow, Vec<PriceListItem>)>, StoreError> {
    let Some(l) = price_lists::Entity::find_by_id(id).one(c).await? else { return Ok(None) };
    let items = price_list_items::Entity::find()
        .filter(price_list_items::Column::PriceListId.eq(id))
        .order_by_asc(price_list_items::Column::ProductId)
        .order_by_asc(price_list_items::Column::MinQuantity)
        .all(c)
        .await?;
    Ok(Some((l, items)))
}

pub fn price_list_json(l: &PriceListRow, items: &[PriceListItem], codes: &HashMap<Uuid, String>) -> Value {
    json!({
        "id": l.id, "name": l.name, "clientType": l.client_type, "validFrom": l.valid_from, "validTo": l.valid_to,
        "active": l.active,
        "items": items.iter().map(|i| json!({
            "productCode": codes.get(&i.product_id), "minQuantity": i.min_quantity, "unitPriceHt": i.unit_price,
        })).collect::<Vec<_>>(),
    })
}

/// Creates (`id` None) or replaces a price list; two active lists of a type never overlap (`TARIF_CHEVAUCHEMENT`).
/// Saves of lists serialize (advisory lock on PostgreSQL, the single writer on SQLite), so two overlapping lists
/// saved at the same instant cannot both pass the check.
pub async fn save_price_list<C: ConnectionTrait>(
    c: &C,
    id: Option<Uuid>,
    new: NewPriceList,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<PriceListRow, OpError> {
    if c.get_database_backend() == DbBackend::Postgres {
        c.execute_raw(stmt(DbBackend::Postgres, "SELECT pg_advisory_xact_lock(7365012)", vec![])).await?;
    }
    let before = match id {
        Some(id) => Some(price_list(c, id).await?.ok_or_else(|| Rejection::non_trouve("Tarif"))?),
        None => None,
    };
    let row = PriceListRow {
        id: id.unwrap_or_else(Uuid::now_v7),
        name: new.name.trim().to_string(),
        client_type: new.client_type.clone(),
        valid_from: new.valid_from,
        valid_to: new.valid_to,
        active: new.active,
        created_at: before.as_ref().map_or(now, |(b, _)| b.created_at),
        updated_at: now,
    };
    let items: Vec<PriceListItem> = new
        .items
        .iter()
        .map(|(p, min, price)| PriceListItem {
            id: Uuid::now_v7(),
            price_list_id: row.id,
            product_id: p.id,
            min_quantity: *min,
            unit_price: *price,
        })
        .collect();
    for (p, _, _) in &new.items {
        if p.kind != "PF" {
            return Err(Rejection::new("VALEUR_HORS_LIMITES", 422, "Valeur hors limites.")
                .with_details(json!({"productCode": p.code, "field": "items"}))
                .into());
        }
    }
    sales::check_price_list(&to_domain_list(&row, &items), &domain_lists(c).await?)?;
    if before.is_some() {
        price_list_items::Entity::delete_many()
            .filter(price_list_items::Column::PriceListId.eq(row.id))
            .exec(c)
            .await?;
        price_lists::Entity::update(row.clone().into_active_model().reset_all()).exec(c).await?;
    } else {
        price_lists::Entity::insert(row.clone().into_active_model()).exec_without_returning(c).await?;
    }
    for i in &items {
        price_list_items::Entity::insert(i.clone().into_active_model()).exec_without_returning(c).await?;
    }
    let codes: HashMap<Uuid, String> = new.items.iter().map(|(p, _, _)| (p.id, p.code.clone())).collect();
    let mut change = Change::new(if before.is_some() { "PRICE_LIST_UPDATED" } else { "PRICE_LIST_CREATED" })
        .entity("price_list", row.id)
        .after(price_list_json(&row, &items, &codes));
    if let Some((b, bi)) = &before {
        change = change.before(price_list_json(b, bi, &codes));
    }
    audit::append(c, actor, change, now).await?;
    let data = Some(price_list_device_json(&row, &items));
    crate::sync::append(c, "PRICE_LIST", &row.id.to_string(), "upsert", &crate::sync::Audience::everyone(), data, now)
        .await?;
    Ok(row)
}

/// A price list as devices know it (PLATFORM.md §7.4: catalogue and prices go to every device).
pub fn price_list_device_json(l: &PriceListRow, items: &[PriceListItem]) -> Value {
    json!({
        "id": l.id, "name": l.name, "clientType": l.client_type, "validFrom": l.valid_from, "validTo": l.valid_to,
        "active": l.active,
        "items": items.iter().map(|i| json!({
            "productId": i.product_id, "minQuantity": i.min_quantity, "unitPriceHt": i.unit_price,
        })).collect::<Vec<_>>(),
    })
}

// ---- Invoices (§10) -----------------------------------------------------------------------------------------------

/// One line as the user entered it; the price is resolved unless overridden with a reason.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub product: Product,
    pub quantity: i64,
    pub unit_price: Option<i64>,
    pub price_reason: Option<String>,
    pub discount: i64,
    pub rate_bp: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub client: Client,
    pub method: Option<Method>,
    pub notes: Option<String>,
    pub lines: Vec<NewLine>,
}

pub fn status_of(i: &Invoice) -> InvoiceStatus {
    InvoiceStatus::parse(&i.status).unwrap_or(InvoiceStatus::Draft)
}

pub fn method_of(i: &Invoice) -> Method {
    Method::parse(&i.payment_method).unwrap_or(Method::Especes)
}

fn inactive(objet: &str) -> Rejection {
    let code = match objet {
        "Le client" => "CLIENT_INACTIF",
        _ => "PRODUIT_INACTIF",
    };
    Rejection::new(code, 409, format!("{objet} est désactivé.")).with_details(json!({"objet": objet}))
}

/// Prices and amounts of the lines (§4.4, §10.1), computed on the server whatever the client sent.
fn price_lines(
    client: &Client,
    lines: &[NewLine],
    lists: &[sales::PriceList],
    invoice_id: Uuid,
    today: NaiveDate,
) -> Result<Vec<InvoiceLine>, Rejection> {
    domain::purchase::check_unique_lines(lines.iter().map(|l| l.product.code.as_str()))?;
    let mut out = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        let p = &l.product;
        if p.kind != "PF" {
            return Err(Rejection::non_trouve(&format!("Produit fini {}", p.code)));
        }
        if !p.active {
            return Err(inactive(&format!("Le produit {}", p.code)));
        }
        let (resolved, source) =
            sales::resolve_price(lists, &client.client_type, &p.id.to_string(), l.quantity, today, p.list_price_ht);
        let (price, source, reason) = match l.unit_price {
            Some(given) if given != resolved => {
                (given, PriceSource::Manuel, Some(sales::check_override_reason(l.price_reason.as_deref())?))
            }
            _ => (resolved, source, None),
        };
        let rate = l.rate_bp.unwrap_or(i64::from(p.tva_rate));
        let a = sales::line_amounts(
            &sales::Line { quantity: l.quantity, unit_price: price, discount: l.discount, rate_bp: rate },
            p.base_unit == "U",
        )?;
        out.push(InvoiceLine {
            id: Uuid::now_v7(),
            invoice_id,
            line_no: n as i32 + 1,
            product_id: p.id,
            quantity: l.quantity,
            unit_price: price,
            price_source: source.code().into(),
            price_reason: reason,
            discount: l.discount,
            rate_bp: rate as i32,
            gross: a.gross,
            ht: a.ht,
            tva: a.tva,
        });
    }
    Ok(out)
}

fn amounts_of(lines: &[InvoiceLine]) -> Vec<(LineAmounts, i64)> {
    lines.iter().map(|l| (LineAmounts { gross: l.gross, ht: l.ht, tva: l.tva }, i64::from(l.rate_bp))).collect()
}

fn vat_json(rows: &[sales::VatRow]) -> String {
    json!(rows.iter().map(|r| json!({"rateBp": r.rate_bp, "base": r.base, "tva": r.tva})).collect::<Vec<_>>())
        .to_string()
}

pub fn vat_rows(text: &str) -> Vec<sales::VatRow> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| sales::VatRow {
            rate_bp: r["rateBp"].as_i64().unwrap_or(0),
            base: r["base"].as_i64().unwrap_or(0),
            tva: r["tva"].as_i64().unwrap_or(0),
        })
        .collect()
}

/// Puts the computed totals on the invoice (timbre at `d`, the invoice date or today for a draft).
fn apply_totals(i: &mut Invoice, lines: &[InvoiceLine], d: NaiveDate, rules: &[Rule]) -> Result<(), Rejection> {
    let amounts = amounts_of(lines);
    let t = sales::totals(&amounts, method_of(i), d, rules)?;
    let stamp = domain::timbre::stamp(t.ttc, method_of(i), d, rules);
    i.total_ht = t.ht;
    i.total_tva = t.tva;
    i.total_ttc = t.ttc;
    i.timbre = t.timbre;
    i.net = t.net;
    i.timbre_rule = stamp.rule.filter(|_| stamp.amount > 0);
    i.timbre_tranches = Some(stamp.tranches).filter(|_| stamp.amount > 0);
    i.vat_breakdown = vat_json(&t.vat);
    Ok(())
}

fn invoice_audit_json(i: &Invoice, lines: &[InvoiceLine]) -> Value {
    json!({
        "reference": i.reference, "status": i.status, "clientId": i.client_id, "paymentMethod": i.payment_method,
        "totalHt": i.total_ht, "totalTva": i.total_tva, "timbre": i.timbre, "net": i.net,
        "lines": lines.iter().map(|l| json!({
            "productId": l.product_id, "quantity": l.quantity, "unitPrice": l.unit_price, "priceSource": l.price_source,
            "discount": l.discount, "rateBp": l.rate_bp, "ht": l.ht,
        })).collect::<Vec<_>>(),
    })
}

async fn write_lines<C: ConnectionTrait>(c: &C, lines: &[InvoiceLine]) -> Result<(), StoreError> {
    for l in lines {
        invoice_lines::Entity::insert(l.clone().into_active_model()).exec_without_returning(c).await?;
    }
    Ok(())
}

/// Creates a DRAFT: no number; prices resolved; totals computed (§10.2).
pub async fn create_draft<C: ConnectionTrait>(
    c: &C,
    new: NewInvoice,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Invoice, OpError> {
    create_draft_as(c, Uuid::now_v7(), new, actor, now).await
}

/// A draft under an id the caller chose (a device drafts offline under its own id, PLATFORM.md §7.5).
pub async fn create_draft_as<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    new: NewInvoice,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Invoice, OpError> {
    if !new.client.active {
        return Err(inactive("Le client").into());
    }
    let today = domain::stock::today_algiers(now);
    let lines = price_lines(&new.client, &new.lines, &domain_lists(c).await?, id, today)?;
    let method =
        new.method.unwrap_or_else(|| Method::parse(&new.client.default_payment_method).unwrap_or(Method::Especes));
    let mut i = Invoice {
        id,
        reference: None,
        client_id: new.client.id,
        status: InvoiceStatus::Draft.code().into(),
        payment_method: method.code().into(),
        notes: new.notes.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        invoice_date: None,
        due_date: None,
        total_ht: 0,
        total_tva: 0,
        total_ttc: 0,
        timbre: 0,
        net: 0,
        timbre_rule: None,
        timbre_tranches: None,
        vat_breakdown: "[]".into(),
        seller_snapshot: None,
        buyer_snapshot: None,
        credit_override_reason: None,
        created_by: actor.user_id,
        created_at: now,
        updated_at: now,
        validated_at: None,
        validated_by: None,
        paid_at: None,
    };
    apply_totals(&mut i, &lines, today, &timbre_rules(c).await?)?;
    invoices::Entity::insert(i.clone().into_active_model()).exec_without_returning(c).await?;
    write_lines(c, &lines).await?;
    audit::append(
        c,
        actor,
        Change::new("INVOICE_CREATED").entity("invoice", i.id).after(invoice_audit_json(&i, &lines)),
        now,
    )
    .await?;
    Ok(i)
}

/// Reads an invoice by id or number, with a row lock.
pub async fn lock_invoice<C: ConnectionTrait>(c: &C, key: &str) -> Result<Invoice, OpError> {
    Ok(document_by_key::<invoices::Entity, _>(c, key, true).await?.ok_or_else(|| Rejection::non_trouve("Facture"))?)
}

pub async fn find_invoice<C: ConnectionTrait>(c: &C, key: &str) -> Result<Option<Invoice>, StoreError> {
    document_by_key::<invoices::Entity, _>(c, key, false).await
}

pub async fn lines_of<C: ConnectionTrait>(c: &C, invoice_id: Uuid) -> Result<Vec<InvoiceLine>, StoreError> {
    Ok(invoice_lines::Entity::find()
        .filter(invoice_lines::Column::InvoiceId.eq(invoice_id))
        .order_by_asc(invoice_lines::Column::LineNo)
        .all(c)
        .await?)
}

/// DRAFT → DRAFT: everything recomputed on the server.
pub async fn update_draft<C: ConnectionTrait>(
    c: &C,
    key: &str,
    new: NewInvoice,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Invoice, OpError> {
    let mut i = lock_invoice(c, key).await?;
    sales::check_editable(status_of(&i))?;
    if !new.client.active {
        return Err(inactive("Le client").into());
    }
    let today = domain::stock::today_algiers(now);
    let old_lines = lines_of(c, i.id).await?;
    let before = invoice_audit_json(&i, &old_lines);
    let lines = price_lines(&new.client, &new.lines, &domain_lists(c).await?, i.id, today)?;
    i.client_id = new.client.id;
    if let Some(m) = new.method {
        i.payment_method = m.code().into();
    }
    i.notes = new.notes.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    i.updated_at = now;
    apply_totals(&mut i, &lines, today, &timbre_rules(c).await?)?;
    invoice_lines::Entity::delete_many().filter(invoice_lines::Column::InvoiceId.eq(i.id)).exec(c).await?;
    invoices::Entity::update(i.clone().into_active_model().reset_all()).exec(c).await?;
    write_lines(c, &lines).await?;
    audit::append(
        c,
        actor,
        Change::new("INVOICE_UPDATED").entity("invoice", i.id).before(before).after(invoice_audit_json(&i, &lines)),
        now,
    )
    .await?;
    Ok(i)
}

/// DRAFT → deleted; the audit entry keeps the content.
pub async fn delete_draft<C: ConnectionTrait>(
    c: &C,
    key: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let i = lock_invoice(c, key).await?;
    sales::check_editable(status_of(&i))?;
    let lines = lines_of(c, i.id).await?;
    invoice_lines::Entity::delete_many().filter(invoice_lines::Column::InvoiceId.eq(i.id)).exec(c).await?;
    invoices::Entity::delete_by_id(i.id).exec(c).await?;
    audit::append(
        c,
        actor,
        Change::new("INVOICE_DELETED").entity("invoice", i.id).before(invoice_audit_json(&i, &lines)),
        now,
    )
    .await?;
    Ok(())
}

/// Quantities invoiced (validated invoices) that have not left stock yet, per PF: line quantity − shipped (BLs
/// VALIDATED / DELIVERED) − credited NON_LIVRE. This is `committed` of available-to-promise (§5.5, §10.3).
pub async fn committed_by_product<C: ConnectionTrait>(c: &C) -> Result<HashMap<Uuid, i64>, StoreError> {
    let b = c.get_database_backend();
    let sql = "SELECT l.product_id AS product_id, CAST(SUM(l.quantity - \
         COALESCE((SELECT SUM(dl.quantity) FROM delivery_lines dl JOIN deliveries d ON d.id = dl.delivery_id \
                   WHERE dl.invoice_line_id = l.id AND d.status IN ('VALIDATED', 'DELIVERED')), 0) - \
         COALESCE((SELECT SUM(cl.quantity) FROM credit_note_lines cl JOIN credit_notes cn ON cn.id = cl.credit_note_id \
                   WHERE cl.invoice_line_id = l.id AND cn.status = 'VALIDATED' AND cl.kind = 'NON_LIVRE'), 0)) AS BIGINT) AS n \
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
         WHERE i.status IN ('VALIDATED', 'PARTIALLY_PAID', 'PAID', 'CREDITED') GROUP BY l.product_id";
    let rows = c.query_all_raw(stmt(b, sql, vec![])).await?;
    let mut out = HashMap::new();
    for r in rows {
        let n: Option<i64> = r.try_get("", "n")?;
        out.insert(r.try_get::<Uuid>("", "product_id")?, n.unwrap_or(0).max(0));
    }
    Ok(out)
}

/// Σ credited net (validated credit notes) and Σ paid (active REGLEMENT payments) of an invoice.
pub async fn credited_and_paid<C: ConnectionTrait>(c: &C, invoice_id: Uuid) -> Result<(i64, i64), StoreError> {
    let credited = sum_i64(
        c,
        "SELECT CAST(SUM(net) AS BIGINT) AS n FROM credit_notes WHERE invoice_id = $1 AND status = 'VALIDATED'",
        vec![invoice_id.into()],
    )
    .await?;
    let paid = sum_i64(
        c,
        "SELECT CAST(SUM(amount) AS BIGINT) AS n FROM payments WHERE invoice_id = $1 AND status = 'ACTIVE' \
         AND kind = 'REGLEMENT'",
        vec![invoice_id.into()],
    )
    .await?;
    Ok((credited, paid))
}

/// What remains to pay on an invoice: net − credited − paid.
pub async fn remaining<C: ConnectionTrait>(c: &C, i: &Invoice) -> Result<i64, StoreError> {
    let (credited, paid) = credited_and_paid(c, i.id).await?;
    Ok(i.net - credited - paid)
}

/// Re-derives a validated invoice's status from its amounts and saves it (§10.2).
async fn refresh_status<C: ConnectionTrait>(c: &C, i: &mut Invoice, now: DateTime<Utc>) -> Result<(), StoreError> {
    let (credited, paid) = credited_and_paid(c, i.id).await?;
    let status = sales::status_from(i.net, credited, paid);
    i.status = status.code().into();
    i.paid_at = if status == InvoiceStatus::Paid { i.paid_at.or(Some(now)) } else { None };
    i.updated_at = now;
    invoices::Entity::update(i.clone().into_active_model().reset_all()).exec(c).await?;
    // What remains to pay changed: the drivers of its BLs get the new figures.
    crate::delivery::feed_invoice(c, i.id, now).await?;
    Ok(())
}

/// A client's account (§4.4): invoiced, credited, paid, refunded and the balance (positive = the client owes us).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    pub invoiced: i64,
    pub credited: i64,
    pub paid: i64,
    pub refunded: i64,
}

impl Account {
    pub fn balance(&self) -> i64 {
        sales::balance(self.invoiced, self.credited, self.paid, self.refunded)
    }
}

pub async fn account<C: ConnectionTrait>(c: &C, client_id: Uuid) -> Result<Account, StoreError> {
    let v = || vec![sea_orm::Value::from(client_id)];
    Ok(Account {
        invoiced: sum_i64(
            c,
            "SELECT CAST(SUM(net) AS BIGINT) AS n FROM invoices WHERE client_id = $1 AND status <> 'DRAFT'",
            v(),
        )
        .await?,
        credited: sum_i64(
            c,
            "SELECT CAST(SUM(cn.net) AS BIGINT) AS n FROM credit_notes cn JOIN invoices i ON i.id = cn.invoice_id \
             WHERE i.client_id = $1 AND cn.status = 'VALIDATED'",
            v(),
        )
        .await?,
        paid: sum_i64(
            c,
            "SELECT CAST(SUM(amount) AS BIGINT) AS n FROM payments WHERE client_id = $1 AND status = 'ACTIVE' \
             AND kind = 'REGLEMENT'",
            v(),
        )
        .await?,
        refunded: sum_i64(
            c,
            "SELECT CAST(SUM(amount) AS BIGINT) AS n FROM payments WHERE client_id = $1 AND status = 'ACTIVE' \
             AND kind = 'REMBOURSEMENT'",
            v(),
        )
        .await?,
    })
}

async fn lock_client<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Client, OpError> {
    let row = c
        .query_one_raw(stmt(
            c.get_database_backend(),
            &format!("SELECT {} FROM clients WHERE id = $1{}", columns_of::<clients::Entity>(""), lock_clause(c)),
            vec![id.into()],
        ))
        .await?;
    Ok(row.map(|r| Client::from_query_result(&r, "")).transpose()?.ok_or_else(|| Rejection::non_trouve("Client"))?)
}

/// Locks the PF rows of an invoice in id order, so concurrent validations of the same PFs see each other's
/// commitments (PostgreSQL; SQLite's writer is exclusive).
async fn lock_products<C: ConnectionTrait>(c: &C, ids: &mut [Uuid]) -> Result<(), StoreError> {
    ids.sort();
    if c.get_database_backend() == DbBackend::Postgres {
        for id in ids.iter() {
            c.query_one_raw(stmt(
                DbBackend::Postgres,
                "SELECT id FROM products WHERE id = $1 FOR UPDATE",
                vec![(*id).into()],
            ))
            .await?;
        }
    }
    Ok(())
}

fn party_snapshot(
    name: &str,
    forme: &Option<String>,
    adresse: &Option<String>,
    ids: [&Option<String>; 4],
    extra: Value,
) -> Value {
    let mut v = json!({
        "raisonSociale": name, "formeJuridique": forme, "adresse": adresse,
        "rc": ids[0], "nif": ids[1], "ai": ids[2], "nis": ids[3],
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// The seller's identity as printed on documents; frozen on an invoice at validation (§18).
pub fn company_snapshot(s: &crate::settings::CompanySettings) -> Value {
    party_snapshot(
        &s.raison_sociale,
        &s.forme_juridique,
        &s.adresse,
        [&s.rc, &s.nif, &s.ai, &s.nis],
        json!({
            "capitalSocial": s.capital_social, "wilaya": s.wilaya, "commune": s.commune, "telephone": s.telephone,
            "email": s.email, "rib": s.rib, "bankName": s.bank_name, "invoiceFooter": s.invoice_footer,
            "logoSha256": s.logo_sha256,
        }),
    )
}

/// The client's identity as printed on documents; frozen on an invoice at validation (§18).
pub fn client_snapshot(client: &Client) -> Value {
    party_snapshot(
        &client.raison_sociale,
        &client.forme_juridique,
        &client.adresse,
        [&client.rc, &client.nif, &client.ai, &client.nis],
        json!({"code": client.code, "wilaya": client.wilaya, "commune": client.commune,
               "deliveryAddress": client.delivery_address}),
    )
}

/// DRAFT → VALIDATED (§10.3), the checks in order, the first failure aborting with nothing written; then the number
/// `F-YYYY-NNNNN`, today's date, the due date, the identity snapshots and the frozen totals.
pub async fn validate<C: ConnectionTrait>(
    c: &C,
    key: &str,
    override_reason: Option<&str>,
    is_admin: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Invoice, OpError> {
    let mut i = lock_invoice(c, key).await?;
    let today = domain::stock::today_algiers(now);
    // 1. Status and lines.
    if status_of(&i) != InvoiceStatus::Draft {
        return Err(Rejection::transition_invalide(&i.status, InvoiceStatus::Validated.code()).into());
    }
    let lines = lines_of(c, i.id).await?;
    if lines.is_empty() {
        return Err(sales::facture_vide().into());
    }
    // 2. Company settings, then prices re-resolved for today.
    let company = crate::settings::company(c).await?;
    let field = |f: fn(&crate::settings::CompanySettings) -> Option<String>| company.as_ref().and_then(f);
    let (rs, adr, rc, nif, ai, nis) = (
        company.as_ref().map(|s| s.raison_sociale.clone()).filter(|s| !s.trim().is_empty()),
        field(|s| s.adresse.clone()),
        field(|s| s.rc.clone()),
        field(|s| s.nif.clone()),
        field(|s| s.ai.clone()),
        field(|s| s.nis.clone()),
    );
    sales::check_company_complete(&[
        ("raison sociale", rs.as_deref()),
        ("adresse", adr.as_deref()),
        ("RC", rc.as_deref()),
        ("NIF", nif.as_deref()),
        ("AI", ai.as_deref()),
        ("NIS", nis.as_deref()),
    ])?;
    let client = lock_client(c, i.client_id).await?;
    let lists = domain_lists(c).await?;
    let mut products = HashMap::new();
    let mut changed = Vec::new();
    for l in &lines {
        let p = crate::stock::product(c, l.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
        if l.price_source != PriceSource::Manuel.code() {
            let (now_price, _) = sales::resolve_price(
                &lists,
                &client.client_type,
                &p.id.to_string(),
                l.quantity,
                today,
                p.list_price_ht,
            );
            if now_price != l.unit_price {
                changed.push((p.code.clone(), l.unit_price, now_price));
            }
        }
        products.insert(l.product_id, p);
    }
    sales::check_prices(&changed)?;
    // 3. Client active with its identifiers.
    if !client.active {
        return Err(inactive("Le client").into());
    }
    sales::check_client_identifiers(client.nif.as_deref(), client.rc.as_deref(), client.ai.as_deref())?;
    // 4. Availability per PF.
    let mut ids: Vec<Uuid> = products.keys().copied().collect();
    lock_products(c, &mut ids).await?;
    let committed = committed_by_product(c).await?;
    let mut rows = Vec::new();
    for l in &lines {
        let p = &products[&l.product_id];
        if !p.active {
            return Err(inactive(&format!("Le produit {}", p.code)).into());
        }
        rows.push(sales::Availability {
            product: p.code.clone(),
            unit: unit_of(p),
            demanded: l.quantity,
            stock: crate::production::usable_stock(c, p.id, today).await?,
            committed: committed.get(&p.id).copied().unwrap_or(0),
        });
    }
    sales::check_availability(&rows)?;
    // Totals at today's rule (the invoice date is today).
    apply_totals(&mut i, &lines, today, &timbre_rules(c).await?)?;
    // 5. Credit limit.
    let outstanding = account(c, client.id).await?.balance();
    let used_override = sales::check_credit_limit(outstanding, i.net, client.credit_limit, override_reason, is_admin)?;
    let n = crate::stock::next_number(c, "F", &year_of(today)).await?;
    i.reference = Some(domain::stock::doc_ref("F", today.year(), n));
    i.status = InvoiceStatus::Validated.code().into();
    i.invoice_date = Some(today);
    i.due_date = Some(sales::due_date(today, i64::from(client.payment_terms_days)));
    i.seller_snapshot = company.as_ref().map(|s| company_snapshot(s).to_string());
    i.buyer_snapshot = Some(client_snapshot(&client).to_string());
    i.credit_override_reason = used_override.clone();
    i.validated_at = Some(now);
    i.validated_by = actor.user_id;
    i.updated_at = now;
    invoices::Entity::update(i.clone().into_active_model().reset_all()).exec(c).await?;
    let mut change = Change::new("INVOICE_VALIDATED")
        .entity("invoice", i.id)
        .before(json!({"status": InvoiceStatus::Draft.code()}))
        .after(invoice_audit_json(&i, &lines));
    if let Some(r) = used_override {
        change = change.reason(r);
    }
    audit::append(c, actor, change, now).await?;
    Ok(i)
}

// ---- Payments (§10.5) ---------------------------------------------------------------------------------------------

/// Records a payment against a VALIDATED or PARTIALLY_PAID invoice; the invoice status follows.
pub async fn record_payment<C: ConnectionTrait>(
    c: &C,
    key: &str,
    input: sales::PaymentInput,
    notes: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Payment, Invoice), OpError> {
    let mut i = lock_invoice(c, key).await?;
    let reference = i.reference.clone().unwrap_or_default();
    sales::check_open_for(&reference, status_of(&i), &[InvoiceStatus::Validated, InvoiceStatus::PartiallyPaid])?;
    let today = domain::stock::today_algiers(now);
    let left = remaining(c, &i).await?;
    let (method, date) = sales::check_payment(method_of(&i), i.invoice_date.unwrap_or(today), left, today, &input)?;
    let p = new_payment(c, "REGLEMENT", Some(i.id), i.client_id, method, &input, date, notes, actor, now).await?;
    refresh_status(c, &mut i, now).await?;
    audit::append(
        c,
        actor,
        Change::new("PAYMENT_RECORDED").entity("payment", p.id).after(json!({
            "reference": p.reference, "invoice": reference, "amount": p.amount, "method": p.method,
            "date": p.payment_date, "invoiceStatus": i.status,
        })),
        now,
    )
    .await?;
    Ok((p, i))
}

#[allow(clippy::too_many_arguments)]
async fn new_payment<C: ConnectionTrait>(
    c: &C,
    kind: &str,
    invoice_id: Option<Uuid>,
    client_id: Uuid,
    method: Method,
    input: &sales::PaymentInput,
    date: NaiveDate,
    notes: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    let today = domain::stock::today_algiers(now);
    let n = crate::stock::next_number(c, "REG", &year_of(today)).await?;
    let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let cheque = method == Method::Cheque;
    let p = Payment {
        id: Uuid::now_v7(),
        reference: domain::stock::doc_ref("REG", today.year(), n),
        kind: kind.into(),
        invoice_id,
        client_id,
        method: method.code().into(),
        amount: input.amount,
        payment_date: date,
        cheque_number: if cheque { clean(&input.cheque_number) } else { None },
        bank_name: if cheque { clean(&input.bank_name) } else { None },
        cheque_date: if cheque { input.cheque_date } else { None },
        bank_reference: if method == Method::Virement { clean(&input.bank_reference) } else { None },
        notes: clean(&notes),
        status: "ACTIVE".into(),
        cancel_reason: None,
        cancelled_at: None,
        cancel_date: None,
        cancelled_by: None,
        created_by: actor.user_id,
        created_at: now,
    };
    payments::Entity::insert(p.clone().into_active_model()).exec_without_returning(c).await?;
    Ok(p)
}

pub async fn payment_by_reference<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Option<Payment>, StoreError> {
    Ok(payments::Entity::find().filter(payments::Column::Reference.eq(reference.trim().to_uppercase())).one(c).await?)
}

/// ADMIN cancels a payment (a bounced cheque): ANNULE, kept with its number; the invoice status is re-derived.
pub async fn cancel_payment<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Payment, OpError> {
    let found = payment_by_reference(c, reference).await?.ok_or_else(|| Rejection::non_trouve("Règlement"))?;
    // The invoice row is the lock every payment command of that invoice takes.
    let mut invoice = match found.invoice_id {
        Some(id) => Some(lock_invoice(c, &id.to_string()).await?),
        None => None,
    };
    let mut p = payment_by_reference(c, reference).await?.ok_or_else(|| Rejection::non_trouve("Règlement"))?;
    let reason = domain::validation::reason(reason, 10)?;
    if p.status != "ACTIVE" {
        return Err(Rejection::transition_invalide(&p.status, "ANNULE").into());
    }
    p.status = "ANNULE".into();
    p.cancel_reason = Some(reason.clone());
    p.cancelled_at = Some(now);
    p.cancel_date = Some(domain::stock::today_algiers(now));
    p.cancelled_by = actor.user_id;
    payments::Entity::update(p.clone().into_active_model().reset_all()).exec(c).await?;
    if let Some(i) = invoice.as_mut() {
        refresh_status(c, i, now).await?;
    }
    audit::append(
        c,
        actor,
        Change::new("PAYMENT_CANCELLED")
            .entity("payment", p.id)
            .before(json!({"status": "ACTIVE"}))
            .after(json!({"status": "ANNULE", "reference": p.reference, "amount": p.amount,
                          "invoiceStatus": invoice.as_ref().map(|i| i.status.clone())}))
            .reason(reason),
        now,
    )
    .await?;
    Ok(p)
}

/// ADMIN refunds a client whose balance is negative (trop-perçu): amount ≤ −balance, numbered in the REG sequence.
pub async fn refund<C: ConnectionTrait>(
    c: &C,
    client_id: Uuid,
    input: sales::PaymentInput,
    notes: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Payment, OpError> {
    let client = lock_client(c, client_id).await?;
    let method = Method::parse(&input.method)
        .ok_or_else(|| Rejection::new("VALEUR_HORS_LIMITES", 422, "Valeur hors limites."))?;
    sales::check_method_details(method, &input)?;
    let owed_to_client = -account(c, client.id).await?.balance();
    sales::check_amount_within(input.amount, owed_to_client.max(0))?;
    let today = domain::stock::today_algiers(now);
    let p = new_payment(c, "REMBOURSEMENT", None, client.id, method, &input, today, notes, actor, now).await?;
    audit::append(
        c,
        actor,
        Change::new("REFUND_RECORDED").entity("payment", p.id).after(json!({
            "reference": p.reference, "client": client.code, "amount": p.amount, "method": p.method,
        })),
        now,
    )
    .await?;
    Ok(p)
}

/// Every payment and refund, newest first.
pub async fn all_payments<C: ConnectionTrait>(c: &C) -> Result<Vec<Payment>, StoreError> {
    Ok(payments::Entity::find().order_by_desc(payments::Column::CreatedAt).all(c).await?)
}

pub async fn payments_of<C: ConnectionTrait>(c: &C, invoice_id: Uuid) -> Result<Vec<Payment>, StoreError> {
    Ok(payments::Entity::find()
        .filter(payments::Column::InvoiceId.eq(invoice_id))
        .order_by_asc(payments::Column::CreatedAt)
        .all(c)
        .await?)
}

// ---- Credit notes (§10.4) -----------------------------------------------------------------------------------------

/// What each line of an invoice has been through: BLs, deliveries, validated credit notes.
pub async fn creditable_lines<C: ConnectionTrait>(
    c: &C,
    invoice_id: Uuid,
) -> Result<Vec<(InvoiceLine, CreditableLine)>, StoreError> {
    let b = c.get_database_backend();
    let lines = lines_of(c, invoice_id).await?;
    let mut facts: HashMap<Uuid, CreditableLine> = lines
        .iter()
        .map(|l| {
            (
                l.id,
                CreditableLine {
                    quantity: l.quantity,
                    ht: l.ht,
                    tva: l.tva,
                    rate_bp: i64::from(l.rate_bp),
                    ..Default::default()
                },
            )
        })
        .collect();
    let rows = c
        .query_all_raw(stmt(
            b,
            "SELECT dl.invoice_line_id AS line_id, d.status AS status, CAST(SUM(dl.quantity) AS BIGINT) AS n \
             FROM delivery_lines dl JOIN deliveries d ON d.id = dl.delivery_id \
             WHERE d.invoice_id = $1 GROUP BY dl.invoice_line_id, d.status",
            vec![invoice_id.into()],
        ))
        .await?;
    for r in rows {
        let (line, status, n): (Uuid, String, i64) =
            (r.try_get("", "line_id")?, r.try_get("", "status")?, r.try_get("", "n")?);
        let Some(f) = facts.get_mut(&line) else { continue };
        let s = domain::delivery::BlStatus::parse(&status);
        if s.is_some_and(|s| s.reserves()) {
            f.on_delivery_notes += n;
        }
        if s.is_some_and(|s| s.shipped()) {
            f.delivered += n;
        }
    }
    let credited = c
        .query_all_raw(stmt(
            b,
            "SELECT cl.invoice_line_id AS line_id, cl.kind AS kind, CAST(SUM(cl.quantity) AS BIGINT) AS q, \
             CAST(SUM(cl.ht) AS BIGINT) AS ht, CAST(SUM(cl.tva) AS BIGINT) AS tva \
             FROM credit_note_lines cl JOIN credit_notes cn ON cn.id = cl.credit_note_id \
             WHERE cn.invoice_id = $1 AND cn.status = 'VALIDATED' GROUP BY cl.invoice_line_id, cl.kind",
            vec![invoice_id.into()],
        ))
        .await?;
    for r in credited {
        let line: Uuid = r.try_get("", "line_id")?;
        let kind: String = r.try_get("", "kind")?;
        let Some(f) = facts.get_mut(&line) else { continue };
        let Some(kind) = CreditKind::parse(&kind) else { continue };
        let q: i64 = r.try_get("", "q")?;
        let a = LineAmounts { gross: 0, ht: r.try_get("", "ht")?, tva: r.try_get("", "tva")? };
        f.add(kind, if kind == CreditKind::Prix { 0 } else { q }, a);
    }
    Ok(lines.into_iter().map(|l| (l.clone(), facts[&l.id])).collect())
}

/// One credit line asked for: the invoice line, the kind, a quantity (or an HT amount for PRIX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCreditLine {
    pub invoice_line_id: Uuid,
    pub kind: CreditKind,
    pub amount: i64,
}

/// "Avoir total": every line's remaining to deliver as NON_LIVRE and its delivered-not-credited as RETOUR.
pub async fn full_credit_lines<C: ConnectionTrait>(c: &C, invoice_id: Uuid) -> Result<Vec<NewCreditLine>, StoreError> {
    let mut out = Vec::new();
    for (l, f) in creditable_lines(c, invoice_id).await? {
        for kind in [CreditKind::NonLivre, CreditKind::Retour] {
            let q = f.max_for(kind);
            if q > 0 {
                out.push(NewCreditLine { invoice_line_id: l.id, kind, amount: q });
            }
        }
    }
    Ok(out)
}

/// Amounts of a credit note against the invoice's current state (validated notes only).
struct Computed {
    lines: Vec<CreditNoteLine>,
    ht: i64,
    tva: i64,
    ttc: i64,
    timbre: i64,
    net: i64,
    vat: Vec<sales::VatRow>,
}

async fn compute_credit<C: ConnectionTrait>(
    c: &C,
    i: &Invoice,
    note_id: Uuid,
    asked: &[NewCreditLine],
) -> Result<Computed, OpError> {
    if asked.is_empty() {
        return Err(Rejection::new("FACTURE_VIDE", 422, "L'avoir ne contient aucune ligne.").into());
    }
    let mut facts: HashMap<Uuid, (InvoiceLine, CreditableLine)> =
        creditable_lines(c, i.id).await?.into_iter().map(|(l, f)| (l.id, (l, f))).collect();
    let mut lines = Vec::new();
    for (n, a) in asked.iter().enumerate() {
        let (il, f) = facts.get_mut(&a.invoice_line_id).ok_or_else(|| Rejection::non_trouve("Ligne de facture"))?;
        let p = crate::stock::product(c, il.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
        let amounts = sales::credit_line(f, a.kind, a.amount, unit_of(&p))?;
        let quantity = if a.kind == CreditKind::Prix { 0 } else { a.amount };
        f.add(a.kind, quantity, amounts);
        lines.push(CreditNoteLine {
            id: Uuid::now_v7(),
            credit_note_id: note_id,
            line_no: n as i32 + 1,
            invoice_line_id: il.id,
            kind: a.kind.code().into(),
            quantity,
            ht: amounts.ht,
            tva: amounts.tva,
            rate_bp: il.rate_bp,
            return_lot_id: None,
        });
    }
    let amounts: Vec<(LineAmounts, i64)> =
        lines.iter().map(|l| (LineAmounts { gross: l.ht, ht: l.ht, tva: l.tva }, i64::from(l.rate_bp))).collect();
    let ht = domain::money::sum(lines.iter().map(|l| l.ht))?;
    let tva = domain::money::sum(lines.iter().map(|l| l.tva))?;
    let ttc = ht + tva;
    let earlier_ttc = sum_i64(
        c,
        "SELECT CAST(SUM(total_ttc) AS BIGINT) AS n FROM credit_notes WHERE invoice_id = $1 AND status = 'VALIDATED'",
        vec![i.id.into()],
    )
    .await?;
    let rules = timbre_rules(c).await?;
    let date = i.invoice_date.unwrap_or(NaiveDate::MIN);
    let timbre = sales::timbre_credited(i.total_ttc, earlier_ttc, ttc, method_of(i), date, &rules);
    Ok(Computed { lines, ht, tva, ttc, timbre, net: ttc + timbre, vat: sales::breakdown(&amounts) })
}

pub fn credit_note_status_ok(i: &Invoice) -> Result<(), Rejection> {
    sales::check_open_for(
        i.reference.as_deref().unwrap_or_default(),
        status_of(i),
        &[InvoiceStatus::Validated, InvoiceStatus::PartiallyPaid, InvoiceStatus::Paid],
    )
}

/// A DRAFT credit note on a validated invoice (ADMIN, COMMERCIAL): reason ≥ 10 characters, lines within what each
/// kind may still take.
pub async fn create_credit_note<C: ConnectionTrait>(
    c: &C,
    invoice_key: &str,
    reason: &str,
    asked: Vec<NewCreditLine>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CreditNote, OpError> {
    let i = lock_invoice(c, invoice_key).await?;
    credit_note_status_ok(&i)?;
    let reason = domain::validation::reason(reason, 10)?;
    let id = Uuid::now_v7();
    let k = compute_credit(c, &i, id, &asked).await?;
    let (credited, _) = credited_and_paid(c, i.id).await?;
    sales::check_credit_total(i.reference.as_deref().unwrap_or_default(), i.net, credited, k.net)?;
    let note = CreditNote {
        id,
        reference: None,
        invoice_id: i.id,
        status: "DRAFT".into(),
        reason,
        credit_date: None,
        total_ht: k.ht,
        total_tva: k.tva,
        total_ttc: k.ttc,
        timbre: k.timbre,
        net: k.net,
        vat_breakdown: vat_json(&k.vat),
        created_by: actor.user_id,
        created_at: now,
        updated_at: now,
        validated_at: None,
        validated_by: None,
    };
    credit_notes::Entity::insert(note.clone().into_active_model()).exec_without_returning(c).await?;
    for l in &k.lines {
        credit_note_lines::Entity::insert(l.clone().into_active_model()).exec_without_returning(c).await?;
    }
    audit::append(
        c,
        actor,
        Change::new("CREDIT_NOTE_CREATED").entity("credit_note", note.id).after(json!({
            "invoice": i.reference, "net": note.net, "reason": note.reason,
            "lines": k.lines.iter().map(|l| json!({"kind": l.kind, "quantity": l.quantity, "ht": l.ht})).collect::<Vec<_>>(),
        })),
        now,
    )
    .await?;
    Ok(note)
}

pub async fn lock_credit_note<C: ConnectionTrait>(c: &C, key: &str) -> Result<CreditNote, OpError> {
    Ok(document_by_key::<credit_notes::Entity, _>(c, key, true).await?.ok_or_else(|| Rejection::non_trouve("Avoir"))?)
}

pub async fn find_credit_note<C: ConnectionTrait>(c: &C, key: &str) -> Result<Option<CreditNote>, StoreError> {
    document_by_key::<credit_notes::Entity, _>(c, key, false).await
}

pub async fn credit_note_lines_of<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Vec<CreditNoteLine>, StoreError> {
    Ok(credit_note_lines::Entity::find()
        .filter(credit_note_lines::Column::CreditNoteId.eq(id))
        .order_by_asc(credit_note_lines::Column::LineNo)
        .all(c)
        .await?)
}

pub async fn credit_notes_of<C: ConnectionTrait>(c: &C, invoice_id: Uuid) -> Result<Vec<CreditNote>, StoreError> {
    Ok(credit_notes::Entity::find()
        .filter(credit_notes::Column::InvoiceId.eq(invoice_id))
        .order_by_asc(credit_notes::Column::CreatedAt)
        .all(c)
        .await?)
}

/// DRAFT → VALIDATED (ADMIN): amounts recomputed against the invoice as it is now, number `AV-YYYY-NNNNN`, returns
/// into QUARANTINE lots `RET{YYMMDD}-{NNN}` (CUSTOMER_RETURN IN at the weighted cost of the lots shipped for the line,
/// DLC the earliest of them), invoice status re-derived — CREDITED when Σ credited net = net.
pub async fn validate_credit_note<C: ConnectionTrait>(
    c: &C,
    key: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CreditNote, OpError> {
    let draft = lock_credit_note(c, key).await?;
    let mut i = lock_invoice(c, &draft.invoice_id.to_string()).await?;
    let mut note = lock_credit_note(c, &draft.id.to_string()).await?;
    if note.status != "DRAFT" {
        return Err(Rejection::transition_invalide(&note.status, "VALIDATED").into());
    }
    credit_note_status_ok(&i)?;
    let asked: Vec<NewCreditLine> = credit_note_lines_of(c, note.id)
        .await?
        .iter()
        .map(|l| NewCreditLine {
            invoice_line_id: l.invoice_line_id,
            kind: CreditKind::parse(&l.kind).unwrap_or(CreditKind::Prix),
            amount: if l.kind == CreditKind::Prix.code() { l.ht } else { l.quantity },
        })
        .collect();
    let mut k = compute_credit(c, &i, note.id, &asked).await?;
    let (credited, _) = credited_and_paid(c, i.id).await?;
    let invoice_ref = i.reference.clone().unwrap_or_default();
    sales::check_credit_total(&invoice_ref, i.net, credited, k.net)?;
    let today = domain::stock::today_algiers(now);
    let n = crate::stock::next_number(c, "AV", &year_of(today)).await?;
    note.reference = Some(domain::stock::doc_ref("AV", today.year(), n));
    // Returns: one QUARANTINE lot per RETOUR line.
    for l in k.lines.iter_mut().filter(|l| l.kind == CreditKind::Retour.code()) {
        let shipped = crate::delivery::shipped_lots(c, l.invoice_line_id).await?;
        let il = invoice_lines::Entity::find_by_id(l.invoice_line_id)
            .one(c)
            .await?
            .ok_or_else(|| Rejection::non_trouve("Ligne"))?;
        let unit_cost = sales::weighted_cost(&shipped.iter().map(|(lot, q)| (*q, lot.unit_cost)).collect::<Vec<_>>());
        let dlc = shipped.iter().filter_map(|(lot, _)| lot.dlc).min();
        let seq = crate::stock::next_number(c, "LOT_RET", &today.format("%Y-%m-%d").to_string()).await?;
        let (lot, _) = crate::stock::create_lot(
            c,
            crate::stock::NewLot {
                number: sales::return_lot_number(today, seq),
                product_id: il.product_id,
                supplier_lot_number: None,
                lot_origin: "RETURN",
                quantity: l.quantity,
                unit_cost,
                dlc,
                manufacture_date: None,
                status: domain::stock::LotStatus::Quarantine,
            },
            &crate::stock::Source {
                origin: "CUSTOMER_RETURN",
                source_type: Some("credit_note"),
                source_id: Some(note.id),
                reference: note.reference.clone(),
            },
            format!("RET:{}", l.id),
            &crate::stock::Mover { user_id: actor.user_id, device_id: actor.device_id.clone(), ip: actor.ip.clone() },
            now,
        )
        .await?;
        l.return_lot_id = Some(lot.id);
    }
    credit_note_lines::Entity::delete_many()
        .filter(credit_note_lines::Column::CreditNoteId.eq(note.id))
        .exec(c)
        .await?;
    for l in &k.lines {
        credit_note_lines::Entity::insert(l.clone().into_active_model()).exec_without_returning(c).await?;
    }
    note.status = "VALIDATED".into();
    note.credit_date = Some(today);
    note.total_ht = k.ht;
    note.total_tva = k.tva;
    note.total_ttc = k.ttc;
    note.timbre = k.timbre;
    note.net = k.net;
    note.vat_breakdown = vat_json(&k.vat);
    note.validated_at = Some(now);
    note.validated_by = actor.user_id;
    note.updated_at = now;
    credit_notes::Entity::update(note.clone().into_active_model().reset_all()).exec(c).await?;
    refresh_status(c, &mut i, now).await?;
    audit::append(
        c,
        actor,
        Change::new("CREDIT_NOTE_VALIDATED")
            .entity("credit_note", note.id)
            .before(json!({"status": "DRAFT"}))
            .after(json!({"reference": note.reference, "invoice": invoice_ref, "net": note.net, "timbre": note.timbre,
                          "invoiceStatus": i.status})),
        now,
    )
    .await?;
    Ok(note)
}

/// A DRAFT credit note is deleted (ADMIN, COMMERCIAL); the audit keeps it.
pub async fn delete_credit_note<C: ConnectionTrait>(
    c: &C,
    key: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let note = lock_credit_note(c, key).await?;
    if note.status != "DRAFT" {
        return Err(Rejection::transition_invalide(&note.status, "SUPPRIME").into());
    }
    credit_note_lines::Entity::delete_many()
        .filter(credit_note_lines::Column::CreditNoteId.eq(note.id))
        .exec(c)
        .await?;
    credit_notes::Entity::delete_by_id(note.id).exec(c).await?;
    audit::append(
        c,
        actor,
        Change::new("CREDIT_NOTE_DELETED")
            .entity("credit_note", note.id)
            .before(json!({"net": note.net, "reason": note.reason})),
        now,
    )
    .await?;
    Ok(())
}

// ---- Reading -------------------------------------------------------------------------------------------------------

/// Invoices for the lists, newest first; `status` filters.
pub async fn list_invoices<C: ConnectionTrait>(
    c: &C,
    status: Option<InvoiceStatus>,
    client_id: Option<Uuid>,
) -> Result<Vec<Invoice>, StoreError> {
    let mut q = invoices::Entity::find();
    if let Some(s) = status {
        q = q.filter(invoices::Column::Status.eq(s.code()));
    }
    if let Some(cl) = client_id {
        q = q.filter(invoices::Column::ClientId.eq(cl));
    }
    Ok(q.order_by_desc(invoices::Column::CreatedAt).all(c).await?)
}

/// Receivables aging (§17): Σ remaining per bucket over invoices with something left, and the part past due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aging {
    pub buckets: [i64; 4],
    pub overdue: i64,
}

pub async fn aging<C: ConnectionTrait>(c: &C, client_id: Option<Uuid>, today: NaiveDate) -> Result<Aging, StoreError> {
    let mut out = Aging::default();
    for status in [InvoiceStatus::Validated, InvoiceStatus::PartiallyPaid] {
        for i in list_invoices(c, Some(status), client_id).await? {
            let left = remaining(c, &i).await?;
            let Some(d) = i.invoice_date else { continue };
            if left <= 0 {
                continue;
            }
            out.buckets[sales::aging_bucket(d, today)] += left;
            if i.due_date.is_some_and(|due| due < today) {
                out.overdue += left;
            }
        }
    }
    Ok(out)
}

/// Every movement of a client's account, for its statement (`domain::sales::account_statement`).
pub async fn account_entries<C: ConnectionTrait>(
    c: &C,
    client_id: Uuid,
) -> Result<Vec<sales::AccountEntry>, StoreError> {
    let mut out = Vec::new();
    let invoices = invoices::Entity::find()
        .filter(invoices::Column::ClientId.eq(client_id))
        .filter(invoices::Column::Status.ne(InvoiceStatus::Draft.code()))
        .all(c)
        .await?;
    for i in &invoices {
        let (Some(reference), Some(date)) = (i.reference.clone(), i.invoice_date) else { continue };
        out.push(sales::AccountEntry {
            date,
            label: format!("Facture {reference}"),
            reference,
            debit: i.net,
            credit: 0,
        });
        for n in credit_notes_of(c, i.id).await? {
            if let (Some(r), Some(d)) = (n.reference.clone(), n.credit_date) {
                out.push(sales::AccountEntry {
                    date: d,
                    label: format!("Avoir {r} sur facture {}", i.reference.clone().unwrap_or_default()),
                    reference: r,
                    debit: 0,
                    credit: n.net,
                });
            }
        }
    }
    let payments = payments::Entity::find().filter(payments::Column::ClientId.eq(client_id)).all(c).await?;
    for p in payments {
        let refund = p.kind == "REMBOURSEMENT";
        let method = Method::parse(&p.method).map(|m| m.label_fr()).unwrap_or_default();
        let label = if refund { format!("Remboursement ({method})") } else { format!("Règlement ({method})") };
        let (debit, credit) = if refund { (p.amount, 0) } else { (0, p.amount) };
        out.push(sales::AccountEntry { date: p.payment_date, reference: p.reference.clone(), label, debit, credit });
        if let Some(d) = p.cancel_date.filter(|_| p.status != "ACTIVE") {
            out.push(sales::AccountEntry {
                date: d,
                reference: format!("{}-ANNUL", p.reference),
                label: format!("Annulation de {} : {}", p.reference, p.cancel_reason.clone().unwrap_or_default()),
                debit: credit,
                credit: debit,
            });
        }
    }
    Ok(out)
}
