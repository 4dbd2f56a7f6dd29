//! Counting tokens the way the models do, for what no backend reports: the prompt of a call
//! before it is sent (to reserve it against a limit) and the text of an answer that came
//! without usage.
//!
//! Two encodings cover Azure OpenAI's models: `o200k_base` (GPT-4o, GPT-4.1, GPT-5, the o-series)
//! and `cl100k_base` (GPT-4, GPT-3.5, the text-embedding models). Their vocabularies are tables
//! the binary carries and reads in place ([`super::bpe`]); each encoding's pattern is compiled on
//! its first use, so an encoding no deployment uses costs nothing.

use std::sync::OnceLock;

use super::bpe::{Bpe, CL100K_PATTERN, O200K_PATTERN};

static O200K_TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.vocab"));
static CL100K_TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.vocab"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    O200k,
    Cl100k,
}

impl Encoding {
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "o200k_base" => Some(Encoding::O200k),
            "cl100k_base" => Some(Encoding::Cl100k),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200k => "o200k_base",
            Encoding::Cl100k => "cl100k_base",
        }
    }

    /// The encoding of the model a deployment (or model) name suggests: the GPT-4 and GPT-3.5
    /// generations and the text-embedding models use `cl100k_base`, everything newer
    /// `o200k_base`, which is also the guess for a name that says nothing.
    pub fn for_model(name: &str) -> Encoding {
        let name = name.to_ascii_lowercase();
        let newer = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt4o"];
        let older = [
            "gpt-35",
            "gpt-3.5",
            "gpt35",
            "gpt-4",
            "gpt4",
            "text-embedding",
            "ada",
        ];
        if newer.iter().any(|n| name.contains(n)) {
            Encoding::O200k
        } else if older.iter().any(|n| name.contains(n)) {
            Encoding::Cl100k
        } else {
            Encoding::O200k
        }
    }

    /// Made once per process, on first use.
    fn bpe(self) -> Option<&'static Bpe> {
        static O200K: OnceLock<Option<Bpe>> = OnceLock::new();
        static CL100K: OnceLock<Option<Bpe>> = OnceLock::new();
        match self {
            Encoding::O200k => O200K.get_or_init(|| Bpe::new(O200K_TABLE, O200K_PATTERN)),
            Encoding::Cl100k => CL100K.get_or_init(|| Bpe::new(CL100K_TABLE, CL100K_PATTERN)),
        }
        .as_ref()
    }

    /// Tokens in `text`, special-token markers counted as plain text (as the service does for
    /// user input).
    pub fn count(self, text: &str) -> u64 {
        match self.bpe() {
            Some(bpe) => bpe.count(text) as u64,
            // Only if the build wrote a broken table: about four bytes a token.
            None => text.len().div_ceil(4) as u64,
        }
    }

    /// Tokens in a JSON string's content as written, escapes and all (`Hello\u0020world`):
    /// counted as the text it stands for.
    pub fn count_json_text(self, raw: &[u8]) -> u64 {
        if !raw.contains(&b'\\')
            && let Ok(text) = std::str::from_utf8(raw)
        {
            return self.count(text);
        }
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        match serde_json::from_slice::<String>(&quoted) {
            Ok(text) => self.count(&text),
            Err(_) => raw.len().div_ceil(4) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_the_models() {
        assert_eq!(Encoding::O200k.count("hello world"), 2);
        assert_eq!(Encoding::Cl100k.count("hello world"), 2);
        assert_eq!(Encoding::O200k.count(""), 0);
        // The two vocabularies split other text differently.
        let text = "日本語のテキストを数える";
        assert_ne!(Encoding::O200k.count(text), Encoding::Cl100k.count(text));
    }

    #[test]
    fn picks_the_encoding_by_model_family() {
        assert_eq!(Encoding::for_model("gpt-4o-2024-08-06"), Encoding::O200k);
        assert_eq!(Encoding::for_model("o1-mini"), Encoding::O200k);
        assert_eq!(Encoding::for_model("gpt-4-turbo"), Encoding::Cl100k);
        assert_eq!(Encoding::for_model("gpt-35-turbo"), Encoding::Cl100k);
        assert_eq!(
            Encoding::for_model("text-embedding-3-small"),
            Encoding::Cl100k
        );
        assert_eq!(Encoding::for_model("chat"), Encoding::O200k);
        assert_eq!(Encoding::for_model("GPT-35-Turbo"), Encoding::Cl100k);
    }
}
