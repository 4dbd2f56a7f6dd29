//! Reads what the gateway needs from one JSON document of an answer (a whole body, or the data
//! of one server-sent event) as it is lexed: the `usage` object, the `object`, `id` and
//! `status` that say what was answered, and the generated text, for estimating tokens when no
//! usage comes. Everything else is skipped unread (content filter results, log-probabilities,
//! prompt filter results: most of an answer's bytes).
//!
//! Where each is, by the shapes Azure answers in:
//! - usage: the top-level `usage` (chat completions and their chunks, completions, embeddings,
//!   runs, responses, images), or `response.usage` (the Responses API's stream events);
//! - text: `choices[].message.content` and `choices[].text` (answers),
//!   `choices[].delta.content` (chunks), tool calls' `function.arguments` in either,
//!   `output[].content[].text` and `output[].arguments` (responses), and a top-level string
//!   `delta` (the Responses API's delta events).

use std::ops::Range;

use super::lex::{Action, Event, Kind, Lexer};
use super::usage::Usage;

/// A label is short, and so is a count of tokens.
const LABEL_LIMIT: usize = 66;
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
    ToolCalls,
    Function,
    Arguments,
    Id,
    Object,
    Status,
    Model,
    // The members of a usage object.
    Prompt,
    Completion,
    Total,
    PromptDetails,
    CompletionDetails,
    Cached,
    Reasoning,
}

impl Name {
    fn of(key: Option<&[u8]>) -> Name {
        match key {
            Some(b"usage") => Name::Usage,
            Some(b"response") => Name::Response,
            Some(b"choices") => Name::Choices,
            Some(b"delta") => Name::Delta,
            Some(b"message") => Name::Message,
            Some(b"content") => Name::Content,
            Some(b"text") => Name::Text,
            Some(b"output") => Name::Output,
            Some(b"tool_calls") => Name::ToolCalls,
            Some(b"function") => Name::Function,
            Some(b"arguments") => Name::Arguments,
            Some(b"id") => Name::Id,
            Some(b"object") => Name::Object,
            Some(b"status") => Name::Status,
            Some(b"model") => Name::Model,
            Some(b"prompt_tokens" | b"input_tokens") => Name::Prompt,
            Some(b"completion_tokens" | b"output_tokens") => Name::Completion,
            Some(b"total_tokens") => Name::Total,
            Some(b"prompt_tokens_details" | b"input_tokens_details") => Name::PromptDetails,
            Some(b"completion_tokens_details" | b"output_tokens_details") => {
                Name::CompletionDetails
            }
            Some(b"cached_tokens") => Name::Cached,
            Some(b"reasoning_tokens") => Name::Reasoning,
            _ => Name::Other,
        }
    }
}

/// A short string of an answer (an `object`, an `id`, a `status`), kept without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Label {
    len: u8,
    bytes: [u8; Label::MAX],
}

impl Label {
    const MAX: usize = 64;

    /// The top-level `model` of a compact JSON answer, found without reading the document:
    /// the last `"model":"…"` of its last 2 KiB (Azure writes its members in name order, so
    /// `model` comes after the choices, a little before `usage`), else the first of its first
    /// KiB (where OpenAI writes it). A key is written unescaped, so text inside a string value
    /// cannot match; no other member of a completion or a response has a `model` key.
    pub fn model_in(body: &[u8]) -> Option<Label> {
        const KEY: &[u8] = b"\"model\":";
        let tail = &body[body.len().saturating_sub(2048)..];
        let head = &body[..body.len().min(1024)];
        let (within, at) = match memchr::memmem::rfind(tail, KEY) {
            Some(at) => (tail, at),
            None => (head, memchr::memmem::find(head, KEY)?),
        };
        let rest = within.get(at + KEY.len()..)?;
        let end = memchr::memchr(b'"', rest.get(1..)?)? + 2;
        Label::of_literal(rest.get(..end)?)
    }

    /// The string a JSON string literal holds, if it is short and has no escapes.
    fn of_literal(raw: &[u8]) -> Option<Label> {
        let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        if inner.len() > Label::MAX || inner.contains(&b'\\') || std::str::from_utf8(inner).is_err()
        {
            return None;
        }
        let mut bytes = [0; Label::MAX];
        bytes[..inner.len()].copy_from_slice(inner);
        Some(Label {
            len: inner.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::ops::Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
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
    Label(Name),
    Text,
    /// One of the counts of the usage object being read.
    Count(Name),
}

/// The counts of a usage object, as they are read.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    prompt: Option<u64>,
    completion: Option<u64>,
    total: Option<u64>,
    cached: Option<u64>,
    reasoning: Option<u64>,
}

impl Counts {
    fn usage(self) -> Option<Usage> {
        if self.prompt.is_none() && self.completion.is_none() && self.total.is_none() {
            return None;
        }
        let (prompt, completion) = (self.prompt.unwrap_or(0), self.completion.unwrap_or(0));
        Some(Usage {
            prompt,
            completion,
            total: self.total.unwrap_or(prompt.saturating_add(completion)),
            reasoning: self.reasoning.unwrap_or(0),
            cached: self.cached.unwrap_or(0),
        })
    }
}

/// What one document said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its usage, when it had one that counts tokens (`null` does not).
    pub usage: Option<Usage>,
    pub object: Option<Label>,
    pub id: Option<Label>,
    pub status: Option<Label>,
    /// The model that answered (top-level, or a Responses event's `response.model`).
    pub model: Option<Label>,
    /// The top-level `usage` member, key to value, where it is written.
    pub usage_member: Option<Range<usize>>,
    /// Items of a top-level `choices` array, when there is one.
    pub choices: Option<usize>,
}

/// Reads one document after another; [`Scan::take`] ends one. `on_text` hears each string of
/// generated text once it has ended, as written (escapes not undone).
#[derive(Default)]
pub struct Scan {
    lexer: Lexer,
    state: State,
}

#[derive(Default)]
struct State {
    /// `steps[d]` leads to the value at depth `d` (index 0 unused).
    steps: [Option<Step>; DEPTH + 1],
    /// Bit `d`: the container at depth `d` is an array.
    arrays: u16,
    /// The value being read and where it goes.
    target: Option<(usize, Target)>,
    usage_key_at: Option<usize>,
    /// The depth of the usage object being read, and its counts so far.
    usage: Option<(usize, Counts)>,
    text: Vec<u8>,
    found: Found,
}

impl Scan {
    pub fn new() -> Scan {
        Scan::default()
    }

    /// Feeds the next piece, which starts at absolute offset `at`.
    pub fn feed_at(&mut self, at: usize, piece: &[u8], on_text: &mut impl FnMut(&[u8])) {
        let state = &mut self.state;
        self.lexer
            .feed_at(at, piece, &mut |event| state.on(event, on_text));
    }

    /// The document has ended: what it said. The scan is ready for the next one.
    pub fn take(&mut self, on_text: &mut impl FnMut(&[u8])) -> Found {
        let state = &mut self.state;
        self.lexer.finish(&mut |event| state.on(event, on_text));
        self.lexer.reset();
        let text = std::mem::take(&mut self.state.text);
        let found = std::mem::take(&mut self.state.found);
        self.state = State::default();
        self.state.text = text;
        self.state.text.clear();
        found
    }
}

impl State {
    fn on(&mut self, event: Event<'_>, on_text: &mut impl FnMut(&[u8])) -> Action {
        match event {
            Event::Key { depth, name, range } => {
                if depth > DEPTH {
                    return Action::Skip;
                }
                let name = Name::of(name);
                self.steps[depth] = Some(Step::Member(name));
                if depth == 1 && name == Name::Usage {
                    self.usage_key_at = Some(range.start);
                }
                if self.wanted(depth) {
                    Action::Continue
                } else {
                    Action::Skip
                }
            }
            Event::Begin { depth, kind, .. } => self.begin(depth, kind),
            Event::Text { depth, piece } => {
                if self.target == Some((depth, Target::Text)) {
                    self.text.extend_from_slice(piece);
                }
                Action::Continue
            }
            Event::End {
                depth,
                end,
                captured,
            } => {
                if depth < 16 {
                    self.arrays &= !(1 << depth);
                }
                if depth == 1
                    && let Some(start) = self.usage_key_at.take()
                {
                    self.found.usage_member = Some(start..end);
                }
                if let Some((at, counts)) = self.usage
                    && at == depth
                {
                    self.usage = None;
                    self.found.usage = counts.usage();
                }
                if let Some((at, goes)) = self.target
                    && at == depth
                {
                    self.target = None;
                    self.arrive(goes, captured, on_text);
                }
                Action::Continue
            }
        }
    }

    /// Whether the member whose key was just read at `depth` may hold anything read.
    fn wanted(&self, depth: usize) -> bool {
        if let Some((at, _)) = self.usage {
            // In a usage object: its counts, and the details that hold the others.
            return match (depth - at, self.steps[depth]) {
                (1, Some(Step::Member(n))) => matches!(
                    n,
                    Name::Prompt
                        | Name::Completion
                        | Name::Total
                        | Name::PromptDetails
                        | Name::CompletionDetails
                ),
                (2, Some(Step::Member(Name::Cached))) => {
                    self.steps[depth - 1] == Some(Step::Member(Name::PromptDetails))
                }
                (2, Some(Step::Member(Name::Reasoning))) => {
                    self.steps[depth - 1] == Some(Step::Member(Name::CompletionDetails))
                }
                _ => false,
            };
        }
        let path = &self.steps[1..=depth];
        is_usage(path) || leads(path) || where_to(path, Kind::String).is_some()
    }

    fn begin(&mut self, depth: usize, kind: Kind) -> Action {
        if depth > DEPTH {
            return Action::Skip;
        }
        if depth >= 1 && self.arrays & (1 << (depth - 1)) != 0 {
            self.steps[depth] = Some(Step::Item);
            if depth == 2
                && self.steps[1] == Some(Step::Member(Name::Choices))
                && let Some(n) = self.found.choices.as_mut()
            {
                *n += 1;
            }
        }
        if let Some((at, _)) = self.usage {
            // The counts are numbers, the details objects.
            return match (kind, self.steps[depth]) {
                (Kind::Literal { .. }, Some(Step::Member(n))) => {
                    self.target = Some((depth, Target::Count(n)));
                    Action::Capture(LABEL_LIMIT)
                }
                (Kind::Object, _) if depth == at + 1 => Action::Continue,
                _ => Action::Skip,
            };
        }
        let path = &self.steps[1..=depth];
        if is_usage(path) {
            if kind != Kind::Object {
                return Action::Skip;
            }
            self.usage = Some((depth, Counts::default()));
            return Action::Continue;
        }
        if let Some(goes) = where_to(path, kind) {
            self.target = Some((depth, goes));
            return match goes {
                Target::Label(_) | Target::Count(_) => Action::Capture(LABEL_LIMIT),
                Target::Text => {
                    self.text.clear();
                    Action::Continue
                }
            };
        }
        match kind {
            Kind::Object | Kind::Array if depth == 0 || leads(path) => {
                if kind == Kind::Array {
                    self.arrays |= 1 << depth;
                    if path == [Some(Step::Member(Name::Choices))] {
                        self.found.choices = Some(0);
                    }
                }
                Action::Continue
            }
            _ => Action::Skip,
        }
    }

    fn arrive(&mut self, goes: Target, captured: Option<&[u8]>, on_text: &mut impl FnMut(&[u8])) {
        match goes {
            Target::Count(name) => {
                let count = captured
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .and_then(|c| c.parse::<u64>().ok());
                if let Some((_, counts)) = self.usage.as_mut() {
                    let slot = match name {
                        Name::Prompt => &mut counts.prompt,
                        Name::Completion => &mut counts.completion,
                        Name::Total => &mut counts.total,
                        Name::Cached => &mut counts.cached,
                        Name::Reasoning => &mut counts.reasoning,
                        _ => return,
                    };
                    *slot = count;
                }
            }
            Target::Label(name) => {
                let label = captured.and_then(Label::of_literal);
                let slot = match name {
                    Name::Id => &mut self.found.id,
                    Name::Object => &mut self.found.object,
                    Name::Model => &mut self.found.model,
                    _ => &mut self.found.status,
                };
                if slot.is_none() {
                    *slot = label;
                }
            }
            Target::Text => on_text(&self.text),
        }
    }
}

/// A path to a value: each step any one of those listed.
type Path = &'static [&'static [Step]];

/// Where a usage object is: the top-level `usage`, or `response.usage`.
const USAGE: &[Path] = {
    use Name::*;
    use Step::Member;
    &[
        &[&[Member(Usage)]],
        &[&[Member(Response)], &[Member(Usage)]],
    ]
};

/// Where the text an answer generated is: message and delta content, completion text, tool
/// call arguments, the Responses API's output text and arguments, and a Responses stream's
/// `delta`.
const TEXT: &[Path] = {
    use Name::*;
    use Step::{Item, Member};
    const CHOICE: &[Step] = &[Member(Delta), Member(Message)];
    &[
        &[&[Member(Choices)], &[Item], CHOICE, &[Member(Content)]],
        &[&[Member(Choices)], &[Item], &[Member(Text)]],
        &[
            &[Member(Choices)],
            &[Item],
            CHOICE,
            &[Member(ToolCalls)],
            &[Item],
            &[Member(Function)],
            &[Member(Arguments)],
        ],
        &[
            &[Member(Output)],
            &[Item],
            &[Member(Content)],
            &[Item],
            &[Member(Text)],
        ],
        &[&[Member(Output)], &[Item], &[Member(Arguments)]],
        &[&[Member(Delta)]],
    ]
};

/// Whether `path` goes the way `to` does, as far as it goes.
fn along(path: &[Option<Step>], to: Path) -> bool {
    path.len() <= to.len()
        && path
            .iter()
            .zip(to)
            .all(|(step, allowed)| step.is_some_and(|s| allowed.contains(&s)))
}

/// Whether `path` is one of `paths`.
fn is_one_of(path: &[Option<Step>], paths: &[Path]) -> bool {
    paths
        .iter()
        .any(|to| to.len() == path.len() && along(path, to))
}

/// Whether `path` leads to a usage object.
fn is_usage(path: &[Option<Step>]) -> bool {
    is_one_of(path, USAGE)
}

/// Where a value at the end of `path` goes, if anywhere.
fn where_to(path: &[Option<Step>], kind: Kind) -> Option<Target> {
    let string = kind == Kind::String;
    match path {
        [Some(Step::Member(name @ (Name::Id | Name::Object | Name::Status | Name::Model)))]
            if string =>
        {
            Some(Target::Label(*name))
        }
        [
            Some(Step::Member(Name::Response)),
            Some(Step::Member(Name::Model)),
        ] if string => Some(Target::Label(Name::Model)),
        _ if string && is_one_of(path, TEXT) => Some(Target::Text),
        _ => None,
    }
}

/// Whether a container at the end of `path` may hold something [`where_to`] or [`is_usage`]
/// wants: it is on the way to one of their paths.
fn leads(path: &[Option<Step>]) -> bool {
    !path.is_empty()
        && TEXT
            .iter()
            .chain(USAGE)
            .any(|to| path.len() < to.len() && along(path, to))
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
        let found = scan.take(&mut on_text);
        (found, texts)
    }

    #[test]
    fn reads_usage_labels_and_text_of_a_chat_answer() {
        let doc = r#"{"id":"chatcmpl-1","object":"chat.completion","prompt_filter_results":[{"content_filter_results":{"hate":{"filtered":false}}}],"choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\"","tool_calls":[{"function":{"name":"f","arguments":"{\"x\":1}"}}]},"content_filter_results":{"text":"not this"}},{"index":1,"message":{"content":"Bye"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        for step in [1, 2, 7, doc.len()] {
            let (found, texts) = scan(doc, step);
            assert_eq!(found.usage.map(|u| (u.prompt, u.total)), Some((3, 7)));
            assert_eq!(
                found.id.map(|l| l.as_str().to_string()).as_deref(),
                Some("chatcmpl-1")
            );
            assert_eq!(
                found.object.map(|l| l.as_str().to_string()).as_deref(),
                Some("chat.completion")
            );
            assert_eq!(found.choices, Some(2));
            assert_eq!(texts, ["Hi \\\"there\\\"", "{\\\"x\\\":1}", "Bye"]);
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
        assert_eq!(found.usage, None);
        assert!(found.usage_member.is_some());
        assert_eq!(texts, ["wor"]);
        let (found, _) = scan(
            r#"{"type":"response.completed","response":{"id":"r","output":[{"content":[{"text":"not again"}]}],"usage":{"input_tokens":5}}}"#,
            5,
        );
        assert_eq!(found.usage.map(|u| u.prompt), Some(5));
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

    #[test]
    fn one_scan_reads_document_after_document() {
        let mut scan = Scan::new();
        let mut none = |_: &[u8]| {};
        scan.feed_at(0, br#"{"id":"a","usage":{"total_tokens":1}}"#, &mut none);
        assert_eq!(scan.take(&mut none).usage.map(|u| u.total), Some(1));
        scan.feed_at(100, br#"{"id":"b"}"#, &mut none);
        let found = scan.take(&mut none);
        assert_eq!(
            (found.usage, found.id.map(|l| l.as_str().to_string())),
            (None, Some("b".into()))
        );
    }

    #[test]
    fn the_model_is_found_where_azure_and_openai_write_it() {
        let azure = br#"{"choices":[{"message":{"content":"say \"model\":\"x\""}}],"created":1,"id":"c","model":"gpt-4o-2024-08-06","object":"chat.completion","usage":{"total_tokens":1}}"#;
        assert_eq!(Label::model_in(azure).as_deref(), Some("gpt-4o-2024-08-06"));
        let openai = br#"{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[]}"#;
        assert_eq!(Label::model_in(openai).as_deref(), Some("gpt-4o"));
        assert_eq!(Label::model_in(br#"{"id":"c"}"#), None);
        let mut scan = Scan::new();
        scan.feed_at(
            0,
            br#"{"type":"response.completed","response":{"id":"r","model":"o3","usage":{"input_tokens":5}}}"#,
            &mut |_| {},
        );
        assert_eq!(scan.take(&mut |_| {}).model.as_deref(), Some("o3"));
    }
}
