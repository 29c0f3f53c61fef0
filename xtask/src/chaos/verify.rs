//! The end of a chaos run: every message on the topics against the readers' logged outcomes,
//! every case and comment against the expected state.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use case_api::GrpcCaseApi;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use thirdparty_core::{CaseApi, CaseField, ConflictPolicy};

use super::workload::{ExpectedCase, ORG, Workload};
use crate::scenario::Flavor;

/// (topic, partition, offset).
type Position = (String, i32, i64);

/// What the comparison found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// A field found at a value it held before its last expected change, or an expected comment
    /// missing.
    pub lost_updates: u64,
    /// Extra copies of expected comments.
    pub duplicate_comments: u64,
    /// A field at a value it never should have held, a comment that should not exist (an echo),
    /// or a comment of the wrong kind.
    pub wrong_fields: u64,
    /// Messages on the topics with no logged outcome, or with one outside the message's
    /// intended class (an echo must be dropped as a sync cycle, a truncated message must fail
    /// to decode, a late transition must be out of order, a replay must not apply, ...), and
    /// messages the workload produced that are not on the topics.
    pub unaccounted_messages: u64,
    /// A change or comment of one site's item found on another site's case.
    pub misrouted: u64,
    /// A field edited on both sides that does not hold what its conflict policy implies, a
    /// conflict where the policy allows none, or a `manual` conflict without its timeline entry.
    pub diverged: u64,
    pub messages_on_topics: u64,
    /// Messages whose outcome was logged more than once (at-least-once replays).
    pub handled_more_than_once: u64,
    /// First outcome per message: `applied`, `filtered:<reason>`, `decode_failed`, ... (per
    /// changelog).
    pub outcomes: BTreeMap<String, u64>,
    pub expected_comments: u64,
    /// Conflict entries (`manual` policy) found on case timelines.
    pub conflict_entries: u64,
    /// The first few mismatches, for the log.
    pub problems: Vec<String>,
}

impl Verdict {
    fn problem(&mut self, text: String) {
        if self.problems.len() < 50 {
            self.problems.push(text);
        }
    }
}

/// What the Datadog-side editor wrote, per case id: its last value.
pub type EditorValues = BTreeMap<String, Option<String>>;

pub async fn verify(
    bootstrap: &str,
    dir: &Path,
    api: &GrpcCaseApi,
    workload: &Workload,
    edits: &EditorValues,
) -> Result<Verdict> {
    let mut verdict = Verdict::default();
    let bootstrap_owned = bootstrap.to_owned();
    let on_topics = tokio::task::spawn_blocking(move || scan(&bootstrap_owned)).await??;
    verdict.messages_on_topics = on_topics.len() as u64;
    // Every workload message must be on a topic. One may be there twice: the workload's
    // producer retries a send a broker restart cut off, as webhook producers do; each copy is a
    // message of its own below, whose outcome must be accounted for like any other.
    let mut copies: BTreeMap<usize, u64> = BTreeMap::new();
    for index in on_topics.values().filter_map(|index| *index) {
        *copies.entry(index).or_insert(0) += 1;
    }
    let missing = (0..workload.messages.len())
        .filter(|i| !copies.contains_key(i))
        .count() as u64;
    if missing > 0 {
        verdict.unaccounted_messages += missing;
        verdict.problem(format!(
            "{missing} of the {} workload messages are not on the topics",
            workload.messages.len()
        ));
    }
    let twice = copies.values().filter(|&&n| n > 1).count();
    if twice > 0 {
        println!(
            "  {twice} workload message(s) on the topics more than once (a producer retry); every copy is checked"
        );
    }
    let handled = read_outcomes(&dir.join("readers"))?;
    // Per case: the outcomes of its messages (for the policy checks).
    let mut per_case: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (position, index) in &on_topics {
        let message = index.and_then(|i| workload.messages.get(i));
        let Some(message) = message else {
            verdict.unaccounted_messages += 1;
            verdict.problem(format!("{position:?}: not a workload message"));
            continue;
        };
        let Some(outcomes) = handled.get(position) else {
            verdict.unaccounted_messages += 1;
            verdict.problem(format!("{position:?}: no outcome logged"));
            continue;
        };
        if outcomes.len() > 1 {
            verdict.handled_more_than_once += 1;
        }
        for part in outcomes[0].split(',') {
            *verdict.outcomes.entry(part.to_owned()).or_insert(0) += 1;
        }
        // The first handling must get the intended class; a redelivery (after a kill) may also
        // find its change already applied or overtaken by the later ones applied meanwhile.
        for (n, outcome) in outcomes.iter().enumerate() {
            let redelivery = n > 0
                && outcome
                    .split(',')
                    .all(|p| p == "filtered:duplicate_event" || p == "filtered:out_of_order_event");
            if !accounted(outcome) || !(message.intent.admits(outcome) || redelivery) {
                verdict.unaccounted_messages += 1;
                verdict.problem(format!(
                    "{position:?}: outcome `{outcome}` for a {:?} message of {}",
                    message.intent, workload.cases[message.case].label
                ));
                break;
            }
        }
        per_case
            .entry(message.case)
            .or_default()
            .extend(outcomes.iter().cloned());
    }
    compare_cases(api, workload, edits, &per_case, &mut verdict).await?;
    Ok(verdict)
}

/// Whether an outcome line accounts for its message.
fn accounted(outcome: &str) -> bool {
    matches!(outcome, "decode_failed" | "discarded")
        || (!outcome.is_empty()
            && outcome.split(',').all(|part| {
                part == "applied" || part == "rejected" || part.starts_with("filtered:")
            }))
}

/// The header carrying a message's index in the workload.
pub const INDEX_HEADER: &str = "chaos-index";

/// Every message position on both topics, with the workload index from its header (read with
/// a plain consumer from the beginning).
fn scan(bootstrap: &str) -> Result<BTreeMap<Position, Option<usize>>> {
    use rdkafka::message::Headers;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "chaos-verify")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the verifying consumer")?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for flavor in super::FLAVORS {
        let topic = flavor.topic();
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) =
                consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
            if high > low {
                assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
                remaining.insert((topic.to_owned(), partition.id()), high);
            }
        }
    }
    consumer.assign(&assignment)?;
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            bail!("reading the topics back timed out; left: {remaining:?}");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => bail!("reading the topics back: {e}"),
            Some(Ok(message)) => {
                let key = (message.topic().to_owned(), message.partition());
                let Some(high) = remaining.get(&key).copied() else {
                    continue;
                };
                if message.offset() < high {
                    let index = message.headers().and_then(|headers| {
                        headers
                            .iter()
                            .find(|h| h.key == INDEX_HEADER)
                            .and_then(|h| h.value)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.parse().ok())
                    });
                    seen.insert((key.0.clone(), key.1, message.offset()), index);
                }
                if message.offset() + 1 >= high {
                    remaining.remove(&key);
                }
            }
        }
    }
    Ok(seen)
}

/// Every `message handled` line of every reader log: position -> outcomes, oldest first.
fn read_outcomes(logs: &Path) -> Result<BTreeMap<Position, Vec<String>>> {
    let mut timed: BTreeMap<Position, Vec<(String, String)>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(logs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines().filter(|l| l.contains("\"message handled\"")) {
            // A SIGKILL can cut the last line short: such a line accounts for nothing.
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let (Some(topic), Some(partition), Some(offset), Some(outcome)) = (
                entry["topic"].as_str(),
                entry["partition"].as_i64(),
                entry["offset"].as_i64(),
                entry["outcome"].as_str(),
            ) else {
                continue;
            };
            let position = (topic.to_owned(), partition as i32, offset);
            // RFC 3339 UTC timestamps of one clock: ordered as strings.
            let at = entry["timestamp"].as_str().unwrap_or_default().to_owned();
            timed
                .entry(position)
                .or_default()
                .push((at, outcome.to_owned()));
        }
    }
    let mut handled = BTreeMap::new();
    for (position, mut outcomes) in timed {
        outcomes.sort();
        handled.insert(position, outcomes.into_iter().map(|(_, o)| o).collect());
    }
    Ok(handled)
}

const FIELDS: [CaseField; 6] = [
    CaseField::Title,
    CaseField::Description,
    CaseField::Priority,
    CaseField::Status,
    CaseField::Assignee,
    CaseField::DueDate,
];

/// What a field edited on both sides must hold, by its policy (`docs/design.md`, "Conflicts
/// and ordering"). The editor writes values the third party never uses, so after its first
/// edit every third-party change of the field is inconsistent with the case:
/// - a field with a `from` check (Jira priority) under `strict`, `converge` or `manual`, and a
///   field without one (ServiceNow status) under `converge` or `manual`, keeps the editor's
///   last value whatever the order;
/// - otherwise (`third_party_wins`; `strict` without a `from` check) the last writer decides:
///   the editor's last value if a person wrote it last, the third party's last value if the
///   sync did.
fn policy_value(
    expected: &ExpectedCase,
    field: CaseField,
    editor: &Option<String>,
    last_writer_is_person: bool,
) -> Option<String> {
    let has_from = expected.flavor == Flavor::Jira;
    let protected = match expected.policy {
        ConflictPolicy::Converge | ConflictPolicy::Manual => true,
        ConflictPolicy::Strict => has_from,
        ConflictPolicy::ThirdPartyWins => false,
    };
    if protected || last_writer_is_person {
        editor.clone()
    } else {
        expected.fields.get(field)
    }
}

async fn compare_cases(
    api: &impl CaseApi,
    workload: &Workload,
    edits: &EditorValues,
    per_case: &BTreeMap<usize, Vec<String>>,
    verdict: &mut Verdict,
) -> Result<()> {
    // Which case each comment marker and each written value belongs to.
    let mut marker_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, case) in workload.cases.iter().enumerate() {
        for marker in case.comments.keys() {
            marker_owner.insert(marker, i);
        }
    }
    for (index, expected) in workload.cases.iter().enumerate() {
        let id = &expected.case_id;
        let Some(actual) = api
            .get_case(ORG, id)
            .await
            .with_context(|| format!("reading case {id}"))?
        else {
            verdict.wrong_fields += 1;
            verdict.problem(format!("case {id} ({}) is gone", expected.label));
            continue;
        };
        let outcomes = per_case.get(&index).map(Vec::as_slice).unwrap_or_default();
        let conflicts = outcomes
            .iter()
            .flat_map(|o| o.split(','))
            .filter(|p| *p == "filtered:state_conflict" || *p == "filtered:manual_conflict")
            .count();
        let editor = edits.get(id);
        let conflicts_allowed =
            editor.is_some() && expected.policy != ConflictPolicy::ThirdPartyWins;
        if conflicts > 0 && !conflicts_allowed {
            verdict.diverged += 1;
            verdict.problem(format!(
                "case {} ({}): {conflicts} conflicts where its policy allows none",
                expected.label, expected.policy
            ));
        }
        for field in FIELDS {
            let have = actual.field_value(field);
            if let (Some(editor), Some(edited)) = (editor, expected.edited_in_datadog)
                && edited == field
            {
                let person_last = actual.edited_in_case(field);
                let want = policy_value(expected, field, editor, person_last);
                if want != have {
                    verdict.diverged += 1;
                    verdict.problem(format!(
                        "case {} {field} ({}, {} wrote last): expected {want:?}, found {have:?}",
                        expected.label,
                        expected.policy,
                        if person_last { "a person" } else { "the sync" }
                    ));
                }
                continue;
            }
            let want = expected.fields.get(field);
            if want == have {
                continue;
            }
            let misrouted = have.as_ref().is_some_and(|v| {
                !expected
                    .produced
                    .get(&field)
                    .is_some_and(|own| own.contains(v))
                    && workload.cases.iter().enumerate().any(|(other, c)| {
                        other != index && c.produced.get(&field).is_some_and(|s| s.contains(v))
                    })
            }) && matches!(field, CaseField::Title | CaseField::Description);
            let lost = expected
                .history
                .get(&field)
                .is_some_and(|earlier| earlier.contains(&have));
            if misrouted {
                verdict.misrouted += 1;
            } else if lost {
                verdict.lost_updates += 1;
            } else {
                verdict.wrong_fields += 1;
            }
            verdict.problem(format!(
                "case {} {field}: expected {want:?}, found {have:?}{}",
                expected.label,
                if misrouted {
                    " (another site's value)"
                } else if lost {
                    " (an earlier value)"
                } else {
                    ""
                }
            ));
        }

        let comments = api
            .list_comments(ORG, id)
            .await
            .with_context(|| format!("listing the comments of {id}"))?;
        let mut found: BTreeMap<String, (u64, bool)> = BTreeMap::new();
        let mut entries = 0;
        for comment in &comments {
            if comment
                .idempotency_key
                .starts_with(thirdparty_core::pipeline::CONFLICT_ENTRY_PREFIX)
            {
                entries += 1;
                continue;
            }
            let Some(marker) = marker(&comment.body) else {
                verdict.wrong_fields += 1;
                verdict.problem(format!(
                    "case {}: a comment without a workload marker",
                    expected.label
                ));
                continue;
            };
            let entry = found.entry(marker).or_insert((0, comment.is_work_note));
            entry.0 += 1;
        }
        verdict.conflict_entries += entries;
        let manual_conflicts = outcomes
            .iter()
            .flat_map(|o| o.split(','))
            .any(|p| p == "filtered:manual_conflict");
        if entries > 0 && expected.policy != ConflictPolicy::Manual {
            verdict.diverged += 1;
            verdict.problem(format!(
                "case {} ({}): {entries} conflict entries",
                expected.label, expected.policy
            ));
        }
        if manual_conflicts && entries == 0 {
            verdict.diverged += 1;
            verdict.problem(format!(
                "case {}: a manual conflict without its timeline entry",
                expected.label
            ));
        }
        verdict.expected_comments += expected.comments.len() as u64;
        for (marker, work_note) in &expected.comments {
            match found.remove(marker) {
                None => {
                    verdict.lost_updates += 1;
                    verdict.problem(format!("case {}: comment {marker} missing", expected.label));
                }
                Some((count, is_work_note)) => {
                    if count > 1 {
                        verdict.duplicate_comments += count - 1;
                        verdict.problem(format!(
                            "case {}: comment {marker} {count} times",
                            expected.label
                        ));
                    }
                    if is_work_note != *work_note {
                        verdict.wrong_fields += 1;
                        verdict.problem(format!(
                            "case {}: comment {marker} has the wrong kind",
                            expected.label
                        ));
                    }
                }
            }
        }
        for (marker, (count, _)) in found {
            let owner = marker_owner.get(marker.as_str()).copied();
            if owner.is_some_and(|o| o != index) {
                verdict.misrouted += count;
                verdict.problem(format!(
                    "case {}: comment {marker} of {} ({count}x)",
                    expected.label,
                    workload.cases[owner.unwrap_or(index)].label
                ));
            } else {
                verdict.wrong_fields += count;
                verdict.problem(format!(
                    "case {}: unexpected comment {marker} ({count}x)",
                    expected.label
                ));
            }
        }
    }
    Ok(())
}

/// The workload marker in a comment body: `[jc-…]`, `[sc-…]`, `[sw-…]`, `[echo-…]`.
fn marker(body: &str) -> Option<String> {
    let mut rest = body;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        let end = after.find(']')?;
        let inner = &after[..end];
        if ["jc-", "sc-", "sw-", "echo-"]
            .iter()
            .any(|p| inner.starts_with(p))
        {
            return Some(format!("[{inner}]"));
        }
        rest = &after[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::workload::generate;
    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::{Author, Case, ExternalReference, NewComment};
    use time::macros::datetime;

    /// A Case API holding exactly the expected state.
    async fn perfect(cases: &[ExpectedCase]) -> InMemoryCaseApi {
        let api = InMemoryCaseApi::new();
        for expected in cases {
            assert!(expected.fields.due_date.is_none(), "ServiceNow cases only");
            api.insert_case(Case {
                id: expected.case_id.clone(),
                org_id: ORG,
                project_id: "p".into(),
                version: 1,
                title: expected.fields.title.clone(),
                description: expected.fields.description.clone(),
                priority: expected.fields.priority.clone(),
                status: expected.fields.status.clone(),
                assignee_id: expected.fields.assignee_id.clone(),
                due_date: None,
                created_at: datetime!(2025-01-01 0:00 UTC),
                external_references: vec![ExternalReference::new(
                    "servicenow",
                    expected.site.clone(),
                    expected.reference.clone(),
                )],
                source_watermarks: Vec::new(),
                last_writes: Default::default(),
            });
            for (marker, work_note) in &expected.comments {
                add(&api, expected, marker, *work_note, "1").await;
            }
        }
        api
    }

    async fn add(
        api: &InMemoryCaseApi,
        case: &ExpectedCase,
        marker: &str,
        work_note: bool,
        copy: &str,
    ) {
        api.add_comment(&NewComment {
            org_id: ORG,
            case_id: case.case_id.clone(),
            idempotency_key: format!("{marker}/{copy}"),
            body: format!("text {marker} text"),
            author: Author::default(),
            is_work_note: work_note,
            integration: "servicenow".into(),
            source_event_time: datetime!(2025-01-01 0:00 UTC),
        })
        .await
        .unwrap();
    }

    /// The comparison finds each kind of damage (and nothing on the expected state).
    #[tokio::test]
    async fn the_comparison_counts_lost_duplicated_and_wrong_effects() {
        let workload = generate(3, 0, 12, 800);
        let api = perfect(&workload.cases).await;
        let mut verdict = Verdict::default();
        compare_cases(
            &api,
            &workload,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &mut verdict,
        )
        .await
        .unwrap();
        assert_eq!(
            (
                verdict.lost_updates,
                verdict.duplicate_comments,
                verdict.wrong_fields,
                verdict.misrouted,
                verdict.diverged
            ),
            (0, 0, 0, 0, 0),
            "{:?}",
            verdict.problems
        );
        assert!(verdict.expected_comments > 50);

        // A status back at an earlier value, a comment twice, an echo applied, a wrong title.
        let case = workload
            .cases
            .iter()
            .find(|c| c.history.contains_key(&CaseField::Status))
            .unwrap();
        let mut damaged = api.case(&case.case_id).unwrap();
        let earlier = case.history[&CaseField::Status]
            .iter()
            .flatten()
            .find(|s| **s != case.fields.status);
        damaged.status = earlier.unwrap().clone();
        damaged.title = "never written by anyone".into();
        api.insert_case(damaged);
        let (marker, work_note) = case.comments.iter().next().unwrap();
        add(&api, case, marker, *work_note, "2").await;
        add(&api, case, "[echo-x-1]", false, "1").await;
        // Its twin on the other instance (the same sysId) gets one of its comments.
        let index = workload
            .cases
            .iter()
            .position(|c| c.case_id == case.case_id)
            .unwrap();
        let twin = &workload.cases[index ^ 1];
        assert_eq!(twin.reference, case.reference);
        let (marker, work_note) = case.comments.iter().last().unwrap();
        add(&api, twin, marker, *work_note, "9").await;
        // An edited status that does not hold what the policy implies (converge: the editor's
        // value), and a conflict on a case nobody edited.
        let edited = workload
            .cases
            .iter()
            .find(|c| c.edited_in_datadog.is_some() && c.policy == ConflictPolicy::Converge)
            .unwrap();
        let edits = BTreeMap::from([(edited.case_id.clone(), Some("ON_HOLD".to_owned()))]);
        let other = workload
            .cases
            .iter()
            .position(|c| c.edited_in_datadog.is_none())
            .unwrap();
        let per_case = BTreeMap::from([(other, vec!["filtered:state_conflict".to_owned()])]);
        let mut verdict = Verdict::default();
        compare_cases(&api, &workload, &edits, &per_case, &mut verdict)
            .await
            .unwrap();
        assert_eq!(
            (
                verdict.lost_updates,
                verdict.duplicate_comments,
                verdict.wrong_fields,
                verdict.misrouted,
                verdict.diverged
            ),
            (1, 1, 2, 1, 2),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn markers_and_accounting() {
        assert_eq!(
            marker("Customer update [sc-0000001-3]: still failing").as_deref(),
            Some("[sc-0000001-3]")
        );
        assert_eq!(
            marker("[x] then [jc-CHS-1-s0-2] body").as_deref(),
            Some("[jc-CHS-1-s0-2]")
        );
        assert_eq!(marker("no marker"), None);
        assert!(accounted("applied,filtered:duplicate_event"));
        assert!(accounted("decode_failed"));
        assert!(!accounted("no_changelog"));
        assert!(!accounted("skipped"));
        assert!(!accounted("applied,would_apply"));
    }
}
