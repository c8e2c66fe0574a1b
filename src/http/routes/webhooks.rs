//! Tenant webhooks: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`, the delivery log
//! `GET /v1/webhooks/{id}/deliveries`, a test ping `POST /v1/webhooks/{id}/test` and manual
//! redelivery `POST /v1/webhooks/deliveries/{id}/redeliver`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::audit::NewEntry;
use crate::error::{ApiError, Code};
use crate::http::extract::{need, Authorized};
use crate::http::{resource, AppState};
use crate::store::{self, webhooks::WebhookRow, StoreError};
use crate::workflow::webhooks::{self as hooks, EVENTS, FAMILY};

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

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidInput, message).with_details(json!({ "field": field }))
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
    let body = body.into_inner();
    let events = body.events.unwrap_or_else(|| {
        vec![
            "kyc.completed".into(),
            "kyc.failed".into(),
            "kyc.reviewed".into(),
        ]
    });
    if events.is_empty() {
        return Err(invalid("events", "at least one event"));
    }
    for (i, e) in events.iter().enumerate() {
        if events[..i].contains(e) {
            return Err(invalid(
                &format!("events[{i}]"),
                format!("`{e}` is listed twice"),
            ));
        }
        if !EVENTS.contains(&e.as_str()) {
            return Err(invalid(
                &format!("events[{i}]"),
                format!("unknown event `{e}`; known: {}", EVENTS.join(", ")),
            ));
        }
    }
    let st = state.clone();
    let out = web::block(move || -> Result<_, ApiError> {
        // Judged now (the host resolved) and again before every delivery.
        st.jobs
            .egress()
            .check(&body.url, !principal.sandbox)
            .map_err(|e| invalid("url", format!("url {e}")))?;
        let secret = format!("whsec_{}", hooks::random_hex(24));
        let row = WebhookRow {
            id: format!("whk_{}", hooks::random_hex(12)),
            tenant_id: principal.tenant_id.clone(),
            url: body.url,
            events,
            created_at: store::now(),
        };
        let key = st.store.data_key(FAMILY)?;
        st.store.write(|tx| {
            if store::webhooks::list(tx, &row.tenant_id)?.len() >= hooks::MAX_ENDPOINTS {
                return Err(StoreError::Invalid {
                    field: "url",
                    reason: format!(
                        "a tenant may have at most {} webhook endpoints; delete one first",
                        hooks::MAX_ENDPOINTS
                    ),
                });
            }
            let sealed = key.seal(secret.as_bytes(), row.id.as_bytes())?;
            store::webhooks::insert(tx, &row, &sealed)?;
            let entry = NewEntry::new(format!("key:{}", principal.key_id), "webhook.create")
                .tenant(&row.tenant_id)
                .target(&row.id);
            store::audit::append(tx, &entry, row.created_at)?;
            Ok(())
        })?;
        Ok(json!({ "id": row.id, "url": row.url, "events": row.events, "created_at": row.created_at, "secret": secret }))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Created().json(out))
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
    let st = state.clone();
    let rows = web::block(move || {
        st.store
            .read(|c| store::webhooks::list(c, &principal.tenant_id))
    })
    .await
    .map_err(ApiError::internal)??;
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
    let st = state.clone();
    web::block(move || -> Result<(), ApiError> {
        st.store.write(|tx| {
            if !store::webhooks::delete(tx, &principal.tenant_id, &id, store::now())? {
                return Err(StoreError::NotFound("webhook"));
            }
            let entry = NewEntry::new(format!("key:{}", principal.key_id), "webhook.delete")
                .tenant(&principal.tenant_id)
                .target(id.as_str());
            store::audit::append(tx, &entry, store::now())?;
            Ok(())
        })?;
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
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
    let st = state.clone();
    let out = web::block(move || -> Result<_, ApiError> {
        st.store
            .read(|c| {
                if store::webhooks::get(c, &principal.tenant_id, &id)?.is_none() {
                    return Err(StoreError::NotFound("webhook"));
                }
                let rows = store::webhooks::deliveries(c, &principal.tenant_id, Some(&id), 100)?;
                let mut data = Vec::new();
                for d in rows {
                    let attempts = store::webhooks::attempts(c, &d.id)?;
                    let mut v = serde_json::to_value(&d).unwrap_or_default();
                    v["attempt_log"] = json!(attempts);
                    data.push(v);
                }
                Ok(json!({ "data": data }))
            })
            .map_err(ApiError::from)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(out))
}

/// Queues a `webhook.test` event to this endpoint only.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", security(("X-API-SIGN" = ["webhooks:write"])), tag = "workflow", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, description = "A `webhook.test` event was queued", body = Object)))]
async fn test_ping(
    principal: Authorized<need::WebhooksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let delivery = web::block(move || -> Result<_, ApiError> {
        let hook = st
            .store
            .read(|c| store::webhooks::get(c, &principal.tenant_id, &id))?
            .ok_or_else(|| ApiError::new(Code::NotFound, "no such webhook"))?;
        let body = hooks::event_body("webhook.test", json!({ "webhook_id": hook.id }));
        let key = st.store.data_key(FAMILY)?;
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let target = hooks::Target {
            tenant_id: &hook.tenant_id,
            webhook_id: Some(hook.id.clone()),
            url: hook.url.clone(),
            key_id: None,
            subject_id: None,
        };
        let id = st.store.write(|tx| {
            hooks::enqueue_one(&key, tx, target, "webhook.test", &bytes, store::now())
        })?;
        Ok(id)
    })
    .await
    .map_err(ApiError::internal)??;
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
    let st = state.clone();
    let id2 = id.clone();
    web::block(move || -> Result<(), ApiError> {
        st.store
            .write(|tx| store::webhooks::redeliver(tx, &principal.tenant_id, &id2, store::now()))?;
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    state.jobs.deliverer.wake.notify_one();
    Ok(HttpResponse::Accepted()
        .json(json!({ "delivery_id": id.into_inner(), "status": "pending" })))
}
