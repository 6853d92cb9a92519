//! Resource names of the projects context, parsed once at the edge against the patterns the
//! contracts declare.

use std::fmt;

use taskmesh_contracts::identity_v1::User;
use taskmesh_contracts::projects_v1::{Board, Column, Member, Organization, Project};
use taskmesh_mesh::names::{NameError, ResourcePattern};

/// `organizations/{organization}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName {
    /// The organization id.
    pub organization: String,
}

impl OrganizationName {
    /// Parses the value of request field `field`.
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let [organization] = ResourcePattern::of::<Organization>().parse(field, text)?;
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
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let [project] = ResourcePattern::of::<Project>().parse(field, text)?;
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
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let [project, board] = ResourcePattern::of::<Board>().parse(field, text)?;
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
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let [project, board, column] = ResourcePattern::of::<Column>().parse(field, text)?;
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
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let [user] = ResourcePattern::of::<User>().parse(field, text)?;
        Ok(Self {
            user: user.to_owned(),
        })
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
    pub fn parse(field: &str, text: &str) -> Result<Self, NameError> {
        let [project, user] = ResourcePattern::of::<Member>().parse(field, text)?;
        Ok(Self {
            project: project.to_owned(),
            user: user.to_owned(),
        })
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
            assert_eq!(err.field, "name");
        }
        assert!(BoardName::parse("parent", "projects/a/columns/b").is_err());
        assert!(UserName::parse("member.user", "user/x").is_err());
        assert!(UserName::parse("member.user", "users/").is_err());
    }
}
