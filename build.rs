//! Generates the typed models, route table and route docs from every spec in `spec/`, and the
//! tokenizer's vocabulary tables. All the work is in the `aoai-codegen` crate; this only wires it
//! to cargo.

use std::path::{Path, PathBuf};

fn main() {
    let spec_dir = Path::new("spec");
    // A directory here makes cargo rerun when any file below it changes, is added or removed.
    println!("cargo:rerun-if-changed=spec");
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("error: OUT_DIR is not set; run this through cargo");
        std::process::exit(1);
    };
    // AOAI_CODEGEN_STRICT=1: a `$ref` that resolves to nothing fails the build.
    println!("cargo:rerun-if-env-changed=AOAI_CODEGEN_STRICT");
    let options = aoai_codegen::Options {
        strict: std::env::var("AOAI_CODEGEN_STRICT").is_ok_and(|v| !v.is_empty() && v != "0"),
    };
    if let Err(error) = aoai_codegen::vocab::write(&out_dir) {
        eprintln!("error: vocabularies: {error}");
        std::process::exit(1);
    }
    match aoai_codegen::build(spec_dir, &out_dir, options) {
        Ok(report) => {
            for input in &report.inputs {
                println!("cargo:rerun-if-changed={}", input.display());
            }
            for warning in &report.warnings {
                println!("cargo:warning={warning}");
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
