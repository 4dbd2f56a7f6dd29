//! Edits to a JSON request body that leave every other byte as the client sent it.
//!
//! A body is read once ([`Members::read`]) for where its top-level members are written; edits
//! are then splices of those places (a key renamed, a member dropped with one of its commas, a
//! value replaced, a member added at the end), applied together in one copy ([`apply`]). The
//! gateway edits bodies for three reasons, each its own module's business: a backend's name for
//! the deployment (`deployment`), a backend deployment's parameter compatibility (`compat`),
//! and asking a stream for its usage (the handler).

use std::borrow::Cow;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::tokens::estimate::Prompt;
use crate::tokens::lex::{Action, Event, Kind, Lexer};

/// One member of an object: where its key (quotes included) and its value are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: Range<usize>,
    pub value: Range<usize>,
    pub kind: Kind,
    /// The key's text when it is written with escapes (else it is the bytes inside the quotes).
    escaped: Option<Box<str>>,
}

/// The members of a JSON object, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// Where the object's `{` is.
    pub open: usize,
    /// Just past its `}`.
    pub close: usize,
    pub list: Vec<Member>,
}

impl Members {
    /// The members of the object `body` holds (`None` if it holds no object), noting where its
    /// prompt's strings are on the way when given a [`Prompt`] to fill.
    pub fn read(body: &[u8], mut counter: Option<&mut Prompt>) -> Option<Members> {
        let mut lexer = Lexer::new();
        let mut open = None;
        let mut close = None;
        let mut list: Vec<Member> = Vec::new();
        let mut key: Option<(Range<usize>, Option<Box<str>>)> = None;
        // The counter asked to skip the value of the member whose key was just read.
        let mut skip_value = false;
        let mut on = |event: Event<'_>| {
            let wanted = counter.as_deref_mut().map(|c| c.on(&event));
            match event {
                Event::Begin {
                    depth: 0,
                    at,
                    kind: Kind::Object,
                } => open = Some(at),
                Event::End { depth: 0, end, .. } => close = Some(end),
                Event::Key {
                    depth: 1,
                    name,
                    range,
                } => {
                    let plain = body.get(range.start + 1..range.end - 1);
                    let escaped = match (name, plain) {
                        (Some(name), Some(plain)) if name != plain => {
                            Some(String::from_utf8_lossy(name).into())
                        }
                        (None, _) => Some("".into()),
                        _ => None,
                    };
                    key = Some((range, escaped));
                    // Its value's place is needed, whatever the counter thinks of it.
                    skip_value = wanted == Some(Action::Skip);
                    return Action::Continue;
                }
                Event::Begin { depth: 1, at, kind } => {
                    if let Some((range, escaped)) = key.take() {
                        list.push(Member {
                            key: range,
                            value: at..at,
                            kind,
                            escaped,
                        });
                    }
                    // Where it ends is all that is needed of it, unless its text is counted.
                    if wanted.is_none() || std::mem::take(&mut skip_value) {
                        return Action::Skip;
                    }
                }
                Event::End { depth: 1, end, .. } => {
                    if let Some(member) = list.last_mut() {
                        member.value.end = end;
                    }
                }
                _ => {}
            }
            wanted.unwrap_or(Action::Continue)
        };
        lexer.feed(body, &mut on);
        lexer.finish(&mut on);
        if lexer.broken() {
            return None;
        }
        Some(Members {
            open: open?,
            close: close?,
            list,
        })
    }

    /// The key of `member`, unescaped.
    pub fn name<'b>(&self, body: &'b [u8], member: &'b Member) -> &'b str {
        std::str::from_utf8(key_bytes(body, member)).unwrap_or("")
    }

    /// The member named `name`, and its index.
    pub fn find<'m>(&'m self, body: &[u8], name: &str) -> Option<(usize, &'m Member)> {
        self.list
            .iter()
            .enumerate()
            .find(|(_, m)| key_bytes(body, m) == name.as_bytes())
    }

    /// The value of member `name` as written.
    pub fn value<'b>(&self, body: &'b [u8], name: &str) -> Option<&'b [u8]> {
        let (_, member) = self.find(body, name)?;
        body.get(member.value.clone())
    }

    /// Splices that drop the members at `indexes`, each with one comma, so that what is left
    /// is an object without them.
    pub fn drop(&self, indexes: &[usize]) -> Vec<Splice> {
        let mut out = Vec::new();
        for &i in indexes {
            let Some(member) = self.list.get(i) else {
                continue;
            };
            let range = match (
                self.list.get(i + 1),
                i.checked_sub(1).map(|p| &self.list[p]),
            ) {
                // Up to the next key: the comma after it goes too.
                (Some(next), _) => member.key.start..next.key.start,
                // The last one: from the end of the one before, with the comma between.
                (None, Some(previous)) => previous.value.end..member.value.end,
                (None, None) => member.key.start..member.value.end,
            };
            out.push(Splice::delete(range));
        }
        out
    }

    /// A splice that adds `"name":value` as the last member.
    pub fn append(&self, name: &str, value: &str) -> Splice {
        let quoted = serde_json::Value::from(name).to_string();
        match self.list.last() {
            Some(last) => Splice::insert(last.value.end, format!(",{quoted}:{value}")),
            None => Splice::insert(self.open + 1, format!("{quoted}:{value}")),
        }
    }
}

/// A member's key, unescaped: the bytes inside its quotes, unless it was written with escapes.
fn key_bytes<'b>(body: &'b [u8], member: &'b Member) -> &'b [u8] {
    match &member.escaped {
        Some(text) => text.as_bytes(),
        None => body
            .get(member.key.start + 1..member.key.end.saturating_sub(1))
            .unwrap_or_default(),
    }
}

/// Bytes at `range` replaced by `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub with: Cow<'static, [u8]>,
}

impl Splice {
    pub fn delete(range: Range<usize>) -> Splice {
        Splice {
            range,
            with: Cow::Borrowed(b""),
        }
    }

    pub fn insert(at: usize, text: String) -> Splice {
        Splice {
            range: at..at,
            with: Cow::Owned(text.into_bytes()),
        }
    }

    pub fn replace(range: Range<usize>, text: String) -> Splice {
        Splice {
            range,
            with: Cow::Owned(text.into_bytes()),
        }
    }
}

/// `body` with every splice applied, in one copy; the body itself when there is none.
/// Deletions that overlap (two neighbouring members dropped) are merged; a splice outside the
/// body, or overlapping another that is not a deletion, is an error.
pub fn apply(body: &Bytes, mut splices: Vec<Splice>) -> Result<Bytes, String> {
    if splices.is_empty() {
        return Ok(body.clone());
    }
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    let mut merged: Vec<Splice> = Vec::with_capacity(splices.len());
    for splice in splices {
        if splice.range.end > body.len() || splice.range.start > splice.range.end {
            return Err(format!("an edit at {:?} is outside the body", splice.range));
        }
        match merged.last_mut() {
            Some(last) if splice.range.start < last.range.end => {
                if !(last.with.is_empty() && splice.with.is_empty()) {
                    return Err(format!(
                        "edits at {:?} and {:?} overlap",
                        last.range, splice.range
                    ));
                }
                last.range.end = last.range.end.max(splice.range.end);
            }
            _ => merged.push(splice),
        }
    }
    let grown: usize = merged.iter().map(|s| s.with.len()).sum();
    let mut out = BytesMut::with_capacity(body.len() + grown);
    let mut at = 0;
    for splice in &merged {
        out.extend_from_slice(&body[at..splice.range.start]);
        out.extend_from_slice(&splice.with);
        at = splice.range.end;
    }
    out.extend_from_slice(&body[at..]);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edited(body: &str, splices: impl FnOnce(&Members, &[u8]) -> Vec<Splice>) -> String {
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let members = Members::read(&bytes, None).expect("an object");
        let out = apply(&bytes, splices(&members, &bytes)).expect("applies");
        String::from_utf8(out.to_vec()).unwrap()
    }

    const BODY: &str = r#"{ "temperature" : 0.5,"max_tokens":10,
  "messages":[{"role":"user","content":"hi, \"you\""}], "top_p":1 }"#;

    #[test]
    fn finds_members_by_their_unescaped_names() {
        let members = Members::read(BODY.as_bytes(), None).unwrap();
        let names: Vec<&str> = members
            .list
            .iter()
            .map(|m| members.name(BODY.as_bytes(), m))
            .collect();
        assert_eq!(names, ["temperature", "max_tokens", "messages", "top_p"]);
        assert_eq!(
            members.value(BODY.as_bytes(), "max_tokens"),
            Some(&b"10"[..])
        );
        let escaped = br#"{"str\u0065am":true}"#;
        let members = Members::read(escaped, None).unwrap();
        assert_eq!(members.value(escaped, "stream"), Some(&b"true"[..]));
        assert!(Members::read(b"[1,2]", None).is_none());
        assert!(Members::read(b"{\"a\":", None).is_none());
    }

    #[test]
    fn drops_renames_and_appends_leave_every_other_byte() {
        let renamed = edited(BODY, |m, b| {
            let (_, max) = m.find(b, "max_tokens").unwrap();
            vec![Splice::replace(
                max.key.clone(),
                "\"max_completion_tokens\"".into(),
            )]
        });
        assert_eq!(
            renamed,
            BODY.replace("\"max_tokens\"", "\"max_completion_tokens\"")
        );
        let dropped = edited(BODY, |m, b| {
            let i = m.find(b, "temperature").unwrap().0;
            let j = m.find(b, "top_p").unwrap().0;
            m.drop(&[i, j])
        });
        assert_eq!(
            dropped,
            r#"{ "max_tokens":10,
  "messages":[{"role":"user","content":"hi, \"you\""}] }"#
        );
        let all = edited(r#"{"a":1,"b":2}"#, |m, _| m.drop(&[0, 1]));
        assert_eq!(all, "{}");
        let appended = edited(r#"{"stream":true}"#, |m, _| {
            vec![m.append("stream_options", r#"{"include_usage":true}"#)]
        });
        assert_eq!(
            appended,
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let into_empty = edited("{ }", |m, _| vec![m.append("a", "1")]);
        assert_eq!(into_empty, r#"{"a":1 }"#);
        let last_dropped_then_appended = edited(r#"{"a":1,"b":2}"#, |m, _| {
            let mut s = m.drop(&[1]);
            s.push(m.append("c", "3"));
            s
        });
        assert_eq!(last_dropped_then_appended, r#"{"a":1,"c":3}"#);
    }
}
