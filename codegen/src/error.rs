//! What the generator reports.
//!
//! A build that cannot go on gets one [`Error`]; a spec construct the generator can only type
//! loosely gets a [`Warning`] and the build continues. Both name the spec file and a JSON pointer
//! into it (RFC 6901, `#/paths/~1deployments~1{deployment-id}~1completions/post`), plus a line and
//! column where the parser knows one, so that `cargo build` output leads straight to the place.

use std::fmt;
use std::path::PathBuf;

/// A place in a spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// JSON pointer with a leading `#`, or empty when the whole file is meant.
    pub pointer: String,
    /// 1-based line and column, when the parser reported one.
    pub line: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.line {
            write!(f, ":{line}:{column}")?;
        }
        if !self.pointer.is_empty() {
            write!(f, " at {}", self.pointer)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: cannot read spec folder or file: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// The file is not a usable OpenAPI 3.0 document: bad syntax, wrong structure, a dangling
    /// `$ref`, a duplicate operationId.
    #[error("{location}: {message}")]
    Spec { location: Location, message: String },
    #[error(
        "api-version {version} is defined twice: by {} and by {}; keep one file per api-version",
        first.display(),
        second.display()
    )]
    DuplicateVersion {
        version: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{0}: no OpenAPI spec files (*.json, *.yaml, *.yml) found")]
    NoSpecs(PathBuf),
    #[error("generated code for {module} does not parse as Rust (a generator bug): {message}")]
    Emit { module: String, message: String },
}

impl Error {
    pub(crate) fn spec(
        file: impl Into<PathBuf>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Spec {
            location: Location {
                file: file.into(),
                pointer: pointer.into(),
                line: None,
            },
            message: message.into(),
        }
    }
}

/// Something the generator typed loosely, or ignored, and the build went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: Location,
    pub message: String,
    /// True when a schema became an untyped `serde_json::Value` because the generator cannot type
    /// its construct; the shipped specs must have none.
    pub untyped_fallback: bool,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
