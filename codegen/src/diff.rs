//! What changed between two api-versions, computed from their intermediate models.
//!
//! Operations are matched by method and path template (operationIds are renamed between
//! versions more often than paths). For an operation in both, its parameters are compared by
//! name and place, and its JSON request and first success response are compared field by field:
//! each model is flattened into paths such as `messages[].content` or
//! `tools[] (type=function).function.name`, each with a type description that does not depend
//! on generated names, so a schema renamed between versions is not reported as changed.
//!
//! Paths are compared below each version's mount. Between an API whose paths name the
//! deployment (`/deployments/{deployment-id}/chat/completions`) and one whose bodies do (the v1
//! API's `/chat/completions`), the deployment segment and its parameter are left out of the
//! comparison and the move is reported once ([`VersionDiff::deployment_moved`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ir::{
    Api, Content, ContentKind, DEPLOYMENT_PARAMETER, DEPLOYMENT_SEGMENT, Method, Operation,
    TypeKind, TypeRef,
};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OperationKey {
    pub method: Method,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationRef {
    pub operation_id: String,
    pub method: Method,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Parameter,
    Request,
    Response,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Parameter => "parameter",
            Place::Request => "request field",
            Place::Response => "response field",
        }
    }
}

/// A field or parameter's type and whether it is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    pub ty: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub place: Place,
    pub name: String,
    /// `None` when added.
    pub before: Option<Signature>,
    /// `None` when removed.
    pub after: Option<Signature>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationChanges {
    pub from: OperationRef,
    pub to: OperationRef,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDiff {
    pub from: String,
    pub to: String,
    pub only_in_from: Vec<OperationRef>,
    pub only_in_to: Vec<OperationRef>,
    /// Operations in both versions that differ.
    pub changed: Vec<OperationChanges>,
    /// How many operations are in both versions and identical.
    pub unchanged: usize,
    /// One version names the deployment in its paths, the other in its request bodies.
    pub deployment_moved: bool,
    /// The overlays applied to either version's spec: what is compared is each spec as the
    /// gateway enforces it, so a difference may come from one.
    pub overlays: Vec<OverlayNote>,
}

/// An overlay applied to one of the two versions compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverlayNote {
    pub version: String,
    pub file: String,
    pub title: String,
    pub actions: usize,
}

fn deployments_in_paths(api: &Api) -> bool {
    api.operations
        .iter()
        .any(|op| op.path.contains(DEPLOYMENT_SEGMENT))
}

/// The operation as the changes page names it: its path with the version's mount.
fn reference(api: &Api, op: &Operation) -> OperationRef {
    OperationRef {
        operation_id: op.operation_id.clone(),
        method: op.method,
        path: format!("{}{}", api.mount, op.path),
    }
}

pub fn diff(from: &Api, to: &Api) -> VersionDiff {
    let moved = deployments_in_paths(from) != deployments_in_paths(to);
    let key = |op: &Operation| OperationKey {
        method: op.method,
        path: if moved {
            op.path.replacen(DEPLOYMENT_SEGMENT, "", 1)
        } else {
            op.path.clone()
        },
    };
    let before: BTreeMap<OperationKey, &Operation> =
        from.operations.iter().map(|op| (key(op), op)).collect();
    let after: BTreeMap<OperationKey, &Operation> =
        to.operations.iter().map(|op| (key(op), op)).collect();
    let mut result = VersionDiff {
        from: from.version.clone(),
        to: to.version.clone(),
        only_in_from: Vec::new(),
        only_in_to: Vec::new(),
        changed: Vec::new(),
        unchanged: 0,
        deployment_moved: moved,
        overlays: [from, to]
            .iter()
            .flat_map(|api| {
                api.overlays.iter().map(|o| OverlayNote {
                    version: api.version.clone(),
                    file: o.file.clone(),
                    title: o.title.clone(),
                    actions: o.actions.len(),
                })
            })
            .collect(),
    };
    for (k, op) in &before {
        match after.get(k) {
            None => result.only_in_from.push(reference(from, op)),
            Some(new) => {
                let changes = operation_changes(from, op, to, new, moved);
                if changes.is_empty() {
                    result.unchanged += 1;
                } else {
                    result.changed.push(OperationChanges {
                        from: reference(from, op),
                        to: reference(to, new),
                        changes,
                    });
                }
            }
        }
    }
    result.only_in_to = after
        .iter()
        .filter(|(k, _)| !before.contains_key(*k))
        .map(|(_, op)| reference(to, op))
        .collect();
    result
}

fn operation_changes(
    from: &Api,
    old: &Operation,
    to: &Api,
    new: &Operation,
    deployment_moved: bool,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let params = |api: &Api, op: &Operation| -> BTreeMap<String, Signature> {
        op.parameters
            .iter()
            .filter(|p| !(deployment_moved && p.name == DEPLOYMENT_PARAMETER))
            .map(|p| {
                (
                    format!("{} ({})", p.name, p.location.as_str()),
                    Signature {
                        ty: describe(api, &p.ty, 0),
                        required: p.required,
                    },
                )
            })
            .collect()
    };
    compare(
        Place::Parameter,
        &params(from, old),
        &params(to, new),
        &mut changes,
    );
    let request = |api: &Api, op: &Operation| {
        fields(
            api,
            op.request
                .as_ref()
                .map(|r| r.content.as_slice())
                .unwrap_or(&[]),
        )
    };
    compare(
        Place::Request,
        &request(from, old),
        &request(to, new),
        &mut changes,
    );
    let response = |api: &Api, op: &Operation| {
        let success = op.responses.iter().find(|r| r.status.starts_with('2'));
        fields(api, success.map(|r| r.content.as_slice()).unwrap_or(&[]))
    };
    compare(
        Place::Response,
        &response(from, old),
        &response(to, new),
        &mut changes,
    );
    changes
}

fn compare(
    place: Place,
    before: &BTreeMap<String, Signature>,
    after: &BTreeMap<String, Signature>,
    out: &mut Vec<Change>,
) {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        let (b, a) = (before.get(name), after.get(name));
        if b != a {
            out.push(Change {
                place,
                name: name.clone(),
                before: b.cloned(),
                after: a.cloned(),
            });
        }
    }
}

/// The fields of the JSON (or else form) model among `content`, flattened.
fn fields(api: &Api, content: &[Content]) -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    let model = content
        .iter()
        .find(|c| c.kind == ContentKind::Json)
        .or_else(|| content.iter().find(|c| c.kind == ContentKind::Multipart))
        .and_then(|c| c.ty.as_ref());
    if let Some(ty) = model {
        flatten(api, ty, "", &mut Vec::new(), &mut out);
    }
    out
}

const MAX_DEPTH: usize = 6;

fn flatten(
    api: &Api,
    ty: &TypeRef,
    prefix: &str,
    seen: &mut Vec<String>,
    out: &mut BTreeMap<String, Signature>,
) {
    if seen.len() > MAX_DEPTH {
        return;
    }
    match ty {
        TypeRef::Array(item) | TypeRef::Nullable(item) => {
            let prefix = if matches!(ty, TypeRef::Array(_)) {
                format!("{prefix}[]")
            } else {
                prefix.to_string()
            };
            flatten(api, item, &prefix, seen, out);
        }
        TypeRef::Map(value) => flatten(api, value, &format!("{prefix}{{*}}"), seen, out),
        TypeRef::Named(name) => {
            if seen.contains(name) {
                return;
            }
            let Some(def) = api.type_def(name) else {
                return;
            };
            seen.push(name.clone());
            match &def.kind {
                TypeKind::Struct(s) => {
                    for f in &s.fields {
                        let path = if prefix.is_empty() {
                            f.name.clone()
                        } else {
                            format!("{prefix}.{}", f.name)
                        };
                        let ty = describe(api, &f.ty, 0) + if f.nullable { " or null" } else { "" };
                        out.insert(
                            path.clone(),
                            Signature {
                                ty,
                                required: f.required,
                            },
                        );
                        flatten(api, &f.ty, &path, seen, out);
                    }
                }
                TypeKind::Union(u) => {
                    for v in &u.variants {
                        let prefix = match (&u.tag, &v.tag_value) {
                            (Some(tag), Some(value)) => format!("{prefix} ({tag}={value})"),
                            _ => prefix.to_string(),
                        };
                        flatten(api, &v.ty, &prefix, seen, out);
                    }
                }
                TypeKind::Alias { target } => flatten(api, target, prefix, seen, out),
                TypeKind::Intersection { parts, .. } => {
                    for p in parts {
                        flatten(api, p, prefix, seen, out);
                    }
                }
                TypeKind::Enum(_) | TypeKind::Untyped { .. } => {}
            }
            seen.pop();
        }
        _ => {}
    }
}

/// A type as a reader would name it, independent of generated type names.
pub fn describe(api: &Api, ty: &TypeRef, depth: usize) -> String {
    if depth > 4 {
        return "…".into();
    }
    match ty {
        TypeRef::String => "string".into(),
        TypeRef::Integer(_) => "integer".into(),
        TypeRef::Number => "number".into(),
        TypeRef::Boolean => "boolean".into(),
        TypeRef::Binary => "binary".into(),
        TypeRef::Any => "any".into(),
        TypeRef::Object => "object".into(),
        TypeRef::Array(t) => format!("array of {}", describe(api, t, depth + 1)),
        TypeRef::Map(t) => format!("map of {}", describe(api, t, depth + 1)),
        TypeRef::Nullable(t) => format!("{} or null", describe(api, t, depth + 1)),
        TypeRef::Named(name) => match api.type_def(name).map(|d| &d.kind) {
            Some(TypeKind::Struct(_)) | Some(TypeKind::Intersection { .. }) => "object".into(),
            Some(TypeKind::Enum(e)) => {
                let values: Vec<&str> = e.values.iter().map(|v| v.value.as_str()).collect();
                format!(
                    "{}enum ({})",
                    if e.open { "open " } else { "" },
                    values.join(", ")
                )
            }
            Some(TypeKind::Union(u)) => {
                let variants: BTreeSet<String> = u
                    .variants
                    .iter()
                    .map(|v| describe(api, &v.ty, depth + 1))
                    .collect();
                format!(
                    "one of ({})",
                    variants.into_iter().collect::<Vec<_>>().join(" | ")
                )
            }
            Some(TypeKind::Alias { target }) => describe(api, target, depth + 1),
            Some(TypeKind::Untyped { .. }) | None => "any".into(),
        },
    }
}
