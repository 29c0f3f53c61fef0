//! The SQLite store: cases (optimistic locking, per-field watermarks), comments (idempotent by
//! key), settings, sync metadata and users. Synchronous; [`SharedStore`] runs it off the async
//! workers.
//!
//! # Concurrency
//!
//! One connection on one thread of its own ([`SharedStore`]) serves every call: operations queue
//! up and run one after the other, each a short transaction of tens of microseconds (prepared
//! statements are cached; a file database uses WAL with `synchronous = NORMAL`, so a commit does
//! not wait for an fsync). What makes a call slow in the sandbox is the injected latency
//! ([`crate::faults::Faults::check`]), an async sleep taken before the call is queued and
//! without any lock held: concurrent calls wait out their latency together, then pass through
//! the store in a few milliseconds at most (64 concurrent `UpdateCase` with 5 ms latency take
//! about 5 ms plus their processing, not 320 ms).
//!
//! This is simpler than a pool of connections and loses nothing that matters here: SQLite runs
//! one writer at a time anyway, reads take microseconds, and an in-memory database shared by
//! several connections (`cache=shared`) would bring table locks (`SQLITE_LOCKED`, which
//! `busy_timeout` does not wait out). Correctness does not depend on the single connection:
//! every write is one `BEGIN IMMEDIATE` transaction (an `UpdateCase` checks the expected version
//! and writes in it, and its `UPDATE` names the version it read), comments are unique by
//! `(case_id, idempotency_key)`, and a file shared with another process waits for its lock
//! (`busy_timeout`).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use thirdparty_core::{
    Case, CaseField, CaseUpdate, Comment, CommentOutcome, ExternalReference, NewComment,
    SyncMetadata, SyncMetadataEntry, SyncSettings, User, UserQuery,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

use case_api::convert::{date_from_pb, date_to_pb};

use crate::seed::Seed;

/// Bumped whenever the schema changes incompatibly (2: site-scoped references, per-item
/// watermarks and last writers).
const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for another process's lock on a file database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (every statement of the call handlers fits).
const STATEMENT_CACHE: usize = 64;

/// What the model keeps of a case's sync bookkeeping, stored as one JSON column.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct SyncState {
    #[serde(default)]
    source_watermarks: Vec<thirdparty_core::SourceWatermark>,
    #[serde(default)]
    last_writes: std::collections::BTreeMap<CaseField, thirdparty_core::FieldWrite>,
}

fn sync_state_json(case: &Case) -> Result<String, StoreError> {
    serde_json::to_string(&SyncState {
        source_watermarks: case.source_watermarks.clone(),
        last_writes: case.last_writes.clone(),
    })
    .map_err(corrupt_json)
}

const SCHEMA: &str = "
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS orgs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL,
    project_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    priority TEXT,
    status TEXT NOT NULL,
    assignee_id TEXT,
    due_date TEXT,
    created_at TEXT NOT NULL,
    -- JSON: the source watermarks and last writes of the case, as the model serializes them.
    sync_state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS external_references (
    org_id INTEGER NOT NULL,
    integration TEXT NOT NULL,
    site TEXT NOT NULL,
    reference TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, integration, site, reference)
);
CREATE INDEX IF NOT EXISTS external_references_case ON external_references(case_id);
CREATE TABLE IF NOT EXISTS comments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    body TEXT NOT NULL,
    author_id TEXT,
    author_display_name TEXT,
    is_work_note INTEGER NOT NULL,
    integration TEXT NOT NULL,
    source_event_time TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (case_id, idempotency_key)
);
CREATE TABLE IF NOT EXISTS project_settings (
    org_id INTEGER NOT NULL,
    project_id TEXT NOT NULL,
    integration TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (org_id, project_id, integration)
);
CREATE TABLE IF NOT EXISTS sync_metadata (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL,
    integration TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sync_metadata_org ON sync_metadata(org_id, integration);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT
);
CREATE TABLE IF NOT EXISTS user_external_ids (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    integration TEXT NOT NULL,
    external_id TEXT NOT NULL,
    PRIMARY KEY (user_id, integration, external_id)
);
CREATE INDEX IF NOT EXISTS user_external_ids_lookup ON user_external_ids(integration, external_id);
";

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write named a case that does not exist (gRPC NOT_FOUND).
    #[error("{0} not found")]
    NotFound(String),
    /// A write named a version the case is no longer at (gRPC ABORTED).
    #[error("case {case_id} is at version {actual}, not {expected}")]
    VersionMismatch {
        /// The case.
        case_id: String,
        /// The version the write named.
        expected: u64,
        /// The case's version.
        actual: u64,
    },
    /// The input is unusable (gRPC INVALID_ARGUMENT).
    #[error("{0}")]
    InvalidArgument(String),
    /// Stored data does not decode (gRPC INTERNAL).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// SQLite failed (gRPC INTERNAL).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store thread could not start or stopped, or the operation panicked (gRPC
    /// INTERNAL).
    #[error("store task failed: {0}")]
    Task(String),
}

impl From<StoreError> for tonic::Status {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound(_) => tonic::Status::not_found(err.to_string()),
            StoreError::VersionMismatch { .. } => tonic::Status::aborted(err.to_string()),
            StoreError::InvalidArgument(_) => tonic::Status::invalid_argument(err.to_string()),
            StoreError::Corrupt(_) | StoreError::Sqlite(_) | StoreError::Task(_) => {
                tracing::error!(error = %err, "store failure");
                tonic::Status::internal(err.to_string())
            }
        }
    }
}

/// How many entities a seed loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedCounts {
    /// Organizations.
    pub orgs: u32,
    /// Cases.
    pub cases: u32,
    /// Project settings.
    pub project_settings: u32,
    /// Sync metadata scopes.
    pub sync_metadata: u32,
    /// Users.
    pub users: u32,
}

/// One page of [`Store::list_all_metadata`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPage {
    /// The scopes, by `(org_id, seq)`.
    pub entries: Vec<SyncMetadataEntry>,
    /// `(org_id, seq)` of the last entry when another page follows.
    pub next: Option<(u64, i64)>,
}

/// Where the store keeps its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DbLocation {
    /// A private in-memory database (lost on exit).
    #[default]
    InMemory,
    /// A SQLite file (created if absent).
    File(PathBuf),
}

/// The SQLite store (one connection; callers serialize access).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn rfc3339(t: OffsetDateTime) -> Result<String, StoreError> {
    t.format(&Rfc3339)
        .map_err(|e| StoreError::InvalidArgument(format!("timestamp not representable: {e}")))
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Corrupt(format!("`{s}`: {e}")))
}

fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument(format!("{what} {v} out of range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} negative")))
}

fn corrupt_json(err: serde_json::Error) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

impl Store {
    /// Opens (and migrates) the database.
    pub fn open(location: &DbLocation) -> Result<Self, StoreError> {
        let conn = match location {
            DbLocation::InMemory => Connection::open_in_memory()?,
            DbLocation::File(path) => Connection::open(path)?,
        };
        if let DbLocation::File(_) = location {
            // Another process (a second sandbox, the sqlite3 shell) may hold the file's lock for
            // a moment: wait for it instead of failing with SQLITE_BUSY.
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // With WAL, NORMAL syncs at checkpoints instead of at every commit: a commit costs
            // microseconds instead of an fsync, and survives a crash of the process (not of the
            // machine), enough for a sandbox.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        if version != SCHEMA_VERSION && (version != 0 || tables != 0) {
            return Err(StoreError::InvalidArgument(format!(
                "the database has schema version {version}, this sandbox writes version \
                 {SCHEMA_VERSION}: start from a new file"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self { conn })
    }

    /// A write transaction that takes the database's write lock when it begins (BEGIN
    /// IMMEDIATE), so its reads and writes see no other writer in between, and a busy file
    /// waits at the start rather than failing when a read upgrades to a write.
    fn write_transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// The case with this id in the organization.
    pub fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, StoreError> {
        read_case(&self.conn, org_id, case_id)
    }

    /// The case linked to a third-party item (integration, site, id; integration and site
    /// compared ignoring ASCII case).
    pub fn find_case(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, StoreError> {
        let case_id: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT case_id FROM external_references
                 WHERE org_id = ?1 AND integration = ?2 AND site = ?3 AND reference = ?4",
            )?
            .query_row(
                params![
                    to_i64(org_id, "org_id")?,
                    reference.integration.to_ascii_lowercase(),
                    reference.site.to_ascii_lowercase(),
                    reference.reference
                ],
                |r| r.get(0),
            )
            .optional()?;
        match case_id {
            Some(id) => read_case(&self.conn, org_id, &id),
            None => Ok(None),
        }
    }

    /// The optimistic-locked write of one field, in one transaction: version check, field,
    /// writer of record, the item's watermark (never moved backwards), version bump.
    pub fn update_case(&mut self, update: &CaseUpdate) -> Result<Case, StoreError> {
        let tx = self.write_transaction()?;
        let mut case = read_case(&tx, update.org_id, &update.case_id)?
            .ok_or_else(|| StoreError::NotFound(format!("case {}", update.case_id)))?;
        if case.version != update.expected_version {
            return Err(StoreError::VersionMismatch {
                case_id: update.case_id.clone(),
                expected: update.expected_version,
                actual: case.version,
            });
        }
        let before = case.version;
        case.record_update(update, OffsetDateTime::now_utc());
        let changed = tx
            .prepare_cached(
                "UPDATE cases SET title = ?1, description = ?2, priority = ?3, status = ?4,
                        assignee_id = ?5, due_date = ?6, version = ?7, sync_state = ?8
                 WHERE id = ?9 AND version = ?10",
            )?
            .execute(params![
                case.title,
                case.description,
                case.priority,
                case.status,
                case.assignee_id,
                case.due_date.map(date_to_pb),
                to_i64(case.version, "version")?,
                sync_state_json(&case)?,
                case.id,
                to_i64(before, "version")?,
            ])?;
        if changed != 1 {
            return Err(StoreError::Task(format!(
                "case {} changed inside its transaction",
                update.case_id
            )));
        }
        tx.commit()?;
        Ok(case)
    }

    /// Adds a comment, idempotently by (case, key).
    pub fn create_comment(&mut self, comment: &NewComment) -> Result<CommentOutcome, StoreError> {
        let tx = self.write_transaction()?;
        let exists: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM cases WHERE id = ?1 AND org_id = ?2")?
            .query_row(
                params![comment.case_id, to_i64(comment.org_id, "org_id")?],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("case {}", comment.case_id)));
        }
        let inserted = tx
            .prepare_cached(
                "INSERT INTO comments (case_id, idempotency_key, body, author_id,
                                       author_display_name, is_work_note, integration,
                                       source_event_time, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (case_id, idempotency_key) DO NOTHING",
            )?
            .execute(params![
                comment.case_id,
                comment.idempotency_key,
                comment.body,
                comment.author.id,
                comment.author.display_name,
                comment.is_work_note,
                comment.integration,
                rfc3339(comment.source_event_time)?,
                rfc3339(OffsetDateTime::now_utc())?,
            ])?;
        let stored = tx
            .prepare_cached(&format!(
                "{COMMENT_COLUMNS} WHERE case_id = ?1 AND idempotency_key = ?2"
            ))?
            .query_row(
                params![comment.case_id, comment.idempotency_key],
                comment_row,
            )?;
        tx.commit()?;
        Ok(CommentOutcome {
            comment: stored,
            created: inserted == 1,
        })
    }

    /// The comments of a case in the organization, oldest first.
    pub fn list_comments(&self, org_id: u64, case_id: &str) -> Result<Vec<Comment>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{COMMENT_COLUMNS} WHERE case_id = ?1
               AND EXISTS (SELECT 1 FROM cases WHERE id = ?1 AND org_id = ?2)
             ORDER BY seq"
        ))?;
        let rows = stmt.query_map(params![case_id, to_i64(org_id, "org_id")?], comment_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A project's sync settings for an integration.
    pub fn get_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, StoreError> {
        let json: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT settings FROM project_settings
                 WHERE org_id = ?1 AND project_id = ?2 AND integration = ?3",
            )?
            .query_row(
                params![to_i64(org_id, "org_id")?, project_id, integration],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(corrupt_json))
            .transpose()
    }

    /// Every sync scope of an organization for an integration.
    pub fn list_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT metadata FROM sync_metadata WHERE org_id = ?1 AND integration = ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![to_i64(org_id, "org_id")?, integration], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|json| serde_json::from_str(&json?).map_err(corrupt_json))
            .collect()
    }

    /// One page of every organization's sync scopes for an integration, ordered by
    /// `(org_id, seq)` (an organization's scopes in [`Store::list_metadata`]'s order), after
    /// `after` (the last `(org_id, seq)` of the previous page), at most `limit`: the entries
    /// and, when more follow, the `(org_id, seq)` of the last one.
    pub fn list_all_metadata(
        &self,
        integration: &str,
        after: Option<(u64, i64)>,
        limit: u32,
    ) -> Result<MetadataPage, StoreError> {
        let (after_org, after_seq) = match after {
            Some((org_id, seq)) => (to_i64(org_id, "page token org_id")?, seq),
            None => (i64::MIN, i64::MIN),
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT org_id, seq, metadata FROM sync_metadata
             WHERE integration = ?1 AND (org_id, seq) > (?2, ?3)
             ORDER BY org_id, seq LIMIT ?4",
        )?;
        // One row past the page says whether another page follows.
        let rows = stmt.query_map(
            params![integration, after_org, after_seq, i64::from(limit) + 1],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut entries = Vec::new();
        let mut last = None;
        let mut more = false;
        for row in rows {
            let (org_id, seq, json) = row?;
            if entries.len() == limit as usize {
                more = true;
                break;
            }
            let org_id = to_u64(org_id, "org_id")?;
            let metadata: SyncMetadata = serde_json::from_str(&json).map_err(corrupt_json)?;
            entries.push(SyncMetadataEntry { org_id, metadata });
            last = Some((org_id, seq));
        }
        Ok(MetadataPage {
            entries,
            next: last.filter(|_| more),
        })
    }

    /// The user behind a third-party user: by external id (for the query's integration), then
    /// e-mail, then display name (case-insensitive; an ambiguous display name matches none).
    pub fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, StoreError> {
        let org = to_i64(query.org_id, "org_id")?;
        let present = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        if let Some(external_id) = present(&query.external_id) {
            let user = self
                .conn
                .prepare_cached(
                    "SELECT u.id, u.display_name, u.email FROM users u
                     JOIN user_external_ids x ON x.user_id = u.id
                     WHERE u.org_id = ?1 AND x.integration = ?2 AND x.external_id = ?3
                     ORDER BY u.id LIMIT 1",
                )?
                .query_row(params![org, query.integration, external_id], user_row)
                .optional()?;
            if user.is_some() {
                return Ok(user);
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, display_name, email FROM users WHERE org_id = ?1 ORDER BY id",
        )?;
        let users: Vec<User> = stmt
            .query_map(params![org], user_row)?
            .collect::<Result<_, _>>()?;
        if let Some(email) = present(&query.email) {
            let email = email.trim().to_lowercase();
            if let Some(u) = users.iter().find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.trim().to_lowercase() == email)
            }) {
                return Ok(Some(u.clone()));
            }
        }
        if let Some(name) = present(&query.display_name) {
            let name = name.trim().to_lowercase();
            let mut matches = users
                .iter()
                .filter(|u| u.display_name.trim().to_lowercase() == name);
            if let (Some(u), None) = (matches.next(), matches.next()) {
                return Ok(Some(u.clone()));
            }
        }
        Ok(None)
    }

    /// Loads a seed document in one transaction (all or nothing), upserting by key.
    pub fn load_seed(&mut self, seed: &Seed) -> Result<SeedCounts, StoreError> {
        let tx = self.write_transaction()?;
        for org in &seed.orgs {
            tx.execute(
                "INSERT INTO orgs (id, name) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                params![to_i64(org.id, "org id")?, org.name],
            )?;
        }
        let known_orgs: BTreeSet<u64> = {
            let mut stmt = tx.prepare("SELECT id FROM orgs")?;
            let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
            ids.map(|id| to_u64(id?, "org id"))
                .collect::<Result<_, _>>()?
        };
        let check_org = |org_id: u64, what: &str| {
            if known_orgs.contains(&org_id) {
                Ok(())
            } else {
                Err(StoreError::InvalidArgument(format!(
                    "{what} names unknown org {org_id}"
                )))
            }
        };
        for s in &seed.project_settings {
            check_org(s.org_id, &format!("settings of project {}", s.project_id))?;
            let json = serde_json::to_string(s).map_err(corrupt_json)?;
            tx.execute(
                "INSERT INTO project_settings (org_id, project_id, integration, settings)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (org_id, project_id, integration) DO UPDATE SET settings = excluded.settings",
                params![to_i64(s.org_id, "org_id")?, s.project_id, s.integration, json],
            )?;
        }
        let replaced: BTreeSet<(u64, &str)> = seed
            .sync_metadata
            .iter()
            .map(|m| (m.org_id, m.integration.as_str()))
            .collect();
        for (org_id, integration) in replaced {
            tx.execute(
                "DELETE FROM sync_metadata WHERE org_id = ?1 AND integration = ?2",
                params![to_i64(org_id, "org_id")?, integration],
            )?;
        }
        for m in &seed.sync_metadata {
            check_org(
                m.org_id,
                &format!("sync metadata of project {}", m.project_id),
            )?;
            let json = serde_json::to_string(m).map_err(corrupt_json)?;
            tx.execute(
                "INSERT INTO sync_metadata (org_id, integration, metadata) VALUES (?1, ?2, ?3)",
                params![to_i64(m.org_id, "org_id")?, m.integration, json],
            )?;
        }
        for u in &seed.users {
            check_org(u.org_id, &format!("user {}", u.id))?;
            tx.execute(
                "INSERT INTO users (id, org_id, display_name, email) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id,
                    display_name = excluded.display_name, email = excluded.email",
                params![u.id, to_i64(u.org_id, "org_id")?, u.display_name, u.email],
            )?;
            tx.execute(
                "DELETE FROM user_external_ids WHERE user_id = ?1",
                params![u.id],
            )?;
            for (integration, ids) in &u.external_ids {
                for id in ids {
                    tx.execute(
                        "INSERT OR IGNORE INTO user_external_ids (user_id, integration, external_id)
                         VALUES (?1, ?2, ?3)",
                        params![u.id, integration, id],
                    )?;
                }
            }
        }
        for c in &seed.cases {
            check_org(c.org_id, &format!("case {}", c.id))?;
            insert_case(&tx, c)?;
        }
        tx.commit()?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(SeedCounts {
            orgs: count(seed.orgs.len()),
            cases: count(seed.cases.len()),
            project_settings: count(seed.project_settings.len()),
            sync_metadata: count(seed.sync_metadata.len()),
            users: count(seed.users.len()),
        })
    }
}

fn insert_case(tx: &Transaction<'_>, c: &Case) -> Result<(), StoreError> {
    if c.id.is_empty() {
        return Err(StoreError::InvalidArgument("a case has an empty id".into()));
    }
    tx.execute("DELETE FROM cases WHERE id = ?1", params![c.id])?;
    tx.execute(
        "INSERT INTO cases (id, org_id, project_id, version, title, description, priority, status,
                            assignee_id, due_date, created_at, sync_state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            c.id,
            to_i64(c.org_id, "org_id")?,
            c.project_id,
            to_i64(c.version, "version")?,
            c.title,
            c.description,
            c.priority,
            c.status,
            c.assignee_id,
            c.due_date.map(date_to_pb),
            rfc3339(c.created_at)?,
            sync_state_json(c)?,
        ],
    )?;
    for r in &c.external_references {
        tx.execute(
            "INSERT INTO external_references (org_id, integration, site, reference, case_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                to_i64(c.org_id, "org_id")?,
                r.integration.to_ascii_lowercase(),
                r.site.to_ascii_lowercase(),
                r.reference,
                c.id
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::InvalidArgument(format!(
                    "{} reference {} of site `{}` is linked to two cases",
                    r.integration, r.reference, r.site
                ))
            }
            e => e.into(),
        })?;
    }
    Ok(())
}

const COMMENT_COLUMNS: &str = "SELECT seq, case_id, idempotency_key, body, author_id,
    author_display_name, is_work_note FROM comments";

fn comment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Comment> {
    Ok(Comment {
        id: format!("cmt-{:08}", r.get::<_, i64>(0)?),
        case_id: r.get(1)?,
        idempotency_key: r.get(2)?,
        body: r.get(3)?,
        author: thirdparty_core::Author {
            id: r.get(4)?,
            display_name: r.get(5)?,
        },
        is_work_note: r.get(6)?,
    })
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        display_name: r.get(1)?,
        email: r.get(2)?,
    })
}

fn read_case(conn: &Connection, org_id: u64, case_id: &str) -> Result<Option<Case>, StoreError> {
    type Row = (
        String,
        i64,
        String,
        i64,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT id, org_id, project_id, version, title, description, priority, status,
                    assignee_id, due_date, created_at, sync_state
             FROM cases WHERE id = ?1 AND org_id = ?2",
        )?
        .query_row(params![case_id, to_i64(org_id, "org_id")?], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
            ))
        })
        .optional()?;
    let Some((
        id,
        org,
        project_id,
        version,
        title,
        description,
        priority,
        status,
        assignee_id,
        due_date,
        created_at,
        sync_state,
    )) = row
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT integration, site, reference FROM external_references WHERE case_id = ?1
         ORDER BY integration, site, reference",
    )?;
    let external_references = stmt
        .query_map(params![id], |r| {
            Ok(ExternalReference {
                integration: r.get(0)?,
                site: r.get(1)?,
                reference: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let sync_state: SyncState = serde_json::from_str(&sync_state).map_err(corrupt_json)?;
    Ok(Some(Case {
        id,
        org_id: to_u64(org, "org_id")?,
        project_id,
        version: to_u64(version, "version")?,
        title,
        description,
        priority,
        status,
        assignee_id,
        due_date: due_date
            .as_deref()
            .map(|d| date_from_pb(d, "due_date"))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: parse_rfc3339(&created_at)?,
        external_references,
        source_watermarks: sync_state.source_watermarks,
        last_writes: sync_state.last_writes,
    }))
}

/// An operation queued for the store thread.
type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// The store on a thread of its own, fed by a queue: every operation runs there, one at a time,
/// so SQLite never blocks an async worker and the async side holds no lock while it waits for
/// its turn. Operations run back to back in arrival order (no thread hand-off between them);
/// each takes tens of microseconds, so even 64 concurrent calls wait at most a few
/// milliseconds in the queue. Cheap to clone; the thread ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct SharedStore {
    jobs: mpsc::Sender<Job>,
}

impl SharedStore {
    /// Opens the store on a new store thread.
    pub async fn open(location: DbLocation) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, open_result) = oneshot::channel();
        std::thread::Builder::new()
            .name("sandbox-store".into())
            .spawn(move || match Store::open(&location) {
                Ok(store) => {
                    if opened.send(Ok(())).is_ok() {
                        serve_jobs(store, &queue);
                    }
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the store thread: {e}")))?;
        open_result
            .await
            .map_err(|_| StoreError::Task("the store thread stopped while opening".into()))??;
        Ok(Self { jobs })
    }

    /// Runs `f` with exclusive access to the store, on the store thread, and waits for its
    /// result without blocking the async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            // The caller may have gone (a cancelled call): the write stands all the same.
            let _ = reply.send(f(store));
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Task("the store thread stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Task("the store operation panicked".into()))?
    }
}

/// Runs the queued operations until every [`SharedStore`] is dropped. A panicking operation
/// fails its own call only (its transaction rolls back when dropped).
fn serve_jobs(mut store: Store, queue: &mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut store))).is_err() {
            tracing::error!("store operation panicked");
        }
    }
}

/// Opens a store at a path (a convenience for the CLI and tests).
pub fn location(path: Option<&Path>) -> DbLocation {
    path.map_or(DbLocation::InMemory, |p| DbLocation::File(p.to_path_buf()))
}
