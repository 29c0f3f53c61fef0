//! `cargo xtask new-integration <name>`: a new integration crate (`crates/integration-<name>`)
//! and its thin reader binary (`bins/<name>-reader`), registered in the workspace. They compile,
//! invoke the core contract suite and pass it on the example message they ship with; every
//! placeholder says what to replace it with (`docs/adding-an-integration.md` walks through it).

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Generates the integration `name` (lowercase ASCII letters, digits and `-`, starting with a
/// letter) in the workspace at `root`.
pub fn run(root: &Path, name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!("`{name}`: use lowercase ASCII letters, digits and `-`, starting with a letter");
    }
    let crate_dir = root.join("crates").join(format!("integration-{name}"));
    let bin_dir = root.join("bins").join(format!("{name}-reader"));
    for dir in [&crate_dir, &bin_dir] {
        if dir.exists() {
            bail!("{} exists already", dir.display());
        }
    }
    let ident = name.replace('-', "_");
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{ident}}", &ident)
            .replace("{{Type}}", &type_name)
    };
    let files = [
        (crate_dir.join("Cargo.toml"), fill(CRATE_TOML)),
        (crate_dir.join("README.md"), fill(CRATE_README)),
        (crate_dir.join("src/lib.rs"), fill(LIB_RS)),
        (crate_dir.join("src/decoder.rs"), fill(DECODER_RS)),
        (crate_dir.join("src/filterer.rs"), fill(FILTERER_RS)),
        (crate_dir.join("src/processor.rs"), fill(PROCESSOR_RS)),
        (crate_dir.join("fixtures/example.json"), fill(FIXTURE_JSON)),
        (crate_dir.join("tests/contract.rs"), fill(CONTRACT_RS)),
        (bin_dir.join("Cargo.toml"), fill(BIN_TOML)),
        (bin_dir.join("README.md"), fill(BIN_README)),
        (bin_dir.join("src/main.rs"), fill(MAIN_RS)),
    ];
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    register(root, name)?;
    println!("created crates/integration-{name} and bins/{name}-reader; next:");
    println!("  cargo test -p integration-{name} -p {name}-reader");
    println!("  then follow docs/adding-an-integration.md");
    Ok(())
}

/// Adds the crate and the binary to the workspace's members and the crate to its dependencies.
fn register(root: &Path, name: &str) -> Result<()> {
    let path = root.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let members = "members = [\n";
    let dependencies = "[workspace.dependencies]\n";
    if !text.contains(members) || !text.contains(dependencies) {
        bail!(
            "{}: no `members = [` or `[workspace.dependencies]` line",
            path.display()
        );
    }
    let text = text.replacen(
        members,
        &format!("{members}    \"crates/integration-{name}\",\n    \"bins/{name}-reader\",\n"),
        1,
    );
    let text = text.replacen(
        dependencies,
        &format!("{dependencies}integration-{name} = {{ path = \"crates/integration-{name}\" }}\n"),
        1,
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

const CRATE_TOML: &str = r#"[package]
name = "integration-{{name}}"
description = "The {{name}} integration: decoder, filterer and processor."
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true
version.workspace = true

[dependencies]
thirdparty-core.workspace = true
async-trait.workspace = true
serde_json.workspace = true

[dev-dependencies]
thirdparty-core = { workspace = true, features = ["testkit"] }
tokio = { workspace = true, features = ["macros", "rt-multi-thread"] }
time.workspace = true

[lints]
workspace = true
"#;

const CRATE_README: &str = r#"# integration-{{name}}

The {{name}} integration: the decoder (the Kafka message -> changelogs), the filterer (sync
cycles and scope, then the project's settings) and the processor (writes to the case). It ships
with an example message format (`fixtures/example.json`); replace it with the third party's
webhook, keeping the fixtures real bodies the third party sent. See
`docs/adding-an-integration.md`.
"#;

const LIB_RS: &str = r#"//! The {{name}} integration: turns {{name}} webhooks into normalized
//! [`Changelog`](thirdparty_core::Changelog)s and applies them to cases.
//!
//! - [`{{Type}}Decoder`]: the Kafka message -> one changelog per change;
//! - [`{{Type}}Filterer`]: sync cycles and the item's scope (pre-filter), then the project's
//!   settings (filter);
//! - [`{{Type}}Processor`]: field changes as versioned case updates, comments as idempotent
//!   timeline entries.
//!
//! The stages are wired together by [`thirdparty_core::Pipeline`]; the contract they honour is
//! `docs/adding-an-integration.md`.

mod decoder;
mod filterer;
mod processor;

pub use decoder::{{Type}}Decoder;
pub use filterer::{{Type}}Filterer;
pub use processor::{{Type}}Processor;

/// The integration name: `Changelog::integration`, the settings and metadata key, the flavor.
pub const INTEGRATION: &str = "{{name}}";

/// The changelog metadata key holding the item's site, matched against the scope of the
/// organization's sync metadata (and naming whose own users are whose).
pub const META_SITE: &str = "site";
"#;

const DECODER_RS: &str = r#"//! The {{name}} message -> normalized changelogs.

use thirdparty_core::json::{self, Json};
use thirdparty_core::{Author, Changelog, ChangelogType, DecodeError, Decoder, normalize_site};

use crate::{INTEGRATION, META_SITE};

/// Decodes the example message format (`fixtures/example.json`):
///
/// ```json
/// {"orgId": 123456, "site": "example.com", "itemId": "1001", "itemKey": "EX-1",
///  "changedAt": "2024-06-01T10:00:00Z", "author": {"id": "u-1", "name": "Jane"},
///  "title": {"from": "Old", "to": "New"}, "comment": {"id": "c-1", "body": "Hello"}}
/// ```
///
/// Replace it with the third party's webhook: one changelog per change it carries (a title
/// change is `update_title` with `from_string`/`to_string`; a new comment is `create_comment`
/// with `comment_id` and `body`), each with the organization, the site, the item's stable id and
/// human key, the author, the event time and the metadata the scope is matched on. Bytes that
/// are not JSON are [`DecodeError::Malformed`], a missing or mistyped field
/// [`DecodeError::Invalid`] naming its path, an event you do not sync
/// [`DecodeError::UnsupportedEvent`].
///
/// The message is read the way every integration reads JSON (`thirdparty_core::json`): one
/// struct per object, naming only the keys the decoder reads, and path-named reads that give
/// every missing or mistyped value one error wording.
#[derive(Debug, Clone, Copy, Default)]
pub struct {{Type}}Decoder;

// The keys of the example message the decoder reads; every other key is skipped.
thirdparty_core::json_object!(
    /// The Kafka message value.
    Message {
        "orgId" => org_id: Json<'a>,
        "site" => site: Json<'a>,
        "itemId" => item_id: Json<'a>,
        "itemKey" => item_key: Json<'a>,
        "changedAt" => changed_at: Json<'a>,
        "author" => author: Json<'a, Person<'a>>,
        "title" => title: Json<'a, Title<'a>>,
        "comment" => comment: Json<'a, Comment<'a>>,
    }
);
thirdparty_core::json_object!(
    /// `author`.
    Person {
        "id" => id: Json<'a>,
        "name" => name: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// `title`: the value before and after.
    Title {
        "from" => from: Json<'a>,
        "to" => to: Json<'a>,
    }
);
thirdparty_core::json_object!(
    /// `comment`.
    Comment {
        "id" => id: Json<'a>,
        "body" => body: Json<'a>,
    }
);

impl {{Type}}Decoder {
    /// The decoder.
    pub fn new() -> Self {
        Self
    }
}

impl Decoder for {{Type}}Decoder {
    fn integration(&self) -> &'static str {
        INTEGRATION
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
        let message: Message<'_> = json::parse(value)?;
        let site = message.site.required_str("site")?;
        let mut base = Changelog::new(
            INTEGRATION,
            message.org_id.org_id("orgId")?,
            ChangelogType::CreateComment,
            message.item_id.required_id("itemId")?,
            message.changed_at.required_time("changedAt")?,
        );
        base.site = normalize_site(site);
        base.third_party_key = message.item_key.str_at("itemKey")?.map(str::to_owned);
        base.metadata.insert(META_SITE.to_owned(), site.to_owned());
        if let Some(author) = message.author.object_at("author")? {
            base.author = Some(Author {
                id: author.id.id("author.id")?,
                display_name: author.name.str_at("author.name")?.map(str::to_owned),
            });
        }
        let mut changelogs = Vec::new();
        if let Some(title) = message.title.object_at("title")? {
            let mut c = base.clone();
            c.changelog_type = ChangelogType::UpdateTitle;
            c.from_string = title.from.str_at("title.from")?.map(str::to_owned);
            c.to_string = Some(title.to.required_str("title.to")?.to_owned());
            changelogs.push(c);
        }
        if let Some(comment) = message.comment.object_at("comment")? {
            let mut c = base;
            c.comment_id = Some(comment.id.required_id("comment.id")?);
            c.body = Some(comment.body.str_at("comment.body")?.unwrap_or_default().to_owned());
            changelogs.push(c);
        }
        Ok(changelogs)
    }
}
"#;

const FILTERER_RS: &str = r#"//! Which {{name}} changelogs must not be applied, and why.

use async_trait::async_trait;
use thirdparty_core::rules::{OwnAccounts, comment_gate, is_sync_cycle};
use thirdparty_core::{
    Case, CaseApiError, CaseField, Changelog, ChangelogType, FieldChange, FilterReason, Filterer,
    PreFilterContext, SyncSettings, present,
};

use crate::META_SITE;

/// The {{name}} filterer.
///
/// Pre-filter (no I/O beyond the cached metadata): our own accounts' changes are echoes
/// (`break_synchronization_cycle`); an item whose site no metadata entry accepts is out of
/// scope (`no_matching_metadata`). Add here what your scope keys are (a project, a type).
///
/// Filter (pure): the pull gate, then comments through the shared comment gate, titles through
/// the field's switch, ordering, conflict policy and `no_change`. Add a branch per field your
/// decoder yields, reusing [`planned_change`] in the processor.
#[derive(Debug, Clone, Default)]
pub struct {{Type}}Filterer {
    own: OwnAccounts,
}

impl {{Type}}Filterer {
    /// A filterer treating changes by these accounts (ids or names, any ASCII case) as echoes
    /// of our own writes.
    pub fn new<I, S>(own: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            own: OwnAccounts::new(own),
        }
    }
}

#[async_trait]
impl Filterer for {{Type}}Filterer {
    async fn pre_filter(
        &self,
        changelog: &mut Changelog,
        ctx: &PreFilterContext<'_>,
    ) -> Result<Option<FilterReason>, CaseApiError> {
        if self.own.is_author(changelog) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let entries = ctx.org_metadata(changelog.org_id).await?;
        if is_sync_cycle(changelog, &self.own, &entries, META_SITE) {
            return Ok(Some(FilterReason::BreakSynchronizationCycle));
        }
        let site = changelog.metadata_value(META_SITE);
        if !entries.iter().any(|e| e.accepts(META_SITE, site)) {
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
        if let Some(reason) = settings.pull_gate(changelog.event_timestamp) {
            return Some(reason);
        }
        if changelog.changelog_type == ChangelogType::CreateComment {
            return comment_gate(changelog, case, settings);
        }
        let Some(field) = changelog.changelog_type.case_field() else {
            return Some(FilterReason::UnsupportedChangelogType);
        };
        if !settings.field_synced(field) {
            return Some(FilterReason::FieldSyncDisabled);
        }
        if let Some(reason) = case.changelog_ordering_reason(field, changelog) {
            return Some(reason);
        }
        planned_change(changelog, case, settings).err()
    }
}

/// The write a field changelog asks for on this case, or why it must not be made. Pure: the
/// filter and the processor share it.
pub(crate) fn planned_change(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
) -> Result<FieldChange, FilterReason> {
    let change = match changelog.changelog_type {
        ChangelogType::UpdateTitle => FieldChange::Title(
            present(changelog.to_string.as_ref())
                .ok_or(FilterReason::InvalidFieldValue)?
                .to_owned(),
        ),
        _ => return Err(FilterReason::UnsupportedChangelogType),
    };
    let field: CaseField = change.field();
    // A title carries no trustworthy `from`: only a person's edit in the case conflicts.
    if let Some(reason) = case.conflict_reason(field, settings.conflict_policy(field), None) {
        return Err(reason);
    }
    if case.holds(&change) {
        return Err(FilterReason::NoChange);
    }
    Ok(change)
}
"#;

const PROCESSOR_RS: &str = r#"//! Applying a {{name}} changelog that passed every filter.

use async_trait::async_trait;
use thirdparty_core::rules::{self, field_update};
use thirdparty_core::{
    Case, CaseApi, CaseApiError, Changelog, ChangelogType, ProcessOutcome, Processor,
    SyncSettings, present,
};

use crate::INTEGRATION;
use crate::filterer::planned_change;

/// The {{name}} processor: field changes through one versioned case update (a version mismatch
/// comes back unchanged: the pipeline re-reads and re-filters), comments with an idempotency key
/// derived from the source (`{{name}}:{site}:{item}:{comment}`), so a replay never duplicates.
/// Every read and write goes through `api`: a dry run passes a read-only one.
#[derive(Debug, Clone, Copy, Default)]
pub struct {{Type}}Processor;

impl {{Type}}Processor {
    /// The processor.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Processor for {{Type}}Processor {
    async fn process(
        &self,
        changelog: &Changelog,
        case: &Case,
        settings: &SyncSettings,
        api: &dyn CaseApi,
    ) -> Result<ProcessOutcome, CaseApiError> {
        if changelog.changelog_type == ChangelogType::CreateComment {
            return add_comment(changelog, case, api).await;
        }
        match planned_change(changelog, case, settings) {
            Ok(change) => {
                api.update_case(&field_update(changelog, case, change)).await?;
                Ok(ProcessOutcome::Applied)
            }
            Err(reason) => Ok(ProcessOutcome::Filtered(reason)),
        }
    }
}

async fn add_comment(
    changelog: &Changelog,
    case: &Case,
    api: &dyn CaseApi,
) -> Result<ProcessOutcome, CaseApiError> {
    let key = present(changelog.comment_id.as_ref()).map(|comment_id| {
        format!("{INTEGRATION}:{}:{}:{comment_id}", changelog.site, changelog.third_party_id)
    });
    rules::add_comment(changelog, case, key, api).await
}
"#;

const FIXTURE_JSON: &str = r#"{
  "orgId": 123456,
  "site": "example.com",
  "itemId": "1001",
  "itemKey": "EX-1",
  "changedAt": "2024-06-01T10:00:00Z",
  "author": {"id": "u-1", "name": "Jane"},
  "title": {"from": "Printer offline", "to": "Printer offline on floor 3"},
  "comment": {"id": "c-1", "body": "Rebooted it, still offline."}
}
"#;

const CONTRACT_RS: &str = r#"//! The core contract suite, run for {{name}} over its fixtures (replace `fixtures/example.json`
//! with real bodies the third party sent, and seed the world they need below).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use integration_{{ident}}::{{{Type}}Decoder, {{Type}}Filterer, {{Type}}Processor};
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::contract::ContractSubject;
use thirdparty_core::{Case, ExternalReference, SyncMetadata, SyncSettings, SyncType};
use time::macros::datetime;

const ORG: u64 = 123456;

/// A case linked to the fixture's item, its project's settings and the site's scope.
fn api() -> InMemoryCaseApi {
    let api = InMemoryCaseApi::new();
    api.insert_case(Case {
        id: "case-1".into(),
        org_id: ORG,
        project_id: "project-1".into(),
        version: 1,
        title: "Printer offline".into(),
        description: String::new(),
        priority: None,
        status: "OPEN".into(),
        assignee_id: None,
        due_date: None,
        created_at: datetime!(2024-01-01 0:00 UTC),
        external_references: vec![ExternalReference::new("{{name}}", "example.com", "1001")],
        source_watermarks: Vec::new(),
        last_writes: Default::default(),
    });
    api.insert_settings(SyncSettings {
        org_id: ORG,
        project_id: "project-1".into(),
        integration: "{{name}}".into(),
        integration_enabled: true,
        project_sync_enabled: true,
        sync_type: SyncType::Bidirectional,
        field_sync: BTreeMap::new(),
        comment_sync_enabled: true,
        work_note_sync_enabled: true,
        value_mappings: BTreeMap::new(),
        custom_fields: BTreeMap::new(),
        start_syncing_from: None,
        conflict_policy: Default::default(),
        field_conflict_policies: Default::default(),
    });
    api.insert_metadata(SyncMetadata {
        org_id: ORG,
        integration: "{{name}}".into(),
        project_id: "project-1".into(),
        scope: BTreeMap::from([("site".into(), BTreeSet::from(["example.com".to_owned()]))]),
        custom_fields: BTreeMap::new(),
        own_user_ids: BTreeSet::new(),
    });
    api
}

fn subject() -> ContractSubject {
    let fixture = |name: &str| {
        std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    ContractSubject {
        decoder: Arc::new({{Type}}Decoder::new()),
        filterer: Arc::new({{Type}}Filterer::new(["our-sync-bot"])),
        processor: Arc::new({{Type}}Processor::new()),
        fixtures: vec![fixture("example.json")],
        api: api(),
        now: datetime!(2024-06-02 0:00 UTC),
    }
}

thirdparty_core::contract_tests!(crate::subject);
"#;

const BIN_TOML: &str = r#"[package]
name = "{{name}}-reader"
description = "The {{name}} flavor of case-third-party-reader."
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true
version.workspace = true

[[bin]]
name = "{{name}}-reader"
path = "src/main.rs"

[dependencies]
integration-{{name}}.workspace = true
reader-runtime.workspace = true
serde.workspace = true

[features]
# TLS on rustls with aws-lc-rs in FIPS mode, checked at start-up (the FIPS image).
fips = ["reader-runtime/fips"]

[lints]
workspace = true
"#;

const BIN_README: &str = r#"# {{name}}-reader

The {{name}} flavor: a thin binary that wires `integration-{{name}}`'s stages into
`reader-runtime` (topic `collaboration_integrations_{{ident}}`, `[integration] own_accounts`).
Everything else (commands, config, metrics) is the runtime's.
"#;

const MAIN_RS: &str = r#"//! The {{name}} reader: consumes `collaboration_integrations_{{ident}}` and applies {{name}}
//! changes to cases.

use std::process::ExitCode;
use std::sync::Arc;

use integration_{{ident}}::{{{Type}}Decoder, {{Type}}Filterer, {{Type}}Processor};
use reader_runtime::{Flavor, Stages};
use serde::Deserialize;

/// The `[integration]` section of the {{name}} reader's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct {{Type}}Settings {
    /// Our own accounts in {{name}} (ids or names, any case): their changes are echoes of our
    /// own writes.
    own_accounts: Vec<String>,
}

struct {{Type}}Flavor;

impl Flavor for {{Type}}Flavor {
    const NAME: &'static str = "{{ident}}";
    const DEFAULT_TOPIC: &'static str = "collaboration_integrations_{{ident}}";
    type Settings = {{Type}}Settings;

    fn stages(settings: &{{Type}}Settings) -> Stages {
        Stages {
            decoder: Arc::new({{Type}}Decoder::new()),
            filterer: Arc::new({{Type}}Filterer::new(settings.own_accounts.iter().cloned())),
            processor: Arc::new({{Type}}Processor::new()),
        }
    }
}

fn main() -> ExitCode {
    reader_runtime::main::<{{Type}}Flavor>()
}
"#;

/// What CI runs: generates an integration into a temporary copy of the workspace (its git
/// files) and runs its tests there, so the scaffold is known to compile and pass the contract
/// suite. The copy is removed afterwards.
pub fn check(root: &Path) -> Result<()> {
    let copy = std::env::temp_dir().join(format!("ctpr-new-integration-{}", std::process::id()));
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .context("running git ls-files")?;
    if !listed.status.success() {
        bail!("git ls-files failed: the check copies the workspace's git files");
    }
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = Path::new(std::str::from_utf8(file)?);
        let to = copy.join(relative);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A listed file deleted in the working tree is skipped.
        if root.join(relative).is_file() {
            std::fs::copy(root.join(relative), &to)
                .with_context(|| format!("copying {}", relative.display()))?;
        }
    }
    let result = (|| {
        run(&copy, "example-tracker")?;
        let status = crate::cargo_command()
            .args([
                "test",
                "-p",
                "integration-example-tracker",
                "-p",
                "example-tracker-reader",
            ])
            .current_dir(&copy)
            .status()
            .context("running the generated integration's tests")?;
        if !status.success() {
            bail!("the generated integration's tests failed ({status})");
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&copy);
    result?;
    println!("new-integration: generated `example-tracker` compiles and passes its tests");
    Ok(())
}
