//! Cache warming (`Pipeline::warm_caches`) against the in-memory fake: every listed
//! organization is cached as `list_sync_metadata` would have answered, so the pre-filter then
//! asks nothing; paging, the bounds, and every way warming gives up and carries on cold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::*;

/// A scope of `org_id` for the toy integration (or `integration`), for `project_id`.
fn scope(org_id: u64, integration: &str, project_id: &str) -> SyncMetadata {
    SyncMetadata {
        org_id,
        integration: integration.into(),
        project_id: project_id.into(),
        scope: Default::default(),
        custom_fields: Default::default(),
        own_user_ids: Default::default(),
    }
}

/// The seeded world (org 1: case-1, its settings and one scope) plus org 3 with three scopes,
/// org 2 with one, and org 4 with a scope of another integration only. Inserted out of order.
fn world() -> Arc<InMemoryCaseApi> {
    let api = seeded();
    api.insert_metadata(scope(3, "toy", "p-3a"))
        .insert_metadata(scope(2, "toy", "p-2"))
        .insert_metadata(scope(4, "other", "p-4"))
        .insert_metadata(scope(3, "toy", "p-3b"))
        .insert_metadata(scope(3, "toy", "p-3c"));
    api
}

fn config(page_size: u32) -> PipelineConfig {
    PipelineConfig {
        warm_page_size: page_size,
        ..PipelineConfig::new("toy")
    }
}

/// What the cache holds for `org_id`, without loading anything.
async fn cached(p: &Pipeline, org_id: u64) -> Option<Arc<[SyncMetadata]>> {
    p.metadata_cache()
        .get_or_try_load(&(org_id, "toy".to_owned()), || async { Err(()) })
        .await
        .ok()
}

fn projects(list: &[SyncMetadata]) -> Vec<&str> {
    list.iter().map(|m| m.project_id.as_str()).collect()
}

#[tokio::test]
async fn warmed_organizations_cost_the_pre_filter_no_look_up() {
    let api = world();
    let p = pipeline(api.clone(), config(500));
    let outcome = p.warm_caches().await;
    assert_eq!(outcome.stop, WarmStop::Complete, "{outcome:?}");
    assert_eq!((outcome.orgs, outcome.entries, outcome.pages), (3, 5, 1));
    assert_eq!(api.calls().list_all_sync_metadata, 1);

    // Exactly what `list_sync_metadata` answers, per organization, in its order.
    let before = api.calls().list_sync_metadata;
    for org_id in [1, 2, 3] {
        let held = cached(&p, org_id).await.expect("cached");
        let answer = api.list_sync_metadata(org_id, "toy").await.unwrap();
        assert_eq!(&*held, answer.as_slice(), "org {org_id}");
    }
    assert_eq!(
        projects(&cached(&p, 3).await.unwrap()),
        ["p-3a", "p-3b", "p-3c"]
    );
    assert!(
        cached(&p, 4).await.is_none(),
        "no scope of this integration"
    );
    let asked = api.calls().list_sync_metadata - before;
    let loads = p.metadata_cache().stats().loads;

    // Messages of warmed organizations: applied, and the pre-filter asked nothing.
    let mut on_org_3 = title("ITEM-3", "x");
    on_org_3.org_id = 3;
    assert_eq!(
        decisions(p.handle(&payload(&[title("ITEM-1", "new")])).await.unwrap()),
        [Decision::Applied]
    );
    assert_eq!(
        decisions(p.handle(&payload(&[on_org_3])).await.unwrap()),
        [Decision::Filtered(FilterReason::NoCorrespondingCase)]
    );
    assert_eq!(api.calls().list_sync_metadata - before, asked, "no look-up");
    assert_eq!(p.metadata_cache().stats().loads, loads);
}

#[tokio::test]
async fn pages_split_an_organization_and_it_is_cached_whole() {
    let api = world();
    // Pages of two: [1, 2] [3a, 3b] [3c]: org 3 spans two pages.
    let p = pipeline(api.clone(), config(2));
    let outcome = p.warm_caches().await;
    assert_eq!(outcome.stop, WarmStop::Complete);
    assert_eq!((outcome.orgs, outcome.entries, outcome.pages), (3, 5, 3));
    assert_eq!(api.calls().list_all_sync_metadata, 3);
    assert_eq!(
        projects(&cached(&p, 3).await.unwrap()),
        ["p-3a", "p-3b", "p-3c"]
    );
    // One a page: the same.
    let p = pipeline(api, config(1));
    let outcome = p.warm_caches().await;
    assert_eq!((outcome.orgs, outcome.entries, outcome.pages), (3, 5, 5));
    assert_eq!(
        projects(&cached(&p, 3).await.unwrap()),
        ["p-3a", "p-3b", "p-3c"]
    );
}

#[tokio::test]
async fn a_case_api_without_the_listing_leaves_the_cache_cold() {
    let api = world();
    api.without_list_all();
    let p = pipeline(api.clone(), config(500));
    let outcome = p.warm_caches().await;
    assert!(
        matches!(
            outcome.stop,
            WarmStop::Unsupported(CaseApiError::Unimplemented(_))
        ),
        "{outcome:?}"
    );
    assert_eq!((outcome.orgs, outcome.pages), (0, 0));
    assert!(p.metadata_cache().is_empty());
    assert_eq!(api.calls().list_all_sync_metadata, 1, "not tried again");
    // Cold: the first message of the organization loads its metadata, as before warming.
    assert_eq!(
        decisions(p.handle(&payload(&[title("ITEM-1", "new")])).await.unwrap()),
        [Decision::Applied]
    );
    assert_eq!(api.calls().list_sync_metadata, 1);
}

/// A `CaseApi` with the required methods only: the listing is the trait's default.
#[derive(Debug)]
struct Bare;

#[async_trait]
impl CaseApi for Bare {
    async fn get_case(&self, _: u64, _: &str) -> Result<Option<Case>, CaseApiError> {
        Ok(None)
    }

    async fn find_case_by_external_reference(
        &self,
        _: u64,
        _: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        Ok(None)
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        Err(CaseApiError::NotFound(update.case_id.clone()))
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        Err(CaseApiError::NotFound(comment.case_id.clone()))
    }

    async fn list_comments(&self, _: u64, _: &str) -> Result<Vec<Comment>, CaseApiError> {
        Ok(Vec::new())
    }

    async fn get_project_settings(
        &self,
        _: u64,
        _: &str,
        _: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        Ok(None)
    }

    async fn list_sync_metadata(&self, _: u64, _: &str) -> Result<Vec<SyncMetadata>, CaseApiError> {
        Ok(Vec::new())
    }

    async fn resolve_user(&self, _: &UserQuery) -> Result<Option<User>, CaseApiError> {
        Ok(None)
    }
}

#[tokio::test]
async fn the_default_of_the_trait_is_unsupported_and_wrappers_forward_the_listing() {
    let p = pipeline(Arc::new(Bare), config(500));
    let outcome = p.warm_caches().await;
    assert!(
        matches!(
            outcome.stop,
            WarmStop::Unsupported(CaseApiError::Unimplemented(_))
        ),
        "{outcome:?}"
    );
    // `ReadOnly` (a dry run's processor API) and `Arc` forward it rather than default.
    let api = world();
    let read_only = ReadOnly::new(api.as_ref());
    let page = read_only
        .list_all_sync_metadata("toy", None, 0)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 5);
    let shared: Arc<dyn CaseApi> = api.clone();
    assert_eq!(
        shared.list_all_sync_metadata("toy", None, 0).await.unwrap(),
        page
    );
}

#[tokio::test]
async fn a_scripted_listing_warms_like_the_fake() {
    let api = Listing::pages(vec![page(&[7, 8], None)], Duration::ZERO);
    let p = pipeline(Arc::new(api), config(500));
    let outcome = p.warm_caches().await;
    assert_eq!((outcome.stop, outcome.orgs), (WarmStop::Complete, 2));
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_tried_again_then_warming_gives_up_keeping_what_it_cached() {
    let api = world();
    api.fail_next([
        CaseApiError::Unavailable("starting".into()),
        CaseApiError::DeadlineExceeded("slow".into()),
    ]);
    let p = pipeline(api.clone(), config(500));
    let outcome = p.warm_caches().await;
    assert_eq!(outcome.stop, WarmStop::Complete, "{outcome:?}");
    assert_eq!(outcome.orgs, 3);
    assert_eq!(api.calls().list_all_sync_metadata, 3);

    // Pages of two: page 1 ([1, 2]) arrives, page 2 fails three times. Org 1 stays cached;
    // org 2 is not (whether it goes on in page 2 is unknown): never cached in part.
    let api = world();
    api.pass_then_fail(1, (0..3).map(|_| CaseApiError::Unavailable("down".into())));
    let p = pipeline(api.clone(), config(2));
    let outcome = p.warm_caches().await;
    assert!(
        matches!(outcome.stop, WarmStop::Failed(CaseApiError::Unavailable(_))),
        "{outcome:?}"
    );
    assert_eq!((outcome.orgs, outcome.pages), (1, 1));
    assert!(cached(&p, 1).await.is_some());
    assert!(cached(&p, 2).await.is_none(), "never cached in part");
    assert_eq!(api.calls().list_all_sync_metadata, 4);

    // Not transient: no second try.
    let api = world();
    api.fail_next([CaseApiError::Unauthorized("no".into())]);
    let p = pipeline(api.clone(), config(500));
    let outcome = p.warm_caches().await;
    assert!(matches!(
        outcome.stop,
        WarmStop::Failed(CaseApiError::Unauthorized(_))
    ));
    assert_eq!(api.calls().list_all_sync_metadata, 1);
}

#[tokio::test]
async fn warming_stops_at_its_organization_bound_and_the_cache_capacity() {
    let api = world();
    let p = pipeline(
        api.clone(),
        PipelineConfig {
            warm_max_orgs: 2,
            ..config(500)
        },
    );
    let outcome = p.warm_caches().await;
    assert_eq!(outcome.stop, WarmStop::MaxOrgs);
    assert_eq!((outcome.orgs, outcome.entries), (2, 2));
    assert!(cached(&p, 2).await.is_some());
    assert!(cached(&p, 3).await.is_none());

    // The capacity bounds it too: more would evict what was just loaded.
    let p = pipeline(
        api.clone(),
        PipelineConfig {
            cache_capacity: 1,
            ..config(500)
        },
    );
    let outcome = p.warm_caches().await;
    assert_eq!((outcome.stop, outcome.orgs), (WarmStop::MaxOrgs, 1));

    // Exactly the bound and nothing after it: complete.
    let p = pipeline(
        api.clone(),
        PipelineConfig {
            warm_max_orgs: 3,
            ..config(500)
        },
    );
    assert_eq!(p.warm_caches().await.stop, WarmStop::Complete);

    // 0: off, nothing asked.
    let calls = api.calls().list_all_sync_metadata;
    let p = pipeline(
        api.clone(),
        PipelineConfig {
            warm_max_orgs: 0,
            ..config(500)
        },
    );
    let outcome = p.warm_caches().await;
    assert_eq!((outcome.stop, outcome.orgs), (WarmStop::Disabled, 0));
    assert_eq!(api.calls().list_all_sync_metadata, calls);
}

/// A `CaseApi` whose only answers are scripted pages of `list_all_sync_metadata`, each after a
/// delay; the look-ups find nothing.
#[derive(Debug)]
struct Listing {
    pages: Mutex<Vec<SyncMetadataPage>>,
    delay: Duration,
}

impl Listing {
    fn pages(pages: Vec<SyncMetadataPage>, delay: Duration) -> Self {
        Self {
            pages: Mutex::new(pages),
            delay,
        }
    }
}

#[async_trait]
impl CaseApi for Listing {
    async fn get_case(&self, _: u64, _: &str) -> Result<Option<Case>, CaseApiError> {
        Ok(None)
    }

    async fn find_case_by_external_reference(
        &self,
        _: u64,
        _: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        Ok(None)
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        Err(CaseApiError::NotFound(update.case_id.clone()))
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        Err(CaseApiError::NotFound(comment.case_id.clone()))
    }

    async fn list_comments(&self, _: u64, _: &str) -> Result<Vec<Comment>, CaseApiError> {
        Ok(Vec::new())
    }

    async fn get_project_settings(
        &self,
        _: u64,
        _: &str,
        _: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        Ok(None)
    }

    async fn list_sync_metadata(&self, _: u64, _: &str) -> Result<Vec<SyncMetadata>, CaseApiError> {
        Ok(Vec::new())
    }

    async fn resolve_user(&self, _: &UserQuery) -> Result<Option<User>, CaseApiError> {
        Ok(None)
    }

    async fn list_all_sync_metadata(
        &self,
        _: &str,
        _: Option<String>,
        _: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        tokio::time::sleep(self.delay).await;
        let mut pages = self.pages.lock().unwrap();
        if pages.is_empty() {
            return Err(CaseApiError::Internal("script exhausted".into()));
        }
        Ok(pages.remove(0))
    }
}

fn page(orgs: &[u64], next: Option<&str>) -> SyncMetadataPage {
    SyncMetadataPage {
        entries: orgs
            .iter()
            .map(|&org_id| SyncMetadataEntry {
                org_id,
                metadata: scope(org_id, "toy", &format!("p-{org_id}")),
            })
            .collect(),
        next_page_token: next.map(str::to_owned),
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_warming_and_keeps_what_it_cached() {
    // Pages of 10 s each; 25 s allowed: pages 1 and 2 arrive, the third never does.
    let api = Listing::pages(
        vec![
            page(&[1, 2], Some("a")),
            page(&[3, 4], Some("b")),
            page(&[5], None),
        ],
        Duration::from_secs(10),
    );
    let p = pipeline(
        Arc::new(api),
        PipelineConfig {
            warm_timeout: Duration::from_secs(25),
            ..config(2)
        },
    );
    let outcome = p.warm_caches().await;
    assert_eq!(outcome.stop, WarmStop::Deadline, "{outcome:?}");
    assert_eq!((outcome.orgs, outcome.pages), (3, 2));
    assert!(
        (Duration::from_secs(25)..Duration::from_secs(26)).contains(&outcome.elapsed),
        "{outcome:?}"
    );
    for org_id in [1, 2, 3] {
        assert!(cached(&p, org_id).await.is_some(), "org {org_id}");
    }
    assert!(
        cached(&p, 4).await.is_none(),
        "org 4 might have continued on page 3"
    );
}

#[tokio::test]
async fn a_listing_out_of_order_clears_the_cache() {
    let api = Listing::pages(
        vec![page(&[1, 2], Some("a")), page(&[3, 2], None)],
        Duration::ZERO,
    );
    let p = pipeline(Arc::new(api), config(2));
    let outcome = p.warm_caches().await;
    assert!(
        matches!(&outcome.stop, WarmStop::Inconsistent(why) if why.contains("organization 2")),
        "{outcome:?}"
    );
    assert_eq!(outcome.orgs, 0);
    assert!(p.metadata_cache().is_empty(), "org 2 was cached in part");
}

#[tokio::test]
async fn a_dry_run_warms_too() {
    let api = world();
    let p = pipeline(
        api.clone(),
        PipelineConfig {
            dry_run: true,
            ..config(500)
        },
    );
    assert_eq!(p.warm_caches().await.orgs, 3);
    assert_eq!(
        decisions(p.handle(&payload(&[title("ITEM-1", "new")])).await.unwrap()),
        [Decision::WouldApply]
    );
    assert_eq!(api.calls().list_sync_metadata, 0);
}
