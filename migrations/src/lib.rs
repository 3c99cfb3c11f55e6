//! The `Migrator` that creates every tollgate table, constraint and index, on SQLite and
//! PostgreSQL. Each migration lives in its own `mYYYYMMDD_HHMMSS_name.rs` file because
//! sea-orm-migration records a migration under its file name.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod columns;
mod m20261124_000001_create_catalogue;
mod m20261124_000002_create_traffic;
mod m20261124_000003_create_stats;
mod m20261124_000004_index_user_daily_date;
mod m20261201_000005_accounting_integrity;
mod m20261203_000006_hourly_stats;

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
        ]
    }
}
