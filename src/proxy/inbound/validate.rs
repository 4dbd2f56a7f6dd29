//! Checks a request against its operation before any backend quota is spent.
//!
//! Parameters are read from text and checked against their types and the spec's rules; a JSON
//! body is walked against the api-version's schema tables (see [`aoai_runtime::schema`]); a form body
//! must have its required parts, and its text parts must fit their fields. Nothing here changes
//! the request: the bytes forwarded are the client's.
//!
//! A form whose fields are all plain values is also accepted as JSON: the speech operation is
//! declared as `multipart/form-data`, yet the service and its SDKs send JSON.
//!
//! A refusal caused by what the spec requires names the api-version whose spec requires it
//! ("required by the v1 spec"), so that a user knows which document to read, or to correct
//! with an overlay.

use std::borrow::Cow;
use std::collections::HashSet;

use actix_web::http::header::HeaderMap;

use crate::proxy::error::GatewayError;
use crate::proxy::inbound::router::Matched;
use crate::proxy::inbound::{multipart, query};
use aoai_runtime::catalog::{ContentKind, FormField, Media, ParamLocation, Route, essence};
use aoai_runtime::schema::{self, Member, Policy, Ty};

pub fn parameters(
    route: &Route,
    version: &str,
    matched: &Matched<'_>,
    raw_query: &str,
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    for p in route.parameters {
        let invalid = |message: String| GatewayError::InvalidParameter {
            name: p.name.into(),
            message,
        };
        let values: Vec<Cow<'_, str>> = match p.location {
            ParamLocation::Path => matched
                .param(p.name)
                .map(query::decode_path)
                .into_iter()
                .collect(),
            ParamLocation::Query => query::pairs(raw_query)
                .filter(|(k, _)| *k == p.name)
                .map(|(_, v)| query::decode(v))
                .collect(),
            ParamLocation::Header => headers
                .get_all(p.name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect(),
            ParamLocation::Cookie => continue,
        };
        // A single value checked while several are forwarded would let the others through.
        if values.len() > 1 && !p.ty.is_array() {
            return Err(GatewayError::RepeatedParameter {
                name: p.name.into(),
            });
        }
        if values.is_empty() && p.required {
            return Err(invalid(format!(
                "the {} parameter is required by the {version} spec",
                p.location.as_str()
            )));
        }
        for value in &values {
            schema::text::check(&p.ty, value).map_err(invalid)?;
        }
    }
    Ok(())
}

/// Checks a body against the route's request; a form's parts, as read for the check, are
/// handed back for what else needs them (the deployment a v1 form names).
pub fn body<'b>(
    route: &Route,
    version: &'static str,
    content_type: Option<&str>,
    body: &'b [u8],
    policy: Policy,
) -> Result<Option<Vec<multipart::Part<'b>>>, GatewayError> {
    let Some(spec) = &route.request else {
        return Ok(None);
    };
    if body.is_empty() {
        return if spec.required {
            Err(GatewayError::MissingBody)
        } else {
            Ok(None)
        };
    }
    let given = content_type.map(essence).unwrap_or_default();
    let declared = spec.content.iter().find(|m| essence(m.media_type) == given);
    let media = declared.or_else(|| json_for_plain_form(spec.content, &given));
    let Some(media) = media else {
        return Err(GatewayError::UnsupportedMediaType {
            given: content_type.unwrap_or("(none)").to_string(),
            accepted: spec.content.iter().map(|m| m.media_type).collect(),
        });
    };
    match (media.kind, &given) {
        (ContentKind::Multipart, g) if g == "multipart/form-data" => {
            form(media, version, content_type.unwrap_or(""), body, policy).map(Some)
        }
        _ if given == "application/json" || given.ends_with("+json") => match media.schema {
            Some(ty) => schema::json::validate(body, ty, policy)
                .map(|()| None)
                .map_err(|error| GatewayError::InvalidBody {
                    error,
                    spec: version,
                }),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// A form of plain fields given as JSON, which the service accepts (see the module note).
fn json_for_plain_form<'m>(content: &'m [Media], given: &str) -> Option<&'m Media> {
    if given != "application/json" {
        return None;
    }
    content.iter().find(|m| {
        m.kind == ContentKind::Multipart
            && m.schema.is_some()
            && !m.form_fields.iter().any(|f| f.binary)
    })
}

/// Checks that a `multipart/form-data` body is well formed, has every required part, and that
/// its parts fit their fields: a text part as text, an object field's part (or any part sent as
/// `application/json`) as JSON, and a member's part (`expires_after[seconds]`, as the SDKs send
/// an object field) against that member's type.
fn form<'b>(
    media: &'static Media,
    version: &str,
    content_type: &str,
    body: &'b [u8],
    policy: Policy,
) -> Result<Vec<multipart::Part<'b>>, GatewayError> {
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        GatewayError::MalformedBody("multipart/form-data without a boundary".into())
    })?;
    let parts = multipart::parts(body, boundary).map_err(GatewayError::MalformedBody)?;
    for field in media.form_fields.iter().filter(|f| f.required) {
        if !parts
            .iter()
            .any(|p| field_of(media, &p.name).is_some_and(|(f, _)| f.name == field.name))
        {
            return Err(GatewayError::InvalidParameter {
                name: field.name.into(),
                message: format!("this form field is required by the {version} spec"),
            });
        }
    }
    // Fields sent member by member, and the members sent: an object's required members must
    // all be there, as they must in a JSON part.
    // (Sets: a form may have many parts.)
    let mut by_member: HashSet<(&'static str, &str)> = HashSet::new();
    let mut whole: HashSet<&'static str> = HashSet::new();
    let mut objects: Vec<&'static FormField> = Vec::new();
    for part in &parts {
        let invalid = |message: String| GatewayError::InvalidParameter {
            name: part.name.clone(),
            message,
        };
        let Some((field, members)) = field_of(media, &part.name) else {
            if policy.reject_unknown_fields {
                return Err(invalid(
                    "is not a field of this form, and this gateway refuses unknown fields".into(),
                ));
            }
            continue;
        };
        match members.first() {
            Some(member) => {
                if by_member.insert((field.name, member))
                    && !objects.iter().any(|o| o.name == field.name)
                {
                    objects.push(field);
                }
            }
            None => {
                whole.insert(field.name);
            }
        }
        if field.binary || part.filename.is_some() {
            continue;
        }
        let Some(ty) = member_type(&field.ty, field.name, &members, policy).map_err(invalid)?
        else {
            continue;
        };
        if part.json || ty.is_object() {
            // A list may come as one part per item, each item's JSON on its own.
            let one_item = ty.is_array() && !part.data.trim_ascii_start().starts_with(b"[");
            let ty = match ty.member("") {
                Member::Typed(item) if one_item => item,
                _ => ty,
            };
            schema::json::validate(part.data, ty, policy).map_err(|e| invalid(e.to_string()))?;
        } else {
            let text = part
                .text()
                .ok_or_else(|| invalid("this form field must be UTF-8 text".into()))?;
            schema::text::check(ty, text).map_err(invalid)?;
        }
    }
    for field in objects.iter().filter(|f| !whole.contains(f.name)) {
        let required = field
            .ty
            .fields()
            .into_iter()
            .flatten()
            .filter(|f| f.required);
        for member in required {
            if !by_member.contains(&(field.name, member.name)) {
                return Err(GatewayError::InvalidParameter {
                    name: format!("{}[{}]", field.name, member.name),
                    message: format!("this member is required by the {version} spec"),
                });
            }
        }
    }
    Ok(parts)
}

/// The type that the path `members` reaches below a field of type `ty`: `None` when the spec
/// says nothing of it, an error when the path cannot be there.
fn member_type(
    mut ty: &'static Ty,
    field: &str,
    members: &[&str],
    policy: Policy,
) -> Result<Option<&'static Ty>, String> {
    // Where the path has got to, for messages: `a[b]`.
    let mut at = field.to_string();
    for member in members {
        ty = match ty.member(member) {
            Member::Typed(inner) => inner,
            Member::Unlisted if policy.reject_unknown_fields => {
                return Err(format!(
                    "`{member}` is not a field of `{at}`, and this gateway refuses unknown fields"
                ));
            }
            Member::Untyped | Member::Unlisted => return Ok(None),
            Member::NotAContainer => return Err(format!("`{at}` has no members")),
        };
        at = format!("{at}[{member}]");
    }
    Ok(Some(ty))
}

/// The field a form part belongs to, and the members below it the part's name gives. Azure's
/// specs name some fields with brackets (`timestamp_granularities[]`): a field of the part's
/// exact name comes first.
fn field_of<'p>(
    media: &'static Media,
    part: &'p str,
) -> Option<(&'static FormField, Vec<&'p str>)> {
    let named = |name: &str| media.form_fields.iter().find(|f| f.name == name);
    if let Some(field) = named(part) {
        return Some((field, Vec::new()));
    }
    let (name, members) = member_path(part);
    named(name).map(|field| (field, members))
}

/// A form part's name read as a field and the members below it: `expires_after[seconds]` is
/// (`expires_after`, [`seconds`]). A name that does not read that way is a field of its own.
fn member_path(part: &str) -> (&str, Vec<&str>) {
    let Some((field, mut rest)) = part.split_once('[') else {
        return (part, Vec::new());
    };
    let mut members = Vec::new();
    loop {
        let Some((member, after)) = rest.split_once(']') else {
            return (part, Vec::new());
        };
        members.push(member);
        match after.strip_prefix('[') {
            Some(next) => rest = next,
            None if after.is_empty() => return (field, members),
            None => return (part, Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::member_path;

    #[test]
    fn part_names_read_as_field_and_members() {
        assert_eq!(member_path("purpose"), ("purpose", vec![]));
        assert_eq!(
            member_path("expires_after[seconds]"),
            ("expires_after", vec!["seconds"])
        );
        assert_eq!(member_path("a[b][0]"), ("a", vec!["b", "0"]));
        assert_eq!(member_path("include[]"), ("include", vec![""]));
        // Not bracketed all the way: a name of its own.
        assert_eq!(member_path("a[b"), ("a[b", vec![]));
        assert_eq!(member_path("a[b]c"), ("a[b]c", vec![]));
    }
}
