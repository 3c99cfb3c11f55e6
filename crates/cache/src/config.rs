//! Cache settings with the defaults of behaviour.md section 2.

use std::time::Duration;

use crate::CacheError;

/// Settings of a [`Cache`](crate::Cache). Every field has a default; change the ones you need:
///
/// ```
/// use std::time::Duration;
///
/// let config = tollgate_cache::Config {
///     ttl: Duration::from_secs(60),
///     ..tollgate_cache::Config::default()
/// };
/// assert_eq!(config.negative_ttl, Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Prefix of every key in Redis, bumped when a value's shape changes so an old deploy's
    /// entries are never misread. Default `tollgate:v1:`.
    pub namespace: String,
    /// Life of a [`Entry::Found`](crate::Entry::Found) entry. Default 300 s.
    pub ttl: Duration,
    /// Life of a [`Entry::Missing`](crate::Entry::Missing) entry. Default 300 s.
    pub negative_ttl: Duration,
    /// Most entries the in-process tier holds. Default 100 000.
    pub l1_capacity: u64,
    /// Limit of one Redis call, connecting included. Default 50 ms.
    pub redis_timeout: Duration,
    /// Limit for establishing the invalidation-bus subscription; the Redis and tiered
    /// constructors wait at most this long for the first attempt. Default 1 s.
    pub connect_timeout: Duration,
    /// Consecutive Redis failures that open the circuit breaker. Default 5.
    pub breaker_threshold: u32,
    /// How long an open breaker skips Redis before one call probes it again. Default 1 s.
    pub breaker_backoff: Duration,
    /// Redis pub/sub channel of the invalidation bus; `None` means `{namespace}invalidate`,
    /// i.e. `tollgate:v1:invalidate` with the default namespace. Messages carry keys without
    /// the namespace, so deploys with different namespaces may share a channel.
    pub bus_channel: Option<String>,
    /// First delay before resubscribing after the bus lost its subscription; doubles on each
    /// failed attempt. Default 100 ms.
    pub bus_retry_min: Duration,
    /// Longest delay between resubscription attempts. Default 5 s.
    pub bus_retry_max: Duration,
    /// How often the bus pings its subscription to notice a connection that died silently.
    /// Default 5 s.
    pub bus_ping_interval: Duration,
    /// Most Redis connections the pool opens. Default 8.
    pub redis_pool_size: usize,
    /// Extra labels added to every metric this cache records, e.g. `("cache", "catalogue")`.
    /// Keep values bounded (product.md): never a raw client string.
    pub metric_labels: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: "tollgate:v1:".to_owned(),
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(300),
            l1_capacity: 100_000,
            redis_timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_backoff: Duration::from_secs(1),
            bus_channel: None,
            bus_retry_min: Duration::from_millis(100),
            bus_retry_max: Duration::from_secs(5),
            bus_ping_interval: Duration::from_secs(5),
            redis_pool_size: 8,
            metric_labels: Vec::new(),
        }
    }
}

impl Config {
    /// The invalidation-bus channel this configuration uses.
    pub fn channel(&self) -> String {
        self.bus_channel
            .clone()
            .unwrap_or_else(|| format!("{}invalidate", self.namespace))
    }

    /// Checks the values the cache cannot work with: an empty namespace, zero timeouts,
    /// a zero breaker threshold, a zero pool size or L1 capacity.
    pub fn validate(&self) -> Result<(), CacheError> {
        let invalid = |field, reason: &str| {
            Err(CacheError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.namespace.is_empty() {
            return invalid("namespace", "must not be empty");
        }
        if self.bus_channel.as_deref().is_some_and(str::is_empty) {
            return invalid("bus_channel", "must not be empty");
        }
        let durations = [
            ("redis_timeout", self.redis_timeout),
            ("connect_timeout", self.connect_timeout),
            ("breaker_backoff", self.breaker_backoff),
            ("bus_retry_min", self.bus_retry_min),
            ("bus_retry_max", self.bus_retry_max),
            ("bus_ping_interval", self.bus_ping_interval),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return invalid(field, "must be greater than zero");
            }
        }
        if self.bus_retry_max < self.bus_retry_min {
            return invalid("bus_retry_max", "must not be less than bus_retry_min");
        }
        if self.breaker_threshold == 0 {
            return invalid("breaker_threshold", "must be at least 1");
        }
        if self.redis_pool_size == 0 {
            return invalid("redis_pool_size", "must be at least 1");
        }
        if self.l1_capacity == 0 {
            return invalid("l1_capacity", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Config;

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::default();
        assert_eq!(config.namespace, "tollgate:v1:");
        assert_eq!(config.ttl, Duration::from_secs(300));
        assert_eq!(config.negative_ttl, Duration::from_secs(300));
        assert_eq!(config.l1_capacity, 100_000);
        assert_eq!(config.redis_timeout, Duration::from_millis(50));
        assert_eq!(config.channel(), "tollgate:v1:invalidate");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn validation_names_the_field() {
        let config = Config {
            redis_timeout: Duration::ZERO,
            ..Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("redis_timeout"), "{error}");
    }
}
