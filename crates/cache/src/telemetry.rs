//! The cache's counters, with the configured extra labels.

use metrics::{Label, counter};

/// Records `cache_requests_total{family,tier,result}` and
/// `cache_backend_errors_total{backend}` through the `metrics` facade.
///
/// `tier` is `l1`, `redis`, `loader` or `flight` (a call that waited for a concurrent load of
/// the same key); `result` is one of `hit`, `negative_hit`, `miss`, `invalid` (undecodable
/// value, treated as a miss), `error`, `skipped` (breaker open), `found`, `missing`,
/// `coalesced`, `stale_store_skipped` (a load's answer not shared because an invalidation
/// came after the load began).
#[derive(Debug, Clone, Default)]
pub(crate) struct Telemetry {
    extra: Vec<Label>,
}

impl Telemetry {
    pub(crate) fn new(extra: &[(String, String)]) -> Self {
        Self {
            extra: extra
                .iter()
                .map(|(key, value)| Label::new(key.clone(), value.clone()))
                .collect(),
        }
    }

    pub(crate) fn request(&self, family: &'static str, tier: &'static str, result: &'static str) {
        if self.extra.is_empty() {
            // The common case allocates nothing: every label is a static string.
            counter!("cache_requests_total", "family" => family, "tier" => tier, "result" => result)
                .increment(1);
        } else {
            let mut labels = Vec::with_capacity(3 + self.extra.len());
            labels.push(Label::from_static_parts("family", family));
            labels.push(Label::from_static_parts("tier", tier));
            labels.push(Label::from_static_parts("result", result));
            labels.extend(self.extra.iter().cloned());
            counter!("cache_requests_total", labels).increment(1);
        }
    }

    pub(crate) fn backend_error(&self, backend: &'static str) {
        if self.extra.is_empty() {
            counter!("cache_backend_errors_total", "backend" => backend).increment(1);
        } else {
            let mut labels = Vec::with_capacity(1 + self.extra.len());
            labels.push(Label::from_static_parts("backend", backend));
            labels.extend(self.extra.iter().cloned());
            counter!("cache_backend_errors_total", labels).increment(1);
        }
    }
}
