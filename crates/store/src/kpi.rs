//! Stock KPIs (DOMAIN.md §17): read from the lots, the ledger and the counts at the moment of asking, never from
//! cached counters. The rules (appro status, buckets, score) are `domain::kpi`'s.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::kpi::{ApproStatus, HealthBand, HealthInputs, MpSupply};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::error::StoreError;
use crate::stock::{Lot, Product, lot_facts, lots, products, stmt};

/// Quantity and value of a group of lots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: i64,
    pub value: i64,
}

impl Tally {
    fn add(&mut self, value: i64) {
        self.count += 1;
        self.value += value;
    }
}

/// One MP or PF whose supply needs attention.
#[derive(Debug, Clone)]
pub struct Watch {
    pub code: String,
    pub name: String,
    pub base_unit: String,
    pub status: ApproStatus,
    pub bloquante: bool,
    pub stock_disponible: i64,
}

#[derive(Debug, Clone)]
pub struct StockDashboard {
    pub today: NaiveDate,
    pub score: i64,
    pub band: HealthBand,
    pub inputs: HealthInputs,
    /// Stock value at lot cost: `[MP, PF]` × `[usable, QUARANTINE, blocked or expired]`.
    pub value: [[i64; 3]; 2],
    /// Lots à échéance per bucket J0, J+1, J+2–3, J+4–7 (AVAILABLE or QUARANTINE, something left).
    pub echeances: [Tally; 4],
    /// BLOCKED(EXPIRED) lots with something left: to write off.
    pub expired: Tally,
    /// MPs not OK and PFs in rupture, worst first.
    pub watch: Vec<Watch>,
}

/// Σ PRODUCTION_OUT − Σ PRODUCTION_CANCEL per MP over [today − 30, today − 1] (§7.1).
pub(crate) async fn consumption_30<C: ConnectionTrait>(
    c: &C,
    today: NaiveDate,
) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let sql = "SELECT product_id, CAST(SUM(CASE WHEN origin = 'PRODUCTION_OUT' THEN quantity ELSE -quantity END) \
               AS BIGINT) AS qty FROM stock_movements WHERE origin IN ('PRODUCTION_OUT', 'PRODUCTION_CANCEL') \
               AND business_date >= $1 AND business_date <= $2 GROUP BY product_id";
    let from = today - Duration::days(30);
    let to = today - Duration::days(1);
    let rows = c.query_all_raw(stmt(c.get_database_backend(), sql, vec![from.into(), to.into()])).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<Uuid>("", "product_id")?, r.try_get::<i64>("", "qty")?)))
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()
        .map_err(StoreError::from)
}

/// The dashboard of `kinds` (`["MP", "PF"]`, or `["PF"]` for COMMERCIAL) at `now`.
pub async fn stock_dashboard<C: ConnectionTrait>(
    c: &C,
    kinds: &[&str],
    now: DateTime<Utc>,
) -> Result<StockDashboard, StoreError> {
    let today = domain::stock::today_algiers(now);
    let products: Vec<Product> =
        products::Entity::find().filter(products::Column::Kind.is_in(kinds.to_vec())).all(c).await?;
    let alive: Vec<Lot> = lots::Entity::find()
        .filter(lots::Column::QuantityRemaining.gt(0))
        .filter(lots::Column::ProductId.is_in(products.iter().map(|p| p.id).collect::<Vec<_>>()))
        .all(c)
        .await?;
    let consumption = if kinds.contains(&"MP") { consumption_30(c, today).await? } else { Vec::new() };
    let uses = if kinds.contains(&"MP") { crate::appro::recipe_uses(c).await? } else { Default::default() };
    let mut d = StockDashboard {
        today,
        score: 100,
        band: HealthBand::Excellent,
        inputs: HealthInputs::default(),
        value: [[0; 3]; 2],
        echeances: [Tally::default(); 4],
        expired: Tally::default(),
        watch: Vec::new(),
    };
    let mut usable_of: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::new();
    for l in &alive {
        let Some(p) = products.iter().find(|p| p.id == l.product_id) else { continue };
        let facts = lot_facts(l);
        let value = domain::money::amount(l.quantity_remaining, l.unit_cost).unwrap_or(0);
        let kind = usize::from(p.kind == "PF");
        let usable = facts.usable(today);
        let column = if usable {
            0
        } else if l.status == "QUARANTINE" {
            1
        } else {
            2
        };
        d.value[kind][column] += value;
        if usable {
            *usable_of.entry(p.id).or_default() += l.quantity_remaining;
            if l.dlc.is_some_and(|dlc| dlc <= today + Duration::days(3)) {
                d.inputs.x += 1;
            }
        }
        if matches!(l.status.as_str(), "AVAILABLE" | "QUARANTINE")
            && let Some(b) = l.dlc.and_then(|dlc| domain::kpi::echeance_bucket(dlc, today))
        {
            d.echeances[b].add(value);
        }
        if l.status == "BLOCKED" && l.block_reason.as_deref() == Some("EXPIRED") {
            d.expired.add(value);
        }
    }
    d.inputs.e = d.expired.count;
    let committed =
        if kinds.contains(&"PF") { crate::sales::committed_by_product(c).await? } else { Default::default() };
    for p in products.iter().filter(|p| p.active && p.stock_tracked) {
        let stock = usable_of.get(&p.id).copied().unwrap_or(0);
        let (status, bloquante) = if p.kind == "MP" {
            let m = MpSupply {
                stock_disponible: stock,
                safety_threshold: p.safety_threshold,
                reorder_threshold: p.reorder_threshold,
                consumption_30: consumption.iter().find(|(id, _)| *id == p.id).map_or(0, |x| x.1),
                lead_time_days: i64::from(p.lead_time_days),
            };
            let bloquante = domain::kpi::bloquante(p.criticite.as_deref(), uses.get(&p.id).copied().unwrap_or(0));
            (domain::kpi::appro_status(&m), bloquante)
        } else if p.min_stock > 0 && stock - committed.get(&p.id).copied().unwrap_or(0) <= 0 {
            // §17: a PF is in rupture when its available-to-promise (disponible − committed to invoices) is ≤ 0.
            (ApproStatus::Rupture, false)
        } else {
            continue;
        };
        match (p.kind.as_str(), status) {
            ("MP", ApproStatus::Rupture) if bloquante => d.inputs.b += 1,
            ("MP", ApproStatus::Rupture) => d.inputs.r += 1,
            ("MP", ApproStatus::Critique) => d.inputs.c += 1,
            ("PF", ApproStatus::Rupture) => d.inputs.p += 1,
            (_, ApproStatus::Ok) => continue,
            _ => {}
        }
        d.watch.push(Watch {
            code: p.code.clone(),
            name: p.name.clone(),
            base_unit: p.base_unit.clone(),
            status,
            bloquante,
            stock_disponible: stock,
        });
    }
    d.watch.sort_by_key(|w| (w.status as u8, !w.bloquante, w.code.clone()));
    d.inputs.i = crate::inventory::counts::Entity::find()
        .filter(crate::inventory::counts::Column::Status.is_in(["PENDING", "PENDING_DOUBLE"]))
        .count(c)
        .await? as i64;
    (d.score, d.band) = domain::kpi::health_score(&d.inputs);
    Ok(d)
}

/// A lot on the DLC screen with its product.
#[derive(Debug, Clone)]
pub struct DueLot {
    pub lot: Lot,
    pub product_code: String,
    pub product_kind: String,
    pub base_unit: String,
    pub value: i64,
    /// `0..4` for J0, J+1, J+2–3, J+4–7; `None` for an expired lot to write off.
    pub bucket: Option<usize>,
}

/// The DLC screen (UI.md row 34): lots due within 7 days (AVAILABLE or QUARANTINE) by DLC, then BLOCKED(EXPIRED)
/// lots with something left, oldest DLC first.
pub async fn due_lots<C: ConnectionTrait>(
    c: &C,
    kinds: &[&str],
    now: DateTime<Utc>,
) -> Result<Vec<DueLot>, StoreError> {
    let today = domain::stock::today_algiers(now);
    let products: Vec<Product> =
        products::Entity::find().filter(products::Column::Kind.is_in(kinds.to_vec())).all(c).await?;
    let lots: Vec<Lot> = lots::Entity::find()
        .filter(lots::Column::QuantityRemaining.gt(0))
        .filter(lots::Column::Status.is_in(["AVAILABLE", "QUARANTINE", "BLOCKED"]))
        .filter(lots::Column::Dlc.lte(today + Duration::days(7)))
        .filter(lots::Column::ProductId.is_in(products.iter().map(|p| p.id).collect::<Vec<_>>()))
        .all(c)
        .await?;
    let mut out: Vec<DueLot> = lots
        .into_iter()
        .filter_map(|l| {
            let p = products.iter().find(|p| p.id == l.product_id)?;
            let expired = l.status == "BLOCKED" && l.block_reason.as_deref() == Some("EXPIRED");
            let bucket = if expired {
                None
            } else if matches!(l.status.as_str(), "AVAILABLE" | "QUARANTINE") {
                Some(domain::kpi::echeance_bucket(l.dlc?, today)?)
            } else {
                return None;
            };
            Some(DueLot {
                value: domain::money::amount(l.quantity_remaining, l.unit_cost).unwrap_or(0),
                product_code: p.code.clone(),
                product_kind: p.kind.clone(),
                base_unit: p.base_unit.clone(),
                bucket,
                lot: l,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.bucket.is_none(), a.lot.dlc, &a.lot.lot_number).cmp(&(b.bucket.is_none(), b.lot.dlc, &b.lot.lot_number))
    });
    Ok(out)
}

/// The sales dashboard (DOMAIN.md §17), computed from the documents at request time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesKpis {
    /// Σ HT of invoices validated today − Σ HT of credit notes validated today.
    pub ca_ht: i64,
    pub invoices_today: i64,
    /// Active payments dated today − refunds dated today, per method (ESPECES, CHEQUE, VIREMENT).
    pub collected: [i64; 3],
    pub aging: crate::sales::Aging,
    pub drafts: i64,
    /// BLs prepared (PENDING) and validated but not yet delivered.
    pub bl_pending: i64,
    pub bl_on_the_road: i64,
    /// HT per day over the last 30 days (today included), oldest first.
    pub daily_ht: Vec<(NaiveDate, i64)>,
}

async fn scalar<C: ConnectionTrait>(c: &C, sql: &str, values: Vec<sea_orm::Value>) -> Result<i64, StoreError> {
    let row = c.query_one_raw(stmt(c.get_database_backend(), sql, values)).await?;
    Ok(row.map(|r| r.try_get::<Option<i64>>("", "n")).transpose()?.flatten().unwrap_or(0))
}

pub async fn sales_kpis<C: ConnectionTrait>(c: &C, today: NaiveDate) -> Result<SalesKpis, StoreError> {
    let from = today - Duration::days(29);
    let mut k = SalesKpis { aging: crate::sales::aging(c, None, today).await?, ..Default::default() };
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT invoice_date AS d, CAST(SUM(total_ht) AS BIGINT) AS n, CAST(COUNT(*) AS BIGINT) AS k FROM invoices \
             WHERE status <> 'DRAFT' AND invoice_date >= $1 AND invoice_date <= $2 GROUP BY invoice_date",
            vec![from.into(), today.into()],
        ))
        .await?;
    let mut by_day: std::collections::BTreeMap<NaiveDate, i64> =
        (0..30).map(|i| (from + Duration::days(i), 0)).collect();
    for r in rows {
        let d: NaiveDate = r.try_get("", "d")?;
        *by_day.entry(d).or_default() += r.try_get::<i64>("", "n")?;
        if d == today {
            k.invoices_today = r.try_get("", "k")?;
        }
    }
    let credits = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT credit_date AS d, CAST(SUM(total_ht) AS BIGINT) AS n FROM credit_notes \
             WHERE status = 'VALIDATED' AND credit_date >= $1 AND credit_date <= $2 GROUP BY credit_date",
            vec![from.into(), today.into()],
        ))
        .await?;
    for r in credits {
        *by_day.entry(r.try_get("", "d")?).or_default() -= r.try_get::<i64>("", "n")?;
    }
    k.ca_ht = by_day.get(&today).copied().unwrap_or(0);
    k.daily_ht = by_day.into_iter().collect();
    for (i, m) in ["ESPECES", "CHEQUE", "VIREMENT"].iter().enumerate() {
        let sum = |kind: &str| {
            scalar(
                c,
                "SELECT CAST(SUM(amount) AS BIGINT) AS n FROM payments WHERE status = 'ACTIVE' AND kind = $1 \
                 AND method = $2 AND payment_date = $3",
                vec![kind.into(), (*m).into(), today.into()],
            )
        };
        k.collected[i] = sum("REGLEMENT").await? - sum("REMBOURSEMENT").await?;
    }
    k.drafts = scalar(c, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM invoices WHERE status = 'DRAFT'", vec![]).await?;
    k.bl_pending =
        scalar(c, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM deliveries WHERE status = 'PENDING'", vec![]).await?;
    k.bl_on_the_road =
        scalar(c, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM deliveries WHERE status = 'VALIDATED'", vec![]).await?;
    Ok(k)
}

/// Rows of a table (the demo seed refuses a database that already holds business documents).
pub async fn count_rows<C: ConnectionTrait>(c: &C, table: &str) -> Result<i64, StoreError> {
    let allowed = ["invoices", "receptions", "production_orders"];
    if !allowed.contains(&table) {
        return Err(StoreError::Other(format!("count_rows: table {table} not allowed")));
    }
    scalar(c, &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"), vec![]).await
}
