//! Deliveries (DOMAIN.md §12): a BL reserves quantities of a validated invoice; its validation — by QR scan or by a
//! manual confirmation — is the only moment PF stock leaves (FEFO, once, under the BL's row lock); then the proof of
//! delivery. Every scan or manual attempt is logged (§12.1), in its own transaction so a refusal is logged too.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use domain::delivery::{BlStatus, Qr, QrType, ValidationMode};
use domain::rejection::Rejection;
use domain::sales::InvoiceStatus;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};
use crate::stock::{Lot, Mover, Source, stmt};

entity!(deliveries, "deliveries", {
    reference: String, invoice_id: Uuid, client_id: Uuid, status: String, delivery_address: Option<String>,
    vehicle: Option<String>, driver_user_id: Option<Uuid>, driver_name: Option<String>, notes: Option<String>,
    created_by: Option<Uuid>, created_at: ChronoDateTimeUtc, updated_at: ChronoDateTimeUtc,
    validated_at: Option<ChronoDateTimeUtc>, validated_by: Option<Uuid>, validation_device: Option<String>,
    validation_mode: Option<String>, validation_note: Option<String>, validation_command_id: Option<String>,
    delivered_at: Option<ChronoDateTimeUtc>, delivered_by: Option<Uuid>, recipient_name: Option<String>,
    gps_lat: Option<f64>, gps_lon: Option<f64>, gps_accuracy_m: Option<f64>, cancel_reason: Option<String>,
    cancelled_at: Option<ChronoDateTimeUtc>,
});
entity!(delivery_lines, "delivery_lines", {
    delivery_id: Uuid, line_no: i32, invoice_line_id: Uuid, product_id: Uuid, quantity: i64,
});
entity!(delivery_allocations, "delivery_allocations", {
    delivery_line_id: Uuid, lot_id: Uuid, quantity: i64, unit_cost: i64, movement_id: Uuid,
});
entity!(delivery_proofs, "delivery_proofs", {
    delivery_id: Uuid, kind: String, content_type: String, data: Vec<u8>, created_at: ChronoDateTimeUtc,
});
entity!(scan_log, "scan_log", {
    at: ChronoDateTimeUtc, user_id: Option<Uuid>, device_id: Option<String>, ip: Option<String>,
    user_agent: Option<String>, gps_lat: Option<f64>, gps_lon: Option<f64>, gps_accuracy_m: Option<f64>,
    mode: String, payload_hash: Option<String>, reference: Option<String>, outcome: String,
});

pub type Delivery = deliveries::Model;
pub type DeliveryLine = delivery_lines::Model;
pub type Allocation = delivery_allocations::Model;
pub type ScanRow = scan_log::Model;

pub fn status_of(d: &Delivery) -> BlStatus {
    BlStatus::parse(&d.status).unwrap_or(BlStatus::Pending)
}

/// What the BL form gives besides the lines.
#[derive(Debug, Clone, Default)]
pub struct NewDelivery {
    pub delivery_address: Option<String>,
    pub vehicle: Option<String>,
    pub driver_user_id: Option<Uuid>,
    pub driver_name: Option<String>,
    pub notes: Option<String>,
}

fn clean(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Creates a PENDING BL `LIV-YYYY-NNNNN` from a validated invoice: the given lines, or everything still to deliver
/// (`lines` None). Quantities are reserved against the invoice lines, not against lots.
pub async fn create<C: ConnectionTrait>(
    c: &C,
    invoice_key: &str,
    lines: Option<Vec<(Uuid, i64)>>,
    new: NewDelivery,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Delivery, Vec<DeliveryLine>), OpError> {
    let invoice = crate::sales::lock_invoice(c, invoice_key).await?;
    let reference = invoice.reference.clone().unwrap_or_default();
    domain::sales::check_open_for(
        &reference,
        crate::sales::status_of(&invoice),
        &[InvoiceStatus::Validated, InvoiceStatus::PartiallyPaid, InvoiceStatus::Paid],
    )?;
    let facts = crate::sales::creditable_lines(c, invoice.id).await?;
    let asked: Vec<(Uuid, i64)> = match lines {
        Some(l) => l.into_iter().filter(|(_, q)| *q != 0).collect(),
        None => facts.iter().map(|(l, f)| (l.id, f.remaining_to_deliver())).filter(|(_, q)| *q > 0).collect(),
    };
    if asked.is_empty() {
        return Err(domain::delivery::check_line_quantity(1, 0, domain::stock::Unit::Kg).unwrap_err().into());
    }
    if let Some(driver) = new.driver_user_id {
        let role = crate::identity::users::Entity::find_by_id(driver).one(c).await?.map(|u| u.role);
        if role.as_deref() != Some("COMMERCIAL") {
            return Err(Rejection::new("VALEUR_HORS_LIMITES", 422, "Valeur hors limites.")
                .with_details(json!({"field": "driverUserId"}))
                .into());
        }
    }
    let client = crate::catalogue::clients::Entity::find_by_id(invoice.client_id)
        .one(c)
        .await?
        .ok_or_else(|| Rejection::non_trouve("Client"))?;
    let today = domain::stock::today_algiers(now);
    let n = crate::stock::next_number(c, "LIV", &today.year().to_string()).await?;
    let d = Delivery {
        id: Uuid::now_v7(),
        reference: domain::stock::doc_ref("LIV", today.year(), n),
        invoice_id: invoice.id,
        client_id: invoice.client_id,
        status: BlStatus::Pending.code().into(),
        delivery_address: clean(new.delivery_address).or(client.delivery_address.clone()).or(client.adresse.clone()),
        vehicle: clean(new.vehicle),
        driver_user_id: new.driver_user_id,
        driver_name: clean(new.driver_name),
        notes: clean(new.notes),
        created_by: actor.user_id,
        created_at: now,
        updated_at: now,
        validated_at: None,
        validated_by: None,
        validation_device: None,
        validation_mode: None,
        validation_note: None,
        validation_command_id: None,
        delivered_at: None,
        delivered_by: None,
        recipient_name: None,
        gps_lat: None,
        gps_lon: None,
        gps_accuracy_m: None,
        cancel_reason: None,
        cancelled_at: None,
    };
    deliveries::Entity::insert(d.clone().into_active_model()).exec_without_returning(c).await?;
    let by_line: HashMap<Uuid, _> = facts.iter().map(|(l, f)| (l.id, (l, f))).collect();
    let mut out = Vec::new();
    for (n, (line_id, q)) in asked.iter().enumerate() {
        let (il, f) = by_line.get(line_id).ok_or_else(|| Rejection::non_trouve("Ligne de facture"))?;
        let p = crate::stock::product(c, il.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
        domain::delivery::check_line_quantity(*q, f.remaining_to_deliver(), crate::sales::unit_of(&p))?;
        let line = DeliveryLine {
            id: Uuid::now_v7(),
            delivery_id: d.id,
            line_no: n as i32 + 1,
            invoice_line_id: il.id,
            product_id: il.product_id,
            quantity: *q,
        };
        delivery_lines::Entity::insert(line.clone().into_active_model()).exec_without_returning(c).await?;
        out.push(line);
    }
    feed(c, &d, now).await?;
    audit::append(
        c,
        actor,
        Change::new("DELIVERY_CREATED").entity("delivery", d.id).after(json!({
            "reference": d.reference, "invoice": reference,
            "lines": out.iter().map(|l| json!({"invoiceLineId": l.invoice_line_id, "quantity": l.quantity})).collect::<Vec<_>>(),
        })),
        now,
    )
    .await?;
    Ok((d, out))
}

/// Reads a BL by id or reference with a row lock: the lock every validation takes first (exactly-once, §12).
pub async fn lock<C: ConnectionTrait>(c: &C, key: &str) -> Result<Delivery, OpError> {
    Ok(crate::sales::document_by_key::<deliveries::Entity, _>(c, key, true).await?.ok_or_else(introuvable)?)
}

fn introuvable() -> Rejection {
    Rejection::new("LIVRAISON_INTROUVABLE", 404, "Livraison introuvable.")
}

pub async fn find<C: ConnectionTrait>(c: &C, key: &str) -> Result<Option<Delivery>, StoreError> {
    crate::sales::document_by_key::<deliveries::Entity, _>(c, key, false).await
}

pub async fn lines_of<C: ConnectionTrait>(c: &C, delivery_id: Uuid) -> Result<Vec<DeliveryLine>, StoreError> {
    Ok(delivery_lines::Entity::find()
        .filter(delivery_lines::Column::DeliveryId.eq(delivery_id))
        .order_by_asc(delivery_lines::Column::LineNo)
        .all(c)
        .await?)
}

pub async fn allocations_of<C: ConnectionTrait>(c: &C, line_ids: &[Uuid]) -> Result<Vec<Allocation>, StoreError> {
    if line_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(delivery_allocations::Entity::find()
        .filter(delivery_allocations::Column::DeliveryLineId.is_in(line_ids.to_vec()))
        .order_by_asc(delivery_allocations::Column::Id)
        .all(c)
        .await?)
}

/// Lots shipped for an invoice line (BLs VALIDATED or DELIVERED) with the quantity each gave: a return's cost and
/// DLC come from them (§10.4).
pub async fn shipped_lots<C: ConnectionTrait>(c: &C, invoice_line_id: Uuid) -> Result<Vec<(Lot, i64)>, StoreError> {
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT a.lot_id AS lot_id, CAST(SUM(a.quantity) AS BIGINT) AS q FROM delivery_allocations a \
             JOIN delivery_lines dl ON dl.id = a.delivery_line_id JOIN deliveries d ON d.id = dl.delivery_id \
             WHERE dl.invoice_line_id = $1 AND d.status IN ('VALIDATED', 'DELIVERED') GROUP BY a.lot_id",
            vec![invoice_line_id.into()],
        ))
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: Uuid = r.try_get("", "lot_id")?;
        if let Some(lot) = crate::stock::lots::Entity::find_by_id(id).one(c).await? {
            out.push((lot, r.try_get("", "q")?));
        }
    }
    Ok(out)
}

async fn user_name<C: ConnectionTrait>(c: &C, id: Option<Uuid>) -> Result<String, StoreError> {
    let Some(id) = id else { return Ok("?".into()) };
    Ok(crate::identity::users::Entity::find_by_id(id)
        .one(c)
        .await?
        .map_or_else(|| "?".into(), |u| format!("{} {}", u.first_name, u.last_name)))
}

/// Where a validation comes from.
#[derive(Debug, Clone)]
pub struct Validation {
    pub mode: ValidationMode,
    pub note: Option<String>,
    /// The client's command id: a replay of the command that validated the BL returns that first result.
    pub command_id: Option<String>,
}

/// PENDING → VALIDATED: under the BL's lock, status re-checked, every line planned FEFO over usable lots (all
/// shortages listed, nothing written on refusal), then SALE OUT movements `LIV:{line}:{lot}` and the allocations.
/// A second validation gets `LIVRAISON_DEJA_VALIDEE` with the first one's date and validator.
pub async fn validate<C: ConnectionTrait>(
    c: &C,
    key: &str,
    v: Validation,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Delivery, OpError> {
    let mut d = lock(c, key).await?;
    let status = status_of(&d);
    if status.shipped() && v.command_id.is_some() && d.validation_command_id == v.command_id {
        return Ok(d);
    }
    let first = match d.validated_at {
        Some(at) => Some((domain::format::datetime_algiers(at.timestamp()), user_name(c, d.validated_by).await?)),
        None => None,
    };
    let note = domain::delivery::check_validate(
        status,
        v.mode,
        v.note.as_deref(),
        first.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
    )?;
    let today = domain::stock::today_algiers(now);
    let mut lines = lines_of(c, d.id).await?;
    lines.sort_by_key(|l| l.product_id);
    let mut plans = Vec::new();
    let mut shortages = Vec::new();
    for l in &lines {
        let p = crate::stock::product(c, l.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
        let lots = crate::stock::lock_fefo(c, p.id, today, true).await?;
        let facts: Vec<_> = lots.iter().map(crate::stock::lot_facts).collect();
        let plan = domain::stock::plan(&facts, l.quantity, today, true);
        if !plan.sufficient {
            shortages.push((p.code.clone(), l.quantity, plan.available));
        }
        plans.push((l, plan));
    }
    if !shortages.is_empty() {
        shortages.sort();
        return Err(domain::stock::stock_insuffisant(&shortages).into());
    }
    let mover = Mover { user_id: actor.user_id, device_id: actor.device_id.clone(), ip: actor.ip.clone() };
    let source = Source {
        origin: "SALE",
        source_type: Some("delivery"),
        source_id: Some(d.id),
        reference: Some(d.reference.clone()),
    };
    let mut shipped = Vec::new();
    for (l, plan) in plans {
        for a in plan.allocations {
            let lot_id = Uuid::parse_str(&a.lot_id).map_err(|e| StoreError::Other(e.to_string()))?;
            let (lot, m) =
                crate::stock::take_from_lot(c, lot_id, a.take, &source, format!("LIV:{}:{lot_id}", l.id), &mover, now)
                    .await?;
            let row = Allocation {
                id: Uuid::now_v7(),
                delivery_line_id: l.id,
                lot_id,
                quantity: a.take,
                unit_cost: lot.unit_cost,
                movement_id: m.id,
            };
            delivery_allocations::Entity::insert(row.clone().into_active_model()).exec_without_returning(c).await?;
            shipped.push(json!({"lot": lot.lot_number, "quantity": a.take}));
        }
    }
    d.status = BlStatus::Validated.code().into();
    d.validated_at = Some(now);
    d.validated_by = actor.user_id;
    d.validation_device = actor.device_id.clone();
    d.validation_mode = Some(v.mode.code().into());
    d.validation_note = note;
    d.validation_command_id = v.command_id;
    d.updated_at = now;
    deliveries::Entity::update(d.clone().into_active_model().reset_all()).exec(c).await?;
    feed(c, &d, now).await?;
    audit::append(
        c,
        actor,
        Change::new("DELIVERY_VALIDATED")
            .entity("delivery", d.id)
            .before(json!({"status": BlStatus::Pending.code()}))
            .after(json!({"status": d.status, "reference": d.reference, "mode": v.mode.code(), "shipped": shipped})),
        now,
    )
    .await?;
    Ok(d)
}

/// A scanned BL payload: checked (§12.2), the BL found by uuid **and** reference, then validated.
pub async fn validate_scanned<C: ConnectionTrait>(
    c: &C,
    secret: &str,
    payload: &str,
    command_id: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Delivery, OpError> {
    let Qr::Delivery { uuid, reference } = domain::delivery::parse_qr(secret, payload, QrType::Dlv)? else {
        return Err(Rejection::new("QR_TYPE_INATTENDU", 422, "QR code non reconnu.").into());
    };
    let d = find(c, &uuid).await?.filter(|d| d.reference == reference).ok_or_else(introuvable)?;
    validate(c, &d.id.to_string(), Validation { mode: ValidationMode::Qr, note: None, command_id }, actor, now).await
}

/// The proof of delivery.
#[derive(Debug, Clone, Default)]
pub struct Proof {
    pub recipient_name: String,
    pub signature_png: Option<Vec<u8>>,
    pub photo_jpeg: Option<Vec<u8>>,
    pub gps: Option<(f64, f64, Option<f64>)>,
    /// When it was delivered, as the driver's device recorded it (offline); the server's time otherwise, and never
    /// a time in the future.
    pub at: Option<DateTime<Utc>>,
}

/// VALIDATED → DELIVERED with the recipient, the signature and the optional photo and position.
pub async fn deliver<C: ConnectionTrait>(
    c: &C,
    key: &str,
    proof: Proof,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Delivery, OpError> {
    let mut d = lock(c, key).await?;
    let name = domain::delivery::check_deliver(
        status_of(&d),
        &proof.recipient_name,
        proof.signature_png.as_deref(),
        proof.photo_jpeg.as_deref(),
    )?;
    for (kind, content_type, data) in
        [("SIGNATURE", "image/png", proof.signature_png), ("PHOTO", "image/jpeg", proof.photo_jpeg)]
    {
        if let Some(data) = data {
            delivery_proofs::Entity::insert(
                delivery_proofs::Model {
                    id: Uuid::now_v7(),
                    delivery_id: d.id,
                    kind: kind.into(),
                    content_type: content_type.into(),
                    data,
                    created_at: now,
                }
                .into_active_model(),
            )
            .exec_without_returning(c)
            .await?;
        }
    }
    d.status = BlStatus::Delivered.code().into();
    d.delivered_at = Some(proof.at.filter(|at| *at <= now).unwrap_or(now));
    d.delivered_by = actor.user_id;
    d.recipient_name = Some(name.clone());
    if let Some((lat, lon, acc)) = proof.gps {
        d.gps_lat = Some(lat);
        d.gps_lon = Some(lon);
        d.gps_accuracy_m = acc;
    }
    d.updated_at = now;
    deliveries::Entity::update(d.clone().into_active_model().reset_all()).exec(c).await?;
    feed(c, &d, now).await?;
    audit::append(
        c,
        actor,
        Change::new("DELIVERY_DELIVERED")
            .entity("delivery", d.id)
            .before(json!({"status": BlStatus::Validated.code()}))
            .after(json!({"status": d.status, "reference": d.reference, "recipient": name})),
        now,
    )
    .await?;
    Ok(d)
}

/// The stored signature or photo of a BL.
pub async fn proof_of<C: ConnectionTrait>(
    c: &C,
    delivery_id: Uuid,
    kind: &str,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(delivery_proofs::Entity::find()
        .filter(delivery_proofs::Column::DeliveryId.eq(delivery_id))
        .filter(delivery_proofs::Column::Kind.eq(kind))
        .one(c)
        .await?
        .map(|p| (p.content_type, p.data)))
}

/// PENDING → CANCELLED: the quantities return to "remaining to deliver".
pub async fn cancel<C: ConnectionTrait>(
    c: &C,
    key: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Delivery, OpError> {
    let mut d = lock(c, key).await?;
    let reason = domain::delivery::check_cancel(status_of(&d), reason)?;
    d.status = BlStatus::Cancelled.code().into();
    d.cancel_reason = Some(reason.clone());
    d.cancelled_at = Some(now);
    d.updated_at = now;
    deliveries::Entity::update(d.clone().into_active_model().reset_all()).exec(c).await?;
    feed(c, &d, now).await?;
    audit::append(
        c,
        actor,
        Change::new("DELIVERY_CANCELLED")
            .entity("delivery", d.id)
            .before(json!({"status": BlStatus::Pending.code()}))
            .after(json!({"status": d.status, "reference": d.reference}))
            .reason(reason),
        now,
    )
    .await?;
    Ok(d)
}

/// One scan or manual validation attempt (§12.1).
#[derive(Debug, Clone, Default)]
pub struct ScanAttempt {
    pub user_id: Option<Uuid>,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub gps: Option<(f64, f64, Option<f64>)>,
    pub mode: &'static str,
    pub payload: Option<String>,
    pub reference: Option<String>,
    pub outcome: String,
}

/// Writes one scan-log row (its own statement, outside the refused command's transaction).
pub async fn log_scan<C: ConnectionTrait>(c: &C, a: ScanAttempt, now: DateTime<Utc>) -> Result<(), StoreError> {
    let hash = a.payload.as_deref().map(domain::delivery::payload_hash);
    scan_log::Entity::insert(
        ScanRow {
            id: Uuid::now_v7(),
            at: now,
            user_id: a.user_id,
            device_id: a.device_id,
            ip: a.ip,
            user_agent: a.user_agent,
            gps_lat: a.gps.map(|g| g.0),
            gps_lon: a.gps.map(|g| g.1),
            gps_accuracy_m: a.gps.and_then(|g| g.2),
            mode: a.mode.into(),
            payload_hash: hash,
            reference: a.reference,
            outcome: a.outcome,
        }
        .into_active_model(),
    )
    .exec_without_returning(c)
    .await?;
    Ok(())
}

/// Attempts of a user since a moment (the 30-per-minute limit of §12.1).
pub async fn attempts_since<C: ConnectionTrait>(c: &C, user_id: Uuid, since: DateTime<Utc>) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(scan_log::Entity::find()
        .filter(scan_log::Column::UserId.eq(user_id))
        .filter(scan_log::Column::At.gte(since))
        .count(c)
        .await?)
}

/// The latest attempts, newest first.
pub async fn recent_scans<C: ConnectionTrait>(c: &C, limit: u64) -> Result<Vec<ScanRow>, StoreError> {
    use sea_orm::QuerySelect;
    Ok(scan_log::Entity::find()
        .order_by_desc(scan_log::Column::At)
        .order_by_desc(scan_log::Column::Id)
        .limit(limit)
        .all(c)
        .await?)
}

pub async fn scans_of<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Vec<ScanRow>, StoreError> {
    Ok(scan_log::Entity::find()
        .filter(scan_log::Column::Reference.eq(reference))
        .order_by_asc(scan_log::Column::At)
        .order_by_asc(scan_log::Column::Id)
        .all(c)
        .await?)
}

/// BLs for the lists, newest first.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    status: Option<BlStatus>,
    invoice_id: Option<Uuid>,
    driver: Option<Uuid>,
) -> Result<Vec<Delivery>, StoreError> {
    let mut q = deliveries::Entity::find();
    if let Some(s) = status {
        q = q.filter(deliveries::Column::Status.eq(s.code()));
    }
    if let Some(i) = invoice_id {
        q = q.filter(deliveries::Column::InvoiceId.eq(i));
    }
    if let Some(u) = driver {
        q = q.filter(deliveries::Column::DriverUserId.eq(u));
    }
    Ok(q.order_by_desc(deliveries::Column::CreatedAt).all(c).await?)
}

/// One shipment of a lot (trace forward, recall "clients à appeler", §9).
#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    pub lot_number: String,
    pub delivery: String,
    pub status: String,
    pub client_code: String,
    pub client_name: String,
    pub telephone: Option<String>,
    pub quantity: i64,
    pub validated_at: Option<chrono::DateTime<Utc>>,
}

/// What left each of the lots on a BL validated or delivered, oldest first.
pub async fn shipped_from<C: ConnectionTrait>(c: &C, lot_ids: &[Uuid]) -> Result<Vec<Shipment>, StoreError> {
    let mut out = Vec::new();
    for id in lot_ids {
        let rows = c
            .query_all_raw(stmt(
                c.get_database_backend(),
                "SELECT l.lot_number AS lot_number, d.reference AS reference, d.status AS status, cl.code AS code, \
                 cl.raison_sociale AS name, cl.telephone AS telephone, a.quantity AS quantity, \
                 d.validated_at AS validated_at \
                 FROM delivery_allocations a JOIN delivery_lines dl ON dl.id = a.delivery_line_id \
                 JOIN deliveries d ON d.id = dl.delivery_id JOIN clients cl ON cl.id = d.client_id \
                 JOIN lots l ON l.id = a.lot_id \
                 WHERE a.lot_id = $1 AND d.status IN ('VALIDATED', 'DELIVERED') ORDER BY d.validated_at, d.reference",
                vec![(*id).into()],
            ))
            .await?;
        for r in rows {
            out.push(Shipment {
                lot_number: r.try_get("", "lot_number")?,
                delivery: r.try_get("", "reference")?,
                status: r.try_get("", "status")?,
                client_code: r.try_get("", "code")?,
                client_name: r.try_get("", "name")?,
                telephone: r.try_get("", "telephone")?,
                quantity: r.try_get("", "quantity")?,
                validated_at: r.try_get("", "validated_at")?,
            });
        }
    }
    Ok(out)
}

/// One customer return of goods shipped from a lot (recall "retours", §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    pub credit_note: String,
    pub client_code: String,
    pub quantity: i64,
    pub return_lot: Option<String>,
}

/// Validated RETOUR credit lines on invoice lines that shipped from the lots.
pub async fn returns_of<C: ConnectionTrait>(c: &C, lot_ids: &[Uuid]) -> Result<Vec<Return>, StoreError> {
    let mut out: Vec<Return> = Vec::new();
    for id in lot_ids {
        let rows = c
            .query_all_raw(stmt(
                c.get_database_backend(),
                "SELECT DISTINCT cn.reference AS reference, cl.code AS code, cnl.quantity AS quantity, \
                 rl.lot_number AS return_lot, cnl.id AS line_id \
                 FROM delivery_allocations a JOIN delivery_lines dl ON dl.id = a.delivery_line_id \
                 JOIN credit_note_lines cnl ON cnl.invoice_line_id = dl.invoice_line_id \
                 JOIN credit_notes cn ON cn.id = cnl.credit_note_id JOIN invoices i ON i.id = cn.invoice_id \
                 JOIN clients cl ON cl.id = i.client_id LEFT JOIN lots rl ON rl.id = cnl.return_lot_id \
                 WHERE a.lot_id = $1 AND cn.status = 'VALIDATED' AND cnl.kind = 'RETOUR'",
                vec![(*id).into()],
            ))
            .await?;
        for r in rows {
            let ret = Return {
                credit_note: r.try_get::<Option<String>>("", "reference")?.unwrap_or_default(),
                client_code: r.try_get("", "code")?,
                quantity: r.try_get("", "quantity")?,
                return_lot: r.try_get("", "return_lot")?,
            };
            if !out.contains(&ret) {
                out.push(ret);
            }
        }
    }
    Ok(out)
}

// ---- the drivers' feed (PLATFORM.md §7.4) ----------------------------------------------------------------------

/// What a driver's device knows of a BL: enough to deliver it and to take a payment offline (PLATFORM §16: invoice
/// number, net à payer, already paid, remaining, payment method, client name, address and phone). No cost, no binary.
pub async fn device_snapshot<C: ConnectionTrait>(c: &C, d: &Delivery) -> Result<serde_json::Value, StoreError> {
    let invoice = crate::sales::find_invoice(c, &d.invoice_id.to_string()).await?;
    let client = crate::catalogue::client_by_id(c, d.client_id).await?;
    let mut lines = Vec::new();
    for l in lines_of(c, d.id).await? {
        let p = crate::stock::product(c, l.product_id).await?;
        lines.push(json!({
            "lineNo": l.line_no, "productId": l.product_id, "productCode": p.as_ref().map(|p| p.code.clone()),
            "productName": p.as_ref().map(|p| p.name.clone()), "baseUnit": p.as_ref().map(|p| p.base_unit.clone()),
            "storageType": p.as_ref().and_then(|p| p.storage_type.clone()), "quantity": l.quantity,
        }));
    }
    let (net, remaining) = match &invoice {
        Some(i) => (i.net, crate::sales::remaining(c, i).await?),
        None => (0, 0),
    };
    Ok(json!({
        "id": d.id, "reference": d.reference, "status": d.status, "createdAt": d.created_at,
        "validatedAt": d.validated_at, "deliveredAt": d.delivered_at, "recipientName": d.recipient_name,
        "deliveryAddress": d.delivery_address, "vehicle": d.vehicle, "notes": d.notes, "lines": lines,
        "invoiceId": d.invoice_id, "invoiceReference": invoice.as_ref().and_then(|i| i.reference.clone()),
        "paymentMethod": invoice.as_ref().map(|i| i.payment_method.clone()), "netAPayer": net,
        "alreadyPaid": net - remaining, "remaining": remaining,
        "clientId": d.client_id, "clientCode": client.as_ref().map(|c| c.code.clone()),
        "clientName": client.as_ref().map(|c| c.raison_sociale.clone()),
        "clientAddress": client.as_ref().and_then(|c| c.adresse.clone()),
        "clientPhone": client.as_ref().and_then(|c| c.telephone.clone()),
    }))
}

/// The BL's current snapshot to its driver's feed (a BL without a driver user is in no feed).
pub async fn feed<C: ConnectionTrait>(c: &C, d: &Delivery, now: DateTime<Utc>) -> Result<(), StoreError> {
    let Some(driver) = d.driver_user_id else { return Ok(()) };
    let audience = crate::sync::Audience::User(driver);
    if let Some(client) = crate::catalogue::client_by_id(c, d.client_id).await? {
        let data = crate::catalogue::client_device_json(&client);
        crate::sync::append(c, "CLIENT", &client.id.to_string(), "upsert", &audience, Some(data), now).await?;
    }
    let data = device_snapshot(c, d).await?;
    crate::sync::append(c, "DELIVERY", &d.id.to_string(), "upsert", &audience, Some(data), now).await?;
    Ok(())
}

/// Every BL of an invoice with a driver, again (a payment changed what remains to pay).
pub async fn feed_invoice<C: ConnectionTrait>(c: &C, invoice_id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    let ds = deliveries::Entity::find()
        .filter(deliveries::Column::InvoiceId.eq(invoice_id))
        .filter(deliveries::Column::DriverUserId.is_not_null())
        .order_by_asc(deliveries::Column::CreatedAt)
        .all(c)
        .await?;
    for d in ds {
        feed(c, &d, now).await?;
    }
    Ok(())
}

/// The drivers with an open BL (to validate or to deliver) for a client: the audience of its contact changes.
pub async fn drivers_of_client<C: ConnectionTrait>(c: &C, client_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
    let mut out: Vec<Uuid> = deliveries::Entity::find()
        .filter(deliveries::Column::ClientId.eq(client_id))
        .filter(deliveries::Column::Status.is_in([BlStatus::Pending.code(), BlStatus::Validated.code()]))
        .all(c)
        .await?
        .into_iter()
        .filter_map(|d| d.driver_user_id)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// A driver's BLs for the bootstrap: open ones, and those delivered or cancelled since `since`.
pub async fn of_driver<C: ConnectionTrait>(
    c: &C,
    driver: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(deliveries::Entity::find()
        .filter(deliveries::Column::DriverUserId.eq(driver))
        .filter(
            deliveries::Column::Status
                .is_in([BlStatus::Pending.code(), BlStatus::Validated.code()])
                .or(deliveries::Column::UpdatedAt.gte(since)),
        )
        .order_by_asc(deliveries::Column::CreatedAt)
        .all(c)
        .await?)
}
