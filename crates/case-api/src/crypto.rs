//! The TLS crypto provider behind every connection to the Case API.
//!
//! tonic builds its rustls `ClientConfig` on the process-wide default
//! [`CryptoProvider`](rustls::crypto::CryptoProvider) when one is installed. A build with the
//! `fips` feature installs rustls' FIPS provider (aws-lc-rs on the FIPS-validated AWS-LC module)
//! as that default with [`init`], and checks that it really is in FIPS mode: a FIPS build whose
//! module is not in FIPS mode refuses to start ([`init`] fails) and refuses to configure TLS
//! ([`GrpcCaseApi::connect`](crate::GrpcCaseApi::connect) fails with a TLS config error).
//! A build without the feature uses tonic's own choice (ring) and [`init`] does nothing.

/// Whether this build has the `fips` feature.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// The crypto module state, as `fips-check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoStatus {
    /// Built with the `fips` feature.
    pub fips_build: bool,
    /// The process-wide TLS provider is in FIPS mode (provider and a client config built on it).
    pub fips_mode: bool,
    /// What provides TLS.
    pub provider: &'static str,
}

impl std::fmt::Display for CryptoStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fips_build={} fips_mode={} provider={}",
            self.fips_build, self.fips_mode, self.provider
        )
    }
}

/// A FIPS build whose crypto module is not in FIPS mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FIPS build, but the TLS crypto provider is not in FIPS mode: {0}")]
pub struct FipsError(pub String);

/// Installs the FIPS provider as the process default in a `fips` build (unless one is already
/// installed) and checks that the default is in FIPS mode; does nothing in other builds.
pub fn init() -> Result<CryptoStatus, FipsError> {
    imp::init()
}

/// The current state, without installing anything; an error in a `fips` build not in FIPS mode.
pub fn status() -> Result<CryptoStatus, FipsError> {
    imp::status()
}

#[cfg(not(feature = "fips"))]
mod imp {
    use super::{CryptoStatus, FipsError};

    const STATUS: CryptoStatus = CryptoStatus {
        fips_build: false,
        fips_mode: false,
        provider: "rustls (ring)",
    };

    pub(super) fn init() -> Result<CryptoStatus, FipsError> {
        Ok(STATUS)
    }

    pub(super) fn status() -> Result<CryptoStatus, FipsError> {
        Ok(STATUS)
    }
}

#[cfg(feature = "fips")]
mod imp {
    use std::sync::Arc;

    use rustls::crypto::CryptoProvider;
    use rustls::{ClientConfig, RootCertStore};

    use super::{CryptoStatus, FipsError};

    const PROVIDER: &str = "rustls (aws-lc-rs, FIPS module)";

    pub(super) fn init() -> Result<CryptoStatus, FipsError> {
        if CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: the check below judges the winner.
            let _ = rustls::crypto::default_fips_provider().install_default();
        }
        status()
    }

    pub(super) fn status() -> Result<CryptoStatus, FipsError> {
        let provider = CryptoProvider::get_default()
            .ok_or_else(|| FipsError("no process-wide crypto provider is installed".to_owned()))?;
        check_provider(provider)?;
        Ok(CryptoStatus {
            fips_build: true,
            fips_mode: true,
            provider: PROVIDER,
        })
    }

    /// The provider and a client config built on it, as tonic builds one, are both in FIPS mode.
    pub(super) fn check_provider(provider: &Arc<CryptoProvider>) -> Result<(), FipsError> {
        if !provider.fips() {
            return Err(FipsError(
                "the process-wide provider reports fips() == false".to_owned(),
            ));
        }
        let config = ClientConfig::builder_with_provider(Arc::clone(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| FipsError(format!("cannot build a client config: {e}")))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
        if !config.fips() {
            return Err(FipsError(
                "a client config built on the provider reports fips() == false".to_owned(),
            ));
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_fips_provider_passes_and_ring_is_refused() {
            let fips = Arc::new(rustls::crypto::default_fips_provider());
            assert_eq!(check_provider(&fips), Ok(()));
            let ring = Arc::new(rustls::crypto::ring::default_provider());
            assert!(check_provider(&ring).is_err());
        }

        #[test]
        fn init_installs_the_fips_provider() {
            let status = super::init();
            assert!(matches!(
                status,
                Ok(CryptoStatus {
                    fips_mode: true,
                    ..
                })
            ));
        }
    }
}
