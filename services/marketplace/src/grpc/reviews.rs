//! `ReviewService`: the customer of a completed booking reviews its listing once; the review can
//! change or go until its edit deadline, by its author only. Reviews are read by whoever may see
//! the listing.

use taskmesh_contracts::marketplace_v1::review_service_server::ReviewService;
use taskmesh_contracts::marketplace_v1::{
    CreateReviewRequest, DeleteReviewRequest, GetReviewRequest, ListReviewsRequest,
    ListReviewsResponse, Listing, Review, ReviewAdded, ReviewDeleted, ReviewUpdated,
    UpdateReviewRequest,
};
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::{CallContext, aip};
use tonic::{Request, Response, Status};

use super::{ListingsService, review_proto, tally_rating};
use crate::error::{Error, reasons};
use crate::store::reviews::{NewReview, ReviewRow};
use crate::store::{Store, StoreError};

/// Serves ReviewService from the store.
#[derive(Debug, Clone)]
pub struct ReviewsService {
    store: Store,
    listings: ListingsService,
    edit_window: chrono::TimeDelta,
}

impl ReviewsService {
    /// Reviews in `store`, changeable by their authors for `edit_window`.
    pub fn new(store: Store, edit_window: chrono::TimeDelta) -> Self {
        Self {
            listings: ListingsService::new(store.clone()),
            store,
            edit_window,
        }
    }

    /// The review `name`, when the caller may see its listing.
    async fn visible(&self, caller: &str, name: &str) -> Result<ReviewRow, Error> {
        let [provider_id, listing_id, review_id] =
            ResourcePattern::of::<Review>().parse("name", name)?;
        let listing = format!("providers/{provider_id}/listings/{listing_id}");
        self.listings.visible(caller, "name", &listing).await?;
        self.store
            .review((provider_id, listing_id), review_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()).into())
    }

    /// The review `name` when the caller wrote it and may still change it.
    async fn changeable(&self, caller: &str, name: &str) -> Result<ReviewRow, Error> {
        let row = self.visible(caller, name).await?;
        if row.author != caller {
            return Err(Error::Denied(
                "only its author may change a review".to_owned(),
            ));
        }
        if chrono::Utc::now() > row.edit_deadline {
            return Err(Error::precondition(
                reasons::REVIEW_LOCKED,
                format!("{name} can no longer be changed (its edit deadline has passed)"),
            ));
        }
        Ok(row)
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewsService {
    async fn create_review(
        &self,
        request: Request<CreateReviewRequest>,
    ) -> Result<Response<Review>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [provider_id, listing_id] = ResourcePattern::of::<Listing>()
            .parse("parent", &request.parent)
            .map_err(Error::from)?;
        self.listings
            .visible(&context.caller, "parent", &request.parent)
            .await?;
        let review = request.review.unwrap_or_default();
        if review.booking.is_empty() {
            return Err(Error::invalid("review.booking", "is required").into());
        }
        let rating = i16::try_from(review.rating)
            .ok()
            .filter(|r| (1..=5).contains(r))
            .ok_or_else(|| Error::invalid("review.rating", "must be 1 to 5"))?;
        let new = NewReview {
            listing: (provider_id.to_owned(), listing_id.to_owned()),
            booking: review.booking,
            author: context.caller.clone(),
            rating,
            comment: review.comment,
            edit_deadline: chrono::Utc::now() + self.edit_window,
        };
        let (row, _) = self
            .store
            .create_review(&context, &new, &|row, tally| ReviewAdded {
                review: Some(review_proto(row)),
                listing_rating: Some(tally_rating(tally)),
            })
            .await
            .map_err(Error::from)?;
        Ok(Response::new(review_proto(&row)))
    }

    async fn get_review(
        &self,
        request: Request<GetReviewRequest>,
    ) -> Result<Response<Review>, Status> {
        let context = CallContext::of(&request);
        let row = self
            .visible(&context.caller, &request.into_inner().name)
            .await?;
        Ok(Response::new(review_proto(&row)))
    }

    async fn list_reviews(
        &self,
        request: Request<ListReviewsRequest>,
    ) -> Result<Response<ListReviewsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [provider_id, listing_id] = ResourcePattern::of::<Listing>()
            .parse("parent", &request.parent)
            .map_err(Error::from)?;
        self.listings
            .visible(&context.caller, "parent", &request.parent)
            .await?;
        let fingerprint = aip::fingerprint(&[&request.parent]);
        let page =
            aip::page(request.page_size, &request.page_token, &fingerprint).map_err(Error::from)?;
        let rows = self
            .store
            .list_reviews((provider_id, listing_id), page.offset, page.size + 1)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fingerprint);
        Ok(Response::new(ListReviewsResponse {
            reviews: rows.iter().map(review_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_review(
        &self,
        request: Request<UpdateReviewRequest>,
    ) -> Result<Response<Review>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let review = request.review.unwrap_or_default();
        let row = self.changeable(&context.caller, &review.name).await?;
        let paths = aip::update_paths(request.update_mask.as_ref(), &["rating", "comment"])
            .map_err(Error::from)?;
        let rating = if paths.contains(&"rating") {
            Some(
                i16::try_from(review.rating)
                    .ok()
                    .filter(|r| (1..=5).contains(r))
                    .ok_or_else(|| Error::invalid("review.rating", "must be 1 to 5"))?,
            )
        } else {
            None
        };
        let comment = paths
            .contains(&"comment")
            .then_some(review.comment.as_str());
        let (row, _) = self
            .store
            .change_review(
                &context,
                &row,
                &review.etag,
                Some((rating, comment)),
                &|row, tally| ReviewUpdated {
                    review: Some(review_proto(row)),
                    listing_rating: Some(tally_rating(tally)),
                },
            )
            .await
            .map_err(Error::from)?;
        Ok(Response::new(review_proto(&row)))
    }

    async fn delete_review(
        &self,
        request: Request<DeleteReviewRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let row = self.changeable(&context.caller, &request.name).await?;
        self.store
            .change_review(&context, &row, &request.etag, None, &|row, tally| {
                ReviewDeleted {
                    review: Some(review_proto(row)),
                    listing_rating: Some(tally_rating(tally)),
                }
            })
            .await
            .map_err(Error::from)?;
        Ok(Response::new(()))
    }
}
