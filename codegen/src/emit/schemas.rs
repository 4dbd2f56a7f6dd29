//! The `schemas` module of an api-version: the validator's tables.
//!
//! One `static` per type of the intermediate model, named after it in capitals
//! (`CreateChatCompletionRequest` → `CREATE_CHAT_COMPLETION_REQUEST`), each a
//! `::aoai_runtime::schema::Model` that the gateway's validator walks a request against. The
//! statics refer to each other by address, so recursive schemas need nothing special. Struct
//! fields are sorted by name (the validator looks them up by binary search); patterns are
//! statics of their own, in `patterns`, because each compiles itself on first use.

use std::collections::BTreeMap;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::{describe, doc_lines, ident, json_kinds};
use crate::ir::{self, Api, Checks, TypeKind, TypeRef};
use crate::names::{self, Namespace};

/// The static that holds each type's table, by type name.
pub struct Names(BTreeMap<String, String>);

impl Names {
    pub fn new(api: &Api) -> Names {
        let mut taken = Namespace::with_reserved(&["PATTERNS"]);
        Names(
            api.types
                .iter()
                .map(|t| (t.name.clone(), taken.claim(&names::screaming(&t.name))))
                .collect(),
        )
    }

    /// `schemas::NAME`, from `module` (`quote!()` inside `schemas`).
    fn path(&self, type_name: &str, module: &TokenStream) -> TokenStream {
        let name = format_ident!(
            "{}",
            self.0.get(type_name).map_or("UNKNOWN", String::as_str)
        );
        quote!(#module #name)
    }
}

/// Writes the tables.
struct Writer<'a> {
    api: &'a Api,
    names: &'a Names,
    /// Where the tables live, as seen from the code being written.
    module: TokenStream,
    patterns: Vec<String>,
}

pub fn schemas(api: &Api) -> TokenStream {
    let names = Names::new(api);
    let mut w = Writer {
        api,
        names: &names,
        module: quote!(),
        patterns: patterns(api),
    };
    let items: Vec<TokenStream> = api.types.iter().map(|def| w.model(def)).collect();
    let patterns = w.patterns.iter().enumerate().map(|(i, source)| {
        let name = format_ident!("P{}", i + 1);
        quote!(pub static #name: Pattern = Pattern::new(#source);)
    });
    let patterns = if w.patterns.is_empty() {
        quote!()
    } else {
        quote! {
            /// The patterns the spec states, each compiled on first use.
            pub mod patterns {
                use ::aoai_runtime::schema::Pattern;
                #(#patterns)*
            }
        }
    };
    quote! {
        #[allow(unused_imports)]
        use ::aoai_runtime::schema::{
            Body, Bound, Checks, Choice, Enum, Field, Format, Kind, Kinds, Model, Pattern, Struct,
            Ty, Union, Variant, Width,
        };
        #patterns
        #(#items)*
    }
}

/// Writes the tables of request bodies, parameters and form fields for `routes`, which names
/// the models as `schemas::NAME`.
pub struct RouteTypes<'a> {
    writer: Writer<'a>,
}

impl<'a> RouteTypes<'a> {
    pub fn new(api: &'a Api, names: &'a Names) -> RouteTypes<'a> {
        RouteTypes {
            writer: Writer {
                api,
                names,
                module: quote!(schemas::),
                patterns: patterns(api),
            },
        }
    }

    pub fn ty(&mut self, ty: &TypeRef, checks: &Checks) -> TokenStream {
        self.writer.ty(ty, checks)
    }
}

/// Every pattern the version's checks state, each once, in the order met: `patterns::P1`, ….
fn patterns(api: &Api) -> Vec<String> {
    fn collect(c: &Checks, out: &mut Vec<String>) {
        if let Some(p) = &c.pattern
            && !out.contains(p)
        {
            out.push(p.clone());
        }
        for nested in [&c.items, &c.values].into_iter().flatten() {
            collect(nested, out);
        }
    }
    let mut out = Vec::new();
    for def in &api.types {
        collect(&def.checks, &mut out);
        match &def.kind {
            TypeKind::Struct(s) => s.fields.iter().for_each(|f| collect(&f.checks, &mut out)),
            TypeKind::Union(u) => u.variants.iter().for_each(|v| collect(&v.checks, &mut out)),
            TypeKind::Intersection { checks, .. } => {
                checks.iter().for_each(|c| collect(c, &mut out))
            }
            _ => {}
        }
    }
    for op in &api.operations {
        op.parameters
            .iter()
            .for_each(|p| collect(&p.checks, &mut out));
    }
    out
}

impl Writer<'_> {
    fn model(&mut self, def: &ir::TypeDef) -> TokenStream {
        let name = self.names.path(&def.name, &quote!());
        let type_name = &def.name;
        let doc = doc_lines(&format!(
            "What a value of [`{type_name}`](super::models::{type_name}) must look like."
        ));
        let body = match &def.kind {
            TypeKind::Struct(s) => {
                let mut fields: Vec<&ir::Field> = s.fields.iter().collect();
                fields.sort_by(|a, b| a.name.cmp(&b.name));
                let fields: Vec<TokenStream> = fields
                    .into_iter()
                    .map(|f| {
                        let wire = &f.name;
                        let ty = self.ty(&f.ty, &f.checks);
                        let (required, nullable) = (f.required, f.nullable);
                        quote!(Field { name: #wire, ty: #ty, required: #required, nullable: #nullable })
                    })
                    .collect();
                let extra = if s.extra_ty == TypeRef::Any {
                    quote!(None)
                } else {
                    let values = def.checks.values.as_deref().cloned().unwrap_or_default();
                    let ty = self.ty(&s.extra_ty, &values);
                    quote!(Some(#ty))
                };
                let open = s.open;
                let choice = match &s.choice {
                    None => quote!(None),
                    Some(c) => {
                        let exactly_one = c.exactly_one;
                        let sets = c.sets.iter().map(|set| quote!(&[#(#set),*]));
                        quote!(Some(Choice { exactly_one: #exactly_one, sets: &[#(#sets),*] }))
                    }
                };
                quote!(Body::Struct(Struct {
                    fields: &[#(#fields),*], extra: #extra, open: #open, choice: #choice
                }))
            }
            TypeKind::Enum(e) => {
                let values = e.values.iter().map(|v| &v.value);
                let open = e.open;
                quote!(Body::Enum(Enum { values: &[#(#values),*], open: #open }))
            }
            TypeKind::Union(u) => {
                let variants: Vec<TokenStream> = u
                    .variants
                    .iter()
                    .map(|v| {
                        let tag = option_str(v.tag_value.as_deref());
                        let ty = self.ty(&v.ty, &v.checks);
                        let kinds = kinds(self.api, &v.ty);
                        quote!(Variant { tag: #tag, ty: #ty, kinds: Kinds(#kinds) })
                    })
                    .collect();
                let tag = option_str(u.tag.as_deref());
                let expected: Vec<String> = u
                    .variants
                    .iter()
                    .map(|v| describe(self.api, &v.ty))
                    .collect();
                let expected = expected.join(" or ");
                quote!(Body::Union(Union { tag: #tag, variants: &[#(#variants),*], expected: #expected }))
            }
            TypeKind::Intersection { parts, checks } => {
                let parts: Vec<TokenStream> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let part_checks = checks.get(i).cloned().unwrap_or_default();
                        self.ty(p, &part_checks)
                    })
                    .collect();
                quote!(Body::AllOf(&[#(#parts),*]))
            }
            TypeKind::Alias { target } => {
                // The alias's own keywords are the model's; those of its items and values go
                // with the target.
                let nested = Checks {
                    items: def.checks.items.clone(),
                    values: def.checks.values.clone(),
                    ..Checks::default()
                };
                let ty = self.ty(target, &nested);
                quote!(Body::Alias(#ty))
            }
            TypeKind::Untyped { .. } => quote!(Body::Untyped),
        };
        let checks = self.checks(&def.checks);
        quote! {
            #doc
            pub static #name: Model = Model { name: #type_name, body: #body, checks: #checks };
        }
    }

    fn ty(&mut self, t: &TypeRef, checks: &Checks) -> TokenStream {
        let kind = match t {
            TypeRef::String | TypeRef::Binary => quote!(Kind::String),
            TypeRef::Integer(32) => quote!(Kind::Integer(Width::I32)),
            TypeRef::Integer(_) => quote!(Kind::Integer(Width::I64)),
            TypeRef::Number => quote!(Kind::Number),
            TypeRef::Boolean => quote!(Kind::Boolean),
            TypeRef::Any => quote!(Kind::Any),
            TypeRef::Object => quote!(Kind::Object),
            TypeRef::Array(item) => {
                let item = self.ty(item, checks.items.as_deref().unwrap_or(&Checks::default()));
                quote!(Kind::Array(&#item))
            }
            TypeRef::Map(value) => {
                let value = self.ty(
                    value,
                    checks.values.as_deref().unwrap_or(&Checks::default()),
                );
                quote!(Kind::Map(&#value))
            }
            TypeRef::Nullable(inner) => {
                let inner = self.ty(inner, &Checks::default());
                quote!(Kind::Nullable(&#inner))
            }
            TypeRef::Named(name) => {
                let path = self.names.path(name, &self.module);
                quote!(Kind::Model(&#path))
            }
        };
        if checks.is_empty() {
            return quote!(Ty::of(#kind));
        }
        let checks = self.checks(checks);
        quote!(Ty { kind: #kind, checks: #checks })
    }

    /// `&Checks::NONE`, or the keywords present over it. Items' and values' checks are written
    /// with their types, not here.
    fn checks(&mut self, c: &Checks) -> TokenStream {
        let mut set = Vec::new();
        let bound = |b: &ir::Bound| {
            let v = Literal::f64_unsuffixed(b.value);
            if b.exclusive {
                quote!(Some(Bound::exclusive(#v)))
            } else {
                quote!(Some(Bound::inclusive(#v)))
            }
        };
        if let Some(b) = c.minimum.filter(|b| b.value.is_finite()) {
            let b = bound(&b);
            set.push(quote!(minimum: #b));
        }
        if let Some(b) = c.maximum.filter(|b| b.value.is_finite()) {
            let b = bound(&b);
            set.push(quote!(maximum: #b));
        }
        if let Some(m) = c.multiple_of.filter(|m| m.is_finite()) {
            let m = Literal::f64_unsuffixed(m);
            set.push(quote!(multiple_of: Some(#m)));
        }
        for (key, value) in [
            ("min_length", c.min_length),
            ("max_length", c.max_length),
            ("min_items", c.min_items),
            ("max_items", c.max_items),
            ("min_properties", c.min_properties),
            ("max_properties", c.max_properties),
        ] {
            if let Some(n) = value {
                let key = ident(key);
                let n = Literal::u64_unsuffixed(n);
                set.push(quote!(#key: Some(#n)));
            }
        }
        if let Some(p) = &c.pattern {
            // Every pattern was collected up front (see `patterns`).
            let i = self
                .patterns
                .iter()
                .position(|q| q == p)
                .unwrap_or_default();
            let name = format_ident!("P{}", i + 1);
            let module = &self.module;
            set.push(quote!(pattern: Some(&#module patterns::#name)));
        }
        if let Some(f) = c.format {
            let f = ident(f.variant());
            set.push(quote!(format: Some(Format::#f)));
        }
        if c.unique_items {
            set.push(quote!(unique_items: true));
        }
        if set.is_empty() {
            quote!(&Checks::NONE)
        } else {
            quote!(&Checks { #(#set,)* ..Checks::NONE })
        }
    }
}

fn option_str(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(Some(#s)),
        None => quote!(None),
    }
}

/// The JSON kinds a type may accept, as `Kinds` bits.
fn kinds(api: &Api, t: &TypeRef) -> TokenStream {
    let names = json_kinds(api, t, 0);
    if names.is_empty() {
        return quote!(0);
    }
    let bits = names.iter().map(|k| {
        let k = ident(&k.to_ascii_uppercase());
        quote!(Kinds::#k)
    });
    quote!(#(#bits)|*)
}
