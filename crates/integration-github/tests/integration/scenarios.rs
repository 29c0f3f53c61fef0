//! What the real GitHub fixtures do to a case, and the GitHub-specific decisions.

use std::sync::Arc;

use serde_json::json;
use thirdparty_core::{Decision, FilterReason, MessageOutcome, Payload};

use crate::support::*;

fn decisions(reports: &[thirdparty_core::ChangelogReport]) -> Vec<Decision> {
    reports.iter().map(|r| r.decision.clone()).collect()
}

#[tokio::test]
async fn hello_world_story_lands_on_its_case() {
    let api = Arc::new(api());
    let p = pipeline(api.clone());
    // `bug` is mapped (as `Bug`) to P2: the label sets the priority.
    let labeled = handle(&p, &fixture("issues.labeled")).await;
    assert_eq!(
        labeled[0].changelog.changelog_type.name(),
        "update_priority"
    );
    assert_eq!(decisions(&labeled), [Decision::Applied]);
    assert_eq!(
        api.case(CASE_HELLO_WORLD_1).unwrap().priority.as_deref(),
        Some("P2")
    );

    assert_eq!(
        decisions(&handle(&p, &fixture("issues.assigned")).await),
        [Decision::Applied]
    );
    assert_eq!(
        api.case(CASE_HELLO_WORLD_1).unwrap().assignee_id.as_deref(),
        Some("user-codertocat")
    );

    assert_eq!(
        decisions(&handle(&p, &fixture("issue_comment.created")).await),
        [Decision::Applied]
    );
    let comments = api.comments(CASE_HELLO_WORLD_1);
    assert_eq!(comments.len(), 1);
    assert_eq!(
        comments[0].idempotency_key,
        "github:github.com:444500041:492700400"
    );
    assert_eq!(
        comments[0].body,
        body("issue_comment.created")["comment"]["body"]
    );
    assert_eq!(
        comments[0].author.display_name.as_deref(),
        Some("Codertocat")
    );
    assert_eq!(
        decisions(&handle(&p, &fixture("issue_comment.created")).await),
        [Decision::Filtered(FilterReason::DuplicateEvent)],
        "a redelivery is a duplicate"
    );

    assert_eq!(
        decisions(&handle(&p, &fixture("issues.unassigned")).await),
        [Decision::Applied]
    );
    assert_eq!(api.case(CASE_HELLO_WORLD_1).unwrap().assignee_id, None);
    assert_eq!(
        decisions(&handle(&p, &fixture("issues.unlabeled")).await),
        [Decision::Applied]
    );
    assert_eq!(api.case(CASE_HELLO_WORLD_1).unwrap().priority, None);
}

#[tokio::test]
async fn close_reasons_fall_back_to_closed_and_reopen_opens() {
    let api = Arc::new(api());
    let p = pipeline(api.clone());
    // The fixture closes Hephaestus #20 as completed: mapped to RESOLVED.
    assert_eq!(
        decisions(&handle(&p, &fixture("issues.closed")).await),
        [Decision::Applied]
    );
    assert_eq!(api.case("case-hephaestus-20").unwrap().status, "RESOLVED");
    // Not planned has no entry of its own: `closed`.
    let mut webhook = body("issues.closed");
    webhook["issue"]["state_reason"] = json!("not_planned");
    webhook["issue"]["updated_at"] = json!("2025-11-02T00:00:00Z");
    assert_eq!(
        decisions(&handle(&p, &message("issues", webhook)).await),
        [Decision::Applied]
    );
    assert_eq!(api.case("case-hephaestus-20").unwrap().status, "CLOSED");
    let mut webhook = body("issues.reopened");
    webhook["issue"]["id"] = json!(3578496080_u64);
    webhook["issue"]["updated_at"] = json!("2025-11-03T00:00:00Z");
    assert_eq!(
        decisions(&handle(&p, &message("issues", webhook)).await),
        [Decision::Applied]
    );
    assert_eq!(api.case("case-hephaestus-20").unwrap().status, "OPEN");
}

#[tokio::test]
async fn github_specific_decisions() {
    let api = Arc::new(api());
    let p = pipeline(api.clone());
    // Our App's bot: an echo of our own write.
    let mut by_bot = body("issues.assigned");
    by_bot["sender"]["login"] = json!("datadog[bot]");
    by_bot["sender"]["type"] = json!("Bot");
    by_bot["sender"]["id"] = json!(41898282);
    // A user listed in the host's metadata.
    let mut by_service = body("issues.assigned");
    by_service["sender"]["login"] = json!("SVC-Case-Sync");
    // A label that maps to no priority.
    let mut docs = body("issues.labeled");
    docs["label"]["name"] = json!("documentation");
    // A repository of another host: out of scope.
    let other_host: serde_json::Value = {
        let mut m: serde_json::Value = serde_json::from_slice(&fixture("issues.labeled")).unwrap();
        m["host"] = json!("github.example.com");
        m
    };
    // Unassigning someone the case does not hold.
    let unassign_other = body("issues.unassigned");
    let cases = [
        (
            message("issues", by_bot),
            FilterReason::BreakSynchronizationCycle,
        ),
        (
            message("issues", by_service),
            FilterReason::BreakSynchronizationCycle,
        ),
        (
            message("issues", docs),
            FilterReason::UnsupportedChangelogType,
        ),
        (
            serde_json::to_vec(&other_host).unwrap(),
            FilterReason::NoMatchingMetadata,
        ),
        (message("issues", unassign_other), FilterReason::NoChange),
    ];
    for (bytes, reason) in cases {
        // explain foretells each, and writes nothing.
        let MessageOutcome::Handled(predicted) =
            p.explain(&Payload::new(bytes.clone())).await.unwrap()
        else {
            panic!("not handled")
        };
        assert_eq!(decisions(&predicted), [Decision::Filtered(reason)]);
        assert_eq!(
            decisions(&handle(&p, &bytes).await),
            [Decision::Filtered(reason)]
        );
    }
    // Only `no_change` writes: the field's watermark, with the value the case already holds.
    assert_eq!(api.calls().add_comment, 0);
    assert_eq!(api.calls().update_case, 1);
    let case = api.case(CASE_HELLO_WORLD_1).unwrap();
    assert_eq!((case.assignee_id, case.priority), (None, None));
}

#[tokio::test]
async fn pull_requests_and_other_actions_are_discarded() {
    let p = pipeline(Arc::new(api()));
    for name in [
        "issues.opened",
        "issues.milestoned",
        "issue_comment.edited",
        "issue_comment.created.pull_request",
    ] {
        match p.handle(&Payload::new(fixture(name))).await.unwrap() {
            MessageOutcome::Undecodable(err) => {
                assert_eq!(
                    (err.kind(), err.class()),
                    ("unsupported_event", thirdparty_core::ErrorClass::Discard),
                    "{name}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
