//! What a database holds before tollgate changes it: its tables, columns and indexes,
//! tollgate's migration history, Aether's `alembic_version` and the adoption record, read
//! with plain SELECTs (nothing here writes).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// The `tollgate_meta` key that records an adoption (its value: Aether's alembic version).
pub(crate) const ADOPTED_KEY: &str = "adopted_from_aether";

/// The `tollgate_meta` key that holds the statements undoing the adoption.
pub(crate) const ROLLBACK_KEY: &str = "aether_adoption_rollback";

/// A database's schema, as far as tollgate cares.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    /// Every table of the current schema.
    pub(crate) tables: BTreeSet<String>,
    /// Column names per table (PostgreSQL only).
    pub(crate) columns: BTreeMap<String, BTreeSet<String>>,
    /// Plain (non-partial) indexes per table, as column lists, and whether each is unique
    /// (PostgreSQL only).
    pub(crate) indexes: BTreeMap<String, Vec<(Vec<String>, bool)>>,
    /// The versions in `seaql_migrations`.
    pub(crate) applied: BTreeSet<String>,
    /// Aether's `alembic_version.version_num`, when the table exists (empty when it has no row).
    pub(crate) alembic: Option<String>,
    /// The adoption record, when this database was adopted.
    pub(crate) adopted: Option<String>,
}

impl Inventory {
    /// Reads the inventory of the database behind `db`.
    pub(crate) async fn read<C: ConnectionTrait>(db: &C) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let mut inventory = Self::default();
        let table_sql = match backend {
            DbBackend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
            _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        };
        for row in texts(db, table_sql).await? {
            inventory.tables.extend(row.into_iter().next());
        }
        if backend == DbBackend::Postgres {
            for row in texts(
                db,
                "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) \
                 FROM information_schema.columns WHERE table_schema = current_schema()",
            )
            .await?
            {
                if let [table, column] = &row[..] {
                    inventory
                        .columns
                        .entry(table.clone())
                        .or_default()
                        .insert(column.clone());
                }
            }
            for row in texts(db, PG_INDEXES).await? {
                if let [table, columns, unique] = &row[..] {
                    let columns = columns.split(',').map(str::to_owned).collect();
                    inventory
                        .indexes
                        .entry(table.clone())
                        .or_default()
                        .push((columns, unique == "true"));
                }
            }
        }
        if inventory.tables.contains("seaql_migrations") {
            for row in texts(db, "SELECT version FROM seaql_migrations").await? {
                inventory.applied.extend(row.into_iter().next());
            }
        }
        if inventory.tables.contains("alembic_version") {
            let version = texts(
                db,
                "SELECT CAST(version_num AS TEXT) FROM alembic_version LIMIT 1",
            )
            .await?;
            inventory.alembic = Some(version.into_iter().flatten().next().unwrap_or_default());
        }
        if inventory.tables.contains("tollgate_meta") {
            let sql = format!("SELECT value FROM tollgate_meta WHERE key = '{ADOPTED_KEY}'");
            inventory.adopted = texts(db, &sql).await?.into_iter().flatten().next();
        }
        Ok(inventory)
    }

    /// Whether `table` has column `column`.
    pub(crate) fn has_column(&self, table: &str, column: &str) -> bool {
        self.columns
            .get(table)
            .is_some_and(|columns| columns.contains(column))
    }

    /// Whether `table` has a plain index over exactly `columns` (unique, when `unique`).
    pub(crate) fn has_index(&self, table: &str, columns: &[&str], unique: bool) -> bool {
        self.indexes.get(table).is_some_and(|indexes| {
            indexes.iter().any(|(have, is_unique)| {
                (*is_unique || !unique)
                    && have.iter().map(String::as_str).eq(columns.iter().copied())
            })
        })
    }

    /// The tables other than tollgate's migration history (which a failed start may leave
    /// behind, empty).
    pub(crate) fn user_tables(&self) -> impl Iterator<Item = &String> {
        self.tables
            .iter()
            .filter(|table| table.as_str() != "seaql_migrations")
    }
}

/// Every plain index of the current schema: table, columns in order (comma-separated) and
/// whether it is unique. Partial and expression indexes are left out: they do not serve
/// every query an index of tollgate's serves.
const PG_INDEXES: &str = "SELECT CAST(t.relname AS TEXT), \
     array_to_string(ARRAY(SELECT CAST(a.attname AS TEXT) \
         FROM unnest(CAST(ix.indkey AS int2[])) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord), ','), \
     CASE WHEN ix.indisunique THEN 'true' ELSE 'false' END \
     FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
     JOIN pg_namespace n ON n.oid = t.relnamespace \
     WHERE n.nspname = current_schema() AND ix.indpred IS NULL AND ix.indexprs IS NULL";

/// Runs `sql` and returns every row as text columns.
async fn texts<C: ConnectionTrait>(db: &C, sql: &str) -> Result<Vec<Vec<String>>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::new();
        let mut index = 0;
        while let Ok(value) = row.try_get_by_index::<Option<String>>(index) {
            values.push(value.unwrap_or_default());
            index += 1;
        }
        out.push(values);
    }
    Ok(out)
}
