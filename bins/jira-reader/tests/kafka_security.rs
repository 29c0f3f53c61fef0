//! Kafka security end to end: the real `jira-reader` against Tansu behind a real TLS terminator
//! (Debian's `stunnel4`; Tansu advertises the TLS port, so librdkafka reconnects through it), all
//! on loopback and started and stopped here. The right CA applies a scenario; a wrong CA, a
//! certificate for another host, and (with mutual TLS required) a reader without a client
//! certificate are refused with a clear error, `/ready` stays false, nothing is handled and no
//! offset moves. SASL/SCRAM-SHA-512 over TLS with the right and a wrong password, on Tansu's
//! `--authentication` (which enforces SCRAM-SHA-256 and -512; it refuses PLAIN and OAUTHBEARER).
//!
//! Run by `cargo xtask e2e` (which installs Tansu and stunnel when missing):
//! `cargo test -p jira-reader --test kafka_security -- --ignored --test-threads=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use case_api::{GrpcCaseApi, GrpcCaseApiConfig};
use case_api_sandbox::SandboxServer;
use common::env::{ReaderConfig, demo_sandbox, work_dir};
use common::{CASE_10002, GROUP, TOPIC, comment_created, issue_updated, item};
use reader_runtime::testkit::{
    ReaderProcess, Stunnel, TansuBroker, TestPki, create_topic_with, free_port,
    group_progress_with, http_get, metric_sum, produce, producer_with, tls_client_props,
};
use serde_json::json;
use thirdparty_core::CaseApi;

const T0: i64 = 1_717_236_000_000; // 2024-06-01T10:00:00Z

/// The server certificate stunnel serves.
#[derive(Clone, Copy)]
enum ServerCert {
    /// For 127.0.0.1 and localhost, signed by the test CA.
    Right,
    /// For broker.invalid only, signed by the test CA.
    WrongName,
}

struct Secure {
    dir: PathBuf,
    pki: TestPki,
    _tansu: TansuBroker,
    _stunnel: Stunnel,
    tls_port: u16,
    sandbox: SandboxServer,
    /// SASL properties of the test's own clients (admin, producer, progress), when Tansu
    /// requires authentication.
    sasl: Vec<(String, String)>,
}

impl Secure {
    /// Tansu advertising the TLS port, stunnel in front of it, the topic, the seeded sandbox.
    async fn start(name: &str, cert: ServerCert, mutual_tls: bool) -> Secure {
        Self::start_with(name, cert, mutual_tls, None).await
    }

    /// [`Secure::start`]; with `user` (name, password), Tansu requires SASL/SCRAM-SHA-512 and
    /// has that user.
    async fn start_with(
        name: &str,
        cert: ServerCert,
        mutual_tls: bool,
        user: Option<(&str, &str)>,
    ) -> Secure {
        let dir = work_dir(&format!("kafka-security-{name}"));
        let pki = TestPki::generate(&dir.join("pki")).unwrap();
        let tls_port = free_port();
        // Tansu 0.6.0 keeps SCRAM users only in SQLite storage, and creates them only while it
        // does not require authentication: create, then restart requiring it.
        let storage = if user.is_some() {
            "sqlite://tansu.db"
        } else {
            "memory://tansu/"
        };
        let mut tansu = TansuBroker::start_with(storage, &dir, Some(tls_port), false)
            .await
            .unwrap();
        let mut sasl = Vec::new();
        if let Some((user, password)) = user {
            create_user(&tansu, user, password).await;
            tansu.restart_with_authentication(true).await.unwrap();
            sasl = vec![
                ("security.protocol".to_owned(), "sasl_ssl".to_owned()),
                ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
                ("sasl.username".to_owned(), user.to_owned()),
                ("sasl.password".to_owned(), password.to_owned()),
            ];
        }
        let (cert_file, key_file) = match cert {
            ServerCert::Right => (&pki.server_cert, &pki.server_key),
            ServerCert::WrongName => (&pki.wrong_name_cert, &pki.wrong_name_key),
        };
        let stunnel = Stunnel::start(
            &dir,
            name,
            tls_port,
            tansu.port(),
            cert_file,
            key_file,
            mutual_tls.then_some(pki.ca.as_path()),
        )
        .await
        .unwrap();
        let sandbox = demo_sandbox().await;
        let env = Secure {
            dir,
            pki,
            _tansu: tansu,
            _stunnel: stunnel,
            tls_port,
            sandbox,
            sasl,
        };
        // The test's own clients always connect with the right CA (and certificate, and user):
        // with a certificate for another host, without checking the name.
        create_topic_with(&env.bootstrap(), &env.client_props(cert), TOPIC, 1)
            .await
            .unwrap();
        env
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// Properties of the test's own, trusted clients.
    fn client_props(&self, cert: ServerCert) -> Vec<(String, String)> {
        let mut props = tls_client_props(&self.pki.ca);
        props.push((
            "ssl.certificate.location".into(),
            self.pki.client_cert.display().to_string(),
        ));
        props.push((
            "ssl.key.location".into(),
            self.pki.client_key.display().to_string(),
        ));
        if let ServerCert::WrongName = cert {
            props.push((
                "ssl.endpoint.identification.algorithm".into(),
                "none".into(),
            ));
        }
        props.extend(self.sasl.iter().cloned());
        props
    }

    /// Writes a reader config with this `[kafka.security]` body; starts the reader.
    fn reader(&self, name: &str, security: &str) -> ReaderProcess {
        ReaderConfig::new(&self.dir, &self.bootstrap(), &self.sandbox.endpoint())
            .property("reconnect.backoff.max.ms", "1000")
            .section(format!("[kafka.security]\n{security}"))
            .timeout_ms(2000)
            .retry(3, 20, 100)
            .spawn(name)
            .0
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A status change and a comment on the demo seed's issue 10002.
    async fn produce_scenario(&self, cert: ServerCert) {
        let p = producer_with(&self.bootstrap(), &self.client_props(cert)).unwrap();
        let status = item(
            "status",
            Some("1"),
            Some("To Do"),
            Some("3"),
            Some("In Progress"),
        );
        produce(
            &p,
            TOPIC,
            Some(0),
            "k",
            &issue_updated("10002", T0, json!([status])),
        )
        .await
        .unwrap();
        produce(
            &p,
            TOPIC,
            Some(0),
            "k",
            &comment_created("10002", "50001", T0 + 1, "over kafka tls"),
        )
        .await
        .unwrap();
    }

    /// (committed offset, high watermark) of partition 0 for the live group.
    async fn progress(&self, cert: ServerCert) -> (i64, i64) {
        group_progress_with(&self.bootstrap(), &self.client_props(cert), GROUP, TOPIC)
            .await
            .unwrap()[&0]
    }

    async fn case(&self) -> thirdparty_core::Case {
        let api = GrpcCaseApi::connect(&GrpcCaseApiConfig::new(self.sandbox.endpoint()))
            .await
            .unwrap();
        api.get_case(123456, CASE_10002).await.unwrap().unwrap()
    }

    /// The scenario is applied: every message committed, the case changed, two processed.
    async fn assert_applied(&self, reader: &ReaderProcess, cert: ServerCert) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (done, high) = self.progress(cert).await;
            if done >= high && high == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "not caught up: {done}/{high}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(self.case().await.status, "IN_PROGRESS");
        let metrics = reader.metrics().await.unwrap();
        assert_eq!(
            metric_sum(
                &metrics,
                "dd_case_third_party_reader_changelog_processed",
                &[]
            ),
            2.0
        );
    }

    /// The reader is refused: `/ready` says why, for a while; nothing is handled, no offset
    /// moves, the case is untouched, and the log says what to check.
    async fn assert_refused(
        &self,
        reader: &ReaderProcess,
        name: &str,
        cert: ServerCert,
        what: &str,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = loop {
            // The health server may not listen yet.
            let (status, body) = http_get(reader.health, "/ready")
                .await
                .unwrap_or((503, String::new()));
            assert_ne!(status, 200, "a refused reader is never ready: {body}");
            if body.contains("last kafka error") {
                break body;
            }
            assert!(
                Instant::now() < deadline,
                "no kafka error on /ready: {body}\n{}",
                self.log(name)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(body.contains(what), "/ready: {body}");
        // Still refused a few reconnects later.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (status, _) = http_get(reader.health, "/ready").await.unwrap();
        assert_ne!(status, 200);
        assert_eq!(self.progress(cert).await, (0, 2), "no offset moves");
        assert_eq!(self.case().await.status, "OPEN", "nothing is handled");
        let metrics = reader.metrics().await.unwrap();
        assert_eq!(
            metric_sum(
                &metrics,
                "dd_case_third_party_reader_changelog_processed",
                &[]
            ),
            0.0
        );
        let log = self.log(name);
        assert!(log.contains(what), "{log}");
    }
}

/// Creates a SCRAM-SHA-512 user through Tansu's own command (on its plain port).
async fn create_user(tansu: &TansuBroker, user: &str, password: &str) {
    let status = tokio::process::Command::new(tansu.binary())
        .args(["user", "create", "--mechanism", "scram512", "--broker"])
        .arg(format!("tcp://127.0.0.1:{}", tansu.port()))
        .args([user, password])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "tansu user create: {status}");
}

fn security_tls(ca: &Path) -> String {
    format!(
        "protocol = \"ssl\"\nca_file = {:?}\n",
        ca.display().to_string()
    )
}

async fn stop(reader: ReaderProcess) {
    assert_eq!(
        reader.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu and stunnel: run by `cargo xtask e2e`"]
async fn the_right_ca_applies_a_scenario_end_to_end_over_tls() {
    let env = Secure::start("right-ca", ServerCert::Right, false).await;
    env.produce_scenario(ServerCert::Right).await;
    let mut reader = env.reader("reader", &security_tls(&env.pki.ca));
    reader.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.assert_applied(&reader, ServerCert::Right).await;
    stop(reader).await;
    let log = env.log("reader");
    assert!(log.contains("protocol=ssl ca=file"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu and stunnel: run by `cargo xtask e2e`"]
async fn a_wrong_ca_is_refused_and_nothing_moves() {
    let env = Secure::start("wrong-ca", ServerCert::Right, false).await;
    env.produce_scenario(ServerCert::Right).await;
    let reader = env.reader("reader", &security_tls(&env.pki.other_ca));
    env.assert_refused(
        &reader,
        "reader",
        ServerCert::Right,
        "certificate verify failed",
    )
    .await;
    assert!(env.log("reader").contains("kafka tls refused"));
    stop(reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu and stunnel: run by `cargo xtask e2e`"]
async fn a_certificate_for_another_host_is_refused_and_nothing_moves() {
    let env = Secure::start("wrong-name", ServerCert::WrongName, false).await;
    env.produce_scenario(ServerCert::WrongName).await;
    let reader = env.reader("reader", &security_tls(&env.pki.ca));
    env.assert_refused(
        &reader,
        "reader",
        ServerCert::WrongName,
        "certificate verify failed",
    )
    .await;
    stop(reader).await;

    // The same certificate is refused for its name alone: without the name check it is taken.
    let mut reader = env.reader(
        "no-name-check",
        &format!(
            "{}endpoint_identification = false\n",
            security_tls(&env.pki.ca)
        ),
    );
    reader.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.assert_applied(&reader, ServerCert::WrongName).await;
    stop(reader).await;
    assert!(
        env.log("no-name-check")
            .contains("endpoint_identification is off")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu and stunnel: run by `cargo xtask e2e`"]
async fn with_mutual_tls_required_a_reader_without_a_client_certificate_is_refused() {
    let env = Secure::start("mutual", ServerCert::Right, true).await;
    env.produce_scenario(ServerCert::Right).await;
    let reader = env.reader("anonymous", &security_tls(&env.pki.ca));
    // stunnel closes the handshake of a client without a certificate.
    env.assert_refused(
        &reader,
        "anonymous",
        ServerCert::Right,
        "certificate required",
    )
    .await;
    assert!(env.log("anonymous").contains("kafka tls refused"));
    stop(reader).await;

    let mut reader = env.reader(
        "with-cert",
        &format!(
            "{}certificate_file = {:?}\nkey_file = {:?}\n",
            security_tls(&env.pki.ca),
            env.pki.client_cert.display().to_string(),
            env.pki.client_key.display().to_string()
        ),
    );
    reader.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.assert_applied(&reader, ServerCert::Right).await;
    stop(reader).await;
    assert!(env.log("with-cert").contains("mutual_tls=true"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu and stunnel: run by `cargo xtask e2e`"]
async fn sasl_scram_over_tls_admits_the_right_password_and_refuses_a_wrong_one() {
    const PASSWORD: &str = "right-horse-battery-staple";
    let env = Secure::start_with(
        "scram",
        ServerCert::Right,
        false,
        Some(("case-reader", PASSWORD)),
    )
    .await;
    env.produce_scenario(ServerCert::Right).await;
    let security = |password_file: &Path| {
        format!(
            "protocol = \"sasl_ssl\"\nca_file = {:?}\nmechanism = \"scram-sha-512\"\n\
             username = \"case-reader\"\npassword_file = {:?}\n",
            env.pki.ca.display().to_string(),
            password_file.display().to_string()
        )
    };
    let wrong = env.file("wrong.password", "not-the-password-at-all\n");
    let reader = env.reader("wrong", &security(&wrong));
    env.assert_refused(&reader, "wrong", ServerCert::Right, "uthentication")
        .await;
    assert!(env.log("wrong").contains("kafka authentication refused"));
    stop(reader).await;

    let right = env.file("right.password", &format!("{PASSWORD}\n"));
    let mut reader = env.reader("right", &security(&right));
    reader.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.assert_applied(&reader, ServerCert::Right).await;
    let metrics = reader.metrics().await.unwrap();
    stop(reader).await;
    for name in ["wrong", "right"] {
        let log = env.log(name);
        assert!(log.contains("sasl_mechanism=SCRAM-SHA-512"), "{log}");
        assert!(!log.contains(PASSWORD) && !log.contains("not-the-password"));
    }
    assert!(!metrics.contains(PASSWORD));
}

/// A JWT (unsigned: nothing here checks its signature) with these claims.
fn jwt(claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        enc.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        enc.encode(claims.to_string())
    )
}

/// Tansu 0.6.0 refuses OAUTHBEARER, so no test can be admitted with it; what can be shown is
/// that librdkafka asks the reader for a token, the reader reads it from its file and refuses an
/// expired one, and a valid one is sent to the broker (which refuses it, and nothing moves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Tansu and stunnel: run by `cargo xtask e2e`"]
async fn oauthbearer_tokens_come_from_the_token_file() {
    let env = Secure::start_with(
        "oauth",
        ServerCert::Right,
        false,
        Some(("case-reader", "scram-only-password")),
    )
    .await;
    env.produce_scenario(ServerCert::Right).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let security = |token_file: &Path| {
        format!(
            "protocol = \"sasl_ssl\"\nca_file = {:?}\nmechanism = \"oauthbearer\"\n\
             token_file = {:?}\n",
            env.pki.ca.display().to_string(),
            token_file.display().to_string()
        )
    };
    let expired = env.file(
        "expired.jwt",
        &jwt(&json!({"sub": "case-reader", "exp": now - 60})),
    );
    let reader = env.reader("expired", &security(&expired));
    env.assert_refused(&reader, "expired", ServerCert::Right, "expired")
        .await;
    assert!(
        env.log("expired")
            .contains("kafka oauthbearer token unusable")
    );
    stop(reader).await;

    let valid = jwt(&json!({"sub": "case-reader", "exp": now + 3600}));
    let file = env.file("valid.jwt", &valid);
    let reader = env.reader("valid", &security(&file));
    env.assert_refused(&reader, "valid", ServerCert::Right, "SASL")
        .await;
    stop(reader).await;
    assert!(
        !env.log("valid").contains(&valid),
        "the token is never logged"
    );
}
