//! A typed, borrowed, panic-free view of the parts of a Jira envelope the decoder reads,
//! deserialized in one pass straight from the message bytes (no `serde_json::Value` tree).
//!
//! Each key the decoder reads is a [`Json`]: what the key held, by JSON type, with strings
//! borrowed from the input when they carry no escapes. Known keys of an object fill the fields
//! of a typed struct ([`json_object!`]); every other value is parsed and dropped ([`Skip`]).
//! Nothing here rejects a wrong type: the decoder checks types in its own order and reports
//! [`DecodeError::Invalid`] naming the JSON path, exactly as it did over a `Value`.
//!
//! The document is checked exactly as strictly as `serde_json::from_slice::<Value>`: every
//! value, skipped or not, goes through `deserialize_any`, so syntax, UTF-8 (in every string
//! and key), number range and the nesting limit (128) are enforced everywhere; a duplicate key
//! keeps its last value, as a `Value` map does. (`serde::de::IgnoredAny` would not do: serde_json
//! skips it without a depth limit, without UTF-8 checks and without parsing numbers. Nor would
//! `#[derive(Deserialize)]` structs: they reject duplicate keys as a syntax error.)
//! An absent key and `null` are the same thing: absent.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use thirdparty_core::DecodeError;

/// A JSON value the decoder does not read: parsed (and so checked) in full, never stored.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Skip;

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
pub(crate) trait Object<'de>: Sized {
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
pub(crate) struct Key<'a>(Cow<'a, str>);

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
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

/// A struct of the keys of an object the decoder reads, each a [`Json`]; other keys are
/// [`Skip`]ped, and a repeated key keeps its last value.
macro_rules! json_object {
    ($(#[$meta:meta])* $name:ident { $($key:literal => $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub(crate) struct $name<'a> {
            $(pub(crate) $field: $ty,)*
            _input: std::marker::PhantomData<&'a str>,
        }

        impl<'de> $crate::json::Object<'de> for $name<'de> {
            fn from_map<A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
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
pub(crate) use json_object;

/// A JSON number as serde_json reads it: non-negative integers are `U64`, negative ones `I64`,
/// anything else (fractions, exponents, integers beyond 64 bits) `F64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Num {
    /// The value as a `u64`, when it is an integer that fits.
    pub(crate) fn as_u64(self) -> Option<u64> {
        match self {
            Num::U64(n) => Some(n),
            Num::I64(n) => u64::try_from(n).ok(),
            Num::F64(_) => None,
        }
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub(crate) fn as_i64(self) -> Option<i64> {
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
pub(crate) enum Json<'a, O = Skip, E = Skip> {
    /// Absent or `null`.
    #[default]
    Null,
    Bool,
    Number(Num),
    Str(Cow<'a, str>),
    Array(Vec<E>),
    Object(O),
}

/// A wrong JSON type: what was expected and what was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrongType {
    expected: &'static str,
    found: &'static str,
}

impl WrongType {
    /// `Invalid` at `path`.
    pub(crate) fn at(self, path: impl Into<String>) -> DecodeError {
        DecodeError::invalid(
            path,
            format!("expected {}, found {}", self.expected, self.found),
        )
    }
}

/// `Invalid` at `path`: a required value is missing.
pub(crate) fn missing(path: &str) -> DecodeError {
    DecodeError::invalid(path, "is required")
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
    pub(crate) fn wrong(&self, expected: &'static str) -> WrongType {
        WrongType {
            expected,
            found: self.type_name(),
        }
    }

    /// A string, or absent; any other type is a [`WrongType`].
    pub(crate) fn opt_str(&self) -> Result<Option<&str>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Str(s) => Ok(Some(s)),
            other => Err(other.wrong("a string")),
        }
    }

    /// An identifier: a string, or an integer written as a JSON number (the same id). Anything
    /// else is a [`WrongType`].
    pub(crate) fn opt_id(&self) -> Result<Option<String>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Str(s) => Ok(Some(s.as_ref().to_owned())),
            Json::Number(Num::U64(n)) => Ok(Some(n.to_string())),
            Json::Number(Num::I64(n)) => Ok(Some(n.to_string())),
            other => Err(other.wrong("a string or integer id")),
        }
    }

    /// An identifier that must be present and not blank, at `path`.
    pub(crate) fn req_id(&self, path: &str) -> Result<String, DecodeError> {
        match self.opt_id().map_err(|e| e.at(path))? {
            Some(id) if !id.trim().is_empty() => Ok(id),
            Some(_) => Err(DecodeError::invalid(path, "must not be empty")),
            None => Err(missing(path)),
        }
    }

    /// A nested object, or absent; any other type is a [`WrongType`].
    pub(crate) fn opt_obj(&self) -> Result<Option<&O>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Object(object) => Ok(Some(object)),
            other => Err(other.wrong("an object")),
        }
    }

    /// An array, or absent; any other type is a [`WrongType`].
    pub(crate) fn opt_array(&self) -> Result<Option<&[E]>, WrongType> {
        match self {
            Json::Null => Ok(None),
            Json::Array(items) => Ok(Some(items)),
            other => Err(other.wrong("an array")),
        }
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
        assert_eq!(pair.a.opt_id().unwrap().as_deref(), Some("-3"));
        let Json::Object(pair) = parse(r#"{"a": 18446744073709551616}"#).unwrap() else {
            panic!("not an object");
        };
        assert!(matches!(pair.a, Json::Number(Num::F64(_))));
        assert!(pair.a.opt_id().is_err());
    }
}
