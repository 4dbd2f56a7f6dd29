//! Server-sent events read as they pass: the framing of the `text/event-stream` format (lines
//! end in LF, CRLF or CR; a line is `field: value`, or a comment after a `:`; a blank line ends
//! an event), each event's `data` handed to a [`Document`] reader (the usage's [`Scan`], or
//! another) as it arrives, in place: no event is held.

use std::ops::Range;

use super::scan::{Found, Scan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Nothing read of this line yet.
    Start,
    /// Reading a field's name.
    Field,
    /// Just after a field's `:`, where one space is skipped.
    Colon,
    /// Reading a field's value; `data` when the field is `data`.
    Value { data: bool },
}

/// Reads one JSON document after another, fed in pieces: an event's data.
pub trait Document {
    /// What it found in one document.
    type Found;
    /// Feeds the next piece, which starts at absolute offset `at`; `on_text` hears generated
    /// text, for a reader that looks for it.
    fn feed_at(&mut self, at: usize, piece: &[u8], on_text: &mut impl FnMut(&[u8]));
    /// The document has ended: what it said; the reader is ready for the next one.
    fn take(&mut self, on_text: &mut impl FnMut(&[u8])) -> Self::Found;
}

impl Document for Scan {
    type Found = Found;

    fn feed_at(&mut self, at: usize, piece: &[u8], on_text: &mut impl FnMut(&[u8])) {
        Scan::feed_at(self, at, piece, on_text);
    }

    fn take(&mut self, on_text: &mut impl FnMut(&[u8])) -> Found {
        Scan::take(self, on_text)
    }
}

/// An event that ended: where its bytes are (from the end of the previous event to the end of
/// its blank line) and what its data said.
#[derive(Debug)]
pub struct Dispatched<F = Found> {
    pub range: Range<usize>,
    pub found: F,
}

pub struct Reader<D: Document = Scan> {
    /// The absolute offset of the next byte.
    at: usize,
    line: Line,
    field: [u8; 4],
    field_len: usize,
    /// Data lines of the current event so far.
    data_lines: usize,
    event_start: usize,
    /// The last byte was a CR: an LF now belongs to the same line end.
    after_cr: bool,
    /// A blank line ended with a CR: the event is dispatched once the next byte shows whether
    /// an LF completes it.
    blank_after_cr: bool,
    scan: D,
}

impl<D: Document + Default> Default for Reader<D> {
    fn default() -> Self {
        Reader::with(D::default())
    }
}

impl Reader<Scan> {
    pub fn new() -> Reader<Scan> {
        Reader::with(Scan::new())
    }
}

impl<D: Document> Reader<D> {
    /// A reader that hands each event's data to `scan`.
    pub fn with(scan: D) -> Reader<D> {
        Reader {
            at: 0,
            line: Line::Start,
            field: [0; 4],
            field_len: 0,
            data_lines: 0,
            event_start: 0,
            after_cr: false,
            blank_after_cr: false,
            scan,
        }
    }

    /// Reads the next piece of the stream; each event that ends in it is handed to
    /// `on_event`, each string of generated text in its data to `on_text`.
    pub fn feed(
        &mut self,
        piece: &[u8],
        on_text: &mut impl FnMut(&[u8]),
        on_event: &mut impl FnMut(Dispatched<D::Found>),
    ) {
        let base = self.at;
        let mut i = 0;
        while i < piece.len() {
            let b = piece[i];
            let at = base + i;
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                if std::mem::take(&mut self.blank_after_cr) {
                    self.dispatch(at + 1, on_text, on_event);
                }
                i += 1;
                continue;
            }
            if std::mem::take(&mut self.blank_after_cr) {
                self.dispatch(at, on_text, on_event);
            }
            if b == b'\n' || b == b'\r' {
                let blank = self.end_line(at, on_text);
                if b == b'\r' {
                    self.after_cr = true;
                    self.blank_after_cr = blank;
                } else if blank {
                    self.dispatch(at + 1, on_text, on_event);
                }
                i += 1;
                continue;
            }
            match self.line {
                Line::Start | Line::Field => {
                    if b == b':' {
                        self.line = Line::Colon;
                        if self.is_data() {
                            self.data_line(at, on_text);
                        }
                    } else {
                        if self.field_len < self.field.len() {
                            self.field[self.field_len] = b;
                        }
                        self.field_len += 1;
                        self.line = Line::Field;
                    }
                    i += 1;
                }
                Line::Colon => {
                    self.line = Line::Value {
                        data: self.is_data(),
                    };
                    if b == b' ' {
                        i += 1;
                    }
                }
                Line::Value { data } => {
                    let end =
                        memchr::memchr2(b'\n', b'\r', &piece[i..]).map_or(piece.len(), |j| i + j);
                    if data {
                        self.scan.feed_at(at, &piece[i..end], on_text);
                    }
                    i = end;
                }
            }
        }
        self.at = base + piece.len();
    }

    /// The stream has ended: an event still open ends with it.
    pub fn finish(
        &mut self,
        on_text: &mut impl FnMut(&[u8]),
        on_event: &mut impl FnMut(Dispatched<D::Found>),
    ) {
        if self.line != Line::Start {
            self.end_line(self.at, on_text);
        }
        if self.at > self.event_start {
            self.dispatch(self.at, on_text, on_event);
        }
    }

    /// A field named `data` (a comment has no name).
    fn is_data(&self) -> bool {
        self.field_len == 4 && &self.field == b"data"
    }

    /// A `data` line begins at `at`: its value joins the event's data after a newline.
    fn data_line(&mut self, at: usize, on_text: &mut impl FnMut(&[u8])) {
        if self.data_lines > 0 {
            self.scan.feed_at(at, b"\n", on_text);
        }
        self.data_lines += 1;
    }

    /// A line ends at `at`; whether it was blank.
    fn end_line(&mut self, at: usize, on_text: &mut impl FnMut(&[u8])) -> bool {
        let blank = self.line == Line::Start;
        // A field without a colon has an empty value.
        if self.line == Line::Field && self.is_data() {
            self.data_line(at, on_text);
        }
        self.line = Line::Start;
        self.field_len = 0;
        blank
    }

    fn dispatch(
        &mut self,
        end: usize,
        on_text: &mut impl FnMut(&[u8]),
        on_event: &mut impl FnMut(Dispatched<D::Found>),
    ) {
        let found = self.scan.take(on_text);
        on_event(Dispatched {
            range: self.event_start..end,
            found,
        });
        self.event_start = end;
        self.data_lines = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(stream: &str, step: usize) -> Vec<(String, Option<String>, Vec<String>)> {
        let mut reader = Reader::new();
        let mut events = Vec::new();
        let mut texts = Vec::new();
        let mut on_text = |t: &[u8]| texts.push(String::from_utf8_lossy(t).into_owned());
        let mut dispatched = Vec::new();
        for piece in stream.as_bytes().chunks(step) {
            reader.feed(piece, &mut on_text, &mut |d| dispatched.push(d));
        }
        reader.finish(&mut on_text, &mut |d| dispatched.push(d));
        for d in dispatched {
            let usage = d.found.usage.map(|u| u.total.to_string());
            events.push((stream[d.range].to_string(), usage, Vec::new()));
        }
        if let Some(first) = events.first_mut() {
            first.2 = texts;
        }
        events
    }

    const STREAM: &str = concat!(
        ": a comment\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"He\"}}],\"usage\":null}\n\n",
        "event: x\r\ndata: {\"choices\":[],\r\ndata: \"usage\":{\"prompt_tokens\":2}}\r\n\r\n",
        "data: [DONE]\r\r",
    );

    #[test]
    fn events_end_at_blank_lines_however_lines_end() {
        let whole = read(STREAM, STREAM.len());
        assert_eq!(whole.len(), 3, "{whole:#?}");
        assert!(whole[0].0.starts_with(": a comment\ndata: "));
        assert!(whole[0].0.ends_with("null}\n\n"));
        assert_eq!(whole[0].1, None);
        assert!(whole[1].0.starts_with("event: x\r\n") && whole[1].0.ends_with("}\r\n\r\n"));
        // Two data lines are one document, joined by a newline.
        assert_eq!(whole[1].1.as_deref(), Some("2"));
        assert_eq!(whole[2].0, "data: [DONE]\r\r");
        assert_eq!(whole[0].2, ["He"]);
        for step in 1..STREAM.len() {
            assert_eq!(read(STREAM, step), whole, "pieces of {step}");
        }
    }

    #[test]
    fn a_stream_that_stops_mid_event_ends_that_event() {
        let events = read("data: {\"usage\":{\"total_tokens\":1}}\n", 5);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.as_deref(), Some("1"));
    }
}
