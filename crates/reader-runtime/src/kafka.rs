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

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientContext, TopicPartitionList};
use std::panic::AssertUnwindSafe;
use thirdparty_core::{Decision, ErrorClass, MessageOutcome, MessagePosition, Payload, Pipeline};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{KafkaConfig, RetryConfig};
use crate::health::Health;
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

/// The client settings: user properties first, then the safety-critical keys (which win).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("auto.offset.reset", &kafka.auto_offset_reset)
        .set("enable.auto.commit", "true")
        .set(
            "auto.commit.interval.ms",
            kafka.auto_commit_interval_ms.to_string(),
        )
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.partition.eof", "false")
        .set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// Why the consumer stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A shutdown was requested (signal): exit 0.
    Requested,
    /// A message exhausted its retries: exit non-zero, its offset not stored.
    RetriesExhausted(String),
}

/// A running partition task.
struct PartitionHandle {
    stop: CancellationToken,
    done: std_mpsc::Receiver<()>,
    stray: mpsc::UnboundedSender<OwnedMessage>,
}

type Registry = Arc<Mutex<HashMap<(String, i32), PartitionHandle>>>;

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
}

/// The consumer context: rebalance callbacks (run on the poll thread).
pub struct ReaderContext {
    consumer: OnceLock<Weak<ReaderConsumer>>,
    /// Queues split in the assign pre-callback, started in the post-callback.
    pending: Mutex<HashMap<(String, i32), PartitionQueue>>,
    registry: Registry,
    shared: Shared,
    drain_timeout: Duration,
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
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        metrics::counter!("dd.case.kafka_consumer.client_error", "flavor" => self.shared.pipeline.config().flavor.clone())
            .increment(1);
        tracing::warn!(error = %error, reason, "kafka client error");
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
    }

    /// Before librdkafka starts fetching newly assigned partitions: split their queues.
    fn prepare_assign(&self, partitions: &[(String, i32)]) {
        // Split each new partition's queue before librdkafka starts fetching it, so no message
        // of it can reach the main queue (the split marks the queue as application-forwarded,
        // which the assignment keeps).
        for (topic, partition) in partitions {
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
        let presplit = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(topic.to_owned(), partition));
        let Some(queue) = presplit.or_else(|| consumer.split_partition_queue(topic, partition))
        else {
            tracing::error!(topic, partition, "cannot split partition queue");
            return;
        };
        let stop = CancellationToken::new();
        let (done_tx, done_rx) = std_mpsc::channel();
        let (stray_tx, stray_rx) = mpsc::unbounded_channel();
        let handle = PartitionHandle {
            stop: stop.clone(),
            done: done_rx,
            stray: stray_tx,
        };
        let previous = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_owned(), partition), handle);
        if let Some(previous) = previous {
            previous.stop.cancel();
        }
        let worker = PartitionWorker {
            topic: topic.to_owned(),
            partition,
            consumer: Arc::downgrade(&consumer),
            shared: self.shared.clone(),
            stop,
        };
        self.shared.runtime.spawn(async move {
            crate::telemetry::with_log_batch(worker.run(queue, stray_rx)).await;
            let _ = done_tx.send(());
        });
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

/// Stops the given partitions and waits (bounded, in total) for their in-flight events.
fn drain(registry: &Registry, partitions: &[(String, i32)], timeout: Duration) {
    let handles: Vec<_> = {
        let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
        partitions
            .iter()
            .filter_map(|key| registry.remove(key).map(|h| (key.clone(), h)))
            .collect()
    };
    for (_, handle) in &handles {
        handle.stop.cancel();
    }
    let deadline = Instant::now() + timeout;
    for ((topic, partition), handle) in handles {
        let left = deadline.saturating_duration_since(Instant::now());
        if handle.done.recv_timeout(left).is_err() {
            tracing::warn!(topic, partition, "partition did not drain in time");
        }
    }
}

struct PartitionWorker {
    topic: String,
    partition: i32,
    consumer: Weak<ReaderConsumer>,
    shared: Shared,
    stop: CancellationToken,
}

impl PartitionWorker {
    async fn run(self, queue: PartitionQueue, mut stray: mpsc::UnboundedReceiver<OwnedMessage>) {
        tracing::debug!(topic = %self.topic, partition = self.partition, "partition task started");
        loop {
            // The value is copied once, into the payload (`detach` would copy it first).
            let (offset, value) = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                Some(message) = stray.recv() => (message.offset(), value_of(&message)),
                received = queue.recv() => match received {
                    Ok(message) => (message.offset(), value_of(&message)),
                    Err(err) => {
                        tracing::warn!(topic = %self.topic, partition = self.partition, error = %err, "partition error");
                        continue;
                    }
                },
            };
            if !self.handle(offset, value).await {
                break;
            }
        }
        tracing::debug!(topic = %self.topic, partition = self.partition, "partition task stopped");
    }

    /// Handles the message at `offset`; false when the task must stop.
    async fn handle(&self, offset: i64, value: Vec<u8>) -> bool {
        let payload = Payload {
            value,
            position: Some(MessagePosition {
                topic: self.topic.clone(),
                partition: self.partition,
                offset,
            }),
        };
        let s = &self.shared;
        s.health.begin(&self.topic, self.partition);
        // A panic while handling must not silently kill this partition's task: it ends the
        // process like exhausted retries (offset not stored), so the restart retries it and
        // an operator can skip it.
        let handled = AssertUnwindSafe(handle_with_retry(
            &s.pipeline,
            &payload,
            &s.retry,
            &self.stop,
        ))
        .catch_unwind()
        .await;
        s.health.end(&self.topic, self.partition);
        crate::telemetry::flush_log_batch();
        let fatal = |why: String| {
            let reason = format!("{}:{}:{offset}: {why}", self.topic, self.partition);
            let _ = s.fatal.send(reason);
            false
        };
        match handled {
            Ok(Handled::Done(outcome)) => {
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
                if s.store_offsets {
                    self.store(offset);
                }
                true
            }
            Ok(Handled::Stopped) => false,
            Ok(Handled::Exhausted(err)) => fatal(err.to_string()),
            Err(_) => fatal("panicked while handling the message".into()),
        }
    }

    fn store(&self, offset: i64) {
        let Some(consumer) = self.consumer.upgrade() else {
            return;
        };
        // librdkafka stores offset + 1: the next offset to consume.
        if let Err(err) = consumer.store_offset(&self.topic, self.partition, offset) {
            tracing::warn!(topic = %self.topic, partition = self.partition, offset, error = %err, "offset store failed");
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
        let (fatal_tx, fatal_rx) = mpsc::unbounded_channel();
        let registry: Registry = Arc::default();
        let drain_timeout = Duration::from_millis(kafka.drain_timeout_ms);
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
            },
            drain_timeout,
        };
        let consumer: Arc<ReaderConsumer> =
            Arc::new(client_config(kafka).create_with_context(context)?);
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
                match registry.get(&key) {
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
            Ok(Err(err)) => tracing::warn!(error = %err, "consumer error"),
        }
    }
}
