//! Recipes and production orders (DOMAIN.md §8). A recipe save writes a new immutable version and archives the
//! active one; an order freezes the version it was created with. Starting an order consumes every stock item FEFO
//! in the caller's transaction — all of it, or nothing with the full shortage list; completing it creates the PF lot;
//! cancelling an order in progress puts each consumed quantity back into the very lot it came from.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::production::{ItemKind, OpStatus, QcStatus};
use domain::rejection::Rejection;
use domain::stock::LotStatus;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};
use crate::stock::{Mover, Product, Source, columns_of, stmt};

pub mod versions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recipe_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub product_id: Uuid,
        pub version: i32,
        pub status: String,
        pub output_quantity: i64,
        pub batch_weight_g: i64,
        pub loss_tolerance_bp: i32,
        pub shelf_life_override_days: Option<i32>,
        pub notes: Option<String>,
        pub created_by: Option<Uuid>,
        pub created_at: ChronoDateTimeUtc,
        pub archived_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod items {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recipe_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub recipe_version_id: Uuid,
        pub line_no: i32,
        pub kind: String,
        pub product_id: Option<Uuid>,
        pub fluid_name: Option<String>,
        pub unit_label: Option<String>,
        pub quantity: i64,
        pub unit_cost: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod orders {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "production_orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reference: String,
        pub product_id: Uuid,
        pub recipe_version_id: Uuid,
        pub status: String,
        pub batch_count: i32,
        pub target_quantity: i64,
        pub planned_date: ChronoDate,
        pub notes: Option<String>,
        pub started_at: Option<ChronoDateTimeUtc>,
        pub started_by: Option<Uuid>,
        pub completed_at: Option<ChronoDateTimeUtc>,
        pub completed_by: Option<Uuid>,
        pub completion_date: Option<ChronoDate>,
        pub quantity_produced: Option<i64>,
        pub qc_status: Option<String>,
        pub qc_note: Option<String>,
        pub actual_batch_weight_g: Option<i64>,
        pub pf_lot_id: Option<Uuid>,
        pub consumed_cost: Option<i64>,
        pub fluid_cost: Option<i64>,
        pub unit_cost: Option<i64>,
        pub yield_bp: Option<i32>,
        pub cancel_reason: Option<String>,
        pub cancelled_at: Option<ChronoDateTimeUtc>,
        pub created_by: Option<Uuid>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod consumptions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "production_consumptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub production_order_id: Uuid,
        pub recipe_item_id: Uuid,
        pub lot_id: Uuid,
        pub product_id: Uuid,
        pub quantity: i64,
        pub unit_cost: i64,
        pub movement_id: Uuid,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Version = versions::Model;
pub type Item = items::Model;
pub type Order = orders::Model;
pub type Consumption = consumptions::Model;

/// A checked recipe item: a stock item with its product, or a fluid.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub kind: ItemKind,
    pub product: Option<Product>,
    pub fluid_name: Option<String>,
    pub unit_label: Option<String>,
    pub quantity: i64,
    pub unit_cost: Option<i64>,
}

/// A checked recipe version (the caller ran `domain::production::check_recipe` and the item checks).
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub output_quantity: i64,
    pub batch_weight_g: i64,
    pub loss_tolerance_bp: i64,
    pub shelf_life_override_days: Option<i64>,
    pub notes: Option<String>,
    pub items: Vec<NewItem>,
}

pub fn status_of(o: &Order) -> OpStatus {
    OpStatus::parse(&o.status).unwrap_or(OpStatus::Pending)
}

fn lock_clause(c: &impl ConnectionTrait) -> &'static str {
    if c.get_database_backend() == sea_orm::DbBackend::Postgres { " FOR UPDATE" } else { "" }
}

pub async fn active_version<C: ConnectionTrait>(c: &C, product_id: Uuid) -> Result<Option<Version>, StoreError> {
    Ok(versions::Entity::find()
        .filter(versions::Column::ProductId.eq(product_id))
        .filter(versions::Column::Status.eq("ACTIVE"))
        .one(c)
        .await?)
}

pub async fn versions_of<C: ConnectionTrait>(c: &C, product_id: Uuid) -> Result<Vec<Version>, StoreError> {
    Ok(versions::Entity::find()
        .filter(versions::Column::ProductId.eq(product_id))
        .order_by_desc(versions::Column::Version)
        .all(c)
        .await?)
}

pub async fn version_by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Version>, StoreError> {
    Ok(versions::Entity::find_by_id(id).one(c).await?)
}

pub async fn items_of<C: ConnectionTrait>(c: &C, version_id: Uuid) -> Result<Vec<Item>, StoreError> {
    Ok(items::Entity::find()
        .filter(items::Column::RecipeVersionId.eq(version_id))
        .order_by_asc(items::Column::LineNo)
        .all(c)
        .await?)
}

fn version_json(v: &Version, items: &[Item]) -> Value {
    json!({
        "version": v.version, "outputQuantity": v.output_quantity, "batchWeightG": v.batch_weight_g,
        "lossToleranceBp": v.loss_tolerance_bp, "shelfLifeOverrideDays": v.shelf_life_override_days,
        "items": items.iter().map(|i| json!({
            "kind": i.kind, "productId": i.product_id, "fluidName": i.fluid_name, "quantity": i.quantity,
            "unitCost": i.unit_cost,
        })).collect::<Vec<_>>(),
    })
}

/// Saves a recipe: version n + 1 becomes ACTIVE, the active one ARCHIVED (§8.1). The active row is read under lock,
/// and the partial unique index keeps a second ACTIVE version out even if two saves race.
pub async fn create_version<C: ConnectionTrait>(
    c: &C,
    pf: &Product,
    new: NewVersion,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Version, Vec<Item>), OpError> {
    let backend = c.get_database_backend();
    let rows = c
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT {} FROM recipe_versions WHERE product_id = $1 ORDER BY version DESC{}",
                columns_of::<versions::Entity>(""),
                lock_clause(c)
            ),
            vec![pf.id.into()],
        ))
        .await?;
    let existing: Vec<Version> = rows.iter().map(|r| Version::from_query_result(r, "")).collect::<Result<_, _>>()?;
    let previous = existing.iter().find(|v| v.status == "ACTIVE").cloned();
    if let Some(p) = &previous {
        let mut archived = p.clone().into_active_model();
        archived.status = sea_orm::ActiveValue::Set("ARCHIVED".into());
        archived.archived_at = sea_orm::ActiveValue::Set(Some(now));
        archived.update(c).await?;
    }
    let v = Version {
        id: Uuid::now_v7(),
        product_id: pf.id,
        version: existing.first().map_or(1, |v| v.version + 1),
        status: "ACTIVE".into(),
        output_quantity: new.output_quantity,
        batch_weight_g: new.batch_weight_g,
        loss_tolerance_bp: new.loss_tolerance_bp as i32,
        shelf_life_override_days: new.shelf_life_override_days.map(|d| d as i32),
        notes: new.notes,
        created_by: actor.user_id,
        created_at: now,
        archived_at: None,
    };
    versions::Entity::insert(v.clone().into_active_model()).exec_without_returning(c).await?;
    let mut out = Vec::new();
    for (i, it) in new.items.into_iter().enumerate() {
        let item = Item {
            id: Uuid::now_v7(),
            recipe_version_id: v.id,
            line_no: i as i32 + 1,
            kind: it.kind.code().into(),
            product_id: it.product.as_ref().map(|p| p.id),
            fluid_name: it.fluid_name,
            unit_label: it.unit_label,
            quantity: it.quantity,
            unit_cost: if it.kind == ItemKind::Fluid { it.unit_cost } else { None },
        };
        items::Entity::insert(item.clone().into_active_model()).exec_without_returning(c).await?;
        out.push(item);
    }
    let mut change = Change::new("RECIPE_VERSION_CREATED").entity("recipe_version", v.id).after(version_json(&v, &out));
    if let Some(p) = &previous {
        change = change.before(json!({"version": p.version, "status": "ACTIVE"}));
    }
    audit::append(c, actor, change, now).await?;
    Ok((v, out))
}

/// Every PF's active version, with the PF (recipes list, §8.1).
pub async fn active_recipes(db: &crate::Db) -> Result<Vec<(Version, Product, Vec<Item>)>, StoreError> {
    let c = db.conn();
    let active = versions::Entity::find().filter(versions::Column::Status.eq("ACTIVE")).all(c).await?;
    let mut out = Vec::new();
    for v in active {
        let Some(p) = crate::stock::product(c, v.product_id).await? else { continue };
        let items = items_of(c, v.id).await?;
        out.push((v, p, items));
    }
    out.sort_by(|a, b| a.1.code.cmp(&b.1.code));
    Ok(out)
}

// ---- Production orders -----------------------------------------------------------------------------------------

/// Reads an order by reference with a row lock, so two commands on one order run one after the other.
pub async fn lock<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Option<Order>, StoreError> {
    let row = c
        .query_one_raw(stmt(
            c.get_database_backend(),
            &format!(
                "SELECT {} FROM production_orders WHERE reference = $1{}",
                columns_of::<orders::Entity>(""),
                lock_clause(c)
            ),
            vec![reference.trim().to_uppercase().into()],
        ))
        .await?;
    Ok(row.map(|r| Order::from_query_result(&r, "")).transpose()?)
}

async fn locked<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Order, OpError> {
    Ok(lock(c, reference).await?.ok_or_else(|| Rejection::non_trouve("Ordre de production"))?)
}

pub async fn by_reference<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Option<Order>, StoreError> {
    Ok(orders::Entity::find().filter(orders::Column::Reference.eq(reference.trim().to_uppercase())).one(c).await?)
}

pub async fn consumptions_of<C: ConnectionTrait>(c: &C, order_id: Uuid) -> Result<Vec<Consumption>, StoreError> {
    Ok(consumptions::Entity::find()
        .filter(consumptions::Column::ProductionOrderId.eq(order_id))
        .order_by_asc(consumptions::Column::CreatedAt)
        .order_by_asc(consumptions::Column::Id)
        .all(c)
        .await?)
}

/// Saves the order after a change and writes the audit entry (before = the old status).
#[allow(clippy::too_many_arguments)]
async fn record<C: ConnectionTrait>(
    c: &C,
    o: &mut Order,
    action: &'static str,
    before: &str,
    extra: Value,
    reason: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    o.updated_at = now;
    orders::Entity::update(o.clone().into_active_model().reset_all()).exec(c).await?;
    let mut after = json!({"status": o.status, "reference": o.reference});
    if let (Some(a), Some(e)) = (after.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    let mut change =
        Change::new(action).entity("production_order", o.id).before(json!({"status": before})).after(after);
    if let Some(r) = reason {
        change = change.reason(r);
    }
    audit::append(c, actor, change, now).await?;
    Ok(())
}

/// Creates a PENDING order `OP-YYYY-NNNNN` on the PF's active recipe version, frozen from now on (§8.2).
pub async fn create_order<C: ConnectionTrait>(
    c: &C,
    pf: &Product,
    batch_count: i64,
    planned_date: NaiveDate,
    notes: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let today = domain::stock::today_algiers(now);
    domain::production::check_order(batch_count, planned_date, today)?;
    let v = active_version(c, pf.id).await?.ok_or_else(|| domain::production::recette_absente(&pf.code))?;
    let target = domain::production::need(v.output_quantity, batch_count)?;
    let n = crate::stock::next_number(c, "OP", &today.year().to_string()).await?;
    let o = Order {
        id: Uuid::now_v7(),
        reference: domain::stock::doc_ref("OP", today.year(), n),
        product_id: pf.id,
        recipe_version_id: v.id,
        status: OpStatus::Pending.code().into(),
        batch_count: batch_count as i32,
        target_quantity: target,
        planned_date,
        notes,
        started_at: None,
        started_by: None,
        completed_at: None,
        completed_by: None,
        completion_date: None,
        quantity_produced: None,
        qc_status: None,
        qc_note: None,
        actual_batch_weight_g: None,
        pf_lot_id: None,
        consumed_cost: None,
        fluid_cost: None,
        unit_cost: None,
        yield_bp: None,
        cancel_reason: None,
        cancelled_at: None,
        created_by: actor.user_id,
        created_at: now,
        updated_at: now,
    };
    orders::Entity::insert(o.clone().into_active_model()).exec_without_returning(c).await?;
    audit::append(
        c,
        actor,
        Change::new("OP_CREATED").entity("production_order", o.id).after(json!({
            "reference": o.reference, "productId": pf.id, "recipeVersion": v.version, "batchCount": batch_count,
            "targetQuantity": target, "plannedDate": planned_date,
        })),
        now,
    )
    .await?;
    Ok(o)
}

/// One line of the needs-vs-availability table (§8.2); fluids have no stock columns.
#[derive(Debug, Clone)]
pub struct Need {
    pub item: Item,
    pub product: Option<Product>,
    pub need: i64,
    /// Usable stock now (AVAILABLE lots within their DLC).
    pub available: i64,
    /// Needs of the other PENDING orders, for information.
    pub committed: i64,
    pub missing: i64,
}

pub async fn usable_stock<C: ConnectionTrait>(c: &C, product_id: Uuid, today: NaiveDate) -> Result<i64, StoreError> {
    let row = c
        .query_one_raw(stmt(
            c.get_database_backend(),
            "SELECT CAST(COALESCE(SUM(quantity_remaining), 0) AS BIGINT) AS n FROM lots WHERE product_id = $1 \
             AND status = 'AVAILABLE' AND quantity_remaining > 0 AND (dlc IS NULL OR dlc >= $2)",
            vec![product_id.into(), today.into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get("", "n")).transpose()?.unwrap_or(0))
}

/// Needs of each PENDING order other than `except`, per product.
async fn committed_needs<C: ConnectionTrait>(
    c: &C,
    except: Uuid,
) -> Result<std::collections::HashMap<Uuid, i64>, StoreError> {
    let rows = c
        .query_all_raw(stmt(
            c.get_database_backend(),
            "SELECT i.product_id AS product_id, i.quantity AS quantity, o.batch_count AS batch_count \
             FROM production_orders o JOIN recipe_items i ON i.recipe_version_id = o.recipe_version_id \
             WHERE o.status = 'PENDING' AND o.id <> $1 AND i.product_id IS NOT NULL",
            vec![except.into()],
        ))
        .await?;
    let mut out = std::collections::HashMap::new();
    for r in rows {
        let p: Uuid = r.try_get("", "product_id")?;
        let q: i64 = r.try_get("", "quantity")?;
        let b: i32 = r.try_get("", "batch_count")?;
        *out.entry(p).or_insert(0) += q.saturating_mul(i64::from(b));
    }
    Ok(out)
}

/// The needs-vs-availability table of an order's frozen version (creation response, order page, planning flag).
pub async fn needs<C: ConnectionTrait>(c: &C, o: &Order, now: DateTime<Utc>) -> Result<Vec<Need>, OpError> {
    let today = domain::stock::today_algiers(now);
    let committed = committed_needs(c, o.id).await?;
    let mut out = Vec::new();
    for item in items_of(c, o.recipe_version_id).await? {
        let need = domain::production::need(item.quantity, i64::from(o.batch_count))?;
        let (product, available, committed) = match item.product_id {
            Some(pid) => (
                crate::stock::product(c, pid).await?,
                usable_stock(c, pid, today).await?,
                committed.get(&pid).copied().unwrap_or(0),
            ),
            None => (None, 0, 0),
        };
        let missing = if item.product_id.is_some() { (need - available).max(0) } else { 0 };
        out.push(Need { item, product, need, available, committed, missing });
    }
    Ok(out)
}

/// UI.md rows 48, 51 ("non démarrable"): a PENDING order that would be refused with `STOCK_INSUFFISANT` now.
pub async fn not_startable<C: ConnectionTrait>(c: &C, o: &Order, now: DateTime<Utc>) -> Result<bool, OpError> {
    if status_of(o) != OpStatus::Pending {
        return Ok(false);
    }
    Ok(needs(c, o, now).await?.iter().any(|n| n.missing > 0))
}

/// PENDING → PENDING with a new planned date.
pub async fn reschedule<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    planned: NaiveDate,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let mut o = locked(c, reference).await?;
    domain::production::check_reschedule(status_of(&o), planned, domain::stock::today_algiers(now))?;
    let before = o.planned_date;
    o.planned_date = planned;
    let status = o.status.clone();
    record(
        c,
        &mut o,
        "OP_RESCHEDULED",
        &status,
        json!({"plannedDate": planned, "previousDate": before}),
        None,
        actor,
        now,
    )
    .await?;
    Ok(o)
}

fn mover_of(actor: &Actor) -> Mover {
    Mover { user_id: actor.user_id, device_id: actor.device_id.clone(), ip: actor.ip.clone() }
}

/// PENDING → IN_PROGRESS (§8.2): every stock item of the frozen version is planned FEFO over usable lots, locked
/// product by product in id order (two starts never wait on each other in a cycle); if any item is short the order
/// fails with every shortage and nothing is written. Otherwise one PRODUCTION_OUT and one consumption row per lot.
pub async fn start<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Order, Vec<Consumption>), OpError> {
    let mut o = locked(c, reference).await?;
    domain::production::check_start(status_of(&o))?;
    let today = domain::stock::today_algiers(now);
    let mut stocked: Vec<(Item, Product)> = Vec::new();
    for item in items_of(c, o.recipe_version_id).await? {
        if let Some(pid) = item.product_id {
            let p = crate::stock::product(c, pid).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
            stocked.push((item, p));
        }
    }
    stocked.sort_by_key(|(_, p)| p.id);
    let mut plans = Vec::new();
    let mut shortages = Vec::new();
    for (item, p) in &stocked {
        let need = domain::production::need(item.quantity, i64::from(o.batch_count))?;
        let lots = crate::stock::lock_fefo(c, p.id, today, true).await?;
        let facts: Vec<_> = lots.iter().map(crate::stock::lot_facts).collect();
        let plan = domain::stock::plan(&facts, need, today, true);
        if !plan.sufficient {
            shortages.push((p.code.clone(), need, plan.available));
        }
        plans.push((item, plan));
    }
    if !shortages.is_empty() {
        shortages.sort();
        return Err(domain::stock::stock_insuffisant(&shortages).into());
    }
    let mover = mover_of(actor);
    let source = Source {
        origin: "PRODUCTION_OUT",
        source_type: Some("production_order"),
        source_id: Some(o.id),
        reference: Some(o.reference.clone()),
    };
    let mut rows = Vec::new();
    for (item, plan) in plans {
        for a in plan.allocations {
            let lot_id = Uuid::parse_str(&a.lot_id).map_err(|e| StoreError::Other(e.to_string()))?;
            let key = format!("OPS:{}:{lot_id}", o.id);
            let (lot, m) = crate::stock::take_from_lot(c, lot_id, a.take, &source, key, &mover, now).await?;
            let row = Consumption {
                id: Uuid::now_v7(),
                production_order_id: o.id,
                recipe_item_id: item.id,
                lot_id,
                product_id: lot.product_id,
                quantity: a.take,
                unit_cost: lot.unit_cost,
                movement_id: m.id,
                created_at: now,
            };
            consumptions::Entity::insert(row.clone().into_active_model()).exec_without_returning(c).await?;
            rows.push(row);
        }
    }
    o.status = OpStatus::InProgress.code().into();
    o.started_at = Some(now);
    o.started_by = actor.user_id;
    let consumed: Vec<Value> = rows.iter().map(|r| json!({"lotId": r.lot_id, "quantity": r.quantity})).collect();
    record(c, &mut o, "OP_STARTED", OpStatus::Pending.code(), json!({"consumed": consumed}), None, actor, now).await?;
    Ok((o, rows))
}

/// What a completion is given.
#[derive(Debug, Clone)]
pub struct Completion {
    pub quantity_produced: i64,
    pub qc: QcStatus,
    pub qc_note: Option<String>,
    pub actual_batch_weight_g: Option<i64>,
}

/// IN_PROGRESS → COMPLETED (§8.3): the PF lot `{PF}-{YYMMDD}-{NN}` with its DLC, status from QC, unit cost from the
/// consumption rows and fluids, one PRODUCTION_IN; the yield and, outside the tolerance, `RENDEMENT_HORS_TOLERANCE`.
pub async fn complete<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    done: Completion,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Order, crate::stock::Lot), OpError> {
    let mut o = locked(c, reference).await?;
    let pf = crate::stock::product(c, o.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
    domain::production::check_complete(
        status_of(&o),
        done.quantity_produced,
        pf.base_unit == "U",
        done.qc,
        done.qc_note.as_deref(),
    )?;
    let v = version_by_id(c, o.recipe_version_id).await?.ok_or_else(|| Rejection::non_trouve("Recette"))?;
    let consumed: Vec<(i64, i64)> = consumptions_of(c, o.id).await?.iter().map(|r| (r.quantity, r.unit_cost)).collect();
    let fluids: Vec<(i64, i64)> = items_of(c, v.id)
        .await?
        .iter()
        .filter(|i| i.kind == ItemKind::Fluid.code())
        .map(|i| (i.quantity, i.unit_cost.unwrap_or(0)))
        .collect();
    let result = domain::production::completion(
        &consumed,
        &fluids,
        i64::from(o.batch_count),
        done.quantity_produced,
        o.target_quantity,
        i64::from(v.loss_tolerance_bp),
    )?;
    let today = domain::stock::today_algiers(now);
    let n = crate::stock::next_number(c, "LOT_PF", &format!("{}|{}", pf.code, today.format("%Y-%m-%d"))).await?;
    let dlc =
        domain::production::pf_dlc(today, v.shelf_life_override_days.map(i64::from), pf.shelf_life_days.map(i64::from));
    let status = match done.qc {
        QcStatus::Passed => LotStatus::Available,
        QcStatus::Pending => LotStatus::Quarantine,
        QcStatus::Failed => LotStatus::Blocked(domain::stock::BlockReason::QcFailed),
    };
    let source = Source {
        origin: "PRODUCTION_IN",
        source_type: Some("production_order"),
        source_id: Some(o.id),
        reference: Some(o.reference.clone()),
    };
    let (lot, _) = crate::stock::create_lot(
        c,
        crate::stock::NewLot {
            number: domain::stock::pf_lot_number(&pf.code, today, n),
            product_id: pf.id,
            supplier_lot_number: None,
            lot_origin: "PRODUCTION",
            quantity: done.quantity_produced,
            unit_cost: result.unit_cost,
            dlc,
            manufacture_date: Some(today),
            status,
        },
        &source,
        format!("OPI:{}", o.id),
        &mover_of(actor),
        now,
    )
    .await?;
    o.status = OpStatus::Completed.code().into();
    o.completed_at = Some(now);
    o.completed_by = actor.user_id;
    o.completion_date = Some(today);
    o.quantity_produced = Some(done.quantity_produced);
    o.qc_status = Some(done.qc.code().into());
    o.qc_note = done.qc_note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    o.actual_batch_weight_g = done.actual_batch_weight_g;
    o.pf_lot_id = Some(lot.id);
    o.consumed_cost = Some(result.consumed_cost);
    o.fluid_cost = Some(result.fluid_cost);
    o.unit_cost = Some(result.unit_cost);
    o.yield_bp = Some(result.yield_bp as i32);
    if let Some(severity) = result.yield_alert {
        crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: "RENDEMENT_HORS_TOLERANCE",
                severity,
                entity_type: "production_order",
                entity_id: &o.reference,
                message: format!(
                    "{} : rendement {} (tolérance ± {}).",
                    o.reference,
                    domain::format::percent_bp(result.yield_bp),
                    domain::format::percent_bp(i64::from(v.loss_tolerance_bp))
                ),
                data: json!({"reference": o.reference, "yieldBp": result.yield_bp, "toleranceBp": v.loss_tolerance_bp}),
            },
            now,
        )
        .await?;
    }
    record(
        c,
        &mut o,
        "OP_COMPLETED",
        OpStatus::InProgress.code(),
        json!({
            "lot": lot.lot_number, "quantityProduced": done.quantity_produced, "qcStatus": done.qc.code(),
            "unitCost": result.unit_cost, "yieldBp": result.yield_bp,
        }),
        None,
        actor,
        now,
    )
    .await?;
    Ok((o, lot))
}

/// PENDING or IN_PROGRESS → CANCELLED. In progress, each consumption row goes back into its own lot with one
/// PRODUCTION_CANCEL (lots locked in id order); the lot's status follows `domain::stock::after_restore`.
pub async fn cancel<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let mut o = locked(c, reference).await?;
    let before = status_of(&o);
    let reason = domain::production::check_cancel(before, reason)?;
    let mut restored = Vec::new();
    if before == OpStatus::InProgress {
        let mut rows = consumptions_of(c, o.id).await?;
        rows.sort_by_key(|r| r.lot_id);
        let source = Source {
            origin: "PRODUCTION_CANCEL",
            source_type: Some("production_order"),
            source_id: Some(o.id),
            reference: Some(o.reference.clone()),
        };
        let mover = mover_of(actor);
        for r in rows {
            let key = format!("OPC:{}:{}", o.id, r.lot_id);
            let (lot, _) = crate::stock::put_back_into_lot(c, r.lot_id, r.quantity, &source, key, &mover, now).await?;
            restored.push(json!({"lot": lot.lot_number, "quantity": r.quantity, "status": lot.status}));
        }
    }
    o.status = OpStatus::Cancelled.code().into();
    o.cancel_reason = Some(reason.clone());
    o.cancelled_at = Some(now);
    record(c, &mut o, "OP_CANCELLED", before.code(), json!({"restored": restored}), Some(reason), actor, now).await?;
    Ok(o)
}

/// Orders, planned date descending then reference, with their PF.
pub async fn list(db: &crate::Db) -> Result<Vec<(Order, Product)>, StoreError> {
    let c = db.conn();
    let all = orders::Entity::find()
        .order_by_desc(orders::Column::PlannedDate)
        .order_by_desc(orders::Column::Reference)
        .all(c)
        .await?;
    let mut products = std::collections::HashMap::new();
    let mut out = Vec::new();
    for o in all {
        if let std::collections::hash_map::Entry::Vacant(e) = products.entry(o.product_id)
            && let Some(p) = crate::stock::product(c, o.product_id).await?
        {
            e.insert(p);
        }
        if let Some(p) = products.get(&o.product_id) {
            out.push((o, p.clone()));
        }
    }
    Ok(out)
}

/// Everything an order's page and API answer show, read on one connection (the creating transaction included).
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order: Order,
    pub pf: Product,
    pub version: Option<Version>,
    /// While PENDING: the needs-vs-availability table.
    pub needs: Vec<Need>,
    /// Consumption rows with their lot and product.
    pub consumptions: Vec<(Consumption, Option<crate::stock::Lot>, Option<Product>)>,
    pub pf_lot: Option<crate::stock::Lot>,
}

pub async fn view<C: ConnectionTrait>(c: &C, reference: &str, now: DateTime<Utc>) -> Result<OrderView, OpError> {
    let order = by_reference(c, reference).await?.ok_or_else(|| Rejection::non_trouve("Ordre de production"))?;
    let pf = crate::stock::product(c, order.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
    let version = version_by_id(c, order.recipe_version_id).await?;
    let needs = if status_of(&order) == OpStatus::Pending { needs(c, &order, now).await? } else { Vec::new() };
    let mut consumptions = Vec::new();
    for r in consumptions_of(c, order.id).await? {
        let lot = crate::stock::lots::Entity::find_by_id(r.lot_id).one(c).await?;
        let p = crate::stock::product(c, r.product_id).await?;
        consumptions.push((r, lot, p));
    }
    let pf_lot = match order.pf_lot_id {
        Some(id) => crate::stock::lots::Entity::find_by_id(id).one(c).await?,
        None => None,
    };
    Ok(OrderView { order, pf, version, needs, consumptions, pf_lot })
}

/// A completed order as the yield and cost KPIs read it (§17); `None` for an order not completed.
pub fn done_fact(o: &Order, tolerance_bp: i64) -> Option<domain::production::Done> {
    Some(domain::production::Done {
        date: o.completion_date?,
        produced: o.quantity_produced?,
        yield_bp: i64::from(o.yield_bp?),
        tolerance_bp,
        cost: o.consumed_cost? + o.fluid_cost.unwrap_or(0),
    })
}

/// Orders completed on or after `from` with their PF and the version's tolerance (production dashboard, §17).
pub async fn completed_since(db: &crate::Db, from: NaiveDate) -> Result<Vec<(Order, Product, i64)>, StoreError> {
    let c = db.conn();
    let done = orders::Entity::find()
        .filter(orders::Column::Status.eq(OpStatus::Completed.code()))
        .filter(orders::Column::CompletionDate.gte(from))
        .order_by_asc(orders::Column::CompletionDate)
        .all(c)
        .await?;
    let mut out = Vec::new();
    let mut cache: std::collections::HashMap<Uuid, (Option<Product>, i64)> = std::collections::HashMap::new();
    for o in done {
        if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(o.recipe_version_id) {
            let tol = version_by_id(c, o.recipe_version_id).await?.map_or(0, |v| i64::from(v.loss_tolerance_bp));
            e.insert((crate::stock::product(c, o.product_id).await?, tol));
        }
        if let Some((Some(p), tol)) = cache.get(&o.recipe_version_id).cloned() {
            out.push((o, p, tol));
        }
    }
    Ok(out)
}

/// PF lots waiting for their QC release (QUARANTINE, something left).
pub async fn qc_waiting(db: &crate::Db) -> Result<u64, StoreError> {
    use crate::stock::lots;
    use sea_orm::PaginatorTrait;
    Ok(lots::Entity::find()
        .filter(lots::Column::Status.eq("QUARANTINE"))
        .filter(lots::Column::Origin.eq("PRODUCTION"))
        .filter(lots::Column::QuantityRemaining.gt(0))
        .count(db.conn())
        .await?)
}

/// The QC queue (UI.md row 56): QUARANTINE lots with something left, from receptions, orders and returns, by DLC.
pub async fn quarantine_queue(db: &crate::Db) -> Result<Vec<(crate::stock::Lot, Product)>, StoreError> {
    use crate::stock::lots;
    let c = db.conn();
    let mut all = lots::Entity::find()
        .filter(lots::Column::Status.eq("QUARANTINE"))
        .filter(lots::Column::QuantityRemaining.gt(0))
        .all(c)
        .await?;
    all.sort_by_key(|l| (l.dlc.is_none(), l.dlc, l.created_at));
    let mut out = Vec::new();
    for l in all {
        if let Some(p) = crate::stock::product(c, l.product_id).await? {
            out.push((l, p));
        }
    }
    Ok(out)
}
