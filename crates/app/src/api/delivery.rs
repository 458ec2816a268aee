//! Deliveries (DOMAIN.md §12): BLs from validated invoices, their validation by QR scan or manual confirmation (the
//! moment PF stock leaves), the proof of delivery, cancellation. Every scan or manual attempt is logged, refused
//! QR codes are audited, and a user gets at most 30 attempts a minute (§12.1).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use domain::delivery::{BlStatus, ValidationMode};
use domain::rejection::Rejection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::audit::Change;
use store::delivery::{Delivery, NewDelivery, Proof, ScanAttempt, Validation};
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalogue::write;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryLineBody {
    /// The invoice line number.
    pub line_no: i32,
    /// Milli-units, > 0 and ≤ the line's remaining to deliver.
    pub quantity: i64,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryBody {
    /// Invoice number (or id).
    pub invoice: String,
    /// Absent: everything still to deliver ("tout le reste").
    pub lines: Option<Vec<DeliveryLineBody>>,
    pub delivery_address: Option<String>,
    pub vehicle: Option<String>,
    /// A COMMERCIAL user who drives: the BL goes to that driver's device feed.
    pub driver_user_id: Option<Uuid>,
    pub driver_name: Option<String>,
    pub notes: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
    pub accuracy: Option<f64>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanBody {
    /// The scanned text `MCG:DLV:{uuid}:{reference}:{mac}`.
    pub payload: String,
    /// The client's command id: its replay returns the first result.
    pub command_id: Option<String>,
    pub gps: Option<Gps>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManualBody {
    /// Why the QR code was not scanned (≥ 5 characters).
    pub note: String,
    pub command_id: Option<String>,
    pub gps: Option<Gps>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliverBody {
    pub recipient_name: String,
    /// PNG, base64, ≤ 256 KiB.
    pub signature_png: Option<String>,
    /// JPEG, base64, ≤ 1 MiB.
    pub photo_jpeg: Option<String>,
    pub gps: Option<Gps>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CancelBody {
    /// At least 5 characters.
    pub reason: String,
}

#[derive(Deserialize, utoipa::IntoParams, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryQuery {
    /// PENDING, VALIDATED, DELIVERED, CANCELLED.
    pub status: Option<String>,
}

/// The QR payload of a BL.
pub fn qr_payload(st: &AppState, d: &Delivery) -> Option<String> {
    st.secrets.get().map(|s| domain::delivery::bl_payload(&s.qr, &d.id.to_string(), &d.reference))
}

pub async fn delivery_detail(st: &AppState, key: &str) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let d = store::delivery::find(c, key)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::new("LIVRAISON_INTROUVABLE", 404, "Livraison introuvable.")))?;
    let invoice = store::sales::find_invoice(c, &d.invoice_id.to_string()).await?;
    let client = store::catalogue::client_by_id(c, d.client_id).await?;
    let lines = store::delivery::lines_of(c, d.id).await?;
    let allocations = store::delivery::allocations_of(c, &lines.iter().map(|l| l.id).collect::<Vec<_>>()).await?;
    let mut out = Vec::new();
    for l in &lines {
        let p = store::stock::product(c, l.product_id).await?;
        let mut lots = Vec::new();
        for a in allocations.iter().filter(|a| a.delivery_line_id == l.id) {
            let lot = store::stock::lot_by_id(c, a.lot_id).await?;
            lots.push(json!({"lot": lot.as_ref().map(|l| l.lot_number.clone()), "dlc": lot.and_then(|l| l.dlc), "quantity": a.quantity}));
        }
        out.push(json!({
            "lineNo": l.line_no, "productCode": p.as_ref().map(|p| p.code.clone()),
            "productName": p.as_ref().map(|p| p.name.clone()), "baseUnit": p.as_ref().map(|p| p.base_unit.clone()),
            "storageType": p.as_ref().and_then(|p| p.storage_type.clone()), "quantity": l.quantity, "lots": lots,
        }));
    }
    let status = store::delivery::status_of(&d);
    Ok(json!({
        "id": d.id, "reference": d.reference, "status": d.status, "statusLabel": status.label_fr(),
        "invoice": invoice.and_then(|i| i.reference), "clientCode": client.as_ref().map(|c| c.code.clone()),
        "clientName": client.map(|c| c.raison_sociale), "deliveryAddress": d.delivery_address, "vehicle": d.vehicle,
        "driverUserId": d.driver_user_id, "driverName": d.driver_name, "notes": d.notes, "createdAt": d.created_at,
        "validatedAt": d.validated_at, "validationMode": d.validation_mode, "validationNote": d.validation_note,
        "deliveredAt": d.delivered_at, "recipientName": d.recipient_name, "cancelReason": d.cancel_reason,
        "qr": qr_payload(st, &d), "lines": out,
    }))
}

pub async fn create_delivery(st: &AppState, b: &DeliveryBody, who: &Identity, ctx: &Ctx) -> Result<Value, ApiError> {
    let c = st.dbmon.db().conn();
    let invoice = store::sales::find_invoice(c, &b.invoice)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Facture")))?;
    let lines = match &b.lines {
        None => None,
        Some(ls) => {
            let by_no: std::collections::HashMap<i32, Uuid> =
                store::sales::lines_of(c, invoice.id).await?.iter().map(|l| (l.line_no, l.id)).collect();
            let mut out = Vec::new();
            for l in ls {
                let id =
                    by_no.get(&l.line_no).ok_or_else(|| ApiError::from(Rejection::non_trouve("Ligne de facture")))?;
                out.push((*id, l.quantity));
            }
            Some(out)
        }
    };
    let new = NewDelivery {
        delivery_address: b.delivery_address.clone(),
        vehicle: b.vehicle.clone(),
        driver_user_id: b.driver_user_id,
        driver_name: b.driver_name.clone(),
        notes: b.notes.clone(),
    };
    let (actor, now, k) = (who.actor(ctx), st.clock.now(), invoice.id.to_string());
    let (d, _) = write(st, move |tx| {
        let (actor, k, lines, new) = (actor.clone(), k.clone(), lines.clone(), new.clone());
        Box::pin(async move { store::delivery::create(&**tx, &k, lines, new, &actor, now).await })
    })
    .await?;
    delivery_detail(st, &d.id.to_string()).await
}

#[utoipa::path(post, path = "/api/deliveries", tag = "delivery", request_body = DeliveryBody, responses(
    (status = 201, description = "BL LIV-AAAA-NNNNN créé (À livrer) avec son QR code"),
    (status = 409, description = "FACTURE_STATUT_INVALIDE"), (status = 422, description = "QUANTITE_A_LIVRER_DEPASSEE")))]
pub async fn create(State(st): State<AppState>, ctx: Ctx, id: Identity, ApiJson(b): ApiJson<DeliveryBody>) -> Response {
    create_delivery(&st, &b, &id, &ctx).await.map(|v| (StatusCode::CREATED, Json(v))).into_response()
}

#[utoipa::path(get, path = "/api/deliveries", tag = "delivery", params(DeliveryQuery), responses(
    (status = 200, description = "BL, les plus récents d'abord")))]
pub async fn list(State(st): State<AppState>, Query(q): Query<DeliveryQuery>) -> Response {
    let result: Result<Value, ApiError> = async {
        let status = q.status.as_deref().and_then(|s| BlStatus::parse(s.trim()));
        let mut items = Vec::new();
        for d in store::delivery::list(st.dbmon.db().conn(), status, None, None).await? {
            items.push(json!({"id": d.id, "reference": d.reference, "status": d.status, "createdAt": d.created_at,
                              "validatedAt": d.validated_at, "deliveredAt": d.delivered_at}));
        }
        Ok(json!({"items": items}))
    }
    .await;
    result.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/deliveries/{key}", tag = "delivery", responses(
    (status = 200, description = "Le BL (id ou numéro), ses lignes et, une fois validé, les lots sortis"),
    (status = 404, description = "LIVRAISON_INTROUVABLE")))]
pub async fn get(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    delivery_detail(&st, &key).await.map(Json).into_response()
}

fn gps_of(g: Option<Gps>) -> Option<(f64, f64, Option<f64>)> {
    g.map(|g| (g.lat, g.lon, g.accuracy))
}

/// How a validation attempt was made: the scanned payload, or a manual confirmation of a known BL.
#[derive(Clone)]
pub enum Attempt {
    Scan { payload: String },
    Manual { key: String, note: String },
}

/// Runs one validation attempt: the per-user limit, the validation in its own transaction, then — whatever the
/// outcome — one scan-log row, and an audit entry when a QR code was refused.
pub async fn attempt(
    st: &AppState,
    who: &Identity,
    ctx: &Ctx,
    how: Attempt,
    command_id: Option<String>,
    gps: Option<Gps>,
) -> Result<Value, ApiError> {
    let now = st.clock.now();
    let db = st.dbmon.db();
    let mode = match how {
        Attempt::Scan { .. } => "QR",
        Attempt::Manual { .. } => "MANUEL",
    };
    let payload = match &how {
        Attempt::Scan { payload } => Some(payload.clone()),
        Attempt::Manual { .. } => None,
    };
    let recent = store::delivery::attempts_since(db.conn(), who.user.id, now - chrono::Duration::seconds(60)).await?;
    let result: Result<Delivery, ApiError> = if recent >= 30 {
        Err(ApiError::from(Rejection::new("TROP_DE_TENTATIVES", 429, "Trop de tentatives, réessayez dans une minute."))
            .with_retry_after(60))
    } else {
        let (actor, secret) = (who.actor(ctx), st.secrets.get().map(|s| s.qr.clone()).unwrap_or_default());
        let how2 = how.clone();
        write(st, move |tx| {
            let (actor, secret, how, cmd) = (actor.clone(), secret.clone(), how2.clone(), command_id.clone());
            Box::pin(async move {
                match how {
                    Attempt::Scan { payload } => {
                        store::delivery::validate_scanned(&**tx, &secret, &payload, cmd, &actor, now).await
                    }
                    Attempt::Manual { key, note } => {
                        let v = Validation { mode: ValidationMode::Manuel, note: Some(note), command_id: cmd };
                        store::delivery::validate(&**tx, &key, v, &actor, now).await
                    }
                }
            })
        })
        .await
    };
    let reference = match (&result, &how) {
        (Ok(d), _) => Some(d.reference.clone()),
        (Err(_), Attempt::Scan { payload }) => payload.split(':').nth(3).map(str::to_string),
        (Err(_), Attempt::Manual { key, .. }) => {
            store::delivery::find(db.conn(), key).await.ok().flatten().map(|d| d.reference)
        }
    };
    let outcome = match &result {
        Ok(_) => "OK".to_string(),
        Err(e) => e.code.to_string(),
    };
    let log = ScanAttempt {
        user_id: Some(who.user.id),
        device_id: who.device_id.map(|d| d.to_string()),
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
        gps: gps_of(gps),
        mode,
        payload,
        reference: reference.clone(),
        outcome: outcome.clone(),
    };
    let refused_qr = outcome.starts_with("QR_");
    let actor = who.actor(ctx);
    write(st, move |tx| {
        let (log, actor, reference, outcome) = (log.clone(), actor.clone(), reference.clone(), outcome.clone());
        Box::pin(async move {
            store::delivery::log_scan(&**tx, log, now).await?;
            if refused_qr {
                let change = Change::new("QR_REFUSED")
                    .entity("delivery", reference.unwrap_or_default())
                    .after(json!({"outcome": outcome}));
                store::audit::append(&**tx, &actor, change, now).await?;
            }
            Ok(())
        })
    })
    .await?;
    let d = result?;
    delivery_detail(st, &d.id.to_string()).await
}

#[utoipa::path(post, path = "/api/deliveries/scan", tag = "delivery", request_body = ScanBody, responses(
    (status = 200, description = "BL validé : le stock PF sort (FEFO), une seule fois"),
    (status = 404, description = "LIVRAISON_INTROUVABLE"),
    (status = 409, description = "LIVRAISON_DEJA_VALIDEE (date et validateur), STOCK_INSUFFISANT"),
    (status = 422, description = "QR_FORMAT_INVALIDE, QR_TYPE_INATTENDU, QR_SIGNATURE_INVALIDE"),
    (status = 429, description = "TROP_DE_TENTATIVES")))]
pub async fn scan(State(st): State<AppState>, ctx: Ctx, id: Identity, ApiJson(b): ApiJson<ScanBody>) -> Response {
    attempt(&st, &id, &ctx, Attempt::Scan { payload: b.payload }, b.command_id, b.gps).await.map(Json).into_response()
}

#[utoipa::path(post, path = "/api/deliveries/{key}/validate", tag = "delivery", request_body = ManualBody, responses(
    (status = 200, description = "BL validé manuellement (note ≥ 5 caractères)"),
    (status = 409, description = "LIVRAISON_DEJA_VALIDEE, STOCK_INSUFFISANT"), (status = 422, description = "MOTIF_TROP_COURT")))]
pub async fn validate(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<ManualBody>,
) -> Response {
    attempt(&st, &id, &ctx, Attempt::Manual { key, note: b.note }, b.command_id, b.gps).await.map(Json).into_response()
}

pub(crate) fn decode(field: &str, data: &Option<String>) -> Result<Option<Vec<u8>>, ApiError> {
    match data.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let s = s.split_once(',').filter(|(h, _)| h.starts_with("data:")).map_or(s, |(_, d)| d);
            base64::engine::general_purpose::STANDARD.decode(s).map(Some).map_err(|_| {
                Rejection::new("VALEUR_HORS_LIMITES", 422, "Valeur hors limites.")
                    .with_details(json!({"field": field}))
                    .into()
            })
        }
    }
}

pub async fn deliver_with(
    st: &AppState,
    key: &str,
    b: &DeliverBody,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let proof = Proof {
        recipient_name: b.recipient_name.clone(),
        signature_png: decode("signaturePng", &b.signature_png)?,
        photo_jpeg: decode("photoJpeg", &b.photo_jpeg)?,
        gps: gps_of(b.gps),
        at: None,
    };
    deliver_proof(st, key, proof, who, ctx).await
}

/// DELIVERED with its proof (the API's base64 fields or the page's files, decoded).
pub async fn deliver_proof(
    st: &AppState,
    key: &str,
    proof: Proof,
    who: &Identity,
    ctx: &Ctx,
) -> Result<Value, ApiError> {
    let (actor, now, k) = (who.actor(ctx), st.clock.now(), key.to_string());
    let d = write(st, move |tx| {
        let (actor, k, proof) = (actor.clone(), k.clone(), proof.clone());
        Box::pin(async move { store::delivery::deliver(&**tx, &k, proof, &actor, now).await })
    })
    .await?;
    delivery_detail(st, &d.id.to_string()).await
}

#[utoipa::path(post, path = "/api/deliveries/{key}/deliver", tag = "delivery", request_body = DeliverBody, responses(
    (status = 200, description = "Livré : réceptionnaire, signature, photo et position enregistrés"),
    (status = 422, description = "SIGNATURE_REQUISE"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn deliver(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<DeliverBody>,
) -> Response {
    deliver_with(&st, &key, &b, &id, &ctx).await.map(Json).into_response()
}

pub async fn cancel_with(st: &AppState, key: &str, reason: &str, who: &Identity, ctx: &Ctx) -> Result<Value, ApiError> {
    let (actor, now, k, r) = (who.actor(ctx), st.clock.now(), key.to_string(), reason.to_string());
    let d = write(st, move |tx| {
        let (actor, k, r) = (actor.clone(), k.clone(), r.clone());
        Box::pin(async move { store::delivery::cancel(&**tx, &k, &r, &actor, now).await })
    })
    .await?;
    delivery_detail(st, &d.id.to_string()).await
}

#[utoipa::path(post, path = "/api/deliveries/{key}/cancel", tag = "delivery", request_body = CancelBody, responses(
    (status = 200, description = "BL annulé : les quantités redeviennent à livrer"),
    (status = 422, description = "MOTIF_TROP_COURT"), (status = 409, description = "TRANSITION_INVALIDE")))]
pub async fn cancel(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    Path(key): Path<String>,
    ApiJson(b): ApiJson<CancelBody>,
) -> Response {
    cancel_with(&st, &key, &b.reason, &id, &ctx).await.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/deliveries/{key}/proof/{kind}", tag = "delivery", responses(
    (status = 200, description = "La signature (PNG) ou la photo (JPEG) de la preuve de livraison")))]
pub async fn proof(State(st): State<AppState>, Path((key, kind)): Path<(String, String)>) -> Response {
    let result: Result<Response, ApiError> = async {
        let c = st.dbmon.db().conn();
        let d = store::delivery::find(c, &key)
            .await?
            .ok_or_else(|| ApiError::from(Rejection::new("LIVRAISON_INTROUVABLE", 404, "Livraison introuvable.")))?;
        let kind = match kind.as_str() {
            "signature" => "SIGNATURE",
            "photo" => "PHOTO",
            _ => return Err(Rejection::non_trouve("Preuve").into()),
        };
        let (ct, data) = store::delivery::proof_of(c, d.id, kind)
            .await?
            .ok_or_else(|| ApiError::from(Rejection::non_trouve("Preuve")))?;
        Ok(([(header::CONTENT_TYPE, ct)], data).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[utoipa::path(get, path = "/api/deliveries/{key}/pdf", tag = "delivery", responses(
    (status = 200, description = "Le bon de livraison en PDF, avec son QR signé", content_type = "application/pdf"),
    (status = 404, description = "LIVRAISON_INTROUVABLE")))]
pub async fn pdf(State(st): State<AppState>, Path(key): Path<String>) -> Response {
    crate::print::answer(crate::print::delivery_note(&st, &key).await).await
}
