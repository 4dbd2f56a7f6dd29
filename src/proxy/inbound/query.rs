//! Query strings, read and rewritten without re-encoding what the client sent.

use std::borrow::Cow;

/// Decodes `%XX` escapes and `+` (as a form would send a space). Malformed escapes stay as they
/// are rather than failing: the service sees the same bytes either way.
pub fn decode(raw: &str) -> Cow<'_, str> {
    percent_decode(raw, true)
}

/// Decodes `%XX` escapes in a path segment, where `+` is just a plus.
pub fn decode_path(raw: &str) -> Cow<'_, str> {
    percent_decode(raw, false)
}

/// Encodes a value for a query string: everything but RFC 3986's unreserved characters.
pub fn encode(value: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if value.bytes().all(unreserved) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

fn percent_decode(raw: &str, plus_is_space: bool) -> Cow<'_, str> {
    let escaped = raw.contains('%') || (plus_is_space && raw.contains('+'));
    if !escaped {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Whether a path has a segment that a server normalising paths would read differently from
/// the gateway: `.` or `..` (raw or percent-encoded), or one with an encoded `/` or `\`.
pub fn has_unsafe_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = decode_path(segment);
        decoded == "." || decoded == ".." || decoded.contains(['/', '\\'])
    })
}

/// How many `name=value` pairs are named `name`.
pub fn count(raw: &str, name: &str) -> usize {
    pairs(raw).filter(|(k, _)| *k == name).count()
}

/// The decoded value of the first `name=value` pair named `name`.
pub fn get<'q>(raw: &'q str, name: &str) -> Option<Cow<'q, str>> {
    pairs(raw).find(|(k, _)| *k == name).map(|(_, v)| decode(v))
}

/// `key=value` pairs, still encoded; a key without `=` has an empty value.
pub fn pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// The query without the pairs named `name`, as the client encoded it.
pub fn without<'q>(raw: &'q str, name: &str) -> Cow<'q, str> {
    if !pairs(raw).any(|(k, _)| k == name) {
        return Cow::Borrowed(raw);
    }
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .collect();
    Cow::Owned(kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_finds() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode_path("a+b%20c"), "a+b c");
        assert_eq!(
            get("api-version=2024-10-21&x=1", "api-version").as_deref(),
            Some("2024-10-21")
        );
        assert_eq!(get("flag&x=1", "flag").as_deref(), Some(""));
        assert_eq!(get("x=1", "api-version"), None);
    }

    #[test]
    fn finds_dot_segments_however_they_are_written() {
        for path in [
            "/openai/deployments/../chat/completions",
            "/openai/./deployments",
            "/openai/deployments/%2e%2E/x",
            "/openai/deployments/.%2e/x",
            "/openai/deployments/a%2Fb/x",
            "/openai/deployments/a%5Cb/x",
            "/openai/..",
        ] {
            assert!(has_unsafe_segment(path), "{path}");
        }
        for path in [
            "/openai/deployments/gpt-4.1/chat",
            "/openai/deployments/...x/y",
            "/a/%252e%252e",
        ] {
            assert!(!has_unsafe_segment(path), "{path}");
        }
        assert_eq!(count("api-version=1&x=2&api-version=3", "api-version"), 2);
    }

    #[test]
    fn removes_a_parameter_and_keeps_the_rest_verbatim() {
        assert_eq!(
            without(
                "api-version=1&subscription-key=s&q=a%2Fb",
                "subscription-key"
            ),
            "api-version=1&q=a%2Fb"
        );
        assert_eq!(
            without("api-version=1", "subscription-key"),
            "api-version=1"
        );
        assert_eq!(without("subscription-key=s", "subscription-key"), "");
    }
}
