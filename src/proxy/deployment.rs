//! Where a call names its deployment, and how it is renamed for a backend.
//!
//! Dated api-versions name it in the path (`/deployments/{deployment-id}/…`). The v1 API names
//! it in the request body, in the field the route's `deployment_field` says (`model`), for the
//! operations that spend a deployment's tokens; in a JSON body that is the top-level member, in
//! a form the part of that name. Either way, a backend's `deployment_map` may know the
//! deployment by another name: then only that path segment, or only the bytes of that one value
//! in the body, are replaced, and every other byte goes as the client sent it (the body's length
//! changes with the name).

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::GatewayError;
use super::multipart;

/// Where in the request the deployment is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Path segment `index` of the path below the mount.
    Path { index: usize },
    /// The JSON string at these bytes of the body, quotes included.
    Json { value: Range<usize> },
    /// The content of a form part, at these bytes of the body.
    Form { value: Range<usize> },
}

/// The deployment a body names in `field`, and where: `None` when the body has no such field.
/// The body has been validated, so the field, where present, holds a string.
pub fn in_body(
    field: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Option<(String, Place)>, GatewayError> {
    let content_type = content_type.unwrap_or("");
    if aoai_runtime::catalog::essence(content_type) == "multipart/form-data" {
        let Some(boundary) = multipart::boundary(content_type) else {
            return Ok(None);
        };
        let parts = multipart::parts(body, boundary).map_err(GatewayError::MalformedBody)?;
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
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = (Member { name: field })
        .deserialize(&mut de)
        .map_err(|e| GatewayError::MalformedBody(e.to_string()))?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let name: String =
        serde_json::from_str(raw.get()).map_err(|_| GatewayError::InvalidParameter {
            name: field.to_string(),
            message: "names the deployment, so it must be a string".into(),
        })?;
    // The raw value borrows from `body`: its place is where it points.
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    Ok(Some((
        name,
        Place::Json {
            value: start..start + raw.get().len(),
        },
    )))
}

/// Reads a JSON object's member `name` as it is written, skipping the others without keeping
/// them.
struct Member<'n> {
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.name {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// `body` with the deployment at `place` renamed `name`.
pub fn renamed_body(body: &[u8], place: &Place, name: &str) -> Result<Bytes, GatewayError> {
    let (range, replacement) = match place {
        Place::Json { value } => (
            value.clone(),
            serde_json::to_string(name).map_err(|e| GatewayError::Internal(e.to_string()))?,
        ),
        Place::Form { value } => (value.clone(), name.to_string()),
        Place::Path { .. } => return Ok(Bytes::copy_from_slice(body)),
    };
    let mut out = BytesMut::with_capacity(body.len() + replacement.len());
    out.extend_from_slice(&body[..range.start]);
    out.extend_from_slice(replacement.as_bytes());
    out.extend_from_slice(&body[range.end..]);
    Ok(out.freeze())
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

    #[test]
    fn the_model_member_is_found_and_renamed_in_place() {
        let body =
            br#"{"messages":[{"role":"user","content":"say \"model\""}],  "model" : "chat","n":1}"#;
        let (name, place) = in_body("model", Some("application/json"), body)
            .unwrap()
            .unwrap();
        assert_eq!(name, "chat");
        let renamed = renamed_body(body, &place, "gpt-4o-2024-08-06").unwrap();
        assert_eq!(
            &renamed[..],
            br#"{"messages":[{"role":"user","content":"say \"model\""}],  "model" : "gpt-4o-2024-08-06","n":1}"#
        );
        assert_eq!(
            in_body("model", Some("application/json"), b"{}").unwrap(),
            None
        );
    }

    #[test]
    fn a_form_part_is_found_and_renamed_in_place() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--b--\r\n";
        let (name, place) = in_body("model", Some("multipart/form-data; boundary=b"), body)
            .unwrap()
            .unwrap();
        assert_eq!(name, "whisper");
        let renamed = renamed_body(body, &place, "whisper-1").unwrap();
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
