//! A backend deployment's parameter compatibility, applied to the body it is sent: fields
//! renamed (`max_tokens` → `max_completion_tokens` for a reasoning model) and fields dropped
//! (`temperature`, `top_p`), top-level only; every other byte goes as the client sent it.
//!
//! A rename whose target the body already has drops the source instead (the client's own value
//! of the target wins); a rename the route's request model cannot carry (its target is not a
//! field of the model) is not made. `check-config` refuses renames no operation of a served
//! api-version can carry (see `config::compat`).

use aoai_runtime::catalog::Route;

use super::edit::{Members, Splice};
use crate::config::Compat;
use crate::config::compat::request_fields;

/// The splices `compat` makes to a JSON body of `route`.
pub fn splices(compat: &Compat, route: &Route, body: &[u8], members: &Members) -> Vec<Splice> {
    let mut dropped: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for (from, to) in &compat.rename {
        let Some((index, member)) = members.find(body, from) else {
            continue;
        };
        if members.find(body, to).is_some() {
            dropped.push(index);
        } else if request_fields(route).is_some_and(|mut fields| fields.any(|f| f == to)) {
            let quoted = serde_json::Value::from(to.as_str()).to_string();
            out.push(Splice::replace(member.key.clone(), quoted));
        }
    }
    for field in &compat.drop {
        if let Some((index, _)) = members.find(body, field) {
            dropped.push(index);
        }
    }
    dropped.sort_unstable();
    dropped.dedup();
    out.extend(members.drop(&dropped));
    out
}

/// Whether `compat` touches `field`, so that the gateway leaves it alone for that backend.
pub fn touches(compat: &Compat, field: &str) -> bool {
    compat.drop.iter().any(|d| d == field)
        || compat.rename.iter().any(|(a, b)| a == field || b == field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::body::edit::apply;
    use bytes::Bytes;

    fn chat_route() -> &'static Route {
        crate::generated::API_VERSIONS
            .iter()
            .find(|v| v.version == "2024-10-21")
            .and_then(|v| {
                v.routes
                    .iter()
                    .copied()
                    .find(|r| r.path.ends_with("/chat/completions"))
            })
            .expect("chat")
    }

    fn applied(compat: &Compat, body: &str) -> String {
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let members = Members::read(&bytes, None).unwrap();
        let out = apply(&bytes, splices(compat, chat_route(), &bytes, &members)).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn renames_and_drops_only_the_named_fields() {
        let o1 = Compat {
            rename: vec![("max_tokens".into(), "max_completion_tokens".into())],
            drop: vec!["temperature".into(), "top_p".into()],
        };
        let body = r#"{"messages": [{"role": "user", "content": "Solve x"}],
 "max_tokens" : 4000, "temperature":0.2,"top_p":1, "seed": 7}"#;
        assert_eq!(
            applied(&o1, body),
            r#"{"messages": [{"role": "user", "content": "Solve x"}],
 "max_completion_tokens" : 4000, "seed": 7}"#
        );
        // The client's own value of the target wins.
        assert_eq!(
            applied(&o1, r#"{"max_tokens":1,"max_completion_tokens":2}"#),
            r#"{"max_completion_tokens":2}"#
        );
        // A model without the target field is not sent it.
        let odd = Compat {
            rename: vec![("max_tokens".into(), "no_such_field".into())],
            drop: Vec::new(),
        };
        assert_eq!(applied(&odd, r#"{"max_tokens":1}"#), r#"{"max_tokens":1}"#);
    }
}
