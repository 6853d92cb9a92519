//! Attachments of NoteService: uploads streamed into the store chunk by chunk (the type sniffed
//! from the first bytes and held against the allow-list, the size against the limit), downloads
//! streamed out of it one chunk at a time. Neither holds a whole file.

use std::collections::HashMap;

use taskmesh_contracts::google::api::HttpBody;
use taskmesh_contracts::notes_v1::{
    Attachment, CreateAttachmentRequest, DeleteAttachmentRequest, DownloadAttachmentRequest,
    GetAttachmentRequest, ListAttachmentsRequest, ListAttachmentsResponse,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::status;
use taskmesh_mesh::time::to_timestamp;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};
use uuid::Uuid;

use super::access::note_name;
use super::{NotesService, request_id};
use crate::config::AttachmentSettings;
use crate::domain::sniff;
use crate::error::Error;
use crate::store::attachments::{AttachmentRow, Begun, Upload};
use crate::store::{Access, NoteRow, Store, StoreError};

/// Bytes per stored chunk (and per downloaded message).
pub(super) const CHUNK: usize = 256 * 1024;

/// The stream DownloadAttachment answers with.
pub(super) type Download = ReceiverStream<Result<HttpBody, Status>>;

/// As the API shows a stored attachment of `note`.
fn to_proto(note: &NoteRow, row: &AttachmentRow) -> Attachment {
    Attachment {
        name: format!("{}/attachments/{}", note.name(), row.attachment_id.simple()),
        filename: row.filename.clone(),
        content_type: row.content_type.clone(),
        size_bytes: row.size_bytes,
        sha256: row.sha256.clone(),
        creator: row.creator.clone(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}

/// `(note name, attachment id)` of `.../notes/{note}/attachments/{attachment}`.
fn attachment_name<'a>(field: &str, name: &'a str) -> Result<(&'a str, Uuid), Error> {
    let wrong = || {
        Error::invalid(
            field,
            format!("`{name}` is not {{note}}/attachments/{{attachment}}"),
        )
    };
    let (note, id) = name.rsplit_once("/attachments/").ok_or_else(wrong)?;
    note_name(field, note).map_err(|_| wrong())?;
    let id = Uuid::try_parse(id).map_err(|_| wrong())?;
    Ok((note, id))
}

fn too_large(max: u64) -> Status {
    status::with_reason(
        Code::ResourceExhausted,
        format!("the file is larger than the limit of {max} bytes"),
        "PAYLOAD_TOO_LARGE",
        HashMap::from([("limit_bytes".to_owned(), max.to_string())]),
    )
}

/// Reads what is left of an upload answered early (at most `cap` bytes), so an HTTP client
/// still sending its body hears the answer instead of a broken connection.
async fn drain(stream: &mut Streaming<CreateAttachmentRequest>, cap: u64) {
    let mut read = 0u64;
    while read <= cap {
        match stream.message().await {
            Ok(Some(message)) => {
                read += message.content.map_or(0, |c| c.data.len() as u64);
            }
            _ => return,
        }
    }
}

impl NotesService {
    pub(super) async fn create_attachment_from(
        &self,
        request: Request<Streaming<CreateAttachmentRequest>>,
    ) -> Result<Response<Attachment>, Status> {
        let context = CallContext::of(&request);
        let mut stream = request.into_inner();
        let limits = &self.attachments;
        let result = self.upload(&context, &mut stream, limits).await;
        // A refusal, or a repeated request answered from the first: what the client still sends
        // is read and dropped. (After a whole upload the stream is over and this returns at once.)
        drain(&mut stream, limits.max_bytes.saturating_mul(2)).await;
        result.map(Response::new)
    }

    async fn upload(
        &self,
        context: &CallContext,
        stream: &mut Streaming<CreateAttachmentRequest>,
        limits: &AttachmentSettings,
    ) -> Result<Attachment, Status> {
        let first = stream
            .message()
            .await?
            .ok_or_else(|| status::required("parent"))?;
        if first.parent.is_empty() {
            return Err(status::required("parent"));
        }
        let key = request_id(&first.request_id)?;
        let note = self
            .note(context, "parent", &first.parent, Access::Write)
            .await?;
        if note.delete_time.is_some() {
            return Err(Status::failed_precondition(format!(
                "{} is deleted; undelete it first",
                note.name()
            )));
        }
        let store: &Store = &self.store;
        if store
            .attachment_count(&note.note_id)
            .await
            .map_err(Error::from)?
            >= limits.max_per_note
        {
            return Err(Status::failed_precondition(format!(
                "{} already has {} attachments, the most a note may have",
                note.name(),
                limits.max_per_note
            )));
        }
        let filename = sniff::filename(&first.filename);
        let upload = match store
            .begin_upload(&note.note_id, &filename, &context.caller, key)
            .await
            .map_err(Error::from)?
        {
            Begun::Done(row) => return Ok(to_proto(&note, &row)),
            Begun::New(upload) => upload,
        };
        let data = first.content.map(|c| c.data).unwrap_or_default();
        let row = receive(*upload, data, stream, &first.parent, limits).await?;
        Ok(to_proto(&note, &row))
    }

    pub(super) async fn get_attachment_of(
        &self,
        request: Request<GetAttachmentRequest>,
    ) -> Result<Response<Attachment>, Status> {
        let context = CallContext::of(&request);
        let (note, row) = self
            .attachment(&context, &request.get_ref().name, Access::Read)
            .await?;
        Ok(Response::new(to_proto(&note, &row)))
    }

    pub(super) async fn list_attachments_of(
        &self,
        request: Request<ListAttachmentsRequest>,
    ) -> Result<Response<ListAttachmentsResponse>, Status> {
        let context = CallContext::of(&request);
        let note = self
            .note(&context, "parent", &request.get_ref().parent, Access::Read)
            .await?;
        let rows = self
            .store
            .attachments(&note.note_id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(ListAttachmentsResponse {
            attachments: rows.iter().map(|row| to_proto(&note, row)).collect(),
        }))
    }

    pub(super) async fn download_attachment_of(
        &self,
        request: Request<DownloadAttachmentRequest>,
    ) -> Result<Response<Download>, Status> {
        let context = CallContext::of(&request);
        let (_, row) = self
            .attachment(&context, &request.get_ref().name, Access::Read)
            .await?;
        // Two chunks in flight at most: a slow reader holds little memory and no connection.
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut seq = 0;
            loop {
                let message = match store.chunk(row.attachment_id, seq).await {
                    Ok(Some(data)) => Ok(HttpBody {
                        content_type: if seq == 0 {
                            row.content_type.clone()
                        } else {
                            String::new()
                        },
                        data,
                        extensions: Vec::new(),
                    }),
                    Ok(None) if seq == 0 => Ok(HttpBody {
                        content_type: row.content_type.clone(),
                        data: Vec::new(),
                        extensions: Vec::new(),
                    }),
                    Ok(None) => return,
                    Err(err) => Err(Status::from(Error::from(err))),
                };
                let failed = message.is_err();
                if sender.send(message).await.is_err() || failed {
                    return;
                }
                seq += 1;
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    pub(super) async fn delete_attachment_of(
        &self,
        request: Request<DeleteAttachmentRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let name = &request.get_ref().name;
        let (note, row) = self.attachment(&context, name, Access::Write).await?;
        if !self
            .store
            .delete_attachment(&note.note_id, row.attachment_id)
            .await
            .map_err(Error::from)?
        {
            return Err(status::not_found(name));
        }
        Ok(Response::new(()))
    }

    /// The attachment `name` and its note, when the caller may do at least `needed` with the
    /// note.
    async fn attachment(
        &self,
        context: &CallContext,
        name: &str,
        needed: Access,
    ) -> Result<(NoteRow, AttachmentRow), Status> {
        let (note_name, id) = attachment_name("name", name)?;
        let note = self.note(context, "name", note_name, needed).await?;
        let row = self
            .store
            .attachment(&note.note_id, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::from(StoreError::NotFound(name.to_owned())))?;
        Ok((note, row))
    }
}

/// Receives the rest of an upload that began with `data`, appending full chunks as they fill.
async fn receive(
    mut upload: Upload,
    data: Vec<u8>,
    stream: &mut Streaming<CreateAttachmentRequest>,
    parent: &str,
    limits: &AttachmentSettings,
) -> Result<AttachmentRow, Status> {
    let mut buffer = Vec::with_capacity(CHUNK + data.len());
    let mut content_type: Option<&'static str> = None;
    let mut total = 0u64;
    let mut next = Some(data);
    while let Some(data) = next.take() {
        total += data.len() as u64;
        if total > limits.max_bytes {
            return Err(too_large(limits.max_bytes));
        }
        buffer.extend_from_slice(&data);
        drop(data);
        if content_type.is_none() && buffer.len() >= sniff::HEAD {
            content_type = Some(allowed(&buffer[..sniff::HEAD], limits)?);
        }
        while content_type.is_some() && buffer.len() >= CHUNK {
            let rest = buffer.split_off(CHUNK);
            upload.append(&buffer).await.map_err(Error::from)?;
            buffer = rest;
            buffer.reserve(CHUNK.saturating_sub(buffer.len()));
        }
        if let Some(message) = stream.message().await? {
            if !message.parent.is_empty() && message.parent != parent {
                return Err(status::invalid_field(
                    "parent",
                    "every message of an upload names the same note",
                ));
            }
            next = Some(message.content.map(|c| c.data).unwrap_or_default());
        }
    }
    let content_type = match content_type {
        Some(known) => known,
        None => allowed(&buffer, limits)?,
    };
    upload.append(&buffer).await.map_err(Error::from)?;
    Ok(upload.finish(content_type).await.map_err(Error::from)?)
}

/// The sniffed type of a file starting with `head`, if the allow-list has it.
fn allowed(head: &[u8], limits: &AttachmentSettings) -> Result<&'static str, Status> {
    let sniffed = sniff::content_type(head);
    if limits.allowed_types.iter().any(|t| t == sniffed) {
        Ok(sniffed)
    } else {
        Err(status::invalid_field(
            "content",
            format!("files of type {sniffed} may not be attached"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_parse() {
        let id = Uuid::now_v7();
        let name = format!("users/u1/notes/n1/attachments/{}", id.simple());
        let (note, parsed) = attachment_name("name", &name).expect("valid");
        assert_eq!((note, parsed), ("users/u1/notes/n1", id));
        for wrong in [
            "users/u1/notes/n1",
            "users/u1/notes/n1/attachments/",
            "users/u1/notes/n1/attachments/not-a-uuid",
            "tasks/t/attachments/0190c0de00007000800000000000000a",
        ] {
            assert!(attachment_name("name", wrong).is_err(), "{wrong}");
        }
    }
}
