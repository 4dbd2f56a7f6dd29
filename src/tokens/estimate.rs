//! Estimating a call's tokens before it is sent: the prompt, by counting the text of the request
//! body with the model's tokenizer, and the completion, by what the request allows.
//!
//! The prompt estimate counts every string value of the body except those that are not text a
//! model reads (the `model`, a `role` or `type`, URLs, file ids, base64 media, formats), plus 3
//! tokens per message or input item and 3 to prime the reply, as OpenAI's own guide counts chat
//! messages; token arrays (`prompt: [1, 2, 3]`) count one per item. Images and audio are not
//! counted. It is an estimate, for limits to reserve: the backend's usage settles it.

use super::lex::{Event, Kind};
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

/// Counts a request's prompt tokens from its lexer events.
pub struct PromptCounter {
    encoding: Encoding,
    /// Whether the string values at each depth are text (by the nearest key).
    text_at: Vec<bool>,
    arrays: Vec<bool>,
    /// The top-level member being read.
    top: Top,
    /// The string being read, as written, when it counts.
    string: Option<Vec<u8>>,
    items: u64,
    tokens: u64,
}

impl PromptCounter {
    pub fn new(encoding: Encoding) -> PromptCounter {
        PromptCounter {
            encoding,
            text_at: vec![true],
            arrays: Vec::new(),
            top: Top::Other,
            string: None,
            items: 0,
            tokens: 0,
        }
    }

    pub fn on(&mut self, event: &Event<'_>) {
        match event {
            Event::Key { depth, text, .. } => {
                let is_text = !text.is_some_and(|k| NOT_TEXT.contains(&k));
                set(&mut self.text_at, *depth, is_text);
                if *depth == 1 {
                    self.top = match *text {
                        Some("messages" | "input") => Top::Items,
                        Some("prompt") => Top::Tokens,
                        _ => Top::Other,
                    };
                }
            }
            Event::Begin { depth, kind, .. } => {
                let depth = *depth;
                let in_array = depth > 0 && self.arrays.get(depth - 1) == Some(&true);
                if in_array {
                    let inherited = self.text_at.get(depth - 1).copied().unwrap_or(true);
                    set(&mut self.text_at, depth, inherited);
                    // A message (an object), not a string to embed.
                    if depth == 2 && self.top == Top::Items && *kind == Kind::Object {
                        self.items += 1;
                    }
                }
                match kind {
                    Kind::Object | Kind::Array => {
                        self.arrays.truncate(depth);
                        self.arrays.push(*kind == Kind::Array);
                    }
                    Kind::String if self.text_at.get(depth).copied().unwrap_or(true) => {
                        self.string = Some(Vec::new());
                    }
                    Kind::Literal { first } => {
                        let token_array = in_array && matches!(self.top, Top::Tokens | Top::Items);
                        if token_array && first.is_ascii_digit() {
                            self.tokens += 1;
                        }
                    }
                    Kind::String => {}
                }
            }
            Event::Text { piece, .. } => {
                if let Some(string) = &mut self.string {
                    string.extend_from_slice(piece);
                }
            }
            Event::End { depth, .. } => {
                self.arrays.truncate(*depth);
                if let Some(raw) = self.string.take() {
                    self.tokens += text_tokens(self.encoding, &raw);
                }
            }
        }
    }

    /// The prompt's tokens, once the body has been read.
    pub fn tokens(&self) -> u64 {
        let framing = if self.items > 0 {
            self.items * PER_ITEM + PRIMING
        } else {
            0
        };
        self.tokens + framing
    }
}

fn set(values: &mut Vec<bool>, depth: usize, value: bool) {
    if values.len() <= depth {
        values.resize(depth + 1, true);
    }
    values[depth] = value;
}

/// Tokens in a JSON string's content as written.
fn text_tokens(encoding: Encoding, raw: &[u8]) -> u64 {
    if !raw.contains(&b'\\')
        && let Ok(text) = std::str::from_utf8(raw)
    {
        return encoding.count(text);
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .map(|text| encoding.count(&text))
        .unwrap_or(raw.len().div_ceil(4) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::lex::{Action, Lexer};

    fn prompt_tokens(body: &str) -> u64 {
        let mut counter = PromptCounter::new(Encoding::O200k);
        let mut lexer = Lexer::new();
        lexer.feed(body.as_bytes(), &mut |e| {
            counter.on(&e);
            Action::Continue
        });
        lexer.finish(&mut |e| {
            counter.on(&e);
            Action::Continue
        });
        counter.tokens()
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
