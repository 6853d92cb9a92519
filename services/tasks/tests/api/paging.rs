//! Paging through the read model: each task exactly once, in a stable order; tokens are bound to
//! the request they came from.

use std::collections::HashSet;

use taskmesh_contracts::tasks_v1::ListTasksRequest;
use tonic::Code;

use crate::helpers::{OWNER, World, as_user, eventually, violations};

#[tokio::test]
async fn paging_100_tasks_7_at_a_time_returns_each_once_in_a_stable_order() {
    let world = World::new().await;
    let mut created = Vec::new();
    for i in 0..100 {
        created.push(world.create(&format!("Task {i:03}")).await.name);
    }
    eventually("100 tasks in the read model", || async {
        world.list_all("").await.len() == 100
    })
    .await;

    let page = |token: String| ListTasksRequest {
        parent: world.project.clone(),
        page_size: 7,
        page_token: token,
        order_by: "title desc".into(),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let response = world
            .client()
            .list_tasks(as_user(OWNER, page(token.clone())))
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(response.tasks.len() <= 7);
        seen.extend(response.tasks.into_iter().map(|t| t.title));
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    assert_eq!(pages, 15);
    assert_eq!(seen.len(), 100);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        100,
        "each task once"
    );
    let expected: Vec<String> = (0..100).rev().map(|i| format!("Task {i:03}")).collect();
    assert_eq!(seen, expected, "in the requested, stable order");

    // Same walk again gives the same sequence.
    let first_again = world
        .client()
        .list_tasks(as_user(OWNER, page(String::new())))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(
        first_again
            .tasks
            .iter()
            .map(|t| t.title.clone())
            .collect::<Vec<_>>(),
        expected[..7].to_vec()
    );

    let reused = world
        .client()
        .list_tasks(as_user(
            OWNER,
            ListTasksRequest {
                filter: "status = STATUS_TODO".into(),
                ..page(first_again.next_page_token)
            },
        ))
        .await
        .expect_err("token reused with another filter");
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(violations(&reused), vec!["page_token"]);
    assert_eq!(created.len(), 100);
}
