//! Supplier blocking (DOMAIN.md §4.3): reason, end date (none = "indéfini"), who and when.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000007_supplier_block"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds a single column per ALTER TABLE.
        let columns = [
            ColumnDef::new(Alias::new("block_reason")).text().null().to_owned(),
            ColumnDef::new(Alias::new("blocked_until")).date().null().to_owned(),
            ColumnDef::new(Alias::new("blocked_at")).timestamp_with_time_zone().null().to_owned(),
            ColumnDef::new(Alias::new("blocked_by")).uuid().null().to_owned(),
        ];
        for mut c in columns {
            manager.alter_table(Table::alter().table(Alias::new("suppliers")).add_column(&mut c).to_owned()).await?;
        }
        Ok(())
    }
}
