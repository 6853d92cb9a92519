//! `CategoryService`: anyone reads the tree; only the platform's operators (`auth.operators`)
//! change it.

use taskmesh_contracts::marketplace_v1::category_service_server::CategoryService;
use taskmesh_contracts::marketplace_v1::{
    Category, CreateCategoryRequest, DeleteCategoryRequest, GetCategoryRequest,
    ListCategoriesRequest, ListCategoriesResponse, UpdateCategoryRequest,
};
use taskmesh_mesh::names::{ResourcePattern, valid_id};
use taskmesh_mesh::{CallContext, aip};
use tonic::{Request, Response, Status};

use super::category_proto;
use crate::error::Error;
use crate::store::categories::Level;
use crate::store::{Store, StoreError};

/// Serves CategoryService from the store.
#[derive(Debug, Clone)]
pub struct CategoriesService {
    store: Store,
    operators: Vec<String>,
}

impl CategoriesService {
    /// Categories in `store`, changed by `operators` (`users/{user}`).
    pub fn new(store: Store, operators: Vec<String>) -> Self {
        Self { store, operators }
    }
}

/// The id of `categories/{category}` in `field`.
fn category_id<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    let [id] = ResourcePattern::of::<Category>().parse(field, name)?;
    Ok(id)
}

#[tonic::async_trait]
impl CategoryService for CategoriesService {
    async fn create_category(
        &self,
        request: Request<CreateCategoryRequest>,
    ) -> Result<Response<Category>, Status> {
        CallContext::of(&request).require_operator(&self.operators)?;
        let request = request.into_inner();
        if !valid_id(&request.category_id) {
            return Err(Error::invalid("category_id", "must be 1 to 63 of [a-z0-9-]").into());
        }
        let category = request.category.unwrap_or_default();
        if category.display_name.trim().is_empty() {
            return Err(Error::invalid("category.display_name", "is required").into());
        }
        let parent = match category.parent.as_str() {
            "" => None,
            name => Some(category_id("category.parent", name)?),
        };
        let row = self
            .store
            .create_category(
                &request.category_id,
                parent,
                &category.display_name,
                &category.description,
            )
            .await
            .map_err(Error::from)?;
        Ok(Response::new(category_proto(&row)))
    }

    async fn get_category(
        &self,
        request: Request<GetCategoryRequest>,
    ) -> Result<Response<Category>, Status> {
        let name = request.into_inner().name;
        let id = category_id("name", &name)?;
        let row = self.store.category(id).await.map_err(Error::from)?;
        let row = row.ok_or_else(|| Error::from(StoreError::NotFound(name.clone())))?;
        Ok(Response::new(category_proto(&row)))
    }

    async fn list_categories(
        &self,
        request: Request<ListCategoriesRequest>,
    ) -> Result<Response<ListCategoriesResponse>, Status> {
        let request = request.into_inner();
        let level = match request.parent.as_str() {
            "" => Level::All,
            "-" => Level::Top,
            name => Level::ChildrenOf(category_id("parent", name)?),
        };
        let fingerprint = aip::fingerprint(&["categories", &request.parent]);
        let page =
            aip::page(request.page_size, &request.page_token, &fingerprint).map_err(Error::from)?;
        let rows = self
            .store
            .list_categories(level, page.offset, page.size + 1)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fingerprint);
        Ok(Response::new(ListCategoriesResponse {
            categories: rows.iter().map(category_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_category(
        &self,
        request: Request<UpdateCategoryRequest>,
    ) -> Result<Response<Category>, Status> {
        CallContext::of(&request).require_operator(&self.operators)?;
        let request = request.into_inner();
        let category = request.category.unwrap_or_default();
        let id = category_id("category.name", &category.name)?;
        let paths = aip::update_paths(
            request.update_mask.as_ref(),
            &["display_name", "description"],
        )
        .map_err(Error::from)?;
        let display_name = paths
            .contains(&"display_name")
            .then_some(category.display_name.as_str());
        if display_name.is_some_and(|name| name.trim().is_empty()) {
            return Err(Error::invalid("category.display_name", "is required").into());
        }
        let description = paths
            .contains(&"description")
            .then_some(category.description.as_str());
        let row = self
            .store
            .update_category(id, display_name, description)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(category_proto(&row)))
    }

    async fn delete_category(
        &self,
        request: Request<DeleteCategoryRequest>,
    ) -> Result<Response<()>, Status> {
        CallContext::of(&request).require_operator(&self.operators)?;
        let name = request.into_inner().name;
        let id = category_id("name", &name)?;
        self.store.delete_category(id).await.map_err(Error::from)?;
        Ok(Response::new(()))
    }
}
