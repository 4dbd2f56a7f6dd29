//! Matches a request to an operation of one api-version.
//!
//! The table is data built once from the generated catalogue: each route's path template split
//! into literal and parameter segments. A path that several templates match goes to the one with
//! the most literal segments, so `POST /threads/runs` is Create_Thread_And_Run, not Modify_Thread
//! on a thread called `runs`. A path that matches with another method is a 405 listing the
//! methods that would work; no match at all is a 404.

use crate::proxy::error::GatewayError;
use aoai_runtime::catalog::{ApiVersion, Method, Route};

/// The path parameter that names an Azure OpenAI deployment.
pub const DEPLOYMENT_PARAM: &str = "deployment-id";

#[derive(Debug, Clone, Copy)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

struct CompiledRoute {
    route: &'static Route,
    segments: Vec<Segment>,
    literals: usize,
}

pub struct VersionTable {
    pub api: &'static ApiVersion,
    routes: Vec<CompiledRoute>,
}

/// A request matched to its operation.
#[derive(Debug)]
pub struct Matched<'p> {
    pub route: &'static Route,
    /// Path parameters as they appear in the request (still percent-encoded).
    pub params: Vec<(&'static str, &'p str)>,
    /// Index of the `{deployment-id}` segment in the path, when the route has one.
    pub deployment_segment: Option<usize>,
}

impl Matched<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

pub struct Router {
    versions: Vec<VersionTable>,
    supported: Vec<&'static str>,
}

impl Router {
    pub fn new(apis: &[&'static ApiVersion]) -> Router {
        let versions: Vec<VersionTable> = apis
            .iter()
            .map(|api| VersionTable {
                api,
                routes: api
                    .routes
                    .iter()
                    .map(|route| {
                        let segments: Vec<Segment> = route
                            .path
                            .trim_start_matches('/')
                            .split('/')
                            .map(
                                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                                    Some(name) => Segment::Param(name),
                                    None => Segment::Literal(s),
                                },
                            )
                            .collect();
                        let literals = segments
                            .iter()
                            .filter(|s| matches!(s, Segment::Literal(_)))
                            .count();
                        CompiledRoute {
                            route,
                            segments,
                            literals,
                        }
                    })
                    .collect(),
            })
            .collect();
        let supported = versions.iter().map(|v| v.api.version).collect();
        Router {
            versions,
            supported,
        }
    }

    pub fn version(&self, version: &str) -> Option<&VersionTable> {
        self.versions.iter().find(|v| v.api.version == version)
    }

    pub fn supported(&self) -> &[&'static str] {
        &self.supported
    }
}

/// Request paths with up to this many segments are split on the stack; longer ones (which no
/// shipped route has) on the heap.
const STACK_SEGMENTS: usize = 16;

/// `rest` split at `/` into `stack`, or `None` when it has more segments than fit.
fn split_on_stack<'p, 's>(rest: &'p str, stack: &'s mut [&'p str]) -> Option<&'s [&'p str]> {
    let mut count = 0;
    for part in rest.split('/') {
        *stack.get_mut(count)? = part;
        count += 1;
    }
    Some(&stack[..count])
}

impl VersionTable {
    /// `path` is relative to the base path and starts with `/`.
    pub fn find<'p>(&self, method: &str, path: &'p str) -> Result<Matched<'p>, GatewayError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(GatewayError::NotFound);
        };
        // Split once rather than once per candidate route.
        let mut stack = [""; STACK_SEGMENTS];
        let heap: Vec<&str>;
        let parts = match split_on_stack(rest, &mut stack) {
            Some(parts) => parts,
            None => {
                heap = rest.split('/').collect();
                &heap
            }
        };
        let method = Method::parse(method);
        let mut best: Option<&CompiledRoute> = None;
        let mut allowed: Vec<Method> = Vec::new();
        for candidate in &self.routes {
            if !matches_path(&candidate.segments, parts) {
                continue;
            }
            if Some(candidate.route.method) == method {
                if best.is_none_or(|b| candidate.literals > b.literals) {
                    best = Some(candidate);
                }
            } else if !allowed.contains(&candidate.route.method) {
                allowed.push(candidate.route.method);
            }
        }
        let Some(found) = best else {
            if allowed.is_empty() {
                return Err(GatewayError::NotFound);
            }
            allowed.sort();
            return Err(GatewayError::MethodNotAllowed { allowed });
        };
        let mut params = Vec::new();
        let mut deployment_segment = None;
        for (i, (segment, value)) in found.segments.iter().zip(parts).enumerate() {
            if let Segment::Param(name) = segment {
                params.push((*name, *value));
                if *name == DEPLOYMENT_PARAM {
                    deployment_segment = Some(i);
                }
            }
        }
        Ok(Matched {
            route: found.route,
            params,
            deployment_segment,
        })
    }
}

fn matches_path(segments: &[Segment], parts: &[&str]) -> bool {
    segments.len() == parts.len()
        && segments
            .iter()
            .zip(parts)
            .all(|(segment, part)| match segment {
                Segment::Literal(l) => l == part,
                Segment::Param(_) => !part.is_empty(),
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::API_VERSIONS;

    fn preview() -> Router {
        Router::new(API_VERSIONS)
    }

    #[test]
    fn literal_segments_win() {
        let router = preview();
        let v = router.version("2024-09-01-preview").unwrap();
        assert_eq!(
            v.find("POST", "/threads/runs").unwrap().route.operation_id,
            "Create_Thread_And_Run"
        );
        let m = v.find("POST", "/threads/thread_1").unwrap();
        assert_eq!(m.route.operation_id, "Modify_Thread");
        assert_eq!(m.param("thread_id"), Some("thread_1"));
    }

    #[test]
    fn deployment_segment_and_errors() {
        let router = preview();
        let v = router.version("2024-10-21").unwrap();
        let m = v
            .find("POST", "/deployments/gpt-4o/chat/completions")
            .unwrap();
        assert_eq!(
            (m.route.operation_id, m.deployment_segment),
            ("ChatCompletions_Create", Some(1))
        );
        assert!(
            matches!(v.find("GET", "/deployments/gpt-4o/chat/completions"), Err(GatewayError::MethodNotAllowed { allowed }) if allowed == [Method::Post])
        );
        assert!(matches!(
            v.find("POST", "/deployments//chat/completions"),
            Err(GatewayError::NotFound)
        ));
        assert!(matches!(
            v.find("POST", "/deployments/x/chat/completions/extra"),
            Err(GatewayError::NotFound)
        ));
        assert!(matches!(
            v.find("POST", "/assistants"),
            Err(GatewayError::NotFound)
        ));
        let long = "/deployments/x/chat/completions".repeat(8);
        assert!(matches!(v.find("POST", &long), Err(GatewayError::NotFound)));
        assert_eq!(split_on_stack("a/b", &mut [""; 2]), Some(&["a", "b"][..]));
        assert_eq!(split_on_stack("a/b/c", &mut [""; 2]), None);
        assert_eq!(router.supported(), ["2024-09-01-preview", "2024-10-21"]);
    }
}
