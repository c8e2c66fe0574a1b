//! `GET /v1/ping`: lets a client check its request signing.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::Principal;
use crate::http::resource;

/// Registers `/v1/ping` (inside the signed scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ping").route(web::get().to(ping)));
}

/// Echoes who signed the request.
async fn ping(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "tenant_id": principal.tenant_id, "key_id": principal.key_id }))
}
