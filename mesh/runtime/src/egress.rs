//! The one way out of the mesh for requests whose destination a user chose (job fetches today,
//! webhooks and calendar feeds later). A policy decides where such a request may go:
//!
//! - only `http` and `https`, on ports 80 and 443 plus [`EgressConfig::allow_ports`] (any port for
//!   an address in [`EgressConfig::allow_networks`]);
//! - only public addresses: loopback, private, link-local (cloud metadata), CGNAT, unique-local,
//!   multicast, unspecified, documentation, benchmarking, reserved and broadcast addresses are
//!   refused, also embedded in IPv6 (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo), except in
//!   [`EgressConfig::allow_networks`]. URLs are parsed as browsers do, so `2130706433`, `0x7f.1` and
//!   `0177.0.0.1` are `127.0.0.1` before the check;
//! - names are resolved by the policy's own resolver, which refuses a name if any of its addresses
//!   is refused, and the connection goes to the addresses it checked (no second lookup to rebind);
//! - every redirect is checked the same way, at most [`EgressConfig::max_redirects`];
//! - no proxy from the environment; connect, first-byte and total timeouts; the body is read as a
//!   stream up to a byte cap; only a few response headers are kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Where user-chosen requests may go and how long and how much they may take.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EgressConfig {
    /// Ports allowed besides 80 and 443.
    pub allow_ports: Vec<u16>,
    /// Networks reachable although not public (`10.1.2.0/24`, `127.0.0.1/32`): for trusted setups
    /// and tests. An address written in a URL that falls in one is reachable on any port; a name
    /// that resolves into one, on the allowed ports. Empty by default.
    pub allow_networks: Vec<String>,
    /// Longest wait for a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait from sending the request to the response's head, in milliseconds.
    pub first_byte_timeout_ms: u64,
    /// Longest a whole exchange may take, body included, in milliseconds.
    pub total_timeout_ms: u64,
    /// Redirects followed (each checked like the first URL); 0 turns them off.
    pub max_redirects: usize,
    /// Bytes of a response body read at most; the rest is not read.
    pub max_response_bytes: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_ports: Vec::new(),
            allow_networks: Vec::new(),
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 15_000,
            total_timeout_ms: 60_000,
            max_redirects: 5,
            max_response_bytes: 2 * 1024 * 1024,
        }
    }
}

impl EgressConfig {
    /// The allowed networks, parsed; the error names the key.
    fn networks(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.allow_networks
            .iter()
            .map(|text| {
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| ConfigError::Invalid {
                        key: "egress.allow_networks".to_owned(),
                        message: format!("`{text}` is not an address or a network"),
                    })
            })
            .collect()
    }

    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.networks()?;
        if self.max_response_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "egress.max_response_bytes".to_owned(),
                message: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// Response headers worth keeping: they describe the content; the rest (cookies, server details,
/// authentication challenges) is not stored.
pub const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-language",
    "etag",
    "last-modified",
    "location",
    "cache-control",
    "retry-after",
];

/// Why a request was not made or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The policy refuses the destination.
    #[error("destination refused: {0}")]
    Refused(String),
    /// A timeout passed.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The exchange failed.
    #[error("request failed: {0}")]
    Transport(String),
}

/// A refusal by the policy inside the client (resolver, redirect rule), found again in the error
/// chain of the request it stopped.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// The decisions of the policy, shared by the client, its resolver and its redirect rule.
#[derive(Debug)]
struct Policy {
    ports: Vec<u16>,
    allowed: Vec<IpNet>,
}

impl Policy {
    fn check_url(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(format!("scheme `{other}` (only http and https)")),
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err("no host".to_owned()),
        };
        // An address in an allowed network is trusted on every port.
        if ip.is_some_and(|ip| self.allowed.iter().any(|net| net.contains(&ip))) {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or_default();
        if !self.ports.contains(&port) {
            return Err(format!("port {port} (allowed: {:?})", self.ports));
        }
        match ip {
            Some(ip) => self.check_ip(ip),
            None => Ok(()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip) {
            Ok(())
        } else {
            Err(format!("address {ip} is not a public address"))
        }
    }
}

/// Whether `ip` is a globally reachable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || ip.is_multicast()
        || a >= 240) // reserved and broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // An IPv4 address inside an IPv6 one is judged as the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if segments[..6] == [0, 0, 0, 0, 0, 0] {
        // ::, ::1 and IPv4-compatible ::a.b.c.d.
        return !ip.is_unspecified()
            && !ip.is_loopback()
            && is_public_v4(embedded_v4(&segments, 6));
    }
    if segments[0] == 0x64 && segments[1] == 0xff9b {
        return is_public_v4(embedded_v4(&segments, 6)); // NAT64
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(&segments, 1)); // 6to4
    }
    !((segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254, the metadata service)
        || (segments[0] & 0xffc0) == 0xfe80 // link local
        || (segments[0] & 0xffc0) == 0xfec0 // site local (deprecated)
        || segments[0] & 0xff00 == 0xff00 // multicast
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[0] == 0x0100) // discard-only 100::/64
}

fn embedded_v4(segments: &[u16; 8], at: usize) -> Ipv4Addr {
    let [high, low] = [segments[at], segments[at + 1]];
    Ipv4Addr::new(
        (high >> 8) as u8,
        (high & 0xff) as u8,
        (low >> 8) as u8,
        (low & 0xff) as u8,
    )
}

/// Resolves names with the system resolver and refuses a name any of whose addresses the policy
/// refuses; the client connects to exactly the addresses returned here.
struct CheckedResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(format!("`{host}` has no address").into());
            }
            for address in &addresses {
                policy.check_ip(address.ip()).map_err(|reason| {
                    Refusal(format!("`{host}` resolves to a refused address: {reason}"))
                })?;
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// A request to send through [`Egress`].
#[derive(Debug, Clone, Default)]
pub struct EgressRequest {
    /// `GET` when empty.
    pub method: String,
    /// Where to.
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

/// What came back, bounded.
#[derive(Debug, Clone)]
pub struct EgressResponse {
    /// HTTP status.
    pub status: u16,
    /// The [`KEPT_HEADERS`] the response had.
    pub headers: Vec<(String, String)>,
    /// The body, at most `max_response_bytes`.
    pub body: Vec<u8>,
    /// Whether the body was longer than what was read.
    pub truncated: bool,
}

/// The client of user-chosen requests; cheap to clone.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    policy: Arc<Policy>,
    first_byte_timeout: Duration,
    max_response_bytes: usize,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Egress {
    /// A client with `config`'s policy, sending `user_agent`.
    pub fn new(config: &EgressConfig, user_agent: &str) -> Result<Self, ConfigError> {
        config.validate()?;
        let allowed = config.networks()?;
        let mut ports = vec![80, 443];
        ports.extend(config.allow_ports.iter().copied().filter(|p| *p != 0));
        let policy = Arc::new(Policy { ports, allowed });
        let redirects = {
            let policy = Arc::clone(&policy);
            let max = config.max_redirects;
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    return attempt.error(Refusal(format!("more than {max} redirects")));
                }
                match policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(reason) => attempt.error(Refusal(format!("redirect refused: {reason}"))),
                }
            })
        };
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(CheckedResolver {
                policy: Arc::clone(&policy),
            })
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.total_timeout_ms))
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "egress".to_owned(),
                message: format!("cannot build the client: {e}"),
            })?;
        Ok(Self {
            client,
            policy,
            first_byte_timeout: Duration::from_millis(config.first_byte_timeout_ms),
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// Checks `url` against the policy without sending anything (names are checked when
    /// resolved).
    pub fn check(&self, url: &str) -> Result<(), EgressError> {
        let url = Url::parse(url).map_err(|e| EgressError::Refused(format!("`{url}`: {e}")))?;
        self.policy.check_url(&url).map_err(EgressError::Refused)
    }

    /// [`check`](Self::check), and for a name, that it resolves now and only to addresses the
    /// policy allows: what a user saves for later (a webhook) is refused at once when it points
    /// inside, though every request is checked again when it is made (names can change).
    pub async fn check_resolving(&self, url: &str) -> Result<(), EgressError> {
        self.check(url)?;
        let parsed = Url::parse(url).map_err(|e| EgressError::Refused(format!("`{url}`: {e}")))?;
        let Some(url::Host::Domain(host)) = parsed.host() else {
            return Ok(());
        };
        let lookup = tokio::net::lookup_host((host, 0));
        let addresses: Vec<SocketAddr> =
            match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                Ok(Ok(addresses)) => addresses.collect(),
                Ok(Err(e)) => {
                    return Err(EgressError::Refused(format!(
                        "`{host}` does not resolve: {e}"
                    )));
                }
                Err(_) => {
                    return Err(EgressError::Refused(format!(
                        "`{host}` did not resolve in time"
                    )));
                }
            };
        if addresses.is_empty() {
            return Err(EgressError::Refused(format!("`{host}` has no address")));
        }
        for address in addresses {
            self.policy.check_ip(address.ip()).map_err(|reason| {
                EgressError::Refused(format!("`{host}` resolves to a refused address: {reason}"))
            })?;
        }
        Ok(())
    }

    /// Sends `request` if the policy allows its destination; reads at most the configured bytes.
    pub async fn send(&self, request: &EgressRequest) -> Result<EgressResponse, EgressError> {
        let url = Url::parse(&request.url)
            .map_err(|e| EgressError::Refused(format!("`{}`: {e}", request.url)))?;
        self.policy.check_url(&url).map_err(EgressError::Refused)?;
        let method = if request.method.is_empty() {
            reqwest::Method::GET
        } else {
            reqwest::Method::from_bytes(request.method.as_bytes())
                .map_err(|_| EgressError::Refused(format!("method `{}`", request.method)))?
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        let mut response = tokio::time::timeout(self.first_byte_timeout, builder.send())
            .await
            .map_err(|_| EgressError::Timeout("no response in time"))?
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| KEPT_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            let room = self.max_response_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(EgressResponse {
            status,
            headers,
            body,
            truncated,
        })
    }
}

/// A refusal by the resolver or the redirect rule reads as a refusal, a timeout as a timeout.
fn classify(err: &reqwest::Error) -> EgressError {
    let chain = crate::status::error_chain(err);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<Refusal>() {
            return EgressError::Refused(chain);
        }
        source = cause.source();
    }
    if err.is_timeout() {
        EgressError::Timeout("the exchange took too long")
    } else {
        EgressError::Transport(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress(config: &EgressConfig) -> Egress {
        Egress::new(config, "taskmesh-test").expect("egress")
    }

    #[test]
    fn public_addresses_are_told_from_the_rest() {
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "8.8.8.8",
        ] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
        for inside in [
            "127.0.0.1",
            "10.0.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::",
            "2001:0:4136:e378::",
        ] {
            assert!(!is_public(inside.parse().expect("ip")), "{inside}");
        }
    }

    #[test]
    fn urls_outside_the_policy_are_refused_before_sending() {
        let egress = egress(&EgressConfig::default());
        for url in [
            "ftp://example.org/",
            "file:///etc/passwd",
            "gopher://example.org/",
            "http://example.org:22/",
            "https://example.org:8443/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(
                matches!(egress.check(url), Err(EgressError::Refused(_))),
                "{url}"
            );
        }
        assert!(egress.check("https://example.org/page").is_ok());
    }
}
