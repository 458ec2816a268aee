//! Company settings, brands and families (DOMAIN.md §3.1, §3.2): ADMIN edits, every change audited in its
//! transaction. Inputs arrive checked by `domain::catalogue`.

use chrono::{DateTime, Utc};
use domain::catalogue::Company;
use domain::rejection::Rejection;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::error::{OpError, StoreError};

macro_rules! reference_entity {
    ($module:ident, $table:literal) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: Uuid,
                pub code: String,
                pub name: String,
                pub active: bool,
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

reference_entity!(brands, "brands");
reference_entity!(families, "families");

/// A brand or a family: the same shape, two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Brand,
    Family,
}

impl RefKind {
    pub fn entity(self) -> &'static str {
        match self {
            RefKind::Brand => "brand",
            RefKind::Family => "family",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            RefKind::Brand => "Marque",
            RefKind::Family => "Famille",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub active: bool,
}

pub fn reference_json(r: &Reference) -> serde_json::Value {
    json!({"code": r.code, "name": r.name, "active": r.active})
}

pub async fn references<C: ConnectionTrait>(c: &C, kind: RefKind) -> Result<Vec<Reference>, StoreError> {
    Ok(match kind {
        RefKind::Brand => brands::Entity::find()
            .order_by_asc(brands::Column::Code)
            .all(c)
            .await?
            .into_iter()
            .map(|m| Reference { id: m.id, code: m.code, name: m.name, active: m.active })
            .collect(),
        RefKind::Family => families::Entity::find()
            .order_by_asc(families::Column::Code)
            .all(c)
            .await?
            .into_iter()
            .map(|m| Reference { id: m.id, code: m.code, name: m.name, active: m.active })
            .collect(),
    })
}

pub async fn reference_by_code<C: ConnectionTrait>(
    c: &C,
    kind: RefKind,
    code: &str,
) -> Result<Option<Reference>, StoreError> {
    let code = code.trim().to_uppercase();
    Ok(references(c, kind).await?.into_iter().find(|r| r.code == code))
}

/// Creates a brand or family (`create`), or renames / (de)activates an existing one; the code never changes.
#[allow(clippy::too_many_arguments)]
pub async fn save_reference<C: ConnectionTrait>(
    c: &C,
    kind: RefKind,
    create: bool,
    code: &str,
    name: &str,
    active: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Reference, OpError> {
    let (code, name) = domain::catalogue::check_reference(code, name)?;
    let existing = reference_by_code(c, kind, &code).await?;
    let r = match (&existing, create) {
        (Some(_), true) => {
            return Err(Rejection::new("CODE_DEJA_UTILISE", 409, format!("Le code {code} existe déjà."))
                .with_details(json!({"fields": [{"field": "code", "code": "CODE_DEJA_UTILISE",
                    "message": format!("Le code {code} existe déjà.")}]}))
                .into());
        }
        (None, false) => return Err(Rejection::non_trouve(kind.label_fr()).into()),
        (Some(e), false) => Reference { name, active, ..e.clone() },
        (None, true) => Reference { id: Uuid::now_v7(), code, name, active: true },
    };
    macro_rules! write {
        ($m:ident) => {{
            let am = $m::ActiveModel {
                id: Set(r.id),
                code: Set(r.code.clone()),
                name: Set(r.name.clone()),
                active: Set(r.active),
            };
            if existing.is_some() {
                $m::Entity::update(am).exec(c).await?;
            } else {
                $m::Entity::insert(am).exec_without_returning(c).await?;
            }
        }};
    }
    match kind {
        RefKind::Brand => write!(brands),
        RefKind::Family => write!(families),
    }
    let action = match (kind, existing.is_some()) {
        (RefKind::Brand, false) => "BRAND_CREATED",
        (RefKind::Brand, true) => "BRAND_UPDATED",
        (RefKind::Family, false) => "FAMILY_CREATED",
        (RefKind::Family, true) => "FAMILY_UPDATED",
    };
    let mut change = Change::new(action).entity(kind.entity(), &r.code).after(reference_json(&r));
    if let Some(e) = &existing {
        change = change.before(reference_json(e));
    }
    audit::append(c, actor, change, now).await?;
    Ok(r)
}

pub mod company {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub raison_sociale: String,
        pub forme_juridique: Option<String>,
        pub capital_social: Option<i64>,
        pub adresse: Option<String>,
        pub wilaya: Option<String>,
        pub commune: Option<String>,
        pub rc: Option<String>,
        pub nif: Option<String>,
        pub ai: Option<String>,
        pub nis: Option<String>,
        pub telephone: Option<String>,
        pub email: Option<String>,
        pub rib: Option<String>,
        pub bank_name: Option<String>,
        pub invoice_footer: Option<String>,
        /// Seeded demo data: documents carry a "DÉMO" watermark.
        pub demo: bool,
        /// The current logo (table `company_logos`).
        pub logo_sha256: Option<String>,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type CompanySettings = company::Model;

pub fn company_json(s: &CompanySettings) -> serde_json::Value {
    json!({"raisonSociale": s.raison_sociale, "formeJuridique": s.forme_juridique, "capitalSocial": s.capital_social,
           "adresse": s.adresse, "wilaya": s.wilaya, "commune": s.commune, "rc": s.rc, "nif": s.nif, "ai": s.ai,
           "nis": s.nis, "telephone": s.telephone, "email": s.email, "rib": s.rib, "bankName": s.bank_name,
           "invoiceFooter": s.invoice_footer, "updatedAt": s.updated_at})
}

pub async fn company<C: ConnectionTrait>(c: &C) -> Result<Option<CompanySettings>, StoreError> {
    Ok(company::Entity::find().filter(company::Column::Id.eq(1)).one(c).await?)
}

pub mod logos {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "company_logos")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sha256: String,
        pub content_type: String,
        pub data: Vec<u8>,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Sets the company logo (checked by `domain::catalogue::check_logo`): kept by its SHA-256, never deleted (issued
/// documents name theirs), the settings row pointing at it; audited with the hashes before and after.
pub async fn save_logo<C: ConnectionTrait>(
    c: &C,
    bytes: Vec<u8>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<String, OpError> {
    let content_type = domain::catalogue::check_logo(&bytes)?;
    let before = company(c).await?.ok_or_else(|| {
        Rejection::new(
            "PARAMETRES_SOCIETE_INCOMPLETS",
            409,
            "Enregistrez d'abord les paramètres de la société, puis le logo.",
        )
    })?;
    let sha = domain::catalogue::logo_key(&bytes);
    if logos::Entity::find_by_id(sha.clone()).one(c).await?.is_none() {
        logos::Entity::insert(logos::ActiveModel {
            sha256: sea_orm::ActiveValue::Set(sha.clone()),
            content_type: sea_orm::ActiveValue::Set(content_type.into()),
            data: sea_orm::ActiveValue::Set(bytes),
            created_at: sea_orm::ActiveValue::Set(now),
        })
        .exec_without_returning(c)
        .await?;
    }
    company::Entity::update_many()
        .col_expr(company::Column::LogoSha256, sea_orm::sea_query::Expr::value(sha.clone()))
        .filter(company::Column::Id.eq(1))
        .exec(c)
        .await?;
    let change = Change::new("COMPANY_LOGO_UPDATED")
        .entity("company", 1)
        .before(json!({"logoSha256": before.logo_sha256}))
        .after(json!({"logoSha256": sha}));
    audit::append(c, actor, change, now).await?;
    Ok(sha)
}

/// A logo by its hash: (content type, bytes).
pub async fn logo<C: ConnectionTrait>(c: &C, sha256: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(logos::Entity::find_by_id(sha256.to_string()).one(c).await?.map(|l| (l.content_type, l.data)))
}

/// Whether this database holds the demo company (documents are watermarked).
pub async fn is_demo<C: ConnectionTrait>(c: &C) -> Result<bool, StoreError> {
    Ok(company(c).await?.is_some_and(|s| s.demo))
}

/// Marks the settings row as the demo company (`manchengo seed --demo`, after it saved the company).
pub async fn mark_demo<C: ConnectionTrait>(c: &C) -> Result<(), StoreError> {
    company::Entity::update_many()
        .col_expr(company::Column::Demo, sea_orm::sea_query::Expr::value(true))
        .filter(company::Column::Id.eq(1))
        .exec(c)
        .await?;
    Ok(())
}

/// Writes the single settings row (created at the first save); before and after go to the audit.
pub async fn save_company<C: ConnectionTrait>(
    c: &C,
    new: Company,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CompanySettings, OpError> {
    let before = company(c).await?;
    let i = new.identity;
    let s = CompanySettings {
        id: 1,
        raison_sociale: i.raison_sociale,
        forme_juridique: i.forme_juridique,
        capital_social: new.capital_social,
        adresse: i.adresse,
        wilaya: i.wilaya,
        commune: i.commune,
        rc: i.rc,
        nif: i.nif,
        ai: i.ai,
        nis: i.nis,
        telephone: i.telephone,
        email: i.email,
        rib: new.rib,
        bank_name: new.bank_name,
        invoice_footer: new.invoice_footer,
        demo: before.as_ref().is_some_and(|b| b.demo),
        logo_sha256: before.as_ref().and_then(|b| b.logo_sha256.clone()),
        updated_at: now,
    };
    let am = s.clone().into_active_model().reset_all();
    if before.is_some() {
        company::Entity::update(am).exec(c).await?;
    } else {
        company::Entity::insert(am).exec_without_returning(c).await?;
    }
    let mut change = Change::new("COMPANY_SETTINGS_UPDATED").entity("company", 1).after(company_json(&s));
    if let Some(b) = &before {
        change = change.before(company_json(b));
    }
    audit::append(c, actor, change, now).await?;
    Ok(s)
}
