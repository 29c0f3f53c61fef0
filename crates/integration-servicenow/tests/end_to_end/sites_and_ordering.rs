//! Two ServiceNow instances of one org sharing a sysId, and state changes within one second
//! (`updatedAt` has second precision). See `docs/design.md`, "References are scoped to their
//! site" and "Conflicts and ordering".

use std::sync::Arc;

use serde_json::{Value, json};
use thirdparty_core::testkit::mark_edited_in_case;
use thirdparty_core::{CaseField, ConflictPolicy, Decision, ExternalReference, FilterReason};

use crate::world::*;

const OTHER_INSTANCE: &str = "company-emea";
const SHARED_SYS: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const CASE_HERE: &str = "case-company";
const CASE_THERE: &str = "case-company-emea";

fn event(instance: &str, sys_id: &str, at: &str, data: Value) -> Vec<u8> {
    bytes(&json!({
        "type": "datadog_x_incident", "orgId": ORG, "sysId": sys_id, "instanceName": instance,
        "updatedAt": at, "updatedBy": "john.doe", "data": data
    }))
}

/// Both instances configured, each with its incident `SHARED_SYS` linked to its own case.
fn two_instances() -> World {
    let mut world = World::new();
    world.metadata[0]
        .scope
        .get_mut(integration_servicenow::METADATA_INSTANCE_NAME)
        .unwrap()
        .insert(OTHER_INSTANCE.into());
    for (id, instance) in [(CASE_HERE, INSTANCE), (CASE_THERE, OTHER_INSTANCE)] {
        let mut c = case(id, "OPEN", &[]);
        c.external_references = vec![ExternalReference::new("servicenow", instance, SHARED_SYS)];
        world.cases.push(c);
    }
    world
}

#[tokio::test]
async fn two_instances_sharing_a_sys_id_touch_only_their_own_case() {
    let api = Arc::new(two_instances().api());
    let p = pipeline(api.clone());
    let at = "2024-03-01 10:00:00";
    let state = event(OTHER_INSTANCE, SHARED_SYS, at, json!({"state": "2"}));
    assert_eq!(decisions(&p, &state).await, [Decision::Applied]);
    assert_eq!(api.case(CASE_THERE).unwrap().status, "IN_PROGRESS");
    assert_eq!(api.case(CASE_HERE).unwrap().status, "OPEN");
    // The same change on the other instance is another item's change, not a replay.
    let state = event(INSTANCE, SHARED_SYS, at, json!({"state": "2"}));
    assert_eq!(decisions(&p, &state).await, [Decision::Applied]);
    assert_eq!(api.case(CASE_HERE).unwrap().status, "IN_PROGRESS");

    // The same comment text in the same second on both: one comment per case.
    for (instance, case) in [(INSTANCE, CASE_HERE), (OTHER_INSTANCE, CASE_THERE)] {
        let comment = event(
            instance,
            SHARED_SYS,
            at,
            json!({"comment": "Rebooted the VPN."}),
        );
        assert_eq!(
            decisions(&p, &comment).await,
            [Decision::Applied],
            "{instance}"
        );
        let comments = api.comments(case);
        assert_eq!(comments.len(), 1);
        assert!(
            comments[0]
                .idempotency_key
                .starts_with(&format!("servicenow:{instance}:{SHARED_SYS}:")),
            "{}",
            comments[0].idempotency_key
        );
    }
}

#[tokio::test]
async fn state_changes_within_one_second_apply_in_delivery_order() {
    let api = Arc::new(two_instances().api());
    let p = pipeline(api.clone());
    let at = "2024-03-01 10:00:07";
    let new = event(INSTANCE, SHARED_SYS, at, json!({"state": "1"}));
    let in_progress = event(INSTANCE, SHARED_SYS, at, json!({"state": "2"}));
    let resolved = event(INSTANCE, SHARED_SYS, at, json!({"state": "6"}));
    // The case is OPEN: New is a no-op, then In Progress, then Resolved, all in one second.
    assert_eq!(
        decisions(&p, &new).await,
        [Decision::Filtered(FilterReason::NoChange)]
    );
    assert_eq!(decisions(&p, &in_progress).await, [Decision::Applied]);
    assert_eq!(decisions(&p, &resolved).await, [Decision::Applied]);
    assert_eq!(api.case(CASE_HERE).unwrap().status, "CLOSED");
    // Redelivered (at-least-once): each is recognized as the change already applied.
    assert_eq!(
        decisions(&p, &in_progress).await,
        [Decision::Filtered(FilterReason::DuplicateEvent)]
    );
    assert_eq!(
        decisions(&p, &resolved).await,
        [Decision::Filtered(FilterReason::DuplicateEvent)]
    );
    assert_eq!(api.case(CASE_HERE).unwrap().status, "CLOSED");
    // An earlier second is out of order.
    let late = event(
        INSTANCE,
        SHARED_SYS,
        "2024-03-01 10:00:06",
        json!({"state": "2"}),
    );
    assert_eq!(
        decisions(&p, &late).await,
        [Decision::Filtered(FilterReason::OutOfOrderEvent)]
    );
}

#[tokio::test]
async fn a_status_set_in_the_case_is_decided_by_the_policy() {
    let change = event(
        INSTANCE,
        SHARED_SYS,
        "2024-03-01 10:00:00",
        json!({"state": "6"}),
    );
    for (policy, expected, status) in [
        (ConflictPolicy::Strict, Decision::Applied, "CLOSED"),
        (
            ConflictPolicy::Converge,
            Decision::Filtered(FilterReason::StateConflict),
            "IN_PROGRESS",
        ),
        (ConflictPolicy::ThirdPartyWins, Decision::Applied, "CLOSED"),
        (
            ConflictPolicy::Manual,
            Decision::Filtered(FilterReason::ManualConflict),
            "IN_PROGRESS",
        ),
    ] {
        let mut world = two_instances();
        world.settings_mut().conflict_policy = policy;
        let case = world.case_mut(CASE_HERE);
        case.status = "IN_PROGRESS".into();
        mark_edited_in_case(
            case,
            CaseField::Status,
            time::macros::datetime!(2024-03-01 9:00 UTC),
        );
        let api = Arc::new(world.api());
        let p = pipeline(api.clone());
        assert_eq!(decisions(&p, &change).await, [expected], "{policy}");
        assert_eq!(api.case(CASE_HERE).unwrap().status, status, "{policy}");
        let entries = api
            .comments(CASE_HERE)
            .iter()
            .filter(|c| c.idempotency_key.starts_with("conflict:"))
            .count();
        assert_eq!(
            entries,
            usize::from(policy == ConflictPolicy::Manual),
            "{policy}"
        );
    }
}
