//! The intermediate model: what one spec says, in plain serializable data.
//!
//! The code emitter and the HTML route docs both read this and nothing else, so the two can never
//! disagree. It holds no `quote!` tokens and no `openapiv3` types: names are already Rust names
//! (next to the spec's names), references between types are by name, and every item keeps the
//! JSON pointer of the spec text it came from.

use serde::{Deserialize, Serialize};

/// The enums the generated code shares with the generator, defined once in the runtime crate.
pub use aoai_runtime::catalog::{ContentKind, Method, ParamLocation};

/// The path parameter that names a deployment in the dated APIs' paths.
pub const DEPLOYMENT_PARAMETER: &str = "deployment-id";

/// The path segment that holds it.
pub const DEPLOYMENT_SEGMENT: &str = "/deployments/{deployment-id}";
pub use aoai_runtime::schema::{Bound, Format, Rule};

/// One api-version: its operations and every type they use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Api {
    /// `info.version`, which clients send as `?api-version=`.
    pub version: String,
    /// Rust module holding this version's code, e.g. `v2024_10_21`.
    pub module: String,
    /// The spec file, relative to the spec folder, with `/` separators.
    pub source: String,
    /// The SHA-256 of the spec file as published (before overlays), in hex.
    #[serde(default)]
    pub source_sha256: String,
    /// Where its routes live below the gateway's base path (`/v1`), or empty; see
    /// [`crate::load::Document::mount`].
    #[serde(default)]
    pub mount: String,
    pub title: String,
    pub description: Option<String>,
    /// In spec order: paths as listed, methods in the order GET, PUT, POST, DELETE, OPTIONS,
    /// HEAD, PATCH, TRACE.
    pub operations: Vec<Operation>,
    /// Sorted by name.
    pub types: Vec<TypeDef>,
    /// The overlays applied to the spec as it was loaded, in the order applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlays: Vec<Overlay>,
    /// The spec as served to clients: JSON, `servers` removed.
    #[serde(skip)]
    pub document: serde_json::Value,
}

impl Api {
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.types[i])
    }

    /// The places a part of `op`'s spec lives: the operation itself, and every type its
    /// parameters or request body use, however deep (and with `answers`, its responses' too).
    fn reach<'a>(&'a self, op: &'a Operation, answers: bool) -> Vec<&'a str> {
        let mut roots = vec![op.pointer.as_str()];
        let mut seen = std::collections::HashSet::new();
        let responses = op
            .responses
            .iter()
            .filter(|_| answers)
            .flat_map(|r| r.content.iter().flat_map(|c| &c.ty));
        let mut pending: Vec<&str> = op
            .parameters
            .iter()
            .map(|p| &p.ty)
            .chain(
                op.request
                    .iter()
                    .flat_map(|r| r.content.iter().flat_map(|c| &c.ty)),
            )
            .chain(responses)
            .filter_map(TypeRef::named)
            .collect();
        while let Some(name) = pending.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(def) = self.type_def(name) else {
                continue;
            };
            roots.push(&def.pointer);
            pending.extend(def.kind.references().filter_map(TypeRef::named));
        }
        roots
    }

    /// Records each node that is not checked on the operations whose request reaches it: a node
    /// inside the operation itself, or inside a type its parameters or request body use.
    pub fn mark_unchecked(&mut self, nodes: &[Unchecked]) {
        let marks: Vec<Vec<Unchecked>> = self
            .operations
            .iter()
            .map(|op| {
                let roots = self.reach(op, false);
                nodes
                    .iter()
                    .filter(|n| roots.iter().any(|r| within(&n.pointer, r)))
                    .cloned()
                    .collect()
            })
            .collect();
        for (op, unchecked) in self.operations.iter_mut().zip(marks) {
            op.unchecked = unchecked;
        }
    }

    /// Records on each operation the overlay changes that reach it: in the operation itself or
    /// in a type its requests or answers use.
    pub fn mark_overlaid(&mut self) {
        let marks: Vec<Vec<Overlaid>> = self
            .operations
            .iter()
            .map(|op| {
                let roots = self.reach(op, true);
                let mut marks = Vec::new();
                for overlay in &self.overlays {
                    for (i, action) in overlay.actions.iter().enumerate() {
                        for pointer in &action.changed {
                            if roots.iter().any(|r| within(pointer, r)) {
                                marks.push(Overlaid {
                                    file: overlay.file.clone(),
                                    action: i + 1,
                                    description: action.description.clone(),
                                    pointer: pointer.clone(),
                                });
                            }
                        }
                    }
                }
                marks
            })
            .collect();
        for (op, overlaid) in self.operations.iter_mut().zip(marks) {
            op.overlaid = overlaid;
        }
    }
}

/// Whether `pointer` names `root` or a node inside it.
fn within(pointer: &str, root: &str) -> bool {
    pointer == root
        || pointer
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An OpenAPI overlay applied to a spec as it was loaded (see `load::overlay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overlay {
    /// The overlay file, as named in messages (`spec/v1/files.overlay.yaml`).
    pub file: String,
    pub title: String,
    pub version: String,
    pub actions: Vec<OverlayAction>,
}

/// One action of an overlay, as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayAction {
    /// Its JSONPath.
    pub target: String,
    pub description: Option<String>,
    /// `update` or `remove`.
    pub change: String,
    /// JSON pointers of the nodes it changed.
    pub changed: Vec<String>,
}

/// An overlay's change to a part of an operation's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlaid {
    pub file: String,
    /// 1-based, as the docs count actions.
    pub action: usize,
    pub description: Option<String>,
    /// Where it changed the spec.
    pub pointer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub operation_id: String,
    /// snake_case form of the operationId.
    pub rust_name: String,
    pub method: Method,
    /// Path template relative to the gateway's base path, e.g.
    /// `/deployments/{deployment-id}/chat/completions`.
    pub path: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub deprecated: bool,
    pub parameters: Vec<Parameter>,
    pub request: Option<RequestBody>,
    pub responses: Vec<Response>,
    /// Name of the boolean request field that switches the response to server-sent events
    /// (`stream`), when the request model has one.
    pub stream_flag: Option<String>,
    /// The request body field that names the deployment (`model`), for an API whose paths carry
    /// none; see `convert::operations`.
    #[serde(default)]
    pub deployment_field: Option<String>,
    /// A success answer carries a top-level `usage` object: the tokens the call spent.
    #[serde(default)]
    pub reports_usage: bool,
    /// Parts of the request the gateway cannot check, because the spec leaves them untyped
    /// there (a `$ref` to nothing, a construct no rule covers); see [`Api::mark_unchecked`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<Unchecked>,
    /// Changes an overlay made to this operation's part of the spec; see [`Api::mark_overlaid`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlaid: Vec<Overlaid>,
    /// The stored objects it creates, names, lists or deletes; see `convert::objects`.
    #[serde(default, skip_serializing_if = "Objects::is_empty")]
    pub objects: Objects,
    pub pointer: String,
}

/// What an operation does with stored objects (responses, files, vector stores, threads, …):
/// objects that live in the one Azure resource that created them. A kind is named by the path
/// parameter that names one (`file` for `{file_id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objects {
    /// It creates an object of this kind: its answer (or its stream's first event) is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    /// What the directory learns from a creating answer: these top-level fields, each the id
    /// of a top-level object of a kind, (field, kind); `id` first when the object created is
    /// itself top-level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<(String, String)>,
    /// Path parameters that name an object, outermost first: (parameter, kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<(String, String)>,
    /// Request body fields that name objects, wherever they are: (path, kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(Vec<PathStep>, String)>,
    /// It lists the top-level objects of this kind (`GET /files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<String>,
    /// It deletes the top-level object its path names.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletes: bool,
}

impl Objects {
    pub fn is_empty(&self) -> bool {
        *self == Objects::default()
    }
}

/// One step of the way to a body field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PathStep {
    /// The member of this name.
    Member(String),
    /// Every item of an array.
    Items,
}

/// A field's path as people write it: `tools[].vector_store_ids[]`.
pub fn path_text(steps: &[PathStep]) -> String {
    aoai_runtime::catalog::path_text(steps.iter().map(|s| match s {
        PathStep::Member(name) => Some(name.as_str()),
        PathStep::Items => None,
    }))
}

/// A node of a spec that requests are not validated against, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchecked {
    /// JSON pointer into the spec file.
    pub pointer: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub rust_name: String,
    pub location: ParamLocation,
    pub required: bool,
    pub deprecated: bool,
    pub description: Option<String>,
    pub ty: TypeRef,
    /// What the value must satisfy beyond its type, as the parameter's schema says.
    #[serde(default, skip_serializing_if = "Checks::is_empty")]
    pub checks: Checks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestBody {
    pub required: bool,
    pub description: Option<String>,
    pub content: Vec<Content>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub media_type: String,
    pub kind: ContentKind,
    pub ty: Option<TypeRef>,
    /// When this body is sent instead of the others, if the spec implies a condition; e.g. the
    /// event stream "when the request sets `stream: true`".
    pub condition: Option<String>,
    pub examples: Vec<Example>,
    pub pointer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Key in the spec's `examples` map; `None` for a lone `example`.
    pub name: Option<String>,
    pub summary: Option<String>,
    pub value: serde_json::Value,
    pub pointer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// `200`, `4XX` or `default`.
    pub status: String,
    pub description: String,
    pub content: Vec<Content>,
}

/// A named Rust type in the version's `models` module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeDef {
    pub name: String,
    /// Its key in `components.schemas`; `None` for a schema written inline.
    pub schema_name: Option<String>,
    pub pointer: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub deprecated: bool,
    /// The schema accepts `null`; fields of this type become nullable.
    pub nullable: bool,
    pub kind: TypeKind,
    /// What a value of this type must satisfy beyond its shape (bounds of a numeric alias, the
    /// item count of an array alias, …).
    #[serde(default, skip_serializing_if = "Checks::is_empty")]
    pub checks: Checks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeKind {
    /// An object with known properties.
    Struct(Struct),
    /// A string with a fixed set of values.
    Enum(Enum),
    /// `oneOf`, `anyOf` or a discriminated base schema.
    Union(Union),
    /// Another name for a type, e.g. a schema that is a plain string or an array.
    Alias { target: TypeRef },
    /// `allOf` over parts that are not all objects: every part must accept the value.
    /// `checks[i]`, when present, are what part `i` states in place (`allOf: [{$ref: …},
    /// {maxLength: 64}]`).
    Intersection {
        parts: Vec<TypeRef>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        checks: Vec<Checks>,
    },
    /// A construct the generator cannot type yet; a `serde_json::Value` with a build warning.
    Untyped { reason: String },
}

impl TypeKind {
    /// Every type reference this type holds directly.
    pub fn references(&self) -> Box<dyn Iterator<Item = &TypeRef> + '_> {
        match self {
            TypeKind::Struct(s) => Box::new(
                s.fields
                    .iter()
                    .map(|f| &f.ty)
                    .chain(std::iter::once(&s.extra_ty)),
            ),
            TypeKind::Union(u) => Box::new(u.variants.iter().map(|v| &v.ty)),
            TypeKind::Alias { target } => Box::new(std::iter::once(target)),
            TypeKind::Intersection { parts, .. } => Box::new(parts.iter()),
            TypeKind::Enum(_) | TypeKind::Untyped { .. } => Box::new(std::iter::empty()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Struct {
    pub fields: Vec<Field>,
    /// Rust name of the flattened map that keeps properties the spec does not list.
    pub extra_name: String,
    /// Value type of that map: the spec's `additionalProperties` schema, or any JSON value.
    pub extra_ty: TypeRef,
    /// The spec says `additionalProperties: false`. Recorded for the docs; unknown fields are
    /// still kept, because the service adds fields faster than the spec is republished.
    pub closed: bool,
    /// The spec allows properties it does not list (`additionalProperties: true` or a schema),
    /// so they are never "unknown", whatever the gateway's policy for unknown fields.
    #[serde(default)]
    pub open: bool,
    /// `oneOf` or `anyOf` branches that only list required properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Choice>,
}

/// Sets of properties of which exactly one (`oneOf`) or at least one (`anyOf`) must be present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub exactly_one: bool,
    pub sets: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub rust_name: String,
    pub ty: TypeRef,
    pub required: bool,
    pub nullable: bool,
    /// Boxed because the field's type contains this type again.
    pub boxed: bool,
    pub read_only: bool,
    pub deprecated: bool,
    pub description: Option<String>,
    pub default: Option<serde_json::Value>,
    pub pointer: String,
    /// What the value must satisfy beyond its type, as the property's schema says.
    #[serde(default, skip_serializing_if = "Checks::is_empty")]
    pub checks: Checks,
}

/// The validation keywords of a schema beyond its type (JSON Schema's `minimum`, `maxLength`,
/// `minItems`, …), as written where a value is described. A bound beyond what the value's type
/// can hold is kept as written: it simply never fails.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unique_items: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_properties: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_properties: Option<u64>,
    /// Checks of each item of an array, when its item schema is written in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<Checks>>,
    /// Checks of each value of a map (`additionalProperties` written in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Box<Checks>>,
}

impl Checks {
    pub fn is_empty(&self) -> bool {
        *self == Checks::default()
    }

    /// The rules stated here, as the docs say them: `>= 0`, `at most 4 items`, …, with those of
    /// items and map values.
    pub fn describe(&self) -> Vec<String> {
        let mut rules = Vec::new();
        rules.extend(self.minimum.map(Rule::Minimum));
        rules.extend(self.maximum.map(Rule::Maximum));
        rules.extend(self.multiple_of.map(Rule::MultipleOf));
        rules.extend(self.min_length.map(Rule::MinLength));
        rules.extend(self.max_length.map(Rule::MaxLength));
        rules.extend(self.pattern.as_deref().map(Rule::Pattern));
        rules.extend(self.format.map(Rule::Format));
        rules.extend(self.min_items.map(Rule::MinItems));
        rules.extend(self.max_items.map(Rule::MaxItems));
        if self.unique_items {
            rules.push(Rule::UniqueItems);
        }
        rules.extend(self.min_properties.map(Rule::MinProperties));
        rules.extend(self.max_properties.map(Rule::MaxProperties));
        let mut out: Vec<String> = rules.iter().map(Rule::to_string).collect();
        if let Some(items) = &self.items {
            out.extend(
                items
                    .describe()
                    .into_iter()
                    .map(|d| format!("each item {d}")),
            );
        }
        if let Some(values) = &self.values {
            out.extend(
                values
                    .describe()
                    .into_iter()
                    .map(|d| format!("each value {d}")),
            );
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enum {
    pub values: Vec<EnumValue>,
    /// `x-ms-enum: modelAsString: true`: the service may send values not listed here, and they
    /// are accepted as they are.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnumValue {
    pub value: String,
    pub rust_name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Union {
    /// The property whose value picks the variant (`type`, `role`, …); `None` when variants are
    /// tried in order.
    pub tag: Option<String>,
    /// In the order they are tried when there is no tag.
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub rust_name: String,
    pub ty: TypeRef,
    pub tag_value: Option<String>,
    pub boxed: bool,
    /// What the variant's schema states in place beyond its type.
    #[serde(default, skip_serializing_if = "Checks::is_empty")]
    pub checks: Checks,
}

/// A reference to a type, as a field, item, parameter or body uses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "of", rename_all = "snake_case")]
pub enum TypeRef {
    String,
    /// 32 or 64.
    Integer(u8),
    Number,
    Boolean,
    /// `type: string, format: binary`: a file part of a form, or a raw body.
    Binary,
    /// Any JSON value (`{}` or a schema without a type).
    Any,
    /// Any JSON object (`type: object` without properties).
    Object,
    Array(Box<TypeRef>),
    /// An object used as a map from strings to one type (`additionalProperties: <schema>`).
    Map(Box<TypeRef>),
    /// An array item or map value that may be `null`.
    Nullable(Box<TypeRef>),
    Named(String),
}

impl TypeRef {
    /// The named types this reference mentions.
    pub fn named(&self) -> Option<&str> {
        match self {
            TypeRef::Named(n) => Some(n),
            TypeRef::Array(t) | TypeRef::Map(t) | TypeRef::Nullable(t) => t.named(),
            _ => None,
        }
    }

    /// The named type held directly (not behind a `Vec` or map), which is what makes a type
    /// infinitely large when it contains itself.
    pub fn inline_named(&self) -> Option<&str> {
        match self {
            TypeRef::Named(n) => Some(n),
            TypeRef::Nullable(t) => t.inline_named(),
            _ => None,
        }
    }
}
