//! The audit log (DOMAIN.md §16): appended in the transaction of the change it records, read back for the audit
//! pages and verified by `manchengo check --audit`. The hash rules live in `domain::audit`.

use chrono::{DateTime, SubsecRound, Utc};
use domain::audit::{Entry, Stored, Verifier};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde_json::Value;
use uuid::Uuid;

use crate::db::Db;
use crate::error::StoreError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub at: ChronoDateTimeUtc,
        pub actor_id: Option<Uuid>,
        pub actor_role: Option<String>,
        pub actor_label: Option<String>,
        pub device_id: Option<String>,
        pub ip: Option<String>,
        pub request_id: Option<String>,
        pub action: String,
        pub severity: String,
        pub entity_type: Option<String>,
        pub entity_id: Option<String>,
        pub before: Option<String>,
        pub after: Option<String>,
        pub reason: Option<String>,
        pub command_id: Option<String>,
        pub prev_hash: String,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_head")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub seq: i64,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::Model as Row;

/// Who did it and from where: the request's identity, or a job / the CLI (`SYSTEM`).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: Option<String>,
    pub label: Option<String>,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn system(label: &str) -> Actor {
        Actor { role: Some("SYSTEM".into()), label: Some(label.into()), ..Actor::default() }
    }
}

/// What changed.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: &'static str,
    pub severity: &'static str,
    pub entity_type: Option<&'static str>,
    pub entity_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
    pub command_id: Option<String>,
}

impl Change {
    pub fn new(action: &'static str) -> Change {
        Change {
            action,
            severity: domain::audit::INFO,
            entity_type: None,
            entity_id: None,
            before: None,
            after: None,
            reason: None,
            command_id: None,
        }
    }

    pub fn security(mut self) -> Change {
        self.severity = domain::audit::SECURITY;
        self
    }

    pub fn entity(mut self, kind: &'static str, id: impl ToString) -> Change {
        self.entity_type = Some(kind);
        self.entity_id = Some(id.to_string());
        self
    }

    pub fn before(mut self, v: Value) -> Change {
        self.before = Some(v);
        self
    }

    pub fn after(mut self, v: Value) -> Change {
        self.after = Some(v);
        self
    }

    pub fn reason(mut self, r: impl Into<String>) -> Change {
        self.reason = Some(r.into());
        self
    }
}

fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn to_entry(r: &Row) -> Result<Entry, StoreError> {
    let parse = |s: &Option<String>| -> Result<Option<Value>, StoreError> {
        s.as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Other(format!("audit entry {}: unreadable JSON: {e}", r.seq)))
    };
    Ok(Entry {
        seq: r.seq,
        at: rfc3339_ms(r.at),
        actor_id: r.actor_id.map(|u| u.to_string()),
        actor_role: r.actor_role.clone(),
        actor_label: r.actor_label.clone(),
        device_id: r.device_id.clone(),
        ip: r.ip.clone(),
        request_id: r.request_id.clone(),
        action: r.action.clone(),
        severity: r.severity.clone(),
        entity_type: r.entity_type.clone(),
        entity_id: r.entity_id.clone(),
        before: parse(&r.before)?,
        after: parse(&r.after)?,
        reason: r.reason.clone(),
        command_id: r.command_id.clone(),
    })
}

/// Appends one entry. Call it last in the transaction: it locks the chain head, so concurrent writers queue here for
/// the shortest possible time.
pub async fn append<C: ConnectionTrait>(
    tx: &C,
    actor: &Actor,
    change: Change,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let lock = match tx.get_database_backend() {
        DbBackend::Postgres => " FOR UPDATE",
        _ => "",
    };
    // The device feed's lock first (re-entrant when this transaction already appended to the feed): every writer
    // then takes feed lock → chain head in that order, whether it appends to the feed before or after its audit
    // entry, so the two global locks never deadlock. Audited writes already queue on the head: nothing is lost.
    crate::sync::lock_feed(tx).await?;
    let row = tx
        .query_one_raw(Statement::from_string(
            tx.get_database_backend(),
            format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"),
        ))
        .await?
        .ok_or_else(|| StoreError::Other("audit_head row missing".into()))?;
    let head_seq: i64 = row.try_get("", "seq")?;
    let prev_hash: String = row.try_get("", "hash")?;
    let at = now.trunc_subsecs(3);
    let entry = Entry {
        seq: head_seq + 1,
        at: rfc3339_ms(at),
        actor_id: actor.user_id.map(|u| u.to_string()),
        actor_role: actor.role.clone(),
        actor_label: actor.label.clone(),
        device_id: actor.device_id.clone(),
        ip: actor.ip.clone(),
        request_id: actor.request_id.clone(),
        action: change.action.into(),
        severity: change.severity.into(),
        entity_type: change.entity_type.map(Into::into),
        entity_id: change.entity_id,
        before: change.before,
        after: change.after,
        reason: change.reason,
        command_id: change.command_id,
    };
    let hash = entry.hash(&prev_hash);
    let canon = |v: &Option<Value>| v.as_ref().map(domain::canonical::to_string);
    entity::Entity::insert(entity::ActiveModel {
        seq: Set(entry.seq),
        at: Set(at),
        actor_id: Set(actor.user_id),
        actor_role: Set(entry.actor_role.clone()),
        actor_label: Set(entry.actor_label.clone()),
        device_id: Set(entry.device_id.clone()),
        ip: Set(entry.ip.clone()),
        request_id: Set(entry.request_id.clone()),
        action: Set(entry.action.clone()),
        severity: Set(entry.severity.clone()),
        entity_type: Set(entry.entity_type.clone()),
        entity_id: Set(entry.entity_id.clone()),
        before: Set(canon(&entry.before)),
        after: Set(canon(&entry.after)),
        reason: Set(entry.reason.clone()),
        command_id: Set(entry.command_id.clone()),
        prev_hash: Set(prev_hash),
        hash: Set(hash.clone()),
    })
    .exec_without_returning(tx)
    .await?;
    head::Entity::update_many()
        .col_expr(head::Column::Seq, Expr::value(entry.seq))
        .col_expr(head::Column::Hash, Expr::value(hash))
        .filter(head::Column::Id.eq(1))
        .exec(tx)
        .await?;
    Ok(entry.seq)
}

/// Appends one entry in a transaction of its own: refusals and security events, written after the refused
/// operation rolled back (PLATFORM.md §16).
pub async fn append_alone(db: &Db, actor: &Actor, change: Change, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let tx = db.begin_write().await?;
    let seq = append(&*tx, actor, change, now).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Filters of the audit pages and API.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub severity: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries strictly before this seq (cursor, newest first).
    pub before_seq: Option<i64>,
}

/// Newest first, at most `limit`.
pub async fn list(db: &Db, f: &Filter, limit: u64) -> Result<Vec<Row>, StoreError> {
    let mut q = entity::Entity::find().order_by_desc(entity::Column::Seq).limit(limit);
    if let Some(a) = &f.action {
        q = q.filter(entity::Column::Action.eq(a.clone()));
    }
    if let Some(a) = f.actor_id {
        q = q.filter(entity::Column::ActorId.eq(a));
    }
    if let Some(t) = &f.entity_type {
        q = q.filter(entity::Column::EntityType.eq(t.clone()));
    }
    if let Some(t) = &f.entity_id {
        q = q.filter(entity::Column::EntityId.eq(t.clone()));
    }
    if let Some(s) = &f.severity {
        q = q.filter(entity::Column::Severity.eq(s.clone()));
    }
    if let Some(t) = f.from {
        q = q.filter(entity::Column::At.gte(t));
    }
    if let Some(t) = f.to {
        q = q.filter(entity::Column::At.lt(t));
    }
    if let Some(s) = f.before_seq {
        q = q.filter(entity::Column::Seq.lt(s));
    }
    Ok(q.all(db.conn()).await?)
}

pub async fn get(db: &Db, seq: i64) -> Result<Option<Row>, StoreError> {
    Ok(entity::Entity::find_by_id(seq).one(db.conn()).await?)
}

/// Result of a chain verification.
#[derive(Debug, Clone)]
pub struct Verification {
    pub verified: u64,
    pub last_seq: i64,
    pub last_hash: String,
    pub broken: Option<domain::audit::Break>,
}

/// Recomputes the chain from the start, or from entry `from` trusting its predecessor, in pages of 1 000.
pub async fn verify(db: &Db, from: Option<i64>) -> Result<Verification, StoreError> {
    let mut v = match from {
        Some(seq) if seq > 1 => match get(db, seq - 1).await? {
            Some(prev) => Verifier::after(prev.seq, &prev.hash),
            None => Verifier::after(seq - 1, "absent"),
        },
        _ => Verifier::from_genesis(),
    };
    let mut after = v.next_seq - 1;
    loop {
        let page = entity::Entity::find()
            .filter(entity::Column::Seq.gt(after))
            .order_by_asc(entity::Column::Seq)
            .limit(1000)
            .all(db.conn())
            .await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let stored = Stored { entry: to_entry(r)?, prev_hash: r.prev_hash.clone(), hash: r.hash.clone() };
            if let Err(b) = v.push(&stored) {
                return Ok(Verification {
                    verified: v.verified,
                    last_seq: v.next_seq - 1,
                    last_hash: v.last_hash,
                    broken: Some(b),
                });
            }
            after = r.seq;
        }
    }
    // The head must agree with the last entry: a deleted tail would otherwise go unnoticed.
    let head = head::Entity::find_by_id(1).one(db.conn()).await?;
    if let Some(h) = head
        && (h.seq != v.next_seq - 1 || h.hash != v.last_hash)
    {
        let b = domain::audit::Break::Gap { expected: v.next_seq, found: h.seq };
        return Ok(Verification {
            verified: v.verified,
            last_seq: v.next_seq - 1,
            last_hash: v.last_hash,
            broken: Some(b),
        });
    }
    Ok(Verification { verified: v.verified, last_seq: v.next_seq - 1, last_hash: v.last_hash, broken: None })
}
