//! How events find their case: `correlationId` as case id, else `sysId` as external reference.

use std::sync::Arc;

use serde_json::json;
use thirdparty_core::{Decision, FilterReason};

use crate::world::*;

/// Handles a comment event with these identifiers; returns the decision and the case that got
/// the comment.
async fn comment_lands_on(
    sys_id: &str,
    correlation_id: Option<&str>,
) -> (Vec<Decision>, Option<String>) {
    let mut world = World::new();
    // A case of another organization, whose id an event might name.
    let mut foreign = world.case_mut(CASE_A).clone();
    foreign.id = "c0ffee00-0000-4000-8000-00000000f00d".into();
    foreign.org_id = 654321;
    world.cases.push(foreign);
    let api = Arc::new(world.api());
    let pipeline = pipeline(api.clone());
    let mut event = comment_event("where am I?");
    event["sysId"] = json!(sys_id);
    match correlation_id {
        Some(id) => event["data"]["correlationId"] = json!(id),
        None => {
            event["data"]
                .as_object_mut()
                .unwrap()
                .remove("correlationId");
        }
    }
    let got = decisions(&pipeline, &bytes(&event)).await;
    let landed = api.snapshot().comments.first().map(|c| c.case_id.clone());
    (got, landed)
}

#[tokio::test]
async fn correlation_id_names_the_case() {
    assert_eq!(
        comment_lands_on(SYS_A, Some(CASE_A)).await,
        (vec![Decision::Applied], Some(CASE_A.into()))
    );
    // The id wins over a sys_id linked to another case.
    assert_eq!(
        comment_lands_on(SYS_B, Some(CASE_A)).await,
        (vec![Decision::Applied], Some(CASE_A.into()))
    );
}

#[tokio::test]
async fn sys_id_external_reference_is_the_fallback() {
    // No correlationId, or an empty one.
    assert_eq!(
        comment_lands_on(SYS_B, None).await,
        (vec![Decision::Applied], Some(CASE_B.into()))
    );
    assert_eq!(
        comment_lands_on(SYS_B, Some("")).await,
        (vec![Decision::Applied], Some(CASE_B.into()))
    );
    // A correlationId naming no case of ours.
    assert_eq!(
        comment_lands_on(SYS_B, Some("00000000-0000-4000-8000-000000000000")).await,
        (vec![Decision::Applied], Some(CASE_B.into()))
    );
    assert_eq!(
        comment_lands_on(SYS_B, Some("c0ffee00-0000-4000-8000-00000000f00d")).await,
        (vec![Decision::Applied], Some(CASE_B.into()))
    );
}

#[tokio::test]
async fn neither_found_is_no_corresponding_case() {
    // Case A is not linked to its sys_id: without the correlationId it cannot be found.
    assert_eq!(
        comment_lands_on(SYS_A, None).await,
        (
            vec![Decision::Filtered(FilterReason::NoCorrespondingCase)],
            None
        )
    );
    assert_eq!(
        comment_lands_on(SYS_A, Some("c0ffee00-0000-4000-8000-00000000f00d")).await,
        (
            vec![Decision::Filtered(FilterReason::NoCorrespondingCase)],
            None
        )
    );
}
