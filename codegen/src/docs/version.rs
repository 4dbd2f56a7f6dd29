//! `<version>.html`: one api-version's operations, grouped, and every type they use.

use std::collections::BTreeMap;

use super::frame::{frame, version_switcher};
use super::html::Html;
use super::markdown::{first_line, prose, with_code};
use super::{BASE_PATH, changes_name, try_it};
use crate::diff;
use crate::ir::{Api, Checks, Content, ContentKind, Operation, TypeDef, TypeKind, TypeRef};

pub(super) fn page(api: &Api, apis: &[Api]) -> Html {
    let mut groups: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in &api.operations {
        groups.entry(group(op)).or_default().push(op);
    }
    let mut nav = Html::new();
    for (name, ops) in &groups {
        nav.element("<h3>", name, "</h3>").raw("<ul>");
        for op in ops {
            nav.raw(r#"<li data-search=""#)
                .text(&search_text(op))
                .raw(r##""><a href="#op-"##)
                .text(&op.operation_id)
                .raw(r#"">"#)
                .html(&method_badge(op))
                .element(r#"<span class="path">"#, &op.path, "</span></a></li>");
        }
        nav.raw("</ul>");
    }
    nav.raw(r##"<h3>Models</h3><ul><li><a href="#models">All models</a></li></ul>"##);

    let mut main = Html::new();
    main.raw("<h1>")
        .text(&api.title)
        .raw(" <small>api-version ")
        .text(&api.version)
        .raw("</small></h1>");
    if let Some(description) = &api.description {
        main.html(&prose(description));
    }
    main.raw("<p>")
        .display(api.operations.len())
        .raw(" operations, served under <code>")
        .raw(BASE_PATH)
        .text(&api.mount)
        .raw("</code> with <code>?api-version=")
        .text(&api.version)
        .raw("</code>");
    if !api.mount.is_empty() {
        main.raw(" or no api-version at all");
    }
    main.raw(". Generated from <code>spec/")
        .text(&api.source)
        .raw(r#"</code>; the spec as served: <a href="/openapi/"#)
        .text(&api.version)
        .raw(r#".json">/openapi/"#)
        .text(&api.version)
        .raw(".json</a>.</p>");
    let unchecked: usize = api.operations.iter().map(|op| op.unchecked.len()).sum();
    if unchecked > 0 {
        main.raw(r#"<p class="unchecked">"#)
            .display(unchecked)
            .raw(" places in requests are not validated, because the spec leaves them untyped or states a rule by mistake; each operation says which.</p>");
    }
    for o in &api.overlays {
        main.raw(r#"<div class="overlaid"><p>Overlay applied: <code>"#)
            .text(&o.file)
            .raw("</code>, ")
            .text(&o.title)
            .raw(" (version ")
            .text(&o.version)
            .raw("). What the gateway enforces, and serves at <code>/openapi/")
            .text(&api.version)
            .raw(".json</code>, is the spec with these changes:</p><ol>");
        for a in &o.actions {
            main.raw("<li>")
                .text(&a.change)
                .element(" <code>", &a.target, "</code>");
            if let Some(d) = &a.description {
                main.raw(": ").text(d);
            }
            main.raw("</li>");
        }
        main.raw("</ol></div>");
    }
    for (name, ops) in &groups {
        main.raw(r#"<h2 id="group-"#)
            .text(&name.replace(' ', "-"))
            .raw(r#"">"#)
            .text(name)
            .raw("</h2>");
        for op in ops {
            main.html(&operation(api, op));
        }
    }
    main.raw(r#"<h2 id="models">Models</h2><p>Every type of this api-version, as the gateway checks requests against it. Field names are as sent on the wire.</p>"#);
    for def in &api.types {
        main.html(&model(api, def));
    }
    let mut header = version_switcher(&api.version, apis);
    if let Some(other) = apis.iter().find(|a| a.version != api.version) {
        let (a, b) = if other.version < api.version {
            (other, api)
        } else {
            (api, other)
        };
        header
            .raw(r#"<a href=""#)
            .text(&changes_name(&a.version, &b.version))
            .raw(r#"">What changed</a>"#);
    }
    frame(
        &format!("api-version {} · aoai-gateway", api.version),
        &header,
        &nav,
        &main,
        true,
    )
}

/// The group an operation is listed under: its first tag, or else the operation segment of its
/// path (`/deployments/{deployment-id}/audio/speech` → Audio).
fn group(op: &Operation) -> String {
    if let Some(tag) = op.tags.first() {
        return tag.clone();
    }
    let literals: Vec<&str> = op
        .path
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
        .collect();
    let segment = match literals.as_slice() {
        ["deployments", rest @ ..] if !rest.is_empty() => rest[0],
        [first, ..] => first,
        [] => "Other",
    };
    let mut words: Vec<String> = segment
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if words.is_empty() {
        words.push("Other".into());
    }
    words.join(" ")
}

fn method_badge(op: &Operation) -> Html {
    let mut badge = Html::new();
    badge
        .raw(r#"<span class="m "#)
        .text(&op.method.as_str().to_ascii_lowercase())
        .raw(r#"">"#)
        .text(op.method.as_str())
        .raw("</span>");
    badge
}

fn search_text(op: &Operation) -> String {
    format!(
        "{} {} {} {} {}",
        op.operation_id,
        op.method.as_str(),
        op.path,
        op.summary.as_deref().unwrap_or(""),
        op.tags.join(" ")
    )
    .to_lowercase()
}

fn operation(api: &Api, op: &Operation) -> Html {
    let mut s = Html::new();
    s.raw(r#"<section class="op" id="op-"#)
        .text(&op.operation_id)
        .raw(r#"" data-search=""#)
        .text(&search_text(op))
        .raw(r#""><h2>"#)
        .html(&method_badge(op))
        .raw("<code>")
        .raw(BASE_PATH)
        .text(&api.mount)
        .text(&op.path)
        .raw(r#"</code></h2><p class="id">"#)
        .text(&op.operation_id);
    if op.deprecated {
        s.raw(" · deprecated");
    }
    s.raw("</p>");
    if let Some(field) = &op.deployment_field {
        s.raw(r#"<p class="deployment">The deployment is the request body's <code>"#)
            .text(field)
            .raw("</code> field: it picks the backends as a deployment in the path does.</p>");
    }
    if !op.overlaid.is_empty() {
        s.raw(r#"<div class="overlaid"><p>Changed by an overlay:</p><ul>"#);
        for o in &op.overlaid {
            s.element("<li><code>", &o.pointer, "</code>: ")
                .element("<code>", &o.file, "</code>, action ")
                .display(o.action);
            if let Some(d) = &o.description {
                s.raw(" (").text(d).raw(")");
            }
            s.raw("</li>");
        }
        s.raw("</ul></div>");
    }
    if !op.unchecked.is_empty() {
        s.raw(r#"<div class="unchecked"><p>Not validated:</p><ul>"#);
        for node in &op.unchecked {
            s.element("<li><code>", &node.pointer, "</code>: ")
                .text(&node.reason)
                .raw("</li>");
        }
        s.raw("</ul></div>");
    }
    if let Some(summary) = &op.summary {
        s.html(&prose(summary));
    }
    if let Some(description) = op
        .description
        .as_ref()
        .filter(|d| Some(*d) != op.summary.as_ref())
    {
        s.html(&prose(description));
    }
    if !op.parameters.is_empty() {
        s.raw("<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
        for p in &op.parameters {
            s.element("<tr><td><code>", &p.name, "</code></td><td>")
                .text(p.location.as_str())
                .raw("</td><td>")
                .html(&type_link(api, &p.ty))
                .raw("</td><td>")
                .html(&yes_no(p.required))
                .raw("</td><td>");
            if let Some(d) = &p.description {
                s.html(&prose(d));
            }
            s.html(&enum_values(api, &p.ty))
                .html(&rules(api, &p.ty, &p.checks))
                .raw("</td></tr>");
        }
        s.raw("</table>");
    }
    if let Some(body) = &op.request {
        s.raw(if body.required {
            "<h3>Request body</h3>"
        } else {
            "<h3>Request body (optional)</h3>"
        });
        if let Some(d) = &body.description {
            s.html(&prose(d));
        }
        for c in &body.content {
            s.html(&content(api, c, true));
        }
    }
    s.html(&try_it::panel(api, op));
    s.raw("<h3>Responses</h3>");
    for r in &op.responses {
        s.element("<h4>", &r.status, " <small>")
            .text(first_line(&r.description))
            .raw("</small></h4>");
        if r.content.is_empty() {
            s.raw("<p>No body.</p>");
        }
        for c in &r.content {
            s.html(&content(api, c, false));
        }
    }
    s.raw("</section>");
    s
}

fn content(api: &Api, c: &Content, expand: bool) -> Html {
    let mut s = Html::new();
    let what = match c.kind {
        ContentKind::EventStream => "server-sent events",
        ContentKind::Multipart => "a form",
        ContentKind::Binary => "bytes",
        ContentKind::Text => "text",
        _ => "",
    };
    s.element("<p><code>", &c.media_type, "</code>");
    if let Some(ty) = &c.ty {
        s.raw(" — ").html(&type_link(api, ty));
    } else if !what.is_empty() {
        s.raw(" — ").text(what);
    }
    if let Some(condition) = &c.condition {
        s.raw(" (").html(&with_code(condition)).raw(")");
    }
    s.raw("</p>");
    if expand
        && let Some(name) = c.ty.as_ref().and_then(TypeRef::inline_named)
        && let Some(def) = api.type_def(name)
        && matches!(def.kind, TypeKind::Struct(_))
    {
        s.html(&fields_table(api, def, 0));
    }
    for e in &c.examples {
        let pretty = serde_json::to_string_pretty(&e.value).unwrap_or_default();
        let label = e
            .name
            .as_deref()
            .or(e.summary.as_deref())
            .unwrap_or("Example");
        s.element("<details><summary>", label, "</summary>")
            .element("<pre><code>", &pretty, "</code></pre></details>");
    }
    s
}

fn yes_no(b: bool) -> Html {
    let mut s = Html::new();
    s.raw(if b {
        r#"<span class="yes">yes</span>"#
    } else {
        "no"
    });
    s
}

/// A type, with named types linked to their model.
fn type_link(api: &Api, ty: &TypeRef) -> Html {
    let mut s = Html::new();
    match ty {
        TypeRef::Array(t) => {
            s.raw("array of ").html(&type_link(api, t));
        }
        TypeRef::Map(t) => {
            s.raw("map of string → ").html(&type_link(api, t));
        }
        TypeRef::Nullable(t) => {
            s.html(&type_link(api, t)).raw(" or null");
        }
        TypeRef::Named(name) => {
            s.raw(r##"<a href="#type-"##)
                .text(name)
                .element(r#""><code>"#, name, "</code></a>");
        }
        other => {
            s.text(&diff::describe(api, other, 0));
        }
    }
    s
}

/// "One of: …" under a description, for fields whose type is an enum.
fn enum_values(api: &Api, ty: &TypeRef) -> Html {
    let mut s = Html::new();
    let Some(def) = ty.named().and_then(|n| api.type_def(n)) else {
        return s;
    };
    let TypeKind::Enum(e) = &def.kind else {
        return s;
    };
    s.raw(r#"<div class="values">One of "#);
    for (i, v) in e.values.iter().enumerate() {
        if i > 0 {
            s.raw(", ");
        }
        s.element("<code>", &v.value, "</code>");
    }
    if e.open {
        s.raw(", or another value the service adds (open: the gateway accepts values not listed)");
    }
    s.raw(".</div>");
    s
}

/// The rules the gateway checks a value against, beyond its type: those stated where it is
/// described, and those of the type it names.
fn rules(api: &Api, ty: &TypeRef, checks: &Checks) -> Html {
    let mut said = checks.describe();
    if let Some(def) = ty.named().and_then(|n| api.type_def(n)) {
        said.extend(def.checks.describe());
    }
    let mut s = Html::new();
    if !said.is_empty() {
        s.element(
            r#"<div class="values rules">Checked: "#,
            &said.join(", "),
            ".</div>",
        );
    }
    s
}

/// A struct's fields; inline object types below a field open in place, a few levels deep.
fn fields_table(api: &Api, def: &TypeDef, depth: usize) -> Html {
    let mut s = Html::new();
    let TypeKind::Struct(st) = &def.kind else {
        return s;
    };
    s.raw("<table><tr><th>field</th><th>type</th><th>required</th><th>nullable</th><th>description</th></tr>");
    for f in &st.fields {
        s.element("<tr><td><code>", &f.name, "</code>");
        if f.deprecated {
            s.raw(" <small>deprecated</small>");
        }
        s.raw("</td><td>")
            .html(&type_link(api, &f.ty))
            .raw("</td><td>")
            .html(&yes_no(f.required))
            .raw("</td><td>")
            .raw(if f.nullable { "yes" } else { "no" })
            .raw("</td><td>");
        if let Some(d) = &f.description {
            s.html(&prose(d));
        }
        if let Some(default) = &f.default {
            s.element(
                r#"<div class="values">Default: <code>"#,
                &default.to_string(),
                "</code></div>",
            );
        }
        if f.read_only {
            s.raw(r#"<div class="values">Read-only.</div>"#);
        }
        s.html(&enum_values(api, &f.ty))
            .html(&rules(api, &f.ty, &f.checks))
            .raw("</td></tr>");
        let inline =
            f.ty.named()
                .and_then(|n| api.type_def(n))
                .filter(|d| d.schema_name.is_none() && matches!(d.kind, TypeKind::Struct(_)));
        if let (Some(nested), true) = (inline, depth < 2) {
            s.element(
                r#"<tr><td colspan="5"><details><summary>Fields of <code>"#,
                &f.name,
                "</code></summary>",
            )
            .html(&fields_table(api, nested, depth + 1))
            .raw("</details></td></tr>");
        }
    }
    s.raw("</table>");
    if !matches!(st.extra_ty, TypeRef::Any) {
        s.raw("<p>Other fields: ")
            .html(&type_link(api, &st.extra_ty))
            .raw(".</p>");
    }
    s
}

fn model(api: &Api, def: &TypeDef) -> Html {
    let mut s = Html::new();
    let search =
        format!("{} {}", def.name, def.schema_name.as_deref().unwrap_or("")).to_lowercase();
    s.raw(r#"<div class="model" id="type-"#)
        .text(&def.name)
        .raw(r#"" data-search=""#)
        .text(&search)
        .element(
            r#""><h3><code>"#,
            &def.name,
            r#"</code></h3><p class="origin">"#,
        );
    match &def.schema_name {
        Some(name) => s.element("schema <code>", name, "</code>"),
        None => s.element("inline schema at <code>", &def.pointer, "</code>"),
    };
    if def.nullable {
        s.raw(" · may be null");
    }
    s.raw("</p>");
    if let Some(title) = def
        .title
        .as_ref()
        .filter(|t| Some(*t) != def.description.as_ref())
    {
        s.element("<p><strong>", title, "</strong></p>");
    }
    if let Some(d) = &def.description {
        s.html(&prose(d));
    }
    match &def.kind {
        TypeKind::Struct(st) => {
            s.html(&fields_table(api, def, 2));
            if st.closed {
                s.raw("<p>The spec allows no other fields; the gateway forwards them anyway.</p>");
            }
            if let Some(choice) = &st.choice {
                let sets: Vec<String> = choice.sets.iter().map(|set| set.join(" and ")).collect();
                let rule = if choice.exactly_one {
                    "Exactly one of these must be present: "
                } else {
                    "At least one of these must be present: "
                };
                s.element("<p>", &format!("{rule}{}.", sets.join("; or ")), "</p>");
            }
        }
        TypeKind::Enum(e) => {
            s.raw("<table><tr><th>value</th><th>description</th></tr>");
            for v in &e.values {
                s.element("<tr><td><code>", &v.value, "</code></td><td>");
                if let Some(d) = &v.description {
                    s.html(&prose(d));
                }
                s.raw("</td></tr>");
            }
            s.raw("</table>");
            if e.open {
                s.raw("<p>Open (<code>modelAsString</code>): the service may use values not listed here, and the gateway accepts them.</p>");
            }
        }
        TypeKind::Union(u) => {
            match &u.tag {
                Some(tag) => s.element(
                    "<p>One of these, chosen by the value of <code>",
                    tag,
                    "</code>:</p>",
                ),
                None => s.raw("<p>One of these, tried in this order:</p>"),
            };
            s.raw("<ul>");
            for v in &u.variants {
                s.raw("<li>");
                if let Some(tag) = &v.tag_value {
                    s.element("<code>", tag, "</code>: ");
                }
                s.html(&type_link(api, &v.ty)).raw("</li>");
            }
            s.raw("</ul>");
        }
        TypeKind::Alias { target } => {
            s.raw("<p>Type: ")
                .html(&type_link(api, target))
                .raw("</p>")
                .html(&enum_values(api, target))
                .html(&rules(api, target, &def.checks));
        }
        TypeKind::Intersection { parts, .. } => {
            s.raw("<p>All of: ");
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    s.raw(", ");
                }
                s.html(&type_link(api, p));
            }
            s.raw(".</p>");
        }
        TypeKind::Untyped { reason } => {
            s.element("<p>Any JSON value (", reason, " cannot be typed yet).</p>");
        }
    }
    s.raw("</div>");
    s
}
