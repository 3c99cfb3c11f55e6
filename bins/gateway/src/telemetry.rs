//! Logs: text or JSON lines on stderr, filtered by `RUST_LOG`.

use crate::config::LogFormat;

/// Installs the tracing subscriber (once; later calls do nothing). `RUST_LOG` filters,
/// default `info`.
pub(crate) fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
