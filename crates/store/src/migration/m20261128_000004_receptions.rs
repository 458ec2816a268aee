//! Receptions (DOMAIN.md §6.3): the document and its lines, each line pointing at the lot it created.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000004_receptions"
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
                    .table(Alias::new("receptions"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("reference").text().not_null().unique_key())
                    .col(c("supplier_id").uuid().not_null())
                    .col(c("purchase_order_id").uuid().null())
                    .col(c("reception_date").date().not_null())
                    .col(c("supplier_delivery_note").text().null())
                    .col(c("supplier_invoice_number").text().null())
                    .col(c("total_ht").big_integer().not_null())
                    .col(c("total_tva").big_integer().not_null())
                    .col(c("total_ttc").big_integer().not_null())
                    .col(c("created_by").uuid().null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("receptions"), Alias::new("supplier_id"))
                            .to(Alias::new("suppliers"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("reception_lines"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("reception_id").uuid().not_null())
                    .col(c("line_no").integer().not_null())
                    .col(c("product_id").uuid().not_null())
                    .col(c("quantity").big_integer().not_null().check(Expr::col(Alias::new("quantity")).gt(0)))
                    .col(c("unit_cost_ht").big_integer().not_null())
                    .col(c("tva_rate").integer().not_null())
                    .col(c("amount_ht").big_integer().not_null())
                    .col(c("amount_tva").big_integer().not_null())
                    .col(c("amount_ttc").big_integer().not_null())
                    .col(c("supplier_lot_number").text().null())
                    .col(c("dlc").date().null())
                    .col(c("manufacture_date").date().null())
                    .col(c("lot_id").uuid().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("reception_lines"), Alias::new("reception_id"))
                            .to(Alias::new("receptions"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("reception_lines"), Alias::new("product_id"))
                            .to(Alias::new("products"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alias::new("reception_lines"), Alias::new("lot_id"))
                            .to(Alias::new("lots"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            ("receptions_date_idx", "receptions", vec!["reception_date"]),
            ("receptions_supplier_idx", "receptions", vec!["supplier_id"]),
            ("reception_lines_reception_idx", "reception_lines", vec!["reception_id"]),
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
