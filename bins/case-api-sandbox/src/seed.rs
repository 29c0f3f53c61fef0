//! The seed document: what `--seed` files and the `Seed` admin RPC load.
//!
//! A JSON object with five optional lists, reusing `thirdparty_core`'s serde forms:
//! - `orgs`: `[{"id": 123456, "name": "Acme"}]`;
//! - `project_settings`: [`SyncSettings`] (one per org, project and integration);
//! - `sync_metadata`: [`SyncMetadata`] (replaces every scope of its org and integration);
//! - `users`: [`SeedUser`] (a case user with its third-party ids per integration);
//! - `cases`: [`Case`] (`due_date` as `"YYYY-MM-DD"`).
//!
//! Every `org_id` must name an org of the document or one already stored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thirdparty_core::{Case, SyncMetadata, SyncSettings};

/// A seed document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Organizations.
    #[serde(default)]
    pub orgs: Vec<SeedOrg>,
    /// Per-project sync settings.
    #[serde(default)]
    pub project_settings: Vec<SyncSettings>,
    /// Per-org sync scopes.
    #[serde(default)]
    pub sync_metadata: Vec<SyncMetadata>,
    /// Users.
    #[serde(default)]
    pub users: Vec<SeedUser>,
    /// Cases.
    #[serde(default)]
    pub cases: Vec<Case>,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOrg {
    /// The org id.
    pub id: u64,
    /// A human name.
    pub name: String,
}

/// A case user and the ids that name them in third-party systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Owning organization.
    pub org_id: u64,
    /// User id (UUID).
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Integration -> the user's ids there (Jira accountIds and usernames, ServiceNow user
    /// names).
    #[serde(default)]
    pub external_ids: BTreeMap<String, Vec<String>>,
}

/// A seed that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file cannot be read.
    #[error("cannot read seed file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The document does not parse.
    #[error("invalid seed document: {0}")]
    Parse(#[from] serde_json::Error),
}

impl Seed {
    /// Parses a seed document.
    pub fn from_json(json: &str) -> Result<Self, SeedError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &Path) -> Result<Self, SeedError> {
        let json = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_seed_parses() {
        let seed = Seed::from_json(crate::DEMO_SEED_JSON).unwrap();
        assert_eq!(seed.orgs.len(), 2);
        assert!(seed.cases.len() >= 6);
        assert!(seed.cases.iter().any(|c| c.due_date.is_some()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Seed::from_json(r#"{"orgs": [], "bogus": 1}"#).is_err());
    }
}
