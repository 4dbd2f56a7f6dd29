//! Stage 2: from a loaded spec to the intermediate model.
//!
//! Rules for schemas, in the order [`Converter::shape`] applies them:
//! - `string`, `integer`, `number`, `boolean` map to Rust scalars; `format: binary` to bytes.
//! - A string `enum` becomes a Rust enum; with `x-ms-enum: modelAsString: true` it also keeps
//!   values the spec does not list. An inline enum with an `x-ms-enum` name takes that name, and
//!   two inline enums with one name and the same values share one type.
//! - An object with properties becomes a struct. Unknown properties, and those under
//!   `additionalProperties`, land in a flattened map so nothing is lost. An object without
//!   properties is a map (typed by `additionalProperties`) or any JSON object.
//! - `oneOf` and `anyOf` become an enum of the variants. When every variant is an object with a
//!   required property holding one constant string (`type`, `role`, `object`, `event`, …), or
//!   the schema names a `discriminator`, the value of that property picks the variant; otherwise
//!   variants are tried in order: those requiring more properties first, then in spec order.
//!   A single variant is just that type.
//! - A schema with a `discriminator` and no `oneOf` (a base that others extend with `allOf`)
//!   becomes the enum of the schemas its `mapping` names.
//! - `allOf` over objects is one merged struct; over anything else, an intersection that
//!   checks every part.
//! - `not`, and mixtures no rule covers, become an untyped JSON value with a build warning.
//!
//! A field is `Option` when not required; a field that may be `null` (the property, its `$ref`
//! sibling or the referenced schema says `nullable`) holds `Option` as well, so that an explicit
//! `null` and an absent field stay distinct. Types that contain themselves are boxed only on the
//! edges that close the cycle.
//!
//! Where each concern lives: this module names and defines types; `refs` follows `$ref`s (one
//! resolver for every component a spec may give by reference); `shapes` classifies schemas and
//! builds structs, enums and intersections; `unions` builds `oneOf`/`anyOf`; `checks` reads
//! the validation keywords; `operations` reads paths, parameters and bodies; `cycles` boxes
//! recursive types; `objects` marks what operations do with stored objects.

use std::collections::{BTreeMap, HashMap, HashSet};

use indexmap::IndexMap;
use openapiv3::{AnySchema, Schema, SchemaKind};
use serde_json::Value;

use crate::error::{Error, Warning, WarningKind};
use crate::ir::{self, TypeKind, TypeRef};
use crate::load::Document;
use crate::load::Options;
use crate::names::{self, Namespace, pointer_token};

mod checks;
mod cycles;
mod objects;
mod operations;
mod refs;
mod shapes;
mod unions;

use refs::{OwnedRef, SchemaRef, unescape_token};
use shapes::{ObjectParts, Shape, rename_enum_values, same_values, x_ms_enum};

/// How deep `$ref` chains and nested `allOf`s may go before we call it a cycle.
const MAX_DEPTH: usize = 32;

/// Converts a loaded spec. Under [`Options::strict`], a rule of the spec that is not enforced
/// (see [`WarningKind::NotEnforced`]) fails the conversion instead of warning.
pub fn convert(doc: &Document, options: Options) -> Result<(ir::Api, Vec<Warning>), Error> {
    let mut c = Converter::new(doc);
    let schema_names: Vec<String> = c.components.keys().cloned().collect();
    for name in &schema_names {
        c.define_component(name);
    }
    let mut operations = c.operations()?;
    c.box_cycles();
    objects::mark(&mut operations, &c.types);
    let mut document = served(doc);
    unenforce(&mut document, &c.unenforced);
    let api = ir::Api {
        version: doc.version.clone(),
        module: names::version_module(&doc.version),
        source: doc.source.clone(),
        source_sha256: sha256_hex(doc.text.as_bytes()),
        mount: doc.mount.clone(),
        title: doc.api.info.title.clone(),
        description: doc.api.info.description.clone(),
        operations,
        types: c.types.into_values().collect(),
        overlays: doc.overlays.clone(),
        document,
    };
    if options.strict
        && let Some(unenforced) = c
            .warnings
            .iter()
            .find(|w| w.kind == WarningKind::NotEnforced)
    {
        return Err(unenforced.clone().into_error());
    }
    Ok((api, c.warnings))
}

/// The spec as the gateway serves it at `/openapi/<api-version>.json`: as it enforces it (the
/// published file with its overlays applied, and annotations of the wrong type repaired),
/// `servers` removed (the gateway adds its own), the `api-version` query parameter narrowed to
/// the one version the document answers to (the only value the gateway accepts with it), and
/// the overlays applied listed under [`OVERLAYS_EXTENSION`]; [`convert`] then takes out the
/// `required` names it does not enforce ([`UNENFORCED_EXTENSION`]). Nothing else changes.
fn served(doc: &Document) -> Value {
    let mut served = doc.published.clone();
    let pin = |parameters: Option<&mut Value>| {
        let Some(parameters) = parameters else {
            return;
        };
        let list: Vec<&mut Value> = match parameters {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(named) => named.values_mut().collect(),
            _ => return,
        };
        for p in list {
            if p.get("name").and_then(Value::as_str) == Some("api-version")
                && p.get("in").and_then(Value::as_str) == Some("query")
            {
                p["schema"] = serde_json::json!({ "type": "string", "enum": [doc.version] });
            }
        }
    };
    if let Some(paths) = served.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (key, value) in item.iter_mut() {
                if key == "parameters" {
                    pin(Some(value));
                } else if ir::Method::from_openapi(key).is_some() {
                    pin(value.get_mut("parameters"));
                }
            }
        }
    }
    pin(served.pointer_mut("/components/parameters"));
    // What was changed from the published file, for whoever reads this copy.
    if !doc.overlays.is_empty()
        && let Some(root) = served.as_object_mut()
    {
        root.insert(
            OVERLAYS_EXTENSION.into(),
            serde_json::to_value(&doc.overlays).unwrap_or(Value::Null),
        );
    }
    served
}

/// The extension of the served document that lists the overlays applied to it.
pub const OVERLAYS_EXTENSION: &str = "x-aoai-gateway-overlays";

/// The extension of the served document that lists the `required` names it does not enforce.
pub const UNENFORCED_EXTENSION: &str = "x-aoai-gateway-unenforced";

/// Takes the `required` names the gateway does not enforce (see `shapes`) out of the served
/// document, which says what the gateway enforces, and lists them under
/// [`UNENFORCED_EXTENSION`].
fn unenforce(served: &mut Value, unenforced: &[(String, String)]) {
    if unenforced.is_empty() {
        return;
    }
    for (pointer, name) in unenforced {
        let list = pointer
            .strip_prefix('#')
            .and_then(|p| served.pointer_mut(p))
            .and_then(Value::as_array_mut);
        if let Some(list) = list {
            list.retain(|n| n.as_str() != Some(name));
        }
    }
    let listed: Vec<Value> = unenforced
        .iter()
        .map(|(pointer, name)| serde_json::json!({ "pointer": pointer, "name": name }))
        .collect();
    if let Some(root) = served.as_object_mut() {
        root.insert(UNENFORCED_EXTENSION.into(), Value::Array(listed));
    }
}

struct Converter<'d> {
    doc: &'d Document,
    types: BTreeMap<String, ir::TypeDef>,
    type_names: Namespace,
    /// `components.schemas` key → Rust type name, assigned up front so that inline types never
    /// take a name a component wants.
    components: IndexMap<String, String>,
    started: HashSet<String>,
    /// Types made for references that do not name a component schema.
    by_pointer: HashMap<String, TypeRef>,
    warnings: Vec<Warning>,
    /// `required` names not enforced: (pointer of the `required` list, name).
    unenforced: Vec<(String, String)>,
}

impl<'d> Converter<'d> {
    fn new(doc: &'d Document) -> Self {
        let mut type_names = Namespace::with_reserved(names::RESERVED_TYPE_NAMES);
        let mut components = IndexMap::new();
        if let Some(c) = &doc.api.components {
            for name in c.schemas.keys() {
                let rust = type_names.claim(&names::type_ident(name));
                components.insert(name.clone(), rust);
            }
        }
        Converter {
            doc,
            types: BTreeMap::new(),
            type_names,
            components,
            started: HashSet::new(),
            by_pointer: HashMap::new(),
            warnings: Vec::new(),
            unenforced: Vec::new(),
        }
    }

    /// The error that stops the build at `pointer`, with its line.
    fn error(&self, pointer: impl AsRef<str>, message: impl Into<String>) -> Error {
        Error::Spec {
            location: self.doc.location(pointer.as_ref()),
            message: message.into(),
        }
    }

    fn warn(&mut self, pointer: &str, message: String, kind: WarningKind) {
        let warning = Warning {
            location: self.doc.location(pointer),
            message,
            kind,
        };
        // A schema reached from several places is converted once per place.
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    // ----- naming and defining -----

    pub(super) fn define_component(&mut self, schema_name: &str) -> TypeRef {
        let Some(rust) = self.components.get(schema_name).cloned() else {
            return TypeRef::Any;
        };
        if self.started.insert(schema_name.to_string()) {
            let pointer = format!("#/components/schemas/{}", pointer_token(schema_name));
            match self.resolve(SchemaRef::Ref(&pointer), &pointer) {
                Some(res) => {
                    let kind = self.kind(&res.schema, &res.pointer, &rust);
                    self.insert_def(
                        &rust,
                        Some(schema_name.to_string()),
                        &res.schema,
                        &res.pointer,
                        kind,
                    );
                }
                None => {
                    let reason = "the schema could not be read".to_string();
                    self.warn(&pointer, format!("untyped: {reason}"), WarningKind::Untyped);
                    let schema = Schema {
                        schema_data: Default::default(),
                        schema_kind: SchemaKind::Any(AnySchema::default()),
                    };
                    self.insert_def(
                        &rust,
                        Some(schema_name.to_string()),
                        &schema,
                        &pointer,
                        TypeKind::Untyped { reason },
                    );
                }
            }
        }
        TypeRef::Named(rust)
    }

    pub(super) fn insert_def(
        &mut self,
        name: &str,
        schema_name: Option<String>,
        schema: &Schema,
        pointer: &str,
        kind: TypeKind,
    ) {
        let data = &schema.schema_data;
        let def = ir::TypeDef {
            name: name.to_string(),
            schema_name,
            pointer: pointer.to_string(),
            title: data.title.clone(),
            description: data.description.clone(),
            deprecated: data.deprecated,
            nullable: self.nullable(SchemaRef::Item(schema), pointer, 0),
            kind,
            checks: self.checks_at(pointer),
        };
        self.types.insert(name.to_string(), def);
    }

    /// The type for a schema used somewhere (a property, item, variant, parameter or body);
    /// `hint` names it if it needs a new named type.
    pub(super) fn type_ref(&mut self, r: SchemaRef<'_>, site: &str, hint: &str) -> TypeRef {
        match r {
            SchemaRef::Ref(target) => {
                if let Some(name) = Self::component_of(target) {
                    let name = unescape_token(name);
                    if self.components.contains_key(&name) {
                        return self.define_component(&name);
                    }
                }
                if let Some(t) = self.by_pointer.get(target) {
                    return t.clone();
                }
                match self.resolve(r, site) {
                    Some(res) => {
                        // Claim the name first: the target may refer back to itself.
                        let name = self.type_names.claim(&names::type_ident(hint));
                        self.by_pointer
                            .insert(target.to_string(), TypeRef::Named(name.clone()));
                        let kind = self.kind(&res.schema, &res.pointer, &name);
                        self.insert_def(&name, None, &res.schema, &res.pointer, kind);
                        TypeRef::Named(name)
                    }
                    None => {
                        // A target that names nothing was reported when the file was loaded.
                        if self.doc.resolve(target).is_some() {
                            self.warn(
                                site,
                                format!("untyped: $ref \"{target}\" is not a schema"),
                                WarningKind::Untyped,
                            );
                        }
                        TypeRef::Any
                    }
                }
            }
            SchemaRef::Item(schema) => self.inline(schema, site, hint),
        }
    }

    pub(super) fn inline(&mut self, schema: &Schema, pointer: &str, hint: &str) -> TypeRef {
        match self.shape(schema, pointer) {
            Shape::Scalar(t) => t,
            Shape::FreeObject => TypeRef::Object,
            Shape::Any => TypeRef::Any,
            Shape::Array(items, site) => self.array_of(items, &site, hint),
            Shape::Map(value, site) => self.map_of(value, &site, hint),
            Shape::Enum(e) => self.named_enum(schema, pointer, hint, e),
            Shape::Union { variants, .. } if variants.len() == 1 => {
                let (v, site) = &variants[0];
                self.type_ref(v.borrow(), site, hint)
            }
            _ => {
                let name = self.type_names.claim(&names::type_ident(hint));
                let kind = self.kind(schema, pointer, &name);
                self.insert_def(&name, None, schema, pointer, kind);
                TypeRef::Named(name)
            }
        }
    }

    /// An inline string enum: named after its `x-ms-enum` name when it has one, and shared with
    /// an identical enum of that name.
    pub(super) fn named_enum(
        &mut self,
        schema: &Schema,
        pointer: &str,
        hint: &str,
        e: ir::Enum,
    ) -> TypeRef {
        if let Some(ms_name) = x_ms_enum(schema)
            .and_then(|x| x.get("name"))
            .and_then(Value::as_str)
        {
            let wanted = names::type_ident(ms_name);
            match self.types.get(&wanted) {
                Some(ir::TypeDef {
                    kind: TypeKind::Enum(existing),
                    ..
                }) if same_values(existing, &e) => {
                    return TypeRef::Named(wanted);
                }
                Some(_) => {}
                None if !self.type_names.contains(&wanted) => {
                    let name = self.type_names.claim(&wanted);
                    let e = rename_enum_values(e, &name);
                    self.insert_def(&name, None, schema, pointer, TypeKind::Enum(e));
                    return TypeRef::Named(name);
                }
                None => {}
            }
        }
        let name = self.type_names.claim(&names::type_ident(hint));
        let e = rename_enum_values(e, &name);
        self.insert_def(&name, None, schema, pointer, TypeKind::Enum(e));
        TypeRef::Named(name)
    }

    pub(super) fn array_of(&mut self, items: Option<OwnedRef>, site: &str, hint: &str) -> TypeRef {
        let Some(items) = items else {
            return TypeRef::Array(Box::new(TypeRef::Any));
        };
        let item_hint = format!("{hint}Item");
        let t = self.type_ref(items.borrow(), site, &item_hint);
        let t = if self.nullable(items.borrow(), site, 0) {
            TypeRef::Nullable(Box::new(t))
        } else {
            t
        };
        TypeRef::Array(Box::new(t))
    }

    pub(super) fn map_of(&mut self, value: OwnedRef, site: &str, hint: &str) -> TypeRef {
        let value_hint = format!("{hint}Value");
        let t = self.type_ref(value.borrow(), site, &value_hint);
        let t = if self.nullable(value.borrow(), site, 0) {
            TypeRef::Nullable(Box::new(t))
        } else {
            t
        };
        TypeRef::Map(Box::new(t))
    }
}

/// `bytes`' SHA-256 in lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
