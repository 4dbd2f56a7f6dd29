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
    pub kind: WarningKind,
}

/// What a warning means for the requests the gateway checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// Nothing a request is checked against changed: an annotation ignored, a file skipped, a
    /// key repeated with the same meaning.
    Note,
    /// A schema became an untyped value (a `$ref` that resolves to nothing, a construct the
    /// generator cannot type): what requests send there is not checked. The shipped specs must
    /// have none that the generator could type.
    Untyped,
    /// A rule the spec states is not enforced, because it is an authoring error that would
    /// refuse calls the service accepts (a `required` name the schema does not define).
    NotEnforced,
}

impl Warning {
    /// Whether the operations whose requests reach this place must say that something there
    /// is not checked (`aoai-gateway routes`, the docs).
    pub fn leaves_unchecked(&self) -> bool {
        self.kind != WarningKind::Note
    }

    /// The same report, as the error that stops a strict build.
    pub fn into_error(self) -> Error {
        Error::Spec {
            location: self.location,
            message: self.message,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
