//! Keywords that only annotate never fail the build.
//!
//! A description, a summary, a title, an example, `externalDocs`, `deprecated`, `readOnly`, an
//! operation's tags or its `operationId`: none of these changes a route or a check, yet an
//! OpenAPI reader refuses the whole document when one has the wrong type. Published documents
//! have such slips (a 2025 preview writes `description: {$ref: "#/components/schemas/includable/description"}`),
//! and one of them must not stand between a user and a working gateway.
//!
//! This pass runs on the raw tree before it is read as OpenAPI. It walks the document as OpenAPI
//! lays it out, so that a property *named* `description` (a key under `properties`) is never
//! mistaken for the keyword, and repairs each annotation of the wrong type in place:
//! - a `$ref` that resolves, within the file, to a value of the right type is replaced by that
//!   value (the document meant it, and nothing is lost);
//! - anything else is removed, with a warning naming file and pointer, or an error under
//!   [`Options::strict`](super::Options::strict). A missing `operationId` is then derived from
//!   the method and path as for any operation without one; a response's required description
//!   becomes empty.
//!
//! The copy the gateway serves is taken after this pass, so clients get a document their own
//! OpenAPI tools read.

use serde_json::{Map, Value};

use super::kind_of;
use crate::names::pointer_token;

/// What an annotation keyword must be.
#[derive(Clone, Copy)]
enum Expect {
    Text,
    /// Text that the OpenAPI reader requires (a response's description): emptied, not removed.
    RequiredText,
    Flag,
    /// A list of strings (an operation's tags).
    TextList,
    /// `{url, description}`.
    Docs,
    /// A map of names to Example objects.
    Examples,
    /// An object of text fields (`contact`, `license`).
    TextFields,
}

impl Expect {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Expect::Text | Expect::RequiredText => value.is_string(),
            Expect::Flag => value.is_boolean(),
            Expect::TextList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Expect::Docs => value.as_object().is_some_and(|docs| {
                docs.get("url").is_some_and(Value::is_string)
                    && docs.get("description").is_none_or(Value::is_string)
            }),
            Expect::Examples => value
                .as_object()
                .is_some_and(|examples| examples.values().all(example_accepted)),
            Expect::TextFields => value
                .as_object()
                .is_some_and(|fields| fields.values().all(Value::is_string)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expect::Text | Expect::RequiredText => "a string",
            Expect::Flag => "true or false",
            Expect::TextList => "a list of strings",
            Expect::Docs => "an object with a `url` string",
            Expect::Examples => "a map of Example objects",
            Expect::TextFields => "an object of strings",
        }
    }
}

/// An Example object (or a reference to one) whose annotations have their types.
fn example_accepted(example: &Value) -> bool {
    example.as_object().is_some_and(|e| {
        ["summary", "description", "externalValue", "$ref"]
            .iter()
            .all(|k| e.get(*k).is_none_or(Value::is_string))
    })
}

/// One annotation the document gives with the wrong type, and what becomes of it.
pub(super) struct Repair {
    /// The keyword's JSON pointer (`#/…/include/description`).
    pub(super) pointer: String,
    /// Its replacement; `None`: removed.
    replacement: Option<Value>,
    /// Why, for the warning; `None` when a `$ref` gave the value and nothing was lost.
    pub(super) why: Option<String>,
}

/// Finds the annotations of the wrong type in `doc`, repairs them, and returns what it did.
pub(super) fn repair(doc: &mut Value) -> Vec<Repair> {
    let mut walk = Walk {
        root: doc,
        repairs: Vec::new(),
    };
    if let Some(map) = doc.as_object() {
        walk.document(map);
    }
    let repairs = walk.repairs;
    // Later pointers first, so that removing an item of a list leaves the earlier ones in place.
    for repair in repairs.iter().rev() {
        apply(doc, repair);
    }
    repairs
}

fn apply(doc: &mut Value, repair: &Repair) {
    let Some((parent, key)) = repair.pointer.rsplit_once('/') else {
        return;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    let Some(parent) = doc.pointer_mut(parent.strip_prefix('#').unwrap_or(parent)) else {
        return;
    };
    match (parent, &repair.replacement) {
        (Value::Object(map), Some(value)) => {
            map.insert(key, value.clone());
        }
        (Value::Object(map), None) => {
            map.shift_remove(&key);
        }
        (Value::Array(items), None) => {
            if let Ok(i) = key.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

const SCHEMA: &[(&str, Expect)] = &[
    ("title", Expect::Text),
    ("description", Expect::Text),
    ("deprecated", Expect::Flag),
    ("readOnly", Expect::Flag),
    ("writeOnly", Expect::Flag),
    ("externalDocs", Expect::Docs),
    ("$comment", Expect::Text),
];
const REFERENCE: &[(&str, Expect)] = &[("summary", Expect::Text), ("description", Expect::Text)];
const OPERATION: &[(&str, Expect)] = &[
    ("tags", Expect::TextList),
    ("summary", Expect::Text),
    ("description", Expect::Text),
    ("externalDocs", Expect::Docs),
    ("operationId", Expect::Text),
    ("deprecated", Expect::Flag),
];
const PARAMETER: &[(&str, Expect)] = &[
    ("description", Expect::Text),
    ("deprecated", Expect::Flag),
    ("examples", Expect::Examples),
];
const DESCRIBED: &[(&str, Expect)] = &[("description", Expect::Text)];
const MEDIA: &[(&str, Expect)] = &[("examples", Expect::Examples)];
const RESPONSE: &[(&str, Expect)] = &[("description", Expect::RequiredText)];
const EXAMPLE: &[(&str, Expect)] = &[
    ("summary", Expect::Text),
    ("description", Expect::Text),
    ("externalValue", Expect::Text),
];
const PATH_ITEM: &[(&str, Expect)] = &[("summary", Expect::Text), ("description", Expect::Text)];
const INFO: &[(&str, Expect)] = &[
    ("title", Expect::RequiredText),
    ("summary", Expect::Text),
    ("description", Expect::Text),
    ("termsOfService", Expect::Text),
    ("contact", Expect::TextFields),
    ("license", Expect::TextFields),
];
const TAG: &[(&str, Expect)] = &[
    ("description", Expect::Text),
    ("externalDocs", Expect::Docs),
];
const SERVER: &[(&str, Expect)] = &[("description", Expect::Text)];
const ROOT: &[(&str, Expect)] = &[("externalDocs", Expect::Docs)];

/// The schemas inside a schema, by how they are held.
const SUBSCHEMA: &[&str] = &[
    "items",
    "not",
    "additionalProperties",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
];
const SUBSCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems", "items"];
const SUBSCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

struct Walk<'d> {
    root: &'d Value,
    repairs: Vec<Repair>,
}

/// How one kind of OpenAPI object is walked.
type Visit<'d> = fn(&mut Walk<'d>, &Value, &str);

impl Walk<'_> {
    /// Checks the annotation keywords of one object.
    fn keywords(&mut self, map: &Map<String, Value>, at: &str, keywords: &[(&str, Expect)]) {
        for (key, expect) in keywords {
            let Some(value) = map.get(*key) else {
                continue;
            };
            if expect.accepts(value) {
                continue;
            }
            let pointer = format!("{at}/{}", pointer_token(key));
            let repair = match self.through_ref(value, *expect) {
                Ok(found) => Repair {
                    pointer,
                    replacement: Some(found.clone()),
                    why: None,
                },
                Err(what) => Repair {
                    pointer,
                    replacement: matches!(expect, Expect::RequiredText)
                        .then(|| Value::String(String::new())),
                    why: Some(format!(
                        "`{key}` is {what}, not {}: it only annotates, so it is ignored",
                        expect.name()
                    )),
                },
            };
            self.repairs.push(repair);
        }
    }

    /// The value a `{$ref: "#/…"}` in an annotation's place resolves to, when it has the type
    /// wanted; else what the value is, for the warning.
    fn through_ref<'v>(&'v self, value: &'v Value, expect: Expect) -> Result<&'v Value, String> {
        let mut current = value;
        let mut described = String::new();
        for _ in 0..8 {
            let Some(target) = current
                .as_object()
                .filter(|m| m.len() == 1)
                .and_then(|m| m.get("$ref"))
                .and_then(Value::as_str)
            else {
                break;
            };
            if described.is_empty() {
                described = format!("a $ref to \"{target}\"");
            }
            let resolved = target
                .strip_prefix('#')
                .and_then(|path| self.root.pointer(path));
            match resolved {
                Some(next) if expect.accepts(next) => return Ok(next),
                Some(next) => current = next,
                None if !target.starts_with('#') => {
                    return Err(format!("{described}, another file, which is not read"));
                }
                None => return Err(format!("{described}, which does not resolve")),
            }
        }
        if described.is_empty() {
            Err(kind_of(value).into())
        } else {
            Err(format!("{described}, which is {}", kind_of(current)))
        }
    }

    fn document(&mut self, doc: &Map<String, Value>) {
        self.keywords(doc, "#", ROOT);
        self.servers(doc, "#");
        if let Some(Value::Object(info)) = doc.get("info") {
            self.keywords(info, "#/info", INFO);
        }
        if let Some(tags) = doc.get("tags") {
            self.tags(tags);
        }
        if let Some(Value::Object(paths)) = doc.get("paths") {
            for (path, item) in paths {
                self.path_item(item, &format!("#/paths/{}", pointer_token(path)));
            }
        }
        if let Some(Value::Object(hooks)) = doc.get("webhooks") {
            for (name, item) in hooks {
                self.path_item(item, &format!("#/webhooks/{}", pointer_token(name)));
            }
        }
        let Some(Value::Object(components)) = doc.get("components") else {
            return;
        };
        let sections: [(&str, Visit<'_>); 10] = [
            ("schemas", Self::schema),
            ("parameters", Self::parameter),
            ("headers", Self::parameter),
            ("requestBodies", Self::request_body),
            ("responses", Self::response),
            ("examples", Self::example),
            ("links", Self::described),
            ("securitySchemes", Self::described),
            ("callbacks", Self::callback),
            ("pathItems", Self::path_item),
        ];
        for (section, visit) in sections {
            if let Some(Value::Object(entries)) = components.get(section) {
                for (name, entry) in entries {
                    let at = format!("#/components/{section}/{}", pointer_token(name));
                    visit(self, entry, &at);
                }
            }
        }
    }

    /// The document's tag list: a tag that is not `{name: "…"}` is dropped.
    fn tags(&mut self, tags: &Value) {
        let Some(items) = tags.as_array() else {
            self.repairs.push(Repair {
                pointer: "#/tags".into(),
                replacement: None,
                why: Some(format!(
                    "`tags` is {}, not a list of Tag objects: it only annotates, so it is ignored",
                    kind_of(tags)
                )),
            });
            return;
        };
        for (i, tag) in items.iter().enumerate() {
            let at = format!("#/tags/{i}");
            match tag.as_object() {
                Some(t) if t.get("name").is_some_and(Value::is_string) => {
                    self.keywords(t, &at, TAG)
                }
                _ => self.repairs.push(Repair {
                    pointer: at,
                    replacement: None,
                    why: Some(format!(
                        "this tag is {}, not an object with a `name` string: it only annotates, so it is ignored",
                        kind_of(tag)
                    )),
                }),
            }
        }
    }

    /// A Reference object in place of a component: only its own annotations.
    fn reference(&mut self, value: &Value, at: &str) -> bool {
        match value.as_object() {
            Some(map) if map.contains_key("$ref") => {
                self.keywords(map, at, REFERENCE);
                true
            }
            _ => false,
        }
    }

    fn path_item(&mut self, item: &Value, at: &str) {
        let Some(map) = item.as_object() else {
            return;
        };
        self.keywords(map, at, PATH_ITEM);
        self.servers(map, at);
        if let Some(Value::Array(parameters)) = map.get("parameters") {
            for (i, p) in parameters.iter().enumerate() {
                self.parameter(p, &format!("{at}/parameters/{i}"));
            }
        }
        for (key, op) in map {
            if crate::ir::Method::from_openapi(key).is_some() {
                self.operation(op, &format!("{at}/{key}"));
            }
        }
    }

    fn operation(&mut self, op: &Value, at: &str) {
        let Some(map) = op.as_object() else {
            return;
        };
        self.keywords(map, at, OPERATION);
        self.servers(map, at);
        if let Some(Value::Array(parameters)) = map.get("parameters") {
            for (i, p) in parameters.iter().enumerate() {
                self.parameter(p, &format!("{at}/parameters/{i}"));
            }
        }
        if let Some(body) = map.get("requestBody") {
            self.request_body(body, &format!("{at}/requestBody"));
        }
        if let Some(Value::Object(responses)) = map.get("responses") {
            for (status, response) in responses {
                self.response(
                    response,
                    &format!("{at}/responses/{}", pointer_token(status)),
                );
            }
        }
        if let Some(Value::Object(callbacks)) = map.get("callbacks") {
            for (name, callback) in callbacks {
                self.callback(callback, &format!("{at}/callbacks/{}", pointer_token(name)));
            }
        }
    }

    /// The servers a path item or an operation names (the document's own are dropped later).
    fn servers(&mut self, map: &Map<String, Value>, at: &str) {
        let Some(Value::Array(servers)) = map.get("servers") else {
            return;
        };
        for (i, server) in servers.iter().enumerate() {
            let Some(server) = server.as_object() else {
                continue;
            };
            let at = format!("{at}/servers/{i}");
            self.keywords(server, &at, SERVER);
            if let Some(Value::Object(variables)) = server.get("variables") {
                for (name, variable) in variables {
                    if let Some(variable) = variable.as_object() {
                        let at = format!("{at}/variables/{}", pointer_token(name));
                        self.keywords(variable, &at, SERVER);
                    }
                }
            }
        }
    }

    fn callback(&mut self, callback: &Value, at: &str) {
        if self.reference(callback, at) {
            return;
        }
        if let Some(map) = callback.as_object() {
            for (expression, item) in map {
                self.path_item(item, &format!("{at}/{}", pointer_token(expression)));
            }
        }
    }

    /// A Parameter or a Header object.
    fn parameter(&mut self, p: &Value, at: &str) {
        if self.reference(p, at) {
            return;
        }
        let Some(map) = p.as_object() else {
            return;
        };
        self.keywords(map, at, PARAMETER);
        if let Some(schema) = map.get("schema") {
            self.schema(schema, &format!("{at}/schema"));
        }
        self.content(map, at);
    }

    fn request_body(&mut self, body: &Value, at: &str) {
        if self.reference(body, at) {
            return;
        }
        if let Some(map) = body.as_object() {
            self.keywords(map, at, DESCRIBED);
            self.content(map, at);
        }
    }

    fn response(&mut self, response: &Value, at: &str) {
        if self.reference(response, at) {
            return;
        }
        let Some(map) = response.as_object() else {
            return;
        };
        self.keywords(map, at, RESPONSE);
        self.headers(map, at);
        self.content(map, at);
        if let Some(Value::Object(links)) = map.get("links") {
            for (name, link) in links {
                self.described(link, &format!("{at}/links/{}", pointer_token(name)));
            }
        }
    }

    fn headers(&mut self, map: &Map<String, Value>, at: &str) {
        if let Some(Value::Object(headers)) = map.get("headers") {
            for (name, header) in headers {
                self.parameter(header, &format!("{at}/headers/{}", pointer_token(name)));
            }
        }
    }

    /// The media types of a body, a response, a parameter or a header.
    fn content(&mut self, map: &Map<String, Value>, at: &str) {
        let Some(Value::Object(content)) = map.get("content") else {
            return;
        };
        for (media_type, media) in content {
            let at = format!("{at}/content/{}", pointer_token(media_type));
            let Some(media) = media.as_object() else {
                continue;
            };
            self.keywords(media, &at, MEDIA);
            if let Some(schema) = media.get("schema") {
                self.schema(schema, &format!("{at}/schema"));
            }
            if let Some(Value::Object(encodings)) = media.get("encoding") {
                for (name, encoding) in encodings {
                    if let Some(encoding) = encoding.as_object() {
                        self.headers(encoding, &format!("{at}/encoding/{}", pointer_token(name)));
                    }
                }
            }
        }
    }

    fn example(&mut self, example: &Value, at: &str) {
        if self.reference(example, at) {
            return;
        }
        if let Some(map) = example.as_object() {
            self.keywords(map, at, EXAMPLE);
        }
    }

    /// A Link or a Security Scheme: only a description annotates it.
    fn described(&mut self, value: &Value, at: &str) {
        if self.reference(value, at) {
            return;
        }
        if let Some(map) = value.as_object() {
            self.keywords(map, at, DESCRIBED);
        }
    }

    fn schema(&mut self, schema: &Value, at: &str) {
        let Some(map) = schema.as_object() else {
            return;
        };
        self.keywords(map, at, SCHEMA);
        for key in SUBSCHEMA {
            if let Some(child) = map.get(*key).filter(|c| c.is_object()) {
                self.schema(child, &format!("{at}/{key}"));
            }
        }
        for key in SUBSCHEMA_LISTS {
            if let Some(Value::Array(children)) = map.get(*key) {
                for (i, child) in children.iter().enumerate() {
                    self.schema(child, &format!("{at}/{key}/{i}"));
                }
            }
        }
        for key in SUBSCHEMA_MAPS {
            if let Some(Value::Object(children)) = map.get(*key) {
                for (name, child) in children {
                    self.schema(child, &format!("{at}/{key}/{}", pointer_token(name)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn repaired(mut doc: Value) -> (Value, Vec<(String, Option<String>)>) {
        let repairs = repair(&mut doc);
        (
            doc,
            repairs.into_iter().map(|r| (r.pointer, r.why)).collect(),
        )
    }

    #[test]
    fn a_description_given_by_ref_to_a_string_is_used() {
        let (doc, repairs) = repaired(json!({
            "components": { "schemas": {
                "includable": { "type": "string", "description": "What to include." },
                "create": { "type": "object", "properties": { "include": {
                    "type": "array",
                    "description": { "$ref": "#/components/schemas/includable/description" },
                    "items": { "$ref": "#/components/schemas/includable" } } } } } }
        }));
        assert_eq!(
            doc["components"]["schemas"]["create"]["properties"]["include"]["description"],
            "What to include."
        );
        assert_eq!(
            repairs,
            vec![(
                "#/components/schemas/create/properties/include/description".into(),
                None
            )]
        );
    }

    #[test]
    fn wrong_types_are_removed_with_a_reason_and_property_names_are_left_alone() {
        let (doc, repairs) = repaired(json!({
            "info": { "title": 3, "version": "1" },
            "paths": { "/a": { "post": {
                "operationId": 7, "deprecated": "yes", "tags": "chat",
                "requestBody": { "content": { "application/json": { "schema": {
                    "type": "object",
                    "properties": {
                        "description": { "type": "string" },
                        "title": { "$ref": "#/x" }
                    },
                    "externalDocs": "https://example.com",
                    "title": { "$ref": "#/components/schemas" } } } } },
                "responses": { "200": { "description": ["ok"] } } } } },
            "components": { "schemas": {} }
        }));
        let op = &doc["paths"]["/a"]["post"];
        assert!(op.get("operationId").is_none() && op.get("deprecated").is_none());
        assert!(op.get("tags").is_none());
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        // Property names are names, whatever they spell.
        assert_eq!(
            schema["properties"]["description"],
            json!({"type": "string"})
        );
        assert_eq!(schema["properties"]["title"], json!({"$ref": "#/x"}));
        assert!(schema.get("externalDocs").is_none() && schema.get("title").is_none());
        // What OpenAPI requires is emptied, not removed.
        assert_eq!(op["responses"]["200"]["description"], "");
        assert_eq!(doc["info"]["title"], "");
        let why: Vec<String> = repairs
            .iter()
            .map(|(p, why)| format!("{p}: {}", why.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            why,
            vec![
                "#/info/title: `title` is a number, not a string: it only annotates, so it is ignored",
                "#/paths/~1a/post/tags: `tags` is a string, not a list of strings: it only annotates, so it is ignored",
                "#/paths/~1a/post/operationId: `operationId` is a number, not a string: it only annotates, so it is ignored",
                "#/paths/~1a/post/deprecated: `deprecated` is a string, not true or false: it only annotates, so it is ignored",
                "#/paths/~1a/post/requestBody/content/application~1json/schema/title: `title` is a $ref to \"#/components/schemas\", which is an object, not a string: it only annotates, so it is ignored",
                "#/paths/~1a/post/requestBody/content/application~1json/schema/externalDocs: `externalDocs` is a string, not an object with a `url` string: it only annotates, so it is ignored",
                "#/paths/~1a/post/responses/200/description: `description` is a list, not a string: it only annotates, so it is ignored",
            ]
        );
    }

    #[test]
    fn dangling_and_foreign_refs_in_annotations() {
        let (_, repairs) = repaired(json!({
            "tags": [{ "name": "a", "description": { "$ref": "#/nope" } }, "b"],
            "paths": { "/a": { "get": { "summary": { "$ref": "./other.yaml#/s" } } } }
        }));
        let why: Vec<String> = repairs.into_iter().filter_map(|(_, w)| w).collect();
        assert_eq!(
            why,
            vec![
                "`description` is a $ref to \"#/nope\", which does not resolve, not a string: it only annotates, so it is ignored",
                "this tag is a string, not an object with a `name` string: it only annotates, so it is ignored",
                "`summary` is a $ref to \"./other.yaml#/s\", another file, which is not read, not a string: it only annotates, so it is ignored",
            ]
        );
    }
}
