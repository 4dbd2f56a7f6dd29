//! Each tiny spec in `tests/specs/` covers one generator rule. Its generated code, and the
//! warnings it gives (as comments at the end), are compared with the checked-in
//! `tests/snapshots/<name>.rs`; run with `UPDATE_SNAPSHOTS=1` to write them
//! after an intended change (or for a new rule), and review the diff. The cases are the files of
//! `tests/specs/`: a new rule is a new spec file. The gateway's tests compile these snapshots and
//! check how the generated code behaves (`tests/generated_rules.rs`).

use std::path::{Path, PathBuf};

/// The specs of `tests/specs/`; a spec's overlay, if it has one, is `<name>.overlay.yaml`.
fn specs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/specs exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| !aoai_codegen::load::overlay::is_overlay(p))
        .collect();
    specs.sort();
    specs
}

fn overlay_of(spec: &Path) -> Option<aoai_codegen::load::overlay::Overlay> {
    let path = spec.with_extension("overlay.yaml");
    let name = format!(
        "tests/specs/{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
    );
    path.exists().then(|| {
        aoai_codegen::load::overlay::Overlay::read(&path, &name).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn name_of(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("a UTF-8 name")
}

/// How `spec`'s generated code differs from its snapshot, if it does.
fn difference(spec: &Path, update: bool) -> Option<String> {
    let name = name_of(spec);
    let file_name = spec
        .file_name()
        .and_then(|s| s.to_str())
        .expect("utf-8 name");
    let overlay = overlay_of(spec);
    let (mut text, _, warnings) = aoai_codegen::generate_file_with(
        spec,
        &format!("tests/specs/{file_name}"),
        file_name,
        &overlay.iter().collect::<Vec<_>>(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A rule that warns has its warnings in its snapshot, after the code.
    for warning in &warnings {
        text.push_str(&format!("// warning: {warning}\n"));
    }
    let snapshot = spec
        .parent()
        .and_then(Path::parent)
        .expect("tests/")
        .join("snapshots")
        .join(format!("{name}.rs"));
    if update {
        std::fs::write(&snapshot, &text).expect("write snapshot");
        return None;
    }
    let Ok(expected) = std::fs::read_to_string(&snapshot) else {
        return Some(format!(
            "{name}: missing {}; run with UPDATE_SNAPSHOTS=1",
            snapshot.display()
        ));
    };
    if expected == text {
        return None;
    }
    let first = expected
        .lines()
        .zip(text.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    Some(format!(
        "{name}: generated code differs from {} from line {}:\n  expected: {}\n  actual:   {}",
        snapshot.display(),
        first + 1,
        expected.lines().nth(first).unwrap_or(""),
        text.lines().nth(first).unwrap_or(""),
    ))
}

#[test]
fn every_rule_generates_its_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let specs = specs();
    assert!(specs.len() >= 11, "{} specs", specs.len());
    let differences: Vec<String> = specs
        .iter()
        .filter_map(|spec| difference(spec, update))
        .collect();
    assert!(
        differences.is_empty(),
        "{}\nrun with UPDATE_SNAPSHOTS=1 to accept",
        differences.join("\n")
    );
}

#[test]
fn every_snapshot_has_its_spec() {
    let names: Vec<String> = specs().iter().map(|s| name_of(s).to_string()).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for entry in std::fs::read_dir(dir).expect("tests/snapshots exists") {
        let path = entry.expect("readable entry").path();
        let name = name_of(&path).to_string();
        assert!(
            names.contains(&name),
            "{} has no spec in tests/specs/: remove it",
            path.display()
        );
    }
}
