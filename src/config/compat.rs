//! A backend deployment's parameter compatibility (`[backends.compat.<deployment>]`), checked
//! against the generated request models of the api-versions the backend serves.
//!
//! A rename must start from a field some deployment operation of each such api-version takes,
//! and end at a field one of those operations' models also has: otherwise the version could not
//! carry it, and the config says so, naming the version. A dropped field must be one the
//! version's deployment operations take (a misspelt one would drop nothing).

use std::collections::{BTreeMap, HashMap};

use aoai_runtime::catalog::{ApiVersion, ContentKind, Route};

use super::check::Checker;
use super::{Compat, CompatConfig};

/// The path parameter that names a deployment (the router's too).
const DEPLOYMENT_SEGMENT: &str = "{deployment-id}";

/// Whether a route calls a deployment: named in its path, or in its body (the v1 API).
pub fn calls_deployment(route: &Route) -> bool {
    route.path.contains(DEPLOYMENT_SEGMENT) || route.deployment_field.is_some()
}

/// The top-level fields of a route's JSON request model.
pub fn request_fields(route: &Route) -> Option<impl Iterator<Item = &'static str>> {
    let media = route
        .request
        .as_ref()?
        .content
        .iter()
        .find(|m| m.kind == ContentKind::Json)?;
    Some(media.schema?.fields()?.iter().map(|f| f.name))
}

fn has_field(route: &Route, name: &str) -> bool {
    request_fields(route).is_some_and(|mut fields| fields.any(|f| f == name))
}

/// The deployment operations of an api-version that take `field` in a JSON body.
fn taking<'a>(api: &'a ApiVersion, field: &'a str) -> impl Iterator<Item = &'static Route> + 'a {
    api.routes
        .iter()
        .copied()
        .filter(move |r| calls_deployment(r) && has_field(r, field))
}

pub(super) fn checked(
    c: &mut Checker,
    at: &str,
    given: &BTreeMap<String, CompatConfig>,
    served: &[&str],
) -> HashMap<String, Compat> {
    let apis: Vec<&ApiVersion> = crate::generated::API_VERSIONS
        .iter()
        .copied()
        .filter(|a| served.contains(&a.version))
        .collect();
    let mut out = HashMap::new();
    for (deployment, compat) in given {
        let here = format!("{at}.{deployment}");
        for (from, to) in &compat.rename {
            let key = format!("{here}.rename.{from}");
            if from == to {
                c.fail(key, "renames a field to itself");
                continue;
            }
            if compat.drop.contains(from) {
                c.fail(key, format!("`{from}` is dropped too; give one of the two"));
                continue;
            }
            for api in &apis {
                let mut sources = taking(api, from).peekable();
                if sources.peek().is_none() {
                    c.fail(
                        key.clone(),
                        format!(
                            "no deployment operation of api-version {} takes `{from}`",
                            api.version
                        ),
                    );
                } else if !sources.any(|r| has_field(r, to)) {
                    c.fail(
                        key.clone(),
                        format!(
                            "api-version {}'s request models with `{from}` have no field `{to}`: the rename cannot be sent on that version",
                            api.version
                        ),
                    );
                }
            }
        }
        for field in &compat.drop {
            for api in &apis {
                if taking(api, field).next().is_none() {
                    c.fail(
                        format!("{here}.drop"),
                        format!(
                            "no deployment operation of api-version {} takes `{field}`",
                            api.version
                        ),
                    );
                }
            }
        }
        out.insert(
            deployment.clone(),
            Compat {
                rename: compat
                    .rename
                    .iter()
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect(),
                drop: compat.drop.clone(),
            },
        );
    }
    out
}
