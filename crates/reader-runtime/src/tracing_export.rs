//! Trace export (`[tracing]`): the pipeline's `tracing` spans become OpenTelemetry spans, sent in
//! batches over OTLP/gRPC to an agent or collector, and the W3C trace context propagator is
//! installed so every Case API call carries `traceparent` (`case_api::client::TraceContext`).
//! Nothing of it exists when `[tracing] otlp_endpoint` is empty.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TracingConfig;

/// The instrumentation scope of the reader's spans.
pub const SCOPE: &str = "case-third-party-reader";

/// The resource attribute naming the reader's flavor (`jira`, `servicenow`, `github`).
pub const FLAVOR_ATTRIBUTE: &str = "flavor";

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceExportError {
    /// The OTLP exporter could not be built (an endpoint tonic does not accept).
    #[error("otlp exporter for {endpoint}: {source}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// Why.
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// A running trace export: the tracer provider and its batch exporter (a background thread).
/// [`TraceExport::shutdown`] flushes what is still queued.
#[derive(Debug)]
pub struct TraceExport {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    flush_timeout: Duration,
}

impl TraceExport {
    /// Starts exporting when `config` names an endpoint (`None` otherwise), with resource
    /// attributes `service.name`, `service.version` and `flavor`, and installs the W3C trace
    /// context propagator as the global one. Must run inside a Tokio runtime, which must outlive
    /// [`TraceExport::shutdown`] (the gRPC channel lives on it).
    pub fn start(config: &TracingConfig, flavor: &str) -> Result<Option<Self>, TraceExportError> {
        if !config.enabled() {
            return Ok(None);
        }
        let endpoint = config.otlp_endpoint.trim().to_owned();
        let exporter = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(config.export_timeout)
            .build()
            .map_err(|source| TraceExportError::Exporter {
                endpoint: endpoint.clone(),
                source,
            })?;
        // `Resource::builder` also reads `OTEL_RESOURCE_ATTRIBUTES` (deployment attributes);
        // the configured service name wins over `OTEL_SERVICE_NAME`.
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new(FLAVOR_ATTRIBUTE, flavor.to_owned()),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(SCOPE);
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        Ok(Some(Self {
            provider,
            tracer,
            flush_timeout: config.export_timeout,
        }))
    }

    /// The layer turning `tracing` spans into exported spans (`otel.name` names them; an error
    /// event, or `otel.status_code`, sets their status).
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Exports every span still queued and stops the exporter, waiting at most the export
    /// timeout.
    pub async fn shutdown(self) {
        let Self {
            provider,
            flush_timeout,
            ..
        } = self;
        // The SDK waits on a channel: off the async workers, which drive the export's I/O.
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(flush_timeout))
                .await;
        // A failed export is logged by the SDK (`BatchSpanProcessor.ExportError`).
        match done {
            Ok(Ok(())) => tracing::info!("trace export stopped"),
            Ok(Err(err)) => tracing::warn!(error = %err, "trace export did not stop cleanly"),
            Err(err) => tracing::warn!(error = %err, "trace export did not stop cleanly"),
        }
    }
}
