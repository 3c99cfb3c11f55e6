//! Integration tests of `tollgate-stats` on SQLite and PostgreSQL, one test binary.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod backfill;
mod closing;
mod combined;
mod concurrency;
mod hourly;
mod oracle;
mod prune;
mod read_path;
mod rewrite;
mod support;
mod zones;
