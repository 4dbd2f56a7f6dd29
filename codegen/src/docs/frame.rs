//! What every page shares: the document around its content, the style and the scripts.

use super::html::Html;
use super::page_name;
use crate::ir::Api;

const STYLE: &str = include_str!("assets/docs.css");
const FILTER_SCRIPT: &str = include_str!("assets/filter.js");
const TRY_IT_SCRIPT: &str = include_str!("assets/try_it.js");

/// A whole page: `header` goes after the brand link, `nav` (if any) beside `main`.
pub(super) fn frame(title: &str, header: &Html, nav: &Html, main: &Html, filter: bool) -> Html {
    let mut page = Html::new();
    page.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
        .text(title)
        .raw("</title>\n<style>\n")
        .raw(STYLE)
        .raw("</style>\n</head>\n<body>\n<header><a class=\"brand\" href=\"index.html\">aoai-gateway route docs</a>")
        .html(header);
    if filter {
        page.raw(r#"<input id="filter" type="search" placeholder="Filter operations and models…" aria-label="Filter">"#);
    }
    page.raw("</header>\n");
    if nav.is_empty() {
        page.raw("<main>").html(main).raw("</main>");
    } else {
        page.raw(r#"<div class="layout"><nav>"#)
            .html(nav)
            .raw("</nav><main>")
            .html(main)
            .raw("</main></div>");
    }
    page.raw("\n<script>\n")
        .raw(FILTER_SCRIPT)
        .raw(TRY_IT_SCRIPT)
        .raw("</script>\n</body>\n</html>\n");
    page
}

/// The api-version selector of a version page's header.
pub(super) fn version_switcher(current: &str, apis: &[Api]) -> Html {
    let mut s = Html::new();
    s.raw(r#"<label>api-version <select id="version" onchange="location.href = this.value">"#);
    for api in apis {
        s.raw(r#"<option value=""#).text(&page_name(&api.version));
        s.raw(if api.version == current {
            r#"" selected>"#
        } else {
            r#"">"#
        });
        s.text(&api.version).raw("</option>");
    }
    s.raw("</select></label>");
    s
}
