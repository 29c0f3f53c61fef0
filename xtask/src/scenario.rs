//! The demo's scripted scenario: realistic Jira and ServiceNow messages consistent with the demo
//! seed (`bins/case-api-sandbox/seed/demo.json`), each with the outcome the readers must reach.
//!
//! Self-contained (serde_json, time and `thirdparty_core::FilterReason` only) so an end-to-end
//! test can replay the same story: [`steps`] is the list of (topic, key, message bytes, expected
//! outcomes) in production order, and [`expected_cases`] the state of the affected cases after
//! all of them.
//!
//! The story, on 2024-06-03 (UTC): Acme's checkout incident PROJ-12 moves in Jira (status,
//! summary, description, priority, assignee, due date, a comment), PROJ-13 gets a new target date
//! and assignee; the ServiceNow incidents INC0010023 and INC0010031 get comments, work notes and
//! state changes. Around them: our own writes echoed back, a stale `from` value, unmapped values,
//! projects and instances nobody configured, delayed and replayed webhooks, truncated messages.

use std::fmt;

use serde_json::{Value, json};
use thirdparty_core::FilterReason;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The Jira topic.
pub const JIRA_TOPIC: &str = "collaboration_integrations_jira";
/// The ServiceNow topic.
pub const SERVICENOW_TOPIC: &str = "collaboration_integrations_servicenow";
/// The GitHub reader's topic.
pub const GITHUB_TOPIC: &str = "collaboration_integrations_github";
/// The consumer group of both readers.
pub const GROUP: &str = "case-management";

/// Org Acme Corp in the demo seed.
pub const ACME: u64 = 123_456;
/// Org Globex in the demo seed.
pub const GLOBEX: u64 = 789_012;
/// Acme's Jira Cloud site.
const JIRA_SITE: &str = "acme.atlassian.net";

/// Demo-seed cases.
pub const CASE_PROJ_12: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a01";
/// Demo-seed case linked to PROJ-13.
pub const CASE_PROJ_13: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a02";
/// Demo-seed case linked to ServiceNow INC0010023.
pub const CASE_INC_23: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a04";
/// Demo-seed case linked to ServiceNow INC0010031.
pub const CASE_INC_31: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a05";
/// Demo-seed case of Globex's push-only ServiceNow project.
pub const CASE_GLOBEX_PRINTERS: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a07";

/// The integration a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavor {
    /// Jira (Cloud) webhooks in the Kafka envelope.
    Jira,
    /// ServiceNow diff events.
    ServiceNow,
    /// GitHub `issues` and `issue_comment` webhooks in the Kafka envelope.
    GitHub,
}

impl Flavor {
    /// Every flavor.
    pub const ALL: [Flavor; 3] = [Flavor::Jira, Flavor::ServiceNow, Flavor::GitHub];

    /// The flavor name used in metric names (`jira`, `servicenow`, `github`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Jira => "jira",
            Flavor::ServiceNow => "servicenow",
            Flavor::GitHub => "github",
        }
    }

    /// The topic the flavor's reader consumes.
    pub fn topic(self) -> &'static str {
        match self {
            Flavor::Jira => JIRA_TOPIC,
            Flavor::ServiceNow => SERVICENOW_TOPIC,
            Flavor::GitHub => GITHUB_TOPIC,
        }
    }
}

/// What must become of one changelog (or of an undecodable message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Written to the case (`changelog_processed`).
    Applied,
    /// Dropped with this reason (`{flavor}.filtered`, tag `reason`).
    Filtered(FilterReason),
    /// The message is not JSON (`decoding_failed`).
    DecodeFailed,
    /// Valid JSON the decoder does not handle (`discarded`).
    Discarded,
    /// The Case API refused the write as invalid (`changelog_rejected`).
    Rejected,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Applied => f.write_str("applied"),
            Outcome::Filtered(reason) => write!(f, "filtered: {reason}"),
            Outcome::DecodeFailed => f.write_str("decode failed"),
            Outcome::Discarded => f.write_str("discarded"),
            Outcome::Rejected => f.write_str("rejected"),
        }
    }
}

/// One message of the scenario and what the reader must do with it.
#[derive(Debug, Clone)]
pub struct Step {
    /// Short id for the output (`J01`, `S01`).
    pub id: &'static str,
    /// The integration (and so the topic).
    pub flavor: Flavor,
    /// The Kafka key (the third-party item, so one item's events stay in order).
    pub key: String,
    /// What happens, for a human.
    pub what: String,
    /// The message value.
    pub value: Vec<u8>,
    /// One outcome per changelog the message yields (or one for an undecodable message).
    pub expect: Vec<Outcome>,
}

impl Step {
    /// The topic to produce to.
    pub fn topic(&self) -> &'static str {
        self.flavor.topic()
    }
}

/// The state a case must end in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseExpectation {
    /// Organization.
    pub org_id: u64,
    /// Case id.
    pub case_id: &'static str,
    /// The third-party item, for a human.
    pub label: &'static str,
    /// Title.
    pub title: &'static str,
    /// Status.
    pub status: &'static str,
    /// Priority.
    pub priority: Option<&'static str>,
    /// Assignee, by display name.
    pub assignee: Option<&'static str>,
    /// Due date (`YYYY-MM-DD`).
    pub due_date: Option<&'static str>,
    /// Optimistic-lock version (one bump per applied field change).
    pub version: u64,
    /// Timeline entries (comments and work notes).
    pub comments: usize,
}

/// Every message of the scenario, in the order to produce them.
pub fn steps() -> Vec<Step> {
    use FilterReason as R;
    use Outcome::{Applied, DecodeFailed, Discarded, Filtered};
    let mut steps = Vec::new();
    let mut jira = |id, issue: Issue, what: &str, value, expect| {
        steps.push(Step {
            id,
            flavor: Flavor::Jira,
            key: issue.key.to_owned(),
            what: what.to_owned(),
            value,
            expect,
        });
    };

    jira(
        "J01",
        PROJ_12,
        "PROJ-12 status To Do -> In Progress (John)",
        issue_updated(
            PROJ_12,
            JOHN,
            at(9, 2),
            vec![item("status", "10000", "To Do", "3", "In Progress")],
        ),
        vec![Applied],
    );
    jira(
        "J02",
        PROJ_12,
        "PROJ-12 summary, description, priority High -> Highest (John)",
        issue_updated(
            PROJ_12,
            JOHN,
            at(9, 5),
            vec![
                text_item(
                    "summary",
                    "Checkout latency spike in us-east-1",
                    "Checkout p99 above SLO in us-east-1",
                ),
                text_item(
                    "description",
                    "p99 of `checkout-api` above 2s since 09:40 UTC.",
                    "p99 of `checkout-api` above 2s since 09:40 UTC.\n\nh3. Impact\n* ~4% of orders time out",
                ),
                item("priority", "2", "High", "1", "Highest"),
            ],
        ),
        vec![Applied, Applied, Applied],
    );
    jira(
        "J03",
        PROJ_12,
        "PROJ-12 assigned to John Smith (seeded user, by Jira id)",
        issue_updated(
            PROJ_12,
            JANE,
            at(9, 7),
            vec![user_item("assignee", None, Some(JOHN))],
        ),
        vec![Applied],
    );
    jira(
        "J04",
        PROJ_12,
        "PROJ-12 due date set to 2024-06-30",
        issue_updated(
            PROJ_12,
            JOHN,
            at(9, 9),
            vec![
                json!({"field": "duedate", "fieldtype": "jira", "fieldId": "duedate",
                "from": null, "fromString": null,
                "to": "2024-06-30", "toString": "2024-06-30 00:00:00.0"}),
            ],
        ),
        vec![Applied],
    );
    let first_comment = comment_created(
        PROJ_12,
        JOHN,
        "10100",
        at(9, 10),
        "Rolled back the cache config; p99 is recovering. Will confirm in 30 min.",
    );
    jira(
        "J05",
        PROJ_12,
        "PROJ-12 comment by John",
        first_comment.clone(),
        vec![Applied],
    );
    jira(
        "J06",
        PROJ_13,
        "PROJ-13 custom 'Target date' (customfield_10015) -> 2024-10-15",
        issue_updated(
            PROJ_13,
            JANE,
            at(9, 11),
            vec![json!({"field": "Target date", "fieldtype": "custom",
                "fieldId": "customfield_10015",
                "from": "2024-10-08", "fromString": "8/Oct/24",
                "to": "2024-10-15", "toString": "15/Oct/24"})],
        ),
        vec![Applied],
    );
    jira(
        "J07",
        PROJ_13,
        "PROJ-13 reassigned Jane -> Priya (matched by display name)",
        issue_updated(
            PROJ_13,
            JANE,
            at(9, 12),
            vec![user_item("assignee", Some(JANE), Some(PRIYA))],
        ),
        vec![Applied],
    );
    jira(
        "J08",
        PROJ_12,
        "echo: our own sync user moved PROJ-12 to Done",
        issue_updated(
            PROJ_12,
            DATADOG,
            at(9, 13),
            vec![item("status", "3", "In Progress", "10001", "Done")],
        ),
        vec![Filtered(R::BreakSynchronizationCycle)],
    );
    jira(
        "J09",
        PROJ_12,
        "echo: comment our sync user posted on PROJ-12",
        comment_created(
            PROJ_12,
            DATADOG,
            "10101",
            at(9, 14),
            "Case priority changed to P1 by Jane Doe in Datadog.",
        ),
        vec![Filtered(R::BreakSynchronizationCycle)],
    );
    jira(
        "J10",
        PROJ_13,
        "PROJ-13 priority Medium -> High, but the case was set to P1 in Datadog (policy converge)",
        issue_updated(
            PROJ_13,
            JANE,
            at(9, 15),
            vec![item("priority", "3", "Medium", "2", "High")],
        ),
        vec![Filtered(R::StateConflict)],
    );
    jira(
        "J11",
        PROJ_12,
        "PROJ-12 status -> In Review (no case status mapped)",
        issue_updated(
            PROJ_12,
            JOHN,
            at(9, 16),
            vec![item("status", "3", "In Progress", "10002", "In Review")],
        ),
        vec![Filtered(R::FieldValueNotMapped)],
    );
    jira(
        "J12",
        OPS_7,
        "OPS-7 in project OPS, which no sync metadata covers",
        issue_updated(
            OPS_7,
            JOHN,
            at(9, 17),
            vec![text_item(
                "summary",
                "Rotate TLS certificates",
                "Rotate TLS certificates on edge proxies",
            )],
        ),
        vec![Filtered(R::NoMatchingMetadata)],
    );
    jira(
        "J13",
        PROJ_15,
        "PROJ-15 is a Story, an issue type PROJ does not sync",
        issue_updated(
            PROJ_15,
            JOHN,
            at(9, 18),
            vec![item("status", "10000", "To Do", "3", "In Progress")],
        ),
        vec![Filtered(R::IssueTypeNotSynced)],
    );
    jira(
        "J14",
        PROJ_12,
        "delayed webhook: PROJ-12 priority change from 08:20",
        issue_updated(
            PROJ_12,
            JANE,
            at(8, 20),
            vec![item("priority", "3", "Medium", "2", "High")],
        ),
        vec![Filtered(R::OutOfOrderEvent)],
    );
    jira(
        "J15",
        PROJ_12,
        "replay of J05's comment webhook",
        first_comment,
        vec![Filtered(R::DuplicateEvent)],
    );
    jira(
        "J16",
        PROJ_13,
        "PROJ-13 assigned to Sam Rivera, who is no case user",
        issue_updated(
            PROJ_13,
            JANE,
            at(9, 19),
            vec![user_item("assignee", Some(PRIYA), Some(SAM))],
        ),
        vec![Filtered(R::AssigneeResolutionFailed)],
    );
    jira(
        "J17",
        PROJ_12,
        "PROJ-12 Sprint (custom, unmapped) and labels",
        issue_updated(
            PROJ_12,
            JOHN,
            at(9, 20),
            vec![
                json!({"field": "Sprint", "fieldtype": "custom", "fieldId": "customfield_10020",
                    "from": "", "fromString": "", "to": "7", "toString": "PROJ Sprint 7"}),
                json!({"field": "labels", "fieldtype": "jira", "fieldId": "labels",
                    "from": null, "fromString": "", "to": null, "toString": "checkout sev2"}),
            ],
        ),
        vec![
            Filtered(R::CustomFieldNotConfigured),
            Filtered(R::UnsupportedChangelogType),
        ],
    );
    jira(
        "J18",
        PROJ_16,
        "PROJ-16 created in Jira, linked to no case",
        envelope(
            at(9, 21),
            json!({
                "timestamp": millis(at(9, 21)),
                "webhookEvent": "jira:issue_created",
                "issue_event_type_name": "issue_created",
                "user": jira_user(JOHN),
                "issue": issue_json(PROJ_16),
                "changelog": {"id": changelog_id(at(9, 21)), "items": [
                    user_item("assignee", None, Some(JOHN))
                ]}
            }),
        ),
        vec![Filtered(R::NoCorrespondingCase)],
    );
    jira(
        "J19",
        PROJ_12,
        "backlog: a PROJ-12 comment from before sync started",
        comment_created(
            PROJ_12,
            JANE,
            "9977",
            datetime!(2023-12-18 16:00 UTC),
            "Seeing slow checkouts again after the freeze.",
        ),
        vec![Filtered(R::CreatedBeforeStartSyncingFrom)],
    );
    jira(
        "J20",
        PROJ_12,
        "worklog_created: an event type the reader does not handle",
        envelope(
            at(9, 22),
            json!({
                "timestamp": millis(at(9, 22)),
                "webhookEvent": "worklog_created",
                "worklog": {"id": "30012", "issueId": PROJ_12.id, "timeSpent": "1h",
                    "author": jira_user(JOHN)}
            }),
        ),
        vec![Discarded],
    );
    let full = issue_updated(
        PROJ_12,
        JOHN,
        at(9, 23),
        vec![item("status", "3", "In Progress", "10001", "Done")],
    );
    jira(
        "J21",
        PROJ_12,
        "a message truncated in transit",
        full[..full.len() / 2].to_vec(),
        vec![DecodeFailed],
    );

    let mut servicenow = |id, sys_id: &str, what: &str, value, expect| {
        steps.push(Step {
            id,
            flavor: Flavor::ServiceNow,
            key: sys_id.to_owned(),
            what: what.to_owned(),
            value,
            expect,
        });
    };
    let first_comment = servicenow_event(
        INC_23,
        "acme",
        "2024-06-03T10:00:00Z",
        "beth.anglin",
        json!({"comment": "Berlin office reports the VPN drops every 5 minutes since 09:50.",
               "correlationId": CASE_INC_23}),
    );
    servicenow(
        "S01",
        INC_23,
        "INC0010023 comment (case by correlationId)",
        first_comment.clone(),
        vec![Applied],
    );
    servicenow(
        "S02",
        INC_23,
        "INC0010023 work note (case by sysId reference)",
        servicenow_event(
            INC_23,
            "acme",
            "2024-06-03T10:05:00Z",
            "abel.tuter",
            json!({"workNote": "Escalated to the network team, waiting on packet captures."}),
        ),
        vec![Applied],
    );
    servicenow(
        "S03",
        INC_23,
        "INC0010023 state New -> In Progress",
        servicenow_event(
            INC_23,
            "acme",
            "2024-06-03T10:06:00Z",
            "abel.tuter",
            json!({"state": "2", "correlationId": CASE_INC_23}),
        ),
        vec![Applied],
    );
    servicenow(
        "S04",
        INC_31,
        "INC0010031 comment + work note + state Resolved",
        servicenow_event(
            INC_31,
            "acme",
            "2024-06-03T10:30:00Z",
            "beth.anglin",
            json!({"comment": "SSO metadata refreshed; contractors can log in again.",
                   "workNote": "Root cause: expired IdP signing certificate. Rotated via CHG0030042.",
                   "state": "6",
                   "correlationId": CASE_INC_31}),
        ),
        vec![Applied, Applied, Applied],
    );
    servicenow(
        "S05",
        INC_23,
        "echo: our own write (updatedBy datadog)",
        servicenow_event(
            INC_23,
            "acme",
            "2024-06-03T10:31:00Z",
            "datadog",
            json!({"comment": "Case status changed to IN_PROGRESS by Jane Doe in Datadog.",
                   "state": "2", "correlationId": CASE_INC_23}),
        ),
        vec![
            Filtered(R::BreakSynchronizationCycle),
            Filtered(R::BreakSynchronizationCycle),
        ],
    );
    servicenow(
        "S06",
        INC_23,
        "INC0010023 state Canceled (8): no case status mapped",
        servicenow_event(
            INC_23,
            "acme",
            "2024-06-03T10:35:00Z",
            "abel.tuter",
            json!({"state": "8", "correlationId": CASE_INC_23}),
        ),
        vec![Filtered(R::FieldValueNotMapped)],
    );
    servicenow(
        "S07",
        "b7c1e0f2a3d44e5f9a8b7c6d5e4f3a2b",
        "event from instance acme-dev, which is not configured",
        servicenow_event(
            "b7c1e0f2a3d44e5f9a8b7c6d5e4f3a2b",
            "acme-dev",
            "2024-06-03T10:36:00Z",
            "fred.luddy",
            json!({"comment": "Testing the Datadog integration on the dev instance."}),
        ),
        vec![Filtered(R::InstanceNotConfigured)],
    );
    servicenow(
        "S08",
        INC_23,
        "replay of S01",
        first_comment,
        vec![Filtered(R::DuplicateEvent)],
    );
    servicenow(
        "S09",
        INC_31,
        "delayed event: INC0010031 state In Progress from 10:20",
        servicenow_event(
            INC_31,
            "acme",
            "2024-06-03T10:20:00Z",
            "abel.tuter",
            json!({"state": "2", "correlationId": CASE_INC_31}),
        ),
        vec![Filtered(R::OutOfOrderEvent)],
    );
    servicenow(
        "S10",
        INC_31,
        "comment on INC0010031 after its case closed",
        servicenow_event(
            INC_31,
            "acme",
            "2024-06-03T10:40:00Z",
            "john.doe",
            json!({"comment": "Thanks, confirmed working for our team too.",
                   "correlationId": CASE_INC_31}),
        ),
        vec![Filtered(R::CaseClosed)],
    );
    servicenow(
        "S11",
        INC_23,
        "INC0010023 state On Hold (3), already IN_PROGRESS",
        servicenow_event(
            INC_23,
            "acme",
            "2024-06-03 10:41:00",
            "abel.tuter",
            json!({"state": "3", "correlationId": CASE_INC_23}),
        ),
        vec![Filtered(R::NoChange)],
    );
    servicenow(
        "S12",
        GLOBEX_PRINTERS,
        "Globex push-only project: nothing is pulled",
        servicenow_event_for(
            GLOBEX,
            GLOBEX_PRINTERS,
            "globex",
            "2024-06-03T10:42:00Z",
            "alex.kim",
            json!({"comment": "Firmware 4.2 rolled out to floor 3.",
                   "correlationId": CASE_GLOBEX_PRINTERS}),
        ),
        vec![Filtered(R::SyncTypeNotPull)],
    );
    servicenow(
        "S13",
        INC_23,
        "backlog: INC0010023 comment from before sync started",
        servicenow_event(
            INC_23,
            "acme",
            "2024-02-20T09:00:00Z",
            "beth.anglin",
            json!({"comment": "Old note from the February outage.",
                   "correlationId": CASE_INC_23}),
        ),
        vec![Filtered(R::CreatedBeforeStartSyncingFrom)],
    );
    servicenow(
        "S14",
        INC_23,
        "blank comment",
        servicenow_event(
            INC_23,
            "acme",
            "2024-06-03T10:43:00Z",
            "abel.tuter",
            json!({"comment": "  \n ", "correlationId": CASE_INC_23}),
        ),
        vec![Filtered(R::EmptyComment)],
    );
    servicenow(
        "S15",
        "0f9e8d7c6b5a49382716a5b4c3d2e1f0",
        "incident linked to no case",
        servicenow_event(
            "0f9e8d7c6b5a49382716a5b4c3d2e1f0",
            "acme",
            "2024-06-03T10:44:00Z",
            "beth.anglin",
            json!({"comment": "Printer on floor 2 jammed again."}),
        ),
        vec![Filtered(R::NoCorrespondingCase)],
    );
    servicenow(
        "S16",
        INC_23,
        "datadog_x_change_request: an event type the reader does not handle",
        json!({"type": "datadog_x_change_request", "orgId": ACME, "sysId": INC_23,
               "instanceName": "acme", "updatedAt": "2024-06-03T10:45:00Z",
               "updatedBy": "abel.tuter", "data": {"state": "-1"}})
        .to_string()
        .into_bytes(),
        vec![Discarded],
    );
    let full = servicenow_event(
        INC_23,
        "acme",
        "2024-06-03T10:46:00Z",
        "abel.tuter",
        json!({"state": "6", "correlationId": CASE_INC_23}),
    );
    servicenow(
        "S17",
        INC_23,
        "a message truncated in transit",
        full[..full.len() / 2].to_vec(),
        vec![DecodeFailed],
    );
    github_steps(&mut steps);
    steps
}

/// The seed's case linked to GitHub issue Codertocat/Hello-World#1.
pub const CASE_HELLO_WORLD_1: &str = "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1a08";

/// A webhook body GitHub sent (`crates/integration-github/fixtures/webhooks/`), unchanged.
fn github_body(name: &str) -> Value {
    let text = match name {
        "issues.labeled" => {
            include_str!("../../crates/integration-github/fixtures/webhooks/issues.labeled.json")
        }
        "issues.assigned" => {
            include_str!("../../crates/integration-github/fixtures/webhooks/issues.assigned.json")
        }
        "issues.opened" => {
            include_str!("../../crates/integration-github/fixtures/webhooks/issues.opened.json")
        }
        "issues.reopened" => {
            include_str!("../../crates/integration-github/fixtures/webhooks/issues.reopened.json")
        }
        "issue_comment.created" => include_str!(
            "../../crates/integration-github/fixtures/webhooks/issue_comment.created.json"
        ),
        "issue_comment.created.pull_request" => include_str!(
            "../../crates/integration-github/fixtures/webhooks/issue_comment.created.pull_request.json"
        ),
        other => unreachable!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The Kafka envelope around a GitHub webhook body (`event`: the `X-GitHub-Event` header).
fn github(event: &str, webhook: Value) -> Vec<u8> {
    json!({
        "orgId": ACME, "integration": "github", "host": "github.com", "event": event,
        "deliveryId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "receivedAt": "2019-05-15T15:21:00Z", "webhook": webhook
    })
    .to_string()
    .into_bytes()
}

fn github_steps(steps: &mut Vec<Step>) {
    use Outcome::{Applied, Discarded, Filtered};
    let mut add = |id, what: &str, value, expect| {
        steps.push(Step {
            id,
            flavor: Flavor::GitHub,
            key: "Codertocat/Hello-World#1".to_owned(),
            what: what.to_owned(),
            value,
            expect,
        });
    };
    add(
        "G01",
        "Hello-World#1 labeled `bug` (mapped to P2) by Codertocat",
        github("issues", github_body("issues.labeled")),
        vec![Applied],
    );
    add(
        "G02",
        "Hello-World#1 assigned to Codertocat",
        github("issues", github_body("issues.assigned")),
        vec![Applied],
    );
    add(
        "G03",
        "Hello-World#1 comment by Codertocat",
        github("issue_comment", github_body("issue_comment.created")),
        vec![Applied],
    );
    let mut by_bot = github_body("issues.assigned");
    by_bot["sender"] = json!({"login": "datadog[bot]", "id": 41898282, "type": "Bot"});
    add(
        "G04",
        "Hello-World#1 assigned by our GitHub App (datadog[bot])",
        github("issues", by_bot),
        vec![Filtered(FilterReason::BreakSynchronizationCycle)],
    );
    let mut closed = github_body("issues.reopened");
    closed["action"] = json!("closed");
    closed["issue"]["state"] = json!("closed");
    closed["issue"]["state_reason"] = json!("completed");
    closed["issue"]["updated_at"] = json!("2019-05-15T15:30:00Z");
    add(
        "G05",
        "Hello-World#1 closed as completed",
        github("issues", closed),
        vec![Applied],
    );
    add(
        "G06",
        "an issue opened (not synced)",
        github("issues", github_body("issues.opened")),
        vec![Discarded],
    );
    add(
        "G07",
        "a comment on a pull request (not synced)",
        github(
            "issue_comment",
            github_body("issue_comment.created.pull_request"),
        ),
        vec![Discarded],
    );
}

/// The state of every case the scenario touches (or must leave untouched), after all steps.
pub fn expected_cases() -> Vec<CaseExpectation> {
    vec![
        CaseExpectation {
            org_id: ACME,
            case_id: CASE_HELLO_WORLD_1,
            label: "GitHub Hello-World#1",
            title: "Spelling error in the README file",
            status: "RESOLVED",
            priority: Some("P2"),
            assignee: Some("Codertocat"),
            due_date: None,
            // 1 + priority (label), assignee, status.
            version: 4,
            comments: 1,
        },
        CaseExpectation {
            org_id: ACME,
            case_id: CASE_PROJ_12,
            label: "Jira PROJ-12",
            title: "Checkout p99 above SLO in us-east-1",
            status: "IN_PROGRESS",
            priority: Some("P1"),
            assignee: Some("John Smith"),
            due_date: Some("2024-06-30"),
            // 1 + status, summary, description, priority, assignee, due date.
            version: 7,
            comments: 1,
        },
        CaseExpectation {
            org_id: ACME,
            case_id: CASE_PROJ_13,
            label: "Jira PROJ-13",
            title: "Payment webhooks dropped by ingress",
            status: "IN_PROGRESS",
            priority: Some("P1"),
            assignee: Some("Priya Natarajan"),
            due_date: Some("2024-10-15"),
            // 4 + due date (custom field), assignee.
            version: 6,
            comments: 0,
        },
        CaseExpectation {
            org_id: ACME,
            case_id: CASE_INC_23,
            label: "SN INC0010023",
            title: "VPN gateway unreachable from Berlin office",
            status: "IN_PROGRESS",
            priority: Some("P2"),
            assignee: None,
            due_date: None,
            // 1 + the state change + the no-op state change's recorded watermark.
            version: 3,
            comments: 2,
        },
        CaseExpectation {
            org_id: ACME,
            case_id: CASE_INC_31,
            label: "SN INC0010031",
            title: "SSO login loop for contractors",
            status: "CLOSED",
            priority: Some("P3"),
            assignee: Some("Priya Natarajan"),
            due_date: None,
            version: 3,
            comments: 2,
        },
        CaseExpectation {
            org_id: GLOBEX,
            case_id: CASE_GLOBEX_PRINTERS,
            label: "SN (Globex push)",
            title: "Printer fleet firmware rollout",
            status: "OPEN",
            priority: None,
            assignee: None,
            due_date: None,
            version: 1,
            comments: 0,
        },
    ]
}

// ---- Jira -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct JiraUser {
    account_id: &'static str,
    name: &'static str,
}

/// Seeded as Jane Doe's Jira id.
const JANE: JiraUser = JiraUser {
    account_id: "5b10a2844c20165700ede21g",
    name: "Jane Doe",
};
/// Seeded as John Smith's Jira id.
const JOHN: JiraUser = JiraUser {
    account_id: "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
    name: "John Smith",
};
/// Priya has no Jira id in the seed: she is matched by display name.
const PRIYA: JiraUser = JiraUser {
    account_id: "712020:0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d",
    name: "Priya Natarajan",
};
/// A Jira user with no case account.
const SAM: JiraUser = JiraUser {
    account_id: "712020:9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f",
    name: "Sam Rivera",
};
/// Our own sync user on Acme's site (`own_user_ids` of the demo seed's metadata).
const DATADOG: JiraUser = JiraUser {
    account_id: "5b10ac8d82e05b22cc7d4ef5",
    name: "Datadog Case Management",
};

#[derive(Debug, Clone, Copy)]
struct Issue {
    id: &'static str,
    key: &'static str,
    project_id: &'static str,
    project_key: &'static str,
    issue_type_id: &'static str,
    issue_type: &'static str,
    summary: &'static str,
}

const PROJ_12: Issue = Issue {
    id: "10002",
    key: "PROJ-12",
    project_id: "10000",
    project_key: "PROJ",
    issue_type_id: "10001",
    issue_type: "Task",
    summary: "Checkout p99 above SLO in us-east-1",
};
const PROJ_13: Issue = Issue {
    id: "10003",
    key: "PROJ-13",
    project_id: "10000",
    project_key: "PROJ",
    issue_type_id: "10004",
    issue_type: "Incident",
    summary: "Payment webhooks dropped by ingress",
};
const PROJ_15: Issue = Issue {
    id: "10005",
    key: "PROJ-15",
    project_id: "10000",
    project_key: "PROJ",
    issue_type_id: "10002",
    issue_type: "Story",
    summary: "Faster checkout for returning customers",
};
const PROJ_16: Issue = Issue {
    id: "10016",
    key: "PROJ-16",
    project_id: "10000",
    project_key: "PROJ",
    issue_type_id: "10001",
    issue_type: "Task",
    summary: "Add p99 alert on checkout-api",
};
const OPS_7: Issue = Issue {
    id: "10040",
    key: "OPS-7",
    project_id: "10010",
    project_key: "OPS",
    issue_type_id: "10001",
    issue_type: "Task",
    summary: "Rotate TLS certificates on edge proxies",
};

/// 2024-06-03 at `hour:minute` UTC.
fn at(hour: i64, minute: i64) -> OffsetDateTime {
    datetime!(2024-06-03 0:00 UTC) + Duration::minutes(hour * 60 + minute)
}

pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2024-06-03T09:02:00Z`.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Jira's own format: `2024-06-03T09:02:00.000+0000`.
pub(crate) fn jira_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn changelog_id(t: OffsetDateTime) -> String {
    (millis(t) / 1000 % 100_000).to_string()
}

fn jira_user(user: JiraUser) -> Value {
    json!({
        "self": format!("https://{JIRA_SITE}/rest/api/2/user?accountId={}", user.account_id),
        "accountId": user.account_id,
        "displayName": user.name,
        "active": true,
        "timeZone": "Europe/Berlin",
        "accountType": "atlassian"
    })
}

fn issue_json(issue: Issue) -> Value {
    json!({
        "id": issue.id,
        "self": format!("https://{JIRA_SITE}/rest/api/2/issue/{}", issue.id),
        "key": issue.key,
        "fields": {
            "summary": issue.summary,
            "issuetype": {"id": issue.issue_type_id, "name": issue.issue_type, "subtask": false},
            "project": {"id": issue.project_id, "key": issue.project_key,
                        "projectTypeKey": "software"}
        }
    })
}

/// The Kafka envelope around an Acme Jira webhook received one second after `at`.
fn envelope(at: OffsetDateTime, webhook: Value) -> Vec<u8> {
    jira_envelope(ACME, JIRA_SITE, at, webhook)
}

/// The Kafka envelope around a Jira webhook of `org_id`'s `site`, received one second after `at`.
pub(crate) fn jira_envelope(
    org_id: u64,
    site: &str,
    at: OffsetDateTime,
    webhook: Value,
) -> Vec<u8> {
    json!({
        "orgId": org_id,
        "integration": "jira",
        "jiraAccountId": site,
        "receivedAt": rfc3339(at + Duration::seconds(1)),
        "webhook": webhook
    })
    .to_string()
    .into_bytes()
}

fn issue_updated(issue: Issue, by: JiraUser, at: OffsetDateTime, items: Vec<Value>) -> Vec<u8> {
    envelope(
        at,
        json!({
            "timestamp": millis(at),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "user": jira_user(by),
            "issue": issue_json(issue),
            "changelog": {"id": changelog_id(at), "items": items}
        }),
    )
}

fn comment_created(
    issue: Issue,
    by: JiraUser,
    comment_id: &str,
    at: OffsetDateTime,
    body: &str,
) -> Vec<u8> {
    envelope(
        at,
        json!({
            "timestamp": millis(at),
            "webhookEvent": "comment_created",
            "comment": {
                "self": format!("https://{JIRA_SITE}/rest/api/2/issue/{}/comment/{comment_id}", issue.id),
                "id": comment_id,
                "author": jira_user(by),
                "body": body,
                "updateAuthor": jira_user(by),
                "created": jira_time(at),
                "updated": jira_time(at),
                "jsdPublic": true
            },
            "issue": issue_json(issue)
        }),
    )
}

/// A system-field item whose `from`/`to` hold ids.
fn item(field: &str, from: &str, from_string: &str, to: &str, to_string: &str) -> Value {
    json!({"field": field, "fieldtype": "jira", "fieldId": field,
           "from": from, "fromString": from_string, "to": to, "toString": to_string})
}

/// A text item (summary, description): the text only in the strings.
pub(crate) fn text_item(field: &str, from_string: &str, to_string: &str) -> Value {
    json!({"field": field, "fieldtype": "jira", "fieldId": field,
           "from": null, "fromString": from_string, "to": null, "toString": to_string})
}

/// A user item (assignee): account ids in `from`/`to`, names in the strings.
fn user_item(field: &str, from: Option<JiraUser>, to: Option<JiraUser>) -> Value {
    json!({"field": field, "fieldtype": "jira", "fieldId": field,
           "from": from.map(|u| u.account_id), "fromString": from.map(|u| u.name),
           "to": to.map(|u| u.account_id), "toString": to.map(|u| u.name),
           "tmpFromAccountId": from.map(|u| u.account_id),
           "tmpToAccountId": to.map(|u| u.account_id)})
}

// ---- ServiceNow -------------------------------------------------------------------------

/// sysId of INC0010023 (linked to [`CASE_INC_23`]).
const INC_23: &str = "9d385017c611228701d22104cc95c371";
/// sysId of INC0010031 (linked to [`CASE_INC_31`]).
const INC_31: &str = "46d44a5dc611227a0183c5c7e16c0fc3";
/// sysId of Globex's printer incident (linked to [`CASE_GLOBEX_PRINTERS`]).
const GLOBEX_PRINTERS: &str = "a9e30c7dc61122760116894de7bcc7bd";

fn servicenow_event(
    sys_id: &str,
    instance: &str,
    updated_at: &str,
    updated_by: &str,
    data: Value,
) -> Vec<u8> {
    servicenow_event_for(ACME, sys_id, instance, updated_at, updated_by, data)
}

fn servicenow_event_for(
    org_id: u64,
    sys_id: &str,
    instance: &str,
    updated_at: &str,
    updated_by: &str,
    data: Value,
) -> Vec<u8> {
    servicenow_message(
        "datadog_x_incident",
        org_id,
        sys_id,
        instance,
        updated_at,
        updated_by,
        data,
    )
}

/// A ServiceNow message of `event_type` (the readers decode `datadog_x_incident`).
pub(crate) fn servicenow_message(
    event_type: &str,
    org_id: u64,
    sys_id: &str,
    instance: &str,
    updated_at: &str,
    updated_by: &str,
    data: Value,
) -> Vec<u8> {
    json!({
        "type": event_type,
        "orgId": org_id,
        "sysId": sys_id,
        "instanceName": instance,
        "updatedAt": updated_at,
        "updatedBy": updated_by,
        "data": data
    })
    .to_string()
    .into_bytes()
}

/// The demo's recovery story: a Jira project onboarded late. Its cases exist in the seed loaded
/// at that point, its settings do not (yet).
pub(crate) const LATE_PROJECT: &str = "0d1e2f3a-late-4c5d-8e9f-0a1b2c3d4e05";

/// The late project's issues: (Jira id, key, case id).
pub(crate) const LATE_ISSUES: [(&str, &str, &str); 3] = [
    ("10500", "PROJ-40", "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1b40"),
    ("10501", "PROJ-41", "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1b41"),
    ("10502", "PROJ-42", "3f1c6a2e-8d4b-4c1e-9a7f-2b5d8e6c1b42"),
];

/// The late project's cases, as a seed document (no settings).
pub(crate) fn late_cases_seed() -> String {
    let cases: Vec<Value> = LATE_ISSUES
        .iter()
        .map(|&(id, key, case)| {
            json!({
                "id": case, "org_id": ACME, "project_id": LATE_PROJECT, "version": 1,
                "title": format!("{key}: onboarded late"), "description": "",
                "priority": "P3", "status": "OPEN", "assignee_id": null, "due_date": null,
                "created_at": "2024-06-01T09:00:00Z",
                "external_references": [{"integration": "jira", "site": JIRA_SITE, "reference": id}]
            })
        })
        .collect();
    json!({ "cases": cases }).to_string()
}

/// The fix: the late project gets the Jira settings of ACME's Jira project (from `seed`, the
/// demo seed document).
pub(crate) fn late_settings_seed(seed: &str) -> anyhow::Result<String> {
    let seed: Value = serde_json::from_str(seed)?;
    let mut settings = seed["project_settings"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["org_id"] == ACME && s["integration"] == "jira")
        })
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the demo seed has no Jira settings for org {ACME}"))?;
    settings["project_id"] = json!(LATE_PROJECT);
    Ok(json!({ "project_settings": [settings] }).to_string())
}

/// One status change (To Do -> In Progress) per late issue, by Priya.
pub(crate) fn late_messages() -> Vec<Vec<u8>> {
    LATE_ISSUES
        .iter()
        .enumerate()
        .map(|(i, &(id, key, _))| {
            let issue = Issue {
                id,
                key,
                project_id: "10000",
                project_key: "PROJ",
                issue_type_id: "10001",
                issue_type: "Task",
                summary: "Onboarded late",
            };
            issue_updated(
                issue,
                PRIYA,
                at(11, 0) + Duration::minutes(i as i64),
                vec![item("status", "10000", "To Do", "3", "In Progress")],
            )
        })
        .collect()
}
