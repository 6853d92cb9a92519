//! Attachments over gRPC on a running app: uploads in many messages come back whole with their
//! checksum, a repeated request id attaches once, a broken-off upload leaves nothing, limits and
//! the allow-list refuse, and access follows the note (viewers download, strangers see nothing).
//! The purge takes a deleted note's files with it.

use sha2::{Digest, Sha256};
use taskmesh_contracts::google::api::HttpBody;
use taskmesh_contracts::notes_v1::note_service_client::NoteServiceClient;
use taskmesh_contracts::notes_v1::{
    Attachment, CreateAttachmentRequest, CreateNoteRequest, CreateNoteShareRequest,
    DeleteAttachmentRequest, DeleteNoteRequest, DownloadAttachmentRequest, GetNoteRequest,
    ListAttachmentsRequest, Note, NoteShare, ShareRole,
};
use taskmesh_testing::Authed;
use tonic::Code;

use crate::helpers::World;

/// The app with small limits, so the tests can pass them.
async fn world() -> World {
    World::with("notes_test_files", |layers| {
        layers
            .set("attachments.max_bytes", 1024 * 1024)
            .set("attachments.max_per_note", 3)
    })
    .await
}

async fn note(client: &mut NoteServiceClient<Authed>, parent: &str) -> Note {
    client
        .create_note(CreateNoteRequest {
            parent: parent.into(),
            note: Some(Note {
                title: "Receipts".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner()
}

/// The messages of an upload of `bytes` to `parent` in pieces of `piece` bytes.
fn messages(
    parent: &str,
    bytes: &[u8],
    piece: usize,
    request_id: &str,
) -> Vec<CreateAttachmentRequest> {
    let mut all = vec![CreateAttachmentRequest {
        parent: parent.into(),
        filename: "../scans/receipt.pdf".into(),
        content: Some(HttpBody {
            content_type: "application/pdf".into(),
            ..Default::default()
        }),
        request_id: request_id.into(),
    }];
    all.extend(bytes.chunks(piece).map(|data| CreateAttachmentRequest {
        content: Some(HttpBody {
            data: data.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }));
    all
}

fn pdf_of(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut i = 0u32;
    while bytes.len() < len {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((i >> 16) as u8);
    }
    bytes.truncate(len);
    bytes
}

async fn upload(
    client: &mut NoteServiceClient<Authed>,
    messages: Vec<CreateAttachmentRequest>,
) -> Result<Attachment, tonic::Status> {
    client
        .create_attachment(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

async fn download(
    client: &mut NoteServiceClient<Authed>,
    name: &str,
) -> Result<(String, Vec<u8>, usize), tonic::Status> {
    let mut stream = client
        .download_attachment(DownloadAttachmentRequest { name: name.into() })
        .await?
        .into_inner();
    let (mut content_type, mut bytes, mut count) = (String::new(), Vec::new(), 0);
    while let Some(message) = stream.message().await? {
        if count == 0 {
            content_type = message.content_type;
        }
        bytes.extend_from_slice(&message.data);
        count += 1;
    }
    Ok((content_type, bytes, count))
}

#[tokio::test]
async fn files_go_up_in_pieces_and_come_back_whole() {
    let world = world().await;
    let mut ada = world.client("ada").await;
    let note = note(&mut ada, "users/ada").await;
    let file = pdf_of(700 * 1024 + 13);
    // Odd piece sizes: stored chunks do not follow the messages.
    let made = upload(&mut ada, messages(&note.name, &file, 33_333, ""))
        .await
        .expect("upload");
    assert_eq!(made.filename, "receipt.pdf", "no path survives");
    assert_eq!(made.content_type, "application/pdf");
    assert_eq!(made.size_bytes, file.len() as i64);
    assert_eq!(made.sha256, hex::encode(Sha256::digest(&file)));
    assert!(
        made.name
            .starts_with(&format!("{}/attachments/", note.name))
    );
    let (content_type, bytes, messages_count) =
        download(&mut ada, &made.name).await.expect("download");
    assert_eq!(content_type, "application/pdf");
    assert!(bytes == file, "byte-identical");
    assert_eq!(messages_count, 3, "256 KiB per message");
    let shown = ada
        .get_note(GetNoteRequest {
            name: note.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(shown.attachment_count, 1);

    // The same request id attaches once.
    let key = "0b5e1f3c-2b7a-4c1e-9f00-5d2a7c9e8b41";
    let first = upload(&mut ada, messages(&note.name, &pdf_of(1000), 500, key))
        .await
        .expect("upload");
    let again = upload(&mut ada, messages(&note.name, &pdf_of(1000), 500, key))
        .await
        .expect("again");
    assert_eq!(first.name, again.name);
    let listed = ada
        .list_attachments(ListAttachmentsRequest {
            parent: note.name.clone(),
        })
        .await
        .expect("list")
        .into_inner()
        .attachments;
    assert_eq!(listed.len(), 2, "{listed:?}");

    // Refusals: too large, a type off the list, a second note named mid-stream, the note's limit.
    let refused = upload(
        &mut ada,
        messages(&note.name, &pdf_of(1024 * 1024 + 1), 65_536, ""),
    )
    .await
    .expect_err("too large");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let refused = upload(
        &mut ada,
        messages(&note.name, b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", 4, ""),
    )
    .await
    .expect_err("an executable");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let mut mixed = messages(&note.name, &pdf_of(20_000), 10_000, "");
    mixed[2].parent = "users/ada/notes/another".into();
    let refused = upload(&mut ada, mixed).await.expect_err("two notes");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    upload(&mut ada, messages(&note.name, &pdf_of(100), 100, ""))
        .await
        .expect("the third");
    let refused = upload(&mut ada, messages(&note.name, &pdf_of(100), 100, ""))
        .await
        .expect_err("a fourth");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let listed = ada
        .list_attachments(ListAttachmentsRequest {
            parent: note.name.clone(),
        })
        .await
        .expect("list")
        .into_inner()
        .attachments;
    assert_eq!(listed.len(), 3, "refusals keep nothing");

    // Deleting one makes room and takes its bytes.
    ada.delete_attachment(DeleteAttachmentRequest {
        name: made.name.clone(),
    })
    .await
    .expect("delete");
    let gone = download(&mut ada, &made.name).await.expect_err("gone");
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn access_follows_the_note_and_a_broken_upload_leaves_nothing() {
    let world = world().await;
    let mut ada = world.client("ada").await;
    let mut bob = world.client("bob").await;
    let mut eve = world.client("eve").await;
    let note = note(&mut ada, "users/ada").await;
    let made = upload(&mut ada, messages(&note.name, &pdf_of(5000), 1000, ""))
        .await
        .expect("upload");
    ada.create_note_share(CreateNoteShareRequest {
        parent: note.name.clone(),
        share: Some(NoteShare {
            user: "users/bob".into(),
            role: ShareRole::Viewer.into(),
            ..Default::default()
        }),
    })
    .await
    .expect("share");
    let (_, bytes, _) = download(&mut bob, &made.name)
        .await
        .expect("a viewer downloads");
    assert_eq!(bytes.len(), 5000);
    let refused = upload(&mut bob, messages(&note.name, &pdf_of(100), 100, ""))
        .await
        .expect_err("a viewer cannot attach");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let hidden = download(&mut eve, &made.name)
        .await
        .expect_err("a stranger");
    assert_eq!(hidden.code(), Code::NotFound);
    let hidden = upload(&mut eve, messages(&note.name, &pdf_of(100), 100, ""))
        .await
        .expect_err("a stranger");
    assert_eq!(hidden.code(), Code::NotFound);

    // An upload that stops mid-file is not kept: the client goes away without ending its stream
    // (as the gateway does when an HTTP body breaks off), and the call's deadline passes.
    let (sender, receiver) = tokio::sync::mpsc::channel(8);
    let mut call_client = ada.clone();
    let call = tokio::spawn(async move {
        let mut request =
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        request.set_timeout(std::time::Duration::from_millis(1500));
        call_client.create_attachment(request).await
    });
    for message in messages(&note.name, &pdf_of(600 * 1024), 64 * 1024, "")
        .into_iter()
        .take(6)
    {
        sender.send(message).await.expect("send");
    }
    let ended = call.await.expect("the call task");
    assert_eq!(
        ended.expect_err("never ended").code(),
        Code::DeadlineExceeded
    );
    let listed = ada
        .list_attachments(ListAttachmentsRequest {
            parent: note.name.clone(),
        })
        .await
        .expect("list")
        .into_inner()
        .attachments;
    assert_eq!(listed.len(), 1, "only the whole upload: {listed:?}");
    drop(sender);

    // The purge of a deleted note takes its files' bytes.
    ada.delete_note(DeleteNoteRequest {
        name: note.name.clone(),
        etag: String::new(),
    })
    .await
    .expect("delete");
    let pool = world.db.pool(&world.stack).await;
    let chunks = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM attachment_chunks")
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    assert!(chunks(pool.clone()).await > 0);
    sqlx::query("UPDATE notes SET purge_time = now() - interval '1 second'")
        .execute(&pool)
        .await
        .expect("due now");
    let store = taskmesh_notes::store::Store::new(pool.clone());
    assert_eq!(store.purge_due(100).await.expect("purge"), 1);
    assert_eq!(
        chunks(pool.clone()).await,
        0,
        "the bytes went with the note"
    );
    let gone = ada
        .get_note(GetNoteRequest {
            name: note.name.clone(),
        })
        .await
        .expect_err("purged");
    assert_eq!(gone.code(), Code::NotFound);
}
