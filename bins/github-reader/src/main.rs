//! The GitHub Issues reader: consumes `collaboration_integrations_github` and applies GitHub
//! issue changes to cases.

use std::process::ExitCode;
use std::sync::Arc;

use integration_github::{DEFAULT_OWN_LOGINS, GitHubDecoder, GitHubFilterer, GitHubProcessor};
use reader_runtime::{Flavor, Stages};
use serde::Deserialize;

/// The `[integration]` section of the GitHub reader's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GitHubSettings {
    /// Our own GitHub accounts (our App's bot login such as `datadog[bot]`, or numeric user
    /// ids), any case: their changes are echoes of our own writes.
    own_accounts: Vec<String>,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        Self {
            own_accounts: DEFAULT_OWN_LOGINS.iter().map(|&s| s.to_owned()).collect(),
        }
    }
}

struct GitHubFlavor;

impl Flavor for GitHubFlavor {
    const NAME: &'static str = "github";
    const DEFAULT_TOPIC: &'static str = "collaboration_integrations_github";
    type Settings = GitHubSettings;

    fn stages(settings: &GitHubSettings) -> Stages {
        Stages {
            decoder: Arc::new(GitHubDecoder::new()),
            filterer: Arc::new(GitHubFilterer::new(settings.own_accounts.iter().cloned())),
            processor: Arc::new(GitHubProcessor::new()),
        }
    }
}

fn main() -> ExitCode {
    reader_runtime::main::<GitHubFlavor>()
}
