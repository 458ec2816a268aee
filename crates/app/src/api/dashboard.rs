//! Stock dashboard and DLC screen (DOMAIN.md §17, UI.md rows 29 and 34): computed from the lots and the ledger at
//! the moment of asking. COMMERCIAL sees PF only; values are shown to ADMIN and COMPTABLE, and to APPRO for MP.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use domain::identity::Role;
use serde_json::{Value, json};

use crate::auth::Identity;
use crate::platform::errors::ApiError;
use crate::state::AppState;

/// The product kinds a role reads on stock screens.
pub fn kinds_for(role: Role) -> &'static [&'static str] {
    if role == Role::Commercial { &["PF"] } else { &["MP", "PF"] }
}

/// Whether a role sees stock values of a product kind (§17 "Valeur du stock": ADMIN, COMPTABLE; APPRO for MP).
pub fn sees_value(role: Role, kind: &str) -> bool {
    matches!(role, Role::Admin | Role::Comptable) || (role == Role::Appro && kind == "MP")
}

pub fn dashboard_json(d: &store::kpi::StockDashboard, role: Role) -> Value {
    let tally = |t: &store::kpi::Tally, kind_visible: bool| {
        if kind_visible { json!({"count": t.count, "value": t.value}) } else { json!({"count": t.count}) }
    };
    let all_values = sees_value(role, "PF");
    let mut v = json!({
        "date": d.today,
        "healthScore": d.score,
        "band": d.band.code(),
        "bandLabel": d.band.label_fr(),
        "terms": {"ruptureBloquante": d.inputs.b, "ruptureMp": d.inputs.r, "rupturePf": d.inputs.p,
                  "perimesNonSortis": d.inputs.e, "critiques": d.inputs.c, "dlcProches": d.inputs.x,
                  "comptagesEnAttente": d.inputs.i},
        "echeances": domain::kpi::ECHEANCE_LABELS.iter().zip(&d.echeances)
            .map(|(label, t)| { let mut x = tally(t, all_values); x["bucket"] = json!(label); x })
            .collect::<Vec<_>>(),
        "perimesASortir": tally(&d.expired, all_values),
        "watch": d.watch.iter().map(|w| json!({"productCode": w.code, "name": w.name, "status": w.status.code(),
            "bloquante": w.bloquante, "stockDisponible": w.stock_disponible, "baseUnit": w.base_unit})).collect::<Vec<_>>(),
    });
    let split = |row: &[i64; 3]| json!({"utilisable": row[0], "quarantaine": row[1], "bloque": row[2]});
    if sees_value(role, "MP") {
        v["valeur"] = json!({"mp": split(&d.value[0])});
    }
    if all_values {
        v["valeur"]["pf"] = split(&d.value[1]);
    }
    v
}

/// Stock health: score and band, ruptures, lots à échéance, expired lots to write off, stock value.
#[utoipa::path(get, path = "/api/stock/dashboard", tag = "stock", responses((status = 200, description = "Santé du stock")))]
pub async fn stock_dashboard(State(st): State<AppState>, id: Identity) -> Response {
    match store::kpi::stock_dashboard(st.dbmon.db().conn(), kinds_for(id.role), st.clock.now()).await {
        Ok(d) => Json(dashboard_json(&d, id.role)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Lots due within 7 days (bucket J0, J+1, J+2–3, J+4–7) and expired lots to write off (`bucket` null).
#[utoipa::path(get, path = "/api/stock/echeances", tag = "stock", responses((status = 200, description = "Échéances DLC")))]
pub async fn echeances(State(st): State<AppState>, id: Identity) -> Response {
    match store::kpi::due_lots(st.dbmon.db().conn(), kinds_for(id.role), st.clock.now()).await {
        Ok(lots) => {
            let items: Vec<Value> = lots
                .iter()
                .map(|d| {
                    let mut v = json!({"lotNumber": d.lot.lot_number, "productCode": d.product_code,
                        "dlc": d.lot.dlc, "status": d.lot.status, "blockReason": d.lot.block_reason,
                        "quantityRemaining": d.lot.quantity_remaining,
                        "bucket": d.bucket.map(|b| domain::kpi::ECHEANCE_LABELS[b])});
                    if sees_value(id.role, &d.product_kind) {
                        v["value"] = json!(d.value);
                    }
                    v
                })
                .collect();
            Json(json!({"items": items, "total": items.len()})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
