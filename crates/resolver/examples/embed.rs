//! Embedding `tollgate-resolver`: open a SQLite catalogue, resolve a name, print the plan.
//!
//! ```text
//! cargo run -p tollgate-resolver --example embed -- [CATALOGUE.db] [MODEL NAME]
//! ```
//!
//! Without a file it uses a temporary one; an empty catalogue is seeded with two providers
//! serving `gpt-4o` so there is something to resolve.

use sea_orm::{
    ActiveModelTrait, Database, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait,
};
use tollgate_entities::{
    ApiFormat, BillingType, Capabilities, GlobalModelConfig, TieredPricing, global_models, models,
    new_id, now_utc, provider_api_keys, provider_endpoints, providers,
};
use tollgate_migrations::{Migrator, MigratorTraitReexport as _};
use tollgate_resolver::Resolver;

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

async fn seed(conn: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let now = now_utc();
    let global = global_models::Model {
        id: new_id(),
        name: "gpt-4o".into(),
        display_name: "GPT-4o".into(),
        default_price_per_request: None,
        default_tiered_pricing: TieredPricing::fixed(2.5, 10.0),
        supported_capabilities: Capabilities(vec!["vision".into()]),
        config: GlobalModelConfig::default(),
        is_active: true,
        usage_count: 0,
        created_at: now,
        updated_at: now,
    };
    global
        .clone()
        .into_active_model()
        .reset_all()
        .insert(conn)
        .await?;
    for (name, priority, upstream) in [
        ("primary", 10, "gpt-4o-2024-08-06"),
        ("backup", 20, "gpt-4o"),
    ] {
        let provider = providers::Model {
            id: new_id(),
            name: name.into(),
            display_name: name.into(),
            billing_type: BillingType::PayAsYouGo,
            provider_priority: priority,
            is_active: true,
            config: None,
            created_at: now,
            updated_at: now,
        };
        provider
            .clone()
            .into_active_model()
            .reset_all()
            .insert(conn)
            .await?;
        let endpoint = provider_endpoints::Model {
            id: new_id(),
            provider_id: provider.id.clone(),
            api_format: ApiFormat::OpenAi,
            base_url: format!("https://{name}.example/v1"),
            headers: None,
            timeout: 300,
            max_retries: 1,
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        endpoint
            .clone()
            .into_active_model()
            .reset_all()
            .insert(conn)
            .await?;
        provider_api_keys::Model {
            id: new_id(),
            endpoint_id: endpoint.id.clone(),
            api_key: format!("sk-{name}-not-a-real-key"),
            name: format!("{name} key"),
            rate_multiplier: 1.0,
            internal_priority: 50,
            allowed_models: None,
            is_active: true,
            created_at: now,
            updated_at: now,
        }
        .into_active_model()
        .reset_all()
        .insert(conn)
        .await?;
        models::Model {
            id: new_id(),
            provider_id: provider.id.clone(),
            global_model_id: global.id.clone(),
            provider_model_name: upstream.into(),
            provider_model_aliases: None,
            price_per_request: None,
            tiered_pricing: None,
            supports_vision: None,
            supports_function_calling: None,
            supports_streaming: None,
            supports_extended_thinking: None,
            supports_image_generation: None,
            is_active: true,
            is_available: true,
            config: None,
            created_at: now,
            updated_at: now,
        }
        .into_active_model()
        .reset_all()
        .insert(conn)
        .await?;
    }
    Ok(())
}
