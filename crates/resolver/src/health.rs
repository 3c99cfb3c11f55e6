//! Per-upstream-key circuit breakers: a key that keeps failing is skipped for a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Circuit breaker settings for upstream keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHealthConfig {
    /// Consecutive failures that open a key's circuit.
    pub failure_threshold: u32,
    /// How long an open circuit stays open before the key is tried again.
    pub open_for: Duration,
}

impl Default for KeyHealthConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct KeyState {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// Health of upstream keys in this process, fed by the caller's attempt outcomes.
///
/// After `failure_threshold` consecutive failures a key's circuit opens for `open_for`; the
/// plan lists the key as skipped (`circuit_open`) meanwhile. When the period ends the key is
/// tried again: one success closes the circuit, one more failure reopens it.
#[derive(Debug, Clone, Default)]
pub struct KeyHealth {
    config: KeyHealthConfig,
    states: Arc<Mutex<HashMap<String, KeyState>>>,
}

impl KeyHealth {
    /// A registry with the given settings.
    pub fn new(config: KeyHealthConfig) -> Self {
        Self {
            config,
            states: Arc::default(),
        }
    }

    /// Whether `key_id`'s circuit is open now.
    pub fn is_open(&self, key_id: &str) -> bool {
        self.is_open_at(key_id, Instant::now())
    }

    fn is_open_at(&self, key_id: &str, now: Instant) -> bool {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states
            .get(key_id)
            .and_then(|state| state.open_until)
            .is_some_and(|until| now < until)
    }

    /// Records a successful attempt: closes the circuit.
    pub fn record_success(&self, key_id: &str) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.remove(key_id);
    }

    /// Records a failed attempt; opens the circuit at the threshold.
    pub fn record_failure(&self, key_id: &str) {
        self.record_failure_at(key_id, Instant::now());
    }

    fn record_failure_at(&self, key_id: &str, now: Instant) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let state = states.entry(key_id.to_owned()).or_default();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        if state.consecutive_failures >= self.config.failure_threshold {
            state.open_until = Some(now + self.config.open_for);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry that opens a key's breaker at its second failure, for `open_for`.
    fn opening_after_two_failures(open_for: Duration) -> KeyHealth {
        KeyHealth::new(KeyHealthConfig {
            failure_threshold: 2,
            open_for,
        })
    }

    #[test]
    fn opens_at_the_threshold_and_closes_on_success() {
        let health = opening_after_two_failures(Duration::from_secs(60));
        let now = Instant::now();
        health.record_failure_at("k", now);
        assert!(!health.is_open_at("k", now));
        health.record_failure_at("k", now);
        assert!(health.is_open_at("k", now));
        assert!(!health.is_open_at("other", now));
        health.record_success("k");
        assert!(!health.is_open_at("k", now));
    }

    #[test]
    fn reopens_after_the_period_on_the_next_failure() {
        let health = opening_after_two_failures(Duration::from_secs(10));
        let start = Instant::now();
        health.record_failure_at("k", start);
        health.record_failure_at("k", start);
        let later = start + Duration::from_secs(11);
        assert!(!health.is_open_at("k", later), "half-open after the period");
        health.record_failure_at("k", later);
        assert!(health.is_open_at("k", later), "one more failure reopens it");
    }
}
