//! Reads what the gateway needs from one JSON document of an answer (a whole body, or the data
//! of one server-sent event) as it is lexed: the `usage` object, the `object`, `id` and
//! `status` that say what was answered, and the generated text, for estimating tokens when no
//! usage comes.
//!
//! Where each is, by the shapes Azure answers in:
//! - usage: the top-level `usage` (chat completions and their chunks, completions, embeddings,
//!   runs, responses, images), or `response.usage` (the Responses API's stream events);
//! - text: `choices[].message.content` and `choices[].text` (answers),
//!   `choices[].delta.content` (chunks), `output[].content[].text` (responses) and a top-level
//!   string `delta` (the Responses API's delta events).

use std::ops::Range;

use super::lex::{Action, Event, Kind, Lexer};

/// A `usage` object is a few hundred bytes; more than this is not one.
const USAGE_LIMIT: usize = 8 * 1024;
/// `object`, `id` and `status` are short.
const LABEL_LIMIT: usize = 256;
/// Deeper than this nothing is read, but the lexer still follows the structure.
const DEPTH: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Other,
    Usage,
    Response,
    Choices,
    Delta,
    Message,
    Content,
    Text,
    Output,
    Id,
    Object,
    Status,
}

impl Name {
    fn of(key: Option<&str>) -> Name {
        match key {
            Some("usage") => Name::Usage,
            Some("response") => Name::Response,
            Some("choices") => Name::Choices,
            Some("delta") => Name::Delta,
            Some("message") => Name::Message,
            Some("content") => Name::Content,
            Some("text") => Name::Text,
            Some("output") => Name::Output,
            Some("id") => Name::Id,
            Some("object") => Name::Object,
            Some("status") => Name::Status,
            _ => Name::Other,
        }
    }
}

/// One step of the path to a value: a member's name, or an item of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Member(Name),
    Item,
}

/// Where the value that begins is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Usage,
    Label(Name),
    Text,
}

/// What one document said.
#[derive(Debug, Default)]
pub struct Found {
    /// The raw `usage` value (possibly `null`).
    pub usage: Option<Vec<u8>>,
    pub object: Option<String>,
    pub id: Option<String>,
    pub status: Option<String>,
    /// The top-level `usage` member, key to value, where it is written.
    pub usage_member: Option<Range<usize>>,
    /// Items of a top-level `choices` array, when there is one.
    pub choices: Option<usize>,
}

/// Reads one document; [`Scan::text`] hands over each piece of generated text once its string
/// has ended, as written (escapes not undone).
pub struct Scan {
    lexer: Lexer,
    /// `steps[d]` leads to the value at depth `d` (index 0 unused).
    steps: [Step; DEPTH + 1],
    /// Whether the container at each depth is an array.
    arrays: Vec<bool>,
    /// The value being read and where it goes.
    target: Option<(usize, Target)>,
    usage_key_at: Option<usize>,
    text: Vec<u8>,
    found: Found,
}

impl Default for Scan {
    fn default() -> Self {
        Scan::new()
    }
}

impl Scan {
    pub fn new() -> Scan {
        Scan {
            lexer: Lexer::new(),
            steps: [Step::Item; DEPTH + 1],
            arrays: Vec::new(),
            target: None,
            usage_key_at: None,
            text: Vec::new(),
            found: Found::default(),
        }
    }

    /// Feeds the next piece, which starts at absolute offset `at`; `on_text` hears each string
    /// of generated text that ends in it.
    pub fn feed_at(&mut self, at: usize, piece: &[u8], on_text: &mut impl FnMut(&[u8])) {
        let Scan {
            lexer,
            steps,
            arrays,
            target,
            usage_key_at,
            text,
            found,
        } = self;
        lexer.feed_at(at, piece, &mut |event| {
            on_event(
                event,
                steps,
                arrays,
                target,
                usage_key_at,
                text,
                found,
                on_text,
            )
        });
    }

    /// The document has ended.
    pub fn finish(mut self, on_text: &mut impl FnMut(&[u8])) -> Found {
        let Scan {
            lexer,
            steps,
            arrays,
            target,
            usage_key_at,
            text,
            found,
        } = &mut self;
        lexer.finish(&mut |event| {
            on_event(
                event,
                steps,
                arrays,
                target,
                usage_key_at,
                text,
                found,
                on_text,
            )
        });
        std::mem::take(&mut self.found)
    }
}

#[allow(clippy::too_many_arguments)]
fn on_event(
    event: Event<'_>,
    steps: &mut [Step; DEPTH + 1],
    arrays: &mut Vec<bool>,
    target: &mut Option<(usize, Target)>,
    usage_key_at: &mut Option<usize>,
    text: &mut Vec<u8>,
    found: &mut Found,
    on_text: &mut impl FnMut(&[u8]),
) -> Action {
    match event {
        Event::Key {
            depth,
            text: key,
            range,
        } => {
            if depth <= DEPTH {
                let name = Name::of(key);
                steps[depth] = Step::Member(name);
                if depth == 1 && name == Name::Usage {
                    *usage_key_at = Some(range.start);
                }
            }
            Action::Continue
        }
        Event::Begin { depth, kind, .. } => {
            if (1..=DEPTH).contains(&depth) && arrays.get(depth - 1) == Some(&true) {
                steps[depth] = Step::Item;
            }
            if depth == 2
                && steps[1] == Step::Member(Name::Choices)
                && let Some(n) = found.choices.as_mut()
            {
                *n += 1;
            }
            if matches!(kind, Kind::Object | Kind::Array) {
                arrays.truncate(depth);
                arrays.push(kind == Kind::Array);
                if depth == 1 && kind == Kind::Array && steps[1] == Step::Member(Name::Choices) {
                    found.choices = Some(0);
                }
            }
            if target.is_some() || depth > DEPTH {
                return Action::Continue;
            }
            let goes = match where_to(&steps[1..=depth], kind) {
                Some(goes) => goes,
                None => return Action::Continue,
            };
            *target = Some((depth, goes));
            match goes {
                Target::Usage => Action::Capture(USAGE_LIMIT),
                Target::Label(_) => Action::Capture(LABEL_LIMIT),
                Target::Text => {
                    text.clear();
                    Action::Continue
                }
            }
        }
        Event::Text { depth, piece } => {
            if *target == Some((depth, Target::Text)) {
                text.extend_from_slice(piece);
            }
            Action::Continue
        }
        Event::End {
            depth,
            end,
            captured,
        } => {
            arrays.truncate(depth);
            if depth == 1
                && let Some(start) = usage_key_at.take()
            {
                found.usage_member = Some(start..end);
            }
            let Some((at, goes)) = *target else {
                return Action::Continue;
            };
            if at != depth {
                return Action::Continue;
            }
            *target = None;
            match goes {
                Target::Usage => found.usage = captured.map(<[u8]>::to_vec),
                Target::Label(name) => {
                    let label = captured.and_then(|c| serde_json::from_slice::<String>(c).ok());
                    let slot = match name {
                        Name::Id => &mut found.id,
                        Name::Object => &mut found.object,
                        _ => &mut found.status,
                    };
                    if slot.is_none() {
                        *slot = label;
                    }
                }
                Target::Text => on_text(text),
            }
            Action::Continue
        }
    }
}

/// Where a value at the end of `path` goes, if anywhere.
fn where_to(path: &[Step], kind: Kind) -> Option<Target> {
    use Name::*;
    use Step::{Item, Member};
    let string = kind == Kind::String;
    Some(match path {
        [Member(Usage)] | [Member(Response), Member(Usage)] => Target::Usage,
        [Member(name @ (Id | Object | Status))] if string => Target::Label(*name),
        [
            Member(Choices),
            Item,
            Member(Delta | Message),
            Member(Content),
        ]
        | [Member(Choices), Item, Member(Text)]
        | [Member(Output), Item, Member(Content), Item, Member(Text)]
        | [Member(Delta)]
            if string =>
        {
            Target::Text
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(doc: &str, step: usize) -> (Found, Vec<String>) {
        let mut scan = Scan::new();
        let mut texts = Vec::new();
        let mut on_text = |t: &[u8]| texts.push(String::from_utf8_lossy(t).into_owned());
        let mut at = 0;
        for piece in doc.as_bytes().chunks(step) {
            scan.feed_at(at, piece, &mut on_text);
            at += piece.len();
        }
        let found = scan.finish(&mut on_text);
        (found, texts)
    }

    #[test]
    fn reads_usage_labels_and_text_of_a_chat_answer() {
        let doc = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\""}},{"index":1,"message":{"content":"Bye"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        for step in [1, 2, 7, doc.len()] {
            let (found, texts) = scan(doc, step);
            assert_eq!(
                found.usage.as_deref(),
                Some(&br#"{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}"#[..])
            );
            assert_eq!(found.id.as_deref(), Some("chatcmpl-1"));
            assert_eq!(found.object.as_deref(), Some("chat.completion"));
            assert_eq!(found.choices, Some(2));
            assert_eq!(texts, ["Hi \\\"there\\\"", "Bye"]);
            let member = found.usage_member.expect("usage member");
            assert!(doc[member].starts_with("\"usage\":{"));
        }
    }

    #[test]
    fn reads_chunks_responses_events_and_ignores_deeper_usage() {
        let (found, texts) = scan(
            r#"{"choices":[{"delta":{"content":"wor"},"index":0}],"usage":null}"#,
            3,
        );
        assert_eq!(found.usage.as_deref(), Some(&b"null"[..]));
        assert_eq!(texts, ["wor"]);
        let (found, _) = scan(
            r#"{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":5}}}"#,
            5,
        );
        assert_eq!(found.usage.as_deref(), Some(&br#"{"input_tokens":5}"#[..]));
        let (_, texts) = scan(r#"{"type":"response.output_text.delta","delta":"Hel"}"#, 4);
        assert_eq!(texts, ["Hel"]);
        let (found, _) = scan(r#"{"data":[{"usage":{"prompt_tokens":1}}]}"#, 4);
        assert_eq!(found.usage, None);
        let (found, texts) = scan(
            r#"{"output":[{"type":"message","content":[{"type":"output_text","text":"Yes"}]}],"usage":{"input_tokens":1}}"#,
            6,
        );
        assert_eq!(texts, ["Yes"]);
        assert!(found.usage.is_some());
    }
}
