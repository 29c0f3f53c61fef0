//! An in-memory [`CaseApi`] for unit tests: the same contract as the real service (optimistic
//! locking, watermarks, idempotent comments), call counters, and injectable faults.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::case::{
    Case, CaseUpdate, Comment, CommentOutcome, ExternalReference, NewComment, SyncMetadata,
    SyncMetadataEntry, SyncMetadataPage, SyncSettings, User, UserQuery,
};
use crate::case_api::CaseApi;
use crate::error::CaseApiError;

/// How many times each call was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// `get_case`
    pub get_case: u64,
    /// `find_case_by_external_reference`
    pub find_case: u64,
    /// `update_case`
    pub update_case: u64,
    /// `add_comment`
    pub add_comment: u64,
    /// `list_comments`
    pub list_comments: u64,
    /// `get_project_settings`
    pub get_project_settings: u64,
    /// `list_sync_metadata`
    pub list_sync_metadata: u64,
    /// `resolve_user`
    pub resolve_user: u64,
    /// `list_all_sync_metadata` (pages asked for)
    pub list_all_sync_metadata: u64,
}

impl CallCounts {
    /// Every call but the sync-metadata ones (`list_sync_metadata`, `list_all_sync_metadata`).
    pub fn other_than_metadata(&self) -> u64 {
        self.get_case
            + self.find_case
            + self.update_case
            + self.add_comment
            + self.list_comments
            + self.get_project_settings
            + self.resolve_user
    }
}

/// Entries of a `list_all_sync_metadata` page when the caller asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// The most entries a `list_all_sync_metadata` page holds, whatever the caller asks.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A user and the third-party ids that name them.
#[derive(Debug, Clone)]
struct UserRecord {
    user: User,
    external_ids: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct State {
    cases: BTreeMap<String, Case>,
    comments: Vec<Comment>,
    settings: Vec<SyncSettings>,
    metadata: Vec<SyncMetadata>,
    users: Vec<UserRecord>,
    calls: CallCounts,
    faults: VecDeque<Option<CaseApiError>>,
    conflicts_before_update: u32,
    next_comment: u64,
    list_all_unimplemented: bool,
}

/// A snapshot of everything a reader can change: cases and comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Cases by id.
    pub cases: BTreeMap<String, Case>,
    /// Comments, in creation order.
    pub comments: Vec<Comment>,
}

/// An in-memory case-management system.
#[derive(Debug, Default)]
pub struct InMemoryCaseApi {
    state: Mutex<State>,
}

impl Clone for InMemoryCaseApi {
    fn clone(&self) -> Self {
        Self {
            state: Mutex::new(self.lock().clone()),
        }
    }
}

impl InMemoryCaseApi {
    /// An empty system.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces a case.
    pub fn insert_case(&self, case: Case) -> &Self {
        self.lock().cases.insert(case.id.clone(), case);
        self
    }

    /// Adds project settings.
    pub fn insert_settings(&self, settings: SyncSettings) -> &Self {
        self.lock().settings.push(settings);
        self
    }

    /// Adds a sync scope.
    pub fn insert_metadata(&self, metadata: SyncMetadata) -> &Self {
        self.lock().metadata.push(metadata);
        self
    }

    /// Makes `list_all_sync_metadata` answer [`CaseApiError::Unimplemented`], as a Case API
    /// that predates the RPC does (every other call is unaffected).
    pub fn without_list_all(&self) -> &Self {
        self.lock().list_all_unimplemented = true;
        self
    }

    /// Adds a user known by these third-party ids.
    pub fn insert_user(&self, user: User, external_ids: &[&str]) -> &Self {
        self.lock().users.push(UserRecord {
            user,
            external_ids: external_ids.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// A case by id.
    pub fn case(&self, case_id: &str) -> Option<Case> {
        self.lock().cases.get(case_id).cloned()
    }

    /// Comments of a case.
    pub fn comments(&self, case_id: &str) -> Vec<Comment> {
        self.lock()
            .comments
            .iter()
            .filter(|c| c.case_id == case_id)
            .cloned()
            .collect()
    }

    /// Cases and comments, for before/after comparisons.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            cases: s.cases.clone(),
            comments: s.comments.clone(),
        }
    }

    /// Call counts so far.
    pub fn calls(&self) -> CallCounts {
        self.lock().calls
    }

    /// Makes the next calls (any method) fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = CaseApiError>) {
        self.pass_then_fail(0, errors);
    }

    /// Lets the next `pass` calls through, then fails the following ones with these errors.
    pub fn pass_then_fail(&self, pass: usize, errors: impl IntoIterator<Item = CaseApiError>) {
        let mut s = self.lock();
        s.faults.clear();
        s.faults.extend(std::iter::repeat_n(None, pass));
        s.faults.extend(errors.into_iter().map(Some));
    }

    /// Makes the next `n` updates find the case changed by someone else (its version bumped just
    /// before the write), so they fail with a version mismatch.
    pub fn conflict_next_updates(&self, n: u32) {
        self.lock().conflicts_before_update = n;
    }

    fn begin(
        &self,
        count: impl FnOnce(&mut CallCounts),
    ) -> Result<std::sync::MutexGuard<'_, State>, CaseApiError> {
        let mut s = self.lock();
        count(&mut s.calls);
        match s.faults.pop_front() {
            Some(Some(err)) => Err(err),
            Some(None) | None => Ok(s),
        }
    }
}

#[async_trait]
impl CaseApi for InMemoryCaseApi {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        let s = self.begin(|c| c.get_case += 1)?;
        Ok(s.cases.get(case_id).filter(|c| c.org_id == org_id).cloned())
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        let s = self.begin(|c| c.find_case += 1)?;
        Ok(s.cases
            .values()
            .find(|c| {
                c.org_id == org_id && c.external_references.iter().any(|r| r.same_item(reference))
            })
            .cloned())
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        let mut s = self.begin(|c| c.update_case += 1)?;
        let conflict = s.conflicts_before_update > 0;
        if conflict {
            s.conflicts_before_update -= 1;
        }
        let case = s
            .cases
            .get_mut(&update.case_id)
            .filter(|c| c.org_id == update.org_id)
            .ok_or_else(|| CaseApiError::NotFound(format!("case {}", update.case_id)))?;
        if conflict {
            case.version += 1;
        }
        if case.version != update.expected_version {
            return Err(CaseApiError::VersionMismatch {
                case_id: update.case_id.clone(),
                expected: update.expected_version,
            });
        }
        case.record_update(update, time::OffsetDateTime::now_utc());
        Ok(case.clone())
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        let mut s = self.begin(|c| c.add_comment += 1)?;
        if s.cases
            .get(&comment.case_id)
            .is_none_or(|c| c.org_id != comment.org_id)
        {
            return Err(CaseApiError::NotFound(format!("case {}", comment.case_id)));
        }
        if comment.idempotency_key.is_empty() {
            return Err(CaseApiError::InvalidArgument(
                "empty idempotency key".into(),
            ));
        }
        if let Some(existing) = s
            .comments
            .iter()
            .find(|c| c.case_id == comment.case_id && c.idempotency_key == comment.idempotency_key)
        {
            return Ok(CommentOutcome {
                comment: existing.clone(),
                created: false,
            });
        }
        s.next_comment += 1;
        let created = Comment {
            id: format!("comment-{}", s.next_comment),
            case_id: comment.case_id.clone(),
            idempotency_key: comment.idempotency_key.clone(),
            body: comment.body.clone(),
            author: comment.author.clone(),
            is_work_note: comment.is_work_note,
        };
        s.comments.push(created.clone());
        Ok(CommentOutcome {
            comment: created,
            created: true,
        })
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        let s = self.begin(|c| c.list_comments += 1)?;
        if s.cases.get(case_id).is_none_or(|c| c.org_id != org_id) {
            return Ok(Vec::new());
        }
        Ok(s.comments
            .iter()
            .filter(|c| c.case_id == case_id)
            .cloned()
            .collect())
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        let s = self.begin(|c| c.get_project_settings += 1)?;
        Ok(s.settings
            .iter()
            .find(|x| {
                x.org_id == org_id && x.project_id == project_id && x.integration == integration
            })
            .cloned())
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        let s = self.begin(|c| c.list_sync_metadata += 1)?;
        Ok(s.metadata
            .iter()
            .filter(|m| m.org_id == org_id && m.integration == integration)
            .cloned()
            .collect())
    }

    /// Pages by `(org_id, insertion index)`, the sandbox's `(org_id, seq)`: the token is the
    /// last entry's pair, `{org_id}:{index}`.
    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        let s = self.begin(|c| c.list_all_sync_metadata += 1)?;
        if s.list_all_unimplemented {
            return Err(CaseApiError::Unimplemented(
                "list_all_sync_metadata (in-memory fake set up without it)".into(),
            ));
        }
        if integration.trim().is_empty() {
            return Err(CaseApiError::InvalidArgument(
                "`integration` is required".into(),
            ));
        }
        let after = page_token.as_deref().map(parse_page_token).transpose()?;
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        } as usize;
        let mut rows: Vec<(u64, usize)> = s
            .metadata
            .iter()
            .enumerate()
            .filter(|(_, m)| m.integration == integration)
            .map(|(index, m)| (m.org_id, index))
            .filter(|key| after.is_none_or(|after| *key > after))
            .collect();
        rows.sort_unstable();
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_page_token = match rows.last() {
            Some((org_id, index)) if more => Some(format!("{org_id}:{index}")),
            _ => None,
        };
        let entries = rows
            .into_iter()
            .filter_map(|(org_id, index)| {
                let metadata = s.metadata.get(index)?.clone();
                Some(SyncMetadataEntry { org_id, metadata })
            })
            .collect();
        Ok(SyncMetadataPage {
            entries,
            next_page_token,
        })
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        let s = self.begin(|c| c.resolve_user += 1)?;
        let by_id = query.external_id.as_deref().and_then(|id| {
            s.users
                .iter()
                .find(|u| u.external_ids.iter().any(|e| e == id))
        });
        let by_email = || {
            let email = query.email.as_deref()?;
            s.users.iter().find(|u| {
                u.user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        };
        let by_name = || {
            let name = query.display_name.as_deref()?;
            s.users
                .iter()
                .find(|u| u.user.display_name.eq_ignore_ascii_case(name))
        };
        Ok(by_id
            .or_else(by_email)
            .or_else(by_name)
            .map(|u| u.user.clone()))
    }
}

/// The `(org_id, index)` of a page token the fake issued.
fn parse_page_token(token: &str) -> Result<(u64, usize), CaseApiError> {
    let invalid = || {
        CaseApiError::InvalidArgument(format!(
            "page token `{}` was not issued",
            crate::error::truncate_for_log(token)
        ))
    };
    let (org_id, index) = token.split_once(':').ok_or_else(invalid)?;
    Ok((
        org_id.parse().map_err(|_| invalid())?,
        index.parse().map_err(|_| invalid())?,
    ))
}
