//! Resource names (AIP-122), parsed and formatted by one engine for every service. A name's shape
//! is the `google.api.resource` pattern its message declares in the contracts
//! (`projects/{project}/boards/{board}` for `taskmesh.projects.v1.Board`), read from the descriptor
//! set, so that code and contract cannot disagree.
//!
//! Variables are checked by name: `{user}` and `{member}` hold user ids (1 to 64 of
//! `[A-Za-z0-9._-]`), `{task}` a UUID (tasks are event-sourced aggregates), every other variable an
//! id (1 to 63 of `[a-z0-9-]`, not starting with `-`); [`variable_pattern`] states each rule as a
//! regular expression.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, Value};
use tonic::Status;

use crate::status::invalid_field;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// A collection id, `boards`.
    Literal(String),
    /// A variable, `board`.
    Variable(String),
}

/// A resource name pattern, `projects/{project}/boards/{board}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    text: String,
    parts: Vec<Part>,
}

/// A value that is not a name of the expected shape. It converts into INVALID_ARGUMENT with a
/// field violation for the request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` must look like `{pattern}`, got `{value}`")]
pub struct NameError {
    /// The request field, `parent`.
    pub field: String,
    /// The expected pattern.
    pub pattern: String,
    /// What was sent.
    pub value: String,
}

impl NameError {
    /// The field violation's description: what the value must look like.
    pub fn description(&self) -> String {
        format!("must look like `{}`, got `{}`", self.pattern, self.value)
    }
}

impl From<NameError> for Status {
    fn from(err: NameError) -> Self {
        let description = err.description();
        invalid_field(err.field, description)
    }
}

/// Why a pattern is unusable.
#[derive(Debug, thiserror::Error)]
#[error("resource pattern `{0}` is not `collection/{{variable}}/...`")]
pub struct PatternError(String);

impl ResourcePattern {
    /// Parses a pattern.
    pub fn new(text: &str) -> Result<Self, PatternError> {
        let parts: Vec<Part> = text
            .split('/')
            .map(|segment| match segment.strip_prefix('{') {
                Some(rest) => rest
                    .strip_suffix('}')
                    .filter(|name| !name.is_empty())
                    .map(|name| Part::Variable(name.to_owned())),
                None if !segment.is_empty() && !segment.contains(['{', '}']) => {
                    Some(Part::Literal(segment.to_owned()))
                }
                None => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| PatternError(text.to_owned()))?;
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The pattern that message `M` declares in the contracts (its first `google.api.resource`
    /// pattern). Panics when it declares none: a startup invariant, which each service's name
    /// tests exercise.
    pub fn of<M: prost::Name>() -> &'static Self {
        let full_name = M::full_name();
        contract_patterns()
            .get(&full_name)
            .unwrap_or_else(|| panic!("{full_name} declares no google.api.resource pattern"))
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The collection ids, in order: `["projects", "boards"]`.
    pub fn collections(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Literal(literal) => Some(literal.as_str()),
                Part::Variable(_) => None,
            })
            .collect()
    }

    /// The variable names, in order: `["project", "board"]`.
    pub fn variables(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Variable(name) => Some(name.as_str()),
                Part::Literal(_) => None,
            })
            .collect()
    }

    /// The values of the variables of `text`, the value of request field `field`, in order; an
    /// error naming the field and the expected shape when `text` does not match.
    pub fn parse<'a, const N: usize>(
        &self,
        field: &str,
        text: &'a str,
    ) -> Result<[&'a str; N], NameError> {
        let wrong = || NameError {
            field: field.to_owned(),
            pattern: self.text.clone(),
            value: text.to_owned(),
        };
        let segments: Vec<&str> = text.split('/').collect();
        if segments.len() != self.parts.len() {
            return Err(wrong());
        }
        let mut values = [""; N];
        let mut next = 0;
        for (part, segment) in self.parts.iter().zip(segments) {
            match part {
                Part::Literal(literal) if literal == segment => {}
                Part::Variable(name) if valid_value(name, segment) && next < N => {
                    values[next] = segment;
                    next += 1;
                }
                _ => return Err(wrong()),
            }
        }
        if next == N { Ok(values) } else { Err(wrong()) }
    }

    /// The name with `values` in place of the variables, in order.
    pub fn format(&self, values: &[&str]) -> String {
        let mut values = values.iter();
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(literal) => literal.as_str(),
                Part::Variable(_) => values.next().copied().unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Whether `value` may stand for variable `name`.
fn valid_value(name: &str, value: &str) -> bool {
    match name {
        "user" | "member" | "share" | "provider" => valid_user_id(value),
        "task" | "attachment" => valid_uuid(value),
        "calendar_feed" => valid_feed_token(value),
        _ => valid_id(value),
    }
}

/// What variable `name` of a resource name may hold, as a regular expression (RE2, ECMA-262 and
/// Python alike): the same rule [`ResourcePattern::parse`] applies, for documents such as the
/// gateway's OpenAPI.
pub fn variable_pattern(name: &str) -> &'static str {
    match name {
        // A note's share is named by the user it is shared with, a provider by its user.
        "user" | "member" | "share" | "provider" => "^[A-Za-z0-9._-]{1,64}$",
        "task" | "attachment" => {
            "^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
        }
        // A calendar feed is named by its secret token: 32 random bytes, URL-safe base64.
        "calendar_feed" => "^[A-Za-z0-9_-]{43}$",
        _ => "^[a-z0-9][a-z0-9-]{0,62}$",
    }
}

/// A calendar feed token: 43 characters of URL-safe base64 (32 bytes).
pub fn valid_feed_token(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An id: 1 to 63 characters of `[a-z0-9-]`, not starting with `-`.
pub fn valid_id(value: &str) -> bool {
    (1..=63).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
}

/// A user id: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn valid_user_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A UUID in its simple (32 hex digits) or hyphenated form: the ids of event-sourced aggregates.
pub fn valid_uuid(value: &str) -> bool {
    matches!(value.len(), 32 | 36) && uuid::Uuid::try_parse(value).is_ok()
}

/// Every `google.api.resource` pattern declared in `pool`, with the full name of its message, in
/// declaration order (a message may declare several).
pub fn resource_patterns(pool: &DescriptorPool) -> Vec<(String, ResourcePattern)> {
    let mut patterns = Vec::new();
    let Some(extension) = pool.get_extension_by_name("google.api.resource") else {
        return patterns;
    };
    for message in pool.all_messages() {
        let options = message.options();
        if !options.has_extension(&extension) {
            continue;
        }
        let Value::Message(resource) = options.get_extension(&extension).into_owned() else {
            continue;
        };
        if let Some(Value::List(list)) = resource.get_field_by_name("pattern").as_deref() {
            for text in list.iter().filter_map(Value::as_str) {
                if let Ok(pattern) = ResourcePattern::new(text) {
                    patterns.push((message.full_name().to_owned(), pattern));
                }
            }
        }
    }
    patterns
}

/// The first pattern of every message of the contracts that declares one, by full name.
fn contract_patterns() -> &'static HashMap<String, ResourcePattern> {
    static PATTERNS: OnceLock<HashMap<String, ResourcePattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let mut first = HashMap::new();
        if let Ok(pool) = DescriptorPool::decode(taskmesh_contracts::FILE_DESCRIPTOR_SET) {
            for (message, pattern) in resource_patterns(&pool) {
                first.entry(message).or_insert(pattern);
            }
        }
        first
    })
}

#[cfg(test)]
mod tests {
    use taskmesh_contracts::projects_v1::{Board, Member};
    use taskmesh_contracts::tasks_v1::Task;

    use super::*;

    #[test]
    fn patterns_come_from_the_contracts() {
        assert_eq!(
            ResourcePattern::of::<Board>().as_str(),
            "projects/{project}/boards/{board}"
        );
        assert_eq!(
            ResourcePattern::of::<Task>().as_str(),
            "projects/{project}/tasks/{task}"
        );
    }

    #[test]
    fn names_parse_into_their_variables_and_format_back() {
        let board = ResourcePattern::of::<Board>();
        let [project, id] = board
            .parse("name", "projects/p-1/boards/b2")
            .expect("valid");
        assert_eq!((project, id), ("p-1", "b2"));
        assert_eq!(board.format(&[project, id]), "projects/p-1/boards/b2");
        assert_eq!(board.collections(), ["projects", "boards"]);
        assert_eq!(board.variables(), ["project", "board"]);
    }

    #[test]
    fn wrong_shapes_and_ids_name_the_field_and_the_pattern() {
        let board = ResourcePattern::of::<Board>();
        for bad in [
            "",
            "projects/p1",
            "projects/p1/columns/c1",
            "projects/P1/boards/b1",
            "projects/-p/boards/b1",
            "projects/p1/boards/b1/extra",
            "projects//boards/b1",
        ] {
            let err = Status::from(board.parse::<2>("parent", bad).expect_err(bad));
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(
                err.message().contains("projects/{project}/boards/{board}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_variables_take_user_ids() {
        let member = ResourcePattern::of::<Member>();
        let [project, user] = member
            .parse("name", "projects/p1/members/Ada.L")
            .expect("user ids allow capitals and dots");
        assert_eq!((project, user), ("p1", "Ada.L"));
        assert!(
            member
                .parse::<2>("name", "projects/p1/members/a/b")
                .is_err()
        );
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(ResourcePattern::new("projects/{project").is_err());
        assert!(ResourcePattern::new("projects//x").is_err());
        assert!(ResourcePattern::new("projects/{}").is_err());
    }
}
