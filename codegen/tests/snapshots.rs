//! Each tiny spec in `tests/specs/` covers one generator rule. Its generated code is compared
//! with the checked-in `tests/snapshots/<name>.rs`; run with `UPDATE_SNAPSHOTS=1` to rewrite
//! them after an intended change, and review the diff. The gateway's tests compile these
//! snapshots and check how the generated types behave (`tests/generated_rules.rs`).

use std::path::Path;

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let spec = std::fs::read_dir(dir.join("specs"))
        .expect("tests/specs exists")
        .map(|e| e.expect("readable entry").path())
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(name))
        .unwrap_or_else(|| panic!("no spec named {name}"));
    let file_name = spec
        .file_name()
        .and_then(|s| s.to_str())
        .expect("utf-8 name");
    let (text, _, warnings) =
        aoai_codegen::generate_file(&spec, &format!("tests/specs/{file_name}"), file_name)
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    let snapshot = dir.join("snapshots").join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &text).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&snapshot).unwrap_or_else(|_| {
        panic!(
            "missing {}; run with UPDATE_SNAPSHOTS=1",
            snapshot.display()
        )
    });
    if expected != text {
        let first = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "generated code for {name} differs from {} from line {}:\n  expected: {}\n  actual:   {}\nrun with UPDATE_SNAPSHOTS=1 to accept",
            snapshot.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or(""),
            text.lines().nth(first).unwrap_or(""),
        );
    }
}

#[test]
fn nullable() {
    check("nullable");
}

#[test]
fn enums() {
    check("enums");
}

#[test]
fn unions() {
    check("unions");
}

#[test]
fn all_of() {
    check("all_of");
}

#[test]
fn maps() {
    check("maps");
}

#[test]
fn recursion() {
    check("recursion");
}

#[test]
fn names() {
    check("names");
}

#[test]
fn anchors() {
    check("anchors");
}

#[test]
fn crlf() {
    check("crlf");
}

#[test]
fn minified_json() {
    check("minified");
}

#[test]
fn constraints() {
    check("constraints");
}
