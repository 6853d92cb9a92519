//! gRPC handlers of the identity service: `IdentityService` (accounts and sessions) and
//! `ApiKeyService`. No handler logs a password, token or key secret; failures say which rule
//! failed, never whether an email exists.

use std::sync::Arc;

use chrono::{Duration, Utc};
use taskmesh_contracts::identity_v1::api_key_service_server::ApiKeyService;
use taskmesh_contracts::identity_v1::identity_service_server::IdentityService;
use taskmesh_contracts::identity_v1::{
    ApiKey, ApiKeyScope, AuthenticateApiKeyRequest, AuthenticateApiKeyResponse,
    ChangePasswordRequest, CreateApiKeyRequest, CreateApiKeyResponse, GetCurrentUserRequest,
    GetJwksRequest, GetJwksResponse, ListApiKeysRequest, ListApiKeysResponse, LoginRequest,
    LogoutRequest, RefreshRequest, RegisterRequest, RevokeApiKeyRequest, Session,
    UpdateProfileRequest, User, user,
};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::status::{invalid_field, not_found, required};
use taskmesh_mesh::time::{from_timestamp, to_timestamp};
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::domain;
use crate::domain::attempts::FailedSignIns;
use crate::error::{Error, Refusal};
use crate::keys::KeyRing;
use crate::passwords;
use crate::store::{NewUser, RefreshRefusal, Store, UserRow};

/// Token lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access tokens, seconds.
    pub access_secs: i64,
    /// Refresh tokens, seconds.
    pub refresh_secs: i64,
}

/// Handles `IdentityService` and `ApiKeyService`.
#[derive(Debug, Clone)]
pub struct IdentityHandlers {
    store: Store,
    keys: KeyRing,
    lifetimes: Lifetimes,
    failed_sign_ins: Arc<FailedSignIns>,
}

impl IdentityHandlers {
    /// Handlers over `store`, signing with `keys`.
    pub fn new(
        store: Store,
        keys: KeyRing,
        lifetimes: Lifetimes,
        failed_sign_ins: FailedSignIns,
    ) -> Self {
        Self {
            store,
            keys,
            lifetimes,
            failed_sign_ins: Arc::new(failed_sign_ins),
        }
    }

    /// A session for `user`: a fresh access token next to `refresh`, the family's newest token.
    async fn session(
        &self,
        user: UserRow,
        refresh: crate::store::IssuedRefresh,
    ) -> Result<Session, Status> {
        let now = Utc::now();
        let access_token = self
            .keys
            .issue(
                &format!("users/{}", user.id),
                now.timestamp(),
                self.lifetimes.access_secs,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "signing an access token failed");
                Status::internal("internal error")
            })?;
        Ok(Session {
            access_token,
            access_token_expire_time: Some(to_timestamp(
                now + Duration::seconds(self.lifetimes.access_secs),
            )),
            refresh_token: refresh.token,
            refresh_token_expire_time: Some(to_timestamp(refresh.expire_time)),
            token_type: "Bearer".to_owned(),
            user: Some(user.into_proto()),
        })
    }

    fn refresh_ttl(&self) -> Duration {
        Duration::seconds(self.lifetimes.refresh_secs)
    }

    /// The caller's username; callers always exist here (the layer authenticated them).
    fn caller(context: &CallContext) -> &str {
        context.caller.trim_start_matches("users/")
    }

    /// PERMISSION_DENIED when the call came with an API key: keys cannot mint or revoke keys or
    /// change the password, so a leaked key cannot entrench itself.
    fn session_only(context: &CallContext) -> Result<(), Status> {
        if context.credential.as_ref().is_some_and(|c| c.is_api_key()) {
            return Err(Error::Refused(Refusal::SessionRequired).into());
        }
        Ok(())
    }

    /// PERMISSION_DENIED unless `parent` is the caller.
    fn own_parent(context: &CallContext, parent: &str) -> Result<String, Status> {
        let [user] = ResourcePattern::of::<User>().parse("parent", parent)?;
        if user != Self::caller(context) {
            return Err(Status::permission_denied(
                "API keys can only be managed by their own user",
            ));
        }
        Ok(user.to_owned())
    }
}

fn wrong_credentials() -> Status {
    Status::unauthenticated("wrong email or password")
}

#[tonic::async_trait]
impl IdentityService for IdentityHandlers {
    async fn register(&self, request: Request<RegisterRequest>) -> Result<Response<User>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        // The contract has checked the username, email, password and display name.
        let display_name = match domain::display_name(&request.display_name) {
            name if name.is_empty() => request.username.clone(),
            name => name,
        };
        let (id, email) = (request.username, request.email);
        let password_hash = passwords::hash(request.password).await?;
        let user = self
            .store
            .register(
                &context,
                NewUser {
                    id,
                    email,
                    display_name,
                    password_hash,
                },
            )
            .await?;
        tracing::info!(user = %user.name, "user registered");
        Ok(Response::new(user))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<Session>, Status> {
        let request = request.into_inner();
        let account = domain::email_key(&request.email);
        if let Some(wait) = self.failed_sign_ins.wait(&account) {
            tracing::warn!("sign-in refused: too many wrong passwords for one account");
            return Err(Status::with_error_details(
                tonic::Code::ResourceExhausted,
                "too many failed sign-ins for this account; try again later",
                tonic_types::ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(
                    wait.as_secs().max(1),
                ))),
            ));
        }
        let user = self.store.user_by_email(&request.email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        if !passwords::verify(request.password, hash).await {
            self.failed_sign_ins.failed(&account);
            return Err(wrong_credentials());
        }
        let Some(user) = user else {
            return Err(wrong_credentials());
        };
        if user.state != user::State::Active as i16 {
            return Err(Error::Refused(Refusal::RegistrationPending).into());
        }
        tracing::info!(user = %user.id, "login");
        let refresh = self
            .store
            .start_session(&user.id, self.refresh_ttl())
            .await?;
        self.session(user, refresh).await.map(Response::new)
    }

    async fn refresh(&self, request: Request<RefreshRequest>) -> Result<Response<Session>, Status> {
        let token = request.into_inner().refresh_token;
        match self.store.refresh(&token, self.refresh_ttl()).await? {
            Ok((user, next)) => self.session(user, next).await.map(Response::new),
            Err(RefreshRefusal::Reused) => Err(Error::Refused(Refusal::RefreshTokenReused).into()),
            Err(RefreshRefusal::Invalid) => Err(Status::unauthenticated(
                "unknown, expired or revoked refresh token",
            )),
        }
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<()>, Status> {
        let token = request.into_inner().refresh_token;
        Ok(Response::new(self.store.logout(&token).await?))
    }

    async fn get_current_user(
        &self,
        request: Request<GetCurrentUserRequest>,
    ) -> Result<Response<User>, Status> {
        let context = CallContext::of(&request);
        let id = Self::caller(&context);
        self.store
            .user(id)
            .await?
            .map(|u| Response::new(u.into_proto()))
            .ok_or_else(|| not_found(&context.caller))
    }

    async fn update_profile(
        &self,
        request: Request<UpdateProfileRequest>,
    ) -> Result<Response<User>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let user = request.user.ok_or_else(|| required("user"))?;
        aip::update_paths(request.update_mask.as_ref(), &["display_name"])?;
        let display_name = domain::display_name(&user.display_name);
        let updated = self
            .store
            .update_display_name(&context, Self::caller(&context), &user.etag, &display_name)
            .await?;
        Ok(Response::new(updated))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        Self::session_only(&context)?;
        let request = request.into_inner();
        let id = Self::caller(&context).to_owned();
        let user = self
            .store
            .user(&id)
            .await?
            .ok_or_else(|| not_found(&context.caller))?;
        if !passwords::verify(request.current_password, Some(user.password_hash)).await {
            return Err(Error::Refused(Refusal::WrongPassword).into());
        }
        let hash = passwords::hash(request.new_password).await?;
        self.store.set_password(&id, &hash).await?;
        tracing::info!(user = %id, "password changed; refresh tokens revoked");
        Ok(Response::new(()))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            keys: self.keys.jwks().await,
        }))
    }
}

#[tonic::async_trait]
impl ApiKeyService for IdentityHandlers {
    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let user = Self::own_parent(&context, &request.parent)?;
        Self::session_only(&context)?;
        let key = request.api_key.ok_or_else(|| required("api_key"))?;
        // The contract has checked the display name, that the scope is a defined one and that
        // the expiry lies ahead; anything but WRITE reads as READ, the lesser scope.
        let display_name = domain::display_name(&key.display_name);
        let scope = match ApiKeyScope::try_from(key.scope) {
            Ok(ApiKeyScope::Write) => ApiKeyScope::Write,
            _ => ApiKeyScope::Read,
        };
        let expire_time = from_timestamp(key.expire_time);
        let (api_key, secret) = self
            .store
            .create_api_key(&user, &display_name, scope, expire_time)
            .await?;
        tracing::info!(api_key = %api_key.name, "API key created");
        Ok(Response::new(CreateApiKeyResponse {
            api_key: Some(api_key),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let user = Self::own_parent(&context, &request.parent)?;
        let size = match request.page_size {
            0 => 50,
            n => i64::from(n.min(100)),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(
                Uuid::parse_str(&request.page_token)
                    .map_err(|_| invalid_field("page_token", "is not a token from this list"))?,
            )
        };
        let (api_keys, last) = self
            .store
            .list_api_keys(&user, request.show_revoked, after, size)
            .await?;
        Ok(Response::new(ListApiKeysResponse {
            api_keys,
            next_page_token: last.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<ApiKey>, Status> {
        let context = CallContext::of(&request);
        let name = request.into_inner().name;
        let [user, id] = ResourcePattern::of::<ApiKey>().parse("name", &name)?;
        let user = Self::own_parent(&context, &format!("users/{user}"))?;
        Self::session_only(&context)?;
        let id = Uuid::parse_str(id).map_err(|_| not_found(&name))?;
        let key = self.store.revoke_api_key(&user, id).await?;
        tracing::info!(api_key = %key.name, "API key revoked");
        Ok(Response::new(key))
    }

    async fn authenticate_api_key(
        &self,
        request: Request<AuthenticateApiKeyRequest>,
    ) -> Result<Response<AuthenticateApiKeyResponse>, Status> {
        let secret = request.into_inner().secret;
        if !secret.starts_with(taskmesh_mesh::auth::API_KEY_PREFIX) {
            return Err(Status::unauthenticated(
                "unknown, expired or revoked API key",
            ));
        }
        let key = self
            .store
            .api_key_by_secret(&secret)
            .await?
            .ok_or_else(|| Status::unauthenticated("unknown, expired or revoked API key"))?;
        let user = key
            .name
            .split("/apiKeys/")
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Response::new(AuthenticateApiKeyResponse {
            user,
            scope: key.scope,
            api_key: key.name,
            expire_time: key.expire_time,
        }))
    }
}
