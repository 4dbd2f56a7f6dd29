//! What a creating answer tells the directory, read as the answer passes: the new object's
//! `id` (and its `expires_at`, when it has one), and the ids of top-level objects it names
//! (a thread-and-run's `thread_id`), as the route's `objects.records` lists them.
//!
//! A JSON answer's top-level members are read with the gateway's lexer, everything else
//! skipped; what it says is known at the document's end. An event stream's events are read
//! the same way, each event's data as the object itself or as its wrapper (the Responses API's
//! `{"type":"response.created","response":{…}}` wraps the object in a member named after its
//! kind); what it says is known at the end of the first event that names every record. Nothing
//! is held: the relay only waits, at that point, for the directory's write.

use aoai_runtime::catalog::Recorded;

use super::directory::{Entry, Write};
use crate::limits::now_ms;
use crate::tokens::lex::{Action, Event, Kind, Lexer};
use crate::tokens::sse::{Document, Reader};

/// An id or a time is short.
const VALUE_LIMIT: usize = 256;
/// A stream whose first events name no record is not read further.
const EVENTS_READ: usize = 16;
/// The member that says when an object expires (seconds since the epoch), for its entry.
const EXPIRES_AT: &str = "expires_at";

/// One object to record: its id, its entry, and how.
pub type Record = (String, Entry, Write);

/// Whose answer is read, and what for.
pub struct Plan {
    pub records: &'static [Recorded],
    /// The kind the operation creates: the member an event may wrap the object in.
    pub creates: &'static str,
    /// The subscription that created it, and the backend that answered, by name.
    pub owner: String,
    pub backend: String,
}

/// Reads a creating answer for its records.
pub struct Learner {
    plan: Plan,
    reading: Reading,
    /// Events read so far (a stream).
    events: usize,
    done: bool,
}

enum Reading {
    Json(Members),
    Events(Reader<Members>),
}

impl Learner {
    /// A learner for an answer in JSON, or (`events`) a stream of server-sent events.
    pub fn new(plan: Plan, events: bool) -> Learner {
        let members = Members::new(&plan);
        Learner {
            reading: if events {
                Reading::Events(Reader::with(members))
            } else {
                Reading::Json(members)
            },
            plan,
            events: 0,
            done: false,
        }
    }

    /// Reads the next chunk; the records, once, when the chunk completes what they need.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Vec<Record>> {
        if self.done {
            return None;
        }
        let found = match &mut self.reading {
            Reading::Json(members) => {
                members.feed(chunk);
                members.lexer.done().then(|| members.take())
            }
            Reading::Events(reader) => {
                let wanted = self.plan.records.len();
                let mut complete = None;
                let events = &mut self.events;
                reader.feed(chunk, &mut |_| {}, &mut |event| {
                    *events += 1;
                    let named = event.found.iter().take(wanted).filter(|v| v.is_some());
                    if complete.is_none() && named.count() == wanted {
                        complete = Some(event.found);
                    }
                });
                if complete.is_none() && self.events >= EVENTS_READ {
                    self.done = true;
                }
                complete
            }
        }?;
        self.done = true;
        Some(self.records(found))
    }

    /// The answer has ended: records a stream's last event (one without its blank line) gave.
    pub fn finish(&mut self) -> Option<Vec<Record>> {
        if self.done {
            return None;
        }
        self.done = true;
        let Reading::Events(reader) = &mut self.reading else {
            // A JSON answer that never completed (cut short) records nothing.
            return None;
        };
        let wanted = self.plan.records.len();
        let mut complete = None;
        reader.finish(&mut |_| {}, &mut |event| {
            if event.found.iter().take(wanted).all(Option::is_some) {
                complete = Some(event.found);
            }
        });
        complete.map(|found| self.records(found))
    }

    /// The records of what an answer said: `values` are the records' fields, then
    /// `expires_at`.
    fn records(&self, values: Vec<Option<String>>) -> Vec<Record> {
        let now = now_ms();
        let expires = values
            .get(self.plan.records.len())
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| s.saturating_mul(1000))
            .filter(|&ms| ms > now);
        self.plan
            .records
            .iter()
            .zip(values)
            .filter_map(|(record, value)| {
                let id = value.filter(|v| !v.is_empty())?;
                let own = record.field == "id";
                let kept = u64::try_from(super::kept_for(record.kind).as_millis()).unwrap_or(0);
                let entry = Entry {
                    backend: self.plan.backend.clone(),
                    owner: self.plan.owner.clone(),
                    kind: record.kind.to_string(),
                    expires_ms: expires.filter(|_| own).unwrap_or(now.saturating_add(kept)),
                };
                let write = if own { Write::Replace } else { Write::IfAbsent };
                Some((id, entry, write))
            })
            .collect()
    }
}

/// Reads the top-level string and number members it wants from one JSON document, or from
/// its wrapper member's object.
struct Members {
    lexer: Lexer,
    wanted: Wanted,
}

/// What [`Members`] looks for, and has found of it.
struct Wanted {
    /// The records' fields, then `expires_at`.
    names: Vec<&'static str>,
    wrapper: &'static str,
    /// The member at depth 1 being read is the wrapper.
    in_wrapper: bool,
    /// The wanted member whose key was just read, by index in `names`.
    key: Option<usize>,
    capturing: Option<usize>,
    values: Vec<Option<String>>,
}

impl Members {
    fn new(plan: &Plan) -> Members {
        let mut names: Vec<&'static str> = plan.records.iter().map(|r| r.field).collect();
        names.push(EXPIRES_AT);
        Members {
            lexer: Lexer::new(),
            wanted: Wanted {
                values: vec![None; names.len()],
                names,
                wrapper: plan.creates,
                in_wrapper: false,
                key: None,
                capturing: None,
            },
        }
    }

    fn feed(&mut self, piece: &[u8]) {
        self.lexer.feed(piece, &mut |event| self.wanted.on(event));
    }

    fn take(&mut self) -> Vec<Option<String>> {
        self.lexer.finish(&mut |event| self.wanted.on(event));
        self.lexer.reset();
        let w = &mut self.wanted;
        (w.in_wrapper, w.key, w.capturing) = (false, None, None);
        std::mem::replace(&mut w.values, vec![None; w.names.len()])
    }
}

impl Wanted {
    fn on(&mut self, event: Event<'_>) -> Action {
        match event {
            Event::Key { depth, name, .. } => {
                let name = name.and_then(|n| std::str::from_utf8(n).ok());
                if depth == 1 {
                    self.in_wrapper = name == Some(self.wrapper);
                }
                self.key = name.and_then(|n| self.names.iter().position(|w| *w == n));
                if (depth == 1 && self.in_wrapper) || self.key.is_some() {
                    Action::Continue
                } else {
                    Action::Skip
                }
            }
            Event::Begin { depth, kind, .. } => match (depth, kind) {
                (0, Kind::Object) => Action::Continue,
                (1, Kind::Object) if self.in_wrapper => Action::Continue,
                (1 | 2, Kind::String | Kind::Literal { .. }) if self.key.is_some() => {
                    self.capturing = self.key.take();
                    Action::Capture(VALUE_LIMIT)
                }
                _ => Action::Skip,
            },
            Event::End { captured, .. } => {
                if let Some(i) = self.capturing.take()
                    && let Some(raw) = captured
                    && let Some(slot) = self.values.get_mut(i)
                    && slot.is_none()
                {
                    *slot = match raw.first() {
                        Some(b'"') => serde_json::from_slice::<String>(raw).ok(),
                        _ => std::str::from_utf8(raw).ok().map(str::to_string),
                    };
                }
                Action::Continue
            }
            Event::Text { .. } => Action::Continue,
        }
    }
}

impl Document for Members {
    type Found = Vec<Option<String>>;

    fn feed_at(&mut self, at: usize, piece: &[u8], _: &mut impl FnMut(&[u8])) {
        self.lexer
            .feed_at(at, piece, &mut |event| self.wanted.on(event));
    }

    fn take(&mut self, _: &mut impl FnMut(&[u8])) -> Vec<Option<String>> {
        Members::take(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FILE: [Recorded; 1] = [Recorded {
        field: "id",
        kind: "file",
    }];
    static THREAD_AND_RUN: [Recorded; 1] = [Recorded {
        field: "thread_id",
        kind: "thread",
    }];
    static RESPONSE: [Recorded; 1] = [Recorded {
        field: "id",
        kind: "response",
    }];

    fn plan(records: &'static [Recorded], creates: &'static str) -> Plan {
        Plan {
            records,
            creates,
            owner: "team-a".into(),
            backend: "eastus".into(),
        }
    }

    /// Feeds `answer` in pieces of `step`; the chunk index that completed the records, and
    /// them.
    fn learn(learner: &mut Learner, answer: &str, step: usize) -> Option<(usize, Vec<Record>)> {
        for (i, piece) in answer.as_bytes().chunks(step).enumerate() {
            if let Some(records) = learner.feed(piece) {
                return Some((i, records));
            }
        }
        learner.finish().map(|r| (usize::MAX, r))
    }

    #[test]
    fn a_json_answer_is_known_at_its_end() {
        let answer = r#"{"object":"file","id":"file-abc","bytes":3,"expires_at":4102444800,"nested":{"id":"no"}}"#;
        for step in [1, 5, answer.len()] {
            let mut learner = Learner::new(plan(&FILE, "file"), false);
            let (at, records) = learn(&mut learner, answer, step).expect("learnt");
            assert_eq!(at, answer.len().div_ceil(step) - 1, "the last chunk");
            assert_eq!(records.len(), 1);
            let (id, entry, write) = &records[0];
            assert_eq!((id.as_str(), write), ("file-abc", &Write::Replace));
            assert_eq!(entry.expires_ms, 4_102_444_800_000);
            assert_eq!(
                (entry.owner.as_str(), entry.backend.as_str()),
                ("team-a", "eastus")
            );
        }
        // A run names the thread it made; a reference is recorded only if absent.
        let mut learner = Learner::new(plan(&THREAD_AND_RUN, "run"), false);
        let (_, records) =
            learn(&mut learner, r#"{"id":"run_1","thread_id":"thread_9"}"#, 4).unwrap();
        assert_eq!(records[0].0, "thread_9");
        assert_eq!(records[0].2, Write::IfAbsent);
        // Cut short: nothing.
        let mut learner = Learner::new(plan(&FILE, "file"), false);
        assert!(learn(&mut learner, r#"{"id":"file-abc","by"#, 3).is_none());
    }

    #[test]
    fn a_stream_is_known_at_its_first_event_that_names_the_object() {
        let stream = concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\"}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
            "data: [DONE]\n\n",
        );
        let first_event = stream.find("\n\n").unwrap() + 2;
        for step in [1, 7, stream.len()] {
            let mut learner = Learner::new(plan(&RESPONSE, "response"), true);
            let (at, records) = learn(&mut learner, stream, step).expect("learnt");
            assert_eq!(at, (first_event - 1) / step, "at the first event's end");
            assert_eq!(records[0].0, "resp_1");
            let kept = records[0].1.expires_ms - now_ms();
            assert!(kept > 29 * 24 * 3600 * 1000, "a response is kept 30 days");
        }
        // A stream that names no object is read no further than its first events.
        let mut learner = Learner::new(plan(&RESPONSE, "response"), true);
        let noise = "data: {\"type\":\"x\"}\n\n".repeat(EVENTS_READ + 1);
        assert!(learn(&mut learner, &noise, 64).is_none());
        assert!(learner.done);
    }
}
