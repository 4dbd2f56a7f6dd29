//! Estimating a call's tokens before it is sent: the prompt, by counting the text of the request
//! body with the model's tokenizer, and the completion, by what the request allows.
//!
//! The prompt estimate counts every string value of the body except those that are not text a
//! model reads (the `model`, a `role` or `type`, URLs, file ids, base64 media, formats), plus 3
//! tokens per message or input item and 3 to prime the reply, as OpenAI's own guide counts chat
//! messages; token arrays (`prompt: [1, 2, 3]`) count one per item. Images and audio are not
//! counted. It is an estimate, for limits to reserve: the backend's usage settles it.
//!
//! Reading and counting are apart: the one lexer pass that reads a body's members notes where
//! its prompt's strings are ([`Prompt`]), copying nothing; the tokenizer runs over them only
//! when a figure is needed (a limit to reserve, a stream whose usage may not come, a backend
//! short of room), which most calls never need.

use super::lex::{Action, Event, Kind};
use super::tokenizer::Encoding;

/// Keys whose string values are not text the model reads.
const NOT_TEXT: [&str; 16] = [
    "model",
    "role",
    "type",
    "url",
    "image_url",
    "file_data",
    "file_id",
    "data",
    "detail",
    "format",
    "voice",
    "encoding_format",
    "user",
    "id",
    "previous_response_id",
    "b64_json",
];

/// Per message or input item, and to prime the reply.
const PER_ITEM: u64 = 3;
const PRIMING: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    Items,
    Tokens,
    Other,
}

/// Deeper than this, strings count as text and arrays as they come: messages are shallow.
const DEPTH: usize = 32;

/// A request's prompt, read from its lexer events: where the strings a model reads are in the
/// body, counted with the model's tokenizer when asked (once the model is known).
#[derive(Debug, Default)]
pub struct Prompt {
    /// Bit `d`: the string values at depth `d` are not text (by the nearest key).
    not_text: u32,
    /// Bit `d`: the container at depth `d` is an array.
    arrays: u32,
    /// The top-level member being read.
    top: Option<Top>,
    /// Where the content of the string being read starts, when it counts, and whether it has
    /// escapes so far.
    reading: Option<(usize, bool)>,
    /// Where each string that counts is in the body (its content, as written), and whether it
    /// has escapes.
    strings: Vec<(std::ops::Range<usize>, bool)>,
    items: u64,
    token_ids: u64,
}

impl Prompt {
    pub fn new() -> Prompt {
        Prompt::default()
    }

    /// Takes in one event; what the lexer should do with the value it concerns.
    pub fn on(&mut self, event: &Event<'_>) -> Action {
        match event {
            Event::Key { depth, name, .. } => {
                let not_text = name.is_some_and(|k| NOT_TEXT.iter().any(|n| n.as_bytes() == k));
                set(&mut self.not_text, *depth, not_text);
                if *depth == 1 {
                    self.top = Some(match *name {
                        Some(b"messages" | b"input") => Top::Items,
                        Some(b"prompt") => Top::Tokens,
                        _ => Top::Other,
                    });
                }
                // Media, ids and names are not read at all.
                if not_text {
                    Action::Skip
                } else {
                    Action::Continue
                }
            }
            Event::Begin { depth, kind, at } => {
                let depth = *depth;
                let in_array = depth > 0 && get(self.arrays, depth - 1);
                if in_array {
                    let inherited = get(self.not_text, depth - 1);
                    set(&mut self.not_text, depth, inherited);
                    // A message (an object), not a string to embed.
                    if depth == 2 && self.top == Some(Top::Items) && *kind == Kind::Object {
                        self.items += 1;
                    }
                }
                match kind {
                    Kind::Object | Kind::Array => {
                        set(&mut self.arrays, depth, *kind == Kind::Array);
                        Action::Continue
                    }
                    Kind::String if !get(self.not_text, depth) => {
                        // The content starts after the opening quote.
                        self.reading = Some((at + 1, false));
                        Action::Continue
                    }
                    Kind::Literal { first } => {
                        let token_array =
                            in_array && matches!(self.top, Some(Top::Tokens | Top::Items));
                        if token_array && first.is_ascii_digit() {
                            self.token_ids += 1;
                        }
                        Action::Continue
                    }
                    Kind::String => Action::Skip,
                }
            }
            Event::Text { piece, .. } => {
                if let Some((_, escaped)) = &mut self.reading {
                    *escaped |= memchr::memchr(b'\\', piece).is_some();
                }
                Action::Continue
            }
            Event::End { depth, end, .. } => {
                set(&mut self.arrays, *depth, false);
                if let Some((start, escaped)) = self.reading.take() {
                    // The content ends before the closing quote.
                    self.strings
                        .push((start..end.saturating_sub(1).max(start), escaped));
                }
                Action::Continue
            }
        }
    }

    /// The prompt's tokens: `body` is the body it was read from.
    pub fn tokens(&self, encoding: Encoding, body: &[u8]) -> u64 {
        let mut tokens = self.token_ids;
        for (range, escaped) in &self.strings {
            let raw = body.get(range.clone()).unwrap_or_default();
            tokens += if *escaped {
                encoding.count_json_text(raw)
            } else {
                std::str::from_utf8(raw).map_or(raw.len().div_ceil(4) as u64, |t| encoding.count(t))
            };
        }
        let framing = if self.items > 0 {
            self.items * PER_ITEM + PRIMING
        } else {
            0
        };
        tokens + framing
    }
}

fn get(bits: u32, depth: usize) -> bool {
    depth < DEPTH && bits & (1 << depth) != 0
}

fn set(bits: &mut u32, depth: usize, value: bool) {
    if depth < DEPTH {
        if value {
            *bits |= 1 << depth;
        } else {
            *bits &= !(1 << depth);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::lex::Lexer;

    fn prompt_tokens(body: &str) -> u64 {
        let mut prompt = Prompt::new();
        let mut lexer = Lexer::new();
        lexer.feed(body.as_bytes(), &mut |e| prompt.on(&e));
        lexer.finish(&mut |e| prompt.on(&e));
        prompt.tokens(Encoding::O200k, body.as_bytes())
    }

    #[test]
    fn counts_the_text_a_model_reads_and_the_framing_of_messages() {
        let hello = Encoding::O200k.count("Hello world");
        let system = Encoding::O200k.count("Be brief.");
        let chat = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello world"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"max_tokens":5}"#;
        assert_eq!(prompt_tokens(chat), system + hello + 2 * PER_ITEM + PRIMING);
        let completion = r#"{"prompt":"Hello world","max_tokens":5}"#;
        assert_eq!(prompt_tokens(completion), hello);
        let token_ids = r#"{"prompt":[1,2,3]}"#;
        assert_eq!(prompt_tokens(token_ids), 3);
        let embeddings = r#"{"input":["Hello world","Hello world"]}"#;
        assert_eq!(prompt_tokens(embeddings), 2 * hello);
        let escaped = r#"{"prompt":"Hello\u0020world"}"#;
        assert_eq!(prompt_tokens(escaped), hello);
    }
}
