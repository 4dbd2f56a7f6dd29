//! Compiles the generator's snapshot files (`codegen/tests/snapshots/*.rs`, one per schema rule)
//! and checks that the generated code behaves as each rule says: what the `schemas` tables
//! accept and reject, with which path and message, and that a value read into the `models` and
//! written back loses nothing.

use aoai_runtime::schema::{self, Kind, Model, Policy, Ty, ValidationError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Compiles each named snapshot as a module of that name, and lists the names.
macro_rules! snapshots {
    ($($name:ident),* $(,)?) => {
        $(
            #[allow(dead_code, clippy::large_enum_variant, clippy::enum_variant_names)]
            mod $name {
                include!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/codegen/tests/snapshots/",
                    stringify!($name),
                    ".rs"
                ));
            }
        )*
        const SNAPSHOTS: &[&str] = &[$(stringify!($name)),*];
    };
}

// Every file of codegen/tests/snapshots/ (`every_snapshot_is_compiled` holds this list to it).
snapshots!(
    all_of,
    anchors,
    constraints,
    crlf,
    enums,
    maps,
    minified,
    names,
    nullable,
    overlays,
    recursion,
    required,
    unions,
    v31_binary,
    v31_nullable,
    v31_refs,
    v31_values,
    v32_v1_api,
);

#[test]
fn every_snapshot_is_compiled() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/codegen/tests/snapshots");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("the snapshots")
        .map(|e| {
            let path = e.expect("entry").path();
            path.file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 name")
                .to_string()
        })
        .collect();
    files.sort();
    assert_eq!(
        files, SNAPSHOTS,
        "add the snapshot to the snapshots! list above"
    );
}

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

/// Checks `value` against `ty` as the gateway checks a body.
fn check(ty: &Ty, value: &Value) -> Result<(), ValidationError> {
    let bytes = serde_json::to_vec(value).expect("json");
    schema::json::validate(&bytes, ty, Policy::default())
}

fn rejects_ty(ty: &Ty, value: Value) -> ValidationError {
    check(ty, &value).expect_err(&format!("{value} should be rejected"))
}

fn rejects(model: &'static Model, value: Value) -> ValidationError {
    rejects_ty(&Ty::of(Kind::Model(model)), value)
}

fn accepts(model: &'static Model, value: Value) {
    if let Err(e) = check(&Ty::of(Kind::Model(model)), &value) {
        panic!("{value} rejected: {e}");
    }
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
    use nullable::schemas::SETTINGS;
    accepts(
        &SETTINGS,
        json!({"name": "a", "label": null, "stop": null, "scores": [1, null]}),
    );
    let (path, message) = field_error(rejects(&SETTINGS, json!({"name": "a"})));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("", "missing field `label`")
    );
    let (path, message) = field_error(rejects(
        &SETTINGS,
        json!({"name": "a", "label": null, "temperature": null}),
    ));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("temperature", "expected a number, got null")
    );
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

    let (_, message) = field_error(rejects(&enums::schemas::IMAGE_SIZE, json!("512x512")));
    assert_eq!(
        message,
        "must be one of \"256x256\", \"1024x1024\", got \"512x512\""
    );
    accepts(&enums::schemas::FINISH_REASON, json!("tool_calls"));

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

    static MESSAGES: Ty = Ty::of(Kind::Array(&Ty::of(Kind::Model(&unions::schemas::MESSAGE))));
    let (path, message) = field_error(rejects_ty(
        &MESSAGES,
        json!([{"role": "system", "content": "x"}, {"role": "robot", "content": "x"}]),
    ));
    assert_eq!(path, "[1].role");
    assert_eq!(
        message,
        "must be one of \"system\", \"user\", got \"robot\""
    );

    let bad_part = json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}]);
    let (path, message) = field_error(rejects_ty(&MESSAGES, bad_part));
    assert_eq!(path, "[0].content[1].image_url");
    assert_eq!(message, "missing field `url`");

    let (path, _) = field_error(rejects_ty(
        &MESSAGES,
        json!([{"role": "user", "content": 5}]),
    ));
    assert_eq!(path, "[0].content");

    // A valid value after a failure: nothing of the failure is left behind.
    let valid =
        json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]);
    assert_eq!(check(&MESSAGES, &valid), Ok(()));
    let (path, _) = field_error(rejects_ty(
        &MESSAGES,
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
    let (path, _) = field_error(rejects(&unions::schemas::SOURCE, json!({"type": "search"})));
    assert_eq!(path, "");
    accepts(&unions::schemas::SOURCE, json!({"type": "cosmos"}));

    // A subtype the mapping leaves out is still one, tagged by its own one-value `type`.
    assert!(matches!(
        roundtrip::<unions::models::Chunking>(json!({"type": "auto"})),
        unions::models::Chunking::Auto(_)
    ));
    accepts(&unions::schemas::CHUNKING, json!({"type": "auto"}));
    let (path, _) = field_error(rejects(
        &unions::schemas::CHUNKING,
        json!({"type": "static"}),
    ));
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
    let (_, message) = field_error(rejects(&unions::schemas::TOOL_CHOICE, json!(5)));
    assert_eq!(
        message,
        "expected `NamedTool` or one of \"none\", \"auto\", got an integer"
    );
    accepts(&unions::schemas::TOOL_CHOICE, json!("auto"));
    accepts(&unions::schemas::TRANSCRIPT, json!({"text": "t"}));

    // A single-variant anyOf is just that type.
    let model: unions::models::Model = "gpt-4o".to_string();
    assert_eq!(model, "gpt-4o");
}

#[test]
fn all_of_merges_objects_and_intersects_the_rest() {
    use all_of::models::{Derived, LabelledShape};
    let d: Derived = roundtrip(json!({"id": "1", "created": 5, "name": "n"}));
    assert_eq!(
        (d.id.as_str(), d.created, d.name.as_str()),
        ("1", Some(5), "n")
    );
    let (_, message) = field_error(rejects(&all_of::schemas::DERIVED, json!({"id": "1"})));
    assert_eq!(message, "missing field `name`");

    let shape: LabelledShape = roundtrip(json!({"kind": "circle", "radius": 2.0, "label": "c"}));
    assert_eq!(shape.1.label, "c");
    let (_, message) = field_error(rejects(
        &all_of::schemas::LABELLED_SHAPE,
        json!({"kind": "circle", "radius": 2.0}),
    ));
    assert_eq!(message, "missing field `label`");
    accepts(
        &all_of::schemas::LABELLED_SHAPE,
        json!({"kind": "circle", "radius": 2.0, "label": "c"}),
    );
}

#[test]
fn a_required_name_the_schema_does_not_define_is_not_enforced() {
    // The published specs' slips: the SDKs never send these, and the service does not want them.
    accepts(
        &required::schemas::CREATE_RUN,
        json!({"assistant_id": "asst_1"}),
    );
    accepts(
        &required::schemas::JSON_SCHEMA_FORMAT,
        json!({"type": "json_schema", "json_schema": {"name": "w", "schema": {}}}),
    );
    // What the schema does define stays required.
    let (path, message) = field_error(rejects(
        &required::schemas::JSON_SCHEMA_FORMAT,
        json!({"type": "json_schema", "json_schema": {"schema": {}}}),
    ));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("json_schema", "missing field `name`")
    );
    // A schema that describes no properties at all keeps JSON Schema's meaning.
    let (_, message) = field_error(rejects(&required::schemas::UNDESCRIBED, json!({})));
    assert_eq!(message, "missing field `token`");
    accepts(&required::schemas::UNDESCRIBED, json!({"token": [1]}));
}

#[test]
fn a_one_of_of_required_lists_asks_for_exactly_one_set() {
    let file_search = &required::schemas::FILE_SEARCH;
    accepts(file_search, json!({"vector_store_ids": ["vs_1"]}));
    accepts(file_search, json!({"vector_stores": [{}]}));
    let (_, neither) = field_error(rejects(file_search, json!({})));
    assert_eq!(neither, "needs `vector_store_ids` or `vector_stores`");
    let (_, both) = field_error(rejects(
        file_search,
        json!({"vector_store_ids": [], "vector_stores": []}),
    ));
    assert_eq!(
        both,
        "takes only one of `vector_store_ids` or `vector_stores`"
    );
    // `anyOf`: one or both.
    let contact = &required::schemas::CONTACT;
    accepts(contact, json!({"email": "a@b.c", "phone": "1"}));
    accepts(contact, json!({"phone": "1"}));
    let (_, none) = field_error(rejects(contact, json!({})));
    assert_eq!(none, "needs `email` or `phone`");
}

#[test]
fn an_overlay_changes_what_the_route_requires_and_says_so() {
    let request = overlays::routes::CREATE_FILE
        .request
        .as_ref()
        .expect("a body");
    let required: Vec<&str> = request.content[0]
        .form_fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    assert_eq!(required, ["file", "purpose"]);
    // The value the overlay appended to the enum is checked like the published ones.
    let purpose = request.content[0]
        .form_fields
        .iter()
        .find(|f| f.name == "purpose")
        .expect("purpose");
    assert!(aoai_runtime::schema::text::check(&purpose.ty, "fine-tune").is_ok());
    assert!(aoai_runtime::schema::text::check(&purpose.ty, "vision").is_err());
    let api = &overlays::routes::API;
    assert_eq!(api.overlays.len(), 1);
    assert_eq!(api.overlays[0].actions.len(), 4);
    let touched: Vec<usize> = overlays::routes::CREATE_FILE
        .overlaid
        .iter()
        .map(|o| o.action)
        .collect();
    assert_eq!(touched, [1, 2, 3, 4]);
    assert!(overlays::routes::DELETE_FILE.overlaid.is_empty());
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
    // Fields the spec does not list are checked against `additionalProperties`.
    let (path, message) = field_error(rejects(&maps::schemas::TAGGED, json!({"color": 1})));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("color", "expected a string, got an integer 1")
    );
    let (path, _) = field_error(rejects(&maps::schemas::LOGIT_BIAS, json!({"1": "x"})));
    assert_eq!(path, "1");
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
    use aoai_runtime::catalog::{ContentKind, Method, ParamLocation};
    use aoai_runtime::schema::{Body, Width};
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
    assert!(matches!(
        route.parameters[3].ty.kind,
        Kind::Integer(Width::I64)
    ));
    let Kind::Model(Model {
        body: Body::Enum(order),
        ..
    }) = route.parameters[4].ty.kind
    else {
        panic!("an enum parameter")
    };
    assert_eq!(order.values, ["asc", "desc"]);
    assert_eq!(route.stream_flag, Some("stream"));
    let request = route.request.as_ref().expect("a request body");
    let body = request.content[0].schema.expect("a JSON schema");
    let validate = |bytes: &[u8]| schema::json::validate(bytes, body, Policy::default());
    assert!(validate(br#"{"type": "x"}"#).is_ok());
    assert_eq!(
        validate(br#"{"self": true}"#).expect_err("bad").to_string(),
        "missing field `type`"
    );
    assert_eq!(
        validate(br#"{"type": "t", "self": 1}"#)
            .expect_err("bad")
            .to_string(),
        "self: expected a boolean, got an integer 1"
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
    let settings = Ty::of(Kind::Model(&nullable::schemas::SETTINGS));
    let err =
        schema::json::validate(b"{\"name\": ", &settings, Policy::default()).expect_err("bad");
    assert!(
        matches!(err, ValidationError::Syntax { line: 1, .. }),
        "{err:?}"
    );
    let err = schema::json::validate(
        br#"{"name": "a", "label": null} trailing"#,
        &settings,
        Policy::default(),
    )
    .expect_err("bad");
    assert!(matches!(err, ValidationError::Syntax { .. }), "{err:?}");
}

#[test]
fn the_specs_validation_keywords_are_checked_at_every_depth() {
    use constraints::schemas::JOB;
    let valid = json!({
        "name": "job-1", "steps": ["a", "bcd"], "top_p": 1, "temperature": 1.5,
        "step_size": 2.5, "max_tokens": 100, "tags": ["x", "y"], "labels": {"a": "b"},
        "starts_at": "2024-10-21T08:30:00Z", "callback": "https://example.com/hook",
        "id": "123e4567-e89b-12d3-a456-426614174000", "priority": 5, "capped": "abc",
        "stop": ["a", "b"], "seed": -5
    });
    accepts(&JOB, valid.clone());
    let with = |field: &str, value: Value| {
        let mut v = valid.clone();
        v[field] = value;
        v
    };
    for (body, path, message) in [
        (
            with("name", json!("")),
            "name",
            "must be at least 1 character long, got 0",
        ),
        (
            with("name", json!("way-too-long")),
            "name",
            "must be at most 8 characters long, got 12",
        ),
        (
            with("name", json!("Job")),
            "name",
            "must match the pattern `^[a-z][a-z0-9-]*$`",
        ),
        (with("top_p", json!(-1)), "top_p", "must be >= 0, got -1"),
        (
            with("temperature", json!(0)),
            "temperature",
            "must be > 0, got 0",
        ),
        (
            with("temperature", json!(2.0)),
            "temperature",
            "must be < 2, got 2",
        ),
        (
            with("step_size", json!(0.3)),
            "step_size",
            "must be a multiple of 0.5, got 0.3",
        ),
        (
            with("max_tokens", json!(2e25)),
            "max_tokens",
            "2e25 is out of range: must be an integer from -2147483648 to 2147483647",
        ),
        (
            with("steps", json!([])),
            "steps",
            "must have at least 1 item, got 0",
        ),
        (
            with("steps", json!(["a", "b", "c", "d"])),
            "steps",
            "must have at most 3 items, got 4",
        ),
        (
            with("steps", json!(["a", "toolong"])),
            "steps[1]",
            "must be at most 4 characters long, got 7",
        ),
        (
            with("tags", json!(["x", "y", "x"])),
            "tags",
            "must not repeat an item: items 0 and 2 are the same",
        ),
        (
            with("labels", json!({"a": "1", "b": "2", "c": "3"})),
            "labels",
            "must have at most 2 properties, got 3",
        ),
        (
            with("labels", json!({"a": ""})),
            "labels.a",
            "must be at least 1 character long, got 0",
        ),
        (
            with("starts_at", json!("tomorrow")),
            "starts_at",
            "must be an RFC 3339 date-time such as 2024-10-21T08:30:00Z, got \"tomorrow\"",
        ),
        (
            with("callback", json!("example.com/hook")),
            "callback",
            "must be an absolute URI (a scheme such as https: or data: first), got \"example.com/hook\"",
        ),
        (
            with("id", json!("not-a-uuid")),
            "id",
            "must be a UUID such as 123e4567-e89b-12d3-a456-426614174000, got \"not-a-uuid\"",
        ),
        (
            with("priority", json!(9)),
            "priority",
            "must be <= 5, got 9",
        ),
        (
            with("capped", json!("abcd")),
            "capped",
            "must be at most 3 characters long, got 4",
        ),
        (
            with("capped", json!("")),
            "capped",
            "must be at least 1 character long, got 0",
        ),
        (
            with("stop", json!("abc")),
            "stop",
            "must be at most 2 characters long, got 3",
        ),
        (
            with("stop", json!(["a", "b", "c"])),
            "stop",
            "must have at most 2 items, got 3",
        ),
    ] {
        let (got_path, got_message) = field_error(rejects(&JOB, body.clone()));
        assert_eq!(
            (got_path.as_str(), got_message.as_str()),
            (path, message),
            "{body}"
        );
    }
    // A bound beyond what the type holds constrains nothing.
    accepts(&JOB, with("seed", json!(i64::MIN)));

    // Parameters are checked the same way, from text.
    let route = &constraints::routes::JOBS_CREATE;
    let limit = &route.parameters[2].ty;
    assert_eq!(schema::text::check(limit, "100"), Ok(()));
    assert_eq!(
        schema::text::check(limit, "0"),
        Err("must be >= 1, got 0".into())
    );
    let include = &route.parameters[3].ty;
    assert!(include.is_array());
    assert_eq!(schema::text::check(include, "a"), Ok(()));
    assert!(schema::text::check(include, "c").is_err());
}

#[test]
fn unknown_fields_are_refused_only_when_asked_and_only_where_the_spec_lists_fields() {
    let strict = Policy {
        reject_unknown_fields: true,
    };
    let job = Ty::of(Kind::Model(&constraints::schemas::JOB));
    let body = br#"{"name": "a", "steps": ["s"], "surprise": 1}"#;
    assert_eq!(
        schema::json::validate(body, &job, Policy::default()),
        Ok(())
    );
    let err = schema::json::validate(body, &job, strict).expect_err("strict");
    assert_eq!(err.path(), Some("surprise"));
    // A schema with additionalProperties allows other fields, whatever the policy.
    let tagged = Ty::of(Kind::Model(&maps::schemas::TAGGED));
    assert_eq!(
        schema::json::validate(br#"{"name": "n", "color": "red"}"#, &tagged, strict),
        Ok(())
    );
}

#[test]
fn openapi_3_1_nullable_forms_read_like_3_0_nullable() {
    use v31_nullable::models::{Settings, SettingsSeed};
    use v31_nullable::schemas::SETTINGS;
    let s: Settings = roundtrip(json!({"label": null, "options": null, "seed": "42"}));
    assert_eq!((s.label, s.options), (None, None));
    assert_eq!(s.seed, Some(SettingsSeed::String("42".into())));
    accepts(
        &SETTINGS,
        json!({"label": "x", "options": {"include_usage": true}, "stop": null, "seed": 7}),
    );
    let (path, message) = field_error(rejects(&SETTINGS, json!({"label": null})));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("", "missing field `options`")
    );
    let (path, _) = field_error(rejects(
        &SETTINGS,
        json!({"label": null, "options": null, "seed": 1.5}),
    ));
    assert_eq!(path, "seed");
}

#[test]
fn openapi_3_1_const_and_exclusive_bounds_are_checked() {
    use v31_values::schemas::SAMPLING;
    accepts(
        &SAMPLING,
        json!({"type": "sampling", "temperature": 1.0, "top_k": 1}),
    );
    // The published int64 bound beyond i64 constrains nothing: every int64 passes.
    accepts(&SAMPLING, json!({"type": "sampling", "seed": i64::MIN}));
    accepts(&SAMPLING, json!({"type": "sampling", "seed": i64::MAX}));
    let (path, _) = field_error(rejects(&SAMPLING, json!({"type": "other"})));
    assert_eq!(path, "type");
    for edge in [0.0, 2.0] {
        let (path, message) = field_error(rejects(
            &SAMPLING,
            json!({"type": "sampling", "temperature": edge}),
        ));
        assert_eq!(path, "temperature");
        assert!(message.contains("must be"), "{message}");
    }
    let (path, _) = field_error(rejects(&SAMPLING, json!({"type": "sampling", "top_k": 0})));
    assert_eq!(path, "top_k");
}

#[test]
fn openapi_3_1_dynamic_references_make_recursive_types() {
    use v31_refs::models::Node;
    use v31_refs::schemas::NODE;
    let tree =
        json!({"children": [{"children": [], "metadata": {"k": "v"}}], "parent": {"extra": [1]}});
    let node: Node = roundtrip(tree.clone());
    assert_eq!(node.children.map(|c| c.len()), Some(1));
    accepts(&NODE, tree);
    let (path, _) = field_error(rejects(
        &NODE,
        json!({"children": [{"metadata": {"k": 1}}]}),
    ));
    assert_eq!(path, "children[0].metadata.k");
}

#[test]
fn openapi_3_1_binary_parts_and_the_v1_api_shape() {
    let upload = v31_binary::routes::FILES_UPLOAD
        .request
        .as_ref()
        .expect("a body");
    let fields = upload.content[0].form_fields;
    assert!(fields.iter().any(|f| f.name == "file" && f.binary));
    assert!(fields.iter().any(|f| f.name == "thumbnail" && !f.binary));

    let api = &v32_v1_api::routes::API;
    assert_eq!(api.mount, "/v1");
    let ids: Vec<(&str, Option<&str>)> = api
        .routes
        .iter()
        .map(|r| (r.operation_id, r.deployment_field))
        .collect();
    assert_eq!(
        ids,
        [
            ("createChatCompletion", Some("model")),
            // A fine-tuning job's `model` is a base model: no usage in its answer.
            ("postFineTuningJobs", None),
            ("getResponsesResponseId", None),
        ]
    );
}
