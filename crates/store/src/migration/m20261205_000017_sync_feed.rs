//! The device feed and what sync stores beside its events (PLATFORM.md §7.4): `change_log` numbered in commit order
//! (the writer takes the feed lock, then the next number), the feed's epoch (a new one after a restore tells devices
//! to bootstrap again), the proofs pushed inline as base64 kept once by their SHA-256, and the per-field times of
//! client contact changes (last writer wins per field, by the device's `occurredAt`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000017_sync_feed"
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
                    .table(Alias::new("change_log"))
                    .col(c("seq").big_integer().not_null().primary_key())
                    .col(c("entity_type").text().not_null())
                    .col(c("entity_id").text().not_null())
                    .col(c("op").text().not_null().check(Expr::col(Alias::new("op")).is_in(["upsert", "delete"])))
                    .col(c("audience_user_id").uuid().null())
                    .col(c("audience_role").text().null())
                    // The device-facing snapshot (JSON text), never a binary nor an internal cost.
                    .col(c("data").text().null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        let mut i = Index::create();
        i.name("change_log_created_idx").table(Alias::new("change_log")).col(Alias::new("created_at"));
        manager.create_index(i.to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("sync_feed"))
                    .col(c("id").integer().not_null().primary_key())
                    .col(c("epoch").uuid().not_null())
                    .col(c("reset_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("attachments"))
                    .col(c("sha256").text().not_null().primary_key())
                    .col(c("content_type").text().not_null())
                    .col(c("size").big_integer().not_null())
                    .col(c("data").blob().not_null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("client_field_times"))
                    .col(c("client_id").uuid().not_null())
                    .col(c("field").text().not_null())
                    .col(c("updated_at").timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(Alias::new("client_id")).col(Alias::new("field")))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("client_field_times"), Alias::new("client_id"))
                            .to(Alias::new("clients"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
