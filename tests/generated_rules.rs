//! Compiles the generator's snapshot files (`codegen/tests/snapshots/*.rs`, one per schema rule)
//! and checks that the generated types behave as each rule says: what they accept, what they
//! reject with which path, and that a value read and written back loses nothing.

use aoai_gateway::support::{self, ValidationError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

macro_rules! snapshot {
    ($name:ident) => {
        #[allow(dead_code, clippy::large_enum_variant, clippy::enum_variant_names)]
        mod $name {
            include!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/codegen/tests/snapshots/",
                stringify!($name),
                ".rs"
            ));
        }
    };
}

snapshot!(nullable);
snapshot!(enums);
snapshot!(unions);
snapshot!(all_of);
snapshot!(maps);
snapshot!(recursion);
snapshot!(names);
snapshot!(anchors);
snapshot!(crlf);
snapshot!(minified);

/// Reads `value` as `T`, writes it back, and insists nothing changed.
fn roundtrip<T: DeserializeOwned + Serialize>(value: Value) -> T {
    let typed: T =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value} rejected: {e}"));
    assert_eq!(
        serde_json::to_value(&typed).expect("serializes"),
        value,
        "round trip changed the value"
    );
    typed
}

fn rejects<T: DeserializeOwned>(value: Value) -> ValidationError {
    let bytes = serde_json::to_vec(&value).expect("json");
    support::validate_json::<T>(&bytes).expect_err("should be rejected")
}

fn field_error(err: ValidationError) -> (String, String) {
    match err {
        ValidationError::Field { path, message } => (path, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn nullable_and_optional_fields_keep_null_apart_from_absent() {
    use nullable::models::Settings;
    let s: Settings = roundtrip(json!({"name": "a", "label": null}));
    assert_eq!(s.label, None);
    assert_eq!(s.stop, None);

    let s: Settings = roundtrip(
        json!({"name": "a", "label": "l", "stop": null, "options": null, "scores": [1, null]}),
    );
    assert_eq!(s.stop, Some(None));
    assert_eq!(s.options, Some(None));
    assert_eq!(s.scores, Some(vec![Some(1), None]));

    let s: Settings = roundtrip(
        json!({"name": "a", "label": "l", "temperature": 0.5, "stop": "x", "future_field": [1]}),
    );
    assert_eq!(s.temperature, Some(0.5));
    assert_eq!(s.stop, Some(Some("x".into())));
    assert_eq!(s.extra["future_field"], json!([1]));

    // Required-but-nullable must still be present; not-nullable must not be null.
    let (path, message) = field_error(rejects::<Settings>(json!({"name": "a"})));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("", "missing field `label`")
    );
    let (path, message) = field_error(rejects::<Settings>(
        json!({"name": "a", "label": null, "temperature": null}),
    ));
    assert_eq!(path, "temperature");
    assert!(message.contains("invalid type: null"), "{message}");
}

#[test]
fn enums_closed_open_and_shared_by_name() {
    use enums::models::{Done, FinishReason, ImageSize, ListOrder, Request};
    assert_eq!(
        roundtrip::<ImageSize>(json!("1024x1024")),
        ImageSize::Size1024x1024
    );
    assert_eq!(ImageSize::Size256x256.as_str(), "256x256");
    assert_eq!(roundtrip::<Done>(json!("[DONE]")), Done::Done);

    // modelAsString: values the spec does not list are kept as they are.
    assert_eq!(
        roundtrip::<FinishReason>(json!("length")),
        FinishReason::Length
    );
    assert_eq!(
        roundtrip::<FinishReason>(json!("tool_calls")),
        FinishReason::Other("tool_calls".into())
    );

    let (_, message) = field_error(rejects::<ImageSize>(json!("512x512")));
    assert!(
        message.contains("unknown variant `512x512`, expected `256x256` or `1024x1024`"),
        "{message}"
    );

    // Two inline enums with one x-ms-enum name and the same values share one type.
    let r: Request = roundtrip(json!({"order": "asc", "reverse_order": "desc", "quality": "hd"}));
    let same_type: [Option<ListOrder>; 2] = [r.order, r.reverse_order];
    assert_eq!(same_type, [Some(ListOrder::Asc), Some(ListOrder::Desc)]);
}

#[test]
fn unions_dispatch_on_constant_tags_and_report_the_inner_path() {
    use unions::models::{
        ContentPart, Message, Source, ToolChoice, ToolChoiceMode, Transcript, UserMessageContent,
    };
    let m: Message = roundtrip(json!({"role": "system", "content": "be brief"}));
    assert!(matches!(m, Message::System(_)));
    let m: Message = roundtrip(
        json!({"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]}),
    );
    let Message::User(user) = m else {
        panic!("expected a user message")
    };
    let UserMessageContent::ContentPartArray(parts) = user.content else {
        panic!("expected parts")
    };
    assert!(matches!(parts[1], ContentPart::ImageUrl(_)));

    let (path, message) = field_error(rejects::<Vec<Message>>(
        json!([{"role": "system", "content": "x"}, {"role": "robot", "content": "x"}]),
    ));
    assert_eq!(path, "[1].role");
    assert!(
        message.contains("unknown variant `robot`, expected `system` or `user`"),
        "{message}"
    );

    let bad_part = json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}]);
    let (path, message) = field_error(rejects::<Vec<Message>>(bad_part));
    assert_eq!(path, "[0].content[1].image_url");
    assert_eq!(message, "missing field `url`");

    let (path, _) = field_error(rejects::<Vec<Message>>(
        json!([{"role": "user", "content": 5}]),
    ));
    assert_eq!(path, "[0].content");

    // A valid body is read once without tracking paths; a failure before it leaves no state
    // behind, and the next failure still finds its inner path.
    let valid =
        json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]);
    let valid = serde_json::to_vec(&valid).expect("json");
    assert_eq!(support::validate_json::<Vec<Message>>(&valid), Ok(()));
    let (path, _) = field_error(rejects::<Vec<Message>>(
        json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}]),
    ));
    assert_eq!(path, "[0].content[0].image_url.url");

    // A discriminated base schema is the union of the schemas that extend it.
    assert!(matches!(
        roundtrip::<Source>(json!({"type": "search", "index": "i"})),
        Source::Search(_)
    ));
    assert!(matches!(
        roundtrip::<Source>(json!({"type": "cosmos"})),
        Source::Cosmos(_)
    ));
    let (path, _) = field_error(rejects::<Source>(json!({"type": "search"})));
    assert_eq!(path, "");

    // Untagged: the richer object is tried first, so it is not swallowed by the brief one.
    assert!(matches!(
        roundtrip::<Transcript>(json!({"text": "t", "language": "en", "duration": 1.5})),
        Transcript::Verbose(_)
    ));
    assert!(matches!(
        roundtrip::<Transcript>(json!({"text": "t"})),
        Transcript::Brief(_)
    ));
    assert_eq!(
        roundtrip::<ToolChoice>(json!("auto")),
        ToolChoice::Mode(ToolChoiceMode::Auto)
    );
    assert!(matches!(
        roundtrip::<ToolChoice>(json!({"name": "f"})),
        ToolChoice::NamedTool(_)
    ));
    let (_, message) = field_error(rejects::<ToolChoice>(json!(5)));
    assert!(
        message.contains("expected `NamedTool` or one of \"none\", \"auto\""),
        "{message}"
    );

    // A single-variant anyOf is just that type.
    let model: unions::models::Model = "gpt-4o".to_string();
    assert_eq!(model, "gpt-4o");
}

#[test]
fn all_of_merges_objects_and_intersects_the_rest() {
    use all_of::models::{Derived, LabelledShape};
    let d: Derived =
        roundtrip(json!({"id": "1", "created": 5, "name": "n", "kind": {"any": "thing"}}));
    assert_eq!(
        (d.id.as_str(), d.created, d.name.as_str()),
        ("1", Some(5), "n")
    );
    let (_, message) = field_error(rejects::<Derived>(json!({"id": "1", "name": "n"})));
    assert_eq!(message, "missing field `kind`");

    let shape: LabelledShape = roundtrip(json!({"kind": "circle", "radius": 2.0, "label": "c"}));
    assert_eq!(shape.1.label, "c");
    let (_, message) = field_error(rejects::<LabelledShape>(
        json!({"kind": "circle", "radius": 2.0}),
    ));
    assert_eq!(message, "missing field `label`");
}

#[test]
fn maps_and_unknown_fields_lose_nothing() {
    use maps::models::{Anything, Closed, LogitBias, Metadata, Parameters, Tagged};
    let bias: LogitBias = roundtrip(json!({"50256": -100, "42": 5}));
    assert_eq!(bias["50256"], -100);
    let _: Metadata = roundtrip(json!({"a": {"b": [1, "c"]}}));
    let _: Parameters = roundtrip(json!({"type": "object", "properties": {}}));
    let t: Tagged = roundtrip(json!({"name": "n", "color": "red"}));
    assert_eq!(t.extra["color"], "red");
    // serde buffers flattened entries, so this one error has no path; the message still says
    // what is wrong.
    let (_, message) = field_error(rejects::<Tagged>(json!({"color": 1})));
    assert!(
        message.contains("invalid type: integer `1`, expected a string"),
        "{message}"
    );
    let c: Closed = roundtrip(json!({"name": "n", "added_later": true}));
    assert_eq!(c.extra["added_later"], json!(true));
    let _: Anything = roundtrip(json!([1, {"x": null}]));
}

#[test]
fn recursion_is_boxed_only_where_needed() {
    use recursion::models::{Even, Leaf, Node, Odd};
    // These constructions only compile if `next`, `odd` and `even` are boxed and `children`
    // and `leaf` are not.
    let node = Node {
        value: Some("a".into()),
        next: Some(Box::new(Node {
            value: None,
            next: None,
            children: None,
            extra: Default::default(),
        })),
        children: Some(vec![]),
        extra: Default::default(),
    };
    let odd = Odd {
        even: Some(Box::new(Even {
            odd: None,
            extra: Default::default(),
        })),
        leaf: Some(Leaf {
            name: None,
            extra: Default::default(),
        }),
        extra: Default::default(),
    };
    let _: Even = Even {
        odd: Some(Box::new(odd)),
        extra: Default::default(),
    };
    let _: Node = roundtrip(serde_json::to_value(&node).expect("json"));
    let _: Node =
        roundtrip(json!({"value": "a", "next": {"next": {"children": [{"value": "b"}]}}}));
}

#[test]
fn names_are_sanitized_and_keep_the_spec_name() {
    use aoai_gateway::catalog::{ContentKind, Method, ParamLocation, ParamType};
    use names::models::{OptionSchema, StringSchema, ThingsUpdateRequest};
    let r: ThingsUpdateRequest =
        roundtrip(json!({"type": "t", "self": true, "fieldsMapping": "m", "a-b": "1", "a_b": "2"}));
    assert_eq!(
        (r.type_.as_str(), r.self_, r.fields_mapping.as_deref()),
        ("t", Some(true), Some("m"))
    );
    assert_eq!(
        (r.a_b.as_deref(), r.a_b2.as_deref()),
        (Some("1"), Some("2"))
    );
    let _: StringSchema = roundtrip(json!({"match": "m"}));
    let _: OptionSchema = roundtrip(json!({"code": "c"}));

    let route = &names::routes::THINGS_UPDATE;
    assert_eq!(
        (route.method, route.path, route.summary),
        (
            Method::Post,
            "/deployments/{deployment-id}/things/{thing_id}",
            "Updates a thing."
        )
    );
    assert_eq!(route.tags, &["Things"]);
    let params: Vec<_> = route
        .parameters
        .iter()
        .map(|p| (p.name, p.location, p.required))
        .collect();
    assert_eq!(
        params,
        [
            ("deployment-id", ParamLocation::Path, true),
            ("thing_id", ParamLocation::Path, true),
            ("api-version", ParamLocation::Query, true),
            ("limit", ParamLocation::Query, false),
            ("order", ParamLocation::Query, false),
        ]
    );
    assert_eq!(route.parameters[3].ty, ParamType::Integer);
    assert_eq!(route.parameters[4].ty, ParamType::Enum(&["asc", "desc"]));
    assert_eq!(route.stream_flag, Some("stream"));
    let request = route.request.as_ref().expect("a request body");
    let validate = request.content[0].validate.expect("a JSON validator");
    assert!(validate(br#"{"type": "x"}"#).is_ok());
    assert_eq!(
        validate(br#"{"self": true}"#).expect_err("bad").to_string(),
        "missing field `type`"
    );
    assert_eq!(
        validate(br#"{"type": "t", "self": 1}"#)
            .expect_err("bad")
            .to_string(),
        "self: invalid type: integer `1`, expected a boolean"
    );
    let ok = &route.responses[0];
    let kinds: Vec<_> = ok
        .content
        .iter()
        .map(|c| (c.media_type, c.kind, c.model))
        .collect();
    assert_eq!(
        kinds,
        [
            ("application/json", ContentKind::Json, Some("StringSchema")),
            ("text/plain", ContentKind::Text, None),
            ("text/event-stream", ContentKind::EventStream, None),
        ]
    );
    assert_eq!(route.responses[1].status, "default");

    let upload = &names::routes::AUDIO_UPLOAD;
    let form = &upload.request.as_ref().expect("body").content[0];
    assert_eq!(form.kind, ContentKind::Multipart);
    let fields: Vec<_> = form
        .form_fields
        .iter()
        .map(|f| (f.name, f.required, f.binary))
        .collect();
    assert_eq!(fields, [("file", true, true), ("prompt", false, false)]);
    assert_eq!(upload.responses[0].content[0].kind, ContentKind::Binary);
    assert_eq!(names::routes::API.routes.len(), 2);
}

#[test]
fn yaml_anchors_merge_keys_crlf_and_minified_json() {
    let a: anchors::models::WithAlias = roundtrip(json!({"id": "1", "other_id": "2"}));
    assert_eq!(a.id.as_deref(), Some("1"));
    let m: anchors::models::Merged = roundtrip(json!({"id": "1"}));
    assert_eq!(m.id.as_deref(), Some("1"));
    let c: crlf::models::WithAlias = roundtrip(json!({"id": "1"}));
    assert_eq!(c.id.as_deref(), Some("1"));
    assert_eq!(minified::routes::PING.path, "/ping");
    let _: minified::models::Pong = roundtrip(json!({"ok": true}));
}

#[test]
fn invalid_json_is_a_syntax_error_with_position() {
    let err =
        support::validate_json::<nullable::models::Settings>(b"{\"name\": ").expect_err("bad");
    assert!(
        matches!(err, ValidationError::Syntax { line: 1, .. }),
        "{err:?}"
    );
    let err = support::validate_json::<nullable::models::Settings>(
        br#"{"name": "a", "label": null} trailing"#,
    )
    .expect_err("bad");
    assert!(matches!(err, ValidationError::Syntax { .. }), "{err:?}");
}
