//! `--demo`: a built-in mock upstream, a catalogue routing two global models to it (one per
//! format), a fresh demo client key, and copy-paste `curl` commands.

use std::net::SocketAddr;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tollgate_entities::{ApiFormat, BillingType, PriceTier, TieredPricing, UserRole};

use crate::mock::{MockUpstream, MockUsage};
use tollgate_catalogue::Secret;
use tollgate_catalogue::SecretBox;
use tollgate_catalogue::generate_client_key;
use tollgate_catalogue::{
    CatalogError, CatalogFile, ClientKeySpec, EndpointSpec, GlobalModelSpec, ModelSpec,
    ProviderKeySpec, ProviderSpec, UserSpec, apply_catalog,
};

/// The OpenAI-format demo model.
pub const DEMO_OPENAI_MODEL: &str = "gpt-4o-mini";
/// The Anthropic-format demo model.
pub const DEMO_CLAUDE_MODEL: &str = "claude-sonnet-4-5";

/// A running demo: the mock and the key to use.
pub(crate) struct Demo {
    pub(crate) mock: MockUpstream,
    pub(crate) key: Secret,
}

fn provider(name: &str, format: ApiFormat, base_url: String, model: ModelSpec) -> ProviderSpec {
    ProviderSpec {
        name: name.to_owned(),
        display_name: None,
        billing_type: BillingType::PayAsYouGo,
        priority: 10,
        is_active: true,
        endpoints: vec![EndpointSpec {
            api_format: format,
            base_url,
            headers: None,
            timeout: 30,
            max_retries: 1,
            is_active: true,
            keys: vec![ProviderKeySpec {
                name: "mock".to_owned(),
                api_key: Some(Secret::new("sk-mock-upstream-demo")),
                api_key_env: None,
                rate_multiplier: 1.0,
                internal_priority: 50,
                allowed_models: None,
                is_active: true,
            }],
        }],
        models: vec![model],
    }
}

fn global(name: &str, input: f64, output: f64) -> GlobalModelSpec {
    GlobalModelSpec {
        name: name.to_owned(),
        display_name: None,
        default_tiered_pricing: TieredPricing {
            tiers: vec![PriceTier {
                up_to: None,
                input_price_per_1m: input,
                output_price_per_1m: output,
                cache_creation_price_per_1m: None,
                cache_read_price_per_1m: None,
            }],
        },
        default_price_per_request: None,
        supported_capabilities: Vec::new(),
        config: tollgate_entities::GlobalModelConfig::default(),
        is_active: true,
    }
}

fn model(global_model: &str, provider_model_name: &str) -> ModelSpec {
    ModelSpec {
        global_model: global_model.to_owned(),
        provider_model_name: provider_model_name.to_owned(),
        aliases: None,
        tiered_pricing: None,
        price_per_request: None,
        is_active: true,
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The mock upstream could not listen.
    #[error("cannot start the mock upstream: {0}")]
    Mock(#[source] std::io::Error),
    /// The demo catalogue could not be applied.
    #[error("cannot apply the demo catalogue: {0}")]
    Catalogue(#[from] CatalogError),
}

/// Starts the mock and applies the demo catalogue with a fresh client key.
pub(crate) async fn start(
    conn: &DatabaseConnection,
    secrets: &SecretBox,
) -> Result<Demo, DemoError> {
    let mock = MockUpstream::start().await.map_err(DemoError::Mock)?;
    mock.set(|behaviour| {
        behaviour.chunk_delay = Duration::from_millis(40);
        behaviour.chunks = 5;
        behaviour.record = false;
        behaviour.usage = MockUsage {
            input: 21,
            output: 9,
            cache_creation: 0,
            cache_read: 0,
        };
    });
    let key = generate_client_key();
    let file = CatalogFile {
        global_models: vec![
            global(DEMO_OPENAI_MODEL, 0.15, 0.6),
            global(DEMO_CLAUDE_MODEL, 3.0, 15.0),
        ],
        providers: vec![
            provider(
                "mock-openai",
                ApiFormat::OpenAi,
                mock.openai_base_url(),
                model(DEMO_OPENAI_MODEL, "gpt-4o-mini-2024-07-18"),
            ),
            provider(
                "mock-anthropic",
                ApiFormat::Claude,
                mock.claude_base_url(),
                model(DEMO_CLAUDE_MODEL, "claude-sonnet-4-5-20250929"),
            ),
        ],
        users: vec![UserSpec {
            username: "demo".to_owned(),
            email: None,
            role: UserRole::User,
            is_active: true,
            quota_usd: None,
            api_keys: vec![ClientKeySpec {
                name: "demo".to_owned(),
                key: Some(key.clone()),
                key_hash: None,
                expires_at: None,
                is_active: true,
            }],
        }],
    };
    apply_catalog(conn, &file, secrets).await?;
    Ok(Demo { mock, key })
}

/// The demo banner: where things run and requests to paste.
pub(crate) fn banner(
    addr: SocketAddr,
    demo: &Demo,
    generated_admin_key: Option<&Secret>,
) -> String {
    let base = format!("http://{addr}");
    let key = demo.key.expose();
    // The admin key is shown only when this start generated it; otherwise the operator has it
    // in TOLLGATE_ADMIN_KEY.
    let admin = generated_admin_key.map_or_else(
        || "\"Authorization: Bearer $TOLLGATE_ADMIN_KEY\"".to_owned(),
        |admin| format!("'Authorization: Bearer {}'", admin.expose()),
    );
    let openai = format!(
        r#"{{"model":"{DEMO_OPENAI_MODEL}","messages":[{{"role":"user","content":"Hello"}}]}}"#
    );
    let openai_stream = format!(
        r#"{{"model":"{DEMO_OPENAI_MODEL}","stream":true,"messages":[{{"role":"user","content":"Hello"}}]}}"#
    );
    let claude = format!(
        r#"{{"model":"{DEMO_CLAUDE_MODEL}","max_tokens":64,"messages":[{{"role":"user","content":"Hello"}}]}}"#
    );
    let mock = demo.mock.addr();
    [
        String::new(),
        format!("tollgate demo: gateway on {base}, mock upstream on {mock}"),
        format!("demo client key: {key}"),
        String::new(),
        "OpenAI format:".to_owned(),
        format!("  curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {key}' -H 'content-type: application/json' -d '{openai}'"),
        "OpenAI format, streamed:".to_owned(),
        format!("  curl -sN {base}/v1/chat/completions -H 'Authorization: Bearer {key}' -H 'content-type: application/json' -d '{openai_stream}'"),
        "Anthropic format:".to_owned(),
        format!("  curl -s {base}/v1/messages -H 'x-api-key: {key}' -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' -d '{claude}'"),
        "Models:".to_owned(),
        format!("  curl -s {base}/v1/models -H 'Authorization: Bearer {key}'"),
        "Where a model name goes (admin API: resolution, cache tier, candidates):".to_owned(),
        format!("  curl -s '{base}/api/admin/resolve?model={DEMO_OPENAI_MODEL}' -H {admin}"),
        "Dashboard (today's numbers, live):".to_owned(),
        format!("  curl -s {base}/api/dashboard/stats -H {admin}"),
        "Metrics:".to_owned(),
        format!("  curl -s {base}/metrics"),
        String::new(),
    ]
    .join("\n")
}
