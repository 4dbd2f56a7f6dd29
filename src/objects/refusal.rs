//! Why a call was refused for the stored objects it names, told in Azure's error shape by the
//! proxy's `GatewayError::Object`.

use actix_web::http::StatusCode;

use crate::proxy::error::{GatewayError, printable, retry_after_s};

/// An object a refusal names: its kind, its id, and the parameter or field that named it.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: &'static str,
    pub id: String,
    pub param: String,
}

impl Object {
    /// `vector store 'vs_…'`, for messages.
    fn said(&self) -> String {
        format!("{} '{}'", self.kind.replace('_', " "), printable(&self.id))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Another subscription's object, or one the directory never saw: to the caller, the same
    /// as one that does not exist.
    #[error("{} {} is not the caller's, or does not exist", .0.kind, .0.id)]
    NotFound(Object),
    /// Two objects a call names live on different backends.
    #[error("{} {} and {} {} are on different backends", .0.kind, .0.id, .1.kind, .1.id)]
    Apart(Object, Object),
    /// The backend holding an object the call names does not serve the call.
    #[error("{} {} is on backend {backend}, which does not serve the call", .object.kind, .object.id)]
    Elsewhere {
        object: Object,
        backend: String,
        deployment: Option<String>,
        version: &'static str,
    },
    /// The backend holding an object the call names rests, or could not be reached; no other
    /// can have the object.
    #[error("backend {backend}, which holds {} {}, is unavailable", .object.kind, .object.id)]
    HolderUnavailable {
        object: Object,
        backend: String,
        retry_after_ms: u64,
    },
}

impl From<Refused> for GatewayError {
    fn from(refused: Refused) -> GatewayError {
        GatewayError::Object(Box::new(refused))
    }
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::NotFound(_) => StatusCode::NOT_FOUND,
            Refused::Apart(..) | Refused::Elsewhere { .. } => StatusCode::BAD_REQUEST,
            Refused::HolderUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Refused::NotFound(_) => "NotFound",
            Refused::Apart(..) | Refused::Elsewhere { .. } => "InvalidRequest",
            Refused::HolderUnavailable { .. } => "ServiceUnavailable",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refused::NotFound(object) => format!(
                "No {} found with id '{}'.",
                object.kind.replace('_', " "),
                printable(&object.id)
            ),
            Refused::Apart(first, second) => format!(
                "{} and {} are stored in different Azure OpenAI resources, and no resource can use both in one call.",
                first.said(),
                second.said()
            ),
            Refused::Elsewhere {
                object,
                backend,
                deployment,
                version,
            } => {
                let serves = match deployment {
                    Some(d) => format!("deployment '{}' with api-version {version}", printable(d)),
                    None => format!("api-version {version}"),
                };
                format!(
                    "'{}' names {}, which is stored in backend '{backend}'; that backend does not serve {serves}, and no other can use the object. Call a deployment and api-version that backend serves.",
                    object.param,
                    object.said()
                )
            }
            Refused::HolderUnavailable {
                object,
                backend,
                retry_after_ms,
            } => format!(
                "Backend '{backend}', which stores {}, is unavailable, and no other backend can use it. Please retry after {} seconds.",
                object.said(),
                retry_after_s(*retry_after_ms)
            ),
        }
    }

    /// The field at fault, as Azure's `error.param`.
    pub fn param(&self) -> Option<&str> {
        match self {
            Refused::NotFound(object) | Refused::Elsewhere { object, .. } => Some(&object.param),
            Refused::Apart(..) | Refused::HolderUnavailable { .. } => None,
        }
    }

    /// How long to wait before trying again, for `retry-after`.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Refused::HolderUnavailable { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }
}
