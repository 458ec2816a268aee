//! Inventory counts (DOMAIN.md §13).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000006_inventory_counts"
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
                    .table(Alias::new("inventory_counts"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("reference").text().not_null().unique_key())
                    .col(c("product_id").uuid().not_null())
                    .col(c("counter_id").uuid().not_null())
                    .col(c("declared_at").timestamp_with_time_zone().not_null())
                    .col(c("business_date").date().not_null())
                    .col(c("theoretical").big_integer().not_null())
                    .col(c("declared").big_integer().not_null())
                    .col(c("difference").big_integer().not_null())
                    .col(c("pct_bp").big_integer().not_null())
                    .col(c("unit_value").big_integer().not_null())
                    .col(c("value").big_integer().not_null())
                    .col(
                        c("risk")
                            .text()
                            .not_null()
                            .check(Expr::col(Alias::new("risk")).is_in(["LOW", "MEDIUM", "HIGH", "CRITICAL"])),
                    )
                    .col(c("suspect").boolean().not_null())
                    .col(c("status").text().not_null().check(Expr::col(Alias::new("status")).is_in([
                        "APPROVED",
                        "PENDING",
                        "PENDING_DOUBLE",
                        "REJECTED",
                        "EXPIRED",
                    ])))
                    .col(c("surplus_dlc").date().null())
                    .col(c("note").text().null())
                    .col(c("first_validator_id").uuid().null())
                    .col(c("first_validated_at").timestamp_with_time_zone().null())
                    .col(c("decided_by").uuid().null())
                    .col(c("decided_at").timestamp_with_time_zone().null())
                    .col(c("reject_reason").text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("inventory_counts"), Alias::new("product_id"))
                            .to(Alias::new("products"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("inventory_counts_product_idx")
                    .table(Alias::new("inventory_counts"))
                    .col(Alias::new("product_id"))
                    .col(Alias::new("declared_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
