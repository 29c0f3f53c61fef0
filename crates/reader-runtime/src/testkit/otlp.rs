//! An in-process OTLP/gRPC trace collector for tests and the demo: a tonic `TraceService` on a
//! loopback port keeping every export, and the span trees its spans make.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
pub use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// An OTLP/gRPC collector keeping every exported resource's spans.
#[derive(Debug, Clone, Default)]
pub struct OtlpCollector {
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for OtlpCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.exports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl OtlpCollector {
    /// Serves on a free loopback port (until the runtime ends); returns the collector and its
    /// address (the reader's `otlp_endpoint` is `http://{address}`).
    pub async fn start() -> Result<(Self, SocketAddr)> {
        let collector = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the otlp collector")?;
        let addr = listener.local_addr()?;
        let router = Server::builder().add_service(TraceServiceServer::new(collector.clone()));
        tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
        Ok((collector, addr))
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.exports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|e| &e.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Every resource attribute received, as text.
    pub fn resource_attributes(&self) -> BTreeMap<String, String> {
        self.exports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|e| &e.resource_spans)
            .filter_map(|r| r.resource.as_ref())
            .flat_map(|r| r.attributes.iter().map(|kv| (kv.key.clone(), text(kv))))
            .collect()
    }
}

/// Lowercase hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// An attribute's value as text.
pub fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// The value of attribute `key`, as text.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).map(text)
}

/// Spans linked into trees by their parent span ids.
#[derive(Debug, Clone, Copy)]
pub struct SpanTree<'a> {
    /// Every span.
    pub spans: &'a [Span],
}

impl<'a> SpanTree<'a> {
    /// The roots (spans without a parent), by start time.
    pub fn roots(&self) -> Vec<&'a Span> {
        let mut roots: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.parent_span_id.is_empty())
            .collect();
        roots.sort_by_key(|s| s.start_time_unix_nano);
        roots
    }

    /// The children of `parent`, by start time.
    pub fn children(&self, parent: &Span) -> Vec<&'a Span> {
        let mut children: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id)
            .collect();
        children.sort_by(|a, b| {
            (a.start_time_unix_nano, &a.name).cmp(&(b.start_time_unix_nano, &b.name))
        });
        children
    }

    /// The names of `span` and its descendants, one per line, indented by depth.
    pub fn shape(&self, span: &Span, depth: usize, out: &mut String) {
        let _ = writeln!(out, "{:indent$}{}", "", span.name, indent = depth * 2);
        for child in self.children(span) {
            self.shape(child, depth + 1, out);
        }
    }

    /// `span` and its descendants, one per line: name, span id, the attributes an on-call reads
    /// (offset, case, field), an error status, and the decision or filter reason of its events.
    pub fn render(&self, span: &Span, depth: usize, out: &mut String) {
        let mut notes = Vec::new();
        for key in ["offset", "case_id", "field", "integration"] {
            if let Some(value) = attribute(&span.attributes, key) {
                notes.push(format!("{key}={value}"));
            }
        }
        if let Some(status) = span.status.as_ref().filter(|s| s.code != 0) {
            notes.push(format!("status={} {:?}", status.code, status.message));
        }
        for event in &span.events {
            if let Some(reason) = attribute(&event.attributes, "reason") {
                notes.push(format!("event {:?} reason={reason}", event.name));
            } else if let Some(decision) = attribute(&event.attributes, "decision") {
                notes.push(format!("event {:?} decision={decision}", event.name));
            }
        }
        let duration_us = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano)
            / 1_000;
        let _ = writeln!(
            out,
            "{:indent$}{} [span {}, {duration_us} us] {}",
            "",
            span.name,
            hex(&span.span_id),
            notes.join(" "),
            indent = depth * 2
        );
        for child in self.children(span) {
            self.render(child, depth + 1, out);
        }
    }
}
