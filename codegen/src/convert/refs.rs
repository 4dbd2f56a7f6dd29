//! Following `$ref`s: to a schema (through chains), to what sits beside one, to a
//! component given in place or by reference; and whether a schema may be `null`.

use openapiv3::{ReferenceOr, Schema, SchemaKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

/// A schema, or a reference to one, as it sits in the spec.
#[derive(Clone, Copy)]
pub(super) enum SchemaRef<'a> {
    Ref(&'a str),
    Item(&'a Schema),
}

impl<'a> From<&'a ReferenceOr<Schema>> for SchemaRef<'a> {
    fn from(r: &'a ReferenceOr<Schema>) -> Self {
        match r {
            ReferenceOr::Reference { reference } => SchemaRef::Ref(reference),
            ReferenceOr::Item(s) => SchemaRef::Item(s),
        }
    }
}

impl<'a> From<&'a ReferenceOr<Box<Schema>>> for SchemaRef<'a> {
    fn from(r: &'a ReferenceOr<Box<Schema>>) -> Self {
        match r {
            ReferenceOr::Reference { reference } => SchemaRef::Ref(reference),
            ReferenceOr::Item(s) => SchemaRef::Item(s),
        }
    }
}

/// A schema with references followed.
pub(super) struct Resolved {
    pub(super) schema: Schema,
    pub(super) pointer: String,
}

/// Like [`SchemaRef`] but owned, because merged parts may come from several resolved schemas.
#[derive(Clone)]
pub(super) enum OwnedRef {
    Ref(String),
    Item(Box<Schema>),
}

impl OwnedRef {
    pub(super) fn borrow(&self) -> SchemaRef<'_> {
        match self {
            OwnedRef::Ref(r) => SchemaRef::Ref(r),
            OwnedRef::Item(s) => SchemaRef::Item(s),
        }
    }
}

impl From<SchemaRef<'_>> for OwnedRef {
    fn from(r: SchemaRef<'_>) -> Self {
        match r {
            SchemaRef::Ref(r) => OwnedRef::Ref(r.to_string()),
            SchemaRef::Item(s) => OwnedRef::Item(Box::new(s.clone())),
        }
    }
}

impl<'d> Converter<'d> {
    /// A component the spec gives in place or by `$ref` (a parameter, request body, response
    /// or example), and the pointer it was read from; `what` names it in the error when the
    /// reference holds something else.
    pub(super) fn component<T: DeserializeOwned + Clone>(
        &self,
        item: &ReferenceOr<T>,
        site: &str,
        what: &str,
    ) -> Result<(T, String), Error> {
        match item {
            ReferenceOr::Item(value) => Ok((value.clone(), site.to_string())),
            ReferenceOr::Reference { reference } => {
                let raw = self.raw(reference).cloned().unwrap_or(Value::Null);
                let value = serde_json::from_value(raw).map_err(|e| {
                    self.error(site, format!("$ref \"{reference}\" is not {what}: {e}"))
                })?;
                Ok((value, reference.clone()))
            }
        }
    }

    pub(super) fn component_of(target: &str) -> Option<&str> {
        let name = target.strip_prefix("#/components/schemas/")?;
        (!name.contains('/')).then_some(name)
    }

    pub(super) fn resolve(&self, r: SchemaRef<'_>, site: &str) -> Option<Resolved> {
        let mut target = match r {
            SchemaRef::Item(s) => {
                return Some(Resolved {
                    schema: s.clone(),
                    pointer: site.to_string(),
                });
            }
            SchemaRef::Ref(target) => target.to_string(),
        };
        for _ in 0..MAX_DEPTH {
            let raw = self.doc.resolve(&target)?;
            if let Some(next) = raw.get("$ref").and_then(Value::as_str) {
                target = next.to_string();
                continue;
            }
            let schema: Schema = serde_json::from_value(raw.clone()).ok()?;
            return Some(Resolved {
                schema,
                pointer: target,
            });
        }
        None
    }

    pub(super) fn raw(&self, pointer: &str) -> Option<&'d Value> {
        self.doc.resolve(pointer)
    }

    /// `nullable: true` written next to a `$ref`, which OpenAPI 3.0 ignores but spec authors
    /// (Azure's included) mean.
    pub(super) fn sibling_flag(&self, site: &str, flag: &str) -> bool {
        self.raw(site)
            .filter(|v| v.get("$ref").is_some())
            .and_then(|v| v.get(flag))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub(super) fn sibling_description(&self, site: &str) -> Option<String> {
        self.raw(site)
            .filter(|v| v.get("$ref").is_some())
            .and_then(|v| v.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Whether a value of this schema may be `null`.
    pub(super) fn nullable(&self, r: SchemaRef<'_>, site: &str, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        if matches!(r, SchemaRef::Ref(_)) && self.sibling_flag(site, "nullable") {
            return true;
        }
        let Some(res) = self.resolve(r, site) else {
            return false;
        };
        if res.schema.schema_data.nullable {
            return true;
        }
        let variants: &[ReferenceOr<Schema>] = match &res.schema.schema_kind {
            SchemaKind::OneOf { one_of } => one_of,
            SchemaKind::AnyOf { any_of } => any_of,
            SchemaKind::Any(a) if !a.one_of.is_empty() => &a.one_of,
            SchemaKind::Any(a) if !a.any_of.is_empty() => &a.any_of,
            _ => &[],
        };
        let key = if matches!(res.schema.schema_kind, SchemaKind::AnyOf { .. }) {
            "anyOf"
        } else {
            "oneOf"
        };
        variants
            .iter()
            .enumerate()
            .any(|(i, v)| self.nullable(v.into(), &format!("{}/{key}/{i}", res.pointer), depth + 1))
    }
}

pub(super) fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}
