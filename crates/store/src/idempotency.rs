//! Idempotency keys (PLATFORM.md §2.5). The key row is written in the transaction of the document it answers for, so
//! a crash leaves neither; a concurrent duplicate collides on the primary key and then reads the stored answer.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub method: String,
        pub route: String,
        pub request_hash: String,
        pub response_status: i32,
        pub response_body: String,
        pub created_at: ChronoDateTimeUtc,
        pub expires_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Stored = entity::Model;

/// Keys are kept 24 h.
pub const TTL_HOURS: i64 = 24;

/// The stored answer of a key still within its 24 h.
pub async fn find<C: ConnectionTrait>(
    c: &C,
    user_id: Uuid,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<Stored>, StoreError> {
    Ok(entity::Entity::find()
        .filter(entity::Column::UserId.eq(user_id))
        .filter(entity::Column::Key.eq(key))
        .filter(entity::Column::ExpiresAt.gt(now))
        .one(c)
        .await?)
}

/// Records the answer, in the document's transaction. An expired row of the same key is replaced.
#[allow(clippy::too_many_arguments)]
pub async fn record<C: ConnectionTrait>(
    c: &C,
    user_id: Uuid,
    key: &str,
    method: &str,
    route: &str,
    request_hash: &str,
    status: u16,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    entity::Entity::delete_many()
        .filter(entity::Column::UserId.eq(user_id))
        .filter(entity::Column::Key.eq(key))
        .filter(entity::Column::ExpiresAt.lte(now))
        .exec(c)
        .await?;
    entity::Entity::insert(entity::ActiveModel {
        user_id: Set(user_id),
        key: Set(key.to_string()),
        method: Set(method.to_string()),
        route: Set(route.to_string()),
        request_hash: Set(request_hash.to_string()),
        response_status: Set(i32::from(status)),
        response_body: Set(body.to_string()),
        created_at: Set(now),
        expires_at: Set(now + Duration::hours(TTL_HOURS)),
    })
    .exec_without_returning(c)
    .await?;
    Ok(())
}

/// Deletes keys past their 24 h (the retention job); returns how many.
pub async fn purge(db: &crate::Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let tx = db.begin_write().await?;
    let r = entity::Entity::delete_many().filter(entity::Column::ExpiresAt.lte(now)).exec(&*tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected)
}
