//! The `CaseApi` contract suite, run for the in-memory fake every integration tests against.

use std::sync::Arc;

use thirdparty_core::CaseApi;
use thirdparty_core::testkit::InMemoryCaseApi;
use thirdparty_core::testkit::case_api_contract::World;

async fn seeded(world: World) -> Arc<dyn CaseApi> {
    let api = InMemoryCaseApi::new();
    for case in world.cases {
        api.insert_case(case);
    }
    for settings in world.settings {
        api.insert_settings(settings);
    }
    for metadata in world.metadata {
        api.insert_metadata(metadata);
    }
    for (_, user, ids) in world.users {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        api.insert_user(user, &ids);
    }
    Arc::new(api)
}

thirdparty_core::case_api_contract_tests!(crate::seeded);
