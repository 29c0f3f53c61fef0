//! How the reader authenticates to Kafka and protects the traffic: the `[kafka.security]`
//! section, its checks, the librdkafka keys it sets (after the pass-through, which may not set
//! any of them), the `OAUTHBEARER` token read from a file, and, in a `fips` build, the check
//! that TLS to Kafka runs on OpenSSL's FIPS provider.
//!
//! Secrets are never held in the configuration itself: it names files. A password or token is
//! read when a client is built and lives only in librdkafka's own (redacted) configuration and
//! in [`Secret`], whose `Debug` and `Display` print nothing of it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use serde::Deserialize;
use thiserror::Error;

use crate::config::ConfigError;

/// How often at most the `OAUTHBEARER` token file is re-read: librdkafka asks for a new token
/// at 80 % of the lifetime the reader reports, and the reader reports at most this much.
pub const OAUTH_TOKEN_REREAD: Duration = Duration::from_secs(60);

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no authentication (the default; for loopback and private test clusters).
    #[default]
    #[serde(alias = "PLAINTEXT")]
    Plaintext,
    /// TLS, optionally mutual (a client certificate); no SASL.
    #[serde(alias = "SSL")]
    Ssl,
    /// SASL without TLS: credentials and bodies travel in clear.
    #[serde(alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS: what managed clusters (MSK, Confluent Cloud, Aiven, ...) expect.
    #[serde(alias = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether the traffic is TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// librdkafka's built-in SASL mechanisms (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaslMechanism {
    /// `PLAIN`: username and password (send it over TLS only).
    #[serde(alias = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`: username and password, never sent as such.
    #[serde(rename = "scram-sha-256", alias = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`: username and password, never sent as such.
    #[serde(rename = "scram-sha-512", alias = "SCRAM-SHA-512")]
    ScramSha512,
    /// `OAUTHBEARER`: a bearer token read from `token_file` (re-read when it changes).
    #[serde(alias = "OAUTHBEARER")]
    Oauthbearer,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::Oauthbearer => "OAUTHBEARER",
        }
    }
}

/// `[kafka.security]`: TLS and SASL towards the brokers. Every secret is a file (mounted from a
/// Kubernetes secret), never a value in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSecurityConfig {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: SecurityProtocol,
    /// PEM file of the CA certificates that sign the brokers' certificates (TLS only); unset:
    /// the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `key_file`; TLS only).
    pub certificate_file: Option<PathBuf>,
    /// PEM private key of `certificate_file`.
    pub key_file: Option<PathBuf>,
    /// File holding the passphrase of an encrypted `key_file`.
    pub key_password_file: Option<PathBuf>,
    /// Check that a broker's certificate names the host the reader connects to (default on; off
    /// only for brokers whose certificates carry no usable name, and the reader warns).
    pub endpoint_identification: bool,
    /// SASL mechanism (SASL protocols only): `plain`, `scram-sha-256`, `scram-sha-512` or
    /// `oauthbearer`.
    pub mechanism: Option<SaslMechanism>,
    /// SASL username (`plain`, `scram-*`); for `oauthbearer`, the principal name (default: the
    /// token's `sub` claim).
    pub username: Option<String>,
    /// File holding the SASL password (`plain`, `scram-*`); read when the client starts.
    pub password_file: Option<PathBuf>,
    /// File holding the `oauthbearer` token (a JWT or an opaque token); re-read at least every
    /// minute, so a rotated file is picked up without a restart.
    pub token_file: Option<PathBuf>,
}

impl Default for KafkaSecurityConfig {
    fn default() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            ca_file: None,
            certificate_file: None,
            key_file: None,
            key_password_file: None,
            endpoint_identification: true,
            mechanism: None,
            username: None,
            password_file: None,
            token_file: None,
        }
    }
}

/// Whether a librdkafka key belongs to `[kafka.security]`: the pass-through (`kafka.properties`)
/// may not set it, so it can never weaken what the section sets (or what it leaves off).
pub fn is_security_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key == "security.protocol"
        || key.starts_with("ssl.")
        || key.starts_with("ssl_")
        || key.starts_with("sasl.")
        || key.starts_with("enable.ssl.")
        || key.starts_with("enable.sasl.")
        || key.starts_with("https.")
}

/// A password or token: its `Debug` and `Display` print only that it is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for librdkafka.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A security setting that cannot be turned into a client.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// A secret file cannot be read (the error names the file, never its content).
    #[error("cannot read `{field}` file {path}: {source}")]
    Read {
        /// The field, as a dotted path.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A secret file is empty.
    #[error("`{field}` file {path} is empty")]
    Empty {
        /// The field, as a dotted path.
        field: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The `OAUTHBEARER` token cannot be used (expired, or no principal).
    #[error("kafka.security.token_file {path}: {reason}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why (never the token).
        reason: String,
    },
}

/// Reads a one-line secret file: surrounding whitespace (a trailing newline) is not part of it.
fn read_secret(field: &'static str, path: &Path) -> Result<Secret, SecurityError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecurityError::Read {
        field,
        path: path.to_owned(),
        source,
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(SecurityError::Empty {
            field,
            path: path.to_owned(),
        });
    }
    Ok(Secret(value.to_owned()))
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: format!("kafka.security.{field}"),
        reason: reason.into(),
    }
}

/// Checks that a file exists and can be read, without keeping its content.
fn readable(field: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|err| invalid(field, format!("cannot read {}: {err}", path.display())))
}

impl KafkaSecurityConfig {
    /// Checks that the combination makes sense and that every named file can be read.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let tls = self.protocol.uses_tls();
        let sasl = self.protocol.uses_sasl();
        let protocol = self.protocol.as_librdkafka();
        for (field, set) in [
            ("ca_file", self.ca_file.is_some()),
            ("certificate_file", self.certificate_file.is_some()),
            ("key_file", self.key_file.is_some()),
            ("key_password_file", self.key_password_file.is_some()),
        ] {
            if set && !tls {
                return Err(invalid(
                    field,
                    format!("needs protocol `ssl` or `sasl_ssl`, not `{protocol}`"),
                ));
            }
        }
        if !self.endpoint_identification && !tls {
            return Err(invalid(
                "endpoint_identification",
                format!("only applies to TLS (protocol `ssl` or `sasl_ssl`, not `{protocol}`)"),
            ));
        }
        if self.certificate_file.is_some() != self.key_file.is_some() {
            return Err(invalid(
                "certificate_file",
                "mutual TLS needs both certificate_file and key_file",
            ));
        }
        if self.key_password_file.is_some() && self.key_file.is_none() {
            return Err(invalid("key_password_file", "needs key_file"));
        }
        for (field, set) in [
            ("mechanism", self.mechanism.is_some()),
            ("username", self.username.is_some()),
            ("password_file", self.password_file.is_some()),
            ("token_file", self.token_file.is_some()),
        ] {
            if set && !sasl {
                return Err(invalid(
                    field,
                    format!("needs protocol `sasl_ssl` or `sasl_plaintext`, not `{protocol}`"),
                ));
            }
        }
        if sasl {
            match self.mechanism {
                None => {
                    return Err(invalid(
                        "mechanism",
                        format!(
                            "protocol `{protocol}` needs a mechanism: plain, scram-sha-256, \
                             scram-sha-512 or oauthbearer"
                        ),
                    ));
                }
                Some(SaslMechanism::Oauthbearer) => {
                    if self.token_file.is_none() {
                        return Err(invalid("token_file", "mechanism oauthbearer needs it"));
                    }
                    if self.password_file.is_some() {
                        return Err(invalid(
                            "password_file",
                            "mechanism oauthbearer uses token_file, not a password",
                        ));
                    }
                }
                Some(mechanism) => {
                    if self.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                        return Err(invalid(
                            "username",
                            format!("mechanism {} needs it", mechanism.as_librdkafka()),
                        ));
                    }
                    if self.password_file.is_none() {
                        return Err(invalid(
                            "password_file",
                            format!("mechanism {} needs it", mechanism.as_librdkafka()),
                        ));
                    }
                    if self.token_file.is_some() {
                        return Err(invalid(
                            "token_file",
                            "only mechanism oauthbearer uses a token",
                        ));
                    }
                }
            }
        }
        for (field, path) in [
            ("ca_file", &self.ca_file),
            ("certificate_file", &self.certificate_file),
            ("key_file", &self.key_file),
            ("key_password_file", &self.key_password_file),
            ("password_file", &self.password_file),
            ("token_file", &self.token_file),
        ] {
            if let Some(path) = path {
                readable(field, path)?;
            }
        }
        Ok(())
    }

    /// Sets the librdkafka keys of this section on `config`, reading the secret files now. Call
    /// it after the pass-through properties: what it sets wins.
    pub fn apply(&self, config: &mut ClientConfig) -> Result<(), SecurityError> {
        config.set("security.protocol", self.protocol.as_librdkafka());
        if self.protocol.uses_tls() {
            config.set(
                "ssl.endpoint.identification.algorithm",
                if self.endpoint_identification {
                    "https"
                } else {
                    "none"
                },
            );
            config.set("enable.ssl.certificate.verification", "true");
            if let Some(ca) = &self.ca_file {
                config.set("ssl.ca.location", ca.display().to_string());
            }
            if let (Some(cert), Some(key)) = (&self.certificate_file, &self.key_file) {
                config.set("ssl.certificate.location", cert.display().to_string());
                config.set("ssl.key.location", key.display().to_string());
            }
            if let Some(path) = &self.key_password_file {
                let password = read_secret("kafka.security.key_password_file", path)?;
                config.set("ssl.key.password", password.expose());
            }
        }
        if let (true, Some(mechanism)) = (self.protocol.uses_sasl(), self.mechanism) {
            config.set("sasl.mechanism", mechanism.as_librdkafka());
            if let Some(username) = &self.username
                && mechanism != SaslMechanism::Oauthbearer
            {
                config.set("sasl.username", username.trim());
            }
            if let Some(path) = &self.password_file {
                let password = read_secret("kafka.security.password_file", path)?;
                config.set("sasl.password", password.expose());
            }
            if mechanism == SaslMechanism::Oauthbearer {
                // The token comes from the client context's refresh callback, never from
                // librdkafka's unsecured-JWT builder.
                config.set("enable.sasl.oauthbearer.unsecure.jwt", "false");
            }
        }
        Ok(())
    }

    /// A client of the `[kafka]` brokers with this section's keys (what every client of the
    /// reader starts from: the consumer, the decisions producer, `why`).
    pub fn client_config(&self, brokers: &str) -> Result<ClientConfig, SecurityError> {
        let mut config = ClientConfig::new();
        self.apply(&mut config)?;
        config.set("bootstrap.servers", brokers);
        Ok(config)
    }

    /// What a start-up log line may say of the section (no secret, no file content).
    pub fn describe(&self) -> String {
        let mut out = format!("protocol={}", self.protocol.as_librdkafka());
        if self.protocol.uses_tls() {
            out.push_str(&format!(
                " ca={} mutual_tls={} endpoint_identification={}",
                if self.ca_file.is_some() {
                    "file"
                } else {
                    "system"
                },
                self.certificate_file.is_some(),
                self.endpoint_identification
            ));
        }
        if let Some(mechanism) = self.mechanism {
            out.push_str(&format!(" sasl_mechanism={}", mechanism.as_librdkafka()));
        }
        out
    }

    /// The `OAUTHBEARER` token source, when the section uses it.
    pub fn oauth_token_source(&self) -> Option<OAuthTokenFile> {
        match (self.protocol.uses_sasl(), self.mechanism, &self.token_file) {
            (true, Some(SaslMechanism::Oauthbearer), Some(path)) => Some(OAuthTokenFile {
                path: path.clone(),
                principal: self.username.clone(),
            }),
            _ => None,
        }
    }
}

/// Where the `OAUTHBEARER` token comes from: a file (a mounted, rotated secret), re-read each
/// time librdkafka asks for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokenFile {
    path: PathBuf,
    principal: Option<String>,
}

impl OAuthTokenFile {
    /// Reads the token now. Its lifetime is the JWT's `exp` claim, at most
    /// [`OAUTH_TOKEN_REREAD`] from now, so librdkafka asks again (and the file is re-read) well
    /// before the token expires. The principal is the configured username, else the JWT's `sub`.
    pub fn token(&self, now: SystemTime) -> Result<OAuthToken, SecurityError> {
        let token = read_secret("kafka.security.token_file", &self.path)?;
        let claims = jwt_claims(token.expose());
        let now_ms = i64::try_from(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let reread = i64::try_from(OAUTH_TOKEN_REREAD.as_millis()).unwrap_or(i64::MAX);
        let mut lifetime_ms = now_ms.saturating_add(reread);
        if let Some(exp) = claims.as_ref().and_then(|c| c.exp) {
            let exp_ms = exp.saturating_mul(1000);
            if exp_ms <= now_ms {
                return Err(SecurityError::Token {
                    path: self.path.clone(),
                    reason: format!("the token expired at {exp} (Unix seconds)"),
                });
            }
            lifetime_ms = lifetime_ms.min(exp_ms);
        }
        let principal = self
            .principal
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .or_else(|| claims.and_then(|c| c.sub))
            .ok_or_else(|| SecurityError::Token {
                path: self.path.clone(),
                reason: "no principal: set kafka.security.username, or use a JWT with a `sub` \
                         claim"
                    .into(),
            })?;
        Ok(OAuthToken {
            token: token.0,
            principal_name: principal,
            lifetime_ms,
        })
    }
}

/// The claims of a JWT the reader reads; `None` for a token that is not a JWT.
#[derive(Debug, Default, Deserialize)]
struct JwtClaims {
    exp: Option<i64>,
    sub: Option<String>,
}

fn jwt_claims(token: &str) -> Option<JwtClaims> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The OpenSSL behind librdkafka's TLS, as `fips-check` reports it and as the start-up check of
/// a `fips` build needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTlsStatus {
    /// OpenSSL's version text.
    pub openssl: String,
    /// The FIPS provider is loaded in OpenSSL's default library context.
    pub fips_provider: bool,
    /// Algorithms fetched with the default properties come from the FIPS provider only (a
    /// non-approved digest, MD5, cannot be fetched).
    pub fips_default_properties: bool,
}

impl std::fmt::Display for KafkaTlsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kafka_tls={} fips_provider={} fips_default_properties={}",
            self.openssl, self.fips_provider, self.fips_default_properties
        )
    }
}

/// Kafka TLS in a `fips` build without OpenSSL's FIPS provider active.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "kafka.security.protocol `{protocol}` uses TLS, and in a FIPS build Kafka TLS must run on \
     OpenSSL's FIPS provider, but {reason} ({status})"
)]
pub struct KafkaFipsError {
    /// The configured protocol.
    pub protocol: &'static str,
    /// What is missing.
    pub reason: String,
    /// What was found.
    pub status: KafkaTlsStatus,
}

/// Reads the state of the OpenSSL librdkafka uses (only a `fips` build links the probe; others
/// report `None`).
pub fn kafka_tls_status() -> Option<KafkaTlsStatus> {
    imp::status()
}

/// The start-up check of a `fips` build: when the Kafka protocol uses TLS, OpenSSL's FIPS
/// provider must be loaded and selected by the default properties. Every other build, and
/// plaintext Kafka, passes.
pub fn check_fips(security: &KafkaSecurityConfig) -> Result<(), KafkaFipsError> {
    if !cfg!(feature = "fips") || !security.protocol.uses_tls() {
        return Ok(());
    }
    let Some(status) = imp::status() else {
        return Ok(());
    };
    let reason = if !status.fips_provider {
        "the FIPS provider is not available (no fips module, or openssl.cnf does not activate it)"
    } else if !status.fips_default_properties {
        "the default properties do not select it (`default_properties = fips=yes` missing in \
         openssl.cnf): non-approved algorithms are available to librdkafka"
    } else {
        return Ok(());
    };
    Err(KafkaFipsError {
        protocol: security.protocol.as_librdkafka(),
        reason: reason.to_owned(),
        status,
    })
}

#[cfg(not(feature = "fips"))]
mod imp {
    pub(super) fn status() -> Option<super::KafkaTlsStatus> {
        None
    }
}

#[cfg(feature = "fips")]
mod imp {
    use openssl::md::Md;

    pub(super) fn status() -> Option<super::KafkaTlsStatus> {
        // Loads openssl.cnf (`OPENSSL_CONF`) into the default library context, as librdkafka's
        // own initialisation does.
        openssl::init();
        // Fetching never loads a provider: SHA-256 from the provider named "fips" is found only
        // when openssl.cnf has activated it. (Loading "fips" here, as `OSSL_PROVIDER_try_load`
        // would, succeeds whenever openssl.cnf merely declares the module, even when it does not
        // activate it, and so would report a provider librdkafka does not get.)
        let fips_provider = Md::fetch(None, "SHA2-256", Some("provider=fips")).is_ok();
        // With `fips=yes` in the default properties (or no provider but the FIPS one offering
        // digests), a non-approved digest, MD5, cannot be fetched.
        let fips_default_properties = Md::fetch(None, "MD5", None).is_err();
        Some(super::KafkaTlsStatus {
            openssl: openssl::version::version().to_owned(),
            fips_provider,
            fips_default_properties,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kafka-security-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn file(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn scram(dir: &Path) -> KafkaSecurityConfig {
        KafkaSecurityConfig {
            protocol: SecurityProtocol::SaslSsl,
            ca_file: Some(file(dir, "ca.pem", "-----BEGIN CERTIFICATE-----\n")),
            mechanism: Some(SaslMechanism::ScramSha512),
            username: Some("reader".into()),
            password_file: Some(file(dir, "password", "hunter2-kafka-secret\n")),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_is_plaintext_and_sets_only_the_protocol() {
        let security = KafkaSecurityConfig::default();
        security.validate().unwrap();
        let mut config = ClientConfig::new();
        security.apply(&mut config).unwrap();
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
        assert_eq!(config.get("sasl.mechanism"), None);
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), None);
    }

    #[test]
    fn sasl_ssl_with_scram_sets_every_key_and_reads_the_password_file() {
        let dir = dir();
        let security = scram(&dir);
        security.validate().unwrap();
        let mut config = ClientConfig::new();
        security.apply(&mut config).unwrap();
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("reader"));
        assert_eq!(config.get("sasl.password"), Some("hunter2-kafka-secret"));
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        assert_eq!(
            config.get("enable.ssl.certificate.verification"),
            Some("true")
        );
        assert!(config.get("ssl.ca.location").unwrap().ends_with("ca.pem"));
        assert!(security.describe().contains("sasl_mechanism=SCRAM-SHA-512"));
        assert!(!format!("{security:?} {}", security.describe()).contains("hunter2"));
    }

    #[test]
    fn mutual_tls_sets_the_client_certificate_and_key() {
        let dir = dir();
        let security = KafkaSecurityConfig {
            protocol: SecurityProtocol::Ssl,
            certificate_file: Some(file(&dir, "client.pem", "cert")),
            key_file: Some(file(&dir, "client.key", "key")),
            key_password_file: Some(file(&dir, "key.pass", "pass-phrase\n")),
            ..Default::default()
        };
        security.validate().unwrap();
        let mut config = ClientConfig::new();
        security.apply(&mut config).unwrap();
        assert!(
            config
                .get("ssl.certificate.location")
                .unwrap()
                .ends_with("client.pem")
        );
        assert!(
            config
                .get("ssl.key.location")
                .unwrap()
                .ends_with("client.key")
        );
        assert_eq!(config.get("ssl.key.password"), Some("pass-phrase"));
        assert_eq!(config.get("ssl.ca.location"), None);
    }

    #[test]
    fn combinations_that_make_no_sense_name_the_field() {
        let dir = dir();
        let cases: Vec<(KafkaSecurityConfig, &str)> = vec![
            (
                KafkaSecurityConfig {
                    ca_file: Some(file(&dir, "ca", "x")),
                    ..Default::default()
                },
                "kafka.security.ca_file",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::SaslPlaintext,
                    ca_file: Some(file(&dir, "ca", "x")),
                    mechanism: Some(SaslMechanism::Plain),
                    ..Default::default()
                },
                "kafka.security.ca_file",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::Ssl,
                    certificate_file: Some(file(&dir, "c", "x")),
                    ..Default::default()
                },
                "kafka.security.certificate_file",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::SaslSsl,
                    ..Default::default()
                },
                "kafka.security.mechanism",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::SaslSsl,
                    mechanism: Some(SaslMechanism::ScramSha256),
                    password_file: Some(file(&dir, "p", "x")),
                    ..Default::default()
                },
                "kafka.security.username",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::SaslSsl,
                    mechanism: Some(SaslMechanism::Plain),
                    username: Some("u".into()),
                    ..Default::default()
                },
                "kafka.security.password_file",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::SaslSsl,
                    mechanism: Some(SaslMechanism::Oauthbearer),
                    ..Default::default()
                },
                "kafka.security.token_file",
            ),
            (
                KafkaSecurityConfig {
                    mechanism: Some(SaslMechanism::Plain),
                    ..Default::default()
                },
                "kafka.security.mechanism",
            ),
            (
                KafkaSecurityConfig {
                    endpoint_identification: false,
                    ..Default::default()
                },
                "kafka.security.endpoint_identification",
            ),
            (
                KafkaSecurityConfig {
                    protocol: SecurityProtocol::Ssl,
                    ca_file: Some(dir.join("missing-ca.pem")),
                    ..Default::default()
                },
                "kafka.security.ca_file",
            ),
            (
                KafkaSecurityConfig {
                    password_file: Some(dir.join("nope")),
                    ..scram(&dir)
                },
                "kafka.security.password_file",
            ),
        ];
        for (security, field) in cases {
            let err = security.validate().expect_err(field).to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn the_pass_through_may_set_no_security_key() {
        for key in [
            "security.protocol",
            "ssl.ca.location",
            "ssl.endpoint.identification.algorithm",
            "enable.ssl.certificate.verification",
            "sasl.mechanism",
            "sasl.password",
            "enable.sasl.oauthbearer.unsecure.jwt",
            "SSL.Cipher.Suites",
        ] {
            assert!(is_security_key(key), "{key}");
        }
        for key in ["fetch.wait.max.ms", "session.timeout.ms", "client.id"] {
            assert!(!is_security_key(key), "{key}");
        }
    }

    #[test]
    fn secrets_print_as_redacted_and_errors_name_files_not_contents() {
        let secret = Secret("hunter2".into());
        assert_eq!(
            format!("{secret:?} {secret}"),
            "Secret([redacted]) [redacted]"
        );
        let dir = dir();
        let err = read_secret("kafka.security.password_file", &file(&dir, "empty", "\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    fn jwt(claims: &serde_json::Value) -> String {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            enc.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            enc.encode(claims.to_string())
        )
    }

    /// `OAuthToken` has no `Debug` (it holds the token), so no `unwrap_err`.
    fn token_error(result: Result<OAuthToken, SecurityError>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn the_oauth_token_is_reread_from_its_file_with_the_jwt_claims() {
        let dir = dir();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let path = file(
            &dir,
            "token",
            &jwt(&serde_json::json!({"sub": "svc-reader", "exp": 1_800_000_030})),
        );
        let source = OAuthTokenFile {
            path: path.clone(),
            principal: None,
        };
        let token = source.token(now).unwrap();
        assert_eq!(token.principal_name, "svc-reader");
        assert_eq!(token.lifetime_ms, 1_800_000_030_000, "exp within a minute");

        // Rotated: the next call reads the new file; a far exp is capped at a minute.
        std::fs::write(
            &path,
            jwt(&serde_json::json!({"sub": "svc-reader", "exp": 1_900_000_000})),
        )
        .unwrap();
        let token2 = source.token(now).unwrap();
        assert_ne!(token.token, token2.token);
        assert_eq!(token2.lifetime_ms, 1_800_000_060_000);

        // An opaque token needs a configured principal; an expired JWT is refused.
        std::fs::write(&path, "opaque-token\n").unwrap();
        assert!(token_error(source.token(now)).contains("no principal"));
        let named = OAuthTokenFile {
            path: path.clone(),
            principal: Some("reader".into()),
        };
        assert_eq!(named.token(now).unwrap().token, "opaque-token");
        std::fs::write(&path, jwt(&serde_json::json!({"sub": "x", "exp": 1}))).unwrap();
        let err = token_error(source.token(now));
        assert!(err.contains("expired") && !err.contains("eyJ"), "{err}");
    }

    #[test]
    fn protocol_and_mechanism_accept_kafkas_upper_case_names() {
        #[derive(Deserialize)]
        struct Doc {
            security: KafkaSecurityConfig,
        }
        let doc: Doc =
            toml::from_str("[security]\nprotocol = \"SASL_SSL\"\nmechanism = \"SCRAM-SHA-256\"\n")
                .unwrap();
        assert_eq!(doc.security.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(doc.security.mechanism, Some(SaslMechanism::ScramSha256));
        for (text, mechanism) in [
            ("oauthbearer", SaslMechanism::Oauthbearer),
            ("plain", SaslMechanism::Plain),
            ("scram-sha-256", SaslMechanism::ScramSha256),
            ("scram-sha-512", SaslMechanism::ScramSha512),
            ("SCRAM-SHA-512", SaslMechanism::ScramSha512),
        ] {
            let doc: Doc =
                toml::from_str(&format!("[security]\nmechanism = \"{text}\"\n")).unwrap();
            assert_eq!(doc.security.mechanism, Some(mechanism), "{text}");
        }
        assert!(toml::from_str::<Doc>("[security]\nprotocol = \"tls\"\n").is_err());
    }

    #[test]
    fn a_plain_build_never_refuses_kafka_tls() {
        let security = KafkaSecurityConfig {
            protocol: SecurityProtocol::Ssl,
            ..Default::default()
        };
        if cfg!(feature = "fips") {
            return;
        }
        assert!(check_fips(&security).is_ok());
        assert_eq!(kafka_tls_status(), None);
    }
}
