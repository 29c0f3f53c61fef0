//! The contract every [`CaseApi`] implementation honours, as generic checks over one seeded
//! world. An implementation invokes them all once with [`crate::case_api_contract_tests!`],
//! giving an async function that seeds a fresh instance with a [`World`] and returns it:
//!
//! ```ignore
//! thirdparty_core::case_api_contract_tests!(crate::seeded_store);
//! ```
//!
//! Run for the in-memory fake (`thirdparty-core`), the sandbox's SQLite store and the gRPC
//! client against the sandbox (`case-api-sandbox`): the fake the integrations test against
//! behaves as the service does.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;
use time::macros::datetime;

use crate::case::{
    Case, CaseUpdate, ExternalReference, FieldChange, NewComment, SyncMetadata, SyncMetadataEntry,
    SyncSettings, SyncType, UpdateWriter, User, UserQuery,
};
use crate::case_api::CaseApi;
use crate::changelog::{Author, CaseField, Changelog, ChangelogType};
use crate::error::CaseApiError;

/// The organization of the world.
pub const ORG: u64 = 4242;
/// Another organization, with nothing in it.
pub const OTHER_ORG: u64 = 4343;
/// A third organization, with two sync scopes and nothing else.
pub const SCOPED_ORG: u64 = 4444;
/// The integration of the world.
pub const INTEGRATION: &str = "contract";
/// Another integration, with one sync scope of [`ORG`].
pub const OTHER_INTEGRATION: &str = "contract-other";
/// Case A: item `1` on site `a.example.com`.
pub const CASE_A: &str = "case-contract-a";
/// Case B: item `1` on site `b.example.com` (same id, another site).
pub const CASE_B: &str = "case-contract-b";
const CREATED: OffsetDateTime = datetime!(2024-01-01 0:00 UTC);

/// What an implementation is seeded with before each check.
#[derive(Debug, Clone)]
pub struct World {
    /// The organizations (ids).
    pub orgs: Vec<u64>,
    /// Cases.
    pub cases: Vec<Case>,
    /// Project settings.
    pub settings: Vec<SyncSettings>,
    /// Sync metadata.
    pub metadata: Vec<SyncMetadata>,
    /// Users, each with its ids in [`INTEGRATION`].
    pub users: Vec<(u64, User, Vec<String>)>,
}

fn case(id: &str, site: &str) -> Case {
    Case {
        id: id.into(),
        org_id: ORG,
        project_id: "project-1".into(),
        version: 1,
        title: format!("Title of {id}"),
        description: String::new(),
        priority: Some("P3".into()),
        status: "OPEN".into(),
        assignee_id: None,
        due_date: None,
        created_at: CREATED,
        external_references: vec![ExternalReference::new(INTEGRATION, site, "1")],
        source_watermarks: Vec::new(),
        last_writes: Default::default(),
    }
}

/// A sync scope of `org_id` for `integration`, applying to `project_id`.
fn scope(org_id: u64, integration: &str, project_id: &str, account: &str) -> SyncMetadata {
    SyncMetadata {
        org_id,
        integration: integration.into(),
        project_id: project_id.into(),
        scope: BTreeMap::from([("account_id".into(), BTreeSet::from([account.to_owned()]))]),
        custom_fields: BTreeMap::new(),
        own_user_ids: BTreeSet::new(),
    }
}

/// The world every check starts from.
pub fn world() -> World {
    World {
        orgs: vec![ORG, OTHER_ORG, SCOPED_ORG],
        cases: vec![case(CASE_A, "a.example.com"), case(CASE_B, "b.example.com")],
        settings: vec![SyncSettings {
            org_id: ORG,
            project_id: "project-1".into(),
            integration: INTEGRATION.into(),
            integration_enabled: true,
            project_sync_enabled: true,
            sync_type: SyncType::Bidirectional,
            field_sync: BTreeMap::new(),
            comment_sync_enabled: true,
            work_note_sync_enabled: false,
            value_mappings: BTreeMap::from([(
                CaseField::Status,
                BTreeMap::from([("1".into(), "OPEN".into())]),
            )]),
            custom_fields: BTreeMap::new(),
            start_syncing_from: None,
            conflict_policy: Default::default(),
            field_conflict_policies: Default::default(),
        }],
        // Not in listing order: by organization first, an organization's in this order.
        metadata: vec![
            scope(SCOPED_ORG, INTEGRATION, "project-2", "c.example.com"),
            SyncMetadata {
                own_user_ids: BTreeSet::from(["bot-1".to_owned()]),
                ..scope(ORG, INTEGRATION, "project-1", "a.example.com")
            },
            scope(ORG, OTHER_INTEGRATION, "project-1", "a.example.com"),
            scope(SCOPED_ORG, INTEGRATION, "project-3", "d.example.com"),
        ],
        users: vec![(
            ORG,
            User {
                id: "user-jane".into(),
                display_name: "Jane Doe".into(),
                email: None,
            },
            vec!["jane-1".into()],
        )],
    }
}

fn sync_update(case: &Case, change: FieldChange, at: OffsetDateTime) -> CaseUpdate {
    let mut changelog = Changelog::new(INTEGRATION, ORG, ChangelogType::UpdateTitle, "1", at);
    changelog.site = "a.example.com".into();
    if let FieldChange::Title(title) = &change {
        changelog.to_string = Some(title.clone());
    }
    CaseUpdate {
        org_id: ORG,
        case_id: case.id.clone(),
        expected_version: case.version,
        change,
        writer: UpdateWriter::sync(&changelog),
    }
}

fn comment(key: &str, body: &str) -> NewComment {
    NewComment {
        org_id: ORG,
        case_id: CASE_A.into(),
        idempotency_key: key.into(),
        body: body.into(),
        author: Author {
            id: Some("jane-1".into()),
            display_name: Some("Jane".into()),
        },
        is_work_note: false,
        integration: INTEGRATION.into(),
        source_event_time: CREATED,
    }
}

/// Look-ups: a case by id, by (integration, site, id) reference (two sites with the same item id
/// are two cases), and absence as `Ok(None)`.
pub async fn look_ups_are_site_scoped_and_absence_is_none(api: &dyn CaseApi) {
    let a = api.get_case(ORG, CASE_A).await.unwrap().unwrap();
    assert_eq!(
        (a.id.as_str(), a.version, a.status.as_str()),
        (CASE_A, 1, "OPEN")
    );
    assert_eq!(api.get_case(ORG, "no-such-case").await.unwrap(), None);
    let on = |site: &str| ExternalReference::new(INTEGRATION, site, "1");
    let found = |c: Option<Case>| c.map(|c| c.id);
    assert_eq!(
        found(
            api.find_case_by_external_reference(ORG, &on("a.example.com"))
                .await
                .unwrap()
        ),
        Some(CASE_A.into())
    );
    assert_eq!(
        found(
            api.find_case_by_external_reference(ORG, &on("b.example.com"))
                .await
                .unwrap()
        ),
        Some(CASE_B.into())
    );
    assert_eq!(
        api.find_case_by_external_reference(ORG, &on("c.example.com"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        api.find_case_by_external_reference(OTHER_ORG, &on("a.example.com"))
            .await
            .unwrap(),
        None,
        "another organization's reference"
    );
}

/// A write at the case's version bumps it and stores the value, the watermark and the change
/// key; a write at a stale version is a version mismatch and changes nothing; a write to a case
/// that does not exist is not found.
pub async fn versioned_writes_and_watermarks(api: &dyn CaseApi) {
    let case = api.get_case(ORG, CASE_A).await.unwrap().unwrap();
    let at = datetime!(2024-06-01 10:00 UTC);
    let update = sync_update(&case, FieldChange::Title("New title".into()), at);
    let after = api.update_case(&update).await.unwrap();
    assert_eq!((after.version, after.title.as_str()), (2, "New title"));
    let stored = api.get_case(ORG, CASE_A).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    let item = ExternalReference::new(INTEGRATION, "a.example.com", "1");
    let mark = stored.watermark(CaseField::Title, &item).unwrap();
    assert_eq!(mark.at, at);
    assert_eq!(mark.change_keys.len(), 1);

    let stale = sync_update(&case, FieldChange::Title("Lost".into()), at);
    match api.update_case(&stale).await {
        Err(CaseApiError::VersionMismatch { case_id, expected }) => {
            assert_eq!((case_id.as_str(), expected), (CASE_A, 1))
        }
        other => panic!("a stale write: {other:?}"),
    }
    assert_eq!(
        api.get_case(ORG, CASE_A).await.unwrap().unwrap().title,
        "New title",
        "a stale write changes nothing"
    );
    let mut missing = sync_update(&stored, FieldChange::Title("x".into()), at);
    missing.case_id = "no-such-case".into();
    assert!(
        matches!(
            api.update_case(&missing).await,
            Err(CaseApiError::NotFound(_))
        ),
        "a write to no case"
    );
    // The other site's case is another case.
    assert_eq!(api.get_case(ORG, CASE_B).await.unwrap().unwrap().version, 1);
}

/// Comments are idempotent by key: a repeat returns the first with `created: false`; the list
/// is oldest first and keeps body, author and key.
pub async fn comments_are_idempotent_by_key(api: &dyn CaseApi) {
    let first = api
        .add_comment(&comment("k-1", "  first\nline "))
        .await
        .unwrap();
    assert!(first.created);
    let again = api.add_comment(&comment("k-1", "changed")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.comment.id, first.comment.id);
    assert_eq!(again.comment.body, "  first\nline ");
    let second = api.add_comment(&comment("k-2", "second")).await.unwrap();
    assert!(second.created);
    let listed = api.list_comments(ORG, CASE_A).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|c| c.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["k-1", "k-2"]);
    assert_eq!(listed[0].author.id.as_deref(), Some("jane-1"));
    assert!(api.list_comments(ORG, CASE_B).await.unwrap().is_empty());
}

/// Settings, metadata and users: what was seeded, for its organization and integration only.
pub async fn settings_metadata_and_users(api: &dyn CaseApi) {
    let settings = api
        .get_project_settings(ORG, "project-1", INTEGRATION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settings.map_value(CaseField::Status, "1"), Some("OPEN"));
    assert_eq!(
        api.get_project_settings(ORG, "project-1", "other")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        api.get_project_settings(ORG, "project-2", INTEGRATION)
            .await
            .unwrap(),
        None
    );
    let metadata = api.list_sync_metadata(ORG, INTEGRATION).await.unwrap();
    assert_eq!(metadata.len(), 1);
    assert!(metadata[0].own_user_ids.contains("bot-1"));
    assert!(
        api.list_sync_metadata(OTHER_ORG, INTEGRATION)
            .await
            .unwrap()
            .is_empty()
    );
    let query = |id: &str| UserQuery {
        org_id: ORG,
        integration: INTEGRATION.into(),
        external_id: Some(id.into()),
        display_name: None,
        email: None,
    };
    assert_eq!(
        api.resolve_user(&query("jane-1"))
            .await
            .unwrap()
            .map(|u| u.id),
        Some("user-jane".into())
    );
    assert_eq!(api.resolve_user(&query("nobody")).await.unwrap(), None);
}

/// Every page of `list_all_sync_metadata(integration)` at `page_size`, gathered (at most
/// `max_pages`, each at most `page_size` entries when it is not 0).
async fn list_all(
    api: &dyn CaseApi,
    integration: &str,
    page_size: u32,
    max_pages: usize,
) -> (Vec<SyncMetadataEntry>, usize) {
    let (mut entries, mut pages, mut token) = (Vec::new(), 0, None);
    loop {
        let page = api
            .list_all_sync_metadata(integration, token, page_size)
            .await
            .unwrap();
        pages += 1;
        assert!(pages <= max_pages, "more than {max_pages} pages");
        if page_size > 0 {
            assert!(page.entries.len() <= page_size as usize, "{page:?}");
        }
        entries.extend(page.entries);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return (entries, pages),
        }
    }
}

/// Every organization's sync metadata for an integration, in pages: ordered by organization
/// (an organization's as `list_sync_metadata` orders them), so gathering an organization's
/// entries gives exactly its `list_sync_metadata` answer, whatever the page size and however
/// the pages split an organization; other integrations' scopes are not listed; the last page
/// has no token; a token the implementation did not issue is invalid.
pub async fn all_sync_metadata_is_listed_in_pages(api: &dyn CaseApi) {
    let mut expected = Vec::new();
    for org_id in [ORG, SCOPED_ORG] {
        for metadata in api.list_sync_metadata(org_id, INTEGRATION).await.unwrap() {
            expected.push(SyncMetadataEntry { org_id, metadata });
        }
    }
    let projects: Vec<&str> = expected
        .iter()
        .map(|e| e.metadata.project_id.as_str())
        .collect();
    assert_eq!(projects, ["project-1", "project-2", "project-3"]);

    // Two pages at most two a page: the second organization's scopes are split between them.
    let first = api
        .list_all_sync_metadata(INTEGRATION, None, 2)
        .await
        .unwrap();
    assert!(first.next_page_token.is_some(), "a second page: {first:?}");
    for (page_size, pages) in [(2, 2), (1, 3), (0, 1), (1000, 1)] {
        let (listed, got) = list_all(api, INTEGRATION, page_size, pages).await;
        assert_eq!(listed, expected, "page size {page_size}");
        assert_eq!(got, pages, "pages of {page_size}");
    }

    let (other, _) = list_all(api, OTHER_INTEGRATION, 0, 1).await;
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(
        (other[0].org_id, other[0].metadata.integration.as_str()),
        (ORG, OTHER_INTEGRATION)
    );
    let nothing = api
        .list_all_sync_metadata("no-such-integration", None, 0)
        .await
        .unwrap();
    assert!(nothing.entries.is_empty() && nothing.next_page_token.is_none());
    assert!(
        matches!(
            api.list_all_sync_metadata(INTEGRATION, Some("not-a-token".into()), 2)
                .await,
            Err(CaseApiError::InvalidArgument(_))
        ),
        "a token that was never issued"
    );
}

/// Invokes the whole `CaseApi` contract suite: one test per check. The argument is a path to an
/// `async fn(World) -> T` returning a seeded instance, where `T: AsRef<dyn CaseApi>` (an
/// `Arc<dyn CaseApi>`, or a holder that also keeps a server alive). The calling crate needs
/// `tokio` (macros, rt) as a dev-dependency.
#[macro_export]
macro_rules! case_api_contract_tests {
    ($seeded:path) => {
        mod case_api_contract_suite {
            use $crate::testkit::case_api_contract as contract;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn look_ups_are_site_scoped_and_absence_is_none() {
                let api = $seeded(contract::world()).await;
                contract::look_ups_are_site_scoped_and_absence_is_none(api.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn versioned_writes_and_watermarks() {
                let api = $seeded(contract::world()).await;
                contract::versioned_writes_and_watermarks(api.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn comments_are_idempotent_by_key() {
                let api = $seeded(contract::world()).await;
                contract::comments_are_idempotent_by_key(api.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn settings_metadata_and_users() {
                let api = $seeded(contract::world()).await;
                contract::settings_metadata_and_users(api.as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_sync_metadata_is_listed_in_pages() {
                let api = $seeded(contract::world()).await;
                contract::all_sync_metadata_is_listed_in_pages(api.as_ref()).await;
            }
        }
    };
}
