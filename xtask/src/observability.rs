//! `cargo xtask observability-check`: the dashboards, monitors, SLO and alerting rules of
//! `deploy/observability/` name only metrics the reader emits, and every query on the
//! per-flavor filtered counters covers every flavor.
//!
//! The names come from the telemetry constants (`thirdparty_core::telemetry`, the runtime's
//! decision-record counters), never from a copy; the flavors from the `Flavor::NAME` of every
//! reader binary under `bins/`. Prometheus names are derived as the reader's exporter derives
//! them (`reader_runtime::telemetry::install_metrics`: metrics-exporter-prometheus with its
//! default naming): a test renders that exporter and holds the derivation to what it prints.
//! Platform metrics (the Kubernetes restart counters) are an explicit allow-list.
//!
//! With `promtool` on `PATH` (Debian's `prometheus` package; the command installs it when
//! missing), `promtool check rules` and `promtool test rules` run on the Prometheus rules and
//! their unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use thirdparty_core::telemetry;

/// The directory of the files, from the workspace root.
const DIR: &str = "deploy/observability";
const DATADOG_DASHBOARD: &str = "datadog/dashboard.json";
const DATADOG_MONITORS: &str = "datadog/monitors.json";
const DATADOG_SLOS: &str = "datadog/slos.json";
const GRAFANA_DASHBOARD: &str = "grafana/dashboard.json";
const PROMETHEUS_RULES: &str = "prometheus/rules.yaml";
const PROMETHEUS_RULES_TEST: &str = "prometheus/rules_test.yaml";

/// Platform metrics the files may name: Kubernetes' container restarts (kube-state-metrics
/// through the Datadog agent, the kubelet check), not the reader's.
const DATADOG_PLATFORM: &[&str] = &[
    "kubernetes_state.container.restarts",
    "kubernetes.containers.restarts",
];
/// The same from kube-state-metrics, for Prometheus.
const PROMETHEUS_PLATFORM: &[&str] = &["kube_pod_container_status_restarts_total"];

/// The quantiles the reader's Prometheus summaries carry (metrics-exporter-prometheus'
/// defaults, which `install_metrics` keeps; the exporter test holds this to the rendering).
const SUMMARY_QUANTILES: &[&str] = &["0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"];

/// Datadog space aggregators; the percentiles apply to distributions only.
const DATADOG_AGGREGATORS: &[&str] = &["avg", "sum", "min", "max", "count"];
const DATADOG_PERCENTILES: &[&str] = &["p50", "p75", "p90", "p95", "p99"];

/// The metrics each dashboard must show (the per-flavor filtered counters besides).
const DASHBOARD_METRICS: &[&str] = &[
    telemetry::CHANGELOG_PROCESSED,
    telemetry::END_TO_END_LATENCY,
    telemetry::DECODING_FAILED,
    telemetry::CHANGELOG_REJECTED,
    telemetry::KAFKA_DECODE_ERROR,
    telemetry::RETRIES,
    telemetry::RETRY_ATTEMPTS,
    telemetry::OUT_OF_ORDER_EVENT,
    telemetry::CONSUMER_LAG,
    telemetry::CONSUMER_LAG_SECONDS,
];

/// What kind of metric the reader emits, which decides its Prometheus rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    /// A `histogram!`: a Datadog distribution, a Prometheus summary.
    Distribution,
}

/// Every metric the reader emits but the per-flavor filtered counters, with its kind.
fn reader_metrics() -> Vec<(&'static str, Kind)> {
    vec![
        (telemetry::END_TO_END_LATENCY, Kind::Distribution),
        (telemetry::CHANGELOG_PROCESSED, Kind::Counter),
        (telemetry::DECODING_FAILED, Kind::Counter),
        (telemetry::RETRIES, Kind::Counter),
        (telemetry::OUT_OF_ORDER_EVENT, Kind::Counter),
        (telemetry::DISCARDED, Kind::Counter),
        (telemetry::CHANGELOG_REJECTED, Kind::Counter),
        (telemetry::KAFKA_DECODE_ERROR, Kind::Counter),
        (telemetry::MESSAGE_SKIPPED, Kind::Counter),
        (telemetry::RETRY_ATTEMPTS, Kind::Counter),
        (telemetry::CONSUMER_LAG, Kind::Gauge),
        (telemetry::CONSUMER_LAG_SECONDS, Kind::Gauge),
        (telemetry::CACHE_WARMED_ORGS, Kind::Gauge),
        (
            reader_runtime::decisions::DECISION_RECORDS_PRODUCED,
            Kind::Counter,
        ),
        (
            reader_runtime::decisions::DECISION_RECORDS_DROPPED,
            Kind::Counter,
        ),
    ]
}

/// A metric name as metrics-exporter-prometheus writes it: every character outside
/// `[a-zA-Z0-9_:]` (a leading digit too) becomes `_`.
fn prometheus_name(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            let valid =
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
            if valid { c } else { '_' }
        })
        .collect()
}

/// The names a metric is exposed under on `/metrics`: counters and gauges under their
/// sanitized name (no `_total`: `install_metrics` does not turn on the exporter's recommended
/// naming), distributions as a summary (the name with `quantile` labels, `_sum`, `_count`).
fn prometheus_exposition(name: &str, kind: Kind) -> Vec<String> {
    let base = prometheus_name(name);
    match kind {
        Kind::Counter | Kind::Gauge => vec![base],
        Kind::Distribution => vec![format!("{base}_sum"), format!("{base}_count"), base],
    }
}

/// The metrics and flavors the files are checked against.
#[derive(Debug)]
struct Catalog {
    flavors: BTreeSet<String>,
    /// Datadog name -> kind.
    datadog: BTreeMap<String, Kind>,
    /// Datadog name of a flavor's filtered counter -> the flavor.
    filtered: BTreeMap<String, String>,
    /// Prometheus name -> (Datadog name, kind).
    prometheus: BTreeMap<String, (String, Kind)>,
}

impl Catalog {
    fn new(flavors: BTreeSet<String>) -> Self {
        let mut datadog: BTreeMap<String, Kind> = reader_metrics()
            .into_iter()
            .map(|(name, kind)| (name.to_owned(), kind))
            .collect();
        let mut filtered = BTreeMap::new();
        for flavor in &flavors {
            let name = telemetry::filtered_metric_name(flavor);
            datadog.insert(name.clone(), Kind::Counter);
            filtered.insert(name, flavor.clone());
        }
        let mut prometheus = BTreeMap::new();
        for (name, kind) in &datadog {
            for exposed in prometheus_exposition(name, *kind) {
                prometheus.insert(exposed, (name.clone(), *kind));
            }
        }
        Self {
            flavors,
            datadog,
            filtered,
            prometheus,
        }
    }

    /// The flavor of a Prometheus name that is a filtered counter.
    fn prometheus_filtered_flavor(&self, name: &str) -> Option<&str> {
        let (datadog, _) = self.prometheus.get(name)?;
        self.filtered.get(datadog).map(String::as_str)
    }
}

/// The flavors: the `Flavor::NAME` of every reader binary (`bins/*/src/main.rs` implementing
/// `Flavor`).
fn flavors(workspace: &Path) -> Result<BTreeSet<String>> {
    let bins = workspace.join("bins");
    let mut flavors = BTreeSet::new();
    for entry in std::fs::read_dir(&bins).with_context(|| format!("listing {}", bins.display()))? {
        let main = entry?.path().join("src/main.rs");
        let Ok(source) = std::fs::read_to_string(&main) else {
            continue;
        };
        let Some((_, flavor_impl)) = source.split_once("Flavor for ") else {
            continue;
        };
        let name = flavor_impl
            .split_once("const NAME: &'static str = \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name)
            .with_context(|| format!("{} implements Flavor without a NAME", main.display()))?;
        ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}: flavor name `{name}` is not [a-z0-9_]+",
            main.display()
        );
        flavors.insert(name.to_owned());
    }
    ensure!(
        !flavors.is_empty(),
        "no reader binary under {}",
        bins.display()
    );
    Ok(flavors)
}

// ---- Datadog queries --------------------------------------------------------------------

/// A metric named in a Datadog query: `aggregator:metric{scope}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DatadogRef {
    aggregator: String,
    metric: String,
    scope: String,
}

/// Every `aggregator:metric{scope}` of a Datadog metric query (monitor queries included:
/// `sum(last_15m):...`, arithmetic, functions, `by {...}`, `.as_count()`).
fn datadog_metrics(query: &str) -> Result<Vec<DatadogRef>> {
    let bytes = query.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    let mut refs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let close = query[i..]
            .find('}')
            .map(|at| i + at)
            .with_context(|| format!("unclosed `{{` in `{query}`"))?;
        let mut start = i;
        while start > 0 && is_name(bytes[start - 1]) {
            start -= 1;
        }
        if start < i {
            let metric = &query[start..i];
            ensure!(
                start > 0 && bytes[start - 1] == b':',
                "`{metric}` has no space aggregator (`sum:{metric}{{...}}`) in `{query}`"
            );
            let end = start - 1;
            let mut from = end;
            while from > 0 && is_name(bytes[from - 1]) {
                from -= 1;
            }
            refs.push(DatadogRef {
                aggregator: query[from..end].to_owned(),
                metric: metric.to_owned(),
                scope: query[i + 1..close].to_owned(),
            });
        }
        i = close + 1;
    }
    Ok(refs)
}

/// Every query string of a JSON document: the values of `q`, `query`, `numerator` and
/// `denominator` keys, at any depth.
fn json_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(text)
                        if matches!(key.as_str(), "q" | "query" | "numerator" | "denominator") =>
                    {
                        out.push(text.clone());
                    }
                    _ => json_queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| json_queries(item, out)),
        _ => {}
    }
}

/// Checks the metrics of Datadog queries; returns their refs.
fn check_datadog_queries(
    catalog: &Catalog,
    queries: &[String],
    context: &str,
) -> Result<Vec<DatadogRef>> {
    let mut all = Vec::new();
    for query in queries {
        let refs = datadog_metrics(query)?;
        ensure!(!refs.is_empty(), "{context}: no metric in `{query}`");
        for r in &refs {
            let percentile = DATADOG_PERCENTILES.contains(&r.aggregator.as_str());
            ensure!(
                percentile || DATADOG_AGGREGATORS.contains(&r.aggregator.as_str()),
                "{context}: unknown aggregator `{}:` in `{query}`",
                r.aggregator
            );
            if DATADOG_PLATFORM.contains(&r.metric.as_str()) {
                continue;
            }
            let kind = catalog.datadog.get(&r.metric).with_context(|| {
                format!(
                    "{context}: `{}` is not a metric the reader emits (nor an allowed platform metric), in `{query}`",
                    r.metric
                )
            })?;
            ensure!(
                !percentile || *kind == Kind::Distribution,
                "{context}: `{}:` on `{}`, which is not a distribution",
                r.aggregator,
                r.metric
            );
        }
        all.extend(refs);
    }
    Ok(all)
}

/// The flavors whose filtered counter `refs` name.
fn datadog_filtered_flavors<'a>(catalog: &'a Catalog, refs: &[DatadogRef]) -> BTreeSet<&'a str> {
    refs.iter()
        .filter_map(|r| catalog.filtered.get(&r.metric).map(String::as_str))
        .collect()
}

/// A widget, monitor or panel that names filtered counters must name every flavor's.
fn check_covers_flavors(catalog: &Catalog, seen: &BTreeSet<&str>, context: &str) -> Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let missing: Vec<&str> = catalog
        .flavors
        .iter()
        .map(String::as_str)
        .filter(|f| !seen.contains(f))
        .collect();
    ensure!(
        missing.is_empty(),
        "{context}: queries the filtered counters of {seen:?} but not of {missing:?} (every flavor's counter is its own metric)"
    );
    Ok(())
}

/// Every reader metric in `required` is among `seen` (Datadog names).
fn check_shows(required: &[&str], seen: &BTreeSet<String>, context: &str) -> Result<()> {
    let missing: Vec<&&str> = required.iter().filter(|m| !seen.contains(**m)).collect();
    ensure!(missing.is_empty(), "{context}: no query on {missing:?}");
    Ok(())
}

/// The leaf widgets of a Datadog dashboard (group widgets opened).
fn datadog_leaf_widgets<'a>(widgets: &'a [Value], out: &mut Vec<&'a Value>) -> Result<()> {
    for widget in widgets {
        let definition = widget
            .get("definition")
            .context("a widget without a definition")?;
        if definition.get("type").and_then(Value::as_str) == Some("group") {
            let inner = definition
                .get("widgets")
                .and_then(Value::as_array)
                .context("a group widget without widgets")?;
            datadog_leaf_widgets(inner, out)?;
        } else {
            out.push(definition);
        }
    }
    Ok(())
}

fn check_datadog_dashboard(catalog: &Catalog, dashboard: &Value) -> Result<usize> {
    ensure!(
        dashboard.get("layout_type").and_then(Value::as_str) == Some("ordered"),
        "layout_type must be \"ordered\""
    );
    let variables = dashboard
        .get("template_variables")
        .and_then(Value::as_array)
        .context("no template_variables")?;
    for wanted in ["env", "flavor", "org_id"] {
        let variable = variables
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(wanted))
            .with_context(|| format!("no `{wanted}` template variable"))?;
        ensure!(
            variable.get("prefix").and_then(Value::as_str) == Some(wanted),
            "template variable `{wanted}` must filter on the `{wanted}` tag"
        );
        if wanted == "flavor" {
            let values: BTreeSet<String> = variable
                .get("available_values")
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            ensure!(
                values.is_empty() || values == catalog.flavors,
                "the flavor variable offers {values:?}, the flavors are {:?}",
                catalog.flavors
            );
        }
    }
    let widgets = dashboard
        .get("widgets")
        .and_then(Value::as_array)
        .context("no widgets")?;
    let mut leaves = Vec::new();
    datadog_leaf_widgets(widgets, &mut leaves)?;
    let mut shown = BTreeSet::new();
    let mut count = 0;
    for widget in leaves {
        let title = widget
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("(untitled)");
        let context = format!("{DATADOG_DASHBOARD}, widget \"{title}\"");
        let mut queries = Vec::new();
        json_queries(widget, &mut queries);
        ensure!(!queries.is_empty(), "{context}: no query");
        let refs = check_datadog_queries(catalog, &queries, &context)?;
        check_covers_flavors(catalog, &datadog_filtered_flavors(catalog, &refs), &context)?;
        count += queries.len();
        shown.extend(refs.into_iter().map(|r| r.metric));
    }
    check_shows(DASHBOARD_METRICS, &shown, DATADOG_DASHBOARD)?;
    check_covers_flavors(
        catalog,
        &shown
            .iter()
            .filter_map(|m| catalog.filtered.get(m).map(String::as_str))
            .collect(),
        DATADOG_DASHBOARD,
    )?;
    Ok(count)
}

/// The threshold of a monitor query: the number after its last comparator.
fn monitor_query_threshold(query: &str) -> Option<f64> {
    let at = query.rfind(['>', '<'])?;
    query[at + 1..].trim_start_matches('=').trim().parse().ok()
}

fn check_datadog_monitors(catalog: &Catalog, monitors: &Value) -> Result<usize> {
    let monitors = monitors
        .as_array()
        .context("monitors.json must be an array of monitor definitions")?;
    let mut filtered_flavors = BTreeSet::new();
    let mut named = BTreeSet::new();
    for monitor in monitors {
        let name = monitor
            .get("name")
            .and_then(Value::as_str)
            .context("a monitor without a name")?;
        let context = format!("{DATADOG_MONITORS}, \"{name}\"");
        let kind = monitor.get("type").and_then(Value::as_str);
        ensure!(
            matches!(kind, Some("query alert" | "metric alert")),
            "{context}: type must be \"query alert\" or \"metric alert\", not {kind:?}"
        );
        ensure!(
            monitor
                .get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.trim().is_empty()),
            "{context}: no message"
        );
        ensure!(
            monitor.get("tags").and_then(Value::as_array).is_some(),
            "{context}: no tags"
        );
        let query = monitor
            .get("query")
            .and_then(Value::as_str)
            .with_context(|| format!("{context}: no query"))?;
        let critical = monitor
            .pointer("/options/thresholds/critical")
            .and_then(Value::as_f64)
            .with_context(|| format!("{context}: no options.thresholds.critical"))?;
        ensure!(
            monitor_query_threshold(query) == Some(critical),
            "{context}: options.thresholds.critical ({critical}) is not the query's threshold"
        );
        let refs = check_datadog_queries(catalog, &[query.to_owned()], &context)?;
        let flavors = datadog_filtered_flavors(catalog, &refs);
        // A flavor's monitor scopes its other terms to the same flavor.
        if let Some(flavor) = flavors.iter().next() {
            ensure!(
                flavors.len() == 1,
                "{context}: filtered counters of several flavors in one query"
            );
            for r in &refs {
                for scoped in r
                    .scope
                    .split(',')
                    .filter_map(|t| t.trim().strip_prefix("flavor:"))
                {
                    ensure!(
                        scoped == *flavor,
                        "{context}: the {flavor} filtered counter beside `{}{{flavor:{scoped}}}`",
                        r.metric
                    );
                }
            }
        }
        filtered_flavors.extend(flavors);
        named.extend(refs.into_iter().map(|r| r.metric));
    }
    check_covers_flavors(catalog, &filtered_flavors, DATADOG_MONITORS)?;
    ensure!(
        !filtered_flavors.is_empty(),
        "{DATADOG_MONITORS}: no high-filtering-rate monitor"
    );
    check_shows(
        &[
            telemetry::CHANGELOG_PROCESSED,
            telemetry::CONSUMER_LAG,
            telemetry::DECODING_FAILED,
            telemetry::RETRIES,
        ],
        &named,
        DATADOG_MONITORS,
    )?;
    ensure!(
        DATADOG_PLATFORM.iter().any(|m| named.contains(*m)),
        "{DATADOG_MONITORS}: no pod restart monitor"
    );
    Ok(monitors.len())
}

fn check_datadog_slos(catalog: &Catalog, slos: &Value) -> Result<usize> {
    let slos = slos
        .as_array()
        .context("slos.json must be an array of SLO definitions")?;
    for slo in slos {
        let name = slo
            .get("name")
            .and_then(Value::as_str)
            .context("an SLO without a name")?;
        let context = format!("{DATADOG_SLOS}, \"{name}\"");
        let mut queries = Vec::new();
        json_queries(slo, &mut queries);
        ensure!(!queries.is_empty(), "{context}: no query");
        let refs = check_datadog_queries(catalog, &queries, &context)?;
        ensure!(
            refs.iter()
                .any(|r| r.metric == telemetry::END_TO_END_LATENCY && r.aggregator == "p99"),
            "{context}: not on the end-to-end latency's p99"
        );
    }
    Ok(slos.len())
}

// ---- PromQL ------------------------------------------------------------------------------

/// A metric named in a PromQL expression, with its label matchers (without braces).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PromRef {
    name: String,
    matchers: String,
}

/// Words of PromQL that are not metric names when no `(` follows them.
const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
];
/// Words followed by a label list.
const PROMQL_LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The end (exclusive) of the quoted string starting at `start`.
fn skip_quoted(bytes: &[u8], start: usize) -> Result<usize> {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    bail!("unclosed string")
}

/// The end (exclusive) of the bracketed text opening at `start` (quotes respected).
fn skip_bracket(bytes: &[u8], start: usize, close: u8) -> Result<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = skip_quoted(bytes, i)?,
            b if b == close => return Ok(i + 1),
            _ => i += 1,
        }
    }
    bail!("unclosed `{}`", bytes[start] as char)
}

/// Every metric name of a PromQL expression (recording rule names included), skipping
/// functions, aggregations, keywords, label lists, label matchers, ranges, strings and
/// numbers. A selector without a metric name (`{__name__=~...}`) is refused: its metrics
/// cannot be checked.
fn promql_metrics(expr: &str) -> Result<Vec<PromRef>> {
    let bytes = expr.as_bytes();
    let mut refs = Vec::new();
    let mut i = 0;
    let next_non_space = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_quoted(bytes, i).with_context(|| format!("in `{expr}`"))?;
        } else if c == b'#' {
            i = expr[i..].find('\n').map_or(bytes.len(), |at| i + at);
        } else if c == b'[' {
            i = skip_bracket(bytes, i, b']').with_context(|| format!("in `{expr}`"))?;
        } else if c == b'{' {
            bail!("a selector without a metric name in `{expr}`");
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            // A number or a duration (`14.4`, `1e3`, `15m`).
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            let word = &expr[start..i];
            let next = next_non_space(i);
            let follows = bytes.get(next).copied();
            if PROMQL_LABEL_LISTS.contains(&word) {
                if follows == Some(b'(') {
                    i = skip_bracket(bytes, next, b')').with_context(|| format!("in `{expr}`"))?;
                }
            } else if follows == Some(b'(') || PROMQL_KEYWORDS.contains(&word) {
                // A function or an aggregation: its arguments are read as they come.
            } else if follows == Some(b'{') {
                let end =
                    skip_bracket(bytes, next, b'}').with_context(|| format!("in `{expr}`"))?;
                refs.push(PromRef {
                    name: word.to_owned(),
                    matchers: expr[next + 1..end - 1].to_owned(),
                });
                i = end;
            } else {
                refs.push(PromRef {
                    name: word.to_owned(),
                    matchers: String::new(),
                });
            }
        } else {
            i += 1;
        }
    }
    Ok(refs)
}

/// The value of an equality matcher on `label` (`label="value"`), if any.
fn matcher_value<'a>(matchers: &'a str, label: &str) -> Option<&'a str> {
    let at = matchers.find(&format!("{label}=\""))?;
    let rest = &matchers[at + label.len() + 2..];
    rest.split_once('"').map(|(value, _)| value)
}

/// Checks the metrics of PromQL expressions: recording rules (a `:` in the name) must be
/// among `records`, the rest reader or platform metrics; a summary is read through one of its
/// quantiles. Returns the reader metrics named (Prometheus names).
fn check_promql(
    catalog: &Catalog,
    records: &BTreeSet<String>,
    exprs: &[String],
    context: &str,
) -> Result<Vec<PromRef>> {
    let mut named = Vec::new();
    for expr in exprs {
        let refs = promql_metrics(expr).with_context(|| context.to_owned())?;
        ensure!(!refs.is_empty(), "{context}: no metric in `{expr}`");
        for r in refs {
            if r.name.contains(':') {
                ensure!(
                    records.contains(&r.name),
                    "{context}: `{}` is not a recording rule of {PROMETHEUS_RULES}",
                    r.name
                );
                continue;
            }
            if PROMETHEUS_PLATFORM.contains(&r.name.as_str()) {
                continue;
            }
            let (datadog, kind) = catalog.prometheus.get(&r.name).with_context(|| {
                format!(
                    "{context}: `{}` is not a name the reader's /metrics prints (nor an allowed platform metric), in `{expr}`",
                    r.name
                )
            })?;
            if *kind == Kind::Distribution && r.name == prometheus_name(datadog) {
                let quantile = matcher_value(&r.matchers, "quantile").with_context(|| {
                    format!("{context}: `{}` without a quantile=\"...\" matcher", r.name)
                })?;
                ensure!(
                    SUMMARY_QUANTILES.contains(&quantile),
                    "{context}: quantile \"{quantile}\" of `{}` is not one the reader exports ({SUMMARY_QUANTILES:?})",
                    r.name
                );
            }
            named.push(r);
        }
    }
    Ok(named)
}

fn prometheus_filtered_flavors<'a>(catalog: &'a Catalog, refs: &[PromRef]) -> BTreeSet<&'a str> {
    refs.iter()
        .filter_map(|r| catalog.prometheus_filtered_flavor(&r.name))
        .collect()
}

/// Datadog names of Prometheus refs.
fn datadog_names(catalog: &Catalog, refs: &[PromRef]) -> BTreeSet<String> {
    refs.iter()
        .filter_map(|r| catalog.prometheus.get(&r.name).map(|(d, _)| d.clone()))
        .collect()
}

// ---- YAML (the keys the rules and their tests need) ------------------------------------------

/// The scalar values of `key` at any depth of a YAML document: plain, quoted, or block
/// (`|`, `>`, their chomping variants; lines joined with `\n`). Block scalar contents are never
/// read as keys. Only what the rule files use: `promtool` checks the YAML itself.
fn yaml_values(text: &str, key: &str) -> Result<Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut values = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let mut indent = line.len() - content.len();
        let mut entry = content;
        while let Some(rest) = entry.strip_prefix("- ") {
            indent += 2;
            entry = rest.trim_start();
        }
        let Some((name, value)) = entry.split_once(':') else {
            continue;
        };
        if name.contains(' ') || name.starts_with(['"', '\'']) {
            continue;
        }
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let mut block = Vec::new();
            while i < lines.len() {
                let next = lines[i];
                let next_content = next.trim_start();
                if !next_content.is_empty() && next.len() - next_content.len() <= indent {
                    break;
                }
                block.push(next_content);
                i += 1;
            }
            if name == key {
                let joined = block.join(if value.starts_with('|') { "\n" } else { " " });
                values.push(joined.trim().to_owned());
            }
        } else if name == key {
            values.push(yaml_scalar(value).with_context(|| format!("`{key}: {value}`"))?);
        }
    }
    Ok(values)
}

/// A one-line YAML scalar: quotes removed (`''` in single quotes, `\"` and `\\` in double),
/// a trailing comment dropped from a plain one.
fn yaml_scalar(value: &str) -> Result<String> {
    if let Some(inner) = value.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .context("unclosed single-quoted scalar")?;
        return Ok(inner.replace("''", "'"));
    }
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .context("unclosed double-quoted scalar")?;
        return Ok(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    Ok(value
        .split_once(" #")
        .map_or(value, |(plain, _)| plain)
        .trim()
        .to_owned())
}

/// The recording rule and alert names of the rules file, and every expression of it.
struct Rules {
    records: BTreeSet<String>,
    alerts: BTreeSet<String>,
    exprs: Vec<String>,
}

fn read_rules(text: &str) -> Result<Rules> {
    let records: Vec<String> = yaml_values(text, "record")?;
    let alerts: Vec<String> = yaml_values(text, "alert")?;
    let exprs = yaml_values(text, "expr")?;
    ensure!(
        exprs.len() == records.len() + alerts.len(),
        "{PROMETHEUS_RULES}: {} expressions for {} recording rules and {} alerts",
        exprs.len(),
        records.len(),
        alerts.len()
    );
    let alert_set: BTreeSet<String> = alerts.iter().cloned().collect();
    ensure!(
        alert_set.len() == alerts.len(),
        "{PROMETHEUS_RULES}: an alert name is used twice"
    );
    Ok(Rules {
        records: records.into_iter().collect(),
        alerts: alert_set,
        exprs,
    })
}

fn check_prometheus_rules(catalog: &Catalog, rules_text: &str, test_text: &str) -> Result<usize> {
    let rules = read_rules(rules_text)?;
    let named = check_promql(catalog, &rules.records, &rules.exprs, PROMETHEUS_RULES)?;
    check_covers_flavors(
        catalog,
        &prometheus_filtered_flavors(catalog, &named),
        PROMETHEUS_RULES,
    )?;
    let shown = datadog_names(catalog, &named);
    check_shows(
        &[
            telemetry::CHANGELOG_PROCESSED,
            telemetry::CONSUMER_LAG,
            telemetry::DECODING_FAILED,
            telemetry::RETRIES,
            telemetry::END_TO_END_LATENCY,
        ],
        &shown,
        PROMETHEUS_RULES,
    )?;
    ensure!(
        rules
            .exprs
            .iter()
            .any(|e| PROMETHEUS_PLATFORM.iter().any(|m| e.contains(m))),
        "{PROMETHEUS_RULES}: no pod restart alert"
    );

    // The unit tests: real names in the input series and expressions, every alert tested.
    ensure!(
        test_text.contains("\nrule_files:\n  - rules.yaml\n"),
        "{PROMETHEUS_RULES_TEST}: rule_files must be [rules.yaml]"
    );
    let series = yaml_values(test_text, "series")?;
    ensure!(
        !series.is_empty(),
        "{PROMETHEUS_RULES_TEST}: no input series"
    );
    check_promql(catalog, &rules.records, &series, PROMETHEUS_RULES_TEST)?;
    let test_exprs = yaml_values(test_text, "expr")?;
    check_promql(catalog, &rules.records, &test_exprs, PROMETHEUS_RULES_TEST)?;
    let tested: BTreeSet<String> = yaml_values(test_text, "alertname")?.into_iter().collect();
    let unknown: Vec<&String> = tested.difference(&rules.alerts).collect();
    ensure!(
        unknown.is_empty(),
        "{PROMETHEUS_RULES_TEST}: tests alerts {unknown:?} that {PROMETHEUS_RULES} does not define"
    );
    let untested: Vec<&String> = rules.alerts.difference(&tested).collect();
    ensure!(
        untested.is_empty(),
        "{PROMETHEUS_RULES_TEST}: no test of {untested:?}"
    );
    Ok(rules.exprs.len())
}

// ---- Grafana -----------------------------------------------------------------------------------

/// The Prometheus datasource every panel and query names: the dashboard's `DS_PROMETHEUS`
/// variable.
const GRAFANA_DATASOURCE: &str = "${DS_PROMETHEUS}";

/// Every non-row panel, rows opened.
fn grafana_panels<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
    for panel in panels {
        if let Some(inner) = panel.get("panels").and_then(Value::as_array) {
            grafana_panels(inner, out);
        }
        if panel.get("type").and_then(Value::as_str) != Some("row") {
            out.push(panel);
        }
    }
}

fn check_grafana_datasource(value: Option<&Value>, context: &str) -> Result<()> {
    let datasource = value.with_context(|| format!("{context}: no datasource"))?;
    ensure!(
        datasource.get("type").and_then(Value::as_str) == Some("prometheus")
            && datasource.get("uid").and_then(Value::as_str) == Some(GRAFANA_DATASOURCE),
        "{context}: the datasource must be {{\"type\": \"prometheus\", \"uid\": \"{GRAFANA_DATASOURCE}\"}}"
    );
    Ok(())
}

fn check_grafana_dashboard(catalog: &Catalog, dashboard: &Value) -> Result<usize> {
    let no_records = BTreeSet::new();
    let variables = dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .context("no templating.list")?;
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .with_context(|| format!("{GRAFANA_DASHBOARD}: no `{name}` variable"))
    };
    let datasource = variable("DS_PROMETHEUS")?;
    ensure!(
        datasource.get("type").and_then(Value::as_str) == Some("datasource")
            && datasource.get("query").and_then(Value::as_str) == Some("prometheus"),
        "{GRAFANA_DASHBOARD}: DS_PROMETHEUS must be a Prometheus datasource variable"
    );
    for name in ["flavor", "org_id"] {
        let v = variable(name)?;
        let context = format!("{GRAFANA_DASHBOARD}, variable `{name}`");
        check_grafana_datasource(v.get("datasource"), &context)?;
        let query = match v.get("query") {
            Some(Value::String(query)) => query.as_str(),
            Some(query) => query
                .get("query")
                .and_then(Value::as_str)
                .with_context(|| format!("{context}: no query"))?,
            None => bail!("{context}: no query"),
        };
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(','))
            .map(|(selector, _)| selector.to_owned())
            .with_context(|| format!("{context}: not label_values(<selector>, <label>)"))?;
        check_promql(catalog, &no_records, &[selector], &context)?;
    }
    let panels = dashboard
        .get("panels")
        .and_then(Value::as_array)
        .context("no panels")?;
    let mut leaves = Vec::new();
    grafana_panels(panels, &mut leaves);
    let mut shown = BTreeSet::new();
    let mut filtered_seen = BTreeSet::new();
    let mut count = 0;
    for panel in leaves {
        let title = panel
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("(untitled)");
        let context = format!("{GRAFANA_DASHBOARD}, panel \"{title}\"");
        check_grafana_datasource(panel.get("datasource"), &context)?;
        let targets = panel
            .get("targets")
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty())
            .with_context(|| format!("{context}: no targets"))?;
        let mut exprs = Vec::new();
        for target in targets {
            check_grafana_datasource(target.get("datasource"), &context)?;
            exprs.push(
                target
                    .get("expr")
                    .and_then(Value::as_str)
                    .with_context(|| format!("{context}: a target without expr"))?
                    .to_owned(),
            );
        }
        let named = check_promql(catalog, &no_records, &exprs, &context)?;
        let flavors = prometheus_filtered_flavors(catalog, &named);
        check_covers_flavors(catalog, &flavors, &context)?;
        filtered_seen.extend(flavors);
        shown.extend(datadog_names(catalog, &named));
        count += exprs.len();
    }
    check_shows(DASHBOARD_METRICS, &shown, GRAFANA_DASHBOARD)?;
    ensure!(
        !filtered_seen.is_empty(),
        "{GRAFANA_DASHBOARD}: no panel on the filtered counters"
    );
    Ok(count)
}

// ---- The check -------------------------------------------------------------------------------

/// What the static check read.
#[derive(Debug)]
struct Summary {
    flavors: BTreeSet<String>,
    datadog_queries: usize,
    monitors: usize,
    slos: usize,
    prometheus_exprs: usize,
    grafana_queries: usize,
}

fn read_json(dir: &Path, file: &str) -> Result<Value> {
    let path = dir.join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn read_text(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The reader's metrics the monitors, the SLO and the alerting rules name, filtered counters and
/// platform metrics aside, must be exactly `telemetry::ALERTED`: the list the DogStatsD
/// end-to-end test (`bins/jira-reader/tests/observability.rs`) proves the reader emits.
fn check_alerted(catalog: &Catalog, dir: &Path) -> Result<()> {
    let mut queries = Vec::new();
    for file in [DATADOG_MONITORS, DATADOG_SLOS] {
        json_queries(&read_json(dir, file)?, &mut queries);
    }
    let mut named = BTreeSet::new();
    for query in &queries {
        named.extend(datadog_metrics(query)?.into_iter().map(|r| r.metric));
    }
    let rules = read_rules(&read_text(dir, PROMETHEUS_RULES)?)?;
    for expr in &rules.exprs {
        named.extend(datadog_names(catalog, &promql_metrics(expr)?));
    }
    named.retain(|m| !m.ends_with(".filtered") && !DATADOG_PLATFORM.contains(&m.as_str()));
    let alerted: BTreeSet<String> = telemetry::ALERTED.iter().map(|m| (*m).to_owned()).collect();
    ensure!(
        named == alerted,
        "the monitors, SLO and rules name {named:?}; telemetry::ALERTED (what the end-to-end \
         test proves is emitted) is {alerted:?}: keep them equal"
    );
    Ok(())
}

/// Every file of `deploy/observability/` parsed and checked against the reader's metrics.
fn static_check(workspace: &Path) -> Result<Summary> {
    let catalog = Catalog::new(flavors(workspace)?);
    let dir = workspace.join(DIR);
    let datadog_queries = check_datadog_dashboard(&catalog, &read_json(&dir, DATADOG_DASHBOARD)?)
        .context(DATADOG_DASHBOARD)?;
    let monitors = check_datadog_monitors(&catalog, &read_json(&dir, DATADOG_MONITORS)?)?;
    let slos = check_datadog_slos(&catalog, &read_json(&dir, DATADOG_SLOS)?)?;
    let prometheus_exprs = check_prometheus_rules(
        &catalog,
        &read_text(&dir, PROMETHEUS_RULES)?,
        &read_text(&dir, PROMETHEUS_RULES_TEST)?,
    )?;
    let grafana_queries = check_grafana_dashboard(&catalog, &read_json(&dir, GRAFANA_DASHBOARD)?)
        .context(GRAFANA_DASHBOARD)?;
    check_alerted(&catalog, &dir)?;
    Ok(Summary {
        flavors: catalog.flavors,
        datadog_queries,
        monitors,
        slos,
        prometheus_exprs,
        grafana_queries,
    })
}

/// `promtool` on `PATH`.
fn promtool() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
}

/// `promtool check rules` and `promtool test rules`; fails on either's failure.
fn run_promtool(workspace: &Path, promtool: &Path) -> Result<()> {
    let dir = workspace.join(DIR);
    for (command, file) in [("check", PROMETHEUS_RULES), ("test", PROMETHEUS_RULES_TEST)] {
        let output = Command::new(promtool)
            .args([command, "rules"])
            .arg(dir.join(file))
            .output()
            .with_context(|| format!("running promtool {command} rules"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            bail!(
                "`promtool {command} rules {file}` failed ({}):\n{text}",
                output.status
            );
        }
        println!(
            "promtool {command} rules {file}: {}",
            text.trim().replace('\n', " | ")
        );
    }
    Ok(())
}

/// `cargo xtask observability-check`.
pub fn check(workspace: &Path) -> Result<()> {
    let summary = static_check(workspace)?;
    println!(
        "observability: flavors {:?}; {} Datadog dashboard queries, {} monitors, {} SLO(s), {} Prometheus rule expressions, {} Grafana queries: every metric is one the reader emits (or an allowed platform metric), every filtered-counter query covers every flavor",
        summary.flavors,
        summary.datadog_queries,
        summary.monitors,
        summary.slos,
        summary.prometheus_exprs,
        summary.grafana_queries
    );
    let promtool = match promtool() {
        Some(path) => path,
        None => {
            eprintln!("installing prometheus (Debian package) for promtool");
            crate::apt_install(&["prometheus"])?;
            promtool().context("prometheus installed but promtool is not on PATH")?
        }
    };
    run_promtool(workspace, &promtool)
}

#[cfg(test)]
mod tests {
    use super::*;

    use reader_runtime::config::StatsdConfig;
    use thirdparty_core::telemetry::Telemetry;
    use thirdparty_core::{
        Changelog, ChangelogType, DecisionKind, DecisionRecord, MessagePosition,
    };

    fn workspace() -> &'static Path {
        crate::workspace_root().expect("xtask lives in the workspace")
    }

    fn catalog() -> Catalog {
        Catalog::new(
            ["jira", "servicenow", "github"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        )
    }

    #[test]
    fn the_files_name_only_metrics_the_reader_emits() -> Result<()> {
        let summary = static_check(workspace())?;
        assert!(summary.flavors.contains("jira"), "{summary:?}");
        assert!(
            summary.datadog_queries > 10 && summary.grafana_queries > 10,
            "{summary:?}"
        );
        assert!(summary.monitors >= 4 && summary.slos >= 1, "{summary:?}");
        Ok(())
    }

    #[test]
    fn the_flavors_are_the_reader_binaries() -> Result<()> {
        let flavors = flavors(workspace())?;
        for flavor in ["jira", "servicenow", "github"] {
            assert!(flavors.contains(flavor), "{flavors:?}");
        }
        Ok(())
    }

    /// The derivation of Prometheus names, held to what the reader's exporter prints: the
    /// recorder `install_metrics` installs, fed through the pipeline's telemetry.
    #[test]
    fn prometheus_names_are_what_the_reader_exporter_prints() -> Result<()> {
        let render = reader_runtime::telemetry::install_metrics(&StatsdConfig::default())?;
        let flavors = flavors(workspace())?;
        let position = MessagePosition {
            topic: "t".into(),
            partition: 0,
            offset: 1,
        };
        for flavor in &flavors {
            // The filtered counter (reason skipped_by_operator) and message_skipped.
            Telemetry::new(flavor).message_skipped(&position);
        }
        let changelog = Changelog::new(
            "jira",
            42,
            ChangelogType::UpdateStatus,
            "10001",
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let record = DecisionRecord::for_changelog(
            &changelog,
            Some(&position),
            Some("case-1"),
            DecisionKind::Applied,
            None,
            None,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        Telemetry::new("jira").processed(&changelog, 1234.0, &record);
        let text = render();
        let types: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        let expect = |name: &str, kind: Kind, wanted: &str| {
            let exposed = prometheus_name(name);
            assert_eq!(
                types.get(exposed.as_str()).copied(),
                Some(wanted),
                "{name} as {exposed} ({kind:?}) in:\n{text}"
            );
        };
        expect(telemetry::CHANGELOG_PROCESSED, Kind::Counter, "counter");
        expect(telemetry::MESSAGE_SKIPPED, Kind::Counter, "counter");
        for flavor in &flavors {
            expect(
                &telemetry::filtered_metric_name(flavor),
                Kind::Counter,
                "counter",
            );
        }
        expect(telemetry::END_TO_END_LATENCY, Kind::Distribution, "summary");
        // Counters carry no `_total`; the summary its quantiles, `_sum` and `_count`.
        let samples: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let catalog = Catalog::new(flavors);
        for name in &samples {
            assert!(
                catalog.prometheus.contains_key(*name),
                "{name} printed, not derived:\n{text}"
            );
        }
        for exposed in prometheus_exposition(telemetry::END_TO_END_LATENCY, Kind::Distribution) {
            assert!(
                samples.contains(exposed.as_str()),
                "{exposed} not in:\n{text}"
            );
        }
        assert!(!text.contains("_total"), "{text}");
        let latency = prometheus_name(telemetry::END_TO_END_LATENCY);
        let quantiles: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{latency}{{")))
            .filter_map(|l| matcher_value(l, "quantile"))
            .collect();
        assert_eq!(quantiles, SUMMARY_QUANTILES, "{text}");
        Ok(())
    }

    #[test]
    fn promtool_checks_and_tests_the_rules() -> Result<()> {
        let Some(promtool) = promtool() else {
            eprintln!("promtool is not installed: `cargo xtask observability-check` installs it");
            return Ok(());
        };
        run_promtool(workspace(), &promtool)
    }

    #[test]
    fn datadog_queries_name_their_metrics() -> Result<()> {
        let refs = datadog_metrics(
            "sum(last_15m):default_zero(sum:dd.a.b{flavor:jira,$env} by {env}.as_count()) / (p99:c.d{*} by {org_id} + max:e{integration:$flavor.value}) > 0.8",
        )?;
        let names: Vec<(&str, &str)> = refs
            .iter()
            .map(|r| (r.aggregator.as_str(), r.metric.as_str()))
            .collect();
        assert_eq!(names, [("sum", "dd.a.b"), ("p99", "c.d"), ("max", "e")]);
        assert_eq!(refs[0].scope, "flavor:jira,$env");
        assert!(datadog_metrics("dd.a.b{*}").is_err());
        assert_eq!(
            monitor_query_threshold("max(last_5m):a:b{*} >= 5000"),
            Some(5000.0)
        );
        Ok(())
    }

    #[test]
    fn promql_metrics_skip_functions_labels_and_durations() -> Result<()> {
        let refs = promql_metrics(
            r#"sum by (flavor, reason) (rate(a_b{reason=~"x|y", c="}"}[5m] offset 1h)) / on (flavor) group_left (reason) max without (pod) (level:rec:rate5m) > bool 14.4 * 0.01 or vector(0) # c_d
            and count(topk(3, e)) unless label_replace(f, "dst", "$1", "src", "(.*)")"#,
        )?;
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a_b", "level:rec:rate5m", "e", "f"]);
        assert_eq!(refs[0].matchers, r#"reason=~"x|y", c="}""#);
        assert!(promql_metrics(r#"rate({__name__=~"a.*"}[5m])"#).is_err());
        Ok(())
    }

    #[test]
    fn yaml_values_read_plain_quoted_and_block_scalars() -> Result<()> {
        let text = "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(x) # note\n      - alert: A\n        expr: |\n          y > 1\n          and z\n        annotations:\n          description: >-\n            expr: not a key\n      - series: 'm{l=\"v\"}'\n        expr: \"w{l=\\\"v\\\"}\"\n";
        assert_eq!(yaml_values(text, "record")?, ["a:b"]);
        assert_eq!(
            yaml_values(text, "expr")?,
            ["sum(x)", "y > 1\nand z", "w{l=\"v\"}"]
        );
        assert_eq!(yaml_values(text, "series")?, ["m{l=\"v\"}"]);
        Ok(())
    }

    #[test]
    fn the_checks_catch_unknown_metrics_and_missing_flavors() -> Result<()> {
        let catalog = catalog();
        let records = BTreeSet::new();
        let unknown = check_promql(
            &catalog,
            &records,
            &["rate(dd_case_third_party_reader_changelog_processed_total[5m])".into()],
            "t",
        );
        assert!(
            unknown.is_err(),
            "a `_total` name the exporter never prints"
        );
        let no_quantile = check_promql(
            &catalog,
            &records,
            &["case_case_third_party_reader_end_to_end_latency".into()],
            "t",
        );
        assert!(no_quantile.is_err());
        let unrecorded = check_promql(&catalog, &records, &["x:y:rate5m".into()], "t");
        assert!(unrecorded.is_err());
        let platform = check_promql(
            &catalog,
            &records,
            &["increase(kube_pod_container_status_restarts_total[15m])".into()],
            "t",
        );
        assert!(platform.is_ok());

        let widget = |queries: &[&str]| {
            serde_json::json!({
                "layout_type": "ordered",
                "template_variables": [
                    {"name": "env", "prefix": "env"},
                    {"name": "flavor", "prefix": "flavor"},
                    {"name": "org_id", "prefix": "org_id"}
                ],
                "widgets": [{"definition": {"type": "group", "widgets": [{"definition": {
                    "type": "timeseries", "title": "w",
                    "requests": [{"queries": queries.iter().map(|q| serde_json::json!({"query": q})).collect::<Vec<_>>()}]
                }}]}}]
            })
        };
        let two_flavors = widget(&[
            "sum:dd.case_third_party_reader.jira.filtered{*}.as_count()",
            "sum:dd.case_third_party_reader.github.filtered{*}.as_count()",
        ]);
        let err = check_datadog_dashboard(&catalog, &two_flavors)
            .err()
            .context("a widget missing servicenow passed")?;
        assert!(format!("{err:#}").contains("servicenow"), "{err:#}");
        let typo = widget(&["sum:dd.case_third_party_reader.changelog_processd{*}.as_count()"]);
        assert!(check_datadog_dashboard(&catalog, &typo).is_err());
        let percentile_of_a_count =
            widget(&["p99:dd.case_third_party_reader.changelog_processed{*}"]);
        assert!(check_datadog_dashboard(&catalog, &percentile_of_a_count).is_err());
        Ok(())
    }
}
