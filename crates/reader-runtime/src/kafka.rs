//! The Kafka consumer: client settings, rebalance handling, one task per assigned partition.
//!
//! - Every assigned partition gets its own queue (split from the consumer in the assign
//!   callback) and its own task, so partitions progress concurrently while each stays strictly
//!   in order.
//! - An offset is stored only after its event is fully handled, in offset order (the task is
//!   sequential); librdkafka commits stored offsets every `auto_commit_interval_ms`.
//! - The main queue (rebalances, errors) is polled on a dedicated thread, so the revoke callback
//!   can block there while the revoked partitions finish their in-flight event, without blocking
//!   an async worker.
//! - On revoke: stop the revoked partitions, wait for their in-flight event (bounded), commit
//!   synchronously, then let librdkafka release them. Shutdown does the same for all partitions.
//! - A task still busy when `drain_timeout_ms` runs out keeps running until its event ends (an
//!   event is never abandoned half-way), but from then on it stores no offset: every drain and
//!   every new assignment of a partition starts a new generation of it, and only the current
//!   generation may store (a late store is logged as `offset not stored: the partition was
//!   revoked or re-assigned since`). A stored offset never goes backwards either: no task stores
//!   an offset at or below the highest one this process stored for the partition (the event was
//!   handled again after a redelivery; the higher offset already covers it).
//! - When a partition comes back to this reader while its previous task is still running, the
//!   new task waits for the previous one before it touches the partition's queue (logged as
//!   `partition re-assigned before its previous task finished; waiting for it`). Both tasks'
//!   queue handles wrap the same librdkafka queue, whose wake-up callback is a property of that
//!   queue, not of a handle: when the previous handle is dropped it disables the callback, and a
//!   handle split before that would never be woken again (the partition would stall silently,
//!   `/live` green). So the new task splits its queue only once the previous task has ended and
//!   dropped its handle, and it ends only after its own predecessor has, so a chain of slow
//!   drains stays ordered. The wait is in the new task, on the async runtime: the rebalance
//!   callback blocks the poll thread for `drain_timeout_ms` at most, as before, so rebalances
//!   and the main queue keep being served. Meanwhile the partition's messages wait in its queue
//!   (it stays application-forwarded since its first split), and the previous task's event
//!   still counts for `/live`'s stall check.
//! - Test only: built with the feature `negative-control-store-before-handling`, a task stores
//!   each offset *before* handling its message instead, so a crash mid-handling loses that
//!   message ([`STORES_OFFSETS_BEFORE_HANDLING`]). It is the negative control of
//!   `cargo xtask chaos --negative-control` (the harness must catch the loss) and never part of a
//!   shipped build; such a reader warns at start-up.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use rdkafka::client::OAuthToken;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};
use std::panic::AssertUnwindSafe;
use thirdparty_core::{Decision, ErrorClass, MessageOutcome, MessagePosition, Payload, Pipeline};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{KafkaConfig, RetryConfig};
use crate::health::Health;
use crate::kafka_security::{OAuthTokenFile, SecurityError};
use crate::key_order::KeyOrder;
use crate::lag::{Lag, STATISTICS_INTERVAL_MS};
use crate::retry::{Handled, handle_with_retry};

/// librdkafka keys the reader sets itself, after any user pass-through, for at-least-once
/// delivery; users cannot override them.
pub const SAFETY_KEYS: &[&str] = &[
    "enable.auto.offset.store",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "partition.assignment.strategy",
    "enable.partition.eof",
    "group.id",
    "bootstrap.servers",
    "auto.offset.reset",
];

/// Whether this build stores each offset before its message is handled (feature
/// `negative-control-store-before-handling`, test only: a crash mid-handling loses the message).
/// False in every normal build.
pub const STORES_OFFSETS_BEFORE_HANDLING: bool =
    cfg!(feature = "negative-control-store-before-handling");

/// The client settings: user properties first, then the safety-critical keys and
/// `[kafka.security]` (which win; reading its secret files can fail).
pub fn client_config(kafka: &KafkaConfig) -> Result<ClientConfig, SecurityError> {
    let mut config = ClientConfig::new();
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    kafka.security.apply(&mut config)?;
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("auto.offset.reset", kafka.auto_offset_reset.as_str())
        .set("enable.auto.commit", "true")
        .set(
            "auto.commit.interval.ms",
            kafka.auto_commit_interval.as_millis().to_string(),
        )
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.partition.eof", "false")
        .set_log_level(RDKafkaLogLevel::Warning);
    Ok(config)
}

/// Why the consumer stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A shutdown was requested (signal): exit 0.
    Requested,
    /// A message exhausted its retries: exit non-zero, its offset not stored.
    RetriesExhausted(String),
}

/// A topic and partition.
type Key = (String, i32);

/// A running partition task.
struct PartitionHandle {
    stop: CancellationToken,
    /// Signalled when the task has ended (after its predecessors and its queue handle).
    done: std_mpsc::Receiver<()>,
    /// The task itself, for a successor to await.
    task: JoinHandle<()>,
    stray: mpsc::UnboundedSender<OwnedMessage>,
}

/// The partition tasks, and what outlives them.
#[derive(Default)]
struct Partitions {
    /// The task of each assigned partition.
    running: HashMap<Key, PartitionHandle>,
    /// Tasks of revoked partitions that did not drain in time: still handling their event.
    lingering: HashMap<Key, JoinHandle<()>>,
    /// Each partition's offset gate, kept for the life of the process.
    gates: HashMap<Key, Arc<OffsetGate>>,
}

impl Partitions {
    /// Whether a task of `key` still runs (assigned, or revoked but not drained in time): a
    /// new task of the partition must wait for it.
    fn has_running_task(&self, key: &Key) -> bool {
        self.running.contains_key(key)
            || self
                .lingering
                .get(key)
                .is_some_and(|task| !task.is_finished())
    }
}

type Registry = Arc<Mutex<Partitions>>;

/// Which task of a partition may store offsets, and the highest offset stored.
///
/// Every drain and every new task of the partition starts a new generation; a task stores only
/// while its own generation is the current one, and only above the highest offset stored.
#[derive(Debug, Default)]
struct OffsetGate(Mutex<GateState>);

#[derive(Debug, Default)]
struct GateState {
    generation: u64,
    /// The highest offset stored (of a handled message; librdkafka keeps that + 1).
    stored: Option<i64>,
}

/// What became of an offset store.
#[derive(Debug, PartialEq, Eq)]
enum StoreOutcome<E> {
    Stored,
    /// librdkafka refused it.
    Failed(E),
    /// A newer generation of the partition exists: this task's offsets are not ours any more.
    Fenced,
    /// An offset at least as high is stored already.
    Behind {
        stored: i64,
    },
}

impl OffsetGate {
    /// Ends the current generation; returns the new one.
    fn fence(&self) -> u64 {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.generation += 1;
        state.generation
    }

    /// Runs `store` if `generation` is current and `offset` is above every stored offset; held
    /// under the gate's lock, so a fence cannot come between the check and the store.
    fn store<E>(
        &self,
        generation: u64,
        offset: i64,
        store: impl FnOnce() -> Result<(), E>,
    ) -> StoreOutcome<E> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if state.generation != generation {
            return StoreOutcome::Fenced;
        }
        if let Some(stored) = state.stored
            && offset <= stored
        {
            return StoreOutcome::Behind { stored };
        }
        match store() {
            Ok(()) => {
                state.stored = Some(offset);
                StoreOutcome::Stored
            }
            Err(err) => StoreOutcome::Failed(err),
        }
    }
}

/// What a partition task needs.
#[derive(Clone)]
struct Shared {
    pipeline: Arc<Pipeline>,
    retry: RetryConfig,
    health: Arc<Health>,
    fatal: mpsc::UnboundedSender<String>,
    runtime: Handle,
    /// False in dry runs: nothing is committed, so the real readers miss nothing.
    store_offsets: bool,
    /// The consumer-lag gauges.
    lag: Arc<Lag>,
    /// Messages of one partition between receipt and their stored offset, at most.
    max_in_flight: usize,
}

/// The consumer context: rebalance callbacks (run on the poll thread).
pub struct ReaderContext {
    consumer: OnceLock<Weak<ReaderConsumer>>,
    /// Queues split in the assign pre-callback, started in the post-callback.
    pending: Mutex<HashMap<(String, i32), PartitionQueue>>,
    registry: Registry,
    shared: Shared,
    drain_timeout: Duration,
    /// The `OAUTHBEARER` token file, when `[kafka.security]` uses it.
    oauth: Option<OAuthTokenFile>,
}

impl std::fmt::Debug for ReaderContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderContext")
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

/// The consumer type.
pub type ReaderConsumer = StreamConsumer<ReaderContext>;

/// One partition's own queue.
type PartitionQueue = rdkafka::consumer::stream_consumer::StreamPartitionQueue<ReaderContext>;

impl ClientContext for ReaderContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let Some(source) = &self.oauth else {
            return Err("kafka.security has no token_file for mechanism oauthbearer".into());
        };
        match source.token(std::time::SystemTime::now()) {
            Ok(token) => Ok(token),
            Err(err) => {
                tracing::error!(error = %err, "kafka oauthbearer token unusable");
                Err(err.into())
            }
        }
    }

    /// The consumer-lag gauges come from librdkafka's statistics (read from the raw JSON:
    /// only the lag fields, and no log line when the rest changes shape).
    fn stats_raw(&self, statistics: &[u8]) {
        self.shared.lag.report(statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        metrics::counter!("dd.case.kafka_consumer.client_error", "flavor" => self.shared.pipeline.config().flavor.clone())
            .increment(1);
        let code = error.rdkafka_error_code();
        // librdkafka reports a fatal error through this callback with its underlying code
        // (`FencedInstanceId`, ...) and keeps it for `fatal_error`: the consumer is unusable for
        // good, no retry brings it back, a restart does.
        let fatal = self
            .consumer
            .get()
            .and_then(Weak::upgrade)
            .and_then(|c| c.client().fatal_error());
        if code == Some(RDKafkaErrorCode::Fatal) || fatal.is_some() {
            let why = fatal.map_or_else(
                || reason.to_owned(),
                |(code, why)| format!("{code:?}: {why}"),
            );
            tracing::error!(error = %error, reason = %why, "kafka consumer fatal error; /live now fails");
            self.shared.health.kafka_fatal(why);
            return;
        }
        self.shared.health.kafka_error(
            format!("{error}: {reason}"),
            code == Some(RDKafkaErrorCode::AllBrokersDown),
        );
        // A peer's TLS alert (no client certificate) arrives as a transport failure.
        let tls = code == Some(RDKafkaErrorCode::SSL) || reason.contains("SSL routines");
        match code {
            _ if tls => tracing::error!(
                error = %error, reason,
                "kafka tls refused: check kafka.security.ca_file, the brokers' certificate names \
                 (endpoint_identification) and, for mutual TLS, certificate_file and key_file"
            ),
            Some(RDKafkaErrorCode::Authentication) => tracing::error!(
                error = %error, reason,
                "kafka authentication refused: check kafka.security.mechanism, username and \
                 password_file (or token_file)"
            ),
            _ => tracing::warn!(error = %error, reason, "kafka client error"),
        }
    }
}

impl ConsumerContext for ReaderContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self.revoke(consumer, &elements(tpl)),
            Rebalance::Assign(tpl) => self.prepare_assign(&elements(tpl)),
            Rebalance::Error(err) => tracing::error!(error = %err, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.assigned(&elements(tpl));
        }
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.shared.health.assigned(assigned);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                tracing::debug!(offsets = ?elements_with_offsets(offsets), "offsets committed")
            }
            Err(err) => tracing::warn!(error = %err, "offset commit failed"),
        }
    }
}

impl ReaderContext {
    /// Before librdkafka releases revoked partitions: stop their tasks, wait for their in-flight
    /// events (bounded), commit what they stored.
    fn revoke<C: Consumer<Self> + ?Sized>(&self, consumer: &C, partitions: &[(String, i32)]) {
        tracing::info!(?partitions, "partitions revoked: draining");
        drain(&self.registry, partitions, self.drain_timeout);
        commit_stored(consumer, "revoke");
        for (topic, partition) in partitions {
            self.shared.lag.revoked(topic, *partition);
        }
    }

    /// Before librdkafka starts fetching newly assigned partitions: split their queues.
    fn prepare_assign(&self, partitions: &[(String, i32)]) {
        // Split each new partition's queue before librdkafka starts fetching it, so no message
        // of it can reach the main queue (the split marks the queue as application-forwarded,
        // which the assignment keeps). Not while an earlier task of the partition runs: its
        // queue handle's drop would disable the new handle's wake-up; the new task splits the
        // queue itself once that task has ended (the queue stays application-forwarded).
        for (topic, partition) in partitions {
            let key = (topic.clone(), *partition);
            if self
                .registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .has_running_task(&key)
            {
                continue;
            }
            if let Some(queue) = self.split(topic, *partition) {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((topic.clone(), *partition), queue);
            }
        }
    }

    /// After librdkafka assigned the partitions: start their tasks.
    fn assigned(&self, partitions: &[(String, i32)]) {
        tracing::info!(?partitions, "partitions assigned");
        for (topic, partition) in partitions {
            self.shared.lag.assigned(topic, *partition);
            self.start_partition(topic, *partition);
        }
    }

    fn split(&self, topic: &str, partition: i32) -> Option<PartitionQueue> {
        let consumer = self.consumer.get().and_then(Weak::upgrade)?;
        consumer.split_partition_queue(topic, partition)
    }

    fn start_partition(&self, topic: &str, partition: i32) {
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            tracing::error!(topic, partition, "consumer gone while assigning");
            return;
        };
        let key = (topic.to_owned(), partition);
        let presplit = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        let (gate, generation, predecessors) = {
            let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            let gate = registry.gates.entry(key.clone()).or_default().clone();
            // From here on, no earlier task of this partition stores an offset.
            let generation = gate.fence();
            let mut predecessors = Vec::new();
            if let Some(previous) = registry.running.remove(&key) {
                // Assigned again without a revoke in between: the earlier task stops.
                previous.stop.cancel();
                predecessors.push(previous.task);
            }
            predecessors.extend(registry.lingering.remove(&key));
            predecessors.retain(|task| !task.is_finished());
            (gate, generation, predecessors)
        };
        let start = if predecessors.is_empty() {
            let Some(queue) = presplit.or_else(|| consumer.split_partition_queue(topic, partition))
            else {
                tracing::error!(topic, partition, "cannot split partition queue");
                return;
            };
            Start::Now(queue)
        } else {
            tracing::warn!(
                topic,
                partition,
                "partition re-assigned before its previous task finished; waiting for it"
            );
            // Not split in the pre-callback with a task running; if it was, it goes now, before
            // the wait: the task splits its queue after it.
            drop(presplit);
            Start::After(predecessors)
        };
        let stop = CancellationToken::new();
        let (done_tx, done_rx) = std_mpsc::channel();
        let (stray_tx, stray_rx) = mpsc::unbounded_channel();
        let worker = PartitionWorker {
            topic: topic.to_owned(),
            partition,
            consumer: Arc::downgrade(&consumer),
            shared: self.shared.clone(),
            stop: stop.clone(),
            gate,
            generation,
        };
        let task = self.shared.runtime.spawn(async move {
            crate::telemetry::with_log_batch(worker.run(start, stray_rx)).await;
            let _ = done_tx.send(());
        });
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .running
            .insert(
                key,
                PartitionHandle {
                    stop,
                    done: done_rx,
                    task,
                    stray: stray_tx,
                },
            );
    }
}

fn elements(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

fn elements_with_offsets(tpl: &TopicPartitionList) -> Vec<(String, i32, String)> {
    tpl.elements()
        .iter()
        .map(|e| {
            (
                e.topic().to_owned(),
                e.partition(),
                format!("{:?}", e.offset()),
            )
        })
        .collect()
}

/// Commits the stored offsets synchronously. Nothing stored since the last commit is normal.
fn commit_stored<C: Consumer<ReaderContext> + ?Sized>(consumer: &C, moment: &'static str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::debug!(moment, "stored offsets committed"),
        Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => tracing::debug!(moment, "no new offset to commit"),
        Err(err) => tracing::warn!(moment, error = %err, "offset commit failed"),
    }
}

/// Stops the given partitions and waits (bounded, in total) for their in-flight events. A task
/// still busy at the deadline keeps running until its event ends, fenced off from storing
/// offsets; a new task of its partition waits for it.
fn drain(registry: &Registry, partitions: &[(String, i32)], timeout: Duration) {
    let handles: Vec<_> = {
        let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
        partitions
            .iter()
            .filter_map(|key| registry.running.remove(key).map(|h| (key.clone(), h)))
            .collect()
    };
    for (_, handle) in &handles {
        handle.stop.cancel();
    }
    let deadline = Instant::now() + timeout;
    let mut late = Vec::new();
    for ((topic, partition), handle) in handles {
        let left = deadline.saturating_duration_since(Instant::now());
        match handle.done.recv_timeout(left) {
            // Disconnected: the task is gone without signalling (it panicked).
            Ok(()) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {}
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    topic,
                    partition,
                    "partition did not drain in time; its event keeps running, its offset will not be stored"
                );
                late.push(((topic, partition), handle.task));
            }
        }
    }
    let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
    // Whatever the drained tasks stored is stored now, before the caller commits; nothing they
    // store later is (the partition is no longer ours, or belongs to a newer task).
    for key in partitions {
        if let Some(gate) = registry.gates.get(key) {
            gate.fence();
        }
    }
    registry.lingering.retain(|_, task| !task.is_finished());
    for (key, task) in late {
        // An earlier task of the partition left here was handed to this one at its start.
        registry.lingering.insert(key, task);
    }
}

/// How a partition task gets its queue.
enum Start {
    /// Split before the partition was fetched.
    Now(PartitionQueue),
    /// Earlier tasks of the partition are still running: split once they have ended.
    After(Vec<JoinHandle<()>>),
}

/// A message between receipt and its stored offset.
struct InFlightMessage {
    offset: i64,
    /// Kafka timestamp, ms.
    timestamp: Option<i64>,
    /// The item it changes (`Pipeline::prepare`): messages of one key run in order.
    key: Option<String>,
    payload: Payload,
}

/// A message whose handling ended: `handled` is none when it panicked.
struct Finished {
    message: InFlightMessage,
    handled: Option<Handled>,
}

struct PartitionWorker {
    topic: String,
    partition: i32,
    consumer: Weak<ReaderConsumer>,
    shared: Shared,
    stop: CancellationToken,
    gate: Arc<OffsetGate>,
    /// This task's generation of the partition (see [`OffsetGate`]).
    generation: u64,
}

impl PartitionWorker {
    async fn run(self, start: Start, mut stray: mpsc::UnboundedReceiver<OwnedMessage>) {
        let queue = match start {
            Start::Now(queue) => queue,
            Start::After(predecessors) => {
                // Not cut short by a stop: this task ends after its predecessors, so whoever
                // waits for it waits for them too.
                for predecessor in predecessors {
                    if let Err(err) = predecessor.await {
                        tracing::error!(topic = %self.topic, partition = self.partition, error = %err, "previous partition task failed");
                    }
                }
                if self.stop.is_cancelled() {
                    tracing::debug!(topic = %self.topic, partition = self.partition, "partition revoked before its task started");
                    return;
                }
                let split = self
                    .consumer
                    .upgrade()
                    .and_then(|c| c.split_partition_queue(&self.topic, self.partition));
                let Some(queue) = split else {
                    tracing::error!(topic = %self.topic, partition = self.partition, "cannot split partition queue");
                    return;
                };
                tracing::info!(topic = %self.topic, partition = self.partition, "previous partition task finished; starting");
                queue
            }
        };
        tracing::debug!(topic = %self.topic, partition = self.partition, "partition task started");
        // Key-ordered concurrency (`crate::key_order`): up to `max_in_flight` messages handled
        // concurrently on this task, those of one item in order, and up to
        // `key_order::window(max_in_flight)` between receipt and their stored offset; the offset
        // stored is the highest below which every message is handled.
        let mut order = KeyOrder::new(self.shared.max_in_flight);
        let mut running = FuturesUnordered::new();
        let mut stopping = false;
        loop {
            if stopping && running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                _ = self.stop.cancelled(), if !stopping => stopping = true,
                Some(finished) = running.next(), if !running.is_empty() => {
                    let Finished { message, handled } = finished;
                    let Some(storable) = self.settle(&message, handled) else {
                        // Stopped, exhausted or panicked: not handled, nothing more starts.
                        stopping = true;
                        continue;
                    };
                    let (start, store) = order.finish(message.offset, message.key.as_deref());
                    self.shared.lag.oldest_unhandled(&self.topic, self.partition, order.oldest_unhandled());
                    if !stopping {
                        running.extend(start.into_iter().map(|next| self.handle(next)));
                    }
                    if let Some(offset) = store.filter(|_| storable) {
                        self.store(offset);
                    }
                }
                // The value is copied once, into the payload (`detach` would copy it first).
                received = Self::receive(&queue, &mut stray), if !stopping && order.has_room() => {
                    let message = match received {
                        Ok(Some(message)) => message,
                        Ok(None) => continue,
                        Err(err) => {
                            // The consumer is unusable for good: /live fails, the pod restarts.
                            tracing::error!(topic = %self.topic, partition = self.partition, error = %err, "partition fatal error");
                            self.shared.health.kafka_fatal(err.to_string());
                            stopping = true;
                            continue;
                        }
                    };
                    let message = self.prepare(message);
                    let (offset, timestamp, key) = (message.offset, message.timestamp, message.key.clone());
                    if let Some(start) = order.admit(offset, timestamp, key.as_deref(), message) {
                        running.push(self.handle(start));
                    }
                    self.shared.lag.oldest_unhandled(&self.topic, self.partition, order.oldest_unhandled());
                }
            }
        }
        // The handle goes before the task counts as ended: a successor splits its own only then.
        drop(queue);
        tracing::debug!(topic = %self.topic, partition = self.partition, pending = order.pending(), "partition task stopped");
    }

    /// The next message of the partition (a stray one from the main queue first); `Ok(None)`
    /// after a transient error, `Err` on a fatal one.
    async fn receive(
        queue: &PartitionQueue,
        stray: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    ) -> Result<Option<(i64, Option<i64>, Vec<u8>)>, rdkafka::error::KafkaError> {
        tokio::select! {
            biased;
            Some(message) = stray.recv() => Ok(Some((message.offset(), message.timestamp().to_millis(), value_of(&message)))),
            received = queue.recv() => match received {
                Ok(message) => Ok(Some((message.offset(), message.timestamp().to_millis(), value_of(&message)))),
                Err(err @ rdkafka::error::KafkaError::MessageConsumptionFatal(_)) => Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, "partition error");
                    Ok(None)
                }
            },
        }
    }

    /// A received message with its payload and ordering key.
    fn prepare(&self, (offset, timestamp, value): (i64, Option<i64>, Vec<u8>)) -> InFlightMessage {
        let position = MessagePosition {
            topic: self.topic.clone(),
            partition: self.partition,
            offset,
        };
        let mut payload = Payload::at(value, position);
        // Decoded here, once (handling and its retries reuse it). Decoders never panic (their
        // contract); if one did, the message runs without a key, undecoded, and its handling,
        // which decodes it again under `catch_unwind`, reports the panic.
        let key = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.shared.pipeline.prepare(&mut payload)
        }))
        .unwrap_or(None);
        InFlightMessage {
            offset,
            timestamp,
            key,
            payload,
        }
    }

    /// Handles one message, with retries; a panic is caught and reported as such.
    async fn handle(&self, message: InFlightMessage) -> Finished {
        let s = &self.shared;
        let offset = message.offset;
        if STORES_OFFSETS_BEFORE_HANDLING && s.store_offsets {
            // The negative control (test builds only): the message counts as consumed before
            // it is handled, so a crash from here on loses it.
            self.store(offset);
        }
        s.health.begin(&self.topic, self.partition, offset);
        // A panic while handling must not silently kill this partition's task: it ends the
        // process like exhausted retries (offset not stored), so the restart retries it and
        // an operator can skip it.
        let handled = AssertUnwindSafe(handle_with_retry(
            &s.pipeline,
            &message.payload,
            &s.retry,
            &self.stop,
        ))
        .catch_unwind()
        .await
        .ok();
        s.health.end(&self.topic, self.partition, offset);
        crate::telemetry::flush_log_batch();
        Finished { message, handled }
    }

    /// What a finished handling means: `Some(store)` when the message is fully handled (`store`:
    /// whether its offset may be stored), `None` when it was not (stopped, or fatal: exhausted
    /// retries or a panic, reported to the reader, which stops).
    fn settle(&self, message: &InFlightMessage, handled: Option<Handled>) -> Option<bool> {
        let s = &self.shared;
        let offset = message.offset;
        let fatal = |why: String| {
            let reason = format!("{}:{}:{offset}: {why}", self.topic, self.partition);
            let _ = s.fatal.send(reason);
            None
        };
        match handled {
            Some(Handled::Done(outcome)) => {
                // The durable record of what became of each message (the chaos harness
                // accounts for every offset with it): written before the offset is stored.
                tracing::debug!(
                    target: "message_outcome",
                    topic = %self.topic,
                    partition = self.partition,
                    offset,
                    outcome = %OutcomeSummary(&outcome),
                    "message handled"
                );
                // Every line of this message is written before its offset may be committed.
                crate::telemetry::flush_log_batch();
                Some(s.store_offsets && !STORES_OFFSETS_BEFORE_HANDLING)
            }
            Some(Handled::Stopped) => None,
            Some(Handled::Exhausted(err)) => fatal(err.to_string()),
            None => fatal("panicked while handling the message".into()),
        }
    }

    fn store(&self, offset: i64) {
        let Some(consumer) = self.consumer.upgrade() else {
            return;
        };
        let (topic, partition) = (&self.topic, self.partition);
        // librdkafka stores offset + 1: the next offset to consume.
        let stored = self.gate.store(self.generation, offset, || {
            consumer.store_offset(topic, partition, offset)
        });
        match stored {
            StoreOutcome::Stored => {}
            StoreOutcome::Failed(err) => {
                tracing::warn!(topic = %topic, partition, offset, error = %err, "offset store failed")
            }
            StoreOutcome::Fenced => tracing::info!(
                topic = %topic, partition, offset,
                "offset not stored: the partition was revoked or re-assigned since"
            ),
            StoreOutcome::Behind { stored } => tracing::debug!(
                topic = %topic, partition, offset, stored,
                "offset not stored: a higher one is stored already"
            ),
        }
    }
}

/// A message's value (empty when it has none).
fn value_of<M: Message>(message: &M) -> Vec<u8> {
    message.payload().unwrap_or_default().to_vec()
}

/// What became of a message, one word per changelog: `applied`, `would_apply`,
/// `filtered:<reason>`, `rejected`; or for the whole message `skipped`, `decode_failed`,
/// `discarded`.
struct OutcomeSummary<'a>(&'a MessageOutcome);

impl std::fmt::Display for OutcomeSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            MessageOutcome::Skipped => f.write_str("skipped"),
            MessageOutcome::Undecodable(err) => match err.class() {
                ErrorClass::Discard => f.write_str("discarded"),
                ErrorClass::Skip | ErrorClass::Retry => f.write_str("decode_failed"),
            },
            MessageOutcome::Handled(reports) => {
                for (i, report) in reports.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match &report.decision {
                        Decision::Applied => f.write_str("applied")?,
                        Decision::WouldApply => f.write_str("would_apply")?,
                        Decision::Filtered(reason) => write!(f, "filtered:{}", reason.as_str())?,
                        Decision::Rejected(_) => f.write_str("rejected")?,
                    }
                }
                if reports.is_empty() {
                    f.write_str("no_changelog")?;
                }
                Ok(())
            }
        }
    }
}

/// Why the consumer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// librdkafka refused the configuration or the subscription.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The poll thread could not be spawned.
    #[error("cannot spawn the kafka poll thread: {0}")]
    Thread(#[from] std::io::Error),
    /// A `[kafka.security]` secret file cannot be used.
    #[error(transparent)]
    Security(#[from] SecurityError),
}

/// A subscribed consumer with its partition tasks.
pub struct Reader {
    consumer: Arc<ReaderConsumer>,
    registry: Registry,
    fatal: mpsc::UnboundedReceiver<String>,
    poll_stop: CancellationToken,
    poll_thread: Option<std::thread::JoinHandle<()>>,
    drain_timeout: Duration,
    health: Arc<Health>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// Creates the consumer, subscribes to `topic` and starts polling. Must be called from
    /// within a multi-threaded tokio runtime.
    pub fn start(
        kafka: &KafkaConfig,
        topic: &str,
        pipeline: Arc<Pipeline>,
        retry: RetryConfig,
        health: Arc<Health>,
    ) -> Result<Self, StartError> {
        Self::launch(kafka, Some(topic), pipeline, retry, health)
    }

    /// [`Reader::start`]; without a topic the consumer subscribes to nothing (tests assign
    /// partitions and drive the rebalance hooks themselves).
    fn launch(
        kafka: &KafkaConfig,
        topic: Option<&str>,
        pipeline: Arc<Pipeline>,
        retry: RetryConfig,
        health: Arc<Health>,
    ) -> Result<Self, StartError> {
        let dry_run = pipeline.config().dry_run;
        let flavor = pipeline.config().flavor.clone();
        if STORES_OFFSETS_BEFORE_HANDLING {
            tracing::warn!(
                feature = "negative-control-store-before-handling",
                "NEGATIVE-CONTROL BUILD: this reader stores each offset before its message is \
                 handled, so a crash mid-handling loses the message; a test build for \
                 `cargo xtask chaos --negative-control`, never run it in production"
            );
        }
        let (fatal_tx, fatal_rx) = mpsc::unbounded_channel();
        let registry: Registry = Arc::default();
        let drain_timeout = kafka.drain_timeout;
        let context = ReaderContext {
            consumer: OnceLock::new(),
            pending: Mutex::default(),
            registry: registry.clone(),
            shared: Shared {
                pipeline,
                retry,
                health: health.clone(),
                fatal: fatal_tx,
                runtime: Handle::current(),
                store_offsets: !dry_run,
                lag: Arc::new(Lag::new(flavor)),
                max_in_flight: kafka.max_in_flight,
            },
            drain_timeout,
            oauth: kafka.security.oauth_token_source(),
        };
        tracing::info!(security = %kafka.security.describe(), brokers = %kafka.brokers, "kafka client");
        if kafka.security.protocol.uses_tls() && !kafka.security.endpoint_identification {
            tracing::warn!(
                "kafka.security.endpoint_identification is off: a broker certificate for any \
                 host signed by the CA is accepted"
            );
        }
        let mut config = client_config(kafka)?;
        // The lag gauges' source; a pass-through `statistics.interval.ms` wins (0: no gauges).
        if !kafka.properties.contains_key("statistics.interval.ms") {
            config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        }
        let consumer: Arc<ReaderConsumer> = Arc::new(config.create_with_context(context)?);
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        if let Some(topic) = topic {
            consumer.subscribe(&[topic])?;
        }

        let poll_stop = CancellationToken::new();
        let poll_thread = {
            let consumer = consumer.clone();
            let registry = registry.clone();
            let stop = poll_stop.clone();
            let health = health.clone();
            let runtime = Handle::current();
            std::thread::Builder::new()
                .name("kafka-poll".into())
                .spawn(move || runtime.block_on(poll_loop(consumer, registry, health, stop)))?
        };
        Ok(Self {
            consumer,
            registry,
            fatal: fatal_rx,
            poll_stop,
            poll_thread: Some(poll_thread),
            drain_timeout,
            health,
        })
    }

    /// Runs until `shutdown` is cancelled or a message exhausts its retries, then drains every
    /// partition, commits, and leaves the group.
    pub async fn run(mut self, shutdown: CancellationToken) -> StopReason {
        let reason = tokio::select! {
            _ = shutdown.cancelled() => StopReason::Requested,
            Some(fatal) = self.fatal.recv() => StopReason::RetriesExhausted(fatal),
        };
        tracing::info!(?reason, "stopping consumer");
        self.health.stopping();
        self.stop().await;
        reason
    }

    async fn stop(mut self) {
        let registry = self.registry.clone();
        let consumer = self.consumer.clone();
        let timeout = self.drain_timeout;
        let poll_stop = self.poll_stop.clone();
        let poll_thread = self.poll_thread.take();
        let drained = tokio::task::spawn_blocking(move || {
            let keys: Vec<_> = registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .running
                .keys()
                .cloned()
                .collect();
            drain(&registry, &keys, timeout);
            commit_stored(consumer.as_ref(), "shutdown");
            poll_stop.cancel();
            if let Some(thread) = poll_thread {
                let _ = thread.join();
            }
            consumer.unsubscribe();
        })
        .await;
        if let Err(err) = drained {
            tracing::error!(error = %err, "shutdown task failed");
        }
        drop(self);
    }
}

/// Polls the main queue: serves rebalance callbacks and errors, and hands any message that
/// reached the main queue before its partition queue was split to that partition's task.
async fn poll_loop(
    consumer: Arc<ReaderConsumer>,
    registry: Registry,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    loop {
        health.polled();
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_millis(500), consumer.recv()) => r,
        };
        match received {
            Err(_elapsed) => {}
            Ok(Ok(message)) => {
                let key = (message.topic().to_owned(), message.partition());
                let message = message.detach();
                let registry = registry.lock().unwrap_or_else(|e| e.into_inner());
                match registry.running.get(&key) {
                    Some(handle) => {
                        tracing::warn!(
                            topic = %key.0, partition = key.1, offset = message.offset(),
                            "message reached the main queue; handing it to its partition"
                        );
                        let _ = handle.stray.send(message);
                    }
                    None => tracing::error!(
                        topic = %key.0, partition = key.1, offset = message.offset(),
                        "message for an unassigned partition; it will be redelivered"
                    ),
                }
            }
            Ok(Err(err @ rdkafka::error::KafkaError::MessageConsumptionFatal(_))) => {
                tracing::error!(error = %err, "consumer fatal error; /live now fails");
                health.kafka_fatal(err.to_string());
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "consumer error"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rdkafka::Offset;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use thirdparty_core::testkit::InMemoryCaseApi;
    use thirdparty_core::{
        CaseApi, CaseApiError, Changelog, ChangelogType, DecodeError, Decoder, FilterReason,
        Filterer, PreFilterContext, ProcessOutcome, Processor,
    };

    use super::*;

    const TOPIC: &str = "drain";
    const GROUP: &str = "drain-test";
    /// Longer than the drain timeout by far: the revoke gives up on it.
    const SLOW: Duration = Duration::from_millis(1_500);

    /// One changelog per message, named by the message value.
    #[derive(Debug)]
    struct ValueDecoder;

    impl Decoder for ValueDecoder {
        fn integration(&self) -> &'static str {
            "test"
        }

        fn decode(&self, value: &[u8]) -> Result<Vec<Changelog>, DecodeError> {
            Ok(vec![Changelog::new(
                "test",
                1,
                ChangelogType::UpdateTitle,
                String::from_utf8_lossy(value),
                time::OffsetDateTime::UNIX_EPOCH,
            )])
        }
    }

    /// What the handler saw.
    #[derive(Debug, Default)]
    struct Seen {
        handled: Vec<String>,
        slow_started: bool,
        slow_finished: bool,
    }

    /// Filters every changelog out; the first time it sees the value `slow` it takes [`SLOW`].
    #[derive(Debug, Default)]
    struct SlowOnce {
        slowed: AtomicBool,
        seen: Mutex<Seen>,
    }

    #[async_trait::async_trait]
    impl Filterer for SlowOnce {
        async fn pre_filter(
            &self,
            changelog: &mut Changelog,
            _ctx: &PreFilterContext<'_>,
        ) -> Result<Option<FilterReason>, CaseApiError> {
            let value = changelog.third_party_id.clone();
            if value == "slow" && !self.slowed.swap(true, Ordering::SeqCst) {
                self.seen.lock().unwrap().slow_started = true;
                tokio::time::sleep(SLOW).await;
                self.seen.lock().unwrap().slow_finished = true;
            }
            self.seen.lock().unwrap().handled.push(value);
            Ok(Some(FilterReason::IntegrationDisabled))
        }

        fn filter(
            &self,
            _changelog: &Changelog,
            _case: &thirdparty_core::Case,
            _settings: &thirdparty_core::SyncSettings,
        ) -> Option<FilterReason> {
            None
        }
    }

    #[derive(Debug)]
    struct NeverProcesses;

    #[async_trait::async_trait]
    impl Processor for NeverProcesses {
        async fn process(
            &self,
            _changelog: &Changelog,
            _case: &thirdparty_core::Case,
            _settings: &thirdparty_core::SyncSettings,
            _api: &dyn CaseApi,
        ) -> Result<ProcessOutcome, CaseApiError> {
            Ok(ProcessOutcome::Filtered(FilterReason::IntegrationDisabled))
        }
    }

    fn partition_list(partition: i32) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(TOPIC, partition);
        tpl
    }

    /// What librdkafka's rebalance does for a cooperative assignment: the hooks around
    /// `incremental_assign`.
    fn assign(consumer: &ReaderConsumer, partition: i32) {
        let partitions = [(TOPIC.to_owned(), partition)];
        consumer.context().prepare_assign(&partitions);
        consumer
            .incremental_assign(&partition_list(partition))
            .unwrap();
        consumer.context().assigned(&partitions);
    }

    /// What librdkafka's rebalance does for a cooperative revoke.
    fn revoke(consumer: &ReaderConsumer, partition: i32) {
        consumer
            .context()
            .revoke(consumer, &[(TOPIC.to_owned(), partition)]);
        consumer
            .incremental_unassign(&partition_list(partition))
            .unwrap();
    }

    async fn produce(producer: &FutureProducer, value: &str) {
        producer
            .send(
                FutureRecord::<(), _>::to(TOPIC).partition(0).payload(value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    /// Samples the group's committed offset of partition 0 until `stop`; every value seen, in
    /// order.
    fn sample_committed(
        bootstrap: String,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<Vec<i64>> {
        std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", GROUP)
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut seen: Vec<i64> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(committed) =
                    consumer.committed_offsets(partition_list(0), Duration::from_secs(2))
                    && let Some(Offset::Offset(o)) =
                        committed.find_partition(TOPIC, 0).map(|e| e.offset())
                    && seen.last() != Some(&o)
                {
                    seen.push(o);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    }

    async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done() {
            if Instant::now() > deadline {
                eprintln!("gave up waiting for {what} after {timeout:?}");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The group's committed offset of partition 0, if any.
    fn committed_offset(bootstrap: &str) -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let committed = consumer
            .committed_offsets(partition_list(0), Duration::from_secs(5))
            .unwrap();
        match committed.find_partition(TOPIC, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        }
    }

    /// While a message is being handled its offset is not committed (at-least-once): a crash
    /// then redelivers it. The negative-control build (feature
    /// `negative-control-store-before-handling`) stores it before handling instead, so there it
    /// is committed mid-handling: the loss the chaos harness must catch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_offset_is_committed_only_once_its_message_is_handled() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic(TOPIC, 1, 1).unwrap();
        let bootstrap = cluster.bootstrap_servers();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "0")
            .create()
            .unwrap();
        produce(&producer, "slow").await;

        let filterer = Arc::new(SlowOnce::default());
        let pipeline = Arc::new(
            Pipeline::builder(
                Arc::new(ValueDecoder),
                filterer.clone(),
                Arc::new(NeverProcesses),
                Arc::new(InMemoryCaseApi::new()),
            )
            .build(),
        );
        let kafka = KafkaConfig {
            brokers: bootstrap.clone(),
            group_id: GROUP.into(),
            auto_offset_reset: crate::config::OffsetReset::Earliest,
            auto_commit_interval: Duration::from_millis(50),
            properties: [("fetch.wait.max.ms".to_owned(), "10".to_owned())].into(),
            ..KafkaConfig::default()
        };
        let reader = Reader::launch(
            &kafka,
            None,
            pipeline,
            RetryConfig::default(),
            Arc::new(Health::new(Duration::from_secs(60))),
        )
        .unwrap();
        let consumer = reader.consumer.clone();
        let c = consumer.clone();
        tokio::task::spawn_blocking(move || assign(&c, 0))
            .await
            .unwrap();
        let seen = || filterer.seen.lock().unwrap();
        assert!(
            wait_for("the slow message", Duration::from_secs(10), || seen()
                .slow_started)
            .await
        );
        // Several auto-commit intervals while the message is in its handler.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let b = bootstrap.clone();
        let mid_handling = tokio::task::spawn_blocking(move || committed_offset(&b))
            .await
            .unwrap();
        assert!(
            !seen().slow_finished,
            "the slow message was handled before the check: nothing tested"
        );
        let expected = STORES_OFFSETS_BEFORE_HANDLING.then_some(1);
        assert_eq!(
            mid_handling, expected,
            "committed offset while the message is being handled (stores before handling: \
             {STORES_OFFSETS_BEFORE_HANDLING})"
        );

        assert!(
            wait_for("the slow message to finish", SLOW * 4, || seen()
                .slow_finished)
            .await
        );
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert_eq!(reader.run(shutdown).await, StopReason::Requested);
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .unwrap();
        let done = tokio::task::spawn_blocking(move || committed_offset(&bootstrap))
            .await
            .unwrap();
        assert_eq!(done, Some(1), "handled: committed either way");
    }

    #[test]
    fn offset_gate_refuses_old_generations_and_lower_offsets() {
        let gate = OffsetGate::default();
        let ok = || Ok::<(), ()>(());
        let first = gate.fence();
        assert_eq!(gate.store(first, 5, ok), StoreOutcome::Stored);
        assert_eq!(gate.store(first, 5, ok), StoreOutcome::Behind { stored: 5 });
        assert_eq!(gate.store(first, 4, ok), StoreOutcome::Behind { stored: 5 });
        // A failed store is not counted as stored.
        assert_eq!(gate.store(first, 6, || Err(())), StoreOutcome::Failed(()));
        assert_eq!(gate.store(first, 6, ok), StoreOutcome::Stored);

        // A drain or a new task: the earlier generation stores nothing any more, the new one
        // nothing at or below what was stored.
        let second = gate.fence();
        assert_eq!(gate.store(first, 7, ok), StoreOutcome::Fenced);
        assert_eq!(
            gate.store(second, 3, ok),
            StoreOutcome::Behind { stored: 6 }
        );
        assert_eq!(gate.store(second, 7, ok), StoreOutcome::Stored);
    }

    /// A revoke gives up on a handler slower than `drain_timeout_ms`, and the partition comes
    /// straight back to the same reader: every message, including those produced after the slow
    /// handler finished, is handled, and the committed offset never goes backwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reassigned_partition_after_slow_drain_neither_stalls_nor_rewinds() {
        // The reader's lines, shown when the test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("reader_runtime=debug")
            .with_test_writer()
            .try_init();
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic(TOPIC, 1, 1).unwrap();
        let bootstrap = cluster.bootstrap_servers();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "0")
            .create()
            .unwrap();
        for value in ["slow", "1", "2"] {
            produce(&producer, value).await;
        }

        let filterer = Arc::new(SlowOnce::default());
        let pipeline = Arc::new(
            Pipeline::builder(
                Arc::new(ValueDecoder),
                filterer.clone(),
                Arc::new(NeverProcesses),
                Arc::new(InMemoryCaseApi::new()),
            )
            .build(),
        );
        let kafka = KafkaConfig {
            brokers: bootstrap.clone(),
            group_id: GROUP.into(),
            auto_offset_reset: crate::config::OffsetReset::Earliest,
            auto_commit_interval: Duration::from_millis(50),
            drain_timeout: Duration::from_millis(200),
            properties: [("fetch.wait.max.ms".to_owned(), "10".to_owned())].into(),
            ..KafkaConfig::default()
        };
        let reader = Reader::launch(
            &kafka,
            None,
            pipeline,
            RetryConfig::default(),
            Arc::new(Health::new(Duration::from_secs(60))),
        )
        .unwrap();
        let consumer = reader.consumer.clone();
        let sampling = Arc::new(AtomicBool::new(false));
        let sampler = sample_committed(bootstrap.clone(), sampling.clone());

        // The rebalance hooks block (the revoke drains): off the async workers, like the poll
        // thread they run on.
        let c = consumer.clone();
        tokio::task::spawn_blocking(move || assign(&c, 0))
            .await
            .unwrap();
        let seen = || filterer.seen.lock().unwrap();
        assert!(
            wait_for("the slow message", Duration::from_secs(10), || seen()
                .slow_started)
            .await
        );
        let c = consumer.clone();
        tokio::task::spawn_blocking(move || {
            revoke(&c, 0);
            assign(&c, 0);
        })
        .await
        .unwrap();
        assert!(
            !seen().slow_finished,
            "the slow message was handled before the re-assignment: nothing left to test"
        );

        // The revoked task finishes its slow message only now; then more messages arrive.
        assert!(
            wait_for("the slow message to finish", SLOW * 4, || seen()
                .slow_finished)
            .await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        for value in ["3", "4", "5"] {
            produce(&producer, value).await;
        }
        let expected: BTreeSet<String> = ["slow", "1", "2", "3", "4", "5"]
            .into_iter()
            .map(String::from)
            .collect();
        let all_handled = wait_for("every message", Duration::from_secs(10), || {
            expected.is_subset(&seen().handled.iter().cloned().collect())
        })
        .await;
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert_eq!(reader.run(shutdown).await, StopReason::Requested);
        // Closing the consumer commits what is stored: that too must not go backwards.
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sampling.store(true, Ordering::SeqCst);
        let committed = sampler.join().unwrap();

        let handled = seen().handled.clone();
        let rewound = committed.windows(2).any(|w| w[1] < w[0]);
        assert!(
            all_handled && !rewound && committed.last() == Some(&6),
            "handled {handled:?}; committed offsets over time {committed:?} \
             (every message must be handled, the committed offset must never decrease and \
             must end at 6)"
        );
    }
}
