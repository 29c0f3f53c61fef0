//! The onboarding window: a project (or organization) configured just after a change of it was
//! dropped for lack of settings (or sync metadata) is synced within the negative cache TTL, not
//! after the full cache TTL; clearing the caches makes it immediate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::*;
use time::Duration;

fn pipeline_at(api: Arc<InMemoryCaseApi>, config: PipelineConfig) -> (Pipeline, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let p = Pipeline::builder(
        Arc::new(ToyDecoder),
        Arc::new(ToyFilterer),
        Arc::new(ToyProcessor),
        api,
    )
    .clock(clock.clone())
    .config(config)
    .build();
    (p, clock)
}

/// Settings for the seeded case-2's project, which `seeded()` leaves unconfigured (read from
/// another seeded API, so the API under test counts no extra call).
async fn unconfigured_project_settings() -> SyncSettings {
    let settings = seeded()
        .get_project_settings(1, "proj", "toy")
        .await
        .unwrap();
    SyncSettings {
        project_id: "unconfigured".into(),
        ..settings.unwrap()
    }
}

async fn decision(p: &Pipeline, item: &str, to: &str) -> Decision {
    let mut out = decisions(p.handle(&payload(&[title(item, to)])).await.unwrap());
    assert_eq!(out.len(), 1);
    out.remove(0)
}

#[tokio::test]
async fn settings_added_after_project_not_found_apply_after_the_negative_ttl() {
    let settings = unconfigured_project_settings().await;
    let api = seeded();
    let (p, clock) = pipeline_at(api.clone(), PipelineConfig::new("toy"));
    assert_eq!(
        decision(&p, "ITEM-2", "a").await,
        Decision::Filtered(FilterReason::ProjectNotFound)
    );
    api.insert_settings(settings);
    clock.advance(Duration::seconds(29));
    assert_eq!(
        decision(&p, "ITEM-2", "b").await,
        Decision::Filtered(FilterReason::ProjectNotFound),
        "the negative answer is still fresh"
    );
    clock.advance(Duration::seconds(1));
    assert_eq!(decision(&p, "ITEM-2", "c").await, Decision::Applied);
    assert_eq!(api.case("case-2").unwrap().title, "c");
    assert_eq!(api.calls().get_project_settings, 2);
}

#[tokio::test]
async fn a_negative_ttl_as_long_as_the_ttl_keeps_the_project_dark_for_five_minutes() {
    // The behaviour before negative answers had their own TTL: dropped at 31 s.
    let settings = unconfigured_project_settings().await;
    let api = seeded();
    let config = PipelineConfig {
        negative_cache_ttl: cache::DEFAULT_TTL,
        ..PipelineConfig::new("toy")
    };
    let (p, clock) = pipeline_at(api.clone(), config);
    assert_eq!(
        decision(&p, "ITEM-2", "a").await,
        Decision::Filtered(FilterReason::ProjectNotFound)
    );
    api.insert_settings(settings);
    clock.advance(Duration::seconds(31));
    assert_eq!(
        decision(&p, "ITEM-2", "b").await,
        Decision::Filtered(FilterReason::ProjectNotFound)
    );
    clock.advance(Duration::seconds(269));
    assert_eq!(decision(&p, "ITEM-2", "c").await, Decision::Applied);
}

#[tokio::test]
async fn sync_metadata_added_after_no_matching_metadata_applies_after_the_negative_ttl() {
    let seeded = seeded();
    let metadata = seeded.list_sync_metadata(1, "toy").await.unwrap();
    let api = InMemoryCaseApi::new();
    api.insert_case(seeded.case("case-1").unwrap());
    let settings = seeded.get_project_settings(1, "proj", "toy").await.unwrap();
    api.insert_settings(settings.unwrap());
    let api = Arc::new(api);
    let (p, clock) = pipeline_at(api.clone(), PipelineConfig::new("toy"));
    assert_eq!(
        decision(&p, "ITEM-1", "a").await,
        Decision::Filtered(FilterReason::NoMatchingMetadata)
    );
    for m in metadata {
        api.insert_metadata(m);
    }
    clock.advance(Duration::seconds(29));
    assert_eq!(
        decision(&p, "ITEM-1", "b").await,
        Decision::Filtered(FilterReason::NoMatchingMetadata)
    );
    clock.advance(Duration::seconds(1));
    assert_eq!(decision(&p, "ITEM-1", "c").await, Decision::Applied);
    // The organization's metadata, now a positive answer, lives the full TTL: no reload 4 min
    // later.
    clock.advance(Duration::minutes(4));
    assert_eq!(decision(&p, "ITEM-1", "d").await, Decision::Applied);
    assert_eq!(api.calls().list_sync_metadata, 2);
}

#[tokio::test]
async fn clear_caches_makes_a_new_configuration_visible_at_once() {
    let api = seeded();
    let (p, _clock) = pipeline_at(api.clone(), PipelineConfig::new("toy"));
    assert_eq!(
        decision(&p, "ITEM-2", "a").await,
        Decision::Filtered(FilterReason::ProjectNotFound)
    );
    assert_eq!(decision(&p, "ITEM-1", "a").await, Decision::Applied);
    assert!(!p.settings_cache().is_empty() && !p.metadata_cache().is_empty());
    api.insert_settings(unconfigured_project_settings().await);
    p.clear_caches();
    assert!(p.settings_cache().is_empty() && p.metadata_cache().is_empty());
    assert_eq!(decision(&p, "ITEM-2", "b").await, Decision::Applied);
    assert_eq!(api.calls().list_sync_metadata, 2);
}
