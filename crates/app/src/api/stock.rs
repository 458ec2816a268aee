//! Receptions and stock (DOMAIN.md §5, §6.3): direct receptions creating lots, lists and documents. R− readers
//! (PRODUCTION) never receive a cost or an amount.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use domain::identity::Role;
use domain::procurement::{LineInput, LineProduct};
use domain::rejection::Rejection;
use domain::validation::Fields;
use serde::Deserialize;
use serde_json::{Value, json};
use store::procurement::{NewLine, NewReception};
use utoipa::ToSchema;

use super::catalogue::ListQuery;
use crate::auth::session::op_err;
use crate::auth::{Ctx, Identity};
use crate::platform::errors::{ApiError, ApiJson};
use crate::state::AppState;

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReceptionLineBody {
    product_code: String,
    /// Milli-units of the product's base unit.
    quantity: i64,
    /// Centimes per base unit, HT.
    unit_cost_ht: i64,
    /// 0, 900 or 1900 (default 1900).
    tva_rate: Option<i32>,
    supplier_lot_number: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    dlc: Option<NaiveDate>,
    #[schema(value_type = Option<String>, format = Date)]
    manufacture_date: Option<NaiveDate>,
}

#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReceptionBody {
    supplier_code: String,
    /// Default today (Africa/Algiers); between today − 7 days and today.
    #[schema(value_type = Option<String>, format = Date)]
    reception_date: Option<NaiveDate>,
    supplier_delivery_note: Option<String>,
    supplier_invoice_number: Option<String>,
    lines: Vec<ReceptionLineBody>,
}

fn hides_values(role: Role) -> bool {
    role == Role::Production
}

pub fn reception_json(
    r: &store::procurement::Reception,
    supplier: &str,
    lines: &[(store::procurement::Line, String, String, String)],
    role: Role,
) -> Value {
    let mut v = json!({
        "reference": r.reference, "supplierCode": supplier, "receptionDate": r.reception_date,
        "supplierDeliveryNote": r.supplier_delivery_note, "supplierInvoiceNumber": r.supplier_invoice_number,
        "totalHt": r.total_ht, "totalTva": r.total_tva, "totalTtc": r.total_ttc,
        "lines": lines.iter().map(|(l, product, lot, status)| json!({
            "lineNo": l.line_no, "productCode": product, "quantity": l.quantity, "unitCostHt": l.unit_cost_ht,
            "tvaRate": l.tva_rate, "amountHt": l.amount_ht, "amountTva": l.amount_tva, "amountTtc": l.amount_ttc,
            "supplierLotNumber": l.supplier_lot_number, "dlc": l.dlc, "manufactureDate": l.manufacture_date,
            "lotNumber": lot, "lotStatus": status,
        })).collect::<Vec<_>>(),
    });
    if hides_values(role) {
        for k in ["totalHt", "totalTva", "totalTtc"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        if let Some(ls) = v["lines"].as_array_mut() {
            for l in ls {
                for k in ["unitCostHt", "amountHt", "amountTva", "amountTtc"] {
                    l.as_object_mut().map(|o| o.remove(k));
                }
            }
        }
    }
    v
}

fn warnings_json(w: &[Rejection]) -> Value {
    json!(w.iter().map(|r| json!({"code": r.code, "message": r.message, "details": r.details})).collect::<Vec<_>>())
}

/// Checks and records a direct reception; returns it with its lines (product code, lot number, lot status) and the
/// accepted warnings.
pub async fn receive(
    st: &AppState,
    b: &ReceptionBody,
    id: &Identity,
    ctx: &Ctx,
) -> Result<(Value, Vec<Rejection>), ApiError> {
    let db = st.dbmon.db();
    let now = st.clock.now();
    let today = domain::stock::today_algiers(now);
    let supplier = store::catalogue::supplier_by_code(db.conn(), &b.supplier_code)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Fournisseur")))?;
    if !supplier.active {
        return Err(
            Rejection::new("FOURNISSEUR_INACTIF", 409, format!("{} est désactivé.", supplier.raison_sociale)).into()
        );
    }
    let reception_date = b.reception_date.unwrap_or(today);
    domain::procurement::check_reception_date(reception_date, today)?;
    if b.lines.is_empty() {
        return Err(super::admin::field_error("lines", "OBLIGATOIRE", "La réception ne contient aucune ligne."));
    }
    let mut f = Fields::new();
    let mut warnings = Vec::new();
    let mut lines = Vec::new();
    for (i, l) in b.lines.iter().enumerate() {
        let Some(p) = store::catalogue::product_by_code(db.conn(), &l.product_code).await? else {
            f.add(&format!("lines[{i}].productCode"), "NON_TROUVE", format!("Produit {} introuvable.", l.product_code));
            continue;
        };
        let facts = LineProduct {
            code: p.code.clone(),
            perishable: p.perishable,
            active: p.active,
            is_mp: p.kind == "MP",
            stock_tracked: p.stock_tracked,
        };
        let input = LineInput {
            quantity: l.quantity,
            unit_cost_ht: l.unit_cost_ht,
            tva_rate: l.tva_rate,
            supplier_lot_number: l.supplier_lot_number.clone(),
            dlc: l.dlc,
            manufacture_date: l.manufacture_date,
        };
        warnings.extend(domain::procurement::check_line(&mut f, i, &facts, &input, reception_date, today));
        lines.push(NewLine {
            product: p,
            quantity: l.quantity,
            unit_cost_ht: l.unit_cost_ht,
            tva_rate: l.tva_rate.unwrap_or(1900),
            supplier_lot_number: l.supplier_lot_number.clone().filter(|s| !s.trim().is_empty()),
            dlc: l.dlc,
            manufacture_date: l.manufacture_date,
        });
    }
    f.into_result()?;
    let codes: Vec<String> = lines.iter().map(|l| l.product.code.clone()).collect();
    let new = NewReception {
        supplier_id: supplier.id,
        reception_date,
        supplier_delivery_note: b.supplier_delivery_note.clone().filter(|s| !s.trim().is_empty()),
        supplier_invoice_number: b.supplier_invoice_number.clone().filter(|s| !s.trim().is_empty()),
        lines,
    };
    let actor = id.actor(ctx);
    let (r, created) = db
        .write(|tx| {
            let (new, actor) = (new.clone(), actor.clone());
            Box::pin(async move { store::procurement::create_reception(&**tx, new, &actor, now).await })
        })
        .await
        .map_err(|e| op_err(st, e))?;
    let lines: Vec<_> =
        created.into_iter().zip(codes).map(|((line, lot), code)| (line, code, lot.lot_number, lot.status)).collect();
    Ok((reception_json(&r, &supplier.code, &lines, id.role), warnings))
}

#[utoipa::path(post, path = "/api/receptions", tag = "stock", request_body = ReceptionBody, responses(
    (status = 201, description = "Réception enregistrée : lots créés, avertissements acceptés (DLC_JOUR)"),
    (status = 422, description = "DLC_OBLIGATOIRE, DLC_DEPASSEE, DATE_RECEPTION_INVALIDE, TVA_INVALIDE, QUANTITE_INVALIDE"),
    (status = 409, description = "FOURNISSEUR_INACTIF, PRODUIT_INACTIF")))]
pub async fn create_reception(
    State(st): State<AppState>,
    ctx: Ctx,
    id: Identity,
    ApiJson(b): ApiJson<ReceptionBody>,
) -> Response {
    match receive(&st, &b, &id, &ctx).await {
        Ok((r, w)) => {
            (StatusCode::CREATED, Json(json!({"reception": r, "warnings": warnings_json(&w)}))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn detail(st: &AppState, reference: &str, role: Role) -> Result<Value, ApiError> {
    let (r, supplier, lines) = store::procurement::detail(st.dbmon.db().conn(), reference)
        .await?
        .ok_or_else(|| ApiError::from(Rejection::non_trouve("Réception")))?;
    Ok(reception_json(&r, &supplier, &lines, role))
}

#[utoipa::path(get, path = "/api/receptions/{reference}", tag = "stock", responses((status = 200, description = "Réception"), (status = 404, description = "NON_TROUVE")))]
pub async fn get_reception(State(st): State<AppState>, id: Identity, Path(reference): Path<String>) -> Response {
    detail(&st, &reference, id.role).await.map(Json).into_response()
}

#[utoipa::path(get, path = "/api/receptions", tag = "stock", params(ListQuery), responses((status = 200, description = "Réceptions, les plus récentes d'abord")))]
pub async fn list_receptions(State(st): State<AppState>, id: Identity, Query(q): Query<ListQuery>) -> Response {
    let (page, size) = match (super::admin::PageQuery { page: q.page, page_size: q.page_size }).resolve() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let all = match store::procurement::list(st.dbmon.db()).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let total = all.len() as u64;
    let items: Vec<Value> = all
        .iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .map(|r| {
            let mut v = json!({"reference": r.reference, "receptionDate": r.reception_date, "totalHt": r.total_ht, "totalTtc": r.total_ttc});
            if hides_values(id.role) {
                v.as_object_mut().map(|o| {
                    o.remove("totalHt");
                    o.remove("totalTtc")
                });
            }
            v
        })
        .collect();
    Json(json!({"items": items, "total": total, "page": page, "pageSize": size})).into_response()
}
