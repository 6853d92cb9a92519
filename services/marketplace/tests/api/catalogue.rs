//! Providers, categories and listings over gRPC: who may see and change what, etags, request ids,
//! soft delete.

use taskmesh_contracts::marketplace_v1::{
    Category, CreateCategoryRequest, CreateListingRequest, CreateProviderRequest,
    DeleteCategoryRequest, DeleteListingRequest, GetListingRequest, GetProviderRequest,
    ListCategoriesRequest, ListListingsRequest, Provider, UndeleteListingRequest,
    UpdateListingRequest, UpdateProviderRequest, listing::State,
};
use tonic::Code;

use crate::helpers::{OPERATOR, World, category, listing, new_listing, provider};

fn mask(path: &str) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: vec![path.into()],
    })
}

#[tokio::test]
async fn providers_are_their_users_and_private_ones_stay_hidden() {
    let world = World::new("marketplace_test_catalogue").await;
    let mut ann = world.as_user("ann").await;
    let mut bob = world.as_user("bob").await;
    let made = provider(&mut ann, false).await;
    assert_eq!(made.name, "providers/ann");
    assert_eq!(made.user, "users/ann");
    let again = ann
        .providers
        .create_provider(CreateProviderRequest {
            provider: Some(Provider {
                display_name: "Twice".into(),
                time_zone: "UTC".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("one provider per user");
    assert_eq!(again.code(), Code::AlreadyExists);
    let zone = bob
        .providers
        .create_provider(CreateProviderRequest {
            provider: Some(Provider {
                display_name: "Bob".into(),
                time_zone: "Mars/Olympus".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown zone");
    assert_eq!(zone.code(), Code::InvalidArgument);

    let get = |name: &str| GetProviderRequest { name: name.into() };
    let hidden = bob
        .providers
        .get_provider(get("providers/ann"))
        .await
        .expect_err("private");
    assert_eq!(hidden.code(), Code::NotFound);
    let denied = bob
        .providers
        .update_provider(UpdateProviderRequest {
            provider: Some(Provider {
                name: "providers/ann".into(),
                public: true,
                ..Default::default()
            }),
            update_mask: mask("public"),
        })
        .await
        .expect_err("not bob's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let public = ann
        .providers
        .update_provider(UpdateProviderRequest {
            provider: Some(Provider {
                name: "providers/ann".into(),
                public: true,
                etag: made.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask("public"),
        })
        .await
        .expect("publish the profile")
        .into_inner();
    assert!(public.public);
    assert_eq!(
        public.display_name, "Ann's studio",
        "only the masked field changes"
    );
    let stale = ann
        .providers
        .update_provider(UpdateProviderRequest {
            provider: Some(Provider {
                name: "providers/ann".into(),
                description: "late".into(),
                etag: made.etag,
                ..Default::default()
            }),
            update_mask: mask("description"),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    bob.providers
        .get_provider(get("providers/ann"))
        .await
        .expect("public now");
}

#[tokio::test]
async fn only_operators_shape_the_tree_and_a_used_category_stays() {
    let world = World::new("marketplace_test_catalogue").await;
    let mut operator = world.as_user(OPERATOR).await;
    let mut ann = world.as_user("ann").await;
    let denied = ann
        .categories
        .create_category(CreateCategoryRequest {
            category_id: "cooking".into(),
            category: Some(Category {
                display_name: "Cooking".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("not an operator");
    assert_eq!(denied.code(), Code::PermissionDenied);
    category(&mut operator, "home", "").await;
    let child = category(&mut operator, "cleaning", "categories/home").await;
    assert_eq!(child.parent, "categories/home");
    let orphan = operator
        .categories
        .create_category(CreateCategoryRequest {
            category_id: "lost".into(),
            category: Some(Category {
                display_name: "Lost".into(),
                parent: "categories/nowhere".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown parent");
    assert_eq!(orphan.code(), Code::NotFound);
    let top = ann
        .categories
        .list_categories(ListCategoriesRequest {
            parent: "-".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(top.categories.len(), 1);
    let delete = |name: &str| DeleteCategoryRequest { name: name.into() };
    let in_use = operator
        .categories
        .delete_category(delete("categories/home"))
        .await
        .expect_err("has a child");
    assert_eq!(in_use.code(), Code::FailedPrecondition);
    provider(&mut ann, true).await;
    listing(
        &mut ann,
        "providers/ann",
        new_listing("Deep clean", "categories/cleaning", 90),
    )
    .await;
    let in_use = operator
        .categories
        .delete_category(delete("categories/cleaning"))
        .await
        .expect_err("has a listing");
    assert_eq!(in_use.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn listings_show_to_others_only_when_published_and_their_provider_is_public() {
    let world = World::new("marketplace_test_catalogue").await;
    let mut operator = world.as_user(OPERATOR).await;
    let mut ann = world.as_user("ann").await;
    let mut bob = world.as_user("bob").await;
    category(&mut operator, "music", "").await;
    provider(&mut ann, true).await;
    let draft = listing(
        &mut ann,
        "providers/ann",
        taskmesh_contracts::marketplace_v1::Listing {
            state: State::Draft as i32,
            ..new_listing("Piano lessons", "categories/music", 40)
        },
    )
    .await;
    let get = |name: &str| GetListingRequest { name: name.into() };
    let hidden = bob
        .listings
        .get_listing(get(&draft.name))
        .await
        .expect_err("a draft");
    assert_eq!(hidden.code(), Code::NotFound);
    let foreign = bob
        .listings
        .create_listing(CreateListingRequest {
            parent: "providers/ann".into(),
            listing: Some(new_listing("Fake", "categories/music", 1)),
            request_id: String::new(),
        })
        .await
        .expect_err("not bob's provider");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    let published = ann
        .listings
        .update_listing(UpdateListingRequest {
            listing: Some(taskmesh_contracts::marketplace_v1::Listing {
                name: draft.name.clone(),
                state: State::Published as i32,
                etag: draft.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask("state"),
        })
        .await
        .expect("publish")
        .into_inner();
    assert_eq!(published.title, "Piano lessons");
    bob.listings
        .get_listing(get(&draft.name))
        .await
        .expect("published");
    let list = |parent: &str| ListListingsRequest {
        parent: parent.into(),
        ..Default::default()
    };
    assert_eq!(
        bob.listings
            .list_listings(list("providers/ann"))
            .await
            .expect("list")
            .into_inner()
            .listings
            .len(),
        1
    );
    // The provider goes private: its listings go with it.
    ann.providers
        .update_provider(UpdateProviderRequest {
            provider: Some(Provider {
                name: "providers/ann".into(),
                public: false,
                ..Default::default()
            }),
            update_mask: mask("public"),
        })
        .await
        .expect("go private");
    let gone = bob
        .listings
        .get_listing(get(&draft.name))
        .await
        .expect_err("private provider");
    assert_eq!(gone.code(), Code::NotFound);

    // A request id makes one listing; delete and undelete.
    let request_id = uuid::Uuid::new_v4().to_string();
    let create = || CreateListingRequest {
        parent: "providers/ann".into(),
        listing: Some(new_listing("Guitar", "categories/music", 35)),
        request_id: request_id.clone(),
    };
    let first = ann
        .listings
        .create_listing(create())
        .await
        .expect("create")
        .into_inner();
    let second = ann
        .listings
        .create_listing(create())
        .await
        .expect("again")
        .into_inner();
    assert_eq!(first.name, second.name);
    let deleted = ann
        .listings
        .delete_listing(DeleteListingRequest {
            name: first.name.clone(),
            etag: first.etag.clone(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.delete_time.is_some());
    let mine = ann
        .listings
        .list_listings(list("providers/ann"))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(mine.listings.len(), 1, "the deleted one is left out");
    let back = ann
        .listings
        .undelete_listing(UndeleteListingRequest {
            name: first.name.clone(),
        })
        .await
        .expect("undelete")
        .into_inner();
    assert!(back.delete_time.is_none());
}
