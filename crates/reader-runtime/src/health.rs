//! Liveness and readiness state, and the HTTP server of `/live`, `/ready` and `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Renders the Prometheus exposition text.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// `/live` fails when the consumer loop has not polled for longer than this.
pub const POLL_STALL: Duration = Duration::from_secs(30);

/// What `/live` and `/ready` report.
#[derive(Debug)]
pub struct Health {
    last_poll: Mutex<Instant>,
    poll_stall: Duration,
    handling_stall: Duration,
    busy: Mutex<HashMap<(String, i32, i64), Instant>>,
    joined_group: AtomicBool,
    assigned: AtomicUsize,
    case_api_serving: AtomicBool,
    /// The sync-metadata cache is being warmed (`/ready` waits for it).
    warming: AtomicBool,
    stopping: AtomicBool,
    /// The last Kafka client error before the group was joined (TLS or SASL refused, brokers
    /// down), for `/ready` to say why it is not ready.
    kafka_error: Mutex<Option<String>>,
    /// A fatal error of a librdkafka client (a fenced consumer, an idempotent producer out of
    /// sequence): the client is unusable for good, so `/live` fails and the pod is restarted.
    kafka_fatal: Mutex<Option<String>>,
}

impl Health {
    /// Fresh state; `/live` fails when one event has been handled for longer than
    /// `handling_stall`, or the consumer loop has not polled for [`POLL_STALL`].
    pub fn new(handling_stall: Duration) -> Self {
        Self {
            last_poll: Mutex::new(Instant::now()),
            poll_stall: POLL_STALL,
            handling_stall,
            busy: Mutex::new(HashMap::new()),
            joined_group: AtomicBool::new(false),
            assigned: AtomicUsize::new(0),
            case_api_serving: AtomicBool::new(false),
            warming: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            kafka_error: Mutex::new(None),
            kafka_fatal: Mutex::new(None),
        }
    }

    /// The consumer loop polled.
    pub fn polled(&self) {
        *self.last_poll.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// A partition started handling an event.
    pub fn begin(&self, topic: &str, partition: i32, offset: i64) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_owned(), partition, offset), Instant::now());
    }

    /// A partition finished handling an event.
    pub fn end(&self, topic: &str, partition: i32, offset: i64) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(topic.to_owned(), partition, offset));
    }

    /// The Kafka client reported an error (kept for `/ready` until the group is joined). A
    /// `secondary` error (all brokers down, which follows every refused connection) does not
    /// replace the error that says why.
    pub fn kafka_error(&self, error: String, secondary: bool) {
        let mut last = self.kafka_error.lock().unwrap_or_else(|e| e.into_inner());
        if !secondary || last.is_none() {
            *last = Some(error);
        }
    }

    /// A librdkafka client raised a fatal error: from now on `/live` fails with `why`.
    pub fn kafka_fatal(&self, why: String) {
        let mut fatal = self.kafka_fatal.lock().unwrap_or_else(|e| e.into_inner());
        if fatal.is_none() {
            *fatal = Some(why);
        }
    }

    /// A rebalance completed with this many partitions assigned to us.
    pub fn assigned(&self, count: usize) {
        *self.kafka_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.joined_group.store(true, Ordering::Relaxed);
        self.assigned.store(count, Ordering::Relaxed);
    }

    /// The Case API health check answered.
    pub fn case_api(&self, serving: bool) {
        self.case_api_serving.store(serving, Ordering::Relaxed);
    }

    /// Cache warming started (`true`: `/ready` answers "warming caches") or ended, whatever
    /// its outcome (`false`). Not warming until told so.
    pub fn warming(&self, warming: bool) {
        self.warming.store(warming, Ordering::Relaxed);
    }

    /// Shutdown began: not ready any more.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// `Err(why)` when the reader has stopped making progress.
    pub fn live(&self) -> Result<(), String> {
        if let Some(why) = &*self.kafka_fatal.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(format!("kafka client fatal error: {why}"));
        }
        let since_poll = self
            .last_poll
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if since_poll > self.poll_stall {
            return Err(format!(
                "consumer loop has not polled for {}s",
                since_poll.as_secs()
            ));
        }
        let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(((topic, partition, offset), since)) = busy
            .iter()
            .find(|(_, since)| since.elapsed() > self.handling_stall)
        {
            return Err(format!(
                "{topic}:{partition}:{offset} has been in handling for {}s",
                since.elapsed().as_secs()
            ));
        }
        Ok(())
    }

    /// `Err(why)` until the reader is in its group, the Case API is serving and the cache
    /// warm-up is over. While warming, `why` starts with `warming caches` (and goes on with
    /// what else is missing: the group may be joined meanwhile).
    pub fn ready(&self) -> Result<(), String> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err("shutting down".into());
        }
        let warming = self.warming.load(Ordering::Relaxed);
        let missing = if !self.joined_group.load(Ordering::Relaxed) {
            let last = self.kafka_error.lock().unwrap_or_else(|e| e.into_inner());
            Some(match last.as_deref() {
                Some(error) => format!("no partition assignment yet; last kafka error: {error}"),
                None => "no partition assignment yet".into(),
            })
        } else if !self.case_api_serving.load(Ordering::Relaxed) {
            Some("case api not serving".into())
        } else {
            None
        };
        match (warming, missing) {
            (false, None) => Ok(()),
            (false, Some(why)) => Err(why),
            (true, None) => Err("warming caches".into()),
            (true, Some(why)) => Err(format!("warming caches; {why}")),
        }
    }

    /// Partitions currently assigned.
    pub fn assigned_count(&self) -> usize {
        self.assigned.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: MetricsRender,
}

async fn live(State(s): State<AppState>) -> (StatusCode, String) {
    match s.health.live() {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn ready(State(s): State<AppState>) -> (StatusCode, String) {
    match s.health.ready() {
        Ok(()) => (
            StatusCode::OK,
            format!("ok: {} partitions assigned\n", s.health.assigned_count()),
        ),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn metrics(State(s): State<AppState>) -> String {
    (s.metrics)()
}

/// Binds the health server (before the consumer starts, so a taken port fails fast).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/live`, `/ready` and `/metrics` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics_render: MetricsRender,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            health,
            metrics: metrics_render,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_a_group_and_the_case_api() {
        let h = Health::new(Duration::from_secs(60));
        assert!(h.live().is_ok());
        assert!(h.ready().is_err());
        h.assigned(2);
        assert!(h.ready().is_err());
        h.case_api(true);
        assert!(h.ready().is_ok());
        h.stopping();
        assert!(h.ready().is_err());
    }

    #[test]
    fn readiness_waits_for_the_cache_warm_up_and_liveness_does_not() {
        let h = Health::new(Duration::from_secs(60));
        h.warming(true);
        assert_eq!(
            h.ready().unwrap_err(),
            "warming caches; no partition assignment yet"
        );
        h.assigned(1);
        h.case_api(true);
        assert_eq!(h.ready().unwrap_err(), "warming caches");
        assert!(h.live().is_ok(), "/live is not about warming");
        h.warming(false);
        assert!(h.ready().is_ok());
        h.case_api(false);
        assert_eq!(h.ready().unwrap_err(), "case api not serving");
    }

    #[test]
    fn liveness_fails_when_one_event_is_stuck() {
        let h = Health::new(Duration::from_millis(1));
        h.begin("t", 0, 7);
        std::thread::sleep(Duration::from_millis(5));
        assert!(h.live().unwrap_err().contains("t:0:7"));
        h.end("t", 0, 7);
        assert!(h.live().is_ok());
    }
}
