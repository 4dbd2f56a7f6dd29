//! The compiled-in catalogue of api-versions and their routes.
//!
//! `build.rs` generates one [`ApiVersion`] per spec in `spec/`, made of the static data types
//! below; the router, the validator, `aoai-gateway routes` and the tests read them and nothing
//! else, so serving a new api-version needs no hand-written code.

use serde::{Deserialize, Serialize};

use crate::schema::{Ty, ValidationError};

/// Reads a JSON value into its model and writes it back.
pub type Roundtrip = fn(&serde_json::Value) -> Result<serde_json::Value, ValidationError>;

#[derive(Debug, Serialize)]
pub struct ApiVersion {
    pub version: &'static str,
    pub title: &'static str,
    /// The spec file, relative to `spec/`.
    pub source: &'static str,
    /// The spec file's SHA-256 as published (before overlays), in hex.
    pub source_sha256: &'static str,
    /// Where its routes live below the gateway's base path (`/v1`), or empty: the path of the
    /// spec's `servers` URL after `/openai`.
    pub mount: &'static str,
    pub routes: &'static [&'static Route],
    /// The OpenAPI overlays applied to the spec at build time, in the order applied.
    pub overlays: &'static [Overlay],
}

/// An OpenAPI overlay that corrected a spec at build time (`spec/*.overlay.yaml`).
#[derive(Debug, Serialize)]
pub struct Overlay {
    /// The overlay file, e.g. `spec/v1/files.overlay.yaml`.
    pub file: &'static str,
    pub title: &'static str,
    pub version: &'static str,
    pub actions: &'static [OverlayAction],
}

#[derive(Debug, Serialize)]
pub struct OverlayAction {
    /// Its JSONPath.
    pub target: &'static str,
    pub description: Option<&'static str>,
    /// `update` or `remove`.
    pub change: &'static str,
    /// JSON pointers of the nodes of the spec it changed.
    pub changed: &'static [&'static str],
}

/// An overlay's change to a part of an operation's spec.
#[derive(Debug, Serialize)]
pub struct Overlaid {
    pub file: &'static str,
    /// 1-based.
    pub action: usize,
    pub description: Option<&'static str>,
    /// Where it changed the spec.
    pub pointer: &'static str,
}

/// Defines a field-less enum shared by the generator and generated code, with the name of each
/// variant as generated code writes it, so that no one maps the variants a second time.
macro_rules! shared_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)* }) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The variant's name, as generated code writes it (`Method::Get`).
            pub const fn variant(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)*
                }
            }
        }
    };
}
pub(crate) use shared_enum;

shared_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

    /// An HTTP method name, which is case-sensitive: `POST`.
    pub fn parse(method: &str) -> Option<Method> {
        Some(match method {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "HEAD" => Method::Head,
            "PATCH" => Method::Patch,
            "TRACE" => Method::Trace,
            _ => return None,
        })
    }

    /// The method an OpenAPI path item's key names: `post`.
    pub fn from_openapi(key: &str) -> Option<Method> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        Method::parse(&key.to_ascii_uppercase())
    }
}

#[derive(Debug, Serialize)]
pub struct Route {
    pub operation_id: &'static str,
    pub method: Method,
    /// Relative to the gateway's base path, e.g. `/deployments/{deployment-id}/chat/completions`.
    pub path: &'static str,
    pub summary: &'static str,
    pub tags: &'static [&'static str],
    pub deprecated: bool,
    pub parameters: &'static [Parameter],
    pub request: Option<RequestSpec>,
    pub responses: &'static [ResponseSpec],
    /// The boolean request field that turns the response into server-sent events.
    pub stream_flag: Option<&'static str>,
    /// The request body field that names the deployment (`model`), where the path names none
    /// (the v1 API's inference operations).
    pub deployment_field: Option<&'static str>,
    /// A success answer reports the tokens the call spent (a top-level `usage`), which the
    /// gateway reads as the answer passes.
    pub reports_usage: bool,
    /// Parts of the request the spec leaves untyped, which the gateway therefore passes
    /// unchecked (a `$ref` that resolves to nothing, a construct the generator cannot type, a
    /// `required` name the schema does not define).
    pub unchecked: &'static [Unchecked],
    /// What the overlays applied at build time changed in this operation's part of the spec.
    pub overlaid: &'static [Overlaid],
    /// The stored objects it creates, names, lists or deletes.
    pub objects: Objects,
}

/// What an operation does with stored objects; see the generator's `convert::objects`.
#[derive(Debug, Serialize)]
pub struct Objects {
    /// It creates an object of this kind.
    pub creates: Option<&'static str>,
    /// What the directory learns from a creating answer: these top-level fields, each the id
    /// of a top-level object of the kind given; `id` first when the object created is itself
    /// top-level.
    pub records: &'static [Recorded],
    /// Path parameters that name an object, outermost first.
    pub path: &'static [PathObject],
    /// Request body fields that name objects.
    pub fields: &'static [FieldObject],
    /// It lists the top-level objects of this kind (`GET /files`).
    pub lists: Option<&'static str>,
    /// It deletes the top-level object its path names.
    pub deletes: bool,
}

/// A field of a creating answer that the directory records.
#[derive(Debug, Serialize)]
pub struct Recorded {
    pub field: &'static str,
    pub kind: &'static str,
}

impl Objects {
    pub const NONE: Objects = Objects {
        creates: None,
        records: &[],
        path: &[],
        fields: &[],
        lists: None,
        deletes: false,
    };

    /// Whether the operation touches stored objects at all.
    pub fn any(&self) -> bool {
        self.creates.is_some()
            || !self.path.is_empty()
            || !self.fields.is_empty()
            || self.lists.is_some()
    }

    /// What the operation does with stored objects, in one line (`aoai-gateway routes`):
    /// `creates response (records id); follows previous_response_id (response)`.
    pub fn describe(&self) -> Option<String> {
        let mut said = Vec::new();
        if let Some(kind) = self.creates {
            let records: Vec<String> = self
                .records
                .iter()
                .map(|r| format!("{} ({})", r.field, r.kind))
                .collect();
            said.push(if records.is_empty() {
                format!("creates {kind}")
            } else {
                format!("creates {kind}, records {}", records.join(", "))
            });
        }
        let followed: Vec<String> = self
            .path
            .iter()
            .map(|p| format!("{{{}}} ({})", p.param, p.kind))
            .chain(
                self.fields
                    .iter()
                    .map(|f| format!("{} ({})", f.path_text(), f.kind)),
            )
            .collect();
        if !followed.is_empty() {
            said.push(format!("follows {}", followed.join(", ")));
        }
        if let Some(kind) = self.lists {
            said.push(format!("lists {kind}"));
        }
        if self.deletes {
            said.push("deletes it".into());
        }
        (!said.is_empty()).then(|| said.join("; "))
    }
}

/// A path parameter that names an object.
#[derive(Debug, Serialize)]
pub struct PathObject {
    pub param: &'static str,
    pub kind: &'static str,
}

/// A request body field that names objects (one id, or a list of them).
#[derive(Debug, Serialize)]
pub struct FieldObject {
    pub path: &'static [Step],
    pub kind: &'static str,
}

impl FieldObject {
    /// Its path as people write it: `tools[].vector_store_ids[]`.
    pub fn path_text(&self) -> String {
        path_text(self.path.iter().map(|s| match s {
            Step::Member(name) => Some(*name),
            Step::Items => None,
        }))
    }
}

/// One step of the way to a body field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Step {
    /// The member of this name.
    Member(&'static str),
    /// Every item of an array.
    Items,
}

/// A path as people write it (`tools[].vector_store_ids[]`) from its steps: a member's name,
/// or `None` for every item of an array.
pub fn path_text<'a>(steps: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Some(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            None => out.push_str("[]"),
        }
    }
    out
}

/// A node of the spec that requests are not validated against, and why.
#[derive(Debug, Serialize)]
pub struct Unchecked {
    /// JSON pointer into the spec file.
    pub pointer: &'static str,
    pub reason: &'static str,
}

shared_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum ParamLocation {
        Path,
        Query,
        Header,
        Cookie,
    }
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

#[derive(Debug, Serialize)]
pub struct Parameter {
    pub name: &'static str,
    pub location: ParamLocation,
    pub required: bool,
    /// What its value must be, read from text (see [`crate::schema::text`]).
    #[serde(rename = "type")]
    pub ty: Ty,
}

#[derive(Debug, Serialize)]
pub struct RequestSpec {
    pub required: bool,
    pub content: &'static [Media],
}

#[derive(Debug, Serialize)]
pub struct ResponseSpec {
    /// `200`, `4XX` or `default`.
    pub status: &'static str,
    pub description: &'static str,
    pub content: &'static [Media],
}

shared_enum! {
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
}

impl ContentKind {
    /// The kind of a media type, its parameters and letter case aside. Compared in place, not
    /// on a lower-cased copy: the proxy asks this of every request and answer.
    pub fn of(media_type: &str) -> ContentKind {
        let essence = media_type.split(';').next().unwrap_or("").trim();
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        let starts = |prefix: &str| {
            essence
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        };
        let ends = |suffix: &str| {
            essence
                .len()
                .checked_sub(suffix.len())
                .and_then(|at| essence.get(at..))
                .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
        };
        if is("application/json") || ends("+json") {
            ContentKind::Json
        } else if is("multipart/form-data") {
            ContentKind::Multipart
        } else if is("application/x-www-form-urlencoded") {
            ContentKind::FormUrlEncoded
        } else if is("text/event-stream") {
            ContentKind::EventStream
        } else if starts("text/") {
            ContentKind::Text
        } else if is("application/octet-stream")
            || starts("audio/")
            || starts("image/")
            || starts("video/")
        {
            ContentKind::Binary
        } else {
            ContentKind::Other
        }
    }
}

/// A media type without its parameters, lower-cased: `Application/JSON; charset=utf-8` →
/// `application/json`.
pub fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A body of one media type.
#[derive(Debug, Serialize)]
pub struct Media {
    pub media_type: &'static str,
    pub kind: ContentKind,
    /// The generated model's name.
    pub model: Option<&'static str>,
    /// When this body is used rather than the others, e.g. "when the request sets `stream: true`".
    pub condition: Option<&'static str>,
    /// What a request body of this media type must look like (requests only): its JSON, or
    /// for a form its fields as a JSON object would hold them.
    #[serde(skip)]
    pub schema: Option<&'static Ty>,
    #[serde(skip)]
    pub roundtrip: Option<Roundtrip>,
    /// The parts of a form body.
    pub form_fields: &'static [FormField],
}

#[derive(Debug, Serialize)]
pub struct FormField {
    pub name: &'static str,
    pub required: bool,
    /// A file part.
    pub binary: bool,
    /// What a text part must hold.
    #[serde(rename = "type")]
    pub ty: Ty,
}
