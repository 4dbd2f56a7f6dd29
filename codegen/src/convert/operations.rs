//! Operations: paths and methods, parameters, request bodies and responses.

use std::collections::HashMap;

use indexmap::IndexMap;
use openapiv3::{ParameterSchemaOrContent, ReferenceOr, StatusCode};

use super::*;
use crate::error::Error;
use crate::ir::{self, ContentKind, TypeKind, TypeRef};
use crate::names::{self, Namespace, pointer_token};

impl Converter<'_> {
    pub(super) fn operations(&mut self) -> Result<Vec<ir::Operation>, Error> {
        let doc = self.doc;
        let mut out = Vec::new();
        // Where this API names a deployment: in its paths, or (the v1 API) in its bodies.
        let deployments_in_paths = doc
            .api
            .paths
            .paths
            .keys()
            .any(|p| p.contains(ir::DEPLOYMENT_SEGMENT));
        let mut op_names = Namespace::default();
        // (method, template with parameter names erased) → pointer of the first such operation.
        let mut shapes: HashMap<(ir::Method, String), String> = HashMap::new();
        for (path, item) in doc.api.paths.paths.iter() {
            let path_pointer = format!("#/paths/{}", pointer_token(path));
            let ReferenceOr::Item(item) = item else {
                return Err(self.error(path_pointer, "path items given by $ref are not supported"));
            };
            for (method_name, op) in item.iter() {
                let Some(method) = ir::Method::from_openapi(method_name) else {
                    continue;
                };
                let pointer = format!("{path_pointer}/{method_name}");
                if let Some(first) = shapes.insert((method, path_shape(path)), pointer.clone()) {
                    return Err(self.error(
                        pointer,
                        format!(
                            "{} {path} matches the same requests as the operation at {first}; a gateway could not tell them apart",
                            method.as_str()
                        ),
                    ));
                }
                let operation_id = op
                    .operation_id
                    .clone()
                    .unwrap_or_else(|| format!("{method_name}{}", names::pascal(path)));
                let rust_name = op_names.claim(&names::snake(&operation_id));
                let type_hint = names::pascal(&operation_id);

                let mut parameters: Vec<ir::Parameter> = Vec::new();
                let path_params = item
                    .parameters
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p, format!("{path_pointer}/parameters/{i}")));
                let op_params = op
                    .parameters
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p, format!("{pointer}/parameters/{i}")));
                for (param, site) in path_params.chain(op_params) {
                    let p = self.parameter(param, &site, &type_hint)?;
                    // An operation's parameter replaces a path-level one of the same name and place.
                    parameters.retain(|q| !(q.name == p.name && q.location == p.location));
                    parameters.push(p);
                }

                let request = match &op.request_body {
                    None => None,
                    Some(body) => Some(self.request_body(
                        body,
                        &format!("{pointer}/requestBody"),
                        &type_hint,
                    )?),
                };
                let stream_flag = request.as_ref().and_then(|r| self.stream_flag(r));

                let mut responses = Vec::new();
                let mut first_success = true;
                let statuses = op
                    .responses
                    .responses
                    .iter()
                    .map(|(s, r)| (status_text(s), r));
                let default = op
                    .responses
                    .default
                    .iter()
                    .map(|r| ("default".to_string(), r));
                for (status, response) in statuses.chain(default) {
                    let site = format!("{pointer}/responses/{}", pointer_token(&status));
                    let hint = if status == "default" {
                        format!("{type_hint}DefaultResponse")
                    } else if status.starts_with('2') && first_success {
                        first_success = false;
                        format!("{type_hint}Response")
                    } else {
                        format!("{type_hint}Response{status}")
                    };
                    let mut r = self.response(response, &site, &status, &hint)?;
                    if let Some(flag) = &stream_flag
                        && status.starts_with('2')
                        && !r.content.iter().any(|c| c.kind == ContentKind::EventStream)
                    {
                        r.content.push(ir::Content {
                            media_type: "text/event-stream".into(),
                            kind: ContentKind::EventStream,
                            ty: None,
                            condition: Some(format!("when the request sets `{flag}: true`")),
                            examples: Vec::new(),
                            pointer: site.clone(),
                        });
                    }
                    responses.push(r);
                }
                let reports_usage = self.reports_usage(&responses);
                let deployment_field = if deployments_in_paths {
                    None
                } else {
                    self.deployment_field(request.as_ref(), reports_usage)
                };

                out.push(ir::Operation {
                    operation_id,
                    rust_name,
                    method,
                    path: path.clone(),
                    summary: op.summary.clone(),
                    description: op.description.clone(),
                    tags: op.tags.clone(),
                    deprecated: op.deprecated,
                    parameters,
                    request,
                    responses,
                    stream_flag,
                    deployment_field,
                    reports_usage,
                    unchecked: Vec::new(),
                    overlaid: Vec::new(),
                    objects: Default::default(),
                    pointer,
                });
            }
        }
        Ok(out)
    }

    pub(super) fn parameter(
        &mut self,
        param: &ReferenceOr<openapiv3::Parameter>,
        site: &str,
        op_hint: &str,
    ) -> Result<ir::Parameter, Error> {
        let (param, site) = self.component(param, site, "a parameter")?;
        let location = match &param {
            openapiv3::Parameter::Path { .. } => ir::ParamLocation::Path,
            openapiv3::Parameter::Query { .. } => ir::ParamLocation::Query,
            openapiv3::Parameter::Header { .. } => ir::ParamLocation::Header,
            openapiv3::Parameter::Cookie { .. } => ir::ParamLocation::Cookie,
        };
        let data = param.parameter_data_ref();
        let hint = format!("{op_hint}{}", names::pascal(&data.name));
        let (ty, description, checks) = match &data.format {
            ParameterSchemaOrContent::Schema(s) => {
                let schema_site = format!("{site}/schema");
                let ty = self.type_ref(s.into(), &schema_site, &hint);
                let schema_description = self
                    .resolve(s.into(), &schema_site)
                    .and_then(|r| r.schema.schema_data.description);
                let checks = self.use_checks(s.into(), &schema_site, &ty);
                (ty, data.description.clone().or(schema_description), checks)
            }
            ParameterSchemaOrContent::Content(_) => (
                TypeRef::String,
                data.description.clone(),
                ir::Checks::default(),
            ),
        };
        Ok(ir::Parameter {
            name: data.name.clone(),
            rust_name: names::snake(&data.name),
            location,
            required: data.required || location == ir::ParamLocation::Path,
            deprecated: data.deprecated.unwrap_or(false),
            description,
            ty,
            checks,
        })
    }

    pub(super) fn request_body(
        &mut self,
        body: &ReferenceOr<openapiv3::RequestBody>,
        site: &str,
        op_hint: &str,
    ) -> Result<ir::RequestBody, Error> {
        let (body, site) = self.component(body, site, "a request body")?;
        let content = self.contents(&body.content, &site, &format!("{op_hint}Request"));
        Ok(ir::RequestBody {
            required: body.required,
            description: body.description.clone(),
            content,
        })
    }

    pub(super) fn response(
        &mut self,
        response: &ReferenceOr<openapiv3::Response>,
        site: &str,
        status: &str,
        hint: &str,
    ) -> Result<ir::Response, Error> {
        let (response, site) = self.component(response, site, "a response")?;
        let content = self.contents(&response.content, &site, hint);
        Ok(ir::Response {
            status: status.to_string(),
            description: response.description.clone(),
            content,
        })
    }

    pub(super) fn contents(
        &mut self,
        content: &IndexMap<String, openapiv3::MediaType>,
        site: &str,
        hint: &str,
    ) -> Vec<ir::Content> {
        let mut out = Vec::new();
        for (media_type, media) in content {
            let pointer = format!("{site}/content/{}", pointer_token(media_type));
            let ty = media
                .schema
                .as_ref()
                .map(|s| self.type_ref(s.into(), &format!("{pointer}/schema"), hint));
            let mut examples = Vec::new();
            if let Some(value) = &media.example {
                examples.push(ir::Example {
                    name: None,
                    summary: None,
                    value: value.clone(),
                    pointer: format!("{pointer}/example"),
                });
            }
            for (name, example) in &media.examples {
                let example_pointer = format!("{pointer}/examples/{}", pointer_token(name));
                // An example that cannot be read is only an example: it is left out.
                let example = self
                    .component(example, &example_pointer, "an example")
                    .ok()
                    .map(|(e, _)| e);
                if let Some(openapiv3::Example {
                    value: Some(value),
                    summary,
                    ..
                }) = example
                {
                    examples.push(ir::Example {
                        name: Some(name.clone()),
                        summary,
                        value,
                        pointer: example_pointer,
                    });
                }
            }
            out.push(ir::Content {
                media_type: media_type.clone(),
                kind: ContentKind::of(media_type),
                ty,
                condition: None,
                examples,
                pointer,
            });
        }
        out
    }

    /// Whether the operation's success answer reports the tokens it spent: a top-level `usage`
    /// in a 2xx answer's model (chat completions, completions, embeddings, runs, responses).
    pub(super) fn reports_usage(&self, responses: &[ir::Response]) -> bool {
        responses
            .iter()
            .filter(|r| r.status.starts_with('2'))
            .flat_map(|r| &r.content)
            .any(|c| c.ty.as_ref().is_some_and(|t| self.has_field(t, "usage", 0)))
    }

    /// For an API whose paths name no deployment (the v1 API), the request field that does: a
    /// top-level `model` in an operation that [reports usage](Self::reports_usage), because it
    /// spends a deployment's tokens (chat completions, embeddings, responses). A `model`
    /// elsewhere names something else: a base model to fine-tune, say.
    pub(super) fn deployment_field(
        &self,
        request: Option<&ir::RequestBody>,
        reports_usage: bool,
    ) -> Option<String> {
        let model = request?
            .content
            .iter()
            .filter(|c| matches!(c.kind, ContentKind::Json | ContentKind::Multipart))
            .any(|c| c.ty.as_ref().is_some_and(|t| self.has_field(t, "model", 0)));
        (model && reports_usage).then(|| "model".to_string())
    }

    /// Whether values of type `t` have a top-level field `name` (any variant of a union, any
    /// part of an intersection will do).
    fn has_field(&self, t: &TypeRef, name: &str, depth: usize) -> bool {
        let Some(def) = t.inline_named().and_then(|n| self.types.get(n)) else {
            return false;
        };
        if depth > 8 {
            return false;
        }
        match &def.kind {
            TypeKind::Struct(s) => s.fields.iter().any(|f| f.name == name),
            TypeKind::Union(u) => u
                .variants
                .iter()
                .any(|v| self.has_field(&v.ty, name, depth + 1)),
            TypeKind::Intersection { parts, .. } => {
                parts.iter().any(|p| self.has_field(p, name, depth + 1))
            }
            TypeKind::Alias { target } => self.has_field(target, name, depth + 1),
            _ => false,
        }
    }

    /// `stream` when the JSON request model has a boolean field of that name.
    pub(super) fn stream_flag(&self, request: &ir::RequestBody) -> Option<String> {
        let json = request
            .content
            .iter()
            .find(|c| c.kind == ContentKind::Json)?;
        let name = json.ty.as_ref()?.inline_named()?;
        let TypeKind::Struct(s) = &self.types.get(name)?.kind else {
            return None;
        };
        s.fields
            .iter()
            .find(|f| f.name == "stream" && f.ty == TypeRef::Boolean)
            .map(|f| f.name.clone())
    }
}

/// `/threads/{thread_id}/runs` → `/threads/{}/runs`.
pub(super) fn path_shape(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn status_text(status: &StatusCode) -> String {
    match status {
        StatusCode::Code(code) => code.to_string(),
        StatusCode::Range(range) => format!("{range}XX"),
    }
}
