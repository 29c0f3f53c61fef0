//! Fault injection for tests: fail the next N matching calls with a status, add latency.
//!
//! Every `case.v1` handler calls [`Faults::check`] first (the admin and health services never
//! do). A rule's method is a bare method name (`GetCase`), a full path
//! (`/case.v1.CaseService/GetCase`) or `*` (any `case.v1` method).

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
}

#[derive(Debug, Default)]
struct State {
    faults: VecDeque<FaultRule>,
    latency: HashMap<String, Duration>,
    calls: HashMap<String, u64>,
}

/// The fault and latency rules of one server.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

fn matches(rule: &str, path: &str) -> bool {
    rule == "*" || rule == path || path.rsplit('/').next() == Some(rule)
}

impl Faults {
    /// Fails the next `count` calls matching `method` with `code`.
    pub fn inject(&self, method: &str, code: Code, count: u32, message: &str) {
        let message = if message.is_empty() {
            format!("injected fault ({code:?}) on {method}")
        } else {
            message.to_owned()
        };
        self.lock().faults.push_back(FaultRule {
            method: method.to_owned(),
            code,
            remaining: count,
            until: None,
            message,
        });
    }

    /// Fails every call matching `method` with `code` for `duration` from now (an outage).
    pub fn inject_for(&self, method: &str, code: Code, duration: Duration, message: &str) {
        let message = if message.is_empty() {
            format!("injected outage ({code:?}) on {method}")
        } else {
            message.to_owned()
        };
        self.lock().faults.push_back(FaultRule {
            method: method.to_owned(),
            code,
            remaining: 0,
            until: Some(Instant::now() + duration),
            message,
        });
    }

    /// Calls per full method path that reached a handler (after authentication).
    pub fn call_counts(&self) -> HashMap<String, u64> {
        self.lock().calls.clone()
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

    /// Removes every rule (call counts are kept).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.faults.clear();
        state.latency.clear();
    }

    /// Applies the rules to a call of `path` (`/package.Service/Method`): waits for its latency,
    /// then fails it if a fault rule matches (consuming one of that rule's calls).
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
            let mut fault = None;
            let now = Instant::now();
            state
                .faults
                .retain(|r| r.until.is_none_or(|until| until > now));
            if let Some(i) = state.faults.iter().position(|r| matches(&r.method, path))
                && let Some(rule) = state.faults.get_mut(i)
            {
                fault = Some(Status::new(rule.code, rule.message.clone()));
                rule.remaining = rule.remaining.saturating_sub(1);
                if rule.until.is_none() && rule.remaining == 0 {
                    state.faults.remove(i);
                }
            }
            (delay, fault)
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
}
