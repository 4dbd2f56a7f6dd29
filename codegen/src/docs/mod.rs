//! Route docs as static HTML pages, rendered from the intermediate model at build time, so the
//! docs cannot drift from the routes the gateway serves.
//!
//! Pages are self-contained: inline CSS and JavaScript (the files of `assets/`, included at
//! compile time: the filter box and the "Try it" panels, [`try_it`], which call only the
//! gateway that served the page), no fonts, no CDN. The base path is written as [`BASE_PATH`]
//! and replaced by the gateway at start-up, because it is configured at run time.
//!
//! Every page is built as [`Html`](html::Html), which escapes every piece of text put in it:
//! a spec's names and descriptions reach a page only as text. One file per page kind:
//! - `index.html` ([`index`]): the compiled api-versions and the comparisons between them;
//! - `<version>.html` ([`version`]): operations grouped by tag, each with its parameters,
//!   request body and responses, and every model as a linked field table;
//! - `changes-<a>-to-<b>.html` ([`changes`]): what changed from one api-version to another
//!   ([`crate::diff`]).
//!
//! [`markdown`] renders the specs' descriptions; [`frame`] is what every page shares.

mod changes;
mod frame;
pub mod html;
mod index;
mod markdown;
mod try_it;
mod version;

use crate::diff;
use crate::ir::Api;

/// Stands for the gateway's base path in the pages.
pub const BASE_PATH: &str = "@@AOAI_BASE_PATH@@";

/// (file name, HTML) of every page.
pub fn pages(apis: &[Api]) -> Vec<(String, String)> {
    let mut pages = vec![("index.html".to_string(), index::page(apis).into_string())];
    for api in apis {
        pages.push((
            page_name(&api.version),
            version::page(api, apis).into_string(),
        ));
    }
    for (from, to) in pairs(apis) {
        pages.push((
            changes_name(&from.version, &to.version),
            changes::page(&diff::diff(from, to)).into_string(),
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
