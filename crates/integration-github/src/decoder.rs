//! The GitHub webhook envelope -> normalized changelogs.

use thirdparty_core::json::{self, Json};
use thirdparty_core::{Author, Changelog, ChangelogType, DecodeError, Decoder, normalize_site};

use crate::{INTEGRATION, LABEL, META_ACCOUNT_ID, META_PROJECT_ID, STATE_CLOSED, STATE_OPEN};

/// The largest message value the decoder accepts by default (4 MiB); larger values are
/// [`DecodeError::TooLarge`]. An issue or comment body holds at most 65,536 characters.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

/// Decodes a GitHub webhook envelope (`docs/design.md`, "GitHub Issues"):
///
/// ```json
/// {"orgId": 123456, "integration": "github", "host": "github.com", "event": "issues",
///  "deliveryId": "72d3162e-...", "receivedAt": "2024-01-15T10:30:00Z",
///  "webhook": {"action": "assigned", "issue": {...}, "repository": {...}, "sender": {...}}}
/// ```
///
/// `event` is the `X-GitHub-Event` header and `webhook` the body GitHub sent, unchanged. Every
/// changelog carries `third_party_id` = `issue.id`, `third_party_key` =
/// `{repository.full_name}#{issue.number}`, the site and metadata `account_id` = `host`, the
/// metadata `project_id` = `repository.id`, the author = `sender` (`id`, `login`) and
/// `event_timestamp` = `issue.updated_at`. Per event and action:
///
/// - `issues.edited`: `update_title` when `changes.title` is present (`from_string` its `from`,
///   `to_string` the issue's title), `update_description` when `changes.body` is; none when
///   `changes` is empty;
/// - `issues.assigned` / `unassigned`: `update_assignee`, the `assignee` as `to` (assigned) or
///   `from` (unassigned, `to` absent);
/// - `issues.closed` / `reopened`: `update_status`, `to_id` = `closed:{state_reason}`
///   (`closed` without a reason) or `open`, `from_id` the other state;
/// - `issues.labeled` / `unlabeled`: `unsupported_label`, the `label` (`id`, `name`) as `to`
///   (labeled) or `from` (unlabeled); the filterer turns it into `update_priority` when the
///   project maps that label name to a priority;
/// - `issue_comment.created`: `create_comment` with the body, `comment_id` = `comment.id`, the
///   author `comment.user` and `event_timestamp` = `comment.created_at`.
///
/// Every other event or action (`opened`, `milestoned`, comment edits, ...) and anything on a
/// pull request (an `issue` with a `pull_request` object) is [`DecodeError::UnsupportedEvent`]:
/// discarded and counted. Bytes that are not JSON are [`DecodeError::Malformed`]; a missing or
/// mistyped field is [`DecodeError::Invalid`] naming its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitHubDecoder {
    max_event_bytes: usize,
}

impl Default for GitHubDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl GitHubDecoder {
    /// A decoder accepting values up to [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// The same decoder with another size limit, in bytes.
    pub fn with_max_event_bytes(self, max_event_bytes: usize) -> Self {
        Self { max_event_bytes }
    }
}

impl Decoder for GitHubDecoder {
    fn integration(&self) -> &'static str {
        INTEGRATION
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
        if value.len() > self.max_event_bytes {
            return Err(DecodeError::TooLarge {
                size: value.len(),
                limit: self.max_event_bytes,
            });
        }
        decode_envelope(&json::parse(value)?)
    }
}

/// The `issues` actions that become changelogs.
const ISSUE_ACTIONS: &[&str] = &[
    "edited",
    "assigned",
    "unassigned",
    "closed",
    "reopened",
    "labeled",
    "unlabeled",
];

// The parts of the envelope and of GitHub's body the decoder reads; every other key is skipped.
thirdparty_core::json_object!(
    /// The Kafka message value.
    Envelope {
        "orgId" => org_id: Json<'a>,
        "host" => host: Json<'a>,
        "event" => event: Json<'a>,
        "webhook" => webhook: Json<'a, Webhook<'a>>,
    }
);
thirdparty_core::json_object!(
    /// The body GitHub sent.
    Webhook {
        "action" => action: Json<'a>,
        "issue" => issue: Json<'a, Issue<'a>>,
        "repository" => repository: Json<'a, Repository<'a>>,
        "sender" => sender: Json<'a, User<'a>>,
        "assignee" => assignee: Json<'a, User<'a>>,
        "label" => label: Json<'a, Label<'a>>,
        "changes" => changes: Json<'a, Changes<'a>>,
        "comment" => comment: Json<'a, Comment<'a>>,
    }
);
thirdparty_core::json_object!(
    /// `webhook.issue`.
    Issue {
        "id" => id: Json<'a>,
        "number" => number: Json<'a>,
        "title" => title: Json<'a>,
        "body" => body: Json<'a>,
        "state_reason" => state_reason: Json<'a>,
        "updated_at" => updated_at: Json<'a>,
        "pull_request" => pull_request: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// `webhook.repository`.
    Repository {
        "id" => id: Json<'a>,
        "full_name" => full_name: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// A GitHub user.
    User {
        "id" => id: Json<'a>,
        "login" => login: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// `webhook.label`.
    Label {
        "id" => id: Json<'a>,
        "name" => name: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// `webhook.changes` of an `edited` action.
    Changes {
        "title" => title: Json<'a, Before<'a>>,
        "body" => body: Json<'a, Before<'a>>,
    }
);
thirdparty_core::json_object!(
    /// `webhook.changes.title` / `.body`: the value before the edit.
    Before {
        "from" => from: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// `webhook.comment`.
    Comment {
        "id" => id: Json<'a>,
        "body" => body: Json<'a>,
        "user" => user: Json<'a, User<'a>>,
        "created_at" => created_at: Json<'a>,
    }
);

fn decode_envelope(envelope: &Envelope<'_>) -> Result<Vec<Changelog>, DecodeError> {
    let event = envelope.event.required_str("event")?;
    let webhook = envelope.webhook.required_object("webhook")?;
    let action = webhook.action.str_at("webhook.action")?.unwrap_or_default();
    let supported = match event {
        "issues" => ISSUE_ACTIONS.contains(&action),
        "issue_comment" => action == "created",
        _ => false,
    };
    if !supported {
        return Err(DecodeError::unsupported_event(&format!("{event}.{action}")));
    }
    let issue = webhook.issue.required_object("webhook.issue")?;
    if issue.pull_request.is_present() {
        return Err(DecodeError::unsupported_event(&format!(
            "{event}.{action} on a pull request"
        )));
    }
    let org_id = envelope.org_id.org_id("orgId")?;
    let host = envelope.host.required_str("host")?.trim();
    let repository = webhook.repository.required_object("webhook.repository")?;
    let full_name = repository
        .full_name
        .required_str("webhook.repository.full_name")?;
    let repository_id = repository.id.required_id("webhook.repository.id")?;
    let issue_id = issue.id.required_id("webhook.issue.id")?;
    let number = issue.number.required_id("webhook.issue.number")?;

    let mut base = Changelog::new(
        INTEGRATION,
        org_id,
        ChangelogType::CreateComment,
        issue_id,
        issue.updated_at.required_time("webhook.issue.updated_at")?,
    );
    base.site = normalize_site(host);
    base.third_party_key = Some(format!("{full_name}#{number}"));
    base.author = match webhook.sender.object_at("webhook.sender")? {
        Some(sender) => Some(user(sender, "webhook.sender")?),
        None => None,
    };
    base.metadata
        .insert(META_ACCOUNT_ID.to_owned(), host.to_owned());
    base.metadata
        .insert(META_PROJECT_ID.to_owned(), repository_id);

    if event == "issue_comment" {
        return comment(base, webhook).map(|c| vec![c]);
    }
    let change = |changelog_type: ChangelogType| {
        let mut c = base.clone();
        c.changelog_type = changelog_type;
        c
    };
    match action {
        "edited" => {
            let Some(changes) = webhook.changes.object_at("webhook.changes")? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            if let Some(title) = changes.title.object_at("webhook.changes.title")? {
                let mut c = change(ChangelogType::UpdateTitle);
                c.from_string = title
                    .from
                    .str_at("webhook.changes.title.from")?
                    .map(str::to_owned);
                c.to_string = Some(
                    issue
                        .title
                        .str_at("webhook.issue.title")?
                        .unwrap_or_default()
                        .to_owned(),
                );
                out.push(c);
            }
            if let Some(body) = changes.body.object_at("webhook.changes.body")? {
                let mut c = change(ChangelogType::UpdateDescription);
                c.from_string = body
                    .from
                    .str_at("webhook.changes.body.from")?
                    .map(str::to_owned);
                // A body removed in GitHub is `null`: the description is cleared.
                c.to_string = Some(
                    issue
                        .body
                        .str_at("webhook.issue.body")?
                        .unwrap_or_default()
                        .to_owned(),
                );
                out.push(c);
            }
            Ok(out)
        }
        "assigned" | "unassigned" => {
            let assignee = webhook.assignee.required_object("webhook.assignee")?;
            let person = user(assignee, "webhook.assignee")?;
            let mut c = change(ChangelogType::UpdateAssignee);
            if action == "assigned" {
                c.to_id = person.id;
                c.to_string = person.display_name;
            } else {
                c.from_id = person.id;
                c.from_string = person.display_name;
            }
            Ok(vec![c])
        }
        "closed" | "reopened" => {
            let closed = match issue
                .state_reason
                .str_at("webhook.issue.state_reason")?
                .map(str::trim)
            {
                Some(reason) if !reason.is_empty() && reason != "reopened" => {
                    format!("{STATE_CLOSED}:{reason}")
                }
                _ => STATE_CLOSED.to_owned(),
            };
            let (from, to) = if action == "closed" {
                (STATE_OPEN.to_owned(), closed)
            } else {
                (STATE_CLOSED.to_owned(), STATE_OPEN.to_owned())
            };
            let mut c = change(ChangelogType::UpdateStatus);
            c.from_string = Some(from.clone());
            c.from_id = Some(from);
            c.to_string = Some(to.clone());
            c.to_id = Some(to);
            Ok(vec![c])
        }
        _ => {
            // labeled / unlabeled
            let label = webhook.label.required_object("webhook.label")?;
            let id = label.id.id("webhook.label.id")?;
            let name = label.name.required_str("webhook.label.name")?.to_owned();
            let mut c = change(ChangelogType::Unsupported(LABEL.to_owned()));
            if action == "labeled" {
                c.to_id = id;
                c.to_string = Some(name);
            } else {
                c.from_id = id;
                c.from_string = Some(name);
            }
            Ok(vec![c])
        }
    }
}

/// A GitHub user at `path`: `id` as the id, `login` as the display name.
fn user(object: &User<'_>, path: &str) -> Result<Author, DecodeError> {
    Ok(Author {
        id: object.id.id(&format!("{path}.id"))?,
        display_name: object
            .login
            .str_at(&format!("{path}.login"))?
            .map(str::to_owned),
    })
}

fn comment(mut base: Changelog, webhook: &Webhook<'_>) -> Result<Changelog, DecodeError> {
    let comment = webhook.comment.required_object("webhook.comment")?;
    base.changelog_type = ChangelogType::CreateComment;
    base.comment_id = Some(comment.id.required_id("webhook.comment.id")?);
    // Kept byte for byte; an empty body still yields a changelog (filtered `empty_comment`).
    base.body = Some(
        comment
            .body
            .str_at("webhook.comment.body")?
            .unwrap_or_default()
            .to_owned(),
    );
    base.event_timestamp = comment
        .created_at
        .required_time("webhook.comment.created_at")?;
    if let Some(author) = comment.user.object_at("webhook.comment.user")? {
        base.author = Some(user(author, "webhook.comment.user")?);
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use serde_json::{Value, json};

    use super::*;

    /// A webhook body GitHub sent (`fixtures/webhooks/`), unchanged.
    fn body(name: &str) -> Value {
        let path = format!(
            "{}/fixtures/webhooks/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    /// The Kafka message around a body: `event` is the `X-GitHub-Event` header.
    fn envelope(event: &str, webhook: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "orgId": 123456, "integration": "github", "host": "github.com", "event": event,
            "deliveryId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "receivedAt": "2024-01-15T10:30:00Z", "webhook": webhook
        }))
        .unwrap()
    }

    fn decode(event: &str, name: &str) -> Result<Vec<Changelog>, DecodeError> {
        GitHubDecoder::new().decode(&envelope(event, body(name)))
    }

    fn one(event: &str, name: &str) -> Changelog {
        let mut all = decode(event, name).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn every_changelog_names_the_issue_the_repository_and_the_sender() {
        let c = one("issues", "issues.assigned");
        assert_eq!(c.integration, "github");
        assert_eq!(c.org_id, 123456);
        assert_eq!(c.site, "github.com");
        assert_eq!(c.third_party_id, "444500041");
        assert_eq!(
            c.third_party_key.as_deref(),
            Some("Codertocat/Hello-World#1")
        );
        assert_eq!(c.metadata_value(META_ACCOUNT_ID), Some("github.com"));
        assert_eq!(c.metadata_value(META_PROJECT_ID), Some("186853002"));
        let author = c.author.as_ref().unwrap();
        assert_eq!(author.id.as_deref(), Some("21031067"));
        assert_eq!(author.display_name.as_deref(), Some("Codertocat"));
        assert_eq!(
            c.event_timestamp
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            "2019-05-15T15:20:18Z"
        );
    }

    #[test]
    fn assignment_and_unassignment() {
        let c = one("issues", "issues.assigned");
        assert_eq!(c.changelog_type, ChangelogType::UpdateAssignee);
        assert_eq!(
            (c.to_id.as_deref(), c.to_string.as_deref()),
            (Some("21031067"), Some("Codertocat"))
        );
        assert_eq!(c.from_id, None);
        let c = one("issues", "issues.unassigned");
        assert_eq!(c.changelog_type, ChangelogType::UpdateAssignee);
        assert_eq!(c.from_id.as_deref(), Some("21031067"));
        assert_eq!((c.to_id, c.to_string), (None, None));
    }

    #[test]
    fn edits_yield_a_title_and_a_description_change() {
        let title = one("issues", "issues.edited.title");
        assert_eq!(title.changelog_type, ChangelogType::UpdateTitle);
        let webhook = body("issues.edited.title");
        assert_eq!(
            title.from_string.as_deref(),
            webhook["changes"]["title"]["from"].as_str()
        );
        assert_eq!(
            title.to_string.as_deref(),
            webhook["issue"]["title"].as_str()
        );
        let both = decode("issues", "issues.edited.title-and-body").unwrap();
        let types: Vec<ChangelogType> = both.iter().map(|c| c.changelog_type.clone()).collect();
        assert_eq!(
            types,
            [ChangelogType::UpdateTitle, ChangelogType::UpdateDescription]
        );
        let webhook = body("issues.edited.title-and-body");
        assert_eq!(
            both[1].from_string.as_deref(),
            webhook["changes"]["body"]["from"].as_str()
        );
        assert_eq!(
            both[1].to_string.as_deref(),
            Some(webhook["issue"]["body"].as_str().unwrap_or_default())
        );
        assert!(
            decode("issues", "issues.edited.empty-changes")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn close_and_reopen_carry_the_state_and_its_reason() {
        let closed = one("issues", "issues.closed");
        assert_eq!(closed.changelog_type, ChangelogType::UpdateStatus);
        assert_eq!(closed.to_id.as_deref(), Some("closed:completed"));
        assert_eq!(closed.from_id.as_deref(), Some("open"));
        let reopened = one("issues", "issues.reopened");
        assert_eq!(reopened.to_id.as_deref(), Some("open"));
        assert_eq!(reopened.from_id.as_deref(), Some("closed"));
        // Without a reason (GitHub before 2022, Enterprise Server), `closed`.
        let mut webhook = body("issues.closed");
        webhook["issue"]["state_reason"] = Value::Null;
        let c = GitHubDecoder::new()
            .decode(&envelope("issues", webhook))
            .unwrap();
        assert_eq!(c[0].to_id.as_deref(), Some("closed"));
        let mut webhook = body("issues.closed");
        webhook["issue"]["state_reason"] = json!("not_planned");
        let c = GitHubDecoder::new()
            .decode(&envelope("issues", webhook))
            .unwrap();
        assert_eq!(c[0].to_id.as_deref(), Some("closed:not_planned"));
    }

    #[test]
    fn labels_are_kept_for_the_filterer() {
        let labeled = one("issues", "issues.labeled");
        assert_eq!(labeled.changelog_type.name(), "unsupported_label");
        let webhook = body("issues.labeled");
        assert_eq!(
            labeled.to_string.as_deref(),
            webhook["label"]["name"].as_str()
        );
        assert_eq!(
            labeled.to_id,
            webhook["label"]["id"].as_u64().map(|id| id.to_string())
        );
        let unlabeled = one("issues", "issues.unlabeled");
        assert_eq!(unlabeled.to_id, None);
        assert_eq!(
            unlabeled.from_string.as_deref(),
            body("issues.unlabeled")["label"]["name"].as_str()
        );
    }

    #[test]
    fn a_new_comment_is_a_create_comment_by_its_user() {
        let c = one("issue_comment", "issue_comment.created");
        let webhook = body("issue_comment.created");
        assert_eq!(c.changelog_type, ChangelogType::CreateComment);
        assert_eq!(c.body.as_deref(), webhook["comment"]["body"].as_str());
        assert_eq!(
            c.comment_id,
            webhook["comment"]["id"].as_u64().map(|id| id.to_string())
        );
        assert_eq!(
            c.event_timestamp
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            webhook["comment"]["created_at"].as_str().unwrap()
        );
        assert_eq!(
            c.author.unwrap().id,
            webhook["comment"]["user"]["id"]
                .as_u64()
                .map(|id| id.to_string())
        );
    }

    #[test]
    fn other_actions_events_and_pull_requests_are_unsupported() {
        for (event, name) in [
            ("issues", "issues.opened"),
            ("issues", "issues.milestoned"),
            ("issue_comment", "issue_comment.edited"),
        ] {
            match decode(event, name) {
                Err(err @ DecodeError::UnsupportedEvent(_)) => {
                    assert_eq!(err.kind(), "unsupported_event")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut on_pr = body("issue_comment.created");
        on_pr["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
        assert!(matches!(
            GitHubDecoder::new().decode(&envelope("issue_comment", on_pr)),
            Err(DecodeError::UnsupportedEvent(_))
        ));
        assert!(matches!(
            GitHubDecoder::new().decode(&envelope("pull_request", body("issues.opened"))),
            Err(DecodeError::UnsupportedEvent(_))
        ));
    }

    #[test]
    fn an_enterprise_server_host_is_the_site() {
        let mut message: Value =
            serde_json::from_slice(&envelope("issues", body("issues.edited.body.ghes"))).unwrap();
        message["host"] = json!("GitHub.Example.COM");
        let c = GitHubDecoder::new()
            .decode(&serde_json::to_vec(&message).unwrap())
            .unwrap();
        assert_eq!(c[0].site, "github.example.com");
        assert_eq!(c[0].changelog_type, ChangelogType::UpdateDescription);
    }

    #[test]
    fn bad_input_is_typed_and_names_the_field() {
        let decoder = GitHubDecoder::new();
        assert!(matches!(
            decoder.decode(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
        let mut webhook = body("issues.assigned");
        webhook["issue"]["id"] = json!("");
        match decoder.decode(&envelope("issues", webhook)) {
            Err(DecodeError::Invalid { field, .. }) => assert_eq!(field, "webhook.issue.id"),
            other => panic!("{other:?}"),
        }
        let mut message: Value =
            serde_json::from_slice(&envelope("issues", body("issues.assigned"))).unwrap();
        message.as_object_mut().unwrap().remove("host");
        match decoder.decode(&serde_json::to_vec(&message).unwrap()) {
            Err(DecodeError::Invalid { field, .. }) => assert_eq!(field, "host"),
            other => panic!("{other:?}"),
        }
        let big = vec![b' '; DEFAULT_MAX_EVENT_BYTES + 1];
        assert!(matches!(
            decoder.decode(&big),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
