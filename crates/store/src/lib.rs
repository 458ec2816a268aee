//! Storage: the database handle on SQLite or PostgreSQL, the schema and its migrations, and every write.
//!
//! One module per area; the platform's own tables (secrets, job leases, schema metadata) live in `platform`.

/// A table of plain columns keyed by a UUID `id` (the sales and delivery tables).
macro_rules! entity {
    ($module:ident, $table:literal, { $($field:ident : $ty:ty),* $(,)? }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: Uuid,
                $(pub $field: $ty,)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

pub mod accounting;
pub mod alerts;
pub mod appro;
pub mod audit;
pub mod backups;
pub mod catalogue;
pub mod db;
pub mod delivery;
pub mod error;
pub mod idempotency;
pub mod identity;
pub mod integrity;
pub mod inventory;
pub mod jobs;
pub mod kpi;
pub mod migration;
pub mod procurement;
pub mod production;
pub mod purchase;
pub mod sales;
pub mod schema;
pub mod secrets;
pub mod settings;
pub mod stock;
pub mod sync;
pub mod trace;

pub use db::{Backend, Db, DbOptions, Transient, WriteTx};
pub use error::{OpError, StoreError};
/// What the app's read helpers are generic over (a connection or a transaction).
pub use sea_orm::ConnectionTrait;
/// A transaction or savepoint handed out by [`WriteTx::savepoint`] and [`Db::snapshot`].
pub use sea_orm::DatabaseTransaction;
