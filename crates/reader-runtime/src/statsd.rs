//! The DogStatsD sink: metrics leave in datagrams of at most [`DATAGRAM_BYTES`], at the latest
//! [`FLUSH_INTERVAL`] after they were recorded, and before the process exits ([`flush`]).
//!
//! The exporter's default sink buffers 256 bytes and sends only when the buffer fills: a quiet
//! reader held its last metrics for ever, and a process exiting on exhausted retries took its
//! `retries` count with it. Here a flusher thread empties the buffer every second, and the exit
//! paths wait for the queue to drain and flush once more.

use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cadence::{BufferedUdpMetricSink, MetricSink, QueuingMetricSink};

/// Largest datagram: what the Datadog Agent reads by default and what fits an Ethernet MTU.
pub const DATAGRAM_BYTES: usize = 1432;
/// Longest time a recorded metric waits in the buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Metrics queued for the sending thread at most; beyond, new ones are dropped.
const QUEUE_CAPACITY: usize = 50_000;

/// The installed sink, for [`flush`].
static SINK: OnceLock<Arc<QueuingMetricSink>> = OnceLock::new();

/// A sink the exporter owns while [`flush`] and the flusher thread share it.
pub(crate) struct SharedSink(Arc<QueuingMetricSink>);

impl MetricSink for SharedSink {
    fn emit(&self, metric: &str) -> std::io::Result<usize> {
        self.0.emit(metric)
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Builds the sink towards `host:port` and starts its flusher thread.
pub(crate) fn sink(host: &str, port: u16) -> std::io::Result<SharedSink> {
    let target = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host}:{port} resolves to no address"),
        )
    })?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local)?;
    socket.set_nonblocking(true)?;
    let buffered = BufferedUdpMetricSink::with_capacity(target, socket, DATAGRAM_BYTES)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let queue = Arc::new(QueuingMetricSink::with_capacity(buffered, QUEUE_CAPACITY));
    let _ = SINK.set(queue.clone());
    let flusher = Arc::downgrade(&queue);
    std::thread::Builder::new()
        .name("statsd-flush".into())
        .spawn(move || {
            while let Some(queue) = flusher.upgrade() {
                // A failed send is the agent's absence: UDP loses it either way.
                let _ = queue.flush();
                drop(queue);
                std::thread::sleep(FLUSH_INTERVAL);
            }
        })?;
    Ok(SharedSink(queue))
}

/// Sends what is recorded so far: waits (up to `timeout`) for the queue to reach the buffer,
/// then flushes it. Called before the process exits; does nothing without DogStatsD.
pub fn flush(timeout: Duration) {
    let Some(queue) = SINK.get() else {
        return;
    };
    let deadline = Instant::now() + timeout;
    while queue.queued() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = queue.flush();
}
