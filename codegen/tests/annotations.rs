//! An annotation of the wrong type never breaks the build, in any of the places real documents
//! hold one. Each shipped spec is read, wrong-typed values are put into its annotation keywords
//! at many places chosen by a seeded generator (reproducible; `ANNOTATION_SEED` picks another
//! run), and the result must convert to the same route table and types as the spec as
//! published, with exactly one warning per change that loses something (a `$ref` to a string of
//! the same document loses nothing and warns nothing), each naming the place it changed.
//!
//! The places are found here by a plain walk of the JSON (every `description`, `summary`,
//! `title`, `deprecated` and `externalDocs` key that is not a name in a map of names), not by
//! the generator's own walk, so a kind of place the generator forgets fails this test.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use aoai_codegen::{Options, convert, load};
use serde_json::{Value, json};

const KEYWORDS: &[&str] = &[
    "description",
    "summary",
    "title",
    "deprecated",
    "externalDocs",
];

/// Keys whose object's keys are names (of properties, schemas, media types, status codes…).
const NAME_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "schemas",
    "parameters",
    "responses",
    "headers",
    "requestBodies",
    "securitySchemes",
    "links",
    "callbacks",
    "pathItems",
    "content",
    "encoding",
    "variables",
    "mapping",
    "paths",
    "webhooks",
    "scopes",
];

/// Values, not OpenAPI: never entered.
fn is_data(key: &str) -> bool {
    key.starts_with("x-") || matches!(key, "example" | "examples" | "default" | "enum" | "const")
}

fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every (pointer of the object, keyword) where the document writes an annotation keyword.
fn sites(value: &Value, at: &str, own_key: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let names = NAME_MAPS.contains(&own_key);
            for (key, child) in map {
                if !names && KEYWORDS.contains(&key.as_str()) {
                    out.push((at.to_string(), key.clone()));
                    continue;
                }
                if !names && is_data(key) {
                    continue;
                }
                sites(child, &format!("{at}/{}", token(key)), key, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                sites(item, &format!("{at}/{i}"), "", out);
            }
        }
        _ => {}
    }
}

/// A small reproducible generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A wrong-typed value for `keyword`, and whether the build must warn for it.
fn wrong_value(keyword: &str, rng: &mut Rng) -> (Value, bool) {
    let choices: Vec<(Value, bool)> = match keyword {
        "deprecated" => vec![
            (json!("yes"), true),
            (json!(1), true),
            (json!({"$ref": "#/info/version"}), true),
        ],
        "externalDocs" => vec![
            (json!("https://example.com/docs"), true),
            (json!(5), true),
            (json!({"description": "no url"}), true),
        ],
        _ => vec![
            (json!(42), true),
            (json!(["a", "list"]), true),
            (json!({"text": "a map"}), true),
            (json!(true), true),
            (json!({"$ref": "#/nowhere/at/all"}), true),
            (json!({"$ref": "#/info"}), true),
            // The published form of this slip: a $ref to a string of the same document, used.
            (json!({"$ref": "#/info/version"}), false),
        ],
    };
    choices[rng.below(choices.len())].clone()
}

/// What the gateway serves and checks, with every annotation and every name taken from one
/// left out: routes, parameters, bodies, types and their checks, with types known by the
/// pointer of their schema rather than by a name (a union's variant is named from its `title`).
fn structure(api: &aoai_codegen::ir::Api) -> Value {
    let names: HashMap<&str, &str> = api
        .types
        .iter()
        .map(|t| (t.name.as_str(), t.pointer.as_str()))
        .collect();
    fn strip(value: &mut Value, names: &HashMap<&str, &str>) {
        match value {
            Value::Object(map) => {
                for key in [
                    "description",
                    "summary",
                    "title",
                    "tags",
                    "deprecated",
                    "examples",
                    "name_hint",
                    "rust_name",
                ] {
                    map.remove(key);
                }
                if map.get("type").and_then(Value::as_str) == Some("named")
                    && let Some(Value::String(name)) = map.get_mut("of")
                    && let Some(pointer) = names.get(name.as_str())
                {
                    *name = (*pointer).to_string();
                }
                for child in map.values_mut() {
                    strip(child, names);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| strip(i, names)),
            _ => {}
        }
    }
    let mut types: Vec<Value> = api
        .types
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).expect("plain data");
            if let Some(map) = v.as_object_mut() {
                map.remove("name");
            }
            v
        })
        .collect();
    let mut operations = serde_json::to_value(&api.operations).expect("plain data");
    strip(&mut operations, &names);
    for t in &mut types {
        strip(t, &names);
    }
    types.sort_by_key(|t| t["pointer"].as_str().unwrap_or_default().to_string());
    json!({ "operations": operations, "types": types })
}

fn convert_text(text: &[u8], name: &str) -> (aoai_codegen::ir::Api, Vec<aoai_codegen::Warning>) {
    let (doc, mut warnings) =
        load::parse(text, name, name, Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let (api, more) = convert::convert(&doc, Options::default()).unwrap_or_else(|e| panic!("{e}"));
    warnings.extend(more);
    (api, warnings)
}

fn shipped_specs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec");
    aoai_codegen::spec_files(&dir)
        .expect("spec/ readable")
        .specs
}

#[test]
fn wrong_typed_annotations_in_the_shipped_specs_change_no_route_and_warn_once_each() {
    let seed = std::env::var("ANNOTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_a11a_u64);
    let mut rng = Rng(seed | 1);
    let specs = shipped_specs();
    assert!(specs.len() >= 3, "{specs:?}");
    for path in specs {
        let name = format!("{}.json", path.display());
        let (doc, _) =
            load::load(&path, &name, &name, Options::default()).unwrap_or_else(|e| panic!("{e}"));
        // The spec as published (the loader's copy keeps repeated keys resolved and big
        // numbers readable), written as JSON so both runs take the same road.
        let published = doc.published;
        let (before, before_warnings) =
            convert_text(&serde_json::to_vec(&published).expect("json"), &name);

        let mut found = Vec::new();
        sites(&published, "#", "", &mut found);
        assert!(found.len() > 100, "{name}: {} places", found.len());
        let mut mutated = published.clone();
        let mut warned: BTreeSet<String> = BTreeSet::new();
        let mut repaired: BTreeSet<String> = BTreeSet::new();
        let mut silent = 0;
        let mut changes = 0;
        let wanted = 200.min(found.len() / 2);
        for _ in 0..10 * wanted {
            if changes == wanted {
                break;
            }
            let (at, keyword) = &found[rng.below(found.len())];
            let pointer = format!("{at}/{}", token(keyword));
            if warned.contains(&pointer) || repaired.contains(&pointer) {
                continue;
            }
            let (value, warns) = wrong_value(keyword, &mut rng);
            let Some(Value::Object(map)) = mutated.pointer_mut(&at[1..]) else {
                panic!("{name}: {at} is not an object");
            };
            map.insert(keyword.clone(), value);
            changes += 1;
            if warns {
                warned.insert(pointer);
            } else {
                repaired.insert(pointer);
                silent += 1;
            }
        }
        let (after, after_warnings) =
            convert_text(&serde_json::to_vec(&mutated).expect("json"), &name);

        assert_eq!(
            structure(&after),
            structure(&before),
            "{name} (seed {seed}): the route table changed"
        );
        // Lines differ between the two texts; a warning is its place and its words.
        let said = |w: &aoai_codegen::Warning| (w.location.pointer.clone(), w.message.clone());
        let before_said: BTreeSet<_> = before_warnings.iter().map(said).collect();
        let new_warnings: BTreeSet<String> = after_warnings
            .iter()
            .map(said)
            .filter(|w| !before_said.contains(w))
            .map(|(pointer, _)| pointer)
            .collect();
        let missing: Vec<&String> = warned.difference(&new_warnings).collect();
        let extra: Vec<&String> = new_warnings.difference(&warned).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name} (seed {seed}): one warning per change, at its place; no warning for {missing:#?}; unexpected {extra:#?}"
        );
        assert_eq!(
            after_warnings.len() - before_warnings.len(),
            warned.len(),
            "{name} (seed {seed}): no more warnings than changes"
        );
        assert!(
            changes == wanted && silent > 0,
            "{changes} changes, {silent} silent"
        );
    }
}

#[test]
fn the_published_description_ref_builds_and_strict_mode_refuses_a_wrong_type() {
    // The construct of the 2025 Responses preview that stopped the build.
    let spec = r##"openapi: 3.1.0
info: {title: t, version: 2025-04-01-preview}
paths:
  /responses:
    post:
      operationId: createResponse
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/createResponse'}
      responses:
        '200': {description: OK}
components:
  schemas:
    includable:
      type: string
      enum: [file_search_call.results]
      description: Specify additional output data to include in the model response.
    createResponse:
      type: object
      properties:
        include:
          type: array
          description:
            $ref: "#/components/schemas/includable/description"
          items:
            $ref: "#/components/schemas/includable"
"##;
    let (doc, warnings) = load::parse(spec.as_bytes(), "spec/p.yaml", "p.yaml", Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (api, _) = convert::convert(&doc, Options::default()).expect("converts");
    let field = api
        .types
        .iter()
        .find(|t| t.name == "CreateResponse")
        .and_then(|t| match &t.kind {
            aoai_codegen::ir::TypeKind::Struct(s) => s.fields.first().cloned(),
            _ => None,
        })
        .expect("the include field");
    assert_eq!(
        field.description.as_deref(),
        Some("Specify additional output data to include in the model response.")
    );
    // The served copy is the repaired one, which OpenAPI tools can read.
    assert_eq!(
        doc.published["components"]["schemas"]["createResponse"]["properties"]["include"]["description"],
        "Specify additional output data to include in the model response."
    );

    // A wrong type that no $ref repairs: a warning by default, an error when strict.
    let broken = spec.replace(
        "$ref: \"#/components/schemas/includable/description\"",
        "text: not a string",
    );
    let (_, warnings) = load::parse(
        broken.as_bytes(),
        "spec/p.yaml",
        "p.yaml",
        Options::default(),
    )
    .expect("builds");
    let said: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        [
            "spec/p.yaml:24:11 at #/components/schemas/createResponse/properties/include/description: `description` is an object, not a string: it only annotates, so it is ignored"
        ]
    );
    let err = load::parse(
        broken.as_bytes(),
        "spec/p.yaml",
        "p.yaml",
        Options { strict: true },
    )
    .expect_err("strict refuses it");
    assert_eq!(err.to_string(), said[0]);
}

#[test]
fn strict_mode_refuses_an_undefined_required_name() {
    let spec = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /runs:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              required: [thread_id]\n              properties:\n                assistant_id: {type: string}\n      responses: {}\n";
    let (doc, _) =
        load::parse(spec.as_bytes(), "spec/r.yaml", "r.yaml", Options::default()).expect("loads");
    let (api, warnings) = convert::convert(&doc, Options::default()).expect("converts");
    assert_eq!(warnings.len(), 1);
    assert_eq!(api.operations[0].unchecked.len(), 0, "marked by generate()");
    // The document served says what is enforced, and what was left out.
    let schema = &api.document["paths"]["/runs"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(schema["required"], json!([]));
    assert_eq!(
        api.document["x-aoai-gateway-unenforced"],
        json!([{ "pointer": "#/paths/~1runs/post/requestBody/content/application~1json/schema/required", "name": "thread_id" }])
    );
    let err = convert::convert(&doc, Options { strict: true }).expect_err("strict");
    assert_eq!(
        err.to_string(),
        "spec/r.yaml:11:15 at #/paths/~1runs/post/requestBody/content/application~1json/schema/required: `required` lists `thread_id`, which this schema's `properties` do not define: taken for a spec error, so `thread_id` is not required"
    );
}
