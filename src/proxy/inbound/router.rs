//! Matches a request to an operation of one api-version.
//!
//! First the api-version's table. Dated api-versions live at the base path and are chosen by
//! the `api-version` query parameter, which they require. A document whose `servers` URL has a
//! path after `/openai` (the v1 API: `{endpoint}/openai/v1`) is *mounted* there: a path under
//! its mount belongs to its family, where `api-version` is optional and defaults to the version
//! named like the mount (`v1`).
//!
//! Then the route. The table is data built once from the generated catalogue: each route's path
//! template split into literal and parameter segments. A path that several templates match goes to the one with
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

/// The api-versions that live under one mount (empty: the dated ones, at the base path).
struct Family {
    mount: &'static str,
    versions: Vec<VersionTable>,
    /// Index in `versions` of the one a request without `api-version` gets, if any.
    default: Option<usize>,
}

impl Family {
    /// The names of its versions, for messages.
    fn names(&self) -> Vec<&'static str> {
        self.versions.iter().map(|v| v.api.version).collect()
    }
}

pub struct Router {
    /// Longest mounts first, so that a path finds its most specific family.
    families: Vec<Family>,
    supported: Vec<&'static str>,
}

impl Router {
    pub fn new(apis: &[&'static ApiVersion]) -> Router {
        let mut families: Vec<Family> = Vec::new();
        for table in Self::tables(apis) {
            let mount = table.api.mount;
            match families.iter_mut().find(|f| f.mount == mount) {
                Some(family) => family.versions.push(table),
                None => families.push(Family {
                    mount,
                    versions: vec![table],
                    default: None,
                }),
            }
        }
        for family in families.iter_mut().filter(|f| !f.mount.is_empty()) {
            // `/v1` answers `api-version=v1`, and a request that sends none; a mount with one
            // version, that one.
            let named = family.mount.rsplit('/').next().unwrap_or("");
            family.default = family
                .versions
                .iter()
                .position(|v| v.api.version == named)
                .or_else(|| (family.versions.len() == 1).then_some(0));
        }
        families.sort_by_key(|f| std::cmp::Reverse(f.mount.len()));
        let supported = apis.iter().map(|a| a.version).collect();
        Router {
            families,
            supported,
        }
    }

    fn tables(apis: &[&'static ApiVersion]) -> Vec<VersionTable> {
        apis.iter()
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
            .collect()
    }

    /// The table for a request to `subpath` (the path below the base path) with `api_version`
    /// (empty counts as missing), and the path below the table's mount.
    pub fn select<'p>(
        &self,
        subpath: &'p str,
        api_version: Option<&str>,
    ) -> Result<(&VersionTable, &'p str), GatewayError> {
        let api_version = api_version.filter(|v| !v.is_empty());
        let family = self.families.iter().find(|f| {
            f.mount.is_empty()
                || subpath
                    .strip_prefix(f.mount)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        let Some(family) = family else {
            return Err(GatewayError::NotFound);
        };
        let below = &subpath[family.mount.len()..];
        let index = match api_version {
            Some(v) => family
                .versions
                .iter()
                .position(|t| t.api.version == v)
                .ok_or_else(|| GatewayError::UnsupportedApiVersion {
                    given: v.to_string(),
                    supported: family.names(),
                })?,
            None => family
                .default
                .ok_or_else(|| GatewayError::MissingApiVersion {
                    supported: family.names(),
                })?,
        };
        Ok((&family.versions[index], below))
    }

    /// Every compiled api-version.
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

    fn table<'r>(router: &'r Router, version: &str) -> &'r VersionTable {
        router.select("/x", Some(version)).unwrap().0
    }

    #[test]
    fn literal_segments_win() {
        let router = preview();
        let v = table(&router, "2024-09-01-preview");
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
        let v = table(&router, "2024-10-21");
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
        assert_eq!(
            router.supported(),
            ["2024-09-01-preview", "2024-10-21", "v1"]
        );
    }

    #[test]
    fn mounted_versions_answer_below_their_mount_with_a_default_version() {
        let router = preview();
        let (v, below) = router.select("/v1/chat/completions", None).unwrap();
        assert_eq!((v.api.version, below), ("v1", "/chat/completions"));
        let (v, _) = router.select("/v1/chat/completions", Some("v1")).unwrap();
        assert_eq!(v.api.version, "v1");
        assert!(matches!(
            router.select("/v1/chat/completions", Some("preview")),
            Err(GatewayError::UnsupportedApiVersion { supported, .. }) if supported == ["v1"]
        ));
        // Dated versions still need theirs, and are not found under the mount.
        assert!(matches!(
            router.select("/deployments/x/chat/completions", None),
            Err(GatewayError::MissingApiVersion { .. })
        ));
        assert!(matches!(
            router.select("/deployments/x/chat/completions", Some("v1")),
            Err(GatewayError::UnsupportedApiVersion { .. })
        ));
        // A v1 preview document, where one is compiled in, answers `api-version=preview` under
        // the same mount; no version still means v1.
        static V1_PREVIEW: ApiVersion = ApiVersion {
            version: "preview",
            title: "v1 preview",
            source: "v1-preview/spec.yaml",
            source_sha256: "",
            mount: "/v1",
            routes: &[],
            overlays: &[],
        };
        let mut apis: Vec<&'static ApiVersion> = API_VERSIONS.to_vec();
        apis.push(&V1_PREVIEW);
        let with_preview = Router::new(&apis);
        let (v, _) = with_preview
            .select("/v1/responses", Some("preview"))
            .unwrap();
        assert_eq!(v.api.version, "preview");
        let (v, _) = with_preview.select("/v1/responses", None).unwrap();
        assert_eq!(v.api.version, "v1");
        assert_eq!(
            router
                .select("/v1x/chat", Some("2024-10-21"))
                .unwrap()
                .0
                .api
                .version,
            "2024-10-21"
        );
    }
}
