//! `POST /v1/document/validate`: ICAO 9303 MRZ and printed-field checks.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::document::mrz::MrzInput;
use crate::document::read::{self, Hints};
use crate::document::report;
use crate::document::validate::{self, ValidateOptions, VizFields};
use crate::error::{ApiError, Code};
use crate::http::extract::{need, Authorized};
use crate::http::metered::{annotate, metered};
use crate::http::{request_id, resource, AppState};
use crate::media::intake::{self, Keep};
use crate::tenancy::plans::Module;

/// Registers the document routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/document/validate").route(web::post().to(validate_document)))
        .service(resource("/document/ocr").route(web::post().to(ocr_document)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(validate_document, ocr_document))]
pub struct Doc;

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
#[utoipa::path(post, path = "/v1/document/validate", security(("X-API-SIGN" = ["validation"])), tag = "verification",
    request_body(content = Object, description = "`mrz` (string with newlines, or array of lines), optional printed `fields`, `options` {check_expiry, min_age}",
        example = json!({"mrz": ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"], "options": {"check_expiry": false}})),
    responses((status = 200, description = "Checks; billed as one `validation` unit", body = Object,
        example = json!({"document_valid": true, "format": "TD3", "checks": [{"name": "mrz_checksum_document_number", "status": "pass", "detail": "check digit 6"}], "confidence": 0.98, "usage": {"module": "validation", "units": 1, "billed": true, "overage": false}}))))]
async fn validate_document(
    principal: Authorized<need::Validation>,
    state: web::Data<AppState>,
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
    let request_id = request_id::current();
    let sandbox = principal.sandbox;
    // The checks take microseconds; the pool is for the quota and usage rows.
    let (result, usage) = web::block(move || {
        metered(
            &state,
            &principal,
            &request_id,
            &[Module::Validation],
            || Ok(validate::validate(&mrz, body.fields.as_ref(), &opts)?),
        )
    })
    .await
    .map_err(ApiError::internal)??;
    let mut out = serde_json::to_value(&result).map_err(ApiError::internal)?;
    annotate(&mut out, sandbox, &usage);
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OcrRequest {
    /// The page with the portrait (and the MRZ of a passport), base64 or `data:` URL.
    image_front_base64: String,
    /// The back of a card (TD1 cards carry the MRZ there).
    image_back_base64: Option<String>,
    /// Expected type; steers only when the page has no MRZ.
    document_hint: Option<String>,
    /// Expected issuing country; steers only when the page has no MRZ.
    country_hint: Option<String>,
}

/// Reads a document photo (front, optional back); billed as `ocr`.
#[utoipa::path(post, path = "/v1/document/ocr", security(("X-API-SIGN" = ["ocr"])), tag = "verification",
    request_body(content = OcrRequest, description = "`image_front_base64`, optional `image_back_base64`, `document_hint`, `country_hint`",
        example = json!({"image_front_base64": "/9j/4AAQSkZJRg…", "document_hint": "passport", "country_hint": "UTO"})),
    responses((status = 200, description = "What was read; billed as one `ocr` unit. `detected.source` is `mrz`, `barcode` (an AAMVA PDF417, as North-American licences carry on the back) or `printed` (keywords in the EU languages); `barcode` (null when none) gives `format` (`pdf417`, `qr_code`, `data_matrix`), `standard` (`aamva`), the parsed `aamva` record and `checks` (`barcode_print_consistency_<field>`: pass, fail = possible alteration, warn = not found in the print); `mrz.print_checks` compares the MRZ with the printed fields the same way (`viz_mrz_consistency_<field>`; never changes `mrz.valid`); `card.corners` (null when not found) are the card's four corners in the front photo when it was found by its edges and read warped flat", body = Object,
        example = json!({"detected": {"type": "passport", "country": "UTO", "confidence": 0.99, "source": "mrz"}, "fields": {"surname": "ERIKSSON", "given_names": "ANNA MARIA", "document_number": "L898902C3", "birth_date": "1974-08-12", "sex": "F", "nationality": "UTO", "expiry_date": "2012-04-15"}, "mrz": {"valid": true, "format": "TD3"}, "quality": {"sharpness": 180.2, "glare": 0.0}, "usage": {"module": "ocr", "units": 1, "billed": true, "overage": false}}))))]
async fn ocr_document(
    principal: Authorized<need::Ocr>,
    state: web::Data<AppState>,
    body: web::Json<OcrRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let body = body.into_inner();
    let request_id = request_id::current();
    let sandbox = principal.sandbox;
    let st = state.clone();
    let ((front, back), usage) = web::block(move || {
        metered(&st, &principal, &request_id, &[Module::Ocr], || {
            let mut held = st.media.hold(&principal.tenant_id);
            let mut decode = |b64: &str| -> Result<image::RgbImage, ApiError> {
                let bytes = intake::decode_base64(b64, &st.media.limits)?;
                Ok(st.media.accept(&bytes, &mut held, Keep::Full)?.image)
            };
            let front_img = decode(&body.image_front_base64)?;
            let back_img = body
                .image_back_base64
                .as_deref()
                .map(&mut decode)
                .transpose()?;
            let hints = Hints {
                document_type: body.document_hint,
                country: body.country_hint,
            };
            let inference = std::time::Instant::now();
            let (front, back) = st.vision.exclusive(|v| {
                let front = read::read(&v.ocr, &v.analyzer, &front_img, &hints);
                let back = back_img
                    .as_ref()
                    .map(|b| read::read(&v.ocr, &v.analyzer, b, &hints));
                (front, back)
            });
            st.metrics
                .inference_duration
                .with_label_values(&["ocr"])
                .observe(inference.elapsed().as_secs_f64());
            // A back without a readable document is not an error when the front was read.
            let front = front?;
            let back = match back {
                Some(Ok(b)) => Some(b),
                Some(Err(read::ReadError::NoDocument)) | None => None,
                Some(Err(e)) => return Err(e.into()),
            };
            Ok((front, back))
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let mut out = report::ocr_report(&front, back.as_ref());
    out["processing_ms"] = json!(started.elapsed().as_millis() as u64);
    annotate(&mut out, sandbox, &usage);
    Ok(HttpResponse::Ok().json(out))
}
