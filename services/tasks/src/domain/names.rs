//! Resource names of the tasks context.

use std::fmt;

use taskmesh_mesh::status::invalid_field;
use tonic::Status;
use uuid::Uuid;

fn valid_segment(segment: &str) -> bool {
    (1..=63).contains(&segment.len())
        && segment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !segment.starts_with('-')
}

fn shape_error(field: &str, shape: &str, text: &str) -> Status {
    invalid_field(field, format!("must look like `{shape}`, got `{text}`"))
}

/// `projects/{project}`.
pub fn parse_project(field: &str, text: &str) -> Result<String, Status> {
    match text.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", project] if valid_segment(project) => Ok((*project).to_owned()),
        _ => Err(shape_error(field, "projects/{id}", text)),
    }
}

/// `projects/{project}/tasks/{task}`; the task id is the aggregate's UUID (32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskName {
    /// Project id.
    pub project: String,
    /// Aggregate id.
    pub task: Uuid,
}

impl TaskName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        match text.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", project, "tasks", task] if valid_segment(project) => {
                let task = Uuid::try_parse(task)
                    .map_err(|_| shape_error(field, "projects/{id}/tasks/{id}", text))?;
                Ok(Self {
                    project: (*project).to_owned(),
                    task,
                })
            }
            _ => Err(shape_error(field, "projects/{id}/tasks/{id}", text)),
        }
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/tasks/{}", self.project, self.task.simple())
    }
}

/// A child of a task: `projects/{p}/tasks/{t}/{collection}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildName {
    /// The task.
    pub task: TaskName,
    /// The child id.
    pub id: String,
}

impl ChildName {
    /// Parses `text` as a child in `collection` (`comments`, `workLogs`).
    pub fn parse(field: &str, text: &str, collection: &str) -> Result<Self, Status> {
        let shape = format!("projects/{{id}}/tasks/{{id}}/{collection}/{{id}}");
        let (parent, id) = text
            .rsplit_once(&format!("/{collection}/"))
            .ok_or_else(|| shape_error(field, &shape, text))?;
        if !valid_segment(id) {
            return Err(shape_error(field, &shape, text));
        }
        let task = TaskName::parse(field, parent).map_err(|_| shape_error(field, &shape, text))?;
        Ok(Self {
            task,
            id: id.to_owned(),
        })
    }
}

/// `projects/{project}/boards/{board}/columns/{column}`, checked to be in `project`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    /// The full column name.
    pub name: String,
    /// Its board, `projects/{project}/boards/{board}`.
    pub board: String,
}

impl ColumnRef {
    /// Parses a column name of `project`.
    pub fn parse(field: &str, text: &str, project: &str) -> Result<Self, Status> {
        let shape = "projects/{id}/boards/{id}/columns/{id}";
        match text.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", p, "boards", b, "columns", c]
                if valid_segment(p) && valid_segment(b) && valid_segment(c) =>
            {
                if *p != project {
                    return Err(invalid_field(
                        field,
                        format!("must be a column of projects/{project}"),
                    ));
                }
                Ok(Self {
                    name: text.to_owned(),
                    board: format!("projects/{p}/boards/{b}"),
                })
            }
            _ => Err(shape_error(field, shape, text)),
        }
    }
}

/// `users/{user}`.
pub fn valid_user(text: &str) -> bool {
    text.strip_prefix("users/").is_some_and(|id| {
        (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_round_trip() {
        let id = Uuid::now_v7();
        let text = format!("projects/p1/tasks/{}", id.simple());
        let name = TaskName::parse("name", &text).expect("valid");
        assert_eq!(name.task, id);
        assert_eq!(name.to_string(), text);
        let child =
            ChildName::parse("name", &format!("{text}/comments/c1"), "comments").expect("ok");
        assert_eq!(child.task, name);
        assert_eq!(child.id, "c1");
    }

    #[test]
    fn malformed_names_are_refused() {
        assert!(TaskName::parse("name", "projects/p1/tasks/not-a-uuid").is_err());
        assert!(TaskName::parse("name", "projects/p1/boards/b").is_err());
        assert!(ChildName::parse("name", "projects/p1/tasks/x/comments/", "comments").is_err());
        assert!(ColumnRef::parse("task.column", "projects/p1/boards/b/columns/c", "p2").is_err());
        assert!(ColumnRef::parse("task.column", "projects/p1/boards/b", "p1").is_err());
        let column = ColumnRef::parse("c", "projects/p1/boards/b/columns/c", "p1").expect("ok");
        assert_eq!(column.board, "projects/p1/boards/b");
        assert!(valid_user("users/ada"));
        assert!(!valid_user("ada"));
    }
}
