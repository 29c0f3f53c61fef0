//! TLS in front of a real broker for the security end-to-end tests: a test PKI made with rcgen,
//! and Debian's `stunnel4` as the TLS terminator in front of Tansu (which advertises the TLS
//! port, so librdkafka reconnects through it). Everything listens on loopback; processes are
//! killed when their handles drop.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::process::{Child, Command};

/// The files of a test PKI, all PEM, in one directory.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA that signs the server and client certificates.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the brokers serve.
    pub other_ca: PathBuf,
    /// The server certificate, for `127.0.0.1` and `localhost`.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// A server certificate signed by the CA for another host (`broker.invalid`) only.
    pub wrong_name_cert: PathBuf,
    /// Its key.
    pub wrong_name_key: PathBuf,
    /// A client certificate signed by the CA, for mutual TLS.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

fn ca(name: &str) -> Result<(Issuer<'static, KeyPair>, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((Issuer::new(params, key), cert.pem()))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl TestPki {
    /// Generates the PKI into `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, pem: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let (issuer, ca_pem) = ca("case-third-party-reader test CA")?;
        let (_, other_pem) = ca("an unrelated CA")?;
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let (server, server_key) = leaf(
            &issuer,
            "127.0.0.1",
            vec![
                SanType::IpAddress(loopback),
                SanType::DnsName("localhost".try_into()?),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (wrong, wrong_key) = leaf(
            &issuer,
            "broker.invalid",
            vec![SanType::DnsName("broker.invalid".try_into()?)],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client, client_key) = leaf(
            &issuer,
            "case-third-party-reader",
            vec![SanType::DnsName("case-third-party-reader".try_into()?)],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Self {
            ca: write("ca.pem", &ca_pem)?,
            other_ca: write("other-ca.pem", &other_pem)?,
            server_cert: write("server.pem", &server)?,
            server_key: write("server.key", &server_key)?,
            wrong_name_cert: write("wrong-name.pem", &wrong)?,
            wrong_name_key: write("wrong-name.key", &wrong_key)?,
            client_cert: write("client.pem", &client)?,
            client_key: write("client.key", &client_key)?,
        })
    }
}

/// librdkafka properties of a TLS client trusting `ca` (for the test's producer and admin).
pub fn tls_client_props(ca: &Path) -> Vec<(String, String)> {
    vec![
        ("security.protocol".into(), "ssl".into()),
        ("ssl.ca.location".into(), ca.display().to_string()),
    ]
}

/// Where stunnel is: `$STUNNEL_BIN`, else `stunnel4` or `stunnel` on `PATH` (Debian's
/// `stunnel4` package; `cargo xtask e2e` installs it when missing).
pub fn stunnel_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STUNNEL_BIN") {
        return Some(path.into());
    }
    let paths = std::env::var_os("PATH")?;
    ["stunnel4", "stunnel"].iter().find_map(|name| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// stunnel terminating TLS on `127.0.0.1:accept` and forwarding in clear to
/// `127.0.0.1:connect`; killed when dropped.
#[derive(Debug)]
pub struct Stunnel {
    _child: Child,
    /// The TLS port.
    pub port: u16,
}

impl Stunnel {
    /// Starts stunnel serving `cert`/`key`; with `client_ca`, only clients presenting a
    /// certificate signed by it are let through (mutual TLS). Waits until it accepts.
    pub async fn start(
        workdir: &Path,
        name: &str,
        accept: u16,
        connect: u16,
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self> {
        let binary = stunnel_binary()
            .context("stunnel is not installed (Debian: apt-get install stunnel4)")?;
        let mut text = format!(
            "foreground = yes\npid =\ndebug = 5\noutput = {log}\n[kafka]\naccept = \
             127.0.0.1:{accept}\nconnect = 127.0.0.1:{connect}\ncert = {cert}\nkey = {key}\n",
            log = workdir.join(format!("{name}.stunnel.log")).display(),
            cert = cert.display(),
            key = key.display(),
        );
        if let Some(ca) = client_ca {
            text.push_str(&format!(
                "verifyChain = yes\nrequireCert = yes\nCAfile = {}\n",
                ca.display()
            ));
        }
        let config = workdir.join(format!("{name}.stunnel.conf"));
        std::fs::write(&config, text)?;
        let child = Command::new(&binary)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", accept))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!(
                    "stunnel did not listen on {accept} (see {})",
                    config.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            _child: child,
            port: accept,
        })
    }
}
