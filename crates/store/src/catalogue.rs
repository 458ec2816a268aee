//! Products (MP and PF), suppliers and clients (DOMAIN.md §3, §4): creation, edits under the immutability rules,
//! lists. Inputs arrive checked by `domain::catalogue`; every change is audited in its transaction.

use chrono::{DateTime, Utc};
use domain::catalogue::{Mp, Party, Pf};
use domain::rejection::Rejection;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};
use crate::stock::{Product, products};

macro_rules! party_entity {
    ($module:ident, $table:literal, $($extra:ident : $ty:ty),*) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: Uuid,
                pub code: String,
                pub raison_sociale: String,
                pub forme_juridique: Option<String>,
                pub adresse: Option<String>,
                pub wilaya: Option<String>,
                pub commune: Option<String>,
                pub telephone: Option<String>,
                pub email: Option<String>,
                pub rc: Option<String>,
                pub nif: Option<String>,
                pub ai: Option<String>,
                pub nis: Option<String>,
                pub contact_name: Option<String>,
                pub notes: Option<String>,
                pub active: bool,
                pub created_at: ChronoDateTimeUtc,
                pub updated_at: ChronoDateTimeUtc,
                $(pub $extra: $ty,)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

party_entity!(suppliers, "suppliers", payment_terms_days: i32, block_reason: Option<String>,
    blocked_until: Option<ChronoDate>, blocked_at: Option<ChronoDateTimeUtc>, blocked_by: Option<Uuid>);
party_entity!(clients, "clients", client_type: String, credit_limit: Option<i64>, payment_terms_days: i32,
    default_payment_method: String, delivery_address: Option<String>);

pub type Supplier = suppliers::Model;
pub type Client = clients::Model;

pub fn product_json(p: &Product) -> serde_json::Value {
    json!({"code": p.code, "name": p.name, "kind": p.kind, "baseUnit": p.base_unit, "category": p.category,
           "perishable": p.perishable, "qcRequired": p.qc_required, "minStock": p.min_stock,
           "safetyThreshold": p.safety_threshold, "reorderThreshold": p.reorder_threshold,
           "leadTimeDays": p.lead_time_days, "criticite": p.criticite, "stockTracked": p.stock_tracked,
           "weightG": p.weight_g, "packagingType": p.packaging_type, "storageType": p.storage_type,
           "shelfLifeDays": p.shelf_life_days, "listPriceHt": p.list_price_ht, "tvaRate": p.tva_rate,
           "familyId": p.family_id, "brandId": p.brand_id, "mainSupplierId": p.main_supplier_id, "active": p.active})
}

pub async fn product_by_code<C: ConnectionTrait>(c: &C, code: &str) -> Result<Option<Product>, StoreError> {
    Ok(products::Entity::find().filter(products::Column::Code.eq(code.to_uppercase())).one(c).await?)
}

pub async fn list_products(db: &crate::Db, kind: &str) -> Result<Vec<Product>, StoreError> {
    Ok(products::Entity::find()
        .filter(products::Column::Kind.eq(kind))
        .order_by_asc(products::Column::Code)
        .all(db.conn())
        .await?)
}

fn code_taken(code: &str) -> Rejection {
    Rejection::new("CODE_DEJA_UTILISE", 409, format!("Le code {code} est déjà utilisé."))
}

async fn has_movements<C: ConnectionTrait>(c: &C, product_id: Uuid) -> Result<bool, StoreError> {
    Ok(crate::stock::lots::Entity::find().filter(crate::stock::lots::Column::ProductId.eq(product_id)).count(c).await?
        > 0)
}

/// Creates or updates an MP. The code and the base unit are immutable once the product has stock history.
pub async fn save_mp<C: ConnectionTrait>(
    c: &C,
    existing: Option<Product>,
    m: Mp,
    main_supplier_id: Option<Uuid>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Product, OpError> {
    let mut p = match &existing {
        Some(p) => p.clone(),
        None => {
            if product_by_code(c, &m.code).await?.is_some() {
                return Err(code_taken(&m.code).into());
            }
            crate::stock::create_product(
                c,
                crate::stock::NewProduct {
                    kind: "MP",
                    code: m.code.clone(),
                    name: m.name.clone(),
                    base_unit: "KG",
                    perishable: m.perishable,
                    qc_required: m.qc_required,
                    shelf_life_days: None,
                    min_stock: m.min_stock,
                },
                now,
            )
            .await?
        }
    };
    if let Some(old) = &existing
        && (old.code != m.code || old.base_unit != m.base_unit)
        && has_movements(c, old.id).await?
    {
        return Err(Rejection::new(
            "PRODUIT_UTILISE",
            409,
            "Le code et l'unité ne se modifient plus une fois des mouvements enregistrés.",
        )
        .into());
    }
    let before = existing.as_ref().map(product_json);
    p.code = m.code;
    p.name = m.name;
    p.category = Some(m.category);
    p.base_unit = m.base_unit;
    p.perishable = m.perishable;
    p.qc_required = m.qc_required;
    p.min_stock = m.min_stock;
    p.safety_threshold = m.safety_threshold;
    p.reorder_threshold = m.reorder_threshold;
    p.lead_time_days = m.lead_time_days;
    p.criticite = Some(m.criticite);
    p.stock_tracked = m.stock_tracked;
    p.main_supplier_id = main_supplier_id;
    p.updated_at = now;
    write_product(c, &p).await?;
    let action = if existing.is_some() { "PRODUCT_UPDATED" } else { "PRODUCT_CREATED" };
    let mut change = Change::new(action).entity("product", p.id).after(product_json(&p));
    if let Some(b) = before {
        change = change.before(b);
    }
    audit::append(c, actor, change, now).await?;
    Ok(p)
}

/// Creates or updates a PF (code and unit immutable once a lot exists).
pub async fn save_pf<C: ConnectionTrait>(
    c: &C,
    existing: Option<Product>,
    f: Pf,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Product, OpError> {
    let mut p = match &existing {
        Some(p) => p.clone(),
        None => {
            if product_by_code(c, &f.code).await?.is_some() {
                return Err(code_taken(&f.code).into());
            }
            crate::stock::create_product(
                c,
                crate::stock::NewProduct {
                    kind: "PF",
                    code: f.code.clone(),
                    name: f.name.clone(),
                    base_unit: "U",
                    perishable: true,
                    qc_required: false,
                    shelf_life_days: Some(f.shelf_life_days),
                    min_stock: f.min_stock,
                },
                now,
            )
            .await?
        }
    };
    if let Some(old) = &existing
        && (old.code != f.code || old.base_unit != f.base_unit)
        && has_movements(c, old.id).await?
    {
        return Err(Rejection::new(
            "PRODUIT_UTILISE",
            409,
            "Le code et l'unité ne se modifient plus une fois un lot créé.",
        )
        .into());
    }
    let before = existing.as_ref().map(product_json);
    p.code = f.code;
    p.name = f.name;
    p.base_unit = f.base_unit;
    p.weight_g = f.weight_g;
    p.packaging_type = Some(f.packaging_type);
    p.storage_type = Some(f.storage_type);
    p.shelf_life_days = Some(f.shelf_life_days);
    p.list_price_ht = f.list_price_ht;
    p.tva_rate = f.tva_rate;
    p.min_stock = f.min_stock;
    p.family_id =
        crate::settings::reference_by_code(c, crate::settings::RefKind::Family, &f.family_code).await?.map(|r| r.id);
    p.brand_id = match &f.brand_code {
        Some(b) => crate::settings::reference_by_code(c, crate::settings::RefKind::Brand, b).await?.map(|r| r.id),
        None => None,
    };
    p.perishable = true;
    p.updated_at = now;
    write_product(c, &p).await?;
    let action = if existing.is_some() { "PRODUCT_UPDATED" } else { "PRODUCT_CREATED" };
    let mut change = Change::new(action).entity("product", p.id).after(product_json(&p));
    if let Some(b) = before {
        change = change.before(b);
    }
    audit::append(c, actor, change, now).await?;
    feed_product(c, &p, now).await?;
    Ok(p)
}

/// A PF's labels and list price to every device (catalogue: audience `*`).
pub async fn feed_product<C: ConnectionTrait>(c: &C, p: &Product, now: DateTime<Utc>) -> Result<(), StoreError> {
    let data = Some(product_device_json(p));
    crate::sync::append(c, "PRODUCT", &p.id.to_string(), "upsert", &crate::sync::Audience::everyone(), data, now)
        .await?;
    Ok(())
}

async fn write_product<C: ConnectionTrait>(c: &C, p: &Product) -> Result<(), StoreError> {
    products::Entity::update(p.clone().into_active_model().reset_all()).exec(c).await?;
    Ok(())
}

// ---- parties ---------------------------------------------------------------------------------------------------

pub fn supplier_json(s: &Supplier) -> serde_json::Value {
    json!({"code": s.code, "raisonSociale": s.raison_sociale, "formeJuridique": s.forme_juridique,
           "adresse": s.adresse, "wilaya": s.wilaya, "commune": s.commune, "telephone": s.telephone,
           "email": s.email, "rc": s.rc, "nif": s.nif, "ai": s.ai, "nis": s.nis, "contactName": s.contact_name,
           "notes": s.notes, "paymentTermsDays": s.payment_terms_days, "active": s.active,
           "blocked": s.block_reason.is_some(), "blockReason": s.block_reason, "blockedUntil": s.blocked_until})
}

/// `FOURNISSEUR_BLOQUE` when the supplier's block is in force on `today` (§4.3).
pub fn refuse_if_blocked(s: &Supplier, today: chrono::NaiveDate) -> Result<(), Rejection> {
    if domain::catalogue::supplier_blocked(s.block_reason.as_deref(), s.blocked_until, today) {
        return Err(domain::catalogue::fournisseur_bloque(
            &s.raison_sociale,
            s.blocked_until,
            s.block_reason.as_deref().unwrap_or_default(),
        ));
    }
    Ok(())
}

/// Blocks a supplier (ADMIN, §4.3) or, with `block = None`, lifts the block early with a note.
pub async fn set_supplier_block<C: ConnectionTrait>(
    c: &C,
    code: &str,
    block: Option<(String, Option<chrono::NaiveDate>)>,
    note: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Supplier, OpError> {
    let s = supplier_by_code(c, code).await?.ok_or_else(|| Rejection::non_trouve("Fournisseur"))?;
    let today = domain::stock::today_algiers(now);
    let mut after = s.clone();
    let action = match &block {
        Some((reason, until)) => {
            domain::catalogue::check_supplier_block(reason, *until, today)?;
            after.block_reason = Some(reason.trim().to_string());
            after.blocked_until = *until;
            after.blocked_at = Some(now);
            after.blocked_by = actor.user_id;
            "SUPPLIER_BLOCKED"
        }
        None => {
            if !domain::catalogue::supplier_blocked(s.block_reason.as_deref(), s.blocked_until, today) {
                return Err(Rejection::transition_invalide("Non bloqué", "Débloqué").into());
            }
            if note.trim().chars().count() < 5 {
                return Err(Rejection::motif_obligatoire(5).into());
            }
            after.block_reason = None;
            after.blocked_until = None;
            after.blocked_at = None;
            after.blocked_by = None;
            "SUPPLIER_UNBLOCKED"
        }
    };
    after.updated_at = now;
    suppliers::Entity::update(after.clone().into_active_model().reset_all()).exec(c).await?;
    let reason = block.as_ref().map(|b| b.0.trim().to_string()).unwrap_or_else(|| note.trim().to_string());
    audit::append(
        c,
        actor,
        Change::new(action)
            .entity("supplier", s.id)
            .before(json!({"blockReason": s.block_reason, "blockedUntil": s.blocked_until}))
            .after(json!({"blockReason": after.block_reason, "blockedUntil": after.blocked_until}))
            .reason(reason),
        now,
    )
    .await?;
    Ok(after)
}

pub fn client_json(c: &Client) -> serde_json::Value {
    json!({"code": c.code, "raisonSociale": c.raison_sociale, "formeJuridique": c.forme_juridique,
           "adresse": c.adresse, "wilaya": c.wilaya, "commune": c.commune, "telephone": c.telephone,
           "email": c.email, "rc": c.rc, "nif": c.nif, "ai": c.ai, "nis": c.nis, "contactName": c.contact_name,
           "notes": c.notes, "clientType": c.client_type, "creditLimit": c.credit_limit,
           "paymentTermsDays": c.payment_terms_days, "defaultPaymentMethod": c.default_payment_method,
           "deliveryAddress": c.delivery_address, "active": c.active})
}

fn nif_taken(nif: &str, owner: &str) -> Rejection {
    Rejection::new("NIF_DEJA_UTILISE", 409, format!("Ce NIF est déjà utilisé par {owner}."))
        .with_details(json!({"nif": nif, "tiers": owner}))
}

/// A client as drivers' devices know it: contact and address, no commercial terms.
pub fn client_device_json(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "code": c.code, "raisonSociale": c.raison_sociale, "adresse": c.adresse,
        "deliveryAddress": c.delivery_address, "wilaya": c.wilaya, "commune": c.commune, "telephone": c.telephone,
        "email": c.email, "contactName": c.contact_name, "active": c.active,
    })
}

/// Every PF, active or not (devices label old BLs too).
pub async fn pf_products<C: ConnectionTrait>(c: &C) -> Result<Vec<Product>, StoreError> {
    Ok(products::Entity::find()
        .filter(products::Column::Kind.eq("PF"))
        .order_by_asc(products::Column::Code)
        .all(c)
        .await?)
}

/// A product as devices know it (labels and list price; no cost).
pub fn product_device_json(p: &Product) -> serde_json::Value {
    serde_json::json!({
        "id": p.id, "code": p.code, "name": p.name, "kind": p.kind, "baseUnit": p.base_unit,
        "storageType": p.storage_type, "listPriceHt": p.list_price_ht, "active": p.active,
    })
}

/// The client's snapshot to the feed of every driver with an open BL for it.
pub async fn feed_client<C: ConnectionTrait>(c: &C, cl: &Client, now: DateTime<Utc>) -> Result<(), StoreError> {
    let data = client_device_json(cl);
    for driver in crate::delivery::drivers_of_client(c, cl.id).await? {
        let audience = crate::sync::Audience::User(driver);
        crate::sync::append(c, "CLIENT", &cl.id.to_string(), "upsert", &audience, Some(data.clone()), now).await?;
    }
    Ok(())
}

/// A contact change from a device (PLATFORM.md §7.5 `CLIENT_CONTACT_UPDATED`): `phone`, `address`, `contactName`,
/// `email`, each checked as on the client form (D§4.2) and written unless a later event already set that field (last
/// writer wins per field, by the device's `occurredAt`). Answers the client and the fields written.
pub async fn update_contact<C: ConnectionTrait>(
    c: &C,
    client_id: Uuid,
    fields: &[(&str, String)],
    occurred_at: DateTime<Utc>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Client, Vec<String>), OpError> {
    let backend = c.get_database_backend();
    let lock = if backend == sea_orm::DbBackend::Postgres { " FOR UPDATE" } else { "" };
    c.execute_raw(crate::stock::stmt(
        backend,
        &format!("SELECT id FROM clients WHERE id = $1{lock}"),
        vec![client_id.into()],
    ))
    .await?;
    let before = client_by_id(c, client_id).await?.ok_or_else(|| Rejection::non_trouve("Client"))?;
    let mut cl = before.clone();
    let mut written = Vec::new();
    for (field, raw) in fields {
        let value = raw.trim().to_string();
        let value = match *field {
            "phone" if !value.is_empty() => domain::parties::phone(&value)?,
            "email" if !value.is_empty() => domain::parties::email(&value)?,
            _ => value,
        };
        let row = c
            .query_one_raw(crate::stock::stmt(
                backend,
                "SELECT updated_at FROM client_field_times WHERE client_id = $1 AND field = $2",
                vec![client_id.into(), (*field).into()],
            ))
            .await?;
        let last: Option<DateTime<Utc>> = match row {
            Some(r) => Some(r.try_get("", "updated_at")?),
            None => None,
        };
        if !domain::sync::field_wins(last, occurred_at) {
            continue;
        }
        let v = Some(value).filter(|v| !v.is_empty());
        match *field {
            "phone" => cl.telephone = v,
            "address" => cl.adresse = v,
            "contactName" => cl.contact_name = v,
            "email" => cl.email = v,
            _ => continue,
        }
        c.execute_raw(crate::stock::stmt(
            backend,
            "INSERT INTO client_field_times (client_id, field, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, field) DO UPDATE SET updated_at = excluded.updated_at",
            vec![client_id.into(), (*field).into(), occurred_at.into()],
        ))
        .await?;
        written.push(field.to_string());
    }
    if !written.is_empty() {
        cl.updated_at = now;
        clients::Entity::update(cl.clone().into_active_model().reset_all()).exec(c).await?;
        let change =
            Change::new("CLIENT_UPDATED").entity("client", cl.id).before(client_json(&before)).after(client_json(&cl));
        audit::append(c, actor, change, now).await?;
        feed_client(c, &cl, now).await?;
    }
    Ok((cl, written))
}

pub async fn supplier_by_code<C: ConnectionTrait>(c: &C, code: &str) -> Result<Option<Supplier>, StoreError> {
    Ok(suppliers::Entity::find().filter(suppliers::Column::Code.eq(code.to_uppercase())).one(c).await?)
}

pub async fn supplier_by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Supplier>, StoreError> {
    Ok(suppliers::Entity::find_by_id(id).one(c).await?)
}

pub async fn client_by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Client>, StoreError> {
    Ok(clients::Entity::find_by_id(id).one(c).await?)
}

pub async fn client_by_code<C: ConnectionTrait>(c: &C, code: &str) -> Result<Option<Client>, StoreError> {
    Ok(clients::Entity::find().filter(clients::Column::Code.eq(code.to_uppercase())).one(c).await?)
}

pub async fn list_suppliers(db: &crate::Db) -> Result<Vec<Supplier>, StoreError> {
    Ok(suppliers::Entity::find().order_by_asc(suppliers::Column::Code).all(db.conn()).await?)
}

pub async fn list_clients(db: &crate::Db) -> Result<Vec<Client>, StoreError> {
    Ok(clients::Entity::find().order_by_asc(clients::Column::Code).all(db.conn()).await?)
}

/// A party row built from its checked identity: the columns suppliers and clients share, then the extra ones.
macro_rules! party_model {
    ($model:ident, $id:expr, $code:expr, $p:expr, $active:expr, $created:expr, $now:expr, { $($extra:ident: $val:expr),* $(,)? }) => {
        $model {
            id: $id,
            code: $code,
            raison_sociale: $p.raison_sociale,
            forme_juridique: $p.forme_juridique,
            adresse: $p.adresse,
            wilaya: $p.wilaya,
            commune: $p.commune,
            telephone: $p.telephone,
            email: $p.email,
            rc: $p.rc,
            nif: $p.nif,
            ai: $p.ai,
            nis: $p.nis,
            contact_name: $p.contact_name,
            notes: $p.notes,
            active: $active,
            created_at: $created,
            updated_at: $now,
            $($extra: $val,)*
        }
    };
}

/// Id, code, creation date and active flag of a party: kept when it exists, new (`FOUR-0001`, `CLI-0001`) otherwise.
async fn party_keys<C: ConnectionTrait>(
    c: &C,
    existing: Option<(Uuid, String, DateTime<Utc>, bool)>,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<(Uuid, String, DateTime<Utc>, bool), StoreError> {
    match existing {
        Some(k) => Ok(k),
        None => {
            let n = crate::stock::next_number(c, prefix, "global").await?;
            Ok((Uuid::now_v7(), domain::stock::party_code(prefix, n), now, true))
        }
    }
}

/// Creates or updates a supplier; the NIF is unique among active suppliers.
pub async fn save_supplier<C: ConnectionTrait>(
    c: &C,
    existing: Option<Supplier>,
    p: Party,
    payment_terms_days: i32,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Supplier, OpError> {
    if let Some(nif) = &p.nif
        && let Some(other) = suppliers::Entity::find()
            .filter(suppliers::Column::Nif.eq(nif.clone()))
            .filter(suppliers::Column::Active.eq(true))
            .one(c)
            .await?
        && existing.as_ref().is_none_or(|e| e.id != other.id)
    {
        return Err(nif_taken(nif, &other.raison_sociale).into());
    }
    let keys = existing.as_ref().map(|e| (e.id, e.code.clone(), e.created_at, e.active));
    let (id, code, created_at, active) = party_keys(c, keys, "FOUR", now).await?;
    let block = existing.as_ref().map(|e| (e.block_reason.clone(), e.blocked_until, e.blocked_at, e.blocked_by));
    let (block_reason, blocked_until, blocked_at, blocked_by) = block.unwrap_or_default();
    let s = party_model!(Supplier, id, code, p, active, created_at, now, {
        payment_terms_days: payment_terms_days,
        block_reason: block_reason,
        blocked_until: blocked_until,
        blocked_at: blocked_at,
        blocked_by: blocked_by,
    });
    let am = s.clone().into_active_model().reset_all();
    if existing.is_some() {
        suppliers::Entity::update(am).exec(c).await?;
    } else {
        suppliers::Entity::insert(am).exec_without_returning(c).await?;
    }
    let action = if existing.is_some() { "SUPPLIER_UPDATED" } else { "SUPPLIER_CREATED" };
    let mut change = Change::new(action).entity("supplier", s.id).after(supplier_json(&s));
    if let Some(e) = &existing {
        change = change.before(supplier_json(e));
    }
    audit::append(c, actor, change, now).await?;
    Ok(s)
}

/// Commercial terms of a client (ADMIN-only fields, DOMAIN.md §2.2 capability 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTerms {
    pub client_type: String,
    pub credit_limit: Option<i64>,
    pub payment_terms_days: i32,
    pub default_payment_method: String,
}

/// Creates or updates a client; the NIF is unique among active clients.
pub async fn save_client<C: ConnectionTrait>(
    c: &C,
    existing: Option<Client>,
    p: Party,
    terms: ClientTerms,
    delivery_address: Option<String>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Client, OpError> {
    if let Some(nif) = &p.nif
        && let Some(other) = clients::Entity::find()
            .filter(clients::Column::Nif.eq(nif.clone()))
            .filter(clients::Column::Active.eq(true))
            .one(c)
            .await?
        && existing.as_ref().is_none_or(|e| e.id != other.id)
    {
        return Err(nif_taken(nif, &other.raison_sociale).into());
    }
    let keys = existing.as_ref().map(|e| (e.id, e.code.clone(), e.created_at, e.active));
    let (id, code, created_at, active) = party_keys(c, keys, "CLI", now).await?;
    let cl = party_model!(Client, id, code, p, active, created_at, now, {
        client_type: terms.client_type,
        credit_limit: terms.credit_limit,
        payment_terms_days: terms.payment_terms_days,
        default_payment_method: terms.default_payment_method,
        delivery_address: delivery_address,
    });
    let am = cl.clone().into_active_model().reset_all();
    if existing.is_some() {
        clients::Entity::update(am).exec(c).await?;
    } else {
        clients::Entity::insert(am).exec_without_returning(c).await?;
    }
    if existing.is_some() {
        feed_client(c, &cl, now).await?;
    }
    let action = if existing.is_some() { "CLIENT_UPDATED" } else { "CLIENT_CREATED" };
    let mut change = Change::new(action).entity("client", cl.id).after(client_json(&cl));
    if let Some(e) = &existing {
        change = change.before(client_json(e));
    }
    audit::append(c, actor, change, now).await?;
    Ok(cl)
}

/// Deactivates or reactivates a product (the blocking checks of §3.3/3.4 join with recipes, BCs and invoices).
/// What keeps an MP active (DOMAIN.md §3.3): the active recipe versions that use it and the open purchase orders
/// that order it, named (`recette PF-EDAM v3`, `BC-2025-00042`).
pub async fn mp_blockers<C: ConnectionTrait>(c: &C, product_id: Uuid) -> Result<Vec<String>, StoreError> {
    let backend = c.get_database_backend();
    let recipes = c
        .query_all_raw(crate::stock::stmt(
            backend,
            "SELECT p.code AS code, v.version AS version FROM recipe_items i \
             JOIN recipe_versions v ON v.id = i.recipe_version_id JOIN products p ON p.id = v.product_id \
             WHERE i.product_id = $1 AND v.status = 'ACTIVE' ORDER BY p.code",
            vec![product_id.into()],
        ))
        .await?;
    let orders = c
        .query_all_raw(crate::stock::stmt(
            backend,
            "SELECT DISTINCT o.reference AS reference FROM purchase_order_lines l \
             JOIN purchase_orders o ON o.id = l.purchase_order_id \
             WHERE l.product_id = $1 AND o.status IN ('DRAFT', 'SENT', 'CONFIRMED', 'PARTIAL') ORDER BY o.reference",
            vec![product_id.into()],
        ))
        .await?;
    let mut out = Vec::new();
    for r in recipes {
        let (code, v): (String, i32) = (r.try_get("", "code")?, r.try_get("", "version")?);
        out.push(format!("recette {code} v{v}"));
    }
    for r in orders {
        out.push(r.try_get::<String>("", "reference")?);
    }
    Ok(out)
}

pub async fn set_product_active<C: ConnectionTrait>(
    c: &C,
    p: &Product,
    active: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    if !active && p.kind == "PF" {
        let stock: i64 = crate::stock::lots_of(c, p.id).await?.iter().map(|l| l.quantity_remaining).sum();
        if stock > 0 {
            return Err(Rejection::new(
                "PRODUIT_UTILISE",
                409,
                format!("Produit utilisé par du stock restant : désactivation impossible ({}).", p.code),
            )
            .into());
        }
    }
    if !active && p.kind == "MP" {
        let blockers = mp_blockers(c, p.id).await?;
        if !blockers.is_empty() {
            return Err(Rejection::new(
                "PRODUIT_UTILISE",
                409,
                format!("{} est utilisé : {}. Désactivation impossible.", p.code, blockers.join(", ")),
            )
            .with_details(serde_json::json!({"blockers": blockers}))
            .into());
        }
    }
    products::Entity::update_many()
        .col_expr(products::Column::Active, Expr::value(active))
        .col_expr(products::Column::UpdatedAt, Expr::value(now))
        .filter(products::Column::Id.eq(p.id))
        .exec(c)
        .await?;
    if p.kind == "PF" {
        feed_product(c, &Product { active, updated_at: now, ..p.clone() }, now).await?;
    }
    let action = if active { "PRODUCT_REACTIVATED" } else { "PRODUCT_DEACTIVATED" };
    audit::append(c, actor, Change::new(action).entity("product", p.id), now).await?;
    Ok(())
}
