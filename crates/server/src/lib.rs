//! `tollgate-server`: an OpenAI- and Anthropic-format LLM gateway over `tollgate-resolver`,
//! `tollgate-catalogue` and `tollgate-accounting`: client-key auth, routing with fallback,
//! streaming relay, usage accounting, the admin and dashboard APIs, Prometheus metrics,
//! operations endpoints, and a built-in mock upstream.
//!
//! [`run`] serves a [`Config`] until a shutdown signal (the `tollgate-gateway` binary only
//! builds the config and calls it). Tests and embedders build a [`Gateway`] over a migrated
//! database and drive [`Gateway::router`] in process, or serve it with [`serve_router`].
//!
//! The crate takes sea-orm without a database driver; the binary chooses it.

mod admin;
mod app;
mod auth;
mod config;
mod demo;
mod drain;
mod error;
mod gateway;
mod ledger;
mod listener;
pub mod mock;
mod ops;
mod proxy;
mod relay;
mod request;
mod server;
mod sse;
mod telemetry;
mod upstream;

pub use app::{AppState, Limits};
pub use config::{Config, DEFAULT_BODY_LIMIT, DEFAULT_DATABASE_URL};
pub use demo::{DEMO_CLAUDE_MODEL, DEMO_OPENAI_MODEL, DemoError};
pub use gateway::{BuildError, Gateway, GatewayBuilder, install_crypto_provider, router};
pub use listener::{ServerLimits, default_max_connections, serve as serve_router};
pub use server::{StartError, connect_database, deployment_cache_config, deployment_id, run};
pub use telemetry::prometheus;
