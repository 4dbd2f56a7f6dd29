//! Stage 1: read a spec file, check it, and hand back both its raw JSON tree and its `openapiv3`
//! form.
//!
//! The raw tree is kept because it is what `$ref`s point into and what error pointers are checked
//! against. It is built by our own deserializer ([`tree`]) so that a key written twice (the
//! 2024-09-01-preview spec has one) is noticed instead of refused, and so that YAML merge keys
//! (`<<`) are applied. JSON files are read with serde_json for its error messages, YAML with
//! serde_yaml; anchors, aliases, CRLF and a byte-order mark are all fine.
//!
//! OpenAPI 3.0, 3.1 and 3.2 are read; 3.1 and 3.2 schemas are rewritten into the 3.0 shapes the
//! converter knows ([`normalize`]), while the copy the gateway serves stays as published. A
//! `$ref` that resolves to nothing (published documents have some) is a warning, and the value
//! there is left unchecked; with [`Options::strict`] it fails the build.

use std::collections::HashMap;
use std::path::Path;

use openapiv3::{OpenAPI, ReferenceOr};
use serde_json::Value;

use crate::error::{Error, Location, Warning, WarningKind};
use crate::names::pointer_token;

mod annotations;
pub mod locate;
mod normalize;
pub mod overlay;
mod tree;

use tree::parse_tree;

/// A spec file that parsed and passed the checks.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file as named in messages, e.g. `spec/2024-10-21/inference.json`.
    pub file: String,
    /// The file relative to the spec folder, `/`-separated.
    pub source: String,
    pub version: String,
    pub api: OpenAPI,
    /// The document as JSON, `servers` removed, schemas in 3.0 shapes: what the converter reads.
    pub raw: Value,
    /// The document as published, `servers` removed: what the gateway serves.
    pub published: Value,
    /// Where the document's routes live below the gateway's base path: the path its `servers`
    /// URL has after `/openai` (`{endpoint}/openai/v1` → `/v1`), or empty.
    pub mount: String,
    /// The file's text, to find the line of a pointer for a later message.
    pub text: String,
    /// The overlays applied to it as it was loaded.
    pub overlays: Vec<crate::ir::Overlay>,
}

impl Document {
    /// `pointer` in this file, with its line where the text shows it.
    pub fn location(&self, pointer: &str) -> Location {
        Location {
            file: self.file.clone().into(),
            pointer: pointer.to_string(),
            line: locate::locate(&self.text, pointer),
        }
    }
}

/// How strictly specs are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// A `$ref` that resolves to nothing fails the build instead of warning.
    pub strict: bool,
}

impl Document {
    /// The raw value a local JSON pointer (`#/a/b`) names.
    pub fn resolve(&self, pointer: &str) -> Option<&Value> {
        resolve_pointer(&self.raw, pointer)
    }
}

pub fn resolve_pointer<'v>(root: &'v Value, pointer: &str) -> Option<&'v Value> {
    let path = pointer.strip_prefix('#')?;
    if path.is_empty() {
        return Some(root);
    }
    root.pointer(path)
}

/// Reads and checks one spec file. `file` is the name used in messages; `source` the name
/// relative to the spec folder.
pub fn load(
    path: &Path,
    file: &str,
    source: &str,
    options: Options,
) -> Result<(Document, Vec<Warning>), Error> {
    load_with(path, file, source, options, &[])
}

/// Like [`load`], with the overlays that extend this file applied first, in order.
pub fn load_with(
    path: &Path,
    file: &str,
    source: &str,
    options: Options,
    overlays: &[&overlay::Overlay],
) -> Result<(Document, Vec<Warning>), Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    parse_with(&bytes, file, source, options, overlays)
}

/// Like [`load`], from bytes already read.
pub fn parse(
    bytes: &[u8],
    file: &str,
    source: &str,
    options: Options,
) -> Result<(Document, Vec<Warning>), Error> {
    parse_with(bytes, file, source, options, &[])
}

/// Like [`load_with`], from bytes already read.
pub fn parse_with(
    bytes: &[u8],
    file: &str,
    source: &str,
    options: Options,
    overlays: &[&overlay::Overlay],
) -> Result<(Document, Vec<Warning>), Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::spec(
            file,
            "",
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut warnings = Vec::new();
    if file.to_ascii_lowercase().ends_with(".json") && text.trim_start().starts_with("//") {
        return Err(Error::Spec {
            location: Location {
                file: file.into(),
                pointer: String::new(),
                line: Some((1, 1)),
            },
            message: "a `//` comment before the JSON (as API Management repositories keep one): JSON has no comments; remove the line".into(),
        });
    }
    // Where a pointer is in this file, for every message from here on.
    let at = |pointer: &str| Location {
        file: file.into(),
        pointer: pointer.to_string(),
        line: locate::locate(text, pointer),
    };
    let fail = |pointer: &str, message: String| Error::Spec {
        location: at(pointer),
        message,
    };

    let (mut raw, duplicates) = parse_tree(text, file)?;
    for dup in duplicates {
        // Identical repeats are harmless (the published preview spec has one), so only a
        // conflicting repeat is worth a build warning.
        if !dup.same {
            warnings.push(Warning {
                location: at(&dup.pointer),
                message: format!(
                    "key `{}` appears twice with different content; the last one wins",
                    dup.key
                ),
                kind: WarningKind::Note,
            });
        }
    }

    // Overlays correct the document before anything else reads it.
    let mut applied = Vec::with_capacity(overlays.len());
    for o in overlays {
        applied.push(o.apply(&mut raw, file)?);
    }

    // Annotations of the wrong type are repaired before anything reads the document as
    // OpenAPI, and before the copy the gateway serves is taken.
    for repair in annotations::repair(&mut raw) {
        let Some(why) = repair.why else {
            continue;
        };
        if options.strict {
            return Err(fail(&repair.pointer, why));
        }
        warnings.push(Warning {
            location: at(&repair.pointer),
            message: why,
            kind: WarningKind::Note,
        });
    }

    let head = read_head(text, &raw, file)?;
    let mut mount = String::new();
    // YAML reads `version: 1.10` as the number 1.1; keep the text as written.
    if let Some(obj) = raw.as_object_mut() {
        obj.insert("openapi".into(), Value::String(head.openapi.clone()));
        if let Some(info) = obj.get_mut("info").and_then(Value::as_object_mut) {
            info.insert("version".into(), Value::String(head.version.clone()));
        }
        // The gateway serves every route relative to its own base path.
        if let Some(servers) = obj.remove("servers") {
            mount = mount_of(&servers);
        }
    }
    let published = raw.clone();
    normalize::normalize(&mut raw);

    for (pointer, target) in check_refs(&raw).map_err(|(pointer, m)| fail(&pointer, m))? {
        let message = format!(
            "$ref \"{target}\" does not resolve: nothing in this file has that JSON pointer; the value there is not checked"
        );
        if options.strict {
            return Err(fail(&pointer, message));
        }
        warnings.push(Warning {
            location: at(&pointer),
            message,
            kind: WarningKind::Untyped,
        });
    }

    let api: OpenAPI = match serde_path_to_error::deserialize(&raw) {
        Ok(api) => api,
        Err(err) => {
            let (pointer, message) = narrow(&raw).unwrap_or_else(|| {
                (
                    path_to_pointer(&err.path().to_string()),
                    err.inner().to_string(),
                )
            });
            return Err(fail(
                &pointer,
                format!("not a valid OpenAPI {} document: {message}", head.openapi),
            ));
        }
    };

    check_operation_ids(&raw).map_err(|(pointer, m)| fail(&pointer, m))?;

    Ok((
        Document {
            file: file.to_string(),
            source: source.to_string(),
            version: head.version,
            api,
            raw,
            published,
            mount,
            text: text.to_string(),
            overlays: applied,
        },
        warnings,
    ))
}

/// The mount a `servers` block gives: the path of its first URL after `/openai`. Hosts and
/// variables (`{endpoint}`) are the deployment's business, and a URL that does not go through
/// `/openai` (one rewritten for another gateway) mounts nothing.
fn mount_of(servers: &Value) -> String {
    let Some(url) = servers.pointer("/0/url").and_then(Value::as_str) else {
        return String::new();
    };
    let after_host = match url.split_once("://") {
        Some((_, rest)) => rest,
        None => url,
    };
    // `{endpoint}/openai/v1`, `host/openai/v1` or `/openai/v1`: the path starts at the first `/`.
    let path = after_host.find('/').map_or("", |i| &after_host[i..]);
    match path.strip_prefix("/openai") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            rest.trim_end_matches('/').to_string()
        }
        _ => String::new(),
    }
}

struct Head {
    openapi: String,
    version: String,
}

/// The OpenAPI version and `info.version`, as the text spells them.
fn read_head(text: &str, raw: &Value, file: &str) -> Result<Head, Error> {
    #[derive(serde::Deserialize)]
    struct HeadText {
        openapi: Option<String>,
        swagger: Option<String>,
        info: Option<InfoText>,
    }
    #[derive(serde::Deserialize)]
    struct InfoText {
        version: Option<String>,
    }
    if !raw.is_object() {
        return Err(Error::spec(
            file,
            "#",
            "the document is not a mapping of OpenAPI fields",
        ));
    }
    // serde_yaml reads any plain scalar as a string when asked for one, and JSON is YAML here.
    let head: HeadText = serde_yaml::from_str(text).map_err(|e| {
        Error::spec(
            file,
            "#",
            format!("cannot read `openapi` and `info.version`: {e}"),
        )
    })?;
    if let Some(swagger) = head.swagger {
        return Err(Error::spec(
            file,
            "#/swagger",
            format!("Swagger {swagger} documents are not supported; convert it to OpenAPI 3.0"),
        ));
    }
    let openapi = head.openapi.ok_or_else(|| {
        Error::spec(
            file,
            "#",
            "missing the `openapi` field (expected 3.0.x, 3.1.x or 3.2.x)",
        )
    })?;
    if !["3.0", "3.1", "3.2"]
        .iter()
        .any(|v| openapi == *v || openapi.starts_with(&format!("{v}.")))
    {
        return Err(Error::spec(
            file,
            "#/openapi",
            format!(
                "OpenAPI {openapi} is not supported; the generator reads OpenAPI 3.0, 3.1 and 3.2"
            ),
        ));
    }
    let version = head
        .info
        .and_then(|i| i.version)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            Error::spec(
                file,
                "#/info",
                "missing `info.version`, which names the api-version",
            )
        })?;
    Ok(Head {
        openapi,
        version: version.trim().to_string(),
    })
}

// ----- checks -----

/// Every `$ref` must be local (`#/…`); those that name nothing are returned, as (pointer of the
/// `$ref`, its target). Extensions (`x-…`) and example values are data, not OpenAPI, so a `$ref`
/// inside them is not followed: the preview spec's `x-ms-examples` point at files that are not
/// published with it.
fn check_refs(raw: &Value) -> Result<Vec<(String, String)>, (String, String)> {
    fn is_data(path: &[&str], key: &str) -> bool {
        let parent = path.last().copied().unwrap_or("");
        let grandparent = path.len().checked_sub(2).map(|i| path[i]).unwrap_or("");
        // Under `properties`, keys are property names, whatever they look like.
        parent != "properties"
            && (key.starts_with("x-")
                || key == "example"
                || (key == "value" && grandparent == "examples"))
    }
    fn walk<'v>(
        root: &Value,
        value: &'v Value,
        path: &mut Vec<&'v str>,
        pointer: &mut String,
        unresolved: &mut Vec<(String, String)>,
    ) -> Result<(), (String, String)> {
        match value {
            Value::Object(map) => {
                if let Some(target) = map.get("$ref") {
                    let Some(target) = target.as_str() else {
                        return Err((pointer.clone(), "`$ref` is not a string".into()));
                    };
                    if !target.starts_with('#') {
                        return Err((
                            pointer.clone(),
                            format!(
                                "$ref \"{target}\" points outside this file; only local references (#/...) are supported"
                            ),
                        ));
                    }
                    if resolve_pointer(root, target).is_none() {
                        unresolved.push((pointer.clone(), target.to_string()));
                    }
                }
                for (key, child) in map {
                    if is_data(path, key) {
                        continue;
                    }
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&pointer_token(key));
                    path.push(key);
                    walk(root, child, path, pointer, unresolved)?;
                    path.pop();
                    pointer.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    path.push("[]");
                    walk(root, child, path, pointer, unresolved)?;
                    path.pop();
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut unresolved = Vec::new();
    walk(
        raw,
        raw,
        &mut Vec::new(),
        &mut String::from("#"),
        &mut unresolved,
    )?;
    Ok(unresolved)
}

/// What a value is, in a message: `a string`, `an object`.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn check_operation_ids(raw: &Value) -> Result<(), (String, String)> {
    // operationId → pointer of its first use
    let mut seen: HashMap<String, String> = HashMap::new();
    let Some(paths) = raw.get("paths").and_then(Value::as_object) else {
        return Ok(());
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let pointer = format!("#/paths/{}/{method}/operationId", pointer_token(path));
            if let Some(first) = seen.get(id) {
                return Err((
                    pointer,
                    format!("duplicate operationId `{id}` (first used at {first})"),
                ));
            }
            seen.insert(id.to_string(), pointer);
        }
    }
    Ok(())
}

/// `paths./a.get` (serde_path_to_error's form) → `#/paths/~1a/get`, best effort.
fn path_to_pointer(path: &str) -> String {
    if path == "." || path.is_empty() {
        return "#".into();
    }
    let mut pointer = String::from("#");
    for segment in path.split('.') {
        pointer.push('/');
        pointer.push_str(&pointer_token(segment));
    }
    pointer
}

/// `openapiv3` reads many parts through untagged enums, whose errors only say that "data did not
/// match any variant" somewhere below `paths`. This finds the innermost part that fails on its
/// own, so the message can name it.
fn narrow(raw: &Value) -> Option<(String, String)> {
    use openapiv3::{Example, Parameter, PathItem, RequestBody, Response, Schema};

    fn try_as<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
        serde_path_to_error::deserialize::<_, T>(v)
            .map(|_| ())
            .map_err(|e| {
                let path = e.path().to_string();
                if path == "." {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                }
            })
    }

    fn schema(v: &Value, pointer: String) -> Option<(String, String)> {
        let err = try_as::<ReferenceOr<Schema>>(v).err()?;
        // A failing child explains better than its parent.
        let obj = v.as_object()?;
        for key in ["properties"] {
            if let Some(props) = obj.get(key).and_then(Value::as_object) {
                for (name, child) in props {
                    let p = format!("{pointer}/{key}/{}", pointer_token(name));
                    if let Some(found) = schema(child, p) {
                        return Some(found);
                    }
                }
            }
        }
        for key in ["items", "additionalProperties", "not"] {
            if let Some(child) = obj.get(key).filter(|c| c.is_object())
                && let Some(found) = schema(child, format!("{pointer}/{key}"))
            {
                return Some(found);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(items) = obj.get(key).and_then(Value::as_array) {
                for (i, child) in items.iter().enumerate() {
                    if let Some(found) = schema(child, format!("{pointer}/{key}/{i}")) {
                        return Some(found);
                    }
                }
            }
        }
        Some((pointer, err))
    }

    fn media(content: &Value, pointer: &str) -> Option<(String, String)> {
        for (mt, m) in content.as_object()? {
            let p = format!("{pointer}/content/{}", pointer_token(mt));
            if let Some(s) = m.get("schema")
                && let Some(found) = schema(s, format!("{p}/schema"))
            {
                return Some(found);
            }
        }
        None
    }

    fn operation(op: &Value, pointer: String) -> Option<(String, String)> {
        if let Some(params) = op.get("parameters").and_then(Value::as_array) {
            for (i, param) in params.iter().enumerate() {
                let p = format!("{pointer}/parameters/{i}");
                if let Err(e) = try_as::<ReferenceOr<Parameter>>(param) {
                    if let Some(found) = param
                        .get("schema")
                        .and_then(|s| schema(s, format!("{p}/schema")))
                    {
                        return Some(found);
                    }
                    return Some((p, e));
                }
            }
        }
        if let Some(body) = op.get("requestBody") {
            let p = format!("{pointer}/requestBody");
            if let Err(e) = try_as::<ReferenceOr<RequestBody>>(body) {
                return body
                    .get("content")
                    .and_then(|c| media(c, &p))
                    .or(Some((p, e)));
            }
        }
        if let Some(responses) = op.get("responses").and_then(Value::as_object) {
            for (status, response) in responses {
                let p = format!("{pointer}/responses/{}", pointer_token(status));
                if let Err(e) = try_as::<ReferenceOr<Response>>(response) {
                    return response
                        .get("content")
                        .and_then(|c| media(c, &p))
                        .or(Some((p, e)));
                }
            }
        }
        try_as::<openapiv3::Operation>(op)
            .err()
            .map(|e| (pointer, e))
    }

    if let Some(paths) = raw.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let p = format!("#/paths/{}", pointer_token(path));
            if try_as::<ReferenceOr<PathItem>>(item).is_ok() {
                continue;
            }
            if let Some(item_obj) = item.as_object() {
                for (method, op) in item_obj {
                    if crate::ir::Method::from_openapi(method).is_some()
                        && let Some(found) = operation(op, format!("{p}/{method}"))
                    {
                        return Some(found);
                    }
                }
            }
            if let Err(e) = try_as::<ReferenceOr<PathItem>>(item) {
                return Some((p, e));
            }
        }
    }
    if let Some(components) = raw.get("components").and_then(Value::as_object) {
        if let Some(schemas) = components.get("schemas").and_then(Value::as_object) {
            for (name, s) in schemas {
                if let Some(found) =
                    schema(s, format!("#/components/schemas/{}", pointer_token(name)))
                {
                    return Some(found);
                }
            }
        }
        type Check = fn(&Value) -> Result<(), String>;
        let sections: [(&str, Check); 4] = [
            ("parameters", try_as::<ReferenceOr<Parameter>>),
            ("requestBodies", try_as::<ReferenceOr<RequestBody>>),
            ("responses", try_as::<ReferenceOr<Response>>),
            ("examples", try_as::<ReferenceOr<Example>>),
        ];
        for (section, check) in sections {
            if let Some(items) = components.get(section).and_then(Value::as_object) {
                for (name, item) in items {
                    if let Err(e) = check(item) {
                        return Some((
                            format!("#/components/{section}/{}", pointer_token(name)),
                            e,
                        ));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<(Document, Vec<Warning>), Error> {
        parse(text.as_bytes(), "spec/t.yaml", "t.yaml", Options::default())
    }

    const MINIMAL: &str = "openapi: 3.0.0\ninfo:\n  title: t\n  version: 2024-01-01\nservers:\n  - url: https://x/openai\npaths: {}\n";

    #[test]
    fn strips_servers_and_reads_version() {
        let (doc, warnings) = parse_str(MINIMAL).unwrap();
        assert_eq!(doc.version, "2024-01-01");
        assert!(doc.raw.get("servers").is_none());
        assert!(doc.api.servers.is_empty());
        assert!(warnings.is_empty());
    }

    #[test]
    fn crlf_bom_and_numeric_version_text() {
        let text = format!(
            "\u{feff}{}",
            MINIMAL.replace("2024-01-01", "1.10").replace('\n', "\r\n")
        );
        let (doc, _) = parse_str(&text).unwrap();
        assert_eq!(doc.version, "1.10");
    }

    #[test]
    fn bad_yaml_names_line() {
        let err = parse_str("openapi: 3.0.0\ninfo:\n  title: t\n  version: 1\npaths:\n  /a: [\n")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("spec/t.yaml:7:1: invalid YAML"), "{text}");
    }

    #[test]
    fn bad_json_names_line() {
        let err = parse(
            "{\n  \"openapi\": \"3.0.0\",\n  \"info\": {\n}".as_bytes(),
            "spec/t.json",
            "t.json",
            Options::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec/t.json:4:1: invalid JSON: EOF while parsing an object"
        );
    }

    #[test]
    fn dangling_ref_names_pointer() {
        let text = format!(
            "{MINIMAL}components:\n  schemas:\n    a:\n      type: object\n      properties:\n        b:\n          $ref: '#/components/schemas/missing'\n"
        )
        .replace("paths: {}\n", "");
        let text = format!("{text}paths: {{}}\n");
        // Published documents have some: a warning, and the value there goes unchecked.
        let (_, warnings) = parse_str(&text).expect("loads");
        assert_eq!(
            warnings[0].to_string(),
            "spec/t.yaml:12:9 at #/components/schemas/a/properties/b: $ref \"#/components/schemas/missing\" does not resolve: nothing in this file has that JSON pointer; the value there is not checked"
        );
        assert_eq!(warnings[0].kind, WarningKind::Untyped);
        // Strict: the build fails with the same words.
        let strict = Options { strict: true };
        let err = parse(text.as_bytes(), "spec/t.yaml", "t.yaml", strict).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spec/t.yaml:12:9 at #/components/schemas/a/properties/b: $ref"),
            "{err}"
        );
    }

    #[test]
    fn structural_error_is_narrowed_to_the_operation_part() {
        let text = MINIMAL.replace(
            "paths: {}",
            "paths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n          content: [1, 2]\n",
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "spec/t.yaml:11:9 at #/paths/~1a/get/responses/200: not a valid OpenAPI"
            ),
            "{err}"
        );
    }

    #[test]
    fn duplicate_operation_id() {
        let text = MINIMAL.replace(
            "paths: {}",
            "paths:\n  /a:\n    get:\n      operationId: x\n      responses: {}\n  /b:\n    get:\n      operationId: x\n      responses: {}\n",
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("#/paths/~1b/get/operationId: duplicate operationId `x` (first used at #/paths/~1a/get/operationId)"), "{err}");
    }

    #[test]
    fn duplicate_keys_and_merge_keys() {
        let text = format!(
            "{MINIMAL}components:\n  schemas:\n    base: &base\n      type: object\n      description: from base\n    a:\n      <<: *base\n      description: own\n    a:\n      <<: *base\n      description: changed\n"
        );
        let (doc, warnings) = parse_str(&text).unwrap();
        let a = doc.resolve("#/components/schemas/a").unwrap();
        assert_eq!(a["type"], "object");
        assert_eq!(a["description"], "changed");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].to_string().contains("#/components/schemas/a"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn reads_3_0_to_3_2_and_refuses_swagger_and_later() {
        let err =
            parse_str("swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("Swagger 2.0 documents are not supported")
        );
        for version in ["3.1.0", "3.1.1", "3.2.0"] {
            assert!(
                parse_str(&MINIMAL.replace("3.0.0", version)).is_ok(),
                "{version}"
            );
        }
        let err = parse_str(&MINIMAL.replace("3.0.0", "4.0.0")).unwrap_err();
        assert!(err.to_string().contains("OpenAPI 4.0.0 is not supported"));
    }

    #[test]
    fn a_servers_path_after_openai_is_the_mount() {
        for (url, mount) in [
            ("{endpoint}/openai/v1", "/v1"),
            ("https://{endpoint}/openai/v1/", "/v1"),
            ("https://x.openai.azure.com/openai", ""),
            ("https://gateway.contoso.com/aoai", ""),
            ("/openai/v1", "/v1"),
        ] {
            let text = MINIMAL.replace("https://x/openai", &format!("\"{url}\""));
            let (doc, _) = parse_str(&text).expect("loads");
            assert_eq!(doc.mount, mount, "{url}");
        }
    }

    #[test]
    fn a_json_spec_with_a_comment_line_says_so() {
        let err = parse(
            b"// from our APIM repository\n{\"openapi\": \"3.0.0\"}",
            "spec/a.json",
            "a.json",
            Options::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("spec/a.json:1:1: a `//` comment before the JSON"),
            "{err}"
        );
    }
}
