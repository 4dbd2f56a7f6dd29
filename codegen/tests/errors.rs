//! A spec the generator cannot use fails the build with one message naming the file and the
//! place in it; a construct it can only type loosely warns, naming both, and the build goes on.

use std::path::PathBuf;

/// A fresh spec folder holding the given files.
fn spec_dir(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aoai-codegen-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn error_of(test: &str, files: &[(&str, &str)]) -> String {
    let dir = spec_dir(test, files);
    let out = dir.join("out");
    let result = aoai_codegen::build(&dir, &out);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(_) => panic!("expected {test} to fail the build"),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "openapi: 3.0.0\ninfo:\n  title: t\n  version: 2025-01-01\n";

#[test]
fn bad_yaml_names_file_and_line() {
    let spec = format!("{HEAD}paths:\n  /a:\n    get: [unclosed\n");
    let err = error_of("bad-yaml", &[("v1/broken.yaml", &spec)]);
    assert!(err.contains("/v1/broken.yaml:8:1: invalid YAML: "), "{err}");
}

#[test]
fn bad_json_names_file_and_line() {
    let err = error_of(
        "bad-json",
        &[(
            "x.json",
            "{\n  \"openapi\": \"3.0.0\",\n  \"info\": {\"title\": \"t\" \"version\": \"1\"}\n}",
        )],
    );
    assert!(
        err.contains("x.json:3:25: invalid JSON: expected `,` or `}`"),
        "{err}"
    );
}

#[test]
fn dangling_ref_names_file_and_pointer() {
    let spec = format!(
        "{HEAD}paths:\n  /chat:\n    post:\n      operationId: Chat\n      requestBody:\n        content:\n          application/json:\n            schema:\n              $ref: '#/components/schemas/Nope'\n      responses: {{}}\n"
    );
    let err = error_of("dangling-ref", &[("a.yaml", &spec)]);
    assert!(
        err.ends_with("a.yaml at #/paths/~1chat/post/requestBody/content/application~1json/schema: $ref \"#/components/schemas/Nope\" does not resolve: nothing in this file has that JSON pointer"),
        "{err}"
    );
}

#[test]
fn duplicate_operation_id_names_both_places() {
    let spec = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      operationId: Same\n      responses: {{}}\n    post:\n      operationId: Same\n      responses: {{}}\n"
    );
    let err = error_of("duplicate-op", &[("a.yaml", &spec)]);
    assert!(err.contains("a.yaml at #/paths/~1a/post/operationId: duplicate operationId `Same` (first used at #/paths/~1a/get/operationId)"), "{err}");
}

#[test]
fn duplicate_api_version_names_both_files() {
    let spec = format!("{HEAD}paths: {{}}\n");
    let err = error_of(
        "duplicate-version",
        &[
            ("one.yaml", &spec),
            (
                "two/copy.json",
                "{\"openapi\":\"3.0.0\",\"info\":{\"title\":\"t\",\"version\":\"2025-01-01\"},\"paths\":{}}",
            ),
        ],
    );
    assert!(
        err.starts_with("api-version 2025-01-01 is defined twice: by "),
        "{err}"
    );
    assert!(
        err.contains("one.yaml") && err.contains("two/copy.json"),
        "{err}"
    );
}

#[test]
fn routes_that_match_the_same_requests_are_refused() {
    let spec = format!(
        "{HEAD}paths:\n  /things/{{a}}:\n    get:\n      operationId: One\n      responses: {{}}\n  /things/{{b}}:\n    get:\n      operationId: Two\n      responses: {{}}\n"
    );
    let err = error_of("ambiguous", &[("a.yaml", &spec)]);
    assert!(
        err.contains("a.yaml at #/paths/~1things~1{b}/get: GET /things/{b} matches the same requests as the operation at #/paths/~1things~1{a}/get"),
        "{err}"
    );
}

#[test]
fn wrong_structure_names_the_part() {
    let spec = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      parameters:\n        - name: x\n          in: nowhere\n      responses: {{}}\n"
    );
    let err = error_of("structure", &[("a.yaml", &spec)]);
    assert!(
        err.contains("a.yaml at #/paths/~1a/get/parameters/0: not a valid OpenAPI 3.0 document"),
        "{err}"
    );
}

#[test]
fn empty_folder_is_an_error() {
    let err = error_of("empty", &[("README.md", "# not a spec")]);
    assert!(err.contains("no OpenAPI spec files"), "{err}");
}

#[test]
fn untypeable_schema_warns_with_file_and_pointer_and_builds() {
    let spec = format!(
        "{HEAD}paths: {{}}\ncomponents:\n  schemas:\n    NotAString:\n      not:\n        type: string\n"
    );
    let dir = spec_dir("fallback", &[("a.yaml", &spec)]);
    let report = aoai_codegen::build(&dir, &dir.join("out")).unwrap_or_else(|e| panic!("{e}"));
    let generated = std::fs::read_to_string(dir.join("out/aoai_generated.rs")).expect("written");
    let _ = std::fs::remove_dir_all(&dir);
    let fallbacks: Vec<String> = report
        .warnings
        .iter()
        .filter(|w| w.untyped_fallback)
        .map(|w| w.to_string())
        .collect();
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
    assert!(
        fallbacks[0]
            .contains("a.yaml at #/components/schemas/NotAString: untyped fallback: `not` schemas"),
        "{}",
        fallbacks[0]
    );
    assert!(generated.contains("pub type NotAString = serde_json::Value;"));
}
