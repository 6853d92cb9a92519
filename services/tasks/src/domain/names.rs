//! Resource names of the tasks context, parsed once at the edge against the patterns the contracts
//! declare.

use std::fmt;

use taskmesh_contracts::projects_v1::{Column, Project};
use taskmesh_contracts::tasks_v1::Task;
use taskmesh_mesh::names::{NameError, ResourcePattern};
use uuid::Uuid;

/// `projects/{project}`: the project id.
pub fn parse_project(field: &str, text: &str) -> Result<String, NameError> {
    let [project] = ResourcePattern::of::<Project>().parse(field, text)?;
    Ok(project.to_owned())
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
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let pattern = ResourcePattern::of::<Task>();
        let [project, task] = pattern.parse(field, text)?;
        let task = Uuid::try_parse(task).map_err(|_| NameError {
            field: field.to_owned(),
            pattern: pattern.as_str().to_owned(),
            value: text.to_owned(),
        })?;
        Ok(Self {
            project: project.to_owned(),
            task,
        })
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = self.task.simple().to_string();
        f.write_str(&ResourcePattern::of::<Task>().format(&[&self.project, &task]))
    }
}

/// A child of a task, `projects/{project}/tasks/{task}/comments/{comment}` for `M` = `Comment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildName {
    /// The task.
    pub task: TaskName,
    /// The child id.
    pub id: String,
}

impl ChildName {
    /// Parses the value of request field `field` as the name of an `M`.
    pub fn parse<M: prost::Name>(field: &str, text: &str) -> Result<Self, NameError> {
        let pattern = ResourcePattern::of::<M>();
        let [project, task, id] = pattern.parse(field, text)?;
        let task =
            TaskName::parse(field, &format!("projects/{project}/tasks/{task}")).map_err(|_| {
                NameError {
                    field: field.to_owned(),
                    pattern: pattern.as_str().to_owned(),
                    value: text.to_owned(),
                }
            })?;
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
    pub fn parse(field: &str, text: &str, project: &str) -> Result<Self, NameError> {
        let [p, b, _] = ResourcePattern::of::<Column>().parse(field, text)?;
        if p != project {
            return Err(NameError {
                field: field.to_owned(),
                pattern: format!("projects/{project}/boards/{{board}}/columns/{{column}}"),
                value: text.to_owned(),
            });
        }
        Ok(Self {
            name: text.to_owned(),
            board: format!("projects/{p}/boards/{b}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use taskmesh_contracts::tasks_v1::Comment;

    use super::*;

    #[test]
    fn task_names_round_trip() {
        let id = Uuid::now_v7();
        let text = format!("projects/p1/tasks/{}", id.simple());
        let name = TaskName::parse("name", &text).expect("valid");
        assert_eq!(name.task, id);
        assert_eq!(name.to_string(), text);
        let child =
            ChildName::parse::<Comment>("name", &format!("{text}/comments/c1")).expect("ok");
        assert_eq!(child.task, name);
        assert_eq!(child.id, "c1");
    }

    #[test]
    fn malformed_names_are_refused() {
        assert!(TaskName::parse("name", "projects/p1/tasks/not-a-uuid").is_err());
        assert!(TaskName::parse("name", "projects/p1/boards/b").is_err());
        assert!(ChildName::parse::<Comment>("name", "projects/p1/tasks/x/comments/").is_err());
        assert!(ColumnRef::parse("task.column", "projects/p1/boards/b/columns/c", "p2").is_err());
        assert!(ColumnRef::parse("task.column", "projects/p1/boards/b", "p1").is_err());
        let column = ColumnRef::parse("c", "projects/p1/boards/b/columns/c", "p1").expect("ok");
        assert_eq!(column.board, "projects/p1/boards/b");
    }
}
