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
        _attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .map(|p| p.name().to_owned())
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .push((span.name().to_owned(), parent));
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
            .config(PipelineConfig::new("jira"))
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
    assert!(has("handler_jira", ""), "{pairs:?}");
    assert!(has("decode_event", "handler_jira"), "{pairs:?}");
    assert!(
        has("prefilter_third_party_changelog", "handler_jira"),
        "{pairs:?}"
    );
    assert!(
        has("filter_third_party_changelog", "handler_jira"),
        "{pairs:?}"
    );
    assert!(has("get_case", "filter_third_party_changelog"), "{pairs:?}");
    assert!(
        has("get_settings", "filter_third_party_changelog"),
        "{pairs:?}"
    );
    assert!(has("process_changelog", "handler_jira"), "{pairs:?}");
    assert!(has("update_case", "process_changelog"), "{pairs:?}");
    assert!(
        has("create_timeline_cell", "process_changelog"),
        "{pairs:?}"
    );
}
