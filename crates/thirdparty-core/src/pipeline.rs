//! The pipeline runner: decode -> pre-filter -> look up case and settings -> filter -> process.
//!
//! [`Pipeline::handle`] handles one message. It returns `Ok` when the message may be
//! acknowledged (every changelog applied, filtered with a reason, or rejected by a skip-class
//! error; or the message skipped, undecodable or discarded) and `Err` only for retry-class
//! errors: the caller backs off and calls `handle` again with the same message, which is safe
//! because every effect is idempotent.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};
use tracing::Instrument;

use crate::cache::{
    DEFAULT_CAPACITY, DEFAULT_NEGATIVE_TTL, DEFAULT_TTL, MetadataCache, SettingsCache,
};
use crate::case::{Case, CaseUpdate, ExternalReference, NewComment, SyncSettings, UpdateWriter};
use crate::case_api::{CaseApi, Traced};
use crate::changelog::Changelog;
use crate::clock::{Clock, SystemClock};
use crate::decision::{DecisionKind, DecisionRecord, DecisionSink};
use crate::decoder::Decoder;
use crate::error::{CaseApiError, DecodeError, ErrorClass, HandleError, truncate_for_log};
use crate::filter_reason::FilterReason;
use crate::filterer::{CaseLookup, Filterer, PreFilterContext};
use crate::processor::{ProcessOutcome, Processor};
use crate::read_only::ReadOnly;
use crate::skip_list::{MessagePosition, SkipList};
use crate::telemetry::{Telemetry, spans};
use crate::warm::{DEFAULT_WARM_MAX_ORGS, DEFAULT_WARM_PAGE_SIZE, DEFAULT_WARM_TIMEOUT};

/// One message to handle.
#[derive(Debug)]
pub struct Payload {
    /// The message value.
    pub value: Vec<u8>,
    /// Where it sits in Kafka, when it comes from Kafka.
    pub position: Option<MessagePosition>,
    /// The value decoded by [`Pipeline::prepare`], taken by the first try of [`Pipeline::handle`]
    /// (a retry, which is rare, decodes again); `None` until prepared and after that try.
    decoded: Mutex<Option<Result<Vec<Changelog>, DecodeError>>>,
}

impl Payload {
    /// A payload without a Kafka position (CLI, tests).
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self {
            value: value.into(),
            position: None,
            decoded: Mutex::new(None),
        }
    }

    /// A payload read from Kafka at `position`.
    pub fn at(value: impl Into<Vec<u8>>, position: MessagePosition) -> Self {
        Self {
            value: value.into(),
            position: Some(position),
            decoded: Mutex::new(None),
        }
    }

    /// The changelogs [`Pipeline::prepare`] decoded, if they are still here (taken once).
    fn take_decoded(&self) -> Option<Result<Vec<Changelog>, DecodeError>> {
        self.decoded.lock().ok()?.take()
    }
}

/// What became of one changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Written to the case.
    Applied,
    /// Passed every filter; not written because the pipeline runs dry.
    WouldApply,
    /// Dropped for a reason.
    Filtered(FilterReason),
    /// The API refused it with a skip-class error (e.g. `INVALID_ARGUMENT`).
    Rejected(HandleError),
}

/// A changelog and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogReport {
    /// The changelog (after any pre-filter rewrite).
    pub changelog: Changelog,
    /// What became of it.
    pub decision: Decision,
    /// The case it was for, when one was found.
    pub case_id: Option<String>,
    /// The case's project, when a case was found.
    pub project_id: Option<String>,
    /// The project's sync settings that decided it, when they were found.
    pub settings: Option<Arc<SyncSettings>>,
}

/// What looking a changelog's case and settings up gave.
#[derive(Debug)]
enum LookedUp {
    /// The case and its project's settings.
    Found(Box<Case>, Arc<SyncSettings>),
    /// No case or no settings, for this reason.
    Drop(FilterReason),
}

/// What the look-ups of one changelog found (for its report and decision record).
#[derive(Debug, Default)]
struct Found {
    case_id: Option<String>,
    project_id: Option<String>,
    settings: Option<Arc<SyncSettings>>,
}

/// What became of one message (every variant may be acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Skipped by the operator skip list.
    Skipped,
    /// Undecodable (skip class) or discarded (discard class).
    Undecodable(HandleError),
    /// Decoded; one report per changelog.
    Handled(Vec<ChangelogReport>),
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The flavor name used in metric names and tags (the integration's name by default).
    pub flavor: String,
    /// How many times a version conflict re-reads the case and filters again before the
    /// message is handed to the retry policy (never dropped, never counted as filtered).
    pub max_conflict_retries: u32,
    /// Decide but never write.
    pub dry_run: bool,
    /// Freshness of cached settings and metadata.
    pub cache_ttl: Duration,
    /// Freshness of a cached negative answer (no settings for the project, no sync metadata for
    /// the organization), so a newly configured project is seen soon; at most `cache_ttl`.
    pub negative_cache_ttl: Duration,
    /// Entries per cache.
    pub cache_capacity: usize,
    /// The most organizations [`Pipeline::warm_caches`] caches (never more than
    /// `cache_capacity`: more would evict what it just loaded); 0 turns warming off.
    pub warm_max_orgs: usize,
    /// How long [`Pipeline::warm_caches`] may take before it gives up and leaves the rest cold.
    pub warm_timeout: std::time::Duration,
    /// Entries [`Pipeline::warm_caches`] asks for per page.
    pub warm_page_size: u32,
}

impl PipelineConfig {
    /// Defaults for a flavor: 3 conflict retries, 5-minute caches (30 s for negative answers),
    /// writes enabled, warming of up to [`DEFAULT_WARM_MAX_ORGS`] organizations within
    /// [`DEFAULT_WARM_TIMEOUT`].
    pub fn new(flavor: impl Into<String>) -> Self {
        Self {
            flavor: flavor.into(),
            max_conflict_retries: 3,
            dry_run: false,
            cache_ttl: DEFAULT_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_TTL,
            cache_capacity: DEFAULT_CAPACITY,
            warm_max_orgs: DEFAULT_WARM_MAX_ORGS,
            warm_timeout: DEFAULT_WARM_TIMEOUT,
            warm_page_size: DEFAULT_WARM_PAGE_SIZE,
        }
    }
}

/// The stages of one integration wired to a case API.
#[derive(Debug)]
pub struct Pipeline {
    decoder: Arc<dyn Decoder>,
    filterer: Arc<dyn Filterer>,
    processor: Arc<dyn Processor>,
    api: Traced<Arc<dyn CaseApi>>,
    metadata: MetadataCache,
    settings: SettingsCache,
    skip_list: Arc<SkipList>,
    clock: Arc<dyn Clock>,
    telemetry: Telemetry,
    config: PipelineConfig,
    /// Where decision records go besides the log.
    decisions: Option<Arc<dyn DecisionSink>>,
}

/// Builds a [`Pipeline`].
#[derive(Debug)]
pub struct PipelineBuilder {
    decoder: Arc<dyn Decoder>,
    filterer: Arc<dyn Filterer>,
    processor: Arc<dyn Processor>,
    api: Arc<dyn CaseApi>,
    skip_list: Arc<SkipList>,
    clock: Arc<dyn Clock>,
    config: PipelineConfig,
    decisions: Option<Arc<dyn DecisionSink>>,
}

impl PipelineBuilder {
    /// Also hands every decision record to `sink` (the decisions topic).
    pub fn decision_sink(mut self, sink: Arc<dyn DecisionSink>) -> Self {
        self.decisions = Some(sink);
        self
    }

    /// Uses this skip list (shared with whoever reloads it).
    pub fn skip_list(mut self, skip_list: Arc<SkipList>) -> Self {
        self.skip_list = skip_list;
        self
    }

    /// Uses this clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this configuration.
    pub fn config(mut self, config: PipelineConfig) -> Self {
        self.config = config;
        self
    }

    /// The pipeline.
    pub fn build(self) -> Pipeline {
        let c = &self.config;
        Pipeline {
            metadata: MetadataCache::metadata(
                c.cache_capacity,
                c.cache_ttl,
                c.negative_cache_ttl,
                self.clock.clone(),
            ),
            settings: SettingsCache::settings(
                c.cache_capacity,
                c.cache_ttl,
                c.negative_cache_ttl,
                self.clock.clone(),
            ),
            telemetry: Telemetry::new(&c.flavor).with_latency_tags(self.decoder.latency_tags()),
            decoder: self.decoder,
            filterer: self.filterer,
            processor: self.processor,
            api: Traced(self.api),
            skip_list: self.skip_list,
            clock: self.clock,
            config: self.config,
            decisions: self.decisions,
        }
    }
}

impl Pipeline {
    /// Starts building a pipeline; the flavor defaults to the decoder's integration name.
    pub fn builder(
        decoder: Arc<dyn Decoder>,
        filterer: Arc<dyn Filterer>,
        processor: Arc<dyn Processor>,
        api: Arc<dyn CaseApi>,
    ) -> PipelineBuilder {
        let flavor = decoder.integration();
        PipelineBuilder {
            decoder,
            filterer,
            processor,
            api,
            skip_list: Arc::new(SkipList::default()),
            clock: Arc::new(SystemClock),
            config: PipelineConfig::new(flavor),
            decisions: None,
        }
    }

    /// The telemetry this pipeline emits through (the runtime uses it for retries).
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The integration whose changes this pipeline handles (the decoder's).
    pub fn integration(&self) -> &'static str {
        self.decoder.integration()
    }

    /// The case API the pipeline calls (traced).
    pub(crate) fn api(&self) -> &dyn CaseApi {
        &self.api
    }

    /// The metadata cache (for statistics).
    pub fn metadata_cache(&self) -> &MetadataCache {
        &self.metadata
    }

    /// The settings cache (for statistics).
    pub fn settings_cache(&self) -> &SettingsCache {
        &self.settings
    }

    /// Forgets every cached settings and sync-metadata answer (the next look-ups ask the API).
    pub fn clear_caches(&self) {
        self.metadata.clear();
        self.settings.clear();
    }

    /// Decodes the payload (once: the result stays in it, and the first try of
    /// [`Pipeline::handle`] takes it instead of decoding again) and returns the key a runtime orders messages by
    /// (`docs/design.md`, "Delivery"): the item the message changes,
    /// `org:integration:site:id`, so messages of different items may be handled concurrently
    /// and those of one item only in order. `None` for a message that changes no item (it does
    /// not decode, or has no changelog): it writes nothing and needs no order. Every changelog
    /// of a message is about one item (the `Decoder` contract), so the first one names it.
    pub fn prepare(&self, payload: &mut Payload) -> Option<String> {
        let decoded = payload.decoded.get_mut().ok()?;
        let decoded = decoded.get_or_insert_with(|| self.decoder.decode(&payload.value));
        let first = decoded.as_ref().ok()?.first()?;
        Some(format!(
            "{}:{}:{}:{}",
            first.org_id, first.integration, first.site, first.third_party_id
        ))
    }

    /// Handles one message. `Err` means retry (only retry-class errors come back).
    pub async fn handle(&self, payload: &Payload) -> Result<MessageOutcome, HandleError> {
        self.handle_with(payload, self.config.dry_run).await
    }

    /// Decides one message without writing anything, whatever the configuration says.
    pub async fn explain(&self, payload: &Payload) -> Result<MessageOutcome, HandleError> {
        self.handle_with(payload, true).await
    }

    async fn handle_with(
        &self,
        payload: &Payload,
        dry_run: bool,
    ) -> Result<MessageOutcome, HandleError> {
        let span = handler_span(&self.config.flavor, payload.position.as_ref());
        let handled: Result<MessageOutcome, HandleError> = async {
            if let Some(position) = &payload.position
                && self.skip_list.contains(position)
            {
                self.telemetry.message_skipped(position);
                return Ok(MessageOutcome::Skipped);
            }
            let decoded = tracing::info_span!("decode_event").in_scope(|| {
                // Decoded by `prepare` for the first try; decoding is pure, so a retry decoding
                // again starts from the same changelogs.
                payload
                    .take_decoded()
                    .unwrap_or_else(|| self.decoder.decode(&payload.value))
            });
            let changelogs = match decoded {
                Ok(changelogs) => changelogs,
                Err(err) => {
                    let err = HandleError::Decode(err);
                    let record = DecisionRecord::for_message(
                        self.decoder.integration(),
                        payload.position.as_ref(),
                        &err,
                        self.clock.now(),
                    );
                    self.telemetry.decode_failed(&err, &record);
                    self.publish(&record);
                    return Ok(MessageOutcome::Undecodable(err));
                }
            };
            let mut reports = Vec::with_capacity(changelogs.len());
            for (index, mut changelog) in changelogs.into_iter().enumerate() {
                let mut found = Found::default();
                let decision = self
                    .handle_changelog(&mut changelog, dry_run, &mut found)
                    .await?;
                self.record(
                    &changelog,
                    &decision,
                    payload.position.as_ref(),
                    found.case_id.as_deref(),
                    u32::try_from(index).unwrap_or(u32::MAX),
                );
                reports.push(ChangelogReport {
                    changelog,
                    decision,
                    case_id: found.case_id,
                    project_id: found.project_id,
                    settings: found.settings,
                });
            }
            Ok(MessageOutcome::Handled(reports))
        }
        .instrument(span.clone())
        .await;
        if let Err(err) = &handled {
            // The exported span's status: this try failed (it is retried).
            span.record("otel.status_code", "error");
            span.record("otel.status_description", err.kind());
        }
        handled
    }

    /// Counts and logs a changelog's decision (one info line carrying the decision record), and
    /// hands the record to the decision sink.
    fn record(
        &self,
        changelog: &Changelog,
        decision: &Decision,
        position: Option<&MessagePosition>,
        case_id: Option<&str>,
        index: u32,
    ) {
        let now = self.clock.now();
        let (kind, reason, error) = match decision {
            Decision::Applied => (DecisionKind::Applied, None, None),
            Decision::WouldApply => (DecisionKind::WouldApply, None, None),
            Decision::Filtered(reason) => (DecisionKind::Filtered, Some(*reason), None),
            Decision::Rejected(err) => (DecisionKind::Rejected, None, Some(err)),
        };
        let mut record =
            DecisionRecord::for_changelog(changelog, position, case_id, kind, reason, error, now);
        record.changelog_index = Some(index);
        match decision {
            Decision::Applied => {
                let latency = now - changelog.event_timestamp;
                self.telemetry.processed(
                    changelog,
                    latency.as_seconds_f64().max(0.0) * 1000.0,
                    &record,
                );
            }
            Decision::WouldApply => tracing::info!(
                org_id = changelog.org_id,
                changelog_type = %truncate_for_log(&changelog.changelog_type.name()),
                third_party_id = %truncate_for_log(&changelog.third_party_id),
                third_party_key = record.third_party_key.as_deref().map(truncate_for_log).as_deref().unwrap_or(""),
                site = %truncate_for_log(&changelog.site),
                case_id = record.case_id.as_deref().unwrap_or(""),
                decision = "would_apply",
                "changelog would apply (dry run)"
            ),
            Decision::Filtered(reason) => {
                self.telemetry.filtered(changelog, *reason, Some(&record))
            }
            Decision::Rejected(err) => self.telemetry.rejected(changelog, err, &record),
        }
        self.publish(&record);
    }

    fn publish(&self, record: &DecisionRecord) {
        if let Some(sink) = &self.decisions {
            sink.record(record);
        }
    }

    /// Decides (and in a live run applies) one changelog; `found` gets the case, project and
    /// settings as they are found.
    ///
    /// A dry run takes the same path: the processor runs against [`ReadOnly`], which answers
    /// each write from reads, so a dry run's `would_apply` means the change would apply.
    async fn handle_changelog(
        &self,
        changelog: &mut Changelog,
        dry_run: bool,
        found: &mut Found,
    ) -> Result<Decision, HandleError> {
        let ctx = PreFilterContext::new(&self.metadata, &self.api, self.decoder.integration())
            .with_settings(&self.settings);
        let pre = self
            .filterer
            .pre_filter(changelog, &ctx)
            .instrument(tracing::info_span!("prefilter_third_party_changelog"))
            .await;
        match pre {
            Ok(Some(reason)) => return Ok(Decision::Filtered(reason)),
            Ok(None) => {}
            Err(err) => return settle(HandleError::api("list_sync_metadata", err)),
        }

        let filter_span = tracing::info_span!("filter_third_party_changelog");
        let looked_up = self
            .look_up(changelog, found)
            .instrument(filter_span.clone())
            .await;
        let (mut case, settings) = match looked_up {
            Ok(LookedUp::Found(case, settings)) => (*case, settings),
            Ok(LookedUp::Drop(reason)) => return Ok(Decision::Filtered(reason)),
            Err(err) => return settle(err),
        };

        let mut attempt = 0;
        loop {
            let filtered =
                filter_span.in_scope(|| self.filterer.filter(changelog, &case, &settings));
            let processed = match filtered {
                Some(reason) => Ok(ProcessOutcome::Filtered(reason)),
                None if dry_run => {
                    self.processor
                        .process(changelog, &case, &settings, &ReadOnly::new(&self.api))
                        .instrument(tracing::info_span!("process_changelog", dry_run))
                        .await
                }
                None => {
                    self.processor
                        .process(changelog, &case, &settings, &self.api)
                        .instrument(tracing::info_span!("process_changelog"))
                        .await
                }
            };
            // A filtered change may still leave a trace (never in a dry run): a `manual`
            // conflict its timeline entry, a no-op its watermark.
            let processed = match processed {
                Ok(ProcessOutcome::Filtered(FilterReason::ManualConflict)) if !dry_run => {
                    if let Err(err) = self.leave_conflict_entry(changelog, &case).await {
                        return settle(err);
                    }
                    Ok(ProcessOutcome::Filtered(FilterReason::ManualConflict))
                }
                Ok(ProcessOutcome::Filtered(FilterReason::NoChange)) if !dry_run => self
                    .record_no_change(changelog, &case)
                    .await
                    .map(|()| ProcessOutcome::Filtered(FilterReason::NoChange)),
                other => other,
            };
            match processed {
                Ok(ProcessOutcome::Applied) if dry_run => return Ok(Decision::WouldApply),
                Ok(ProcessOutcome::Applied) => return Ok(Decision::Applied),
                Ok(ProcessOutcome::Filtered(reason)) => return Ok(Decision::Filtered(reason)),
                Err(CaseApiError::VersionMismatch { .. })
                    if attempt < self.config.max_conflict_retries =>
                {
                    attempt += 1;
                    tracing::info!(case_id = %case.id, attempt, "version conflict, re-reading case");
                    let reread = self
                        .api
                        .get_case(changelog.org_id, &case.id)
                        .instrument(filter_span.clone())
                        .await;
                    case = match reread {
                        Ok(Some(case)) => case,
                        Ok(None) => {
                            return Ok(Decision::Filtered(FilterReason::NoCorrespondingCase));
                        }
                        Err(err) => return settle(HandleError::api("get_case", err)),
                    };
                }
                Err(err @ CaseApiError::VersionMismatch { .. }) => {
                    // Dropping the change here would lose it (the chaos run caught exactly
                    // that): the retry policy backs off and handles the whole message again
                    // (what it already applied is then a duplicate). Not counted as filtered:
                    // the change is not dropped (`retry_attempts{error=version_mismatch}`).
                    return settle(HandleError::api("update_case", err));
                }
                Err(err) => return settle(HandleError::api("process_changelog", err)),
            }
        }
    }

    /// Records a field change the case already holds: the same value written again by the sync,
    /// so the change's time and key become the item's watermark for the field (a late event
    /// older than it is then out of order instead of undoing it: To Do -> In Progress -> To Do,
    /// delivered last transition first, must end at To Do) and the sync its last writer. Nothing
    /// is written for a changelog that changes no case field.
    async fn record_no_change(
        &self,
        changelog: &Changelog,
        case: &Case,
    ) -> Result<(), CaseApiError> {
        let Some(field) = changelog.changelog_type.case_field() else {
            return Ok(());
        };
        let update = CaseUpdate {
            org_id: case.org_id,
            case_id: case.id.clone(),
            expected_version: case.version,
            change: case.current(field),
            writer: UpdateWriter::sync(changelog),
        };
        self.api.update_case(&update).await.map(|_| ())
    }

    /// Leaves a conflict entry on the case timeline for a change the `manual` policy did not
    /// apply ("toy (acme.example.com) says In Review, the case says RESOLVED"), idempotently
    /// by the change's key. The entry's text is never logged.
    async fn leave_conflict_entry(
        &self,
        changelog: &Changelog,
        case: &Case,
    ) -> Result<(), HandleError> {
        let Some(field) = changelog.changelog_type.case_field() else {
            return Ok(());
        };
        let theirs = changelog
            .to_string
            .as_deref()
            .or(changelog.to_id.as_deref())
            .unwrap_or("(none)");
        let ours = case.field_value(field);
        let body = format!(
            "Sync conflict on {field}: {} ({}) says {theirs}, the case says {}. Not applied: \
             the project's conflict policy for this field is manual.",
            changelog.integration,
            changelog.site,
            ours.as_deref().unwrap_or("(none)"),
        );
        let entry = NewComment {
            org_id: case.org_id,
            case_id: case.id.clone(),
            idempotency_key: conflict_entry_key(changelog),
            body,
            author: changelog.author.clone().unwrap_or_default(),
            is_work_note: true,
            integration: changelog.integration.clone(),
            source_event_time: changelog.event_timestamp,
        };
        let outcome = self
            .api
            .add_comment(&entry)
            .await
            .map_err(|e| HandleError::api("create_timeline_cell", e))?;
        tracing::info!(
            case_id = %case.id,
            field = %field,
            created = outcome.created,
            "conflict entry left on the case timeline"
        );
        Ok(())
    }

    /// Finds the case and its project's settings (both go to `found` too), or the reason there
    /// are none.
    async fn look_up(
        &self,
        changelog: &Changelog,
        found: &mut Found,
    ) -> Result<LookedUp, HandleError> {
        let lookup = match self.filterer.case_lookup(changelog) {
            Ok(lookup) => lookup,
            Err(reason) => return Ok(LookedUp::Drop(reason)),
        };
        let Some(case) = self.find_case(changelog, &lookup).await? else {
            return Ok(LookedUp::Drop(FilterReason::NoCorrespondingCase));
        };
        found.case_id = Some(case.id.clone());
        found.project_id = Some(case.project_id.clone());
        let key = (
            changelog.org_id,
            case.project_id.clone(),
            changelog.integration.clone(),
        );
        let settings = self
            .settings
            .get_or_try_load(&key, || async {
                let found = self
                    .api
                    .get_project_settings(
                        changelog.org_id,
                        &case.project_id,
                        &changelog.integration,
                    )
                    .await?;
                Ok(found.map(Arc::new))
            })
            .await
            .map_err(|e| HandleError::api("get_settings", e))?;
        found.settings.clone_from(&settings);
        match settings {
            Some(settings) => Ok(LookedUp::Found(Box::new(case), settings)),
            None => Ok(LookedUp::Drop(FilterReason::ProjectNotFound)),
        }
    }

    async fn find_case(
        &self,
        changelog: &Changelog,
        lookup: &CaseLookup,
    ) -> Result<Option<Case>, HandleError> {
        let org_id = changelog.org_id;
        let by_reference = |reference: ExternalReference| async move {
            self.api
                .find_case_by_external_reference(org_id, &reference)
                .await
                .map_err(|e| HandleError::api("get_case", e))
        };
        match lookup {
            CaseLookup::ById {
                case_id,
                fallback_reference,
            } => {
                let found = self
                    .api
                    .get_case(org_id, case_id)
                    .await
                    .map_err(|e| HandleError::api("get_case", e))?;
                // A case of another organization is no case of ours.
                let found = found.filter(|c| c.org_id == org_id);
                match (found, fallback_reference) {
                    (Some(case), _) => Ok(Some(case)),
                    (None, Some(reference)) => by_reference(reference.clone()).await,
                    (None, None) => Ok(None),
                }
            }
            CaseLookup::ByExternalReference(reference) => by_reference(reference.clone()).await,
        }
    }
}

/// Prefix of the idempotency keys of conflict entries (`manual` policy).
pub const CONFLICT_ENTRY_PREFIX: &str = "conflict:";

/// The idempotency key of the conflict entry of a change:
/// `conflict:{integration}:{site}:{id}:{field}:{change key}`.
pub fn conflict_entry_key(changelog: &Changelog) -> String {
    format!(
        "{CONFLICT_ENTRY_PREFIX}{}:{}:{}:{}:{}",
        changelog.integration,
        changelog.site,
        changelog.third_party_id,
        changelog.changelog_type,
        changelog.change_key()
    )
}

/// Turns an error into a decision when it is not worth retrying.
fn settle(err: HandleError) -> Result<Decision, HandleError> {
    match err.class() {
        ErrorClass::Retry => Err(err),
        ErrorClass::Skip | ErrorClass::Discard => Ok(Decision::Rejected(err)),
    }
}

/// The root span: `handler`, exported as `handler_{flavor}` (`otel.name`), with an error status
/// (`otel.status_code`, `otel.status_description`: the error's kind) when the try failed.
fn handler_span(flavor: &str, position: Option<&MessagePosition>) -> tracing::Span {
    let (topic, partition, offset) = position
        .map(|p| (p.topic.as_str(), p.partition, p.offset))
        .unwrap_or(("", -1, -1));
    tracing::info_span!(
        "handler",
        otel.name = %format_args!("{}{flavor}", spans::HANDLER_PREFIX),
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        flavor,
        topic,
        partition,
        offset
    )
}

/// The time since `event` by `clock`, in milliseconds (never negative).
pub fn latency_ms(clock: &dyn Clock, event: OffsetDateTime) -> f64 {
    ((clock.now() - event).as_seconds_f64() * 1000.0).max(0.0)
}
