//! Backup runs (PLATFORM.md §12.1 step 4): what feeds the backup age in health and metrics.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000009_backup_runs"
    }
}

fn c(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("backup_runs"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("kind").text().not_null())
                    .col(c("started_at").timestamp_with_time_zone().not_null())
                    .col(c("finished_at").timestamp_with_time_zone().not_null())
                    .col(c("file").text().null())
                    .col(c("size_bytes").big_integer().null())
                    .col(c("sha256").text().null())
                    .col(c("status").text().not_null())
                    .col(c("verified").boolean().not_null())
                    .col(c("label").text().null())
                    .col(c("host").text().null())
                    .col(c("error").text().null())
                    .to_owned(),
            )
            .await
    }
}
