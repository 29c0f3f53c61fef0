//! The tonic client implementing [`CaseApi`] over the `case.v1` services.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::global;
use opentelemetry::propagation::Injector;
use opentelemetry::trace::TraceContextExt as _;
use thirdparty_core::{
    Case, CaseApi, CaseApiError, CaseUpdate, Comment, CommentOutcome, ExternalReference,
    NewComment, SyncMetadata, SyncMetadataPage, SyncSettings, User, UserQuery,
};
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::convert::WireError;
use crate::pb::case::v1 as pb;
use crate::pb::case::v1::case_service_client::CaseServiceClient;
use crate::pb::case::v1::project_settings_service_client::ProjectSettingsServiceClient;
use crate::pb::case::v1::sync_metadata_service_client::SyncMetadataServiceClient;
use crate::pb::case::v1::timeline_service_client::TimelineServiceClient;
use crate::pb::case::v1::user_service_client::UserServiceClient;

/// The default per-call deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The default time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the Case API.
#[derive(Clone)]
pub struct GrpcCaseApiConfig {
    /// The server URI (`http://127.0.0.1:50051`, `https://case-api.internal:443`).
    pub endpoint: String,
    /// The deadline of every call (sent as `grpc-timeout` and enforced locally).
    pub timeout: Duration,
    /// The time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// TLS settings; `None` for plaintext (`http://` endpoints).
    pub tls: Option<TlsConfig>,
    /// A token sent as `authorization: Bearer <token>` on every call.
    pub bearer_token: Option<String>,
}

impl fmt::Debug for GrpcCaseApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcCaseApiConfig")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl GrpcCaseApiConfig {
    /// A plaintext, unauthenticated configuration with the default timeouts.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
            bearer_token: None,
        }
    }

    /// Sets the per-call deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Enables TLS.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sends a bearer token on every call.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }
}

/// TLS (rustls) settings of the client.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// PEM CA certificate(s) to trust; `None` trusts the bundled web PKI roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// The name to verify the server certificate against; `None` uses the endpoint's host.
    pub domain_name: Option<String>,
}

/// A client configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint `{endpoint}`: {reason}")]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The bearer token cannot be sent as a header value.
    #[error("the bearer token is not a valid header value")]
    Token,
    /// The TLS settings are unusable.
    #[error("invalid TLS settings: {0}")]
    Tls(String),
}

/// Adds `authorization: Bearer <token>` to every request (nothing without a token). Clones
/// share the token: [`BearerAuth::replace`] (a rotated token file) changes it for every client
/// built on them, from the next call on.
#[derive(Clone)]
pub struct BearerAuth {
    header: Arc<RwLock<Option<AsciiMetadataValue>>>,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.current().is_some();
        f.debug_struct("BearerAuth")
            .field("token", &set.then_some("<redacted>"))
            .finish()
    }
}

impl BearerAuth {
    /// An interceptor sending `token`, or nothing when `None`.
    pub fn new(token: Option<&str>) -> Result<Self, ConfigError> {
        let header = token.map(Self::header).transpose()?;
        Ok(Self {
            header: Arc::new(RwLock::new(header)),
        })
    }

    fn header(token: &str) -> Result<AsciiMetadataValue, ConfigError> {
        MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| ConfigError::Token)
    }

    /// Sends `token` from the next call on; a token that is no valid header value is refused
    /// and the previous one kept.
    pub fn replace(&self, token: &str) -> Result<(), ConfigError> {
        let header = Self::header(token)?;
        *self.header.write().unwrap_or_else(|e| e.into_inner()) = Some(header);
        Ok(())
    }

    fn current(&self) -> Option<AsciiMetadataValue> {
        self.header
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = self.current() {
            request.metadata_mut().insert("authorization", header);
        }
        Ok(request)
    }
}

/// Adds the W3C trace context of the current span (`traceparent`, and `tracestate` when it has
/// one) to every request, through the global propagator: nothing when none is installed (the
/// reader installs one only when it exports traces) or the span has no valid context.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContext;

impl TraceContext {
    /// Injects the current span's context into `metadata`.
    pub fn inject(metadata: &mut MetadataMap) {
        let context = tracing::Span::current().context();
        if !context.span().span_context().is_valid() {
            return;
        }
        global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(metadata));
        });
    }
}

impl Interceptor for TraceContext {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        Self::inject(request.metadata_mut());
        Ok(request)
    }
}

/// Writes propagation fields as gRPC metadata (a field that is no valid metadata is left out).
struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            AsciiMetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// What every call carries: the bearer token, then the trace context.
#[derive(Debug, Clone)]
struct Outgoing {
    auth: BearerAuth,
}

impl Interceptor for Outgoing {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let request = self.auth.call(request)?;
        TraceContext.call(request)
    }
}

/// The one place a gRPC status becomes a [`CaseApiError`].
///
/// `update` names the write being made, so a version mismatch carries its case and version.
pub fn classify_status(status: &Status, update: Option<&CaseUpdate>) -> CaseApiError {
    let message = if status.message().is_empty() {
        status.code().description().to_owned()
    } else {
        status.message().to_owned()
    };
    match status.code() {
        // ABORTED is a version mismatch only for a versioned write; on any other call it is a
        // transient abort, retried like UNAVAILABLE (`docs/design.md`, "Error classes").
        Code::Aborted => match update {
            Some(u) => CaseApiError::VersionMismatch {
                case_id: u.case_id.clone(),
                expected: u.expected_version,
            },
            None => CaseApiError::Unavailable(format!("aborted: {message}")),
        },
        Code::NotFound => CaseApiError::NotFound(message),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            CaseApiError::InvalidArgument(message)
        }
        Code::Unavailable | Code::ResourceExhausted => CaseApiError::Unavailable(message),
        Code::DeadlineExceeded | Code::Cancelled => CaseApiError::DeadlineExceeded(message),
        Code::Unauthenticated | Code::PermissionDenied => CaseApiError::Unauthorized(message),
        // A Case API without the call (e.g. one that predates `ListAllSyncMetadata`).
        Code::Unimplemented => CaseApiError::Unimplemented(message),
        Code::Ok | Code::Unknown | Code::AlreadyExists | Code::Internal | Code::DataLoss => {
            CaseApiError::Internal(format!("{:?}: {message}", status.code()))
        }
    }
}

fn malformed(err: WireError) -> CaseApiError {
    CaseApiError::Internal(format!("malformed response: {err}"))
}

fn missing(what: &str) -> CaseApiError {
    CaseApiError::Internal(format!("malformed response: `{what}` absent"))
}

/// A look-up that answered NOT_FOUND means "absent" (the trait's contract), not an error.
fn absent_if_not_found<T>(
    result: Result<Option<T>, CaseApiError>,
) -> Result<Option<T>, CaseApiError> {
    match result {
        Err(CaseApiError::NotFound(_)) => Ok(None),
        other => other,
    }
}

type Svc = InterceptedService<Channel, Outgoing>;

/// The Case API over gRPC (tonic), implementing [`CaseApi`].
///
/// Cheap to clone (clones share one HTTP/2 connection). Every call carries the configured
/// deadline; look-ups map an empty response (or NOT_FOUND) to `Ok(None)`; errors are classified
/// by [`classify_status`]; nothing is retried here (the runtime owns retries).
#[derive(Debug, Clone)]
pub struct GrpcCaseApi {
    auth: BearerAuth,
    cases: CaseServiceClient<Svc>,
    timeline: TimelineServiceClient<Svc>,
    settings: ProjectSettingsServiceClient<Svc>,
    metadata: SyncMetadataServiceClient<Svc>,
    users: UserServiceClient<Svc>,
    health: HealthClient<Svc>,
    timeout: Duration,
}

impl GrpcCaseApi {
    /// A client that connects lazily on its first call (and reconnects as needed).
    ///
    /// Must be called from within a Tokio runtime.
    pub fn new(config: &GrpcCaseApiConfig) -> Result<Self, ConfigError> {
        let channel = endpoint(config)?.connect_lazy();
        Self::from_channel(channel, config)
    }

    /// A client that connects first, failing with [`CaseApiError::Unavailable`] when the
    /// server cannot be reached within the connect timeout.
    pub async fn connect(config: &GrpcCaseApiConfig) -> Result<Self, ConnectError> {
        let channel = endpoint(config)?
            .connect()
            .await
            .map_err(|e| ConnectError::Unavailable(CaseApiError::Unavailable(e.to_string())))?;
        Ok(Self::from_channel(channel, config)?)
    }

    /// A client over an existing channel (custom transports, tests).
    pub fn from_channel(channel: Channel, config: &GrpcCaseApiConfig) -> Result<Self, ConfigError> {
        let auth = BearerAuth::new(config.bearer_token.as_deref())?;
        let svc = InterceptedService::new(channel, Outgoing { auth: auth.clone() });
        Ok(Self {
            auth,
            cases: CaseServiceClient::new(svc.clone()),
            timeline: TimelineServiceClient::new(svc.clone()),
            settings: ProjectSettingsServiceClient::new(svc.clone()),
            metadata: SyncMetadataServiceClient::new(svc.clone()),
            users: UserServiceClient::new(svc.clone()),
            health: HealthClient::new(svc),
            timeout: config.timeout,
        })
    }

    /// Asks the standard gRPC health service whether the whole server (service `""`) is
    /// serving: `Ok(())` when SERVING, [`CaseApiError::Unavailable`] otherwise.
    pub async fn health_check(&self) -> Result<(), CaseApiError> {
        self.health_check_service("").await
    }

    /// Asks the standard gRPC health service whether one service (e.g.
    /// `case.v1.CaseService`) is serving.
    pub async fn health_check_service(&self, service: &str) -> Result<(), CaseApiError> {
        let mut client = self.health.clone();
        let request = self.request(HealthCheckRequest {
            service: service.to_owned(),
        });
        let response = self
            .deadline(client.check(request))
            .await
            .map_err(|s| classify_status(&s, None))?;
        match ServingStatus::try_from(response.status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(other) => Err(CaseApiError::Unavailable(format!(
                "health of `{service}`: {}",
                other.as_str_name()
            ))),
            Err(_) => Err(CaseApiError::Unavailable(format!(
                "health of `{service}`: unknown status {}",
                response.status
            ))),
        }
    }

    /// The bearer token every call of this client (and its clones) sends, to replace when the
    /// token rotates.
    pub fn bearer_auth(&self) -> &BearerAuth {
        &self.auth
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Enforces the deadline locally too, so a stalled connection cannot outlive it.
    async fn deadline<T>(
        &self,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map(Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no response within {:?}",
                self.timeout
            ))),
        }
    }
}

/// Why [`GrpcCaseApi::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server could not be reached.
    #[error(transparent)]
    Unavailable(CaseApiError),
}

fn endpoint(config: &GrpcCaseApiConfig) -> Result<Endpoint, ConfigError> {
    let invalid = |reason: String| ConfigError::Endpoint {
        endpoint: config.endpoint.clone(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| invalid(e.to_string()))?
        .connect_timeout(config.connect_timeout)
        .timeout(config.timeout)
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        // A `fips` build never configures TLS on a provider that is not in FIPS mode.
        crate::crypto::init().map_err(|e| ConfigError::Tls(e.to_string()))?;
        let mut tls_config = ClientTlsConfig::new();
        tls_config = match &tls.ca_cert_pem {
            Some(pem) => tls_config.ca_certificate(Certificate::from_pem(pem)),
            None => tls_config.with_webpki_roots(),
        };
        if let Some(domain) = &tls.domain_name {
            tls_config = tls_config.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(tls_config)
            .map_err(|e| ConfigError::Tls(e.to_string()))?;
    }
    Ok(endpoint)
}

#[async_trait]
impl CaseApi for GrpcCaseApi {
    async fn get_case(&self, org_id: u64, case_id: &str) -> Result<Option<Case>, CaseApiError> {
        let mut client = self.cases.clone();
        let request = self.request(pb::GetCaseRequest {
            org_id,
            case_id: case_id.to_owned(),
        });
        let result = self
            .deadline(client.get_case(request))
            .await
            .map_err(|s| classify_status(&s, None))
            .and_then(|r| r.case.map(Case::try_from).transpose().map_err(malformed));
        absent_if_not_found(result)
    }

    async fn find_case_by_external_reference(
        &self,
        org_id: u64,
        reference: &ExternalReference,
    ) -> Result<Option<Case>, CaseApiError> {
        let mut client = self.cases.clone();
        let request = self.request(pb::FindCaseByExternalReferenceRequest {
            org_id,
            integration: reference.integration.clone(),
            reference: reference.reference.clone(),
            site: reference.site.clone(),
        });
        let result = self
            .deadline(client.find_case_by_external_reference(request))
            .await
            .map_err(|s| classify_status(&s, None))
            .and_then(|r| r.case.map(Case::try_from).transpose().map_err(malformed));
        absent_if_not_found(result)
    }

    async fn update_case(&self, update: &CaseUpdate) -> Result<Case, CaseApiError> {
        let mut client = self.cases.clone();
        let request = self.request(pb::UpdateCaseRequest {
            update: Some(update.into()),
        });
        let response = self
            .deadline(client.update_case(request))
            .await
            .map_err(|s| classify_status(&s, Some(update)))?;
        Case::try_from(response.case.ok_or_else(|| missing("case"))?).map_err(malformed)
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<CommentOutcome, CaseApiError> {
        let mut client = self.timeline.clone();
        let request = self.request(pb::CreateCommentRequest {
            comment: Some(comment.into()),
        });
        let response = self
            .deadline(client.create_comment(request))
            .await
            .map_err(|s| classify_status(&s, None))?;
        Ok(CommentOutcome {
            comment: response.comment.ok_or_else(|| missing("comment"))?.into(),
            created: response.created,
        })
    }

    async fn list_comments(
        &self,
        org_id: u64,
        case_id: &str,
    ) -> Result<Vec<Comment>, CaseApiError> {
        let mut client = self.cases.clone();
        let request = self.request(pb::ListCommentsRequest {
            org_id,
            case_id: case_id.to_owned(),
        });
        match self.deadline(client.list_comments(request)).await {
            Ok(r) => Ok(r.comments.into_iter().map(Comment::from).collect()),
            Err(s) => match classify_status(&s, None) {
                CaseApiError::NotFound(_) => Ok(Vec::new()),
                e => Err(e),
            },
        }
    }

    async fn get_project_settings(
        &self,
        org_id: u64,
        project_id: &str,
        integration: &str,
    ) -> Result<Option<SyncSettings>, CaseApiError> {
        let mut client = self.settings.clone();
        let request = self.request(pb::GetProjectSettingsRequest {
            org_id,
            project_id: project_id.to_owned(),
            integration: integration.to_owned(),
        });
        let result = self
            .deadline(client.get_project_settings(request))
            .await
            .map_err(|s| classify_status(&s, None))
            .and_then(|r| {
                r.settings
                    .map(SyncSettings::try_from)
                    .transpose()
                    .map_err(malformed)
            });
        absent_if_not_found(result)
    }

    async fn list_sync_metadata(
        &self,
        org_id: u64,
        integration: &str,
    ) -> Result<Vec<SyncMetadata>, CaseApiError> {
        let mut client = self.metadata.clone();
        let request = self.request(pb::ListSyncMetadataRequest {
            org_id,
            integration: integration.to_owned(),
        });
        match self.deadline(client.list_sync_metadata(request)).await {
            Ok(r) => r
                .metadata
                .into_iter()
                .map(SyncMetadata::try_from)
                .collect::<Result<_, _>>()
                .map_err(malformed),
            Err(s) => match classify_status(&s, None) {
                CaseApiError::NotFound(_) => Ok(Vec::new()),
                e => Err(e),
            },
        }
    }

    /// `ListAllSyncMetadata`; a server without it answers UNIMPLEMENTED, which is
    /// [`CaseApiError::Unimplemented`].
    async fn list_all_sync_metadata(
        &self,
        integration: &str,
        page_token: Option<String>,
        page_size: u32,
    ) -> Result<SyncMetadataPage, CaseApiError> {
        let mut client = self.metadata.clone();
        let request = self.request(pb::ListAllSyncMetadataRequest {
            integration: integration.to_owned(),
            page_size,
            page_token: page_token.unwrap_or_default(),
        });
        let response = self
            .deadline(client.list_all_sync_metadata(request))
            .await
            .map_err(|s| classify_status(&s, None))?;
        SyncMetadataPage::try_from(response).map_err(malformed)
    }

    async fn resolve_user(&self, query: &UserQuery) -> Result<Option<User>, CaseApiError> {
        let mut client = self.users.clone();
        let request = self.request(pb::ResolveUserRequest {
            query: Some(query.into()),
        });
        let result = self
            .deadline(client.resolve_user(request))
            .await
            .map_err(|s| classify_status(&s, None))
            .map(|r| r.user.map(User::from));
        absent_if_not_found(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_context_goes_out_only_for_a_valid_span_context() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        use tracing_subscriber::layer::SubscriberExt as _;

        let traceparent = |request: &Request<()>| {
            request
                .metadata()
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        // No span, no propagator: nothing.
        let request = TraceContext.call(Request::new(())).unwrap();
        assert_eq!(traceparent(&request), None);

        global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer());
        tracing::subscriber::with_default(subscriber, || {
            // A span without a trace context: nothing.
            let span = tracing::info_span!("health");
            let request = span.in_scope(|| TraceContext.call(Request::new(())).unwrap());
            assert_eq!(traceparent(&request), None);

            let parent = SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
                SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                TraceFlags::SAMPLED,
                true,
                TraceState::from_key_value([("dd", "s:1")]).unwrap(),
            );
            let span = tracing::info_span!("get_case");
            span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent))
                .unwrap();
            let request = span.in_scope(|| {
                let auth = BearerAuth::new(Some("t")).unwrap();
                Outgoing { auth }.call(Request::new(())).unwrap()
            });
            assert_eq!(
                traceparent(&request).as_deref(),
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            );
            assert_eq!(request.metadata().get("tracestate").unwrap(), "dd=s:1");
            assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer t");
            // Outside the span again: nothing.
            let request = TraceContext.call(Request::new(())).unwrap();
            assert_eq!(traceparent(&request), None);
        });
    }

    #[test]
    fn every_status_code_has_one_class() {
        let update = CaseUpdate {
            org_id: 1,
            case_id: "c".into(),
            expected_version: 4,
            change: thirdparty_core::FieldChange::Status("OPEN".into()),
            writer: thirdparty_core::UpdateWriter::Person { user_id: None },
        };
        let class = |code: Code| classify_status(&Status::new(code, "m"), Some(&update));
        assert_eq!(
            class(Code::Aborted),
            CaseApiError::VersionMismatch {
                case_id: "c".into(),
                expected: 4
            }
        );
        assert!(matches!(class(Code::NotFound), CaseApiError::NotFound(_)));
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::OutOfRange,
        ] {
            assert!(
                matches!(class(code), CaseApiError::InvalidArgument(_)),
                "{code:?}"
            );
        }
        for code in [Code::Unavailable, Code::ResourceExhausted] {
            assert!(
                matches!(class(code), CaseApiError::Unavailable(_)),
                "{code:?}"
            );
        }
        for code in [Code::DeadlineExceeded, Code::Cancelled] {
            assert!(
                matches!(class(code), CaseApiError::DeadlineExceeded(_)),
                "{code:?}"
            );
        }
        for code in [Code::Unauthenticated, Code::PermissionDenied] {
            assert!(
                matches!(class(code), CaseApiError::Unauthorized(_)),
                "{code:?}"
            );
        }
        for code in [
            Code::Unknown,
            Code::Internal,
            Code::DataLoss,
            Code::AlreadyExists,
        ] {
            assert!(matches!(class(code), CaseApiError::Internal(_)), "{code:?}");
        }
        assert_eq!(
            class(Code::Unimplemented),
            CaseApiError::Unimplemented("m".into())
        );
    }

    #[test]
    fn bearer_auth_adds_the_header_and_redacts_it() {
        let mut auth = BearerAuth::new(Some("s3cret")).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
        let config = GrpcCaseApiConfig::new("http://127.0.0.1:1").with_bearer_token("s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(
            BearerAuth::new(Some("bad\ntoken")).unwrap_err(),
            ConfigError::Token
        );
        let mut none = BearerAuth::new(None).unwrap();
        assert!(
            none.call(Request::new(()))
                .unwrap()
                .metadata()
                .get("authorization")
                .is_none()
        );
    }

    #[test]
    fn a_bad_endpoint_is_a_config_error() {
        let err = endpoint(&GrpcCaseApiConfig::new("not a uri")).unwrap_err();
        assert!(matches!(err, ConfigError::Endpoint { .. }));
    }
}
