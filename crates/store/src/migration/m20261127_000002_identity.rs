//! Identity and security (PLATFORM.md §4, DOMAIN.md §2, §16): users, login attempts, sessions and refresh tokens,
//! devices (column names queried by the runbook), the append-only audit log and its chain head.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000002_identity"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Code,
    Email,
    FirstName,
    LastName,
    Role,
    PasswordHash,
    IsActive,
    MustChangePassword,
    CreatedAt,
    UpdatedAt,
    DeactivatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    EmailKey,
    Failures,
    FirstFailureAt,
    LockedUntil,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    DeviceId,
    Client,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
    RevokeReason,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    SessionId,
    TokenHash,
    IssuedAt,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    Name,
    UserId,
    Platform,
    AppVersion,
    LastSyncAt,
    IsActive,
    RegisteredAt,
    RevokedAt,
    RevokedBy,
    RevokeReason,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Seq,
    At,
    ActorId,
    ActorRole,
    ActorLabel,
    DeviceId,
    Ip,
    RequestId,
    Action,
    Severity,
    EntityType,
    EntityId,
    Before,
    After,
    Reason,
    CommandId,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Seq,
    Hash,
}

fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().not_null().to_owned()
}

fn ts_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().null().to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: &[&str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(Alias::new(*c));
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Users::Code).text().not_null().unique_key())
                    .col(ColumnDef::new(Users::Email).text().not_null().unique_key())
                    .col(ColumnDef::new(Users::FirstName).text().not_null())
                    .col(ColumnDef::new(Users::LastName).text().not_null())
                    .col(ColumnDef::new(Users::Role).text().not_null().check(Expr::col(Users::Role).is_in([
                        "ADMIN",
                        "APPRO",
                        "PRODUCTION",
                        "COMMERCIAL",
                        "COMPTABLE",
                    ])))
                    .col(ColumnDef::new(Users::PasswordHash).text().not_null())
                    .col(ColumnDef::new(Users::IsActive).boolean().not_null().default(true))
                    .col(ColumnDef::new(Users::MustChangePassword).boolean().not_null().default(false))
                    .col(ts(Users::CreatedAt))
                    .col(ts(Users::UpdatedAt))
                    .col(ts_null(Users::DeactivatedAt))
                    .col(ts_null(Users::LastLoginAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .col(ColumnDef::new(LoginAttempts::EmailKey).text().not_null().primary_key())
                    .col(ColumnDef::new(LoginAttempts::Failures).integer().not_null())
                    .col(ts_null(LoginAttempts::FirstFailureAt))
                    .col(ts_null(LoginAttempts::LockedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(ColumnDef::new(Devices::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Devices::Name).text().not_null())
                    .col(ColumnDef::new(Devices::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(Devices::Platform)
                            .text()
                            .not_null()
                            .check(Expr::col(Devices::Platform).is_in(["android", "ios", "web"])),
                    )
                    .col(ColumnDef::new(Devices::AppVersion).text().not_null())
                    .col(ts_null(Devices::LastSyncAt))
                    .col(ColumnDef::new(Devices::IsActive).boolean().not_null().default(true))
                    .col(ts(Devices::RegisteredAt))
                    .col(ts_null(Devices::RevokedAt))
                    .col(ColumnDef::new(Devices::RevokedBy).uuid().null())
                    .col(ColumnDef::new(Devices::RevokeReason).text().null())
                    .foreign_key(ForeignKey::create().from(Devices::Table, Devices::UserId).to(Users::Table, Users::Id))
                    .foreign_key(
                        ForeignKey::create().from(Devices::Table, Devices::RevokedBy).to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                    // Not a foreign key: a device may log in before it registers (PLATFORM.md §4.5).
                    .col(ColumnDef::new(Sessions::DeviceId).uuid().null())
                    .col(
                        ColumnDef::new(Sessions::Client)
                            .text()
                            .not_null()
                            .check(Expr::col(Sessions::Client).is_in(["web", "device"])),
                    )
                    .col(ts(Sessions::CreatedAt))
                    .col(ts(Sessions::LastUsedAt))
                    .col(ts_null(Sessions::RevokedAt))
                    .col(ColumnDef::new(Sessions::RevokeReason).text().null())
                    .col(ColumnDef::new(Sessions::Ip).text().null())
                    .col(ColumnDef::new(Sessions::UserAgent).text().null())
                    .foreign_key(
                        ForeignKey::create().from(Sessions::Table, Sessions::UserId).to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(ColumnDef::new(RefreshTokens::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(RefreshTokens::SessionId).uuid().not_null())
                    .col(ColumnDef::new(RefreshTokens::TokenHash).text().not_null().unique_key())
                    .col(ts(RefreshTokens::IssuedAt))
                    .col(ts(RefreshTokens::ExpiresAt))
                    .col(ts_null(RefreshTokens::RotatedAt))
                    .col(ts_null(RefreshTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(ColumnDef::new(AuditLog::Seq).big_integer().not_null().primary_key())
                    .col(ts(AuditLog::At))
                    .col(ColumnDef::new(AuditLog::ActorId).uuid().null())
                    .col(ColumnDef::new(AuditLog::ActorRole).text().null())
                    .col(ColumnDef::new(AuditLog::ActorLabel).text().null())
                    .col(ColumnDef::new(AuditLog::DeviceId).text().null())
                    .col(ColumnDef::new(AuditLog::Ip).text().null())
                    .col(ColumnDef::new(AuditLog::RequestId).text().null())
                    .col(ColumnDef::new(AuditLog::Action).text().not_null())
                    .col(
                        ColumnDef::new(AuditLog::Severity)
                            .text()
                            .not_null()
                            .check(Expr::col(AuditLog::Severity).is_in(["INFO", "SECURITY"])),
                    )
                    .col(ColumnDef::new(AuditLog::EntityType).text().null())
                    .col(ColumnDef::new(AuditLog::EntityId).text().null())
                    // Canonical JSON text, byte for byte what was hashed (jsonb would reorder it).
                    .col(ColumnDef::new(AuditLog::Before).text().null())
                    .col(ColumnDef::new(AuditLog::After).text().null())
                    .col(ColumnDef::new(AuditLog::Reason).text().null())
                    .col(ColumnDef::new(AuditLog::CommandId).text().null())
                    .col(ColumnDef::new(AuditLog::PrevHash).text().not_null())
                    .col(ColumnDef::new(AuditLog::Hash).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditHead::Table)
                    .col(
                        ColumnDef::new(AuditHead::Id)
                            .integer()
                            .not_null()
                            .primary_key()
                            .check(Expr::col(AuditHead::Id).eq(1)),
                    )
                    .col(ColumnDef::new(AuditHead::Seq).big_integer().not_null())
                    .col(ColumnDef::new(AuditHead::Hash).text().not_null())
                    .to_owned(),
            )
            .await?;
        for i in [
            index("sessions_user_idx", Sessions::Table, &["user_id"]),
            index("sessions_device_idx", Sessions::Table, &["device_id"]),
            index("refresh_tokens_session_idx", RefreshTokens::Table, &["session_id"]),
            index("devices_user_idx", Devices::Table, &["user_id"]),
            index("audit_log_at_idx", AuditLog::Table, &["at"]),
            index("audit_log_action_idx", AuditLog::Table, &["action"]),
            index("audit_log_actor_idx", AuditLog::Table, &["actor_id"]),
            index("audit_log_entity_idx", AuditLog::Table, &["entity_type", "entity_id"]),
        ] {
            manager.create_index(i).await?;
        }
        let db = manager.get_connection();
        db.execute(
            Query::insert()
                .into_table(AuditHead::Table)
                .columns([AuditHead::Id, AuditHead::Seq, AuditHead::Hash])
                .values_panic([1.into(), 0i64.into(), domain::audit::GENESIS.into()]),
        )
        .await?;
        // The audit log is INSERT-only: editing or deleting a row takes a deliberate act (dropping the guard), and
        // `manchengo check --audit` names the entry that was touched.
        let guards: &[&str] = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => &[
                "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
                "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
            ],
            _ => &[
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
                "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            ],
        };
        for sql in guards {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
