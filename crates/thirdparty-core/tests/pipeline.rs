//! The pipeline runner against a toy integration and the in-memory case API: every stage,
//! every decision, the conflict loop, error classes, the skip list, caches and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::*;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2024-06-01 12:00 UTC);
const EVENT: OffsetDateTime = datetime!(2024-06-01 11:59 UTC);

/// Decodes a JSON array of changelogs, as printed by `decode`.
#[derive(Debug)]
struct ToyDecoder;

impl Decoder for ToyDecoder {
    fn integration(&self) -> &'static str {
        "toy"
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
        let changelogs: Vec<Changelog> = serde_json::from_slice(value)?;
        if changelogs.iter().any(|c| c.org_id == 0) {
            return Err(DecodeError::invalid("org_id", "must not be 0"));
        }
        Ok(changelogs)
    }
}

#[derive(Debug)]
struct ToyFilterer;

#[async_trait]
impl Filterer for ToyFilterer {
    async fn pre_filter(
        &self,
        changelog: &mut Changelog,
        ctx: &PreFilterContext<'_>,
    ) -> Result<Option<FilterReason>, CaseApiError> {
        if changelog.author.as_ref().and_then(|a| a.id.as_deref()) == Some("bot") {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        if ctx.org_metadata(changelog.org_id).await?.is_empty() {
            return Ok(Some(FilterReason::NoMatchingMetadata));
        }
        Ok(None)
    }

    fn filter(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
    ) -> Option<FilterReason> {
        if !settings.integration_enabled {
            return Some(FilterReason::IntegrationDisabled);
        }
        let field = changelog.changelog_type.case_field()?;
        if case
            .watermark(field)
            .is_some_and(|w| changelog.event_timestamp < w)
        {
            return Some(FilterReason::OutOfOrderEvent);
        }
        if case.field_value(field) == changelog.to_string {
            return Some(FilterReason::NoChange);
        }
        None
    }
}

#[derive(Debug)]
struct ToyProcessor;

#[async_trait]
impl Processor for ToyProcessor {
    async fn process(
        &self,
        changelog: &Changelog,
        case: &Case,
        _settings: &SyncSettings,
        api: &dyn CaseApi,
    ) -> Result<ProcessOutcome, CaseApiError> {
        match changelog.changelog_type {
            ChangelogType::UpdateTitle => {
                api.update_case(&CaseUpdate {
                    org_id: changelog.org_id,
                    case_id: case.id.clone(),
                    expected_version: case.version,
                    change: FieldChange::Title(changelog.to_string.clone().unwrap_or_default()),
                    source_event_time: changelog.event_timestamp,
                    integration: changelog.integration.clone(),
                })
                .await?;
                Ok(ProcessOutcome::Applied)
            }
            ChangelogType::CreateComment => {
                let outcome = api
                    .add_comment(&NewComment {
                        org_id: changelog.org_id,
                        case_id: case.id.clone(),
                        idempotency_key: changelog.comment_id.clone().unwrap_or_default(),
                        body: changelog.body.clone().unwrap_or_default(),
                        author: changelog.author.clone().unwrap_or_default(),
                        is_work_note: false,
                        integration: changelog.integration.clone(),
                        source_event_time: changelog.event_timestamp,
                    })
                    .await?;
                Ok(if outcome.created {
                    ProcessOutcome::Applied
                } else {
                    ProcessOutcome::Filtered(FilterReason::DuplicateEvent)
                })
            }
            _ => Ok(ProcessOutcome::Filtered(
                FilterReason::UnsupportedChangelogType,
            )),
        }
    }
}

fn case(id: &str, reference: &str) -> Case {
    Case {
        id: id.into(),
        org_id: 1,
        project_id: "proj".into(),
        version: 1,
        title: "old".into(),
        description: String::new(),
        priority: None,
        status: "OPEN".into(),
        assignee_id: None,
        due_date: None,
        created_at: datetime!(2024-01-01 0:00 UTC),
        external_references: vec![ExternalReference {
            integration: "toy".into(),
            reference: reference.into(),
        }],
        field_watermarks: Default::default(),
    }
}

fn seeded() -> Arc<InMemoryCaseApi> {
    let api = InMemoryCaseApi::new();
    api.insert_case(case("case-1", "ITEM-1"));
    api.insert_case(Case {
        project_id: "unconfigured".into(),
        ..case("case-2", "ITEM-2")
    });
    api.insert_settings(SyncSettings {
        org_id: 1,
        project_id: "proj".into(),
        integration: "toy".into(),
        integration_enabled: true,
        project_sync_enabled: true,
        sync_type: SyncType::Bidirectional,
        field_sync: Default::default(),
        comment_sync_enabled: true,
        work_note_sync_enabled: true,
        value_mappings: Default::default(),
        custom_fields: Default::default(),
        start_syncing_from: None,
    });
    api.insert_metadata(SyncMetadata {
        org_id: 1,
        integration: "toy".into(),
        project_id: "proj".into(),
        scope: Default::default(),
        custom_fields: Default::default(),
        own_user_ids: Default::default(),
    });
    Arc::new(api)
}

fn pipeline(api: Arc<InMemoryCaseApi>, config: PipelineConfig) -> Pipeline {
    Pipeline::builder(
        Arc::new(ToyDecoder),
        Arc::new(ToyFilterer),
        Arc::new(ToyProcessor),
        api,
    )
    .clock(Arc::new(ManualClock::new(NOW)))
    .config(config)
    .build()
}

fn title(item: &str, to: &str) -> Changelog {
    let mut c = Changelog::new("toy", 1, ChangelogType::UpdateTitle, item, EVENT);
    c.to_string = Some(to.into());
    c
}

fn payload(changelogs: &[Changelog]) -> Payload {
    Payload::new(serde_json::to_vec(changelogs).unwrap())
}

fn decisions(outcome: MessageOutcome) -> Vec<Decision> {
    match outcome {
        MessageOutcome::Handled(reports) => reports.into_iter().map(|r| r.decision).collect(),
        other => panic!("not handled: {other:?}"),
    }
}

#[tokio::test]
async fn applies_a_change_with_the_version_and_watermark() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    let out = p.handle(&payload(&[title("ITEM-1", "new")])).await.unwrap();
    assert_eq!(decisions(out), [Decision::Applied]);
    let case = api.case("case-1").unwrap();
    assert_eq!((case.title.as_str(), case.version), ("new", 2));
    assert_eq!(case.watermark(CaseField::Title), Some(EVENT));
}

#[tokio::test]
async fn each_changelog_of_a_message_gets_its_own_decision() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    let mut bot = title("ITEM-1", "echo");
    bot.author = Some(Author {
        id: Some("bot".into()),
        display_name: None,
    });
    let mut no_ref = title("", "x");
    no_ref.third_party_id = String::new();
    let older = Changelog {
        event_timestamp: datetime!(2024-06-01 11:00 UTC),
        ..title("ITEM-1", "older")
    };
    let out = p
        .handle(&payload(&[
            title("ITEM-1", "new"),
            title("ITEM-1", "new"),
            bot,
            title("ITEM-404", "x"),
            title("ITEM-2", "x"),
            no_ref,
            older,
        ]))
        .await
        .unwrap();
    assert_eq!(
        decisions(out),
        [
            Decision::Applied,
            Decision::Filtered(FilterReason::NoChange),
            Decision::Filtered(FilterReason::BreakSynchronizationCycle),
            Decision::Filtered(FilterReason::NoCorrespondingCase),
            Decision::Filtered(FilterReason::ProjectNotFound),
            Decision::Filtered(FilterReason::MissingCaseReference),
            Decision::Filtered(FilterReason::OutOfOrderEvent),
        ]
    );
}

#[tokio::test]
async fn case_reference_is_looked_up_by_id_then_by_external_reference() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    let mut by_id = title("unknown-item", "by id");
    by_id.case_reference = Some("case-1".into());
    let mut fallback = title("ITEM-1", "by reference");
    fallback.event_timestamp = NOW;
    fallback.case_reference = Some("no-such-case".into());
    let out = p.handle(&payload(&[by_id, fallback])).await.unwrap();
    assert_eq!(decisions(out), [Decision::Applied, Decision::Applied]);
    assert_eq!(api.case("case-1").unwrap().title, "by reference");
}

#[tokio::test]
async fn a_version_conflict_re_reads_and_re_filters_a_bounded_number_of_times() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    api.conflict_next_updates(2);
    let out = p
        .handle(&payload(&[title("ITEM-1", "after conflicts")]))
        .await
        .unwrap();
    assert_eq!(decisions(out), [Decision::Applied]);
    let case = api.case("case-1").unwrap();
    assert_eq!((case.title.as_str(), case.version), ("after conflicts", 4));

    api.conflict_next_updates(100);
    let out = p
        .handle(&payload(&[title("ITEM-1", "never")]))
        .await
        .unwrap();
    assert_eq!(
        decisions(out),
        [Decision::Filtered(FilterReason::CaseVersionMismatch)]
    );
    assert_eq!(api.calls().update_case, 3 + 4, "1 try + 3 bounded re-tries");
}

#[tokio::test]
async fn retry_class_errors_come_back_and_a_retry_is_idempotent() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    let mut comment = Changelog::new("toy", 1, ChangelogType::CreateComment, "ITEM-1", EVENT);
    comment.comment_id = Some("c-1".into());
    comment.body = Some("hello".into());
    let message = payload(&[comment, title("ITEM-1", "t")]);
    // metadata, find case, settings, add comment pass; the title's case look-up is UNAVAILABLE.
    api.pass_then_fail(4, [CaseApiError::Unavailable("down".into())]);
    let err = p.handle(&message).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retry);
    assert_eq!(api.comments("case-1").len(), 1);
    assert_eq!(api.case("case-1").unwrap().title, "old");
    // The retry of the whole message: the comment is not duplicated, the title applies.
    let again = p.handle(&message).await.unwrap();
    assert_eq!(
        decisions(again),
        [
            Decision::Filtered(FilterReason::DuplicateEvent),
            Decision::Applied
        ]
    );
    assert_eq!(api.comments("case-1").len(), 1);
    assert_eq!(api.case("case-1").unwrap().title, "t");
}

#[tokio::test]
async fn skip_class_api_errors_reject_the_changelog_and_let_the_message_go() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    p.handle(&payload(&[title("ITEM-1", "warm")]))
        .await
        .unwrap();
    let mut next = title("ITEM-1", "refused");
    next.event_timestamp = NOW;
    // Caches are warm: find case passes, the update is refused as invalid.
    api.pass_then_fail(1, [CaseApiError::InvalidArgument("title too long".into())]);
    let out = p.handle(&payload(&[next])).await.unwrap();
    match decisions(out).as_slice() {
        [Decision::Rejected(err)] => assert_eq!(err.class(), ErrorClass::Skip),
        other => panic!("{other:?}"),
    }
    assert_eq!(api.case("case-1").unwrap().title, "warm");
}

#[tokio::test]
async fn undecodable_and_invalid_messages_are_acknowledged_with_their_class() {
    let api = seeded();
    let p = pipeline(api, PipelineConfig::new("toy"));
    match p.handle(&Payload::new(&b"{not json"[..])).await.unwrap() {
        MessageOutcome::Undecodable(err) => assert_eq!(err.class(), ErrorClass::Skip),
        other => panic!("{other:?}"),
    }
    let zero_org = Changelog {
        org_id: 0,
        ..title("ITEM-1", "x")
    };
    match p.handle(&payload(&[zero_org])).await.unwrap() {
        MessageOutcome::Undecodable(err) => assert_eq!(err.class(), ErrorClass::Discard),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_skip_list_acknowledges_a_listed_message_without_handling_it() {
    let api = seeded();
    let skip = Arc::new(SkipList::default());
    let p = Pipeline::builder(
        Arc::new(ToyDecoder),
        Arc::new(ToyFilterer),
        Arc::new(ToyProcessor),
        api.clone(),
    )
    .skip_list(skip.clone())
    .build();
    let mut poisoned = Payload::new(&b"{poison"[..]);
    poisoned.position = Some(MessagePosition {
        topic: "t".into(),
        partition: 0,
        offset: 7,
    });
    assert!(matches!(
        p.handle(&poisoned).await.unwrap(),
        MessageOutcome::Undecodable(_)
    ));
    skip.replace(SkipList::parse_entries(["t:0:7"]).unwrap());
    assert_eq!(p.handle(&poisoned).await.unwrap(), MessageOutcome::Skipped);
    assert_eq!(api.calls(), Default::default());
}

#[tokio::test]
async fn dry_run_decides_but_never_writes() {
    let api = seeded();
    let before = api.snapshot();
    let p = pipeline(
        api.clone(),
        PipelineConfig {
            dry_run: true,
            ..PipelineConfig::new("toy")
        },
    );
    let out = p.handle(&payload(&[title("ITEM-1", "new")])).await.unwrap();
    assert_eq!(decisions(out), [Decision::WouldApply]);
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    let out = p
        .explain(&payload(&[title("ITEM-1", "new")]))
        .await
        .unwrap();
    assert_eq!(decisions(out), [Decision::WouldApply]);
    assert_eq!(api.snapshot(), before);
    assert_eq!(api.calls().update_case + api.calls().add_comment, 0);
}

#[tokio::test]
async fn settings_and_metadata_are_cached_across_messages() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    for i in 0..50 {
        let mut c = title("ITEM-1", &format!("title {i}"));
        c.event_timestamp = EVENT + time::Duration::seconds(i);
        p.handle(&payload(&[c])).await.unwrap();
    }
    let calls = api.calls();
    assert_eq!(calls.get_project_settings, 1);
    assert_eq!(calls.list_sync_metadata, 1);
    assert_eq!(calls.update_case, 50);
}

type Metrics = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Takes the recorder's values once (a snapshot drains counters).
fn take(snapshotter: &Snapshotter) -> Metrics {
    snapshotter.snapshot().into_vec()
}

fn counter(metrics: &Metrics, name: &str, tag: Option<(&str, &str)>) -> u64 {
    metrics
        .iter()
        .filter(|(key, _, _, _)| key.key().name() == name)
        .filter(|(key, _, _, _)| {
            tag.is_none_or(|(k, v)| key.key().labels().any(|l| l.key() == k && l.value() == v))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

#[test]
fn metrics_carry_the_seed_names_and_tags() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let api = seeded();
            let p = pipeline(api, PipelineConfig::new("toy"));
            p.handle(&payload(&[title("ITEM-1", "new"), title("ITEM-404", "x")]))
                .await
                .unwrap();
            p.handle(&Payload::new(&b"nope"[..])).await.unwrap();
        });
    });
    let metrics = take(&snapshotter);
    assert_eq!(
        counter(
            &metrics,
            telemetry::CHANGELOG_PROCESSED,
            Some(("changelog_type", "update_title"))
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            "dd.case_third_party_reader.toy.filtered",
            Some(("reason", "no_corresponding_case"))
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            telemetry::DECODING_FAILED,
            Some(("error", "malformed"))
        ),
        1
    );
    assert_eq!(counter(&metrics, telemetry::KAFKA_DECODE_ERROR, None), 1);
    let latency = metrics
        .iter()
        .find(|(key, _, _, _)| key.key().name() == telemetry::END_TO_END_LATENCY)
        .map(|(_, _, _, v)| v);
    match latency {
        Some(DebugValue::Histogram(values)) => assert_eq!(values[0].into_inner(), 60_000.0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn skipped_messages_are_counted_under_skipped_by_operator() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let skip = Arc::new(SkipList::new(SkipList::parse_entries(["3:9"]).unwrap()));
            let p = Pipeline::builder(
                Arc::new(ToyDecoder),
                Arc::new(ToyFilterer),
                Arc::new(ToyProcessor),
                seeded(),
            )
            .skip_list(skip)
            .build();
            let mut poisoned = Payload::new(&b"{"[..]);
            poisoned.position = Some(MessagePosition {
                topic: "t".into(),
                partition: 3,
                offset: 9,
            });
            assert_eq!(p.handle(&poisoned).await.unwrap(), MessageOutcome::Skipped);
        });
    });
    let metrics = take(&snapshotter);
    assert_eq!(
        counter(
            &metrics,
            telemetry::MESSAGE_SKIPPED,
            Some(("partition", "3"))
        ),
        1
    );
    assert_eq!(
        counter(
            &metrics,
            "dd.case_third_party_reader.toy.filtered",
            Some(("reason", "skipped_by_operator"))
        ),
        1
    );
}

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
