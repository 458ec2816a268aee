//! Receptions (DOMAIN.md §6.3): one command creates the document, one lot and one RECEPTION movement per line, the
//! numbers (`REC-YYYY-NNNNN`, `L{YYMMDD}-{NNN}`) and the audit entry, in one transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::stock::LotStatus;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};
use crate::stock::{Mover, NewLot, Product, Source};

pub mod receptions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "receptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reference: String,
        pub supplier_id: Uuid,
        pub purchase_order_id: Option<Uuid>,
        pub reception_date: ChronoDate,
        pub supplier_delivery_note: Option<String>,
        pub supplier_invoice_number: Option<String>,
        pub total_ht: i64,
        pub total_tva: i64,
        pub total_ttc: i64,
        pub created_by: Option<Uuid>,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod lines {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reception_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reception_id: Uuid,
        pub line_no: i32,
        pub product_id: Uuid,
        pub quantity: i64,
        pub unit_cost_ht: i64,
        pub tva_rate: i32,
        pub amount_ht: i64,
        pub amount_tva: i64,
        pub amount_ttc: i64,
        pub supplier_lot_number: Option<String>,
        pub dlc: Option<ChronoDate>,
        pub manufacture_date: Option<ChronoDate>,
        pub lot_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Reception = receptions::Model;
pub type Line = lines::Model;

/// A checked line with its product.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub product: Product,
    pub quantity: i64,
    pub unit_cost_ht: i64,
    pub tva_rate: i32,
    pub supplier_lot_number: Option<String>,
    pub dlc: Option<NaiveDate>,
    pub manufacture_date: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct NewReception {
    pub supplier_id: Uuid,
    /// The purchase order received against (SENT, CONFIRMED or PARTIAL, same supplier).
    pub purchase_order_id: Option<Uuid>,
    pub reception_date: NaiveDate,
    pub supplier_delivery_note: Option<String>,
    pub supplier_invoice_number: Option<String>,
    pub lines: Vec<NewLine>,
}

/// The lot numbers of a day: `L{YYMMDD}-{NNN}`, one sequence per reception date for all MPs.
async fn next_mp_lot<C: ConnectionTrait>(c: &C, d: NaiveDate) -> Result<String, StoreError> {
    let n = crate::stock::next_number(c, "LOT_MP", &d.format("%Y-%m-%d").to_string()).await?;
    Ok(domain::stock::mp_lot_number(d, n))
}

pub async fn create_reception<C: ConnectionTrait>(
    c: &C,
    new: NewReception,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Reception, Vec<(Line, crate::stock::Lot)>), OpError> {
    // Against an order: lock it first (two receptions of the same order run one after the other), check it may be
    // received; its lines are updated after the lots, in this same transaction.
    let order = match new.purchase_order_id {
        Some(po) => {
            let o = crate::purchase::lock_by_id(c, po)
                .await?
                .ok_or_else(|| domain::rejection::Rejection::non_trouve("Bon de commande"))?;
            let status = crate::purchase::status_of(&o);
            domain::purchase::check_receivable(&o.reference, status, o.supplier_id == new.supplier_id)?;
            Some(o)
        }
        None => None,
    };
    let n = crate::stock::next_number(c, "REC", &new.reception_date.year().to_string()).await?;
    let reference = domain::stock::doc_ref("REC", new.reception_date.year(), n);
    let id = Uuid::now_v7();
    let mover = Mover { user_id: actor.user_id, device_id: actor.device_id.clone(), ip: actor.ip.clone() };
    let mut out_lines = Vec::new();
    let (mut ht, mut tva, mut ttc) = (Vec::new(), Vec::new(), Vec::new());
    // The reception row first: lines reference it.
    receptions::Entity::insert(receptions::ActiveModel {
        id: Set(id),
        reference: Set(reference.clone()),
        supplier_id: Set(new.supplier_id),
        purchase_order_id: Set(new.purchase_order_id),
        reception_date: Set(new.reception_date),
        supplier_delivery_note: Set(new.supplier_delivery_note.clone()),
        supplier_invoice_number: Set(new.supplier_invoice_number.clone()),
        total_ht: Set(0),
        total_tva: Set(0),
        total_ttc: Set(0),
        created_by: Set(actor.user_id),
        created_at: Set(now),
    })
    .exec_without_returning(c)
    .await?;
    for (i, l) in new.lines.iter().enumerate() {
        let totals = domain::procurement::line_totals(l.quantity, l.unit_cost_ht, l.tva_rate)?;
        let line_id = Uuid::now_v7();
        let number = next_mp_lot(c, new.reception_date).await?;
        let source = Source {
            origin: "RECEPTION",
            source_type: Some("RECEPTION"),
            source_id: Some(id),
            reference: Some(reference.clone()),
        };
        let (lot, _) = crate::stock::create_lot(
            c,
            NewLot {
                number,
                product_id: l.product.id,
                supplier_lot_number: l.supplier_lot_number.clone(),
                lot_origin: "RECEPTION",
                quantity: l.quantity,
                unit_cost: l.unit_cost_ht,
                dlc: l.dlc,
                manufacture_date: l.manufacture_date,
                status: if l.product.qc_required { LotStatus::Quarantine } else { LotStatus::Available },
            },
            &source,
            format!("REC:{line_id}"),
            &mover,
            now,
        )
        .await?;
        let line = Line {
            id: line_id,
            reception_id: id,
            line_no: i as i32 + 1,
            product_id: l.product.id,
            quantity: l.quantity,
            unit_cost_ht: l.unit_cost_ht,
            tva_rate: l.tva_rate,
            amount_ht: totals.ht,
            amount_tva: totals.tva,
            amount_ttc: totals.ttc,
            supplier_lot_number: l.supplier_lot_number.clone(),
            dlc: l.dlc,
            manufacture_date: l.manufacture_date,
            lot_id: lot.id,
        };
        lines::Entity::insert(lines::ActiveModel {
            id: Set(line.id),
            reception_id: Set(id),
            line_no: Set(line.line_no),
            product_id: Set(line.product_id),
            quantity: Set(line.quantity),
            unit_cost_ht: Set(line.unit_cost_ht),
            tva_rate: Set(line.tva_rate),
            amount_ht: Set(line.amount_ht),
            amount_tva: Set(line.amount_tva),
            amount_ttc: Set(line.amount_ttc),
            supplier_lot_number: Set(line.supplier_lot_number.clone()),
            dlc: Set(line.dlc),
            manufacture_date: Set(line.manufacture_date),
            lot_id: Set(lot.id),
        })
        .exec_without_returning(c)
        .await?;
        ht.push(totals.ht);
        tva.push(totals.tva);
        ttc.push(totals.ttc);
        out_lines.push((line, lot));
    }
    let (total_ht, total_tva, total_ttc) =
        (domain::money::sum(ht)?, domain::money::sum(tva)?, domain::money::sum(ttc)?);
    receptions::Entity::update_many()
        .col_expr(receptions::Column::TotalHt, sea_orm::sea_query::Expr::value(total_ht))
        .col_expr(receptions::Column::TotalTva, sea_orm::sea_query::Expr::value(total_tva))
        .col_expr(receptions::Column::TotalTtc, sea_orm::sea_query::Expr::value(total_ttc))
        .filter(receptions::Column::Id.eq(id))
        .exec(c)
        .await?;
    let reception = Reception {
        id,
        reference: reference.clone(),
        supplier_id: new.supplier_id,
        purchase_order_id: new.purchase_order_id,
        reception_date: new.reception_date,
        supplier_delivery_note: new.supplier_delivery_note,
        supplier_invoice_number: new.supplier_invoice_number,
        total_ht,
        total_tva,
        total_ttc,
        created_by: actor.user_id,
        created_at: now,
    };
    if let Some(o) = order {
        let incoming: Vec<(String, Uuid, i64)> =
            new.lines.iter().map(|l| (l.product.code.clone(), l.product.id, l.quantity)).collect();
        crate::purchase::apply_reception(c, o, &incoming, new.reception_date, actor, now).await?;
    }
    let lots: Vec<_> = out_lines
        .iter()
        .map(|(_, l)| json!({"lot": l.lot_number, "quantity": l.initial_quantity, "status": l.status}))
        .collect();
    audit::append(
        c,
        actor,
        Change::new("RECEPTION_CREATED")
            .entity("reception", id)
            .after(json!({"reference": reference, "totalHt": total_ht, "totalTva": total_tva, "totalTtc": total_ttc, "lots": lots})),
        now,
    )
    .await?;
    Ok((reception, out_lines))
}

pub async fn by_reference<C: ConnectionTrait>(
    c: &C,
    reference: &str,
) -> Result<Option<(Reception, Vec<Line>)>, StoreError> {
    let Some(r) =
        receptions::Entity::find().filter(receptions::Column::Reference.eq(reference.to_uppercase())).one(c).await?
    else {
        return Ok(None);
    };
    let ls = lines::Entity::find()
        .filter(lines::Column::ReceptionId.eq(r.id))
        .order_by_asc(lines::Column::LineNo)
        .all(c)
        .await?;
    Ok(Some((r, ls)))
}

pub async fn list(db: &crate::Db) -> Result<Vec<Reception>, StoreError> {
    Ok(receptions::Entity::find().order_by_desc(receptions::Column::CreatedAt).all(db.conn()).await?)
}

/// A reception as its page shows it: the supplier's code and, per line, the product code, lot number and lot status.
pub type LineView = (Line, String, String, String);

pub async fn detail<C: ConnectionTrait>(
    c: &C,
    reference: &str,
) -> Result<Option<(Reception, String, Vec<LineView>)>, StoreError> {
    let Some((r, ls)) = by_reference(c, reference).await? else { return Ok(None) };
    let supplier = crate::catalogue::suppliers::Entity::find_by_id(r.supplier_id)
        .one(c)
        .await?
        .map(|s| s.code)
        .unwrap_or_default();
    let mut out = Vec::new();
    for l in ls {
        let code = crate::stock::product(c, l.product_id).await?.map(|p| p.code).unwrap_or_default();
        let lot = crate::stock::lots::Entity::find_by_id(l.lot_id).one(c).await?;
        let (num, status) = lot.map(|x| (x.lot_number, x.status)).unwrap_or_default();
        out.push((l, code, num, status));
    }
    Ok(Some((r, supplier, out)))
}
