//! The gateway, taskmesh's only edge. REST/JSON routes come from the `google.api.http` options in
//! the contracts' descriptor set at run time ([`routes`], [`template`], [`transcode`]); calls go to
//! the upstream that serves the proto package ([`upstream`]) as raw protobuf. Browsers use grpc-web
//! on the same port; gRPC clients use the native port, where [`grpc_proxy`] forwards calls and the
//! gateway serves reflection for every contract. [`openapi`] documents every route. [`guard`]
//! authenticates and rate-limits every call before it goes upstream; [`wellknown`] serves the OIDC
//! discovery document and the JWKS. [`files`] streams uploads and downloads.

pub mod app;
pub mod config;
pub mod docs;
pub mod files;
pub mod grpc_proxy;
pub mod guard;
pub mod openapi;
pub mod rest;
pub mod routes;
pub mod template;
pub mod transcode;
pub mod upstream;
pub mod wellknown;

pub use app::Gateway;
pub use config::GatewayConfig;
