//! The contract every integration honours, as generic checks. An integration crate invokes
//! them all once with [`crate::contract_tests!`]:
//!
//! ```ignore
//! thirdparty_core::contract_tests!(crate::tests::contract_subject);
//! ```
//!
//! where `contract_subject()` returns a [`ContractSubject`]: the integration's stages, a set of
//! valid fixture messages, and an [`InMemoryCaseApi`] seeded so that the fixtures apply.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::cache::MetadataCache;
use crate::clock::ManualClock;
use crate::decoder::Decoder;
use crate::filterer::{Filterer, PreFilterContext};
use crate::pipeline::{Decision, MessageOutcome, Payload, Pipeline, PipelineConfig};
use crate::processor::Processor;
use crate::testkit::InMemoryCaseApi;

/// What the contract suite runs against.
#[derive(Debug)]
pub struct ContractSubject {
    /// The integration's decoder.
    pub decoder: Arc<dyn Decoder>,
    /// The integration's filterer.
    pub filterer: Arc<dyn Filterer>,
    /// The integration's processor.
    pub processor: Arc<dyn Processor>,
    /// Valid message values. Handled against `api`, every changelog must end applied or
    /// filtered with a reason, and at least one must be applied.
    pub fixtures: Vec<Vec<u8>>,
    /// A case API seeded so the fixtures apply.
    pub api: InMemoryCaseApi,
    /// The time the pipeline's clock shows (after the fixtures' events).
    pub now: OffsetDateTime,
}

/// A default "now" for subjects: 2024-06-01 UTC.
pub const DEFAULT_NOW: OffsetDateTime = datetime!(2024-06-01 00:00 UTC);

fn pipeline(subject: &ContractSubject, api: Arc<InMemoryCaseApi>) -> Pipeline {
    Pipeline::builder(
        subject.decoder.clone(),
        subject.filterer.clone(),
        subject.processor.clone(),
        api,
    )
    .clock(Arc::new(ManualClock::new(subject.now)))
    .config(PipelineConfig::new(subject.decoder.integration()))
    .build()
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

fn decode_must_not_panic(decoder: &dyn Decoder, input: &[u8]) {
    let result = catch_unwind(AssertUnwindSafe(|| decoder.decode(input)));
    assert!(
        result.is_ok(),
        "decoder panicked on input {:?}",
        String::from_utf8_lossy(input)
    );
}

/// Replaces every JSON value in `value`, one at a time, with values of other types, calling `f`
/// on each mutated document.
fn each_type_mutation(value: &serde_json::Value, f: &mut dyn FnMut(&serde_json::Value)) {
    use serde_json::{Value, json};
    let replacements = [
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!(u64::MAX),
    ];
    let mut pointers = Vec::new();
    collect_pointers(value, String::new(), &mut pointers);
    for pointer in pointers {
        for replacement in &replacements {
            let mut doc = value.clone();
            if let Some(slot) = doc.pointer_mut(&pointer) {
                *slot = replacement.clone();
                f(&doc);
            }
        }
        let mut doc = value.clone();
        if remove_at(&mut doc, &pointer) {
            f(&doc);
        }
    }
}

fn collect_pointers(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                collect_pointers(v, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                collect_pointers(v, p, out);
            }
        }
        _ => {}
    }
}

fn remove_at(doc: &mut serde_json::Value, pointer: &str) -> bool {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(serde_json::Value::Object(map)) => map.remove(&key).is_some(),
        Some(serde_json::Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Arbitrary bytes, truncations, byte flips and type mutations of the fixtures never panic the
/// decoder.
pub fn decoder_never_panics(subject: &ContractSubject) {
    let decoder = subject.decoder.as_ref();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2_000 {
        let len = rng.below(600);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        decode_must_not_panic(decoder, &bytes);
    }
    for fixture in &subject.fixtures {
        for cut in (0..fixture.len()).step_by((fixture.len() / 200).max(1)) {
            decode_must_not_panic(decoder, &fixture[..cut]);
        }
        for _ in 0..500 {
            let mut bytes = fixture.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            decode_must_not_panic(decoder, &bytes);
        }
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(fixture) {
            each_type_mutation(&value, &mut |doc| {
                let bytes = serde_json::to_vec(doc).unwrap_or_default();
                decode_must_not_panic(decoder, &bytes);
            });
        }
    }
}

/// Every changelog of a message is about one item (org, integration, site, id): the runtime
/// orders messages by that item and handles different items' messages concurrently.
pub fn a_message_changes_one_item(subject: &ContractSubject) {
    for fixture in &subject.fixtures {
        let Ok(changelogs) = subject.decoder.decode(fixture) else {
            panic!(
                "fixture does not decode: {}",
                String::from_utf8_lossy(fixture)
            );
        };
        let items: std::collections::BTreeSet<_> = changelogs
            .iter()
            .map(|c| (c.org_id, &c.integration, &c.site, &c.third_party_id))
            .collect();
        assert!(
            items.len() <= 1,
            "one message, several items {items:?}: {}",
            String::from_utf8_lossy(fixture)
        );
    }
}

/// The pre-filter performs no I/O beyond its caches' refreshes: over every fixture changelog,
/// only `list_sync_metadata` (at most once per organization) and `get_project_settings` (at most
/// once per project) are called, and a second round over the same fixtures calls nothing.
pub async fn prefilter_does_no_io_beyond_cache_refresh(subject: &ContractSubject) {
    let api = Arc::new(subject.api.clone());
    let clock = Arc::new(ManualClock::new(subject.now));
    let cache = MetadataCache::new(1_000, crate::cache::DEFAULT_TTL, clock.clone());
    let settings = crate::cache::SettingsCache::new(1_000, crate::cache::DEFAULT_TTL, clock);
    let ctx = PreFilterContext::new(&cache, api.as_ref(), subject.decoder.integration())
        .with_settings(&settings);
    let before = api.calls();
    let mut orgs = std::collections::BTreeSet::new();
    let mut after_first = None;
    for _round in 0..2 {
        for fixture in &subject.fixtures {
            let Ok(changelogs) = subject.decoder.decode(fixture) else {
                panic!(
                    "fixture does not decode: {}",
                    String::from_utf8_lossy(fixture)
                );
            };
            for mut changelog in changelogs {
                orgs.insert(changelog.org_id);
                let _ = subject.filterer.pre_filter(&mut changelog, &ctx).await;
            }
        }
        after_first.get_or_insert_with(|| api.calls());
    }
    let after = api.calls();
    assert_eq!(
        after.other_than_metadata() - after.get_project_settings,
        before.other_than_metadata() - before.get_project_settings,
        "pre-filter called the case API beyond its caches: {after:?}"
    );
    let refreshes = after.list_sync_metadata - before.list_sync_metadata;
    assert!(
        refreshes <= orgs.len() as u64,
        "{refreshes} metadata refreshes for {} organizations",
        orgs.len()
    );
    assert_eq!(
        after_first,
        Some(after),
        "the second round over the same fixtures called the case API: caches unused"
    );
}

/// Every changelog of every fixture ends applied or filtered with a reason, and at least one is
/// applied.
pub async fn every_changelog_is_applied_or_filtered(subject: &ContractSubject) {
    let api = Arc::new(subject.api.clone());
    let pipeline = pipeline(subject, api);
    let mut applied = 0;
    for fixture in &subject.fixtures {
        let outcome = pipeline
            .handle(&Payload::new(fixture.clone()))
            .await
            .unwrap_or_else(|e| panic!("retry-class error on a fixture: {e}"));
        let MessageOutcome::Handled(reports) = outcome else {
            panic!("fixture not handled: {outcome:?}");
        };
        for report in reports {
            match report.decision {
                Decision::Applied => applied += 1,
                Decision::Filtered(_) => {}
                other => panic!("changelog {:?} ended as {other:?}", report.changelog),
            }
        }
    }
    assert!(applied > 0, "no fixture changelog was applied");
}

/// Handling every fixture a second time changes nothing: no case field, version or comment.
pub async fn handling_twice_has_no_further_effect(subject: &ContractSubject) {
    let api = Arc::new(subject.api.clone());
    let pipeline = pipeline(subject, api.clone());
    for fixture in &subject.fixtures {
        pipeline
            .handle(&Payload::new(fixture.clone()))
            .await
            .unwrap_or_else(|e| panic!("retry-class error on a fixture: {e}"));
    }
    let first = api.snapshot();
    for fixture in &subject.fixtures {
        let outcome = pipeline
            .handle(&Payload::new(fixture.clone()))
            .await
            .unwrap_or_else(|e| panic!("retry-class error on a replay: {e}"));
        if let MessageOutcome::Handled(reports) = outcome {
            for report in reports {
                assert_ne!(
                    report.decision,
                    Decision::Applied,
                    "a replay was applied again: {:?}",
                    report.changelog
                );
            }
        }
    }
    assert_eq!(api.snapshot(), first, "a replay changed the case state");
}

/// A dry run decides as a live run does: for every fixture, in order, `explain` (which writes
/// nothing) predicts each changelog's decision, and handling it then takes that decision
/// (`would_apply` for `applied`); explaining them all again predicts the replays' decisions.
pub async fn explain_predicts_what_handling_decides(subject: &ContractSubject) {
    let api = Arc::new(subject.api.clone());
    let pipeline = pipeline(subject, api.clone());
    let decisions = |outcome: MessageOutcome| match outcome {
        MessageOutcome::Handled(reports) => reports
            .into_iter()
            .map(|r| match r.decision {
                Decision::WouldApply => Decision::Applied,
                other => other,
            })
            .collect::<Vec<_>>(),
        other => panic!("fixture not handled: {other:?}"),
    };
    for round in ["first", "replay"] {
        for fixture in &subject.fixtures {
            let payload = Payload::new(fixture.clone());
            let before = api.snapshot();
            let writes = api.calls().update_case + api.calls().add_comment;
            let predicted = decisions(
                pipeline
                    .explain(&payload)
                    .await
                    .unwrap_or_else(|e| panic!("retry-class error explaining a fixture: {e}")),
            );
            assert_eq!(api.snapshot(), before, "explain wrote to the case");
            assert_eq!(
                api.calls().update_case + api.calls().add_comment,
                writes,
                "explain called a write"
            );
            let taken = decisions(
                pipeline
                    .handle(&payload)
                    .await
                    .unwrap_or_else(|e| panic!("retry-class error on a fixture: {e}")),
            );
            assert_eq!(
                predicted, taken,
                "{round}: explain foretold another decision"
            );
        }
    }
}

/// Invokes the whole contract suite for an integration: one test per check.
///
/// The argument is a path to a function returning a [`ContractSubject`]. The calling crate needs
/// `tokio` (macros, rt) as a dev-dependency.
#[macro_export]
macro_rules! contract_tests {
    ($subject:path) => {
        mod contract_suite {
            #[test]
            fn decoder_never_panics() {
                $crate::testkit::contract::decoder_never_panics(&$subject());
            }

            #[test]
            fn a_message_changes_one_item() {
                $crate::testkit::contract::a_message_changes_one_item(&$subject());
            }

            #[tokio::test]
            async fn prefilter_does_no_io_beyond_cache_refresh() {
                $crate::testkit::contract::prefilter_does_no_io_beyond_cache_refresh(&$subject())
                    .await;
            }

            #[tokio::test]
            async fn every_changelog_is_applied_or_filtered() {
                $crate::testkit::contract::every_changelog_is_applied_or_filtered(&$subject())
                    .await;
            }

            #[tokio::test]
            async fn handling_twice_has_no_further_effect() {
                $crate::testkit::contract::handling_twice_has_no_further_effect(&$subject()).await;
            }

            #[tokio::test]
            async fn explain_predicts_what_handling_decides() {
                $crate::testkit::contract::explain_predicts_what_handling_decides(&$subject())
                    .await;
            }
        }
    };
}
