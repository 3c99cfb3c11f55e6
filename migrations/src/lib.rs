//! The `Migrator` that creates every tollgate table, constraint and index, on SQLite and
//! PostgreSQL, and [`prepare_database`], the start-up decision of both binaries (migrate a
//! fresh or tollgate database, adopt an Aether one, or only check with `--no-migrate`).
//! Each migration lives in its own `mYYYYMMDD_HHMMSS_name.rs` file because
//! sea-orm-migration records a migration under its file name.

use sea_orm_migration::sea_orm::{DatabaseConnection, DbBackend};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod adopt;
mod columns;
mod error;
mod inspect;
mod m20261124_000001_create_catalogue;
mod m20261124_000002_create_traffic;
mod m20261124_000003_create_stats;
mod m20261124_000004_index_user_daily_date;
mod m20261201_000005_accounting_integrity;
mod m20261203_000006_hourly_stats;
mod m20261203_000007_hourly_api_keys;
mod m20261203_000008_index_hourly_user;
mod prepare;

pub use adopt::AdoptionPlan;
pub use error::SchemaError;
pub use prepare::{DatabaseKind, Prepared, StartOptions, prepare_database};

/// The trait that gives [`Migrator`] its `up`, `down`, `fresh` and status functions.
pub use sea_orm_migration::MigratorTrait as MigratorTraitReexport;

/// Every migration, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_catalogue::Migration),
            Box::new(m20261124_000002_create_traffic::Migration),
            Box::new(m20261124_000003_create_stats::Migration),
            Box::new(m20261124_000004_index_user_daily_date::Migration),
            Box::new(m20261201_000005_accounting_integrity::Migration),
            Box::new(m20261203_000006_hourly_stats::Migration),
            Box::new(m20261203_000007_hourly_api_keys::Migration),
            Box::new(m20261203_000008_index_hourly_user::Migration),
        ]
    }
}

/// What the database behind `db` is, read without changing anything.
pub async fn database_kind(db: &DatabaseConnection) -> Result<DatabaseKind, SchemaError> {
    prepare::classify(&inspect::Inventory::read(db).await?)
}

/// What adopting the Aether database behind `db` would do, read without changing anything
/// (`tollgate-migrations adopt --dry-run`).
pub async fn adoption_plan(db: &DatabaseConnection) -> Result<AdoptionPlan, SchemaError> {
    let inventory = aether_inventory(db).await?;
    adopt::plan(&inventory)
}

/// Adopts the Aether database behind `db` (`tollgate-migrations adopt`), returning what was
/// done (an empty plan when it was adopted already).
pub async fn adopt_aether(db: &DatabaseConnection) -> Result<AdoptionPlan, SchemaError> {
    aether_inventory(db).await?;
    adopt::adopt(db).await
}

/// Undoes an adoption with the statements it recorded (`tollgate-migrations unadopt`),
/// returning them; the data tollgate wrote into Aether's own tables stays.
pub async fn unadopt_aether(db: &DatabaseConnection) -> Result<Vec<String>, SchemaError> {
    aether_inventory(db).await?;
    adopt::unadopt(db).await
}

async fn aether_inventory(db: &DatabaseConnection) -> Result<inspect::Inventory, SchemaError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Err(SchemaError::NotAether);
    }
    let inventory = inspect::Inventory::read(db).await?;
    if inventory.alembic.is_none() {
        return Err(SchemaError::NotAether);
    }
    Ok(inventory)
}
