//! The Redis tier: short per-call timeouts, a circuit breaker, and one multiplexed connection
//! held across calls.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, PoolError, Runtime};

use crate::breaker::{Breaker, Transition};
use crate::telemetry::Telemetry;
use crate::{CacheError, Config};

/// Whether a call respects the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Skipped while the breaker is open: look-ups and population, which have a fallback.
    Breaker,
    /// Always attempted (still bounded by the timeout): invalidations, whose failure must be
    /// reported rather than silently skipped, because a stale shared entry would outlive them.
    Always,
}

/// The checked-out connection every call clones. deadpool creates it (and replaces it after a
/// failure); holding it avoids the PING that each `pool.get()` sends, which would double the
/// cost of a cache hit.
struct Held {
    connection: Connection,
    generation: u64,
}

pub(crate) struct Remote {
    pool: Pool,
    held: Mutex<Option<Held>>,
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    breaker: Breaker,
    timeout: Duration,
    telemetry: Telemetry,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Stores a loaded entry only if the invalidation version is the one read before the load.
/// KEYS: entry, version. ARGV: version read before the load (empty when there was none),
/// encoded entry, TTL in milliseconds.
const STORE_IF_CURRENT: &str = "\
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1";

/// The namespace's invalidation version as read from Redis (empty when the key is absent).
/// Every delete, explicit set and flush increments it; a load stores its answer in Redis only
/// if the version is unchanged, which closes the race between a replica's load that read
/// the database just before an admin change committed and the invalidation that followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Version(Vec<u8>);

/// Appends the invalidation version bump and the bus message to `pipe`: every change to the
/// shared entries ends with both, in the same transaction.
fn bump_and_publish<'a>(
    pipe: &'a mut redis::Pipeline,
    version_key: &str,
    channel: &str,
    message: &str,
) -> &'a mut redis::Pipeline {
    pipe.cmd("INCR")
        .arg(version_key)
        .ignore()
        .cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .ignore()
}

/// A `SCAN MATCH` pattern for every key that starts with `prefix`.
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

impl Remote {
    pub(crate) fn new(
        url: &str,
        config: &Config,
        telemetry: Telemetry,
    ) -> Result<Self, CacheError> {
        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.redis_timeout))
            .set_response_timeout(Some(config.redis_timeout));
        let manager = Manager::new_with_config(url, connection_config)
            .map_err(|source| CacheError::InvalidRedisUrl { source })?;
        let pool = Pool::builder(manager)
            .max_size(config.redis_pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.redis_timeout))
            .create_timeout(Some(config.redis_timeout))
            .recycle_timeout(Some(config.redis_timeout))
            .build()
            .map_err(|error| CacheError::Pool {
                reason: error.to_string(),
            })?;
        Ok(Self {
            pool,
            held: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            breaker: Breaker::new(config.breaker_threshold, config.breaker_backoff),
            timeout: config.redis_timeout,
            telemetry,
        })
    }

    fn held(&self) -> MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held_clone(&self) -> Option<(MultiplexedConnection, u64)> {
        self.held().as_ref().map(|held| {
            (
                MultiplexedConnection::clone(&held.connection),
                held.generation,
            )
        })
    }

    async fn connection(
        &self,
        operation: &'static str,
    ) -> Result<(MultiplexedConnection, u64), CacheError> {
        if let Some(found) = self.held_clone() {
            return Ok(found);
        }
        // One caller connects; the others wait for it rather than each opening a connection.
        let _connecting = self.connecting.lock().await;
        if let Some(found) = self.held_clone() {
            return Ok(found);
        }
        let connection = self.pool.get().await.map_err(|error| match error {
            PoolError::Backend(source) => CacheError::Redis { operation, source },
            PoolError::Timeout(_) => CacheError::Timeout {
                operation,
                timeout: self.timeout,
            },
            other => CacheError::Pool {
                reason: other.to_string(),
            },
        })?;
        let generation = self
            .generation
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        let clone = MultiplexedConnection::clone(&connection);
        *self.held() = Some(Held {
            connection,
            generation,
        });
        Ok((clone, generation))
    }

    /// Forgets the held connection if it is still the one a failed call used, so the next call
    /// opens a fresh one instead of reusing a broken one.
    fn discard(&self, generation: u64) {
        let mut held = self.held();
        if held
            .as_ref()
            .is_some_and(|current| current.generation == generation)
            && let Some(stale) = held.take()
        {
            // Detached from the pool: a broken connection must not be recycled.
            drop(Connection::take(stale.connection));
        }
    }

    /// Runs one Redis call under the timeout and the breaker, recording the outcome.
    async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        gate: Gate,
        call: F,
    ) -> Result<T, CacheError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if gate == Gate::Breaker && !self.breaker.allow() {
            return Err(CacheError::BreakerOpen { operation });
        }
        let used = AtomicU64::new(0);
        let attempt = async {
            let (connection, generation) = self.connection(operation).await?;
            used.store(generation, Ordering::Release);
            call(connection)
                .await
                .map_err(|source| CacheError::Redis { operation, source })
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(CacheError::Timeout {
                operation,
                timeout: self.timeout,
            }),
        };
        match &outcome {
            Ok(_) => {
                if self.breaker.success() {
                    tracing::info!("redis answers again; cache circuit breaker closed");
                }
            }
            Err(error) => {
                self.telemetry.backend_error("redis");
                let broken = match error {
                    CacheError::Redis { source, .. } => {
                        source.is_io_error() || source.is_unrecoverable_error()
                    }
                    _ => true,
                };
                let generation = used.load(Ordering::Acquire);
                if broken && generation != 0 {
                    self.discard(generation);
                }
                if self.breaker.failure() == Transition::Opened {
                    tracing::warn!(
                        %error,
                        backoff = ?self.breaker_backoff(),
                        "redis keeps failing; cache circuit breaker open, skipping redis"
                    );
                } else {
                    tracing::debug!(%error, operation, "redis call failed");
                }
            }
        }
        outcome
    }

    fn breaker_backoff(&self) -> Duration {
        Duration::from_millis(self.breaker.backoff_ms())
    }

    /// Whether the breaker is open (Redis is being skipped).
    pub(crate) fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Opens (or checks) the shared connection.
    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        self.run("ping", Gate::Breaker, |mut connection| async move {
            redis::cmd("PING").query_async::<()>(&mut connection).await
        })
        .await
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run("get", Gate::Breaker, |mut connection| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut connection)
                .await
        })
        .await
    }

    /// `MGET key version_key`: the entry, and the namespace's invalidation version that a
    /// load started now must still find when it stores its answer
    /// ([`Remote::store_if_current`]).
    pub(crate) async fn get_with_version(
        &self,
        key: &str,
        version_key: &str,
    ) -> Result<(Option<Vec<u8>>, Version), CacheError> {
        self.run("get", Gate::Breaker, |mut connection| async move {
            let (entry, version): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("MGET")
                .arg(key)
                .arg(version_key)
                .query_async(&mut connection)
                .await?;
            Ok((entry, Version(version.unwrap_or_default())))
        })
        .await
    }

    /// `SET key value PX ttl` unless the invalidation version has moved on from `version`:
    /// an invalidation committed after the load began, so its answer may be older than the
    /// data and must not be shared. Returns whether the value was stored. One `EVAL` round
    /// trip, atomic with respect to [`Remote::delete`].
    pub(crate) async fn store_if_current(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        version_key: &str,
        version: &Version,
    ) -> Result<bool, CacheError> {
        self.run("set", Gate::Breaker, |mut connection| async move {
            let stored: i64 = redis::cmd("EVAL")
                .arg(STORE_IF_CURRENT)
                .arg(2)
                .arg(key)
                .arg(version_key)
                .arg(version.0.as_slice())
                .arg(value)
                .arg(millis(ttl))
                .query_async(&mut connection)
                .await?;
            Ok(stored == 1)
        })
        .await
    }

    /// `SET key value PX ttl`, `INCR version_key` (so a load in flight anywhere does not
    /// overwrite this value with an older one) and `PUBLISH channel message`, in one
    /// MULTI/EXEC round trip.
    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        version_key: &str,
        (channel, message): (&str, &str),
    ) -> Result<(), CacheError> {
        self.run("set", Gate::Breaker, |mut connection| async move {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
            bump_and_publish(&mut pipe, version_key, channel, message)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    /// `DEL key`, `INCR version_key` and `PUBLISH channel message` in one MULTI/EXEC round
    /// trip. The version bump makes every load that began before it (and so may have read
    /// the database before the change this delete follows) skip storing its answer.
    pub(crate) async fn delete(
        &self,
        key: &str,
        version_key: &str,
        channel: &str,
        message: &str,
    ) -> Result<(), CacheError> {
        self.run("delete", Gate::Always, |mut connection| async move {
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("DEL").arg(key).ignore();
            bump_and_publish(&mut pipe, version_key, channel, message)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    /// `INCR` and `PEXPIRE` in one MULTI/EXEC round trip, so the counter never lacks a TTL.
    pub(crate) async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        self.run("incr", Gate::Breaker, |mut connection| async move {
            let (count,): (i64,) = redis::pipe()
                .atomic()
                .cmd("INCR")
                .arg(key)
                .cmd("PEXPIRE")
                .arg(key)
                .arg(millis(ttl))
                .ignore()
                .query_async(&mut connection)
                .await?;
            Ok(count)
        })
        .await
    }

    pub(crate) async fn set_counter(
        &self,
        key: &str,
        value: i64,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.run("set_counter", Gate::Breaker, |mut connection| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    pub(crate) async fn counter(&self, key: &str) -> Result<Option<i64>, CacheError> {
        self.run("get_counter", Gate::Breaker, |mut connection| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<i64>>(&mut connection)
                .await
        })
        .await
    }

    /// Removes every key starting with `prefix` but the invalidation version (SCAN + UNLINK
    /// in batches, each call under the timeout), then bumps the version and publishes
    /// `message`. Returns how many keys were removed.
    pub(crate) async fn flush(
        &self,
        prefix: &str,
        version_key: &str,
        channel: &str,
        message: &str,
    ) -> Result<u64, CacheError> {
        let pattern = prefix_pattern(prefix);
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let pattern = pattern.as_str();
            let (next, keys): (u64, Vec<String>) = self
                .run("flush_scan", Gate::Always, |mut connection| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            // The invalidation version survives (and is bumped below): removing it could let
            // a load that read an old version find the same number again later.
            let keys: Vec<String> = keys.into_iter().filter(|key| key != version_key).collect();
            if !keys.is_empty() {
                let keys = keys.as_slice();
                let count: u64 = self
                    .run("flush_unlink", Gate::Always, |mut connection| async move {
                        redis::cmd("UNLINK")
                            .arg(keys)
                            .query_async(&mut connection)
                            .await
                    })
                    .await?;
                removed = removed.saturating_add(count);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        self.run("flush_publish", Gate::Always, |mut connection| async move {
            bump_and_publish(redis::pipe().atomic(), version_key, channel, message)
                .query_async::<()>(&mut connection)
                .await
        })
        .await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn prefix_pattern_escapes_glob_characters() {
        assert_eq!(prefix_pattern("tollgate:v1:"), "tollgate:v1:*");
        assert_eq!(prefix_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}
