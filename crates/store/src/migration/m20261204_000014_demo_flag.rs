//! The demo company (DOMAIN.md §20): `manchengo seed --demo` marks the settings row, and every printed document of
//! that database carries a "DÉMO" watermark, including documents made later while trying the product.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000014_demo_flag"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("company_settings"))
                    .add_column(ColumnDef::new(Alias::new("demo")).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await
    }
}
