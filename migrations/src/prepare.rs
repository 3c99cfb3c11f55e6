//! The one decision both binaries make at start: what the database is (empty, tollgate's,
//! Aether's, or Aether's adopted by tollgate) and what to do about it (migrate, adopt,
//! refuse, or, with `--no-migrate`, only check).

use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{DatabaseConnection, DbBackend};

use crate::adopt::{adopt, plan};
use crate::inspect::Inventory;
use crate::{Migrator, SchemaError};

/// What a database was found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseKind {
    /// No tables (at most an empty migration history left by a failed start).
    Fresh,
    /// A tollgate database (its migration history has rows, no `alembic_version`).
    Tollgate,
    /// An Aether database tollgate has not adopted yet.
    Aether,
    /// An Aether database tollgate adopted.
    Adopted,
}

/// How a binary treats the database at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartOptions {
    /// Whether the schema may be changed (`false` with `--no-migrate`: only check, and fail
    /// naming what is missing).
    pub migrate: bool,
    /// Whether an Aether database is accepted (and adopted) or refused (the gateway, whose
    /// catalogue reads differ from Aether's columns).
    pub accept_aether: bool,
}

/// What [`prepare_database`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// What the database was at start.
    pub kind: DatabaseKind,
    /// What was created (`table …`, `column …`, `index …`, `migration …`); empty when
    /// nothing changed.
    pub changed: Vec<String>,
}

/// Classifies the database in `inventory`.
pub(crate) fn classify(inventory: &Inventory) -> Result<DatabaseKind, SchemaError> {
    if inventory.alembic.is_some() {
        return Ok(if inventory.adopted.is_some() {
            DatabaseKind::Adopted
        } else {
            DatabaseKind::Aether
        });
    }
    if !inventory.applied.is_empty() {
        return Ok(DatabaseKind::Tollgate);
    }
    let tables: Vec<&str> = inventory.user_tables().map(String::as_str).collect();
    if tables.is_empty() {
        return Ok(DatabaseKind::Fresh);
    }
    Err(SchemaError::Unrecognised {
        tables: listing(&tables),
    })
}

/// Reads what the database behind `db` is and makes it ready for tollgate: migrates a
/// fresh or tollgate database, adopts an Aether one (when `accept_aether`), or, without
/// `migrate`, changes nothing and fails naming the first things missing.
pub async fn prepare_database(
    db: &DatabaseConnection,
    options: StartOptions,
) -> Result<Prepared, SchemaError> {
    let inventory = Inventory::read(db).await?;
    let kind = classify(&inventory)?;
    let mut changed = Vec::new();
    if matches!(kind, DatabaseKind::Aether | DatabaseKind::Adopted) {
        if !options.accept_aether {
            return Err(SchemaError::AetherStore);
        }
        if db.get_database_backend() != DbBackend::Postgres {
            return Err(SchemaError::NotAdoptable {
                reason: "adoption needs PostgreSQL".to_owned(),
            });
        }
        let needed = plan(&inventory)?;
        if !needed.is_empty() {
            if !options.migrate {
                return Err(SchemaError::Lacking {
                    missing: listing(&needed.missing),
                });
            }
            changed.extend(adopt(db).await?.missing);
        }
    } else if kind == DatabaseKind::Fresh && !options.migrate {
        return Err(SchemaError::Lacking {
            missing: "every tollgate table (it is empty)".to_owned(),
        });
    }
    // Tollgate's own migrations, including those newer than an adoption.
    let pending: Vec<String> = Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|migration| format!("migration {}", migration.name()))
        .collect();
    if !pending.is_empty() {
        if !options.migrate {
            return Err(SchemaError::Lacking {
                missing: listing(&pending),
            });
        }
        Migrator::up(db, None).await?;
        changed.extend(pending);
    }
    Ok(Prepared { kind, changed })
}

/// Names the first three of `items`, and how many more there are, on one line.
fn listing<T: AsRef<str>>(items: &[T]) -> String {
    let shown: Vec<&str> = items.iter().take(3).map(AsRef::as_ref).collect();
    match items.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}
