//! Adopting an existing Aether database (behaviour.md 10): the statements that create what
//! tollgate needs and the database lacks (tables, nullable or defaulted columns, indexes,
//! tollgate's migration history and the adoption record), and the statements that undo
//! them. Nothing that exists is dropped, renamed or retyped.

use sea_orm_migration::prelude::{ColumnDef, Table, TableCreateStatement};
use sea_orm_migration::sea_orm::sea_query::PostgresQueryBuilder;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Schema, Statement, TransactionTrait,
};
use sea_orm_migration::{MigratorTrait, seaql_migrations};

use crate::columns::index;
use crate::inspect::{ADOPTED_KEY, Inventory, ROLLBACK_KEY};
use crate::{
    Migrator, SchemaError, m20261124_000001_create_catalogue as catalogue,
    m20261124_000002_create_traffic as traffic,
    m20261124_000004_index_user_daily_date as user_daily,
    m20261201_000005_accounting_integrity as integrity, m20261203_000006_hourly_stats as hourly,
    m20261203_000007_hourly_api_keys as hourly_keys,
    m20261203_000008_index_hourly_user as hourly_user,
};

/// Aether's tables that tollgate reads and writes: an adoptable database has every one.
const AETHER_TABLES: [&str; 13] = [
    "users",
    "api_keys",
    "providers",
    "provider_endpoints",
    "provider_api_keys",
    "global_models",
    "models",
    "usage",
    "request_candidates",
    "stats_daily",
    "stats_daily_model",
    "stats_user_daily",
    "stats_summary",
];

/// The unique keys the aggregator's upserts conflict on, which adoption cannot add to
/// existing rows without risk: an adoptable database has them already.
const UPSERT_KEYS: [(&str, &[&str]); 3] = [
    ("stats_daily", &["date"]),
    ("stats_daily_model", &["date", "model"]),
    ("stats_user_daily", &["user_id", "date"]),
];

/// The advisory lock adoptions take, so two binaries starting at once adopt once.
const ADOPT_LOCK_KEY: i64 = 0x746f_6c6c_6164_6f70;

/// What adopting a database does: its statements, in order, what they add (for messages),
/// and the statements that undo them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptionPlan {
    /// The statements, in order; empty when the database is adopted and complete.
    pub statements: Vec<String>,
    /// What is missing, named for people: `table stats_hourly`, `column usage.global_model`.
    pub missing: Vec<String>,
    /// The statements that undo `statements`, in order.
    pub rollback: Vec<String>,
}

impl AdoptionPlan {
    /// Whether the database needs nothing.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    fn add(&mut self, missing: String, statement: String, undo: Option<String>) {
        self.missing.push(missing);
        self.statements.push(statement);
        self.rollback.extend(undo);
    }
}

/// The columns tollgate needs on Aether's tables: each nullable or with a default.
fn columns() -> Vec<(&'static str, ColumnDef)> {
    let mut columns = vec![
        ("usage", traffic::global_model()),
        ("models", catalogue::provider_model_aliases()),
    ];
    for table in hourly::EXTENDED {
        for column in hourly::coverage_columns() {
            columns.push((table, column));
        }
    }
    columns
}

/// The tables adoption may create, by name, in creation order.
fn tables() -> Vec<(&'static str, TableCreateStatement)> {
    let mut tables: Vec<_> = integrity::tables().into_iter().collect();
    tables.extend(hourly::tables());
    tables.extend(hourly_keys::tables());
    tables
}

/// Every plain index of tollgate's migrations.
fn indexes() -> Vec<(&'static str, &'static [&'static str])> {
    let mut all: Vec<(&'static str, &'static [&'static str])> = Vec::new();
    all.extend(catalogue::INDEXES);
    all.extend(traffic::INDEXES);
    all.extend(user_daily::INDEXES);
    all.extend(integrity::INDEXES);
    all.extend(hourly_user::INDEXES);
    all
}

/// Checks that `inventory` is an Aether database tollgate can adopt.
pub(crate) fn check_adoptable(inventory: &Inventory) -> Result<(), SchemaError> {
    if let Some(table) = AETHER_TABLES
        .iter()
        .find(|table| !inventory.tables.contains(**table))
    {
        return Err(SchemaError::NotAdoptable {
            reason: format!("its table {table} is missing"),
        });
    }
    if let Some((table, key)) = UPSERT_KEYS
        .iter()
        .find(|(table, key)| !inventory.has_index(table, key, true))
    {
        return Err(SchemaError::NotAdoptable {
            reason: format!("{table} has no unique index on ({})", key.join(", ")),
        });
    }
    Ok(())
}

/// What adopting the database described by `inventory` takes.
pub(crate) fn plan(inventory: &Inventory) -> Result<AdoptionPlan, SchemaError> {
    check_adoptable(inventory)?;
    let mut plan = AdoptionPlan::default();
    let mut created = Vec::new();
    for (name, mut table) in tables() {
        if !inventory.tables.contains(name) {
            table.if_not_exists();
            let drop = format!("DROP TABLE IF EXISTS \"{name}\"");
            plan.add(
                format!("table {name}"),
                table.to_string(PostgresQueryBuilder),
                Some(drop),
            );
            created.push(name);
        }
    }
    for (table, column) in columns() {
        let name = column.get_column_name();
        if !inventory.has_column(table, &name) {
            let add = Table::alter()
                .table(table)
                .add_column_if_not_exists(column)
                .to_string(PostgresQueryBuilder);
            let drop = format!("ALTER TABLE \"{table}\" DROP COLUMN IF EXISTS \"{name}\"");
            plan.add(format!("column {table}.{name}"), add, Some(drop));
        }
    }
    for (table, columns) in indexes() {
        if created.contains(&table) || !inventory.has_index(table, columns, false) {
            let mut statement = index(table, columns);
            statement.if_not_exists();
            let name = statement
                .get_index_spec()
                .get_name()
                .unwrap_or_default()
                .to_owned();
            let drop = format!("DROP INDEX IF EXISTS \"{name}\"");
            let missing = format!("index {table}({})", columns.join(", "));
            plan.add(
                missing,
                statement.to_string(PostgresQueryBuilder),
                Some(drop),
            );
        }
    }
    history(inventory, &mut plan, created.contains(&"tollgate_meta"));
    // Undo in reverse order: indexes, then columns, then tables.
    plan.rollback.reverse();
    Ok(plan)
}

/// Records tollgate's migrations as applied and the adoption itself.
fn history(inventory: &Inventory, plan: &mut AdoptionPlan, meta_created: bool) {
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    let unrecorded: Vec<&String> = names
        .iter()
        .filter(|name| !inventory.applied.contains(*name))
        .collect();
    if !unrecorded.is_empty() {
        if !inventory.tables.contains("seaql_migrations") {
            let mut install =
                Schema::new(DbBackend::Postgres).create_table_from_entity(seaql_migrations::Entity);
            install.if_not_exists();
            plan.add(
                "table seaql_migrations".to_owned(),
                install.to_string(PostgresQueryBuilder),
                Some("DROP TABLE IF EXISTS \"seaql_migrations\"".to_owned()),
            );
        }
        let values: Vec<String> = unrecorded
            .iter()
            .map(|name| format!("('{name}', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))"))
            .collect();
        let listed: Vec<String> = unrecorded.iter().map(|name| format!("'{name}'")).collect();
        plan.add(
            format!("{} recorded tollgate migrations", unrecorded.len()),
            format!(
                "INSERT INTO \"seaql_migrations\" (\"version\", \"applied_at\") VALUES {} \
                 ON CONFLICT (\"version\") DO NOTHING",
                values.join(", ")
            ),
            Some(format!(
                "DELETE FROM \"seaql_migrations\" WHERE \"version\" IN ({})",
                listed.join(", ")
            )),
        );
    }
    if inventory.adopted.is_none() {
        let version = inventory
            .alembic
            .clone()
            .unwrap_or_default()
            .replace('\'', "''");
        plan.add(
            "the adoption record".to_owned(),
            format!(
                "INSERT INTO \"tollgate_meta\" (\"key\", \"value\", \"created_at\") \
                 VALUES ('{ADOPTED_KEY}', '{version}', now()) ON CONFLICT (\"key\") DO NOTHING"
            ),
            (!meta_created).then(|| {
                format!("DELETE FROM \"tollgate_meta\" WHERE \"key\" IN ('{ADOPTED_KEY}', '{ROLLBACK_KEY}')")
            }),
        );
    }
}

/// Adopts the Aether database behind `db` in one transaction, under an advisory lock, and
/// returns what it did (an empty plan when it was adopted and complete already).
pub(crate) async fn adopt(db: &DatabaseConnection) -> Result<AdoptionPlan, SchemaError> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [ADOPT_LOCK_KEY.into()],
    ))
    .await?;
    let inventory = Inventory::read(&txn).await?;
    let plan = plan(&inventory)?;
    if plan.is_empty() {
        txn.rollback().await?;
        return Ok(plan);
    }
    for statement in &plan.statements {
        txn.execute_unprepared(statement).await?;
    }
    record_rollback(&txn, &plan.rollback).await?;
    txn.commit().await?;
    Ok(plan)
}

/// Keeps the undo statements in `tollgate_meta`, newest first, so `tollgate-migrations
/// unadopt` can run them.
async fn record_rollback<C: ConnectionTrait>(db: &C, rollback: &[String]) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO tollgate_meta (key, value, created_at) VALUES ($1, $2, now()) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value || ';\n' || tollgate_meta.value",
        [ROLLBACK_KEY.into(), rollback.join(";\n").into()],
    ))
    .await?;
    Ok(())
}

/// Runs the undo statements an adoption recorded, in one transaction, and returns them.
pub(crate) async fn unadopt(db: &DatabaseConnection) -> Result<Vec<String>, SchemaError> {
    let txn = db.begin().await?;
    let statements = recorded_rollback(&txn).await?;
    for statement in &statements {
        txn.execute_unprepared(statement).await?;
    }
    txn.commit().await?;
    Ok(statements)
}

/// The undo statements an adoption recorded, in order (empty when there are none).
async fn recorded_rollback<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    let has_meta = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT to_regclass('tollgate_meta') IS NOT NULL",
        ))
        .await?
        .map(|row| row.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false);
    if !has_meta {
        return Ok(Vec::new());
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT value FROM tollgate_meta WHERE key = $1",
            [ROLLBACK_KEY.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let text: String = row.try_get_by_index(0)?;
    Ok(text
        .split(";\n")
        .filter(|statement| !statement.trim().is_empty())
        .map(str::to_owned)
        .collect())
}
