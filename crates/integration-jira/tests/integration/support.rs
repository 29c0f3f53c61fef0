//! The seeded world every end-to-end test starts from, consistent with the fixtures:
//!
//! - org 123456; Jira Cloud site `acme.atlassian.net` (project 10000 `PROJ`, issue types
//!   10001/10002; project 10010 `OPS` whose `customfield_10015` is the due date) and Jira Server
//!   `jira.acme.internal` (project 10200);
//! - case `case-proj-12` linked to issue 10002 (PROJ-12), `case-ops-7` to 10040 (OPS-7), both in
//!   case project `proj-1`; `case-onprem-3` linked to Server issue 20417 (OPS-3) in
//!   `proj-onprem`;
//! - priority ids 1..5 -> P1..P5; Cloud statuses 10000 OPEN, 3 IN_PROGRESS, 10001 CLOSED;
//!   Server statuses 1 OPEN, 3 IN_PROGRESS, 6 CLOSED.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use integration_jira::{INTEGRATION, JiraDecoder, JiraFilterer, JiraProcessor};
use serde_json::Value;
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::contract::ContractSubject;
use thirdparty_core::{
    Case, CaseField, ChangelogReport, ExternalReference, ManualClock, MessageOutcome, Payload,
    Pipeline, SyncMetadata, SyncSettings, SyncType, User,
};
use time::OffsetDateTime;
use time::macros::datetime;

pub const ORG: u64 = 123456;
/// The pipeline clock: after every fixture's event.
pub const NOW: OffsetDateTime = datetime!(2024-12-01 00:00 UTC);

pub const JANE: &str = "5b10ac8d82e05b22cc7d4ef5";
pub const JOHN: &str = "5b109f2e9729b51b54dc274d";
pub const PRIYA: &str = "712020:7e3b2c1a-9f4d-4c3e-8a51-2f0d6c1b9e77";
/// Our Cloud sync user, listed in the org metadata.
pub const CLOUD_SYNC_BOT: &str = "557058:3c1d9a7e-5f2b-4e8a-9d0c-7b6e5a4f3e21";
/// Our Server sync user, listed in the org metadata.
pub const SERVER_SYNC_BOT: &str = "datadog-sync";
/// A sync account configured on the filterer itself (not in any metadata).
pub const CONFIGURED_SYNC_ACCOUNT: &str = "svc-case-sync";

pub const CASE_PROJ_12: &str = "case-proj-12";
pub const CASE_OPS_7: &str = "case-ops-7";
pub const CASE_ONPREM_3: &str = "case-onprem-3";

/// Every fixture, in the chronological order of their events.
pub const FIXTURES: [&str; 7] = [
    "cloud_issue_created",
    "cloud_issue_updated",
    "cloud_comment_created",
    "cloud_issue_updated_account_only",
    "cloud_custom_due_date",
    "server_issue_updated",
    "server_comment_created",
];

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

pub fn strings<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

pub fn case(id: &str, project: &str, site: &str, reference: &str, title: &str) -> Case {
    Case {
        id: id.to_owned(),
        org_id: ORG,
        project_id: project.to_owned(),
        version: 1,
        title: title.to_owned(),
        description: String::new(),
        priority: Some("P3".to_owned()),
        status: "OPEN".to_owned(),
        assignee_id: None,
        due_date: None,
        created_at: datetime!(2024-01-15 09:00 UTC),
        external_references: vec![ExternalReference::new(INTEGRATION, site, reference)],
        source_watermarks: Vec::new(),
        last_writes: Default::default(),
    }
}

fn settings(project: &str, statuses: [(&str, &str); 3], sync_type: SyncType) -> SyncSettings {
    let priorities = (1..=5).map(|i| (i.to_string(), format!("P{i}"))).collect();
    let statuses = statuses
        .into_iter()
        .map(|(id, name)| (id.to_owned(), name.to_owned()))
        .collect();
    SyncSettings {
        org_id: ORG,
        project_id: project.to_owned(),
        integration: INTEGRATION.to_owned(),
        integration_enabled: true,
        project_sync_enabled: true,
        sync_type,
        field_sync: BTreeMap::new(),
        comment_sync_enabled: true,
        work_note_sync_enabled: true,
        value_mappings: BTreeMap::from([
            (CaseField::Priority, priorities),
            (CaseField::Status, statuses),
        ]),
        custom_fields: BTreeMap::new(),
        start_syncing_from: Some(datetime!(2024-01-01 00:00 UTC)),
        conflict_policy: Default::default(),
        field_conflict_policies: Default::default(),
    }
}

pub fn metadata(
    project: &str,
    scope: &[(&str, BTreeSet<String>)],
    custom_fields: &[(&str, CaseField)],
    own: BTreeSet<String>,
) -> SyncMetadata {
    SyncMetadata {
        org_id: ORG,
        integration: INTEGRATION.to_owned(),
        project_id: project.to_owned(),
        scope: scope
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        custom_fields: custom_fields
            .iter()
            .map(|(k, f)| ((*k).to_owned(), *f))
            .collect(),
        own_user_ids: own,
    }
}

fn user(id: &str, name: &str) -> User {
    User {
        id: id.to_owned(),
        display_name: name.to_owned(),
        email: None,
    }
}

/// Plain data, editable by a test before it becomes an [`InMemoryCaseApi`].
#[derive(Debug, Clone)]
pub struct World {
    pub cases: Vec<Case>,
    pub settings: Vec<SyncSettings>,
    pub metadata: Vec<SyncMetadata>,
    pub users: Vec<(User, Vec<&'static str>)>,
}

impl World {
    pub fn seeded() -> Self {
        let mut proj12 = case(
            CASE_PROJ_12,
            "proj-1",
            "acme.atlassian.net",
            "10002",
            "Checkout latency above SLO",
        );
        proj12.description = "Customers report slow checkout.".to_owned();
        let ops7 = case(
            CASE_OPS_7,
            "proj-1",
            "acme.atlassian.net",
            "10040",
            "Rotate TLS certificates on edge proxies",
        );
        let mut onprem3 = case(
            CASE_ONPREM_3,
            "proj-onprem",
            "jira.acme.internal",
            "20417",
            "Disk pressure on build agents",
        );
        onprem3.assignee_id = Some("user-jdoe".to_owned());
        let cloud = strings(["acme.atlassian.net"]);
        Self {
            cases: vec![proj12, ops7, onprem3],
            settings: vec![
                settings(
                    "proj-1",
                    [("10000", "OPEN"), ("3", "IN_PROGRESS"), ("10001", "CLOSED")],
                    SyncType::Bidirectional,
                ),
                settings(
                    "proj-onprem",
                    [("1", "OPEN"), ("3", "IN_PROGRESS"), ("6", "CLOSED")],
                    SyncType::OneWayPull,
                ),
            ],
            metadata: vec![
                metadata(
                    "proj-1",
                    &[
                        ("account_id", cloud.clone()),
                        ("project_id", strings(["10000"])),
                        ("issue_type_id", strings(["10001", "10002"])),
                    ],
                    &[],
                    strings([CLOUD_SYNC_BOT]),
                ),
                metadata(
                    "proj-1",
                    &[("account_id", cloud), ("project_id", strings(["10010"]))],
                    &[("customfield_10015", CaseField::DueDate)],
                    strings([CLOUD_SYNC_BOT]),
                ),
                metadata(
                    "proj-onprem",
                    &[("account_id", strings(["jira.acme.internal"]))],
                    &[],
                    strings([SERVER_SYNC_BOT]),
                ),
            ],
            users: vec![
                (user("user-jane", "Jane Doe"), vec![JANE]),
                (user("user-john", "John Smith"), vec![JOHN]),
                (user("user-priya", "Priya Raman"), vec![PRIYA]),
                (user("user-jdoe", "John Doe"), vec!["jdoe"]),
                (user("user-alice", "Alice Smith"), vec!["asmith"]),
            ],
        }
    }

    pub fn case_mut(&mut self, id: &str) -> &mut Case {
        self.cases.iter_mut().find(|c| c.id == id).unwrap()
    }

    pub fn settings_mut(&mut self, project: &str) -> &mut SyncSettings {
        self.settings
            .iter_mut()
            .find(|s| s.project_id == project)
            .unwrap()
    }

    pub fn api(&self) -> InMemoryCaseApi {
        let api = InMemoryCaseApi::new();
        for c in &self.cases {
            api.insert_case(c.clone());
        }
        for s in &self.settings {
            api.insert_settings(s.clone());
        }
        for m in &self.metadata {
            api.insert_metadata(m.clone());
        }
        for (u, ids) in &self.users {
            api.insert_user(u.clone(), ids);
        }
        api
    }
}

pub fn filterer() -> JiraFilterer {
    JiraFilterer::new([CONFIGURED_SYNC_ACCOUNT])
}

pub fn pipeline(api: Arc<InMemoryCaseApi>) -> Pipeline {
    Pipeline::builder(
        Arc::new(JiraDecoder::new()),
        Arc::new(filterer()),
        Arc::new(JiraProcessor::new()),
        api,
    )
    .clock(Arc::new(ManualClock::new(NOW)))
    .build()
}

/// Handles one message, which must decode; returns one report per changelog.
pub async fn handle(pipeline: &Pipeline, message: &[u8]) -> Vec<ChangelogReport> {
    match pipeline.handle(&Payload::new(message.to_vec())).await {
        Ok(MessageOutcome::Handled(reports)) => reports,
        other => panic!("message not handled: {other:?}"),
    }
}

pub fn contract_subject() -> ContractSubject {
    ContractSubject {
        decoder: Arc::new(JiraDecoder::new()),
        filterer: Arc::new(filterer()),
        processor: Arc::new(JiraProcessor::new()),
        fixtures: FIXTURES.iter().map(|name| fixture(name)).collect(),
        api: World::seeded().api(),
        now: NOW,
    }
}
