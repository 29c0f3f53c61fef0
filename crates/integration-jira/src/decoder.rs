//! Decoding the Jira message envelope (`docs/design.md`, "Kafka messages") into normalized changelogs.
//!
//! The envelope carries the Jira Cloud or Jira Server webhook unchanged:
//!
//! ```json
//! {"orgId": 123456, "integration": "jira", "jiraAccountId": "acme.atlassian.net",
//!  "receivedAt": "2024-01-15T10:30:00Z", "webhook": {"webhookEvent": "jira:issue_updated", ...}}
//! ```
//!
//! - `jira:issue_updated` and `jira:issue_created`: one changelog per `changelog.items[]` entry
//!   (an event without a changelog yields none);
//! - `comment_created`: one `create_comment` changelog;
//! - any other `webhookEvent`: [`DecodeError::UnsupportedEvent`].
//!
//! Errors: bytes that are not a JSON object are [`DecodeError::Malformed`]; a JSON object that
//! fails validation (missing `orgId` or issue, wrong types, unparsable times) is
//! [`DecodeError::Invalid`] naming the JSON path; a payload above the size limit is
//! [`DecodeError::TooLarge`]. The decoder never panics.

use std::collections::BTreeMap;

use thirdparty_core::error::truncate_for_log;
use thirdparty_core::{Author, Changelog, ChangelogType, DecodeError, Decoder};
use time::{OffsetDateTime, UtcOffset};

use crate::dates;
use crate::{INTEGRATION, META_ACCOUNT_ID, META_ISSUE_TYPE_ID, META_PROJECT_ID};
use thirdparty_core::json::{self, Json, Skip, missing};
use thirdparty_core::json_object;

/// The default largest message value the decoder accepts (4 MiB, above Kafka's default 1 MB
/// message limit, so only a misconfigured producer reaches it).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// `webhookEvent` of an issue update.
pub const EVENT_ISSUE_UPDATED: &str = "jira:issue_updated";
/// `webhookEvent` of an issue creation (may carry a changelog).
pub const EVENT_ISSUE_CREATED: &str = "jira:issue_created";
/// `webhookEvent` of a new comment (trimmed `issue`, no changelog).
pub const EVENT_COMMENT_CREATED: &str = "comment_created";

/// Decodes Jira envelopes into changelogs. Pure: no I/O, no clock, no state.
#[derive(Debug, Clone)]
pub struct JiraDecoder {
    max_payload_bytes: usize,
}

impl Default for JiraDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl JiraDecoder {
    /// A decoder with the default size limit ([`DEFAULT_MAX_PAYLOAD_BYTES`]).
    pub fn new() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// A decoder that rejects message values larger than `limit` bytes as
    /// [`DecodeError::TooLarge`].
    pub fn with_max_payload_bytes(limit: usize) -> Self {
        Self {
            max_payload_bytes: limit,
        }
    }

    /// The size limit in bytes.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }
}

impl Decoder for JiraDecoder {
    fn integration(&self) -> &'static str {
        INTEGRATION
    }

    /// The end-to-end latency per Jira site and project, as operators key on it
    /// (`docs/design.md`, "Names operators key on").
    fn latency_tags(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("jira_account_id", crate::META_ACCOUNT_ID),
            ("jira_project_id", crate::META_PROJECT_ID),
        ]
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
        if value.len() > self.max_payload_bytes {
            return Err(DecodeError::TooLarge {
                size: value.len(),
                limit: self.max_payload_bytes,
            });
        }
        // One pass over the bytes into the typed view; anything that is not JSON (or is too
        // deep) is `Malformed` wherever it sits in the document, and valid JSON of the wrong
        // shape fails validation: discarded, not skipped.
        let envelope: Envelope<'_> = json::parse(value)?;
        decode_envelope(&envelope)
    }
}

// The parts of the envelope the decoder reads (`docs/design.md`, "Kafka messages"); every other key is skipped.
json_object!(
    /// The Kafka message value.
    Envelope {
        "orgId" => org_id: Json<'a>,
        "integration" => integration: Json<'a>,
        "jiraAccountId" => jira_account_id: Json<'a>,
        "receivedAt" => received_at: Json<'a>,
        "webhook" => webhook: Json<'a, Webhook<'a>>,
    }
);
json_object!(
    /// The Jira webhook body.
    Webhook {
        "webhookEvent" => webhook_event: Json<'a>,
        "timestamp" => timestamp: Json<'a>,
        "user" => user: Json<'a, User<'a>>,
        "issue" => issue: Json<'a, Issue<'a>>,
        "changelog" => changelog: Json<'a, ChangelogItems<'a>>,
        "comment" => comment: Json<'a, Comment<'a>>,
    }
);
json_object!(
    /// `webhook.issue`.
    Issue {
        "id" => id: Json<'a>,
        "key" => key: Json<'a>,
        "fields" => fields: Json<'a, Fields<'a>>,
    }
);
json_object!(
    /// `webhook.issue.fields`: only the scope the pre-filter needs.
    Fields {
        "project" => project: Json<'a, WithId<'a>>,
        "issuetype" => issuetype: Json<'a, WithId<'a>>,
    }
);
json_object!(
    /// An object of which only the `id` is read.
    WithId {
        "id" => id: Json<'a>,
    }
);
json_object!(
    /// A Jira user (Cloud `accountId`, Server `name`).
    User {
        "accountId" => account_id: Json<'a>,
        "name" => name: Json<'a>,
        "displayName" => display_name: Json<'a>,
    }
);
json_object!(
    /// `webhook.changelog`.
    ChangelogItems {
        "items" => items: Json<'a, Skip, Json<'a, Item<'a>>>,
    }
);
json_object!(
    /// One `webhook.changelog.items[]` entry.
    Item {
        "field" => field: Json<'a>,
        "fieldId" => field_id: Json<'a>,
        "fieldtype" => fieldtype: Json<'a>,
        "from" => from: Json<'a>,
        "fromString" => from_string: Json<'a>,
        "to" => to: Json<'a>,
        "toString" => to_string: Json<'a>,
    }
);
json_object!(
    /// `webhook.comment`.
    Comment {
        "id" => id: Json<'a>,
        "body" => body: Json<'a>,
        "author" => author: Json<'a, User<'a>>,
        "created" => created: Json<'a>,
        "updated" => updated: Json<'a>,
    }
);

/// What every changelog of one webhook shares.
struct Common {
    org_id: u64,
    site: String,
    issue_id: String,
    issue_key: Option<String>,
    metadata: BTreeMap<String, String>,
}

impl Common {
    fn changelog(
        &self,
        changelog_type: ChangelogType,
        event_timestamp: OffsetDateTime,
        author: Option<Author>,
    ) -> Changelog {
        let mut changelog = Changelog::new(
            INTEGRATION,
            self.org_id,
            changelog_type,
            self.issue_id.clone(),
            event_timestamp,
        );
        changelog.site.clone_from(&self.site);
        changelog.third_party_key = self.issue_key.clone();
        changelog.author = author;
        changelog.metadata = self.metadata.clone();
        changelog
    }
}

fn decode_envelope(envelope: &Envelope<'_>) -> Result<Vec<Changelog>, DecodeError> {
    let org_id = org_id(&envelope.org_id)?;
    if let Some(integration) = envelope
        .integration
        .opt_str()
        .map_err(|e| e.at("integration"))?
        && integration != INTEGRATION
    {
        return Err(DecodeError::invalid(
            "integration",
            format!(
                "expected `{INTEGRATION}`, found `{}`",
                truncate_for_log(integration)
            ),
        ));
    }
    let account_id = envelope
        .jira_account_id
        .opt_str()
        .map_err(|e| e.at("jiraAccountId"))?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("jiraAccountId"))?;
    let received_at = envelope
        .received_at
        .opt_str()
        .map_err(|e| e.at("receivedAt"))?;
    let webhook = envelope
        .webhook
        .opt_obj()
        .map_err(|e| e.at("webhook"))?
        .ok_or_else(|| missing("webhook"))?;
    let event = webhook
        .webhook_event
        .opt_str()
        .map_err(|e| e.at("webhook.webhookEvent"))?
        .ok_or_else(|| missing("webhook.webhookEvent"))?;
    match event {
        EVENT_ISSUE_UPDATED | EVENT_ISSUE_CREATED => {
            let common = common(org_id, account_id, webhook)?;
            issue_changelogs(&common, webhook, received_at)
        }
        EVENT_COMMENT_CREATED => {
            let common = common(org_id, account_id, webhook)?;
            comment_changelog(&common, webhook, received_at).map(|c| vec![c])
        }
        other => Err(DecodeError::unsupported_event(other)),
    }
}

fn org_id(value: &Json<'_>) -> Result<u64, DecodeError> {
    match value {
        Json::Null => Err(missing("orgId")),
        Json::Number(n) => match n.as_u64() {
            Some(0) => Err(DecodeError::invalid("orgId", "must be positive")),
            Some(id) => Ok(id),
            None => Err(DecodeError::invalid("orgId", "expected a positive integer")),
        },
        other => Err(other.wrong("a positive integer").at("orgId")),
    }
}

fn common(org_id: u64, account_id: &str, webhook: &Webhook<'_>) -> Result<Common, DecodeError> {
    let issue = webhook
        .issue
        .opt_obj()
        .map_err(|e| e.at("webhook.issue"))?
        .ok_or_else(|| missing("webhook.issue"))?;
    let issue_id = issue.id.required_id("webhook.issue.id")?;
    let issue_key = issue
        .key
        .opt_str()
        .map_err(|e| e.at("webhook.issue.key"))?
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned);
    let mut metadata = BTreeMap::new();
    metadata.insert(META_ACCOUNT_ID.to_owned(), account_id.to_owned());
    if let Some(fields) = issue
        .fields
        .opt_obj()
        .map_err(|e| e.at("webhook.issue.fields"))?
    {
        for (object, key, path) in [
            (
                &fields.project,
                META_PROJECT_ID,
                "webhook.issue.fields.project",
            ),
            (
                &fields.issuetype,
                META_ISSUE_TYPE_ID,
                "webhook.issue.fields.issuetype",
            ),
        ] {
            if let Some(nested) = object.opt_obj().map_err(|e| e.at(path))?
                && let Some(id) = nested
                    .id
                    .opt_id()
                    .map_err(|e| e.at(format!("{path}.id")))?
                    .filter(|s| !s.trim().is_empty())
            {
                metadata.insert(key.to_owned(), id);
            }
        }
    }
    Ok(Common {
        org_id,
        site: thirdparty_core::normalize_site(account_id),
        issue_id,
        issue_key,
        metadata,
    })
}

/// When the change happened, in UTC: the webhook's epoch-millisecond `timestamp`, else the
/// comment's `created` / `updated`, else the envelope's `receivedAt`.
fn event_time(
    webhook: &Webhook<'_>,
    comment: Option<&Comment<'_>>,
    received_at: Option<&str>,
) -> Result<OffsetDateTime, DecodeError> {
    // The same instant in UTC, so every changelog prints its time the same way; an instant
    // that does not fit (past year 9999 once in UTC) or cannot print as RFC 3339 is invalid.
    let time = source_time(webhook, comment, received_at)?
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(|| {
            DecodeError::invalid("webhook.timestamp", "the event time is out of range")
        })?;
    time.format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| DecodeError::invalid("webhook.timestamp", "the event time is out of range"))?;
    Ok(time)
}

fn source_time(
    webhook: &Webhook<'_>,
    comment: Option<&Comment<'_>>,
    received_at: Option<&str>,
) -> Result<OffsetDateTime, DecodeError> {
    const PATH: &str = "webhook.timestamp";
    match &webhook.timestamp {
        Json::Null => {}
        Json::Number(n) => {
            let millis = n
                .as_i64()
                .ok_or_else(|| DecodeError::invalid(PATH, "expected integer milliseconds"))?;
            return dates::from_epoch_millis(millis)
                .ok_or_else(|| DecodeError::invalid(PATH, "out of range"));
        }
        other => return Err(other.wrong("epoch milliseconds").at(PATH)),
    }
    if let Some(comment) = comment {
        for (value, path) in [
            (&comment.created, "webhook.comment.created"),
            (&comment.updated, "webhook.comment.updated"),
        ] {
            if let Some(text) = value.opt_str().map_err(|e| e.at(path))? {
                return dates::parse_datetime(text)
                    .ok_or_else(|| DecodeError::invalid(path, "not a date-time"));
            }
        }
    }
    if let Some(text) = received_at {
        return dates::parse_datetime(text)
            .ok_or_else(|| DecodeError::invalid("receivedAt", "not an RFC 3339 date-time"));
    }
    Err(missing(PATH))
}

/// A Jira user as an author: Cloud `accountId` (else Server `name`) and `displayName`.
fn author(user: Option<&User<'_>>, path: &str) -> Result<Option<Author>, DecodeError> {
    let Some(user) = user else {
        return Ok(None);
    };
    let non_blank = |s: &&str| !s.trim().is_empty();
    let field = |value, key| str_at(value, || format!("{path}.{key}"));
    let id = match field(&user.account_id, "accountId")?.filter(non_blank) {
        Some(id) => Some(id),
        None => field(&user.name, "name")?.filter(non_blank),
    };
    let display_name = field(&user.display_name, "displayName")?.filter(non_blank);
    if id.is_none() && display_name.is_none() {
        return Ok(None);
    }
    Ok(Some(Author {
        id: id.map(str::to_owned),
        display_name: display_name.map(str::to_owned),
    }))
}

/// A string, or absent; any other type is invalid at `path()`.
fn str_at<'v>(
    value: &'v Json<'_>,
    path: impl FnOnce() -> String,
) -> Result<Option<&'v str>, DecodeError> {
    value.opt_str().map_err(|e| e.at(path()))
}

/// The JSON path of key `key` of changelog item `index`.
fn item_path(index: usize, key: &str) -> String {
    format!("webhook.changelog.items[{index}].{key}")
}

fn issue_changelogs(
    common: &Common,
    webhook: &Webhook<'_>,
    received_at: Option<&str>,
) -> Result<Vec<Changelog>, DecodeError> {
    let Some(changelog) = webhook
        .changelog
        .opt_obj()
        .map_err(|e| e.at("webhook.changelog"))?
    else {
        return Ok(Vec::new());
    };
    let items = changelog
        .items
        .opt_array()
        .map_err(|e| e.at("webhook.changelog.items"))?
        .unwrap_or_default();
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let timestamp = event_time(webhook, None, received_at)?;
    let user = webhook.user.opt_obj().map_err(|e| e.at("webhook.user"))?;
    let author = author(user, "webhook.user")?;
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Json::Object(item) = item else {
            return Err(item
                .wrong("an object")
                .at(format!("webhook.changelog.items[{index}]")));
        };
        let string =
            |value, key| str_at(value, || item_path(index, key)).map(|s| s.map(str::to_owned));
        let id = |value: &Json<'_>, key| value.opt_id().map_err(|e| e.at(item_path(index, key)));
        let mut decoded = common.changelog(classify(item, index)?, timestamp, author.clone());
        decoded.from_id = id(&item.from, "from")?;
        decoded.from_string = string(&item.from_string, "fromString")?;
        decoded.to_id = id(&item.to, "to")?;
        decoded.to_string = string(&item.to_string, "toString")?;
        out.push(decoded);
    }
    Ok(out)
}

fn comment_changelog(
    common: &Common,
    webhook: &Webhook<'_>,
    received_at: Option<&str>,
) -> Result<Changelog, DecodeError> {
    let comment = webhook
        .comment
        .opt_obj()
        .map_err(|e| e.at("webhook.comment"))?
        .ok_or_else(|| missing("webhook.comment"))?;
    let comment_id = comment.id.required_id("webhook.comment.id")?;
    let body = comment
        .body
        .opt_str()
        .map_err(|e| e.at("webhook.comment.body"))?
        .map(str::to_owned);
    let user = comment
        .author
        .opt_obj()
        .map_err(|e| e.at("webhook.comment.author"))?;
    let author = author(user, "webhook.comment.author")?;
    let timestamp = event_time(webhook, Some(comment), received_at)?;
    let mut decoded = common.changelog(ChangelogType::CreateComment, timestamp, author);
    decoded.body = body;
    decoded.comment_id = Some(comment_id);
    Ok(decoded)
}

/// The changelog type of changelog item `index`: by `fieldId` (Cloud) or `field` name
/// (Server), case-insensitively; custom fields (`fieldtype: custom`) are never taken for system
/// fields.
fn classify(item: &Item<'_>, index: usize) -> Result<ChangelogType, DecodeError> {
    let non_blank = |s: &&str| !s.is_empty();
    let field = |value, key| str_at(value, || item_path(index, key));
    let field_id = field(&item.field_id, "fieldId")?
        .map(str::trim)
        .filter(non_blank);
    let field_name = field(&item.field, "field")?
        .map(str::trim)
        .filter(non_blank);
    let custom = field(&item.fieldtype, "fieldtype")?
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("custom"));
    let Some(key) = field_id.or(field_name) else {
        return Err(DecodeError::invalid(
            item_path(index, "field"),
            "neither `fieldId` nor `field` names the changed field",
        ));
    };
    if !custom && let Some(system) = system_field(key) {
        return Ok(system);
    }
    let id = match field_id {
        Some(id) => id.to_owned(),
        None => field_id_from_name(key),
    };
    if id.is_empty() {
        return Err(DecodeError::invalid(
            item_path(index, "field"),
            "the field name has no letters or digits to derive an id from",
        ));
    }
    Ok(ChangelogType::Unsupported(id))
}

/// The system field a field id or name designates (`Status`, `duedate`, `Due Date`, ...):
/// compared on its letters and digits, lowercased, without building the normalized name.
fn system_field(key: &str) -> Option<ChangelogType> {
    let normalized = || {
        key.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
    };
    [
        ("summary", ChangelogType::UpdateTitle),
        ("description", ChangelogType::UpdateDescription),
        ("priority", ChangelogType::UpdatePriority),
        ("status", ChangelogType::UpdateStatus),
        ("assignee", ChangelogType::UpdateAssignee),
        ("duedate", ChangelogType::UpdateDueDate),
    ]
    .into_iter()
    .find_map(|(name, system)| normalized().eq(name.chars()).then_some(system))
}

/// A stable field id for a Server item that has no `fieldId`: the name lowercased, each run of
/// other characters than letters and digits turned into one `_`, none at either end
/// (`Story Points` -> `story_points`).
pub fn field_id_from_name(name: &str) -> String {
    let mut id = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            if separator && !id.is_empty() {
                id.push('_');
            }
            separator = false;
            id.extend(c.to_lowercase());
        } else {
            separator = true;
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn decode_json(bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
        JiraDecoder::new().decode(bytes).map(|changelogs| {
            changelogs
                .iter()
                .map(|c| serde_json::to_value(c).unwrap())
                .collect()
        })
    }

    fn decode_fixture(name: &str) -> Vec<Value> {
        decode_json(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The fixture's envelope as JSON, to build variants of it.
    fn envelope(name: &str) -> Value {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    fn decode_value(value: &Value) -> Result<Vec<Value>, DecodeError> {
        decode_json(&serde_json::to_vec(value).unwrap())
    }

    const JANE: &str = "5b10ac8d82e05b22cc7d4ef5";
    const JOHN: &str = "5b109f2e9729b51b54dc274d";

    fn cloud_meta() -> Value {
        json!({"account_id": "acme.atlassian.net", "project_id": "10000", "issue_type_id": "10001"})
    }

    #[test]
    fn cloud_issue_updated_yields_one_changelog_per_item_field_for_field() {
        let got = decode_fixture("cloud_issue_updated");
        let common = |changelog_type: &str| {
            json!({
                "integration": "jira", "org_id": 123456, "changelog_type": changelog_type,
                "third_party_id": "10002", "third_party_key": "PROJ-12",
                "event_timestamp": "2024-01-15T10:29:58.123Z",
                "author": {"id": JANE, "display_name": "Jane Doe"},
                "metadata": cloud_meta(),
            })
        };
        let with = |changelog_type: &str, values: Value| {
            let mut v = common(changelog_type);
            for (k, x) in values.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let want = vec![
            with(
                "update_status",
                json!({"from_id": "10000", "from_string": "To Do", "to_id": "3", "to_string": "In Progress"}),
            ),
            with(
                "update_priority",
                json!({"from_id": "3", "from_string": "Medium", "to_id": "2", "to_string": "High"}),
            ),
            with(
                "update_title",
                json!({"from_string": "Checkout latency above SLO",
                       "to_string": "Checkout p99 latency above SLO in eu-west"}),
            ),
            with(
                "update_description",
                json!({"from_string": "Customers report slow checkout.",
                       "to_string": "Customers in eu-west report p99 checkout latency above 2s.\n\nh3. Impact\n* ~5% of orders time out"}),
            ),
            with(
                "update_assignee",
                json!({"from_id": JANE, "from_string": "Jane Doe", "to_id": JOHN, "to_string": "John Smith"}),
            ),
            with(
                "update_due_date",
                json!({"to_id": "2024-06-30", "to_string": "2024-06-30 00:00:00.0"}),
            ),
            with(
                "unsupported_customfield_10015",
                json!({"to_id": "2024-06-01", "to_string": "1/Jun/24"}),
            ),
        ];
        assert_eq!(got.len(), want.len());
        for (got, want) in got.iter().zip(&want) {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn cloud_issue_created_with_a_changelog_decodes_its_items() {
        let got = decode_fixture("cloud_issue_created");
        assert_eq!(
            got,
            vec![
                json!({
                    "integration": "jira", "org_id": 123456, "changelog_type": "update_assignee",
                    "third_party_id": "10002", "third_party_key": "PROJ-12",
                    "event_timestamp": "2024-01-15T10:00:00Z",
                    "author": {"id": JANE, "display_name": "Jane Doe"},
                    "to_id": JANE, "to_string": "Jane Doe",
                    "metadata": cloud_meta(),
                }),
                json!({
                    "integration": "jira", "org_id": 123456,
                    "changelog_type": "unsupported_customfield_10020",
                    "third_party_id": "10002", "third_party_key": "PROJ-12",
                    "event_timestamp": "2024-01-15T10:00:00Z",
                    "author": {"id": JANE, "display_name": "Jane Doe"},
                    "from_id": "", "from_string": "", "to_id": "1", "to_string": "PROJ Sprint 1",
                    "metadata": cloud_meta(),
                }),
            ]
        );
        let mut created = envelope("cloud_issue_created");
        created["webhook"]
            .as_object_mut()
            .unwrap()
            .remove("changelog");
        assert_eq!(decode_value(&created).unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn cloud_comment_created_with_a_trimmed_issue() {
        assert_eq!(
            decode_fixture("cloud_comment_created"),
            vec![json!({
                "integration": "jira", "org_id": 123456, "changelog_type": "create_comment",
                "third_party_id": "10002", "third_party_key": "PROJ-12",
                "event_timestamp": "2024-01-15T10:45:00Z",
                "author": {"id": JANE, "display_name": "Jane Doe"},
                "body": "Rolled back the cache config; p99 is recovering. Will confirm in 30 min.",
                "comment_id": "10050",
                "metadata": cloud_meta(),
            })]
        );
    }

    #[test]
    fn account_id_only_users_keep_only_the_id() {
        let got = decode_fixture("cloud_issue_updated_account_only");
        assert_eq!(got.len(), 3);
        for c in &got {
            assert_eq!(c["author"], json!({"id": JOHN}));
            assert_eq!(c["event_timestamp"], json!("2024-01-15T11:00:00Z"));
        }
        assert_eq!(
            got[2],
            json!({
                "integration": "jira", "org_id": 123456, "changelog_type": "update_assignee",
                "third_party_id": "10002", "third_party_key": "PROJ-12",
                "event_timestamp": "2024-01-15T11:00:00Z",
                "author": {"id": JOHN},
                "from_id": JOHN, "from_string": "John Smith",
                "to_id": "712020:7e3b2c1a-9f4d-4c3e-8a51-2f0d6c1b9e77",
                "metadata": cloud_meta(),
            })
        );
    }

    #[test]
    fn server_issue_updated_without_field_ids() {
        let got = decode_fixture("server_issue_updated");
        let meta = json!({"account_id": "jira.acme.internal", "project_id": "10200", "issue_type_id": "3"});
        let item = |changelog_type: &str, values: Value| {
            let mut v = json!({
                "integration": "jira", "org_id": 123456, "changelog_type": changelog_type,
                "third_party_id": "20417", "third_party_key": "OPS-3",
                "event_timestamp": "2024-10-08T08:38:03.79Z",
                "author": {"id": "jdoe", "display_name": "John Doe"},
                "metadata": meta.clone(),
            });
            for (k, x) in values.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        assert_eq!(
            got,
            vec![
                item(
                    "update_status",
                    json!({"from_id": "1", "from_string": "Open", "to_id": "3", "to_string": "In Progress"})
                ),
                item(
                    "update_priority",
                    json!({"from_id": "3", "from_string": "Major", "to_id": "2", "to_string": "Critical"})
                ),
                item(
                    "update_assignee",
                    json!({"from_id": "jdoe", "from_string": "John Doe", "to_id": "asmith", "to_string": "Alice Smith"})
                ),
                item(
                    "update_due_date",
                    json!({"to_id": "2024-10-15", "to_string": "2024-10-15 00:00:00.0"})
                ),
                item("unsupported_story_points", json!({"to_string": "5"})),
            ]
        );
    }

    #[test]
    fn server_comment_without_timestamp_takes_the_comment_time_parsing_its_offset() {
        assert_eq!(
            decode_fixture("server_comment_created"),
            vec![json!({
                "integration": "jira", "org_id": 123456, "changelog_type": "create_comment",
                "third_party_id": "20417", "third_party_key": "OPS-3",
                "event_timestamp": "2024-10-08T08:40:12.345Z",
                "author": {"id": "asmith", "display_name": "Alice Smith"},
                "body": "Cleaned /var/lib/docker on agents 3-7, usage back to 41%.\r\n{code}df -h /var/lib/docker{code}",
                "comment_id": "40127",
                "metadata": {"account_id": "jira.acme.internal", "project_id": "10200", "issue_type_id": "3"},
            })]
        );
    }

    #[test]
    fn event_time_falls_back_from_timestamp_to_comment_to_received_at() {
        let mut comment = envelope("cloud_comment_created");
        comment["webhook"]
            .as_object_mut()
            .unwrap()
            .remove("timestamp");
        comment["webhook"]["comment"]["created"] = json!("2024-10-08T16:38:03.790+0800");
        assert_eq!(
            decode_value(&comment).unwrap()[0]["event_timestamp"],
            json!("2024-10-08T08:38:03.79Z")
        );
        comment["webhook"]["comment"]
            .as_object_mut()
            .unwrap()
            .remove("created");
        assert_eq!(
            decode_value(&comment).unwrap()[0]["event_timestamp"],
            json!("2024-01-15T10:45:00Z"),
            "updated"
        );
        comment["webhook"]["comment"]
            .as_object_mut()
            .unwrap()
            .remove("updated");
        assert_eq!(
            decode_value(&comment).unwrap()[0]["event_timestamp"],
            json!("2024-01-15T10:45:01Z"),
            "receivedAt"
        );
        comment.as_object_mut().unwrap().remove("receivedAt");
        assert!(matches!(
            decode_value(&comment),
            Err(DecodeError::Invalid { field, .. }) if field == "webhook.timestamp"
        ));
    }

    #[test]
    fn field_matching_is_case_insensitive_and_custom_fields_never_shadow_system_ones() {
        let mut doc = envelope("server_issue_updated");
        doc["webhook"]["changelog"]["items"] = json!([
            {"field": "STATUS", "fieldtype": "jira", "from": "1", "to": "3"},
            {"field": "Due Date", "fieldtype": "jira", "to": "2024-10-15"},
            {"field": "Summary", "toString": "x"},
            {"field": "Status", "fieldtype": "custom", "to": "x"},
            {"field": "Fix Version/s", "fieldtype": "jira", "to": "10100"},
            {"field": "Fälligkeit", "fieldtype": "custom"},
            {"field": "x", "fieldId": "DueDate"},
            {"field": "assignee", "fieldId": "customfield_10015", "fieldtype": "custom"},
            {"field": "whatever", "fieldId": "Description"},
            {"field": "Numbers", "from": 7, "to": 8},
        ]);
        let types: Vec<Value> = decode_value(&doc)
            .unwrap()
            .iter()
            .map(|c| c["changelog_type"].clone())
            .collect();
        assert_eq!(
            types,
            vec![
                json!("update_status"),
                json!("update_due_date"),
                json!("update_title"),
                json!("unsupported_status"),
                json!("unsupported_fix_version_s"),
                json!("unsupported_fälligkeit"),
                json!("update_due_date"),
                json!("unsupported_customfield_10015"),
                json!("update_description"),
                json!("unsupported_numbers"),
            ]
        );
        let numbers = &decode_value(&doc).unwrap()[9];
        assert_eq!(
            (&numbers["from_id"], &numbers["to_id"]),
            (&json!("7"), &json!("8"))
        );
    }

    #[test]
    fn field_ids_derived_from_names_are_stable() {
        assert_eq!(field_id_from_name("Story Points"), "story_points");
        assert_eq!(field_id_from_name("  Fix Version/s "), "fix_version_s");
        assert_eq!(field_id_from_name("Epic--Link"), "epic_link");
        assert_eq!(field_id_from_name("期日"), "期日");
        assert_eq!(field_id_from_name("?!"), "");
    }

    #[test]
    fn numeric_ids_are_the_same_ids() {
        let mut doc = envelope("cloud_issue_updated");
        doc["webhook"]["issue"]["id"] = json!(10002);
        doc["webhook"]["issue"]["fields"]["project"]["id"] = json!(10000);
        let got = decode_value(&doc).unwrap();
        assert_eq!(got[0]["third_party_id"], json!("10002"));
        assert_eq!(got[0]["metadata"]["project_id"], json!("10000"));
    }

    #[test]
    fn absent_scope_values_are_omitted_not_invented() {
        let mut doc = envelope("cloud_comment_created");
        let issue = doc["webhook"]["issue"].as_object_mut().unwrap();
        issue.remove("fields");
        issue.remove("key");
        doc["webhook"]["comment"]
            .as_object_mut()
            .unwrap()
            .remove("author");
        let got = decode_value(&doc).unwrap();
        assert_eq!(
            got[0]["metadata"],
            json!({"account_id": "acme.atlassian.net"})
        );
        assert!(got[0].get("third_party_key").is_none());
        assert!(got[0].get("author").is_none());
    }

    fn error_of(doc: &Value) -> DecodeError {
        decode_value(doc).expect_err("must not decode")
    }

    fn invalid_field(err: &DecodeError) -> &str {
        match err {
            DecodeError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn malformed_bytes_are_malformed() {
        let decoder = JiraDecoder::new();
        let cloud = fixture("cloud_issue_updated");
        for bytes in [
            &b""[..],
            b"not json",
            &cloud[..cloud.len() / 2],
            b"\xff\xfe{}",
        ] {
            assert!(
                matches!(decoder.decode(bytes), Err(DecodeError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Valid JSON that is not an object fails validation: discarded, not skipped.
        for bytes in [&b"[]"[..], b"\"jira\"", b"null", b"123456"] {
            assert!(
                matches!(decoder.decode(bytes), Err(DecodeError::Invalid { .. })),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            decoder.decode(deep.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_payloads_are_too_large() {
        let cloud = fixture("cloud_issue_updated");
        let decoder = JiraDecoder::with_max_payload_bytes(1024);
        assert_eq!(decoder.max_payload_bytes(), 1024);
        assert_eq!(
            decoder.decode(&cloud),
            Err(DecodeError::TooLarge {
                size: cloud.len(),
                limit: 1024
            })
        );
    }

    #[test]
    fn unsupported_events_are_typed() {
        for event in [
            "jira:issue_deleted",
            "comment_updated",
            "comment_deleted",
            "worklog_updated",
            "jira:version_released",
            "",
        ] {
            let mut doc = envelope("cloud_issue_updated");
            doc["webhook"]["webhookEvent"] = json!(event);
            assert_eq!(
                error_of(&doc),
                DecodeError::UnsupportedEvent(event.to_owned())
            );
        }
    }

    #[test]
    fn payload_strings_in_errors_are_truncated() {
        // A 4 MiB event name (under a limit that lets it through, and just under the default).
        let decoder = JiraDecoder::with_max_payload_bytes(2 * DEFAULT_MAX_PAYLOAD_BYTES);
        for (decoder, len) in [
            (&decoder, 4 << 20),
            (&JiraDecoder::new(), DEFAULT_MAX_PAYLOAD_BYTES - 4096),
        ] {
            let mut doc = envelope("cloud_issue_updated");
            doc["webhook"]["webhookEvent"] = json!("x".repeat(len));
            let err = decoder
                .decode(&serde_json::to_vec(&doc).unwrap())
                .unwrap_err();
            assert!(matches!(err, DecodeError::UnsupportedEvent(_)), "{err:?}");
            let shown = err.to_string();
            assert!(shown.len() < 300, "{} bytes", shown.len());
            assert!(shown.ends_with(&format!("…({len} bytes)`")), "{shown}");
        }
        let mut doc = envelope("cloud_issue_updated");
        doc["integration"] = json!("y".repeat(1 << 20));
        let shown = error_of(&doc).to_string();
        assert!(shown.len() < 300, "{} bytes", shown.len());
    }

    #[test]
    fn invalid_documents_name_the_offending_field() {
        type Mutation = fn(&mut Value);
        let cases: Vec<(&str, &str, Mutation)> = vec![
            ("cloud_issue_updated", "orgId", |d| {
                d.as_object_mut().unwrap().remove("orgId");
            }),
            ("cloud_issue_updated", "orgId", |d| {
                d["orgId"] = json!("123456")
            }),
            ("cloud_issue_updated", "orgId", |d| d["orgId"] = json!(0)),
            ("cloud_issue_updated", "orgId", |d| d["orgId"] = json!(-4)),
            ("cloud_issue_updated", "orgId", |d| d["orgId"] = json!(1.5)),
            ("cloud_issue_updated", "integration", |d| {
                d["integration"] = json!("servicenow")
            }),
            ("cloud_issue_updated", "jiraAccountId", |d| {
                d["jiraAccountId"] = json!(" ")
            }),
            ("cloud_issue_updated", "jiraAccountId", |d| {
                d["jiraAccountId"] = json!(42)
            }),
            ("cloud_issue_updated", "webhook", |d| {
                d.as_object_mut().unwrap().remove("webhook");
            }),
            ("cloud_issue_updated", "webhook", |d| {
                d["webhook"] = json!("{}")
            }),
            ("cloud_issue_updated", "webhook.webhookEvent", |d| {
                d["webhook"]["webhookEvent"] = json!(null)
            }),
            ("cloud_issue_updated", "webhook.webhookEvent", |d| {
                d["webhook"]["webhookEvent"] = json!(["jira:issue_updated"])
            }),
            ("cloud_issue_updated", "webhook.issue", |d| {
                d["webhook"].as_object_mut().unwrap().remove("issue");
            }),
            ("cloud_issue_updated", "webhook.issue", |d| {
                d["webhook"]["issue"] = json!([])
            }),
            ("cloud_issue_updated", "webhook.issue.id", |d| {
                d["webhook"]["issue"]["id"] = json!("")
            }),
            ("cloud_issue_updated", "webhook.issue.id", |d| {
                d["webhook"]["issue"]["id"] = json!({"id": 1})
            }),
            ("cloud_issue_updated", "webhook.issue.key", |d| {
                d["webhook"]["issue"]["key"] = json!(12)
            }),
            ("cloud_issue_updated", "webhook.issue.fields.project", |d| {
                d["webhook"]["issue"]["fields"]["project"] = json!("PROJ")
            }),
            (
                "cloud_issue_updated",
                "webhook.issue.fields.issuetype.id",
                |d| d["webhook"]["issue"]["fields"]["issuetype"]["id"] = json!(true),
            ),
            ("cloud_issue_updated", "webhook.timestamp", |d| {
                d["webhook"]["timestamp"] = json!("1705314598123")
            }),
            ("cloud_issue_updated", "webhook.timestamp", |d| {
                d["webhook"]["timestamp"] = json!(1.5e300)
            }),
            ("cloud_issue_updated", "webhook.timestamp", |d| {
                d["webhook"]["timestamp"] = json!(i64::MAX)
            }),
            ("cloud_issue_updated", "webhook.timestamp", |d| {
                d["webhook"]["timestamp"] = json!(u64::MAX)
            }),
            ("cloud_issue_updated", "webhook.user", |d| {
                d["webhook"]["user"] = json!("jane")
            }),
            ("cloud_issue_updated", "webhook.user.accountId", |d| {
                d["webhook"]["user"]["accountId"] = json!(5)
            }),
            ("cloud_issue_updated", "webhook.changelog", |d| {
                d["webhook"]["changelog"] = json!([])
            }),
            ("cloud_issue_updated", "webhook.changelog.items", |d| {
                d["webhook"]["changelog"]["items"] = json!({})
            }),
            ("cloud_issue_updated", "webhook.changelog.items[1]", |d| {
                d["webhook"]["changelog"]["items"][1] = json!("status")
            }),
            (
                "cloud_issue_updated",
                "webhook.changelog.items[0].field",
                |d| d["webhook"]["changelog"]["items"][0] = json!({"from": "1", "to": "2"}),
            ),
            (
                "cloud_issue_updated",
                "webhook.changelog.items[0].field",
                |d| d["webhook"]["changelog"]["items"][0] = json!({"field": "--"}),
            ),
            (
                "cloud_issue_updated",
                "webhook.changelog.items[2].fieldId",
                |d| d["webhook"]["changelog"]["items"][2]["fieldId"] = json!(3),
            ),
            (
                "cloud_issue_updated",
                "webhook.changelog.items[0].from",
                |d| d["webhook"]["changelog"]["items"][0]["from"] = json!([]),
            ),
            (
                "cloud_issue_updated",
                "webhook.changelog.items[0].to",
                |d| d["webhook"]["changelog"]["items"][0]["to"] = json!(0.5),
            ),
            (
                "cloud_issue_updated",
                "webhook.changelog.items[0].toString",
                |d| d["webhook"]["changelog"]["items"][0]["toString"] = json!(3),
            ),
            ("cloud_comment_created", "webhook.comment", |d| {
                d["webhook"].as_object_mut().unwrap().remove("comment");
            }),
            ("cloud_comment_created", "webhook.comment.id", |d| {
                d["webhook"]["comment"]["id"] = json!(null)
            }),
            ("cloud_comment_created", "webhook.comment.body", |d| {
                d["webhook"]["comment"]["body"] = json!({"type": "doc"})
            }),
            ("cloud_comment_created", "webhook.comment.author", |d| {
                d["webhook"]["comment"]["author"] = json!(1)
            }),
            ("server_comment_created", "webhook.comment.created", |d| {
                d["webhook"]["comment"]["created"] = json!("08/Oct/24 4:40 PM")
            }),
            ("server_comment_created", "receivedAt", |d| {
                let c = d["webhook"]["comment"].as_object_mut().unwrap();
                c.remove("created");
                c.remove("updated");
                d["receivedAt"] = json!("yesterday");
            }),
        ];
        for (name, field, mutate) in cases {
            let mut doc = envelope(name);
            mutate(&mut doc);
            let err = error_of(&doc);
            assert_eq!(invalid_field(&err), field, "{name}: {err}");
        }
    }

    #[test]
    fn decoding_is_deterministic() {
        for name in [
            "cloud_issue_created",
            "cloud_issue_updated",
            "cloud_comment_created",
            "server_issue_updated",
        ] {
            assert_eq!(decode_fixture(name), decode_fixture(name));
        }
    }

    #[test]
    fn event_times_past_year_9999_in_utc_are_invalid_not_a_panic() {
        let decoder = JiraDecoder::new();
        let mut comment: serde_json::Value =
            serde_json::from_slice(&fixture("cloud_comment_created")).unwrap();
        let webhook = comment["webhook"].as_object_mut().unwrap();
        webhook.remove("timestamp");
        webhook["comment"]["created"] = serde_json::json!("9999-12-31T23:30:00.000-0100");
        let bytes = serde_json::to_vec(&comment).unwrap();
        assert!(matches!(
            decoder.decode(&bytes),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
