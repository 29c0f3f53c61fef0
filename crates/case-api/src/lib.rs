//! The Case Management gRPC API, as the third-party readers use it.
//!
//! - [`pb`]: code generated from `proto/` (package `case.v1`, and `sandbox.v1` for the sandbox
//!   server's admin service), clients and servers, built with protox (no system `protoc`);
//! - [`convert`]: conversions between the generated types and `thirdparty_core`'s model
//!   (typed [`WireError`]s on bad wire data, never a panic);
//! - [`GrpcCaseApi`]: the tonic client implementing [`thirdparty_core::CaseApi`] (per-call
//!   deadlines, optional TLS, bearer token, [`classify_status`]);
//! - [`crypto`]: the TLS crypto provider, and with the `fips` feature the FIPS-mode provider
//!   and its check.

pub mod client;
pub mod convert;
pub mod crypto;

/// Code generated from `proto/`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod pb {
    /// Package `case.v1`.
    pub mod case {
        /// The Case Management API, version 1.
        pub mod v1 {
            tonic::include_proto!("case.v1");
        }
    }
    /// Package `sandbox.v1`.
    pub mod sandbox {
        /// The sandbox server's admin API, version 1.
        pub mod v1 {
            tonic::include_proto!("sandbox.v1");
        }
    }
}

pub use client::{
    BearerAuth, ConfigError, ConnectError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, GrpcCaseApi,
    GrpcCaseApiConfig, TlsConfig, classify_status,
};
pub use convert::WireError;
