//! The crate's one error type.

use std::time::Duration;

/// What can go wrong in `tollgate-cache`.
///
/// Look-ups ([`Cache::get`](crate::Cache::get), [`Cache::get_or_load`](crate::Cache::get_or_load))
/// never return it for a backend problem: a Redis failure there is counted and the look-up falls
/// through to the in-process tier and the loader. Writes and invalidations return it so the
/// caller knows a shared tier may still hold the old value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A [`Config`](crate::Config) field has a value the cache cannot work with.
    #[error("invalid cache configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The Redis URL could not be parsed. The URL itself is left out of the message because it
    /// may carry a password.
    #[error("invalid redis url: {source}")]
    InvalidRedisUrl {
        /// What the Redis client reported.
        #[source]
        source: deadpool_redis::redis::RedisError,
    },
    /// The Redis connection pool could not be built.
    #[error("cannot build the redis connection pool: {reason}")]
    Pool {
        /// What the pool builder reported.
        reason: String,
    },
    /// A Redis command failed (connection refused, reset, or an error reply).
    #[error("redis {operation} failed: {source}")]
    Redis {
        /// The operation that failed, e.g. `get` or `delete`.
        operation: &'static str,
        /// What the Redis client reported.
        #[source]
        source: deadpool_redis::redis::RedisError,
    },
    /// A Redis call did not finish within the configured per-call timeout.
    #[error("redis {operation} timed out after {timeout:?}")]
    Timeout {
        /// The operation that timed out.
        operation: &'static str,
        /// The limit it exceeded.
        timeout: Duration,
    },
    /// Redis was skipped because its circuit breaker is open after repeated failures.
    #[error("redis {operation} skipped: circuit breaker open")]
    BreakerOpen {
        /// The operation that was skipped.
        operation: &'static str,
    },
    /// A value could not be serialized for the shared tier.
    #[error("cannot encode a `{family}` value: {source}")]
    Encode {
        /// The key family of the value.
        family: &'static str,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}
