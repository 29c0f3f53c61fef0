//! Path-named reads of a decoded JSON document, for decoders: every wrong type or missing field
//! becomes a [`DecodeError::Invalid`] naming its JSON path (`webhook.issue.id`), with one wording
//! for every integration. An absent key and `null` are the same thing: absent.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::DecodeError;

/// A JSON object and its path in the document.
#[derive(Debug, Clone, Copy)]
pub struct JsonObject<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

/// The JSON type of a value, as error messages name it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// "expected {what}, found {type}" for `field`.
pub fn expected(field: &str, what: &str, found: &Value) -> DecodeError {
    DecodeError::invalid(
        field,
        format!("expected {what}, found {}", type_name(found)),
    )
}

impl<'a> JsonObject<'a> {
    /// The document's root, which must be an object (valid JSON of another shape is invalid).
    pub fn root(document: &'a Value) -> Result<Self, DecodeError> {
        match document {
            Value::Object(map) => Ok(Self { map, path: "" }),
            other => Err(expected("", "a JSON object", other)),
        }
    }

    /// The path of `key` in this object (`webhook.issue.id`).
    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The raw value of `key`, if present and not `null` (for a type the readers here do not
    /// cover).
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    /// Whether `key` holds something other than `null`.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A string, if present.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(expected(&self.field(key), "a string", other)),
        }
    }

    /// A string that must be present and not blank.
    pub fn required_str(&self, key: &str) -> Result<&'a str, DecodeError> {
        match self.str(key)? {
            None => Err(DecodeError::invalid(self.field(key), "missing")),
            Some(s) if s.trim().is_empty() => Err(DecodeError::invalid(self.field(key), "empty")),
            Some(s) => Ok(s),
        }
    }

    /// A nested object, if present. `path` is where it sits (the caller's `field(key)`), kept
    /// for its own errors.
    pub fn object(&self, key: &str, path: &'a str) -> Result<Option<JsonObject<'a>>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(JsonObject { map, path })),
            Some(other) => Err(expected(&self.field(key), "an object", other)),
        }
    }

    /// A nested object that must be present.
    pub fn required_object(&self, key: &str, path: &'a str) -> Result<JsonObject<'a>, DecodeError> {
        self.object(key, path)?
            .ok_or_else(|| DecodeError::invalid(self.field(key), "missing"))
    }

    /// An id sent as a non-negative integer or a non-blank string, as a string.
    pub fn id(&self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(id) => Ok(Some(id.to_string())),
                None => Err(DecodeError::invalid(
                    self.field(key),
                    "expected a non-negative integer id, found a negative or fractional number",
                )),
            },
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(DecodeError::invalid(self.field(key), "empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(expected(&self.field(key), "an integer or string id", other)),
        }
    }

    /// An id that must be present.
    pub fn required_id(&self, key: &str) -> Result<String, DecodeError> {
        self.id(key)?
            .ok_or_else(|| DecodeError::invalid(self.field(key), "missing"))
    }

    /// The organization id: a positive integer.
    pub fn org_id(&self, key: &str) -> Result<u64, DecodeError> {
        match self.get(key) {
            None => Err(DecodeError::invalid(self.field(key), "missing")),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => Err(DecodeError::invalid(self.field(key), "must be positive")),
                Some(id) => Ok(id),
                None => Err(DecodeError::invalid(
                    self.field(key),
                    "expected a positive integer, found a negative or fractional number",
                )),
            },
            Some(other) => Err(expected(&self.field(key), "a positive integer", other)),
        }
    }

    /// An RFC 3339 time that must be present, normalized to UTC (so one instant always yields
    /// one idempotency key).
    pub fn required_time(&self, key: &str) -> Result<OffsetDateTime, DecodeError> {
        let text = self.required_str(key)?;
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .ok()
            .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
            .filter(|t| t.format(&Rfc3339).is_ok())
            .ok_or_else(|| DecodeError::invalid(self.field(key), "expected an RFC 3339 time"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn invalid(result: Result<impl std::fmt::Debug, DecodeError>) -> (String, String) {
        match result {
            Err(DecodeError::Invalid { field, reason }) => (field, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_path() {
        let doc =
            json!({"webhook": {"issue": {"id": -3, "title": 7, "at": "yesterday"}}, "orgId": 0});
        let root = JsonObject::root(&doc).unwrap();
        let webhook = root.required_object("webhook", "webhook").unwrap();
        let issue = webhook.required_object("issue", "webhook.issue").unwrap();
        assert_eq!(invalid(issue.required_id("id")).0, "webhook.issue.id");
        assert_eq!(
            invalid(issue.str("title")),
            (
                "webhook.issue.title".into(),
                "expected a string, found a number".into()
            )
        );
        assert_eq!(invalid(issue.required_time("at")).0, "webhook.issue.at");
        assert_eq!(invalid(issue.required_str("body")).1, "missing");
        assert_eq!(invalid(root.org_id("orgId")).1, "must be positive");
        assert_eq!(invalid(JsonObject::root(&json!([1]))).0, "");
    }

    #[test]
    fn ids_and_times_normalize() {
        let doc = json!({"a": 1_296_269_u64, "b": "MDU6SXNzdWUx", "t": "2019-05-15T15:20:18+02:00", "n": null});
        let root = JsonObject::root(&doc).unwrap();
        assert_eq!(root.required_id("a").unwrap(), "1296269");
        assert_eq!(root.required_id("b").unwrap(), "MDU6SXNzdWUx");
        assert_eq!(root.id("n").unwrap(), None);
        assert!(!root.has("n"));
        let t = root.required_time("t").unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2019-05-15T13:20:18Z");
    }
}
