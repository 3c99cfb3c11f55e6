//! `tollgate-gateway`: an OpenAI- and Anthropic-format LLM gateway over `tollgate-resolver`:
//! client-key auth, routing with fallback, streaming relay, usage accounting in batches,
//! Prometheus metrics, a declarative catalogue file, and a built-in mock upstream.
//!
//! The binary only sequences [`Cli`] → [`Config`] → [`init_tracing`] → [`run`]. Tests build a
//! [`Gateway`] over a migrated database and drive [`Gateway::router`] in process.

mod admin;
mod app;
mod auth;
mod bootstrap;
mod catalog_file;
mod config;
mod demo;
mod drain;
mod error;
mod ledger;
mod listener;
pub mod mock;
mod ops;
mod proxy;
mod quota;
mod relay;
mod request;
mod secret;
mod secret_box;
mod server;
mod telemetry;
mod tokens;
mod upstream;
mod writer;

pub use app::{
    AppState, BuildError, Gateway, GatewayBuilder, Limits, install_crypto_provider, router,
};
pub use auth::hash_client_key;
pub use catalog_file::{
    CatalogError, CatalogFile, CatalogSummary, ClientKeySpec, EndpointSpec, GlobalModelSpec,
    ModelSpec, ProviderKeySpec, ProviderSpec, UserSpec, apply_catalog,
};
pub use config::{Cli, Config, ConfigError, DEFAULT_BODY_LIMIT, DEFAULT_DATABASE_URL, LogFormat};
pub use demo::{DEMO_CLAUDE_MODEL, DEMO_OPENAI_MODEL};
pub use listener::{ServerLimits, default_max_connections, serve as serve_router};
pub use secret::Secret;
pub use secret_box::SecretBox;
pub use server::{StartError, connect_database, deployment_cache_config, deployment_id, run};
pub use telemetry::{init_tracing, prometheus};
pub use writer::{WriterConfig, WriterStats};
