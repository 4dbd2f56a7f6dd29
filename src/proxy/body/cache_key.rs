//! A call's prompt-cache key, for the `prompt_cache` balancing policy: which calls are likely
//! to share a cached prompt prefix, and so belong on the same backend.
//!
//! In order: the request's `prompt_cache_key` (the client says which calls share a prefix);
//! else its `user` or `safety_identifier` (one end user's conversation grows turn by turn, each
//! turn's prompt the previous one's prefix); else the beginning of the prompt as sent: the
//! values of `instructions`, `tools`, `functions`, `messages`, `input` and `prompt`, in that
//! order, whatever order the client wrote them in, up to [`PREFIX_BYTES`].
//!
//! Azure caches a prompt from 1,024 tokens on; two prompts can share a cache entry only if their
//! first 1,024 tokens agree, which is rarely fewer than 2 bytes a token as JSON. Hashing no more
//! than that keeps every pair of prompts that could share an entry on one key; prompts that agree
//! only on their first 2 KB share a backend without gaining, which bounded load keeps harmless.

use super::edit::Members;

/// The bytes of a prompt's beginning that its key is made of.
pub const PREFIX_BYTES: usize = 2048;

/// Members naming who or what shares a prefix, first found wins.
const NAMED: [&str; 3] = ["prompt_cache_key", "user", "safety_identifier"];

/// Members whose values make up the prompt, in the order a model reads them.
const PROMPT: [&str; 6] = [
    "instructions",
    "tools",
    "functions",
    "messages",
    "input",
    "prompt",
];

/// The key of a JSON body whose top-level members are `members`; `None` when it names no key
/// and has no prompt.
pub fn of(members: &Members, body: &[u8]) -> Option<u64> {
    for (tag, name) in NAMED.iter().enumerate() {
        if let Some(value) = members.value(body, name).filter(|v| v.starts_with(b"\"")) {
            // The member's name goes in: `user: "x"` and `prompt_cache_key: "x"` differ.
            return Some(xxhash_rust::xxh3::xxh3_64_with_seed(value, tag as u64 + 1));
        }
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut left = PREFIX_BYTES;
    for name in PROMPT {
        if left == 0 {
            break;
        }
        if let Some(value) = members.value(body, name) {
            let taken = &value[..value.len().min(left)];
            hasher.update(name.as_bytes());
            hasher.update(taken);
            left -= taken.len();
        }
    }
    (left < PREFIX_BYTES).then(|| hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str) -> Option<u64> {
        let members = Members::read(body.as_bytes(), None).unwrap();
        of(&members, body.as_bytes())
    }

    #[test]
    fn a_named_key_wins_over_the_prompt() {
        let a = key(r#"{"messages":[{"role":"user","content":"hi"}],"prompt_cache_key":"app-1"}"#);
        let b = key(r#"{"prompt_cache_key":"app-1","messages":[{"role":"user","content":"yo"}]}"#);
        assert_eq!(a, b);
        let user = key(r#"{"user":"app-1","messages":[]}"#);
        assert_ne!(a, user, "the member's name is part of the key");
        assert_eq!(
            user,
            key(r#"{"user":"app-1","safety_identifier":"z","messages":[1]}"#)
        );
        assert_eq!(
            key(r#"{"safety_identifier":"s","input":"a"}"#),
            key(r#"{"safety_identifier":"s","input":"b"}"#)
        );
    }

    #[test]
    fn the_prompts_beginning_in_reading_order() {
        let system = "x".repeat(3000);
        let first = format!(
            r#"{{"model":"gpt","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"one"}}],"temperature":0.5}}"#
        );
        let later = format!(
            r#"{{"temperature":1,"messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"two"}}],"model":"gpt"}}"#
        );
        assert_eq!(key(&first), key(&later), "same first 2 KB of prompt");
        let other = first.replacen("xxxx", "yyyy", 1);
        assert_ne!(key(&first), key(&other));
        // Tools come before the messages, wherever they are written.
        let a = key(r#"{"messages":[1],"tools":[{"type":"function"}]}"#);
        let b = key(r#"{"tools":[{"type":"function"}],"messages":[1]}"#);
        assert_eq!(a, b);
        assert_ne!(a, key(r#"{"tools":[{"type":"x"}],"messages":[1]}"#));
        assert_eq!(key(r#"{"model":"gpt","n":1}"#), None);
        // A key that is not a string is no key.
        assert_eq!(key(r#"{"user":1,"prompt":"p"}"#), key(r#"{"prompt":"p"}"#));
    }
}
