//! Storage: the database handle on SQLite or PostgreSQL, the schema and its migrations, and every write.
//!
//! One module per area; the platform's own tables (secrets, job leases, schema metadata) live in `platform`.

pub mod alerts;
pub mod appro;
pub mod audit;
pub mod backups;
pub mod catalogue;
pub mod db;
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
pub mod schema;
pub mod secrets;
pub mod settings;
pub mod stock;
pub mod trace;

pub use db::{Backend, Db, DbOptions, Transient, WriteTx};
pub use error::{OpError, StoreError};
