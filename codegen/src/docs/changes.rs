//! `changes-<a>-to-<b>.html`: what changed from one api-version to another.

use super::file_safe;
use super::frame::frame;
use super::html::Html;
use super::page_name;
use crate::diff::{Signature, VersionDiff};

fn signature(sig: &Option<Signature>) -> Html {
    let mut s = Html::new();
    match sig {
        Some(sig) => {
            s.text(&sig.ty);
            if sig.required {
                s.raw(", required");
            }
        }
        None => {
            s.raw("—");
        }
    }
    s
}

pub(super) fn page(d: &VersionDiff) -> Html {
    let mut main = Html::new();
    main.raw("<h1>What changed from ")
        .text(&d.from)
        .raw(" to ")
        .text(&d.to)
        .raw("</h1><p>Operations are matched by method and path. For an operation in both, parameters and the fields of the JSON request and success response are compared; nested fields are written as paths (<code>messages[].content</code>, <code>tools[] (type=function).function</code>).</p><p>")
        .display(d.only_in_from.len())
        .raw(" operations only in ")
        .text(&d.from)
        .raw(", ")
        .display(d.only_in_to.len())
        .raw(" only in ")
        .text(&d.to)
        .raw(", ")
        .display(d.changed.len())
        .raw(" changed, ")
        .display(d.unchanged)
        .raw(" unchanged.</p>");
    for o in &d.overlays {
        main.raw(r#"<p class="overlaid">The "#)
            .text(&o.version)
            .raw(" spec is compared as the gateway enforces it: with the overlay <code>")
            .text(&o.file)
            .raw("</code> (")
            .text(&o.title)
            .raw(", ")
            .display(o.actions)
            .raw(" actions) applied; a difference may come from it.</p>");
    }
    if d.deployment_moved {
        main.raw("<p class=\"moved\">The deployment moved: one of these versions names it in the path (<code>/deployments/{deployment-id}/…</code>), the other in the request body's <code>model</code> field. Paths are matched without that segment, and the <code>deployment-id</code> parameter is not listed as a change.</p>");
    }
    for (version, ops, class) in [
        (&d.from, &d.only_in_from, r#"<tr class="removed"><td>"#),
        (&d.to, &d.only_in_to, r#"<tr class="added"><td>"#),
    ] {
        main.raw(r#"<h2 id="only-in-"#)
            .text(&file_safe(version))
            .raw(r#"">Only in "#)
            .text(version)
            .raw("</h2>");
        if ops.is_empty() {
            main.raw("<p>None.</p>");
            continue;
        }
        main.raw("<table><tr><th>method</th><th>path</th><th>operation</th></tr>");
        for op in ops.iter() {
            main.raw(class)
                .text(op.method.as_str())
                .element("</td><td><code>", &op.path, "</code></td><td>")
                .raw(r#"<a href=""#)
                .text(&page_name(version))
                .raw("#op-")
                .text(&op.operation_id)
                .raw(r#"">"#)
                .text(&op.operation_id)
                .raw("</a></td></tr>");
        }
        main.raw("</table>");
    }
    main.raw(r#"<h2 id="changed">Changed in both</h2>"#);
    if d.changed.is_empty() {
        main.raw("<p>None.</p>");
    }
    for op in &d.changed {
        main.raw(r#"<h3 id="changed-"#)
            .text(&op.to.operation_id)
            .raw(r#"">"#)
            .text(op.to.method.as_str())
            .element(" <code>", &op.to.path, "</code> <small>")
            .raw(r#"<a href=""#)
            .text(&page_name(&d.from))
            .raw("#op-")
            .text(&op.from.operation_id)
            .raw(r#"">"#)
            .text(&op.from.operation_id)
            .raw(r#"</a> → <a href=""#)
            .text(&page_name(&d.to))
            .raw("#op-")
            .text(&op.to.operation_id)
            .raw(r#"">"#)
            .text(&op.to.operation_id)
            .raw("</a></small></h3><table><tr><th>where</th><th>name</th><th>change</th>")
            .element("<th>", &d.from, "</th>")
            .element("<th>", &d.to, "</th></tr>");
        for c in &op.changes {
            let (what, class) = match (&c.before, &c.after) {
                (None, Some(_)) => ("added", r#"<tr class="added"><td>"#),
                (Some(_), None) => ("removed", r#"<tr class="removed"><td>"#),
                (Some(b), Some(a)) if b.ty == a.ty => {
                    if b.required && !a.required {
                        ("now optional", r#"<tr class="changed"><td>"#)
                    } else {
                        ("now required", r#"<tr class="changed"><td>"#)
                    }
                }
                _ => ("type changed", r#"<tr class="changed"><td>"#),
            };
            main.raw(class)
                .text(c.place.as_str())
                .element("</td><td><code>", &c.name, "</code></td><td>")
                .text(what)
                .raw("</td><td>")
                .html(&signature(&c.before))
                .raw("</td><td>")
                .html(&signature(&c.after))
                .raw("</td></tr>");
        }
        main.raw("</table>");
    }
    let mut header = Html::new();
    for version in [&d.from, &d.to] {
        header
            .raw(r#"<a href=""#)
            .text(&page_name(version))
            .raw(r#"">"#)
            .text(version)
            .raw("</a>");
    }
    frame(
        &format!("{} → {} · aoai-gateway", d.from, d.to),
        &header,
        &Html::new(),
        &main,
        false,
    )
}
