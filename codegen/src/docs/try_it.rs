//! The "Try it" panel under each operation: a key, the path and required query parameters, a
//! body pre-filled from the spec's example (else a skeleton of the required fields), and a
//! button that calls the gateway itself from the page and shows the status, the headers and
//! the body as it arrives, server-sent events one by one.
//!
//! The page's content security policy lets it connect to its own origin only, so the panel can
//! reach nothing but the gateway that served it. The key is kept in the tab's session storage,
//! so it is typed once per tab, and sent as `api-key`. The script that sends it is
//! `assets/try_it.js`.

use serde_json::{Map, Value, json};

use super::BASE_PATH;
use super::html::Html;
use crate::ir::{Api, ContentKind, Operation, ParamLocation, TypeKind, TypeRef};

/// The panel for `op`, closed until opened.
pub(super) fn panel(api: &Api, op: &Operation) -> Html {
    let mut s = Html::new();
    s.raw(r#"<details class="try" data-method=""#)
        .text(op.method.as_str())
        .raw(r#"" data-path=""#)
        .raw(BASE_PATH)
        .text(&api.mount)
        .text(&op.path)
        .raw(r#""><summary>Try it</summary><form class="try-form"><label>Subscription key <input class="try-key" type="password" autocomplete="off" placeholder="sent as api-key"></label>"#);
    let wanted = op.parameters.iter().filter(|p| {
        p.location == ParamLocation::Path || (p.location == ParamLocation::Query && p.required)
    });
    for p in wanted {
        let value = if p.name == "api-version" {
            api.version.as_str()
        } else {
            ""
        };
        s.element("<label><code>", &p.name, "</code> ")
            .raw(r#"<input data-in=""#)
            .text(p.location.as_str())
            .raw(r#"" data-name=""#)
            .text(&p.name)
            .raw(r#"" value=""#)
            .text(value)
            .raw(r#"" required></label>"#);
    }
    let json_body = op.request.as_ref().and_then(|body| {
        body.content
            .iter()
            .find(|c| c.kind == ContentKind::Json)
            .map(|c| (body, c))
    });
    match (&op.request, json_body) {
        (_, Some((_, content))) => {
            let example = content
                .examples
                .first()
                .map(|e| e.value.clone())
                .or_else(|| content.ty.as_ref().map(|ty| skeleton(api, ty, 0)))
                .unwrap_or_else(|| json!({}));
            let text = serde_json::to_string_pretty(&example).unwrap_or_default();
            s.element("<label>Body <code>", &content.media_type, "</code>")
                .raw(r#"<textarea class="try-body" data-media=""#)
                .text(&content.media_type)
                .raw(r#"" rows=""#)
                .display(text.lines().count().clamp(4, 20))
                .raw(r#"" spellcheck="false">"#)
                .text(&text)
                .raw(r#"</textarea></label><button type="submit">Send</button>"#);
        }
        (Some(body), None) => {
            let media: Vec<&str> = body.content.iter().map(|c| c.media_type.as_str()).collect();
            s.element(
                "<p>This operation takes <code>",
                &media.join(", "),
                "</code>: send it with curl or an SDK.</p>",
            );
        }
        (None, None) => {
            s.raw(r#"<button type="submit">Send</button>"#);
        }
    }
    s.raw(r#"</form><div class="try-out" hidden><p class="try-status"></p><pre class="try-headers"></pre><pre class="try-response"></pre></div></details>"#);
    s
}

/// A value of type `ty` with the required fields only, each at a neutral value (`""`, `0`, the
/// first enum value, the first variant), for a body the spec gives no example of.
fn skeleton(api: &Api, ty: &TypeRef, depth: usize) -> Value {
    // Deep enough for any request body's required fields; recursive types stop here.
    if depth > 6 {
        return Value::Null;
    }
    match ty {
        TypeRef::String | TypeRef::Binary => json!(""),
        TypeRef::Integer(_) | TypeRef::Number => json!(0),
        TypeRef::Boolean => json!(false),
        TypeRef::Any | TypeRef::Nullable(_) => Value::Null,
        TypeRef::Object | TypeRef::Map(_) => json!({}),
        TypeRef::Array(_) => json!([]),
        TypeRef::Named(name) => {
            let Some(def) = api.type_def(name) else {
                return Value::Null;
            };
            match &def.kind {
                TypeKind::Struct(st) => {
                    let fields = st.fields.iter().filter(|f| f.required && !f.read_only);
                    let object: Map<String, Value> = fields
                        .map(|f| {
                            let value = f.default.clone().unwrap_or_else(|| match &f.ty {
                                // One item, so that a list the spec requires non-empty shows
                                // what goes in it.
                                TypeRef::Array(item) => json!([skeleton(api, item, depth + 1)]),
                                other => skeleton(api, other, depth + 1),
                            });
                            (f.name.clone(), value)
                        })
                        .collect();
                    Value::Object(object)
                }
                TypeKind::Enum(e) => e.values.first().map_or(Value::Null, |v| json!(v.value)),
                TypeKind::Union(u) => u.variants.first().map_or(Value::Null, |v| {
                    let mut value = skeleton(api, &v.ty, depth + 1);
                    if let (Some(tag), Some(tag_value), Value::Object(o)) =
                        (&u.tag, &v.tag_value, &mut value)
                    {
                        o.insert(tag.clone(), json!(tag_value));
                    }
                    value
                }),
                TypeKind::Alias { target } => skeleton(api, target, depth + 1),
                TypeKind::Intersection { parts, .. } => parts
                    .first()
                    .map_or(Value::Null, |p| skeleton(api, p, depth + 1)),
                TypeKind::Untyped { .. } => Value::Null,
            }
        }
    }
}
