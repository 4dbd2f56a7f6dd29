//! The stored objects a call names: by its path's parameters (`{response_id}`), outermost first,
//! and by the fields of its JSON body that the spec says name one (`previous_response_id`,
//! `tools[].vector_store_ids[]`), as the route's [`Objects`] lists them.
//!
//! The body is read with the gateway's JSON lexer along those fields' paths only: everything
//! else is skipped unread, and a body that holds none of the fields' names is not read at all.

use std::borrow::Cow;
use std::cell::RefCell;

use aoai_runtime::catalog::{FieldObject, Objects, Step};
use memchr::memmem::Finder;

use crate::tokens::lex::{Action, Event, Kind, Lexer};

/// An id longer than this is no id the gateway follows (Azure's are under 64 characters).
const ID_LIMIT: usize = 256;

/// An object a call names.
#[derive(Debug, Clone)]
pub struct Named<'a> {
    pub kind: &'static str,
    pub id: Cow<'a, str>,
    /// Where the call names it: a path parameter or a body field, as the client wrote it.
    pub by: By,
}

#[derive(Debug, Clone, Copy)]
pub enum By {
    Path(&'static str),
    Field(&'static FieldObject),
}

impl By {
    /// The parameter or field, for messages (`previous_response_id`, `file_ids[]`).
    pub fn param(&self) -> Cow<'static, str> {
        match self {
            By::Path(name) => Cow::Borrowed(name),
            By::Field(field) => Cow::Owned(field.path_text()),
        }
    }
}

/// The objects a path names, outermost first, of the kinds `kept`.
pub fn in_path<'a>(
    objects: &Objects,
    param: impl Fn(&str) -> Option<Cow<'a, str>>,
    kept: impl Fn(&str) -> bool,
) -> Vec<Named<'a>> {
    objects
        .path
        .iter()
        .filter(|p| kept(p.kind))
        .filter_map(|p| {
            Some(Named {
                kind: p.kind,
                id: param(p.param)?,
                by: By::Path(p.param),
            })
        })
        .collect()
}

/// The objects a JSON body names in `fields`, of the kinds `kept`, in the body's order.
pub fn in_body(
    fields: &'static [FieldObject],
    body: &[u8],
    kept: impl Fn(&str) -> bool,
) -> Vec<Named<'static>> {
    // Most bodies name nothing: without the last member name of any field, there is nothing
    // to read.
    let mentioned = fields
        .iter()
        .filter(|f| kept(f.kind))
        .any(|f| last_name(f).is_some_and(|name| contains(body, name)));
    if !mentioned {
        return Vec::new();
    }
    let fields: Vec<&'static FieldObject> = fields.iter().filter(|f| kept(f.kind)).collect();
    let mut walk = Walk {
        fields: &fields,
        at: Vec::new(),
        capturing: None,
        found: Vec::new(),
    };
    let mut lexer = Lexer::new();
    lexer.feed(body, &mut |event| walk.on(event));
    lexer.finish(&mut |event| walk.on(event));
    walk.found
}

/// The name of the last member on a field's path (`file_id` for `input[].content[].file_id`).
fn last_name(field: &FieldObject) -> Option<&'static str> {
    field.path.iter().rev().find_map(|s| match s {
        Step::Member(name) => Some(*name),
        Step::Items => None,
    })
}

/// Whether `body` contains `name`, with a searcher built once per name and thread: building
/// one costs more than searching a small body.
fn contains(body: &[u8], name: &'static str) -> bool {
    thread_local! {
        static FINDERS: RefCell<Vec<(&'static str, Finder<'static>)>> =
            const { RefCell::new(Vec::new()) };
    }
    FINDERS.with_borrow_mut(|finders| {
        let at = match finders.iter().position(|(n, _)| std::ptr::eq(*n, name)) {
            Some(at) => at,
            None => {
                finders.push((name, Finder::new(name.as_bytes())));
                finders.len() - 1
            }
        };
        finders[at].1.find(body).is_some()
    })
}

/// A step of the path the lexer is at: a member's name (`None` if too long to keep), or an
/// item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    Member(Option<Vec<u8>>),
    Item,
}

struct Walk<'f> {
    fields: &'f [&'static FieldObject],
    /// `at[d - 1]` leads to the value at depth `d`.
    at: Vec<At>,
    /// The field whose string value is being captured.
    capturing: Option<&'static FieldObject>,
    found: Vec<Named<'static>>,
}

impl Walk<'_> {
    fn on(&mut self, event: Event<'_>) -> Action {
        match event {
            Event::Key { depth, name, .. } => {
                self.at.truncate(depth - 1);
                self.at.push(At::Member(name.map(<[u8]>::to_vec)));
                if self.leads() {
                    Action::Continue
                } else {
                    Action::Skip
                }
            }
            Event::Begin { depth, kind, .. } => {
                if depth == 0 {
                    return Action::Continue;
                }
                // An item of an array: its step is the item's.
                if self.at.len() < depth {
                    self.at.push(At::Item);
                }
                self.at.truncate(depth);
                if kind == Kind::String
                    && let Some(field) = self.exactly()
                {
                    self.capturing = Some(field);
                    return Action::Capture(ID_LIMIT);
                }
                if matches!(kind, Kind::Object | Kind::Array) && self.leads() {
                    Action::Continue
                } else {
                    Action::Skip
                }
            }
            Event::End {
                depth, captured, ..
            } => {
                if let Some(field) = self.capturing.take()
                    && let Some(id) = captured
                        .and_then(|raw| serde_json::from_slice::<String>(raw).ok())
                        .filter(|id| !id.is_empty())
                {
                    self.found.push(Named {
                        kind: field.kind,
                        id: Cow::Owned(id),
                        by: By::Field(field),
                    });
                }
                // The items of an array at `depth` each begin with a new step.
                self.at.truncate(depth.saturating_sub(1));
                Action::Continue
            }
            Event::Text { .. } => Action::Continue,
        }
    }

    /// Whether the path so far is the start of a field's path (or the whole of it).
    fn leads(&self) -> bool {
        self.fields
            .iter()
            .any(|f| self.at.len() <= f.path.len() && self.along(f.path))
    }

    /// The field whose path the path so far is.
    fn exactly(&self) -> Option<&'static FieldObject> {
        self.fields
            .iter()
            .copied()
            .find(|f| self.at.len() == f.path.len() && self.along(f.path))
    }

    fn along(&self, path: &[Step]) -> bool {
        self.at.iter().zip(path).all(|(at, step)| match (at, step) {
            (At::Member(Some(name)), Step::Member(wanted)) => name == wanted.as_bytes(),
            (At::Item, Step::Items) => true,
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FIELDS: [FieldObject; 3] = [
        FieldObject {
            path: &[Step::Member("previous_response_id")],
            kind: "response",
        },
        FieldObject {
            path: &[
                Step::Member("tools"),
                Step::Items,
                Step::Member("vector_store_ids"),
                Step::Items,
            ],
            kind: "vector_store",
        },
        FieldObject {
            path: &[
                Step::Member("input"),
                Step::Items,
                Step::Member("content"),
                Step::Items,
                Step::Member("file_id"),
            ],
            kind: "file",
        },
    ];

    fn ids(body: &str) -> Vec<(&'static str, String)> {
        in_body(&FIELDS, body.as_bytes(), |_| true)
            .into_iter()
            .map(|n| (n.kind, n.id.into_owned()))
            .collect()
    }

    #[test]
    fn fields_are_read_along_their_paths_only() {
        let body = r#"{"model":"m","previous_response_id":"resp_1","input":[{"role":"user","content":[{"type":"input_text","text":"file_id"},{"type":"input_file","file_id":"file-\u0041"}]}],"tools":[{"type":"file_search","vector_store_ids":["vs_1","vs_2"]},{"type":"web"}],"metadata":{"previous_response_id":"not this"}}"#;
        assert_eq!(
            ids(body),
            [
                ("response", "resp_1".to_string()),
                ("file", "file-A".to_string()),
                ("vector_store", "vs_1".to_string()),
                ("vector_store", "vs_2".to_string()),
            ]
        );
        // Nothing named, or named with the wrong type: nothing followed.
        assert!(ids(r#"{"model":"m","input":"hello"}"#).is_empty());
        assert!(
            ids(r#"{"previous_response_id":null,"tools":[{"vector_store_ids":"vs"}]}"#).is_empty()
        );
        // Only the kinds kept.
        let kept = in_body(
            &FIELDS,
            br#"{"previous_response_id":"r","tools":[{"vector_store_ids":["v"]}]}"#,
            |k| k == "vector_store",
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].by.param(), "tools[].vector_store_ids[]");
    }
}
