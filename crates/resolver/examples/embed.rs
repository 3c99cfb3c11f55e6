//! Embedding `tollgate-resolver`: open a SQLite catalogue, resolve a name, print the plan.
//!
//! ```text
//! cargo run -p tollgate-resolver --example embed -- [CATALOGUE.db] [MODEL NAME]
//! ```
//!
//! Without a file it uses a temporary one; an empty catalogue is seeded with two providers
//! serving `gpt-4o` so there is something to resolve.

use sea_orm::{Database, DatabaseConnection, EntityTrait, PaginatorTrait};
use tollgate_entities::{ApiFormat, Capabilities, TieredPricing, global_models, insert_row};
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_resolver::Resolver;
use tollgate_testkit::fixtures;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("tollgate-embed-example.db")
            .display()
            .to_string()
    });
    let name = args.next().unwrap_or_else(|| "gpt-4o".to_owned());

    let conn = Database::connect(format!("sqlite://{path}?mode=rwc")).await?;
    Migrator::up(&conn, None).await?;
    if global_models::Entity::find().count(&conn).await? == 0 {
        seed(&conn).await?;
    }

    // An in-process cache by default; `.cache(Cache::tiered(config, redis_url).await?)` shares
    // Redis and the invalidation bus between replicas.
    let resolver = Resolver::for_database(conn).build()?;
    let Some((resolved, plan)) = resolver
        .plan(&name, ApiFormat::OpenAi, Some("example-client"))
        .await?
    else {
        println!("{name}: no such model");
        return Ok(());
    };
    println!(
        "{name} -> global model {} (method {}, answered by {})",
        resolved.global_model.name,
        resolved.method.as_str(),
        resolved.tier.as_str()
    );
    for (index, candidate) in plan.candidates().enumerate() {
        let endpoint = candidate.endpoint.map_or("-", |e| e.base_url.as_str());
        match candidate.skip_reason {
            None => println!(
                "  {index}. {} {endpoint} as {}",
                candidate.provider.name, candidate.upstream_model_name
            ),
            Some(reason) => println!(
                "  {index}. {} skipped: {}",
                candidate.provider.name,
                reason.as_str()
            ),
        }
    }
    // The same plan again comes from the cache without a database query.
    let (again, _) = resolver
        .plan(&name, ApiFormat::OpenAi, Some("example-client"))
        .await?
        .ok_or("vanished")?;
    println!("second plan answered by {}", again.tier.as_str());
    Ok(())
}

/// Two providers serving `gpt-4o`. The rows start from the testkit's fixtures (complete
/// rows with defaults); an embedder fills every column of `shared/spec/schema.md` itself.
async fn seed(conn: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let mut global = fixtures::global_model("gpt-4o");
    global.display_name = "GPT-4o".into();
    global.default_tiered_pricing = TieredPricing::fixed(2.5, 10.0);
    global.supported_capabilities = Capabilities(vec!["vision".into()]);
    let global = insert_row(conn, global).await?;
    for (name, priority, upstream) in [
        ("primary", 10, "gpt-4o-2024-08-06"),
        ("backup", 20, "gpt-4o"),
    ] {
        let provider = insert_row(conn, fixtures::provider(name, priority)).await?;
        let base_url = format!("https://{name}.example/v1");
        let endpoint = fixtures::endpoint(&provider.id, ApiFormat::OpenAi, &base_url);
        let endpoint = insert_row(conn, endpoint).await?;
        let mut key = fixtures::provider_key(&endpoint.id, &format!("sk-{name}-not-a-real-key"));
        key.name = format!("{name} key");
        insert_row(conn, key).await?;
        insert_row(conn, fixtures::model(&provider.id, &global.id, upstream)).await?;
    }
    Ok(())
}
