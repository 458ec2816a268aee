//! Alerts (DOMAIN.md §7.3): who postponed an alert and why, shown next to it until it reopens.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000012_alert_postpone"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for col in [
            ColumnDef::new(Alias::new("postpone_reason")).text().null().to_owned(),
            ColumnDef::new(Alias::new("postponed_by")).uuid().null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(Alias::new("alerts")).add_column(col).to_owned()).await?;
        }
        Ok(())
    }
}
