//! Validates a JSON body against its schema while serde_json parses it.
//!
//! The walk is a chain of serde seeds, one per value, each knowing the [`Ty`] it expects: a
//! value is checked as it is parsed and then forgotten, so a valid body costs one parse and no
//! allocation, whatever its size. A union must see its value before it knows which variant to
//! expect: it borrows the value's text (`&RawValue`, a slice of the body, no copy), reads the
//! tag from it, and walks it again against the variant.
//!
//! Where the walk fails, the failure is noted in the [`Ctx`] and an opaque error unwinds the
//! parse; each value on the way out adds its place (`.messages`, `[0]`) to the noted path, so
//! the path is only built for a body that fails. An error serde_json raises itself (the body is
//! not JSON) has no failure noted, and is reported as a syntax error with its position.
//!
//! Objects are read with their keys checked for repeats: a validator and a backend that read
//! different values of a repeated key are a way past the validator.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::checks::Number;
use super::{
    Body, Enum, Inherited, Kind, Kinds, Model, Policy, Struct, Ty, Union, ValidationError, Width,
};

/// Checks that `body` is JSON of type `root`.
pub fn validate(body: &[u8], root: &Ty, policy: Policy) -> Result<(), ValidationError> {
    let ctx = Ctx {
        policy,
        failure: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = Seed {
        ty: root,
        inherited: None,
        ctx: &ctx,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(error) => Err(ctx.into_error(error)),
    }
}

/// Where a failure happened, innermost first.
enum Segment {
    Field(String),
    Index(usize),
}

struct Failure {
    path: Vec<Segment>,
    message: String,
}

struct Ctx {
    policy: Policy,
    failure: RefCell<Option<Failure>>,
}

impl Ctx {
    /// Notes a failure here and returns the error that unwinds the parse.
    fn fail<E: de::Error>(&self, message: String) -> E {
        *self.failure.borrow_mut() = Some(Failure {
            path: Vec::new(),
            message,
        });
        E::custom("the value does not match its schema")
    }

    /// Adds `segment` to the path of a failure unwinding through here.
    fn within<T, E>(
        &self,
        segment: impl FnOnce() -> Segment,
        result: Result<T, E>,
    ) -> Result<T, E> {
        if result.is_err()
            && let Some(failure) = self.failure.borrow_mut().as_mut()
        {
            failure.path.push(segment());
        }
        result
    }

    fn forget(&self) -> Option<Failure> {
        self.failure.borrow_mut().take()
    }

    fn into_error(self, error: serde_json::Error) -> ValidationError {
        match self.failure.into_inner() {
            Some(failure) => {
                let mut path = String::new();
                for segment in failure.path.iter().rev() {
                    match segment {
                        // A name that would read as something else is quoted: `labels[""]`,
                        // `labels["a.b"]`.
                        Segment::Field(name) if !plain(name) => {
                            path.push('[');
                            path.push_str(&serde_json::Value::from(name.as_str()).to_string());
                            path.push(']');
                        }
                        Segment::Field(name) if path.is_empty() => path.push_str(name),
                        Segment::Field(name) => {
                            path.push('.');
                            path.push_str(name);
                        }
                        Segment::Index(i) => {
                            path.push('[');
                            path.push_str(&i.to_string());
                            path.push(']');
                        }
                    }
                }
                ValidationError::Field {
                    path,
                    message: failure.message,
                }
            }
            None => {
                let message = error.to_string();
                let message = match message.rfind(" at line ") {
                    Some(i) => message[..i].to_string(),
                    None => message,
                };
                if error.is_syntax() || error.is_eof() {
                    ValidationError::Syntax {
                        line: error.line(),
                        column: error.column(),
                        message,
                    }
                } else {
                    ValidationError::Field {
                        path: String::new(),
                        message,
                    }
                }
            }
        }
    }
}

/// A member name that reads unambiguously in a dotted path.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '@'))
}

/// The seed for one value of type `ty`.
#[derive(Clone, Copy)]
struct Seed<'c, 'p, 't> {
    ty: &'t Ty,
    inherited: Option<&'p Inherited<'p>>,
    ctx: &'c Ctx,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let here = Inherited {
            checks: self.ty.checks,
            outer: self.inherited,
        };
        let inherited = Some(&here);
        let ctx = self.ctx;
        let expect = |what| Expect {
            what,
            inherited,
            ctx,
        };
        match &self.ty.kind {
            Kind::Nullable(inner) => deserializer.deserialize_option(OrNull(Seed {
                ty: inner,
                inherited,
                ctx,
            })),
            Kind::Model(model) => walk_model(model, inherited, ctx, deserializer),
            Kind::String => deserializer.deserialize_any(expect(Expected::String)),
            Kind::Integer(width) => deserializer.deserialize_any(expect(Expected::Integer(*width))),
            Kind::Number => deserializer.deserialize_any(expect(Expected::Number)),
            Kind::Boolean => deserializer.deserialize_any(expect(Expected::Boolean)),
            Kind::Any => deserializer.deserialize_any(expect(Expected::Any)),
            Kind::Object => deserializer.deserialize_any(expect(Expected::Object)),
            Kind::Array(item) => deserializer.deserialize_any(expect(Expected::Array(item))),
            Kind::Map(value) => deserializer.deserialize_any(expect(Expected::Map(value))),
        }
    }
}

fn walk_model<'de, D: Deserializer<'de>>(
    model: &'static Model,
    inherited: Option<&Inherited<'_>>,
    ctx: &Ctx,
    deserializer: D,
) -> Result<(), D::Error> {
    let here = Inherited {
        checks: model.checks,
        outer: inherited,
    };
    let inherited = Some(&here);
    let expect = |what| Expect {
        what,
        inherited,
        ctx,
    };
    match &model.body {
        Body::Alias(ty) => Seed { ty, inherited, ctx }.deserialize(deserializer),
        Body::Struct(s) => deserializer.deserialize_any(expect(Expected::Struct(s))),
        Body::Enum(e) => deserializer.deserialize_any(expect(Expected::Enum(e))),
        Body::Union(u) => walk_union(u, inherited, ctx, deserializer),
        Body::AllOf(parts) => {
            let raw = <&RawValue>::deserialize(deserializer)?;
            for ty in *parts {
                walk_raw(raw, ty, inherited, ctx).map_err(de::Error::custom)?;
            }
            Ok(())
        }
        Body::Untyped => IgnoredAny::deserialize(deserializer).map(drop),
    }
}

/// Walks a value already set aside as text.
fn walk_raw(
    raw: &RawValue,
    ty: &'static Ty,
    inherited: Option<&Inherited<'_>>,
    ctx: &Ctx,
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    Seed { ty, inherited, ctx }.deserialize(&mut de)
}

fn walk_union<'de, D: Deserializer<'de>>(
    union: &'static Union,
    inherited: Option<&Inherited<'_>>,
    ctx: &Ctx,
    deserializer: D,
) -> Result<(), D::Error> {
    let raw = <&RawValue>::deserialize(deserializer)?;
    let kind = kind_of(raw.get());
    let Some(tag) = union.tag else {
        let mut candidates = union.variants.iter().filter(|v| v.kinds.contains(kind));
        let Some(mut current) = candidates.next() else {
            return Err(ctx.fail(format!(
                "expected {}, got {}",
                union.expected,
                kind_name(kind)
            )));
        };
        // The first variant that accepts the value wins; when none does, the last one tried
        // says why, as the generated types would.
        for next in candidates {
            if walk_raw(raw, &current.ty, inherited, ctx).is_ok() {
                return Ok(());
            }
            ctx.forget();
            current = next;
        }
        return walk_raw(raw, &current.ty, inherited, ctx).map_err(de::Error::custom);
    };
    if kind != Kinds::OBJECT {
        return Err(ctx.fail(format!("expected an object, got {}", kind_name(kind))));
    }
    let found = serde_json::from_str::<TagOf>(raw.get())
        .map_err(de::Error::custom)?
        .find(tag);
    let value = match found {
        None => return Err(ctx.fail(format!("missing field `{tag}`"))),
        Some(Err(kind)) => {
            let error = Err(ctx.fail(format!("expected a string, got {}", kind_name(kind))));
            return ctx.within(|| Segment::Field(tag.to_string()), error);
        }
        Some(Ok(value)) => value,
    };
    let Some(variant) = union
        .variants
        .iter()
        .find(|v| v.tag == Some(value.as_str()))
    else {
        let values: Vec<&str> = union.variants.iter().filter_map(|v| v.tag).collect();
        let error = Err(ctx.fail(one_of(&values, &format!("\"{}\"", printable(&value)))));
        return ctx.within(|| Segment::Field(tag.to_string()), error);
    };
    walk_raw(raw, &variant.ty, inherited, ctx).map_err(de::Error::custom)
}

/// The members of an object that hold strings, by name; others by their JSON kind.
struct TagOf(Vec<(String, Result<String, u8>)>);

impl TagOf {
    fn find(self, tag: &str) -> Option<Result<String, u8>> {
        self.0
            .into_iter()
            .find(|(name, _)| name == tag)
            .map(|(_, value)| value)
    }
}

impl<'de> serde::Deserialize<'de> for TagOf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = TagOf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagOf, A::Error> {
                let mut members = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let raw = map.next_value::<&RawValue>()?;
                    let value = match kind_of(raw.get()) {
                        Kinds::STRING => {
                            serde_json::from_str::<String>(raw.get()).map_err(de::Error::custom)?
                        }
                        kind => {
                            members.push((name, Err(kind)));
                            continue;
                        }
                    };
                    members.push((name, Ok(value)));
                }
                Ok(TagOf(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// The JSON kind of a value's text: its first character, and for a number whether serde_json
/// reads it as an integer.
fn kind_of(text: &str) -> u8 {
    let text = text.trim();
    match text.as_bytes().first() {
        Some(b'n') => Kinds::NULL,
        Some(b't' | b'f') => Kinds::BOOLEAN,
        Some(b'"') => Kinds::STRING,
        Some(b'[') => Kinds::ARRAY,
        Some(b'{') => Kinds::OBJECT,
        _ if text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok() => Kinds::INTEGER,
        _ => Kinds::FLOAT,
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        Kinds::NULL => "null",
        Kinds::BOOLEAN => "a boolean",
        Kinds::INTEGER => "an integer",
        Kinds::FLOAT => "a number",
        Kinds::STRING => "a string",
        Kinds::ARRAY => "an array",
        _ => "an object",
    }
}

/// `must be one of "a", "b", got "x"`.
fn one_of(values: &[&str], got: &str) -> String {
    let listed: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    format!("must be one of {}, got {got}", listed.join(", "))
}

/// Client input echoed in a message: short and printable.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// Accepts `null`, else walks the value with `0`.
struct OrNull<'c, 'p, 't>(Seed<'c, 'p, 't>);

impl<'de> Visitor<'de> for OrNull<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.0.deserialize(deserializer)
    }
}

impl<'de> DeserializeSeed<'de> for OrNull<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

/// What a value must be, at its leaf.
#[derive(Clone, Copy)]
enum Expected {
    String,
    Integer(Width),
    Number,
    Boolean,
    Any,
    Object,
    Array(&'static Ty),
    Map(&'static Ty),
    Struct(&'static Struct),
    Enum(&'static Enum),
}

impl Expected {
    fn described(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Expected::String => "a string",
            Expected::Integer(_) => "an integer",
            Expected::Number => "a number",
            Expected::Boolean => "a boolean",
            Expected::Any => "any value",
            Expected::Object | Expected::Map(_) | Expected::Struct(_) => "an object",
            Expected::Array(_) => "an array",
            Expected::Enum(e) => {
                let listed: Vec<String> = e.values.iter().map(|v| format!("\"{v}\"")).collect();
                return Cow::Owned(format!("one of {}", listed.join(", ")));
            }
        })
    }
}

struct Expect<'c, 'p> {
    what: Expected,
    inherited: Option<&'p Inherited<'p>>,
    ctx: &'c Ctx,
}

impl Expect<'_, '_> {
    fn checks(&self) -> impl Iterator<Item = &'static super::Checks> + '_ {
        Inherited::iter(self.inherited)
    }

    fn mismatch<E: de::Error>(&self, got: &str) -> E {
        self.ctx
            .fail(format!("expected {}, got {got}", self.what.described()))
    }

    fn number<E: de::Error>(&self, value: Number) -> Result<(), E> {
        match self.what {
            Expected::Any | Expected::Number => {}
            Expected::Integer(width) => {
                let Some(integer) = value.as_integer() else {
                    return Err(self.mismatch(&format!("{value}")));
                };
                let (low, high) = width.range();
                if value.beyond_64_bits() || integer < i128::from(low) || integer > i128::from(high)
                {
                    return Err(self.ctx.fail(format!(
                        "{value} is out of range: must be an integer from {low} to {high}"
                    )));
                }
            }
            _ => {
                let kind = match value {
                    Number::Float(_) if value.as_integer().is_none() => "a number",
                    _ => "an integer",
                };
                return Err(self.mismatch(&format!("{kind} {value}")));
            }
        }
        for checks in self.checks() {
            checks.number(value).map_err(|m| self.ctx.fail(m))?;
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Expect<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what.described())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.what {
            Expected::Boolean | Expected::Any => Ok(()),
            _ => Err(self.mismatch(&format!("{v}"))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(Number::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(Number::UInt(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(Number::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.what {
            Expected::Any | Expected::String => {}
            Expected::Enum(e) => {
                if !e.open && !e.values.contains(&v) {
                    return Err(self
                        .ctx
                        .fail(one_of(e.values, &format!("\"{}\"", printable(v)))));
                }
            }
            _ => return Err(self.mismatch("a string")),
        }
        for checks in self.checks() {
            checks.string(v).map_err(|m| self.ctx.fail(m))?;
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        match self.what {
            Expected::Any => Ok(()),
            _ => Err(self.mismatch("null")),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        static ANY: Ty = Ty::of(Kind::Any);
        let item = match self.what {
            Expected::Array(item) => item,
            // The keywords of arrays still apply to an array of any value.
            Expected::Any => &ANY,
            _ => return Err(self.mismatch("an array")),
        };
        let ctx = self.ctx;
        let seed = Seed {
            ty: item,
            inherited: None,
            ctx,
        };
        let unique = self.checks().any(|c| c.unique_items);
        let mut count = 0;
        if unique {
            // Items are kept (as values, to compare them as JSON) only when the spec asks for
            // them to be unique, which it does of short lists.
            let mut seen: Vec<serde_json::Value> = Vec::new();
            while let Some(raw) = seq.next_element::<&RawValue>()? {
                let at = count;
                ctx.within(|| Segment::Index(at), walk_raw(raw, item, None, ctx))
                    .map_err(de::Error::custom)?;
                let value: serde_json::Value =
                    serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                if let Some(first) = seen.iter().position(|v| *v == value) {
                    return Err(ctx.fail(format!(
                        "must not repeat an item: items {first} and {at} are the same"
                    )));
                }
                seen.push(value);
                count += 1;
            }
        } else {
            loop {
                let at = count;
                match ctx.within(|| Segment::Index(at), seq.next_element_seed(seed))? {
                    Some(()) => count += 1,
                    None => break,
                }
            }
        }
        for checks in self.checks() {
            checks.items(count).map_err(|m| ctx.fail(m))?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.ctx;
        let count = match self.what {
            Expected::Struct(s) => walk_struct(s, ctx, &mut map)?,
            Expected::Map(value) => {
                let mut names: HashSet<Key<'de>> = HashSet::new();
                let seed = Seed {
                    ty: value,
                    inherited: None,
                    ctx,
                };
                while let Some(name) = map.next_key_seed(KeySeed)? {
                    if names.contains(&*name) {
                        return Err(ctx.fail(format!("repeats the key `{}`", printable(&name))));
                    }
                    let segment = || Segment::Field(name.to_string());
                    ctx.within(segment, map.next_value_seed(seed))?;
                    names.insert(name);
                }
                names.len()
            }
            Expected::Object | Expected::Any => {
                let mut count = 0;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    count += 1;
                }
                count
            }
            _ => return Err(self.mismatch("an object")),
        };
        for checks in self.checks() {
            checks.properties(count).map_err(|m| ctx.fail(m))?;
        }
        Ok(())
    }
}

/// Which of a struct's fields have been seen: a bit each, on the stack for up to 128 fields.
enum Seen {
    Few(u128),
    Many(Vec<bool>),
}

impl Seen {
    fn new(fields: usize) -> Seen {
        if fields <= 128 {
            Seen::Few(0)
        } else {
            Seen::Many(vec![false; fields])
        }
    }

    /// Marks field `i`; `false` if it was seen before.
    fn mark(&mut self, i: usize) -> bool {
        match self {
            Seen::Few(bits) => {
                let bit = 1u128 << i;
                let fresh = *bits & bit == 0;
                *bits |= bit;
                fresh
            }
            Seen::Many(seen) => !std::mem::replace(&mut seen[i], true),
        }
    }

    fn has(&self, i: usize) -> bool {
        match self {
            Seen::Few(bits) => *bits & (1u128 << i) != 0,
            Seen::Many(seen) => seen[i],
        }
    }
}

/// Walks an object's members against a struct; returns how many there were.
fn walk_struct<'de, A: MapAccess<'de>>(
    s: &'static Struct,
    ctx: &Ctx,
    map: &mut A,
) -> Result<usize, A::Error> {
    let mut seen = Seen::new(s.fields.len());
    // Members the struct does not list, to catch repeats among them too.
    let mut others: HashSet<Key<'de>> = HashSet::new();
    let mut count = 0;
    while let Some(name) = map.next_key_seed(KeySeed)? {
        count += 1;
        let segment = || Segment::Field(name.to_string());
        if let Some((i, field)) = s.field(&name) {
            if !seen.mark(i) {
                return Err(ctx.fail(format!("repeats the field `{}`", field.name)));
            }
            let seed = Seed {
                ty: &field.ty,
                inherited: None,
                ctx,
            };
            let result = if field.nullable {
                map.next_value_seed(OrNull(seed))
            } else {
                map.next_value_seed(seed)
            };
            ctx.within(segment, result)?;
            continue;
        }
        if others.contains(&*name) {
            return Err(ctx.fail(format!("repeats the field `{}`", printable(&name))));
        }
        match &s.extra {
            Some(extra) => {
                let seed = Seed {
                    ty: extra,
                    inherited: None,
                    ctx,
                };
                ctx.within(segment, map.next_value_seed(seed))?;
            }
            None if ctx.policy.reject_unknown_fields && !s.open => {
                let error = Err(ctx.fail(
                    "is not a field of this object, and this gateway refuses unknown fields"
                        .to_string(),
                ));
                return ctx.within(segment, error);
            }
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        others.insert(name);
    }
    if let Some(missing) = s
        .fields
        .iter()
        .enumerate()
        .find(|(i, f)| f.required && !seen.has(*i))
    {
        return Err(ctx.fail(format!("missing field `{}`", missing.1.name)));
    }
    if let Some(refusal) = s
        .choice
        .as_ref()
        .and_then(|c| c.refusal(|name| s.field(name).is_some_and(|(i, _)| seen.has(i))))
    {
        return Err(ctx.fail(refusal));
    }
    Ok(count)
}

/// An object member's name, borrowed from the body where it has no escapes. Compared and
/// hashed as its text.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Key<'_> {}

impl std::hash::Hash for Key<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl std::borrow::Borrow<str> for Key<'_> {
    fn borrow(&self) -> &str {
        self
    }
}

impl std::ops::Deref for Key<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Bound, Checks, Field, Variant};
    use super::*;

    static TOP_P: Checks = Checks {
        minimum: Some(Bound::inclusive(0.0)),
        maximum: Some(Bound::inclusive(1.0)),
        ..Checks::NONE
    };
    static AT_LEAST_ONE: Checks = Checks {
        min_items: Some(1),
        ..Checks::NONE
    };
    static ROLE: Model = Model {
        name: "Role",
        body: Body::Enum(Enum {
            values: &["system", "user"],
            open: false,
        }),
        checks: &Checks::NONE,
    };
    static TEXT: Model = Model {
        name: "Text",
        body: Body::Struct(Struct {
            fields: &[
                Field {
                    name: "text",
                    ty: Ty::of(Kind::String),
                    required: true,
                    nullable: false,
                },
                Field {
                    name: "type",
                    ty: Ty::of(Kind::String),
                    required: true,
                    nullable: false,
                },
            ],
            extra: None,
            open: false,
            choice: None,
        }),
        checks: &Checks::NONE,
    };
    static IMAGE: Model = Model {
        name: "Image",
        body: Body::Struct(Struct {
            fields: &[
                Field {
                    name: "type",
                    ty: Ty::of(Kind::String),
                    required: true,
                    nullable: false,
                },
                Field {
                    name: "url",
                    ty: Ty::of(Kind::String),
                    required: true,
                    nullable: false,
                },
            ],
            extra: None,
            open: false,
            choice: None,
        }),
        checks: &Checks::NONE,
    };
    static PART: Model = Model {
        name: "Part",
        body: Body::Union(Union {
            tag: Some("type"),
            variants: &[
                Variant {
                    tag: Some("text"),
                    ty: Ty::of(Kind::Model(&TEXT)),
                    kinds: Kinds(Kinds::OBJECT),
                },
                Variant {
                    tag: Some("image"),
                    ty: Ty::of(Kind::Model(&IMAGE)),
                    kinds: Kinds(Kinds::OBJECT),
                },
            ],
            expected: "`Text` or `Image`",
        }),
        checks: &Checks::NONE,
    };
    static CONTENT: Model = Model {
        name: "Content",
        body: Body::Union(Union {
            tag: None,
            variants: &[
                Variant {
                    tag: None,
                    ty: Ty::of(Kind::String),
                    kinds: Kinds(Kinds::STRING),
                },
                Variant {
                    tag: None,
                    ty: Ty::of(Kind::Array(&Ty::of(Kind::Model(&PART)))),
                    kinds: Kinds(Kinds::ARRAY),
                },
            ],
            expected: "a string or an array of `Part`s",
        }),
        checks: &Checks::NONE,
    };
    static MESSAGE: Model = Model {
        name: "Message",
        body: Body::Struct(Struct {
            fields: &[
                Field {
                    name: "content",
                    ty: Ty::of(Kind::Model(&CONTENT)),
                    required: true,
                    nullable: true,
                },
                Field {
                    name: "role",
                    ty: Ty::of(Kind::Model(&ROLE)),
                    required: true,
                    nullable: false,
                },
            ],
            extra: None,
            open: false,
            choice: None,
        }),
        checks: &Checks::NONE,
    };
    static REQUEST: Model = Model {
        name: "Request",
        body: Body::Struct(Struct {
            fields: &[
                Field {
                    name: "max_tokens",
                    ty: Ty::of(Kind::Integer(Width::I32)),
                    required: false,
                    nullable: true,
                },
                Field {
                    name: "messages",
                    ty: Ty {
                        kind: Kind::Array(&Ty::of(Kind::Model(&MESSAGE))),
                        checks: &AT_LEAST_ONE,
                    },
                    required: true,
                    nullable: false,
                },
                Field {
                    name: "seed",
                    ty: Ty::of(Kind::Integer(Width::I64)),
                    required: false,
                    nullable: false,
                },
                Field {
                    name: "top_p",
                    ty: Ty {
                        kind: Kind::Number,
                        checks: &TOP_P,
                    },
                    required: false,
                    nullable: false,
                },
            ],
            extra: None,
            open: false,
            choice: None,
        }),
        checks: &Checks::NONE,
    };
    static ROOT: Ty = Ty::of(Kind::Model(&REQUEST));

    fn check(body: &str, policy: Policy) -> Result<(), String> {
        validate(body.as_bytes(), &ROOT, policy).map_err(|e| e.to_string())
    }

    fn accept(body: &str) -> Result<(), String> {
        check(body, Policy::default())
    }

    #[test]
    fn accepts_what_the_schema_allows() {
        let ok = r#"{"messages": [{"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "x"}, {"type": "image", "url": "u"}]},
            {"role": "user", "content": null}],
            "top_p": 0.5, "max_tokens": null, "future": {"any": [1]}}"#;
        assert_eq!(accept(ok), Ok(()));
    }

    #[test]
    fn names_the_field_and_the_rule() {
        let cases = [
            (
                r#"{"messages": [{"role": "user", "content": "x"}], "top_p": -1}"#,
                "top_p: must be >= 0, got -1",
            ),
            (
                r#"{"messages": []}"#,
                "messages: must have at least 1 item, got 0",
            ),
            (
                r#"{"messages": [{"role": "robot", "content": "x"}]}"#,
                "messages[0].role: must be one of \"system\", \"user\", got \"robot\"",
            ),
            (
                r#"{"messages": [{"role": "user", "content": 5}]}"#,
                "messages[0].content: expected a string or an array of `Part`s, got an integer",
            ),
            (
                r#"{"messages": [{"role": "user", "content": [{"type": "image"}]}]}"#,
                "messages[0].content[0]: missing field `url`",
            ),
            (
                r#"{"messages": [{"role": "user", "content": [{"type": "video"}]}]}"#,
                "messages[0].content[0].type: must be one of \"text\", \"image\", got \"video\"",
            ),
            (
                r#"{"messages": [{"role": "user", "content": [{"text": "t"}]}]}"#,
                "messages[0].content[0]: missing field `type`",
            ),
            (
                r#"{"messages": [{"role": "user"}]}"#,
                "messages[0]: missing field `content`",
            ),
            (
                r#"{"messages": "hi"}"#,
                "messages: expected an array, got a string",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2e25}"#,
                "max_tokens: 2e25 is out of range: must be an integer from -2147483648 to 2147483647",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 20000000000000000000000000}"#,
                "max_tokens: 2e25 is out of range: must be an integer from -2147483648 to 2147483647",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}"#,
                "max_tokens: expected an integer, got 1.5",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "x", "role": "robot"}]}"#,
                "messages[0]: repeats the field `role`",
            ),
            (r#"[]"#, "expected an object, got an array"),
        ];
        for (body, expected) in cases {
            assert_eq!(accept(body), Err(expected.to_string()), "{body}");
        }
        assert_eq!(
            accept(r#"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 3.0}"#),
            Ok(())
        );
    }

    #[test]
    fn unknown_fields_pass_unless_the_policy_refuses_them() {
        let body = r#"{"messages": [{"role": "user", "content": "x", "name_": 1}]}"#;
        assert_eq!(accept(body), Ok(()));
        let strict = Policy {
            reject_unknown_fields: true,
        };
        assert_eq!(
            check(body, strict),
            Err("messages[0].name_: is not a field of this object, and this gateway refuses unknown fields".into())
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_a_syntax_error_with_its_position() {
        let err = validate(b"{\"messages\": [", &ROOT, Policy::default()).unwrap_err();
        assert!(
            matches!(err, ValidationError::Syntax { line: 1, .. }),
            "{err:?}"
        );
        let body = br#"{"messages": [{"role": "user", "content": "x"}]} x"#;
        let err = validate(body, &ROOT, Policy::default()).unwrap_err();
        assert!(matches!(err, ValidationError::Syntax { .. }), "{err:?}");
    }
}
