//! A seeded world for the GitHub fixtures: cases linked to their issues on github.com, one
//! project whose settings map GitHub states and a `bug` label, and the fixtures' users.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use integration_github::{GitHubDecoder, GitHubFilterer, GitHubProcessor};
use serde_json::{Value, json};
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::contract::ContractSubject;
use thirdparty_core::{
    Case, CaseField, ChangelogReport, ExternalReference, ManualClock, MessageOutcome, Payload,
    Pipeline, SyncMetadata, SyncSettings, SyncType, User,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub const ORG: u64 = 123456;
pub const HOST: &str = "github.com";
pub const PROJECT: &str = "proj-gh";
/// After every fixture's events.
pub const NOW: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);
/// Codertocat/Hello-World#1, the issue of most fixtures.
pub const HELLO_WORLD_1: &str = "444500041";
pub const CASE_HELLO_WORLD_1: &str = "case-hello-world-1";
/// Codertocat's GitHub id.
pub const CODERTOCAT: &str = "21031067";

/// A webhook body GitHub sent, unchanged.
pub fn body(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

/// The Kafka message around a webhook body (`event`: the `X-GitHub-Event` header).
pub fn message(event: &str, webhook: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "orgId": ORG, "integration": "github", "host": HOST, "event": event,
        "deliveryId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "receivedAt": "2026-01-01T00:00:00Z", "webhook": webhook
    }))
    .unwrap()
}

/// The fixture as a message: `issues.*` and `issue_comment.*` by file name.
pub fn fixture(name: &str) -> Vec<u8> {
    let event = name.split('.').next().unwrap();
    message(event, body(name))
}

/// The fixtures that become changelogs, in their events' order per issue.
pub const FIXTURES: [&str; 11] = [
    "issues.edited.title",
    "issues.edited.body",
    "issues.edited.title-and-body",
    "issues.closed",
    "issues.labeled",
    "issues.assigned",
    "issue_comment.created",
    "issues.unassigned",
    "issues.unlabeled",
    "issues.reopened",
    "issues.edited.empty-changes",
];

fn case(id: &str, issue: &str, title: &str) -> Case {
    Case {
        id: id.into(),
        org_id: ORG,
        project_id: PROJECT.into(),
        version: 1,
        title: title.into(),
        description: String::new(),
        priority: None,
        status: "OPEN".into(),
        assignee_id: None,
        due_date: None,
        created_at: datetime!(2019-01-01 0:00 UTC),
        external_references: vec![ExternalReference::new("github", HOST, issue)],
        source_watermarks: Vec::new(),
        last_writes: Default::default(),
    }
}

pub fn settings() -> SyncSettings {
    SyncSettings {
        org_id: ORG,
        project_id: PROJECT.into(),
        integration: "github".into(),
        integration_enabled: true,
        project_sync_enabled: true,
        sync_type: SyncType::Bidirectional,
        field_sync: BTreeMap::new(),
        comment_sync_enabled: true,
        work_note_sync_enabled: true,
        value_mappings: BTreeMap::from([
            (
                CaseField::Status,
                BTreeMap::from([
                    ("open".into(), "OPEN".into()),
                    ("closed".into(), "CLOSED".into()),
                    ("closed:completed".into(), "RESOLVED".into()),
                ]),
            ),
            (
                CaseField::Priority,
                BTreeMap::from([("Bug".into(), "P2".into()), ("P1".into(), "P1".into())]),
            ),
        ]),
        custom_fields: BTreeMap::new(),
        start_syncing_from: None,
        conflict_policy: Default::default(),
        field_conflict_policies: Default::default(),
    }
}

pub fn metadata() -> SyncMetadata {
    SyncMetadata {
        org_id: ORG,
        integration: "github".into(),
        project_id: PROJECT.into(),
        scope: BTreeMap::from([("account_id".into(), BTreeSet::from([HOST.to_owned()]))]),
        custom_fields: BTreeMap::new(),
        own_user_ids: BTreeSet::from(["svc-case-sync".to_owned()]),
    }
}

/// The cases of every fixture's issue, the project, its scope and Codertocat as a case user.
pub fn api() -> InMemoryCaseApi {
    api_with(settings())
}

/// [`api`] with other settings for the project.
pub fn api_with(settings: SyncSettings) -> InMemoryCaseApi {
    let api = InMemoryCaseApi::new();
    for (id, issue, title) in [
        (
            CASE_HELLO_WORLD_1,
            HELLO_WORLD_1,
            "Spelling error in the README file",
        ),
        ("case-hephaestus-20", "3578496080", "Hephaestus test issue"),
        ("case-pritesh-6", "3779542785", "Pritesh test issue"),
        ("case-zulip-33", "3848333070", "Zulip test issue"),
    ] {
        api.insert_case(case(id, issue, title));
    }
    api.insert_settings(settings);
    api.insert_metadata(metadata());
    api.insert_user(
        User {
            id: "user-codertocat".into(),
            display_name: "Codertocat".into(),
            email: None,
        },
        &[CODERTOCAT],
    );
    api
}

pub fn pipeline(api: Arc<InMemoryCaseApi>) -> Pipeline {
    Pipeline::builder(
        Arc::new(GitHubDecoder::new()),
        Arc::new(GitHubFilterer::default()),
        Arc::new(GitHubProcessor::new()),
        api,
    )
    .clock(Arc::new(ManualClock::new(NOW)))
    .build()
}

/// Handles one message, which must decode; one report per changelog.
pub async fn handle(pipeline: &Pipeline, message: &[u8]) -> Vec<ChangelogReport> {
    match pipeline.handle(&Payload::new(message.to_vec())).await {
        Ok(MessageOutcome::Handled(reports)) => reports,
        other => panic!("message not handled: {other:?}"),
    }
}

pub fn contract_subject() -> ContractSubject {
    ContractSubject {
        decoder: Arc::new(GitHubDecoder::new()),
        filterer: Arc::new(GitHubFilterer::default()),
        processor: Arc::new(GitHubProcessor::new()),
        fixtures: FIXTURES.iter().map(|name| fixture(name)).collect(),
        api: api(),
        now: NOW,
    }
}
