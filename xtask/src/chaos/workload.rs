//! The chaos workload: deterministic Jira and ServiceNow traffic over seeded cases, and the state
//! each case must end in, computed from the workload alone (never from what the reader did).
//!
//! Every Jira issue keeps its own consistent history (each change's `from` is the previous
//! `to`), every ServiceNow incident its own clock; messages are keyed by issue or incident, so a
//! case's messages share a partition and arrive in order. Mixed in: echoes of our own writes
//! (must be dropped), verbatim replays of earlier messages (duplicates, out of order: dropped or
//! idempotent), unsupported events (discarded) and truncated JSON (decoding failures).
//!
//! What real traffic adds (`docs/design.md`, "References are scoped to their site" and
//! "Conflicts and ordering"): the org syncs two Jira sites and two ServiceNow instances whose
//! issue ids, comment ids and sysIds collide (case `2k` and `2k + 1` have the same ids on two
//! sites); Jira status transitions are delivered out of order (B->C before A->B) or with A->B
//! lost; ServiceNow state changes come several within one second. Cases are spread over four
//! case projects per integration, one per conflict policy, and one case in five is also edited
//! in "Datadog" during the run on a field the third party writes too (Jira priority, ServiceNow
//! status), with values the third party never uses, so what the field must end at follows from
//! the policy (see `verify.rs`). Every message carries the class of outcome it must get.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use thirdparty_core::{CaseField, ConflictPolicy};
use time::{Date, Duration, OffsetDateTime, macros::datetime};

use crate::scenario::{
    Flavor, jira_envelope, jira_time, millis, rfc3339, servicenow_message, text_item,
};

/// The chaos organization.
pub const ORG: u64 = 424_242;
/// Its two Jira Cloud sites (issue and comment ids collide between them).
pub const JIRA_SITES: [&str; 2] = ["chaos.atlassian.net", "chaos-emea.atlassian.net"];
/// Its Jira project (Jira's own id) and the one synced issue type.
const JIRA_PROJECT: &str = "20000";
const ISSUE_TYPE: &str = "10001";
/// The case projects linked to Jira and to ServiceNow: one per conflict policy.
fn case_project(flavor: Flavor, policy: ConflictPolicy) -> String {
    let n = ConflictPolicy::ALL
        .iter()
        .position(|p| *p == policy)
        .unwrap_or(0);
    let base = match flavor {
        Flavor::Jira => 0x10,
        Flavor::ServiceNow => 0x20,
        Flavor::GitHub => 0x30,
    };
    format!("7c4a0000-0000-4000-8000-0000000000{:02x}", base + n)
}
/// Its two ServiceNow instances (sysIds collide between them).
pub const INSTANCES: [&str; 2] = ["chaos", "chaos-emea"];
/// The values the Datadog-side editor writes: never written by the third party.
pub const EDITOR_PRIORITIES: [&str; 2] = ["P5", "P0"];
pub const EDITOR_STATUSES: [&str; 2] = ["ON_HOLD", "PENDING_CUSTOMER"];
/// The sync accounts whose changes are echoes of our own writes.
pub const JIRA_BOT: &str = "chaos-sync-bot";
pub const SERVICENOW_BOT: &str = "datadog";

/// Case users: (case-management id, Jira account id, ServiceNow user name).
const USERS: [(&str, &str, &str); 4] = [
    (
        "7c4a0000-0000-4000-8000-0000000000a1",
        "chaos-user-1",
        "chaos.user1",
    ),
    (
        "7c4a0000-0000-4000-8000-0000000000a2",
        "chaos-user-2",
        "chaos.user2",
    ),
    (
        "7c4a0000-0000-4000-8000-0000000000a3",
        "chaos-user-3",
        "chaos.user3",
    ),
    (
        "7c4a0000-0000-4000-8000-0000000000a4",
        "chaos-user-4",
        "chaos.user4",
    ),
];
const USER_NAMES: [&str; 4] = ["Ada Chaos", "Ben Chaos", "Cy Chaos", "Dee Chaos"];
/// Jira priority ids 1..=5 and their names; the case value is `P{id}`.
const PRIORITY_NAMES: [&str; 5] = ["Highest", "High", "Medium", "Low", "Lowest"];
/// Jira status ids, names and case statuses. Done maps to `RESOLVED`, not `CLOSED`: comments on
/// a closed case are dropped (`case_closed`, the same rule for every integration), which would
/// make the expected comments depend on the close's position.
const STATUSES: [(&str, &str, &str); 3] = [
    ("10000", "To Do", "OPEN"),
    ("3", "In Progress", "IN_PROGRESS"),
    ("10001", "Done", "RESOLVED"),
];
/// ServiceNow states used (closing is left out: comments on a closed case are dropped, which
/// would make the expected comments depend on the close's position) and their case statuses.
const STATES: [(&str, &str); 3] = [("1", "OPEN"), ("2", "IN_PROGRESS"), ("3", "IN_PROGRESS")];

/// A deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Picks an index by weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut roll = (self.next_u64() % u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }
}

/// The class of outcome a message must get (every changelog of it, on any of its handlings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Intent {
    /// A change by a person: applied, or filtered as a no-op, a replay of itself (at-least-once)
    /// or a conflict its case's policy implies.
    Change,
    /// The earlier transition of a reordered pair, delivered second: `out_of_order_event`.
    Late,
    /// Our own write echoed back: `break_synchronization_cycle`.
    Echo,
    /// A verbatim replay of an earlier message: never applied.
    Replay,
    /// Truncated JSON: a decoding failure.
    Undecodable,
    /// An event type the integration does not handle: discarded.
    Unsupported,
}

impl Intent {
    /// Whether a logged outcome (`applied`, `filtered:<reason>,...`, `decode_failed`,
    /// `discarded`) is of this class.
    pub fn admits(self, outcome: &str) -> bool {
        let parts = || outcome.split(',');
        match self {
            Intent::Undecodable => outcome == "decode_failed",
            Intent::Unsupported => outcome == "discarded",
            Intent::Echo => parts().all(|p| p == "filtered:break_synchronization_cycle"),
            Intent::Late => parts().all(|p| p == "filtered:out_of_order_event"),
            // A replay of anything: never applied (it may replay an undecodable or unsupported
            // message).
            Intent::Replay => {
                matches!(outcome, "decode_failed" | "discarded")
                    || (!outcome.is_empty() && parts().all(|p| p.starts_with("filtered:")))
            }
            Intent::Change => {
                !outcome.is_empty()
                    && parts().all(|p| {
                        matches!(
                            p,
                            "applied"
                                | "filtered:no_change"
                                | "filtered:duplicate_event"
                                | "filtered:state_conflict"
                                | "filtered:manual_conflict"
                        )
                    })
            }
        }
    }
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Message {
    pub flavor: Flavor,
    /// The index of the case it is about, in `Workload::cases`.
    pub case: usize,
    /// The site and the issue or incident id (all of a case's messages share a partition).
    pub key: String,
    pub payload: Vec<u8>,
    pub intent: Intent,
}

/// A case's fields as the sandbox returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub title: String,
    pub description: String,
    pub priority: Option<String>,
    pub status: String,
    pub assignee_id: Option<String>,
    pub due_date: Option<String>,
}

impl Fields {
    pub fn get(&self, field: CaseField) -> Option<String> {
        match field {
            CaseField::Title => Some(self.title.clone()),
            CaseField::Description => Some(self.description.clone()),
            CaseField::Priority => self.priority.clone(),
            CaseField::Status => Some(self.status.clone()),
            CaseField::Assignee => self.assignee_id.clone(),
            CaseField::DueDate => self.due_date.clone(),
        }
    }

    fn set(&mut self, field: CaseField, value: Option<String>) {
        match field {
            CaseField::Title => self.title = value.unwrap_or_default(),
            CaseField::Description => self.description = value.unwrap_or_default(),
            CaseField::Priority => self.priority = value,
            CaseField::Status => self.status = value.unwrap_or_default(),
            CaseField::Assignee => self.assignee_id = value,
            CaseField::DueDate => self.due_date = value,
        }
    }
}

/// What a case must look like at the end.
#[derive(Debug, Clone)]
pub struct ExpectedCase {
    pub case_id: String,
    pub flavor: Flavor,
    /// The issue key or incident sysId and the site (for messages).
    pub label: String,
    /// The site of the linked item (Jira site, ServiceNow instance).
    pub site: String,
    /// The external reference the case is linked by (issue id, incident sysId).
    pub reference: String,
    /// The conflict policy of the case's project.
    pub policy: ConflictPolicy,
    pub fields: Fields,
    /// Every value each field held before its last expected change (a field found at one of
    /// these lost an update; any other unexpected value is wrong).
    pub history: BTreeMap<CaseField, BTreeSet<Option<String>>>,
    /// The marker in each expected comment's body, and whether it is a work note.
    pub comments: BTreeMap<String, bool>,
    /// The field edited in Datadog during the run (its expected value follows from the policy,
    /// the editor's writes and the third party's; see `verify.rs`).
    pub edited_in_datadog: Option<CaseField>,
    /// Every value this case's own messages ever wrote per field (a value of another case's
    /// found here was misrouted).
    pub produced: BTreeMap<CaseField, BTreeSet<String>>,
}

impl ExpectedCase {
    fn change(&mut self, field: CaseField, value: Option<String>) {
        let old = self.fields.get(field);
        if old != value {
            self.history.entry(field).or_default().insert(old);
        }
        if let Some(v) = &value {
            self.produced.entry(field).or_default().insert(v.clone());
        }
        self.fields.set(field, value);
    }
}

/// The whole workload.
#[derive(Debug)]
pub struct Workload {
    pub messages: Vec<Message>,
    pub cases: Vec<ExpectedCase>,
    /// The sandbox seed document for the chaos org.
    pub seed_json: String,
    /// Messages per kind (`jira:title`, `servicenow:echo`, ...).
    pub kinds: BTreeMap<String, u64>,
    /// Groups of two or three ServiceNow state changes within one second.
    pub same_second_changes: u64,
    /// Jira transitions delivered out of order (pairs) or with the earlier one lost.
    pub reordered_transitions: u64,
}

/// Generates `events` messages over `jira_cases` + `servicenow_cases` cases from `seed`.
pub fn generate(seed: u64, jira_cases: usize, servicenow_cases: usize, events: usize) -> Workload {
    let mut g = Generator {
        rng: Rng::new(seed),
        messages: Vec::with_capacity(events),
        cases: Vec::new(),
        kinds: BTreeMap::new(),
        next_comment_id: [700_000; 2],
        next_changelog_id: [900_000; 2],
        same_second_changes: 0,
        reordered_transitions: 0,
    };
    let mut issues: Vec<Issue> = (0..jira_cases).map(|i| g.new_issue(i)).collect();
    let mut incidents: Vec<Incident> = (0..servicenow_cases).map(|i| g.new_incident(i)).collect();
    let seed_json = seed_document(&g.cases);
    while g.messages.len() < events {
        let pick = g.rng.below(jira_cases + servicenow_cases);
        if pick < jira_cases {
            let issue = &mut issues[pick];
            g.jira_event(issue);
        } else {
            let incident = &mut incidents[pick - jira_cases];
            g.servicenow_event(incident);
        }
    }
    Workload {
        messages: g.messages,
        cases: g.cases,
        seed_json,
        kinds: g.kinds,
        same_second_changes: g.same_second_changes,
        reordered_transitions: g.reordered_transitions,
    }
}

struct Generator {
    rng: Rng,
    messages: Vec<Message>,
    cases: Vec<ExpectedCase>,
    kinds: BTreeMap<String, u64>,
    /// Per Jira site: comment and changelog ids are per-site sequences, so they collide.
    next_comment_id: [u64; 2],
    next_changelog_id: [u64; 2],
    same_second_changes: u64,
    reordered_transitions: u64,
}

/// A Jira issue as Jira sees it.
struct Issue {
    case: usize,
    /// Index into `JIRA_SITES`.
    site: usize,
    id: String,
    key: String,
    title: String,
    description: String,
    priority: usize,
    status: usize,
    assignee: Option<usize>,
    due: Option<Date>,
    clock: OffsetDateTime,
    revision: u32,
    /// Indexes of this issue's earlier messages (replayed verbatim).
    past: Vec<usize>,
}

/// A ServiceNow incident.
struct Incident {
    case: usize,
    /// Index into `INSTANCES`.
    site: usize,
    sys_id: String,
    state: usize,
    clock: OffsetDateTime,
    revision: u32,
    past: Vec<usize>,
}

const START: OffsetDateTime = datetime!(2025-02-01 8:00 UTC);

fn initial_fields(title: String) -> Fields {
    Fields {
        title,
        description: String::new(),
        priority: Some("P3".into()),
        status: "OPEN".into(),
        assignee_id: None,
        due_date: None,
    }
}

impl Generator {
    fn new_issue(&mut self, i: usize) -> Issue {
        // Cases 2k and 2k + 1: the same issue id and key on the two sites.
        let site = i % 2;
        let n = i / 2;
        let key = format!("CHS-{}", n + 1);
        let title = format!("Chaos case {key} on {}", JIRA_SITES[site]);
        let edited = i.is_multiple_of(5);
        let policy = ConflictPolicy::ALL[(i / 2) % ConflictPolicy::ALL.len()];
        self.cases.push(ExpectedCase {
            case_id: format!("7c4a0000-0000-4000-8000-{:012}", 100_000 + i),
            flavor: Flavor::Jira,
            label: format!("{key}@{}", JIRA_SITES[site]),
            site: JIRA_SITES[site].to_owned(),
            reference: (300_000 + n).to_string(),
            policy,
            fields: initial_fields(title.clone()),
            history: BTreeMap::new(),
            comments: BTreeMap::new(),
            edited_in_datadog: edited.then_some(CaseField::Priority),
            produced: BTreeMap::new(),
        });
        Issue {
            case: self.cases.len() - 1,
            site,
            id: (300_000 + n).to_string(),
            key,
            title,
            description: String::new(),
            priority: 3,
            status: 0,
            assignee: None,
            due: None,
            clock: START + Duration::minutes(i as i64),
            revision: 0,
            past: Vec::new(),
        }
    }

    fn new_incident(&mut self, i: usize) -> Incident {
        // Cases 2k and 2k + 1: the same sysId on the two instances.
        let site = i % 2;
        let sys_id = format!("c4a0{:028x}", 0x5eed_0000 + i / 2);
        let edited = i.is_multiple_of(5);
        let policy = ConflictPolicy::ALL[(i / 2) % ConflictPolicy::ALL.len()];
        self.cases.push(ExpectedCase {
            case_id: format!("7c4a0000-0000-4000-8000-{:012}", 200_000 + i),
            flavor: Flavor::ServiceNow,
            label: format!("{sys_id}@{}", INSTANCES[site]),
            site: INSTANCES[site].to_owned(),
            reference: sys_id.clone(),
            policy,
            fields: initial_fields(format!("Chaos incident INC{:07}", 50_000 + i)),
            history: BTreeMap::new(),
            comments: BTreeMap::new(),
            edited_in_datadog: edited.then_some(CaseField::Status),
            produced: BTreeMap::new(),
        });
        Incident {
            case: self.cases.len() - 1,
            site,
            sys_id,
            state: 0,
            clock: START + Duration::minutes(i as i64),
            revision: 0,
            past: Vec::new(),
        }
    }

    fn push(
        &mut self,
        flavor: Flavor,
        case: usize,
        key: &str,
        kind: &str,
        payload: Vec<u8>,
        intent: Intent,
    ) -> usize {
        *self
            .kinds
            .entry(format!("{}:{kind}", flavor.name()))
            .or_insert(0) += 1;
        self.messages.push(Message {
            flavor,
            case,
            key: key.to_owned(),
            payload,
            intent,
        });
        self.messages.len() - 1
    }

    // ---- Jira -------------------------------------------------------------------------------

    fn jira_event(&mut self, issue: &mut Issue) {
        const KINDS: [(&str, u32); 15] = [
            ("title", 13),
            ("description", 9),
            ("priority", 9),
            ("status", 7),
            ("reordered_status", 4),
            ("lost_status", 2),
            ("assignee", 9),
            ("due_date", 9),
            ("several_fields", 6),
            ("comment", 22),
            ("echo_comment", 4),
            ("echo_title", 3),
            ("replay", 4),
            ("unsupported", 1),
            ("truncated", 2),
        ];
        let weights: Vec<u32> = KINDS.iter().map(|(_, w)| *w).collect();
        let mut kind = KINDS[self.rng.weighted(&weights)].0;
        let case_policy = self.cases[issue.case].policy;
        let no_priority = self.cases[issue.case].edited_in_datadog == Some(CaseField::Priority);
        if kind == "replay" && issue.past.is_empty() {
            kind = "comment";
        }
        // The strict policy keeps the original rule: a transition whose `from` is not the
        // case's value is a state conflict, so reordered or lost transitions would leave the
        // case behind for good. They are generated where the policy converges.
        if matches!(kind, "reordered_status" | "lost_status")
            && case_policy == ConflictPolicy::Strict
        {
            kind = "status";
        }
        issue.clock += Duration::seconds(1 + self.rng.below(20) as i64);
        issue.revision += 1;
        let human = self.rng.below(USERS.len());
        let key = format!("{}:{}", JIRA_SITES[issue.site], issue.id);
        let site = JIRA_SITES[issue.site];
        let index = match kind {
            "title" | "description" | "priority" | "status" | "assignee" | "due_date" => {
                let item = self.jira_change(issue, kind);
                let payload =
                    self.issue_updated(issue, jira_user(site, USERS[human].1, human), vec![item]);
                self.push(
                    Flavor::Jira,
                    issue.case,
                    &key,
                    kind,
                    payload,
                    Intent::Change,
                )
            }
            "reordered_status" | "lost_status" => {
                // A -> B at t1, then B -> C at t2; delivered B -> C first (and A -> B after it,
                // or never).
                let by = jira_user(site, USERS[human].1, human);
                let first = self.jira_change(issue, "status");
                let first = self.issue_updated(issue, by.clone(), vec![first]);
                issue.clock += Duration::seconds(1 + self.rng.below(5) as i64);
                issue.revision += 1;
                let second = self.jira_change(issue, "status");
                let second = self.issue_updated(issue, by, vec![second]);
                self.reordered_transitions += 1;
                let index = self.push(Flavor::Jira, issue.case, &key, kind, second, Intent::Change);
                if kind == "reordered_status" {
                    issue.past.push(index);
                    self.push(
                        Flavor::Jira,
                        issue.case,
                        &key,
                        "late_status",
                        first,
                        Intent::Late,
                    )
                } else {
                    index
                }
            }
            "several_fields" => {
                let mut fields = vec!["title", "description", "status", "due_date", "assignee"];
                if !no_priority {
                    fields.push("priority");
                }
                let count = 2 + self.rng.below(2);
                let mut items = Vec::new();
                for _ in 0..count {
                    let field = fields.remove(self.rng.below(fields.len()));
                    items.push(self.jira_change(issue, field));
                }
                let payload =
                    self.issue_updated(issue, jira_user(site, USERS[human].1, human), items);
                self.push(
                    Flavor::Jira,
                    issue.case,
                    &key,
                    kind,
                    payload,
                    Intent::Change,
                )
            }
            "comment" | "echo_comment" => {
                let echo = kind == "echo_comment";
                let marker = format!(
                    "[{}jc-{}-s{}-{}]",
                    if echo { "echo-" } else { "" },
                    issue.key,
                    issue.site,
                    issue.revision
                );
                let body = if echo {
                    format!("Comment from Datadog {marker}: synced to Jira by the integration.")
                } else {
                    format!(
                        "{marker} Still failing after the rollback; attaching the trace.\n\n– {}",
                        USER_NAMES[human]
                    )
                };
                if !echo {
                    self.cases[issue.case].comments.insert(marker, false);
                }
                let author = if echo {
                    jira_user(site, JIRA_BOT, 0)
                } else {
                    jira_user(site, USERS[human].1, human)
                };
                let payload = self.comment_created(issue, author, &body);
                let intent = if echo { Intent::Echo } else { Intent::Change };
                self.push(Flavor::Jira, issue.case, &key, kind, payload, intent)
            }
            "echo_title" => {
                let item = text_item(
                    "summary",
                    &issue.title,
                    &format!("{} (edited in Datadog)", issue.title),
                );
                let payload = self.issue_updated(issue, jira_user(site, JIRA_BOT, 0), vec![item]);
                self.push(Flavor::Jira, issue.case, &key, kind, payload, Intent::Echo)
            }
            "replay" => {
                let past = issue.past[self.rng.below(issue.past.len())];
                let payload = self.messages[past].payload.clone();
                self.push(
                    Flavor::Jira,
                    issue.case,
                    &key,
                    kind,
                    payload,
                    Intent::Replay,
                )
            }
            "unsupported" => {
                let payload = envelope(
                    issue,
                    json!({
                        "timestamp": millis(issue.clock),
                        "webhookEvent": "worklog_created",
                        "worklog": {"id": issue.revision.to_string(), "timeSpent": "1h"},
                        "issue": issue_json(issue),
                    }),
                );
                self.push(
                    Flavor::Jira,
                    issue.case,
                    &key,
                    kind,
                    payload,
                    Intent::Unsupported,
                )
            }
            _ => {
                let mut payload =
                    self.comment_created(issue, jira_user(site, USERS[human].1, human), "cut");
                payload.truncate(payload.len() / 2);
                self.push(
                    Flavor::Jira,
                    issue.case,
                    &key,
                    "truncated",
                    payload,
                    Intent::Undecodable,
                )
            }
        };
        if kind != "replay" {
            issue.past.push(index);
        }
    }

    /// One changelog item changing `field` (and the expected case with it).
    fn jira_change(&mut self, issue: &mut Issue, field: &str) -> Value {
        let case = &mut self.cases[issue.case];
        match field {
            "title" => {
                let new = format!(
                    "{} on {} · revision {}",
                    issue.key, JIRA_SITES[issue.site], issue.revision
                );
                let item = text_item("summary", &issue.title, &new);
                case.change(CaseField::Title, Some(new.clone()));
                issue.title = new;
                item
            }
            "description" => {
                let new = format!(
                    "Revision {} of {} on {}.\n\n* impact: checkout\n* owner: team-{}",
                    issue.revision,
                    issue.key,
                    JIRA_SITES[issue.site],
                    issue.revision % 7
                );
                let item = text_item("description", &issue.description, &new);
                case.change(CaseField::Description, Some(new.clone()));
                issue.description = new;
                item
            }
            "priority" => {
                // Ids 1..=4 only: P5 (and P0) are the Datadog-side editor's values.
                let mut new = 1 + self.rng.below(4);
                if new == issue.priority {
                    new = new % 4 + 1;
                }
                let item = json!({"field": "priority", "fieldtype": "jira", "fieldId": "priority",
                    "from": issue.priority.to_string(), "fromString": PRIORITY_NAMES[issue.priority - 1],
                    "to": new.to_string(), "toString": PRIORITY_NAMES[new - 1]});
                case.change(CaseField::Priority, Some(format!("P{new}")));
                issue.priority = new;
                item
            }
            "status" => {
                let new = (issue.status + 1 + self.rng.below(2)) % STATUSES.len();
                let (from, from_name, _) = STATUSES[issue.status];
                let (to, to_name, status) = STATUSES[new];
                let item = json!({"field": "status", "fieldtype": "jira", "fieldId": "status",
                    "from": from, "fromString": from_name, "to": to, "toString": to_name});
                case.change(CaseField::Status, Some(status.to_owned()));
                issue.status = new;
                item
            }
            "assignee" => {
                let mut new = match self.rng.below(USERS.len() + 1) {
                    n if n == USERS.len() => None,
                    n => Some(n),
                };
                if new == issue.assignee {
                    new = Some(issue.assignee.map_or(0, |n| (n + 1) % USERS.len()));
                }
                let account = |u: Option<usize>| u.map(|n| USERS[n].1);
                let name = |u: Option<usize>| u.map(|n| USER_NAMES[n]);
                let item = json!({"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                    "from": account(issue.assignee), "fromString": name(issue.assignee),
                    "to": account(new), "toString": name(new),
                    "tmpFromAccountId": account(issue.assignee), "tmpToAccountId": account(new)});
                case.change(CaseField::Assignee, new.map(|n| USERS[n].0.to_owned()));
                issue.assignee = new;
                item
            }
            _ => {
                let new = if self.rng.below(8) == 0 && issue.due.is_some() {
                    None
                } else {
                    let mut day = datetime!(2025-03-01 0:00 UTC).date()
                        + Duration::days(self.rng.below(300) as i64);
                    if Some(day) == issue.due {
                        day += Duration::days(1);
                    }
                    Some(day)
                };
                let text = |d: Option<Date>| d.map(|d| d.to_string());
                let item = json!({"field": "duedate", "fieldtype": "jira", "fieldId": "duedate",
                    "from": text(issue.due), "fromString": text(issue.due).map(|d| format!("{d} 00:00:00.0")),
                    "to": text(new), "toString": text(new).map(|d| format!("{d} 00:00:00.0"))});
                case.change(CaseField::DueDate, text(new));
                issue.due = new;
                item
            }
        }
    }

    fn issue_updated(&mut self, issue: &Issue, by: Value, items: Vec<Value>) -> Vec<u8> {
        self.next_changelog_id[issue.site] += 1;
        let changelog_id = self.next_changelog_id[issue.site];
        envelope(
            issue,
            json!({
                "timestamp": millis(issue.clock),
                "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": "issue_generic",
                "user": by,
                "issue": issue_json(issue),
                "changelog": {"id": changelog_id.to_string(), "items": items}
            }),
        )
    }

    fn comment_created(&mut self, issue: &Issue, by: Value, body: &str) -> Vec<u8> {
        self.next_comment_id[issue.site] += 1;
        let id = self.next_comment_id[issue.site];
        let site = JIRA_SITES[issue.site];
        envelope(
            issue,
            json!({
                "timestamp": millis(issue.clock),
                "webhookEvent": "comment_created",
                "comment": {
                    "self": format!("https://{site}/rest/api/2/issue/{}/comment/{id}", issue.id),
                    "id": id.to_string(),
                    "author": by.clone(),
                    "body": body,
                    "updateAuthor": by,
                    "created": jira_time(issue.clock),
                    "updated": jira_time(issue.clock),
                    "jsdPublic": true
                },
                "issue": issue_json(issue)
            }),
        )
    }

    // ---- ServiceNow -------------------------------------------------------------------------

    fn servicenow_event(&mut self, incident: &mut Incident) {
        const KINDS: [(&str, u32); 10] = [
            ("comment", 28),
            ("work_note", 20),
            ("state", 14),
            ("same_second_states", 6),
            ("comment_and_state", 10),
            ("comment_and_work_note", 7),
            ("echo", 6),
            ("replay", 6),
            ("unsupported", 2),
            ("truncated", 3),
        ];
        let weights: Vec<u32> = KINDS.iter().map(|(_, w)| *w).collect();
        let mut kind = KINDS[self.rng.weighted(&weights)].0;
        if kind == "replay" && incident.past.is_empty() {
            kind = "comment";
        }
        // ServiceNow's `updatedAt` has second precision: one event per second, but for the
        // same-second groups.
        incident.clock += Duration::seconds(1 + self.rng.below(20) as i64);
        incident.revision += 1;
        let human = self.rng.below(USERS.len());
        let case = incident.case;
        let key = format!("{}:{}", INSTANCES[incident.site], incident.sys_id);
        let label = format!(
            "{}-s{}-{}",
            &incident.sys_id[24..],
            incident.site,
            incident.revision
        );
        let mut data = serde_json::Map::new();
        let mut by = USERS[human].2;
        let add_comment = |data: &mut serde_json::Map<String, Value>,
                           cases: &mut Vec<ExpectedCase>,
                           work_note: bool| {
            let marker = format!("[{}-{label}]", if work_note { "sw" } else { "sc" });
            let (key, text) = if work_note {
                (
                    "workNote",
                    format!("{marker} Checked the VPN concentrator logs: \"tunnel reset\" ×3."),
                )
            } else {
                (
                    "comment",
                    format!("Customer update {marker}: still failing from Berlin.\nPlease advise."),
                )
            };
            data.insert(key.into(), Value::String(text));
            cases[case].comments.insert(marker, work_note);
        };
        match kind {
            "comment" => add_comment(&mut data, &mut self.cases, false),
            "work_note" => add_comment(&mut data, &mut self.cases, true),
            "comment_and_work_note" => {
                add_comment(&mut data, &mut self.cases, false);
                add_comment(&mut data, &mut self.cases, true);
            }
            "state" | "comment_and_state" => {
                if kind == "comment_and_state" {
                    add_comment(&mut data, &mut self.cases, false);
                }
                let new = (incident.state + 1 + self.rng.below(2)) % STATES.len();
                data.insert("state".into(), Value::String(STATES[new].0.into()));
                self.cases[case].change(CaseField::Status, Some(STATES[new].1.into()));
                incident.state = new;
            }
            "echo" => {
                by = SERVICENOW_BOT;
                data.insert(
                    "comment".into(),
                    Value::String(format!("[echo-{label}] Case updated in Datadog.")),
                );
            }
            _ => {}
        }
        let index = match kind {
            "replay" => {
                let past = incident.past[self.rng.below(incident.past.len())];
                let payload = self.messages[past].payload.clone();
                self.push(
                    Flavor::ServiceNow,
                    case,
                    &key,
                    kind,
                    payload,
                    Intent::Replay,
                )
            }
            "same_second_states" => {
                // Two or three state changes within one second, delivered in order: the last
                // one wins (a replay check on the time alone would keep the first). Each state
                // at most once per second: the same state twice in one second is the same
                // bytes twice, which only a replay is.
                let count = 2 + self.rng.below(2);
                let mut last = 0;
                let mut used = Vec::new();
                for _ in 0..count {
                    let mut new = (incident.state + 1 + self.rng.below(2)) % STATES.len();
                    while used.contains(&new) {
                        new = (new + 1) % STATES.len();
                    }
                    used.push(new);
                    let payload = servicenow_event(
                        "datadog_x_incident",
                        incident,
                        by,
                        json!({"state": STATES[new].0}),
                    );
                    self.cases[case].change(CaseField::Status, Some(STATES[new].1.into()));
                    incident.state = new;
                    last = self.push(
                        Flavor::ServiceNow,
                        case,
                        &key,
                        kind,
                        payload,
                        Intent::Change,
                    );
                    incident.past.push(last);
                }
                self.same_second_changes += 1;
                last
            }
            "unsupported" | "truncated" => {
                let event_type = if kind == "unsupported" {
                    "datadog_x_problem"
                } else {
                    "datadog_x_incident"
                };
                let mut payload =
                    servicenow_event(event_type, incident, by, json!({"comment": "n/a"}));
                let intent = if kind == "truncated" {
                    payload.truncate(payload.len() * 2 / 3);
                    Intent::Undecodable
                } else {
                    Intent::Unsupported
                };
                self.push(Flavor::ServiceNow, case, &key, kind, payload, intent)
            }
            _ => {
                let payload =
                    servicenow_event("datadog_x_incident", incident, by, Value::Object(data));
                let intent = if kind == "echo" {
                    Intent::Echo
                } else {
                    Intent::Change
                };
                self.push(Flavor::ServiceNow, case, &key, kind, payload, intent)
            }
        };
        if kind != "replay" && kind != "same_second_states" {
            incident.past.push(index);
        }
    }
}

fn jira_user(site: &str, account_id: &str, index: usize) -> Value {
    let name = if account_id == JIRA_BOT {
        "Datadog Sync"
    } else {
        USER_NAMES[index]
    };
    json!({
        "self": format!("https://{site}/rest/api/2/user?accountId={account_id}"),
        "accountId": account_id,
        "displayName": name,
        "active": true,
        "timeZone": "Europe/Berlin",
        "accountType": "atlassian"
    })
}

fn issue_json(issue: &Issue) -> Value {
    json!({
        "id": issue.id,
        "self": format!("https://{}/rest/api/2/issue/{}", JIRA_SITES[issue.site], issue.id),
        "key": issue.key,
        "fields": {
            "summary": issue.title,
            "issuetype": {"id": ISSUE_TYPE, "name": "Bug", "subtask": false},
            "project": {"id": JIRA_PROJECT, "key": "CHS", "projectTypeKey": "software"}
        }
    })
}

/// The Kafka envelope around a chaos-org Jira webhook of `issue`'s site, received one second
/// after the issue's clock.
fn envelope(issue: &Issue, webhook: Value) -> Vec<u8> {
    jira_envelope(ORG, JIRA_SITES[issue.site], issue.clock, webhook)
}

fn servicenow_event(event_type: &str, incident: &Incident, by: &str, data: Value) -> Vec<u8> {
    servicenow_message(
        event_type,
        ORG,
        &incident.sys_id,
        INSTANCES[incident.site],
        &rfc3339(incident.clock),
        by,
        data,
    )
}

/// The sandbox seed for the chaos org: one case project per integration and conflict policy,
/// the sync metadata of both sites of each integration, the users and every case at its
/// initial state.
fn seed_document(cases: &[ExpectedCase]) -> String {
    let case_docs: Vec<Value> = cases
        .iter()
        .map(|c| {
            let integration = match c.flavor {
                Flavor::Jira => "jira",
                Flavor::ServiceNow => "servicenow",
                Flavor::GitHub => "github",
            };
            json!({
                "id": c.case_id,
                "org_id": ORG,
                "project_id": case_project(c.flavor, c.policy),
                "version": 1,
                "title": c.fields.title,
                "description": "",
                "priority": "P3",
                "status": "OPEN",
                "assignee_id": null,
                "due_date": null,
                "created_at": "2025-01-15T09:00:00Z",
                "external_references": [
                    {"integration": integration, "site": c.site, "reference": c.reference}
                ]
            })
        })
        .collect();
    let users: Vec<Value> = USERS
        .iter()
        .zip(USER_NAMES)
        .map(|((id, jira, servicenow), name)| {
            json!({
                "org_id": ORG,
                "id": id,
                "display_name": name,
                "email": format!("{}@chaos.example", jira),
                "external_ids": {"jira": [jira], "servicenow": [servicenow]}
            })
        })
        .collect();
    let mut settings = Vec::new();
    for policy in ConflictPolicy::ALL {
        settings.push(json!({
            "org_id": ORG,
            "project_id": case_project(Flavor::Jira, policy),
            "integration": "jira",
            "integration_enabled": true,
            "project_sync_enabled": true,
            "sync_type": "ST_BIDIRECTIONAL",
            "field_sync": {"title": true, "description": true, "priority": true,
                           "status": true, "assignee": true, "due_date": true},
            "comment_sync_enabled": true,
            "work_note_sync_enabled": false,
            "value_mappings": {
                "priority": {"1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P5"},
                "status": {"10000": "OPEN", "3": "IN_PROGRESS", "10001": "RESOLVED"}
            },
            "custom_fields": {},
            "start_syncing_from": "2025-01-01T00:00:00Z",
            "conflict_policy": policy.as_str()
        }));
        settings.push(json!({
            "org_id": ORG,
            "project_id": case_project(Flavor::ServiceNow, policy),
            "integration": "servicenow",
            "integration_enabled": true,
            "project_sync_enabled": true,
            "sync_type": "ST_ONE_WAY_PULL",
            "field_sync": {"status": true, "title": false},
            "comment_sync_enabled": true,
            "work_note_sync_enabled": true,
            "value_mappings": {
                "status": {"1": "OPEN", "2": "IN_PROGRESS", "3": "IN_PROGRESS",
                           "6": "CLOSED", "7": "CLOSED"}
            },
            "custom_fields": {},
            "start_syncing_from": "2025-01-01T00:00:00Z",
            "conflict_policy": policy.as_str()
        }));
    }
    json!({
        "orgs": [{"id": ORG, "name": "Chaos Ltd"}],
        "project_settings": settings,
        "sync_metadata": [
            {
                "org_id": ORG,
                "integration": "jira",
                "project_id": case_project(Flavor::Jira, ConflictPolicy::Converge),
                "scope": {"account_id": JIRA_SITES, "project_id": [JIRA_PROJECT],
                          "issue_type_id": [ISSUE_TYPE]},
                "custom_fields": {},
                "own_user_ids": [JIRA_BOT]
            },
            {
                "org_id": ORG,
                "integration": "servicenow",
                "project_id": case_project(Flavor::ServiceNow, ConflictPolicy::Converge),
                "scope": {"instance_name": INSTANCES},
                "own_user_ids": [SERVICENOW_BOT]
            }
        ],
        "users": users,
        "cases": case_docs
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_deterministic_and_sized() {
        let a = generate(7, 20, 20, 2_000);
        let b = generate(7, 20, 20, 2_000);
        assert_eq!(a.messages.len(), 2_000);
        assert_eq!(a.seed_json, b.seed_json);
        assert!(
            a.messages
                .iter()
                .zip(&b.messages)
                .all(|(x, y)| x.payload == y.payload && x.key == y.key)
        );
        assert!(a.kinds.len() >= 21, "{:?}", a.kinds);
        let comments: usize = a.cases.iter().map(|c| c.comments.len()).sum();
        assert!(comments > 500, "{comments}");
        assert!(a.same_second_changes > 0 && a.reordered_transitions > 0);
        // Twins: the same ids on two sites.
        for pair in a.cases.chunks(2) {
            assert_eq!(pair[0].reference, pair[1].reference);
            assert_ne!(pair[0].site, pair[1].site);
        }
        let policies: BTreeSet<&str> = a.cases.iter().map(|c| c.policy.as_str()).collect();
        assert_eq!(policies.len(), 4);
        for m in &a.messages {
            assert!(!m.key.is_empty());
        }
    }
}
