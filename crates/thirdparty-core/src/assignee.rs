//! The assignee write an `update_assignee` changelog asks for, decided the same way for every
//! integration: the new third-party user resolved to a case user (`assignee_resolution_failed`
//! when none matches), an absent new user unassigning, the previous user resolved too for the
//! field's conflict policy (a `from` the case does not hold is inconsistent), and the same user
//! `no_change`. It needs user look-ups, so processors call it (in a dry run through
//! [`crate::ReadOnly`], which forwards reads).

use crate::case::{Case, FieldChange, SyncSettings, UserQuery};
use crate::case_api::CaseApi;
use crate::changelog::CaseField;
use crate::changelog::{Changelog, present};
use crate::error::CaseApiError;
use crate::filter_reason::FilterReason;

/// The case user behind a third-party user (id and display name) of the changelog's
/// integration, if any.
pub async fn resolve_user_id(
    changelog: &Changelog,
    id: Option<&str>,
    display_name: Option<&str>,
    api: &dyn CaseApi,
) -> Result<Option<String>, CaseApiError> {
    let query = UserQuery {
        org_id: changelog.org_id,
        integration: changelog.integration.clone(),
        external_id: id.map(str::to_owned),
        display_name: display_name.map(str::to_owned),
        email: None,
    };
    Ok(api.resolve_user(&query).await?.map(|user| user.id))
}

/// What an assignee changelog asks of the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeChange {
    /// This write.
    Write(FieldChange),
    /// No write, for this reason.
    Drop(FilterReason),
}

/// The assignee write, or why none: resolution failure, conflict, no change. `Err` only for the
/// look-ups' API errors.
pub async fn assignee_change(
    changelog: &Changelog,
    case: &Case,
    settings: &SyncSettings,
    api: &dyn CaseApi,
) -> Result<AssigneeChange, CaseApiError> {
    let to_id = present(changelog.to_id.as_ref());
    let to_name = present(changelog.to_string.as_ref());
    let target = if to_id.is_none() && to_name.is_none() {
        None
    } else {
        match resolve_user_id(changelog, to_id, to_name, api).await? {
            Some(user) => Some(user),
            None => return Ok(AssigneeChange::Drop(FilterReason::AssigneeResolutionFailed)),
        }
    };
    let from_id = present(changelog.from_id.as_ref());
    let from_name = present(changelog.from_string.as_ref());
    let previous = if from_id.is_none() && from_name.is_none() {
        None
    } else {
        resolve_user_id(changelog, from_id, from_name, api).await?
    };
    let consistent = previous == case.assignee_id;
    let policy = settings.conflict_policy(CaseField::Assignee);
    if let Some(reason) = case.conflict_reason(CaseField::Assignee, policy, Some(consistent)) {
        return Ok(AssigneeChange::Drop(reason));
    }
    if target == case.assignee_id {
        return Ok(AssigneeChange::Drop(FilterReason::NoChange));
    }
    Ok(AssigneeChange::Write(FieldChange::Assignee(target)))
}
