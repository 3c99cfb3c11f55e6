//! An Aether database for adoption tests: the schema of an Aether PostgreSQL database at
//! its alembic head (`fixtures/aether-schema.sql`, a copy of `shared/fixtures`), loaded into
//! a fresh database, and a snapshot of a schema to compare before and after.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::TestDb;

/// The `pg_dump -s` of an Aether database built by Aether's own migrations.
pub const SCHEMA_SQL: &str = include_str!("../fixtures/aether-schema.sql");

/// A fresh PostgreSQL database holding Aether's schema (and its `alembic_version` row), no
/// tollgate table.
pub async fn database() -> TestDb {
    let db = TestDb::postgres_empty().await;
    // psql meta-commands (`\restrict`) are not SQL; the search path reset would stay on the
    // pooled connection (every statement of the dump names `public.` anyway).
    let sql: String = SCHEMA_SQL
        .lines()
        .filter(|line| !line.starts_with('\\') && !line.contains("set_config('search_path'"))
        .collect::<Vec<_>>()
        .join("\n");
    db.conn
        .execute_unprepared(&sql)
        .await
        .unwrap_or_else(|error| panic!("loading the Aether schema: {error}"));
    db
}

/// Every column of the public schema with its type, length, nullability and default, and
/// every index definition and constraint: two equal snapshots are the same schema.
pub async fn schema_snapshot(db: &TestDb) -> BTreeSet<String> {
    let queries = [
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name \
         || ' ' || COALESCE(CAST(character_maximum_length AS TEXT), '-') || ' ' || is_nullable \
         || ' ' || COALESCE(column_default, '-') FROM information_schema.columns \
         WHERE table_schema = 'public'",
        "SELECT 'table ' || table_name || ' ' || table_type FROM information_schema.tables \
         WHERE table_schema = 'public'",
        "SELECT 'index ' || tablename || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' \
         || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = 'public'::regnamespace",
        "SELECT 'type ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname",
    ];
    let mut snapshot = BTreeSet::new();
    for sql in queries {
        let rows = db
            .conn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
        for row in rows {
            let line = row
                .try_get_by_index::<String>(0)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            snapshot.insert(line);
        }
    }
    snapshot
}

/// The column lines of `snapshot` (`column table.name type udt length nullable default`).
pub fn columns(snapshot: &BTreeSet<String>) -> BTreeSet<String> {
    snapshot
        .iter()
        .filter(|line| line.starts_with("column "))
        .cloned()
        .collect()
}
