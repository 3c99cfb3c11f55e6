//! Logs (tracing to stderr, text or JSON) and the run metrics.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the log subscriber: `RUST_LOG` (default `info`), JSON when
/// `TOLLGATE_LOG_FORMAT=json`.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sea_orm_migration=warn,sqlx=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let json = std::env::var("TOLLGATE_LOG_FORMAT").is_ok_and(|format| format == "json");
    // A second initialisation (never expected) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The Prometheus recorder, when a metrics file or listener was asked for.
pub(crate) struct Metrics {
    handle: Option<PrometheusHandle>,
    file: Option<PathBuf>,
}

impl Metrics {
    /// Installs the recorder when `file` or `listen` is set; without either the metrics facade
    /// is a no-op. With `listen`, the exporter's own HTTP listener serves `GET /metrics` on that
    /// address in the background for as long as the process runs; an address that cannot be
    /// bound fails in one line naming the option. Must run inside the Tokio runtime.
    pub(crate) fn install(
        file: Option<&Path>,
        listen: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Self> {
        let handle = match listen {
            Some(addr) => {
                let (recorder, exporter) = PrometheusBuilder::new()
                    .with_http_listener(addr)
                    .build()
                    .map_err(|error| {
                        anyhow::anyhow!("--metrics-listen {addr}: cannot listen: {error}")
                    })?;
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder)?;
                tracing::info!(%addr, "serving metrics at /metrics");
                tokio::spawn(async move {
                    if let Err(error) = exporter.await {
                        tracing::warn!(?error, "metrics listener stopped");
                    }
                });
                Some(handle)
            }
            None if file.is_some() => Some(PrometheusBuilder::new().install_recorder()?),
            None => None,
        };
        Ok(Self {
            handle,
            file: file.map(Path::to_owned),
        })
    }

    /// Counts one run and, on success, stamps the last-success gauge; then writes the file.
    pub(crate) fn record_run(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        metrics::counter!("aggregator_runs_total", "result" => result).increment(1);
        if success {
            #[expect(
                clippy::cast_precision_loss,
                reason = "a Unix time in seconds is far below 2^53"
            )]
            let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
            metrics::gauge!("aggregator_last_success_timestamp_seconds").set(now);
        }
        self.write();
    }

    /// Counts rows deleted by a prune in `aggregator_pruned_rows_total{table}`.
    pub(crate) fn record_pruned(&self, usage_rows: u64, candidate_rows: u64) {
        metrics::counter!("aggregator_pruned_rows_total", "table" => "usage").increment(usage_rows);
        metrics::counter!("aggregator_pruned_rows_total", "table" => "request_candidates")
            .increment(candidate_rows);
    }

    /// Writes the metrics file, when there is one.
    pub(crate) fn write(&self) {
        let (Some(handle), Some(path)) = (&self.handle, &self.file) else {
            return;
        };
        handle.run_upkeep();
        // Write then rename, so a collector never reads half a file.
        let temporary = path.with_extension("prom.tmp");
        let written = std::fs::write(&temporary, handle.render())
            .and_then(|()| std::fs::rename(&temporary, path));
        if let Err(error) = written {
            tracing::warn!(%error, path = %path.display(), "cannot write the metrics file");
        }
    }
}
