//! The events devices push (PLATFORM.md §7.3). `status` is text with a CHECK so the runbook's literals work; an
//! operator's `UPDATE … SET status = 'PENDING' WHERE status = 'FAILED'` is a complete retry: the trigger clears the
//! attempts, the due time and the failure class, and the worker picks the row up at its next cycle.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000016_sync_events"
    }
}

fn c(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

fn fk(col: &str, to: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Alias::new("sync_events"), Alias::new(col))
        .to(Alias::new(to), Alias::new("id"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("sync_events"))
                    .col(c("id").uuid().not_null().primary_key())
                    .col(c("client_event_id").uuid().not_null().unique_key())
                    .col(c("device_id").uuid().not_null())
                    .col(c("user_id").uuid().not_null())
                    .col(c("entity_type").text().not_null())
                    .col(c("entity_id").text().not_null())
                    .col(c("action").text().not_null())
                    // The canonical JSON text of the payload (binaries replaced by their attachment hash).
                    .col(c("payload").text().not_null())
                    .col(c("payload_hash").text().not_null())
                    .col(c("occurred_at").timestamp_with_time_zone().not_null())
                    .col(c("received_at").timestamp_with_time_zone().not_null())
                    .col(c("applied_at").timestamp_with_time_zone().null())
                    .col(
                        c("status")
                            .text()
                            .not_null()
                            .check(Expr::col(Alias::new("status")).is_in(["PENDING", "APPLIED", "ACKED", "FAILED"])),
                    )
                    .col(c("attempts").integer().not_null().default(0))
                    .col(c("next_attempt_at").timestamp_with_time_zone().null())
                    .col(c("error_code").text().null())
                    .col(c("error_message").text().null())
                    .col(c("batch_id").uuid().not_null())
                    .col(c("created_at").timestamp_with_time_zone().not_null())
                    // Arrival order (per entity, the worker applies in this order); numbered by the store.
                    .col(c("receipt_seq").big_integer().not_null().unique_key())
                    .col(c("batch_index").integer().not_null())
                    .col(c("server_ref").text().null())
                    .col(
                        c("failure_class")
                            .text()
                            .null()
                            .check(Expr::col(Alias::new("failure_class")).is_in(["business", "technical"])),
                    )
                    .foreign_key(&mut fk("device_id", "devices"))
                    .foreign_key(&mut fk("user_id", "users"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("sync_events_due_idx", &["status", "next_attempt_at"][..]),
            ("sync_events_entity_idx", &["entity_type", "entity_id", "receipt_seq"][..]),
            ("sync_events_device_idx", &["device_id", "created_at"][..]),
            ("sync_events_batch_idx", &["batch_id"][..]),
        ] {
            let mut i = Index::create();
            i.name(name).table(Alias::new("sync_events"));
            for col in cols {
                i.col(Alias::new(*col));
            }
            manager.create_index(i.to_owned()).await?;
        }
        let db = manager.get_connection();
        let requeue: &[&str] = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => &[
                "CREATE FUNCTION sync_events_requeue() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF OLD.status = 'FAILED' AND NEW.status = 'PENDING' THEN \
                 NEW.attempts := 0; NEW.next_attempt_at := NULL; NEW.failure_class := NULL; END IF; \
                 RETURN NEW; END $$",
                "CREATE TRIGGER sync_events_requeue BEFORE UPDATE OF status ON sync_events \
                 FOR EACH ROW EXECUTE FUNCTION sync_events_requeue()",
            ],
            _ => &["CREATE TRIGGER sync_events_requeue AFTER UPDATE OF status ON sync_events FOR EACH ROW \
                  WHEN OLD.status = 'FAILED' AND NEW.status = 'PENDING' BEGIN \
                  UPDATE sync_events SET attempts = 0, next_attempt_at = NULL, failure_class = NULL WHERE id = NEW.id; \
                  END"],
        };
        for sql in requeue {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
