//! Handling one message with exponential backoff and jitter on retry-class errors.

use std::time::Duration;

use thirdparty_core::{HandleError, MessageOutcome, Payload, Pipeline};
use tokio_util::sync::CancellationToken;

use crate::config::RetryConfig;

/// How handling one message ended.
#[derive(Debug)]
pub enum Handled {
    /// The message may be acknowledged (its offset stored).
    Done(MessageOutcome),
    /// A stop was requested while backing off: the message was not handled, do not store it.
    Stopped,
    /// Every try failed with a retry-class error: do not store; the process must exit non-zero.
    Exhausted(HandleError),
}

/// The delay before retry number `attempt` (1-based): `initial * 2^(attempt-1)`, capped, with
/// full jitter in its upper half so readers restarted together do not retry in lockstep.
pub fn backoff(config: &RetryConfig, attempt: u32) -> Duration {
    let exp = config
        .initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(config.max_backoff);
    let half = u64::try_from(capped.as_millis() / 2).unwrap_or(u64::MAX);
    Duration::from_millis(half + fastrand::u64(0..=half.max(1)))
}

/// Handles `payload`, retrying retry-class errors with backoff until it succeeds, `stop` is
/// cancelled, or the retries are exhausted.
pub async fn handle_with_retry(
    pipeline: &Pipeline,
    payload: &Payload,
    config: &RetryConfig,
    stop: &CancellationToken,
) -> Handled {
    let mut attempt = 0;
    loop {
        let handled = pipeline.handle(payload).await;
        // What this attempt logged goes out now, not when the message is done.
        crate::telemetry::flush_log_batch();
        let err = match handled {
            Ok(outcome) => return Handled::Done(outcome),
            Err(err) => err,
        };
        if attempt >= config.max_retries {
            tracing::error!(error = %err, attempts = attempt + 1, "retries exhausted");
            pipeline.telemetry().retries_exhausted(&err);
            return Handled::Exhausted(err);
        }
        pipeline.telemetry().retry_attempt(&err);
        attempt += 1;
        let delay = backoff(config, attempt);
        tracing::warn!(error = %err, attempt, delay_ms = delay.as_millis() as u64, "backing off");
        crate::telemetry::flush_log_batch();
        tokio::select! {
            _ = stop.cancelled() => return Handled::Stopped,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_is_capped_and_jittered() {
        let c = RetryConfig {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..100 {
            let d1 = backoff(&c, 1).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            let d3 = backoff(&c, 3).as_millis();
            assert!((200..=400).contains(&d3), "{d3}");
            let d10 = backoff(&c, 10).as_millis();
            assert!((500..=1_000).contains(&d10), "{d10}");
            assert!(backoff(&c, u32::MAX).as_millis() <= 1_000);
        }
    }
}
