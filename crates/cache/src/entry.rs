//! The cached envelope (`Found` or `Missing`), its wire form in Redis, and look-up results.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A cached answer: a value, or the knowledge that there is none (negative caching).
///
/// `Missing` is its own variant, so no real value can be mistaken for it. In JSON it is
/// `{"found": …}` or `"missing"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry<T> {
    /// The value exists.
    Found(T),
    /// The value is known not to exist.
    Missing,
}

impl<T> Entry<T> {
    /// The value, if found.
    pub fn found(self) -> Option<T> {
        match self {
            Self::Found(value) => Some(value),
            Self::Missing => None,
        }
    }

    /// A reference to the value, if found.
    pub fn as_found(&self) -> Option<&T> {
        match self {
            Self::Found(value) => Some(value),
            Self::Missing => None,
        }
    }

    /// Whether this is a negative entry.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing)
    }
}

impl<T> From<Option<T>> for Entry<T> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Missing, Self::Found)
    }
}

/// Which tier answered a look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The in-process tier.
    L1,
    /// Redis.
    Redis,
    /// Nothing was cached: the loader answered (directly, or through a concurrent call for the
    /// same key that this call waited for).
    Loader,
}

impl Tier {
    /// `l1`, `redis` or `loader`: the `tier` metric label and the name the resolver reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::L1 => "l1",
            Self::Redis => "redis",
            Self::Loader => "loader",
        }
    }

    /// Whether a cache tier (not the loader) answered.
    pub fn is_cache(self) -> bool {
        !matches!(self, Self::Loader)
    }
}

/// An answer and the tier it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup<T> {
    /// The cached or loaded entry.
    pub entry: Entry<T>,
    /// Who answered.
    pub tier: Tier,
}

/// The form stored in Redis: the envelope plus its absolute expiry, so a replica that copies
/// the entry into its in-process tier keeps it no longer than the shared tier does.
#[derive(Serialize)]
struct WireOut<'a, T> {
    expires_at_ms: u64,
    entry: &'a Entry<T>,
}

#[derive(Deserialize)]
struct WireIn<T> {
    expires_at_ms: u64,
    entry: Entry<T>,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Serializes `entry` for Redis, to expire `ttl` from now.
pub(crate) fn encode<T: Serialize>(
    entry: &Entry<T>,
    ttl: Duration,
) -> Result<Vec<u8>, serde_json::Error> {
    let expires_at_ms = unix_ms(SystemTime::now())
        .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    serde_json::to_vec(&WireOut {
        expires_at_ms,
        entry,
    })
}

/// Deserializes a Redis value: the entry and how long it has left to live.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Entry<T>, Duration), serde_json::Error> {
    let wire: WireIn<T> = serde_json::from_slice(bytes)?;
    let remaining = wire
        .expires_at_ms
        .saturating_sub(unix_ms(SystemTime::now()));
    Ok((wire.entry, Duration::from_millis(remaining)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Entry, decode, encode};

    #[test]
    fn missing_is_not_a_string_value() {
        let missing: Entry<String> = Entry::Missing;
        let found = Entry::Found("missing".to_owned());
        assert_eq!(serde_json::to_string(&missing).unwrap(), "\"missing\"");
        assert_eq!(
            serde_json::to_string(&found).unwrap(),
            "{\"found\":\"missing\"}"
        );
        let bytes = encode(&found, Duration::from_secs(10)).unwrap();
        let (back, remaining) = decode::<String>(&bytes).unwrap();
        assert_eq!(back, found);
        assert!(remaining <= Duration::from_secs(10) && remaining > Duration::from_secs(8));
    }

    #[test]
    fn zero_and_null_stay_distinct() {
        let values = [
            Entry::Found(Some(0.0_f64)),
            Entry::Found(None),
            Entry::Missing,
        ];
        for value in values {
            let bytes = encode(&value, Duration::from_secs(1)).unwrap();
            assert_eq!(decode::<Option<f64>>(&bytes).unwrap().0, value);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<String>(b"NOT_FOUND").is_err());
        assert!(decode::<String>(b"{\"expires_at_ms\":1,\"entry\":{\"found\":3}}").is_err());
    }
}
