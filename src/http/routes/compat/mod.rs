//! Drop-in wire compatibility with two commercial appliances, so their integrations can switch
//! to kycd unchanged: Facia's `/process_face` ([`facia`]) and FacePhi's IAD service
//! ([`facephi`]). Each answers in the vendor's body shape; error bodies also carry kycd's own
//! `error` envelope beside the vendor's fields, so both kinds of client find what they parse.

pub mod facephi;
pub mod facia;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::Value;

use crate::error::ApiError;

/// Registers the compatibility routes at the root (outside `/v1`: the vendors' paths).
pub fn configure(cfg: &mut web::ServiceConfig) {
    facia::configure(cfg);
    facephi::configure(cfg);
}

/// An error in the vendor's shape (`vendor`, an object) merged with kycd's envelope.
fn vendor_error(status: StatusCode, vendor: Value, api: &ApiError) -> HttpResponse {
    let mut body = api.body();
    if let (Value::Object(out), Value::Object(fields)) = (&mut body, vendor) {
        out.extend(fields);
    }
    HttpResponse::build(status).json(body)
}
