//! `google.api.http` path templates: parsing and matching.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! A variable without `=` matches one segment. `**` matches zero or more segments and may only be
//! the last segment. Matched segments are percent-decoded; a variable spanning several segments
//! keeps its slashes.

use std::fmt;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    Single,
    /// `**`: any number of segments, only last.
    Multi,
}

/// A variable: the field it binds and the template segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Dotted field path, `book.name`.
    pub field: String,
    start: usize,
    end: usize,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
    text: String,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template `{template}`: {reason}")]
pub struct TemplateError {
    template: String,
    reason: String,
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PathTemplate {
    /// Parses a template such as `/v1/{name=projects/*/tasks/*}:move`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let fail = |reason: &str| TemplateError {
            template: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with /"))?;
        if rest.ends_with('/') {
            return Err(fail("trailing /"));
        }
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut verb = None;
        let mut chars = rest.char_indices().peekable();
        let mut current = String::new();
        let mut in_variable: Option<(String, usize, bool)> = None;

        let close_segment =
            |current: &mut String, segments: &mut Vec<Segment>| -> Result<(), TemplateError> {
                let segment = match current.as_str() {
                    "" => return Err(fail("empty segment")),
                    "*" => Segment::Single,
                    "**" => Segment::Multi,
                    literal => {
                        if literal.contains(['{', '}', '*', '=']) {
                            return Err(fail("unexpected character in a literal segment"));
                        }
                        Segment::Literal(literal.to_owned())
                    }
                };
                segments.push(segment);
                current.clear();
                Ok(())
            };

        while let Some((_, c)) = chars.next() {
            match c {
                '{' => {
                    if in_variable.is_some() || !current.is_empty() {
                        return Err(fail("a variable must be a whole segment and cannot nest"));
                    }
                    let mut field = String::new();
                    let mut has_pattern = false;
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        match c {
                            '=' => {
                                has_pattern = true;
                                closed = true;
                                break;
                            }
                            '}' => {
                                closed = true;
                                break;
                            }
                            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' => field.push(c),
                            _ => return Err(fail("invalid character in a field path")),
                        }
                    }
                    if !closed {
                        return Err(fail("unbalanced {"));
                    }
                    if field.is_empty()
                        || field.starts_with('.')
                        || field.ends_with('.')
                        || field.contains("..")
                    {
                        return Err(fail("invalid field path"));
                    }
                    if variables.iter().any(|v: &Variable| v.field == field) {
                        return Err(fail("a field is bound twice"));
                    }
                    if has_pattern {
                        in_variable = Some((field, segments.len(), true));
                    } else {
                        variables.push(Variable {
                            field,
                            start: segments.len(),
                            end: segments.len() + 1,
                        });
                        segments.push(Segment::Single);
                        // The variable closed with `}`: what follows must be `/`, `:` or the end.
                        match chars.peek() {
                            None => {}
                            Some((_, '/')) => {
                                chars.next();
                                if chars.peek().is_none() {
                                    return Err(fail("trailing /"));
                                }
                            }
                            Some((_, ':')) => {}
                            Some(_) => return Err(fail("a variable must be a whole segment")),
                        }
                    }
                }
                '}' => {
                    let Some((field, start, _)) = in_variable.take() else {
                        return Err(fail("unbalanced }"));
                    };
                    close_segment(&mut current, &mut segments)?;
                    if segments[start..].is_empty() {
                        return Err(fail("empty variable pattern"));
                    }
                    variables.push(Variable {
                        field,
                        start,
                        end: segments.len(),
                    });
                    match chars.peek() {
                        None => {}
                        Some((_, '/')) => {
                            chars.next();
                            if chars.peek().is_none() {
                                return Err(fail("trailing /"));
                            }
                        }
                        Some((_, ':')) => {}
                        Some(_) => return Err(fail("a variable must be a whole segment")),
                    }
                }
                '/' => close_segment(&mut current, &mut segments)?,
                ':' if in_variable.is_none() => {
                    if !current.is_empty() {
                        close_segment(&mut current, &mut segments)?;
                    }
                    let rest: String = chars.by_ref().map(|(_, c)| c).collect();
                    if rest.is_empty() || rest.contains(['/', '{', '}', '*', ':']) {
                        return Err(fail("invalid verb"));
                    }
                    verb = Some(rest);
                }
                c => current.push(c),
            }
        }
        if in_variable.is_some() {
            return Err(fail("unbalanced {"));
        }
        if !current.is_empty() {
            close_segment(&mut current, &mut segments)?;
        }
        if segments.is_empty() {
            return Err(fail("no segments"));
        }
        if let Some(pos) = segments.iter().position(|s| *s == Segment::Multi)
            && pos != segments.len() - 1
        {
            return Err(fail("** must be the last segment"));
        }
        Ok(Self {
            segments,
            variables,
            verb,
            text: text.to_owned(),
        })
    }

    /// The bound field paths, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field.as_str())
    }

    /// The number of literal segments (more literals: a more specific route).
    pub fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
            + usize::from(self.verb.is_some())
    }

    /// Matches a request path (without query); returns the variables' values, decoded.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        let parts: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        if self.verb.is_none() && parts.last().is_some_and(|p| p.contains(':')) {
            // A custom-method call cannot match a template without that verb.
            return None;
        }
        let mut bounds = Vec::with_capacity(self.segments.len());
        let mut i = 0;
        for segment in &self.segments {
            let start = i;
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(i).map(|p| decode(p)) != Some(Some(literal.clone())) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Single => {
                    if parts.get(i).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Multi => i = parts.len(),
            }
            bounds.push((start, i));
        }
        if i != parts.len() {
            return None;
        }
        let mut values = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let from = bounds[variable.start].0;
            let to = bounds[variable.end - 1].1;
            let mut decoded = Vec::with_capacity(to - from);
            for part in &parts[from..to] {
                decoded.push(decode(part)?);
            }
            values.push((variable.field.clone(), decoded.join("/")));
        }
        Some(values)
    }

    /// The template in OpenAPI form: literal segments as they are and one `{parameter}` per variable
    /// segment (`/v1/{name=projects/*/tasks/*}` becomes `/v1/projects/{project}/tasks/{task}`), the
    /// form OpenAPI tools accept. Requests are the same URLs either way. `names` gives the variable
    /// names of a resource pattern from its collection ids (`["projects", "tasks"]`), from the
    /// contracts' `google.api.resource` patterns; without one, a wildcard is named after the
    /// collection before it, singular.
    pub fn openapi_form(
        &self,
        names: &dyn Fn(&[&str]) -> Option<Vec<String>>,
    ) -> (String, Vec<PathParameter>) {
        let mut path = String::new();
        let mut parameters: Vec<PathParameter> = Vec::new();
        let mut index = 0;
        while index < self.segments.len() {
            let Some(variable) = self.variables.iter().find(|v| v.start == index) else {
                if let Segment::Literal(literal) = &self.segments[index] {
                    path.push('/');
                    path.push_str(literal);
                }
                index += 1;
                continue;
            };
            let covered = &self.segments[variable.start..variable.end];
            let collections: Vec<&str> = covered
                .iter()
                .filter_map(|s| match s {
                    Segment::Literal(l) => Some(l.as_str()),
                    _ => None,
                })
                .collect();
            let known = names(&collections).unwrap_or_default();
            let field_leaf = variable.field.rsplit('.').next().unwrap_or(&variable.field);
            let mut wildcard = 0;
            let mut previous: Option<&str> = None;
            for segment in covered {
                path.push('/');
                match segment {
                    Segment::Literal(literal) => {
                        path.push_str(literal);
                        previous = Some(literal);
                    }
                    Segment::Single | Segment::Multi => {
                        let base = if covered.len() == 1 {
                            field_leaf.to_owned()
                        } else {
                            known
                                .get(wildcard)
                                .cloned()
                                .or_else(|| previous.map(singular))
                                .unwrap_or_else(|| format!("{field_leaf}_{wildcard}"))
                        };
                        let mut name = base.clone();
                        let mut n = 2;
                        while parameters.iter().any(|p| p.name == name) {
                            name = format!("{base}_{n}");
                            n += 1;
                        }
                        path.push('{');
                        path.push_str(&name);
                        path.push('}');
                        parameters.push(PathParameter {
                            name,
                            field: variable.field.clone(),
                            spans_segments: *segment == Segment::Multi,
                        });
                        wildcard += 1;
                    }
                }
            }
            index = variable.end;
        }
        if let Some(verb) = &self.verb {
            path.push(':');
            path.push_str(verb);
        }
        (path, parameters)
    }
}

/// A `{parameter}` of the OpenAPI form of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParameter {
    /// Its name in the OpenAPI path.
    pub name: String,
    /// The request field (dotted path) the segment belongs to.
    pub field: String,
    /// A `**`: the value may span several segments.
    pub spans_segments: bool,
}

/// `projects` -> `project`, `workLogs` -> `work_log`, `policies` -> `policy`.
fn singular(collection: &str) -> String {
    let one = if let Some(stem) = collection.strip_suffix("ies") {
        format!("{stem}y")
    } else {
        collection
            .strip_suffix('s')
            .unwrap_or(collection)
            .to_owned()
    };
    let mut snake = String::with_capacity(one.len() + 2);
    for c in one.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// Percent-decodes one path segment; `None` when it is not valid UTF-8 after decoding.
pub fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn vars(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        PathTemplate::parse(template).expect("parses").matches(path)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn simple_and_patterned_variables_bind_their_segments() {
        assert_eq!(
            vars("/v1/shelves/{shelf}", "/v1/shelves/s1"),
            Some(pairs(&[("shelf", "s1")]))
        );
        assert_eq!(
            vars("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b2"),
            Some(pairs(&[("name", "shelves/s1/books/b2")]))
        );
        assert_eq!(
            vars("/v1/{book.name=shelves/*/books/*}", "/v1/shelves/s/books/b"),
            Some(pairs(&[("book.name", "shelves/s/books/b")]))
        );
        assert_eq!(
            vars("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books"),
            None
        );
        assert_eq!(
            vars("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/boxes/b"),
            None
        );
    }

    #[test]
    fn verbs_must_be_present_exactly() {
        let t = "/v1/{name=shelves/*}:archive";
        assert_eq!(
            vars(t, "/v1/shelves/s1:archive"),
            Some(pairs(&[("name", "shelves/s1")]))
        );
        assert_eq!(vars(t, "/v1/shelves/s1"), None);
        assert_eq!(vars(t, "/v1/shelves/s1:restore"), None);
        assert_eq!(vars("/v1/{name=shelves/*}", "/v1/shelves/s1:archive"), None);
        assert_eq!(
            vars(
                "/v1/{parent=shelves/*}/books:stream",
                "/v1/shelves/a/books:stream"
            ),
            Some(pairs(&[("parent", "shelves/a")]))
        );
    }

    #[test]
    fn wildcards_match_one_or_many_segments() {
        assert_eq!(vars("/v1/anon/*/echo", "/v1/anon/x/echo"), Some(vec![]));
        assert_eq!(vars("/v1/anon/*/echo", "/v1/anon/x/y/echo"), None);
        assert_eq!(
            vars("/v1/files/{path=**}", "/v1/files/a/b/c.txt"),
            Some(pairs(&[("path", "a/b/c.txt")]))
        );
        assert_eq!(
            vars("/v1/files/{path=**}", "/v1/files"),
            Some(pairs(&[("path", "")]))
        );
    }

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(
            vars("/v1/shelves/{shelf}", "/v1/shelves/a%20b"),
            Some(pairs(&[("shelf", "a b")]))
        );
        assert_eq!(vars("/v1/shelves/{shelf}", "/v1/shelves/a%2"), None);
        assert_eq!(vars("/v1/shelves/{shelf}", "/v1/shelves/%ff"), None);
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in [
            "v1/x",
            "/",
            "/v1//x",
            "/v1/{x",
            "/v1/x}",
            "/v1/{}",
            "/v1/{a=}",
            "/v1/**/x",
            "/v1/{a}{b}",
            "/v1/a{b}",
            "/v1/x:",
            "/v1/{a}/{a}",
            "/v1/{a.}",
            "/v1/x/",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn openapi_paths_have_one_parameter_per_variable_segment() {
        let none = |_: &[&str]| None;
        let t = PathTemplate::parse("/v1/{name=shelves/*}:archive").expect("ok");
        let (path, parameters) = t.openapi_form(&none);
        assert_eq!(path, "/v1/shelves/{shelve}:archive");
        assert_eq!(parameters[0].field, "name");
        assert_eq!(t.literal_count(), 3, "v1, shelves and the verb");

        let contract = |collections: &[&str]| {
            (collections == ["projects", "tasks", "workLogs"])
                .then(|| vec!["project".into(), "task".into(), "work_log".into()])
        };
        let t = PathTemplate::parse("/v1/{parent=projects/*/tasks/*/workLogs/*}").expect("ok");
        let (path, parameters) = t.openapi_form(&contract);
        assert_eq!(
            path,
            "/v1/projects/{project}/tasks/{task}/workLogs/{work_log}"
        );
        assert_eq!(parameters.len(), 3);
        assert!(parameters.iter().all(|p| p.field == "parent"));

        let t = PathTemplate::parse("/v1/{book.name=shelves/*/books/*}/{id}").expect("ok");
        let (path, parameters) = t.openapi_form(&none);
        assert_eq!(path, "/v1/shelves/{shelve}/books/{book}/{id}");
        assert_eq!(parameters[2].field, "id");

        let t = PathTemplate::parse("/v1/{name=files/**}").expect("ok");
        let (path, parameters) = t.openapi_form(&none);
        assert_eq!(path, "/v1/files/{file}");
        assert!(parameters[0].spans_segments);
        assert_eq!(singular("policies"), "policy");
        assert_eq!(singular("apiKeys"), "api_key");
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(text in ".{0,64}") {
            let _ = PathTemplate::parse(&text);
        }

        #[test]
        fn matching_any_path_never_panics(path in "[/a-z0-9%:*{}=.]{0,64}") {
            for template in ["/v1/{name=shelves/*/books/*}", "/v1/files/{path=**}", "/v1/{name=shelves/*}:archive", "/v1/anon/*/echo"] {
                let _ = PathTemplate::parse(template).expect("valid").matches(&path);
            }
        }

        #[test]
        fn bound_values_round_trip(shelf in "[a-z0-9-]{1,12}", book in "[a-z0-9-]{1,12}") {
            let path = format!("/v1/shelves/{shelf}/books/{book}");
            let got = PathTemplate::parse("/v1/{name=shelves/*/books/*}").expect("valid").matches(&path);
            prop_assert_eq!(got, Some(vec![("name".to_owned(), format!("shelves/{shelf}/books/{book}"))]));
        }
    }
}
