//! A JSON lexer that is fed a document in pieces, however the pieces fall, and reports its
//! structure as it goes: members' keys, where each value begins and ends, the text of strings.
//!
//! It exists so that the gateway can read a few members of a body as the body passes (the
//! `usage` of an answer, the top-level members of a request) without holding the body, copying
//! it or parsing what it does not need: it keeps no more than the current depth (as bits), a key
//! being read and a value the caller asked to capture, and allocates nothing else. A value the
//! caller has no use for is skipped ([`Action::Skip`], at its key or at its start): its brackets
//! counted and its strings jumped over, with no events, which is most of a large body. It does
//! not check that the document is valid JSON (the gateway's validator does that for requests,
//! the backend for its answers): it follows the structure, and a document that breaks it stops
//! the lexer ([`Lexer::broken`]) rather than misleading it.
//!
//! Offsets are absolute: the first byte ever fed is 0, unless the caller places a piece
//! elsewhere with [`Lexer::feed_at`] (the data of a server-sent event, whose lines are fed
//! without their `data:` prefixes).

use std::ops::Range;

/// Nesting deeper than this stops the lexer: nothing the gateway reads is that deep.
const MAX_DEPTH: usize = 128;
/// Keys longer than this are reported without their name: no key the gateway reads is that
/// long.
const MAX_KEY: usize = 64;

/// What a value is, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    /// A number, `true`, `false` or `null`: `first` is its first byte.
    Literal {
        first: u8,
    },
}

/// What the lexer found. Depth 0 is the document's own value; the members of a top-level
/// object are at depth 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A member's key in an object at `depth`: its name, unescaped (`None` when longer than the
    /// lexer keeps, or not valid), and where it is written, quotes included. [`Action::Skip`]
    /// skips the member's value: no event is reported for it, not even its end.
    Key {
        depth: usize,
        name: Option<&'a [u8]>,
        range: Range<usize>,
    },
    /// A value begins at `at`.
    Begin { depth: usize, at: usize, kind: Kind },
    /// Part of a string value's content, as written (escapes not undone).
    Text { depth: usize, piece: &'a [u8] },
    /// A value ends just before `end`; with the bytes of the whole value when the caller asked
    /// for them at its [`Event::Begin`] and they fitted.
    End {
        depth: usize,
        end: usize,
        captured: Option<&'a [u8]>,
    },
}

/// What the caller wants done with a value that begins (or whose key was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Report what is inside it.
    Continue,
    /// Report nothing inside it (no keys, no text), only its end; at a key, not even that.
    Skip,
    /// Keep the value's bytes, up to this many, and hand them over at its end; nothing inside
    /// it is reported.
    Capture(usize),
}

/// The bytes that matter while a value is skipped: quotes and brackets.
pub(super) const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (the document's, an item's or a member's).
    Value,
    /// The first item of an array, or its end.
    ItemOrClose,
    /// The first key of an object, or its end.
    KeyOrClose,
    /// A key after a comma.
    Key,
    Colon,
    /// After a value inside a container: a comma or the container's end.
    CommaOrClose,
    /// After the document's value: nothing but whitespace.
    Done,
}

struct Str {
    /// Whether this string is a key.
    key: bool,
    /// Its text is not reported.
    quiet: bool,
    start: usize,
    /// The previous byte was a backslash.
    escaped: bool,
}

/// A container being skipped.
struct Skip {
    /// Brackets open inside it, its own included.
    depth: u32,
    string: bool,
    escaped: bool,
}

struct Capture {
    depth: usize,
    limit: usize,
    overflowed: bool,
}

pub struct Lexer {
    /// The absolute offset of the next byte.
    at: usize,
    /// Open containers, bit `d` set for an object at depth `d`.
    objects: u128,
    depth: usize,
    expect: Expect,
    string: Option<Str>,
    skip: Option<Skip>,
    /// Inside a number or a `true`/`false`/`null`.
    literal: bool,
    /// The value that begins next was skipped at its key: it reports nothing.
    unheard: bool,
    /// The value under way reports nothing, not even its end.
    silent: bool,
    /// The key being read, as written.
    key: [u8; MAX_KEY],
    key_len: usize,
    key_overflow: bool,
    key_escaped: bool,
    capture: Option<Capture>,
    /// What the capture under way has collected; kept from one capture to the next.
    captured: Vec<u8>,
    broken: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new()
    }
}

impl Lexer {
    pub fn new() -> Lexer {
        Lexer {
            at: 0,
            objects: 0,
            depth: 0,
            expect: Expect::Value,
            string: None,
            skip: None,
            literal: false,
            unheard: false,
            silent: false,
            key: [0; MAX_KEY],
            key_len: 0,
            key_overflow: false,
            key_escaped: false,
            capture: None,
            captured: Vec::new(),
            broken: false,
        }
    }

    /// Ready for another document, keeping what it has allocated.
    pub fn reset(&mut self) {
        let mut captured = std::mem::take(&mut self.captured);
        captured.clear();
        *self = Lexer::new();
        self.captured = captured;
    }

    /// The document broke the structure the lexer follows (or nested too deep); it reports
    /// nothing more.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The document's value has ended.
    pub fn done(&self) -> bool {
        self.expect == Expect::Done && !self.literal
    }

    /// Whether the container at the current depth is an object.
    fn in_object(&self) -> bool {
        self.depth > 0 && self.objects & (1 << (self.depth - 1)) != 0
    }

    fn push(&mut self, object: bool) {
        if object {
            self.objects |= 1 << self.depth;
        } else {
            self.objects &= !(1 << self.depth);
        }
        self.depth += 1;
    }

    /// Feeds the next piece, which starts at absolute offset `at`.
    pub fn feed_at(&mut self, at: usize, piece: &[u8], on: &mut impl FnMut(Event<'_>) -> Action) {
        self.at = at;
        self.feed(piece, on);
    }

    /// Feeds the next piece of the document.
    pub fn feed(&mut self, piece: &[u8], on: &mut impl FnMut(Event<'_>) -> Action) {
        let base = self.at;
        // Where in `piece` the capture in progress started collecting.
        let mut mark = self.capture.as_ref().map(|_| 0);
        let mut i = 0;
        while i < piece.len() && !self.broken {
            if self.skip.is_some() {
                i = self.skipping(piece, i, base, &mut mark, on);
                continue;
            }
            if self.string.is_some() {
                i = self.in_string(piece, i, base, &mut mark, on);
                continue;
            }
            let b = piece[i];
            if self.literal {
                if is_literal_byte(b) {
                    i += 1;
                    continue;
                }
                self.literal = false;
                self.end_value(base + i, piece, &mut mark, on);
                // The delimiter is read below.
            }
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => match self.expect {
                    Expect::KeyOrClose | Expect::Key => {
                        self.key_len = 0;
                        self.key_overflow = false;
                        self.key_escaped = false;
                        self.string = Some(Str {
                            key: true,
                            quiet: false,
                            start: base + i,
                            escaped: false,
                        });
                    }
                    Expect::Value | Expect::ItemOrClose => {
                        let action = self.begin(base + i, Kind::String, i, &mut mark, on);
                        self.string = Some(Str {
                            key: false,
                            quiet: action != Action::Continue,
                            start: base + i,
                            escaped: false,
                        });
                    }
                    _ => self.broken = true,
                },
                b'{' | b'[' => {
                    if !matches!(self.expect, Expect::Value | Expect::ItemOrClose)
                        || self.depth >= MAX_DEPTH
                    {
                        self.broken = true;
                        continue;
                    }
                    let object = b == b'{';
                    let kind = if object { Kind::Object } else { Kind::Array };
                    if self.begin(base + i, kind, i, &mut mark, on) == Action::Continue {
                        self.push(object);
                        self.expect = if object {
                            Expect::KeyOrClose
                        } else {
                            Expect::ItemOrClose
                        };
                    } else {
                        self.skip = Some(Skip {
                            depth: 1,
                            string: false,
                            escaped: false,
                        });
                    }
                }
                b'}' | b']' => {
                    let object = b == b'}';
                    let closes = match self.expect {
                        Expect::KeyOrClose => object,
                        Expect::ItemOrClose => !object,
                        Expect::CommaOrClose => self.depth > 0 && self.in_object() == object,
                        _ => false,
                    };
                    if !closes || self.depth == 0 {
                        self.broken = true;
                        continue;
                    }
                    self.depth -= 1;
                    self.end_value(base + i + 1, piece, &mut mark, on);
                }
                b':' => {
                    if self.expect != Expect::Colon {
                        self.broken = true;
                        continue;
                    }
                    self.expect = Expect::Value;
                }
                b',' => {
                    if self.expect != Expect::CommaOrClose {
                        self.broken = true;
                        continue;
                    }
                    self.expect = if self.in_object() {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                }
                first if is_literal_byte(first) => {
                    if !matches!(self.expect, Expect::Value | Expect::ItemOrClose) {
                        self.broken = true;
                        continue;
                    }
                    self.begin(base + i, Kind::Literal { first }, i, &mut mark, on);
                    self.literal = true;
                }
                _ => self.broken = true,
            }
            i += 1;
        }
        self.at = base + piece.len();
        if let (Some(from), Some(capture)) = (mark, self.capture.as_mut()) {
            collect(capture, &mut self.captured, &piece[from..]);
        }
    }

    /// The document has ended: a number still being read ends here.
    pub fn finish(&mut self, on: &mut impl FnMut(Event<'_>) -> Action) {
        if self.literal && !self.broken {
            self.literal = false;
            let mut mark = None;
            self.end_value(self.at, &[], &mut mark, on);
        }
    }

    /// Reads inside a string from `piece[i]`; returns where reading goes on.
    fn in_string(
        &mut self,
        piece: &[u8],
        mut i: usize,
        base: usize,
        mark: &mut Option<usize>,
        on: &mut impl FnMut(Event<'_>) -> Action,
    ) -> usize {
        let Some(string) = self.string.as_mut() else {
            return i;
        };
        let from = i;
        let close = loop {
            if string.escaped {
                string.escaped = false;
                i += 1;
                if i >= piece.len() {
                    break None;
                }
                continue;
            }
            match quote_or_backslash(&piece[i..]) {
                None => {
                    i = piece.len();
                    break None;
                }
                Some(j) if piece[i + j] == b'\\' => {
                    string.escaped = true;
                    if string.key {
                        self.key_escaped = true;
                    }
                    i += j + 1;
                    if i >= piece.len() {
                        break None;
                    }
                }
                Some(j) => break Some(i + j),
            }
        };
        let text = &piece[from..close.unwrap_or(i).min(piece.len())];
        let (key, quiet, start) = (string.key, string.quiet, string.start);
        if key {
            let len = self.key_len;
            match self.key.get_mut(len..len + text.len()) {
                Some(room) if !self.key_overflow => {
                    room.copy_from_slice(text);
                    self.key_len += text.len();
                }
                _ => self.key_overflow = true,
            }
        } else if !text.is_empty() && !quiet {
            on(Event::Text {
                depth: self.depth,
                piece: text,
            });
        }
        let Some(close) = close else {
            return piece.len();
        };
        self.string = None;
        if key {
            let depth = self.depth;
            let written = &self.key[..self.key_len];
            let unescaped;
            let name = if self.key_overflow {
                None
            } else if self.key_escaped {
                let mut quoted = Vec::with_capacity(written.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(written);
                quoted.push(b'"');
                unescaped = serde_json::from_slice::<String>(&quoted).ok();
                unescaped.as_deref().map(str::as_bytes)
            } else {
                Some(written)
            };
            let action = on(Event::Key {
                depth,
                name,
                range: start..base + close + 1,
            });
            self.unheard = action == Action::Skip;
            self.expect = Expect::Colon;
        } else {
            self.end_value(base + close + 1, piece, mark, on);
        }
        close + 1
    }

    /// Skips inside a container from `piece[i]`; returns where reading goes on.
    fn skipping(
        &mut self,
        piece: &[u8],
        mut i: usize,
        base: usize,
        mark: &mut Option<usize>,
        on: &mut impl FnMut(Event<'_>) -> Action,
    ) -> usize {
        let Some(skip) = self.skip.as_mut() else {
            return i;
        };
        while i < piece.len() {
            if skip.string {
                if skip.escaped {
                    skip.escaped = false;
                    i += 1;
                    continue;
                }
                match quote_or_backslash(&piece[i..]) {
                    None => return piece.len(),
                    Some(j) => {
                        if piece[i + j] == b'\\' {
                            skip.escaped = true;
                        } else {
                            skip.string = false;
                        }
                        i += j + 1;
                    }
                }
                continue;
            }
            let Some(j) = piece[i..].iter().position(|&b| STRUCTURAL[usize::from(b)]) else {
                return piece.len();
            };
            i += j;
            match piece[i] {
                b'"' => skip.string = true,
                b'{' | b'[' => skip.depth += 1,
                _ => {
                    skip.depth -= 1;
                    if skip.depth == 0 {
                        self.skip = None;
                        self.end_value(base + i + 1, piece, mark, on);
                        return i + 1;
                    }
                }
            }
            i += 1;
        }
        piece.len()
    }

    /// A value begins: tells the caller (unless its key skipped it) and returns what to do.
    fn begin(
        &mut self,
        at: usize,
        kind: Kind,
        i: usize,
        mark: &mut Option<usize>,
        on: &mut impl FnMut(Event<'_>) -> Action,
    ) -> Action {
        if std::mem::take(&mut self.unheard) {
            self.silent = true;
            return Action::Skip;
        }
        let depth = self.depth;
        let action = on(Event::Begin { depth, at, kind });
        if let (Action::Capture(limit), None) = (action, &self.capture) {
            self.capture = Some(Capture {
                depth,
                limit,
                overflowed: false,
            });
            self.captured.clear();
            *mark = Some(i);
        }
        action
    }

    /// A value at the current depth ended just before absolute offset `end`.
    fn end_value(
        &mut self,
        end: usize,
        piece: &[u8],
        mark: &mut Option<usize>,
        on: &mut impl FnMut(Event<'_>) -> Action,
    ) {
        let depth = self.depth;
        self.expect = if depth == 0 {
            Expect::Done
        } else {
            Expect::CommaOrClose
        };
        if std::mem::take(&mut self.silent) {
            return;
        }
        let captured = match &mut self.capture {
            Some(capture) if capture.depth == depth => {
                if let Some(from) = mark.take() {
                    // `self.at` is still where `piece` starts.
                    let upto = end.saturating_sub(self.at).min(piece.len());
                    collect(capture, &mut self.captured, &piece[from.min(upto)..upto]);
                }
                self.capture.take()
            }
            _ => None,
        };
        let bytes = captured
            .filter(|c| !c.overflowed)
            .map(|_| self.captured.as_slice());
        on(Event::End {
            depth,
            end,
            captured: bytes,
        });
    }
}

fn collect(capture: &mut Capture, into: &mut Vec<u8>, bytes: &[u8]) {
    if capture.overflowed {
        return;
    }
    if into.len() + bytes.len() > capture.limit {
        capture.overflowed = true;
        into.clear();
    } else {
        into.extend_from_slice(bytes);
    }
}

/// Where the next `"` or `\\` is. Most strings of JSON are short (keys, labels), where a plain
/// loop beats the set-up of a vectorised search; longer ones get the vectorised search.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    let head = bytes.len().min(16);
    if let Some(i) = bytes[..head].iter().position(|&b| b == b'"' || b == b'\\') {
        return Some(i);
    }
    memchr::memchr2(b'"', b'\\', &bytes[head..]).map(|i| head + i)
}

fn is_literal_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event, as text, from feeding `doc` in pieces of `step` bytes, capturing values
    /// at `capture_depth`.
    fn events(doc: &[u8], step: usize, capture_depth: Option<usize>) -> Vec<String> {
        let mut lexer = Lexer::new();
        let mut out = Vec::new();
        let mut on = |e: Event<'_>| {
            let action = match &e {
                Event::Begin { depth, .. } if Some(*depth) == capture_depth => {
                    Action::Capture(1024)
                }
                _ => Action::Continue,
            };
            out.push(match e {
                Event::Key { depth, name, range } => format!(
                    "key {depth} {:?} {range:?}",
                    name.map(|n| String::from_utf8_lossy(n).into_owned())
                ),
                Event::Begin { depth, at, kind } => format!("begin {depth} {at} {kind:?}"),
                Event::Text { depth, piece } => {
                    format!("text {depth} {}", String::from_utf8_lossy(piece))
                }
                Event::End {
                    depth,
                    end,
                    captured,
                } => format!(
                    "end {depth} {end} {:?}",
                    captured.map(|c| String::from_utf8_lossy(c).into_owned())
                ),
            });
            action
        };
        for piece in doc.chunks(step) {
            lexer.feed(piece, &mut on);
        }
        lexer.finish(&mut on);
        // Pieces of text are split where the input was; join them to compare.
        let mut joined: Vec<String> = Vec::new();
        for e in out {
            match (joined.last_mut(), e.strip_prefix("text ")) {
                (Some(last), Some(rest)) if last.starts_with("text ") => {
                    let (_, piece) = rest.split_once(' ').unwrap_or(("", rest));
                    last.push_str(piece);
                }
                _ => joined.push(e),
            }
        }
        assert!(
            !lexer.broken(),
            "broken on {}",
            String::from_utf8_lossy(doc)
        );
        joined
    }

    const DOC: &[u8] =
        br#"{"id":"x\"y","n":-1.5e3,"usage":{"a":[1,{"b":null}],"t":true},"s\u0061y":"h\\i"}"#;

    #[test]
    fn reports_keys_values_and_their_places() {
        let e = events(DOC, DOC.len(), None);
        assert_eq!(e[0], "begin 0 0 Object");
        assert_eq!(e[1], "key 1 Some(\"id\") 1..5");
        assert_eq!(e[2], "begin 1 6 String");
        assert_eq!(e[3], "text 1 x\\\"y");
        assert_eq!(e[4], "end 1 12 None");
        assert!(
            e.contains(&"key 1 Some(\"say\") 62..72".to_string()),
            "{e:#?}"
        );
        assert!(
            e.contains(&"key 4 Some(\"b\") 41..44".to_string()),
            "{e:#?}"
        );
        assert!(e.contains(&"end 1 61 None".to_string()), "{e:#?}");
        assert_eq!(e.last().map(String::as_str), Some("end 0 80 None"));
    }

    #[test]
    fn a_captured_value_is_handed_over_whole_and_nothing_inside_it_reported() {
        let e = events(DOC, DOC.len(), Some(1));
        assert_eq!(e[3], "end 1 12 Some(\"\\\"x\\\\\\\"y\\\"\")");
        assert!(
            e.contains(
                &"end 1 61 Some(\"{\\\"a\\\":[1,{\\\"b\\\":null}],\\\"t\\\":true}\")".to_string()
            ),
            "{e:#?}"
        );
        assert!(
            e.contains(&"end 1 23 Some(\"-1.5e3\")".to_string()),
            "{e:#?}"
        );
        assert!(
            !e.iter()
                .any(|l| l.starts_with("key 2") || l.starts_with("text")),
            "{e:#?}"
        );
    }

    #[test]
    fn a_skipped_value_reports_only_its_end() {
        let doc = br#"{"a":{"b":[1,"]}",{"c":"\"}"}]},"d":2}"#;
        for step in 1..doc.len() {
            let mut lexer = Lexer::new();
            let mut seen = Vec::new();
            for piece in doc.chunks(step) {
                lexer.feed(piece, &mut |e| match e {
                    Event::Begin { depth: 1, .. } => Action::Skip,
                    Event::Key { name, .. } => {
                        seen.push(format!(
                            "key {:?}",
                            name.map(|n| String::from_utf8_lossy(n).into_owned())
                        ));
                        Action::Continue
                    }
                    Event::End { depth, end, .. } => {
                        seen.push(format!("end {depth} {end}"));
                        Action::Continue
                    }
                    _ => Action::Continue,
                });
            }
            assert!(!lexer.broken());
            assert_eq!(
                seen,
                [
                    "key Some(\"a\")",
                    "end 1 31",
                    "key Some(\"d\")",
                    "end 1 37",
                    "end 0 38"
                ],
                "pieces of {step}"
            );
        }
    }

    #[test]
    fn the_same_events_however_the_pieces_fall() {
        for capture in [None, Some(1)] {
            let whole = events(DOC, DOC.len(), capture);
            for step in 1..DOC.len() {
                assert_eq!(events(DOC, step, capture), whole, "pieces of {step}");
            }
        }
    }

    #[test]
    fn a_value_skipped_at_its_key_reports_nothing() {
        let doc = br#"{"a":{"b":1},"s":"x","n":12,"k":[2]}"#;
        let mut lexer = Lexer::new();
        let mut seen = Vec::new();
        lexer.feed(doc, &mut |e| match e {
            Event::Key { name, .. } => {
                let name = name.map(|n| String::from_utf8_lossy(n).into_owned());
                seen.push(format!("key {name:?}"));
                if name.as_deref() == Some("k") {
                    Action::Continue
                } else {
                    Action::Skip
                }
            }
            other => {
                seen.push(format!("{other:?}"));
                Action::Continue
            }
        });
        assert!(!lexer.broken() && lexer.done());
        assert_eq!(seen.len(), 1 + 4 + 4 + 1, "{seen:#?}");
        assert!(seen[1..4].iter().all(|s| s.starts_with("key")), "{seen:#?}");
    }

    #[test]
    fn a_number_at_the_end_of_the_document_ends_there() {
        assert_eq!(
            events(b"42", 1, Some(0)),
            ["begin 0 0 Literal { first: 52 }", "end 0 2 Some(\"42\")"]
        );
    }

    #[test]
    fn a_document_that_breaks_the_structure_stops_the_lexer() {
        for bad in [
            &b"{\"a\" 1}"[..],
            b"[1 2]",
            b"{]",
            b"{\"a\":1}}",
            b"{,}",
            b"1 2",
        ] {
            let mut lexer = Lexer::new();
            lexer.feed(bad, &mut |_| Action::Continue);
            assert!(lexer.broken(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 1);
        let mut lexer = Lexer::new();
        lexer.feed(deep.as_bytes(), &mut |_| Action::Continue);
        assert!(lexer.broken());
    }

    #[test]
    fn a_capture_over_its_limit_is_dropped() {
        let mut lexer = Lexer::new();
        let mut captured = Vec::new();
        lexer.feed(br#"{"a":"0123456789"}"#, &mut |e| match e {
            Event::Begin { depth: 1, .. } => Action::Capture(4),
            Event::End {
                depth: 1,
                captured: c,
                ..
            } => {
                captured.push(c.is_some());
                Action::Continue
            }
            _ => Action::Continue,
        });
        assert_eq!(captured, [false]);
    }
}
