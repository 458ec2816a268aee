//! Traceability (DOMAIN.md §9): from a lot, backward to the MP lots, receptions and suppliers it came from, and
//! forward to the orders that consumed it, the PF lots they made and — once deliveries exist (sales issue) — the
//! clients who received them. It only reads links the writes recorded: consumption rows (order → MP lot), the PF
//! lot's source (order), the MP lot's source (reception line).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::StoreError;
use crate::stock::{Lot, Product};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Backward,
    Forward,
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s.trim().to_uppercase().as_str() {
            "BACKWARD" | "AMONT" => Some(Direction::Backward),
            "FORWARD" | "AVAL" => Some(Direction::Forward),
            "BOTH" | "LES_DEUX" => Some(Direction::Both),
            _ => None,
        }
    }
}

async fn product<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Product, StoreError> {
    crate::stock::product(c, id).await?.ok_or_else(|| StoreError::Other(format!("product {id} missing")))
}

fn lot_head(l: &Lot, p: &Product) -> Value {
    json!({
        "lotNumber": l.lot_number, "productCode": p.code, "productName": p.name, "unit": p.base_unit,
        "origin": l.origin, "status": l.status, "blockReason": l.block_reason, "dlc": l.dlc,
        "initialQuantity": l.initial_quantity, "quantityRemaining": l.quantity_remaining,
        "supplierLotNumber": l.supplier_lot_number,
    })
}

/// Where an MP lot came from: its reception and supplier (or its inventory adjustment).
async fn reception_of<C: ConnectionTrait>(c: &C, l: &Lot) -> Result<Value, StoreError> {
    let line = crate::procurement::lines::Entity::find()
        .filter(crate::procurement::lines::Column::LotId.eq(l.id))
        .one(c)
        .await?;
    let Some(line) = line else { return Ok(Value::Null) };
    let Some(r) = crate::procurement::receptions::Entity::find_by_id(line.reception_id).one(c).await? else {
        return Ok(Value::Null);
    };
    let s = crate::catalogue::suppliers::Entity::find_by_id(r.supplier_id).one(c).await?;
    Ok(json!({
        "reference": r.reference, "date": r.reception_date, "supplierDeliveryNote": r.supplier_delivery_note,
        "supplier": s.map(|s| json!({
            "code": s.code, "name": s.raison_sociale, "phone": s.telephone, "address": s.adresse,
        })),
    }))
}

/// BACKWARD from a PF lot: its order, each MP lot consumed with the quantity, and their receptions and suppliers.
async fn backward<C: ConnectionTrait>(c: &C, l: &Lot) -> Result<Value, StoreError> {
    use crate::production::{consumptions, orders};
    if l.origin != "PRODUCTION" {
        return Ok(json!({"reception": reception_of(c, l).await?}));
    }
    let Some(o) = orders::Entity::find().filter(orders::Column::PfLotId.eq(l.id)).one(c).await? else {
        return Ok(Value::Null);
    };
    let version = crate::production::version_by_id(c, o.recipe_version_id).await?;
    let rows = consumptions::Entity::find()
        .filter(consumptions::Column::ProductionOrderId.eq(o.id))
        .order_by_asc(consumptions::Column::CreatedAt)
        .order_by_asc(consumptions::Column::Id)
        .all(c)
        .await?;
    let mut inputs = Vec::new();
    for r in rows {
        let Some(mp_lot) = crate::stock::lots::Entity::find_by_id(r.lot_id).one(c).await? else { continue };
        let p = product(c, mp_lot.product_id).await?;
        let mut v = lot_head(&mp_lot, &p);
        v["quantityConsumed"] = json!(r.quantity);
        v["reception"] = reception_of(c, &mp_lot).await?;
        inputs.push(v);
    }
    Ok(json!({
        "order": {
            "reference": o.reference, "plannedDate": o.planned_date, "startedAt": o.started_at,
            "completionDate": o.completion_date, "recipeVersion": version.map(|v| v.version),
            "quantityProduced": o.quantity_produced,
        },
        "inputs": inputs,
    }))
}

/// FORWARD from a lot: the orders that consumed it (net of cancellations, which delete nothing but leave the order
/// CANCELLED), the PF lots they made and the BLs that shipped each of them (client, quantity).
async fn forward<C: ConnectionTrait>(c: &C, l: &Lot) -> Result<Value, StoreError> {
    use crate::production::{consumptions, orders};
    let rows = consumptions::Entity::find()
        .filter(consumptions::Column::LotId.eq(l.id))
        .order_by_asc(consumptions::Column::CreatedAt)
        .all(c)
        .await?;
    let mut used_by = Vec::new();
    for r in rows {
        let Some(o) = orders::Entity::find_by_id(r.production_order_id).one(c).await? else { continue };
        let pf_lot = match o.pf_lot_id {
            Some(id) => crate::stock::lots::Entity::find_by_id(id).one(c).await?,
            None => None,
        };
        let pf_lot = match pf_lot {
            Some(pl) => {
                let p = product(c, pl.product_id).await?;
                let mut v = lot_head(&pl, &p);
                v["deliveries"] = shipments_json(&crate::delivery::shipped_from(c, &[pl.id]).await?);
                v
            }
            None => Value::Null,
        };
        used_by.push(json!({
            "order": {"reference": o.reference, "status": o.status, "completionDate": o.completion_date},
            "quantityConsumed": r.quantity, "pfLot": pf_lot,
        }));
    }
    let deliveries = shipments_json(&crate::delivery::shipped_from(c, &[l.id]).await?);
    Ok(json!({"usedBy": used_by, "deliveries": deliveries}))
}

/// Shipments as the trace and the recall report show them.
pub fn shipments_json(rows: &[crate::delivery::Shipment]) -> Value {
    json!(rows.iter().map(|s| json!({
        "lotNumber": s.lot_number, "delivery": s.delivery, "status": s.status, "clientCode": s.client_code,
        "clientName": s.client_name, "telephone": s.telephone, "quantity": s.quantity, "validatedAt": s.validated_at,
    })).collect::<Vec<_>>())
}

/// The trace of one lot; `None` when the lot number is unknown.
pub async fn trace<C: ConnectionTrait>(c: &C, lot_number: &str, d: Direction) -> Result<Option<Value>, StoreError> {
    let Some(l) = crate::stock::lot_by_number(c, lot_number.trim()).await? else { return Ok(None) };
    let p = product(c, l.product_id).await?;
    let mut out = json!({"lot": lot_head(&l, &p)});
    if matches!(d, Direction::Backward | Direction::Both) {
        out["backward"] = backward(c, &l).await?;
    }
    if matches!(d, Direction::Forward | Direction::Both) {
        out["forward"] = forward(c, &l).await?;
    }
    Ok(Some(out))
}

/// One lot of a recall report and where its quantity went.
#[derive(Debug, Clone)]
pub struct RecallLot {
    pub lot: Lot,
    pub product: Product,
    pub balance: domain::stock::LotBalance,
}

/// The recall report of a lot (§9): the lot itself and, for an MP lot, every PF lot made from it, each with its
/// balance (the clients to call and the returns: `delivery::shipped_from`, `delivery::returns_of`).
pub async fn recall<C: ConnectionTrait>(c: &C, lot_number: &str) -> Result<Option<Vec<RecallLot>>, StoreError> {
    use crate::production::{consumptions, orders};
    let Some(origin) = crate::stock::lot_by_number(c, lot_number.trim()).await? else { return Ok(None) };
    let mut lots = vec![origin.clone()];
    let rows = consumptions::Entity::find().filter(consumptions::Column::LotId.eq(origin.id)).all(c).await?;
    for r in rows {
        let Some(o) = orders::Entity::find_by_id(r.production_order_id).one(c).await? else { continue };
        if let Some(id) = o.pf_lot_id
            && !lots.iter().any(|l| l.id == id)
            && let Some(l) = crate::stock::lots::Entity::find_by_id(id).one(c).await?
        {
            lots.push(l);
        }
    }
    let mut out = Vec::new();
    for l in lots {
        let sums = c
            .query_all_raw(crate::stock::stmt(
                c.get_database_backend(),
                "SELECT origin, direction, CAST(SUM(quantity) AS BIGINT) AS n FROM stock_movements \
                 WHERE lot_id = $1 GROUP BY origin, direction",
                vec![l.id.into()],
            ))
            .await?;
        let mut b = domain::stock::LotBalance {
            initial: l.initial_quantity,
            remaining: l.quantity_remaining,
            ..Default::default()
        };
        for r in sums {
            let (origin, direction, n): (String, String, i64) =
                (r.try_get("", "origin")?, r.try_get("", "direction")?, r.try_get("", "n")?);
            match (origin.as_str(), direction.as_str()) {
                ("PRODUCTION_OUT", _) => b.used_in_production += n,
                ("PRODUCTION_CANCEL", _) => b.used_in_production -= n,
                ("SALE", _) => b.delivered += n,
                ("LOSS", _) => b.lost += n,
                ("INVENTORY_ADJUST", "OUT") => b.adjusted += n,
                ("INVENTORY_ADJUST", "IN") => b.adjusted -= n,
                _ => {}
            }
        }
        let product = product(c, l.product_id).await?;
        out.push(RecallLot { lot: l, product, balance: b });
    }
    Ok(Some(out))
}

/// "Bloquer tous" (§9, ADMIN): every lot of the report with something left and not yet blocked is blocked MANUAL with
/// the recall note, in one transaction. Returns the lot numbers blocked.
pub async fn block_recall<C: ConnectionTrait>(
    c: &C,
    lot_number: &str,
    note: &str,
    actor: &crate::audit::Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, crate::error::OpError> {
    domain::validation::reason(note, 10)?;
    let lots = recall(c, lot_number).await?.ok_or_else(|| domain::rejection::Rejection::non_trouve("Lot"))?;
    let mut blocked = Vec::new();
    for r in lots
        .iter()
        .filter(|r| r.lot.quantity_remaining > 0 && matches!(r.lot.status.as_str(), "AVAILABLE" | "QUARANTINE"))
    {
        let n = note.to_string();
        crate::stock::change_status(
            c,
            &r.lot.lot_number,
            "LOT_BLOCKED",
            note,
            move |f| domain::stock::block(f, &n),
            actor,
            now,
        )
        .await?;
        blocked.push(r.lot.lot_number.clone());
    }
    Ok(blocked)
}
