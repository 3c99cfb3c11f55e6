//! Integration tests of `tollgate-cache` against the local Redis (private Redis servers for
//! the fault tests); they fail loudly when Redis is missing.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod capacity;
mod counter;
mod expiry;
mod families;
mod faults;
mod invalid;
mod invalidation;
mod metrics;
mod round_trip;
mod single_flight;
mod support;
