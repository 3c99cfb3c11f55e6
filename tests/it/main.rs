//! End-to-end and cross-crate tests, one binary: schema, JSON columns on both databases, and the
//! gateway (in process and as a binary) against mock upstreams.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod admin_api;
mod admin_catalog;
mod admin_dashboard;
mod admin_hostile;
mod admin_matrix;
mod admin_rules;
mod admin_support;
mod aether;
mod fault_upstream;
mod gateway_catalog;
mod gateway_closing;
mod gateway_dead_letters;
mod gateway_demo;
mod gateway_durability;
mod gateway_faults;
mod gateway_hostile;
mod gateway_proxy;
mod gateway_quota;
mod gateway_serving;
mod gateway_support;
mod json_columns;
mod schema;
mod tidy;
mod tidy_modules;
