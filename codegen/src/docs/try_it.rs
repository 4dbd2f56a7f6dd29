//! The "Try it" panel under each operation: a key, the path and required query parameters, a
//! body pre-filled from the spec's example (else a skeleton of the required fields), and a
//! button that calls the gateway itself from the page and shows the status, the headers and
//! the body as it arrives, server-sent events one by one.
//!
//! The page's content security policy lets it connect to its own origin only, so the panel can
//! reach nothing but the gateway that served it. The key is kept in the tab's session storage,
//! so it is typed once per tab, and sent as `api-key`.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use super::{BASE_PATH, esc};
use crate::ir::{Api, ContentKind, Operation, ParamLocation, TypeKind, TypeRef};

/// The panel for `op`, closed until opened.
pub(super) fn panel(api: &Api, op: &Operation) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<details class="try" data-method="{method}" data-path="{BASE_PATH}{mount}{path}"><summary>Try it</summary><form class="try-form"><label>Subscription key <input class="try-key" type="password" autocomplete="off" placeholder="sent as api-key"></label>"#,
        method = op.method.as_str(),
        mount = esc(&api.mount),
        path = esc(&op.path),
    );
    let wanted = op.parameters.iter().filter(|p| {
        p.location == ParamLocation::Path || (p.location == ParamLocation::Query && p.required)
    });
    for p in wanted {
        let value = if p.name == "api-version" {
            api.version.as_str()
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<label><code>{name}</code> <input data-in="{place}" data-name="{name}" value="{value}" required></label>"#,
            name = esc(&p.name),
            place = p.location.as_str(),
            value = esc(value),
        );
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
            let _ = write!(
                s,
                r#"<label>Body <code>{media}</code><textarea class="try-body" data-media="{media}" rows="{rows}" spellcheck="false">{text}</textarea></label><button type="submit">Send</button>"#,
                media = esc(&content.media_type),
                rows = text.lines().count().clamp(4, 20),
                text = esc(&text),
            );
        }
        (Some(body), None) => {
            let media: Vec<&str> = body.content.iter().map(|c| c.media_type.as_str()).collect();
            let _ = write!(
                s,
                "<p>This operation takes <code>{}</code>: send it with curl or an SDK.</p>",
                esc(&media.join(", "))
            );
        }
        (None, None) => s.push_str(r#"<button type="submit">Send</button>"#),
    }
    s.push_str(r#"</form><div class="try-out" hidden><p class="try-status"></p><pre class="try-headers"></pre><pre class="try-response"></pre></div></details>"#);
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

/// Sends a panel's request with `fetch` and shows the answer as it arrives. `data-state` on the
/// panel says `sending`, then `done` or `failed`, for a test to wait on.
pub(super) const SCRIPT: &str = r#"
for (const form of document.querySelectorAll('form.try-form')) {
  const panel = form.closest('.try');
  const key = form.querySelector('.try-key');
  key.value = sessionStorage.getItem('aoai-gateway-key') || '';
  key.addEventListener('input', () => sessionStorage.setItem('aoai-gateway-key', key.value));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const out = panel.querySelector('.try-out');
    const status = out.querySelector('.try-status');
    const shownHeaders = out.querySelector('.try-headers');
    const shownBody = out.querySelector('.try-response');
    let path = panel.dataset.path;
    const query = new URLSearchParams();
    for (const input of form.querySelectorAll('[data-in]')) {
      if (input.dataset.in === 'path') {
        path = path.replace('{' + input.dataset.name + '}', encodeURIComponent(input.value));
      } else if (input.value !== '') {
        query.append(input.dataset.name, input.value);
      }
    }
    const headers = { 'api-key': key.value };
    const init = { method: panel.dataset.method, headers };
    const body = form.querySelector('.try-body');
    if (body && body.value.trim() !== '') {
      headers['content-type'] = body.dataset.media;
      init.body = body.value;
    }
    out.hidden = false;
    panel.dataset.state = 'sending';
    status.textContent = 'Sending…';
    shownHeaders.textContent = '';
    shownBody.textContent = '';
    try {
      const response = await fetch(path + (query.size ? '?' + query : ''), init);
      status.textContent = response.status + ' ' + response.statusText;
      shownHeaders.textContent = [...response.headers].map(([k, v]) => k + ': ' + v).join('\n');
      const type = response.headers.get('content-type') || '';
      const textual = /json|text|event-stream|xml/.test(type) || type === '';
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.length;
        if (textual) {
          text += decoder.decode(value, { stream: true });
          shownBody.textContent = text;
        } else {
          shownBody.textContent = bytes + ' bytes of ' + type;
        }
      }
      if (textual && /json/.test(type)) {
        try { shownBody.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch (_) {}
      }
      panel.dataset.state = 'done';
    } catch (error) {
      status.textContent += ' — failed: ' + error.message;
      panel.dataset.state = 'failed';
    }
  });
}
"#;
