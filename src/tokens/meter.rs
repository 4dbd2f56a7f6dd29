//! Reads the usage of an answer as its bytes go to the client.
//!
//! Every chunk passes on as it came (the same `Bytes`, not a copy) and is read on the way by a
//! [`Scan`] (a JSON answer) or a [`Reader`] (server-sent events), which keep only what they are
//! looking for. What is read: the backend's `usage`, what the answer is (`object`, `id`,
//! `status`), and the generated text, from which tokens are estimated when no usage comes (an
//! api-version that cannot ask for it in a stream, an answer cut short). A stream's text is
//! counted event by event; a JSON answer's is kept until its end and counted only if its usage
//! is missing.
//!
//! One answer is changed: a stream whose usage the gateway asked for and the client did not
//! ([`Meter::strip`]). The backend then sends a last chunk carrying only `usage`, and a
//! `"usage":null` member in every other chunk; the client would see neither if the gateway had
//! not asked. So in that mode events are passed on whole, as each ends (an SSE client acts on an
//! event only at its blank line, so this holds nothing back from it), the usage chunk is left
//! out and the `usage` member is cut from the others, with one of its commas; every other byte
//! goes as the backend sent it.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::scan::{Found, Label, Scan};
use super::sse::{Dispatched, Reader};
use super::tokenizer::Encoding;
use super::usage::Usage;

/// A JSON answer's text is kept up to this much for an estimate; beyond, its length is used.
const TEXT_LIMIT: usize = 1 << 20;
/// A JSON answer of a known length up to this is kept whole (its chunks, not a copy) and read
/// from its end once it is complete (see [`tail`](super::tail)).
const WHOLE_LIMIT: u64 = 64 * 1024;

/// What the meter learnt from an answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The backend's usage (a stream's last non-null one, a run step's excepted).
    pub usage: Option<Usage>,
    /// Tokens of the generated text seen, estimated; counted only where usage is missing (a
    /// stream's text is always counted).
    pub text_tokens: u64,
    /// What the document that reported the usage (or the JSON answer) was: `object`, `id` and
    /// `status`, where it said.
    pub object: Option<Label>,
    pub id: Option<Label>,
    pub status: Option<Label>,
    /// The model that answered, as the answer names it.
    pub model: Option<Label>,
}

enum Format {
    /// A short JSON answer of known length: its chunks, kept until it is complete.
    Whole {
        chunks: Vec<Bytes>,
        length: usize,
    },
    Json(Scan),
    Events(Reader),
}

pub struct Meter {
    format: Format,
    encoding: Encoding,
    strip: bool,
    /// Absolute offset of the next byte.
    at: usize,
    reading: Reading,
    /// A JSON answer's text, as written (each string JSON-quoted).
    text: Vec<u8>,
    text_overflow: u64,
    /// Stripping: the bytes of the event under way, from `held_at`.
    held: VecDeque<Bytes>,
    held_at: usize,
    dispatched: Vec<Dispatched>,
    /// Look for the answer's `model` where reading the usage alone would not find it (a
    /// whole JSON answer): only a trace wants it.
    find_model: bool,
}

impl Meter {
    /// A meter for a JSON answer of `length` bytes, when the backend said.
    pub fn json(encoding: Encoding, length: Option<u64>) -> Meter {
        let format = match length.filter(|&l| l <= WHOLE_LIMIT) {
            Some(length) => Format::Whole {
                chunks: Vec::new(),
                length: length as usize,
            },
            None => Format::Json(Scan::new()),
        };
        Meter::new(format, encoding, false)
    }

    /// A meter for a stream of server-sent events; `strip`: the gateway asked for the usage
    /// the client did not, so the client gets neither the usage chunk nor `"usage":null`.
    pub fn events(encoding: Encoding, strip: bool) -> Meter {
        Meter::new(Format::Events(Reader::new()), encoding, strip)
    }

    fn new(format: Format, encoding: Encoding, strip: bool) -> Meter {
        Meter {
            format,
            encoding,
            strip,
            at: 0,
            reading: Reading::default(),
            text: Vec::new(),
            text_overflow: 0,
            held: VecDeque::new(),
            held_at: 0,
            dispatched: Vec::new(),
            find_model: false,
        }
    }

    /// The same meter, reading the answer's `model` too.
    pub fn naming_model(mut self) -> Meter {
        self.find_model = true;
        self
    }

    /// Whether the client may get other bytes than the backend sent (usage taken out).
    pub fn edits(&self) -> bool {
        self.strip
    }

    /// Reads the next chunk of an answer the meter does not [edit](Meter::edits); the client
    /// gets it as it is.
    pub fn observe(&mut self, chunk: &Bytes) {
        if let Format::Whole { chunks, .. } = &mut self.format {
            chunks.push(chunk.clone());
            return;
        }
        let mut none = VecDeque::new();
        self.read(chunk);
        self.take_events(&mut none);
    }

    /// Reads the next chunk of the answer and queues in `out` what the client gets.
    pub fn feed(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        self.read(&chunk);
        if self.strip {
            self.held.push_back(chunk);
        } else {
            out.push_back(chunk);
        }
        self.take_events(out);
    }

    fn read(&mut self, chunk: &[u8]) {
        let start = self.at;
        self.at += chunk.len();
        let encoding = self.encoding;
        match &mut self.format {
            // Only what `observe` keeps (the meter of a whole answer never edits).
            Format::Whole { .. } => {}
            Format::Json(scan) => {
                let (text, overflow) = (&mut self.text, &mut self.text_overflow);
                scan.feed_at(start, chunk, &mut |t| keep_text(text, overflow, t));
            }
            Format::Events(reader) => {
                let (tokens, dispatched) = (&mut self.reading.text_tokens, &mut self.dispatched);
                reader.feed(
                    chunk,
                    &mut |t| *tokens += encoding.count_json_text(t),
                    &mut |d| dispatched.push(d),
                );
            }
        }
    }

    /// The answer has ended (or stopped): what was read, with whatever was still held queued.
    pub fn finish(mut self, out: &mut VecDeque<Bytes>) -> Reading {
        let encoding = self.encoding;
        if let Format::Whole { chunks, length } = &mut self.format {
            let chunks = std::mem::take(chunks);
            let complete = chunks.iter().map(Bytes::len).sum::<usize>() == *length;
            let read = match (complete, chunks.as_slice()) {
                (true, [whole]) => self.read_whole(whole),
                (true, _) => self.read_whole(&chunks.concat()),
                (false, _) => false,
            };
            if read {
                return self.reading;
            }
            // Cut short, or not provably read from the end: read from the start.
            self.format = Format::Json(Scan::new());
            for chunk in &chunks {
                self.read(chunk);
            }
        }
        match std::mem::replace(&mut self.format, Format::Json(Scan::new())) {
            Format::Whole { .. } => {}
            Format::Json(mut scan) => {
                let (text, overflow) = (&mut self.text, &mut self.text_overflow);
                let found = scan.take(&mut |t| keep_text(text, overflow, t));
                self.reading.usage = found.usage;
                self.reading.object = found.object;
                self.reading.id = found.id;
                self.reading.status = found.status;
                self.reading.model = found.model.or(self.reading.model);
                if self.reading.usage.is_none() {
                    self.reading.text_tokens =
                        count_kept(encoding, &self.text) + self.text_overflow.div_ceil(4);
                }
            }
            Format::Events(mut reader) => {
                let (tokens, dispatched) = (&mut self.reading.text_tokens, &mut self.dispatched);
                reader.finish(&mut |t| *tokens += encoding.count_json_text(t), &mut |d| {
                    dispatched.push(d)
                });
            }
        }
        self.take_events(out);
        // What the backend sent after its last event.
        out.extend(self.held.drain(..));
        self.reading
    }

    /// Reads a complete JSON answer from its end; `false` when that proves nothing, or when
    /// what the answer is must be read too (a run, whose usage is counted once by its id).
    fn read_whole(&mut self, body: &[u8]) -> bool {
        static RUN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"thread.run"));
        if RUN.find(body).is_some() {
            return false;
        }
        match super::tail::usage(body) {
            Some(Some(usage)) => {
                self.reading.usage = Some(usage);
                if self.find_model {
                    self.reading.model = Label::model_in(body);
                }
                true
            }
            // No usage: its text is estimated, which takes reading it all.
            _ => false,
        }
    }

    fn take_events(&mut self, out: &mut VecDeque<Bytes>) {
        let mut dispatched = std::mem::take(&mut self.dispatched);
        for event in dispatched.drain(..) {
            let usage = event.found.usage;
            let step = event
                .found
                .object
                .is_some_and(|o| o.as_str() == "thread.run.step");
            if let (Some(usage), false) = (usage, step) {
                self.reading.usage = Some(usage);
                self.reading.object = event.found.object;
                self.reading.id = event.found.id;
                self.reading.status = event.found.status;
                self.reading.model = event.found.model.or(self.reading.model);
            }
            if self.strip {
                let bytes = self.take_held(event.range.end);
                pass_stripped(bytes, event.range.start, &event.found, usage.is_some(), out);
            }
        }
        // The list is kept, to be filled again without allocating.
        self.dispatched = dispatched;
    }

    /// The held bytes up to absolute offset `end`, as one piece (copied only when the event
    /// spans chunks).
    fn take_held(&mut self, end: usize) -> Bytes {
        let mut wanted = end.saturating_sub(self.held_at);
        self.held_at = end;
        let Some(first) = self.held.front_mut() else {
            return Bytes::new();
        };
        if first.len() > wanted {
            return first.split_to(wanted);
        }
        if first.len() == wanted {
            return self.held.pop_front().unwrap_or_default();
        }
        let mut joined = BytesMut::with_capacity(wanted);
        while wanted > 0 {
            let Some(piece) = self.held.front_mut() else {
                break;
            };
            if piece.len() > wanted {
                joined.extend_from_slice(&piece.split_to(wanted));
                break;
            }
            wanted -= piece.len();
            joined.extend_from_slice(piece);
            self.held.pop_front();
        }
        joined.freeze()
    }
}

/// Queues one event for a client that did not ask for usage: nothing of the usage chunk (no
/// choices, a usage), and the others without their `usage` member.
fn pass_stripped(
    event: Bytes,
    start: usize,
    found: &Found,
    reports: bool,
    out: &mut VecDeque<Bytes>,
) {
    if reports && found.choices == Some(0) {
        return;
    }
    let Some(member) = &found.usage_member else {
        out.push_back(event);
        return;
    };
    let relative = member.start.saturating_sub(start)..member.end.saturating_sub(start);
    let cut = with_a_comma(&event, relative);
    if cut.end > event.len() || cut.start > cut.end {
        out.push_back(event);
        return;
    }
    if cut.start > 0 {
        out.push_back(event.slice(..cut.start));
    }
    if cut.end < event.len() {
        out.push_back(event.slice(cut.end..));
    }
}

/// A member's bytes and the comma that separates it from the next member (or, for the last
/// one, from the previous), so that what is left is an object without it.
fn with_a_comma(doc: &[u8], member: Range<usize>) -> Range<usize> {
    let blank = |b: &u8| b" \t\r\n".contains(b);
    let after = doc.get(member.end..).unwrap_or_default();
    if let Some(i) = after.iter().position(|b| !blank(b))
        && after[i] == b','
    {
        return member.start..member.end + i + 1;
    }
    let before = doc.get(..member.start).unwrap_or_default();
    if let Some(i) = before.iter().rposition(|b| !blank(b))
        && before[i] == b','
    {
        return i..member.end;
    }
    member
}

/// Tokens in a string of text as written in JSON.
fn keep_text(text: &mut Vec<u8>, overflow: &mut u64, piece: &[u8]) {
    if text.len() + piece.len() + 2 > TEXT_LIMIT {
        *overflow += piece.len() as u64;
        return;
    }
    text.push(b'"');
    text.extend_from_slice(piece);
    text.push(b'"');
}

/// Tokens in the strings [`keep_text`] kept.
fn count_kept(encoding: Encoding, kept: &[u8]) -> u64 {
    serde_json::Deserializer::from_slice(kept)
        .into_iter::<String>()
        .map_while(Result::ok)
        .map(|s| encoding.count(&s))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client gets from `stream` fed in pieces of `step`, and what was read.
    fn run(mut meter: Meter, stream: &str, step: usize) -> (String, Reading) {
        let mut out = VecDeque::new();
        for piece in stream.as_bytes().chunks(step) {
            let piece = Bytes::copy_from_slice(piece);
            if meter.edits() {
                meter.feed(piece, &mut out);
            } else {
                meter.observe(&piece);
                out.push_back(piece);
            }
        }
        let reading = meter.finish(&mut out);
        let sent: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        (String::from_utf8(sent).unwrap(), reading)
    }

    const ASKED: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[],\"prompt_filter_results\":[],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hello there\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n",
        "data: [DONE]\n\n",
    );

    const NOT_ASKED: &str = concat!(
        "data: {\"id\":\"c1\",\"choices\":[],\"prompt_filter_results\":[]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hello there\"}}]}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn a_stream_passes_untouched_and_its_usage_is_read() {
        for step in [1, 3, 40, ASKED.len()] {
            let (sent, reading) = run(Meter::events(Encoding::O200k, false), ASKED, step);
            assert_eq!(sent, ASKED);
            let usage = reading.usage.expect("usage");
            assert_eq!((usage.prompt, usage.completion, usage.reasoning), (9, 2, 1));
            assert_eq!(reading.text_tokens, 2);
        }
    }

    #[test]
    fn a_client_that_did_not_ask_gets_the_stream_it_would_have_got() {
        for step in 1..ASKED.len() {
            let (sent, reading) = run(Meter::events(Encoding::O200k, true), ASKED, step);
            assert_eq!(sent, NOT_ASKED, "pieces of {step}");
            assert_eq!(reading.usage.map(|u| u.total), Some(11));
        }
    }

    #[test]
    fn a_json_answer_is_read_and_its_text_counted_only_without_usage() {
        let answer = r#"{"id":"c2","object":"chat.completion","choices":[{"message":{"content":"Hello there"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1}}}"#;
        for length in [None, Some(answer.len() as u64)] {
            let (sent, reading) = run(Meter::json(Encoding::O200k, length), answer, 7);
            assert_eq!(sent, answer);
            assert_eq!(reading.usage.map(|u| (u.total, u.cached)), Some((5, 1)));
        }
        let (sent, reading) = run(Meter::json(Encoding::O200k, None), answer, 7);
        assert_eq!(sent, answer);
        assert_eq!(reading.usage.map(|u| (u.total, u.cached)), Some((5, 1)));
        assert_eq!(
            reading.object.map(|o| o.as_str().to_string()).as_deref(),
            Some("chat.completion")
        );
        assert_eq!(reading.text_tokens, 0);
        let cut = &answer[..answer.find("\"usage\"").unwrap()];
        // Cut short of the length it announced: read from the start.
        let (_, reading) = run(
            Meter::json(Encoding::O200k, Some(answer.len() as u64)),
            cut,
            7,
        );
        assert_eq!(reading.usage, None);
        assert_eq!(reading.text_tokens, 2);
    }

    #[test]
    fn a_stream_cut_before_its_usage_counts_the_text_seen() {
        let cut = &ASKED[..ASKED.find("\"usage\":{").unwrap()];
        let (sent, reading) = run(Meter::events(Encoding::O200k, true), cut, 5);
        assert_eq!(reading.usage, None);
        assert_eq!(reading.text_tokens, 2);
        // What was held of the unfinished event still reaches the client.
        assert!(sent.ends_with("\"choices\":[],"), "{sent}");
    }

    #[test]
    fn run_steps_do_not_add_to_the_run() {
        let stream = concat!(
            "event: thread.run.step.completed\ndata: {\"id\":\"step_1\",\"object\":\"thread.run.step\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}}\n\n",
            "event: thread.run.completed\ndata: {\"id\":\"run_1\",\"object\":\"thread.run\",\"status\":\"completed\",\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8,\"total_tokens\":15}}\n\n",
            "event: done\ndata: [DONE]\n\n",
        );
        let (_, reading) = run(Meter::events(Encoding::O200k, false), stream, 9);
        assert_eq!(reading.usage.map(|u| u.total), Some(15));
        assert_eq!(
            reading.id.map(|l| l.as_str().to_string()).as_deref(),
            Some("run_1")
        );
        assert_eq!(
            reading.status.map(|l| l.as_str().to_string()).as_deref(),
            Some("completed")
        );
    }

    #[test]
    fn a_member_is_cut_with_one_comma() {
        let cut = |doc: &str, member: &str| {
            let start = doc.find(member).unwrap();
            let r = with_a_comma(doc.as_bytes(), start..start + member.len());
            format!("{}{}", &doc[..r.start], &doc[r.end..])
        };
        assert_eq!(
            cut(r#"{"a":1,"usage":null,"b":2}"#, r#""usage":null"#),
            r#"{"a":1,"b":2}"#
        );
        assert_eq!(
            cut(r#"{"a":1, "usage":null}"#, r#""usage":null"#),
            r#"{"a":1}"#
        );
        assert_eq!(
            cut(r#"{"usage":null , "a":1}"#, r#""usage":null"#),
            r#"{ "a":1}"#
        );
        assert_eq!(cut(r#"{"usage":null}"#, r#""usage":null"#), r#"{}"#);
    }
}
