//! `GET /v1/ping`: lets a client check its request signing.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::http::extract::{need, Authorized};
use crate::http::resource;

/// Registers `/v1/ping` (inside the signed scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ping").route(web::get().to(ping)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ping))]
pub struct Doc;

/// Echoes who signed the request.
#[utoipa::path(get, path = "/v1/ping", tag = "ops",
    responses((status = 200, description = "The caller", body = Object,
        example = json!({"tenant_id": "ten_5b2c0e7a91d4f3a6", "key_id": "ak_0c1d2e3f4a5b6c7d8e9f0a1b"}))))]
async fn ping(principal: Authorized<need::Signed>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "tenant_id": principal.tenant_id, "key_id": principal.key_id }))
}
