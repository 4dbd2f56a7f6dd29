//! What a checked JSON request body says that the gateway acts on: the deployment it names (on
//! the v1 API), whether it asks for a stream, whether the stream can be asked for its usage on
//! the client's behalf, and what the call may spend (its prompt, counted with the model's
//! tokenizer when a figure is needed, and its completion allowance), read in one pass after
//! validation.
//!
//! Asking for usage: a streaming call on an api-version whose request model has
//! `stream_options.include_usage` is sent with `include_usage: true` when the client did not
//! set it (`usage.stream_include_usage`), so that the stream ends with the call's usage. That
//! member is the only change to the client's bytes; the meter then takes the usage chunk out
//! of what the client receives.

use aoai_runtime::catalog::{ContentKind, Route};
use aoai_runtime::schema::{Member as SchemaMember, Ty};

use std::ops::Range;

use super::edit::{Members, Splice};
use crate::config::UsageSettings;
use crate::tokens::estimate::Prompt;
use crate::tokens::tokenizer::Encoding;

/// Fields that cap what a call may generate, in the order they win.
const COMPLETION_CAPS: [&str; 3] = ["max_completion_tokens", "max_output_tokens", "max_tokens"];

/// What a JSON request body says.
#[derive(Debug)]
pub struct Facts {
    /// Where its top-level members are, in the bytes edits start from.
    pub members: Members,
    /// The deployment the body names in the route's `deployment_field`, and where its value
    /// (quotes included) is written; `None` when it names none, or not as a string.
    pub deployment: Option<(String, Range<usize>)>,
    /// Where its prompt's strings are, to count when a figure is needed.
    prompt: Prompt,
    /// The tokenizer of the deployment it is to.
    encoding: Encoding,
    /// It asks for a stream of server-sent events.
    pub stream: bool,
    /// Splices that ask the stream for its usage, which the client did not; empty otherwise.
    pub ask_usage: Vec<Splice>,
    /// Prompt tokens, estimated: counted when [asked](Count), else `None`.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens the call may spend: its cap times `n`, or the configured allowance
    /// where the operation generates text and the body sets no cap.
    pub completion_tokens: u64,
    /// The body's length, which bounds its prompt tokens (a token is at least a byte).
    length: u64,
}

/// When the prompt's tokens are counted: that takes running the tokenizer over every string of
/// the prompt, so only where something needs the figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The call reserves tokens against a limit.
    Always,
    /// Only for a stream, whose usage may not come (an api-version that cannot ask for it, a
    /// stream cut short): its tokens are then estimated.
    IfStreaming,
}

impl Facts {
    /// Reads `body` (the bytes the client meant: decoded, if it came compressed) for `route`,
    /// whose deployment is named in its path (`path_deployment`) or in this body. `None` when it
    /// is not a JSON object.
    pub fn read(
        route: &Route,
        body: &[u8],
        usage: &UsageSettings,
        path_deployment: Option<&str>,
        count: Count,
    ) -> Option<Facts> {
        let mut prompt = Prompt::new();
        let members = Members::read(body, Some(&mut prompt))?;
        let deployment = route.deployment_field.and_then(|field| {
            let (_, member) = members.find(body, field)?;
            let raw = body.get(member.value.clone())?;
            let name = serde_json::from_slice::<String>(raw).ok()?;
            Some((name, member.value.clone()))
        });
        let named = path_deployment.or(deployment.as_ref().map(|(name, _)| name.as_str()));
        let encoding = usage.encoding(named.unwrap_or(""));
        let stream = route.stream_flag.is_some_and(|flag| {
            members.value(body, flag).map(<[u8]>::trim_ascii) == Some(b"true".as_slice())
        });
        let model = request_model(route);
        let ask_usage = if stream && usage.stream_include_usage && model.is_some_and(can_ask_usage)
        {
            ask_usage(&members, body)
        } else {
            Vec::new()
        };
        let cap = COMPLETION_CAPS
            .iter()
            .find_map(|field| number(members.value(body, field)?));
        let choices = number(members.value(body, "n").unwrap_or(b"1"))
            .unwrap_or(1)
            .max(1);
        let generates = model.is_some_and(|m| {
            COMPLETION_CAPS
                .iter()
                .any(|f| matches!(m.member(f), SchemaMember::Typed(_)))
        });
        let completion_tokens = match cap {
            Some(cap) => cap.saturating_mul(choices),
            None if generates => usage.default_completion_tokens.saturating_mul(choices),
            None => 0,
        };
        let mut facts = Facts {
            members,
            deployment,
            prompt,
            encoding,
            stream,
            ask_usage,
            prompt_tokens: None,
            completion_tokens,
            length: body.len() as u64,
        };
        if count == Count::Always || stream {
            facts.count_prompt(body);
        }
        Some(facts)
    }

    /// What the call may spend, all told: its prompt as counted (nothing if it was not), and
    /// its completion allowance.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens
            .unwrap_or(0)
            .saturating_add(self.completion_tokens)
    }

    /// Counts the prompt of `body` (the bytes these facts were read from), if not yet counted:
    /// the strings the reading noted, with the deployment's tokenizer; nothing is read again.
    pub fn count_prompt(&mut self, body: &[u8]) {
        if self.prompt_tokens.is_none() {
            self.prompt_tokens = Some(self.prompt.tokens(self.encoding, body));
        }
    }

    /// At most what the call may spend: its prompt as counted, or else the body's length.
    pub fn at_most(&self) -> u64 {
        self.prompt_tokens
            .unwrap_or(self.length)
            .saturating_add(self.completion_tokens)
    }
}

/// The route's JSON request model.
pub fn request_model(route: &Route) -> Option<&'static Ty> {
    route
        .request
        .as_ref()?
        .content
        .iter()
        .find(|m| m.kind == ContentKind::Json)?
        .schema
}

/// Whether requests of this model can ask a stream for its usage.
fn can_ask_usage(model: &'static Ty) -> bool {
    match model.member("stream_options") {
        SchemaMember::Typed(options) => {
            matches!(options.member("include_usage"), SchemaMember::Typed(_))
        }
        _ => false,
    }
}

/// The splices that set `stream_options.include_usage` to `true`, keeping whatever else the
/// client put in `stream_options`; none when it is already `true`.
fn ask_usage(members: &Members, body: &[u8]) -> Vec<Splice> {
    let asked = r#"{"include_usage":true}"#;
    let Some((_, options)) = members.find(body, "stream_options") else {
        return vec![members.append("stream_options", asked)];
    };
    let value = options.value.clone();
    let Some(inner) = body.get(value.clone()).and_then(|v| Members::read(v, None)) else {
        // `null`: replaced.
        return vec![Splice::replace(value, asked.into())];
    };
    let at = |r: &std::ops::Range<usize>| value.start + r.start..value.start + r.end;
    let Some(inner_body) = body.get(value.clone()) else {
        return Vec::new();
    };
    match inner.find(inner_body, "include_usage") {
        Some((_, m)) if inner_body.get(m.value.clone()) == Some(b"true".as_slice()) => Vec::new(),
        Some((_, m)) => vec![Splice::replace(at(&m.value), "true".into())],
        None => {
            let open = value.start + inner.open + 1;
            let text = if inner.list.is_empty() {
                r#""include_usage":true"#
            } else {
                r#""include_usage":true,"#
            };
            vec![Splice::insert(open, text.into())]
        }
    }
}

/// A non-negative integer as JSON writes it.
fn number(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn usage() -> UsageSettings {
        UsageSettings {
            stream_include_usage: true,
            default_completion_tokens: 100,
            encodings: Default::default(),
        }
    }

    fn chat(version: &str) -> &'static Route {
        crate::generated::API_VERSIONS
            .iter()
            .find(|v| v.version == version)
            .and_then(|v| {
                v.routes
                    .iter()
                    .copied()
                    .find(|r| r.path.ends_with("/chat/completions") && r.method.as_str() == "POST")
            })
            .expect("a chat route")
    }

    fn asked(version: &str, body: &str) -> String {
        let facts = Facts::read(
            chat(version),
            body.as_bytes(),
            &usage(),
            Some("gpt-4o"),
            Count::IfStreaming,
        )
        .unwrap();
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let out = super::super::edit::apply(&bytes, facts.ask_usage).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn a_stream_is_asked_for_its_usage_where_the_version_can_ask() {
        let plain = r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        assert_eq!(
            asked("2024-09-01-preview", plain),
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        assert_eq!(
            asked("2024-10-21", plain),
            plain,
            "2024-10-21 has no stream_options"
        );
        let null = r#"{"stream":true,"stream_options":null,"messages":[]}"#;
        assert_eq!(
            asked("2024-09-01-preview", null),
            r#"{"stream":true,"stream_options":{"include_usage":true},"messages":[]}"#
        );
        let off = r#"{"stream":true,"stream_options":{"include_usage":false}}"#;
        assert_eq!(
            asked("2024-09-01-preview", off),
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let other = r#"{"model":"m","stream":true,"stream_options":{"include_obfuscation":false}}"#;
        assert_eq!(
            asked("v1", other),
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}"#
        );
        let already = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        assert_eq!(asked("2024-09-01-preview", already), already);
        let not_streaming = r#"{"stream":false}"#;
        assert_eq!(asked("2024-09-01-preview", not_streaming), not_streaming);
    }

    #[test]
    fn what_a_call_may_spend() {
        let counted = |body: &str, count| {
            Facts::read(
                chat("2024-10-21"),
                body.as_bytes(),
                &usage(),
                Some("gpt-4o"),
                count,
            )
            .unwrap()
        };
        let read = |body: &str| counted(body, Count::Always);
        let hello =
            r#"{"messages":[{"role":"user","content":"Hello world"}],"max_tokens":50,"n":2}"#;
        let facts = read(hello);
        assert_eq!(facts.completion_tokens, 100);
        assert_eq!(facts.prompt_tokens, Some(2 + 3 + 3));
        assert_eq!(facts.tokens(), 108);
        // Counted only where something needs it; bounded by the body's length otherwise.
        let facts = counted(hello, Count::IfStreaming);
        assert_eq!(facts.prompt_tokens, None);
        assert_eq!(facts.at_most(), hello.len() as u64 + 100);
        let streaming = r#"{"messages":[{"role":"user","content":"Hello world"}],"stream":true}"#;
        assert_eq!(
            counted(streaming, Count::IfStreaming).prompt_tokens,
            Some(8)
        );
        let facts = read(r#"{"messages":[],"max_completion_tokens":7,"max_tokens":50}"#);
        assert_eq!(facts.completion_tokens, 7);
        assert_eq!(read(r#"{"messages":[]}"#).completion_tokens, 100);
        assert!(!read(r#"{"messages":[]}"#).stream);
        assert!(read(r#"{"messages":[],"stream":true}"#).stream);
    }
}
