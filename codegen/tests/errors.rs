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
    error_with(test, files, aoai_codegen::Options::default())
}

fn error_with(test: &str, files: &[(&str, &str)], options: aoai_codegen::Options) -> String {
    let dir = spec_dir(test, files);
    let out = dir.join("out");
    let result = aoai_codegen::build(&dir, &out, options);
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
    let message = "a.yaml:12:13 at #/paths/~1chat/post/requestBody/content/application~1json/schema: $ref \"#/components/schemas/Nope\" does not resolve: nothing in this file has that JSON pointer; the value there is not checked";
    // By default the build goes on: a warning, and the body there is not checked.
    let dir = spec_dir("dangling-ref-warns", &[("a.yaml", &spec)]);
    let report = aoai_codegen::build(&dir, &dir.join("out"), aoai_codegen::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.to_string().ends_with(message)),
        "{:?}",
        report.warnings
    );
    // AOAI_CODEGEN_STRICT=1 (build.rs) makes it an error.
    let err = error_with(
        "dangling-ref",
        &[("a.yaml", &spec)],
        aoai_codegen::Options { strict: true },
    );
    assert!(err.ends_with(message), "{err}");
}

#[test]
fn a_dangling_ref_deep_in_a_body_is_marked_on_the_operations_that_reach_it() {
    let spec = format!(
        "{HEAD}paths:\n  /chat:\n    post:\n      operationId: Chat\n      requestBody:\n        content:\n          application/json:\n            schema:\n              $ref: '#/components/schemas/Chat'\n      responses: {{}}\n  /ping:\n    post:\n      operationId: Ping\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n      responses: {{}}\ncomponents:\n  schemas:\n    Chat:\n      type: object\n      properties:\n        tools:\n          type: array\n          items:\n            $ref: '#/components/schemas/Tool'\n    Tool:\n      type: object\n      properties:\n        spec:\n          $ref: '#/components/schemas/Missing'\n"
    );
    let dir = spec_dir("dangling-deep", &[("a.yaml", &spec)]);
    let generated = aoai_codegen::generate(&dir, "spec", aoai_codegen::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let api = &generated.apis[0];
    let unchecked = |id: &str| {
        api.operations
            .iter()
            .find(|op| op.operation_id == id)
            .map(|op| op.unchecked.clone())
            .expect("operation")
    };
    let chat = unchecked("Chat");
    assert_eq!(chat.len(), 1, "{chat:?}");
    assert_eq!(chat[0].pointer, "#/components/schemas/Tool/properties/spec");
    assert!(
        chat[0].reason.contains("does not resolve"),
        "{}",
        chat[0].reason
    );
    assert!(unchecked("Ping").is_empty());
    // The docs say it on the operation.
    let page = aoai_codegen::docs::pages(&generated.apis)
        .into_iter()
        .find(|(name, _)| name == "2025-01-01.html")
        .map(|(_, html)| html)
        .expect("version page");
    assert!(page.contains("<div class=\"unchecked\"><p>Not validated:</p>"));
    assert!(page.contains("<code>#/components/schemas/Tool/properties/spec</code>"));
}

#[test]
fn duplicate_operation_id_names_both_places() {
    let spec = format!(
        "{HEAD}paths:\n  /a:\n    get:\n      operationId: Same\n      responses: {{}}\n    post:\n      operationId: Same\n      responses: {{}}\n"
    );
    let err = error_of("duplicate-op", &[("a.yaml", &spec)]);
    assert!(err.contains("a.yaml:11:7 at #/paths/~1a/post/operationId: duplicate operationId `Same` (first used at #/paths/~1a/get/operationId)"), "{err}");
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
        err.contains("a.yaml:11:5 at #/paths/~1things~1{b}/get: GET /things/{b} matches the same requests as the operation at #/paths/~1things~1{a}/get"),
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
        err.contains(
            "a.yaml:9:9 at #/paths/~1a/get/parameters/0: not a valid OpenAPI 3.0.0 document"
        ),
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
    let report = aoai_codegen::build(&dir, &dir.join("out"), aoai_codegen::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let generated = std::fs::read_to_string(dir.join("out/aoai_generated.rs")).expect("written");
    let _ = std::fs::remove_dir_all(&dir);
    let fallbacks: Vec<String> = report
        .warnings
        .iter()
        .filter(|w| w.kind == aoai_codegen::WarningKind::Untyped)
        .map(|w| w.to_string())
        .collect();
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
    assert!(
        fallbacks[0].contains(
            "a.yaml:8:5 at #/components/schemas/NotAString: untyped fallback: `not` schemas"
        ),
        "{}",
        fallbacks[0]
    );
    assert!(generated.contains("pub type NotAString = serde_json::Value;"));
}

const FILES_SPEC: &str = "openapi: 3.0.0\ninfo:\n  title: t\n  version: v1\nservers:\n  - url: https://{endpoint}/openai/v1\npaths:\n  /files:\n    post:\n      operationId: createFile\n      requestBody:\n        content:\n          multipart/form-data:\n            schema:\n              $ref: '#/components/schemas/Upload'\n      responses: {}\ncomponents:\n  schemas:\n    Upload:\n      type: object\n      required: [file, expires_after, purpose]\n      properties:\n        file: {type: string, format: binary}\n        expires_after: {type: object}\n        purpose: {type: string}\n";

fn overlay_with(extends: &str, target: &str) -> String {
    format!(
        "overlay: 1.0.0\ninfo:\n  title: Relax uploads\n  version: 1.0.0\nextends: {extends}\nactions:\n  - target: {target}\n    description: expires_after is optional\n    remove: true\n"
    )
}

#[test]
fn an_overlay_is_applied_served_and_shown() {
    let overlay = overlay_with(
        "./api.yaml",
        "$.components.schemas.Upload.required[?@ == 'expires_after']",
    );
    let dir = spec_dir(
        "overlay-applied",
        &[
            ("v1/api.yaml", FILES_SPEC),
            ("v1/relax.overlay.yaml", &overlay),
        ],
    );
    let generated = aoai_codegen::generate(&dir, "spec", aoai_codegen::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let out = dir.with_extension("out");
    let report = aoai_codegen::build(&dir, &out, aoai_codegen::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let served = std::fs::read_to_string(out.join("openapi/v1.json")).expect("served copy");
    let page = std::fs::read_to_string(out.join("docs/v1.html")).expect("version page");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&out);
    // The overlay is an input of the build, not a spec of its own.
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(
        report
            .inputs
            .iter()
            .any(|p| p.ends_with("v1/relax.overlay.yaml"))
    );
    assert_eq!(generated.apis.len(), 1);
    let op = &generated.apis[0].operations[0];
    assert_eq!(op.overlaid.len(), 1);
    assert_eq!(
        op.overlaid[0].pointer,
        "#/components/schemas/Upload/required/1"
    );
    // The document served is the one enforced, and says what was changed.
    let served: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert_eq!(
        served["components"]["schemas"]["Upload"]["required"],
        serde_json::json!(["file", "purpose"])
    );
    let listed = &served["x-aoai-gateway-overlays"][0];
    assert!(
        listed["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("/v1/relax.overlay.yaml")),
        "{listed}"
    );
    assert_eq!(listed["actions"][0]["change"], "remove");
    assert_eq!(
        listed["actions"][0]["changed"][0],
        "#/components/schemas/Upload/required/1"
    );
    // The docs say it on the version and on the operation.
    assert!(page.contains("/v1/relax.overlay.yaml</code>, Relax uploads (version 1.0.0)."));
    assert!(page.contains("<div class=\"overlaid\"><p>Changed by an overlay:</p><ul><li><code>#/components/schemas/Upload/required/1</code>: <code>"));
    assert!(
        page.contains("/v1/relax.overlay.yaml</code>, action 1 (expires_after is optional)</li>")
    );
}

#[test]
fn a_stale_overlay_fails_the_build_naming_its_action() {
    let overlay = overlay_with(
        "./api.yaml",
        "$.components.schemas.Upload.required[?@ == 'expiry']",
    );
    let err = error_of(
        "overlay-stale",
        &[
            ("v1/api.yaml", FILES_SPEC),
            ("v1/relax.overlay.yaml", &overlay),
        ],
    );
    let (at, rest) = err.split_once(" matches nothing in ").expect("says so");
    assert!(
        at.ends_with("v1/relax.overlay.yaml:7:5 at #/actions/0/target: action 1 (\"expires_after is optional\"): `$.components.schemas.Upload.required[?@ == 'expiry']`"),
        "{err}"
    );
    assert!(
        rest.ends_with("v1/api.yaml; the spec has changed, or the target is wrong: correct the action or remove it"),
        "{err}"
    );
}

#[test]
fn an_overlay_that_extends_no_spec_fails_the_build() {
    let overlay = overlay_with("./other.yaml", "$.paths");
    let err = error_of(
        "overlay-extends",
        &[
            ("v1/api.yaml", FILES_SPEC),
            ("v1/relax.overlay.yaml", &overlay),
        ],
    );
    assert!(
        err.contains(
            "relax.overlay.yaml:5:1 at #/extends: `extends: ./other.yaml` names no spec file in "
        ),
        "{err}"
    );
    assert!(err.ends_with("the spec files are: v1/api.yaml"), "{err}");
    // The upstream URL of the spec names it by its last segment.
    let by_url = overlay_with(
        "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/api.yaml",
        "$.components.schemas.Upload.properties.purpose",
    );
    let dir = spec_dir(
        "overlay-url",
        &[("v1/api.yaml", FILES_SPEC), ("v1/x.overlay.yaml", &by_url)],
    );
    let result = aoai_codegen::generate(&dir, "spec", aoai_codegen::Options::default());
    let _ = std::fs::remove_dir_all(&dir);
    let generated = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(generated.apis[0].overlays.len(), 1);
}
