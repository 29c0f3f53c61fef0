//! The ServiceNow reader: consumes `collaboration_integrations_servicenow` and applies ServiceNow
//! changes to cases.

use std::process::ExitCode;
use std::sync::Arc;

use integration_servicenow::{ServiceNowDecoder, ServiceNowFilterer, ServiceNowProcessor};
use reader_runtime::{Flavor, Stages};
use serde::Deserialize;

/// The `[integration]` section of the ServiceNow reader's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServiceNowSettings {
    /// `updatedBy` names of our own sync users (any case): their changes are echoes.
    own_user_names: Vec<String>,
}

impl Default for ServiceNowSettings {
    fn default() -> Self {
        Self {
            own_user_names: vec!["datadog".into()],
        }
    }
}

struct ServiceNowFlavor;

impl Flavor for ServiceNowFlavor {
    const NAME: &'static str = "servicenow";
    const DEFAULT_TOPIC: &'static str = "collaboration_integrations_servicenow";
    type Settings = ServiceNowSettings;

    fn stages(settings: &ServiceNowSettings) -> Stages {
        Stages {
            decoder: Arc::new(ServiceNowDecoder::new()),
            filterer: Arc::new(ServiceNowFilterer::new(
                settings.own_user_names.iter().cloned(),
            )),
            processor: Arc::new(ServiceNowProcessor::new()),
        }
    }
}

fn main() -> ExitCode {
    reader_runtime::main::<ServiceNowFlavor>()
}
