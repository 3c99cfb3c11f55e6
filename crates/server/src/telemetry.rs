//! The process-wide Prometheus recorder and its upkeep.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How often histogram samples are folded into their buckets and summaries. The exporter
/// keeps every sample recorded since the last fold; without a periodic fold a gateway that
/// nobody scrapes would hold all of them (two per request).
const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the recorder's pending histogram samples every few seconds, for as long as the
/// runtime runs. `/metrics` also folds before it renders.
pub(crate) fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Buckets of `gateway_overhead_seconds`: the gateway's own time is tens of microseconds.
const OVERHEAD_BUCKETS: [f64; 10] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
];

/// The Prometheus recorder of this process, installed on first use. `None` when another
/// recorder was installed first (an embedder's): metrics then go there.
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("gateway_overhead_seconds".to_owned()),
                    &OVERHEAD_BUCKETS,
                )
                .map_err(|error| tracing::warn!(%error, "overhead buckets rejected"))
                .ok()?;
            builder
                .install_recorder()
                .map_err(|error| tracing::warn!(%error, "prometheus recorder not installed"))
                .ok()
        })
        .clone()
}
