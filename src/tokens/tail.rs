//! The usage of a whole JSON answer, read from its end.
//!
//! Azure writes `usage` last, or nearly, among an answer's top-level members. So for an answer
//! whose whole body is at hand, the last `"usage"` key is found with a vectorised search from the
//! end, and proven to be a member of the root object: it follows a `{` or `,`, and what follows
//! its value closes the root object exactly at the end of the body (brackets counted, strings
//! jumped). A `"usage"` in a string cannot be mistaken for it: inside a string a quote is
//! escaped. When the proof fails (no such key, a nested one last, a value that is not an object
//! or `null`), the answer says nothing and the caller reads the body from the start.

use std::sync::LazyLock;

use memchr::memmem;

use super::lex::STRUCTURAL;
use super::scan::Scan;
use super::usage::Usage;

/// What the end of a whole answer says of its usage: `Some(None)` is a proven `null`.
pub fn usage(body: &[u8]) -> Option<Option<Usage>> {
    static KEY: LazyLock<memmem::FinderRev<'static>> =
        LazyLock::new(|| memmem::FinderRev::new(b"\"usage\""));
    let key = KEY.rfind(body)?;
    let before = body[..key].iter().rposition(|b| !is_blank(*b))?;
    if !matches!(body[before], b'{' | b',') {
        return None;
    }
    let colon = key + 7 + blanks(&body[key + 7..]);
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let start = colon + 1 + blanks(&body[colon + 1..]);
    let value = body.get(start..)?;
    let (end, usage) = if value.starts_with(b"null") {
        (start + 4, None)
    } else if value.first() == Some(&b'{') {
        let mut counts = [None; 5];
        match flat(value, 0, None, &mut counts) {
            Some(len) => (start + len, counted(counts)),
            // Not as simple as usage objects are: the scan reads it.
            None => {
                let len = skip_value(value)?;
                (start + len, scanned(&value[..len]))
            }
        }
    } else {
        return None;
    };
    closes_root(&body[end..]).then_some(usage)
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn blanks(bytes: &[u8]) -> usize {
    let mut n = 0;
    while n < bytes.len() && is_blank(bytes[n]) {
        n += 1;
    }
    n
}

/// The length of the string `bytes` starts with, quotes included.
fn skip_string(bytes: &[u8]) -> Option<usize> {
    let mut at = 1;
    loop {
        at += bytes
            .get(at..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        at += 2;
    }
}

/// The length of the string or container `bytes` starts with.
fn skip_value(bytes: &[u8]) -> Option<usize> {
    if bytes.first() == Some(&b'"') {
        return skip_string(bytes);
    }
    let mut depth = 0usize;
    let mut at = 0;
    loop {
        at += bytes
            .get(at..)?
            .iter()
            .position(|&b| STRUCTURAL[usize::from(b)])?;
        match bytes[at] {
            b'"' => at += skip_string(&bytes[at..])?,
            b'{' | b'[' => {
                depth += 1;
                at += 1;
            }
            _ => {
                depth = depth.checked_sub(1)?;
                at += 1;
                if depth == 0 {
                    return Some(at);
                }
            }
        }
    }
}

/// Whether `rest`, read from inside the root object, closes it and ends there.
fn closes_root(rest: &[u8]) -> bool {
    let mut at = 0;
    while at < rest.len() {
        match rest[at] {
            b'}' => return rest[at + 1..].iter().all(|b| is_blank(*b)),
            b'{' | b'[' | b'"' => match skip_value(&rest[at..]) {
                Some(len) => at += len,
                None => return false,
            },
            b']' => return false,
            _ => at += 1,
        }
    }
    false
}

fn counted([prompt, completion, total, cached, reasoning]: [Option<u64>; 5]) -> Option<Usage> {
    if prompt.is_none() && completion.is_none() && total.is_none() {
        return None;
    }
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    Some(Usage {
        prompt: p,
        completion: c,
        total: total.unwrap_or(p.saturating_add(c)),
        reasoning: reasoning.unwrap_or(0),
        cached: cached.unwrap_or(0),
    })
}

/// A usage object read by the scan, as the one member of a document.
fn scanned(object: &[u8]) -> Option<Usage> {
    let mut scan = Scan::new();
    let mut none = |_: &[u8]| {};
    scan.feed_at(0, b"{\"usage\":", &mut none);
    scan.feed_at(9, object, &mut none);
    scan.feed_at(9 + object.len(), b"}", &mut none);
    scan.take(&mut none).usage
}

/// Which count a key names, in `counts`, under `within` (the details object it is in).
fn slot(key: &[u8], within: Option<&[u8]>) -> Option<usize> {
    match (within, key) {
        (None, b"prompt_tokens" | b"input_tokens") => Some(0),
        (None, b"completion_tokens" | b"output_tokens") => Some(1),
        (None, b"total_tokens") => Some(2),
        (Some(b"prompt_tokens_details" | b"input_tokens_details"), b"cached_tokens") => Some(3),
        (Some(b"completion_tokens_details" | b"output_tokens_details"), b"reasoning_tokens") => {
            Some(4)
        }
        _ => None,
    }
}

/// Reads the object `bytes` starts with, a usage object's members being counts or objects of
/// counts (the details), into `counts`; its length, or `None` if it is not that simple (an
/// escaped key, a count that is not a plain number).
fn flat(
    bytes: &[u8],
    depth: u8,
    within: Option<&[u8]>,
    counts: &mut [Option<u64>; 5],
) -> Option<usize> {
    let mut at = 1;
    loop {
        at += blanks(bytes.get(at..)?);
        match *bytes.get(at)? {
            b'}' => return Some(at + 1),
            b',' => {
                at += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let len = bytes[at + 1..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        if bytes[at + 1 + len] != b'"' {
            return None;
        }
        let key = &bytes[at + 1..at + 1 + len];
        at += len + 2;
        at += blanks(bytes.get(at..)?);
        if *bytes.get(at)? != b':' {
            return None;
        }
        at += 1;
        at += blanks(bytes.get(at..)?);
        match *bytes.get(at)? {
            b'0'..=b'9' => {
                let mut count: u64 = 0;
                while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
                    count = count.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                    at += 1;
                }
                if matches!(bytes.get(at), Some(b'.' | b'e' | b'E')) {
                    return None;
                }
                if let Some(i) = slot(key, within) {
                    counts[i] = Some(count);
                }
            }
            b'{' if depth == 0 => at += flat(&bytes[at..], 1, Some(key), counts)?,
            b'n' if bytes[at..].starts_with(b"null") => at += 4,
            b'"' | b'{' | b'[' => at += skip_value(&bytes[at..])?,
            b't' if bytes[at..].starts_with(b"true") => at += 4,
            b'f' if bytes[at..].starts_with(b"false") => at += 5,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_usage_is_found_from_the_end() {
        let answer = br#"{"id":"c","choices":[{"message":{"content":"say \"usage\": {\"total_tokens\":9}"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"completion_tokens_details":{"reasoning_tokens":2}} }
"#;
        let found = usage(answer).expect("proven").expect("counts");
        assert_eq!((found.prompt, found.total, found.reasoning), (3, 7, 2));
        // Not last: what follows still closes the root.
        let more = br#"{"usage":{"total_tokens":5},"system_fingerprint":"fp","x":{"y":[1,"}"]}}"#;
        assert_eq!(usage(more).map(|u| u.map(|u| u.total)), Some(Some(5)));
        assert_eq!(usage(br#"{"a":1,"usage":null}"#), Some(None));
        // A usage object with more in it than counts is still read.
        let odd = br#"{"usage":{"type":"tokens","input_tokens":4,"input_tokens_details":{"text_tokens":4,"cached_tokens":1},"output_tokens":2,"extra":[1,{"a":"}"}]}}"#;
        let found = usage(odd).expect("proven").expect("counts");
        assert_eq!(
            (found.prompt, found.completion, found.total, found.cached),
            (4, 2, 6, 1)
        );
        let escaped = br#"{"usage":{"total_tokens":3}}"#;
        assert_eq!(usage(escaped).map(|u| u.map(|u| u.total)), Some(Some(3)));
    }

    #[test]
    fn anything_unproven_says_nothing() {
        for body in [
            &br#"{"usage":{"total_tokens":5},"meta":{"usage":{"total_tokens":1}}}"#[..],
            br#"{"a":{"usage":{"total_tokens":1}}}"#,
            br#"{"kind":"usage"}"#,
            br#"{"usage":{"total_tokens":1}"#,
            br#"{"usage":{"total_tokens":1}}, "#,
            br#"{"usage":7}"#,
            b"no json at all",
        ] {
            assert_eq!(usage(body), None, "{}", String::from_utf8_lossy(body));
        }
    }
}
