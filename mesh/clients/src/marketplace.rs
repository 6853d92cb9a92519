//! Client of `taskmesh.marketplace.v1` for services that book what the marketplace lists: a
//! listing as the caller may see it (published, of a public provider, or their own), with its
//! provider's time zone, asked with the caller's own credential (so the marketplace's rules
//! decide).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use taskmesh_contracts::marketplace_v1::listing_service_client::ListingServiceClient;
use taskmesh_contracts::marketplace_v1::provider_service_client::ProviderServiceClient;
use taskmesh_contracts::marketplace_v1::{GetListingRequest, GetProviderRequest, listing};
use taskmesh_mesh::context::CallContext;
use taskmesh_mesh::status::unavailable;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Where the marketplace service is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MarketplaceEndpoint {
    /// `http://host:port`.
    pub endpoint: String,
    /// How long one call may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for MarketplaceEndpoint {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50059".to_owned(),
            timeout_ms: 2000,
        }
    }
}

impl MarketplaceEndpoint {
    /// Checks the endpoint; the error names the key.
    pub fn validate(&self) -> Result<(), taskmesh_mesh::config::ConfigError> {
        if self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://") {
            Ok(())
        } else {
            Err(taskmesh_mesh::config::ConfigError::Invalid {
                key: "marketplace.endpoint".to_owned(),
                message: format!("`{}` is not an http(s) URL", self.endpoint),
            })
        }
    }
}

/// The endpoint could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `marketplace.endpoint`: {0}")]
pub struct MarketplaceEndpointError(String);

/// What a booking needs to know of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookable {
    /// `providers/{provider}/listings/{listing}`.
    pub name: String,
    /// Its title.
    pub title: String,
    /// How long one booking takes, in seconds.
    pub duration_seconds: i64,
    /// Published and not deleted (a provider sees its drafts too; they are not bookable).
    pub published: bool,
    /// The provider's IANA time zone.
    pub time_zone: String,
}

/// Client of the marketplace service.
#[derive(Debug, Clone)]
pub struct MarketplaceClient {
    channel: Channel,
    timeout: Duration,
}

impl MarketplaceClient {
    /// A lazily connecting client for the configured endpoint.
    pub fn from_config(config: &MarketplaceEndpoint) -> Result<Self, MarketplaceEndpointError> {
        let channel = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| MarketplaceEndpointError(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        Ok(Self {
            channel,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
        })
    }

    /// The listing `name` as the caller sees it; `None` when it does not exist or is not theirs
    /// to see.
    pub async fn listing(
        &self,
        context: &CallContext,
        name: &str,
    ) -> Result<Option<Bookable>, Status> {
        let request = crate::forwarded(
            context,
            self.timeout,
            GetListingRequest {
                name: name.to_owned(),
            },
        );
        let listing = match ListingServiceClient::new(self.channel.clone())
            .get_listing(request)
            .await
        {
            Ok(listing) => listing.into_inner(),
            Err(status) if hidden(&status) => return Ok(None),
            Err(status) => return Err(failed(&status)),
        };
        let provider = name.split("/listings/").next().unwrap_or_default();
        let request = crate::forwarded(
            context,
            self.timeout,
            GetProviderRequest {
                name: provider.to_owned(),
            },
        );
        let provider = match ProviderServiceClient::new(self.channel.clone())
            .get_provider(request)
            .await
        {
            Ok(provider) => provider.into_inner(),
            Err(status) if hidden(&status) => return Ok(None),
            Err(status) => return Err(failed(&status)),
        };
        Ok(Some(Bookable {
            published: listing.state == listing::State::Published as i32
                && listing.delete_time.is_none(),
            duration_seconds: listing.duration.map(|d| d.seconds).unwrap_or_default(),
            name: listing.name,
            title: listing.title,
            time_zone: provider.time_zone,
        }))
    }
}

fn hidden(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::NotFound | Code::InvalidArgument | Code::PermissionDenied
    )
}

fn failed(status: &Status) -> Status {
    tracing::warn!(code = ?status.code(), message = status.message(), "marketplace call failed");
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            unavailable("the marketplace service")
        }
        _ => Status::internal("internal error"),
    }
}
