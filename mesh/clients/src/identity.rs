//! The identity service as every other process sees it: the source of the keys access tokens are
//! verified with and of API-key lookups ([`KeySource`] for the runtime's authenticator).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use taskmesh_contracts::identity_v1::api_key_service_client::ApiKeyServiceClient;
use taskmesh_contracts::identity_v1::identity_service_client::IdentityServiceClient;
use taskmesh_contracts::identity_v1::{
    AuthenticateApiKeyRequest, AuthenticateApiKeyResponse, GetJwksRequest, Jwk,
};
use taskmesh_mesh::auth::{AuthConfig, Authenticator, KeySource};
use taskmesh_mesh::config::ConfigError;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

/// A lazily connecting client of identity's key and API-key RPCs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IdentityClient {
    channel: Channel,
}

impl IdentityClient {
    /// A client of `auth.identity_endpoint` with `auth.timeout_ms` per call.
    pub fn new(auth: &AuthConfig) -> Result<Self, ConfigError> {
        let channel = Endpoint::from_shared(auth.identity_endpoint.clone())
            .map_err(|e| ConfigError::Invalid {
                key: "auth.identity_endpoint".to_owned(),
                message: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_millis(auth.timeout_ms))
            .connect_lazy();
        Ok(Self { channel })
    }

    /// An authenticator for `auth` whose keys and API keys come from identity.
    pub fn authenticator(auth: &AuthConfig) -> Result<Authenticator, ConfigError> {
        Ok(Authenticator::new(auth, Arc::new(Self::new(auth)?)))
    }
}

impl KeySource for IdentityClient {
    fn jwks(&self) -> BoxFuture<'_, Result<Vec<Jwk>, Status>> {
        Box::pin(async move {
            let response = IdentityServiceClient::new(self.channel.clone())
                .get_jwks(GetJwksRequest {})
                .await?;
            Ok(response.into_inner().keys)
        })
    }

    fn resolve_api_key<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<AuthenticateApiKeyResponse, Status>> {
        Box::pin(async move {
            let response = ApiKeyServiceClient::new(self.channel.clone())
                .authenticate_api_key(AuthenticateApiKeyRequest {
                    secret: secret.to_owned(),
                })
                .await?;
            Ok(response.into_inner())
        })
    }
}
