//! Types that contain themselves are boxed on the edges that close a cycle, and only there.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;
use crate::ir::TypeKind;

impl Converter<'_> {
    /// Boxes each field and variant whose type contains, without a `Vec` or map in between,
    /// the type that holds it.
    pub(super) fn box_cycles(&mut self) {
        let edges: BTreeMap<String, Vec<String>> = self
            .types
            .iter()
            .map(|(name, def)| {
                let targets = match &def.kind {
                    TypeKind::Struct(s) => s
                        .fields
                        .iter()
                        .filter_map(|f| f.ty.inline_named())
                        .map(str::to_string)
                        .collect(),
                    TypeKind::Union(u) => u
                        .variants
                        .iter()
                        .filter_map(|v| v.ty.inline_named())
                        .map(str::to_string)
                        .collect(),
                    TypeKind::Alias { target } => target
                        .inline_named()
                        .map(str::to_string)
                        .into_iter()
                        .collect(),
                    TypeKind::Intersection { parts, .. } => parts
                        .iter()
                        .filter_map(|p| p.inline_named())
                        .map(str::to_string)
                        .collect(),
                    _ => Vec::new(),
                };
                (name.clone(), targets)
            })
            .collect();
        let component = strongly_connected(&edges);
        let same =
            |a: &str, b: &str| component.contains_key(a) && component.get(a) == component.get(b);
        for (name, def) in self.types.iter_mut() {
            match &mut def.kind {
                TypeKind::Struct(s) => {
                    for f in &mut s.fields {
                        f.boxed = f.ty.inline_named().is_some_and(|t| same(name, t));
                    }
                }
                TypeKind::Union(u) => {
                    for v in &mut u.variants {
                        v.boxed = v.ty.inline_named().is_some_and(|t| same(name, t));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Tarjan's algorithm: the strongly connected component of each node that is part of a cycle
/// (a component of one node counts only if the node points at itself).
fn strongly_connected(edges: &BTreeMap<String, Vec<String>>) -> HashMap<String, usize> {
    struct State<'a> {
        edges: &'a BTreeMap<String, Vec<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        on_stack: HashSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        result: HashMap<String, usize>,
        components: usize,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let targets: &'a [String] = s.edges.get(v).map(Vec::as_slice).unwrap_or(&[]);
        for w in targets {
            let w = w.as_str();
            if !s.edges.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut members = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                members.push(w);
                if w == v {
                    break;
                }
            }
            let self_loop = targets.iter().any(|t| t == v);
            if members.len() > 1 || self_loop {
                for m in members {
                    s.result.insert(m.to_string(), s.components);
                }
            }
            s.components += 1;
        }
    }
    let mut s = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: HashSet::new(),
        stack: Vec::new(),
        next: 0,
        result: HashMap::new(),
        components: 0,
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.result
}
