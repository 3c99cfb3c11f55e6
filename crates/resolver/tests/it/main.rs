//! Integration tests of `tollgate-resolver` against SQLite and PostgreSQL, each with an
//! in-process cache, with Redis, and with Redis down.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    missing_docs,
    unreachable_pub,
    reason = "test code panics on failure by design and is not a public API"
)]

mod support;

mod edge;
mod matrix;
mod metrics_counts;
mod planning;
mod round_trip;
