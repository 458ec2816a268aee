//! Inventory counts (DOMAIN.md §13): declaration with its risk, one or two validations by others, rejection,
//! expiry, and the adjustment movements posted at approval. The rules are `domain::inventory`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::inventory::{Counted, Initial, Risk};
use domain::rejection::Rejection;
use domain::stock::LotStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};
use crate::stock::{Mover, NewLot, Product, Source};

pub mod counts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inventory_counts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reference: String,
        pub product_id: Uuid,
        pub counter_id: Uuid,
        pub declared_at: ChronoDateTimeUtc,
        pub business_date: ChronoDate,
        pub theoretical: i64,
        pub declared: i64,
        pub difference: i64,
        pub pct_bp: i64,
        pub unit_value: i64,
        pub value: i64,
        pub risk: String,
        pub suspect: bool,
        pub status: String,
        pub surplus_dlc: Option<ChronoDate>,
        pub note: Option<String>,
        pub first_validator_id: Option<Uuid>,
        pub first_validated_at: Option<ChronoDateTimeUtc>,
        pub decided_by: Option<Uuid>,
        pub decided_at: Option<ChronoDateTimeUtc>,
        pub reject_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Count = counts::Model;

pub fn count_json(c: &Count, product_code: &str) -> serde_json::Value {
    json!({"reference": c.reference, "productCode": product_code, "counterId": c.counter_id,
           "declaredAt": c.declared_at, "theoretical": c.theoretical, "declared": c.declared,
           "difference": c.difference, "pctBp": c.pct_bp, "unitValue": c.unit_value, "value": c.value,
           "risk": c.risk, "suspect": c.suspect, "status": c.status, "surplusDlc": c.surplus_dlc, "note": c.note,
           "firstValidatorId": c.first_validator_id, "decidedBy": c.decided_by, "decidedAt": c.decided_at,
           "rejectReason": c.reject_reason})
}

fn kind_of(p: &Product) -> Counted {
    match (p.kind.as_str(), p.perishable) {
        ("PF", _) => Counted::Pf,
        (_, true) => Counted::PerishableMp,
        _ => Counted::NonPerishableMp,
    }
}

pub async fn by_reference<C: ConnectionTrait>(c: &C, reference: &str) -> Result<Option<Count>, StoreError> {
    Ok(counts::Entity::find().filter(counts::Column::Reference.eq(reference.to_uppercase())).one(c).await?)
}

pub async fn list(db: &crate::Db) -> Result<Vec<Count>, StoreError> {
    Ok(counts::Entity::find().order_by_desc(counts::Column::DeclaredAt).all(db.conn()).await?)
}

/// Posts the difference of an approved count (§13 posting rule), as the validator or as SYSTEM for the counter.
async fn post<C: ConnectionTrait>(
    c: &C,
    count: &Count,
    product: &Product,
    mover: &Mover,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    if count.difference == 0 {
        return Ok(());
    }
    let today = domain::stock::today_algiers(now);
    let source = Source {
        origin: "INVENTORY_ADJUST",
        source_type: Some("INVENTORY_COUNT"),
        source_id: Some(count.id),
        reference: Some(count.reference.clone()),
    };
    if count.difference < 0 {
        let need = -count.difference;
        // Every lot with something left, whatever its status, in FEFO order: the oldest goods are the likeliest gone.
        let lots = crate::stock::lock_fefo(c, product.id, today, false).await?;
        let facts: Vec<_> = lots.iter().map(crate::stock::lot_facts).collect();
        let plan = domain::stock::plan(&facts, need, today, false);
        if !plan.sufficient {
            return Err(domain::stock::stock_insuffisant(&[(product.code.clone(), need, plan.available)]).into());
        }
        for a in plan.allocations {
            let lot_id = Uuid::parse_str(&a.lot_id).map_err(|e| StoreError::Other(e.to_string()))?;
            crate::stock::take_from_lot(c, lot_id, a.take, &source, format!("INV:{}:{lot_id}", count.id), mover, now)
                .await?;
        }
    } else {
        let n = crate::stock::next_number(c, "LOT_AJ", &today.format("%Y-%m-%d").to_string()).await?;
        crate::stock::create_lot(
            c,
            NewLot {
                number: domain::stock::adj_lot_number(today, n),
                product_id: product.id,
                supplier_lot_number: None,
                lot_origin: "INVENTORY",
                quantity: count.difference,
                unit_cost: count.unit_value,
                dlc: count.surplus_dlc,
                manufacture_date: None,
                status: LotStatus::Available,
            },
            &source,
            format!("INV:{}:surplus", count.id),
            mover,
            now,
        )
        .await?;
    }
    Ok(())
}

pub struct Declaration {
    pub product: Product,
    pub declared: i64,
    pub surplus_dlc: Option<NaiveDate>,
    pub note: Option<String>,
}

/// Declares a count: cooldown, blind difference against stock_total, risk, suspicion; LOW and clean counts are
/// approved and posted at once (as SYSTEM on behalf of the counter).
pub async fn declare<C: ConnectionTrait>(
    c: &C,
    d: Declaration,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Count, OpError> {
    let counter = actor.user_id.ok_or_else(|| StoreError::Other("a count needs a counter".into()))?;
    if d.declared < 0 {
        return Err(Rejection::new("QUANTITE_INVALIDE", 422, "Quantité invalide (doit être ≥ 0).").into());
    }
    let previous = counts::Entity::find()
        .filter(counts::Column::ProductId.eq(d.product.id))
        .filter(counts::Column::Status.is_not_in(["REJECTED", "EXPIRED"]))
        .order_by_desc(counts::Column::DeclaredAt)
        .one(c)
        .await?;
    domain::inventory::check_cooldown(previous.map(|p| p.declared_at), now)?;
    // Locks the product's lots so the theoretical stock cannot move while the count is recorded.
    let today = domain::stock::today_algiers(now);
    let locked = crate::stock::lock_fefo(c, d.product.id, today, false).await?;
    let theoretical: i64 = locked.iter().map(|l| l.quantity_remaining).sum();
    if d.declared > theoretical && d.product.perishable && d.surplus_dlc.is_none() {
        return Err(Rejection::new(
            "DLC_OBLIGATOIRE",
            422,
            format!("La DLC est obligatoire pour un produit périssable ({}).", d.product.code),
        )
        .into());
    }
    let mut all = crate::stock::lots_of(c, d.product.id).await?;
    all.sort_by_key(|l| l.created_at);
    let costs: Vec<(i64, i64)> = all.iter().map(|l| (l.quantity_remaining, l.unit_cost)).collect();
    let since = now - chrono::Duration::days(30);
    let previous_same: Vec<i64> = counts::Entity::find()
        .filter(counts::Column::ProductId.eq(d.product.id))
        .filter(counts::Column::CounterId.eq(counter))
        .filter(counts::Column::Status.eq("APPROVED"))
        .filter(counts::Column::DeclaredAt.gte(since))
        .order_by_desc(counts::Column::DeclaredAt)
        .all(c)
        .await?
        .into_iter()
        .map(|x| x.difference)
        .collect();
    let a = domain::inventory::assess(kind_of(&d.product), theoretical, d.declared, &costs, &previous_same);
    let n = crate::stock::next_number(c, "INV", &today.year().to_string()).await?;
    let count = Count {
        id: Uuid::now_v7(),
        reference: domain::stock::doc_ref("INV", today.year(), n),
        product_id: d.product.id,
        counter_id: counter,
        declared_at: now,
        business_date: today,
        theoretical,
        declared: d.declared,
        difference: a.difference,
        pct_bp: a.pct_bp,
        unit_value: a.unit_value_c,
        value: a.value_c,
        risk: a.risk.code().into(),
        suspect: a.suspect,
        status: a.initial.code().into(),
        surplus_dlc: if a.difference > 0 { d.surplus_dlc } else { None },
        note: d.note,
        first_validator_id: None,
        first_validated_at: None,
        decided_by: None,
        decided_at: (a.initial == Initial::Approved).then_some(now),
        reject_reason: None,
    };
    counts::Entity::insert(counts::ActiveModel {
        id: Set(count.id),
        reference: Set(count.reference.clone()),
        product_id: Set(count.product_id),
        counter_id: Set(counter),
        declared_at: Set(now),
        business_date: Set(today),
        theoretical: Set(theoretical),
        declared: Set(count.declared),
        difference: Set(count.difference),
        pct_bp: Set(count.pct_bp),
        unit_value: Set(count.unit_value),
        value: Set(count.value),
        risk: Set(count.risk.clone()),
        suspect: Set(count.suspect),
        status: Set(count.status.clone()),
        surplus_dlc: Set(count.surplus_dlc),
        note: Set(count.note.clone()),
        first_validator_id: Set(None),
        first_validated_at: Set(None),
        decided_by: Set(None),
        decided_at: Set(count.decided_at),
        reject_reason: Set(None),
    })
    .exec_without_returning(c)
    .await?;
    if a.initial == Initial::Approved {
        // Auto-approval: the movements are SYSTEM's, on behalf of the counter.
        post(
            c,
            &count,
            &d.product,
            &Mover { user_id: None, device_id: actor.device_id.clone(), ip: actor.ip.clone() },
            now,
        )
        .await?;
    }
    let alert = match a.risk {
        Risk::Critical => Some(("ECART_INVENTAIRE", "CRITICAL")),
        Risk::High => Some(("ECART_INVENTAIRE", "WARNING")),
        _ => None,
    };
    if let Some((t, sev)) = alert {
        crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: t,
                severity: sev,
                entity_type: "inventory_count",
                entity_id: &count.reference,
                message: format!("Écart d'inventaire {} sur {} : {} ({} pb).", count.reference, d.product.code, count.difference, count.pct_bp),
                data: json!({"reference": count.reference, "difference": count.difference, "pctBp": count.pct_bp, "value": count.value}),
            },
            now,
        )
        .await?;
    }
    if a.suspect {
        crate::alerts::raise(
            c,
            crate::alerts::Raise {
                alert_type: "INVENTAIRE_SUSPECT",
                severity: "WARNING",
                entity_type: "inventory_count",
                entity_id: &count.reference,
                message: format!(
                    "Comptage {} suspect : troisième écart négatif du même compteur sur {}.",
                    count.reference, d.product.code
                ),
                data: json!({"reference": count.reference}),
            },
            now,
        )
        .await?;
    }
    audit::append(
        c,
        actor,
        Change::new("COUNT_DECLARED")
            .entity("inventory_count", &count.reference)
            .after(count_json(&count, &d.product.code)),
        now,
    )
    .await?;
    Ok(count)
}

/// One validation by someone other than the counter (two different people for a critical count).
pub async fn validate<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Count, OpError> {
    let validator = actor.user_id.ok_or_else(|| StoreError::Other("a validation needs a validator".into()))?;
    let count = by_reference(c, reference).await?.ok_or_else(|| Rejection::non_trouve("Comptage"))?;
    let next = domain::inventory::validate(
        &count.status,
        &count.counter_id.to_string(),
        count.first_validator_id.map(|u| u.to_string()).as_deref(),
        &validator.to_string(),
    )?;
    let product = crate::stock::product(c, count.product_id).await?.ok_or_else(|| Rejection::non_trouve("Produit"))?;
    let mut updated = count.clone();
    updated.status = next.into();
    if next == "PENDING" {
        updated.first_validator_id = Some(validator);
        updated.first_validated_at = Some(now);
    } else {
        updated.decided_by = Some(validator);
        updated.decided_at = Some(now);
        post(
            c,
            &updated,
            &product,
            &Mover { user_id: Some(validator), device_id: actor.device_id.clone(), ip: actor.ip.clone() },
            now,
        )
        .await?;
    }
    let r = counts::Entity::update_many()
        .col_expr(counts::Column::Status, Expr::value(updated.status.clone()))
        .col_expr(counts::Column::FirstValidatorId, Expr::value(updated.first_validator_id))
        .col_expr(counts::Column::FirstValidatedAt, Expr::value(updated.first_validated_at))
        .col_expr(counts::Column::DecidedBy, Expr::value(updated.decided_by))
        .col_expr(counts::Column::DecidedAt, Expr::value(updated.decided_at))
        .filter(counts::Column::Id.eq(count.id))
        .filter(counts::Column::Status.eq(count.status.clone()))
        .exec(c)
        .await?;
    if r.rows_affected != 1 {
        return Err(StoreError::Conflict("count changed meanwhile".into()).into());
    }
    let action = if next == "APPROVED" { "COUNT_APPROVED" } else { "COUNT_FIRST_VALIDATION" };
    audit::append(
        c,
        actor,
        Change::new(action)
            .entity("inventory_count", &count.reference)
            .before(json!({"status": count.status}))
            .after(json!({"status": next})),
        now,
    )
    .await?;
    Ok(updated)
}

pub async fn reject<C: ConnectionTrait>(
    c: &C,
    reference: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Count, OpError> {
    let validator = actor.user_id.ok_or_else(|| StoreError::Other("a rejection needs a validator".into()))?;
    let count = by_reference(c, reference).await?.ok_or_else(|| Rejection::non_trouve("Comptage"))?;
    domain::inventory::reject(&count.status, &count.counter_id.to_string(), &validator.to_string(), reason)?;
    counts::Entity::update_many()
        .col_expr(counts::Column::Status, Expr::value("REJECTED"))
        .col_expr(counts::Column::DecidedBy, Expr::value(Some(validator)))
        .col_expr(counts::Column::DecidedAt, Expr::value(Some(now)))
        .col_expr(counts::Column::RejectReason, Expr::value(Some(reason.trim().to_string())))
        .filter(counts::Column::Id.eq(count.id))
        .exec(c)
        .await?;
    audit::append(
        c,
        actor,
        Change::new("COUNT_REJECTED")
            .entity("inventory_count", &count.reference)
            .before(json!({"status": count.status}))
            .after(json!({"status": "REJECTED"}))
            .reason(reason.trim()),
        now,
    )
    .await?;
    Ok(Count {
        status: "REJECTED".into(),
        decided_by: Some(validator),
        decided_at: Some(now),
        reject_reason: Some(reason.trim().into()),
        ..count
    })
}

/// The hourly job: counts waiting more than 48 h expire, nothing posted.
pub async fn expire<C: ConnectionTrait>(c: &C, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
    let waiting =
        counts::Entity::find().filter(counts::Column::Status.is_in(["PENDING", "PENDING_DOUBLE"])).all(c).await?;
    let mut out = Vec::new();
    let system = Actor::system("inventory-expiry");
    for w in waiting.into_iter().filter(|w| domain::inventory::expired(&w.status, w.declared_at, now)) {
        counts::Entity::update_many()
            .col_expr(counts::Column::Status, Expr::value("EXPIRED"))
            .col_expr(counts::Column::DecidedAt, Expr::value(Some(now)))
            .filter(counts::Column::Id.eq(w.id))
            .exec(c)
            .await?;
        audit::append(
            c,
            &system,
            Change::new("COUNT_EXPIRED")
                .entity("inventory_count", &w.reference)
                .before(json!({"status": w.status}))
                .after(json!({"status": "EXPIRED"})),
            now,
        )
        .await?;
        out.push(w.reference);
    }
    Ok(out)
}
