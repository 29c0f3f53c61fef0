//! The seeded case-management world every end-to-end test starts from, and helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use integration_servicenow::{
    INTEGRATION, METADATA_INSTANCE_NAME, ServiceNowDecoder, ServiceNowFilterer, ServiceNowProcessor,
};
use serde_json::{Value, json};
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::contract::DEFAULT_NOW;
use thirdparty_core::{
    Case, CaseField, Decision, ExternalReference, ManualClock, MessageOutcome, Payload, Pipeline,
    PipelineConfig, SyncMetadata, SyncSettings, SyncType,
};
use time::macros::datetime;

/// The organization of every fixture.
pub const ORG: u64 = 123456;
/// The configured ServiceNow instance.
pub const INSTANCE: &str = "company";
/// The case project whose settings apply.
pub const PROJECT: &str = "proj-checkout";
/// A case found by id: the fixtures' `correlationId`. It has no external reference.
pub const CASE_A: &str = "3f2b6c1e-7d4a-4e2b-9a51-2c8d0e6f1a7b";
/// The incident of the events naming `CASE_A`.
pub const SYS_A: &str = "46d44a5dc0a8010e0106a1b2c3d4e5f6";
/// A case linked only by external reference to `SYS_B`.
pub const CASE_B: &str = "8a7c2d10-5b3e-4f61-b2a9-7e4d1c0f9b35";
/// The incident linked to `CASE_B`.
pub const SYS_B: &str = "9d3e5f7a1b2c4d6e8f0a1b2c3d4e5f6a";
/// The organization's own sync user, known only from its sync metadata.
pub const OWN_USER_ID: &str = "svc.case-sync";

/// Cases, settings and metadata before they are loaded into an [`InMemoryCaseApi`], so tests
/// can tweak them first.
#[derive(Debug, Clone)]
pub struct World {
    pub cases: Vec<Case>,
    pub settings: Vec<SyncSettings>,
    pub metadata: Vec<SyncMetadata>,
}

pub fn case(id: &str, status: &str, references: &[&str]) -> Case {
    Case {
        id: id.into(),
        org_id: ORG,
        project_id: PROJECT.into(),
        version: 1,
        title: "Checkout errors on EU storefront".into(),
        description: String::new(),
        priority: Some("P2".into()),
        status: status.into(),
        assignee_id: None,
        due_date: None,
        created_at: datetime!(2024-02-19 08:00 UTC),
        external_references: references
            .iter()
            .map(|r| ExternalReference::new(INTEGRATION, INSTANCE, *r))
            .collect(),
        source_watermarks: Vec::new(),
        last_writes: Default::default(),
    }
}

impl World {
    /// Case A (`OPEN`, by id), case B (`IN_PROGRESS`, by sys_id), bidirectional settings with
    /// states `1`->OPEN `2`->IN_PROGRESS `6`/`7`->CLOSED, instance `company` configured.
    pub fn new() -> Self {
        Self {
            cases: vec![
                case(CASE_A, "OPEN", &[]),
                case(CASE_B, "IN_PROGRESS", &[SYS_B]),
            ],
            settings: vec![SyncSettings {
                org_id: ORG,
                project_id: PROJECT.into(),
                integration: INTEGRATION.into(),
                integration_enabled: true,
                project_sync_enabled: true,
                sync_type: SyncType::Bidirectional,
                field_sync: BTreeMap::new(),
                comment_sync_enabled: true,
                work_note_sync_enabled: true,
                value_mappings: BTreeMap::from([(
                    CaseField::Status,
                    BTreeMap::from([
                        ("1".into(), "OPEN".into()),
                        ("2".into(), "IN_PROGRESS".into()),
                        ("6".into(), "CLOSED".into()),
                        ("7".into(), "CLOSED".into()),
                    ]),
                )]),
                custom_fields: BTreeMap::new(),
                start_syncing_from: Some(datetime!(2024-01-01 00:00 UTC)),
                conflict_policy: Default::default(),
                field_conflict_policies: Default::default(),
            }],
            metadata: vec![SyncMetadata {
                org_id: ORG,
                integration: INTEGRATION.into(),
                project_id: PROJECT.into(),
                scope: BTreeMap::from([(
                    METADATA_INSTANCE_NAME.into(),
                    BTreeSet::from([INSTANCE.into()]),
                )]),
                custom_fields: BTreeMap::new(),
                own_user_ids: BTreeSet::from([OWN_USER_ID.into()]),
            }],
        }
    }

    /// A case by id.
    pub fn case_mut(&mut self, id: &str) -> &mut Case {
        self.cases.iter_mut().find(|c| c.id == id).unwrap()
    }

    /// The project's ServiceNow settings.
    pub fn settings_mut(&mut self) -> &mut SyncSettings {
        self.settings.first_mut().unwrap()
    }

    /// An in-memory case API holding this world.
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
        api
    }
}

/// Every fixture, in the order the contract suite handles them (event times increase).
pub const FIXTURES: [&str; 8] = [
    "comment_only.json",
    "work_note_only.json",
    "state_change.json",
    "multiline_body.json",
    "numeric_state.json",
    "datadog_echo.json",
    "unconfigured_instance.json",
    "all_three.json",
];

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture as JSON, to derive variants from.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// A comment event on case A by `john.doe`.
pub fn comment_event(body: &str) -> Value {
    json!({
        "type": "datadog_x_incident", "orgId": ORG, "sysId": SYS_A, "instanceName": INSTANCE,
        "updatedAt": "2024-02-25T10:00:00Z", "updatedBy": "john.doe",
        "data": {"comment": body, "correlationId": CASE_A}
    })
}

/// The ServiceNow stages wired to `api`, with a clock at the contract suite's "now".
pub fn pipeline(api: Arc<InMemoryCaseApi>) -> Pipeline {
    Pipeline::builder(
        Arc::new(ServiceNowDecoder::new()),
        Arc::new(ServiceNowFilterer::default()),
        Arc::new(ServiceNowProcessor::new()),
        api,
    )
    .clock(Arc::new(ManualClock::new(DEFAULT_NOW)))
    .config(PipelineConfig::new(INTEGRATION))
    .build()
}

/// Handles one message and returns the decision for each changelog.
pub async fn decisions(pipeline: &Pipeline, value: &[u8]) -> Vec<Decision> {
    match pipeline.handle(&Payload::new(value.to_vec())).await {
        Ok(MessageOutcome::Handled(reports)) => reports.into_iter().map(|r| r.decision).collect(),
        other => panic!("not handled: {other:?}"),
    }
}

/// JSON bytes.
pub fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}
