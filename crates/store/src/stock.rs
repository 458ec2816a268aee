//! The stock ledger (DOMAIN.md §5, §15): lots and their balances, the append-only movements, gapless numbers, the one
//! FEFO consumption, losses, and the invariant check. Every function takes the caller's transaction: a movement and
//! its lot balance are written together or not at all.

use chrono::{DateTime, NaiveDate, Utc};
use domain::rejection::Rejection;
use domain::stock::{Allocation, LotFacts, LotStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, Statement,
};
use uuid::Uuid;

use crate::error::{OpError, StoreError};

pub mod products {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "products")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub kind: String,
        pub code: String,
        pub name: String,
        pub base_unit: String,
        pub category: Option<String>,
        pub perishable: bool,
        pub qc_required: bool,
        pub min_stock: i64,
        pub safety_threshold: i64,
        pub reorder_threshold: i64,
        pub lead_time_days: i32,
        pub criticite: Option<String>,
        pub main_supplier_id: Option<Uuid>,
        pub stock_tracked: bool,
        pub brand_id: Option<Uuid>,
        pub family_id: Option<Uuid>,
        pub weight_g: Option<i32>,
        pub packaging_type: Option<String>,
        pub storage_type: Option<String>,
        pub shelf_life_days: Option<i32>,
        pub list_price_ht: i64,
        pub tva_rate: i32,
        pub active: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lots {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub lot_number: String,
        pub product_id: Uuid,
        pub supplier_lot_number: Option<String>,
        pub origin: String,
        pub source_type: Option<String>,
        pub source_id: Option<Uuid>,
        pub initial_quantity: i64,
        pub quantity_remaining: i64,
        pub unit_cost: i64,
        pub dlc: Option<ChronoDate>,
        pub manufacture_date: Option<ChronoDate>,
        pub status: String,
        pub block_reason: Option<String>,
        pub block_note: Option<String>,
        pub blocked_by: Option<Uuid>,
        pub blocked_at: Option<ChronoDateTimeUtc>,
        pub consumed_at: Option<ChronoDateTimeUtc>,
        pub created_at: ChronoDateTimeUtc,
        pub movement_count: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod movements {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_movements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub created_at: ChronoDateTimeUtc,
        pub business_date: ChronoDate,
        pub lot_id: Uuid,
        pub product_id: Uuid,
        pub direction: String,
        pub quantity: i64,
        pub origin: String,
        pub unit_cost: i64,
        pub source_type: Option<String>,
        pub source_id: Option<Uuid>,
        pub source_reference: Option<String>,
        pub user_id: Option<Uuid>,
        pub device_id: Option<String>,
        pub ip: Option<String>,
        pub idempotency_key: String,
        pub remaining_after: i64,
        pub lot_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Product = products::Model;
pub type Lot = lots::Model;
pub type Movement = movements::Model;

/// A statement written with `$1, $2 …` placeholders, converted for SQLite (which wants `?`).
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        sql.to_string()
    } else {
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(c);
            }
        }
        out
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The next number of a gapless sequence (DOMAIN.md §15), taken in the caller's transaction: a rollback gives it back.
/// The row lock of the upsert serializes concurrent takers for the rest of their transaction.
pub async fn next_number<C: ConnectionTrait>(c: &C, doc_type: &str, scope: &str) -> Result<i64, StoreError> {
    let row = c
        .query_one_raw(stmt(
            c.get_database_backend(),
            "INSERT INTO sequences (doc_type, scope, last_value) VALUES ($1, $2, 1) \
             ON CONFLICT (doc_type, scope) DO UPDATE SET last_value = sequences.last_value + 1 RETURNING last_value",
            vec![doc_type.into(), scope.into()],
        ))
        .await?
        .ok_or_else(|| StoreError::Other("sequence upsert returned nothing".into()))?;
    Ok(row.try_get("", "last_value")?)
}

pub fn lot_facts(l: &Lot) -> LotFacts {
    LotFacts {
        id: l.id.to_string(),
        number: l.lot_number.clone(),
        status: LotStatus::from_codes(&l.status, l.block_reason.as_deref()).unwrap_or(LotStatus::Consumed),
        dlc: l.dlc,
        remaining: l.quantity_remaining,
        created_at: l.created_at.timestamp(),
    }
}

/// Who causes a movement.
#[derive(Debug, Clone, Default)]
pub struct Mover {
    pub user_id: Option<Uuid>,
    pub device_id: Option<String>,
    pub ip: Option<String>,
}

/// Where a movement comes from.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: &'static str,
    pub source_type: Option<&'static str>,
    pub source_id: Option<Uuid>,
    pub reference: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn insert_movement<C: ConnectionTrait>(
    c: &C,
    lot: &Lot,
    direction: &str,
    quantity: i64,
    remaining_after: i64,
    source: &Source,
    key: String,
    mover: &Mover,
    now: DateTime<Utc>,
) -> Result<Movement, StoreError> {
    // The caller holds the lot's lock (or just created it): `movement_count` cannot move under us.
    let lot_seq = lot.movement_count + 1;
    let m = Movement {
        id: Uuid::now_v7(),
        created_at: now,
        business_date: domain::stock::today_algiers(now),
        lot_id: lot.id,
        product_id: lot.product_id,
        direction: direction.into(),
        quantity,
        origin: source.origin.into(),
        unit_cost: lot.unit_cost,
        source_type: source.source_type.map(Into::into),
        source_id: source.source_id,
        source_reference: source.reference.clone(),
        user_id: mover.user_id,
        device_id: mover.device_id.clone(),
        ip: mover.ip.clone(),
        idempotency_key: key,
        remaining_after,
        lot_seq,
    };
    movements::Entity::insert(movements::ActiveModel {
        id: Set(m.id),
        created_at: Set(m.created_at),
        business_date: Set(m.business_date),
        lot_id: Set(m.lot_id),
        product_id: Set(m.product_id),
        direction: Set(m.direction.clone()),
        quantity: Set(m.quantity),
        origin: Set(m.origin.clone()),
        unit_cost: Set(m.unit_cost),
        source_type: Set(m.source_type.clone()),
        source_id: Set(m.source_id),
        source_reference: Set(m.source_reference.clone()),
        user_id: Set(m.user_id),
        device_id: Set(m.device_id.clone()),
        ip: Set(m.ip.clone()),
        idempotency_key: Set(m.idempotency_key.clone()),
        remaining_after: Set(m.remaining_after),
        lot_seq: Set(lot_seq),
    })
    .exec_without_returning(c)
    .await?;
    lots::Entity::update_many()
        .col_expr(lots::Column::MovementCount, Expr::value(lot_seq))
        .filter(lots::Column::Id.eq(lot.id))
        .exec(c)
        .await?;
    Ok(m)
}

/// A new lot and its creating IN movement.
#[derive(Debug, Clone)]
pub struct NewLot {
    pub number: String,
    pub product_id: Uuid,
    pub supplier_lot_number: Option<String>,
    pub lot_origin: &'static str,
    pub quantity: i64,
    pub unit_cost: i64,
    pub dlc: Option<NaiveDate>,
    pub manufacture_date: Option<NaiveDate>,
    pub status: LotStatus,
}

pub async fn create_lot<C: ConnectionTrait>(
    c: &C,
    new: NewLot,
    source: &Source,
    key: String,
    mover: &Mover,
    now: DateTime<Utc>,
) -> Result<(Lot, Movement), OpError> {
    domain::stock::check_quantity(new.quantity, false)?;
    let (status, reason) = new.status.codes();
    let lot = Lot {
        id: Uuid::now_v7(),
        lot_number: new.number,
        product_id: new.product_id,
        supplier_lot_number: new.supplier_lot_number,
        origin: new.lot_origin.into(),
        source_type: source.source_type.map(Into::into),
        source_id: source.source_id,
        initial_quantity: new.quantity,
        quantity_remaining: new.quantity,
        unit_cost: new.unit_cost,
        dlc: new.dlc,
        manufacture_date: new.manufacture_date,
        status: status.into(),
        block_reason: reason.map(Into::into),
        block_note: None,
        blocked_by: None,
        blocked_at: reason.map(|_| now),
        consumed_at: None,
        created_at: now,
        movement_count: 0,
    };
    lots::Entity::insert(lots::ActiveModel {
        id: Set(lot.id),
        lot_number: Set(lot.lot_number.clone()),
        product_id: Set(lot.product_id),
        supplier_lot_number: Set(lot.supplier_lot_number.clone()),
        origin: Set(lot.origin.clone()),
        source_type: Set(lot.source_type.clone()),
        source_id: Set(lot.source_id),
        initial_quantity: Set(lot.initial_quantity),
        quantity_remaining: Set(lot.quantity_remaining),
        unit_cost: Set(lot.unit_cost),
        dlc: Set(lot.dlc),
        manufacture_date: Set(lot.manufacture_date),
        status: Set(lot.status.clone()),
        block_reason: Set(lot.block_reason.clone()),
        block_note: Set(None),
        blocked_by: Set(None),
        blocked_at: Set(lot.blocked_at),
        consumed_at: Set(None),
        created_at: Set(now),
        movement_count: Set(0),
    })
    .exec_without_returning(c)
    .await?;
    let m = insert_movement(c, &lot, "IN", lot.initial_quantity, lot.initial_quantity, source, key, mover, now).await?;
    Ok((Lot { movement_count: 1, ..lot }, m))
}

/// Takes `quantity` out of one lot, re-read under lock: the balance and the movement change together.
#[allow(clippy::too_many_arguments)]
pub async fn take_from_lot<C: ConnectionTrait>(
    c: &C,
    lot_id: Uuid,
    quantity: i64,
    source: &Source,
    key: String,
    mover: &Mover,
    now: DateTime<Utc>,
) -> Result<(Lot, Movement), OpError> {
    domain::stock::check_quantity(quantity, false)?;
    let lot = lock_lot(c, lot_id).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
    if quantity > lot.quantity_remaining {
        return Err(domain::stock::lot_insuffisant(&lot.lot_number, quantity, lot.quantity_remaining).into());
    }
    let remaining = lot.quantity_remaining - quantity;
    let status = domain::stock::after_out(lot_facts(&lot).status, remaining);
    let (code, reason) = status.codes();
    let consumed_at = if remaining == 0 { Some(now) } else { None };
    // Guarded update: a concurrent writer that slipped past the lock (none should) would make it touch no row.
    let r = lots::Entity::update_many()
        .col_expr(lots::Column::QuantityRemaining, Expr::value(remaining))
        .col_expr(lots::Column::Status, Expr::value(code))
        .col_expr(lots::Column::BlockReason, Expr::value(reason.map(str::to_string)))
        .col_expr(lots::Column::ConsumedAt, Expr::value(consumed_at))
        .filter(lots::Column::Id.eq(lot_id))
        .filter(lots::Column::QuantityRemaining.eq(lot.quantity_remaining))
        .exec(c)
        .await?;
    if r.rows_affected != 1 {
        return Err(StoreError::Conflict(format!("lot {} changed under its lock", lot.lot_number)).into());
    }
    let m = insert_movement(c, &lot, "OUT", quantity, remaining, source, key, mover, now).await?;
    let lot = Lot { quantity_remaining: remaining, status: code.into(), consumed_at, movement_count: m.lot_seq, ..lot };
    Ok((lot, m))
}

/// Puts `quantity` back into the lot it was taken from (PRODUCTION_CANCEL, §8.2), re-read under lock; the status
/// follows [`domain::stock::after_restore`].
#[allow(clippy::too_many_arguments)]
pub async fn put_back_into_lot<C: ConnectionTrait>(
    c: &C,
    lot_id: Uuid,
    quantity: i64,
    source: &Source,
    key: String,
    mover: &Mover,
    now: DateTime<Utc>,
) -> Result<(Lot, Movement), OpError> {
    domain::stock::check_quantity(quantity, false)?;
    let lot = lock_lot(c, lot_id).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
    let remaining = lot.quantity_remaining.checked_add(quantity).ok_or_else(domain::money::valeur_hors_limites)?;
    let today = domain::stock::today_algiers(now);
    let status = domain::stock::after_restore(lot_facts(&lot).status, lot.dlc, today);
    let (code, reason) = status.codes();
    let newly_blocked = code == "BLOCKED" && lot.status != "BLOCKED";
    let blocked_at = if newly_blocked { Some(now) } else { lot.blocked_at };
    let r = lots::Entity::update_many()
        .col_expr(lots::Column::QuantityRemaining, Expr::value(remaining))
        .col_expr(lots::Column::Status, Expr::value(code))
        .col_expr(lots::Column::BlockReason, Expr::value(reason.map(str::to_string)))
        .col_expr(lots::Column::BlockedAt, Expr::value(blocked_at))
        .col_expr(lots::Column::ConsumedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(lots::Column::Id.eq(lot_id))
        .filter(lots::Column::QuantityRemaining.eq(lot.quantity_remaining))
        .exec(c)
        .await?;
    if r.rows_affected != 1 {
        return Err(StoreError::Conflict(format!("lot {} changed under its lock", lot.lot_number)).into());
    }
    let m = insert_movement(c, &lot, "IN", quantity, remaining, source, key, mover, now).await?;
    let lot = Lot {
        quantity_remaining: remaining,
        status: code.into(),
        block_reason: reason.map(Into::into),
        blocked_at,
        consumed_at: None,
        movement_count: m.lot_seq,
        ..lot
    };
    Ok((lot, m))
}

/// The named columns of an entity, for raw SQL (PLATFORM.md §11.3: never `SELECT *`, so an older binary keeps
/// working on a schema that gained columns, and a dropped column fails loudly where it is read).
pub fn columns_of<E: sea_orm::EntityTrait>(prefix: &str) -> String {
    use sea_orm::{IdenStatic, Iterable};
    E::Column::iter().map(|c| format!("{prefix}{}", c.as_str())).collect::<Vec<_>>().join(", ")
}

/// Reads one lot with a row lock (PostgreSQL `FOR UPDATE`; SQLite's writer is already exclusive).
pub async fn lock_lot<C: ConnectionTrait>(c: &C, lot_id: Uuid) -> Result<Option<Lot>, StoreError> {
    let backend = c.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let row = c
        .query_one_raw(stmt(
            backend,
            &format!("SELECT {} FROM lots WHERE id = $1{lock}", columns_of::<lots::Entity>("")),
            vec![lot_id.into()],
        ))
        .await?;
    Ok(row.map(|r| Lot::from_query_result(&r, "")).transpose()?)
}

/// The FEFO candidates of a product, locked in FEFO order (§5.3): every consumer locks in the same order, so two
/// consumers cannot deadlock. `usable_only` keeps AVAILABLE lots within their DLC.
pub async fn lock_fefo<C: ConnectionTrait>(
    c: &C,
    product_id: Uuid,
    today: NaiveDate,
    usable_only: bool,
) -> Result<Vec<Lot>, StoreError> {
    let backend = c.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let filter = if usable_only { " AND status = 'AVAILABLE' AND (dlc IS NULL OR dlc >= $2)" } else { "" };
    let sql = format!(
        "SELECT {cols} FROM lots WHERE product_id = $1 AND quantity_remaining > 0{filter} \
         ORDER BY (CASE WHEN dlc IS NULL THEN 1 ELSE 0 END), dlc, created_at, id{lock}",
        cols = columns_of::<lots::Entity>("")
    );
    let mut values: Vec<sea_orm::Value> = vec![product_id.into()];
    if usable_only {
        values.push(today.into());
    }
    let rows = c.query_all_raw(stmt(backend, &sql, values)).await?;
    Ok(rows.iter().map(|r| Lot::from_query_result(r, "")).collect::<Result<_, _>>()?)
}

/// Consumes `quantity` of a product in FEFO order from usable lots, or nothing at all with `STOCK_INSUFFISANT`.
/// `key_prefix` makes each movement's idempotency key (`{prefix}:{lot_id}`).
#[allow(clippy::too_many_arguments)]
pub async fn consume_fefo<C: ConnectionTrait>(
    c: &C,
    product: &Product,
    quantity: i64,
    source: &Source,
    key_prefix: &str,
    mover: &Mover,
    now: DateTime<Utc>,
) -> Result<Vec<Allocation>, OpError> {
    domain::stock::check_quantity(quantity, false)?;
    let today = domain::stock::today_algiers(now);
    let lots = lock_fefo(c, product.id, today, true).await?;
    let facts: Vec<LotFacts> = lots.iter().map(lot_facts).collect();
    let plan = domain::stock::plan(&facts, quantity, today, true);
    if !plan.sufficient {
        return Err(domain::stock::stock_insuffisant(&[(product.code.clone(), quantity, plan.available)]).into());
    }
    for a in &plan.allocations {
        let lot_id = Uuid::parse_str(&a.lot_id).map_err(|e| StoreError::Other(e.to_string()))?;
        take_from_lot(c, lot_id, a.take, source, format!("{key_prefix}:{lot_id}"), mover, now).await?;
    }
    Ok(plan.allocations)
}

/// The dry-run plan (§5.3): same order, no lock, no write.
pub async fn plan_fefo(
    db: &crate::Db,
    product_id: Uuid,
    quantity: i64,
    today: NaiveDate,
) -> Result<domain::stock::Plan, StoreError> {
    let lots = lock_fefo(db.conn(), product_id, today, true).await?;
    let facts: Vec<LotFacts> = lots.iter().map(lot_facts).collect();
    Ok(domain::stock::plan(&facts, quantity, today, true))
}

pub async fn product<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Product>, StoreError> {
    Ok(products::Entity::find_by_id(id).one(c).await?)
}

pub async fn lots_of<C: ConnectionTrait>(c: &C, product_id: Uuid) -> Result<Vec<Lot>, StoreError> {
    Ok(lots::Entity::find().filter(lots::Column::ProductId.eq(product_id)).all(c).await?)
}

/// One violation of the ledger invariants (§5.4), as `manchengo check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub subject: String,
    pub what: String,
    pub expected: i64,
    pub actual: i64,
}

#[derive(Debug, FromQueryResult)]
struct LotBalance {
    lot_number: String,
    quantity_remaining: i64,
    status: String,
    ledger: i64,
    foreign: i64,
}

/// Recomputes every lot from the ledger: Σ IN − Σ OUT = remaining ≥ 0, CONSUMED ⇔ 0, movements on the lot's product.
/// Reports, never repairs.
pub async fn check(db: &crate::Db) -> Result<Vec<Violation>, StoreError> {
    let sql = "SELECT l.lot_number, l.quantity_remaining, l.status, \
               CAST(COALESCE(SUM(CASE WHEN m.direction = 'IN' THEN m.quantity ELSE -m.quantity END), 0) AS BIGINT) AS ledger, \
               CAST(COALESCE(SUM(CASE WHEN m.product_id <> l.product_id THEN 1 ELSE 0 END), 0) AS BIGINT) AS \"foreign\" \
               FROM lots l LEFT JOIN stock_movements m ON m.lot_id = l.id \
               GROUP BY l.id, l.lot_number, l.quantity_remaining, l.status ORDER BY l.lot_number";
    let rows = db.conn().query_all_raw(Statement::from_string(db.sea_backend(), sql)).await?;
    let mut out = Vec::new();
    for r in rows {
        let b = LotBalance::from_query_result(&r, "")?;
        if b.ledger != b.quantity_remaining {
            out.push(Violation {
                subject: b.lot_number.clone(),
                what: "solde".into(),
                expected: b.ledger,
                actual: b.quantity_remaining,
            });
        }
        if b.quantity_remaining < 0 {
            out.push(Violation {
                subject: b.lot_number.clone(),
                what: "négatif".into(),
                expected: 0,
                actual: b.quantity_remaining,
            });
        }
        if (b.status == "CONSUMED") != (b.quantity_remaining == 0) {
            out.push(Violation {
                subject: b.lot_number.clone(),
                what: format!("statut {}", b.status),
                expected: 0,
                actual: b.quantity_remaining,
            });
        }
        if b.foreign > 0 {
            out.push(Violation {
                subject: b.lot_number,
                what: "produit des mouvements".into(),
                expected: 0,
                actual: b.foreign,
            });
        }
    }
    Ok(out)
}

/// Numbering (§15): each gapless sequence has exactly as many documents as numbers it gave out — a number taken
/// and lost, or a document written without its number, shows here.
pub async fn numbering_gaps(db: &crate::Db) -> Result<Vec<Violation>, StoreError> {
    let backend = db.sea_backend();
    let seqs = db
        .conn()
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT doc_type, scope, last_value FROM sequences ORDER BY doc_type, scope",
        ))
        .await?;
    let mut out = Vec::new();
    for r in seqs {
        let doc_type: String = r.try_get("", "doc_type")?;
        let scope: String = r.try_get("", "scope")?;
        let last: i64 = r.try_get("", "last_value")?;
        let day = NaiveDate::parse_from_str(&scope, "%Y-%m-%d").ok();
        let lot_prefix = |n: String| n.rsplit_once('-').map(|(p, _)| format!("{p}-")).unwrap_or(n);
        let (table, column, prefix) = match (doc_type.as_str(), day) {
            ("REC", _) => ("receptions", "reference", format!("REC-{scope}-")),
            ("BC", _) => ("purchase_orders", "reference", format!("BC-{scope}-")),
            ("PER", _) => ("losses", "reference", format!("PER-{scope}-")),
            ("INV", _) => ("inventory_counts", "reference", format!("INV-{scope}-")),
            ("LOT_MP", Some(d)) => ("lots", "lot_number", lot_prefix(domain::stock::mp_lot_number(d, 0))),
            ("OP", _) => ("production_orders", "reference", format!("OP-{scope}-")),
            ("LOT_PF", _) => {
                match scope.split_once('|').map(|(code, d)| (code, NaiveDate::parse_from_str(d, "%Y-%m-%d"))) {
                    Some((code, Ok(d))) => ("lots", "lot_number", lot_prefix(domain::stock::pf_lot_number(code, d, 0))),
                    _ => continue,
                }
            }
            ("LOT_AJ", Some(d)) => ("lots", "lot_number", lot_prefix(domain::stock::adj_lot_number(d, 0))),
            ("LOT_RET", Some(d)) => ("lots", "lot_number", lot_prefix(domain::sales::return_lot_number(d, 0))),
            ("F", _) => ("invoices", "reference", format!("F-{scope}-")),
            ("AV", _) => ("credit_notes", "reference", format!("AV-{scope}-")),
            ("REG", _) => ("payments", "reference", format!("REG-{scope}-")),
            ("LIV", _) => ("deliveries", "reference", format!("LIV-{scope}-")),
            ("FOUR", _) => ("suppliers", "code", "FOUR-".to_string()),
            ("CLI", _) => ("clients", "code", "CLI-".to_string()),
            _ => continue,
        };
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table} WHERE {column} LIKE $1");
        let row = db.conn().query_one_raw(stmt(backend, &sql, vec![format!("{prefix}%").into()])).await?;
        let count: i64 = row.map(|r| r.try_get("", "n")).transpose()?.unwrap_or(0);
        if count != last {
            out.push(Violation {
                subject: format!("{doc_type} {scope}"),
                what: "numérotation".into(),
                expected: last,
                actual: count,
            });
        }
    }
    Ok(out)
}

/// A product as the catalogue creates it (the catalogue module validates the fields first).
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub kind: &'static str,
    pub code: String,
    pub name: String,
    pub base_unit: &'static str,
    pub perishable: bool,
    pub qc_required: bool,
    pub shelf_life_days: Option<i32>,
    pub min_stock: i64,
}

pub async fn create_product<C: ConnectionTrait>(
    c: &C,
    p: NewProduct,
    now: DateTime<Utc>,
) -> Result<Product, StoreError> {
    let m = Product {
        id: Uuid::now_v7(),
        kind: p.kind.into(),
        code: p.code,
        name: p.name,
        base_unit: p.base_unit.into(),
        category: None,
        perishable: p.perishable,
        qc_required: p.qc_required,
        min_stock: p.min_stock,
        safety_threshold: p.min_stock,
        reorder_threshold: domain::money::round_div(i128::from(p.min_stock) * 15, 10) as i64,
        lead_time_days: 7,
        criticite: (p.kind == "MP").then(|| "MOYENNE".to_string()),
        main_supplier_id: None,
        stock_tracked: true,
        brand_id: None,
        family_id: None,
        weight_g: None,
        packaging_type: None,
        storage_type: None,
        shelf_life_days: p.shelf_life_days,
        list_price_ht: 0,
        tva_rate: 1900,
        active: true,
        created_at: now,
        updated_at: now,
    };
    products::Entity::insert(products::ActiveModel {
        id: Set(m.id),
        kind: Set(m.kind.clone()),
        code: Set(m.code.clone()),
        name: Set(m.name.clone()),
        base_unit: Set(m.base_unit.clone()),
        category: Set(None),
        perishable: Set(m.perishable),
        qc_required: Set(m.qc_required),
        min_stock: Set(m.min_stock),
        safety_threshold: Set(m.safety_threshold),
        reorder_threshold: Set(m.reorder_threshold),
        lead_time_days: Set(m.lead_time_days),
        criticite: Set(m.criticite.clone()),
        main_supplier_id: Set(None),
        stock_tracked: Set(true),
        brand_id: Set(None),
        family_id: Set(None),
        weight_g: Set(None),
        packaging_type: Set(None),
        storage_type: Set(None),
        shelf_life_days: Set(m.shelf_life_days),
        list_price_ht: Set(0),
        tva_rate: Set(1900),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(c)
    .await?;
    Ok(m)
}

pub mod losses {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "losses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reference: String,
        pub lot_id: Uuid,
        pub product_id: Uuid,
        pub quantity: i64,
        pub reason: String,
        pub note: Option<String>,
        pub value: i64,
        pub declared_by: Option<Uuid>,
        pub declared_at: ChronoDateTimeUtc,
        pub business_date: ChronoDate,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Loss = losses::Model;

pub async fn lot_by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Lot>, StoreError> {
    Ok(lots::Entity::find_by_id(id).one(c).await?)
}

pub async fn lot_by_number<C: ConnectionTrait>(c: &C, number: &str) -> Result<Option<Lot>, StoreError> {
    Ok(lots::Entity::find().filter(lots::Column::LotNumber.eq(number.to_uppercase())).one(c).await?)
}

pub fn lot_json(l: &Lot, product_code: &str) -> serde_json::Value {
    serde_json::json!({"lotNumber": l.lot_number, "productCode": product_code, "origin": l.origin,
        "supplierLotNumber": l.supplier_lot_number, "initialQuantity": l.initial_quantity,
        "quantityRemaining": l.quantity_remaining, "unitCost": l.unit_cost, "dlc": l.dlc,
        "manufactureDate": l.manufacture_date, "status": l.status, "blockReason": l.block_reason,
        "blockNote": l.block_note, "createdAt": l.created_at})
}

/// A status change decided by a person (QC decision, manual block or unblock): the lot re-read under lock, the rule
/// applied by `decide`, the change audited with before and after.
pub async fn change_status<C: ConnectionTrait>(
    c: &C,
    number: &str,
    action: &'static str,
    note: &str,
    decide: impl FnOnce(&LotFacts) -> Result<LotStatus, Rejection>,
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<Lot, OpError> {
    let found = lot_by_number(c, number).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
    let lot = lock_lot(c, found.id).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
    let new = decide(&lot_facts(&lot))?;
    let (code, reason) = new.codes();
    let blocked = matches!(new, LotStatus::Blocked(_));
    let note = note.trim().to_string();
    lots::Entity::update_many()
        .col_expr(lots::Column::Status, Expr::value(code))
        .col_expr(lots::Column::BlockReason, Expr::value(reason.map(str::to_string)))
        .col_expr(lots::Column::BlockNote, Expr::value(if blocked { Some(note.clone()) } else { None }))
        .col_expr(lots::Column::BlockedBy, Expr::value(if blocked { actor.user_id } else { None }))
        .col_expr(lots::Column::BlockedAt, Expr::value(if blocked { Some(now) } else { None }))
        .filter(lots::Column::Id.eq(lot.id))
        .exec(c)
        .await?;
    crate::audit::append(
        c,
        actor,
        crate::audit::Change::new(action)
            .entity("lot", &lot.lot_number)
            .before(serde_json::json!({"status": lot.status, "blockReason": lot.block_reason}))
            .after(serde_json::json!({"status": code, "blockReason": reason}))
            .reason(note.clone()),
        now,
    )
    .await?;
    Ok(Lot {
        status: code.into(),
        block_reason: reason.map(Into::into),
        block_note: blocked.then_some(note),
        blocked_by: if blocked { actor.user_id } else { None },
        blocked_at: blocked.then_some(now),
        ..lot
    })
}

/// Declares a loss on one lot (§14): `PER-YYYY-NNNNN`, one LOSS movement, value at lot cost.
pub async fn declare_loss<C: ConnectionTrait>(
    c: &C,
    number: &str,
    quantity: i64,
    reason: domain::stock::LossReason,
    note: &str,
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<(Loss, Lot), OpError> {
    let today = domain::stock::today_algiers(now);
    let found = lot_by_number(c, number).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
    let lot = lock_lot(c, found.id).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
    domain::stock::check_loss(&lot_facts(&lot), quantity, reason, note, today)?;
    let n = next_number(c, "PER", &chrono::Datelike::year(&today).to_string()).await?;
    let reference = domain::stock::doc_ref("PER", chrono::Datelike::year(&today), n);
    let id = Uuid::now_v7();
    let value = domain::money::amount(quantity, lot.unit_cost)?;
    let mover = Mover { user_id: actor.user_id, device_id: actor.device_id.clone(), ip: actor.ip.clone() };
    let source =
        Source { origin: "LOSS", source_type: Some("LOSS"), source_id: Some(id), reference: Some(reference.clone()) };
    let (after, _) = take_from_lot(c, lot.id, quantity, &source, format!("PER:{id}"), &mover, now).await?;
    let note = Some(note.trim().to_string()).filter(|n| !n.is_empty());
    let loss = Loss {
        id,
        reference: reference.clone(),
        lot_id: lot.id,
        product_id: lot.product_id,
        quantity,
        reason: reason.code().into(),
        note: note.clone(),
        value,
        declared_by: actor.user_id,
        declared_at: now,
        business_date: today,
    };
    losses::Entity::insert(losses::ActiveModel {
        id: Set(id),
        reference: Set(reference.clone()),
        lot_id: Set(lot.id),
        product_id: Set(lot.product_id),
        quantity: Set(quantity),
        reason: Set(loss.reason.clone()),
        note: Set(note),
        value: Set(value),
        declared_by: Set(actor.user_id),
        declared_at: Set(now),
        business_date: Set(today),
    })
    .exec_without_returning(c)
    .await?;
    crate::audit::append(
        c,
        actor,
        crate::audit::Change::new("LOSS_DECLARED").entity("loss", &reference).after(serde_json::json!({
            "lot": lot.lot_number, "quantity": quantity, "reason": loss.reason, "value": value,
            "remainingAfter": after.quantity_remaining
        })),
        now,
    )
    .await?;
    if domain::stock::perte_importante(value, actor.role.as_deref() == Some("ADMIN")) {
        crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: "PERTE_IMPORTANTE",
                severity: "WARNING",
                entity_type: "loss",
                entity_id: &reference,
                message: format!(
                    "Perte {reference} de {} sur le lot {} déclarée par {}.",
                    domain::money::fmt_money(value),
                    lot.lot_number,
                    actor.label.as_deref().unwrap_or("un utilisateur")
                ),
                data: serde_json::json!({"lot": lot.lot_number, "quantity": quantity, "value": value,
                    "reason": loss.reason}),
            },
            now,
        )
        .await?;
    }
    Ok((loss, after))
}

/// §14 write-off from the expired-lots screen: the whole remaining of each BLOCKED(EXPIRED) lot, one loss per lot,
/// reason EXPIRED, all in the caller's transaction — one refused lot and nothing is written.
pub async fn write_off_expired<C: ConnectionTrait>(
    c: &C,
    numbers: &[String],
    actor: &crate::audit::Actor,
    now: DateTime<Utc>,
) -> Result<Vec<Loss>, OpError> {
    if numbers.is_empty() {
        return Err(Rejection::new("VALIDATION_ERROR", 400, "Sélectionnez au moins un lot.").into());
    }
    let mut out = Vec::new();
    for number in numbers {
        let found = lot_by_number(c, number).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
        let lot = lock_lot(c, found.id).await?.ok_or_else(|| Rejection::non_trouve("Lot"))?;
        let quantity = domain::stock::check_write_off(&lot_facts(&lot))?;
        let (loss, _) = declare_loss(c, number, quantity, domain::stock::LossReason::Expired, "", actor, now).await?;
        out.push(loss);
    }
    Ok(out)
}

/// Losses, newest first, with their lot number and product code; `kinds` limits the products (APPRO sees MP losses,
/// PRODUCTION PF losses).
pub async fn losses(
    db: &crate::Db,
    kinds: &[&str],
    offset: u64,
    limit: u64,
) -> Result<(Vec<(Loss, String, String, String)>, u64), StoreError> {
    let backend = db.sea_backend();
    let kinds_sql = kinds.iter().map(|k| format!("'{}'", k.replace('\'', ""))).collect::<Vec<_>>().join(", ");
    let from = format!(
        "FROM losses x JOIN lots l ON l.id = x.lot_id JOIN products p ON p.id = x.product_id WHERE p.kind IN ({kinds_sql})"
    );
    let total: i64 = db
        .conn()
        .query_one_raw(Statement::from_string(backend, format!("SELECT CAST(COUNT(*) AS BIGINT) AS n {from}")))
        .await?
        .map(|r| r.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);
    let sql = format!(
        "SELECT {}, l.lot_number AS lot_number, p.code AS product_code, p.base_unit AS base_unit {from} \
         ORDER BY x.declared_at DESC, x.reference DESC LIMIT {limit} OFFSET {offset}",
        columns_of::<losses::Entity>("x.")
    );
    let rows = db.conn().query_all_raw(Statement::from_string(backend, sql)).await?;
    let mut out = Vec::new();
    for r in rows {
        out.push((
            Loss::from_query_result(&r, "")?,
            r.try_get("", "lot_number")?,
            r.try_get("", "product_code")?,
            r.try_get("", "base_unit")?,
        ));
    }
    Ok((out, total as u64))
}

/// The nightly expiry run (§5.6): every lot past its DLC with something left becomes BLOCKED(EXPIRED), one audit
/// entry each, and one consolidated `LOTS_PERIMES` alert. Running it twice the same day changes nothing.
pub async fn expire_lots<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Vec<Lot>, StoreError> {
    let today = domain::stock::today_algiers(now);
    let backend = c.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let rows = c
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT {} FROM lots WHERE quantity_remaining > 0 AND dlc < $1 AND status <> 'CONSUMED' \
                 AND NOT (status = 'BLOCKED' AND block_reason = 'EXPIRED') ORDER BY product_id, dlc, created_at, id{lock}",
                columns_of::<lots::Entity>("")
            ),
            vec![today.into()],
        ))
        .await?;
    let lots: Vec<Lot> = rows.iter().map(|r| Lot::from_query_result(r, "")).collect::<Result<_, _>>()?;
    let system = crate::audit::Actor::system("expiry");
    let mut blocked = Vec::new();
    for lot in lots {
        if !domain::stock::expires_now(&lot_facts(&lot), today) {
            continue;
        }
        lots::Entity::update_many()
            .col_expr(lots::Column::Status, Expr::value("BLOCKED"))
            .col_expr(lots::Column::BlockReason, Expr::value("EXPIRED"))
            .col_expr(lots::Column::BlockedAt, Expr::value(now))
            .filter(lots::Column::Id.eq(lot.id))
            .exec(c)
            .await?;
        crate::audit::append(
            c,
            &system,
            crate::audit::Change::new("LOT_EXPIRED")
                .entity("lot", &lot.lot_number)
                .before(serde_json::json!({"status": lot.status, "blockReason": lot.block_reason}))
                .after(serde_json::json!({"status": "BLOCKED", "blockReason": "EXPIRED"})),
            now,
        )
        .await?;
        blocked.push(Lot {
            status: "BLOCKED".into(),
            block_reason: Some("EXPIRED".into()),
            blocked_at: Some(now),
            ..lot
        });
    }
    if !blocked.is_empty() {
        // The consolidated alert counts every expired lot still in stock, not only today's.
        let all: Vec<Lot> = lots::Entity::find()
            .filter(lots::Column::Status.eq("BLOCKED"))
            .filter(lots::Column::BlockReason.eq("EXPIRED"))
            .filter(lots::Column::QuantityRemaining.gt(0))
            .all(c)
            .await?;
        let value: i64 =
            all.iter().map(|l| domain::money::amount(l.quantity_remaining, l.unit_cost).unwrap_or(0)).sum();
        let listed: Vec<&str> = all.iter().take(50).map(|l| l.lot_number.as_str()).collect();
        crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: "LOTS_PERIMES",
                severity: "CRITICAL",
                entity_type: "stock",
                entity_id: "lots-perimes",
                message: format!(
                    "{} lot(s) périmé(s) en stock, valeur {} : déclarez la perte.",
                    all.len(),
                    domain::money::fmt_money(value)
                ),
                data: serde_json::json!({"count": all.len(), "value": value, "lots": listed}),
            },
            now,
        )
        .await?;
    }
    Ok(blocked)
}

/// Stock of every product at the end of `date` (Africa/Algiers). Cost grows with the lots alive that day, not with the
/// ledger: per lot, one index seek for its last movement up to the date (`lot_seq`), whose `remaining_after` is the
/// lot's balance then. Lots created after the date or consumed before it are skipped by their own timestamps.
pub async fn stock_at(db: &crate::Db, date: NaiveDate) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let backend = db.sea_backend();
    let day_end = (date + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc()
        - chrono::Duration::hours(1);
    let sql = "SELECT l.product_id AS product_id, CAST(COALESCE(SUM((SELECT m.remaining_after FROM stock_movements m \
               WHERE m.lot_id = l.id AND m.business_date <= $1 ORDER BY m.lot_seq DESC LIMIT 1)), 0) AS BIGINT) AS qty \
               FROM lots l WHERE l.created_at < $2 AND (l.consumed_at IS NULL OR l.consumed_at >= $3) \
               GROUP BY l.product_id";
    let day_start = day_end - chrono::Duration::days(1);
    let rows = db.conn().query_all_raw(stmt(backend, sql, vec![date.into(), day_end.into(), day_start.into()])).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<Uuid>("", "product_id")?, r.try_get::<i64>("", "qty")?)))
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()
        .map_err(StoreError::from)
}

/// What the movements page and API filter on.
#[derive(Debug, Clone, Default)]
pub struct MovementFilter {
    pub product_id: Option<Uuid>,
    pub lot_id: Option<Uuid>,
    /// `IN` or `OUT`.
    pub direction: Option<String>,
    pub origin: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Products of these kinds only (COMMERCIAL: PF); empty = all.
    pub kinds: Vec<String>,
}

/// Movements, newest first, filtered; with the total count for the pager.
pub async fn movements(
    db: &crate::Db,
    f: &MovementFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Movement>, u64), StoreError> {
    use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect};
    let mut q = movements::Entity::find();
    if let Some(p) = f.product_id {
        q = q.filter(movements::Column::ProductId.eq(p));
    }
    if let Some(l) = f.lot_id {
        q = q.filter(movements::Column::LotId.eq(l));
    }
    if let Some(d) = &f.direction {
        q = q.filter(movements::Column::Direction.eq(d.clone()));
    }
    if let Some(o) = &f.origin {
        q = q.filter(movements::Column::Origin.eq(o.clone()));
    }
    if let Some(d) = f.from {
        q = q.filter(movements::Column::BusinessDate.gte(d));
    }
    if let Some(d) = f.to {
        q = q.filter(movements::Column::BusinessDate.lte(d));
    }
    if !f.kinds.is_empty() {
        let ids: Vec<Uuid> = products::Entity::find()
            .filter(products::Column::Kind.is_in(f.kinds.clone()))
            .all(db.conn())
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        q = q.filter(movements::Column::ProductId.is_in(ids));
    }
    let total = q.clone().count(db.conn()).await?;
    let rows = q
        .order_by_desc(movements::Column::CreatedAt)
        .order_by_desc(movements::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db.conn())
        .await?;
    Ok((rows, total))
}

/// The lot number, product code and unit of each movement, for lists.
pub async fn movement_labels(db: &crate::Db, rows: &[Movement]) -> Result<Vec<(String, String, String)>, StoreError> {
    let lot_ids: Vec<Uuid> = rows.iter().map(|m| m.lot_id).collect();
    let product_ids: Vec<Uuid> = rows.iter().map(|m| m.product_id).collect();
    let lots = lots::Entity::find().filter(lots::Column::Id.is_in(lot_ids)).all(db.conn()).await?;
    let products = products::Entity::find().filter(products::Column::Id.is_in(product_ids)).all(db.conn()).await?;
    Ok(rows
        .iter()
        .map(|m| {
            let lot = lots.iter().find(|l| l.id == m.lot_id).map(|l| l.lot_number.clone()).unwrap_or_default();
            let (code, unit) = products
                .iter()
                .find(|p| p.id == m.product_id)
                .map(|p| (p.code.clone(), p.base_unit.clone()))
                .unwrap_or_default();
            (lot, code, unit)
        })
        .collect())
}

/// The 06:00 pre-expiry run (§5.6): one alert per (type, lot) for lots at J-7, J-3 and J-1. Returns how many were new.
pub async fn pre_expiry_alerts<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let today = domain::stock::today_algiers(now);
    let lots = lots::Entity::find()
        .filter(lots::Column::QuantityRemaining.gt(0))
        .filter(lots::Column::Status.is_in(["AVAILABLE", "QUARANTINE"]))
        .filter(lots::Column::Dlc.gte(today))
        .filter(lots::Column::Dlc.lte(today + chrono::Duration::days(7)))
        .all(c)
        .await?;
    let mut new = 0;
    for l in lots {
        let Some((kind, severity)) = domain::stock::pre_expiry_alert(&lot_facts(&l), today) else { continue };
        let dlc = l.dlc.map(domain::stock::fmt_date).unwrap_or_default();
        let raised = crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: kind,
                severity,
                entity_type: "lot",
                entity_id: &l.lot_number,
                message: format!("Le lot {} arrive à sa DLC le {dlc}.", l.lot_number),
                data: serde_json::json!({"lot": l.lot_number, "dlc": l.dlc, "remaining": l.quantity_remaining}),
            },
            now,
        )
        .await?;
        new += usize::from(raised);
    }
    Ok(new)
}
