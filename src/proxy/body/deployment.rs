//! Where a call names its deployment, and how it is renamed for a backend.
//!
//! Dated api-versions name it in the path (`/deployments/{deployment-id}/…`). The v1 API names
//! it in the request body, in the field the route's `deployment_field` says (`model`), for the
//! operations that spend a deployment's tokens; in a JSON body that is the top-level member, in
//! a form the part of that name. Either way, a backend's `deployment_map` may know the
//! deployment by another name: then only that path segment, or only the bytes of that one value
//! in the body, are replaced, and every other byte goes as the client sent it (the body's length
//! changes with the name).

use std::ops::Range;

use super::edit::Splice;
use super::request::Facts;
use crate::proxy::error::GatewayError;
use crate::proxy::inbound::multipart;

/// Where in the request the deployment is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Path segment `index` of the path below the mount.
    Path { index: usize },
    /// The JSON string at these bytes of the body, quotes included.
    Json { value: Range<usize> },
    /// The content of a form part, at these bytes of the body.
    Form { value: Range<usize> },
    /// The query parameter of this name (a realtime call's `model`).
    Query { name: &'static str },
}

/// The deployment a body names in `field`, and where, from what was read of it already: the
/// parts of a form (as the validator read them), or the facts of a JSON body. `None` when the
/// body has no such field. The body has been validated, so the field, where present, holds a
/// string.
pub fn in_body(
    field: &str,
    body: &[u8],
    form: Option<&[multipart::Part<'_>]>,
    facts: Option<&Facts>,
) -> Result<Option<(String, Place)>, GatewayError> {
    if let Some(parts) = form {
        let Some(part) = parts.iter().find(|p| p.name == field) else {
            return Ok(None);
        };
        let name = part
            .text()
            .ok_or_else(|| GatewayError::MalformedBody(format!("`{field}` is not UTF-8 text")))?;
        let start = part.data.as_ptr() as usize - body.as_ptr() as usize;
        return Ok(Some((
            name.to_string(),
            Place::Form {
                value: start..start + part.data.len(),
            },
        )));
    }
    let Some(facts) = facts else {
        return Ok(None);
    };
    if let Some((name, value)) = &facts.deployment {
        return Ok(Some((
            name.clone(),
            Place::Json {
                value: value.clone(),
            },
        )));
    }
    // A member that is there but not a string cannot name a deployment (the validator lets
    // one through only where the spec leaves the field untyped).
    match facts.members.find(body, field) {
        Some(_) => Err(GatewayError::InvalidParameter {
            name: field.to_string(),
            message: "names the deployment, so it must be a string".into(),
        }),
        None => Ok(None),
    }
}

/// The splice that renames the deployment at `place` in a body to `name`.
pub fn rename(place: &Place, name: &str) -> Option<Splice> {
    match place {
        Place::Json { value } => Some(Splice::replace(
            value.clone(),
            serde_json::Value::from(name).to_string(),
        )),
        Place::Form { value } => Some(Splice::replace(value.clone(), name.to_string())),
        Place::Path { .. } | Place::Query { .. } => None,
    }
}

/// A deployment name as one path segment.
pub fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` is `/a/b/c`; segment 1 is `b`.
pub fn replace_segment(path: &str, index: usize, with: &str) -> String {
    let mut out = String::with_capacity(path.len() + with.len());
    for (i, segment) in path[1..].split('/').enumerate() {
        out.push('/');
        out.push_str(if i == index { with } else { segment });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(body: &[u8], place: &Place, name: &str) -> Vec<u8> {
        let bytes = bytes::Bytes::copy_from_slice(body);
        let splices = rename(place, name).into_iter().collect();
        crate::proxy::body::edit::apply(&bytes, splices)
            .unwrap()
            .to_vec()
    }

    /// The facts of a v1 chat body, as the checks read them.
    fn facts(body: &[u8]) -> Option<Facts> {
        let route = crate::generated::API_VERSIONS
            .iter()
            .find(|v| v.version == "v1")
            .and_then(|v| v.routes.iter().find(|r| r.path == "/chat/completions"))
            .expect("the v1 chat route");
        let usage = crate::config::UsageSettings {
            stream_include_usage: true,
            default_completion_tokens: 16,
            encodings: Default::default(),
        };
        Facts::read(
            route,
            body,
            &usage,
            None,
            super::super::request::Count::IfStreaming,
        )
    }

    #[test]
    fn the_model_member_is_found_and_renamed_in_place() {
        let body =
            br#"{"messages":[{"role":"user","content":"say \"model\""}],  "model" : "chat","n":1}"#;
        let (name, place) = in_body("model", body, None, facts(body).as_ref())
            .unwrap()
            .unwrap();
        assert_eq!(name, "chat");
        assert_eq!(
            renamed(body, &place, "gpt-4o-2024-08-06"),
            br#"{"messages":[{"role":"user","content":"say \"model\""}],  "model" : "gpt-4o-2024-08-06","n":1}"#
        );
        assert_eq!(
            in_body("model", b"{}", None, facts(b"{}").as_ref()).unwrap(),
            None
        );
        let not_a_name = br#"{"model":7}"#;
        assert!(in_body("model", not_a_name, None, facts(not_a_name).as_ref()).is_err());
    }

    #[test]
    fn a_form_part_is_found_and_renamed_in_place() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--b--\r\n";
        let parts = multipart::parts(body, "b").unwrap();
        let (name, place) = in_body("model", body, Some(&parts), None).unwrap().unwrap();
        assert_eq!(name, "whisper");
        let renamed = renamed(body, &place, "whisper-1");
        assert!(renamed.windows(9).any(|w| w == b"whisper-1"));
        assert_eq!(renamed.len(), body.len() + 2);
    }

    #[test]
    fn path_segments() {
        assert_eq!(
            replace_segment("/deployments/gpt/chat/completions", 1, "gpt-4o"),
            "/deployments/gpt-4o/chat/completions"
        );
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }
}
