//! The end of a chaos run: every message on the topics against the readers' logged outcomes,
//! every case and comment against the expected state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use case_api::GrpcCaseApi;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use thirdparty_core::{CaseApi, CaseField};

use super::workload::{ORG, Workload};
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
    /// Messages on the topics with no logged outcome that is applied, filtered with a reason, a
    /// decoding failure, a discard or a rejection.
    pub unaccounted_messages: u64,
    pub messages_on_topics: u64,
    /// Messages whose outcome was logged more than once (at-least-once replays).
    pub handled_more_than_once: u64,
    /// First outcome per message: `applied`, `filtered:<reason>`, `decode_failed`, ... (per
    /// changelog).
    pub outcomes: BTreeMap<String, u64>,
    pub expected_comments: u64,
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

pub async fn verify(
    bootstrap: &str,
    dir: &Path,
    api: &GrpcCaseApi,
    workload: &Workload,
    edits: &BTreeMap<String, Option<String>>,
) -> Result<Verdict> {
    let mut verdict = Verdict::default();
    let bootstrap_owned = bootstrap.to_owned();
    let on_topics = tokio::task::spawn_blocking(move || scan(&bootstrap_owned)).await??;
    verdict.messages_on_topics = on_topics.len() as u64;
    let handled = read_outcomes(&dir.join("readers"))?;
    for position in &on_topics {
        match handled.get(position) {
            None => {
                verdict.unaccounted_messages += 1;
                verdict.problem(format!("{position:?}: no outcome logged"));
            }
            Some((outcome, times)) => {
                if *times > 1 {
                    verdict.handled_more_than_once += 1;
                }
                if !accounted(outcome) {
                    verdict.unaccounted_messages += 1;
                    verdict.problem(format!("{position:?}: outcome `{outcome}`"));
                }
                for part in outcome.split(',') {
                    *verdict.outcomes.entry(part.to_owned()).or_insert(0) += 1;
                }
            }
        }
    }
    compare_cases(api, workload, edits, &mut verdict).await?;
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

/// Every message position on both topics (read with a plain consumer from the beginning).
fn scan(bootstrap: &str) -> Result<BTreeSet<Position>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "chaos-verify")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the verifying consumer")?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for flavor in Flavor::ALL {
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
    let mut seen = BTreeSet::new();
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
                    seen.insert((key.0.clone(), key.1, message.offset()));
                }
                if message.offset() + 1 >= high {
                    remaining.remove(&key);
                }
            }
        }
    }
    Ok(seen)
}

/// Every `message handled` line of every reader log: position -> (first outcome, times).
fn read_outcomes(logs: &Path) -> Result<BTreeMap<Position, (String, u32)>> {
    let mut handled: BTreeMap<Position, (String, u32)> = BTreeMap::new();
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
            handled
                .entry(position)
                .and_modify(|(_, times)| *times += 1)
                .or_insert_with(|| (outcome.to_owned(), 1));
        }
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

async fn compare_cases(
    api: &impl CaseApi,
    workload: &Workload,
    edits: &BTreeMap<String, Option<String>>,
    verdict: &mut Verdict,
) -> Result<()> {
    for expected in &workload.cases {
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
        for field in FIELDS {
            let want = match edits.get(id) {
                Some(edited) if expected.edited_in_datadog == Some(field) => edited.clone(),
                _ => expected.fields.get(field),
            };
            let have = actual.field_value(field);
            if want == have {
                continue;
            }
            let lost = expected
                .history
                .get(&field)
                .is_some_and(|earlier| earlier.contains(&have));
            if lost {
                verdict.lost_updates += 1;
            } else {
                verdict.wrong_fields += 1;
            }
            verdict.problem(format!(
                "case {} {field}: expected {want:?}, found {have:?}{}",
                expected.label,
                if lost { " (an earlier value)" } else { "" }
            ));
        }

        let comments = api
            .list_comments(ORG, id)
            .await
            .with_context(|| format!("listing the comments of {id}"))?;
        let mut found: BTreeMap<String, (u64, bool)> = BTreeMap::new();
        for comment in &comments {
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
            verdict.wrong_fields += count;
            verdict.problem(format!(
                "case {}: unexpected comment {marker} ({count}x)",
                expected.label
            ));
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
    use crate::chaos::workload::{ExpectedCase, generate};
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
                    "chaos",
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
        let workload = generate(3, 0, 6, 400);
        let api = perfect(&workload.cases).await;
        let mut verdict = Verdict::default();
        compare_cases(&api, &workload, &BTreeMap::new(), &mut verdict)
            .await
            .unwrap();
        assert_eq!(
            (
                verdict.lost_updates,
                verdict.duplicate_comments,
                verdict.wrong_fields
            ),
            (0, 0, 0),
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
        let mut verdict = Verdict::default();
        compare_cases(&api, &workload, &BTreeMap::new(), &mut verdict)
            .await
            .unwrap();
        assert_eq!(
            (
                verdict.lost_updates,
                verdict.duplicate_comments,
                verdict.wrong_fields
            ),
            (1, 1, 2),
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
            marker("[x] then [jc-CHS-1-2] body").as_deref(),
            Some("[jc-CHS-1-2]")
        );
        assert_eq!(marker("no marker"), None);
        assert!(accounted("applied,filtered:duplicate_event"));
        assert!(accounted("decode_failed"));
        assert!(!accounted("no_changelog"));
        assert!(!accounted("skipped"));
        assert!(!accounted("applied,would_apply"));
    }
}
