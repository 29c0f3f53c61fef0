//! The pipeline runner against a toy integration and the in-memory case API: every stage,
//! every decision, the conflict loop, error classes, the skip list, caches and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use thirdparty_core::*;
use time::macros::datetime;

#[tokio::test]
async fn applies_a_change_with_the_version_and_watermark() {
    let api = seeded();
    let p = pipeline(api.clone(), PipelineConfig::new("toy"));
    let out = p.handle(&payload(&[title("ITEM-1", "new")])).await.unwrap();
    assert_eq!(decisions(out), [Decision::Applied]);
    let case = api.case("case-1").unwrap();
    assert_eq!((case.title.as_str(), case.version), ("new", 2));
    let item = ExternalReference::new("toy", "", "ITEM-1");
    assert_eq!(
        case.watermark(CaseField::Title, &item).map(|w| w.at),
        Some(EVENT)
    );
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
            // The same change seen again (same item, field and values, same time).
            Decision::Filtered(FilterReason::DuplicateEvent),
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

    api.conflict_next_updates(4);
    let message = payload(&[title("ITEM-1", "after a retry")]);
    let err = p.handle(&message).await.unwrap_err();
    assert_eq!(
        (err.class(), err.kind()),
        (ErrorClass::Retry, "version_mismatch"),
        "a lost race is retried, never dropped: {err:?}"
    );
    assert_eq!(api.calls().update_case, 3 + 4, "1 try + 3 bounded re-tries");
    assert_eq!(api.case("case-1").unwrap().title, "after conflicts");
    let out = p.handle(&message).await.unwrap();
    assert_eq!(decisions(out), [Decision::Applied], "the retry applies it");
    assert_eq!(api.case("case-1").unwrap().title, "after a retry");
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

/// A [`ToyDecoder`] that counts its calls.
#[derive(Debug, Default)]
struct CountingDecoder(std::sync::atomic::AtomicUsize);

impl Decoder for CountingDecoder {
    fn integration(&self) -> &'static str {
        "toy"
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ToyDecoder.decode(value)
    }
}

#[tokio::test]
async fn a_prepared_message_is_decoded_once_and_a_retry_decodes_again() {
    let api = seeded();
    let decoder = Arc::new(CountingDecoder::default());
    let p = Pipeline::builder(
        decoder.clone(),
        Arc::new(ToyFilterer),
        Arc::new(ToyProcessor),
        api.clone(),
    )
    .clock(Arc::new(ManualClock::new(NOW)))
    .build();
    let decodes = || decoder.0.load(std::sync::atomic::Ordering::Relaxed);
    let mut message = payload(&[title("ITEM-1", "t")]);
    assert_eq!(p.prepare(&mut message).as_deref(), Some("1:toy::ITEM-1"));
    // metadata passes; the case look-up is UNAVAILABLE: the message comes back for a retry.
    api.pass_then_fail(1, [CaseApiError::Unavailable("down".into())]);
    assert_eq!(
        p.handle(&message).await.unwrap_err().class(),
        ErrorClass::Retry
    );
    assert_eq!(
        decodes(),
        1,
        "prepare decodes; the first try takes its changelogs"
    );
    assert_eq!(
        decisions(p.handle(&message).await.unwrap()),
        [Decision::Applied]
    );
    assert_eq!(api.case("case-1").unwrap().title, "t");
    assert_eq!(decodes(), 2, "the retry decodes again");
    // Undecodable and empty messages have no key; an unprepared one is decoded when handled.
    assert_eq!(p.prepare(&mut Payload::new("not json")), None);
    assert_eq!(p.prepare(&mut payload(&[])), None);
    let mut once = payload(&[title("ITEM-1", "u")]);
    p.prepare(&mut once);
    assert_eq!(
        decisions(p.handle(&once).await.unwrap()),
        [Decision::Applied]
    );
    assert_eq!(decodes(), 5);
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
fn metrics_carry_the_fixed_names_and_tags() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let api = seeded();
            let p = pipeline(api.clone(), PipelineConfig::new("toy"));
            p.handle(&payload(&[title("ITEM-1", "new"), title("ITEM-404", "x")]))
                .await
                .unwrap();
            p.handle(&Payload::new(&b"nope"[..])).await.unwrap();
            api.conflict_next_updates(4);
            p.handle(&payload(&[title("ITEM-1", "raced")]))
                .await
                .unwrap_err();
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
            "dd.case_third_party_reader.toy.filtered",
            Some(("reason", "case_version_mismatch"))
        ),
        0,
        "a lost version race is retried, not counted as filtered: nothing was dropped"
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
