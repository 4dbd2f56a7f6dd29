//! What a call cost in tokens, as the backend reported it or as the gateway estimated it.
//!
//! Azure reports usage in two vocabularies: chat completions, completions, embeddings and runs
//! say `prompt_tokens`/`completion_tokens` with `prompt_tokens_details.cached_tokens` and
//! `completion_tokens_details.reasoning_tokens`; the Responses API (and image generation on the
//! v1 API) says `input_tokens`/`output_tokens` with `input_tokens_details` and
//! `output_tokens_details`. [`Usage::parse`] reads either into one shape.

use serde::Deserialize;

/// Token counts of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
    /// Part of `completion`: tokens a reasoning model spent thinking.
    pub reasoning: u64,
    /// Part of `prompt`: tokens served from the prompt cache.
    pub cached: u64,
}

/// Where a figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The backend's `usage` object.
    Reported,
    /// The gateway's tokenizer, because the backend reported none (a stream on an api-version
    /// that cannot ask for usage, or an answer cut short).
    Estimated,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Reported => "reported",
            Source::Estimated => "estimated",
        }
    }
}

/// The kinds of tokens counted, in the order metrics lay them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prompt,
    Completion,
    Reasoning,
    Cached,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Prompt,
        Kind::Completion,
        Kind::Reasoning,
        Kind::Cached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Prompt => "prompt",
            Kind::Completion => "completion",
            Kind::Reasoning => "reasoning",
            Kind::Cached => "cached",
        }
    }
}

/// What a call spent, and how the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub usage: Usage,
    pub source: Source,
}

#[derive(Deserialize)]
struct Wire {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    /// The Realtime API's `response.done` says `input_token_details`.
    #[serde(alias = "input_token_details")]
    input_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    #[serde(alias = "output_token_details")]
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Reads a `usage` object as the backend wrote it; `None` for `null` or an object that
    /// counts no tokens (a transcription billed by duration).
    pub fn parse(raw: &[u8]) -> Option<Usage> {
        let wire: Option<Wire> = serde_json::from_slice(raw).ok()?;
        let wire = wire?;
        let prompt = wire.prompt_tokens.or(wire.input_tokens);
        let completion = wire.completion_tokens.or(wire.output_tokens);
        if prompt.is_none() && completion.is_none() && wire.total_tokens.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        let detail =
            |a: &Option<Details>, b: &Option<Details>, pick: fn(&Details) -> Option<u64>| {
                a.as_ref()
                    .and_then(pick)
                    .or_else(|| b.as_ref().and_then(pick))
                    .unwrap_or(0)
            };
        Some(Usage {
            prompt,
            completion,
            total: wire
                .total_tokens
                .unwrap_or_else(|| prompt.saturating_add(completion)),
            reasoning: detail(
                &wire.completion_tokens_details,
                &wire.output_tokens_details,
                |d| d.reasoning_tokens,
            ),
            cached: detail(
                &wire.prompt_tokens_details,
                &wire.input_tokens_details,
                |d| d.cached_tokens,
            ),
        })
    }

    pub fn of(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Prompt => self.prompt,
            Kind::Completion => self.completion,
            Kind::Reasoning => self.reasoning,
            Kind::Cached => self.cached,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_vocabularies_and_their_details() {
        let chat = br#"{"prompt_tokens":20,"completion_tokens":900,"total_tokens":920,
            "prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":832}}"#;
        assert_eq!(
            Usage::parse(chat),
            Some(Usage {
                prompt: 20,
                completion: 900,
                total: 920,
                reasoning: 832,
                cached: 0
            })
        );
        let responses = br#"{"input_tokens":1200,"input_tokens_details":{"cached_tokens":1024},
            "output_tokens":30,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1230}"#;
        assert_eq!(
            Usage::parse(responses),
            Some(Usage {
                prompt: 1200,
                completion: 30,
                total: 1230,
                reasoning: 0,
                cached: 1024
            })
        );
        let embeddings = br#"{"prompt_tokens":8,"total_tokens":8}"#;
        assert_eq!(
            Usage::parse(embeddings).map(|u| (u.prompt, u.completion)),
            Some((8, 0))
        );
    }

    #[test]
    fn null_and_tokenless_usage_count_nothing() {
        assert_eq!(Usage::parse(b"null"), None);
        assert_eq!(Usage::parse(br#"{"type":"duration","seconds":3}"#), None);
        assert_eq!(Usage::parse(b"{\"prompt_tokens\":"), None);
    }
}
