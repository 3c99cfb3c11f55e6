//! `tollgate-migrations`: apply, roll back or inspect the schema of a tollgate database, or
//! adopt an existing Aether database.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{Database, DatabaseConnection};
use tollgate_migrations::{DatabaseKind, Migrator, StartOptions};

/// Apply, roll back or inspect tollgate's schema.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Database to migrate.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://tollgate.db?mode=rwc"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply every pending migration (adopting an Aether database).
    Up,
    /// Roll back the newest migrations (one by default).
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1, conflicts_with = "all")]
        steps: u32,
        /// Roll back every applied migration.
        #[arg(long)]
        all: bool,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table, then apply every migration.
    Fresh,
    /// Adopt an existing Aether database: create only what tollgate lacks in it.
    Adopt {
        /// Print the statements (and those that undo them) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Undo an adoption with the statements it recorded (rows tollgate wrote into Aether's
    /// own tables stay).
    Unadopt,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tollgate-migrations: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = Database::connect(cli.database_url.as_str())
        .await
        .map_err(|error| anyhow::anyhow!("cannot open --database-url: {error}"))?;
    match cli.command {
        Command::Up => {
            let options = StartOptions {
                migrate: true,
                accept_aether: true,
            };
            let prepared = tollgate_migrations::prepare_database(&db, options).await?;
            for change in prepared.changed {
                println!("created {change}");
            }
        }
        Command::Down { steps, all } => {
            refuse_aether(&db, "down").await?;
            Migrator::down(&db, if all { None } else { Some(steps) }).await?;
        }
        Command::Fresh => {
            refuse_aether(&db, "fresh").await?;
            Migrator::fresh(&db).await?;
        }
        Command::Status => {
            let kind = tollgate_migrations::database_kind(&db).await?;
            println!("database: {kind:?}");
            for migration in Migrator::get_migration_with_status_read_only(&db).await? {
                println!("{:<8} {}", migration.status(), migration.name());
            }
        }
        Command::Adopt { dry_run: true } => {
            let plan = tollgate_migrations::adoption_plan(&db).await?;
            if plan.is_empty() {
                println!("-- nothing to do: the database is adopted and complete");
            }
            for statement in &plan.statements {
                println!("{statement};");
            }
            if !plan.rollback.is_empty() {
                println!("-- to undo (what `tollgate-migrations unadopt` runs):");
            }
            for statement in &plan.rollback {
                println!("-- {statement};");
            }
        }
        Command::Adopt { dry_run: false } => {
            let plan = tollgate_migrations::adopt_aether(&db).await?;
            if plan.is_empty() {
                println!("nothing to do: the database is adopted and complete");
            }
            for change in plan.missing {
                println!("created {change}");
            }
        }
        Command::Unadopt => {
            for statement in tollgate_migrations::unadopt_aether(&db).await? {
                println!("{statement};");
            }
        }
    }
    Ok(())
}

/// `down` and `fresh` drop tables: on an Aether database they would drop Aether's own.
async fn refuse_aether(db: &DatabaseConnection, command: &str) -> anyhow::Result<()> {
    let kind = tollgate_migrations::database_kind(db).await?;
    if matches!(kind, DatabaseKind::Aether | DatabaseKind::Adopted) {
        anyhow::bail!(
            "refusing `{command}` on an Aether database: it would drop Aether's tables \
             (use `tollgate-migrations unadopt` to undo an adoption)"
        );
    }
    Ok(())
}
