//! REST calls to the gateway as a client makes them: JSON in and out, a bearer token once signed
//! in, and registration through identity's saga.

use serde_json::Value;

use crate::harness::poll;

/// REST calls to the gateway, with a bearer token once one is set.
pub(crate) struct Rest {
    pub(crate) client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Rest {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            token: None,
        }
    }

    /// Sends every later call with `authorization: Bearer <token>`.
    pub(crate) fn sign_in(&mut self, token: &str) {
        self.token = Some(token.to_owned());
    }

    /// The full URL of `path` (`/v1/...`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Status and JSON body (or the text as a JSON string).
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("text");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Registers `username` (`<username>@example.org`), waits for the registration saga (login
    /// answers REGISTRATION_PENDING meanwhile, nothing else), signs in with the access token and
    /// returns the session.
    pub(crate) async fn register(&mut self, username: &str, password: &str) -> Value {
        let email = format!("{username}@example.org");
        let (status, user) = self
            .post(
                "/v1/users:register",
                serde_json::json!({"username": username, "email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "{user}");
        let session = poll("the registration saga", || async {
            let (status, body) = self
                .post(
                    "/v1/sessions:login",
                    serde_json::json!({"email": email, "password": password}),
                )
                .await;
            if status != 200 {
                assert_eq!(
                    body["details"][0]["reason"], "REGISTRATION_PENDING",
                    "{body}"
                );
            }
            (status == 200).then_some(body)
        })
        .await;
        self.sign_in(session["accessToken"].as_str().expect("access token"));
        session
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
}
