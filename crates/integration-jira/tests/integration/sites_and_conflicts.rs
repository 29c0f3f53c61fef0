//! What real traffic does that a single-site, in-order test never shows: two Jira sites with
//! colliding issue and comment ids in one org, transitions delivered out of order or with one
//! lost, and a person's edit in the case under each conflict policy. See `docs/design.md`,
//! "References are scoped to their site" and "Conflicts and ordering".

use std::sync::Arc;

use serde_json::{Value, json};
use thirdparty_core::testkit::{InMemoryCaseApi, mark_edited_in_case};
use thirdparty_core::{CaseField, ConflictPolicy, Decision, FilterReason};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::*;

const SITE_A: &str = "acme.atlassian.net";
const SITE_B: &str = "acme-emea.atlassian.net";
const CASE_A: &str = "case-site-a-10001";
const CASE_B: &str = "case-site-b-10001";
const T0: OffsetDateTime = datetime!(2024-03-01 10:00 UTC);

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn issue(site: &str, id: &str) -> Value {
    json!({
        "id": id, "key": "PROJ-1", "self": format!("https://{site}/rest/api/2/issue/{id}"),
        "fields": {"project": {"id": "10000", "key": "PROJ"}, "issuetype": {"id": "10001"}}
    })
}

fn status(from: (&str, &str), to: (&str, &str)) -> Value {
    json!({"field": "status", "fieldtype": "jira", "fieldId": "status",
           "from": from.0, "fromString": from.1, "to": to.0, "toString": to.1})
}

fn updated(site: &str, issue_id: &str, at: OffsetDateTime, items: Value) -> Vec<u8> {
    let message = json!({
        "orgId": ORG, "integration": "jira", "jiraAccountId": site,
        "receivedAt": "2024-03-01T10:00:00Z",
        "webhook": {
            "webhookEvent": "jira:issue_updated", "timestamp": ms(at),
            "user": {"accountId": JANE, "displayName": "Jane Doe"},
            "issue": issue(site, issue_id),
            "changelog": {"id": format!("{}", ms(at)), "items": items}
        }
    });
    serde_json::to_vec(&message).unwrap()
}

fn commented(site: &str, issue_id: &str, comment_id: &str, body: &str) -> Vec<u8> {
    let message = json!({
        "orgId": ORG, "integration": "jira", "jiraAccountId": site,
        "webhook": {
            "webhookEvent": "comment_created", "timestamp": ms(T0),
            "comment": {
                "id": comment_id, "body": body,
                "author": {"accountId": JANE, "displayName": "Jane Doe"},
                "created": "2024-03-01T10:00:00.000+0000"
            },
            "issue": issue(site, issue_id)
        }
    });
    serde_json::to_vec(&message).unwrap()
}

/// The seeded world plus a second Cloud site of the same org whose project 10000 syncs into
/// the same case project, and issue 10001 on both sites, each linked to its own case.
fn two_sites() -> World {
    let mut world = World::seeded();
    world.metadata.push(metadata(
        "proj-1",
        &[
            ("account_id", strings([SITE_B])),
            ("project_id", strings(["10000"])),
        ],
        &[],
        strings([CLOUD_SYNC_BOT]),
    ));
    world
        .cases
        .push(case(CASE_A, "proj-1", SITE_A, "10001", "Site A issue"));
    world
        .cases
        .push(case(CASE_B, "proj-1", SITE_B, "10001", "Site B issue"));
    world
}

async fn decide(api: &Arc<InMemoryCaseApi>, message: &[u8]) -> Vec<Decision> {
    handle(&pipeline(api.clone()), message)
        .await
        .into_iter()
        .map(|r| r.decision)
        .collect()
}

#[tokio::test]
async fn two_sites_with_colliding_issue_and_comment_ids_touch_only_their_own_case() {
    let api = Arc::new(two_sites().api());
    let to_in_progress = status(("10000", "To Do"), ("3", "In Progress"));
    assert_eq!(
        decide(&api, &updated(SITE_B, "10001", T0, json!([to_in_progress]))).await,
        [Decision::Applied]
    );
    assert_eq!(api.case(CASE_B).unwrap().status, "IN_PROGRESS");
    assert_eq!(
        api.case(CASE_A).unwrap().status,
        "OPEN",
        "site A's issue 10001 is another item"
    );

    // The same change on site A is not a replay of site B's: it applies to case A.
    let to_in_progress = status(("10000", "To Do"), ("3", "In Progress"));
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", T0, json!([to_in_progress]))).await,
        [Decision::Applied]
    );
    assert_eq!(api.case(CASE_A).unwrap().status, "IN_PROGRESS");

    // Comment 10100 exists on both sites: two comments, one per case.
    for (site, case) in [(SITE_A, CASE_A), (SITE_B, CASE_B)] {
        let message = commented(site, "10001", "10100", &format!("from {site}"));
        assert_eq!(decide(&api, &message).await, [Decision::Applied], "{site}");
        let comments = api.comments(case);
        assert_eq!(comments.len(), 1, "{site}");
        assert_eq!(comments[0].body, format!("from {site}"));
        assert_eq!(
            comments[0].idempotency_key,
            format!("jira:{site}:10001:10100")
        );
    }
    // A replay of either is a duplicate.
    let again = commented(SITE_B, "10001", "10100", "from acme-emea.atlassian.net");
    assert_eq!(
        decide(&api, &again).await,
        [Decision::Filtered(FilterReason::DuplicateEvent)]
    );
    assert_eq!(api.comments(CASE_A).len() + api.comments(CASE_B).len(), 2);

    // Sites are host names: the case of the site name does not matter.
    let shouting = updated(
        "ACME-EMEA.atlassian.net",
        "10001",
        T0 + time::Duration::minutes(1),
        json!([status(("3", "In Progress"), ("10001", "Done"))]),
    );
    assert_eq!(decide(&api, &shouting).await, [Decision::Applied]);
    assert_eq!(api.case(CASE_B).unwrap().status, "CLOSED");
    assert_eq!(api.case(CASE_A).unwrap().status, "IN_PROGRESS");
}

#[tokio::test]
async fn transitions_out_of_order_or_with_one_lost_converge_on_jiras_latest_value() {
    let a_to_b = status(("10000", "To Do"), ("3", "In Progress"));
    let b_to_c = status(("3", "In Progress"), ("10001", "Done"));
    let t1 = T0;
    let t2 = T0 + time::Duration::seconds(5);

    // B -> C delivered before A -> B.
    let api = Arc::new(two_sites().api());
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", t2, json!([b_to_c.clone()]))).await,
        [Decision::Applied],
        "converge: nobody changed the status in the case"
    );
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", t1, json!([a_to_b.clone()]))).await,
        [Decision::Filtered(FilterReason::OutOfOrderEvent)]
    );
    assert_eq!(api.case(CASE_A).unwrap().status, "CLOSED");

    // A -> B lost: B -> C alone converges too; the strict rule would leave it OPEN.
    let api = Arc::new(two_sites().api());
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", t2, json!([b_to_c.clone()]))).await,
        [Decision::Applied]
    );
    assert_eq!(api.case(CASE_A).unwrap().status, "CLOSED");
    let mut strict = two_sites();
    strict.settings_mut("proj-1").conflict_policy = ConflictPolicy::Strict;
    let api = Arc::new(strict.api());
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", t2, json!([b_to_c]))).await,
        [Decision::Filtered(FilterReason::StateConflict)]
    );
    assert_eq!(api.case(CASE_A).unwrap().status, "OPEN");
}

#[tokio::test]
async fn a_transition_back_delivered_before_the_one_it_undoes_still_wins() {
    // To Do -> In Progress at t1, In Progress -> To Do at t2, delivered t2 first: the case is
    // already To Do (`no_change`), but the change's time is recorded, so t1 is out of order.
    let forth = status(("10000", "To Do"), ("3", "In Progress"));
    let back = status(("3", "In Progress"), ("10000", "To Do"));
    let api = Arc::new(two_sites().api());
    let t2 = T0 + time::Duration::seconds(3);
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", t2, json!([back]))).await,
        [Decision::Filtered(FilterReason::NoChange)]
    );
    assert_eq!(
        decide(&api, &updated(SITE_A, "10001", T0, json!([forth]))).await,
        [Decision::Filtered(FilterReason::OutOfOrderEvent)]
    );
    assert_eq!(api.case(CASE_A).unwrap().status, "OPEN");
}

#[tokio::test]
async fn a_persons_edit_in_the_case_is_decided_by_the_fields_policy() {
    let b_to_c = status(("3", "In Progress"), ("10001", "Done"));
    let message = updated(SITE_A, "10001", T0, json!([b_to_c]));
    let cases = [
        (
            ConflictPolicy::Strict,
            Decision::Filtered(FilterReason::StateConflict),
            "IN_REVIEW",
        ),
        (
            ConflictPolicy::Converge,
            Decision::Filtered(FilterReason::StateConflict),
            "IN_REVIEW",
        ),
        (ConflictPolicy::ThirdPartyWins, Decision::Applied, "CLOSED"),
        (
            ConflictPolicy::Manual,
            Decision::Filtered(FilterReason::ManualConflict),
            "IN_REVIEW",
        ),
    ];
    for (policy, expected, status_after) in cases {
        let mut world = two_sites();
        let case = world.case_mut(CASE_A);
        case.status = "IN_REVIEW".into();
        mark_edited_in_case(case, CaseField::Status, T0 - time::Duration::minutes(5));
        // The project's default stays converge; the status field has its own policy.
        world
            .settings_mut("proj-1")
            .field_conflict_policies
            .insert(CaseField::Status, policy);
        let api = Arc::new(world.api());
        assert_eq!(decide(&api, &message).await, [expected], "{policy}");
        let after = api.case(CASE_A).unwrap();
        assert_eq!(after.status, status_after, "{policy}");
        let conflicts: Vec<_> = api
            .comments(CASE_A)
            .into_iter()
            .filter(|c| c.idempotency_key.starts_with("conflict:"))
            .collect();
        if policy == ConflictPolicy::Manual {
            assert_eq!(conflicts.len(), 1);
            assert_eq!(
                conflicts[0].body,
                "Sync conflict on status: jira (acme.atlassian.net) says Done, the case says \
                 IN_REVIEW. Not applied: the project's conflict policy for this field is manual."
            );
        } else {
            assert!(conflicts.is_empty(), "{policy}");
        }
    }
}
