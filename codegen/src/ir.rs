//! The intermediate model: what one spec says, in plain serializable data.
//!
//! The code emitter and the HTML route docs both read this and nothing else, so the two can never
//! disagree. It holds no `quote!` tokens and no `openapiv3` types: names are already Rust names
//! (next to the spec's names), references between types are by name, and every item keeps the
//! JSON pointer of the spec text it came from.

use serde::{Deserialize, Serialize};

/// One api-version: its operations and every type they use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Api {
    /// `info.version`, which clients send as `?api-version=`.
    pub version: String,
    /// Rust module holding this version's code, e.g. `v2024_10_21`.
    pub module: String,
    /// The spec file, relative to the spec folder, with `/` separators.
    pub source: String,
    pub title: String,
    pub description: Option<String>,
    /// In spec order: paths as listed, methods in the order GET, PUT, POST, DELETE, OPTIONS,
    /// HEAD, PATCH, TRACE.
    pub operations: Vec<Operation>,
    /// Sorted by name.
    pub types: Vec<TypeDef>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Options,
    Head,
    Patch,
    Trace,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
        }
    }

    pub fn from_openapi(name: &str) -> Option<Method> {
        Some(match name {
            "get" => Method::Get,
            "put" => Method::Put,
            "post" => Method::Post,
            "delete" => Method::Delete,
            "options" => Method::Options,
            "head" => Method::Head,
            "patch" => Method::Patch,
            "trace" => Method::Trace,
            _ => return None,
        })
    }
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
    pub pointer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Cookie => "cookie",
        }
    }
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestBody {
    pub required: bool,
    pub description: Option<String>,
    pub content: Vec<Content>,
}

/// How a body of one media type is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentKind {
    Json,
    Multipart,
    FormUrlEncoded,
    Text,
    Binary,
    EventStream,
    Other,
}

impl ContentKind {
    pub fn of(media_type: &str) -> ContentKind {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => ContentKind::Json,
            s if s.ends_with("+json") => ContentKind::Json,
            "multipart/form-data" => ContentKind::Multipart,
            "application/x-www-form-urlencoded" => ContentKind::FormUrlEncoded,
            "text/event-stream" => ContentKind::EventStream,
            s if s.starts_with("text/") => ContentKind::Text,
            "application/octet-stream" => ContentKind::Binary,
            s if s.starts_with("audio/") || s.starts_with("image/") || s.starts_with("video/") => {
                ContentKind::Binary
            }
            _ => ContentKind::Other,
        }
    }
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
    Intersection { parts: Vec<TypeRef> },
    /// A construct the generator cannot type yet; a `serde_json::Value` with a build warning.
    Untyped { reason: String },
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
