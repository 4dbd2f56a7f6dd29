//! Classifying a schema ([`Shape`]) and building the type it becomes: scalars, arrays, maps,
//! enums, structs merged through `allOf`, intersections and polymorphic bases.

use std::collections::HashSet;

use indexmap::IndexMap;
use openapiv3::{
    AdditionalProperties, AnySchema, Discriminator, ReferenceOr, Schema, SchemaKind, Type,
    VariantOrUnknownOrEmpty,
};
use serde_json::Value;

use super::*;
use crate::ir::{self, TypeKind, TypeRef};
use crate::names::{self, Namespace, pointer_token};

/// A schema's properties, gathered through `allOf`.
#[derive(Default)]
pub(super) struct ObjectParts {
    /// (spec name, schema, pointer of the property)
    pub(super) properties: IndexMap<String, (OwnedRef, String)>,
    pub(super) required: Vec<String>,
    /// Where each required name is listed: the pointer of its `required` keyword.
    pub(super) required_at: IndexMap<String, String>,
    pub(super) additional: Option<AdditionalProperties>,
    /// Pointer of the `additionalProperties` schema in force.
    pub(super) additional_site: String,
    pub(super) closed: bool,
    /// Branches of a `oneOf`/`anyOf` that only list required properties.
    pub(super) choice: Option<ir::Choice>,
}

/// What a schema is, before it is named.
pub(super) enum Shape {
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

impl Converter<'_> {
    pub(super) fn shape(&self, schema: &Schema, pointer: &str) -> Shape {
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

    pub(super) fn any_shape(
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
                let sets = variants
                    .iter()
                    .filter_map(|v| match v {
                        ReferenceOr::Item(s) => match &s.schema_kind {
                            SchemaKind::Any(x) => Some(x.required.clone()),
                            _ => None,
                        },
                        ReferenceOr::Reference { .. } => None,
                    })
                    .filter(|set| !set.is_empty())
                    .collect::<Vec<_>>();
                let mut own = own;
                // A branch that requires nothing is met by any object: then nothing is asked.
                if sets.len() == variants.len() {
                    own.choice = Some(ir::Choice {
                        exactly_one: key == "oneOf",
                        sets,
                    });
                }
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

    pub(super) fn own_parts(
        &self,
        properties: &IndexMap<String, ReferenceOr<Box<Schema>>>,
        required: &[String],
        additional: Option<&AdditionalProperties>,
        pointer: &str,
    ) -> ObjectParts {
        let mut parts = ObjectParts {
            required: required.to_vec(),
            required_at: required
                .iter()
                .map(|name| (name.clone(), format!("{pointer}/required")))
                .collect(),
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

    pub(super) fn all_of_shape(
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
    pub(super) fn object_parts(
        &self,
        r: SchemaRef<'_>,
        site: &str,
        depth: usize,
    ) -> Option<ObjectParts> {
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
    ///
    /// The subtypes are those its `mapping` names, and the component schemas whose `allOf` names
    /// this one (OpenAPI's implicit mapping). An implicit subtype is tagged by its
    /// `x-ms-discriminator-value`, else by the one value its own tag property allows (how
    /// TypeSpec writes `type: auto` next to a mapping that lists only `static`), else by its name.
    pub(super) fn polymorphic(
        &self,
        discriminator: Option<&Discriminator>,
        pointer: &str,
    ) -> Option<Shape> {
        let d = discriminator?;
        let mut subtypes: Vec<(String, String)> = Vec::new();
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
            let extends = all_of
                .iter()
                .any(|p| matches!(p, ReferenceOr::Reference { reference } if reference == pointer));
            let target = format!("#/components/schemas/{}", pointer_token(name));
            if !extends || subtypes.iter().any(|(_, t)| *t == target) {
                continue;
            }
            let own_tag = || {
                let property = match &s.schema_kind {
                    SchemaKind::Any(a) => a.properties.get(&d.property_name),
                    _ => None,
                }?;
                let site = format!("{target}/properties/{}", pointer_token(&d.property_name));
                self.constant(property.into(), &site)
            };
            let value = s
                .schema_data
                .extensions
                .get("x-ms-discriminator-value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(own_tag)
                .unwrap_or_else(|| name.clone());
            if !subtypes.iter().any(|(v, _)| *v == value) {
                subtypes.push((value, target));
            }
        }
        (!subtypes.is_empty()).then(|| Shape::Polymorphic {
            property: d.property_name.clone(),
            subtypes,
        })
    }

    pub(super) fn kind(&mut self, schema: &Schema, pointer: &str, name: &str) -> TypeKind {
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
                self.warn(pointer, format!("untyped fallback: {reason} cannot be typed yet; `{name}` accepts any JSON value"), WarningKind::Untyped);
                TypeKind::Untyped { reason }
            }
        }
    }

    pub(super) fn structure(&mut self, name: &str, parts: ObjectParts) -> ir::Struct {
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
        // `required` may name a property the schema never describes. Where the schema describes
        // none, that is JSON Schema's "this member must be there, with any value". Where it
        // describes others, the published specs show it is an authoring slip (a path
        // parameter's name, a field of the enclosing object), and enforcing it would refuse
        // calls the service accepts: it is reported, not enforced.
        for prop in &parts.required {
            if parts.properties.contains_key(prop) {
                continue;
            }
            if !parts.properties.is_empty() {
                let site = parts.required_at.get(prop).cloned().unwrap_or_default();
                self.warn(
                    &site,
                    format!(
                        "`required` lists `{prop}`, which this schema's `properties` do not define: taken for a spec error, so `{prop}` is not required"
                    ),
                    WarningKind::NotEnforced,
                );
                let entry = (site, prop.clone());
                if !self.unenforced.contains(&entry) {
                    self.unenforced.push(entry);
                }
                continue;
            }
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
            choice: parts.choice,
            open: matches!(
                &parts.additional,
                Some(AdditionalProperties::Any(true) | AdditionalProperties::Schema(_))
            ),
        }
    }
}

pub(super) fn integer(int32: bool) -> TypeRef {
    TypeRef::Integer(if int32 { 32 } else { 64 })
}

pub(super) fn x_ms_enum(schema: &Schema) -> Option<&Value> {
    schema.schema_data.extensions.get("x-ms-enum")
}

pub(super) fn is_constraint_only(a: &AnySchema) -> bool {
    a.typ.is_none()
        && a.properties.is_empty()
        && a.items.is_none()
        && a.one_of.is_empty()
        && a.all_of.is_empty()
        && a.any_of.is_empty()
        && a.not.is_none()
        && a.enumeration.is_empty()
}

pub(super) fn union_schema(variants: &[ReferenceOr<Schema>], key: &str) -> Schema {
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

pub(super) fn union_shape(
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

pub(super) fn object_shape(parts: ObjectParts, pointer: &str) -> Shape {
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

pub(super) fn merge(into: &mut ObjectParts, from: ObjectParts) {
    for (name, prop) in from.properties {
        into.properties.insert(name, prop);
    }
    for r in from.required {
        if !into.required.contains(&r) {
            into.required.push(r);
        }
    }
    for (name, site) in from.required_at {
        into.required_at.entry(name).or_insert(site);
    }
    if from.additional.is_some() {
        into.additional = from.additional;
        into.additional_site = from.additional_site;
    }
    into.closed |= from.closed;
    if from.choice.is_some() {
        into.choice = from.choice;
    }
}

pub(super) fn same_values(a: &ir::Enum, b: &ir::Enum) -> bool {
    a.open == b.open
        && a.values.len() == b.values.len()
        && a.values
            .iter()
            .zip(&b.values)
            .all(|(x, y)| x.value == y.value)
}

pub(super) fn enum_of(schema: &Schema, values: &[&str]) -> ir::Enum {
    enum_values(x_ms_enum(schema), values)
}

pub(super) fn enum_values(x_ms_enum: Option<&Value>, values: &[&str]) -> ir::Enum {
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
pub(super) fn rename_enum_values(mut e: ir::Enum, enum_name: &str) -> ir::Enum {
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
