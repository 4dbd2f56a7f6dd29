//! The route docs: complete against the route table, every link lands on an anchor, nothing
//! is fetched from the network, the comparison page knows what differs, and the gateway serves
//! the pages and the specs as configured.

mod common;

use std::collections::{HashMap, HashSet};

use aoai_gateway::config::DocsConfig;
use aoai_gateway::generated::{API_VERSIONS, DOCS, SOURCES};
use common::{CLIENT_KEY, Setup, collect, run, start};

fn page(name: &str) -> &'static str {
    DOCS.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, html)| *html)
        .unwrap_or_else(|| panic!("no docs page {name}"))
}

/// Values of `attr="…"` in a page.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let start = i + needle.len();
            html[start..].find('"').map(|end| &html[start..start + end])
        })
        .collect()
}

#[test]
fn every_operation_of_every_compiled_version_is_documented() {
    for api in API_VERSIONS {
        let html = page(&format!("{}.html", api.version));
        let ids: HashSet<&str> = attribute_values(html, "id").into_iter().collect();
        for route in api.routes {
            assert!(
                ids.contains(format!("op-{}", route.operation_id).as_str()),
                "{}: {} missing",
                api.version,
                route.operation_id
            );
            let heading = format!(
                r#"{}</span><code>@@AOAI_BASE_PATH@@{}{}</code>"#,
                route.method.as_str(),
                api.mount,
                route.path
            );
            assert!(
                html.contains(&heading),
                "{}: no heading for {} {}",
                api.version,
                route.method.as_str(),
                route.path
            );
        }
        let documented = attribute_values(html, "id")
            .iter()
            .filter(|id| id.starts_with("op-"))
            .count();
        assert_eq!(
            documented,
            api.routes.len(),
            "{}: operations documented",
            api.version
        );
    }
}

#[test]
fn every_link_lands_on_an_anchor_and_nothing_comes_from_the_network() {
    let ids: HashMap<&str, HashSet<&str>> = DOCS
        .iter()
        .map(|(name, html)| (*name, attribute_values(html, "id").into_iter().collect()))
        .collect();
    let versions: HashSet<&str> = API_VERSIONS.iter().map(|v| v.version).collect();
    let mut checked = 0;
    for (name, html) in DOCS {
        // Prose may mention addresses; nothing may be loaded from one.
        assert!(
            !html.contains("<link") && attribute_values(html, "src").is_empty(),
            "{name} loads a resource"
        );
        let style = html
            .split("<style>")
            .nth(1)
            .and_then(|s| s.split("</style>").next())
            .unwrap_or("");
        assert!(
            !style.contains("url(") && !style.contains("@import"),
            "{name}: the style loads a resource"
        );
        let mut hrefs = attribute_values(html, "href");
        assert!(
            hrefs
                .iter()
                .all(|h| !h.starts_with("http") && !h.starts_with("//")),
            "{name} links off the gateway"
        );
        // The version switcher's options are links too.
        hrefs.extend(
            attribute_values(html, "value")
                .into_iter()
                .filter(|v| v.ends_with(".html")),
        );
        for href in hrefs {
            checked += 1;
            if let Some(spec) = href
                .strip_prefix("/openapi/")
                .and_then(|s| s.strip_suffix(".json"))
            {
                assert!(
                    versions.contains(spec),
                    "{name}: link to unknown spec {href}"
                );
                continue;
            }
            let (target, anchor) = href.split_once('#').unwrap_or((href, ""));
            let target = if target.is_empty() { *name } else { target };
            let page_ids = ids
                .get(target)
                .unwrap_or_else(|| panic!("{name}: link to missing page {href}"));
            assert!(
                anchor.is_empty() || page_ids.contains(anchor),
                "{name}: link {href} has no anchor"
            );
        }
    }
    assert!(checked > 1000, "only {checked} links checked");
}

#[test]
fn every_operation_has_a_try_it_panel_with_a_body_to_send() {
    for api in API_VERSIONS {
        let html = page(&format!("{}.html", api.version));
        let panels = html.matches(r#"<details class="try""#).count();
        assert_eq!(panels, api.routes.len(), "{}", api.version);
        for route in api.routes {
            let section = format!(r#"id="op-{}""#, route.operation_id);
            let section = &html[html.find(&section).expect("section")..];
            let panel = &section[section.find(r#"<details class="try""#).expect("panel")..];
            let panel = &panel[..panel.find("</details>").expect("panel ends")];
            assert!(
                panel.contains(r#"class="try-key""#),
                "{}",
                route.operation_id
            );
            let json = route
                .request
                .as_ref()
                .is_some_and(|r| r.content.iter().any(|m| m.media_type.contains("json")));
            assert_eq!(
                panel.contains(r#"<textarea class="try-body" data-media="application/json""#),
                json,
                "{} {}",
                api.version,
                route.operation_id
            );
        }
    }
    // The spec's example, where it has one.
    let stable = page("2024-10-21.html");
    let completions = &stable[stable.find(r#"id="op-Completions_Create""#).expect("op")..];
    let body = &completions[completions.find("try-body").expect("body")..];
    assert!(body.contains("&quot;prompt&quot;"), "{}", &body[..300]);
    // Else the required fields: the v1 chat request needs its deployment and messages.
    let v1 = page("v1.html");
    let chat = &v1[v1.find(r#"id="op-createChatCompletion""#).expect("op")..];
    let body = &chat[chat.find("try-body").expect("body")..chat.find("</textarea>").expect("end")];
    assert!(
        body.contains("&quot;model&quot;: &quot;&quot;")
            && body.contains("&quot;messages&quot;: ["),
        "{body}"
    );
}

#[test]
fn every_model_a_route_uses_has_a_section() {
    for api in API_VERSIONS {
        let html = page(&format!("{}.html", api.version));
        let ids: HashSet<&str> = attribute_values(html, "id").into_iter().collect();
        for route in api.routes {
            let media = route
                .request
                .iter()
                .flat_map(|r| r.content.iter())
                .chain(route.responses.iter().flat_map(|r| r.content.iter()));
            for m in media {
                if let Some(model) = m.model {
                    assert!(
                        ids.contains(format!("type-{model}").as_str()),
                        "{}: model {model} of {} has no section",
                        api.version,
                        route.operation_id
                    );
                }
            }
        }
    }
}

#[test]
fn the_comparison_knows_what_differs_between_the_shipped_versions() {
    let generated = aoai_codegen::generate(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/spec")),
        "spec",
        Default::default(),
    )
    .expect("generate");
    let [preview, stable] = [&generated.apis[0], &generated.apis[1]];
    assert_eq!(
        (preview.version.as_str(), stable.version.as_str()),
        ("2024-09-01-preview", "2024-10-21")
    );
    let d = aoai_codegen::diff::diff(preview, stable);
    let only_in_preview: HashSet<&str> = d
        .only_in_from
        .iter()
        .map(|o| o.operation_id.as_str())
        .collect();
    for id in [
        "Create_Assistant",
        "List_Assistants",
        "Create_Thread",
        "Create_Run",
        "List_Vector_Stores",
        "Speech_Create",
    ] {
        assert!(
            only_in_preview.contains(id),
            "{id} should be only in the preview"
        );
    }
    assert_eq!(d.only_in_from.len(), 36);
    assert!(d.only_in_to.is_empty());
    assert_eq!(d.changed.len() + d.unchanged, 6);

    let html = page("changes-2024-09-01-preview-to-2024-10-21.html");
    assert!(html.contains("Only in 2024-09-01-preview"));
    assert!(html.contains(r##"href="2024-09-01-preview.html#op-Create_Assistant""##));
    for change in &d.changed {
        assert!(html.contains(&format!("changed-{}", change.to.operation_id)));
    }
    let index = page("index.html");
    assert!(index.contains(r#"href="changes-2024-09-01-preview-to-2024-10-21.html""#));
}

#[test]
fn the_comparison_matches_v1_operations_to_dated_ones_below_the_mount() {
    let generated = aoai_codegen::generate(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/spec")),
        "spec",
        Default::default(),
    )
    .expect("generate");
    let api = |v: &str| {
        generated
            .apis
            .iter()
            .find(|a| a.version == v)
            .expect("compiled")
    };
    let d = aoai_codegen::diff::diff(api("2024-10-21"), api("v1"));
    assert!(d.deployment_moved);
    // Chat completions and embeddings exist in both: matched, so they are not "only in".
    let only_in_dated: Vec<&str> = d.only_in_from.iter().map(|o| o.path.as_str()).collect();
    assert!(
        !only_in_dated.contains(&"/deployments/{deployment-id}/chat/completions"),
        "{only_in_dated:?}"
    );
    let chat = d
        .changed
        .iter()
        .find(|c| c.to.path == "/v1/chat/completions")
        .expect("chat completions compared");
    assert_eq!(
        chat.from.path,
        "/deployments/{deployment-id}/chat/completions"
    );
    // The move is said once, not as a removed `deployment-id` parameter per operation.
    assert!(
        chat.changes
            .iter()
            .all(|c| !c.name.starts_with("deployment-id")),
        "{:?}",
        chat.changes
    );
    let html = page("changes-2024-10-21-to-v1.html");
    assert_eq!(html.matches("The deployment moved").count(), 1);
    assert!(html.contains("<code>/v1/chat/completions</code>"));

    let v1 = page("v1.html");
    assert!(v1.contains("served under <code>@@AOAI_BASE_PATH@@/v1</code>"));
    assert!(v1.contains("The deployment is the request body's <code>model</code> field"));
    assert!(page("index.html").contains(r#"href="v1.html""#));
}

#[test]
fn generated_rust_carries_the_specs_descriptions() {
    let generated = aoai_codegen::generate(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/spec")),
        "spec",
        Default::default(),
    )
    .expect("generate");
    for api in &generated.apis {
        let models = SOURCES
            .iter()
            .find(|(path, _)| *path == format!("{}/models.rs", api.module))
            .map(|(_, s)| *s)
            .expect("models source");
        let docs: HashSet<&str> = models
            .lines()
            .filter_map(|l| l.trim().strip_prefix("/// "))
            .map(str::trim)
            .collect();
        let mut checked = 0;
        let mut described = |text: &Option<String>, what: &str| {
            if let Some(line) = text
                .as_deref()
                .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()))
            {
                assert!(
                    docs.contains(line),
                    "{}: {what} lacks its description: {line}",
                    api.version
                );
                checked += 1;
            }
        };
        for def in &api.types {
            described(&def.description, &def.name);
            if let aoai_codegen::ir::TypeKind::Struct(s) = &def.kind {
                for f in &s.fields {
                    described(&f.description, &format!("{}.{}", def.name, f.name));
                }
            }
        }
        assert!(
            checked > 200,
            "{}: only {checked} descriptions",
            api.version
        );
    }
}

#[test]
fn the_gateway_serves_the_docs_and_the_specs() {
    run(async {
        let gw = start(Setup::default()).await;
        let no_redirects = awc::Client::builder().disable_redirects().finish();
        let response = no_redirects
            .get(gw.url("/docs"))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 308);
        assert_eq!(
            response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok()),
            Some("/docs/")
        );
        let (status, headers, body) = gw.get("/docs/").await;
        assert_eq!(status, 200);
        assert!(headers["content-type"].starts_with("text/html"));
        assert!(headers["content-security-policy"].starts_with("default-src 'none'"));
        assert!(String::from_utf8_lossy(&body).contains("2024-09-01-preview.html"));
        let (_, _, body) = gw.get("/docs/2024-10-21.html").await;
        let html = String::from_utf8_lossy(&body);
        assert!(
            html.contains("<code>/openai/deployments/{deployment-id}/chat/completions</code>"),
            "base path filled in"
        );
        assert!(!html.contains("@@AOAI_BASE_PATH@@"));
        // The "Try it" panels may call this gateway, and nothing else.
        let csp = &headers["content-security-policy"];
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(!csp.contains('*') && !csp.contains("http"), "{csp}");
        assert!(
            html.contains(r#"<details class="try" data-method="POST" data-path="/openai/deployments/{deployment-id}/chat/completions">"#),
            "a Try it panel with the path to call"
        );
        assert!(html.contains(r#"data-name="api-version" value="2024-10-21""#));
        let (status, _, _) = gw.get("/docs/nope.html").await;
        assert_eq!(status, 404);

        let (status, _, body) = gw.get("/openapi/2024-10-21.json").await;
        assert_eq!(status, 200);
        let spec: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(spec["servers"][0]["url"], "/openai");
        assert_eq!(spec["info"]["version"], "2024-10-21");
        assert_eq!(spec["paths"].as_object().map(|p| p.len()), Some(6));
        let (status, _, _) = gw.get("/openapi/1999-01-01.json").await;
        assert_eq!(status, 404);
    });
}

#[test]
fn the_docs_can_require_a_key_or_be_switched_off() {
    run(async {
        let gw = start(Setup {
            docs: DocsConfig {
                require_key: true,
                ..DocsConfig::default()
            },
            ..Setup::default()
        })
        .await;
        let (status, _, _) = gw.get("/docs/").await;
        assert_eq!(status, 401);
        let (status, _, _) = gw.get("/openapi/2024-10-21.json").await;
        assert_eq!(status, 401);
        let (status, _, _) = collect(
            gw.client
                .get(gw.url("/docs/"))
                .insert_header(("api-key", CLIENT_KEY))
                .send()
                .await
                .expect("answer"),
        )
        .await;
        assert_eq!(status, 200);

        let gw = start(Setup {
            docs: DocsConfig {
                enabled: false,
                ..DocsConfig::default()
            },
            ..Setup::default()
        })
        .await;
        let (status, _, _) = gw.get("/docs/").await;
        assert_eq!(status, 404);
        let (status, _, _) = gw.get("/openapi/2024-10-21.json").await;
        assert_eq!(status, 404);
    });
}
