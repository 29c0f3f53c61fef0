//! A toy integration (changelogs as JSON), a seeded in-memory case API and helpers, shared by
//! the pipeline's integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::sync::Arc;

use async_trait::async_trait;
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::*;
use time::OffsetDateTime;
use time::macros::datetime;

pub const NOW: OffsetDateTime = datetime!(2024-06-01 12:00 UTC);
pub const EVENT: OffsetDateTime = datetime!(2024-06-01 11:59 UTC);

/// Decodes a JSON array of changelogs, as printed by `decode`.
#[derive(Debug)]
pub struct ToyDecoder;

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
pub struct ToyFilterer;

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
        if let Some(reason) = case.changelog_ordering_reason(field, changelog) {
            return Some(reason);
        }
        if let Some(reason) = case.conflict_reason(field, settings.conflict_policy(field), None) {
            return Some(reason);
        }
        if case.field_value(field) == changelog.to_string {
            return Some(FilterReason::NoChange);
        }
        None
    }
}

#[derive(Debug)]
pub struct ToyProcessor;

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
                    writer: UpdateWriter::sync(changelog),
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

pub fn case(id: &str, reference: &str) -> Case {
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
        external_references: vec![ExternalReference::new("toy", "", reference)],
        source_watermarks: Vec::new(),
        last_writes: Default::default(),
    }
}

pub fn seeded() -> Arc<InMemoryCaseApi> {
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
        conflict_policy: Default::default(),
        field_conflict_policies: Default::default(),
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

/// The toy integration over `api`, on a manual clock at [`NOW`].
pub fn pipeline(api: Arc<dyn CaseApi>, config: PipelineConfig) -> Pipeline {
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

pub fn title(item: &str, to: &str) -> Changelog {
    let mut c = Changelog::new("toy", 1, ChangelogType::UpdateTitle, item, EVENT);
    c.to_string = Some(to.into());
    c
}

pub fn payload(changelogs: &[Changelog]) -> Payload {
    Payload::new(serde_json::to_vec(changelogs).unwrap())
}

pub fn decisions(outcome: MessageOutcome) -> Vec<Decision> {
    match outcome {
        MessageOutcome::Handled(reports) => reports.into_iter().map(|r| r.decision).collect(),
        other => panic!("not handled: {other:?}"),
    }
}
