//! Logging (JSON, never comment or description bodies) and metrics exporters (Prometheus for
//! `/metrics`, DogStatsD when enabled).

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::layers::FanoutBuilder;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::StatsdConfig;
use crate::health::MetricsRender;
use crate::tracing_export::TraceExport;

/// Installs the JSON log subscriber (level from `RUST_LOG`, default `info`). Logs go to stderr,
/// one JSON object per line, as tracing-subscriber's JSON format writes them with the event's
/// fields flattened and the current span ([`JsonLines`]).
///
/// With `traces`, the spans at `info` and above (the pipeline's) are also exported, whatever
/// `RUST_LOG` says: it filters the log lines only.
pub fn init_logging(traces: Option<&TraceExport>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines)
        .with_writer(LogWriter)
        .with_filter(filter);
    let spans = traces.map(|traces| traces.layer().with_filter(LevelFilter::INFO));
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
}

/// Logging for operator commands (`replay`): the same JSON lines on stderr, at `warn` unless
/// `RUST_LOG` says otherwise, so the command's own output stays readable.
pub fn init_cli_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines)
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .try_init();
}

tokio::task_local! {
    /// The log lines of the messages a partition task is handling, not yet written.
    static LOG_BATCH: RefCell<Vec<u8>>;
}

/// A batch above this size is written at once.
const LOG_BATCH_LIMIT: usize = 64 * 1024;

/// Runs `future` (a partition task) with its log lines batched: they are written to stderr in
/// one write by [`flush_log_batch`] (after each handling attempt, and before the message's
/// offset is stored, so every line of a handled message is out before its offset can be
/// committed), or as soon as the batch passes 64 KiB. A message with seven changelogs logs
/// seven lines: one `write` instead of seven. Lines logged outside such a task go straight out.
pub async fn with_log_batch<F: Future>(future: F) -> F::Output {
    LOG_BATCH
        .scope(RefCell::new(Vec::with_capacity(4096)), future)
        .await
}

/// Writes the current task's batched log lines, if any, to stderr.
pub fn flush_log_batch() {
    let _ = LOG_BATCH.try_with(|batch| {
        if let Ok(mut batch) = batch.try_borrow_mut()
            && !batch.is_empty()
        {
            let _ = std::io::stderr().lock().write_all(&batch);
            batch.clear();
        }
    });
}

/// The log writer: appends to the current task's batch (see [`with_log_batch`]), else writes
/// to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let batched = LOG_BATCH.try_with(|batch| match batch.try_borrow_mut() {
            Ok(mut batch) => {
                batch.extend_from_slice(bytes);
                if batch.len() > LOG_BATCH_LIMIT {
                    let _ = std::io::stderr().lock().write_all(&batch);
                    batch.clear();
                }
                true
            }
            Err(_) => false,
        });
        if batched == Ok(true) {
            Ok(bytes.len())
        } else {
            std::io::stderr().write(bytes)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// tracing-subscriber's JSON event format (`.json().flatten_event(true)
/// .with_current_span(true).with_span_list(false)`), line for line, without its per-event costs:
/// it serializes through `serde_json::Serializer` over an `io::Write` adaptor, and parses the
/// current span's stored JSON fields back into a `serde_json::Value` for every line. This writes
/// the same object (`timestamp`, `level`, the event's fields in order, `target`, then `span`
/// with the span's fields sorted by name, as that parse sorts them, and its `name`) into one
/// buffer with `serde_json::to_writer` for each value.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut line = JsonLine::with_capacity(512);
        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.key("timestamp");
        line.value(&timestamp);
        line.key("level");
        line.value(meta.level().as_str());
        event.record(&mut line);
        line.key("target");
        line.value(meta.target());
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            let rendered = {
                let extensions = span.extensions();
                match (
                    extensions.get::<FormattedFields<N>>(),
                    extensions.get::<RenderedSpan>(),
                ) {
                    (Some(fields), Some(rendered)) if rendered.source == fields.as_str() => {
                        line.key("span");
                        line.buf.extend_from_slice(&rendered.json);
                        None
                    }
                    (Some(fields), _) => {
                        let mut json = JsonLine { buf: Vec::new() };
                        json.span(fields.as_str(), span.metadata().name());
                        line.key("span");
                        line.buf.extend_from_slice(&json.buf);
                        Some(RenderedSpan {
                            source: fields.fields.clone(),
                            json: json.buf,
                        })
                    }
                    (None, _) => None,
                }
            };
            if let Some(rendered) = rendered {
                span.extensions_mut().replace(rendered);
            }
        }
        line.buf.extend_from_slice(b"}\n");
        writer.write_str(std::str::from_utf8(&line.buf).map_err(|_| std::fmt::Error)?)
    }
}

/// One JSON object being written.
struct JsonLine {
    buf: Vec<u8>,
}

impl JsonLine {
    fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        Self { buf }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.value(key);
        self.buf.push(b':');
    }

    fn value<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        // Writing to a Vec fails only if `value` cannot be serialized, which no value here does.
        let _ = serde_json::to_writer(&mut self.buf, value);
    }

    /// The span object as tracing-subscriber writes it: the span's stored fields (a JSON
    /// object, as `JsonFields` writes them) parsed into a map, so sorted by name, then `name`.
    fn span(&mut self, fields: &str, name: &str) {
        self.buf.push(b'{');
        match serde_json::from_str::<serde_json::Value>(fields) {
            Ok(serde_json::Value::Object(fields)) => {
                for (key, value) in &fields {
                    self.value(key);
                    self.buf.push(b':');
                    self.value(value);
                    self.buf.push(b',');
                }
            }
            Ok(value) => {
                self.value("field");
                self.buf.push(b':');
                self.value(&value);
                self.buf.push(b',');
                self.value("field_error");
                self.buf.push(b':');
                self.value(&format!("field was no a valid object: {value}"));
                self.buf.push(b',');
            }
            Err(e) => {
                self.value("field_error");
                self.buf.push(b':');
                self.value(&e.to_string());
                self.buf.push(b',');
            }
        }
        self.value("name");
        self.buf.push(b':');
        self.value(name);
        self.buf.push(b'}');
    }
}

/// A span's `span` object, rendered once from its stored fields (`source`) and kept in the
/// span's extensions for every later line in it, until its fields change.
struct RenderedSpan {
    source: String,
    json: Vec<u8>,
}

/// The event's fields, as `tracing_serde::SerdeMapVisitor` records them.
impl Visit for JsonLine {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field.name());
        self.value(&format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        self.value(value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.value(&value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        self.value(&value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        self.value(&value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        self.value(&value);
    }
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
        let sink = crate::statsd::sink(&statsd.host, statsd.port)
            .map_err(|e| MetricsError::Statsd(e.to_string()))?;
        let recorder =
            metrics_exporter_statsd::StatsdBuilder::from(statsd.host.as_str(), statsd.port)
                .with_sink(sink)
                .histogram_is_distribution()
                .build(None)
                .map_err(|e| MetricsError::Statsd(e.to_string()))?;
        fanout = fanout.add_recorder(recorder);
    }
    metrics::set_global_recorder(fanout.build()).map_err(|_| MetricsError::AlreadyInstalled)?;
    Ok(Arc::new(move || handle.render()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn events() {
        tracing::info!("no span, no field");
        let span = tracing::info_span!(
            "handler_jira",
            flavor = "jira",
            topic = "t\"q",
            partition = 3,
            offset = -1i64
        );
        let _guard = span.enter();
        tracing::info!(
            org_id = 123456u64,
            changelog_type = %"update_status",
            author = "",
            is_from_datadog = false,
            latency_ms = 12.0f64,
            ratio = 0.125f64,
            nan = f64::NAN,
            negative = -5i64,
            debug = ?vec!["a\nb", "ü"],
            big = 1u128 << 100,
            "changelog {} filtered \"{}\"",
            "x",
            "\u{7}"
        );
        let inner = tracing::debug_span!("decode_event");
        inner.in_scope(|| tracing::warn!(target: "message_outcome", error = %"bad \t input", "message handled"));
        let recorded = tracing::info_span!("recorded", a = 1u64, later = tracing::field::Empty);
        recorded.in_scope(|| tracing::info!("before record"));
        recorded.record("later", "now");
        recorded.in_scope(|| tracing::info!("after record"));
        let empty = tracing::info_span!("no_fields");
        empty.in_scope(|| tracing::error!(x = 1u64, "in a span without fields"));
    }

    fn capture(ours: bool) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let make = move || writer.clone();
        if ours {
            let subscriber = tracing_subscriber::fmt()
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines)
                .with_max_level(tracing::Level::TRACE)
                .with_writer(make)
                .finish();
            tracing::subscriber::with_default(subscriber, events);
        } else {
            let subscriber = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_max_level(tracing::Level::TRACE)
                .with_writer(make)
                .finish();
            tracing::subscriber::with_default(subscriber, events);
        }
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn a_partition_task_batches_its_lines() {
        with_log_batch(async {
            let mut writer = LogWriter.make_writer();
            writer.write_all(b"one\n").unwrap();
            writer.write_all(b"two\n").unwrap();
            let held = LOG_BATCH.with(|batch| std::mem::take(&mut *batch.borrow_mut()));
            assert_eq!(held, b"one\ntwo\n");
        })
        .await;
        // Outside a partition task there is no batch: nothing to flush, nothing panics.
        flush_log_batch();
        assert!(LOG_BATCH.try_with(|_| ()).is_err());
    }

    /// Every line but its timestamp.
    fn without_timestamps(text: &str) -> Vec<String> {
        text.lines()
            .map(|line| {
                let rest = line.split_once("\",\"level\"").unwrap().1;
                assert!(line.starts_with("{\"timestamp\":\""), "{line}");
                rest.to_owned()
            })
            .collect()
    }

    #[test]
    fn json_lines_are_tracing_subscribers_json_lines() {
        let ours = capture(true);
        let theirs = capture(false);
        assert_eq!(ours.lines().count(), 6, "{ours}");
        assert_eq!(without_timestamps(&ours), without_timestamps(&theirs));
        for line in ours.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let timestamp = value["timestamp"].as_str().unwrap();
            assert!(
                time::OffsetDateTime::parse(
                    timestamp,
                    &time::format_description::well_known::Rfc3339
                )
                .is_ok(),
                "{timestamp}"
            );
        }
    }
}
