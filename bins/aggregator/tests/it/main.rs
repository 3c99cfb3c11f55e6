//! Tests of the `tollgate-aggregator` binary: exit codes, one-line usage errors, and the
//! commands on a temporary SQLite file, and on an Aether PostgreSQL database.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod aether;
mod cli;
