//! Checks a request against its operation before any backend quota is spent.
//!
//! Parameters are checked against their declared types; a JSON body is read into the
//! api-version's generated model (fields the spec does not know are fine); a form body must have
//! its required parts. Nothing here changes the request: the bytes forwarded are the client's.
//!
//! A form whose fields are all plain values is also accepted as JSON: the speech operation is
//! declared as `multipart/form-data`, yet the service and its SDKs send JSON.

use actix_web::http::header::HeaderMap;

use crate::catalog::{ContentKind, Media, ParamLocation, ParamType, Route};
use crate::error::GatewayError;
use crate::router::Matched;
use crate::{multipart, query};

pub fn parameters(
    route: &Route,
    matched: &Matched<'_>,
    raw_query: &str,
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    for p in route.parameters {
        // A single value checked while several are forwarded would let the others through.
        if p.location == ParamLocation::Query
            && p.ty != ParamType::Any
            && query::count(raw_query, p.name) > 1
        {
            return Err(GatewayError::RepeatedParameter {
                name: p.name.into(),
            });
        }
        let value = match p.location {
            ParamLocation::Path => matched.param(p.name).map(query::decode),
            ParamLocation::Query => query::get(raw_query, p.name),
            ParamLocation::Header => headers
                .get(p.name)
                .and_then(|v| v.to_str().ok())
                .map(std::borrow::Cow::Borrowed),
            ParamLocation::Cookie => continue,
        };
        let Some(value) = value else {
            if p.required {
                let message = format!("the {} parameter is required", location(p.location));
                return Err(GatewayError::InvalidParameter {
                    name: p.name.into(),
                    message,
                });
            }
            continue;
        };
        if let Err(message) = check_value(p.ty, &value) {
            return Err(GatewayError::InvalidParameter {
                name: p.name.into(),
                message,
            });
        }
    }
    Ok(())
}

fn location(l: ParamLocation) -> &'static str {
    match l {
        ParamLocation::Path => "path",
        ParamLocation::Query => "query",
        ParamLocation::Header => "header",
        ParamLocation::Cookie => "cookie",
    }
}

fn check_value(ty: ParamType, value: &str) -> Result<(), String> {
    let expected = match ty {
        ParamType::String | ParamType::Any => return Ok(()),
        ParamType::Integer if value.parse::<i64>().is_ok() => return Ok(()),
        ParamType::Number if value.parse::<f64>().is_ok_and(f64::is_finite) => return Ok(()),
        ParamType::Boolean if matches!(value, "true" | "false") => return Ok(()),
        ParamType::Enum(values) if values.contains(&value) => return Ok(()),
        ParamType::Integer => "an integer".to_string(),
        ParamType::Number => "a number".to_string(),
        ParamType::Boolean => "true or false".to_string(),
        ParamType::Enum(values) => format!("one of {}", values.join(", ")),
    };
    Err(format!("expected {expected}"))
}

/// The media type without parameters, lower-cased: `Application/JSON; charset=utf-8` →
/// `application/json`.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn body(route: &Route, content_type: Option<&str>, body: &[u8]) -> Result<(), GatewayError> {
    let Some(spec) = &route.request else {
        return Ok(());
    };
    if body.is_empty() {
        return if spec.required {
            Err(GatewayError::MissingBody)
        } else {
            Ok(())
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
            form(media, content_type.unwrap_or(""), body)
        }
        _ if given == "application/json" || given.ends_with("+json") => match media.validate {
            Some(validate) => validate(body).map_err(GatewayError::InvalidBody),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A form of plain fields given as JSON, which the service accepts (see the module note).
fn json_for_plain_form<'m>(content: &'m [Media], given: &str) -> Option<&'m Media> {
    if given != "application/json" {
        return None;
    }
    content.iter().find(|m| {
        m.kind == ContentKind::Multipart
            && m.validate.is_some()
            && !m.form_fields.iter().any(|f| f.binary)
    })
}

/// Checks that a `multipart/form-data` body is well formed and has every required part.
fn form(media: &Media, content_type: &str, body: &[u8]) -> Result<(), GatewayError> {
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        GatewayError::MalformedBody("multipart/form-data without a boundary".into())
    })?;
    let parts = multipart::parts(body, boundary).map_err(GatewayError::MalformedBody)?;
    for field in media.form_fields.iter().filter(|f| f.required) {
        if !parts.iter().any(|p| p.name == field.name) {
            return Err(GatewayError::InvalidParameter {
                name: field.name.into(),
                message: "this form field is required".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_types() {
        assert!(check_value(ParamType::Integer, "20").is_ok());
        assert_eq!(
            check_value(ParamType::Integer, "x").unwrap_err(),
            "expected an integer"
        );
        assert_eq!(
            check_value(ParamType::Enum(&["asc", "desc"]), "up").unwrap_err(),
            "expected one of asc, desc"
        );
        assert!(check_value(ParamType::Number, "NaN").is_err());
    }
}
