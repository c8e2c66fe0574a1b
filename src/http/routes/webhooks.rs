//! Tenant webhooks: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`, the delivery log
//! `GET /v1/webhooks/{id}/deliveries`, a test ping `POST /v1/webhooks/{id}/test` and manual
//! redelivery `POST /v1/webhooks/deliveries/{id}/redeliver`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::http::extract::{need, Authorized};
use crate::http::{resource, AppState};
use crate::workflow::endpoints;
use crate::workflow::webhooks as hooks;

/// Registers the routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/webhooks")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    // Before `/webhooks/{id}`, which would otherwise take the path.
    .service(resource("/webhooks/callback-secret").route(web::post().to(create_callback_secret)))
    .service(resource("/webhooks/{id}").route(web::delete().to(delete)))
    .service(resource("/webhooks/{id}/deliveries").route(web::get().to(deliveries)))
    .service(resource("/webhooks/{id}/test").route(web::post().to(test_ping)))
    .service(resource("/webhooks/deliveries/{id}/redeliver").route(web::post().to(redeliver)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create,
    list,
    create_callback_secret,
    delete,
    deliveries,
    test_ping,
    redeliver
))]
pub struct Doc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    url: String,
    /// Default: `kyc.completed`, `kyc.failed` and `kyc.reviewed`.
    events: Option<Vec<String>>,
}

/// Adds an endpoint; its signing secret is in this response only.
#[utoipa::path(post, path = "/v1/webhooks", security(("X-API-SIGN" = ["webhooks:write"])), tag = "workflow",
    request_body(content = CreateRequest, description = "`url` and `events` (kyc.completed, kyc.failed, kyc.reviewed, quota.threshold)",
        example = json!({"url": "https://hooks.example.com/kyc", "events": ["kyc.completed", "kyc.failed", "quota.threshold"]})),
    responses((status = 201, description = "The endpoint, with its signing secret (shown once)", body = Object,
        example = json!({"id": "whk_0a1b2c3d4e5f60718293a4b5", "url": "https://hooks.example.com/kyc", "events": ["kyc.completed"], "secret": "whsec_…"}))))]
async fn create(
    principal: Authorized<need::WebhooksWrite>,
    state: web::Data<AppState>,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let CreateRequest { url, events } = body.into_inner();
    let actor = format!("key:{}", principal.key_id);
    let made = crate::http::blocking(move || {
        endpoints::create(
            &state.store,
            state.jobs.egress(),
            &principal.tenant_id,
            !principal.sandbox,
            url,
            events,
            &actor,
        )
    })
    .await?;
    let row = made.endpoint;
    Ok(HttpResponse::Created().json(json!({ "id": row.id, "url": row.url, "events": row.events, "created_at": row.created_at, "secret": made.secret })))
}

/// Makes (or replaces) the secret that signs job `callback_url` deliveries; shown only here.
#[utoipa::path(post, path = "/v1/webhooks/callback-secret", tag = "workflow", security(("X-API-SIGN" = ["webhooks:write"])),
    responses((status = 201, description = "The callback secret, shown once; callbacks sent from now on (retries included) are signed with it", body = Object,
        example = json!({"secret": "whsec_…", "signature_header": "X-KYCD-Signature"}))))]
async fn create_callback_secret(
    principal: Authorized<need::WebhooksWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let actor = format!("key:{}", principal.key_id);
    let secret = crate::http::blocking(move || {
        hooks::rotate_callback_secret(&state.store, &principal.tenant_id, &actor)
    })
    .await?;
    Ok(HttpResponse::Created()
        .json(json!({ "secret": secret, "signature_header": "X-KYCD-Signature" })))
}

/// The tenant's webhook endpoints, without secrets.
#[utoipa::path(get, path = "/v1/webhooks", security(("X-API-SIGN" = ["webhooks:read"])), tag = "workflow",
    responses((status = 200, description = "The tenant's endpoints (no secrets)", body = Object, example = json!({"data": [{"id": "whk_0a1b…", "url": "https://hooks.example.com/kyc"}]}))))]
async fn list(
    principal: Authorized<need::WebhooksRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows =
        crate::http::blocking(move || endpoints::list(&state.store, &principal.tenant_id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "data": rows })))
}

/// Deletes an endpoint; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", security(("X-API-SIGN" = ["webhooks:write"])), tag = "workflow", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "Deleted; its pending deliveries are dropped", body = Object)))]
async fn delete(
    principal: Authorized<need::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = format!("key:{}", principal.key_id);
    crate::http::blocking(move || {
        endpoints::delete(&state.store, &principal.tenant_id, &id, &actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The endpoint's deliveries, newest first, each with its attempts.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", security(("X-API-SIGN" = ["webhooks:read"])), tag = "workflow", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "Deliveries with their attempt log", body = Object,
        example = json!({"data": [{"id": "dlv_…", "event": "kyc.completed", "status": "delivered", "attempts": 1, "attempt_log": [{"status": 200}]}]}))))]
async fn deliveries(
    principal: Authorized<need::WebhooksRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rows = crate::http::blocking(move || {
        endpoints::deliveries(&state.store, &principal.tenant_id, &id)
    })
    .await?;
    let data: Vec<_> = rows
        .into_iter()
        .map(|(d, attempts)| {
            let mut v = serde_json::to_value(&d).unwrap_or_default();
            v["attempt_log"] = json!(attempts);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Queues a `webhook.test` event to this endpoint only.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", security(("X-API-SIGN" = ["webhooks:write"])), tag = "workflow", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, description = "A `webhook.test` event was queued", body = Object)))]
async fn test_ping(
    principal: Authorized<need::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (st, actor) = (state.clone(), format!("key:{}", principal.key_id));
    let delivery = crate::http::blocking(move || {
        endpoints::test_ping(&st.store, &principal.tenant_id, &id, &actor)
    })
    .await?;
    state.jobs.deliverer.wake.notify_one();
    Ok(HttpResponse::Accepted().json(json!({ "delivery_id": delivery, "status": "pending" })))
}

/// Queues a settled delivery again (409 while it is pending or its endpoint is gone).
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/redeliver", security(("X-API-SIGN" = ["webhooks:write"])), tag = "workflow", params(("id" = String, Path, description = "Delivery id")),
    responses((status = 202, description = "Queued again (409 while pending or when the endpoint is gone)", body = Object)))]
async fn redeliver(
    principal: Authorized<need::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (st, actor, id2) = (
        state.clone(),
        format!("key:{}", principal.key_id),
        id.clone(),
    );
    crate::http::blocking(move || {
        endpoints::redeliver(&st.store, &principal.tenant_id, &id2, &actor)
    })
    .await?;
    state.jobs.deliverer.wake.notify_one();
    Ok(HttpResponse::Accepted()
        .json(json!({ "delivery_id": id.into_inner(), "status": "pending" })))
}
