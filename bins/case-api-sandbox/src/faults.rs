//! Fault injection for tests: fail the next N matching calls with a status, lose the replies of
//! the next N matching calls after handling them, add latency.
//!
//! Every `case.v1` handler calls [`Faults::check`] first and [`Faults::after`] once its store
//! call succeeded (the admin and health services never do). A rule's method is a bare method
//! name (`GetCase`), a full path (`/case.v1.CaseService/GetCase`) or `*` (any `case.v1` method).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::{Code, Status};

#[derive(Debug, Clone)]
struct FaultRule {
    method: String,
    code: Code,
    remaining: u32,
    /// A timed rule fails every matching call until this instant (`remaining` is unused).
    until: Option<Instant>,
    message: String,
    /// Applied after handling ([`Faults::after`]), not before ([`Faults::check`]).
    lose_reply: bool,
}

#[derive(Debug, Default)]
struct State {
    faults: VecDeque<FaultRule>,
    latency: HashMap<String, Duration>,
    calls: HashMap<String, u64>,
    /// Replies lost after handling, per full method path.
    lost_replies: HashMap<String, u64>,
}

impl State {
    /// Drops the timed rules that ended, then consumes one call of the oldest live rule of the
    /// kind (`lose_reply`) that matches `path`: its status.
    fn take(&mut self, path: &str, lose_reply: bool) -> Option<Status> {
        let now = Instant::now();
        self.faults
            .retain(|r| r.until.is_none_or(|until| until > now));
        let i = self
            .faults
            .iter()
            .position(|r| r.lose_reply == lose_reply && matches(&r.method, path))?;
        let rule = self.faults.get_mut(i)?;
        let status = Status::new(rule.code, rule.message.clone());
        rule.remaining = rule.remaining.saturating_sub(1);
        if rule.until.is_none() && rule.remaining == 0 {
            self.faults.remove(i);
        }
        Some(status)
    }
}

/// The fault and latency rules of one server.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

fn matches(rule: &str, path: &str) -> bool {
    rule == "*" || rule == path || path.rsplit('/').next() == Some(rule)
}

/// `message`, or when it is empty a default naming the injection.
fn default_message(message: &str, what: &str, code: Code, method: &str) -> String {
    if message.is_empty() {
        format!("{what} ({code:?}) on {method}")
    } else {
        message.to_owned()
    }
}

impl Faults {
    /// Fails the next `count` calls matching `method` with `code`.
    pub fn inject(&self, method: &str, code: Code, count: u32, message: &str) {
        let message = default_message(message, "injected fault", code, method);
        self.push(method, code, Some(count), None, message, false);
    }

    /// Fails every call matching `method` with `code` for `duration` from now (an outage).
    pub fn inject_for(&self, method: &str, code: Code, duration: Duration, message: &str) {
        let message = default_message(message, "injected outage", code, method);
        self.push(method, code, None, Some(duration), message, false);
    }

    /// Loses the replies of the next `count` calls matching `method` that are handled
    /// successfully: their writes commit, then they fail with `code` ([`Faults::after`]).
    pub fn lose_replies(&self, method: &str, code: Code, count: u32, message: &str) {
        let message = default_message(message, "injected lost reply", code, method);
        self.push(method, code, Some(count), None, message, true);
    }

    /// Loses the reply of every call matching `method` that is handled successfully for
    /// `duration` from now: their writes commit, then they fail with `code`.
    pub fn lose_replies_for(&self, method: &str, code: Code, duration: Duration, message: &str) {
        let message = default_message(message, "injected lost replies", code, method);
        self.push(method, code, None, Some(duration), message, true);
    }

    fn push(
        &self,
        method: &str,
        code: Code,
        count: Option<u32>,
        duration: Option<Duration>,
        message: String,
        lose_reply: bool,
    ) {
        self.lock().faults.push_back(FaultRule {
            method: method.to_owned(),
            code,
            remaining: count.unwrap_or(0),
            until: duration.map(|d| Instant::now() + d),
            message,
            lose_reply,
        });
    }

    /// Calls per full method path that reached a handler (after authentication).
    pub fn call_counts(&self) -> HashMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Replies lost after handling ([`Faults::after`]) per full method path.
    pub fn lost_reply_counts(&self) -> HashMap<String, u64> {
        self.lock().lost_replies.clone()
    }

    /// How many replies of calls matching `method` (a name, a full path or `*`) were lost after
    /// handling.
    pub fn lost_replies(&self, method: &str) -> u64 {
        self.lock()
            .lost_replies
            .iter()
            .filter(|(path, _)| matches(method, path))
            .map(|(_, n)| n)
            .sum()
    }

    /// Delays every later call matching `method` (zero removes the rule).
    pub fn set_latency(&self, method: &str, delay: Duration) {
        let mut state = self.lock();
        if delay.is_zero() {
            state.latency.remove(method);
        } else {
            state.latency.insert(method.to_owned(), delay);
        }
    }

    /// How many calls matching `method` (a name, a full path or `*`) reached a handler (after
    /// authentication), faulted or not.
    pub fn calls(&self, method: &str) -> u64 {
        self.lock()
            .calls
            .iter()
            .filter(|(path, _)| matches(method, path))
            .map(|(_, n)| n)
            .sum()
    }

    /// Removes every rule (call and lost-reply counts are kept).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.faults.clear();
        state.latency.clear();
    }

    /// Applies the rules to a call of `path` (`/package.Service/Method`) before it is handled:
    /// waits for its latency, then fails it if a fault rule matches (consuming one of that
    /// rule's calls). Lost-reply rules are left to [`Faults::after`].
    ///
    /// The latency is an async sleep taken after the rules' lock is released and before the
    /// call reaches the store, so concurrent calls wait out their latency together: 64 calls
    /// with 5 ms each take about 5 ms, not 320 ms.
    pub async fn check(&self, path: &str) -> Result<(), Status> {
        let (delay, fault) = {
            let mut state = self.lock();
            *state.calls.entry(path.to_owned()).or_default() += 1;
            let method = path.rsplit('/').next().unwrap_or(path);
            let delay = state
                .latency
                .get(path)
                .or_else(|| state.latency.get(method))
                .or_else(|| state.latency.get("*"))
                .copied();
            (delay, state.take(path, false))
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match fault {
            Some(status) => {
                tracing::info!(path, code = ?status.code(), "injected fault");
                Err(status)
            }
            None => Ok(()),
        }
    }

    /// Applies the lost-reply rules to a call of `path` that was handled successfully (its
    /// writes committed): the status to fail it with instead of its reply, if such a rule
    /// matches (consuming one of that rule's calls; counted in [`Faults::lost_replies`]).
    pub fn after(&self, path: &str) -> Option<Status> {
        let status = {
            let mut state = self.lock();
            let status = state.take(path, true)?;
            *state.lost_replies.entry(path.to_owned()).or_default() += 1;
            status
        };
        tracing::info!(path, code = ?status.code(), "injected lost reply (the call was handled)");
        Some(status)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = "/case.v1.CaseService/GetCase";
    const UPDATE: &str = "/case.v1.CaseService/UpdateCase";

    #[tokio::test]
    async fn faults_fail_exactly_the_next_n_matching_calls() {
        let faults = Faults::default();
        faults.inject("GetCase", Code::Unavailable, 2, "");
        assert!(
            faults.check(UPDATE).await.is_ok(),
            "other methods unaffected"
        );
        assert_eq!(
            faults.check(GET).await.unwrap_err().code(),
            Code::Unavailable
        );
        assert_eq!(
            faults.check(GET).await.unwrap_err().code(),
            Code::Unavailable
        );
        assert!(faults.check(GET).await.is_ok());

        faults.inject("*", Code::Internal, 1, "boom");
        let err = faults.check(UPDATE).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::Internal, "boom"));
        faults.inject(GET, Code::Aborted, 5, "");
        faults.clear();
        assert!(faults.check(GET).await.is_ok());
        assert_eq!(faults.calls("GetCase"), 4);
        assert_eq!(faults.calls(UPDATE), 2);
        assert_eq!(faults.calls("*"), 6);
    }

    #[tokio::test]
    async fn a_timed_outage_fails_every_matching_call_until_it_ends() {
        let faults = Faults::default();
        faults.inject_for("*", Code::Unavailable, Duration::from_millis(200), "");
        for _ in 0..5 {
            assert_eq!(
                faults.check(GET).await.unwrap_err().code(),
                Code::Unavailable
            );
        }
        std::thread::sleep(Duration::from_millis(250));
        assert!(faults.check(GET).await.is_ok(), "the outage is over");
        assert_eq!(faults.call_counts().get(GET), Some(&6));
    }

    #[tokio::test]
    async fn lost_replies_apply_after_handling_not_before() {
        let faults = Faults::default();
        faults.lose_replies("UpdateCase", Code::Unavailable, 2, "");
        faults.inject("UpdateCase", Code::Aborted, 1, "");
        assert!(faults.after(GET).is_none(), "other methods unaffected");
        // The call is not refused before handling by a lost-reply rule: the plain fault, added
        // later, is the one `check` finds.
        assert_eq!(
            faults.check(UPDATE).await.unwrap_err().code(),
            Code::Aborted
        );
        assert!(faults.check(UPDATE).await.is_ok());
        let lost = faults.after(UPDATE).unwrap();
        assert_eq!(lost.code(), Code::Unavailable);
        assert_eq!(
            lost.message(),
            "injected lost reply (Unavailable) on UpdateCase"
        );
        assert!(faults.check(UPDATE).await.is_ok());
        assert_eq!(
            faults.after(UPDATE).map(|s| s.code()),
            Some(Code::Unavailable)
        );
        assert!(
            faults.after(UPDATE).is_none(),
            "the rule's two calls are used up"
        );
        assert_eq!(faults.lost_replies("UpdateCase"), 2);
        assert_eq!(faults.lost_replies("*"), 2);
        assert_eq!(faults.lost_reply_counts().get(UPDATE), Some(&2));
        assert_eq!(faults.lost_reply_counts().get(GET), None);
        assert_eq!(
            faults.calls(UPDATE),
            3,
            "every call counted once, by `check`"
        );

        // The oldest matching rule goes first; `clear` removes them but keeps the counts.
        faults.lose_replies("*", Code::Internal, 1, "first");
        faults.lose_replies(GET, Code::DataLoss, 1, "second");
        assert_eq!(faults.after(GET).unwrap().message(), "first");
        assert_eq!(faults.after(GET).unwrap().message(), "second");
        faults.lose_replies("*", Code::Internal, 5, "");
        faults.clear();
        assert!(faults.after(GET).is_none());
        assert_eq!(faults.lost_replies("*"), 4);
    }

    #[tokio::test]
    async fn timed_lost_replies_apply_until_they_end() {
        let faults = Faults::default();
        faults.lose_replies_for("*", Code::Unavailable, Duration::from_millis(200), "");
        for _ in 0..3 {
            assert!(faults.check(UPDATE).await.is_ok());
            assert_eq!(
                faults.after(UPDATE).map(|s| s.code()),
                Some(Code::Unavailable)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
        assert!(faults.after(UPDATE).is_none(), "the window is over");
        assert_eq!(faults.lost_replies(UPDATE), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_applies_to_matching_calls() {
        let faults = Faults::default();
        faults.set_latency("*", Duration::from_millis(500));
        let start = tokio::time::Instant::now();
        faults.check(GET).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(500));
        faults.set_latency("*", Duration::ZERO);
        let start = tokio::time::Instant::now();
        faults.check(GET).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_wait_out_their_latency_together() {
        let faults = std::sync::Arc::new(Faults::default());
        faults.set_latency("*", Duration::from_millis(500));
        let start = tokio::time::Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let faults = faults.clone();
            calls.spawn(async move { faults.check(UPDATE).await });
        }
        while let Some(result) = calls.join_next().await {
            result.unwrap().unwrap();
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(1_000),
            "64 delays overlap instead of adding up: {elapsed:?}"
        );
        assert_eq!(faults.calls(UPDATE), 64);
    }
}
