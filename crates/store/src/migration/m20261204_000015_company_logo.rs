//! The company logo printed on documents (DOMAIN.md §18). Each logo is kept by the SHA-256 of its bytes and never
//! deleted: an invoice's identity snapshot names the logo it was issued with, which a later change cannot alter.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000015_company_logo"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("company_logos"))
                    .col(ColumnDef::new(Alias::new("sha256")).text().not_null().primary_key())
                    .col(ColumnDef::new(Alias::new("content_type")).text().not_null())
                    .col(ColumnDef::new(Alias::new("data")).binary().not_null())
                    .col(ColumnDef::new(Alias::new("created_at")).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("company_settings"))
                    .add_column(ColumnDef::new(Alias::new("logo_sha256")).text().null())
                    .to_owned(),
            )
            .await
    }
}
