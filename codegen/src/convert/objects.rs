//! Which operations create, name, list and delete stored objects, read from the spec by rule
//! rather than from a list of paths, so that a new api-version's objects are followed without
//! code:
//!
//! - **Kinds.** A path parameter named `<kind>_id` (`{file_id}`, `{vector_store_id}`) names an
//!   object of that kind. Parameters named otherwise (`{deployment-id}`, `{model}`) do not.
//! - **Creates.** A `POST` whose success answer has the same model as the read of one object of a
//!   kind (a `GET` whose path ends with that kind's parameter) creates an object of that kind,
//!   unless its own path already names one of that kind (an update, a cancel). So `POST
//!   /responses` creates a response and `POST /threads/runs` a run, and `POST
//!   /assistants/{assistant_id}` creates nothing.
//! - **Names.** Its path's kind parameters, outermost first; and its JSON request's string (or
//!   list of strings) fields, at any depth, whose name is the kind's (`file_id`, `file_ids`) or
//!   ends with it (`previous_response_id`, `input_file_id`, `training_file`).
//! - **Top-level kinds** are those one path parameter alone addresses (`/files/{file_id}`);
//!   others live inside a parent (`/threads/{thread_id}/runs/{run_id}`) and go where it goes.
//!   The gateway's directory keeps top-level objects only.
//! - **Records.** What a creating answer tells the directory, for a create outside any object
//!   (its path names none): its `id` when it creates a top-level object, and its top-level
//!   `<kind>_id` fields of top-level kinds its request does not name (a thread-and-run's answer
//!   is a run that names the thread made with it).
//! - **Lists.** A `GET` of a top-level collection (`/files`) lists that kind.
//! - **Deletes.** A `DELETE` of one top-level object (`/files/{file_id}`) deletes it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::ir::{self, ContentKind, Method, Operation, PathStep, TypeDef, TypeKind, TypeRef};

const ID_SUFFIX: &str = "_id";
/// How deep in a request body fields are looked for; request models nest a handful of levels.
const DEPTH: usize = 10;

/// The kind a path parameter names, if it names one.
fn kind_of_param(name: &str) -> Option<&str> {
    name.strip_suffix(ID_SUFFIX)
        .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

/// The path parameters of a template, in order.
fn params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The model of an operation's first success answer in JSON.
fn success_model(op: &Operation) -> Option<&TypeRef> {
    op.responses
        .iter()
        .filter(|r| r.status.starts_with('2'))
        .flat_map(|r| &r.content)
        .find(|c| c.kind == ContentKind::Json)
        .and_then(|c| c.ty.as_ref())
}

/// Marks what each operation does with stored objects.
pub(super) fn mark(operations: &mut [Operation], types: &BTreeMap<String, TypeDef>) {
    let kinds: BTreeSet<String> = operations
        .iter()
        .flat_map(|op| params(&op.path))
        .filter_map(kind_of_param)
        .map(str::to_string)
        .collect();
    // Each kind's reads: the models a GET of one object answers with (a file and a vector
    // store's file are both `{file_id}`).
    let mut reads: BTreeMap<String, Vec<TypeRef>> = BTreeMap::new();
    for op in operations.iter().filter(|op| op.method == Method::Get) {
        if let (Some(kind), Some(model)) = (last_kind(&op.path), success_model(op)) {
            reads
                .entry(kind.to_string())
                .or_default()
                .push(model.clone());
        }
    }
    // Top-level collections: `/files` for `/files/{file_id}`, where that is the path's only
    // parameter.
    let collections: BTreeMap<String, String> = operations
        .iter()
        .filter(|op| params(&op.path).count() == 1)
        .filter_map(|op| {
            let kind = last_kind(&op.path)?;
            let (collection, _) = op.path.rsplit_once('/')?;
            Some((collection.to_string(), kind.to_string()))
        })
        .collect();
    let top_level: BTreeSet<&str> = collections.values().map(String::as_str).collect();
    for op in operations.iter_mut() {
        let path: Vec<(String, String)> = params(&op.path)
            .filter_map(|p| kind_of_param(p).map(|k| (p.to_string(), k.to_string())))
            .collect();
        let named: HashSet<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
        let created = (op.method == Method::Post)
            .then(|| success_model(op))
            .flatten()
            .and_then(|model| {
                reads
                    .iter()
                    .find(|(kind, read)| read.contains(model) && !named.contains(kind.as_str()))
                    .map(|(kind, _)| (kind.clone(), model))
            });
        let mut fields: Vec<(Vec<PathStep>, String)> = Vec::new();
        if let Some(body) = &op.request
            && let Some(ty) = body
                .content
                .iter()
                .find(|c| c.kind == ContentKind::Json)
                .and_then(|c| c.ty.as_ref())
        {
            let mut walk = Walk {
                types,
                kinds: &kinds,
                found: BTreeSet::new(),
                visiting: Vec::new(),
            };
            walk.ty(ty, &mut Vec::new(), 0);
            fields = walk.found.into_iter().collect();
        }
        let mut records = Vec::new();
        // Only a create outside any object makes top-level objects: a nested create (a vector
        // store's file, a thread's run) makes one that lives with its parent.
        if let Some((kind, model)) = &created
            && named.is_empty()
        {
            if top_level.contains(kind.as_str()) {
                records.push(("id".to_string(), kind.clone()));
            }
            // The objects its answer names that its request did not: made along with it (a
            // thread-and-run's new thread).
            let referenced: HashSet<&str> = fields.iter().map(|(_, k)| k.as_str()).collect();
            records.extend(
                top_level_refs(model, types, &top_level)
                    .into_iter()
                    .filter(|(_, k)| !referenced.contains(k.as_str())),
            );
        }
        let creates = created.map(|(kind, _)| kind);
        let lists = (op.method == Method::Get)
            .then(|| collections.get(&op.path).cloned())
            .flatten();
        let deletes = op.method == Method::Delete
            && path.len() == 1
            && last_kind(&op.path).is_some_and(|k| top_level.contains(k));
        op.objects = ir::Objects {
            creates,
            records,
            path,
            fields,
            lists,
            deletes,
        };
    }
}

/// The kind the last segment of a path names, if it is a kind parameter.
fn last_kind(path: &str) -> Option<&str> {
    path.rsplit('/')
        .next()?
        .strip_prefix('{')?
        .strip_suffix('}')
        .and_then(kind_of_param)
}

/// The top-level string fields of a model named `<kind>_id` for a top-level kind (a run's
/// `thread_id`): (field, kind).
fn top_level_refs(
    model: &TypeRef,
    types: &BTreeMap<String, TypeDef>,
    top_level: &BTreeSet<&str>,
) -> Vec<(String, String)> {
    let Some(TypeKind::Struct(st)) = model.named().and_then(|n| types.get(n)).map(|d| &d.kind)
    else {
        return Vec::new();
    };
    st.fields
        .iter()
        .filter(|f| f.name != "id")
        .filter_map(|f| {
            let kind = kind_of_param(&f.name)?;
            let text = matches!(&f.ty, TypeRef::String)
                || matches!(&f.ty, TypeRef::Nullable(t) if **t == TypeRef::String);
            (text && top_level.contains(kind)).then(|| (f.name.clone(), kind.to_string()))
        })
        .collect()
}

/// The kind a body field's name refers to, among `kinds`: the kind's own name (`file_id`,
/// `file_ids`), or one it ends with after an underscore (`previous_response_id`,
/// `input_file_id`, `training_file`).
fn kind_of_field<'k>(name: &str, kinds: &'k BTreeSet<String>) -> Option<&'k str> {
    let stem = name
        .strip_suffix("_ids")
        .or_else(|| name.strip_suffix(ID_SUFFIX));
    kinds
        .iter()
        .find(|kind| match stem {
            Some(stem) => stem == kind.as_str() || stem.ends_with(&format!("_{kind}")),
            // Without `_id`: only as a qualified name (`training_file`), never the bare kind
            // (a form's `file` is the upload itself).
            None => name.ends_with(&format!("_{kind}")),
        })
        .map(String::as_str)
}

/// Collects the fields of a request model that name objects.
struct Walk<'a> {
    types: &'a BTreeMap<String, TypeDef>,
    kinds: &'a BTreeSet<String>,
    found: BTreeSet<(Vec<PathStep>, String)>,
    /// Named types being walked: a type that holds itself is walked once per branch.
    visiting: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn ty(&mut self, ty: &'a TypeRef, at: &mut Vec<PathStep>, depth: usize) {
        if depth > DEPTH {
            return;
        }
        match ty {
            TypeRef::Array(item) | TypeRef::Nullable(item) => {
                let array = matches!(ty, TypeRef::Array(_));
                if array {
                    at.push(PathStep::Items);
                }
                self.ty(item, at, depth + 1);
                if array {
                    at.pop();
                }
            }
            TypeRef::Named(name) => {
                if self.visiting.contains(&name.as_str()) {
                    return;
                }
                let Some(def) = self.types.get(name) else {
                    return;
                };
                self.visiting.push(name);
                self.def(def, at, depth);
                self.visiting.pop();
            }
            _ => {}
        }
    }

    fn def(&mut self, def: &'a TypeDef, at: &mut Vec<PathStep>, depth: usize) {
        match &def.kind {
            TypeKind::Struct(st) => {
                for field in &st.fields {
                    at.push(PathStep::Member(field.name.clone()));
                    match kind_of_field(&field.name, self.kinds) {
                        Some(kind) if self.is_text(&field.ty, 0) => {
                            let mut path = at.clone();
                            if self.is_list(&field.ty) {
                                path.push(PathStep::Items);
                            }
                            self.found.insert((path, kind.to_string()));
                        }
                        _ => self.ty(&field.ty, at, depth + 1),
                    }
                    at.pop();
                }
            }
            TypeKind::Union(u) => {
                for v in &u.variants {
                    self.ty(&v.ty, at, depth + 1);
                }
            }
            TypeKind::Alias { target } => self.ty(target, at, depth + 1),
            TypeKind::Intersection { parts, .. } => {
                for part in parts {
                    self.ty(part, at, depth + 1);
                }
            }
            TypeKind::Enum(_) | TypeKind::Untyped { .. } => {}
        }
    }

    /// A string, or a list of strings (through aliases and nullability).
    fn is_text(&self, ty: &TypeRef, depth: usize) -> bool {
        if depth > 4 {
            return false;
        }
        match ty {
            TypeRef::String => true,
            TypeRef::Nullable(t) => self.is_text(t, depth + 1),
            TypeRef::Array(t) => !matches!(**t, TypeRef::Array(_)) && self.is_text(t, depth + 1),
            TypeRef::Named(name) => match self.types.get(name).map(|d| &d.kind) {
                Some(TypeKind::Alias { target }) => self.is_text(target, depth + 1),
                _ => false,
            },
            _ => false,
        }
    }

    fn is_list(&self, ty: &TypeRef) -> bool {
        match ty {
            TypeRef::Array(_) => true,
            TypeRef::Nullable(t) => self.is_list(t),
            TypeRef::Named(name) => match self.types.get(name).map(|d| &d.kind) {
                Some(TypeKind::Alias { target }) => self.is_list(target),
                _ => false,
            },
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_that_name_kinds() {
        let kinds: BTreeSet<String> = ["file", "response", "vector_store", "assistant"]
            .iter()
            .map(|k| k.to_string())
            .collect();
        let kind = |name| kind_of_field(name, &kinds);
        assert_eq!(kind("file_id"), Some("file"));
        assert_eq!(kind("file_ids"), Some("file"));
        assert_eq!(kind("input_file_id"), Some("file"));
        assert_eq!(kind("training_file"), Some("file"));
        assert_eq!(kind("previous_response_id"), Some("response"));
        assert_eq!(kind("vector_store_ids"), Some("vector_store"));
        assert_eq!(kind("assistant_id"), Some("assistant"));
        assert_eq!(kind("file"), None);
        assert_eq!(kind("profile_id"), None);
        assert_eq!(kind("user"), None);
        assert_eq!(kind_of_param("deployment-id"), None);
        assert_eq!(kind_of_param("model"), None);
        assert_eq!(kind_of_param("fine_tuning_job_id"), Some("fine_tuning_job"));
    }
}
