//! `taskmesh.notes.v1.NoteService`. Every call reads the note, asks the store what the caller may
//! do with it ([`Access`]), and refuses before anything else: a note the caller cannot read is
//! NOT_FOUND (its existence is not told), one they can read but not change is PERMISSION_DENIED.
//!
//! Attachments are in [`attachments`].

mod access;
mod attachments;

pub use access::Targets;
use taskmesh_mesh::names::{valid_id, valid_user_id, valid_uuid};

use taskmesh_contracts::google::api::HttpBody;
use taskmesh_contracts::notes_v1::note_service_server::NoteService;
use taskmesh_contracts::notes_v1::{
    Attachment, CaptureNoteRequest, CreateAttachmentRequest, CreateNoteRequest,
    CreateNoteShareRequest, DeleteAttachmentRequest, DeleteNoteRequest, DeleteNoteShareRequest,
    DownloadAttachmentRequest, GetAttachmentRequest, GetNoteRequest, ListAttachmentsRequest,
    ListAttachmentsResponse, ListLinkedNotesRequest, ListLinkedNotesResponse,
    ListNoteSharesRequest, ListNoteSharesResponse, ListNotesRequest, ListNotesResponse, Note,
    NoteLink, NoteShare, RenderNoteRequest, SearchNotesRequest, SearchNotesResponse, SearchResult,
    UndeleteNoteRequest, UpdateNoteRequest,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::time::to_timestamp;
use tonic::{Request, Response, Status, Streaming};

use crate::config::AttachmentSettings;
use crate::domain::{capture, render};
use crate::error::Error;
use crate::store::{Access, FILTER_FIELDS, NewNote, NoteChange, NoteRow, Store, list};

/// Serves NoteService from the store.
#[derive(Debug, Clone)]
pub struct NotesService {
    store: Store,
    targets: Targets,
    keep_deleted: chrono::TimeDelta,
    attachments: AttachmentSettings,
}

impl NotesService {
    /// Notes in `store`, links checked with `targets`; a deleted note is kept `keep_deleted`
    /// before it is purged; files are attached within `attachments`.
    pub fn new(
        store: Store,
        targets: Targets,
        keep_deleted: chrono::TimeDelta,
        attachments: AttachmentSettings,
    ) -> Self {
        Self {
            store,
            targets,
            keep_deleted,
            attachments,
        }
    }

    /// `rows` as the API shows them, with their links.
    async fn shown(&self, rows: &[NoteRow]) -> Result<Vec<Note>, Error> {
        let ids: Vec<String> = rows.iter().map(|r| r.note_id.clone()).collect();
        let mut links = self.store.links_of(&ids).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let mut note = to_proto(row);
                note.links = links
                    .remove(&row.note_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(target, broken)| NoteLink {
                        target,
                        broken: broken.is_some(),
                        broken_time: broken.map(to_timestamp),
                    })
                    .collect();
                note
            })
            .collect())
    }

    /// One row as the API shows it, with its links.
    async fn one(&self, row: &NoteRow) -> Result<Response<Note>, Status> {
        let mut shown = self.shown(std::slice::from_ref(row)).await?;
        Ok(Response::new(shown.pop().unwrap_or_default()))
    }
}

/// As the API shows a stored note.
fn to_proto(row: &NoteRow) -> Note {
    Note {
        name: row.name(),
        title: row.title.clone(),
        body: row.body.clone(),
        color: i32::from(row.color),
        pinned: row.pinned,
        archived: row.archived,
        labels: row.labels.clone(),
        links: Vec::new(),
        creator: row.creator.clone(),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        delete_time: row.delete_time.map(to_timestamp),
        purge_time: row.purge_time.map(to_timestamp),
        attachment_count: i32::try_from(row.attachment_count).unwrap_or(i32::MAX),
        etag: row.etag(),
    }
}

fn request_id(text: &str) -> Result<Option<uuid::Uuid>, Error> {
    if text.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::parse_str(text)
        .map(Some)
        .map_err(|_| Error::invalid("request_id", "is not a UUID"))
}

#[tonic::async_trait]
impl NoteService for NotesService {
    async fn create_note(
        &self,
        request: Request<CreateNoteRequest>,
    ) -> Result<Response<Note>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.may_add(&context, &request.parent).await?;
        let note = request.note.unwrap_or_default();
        let links = self.targets.check(&context, &note.links).await?;
        let new = NewNote {
            links,
            parent: request.parent,
            title: note.title,
            body: note.body,
            color: i16::try_from(note.color).unwrap_or_default(),
            pinned: note.pinned,
            archived: note.archived,
            labels: note.labels,
        };
        let made = self
            .store
            .create(&new, &context.caller, request_id(&request.request_id)?)
            .await
            .map_err(Error::from)?;
        self.one(&made).await
    }

    async fn capture_note(
        &self,
        request: Request<CaptureNoteRequest>,
    ) -> Result<Response<Note>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.may_add(&context, &request.parent).await?;
        let new = NewNote {
            title: capture::title_of(&request.body),
            parent: request.parent,
            body: request.body,
            ..NewNote::default()
        };
        let made = self
            .store
            .create(&new, &context.caller, request_id(&request.request_id)?)
            .await
            .map_err(Error::from)?;
        self.one(&made).await
    }

    async fn get_note(&self, request: Request<GetNoteRequest>) -> Result<Response<Note>, Status> {
        let context = CallContext::of(&request);
        let note = self
            .note(&context, "name", &request.get_ref().name, Access::Read)
            .await?;
        self.one(&note).await
    }

    async fn list_notes(
        &self,
        request: Request<ListNotesRequest>,
    ) -> Result<Response<ListNotesResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        self.may_read_parent(&context, &request.parent).await?;
        let filter = if request.filter.trim().is_empty() {
            None
        } else {
            Some(aip::parse_filter(&request.filter, FILTER_FIELDS)?)
        };
        let order = list::order_sql(&request.order_by).ok_or_else(|| {
            Error::invalid(
                "order_by",
                "one of `update_time desc`, `update_time`, `create_time desc`, `create_time`, `title`",
            )
        })?;
        let fingerprint = aip::fingerprint(&[
            &request.parent,
            &request.filter,
            &request.order_by,
            if request.show_deleted { "deleted" } else { "" },
        ]);
        let page = aip::page(request.page_size, &request.page_token, &fingerprint)?;
        let rows = self
            .store
            .list(list::Listing {
                parent: &request.parent,
                filter: filter.as_ref(),
                filter_names_archived: request.filter.contains("archived"),
                show_deleted: request.show_deleted,
                order,
                limit: page.size + 1,
                offset: page.offset,
            })
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fingerprint);
        Ok(Response::new(ListNotesResponse {
            notes: self.shown(&rows).await?,
            next_page_token,
        }))
    }

    async fn update_note(
        &self,
        request: Request<UpdateNoteRequest>,
    ) -> Result<Response<Note>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let change = request.note.unwrap_or_default();
        let current = self
            .note(&context, "note.name", &change.name, Access::Write)
            .await?;
        let paths = aip::update_paths(
            request.update_mask.as_ref(),
            &[
                "title", "body", "color", "pinned", "archived", "labels", "links",
            ],
        )?;
        let mut update = NoteChange::default();
        for path in paths {
            match path {
                "title" => update.title = Some(change.title.clone()),
                "body" => update.body = Some(change.body.clone()),
                "color" => update.color = Some(i16::try_from(change.color).unwrap_or_default()),
                "pinned" => update.pinned = Some(change.pinned),
                "archived" => update.archived = Some(change.archived),
                "labels" => update.labels = Some(change.labels.clone()),
                "links" => update.links = Some(self.targets.check(&context, &change.links).await?),
                _ => {}
            }
        }
        let written = self
            .store
            .update(&current.note_id, &change.etag, &update)
            .await
            .map_err(Error::from)?;
        self.one(&written).await
    }

    async fn delete_note(
        &self,
        request: Request<DeleteNoteRequest>,
    ) -> Result<Response<Note>, Status> {
        let context = CallContext::of(&request);
        let request = request.get_ref();
        let current = self
            .note(&context, "name", &request.name, Access::Own)
            .await?;
        if !request.etag.is_empty() && request.etag != current.etag() {
            return Err(Error::from(crate::store::StoreError::EtagMismatch {
                name: current.name(),
                current: current.etag(),
            })
            .into());
        }
        let deleted = self
            .store
            .delete(&current.note_id, self.keep_deleted)
            .await
            .map_err(Error::from)?;
        self.one(&deleted).await
    }

    async fn undelete_note(
        &self,
        request: Request<UndeleteNoteRequest>,
    ) -> Result<Response<Note>, Status> {
        let context = CallContext::of(&request);
        let current = self
            .note(&context, "name", &request.get_ref().name, Access::Own)
            .await?;
        let back = self
            .store
            .undelete(&current.note_id)
            .await
            .map_err(Error::from)?;
        self.one(&back).await
    }

    async fn render_note(
        &self,
        request: Request<RenderNoteRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        let context = CallContext::of(&request);
        let note = self
            .note(&context, "name", &request.get_ref().name, Access::Read)
            .await?;
        Ok(Response::new(HttpBody {
            content_type: "text/html; charset=utf-8".to_owned(),
            data: render::html(&note.body).into_bytes(),
            extensions: Vec::new(),
        }))
    }

    async fn search_notes(
        &self,
        request: Request<SearchNotesRequest>,
    ) -> Result<Response<SearchNotesResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let filter = if request.filter.trim().is_empty() {
            None
        } else {
            Some(aip::parse_filter(&request.filter, FILTER_FIELDS)?)
        };
        let fingerprint = aip::fingerprint(&[&request.query, &request.filter]);
        let page = aip::page_of(
            aip::SEARCH_PAGES,
            request.page_size,
            &request.page_token,
            &fingerprint,
        )?;
        let found = self
            .store
            .search(
                &context.caller,
                &request.query,
                filter.as_ref(),
                page.size + 1,
                page.offset,
            )
            .await
            .map_err(Error::from)?;
        let (found, next_page_token) = aip::split_page(found, page, &fingerprint);
        let results = found
            .into_iter()
            .map(|found| SearchResult {
                note: Some(to_proto(&found.note)),
                rank: f64::from(found.rank),
                snippet: found.snippet,
            })
            .collect();
        Ok(Response::new(SearchNotesResponse {
            results,
            next_page_token,
        }))
    }

    async fn list_linked_notes(
        &self,
        request: Request<ListLinkedNotesRequest>,
    ) -> Result<Response<ListLinkedNotesResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let page = aip::page(request.page_size, &request.page_token, &request.target)?;
        match request.target.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", project, "tasks", task] if valid_id(project) && valid_uuid(task) => {}
            _ => {
                return Err(Error::invalid(
                    "target",
                    format!(
                        "`{}` is not projects/{{project}}/tasks/{{task}}",
                        request.target
                    ),
                )
                .into());
            }
        }
        let rows = self
            .store
            .linked(&context.caller, &request.target, page.size + 1, page.offset)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &request.target);
        Ok(Response::new(ListLinkedNotesResponse {
            notes: self.shown(&rows).await?,
            next_page_token,
        }))
    }

    async fn create_note_share(
        &self,
        request: Request<CreateNoteShareRequest>,
    ) -> Result<Response<NoteShare>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let note = self
            .note(&context, "parent", &request.parent, Access::Own)
            .await?;
        if !note.project_id.is_empty() {
            return Err(Error::invalid(
                "parent",
                "a project's notes follow the project's roles; only personal notes are shared",
            )
            .into());
        }
        let share = request.share.unwrap_or_default();
        if share.user == context.caller {
            return Err(Error::invalid("share.user", "a note is its owner's already").into());
        }
        let role = i16::try_from(share.role).unwrap_or_default();
        self.store
            .share(&note.note_id, &share.user, role)
            .await
            .map_err(Error::from)?;
        let user = crate::store::user_id(&share.user);
        Ok(Response::new(NoteShare {
            name: format!("{}/shares/{user}", note.name()),
            user: share.user,
            role: share.role,
            create_time: Some(taskmesh_mesh::time::now()),
        }))
    }

    async fn list_note_shares(
        &self,
        request: Request<ListNoteSharesRequest>,
    ) -> Result<Response<ListNoteSharesResponse>, Status> {
        let context = CallContext::of(&request);
        let note = self
            .note(&context, "parent", &request.get_ref().parent, Access::Own)
            .await?;
        let shares = self
            .store
            .shares(&note.note_id)
            .await
            .map_err(Error::from)?
            .into_iter()
            .map(|(user, role, since)| NoteShare {
                name: format!("{}/shares/{user}", note.name()),
                user: format!("users/{user}"),
                role: i32::from(role),
                create_time: Some(to_timestamp(since)),
            })
            .collect();
        Ok(Response::new(ListNoteSharesResponse { shares }))
    }

    async fn delete_note_share(
        &self,
        request: Request<DeleteNoteShareRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let name = &request.get_ref().name;
        let (note_name, user) = name
            .rsplit_once("/shares/")
            .filter(|(_, user)| valid_user_id(user))
            .ok_or_else(|| {
                Error::invalid(
                    "name",
                    format!("`{name}` is not .../notes/{{note}}/shares/{{share}}"),
                )
            })?;
        let note = self.note(&context, "name", note_name, Access::Own).await?;
        let removed = self
            .store
            .unshare(&note.note_id, &format!("users/{user}"))
            .await
            .map_err(Error::from)?;
        if !removed {
            return Err(Error::from(crate::store::StoreError::NotFound(name.clone())).into());
        }
        Ok(Response::new(()))
    }

    async fn create_attachment(
        &self,
        request: Request<Streaming<CreateAttachmentRequest>>,
    ) -> Result<Response<Attachment>, Status> {
        self.create_attachment_from(request).await
    }

    async fn get_attachment(
        &self,
        request: Request<GetAttachmentRequest>,
    ) -> Result<Response<Attachment>, Status> {
        self.get_attachment_of(request).await
    }

    async fn list_attachments(
        &self,
        request: Request<ListAttachmentsRequest>,
    ) -> Result<Response<ListAttachmentsResponse>, Status> {
        self.list_attachments_of(request).await
    }

    type DownloadAttachmentStream = attachments::Download;

    async fn download_attachment(
        &self,
        request: Request<DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        self.download_attachment_of(request).await
    }

    async fn delete_attachment(
        &self,
        request: Request<DeleteAttachmentRequest>,
    ) -> Result<Response<()>, Status> {
        self.delete_attachment_of(request).await
    }
}
