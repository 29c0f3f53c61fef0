//! The one way integrations decode JSON: a typed, borrowed, panic-free view of the keys a
//! decoder reads, deserialized in one pass straight from the message bytes (no
//! `serde_json::Value` tree), and path-named reads that turn a missing or mistyped value into a
//! [`DecodeError::Invalid`] with one wording for every integration. Chosen by measurement: on the
//! benchmark's 8 KiB Jira webhook this is more than twice as fast as a `Value` parse
//! (`cargo xtask bench`, `decode_vs_value_parse`; `docs/design.md`, "Decoding JSON").
//!
//! Each key a decoder reads is a [`Json`]: what the key held, by JSON type, with strings
//! borrowed from the input when they carry no escapes. Known keys of an object fill the fields
//! of a typed struct ([`json_object!`](crate::json_object)); every other value is parsed and
//! dropped ([`Skip`]). Nothing here rejects a wrong type while parsing: the decoder asks for the
//! type it needs, in its own order, and gets an error naming the JSON path.
//!
//! The document is checked exactly as strictly as `serde_json::from_slice::<Value>`: every
//! value, skipped or not, goes through `deserialize_any`, so syntax, UTF-8 (in every string
//! and key), number range and the nesting limit (128) are enforced everywhere; a duplicate key
//! keeps its last value, as a `Value` map does. (`serde::de::IgnoredAny` would not do: serde_json
//! skips it without a depth limit, without UTF-8 checks and without parsing numbers. Nor would
//! `#[derive(Deserialize)]` structs: they reject duplicate keys as a syntax error.)
//! An absent key and `null` are the same thing: absent.
//!
//! ```
//! use thirdparty_core::json::{self, Json};
//!
//! thirdparty_core::json_object!(
//!     /// The message value.
//!     Envelope {
//!         "orgId" => org_id: Json<'a>,
//!         "issue" => issue: Json<'a, Issue<'a>>,
//!     }
//! );
//! thirdparty_core::json_object!(
//!     /// `issue`.
//!     Issue {
//!         "id" => id: Json<'a>,
//!     }
//! );
//!
//! let envelope: Envelope<'_> = json::parse(br#"{"orgId": 7, "issue": {"id": 10}, "x": [1]}"#)?;
//! assert_eq!(envelope.org_id.org_id("orgId")?, 7);
//! let issue = envelope.issue.required_object("issue")?;
//! assert_eq!(issue.id.required_id("issue.id")?, "10");
//! # Ok::<(), thirdparty_core::DecodeError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

pub use serde::de::MapAccess;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::DecodeError;

/// A JSON value the decoder does not read: parsed (and so checked) in full, never stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        Skip::from_map(map)
    }
}

/// A JSON object the decoder reads some keys of.
pub trait Object<'de>: Sized {
    /// Reads the object's entries; a key seen twice keeps its last value.
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl<'de> Object<'de> for Skip {
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// An object key, borrowed unless it carries escapes.
#[derive(Debug)]
pub struct Key<'a>(Cow<'a, str>);

impl Key<'_> {
    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A struct of the keys of an object a decoder reads, each a [`Json`]; other keys are
/// [`Skip`]ped, and a repeated key keeps its last value. The struct has one lifetime, `'a`, the
/// input's, and implements [`Object`]:
///
/// ```
/// use thirdparty_core::json::Json;
/// thirdparty_core::json_object!(
///     /// `webhook.comment`.
///     Comment {
///         "id" => id: Json<'a>,
///         "body" => body: Json<'a>,
///     }
/// );
/// ```
#[macro_export]
macro_rules! json_object {
    ($(#[$meta:meta])* $name:ident { $($key:literal => $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub(crate) struct $name<'a> {
            $(pub(crate) $field: $ty,)*
            _input: ::std::marker::PhantomData<&'a str>,
        }

        impl<'de> $crate::json::Object<'de> for $name<'de> {
            fn from_map<A: $crate::json::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
                let mut object = Self::default();
                while let Some(key) = map.next_key::<$crate::json::Key<'de>>()? {
                    match key.as_str() {
                        $($key => object.$field = map.next_value()?,)*
                        _ => {
                            map.next_value::<$crate::json::Skip>()?;
                        }
                    }
                }
                Ok(object)
            }
        }
    };
}

/// A JSON number as serde_json reads it: non-negative integers are `U64`, negative ones `I64`,
/// anything else (fractions, exponents, integers beyond 64 bits) `F64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Any other number.
    F64(f64),
}

impl Num {
    /// The value as a `u64`, when it is an integer that fits.
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Num::U64(n) => Some(n),
            Num::I64(n) => u64::try_from(n).ok(),
            Num::F64(_) => None,
        }
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Num::U64(n) => i64::try_from(n).ok(),
            Num::I64(n) => Some(n),
            Num::F64(_) => None,
        }
    }
}

/// What one key held: its JSON type, and the value when the decoder may read it. Objects are
/// read into `O`, array elements into `E`; strings are borrowed from the input when they carry
/// no escapes.
#[derive(Debug, Default)]
pub enum Json<'a, O = Skip, E = Skip> {
    /// Absent or `null`.
    #[default]
    Null,
    /// `true` or `false` (no decoder reads the value).
    Bool,
    /// A number, as serde_json read it.
    Number(Num),
    /// A string, borrowed from the input unless it carries escapes.
    Str(Cow<'a, str>),
    /// An array of `E`.
    Array(Vec<E>),
    /// An object, read into `O`.
    Object(O),
}

/// A wrong JSON type: what was expected and what was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType {
    expected: &'static str,
    found: &'static str,
}

impl WrongType {
    /// `Invalid` at `path`.
    pub fn at(self, path: impl Into<String>) -> DecodeError {
        DecodeError::invalid(
            path,
            format!("expected {}, found {}", self.expected, self.found),
        )
    }
}

/// `Invalid` at `path`: a required value is missing (absent or `null`).
pub fn missing(path: &str) -> DecodeError {
    DecodeError::invalid(path, "is required")
}

/// `Invalid` at `path`: a value that must carry text is blank.
pub fn empty(path: &str) -> DecodeError {
    DecodeError::invalid(path, "must not be empty")
}

impl<'a, O, E> Json<'a, O, E> {
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Number(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// A [`WrongType`]: expected `expected`, found this value's type.
    pub fn wrong(&self, expected: &'static str) -> WrongType {
        WrongType {
            expected,
            found: self.type_name(),
        }
    }

    /// A string, or absent; any other type is a [`WrongType`].
    pub fn opt_str(&self) -> Result<Option<&str>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Str(s) => Ok(Some(s)),
            other => Err(other.wrong("a string")),
        }
    }

    /// An identifier: a string, or a non-negative integer written as a JSON number (the same
    /// id). Anything else is a [`WrongType`]; a blank string is returned as it is.
    pub fn opt_id(&self) -> Result<Option<String>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Str(s) => Ok(Some(s.as_ref().to_owned())),
            Json::Number(Num::U64(n)) => Ok(Some(n.to_string())),
            Json::Number(_) => Err(WrongType {
                expected: "a string or non-negative integer id",
                found: "a negative or fractional number",
            }),
            other => Err(other.wrong("a string or non-negative integer id")),
        }
    }

    /// A nested object, or absent; any other type is a [`WrongType`].
    pub fn opt_obj(&self) -> Result<Option<&O>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Object(object) => Ok(Some(object)),
            other => Err(other.wrong("an object")),
        }
    }

    /// An array, or absent; any other type is a [`WrongType`].
    pub fn opt_array(&self) -> Result<Option<&[E]>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Array(items) => Ok(Some(items)),
            other => Err(other.wrong("an array")),
        }
    }

    /// Whether the key held anything but `null`.
    pub fn is_present(&self) -> bool {
        !matches!(self, Json::Null)
    }

    // Path-named reads: the same checks, with errors naming `path`, the value's place in the
    // document (`webhook.issue.id`).

    /// A string at `path`, or absent.
    pub fn str_at(&self, path: &str) -> Result<Option<&str>, DecodeError> {
        self.opt_str().map_err(|e| e.at(path))
    }

    /// A string at `path` that must be present and not blank.
    pub fn required_str(&self, path: &str) -> Result<&str, DecodeError> {
        match self.str_at(path)? {
            None => Err(missing(path)),
            Some(s) if s.trim().is_empty() => Err(empty(path)),
            Some(s) => Ok(s),
        }
    }

    /// An object at `path`, or absent.
    pub fn object_at(&self, path: &str) -> Result<Option<&O>, DecodeError> {
        self.opt_obj().map_err(|e| e.at(path))
    }

    /// An object at `path` that must be present.
    pub fn required_object(&self, path: &str) -> Result<&O, DecodeError> {
        self.object_at(path)?.ok_or_else(|| missing(path))
    }

    /// An identifier at `path` (see [`Json::opt_id`]), or absent; a blank one is an error.
    pub fn id(&self, path: &str) -> Result<Option<String>, DecodeError> {
        match self.opt_id().map_err(|e| e.at(path))? {
            Some(id) if id.trim().is_empty() => Err(empty(path)),
            id => Ok(id),
        }
    }

    /// An identifier at `path` that must be present and not blank.
    pub fn required_id(&self, path: &str) -> Result<String, DecodeError> {
        self.id(path)?.ok_or_else(|| missing(path))
    }

    /// An organization id at `path`: a positive integer, required.
    pub fn org_id(&self, path: &str) -> Result<u64, DecodeError> {
        match self {
            Json::Null => Err(missing(path)),
            Json::Number(Num::U64(0)) => Err(DecodeError::invalid(path, "must be positive")),
            Json::Number(Num::U64(id)) => Ok(*id),
            Json::Number(_) => Err(DecodeError::invalid(
                path,
                "expected a positive integer, found a negative or fractional number",
            )),
            other => Err(other.wrong("a positive integer").at(path)),
        }
    }

    /// An RFC 3339 time at `path`, required, normalized to UTC (so one instant always yields
    /// one idempotency key).
    pub fn required_time(&self, path: &str) -> Result<OffsetDateTime, DecodeError> {
        let text = self.required_str(path)?;
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .ok()
            .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
            .filter(|t| t.format(&Rfc3339).is_ok())
            .ok_or_else(|| DecodeError::invalid(path, "expected an RFC 3339 time"))
    }
}

/// Parses a message value into the object `O`, in one pass: bytes that are not UTF-8 or not
/// JSON are [`DecodeError::Malformed`]; valid JSON that is not an object is
/// [`DecodeError::Invalid`] at the root (`""`).
pub fn parse<'a, O: Object<'a>>(value: &'a [u8]) -> Result<O, DecodeError> {
    // JSON is UTF-8 throughout (a byte outside a string that is not ASCII is a syntax error
    // anyway): one check of the whole value is much cheaper than one per string.
    let text = std::str::from_utf8(value).map_err(|e| {
        DecodeError::Malformed(format!(
            "invalid UTF-8 at byte {} of the message value",
            e.valid_up_to()
        ))
    })?;
    match serde_json::from_str::<Json<'a, O>>(text)? {
        Json::Object(object) => Ok(object),
        other => Err(other.wrong("a JSON object").at("")),
    }
}

impl<'de, O: Object<'de>, E: Deserialize<'de>> Deserialize<'de> for Json<'de, O, E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor(PhantomData))
    }
}

struct JsonVisitor<'de, O, E>(PhantomData<(&'de str, O, E)>);

impl<'de, O: Object<'de>, E: Deserialize<'de>> Visitor<'de> for JsonVisitor<'de, O, E> {
    type Value = Json<'de, O, E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<Er>(self, _: bool) -> Result<Self::Value, Er> {
        Ok(Json::Bool)
    }

    fn visit_i64<Er>(self, v: i64) -> Result<Self::Value, Er> {
        Ok(Json::Number(Num::I64(v)))
    }

    fn visit_u64<Er>(self, v: u64) -> Result<Self::Value, Er> {
        Ok(Json::Number(Num::U64(v)))
    }

    fn visit_f64<Er>(self, v: f64) -> Result<Self::Value, Er> {
        Ok(Json::Number(Num::F64(v)))
    }

    fn visit_borrowed_str<Er>(self, v: &'de str) -> Result<Self::Value, Er> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<Er>(self, v: &str) -> Result<Self::Value, Er> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<Er>(self, v: String) -> Result<Self::Value, Er> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_unit<Er>(self) -> Result<Self::Value, Er> {
        Ok(Json::Null)
    }

    fn visit_none<Er>(self) -> Result<Self::Value, Er> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<E>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        O::from_map(map).map(Json::Object)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    json_object!(Pair { "a" => a: Json<'a>, "b" => b: Json<'a, Inner<'a>>, });
    json_object!(Inner { "a" => a: Json<'a>, });

    fn parse(text: &str) -> Result<Json<'_, Pair<'_>>, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn known_keys_are_typed_others_skipped_and_the_last_duplicate_wins() {
        let Json::Object(pair) =
            parse(r#"{"x": [1, {"y": 2}], "a": 1, "a": "t\u00e9", "b": {"a": null}}"#).unwrap()
        else {
            panic!("not an object");
        };
        assert_eq!(pair.a.opt_str().unwrap(), Some("té"));
        let inner = pair.b.opt_obj().unwrap().unwrap();
        assert!(matches!(inner.a, Json::Null));
    }

    #[test]
    fn skipped_values_are_checked_like_a_value_parse() {
        // Each of these fails `serde_json::from_str::<Value>`; it must fail here too, even in a
        // key the decoder never reads.
        let deep = format!(r#"{{"x": {}1{}}}"#, "[".repeat(200), "]".repeat(200));
        for bad in [
            r#"{"x": 1e400}"#.to_owned(),
            r#"{"x": "\ud800"}"#.to_owned(),
            r#"{"x": [1,]}"#.to_owned(),
            r#"{"x": 1} 2"#.to_owned(),
            deep,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(&bad).is_err(),
                "{bad}"
            );
            assert!(parse(&bad).is_err(), "{bad}");
        }
        let bytes = b"{\"x\": \"\xc3\x28\"}";
        assert!(serde_json::from_slice::<Json<'_, Pair<'_>>>(bytes).is_err());
        let bytes = b"{\"\xc3\x28\": 1}";
        assert!(serde_json::from_slice::<Json<'_, Pair<'_>>>(bytes).is_err());
    }

    #[test]
    fn numbers_keep_their_kind() {
        let Json::Object(pair) = parse(r#"{"a": -3}"#).unwrap() else {
            panic!("not an object");
        };
        assert!(matches!(pair.a, Json::Number(Num::I64(-3))));
        assert!(pair.a.opt_id().is_err());
        let Json::Object(pair) = parse(r#"{"a": 18446744073709551616}"#).unwrap() else {
            panic!("not an object");
        };
        assert!(matches!(pair.a, Json::Number(Num::F64(_))));
        assert!(pair.a.opt_id().is_err());
    }

    json_object!(Doc {
        "orgId" => org_id: Json<'a>,
        "webhook" => webhook: Json<'a, Hook<'a>>,
    });
    json_object!(Hook {
        "id" => id: Json<'a>,
        "title" => title: Json<'a>,
        "at" => at: Json<'a>,
        "n" => n: Json<'a>,
        "blank" => blank: Json<'a>,
        "big" => big: Json<'a>,
    });

    fn invalid<T: std::fmt::Debug>(result: Result<T, DecodeError>) -> (String, String) {
        match result {
            Err(DecodeError::Invalid { field, reason }) => (field, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn path_named_reads_have_one_wording() {
        let doc: Doc<'_> = super::parse(
            br#"{"orgId": 0, "webhook": {"id": -3, "title": 7, "at": "yesterday", "blank": " "}}"#,
        )
        .unwrap();
        let hook = doc.webhook.required_object("webhook").unwrap();
        assert_eq!(
            invalid(hook.id.required_id("webhook.id")),
            (
                "webhook.id".into(),
                "expected a string or non-negative integer id, found a negative or fractional number"
                    .into()
            )
        );
        assert_eq!(
            invalid(hook.title.str_at("webhook.title")),
            (
                "webhook.title".into(),
                "expected a string, found a number".into()
            )
        );
        assert_eq!(
            invalid(hook.at.required_time("webhook.at")).1,
            "expected an RFC 3339 time"
        );
        assert_eq!(invalid(hook.n.required_str("webhook.n")).1, "is required");
        assert_eq!(
            invalid(hook.blank.required_id("webhook.blank")).1,
            "must not be empty"
        );
        assert_eq!(invalid(doc.org_id.org_id("orgId")).1, "must be positive");
        assert_eq!(
            invalid(super::parse::<Doc<'_>>(b"[1]")),
            ("".into(), "expected a JSON object, found an array".into())
        );
        assert!(matches!(
            super::parse::<Doc<'_>>(b"{\"orgId\": \xff}"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn ids_and_times_normalize() {
        let doc: Doc<'_> = super::parse(
            br#"{"orgId": 12, "webhook": {"id": 1296269, "title": "MDU6SXNzdWUx", "at": "2019-05-15T15:20:18+02:00", "n": null, "big": 18446744073709551615}}"#,
        )
        .unwrap();
        assert_eq!(doc.org_id.org_id("orgId").unwrap(), 12);
        let hook = doc.webhook.required_object("webhook").unwrap();
        assert_eq!(hook.id.required_id("id").unwrap(), "1296269");
        assert_eq!(hook.title.required_id("title").unwrap(), "MDU6SXNzdWUx");
        assert_eq!(hook.big.required_id("big").unwrap(), "18446744073709551615");
        assert_eq!(hook.n.id("n").unwrap(), None);
        assert!(!hook.n.is_present());
        let t = hook.at.required_time("at").unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2019-05-15T13:20:18Z");
    }
}
