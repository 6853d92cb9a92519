//! `ListingService`: a provider writes its listings; others read the published listings of public
//! providers, and search them.

use taskmesh_contracts::marketplace_v1::listing_service_server::ListingService;
use taskmesh_contracts::marketplace_v1::{
    CategoryFacet, CreateListingRequest, DeleteListingRequest, GetListingRequest,
    ListListingsRequest, ListListingsResponse, Listing, ListingCreated, ListingDeleted,
    ListingUndeleted, ListingUpdated, Money, SearchListingsRequest, SearchListingsResponse,
    UndeleteListingRequest, UpdateListingRequest, listing::State,
};
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::{CallContext, aip};
use tonic::{Request, Response, Status};

use super::{caller_id, listing_proto};
use crate::domain::search::SearchQuery;
use crate::error::Error;
use crate::store::listings::{ListingFields, ListingRow};
use crate::store::{Store, StoreError};

/// Serves ListingService from the store.
#[derive(Debug, Clone)]
pub struct ListingsService {
    store: Store,
}

impl ListingsService {
    /// Listings in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The listing `name` if the caller may see it: any of their own, otherwise a published,
    /// undeleted listing of a public provider.
    pub(super) async fn visible(
        &self,
        caller: &str,
        field: &str,
        name: &str,
    ) -> Result<ListingRow, Error> {
        let [provider_id, listing_id] = ResourcePattern::of::<Listing>().parse(field, name)?;
        let row = self.store.listing(provider_id, listing_id).await?;
        let hidden = || Error::from(StoreError::NotFound(name.to_owned()));
        let row = row.ok_or_else(hidden)?;
        if row.provider_id == caller_id(caller) {
            return Ok(row);
        }
        let public = self
            .store
            .provider(provider_id)
            .await?
            .is_some_and(|provider| provider.public);
        if public && row.state == State::Published as i16 && row.delete_time.is_none() {
            Ok(row)
        } else {
            Err(hidden())
        }
    }
}

/// The provider and listing ids of a listing the caller owns; PERMISSION_DENIED for another
/// provider's.
fn own<'a>(caller: &str, field: &str, name: &'a str) -> Result<(&'a str, &'a str), Error> {
    let [provider_id, listing_id] = ResourcePattern::of::<Listing>().parse(field, name)?;
    if provider_id == caller_id(caller) {
        Ok((provider_id, listing_id))
    } else {
        Err(Error::Denied(
            "only the provider may change its listings".to_owned(),
        ))
    }
}

/// The price of `money`, checked.
fn price(field: &str, money: Option<&Money>) -> Result<(String, i64, i32), Error> {
    let money = money.ok_or_else(|| Error::invalid(field, "is required"))?;
    if money.currency_code.len() != 3
        || !money.currency_code.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(Error::invalid(
            format!("{field}.currency_code"),
            "must be an ISO 4217 code such as EUR",
        ));
    }
    if money.units < 0 || !(0..1_000_000_000).contains(&money.nanos) {
        return Err(Error::invalid(field, "must not be negative"));
    }
    Ok((money.currency_code.clone(), money.units, money.nanos))
}

/// Whole seconds of `duration`, 5 minutes to 24 hours in whole minutes.
fn duration_seconds(field: &str, duration: Option<&prost_types::Duration>) -> Result<i32, Error> {
    let duration = duration.ok_or_else(|| Error::invalid(field, "is required"))?;
    let seconds = duration.seconds;
    if duration.nanos != 0 || seconds % 60 != 0 || !(300..=86_400).contains(&seconds) {
        return Err(Error::invalid(
            field,
            "must be whole minutes between 5 minutes and 24 hours",
        ));
    }
    Ok(i32::try_from(seconds).unwrap_or(i32::MAX))
}

fn category_id<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    name.strip_prefix("categories/")
        .filter(|id| taskmesh_mesh::names::valid_id(id))
        .ok_or_else(|| Error::invalid(field, "must look like `categories/{category}`"))
}

fn state(field: &str, value: i32) -> Result<i16, Error> {
    match State::try_from(value) {
        Ok(State::Unspecified) | Ok(State::Draft) => Ok(State::Draft as i16),
        Ok(State::Published) => Ok(State::Published as i16),
        Err(_) => Err(Error::invalid(field, "is not a state")),
    }
}

#[tonic::async_trait]
impl ListingService for ListingsService {
    async fn create_listing(
        &self,
        request: Request<CreateListingRequest>,
    ) -> Result<Response<Listing>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [provider_id] = ResourcePattern::of::<taskmesh_contracts::marketplace_v1::Provider>()
            .parse("parent", &request.parent)
            .map_err(Error::from)?;
        if provider_id != caller_id(&context.caller) {
            return Err(Error::Denied("only the provider may add its listings".to_owned()).into());
        }
        let listing = request.listing.unwrap_or_default();
        if listing.title.trim().is_empty() {
            return Err(Error::invalid("listing.title", "is required").into());
        }
        let fields = ListingFields {
            title: Some(listing.title.clone()),
            description: Some(listing.description.clone()),
            category_id: Some(category_id("listing.category", &listing.category)?.to_owned()),
            price: Some(price("listing.price", listing.price.as_ref())?),
            duration_seconds: Some(duration_seconds(
                "listing.duration",
                listing.duration.as_ref(),
            )?),
            remote: Some(listing.remote),
            location: Some(listing.location.clone()),
            state: Some(state("listing.state", listing.state)?),
        };
        let row = self
            .store
            .create_listing(
                &context,
                provider_id,
                &fields,
                aip::request_id(&request.request_id),
                &|row| ListingCreated {
                    listing: Some(listing_proto(row)),
                },
            )
            .await
            .map_err(Error::from)?;
        Ok(Response::new(listing_proto(&row)))
    }

    async fn get_listing(
        &self,
        request: Request<GetListingRequest>,
    ) -> Result<Response<Listing>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        let row = self.visible(&context.caller, "name", &name).await?;
        Ok(Response::new(listing_proto(&row)))
    }

    async fn list_listings(
        &self,
        request: Request<ListListingsRequest>,
    ) -> Result<Response<ListListingsResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [provider_id] = ResourcePattern::of::<taskmesh_contracts::marketplace_v1::Provider>()
            .parse("parent", &request.parent)
            .map_err(Error::from)?;
        let mine = provider_id == caller_id(&context.caller);
        let provider = self
            .store
            .provider(provider_id)
            .await
            .map_err(Error::from)?;
        if !provider.is_some_and(|provider| mine || provider.public) {
            return Err(Error::from(StoreError::NotFound(request.parent)).into());
        }
        let fingerprint = aip::fingerprint(&[
            &request.parent,
            &mine.to_string(),
            &request.show_deleted.to_string(),
        ]);
        let page =
            aip::page(request.page_size, &request.page_token, &fingerprint).map_err(Error::from)?;
        let rows = self
            .store
            .list_listings(
                provider_id,
                mine,
                mine && request.show_deleted,
                page.offset,
                page.size + 1,
            )
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fingerprint);
        Ok(Response::new(ListListingsResponse {
            listings: rows.iter().map(listing_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_listing(
        &self,
        request: Request<UpdateListingRequest>,
    ) -> Result<Response<Listing>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let listing = request.listing.unwrap_or_default();
        let ids = own(&context.caller, "listing.name", &listing.name)?;
        let paths = aip::update_paths(
            request.update_mask.as_ref(),
            &[
                "title",
                "description",
                "category",
                "price",
                "duration",
                "remote",
                "location",
                "state",
            ],
        )
        .map_err(Error::from)?;
        let mut change = ListingFields::default();
        for path in paths {
            match path {
                "title" => {
                    if listing.title.trim().is_empty() {
                        return Err(Error::invalid("listing.title", "is required").into());
                    }
                    change.title = Some(listing.title.clone());
                }
                "description" => change.description = Some(listing.description.clone()),
                "category" => {
                    change.category_id =
                        Some(category_id("listing.category", &listing.category)?.to_owned());
                }
                "price" => change.price = Some(price("listing.price", listing.price.as_ref())?),
                "duration" => {
                    change.duration_seconds = Some(duration_seconds(
                        "listing.duration",
                        listing.duration.as_ref(),
                    )?);
                }
                "remote" => change.remote = Some(listing.remote),
                "location" => change.location = Some(listing.location.clone()),
                _ => change.state = Some(state("listing.state", listing.state)?),
            }
        }
        let row = self
            .store
            .update_listing(&context, ids, &listing.etag, &change, &|row| {
                ListingUpdated {
                    listing: Some(listing_proto(row)),
                }
            })
            .await
            .map_err(Error::from)?;
        Ok(Response::new(listing_proto(&row)))
    }

    async fn delete_listing(
        &self,
        request: Request<DeleteListingRequest>,
    ) -> Result<Response<Listing>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let ids = own(&context.caller, "name", &request.name)?;
        let row = self
            .store
            .set_listing_deleted(&context, ids, &request.etag, true, &|row| ListingDeleted {
                listing: Some(listing_proto(row)),
            })
            .await
            .map_err(Error::from)?;
        Ok(Response::new(listing_proto(&row)))
    }

    async fn undelete_listing(
        &self,
        request: Request<UndeleteListingRequest>,
    ) -> Result<Response<Listing>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let ids = own(&context.caller, "name", &request.name)?;
        let row = self
            .store
            .set_listing_deleted(&context, ids, "", false, &|row| ListingUndeleted {
                listing: Some(listing_proto(row)),
            })
            .await
            .map_err(Error::from)?;
        Ok(Response::new(listing_proto(&row)))
    }

    async fn search_listings(
        &self,
        request: Request<SearchListingsRequest>,
    ) -> Result<Response<SearchListingsResponse>, Status> {
        let request = request.into_inner();
        let query = SearchQuery::from_request(&request)
            .map_err(|(field, problem)| Error::invalid(field, problem))?;
        let fingerprint = query.fingerprint();
        let page = aip::page_of(
            aip::SEARCH_PAGES,
            request.page_size,
            &request.page_token,
            &fingerprint,
        )
        .map_err(Error::from)?;
        let found = self
            .store
            .search_listings(&query, page.offset, page.size)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(found.rows, page, &fingerprint);
        Ok(Response::new(SearchListingsResponse {
            listings: rows.iter().map(listing_proto).collect(),
            next_page_token,
            total_size: found.total,
            facets: found
                .facets
                .into_iter()
                .map(|(id, count)| CategoryFacet {
                    category: format!("categories/{id}"),
                    count,
                })
                .collect(),
        }))
    }
}
