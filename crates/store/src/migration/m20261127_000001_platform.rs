//! The platform's own tables: generated secrets, job leases, schema metadata.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000001_platform"
    }
}

#[derive(DeriveIden)]
enum ServerSecrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

#[derive(DeriveIden)]
enum JobLeases {
    Table,
    Name,
    Holder,
    LeaseUntil,
    LastRunAt,
    LastStatus,
    LastError,
    NextRunAt,
    LastRunKey,
}

#[derive(DeriveIden)]
enum SchemaMeta {
    Table,
    Id,
    MinReaderVersion,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerSecrets::Table)
                    .col(ColumnDef::new(ServerSecrets::Name).text().not_null().primary_key())
                    .col(ColumnDef::new(ServerSecrets::Value).text().not_null())
                    .col(ColumnDef::new(ServerSecrets::CreatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobLeases::Table)
                    .col(ColumnDef::new(JobLeases::Name).text().not_null().primary_key())
                    .col(ColumnDef::new(JobLeases::Holder).text().null())
                    .col(ColumnDef::new(JobLeases::LeaseUntil).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(JobLeases::LastRunAt).timestamp_with_time_zone().null())
                    .col(
                        ColumnDef::new(JobLeases::LastStatus)
                            .text()
                            .null()
                            .check(Expr::col(JobLeases::LastStatus).is_in(["ok", "error", "skipped"])),
                    )
                    .col(ColumnDef::new(JobLeases::LastError).text().null())
                    .col(ColumnDef::new(JobLeases::NextRunAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(JobLeases::LastRunKey).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SchemaMeta::Table)
                    .col(
                        ColumnDef::new(SchemaMeta::Id)
                            .integer()
                            .not_null()
                            .primary_key()
                            .check(Expr::col(SchemaMeta::Id).eq(1)),
                    )
                    .col(ColumnDef::new(SchemaMeta::MinReaderVersion).text().not_null())
                    .col(ColumnDef::new(SchemaMeta::UpdatedAt).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("job_leases_lease_until_idx")
                    .table(JobLeases::Table)
                    .col(JobLeases::LeaseUntil)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute(
            Query::insert()
                .into_table(SchemaMeta::Table)
                .columns([SchemaMeta::Id, SchemaMeta::MinReaderVersion, SchemaMeta::UpdatedAt])
                .values_panic([1.into(), "0.1.0".into(), chrono::Utc::now().into()]),
        )
        .await?;
        Ok(())
    }
}
