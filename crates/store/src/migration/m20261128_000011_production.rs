//! Recipes and production orders (DOMAIN.md §8): immutable recipe versions with one ACTIVE per PF, their items, the
//! orders that freeze a version, and the consumption rows (order → MP lot, quantity, cost) that the start writes and
//! traceability (§9) reads.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000011_production"
    }
}

fn c(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn one_of(name: &str, values: &[&str]) -> ColumnDef {
    c(name)
        .text()
        .not_null()
        .check(Expr::col(Alias::new(name)).is_in(values.iter().map(ToString::to_string)))
        .to_owned()
}

fn positive(name: &str) -> ColumnDef {
    c(name).big_integer().not_null().check(Expr::col(Alias::new(name)).gt(0)).to_owned()
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
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recipe_versions"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("product_id").uuid().not_null())
                    .col(c("version").integer().not_null())
                    .col(one_of("status", &["ACTIVE", "ARCHIVED"]))
                    .col(positive("output_quantity"))
                    .col(positive("batch_weight_g"))
                    .col(c("loss_tolerance_bp").integer().not_null())
                    .col(c("shelf_life_override_days").integer().null())
                    .col(c("notes").text().null())
                    .col(c("created_by").uuid().null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .col(c("archived_at").timestamp_with_time_zone().null())
                    .foreign_key(&mut fk("recipe_versions", "product_id", "products"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("recipe_items"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("recipe_version_id").uuid().not_null())
                    .col(c("line_no").integer().not_null())
                    .col(one_of("kind", &["MP", "PACKAGING", "FLUID"]))
                    // MP / PACKAGING: the stock item; FLUID: a name and a unit label, no stock.
                    .col(c("product_id").uuid().null())
                    .col(c("fluid_name").text().null())
                    .col(c("unit_label").text().null())
                    .col(positive("quantity"))
                    .col(c("unit_cost").big_integer().null())
                    .foreign_key(&mut fk("recipe_items", "recipe_version_id", "recipe_versions"))
                    .foreign_key(&mut fk("recipe_items", "product_id", "products"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("production_orders"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("reference").text().not_null().unique_key())
                    .col(c("product_id").uuid().not_null())
                    .col(c("recipe_version_id").uuid().not_null())
                    .col(one_of("status", &["PENDING", "IN_PROGRESS", "COMPLETED", "CANCELLED"]))
                    .col(c("batch_count").integer().not_null())
                    .col(positive("target_quantity"))
                    .col(c("planned_date").date().not_null())
                    .col(c("notes").text().null())
                    .col(c("started_at").timestamp_with_time_zone().null())
                    .col(c("started_by").uuid().null())
                    .col(c("completed_at").timestamp_with_time_zone().null())
                    .col(c("completed_by").uuid().null())
                    .col(c("completion_date").date().null())
                    .col(c("quantity_produced").big_integer().null())
                    .col(c("qc_status").text().null())
                    .col(c("qc_note").text().null())
                    .col(c("actual_batch_weight_g").big_integer().null())
                    .col(c("pf_lot_id").uuid().null())
                    .col(c("consumed_cost").big_integer().null())
                    .col(c("fluid_cost").big_integer().null())
                    .col(c("unit_cost").big_integer().null())
                    .col(c("yield_bp").integer().null())
                    .col(c("cancel_reason").text().null())
                    .col(c("cancelled_at").timestamp_with_time_zone().null())
                    .col(c("created_by").uuid().null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .col(c("updated_at").timestamp_with_time_zone().not_null())
                    .foreign_key(&mut fk("production_orders", "product_id", "products"))
                    .foreign_key(&mut fk("production_orders", "recipe_version_id", "recipe_versions"))
                    .foreign_key(&mut fk("production_orders", "pf_lot_id", "lots"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("production_consumptions"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("production_order_id").uuid().not_null())
                    .col(c("recipe_item_id").uuid().not_null())
                    .col(c("lot_id").uuid().not_null())
                    .col(c("product_id").uuid().not_null())
                    .col(positive("quantity"))
                    .col(c("unit_cost").big_integer().not_null())
                    .col(c("movement_id").uuid().not_null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    .foreign_key(&mut fk("production_consumptions", "production_order_id", "production_orders"))
                    .foreign_key(&mut fk("production_consumptions", "recipe_item_id", "recipe_items"))
                    .foreign_key(&mut fk("production_consumptions", "lot_id", "lots"))
                    .to_owned(),
            )
            .await?;
        for (name, table, cols, unique) in [
            ("recipe_versions_product_version_idx", "recipe_versions", vec!["product_id", "version"], true),
            ("recipe_items_version_idx", "recipe_items", vec!["recipe_version_id", "line_no"], true),
            ("recipe_items_product_idx", "recipe_items", vec!["product_id"], false),
            ("production_orders_status_idx", "production_orders", vec!["status", "planned_date"], false),
            ("production_orders_product_idx", "production_orders", vec!["product_id"], false),
            ("production_consumptions_order_idx", "production_consumptions", vec!["production_order_id"], false),
            // Forward trace (§9): which orders consumed a lot.
            ("production_consumptions_lot_idx", "production_consumptions", vec!["lot_id"], false),
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
        // §8.1: exactly one ACTIVE version per PF — a partial unique index, same text on both backends.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX recipe_versions_one_active_idx ON recipe_versions (product_id) \
                 WHERE status = 'ACTIVE'",
            )
            .await?;
        Ok(())
    }
}
