//! Traces end to end: the real `jira-reader` with `[tracing]` on exports its spans over OTLP/gRPC
//! to an in-process collector, flushes them when it stops, and sends each Case API call the W3C
//! trace context of the span making it.
//!
//! The Case API here is the sandbox's service assembled behind a layer that records each call's
//! path and `traceparent`; the collector is a tonic `TraceService` keeping every export.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use case_api::pb::case::v1::case_service_server::CaseServiceServer;
use case_api::pb::case::v1::project_settings_service_server::ProjectSettingsServiceServer;
use case_api::pb::case::v1::sync_metadata_service_server::SyncMetadataServiceServer;
use case_api::pb::case::v1::timeline_service_server::TimelineServiceServer;
use case_api::pb::case::v1::user_service_server::UserServiceServer;
use case_api_sandbox::{DEMO_SEED_JSON, DbLocation, Faults, Sandbox, Seed, SharedStore};
use common::env::{ReaderConfig, work_dir};
use common::{GROUP, TOPIC, comment_created, issue_updated, to_do_to_in_progress};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use reader_runtime::testkit::{
    OtlpCollector, ReaderProcess, Span, SpanTree, TestBroker, attribute, free_port, hex, produce,
    producer, wait_caught_up,
};
use serde_json::json;
use tokio::net::TcpListener;
use tonic::codegen::http;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

/// The Case API calls seen: (path, `traceparent`).
type Calls = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A service recording each request's path and `traceparent` before passing it on.
#[derive(Clone)]
struct RecordTraceparent<S> {
    inner: S,
    calls: Calls,
}

impl<S, B> tower::Service<http::Request<B>> for RecordTraceparent<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let traceparent = request
            .headers()
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_owned());
        self.calls
            .lock()
            .unwrap()
            .push((request.uri().path().to_owned(), traceparent));
        self.inner.call(request)
    }
}

/// The sandbox's Case API (demo seed, in memory, with `faults`) behind [`RecordTraceparent`];
/// returns its endpoint and the calls it records.
async fn case_api(faults: Arc<Faults>) -> (String, Calls) {
    let store = SharedStore::open(DbLocation::InMemory).await.unwrap();
    let seed = Seed::from_json(DEMO_SEED_JSON).unwrap();
    store.run(move |s| s.load_seed(&seed)).await.unwrap();
    let sandbox = Sandbox::new(store, faults);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let calls = Calls::default();
    let record = {
        let calls = calls.clone();
        tower::layer::layer_fn(move |inner| RecordTraceparent {
            inner,
            calls: calls.clone(),
        })
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .layer(record)
        .add_service(health)
        .add_service(CaseServiceServer::new(sandbox.clone()))
        .add_service(TimelineServiceServer::new(sandbox.clone()))
        .add_service(ProjectSettingsServiceServer::new(sandbox.clone()))
        .add_service(SyncMetadataServiceServer::new(sandbox.clone()))
        .add_service(UserServiceServer::new(sandbox));
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
    (format!("http://{addr}"), calls)
}

/// Starts `jira-reader` on `kafka` and the Case API at `case_api`, exporting traces to `otlp`,
/// with extra environment variables; config and log in `dir`.
fn start_reader(
    kafka: &TestBroker,
    case_api: &str,
    otlp: &str,
    dir: &Path,
    env: &[(&str, &str)],
) -> ReaderProcess {
    ReaderConfig::new(dir, &kafka.bootstrap(), case_api)
        // No cache warming: the first try finds the caches cold, and warming's own trace stays
        // out.
        .section("[pipeline]\nwarm_max_orgs = 0")
        .section(format!(
            "[tracing]\notlp_endpoint = \"{otlp}\"\nsample_ratio = 1.0"
        ))
        .spawn_with_env("reader", env)
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_out_over_otlp_and_the_case_api_gets_their_trace_context() {
    let started = Instant::now();
    let (collector, collector_addr) = OtlpCollector::start().await.unwrap();
    // The first case write fails once (UNAVAILABLE): that try's root carries an error status,
    // and the retry is a trace of its own.
    let faults = Arc::new(Faults::default());
    faults.inject("UpdateCase", tonic::Code::Unavailable, 1, "");
    let (endpoint, calls) = case_api(faults).await;
    let kafka = TestBroker::embedded().unwrap();
    kafka.create_topic(TOPIC, 1).await.unwrap();
    let dir = work_dir("otlp");
    // No scheduled export while the reader runs: every span the collector gets comes from the
    // flush at shutdown.
    let mut reader = start_reader(
        &kafka,
        &endpoint,
        &format!("http://{collector_addr}"),
        &dir,
        &[("OTEL_BSP_SCHEDULE_DELAY", "600000")],
    );
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let ready = started.elapsed();

    let status = to_do_to_in_progress();
    let p = producer(&kafka.bootstrap()).unwrap();
    for value in [
        // Applied: a case write.
        issue_updated("10002", T0, json!([status.clone()])),
        // Applied: a timeline entry.
        comment_created("10002", "20001", T0 + 1, "Rolled back the cache config."),
        // Filtered: no case links issue 77777.
        issue_updated("77777", T0 + 2, json!([status])),
    ] {
        produce(&p, TOPIC, Some(0), "k", &value).await.unwrap();
    }
    wait_caught_up(&kafka.bootstrap(), GROUP, TOPIC, Duration::from_secs(30))
        .await
        .unwrap();
    let handled = started.elapsed();
    assert!(
        collector.spans().is_empty(),
        "nothing is exported before the shutdown flush"
    );
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    let stopped = started.elapsed();

    // The flush ran before the process exited; the deadline only absorbs a slow machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = collector.spans();
        let roots = spans.iter().filter(|s| s.parent_span_id.is_empty()).count();
        if roots >= 4 || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let collected = started.elapsed();
    let log = std::fs::read_to_string(dir.join("reader.log")).unwrap();

    let mut roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    roots.sort_by_key(|s| (attribute(&s.attributes, "offset"), s.start_time_unix_nano));
    let mut rendered = String::new();
    let tree = SpanTree { spans: &spans };
    for root in &roots {
        let _ = writeln!(rendered, "trace {}", hex(&root.trace_id));
        tree.render(root, 1, &mut rendered);
    }
    println!("{rendered}");
    assert_eq!(roots.len(), 4, "{rendered}\n{log}");

    let resource = collector.resource_attributes();
    assert_eq!(resource["service.name"], "case-third-party-reader");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(resource["flavor"], "jira");

    // Every span belongs to one of the three traces, and its parent is a span of that trace.
    let ids: BTreeSet<(Vec<u8>, Vec<u8>)> = spans
        .iter()
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();
    for span in &spans {
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert!(
            span.parent_span_id.is_empty()
                || ids.contains(&(span.trace_id.clone(), span.parent_span_id.clone())),
            "{} has a parent outside its trace\n{rendered}",
            span.name
        );
    }
    let traces: BTreeSet<&[u8]> = roots.iter().map(|r| r.trace_id.as_slice()).collect();
    assert_eq!(traces.len(), 4, "one trace per try of a message");

    // The trees, as the parent ids link them. The first try finds the caches cold (sync metadata
    // under the pre-filter, settings under the filter); the later ones are served from them.
    let shapes: Vec<String> = roots
        .iter()
        .map(|root| {
            let mut shape = String::new();
            tree.shape(root, 0, &mut shape);
            shape
        })
        .collect();
    let failed_status = "\
handler_jira
  decode_event
  prefilter_third_party_changelog
    list_sync_metadata
  filter_third_party_changelog
    get_case
    get_settings
  process_changelog
    update_case
";
    let applied_status = "\
handler_jira
  decode_event
  prefilter_third_party_changelog
  filter_third_party_changelog
    get_case
  process_changelog
    update_case
";
    let applied_comment = "\
handler_jira
  decode_event
  prefilter_third_party_changelog
  filter_third_party_changelog
    get_case
  process_changelog
    create_timeline_cell
";
    let filtered = "\
handler_jira
  decode_event
  prefilter_third_party_changelog
  filter_third_party_changelog
    get_case
";
    assert_eq!(
        shapes,
        [failed_status, applied_status, applied_comment, filtered],
        "{rendered}"
    );
    let status = |root: &Span| {
        root.status
            .as_ref()
            .map(|s| (s.code, s.message.clone()))
            .unwrap_or_default()
    };
    // The failed try: an error status naming the error's kind.
    assert_eq!(
        status(roots[0]),
        (StatusCode::Error as i32, "unavailable".to_owned()),
        "{rendered}"
    );
    for root in &roots[1..] {
        assert_eq!(status(root).0, StatusCode::Unset as i32, "{rendered}");
        assert_eq!(
            attribute(&root.attributes, "flavor").as_deref(),
            Some("jira")
        );
    }
    for root in &roots[1..3] {
        let applied = root
            .events
            .iter()
            .any(|e| attribute(&e.attributes, "decision").as_deref() == Some("applied"));
        assert!(applied, "the decision is an event of the root\n{rendered}");
    }
    // The filter reason is an attribute of the filtered root's decision event.
    let reason = roots[3]
        .events
        .iter()
        .find_map(|e| attribute(&e.attributes, "reason"));
    assert_eq!(
        reason.as_deref(),
        Some("no_corresponding_case"),
        "{rendered}"
    );

    // Every case.v1 call carried the trace context of the span that made it: the trace of its
    // message, the parent id of an exported span of that trace (the call's own span), sampled.
    // The health checks, made outside any span, carried none.
    let calls = calls.lock().unwrap().clone();
    let mut per_trace: BTreeMap<String, usize> = BTreeMap::new();
    for (path, traceparent) in &calls {
        if path.starts_with("/grpc.health.v1.Health/") {
            assert_eq!(traceparent, &None, "{path}");
            continue;
        }
        let traceparent = traceparent
            .as_deref()
            .unwrap_or_else(|| panic!("{path} carried no traceparent"));
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!((parts[0], parts[3]), ("00", "01"), "{traceparent}");
        let caller = spans
            .iter()
            .find(|s| hex(&s.trace_id) == parts[1] && hex(&s.span_id) == parts[2])
            .unwrap_or_else(|| panic!("{path}: {traceparent} names no exported span"));
        assert!(
            traces.contains(caller.trace_id.as_slice()),
            "{path}: the trace of a message"
        );
        let method = path.rsplit('/').next().unwrap();
        let span_of_method = match method {
            "ListSyncMetadata" => "list_sync_metadata",
            "GetCase" | "FindCaseByExternalReference" => "get_case",
            "GetProjectSettings" => "get_settings",
            "UpdateCase" => "update_case",
            "CreateComment" => "create_timeline_cell",
            other => panic!("unexpected call {other}"),
        };
        assert_eq!(caller.name, span_of_method, "{path}: {traceparent}");
        println!("{path} traceparent {traceparent} (span {})", caller.name);
        *per_trace.entry(parts[1].to_owned()).or_default() += 1;
    }
    for root in &roots {
        assert!(
            per_trace.contains_key(&hex(&root.trace_id)),
            "the Case API saw the trace of every message: {per_trace:?}"
        );
    }
    assert!(
        calls
            .iter()
            .any(|(path, _)| path.starts_with("/grpc.health.v1.Health/")),
        "the health checks went to the same server"
    );
    println!(
        "timings: ready {ready:?}, handled {handled:?}, stopped {stopped:?}, spans in {collected:?}"
    );
}

/// A collector that is not there costs spans and an error line, never a message, and holds the
/// shutdown up at most for the export timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_costs_spans_never_messages() {
    let (endpoint, _calls) = case_api(Arc::default()).await;
    let kafka = TestBroker::embedded().unwrap();
    kafka.create_topic(TOPIC, 1).await.unwrap();
    let dir = work_dir("otlp");
    // Bound then released: nothing listens there.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let mut reader = start_reader(
        &kafka,
        &endpoint,
        &nobody,
        &dir,
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    reader.wait_ready(Duration::from_secs(30)).await.unwrap();
    let status = to_do_to_in_progress();
    let p = producer(&kafka.bootstrap()).unwrap();
    produce(
        &p,
        TOPIC,
        Some(0),
        "k",
        &issue_updated("10002", T0, json!([status])),
    )
    .await
    .unwrap();
    wait_caught_up(&kafka.bootstrap(), GROUP, TOPIC, Duration::from_secs(30))
        .await
        .unwrap();
    let metrics = reader.metrics().await.unwrap();
    assert_eq!(
        reader_runtime::testkit::metric_sum(
            &metrics,
            "dd_case_third_party_reader_changelog_processed",
            &[]
        ),
        1.0
    );
    let stopping = Instant::now();
    assert_eq!(
        reader.terminate(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
    let stopped_in = stopping.elapsed();
    let log = std::fs::read_to_string(dir.join("reader.log")).unwrap();
    println!("stopped in {stopped_in:?}");
    // The drain, then at most the export timeout (5 s) for the flush.
    assert!(
        stopped_in < Duration::from_secs(15),
        "{stopped_in:?}\n{log}"
    );
    let failed = log
        .lines()
        .find(|l| l.contains("BatchSpanProcessor.ExportError"))
        .unwrap_or_else(|| panic!("no export error line\n{log}"));
    assert!(failed.contains("\"level\":\"ERROR\""), "{failed}");
    assert!(log.contains("reader stopped"), "{log}");
}
