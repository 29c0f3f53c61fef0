//! Typed errors and the one place that classifies them (skip / retry / discard).

use std::borrow::Cow;

use thiserror::Error;

/// The most bytes of a payload string an error or a log line repeats.
pub const LOG_VALUE_LIMIT: usize = 128;

/// A string from a payload as an error or a log line may repeat it: whole when it is at most
/// [`LOG_VALUE_LIMIT`] bytes, else its first bytes (cut on a character boundary) followed by
/// `…(N bytes)`, N being its whole length. A payload can carry megabytes where a name is
/// expected; the log must not.
pub fn truncate_for_log(value: &str) -> Cow<'_, str> {
    if value.len() <= LOG_VALUE_LIMIT {
        return Cow::Borrowed(value);
    }
    let mut cut = LOG_VALUE_LIMIT;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}…({} bytes)", &value[..cut], value.len()))
}

/// Why a message could not be decoded into changelogs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a JSON document of the expected shape (truncated, wrong types, not
    /// UTF-8, too deep). Class: skip.
    #[error("undecodable payload: {0}")]
    Malformed(String),
    /// The document is valid JSON but a field fails validation. Class: discard.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The offending field, as a JSON path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A well-formed event of a type this integration does not handle. Class: discard.
    #[error("unsupported event type `{0}`")]
    UnsupportedEvent(String),
    /// The payload is larger than the decoder accepts. Class: skip.
    #[error("payload of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl DecodeError {
    /// A low-cardinality name for the metric `error` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Malformed(_) => "malformed",
            DecodeError::Invalid { .. } => "invalid",
            DecodeError::UnsupportedEvent(_) => "unsupported_event",
            DecodeError::TooLarge { .. } => "too_large",
        }
    }

    /// [`DecodeError::UnsupportedEvent`] naming the event type from the payload, truncated
    /// ([`truncate_for_log`]).
    pub fn unsupported_event(event: &str) -> Self {
        DecodeError::UnsupportedEvent(truncate_for_log(event).into_owned())
    }

    /// Shorthand for [`DecodeError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(err: serde_json::Error) -> Self {
        // serde_json's messages name positions, not values, but a visitor's may quote one.
        DecodeError::Malformed(truncate_for_log(&err.to_string()).into_owned())
    }
}

/// An error from the case-management API, by gRPC status class.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CaseApiError {
    /// The entity does not exist (`NOT_FOUND`).
    #[error("not found: {0}")]
    NotFound(String),
    /// The case's version is not the one the write named (`ABORTED`).
    #[error("version mismatch on case {case_id}: expected {expected}")]
    VersionMismatch {
        /// The case.
        case_id: String,
        /// The version the write named.
        expected: u64,
    },
    /// The request was rejected as invalid (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`,
    /// `OUT_OF_RANGE`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The service could not be reached or is overloaded (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`,
    /// transport errors).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The per-call deadline passed (`DEADLINE_EXCEEDED`, `CANCELLED`).
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// Our credentials were refused (`UNAUTHENTICATED`, `PERMISSION_DENIED`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The server failed (`INTERNAL`, `UNKNOWN`, `DATA_LOSS`, `ALREADY_EXISTS`).
    #[error("server error: {0}")]
    Internal(String),
    /// The server, or this implementation of [`crate::CaseApi`], does not offer the call
    /// (`UNIMPLEMENTED`; the default of an optional trait method such as
    /// [`crate::CaseApi::list_all_sync_metadata`]). Only cache warming makes such calls, and it
    /// starts cold on this answer; were a call the pipeline needs unimplemented (a Case API of
    /// the wrong version), it is classed retry like [`CaseApiError::Internal`]: a deployment
    /// fault, never a reason to acknowledge a change that was not applied.
    #[error("unimplemented: {0}")]
    Unimplemented(String),
}

/// What to do with a message whose handling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Log, count, acknowledge: the message cannot ever be applied (undecodable, rejected as
    /// invalid by the API).
    Skip,
    /// Back off and try again; after the last try exit non-zero without storing the offset.
    Retry,
    /// Log as an error, count, acknowledge: well-formed but invalid or unsupported.
    Discard,
}

impl ErrorClass {
    /// The stable name (`skip`, `retry`, `discard`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Skip => "skip",
            ErrorClass::Retry => "retry",
            ErrorClass::Discard => "discard",
        }
    }
}

/// Any error handling one message can end with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Decoding failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A case-management call failed.
    #[error("{operation}: {source}")]
    CaseApi {
        /// The call (`get_case`, `update_case`, ...).
        operation: &'static str,
        /// The failure.
        source: CaseApiError,
    },
}

impl HandleError {
    /// Wraps a case-management error with the call that failed.
    pub fn api(operation: &'static str, source: CaseApiError) -> Self {
        HandleError::CaseApi { operation, source }
    }

    /// The one place every error is classified.
    pub fn class(&self) -> ErrorClass {
        match self {
            HandleError::Decode(DecodeError::Malformed(_) | DecodeError::TooLarge { .. }) => {
                ErrorClass::Skip
            }
            HandleError::Decode(DecodeError::Invalid { .. } | DecodeError::UnsupportedEvent(_)) => {
                ErrorClass::Discard
            }
            HandleError::CaseApi { source, .. } => match source {
                CaseApiError::InvalidArgument(_) | CaseApiError::NotFound(_) => ErrorClass::Skip,
                // A version mismatch that escapes the pipeline's bounded re-read loop, transient
                // outages, and refused credentials (a deployment fault: never ack what we could
                // not apply) are all retried, then crash without storing the offset.
                CaseApiError::VersionMismatch { .. }
                | CaseApiError::Unavailable(_)
                | CaseApiError::DeadlineExceeded(_)
                | CaseApiError::Unauthorized(_)
                | CaseApiError::Internal(_)
                | CaseApiError::Unimplemented(_) => ErrorClass::Retry,
            },
        }
    }

    /// A low-cardinality name for metric tags.
    pub fn kind(&self) -> &'static str {
        match self {
            HandleError::Decode(e) => e.kind(),
            HandleError::CaseApi { source, .. } => match source {
                CaseApiError::NotFound(_) => "not_found",
                CaseApiError::VersionMismatch { .. } => "version_mismatch",
                CaseApiError::InvalidArgument(_) => "invalid_argument",
                CaseApiError::Unavailable(_) => "unavailable",
                CaseApiError::DeadlineExceeded(_) => "deadline_exceeded",
                CaseApiError::Unauthorized(_) => "unauthorized",
                CaseApiError::Internal(_) => "internal",
                CaseApiError::Unimplemented(_) => "unimplemented",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_payload_strings_are_truncated_on_a_char_boundary() {
        assert!(matches!(truncate_for_log("short"), Cow::Borrowed("short")));
        let exact = "x".repeat(LOG_VALUE_LIMIT);
        assert_eq!(truncate_for_log(&exact), exact.as_str());
        let long = "y".repeat(4 << 20);
        let cut = truncate_for_log(&long);
        assert_eq!(
            cut,
            format!("{}…({} bytes)", "y".repeat(LOG_VALUE_LIMIT), 4 << 20)
        );
        // 'é' is two bytes: byte 128 falls inside the 64th, which is left out whole.
        let accents = format!("a{}", "é".repeat(100));
        let cut = truncate_for_log(&accents);
        assert_eq!(cut, format!("a{}…(201 bytes)", "é".repeat(63)));
        let event = DecodeError::unsupported_event(&long);
        assert!(event.to_string().len() < 300, "{}", event.to_string().len());
    }

    #[test]
    fn every_error_has_one_class() {
        let cases = [
            (
                HandleError::from(DecodeError::Malformed("x".into())),
                ErrorClass::Skip,
            ),
            (
                HandleError::from(DecodeError::TooLarge { size: 2, limit: 1 }),
                ErrorClass::Skip,
            ),
            (
                HandleError::from(DecodeError::invalid("a", "b")),
                ErrorClass::Discard,
            ),
            (
                HandleError::from(DecodeError::UnsupportedEvent("x".into())),
                ErrorClass::Discard,
            ),
            (
                HandleError::api("u", CaseApiError::InvalidArgument("x".into())),
                ErrorClass::Skip,
            ),
            (
                HandleError::api("u", CaseApiError::NotFound("x".into())),
                ErrorClass::Skip,
            ),
            (
                HandleError::api("u", CaseApiError::Unavailable("x".into())),
                ErrorClass::Retry,
            ),
            (
                HandleError::api("u", CaseApiError::DeadlineExceeded("x".into())),
                ErrorClass::Retry,
            ),
            (
                HandleError::api("u", CaseApiError::Unauthorized("x".into())),
                ErrorClass::Retry,
            ),
            (
                HandleError::api("u", CaseApiError::Internal("x".into())),
                ErrorClass::Retry,
            ),
            (
                HandleError::api("u", CaseApiError::Unimplemented("x".into())),
                ErrorClass::Retry,
            ),
            (
                HandleError::api(
                    "u",
                    CaseApiError::VersionMismatch {
                        case_id: "c".into(),
                        expected: 1,
                    },
                ),
                ErrorClass::Retry,
            ),
        ];
        for (err, class) in cases {
            assert_eq!(err.class(), class, "{err}");
            assert!(!err.kind().is_empty());
        }
    }
}
