//! Alerts (DOMAIN.md §7.3): at most one open alert per (type, object); a new detection refreshes it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alerts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub alert_type: String,
        pub severity: String,
        pub entity_type: String,
        pub entity_id: String,
        pub message: String,
        pub data: Option<String>,
        pub status: String,
        pub first_seen_at: ChronoDateTimeUtc,
        pub last_seen_at: ChronoDateTimeUtc,
        pub acknowledged_by: Option<Uuid>,
        pub acknowledged_at: Option<ChronoDateTimeUtc>,
        pub postponed_until: Option<ChronoDateTimeUtc>,
        pub closed_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Alert = entity::Model;

pub struct Raise<'a> {
    pub alert_type: &'a str,
    pub severity: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub message: String,
    pub data: serde_json::Value,
}

/// Opens an alert, or refreshes the open one of the same (type, object). Returns whether it is new.
pub async fn raise<C: ConnectionTrait>(c: &C, r: Raise<'_>, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let open = entity::Entity::find()
        .filter(entity::Column::AlertType.eq(r.alert_type))
        .filter(entity::Column::EntityType.eq(r.entity_type))
        .filter(entity::Column::EntityId.eq(r.entity_id))
        .filter(entity::Column::Status.is_in(["OPEN", "ACKNOWLEDGED", "POSTPONED"]))
        .one(c)
        .await?;
    let data = domain::canonical::to_string(&r.data);
    match open {
        Some(a) => {
            entity::Entity::update_many()
                .col_expr(entity::Column::LastSeenAt, Expr::value(now))
                .col_expr(entity::Column::Message, Expr::value(r.message))
                .col_expr(entity::Column::Data, Expr::value(data))
                .col_expr(entity::Column::Severity, Expr::value(r.severity))
                .filter(entity::Column::Id.eq(a.id))
                .exec(c)
                .await?;
            Ok(false)
        }
        None => {
            entity::Entity::insert(entity::ActiveModel {
                id: Set(Uuid::now_v7()),
                alert_type: Set(r.alert_type.into()),
                severity: Set(r.severity.into()),
                entity_type: Set(r.entity_type.into()),
                entity_id: Set(r.entity_id.into()),
                message: Set(r.message),
                data: Set(Some(data)),
                status: Set("OPEN".into()),
                first_seen_at: Set(now),
                last_seen_at: Set(now),
                acknowledged_by: Set(None),
                acknowledged_at: Set(None),
                postponed_until: Set(None),
                closed_at: Set(None),
            })
            .exec_without_returning(c)
            .await?;
            Ok(true)
        }
    }
}

pub async fn open_of_type(db: &crate::Db, alert_type: &str) -> Result<Vec<Alert>, StoreError> {
    Ok(entity::Entity::find()
        .filter(entity::Column::AlertType.eq(alert_type))
        .filter(entity::Column::Status.ne("CLOSED"))
        .order_by_asc(entity::Column::FirstSeenAt)
        .all(db.conn())
        .await?)
}
