//! OpenID discovery and the JSON Web Key Set, so that Istio's RequestAuthentication (or any JWT
//! library) can validate taskmesh access tokens: `/.well-known/openid-configuration` names the
//! issuer and the JWKS URL, `/.well-known/jwks.json` serves identity's current public keys.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Value, json};
use taskmesh_contracts::identity_v1::GetJwksRequest;
use taskmesh_contracts::identity_v1::identity_service_client::IdentityServiceClient;

use crate::upstream::Upstreams;

use taskmesh_contracts::identity_v1::identity_service_server::SERVICE_NAME as IDENTITY;

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `GET /.well-known/jwks.json`: identity's public keys.
pub async fn jwks(upstreams: Arc<Upstreams>) -> Response {
    let Some(upstream) = upstreams.for_service(IDENTITY) else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"code": 14, "message": "no upstream serves identity", "details": []}),
        );
    };
    let mut request = tonic::Request::new(GetJwksRequest {});
    request.set_timeout(upstream.timeout);
    match IdentityServiceClient::new(upstream.channel.clone())
        .get_jwks(request)
        .await
    {
        Ok(response) => {
            let keys: Vec<Value> = response
                .into_inner()
                .keys
                .into_iter()
                .map(|k| {
                    json!({"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.r#use})
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "keys": keys }))
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), "fetching the JWKS from identity failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"code": 14, "message": "the identity service is unavailable", "details": []}),
            )
        }
    }
}

/// `GET /.well-known/openid-configuration`: issuer and where its keys are, under the configured
/// `public_url` (a `Host` header is the client's to choose, so it names nothing here).
pub fn discovery(issuer: &str, base: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": issuer,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/v1/sessions:login"),
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]
        }),
    )
}
