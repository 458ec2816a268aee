//! Sales and deliveries (DOMAIN.md §4.4, §10–§12, §19): price lists, the timbre rule table, invoices and their lines,
//! credit notes, payments (règlements and refunds), delivery notes with their lines, the lots each line shipped and
//! the proof of delivery, the scan log, and the chart of accounts. The timbre rules and the chart of accounts are
//! reference data loaded here (§20), to be confirmed by the company's accountant.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000013_sales"
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

fn money(name: &str) -> ColumnDef {
    c(name).big_integer().not_null().to_owned()
}

fn fk(from_table: &str, from_col: &str, to_table: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Alias::new(from_table), Alias::new(from_col))
        .to(Alias::new(to_table), Alias::new("id"))
        .to_owned()
}

fn table(name: &str) -> TableCreateStatement {
    Table::create().table(Alias::new(name)).col(c("id").uuid().not_null().primary_key()).to_owned()
}

const METHODS: [&str; 3] = ["ESPECES", "CHEQUE", "VIREMENT"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            table("price_lists")
                .col(c("name").text().not_null())
                .col(one_of("client_type", &["DISTRIBUTEUR", "GROSSISTE", "SUPERETTE", "FAST_FOOD"]))
                .col(c("valid_from").date().not_null())
                .col(c("valid_to").date().null())
                .col(c("active").boolean().not_null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .col(c("updated_at").timestamp_with_time_zone().not_null())
                .to_owned(),
            table("price_list_items")
                .col(c("price_list_id").uuid().not_null())
                .col(c("product_id").uuid().not_null())
                .col(money("min_quantity"))
                .col(money("unit_price"))
                .foreign_key(&mut fk("price_list_items", "price_list_id", "price_lists"))
                .foreign_key(&mut fk("price_list_items", "product_id", "products"))
                .to_owned(),
            Table::create()
                .table(Alias::new("timbre_rules"))
                .col(c("code").text().not_null().primary_key())
                .col(c("valid_from").date().null())
                .col(c("valid_to").date().null())
                // The whole rule as JSON (domain::timbre::Rule::to_json): brackets, tranche, minimum, cap.
                .col(c("definition").text().not_null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .to_owned(),
            table("invoices")
                .col(c("reference").text().null().unique_key())
                .col(c("client_id").uuid().not_null())
                .col(one_of("status", &["DRAFT", "VALIDATED", "PARTIALLY_PAID", "PAID", "CREDITED"]))
                .col(one_of("payment_method", &METHODS))
                .col(c("notes").text().null())
                .col(c("invoice_date").date().null())
                .col(c("due_date").date().null())
                .col(money("total_ht"))
                .col(money("total_tva"))
                .col(money("total_ttc"))
                .col(money("timbre"))
                .col(money("net"))
                .col(c("timbre_rule").text().null())
                .col(c("timbre_tranches").big_integer().null())
                // Frozen at validation (§10.2, §18): TVA rows, seller and buyer identities, as JSON.
                .col(c("vat_breakdown").text().not_null())
                .col(c("seller_snapshot").text().null())
                .col(c("buyer_snapshot").text().null())
                .col(c("credit_override_reason").text().null())
                .col(c("created_by").uuid().null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .col(c("updated_at").timestamp_with_time_zone().not_null())
                .col(c("validated_at").timestamp_with_time_zone().null())
                .col(c("validated_by").uuid().null())
                .col(c("paid_at").timestamp_with_time_zone().null())
                .foreign_key(&mut fk("invoices", "client_id", "clients"))
                .to_owned(),
            table("invoice_lines")
                .col(c("invoice_id").uuid().not_null())
                .col(c("line_no").integer().not_null())
                .col(c("product_id").uuid().not_null())
                .col(money("quantity"))
                .col(money("unit_price"))
                .col(one_of("price_source", &["TARIF", "PRIX_CATALOGUE", "MANUEL"]))
                .col(c("price_reason").text().null())
                .col(money("discount"))
                .col(c("rate_bp").integer().not_null())
                .col(money("gross"))
                .col(money("ht"))
                .col(money("tva"))
                .foreign_key(&mut fk("invoice_lines", "invoice_id", "invoices"))
                .foreign_key(&mut fk("invoice_lines", "product_id", "products"))
                .to_owned(),
            table("credit_notes")
                .col(c("reference").text().null().unique_key())
                .col(c("invoice_id").uuid().not_null())
                .col(one_of("status", &["DRAFT", "VALIDATED"]))
                .col(c("reason").text().not_null())
                .col(c("credit_date").date().null())
                .col(money("total_ht"))
                .col(money("total_tva"))
                .col(money("total_ttc"))
                .col(money("timbre"))
                .col(money("net"))
                .col(c("vat_breakdown").text().not_null())
                .col(c("created_by").uuid().null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .col(c("updated_at").timestamp_with_time_zone().not_null())
                .col(c("validated_at").timestamp_with_time_zone().null())
                .col(c("validated_by").uuid().null())
                .foreign_key(&mut fk("credit_notes", "invoice_id", "invoices"))
                .to_owned(),
            table("credit_note_lines")
                .col(c("credit_note_id").uuid().not_null())
                .col(c("line_no").integer().not_null())
                .col(c("invoice_line_id").uuid().not_null())
                .col(one_of("kind", &["NON_LIVRE", "RETOUR", "SANS_RETOUR", "PRIX"]))
                .col(money("quantity"))
                .col(money("ht"))
                .col(money("tva"))
                .col(c("rate_bp").integer().not_null())
                .col(c("return_lot_id").uuid().null())
                .foreign_key(&mut fk("credit_note_lines", "credit_note_id", "credit_notes"))
                .foreign_key(&mut fk("credit_note_lines", "invoice_line_id", "invoice_lines"))
                .foreign_key(&mut fk("credit_note_lines", "return_lot_id", "lots"))
                .to_owned(),
            table("payments")
                .col(c("reference").text().not_null().unique_key())
                .col(one_of("kind", &["REGLEMENT", "REMBOURSEMENT"]))
                .col(c("invoice_id").uuid().null())
                .col(c("client_id").uuid().not_null())
                .col(one_of("method", &METHODS))
                .col(c("amount").big_integer().not_null().check(Expr::col(Alias::new("amount")).gt(0)))
                .col(c("payment_date").date().not_null())
                .col(c("cheque_number").text().null())
                .col(c("bank_name").text().null())
                .col(c("cheque_date").date().null())
                .col(c("bank_reference").text().null())
                .col(c("notes").text().null())
                .col(one_of("status", &["ACTIVE", "ANNULE"]))
                .col(c("cancel_reason").text().null())
                .col(c("cancelled_at").timestamp_with_time_zone().null())
                .col(c("cancel_date").date().null())
                .col(c("cancelled_by").uuid().null())
                .col(c("created_by").uuid().null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .foreign_key(&mut fk("payments", "invoice_id", "invoices"))
                .foreign_key(&mut fk("payments", "client_id", "clients"))
                .to_owned(),
            // The id is the UUID printed in the BL's QR code.
            table("deliveries")
                .col(c("reference").text().not_null().unique_key())
                .col(c("invoice_id").uuid().not_null())
                .col(c("client_id").uuid().not_null())
                .col(one_of("status", &["PENDING", "VALIDATED", "DELIVERED", "CANCELLED"]))
                .col(c("delivery_address").text().null())
                .col(c("vehicle").text().null())
                .col(c("driver_user_id").uuid().null())
                .col(c("driver_name").text().null())
                .col(c("notes").text().null())
                .col(c("created_by").uuid().null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .col(c("updated_at").timestamp_with_time_zone().not_null())
                .col(c("validated_at").timestamp_with_time_zone().null())
                .col(c("validated_by").uuid().null())
                .col(c("validation_device").text().null())
                .col(c("validation_mode").text().null())
                .col(c("validation_note").text().null())
                .col(c("validation_command_id").text().null())
                .col(c("delivered_at").timestamp_with_time_zone().null())
                .col(c("delivered_by").uuid().null())
                .col(c("recipient_name").text().null())
                .col(c("gps_lat").double().null())
                .col(c("gps_lon").double().null())
                .col(c("gps_accuracy_m").double().null())
                .col(c("cancel_reason").text().null())
                .col(c("cancelled_at").timestamp_with_time_zone().null())
                .foreign_key(&mut fk("deliveries", "invoice_id", "invoices"))
                .foreign_key(&mut fk("deliveries", "client_id", "clients"))
                .to_owned(),
            table("delivery_lines")
                .col(c("delivery_id").uuid().not_null())
                .col(c("line_no").integer().not_null())
                .col(c("invoice_line_id").uuid().not_null())
                .col(c("product_id").uuid().not_null())
                .col(c("quantity").big_integer().not_null().check(Expr::col(Alias::new("quantity")).gt(0)))
                .foreign_key(&mut fk("delivery_lines", "delivery_id", "deliveries"))
                .foreign_key(&mut fk("delivery_lines", "invoice_line_id", "invoice_lines"))
                .to_owned(),
            table("delivery_allocations")
                .col(c("delivery_line_id").uuid().not_null())
                .col(c("lot_id").uuid().not_null())
                .col(c("quantity").big_integer().not_null().check(Expr::col(Alias::new("quantity")).gt(0)))
                .col(money("unit_cost"))
                .col(c("movement_id").uuid().not_null())
                .foreign_key(&mut fk("delivery_allocations", "delivery_line_id", "delivery_lines"))
                .foreign_key(&mut fk("delivery_allocations", "lot_id", "lots"))
                .to_owned(),
            table("delivery_proofs")
                .col(c("delivery_id").uuid().not_null())
                .col(one_of("kind", &["SIGNATURE", "PHOTO"]))
                .col(c("content_type").text().not_null())
                .col(c("data").binary().not_null())
                .col(c("created_at").timestamp_with_time_zone().not_null())
                .foreign_key(&mut fk("delivery_proofs", "delivery_id", "deliveries"))
                .to_owned(),
            // §12.1: one row per scan or manual validation attempt, success or not.
            table("scan_log")
                .col(c("at").timestamp_with_time_zone().not_null())
                .col(c("user_id").uuid().null())
                .col(c("device_id").text().null())
                .col(c("ip").text().null())
                .col(c("user_agent").text().null())
                .col(c("gps_lat").double().null())
                .col(c("gps_lon").double().null())
                .col(c("gps_accuracy_m").double().null())
                .col(c("mode").text().not_null())
                .col(c("payload_hash").text().null())
                .col(c("reference").text().null())
                .col(c("outcome").text().not_null())
                .to_owned(),
            Table::create()
                .table(Alias::new("chart_of_accounts"))
                .col(c("key").text().not_null().primary_key())
                .col(c("account").text().not_null())
                .col(c("label").text().not_null())
                .to_owned(),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }
        for (name, table, cols, unique) in [
            (
                "price_list_items_unique_idx",
                "price_list_items",
                vec!["price_list_id", "product_id", "min_quantity"],
                true,
            ),
            ("price_lists_type_idx", "price_lists", vec!["client_type", "valid_from"], false),
            ("invoices_client_idx", "invoices", vec!["client_id", "status"], false),
            ("invoices_status_date_idx", "invoices", vec!["status", "invoice_date"], false),
            ("invoice_lines_invoice_idx", "invoice_lines", vec!["invoice_id", "line_no"], true),
            ("invoice_lines_product_idx", "invoice_lines", vec!["product_id"], false),
            ("credit_notes_invoice_idx", "credit_notes", vec!["invoice_id"], false),
            ("credit_note_lines_note_idx", "credit_note_lines", vec!["credit_note_id", "line_no"], true),
            ("credit_note_lines_invoice_line_idx", "credit_note_lines", vec!["invoice_line_id"], false),
            ("payments_invoice_idx", "payments", vec!["invoice_id"], false),
            ("payments_client_idx", "payments", vec!["client_id", "payment_date"], false),
            ("deliveries_invoice_idx", "deliveries", vec!["invoice_id"], false),
            ("deliveries_status_idx", "deliveries", vec!["status", "created_at"], false),
            ("deliveries_driver_idx", "deliveries", vec!["driver_user_id"], false),
            ("delivery_lines_delivery_idx", "delivery_lines", vec!["delivery_id", "line_no"], true),
            ("delivery_lines_invoice_line_idx", "delivery_lines", vec!["invoice_line_id"], false),
            ("delivery_allocations_line_idx", "delivery_allocations", vec!["delivery_line_id"], false),
            // Forward trace (§9): which deliveries shipped a lot.
            ("delivery_allocations_lot_idx", "delivery_allocations", vec!["lot_id"], false),
            ("delivery_proofs_delivery_idx", "delivery_proofs", vec!["delivery_id", "kind"], true),
            ("scan_log_user_idx", "scan_log", vec!["user_id", "at"], false),
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
        // The shipped values come from the domain; changing them later takes a new migration, never an edit here.
        for r in domain::timbre::default_rules() {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("timbre_rules"))
                .columns(["code", "valid_from", "valid_to", "definition", "created_at"].map(Alias::new))
                .values_panic([
                    r.code.clone().into(),
                    r.valid_from.into(),
                    r.valid_to.into(),
                    r.to_json().to_string().into(),
                    chrono::Utc::now().into(),
                ]);
            manager.exec_stmt(insert).await?;
        }
        for (key, account, label) in domain::accounting::DEFAULT_CHART {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("chart_of_accounts"))
                .columns(["key", "account", "label"].map(Alias::new))
                .values_panic([(*key).into(), (*account).into(), (*label).into()]);
            manager.exec_stmt(insert).await?;
        }
        Ok(())
    }
}
