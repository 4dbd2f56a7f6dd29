//! Runtime support for the generated models: the few serde helpers they call.
//!
//! The gateway does not validate requests with these types (see [`crate::schema`]); they are
//! the typed form of each api-version, for code that reads or writes its bodies, and the tests
//! read every example of the specs through them.
//!
//! Unions (`oneOf`) must look at a value before they know which type to read it as, so they
//! buffer it as a `serde_json::Value` first. Reading the chosen variant from that buffer loses
//! the outer deserializer's path tracking, so [`variant`] tracks the path inside the variant
//! itself and leaves it in a thread-local for whoever reports the error; deserializing is
//! synchronous, so the thread-local cannot mix two values. The result is an error such as
//! `messages[1].content[0].image_url: missing field `url`` instead of "did not match any variant".

use std::cell::RefCell;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer};
use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::Value;

use crate::schema::ValidationError;

thread_local! {
    /// Path inside a union variant to the field that failed, from the innermost union out.
    static INNER_PATH: RefCell<String> = const { RefCell::new(String::new()) };
}

fn take_inner_path() -> String {
    INNER_PATH.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

fn set_inner_path(path: String) {
    INNER_PATH.with(|p| *p.borrow_mut() = path);
}

/// Joins `messages[0]` and `content` into `messages[0].content`; `content` and `[2]` into
/// `content[2]`.
fn join_path(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        ("" | ".", inner) => inner.to_string(),
        (outer, "") => outer.to_string(),
        (outer, inner) if inner.starts_with('[') => format!("{outer}{inner}"),
        (outer, inner) => format!("{outer}.{inner}"),
    }
}

/// For an optional field: present (even as `null`, when `T` is itself an `Option`) → `Some`.
/// Used with `#[serde(default)]`, so an absent field is `None` and a `null` on a field that
/// may not be null is an error rather than silently dropped.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For a required field that may be `null`: with `deserialize_with`, serde reports a missing
/// field instead of quietly taking `None`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// Reads a whole value so a union can look at it before choosing a variant.
pub fn buffer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Value::deserialize(deserializer)
}

/// The value of a tagged union's tag field.
pub fn tag<E: de::Error>(value: &Value, field: &'static str) -> Result<String, E> {
    let Some(object) = value.as_object() else {
        return Err(E::invalid_type(unexpected(value), &"an object"));
    };
    match object.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => {
            set_inner_path(field.to_string());
            Err(E::invalid_type(unexpected(other), &"a string"))
        }
        None => Err(E::missing_field(field)),
    }
}

pub fn unknown_tag<E: de::Error>(
    field: &'static str,
    found: &str,
    expected: &'static [&'static str],
) -> E {
    set_inner_path(field.to_string());
    E::unknown_variant(found, expected)
}

/// Reads the chosen variant of a union, keeping the path to a failing field.
pub fn variant<T: DeserializeOwned, E: de::Error>(value: Value) -> Result<T, E> {
    take_inner_path();
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let below = take_inner_path();
        set_inner_path(join_path(&path, &below));
        E::custom(err.into_inner())
    })
}

/// Tries a variant without reporting anything; the caller moves on to the next one.
pub fn attempt<T: DeserializeOwned>(value: &Value) -> Result<T, serde_json::Error> {
    let result = T::deserialize(value);
    take_inner_path();
    result
}

pub fn no_variant<E: de::Error>(value: &Value, expected: &'static str) -> E {
    take_inner_path();
    E::invalid_type(unexpected(value), &expected)
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => de::Unexpected::Signed(i),
            (_, Some(u), _) => de::Unexpected::Unsigned(u),
            (_, _, Some(f)) => de::Unexpected::Float(f),
            _ => de::Unexpected::Other("number"),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// The JSON kind of a value, which narrows the variants an untagged union has to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Boolean,
    Integer,
    Float,
    String,
    Array,
    Object,
}

impl JsonKind {
    pub fn of(value: &Value) -> JsonKind {
        match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Boolean,
            Value::Number(n) if n.is_f64() => JsonKind::Float,
            Value::Number(_) => JsonKind::Integer,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }
}

/// Serializes one part of an intersection type.
pub fn to_value<S: Serializer, T: Serialize>(part: &T) -> Result<Value, S::Error> {
    serde_json::to_value(part).map_err(S::Error::custom)
}

/// Writes the parts of an intersection type as one object.
pub fn merge_objects<S: Serializer>(serializer: S, parts: &[Value]) -> Result<S::Ok, S::Error> {
    let mut merged = serde_json::Map::new();
    for part in parts {
        match part {
            Value::Object(fields) => {
                merged.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())))
            }
            other => return other.serialize(serializer),
        }
    }
    Value::Object(merged).serialize(serializer)
}

/// `Some` read-and-write-back function ([`roundtrip_json`]) of a body's model in test builds,
/// `None` otherwise, for a route table's `Media::roundtrip`.
///
/// The `model-roundtrip` feature checked is that of the crate the macro is used in (the crate
/// that compiles the generated code), not this one's: that is how `cfg` in a macro's output
/// works. Without the feature the model is never named, so it need not be compiled at all.
#[macro_export]
macro_rules! roundtrip {
    ($model:ty) => {{
        #[cfg(feature = "model-roundtrip")]
        let found: Option<$crate::catalog::Roundtrip> =
            Some($crate::support::roundtrip_json::<$model>);
        #[cfg(not(feature = "model-roundtrip"))]
        let found: Option<$crate::catalog::Roundtrip> = None;
        found
    }};
}

/// Reads a JSON value as `T` and writes it back; the round trip must lose nothing.
pub fn roundtrip_json<T: DeserializeOwned + Serialize>(
    value: &Value,
) -> Result<Value, ValidationError> {
    take_inner_path();
    let typed: T = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let below = take_inner_path();
        ValidationError::Field {
            path: join_path(if path == "." { "" } else { &path }, &below),
            message: err.into_inner().to_string(),
        }
    })?;
    serde_json::to_value(&typed).map_err(|e| ValidationError::Field {
        path: String::new(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        assert_eq!(join_path(".", "a"), "a");
        assert_eq!(
            join_path("messages[0]", "content[1].type"),
            "messages[0].content[1].type"
        );
        assert_eq!(join_path("content", "[2]"), "content[2]");
        assert_eq!(join_path("a", ""), "a");
    }
}
