//! aoai-codegen: typed models, a route table and route docs from Azure OpenAI OpenAPI specs.
//!
//! Three stages that never mix: [`load`] reads and checks a spec file, [`convert`] turns it into
//! the [`ir`] (plain data: operations and a table of types), and [`emit`] writes Rust from that.
//! The gateway's `build.rs` calls [`build`]; everything here can be tested without a build
//! script.

pub mod convert;
pub mod diff;
pub mod docs;
pub mod emit;
pub mod error;
pub mod ir;
pub mod load;
pub mod names;
pub mod vocab;

use std::path::{Path, PathBuf};

use quote::quote;

pub use error::{Error, Location, Warning, WarningKind};
pub use load::Options;

/// Every api-version found in a spec folder, converted and emitted.
pub struct Generated {
    /// Sorted by api-version.
    pub apis: Vec<ir::Api>,
    pub versions: Vec<emit::VersionSource>,
    pub warnings: Vec<Warning>,
    /// The files read, for `cargo:rerun-if-changed`.
    pub inputs: Vec<PathBuf>,
}

const SPEC_EXTENSIONS: [&str; 3] = ["json", "yaml", "yml"];

/// The files of a spec folder, each list sorted.
#[derive(Debug, Default)]
pub struct SpecFolder {
    /// OpenAPI documents, one per api-version.
    pub specs: Vec<PathBuf>,
    /// OpenAPI overlays (`*.overlay.yaml`, `.yml`, `.json`), each extending one of the specs.
    pub overlays: Vec<PathBuf>,
    /// Everything else, which is skipped with a warning.
    pub skipped: Vec<PathBuf>,
}

/// The spec files and overlays under `dir` (recursively), and the other files.
pub fn spec_files(dir: &Path) -> Result<SpecFolder, Error> {
    fn walk(dir: &Path, found: &mut SpecFolder) -> Result<(), Error> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::Io(dir.to_path_buf(), e))?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                walk(&path, found)?;
            } else if load::overlay::is_overlay(&path) {
                found.overlays.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| SPEC_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.specs.push(path);
            } else {
                found.skipped.push(path);
            }
        }
        Ok(())
    }
    let mut found = SpecFolder::default();
    walk(dir, &mut found)?;
    found.specs.sort();
    found.overlays.sort();
    found.skipped.sort();
    Ok(found)
}

/// Loads, converts and emits every spec under `dir`, each with the overlays that extend it.
/// Messages name files as `dir`-relative paths prefixed with `display_dir` (e.g. `spec`).
pub fn generate(dir: &Path, display_dir: &str, options: Options) -> Result<Generated, Error> {
    let folder = spec_files(dir)?;
    if folder.specs.is_empty() {
        return Err(Error::NoSpecs(dir.to_path_buf()));
    }
    let mut warnings = Vec::new();
    for path in &folder.skipped {
        let source = relative(dir, path);
        warnings.push(Warning {
            location: Location {
                file: format!("{display_dir}/{source}").into(),
                pointer: String::new(),
                line: None,
            },
            message: "skipped: not a .json, .yaml or .yml file".into(),
            kind: WarningKind::Note,
        });
    }
    // Each overlay, with the spec it extends; applied in file-name order.
    let mut overlays: Vec<(&PathBuf, load::overlay::Overlay)> = Vec::new();
    for path in &folder.overlays {
        let file = format!("{display_dir}/{}", relative(dir, path));
        let overlay = load::overlay::Overlay::read(path, &file)?;
        let target = overlay.target(path, dir, &folder.specs)?;
        overlays.push((target, overlay));
    }
    let mut apis: Vec<ir::Api> = Vec::new();
    let mut origins: Vec<(String, PathBuf)> = Vec::new();
    for path in &folder.specs {
        let source = relative(dir, path);
        let file = format!("{display_dir}/{source}");
        let extending: Vec<&load::overlay::Overlay> = overlays
            .iter()
            .filter(|(target, _)| *target == path)
            .map(|(_, o)| o)
            .collect();
        let (doc, load_warnings) = load::load_with(path, &file, &source, options, &extending)?;
        warnings.extend(load_warnings);
        if let Some((_, first)) = origins.iter().find(|(v, _)| *v == doc.version) {
            return Err(Error::DuplicateVersion {
                version: doc.version,
                first: first.clone(),
                second: file.into(),
            });
        }
        origins.push((doc.version.clone(), file.clone().into()));
        let (mut api, convert_warnings) = convert::convert(&doc, options)?;
        warnings.extend(convert_warnings);
        let unchecked: Vec<ir::Unchecked> = warnings
            .iter()
            .filter(|w| w.leaves_unchecked() && w.location.file == Path::new(&file))
            .map(|w| ir::Unchecked {
                pointer: w.location.pointer.clone(),
                reason: w.message.clone(),
            })
            .collect();
        api.mark_unchecked(&unchecked);
        api.mark_overlaid();
        // Two versions that differ only in punctuation would share a module name.
        while apis.iter().any(|a| a.module == api.module) {
            api.module.push('_');
        }
        apis.push(api);
    }
    apis.sort_by(|a, b| a.version.cmp(&b.version));
    let versions = apis.iter().map(emit::version).collect();
    let mut inputs = folder.specs;
    inputs.extend(folder.overlays);
    Ok(Generated {
        apis,
        versions,
        warnings,
        inputs,
    })
}

fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The generated sources as a browsable tree: `mod.rs`, and `<version>/models.rs`,
/// `<version>/schemas.rs`, `<version>/routes.rs` for each api-version.
pub fn source_tree(generated: &Generated) -> Result<Vec<(String, String)>, Error> {
    let mut files = Vec::new();
    let mut mods = Vec::new();
    for v in &generated.versions {
        let module = syn::Ident::new(&v.module, proc_macro2::Span::call_site());
        let header = emit::header(&v.source);
        for (name, content) in [
            ("models", &v.models),
            ("schemas", &v.schemas),
            ("routes", &v.routes),
        ] {
            let text = emit::format_file(content.clone(), &header, &v.module)?;
            files.push((format!("{}/{name}.rs", v.module), text));
        }
        let doc = format!(" api-version `{}`, from `spec/{}`.", v.version, v.source);
        files.push((
            format!("{}/mod.rs", v.module),
            emit::format_file(
                quote!(
                    #[cfg(feature = "models")]
                    pub mod models;
                    pub mod schemas;
                    pub mod routes;
                ),
                &emit::header(&v.source),
                &v.module,
            )?,
        ));
        mods.push(quote!(#[doc = #doc] pub mod #module;));
    }
    files.push((
        "mod.rs".to_string(),
        emit::format_file(
            quote!(#(#mods)*),
            "@generated by aoai-codegen from spec/. Do not edit.",
            "mod",
        )?,
    ));
    files.sort();
    Ok(files)
}

/// What [`build`] wrote.
pub struct BuildReport {
    pub warnings: Vec<Warning>,
    pub inputs: Vec<PathBuf>,
}

/// Generates everything the gateway compiles in, into `out_dir`:
/// - `aoai_generated.rs`: one module per api-version, the table of versions, and tables that
///   embed each version's served spec and the browsable source tree;
/// - `openapi/<module>.json`: each spec as served (no `servers`);
/// - `tree/…`: the sources [`source_tree`] lists;
/// - `docs/…`: the route docs ([`docs::pages`]).
pub fn build(spec_dir: &Path, out_dir: &Path, options: Options) -> Result<BuildReport, Error> {
    let generated = generate(spec_dir, &spec_dir.display().to_string(), options)?;
    let write = |rel: &str, text: &str| -> Result<(), Error> {
        let path = out_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Io(parent.to_path_buf(), e))?;
        }
        // Leave unchanged files alone so that their mtime does not force recompiles.
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        std::fs::write(&path, text).map_err(|e| Error::Io(path.clone(), e))
    };

    let mut modules = Vec::new();
    let mut apis = Vec::new();
    let mut documents = Vec::new();
    for (v, api) in generated.versions.iter().zip(&generated.apis) {
        let module = syn::Ident::new(&v.module, proc_macro2::Span::call_site());
        let tokens = v.tokens();
        let doc = format!(
            " api-version `{}`, generated from `spec/{}`.",
            v.version, v.source
        );
        modules.push(quote!(#[doc = #doc] pub mod #module { #tokens }));
        apis.push(quote!(&#module::routes::API));
        let json = serde_json::to_string(&api.document).map_err(|e| Error::Emit {
            module: v.module.clone(),
            message: e.to_string(),
        })?;
        let rel = format!("openapi/{}.json", v.module);
        write(&rel, &json)?;
        let version = &v.version;
        let include = format!("/{rel}");
        documents.push(quote!((#version, include_str!(concat!(env!("OUT_DIR"), #include)))));
    }
    let mut sources = Vec::new();
    for (rel, text) in source_tree(&generated)? {
        let out_rel = format!("tree/{rel}");
        write(&out_rel, &text)?;
        let include = format!("/{out_rel}");
        sources.push(quote!((#rel, include_str!(concat!(env!("OUT_DIR"), #include)))));
    }
    let mut pages = Vec::new();
    for (name, html) in docs::pages(&generated.apis) {
        let out_rel = format!("docs/{name}");
        write(&out_rel, &html)?;
        let include = format!("/{out_rel}");
        pages.push(quote!((#name, include_str!(concat!(env!("OUT_DIR"), #include)))));
    }
    let base_placeholder = docs::BASE_PATH;
    let tokens = quote! {
        #(#modules)*
        /// The route docs: (file name, HTML). The base path is written as [`DOCS_BASE_PATH`].
        pub static DOCS: &[(&str, &str)] = &[#(#pages),*];
        /// Stands for the configured base path in [`DOCS`].
        pub const DOCS_BASE_PATH: &str = #base_placeholder;
        /// Every compiled api-version, sorted by version.
        pub static API_VERSIONS: &[&::aoai_runtime::catalog::ApiVersion] = &[#(#apis),*];
        /// Each api-version's spec as served (JSON, without `servers`).
        pub static DOCUMENTS: &[(&str, &str)] = &[#(#documents),*];
        /// The generated sources, as `aoai-gateway codegen --out DIR` writes them.
        pub static SOURCES: &[(&str, &str)] = &[#(#sources),*];
    };
    let text = emit::format_file(
        tokens,
        "@generated by aoai-codegen from spec/. Do not edit: change the specs and rebuild.",
        "aoai_generated",
    )?;
    write("aoai_generated.rs", &text)?;
    Ok(BuildReport {
        warnings: generated.warnings,
        inputs: generated.inputs,
    })
}

/// One spec file through all three stages, as the text of its version module (`models` and
/// `routes`); what the snapshot tests compare.
pub fn generate_file(
    path: &Path,
    file: &str,
    source: &str,
) -> Result<(String, ir::Api, Vec<Warning>), Error> {
    generate_file_with(path, file, source, &[])
}

/// Like [`generate_file`], with overlays applied to the spec first.
pub fn generate_file_with(
    path: &Path,
    file: &str,
    source: &str,
    overlays: &[&load::overlay::Overlay],
) -> Result<(String, ir::Api, Vec<Warning>), Error> {
    let (doc, mut warnings) = load::load_with(path, file, source, Options::default(), overlays)?;
    let (mut api, convert_warnings) = convert::convert(&doc, Options::default())?;
    warnings.extend(convert_warnings);
    api.mark_overlaid();
    let v = emit::version(&api);
    let text = emit::format_file(v.tokens(), &emit::header(source), &v.module)?;
    Ok((text, api, warnings))
}
