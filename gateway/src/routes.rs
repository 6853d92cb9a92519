//! The REST routes of every RPC, read at run time from the `google.api.http` options in a
//! descriptor pool: a new RPC with an HTTP rule is served without gateway code.

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};

use crate::template::{PathTemplate, TemplateError};

/// One HTTP binding of one RPC.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The RPC.
    pub method: MethodDescriptor,
    /// The HTTP method.
    pub http_method: Method,
    /// The path template.
    pub template: PathTemplate,
    /// `*`, a top-level field name, or `None` when the request has no body.
    pub body: Option<String>,
    /// The response field to return instead of the whole response.
    pub response_body: Option<String>,
}

/// Why the routes could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A template does not parse.
    #[error("{method}: {source}")]
    Template {
        /// The RPC.
        method: String,
        /// The parse error.
        source: TemplateError,
    },
    /// A rule names a field that does not exist.
    #[error("{method}: {what} `{field}` is not a field of the message")]
    UnknownField {
        /// The RPC.
        method: String,
        /// `body`, `response_body` or `path variable`.
        what: &'static str,
        /// The field.
        field: String,
    },
    /// A custom verb is not an HTTP method token.
    #[error("{method}: `{kind}` is not an HTTP method")]
    BadVerb {
        /// The RPC.
        method: String,
        /// The custom kind.
        kind: String,
    },
}

/// The result of looking up a request.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A binding matched; with the path variables.
    Found(&'a Binding, Vec<(String, String)>),
    /// The path exists for other methods: these (the `Allow` header of a 405).
    MethodNotAllowed(Vec<Method>),
    /// No binding has this path.
    NotFound,
}

/// Every binding of every RPC in a pool.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    bindings: Vec<Binding>,
}

impl RouteTable {
    /// Reads the `google.api.http` rule (and its additional bindings) of every method.
    pub fn from_pool(pool: &DescriptorPool) -> Result<Self, RouteError> {
        let Some(extension) = pool.get_extension_by_name("google.api.http") else {
            return Ok(Self::default());
        };
        let mut bindings = Vec::new();
        for service in pool.services() {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                    continue;
                };
                let mut rules = vec![rule.clone()];
                if let Some(Value::List(more)) = rule
                    .get_field_by_name("additional_bindings")
                    .map(|v| v.into_owned())
                {
                    rules.extend(more.into_iter().filter_map(|v| match v {
                        Value::Message(m) => Some(m),
                        _ => None,
                    }));
                }
                // Additional bindings inherit nothing: each sets its own body and response body.
                for r in &rules {
                    if let Some(binding) = binding(&method, r)? {
                        bindings.push(binding);
                    }
                }
            }
        }
        Ok(Self { bindings })
    }

    /// The table without the bindings of `methods` (gRPC paths, `/pkg.Service/Method`).
    pub fn without(mut self, methods: &[&str]) -> Self {
        self.bindings.retain(|binding| {
            let path = format!(
                "/{}/{}",
                binding.method.parent_service().full_name(),
                binding.method.name()
            );
            !methods.contains(&path.as_str())
        });
        self
    }

    /// Every binding.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Finds the most specific binding for a request.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let mut best: Option<(&Binding, Vec<(String, String)>)> = None;
        let mut allowed: Vec<Method> = Vec::new();
        for binding in &self.bindings {
            let Some(values) = binding.template.matches(path) else {
                continue;
            };
            if binding.http_method != *method {
                if !allowed.contains(&binding.http_method) {
                    allowed.push(binding.http_method.clone());
                }
                continue;
            }
            let better = best
                .as_ref()
                .is_none_or(|(b, _)| binding.template.literal_count() > b.template.literal_count());
            if better {
                best = Some((binding, values));
            }
        }
        match best {
            Some((binding, values)) => Lookup::Found(binding, values),
            None if !allowed.is_empty() => Lookup::MethodNotAllowed(allowed),
            None => Lookup::NotFound,
        }
    }
}

fn text(rule: &DynamicMessage, field: &str) -> Option<String> {
    if !rule.has_field_by_name(field) {
        return None;
    }
    rule.get_field_by_name(field)
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
}

fn binding(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
) -> Result<Option<Binding>, RouteError> {
    let name = method.full_name().to_owned();
    let mut found = None;
    for (verb, http_method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if let Some(path) = text(rule, verb) {
            found = Some((http_method, path));
        }
    }
    if found.is_none()
        && rule.has_field_by_name("custom")
        && let Some(Value::Message(custom)) =
            rule.get_field_by_name("custom").map(|v| v.into_owned())
    {
        let kind = text(&custom, "kind").unwrap_or_default();
        let path = text(&custom, "path").unwrap_or_default();
        let http_method = Method::from_bytes(kind.as_bytes()).map_err(|_| RouteError::BadVerb {
            method: name.clone(),
            kind: kind.clone(),
        })?;
        found = Some((http_method, path));
    }
    let Some((http_method, path)) = found else {
        return Ok(None);
    };
    let template = PathTemplate::parse(&path).map_err(|source| RouteError::Template {
        method: name.clone(),
        source,
    })?;
    let input = method.input();
    for variable in template.variables() {
        if field_path(&input, variable).is_none() {
            return Err(RouteError::UnknownField {
                method: name,
                what: "path variable",
                field: variable.to_owned(),
            });
        }
    }
    let body = text(rule, "body");
    if let Some(field) = body.as_deref().filter(|b| *b != "*")
        && input.get_field_by_name(field).is_none()
    {
        return Err(RouteError::UnknownField {
            method: name,
            what: "body",
            field: field.to_owned(),
        });
    }
    let response_body = text(rule, "response_body");
    if let Some(field) = &response_body
        && method.output().get_field_by_name(field).is_none()
    {
        return Err(RouteError::UnknownField {
            method: name,
            what: "response_body",
            field: field.clone(),
        });
    }
    Ok(Some(Binding {
        method: method.clone(),
        http_method,
        template,
        body,
        response_body,
    }))
}

/// Resolves a dotted path (proto or JSON names) to its fields; every step but the last must be a
/// singular message.
pub fn field_path(message: &MessageDescriptor, path: &str) -> Option<Vec<FieldDescriptor>> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = current
            .get_field_by_name(part)
            .or_else(|| current.get_field_by_json_name(part))?;
        if i + 1 < parts.len() {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => return None,
            }
        }
        fields.push(field);
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_taskmesh_rpc_gets_a_route() {
        let pool = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET).expect("pool");
        let table = RouteTable::from_pool(&pool).expect("routes");
        let rpcs: std::collections::BTreeSet<String> = pool
            .services()
            .filter(|s| s.full_name().starts_with("taskmesh."))
            .flat_map(|s| {
                s.methods()
                    .map(|m| m.full_name().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let routed: std::collections::BTreeSet<String> = table
            .bindings()
            .iter()
            .map(|b| b.method.full_name().to_owned())
            .collect();
        assert_eq!(
            routed, rpcs,
            "every RPC has a route (additional bindings add more)"
        );
        match table.lookup(&Method::GET, "/v1/projects/p1") {
            Lookup::Found(b, vars) => {
                assert_eq!(b.method.name(), "GetProject");
                assert_eq!(vars, vec![("name".to_owned(), "projects/p1".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        match table.lookup(&Method::GET, "/v1/projects") {
            Lookup::Found(b, _) => assert_eq!(b.method.name(), "ListProjects"),
            other => panic!("{other:?}"),
        }
        match table.lookup(&Method::POST, "/v1/projects/p1:undelete") {
            Lookup::Found(b, _) => assert_eq!(b.method.name(), "UndeleteProject"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            table.lookup(&Method::PUT, "/v1/projects/p1"),
            Lookup::MethodNotAllowed(allowed) if allowed == [Method::GET, Method::PATCH, Method::DELETE]
        ));
        assert!(matches!(
            table.lookup(&Method::GET, "/v1/nothing/here/at/all"),
            Lookup::NotFound
        ));
    }
}
