//! Users, login attempts, sessions with their refresh tokens, and devices (PLATFORM.md §4). Every change that must
//! be attributable writes its audit entry in the same transaction. Password hashing happens in the caller (it is
//! CPU work for a blocking pool); this module stores and compares hashes only.

use chrono::{DateTime, Duration, Utc};
use domain::identity::{Attempts, Role};
use domain::rejection::Rejection;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, Change};
use crate::db::Db;
use crate::error::{OpError, StoreError};

pub mod users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub code: String,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        pub role: String,
        pub password_hash: String,
        pub is_active: bool,
        pub must_change_password: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub deactivated_at: Option<ChronoDateTimeUtc>,
        pub last_login_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod login_attempts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub email_key: String,
        pub failures: i32,
        pub first_failure_at: Option<ChronoDateTimeUtc>,
        pub locked_until: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sessions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub device_id: Option<Uuid>,
        pub client: String,
        pub created_at: ChronoDateTimeUtc,
        pub last_used_at: ChronoDateTimeUtc,
        pub revoked_at: Option<ChronoDateTimeUtc>,
        pub revoke_reason: Option<String>,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refresh_tokens {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub session_id: Uuid,
        pub token_hash: String,
        pub issued_at: ChronoDateTimeUtc,
        pub expires_at: ChronoDateTimeUtc,
        pub rotated_at: Option<ChronoDateTimeUtc>,
        pub revoked_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod devices {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "devices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub user_id: Uuid,
        pub platform: String,
        pub app_version: String,
        pub last_sync_at: Option<ChronoDateTimeUtc>,
        pub is_active: bool,
        pub registered_at: ChronoDateTimeUtc,
        pub revoked_at: Option<ChronoDateTimeUtc>,
        pub revoked_by: Option<Uuid>,
        pub revoke_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type User = users::Model;
pub type Session = sessions::Model;
pub type Device = devices::Model;

/// The user as the audit log shows it (never the password hash).
pub fn user_json(u: &User) -> serde_json::Value {
    json!({"code": u.code, "email": u.email, "firstName": u.first_name, "lastName": u.last_name, "role": u.role,
           "isActive": u.is_active, "mustChangePassword": u.must_change_password})
}

pub fn role_of(u: &User) -> Role {
    Role::parse(&u.role).unwrap_or(Role::Comptable)
}

pub async fn count_users(db: &Db) -> Result<u64, StoreError> {
    Ok(users::Entity::find().count(db.conn()).await?)
}

pub async fn user_by_email<C: ConnectionTrait>(c: &C, email: &str) -> Result<Option<User>, StoreError> {
    Ok(users::Entity::find().filter(users::Column::Email.eq(email)).one(c).await?)
}

pub async fn user_by_id<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<User>, StoreError> {
    Ok(users::Entity::find_by_id(id).one(c).await?)
}

pub async fn list_users(db: &Db) -> Result<Vec<User>, StoreError> {
    Ok(users::Entity::find().order_by_asc(users::Column::Code).all(db.conn()).await?)
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub password_hash: String,
    pub must_change_password: bool,
}

/// Creates a user (`EMAIL_DEJA_UTILISE` if the e-mail is taken). `first_admin` restricts creation to an empty
/// table: the first-run screen and `create-admin` race safely.
pub async fn create_user<C: ConnectionTrait>(
    tx: &C,
    new: NewUser,
    actor: &Actor,
    now: DateTime<Utc>,
    first_admin: bool,
) -> Result<User, OpError> {
    let existing = users::Entity::find().count(tx).await?;
    if first_admin && existing > 0 {
        return Err(Rejection::new("INSTALLATION_TERMINEE", 409, "Un administrateur existe déjà.").into());
    }
    if user_by_email(tx, &new.email).await?.is_some() {
        return Err(Rejection::new("EMAIL_DEJA_UTILISE", 409, "Cette adresse e-mail est déjà utilisée.").into());
    }
    let u = User {
        id: Uuid::now_v7(),
        code: format!("U{:04}", existing + 1),
        email: new.email,
        first_name: new.first_name,
        last_name: new.last_name,
        role: new.role.code().into(),
        password_hash: new.password_hash,
        is_active: true,
        must_change_password: new.must_change_password,
        created_at: now,
        updated_at: now,
        deactivated_at: None,
        last_login_at: None,
    };
    users::Entity::insert(users::ActiveModel {
        id: Set(u.id),
        code: Set(u.code.clone()),
        email: Set(u.email.clone()),
        first_name: Set(u.first_name.clone()),
        last_name: Set(u.last_name.clone()),
        role: Set(u.role.clone()),
        password_hash: Set(u.password_hash.clone()),
        is_active: Set(true),
        must_change_password: Set(u.must_change_password),
        created_at: Set(now),
        updated_at: Set(now),
        deactivated_at: Set(None),
        last_login_at: Set(None),
    })
    .exec_without_returning(tx)
    .await?;
    audit::append(tx, actor, Change::new("USER_CREATED").entity("user", u.id).after(user_json(&u)), now).await?;
    Ok(u)
}

async fn active_admins<C: ConnectionTrait>(tx: &C) -> Result<u64, StoreError> {
    Ok(users::Entity::find()
        .filter(users::Column::Role.eq("ADMIN"))
        .filter(users::Column::IsActive.eq(true))
        .count(tx)
        .await?)
}

/// What an administrator may change on a user.
#[derive(Debug, Clone, Default)]
pub struct UserEdit {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// Applies an edit with the rules of DOMAIN.md §2.1: an administrator cannot change their own role nor deactivate
/// themselves, and the last active ADMIN is never demoted nor deactivated. Deactivation revokes every session.
pub async fn edit_user<C: ConnectionTrait>(
    tx: &C,
    id: Uuid,
    edit: UserEdit,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<User, OpError> {
    let before = user_by_id(tx, id).await?.ok_or_else(|| Rejection::non_trouve("Utilisateur"))?;
    let mut after = before.clone();
    if let Some(f) = edit.first_name {
        after.first_name = f;
    }
    if let Some(l) = edit.last_name {
        after.last_name = l;
    }
    if let Some(r) = edit.role {
        after.role = r.code().into();
    }
    if let Some(a) = edit.is_active {
        after.is_active = a;
    }
    let is_self = actor.user_id == Some(id);
    if is_self && (after.role != before.role || !after.is_active) {
        return Err(Rejection::new(
            "ACCES_REFUSE",
            403,
            "Vous ne pouvez ni changer votre propre rôle ni désactiver votre propre compte.",
        )
        .into());
    }
    let loses_admin = before.role == "ADMIN" && before.is_active && (after.role != "ADMIN" || !after.is_active);
    if loses_admin && active_admins(tx).await? <= 1 {
        return Err(Rejection::dernier_admin().into());
    }
    if after == before {
        return Ok(before);
    }
    after.updated_at = now;
    if before.is_active && !after.is_active {
        after.deactivated_at = Some(now);
        revoke_user_sessions(tx, id, None, "USER_DEACTIVATED", now).await?;
    } else if !before.is_active && after.is_active {
        after.deactivated_at = None;
    }
    users::Entity::update_many()
        .col_expr(users::Column::FirstName, Expr::value(after.first_name.clone()))
        .col_expr(users::Column::LastName, Expr::value(after.last_name.clone()))
        .col_expr(users::Column::Role, Expr::value(after.role.clone()))
        .col_expr(users::Column::IsActive, Expr::value(after.is_active))
        .col_expr(users::Column::DeactivatedAt, Expr::value(after.deactivated_at))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id))
        .exec(tx)
        .await?;
    let action = match (before.is_active, after.is_active) {
        (true, false) => "USER_DEACTIVATED",
        (false, true) => "USER_REACTIVATED",
        _ if before.role != after.role => "USER_ROLE_CHANGED",
        _ => "USER_UPDATED",
    };
    audit::append(
        tx,
        actor,
        Change::new(action).entity("user", id).before(user_json(&before)).after(user_json(&after)),
        now,
    )
    .await?;
    Ok(after)
}

/// Stores a new password hash. `by_admin` (reset) forces a change at next login and revokes every session; a change
/// by the user keeps the session `keep`.
pub async fn set_password<C: ConnectionTrait>(
    tx: &C,
    user: &User,
    password_hash: String,
    by_admin: bool,
    keep: Option<Uuid>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(users::Column::MustChangePassword, Expr::value(by_admin))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user.id))
        .exec(tx)
        .await?;
    let reason = if by_admin { "PASSWORD_RESET" } else { "PASSWORD_CHANGED" };
    revoke_user_sessions(tx, user.id, keep, reason, now).await?;
    let change = Change::new(reason).entity("user", user.id).after(json!({"mustChangePassword": by_admin}));
    audit::append(tx, actor, if by_admin { change.security() } else { change }, now).await?;
    Ok(())
}

/// Re-hash with current parameters after a successful login (no audit: nothing the user decided).
pub async fn upgrade_hash(db: &Db, id: Uuid, hash: String) -> Result<(), StoreError> {
    let tx = db.begin_write().await?;
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .filter(users::Column::Id.eq(id))
        .exec(&*tx)
        .await?;
    tx.commit().await
}

// ---- login attempts -------------------------------------------------------------------------------------------

fn to_attempts(m: &login_attempts::Model) -> Attempts {
    Attempts {
        failures: m.failures.max(0) as u32,
        first_failure_at: m.first_failure_at.map(|t| t.timestamp()),
        locked_until: m.locked_until.map(|t| t.timestamp()),
    }
}

fn ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub async fn attempts<C: ConnectionTrait>(c: &C, email_key: &str) -> Result<Attempts, StoreError> {
    Ok(login_attempts::Entity::find_by_id(email_key.to_string())
        .one(c)
        .await?
        .map(|m| to_attempts(&m))
        .unwrap_or_default())
}

pub async fn save_attempts<C: ConnectionTrait>(c: &C, email_key: &str, a: Attempts) -> Result<(), StoreError> {
    login_attempts::Entity::delete_by_id(email_key.to_string()).exec(c).await?;
    login_attempts::Entity::insert(login_attempts::ActiveModel {
        email_key: Set(email_key.to_string()),
        failures: Set(a.failures as i32),
        first_failure_at: Set(a.first_failure_at.map(ts)),
        locked_until: Set(a.locked_until.map(ts)),
    })
    .exec_without_returning(c)
    .await?;
    Ok(())
}

pub async fn clear_attempts<C: ConnectionTrait>(c: &C, email_key: &str) -> Result<bool, StoreError> {
    Ok(login_attempts::Entity::delete_by_id(email_key.to_string()).exec(c).await?.rows_affected > 0)
}

/// Users whose e-mail key is currently locked (for the users page).
pub async fn locked_keys(db: &Db, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
    Ok(login_attempts::Entity::find()
        .filter(login_attempts::Column::LockedUntil.gt(now))
        .all(db.conn())
        .await?
        .into_iter()
        .map(|m| m.email_key)
        .collect())
}

// ---- sessions and refresh tokens -------------------------------------------------------------------------------

pub struct NewSession {
    pub user_id: Uuid,
    pub device_id: Option<Uuid>,
    pub client: &'static str,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub async fn create_session<C: ConnectionTrait>(c: &C, s: NewSession, now: DateTime<Utc>) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(id),
        user_id: Set(s.user_id),
        device_id: Set(s.device_id),
        client: Set(s.client.into()),
        created_at: Set(now),
        last_used_at: Set(now),
        revoked_at: Set(None),
        revoke_reason: Set(None),
        ip: Set(s.ip),
        user_agent: Set(s.user_agent.map(|u| u.chars().take(256).collect())),
    })
    .exec_without_returning(c)
    .await?;
    Ok(id)
}

pub async fn issue_refresh<C: ConnectionTrait>(
    c: &C,
    session_id: Uuid,
    token_hash: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<DateTime<Utc>, StoreError> {
    let expires = now + ttl;
    refresh_tokens::Entity::insert(refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(token_hash.to_string()),
        issued_at: Set(now),
        expires_at: Set(expires),
        rotated_at: Set(None),
        revoked_at: Set(None),
    })
    .exec_without_returning(c)
    .await?;
    sessions::Entity::update_many()
        .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(session_id))
        .exec(c)
        .await?;
    Ok(expires)
}

pub async fn find_refresh<C: ConnectionTrait>(
    c: &C,
    token_hash: &str,
) -> Result<Option<(refresh_tokens::Model, Session)>, StoreError> {
    let Some(t) =
        refresh_tokens::Entity::find().filter(refresh_tokens::Column::TokenHash.eq(token_hash)).one(c).await?
    else {
        return Ok(None);
    };
    let s = sessions::Entity::find_by_id(t.session_id).one(c).await?;
    Ok(s.map(|s| (t, s)))
}

pub async fn mark_rotated<C: ConnectionTrait>(c: &C, token_id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let r = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RotatedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(token_id))
        .filter(refresh_tokens::Column::RotatedAt.is_null())
        .exec(c)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Revokes the refresh tokens of a family, leaving the family open (a fresh token follows).
pub async fn revoke_refresh_tokens<C: ConnectionTrait>(
    c: &C,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::SessionId.eq(session_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(c)
        .await?;
    Ok(())
}

/// Revokes one session family and its refresh tokens.
pub async fn revoke_session<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let r = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokeReason, Expr::value(reason))
        .filter(sessions::Column::Id.eq(id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(c)
        .await?;
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::SessionId.eq(id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(c)
        .await?;
    Ok(r.rows_affected > 0)
}

/// Revokes every open family of a user except `keep`; returns how many.
pub async fn revoke_user_sessions<C: ConnectionTrait>(
    c: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut q = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null());
    if let Some(k) = keep {
        q = q.filter(sessions::Column::Id.ne(k));
    }
    let ids: Vec<Uuid> = q.all(c).await?.into_iter().map(|s| s.id).collect();
    for id in &ids {
        revoke_session(c, *id, reason, now).await?;
    }
    Ok(ids.len() as u64)
}

pub async fn open_sessions(db: &Db, user_id: Uuid) -> Result<Vec<Session>, StoreError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .order_by_desc(sessions::Column::LastUsedAt)
        .all(db.conn())
        .await?)
}

/// Everything authorization needs for one request, in one indexed query (PLATFORM.md §2.2 step 7).
#[derive(Debug, Clone)]
pub struct AuthRow {
    pub user: User,
    pub session_id: Uuid,
    pub client: String,
    pub session_revoked: bool,
    pub device_id: Option<Uuid>,
    /// `None` when the session has no device or the device is not registered yet.
    pub device_active: Option<bool>,
}

pub async fn load_auth(db: &Db, session_id: Uuid) -> Result<Option<AuthRow>, StoreError> {
    let backend = db.sea_backend();
    let p = if backend == sea_orm::DbBackend::Postgres { "$1" } else { "?" };
    let sql = format!(
        "SELECT u.id, u.code, u.email, u.first_name, u.last_name, u.role, u.password_hash, u.is_active, \
         u.must_change_password, u.created_at, u.updated_at, u.deactivated_at, u.last_login_at, \
         s.client AS s_client, s.revoked_at AS s_revoked_at, s.device_id AS s_device_id, d.is_active AS d_is_active \
         FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN devices d ON d.id = s.device_id WHERE s.id = {p}"
    );
    let Some(row) = db.conn().query_one_raw(Statement::from_sql_and_values(backend, sql, [session_id.into()])).await?
    else {
        return Ok(None);
    };
    use sea_orm::FromQueryResult;
    let user = User::from_query_result(&row, "")?;
    let revoked: Option<DateTime<Utc>> = row.try_get("", "s_revoked_at")?;
    Ok(Some(AuthRow {
        user,
        session_id,
        client: row.try_get("", "s_client")?,
        session_revoked: revoked.is_some(),
        device_id: row.try_get("", "s_device_id")?,
        device_active: row.try_get("", "d_is_active")?,
    }))
}

pub async fn record_login<C: ConnectionTrait>(c: &C, user_id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::LastLoginAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .exec(c)
        .await?;
    Ok(())
}

// ---- devices ---------------------------------------------------------------------------------------------------

pub async fn device<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<Device>, StoreError> {
    Ok(devices::Entity::find_by_id(id).one(c).await?)
}

pub struct DeviceInfo {
    pub id: Uuid,
    pub name: String,
    pub platform: String,
    pub app_version: String,
}

/// Registers a device for `user_id`, or updates it when the same user registers it again. Returns the device and
/// whether it was created.
pub async fn register_device<C: ConnectionTrait>(
    c: &C,
    user_id: Uuid,
    info: DeviceInfo,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Device, bool), OpError> {
    if let Some(d) = device(c, info.id).await? {
        if d.user_id != user_id {
            return Err(device_owned_by_other().into());
        }
        if !d.is_active {
            return Err(device_revoked().into());
        }
        devices::Entity::update_many()
            .col_expr(devices::Column::Name, Expr::value(info.name.clone()))
            .col_expr(devices::Column::Platform, Expr::value(info.platform.clone()))
            .col_expr(devices::Column::AppVersion, Expr::value(info.app_version.clone()))
            .filter(devices::Column::Id.eq(info.id))
            .exec(c)
            .await?;
        let updated = Device { name: info.name, platform: info.platform, app_version: info.app_version, ..d };
        return Ok((updated, false));
    }
    let d = Device {
        id: info.id,
        name: info.name,
        user_id,
        platform: info.platform,
        app_version: info.app_version,
        last_sync_at: None,
        is_active: true,
        registered_at: now,
        revoked_at: None,
        revoked_by: None,
        revoke_reason: None,
    };
    devices::Entity::insert(devices::ActiveModel {
        id: Set(d.id),
        name: Set(d.name.clone()),
        user_id: Set(user_id),
        platform: Set(d.platform.clone()),
        app_version: Set(d.app_version.clone()),
        last_sync_at: Set(None),
        is_active: Set(true),
        registered_at: Set(now),
        revoked_at: Set(None),
        revoked_by: Set(None),
        revoke_reason: Set(None),
    })
    .exec_without_returning(c)
    .await?;
    audit::append(
        c,
        actor,
        Change::new("DEVICE_REGISTERED")
            .entity("device", d.id)
            .after(json!({"name": d.name, "platform": d.platform, "appVersion": d.app_version})),
        now,
    )
    .await?;
    Ok((d, true))
}

/// The device has just pushed or pulled (`devices.last_sync_at`, PLATFORM.md §7.2).
pub async fn device_synced<C: ConnectionTrait>(c: &C, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    devices::Entity::update_many()
        .col_expr(devices::Column::LastSyncAt, Expr::value(Some(now)))
        .filter(devices::Column::Id.eq(id))
        .exec(c)
        .await?;
    Ok(())
}

pub fn device_revoked() -> Rejection {
    Rejection::new("DEVICE_REVOKED", 401, "Cet appareil a été révoqué.")
}

pub fn device_owned_by_other() -> Rejection {
    Rejection::new("DEVICE_OWNED_BY_OTHER_USER", 409, "Cet appareil est enregistré au nom d'un autre utilisateur.")
}

#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub user_id: Option<Uuid>,
    pub is_active: Option<bool>,
}

pub async fn list_devices(
    db: &Db,
    f: &DeviceFilter,
    page: u64,
    page_size: u64,
) -> Result<(Vec<(Device, Option<User>)>, u64), StoreError> {
    let mut q = devices::Entity::find();
    if let Some(u) = f.user_id {
        q = q.filter(devices::Column::UserId.eq(u));
    }
    if let Some(a) = f.is_active {
        q = q.filter(devices::Column::IsActive.eq(a));
    }
    let total = q.clone().count(db.conn()).await?;
    let rows =
        q.order_by_asc(devices::Column::Name).offset((page - 1) * page_size).limit(page_size).all(db.conn()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        let u = user_by_id(db.conn(), d.user_id).await?;
        out.push((d, u));
    }
    Ok((out, total))
}

/// Revokes a device and, in the same transaction, every session bound to it.
pub async fn revoke_device<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Device, OpError> {
    let d = device(c, id).await?.ok_or_else(|| Rejection::non_trouve("Appareil"))?;
    if !d.is_active {
        return Err(Rejection::transition_invalide("Révoqué", "Révoqué").into());
    }
    devices::Entity::update_many()
        .col_expr(devices::Column::IsActive, Expr::value(false))
        .col_expr(devices::Column::RevokedAt, Expr::value(now))
        .col_expr(devices::Column::RevokedBy, Expr::value(actor.user_id))
        .col_expr(devices::Column::RevokeReason, Expr::value(reason))
        .filter(devices::Column::Id.eq(id))
        .exec(c)
        .await?;
    let ids: Vec<Uuid> = sessions::Entity::find()
        .filter(sessions::Column::DeviceId.eq(id))
        .filter(sessions::Column::RevokedAt.is_null())
        .select_only()
        .column(sessions::Column::Id)
        .into_tuple()
        .all(c)
        .await?;
    for s in &ids {
        revoke_session(c, *s, "DEVICE_REVOKED", now).await?;
    }
    audit::append(
        c,
        actor,
        Change::new("DEVICE_REVOKED")
            .security()
            .entity("device", id)
            .before(json!({"isActive": true}))
            .after(json!({"isActive": false, "sessionsRevoked": ids.len()}))
            .reason(reason),
        now,
    )
    .await?;
    Ok(Device {
        is_active: false,
        revoked_at: Some(now),
        revoked_by: actor.user_id,
        revoke_reason: Some(reason.into()),
        ..d
    })
}

pub async fn reactivate_device<C: ConnectionTrait>(
    c: &C,
    id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Device, OpError> {
    let d = device(c, id).await?.ok_or_else(|| Rejection::non_trouve("Appareil"))?;
    if d.is_active {
        return Err(Rejection::transition_invalide("Actif", "Actif").into());
    }
    devices::Entity::update_many()
        .col_expr(devices::Column::IsActive, Expr::value(true))
        .col_expr(devices::Column::RevokedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(devices::Column::RevokedBy, Expr::value(Option::<Uuid>::None))
        .col_expr(devices::Column::RevokeReason, Expr::value(Option::<String>::None))
        .filter(devices::Column::Id.eq(id))
        .exec(c)
        .await?;
    audit::append(
        c,
        actor,
        Change::new("DEVICE_REACTIVATED")
            .entity("device", id)
            .before(json!({"isActive": false}))
            .after(json!({"isActive": true})),
        now,
    )
    .await?;
    Ok(Device { is_active: true, revoked_at: None, revoked_by: None, revoke_reason: None, ..d })
}

/// Every registered device (the direction dashboard counts those silent for a day).
pub async fn all_devices<C: ConnectionTrait>(c: &C) -> Result<Vec<Device>, StoreError> {
    Ok(devices::Entity::find().all(c).await?)
}
