//! What a flavor binary plugs into the runtime.

use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use thirdparty_core::{Decoder, FilterReason, Filterer, Processor};

/// The stages of one integration.
#[derive(Debug, Clone)]
pub struct Stages {
    /// Decodes message values.
    pub decoder: Arc<dyn Decoder>,
    /// Filters changelogs.
    pub filterer: Arc<dyn Filterer>,
    /// Applies changelogs.
    pub processor: Arc<dyn Processor>,
}

/// One integration as a deployable reader ("flavor").
///
/// A flavor binary implements this for a marker type and calls [`crate::main`]; everything
/// else (Kafka, config, health, metrics, CLI, shutdown) is the runtime's.
pub trait Flavor: Send + Sync + 'static {
    /// The flavor's name (the integration's, e.g. `github`): metric names, the root span, logs.
    const NAME: &'static str;
    /// The topic consumed when the config names none.
    const DEFAULT_TOPIC: &'static str;
    /// The flavor's `[integration]` config section.
    type Settings: DeserializeOwned + Default + Debug + Clone + Send + Sync + 'static;
    /// The filter reasons the integration owns besides the core's
    /// ([`thirdparty_core::IntegrationReason`]): `replay --reason` accepts them.
    const REASONS: &'static [FilterReason] = &[];

    /// Builds the stages from the flavor's settings.
    fn stages(settings: &Self::Settings) -> Stages;
}
