//! The store on a fresh database: who may read what, full-text search that never shows a note
//! to someone who cannot read it, ranking, the search syntax, snippets, etags and idempotent
//! creates.

use taskmesh_notes::store::{Access, NewNote, NoteChange, Store, StoreError, roles};
use taskmesh_testing::{Stack, TestDatabase};

async fn store() -> (Store, TestDatabase) {
    let stack = Stack::load();
    let db = TestDatabase::create(&stack, "notes_test").await;
    let pool = db.pool(&stack).await;
    let migrator = sqlx::migrate!("./migrations");
    taskmesh_mesh::db::migrate(&pool, &[&migrator])
        .await
        .expect("schema");
    (Store::new(pool), db)
}

fn note(parent: &str, title: &str, body: &str) -> NewNote {
    NewNote {
        parent: parent.to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
        ..NewNote::default()
    }
}

async fn titles(store: &Store, caller: &str, query: &str) -> Vec<String> {
    store
        .search(caller, query, None, 50, 0)
        .await
        .expect("search")
        .into_iter()
        .map(|found| found.note.title)
        .collect()
}

#[tokio::test]
async fn search_finds_only_what_the_caller_can_read() {
    let (store, _db) = store().await;
    let own = store
        .create(
            &note("users/ann", "Ann's garden", "tomato seeds"),
            "users/ann",
            None,
        )
        .await
        .expect("create");
    store
        .create(
            &note("users/bob", "Bob's garden", "tomato plants"),
            "users/bob",
            None,
        )
        .await
        .expect("create");
    let team = store
        .create(
            &note("projects/farm", "Farm plan", "tomato harvest"),
            "users/cid",
            None,
        )
        .await
        .expect("create");
    store
        .set_member("projects/farm", "users/ann", roles::VIEWER, 10)
        .await
        .expect("member");

    let mut seen = titles(&store, "users/ann", "tomato").await;
    seen.sort();
    assert_eq!(seen, ["Ann's garden", "Farm plan"]);
    assert_eq!(
        titles(&store, "users/eve", "tomato").await,
        Vec::<String>::new()
    );

    // Shared, then unshared: found only meanwhile.
    store
        .share(&own.note_id, "users/eve", 1)
        .await
        .expect("share");
    assert_eq!(
        titles(&store, "users/eve", "tomato").await,
        ["Ann's garden"]
    );
    assert_eq!(
        store.access(&own, "users/eve").await.expect("access"),
        Access::Read
    );
    assert!(
        store
            .unshare(&own.note_id, "users/eve")
            .await
            .expect("unshare")
    );
    assert_eq!(
        titles(&store, "users/eve", "tomato").await,
        Vec::<String>::new()
    );
    assert_eq!(
        store.access(&own, "users/eve").await.expect("access"),
        Access::None
    );

    // Out of the project: its notes are gone from the search.
    store
        .set_member("projects/farm", "users/ann", 0, 12)
        .await
        .expect("leave");
    // An older event (the addition, delivered again) does not bring the membership back.
    store
        .set_member("projects/farm", "users/ann", roles::VIEWER, 10)
        .await
        .expect("redelivered");
    assert_eq!(
        titles(&store, "users/ann", "tomato").await,
        ["Ann's garden"]
    );
    assert_eq!(
        store.access(&team, "users/ann").await.expect("access"),
        Access::None
    );

    // Deleted: not found, even by its owner.
    store
        .delete(&own.note_id, chrono::TimeDelta::days(30))
        .await
        .expect("delete");
    assert_eq!(
        titles(&store, "users/ann", "tomato").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_title_match_ranks_first_and_the_syntax_works() {
    let (store, _db) = store().await;
    let me = "users/ann";
    for (title, body) in [
        ("Groceries", "remember the budget for the party"),
        ("Budget", "numbers for next year"),
        ("Trip", "train to Lisbon, then the coast"),
        ("Coast walk", "Lisbon train station at nine"),
    ] {
        store
            .create(&note(me, title, body), me, None)
            .await
            .expect("create");
    }
    assert_eq!(titles(&store, me, "budget").await, ["Budget", "Groceries"]);
    // A phrase matches the words in that order only.
    assert_eq!(titles(&store, me, "\"train to Lisbon\"").await, ["Trip"]);
    let mut either = titles(&store, me, "party or numbers").await;
    either.sort();
    assert_eq!(either, ["Budget", "Groceries"]);
    assert_eq!(titles(&store, me, "lisbon -station").await, ["Trip"]);

    let found = store
        .search(me, "party", None, 10, 0)
        .await
        .expect("search");
    assert!(
        found[0].snippet.contains("<mark>party</mark>"),
        "{}",
        found[0].snippet
    );
}

#[tokio::test]
async fn snippets_cannot_smuggle_html() {
    let (store, _db) = store().await;
    let me = "users/ann";
    store
        .create(
            &note(
                me,
                "Hostile",
                "keyword <script>alert(1)</script> \u{E000}keyword\u{E001} <img onerror=x>",
            ),
            me,
            None,
        )
        .await
        .expect("create");
    let found = store
        .search(me, "keyword", None, 10, 0)
        .await
        .expect("search");
    let snippet = &found[0].snippet;
    // Besides the marks PostgreSQL set around the two real matches, no markup at all: the
    // note's tags are gone or escaped, and its forged markers are taken out.
    assert_eq!(
        snippet.matches("<mark>keyword</mark>").count(),
        2,
        "{snippet}"
    );
    let rest = snippet.replace("<mark>", "").replace("</mark>", "");
    assert!(!rest.contains('<') && !rest.contains('>'), "{snippet}");
}

#[tokio::test]
async fn a_stale_write_is_refused_and_a_repeated_create_returns_the_first_note() {
    let (store, _db) = store().await;
    let me = "users/ann";
    let request = uuid::Uuid::new_v4();
    let first = store
        .create(&note(me, "Once", ""), me, Some(request))
        .await
        .expect("create");
    let again = store
        .create(&note(me, "Twice", ""), me, Some(request))
        .await
        .expect("again");
    assert_eq!(again.note_id, first.note_id);
    assert_eq!(again.title, "Once");

    let change = |title: &str| NoteChange {
        title: Some(title.to_owned()),
        ..NoteChange::default()
    };
    let written = store
        .update(&first.note_id, &first.etag(), &change("Once more"))
        .await
        .expect("write");
    assert_ne!(written.etag(), first.etag());
    let stale = store
        .update(&first.note_id, &first.etag(), &change("Lost update"))
        .await
        .expect_err("stale");
    assert!(
        matches!(stale, StoreError::EtagMismatch { .. }),
        "{stale:?}"
    );
    let kept = store
        .note(&first.note_id)
        .await
        .expect("read")
        .expect("note");
    assert_eq!(kept.title, "Once more");
}

#[tokio::test]
async fn links_keep_their_order_are_marked_when_their_target_goes_and_list_only_to_readers() {
    let (store, _db) = store().await;
    let me = "users/ann";
    let targets = vec![
        "projects/farm/tasks/t1".to_owned(),
        "projects/farm".to_owned(),
    ];
    let linked = store
        .create(
            &NewNote {
                links: targets.clone(),
                ..note(me, "About the farm", "")
            },
            me,
            None,
        )
        .await
        .expect("create");
    let links = store
        .links_of(std::slice::from_ref(&linked.note_id))
        .await
        .expect("links");
    let got: Vec<&str> = links[&linked.note_id]
        .iter()
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(got, ["projects/farm/tasks/t1", "projects/farm"]);

    let readers = |caller: &'static str| {
        let store = store.clone();
        async move {
            store
                .linked(caller, "projects/farm/tasks/t1", 10, 0)
                .await
                .expect("linked")
                .len()
        }
    };
    assert_eq!(readers("users/ann").await, 1);
    assert_eq!(readers("users/eve").await, 0);

    // The project goes: the links to it and to its tasks are marked, not dropped.
    assert_eq!(
        store
            .set_target_deleted("projects/farm", true, 10)
            .await
            .expect("break"),
        2
    );
    let links = store
        .links_of(std::slice::from_ref(&linked.note_id))
        .await
        .expect("links");
    assert!(
        links[&linked.note_id]
            .iter()
            .all(|(_, broken)| broken.is_some())
    );

    // An update that keeps one target keeps its mark and drops the other.
    store
        .update(
            &linked.note_id,
            "",
            &NoteChange {
                links: Some(vec!["projects/farm".to_owned()]),
                ..NoteChange::default()
            },
        )
        .await
        .expect("update");
    let links = store
        .links_of(std::slice::from_ref(&linked.note_id))
        .await
        .expect("links");
    assert_eq!(links[&linked.note_id].len(), 1);
    assert!(links[&linked.note_id][0].1.is_some());
}

#[tokio::test]
async fn link_marks_follow_the_events_in_stream_order() {
    let (store, _db) = store().await;
    let task = "projects/farm/tasks/0190c0de00007000800000000000000a";
    let new = NewNote {
        links: vec![task.to_owned(), "projects/barn".to_owned()],
        ..note("users/ann", "Harvest", "")
    };
    let made = store.create(&new, "users/ann", None).await.expect("create");
    let broken = |store: Store, id: String| async move {
        let links = store
            .links_of(std::slice::from_ref(&id))
            .await
            .expect("links");
        links[&id]
            .iter()
            .map(|(target, broken)| (target.clone(), broken.is_some()))
            .collect::<Vec<_>>()
    };
    let id = made.note_id.clone();
    let at = |marks: [bool; 2]| {
        vec![
            (task.to_owned(), marks[0]),
            ("projects/barn".to_owned(), marks[1]),
        ]
    };

    // The task deleted (5), back (7); the deletion delivered again late changes nothing.
    assert_eq!(
        store
            .set_target_deleted(task, true, 5)
            .await
            .expect("delete"),
        1
    );
    assert_eq!(broken(store.clone(), id.clone()).await, at([true, false]));
    store
        .set_target_deleted(task, false, 7)
        .await
        .expect("undelete");
    assert_eq!(broken(store.clone(), id.clone()).await, at([false, false]));
    assert_eq!(
        store
            .set_target_deleted(task, true, 5)
            .await
            .expect("again"),
        0
    );
    assert_eq!(broken(store.clone(), id.clone()).await, at([false, false]));

    // The task's project deleted: the task's link breaks; the project back: it mends, unless the
    // task itself is deleted meanwhile.
    store
        .set_target_deleted("projects/farm", true, 3)
        .await
        .expect("project");
    assert_eq!(broken(store.clone(), id.clone()).await, at([true, false]));
    store.set_target_deleted(task, true, 8).await.expect("task");
    store
        .set_target_deleted("projects/farm", false, 4)
        .await
        .expect("project back");
    assert_eq!(broken(store.clone(), id.clone()).await, at([true, false]));
    store
        .set_target_deleted(task, false, 9)
        .await
        .expect("task back");
    assert_eq!(broken(store.clone(), id.clone()).await, at([false, false]));
    store
        .set_target_deleted("projects/barn", true, 11)
        .await
        .expect("barn");
    assert_eq!(broken(store, id).await, at([false, true]));
}
