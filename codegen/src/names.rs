//! Rust names for spec names.
//!
//! Every generated item keeps the spec's own name next to the Rust one (in `serde(rename)` or in a
//! doc line), so the rules here only have to produce names a person would write: PascalCase types
//! and variants, snake_case fields and functions, a trailing underscore for keywords, and a
//! numeric suffix where two spec names would otherwise collide.

use std::collections::HashSet;

/// Words Rust reserves in any edition we compile with; a field named like one gets a trailing
/// underscore (`type` becomes `type_`).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Type names the generated code itself uses unqualified; a schema with one of these names gets a
/// `Schema` suffix so it cannot shadow them.
pub const RESERVED_TYPE_NAMES: &[&str] = &[
    "Self",
    "Option",
    "String",
    "Vec",
    "Box",
    "Result",
    "BTreeMap",
    "Value",
    "Map",
    "Deserialize",
    "Serialize",
    "Deserializer",
    "Serializer",
];

/// Splits a spec name into words: at every character that is not a letter or digit, and where a
/// lower-case letter or digit is followed by an upper-case one (`chatCompletion` → `chat`,
/// `Completion`). Runs of capitals stay together (`APIKey` → `APIKey`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev
            && c.is_ascii_uppercase()
            && (p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
        prev = Some(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `createChatCompletionRequest` → `CreateChatCompletionRequest`, `chat.completion.chunk` →
/// `ChatCompletionChunk`, `[DONE]` → `Done`. Mixed-case words keep their capitals
/// (`CosmosDB`); all-capital words do not shout. May start with a digit; callers that need an
/// identifier use [`type_ident`] or [`variant_ident`].
pub fn pascal(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| {
            let all_caps = w.len() > 1 && !w.chars().any(|c| c.is_ascii_lowercase());
            let mut chars = w.chars();
            match chars.next() {
                Some(first) if all_caps => first.to_string() + &chars.as_str().to_ascii_lowercase(),
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `deployment-id` → `deployment_id`, `fieldsMapping` → `fields_mapping`, `type` → `type_`.
pub fn snake(name: &str) -> String {
    let mut s = words(name)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_");
    if s.is_empty() {
        s.push_str("value");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "n_");
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// `ChatCompletions_Create` → `CHAT_COMPLETIONS_CREATE`.
pub fn screaming(name: &str) -> String {
    snake(name).trim_end_matches('_').to_ascii_uppercase()
}

/// A type name for a schema name, never one of [`RESERVED_TYPE_NAMES`] and never starting with a
/// digit.
pub fn type_ident(name: &str) -> String {
    let mut s = pascal(name);
    if s.is_empty() {
        s.push_str("Unnamed");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'T');
    }
    if RESERVED_TYPE_NAMES.contains(&s.as_str()) {
        s.push_str("Schema");
    }
    s
}

/// A variant name for an enum value. Values that start with a digit borrow the last word of the
/// enum's name, so the image size `1024x1024` of `ImageSize` becomes `Size1024x1024`.
pub fn variant_ident(value: &str, enum_name: &str) -> String {
    let s = pascal(value);
    if s.is_empty() {
        return "Empty".to_string();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let last_word = words(enum_name).pop().unwrap_or_else(|| "V".to_string());
        return pascal(&last_word) + &s;
    }
    if s == "Self" {
        return "Self_".to_string();
    }
    s
}

/// A module name for an api-version: `2024-10-21` → `v2024_10_21`; `v1` stays `v1`.
pub fn version_module(version: &str) -> String {
    let s: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches('_');
    if s.starts_with(|c: char| c.is_ascii_alphabetic()) && !KEYWORDS.contains(&s) {
        s.to_string()
    } else {
        format!("v{s}")
    }
}

/// Hands out names unique within one scope by adding `2`, `3`, … to a name already taken.
#[derive(Debug, Default)]
pub struct Namespace {
    taken: HashSet<String>,
}

impl Namespace {
    pub fn with_reserved(reserved: &[&str]) -> Self {
        Namespace {
            taken: reserved.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn claim(&mut self, wanted: &str) -> String {
        if self.taken.insert(wanted.to_string()) {
            return wanted.to_string();
        }
        // A trailing underscore (from a keyword) reads badly before a number.
        let stem = wanted.trim_end_matches('_');
        (2..)
            .map(|n| format!("{stem}{n}"))
            .find(|candidate| self.taken.insert(candidate.clone()))
            .unwrap_or_else(|| unreachable!("an unbounded range always yields a free name"))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.taken.contains(name)
    }
}

/// Escapes a JSON pointer token (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_conversions() {
        assert_eq!(
            pascal("createChatCompletionRequest"),
            "CreateChatCompletionRequest"
        );
        assert_eq!(pascal("chat.completion.chunk"), "ChatCompletionChunk");
        assert_eq!(pascal("b64_json"), "B64Json");
        assert_eq!(pascal("onYourDataAPIKey"), "OnYourDataAPIKey");
        assert_eq!(pascal("[DONE]"), "Done");
        assert_eq!(pascal("TEXT_COMPLETION"), "TextCompletion");
        assert_eq!(snake("deployment-id"), "deployment_id");
        assert_eq!(snake("fieldsMapping"), "fields_mapping");
        assert_eq!(snake("type"), "type_");
        assert_eq!(snake("gen"), "gen_");
        assert_eq!(snake("1d"), "n_1d");
        assert_eq!(
            screaming("ChatCompletions_Create"),
            "CHAT_COMPLETIONS_CREATE"
        );
        assert_eq!(type_ident("error"), "Error");
        assert_eq!(type_ident("string"), "StringSchema");
        assert_eq!(type_ident("3d"), "T3d");
        assert_eq!(variant_ident("1024x1024", "ImageSize"), "Size1024x1024");
        assert_eq!(variant_ident("", "X"), "Empty");
        assert_eq!(version_module("2024-09-01-preview"), "v2024_09_01_preview");
        assert_eq!(version_module("v1"), "v1");
        assert_eq!(version_module("preview"), "preview");
    }

    #[test]
    fn namespace_suffixes_collisions() {
        let mut ns = Namespace::with_reserved(&["extra"]);
        assert_eq!(ns.claim("a"), "a");
        assert_eq!(ns.claim("a"), "a2");
        assert_eq!(ns.claim("extra"), "extra2");
        assert_eq!(ns.claim("type_"), "type_");
        assert_eq!(ns.claim("type_"), "type2");
    }
}
