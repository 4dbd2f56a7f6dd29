//! What an api-version's requests must look like, as data, and the validator that reads a
//! request against it.
//!
//! `build.rs` writes each spec's schemas into the version's `schemas` module: one [`Model`] per
//! model type (the same types as `models`, from the same intermediate model), each field,
//! item and variant a [`Ty`] with the [`Checks`] the spec states for it. The gateway validates
//! with these tables rather than by deserializing into the generated types: building a typed
//! copy of a 30 MB body only to drop it cost seconds and hundreds of megabytes, while walking
//! the JSON as it is parsed ([`json`]) allocates nothing for a valid body and holds no more
//! than the current path. Parameters and form fields are strings, read by [`text`].
//!
//! A value's checks come from every schema it passes through: the field's own keywords, then
//! those of an alias it names, and so on. [`Inherited`] carries them down a chain on the stack.

pub mod checks;
pub mod json;
pub mod text;

use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;
use serde::ser::SerializeMap;

pub use checks::{Bound, Checks, Format, Pattern, Rule};

/// A named schema: the shape of one model type.
#[derive(Debug)]
pub struct Model {
    /// The Rust name of the model type, e.g. `CreateChatCompletionRequest`.
    pub name: &'static str,
    pub body: Body,
    /// What the schema states beyond its shape.
    pub checks: &'static Checks,
}

#[derive(Debug)]
pub enum Body {
    Struct(Struct),
    Enum(Enum),
    Union(Union),
    /// `allOf` over parts that are not all objects: every part must accept the value.
    AllOf(&'static [Ty]),
    /// Another name for a type.
    Alias(Ty),
    /// A construct the generator could not type: any value.
    Untyped,
}

/// An object with known fields.
#[derive(Debug)]
pub struct Struct {
    /// Sorted by name.
    pub fields: &'static [Field],
    /// The schema of fields it does not list (`additionalProperties: {…}`); `None`: any value.
    pub extra: Option<Ty>,
    /// The spec allows fields it does not list (`additionalProperties` is `true` or a schema),
    /// so they are accepted even when the gateway rejects unknown fields.
    pub open: bool,
    /// Which sets of fields must be present, beyond each field's own `required`.
    pub choice: Option<Choice>,
}

/// `oneOf` (or `anyOf`) of branches that only list required properties, next to the
/// object's own: `file_search` takes `vector_store_ids` or `vector_stores`, not both, not
/// neither.
#[derive(Debug)]
pub struct Choice {
    /// `oneOf`: exactly one set is present; `anyOf`: at least one.
    pub exactly_one: bool,
    /// Each branch's required fields.
    pub sets: &'static [&'static [&'static str]],
}

impl Choice {
    /// What is wrong with an object whose fields `present` says are there, if anything.
    pub fn refusal(&self, present: impl Fn(&str) -> bool) -> Option<String> {
        let met = self
            .sets
            .iter()
            .filter(|set| set.iter().all(|name| present(name)))
            .count();
        let options = self
            .sets
            .iter()
            .map(|set| {
                set.iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect::<Vec<_>>()
            .join(" or ");
        match (met, self.exactly_one) {
            (0, _) => Some(format!("needs {options}")),
            (1, _) | (_, false) => None,
            _ => Some(format!("takes only one of {options}")),
        }
    }
}

impl Struct {
    fn field(&self, name: &str) -> Option<(usize, &'static Field)> {
        let i = self.fields.binary_search_by(|f| f.name.cmp(name)).ok()?;
        Some((i, &self.fields[i]))
    }
}

#[derive(Debug)]
pub struct Field {
    /// As sent on the wire.
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// May be `null`.
    pub nullable: bool,
}

/// A string with a fixed set of values.
#[derive(Debug)]
pub struct Enum {
    pub values: &'static [&'static str],
    /// `x-ms-enum: modelAsString: true`: values the spec does not list are accepted too.
    pub open: bool,
}

/// `oneOf`/`anyOf`: picked by the `tag` field's value, else the first variant of the value's
/// JSON kind that accepts it, in order.
#[derive(Debug)]
pub struct Union {
    pub tag: Option<&'static str>,
    pub variants: &'static [Variant],
    /// What it accepts, for a message: `a string or an array of strings`.
    pub expected: &'static str,
}

#[derive(Debug)]
pub struct Variant {
    /// The tag field's value that picks it.
    pub tag: Option<&'static str>,
    pub ty: Ty,
    /// The JSON kinds it may accept, so that a value is only tried against those.
    pub kinds: Kinds,
}

/// A use of a type: a field's, an item's, a parameter's, with the checks stated there.
#[derive(Debug)]
pub struct Ty {
    pub kind: Kind,
    pub checks: &'static Checks,
}

impl Ty {
    pub const fn of(kind: Kind) -> Ty {
        Ty {
            kind,
            checks: &Checks::NONE,
        }
    }

    /// Whether values are lists (an array, or a name for one): a parameter of such a type may
    /// be repeated.
    pub fn is_array(&self) -> bool {
        match &self.kind {
            Kind::Array(_) => true,
            Kind::Nullable(inner) => inner.is_array(),
            Kind::Model(Model {
                body: Body::Alias(target),
                ..
            }) => target.is_array(),
            _ => false,
        }
    }

    /// Whether values are JSON objects only (a model with fields, a map, a union of objects): a
    /// form carries such a field as one JSON part, or as one part per member.
    pub fn is_object(&self) -> bool {
        match &self.kind {
            Kind::Object | Kind::Map(_) => true,
            Kind::Nullable(inner) => inner.is_object(),
            Kind::Model(model) => match &model.body {
                Body::Struct(_) => true,
                Body::Alias(target) => target.is_object(),
                Body::Union(u) => u.variants.iter().all(|v| v.kinds.0 == Kinds::OBJECT),
                _ => false,
            },
            _ => false,
        }
    }

    /// What this type says of the member `name` of its values: an object's field, or an
    /// array's item (`name` empty or an index), as a form names them in `field[member]`.
    pub fn member(&'static self, name: &str) -> Member {
        match &self.kind {
            Kind::Nullable(inner) => inner.member(name),
            Kind::Map(value) => Member::Typed(value),
            Kind::Array(item) if name.bytes().all(|b| b.is_ascii_digit()) => Member::Typed(item),
            Kind::Any | Kind::Object => Member::Untyped,
            Kind::Model(model) => match &model.body {
                Body::Alias(target) => target.member(name),
                Body::Struct(s) => match (s.field(name), &s.extra) {
                    (Some((_, field)), _) => Member::Typed(&field.ty),
                    (None, Some(extra)) => Member::Typed(extra),
                    (None, None) if s.open => Member::Untyped,
                    (None, None) => Member::Unlisted,
                },
                // Which variant applies, or which part, is not known from one member.
                Body::Union(_) | Body::AllOf(_) | Body::Untyped => Member::Untyped,
                Body::Enum(_) => Member::NotAContainer,
            },
            _ => Member::NotAContainer,
        }
    }
}

impl Ty {
    /// The listed fields of an object type (a model with fields, through aliases and `null`);
    /// `None` for other types.
    pub fn fields(&'static self) -> Option<&'static [Field]> {
        match &self.kind {
            Kind::Nullable(inner) => inner.fields(),
            Kind::Model(model) => match &model.body {
                Body::Struct(s) => Some(s.fields),
                Body::Alias(target) => target.fields(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What a type says of one member of its values; see [`Ty::member`].
#[derive(Debug, Clone, Copy)]
pub enum Member {
    Typed(&'static Ty),
    /// A member the type allows without saying what it holds.
    Untyped,
    /// A field the object does not list: accepted unless the gateway refuses unknown fields.
    Unlisted,
    /// The values are not objects or arrays (a string, a number…), so they have no members.
    NotAContainer,
}

#[derive(Debug)]
pub enum Kind {
    String,
    Integer(Width),
    Number,
    Boolean,
    /// Any JSON value.
    Any,
    /// Any JSON object.
    Object,
    Array(&'static Ty),
    /// An object used as a map from names to one type.
    Map(&'static Ty),
    /// The inner type, or `null`.
    Nullable(&'static Ty),
    Model(&'static Model),
}

/// What an integer must fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    I32,
    I64,
}

impl Width {
    pub fn range(self) -> (i64, i64) {
        match self {
            Width::I32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            Width::I64 => (i64::MIN, i64::MAX),
        }
    }
}

/// The JSON kinds of a value, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds(pub u8);

impl Kinds {
    pub const NULL: u8 = 1;
    pub const BOOLEAN: u8 = 2;
    pub const INTEGER: u8 = 4;
    pub const FLOAT: u8 = 8;
    pub const STRING: u8 = 16;
    pub const ARRAY: u8 = 32;
    pub const OBJECT: u8 = 64;

    pub fn contains(self, kind: u8) -> bool {
        self.0 & kind != 0
    }
}

/// How the gateway treats what the spec leaves open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Refuse fields a schema does not list (unless it allows others). Off by default: Azure
    /// adds fields to the service before it republishes the spec.
    pub reject_unknown_fields: bool,
}

/// A request that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// Not JSON at all.
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON, but not what the schema says; `path` is like `messages[0].role`, empty for the
    /// whole value.
    Field { path: String, message: String },
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::Syntax {
                line,
                column,
                message,
            } => write!(
                f,
                "the body is not valid JSON (line {line}, column {column}): {message}"
            ),
            ValidationError::Field { path, message } if path.is_empty() => write!(f, "{message}"),
            ValidationError::Field { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for ValidationError {}

impl ValidationError {
    /// The failing field, for the client's error message.
    pub fn path(&self) -> Option<&str> {
        match self {
            ValidationError::Field { path, .. } if !path.is_empty() => Some(path),
            _ => None,
        }
    }
}

/// The checks of the schemas a value passes through on its way down (a field, then the alias
/// it names, …), linked on the stack.
#[derive(Clone, Copy)]
pub struct Inherited<'p> {
    pub checks: &'static Checks,
    pub outer: Option<&'p Inherited<'p>>,
}

impl<'p> Inherited<'p> {
    pub fn iter(this: Option<&'p Inherited<'p>>) -> impl Iterator<Item = &'static Checks> + 'p {
        std::iter::successors(this, |i| i.outer).map(|i| i.checks)
    }
}

/// A compiled `pattern`, compiled on first use.
pub struct CompiledPattern(OnceLock<Option<regex_lite::Regex>>);

impl CompiledPattern {
    pub const fn new() -> Self {
        CompiledPattern(OnceLock::new())
    }
}

impl Default for CompiledPattern {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CompiledPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompiledPattern")
    }
}

// ----- for `aoai-gateway routes --json`: a type is described, never followed into models -----

impl Serialize for Ty {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match &self.kind {
            Kind::String => map.serialize_entry("type", "string")?,
            Kind::Integer(Width::I32) => map.serialize_entry("type", "int32")?,
            Kind::Integer(Width::I64) => map.serialize_entry("type", "integer")?,
            Kind::Number => map.serialize_entry("type", "number")?,
            Kind::Boolean => map.serialize_entry("type", "boolean")?,
            Kind::Any => map.serialize_entry("type", "any")?,
            Kind::Object => map.serialize_entry("type", "object")?,
            Kind::Array(item) => {
                map.serialize_entry("type", "array")?;
                map.serialize_entry("items", item)?;
            }
            Kind::Map(value) => {
                map.serialize_entry("type", "map")?;
                map.serialize_entry("values", value)?;
            }
            Kind::Nullable(inner) => {
                map.serialize_entry("nullable", &true)?;
                map.serialize_entry("of", inner)?;
            }
            Kind::Model(model) => {
                map.serialize_entry("model", model.name)?;
                if let Body::Enum(e) = &model.body {
                    map.serialize_entry("enum", e.values)?;
                    map.serialize_entry("open", &e.open)?;
                }
            }
        }
        let rules: Vec<String> = self.checks.rules().iter().map(Rule::to_string).collect();
        if !rules.is_empty() {
            map.serialize_entry("checks", &rules)?;
        }
        map.end()
    }
}
