//! The gateway's checks before a call goes upstream, the same for REST, grpc-web and native gRPC:
//! a per-client-IP limit on Login and Register (brute force), authentication (the same
//! [`CallGuard`] every service runs, so a bad token is refused at the edge), and a per-user limit
//! on everything. Refusals carry `Retry-After` when waiting helps. Limits use `governor` (GCRA).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{Extensions, HeaderMap};
use serde::{Deserialize, Serialize};
use taskmesh_mesh::auth::{Authenticator, CallGuard};
use taskmesh_mesh::config::ConfigError;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// RPCs limited per client IP.
const SIGN_IN_METHODS: &[&str] = &[
    "/taskmesh.identity.v1.IdentityService/Login",
    "/taskmesh.identity.v1.IdentityService/Register",
    "/taskmesh.identity.v1.IdentityService/Refresh",
];

/// Rate limits (`rate_limits` table of the gateway configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimits {
    /// Login, Register and Refresh calls per client IP and minute.
    pub sign_in_per_minute: u32,
    /// How many of those may come at once.
    pub sign_in_burst: u32,
    /// Calls per authenticated user and second.
    pub user_per_second: u32,
    /// How many of those may come at once.
    pub user_burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // Sized for an office behind one address; guessing at one account is limited by
            // identity per account (`identity.failed_sign_ins_per_account`).
            sign_in_per_minute: 120,
            sign_in_burst: 30,
            user_per_second: 50,
            user_burst: 100,
        }
    }
}

impl RateLimits {
    /// Every limit must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("rate_limits.sign_in_per_minute", self.sign_in_per_minute),
            ("rate_limits.sign_in_burst", self.sign_in_burst),
            ("rate_limits.user_per_second", self.user_per_second),
            ("rate_limits.user_burst", self.user_burst),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    message: "must be at least 1".to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Why a call was refused at the edge.
#[derive(Debug)]
pub struct Refusal {
    /// The status to answer.
    pub status: tonic::Status,
    /// How long to wait before trying again, for rate limits.
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// Adds `Retry-After` (whole seconds) to a response's headers when waiting helps.
    pub fn set_retry_after(&self, headers: &mut HeaderMap) {
        if let Some(wait) = self.retry_after
            && let Ok(value) = http::HeaderValue::from_str(&wait.as_secs().to_string())
        {
            headers.insert(http::header::RETRY_AFTER, value);
        }
    }
}

/// See the module documentation.
pub struct EdgeGuard {
    guard: Option<CallGuard>,
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for EdgeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeGuard")
            .field("verifies", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

fn nonzero(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

/// Keys are forgotten once their bucket is full again; this bounds the memory of many clients.
const RETAIN_ABOVE: usize = 10_000;

impl EdgeGuard {
    /// A guard verifying with `authenticator` (none: only the services verify) and limiting with
    /// `limits`; `descriptor_set` tells which RPCs only read.
    pub fn new(
        authenticator: Option<Authenticator>,
        descriptor_set: &[u8],
        limits: &RateLimits,
    ) -> Self {
        let sign_in = Quota::per_minute(nonzero(limits.sign_in_per_minute))
            .allow_burst(nonzero(limits.sign_in_burst));
        let per_user = Quota::per_second(nonzero(limits.user_per_second))
            .allow_burst(nonzero(limits.user_burst));
        Self {
            guard: authenticator.map(|a| CallGuard::new(a, descriptor_set)),
            sign_in: RateLimiter::keyed(sign_in),
            per_user: RateLimiter::keyed(per_user),
            clock: DefaultClock::default(),
        }
    }

    /// Checks one call to `path` (`/pkg.Service/Method`) from `ip`.
    pub async fn check(&self, path: &str, headers: &HeaderMap, ip: IpAddr) -> Result<(), Refusal> {
        if taskmesh_mesh::auth::INTERNAL_METHODS.contains(&path) {
            return Err(Refusal {
                status: tonic::Status::permission_denied(format!("{path} is internal to the mesh")),
                retry_after: None,
            });
        }
        if SIGN_IN_METHODS.contains(&path) {
            if self.sign_in.len() > RETAIN_ABOVE {
                self.sign_in.retain_recent();
            }
            if let Err(not_until) = self.sign_in.check_key(&ip) {
                let wait = not_until.wait_time_from(self.clock.now());
                tracing::warn!(%ip, rpc = path, "sign-in rate limit reached");
                return Err(limited(
                    "too many sign-in attempts from this address; try again later",
                    wait,
                ));
            }
        }
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        let caller = guard.check(path, headers).await.map_err(|status| Refusal {
            status,
            retry_after: None,
        })?;
        if let Some(caller) = caller {
            if self.per_user.len() > RETAIN_ABOVE {
                self.per_user.retain_recent();
            }
            if let Err(not_until) = self.per_user.check_key(&caller.user) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(limited("too many calls; slow down", wait));
            }
        }
        Ok(())
    }
}

fn limited(message: &str, wait: Duration) -> Refusal {
    // Retry-After has whole seconds; never tell a client to retry at once.
    let wait = Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64);
    Refusal {
        status: tonic::Status::with_error_details(
            Code::ResourceExhausted,
            message,
            ErrorDetails::with_retry_info(Some(wait)),
        ),
        retry_after: Some(wait),
    }
}

/// The client's address from the connection (axum's `ConnectInfo` or tonic's `TcpConnectInfo`).
pub fn client_ip(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .or_else(|| {
            extensions
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr())
                .map(|addr| addr.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sign_in_is_limited_per_address_with_a_retry_after() {
        let limits = RateLimits {
            sign_in_per_minute: 1,
            sign_in_burst: 2,
            ..RateLimits::default()
        };
        let guard = EdgeGuard::new(None, &[], &limits);
        let login = "/taskmesh.identity.v1.IdentityService/Login";
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let headers = HeaderMap::new();
        assert!(guard.check(login, &headers, a).await.is_ok());
        assert!(guard.check(login, &headers, a).await.is_ok());
        let refused = guard.check(login, &headers, a).await.expect_err("third");
        assert_eq!(refused.status.code(), Code::ResourceExhausted);
        let wait = refused.retry_after.expect("retry after");
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(refused.status.get_error_details().retry_info().is_some());
        // Another address and other methods are not affected.
        assert!(guard.check(login, &headers, b).await.is_ok());
        assert!(
            guard
                .check(
                    "/taskmesh.projects.v1.ProjectService/ListProjects",
                    &headers,
                    a
                )
                .await
                .is_ok()
        );
    }
}
