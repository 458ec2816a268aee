//! Catalogue, parties and the stock ledger (DOMAIN.md §3, §4, §5, §15): brands, families, products (MP and PF in
//! one table), suppliers, clients, company settings, gapless sequences, lots and the append-only movement ledger.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000003_stock"
    }
}

fn id() -> ColumnDef {
    ColumnDef::new(Alias::new("id")).uuid().not_null().primary_key().to_owned()
}

fn text(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).text().not_null().to_owned()
}

fn text_null(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).text().null().to_owned()
}

fn big(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).big_integer().not_null().to_owned()
}

fn big_null(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).big_integer().null().to_owned()
}

fn int(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).integer().not_null().to_owned()
}

fn int_null(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).integer().null().to_owned()
}

fn flag(c: &str, default: bool) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).boolean().not_null().default(default).to_owned()
}

fn ts(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).timestamp_with_time_zone().not_null().to_owned()
}

fn ts_null(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).timestamp_with_time_zone().null().to_owned()
}

fn date(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).date().not_null().to_owned()
}

fn date_null(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).date().null().to_owned()
}

fn uuid_null(c: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(c)).uuid().null().to_owned()
}

fn one_of(c: &str, values: &[&str]) -> ColumnDef {
    ColumnDef::new(Alias::new(c))
        .text()
        .not_null()
        .check(Expr::col(Alias::new(c)).is_in(values.iter().map(ToString::to_string)))
        .to_owned()
}

fn fk(from_table: &str, from_col: &str, to_table: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Alias::new(from_table), Alias::new(from_col))
        .to(Alias::new(to_table), Alias::new("id"))
        .to_owned()
}

fn index(name: &str, table: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(Alias::new(table));
    for c in cols {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

fn party(table: &str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(table))
        .col(id())
        .col(text("code").unique_key().to_owned())
        .col(text("raison_sociale"))
        .col(text_null("forme_juridique"))
        .col(text_null("adresse"))
        .col(text_null("wilaya"))
        .col(text_null("commune"))
        .col(text_null("telephone"))
        .col(text_null("email"))
        .col(text_null("rc"))
        .col(text_null("nif"))
        .col(text_null("ai"))
        .col(text_null("nis"))
        .col(text_null("contact_name"))
        .col(text_null("notes"))
        .col(flag("active", true))
        .col(ts("created_at"))
        .col(ts("updated_at"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["brands", "families"] {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new(t))
                        .col(id())
                        .col(text("code").unique_key().to_owned())
                        .col(text("name"))
                        .col(flag("active", true))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("company_settings"))
                    .col(
                        ColumnDef::new(Alias::new("id"))
                            .integer()
                            .not_null()
                            .primary_key()
                            .check(Expr::col(Alias::new("id")).eq(1)),
                    )
                    .col(text("raison_sociale"))
                    .col(text_null("forme_juridique"))
                    .col(big_null("capital_social"))
                    .col(text_null("adresse"))
                    .col(text_null("wilaya"))
                    .col(text_null("commune"))
                    .col(text_null("rc"))
                    .col(text_null("nif"))
                    .col(text_null("ai"))
                    .col(text_null("nis"))
                    .col(text_null("telephone"))
                    .col(text_null("email"))
                    .col(text_null("rib"))
                    .col(text_null("bank_name"))
                    .col(text_null("invoice_footer"))
                    .col(ts("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager.create_table(party("suppliers").col(int("payment_terms_days").default(0)).to_owned()).await?;
        manager
            .create_table(
                party("clients")
                    .col(one_of("client_type", &["DISTRIBUTEUR", "GROSSISTE", "SUPERETTE", "FAST_FOOD"]))
                    .col(big_null("credit_limit"))
                    .col(int("payment_terms_days").default(0))
                    .col(one_of("default_payment_method", &["ESPECES", "CHEQUE", "VIREMENT"]))
                    .col(text_null("delivery_address"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("products"))
                    .col(id())
                    .col(one_of("kind", &["MP", "PF"]))
                    .col(text("code").unique_key().to_owned())
                    .col(text("name"))
                    .col(one_of("base_unit", &["KG", "G", "L", "ML", "U", "CRT", "RLX"]))
                    // MP
                    .col(text_null("category"))
                    .col(flag("perishable", false))
                    .col(flag("qc_required", false))
                    .col(big("min_stock").default(0))
                    .col(big("safety_threshold").default(0))
                    .col(big("reorder_threshold").default(0))
                    .col(int("lead_time_days").default(7))
                    .col(text_null("criticite"))
                    .col(uuid_null("main_supplier_id"))
                    .col(flag("stock_tracked", true))
                    // PF
                    .col(uuid_null("brand_id"))
                    .col(uuid_null("family_id"))
                    .col(int_null("weight_g"))
                    .col(text_null("packaging_type"))
                    .col(text_null("storage_type"))
                    .col(int_null("shelf_life_days"))
                    .col(big("list_price_ht").default(0))
                    .col(int("tva_rate").default(1900))
                    .col(flag("active", true))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .foreign_key(&mut fk("products", "main_supplier_id", "suppliers"))
                    .foreign_key(&mut fk("products", "brand_id", "brands"))
                    .foreign_key(&mut fk("products", "family_id", "families"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("sequences"))
                    .col(text("doc_type"))
                    .col(text("scope"))
                    .col(big("last_value"))
                    .primary_key(Index::create().col(Alias::new("doc_type")).col(Alias::new("scope")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("lots"))
                    .col(id())
                    .col(text("lot_number").unique_key().to_owned())
                    .col(ColumnDef::new(Alias::new("product_id")).uuid().not_null())
                    .col(text_null("supplier_lot_number"))
                    .col(one_of("origin", &["RECEPTION", "PRODUCTION", "INVENTORY", "RETURN"]))
                    .col(text_null("source_type"))
                    .col(uuid_null("source_id"))
                    .col(big("initial_quantity"))
                    .col(big("quantity_remaining"))
                    .col(big("unit_cost"))
                    .col(date_null("dlc"))
                    .col(date_null("manufacture_date"))
                    .col(one_of("status", &["AVAILABLE", "QUARANTINE", "BLOCKED", "CONSUMED"]))
                    .col(text_null("block_reason"))
                    .col(text_null("block_note"))
                    .col(uuid_null("blocked_by"))
                    .col(ts_null("blocked_at"))
                    .col(ts_null("consumed_at"))
                    .col(ts("created_at"))
                    // Movements written on the lot so far: the next one's `lot_seq`.
                    .col(big("movement_count"))
                    .foreign_key(&mut fk("lots", "product_id", "products"))
                    .check(Expr::col(Alias::new("quantity_remaining")).gte(0))
                    .check(Expr::col(Alias::new("initial_quantity")).gt(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("stock_movements"))
                    .col(id())
                    .col(ts("created_at"))
                    .col(date("business_date"))
                    .col(ColumnDef::new(Alias::new("lot_id")).uuid().not_null())
                    .col(ColumnDef::new(Alias::new("product_id")).uuid().not_null())
                    .col(one_of("direction", &["IN", "OUT"]))
                    .col(big("quantity"))
                    .col(one_of(
                        "origin",
                        &[
                            "RECEPTION",
                            "PRODUCTION_OUT",
                            "PRODUCTION_CANCEL",
                            "PRODUCTION_IN",
                            "SALE",
                            "CUSTOMER_RETURN",
                            "INVENTORY_ADJUST",
                            "LOSS",
                        ],
                    ))
                    .col(big("unit_cost"))
                    .col(text_null("source_type"))
                    .col(uuid_null("source_id"))
                    .col(text_null("source_reference"))
                    .col(uuid_null("user_id"))
                    .col(text_null("device_id"))
                    .col(text_null("ip"))
                    .col(text("idempotency_key").unique_key().to_owned())
                    .col(big("remaining_after"))
                    // 1, 2, 3 … per lot in commit order (taken under the lot's lock): the last one up to a date gives
                    // the lot's balance at that date.
                    .col(big("lot_seq"))
                    .foreign_key(&mut fk("stock_movements", "lot_id", "lots"))
                    .foreign_key(&mut fk("stock_movements", "product_id", "products"))
                    .check(Expr::col(Alias::new("quantity")).gt(0))
                    .to_owned(),
            )
            .await?;
        for i in [
            index("lots_product_fefo_idx", "lots", &["product_id", "status", "dlc", "created_at"], false),
            index("lots_dlc_idx", "lots", &["dlc"], false),
            // Stock at a past date: the last movement of each lot up to that day.
            index("stock_movements_lot_seq_idx", "stock_movements", &["lot_id", "lot_seq"], true),
            index("stock_movements_lot_date_idx", "stock_movements", &["lot_id", "business_date"], false),
            index("stock_movements_product_date_idx", "stock_movements", &["product_id", "business_date"], false),
            index("stock_movements_date_idx", "stock_movements", &["business_date"], false),
            index("products_kind_idx", "products", &["kind", "active"], false),
        ] {
            manager.create_index(i).await?;
        }
        let db = manager.get_connection();
        // The ledger is append-only (DOMAIN.md §5.4): a correction is a new movement, never an edit.
        let guards: &[&str] = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => &[
                "CREATE FUNCTION stock_movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'stock_movements is append-only'; END $$",
                "CREATE TRIGGER stock_movements_no_update BEFORE UPDATE ON stock_movements \
                 FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only()",
                "CREATE TRIGGER stock_movements_no_delete BEFORE DELETE ON stock_movements \
                 FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only()",
            ],
            _ => &[
                "CREATE TRIGGER stock_movements_no_update BEFORE UPDATE ON stock_movements \
                 BEGIN SELECT RAISE(ABORT, 'stock_movements is append-only'); END",
                "CREATE TRIGGER stock_movements_no_delete BEFORE DELETE ON stock_movements \
                 BEGIN SELECT RAISE(ABORT, 'stock_movements is append-only'); END",
            ],
        };
        for sql in guards {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
