//! `oneOf`/`anyOf`: the variants, their names and order, and the tag that tells them apart.

use openapiv3::{Discriminator, SchemaKind, Type};
use serde_json::Value;

use super::*;
use crate::ir::{self, TypeRef};
use crate::names::{self, Namespace};

impl Converter<'_> {
    pub(super) fn union(
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

    pub(super) fn variant_name(&self, ty: &TypeRef, union_name: &str) -> String {
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
    pub(super) fn find_tag(
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
    pub(super) fn constant(&self, r: SchemaRef<'_>, site: &str) -> Option<String> {
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
}
