//! The specs' descriptions are Markdown: what matters for reading is rendered (paragraphs,
//! `code`, fenced blocks), and every character of the text is escaped.

use super::html::Html;

/// A description as paragraphs and code blocks.
pub(super) fn prose(text: &str) -> Html {
    let mut out = Html::new();
    let mut in_fence = false;
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, out: &mut Html| {
        if !paragraph.is_empty() {
            out.raw("<p>")
                .html(&with_code(&unlink(&paragraph.join(" "))))
                .raw("</p>");
            paragraph.clear();
        }
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            flush(&mut paragraph, &mut out);
            out.raw(if in_fence {
                "</code></pre>"
            } else {
                "<pre><code>"
            });
            in_fence = !in_fence;
        } else if in_fence {
            out.text(line).raw("\n");
        } else if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push(line.trim());
        }
    }
    flush(&mut paragraph, &mut out);
    if in_fence {
        out.raw("</code></pre>");
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

/// Text with `` `x` `` spans as `<code>x</code>`.
pub(super) fn with_code(text: &str) -> Html {
    let mut out = Html::new();
    let mut open = false;
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.raw(if open { "</code>" } else { "<code>" });
            open = !open;
        }
        out.text(part);
    }
    if open {
        out.raw("</code>");
    }
    out
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_escapes_and_keeps_code() {
        assert_eq!(
            prose("Use `a<b>`.\n\nNext").into_string(),
            "<p>Use <code>a&lt;b&gt;</code>.</p><p>Next</p>"
        );
        assert_eq!(
            prose("```\nx < 1\n```").into_string(),
            "<pre><code>x &lt; 1\n</code></pre>"
        );
        assert_eq!(
            unlink("See [List models](/docs/models) and [x] or a[1]."),
            "See List models and [x] or a[1]."
        );
    }
}
