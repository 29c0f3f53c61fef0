//! The runtime every flavor shares: the Kafka consumer (one ordered task per partition, offsets
//! stored after handling, drain on revoke and shutdown), configuration, health and metrics
//! endpoints, logging, retries with backoff, the operator skip list, and the command line.
//!
//! A flavor binary implements [`Flavor`] and calls [`main`].

pub mod case_api_token;
pub mod cli;
pub mod config;
pub mod decisions;
pub mod explain;
pub mod flavor;
pub mod health;
pub mod kafka;
pub mod kafka_range;
pub mod kafka_security;
pub mod key_order;
pub mod lag;
pub mod replay;
pub mod retry;
pub mod statsd;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tracing_export;
pub mod why;

pub use cli::main;
pub use config::Config;
pub use flavor::{Flavor, Stages};
pub use thirdparty_core::FilterReason;
