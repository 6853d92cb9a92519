//! Who may do what: the note a call names and what the caller may do with it, whether they may
//! add or list notes under a parent, and whether they can read what a note links to.

use taskmesh_clients::{ProjectsClient, TasksClient};
use taskmesh_contracts::notes_v1::NoteLink;
use taskmesh_mesh::CallContext;
use taskmesh_mesh::names::{valid_id, valid_user_id, valid_uuid};
use tonic::Status;

use super::NotesService;
use crate::error::Error;
use crate::store::{Access, NoteRow};

/// Where a link's target is asked whether the caller can read it.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The projects service.
    pub projects: ProjectsClient,
    /// The tasks service.
    pub tasks: TasksClient,
}

impl Targets {
    /// PERMISSION_DENIED unless the caller can read every one of `links` (each a task or a
    /// project, asked of its service with the caller's credential); their targets, in order.
    pub(super) async fn check(
        &self,
        context: &CallContext,
        links: &[NoteLink],
    ) -> Result<Vec<String>, Status> {
        let mut targets: Vec<String> = Vec::with_capacity(links.len());
        for (i, link) in links.iter().enumerate() {
            let target = link.target.as_str();
            if targets.iter().any(|t| t == target) {
                continue;
            }
            let readable = match target.split('/').collect::<Vec<_>>().as_slice() {
                ["projects", project] if valid_id(project) => {
                    self.projects.role(context, project).await?.is_some()
                }
                ["projects", project, "tasks", task] if valid_id(project) && valid_uuid(task) => {
                    self.tasks.readable(context, target).await?
                }
                _ => {
                    return Err(Error::invalid(
                        format!("links[{i}].target"),
                        "is neither projects/{project} nor projects/{project}/tasks/{task}",
                    )
                    .into());
                }
            };
            if !readable {
                return Err(Error::Denied(format!("the caller cannot read {target}")).into());
            }
            targets.push(target.to_owned());
        }
        Ok(targets)
    }
}

impl NotesService {
    /// The note `name` (request field `field`) when the caller may do at least `needed` with it.
    pub(super) async fn note(
        &self,
        context: &CallContext,
        field: &str,
        name: &str,
        needed: Access,
    ) -> Result<NoteRow, Error> {
        let (_, id) = note_name(field, name)?;
        let note = self.store.note(id).await?.filter(|n| n.name() == name);
        let Some(note) = note else {
            return Err(crate::store::StoreError::NotFound(name.to_owned()).into());
        };
        let access = self.store.access(&note, &context.caller).await?;
        if access == Access::None {
            return Err(crate::store::StoreError::NotFound(name.to_owned()).into());
        }
        if access < needed {
            return Err(Error::Denied(format!(
                "the caller may not do this with {name}"
            )));
        }
        Ok(note)
    }

    /// Whether the caller may add notes under `parent`: their own `users/{user}`, or a project
    /// they may write in.
    pub(super) async fn may_add(&self, context: &CallContext, parent: &str) -> Result<(), Error> {
        if parent.starts_with("users/") {
            if parent == context.caller {
                return Ok(());
            }
            return Err(Error::Denied(format!(
                "notes under {parent} are its user's own"
            )));
        }
        let Some(project) = parent.strip_prefix("projects/").filter(|p| valid_id(p)) else {
            return Err(Error::invalid(
                "parent",
                format!("`{parent}` is neither users/{{user}} nor projects/{{project}}"),
            ));
        };
        let probe = NoteRow {
            note_id: String::new(),
            parent: parent.to_owned(),
            project_id: project.to_owned(),
            title: String::new(),
            body: String::new(),
            color: 0,
            pinned: false,
            archived: false,
            labels: Vec::new(),
            creator: String::new(),
            create_time: chrono::Utc::now(),
            update_time: chrono::Utc::now(),
            delete_time: None,
            purge_time: None,
            version: 0,
            attachment_count: 0,
        };
        match self.store.access(&probe, &context.caller).await? {
            Access::Write | Access::Own => Ok(()),
            _ => Err(Error::Denied(format!(
                "the caller may not add notes to {parent}"
            ))),
        }
    }

    /// Whether the caller may list the notes under `parent`: their own `users/{user}`, or a
    /// project they belong to.
    pub(super) async fn may_read_parent(
        &self,
        context: &CallContext,
        parent: &str,
    ) -> Result<(), Error> {
        if parent.starts_with("users/") {
            if parent == context.caller {
                return Ok(());
            }
            return Err(Error::Denied(format!(
                "the notes of {parent} are its user's own"
            )));
        }
        let Some(project) = parent.strip_prefix("projects/").filter(|p| valid_id(p)) else {
            return Err(Error::invalid(
                "parent",
                format!("`{parent}` is neither users/{{user}} nor projects/{{project}}"),
            ));
        };
        if self
            .store
            .member_role(project, &context.caller)
            .await?
            .is_some()
        {
            Ok(())
        } else {
            Err(Error::Denied(format!(
                "the caller is not a member of {parent}"
            )))
        }
    }
}

/// `(parent, note id)` of `users/{user}/notes/{note}` or `projects/{project}/notes/{note}`.
pub(super) fn note_name<'a>(field: &str, name: &'a str) -> Result<(&'a str, &'a str), Error> {
    let wrong = || {
        Error::invalid(
            field,
            format!(
                "`{name}` is not users/{{user}}/notes/{{note}} or projects/{{project}}/notes/{{note}}"
            ),
        )
    };
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [kind @ ("users" | "projects"), owner, "notes", note]
            if valid_id(note) && (*kind == "users" && valid_user_id(owner) || valid_id(owner)) =>
        {
            let parent_len = kind.len() + 1 + owner.len();
            Ok((&name[..parent_len], note))
        }
        _ => Err(wrong()),
    }
}
