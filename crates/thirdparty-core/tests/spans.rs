//! The span hierarchy of `docs/design.md` ("Names operators key on"). Alone in its test binary: tracing caches callsite interest per
//! process, and a test running concurrently without a subscriber could hide spans from this one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use thirdparty_core::*;

/// Records `(span, parent)` pairs as spans are created.
#[derive(Clone, Default)]
struct SpanTree(Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl<S> tracing_subscriber::Layer<S> for SpanTree
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        // The exported name: `otel.name` when the span sets one.
        let mut name = OtelName(span.name().to_owned());
        attrs.record(&mut name);
        span.extensions_mut().insert(name.clone());
        let parent = span
            .parent()
            .map(|p| {
                p.extensions()
                    .get::<OtelName>()
                    .map_or_else(|| p.name().to_owned(), |n| n.0.clone())
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push((name.0, parent));
    }
}

/// A span's exported name.
#[derive(Clone)]
struct OtelName(String);

impl tracing::field::Visit for OtelName {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "otel.name" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "otel.name" {
            self.0 = value.to_owned();
        }
    }
}

#[test]
fn spans_follow_the_seed_hierarchy() {
    use tracing_subscriber::layer::SubscriberExt;
    let tree = SpanTree::default();
    let subscriber = tracing_subscriber::registry().with(tree.clone());
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let api = seeded();
            let p = Pipeline::builder(
                Arc::new(ToyDecoder),
                Arc::new(ToyFilterer),
                Arc::new(ToyProcessor),
                api,
            )
            .config(PipelineConfig::new("toy"))
            .clock(Arc::new(ManualClock::new(NOW)))
            .build();
            let mut comment =
                Changelog::new("toy", 1, ChangelogType::CreateComment, "ITEM-1", EVENT);
            comment.comment_id = Some("c-9".into());
            comment.body = Some("hi".into());
            p.handle(&payload(&[title("ITEM-1", "new"), comment]))
                .await
                .unwrap();
        });
    });
    let pairs = tree.0.lock().unwrap().clone();
    let has = |span: &str, parent: &str| pairs.iter().any(|(s, p)| s == span && p == parent);
    assert!(has("handler_toy", ""), "{pairs:?}");
    assert!(has("decode_event", "handler_toy"), "{pairs:?}");
    assert!(
        has("prefilter_third_party_changelog", "handler_toy"),
        "{pairs:?}"
    );
    assert!(
        has("filter_third_party_changelog", "handler_toy"),
        "{pairs:?}"
    );
    assert!(has("get_case", "filter_third_party_changelog"), "{pairs:?}");
    assert!(
        has("get_settings", "filter_third_party_changelog"),
        "{pairs:?}"
    );
    assert!(has("process_changelog", "handler_toy"), "{pairs:?}");
    assert!(has("update_case", "process_changelog"), "{pairs:?}");
    assert!(
        has("create_timeline_cell", "process_changelog"),
        "{pairs:?}"
    );
}
