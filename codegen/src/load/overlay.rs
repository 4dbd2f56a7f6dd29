//! OpenAPI overlays (Overlay Specification 1.0.0): corrections to a vendor's spec, kept beside it.
//!
//! A published spec can be stricter than the service (the v1 spec requires `expires_after` on a
//! file upload, which Azure's own reference calls optional). Editing the vendor file would break
//! the promise of dropping published files in unchanged, and be lost at the next update; an
//! overlay says the change once, in a file of its own (`*.overlay.yaml` or `.json` in `spec/`),
//! and is applied to the document it `extends` as that document is loaded, before anything else
//! reads it.
//!
//! An action's `target` is an RFC 9535 JSONPath. `update` merges an object into each object it
//! selects (recursively: members of both that are objects merge, others are replaced) or appends
//! to each list it selects; `remove: true` takes each selected node out of its object or list.
//! An action whose target selects nothing fails the build: after a spec update, a stale overlay
//! must say so rather than quietly stop applying. So does an overlay whose `extends` names no
//! spec file, and one that would change the document's `openapi` or `info.version` (the
//! api-version comes from the file).
//!
//! What each action changed is kept ([`ir::Overlay`]), so that `aoai-gateway routes`, the docs and
//! the served document can say what was overlaid.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use super::kind_of;
use super::locate::locate;
use super::tree::parse_tree;
use crate::error::{Error, Location};
use crate::ir;

/// Whether a file in the spec folder is an overlay, by its name.
pub fn is_overlay(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_ascii_lowercase)
        .is_some_and(|n| {
            [".overlay.yaml", ".overlay.yml", ".overlay.json"]
                .iter()
                .any(|s| n.ends_with(s))
        })
}

/// An overlay file, read and checked, not yet applied.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The file as named in messages, e.g. `spec/v1/files.overlay.yaml`.
    pub file: String,
    pub title: String,
    pub version: String,
    /// `extends` as written.
    pub extends: String,
    pub actions: Vec<Action>,
    text: String,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub target: String,
    pub description: Option<String>,
    pub change: Change,
    path: JsonPath,
}

#[derive(Debug, Clone)]
pub enum Change {
    Update(Value),
    Remove,
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::Update(_) => "update",
            Change::Remove => "remove",
        }
    }
}

impl Overlay {
    /// Reads an overlay file. `file` is its name in messages.
    pub fn read(path: &Path, file: &str) -> Result<Overlay, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::spec(file, "", "an overlay must be UTF-8 text"))?;
        Overlay::parse(text, file)
    }

    pub fn parse(text: String, file: &str) -> Result<Overlay, Error> {
        let text = text
            .strip_prefix('\u{feff}')
            .map(str::to_string)
            .unwrap_or(text);
        let (tree, _) = parse_tree(&text, file)?;
        let at = |pointer: &str, message: String| Error::Spec {
            location: Location {
                file: file.into(),
                pointer: pointer.into(),
                line: locate(&text, pointer),
            },
            message,
        };
        let Some(root) = tree.as_object() else {
            return Err(at(
                "#",
                "an overlay is a mapping of `overlay`, `info`, `extends` and `actions`".into(),
            ));
        };
        let version = text_of(root, "overlay").unwrap_or_default();
        if !(version == "1.0" || version.starts_with("1.0.")) {
            return Err(at(
                "#/overlay",
                format!(
                    "`overlay: {version}` is not supported: this gateway applies OpenAPI Overlay 1.0 documents (`overlay: 1.0.0`)"
                ),
            ));
        }
        let info = root.get("info").and_then(Value::as_object);
        let (Some(title), Some(info_version)) = (
            info.and_then(|i| text_of(i, "title")),
            info.and_then(|i| text_of(i, "version")),
        ) else {
            return Err(at(
                "#/info",
                "`info` must give a `title` and a `version`".into(),
            ));
        };
        let Some(extends) = text_of(root, "extends") else {
            return Err(at(
                "#",
                "`extends` must name the spec file this overlay applies to (a path relative to the overlay, or the file's URL)".into(),
            ));
        };
        let Some(listed) = root
            .get("actions")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        else {
            return Err(at(
                "#/actions",
                "`actions` must be a list of at least one action".into(),
            ));
        };
        let mut actions = Vec::with_capacity(listed.len());
        for (i, action) in listed.iter().enumerate() {
            let pointer = format!("#/actions/{i}");
            let name = format!("action {}", i + 1);
            let Some(action) = action.as_object() else {
                return Err(at(&pointer, format!("{name} is not a mapping")));
            };
            let Some(target) = text_of(action, "target") else {
                return Err(at(
                    &pointer,
                    format!("{name} has no `target` (a JSONPath such as `$.paths['/files'].post`)"),
                ));
            };
            let path = JsonPath::parse(&target).map_err(|e| {
                at(
                    &format!("{pointer}/target"),
                    format!("{name}: `{target}` is not an RFC 9535 JSONPath: {e}"),
                )
            })?;
            let remove = action.get("remove").and_then(Value::as_bool) == Some(true);
            let change = match (action.get("update"), remove) {
                (_, true) => Change::Remove,
                (Some(update), false) => Change::Update(update.clone()),
                (None, false) => {
                    return Err(at(
                        &pointer,
                        format!(
                            "{name} has neither `update` nor `remove: true`, so it does nothing"
                        ),
                    ));
                }
            };
            actions.push(Action {
                target,
                description: text_of(action, "description"),
                change,
                path,
            });
        }
        Ok(Overlay {
            file: file.to_string(),
            title,
            version: info_version,
            extends,
            actions,
            text,
        })
    }

    /// The spec file this overlay applies to, among `specs`: `extends` as a path relative to the
    /// overlay's folder or to the spec folder, or a URL whose last segment names one spec file.
    pub fn target<'s>(
        &self,
        overlay_path: &Path,
        spec_dir: &Path,
        specs: &'s [PathBuf],
    ) -> Result<&'s PathBuf, Error> {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        let extends = self.extends.as_str();
        let is_url = extends.contains("://");
        if !is_url {
            let beside = overlay_path.parent().unwrap_or(spec_dir).join(extends);
            let from_root = spec_dir.join(extends);
            for candidate in [beside, from_root] {
                if let Some(found) = specs.iter().find(|s| same(s, &candidate)) {
                    return Ok(found);
                }
            }
        } else {
            let last = extends
                .split(['?', '#'])
                .next()
                .and_then(|u| u.rsplit('/').next())
                .unwrap_or("");
            let named: Vec<&PathBuf> = specs
                .iter()
                .filter(|s| s.file_name().and_then(|n| n.to_str()) == Some(last))
                .collect();
            if let [one] = named.as_slice() {
                return Ok(one);
            }
            if named.len() > 1 {
                return Err(self.error(
                    "#/extends",
                    format!("`extends: {extends}` ends in `{last}`, which several spec files are named; give the path of one, relative to the overlay"),
                ));
            }
        }
        let known: Vec<String> = specs
            .iter()
            .map(|s| s.strip_prefix(spec_dir).unwrap_or(s).display().to_string())
            .collect();
        Err(self.error(
            "#/extends",
            format!(
                "`extends: {extends}` names no spec file in {}; the spec files are: {}",
                spec_dir.display(),
                known.join(", ")
            ),
        ))
    }

    fn error(&self, pointer: &str, message: String) -> Error {
        Error::Spec {
            location: Location {
                file: self.file.clone().into(),
                pointer: pointer.into(),
                line: locate(&self.text, pointer),
            },
            message,
        }
    }

    /// Applies every action, in order, to `doc` (the spec file named `spec` in messages).
    pub fn apply(&self, doc: &mut Value, spec: &str) -> Result<ir::Overlay, Error> {
        let mut applied = Vec::with_capacity(self.actions.len());
        for (i, action) in self.actions.iter().enumerate() {
            let at = format!("#/actions/{i}");
            let name = match &action.description {
                Some(d) => format!("action {} (\"{d}\")", i + 1),
                None => format!("action {}", i + 1),
            };
            let pointers: Vec<String> = action
                .path
                .query_located(doc)
                .dedup()
                .locations()
                .map(|l| l.to_json_pointer())
                .collect();
            if pointers.is_empty() {
                return Err(self.error(
                    &format!("{at}/target"),
                    format!(
                        "{name}: `{}` matches nothing in {spec}; the spec has changed, or the target is wrong: correct the action or remove it",
                        action.target
                    ),
                ));
            }
            if let Some(head) = pointers.iter().find(|p| changes_version(p, &action.change)) {
                return Err(self.error(
                    &format!("{at}/target"),
                    format!(
                        "{name}: changes `{}`, but the api-version and OpenAPI version come from the spec file itself",
                        display(head)
                    ),
                ));
            }
            match &action.change {
                Change::Update(update) => {
                    for pointer in &pointers {
                        let node = doc.pointer_mut(pointer).ok_or_else(|| {
                            self.error(
                                &at,
                                format!("{name}: {} vanished while applying", display(pointer)),
                            )
                        })?;
                        match (node, update) {
                            (Value::Object(into), Value::Object(from)) => merge(into, from),
                            (Value::Array(items), value) => items.push(value.clone()),
                            (Value::Object(_), other) => {
                                return Err(self.error(
                                    &format!("{at}/update"),
                                    format!("{name}: selects an object at {}, so `update` must be an object to merge, not {}", display(pointer), kind_of(other)),
                                ));
                            }
                            (node, _) => {
                                return Err(self.error(
                                    &format!("{at}/target"),
                                    format!("{name}: selects {} at {}; `update` merges into an object or appends to a list: target the object that holds it", kind_of(node), display(pointer)),
                                ));
                            }
                        }
                    }
                }
                Change::Remove => {
                    // Later items of a list first, so that earlier indices stay right.
                    let mut ordered = pointers.clone();
                    ordered.sort_by(|a, b| compare_pointers(b, a));
                    for pointer in &ordered {
                        remove(doc, pointer).ok_or_else(|| {
                            self.error(
                                &format!("{at}/target"),
                                format!("{name}: cannot remove {}", display(pointer)),
                            )
                        })?;
                    }
                }
            }
            applied.push(ir::OverlayAction {
                target: action.target.clone(),
                description: action.description.clone(),
                change: action.change.name().to_string(),
                changed: pointers.iter().map(|p| display(p)).collect(),
            });
        }
        Ok(ir::Overlay {
            file: self.file.clone(),
            title: self.title.clone(),
            version: self.version.clone(),
            actions: applied,
        })
    }
}

/// Whether a change at `pointer` would touch `openapi` or `info.version`.
fn changes_version(pointer: &str, change: &Change) -> bool {
    let update_has =
        |key: &str| matches!(change, Change::Update(Value::Object(m)) if m.contains_key(key));
    match pointer {
        "/openapi" | "/info/version" => true,
        "/info" => matches!(change, Change::Remove) || update_has("version"),
        "" => matches!(change, Change::Remove) || update_has("openapi") || update_has("info"),
        _ => false,
    }
}

fn text_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        // YAML reads `overlay: 1.0` or `version: 1` as numbers.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `/a/b` as messages and the IR write pointers: `#/a/b`.
fn display(pointer: &str) -> String {
    format!("#{pointer}")
}

/// Merges `from` into `into`: members that are objects on both sides merge, others replace.
fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(more)) => merge(inner, more),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Pointers in document order, list indices by number.
fn compare_pointers(a: &str, b: &str) -> std::cmp::Ordering {
    let tokens = |p: &str| -> Vec<String> { p.split('/').map(str::to_string).collect() };
    let (a, b) = (tokens(a), tokens(b));
    for (x, y) in a.iter().zip(&b) {
        let order = match (x.parse::<usize>(), y.parse::<usize>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn remove(doc: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent)? {
        Value::Object(map) => map.shift_remove(&key),
        Value::Array(items) => {
            let i = key.parse::<usize>().ok().filter(|i| *i < items.len())?;
            Some(items.remove(i))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn overlay(actions: &str) -> Overlay {
        let text = format!(
            "overlay: 1.0.0\ninfo:\n  title: Fixes\n  version: 1.0.0\nextends: ./spec.yaml\nactions:\n{actions}"
        );
        Overlay::parse(text, "spec/fix.overlay.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn doc() -> Value {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "t", "version": "v1"},
            "paths": {"/files": {"post": {"summary": "Upload", "tags": ["Files"]}}},
            "components": {"schemas": {"Upload": {
                "type": "object",
                "required": ["file", "expires_after", "purpose"],
                "properties": {"file": {"type": "string"}, "purpose": {"type": "string", "enum": ["a"]}}
            }}}
        })
    }

    #[test]
    fn update_merges_objects_and_appends_to_lists() {
        let mut d = doc();
        let o = overlay(
            "  - target: $.paths['/files'].post\n    description: Say more\n    update:\n      description: Uploads a file.\n      tags: [Storage]\n  - target: $.components.schemas.Upload.properties.purpose.enum\n    update: b\n",
        );
        let applied = o.apply(&mut d, "spec/spec.yaml").expect("applies");
        let post = &d["paths"]["/files"]["post"];
        assert_eq!(post["description"], "Uploads a file.");
        assert_eq!(post["summary"], "Upload");
        // A list given in `update` replaces the one there (it is not an object to merge).
        assert_eq!(post["tags"], json!(["Storage"]));
        assert_eq!(
            d["components"]["schemas"]["Upload"]["properties"]["purpose"]["enum"],
            json!(["a", "b"])
        );
        assert_eq!(applied.actions[0].changed, ["#/paths/~1files/post"]);
        assert_eq!(applied.actions[0].change, "update");
        assert_eq!(applied.actions[1].description, None);
    }

    #[test]
    fn remove_takes_nodes_out_of_objects_and_lists() {
        let mut d = doc();
        let o = overlay(
            "  - target: $.components.schemas.Upload.required[?@ == 'expires_after' || @ == 'purpose']\n    remove: true\n  - target: $.paths.*.post.tags\n    remove: true\n",
        );
        let applied = o.apply(&mut d, "spec/spec.yaml").expect("applies");
        assert_eq!(
            d["components"]["schemas"]["Upload"]["required"],
            json!(["file"])
        );
        assert!(d["paths"]["/files"]["post"].get("tags").is_none());
        assert_eq!(
            applied.actions[0].changed,
            [
                "#/components/schemas/Upload/required/1",
                "#/components/schemas/Upload/required/2"
            ]
        );
    }

    #[test]
    fn a_target_that_matches_nothing_fails_naming_the_action() {
        let o = overlay(
            "  - target: $.paths['/files'].post\n    update: {summary: x}\n  - target: $.components.schemas.Gone\n    description: Relax the upload\n    remove: true\n",
        );
        let err = o.apply(&mut doc(), "spec/spec.yaml").expect_err("stale");
        assert_eq!(
            err.to_string(),
            "spec/fix.overlay.yaml:9:5 at #/actions/1/target: action 2 (\"Relax the upload\"): `$.components.schemas.Gone` matches nothing in spec/spec.yaml; the spec has changed, or the target is wrong: correct the action or remove it"
        );
    }

    #[test]
    fn bad_overlays_are_refused_with_their_place() {
        let bad = |text: &str| {
            Overlay::parse(text.to_string(), "o.overlay.yaml")
                .expect_err("refused")
                .to_string()
        };
        assert!(bad("overlay: 2.0.0\ninfo: {title: t, version: '1'}\nextends: a.yaml\nactions: [{target: $, remove: true}]\n")
            .contains("`overlay: 2.0.0` is not supported"));
        assert!(bad("overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions: [{target: $, update: {}}]\n")
            .contains("`extends` must name the spec file"));
        let not_a_path = bad(
            "overlay: 1.0.0\ninfo: {title: t, version: '1'}\nextends: a.yaml\nactions:\n  - target: paths\n    update: {}\n",
        );
        assert!(
            not_a_path.starts_with(
                "o.overlay.yaml:5:5 at #/actions/0/target: action 1: `paths` is not an RFC 9535 JSONPath"
            ),
            "{not_a_path}"
        );
        assert!(bad("overlay: 1.0.0\ninfo: {title: t, version: '1'}\nextends: a.yaml\nactions:\n  - target: $.paths\n").contains("action 1 has neither `update` nor `remove: true`"));
        let o = overlay("  - target: $.info\n    update: {version: v2}\n");
        let err = o.apply(&mut doc(), "spec/spec.yaml").expect_err("version");
        assert!(
            err.to_string()
                .contains("changes `#/info`, but the api-version"),
            "{err}"
        );
        let o = overlay("  - target: $.info.title\n    update: x\n");
        let err = o.apply(&mut doc(), "spec/spec.yaml").expect_err("a string");
        assert!(err.to_string().contains("selects a string at #/info/title; `update` merges into an object or appends to a list"), "{err}");
    }
}
