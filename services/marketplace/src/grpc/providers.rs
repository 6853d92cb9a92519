//! `ProviderService`: a user becomes a provider under their own id; others see it only when it is
//! public.

use taskmesh_contracts::marketplace_v1::provider_service_server::ProviderService;
use taskmesh_contracts::marketplace_v1::{
    CreateProviderRequest, GetProviderRequest, ListProvidersRequest, ListProvidersResponse,
    Provider, UpdateProviderRequest,
};
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::{CallContext, aip};
use tonic::{Request, Response, Status};

use super::{caller_id, provider_proto};
use crate::domain::known_time_zone;
use crate::error::Error;
use crate::store::providers::ProviderFields;
use crate::store::{Store, StoreError};

/// Serves ProviderService from the store.
#[derive(Debug, Clone)]
pub struct ProvidersService {
    store: Store,
}

impl ProvidersService {
    /// Providers in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn check_zone(field: &str, zone: &str) -> Result<(), Error> {
    if known_time_zone(zone) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("`{zone}` is not an IANA time zone"),
        ))
    }
}

#[tonic::async_trait]
impl ProviderService for ProvidersService {
    async fn create_provider(
        &self,
        request: Request<CreateProviderRequest>,
    ) -> Result<Response<Provider>, Status> {
        let context = CallContext::of(&request);
        let provider = request.into_inner().provider.unwrap_or_default();
        if provider.display_name.trim().is_empty() {
            return Err(Error::invalid("provider.display_name", "is required").into());
        }
        check_zone("provider.time_zone", &provider.time_zone)?;
        let fields = ProviderFields {
            display_name: Some(provider.display_name),
            description: Some(provider.description),
            time_zone: Some(provider.time_zone),
            public: Some(provider.public),
        };
        let row = self
            .store
            .create_provider(caller_id(&context.caller), &fields)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(provider_proto(&row)))
    }

    async fn get_provider(
        &self,
        request: Request<GetProviderRequest>,
    ) -> Result<Response<Provider>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        let [provider_id] = ResourcePattern::of::<Provider>()
            .parse("name", &name)
            .map_err(Error::from)?;
        let row = self
            .store
            .provider(provider_id)
            .await
            .map_err(Error::from)?;
        match row {
            Some(row) if row.public || row.provider_id == caller_id(&context.caller) => {
                Ok(Response::new(provider_proto(&row)))
            }
            _ => Err(Error::from(StoreError::NotFound(name)).into()),
        }
    }

    async fn list_providers(
        &self,
        request: Request<ListProvidersRequest>,
    ) -> Result<Response<ListProvidersResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let fingerprint = aip::fingerprint(&["providers"]);
        let page =
            aip::page(request.page_size, &request.page_token, &fingerprint).map_err(Error::from)?;
        let rows = self
            .store
            .list_providers(caller_id(&context.caller), page.offset, page.size + 1)
            .await
            .map_err(Error::from)?;
        let (rows, next_page_token) = aip::split_page(rows, page, &fingerprint);
        Ok(Response::new(ListProvidersResponse {
            providers: rows.iter().map(provider_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_provider(
        &self,
        request: Request<UpdateProviderRequest>,
    ) -> Result<Response<Provider>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let provider = request.provider.unwrap_or_default();
        let [provider_id] = ResourcePattern::of::<Provider>()
            .parse("provider.name", &provider.name)
            .map_err(Error::from)?;
        if provider_id != caller_id(&context.caller) {
            return Err(
                Error::Denied("only the provider may change its profile".to_owned()).into(),
            );
        }
        let paths = aip::update_paths(
            request.update_mask.as_ref(),
            &["display_name", "description", "time_zone", "public"],
        )
        .map_err(Error::from)?;
        let mut change = ProviderFields::default();
        for path in paths {
            match path {
                "display_name" => {
                    if provider.display_name.trim().is_empty() {
                        return Err(Error::invalid("provider.display_name", "is required").into());
                    }
                    change.display_name = Some(provider.display_name.clone());
                }
                "description" => change.description = Some(provider.description.clone()),
                "time_zone" => {
                    check_zone("provider.time_zone", &provider.time_zone)?;
                    change.time_zone = Some(provider.time_zone.clone());
                }
                _ => change.public = Some(provider.public),
            }
        }
        let row = self
            .store
            .update_provider(provider_id, &provider.etag, &change)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(provider_proto(&row)))
    }
}
