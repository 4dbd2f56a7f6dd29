//! The api-versions compiled into the gateway, checked against the spec files they came from:
//! the route table holds exactly the spec's operations, every example body in the spec reads into
//! its generated model and writes back unchanged, and nothing fell back to an untyped value.

use std::collections::BTreeSet;
use std::path::Path;

use aoai_codegen::WarningKind;
use aoai_gateway::generated::API_VERSIONS;
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/spec"))
}

/// Each spec file as published, read by the loader alone (not converted): (api-version,
/// document). The loader, not a plain YAML reader, because the published files hold a repeated
/// key and integers beyond what JSON numbers hold.
fn specs_as_published() -> Vec<(String, Value)> {
    let files = aoai_codegen::spec_files(spec_dir())
        .expect("spec folder readable")
        .specs;
    files
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let (doc, _) = aoai_codegen::load::load(path, &name, &name, Default::default())
                .unwrap_or_else(|e| panic!("{e}"));
            (doc.version, doc.published)
        })
        .collect()
}

#[test]
fn the_published_specs_are_compiled_in() {
    let versions: Vec<&str> = API_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(versions, ["2024-09-01-preview", "2024-10-21", "v1"]);
}

#[test]
fn route_table_has_exactly_the_specs_operations() {
    let specs = specs_as_published();
    assert_eq!(specs.len(), API_VERSIONS.len());
    for (version, doc) in specs {
        let mut expected = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let id = op["operationId"].as_str().expect("operationId").to_string();
                    expected.insert((id, method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        let api = API_VERSIONS
            .iter()
            .find(|v| v.version == version)
            .expect("version compiled in");
        let actual: BTreeSet<_> = api
            .routes
            .iter()
            .map(|r| {
                (
                    r.operation_id.to_string(),
                    r.method.as_str().to_string(),
                    r.path.to_string(),
                )
            })
            .collect();
        assert_eq!(
            api.routes.len(),
            expected.len(),
            "{version}: operation count"
        );
        assert_eq!(actual, expected, "{version}: operations");
    }
}

#[test]
fn published_operation_counts() {
    let count = |v: &str| {
        API_VERSIONS
            .iter()
            .find(|a| a.version == v)
            .map(|a| a.routes.len())
    };
    assert_eq!(count("2024-10-21"), Some(6));
    assert_eq!(count("2024-09-01-preview"), Some(42));
    assert_eq!(count("v1"), Some(51));
}

/// JSON equality where `1` and `1.0` are the same number, as they are in JSON.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn every_example_body_round_trips_through_its_model() {
    let generated = aoai_codegen::generate(spec_dir(), "spec", Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut checked = 0;
    for api in &generated.apis {
        let compiled = API_VERSIONS
            .iter()
            .find(|v| v.version == api.version)
            .expect("compiled");
        for op in &api.operations {
            let route = compiled
                .routes
                .iter()
                .find(|r| r.operation_id == op.operation_id)
                .expect("route");
            let request = op
                .request
                .iter()
                .map(|b| (&b.content, route.request.as_ref().map(|r| r.content)));
            let responses = op.responses.iter().map(|r| {
                let spec = route
                    .responses
                    .iter()
                    .find(|s| s.status == r.status)
                    .map(|s| s.content);
                (&r.content, spec)
            });
            for (contents, compiled_media) in request.chain(responses) {
                for content in contents.iter().filter(|c| !c.examples.is_empty()) {
                    let media = compiled_media
                        .and_then(|m| m.iter().find(|m| m.media_type == content.media_type))
                        .expect("media compiled");
                    let roundtrip = media.roundtrip.unwrap_or_else(|| {
                        panic!("{}: no model to check examples with", content.pointer)
                    });
                    for example in &content.examples {
                        let back = roundtrip(&example.value)
                            .unwrap_or_else(|e| panic!("{}: {e}", example.pointer));
                        assert!(
                            same_json(&back, &example.value),
                            "{}: changed in the round trip:\n{back}",
                            example.pointer
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    // Each published spec has a request and a response example (completions).
    assert_eq!(checked, 4);
}

#[test]
fn shipped_specs_need_no_untyped_fallback() {
    let generated = aoai_codegen::generate(spec_dir(), "spec", Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let fallbacks: Vec<String> = generated
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Untyped)
        .map(|w| w.to_string())
        .collect();
    assert!(fallbacks.is_empty(), "untyped fallbacks: {fallbacks:#?}");
    for api in &generated.apis {
        assert!(
            api.types
                .iter()
                .all(|t| !matches!(t.kind, aoai_codegen::ir::TypeKind::Untyped { .. }))
        );
    }
}

/// The published specs' `required` names that their schemas do not define: each would refuse a
/// call the SDKs make every day (structured outputs, assistants runs), so none is enforced. The
/// list is pinned: a new spec that adds one shows up here, and in `aoai-gateway routes`.
#[test]
fn the_shipped_specs_undefined_required_names_are_reported_and_not_enforced() {
    let generated = aoai_codegen::generate(spec_dir(), "spec", Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let others: Vec<String> = generated
        .warnings
        .iter()
        .filter(|w| w.kind != WarningKind::NotEnforced)
        .map(|w| w.to_string())
        .collect();
    assert!(others.is_empty(), "warnings: {others:#?}");
    let unenforced: Vec<String> = generated
        .warnings
        .iter()
        .map(|w| {
            let name = w.message.split('`').nth(3).unwrap_or("?");
            let file = w.location.file.display();
            format!("{file} {} {name}", w.location.pointer)
        })
        .collect();
    let preview = "spec/2024-09-01-preview/inference.yaml #/components/schemas";
    let stable = "spec/2024-10-21/inference.json #/components/schemas";
    assert_eq!(
        unenforced,
        [
            format!("{preview}/ResponseFormatJsonSchema/properties/json_schema/required type"),
            // A deprecated `function` message is `{role, name, content}`; nothing defines this.
            format!("{preview}/chatCompletionRequestMessageFunction/required function_call_id"),
            format!("{preview}/createRunRequest/required thread_id"),
            format!("{preview}/createThreadAndRunRequest/required thread_id"),
            // An answer schema: the simulator's answers are checked against it.
            format!("{preview}/vectorStoreObject/required bytes"),
            format!("{stable}/ResponseFormatJsonSchema/properties/json_schema/required type"),
            format!("{stable}/chatCompletionRequestMessageFunction/required function_call_id"),
        ]
    );
    // Each is listed on the operations whose requests reach it (no message union of these specs
    // names the deprecated function message, so no operation lists that one).
    let chat = API_VERSIONS
        .iter()
        .find(|v| v.version == "2024-10-21")
        .and_then(|v| {
            v.routes
                .iter()
                .find(|r| r.operation_id == "ChatCompletions_Create")
        })
        .expect("chat route");
    let listed: Vec<&str> = chat.unchecked.iter().map(|u| u.pointer).collect();
    assert_eq!(
        listed,
        ["#/components/schemas/ResponseFormatJsonSchema/properties/json_schema/required"]
    );
}

#[test]
fn intermediate_model_serializes() {
    let generated = aoai_codegen::generate(spec_dir(), "spec", Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    for api in &generated.apis {
        let json = serde_json::to_string(api).expect("the IR is plain data");
        let back: aoai_codegen::ir::Api = serde_json::from_str(&json).expect("and reads back");
        assert_eq!(back.operations, api.operations);
        assert_eq!(back.types, api.types);
    }
}

/// The validator refuses none of the requests the specs publish as examples, even when told to
/// refuse unknown fields: the examples are what the service accepts.
#[test]
fn every_request_example_passes_the_validator() {
    let generated = aoai_codegen::generate(spec_dir(), "spec", Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let strict = aoai_runtime::schema::Policy {
        reject_unknown_fields: true,
    };
    let mut checked = 0;
    for api in &generated.apis {
        let compiled = API_VERSIONS
            .iter()
            .find(|v| v.version == api.version)
            .expect("compiled");
        for op in &api.operations {
            let Some(body) = &op.request else { continue };
            let route = compiled
                .routes
                .iter()
                .find(|r| r.operation_id == op.operation_id)
                .expect("route");
            let compiled_body = route.request.as_ref().expect("request compiled");
            for content in body.content.iter().filter(|c| !c.examples.is_empty()) {
                let media = compiled_body
                    .content
                    .iter()
                    .find(|m| m.media_type == content.media_type)
                    .expect("media compiled");
                let Some(schema) = media.schema else { continue };
                for example in &content.examples {
                    let bytes = serde_json::to_vec(&example.value).expect("json");
                    if let Err(e) = aoai_runtime::schema::json::validate(&bytes, schema, strict) {
                        panic!("{}: {e}", example.pointer);
                    }
                    checked += 1;
                }
            }
        }
    }
    // Each published spec has one request example (completions); the fuzzer's positive cases
    // and the SDK runs cover the rest.
    assert_eq!(checked, 2);
}

/// Which parameters and fields each operation follows to a stored object, which it creates,
/// lists and deletes: derived from the specs by rule (`convert::objects`), pinned here so that
/// a new spec's change to them is seen in review. `UPDATE_SNAPSHOTS=1` rewrites the snapshot.
#[test]
fn the_stored_objects_each_operation_follows_are_pinned() {
    let mut text = String::new();
    for api in aoai_gateway::generated::API_VERSIONS {
        for route in api.routes {
            if let Some(line) = route.objects.describe() {
                text.push_str(&format!(
                    "{} {} {}{}\n    {line}\n",
                    api.version,
                    route.method.as_str(),
                    api.mount,
                    route.path
                ));
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/objects.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        pinned == text,
        "the followed objects changed; review and run with UPDATE_SNAPSHOTS=1:\n{text}"
    );
    // The issue's own examples are among them.
    for expected in [
        "v1 GET /v1/responses/{response_id}\n    follows {response_id} (response)",
        "previous_response_id (response)",
        "tools[].vector_store_ids[] (vector_store)",
        "training_file (file), validation_file (file)",
        "v1 POST /v1/responses\n    creates response, records id (response)",
        "v1 GET /v1/files\n    lists file",
        "2024-09-01-preview POST /threads/runs\n    creates run, records thread_id (thread)",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}
