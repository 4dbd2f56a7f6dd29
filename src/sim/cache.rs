//! The resource's prompt cache, as Azure OpenAI keeps one per resource and deployment: a
//! prompt of 1,024 tokens or more whose beginning matches a recent prompt's is served partly
//! from the cache, in steps of 128 tokens (1,024, 1,152, …), and an entry lives a few minutes
//! after its last use.
//!
//! Tokens are the simulator's (words, after 8 for the prompt's frame): each prompt's running
//! hash is noted at every step boundary, and a later prompt is cached up to the longest boundary
//! whose hash is still fresh.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where caching starts, and its step.
const FIRST: u64 = 1024;
const STEP: u64 = 128;
/// How long an entry lives after its last use, unless configured otherwise.
pub const LIFE: Duration = Duration::from_secs(300);
/// Entries kept at most; past this, stale ones are dropped, then all if need be.
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
pub struct PromptCache {
    /// (deployment, hash of the prompt up to a boundary) → when last used.
    entries: Mutex<HashMap<u64, Instant>>,
}

impl PromptCache {
    /// The tokens of a prompt of `words` (after `frame` tokens) on `deployment` served from the
    /// cache, noting its prefixes for the next prompts.
    pub fn serve<'w>(
        &self,
        life: Duration,
        deployment: &str,
        frame: u64,
        words: impl Iterator<Item = &'w str>,
        now: Instant,
    ) -> u64 {
        let mut hasher = DefaultHasher::new();
        deployment.hash(&mut hasher);
        let mut boundaries = Vec::new();
        let mut tokens = frame;
        for word in words {
            word.hash(&mut hasher);
            tokens += 1;
            if tokens >= FIRST && (tokens - FIRST).is_multiple_of(STEP) {
                boundaries.push((tokens, hasher.finish()));
            }
        }
        if boundaries.is_empty() {
            return 0;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return 0;
        };
        let fresh = |at: Option<&Instant>| at.is_some_and(|t| now.duration_since(*t) < life);
        let cached = boundaries
            .iter()
            .rev()
            .find(|(_, hash)| fresh(entries.get(hash)))
            .map_or(0, |(tokens, _)| *tokens);
        if entries.len() + boundaries.len() > MAX_ENTRIES {
            entries.retain(|_, t| now.duration_since(*t) < life);
            if entries.len() + boundaries.len() > MAX_ENTRIES {
                entries.clear();
            }
        }
        for (_, hash) in boundaries {
            entries.insert(hash, now);
        }
        cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(system: &str, words: usize, question: &str) -> Vec<String> {
        let mut all: Vec<String> = (0..words).map(|i| format!("{system}{i}")).collect();
        all.push(question.into());
        all
    }

    #[test]
    fn a_shared_beginning_is_cached_in_steps_and_expires() {
        let cache = PromptCache::default();
        let t0 = Instant::now();
        let serve =
            |p: &[String], at| cache.serve(LIFE, "gpt", 8, p.iter().map(String::as_str), at);
        let first = prompt("sys", 1500, "one?");
        assert_eq!(serve(&first, t0), 0, "first sight");
        // Same 1,508-token system part, another question: cached to the last step within it.
        assert_eq!(serve(&prompt("sys", 1500, "two?"), t0), 1408);
        assert_eq!(
            serve(&first, t0),
            1408,
            "the whole prompt is 1,509: same step"
        );
        // Too short to cache.
        assert_eq!(serve(&prompt("sys", 900, "x"), t0), 0);
        assert_eq!(serve(&prompt("sys", 900, "x"), t0), 0);
        // Another deployment's cache is its own.
        let other = cache.serve(LIFE, "other", 8, first.iter().map(String::as_str), t0);
        assert_eq!(other, 0);
        // Entries live a few minutes after their last use.
        let later = t0 + LIFE + Duration::from_secs(1);
        assert_eq!(serve(&first, later), 0);
        assert_eq!(serve(&first, later), 1408);
    }
}
