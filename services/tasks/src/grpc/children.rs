//! Comments, work logs and activity of a task. Adding or editing a comment and logging work are
//! authorized by their gRPC handler before the body is read; the others authorize here.

use taskmesh_contracts::tasks_v1::{
    Activity, Comment, CommentAdded, CommentDeleted, CommentUpdated, WorkLog, WorkLogged,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::status::not_found;
use taskmesh_mesh::time::now;
use tonic::Status;

use crate::domain::aggregate::TaskState;
use crate::domain::events::TaskEvent;
use crate::domain::names::{ChildName, TaskName};
use crate::domain::rules;
use crate::grpc::service::{Access, Executed, Tasks, live};
use crate::store::event_store::RequestKey;
use crate::store::read_model;

/// One page of an in-memory list, with the same token rules as every other list.
fn page_of<T: Clone>(
    items: &[T],
    parent: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<T>, String), Status> {
    let page = aip::page(page_size, page_token, parent)?;
    let start = usize::try_from(page.offset)
        .unwrap_or(usize::MAX)
        .min(items.len());
    let end = start
        .saturating_add(usize::try_from(page.size).unwrap_or(usize::MAX))
        .min(items.len());
    let token = aip::next_page_token(page, end < items.len(), parent);
    Ok((items[start..end].to_vec(), token))
}

impl Tasks {
    /// Adds a comment by the caller.
    pub async fn add_comment(
        &self,
        context: &CallContext,
        parent: &TaskName,
        text: &str,
        request_id: &str,
    ) -> Result<Comment, Status> {
        let request_id = aip::request_id(request_id);
        let comment = Comment {
            name: format!("{parent}/comments/{}", aip::new_id()),
            text: rules::comment(text),
            author: context.caller.clone(),
            create_time: Some(now()),
            update_time: Some(now()),
        };
        let keyed = request_id.map(|id| {
            let key = RequestKey {
                method: "AddComment",
                id,
            };
            (key, comment.name.as_str())
        });
        let executed = self
            .execute_once(context, parent, "", keyed, |state: &TaskState, next| {
                live(state)?;
                let event = TaskEvent::CommentAdded(CommentAdded {
                    context: Some(next),
                    comment: Some(comment.clone()),
                });
                Ok((event, None))
            })
            .await?;
        match executed {
            Executed::Applied(_) => Ok(comment),
            Executed::Replayed(first) => {
                let state = self.load(parent).await?;
                state
                    .comments
                    .into_iter()
                    .find(|c| c.name == first)
                    .ok_or_else(|| taskmesh_mesh::status::not_found(&first))
            }
        }
    }

    /// Edits a comment; only its author may.
    pub async fn update_comment(
        &self,
        context: &CallContext,
        name: &ChildName,
        text: &str,
    ) -> Result<Comment, Status> {
        let text = rules::comment(text);
        let resource = format!("{}/comments/{}", name.task, name.id);
        let state = self
            .execute(context, &name.task, "", |state: &TaskState, next| {
                live(state)?;
                let comment = own_comment(state.comments.as_slice(), &resource, &context.caller)?;
                let edited = Comment {
                    text: text.clone(),
                    update_time: Some(now()),
                    ..comment.clone()
                };
                Ok((
                    TaskEvent::CommentUpdated(CommentUpdated {
                        context: Some(next),
                        comment: Some(edited),
                    }),
                    None,
                ))
            })
            .await?;
        state
            .comments
            .into_iter()
            .find(|c| c.name == resource)
            .ok_or_else(|| not_found(&resource))
    }

    /// Deletes a comment; only its author may.
    pub async fn delete_comment(
        &self,
        context: &CallContext,
        name: &ChildName,
    ) -> Result<(), Status> {
        self.authorize(context, &name.task.project, Access::Write)
            .await?;
        let resource = format!("{}/comments/{}", name.task, name.id);
        self.execute(context, &name.task, "", |state: &TaskState, next| {
            live(state)?;
            own_comment(state.comments.as_slice(), &resource, &context.caller)?;
            Ok((
                TaskEvent::CommentDeleted(CommentDeleted {
                    context: Some(next),
                    comment: resource.clone(),
                }),
                None,
            ))
        })
        .await?;
        Ok(())
    }

    /// Lists comments, oldest first, from the task's events.
    pub async fn list_comments(
        &self,
        context: &CallContext,
        parent: &TaskName,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Comment>, String), Status> {
        self.authorize(context, &parent.project, Access::Read)
            .await?;
        let state = self.load(parent).await?;
        page_of(
            &state.comments,
            &format!("{parent}/comments"),
            page_size,
            page_token,
        )
    }

    /// Logs work by the caller.
    pub async fn log_work(
        &self,
        context: &CallContext,
        parent: &TaskName,
        log: WorkLog,
        request_id: &str,
    ) -> Result<WorkLog, Status> {
        let request_id = aip::request_id(request_id);
        let work_log = WorkLog {
            name: format!("{parent}/workLogs/{}", aip::new_id()),
            duration: log.duration,
            note: log.note,
            day: log.day,
            author: context.caller.clone(),
            create_time: Some(now()),
        };
        let keyed = request_id.map(|id| {
            let key = RequestKey {
                method: "LogWork",
                id,
            };
            (key, work_log.name.as_str())
        });
        let executed = self
            .execute_once(context, parent, "", keyed, |state: &TaskState, next| {
                live(state)?;
                let event = TaskEvent::WorkLogged(WorkLogged {
                    context: Some(next),
                    work_log: Some(work_log.clone()),
                });
                Ok((event, None))
            })
            .await?;
        match executed {
            Executed::Applied(_) => Ok(work_log),
            Executed::Replayed(first) => {
                let state = self.load(parent).await?;
                state
                    .work_logs
                    .into_iter()
                    .find(|w| w.name == first)
                    .ok_or_else(|| taskmesh_mesh::status::not_found(&first))
            }
        }
    }

    /// Lists work logs, oldest first, and the total logged.
    pub async fn list_work_logs(
        &self,
        context: &CallContext,
        parent: &TaskName,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<WorkLog>, String, Option<prost_types::Duration>), Status> {
        self.authorize(context, &parent.project, Access::Read)
            .await?;
        let state = self.load(parent).await?;
        let (logs, token) = page_of(
            &state.work_logs,
            &format!("{parent}/workLogs"),
            page_size,
            page_token,
        )?;
        Ok((logs, token, state.task.logged_work))
    }

    /// Lists a task's history from the read model.
    pub async fn list_activity(
        &self,
        context: &CallContext,
        parent: &TaskName,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Activity>, String), Status> {
        self.authorize(context, &parent.project, Access::Read)
            .await?;
        self.load(parent).await?;
        let page = aip::page(page_size, page_token, &parent.to_string())?;
        Ok(read_model::list_activity(self.events.pool(), parent, page).await?)
    }
}

fn own_comment<'a>(
    comments: &'a [Comment],
    name: &str,
    caller: &str,
) -> Result<&'a Comment, Status> {
    let comment = comments
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| not_found(name))?;
    if comment.author != caller {
        return Err(Status::permission_denied(format!(
            "only {} may change {name}",
            comment.author
        )));
    }
    Ok(comment)
}
