//! `/docs`: Swagger UI over `/openapi.json`, served from the npm package `swagger-ui-dist` that
//! the local stack installs. Only the package's known asset files are served.

use std::path::{Path, PathBuf};

use axum::body::Body;
use http::{Response, StatusCode, header};

/// The page: Swagger UI pointed at the gateway's own OpenAPI document.
const INDEX: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>taskmesh API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
  </script>
</body>
</html>
"##;

/// The asset files the page loads, with their content types.
const ASSETS: &[(&str, &str)] = &[
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    (
        "swagger-ui-standalone-preset.js",
        "text/javascript; charset=utf-8",
    ),
    ("favicon-32x32.png", "image/png"),
];

/// Serves `/docs` and `/docs/<asset>`.
pub async fn serve(dir: Option<&Path>, asset: Option<&str>) -> Response<Body> {
    let Some(dir) = dir else {
        return text(
            StatusCode::NOT_FOUND,
            "Swagger UI is not installed; /openapi.json has the document\n",
        );
    };
    let Some(asset) = asset else {
        let mut response = Response::new(Body::from(INDEX));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return response;
    };
    let Some((name, content_type)) = ASSETS.iter().find(|(name, _)| *name == asset) else {
        return text(StatusCode::NOT_FOUND, "no such asset\n");
    };
    let path: PathBuf = dir.join(name);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
            response
        }
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "swagger-ui asset missing");
            text(StatusCode::NOT_FOUND, "no such asset\n")
        }
    }
}

fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response
}
