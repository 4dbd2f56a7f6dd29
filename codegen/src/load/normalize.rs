//! OpenAPI 3.1 and 3.2 read into the shapes of 3.0 that the rest of the generator knows.
//!
//! 3.1 made a spec's schemas JSON Schema (2020-12). What Azure's documents use maps onto a 3.0
//! construct one to one, and is rewritten in place in the tree the converter reads (the copy
//! served to clients keeps the document as published):
//! - `type: [T, "null"]` → `type: T, nullable: true`; several types → `anyOf` of each;
//! - a `{type: "null"}` branch of `anyOf`/`oneOf` → `nullable: true` on the union;
//! - `const: v` → `enum: [v]`;
//! - `examples: [a, …]` in a schema → `example: a`;
//! - `exclusiveMinimum: n` (a number) → `minimum: n, exclusiveMinimum: true`, and the maximum;
//! - `$recursiveRef` and `$dynamicRef` → a `$ref` to the schema that declares the anchor, or to
//!   the component schema they sit in;
//! - `contentMediaType` of something other than text, on a string → `format: binary`;
//!   `contentEncoding: base64` → `format: byte`;
//! - a schema written as `true` → `{}`; as `false` → `{not: {}}` (which nothing matches).
//!
//! Documents of every version also get their integer bounds made readable: a bound beyond what
//! 64 bits hold constrains nothing and is dropped; one that is not whole is rounded inward.

use serde_json::{Map, Value, json};

/// Rewrites the schemas of `doc` in place.
pub fn normalize(doc: &mut Value) {
    let components = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| schemas.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let anchors = dynamic_anchors(doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for name in components {
            if let Some(schema) = schemas.get_mut(&name) {
                let home = format!(
                    "#/components/schemas/{}",
                    crate::names::pointer_token(&name)
                );
                self::schema(schema, &home, &anchors);
            }
        }
    }
    outside_components(doc, &anchors, true);
}

/// `$dynamicAnchor` / `$recursiveAnchor` names declared at the top of a component schema, with
/// that schema's pointer.
fn dynamic_anchors(doc: &Value) -> Vec<(String, String)> {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    schemas
        .iter()
        .filter_map(|(name, schema)| {
            let anchor = schema.get("$dynamicAnchor").and_then(Value::as_str)?;
            let pointer = format!("#/components/schemas/{}", crate::names::pointer_token(name));
            Some((anchor.to_string(), pointer))
        })
        .collect()
}

/// Finds the schemas of parameters, bodies, responses and headers (any `schema` key) outside
/// `components.schemas`, which was done already. Examples and extensions are data: not entered.
fn outside_components(value: &mut Value, anchors: &[(String, String)], top: bool) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key.starts_with("x-") || key == "example" || key == "examples" {
                    continue;
                }
                if top && key == "components" {
                    if let Some(parts) = child.as_object_mut() {
                        for (part, entries) in parts.iter_mut() {
                            if part != "schemas" {
                                outside_components(entries, anchors, false);
                            }
                        }
                    }
                    continue;
                }
                if key == "schema" {
                    schema(child, "#", anchors);
                } else {
                    outside_components(child, anchors, false);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                outside_components(item, anchors, false);
            }
        }
        _ => {}
    }
}

/// Rewrites one schema and the schemas inside it; `home` is the component schema it belongs to.
fn schema(value: &mut Value, home: &str, anchors: &[(String, String)]) {
    match value {
        Value::Bool(true) => *value = json!({}),
        Value::Bool(false) => *value = json!({ "not": {} }),
        _ => {}
    }
    let Some(map) = value.as_object_mut() else {
        return;
    };
    dynamic_ref(map, home, anchors);
    type_list(map);
    null_branches(map);
    if let Some(constant) = map.remove("const")
        && !map.contains_key("enum")
    {
        map.insert("enum".into(), Value::Array(vec![constant]));
    }
    if let Some(Value::Array(examples)) = map.get("examples").cloned() {
        map.remove("examples");
        if let Some(first) = examples.into_iter().next() {
            map.entry("example").or_insert(first);
        }
    }
    exclusive_bound(map, "minimum", "exclusiveMinimum", f64::max);
    exclusive_bound(map, "maximum", "exclusiveMaximum", f64::min);
    if map.get("type").and_then(Value::as_str) == Some("string")
        && map
            .get("contentMediaType")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.starts_with("text/") && !m.contains("json"))
        && !map.contains_key("format")
    {
        map.insert("format".into(), "binary".into());
    }
    // Base64 text in JSON is what 3.0 calls `format: byte`.
    if map.get("contentEncoding").and_then(Value::as_str) == Some("base64")
        && !map.contains_key("format")
    {
        map.insert("format".into(), "byte".into());
    }
    if map.get("type").and_then(Value::as_str) == Some("integer") {
        integer_bounds(map);
    }
    // The schemas inside this one.
    for key in [
        "items",
        "not",
        "additionalProperties",
        "contains",
        "propertyNames",
    ] {
        if let Some(child) = map.get_mut(key)
            && (child.is_object() || (key != "additionalProperties" && child.is_boolean()))
        {
            schema(child, home, anchors);
        }
    }
    for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            for child in children {
                schema(child, home, anchors);
            }
        }
    }
    for key in ["properties", "$defs", "definitions", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            for child in children.values_mut() {
                schema(child, home, anchors);
            }
        }
    }
}

/// `$recursiveRef: "#"` and `$dynamicRef: "#name"` name a schema that declares an anchor; here
/// that is a component schema, so they become plain references to it.
fn dynamic_ref(map: &mut Map<String, Value>, home: &str, anchors: &[(String, String)]) {
    let target = match (map.remove("$recursiveRef"), map.remove("$dynamicRef")) {
        (_, Some(Value::String(dynamic))) => {
            let anchor = dynamic.trim_start_matches('#');
            anchors
                .iter()
                .find(|(name, _)| name == anchor)
                .map_or(home.to_string(), |(_, pointer)| pointer.clone())
        }
        (Some(_), _) => home.to_string(),
        _ => return,
    };
    if target != "#" {
        map.insert("$ref".into(), Value::String(target));
    }
}

/// `type: ["string", "null"]` → `type: "string", nullable: true`.
fn type_list(map: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = map.get("type").cloned() else {
        if map.get("type").and_then(Value::as_str) == Some("null") {
            map.remove("type");
            map.insert("nullable".into(), true.into());
        }
        return;
    };
    let named: Vec<Value> = types
        .iter()
        .filter(|t| t.as_str() != Some("null"))
        .cloned()
        .collect();
    if named.len() < types.len() {
        map.insert("nullable".into(), true.into());
    }
    match named.as_slice() {
        [] => {
            map.remove("type");
        }
        [one] => {
            map.insert("type".into(), one.clone());
        }
        several => {
            map.remove("type");
            let branches = several.iter().map(|t| json!({ "type": t })).collect();
            map.insert("anyOf".into(), Value::Array(branches));
        }
    }
}

/// Whether a schema says only "null".
fn only_null(value: &Value) -> bool {
    let Some(map) = value.as_object() else {
        return false;
    };
    let type_null = match map.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().all(|t| t.as_str() == Some("null")),
        _ => false,
    };
    let enum_null =
        matches!(map.get("enum"), Some(Value::Array(v)) if v.iter().all(Value::is_null));
    type_null || enum_null || map.get("const").is_some_and(Value::is_null)
}

/// `anyOf: [X, {type: "null"}]` → `anyOf: [X], nullable: true`.
fn null_branches(map: &mut Map<String, Value>) {
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get_mut(key) {
            let before = branches.len();
            branches.retain(|b| !only_null(b));
            if branches.len() < before {
                map.insert("nullable".into(), true.into());
            }
        }
    }
}

/// A numeric `exclusiveMinimum` (3.1) as 3.0 writes it: the bound, and a flag.
fn exclusive_bound(
    map: &mut Map<String, Value>,
    plain: &str,
    exclusive: &str,
    tighter: fn(f64, f64) -> f64,
) {
    let Some(bound) = map.get(exclusive).and_then(Value::as_f64) else {
        return;
    };
    let current = map.get(plain).and_then(Value::as_f64);
    match current {
        // An inclusive bound tighter than the exclusive one is the one that counts.
        Some(c) if tighter(c, bound) == c && c != bound => {
            map.remove(exclusive);
        }
        _ => {
            map.insert(
                plain.into(),
                map.get(exclusive).cloned().unwrap_or(Value::Null),
            );
            map.insert(exclusive.into(), true.into());
        }
    }
}

/// Integer bounds that a 64-bit integer reader can hold: a bound beyond i64 constrains
/// nothing, one that is not whole is rounded inward, a `multipleOf` that is not whole goes.
fn integer_bounds(map: &mut Map<String, Value>) {
    for (key, round) in [
        ("minimum", f64::ceil as fn(f64) -> f64),
        ("maximum", f64::floor),
    ] {
        let Some(n) = map.get(key).and_then(Value::as_number) else {
            continue;
        };
        if n.is_i64() {
            continue;
        }
        let v = round(n.as_f64().unwrap_or(f64::NAN));
        if v.is_finite() && v >= i64::MIN as f64 && v < i64::MAX as f64 {
            map.insert(key.into(), Value::from(v as i64));
        } else {
            map.remove(key);
        }
    }
    if map.get("multipleOf").is_some_and(|m| !m.is_i64()) {
        map.remove("multipleOf");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(schema_json: Value) -> Value {
        let mut doc = json!({ "components": { "schemas": { "S": schema_json } } });
        normalize(&mut doc);
        doc["components"]["schemas"]["S"].take()
    }

    #[test]
    fn nullable_forms_of_3_1() {
        assert_eq!(
            normalized(json!({"type": ["string", "null"]})),
            json!({"type": "string", "nullable": true})
        );
        assert_eq!(
            normalized(json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]})),
            json!({"anyOf": [{"$ref": "#/x"}], "nullable": true})
        );
        assert_eq!(
            normalized(json!({"type": ["string", "integer"]})),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
    }

    #[test]
    fn const_examples_and_bounds() {
        assert_eq!(
            normalized(json!({"const": "auto"})),
            json!({"enum": ["auto"]})
        );
        assert_eq!(
            normalized(json!({"type": "number", "examples": [1, 2], "exclusiveMinimum": 0})),
            json!({"type": "number", "example": 1, "minimum": 0, "exclusiveMinimum": true})
        );
        assert_eq!(
            normalized(json!({"type": "integer", "minimum": -9.3e18, "maximum": 2.5})),
            json!({"type": "integer", "maximum": 2})
        );
    }

    #[test]
    fn recursion_binary_parts_and_boolean_schemas() {
        let mut doc = json!({ "components": { "schemas": {
            "Tree": { "$dynamicAnchor": "node", "type": "object",
                      "properties": { "kids": { "type": "array", "items": { "$dynamicRef": "#node" } },
                                      "up": { "$recursiveRef": "#" },
                                      "blob": { "type": "string", "contentMediaType": "application/octet-stream" },
                                      "anything": true } } } } });
        normalize(&mut doc);
        let props = &doc["components"]["schemas"]["Tree"]["properties"];
        assert_eq!(
            props["kids"]["items"],
            json!({"$ref": "#/components/schemas/Tree"})
        );
        assert_eq!(props["up"], json!({"$ref": "#/components/schemas/Tree"}));
        assert_eq!(props["blob"]["format"], "binary");
        assert_eq!(props["anything"], json!({}));
    }
}
