//! The raw tree: a spec as a `serde_json::Value`, read by our own deserializer so that a key
//! written twice is noticed instead of refused, YAML merge keys (`<<`) are applied, and numbers
//! beyond 64 bits load (as the nearest float) rather than fail.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, Location};
use crate::names::pointer_token;

pub(super) struct Duplicate {
    pub(super) pointer: String,
    pub(super) key: String,
    pub(super) same: bool,
}

pub(super) fn parse_tree(text: &str, file: &str) -> Result<(Value, Vec<Duplicate>), Error> {
    let mut state = TreeState {
        path: Vec::new(),
        duplicates: Vec::new(),
    };
    let looks_like_json = text.trim_start().starts_with('{');
    let value = if looks_like_json {
        let mut de = serde_json::Deserializer::from_str(text);
        let value = TreeSeed { state: &mut state }
            .deserialize(&mut de)
            .and_then(|v| {
                de.end()?;
                Ok(v)
            });
        value.map_err(|e| Error::Spec {
            location: Location {
                file: file.into(),
                pointer: String::new(),
                line: Some((e.line(), e.column())),
            },
            message: format!("invalid JSON: {}", strip_position(&e.to_string())),
        })?
    } else {
        let de = serde_yaml::Deserializer::from_str(text);
        TreeSeed { state: &mut state }
            .deserialize(de)
            .map_err(|e| Error::Spec {
                location: Location {
                    file: file.into(),
                    pointer: String::new(),
                    line: e.location().map(|l| (l.line(), l.column())),
                },
                message: format!("invalid YAML: {}", strip_position(&e.to_string())),
            })?
    };
    Ok((value, state.duplicates))
}

/// Parser messages end with " at line N column M", which the location already says.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

struct TreeState {
    path: Vec<String>,
    duplicates: Vec<Duplicate>,
}

impl TreeState {
    fn pointer(&self) -> String {
        let mut p = String::from("#");
        for token in &self.path {
            p.push('/');
            p.push_str(&pointer_token(token));
        }
        p
    }
}

/// Builds a `serde_json::Value`, noting keys that appear twice in one mapping.
struct TreeSeed<'a> {
    state: &'a mut TreeState,
}

impl<'de> DeserializeSeed<'de> for TreeSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TreeSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    // Published specs write bounds such as `minimum: -9223372036854776000`, below i64.
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        self.visit_f64(v as f64)
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.state.path.push(items.len().to_string());
            let next = seq.next_element_seed(TreeSeed {
                state: &mut *self.state,
            });
            self.state.path.pop();
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut merges = Vec::new();
        while let Some(key) = access.next_key_seed(KeySeed)? {
            self.state.path.push(key.clone());
            let value = access.next_value_seed(TreeSeed {
                state: &mut *self.state,
            });
            let pointer = self.state.pointer();
            self.state.path.pop();
            let value = value?;
            if key == "<<" {
                merges.push(value);
                continue;
            }
            if let Some(previous) = map.insert(key.clone(), value) {
                let same = map.get(&key) == Some(&previous);
                self.state.duplicates.push(Duplicate { pointer, key, same });
            }
        }
        // YAML merge keys: entries written in the mapping itself win over merged ones.
        for merge in merges {
            let sources = match merge {
                Value::Array(items) => items,
                other => vec![other],
            };
            for source in sources {
                if let Value::Object(entries) = source {
                    for (k, v) in entries {
                        map.entry(k).or_insert(v);
                    }
                }
            }
        }
        Ok(Value::Object(map))
    }
}

/// Mapping keys: YAML allows `200:` unquoted, which arrives as a number.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean mapping key")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(E::custom("a mapping key is null"))
    }
}
