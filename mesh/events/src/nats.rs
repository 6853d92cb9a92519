//! Connecting to NATS without blocking startup: the client keeps reconnecting in the background and
//! readiness reports whether it is connected. A service logs in as its own user (its password read
//! from Vault) and receives replies only under its own inbox prefix, `_INBOX_<service>`, which is
//! all the broker lets it subscribe to.

use std::time::Duration;

use async_nats::connection::State;
use secrecy::ExposeSecret;
use taskmesh_mesh::NatsCredentials;

/// Splits the login off a URL that carries one (`nats://operator:secret@host:4222`, an
/// operator's override): the URL without it, and the login. The client does not read logins from
/// URLs itself.
pub fn split_login(url: &str) -> (String, Option<NatsCredentials>) {
    let parsed = url.parse::<async_nats::ServerAddr>().ok();
    let login = parsed.as_ref().and_then(|addr| {
        Some(NatsCredentials {
            username: addr.username()?.to_owned(),
            password: addr.password().unwrap_or_default().to_owned().into(),
        })
    });
    match (login, url.split_once("://")) {
        (Some(login), Some((scheme, rest))) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            (format!("{scheme}://{host}"), Some(login))
        }
        _ => (url.to_owned(), None),
    }
}

/// True when `url` carries a user and password itself.
pub fn url_has_login(url: &str) -> bool {
    split_login(url).1.is_some()
}

/// The client options of service `name`: its name, inbox prefix and login (`credentials`, unless
/// the URL carries one).
pub fn options(name: &str, credentials: Option<&NatsCredentials>) -> async_nats::ConnectOptions {
    let options = async_nats::ConnectOptions::new()
        .name(format!("taskmesh-{name}"))
        .custom_inbox_prefix(format!("_INBOX_{name}"))
        .connection_timeout(Duration::from_secs(2));
    match credentials {
        Some(login) => options.user_and_password(
            login.username.clone(),
            login.password.expose_secret().to_owned(),
        ),
        None => options,
    }
}

/// Connects to `url` as `name`, logged in with the URL's login or else `credentials`. Returns at
/// once even when NATS is down; the client reconnects.
pub async fn connect(
    url: &str,
    name: &str,
    credentials: Option<&NatsCredentials>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let (url, options) = logged_in(url, name, credentials);
    options
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(|event| async move {
            match event {
                // A permission violation among them: the broker refused something the service did.
                async_nats::Event::ServerError(error) => {
                    tracing::warn!(error = %error, "the NATS server refused a request");
                }
                event => tracing::info!(event = %event, "nats connection event"),
            }
        })
        .connect(url.as_str())
        .await
}

/// Connects once to `url` (failing at once when NATS cannot be reached) as `name`, logged in with
/// the URL's login or else `credentials`: for commands and tests.
pub async fn connect_once(
    url: &str,
    name: &str,
    credentials: Option<&NatsCredentials>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let (url, options) = logged_in(url, name, credentials);
    options.connect(url.as_str()).await
}

/// `url` without its login, and the options of `name` logged in with that login or else
/// `credentials`.
fn logged_in(
    url: &str,
    name: &str,
    credentials: Option<&NatsCredentials>,
) -> (String, async_nats::ConnectOptions) {
    let (url, in_url) = split_login(url);
    let options = options(name, in_url.as_ref().or(credentials));
    (url, options)
}

/// True while the client is connected.
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == State::Connected
}

/// Adds a `nats` check to a service's readiness: ready only while connected.
pub fn add_readiness(readiness: &taskmesh_mesh::Readiness, client: &async_nats::Client) {
    let client = client.clone();
    readiness.add("nats", move || {
        let connected = is_connected(&client);
        Box::pin(async move { connected })
    });
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::split_login;

    #[test]
    fn a_login_in_the_url_is_split_off() {
        let (url, login) = split_login("nats://operator:s3cret@127.0.0.1:4222");
        assert_eq!(url, "nats://127.0.0.1:4222");
        let login = login.expect("a login");
        assert_eq!(login.username, "operator");
        assert_eq!(login.password.expose_secret(), "s3cret");
        let (url, login) = split_login("nats://127.0.0.1:4222");
        assert_eq!(url, "nats://127.0.0.1:4222");
        assert!(login.is_none());
    }
}
