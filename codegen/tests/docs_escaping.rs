//! The route docs show a spec's text as text: names, descriptions, examples, enum values and
//! paths that carry markup (`<script>`, quotes that would end an attribute, `</textarea>` that
//! would end the "Try it" body) appear escaped on every page, never as markup. The pages hold a
//! subscription key in the browser, so this is the docs' one security property.

const SCRIPT: &str = "<script>alert(1)</script>";
const QUOTE: &str = "x\" onmouseover=\"alert(2)";
const TEXTAREA: &str = "</textarea><img src=x onerror=alert(3)>";

fn hostile_spec(version: &str) -> String {
    let s = serde_json::to_string;
    let all = format!("{SCRIPT} {QUOTE} {TEXTAREA}");
    let json = serde_json::json!({
        "openapi": "3.0.0",
        "info": { "title": all, "description": all, "version": version },
        "servers": [{ "url": "https://{endpoint}/openai" }],
        "paths": {
            "/things/{id}": {
                "post": {
                    "operationId": format!("make{QUOTE}"),
                    "summary": all,
                    "description": all,
                    "tags": [SCRIPT],
                    "parameters": [
                        { "name": "id", "in": "path", "required": true, "description": all,
                          "schema": { "type": "string", "pattern": SCRIPT } },
                        { "name": QUOTE, "in": "query", "required": true, "description": TEXTAREA,
                          "schema": { "type": "string", "default": TEXTAREA } }
                    ],
                    "requestBody": { "required": true, "description": all, "content": {
                        "application/json": {
                            "schema": { "$ref": "#/components/schemas/Thing" },
                            "example": { "note": all, "kind": SCRIPT }
                        } } },
                    "responses": { "200": { "description": all, "content": {
                        "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } } }
                }
            }
        },
        "components": { "schemas": {
            "Thing": {
                "type": "object", "title": all, "description": all, "required": ["note"],
                "properties": {
                    "note": { "type": "string", "description": all, "default": TEXTAREA },
                    "kind": { "type": "string", "enum": [SCRIPT, QUOTE, TEXTAREA], "description": all },
                    SCRIPT: { "type": "integer", "description": QUOTE }
                }
            }
        } }
    });
    s(&json).expect("json")
}

#[test]
fn markup_in_a_spec_is_text_on_every_page() {
    let dir = std::env::temp_dir().join(format!("aoai-docs-escaping-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for version in ["2025-01-01", "2025-02-01"] {
        let path = dir.join(format!("{version}.json"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(&path, hostile_spec(version)).expect("write");
    }
    let generated = aoai_codegen::generate(&dir, "spec", aoai_codegen::Options::default());
    let _ = std::fs::remove_dir_all(&dir);
    let generated = generated.unwrap_or_else(|e| panic!("{e}"));
    let pages = aoai_codegen::docs::pages(&generated.apis);
    let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "index.html",
            "2025-01-01.html",
            "2025-02-01.html",
            "changes-2025-01-01-to-2025-02-01.html"
        ]
    );
    for (name, html) in &pages {
        for payload in [
            SCRIPT,
            QUOTE,
            TEXTAREA,
            "alert(1)</script>",
            "\" onmouseover=",
        ] {
            assert!(
                !html.contains(payload),
                "{name} holds `{payload}` as markup"
            );
        }
        // The page's own script is its only one, and a "Try it" body its only textarea.
        assert_eq!(html.matches("<script>").count(), 1, "{name}");
        assert_eq!(
            html.matches("<textarea").count(),
            html.matches("</textarea>").count(),
            "{name}"
        );
    }
    // What the spec said is on the version pages, as text.
    for (_, html) in &pages[1..3] {
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;/textarea&gt;&lt;img src=x onerror=alert(3)&gt;"));
    }
    let version_page = &pages[1].1;
    assert!(version_page.contains("x&quot; onmouseover=&quot;alert(2)"));
    // The example in the "Try it" body stays inside its textarea.
    let body = version_page
        .split(r#"<textarea class="try-body""#)
        .nth(1)
        .and_then(|rest| rest.split("</textarea>").next())
        .expect("a Try it body");
    assert!(body.contains("&lt;/textarea&gt;"), "{body}");
}
