//! `taskmesh.notifications.v1.WebhookService`: a project's webhooks, seen and changed by its
//! owners and admins. A URL must pass the egress policy when saved (and again on every request);
//! a filter must parse; the secret is made here, sealed at rest and shown once.

use std::sync::Arc;

use taskmesh_clients::projects::{Access, ProjectsClient};
use taskmesh_contracts::notifications_v1::webhook_service_server::WebhookService;
use taskmesh_contracts::notifications_v1::{
    CreateWebhookRequest, DeleteWebhookRequest, GetWebhookRequest, ListWebhookDeliveriesRequest,
    ListWebhookDeliveriesResponse, ListWebhooksRequest, ListWebhooksResponse,
    RedeliverWebhookDeliveryRequest, RotateWebhookSecretRequest, UpdateWebhookRequest, Webhook,
    WebhookDelivery,
};
use taskmesh_contracts::projects_v1::{Project, Role};
use taskmesh_mesh::CallContext;
use taskmesh_mesh::aip;
use taskmesh_mesh::egress::Egress;
use taskmesh_mesh::names::ResourcePattern;
use taskmesh_mesh::sealed::Sealer;
use taskmesh_mesh::status::{invalid_field, required};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::domain::signing;
use crate::store::Store;
use crate::store::inbox::WEBHOOK_FILTER_FIELDS;
use crate::store::webhooks::{NewWebhook, WebhookChange};

/// Handles webhook RPCs.
#[derive(Debug, Clone)]
pub struct WebhooksService {
    store: Store,
    projects: ProjectsClient,
    egress: Egress,
    sealer: Sealer,
    max_per_project: i64,
    /// The webhook loop of this process, woken by a redelivery.
    wake: Arc<Notify>,
}

impl WebhooksService {
    /// Handlers over `store`, authorizing through `projects`, checking URLs with `egress`,
    /// sealing secrets with `sealer` and waking the webhook loop with `wake`.
    pub fn new(
        store: Store,
        projects: ProjectsClient,
        egress: Egress,
        sealer: Sealer,
        max_per_project: i64,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            projects,
            egress,
            sealer,
            max_per_project,
            wake,
        }
    }

    /// PERMISSION_DENIED unless the caller owns or administers `project`.
    async fn authorize(&self, context: &CallContext, project: &str) -> Result<(), Status> {
        let role = self
            .projects
            .authorize(context, project, Access::Write)
            .await?;
        if matches!(role, Role::Owner | Role::Admin) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "only owners and admins of projects/{project} manage its webhooks"
            )))
        }
    }

    async fn check_url(&self, field: &str, url: &str) -> Result<(), Status> {
        self.egress
            .check_resolving(url)
            .await
            .map_err(|e| invalid_field(field, e.to_string()))
    }
}

fn check_filter(field: &str, filter: &str) -> Result<(), Status> {
    aip::Filter::parse(filter, WEBHOOK_FILTER_FIELDS)
        .map(|_| ())
        .map_err(|e| invalid_field(field, e.0))
}

/// Project and webhook ids of `name` (request field `field`).
fn webhook_name<'a>(field: &str, name: &'a str) -> Result<(&'a str, &'a str), Status> {
    let [project, webhook] = ResourcePattern::of::<Webhook>().parse(field, name)?;
    Ok((project, webhook))
}

#[tonic::async_trait]
impl WebhookService for WebhooksService {
    async fn create_webhook(
        &self,
        request: Request<CreateWebhookRequest>,
    ) -> Result<Response<Webhook>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [project] = ResourcePattern::of::<Project>().parse("parent", &request.parent)?;
        self.authorize(&context, project).await?;
        let webhook = request.webhook.ok_or_else(|| required("webhook"))?;
        self.check_url("webhook.url", &webhook.url).await?;
        check_filter("webhook.filter", &webhook.filter)?;
        let id = aip::new_id();
        let name = format!("projects/{project}/webhooks/{id}");
        let secret = signing::new_secret();
        let sealed = self.sealer.seal(&name, &secret);
        let (row, created) = self
            .store
            .create_webhook(
                &NewWebhook {
                    project,
                    id: &id,
                    url: &webhook.url,
                    filter: &webhook.filter,
                    active: webhook.active,
                    secret: &sealed,
                    creator: &context.caller,
                    request_id: aip::request_id(&request.request_id),
                },
                self.max_per_project,
            )
            .await?;
        let mut shown = row.to_proto();
        if created {
            shown.secret = secret;
        }
        Ok(Response::new(shown))
    }

    async fn get_webhook(
        &self,
        request: Request<GetWebhookRequest>,
    ) -> Result<Response<Webhook>, Status> {
        let context = CallContext::of(&request);
        let (project, id) = webhook_name("name", &request.get_ref().name)?;
        self.authorize(&context, project).await?;
        Ok(Response::new(
            self.store.webhook(project, id).await?.to_proto(),
        ))
    }

    async fn list_webhooks(
        &self,
        request: Request<ListWebhooksRequest>,
    ) -> Result<Response<ListWebhooksResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let [project] = ResourcePattern::of::<Project>().parse("parent", &request.parent)?;
        self.authorize(&context, project).await?;
        let (rows, next_page_token) = self
            .store
            .list_webhooks(project, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(ListWebhooksResponse {
            webhooks: rows.iter().map(|r| r.to_proto()).collect(),
            next_page_token,
        }))
    }

    async fn update_webhook(
        &self,
        request: Request<UpdateWebhookRequest>,
    ) -> Result<Response<Webhook>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let webhook = request.webhook.ok_or_else(|| required("webhook"))?;
        let (project, id) = webhook_name("webhook.name", &webhook.name)?;
        self.authorize(&context, project).await?;
        let paths = aip::update_paths(request.update_mask.as_ref(), &["url", "filter", "active"])?;
        let mut change = WebhookChange::default();
        for path in paths {
            match path {
                "url" => {
                    self.check_url("webhook.url", &webhook.url).await?;
                    change.url = Some(webhook.url.clone());
                }
                "filter" => {
                    check_filter("webhook.filter", &webhook.filter)?;
                    change.filter = Some(webhook.filter.clone());
                }
                "active" => change.active = Some(webhook.active),
                _ => {}
            }
        }
        let row = self
            .store
            .update_webhook(project, id, &webhook.etag, change)
            .await?;
        Ok(Response::new(row.to_proto()))
    }

    async fn delete_webhook(
        &self,
        request: Request<DeleteWebhookRequest>,
    ) -> Result<Response<()>, Status> {
        let context = CallContext::of(&request);
        let request = request.get_ref();
        let (project, id) = webhook_name("name", &request.name)?;
        self.authorize(&context, project).await?;
        self.store
            .delete_webhook(project, id, &request.etag)
            .await?;
        Ok(Response::new(()))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<RotateWebhookSecretRequest>,
    ) -> Result<Response<Webhook>, Status> {
        let context = CallContext::of(&request);
        let name = request.get_ref().name.clone();
        let (project, id) = webhook_name("name", &name)?;
        self.authorize(&context, project).await?;
        let secret = signing::new_secret();
        let change = WebhookChange {
            secret: Some(self.sealer.seal(&name, &secret)),
            ..WebhookChange::default()
        };
        let row = self.store.update_webhook(project, id, "", change).await?;
        let mut shown = row.to_proto();
        shown.secret = secret;
        Ok(Response::new(shown))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<Response<ListWebhookDeliveriesResponse>, Status> {
        let context = CallContext::of(&request);
        let request = request.into_inner();
        let (project, id) = webhook_name("parent", &request.parent)?;
        self.authorize(&context, project).await?;
        let (deliveries, next_page_token) = self
            .store
            .list_deliveries(project, id, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(ListWebhookDeliveriesResponse {
            deliveries,
            next_page_token,
        }))
    }

    async fn redeliver_webhook_delivery(
        &self,
        request: Request<RedeliverWebhookDeliveryRequest>,
    ) -> Result<Response<WebhookDelivery>, Status> {
        let context = CallContext::of(&request);
        let [project, webhook, delivery] =
            ResourcePattern::of::<WebhookDelivery>().parse("name", &request.get_ref().name)?;
        self.authorize(&context, project).await?;
        let queued = self.store.redeliver(project, webhook, delivery).await?;
        self.wake.notify_one();
        Ok(Response::new(queued))
    }
}
