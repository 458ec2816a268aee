//! Idempotency keys (PLATFORM.md §2.5): the stored answer of a document-creating POST, per user and key.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000008_idempotency"
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
                    .table(Alias::new("idempotency_keys"))
                    .col(c("user_id").uuid().not_null())
                    .col(c("key").text().not_null())
                    .col(c("method").text().not_null())
                    .col(c("route").text().not_null())
                    .col(c("request_hash").text().not_null())
                    .col(c("response_status").integer().not_null())
                    .col(c("response_body").text().not_null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .col(c("expires_at").timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(Alias::new("user_id")).col(Alias::new("key")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_expires_at")
                    .table(Alias::new("idempotency_keys"))
                    .col(Alias::new("expires_at"))
                    .to_owned(),
            )
            .await
    }
}
