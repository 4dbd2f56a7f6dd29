//! Route docs as static HTML pages, rendered from the intermediate model at build time, so the
//! docs cannot drift from the routes the gateway serves.
//!
//! Pages are self-contained: inline CSS, inline JavaScript for the filter box and the "Try it"
//! panels ([`try_it`], which call only the gateway that served the page), no fonts, no CDN. The base path is written as [`BASE_PATH`] and replaced by the
//! gateway at start-up, because it is configured at run time.
//!
//! - `index.html`: the compiled api-versions and the comparisons between them;
//! - `<version>.html`: operations grouped by tag, each with its parameters, request body and
//!   responses, and every model as a linked field table;
//! - `changes-<a>-to-<b>.html`: what changed from one api-version to another ([`crate::diff`]).

mod try_it;

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::diff::{self, Signature, VersionDiff};
use crate::ir::{Api, Checks, Content, ContentKind, Operation, TypeDef, TypeKind, TypeRef};

/// Stands for the gateway's base path in the pages.
pub const BASE_PATH: &str = "@@AOAI_BASE_PATH@@";

/// (file name, HTML) of every page.
pub fn pages(apis: &[Api]) -> Vec<(String, String)> {
    let mut pages = vec![("index.html".to_string(), index(apis))];
    for api in apis {
        pages.push((page_name(&api.version), version_page(api, apis)));
    }
    for (from, to) in pairs(apis) {
        pages.push((
            changes_name(&from.version, &to.version),
            changes_page(&diff::diff(from, to)),
        ));
    }
    pages
}

/// Every ordered pair, older (by sort order) first.
fn pairs(apis: &[Api]) -> Vec<(&Api, &Api)> {
    let mut out = Vec::new();
    for (i, a) in apis.iter().enumerate() {
        for b in &apis[i + 1..] {
            out.push((a, b));
        }
    }
    out
}

pub fn page_name(version: &str) -> String {
    format!("{}.html", file_safe(version))
}

pub fn changes_name(from: &str, to: &str) -> String {
    format!("changes-{}-to-{}.html", file_safe(from), file_safe(to))
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ----- text -----

pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Spec descriptions are Markdown; render what matters for reading (paragraphs, `code`, fenced
/// blocks) and escape the rest.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_fence = false;
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, out: &mut String| {
        if !paragraph.is_empty() {
            let _ = write!(
                out,
                "<p>{}</p>",
                inline_code(&esc(&unlink(&paragraph.join(" "))))
            );
            paragraph.clear();
        }
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            flush(&mut paragraph, &mut out);
            out.push_str(if in_fence {
                "</code></pre>"
            } else {
                "<pre><code>"
            });
            in_fence = !in_fence;
        } else if in_fence {
            out.push_str(&esc(line));
            out.push('\n');
        } else if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push(line.trim());
        }
    }
    flush(&mut paragraph, &mut out);
    if in_fence {
        out.push_str("</code></pre>");
    }
    out
}

/// `[text](target)` → `text`: the specs' links point into openai.com's own site, relative to it,
/// so they would lead nowhere from here.
fn unlink(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            after[close + 2..]
                .find(')')
                .map(|end| (close, close + 2 + end))
        });
        match link {
            Some((close, end)) if !after[..close].contains(['[', ']']) => {
                out.push_str(&rest[..open]);
                out.push_str(&after[..close]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `` `x` `` → `<code>x</code>` on already escaped text.
fn inline_code(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut open = false;
    for (i, part) in escaped.split('`').enumerate() {
        if i > 0 {
            out.push_str(if open { "</code>" } else { "<code>" });
            open = !open;
        }
        out.push_str(part);
    }
    if open {
        out.push_str("</code>");
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

// ----- page frame -----

const STYLE: &str = r#"
:root { --fg: #1d2330; --muted: #5b6475; --line: #dde2ea; --bg: #fff; --side: #f6f8fb; --accent: #0f62c8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { position: sticky; top: 0; z-index: 2; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; padding: .6rem 1.2rem; background: #14213d; color: #fff; }
header a { color: #cfe0ff; } header .brand { font-weight: 700; color: #fff; text-decoration: none; }
header select, header input { font: inherit; padding: .2rem .4rem; border-radius: 4px; border: 1px solid #8899bb; }
header input { margin-left: auto; min-width: 16rem; }
.layout { display: grid; grid-template-columns: 19rem 1fr; }
nav { position: sticky; top: 3rem; height: calc(100vh - 3rem); overflow: auto; padding: 1rem; background: var(--side); border-right: 1px solid var(--line); font-size: 13px; }
nav h3 { margin: 1rem 0 .3rem; font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
nav ul { list-style: none; margin: 0; padding: 0; } nav li { margin: .2rem 0; }
nav a { display: grid; grid-template-columns: 4.1rem 1fr; align-items: start; color: var(--fg); text-decoration: none; } nav a:hover { color: var(--accent); }
nav a .path { overflow-wrap: anywhere; font: 12px/1.5 ui-monospace, monospace; }
main { padding: 1rem 2rem 4rem; max-width: 72rem; min-width: 0; }
h1 { margin: .4rem 0; } h2 { margin-top: 2.4rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; } h4 { margin: 1rem 0 .3rem; }
a { color: var(--accent); }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #0f172a; color: #e2e8f0; padding: .8rem; border-radius: 6px; overflow: auto; }
p code, td code, li code { background: #eef2f7; padding: 0 .25rem; border-radius: 3px; }
.m { display: inline-block; min-width: 3.6rem; text-align: center; font: 700 11px/1.8 ui-monospace, monospace; color: #fff; border-radius: 4px; padding: 0 .3rem; margin-right: .4rem; }
.get { background: #1f7a3a; } .post { background: #0f62c8; } .delete { background: #b42318; } .put, .patch { background: #9a5b00; } .head, .options, .trace { background: #5b6475; }
.op { border: 1px solid var(--line); border-radius: 8px; padding: .2rem 1.2rem 1rem; margin: 1.4rem 0; }
.op > h2 { border: 0; margin-top: .8rem; font-size: 1.1rem; }
.id, .origin { color: var(--muted); font-size: 13px; margin-top: -.4rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: 14px; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); padding: .35rem .5rem; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
td p { margin: 0 0 .3rem; } .yes { font-weight: 600; } .values { color: var(--muted); font-size: 13px; }
details > summary { cursor: pointer; color: var(--accent); } details { margin: .3rem 0; }
.model { border-top: 1px solid var(--line); padding-top: .4rem; }
.added { color: #1f7a3a; } .removed { color: #b42318; } .changed { color: #9a5b00; }
.hidden { display: none !important; }
.try { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .8rem; margin: .8rem 0; }
.try label { display: block; margin: .4rem 0; font-size: 14px; }
.try input { font: inherit; padding: .2rem .4rem; min-width: 18rem; }
.try textarea { display: block; width: 100%; box-sizing: border-box; font: 13px/1.4 ui-monospace, monospace; }
.try button { font: inherit; padding: .3rem 1.2rem; margin: .3rem 0; }
.try pre { max-height: 24rem; overflow: auto; background: #f6f8fa; padding: .5rem; white-space: pre-wrap; }
.unchecked, .moved, .deployment, .overlaid { border-left: 3px solid #9a5b00; padding: .2rem .8rem; background: #fff8ec; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; } nav { position: static; height: auto; } }
"#;

/// The filter box: hides operations and models that do not contain the text typed; `?q=` in the
/// address fills it, so a filtered view can be linked.
const SCRIPT: &str = r#"
const box = document.getElementById('filter');
function applyFilter() {
  const q = box.value.trim().toLowerCase();
  for (const el of document.querySelectorAll('[data-search]')) {
    el.classList.toggle('hidden', q !== '' && !el.dataset.search.includes(q));
  }
}
if (box) {
  box.addEventListener('input', applyFilter);
  const q = new URLSearchParams(location.search).get('q');
  if (q) { box.value = q; applyFilter(); }
}
"#;

fn frame(title: &str, header_extra: &str, nav: &str, main: &str, filter: bool) -> String {
    let filter = if filter {
        r#"<input id="filter" type="search" placeholder="Filter operations and models…" aria-label="Filter">"#
    } else {
        ""
    };
    let layout = if nav.is_empty() {
        format!("<main>{main}</main>")
    } else {
        format!(r#"<div class="layout"><nav>{nav}</nav><main>{main}</main></div>"#)
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<header><a class="brand" href="index.html">aoai-gateway route docs</a>{header_extra}{filter}</header>
{layout}
<script>{SCRIPT}{try_script}</script>
</body>
</html>
"#,
        title = esc(title),
        try_script = try_it::SCRIPT,
    )
}

fn version_switcher(current: &str, apis: &[Api]) -> String {
    let mut s = String::from(
        r#"<label>api-version <select id="version" onchange="location.href = this.value">"#,
    );
    for api in apis {
        let selected = if api.version == current {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<option value="{}"{selected}>{}</option>"#,
            esc(&page_name(&api.version)),
            esc(&api.version)
        );
    }
    s.push_str("</select></label>");
    s
}

fn index(apis: &[Api]) -> String {
    let mut main = String::from(
        "<h1>Route docs</h1><p>What this gateway serves for each compiled api-version, generated from the same specs as its routes. Clients select the version with <code>?api-version=</code>; below a mount such as <code>/v1</code> it may be left out.</p><table><tr><th>api-version</th><th>served under</th><th>operations</th><th>spec</th><th>served spec</th></tr>",
    );
    for api in apis {
        let _ = write!(
            main,
            r#"<tr><td><a href="{page}">{v}</a></td><td><code>{BASE_PATH}{mount}</code></td><td>{n}</td><td><code>spec/{src}</code></td><td><a href="/openapi/{v}.json">/openapi/{v}.json</a></td></tr>"#,
            page = esc(&page_name(&api.version)),
            v = esc(&api.version),
            mount = esc(&api.mount),
            n = api.operations.len(),
            src = esc(&api.source),
        );
    }
    main.push_str("</table>");
    let pairs = pairs(apis);
    if !pairs.is_empty() {
        main.push_str("<h2>What changed between versions</h2><ul>");
        for (a, b) in pairs {
            let _ = write!(
                main,
                r#"<li><a href="{}">{} → {}</a></li>"#,
                esc(&changes_name(&a.version, &b.version)),
                esc(&a.version),
                esc(&b.version)
            );
        }
        main.push_str("</ul>");
    }
    frame("aoai-gateway route docs", "", "", &main, false)
}

// ----- one api-version -----

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

fn method_badge(op: &Operation) -> String {
    let m = op.method.as_str();
    format!(r#"<span class="m {}">{m}</span>"#, m.to_ascii_lowercase())
}

fn version_page(api: &Api, apis: &[Api]) -> String {
    let mut groups: BTreeMap<String, Vec<&Operation>> = BTreeMap::new();
    for op in &api.operations {
        groups.entry(group(op)).or_default().push(op);
    }
    let mut nav = String::new();
    for (name, ops) in &groups {
        let _ = write!(nav, "<h3>{}</h3><ul>", esc(name));
        for op in ops {
            let _ = write!(
                nav,
                r##"<li data-search="{search}"><a href="#op-{id}">{badge}<span class="path">{path}</span></a></li>"##,
                search = esc(&search_text(op)),
                id = esc(&op.operation_id),
                badge = method_badge(op),
                path = esc(&op.path),
            );
        }
        nav.push_str("</ul>");
    }
    nav.push_str(r##"<h3>Models</h3><ul><li><a href="#models">All models</a></li></ul>"##);

    let mut main = String::new();
    let _ = write!(
        main,
        r#"<h1>{title} <small>api-version {v}</small></h1>{desc}<p>{n} operations, served under <code>{BASE_PATH}{mount}</code> with <code>?api-version={v}</code>{optional}. Generated from <code>spec/{src}</code>; the spec as served: <a href="/openapi/{v}.json">/openapi/{v}.json</a>.</p>"#,
        title = esc(&api.title),
        v = esc(&api.version),
        desc = api.description.as_deref().map(prose).unwrap_or_default(),
        n = api.operations.len(),
        mount = esc(&api.mount),
        optional = if api.mount.is_empty() {
            ""
        } else {
            " or no api-version at all"
        },
        src = esc(&api.source),
    );
    let unchecked: usize = api.operations.iter().map(|op| op.unchecked.len()).sum();
    if unchecked > 0 {
        let _ = write!(
            main,
            r##"<p class="unchecked">{unchecked} places in requests are not validated, because the spec leaves them untyped or states a rule by mistake; each operation says which.</p>"##
        );
    }
    for o in &api.overlays {
        let _ = write!(
            main,
            r#"<div class="overlaid"><p>Overlay applied: <code>{file}</code>, {title} (version {version}). What the gateway enforces, and serves at <code>/openapi/{v}.json</code>, is the spec with these changes:</p><ol>"#,
            file = esc(&o.file),
            title = esc(&o.title),
            version = esc(&o.version),
            v = esc(&api.version),
        );
        for a in &o.actions {
            let _ = write!(
                main,
                "<li>{change} <code>{target}</code>{description}</li>",
                change = esc(&a.change),
                target = esc(&a.target),
                description = a
                    .description
                    .as_deref()
                    .map(|d| format!(": {}", esc(d)))
                    .unwrap_or_default(),
            );
        }
        main.push_str("</ol></div>");
    }
    for (name, ops) in &groups {
        let _ = write!(
            main,
            r#"<h2 id="group-{}">{}</h2>"#,
            esc(&name.replace(' ', "-")),
            esc(name)
        );
        for op in ops {
            main.push_str(&operation(api, op));
        }
    }
    main.push_str(r#"<h2 id="models">Models</h2><p>Every type of this api-version, as the gateway checks requests against it. Field names are as sent on the wire.</p>"#);
    for def in &api.types {
        main.push_str(&model(api, def));
    }
    let mut header = version_switcher(&api.version, apis);
    if let Some(other) = apis.iter().find(|a| a.version != api.version) {
        let (a, b) = if other.version < api.version {
            (other, api)
        } else {
            (api, other)
        };
        let _ = write!(
            header,
            r#"<a href="{}">What changed</a>"#,
            esc(&changes_name(&a.version, &b.version))
        );
    }
    frame(
        &format!("api-version {} · aoai-gateway", api.version),
        &header,
        &nav,
        &main,
        true,
    )
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

fn operation(api: &Api, op: &Operation) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<section class="op" id="op-{id}" data-search="{search}"><h2>{badge}<code>{BASE_PATH}{mount}{path}</code></h2><p class="id">{id}{deprecated}</p>"#,
        id = esc(&op.operation_id),
        search = esc(&search_text(op)),
        badge = method_badge(op),
        mount = esc(&api.mount),
        path = esc(&op.path),
        deprecated = if op.deprecated { " · deprecated" } else { "" },
    );
    if let Some(field) = &op.deployment_field {
        let _ = write!(
            s,
            r#"<p class="deployment">The deployment is the request body's <code>{}</code> field: it picks the backends as a deployment in the path does.</p>"#,
            esc(field)
        );
    }
    if !op.overlaid.is_empty() {
        s.push_str(r#"<div class="overlaid"><p>Changed by an overlay:</p><ul>"#);
        for o in &op.overlaid {
            let _ = write!(
                s,
                "<li><code>{pointer}</code>: <code>{file}</code>, action {n}{description}</li>",
                pointer = esc(&o.pointer),
                file = esc(&o.file),
                n = o.action,
                description = o
                    .description
                    .as_deref()
                    .map(|d| format!(" ({})", esc(d)))
                    .unwrap_or_default(),
            );
        }
        s.push_str("</ul></div>");
    }
    if !op.unchecked.is_empty() {
        s.push_str(r#"<div class="unchecked"><p>Not validated:</p><ul>"#);
        for node in &op.unchecked {
            let _ = write!(
                s,
                "<li><code>{}</code>: {}</li>",
                esc(&node.pointer),
                esc(&node.reason)
            );
        }
        s.push_str("</ul></div>");
    }
    if let Some(summary) = &op.summary {
        s.push_str(&prose(summary));
    }
    if let Some(description) = op
        .description
        .as_ref()
        .filter(|d| Some(*d) != op.summary.as_ref())
    {
        s.push_str(&prose(description));
    }
    if !op.parameters.is_empty() {
        s.push_str("<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
        for p in &op.parameters {
            let _ = write!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}{}{}</td></tr>",
                esc(&p.name),
                p.location.as_str(),
                type_link(api, &p.ty),
                yes_no(p.required),
                p.description.as_deref().map(prose).unwrap_or_default(),
                enum_values(api, &p.ty),
                rules(api, &p.ty, &p.checks),
            );
        }
        s.push_str("</table>");
    }
    if let Some(body) = &op.request {
        let _ = write!(
            s,
            "<h3>Request body{}</h3>",
            if body.required { "" } else { " (optional)" }
        );
        if let Some(d) = &body.description {
            s.push_str(&prose(d));
        }
        for c in &body.content {
            s.push_str(&content(api, c, true));
        }
    }
    s.push_str(&try_it::panel(api, op));
    s.push_str("<h3>Responses</h3>");
    for r in &op.responses {
        let _ = write!(
            s,
            "<h4>{} <small>{}</small></h4>",
            esc(&r.status),
            esc(first_line(&r.description))
        );
        if r.content.is_empty() {
            s.push_str("<p>No body.</p>");
        }
        for c in &r.content {
            s.push_str(&content(api, c, false));
        }
    }
    s.push_str("</section>");
    s
}

fn content(api: &Api, c: &Content, expand: bool) -> String {
    let mut s = String::new();
    let what = match c.kind {
        ContentKind::EventStream => "server-sent events",
        ContentKind::Multipart => "a form",
        ContentKind::Binary => "bytes",
        ContentKind::Text => "text",
        _ => "",
    };
    let _ = write!(s, "<p><code>{}</code>", esc(&c.media_type));
    if let Some(ty) = &c.ty {
        let _ = write!(s, " — {}", type_link(api, ty));
    } else if !what.is_empty() {
        let _ = write!(s, " — {what}");
    }
    if let Some(condition) = &c.condition {
        let _ = write!(s, " ({})", inline_code(&esc(condition)));
    }
    s.push_str("</p>");
    if expand
        && let Some(name) = c.ty.as_ref().and_then(TypeRef::inline_named)
        && let Some(def) = api.type_def(name)
        && matches!(def.kind, TypeKind::Struct(_))
    {
        s.push_str(&fields_table(api, def, 0));
    }
    for e in &c.examples {
        let pretty = serde_json::to_string_pretty(&e.value).unwrap_or_default();
        let label = e
            .name
            .as_deref()
            .or(e.summary.as_deref())
            .unwrap_or("Example");
        let _ = write!(
            s,
            "<details><summary>{}</summary><pre><code>{}</code></pre></details>",
            esc(label),
            esc(&pretty)
        );
    }
    s
}

fn yes_no(b: bool) -> &'static str {
    if b {
        r#"<span class="yes">yes</span>"#
    } else {
        "no"
    }
}

/// A type, with named types linked to their model.
fn type_link(api: &Api, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Array(t) => format!("array of {}", type_link(api, t)),
        TypeRef::Map(t) => format!("map of string → {}", type_link(api, t)),
        TypeRef::Nullable(t) => format!("{} or null", type_link(api, t)),
        TypeRef::Named(name) => format!(
            r##"<a href="#type-{n}"><code>{n}</code></a>"##,
            n = esc(name)
        ),
        other => esc(&diff::describe(api, other, 0)),
    }
}

/// "One of: …" under a description, for fields whose type is an enum.
fn enum_values(api: &Api, ty: &TypeRef) -> String {
    let Some(def) = ty.named().and_then(|n| api.type_def(n)) else {
        return String::new();
    };
    let TypeKind::Enum(e) = &def.kind else {
        return String::new();
    };
    let values: Vec<String> = e
        .values
        .iter()
        .map(|v| format!("<code>{}</code>", esc(&v.value)))
        .collect();
    format!(
        r#"<div class="values">One of {}{}.</div>"#,
        values.join(", "),
        if e.open {
            ", or another value the service adds (open: the gateway accepts values not listed)"
        } else {
            ""
        }
    )
}

/// The rules the gateway checks a value against, beyond its type: those stated where it is
/// described, and those of the type it names.
fn rules(api: &Api, ty: &TypeRef, checks: &Checks) -> String {
    let mut said = checks.describe();
    if let Some(def) = ty.named().and_then(|n| api.type_def(n)) {
        said.extend(def.checks.describe());
    }
    if said.is_empty() {
        return String::new();
    }
    format!(
        r#"<div class="values rules">Checked: {}.</div>"#,
        esc(&said.join(", "))
    )
}

/// A struct's fields; inline object types below a field open in place, a few levels deep.
fn fields_table(api: &Api, def: &TypeDef, depth: usize) -> String {
    let TypeKind::Struct(st) = &def.kind else {
        return String::new();
    };
    let mut s = String::from(
        "<table><tr><th>field</th><th>type</th><th>required</th><th>nullable</th><th>description</th></tr>",
    );
    for f in &st.fields {
        let mut notes = f.description.as_deref().map(prose).unwrap_or_default();
        if let Some(default) = &f.default {
            let _ = write!(
                notes,
                r#"<div class="values">Default: <code>{}</code></div>"#,
                esc(&default.to_string())
            );
        }
        if f.read_only {
            notes.push_str(r#"<div class="values">Read-only.</div>"#);
        }
        notes.push_str(&enum_values(api, &f.ty));
        notes.push_str(&rules(api, &f.ty, &f.checks));
        let _ = write!(
            s,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            if f.deprecated {
                " <small>deprecated</small>"
            } else {
                ""
            },
            type_link(api, &f.ty),
            yes_no(f.required),
            if f.nullable { "yes" } else { "no" },
            notes
        );
        let inline =
            f.ty.named()
                .and_then(|n| api.type_def(n))
                .filter(|d| d.schema_name.is_none() && matches!(d.kind, TypeKind::Struct(_)));
        if let (Some(nested), true) = (inline, depth < 2) {
            let _ = write!(
                s,
                r#"<tr><td colspan="5"><details><summary>Fields of <code>{}</code></summary>{}</details></td></tr>"#,
                esc(&f.name),
                fields_table(api, nested, depth + 1)
            );
        }
    }
    s.push_str("</table>");
    if !matches!(st.extra_ty, TypeRef::Any) {
        let _ = write!(s, "<p>Other fields: {}.</p>", type_link(api, &st.extra_ty));
    }
    s
}

fn model(api: &Api, def: &TypeDef) -> String {
    let mut s = String::new();
    let origin = match &def.schema_name {
        Some(name) => format!("schema <code>{}</code>", esc(name)),
        None => format!("inline schema at <code>{}</code>", esc(&def.pointer)),
    };
    let _ = write!(
        s,
        r#"<div class="model" id="type-{name}" data-search="{search}"><h3><code>{name}</code></h3><p class="origin">{origin}{nullable}</p>"#,
        name = esc(&def.name),
        search = esc(
            &format!("{} {}", def.name, def.schema_name.as_deref().unwrap_or("")).to_lowercase()
        ),
        nullable = if def.nullable { " · may be null" } else { "" },
    );
    if let Some(title) = def
        .title
        .as_ref()
        .filter(|t| Some(*t) != def.description.as_ref())
    {
        let _ = write!(s, "<p><strong>{}</strong></p>", esc(title));
    }
    if let Some(d) = &def.description {
        s.push_str(&prose(d));
    }
    match &def.kind {
        TypeKind::Struct(st) => {
            s.push_str(&fields_table(api, def, 2));
            if st.closed {
                s.push_str(
                    "<p>The spec allows no other fields; the gateway forwards them anyway.</p>",
                );
            }
        }
        TypeKind::Enum(e) => {
            s.push_str("<table><tr><th>value</th><th>description</th></tr>");
            for v in &e.values {
                let _ = write!(
                    s,
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&v.value),
                    v.description.as_deref().map(prose).unwrap_or_default()
                );
            }
            s.push_str("</table>");
            if e.open {
                s.push_str(
                    "<p>Open (<code>modelAsString</code>): the service may use values not listed here, and the gateway accepts them.</p>",
                );
            }
        }
        TypeKind::Union(u) => {
            match &u.tag {
                Some(tag) => {
                    let _ = write!(
                        s,
                        "<p>One of these, chosen by the value of <code>{}</code>:</p>",
                        esc(tag)
                    );
                }
                None => s.push_str("<p>One of these, tried in this order:</p>"),
            }
            s.push_str("<ul>");
            for v in &u.variants {
                let tag = v
                    .tag_value
                    .as_ref()
                    .map(|t| format!("<code>{}</code>: ", esc(t)))
                    .unwrap_or_default();
                let _ = write!(s, "<li>{tag}{}</li>", type_link(api, &v.ty));
            }
            s.push_str("</ul>");
        }
        TypeKind::Alias { target } => {
            let _ = write!(
                s,
                "<p>Type: {}</p>{}{}",
                type_link(api, target),
                enum_values(api, target),
                rules(api, target, &def.checks)
            );
        }
        TypeKind::Intersection { parts, .. } => {
            let links: Vec<String> = parts.iter().map(|p| type_link(api, p)).collect();
            let _ = write!(s, "<p>All of: {}.</p>", links.join(", "));
        }
        TypeKind::Untyped { reason } => {
            let _ = write!(
                s,
                "<p>Any JSON value ({} cannot be typed yet).</p>",
                esc(reason)
            );
        }
    }
    s.push_str("</div>");
    s
}

// ----- what changed -----

fn signature(sig: &Option<Signature>) -> String {
    match sig {
        Some(s) => format!(
            "{}{}",
            esc(&s.ty),
            if s.required { ", required" } else { "" }
        ),
        None => "—".into(),
    }
}

fn changes_page(d: &VersionDiff) -> String {
    let mut main = String::new();
    let _ = write!(
        main,
        r#"<h1>What changed from {from} to {to}</h1><p>Operations are matched by method and path. For an operation in both, parameters and the fields of the JSON request and success response are compared; nested fields are written as paths (<code>messages[].content</code>, <code>tools[] (type=function).function</code>).</p><p>{a} operations only in {from}, {b} only in {to}, {c} changed, {u} unchanged.</p>"#,
        from = esc(&d.from),
        to = esc(&d.to),
        a = d.only_in_from.len(),
        b = d.only_in_to.len(),
        c = d.changed.len(),
        u = d.unchanged,
    );
    for o in &d.overlays {
        let _ = write!(
            main,
            r#"<p class="overlaid">The {v} spec is compared as the gateway enforces it: with the overlay <code>{file}</code> ({title}, {n} actions) applied; a difference may come from it.</p>"#,
            v = esc(&o.version),
            file = esc(&o.file),
            title = esc(&o.title),
            n = o.actions,
        );
    }
    if d.deployment_moved {
        main.push_str("<p class=\"moved\">The deployment moved: one of these versions names it in the path (<code>/deployments/{deployment-id}/…</code>), the other in the request body's <code>model</code> field. Paths are matched without that segment, and the <code>deployment-id</code> parameter is not listed as a change.</p>");
    }
    for (title, version, ops, class) in [
        (&d.from, &d.from, &d.only_in_from, "removed"),
        (&d.to, &d.to, &d.only_in_to, "added"),
    ] {
        let _ = write!(
            main,
            r#"<h2 id="only-in-{}">Only in {}</h2>"#,
            esc(&file_safe(title)),
            esc(title)
        );
        if ops.is_empty() {
            main.push_str("<p>None.</p>");
            continue;
        }
        main.push_str("<table><tr><th>method</th><th>path</th><th>operation</th></tr>");
        for op in ops.iter() {
            let _ = write!(
                main,
                r##"<tr class="{class}"><td>{m}</td><td><code>{p}</code></td><td><a href="{page}#op-{id}">{id}</a></td></tr>"##,
                m = op.method.as_str(),
                p = esc(&op.path),
                page = esc(&page_name(version)),
                id = esc(&op.operation_id),
            );
        }
        main.push_str("</table>");
    }
    main.push_str(r#"<h2 id="changed">Changed in both</h2>"#);
    if d.changed.is_empty() {
        main.push_str("<p>None.</p>");
    }
    for op in &d.changed {
        let _ = write!(
            main,
            r##"<h3 id="changed-{id}">{m} <code>{p}</code> <small><a href="{from_page}#op-{id_from}">{id_from}</a> → <a href="{to_page}#op-{id}">{id}</a></small></h3><table><tr><th>where</th><th>name</th><th>change</th><th>{from}</th><th>{to}</th></tr>"##,
            id = esc(&op.to.operation_id),
            id_from = esc(&op.from.operation_id),
            m = op.to.method.as_str(),
            p = esc(&op.to.path),
            from_page = esc(&page_name(&d.from)),
            to_page = esc(&page_name(&d.to)),
            from = esc(&d.from),
            to = esc(&d.to),
        );
        for c in &op.changes {
            let (what, class) = match (&c.before, &c.after) {
                (None, Some(_)) => ("added", "added"),
                (Some(_), None) => ("removed", "removed"),
                (Some(b), Some(a)) if b.ty == a.ty => ("now required", "changed"),
                _ => ("type changed", "changed"),
            };
            let what = match (&c.before, &c.after) {
                (Some(b), Some(a)) if b.ty == a.ty && b.required && !a.required => "now optional",
                _ => what,
            };
            let _ = write!(
                main,
                r#"<tr class="{class}"><td>{}</td><td><code>{}</code></td><td>{what}</td><td>{}</td><td>{}</td></tr>"#,
                c.place.as_str(),
                esc(&c.name),
                signature(&c.before),
                signature(&c.after)
            );
        }
        main.push_str("</table>");
    }
    let header = format!(
        r#"<a href="{}">{}</a><a href="{}">{}</a>"#,
        esc(&page_name(&d.from)),
        esc(&d.from),
        esc(&page_name(&d.to)),
        esc(&d.to)
    );
    frame(
        &format!("{} → {} · aoai-gateway", d.from, d.to),
        &header,
        "",
        &main,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_escapes_and_keeps_code() {
        assert_eq!(
            prose("Use `a<b>`.\n\nNext"),
            "<p>Use <code>a&lt;b&gt;</code>.</p><p>Next</p>"
        );
        assert_eq!(
            prose("```\nx < 1\n```"),
            "<pre><code>x &lt; 1\n</code></pre>"
        );
        assert_eq!(
            unlink("See [List models](/docs/models) and [x] or a[1]."),
            "See List models and [x] or a[1]."
        );
    }
}
