//! Sales (DOMAIN.md §4.4, §10): price resolution, invoice amounts, the invoice state derived from amounts, the
//! validation checks, credit notes and payments. Money in centimes, quantities in milli-units, rates in basis points.

use chrono::NaiveDate;
use serde_json::json;

use crate::money::{self, round_div};
use crate::rejection::Rejection;
use crate::timbre::{self, Method, Rule};

// ---- Price lists (§4.4) ------------------------------------------------------------------------------------------

pub const CLIENT_TYPES: [&str; 4] = ["DISTRIBUTEUR", "GROSSISTE", "SUPERETTE", "FAST_FOOD"];

/// A price list as the rules see it (ids are opaque strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    pub id: String,
    pub client_type: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub active: bool,
    pub items: Vec<PriceItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceItem {
    pub product_id: String,
    pub min_quantity: i64,
    pub unit_price: i64,
}

impl PriceList {
    pub fn valid_on(&self, d: NaiveDate) -> bool {
        self.valid_from <= d && self.valid_to.is_none_or(|t| d <= t)
    }

    fn overlaps(&self, other: &PriceList) -> bool {
        let end = |l: &PriceList| l.valid_to.unwrap_or(NaiveDate::MAX);
        self.valid_from <= end(other) && other.valid_from <= end(self)
    }
}

/// Where a line's unit price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource {
    Tarif,
    PrixCatalogue,
    Manuel,
}

impl PriceSource {
    pub fn code(self) -> &'static str {
        match self {
            PriceSource::Tarif => "TARIF",
            PriceSource::PrixCatalogue => "PRIX_CATALOGUE",
            PriceSource::Manuel => "MANUEL",
        }
    }

    pub fn parse(s: &str) -> Option<PriceSource> {
        [PriceSource::Tarif, PriceSource::PrixCatalogue, PriceSource::Manuel].into_iter().find(|p| p.code() == s)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            PriceSource::Tarif => "Tarif",
            PriceSource::PrixCatalogue => "Prix catalogue",
            PriceSource::Manuel => "Manuel",
        }
    }
}

/// Price of `qty` of a PF for a client type on `d`: the active list of that type valid on `d`, its item with the
/// highest min_quantity ≤ qty; else the PF's list price.
pub fn resolve_price(
    lists: &[PriceList],
    client_type: &str,
    product_id: &str,
    qty: i64,
    d: NaiveDate,
    list_price: i64,
) -> (i64, PriceSource) {
    lists
        .iter()
        .filter(|l| l.active && l.client_type == client_type && l.valid_on(d))
        .flat_map(|l| l.items.iter())
        .filter(|i| i.product_id == product_id && i.min_quantity <= qty)
        .max_by_key(|i| i.min_quantity)
        .map_or((list_price, PriceSource::PrixCatalogue), |i| (i.unit_price, PriceSource::Tarif))
}

/// A list is consistent (dates in order, items unique per (PF, min), amounts ≥ 0) and, when active, overlaps no
/// other active list of the same client type (`TARIF_CHEVAUCHEMENT`).
pub fn check_price_list(list: &PriceList, others: &[PriceList]) -> Result<(), Rejection> {
    if !CLIENT_TYPES.contains(&list.client_type.as_str()) {
        return Err(money::valeur_hors_limites().with_details(json!({"field": "clientType"})));
    }
    if list.valid_to.is_some_and(|t| t < list.valid_from) {
        return Err(Rejection::new("DATE_INVALIDE", 422, "Date invalide : la fin de validité précède le début.")
            .with_details(json!({"field": "validTo"})));
    }
    let mut seen = std::collections::HashSet::new();
    for i in &list.items {
        if i.min_quantity < 0 || i.unit_price < 0 {
            return Err(money::valeur_hors_limites().with_details(json!({"productId": i.product_id})));
        }
        if !seen.insert((i.product_id.as_str(), i.min_quantity)) {
            return Err(Rejection::new(
                "LIGNE_DOUBLON",
                422,
                "Le produit figure déjà sur ce document avec la même quantité minimale.",
            )
            .with_details(json!({"productId": i.product_id, "minQuantity": i.min_quantity})));
        }
    }
    if list.active
        && others.iter().any(|o| o.id != list.id && o.active && o.client_type == list.client_type && o.overlaps(list))
    {
        return Err(Rejection::new(
            "TARIF_CHEVAUCHEMENT",
            409,
            format!("Un autre tarif {} est valide sur cette période.", list.client_type),
        )
        .with_details(json!({"type": list.client_type})));
    }
    Ok(())
}

// ---- Invoice amounts (§10.1) -------------------------------------------------------------------------------------

pub const TVA_RATES: [i64; 3] = [0, 900, 1900];

/// One line as entered (price already resolved or overridden).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub rate_bp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAmounts {
    pub gross: i64,
    pub ht: i64,
    pub tva: i64,
}

pub fn tva_invalide() -> Rejection {
    Rejection::new("TVA_INVALIDE", 422, "Taux de TVA invalide (0 %, 9 % ou 19 %).")
}

/// gross = qty × price; HT = gross − discount (0 ≤ discount ≤ gross); TVA = HT × rate.
pub fn line_amounts(l: &Line, whole_pieces: bool) -> Result<LineAmounts, Rejection> {
    crate::stock::check_quantity(l.quantity, whole_pieces)?;
    if !TVA_RATES.contains(&l.rate_bp) {
        return Err(tva_invalide());
    }
    if l.unit_price < 0 {
        return Err(money::valeur_hors_limites().with_details(json!({"field": "unitPrice"})));
    }
    let gross = money::amount(l.quantity, l.unit_price)?;
    if l.discount < 0 || l.discount > gross {
        return Err(Rejection::new(
            "REMISE_INVALIDE",
            422,
            "La remise doit être comprise entre 0 et le montant brut de la ligne.",
        )
        .with_details(json!({"gross": gross, "discount": l.discount})));
    }
    let ht = gross - l.discount;
    Ok(LineAmounts { gross, ht, tva: money::apply_rate(ht, l.rate_bp as i32)? })
}

/// One row of the TVA breakdown: the rate, the HT base and the TVA of the lines at that rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatRow {
    pub rate_bp: i64,
    pub base: i64,
    pub tva: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub ht: i64,
    pub tva: i64,
    pub ttc: i64,
    pub timbre: i64,
    pub net: i64,
    /// By rate, highest first.
    pub vat: Vec<VatRow>,
}

/// Totals from line amounts (with their rates): Σ HT, TVA per rate, TTC, timbre of the method on `d`, net.
pub fn totals(lines: &[(LineAmounts, i64)], method: Method, d: NaiveDate, rules: &[Rule]) -> Result<Totals, Rejection> {
    let ht = money::sum(lines.iter().map(|(a, _)| a.ht))?;
    let tva = money::sum(lines.iter().map(|(a, _)| a.tva))?;
    let ttc = money::sum([ht, tva])?;
    let timbre = timbre::timbre(ttc, method, d, rules);
    Ok(Totals { ht, tva, ttc, timbre, net: money::sum([ttc, timbre])?, vat: breakdown(lines) })
}

/// Σ HT and Σ TVA per rate, highest rate first.
pub fn breakdown(lines: &[(LineAmounts, i64)]) -> Vec<VatRow> {
    let mut rows: Vec<VatRow> = Vec::new();
    for (a, rate) in lines {
        match rows.iter_mut().find(|r| r.rate_bp == *rate) {
            Some(r) => {
                r.base += a.ht;
                r.tva += a.tva;
            }
            None => rows.push(VatRow { rate_bp: *rate, base: a.ht, tva: a.tva }),
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.rate_bp));
    rows
}

/// An overridden price needs a reason of at least 10 characters (§4.4 step 4).
pub fn check_override_reason(reason: Option<&str>) -> Result<String, Rejection> {
    crate::validation::reason(reason.unwrap_or(""), 10)
}

// ---- Invoice state (§10.2) ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    Draft,
    Validated,
    PartiallyPaid,
    Paid,
    Credited,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 5] = [
        InvoiceStatus::Draft,
        InvoiceStatus::Validated,
        InvoiceStatus::PartiallyPaid,
        InvoiceStatus::Paid,
        InvoiceStatus::Credited,
    ];

    pub fn code(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "DRAFT",
            InvoiceStatus::Validated => "VALIDATED",
            InvoiceStatus::PartiallyPaid => "PARTIALLY_PAID",
            InvoiceStatus::Paid => "PAID",
            InvoiceStatus::Credited => "CREDITED",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceStatus> {
        InvoiceStatus::ALL.into_iter().find(|x| x.code() == s)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "Brouillon",
            InvoiceStatus::Validated => "Validée",
            InvoiceStatus::PartiallyPaid => "Partiellement payée",
            InvoiceStatus::Paid => "Payée",
            InvoiceStatus::Credited => "Annulée par avoir",
        }
    }

    /// A validated invoice that still counts (delivery, credit note, balance).
    pub fn is_validated(self) -> bool {
        self != InvoiceStatus::Draft
    }
}

/// Status from the amounts: CREDITED if credited = net; PAID if paid > 0 and nothing remains; PARTIALLY_PAID if
/// paid > 0; else VALIDATED.
pub fn status_from(net: i64, credited: i64, paid: i64) -> InvoiceStatus {
    let remaining = net - credited - paid;
    if credited >= net {
        InvoiceStatus::Credited
    } else if paid > 0 && remaining <= 0 {
        InvoiceStatus::Paid
    } else if paid > 0 {
        InvoiceStatus::PartiallyPaid
    } else {
        InvoiceStatus::Validated
    }
}

/// Only a DRAFT is edited or deleted.
pub fn check_editable(status: InvoiceStatus) -> Result<(), Rejection> {
    if status != InvoiceStatus::Draft {
        return Err(Rejection::new(
            "FACTURE_VALIDEE_NON_MODIFIABLE",
            409,
            "Une facture validée ne peut être ni modifiée ni supprimée : établissez un avoir.",
        ));
    }
    Ok(())
}

pub fn facture_statut_invalide(reference: &str, status: InvoiceStatus) -> Rejection {
    Rejection::new(
        "FACTURE_STATUT_INVALIDE",
        409,
        format!("La facture {reference} n'est pas dans un statut permettant cette opération ({}).", status.label_fr()),
    )
    .with_details(json!({"facture": reference, "statut": status.code()}))
}

/// The invoice of a payment, a credit note or a BL must be VALIDATED, PARTIALLY_PAID or PAID (§10.4, §10.5, §12).
pub fn check_open_for(reference: &str, status: InvoiceStatus, allowed: &[InvoiceStatus]) -> Result<(), Rejection> {
    if !allowed.contains(&status) {
        return Err(facture_statut_invalide(reference, status));
    }
    Ok(())
}

// ---- Validation checks (§10.3) -----------------------------------------------------------------------------------

pub fn facture_vide() -> Rejection {
    Rejection::new("FACTURE_VIDE", 422, "La facture ne contient aucune ligne.")
}

/// Step 2: a TARIF / PRIX_CATALOGUE line whose price re-resolved today differs (`PRIX_MODIFIES`, the products listed).
pub fn check_prices(changed: &[(String, i64, i64)]) -> Result<(), Rejection> {
    if changed.is_empty() {
        return Ok(());
    }
    let liste = changed.iter().map(|(p, _, _)| p.as_str()).collect::<Vec<_>>().join(", ");
    Err(Rejection::new("PRIX_MODIFIES", 409, format!("Les tarifs ont changé depuis la saisie ({liste}) : recalculez la facture."))
        .with_details(json!({
            "liste": liste,
            "lignes": changed.iter().map(|(p, old, new)| json!({"produit": p, "prixSaisi": old, "prixActuel": new})).collect::<Vec<_>>(),
        })))
}

/// Step 2: the company's RC, NIF, AI and NIS (and its name and address) are filled before the first validation.
pub fn check_company_complete(fields: &[(&str, Option<&str>)]) -> Result<(), Rejection> {
    let missing: Vec<&str> =
        fields.iter().filter(|(_, v)| v.is_none_or(|v| v.trim().is_empty())).map(|(name, _)| *name).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let liste = missing.join(", ");
    Err(Rejection::new("PARAMETRES_SOCIETE_INCOMPLETS", 409, format!("Paramètres de la société incomplets : {liste}."))
        .with_details(json!({"liste": missing})))
}

/// Step 3: NIF, RC and AI present and valid (NIS optional); the missing ones listed.
pub fn check_client_identifiers(nif: Option<&str>, rc: Option<&str>, ai: Option<&str>) -> Result<(), Rejection> {
    let mut missing = Vec::new();
    if nif.is_none_or(|v| crate::parties::nif(v).is_err()) {
        missing.push("NIF");
    }
    if rc.is_none_or(|v| crate::parties::rc(v).is_err()) {
        missing.push("RC");
    }
    if ai.is_none_or(|v| crate::parties::ai(v).is_err()) {
        missing.push("AI");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let liste = missing.join(", ");
    Err(Rejection::new(
        "CLIENT_IDENTIFIANTS_MANQUANTS",
        422,
        format!("Identifiants fiscaux du client manquants ou invalides : {liste}."),
    )
    .with_details(json!({"liste": missing})))
}

/// Step 4, per PF: demanded ≤ available to promise (stock_disponible − committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub product: String,
    pub unit: crate::stock::Unit,
    pub demanded: i64,
    pub stock: i64,
    pub committed: i64,
}

pub fn check_availability(rows: &[Availability]) -> Result<(), Rejection> {
    let short: Vec<&Availability> = rows.iter().filter(|r| r.demanded > r.stock - r.committed).collect();
    let Some(first) = short.first() else { return Ok(()) };
    let fq = |q: i64| crate::stock::fmt_qty(q, first.unit);
    Err(Rejection::new(
        "STOCK_NON_DISPONIBLE",
        409,
        format!(
            "Stock disponible insuffisant (stock {}, engagé {}, disponible {}) pour {}.",
            fq(first.stock),
            fq(first.committed),
            fq((first.stock - first.committed).max(0)),
            first.product
        ),
    )
    .with_details(json!({"lignes": short.iter().map(|r| json!({
        "pf": r.product, "demanded": r.demanded, "stockDisponible": r.stock, "committed": r.committed,
        "available": (r.stock - r.committed).max(0),
    })).collect::<Vec<_>>()})))
}

/// Step 5: outstanding + net ≤ limit, unless an ADMIN gives a reason (≥ 10 chars). Returns the override reason used.
pub fn check_credit_limit(
    outstanding: i64,
    net: i64,
    limit: Option<i64>,
    override_reason: Option<&str>,
    is_admin: bool,
) -> Result<Option<String>, Rejection> {
    let Some(limit) = limit else { return Ok(None) };
    let total = outstanding.max(0) + net;
    if total <= limit {
        return Ok(None);
    }
    if let Some(reason) = override_reason.filter(|r| !r.trim().is_empty()) {
        if !is_admin {
            return Err(Rejection::acces_refuse());
        }
        return crate::validation::reason(reason, 10).map(Some);
    }
    let m = money::fmt_money;
    Err(Rejection::new(
        "PLAFOND_CREDIT_DEPASSE",
        409,
        format!(
            "Plafond de crédit dépassé : encours {} + facture {} > plafond {} (dépassement {}).",
            m(outstanding.max(0)),
            m(net),
            m(limit),
            m(total - limit)
        ),
    )
    .with_details(json!({"encours": outstanding.max(0), "montant": net, "plafond": limit, "ecart": total - limit})))
}

/// Due date = invoice date + payment terms.
pub fn due_date(d: NaiveDate, terms_days: i64) -> NaiveDate {
    d + chrono::Duration::days(terms_days)
}

/// Client balance (§4.4): Σ net of validated invoices − Σ credited − Σ active payments + Σ active refunds.
pub fn balance(invoiced: i64, credited: i64, paid: i64, refunded: i64) -> i64 {
    invoiced - credited - paid + refunded
}

/// One movement of a client's account (§4.4): validated invoices and refunds are debits (they raise the balance),
/// validated credit notes and payments credits; a cancelled payment is its credit and, on the cancellation date, the
/// same amount back as a debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEntry {
    pub date: NaiveDate,
    pub reference: String,
    pub label: String,
    pub debit: i64,
    pub credit: i64,
}

/// A client's statement of [from, to] (UI.md row 28): the balance before `from`, the period's entries by date with
/// the running balance, the closing balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatement {
    pub opening: i64,
    /// Each entry with the balance after it.
    pub lines: Vec<(AccountEntry, i64)>,
    pub closing: i64,
}

pub fn account_statement(mut entries: Vec<AccountEntry>, from: NaiveDate, to: NaiveDate) -> AccountStatement {
    entries.sort_by(|a, b| (a.date, &a.reference).cmp(&(b.date, &b.reference)));
    let opening: i64 = entries.iter().filter(|e| e.date < from).map(|e| e.debit - e.credit).sum();
    let mut running = opening;
    let lines = entries
        .into_iter()
        .filter(|e| e.date >= from && e.date <= to)
        .map(|e| {
            running += e.debit - e.credit;
            (e, running)
        })
        .collect();
    AccountStatement { opening, lines, closing: running }
}

/// Receivables aging bucket (§17): 0 = 0–30 days, 1 = 31–60, 2 = 61–90, 3 = > 90.
pub fn aging_bucket(invoice_date: NaiveDate, today: NaiveDate) -> usize {
    match (today - invoice_date).num_days() {
        ..=30 => 0,
        31..=60 => 1,
        61..=90 => 2,
        _ => 3,
    }
}

pub const AGING_LABELS: [&str; 4] = ["0–30 j", "31–60 j", "61–90 j", "> 90 j"];

// ---- Payments (§10.5) --------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentInput {
    pub method: String,
    pub amount: i64,
    pub date: Option<NaiveDate>,
    pub cheque_number: Option<String>,
    pub bank_name: Option<String>,
    pub cheque_date: Option<NaiveDate>,
    pub bank_reference: Option<String>,
}

fn filled(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn date_invalide(raison: &str) -> Rejection {
    Rejection::new("DATE_INVALIDE", 422, format!("Date invalide : {raison}.")).with_details(json!({"raison": raison}))
}

/// The method's own details: a cheque needs its number (1–20 chars), bank and date; a transfer its reference (≥ 4).
pub fn check_method_details(method: Method, p: &PaymentInput) -> Result<(), Rejection> {
    match method {
        Method::Cheque => {
            let number_ok = filled(&p.cheque_number).is_some_and(|n| n.chars().count() <= 20);
            if !number_ok || filled(&p.bank_name).is_none() || p.cheque_date.is_none() {
                return Err(Rejection::new(
                    "CHEQUE_INCOMPLET",
                    422,
                    "Numéro, banque et date du chèque sont obligatoires.",
                ));
            }
        }
        Method::Virement => {
            if filled(&p.bank_reference).is_none_or(|r| r.chars().count() < 4) {
                return Err(Rejection::new(
                    "REFERENCE_VIREMENT_REQUISE",
                    422,
                    "La référence du virement est obligatoire.",
                ));
            }
        }
        Method::Especes => {}
    }
    Ok(())
}

/// A payment against an invoice (status already checked): same method as the invoice, the method's details, a date
/// between the invoice date and today, 0 < amount ≤ remaining. Returns the checked method and date.
pub fn check_payment(
    invoice_method: Method,
    invoice_date: NaiveDate,
    remaining: i64,
    today: NaiveDate,
    p: &PaymentInput,
) -> Result<(Method, NaiveDate), Rejection> {
    let method = Method::parse(&p.method).ok_or_else(|| {
        Rejection::new(
            "MODE_REGLEMENT_DIFFERENT",
            422,
            format!("Le mode de règlement doit être celui de la facture ({}).", invoice_method.label_fr()),
        )
        .with_details(json!({"mode": invoice_method.code()}))
    })?;
    if method != invoice_method {
        return Err(Rejection::new(
            "MODE_REGLEMENT_DIFFERENT",
            422,
            format!("Le mode de règlement doit être celui de la facture ({}).", invoice_method.label_fr()),
        )
        .with_details(json!({"mode": invoice_method.code()})));
    }
    check_method_details(method, p)?;
    let date = p.date.unwrap_or(today);
    if date < invoice_date {
        return Err(date_invalide("le règlement ne peut pas précéder la facture"));
    }
    if date > today {
        return Err(date_invalide("le règlement ne peut pas être dans le futur"));
    }
    check_amount_within(p.amount, remaining)?;
    Ok((method, date))
}

/// 0 < amount ≤ what remains (`MONTANT_SUPERIEUR_RESTANT` with the remaining amount).
pub fn check_amount_within(amount: i64, remaining: i64) -> Result<(), Rejection> {
    if amount <= 0 {
        return Err(money::valeur_hors_limites().with_details(json!({"field": "amount"})));
    }
    if amount > remaining {
        return Err(Rejection::new(
            "MONTANT_SUPERIEUR_RESTANT",
            422,
            format!("Le montant dépasse le reste à payer ({}).", money::fmt_money(remaining.max(0))),
        )
        .with_details(json!({"restant": remaining.max(0)})));
    }
    Ok(())
}

// ---- Credit notes (§10.4) ----------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditKind {
    NonLivre,
    Retour,
    SansRetour,
    Prix,
}

impl CreditKind {
    pub const ALL: [CreditKind; 4] =
        [CreditKind::NonLivre, CreditKind::Retour, CreditKind::SansRetour, CreditKind::Prix];

    pub fn code(self) -> &'static str {
        match self {
            CreditKind::NonLivre => "NON_LIVRE",
            CreditKind::Retour => "RETOUR",
            CreditKind::SansRetour => "SANS_RETOUR",
            CreditKind::Prix => "PRIX",
        }
    }

    pub fn parse(s: &str) -> Option<CreditKind> {
        CreditKind::ALL.into_iter().find(|k| k.code() == s.trim().to_uppercase())
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            CreditKind::NonLivre => "Quantité non livrée",
            CreditKind::Retour => "Retour marchandise",
            CreditKind::SansRetour => "Sans retour (détruit chez le client)",
            CreditKind::Prix => "Correction de prix",
        }
    }
}

/// What is known of one invoice line when crediting it (validated credit notes only, plus the one being computed's
/// earlier lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreditableLine {
    pub quantity: i64,
    pub ht: i64,
    pub tva: i64,
    pub rate_bp: i64,
    /// Σ quantities on BLs PENDING, VALIDATED or DELIVERED.
    pub on_delivery_notes: i64,
    /// Σ quantities on VALIDATED or DELIVERED BLs (stock left).
    pub delivered: i64,
    pub credited_non_livre: i64,
    pub returned: i64,
    pub credited_sans_retour: i64,
    pub credited_ht: i64,
    pub credited_tva: i64,
}

impl CreditableLine {
    pub fn credited_quantity(&self) -> i64 {
        self.credited_non_livre + self.returned + self.credited_sans_retour
    }

    /// Remaining to deliver (§12): quantity − on BLs − credited NON_LIVRE.
    pub fn remaining_to_deliver(&self) -> i64 {
        (self.quantity - self.on_delivery_notes - self.credited_non_livre).max(0)
    }

    /// What RETOUR / SANS_RETOUR may still take: delivered − returned − credited sans retour.
    pub fn creditable_delivered(&self) -> i64 {
        (self.delivered - self.returned - self.credited_sans_retour).max(0)
    }

    pub fn max_for(&self, kind: CreditKind) -> i64 {
        match kind {
            CreditKind::NonLivre => self.remaining_to_deliver(),
            CreditKind::Retour | CreditKind::SansRetour => self.creditable_delivered(),
            CreditKind::Prix => (self.ht - self.credited_ht).max(0),
        }
    }

    /// Records a credited line so the next line of the same note sees it.
    pub fn add(&mut self, kind: CreditKind, quantity: i64, a: LineAmounts) {
        match kind {
            CreditKind::NonLivre => self.credited_non_livre += quantity,
            CreditKind::Retour => self.returned += quantity,
            CreditKind::SansRetour => self.credited_sans_retour += quantity,
            CreditKind::Prix => {}
        }
        self.credited_ht += a.ht;
        self.credited_tva += a.tva;
    }
}

/// HT and TVA of one credit line. QUANTITE kinds take `amount` as a quantity, PRIX as an HT amount. Reaching the
/// line's full quantity cancels exactly what is left of its HT and TVA.
pub fn credit_line(
    l: &CreditableLine,
    kind: CreditKind,
    amount: i64,
    unit: crate::stock::Unit,
) -> Result<LineAmounts, Rejection> {
    let max = l.max_for(kind);
    if kind == CreditKind::Prix {
        if amount <= 0 || amount > max {
            return Err(money::valeur_hors_limites().with_details(json!({"max": max, "kind": kind.code()})));
        }
        return Ok(LineAmounts { gross: amount, ht: amount, tva: money::apply_rate(amount, l.rate_bp as i32)? });
    }
    crate::stock::check_quantity(amount, unit == crate::stock::Unit::U)?;
    if amount > max {
        return Err(Rejection::new(
            "QUANTITE_INVALIDE",
            422,
            format!("Quantité invalide (au plus {} pour « {} »).", crate::stock::fmt_qty(max, unit), kind.label_fr()),
        )
        .with_details(json!({"max": max, "kind": kind.code()})));
    }
    if l.credited_quantity() + amount >= l.quantity {
        let ht = (l.ht - l.credited_ht).max(0);
        return Ok(LineAmounts { gross: ht, ht, tva: (l.tva - l.credited_tva).max(0) });
    }
    let ht = i64::try_from(round_div(i128::from(l.ht) * i128::from(amount), i128::from(l.quantity)))
        .map_err(|_| money::valeur_hors_limites())?;
    Ok(LineAmounts { gross: ht, ht, tva: money::apply_rate(ht, l.rate_bp as i32)? })
}

/// Timbre credited = T(A) − T(A − TTC credited), A = invoice TTC − TTC of earlier validated credit notes, T at the
/// invoice's method and date.
pub fn timbre_credited(
    invoice_ttc: i64,
    earlier_credit_ttc: i64,
    credit_ttc: i64,
    method: Method,
    invoice_date: NaiveDate,
    rules: &[Rule],
) -> i64 {
    let a = invoice_ttc - earlier_credit_ttc;
    timbre::timbre(a, method, invoice_date, rules) - timbre::timbre(a - credit_ttc, method, invoice_date, rules)
}

/// Σ credited net never exceeds the invoice net.
pub fn check_credit_total(
    invoice_ref: &str,
    invoice_net: i64,
    credited_before: i64,
    this_net: i64,
) -> Result<(), Rejection> {
    if this_net <= 0 || credited_before + this_net > invoice_net {
        return Err(Rejection::new(
            "AVOIR_SUPERIEUR_FACTURE",
            422,
            format!("Le montant de l'avoir dépasse le montant restant de la facture {invoice_ref}."),
        )
        .with_details(json!({"facture": invoice_ref, "restant": invoice_net - credited_before, "montant": this_net})));
    }
    Ok(())
}

/// Unit cost of a return: the weighted average cost of the lots shipped for the line (round half-up).
pub fn weighted_cost(shipped: &[(i64, i64)]) -> i64 {
    let qty: i128 = shipped.iter().map(|(q, _)| i128::from(*q)).sum();
    if qty <= 0 {
        return 0;
    }
    let value: i128 = shipped.iter().map(|(q, c)| i128::from(*q) * i128::from(*c)).sum();
    i64::try_from(round_div(value, qty)).unwrap_or(i64::MAX)
}

/// Lot number of a customer return: `RET{YYMMDD}-{NNN}`.
pub fn return_lot_number(d: NaiveDate, n: i64) -> String {
    format!("RET{}-{n:03}", d.format("%y%m%d"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_statement_opens_on_the_earlier_balance_and_runs_to_the_closing_one() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let e = |date: &str, reference: &str, debit: i64, credit: i64| AccountEntry {
            date: d(date),
            reference: reference.into(),
            label: String::new(),
            debit,
            credit,
        };
        let entries = vec![
            e("2025-03-14", "REG-2025-00002", 0, 1_000_000),
            e("2025-02-10", "F-2025-00001", 2_367_800, 0),
            e("2025-02-20", "REG-2025-00001", 0, 2_367_800),
            e("2025-03-01", "F-2025-00009", 1_500_000, 0),
            e("2025-03-05", "AV-2025-00001", 0, 312_500),
            // A bounced cheque: its cancellation puts the amount back.
            e("2025-03-20", "REG-2025-00002-ANNUL", 1_000_000, 0),
            e("2025-04-02", "F-2025-00020", 900_000, 0),
        ];
        let s = account_statement(entries.clone(), d("2025-03-01"), d("2025-03-31"));
        assert_eq!(s.opening, 0);
        let refs: Vec<(&str, i64)> = s.lines.iter().map(|(e, b)| (e.reference.as_str(), *b)).collect();
        assert_eq!(
            refs,
            vec![
                ("F-2025-00009", 1_500_000),
                ("AV-2025-00001", 1_187_500),
                ("REG-2025-00002", 187_500),
                ("REG-2025-00002-ANNUL", 1_187_500)
            ]
        );
        assert_eq!(s.closing, 1_187_500);
        let all = account_statement(entries, d("2025-01-01"), d("2025-12-31"));
        assert_eq!(all.closing, balance(2_367_800 + 1_500_000 + 900_000, 312_500, 2_367_800, 0));
    }

    use super::*;
    use crate::timbre::default_rules;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn grossiste(valid_to: Option<NaiveDate>, items: &[(i64, i64)]) -> PriceList {
        PriceList {
            id: "L1".into(),
            client_type: "GROSSISTE".into(),
            valid_from: d("2025-01-01"),
            valid_to,
            active: true,
            items: items
                .iter()
                .map(|(q, p)| PriceItem { product_id: "GOUDA".into(), min_quantity: *q, unit_price: *p })
                .collect(),
        }
    }

    #[test]
    fn price_resolution_scenarios_6_and_7() {
        let lists = [grossiste(None, &[(0, 64_000), (50_000, 61_000), (200_000, 59_000)])];
        let today = d("2025-03-14");
        let price = |q| resolve_price(&lists, "GROSSISTE", "GOUDA", q, today, 68_000);
        assert_eq!(price(30_000), (64_000, PriceSource::Tarif));
        assert_eq!(price(50_000), (61_000, PriceSource::Tarif));
        assert_eq!(price(199_000), (61_000, PriceSource::Tarif));
        assert_eq!(price(500_000), (59_000, PriceSource::Tarif));
        // Only tiers from 50: q = 30 falls back to the list price.
        let lists = [grossiste(None, &[(50_000, 61_000), (200_000, 59_000)])];
        assert_eq!(
            resolve_price(&lists, "GROSSISTE", "GOUDA", 30_000, today, 68_000),
            (68_000, PriceSource::PrixCatalogue)
        );
        // Another type, another product, an expired list: the list price.
        assert_eq!(resolve_price(&lists, "SUPERETTE", "GOUDA", 500_000, today, 68_000).1, PriceSource::PrixCatalogue);
        let expired = [grossiste(Some(d("2025-03-13")), &[(0, 64_000)])];
        assert_eq!(
            resolve_price(&expired, "GROSSISTE", "GOUDA", 30_000, today, 68_000),
            (68_000, PriceSource::PrixCatalogue)
        );
        let mut inactive = grossiste(None, &[(0, 64_000)]);
        inactive.active = false;
        assert_eq!(
            resolve_price(&[inactive], "GROSSISTE", "GOUDA", 1_000, today, 68_000).1,
            PriceSource::PrixCatalogue
        );
    }

    #[test]
    fn overlapping_active_lists_of_a_type_are_refused() {
        let existing = grossiste(None, &[(0, 64_000)]);
        let mut march = grossiste(Some(d("2025-03-31")), &[]);
        march.id = "L2".into();
        march.valid_from = d("2025-03-01");
        assert_eq!(check_price_list(&march, std::slice::from_ref(&existing)).unwrap_err().code, "TARIF_CHEVAUCHEMENT");
        // Ends the day before: no overlap.
        let mut closed = existing.clone();
        closed.valid_to = Some(d("2025-02-28"));
        assert!(check_price_list(&march, &[closed]).is_ok());
        // Another type or an inactive list never collides; a list never collides with itself.
        let mut other = march.clone();
        other.client_type = "SUPERETTE".into();
        assert!(check_price_list(&other, std::slice::from_ref(&existing)).is_ok());
        march.active = false;
        assert!(check_price_list(&march, std::slice::from_ref(&existing)).is_ok());
        assert!(check_price_list(&existing, std::slice::from_ref(&existing)).is_ok());
        let dup = grossiste(None, &[(0, 64_000), (0, 63_000)]);
        assert_eq!(check_price_list(&dup, &[]).unwrap_err().code, "LIGNE_DOUBLON");
    }

    fn invoice_36() -> Vec<(LineAmounts, i64)> {
        let gouda = Line { quantity: 24_000, unit_price: 65_000, discount: 0, rate_bp: 1900 };
        let fondu = Line { quantity: 10_000, unit_price: 42_000, discount: 10_000, rate_bp: 1900 };
        vec![(line_amounts(&gouda, true).unwrap(), 1900), (line_amounts(&fondu, true).unwrap(), 1900)]
    }

    #[test]
    fn the_worked_invoice_scenarios_36_and_37() {
        let lines = invoice_36();
        assert_eq!(lines[0].0, LineAmounts { gross: 1_560_000, ht: 1_560_000, tva: 296_400 });
        assert_eq!(lines[1].0, LineAmounts { gross: 420_000, ht: 410_000, tva: 77_900 });
        let t = totals(&lines, Method::Especes, d("2025-03-14"), &default_rules()).unwrap();
        assert_eq!((t.ht, t.tva, t.ttc, t.timbre, t.net), (1_970_000, 374_300, 2_344_300, 23_500, 2_367_800));
        assert_eq!(t.vat, vec![VatRow { rate_bp: 1900, base: 1_970_000, tva: 374_300 }]);
        let t = totals(&lines, Method::Cheque, d("2025-03-14"), &default_rules()).unwrap();
        assert_eq!((t.timbre, t.net), (0, 2_344_300));
    }

    #[test]
    fn rounding_scenarios_1_and_2_and_the_breakdown_per_rate() {
        let l = line_amounts(&Line { quantity: 1_500, unit_price: 33_333, discount: 0, rate_bp: 0 }, false).unwrap();
        assert_eq!(l.ht, 50_000);
        let a = line_amounts(&Line { quantity: 1_000, unit_price: 333_333, discount: 0, rate_bp: 900 }, false).unwrap();
        assert_eq!(a.tva, 30_000);
        let b =
            line_amounts(&Line { quantity: 1_000, unit_price: 410_000, discount: 0, rate_bp: 1900 }, false).unwrap();
        assert_eq!(b.tva, 77_900);
        let rows = breakdown(&[(a, 900), (b, 1900), (a, 900)]);
        assert_eq!(
            rows,
            vec![
                VatRow { rate_bp: 1900, base: 410_000, tva: 77_900 },
                VatRow { rate_bp: 900, base: 666_666, tva: 60_000 }
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_code() {
        let ok = Line { quantity: 1_000, unit_price: 1_000, discount: 0, rate_bp: 1900 };
        assert_eq!(line_amounts(&Line { rate_bp: 1000, ..ok.clone() }, true).unwrap_err().code, "TVA_INVALIDE");
        assert_eq!(line_amounts(&Line { discount: 1_001, ..ok.clone() }, true).unwrap_err().code, "REMISE_INVALIDE");
        assert_eq!(line_amounts(&Line { discount: -1, ..ok.clone() }, true).unwrap_err().code, "REMISE_INVALIDE");
        assert_eq!(line_amounts(&Line { quantity: 1_500, ..ok.clone() }, true).unwrap_err().code, "QUANTITE_INVALIDE");
        assert_eq!(line_amounts(&Line { quantity: 0, ..ok.clone() }, false).unwrap_err().code, "QUANTITE_INVALIDE");
        assert!(line_amounts(&Line { discount: 1_000, ..ok }, true).is_ok());
    }

    #[test]
    fn status_follows_the_amounts() {
        assert_eq!(status_from(2_367_800, 0, 0), InvoiceStatus::Validated);
        assert_eq!(status_from(2_367_800, 0, 1_000_000), InvoiceStatus::PartiallyPaid);
        assert_eq!(status_from(2_367_800, 0, 2_367_800), InvoiceStatus::Paid);
        assert_eq!(status_from(2_367_800, 312_500, 2_055_300), InvoiceStatus::Paid);
        assert_eq!(status_from(2_367_800, 2_367_800, 0), InvoiceStatus::Credited);
        assert_eq!(check_editable(InvoiceStatus::Paid).unwrap_err().code, "FACTURE_VALIDEE_NON_MODIFIABLE");
        assert!(check_editable(InvoiceStatus::Draft).is_ok());
    }

    #[test]
    fn validation_checks_scenarios_38_40_41() {
        let e = check_client_identifiers(Some("001612345678901"), Some("25 B 1204921 16/00"), None).unwrap_err();
        assert_eq!(e.code, "CLIENT_IDENTIFIANTS_MANQUANTS");
        assert_eq!(e.details["liste"], json!(["AI"]));
        assert!(e.message.ends_with(": AI."));
        assert!(
            check_client_identifiers(Some("001612345678901"), Some("25 B 1204921 16/00"), Some("16012345678")).is_ok()
        );

        let e = check_credit_limit(48_000_000, 2_367_800, Some(50_000_000), None, false).unwrap_err();
        assert_eq!(e.code, "PLAFOND_CREDIT_DEPASSE");
        assert_eq!(e.details["ecart"], 367_800);
        let reason = "Client historique, accord direction";
        assert_eq!(
            check_credit_limit(48_000_000, 2_367_800, Some(50_000_000), Some(reason), true).unwrap().as_deref(),
            Some(reason)
        );
        assert_eq!(
            check_credit_limit(48_000_000, 2_367_800, Some(50_000_000), Some(reason), false).unwrap_err().code,
            "ACCES_REFUSE"
        );
        assert_eq!(
            check_credit_limit(48_000_000, 2_367_800, Some(50_000_000), Some("court"), true).unwrap_err().code,
            "MOTIF_TROP_COURT"
        );
        assert_eq!(check_credit_limit(48_000_000, 2_367_800, None, None, false).unwrap(), None);
        assert_eq!(
            check_credit_limit(-500_000, 2_367_800, Some(2_367_800), None, false).unwrap(),
            None,
            "a credit balance counts as 0"
        );

        let row = |demanded| Availability {
            product: "PF-GOUDA-400".into(),
            unit: crate::stock::Unit::U,
            demanded,
            stock: 100_000,
            committed: 70_000,
        };
        let e = check_availability(&[row(40_000)]).unwrap_err();
        assert_eq!(
            e.message,
            "Stock disponible insuffisant (stock 100\u{A0}pcs, engagé 70\u{A0}pcs, disponible 30\u{A0}pcs) pour PF-GOUDA-400."
        );
        assert_eq!(e.code, "STOCK_NON_DISPONIBLE");
        assert_eq!(e.details["lignes"][0]["available"], 30_000);
        assert!(check_availability(&[row(30_000)]).is_ok());
        assert_eq!(check_prices(&[("PF-GOUDA-400".into(), 65_000, 64_000)]).unwrap_err().code, "PRIX_MODIFIES");
        let e = check_company_complete(&[("RC", Some("x")), ("NIF", None), ("AI", Some(" ")), ("NIS", Some("1"))])
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("PARAMETRES_SOCIETE_INCOMPLETS", "Paramètres de la société incomplets : NIF, AI.")
        );
    }

    #[test]
    fn payments_scenario_43() {
        let today = d("2025-03-14");
        let p = |method: &str, amount| PaymentInput { method: method.into(), amount, ..Default::default() };
        assert_eq!(
            check_payment(Method::Especes, today, 2_367_800, today, &p("CHEQUE", 1_000_000)).unwrap_err().code,
            "MODE_REGLEMENT_DIFFERENT"
        );
        assert!(check_payment(Method::Especes, today, 2_367_800, today, &p("ESPECES", 1_000_000)).is_ok());
        let e = check_payment(Method::Especes, today, 1_367_800, today, &p("ESPECES", 1_367_801)).unwrap_err();
        assert_eq!((e.code, e.details["restant"].as_i64()), ("MONTANT_SUPERIEUR_RESTANT", Some(1_367_800)));
        assert!(check_payment(Method::Especes, today, 1_367_800, today, &p("ESPECES", 1_367_800)).is_ok());
        assert_eq!(
            check_payment(Method::Cheque, today, 100, today, &p("CHEQUE", 100)).unwrap_err().code,
            "CHEQUE_INCOMPLET"
        );
        let cheque = PaymentInput {
            cheque_number: Some("0012345".into()),
            bank_name: Some("BNA".into()),
            cheque_date: Some(today),
            ..p("CHEQUE", 100)
        };
        assert!(check_payment(Method::Cheque, today, 100, today, &cheque).is_ok());
        assert_eq!(
            check_payment(Method::Virement, today, 100, today, &p("VIREMENT", 100)).unwrap_err().code,
            "REFERENCE_VIREMENT_REQUISE"
        );
        let early = PaymentInput { date: Some(d("2025-03-13")), ..p("ESPECES", 100) };
        assert_eq!(check_payment(Method::Especes, today, 100, today, &early).unwrap_err().code, "DATE_INVALIDE");
        let future = PaymentInput { date: Some(d("2025-03-15")), ..p("ESPECES", 100) };
        assert_eq!(check_payment(Method::Especes, today, 100, today, &future).unwrap_err().code, "DATE_INVALIDE");
        assert_eq!(
            check_payment(Method::Especes, today, 100, today, &p("ESPECES", 0)).unwrap_err().code,
            "VALEUR_HORS_LIMITES"
        );
    }

    fn gouda_line() -> CreditableLine {
        CreditableLine {
            quantity: 24_000,
            ht: 1_560_000,
            tva: 296_400,
            rate_bp: 1900,
            on_delivery_notes: 24_000,
            delivered: 24_000,
            ..Default::default()
        }
    }

    #[test]
    fn partial_credit_note_scenario_45() {
        let a = credit_line(&gouda_line(), CreditKind::Retour, 4_000, crate::stock::Unit::U).unwrap();
        assert_eq!((a.ht, a.tva), (260_000, 49_400));
        let ttc = a.ht + a.tva;
        let t = timbre_credited(2_344_300, 0, ttc, Method::Especes, d("2025-03-14"), &default_rules());
        assert_eq!(t, 3_100);
        assert_eq!(ttc + t, 312_500);
        assert_eq!(2_367_800 - (ttc + t), 2_055_300);
        assert!(check_credit_total("F-2025-00007", 2_367_800, 0, ttc + t).is_ok());
    }

    #[test]
    fn full_credit_note_scenario_46_cancels_exactly() {
        // Unpaid, undelivered invoice 36: both lines credited NON_LIVRE in full.
        let gouda = CreditableLine { on_delivery_notes: 0, delivered: 0, ..gouda_line() };
        let fondu = CreditableLine { quantity: 10_000, ht: 410_000, tva: 77_900, rate_bp: 1900, ..Default::default() };
        let a = credit_line(&gouda, CreditKind::NonLivre, 24_000, crate::stock::Unit::U).unwrap();
        let b = credit_line(&fondu, CreditKind::NonLivre, 10_000, crate::stock::Unit::U).unwrap();
        let ttc = a.ht + a.tva + b.ht + b.tva;
        assert_eq!(ttc, 2_344_300);
        let t = timbre_credited(2_344_300, 0, ttc, Method::Especes, d("2025-03-14"), &default_rules());
        assert_eq!(ttc + t, 2_367_800);
        assert_eq!(status_from(2_367_800, ttc + t, 0), InvoiceStatus::Credited);
        assert!(check_credit_total("F", 2_367_800, 0, 2_367_800).is_ok());
        assert_eq!(check_credit_total("F", 2_367_800, 100, 2_367_800).unwrap_err().code, "AVOIR_SUPERIEUR_FACTURE");
    }

    #[test]
    fn credit_lines_respect_what_each_kind_may_take() {
        let mut l = CreditableLine { on_delivery_notes: 20_000, delivered: 20_000, ..gouda_line() };
        assert_eq!(l.remaining_to_deliver(), 4_000);
        assert_eq!(
            credit_line(&l, CreditKind::NonLivre, 5_000, crate::stock::Unit::U).unwrap_err().code,
            "QUANTITE_INVALIDE"
        );
        assert_eq!(
            credit_line(&l, CreditKind::Retour, 21_000, crate::stock::Unit::U).unwrap_err().code,
            "QUANTITE_INVALIDE"
        );
        // Credit 3 proportionally, then the rest cancels exactly what is left.
        let first = credit_line(&l, CreditKind::Retour, 3_000, crate::stock::Unit::U).unwrap();
        assert_eq!((first.ht, first.tva), (195_000, 37_050));
        l.add(CreditKind::Retour, 3_000, first);
        let nl = credit_line(&l, CreditKind::NonLivre, 4_000, crate::stock::Unit::U).unwrap();
        l.add(CreditKind::NonLivre, 4_000, nl);
        let last = credit_line(&l, CreditKind::SansRetour, 17_000, crate::stock::Unit::U).unwrap();
        assert_eq!(first.ht + nl.ht + last.ht, 1_560_000);
        assert_eq!(first.tva + nl.tva + last.tva, 296_400);
        // A price correction within what is left of the line's HT.
        let fresh = gouda_line();
        assert_eq!(credit_line(&fresh, CreditKind::Prix, 100_000, crate::stock::Unit::U).unwrap().tva, 19_000);
        assert_eq!(
            credit_line(&fresh, CreditKind::Prix, 1_560_001, crate::stock::Unit::U).unwrap_err().code,
            "VALEUR_HORS_LIMITES"
        );
    }

    #[test]
    fn aging_buckets_scenario_67() {
        let today = d("2025-03-14");
        assert_eq!(aging_bucket(d("2025-01-10"), today), 2);
        assert_eq!(aging_bucket(today, today), 0);
        assert_eq!(aging_bucket(d("2025-02-12"), today), 0);
        assert_eq!(aging_bucket(d("2025-02-11"), today), 1);
        assert_eq!(aging_bucket(d("2024-12-14"), today), 2, "90 days");
        assert_eq!(aging_bucket(d("2024-12-13"), today), 3, "91 days");
        assert_eq!(due_date(today, 30), d("2025-04-13"));
    }

    #[test]
    fn return_lots_and_their_cost() {
        assert_eq!(return_lot_number(d("2025-03-14"), 1), "RET250314-001");
        assert_eq!(weighted_cost(&[(10_000, 100), (5_000, 201)]), 134);
        assert_eq!(weighted_cost(&[]), 0);
        assert_eq!(balance(2_367_800, 312_500, 1_000_000, 0), 1_055_300);
    }
}
