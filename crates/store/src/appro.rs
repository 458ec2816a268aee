//! The supply cockpit (DOMAIN.md §7): per-MP metrics read from the ledger, open orders and active recipes at the
//! moment of asking, and the hourly scan that raises, refreshes, closes and reopens the MP alerts. The rules
//! (status, coverage, suggestion, priority, risk) are `domain::kpi`'s.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::kpi::{ApproStatus, MpSupply};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::error::StoreError;
use crate::stock::{Product, products, stmt};

/// One active, stock-tracked MP as the cockpit shows it.
#[derive(Debug, Clone)]
pub struct MpLine {
    pub product: Product,
    pub stock_disponible: i64,
    pub consumption_30: i64,
    pub open_order_qty: i64,
    pub recipe_uses: i64,
    pub bloquante: bool,
    pub status: ApproStatus,
    pub coverage_tenths: Option<i64>,
    pub suggestion: Option<i64>,
    pub priority: Option<&'static str>,
    /// Main supplier `(code, name)`, else the supplier of the last reception.
    pub supplier: Option<(String, String)>,
    /// The last reception's unit cost and TVA rate (the draft order's starting price).
    pub last_cost: Option<(i64, i32)>,
}

/// Per MP, the supplier, unit cost and TVA of its most recent reception line.
async fn last_receptions<C: ConnectionTrait>(c: &C) -> Result<HashMap<Uuid, (Uuid, i64, i32)>, StoreError> {
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT l.product_id AS product_id, r.supplier_id AS supplier_id, l.unit_cost_ht AS cost, \
             l.tva_rate AS tva FROM reception_lines l JOIN receptions r ON r.id = l.reception_id \
             ORDER BY r.reception_date, r.created_at",
            Vec::new(),
        ))
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        // Oldest first: the last one written for a product wins.
        out.insert(
            r.try_get::<Uuid>("", "product_id")?,
            (r.try_get::<Uuid>("", "supplier_id")?, r.try_get::<i64>("", "cost")?, r.try_get::<i32>("", "tva")?),
        );
    }
    Ok(out)
}

async fn grouped<C: ConnectionTrait>(
    c: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<HashMap<Uuid, i64>, StoreError> {
    let rows = c.query_all_raw(stmt(c.get_database_backend(), sql, values)).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<Uuid>("", "product_id")?, r.try_get::<i64>("", "n")?)))
        .collect::<Result<HashMap<_, _>, sea_orm::DbErr>>()
        .map_err(StoreError::from)
}

/// Usable stock per product (AVAILABLE, within DLC, something left).
pub(crate) async fn usable_by_product<C: ConnectionTrait>(
    c: &C,
    today: NaiveDate,
) -> Result<HashMap<Uuid, i64>, StoreError> {
    grouped(
        c,
        "SELECT product_id, CAST(SUM(quantity_remaining) AS BIGINT) AS n FROM lots WHERE status = 'AVAILABLE' \
         AND quantity_remaining > 0 AND (dlc IS NULL OR dlc >= $1) GROUP BY product_id",
        vec![today.into()],
    )
    .await
}

/// §7.1: how many active recipe versions of active PFs use each MP.
pub async fn recipe_uses<C: ConnectionTrait>(c: &C) -> Result<HashMap<Uuid, i64>, StoreError> {
    grouped(
        c,
        "SELECT i.product_id AS product_id, CAST(COUNT(DISTINCT v.id) AS BIGINT) AS n FROM recipe_items i \
         JOIN recipe_versions v ON v.id = i.recipe_version_id JOIN products p ON p.id = v.product_id \
         WHERE v.status = 'ACTIVE' AND p.active = $1 AND i.product_id IS NOT NULL GROUP BY i.product_id",
        vec![true.into()],
    )
    .await
}

/// §7.1 open_order_qty: what SENT, CONFIRMED and PARTIAL orders still owe, per MP.
async fn on_order<C: ConnectionTrait>(c: &C) -> Result<HashMap<Uuid, i64>, StoreError> {
    grouped(
        c,
        "SELECT l.product_id AS product_id, CAST(SUM(CASE WHEN l.quantity_ordered > l.quantity_received \
         THEN l.quantity_ordered - l.quantity_received ELSE 0 END) AS BIGINT) AS n FROM purchase_order_lines l \
         JOIN purchase_orders o ON o.id = l.purchase_order_id WHERE o.status IN ('SENT', 'CONFIRMED', 'PARTIAL') \
         GROUP BY l.product_id",
        Vec::new(),
    )
    .await
}

/// Every active, stock-tracked MP with its metrics, the worst first (status, bloquante, code).
pub async fn metrics<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Vec<MpLine>, StoreError> {
    let today = domain::stock::today_algiers(now);
    let mps = products::Entity::find()
        .filter(products::Column::Kind.eq("MP"))
        .filter(products::Column::Active.eq(true))
        .filter(products::Column::StockTracked.eq(true))
        .all(c)
        .await?;
    let usable = usable_by_product(c, today).await?;
    let consumption: HashMap<Uuid, i64> = crate::kpi::consumption_30(c, today).await?.into_iter().collect();
    let ordered = on_order(c).await?;
    let uses = recipe_uses(c).await?;
    let last = last_receptions(c).await?;
    let suppliers: HashMap<Uuid, (String, String)> = crate::catalogue::suppliers::Entity::find()
        .all(c)
        .await?
        .into_iter()
        .map(|s| (s.id, (s.code, s.raison_sociale)))
        .collect();
    let mut out: Vec<MpLine> = mps
        .into_iter()
        .map(|p| {
            let m = MpSupply {
                stock_disponible: usable.get(&p.id).copied().unwrap_or(0),
                safety_threshold: p.safety_threshold,
                reorder_threshold: p.reorder_threshold,
                consumption_30: consumption.get(&p.id).copied().unwrap_or(0).max(0),
                lead_time_days: i64::from(p.lead_time_days),
            };
            let open = ordered.get(&p.id).copied().unwrap_or(0);
            let recipe_uses = uses.get(&p.id).copied().unwrap_or(0);
            let bloquante = domain::kpi::bloquante(p.criticite.as_deref(), recipe_uses);
            let status = domain::kpi::appro_status(&m);
            MpLine {
                supplier: p
                    .main_supplier_id
                    .or_else(|| last.get(&p.id).map(|l| l.0))
                    .and_then(|s| suppliers.get(&s).cloned()),
                last_cost: last.get(&p.id).map(|l| (l.1, l.2)),
                stock_disponible: m.stock_disponible,
                consumption_30: m.consumption_30,
                open_order_qty: open,
                recipe_uses,
                bloquante,
                status,
                coverage_tenths: domain::kpi::coverage_tenths(m.stock_disponible, m.consumption_30),
                suggestion: domain::kpi::suggestion(&m, open),
                priority: domain::kpi::priority(status, bloquante),
                product: p,
            }
        })
        .collect();
    out.sort_by_key(|l| (l.status as u8, !l.bloquante, l.product.code.clone()));
    Ok(out)
}

/// The risk index of a set of lines: (value, level, B, R, C).
pub fn risk(lines: &[MpLine]) -> (i64, &'static str, i64, i64, i64) {
    let count = |f: &dyn Fn(&MpLine) -> bool| lines.iter().filter(|l| f(l)).count() as i64;
    let b = count(&|l| l.status == ApproStatus::Rupture && l.bloquante);
    let r = count(&|l| l.status == ApproStatus::Rupture && !l.bloquante);
    let cr = count(&|l| l.status == ApproStatus::Critique);
    let (v, level) = domain::kpi::risk_index(b, r, cr);
    (v, level, b, r, cr)
}

fn qty(milli: i64, unit: &str) -> String {
    domain::stock::fmt_qty(milli, domain::stock::Unit::parse(unit).unwrap_or(domain::stock::Unit::Kg))
}

/// The alert message of a line (French, as the banner shows it).
pub fn message(l: &MpLine) -> String {
    let p = &l.product;
    let who = format!("{} ({})", p.name, p.code);
    match l.status {
        ApproStatus::Rupture if l.bloquante => format!("{who} : rupture — bloque la production."),
        ApproStatus::Rupture => format!("{who} : rupture de stock."),
        ApproStatus::Critique => match l.coverage_tenths {
            Some(t) if t < i64::from(p.lead_time_days) * 10 => {
                format!("{who} : couverture {},{} j < délai {} j — critique.", t / 10, t % 10, p.lead_time_days)
            }
            _ => format!(
                "{who} : stock {} sous le seuil de sécurité {} — critique.",
                qty(l.stock_disponible, &p.base_unit),
                qty(p.safety_threshold, &p.base_unit)
            ),
        },
        ApproStatus::ACommander => format!(
            "{who} : stock {} sous le seuil de commande {}.",
            qty(l.stock_disponible, &p.base_unit),
            qty(p.reorder_threshold, &p.base_unit)
        ),
        ApproStatus::Ok => who,
    }
}

/// The hourly scan (§7.2, §7.3): one alert per MP for its status, refreshed on each run; alerts whose condition is
/// gone are closed; postponed alerts whose end has come reopen. Returns how many alerts are new.
pub async fn scan<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let lines = metrics(c, now).await?;
    let mut still: HashMap<&'static str, Vec<String>> = HashMap::new();
    let mut new = 0;
    for l in &lines {
        let Some((alert_type, severity)) = domain::kpi::mp_alert(l.status, l.bloquante) else { continue };
        still.entry(alert_type).or_default().push(l.product.code.clone());
        let raised = crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type,
                severity,
                entity_type: "product",
                entity_id: &l.product.code,
                message: message(l),
                data: json!({
                    "stockDisponible": l.stock_disponible, "consumption30": l.consumption_30,
                    "openOrderQty": l.open_order_qty, "coverageTenths": l.coverage_tenths,
                    "suggestion": l.suggestion, "bloquante": l.bloquante,
                }),
            },
            now,
        )
        .await?;
        new += usize::from(raised);
    }
    for t in domain::kpi::MP_ALERTS {
        crate::alerts::close_except(c, t, still.get(t).map(Vec::as_slice).unwrap_or(&[]), now).await?;
    }
    crate::alerts::reopen_due(c, now).await?;
    Ok(new)
}
