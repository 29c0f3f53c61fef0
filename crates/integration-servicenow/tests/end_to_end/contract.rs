//! The core contract suite's subject: the ServiceNow stages over every fixture.

use std::sync::Arc;

use integration_servicenow::{ServiceNowDecoder, ServiceNowFilterer, ServiceNowProcessor};
use thirdparty_core::testkit::contract::{ContractSubject, DEFAULT_NOW};

use crate::world::{FIXTURES, World, fixture};

/// The ServiceNow subject of `thirdparty_core::contract_tests!`.
pub fn subject() -> ContractSubject {
    ContractSubject {
        decoder: Arc::new(ServiceNowDecoder::new()),
        filterer: Arc::new(ServiceNowFilterer::default()),
        processor: Arc::new(ServiceNowProcessor::new()),
        fixtures: FIXTURES.iter().map(|name| fixture(name)).collect(),
        api: World::new().api(),
        now: DEFAULT_NOW,
    }
}
