//! Purchase orders (DOMAIN.md §6.1, §6.2) and supplier performance (§6.4). Every command locks the order row, asks
//! `domain::purchase` whether the transition is allowed, and writes the order, its lines and the audit entry in the
//! caller's transaction. Receptions against an order go through [`apply_reception`], called by
//! `procurement::create_reception` in the reception's own transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::purchase::{BcStatus, DeliveredOrder, OrderLine as DomainLine, SendProof};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};
use crate::stock::{Product, columns_of, stmt};

pub mod orders {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "purchase_orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reference: String,
        pub supplier_id: Uuid,
        pub status: String,
        pub order_date: ChronoDate,
        pub expected_date: Option<ChronoDate>,
        pub notes: Option<String>,
        pub total_ht: i64,
        pub total_tva: i64,
        pub total_ttc: i64,
        pub send_mode: Option<String>,
        pub send_proof: Option<String>,
        pub sent_at: Option<ChronoDateTimeUtc>,
        pub confirmed_at: Option<ChronoDateTimeUtc>,
        pub confirmed_date: Option<ChronoDate>,
        pub first_reception_date: Option<ChronoDate>,
        pub last_reception_date: Option<ChronoDate>,
        pub received_at: Option<ChronoDateTimeUtc>,
        pub close_reason: Option<String>,
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

pub mod lines {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "purchase_order_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub purchase_order_id: Uuid,
        pub line_no: i32,
        pub product_id: Uuid,
        pub quantity_ordered: i64,
        pub quantity_received: i64,
        pub unit_price_ht: i64,
        pub tva_rate: i32,
        pub amount_ht: i64,
        pub amount_tva: i64,
        pub amount_ttc: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod performance {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "supplier_performance")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub supplier_id: Uuid,
        pub orders: i32,
        pub on_time_bp: Option<i32>,
        pub accuracy_bp: Option<i32>,
        pub score: Option<i32>,
        pub grade: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Order = orders::Model;
pub type Line = lines::Model;
pub type Performance = performance::Model;

/// A checked order line with its product.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub product: Product,
    pub quantity: i64,
    pub unit_price_ht: i64,
    pub tva_rate: i32,
}

/// The editable part of an order (creation and DRAFT edits).
#[derive(Debug, Clone)]
pub struct Draft {
    pub supplier_id: Uuid,
    pub expected_date: Option<NaiveDate>,
    pub notes: Option<String>,
    pub lines: Vec<NewLine>,
}

pub fn status_of(o: &Order) -> BcStatus {
    BcStatus::parse(&o.status).unwrap_or(BcStatus::Draft)
}

/// The order and its lines as the audit log keeps them.
fn order_json(o: &Order, lines: &[Line]) -> Value {
    json!({
        "reference": o.reference, "status": o.status, "expectedDate": o.expected_date, "notes": o.notes,
        "totalHt": o.total_ht, "totalTva": o.total_tva, "totalTtc": o.total_ttc,
        "lines": lines.iter().map(|l| json!({
            "productId": l.product_id, "ordered": l.quantity_ordered, "received": l.quantity_received,
            "unitPriceHt": l.unit_price_ht, "tvaRate": l.tva_rate,
        })).collect::<Vec<_>>(),
    })
}

/// Reads an order by reference with a row lock (PostgreSQL `FOR UPDATE`; SQLite's writer is already exclusive), so
/// two commands on the same order run one after the other and each sees the other's outcome.
pub async fn lock<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Option<Order>, StoreError> {
    let backend = c.get_database_backend();
    let lock = if backend == sea_orm::DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let row = c
        .query_one_raw(stmt(
            backend,
            &format!("SELECT {} FROM purchase_orders WHERE reference = $1{lock}", columns_of::<orders::Entity>("")),
            vec![reference.trim().to_uppercase().into()],
        ))
        .await?;
    Ok(row.map(|r| Order::from_query_result(&r, "")).transpose()?)
}

pub async fn lock_by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Order>, StoreError> {
    let backend = c.get_database_backend();
    let lock = if backend == sea_orm::DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let row = c
        .query_one_raw(stmt(
            backend,
            &format!("SELECT {} FROM purchase_orders WHERE id = $1{lock}", columns_of::<orders::Entity>("")),
            vec![id.into()],
        ))
        .await?;
    Ok(row.map(|r| Order::from_query_result(&r, "")).transpose()?)
}

pub async fn lines_of<C: ConnectionTrait>(c: &C, order_id: Uuid) -> Result<Vec<Line>, StoreError> {
    Ok(lines::Entity::find()
        .filter(lines::Column::PurchaseOrderId.eq(order_id))
        .order_by_asc(lines::Column::LineNo)
        .all(c)
        .await?)
}

/// Writes the lines of a DRAFT (replacing any) and returns them with the totals (HT, TVA, TTC).
async fn write_lines<C: ConnectionTrait>(
    c: &C,
    order_id: Uuid,
    new: &[NewLine],
) -> Result<(Vec<Line>, (i64, i64, i64)), OpError> {
    lines::Entity::delete_many().filter(lines::Column::PurchaseOrderId.eq(order_id)).exec(c).await?;
    let mut out = Vec::new();
    for (i, l) in new.iter().enumerate() {
        let t = domain::procurement::line_totals(l.quantity, l.unit_price_ht, l.tva_rate)?;
        let line = Line {
            id: Uuid::now_v7(),
            purchase_order_id: order_id,
            line_no: i as i32 + 1,
            product_id: l.product.id,
            quantity_ordered: l.quantity,
            quantity_received: 0,
            unit_price_ht: l.unit_price_ht,
            tva_rate: l.tva_rate,
            amount_ht: t.ht,
            amount_tva: t.tva,
            amount_ttc: t.ttc,
        };
        lines::Entity::insert(lines::ActiveModel {
            id: Set(line.id),
            purchase_order_id: Set(order_id),
            line_no: Set(line.line_no),
            product_id: Set(line.product_id),
            quantity_ordered: Set(line.quantity_ordered),
            quantity_received: Set(0),
            unit_price_ht: Set(line.unit_price_ht),
            tva_rate: Set(line.tva_rate),
            amount_ht: Set(line.amount_ht),
            amount_tva: Set(line.amount_tva),
            amount_ttc: Set(line.amount_ttc),
        })
        .exec_without_returning(c)
        .await?;
        out.push(line);
    }
    let totals = (
        domain::money::sum(out.iter().map(|l| l.amount_ht))?,
        domain::money::sum(out.iter().map(|l| l.amount_tva))?,
        domain::money::sum(out.iter().map(|l| l.amount_ttc))?,
    );
    Ok((out, totals))
}

async fn save_order<C: ConnectionTrait>(c: &C, o: &Order) -> Result<(), StoreError> {
    orders::Entity::update(o.clone().into_active_model().reset_all()).exec(c).await?;
    Ok(())
}

/// The order to change, locked; `NON_TROUVE` when the reference is unknown.
async fn locked<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Order, OpError> {
    Ok(lock(c, reference).await?.ok_or_else(|| domain::rejection::Rejection::non_trouve("Bon de commande"))?)
}

/// Saves an order after a change of status and writes the audit entry: before = the old status, after = the new
/// status, the reference and `extra`'s fields.
#[allow(clippy::too_many_arguments)]
async fn record_transition<C: ConnectionTrait>(
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
    save_order(c, o).await?;
    let mut after = json!({"status": o.status, "reference": o.reference});
    if let (Some(a), Some(e)) = (after.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    let mut change = Change::new(action).entity("purchase_order", o.id).before(json!({"status": before})).after(after);
    if let Some(r) = reason {
        change = change.reason(r);
    }
    audit::append(c, actor, change, now).await?;
    Ok(())
}

/// Creates a DRAFT order `BC-YYYY-NNNNN` (the number is taken at creation, §6.1). The caller checked the supplier
/// (active, not blocked) and each line.
pub async fn create<C: ConnectionTrait>(
    c: &C,
    draft: Draft,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Order, Vec<Line>), OpError> {
    let today = domain::stock::today_algiers(now);
    if let Some(d) = draft.expected_date {
        domain::purchase::check_expected_date(d, today)?;
    }
    domain::purchase::check_unique_lines(draft.lines.iter().map(|l| l.product.code.as_str()))?;
    let n = crate::stock::next_number(c, "BC", &today.year().to_string()).await?;
    let mut o = Order {
        id: Uuid::now_v7(),
        reference: domain::stock::doc_ref("BC", today.year(), n),
        supplier_id: draft.supplier_id,
        status: BcStatus::Draft.code().into(),
        order_date: today,
        expected_date: draft.expected_date,
        notes: draft.notes,
        total_ht: 0,
        total_tva: 0,
        total_ttc: 0,
        send_mode: None,
        send_proof: None,
        sent_at: None,
        confirmed_at: None,
        confirmed_date: None,
        first_reception_date: None,
        last_reception_date: None,
        received_at: None,
        close_reason: None,
        cancel_reason: None,
        cancelled_at: None,
        created_by: actor.user_id,
        created_at: now,
        updated_at: now,
    };
    {
        orders::Entity::insert(o.clone().into_active_model()).exec_without_returning(c).await?;
    }
    let (ls, (ht, tva, ttc)) = write_lines(c, o.id, &draft.lines).await?;
    (o.total_ht, o.total_tva, o.total_ttc) = (ht, tva, ttc);
    save_order(c, &o).await?;
    audit::append(c, actor, Change::new("BC_CREATED").entity("purchase_order", o.id).after(order_json(&o, &ls)), now)
        .await?;
    Ok((o, ls))
}

/// Replaces the header and lines of a DRAFT order (`BC_NON_MODIFIABLE` otherwise).
pub async fn update_draft<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    draft: Draft,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Order, Vec<Line>), OpError> {
    let mut o = locked(c, reference).await?;
    domain::purchase::check_editable(&o.reference, status_of(&o))?;
    if let Some(d) = draft.expected_date {
        domain::purchase::check_expected_date(d, o.order_date)?;
    }
    domain::purchase::check_unique_lines(draft.lines.iter().map(|l| l.product.code.as_str()))?;
    let before = order_json(&o, &lines_of(c, o.id).await?);
    let (ls, (ht, tva, ttc)) = write_lines(c, o.id, &draft.lines).await?;
    o.supplier_id = draft.supplier_id;
    o.expected_date = draft.expected_date;
    o.notes = draft.notes;
    (o.total_ht, o.total_tva, o.total_ttc) = (ht, tva, ttc);
    o.updated_at = now;
    save_order(c, &o).await?;
    audit::append(
        c,
        actor,
        Change::new("BC_UPDATED").entity("purchase_order", o.id).before(before).after(order_json(&o, &ls)),
        now,
    )
    .await?;
    Ok((o, ls))
}

/// DRAFT → SENT with its proof (§6.2); the supplier must not be blocked on that day.
pub async fn send<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    proof: &SendProof,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let mut o = locked(c, reference).await?;
    let n_lines = lines_of(c, o.id).await?.len();
    let proof = domain::purchase::check_send(&o.reference, status_of(&o), proof, n_lines, o.expected_date)?;
    let supplier = crate::catalogue::suppliers::Entity::find_by_id(o.supplier_id)
        .one(c)
        .await?
        .ok_or_else(|| domain::rejection::Rejection::non_trouve("Fournisseur"))?;
    crate::catalogue::refuse_if_blocked(&supplier, domain::stock::today_algiers(now))?;
    let (mode, text) = match proof {
        SendProof::Email(a) => ("EMAIL", a),
        SendProof::Manual(n) => ("MANUEL", n),
    };
    o.status = BcStatus::Sent.code().into();
    o.send_mode = Some(mode.into());
    o.send_proof = Some(text.clone());
    o.sent_at = Some(now);
    record_transition(c, &mut o, "BC_SENT", "DRAFT", json!({"mode": mode, "proof": text}), None, actor, now).await?;
    Ok(o)
}

/// SENT → CONFIRMED, with the supplier's confirmed delivery date when given.
pub async fn confirm<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    confirmed_date: Option<NaiveDate>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let mut o = locked(c, reference).await?;
    domain::purchase::check_confirm(status_of(&o))?;
    o.status = BcStatus::Confirmed.code().into();
    o.confirmed_at = Some(now);
    o.confirmed_date = confirmed_date;
    let extra = json!({"confirmedDate": confirmed_date});
    record_transition(c, &mut o, "BC_CONFIRMED", "SENT", extra, None, actor, now).await?;
    Ok(o)
}

/// Cancellation (ADMIN): only if nothing was received on any line.
pub async fn cancel<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let mut o = locked(c, reference).await?;
    let received = lines_of(c, o.id).await?.iter().any(|l| l.quantity_received > 0);
    let before = o.status.clone();
    let reason = domain::purchase::check_cancel(status_of(&o), received, reason)?;
    o.status = BcStatus::Cancelled.code().into();
    o.cancel_reason = Some(reason.clone());
    o.cancelled_at = Some(now);
    record_transition(c, &mut o, "BC_CANCELLED", &before, json!({}), Some(reason), actor, now).await?;
    Ok(o)
}

/// PARTIAL → RECEIVED by closing with the remainder abandoned ("solder").
pub async fn close<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let mut o = locked(c, reference).await?;
    let reason = domain::purchase::check_close(status_of(&o), reason)?;
    let abandoned: Vec<Value> = lines_of(c, o.id)
        .await?
        .iter()
        .filter(|l| l.quantity_received < l.quantity_ordered)
        .map(|l| json!({"productId": l.product_id, "abandoned": l.quantity_ordered - l.quantity_received}))
        .collect();
    o.status = BcStatus::Received.code().into();
    o.close_reason = Some(reason.clone());
    o.received_at = Some(now);
    let extra = json!({"abandoned": abandoned});
    record_transition(c, &mut o, "BC_CLOSED", "PARTIAL", extra, Some(reason), actor, now).await?;
    Ok(o)
}

/// A reception against `order` (already locked by the caller): adds the quantities to the lines under the 110 % rule,
/// moves the order to PARTIAL or RECEIVED and recomputes the supplier's performance. `incoming` is (product code,
/// product id, quantity) per reception line. Returns the order after the reception.
pub async fn apply_reception<C: ConnectionTrait>(
    c: &C,
    mut o: Order,
    incoming: &[(String, Uuid, i64)],
    reception_date: NaiveDate,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Order, OpError> {
    let ls = lines_of(c, o.id).await?;
    // The domain speaks product codes; map each order line's product to the code of the incoming line when present.
    let code_of = |pid: Uuid| incoming.iter().find(|(_, id, _)| *id == pid).map(|(code, _, _)| code.clone());
    let current: Vec<DomainLine> = ls
        .iter()
        .map(|l| DomainLine {
            product_code: code_of(l.product_id).unwrap_or_else(|| l.product_id.to_string()),
            ordered: l.quantity_ordered,
            received: l.quantity_received,
        })
        .collect();
    let qty: Vec<(String, i64)> = incoming.iter().map(|(code, _, q)| (code.clone(), *q)).collect();
    let (after, status) = domain::purchase::receive(&current, &qty)?;
    for (l, a) in ls.iter().zip(&after) {
        if a.received != l.quantity_received {
            lines::Entity::update_many()
                .col_expr(lines::Column::QuantityReceived, Expr::value(a.received))
                .filter(lines::Column::Id.eq(l.id))
                .exec(c)
                .await?;
        }
    }
    let before = o.status.clone();
    o.status = status.code().into();
    o.first_reception_date = Some(o.first_reception_date.map_or(reception_date, |d| d.min(reception_date)));
    o.last_reception_date = Some(o.last_reception_date.map_or(reception_date, |d| d.max(reception_date)));
    if status == BcStatus::Received {
        o.received_at = Some(now);
    }
    if before != o.status {
        record_transition(c, &mut o, "BC_RECEIVED", &before, json!({}), None, actor, now).await?;
    } else {
        o.updated_at = now;
        save_order(c, &o).await?;
    }
    recompute_performance(c, o.supplier_id, now).await?;
    Ok(o)
}

/// §6.4: the supplier's last 20 PARTIAL or RECEIVED orders (by date of last reception) give its score and grade; a
/// grade falling to C raises `FOURNISSEUR_NOTE_C`.
pub async fn recompute_performance<C: ConnectionTrait>(
    c: &C,
    supplier_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Performance, StoreError> {
    let window = orders::Entity::find()
        .filter(orders::Column::SupplierId.eq(supplier_id))
        .filter(orders::Column::Status.is_in([BcStatus::Partial.code(), BcStatus::Received.code()]))
        .filter(orders::Column::FirstReceptionDate.is_not_null())
        .order_by_desc(orders::Column::LastReceptionDate)
        .order_by_desc(orders::Column::CreatedAt)
        .all(c)
        .await?;
    let mut delivered = Vec::new();
    for o in window.iter().take(domain::purchase::PERFORMANCE_WINDOW) {
        let (Some(expected), Some(first)) = (o.expected_date, o.first_reception_date) else { continue };
        let ls = lines_of(c, o.id).await?;
        delivered.push(DeliveredOrder {
            expected,
            first_reception: first,
            lines: ls.iter().map(|l| (l.quantity_ordered, l.quantity_received)).collect(),
        });
    }
    let p = domain::purchase::performance(&delivered);
    let previous = performance::Entity::find_by_id(supplier_id).one(c).await?;
    let row = Performance {
        supplier_id,
        orders: delivered.len() as i32,
        on_time_bp: p.on_time_bp.map(|v| v as i32),
        accuracy_bp: p.accuracy_bp.map(|v| v as i32),
        score: p.score.map(|v| v as i32),
        grade: p.grade.into(),
        updated_at: now,
    };
    {
        let am = row.clone().into_active_model().reset_all();
        if previous.is_some() {
            performance::Entity::update(am).exec(c).await?;
        } else {
            performance::Entity::insert(am).exec_without_returning(c).await?;
        }
    }
    if row.grade == "C" && previous.as_ref().is_none_or(|p| p.grade != "C") {
        let supplier = crate::catalogue::suppliers::Entity::find_by_id(supplier_id).one(c).await?;
        let (code, name) = supplier.map(|s| (s.code, s.raison_sociale)).unwrap_or_default();
        crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: "FOURNISSEUR_NOTE_C",
                severity: "WARNING",
                entity_type: "supplier",
                entity_id: &code,
                message: format!("{name} : note fournisseur C (score {}/100).", row.score.unwrap_or_default()),
                data: json!({"supplierCode": code, "score": row.score, "onTimeBp": row.on_time_bp, "accuracyBp": row.accuracy_bp}),
            },
            now,
        )
        .await?;
    }
    Ok(row)
}

pub async fn performance_of<C: ConnectionTrait>(c: &C, supplier_id: Uuid) -> Result<Option<Performance>, StoreError> {
    Ok(performance::Entity::find_by_id(supplier_id).one(c).await?)
}

/// The supplier's code and name (empty when unknown).
pub async fn supplier_names<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<(String, String), StoreError> {
    Ok(crate::catalogue::suppliers::Entity::find_by_id(id)
        .one(c)
        .await?
        .map(|s| (s.code, s.raison_sociale))
        .unwrap_or_default())
}

/// Every order, newest first, with its supplier's code and name.
pub async fn list(db: &crate::Db) -> Result<Vec<(Order, String, String)>, StoreError> {
    let all = orders::Entity::find().order_by_desc(orders::Column::CreatedAt).all(db.conn()).await?;
    let suppliers: std::collections::HashMap<Uuid, (String, String)> =
        crate::catalogue::list_suppliers(db).await?.into_iter().map(|s| (s.id, (s.code, s.raison_sociale))).collect();
    Ok(all
        .into_iter()
        .map(|o| {
            let (code, name) = suppliers.get(&o.supplier_id).cloned().unwrap_or_default();
            (o, code, name)
        })
        .collect())
}

/// An order line as its page shows it: the line and its product's code and name.
pub type LineView = (Line, String, String);

/// The order with its lines (product code and name) and the references of its receptions.
pub async fn detail<C: ConnectionTrait>(
    c: &C,
    reference: &str,
) -> Result<Option<(Order, Vec<LineView>, Vec<String>)>, StoreError> {
    let Some(o) =
        orders::Entity::find().filter(orders::Column::Reference.eq(reference.trim().to_uppercase())).one(c).await?
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for l in lines_of(c, o.id).await? {
        let p = crate::stock::product(c, l.product_id).await?;
        let (code, name) = p.map(|p| (p.code, p.name)).unwrap_or_default();
        out.push((l, code, name));
    }
    let receptions = crate::procurement::receptions::Entity::find()
        .filter(crate::procurement::receptions::Column::PurchaseOrderId.eq(o.id))
        .order_by_asc(crate::procurement::receptions::Column::CreatedAt)
        .all(c)
        .await?
        .into_iter()
        .map(|r| r.reference)
        .collect();
    Ok(Some((o, out, receptions)))
}

/// §6.4: each open order past its expected date raises `BC_EN_RETARD` (one open alert per order, refreshed with the
/// days late): CRITICAL from 3 days with an MP of criticité HAUTE or BLOQUANTE, else WARNING. Returns how many are new.
pub async fn late_order_alerts<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let today = domain::stock::today_algiers(now);
    let open = orders::Entity::find()
        .filter(orders::Column::Status.is_in([
            BcStatus::Sent.code(),
            BcStatus::Confirmed.code(),
            BcStatus::Partial.code(),
        ]))
        .filter(orders::Column::ExpectedDate.lt(today))
        .order_by_asc(orders::Column::ExpectedDate)
        .all(c)
        .await?;
    let mut new = 0;
    let mut still_late = Vec::new();
    for o in open {
        let Some(days) = o.expected_date.and_then(|e| domain::purchase::days_late(e, today)) else { continue };
        still_late.push(o.reference.clone());
        let mut critical = false;
        for l in lines_of(c, o.id).await? {
            let p = crate::stock::product(c, l.product_id).await?;
            critical |= p.and_then(|p| p.criticite).is_some_and(|k| k == "HAUTE" || k == "BLOQUANTE");
        }
        let (code, name) = supplier_names(c, o.supplier_id).await?;
        let raised = crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: "BC_EN_RETARD",
                severity: domain::purchase::late_severity(days, critical),
                entity_type: "purchase_order",
                entity_id: &o.reference,
                message: format!("{} ({name}) : livraison attendue depuis {days} jour(s).", o.reference),
                data: json!({"reference": o.reference, "supplierCode": code, "expectedDate": o.expected_date, "daysLate": days}),
            },
            now,
        )
        .await?;
        new += usize::from(raised);
    }
    // Received, closed or cancelled since: the alert has no object any more (§7.3).
    crate::alerts::close_except(c, "BC_EN_RETARD", &still_late, now).await?;
    Ok(new)
}

/// Every supplier's score and grade (the direction dashboard counts the grades).
pub async fn all_performance<C: ConnectionTrait>(c: &C) -> Result<Vec<Performance>, StoreError> {
    Ok(performance::Entity::find().all(c).await?)
}
