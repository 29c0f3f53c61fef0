//! Logging (JSON, never comment or description bodies) and metrics exporters (Prometheus for
//! `/metrics`, DogStatsD when enabled).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::layers::FanoutBuilder;
use tracing_subscriber::EnvFilter;

use crate::config::StatsdConfig;
use crate::health::MetricsRender;

/// Installs the JSON log subscriber (level from `RUST_LOG`, default `info`). Logs go to stderr.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Why the metrics exporters could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The DogStatsD exporter could not be built.
    #[error("statsd exporter: {0}")]
    Statsd(String),
    /// A global recorder is already installed.
    #[error("a metrics recorder is already installed")]
    AlreadyInstalled,
}

/// Installs the global recorder (Prometheus, plus DogStatsD when enabled) and returns the
/// renderer of `/metrics`.
pub fn install_metrics(statsd: &StatsdConfig) -> Result<MetricsRender, MetricsError> {
    let prometheus = PrometheusBuilder::new().build_recorder();
    let handle = prometheus.handle();
    let mut fanout = FanoutBuilder::default().add_recorder(prometheus);
    if statsd.enabled {
        let recorder =
            metrics_exporter_statsd::StatsdBuilder::from(statsd.host.as_str(), statsd.port)
                .histogram_is_distribution()
                .build(None)
                .map_err(|e| MetricsError::Statsd(e.to_string()))?;
        fanout = fanout.add_recorder(recorder);
    }
    metrics::set_global_recorder(fanout.build()).map_err(|_| MetricsError::AlreadyInstalled)?;
    Ok(Arc::new(move || handle.render()))
}
