//! What a schema states beyond its type (`minimum`, `maxLength`, `minItems`, …), read from the
//! raw document where a value is described, for the validator's tables.

use serde_json::Value;

use super::*;
use crate::ir::{self, TypeRef};

impl Converter<'_> {
    /// The validation keywords written at `site` (an inline schema, or keywords beside a
    /// `$ref`), with those of its items and map values written in place. References are not
    /// followed: a referenced schema's checks belong to its own type.
    pub(super) fn checks_at(&mut self, site: &str) -> ir::Checks {
        let Some(raw) = self.raw(site) else {
            return ir::Checks::default();
        };
        self.checks_of(raw, site, 0)
    }

    pub(super) fn checks_of(&mut self, raw: &Value, site: &str, depth: usize) -> ir::Checks {
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
                    WarningKind::Note,
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
    pub(super) fn use_checks(&mut self, r: SchemaRef<'_>, site: &str, ty: &TypeRef) -> ir::Checks {
        if matches!(r, SchemaRef::Item(_)) && ty.inline_named().is_some() {
            return ir::Checks::default();
        }
        self.checks_at(site)
    }
}
