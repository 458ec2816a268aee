//! Secrets generated once and shared by every instance through the database (PLATFORM.md §3.2: `JWT_SECRET`,
//! `QR_SECRET` without a configured value). There is never a built-in default.

use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::db::Db;
use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "server_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Returns the stored secret `name`, creating it from 32 random bytes (hex) if it does not exist. Two instances
/// starting together agree: the insert is `ON CONFLICT DO NOTHING` and both read the row that won.
pub async fn get_or_create(db: &Db, name: &str) -> Result<String, StoreError> {
    if let Some(found) = entity::Entity::find_by_id(name.to_string()).one(db.conn()).await? {
        return Ok(found.value);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Other(format!("no system randomness: {e}")))?;
    let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tx = db.begin_write().await?;
    entity::Entity::insert(entity::ActiveModel {
        name: Set(name.to_string()),
        value: Set(value),
        created_at: Set(chrono::Utc::now()),
    })
    .on_conflict_do_nothing_on([entity::Column::Name])
    .exec(&*tx)
    .await?;
    tx.commit().await?;
    entity::Entity::find_by_id(name.to_string())
        .one(db.conn())
        .await?
        .map(|m| m.value)
        .ok_or_else(|| StoreError::Other(format!("secret {name} vanished after insert")))
}

/// Name of the first-run token in `server_secrets`.
pub const SETUP_TOKEN: &str = "SETUP_TOKEN";

/// The first-run token if one is pending.
pub async fn get(db: &Db, name: &str) -> Result<Option<String>, StoreError> {
    Ok(entity::Entity::find_by_id(name.to_string()).one(db.conn()).await?.map(|m| m.value))
}

/// Deletes a secret inside a caller's transaction (the setup token, when the first administrator is created).
pub async fn delete<C: sea_orm::ConnectionTrait>(c: &C, name: &str) -> Result<(), StoreError> {
    entity::Entity::delete_by_id(name.to_string()).exec(c).await?;
    Ok(())
}
