//! HTML that cannot forget to escape.
//!
//! [`Html`] is markup the renderer made: it grows only by markup written in the source
//! ([`Html::raw`] takes a `&'static str`, so no text from a spec can reach it), by text, which
//! is escaped as it is added ([`Html::text`], [`Html::display`]), and by other `Html`. A spec's
//! names and descriptions hold `<`, quotes and `</textarea>` as often as any text does, on pages
//! whose "Try it" panel holds a subscription key; no page is built any other way.

use std::fmt::{self, Write};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    pub fn new() -> Html {
        Html::default()
    }

    /// Markup written in the source.
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// Text, escaped for an element's content or a quoted attribute value.
    pub fn text(&mut self, text: &str) -> &mut Html {
        escape_into(&mut self.0, text);
        self
    }

    /// A value's `Display`, escaped like text.
    pub fn display(&mut self, value: impl fmt::Display) -> &mut Html {
        let mut escaping = Escaping(&mut self.0);
        let _ = write!(escaping, "{value}");
        self
    }

    /// Markup the renderer made elsewhere.
    pub fn html(&mut self, markup: &Html) -> &mut Html {
        self.0.push_str(&markup.0);
        self
    }

    /// An element with text content: `<tag>text</tag>`; `open` is the opening tag as written.
    pub fn element(&mut self, open: &'static str, text: &str, close: &'static str) -> &mut Html {
        self.raw(open).text(text).raw(close)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The page, finished.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// `text`, escaped.
pub fn text(text: &str) -> Html {
    let mut html = Html::new();
    html.text(text);
    html
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Escapes what is written through it.
struct Escaping<'a>(&'a mut String);

impl Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_markup_is_not() {
        let mut html = Html::new();
        html.raw("<p title=\"")
            .text("a \"quoted\" <b>")
            .raw("\">")
            .display(format_args!("{}</textarea>", 1 < 2))
            .raw("</p>");
        assert_eq!(
            html.into_string(),
            "<p title=\"a &quot;quoted&quot; &lt;b&gt;\">true&lt;/textarea&gt;</p>"
        );
    }
}
