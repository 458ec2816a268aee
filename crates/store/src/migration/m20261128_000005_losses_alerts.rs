//! Losses (DOMAIN.md §14) and alerts (§7.3): one loss per lot written off; one open alert per (type, object).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000005_losses_alerts"
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
                    .table(Alias::new("losses"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("reference").text().not_null().unique_key())
                    .col(c("lot_id").uuid().not_null())
                    .col(c("product_id").uuid().not_null())
                    .col(c("quantity").big_integer().not_null().check(Expr::col(Alias::new("quantity")).gt(0)))
                    .col(c("reason").text().not_null().check(Expr::col(Alias::new("reason")).is_in([
                        "EXPIRED",
                        "DAMAGED",
                        "QC_FAILED",
                        "OTHER",
                    ])))
                    .col(c("note").text().null())
                    .col(c("value").big_integer().not_null())
                    .col(c("declared_by").uuid().null())
                    .col(c("declared_at").timestamp_with_time_zone().not_null())
                    .col(c("business_date").date().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("losses"), Alias::new("lot_id"))
                            .to(Alias::new("lots"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("losses"), Alias::new("product_id"))
                            .to(Alias::new("products"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("alerts"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("alert_type").text().not_null())
                    .col(
                        c("severity")
                            .text()
                            .not_null()
                            .check(Expr::col(Alias::new("severity")).is_in(["INFO", "WARNING", "CRITICAL"])),
                    )
                    .col(c("entity_type").text().not_null())
                    .col(c("entity_id").text().not_null())
                    .col(c("message").text().not_null())
                    .col(c("data").text().null())
                    .col(c("status").text().not_null().check(Expr::col(Alias::new("status")).is_in([
                        "OPEN",
                        "ACKNOWLEDGED",
                        "POSTPONED",
                        "CLOSED",
                    ])))
                    .col(c("first_seen_at").timestamp_with_time_zone().not_null())
                    .col(c("last_seen_at").timestamp_with_time_zone().not_null())
                    .col(c("acknowledged_by").uuid().null())
                    .col(c("acknowledged_at").timestamp_with_time_zone().null())
                    .col(c("postponed_until").timestamp_with_time_zone().null())
                    .col(c("closed_at").timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            ("losses_lot_idx", "losses", vec!["lot_id"]),
            ("losses_date_idx", "losses", vec!["business_date"]),
            ("alerts_open_idx", "alerts", vec!["alert_type", "entity_type", "entity_id", "status"]),
        ] {
            let mut i = Index::create();
            i.name(name).table(Alias::new(table));
            for col in cols {
                i.col(Alias::new(col));
            }
            manager.create_index(i.to_owned()).await?;
        }
        Ok(())
    }
}
