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

use std::collections::{BTreeMap, HashMap, HashSet};

use indexmap::IndexMap;
use openapiv3::{
    AdditionalProperties, AnySchema, Discriminator, ParameterSchemaOrContent, ReferenceOr, Schema,
    SchemaKind, StatusCode, Type, VariantOrUnknownOrEmpty,
};
use serde_json::Value;

use crate::error::{Error, Location, Warning};
use crate::ir::{self, ContentKind, TypeKind, TypeRef};
use crate::load::Document;
use crate::names::{self, Namespace, pointer_token};

/// How deep `$ref` chains and nested `allOf`s may go before we call it a cycle.
const MAX_DEPTH: usize = 32;

pub fn convert(doc: &Document) -> Result<(ir::Api, Vec<Warning>), Error> {
    let mut c = Converter::new(doc);
    let schema_names: Vec<String> = c.components.keys().cloned().collect();
    for name in &schema_names {
        c.define_component(name);
    }
    let operations = c.operations()?;
    c.box_cycles();
    let api = ir::Api {
        version: doc.version.clone(),
        module: names::version_module(&doc.version),
        source: doc.source.clone(),
        title: doc.api.info.title.clone(),
        description: doc.api.info.description.clone(),
        operations,
        types: c.types.into_values().collect(),
        document: served(doc),
    };
    Ok((api, c.warnings))
}

/// The spec as the gateway serves it at `/openapi/<api-version>.json`: `servers` removed (the
/// gateway adds its own), and the `api-version` query parameter narrowed to the one version the
/// document answers to, which is the only value the gateway accepts with it. Nothing else
/// changes.
fn served(doc: &Document) -> Value {
    let mut served = doc.raw.clone();
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
    served
}

/// A schema, or a reference to one, as it sits in the spec.
#[derive(Clone, Copy)]
enum SchemaRef<'a> {
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
struct Resolved {
    schema: Schema,
    pointer: String,
}

/// A schema's properties, gathered through `allOf`.
#[derive(Default)]
struct ObjectParts {
    /// (spec name, schema, pointer of the property)
    properties: IndexMap<String, (OwnedRef, String)>,
    required: Vec<String>,
    additional: Option<AdditionalProperties>,
    /// Pointer of the `additionalProperties` schema in force.
    additional_site: String,
    closed: bool,
}

/// Like [`SchemaRef`] but owned, because merged parts may come from several resolved schemas.
#[derive(Clone)]
enum OwnedRef {
    Ref(String),
    Item(Box<Schema>),
}

impl OwnedRef {
    fn borrow(&self) -> SchemaRef<'_> {
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

/// What a schema is, before it is named.
enum Shape {
    Scalar(TypeRef),
    Array(Option<OwnedRef>, String),
    Map(OwnedRef, String),
    FreeObject,
    Any,
    Enum(ir::Enum),
    Object(ObjectParts),
    Union {
        variants: Vec<(OwnedRef, String)>,
        discriminator: Option<Discriminator>,
    },
    /// `allOf` with at least one part that is not an object.
    Intersection {
        others: Vec<(OwnedRef, String)>,
        object: ObjectParts,
    },
    /// A base schema with a `discriminator` that other schemas extend.
    Polymorphic {
        property: String,
        subtypes: Vec<(String, String)>,
    },
    Unsupported(String),
}

struct Converter<'d> {
    doc: &'d Document,
    file: &'d str,
    types: BTreeMap<String, ir::TypeDef>,
    type_names: Namespace,
    /// `components.schemas` key → Rust type name, assigned up front so that inline types never
    /// take a name a component wants.
    components: IndexMap<String, String>,
    started: HashSet<String>,
    /// Types made for references that do not name a component schema.
    by_pointer: HashMap<String, TypeRef>,
    warnings: Vec<Warning>,
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
            file: &doc.file,
            types: BTreeMap::new(),
            type_names,
            components,
            started: HashSet::new(),
            by_pointer: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, pointer: &str, message: String, untyped_fallback: bool) {
        self.warnings.push(Warning {
            location: Location {
                file: self.file.into(),
                pointer: pointer.to_string(),
                line: None,
            },
            message,
            untyped_fallback,
        });
    }

    // ----- resolving -----

    fn component_of(target: &str) -> Option<&str> {
        let name = target.strip_prefix("#/components/schemas/")?;
        (!name.contains('/')).then_some(name)
    }

    fn resolve(&self, r: SchemaRef<'_>, site: &str) -> Option<Resolved> {
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

    fn raw(&self, pointer: &str) -> Option<&'d Value> {
        self.doc.resolve(pointer)
    }

    /// `nullable: true` written next to a `$ref`, which OpenAPI 3.0 ignores but spec authors
    /// (Azure's included) mean.
    fn sibling_flag(&self, site: &str, flag: &str) -> bool {
        self.raw(site)
            .filter(|v| v.get("$ref").is_some())
            .and_then(|v| v.get(flag))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn sibling_description(&self, site: &str) -> Option<String> {
        self.raw(site)
            .filter(|v| v.get("$ref").is_some())
            .and_then(|v| v.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The validation keywords written at `site` (an inline schema, or keywords beside a
    /// `$ref`), with those of its items and map values written in place. References are not
    /// followed: a referenced schema's checks belong to its own type.
    fn checks_at(&mut self, site: &str) -> ir::Checks {
        let Some(raw) = self.raw(site) else {
            return ir::Checks::default();
        };
        self.checks_of(raw, site, 0)
    }

    fn checks_of(&mut self, raw: &Value, site: &str, depth: usize) -> ir::Checks {
        let Some(schema) = raw.as_object() else {
            return ir::Checks::default();
        };
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        let flag = |key: &str| schema.get(key).and_then(Value::as_bool).unwrap_or(false);
        // OpenAPI 3.0 writes `exclusiveMinimum: true` next to `minimum`; 3.1 writes the bound.
        let bound = |plain: &str, exclusive: &str| {
            let strict = number(exclusive).map(|value| ir::Bound {
                value,
                exclusive: true,
            });
            let inclusive = number(plain).map(|value| ir::Bound {
                value,
                exclusive: flag(exclusive),
            });
            strict.or(inclusive)
        };
        let mut checks = ir::Checks {
            minimum: bound("minimum", "exclusiveMinimum"),
            maximum: bound("maximum", "exclusiveMaximum"),
            multiple_of: number("multipleOf").filter(|m| *m > 0.0),
            min_length: count("minLength"),
            max_length: count("maxLength"),
            pattern: None,
            format: schema
                .get("format")
                .and_then(Value::as_str)
                .and_then(ir::Format::from_openapi),
            min_items: count("minItems"),
            max_items: count("maxItems"),
            unique_items: flag("uniqueItems"),
            min_properties: count("minProperties"),
            max_properties: count("maxProperties"),
            items: None,
            values: None,
        };
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            // Checked by the gateway with the `regex-lite` engine; a pattern it cannot read is
            // left unchecked, with a warning, rather than failing the build.
            match regex_lite::Regex::new(pattern) {
                Ok(_) => checks.pattern = Some(pattern.to_string()),
                Err(e) => self.warn(
                    site,
                    format!("pattern `{pattern}` is not checked: {e}"),
                    false,
                ),
            }
        }
        if depth < MAX_DEPTH {
            if let Some(items) = schema.get("items") {
                let nested = self.checks_of(items, &format!("{site}/items"), depth + 1);
                checks.items = (!nested.is_empty()).then(|| Box::new(nested));
            }
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                let nested =
                    self.checks_of(values, &format!("{site}/additionalProperties"), depth + 1);
                checks.values = (!nested.is_empty()).then(|| Box::new(nested));
            }
        }
        checks
    }

    /// The checks a use of a schema carries: none when the schema, written in place, became a
    /// named type of its own, which carries them.
    fn use_checks(&mut self, r: SchemaRef<'_>, site: &str, ty: &TypeRef) -> ir::Checks {
        if matches!(r, SchemaRef::Item(_)) && ty.inline_named().is_some() {
            return ir::Checks::default();
        }
        self.checks_at(site)
    }

    /// Whether a value of this schema may be `null`.
    fn nullable(&self, r: SchemaRef<'_>, site: &str, depth: usize) -> bool {
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

    // ----- naming and defining -----

    fn define_component(&mut self, schema_name: &str) -> TypeRef {
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
                    self.warn(&pointer, format!("untyped: {reason}"), true);
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

    fn insert_def(
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
    fn type_ref(&mut self, r: SchemaRef<'_>, site: &str, hint: &str) -> TypeRef {
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
                        self.warn(
                            site,
                            format!("untyped: $ref \"{target}\" is not a schema"),
                            true,
                        );
                        TypeRef::Any
                    }
                }
            }
            SchemaRef::Item(schema) => self.inline(schema, site, hint),
        }
    }

    fn inline(&mut self, schema: &Schema, pointer: &str, hint: &str) -> TypeRef {
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
    fn named_enum(&mut self, schema: &Schema, pointer: &str, hint: &str, e: ir::Enum) -> TypeRef {
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

    fn array_of(&mut self, items: Option<OwnedRef>, site: &str, hint: &str) -> TypeRef {
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

    fn map_of(&mut self, value: OwnedRef, site: &str, hint: &str) -> TypeRef {
        let value_hint = format!("{hint}Value");
        let t = self.type_ref(value.borrow(), site, &value_hint);
        let t = if self.nullable(value.borrow(), site, 0) {
            TypeRef::Nullable(Box::new(t))
        } else {
            t
        };
        TypeRef::Map(Box::new(t))
    }

    // ----- classifying -----

    fn shape(&self, schema: &Schema, pointer: &str) -> Shape {
        let discriminator = schema.schema_data.discriminator.clone();
        match &schema.schema_kind {
            SchemaKind::Type(Type::String(st)) => {
                let values: Vec<&str> = st
                    .enumeration
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if !values.is_empty() {
                    Shape::Enum(enum_of(schema, &values))
                } else if matches!(
                    &st.format,
                    VariantOrUnknownOrEmpty::Item(openapiv3::StringFormat::Binary)
                ) {
                    Shape::Scalar(TypeRef::Binary)
                } else {
                    Shape::Scalar(TypeRef::String)
                }
            }
            SchemaKind::Type(Type::Number(_)) => Shape::Scalar(TypeRef::Number),
            SchemaKind::Type(Type::Integer(it)) => Shape::Scalar(integer(matches!(
                &it.format,
                VariantOrUnknownOrEmpty::Item(openapiv3::IntegerFormat::Int32)
            ))),
            SchemaKind::Type(Type::Boolean(_)) => Shape::Scalar(TypeRef::Boolean),
            SchemaKind::Type(Type::Array(at)) => Shape::Array(
                at.items.as_ref().map(|i| SchemaRef::from(i).into()),
                format!("{pointer}/items"),
            ),
            SchemaKind::Type(Type::Object(ot)) => {
                if let Some(found) = self.polymorphic(discriminator.as_ref(), pointer) {
                    return found;
                }
                let parts = self.own_parts(
                    &ot.properties,
                    &ot.required,
                    ot.additional_properties.as_ref(),
                    pointer,
                );
                object_shape(parts, pointer)
            }
            SchemaKind::OneOf { one_of } => union_shape(one_of, "oneOf", pointer, discriminator),
            SchemaKind::AnyOf { any_of } => union_shape(any_of, "anyOf", pointer, discriminator),
            SchemaKind::AllOf { all_of } => {
                self.all_of_shape(all_of, ObjectParts::default(), pointer)
            }
            SchemaKind::Not { .. } => Shape::Unsupported("`not` schemas".into()),
            SchemaKind::Any(a) => self.any_shape(schema, a, discriminator, pointer),
        }
    }

    fn any_shape(
        &self,
        schema: &Schema,
        a: &AnySchema,
        discriminator: Option<Discriminator>,
        pointer: &str,
    ) -> Shape {
        if a.not.is_some() {
            return Shape::Unsupported("`not` schemas".into());
        }
        let own = self.own_parts(
            &a.properties,
            &a.required,
            a.additional_properties.as_ref(),
            pointer,
        );
        let (variants, key) = if !a.one_of.is_empty() {
            (&a.one_of, "oneOf")
        } else {
            (&a.any_of, "anyOf")
        };
        if !a.all_of.is_empty() {
            if !variants.is_empty() {
                return Shape::Unsupported(format!("`allOf` together with `{key}`"));
            }
            return self.all_of_shape(&a.all_of, own, pointer);
        }
        if !variants.is_empty() {
            // `oneOf: [{required: [a]}, {required: [b]}]` next to properties only says which
            // properties must be present; the object itself is the type.
            let constraint_only = variants.iter().all(|v| match v {
                ReferenceOr::Item(s) => {
                    matches!(&s.schema_kind, SchemaKind::Any(x) if is_constraint_only(x))
                }
                ReferenceOr::Reference { .. } => false,
            });
            if constraint_only {
                return object_shape(own, pointer);
            }
            if !own.properties.is_empty() {
                return Shape::Intersection {
                    others: vec![(
                        OwnedRef::Item(Box::new(union_schema(variants, key))),
                        pointer.to_string(),
                    )],
                    object: own,
                };
            }
            return union_shape(variants, key, pointer, discriminator);
        }
        let strings: Vec<&str> = a.enumeration.iter().filter_map(Value::as_str).collect();
        match a.typ.as_deref() {
            Some("array") => Shape::Array(
                a.items.as_ref().map(|i| SchemaRef::from(i).into()),
                format!("{pointer}/items"),
            ),
            Some("string") if !strings.is_empty() => Shape::Enum(enum_of(schema, &strings)),
            Some("string") if a.format.as_deref() == Some("binary") => {
                Shape::Scalar(TypeRef::Binary)
            }
            Some("string") => Shape::Scalar(TypeRef::String),
            Some("integer") => Shape::Scalar(integer(a.format.as_deref() == Some("int32"))),
            Some("number") => Shape::Scalar(TypeRef::Number),
            Some("boolean") => Shape::Scalar(TypeRef::Boolean),
            Some("object") | None
                if !own.properties.is_empty()
                    || !own.required.is_empty()
                    || own.additional.is_some() =>
            {
                if let Some(found) = self.polymorphic(discriminator.as_ref(), pointer) {
                    return found;
                }
                object_shape(own, pointer)
            }
            Some("object") => Shape::FreeObject,
            None if !a.enumeration.is_empty()
                && strings.len() == a.enumeration.iter().filter(|v| !v.is_null()).count() =>
            {
                Shape::Enum(enum_of(schema, &strings))
            }
            None if a.enumeration.is_empty() => Shape::Any,
            None => Shape::Unsupported("an `enum` of values that are not all strings".into()),
            Some(other) => Shape::Unsupported(format!("`type: {other}`")),
        }
    }

    fn own_parts(
        &self,
        properties: &IndexMap<String, ReferenceOr<Box<Schema>>>,
        required: &[String],
        additional: Option<&AdditionalProperties>,
        pointer: &str,
    ) -> ObjectParts {
        let mut parts = ObjectParts {
            required: required.to_vec(),
            additional: additional.cloned(),
            additional_site: format!("{pointer}/additionalProperties"),
            closed: matches!(additional, Some(AdditionalProperties::Any(false))),
            ..Default::default()
        };
        for (name, prop) in properties {
            let site = format!("{pointer}/properties/{}", pointer_token(name));
            parts
                .properties
                .insert(name.clone(), (SchemaRef::from(prop).into(), site));
        }
        parts
    }

    fn all_of_shape(
        &self,
        all_of: &[ReferenceOr<Schema>],
        own: ObjectParts,
        pointer: &str,
    ) -> Shape {
        let mut merged = ObjectParts::default();
        let mut others = Vec::new();
        for (i, part) in all_of.iter().enumerate() {
            let site = format!("{pointer}/allOf/{i}");
            match self.object_parts(part.into(), &site, 0) {
                Some(parts) => merge(&mut merged, parts),
                None => others.push((SchemaRef::from(part).into(), site)),
            }
        }
        merge(&mut merged, own);
        if others.is_empty() {
            Shape::Object(merged)
        } else {
            Shape::Intersection {
                others,
                object: merged,
            }
        }
    }

    /// The properties of an object-like schema, through references and `allOf`; `None` when
    /// the schema is not an object.
    fn object_parts(&self, r: SchemaRef<'_>, site: &str, depth: usize) -> Option<ObjectParts> {
        if depth > MAX_DEPTH {
            return None;
        }
        let res = self.resolve(r, site)?;
        let pointer = &res.pointer;
        match &res.schema.schema_kind {
            SchemaKind::Type(Type::Object(ot)) => Some(self.own_parts(
                &ot.properties,
                &ot.required,
                ot.additional_properties.as_ref(),
                pointer,
            )),
            SchemaKind::AllOf { all_of } => {
                let mut merged = ObjectParts::default();
                for (i, part) in all_of.iter().enumerate() {
                    merge(
                        &mut merged,
                        self.object_parts(part.into(), &format!("{pointer}/allOf/{i}"), depth + 1)?,
                    );
                }
                Some(merged)
            }
            SchemaKind::Any(a) if a.not.is_none() && a.one_of.is_empty() && a.any_of.is_empty() => {
                if !matches!(a.typ.as_deref(), None | Some("object")) {
                    return None;
                }
                let mut merged = ObjectParts::default();
                for (i, part) in a.all_of.iter().enumerate() {
                    merge(
                        &mut merged,
                        self.object_parts(part.into(), &format!("{pointer}/allOf/{i}"), depth + 1)?,
                    );
                }
                merge(
                    &mut merged,
                    self.own_parts(
                        &a.properties,
                        &a.required,
                        a.additional_properties.as_ref(),
                        pointer,
                    ),
                );
                (a.typ.is_some() || !merged.properties.is_empty() || !merged.required.is_empty())
                    .then_some(merged)
            }
            _ => None,
        }
    }

    /// A component schema with a `discriminator` that other schemas extend: the union of those.
    fn polymorphic(&self, discriminator: Option<&Discriminator>, pointer: &str) -> Option<Shape> {
        let d = discriminator?;
        let mut subtypes = Vec::new();
        for (value, target) in &d.mapping {
            let target = if target.starts_with('#') {
                target.clone()
            } else {
                format!("#/components/schemas/{target}")
            };
            if target != pointer {
                subtypes.push((value.clone(), target));
            }
        }
        if subtypes.is_empty() {
            // Without a mapping, the subtypes are the component schemas whose `allOf` names this
            // one, each tagged by its `x-ms-discriminator-value` or else its name.
            for (name, schema) in self
                .doc
                .api
                .components
                .iter()
                .flat_map(|c| c.schemas.iter())
            {
                let ReferenceOr::Item(s) = schema else {
                    continue;
                };
                let all_of = match &s.schema_kind {
                    SchemaKind::AllOf { all_of } => all_of,
                    SchemaKind::Any(a) => &a.all_of,
                    _ => continue,
                };
                if all_of.iter().any(
                    |p| matches!(p, ReferenceOr::Reference { reference } if reference == pointer),
                ) {
                    let value = s
                        .schema_data
                        .extensions
                        .get("x-ms-discriminator-value")
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_string();
                    subtypes.push((
                        value,
                        format!("#/components/schemas/{}", pointer_token(name)),
                    ));
                }
            }
        }
        (!subtypes.is_empty()).then(|| Shape::Polymorphic {
            property: d.property_name.clone(),
            subtypes,
        })
    }

    // ----- building type kinds -----

    fn kind(&mut self, schema: &Schema, pointer: &str, name: &str) -> TypeKind {
        match self.shape(schema, pointer) {
            Shape::Scalar(t) => TypeKind::Alias { target: t },
            Shape::FreeObject => TypeKind::Alias {
                target: TypeRef::Object,
            },
            Shape::Any => TypeKind::Alias {
                target: TypeRef::Any,
            },
            Shape::Array(items, site) => TypeKind::Alias {
                target: self.array_of(items, &site, name),
            },
            Shape::Map(value, site) => TypeKind::Alias {
                target: self.map_of(value, &site, name),
            },
            Shape::Enum(e) => TypeKind::Enum(rename_enum_values(e, name)),
            Shape::Object(parts) => TypeKind::Struct(self.structure(name, parts)),
            Shape::Union {
                variants,
                discriminator,
            } => {
                if let [(OwnedRef::Item(only), site)] = variants.as_slice() {
                    return self.kind(only, site, name);
                }
                if let [(only, site)] = variants.as_slice() {
                    return TypeKind::Alias {
                        target: self.type_ref(only.borrow(), site, name),
                    };
                }
                TypeKind::Union(self.union(name, variants, discriminator))
            }
            Shape::Polymorphic { property, subtypes } => {
                let mut names = Namespace::default();
                let variants = subtypes
                    .into_iter()
                    .map(|(value, target)| ir::Variant {
                        rust_name: names.claim(&names::variant_ident(&value, name)),
                        ty: self.type_ref(SchemaRef::Ref(&target), &target, name),
                        tag_value: Some(value),
                        boxed: false,
                        checks: ir::Checks::default(),
                    })
                    .collect();
                TypeKind::Union(ir::Union {
                    tag: Some(property),
                    variants,
                })
            }
            Shape::Intersection { others, object } => {
                let mut parts: Vec<TypeRef> = Vec::new();
                let mut checks: Vec<ir::Checks> = Vec::new();
                for (i, (part, site)) in others.iter().enumerate() {
                    let ty = self.type_ref(part.borrow(), site, &format!("{name}Part{}", i + 1));
                    checks.push(self.use_checks(part.borrow(), site, &ty));
                    parts.push(ty);
                }
                if !object.properties.is_empty() || !object.required.is_empty() {
                    let fields_name = self.type_names.claim(&format!("{name}Fields"));
                    let st = self.structure(&fields_name, object);
                    let schema = Schema {
                        schema_data: Default::default(),
                        schema_kind: SchemaKind::Any(AnySchema::default()),
                    };
                    self.insert_def(&fields_name, None, &schema, pointer, TypeKind::Struct(st));
                    parts.push(TypeRef::Named(fields_name));
                    checks.push(ir::Checks::default());
                }
                if checks.iter().all(ir::Checks::is_empty) {
                    checks.clear();
                }
                TypeKind::Intersection { parts, checks }
            }
            Shape::Unsupported(reason) => {
                self.warn(pointer, format!("untyped fallback: {reason} cannot be typed yet; `{name}` accepts any JSON value"), true);
                TypeKind::Untyped { reason }
            }
        }
    }

    fn structure(&mut self, name: &str, parts: ObjectParts) -> ir::Struct {
        let mut field_names = Namespace::default();
        let mut fields = Vec::new();
        for (prop, (schema, site)) in &parts.properties {
            let r = schema.borrow();
            let hint = format!("{name}{}", names::pascal(prop));
            let ty = self.type_ref(r, site, &hint);
            let res = self.resolve(r, site);
            let data = res
                .as_ref()
                .map(|r| r.schema.schema_data.clone())
                .unwrap_or_default();
            let description = match r {
                SchemaRef::Ref(_) => self.sibling_description(site).or(data.description.clone()),
                SchemaRef::Item(s) => s.schema_data.description.clone(),
            };
            let checks = self.use_checks(r, site, &ty);
            fields.push(ir::Field {
                name: prop.clone(),
                rust_name: field_names.claim(&names::snake(prop)),
                ty,
                required: parts.required.contains(prop),
                nullable: self.nullable(r, site, 0),
                boxed: false,
                read_only: data.read_only,
                deprecated: data.deprecated,
                description,
                default: data.default.clone(),
                pointer: site.clone(),
                checks,
            });
        }
        // `required` may name a property the schema never describes; it must be present all
        // the same, with any value.
        for prop in &parts.required {
            if !parts.properties.contains_key(prop) {
                fields.push(ir::Field {
                    name: prop.clone(),
                    rust_name: field_names.claim(&names::snake(prop)),
                    ty: TypeRef::Any,
                    required: true,
                    nullable: false,
                    boxed: false,
                    read_only: false,
                    deprecated: false,
                    description: Some("Required by the spec, which does not describe it.".into()),
                    default: None,
                    pointer: String::new(),
                    checks: ir::Checks::default(),
                });
            }
        }
        let extra_ty = match &parts.additional {
            Some(AdditionalProperties::Schema(s)) => {
                let s: &ReferenceOr<Schema> = s;
                self.type_ref(s.into(), &parts.additional_site, &format!("{name}Value"))
            }
            _ => TypeRef::Any,
        };
        ir::Struct {
            fields,
            extra_name: field_names.claim("extra"),
            extra_ty,
            closed: parts.closed,
            open: matches!(
                &parts.additional,
                Some(AdditionalProperties::Any(true) | AdditionalProperties::Schema(_))
            ),
        }
    }

    fn union(
        &mut self,
        name: &str,
        variants: Vec<(OwnedRef, String)>,
        discriminator: Option<Discriminator>,
    ) -> ir::Union {
        let tag = self.find_tag(&variants, discriminator.as_ref());
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if tag.is_none() {
            // More required properties first: an object that merely tolerates extra fields must
            // not swallow a richer shape listed after it.
            let required: Vec<usize> = variants
                .iter()
                .map(|(v, site)| {
                    self.object_parts(v.borrow(), site, 0)
                        .map_or(0, |p| p.required.len())
                })
                .collect();
            order.sort_by_key(|&i| std::cmp::Reverse(required[i]));
        }
        let mut rust_names = Namespace::default();
        let mut out = Vec::new();
        for i in order {
            let (v, site) = &variants[i];
            let title = match v {
                OwnedRef::Item(s) => s.schema_data.title.clone(),
                OwnedRef::Ref(_) => None,
            };
            let is_keyword_enum = matches!(v, OwnedRef::Item(s) if matches!(&s.schema_kind, SchemaKind::Type(Type::String(st)) if !st.enumeration.is_empty()));
            let hint = match (&tag, &title) {
                (Some((_, values)), _) => format!("{name}{}", names::pascal(&values[i])),
                (None, Some(t)) => format!("{name}{}", names::pascal(t)),
                // `oneOf: [{enum: [none, auto]}, {$ref: …}]`: the keywords choose a mode.
                (None, None) if is_keyword_enum => format!("{name}Mode"),
                (None, None) => format!("{name}Variant{}", i + 1),
            };
            let ty = self.type_ref(v.borrow(), site, &hint);
            let wanted = match &tag {
                Some((_, values)) => names::variant_ident(&values[i], name),
                None => self.variant_name(&ty, name),
            };
            let checks = self.use_checks(v.borrow(), site, &ty);
            out.push(ir::Variant {
                rust_name: rust_names.claim(&wanted),
                ty,
                tag_value: tag.as_ref().map(|(_, values)| values[i].clone()),
                boxed: false,
                checks,
            });
        }
        ir::Union {
            tag: tag.map(|(property, _)| property),
            variants: out,
        }
    }

    fn variant_name(&self, ty: &TypeRef, union_name: &str) -> String {
        match ty {
            TypeRef::String => "String".into(),
            TypeRef::Integer(_) => "Integer".into(),
            TypeRef::Number => "Number".into(),
            TypeRef::Boolean => "Boolean".into(),
            TypeRef::Binary => "Bytes".into(),
            TypeRef::Any => "Any".into(),
            TypeRef::Object => "Object".into(),
            TypeRef::Map(_) => "Map".into(),
            TypeRef::Nullable(t) => self.variant_name(t, union_name),
            TypeRef::Array(item) => match item.as_ref() {
                TypeRef::Named(n) => format!(
                    "{}Array",
                    n.strip_prefix(union_name)
                        .filter(|s| !s.is_empty())
                        .unwrap_or(n)
                ),
                _ => "Array".into(),
            },
            TypeRef::Named(n) => n
                .strip_prefix(union_name)
                .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
                .unwrap_or(n)
                .to_string(),
        }
    }

    /// The property whose constant value tells the variants apart, with each variant's value.
    fn find_tag(
        &self,
        variants: &[(OwnedRef, String)],
        discriminator: Option<&Discriminator>,
    ) -> Option<(String, Vec<String>)> {
        let parts: Vec<ObjectParts> = variants
            .iter()
            .map(|(v, site)| self.object_parts(v.borrow(), site, 0))
            .collect::<Option<_>>()?;
        let candidates: Vec<String> = match discriminator {
            Some(d) => vec![d.property_name.clone()],
            None => {
                let mut c: Vec<String> = ["type", "role", "object", "event"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                c.extend(parts[0].properties.keys().cloned());
                c
            }
        };
        'candidates: for property in candidates {
            let mut values = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let mapped = discriminator.and_then(|d| {
                    let (v, _) = &variants[i];
                    let OwnedRef::Ref(target) = v else {
                        return None;
                    };
                    d.mapping
                        .iter()
                        .find(|(_, t)| {
                            *t == target || Self::component_of(target) == Some(t.as_str())
                        })
                        .map(|(value, _)| value.clone())
                });
                let constant = p
                    .properties
                    .get(&property)
                    .and_then(|(s, site)| self.constant(s.borrow(), site));
                let from_extension = self
                    .resolve(variants[i].0.borrow(), &variants[i].1)
                    .and_then(|r| {
                        r.schema
                            .schema_data
                            .extensions
                            .get("x-ms-discriminator-value")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    });
                let value = mapped.or(from_extension).or(constant);
                let present = p.required.contains(&property) || discriminator.is_some();
                match value {
                    Some(v) if present && !values.contains(&v) => values.push(v),
                    _ => continue 'candidates,
                }
            }
            return Some((property, values));
        }
        None
    }

    /// The one value a string schema allows, if it allows exactly one.
    fn constant(&self, r: SchemaRef<'_>, site: &str) -> Option<String> {
        let res = self.resolve(r, site)?;
        let values: Vec<String> = match &res.schema.schema_kind {
            SchemaKind::Type(Type::String(st)) => {
                st.enumeration.iter().flatten().cloned().collect()
            }
            SchemaKind::Any(a) => a
                .enumeration
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => return None,
        };
        match values.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    // ----- operations -----

    fn operations(&mut self) -> Result<Vec<ir::Operation>, Error> {
        let doc = self.doc;
        let mut out = Vec::new();
        let mut op_names = Namespace::default();
        // (method, template with parameter names erased) → pointer of the first such operation.
        let mut shapes: HashMap<(ir::Method, String), String> = HashMap::new();
        for (path, item) in doc.api.paths.paths.iter() {
            let path_pointer = format!("#/paths/{}", pointer_token(path));
            let ReferenceOr::Item(item) = item else {
                return Err(Error::spec(
                    self.file,
                    path_pointer,
                    "path items given by $ref are not supported",
                ));
            };
            for (method_name, op) in item.iter() {
                let Some(method) = ir::Method::from_openapi(method_name) else {
                    continue;
                };
                let pointer = format!("{path_pointer}/{method_name}");
                if let Some(first) = shapes.insert((method, path_shape(path)), pointer.clone()) {
                    return Err(Error::spec(
                        self.file,
                        pointer,
                        format!(
                            "{} {path} matches the same requests as the operation at {first}; a gateway could not tell them apart",
                            method.as_str()
                        ),
                    ));
                }
                let operation_id = op
                    .operation_id
                    .clone()
                    .unwrap_or_else(|| format!("{method_name}{}", names::pascal(path)));
                let rust_name = op_names.claim(&names::snake(&operation_id));
                let type_hint = names::pascal(&operation_id);

                let mut parameters: Vec<ir::Parameter> = Vec::new();
                let path_params = item
                    .parameters
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p, format!("{path_pointer}/parameters/{i}")));
                let op_params = op
                    .parameters
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p, format!("{pointer}/parameters/{i}")));
                for (param, site) in path_params.chain(op_params) {
                    let p = self.parameter(param, &site, &type_hint)?;
                    // An operation's parameter replaces a path-level one of the same name and place.
                    parameters.retain(|q| !(q.name == p.name && q.location == p.location));
                    parameters.push(p);
                }

                let request = match &op.request_body {
                    None => None,
                    Some(body) => Some(self.request_body(
                        body,
                        &format!("{pointer}/requestBody"),
                        &type_hint,
                    )?),
                };
                let stream_flag = request.as_ref().and_then(|r| self.stream_flag(r));

                let mut responses = Vec::new();
                let mut first_success = true;
                let statuses = op
                    .responses
                    .responses
                    .iter()
                    .map(|(s, r)| (status_text(s), r));
                let default = op
                    .responses
                    .default
                    .iter()
                    .map(|r| ("default".to_string(), r));
                for (status, response) in statuses.chain(default) {
                    let site = format!("{pointer}/responses/{}", pointer_token(&status));
                    let hint = if status == "default" {
                        format!("{type_hint}DefaultResponse")
                    } else if status.starts_with('2') && first_success {
                        first_success = false;
                        format!("{type_hint}Response")
                    } else {
                        format!("{type_hint}Response{status}")
                    };
                    let mut r = self.response(response, &site, &status, &hint)?;
                    if let Some(flag) = &stream_flag
                        && status.starts_with('2')
                        && !r.content.iter().any(|c| c.kind == ContentKind::EventStream)
                    {
                        r.content.push(ir::Content {
                            media_type: "text/event-stream".into(),
                            kind: ContentKind::EventStream,
                            ty: None,
                            condition: Some(format!("when the request sets `{flag}: true`")),
                            examples: Vec::new(),
                            pointer: site.clone(),
                        });
                    }
                    responses.push(r);
                }

                out.push(ir::Operation {
                    operation_id,
                    rust_name,
                    method,
                    path: path.clone(),
                    summary: op.summary.clone(),
                    description: op.description.clone(),
                    tags: op.tags.clone(),
                    deprecated: op.deprecated,
                    parameters,
                    request,
                    responses,
                    stream_flag,
                    pointer,
                });
            }
        }
        Ok(out)
    }

    fn parameter(
        &mut self,
        param: &ReferenceOr<openapiv3::Parameter>,
        site: &str,
        op_hint: &str,
    ) -> Result<ir::Parameter, Error> {
        let (param, site) = match param {
            ReferenceOr::Item(p) => (p.clone(), site.to_string()),
            ReferenceOr::Reference { reference } => {
                let raw = self.raw(reference).cloned().unwrap_or(Value::Null);
                let p = serde_json::from_value(raw).map_err(|e| {
                    Error::spec(
                        self.file,
                        site,
                        format!("$ref \"{reference}\" is not a parameter: {e}"),
                    )
                })?;
                (p, reference.clone())
            }
        };
        let location = match &param {
            openapiv3::Parameter::Path { .. } => ir::ParamLocation::Path,
            openapiv3::Parameter::Query { .. } => ir::ParamLocation::Query,
            openapiv3::Parameter::Header { .. } => ir::ParamLocation::Header,
            openapiv3::Parameter::Cookie { .. } => ir::ParamLocation::Cookie,
        };
        let data = param.parameter_data_ref();
        let hint = format!("{op_hint}{}", names::pascal(&data.name));
        let (ty, description, checks) = match &data.format {
            ParameterSchemaOrContent::Schema(s) => {
                let schema_site = format!("{site}/schema");
                let ty = self.type_ref(s.into(), &schema_site, &hint);
                let schema_description = self
                    .resolve(s.into(), &schema_site)
                    .and_then(|r| r.schema.schema_data.description);
                let checks = self.use_checks(s.into(), &schema_site, &ty);
                (ty, data.description.clone().or(schema_description), checks)
            }
            ParameterSchemaOrContent::Content(_) => (
                TypeRef::String,
                data.description.clone(),
                ir::Checks::default(),
            ),
        };
        Ok(ir::Parameter {
            name: data.name.clone(),
            rust_name: names::snake(&data.name),
            location,
            required: data.required || location == ir::ParamLocation::Path,
            deprecated: data.deprecated.unwrap_or(false),
            description,
            ty,
            checks,
        })
    }

    fn request_body(
        &mut self,
        body: &ReferenceOr<openapiv3::RequestBody>,
        site: &str,
        op_hint: &str,
    ) -> Result<ir::RequestBody, Error> {
        let (body, site) = match body {
            ReferenceOr::Item(b) => (b.clone(), site.to_string()),
            ReferenceOr::Reference { reference } => {
                let raw = self.raw(reference).cloned().unwrap_or(Value::Null);
                let b = serde_json::from_value(raw).map_err(|e| {
                    Error::spec(
                        self.file,
                        site,
                        format!("$ref \"{reference}\" is not a request body: {e}"),
                    )
                })?;
                (b, reference.clone())
            }
        };
        let content = self.contents(&body.content, &site, &format!("{op_hint}Request"));
        Ok(ir::RequestBody {
            required: body.required,
            description: body.description.clone(),
            content,
        })
    }

    fn response(
        &mut self,
        response: &ReferenceOr<openapiv3::Response>,
        site: &str,
        status: &str,
        hint: &str,
    ) -> Result<ir::Response, Error> {
        let (response, site) = match response {
            ReferenceOr::Item(r) => (r.clone(), site.to_string()),
            ReferenceOr::Reference { reference } => {
                let raw = self.raw(reference).cloned().unwrap_or(Value::Null);
                let r = serde_json::from_value(raw).map_err(|e| {
                    Error::spec(
                        self.file,
                        site,
                        format!("$ref \"{reference}\" is not a response: {e}"),
                    )
                })?;
                (r, reference.clone())
            }
        };
        let content = self.contents(&response.content, &site, hint);
        Ok(ir::Response {
            status: status.to_string(),
            description: response.description.clone(),
            content,
        })
    }

    fn contents(
        &mut self,
        content: &IndexMap<String, openapiv3::MediaType>,
        site: &str,
        hint: &str,
    ) -> Vec<ir::Content> {
        let mut out = Vec::new();
        for (media_type, media) in content {
            let pointer = format!("{site}/content/{}", pointer_token(media_type));
            let ty = media
                .schema
                .as_ref()
                .map(|s| self.type_ref(s.into(), &format!("{pointer}/schema"), hint));
            let mut examples = Vec::new();
            if let Some(value) = &media.example {
                examples.push(ir::Example {
                    name: None,
                    summary: None,
                    value: value.clone(),
                    pointer: format!("{pointer}/example"),
                });
            }
            for (name, example) in &media.examples {
                let example_pointer = format!("{pointer}/examples/{}", pointer_token(name));
                let example = match example {
                    ReferenceOr::Item(e) => Some(e.clone()),
                    ReferenceOr::Reference { reference } => self
                        .raw(reference)
                        .and_then(|v| serde_json::from_value::<openapiv3::Example>(v.clone()).ok()),
                };
                if let Some(openapiv3::Example {
                    value: Some(value),
                    summary,
                    ..
                }) = example
                {
                    examples.push(ir::Example {
                        name: Some(name.clone()),
                        summary,
                        value,
                        pointer: example_pointer,
                    });
                }
            }
            out.push(ir::Content {
                media_type: media_type.clone(),
                kind: ContentKind::of(media_type),
                ty,
                condition: None,
                examples,
                pointer,
            });
        }
        out
    }

    /// `stream` when the JSON request model has a boolean field of that name.
    fn stream_flag(&self, request: &ir::RequestBody) -> Option<String> {
        let json = request
            .content
            .iter()
            .find(|c| c.kind == ContentKind::Json)?;
        let name = json.ty.as_ref()?.inline_named()?;
        let TypeKind::Struct(s) = &self.types.get(name)?.kind else {
            return None;
        };
        s.fields
            .iter()
            .find(|f| f.name == "stream" && f.ty == TypeRef::Boolean)
            .map(|f| f.name.clone())
    }

    // ----- cycles -----

    /// Boxes each field and variant whose type contains, without a `Vec` or map in between,
    /// the type that holds it.
    fn box_cycles(&mut self) {
        let edges: BTreeMap<String, Vec<String>> = self
            .types
            .iter()
            .map(|(name, def)| {
                let targets = match &def.kind {
                    TypeKind::Struct(s) => s
                        .fields
                        .iter()
                        .filter_map(|f| f.ty.inline_named())
                        .map(str::to_string)
                        .collect(),
                    TypeKind::Union(u) => u
                        .variants
                        .iter()
                        .filter_map(|v| v.ty.inline_named())
                        .map(str::to_string)
                        .collect(),
                    TypeKind::Alias { target } => target
                        .inline_named()
                        .map(str::to_string)
                        .into_iter()
                        .collect(),
                    TypeKind::Intersection { parts, .. } => parts
                        .iter()
                        .filter_map(|p| p.inline_named())
                        .map(str::to_string)
                        .collect(),
                    _ => Vec::new(),
                };
                (name.clone(), targets)
            })
            .collect();
        let component = strongly_connected(&edges);
        let same =
            |a: &str, b: &str| component.contains_key(a) && component.get(a) == component.get(b);
        for (name, def) in self.types.iter_mut() {
            match &mut def.kind {
                TypeKind::Struct(s) => {
                    for f in &mut s.fields {
                        f.boxed = f.ty.inline_named().is_some_and(|t| same(name, t));
                    }
                }
                TypeKind::Union(u) => {
                    for v in &mut u.variants {
                        v.boxed = v.ty.inline_named().is_some_and(|t| same(name, t));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Tarjan's algorithm: the strongly connected component of each node that is part of a cycle
/// (a component of one node counts only if the node points at itself).
fn strongly_connected(edges: &BTreeMap<String, Vec<String>>) -> HashMap<String, usize> {
    struct State<'a> {
        edges: &'a BTreeMap<String, Vec<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        on_stack: HashSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        result: HashMap<String, usize>,
        components: usize,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let targets: &'a [String] = s.edges.get(v).map(Vec::as_slice).unwrap_or(&[]);
        for w in targets {
            let w = w.as_str();
            if !s.edges.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut members = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                members.push(w);
                if w == v {
                    break;
                }
            }
            let self_loop = targets.iter().any(|t| t == v);
            if members.len() > 1 || self_loop {
                for m in members {
                    s.result.insert(m.to_string(), s.components);
                }
            }
            s.components += 1;
        }
    }
    let mut s = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: HashSet::new(),
        stack: Vec::new(),
        next: 0,
        result: HashMap::new(),
        components: 0,
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.result
}

// ----- small helpers -----

/// `/threads/{thread_id}/runs` → `/threads/{}/runs`.
fn path_shape(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn integer(int32: bool) -> TypeRef {
    TypeRef::Integer(if int32 { 32 } else { 64 })
}

fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn status_text(status: &StatusCode) -> String {
    match status {
        StatusCode::Code(code) => code.to_string(),
        StatusCode::Range(range) => format!("{range}XX"),
    }
}

fn x_ms_enum(schema: &Schema) -> Option<&Value> {
    schema.schema_data.extensions.get("x-ms-enum")
}

fn is_constraint_only(a: &AnySchema) -> bool {
    a.typ.is_none()
        && a.properties.is_empty()
        && a.items.is_none()
        && a.one_of.is_empty()
        && a.all_of.is_empty()
        && a.any_of.is_empty()
        && a.not.is_none()
        && a.enumeration.is_empty()
}

fn union_schema(variants: &[ReferenceOr<Schema>], key: &str) -> Schema {
    let schema_kind = if key == "anyOf" {
        SchemaKind::AnyOf {
            any_of: variants.to_vec(),
        }
    } else {
        SchemaKind::OneOf {
            one_of: variants.to_vec(),
        }
    };
    Schema {
        schema_data: Default::default(),
        schema_kind,
    }
}

fn union_shape(
    variants: &[ReferenceOr<Schema>],
    key: &str,
    pointer: &str,
    discriminator: Option<Discriminator>,
) -> Shape {
    if variants.is_empty() {
        return Shape::Unsupported(format!("an empty `{key}`"));
    }
    Shape::Union {
        variants: variants
            .iter()
            .enumerate()
            .map(|(i, v)| (SchemaRef::from(v).into(), format!("{pointer}/{key}/{i}")))
            .collect(),
        discriminator,
    }
}

fn object_shape(parts: ObjectParts, pointer: &str) -> Shape {
    if parts.properties.is_empty() && parts.required.is_empty() {
        return match parts.additional {
            Some(AdditionalProperties::Schema(s)) => {
                let s: ReferenceOr<Schema> = *s;
                let r: OwnedRef = match s {
                    ReferenceOr::Reference { reference } => OwnedRef::Ref(reference),
                    ReferenceOr::Item(s) => OwnedRef::Item(Box::new(s)),
                };
                Shape::Map(r, format!("{pointer}/additionalProperties"))
            }
            _ => Shape::FreeObject,
        };
    }
    Shape::Object(parts)
}

fn merge(into: &mut ObjectParts, from: ObjectParts) {
    for (name, prop) in from.properties {
        into.properties.insert(name, prop);
    }
    for r in from.required {
        if !into.required.contains(&r) {
            into.required.push(r);
        }
    }
    if from.additional.is_some() {
        into.additional = from.additional;
        into.additional_site = from.additional_site;
    }
    into.closed |= from.closed;
}

fn same_values(a: &ir::Enum, b: &ir::Enum) -> bool {
    a.open == b.open
        && a.values.len() == b.values.len()
        && a.values
            .iter()
            .zip(&b.values)
            .all(|(x, y)| x.value == y.value)
}

fn enum_of(schema: &Schema, values: &[&str]) -> ir::Enum {
    enum_values(x_ms_enum(schema), values)
}

fn enum_values(x_ms_enum: Option<&Value>, values: &[&str]) -> ir::Enum {
    let open = x_ms_enum
        .and_then(|x| x.get("modelAsString"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let described: Vec<&Value> = x_ms_enum
        .and_then(|x| x.get("values"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    let values = values
        .iter()
        .filter(|v| seen.insert(**v))
        .map(|v| {
            let entry = described
                .iter()
                .find(|d| d.get("value").and_then(Value::as_str) == Some(v));
            ir::EnumValue {
                value: v.to_string(),
                // Filled in by `rename_enum_values` once the enum has its name.
                rust_name: entry
                    .and_then(|e| e.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or(v)
                    .to_string(),
                description: entry
                    .and_then(|e| e.get("description"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }
        })
        .collect();
    ir::Enum { values, open }
}

/// Turns each value's naming source into a unique variant name; an open enum reserves `Other`
/// for values the spec does not list.
fn rename_enum_values(mut e: ir::Enum, enum_name: &str) -> ir::Enum {
    let mut taken = if e.open {
        Namespace::with_reserved(&["Other"])
    } else {
        Namespace::default()
    };
    for v in &mut e.values {
        v.rust_name = taken.claim(&names::variant_ident(&v.rust_name, enum_name));
    }
    e
}
