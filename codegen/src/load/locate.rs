//! Where a JSON pointer sits in a spec's text: its line and column, for messages.
//!
//! The tree the generator reads keeps no positions (neither serde_json nor serde_yaml hands them
//! to a visitor), so a message that names a pointer finds its line afterwards, in the text: JSON
//! by a small scanner that follows the pointer's tokens and skips everything else; YAML by
//! indentation, as Azure's documents are written (block style; `- ` items; quoted keys). Where
//! the text is written in a way the YAML reader does not follow (flow collections, an alias),
//! the place of the deepest token it found is given, which is still the right neighbourhood.
//! Only messages pay for this, never a build that succeeds.

/// The 1-based line and column of the node `pointer` (`#/a/b`) names, or of its deepest
/// ancestor the text shows; `None` when not even the first token is found.
pub fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let tokens: Vec<String> = pointer
        .strip_prefix('#')
        .unwrap_or(pointer)
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    if tokens.is_empty() {
        return None;
    }
    let offset = if text.trim_start().starts_with('{') {
        json(text, &tokens)
    } else {
        yaml(text, &tokens)
    }?;
    Some(line_column(text, offset))
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

// ----- JSON -----

struct Scanner<'t> {
    s: &'t [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// A string at the cursor, unescaped enough to compare with a key (`\"`, `\\`, `\/`).
    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escaped = self.peek()?;
                    self.i += 1;
                    out.push(match escaped {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                other => out.push(other),
            }
        }
        None
    }

    /// Skips one value of any kind.
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                while let Some(b) = self.peek() {
                    match b {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                None
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Skips a value and the comma after it; `false` when there is no next item.
    fn pass_item(&mut self) -> bool {
        if self.skip().is_none() {
            return false;
        }
        self.ws();
        if self.peek() != Some(b',') {
            return false;
        }
        self.i += 1;
        true
    }

    /// Follows `tokens` from the value at the cursor; `here` is where the current node is
    /// written (its key), the answer when nothing deeper is found.
    fn find(&mut self, tokens: &[String], here: usize) -> usize {
        let Some((token, rest)) = tokens.split_first() else {
            return here;
        };
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                loop {
                    self.ws();
                    let at = self.i;
                    let Some(key) = self.string() else {
                        return here;
                    };
                    self.ws();
                    if self.peek() != Some(b':') {
                        return here;
                    }
                    self.i += 1;
                    if key == *token {
                        return self.find(rest, at);
                    }
                    if !self.pass_item() {
                        return here;
                    }
                }
            }
            Some(b'[') => {
                let Ok(wanted) = token.parse::<usize>() else {
                    return here;
                };
                self.i += 1;
                for _ in 0..wanted {
                    if !self.pass_item() {
                        return here;
                    }
                }
                self.ws();
                let at = self.i;
                self.find(rest, at)
            }
            _ => here,
        }
    }
}

fn json(text: &str, tokens: &[String]) -> Option<usize> {
    let mut scanner = Scanner {
        s: text.as_bytes(),
        i: 0,
    };
    scanner.ws();
    let start = scanner.i;
    let found = scanner.find(tokens, start);
    (found != start).then_some(found)
}

// ----- YAML -----

/// One logical line of block YAML: a `- ` item marker, or a mapping entry (`key: …`), with the
/// column it starts at. `- key: v` gives both, the entry two columns in.
#[derive(Debug)]
struct Entry<'t> {
    indent: usize,
    offset: usize,
    item: bool,
    key: Option<std::borrow::Cow<'t, str>>,
}

fn entries(text: &str) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut indent = body.len() - trimmed.len();
        let mut rest = trimmed;
        while let Some(after) =
            rest.strip_prefix("- ")
                .or(if rest == "-" { Some("") } else { None })
        {
            out.push(Entry {
                indent,
                offset: start + indent,
                item: true,
                key: None,
            });
            let inner = after.trim_start_matches(' ');
            indent += rest.len() - inner.len();
            rest = inner;
            if rest.is_empty() {
                break;
            }
        }
        if rest.is_empty() {
            continue;
        }
        out.push(Entry {
            indent,
            offset: start + indent,
            item: false,
            key: yaml_key(rest),
        });
    }
    out
}

/// The key of `key: value`, `"key": value` or `'key': value`.
fn yaml_key(line: &str) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    if let Some(quoted) = line.strip_prefix('"') {
        let end = quoted.find("\":")?;
        return Some(Cow::Owned(quoted[..end].replace("\\\"", "\"")));
    }
    if let Some(quoted) = line.strip_prefix('\'') {
        let end = quoted.find("':")?;
        return Some(Cow::Owned(quoted[..end].replace("''", "'")));
    }
    let end = line
        .find(": ")
        .or_else(|| line.ends_with(':').then(|| line.len() - 1))?;
    Some(Cow::Borrowed(line[..end].trim_end()))
}

fn yaml(text: &str, tokens: &[String]) -> Option<usize> {
    let lines = entries(text);
    // The node found so far: the index of its entry, the indentation of its key (children sit
    // deeper; a list may start at the key's own indentation), and whether it is a list item.
    let mut at: Option<usize> = None;
    let mut parent_indent: isize = -1;
    let mut parent_is_item = false;
    let mut from = 0;
    for token in tokens {
        let item = token.parse::<usize>().ok();
        let mut found = None;
        let mut child_indent: Option<usize> = None;
        let mut items_seen = 0;
        let mut i = from;
        while i < lines.len() {
            let e = &lines[i];
            let deeper = e.indent as isize > parent_indent;
            // `key:` then `- item` at the key's own indentation is still the key's list.
            let list_at_key =
                e.item && e.indent as isize == parent_indent && at.is_some() && !parent_is_item;
            if !deeper && !list_at_key {
                break;
            }
            let level = *child_indent.get_or_insert(e.indent);
            if e.indent == level {
                match (item, e.item, &e.key) {
                    (Some(n), true, _) => {
                        if items_seen == n {
                            found = Some(i);
                            break;
                        }
                        items_seen += 1;
                    }
                    (_, false, Some(key)) if key == token => {
                        found = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        let Some(index) = found else {
            break;
        };
        let e = &lines[index];
        at = Some(index);
        parent_indent = e.indent as isize;
        parent_is_item = e.item;
        from = index + 1;
    }
    at.map(|i| lines[i].offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "openapi: 3.0.0\npaths:\n  /a/b:\n    post:\n      description: |-\n        paths: not a key\n      parameters:\n      - in: path\n        name: x\n      - $ref: '#/p'\n      \"x-quoted\": 1\ncomponents:\n  schemas:\n    A:\n      required:\n        - id\n        - type\n";

    #[test]
    fn yaml_keys_items_and_quoted_keys() {
        assert_eq!(locate(YAML, "#/paths/~1a~1b/post"), Some((4, 5)));
        assert_eq!(
            locate(YAML, "#/paths/~1a~1b/post/parameters/0/name"),
            Some((9, 9))
        );
        assert_eq!(
            locate(YAML, "#/paths/~1a~1b/post/parameters/1"),
            Some((10, 7))
        );
        assert_eq!(locate(YAML, "#/paths/~1a~1b/post/x-quoted"), Some((11, 7)));
        assert_eq!(
            locate(YAML, "#/components/schemas/A/required/1"),
            Some((17, 9))
        );
        // Not there: the deepest ancestor that is.
        assert_eq!(locate(YAML, "#/components/schemas/B"), Some((13, 3)));
        // A block scalar's text is not a key.
        assert_eq!(locate(YAML, "#/paths/~1a~1b/post/paths"), Some((4, 5)));
    }

    #[test]
    fn json_pretty_and_minified() {
        let pretty = "{\n  \"paths\": {\n    \"/a\": {\n      \"get\": {\"tags\": [\"x\", {\"k\": 1}]}\n    }\n  }\n}";
        assert_eq!(locate(pretty, "#/paths/~1a/get"), Some((4, 7)));
        assert_eq!(locate(pretty, "#/paths/~1a/get/tags/1/k"), Some((4, 30)));
        let minified = "{\"a\":{\"b\\\"c\":[1,{\"d\":2}]}}";
        assert_eq!(locate(minified, "#/a/b\"c/1/d"), Some((1, 18)));
        assert_eq!(locate(minified, "#/nope"), None);
    }
}
