//! Purchase orders (DOMAIN.md §6.1, §6.2): the order and its lines with the quantities received so far; the supplier's
//! performance (§6.4), recomputed in each BC reception's transaction.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000010_purchase_orders"
    }
}

fn c(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn fk(from_table: &str, from_col: &str, to_table: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Alias::new(from_table), Alias::new(from_col))
        .to(Alias::new(to_table), Alias::new("id"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statuses = ["DRAFT", "SENT", "CONFIRMED", "PARTIAL", "RECEIVED", "CANCELLED"].map(String::from);
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("purchase_orders"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("reference").text().not_null().unique_key())
                    .col(c("supplier_id").uuid().not_null())
                    .col(c("status").text().not_null().check(Expr::col(Alias::new("status")).is_in(statuses)))
                    .col(c("order_date").date().not_null())
                    .col(c("expected_date").date().null())
                    .col(c("notes").text().null())
                    .col(c("total_ht").big_integer().not_null())
                    .col(c("total_tva").big_integer().not_null())
                    .col(c("total_ttc").big_integer().not_null())
                    // EMAIL (the address) or MANUEL (the note): the proof of sending (§6.2).
                    .col(c("send_mode").text().null())
                    .col(c("send_proof").text().null())
                    .col(c("sent_at").timestamp_with_time_zone().null())
                    .col(c("confirmed_at").timestamp_with_time_zone().null())
                    .col(c("confirmed_date").date().null())
                    .col(c("first_reception_date").date().null())
                    .col(c("last_reception_date").date().null())
                    .col(c("received_at").timestamp_with_time_zone().null())
                    .col(c("close_reason").text().null())
                    .col(c("cancel_reason").text().null())
                    .col(c("cancelled_at").timestamp_with_time_zone().null())
                    .col(c("created_by").uuid().null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .col(c("updated_at").timestamp_with_time_zone().not_null())
                    .foreign_key(&mut fk("purchase_orders", "supplier_id", "suppliers"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("purchase_order_lines"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("purchase_order_id").uuid().not_null())
                    .col(c("line_no").integer().not_null())
                    .col(c("product_id").uuid().not_null())
                    .col(
                        c("quantity_ordered")
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Alias::new("quantity_ordered")).gt(0)),
                    )
                    .col(c("quantity_received").big_integer().not_null().default(0))
                    .col(c("unit_price_ht").big_integer().not_null())
                    .col(c("tva_rate").integer().not_null())
                    .col(c("amount_ht").big_integer().not_null())
                    .col(c("amount_tva").big_integer().not_null())
                    .col(c("amount_ttc").big_integer().not_null())
                    .foreign_key(&mut fk("purchase_order_lines", "purchase_order_id", "purchase_orders"))
                    .foreign_key(&mut fk("purchase_order_lines", "product_id", "products"))
                    .to_owned(),
            )
            .await?;
        for (name, table, cols, unique) in [
            ("purchase_orders_supplier_idx", "purchase_orders", vec!["supplier_id", "status"], false),
            ("purchase_orders_status_idx", "purchase_orders", vec!["status", "expected_date"], false),
            ("purchase_order_lines_order_idx", "purchase_order_lines", vec!["purchase_order_id", "product_id"], true),
            ("purchase_order_lines_product_idx", "purchase_order_lines", vec!["product_id"], false),
            ("receptions_purchase_order_idx", "receptions", vec!["purchase_order_id"], false),
        ] {
            let mut i = Index::create();
            i.name(name).table(Alias::new(table));
            if unique {
                i.unique();
            }
            for col in cols {
                i.col(Alias::new(col));
            }
            manager.create_index(i.to_owned()).await?;
        }
        // §6.4: one row per supplier that has had a BC reception, written only by that transaction (kept apart from
        // the supplier row, which its edit form rewrites).
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("supplier_performance"))
                    .col(c("supplier_id").uuid().not_null().primary_key())
                    .col(c("orders").integer().not_null())
                    .col(c("on_time_bp").integer().null())
                    .col(c("accuracy_bp").integer().null())
                    .col(c("score").integer().null())
                    .col(c("grade").text().not_null())
                    .col(c("updated_at").timestamp_with_time_zone().not_null())
                    .foreign_key(&mut fk("supplier_performance", "supplier_id", "suppliers"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
