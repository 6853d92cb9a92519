//! NoteService over gRPC on a running app (real PostgreSQL and NATS, tokens as identity issues
//! them): create and capture, reading under access rules, etags, render, search, sharing.

use taskmesh_contracts::notes_v1::note_service_client::NoteServiceClient;
use taskmesh_contracts::notes_v1::{
    CaptureNoteRequest, CreateNoteRequest, CreateNoteShareRequest, DeleteNoteShareRequest,
    GetNoteRequest, Note, NoteShare, RenderNoteRequest, SearchNotesRequest, ShareRole,
    UpdateNoteRequest,
};
use taskmesh_testing::Authed;
use tonic::Code;

use crate::helpers::World;

async fn create(
    client: &mut NoteServiceClient<Authed>,
    parent: &str,
    title: &str,
    body: &str,
) -> Note {
    client
        .create_note(CreateNoteRequest {
            parent: parent.into(),
            note: Some(Note {
                title: title.into(),
                body: body.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner()
}

#[tokio::test]
async fn notes_are_their_owners_until_shared_and_stale_writes_are_refused() {
    let world = World::new("notes_test_api").await;
    let mut ann = world.client("ann").await;
    let mut bob = world.client("bob").await;
    let note = create(
        &mut ann,
        "users/ann",
        "Plans",
        "**bold** plans <script>x</script>",
    )
    .await;
    assert!(note.name.starts_with("users/ann/notes/"));

    // Another user's notes are not theirs to add to, or to see.
    let denied = bob
        .create_note(CreateNoteRequest {
            parent: "users/ann".into(),
            note: Some(Note::default()),
            request_id: String::new(),
        })
        .await
        .expect_err("not bob's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let hidden = bob
        .get_note(GetNoteRequest {
            name: note.name.clone(),
        })
        .await
        .expect_err("not shared");
    assert_eq!(hidden.code(), Code::NotFound);

    // Shared as a viewer: readable, not writable; unshared: hidden again.
    ann.create_note_share(CreateNoteShareRequest {
        parent: note.name.clone(),
        share: Some(NoteShare {
            user: "users/bob".into(),
            role: ShareRole::Viewer as i32,
            ..Default::default()
        }),
    })
    .await
    .expect("share");
    let seen = bob
        .get_note(GetNoteRequest {
            name: note.name.clone(),
        })
        .await
        .expect("shared")
        .into_inner();
    assert_eq!(seen.title, "Plans");
    let edit = |etag: &str, title: &str| UpdateNoteRequest {
        note: Some(Note {
            name: note.name.clone(),
            title: title.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into()],
        }),
    };
    let viewer = bob
        .update_note(edit("", "Bob's"))
        .await
        .expect_err("a viewer");
    assert_eq!(viewer.code(), Code::PermissionDenied);
    let found = bob
        .search_notes(SearchNotesRequest {
            query: "plans".into(),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    assert_eq!(found.results.len(), 1);
    ann.delete_note_share(DeleteNoteShareRequest {
        name: format!("{}/shares/bob", note.name),
    })
    .await
    .expect("unshare");
    let found = bob
        .search_notes(SearchNotesRequest {
            query: "plans".into(),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    assert!(found.results.is_empty());

    // Two writers with the same etag: the second is ABORTED.
    let first = ann
        .update_note(edit(&note.etag, "First"))
        .await
        .expect("first");
    let second = ann
        .update_note(edit(&note.etag, "Second"))
        .await
        .expect_err("stale");
    assert_eq!(second.code(), Code::Aborted);
    assert_eq!(first.into_inner().title, "First");

    // Rendered: HTML without the script.
    let html = ann
        .render_note(RenderNoteRequest {
            name: note.name.clone(),
        })
        .await
        .expect("render")
        .into_inner();
    assert!(html.content_type.starts_with("text/html"));
    let text = String::from_utf8(html.data).expect("utf-8");
    assert!(text.contains("<strong>bold</strong>"), "{text}");
    assert!(!text.contains("<script"), "{text}");
}

#[tokio::test]
async fn a_capture_takes_its_title_from_the_first_line() {
    let world = World::new("notes_test_api").await;
    let mut ann = world.client("ann").await;
    let note = ann
        .capture_note(CaptureNoteRequest {
            parent: "users/ann".into(),
            body: "# Call the plumber\nabout the kitchen sink".into(),
            request_id: String::new(),
        })
        .await
        .expect("capture")
        .into_inner();
    assert_eq!(note.title, "Call the plumber");
    assert!(note.body.ends_with("kitchen sink"));
}

#[tokio::test]
async fn labels_take_any_script_but_no_ascii_space_comma_or_control() {
    let world = World::new("notes_test_api").await;
    let mut ann = world.client("ann").await;
    let with_labels = |labels: &[&str]| CreateNoteRequest {
        parent: "users/ann".into(),
        note: Some(Note {
            title: "Tagged".into(),
            labels: labels.iter().map(|label| label.to_string()).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let kept = ann
        .create_note(with_labels(&["日本語", "çà-va", "a=c", "😍", "x'\"y"]))
        .await
        .expect("labels in any script")
        .into_inner();
    assert_eq!(kept.labels.len(), 5);
    // ASCII spaces, controls and the comma, one at a time.
    for refused in [
        "a b", "a\tb", "a,b", "a\u{0}b", "a\u{1c}b", "a\u{1f}b", "a\u{7f}b",
    ] {
        let status = ann
            .create_note(with_labels(&[refused]))
            .await
            .expect_err(refused);
        assert_eq!(status.code(), Code::InvalidArgument, "{refused:?}");
    }
    let long = "é".repeat(33);
    let status = ann
        .create_note(with_labels(&[&long]))
        .await
        .expect_err("33 characters");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn lists_put_pinned_first_hide_archived_and_deleted_and_undelete_brings_back() {
    use taskmesh_contracts::notes_v1::{
        DeleteNoteRequest, ListNoteSharesRequest, ListNotesRequest, UndeleteNoteRequest,
    };
    let world = World::new("notes_test_api").await;
    let mut ann = world.client("ann").await;
    let mut bob = world.client("bob").await;
    let old = create(&mut ann, "users/ann", "Old", "").await;
    let pinned = create(&mut ann, "users/ann", "Pinned", "").await;
    let archived = create(&mut ann, "users/ann", "Archived", "").await;
    create(&mut ann, "users/ann", "Newest", "").await;
    let set = |note: &Note, path: &str| UpdateNoteRequest {
        note: Some(Note {
            name: note.name.clone(),
            pinned: true,
            archived: true,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec![path.into()],
        }),
    };
    ann.update_note(set(&pinned, "pinned")).await.expect("pin");
    ann.update_note(set(&archived, "archived"))
        .await
        .expect("archive");
    let shared = create(&mut bob, "users/bob", "Bob's shared", "").await;
    bob.create_note_share(CreateNoteShareRequest {
        parent: shared.name.clone(),
        share: Some(NoteShare {
            user: "users/ann".into(),
            role: ShareRole::Editor as i32,
            ..Default::default()
        }),
    })
    .await
    .expect("share");
    let shares = bob
        .list_note_shares(ListNoteSharesRequest {
            parent: shared.name.clone(),
        })
        .await
        .expect("shares")
        .into_inner()
        .shares;
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].user, "users/ann");
    assert_eq!(shares[0].role(), ShareRole::Editor);

    let list = |filter: &str, show_deleted: bool| ListNotesRequest {
        parent: "users/ann".into(),
        filter: filter.into(),
        show_deleted,
        ..Default::default()
    };
    let titles = |notes: Vec<Note>| notes.into_iter().map(|n| n.title).collect::<Vec<_>>();
    let listed = ann
        .list_notes(list("", false))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        titles(listed.notes),
        ["Pinned", "Bob's shared", "Newest", "Old"]
    );
    // Pages of two: the token leads to the rest, and serves no other request.
    let first = ann
        .list_notes(ListNotesRequest {
            page_size: 2,
            ..list("", false)
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(titles(first.notes), ["Pinned", "Bob's shared"]);
    let second = ann
        .list_notes(ListNotesRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..list("", false)
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(titles(second.notes), ["Newest", "Old"]);
    assert!(second.next_page_token.is_empty());
    let refused = ann
        .list_notes(ListNotesRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..list("archived = true", false)
        })
        .await
        .expect_err("a token of another request");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let only = ann
        .list_notes(list("archived = true", false))
        .await
        .expect("archived")
        .into_inner();
    assert_eq!(titles(only.notes), ["Archived"]);
    let other = bob
        .list_notes(list("", false))
        .await
        .expect_err("not bob's");
    assert_eq!(other.code(), Code::PermissionDenied);

    ann.delete_note(DeleteNoteRequest {
        name: old.name.clone(),
        etag: String::new(),
    })
    .await
    .expect("delete");
    let listed = ann
        .list_notes(list("", false))
        .await
        .expect("list")
        .into_inner();
    assert!(!titles(listed.notes).contains(&"Old".to_owned()));
    let with_deleted = ann
        .list_notes(list("", true))
        .await
        .expect("list")
        .into_inner();
    assert!(
        with_deleted
            .notes
            .iter()
            .any(|n| n.title == "Old" && n.delete_time.is_some())
    );
    let back = ann
        .undelete_note(UndeleteNoteRequest {
            name: old.name.clone(),
        })
        .await
        .expect("undelete")
        .into_inner();
    assert!(back.delete_time.is_none() && back.purge_time.is_none());
    let listed = ann
        .list_notes(list("", false))
        .await
        .expect("list")
        .into_inner();
    assert!(titles(listed.notes).contains(&"Old".to_owned()));
}
