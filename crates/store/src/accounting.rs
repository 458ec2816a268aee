//! Accounting exports (DOMAIN.md §19), read from the documents and the ledger for a period of Algiers dates (both
//! inclusive): sales and purchases journals, the G50 summary, the timbre journal and the journal entries, each
//! entry built by `domain::accounting` and balanced.

use chrono::NaiveDate;
use domain::accounting::Piece;
use domain::sales::VatRow;
use domain::timbre::Method;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::{OpError, StoreError};
use crate::sales::{credit_notes, invoices, payments, vat_rows};

/// One line of the sales journal; a credit note's amounts are negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesRow {
    pub date: NaiveDate,
    pub number: String,
    pub client_code: String,
    pub client_name: String,
    pub nif: String,
    pub ht: i64,
    pub vat: Vec<VatRow>,
    pub ttc: i64,
    pub timbre: i64,
    pub net: i64,
    pub method: String,
    pub timbre_rule: Option<String>,
    pub timbre_tranches: Option<i64>,
}

async fn client_of<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<(String, String, String), StoreError> {
    Ok(crate::catalogue::client_by_id(c, id)
        .await?
        .map(|cl| (cl.code, cl.raison_sociale, cl.nif.unwrap_or_default()))
        .unwrap_or_default())
}

fn negate(rows: Vec<VatRow>) -> Vec<VatRow> {
    rows.into_iter().map(|r| VatRow { rate_bp: r.rate_bp, base: -r.base, tva: -r.tva }).collect()
}

/// Invoices and credit notes **validated** in the period, by date then number. Drafts never appear.
pub async fn sales_journal<C: ConnectionTrait>(
    c: &C,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SalesRow>, StoreError> {
    let mut out = Vec::new();
    let inv = invoices::Entity::find()
        .filter(invoices::Column::Status.ne("DRAFT"))
        .filter(invoices::Column::InvoiceDate.between(from, to))
        .all(c)
        .await?;
    for i in inv {
        let (code, name, nif) = client_of(c, i.client_id).await?;
        out.push(SalesRow {
            date: i.invoice_date.unwrap_or(from),
            number: i.reference.clone().unwrap_or_default(),
            client_code: code,
            client_name: name,
            nif,
            ht: i.total_ht,
            vat: vat_rows(&i.vat_breakdown),
            ttc: i.total_ttc,
            timbre: i.timbre,
            net: i.net,
            method: i.payment_method.clone(),
            timbre_rule: i.timbre_rule.clone(),
            timbre_tranches: i.timbre_tranches,
        });
    }
    let notes = credit_notes::Entity::find()
        .filter(credit_notes::Column::Status.eq("VALIDATED"))
        .filter(credit_notes::Column::CreditDate.between(from, to))
        .all(c)
        .await?;
    for n in notes {
        let Some(i) = invoices::Entity::find_by_id(n.invoice_id).one(c).await? else { continue };
        let (code, name, nif) = client_of(c, i.client_id).await?;
        out.push(SalesRow {
            date: n.credit_date.unwrap_or(from),
            number: n.reference.clone().unwrap_or_default(),
            client_code: code,
            client_name: name,
            nif,
            ht: -n.total_ht,
            vat: negate(vat_rows(&n.vat_breakdown)),
            ttc: -n.total_ttc,
            timbre: -n.timbre,
            net: -n.net,
            method: i.payment_method.clone(),
            timbre_rule: i.timbre_rule.clone(),
            timbre_tranches: None,
        });
    }
    out.sort_by(|a, b| (a.date, &a.number).cmp(&(b.date, &b.number)));
    Ok(out)
}

/// One reception of the purchases journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub date: NaiveDate,
    pub number: String,
    pub supplier_code: String,
    pub supplier_name: String,
    pub nif: String,
    pub supplier_document: String,
    pub ht: i64,
    pub vat: Vec<VatRow>,
    pub ttc: i64,
}

/// Receptions in the period with their TVA per rate (from their lines).
pub async fn purchases_journal<C: ConnectionTrait>(
    c: &C,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PurchaseRow>, StoreError> {
    use crate::procurement::{lines, receptions};
    let rows = receptions::Entity::find()
        .filter(receptions::Column::ReceptionDate.between(from, to))
        .order_by_asc(receptions::Column::ReceptionDate)
        .order_by_asc(receptions::Column::Reference)
        .all(c)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let s = crate::catalogue::suppliers::Entity::find_by_id(r.supplier_id).one(c).await?;
        let ls = lines::Entity::find().filter(lines::Column::ReceptionId.eq(r.id)).all(c).await?;
        let vat: Vec<VatRow> = ls
            .iter()
            .map(|l| VatRow { rate_bp: i64::from(l.tva_rate), base: l.amount_ht, tva: l.amount_tva })
            .collect();
        out.push(PurchaseRow {
            date: r.reception_date,
            number: r.reference.clone(),
            supplier_code: s.as_ref().map(|s| s.code.clone()).unwrap_or_default(),
            supplier_name: s.as_ref().map(|s| s.raison_sociale.clone()).unwrap_or_default(),
            nif: s.and_then(|s| s.nif).unwrap_or_default(),
            supplier_document: r
                .supplier_invoice_number
                .clone()
                .or(r.supplier_delivery_note.clone())
                .unwrap_or_default(),
            ht: r.total_ht,
            vat: domain::accounting::sum_vat(&vat),
            ttc: r.total_ttc,
        });
    }
    Ok(out)
}

/// The G50 of the period (a month in practice).
pub async fn g50<C: ConnectionTrait>(
    c: &C,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<domain::accounting::G50, StoreError> {
    let sales = sales_journal(c, from, to).await?;
    let purchases = purchases_journal(c, from, to).await?;
    Ok(domain::accounting::g50(
        domain::accounting::sum_vat(sales.iter().flat_map(|s| s.vat.iter())),
        domain::accounting::sum_vat(purchases.iter().flat_map(|p| p.vat.iter())),
        sales.iter().map(|s| s.timbre).sum(),
    ))
}

/// The timbre journal: ESPECES invoices with a timbre and credit notes with timbre credited.
pub async fn timbre_journal<C: ConnectionTrait>(
    c: &C,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SalesRow>, StoreError> {
    Ok(sales_journal(c, from, to)
        .await?
        .into_iter()
        .filter(|s| s.timbre != 0 && s.method == Method::Especes.code())
        .collect())
}

/// (date, document, origin, direction, MP/PF): what one stock piece groups.
type MovementKey = (NaiveDate, String, String, String, String);

/// Every journal entry of the period, one balanced piece per document (§19): invoices, credit notes, payments and
/// their cancellations or refunds, receptions, and the valued stock movements.
pub async fn pieces<C: ConnectionTrait>(c: &C, from: NaiveDate, to: NaiveDate) -> Result<Vec<Piece>, StoreError> {
    use domain::accounting as a;
    let mut out = Vec::new();
    for s in sales_journal(c, from, to).await? {
        if s.net >= 0 {
            out.push(a::invoice_piece(
                s.date,
                &s.number,
                &s.client_code,
                s.ht,
                s.vat.iter().map(|v| v.tva).sum(),
                s.timbre,
                s.net,
            ));
        } else {
            out.push(a::credit_note_piece(
                s.date,
                &s.number,
                &s.client_code,
                -s.ht,
                -s.vat.iter().map(|v| v.tva).sum::<i64>(),
                -s.timbre,
                -s.net,
            ));
        }
    }
    let pays = payments::Entity::find().all(c).await?;
    for p in pays {
        let client = client_of(c, p.client_id).await?.0;
        let method = Method::parse(&p.method).unwrap_or(Method::Especes);
        let refund = p.kind == "REMBOURSEMENT";
        if (from..=to).contains(&p.payment_date) {
            out.push(a::payment_piece(p.payment_date, &p.reference, &client, method, p.amount, refund));
        }
        if let Some(d) = p.cancel_date.filter(|d| (from..=to).contains(d)) {
            // The reversal of a cancelled payment (a refund cancelled reverses back into the treasury).
            out.push(a::payment_piece(d, &format!("{}-ANNUL", p.reference), &client, method, p.amount, !refund));
        }
    }
    for r in purchases_journal(c, from, to).await? {
        out.push(a::reception_piece(
            r.date,
            &r.number,
            &r.supplier_code,
            r.ht,
            r.vat.iter().map(|v| v.tva).sum(),
            r.ttc,
        ));
    }
    // Stock movements valued at lot cost, one piece per (date, document, origin, direction, MP/PF).
    let rows = c
        .query_all_raw(crate::stock::stmt(
            c.get_database_backend(),
            "SELECT m.business_date AS d, COALESCE(m.source_reference, '') AS r, m.origin AS origin, \
             m.direction AS direction, p.kind AS kind, m.quantity AS q, m.unit_cost AS cost \
             FROM stock_movements m JOIN products p ON p.id = m.product_id \
             WHERE m.business_date >= $1 AND m.business_date <= $2 ORDER BY m.business_date, m.created_at, m.id",
            vec![from.into(), to.into()],
        ))
        .await?;
    let mut grouped: Vec<(MovementKey, i64)> = Vec::new();
    for r in rows {
        let key: MovementKey = (
            r.try_get("", "d")?,
            r.try_get("", "r")?,
            r.try_get("", "origin")?,
            r.try_get("", "direction")?,
            r.try_get("", "kind")?,
        );
        let value = domain::money::amount(r.try_get("", "q")?, r.try_get("", "cost")?).unwrap_or(0);
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v += value,
            None => grouped.push((key, value)),
        }
    }
    for ((d, reference, origin, direction, kind), value) in grouped {
        if let Some(p) = a::movement_piece(d, &reference, &origin, kind == "PF", direction == "IN", value) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The stock statement of [from, to] (§19): every movement up to `to` valued by `domain::accounting`, one line per
/// product; with each product's Σ lot balances at the end of `to` (the ledger's other view) to check the closing.
pub async fn stock_statement(
    db: &crate::Db,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<
    (Vec<domain::accounting::StockLine>, std::collections::HashMap<String, (crate::stock::Product, i64)>),
    OpError,
> {
    use crate::stock::{movements, products};
    let c = db.conn();
    let all_products = products::Entity::find().all(c).await?;
    let code_of: std::collections::HashMap<Uuid, &str> = all_products.iter().map(|p| (p.id, p.code.as_str())).collect();
    let rows = movements::Entity::find()
        .filter(movements::Column::BusinessDate.lte(to))
        .order_by_asc(movements::Column::BusinessDate)
        .all(c)
        .await?;
    let moves: Vec<domain::accounting::StockMove> = rows
        .iter()
        .map(|m| domain::accounting::StockMove {
            product: code_of.get(&m.product_id).map(|c| c.to_string()).unwrap_or_default(),
            date: m.business_date,
            inbound: m.direction == "IN",
            origin: m.origin.clone(),
            quantity: m.quantity,
            unit_cost: m.unit_cost,
        })
        .collect();
    let lines = domain::accounting::stock_statement(&moves, from, to)?;
    let balances: std::collections::HashMap<Uuid, i64> = crate::stock::stock_at(db, to).await?.into_iter().collect();
    let by_code = all_products
        .into_iter()
        .map(|p| {
            let balance = balances.get(&p.id).copied().unwrap_or(0);
            (p.code.clone(), (p, balance))
        })
        .collect();
    Ok((lines, by_code))
}

/// The chart of accounts in its shipped order: (key, account, label).
pub async fn chart_rows<C: ConnectionTrait>(c: &C) -> Result<Vec<(String, String, String)>, StoreError> {
    let current = crate::sales::chart(c).await?;
    Ok(domain::accounting::DEFAULT_CHART
        .iter()
        .map(|(k, a, l)| (k.to_string(), current.get(*k).cloned().unwrap_or_else(|| a.to_string()), l.to_string()))
        .collect())
}

/// Sets the accounts of the chart (checked by `domain::accounting::check_chart`); the change is audited with the
/// accounts before and after. Returns the keys whose account changed.
pub async fn save_chart<C: ConnectionTrait>(
    c: &C,
    accounts: Vec<(String, String)>,
    actor: &crate::audit::Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, OpError> {
    let before = crate::sales::chart(c).await?;
    let mut changed = Vec::new();
    for (key, account) in &accounts {
        if before.get(key) != Some(account) {
            c.execute_raw(crate::stock::stmt(
                c.get_database_backend(),
                "UPDATE chart_of_accounts SET account = $1 WHERE key = $2",
                vec![account.clone().into(), key.clone().into()],
            ))
            .await?;
            changed.push(key.clone());
        }
    }
    if !changed.is_empty() {
        let pick = |m: &std::collections::HashMap<String, String>| {
            serde_json::Value::Object(changed.iter().map(|k| (k.clone(), serde_json::json!(m.get(k)))).collect())
        };
        let after: std::collections::HashMap<String, String> = accounts.into_iter().collect();
        crate::audit::append(
            c,
            actor,
            crate::audit::Change::new("CHART_OF_ACCOUNTS_UPDATED")
                .entity("chart_of_accounts", 1)
                .before(pick(&before))
                .after(pick(&after)),
            now,
        )
        .await?;
    }
    Ok(changed)
}
