//! Resource names of the projects context, parsed once at the edge.

use std::fmt;

use taskmesh_mesh::status::invalid_field;
use tonic::Status;

/// A segment id: 1 to 63 characters of `[a-z0-9-]`, starting with a letter or digit.
fn valid_segment(segment: &str) -> bool {
    (1..=63).contains(&segment.len())
        && segment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !segment.starts_with('-')
}

/// A user id: 1 to 64 characters of `[A-Za-z0-9._-]`.
fn valid_user(segment: &str) -> bool {
    (1..=64).contains(&segment.len())
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn split<'a, const N: usize>(
    field: &str,
    text: &'a str,
    pattern: [&str; N],
) -> Result<[&'a str; N], Status> {
    let parts: Vec<&str> = text.split('/').collect();
    let shape = pattern
        .iter()
        .map(|collection| format!("{collection}/{{id}}"))
        .collect::<Vec<_>>()
        .join("/");
    let wrong = || invalid_field(field, format!("must look like `{shape}`, got `{text}`"));
    if parts.len() != 2 * N {
        return Err(wrong());
    }
    let mut ids = [""; N];
    for (i, collection) in pattern.iter().enumerate() {
        if parts[2 * i] != *collection || !valid_segment(parts[2 * i + 1]) {
            return Err(wrong());
        }
        ids[i] = parts[2 * i + 1];
    }
    Ok(ids)
}

/// `organizations/{organization}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName {
    /// The organization id.
    pub organization: String,
}

impl OrganizationName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        let [organization] = split(field, text, ["organizations"])?;
        Ok(Self {
            organization: organization.to_owned(),
        })
    }
}

impl fmt::Display for OrganizationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "organizations/{}", self.organization)
    }
}

/// `projects/{project}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName {
    /// The project id.
    pub project: String,
}

impl ProjectName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        let [project] = split(field, text, ["projects"])?;
        Ok(Self {
            project: project.to_owned(),
        })
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}", self.project)
    }
}

/// `projects/{project}/boards/{board}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardName {
    /// The project id.
    pub project: String,
    /// The board id.
    pub board: String,
}

impl BoardName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        let [project, board] = split(field, text, ["projects", "boards"])?;
        Ok(Self {
            project: project.to_owned(),
            board: board.to_owned(),
        })
    }

    /// The project the board belongs to.
    pub fn project(&self) -> ProjectName {
        ProjectName {
            project: self.project.clone(),
        }
    }
}

impl fmt::Display for BoardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/boards/{}", self.project, self.board)
    }
}

/// `projects/{project}/boards/{board}/columns/{column}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnName {
    /// The project id.
    pub project: String,
    /// The board id.
    pub board: String,
    /// The column id.
    pub column: String,
}

impl ColumnName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        let [project, board, column] = split(field, text, ["projects", "boards", "columns"])?;
        Ok(Self {
            project: project.to_owned(),
            board: board.to_owned(),
            column: column.to_owned(),
        })
    }

    /// The board the column belongs to.
    pub fn board(&self) -> BoardName {
        BoardName {
            project: self.project.clone(),
            board: self.board.clone(),
        }
    }
}

impl fmt::Display for ColumnName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/boards/{}/columns/{}",
            self.project, self.board, self.column
        )
    }
}

/// `users/{user}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName {
    /// The user id.
    pub user: String,
}

impl UserName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        match text.split_once('/') {
            Some(("users", id)) if valid_user(id) => Ok(Self {
                user: id.to_owned(),
            }),
            _ => Err(invalid_field(
                field,
                format!("must look like `users/{{id}}`, got `{text}`"),
            )),
        }
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "users/{}", self.user)
    }
}

/// `projects/{project}/members/{member}`, where `{member}` is the user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberName {
    /// The project id.
    pub project: String,
    /// The user id.
    pub user: String,
}

impl MemberName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Status> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            ["projects", project, "members", user]
                if valid_segment(project) && valid_user(user) =>
            {
                Ok(Self {
                    project: (*project).to_owned(),
                    user: (*user).to_owned(),
                })
            }
            _ => Err(invalid_field(
                field,
                format!("must look like `projects/{{id}}/members/{{user}}`, got `{text}`"),
            )),
        }
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/members/{}", self.project, self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let column = ColumnName::parse("name", "projects/p1/boards/b-2/columns/c3").expect("ok");
        assert_eq!(column.to_string(), "projects/p1/boards/b-2/columns/c3");
        assert_eq!(column.board().to_string(), "projects/p1/boards/b-2");
        let member = MemberName::parse("name", "projects/p1/members/Ada.L").expect("ok");
        assert_eq!(member.user, "Ada.L");
    }

    #[test]
    fn malformed_names_name_the_field() {
        for bad in [
            "",
            "projects",
            "projects/",
            "projects/P",
            "boards/x",
            "projects/a/b",
        ] {
            let err = ProjectName::parse("name", bad).expect_err(bad);
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
        assert!(BoardName::parse("parent", "projects/a/columns/b").is_err());
        assert!(UserName::parse("member.user", "user/x").is_err());
        assert!(UserName::parse("member.user", "users/").is_err());
    }
}
