//! Printed documents (DOMAIN.md §18; UI.md: "Imprimer" opens the PDF, never the HTML page): the data of an invoice,
//! a credit note, a delivery note, a purchase order or a lot, laid out by the `documents` crate. Amounts, dates and
//! quantities go through `domain`'s formatters, as on the pages. The invoice prints the identities frozen at its
//! validation; a credit note prints those of its invoice.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use documents::{Column, Document, Label, Labels, Party, Qr, Row, Table, Total};
use domain::money::{fmt_money, fmt_rate};
use domain::rejection::Rejection;
use domain::sales::VatRow;
use domain::stock::{Unit, fmt_date, fmt_qty, fmt_qty_number};
use serde_json::Value;

use crate::platform::errors::ApiError;
use crate::state::AppState;

fn text(v: &Value) -> String {
    v.as_str().map(str::trim).unwrap_or_default().to_string()
}

fn present(v: &Value) -> Option<String> {
    Some(text(v)).filter(|s| !s.is_empty())
}

fn date(v: &Value) -> String {
    v.as_str().and_then(|d| d.parse().ok()).map(fmt_date).unwrap_or_else(|| "—".into())
}

fn unit(v: &Value) -> Unit {
    v.as_str().and_then(Unit::parse).unwrap_or(Unit::U)
}

fn money(v: &Value) -> String {
    fmt_money(v.as_i64().unwrap_or(0))
}

fn snapshot(s: &Option<String>) -> Value {
    s.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null)
}

/// The QR code of a signed payload as SVG (BL screen and PDF, lot label).
pub fn qr_svg(payload: &str) -> String {
    match qrcode::QrCode::new(payload.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color>().min_dimensions(180, 180).quiet_zone(true).build(),
        Err(_) => String::new(),
    }
}

/// Address, then commune and wilaya, then the four fiscal identifiers when known.
fn identity_lines(snap: &Value, lines: &mut Vec<String>) {
    lines.extend(present(&snap["adresse"]));
    let place: Vec<String> =
        [present(&snap["commune"]), present(&snap["wilaya"]).map(|w| domain::catalogue::wilaya_label(&w))]
            .into_iter()
            .flatten()
            .collect();
    if !place.is_empty() {
        lines.push(place.join(", "));
    }
    for (label, key) in [("RC", "rc"), ("NIF", "nif"), ("AI", "ai"), ("NIS", "nis")] {
        if let Some(v) = present(&snap[key]) {
            lines.push(format!("{label} : {v}"));
        }
    }
}

/// The seller block from a company snapshot (`store::sales::company_snapshot`).
fn seller(snap: &Value) -> Party {
    let mut lines = Vec::new();
    match (present(&snap["formeJuridique"]), snap["capitalSocial"].as_i64()) {
        (Some(f), Some(c)) => lines.push(format!("{f} au capital de {}", fmt_money(c))),
        (Some(f), None) => lines.push(f),
        (None, Some(c)) => lines.push(format!("Capital social : {}", fmt_money(c))),
        (None, None) => {}
    }
    identity_lines(snap, &mut lines);
    for (label, key) in [("Tél.", "telephone"), ("E-mail", "email")] {
        if let Some(v) = present(&snap[key]) {
            lines.push(format!("{label} : {v}"));
        }
    }
    Party { role: "Vendeur".into(), name: text(&snap["raisonSociale"]), lines }
}

/// A client or supplier block (`client_snapshot`, or a supplier's row in the same shape).
fn counterpart(snap: &Value, role: &str) -> Party {
    let mut lines = Vec::new();
    lines.extend(present(&snap["formeJuridique"]));
    identity_lines(snap, &mut lines);
    if let Some(code) = present(&snap["code"]) {
        lines.push(format!("Code : {code}"));
    }
    Party { role: role.into(), name: text(&snap["raisonSociale"]), lines }
}

/// Bank details and the company's footer text, at the bottom of every page.
fn footer(snap: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(rib) = present(&snap["rib"]) {
        parts.push(match present(&snap["bankName"]) {
            Some(bank) => format!("RIB : {rib} ({bank})"),
            None => format!("RIB : {rib}"),
        });
    }
    parts.extend(present(&snap["invoiceFooter"]));
    parts.join(" · ")
}

fn vat_rows(v: &Value) -> Vec<[String; 3]> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| [fmt_rate(r["rateBp"].as_i64().unwrap_or(0), 0), money(&r["base"]), money(&r["tva"])])
        .collect()
}

fn total(label: &str, value: String) -> Total {
    Total { label: label.into(), value, strong: false }
}

fn strong(label: &str, value: String) -> Total {
    Total { label: label.into(), value, strong: true }
}

/// HT, TVA, TTC, the timbre when there is one, and the net in bold (invoice and credit note, §18).
fn fiscal_totals(amounts: [i64; 3], timbre: (&str, i64), net: (&str, i64)) -> Vec<Total> {
    let mut out: Vec<Total> = ["Total HT", "Total TVA", "Total TTC"]
        .iter()
        .zip(amounts)
        .map(|(label, amount)| total(label, fmt_money(amount)))
        .collect();
    if timbre.1 > 0 {
        out.push(total(timbre.0, fmt_money(timbre.1)));
    }
    out.push(strong(net.0, fmt_money(net.1)));
    out
}

/// The logo a seller snapshot names (kept by its hash: an issued document keeps its logo).
async fn logo_of(c: &impl store::ConnectionTrait, seller: &Value) -> Result<Option<Vec<u8>>, ApiError> {
    match seller["logoSha256"].as_str() {
        Some(sha) => Ok(store::settings::logo(c, sha).await?.map(|(_, bytes)| bytes)),
        None => Ok(None),
    }
}

async fn current_company(st: &AppState) -> Result<Value, ApiError> {
    Ok(store::settings::company(st.dbmon.db().conn())
        .await?
        .map(|s| store::sales::company_snapshot(&s))
        .unwrap_or(Value::Null))
}

/// A validated invoice (a draft has no number and is never printed: `FACTURE_STATUT_INVALIDE`).
pub async fn invoice(st: &AppState, key: &str) -> Result<Document, ApiError> {
    let c = st.dbmon.db().conn();
    let i =
        store::sales::find_invoice(c, key).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Facture")))?;
    let Some(reference) = i.reference.clone() else {
        return Err(domain::sales::facture_statut_invalide("(brouillon)", store::sales::status_of(&i)).into());
    };
    let v = crate::api::sales::invoice_detail(c, key).await?;
    let (seller_snap, buyer_snap) = (snapshot(&i.seller_snapshot), snapshot(&i.buyer_snapshot));
    let rows = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let u = unit(&l["baseUnit"]);
            let discount = l["discount"].as_i64().unwrap_or(0);
            Row {
                cells: vec![
                    format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
                    fmt_qty_number(l["quantity"].as_i64().unwrap_or(0), u),
                    u.symbol().into(),
                    money(&l["unitPriceHt"]),
                    if discount > 0 { fmt_money(discount) } else { "—".into() },
                    fmt_rate(l["tvaRate"].as_i64().unwrap_or(0), 0),
                    money(&l["ht"]),
                ],
                detail: None,
            }
        })
        .collect();
    let totals = fiscal_totals(
        [i.total_ht, i.total_tva, i.total_ttc],
        ("Timbre fiscal (espèces)", i.timbre),
        ("NET À PAYER", i.net),
    );
    Ok(Document {
        title: format!("Facture {reference}"),
        heading: format!("FACTURE N° {reference}"),
        seller: seller(&seller_snap),
        counterpart: counterpart(&buyer_snap, "Client"),
        facts: vec![
            ("Date".into(), date(&v["invoiceDate"])),
            ("Échéance".into(), date(&v["dueDate"])),
            ("Mode de règlement".into(), store::sales::method_of(&i).label_fr().into()),
        ],
        table: Table {
            columns: vec![
                Column::text("Désignation", 8),
                Column::number("Quantité", 2),
                Column::text("Unité", 1),
                Column::number("Prix unitaire HT", 3),
                Column::number("Remise", 2),
                Column::number("TVA", 1),
                Column::number("Montant HT", 3),
            ],
            rows,
        },
        vat: vat_rows(&v["vat"]),
        totals,
        words: Some(format!("Arrêtée la présente facture à la somme de : {}", domain::words::amount_dinars(i.net))),
        footer: footer(&seller_snap),
        logo: logo_of(c, &seller_snap).await?,
        demo: store::settings::is_demo(c).await?,
        ..Default::default()
    })
}

/// A validated credit note, with the identities of its invoice.
pub async fn credit_note(st: &AppState, key: &str) -> Result<Document, ApiError> {
    let c = st.dbmon.db().conn();
    let n =
        store::sales::find_credit_note(c, key).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Avoir")))?;
    let Some(reference) = n.reference.clone() else {
        return Err(Rejection::transition_invalide("Brouillon", "Imprimé").into());
    };
    let i = store::sales::find_invoice(c, &n.invoice_id.to_string())
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Facture")))?;
    let v = crate::api::sales::credit_note_detail(c, key).await?;
    let (seller_snap, buyer_snap) = (snapshot(&i.seller_snapshot), snapshot(&i.buyer_snapshot));
    let rows = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let u = unit(&l["baseUnit"]);
            let kind = domain::sales::CreditKind::parse(&text(&l["kind"])).map(|k| k.label_fr()).unwrap_or_default();
            let quantity = l["quantity"].as_i64().filter(|q| *q > 0);
            Row {
                cells: vec![
                    format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
                    kind.into(),
                    quantity.map(|q| fmt_qty_number(q, u)).unwrap_or_else(|| "—".into()),
                    if quantity.is_some() { u.symbol().into() } else { String::new() },
                    fmt_rate(l["tvaRate"].as_i64().unwrap_or(0), 0),
                    money(&l["ht"]),
                ],
                detail: present(&l["returnLot"]).map(|lot| format!("Marchandise reprise dans le lot {lot}")),
            }
        })
        .collect();
    let totals = fiscal_totals(
        [n.total_ht, n.total_tva, n.total_ttc],
        ("Timbre fiscal crédité", n.timbre),
        ("NET DE L'AVOIR", n.net),
    );
    let invoice_ref = i.reference.clone().unwrap_or_default();
    let invoice_date = i.invoice_date.map(fmt_date).unwrap_or_default();
    Ok(Document {
        title: format!("Avoir {reference}"),
        heading: format!("AVOIR N° {reference}"),
        seller: seller(&seller_snap),
        counterpart: counterpart(&buyer_snap, "Client"),
        facts: vec![
            ("Date".into(), n.credit_date.map(fmt_date).unwrap_or_default()),
            ("Facture".into(), format!("sur facture N° {invoice_ref} du {invoice_date}")),
            ("Motif".into(), n.reason.clone()),
        ],
        table: Table {
            columns: vec![
                Column::text("Désignation", 6),
                Column::text("Nature", 4),
                Column::number("Quantité", 2),
                Column::text("Unité", 1),
                Column::number("TVA", 1),
                Column::number("Montant HT", 3),
            ],
            rows,
        },
        vat: vat_rows(&v["vat"]),
        totals,
        words: Some(format!("Arrêté le présent avoir à la somme de : {}", domain::words::amount_dinars(n.net))),
        footer: footer(&seller_snap),
        logo: logo_of(c, &seller_snap).await?,
        demo: store::settings::is_demo(c).await?,
        ..Default::default()
    })
}

/// A delivery note: no prices; the lots and DLC shipped per line once validated; the signed QR with the reference.
pub async fn delivery_note(st: &AppState, key: &str) -> Result<Document, ApiError> {
    let c = st.dbmon.db().conn();
    let v = crate::api::delivery::delivery_detail(st, key).await?;
    let reference = text(&v["reference"]);
    let seller_snap = current_company(st).await?;
    let client = store::catalogue::client_by_code(c, &text(&v["clientCode"])).await?;
    let mut buyer = counterpart(&client.as_ref().map(store::sales::client_snapshot).unwrap_or(Value::Null), "Client");
    if let Some(address) = present(&v["deliveryAddress"]) {
        buyer.lines.push(format!("Livraison : {address}"));
    }
    let rows = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let u = unit(&l["baseUnit"]);
            let lots: Vec<String> = l["lots"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    let dlc = a["dlc"].as_str().map(|_| format!("DLC {}", date(&a["dlc"])));
                    let q = fmt_qty(a["quantity"].as_i64().unwrap_or(0), u);
                    match dlc {
                        Some(dlc) => format!("Lot {} — {dlc} — {q}", text(&a["lot"])),
                        None => format!("Lot {} — sans DLC — {q}", text(&a["lot"])),
                    }
                })
                .collect();
            Row {
                cells: vec![
                    format!("{} ({})", text(&l["productName"]), text(&l["productCode"])),
                    fmt_qty_number(l["quantity"].as_i64().unwrap_or(0), u),
                    u.symbol().into(),
                    present(&l["storageType"])
                        .map(|s| domain::catalogue::storage_label(&s).to_string())
                        .unwrap_or_default(),
                ],
                detail: Some(lots.join(" ; ")).filter(|s| !s.is_empty()),
            }
        })
        .collect();
    let created = v["createdAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| fmt_date(domain::stock::today_algiers(t.with_timezone(&chrono::Utc))))
        .unwrap_or_default();
    let mut facts = vec![("Date".into(), created), ("Facture".into(), text(&v["invoice"]))];
    for (label, key) in [("Chauffeur", "driverName"), ("Véhicule", "vehicle")] {
        if let Some(x) = present(&v[key]) {
            facts.push((label.into(), x));
        }
    }
    facts.push(("Statut".into(), text(&v["statusLabel"])));
    if let Some(reason) = present(&v["cancelReason"]) {
        facts.push(("Motif d'annulation".into(), reason));
    }
    Ok(Document {
        title: format!("Bon de livraison {reference}"),
        heading: format!("BON DE LIVRAISON N° {reference}"),
        seller: seller(&seller_snap),
        counterpart: buyer,
        facts,
        table: Table {
            columns: vec![
                Column::text("Produit", 8),
                Column::number("Quantité", 2),
                Column::text("Unité", 1),
                Column::text("Conservation", 4),
            ],
            rows,
        },
        vat: Vec::new(),
        totals: Vec::new(),
        words: None,
        notes: Vec::new(),
        qr: present(&v["qr"]).map(|payload| Qr { svg: qr_svg(&payload), caption: reference.clone() }),
        boxes: vec!["Reçu par (nom)".into(), "Signature".into(), "Date".into()],
        footer: footer(&seller_snap),
        logo: logo_of(c, &seller_snap).await?,
        demo: store::settings::is_demo(c).await?,
    })
}

/// A purchase order, in any status (a DRAFT already has its number and is printed to be sent).
pub async fn purchase_order(st: &AppState, reference: &str) -> Result<Document, ApiError> {
    let c = st.dbmon.db().conn();
    let (o, lines, _) = store::purchase::detail(c, reference)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Bon de commande")))?;
    let supplier = store::catalogue::supplier_by_id(c, o.supplier_id).await?;
    let supplier_snap = supplier
        .as_ref()
        .map(|s| {
            serde_json::json!({"raisonSociale": s.raison_sociale, "formeJuridique": s.forme_juridique,
                "adresse": s.adresse, "commune": s.commune, "wilaya": s.wilaya, "rc": s.rc, "nif": s.nif, "ai": s.ai,
                "nis": s.nis, "code": s.code})
        })
        .unwrap_or(Value::Null);
    let seller_snap = current_company(st).await?;
    let mut rows = Vec::new();
    let mut vat = Vec::new();
    for (l, code, name) in &lines {
        let u = store::catalogue::product_by_code(c, code)
            .await?
            .and_then(|p| Unit::parse(&p.base_unit))
            .unwrap_or(Unit::U);
        rows.push(Row {
            cells: vec![
                format!("{name} ({code})"),
                fmt_qty_number(l.quantity_ordered, u),
                u.symbol().into(),
                fmt_money(l.unit_price_ht),
                fmt_rate(i64::from(l.tva_rate), 0),
                fmt_money(l.amount_ht),
            ],
            detail: None,
        });
        vat.push(VatRow { rate_bp: i64::from(l.tva_rate), base: l.amount_ht, tva: l.amount_tva });
    }
    let vat = domain::accounting::sum_vat(&vat)
        .iter()
        .map(|r| [fmt_rate(r.rate_bp, 0), fmt_money(r.base), fmt_money(r.tva)])
        .collect();
    let mut facts = vec![("Date".into(), fmt_date(o.order_date))];
    if let Some(d) = o.expected_date {
        facts.push(("Livraison prévue le".into(), fmt_date(d)));
    }
    Ok(Document {
        title: format!("Bon de commande {}", o.reference),
        heading: format!("BON DE COMMANDE N° {}", o.reference),
        seller: Party { role: "Acheteur".into(), ..seller(&seller_snap) },
        counterpart: counterpart(&supplier_snap, "Fournisseur"),
        facts,
        table: Table {
            columns: vec![
                Column::text("Désignation", 8),
                Column::number("Quantité", 2),
                Column::text("Unité", 1),
                Column::number("Prix unitaire HT", 3),
                Column::number("TVA", 1),
                Column::number("Montant HT", 3),
            ],
            rows,
        },
        vat,
        totals: vec![
            total("Total HT", fmt_money(o.total_ht)),
            total("Total TVA", fmt_money(o.total_tva)),
            strong("Total TTC", fmt_money(o.total_ttc)),
        ],
        words: None,
        notes: o.notes.iter().map(|n| format!("Observations : {n}")).collect(),
        qr: None,
        boxes: Vec::new(),
        footer: footer(&seller_snap),
        logo: logo_of(c, &seller_snap).await?,
        demo: store::settings::is_demo(c).await?,
    })
}

async fn label_of(c: &impl store::ConnectionTrait, secret: &str, lot: &store::stock::Lot) -> Result<Label, ApiError> {
    let p = store::stock::product(c, lot.product_id)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Produit")))?;
    let u = Unit::parse(&p.base_unit).unwrap_or(Unit::U);
    let mut lines = Vec::new();
    match lot.manufacture_date {
        Some(d) => lines.push(format!("Fabriqué le {}", fmt_date(d))),
        None => lines.push(format!("Reçu le {}", fmt_date(domain::stock::today_algiers(lot.created_at)))),
    }
    if let Some(s) = p.storage_type.as_deref() {
        lines.push(format!("Conservation : {}", domain::catalogue::storage_label(s)));
    }
    lines.push(format!("Quantité nette : {}", fmt_qty(lot.initial_quantity, u)));
    Ok(Label {
        product: p.name.clone(),
        code: p.code.clone(),
        lot: lot.lot_number.clone(),
        dlc: lot.dlc.map(|d| format!("À consommer jusqu'au {}", fmt_date(d))).unwrap_or_else(|| "Sans DLC".into()),
        lines,
        qr: qr_svg(&domain::delivery::lot_payload(secret, &lot.lot_number)),
    })
}

fn qr_secret(st: &AppState) -> Result<String, ApiError> {
    st.secrets.get().map(|s| s.qr.clone()).ok_or_else(ApiError::internal)
}

/// The 100 × 50 mm label of one lot with its signed QR `MCG:LOT:…`.
pub async fn lot_labels(st: &AppState, number: &str) -> Result<Labels, ApiError> {
    let c = st.dbmon.db().conn();
    let lot =
        store::stock::lot_by_number(c, number).await?.ok_or_else(|| ApiError::from(Rejection::non_trouve("Lot")))?;
    Ok(Labels {
        title: format!("Etiquette {}", lot.lot_number),
        labels: vec![label_of(c, &qr_secret(st)?, &lot).await?],
        demo: store::settings::is_demo(c).await?,
    })
}

/// The labels of every lot a reception created, one per page, in line order.
pub async fn reception_labels(st: &AppState, reference: &str) -> Result<Labels, ApiError> {
    let c = st.dbmon.db().conn();
    let (r, lines) = store::procurement::by_reference(c, reference)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Réception")))?;
    let secret = qr_secret(st)?;
    let mut labels = Vec::new();
    for l in &lines {
        if let Some(lot) = store::stock::lot_by_id(c, l.lot_id).await? {
            labels.push(label_of(c, &secret, &lot).await?);
        }
    }
    Ok(Labels { title: format!("Etiquettes {}", r.reference), labels, demo: store::settings::is_demo(c).await? })
}

/// What a lot search field received: a scanned label `MCG:LOT:{lot}:{mac}` is checked (DOMAIN.md §12.2) and gives its
/// lot number; typed text is not a scan (`None`). A label with a bad signature, or a BL's QR, is refused.
pub fn scanned_lot(st: &AppState, text: &str) -> Result<Option<String>, Rejection> {
    let t = text.trim();
    if !t.to_ascii_uppercase().starts_with("MCG:") {
        return Ok(None);
    }
    let secret = st.secrets.get().map(|s| s.qr.clone()).unwrap_or_default();
    match domain::delivery::parse_qr(&secret, t, domain::delivery::QrType::Lot)? {
        domain::delivery::Qr::Lot { number } => Ok(Some(number)),
        domain::delivery::Qr::Delivery { .. } => Ok(None),
    }
}

/// Typesetting is CPU work: it runs on the blocking pool, never on the request threads.
pub async fn render_document(d: Document) -> Result<Vec<u8>, ApiError> {
    render(move || documents::document_pdf(&d)).await
}

/// Labels answered as a PDF (or the error envelope).
pub async fn answer_labels(l: Result<Labels, ApiError>) -> Response {
    match l {
        Ok(l) => {
            let name = l.title.clone();
            match render(move || documents::labels_pdf(&l)).await {
                Ok(pdf) => pdf_response(&name, pdf),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

async fn render(f: impl FnOnce() -> Result<Vec<u8>, documents::Error> + Send + 'static) -> Result<Vec<u8>, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(pdf)) => Ok(pdf),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "document rendering failed");
            Err(ApiError::internal())
        }
        Err(e) => {
            tracing::error!(error = %e, "document rendering panicked");
            Err(ApiError::internal())
        }
    }
}

/// The PDF opened in the browser (`inline`: "Imprimer" shows it, the viewer prints or saves it).
pub fn pdf_response(name: &str, pdf: Vec<u8>) -> Response {
    let safe = name.trim().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{safe}.pdf\"")),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        pdf,
    )
        .into_response()
}

/// The whole path of one printed document: gather, render, answer (or the error envelope). The file is named after
/// the document ("Facture_F-2025-00007.pdf").
pub async fn answer(d: Result<Document, ApiError>) -> Response {
    match d {
        Ok(d) => match render_document(d.clone()).await {
            Ok(pdf) => pdf_response(&d.title, pdf),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// French column titles of the export headers (the CSV keeps its machine names).
fn header_label(h: &str) -> String {
    let known = [
        ("date", "Date"),
        ("numero", "Numéro"),
        ("client", "Client"),
        ("nif", "NIF"),
        ("ht", "HT"),
        ("tva_par_taux", "TVA par taux"),
        ("tva", "TVA"),
        ("ttc", "TTC"),
        ("timbre", "Timbre"),
        ("net", "Net"),
        ("mode", "Mode"),
        ("regle", "Règle"),
        ("tranches", "Tranches"),
        ("fournisseur", "Fournisseur"),
        ("piece_fournisseur", "Pièce fournisseur"),
        ("rubrique", "Rubrique"),
        ("taux", "Taux"),
        ("base_ht", "Base HT"),
        ("journal", "Journal"),
        ("piece", "Pièce"),
        ("compte", "Compte"),
        ("libelle", "Libellé"),
        ("debit", "Débit"),
        ("credit", "Crédit"),
        ("tiers", "Tiers"),
        ("code", "Code"),
        ("produit", "Produit"),
        ("unite", "Unité"),
        ("initial_qte", "Initial (qté)"),
        ("initial_valeur", "Initial (valeur)"),
        ("entrees_qte", "Entrées (qté)"),
        ("entrees_valeur", "Entrées (valeur)"),
        ("entrees_par_origine", "Entrées par origine"),
        ("sorties_qte", "Sorties (qté)"),
        ("sorties_valeur", "Sorties (valeur)"),
        ("sorties_par_origine", "Sorties par origine"),
        ("final_qte", "Final (qté)"),
        ("final_valeur", "Final (valeur)"),
        ("solde_des_lots", "Solde des lots"),
        ("ecart", "Écart"),
    ];
    known.iter().find(|(k, _)| *k == h).map_or_else(|| h.replace('_', " "), |(_, l)| (*l).to_string())
}

/// `-12345.67` → `−12 345,67` (the export's numbers as a French reader expects them on paper).
fn french_number(s: &str) -> String {
    let (sign, digits) = s.strip_prefix('-').map_or(("", s), |d| ("\u{2212}", d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let grouped = int.parse::<u128>().map(domain::money::group_thousands).unwrap_or_else(|_| int.to_string());
    if frac.is_empty() { format!("{sign}{grouped}") } else { format!("{sign}{grouped},{frac}") }
}

/// An export as a landscape PDF report: the same rows as the CSV and Excel files, French headers and numbers.
pub async fn report(st: &AppState, title: &str, period: String, rows: &[Vec<crate::export::Cell>]) -> Response {
    use crate::export::Cell;
    let c = st.dbmon.db().conn();
    let (company, demo) = match (store::settings::company(c).await, store::settings::is_demo(c).await) {
        (Ok(s), Ok(demo)) => (s.map(|s| s.raison_sociale).unwrap_or_default(), demo),
        (Err(e), _) | (_, Err(e)) => return ApiError::from(e).into_response(),
    };
    let header = rows.first().cloned().unwrap_or_default();
    let numeric: Vec<bool> =
        (0..header.len()).map(|i| rows.iter().skip(1).any(|r| matches!(r.get(i), Some(Cell::Number(_))))).collect();
    let columns = header
        .iter()
        .zip(&numeric)
        .map(|(h, n)| {
            let key = match h {
                Cell::Text(s) | Cell::Number(s) => s.as_str(),
            };
            let wide = ["client", "libelle", "produit", "fournisseur", "tva_par_taux"].contains(&key)
                || key.ends_with("par_origine");
            let label = header_label(key);
            if *n { Column::number(&label, 1) } else { Column::text(&label, if wide { 3 } else { 1 }) }
        })
        .collect();
    let body = rows
        .iter()
        .skip(1)
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Cell::Text(s) => s.clone(),
                    Cell::Number(s) => french_number(s),
                })
                .collect()
        })
        .collect();
    let r = documents::Report {
        title: title.to_string(),
        company,
        subtitle: period,
        printed: fmt_date(domain::stock::today_algiers(st.clock.now())),
        columns,
        rows: body,
        demo,
    };
    let name = r.title.clone();
    match render(move || documents::report_pdf(&r)).await {
        Ok(pdf) => pdf_response(&name, pdf),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_numbers_print_the_french_way() {
        assert_eq!(super::french_number("-12345.67"), "\u{2212}12\u{202F}345,67");
        assert_eq!(super::french_number("500.000"), "500,000");
        assert_eq!(super::french_number("7"), "7");
        assert_eq!(super::header_label("entrees_par_origine"), "Entrées par origine");
        assert_eq!(super::header_label("autre_chose"), "autre chose");
    }
}
