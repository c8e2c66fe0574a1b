//! `POST /v1/document/validate`: ICAO 9303 MRZ and printed-field checks.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::Principal;
use crate::document::mrz::MrzInput;
use crate::document::validate::{self, ValidateOptions, VizFields};
use crate::error::{ApiError, Code};
use crate::http::resource;

/// Registers the document routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/document/validate").route(web::post().to(validate_document)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    /// The MRZ: one string (lines separated by newlines) or an array of lines.
    mrz: Option<MrzInput>,
    /// Printed (VIZ) fields to compare with the MRZ.
    fields: Option<VizFields>,
    /// Check tuning.
    #[serde(default)]
    options: ValidateRequestOptions,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ValidateRequestOptions {
    /// Whether an expired document fails (`not_expired`); default true.
    check_expiry: Option<bool>,
    /// Minimum age in years for `age_plausible`; none by default.
    min_age: Option<u32>,
}

/// Validates an MRZ (and optional printed fields): check digits, dates, codes, coherence.
async fn validate_document(
    _principal: Principal,
    body: web::Json<ValidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mrz = body.mrz.ok_or_else(|| {
        ApiError::new(Code::InvalidInput, "mrz is required")
            .with_details(serde_json::json!({ "field": "mrz" }))
    })?;
    let mut opts = ValidateOptions::today_utc();
    if let Some(check) = body.options.check_expiry {
        opts.check_expiry = check;
    }
    opts.min_age = body.options.min_age;
    // Pure CPU work measured in microseconds: no need for the blocking pool.
    let result = validate::validate(&mrz, body.fields.as_ref(), &opts)?;
    Ok(HttpResponse::Ok().json(result))
}
