//! A normalized description of the live schema, the same shape for both backends, so that a test can prove the
//! SQLite and PostgreSQL schemas built by the migrations are equivalent (PLATFORM.md §11.2).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::error::StoreError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub tables: BTreeMap<String, TableShape>,
    pub triggers: BTreeSet<String>,
}

impl Snapshot {
    /// The shape both backends must share: SQLite stores every integer in 64 bits and sea-query declares
    /// `big_integer` as `integer` there, so `bigint` and `integer` compare equal.
    pub fn portable(&self) -> Snapshot {
        let mut s = self.clone();
        for t in s.tables.values_mut() {
            for kind in t.columns.values_mut() {
                if let Some(rest) = kind.strip_prefix("bigint") {
                    *kind = format!("integer{rest}");
                }
            }
        }
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableShape {
    /// column → `kind` or `kind?` when nullable.
    pub columns: BTreeMap<String, String>,
    pub primary_key: Vec<String>,
    /// `unique(a,b)` / `index(a)`; names differ between backends for constraint-made indexes, so they are left out.
    pub indexes: BTreeSet<String>,
    /// `col -> table.col`
    pub foreign_keys: BTreeSet<String>,
    pub checks: usize,
}

/// Maps a backend's declared type to one logical kind.
pub fn normalize_type(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("timestamp") || t.contains("datetime") {
        "timestamp"
    } else if t.contains("date") {
        // sea-query declares dates `date_text` on SQLite.
        "date"
    } else if t.contains("uuid") {
        "uuid"
    } else if t.contains("json") {
        "json"
    } else if t.contains("bool") {
        "boolean"
    } else if t.contains("bigint") || t == "int8" {
        "bigint"
    } else if t.contains("int") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("real")
        || t.contains("double")
        || t.contains("float")
        || t.contains("numeric")
        || t.contains("decimal")
    {
        "real"
    } else if t.contains("blob") || t.contains("bytea") {
        "blob"
    } else {
        "other"
    }
}

fn s(row: &QueryResult, col: &str) -> Result<String, StoreError> {
    row.try_get::<String>("", col).map_err(StoreError::from)
}

fn i(row: &QueryResult, col: &str) -> Result<i64, StoreError> {
    row.try_get::<i64>("", col).or_else(|_| row.try_get::<i32>("", col).map(i64::from)).map_err(StoreError::from)
}

async fn rows(db: &Db, sql: &str) -> Result<Vec<QueryResult>, StoreError> {
    Ok(db.conn().query_all_raw(Statement::from_string(db.sea_backend(), sql.to_string())).await?)
}

pub async fn introspect(db: &Db) -> Result<Snapshot, StoreError> {
    match db.sea_backend() {
        DbBackend::Postgres => introspect_postgres(db).await,
        _ => introspect_sqlite(db).await,
    }
}

async fn introspect_sqlite(db: &Db) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    let tables =
        rows(db, "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations' ORDER BY name")
            .await?;
    for t in &tables {
        let name = s(t, "name")?;
        let sql = s(t, "sql")?.to_ascii_uppercase();
        let mut shape = TableShape { checks: sql.matches("CHECK").count(), ..Default::default() };
        let mut pk: Vec<(i64, String)> = Vec::new();
        for c in rows(db, &format!("SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info('{name}')")).await?
        {
            let col = s(&c, "name")?;
            let kind = normalize_type(&s(&c, "type")?);
            let pk_pos = i(&c, "pk")?;
            let nullable = i(&c, "nn")? == 0 && pk_pos == 0;
            shape.columns.insert(col.clone(), if nullable { format!("{kind}?") } else { kind.to_string() });
            if pk_pos > 0 {
                pk.push((pk_pos, col));
            }
        }
        pk.sort();
        shape.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        for ix in rows(db, &format!("SELECT name, \"unique\" AS uq, origin FROM pragma_index_list('{name}')")).await? {
            if s(&ix, "origin")? == "pk" {
                continue;
            }
            let ix_name = s(&ix, "name")?;
            let cols: Vec<String> =
                rows(db, &format!("SELECT name FROM pragma_index_info('{ix_name}') ORDER BY seqno"))
                    .await?
                    .iter()
                    .map(|r| s(r, "name"))
                    .collect::<Result<_, _>>()?;
            let kind = if i(&ix, "uq")? == 1 { "unique" } else { "index" };
            shape.indexes.insert(format!("{kind}({})", cols.join(",")));
        }
        for fk in rows(
            db,
            &format!("SELECT \"from\" AS c, \"table\" AS ft, \"to\" AS fc FROM pragma_foreign_key_list('{name}')"),
        )
        .await?
        {
            shape.foreign_keys.insert(format!("{} -> {}.{}", s(&fk, "c")?, s(&fk, "ft")?, s(&fk, "fc")?));
        }
        snap.tables.insert(name, shape);
    }
    for t in rows(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'").await? {
        snap.triggers.insert(s(&t, "name")?);
    }
    Ok(snap)
}

async fn introspect_postgres(db: &Db) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    for c in rows(
        db,
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty, is_nullable::text AS n
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'seaql_migrations'
         ORDER BY table_name, ordinal_position",
    )
    .await?
    {
        let kind = normalize_type(&s(&c, "ty")?);
        let nullable = s(&c, "n")? == "YES";
        snap.tables
            .entry(s(&c, "t")?)
            .or_default()
            .columns
            .insert(s(&c, "c")?, if nullable { format!("{kind}?") } else { kind.to_string() });
    }
    for ix in rows(
        db,
        "SELECT t.relname::text AS t, ix.indisunique AS uq, ix.indisprimary AS pk,
                array_to_string(array(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS cols
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = current_schema()",
    )
    .await?
    {
        let Some(shape) = snap.tables.get_mut(&s(&ix, "t")?) else { continue };
        let cols = s(&ix, "cols")?;
        if ix.try_get::<bool>("", "pk")? {
            shape.primary_key = cols.split(',').map(str::to_string).collect();
        } else {
            let kind = if ix.try_get::<bool>("", "uq")? { "unique" } else { "index" };
            shape.indexes.insert(format!("{kind}({cols})"));
        }
    }
    for fk in rows(
        db,
        "SELECT tc.table_name::text AS t, kcu.column_name::text AS c, ccu.table_name::text AS ft, ccu.column_name::text AS fc
         FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
         JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
         WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()",
    )
    .await?
    {
        if let Some(shape) = snap.tables.get_mut(&s(&fk, "t")?) {
            shape.foreign_keys.insert(format!("{} -> {}.{}", s(&fk, "c")?, s(&fk, "ft")?, s(&fk, "fc")?));
        }
    }
    for ck in rows(
        db,
        "SELECT rel.relname::text AS t FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = rel.relnamespace WHERE con.contype = 'c' AND n.nspname = current_schema()",
    )
    .await?
    {
        if let Some(shape) = snap.tables.get_mut(&s(&ck, "t")?) {
            shape.checks += 1;
        }
    }
    for t in rows(db, "SELECT DISTINCT trigger_name::text AS n FROM information_schema.triggers WHERE trigger_schema = current_schema()").await? {
        snap.triggers.insert(s(&t, "n")?);
    }
    Ok(snap)
}

/// What a schema change does that an older binary could not live with (PLATFORM.md §11.3): a table or column gone, a
/// type changed, a nullable column made NOT NULL, a primary key changed. Adding is always allowed.
pub fn contract_changes(previous: &Snapshot, current: &Snapshot) -> Vec<String> {
    let (previous, current) = (previous.portable(), current.portable());
    let mut out = Vec::new();
    for (name, old) in &previous.tables {
        let Some(new) = current.tables.get(name) else {
            out.push(format!("table {name} supprimée"));
            continue;
        };
        for (col, old_kind) in &old.columns {
            match new.columns.get(col) {
                None => out.push(format!("colonne {name}.{col} supprimée")),
                Some(k) if k.trim_end_matches('?') != old_kind.trim_end_matches('?') => {
                    out.push(format!("colonne {name}.{col} : type {old_kind} → {k}"))
                }
                Some(k) if old_kind.ends_with('?') && !k.ends_with('?') => {
                    out.push(format!("colonne {name}.{col} devenue NOT NULL"))
                }
                _ => {}
            }
        }
        if old.primary_key != new.primary_key {
            out.push(format!("clé primaire de {name} modifiée"));
        }
    }
    out
}

/// Rows of one of our tables (restore tests compare them); `table` is one of our own names, never user input.
pub async fn count_rows(db: &Db, table: &str) -> Result<i64, StoreError> {
    use sea_orm::ConnectionTrait;
    assert!(table.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "table name");
    let row = db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            db.sea_backend(),
            format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"),
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn contract_changes_are_named_expansions_are_not() {
        use super::*;
        let table = |cols: &[(&str, &str)]| TableShape {
            columns: cols.iter().map(|(c, k)| (c.to_string(), k.to_string())).collect(),
            primary_key: vec!["id".into()],
            ..Default::default()
        };
        let snap = |t: TableShape| Snapshot {
            tables: [("lots".to_string(), t)].into_iter().collect(),
            triggers: Default::default(),
        };
        let before = snap(table(&[("id", "uuid"), ("note", "text?"), ("qty", "bigint")]));
        let grown = snap(table(&[("id", "uuid"), ("note", "text?"), ("qty", "bigint"), ("extra", "text?")]));
        assert!(contract_changes(&before, &grown).is_empty());
        let tightened = snap(table(&[("id", "uuid"), ("note", "text"), ("qty", "text")]));
        assert_eq!(
            contract_changes(&before, &tightened),
            vec!["colonne lots.note devenue NOT NULL", "colonne lots.qty : type integer → text"]
        );
        let dropped = snap(table(&[("id", "uuid"), ("qty", "bigint")]));
        assert_eq!(contract_changes(&before, &dropped), vec!["colonne lots.note supprimée"]);
    }

    use super::normalize_type;

    #[test]
    fn both_backends_map_to_the_same_kinds() {
        assert_eq!(normalize_type("timestamp with time zone"), normalize_type("timestamp_with_timezone_text"));
        assert_eq!(normalize_type("uuid"), normalize_type("uuid_text"));
        assert_eq!(normalize_type("date"), normalize_type("date_text"));
        assert_eq!(normalize_type("jsonb"), normalize_type("json_text"));
        assert_eq!(normalize_type("bigint"), "bigint");
        assert_eq!(normalize_type("integer"), "integer");
        assert_eq!(normalize_type("character varying"), "text");
        assert_eq!(normalize_type("boolean"), "boolean");
    }
}
