//! Typed, panic-free access to the parts of a JSON document the decoder reads.
//!
//! Every accessor knows the JSON path it reads, so a wrong type comes back as
//! [`DecodeError::Invalid`] naming the offending field. An absent key and `null` are the same
//! thing: absent.

use serde_json::{Map, Value};
use thirdparty_core::DecodeError;

/// A JSON object together with its path in the document (`webhook.issue.fields`).
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `Invalid` at `path`: expected `what`, found the type of `found`.
pub(crate) fn wrong_type(path: &str, what: &str, found: &Value) -> DecodeError {
    DecodeError::invalid(path, format!("expected {what}, found {}", type_name(found)))
}

/// `Invalid` at `path`: a required value is missing.
pub(crate) fn missing(path: &str) -> DecodeError {
    DecodeError::invalid(path, "is required")
}

impl<'a> Obj<'a> {
    /// Wraps an object found at `path`.
    pub(crate) fn new(map: &'a Map<String, Value>, path: impl Into<String>) -> Self {
        Self {
            map,
            path: path.into(),
        }
    }

    /// This object's path.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The path of one of this object's keys.
    pub(crate) fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value at `key`, `None` when absent or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A string, or absent; any other type is invalid.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(wrong_type(&self.child_path(key), "a string", other)),
        }
    }

    /// An identifier: a string, or an integer written as a JSON number (the same id). Anything
    /// else is invalid.
    pub(crate) fn opt_id(&self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            Some(other) => Err(wrong_type(
                &self.child_path(key),
                "a string or integer id",
                other,
            )),
        }
    }

    /// An identifier that must be present and not blank.
    pub(crate) fn req_id(&self, key: &str) -> Result<String, DecodeError> {
        match self.opt_id(key)? {
            Some(id) if !id.trim().is_empty() => Ok(id),
            Some(_) => Err(DecodeError::invalid(
                self.child_path(key),
                "must not be empty",
            )),
            None => Err(missing(&self.child_path(key))),
        }
    }

    /// A nested object, or absent; any other type is invalid.
    pub(crate) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, DecodeError> {
        let path = self.child_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj::new(map, path))),
            Some(other) => Err(wrong_type(&path, "an object", other)),
        }
    }

    /// A nested object that must be present.
    pub(crate) fn req_obj(&self, key: &str) -> Result<Obj<'a>, DecodeError> {
        self.opt_obj(key)?
            .ok_or_else(|| missing(&self.child_path(key)))
    }

    /// An array, or absent; any other type is invalid.
    pub(crate) fn opt_array(&self, key: &str) -> Result<Option<&'a [Value]>, DecodeError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.as_slice())),
            Some(other) => Err(wrong_type(&self.child_path(key), "an array", other)),
        }
    }
}
