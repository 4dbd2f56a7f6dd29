//! `index.html`: the compiled api-versions and the comparisons between them.

use super::frame::frame;
use super::html::Html;
use super::{BASE_PATH, changes_name, page_name, pairs};
use crate::ir::Api;

pub(super) fn page(apis: &[Api]) -> Html {
    let mut main = Html::new();
    main.raw("<h1>Route docs</h1><p>What this gateway serves for each compiled api-version, generated from the same specs as its routes. Clients select the version with <code>?api-version=</code>; below a mount such as <code>/v1</code> it may be left out.</p><table><tr><th>api-version</th><th>served under</th><th>operations</th><th>spec</th><th>served spec</th></tr>");
    for api in apis {
        main.raw(r#"<tr><td><a href=""#)
            .text(&page_name(&api.version))
            .raw(r#"">"#)
            .text(&api.version)
            .raw("</a></td><td><code>")
            .raw(BASE_PATH)
            .text(&api.mount)
            .raw("</code></td><td>")
            .display(api.operations.len())
            .raw("</td><td><code>spec/")
            .text(&api.source)
            .raw(r#"</code></td><td><a href="/openapi/"#)
            .text(&api.version)
            .raw(r#".json">/openapi/"#)
            .text(&api.version)
            .raw(".json</a></td></tr>");
    }
    main.raw("</table>");
    let pairs = pairs(apis);
    if !pairs.is_empty() {
        main.raw("<h2>What changed between versions</h2><ul>");
        for (a, b) in pairs {
            main.raw(r#"<li><a href=""#)
                .text(&changes_name(&a.version, &b.version))
                .raw(r#"">"#)
                .text(&a.version)
                .raw(" → ")
                .text(&b.version)
                .raw("</a></li>");
        }
        main.raw("</ul>");
    }
    frame(
        "aoai-gateway route docs",
        &Html::new(),
        &Html::new(),
        &main,
        false,
    )
}
