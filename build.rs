//! Generates the typed models, route table and route docs from every spec in `spec/`.
//! All the work is in the `aoai-codegen` crate; this only wires it to cargo.

use std::path::{Path, PathBuf};

fn main() {
    let spec_dir = Path::new("spec");
    // A directory here makes cargo rerun when any file below it changes, is added or removed.
    println!("cargo:rerun-if-changed=spec");
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("error: OUT_DIR is not set; run this through cargo");
        std::process::exit(1);
    };
    match aoai_codegen::build(spec_dir, &out_dir) {
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
