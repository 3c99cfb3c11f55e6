//! `tollgate-migrations`: apply, roll back or inspect the schema of a tollgate database.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::Database;
use tollgate_migrations::Migrator;

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
    /// Apply every pending migration.
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
        Command::Up => Migrator::up(&db, None).await?,
        Command::Down { steps, all } => {
            Migrator::down(&db, if all { None } else { Some(steps) }).await?;
        }
        Command::Fresh => Migrator::fresh(&db).await?,
        Command::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!("{:<8} {}", migration.status(), migration.name());
            }
        }
    }
    Ok(())
}
