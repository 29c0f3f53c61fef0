//! The Jira reader: consumes `collaboration_integrations_jira` and applies Jira changes to cases.

use std::process::ExitCode;
use std::sync::Arc;

use integration_jira::{JiraDecoder, JiraFilterer, JiraProcessor};
use reader_runtime::{Flavor, Stages};
use serde::Deserialize;

/// The `[integration]` section of the Jira reader's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct JiraSettings {
    /// Jira account ids of our own sync users: their changes are echoes of our writes.
    own_account_ids: Vec<String>,
}

struct JiraFlavor;

impl Flavor for JiraFlavor {
    const NAME: &'static str = "jira";
    const DEFAULT_TOPIC: &'static str = "collaboration_integrations_jira";
    type Settings = JiraSettings;
    const REASONS: &'static [reader_runtime::FilterReason] = integration_jira::REASONS;

    fn stages(settings: &JiraSettings) -> Stages {
        Stages {
            decoder: Arc::new(JiraDecoder::new()),
            filterer: Arc::new(JiraFilterer::new(settings.own_account_ids.iter().cloned())),
            processor: Arc::new(JiraProcessor::new()),
        }
    }
}

fn main() -> ExitCode {
    reader_runtime::main::<JiraFlavor>()
}
