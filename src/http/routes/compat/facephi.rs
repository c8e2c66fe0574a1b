//! FacePhi IAD-compatible endpoints under `/api/v1/iad`: `liveness/evaluate`, `extract`,
//! `config`, `health`, `version`.
//!
//! FacePhi's IAD 2.0 service takes a multipart field `capture` (a request with only the 1.x
//! `file` field is refused) and answers with its public fields `diagnostic`, `reason`,
//! `probability`, `score`, `faceProbability`, `sdkDuration`, `queueDuration`. Its SDK's capture
//! bundle is proprietary and encrypted, so kycd accepts as `capture` either the image itself
//! (JPEG, PNG or WebP) or JSON `{"image": "<base64 or data: URL>", "timestamp": <Unix seconds
//! or RFC 3339>}`; the timestamp feeds the optional replay-freshness check.
//!
//! Like FacePhi's appliance, these calls carry no credential: they are billed to the tenant in
//! `compat.facephi_tenant` and answer 404 until one is configured, so expose them only on a
//! trusted network. `diagnostic` values follow FacePhi's public list (`Live`, `NoLive`,
//! `NoneBecauseFaceNotFound`, `NoneBecauseTooManyFaces`, …); `reason` is `None` unless the
//! capture is judged an attack (`UntrustedContent`).

use std::collections::HashMap;
use std::time::Instant;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use super::vendor_error;
use crate::error::{ApiError, Code};
use crate::http::extract::Operator;
use crate::http::{request_id, resource, upload, AppState};
use crate::media::intake::{self, Keep};
use crate::store;
use crate::tenancy;
use crate::tenancy::meter::Payer;
use crate::tenancy::plans::Module;
use crate::vision::liveness::active::Challenges;

/// Registers the IAD routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/iad/liveness/evaluate").route(web::post().to(evaluate)))
        .service(resource("/api/v1/iad/extract").route(web::post().to(extract)))
        .service(
            resource("/api/v1/iad/config")
                .route(web::get().to(get_config))
                .route(web::post().to(set_config)),
        )
        .service(resource("/api/v1/iad/health").route(web::get().to(health)))
        .service(resource("/api/v1/iad/version").route(web::get().to(version)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(evaluate, extract, get_config, set_config, health, version))]
pub struct Doc;

/// The IAD settings a client can read and the operator change at run time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IadSettings {
    /// Refuse captures older (or newer) than the tolerance.
    pub replay_check: bool,
    /// Freshness window in seconds.
    pub replay_tolerance_seconds: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IadSettingsPatch {
    replay_check: Option<bool>,
    replay_tolerance_seconds: Option<u64>,
}

fn message(status: StatusCode, text: &str, code: Code) -> HttpResponse {
    vendor_error(
        status,
        json!({ "message": text }),
        &ApiError::new(code, text),
    )
}

/// A decoded capture.
struct Capture {
    bytes: Vec<u8>,
    timestamp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureJson {
    image: String,
    timestamp: Option<serde_json::Value>,
}

/// Reads the `capture` field; a vendor-shaped response when it is missing or unreadable.
async fn read_capture(
    state: &AppState,
    form: Multipart,
) -> Result<Result<Capture, HttpResponse>, ApiError> {
    let mut fields: HashMap<String, Vec<u8>> =
        upload::read_form(form, state.config.media.max_image_bytes * 2).await?;
    let Some(raw) = fields.remove("capture") else {
        let text = if fields.contains_key("file") {
            "The multipart field 'file' is no longer accepted; send the capture as 'capture'"
        } else {
            "Missing required multipart field 'capture'"
        };
        return Ok(Err(message(
            StatusCode::BAD_REQUEST,
            text,
            Code::InvalidInput,
        )));
    };
    if intake::sniff(&raw).is_ok() {
        return Ok(Ok(Capture {
            bytes: raw,
            timestamp: None,
        }));
    }
    let unreadable = || {
        let text = "The capture is neither an image nor a JSON capture with a base64 image";
        vendor_error(
            StatusCode::BAD_REQUEST,
            json!({ "message": text, "diagnostic": "NoneBecauseImageDataError" }),
            &ApiError::new(Code::InvalidImage, text),
        )
    };
    let Ok(parsed) = serde_json::from_slice::<CaptureJson>(&raw) else {
        return Ok(Err(unreadable()));
    };
    let Ok(bytes) = intake::decode_base64(&parsed.image, &state.media.limits) else {
        return Ok(Err(unreadable()));
    };
    let given = parsed.timestamp.is_some();
    let timestamp = match parsed.timestamp {
        None => None,
        Some(serde_json::Value::Number(n)) => n.as_f64().map(|v| v as i64),
        Some(serde_json::Value::String(s)) => {
            time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        }
        Some(_) => None,
    };
    if timestamp.is_none() && given {
        let text = "capture timestamp must be Unix seconds or an RFC 3339 date";
        return Ok(Err(message(
            StatusCode::BAD_REQUEST,
            text,
            Code::InvalidInput,
        )));
    }
    Ok(Ok(Capture { bytes, timestamp }))
}

/// The capture of a request, or the vendor-shaped refusal (missing, unreadable or stale).
async fn fresh_capture(
    state: &AppState,
    form: Multipart,
) -> Result<Result<Capture, HttpResponse>, ApiError> {
    Ok(match read_capture(state, form).await? {
        Ok(c) => match stale(&state.iad_settings(), &c) {
            Some(resp) => Err(resp),
            None => Ok(c),
        },
        Err(resp) => Err(resp),
    })
}

/// The replay check: a capture must carry a timestamp inside the window.
/// [`fresh_capture`] within the body timeout: a capture that does not arrive in time holds
/// nothing.
async fn read_within_timeout(
    state: &AppState,
    form: Multipart,
) -> Result<Result<Capture, HttpResponse>, ApiError> {
    let timeout = crate::http::body::BODY_TIMEOUT;
    tokio::time::timeout(timeout, fresh_capture(state, form))
        .await
        .map_err(|_| {
            ApiError::new(Code::BadRequest, "request body not received in time")
                .with_details(json!({ "timeout_seconds": timeout.as_secs() }))
        })?
}

fn stale(settings: &IadSettings, capture: &Capture) -> Option<HttpResponse> {
    if !settings.replay_check {
        return None;
    }
    let now = store::now();
    let tolerance = i64::try_from(settings.replay_tolerance_seconds).unwrap_or(i64::MAX);
    let fresh = capture
        .timestamp
        .is_some_and(|t| now.abs_diff(t) <= tolerance.unsigned_abs());
    (!fresh).then(|| {
        vendor_error(
            StatusCode::BAD_REQUEST,
            json!({ "message": "Replay attack detected" }),
            &ApiError::new(Code::ReplayAttackDetected, "Replay attack detected").with_details(
                json!({ "timestamp": capture.timestamp, "tolerance_seconds": tolerance }),
            ),
        )
    })
}

/// The vendor-shaped 404 while FacePhi compatibility is off (no `compat.facephi_tenant`).
/// What a FacePhi call holds while it runs: its body's bytes.
struct Admitted {
    _body: crate::http::body::BodyLease,
}

/// The gate of the credential-less FacePhi calls: the shared secret when one is configured, the
/// endpoint's own rate limit (not a real key's) and the body's bytes under the endpoint's share
/// of the body budget. (At most `facephi_max_in_flight` evaluations run at once: that place is
/// taken once the capture has arrived, so a slow upload never holds it.) Refusals come in
/// FacePhi's shape with kycd's envelope.
async fn admit(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Result<Admitted, HttpResponse>, ApiError> {
    let compat = &state.config.compat;
    if let Some(secret) = &compat.facephi_secret {
        use subtle::ConstantTimeEq;
        let given = req
            .headers()
            .get("X-Compat-Secret")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let matches: bool = sha2::Sha256::digest(given)
            .ct_eq(&sha2::Sha256::digest(secret.as_bytes()))
            .into();
        if !matches {
            return Ok(Err(message(
                StatusCode::UNAUTHORIZED,
                "Invalid credentials",
                Code::MissingAuth,
            )));
        }
    }
    let budget = crate::tenancy::plans::Budget {
        per_minute: compat.facephi_rate_per_minute.max(1),
        per_day: compat
            .facephi_rate_per_minute
            .max(1)
            .saturating_mul(24 * 60),
    };
    let decision = state
        .rate_limiter
        .check("compat:facephi", "facephi", budget);
    if !decision.allowed {
        let err = crate::http::signed::rate_limited(&decision);
        let retry = decision.retry_after_secs.unwrap_or(1).to_string();
        let mut resp = vendor_error(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "message": "Too many requests" }),
            &err,
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&retry) {
            resp.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return Ok(Err(resp));
    }
    let limit = state.config.media.max_image_bytes * 2 + upload::FORM_SLACK_BYTES;
    let declared = crate::http::body::declared_length(req.headers());
    let body = crate::http::body::admit_whole(
        &state.bodies,
        "compat:facephi",
        "compat:facephi",
        declared,
        limit,
    )
    .await?;
    Ok(Ok(Admitted { _body: body }))
}

fn not_enabled() -> HttpResponse {
    message(
        StatusCode::NOT_FOUND,
        "FacePhi-compatible endpoints are not enabled (set compat.facephi_tenant)",
        Code::RouteNotFound,
    )
}

/// Passive liveness on the capture, in FacePhi's reply shape; billed as `liveness`.
#[utoipa::path(post, path = "/api/v1/iad/liveness/evaluate", tag = "compat",
    request_body(content = Object, content_type = "multipart/form-data", description = "Field `capture`: an image, or JSON {image, timestamp}"),
    responses((status = 200, description = "FacePhi IAD reply", body = Object,
        example = json!({"diagnostic": "Live", "reason": "None", "probability": 0.97, "score": 0.98, "faceProbability": 0.99, "sdkDuration": 95, "queueDuration": 1}))))]
async fn evaluate(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let arrived = Instant::now();
    let Some(tenant_id) = state.config.compat.facephi_tenant.clone() else {
        return Ok(not_enabled());
    };
    let _admitted = match admit(&state, &req).await? {
        Ok(a) => a,
        Err(resp) => return Ok(resp),
    };
    let capture = match read_within_timeout(&state, form).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    let _in_flight = state
        .facephi_in_flight
        .acquire_async("compat:facephi", 1)
        .await?;
    let request_id = request_id::current();
    let st = state.clone();
    let body = web::block(move || -> Result<serde_json::Value, ApiError> {
        let queue_ms = arrived.elapsed().as_millis() as u64;
        let t = st.store.read(|c| store::tenants::get(c, &tenant_id))?;
        if t.is_none_or(|t| t.status != "active") {
            return Err(ApiError::new(
                Code::TenantSuspended,
                "the FacePhi-compatible tenant is missing or suspended",
            ));
        }
        let mut held = st.media.hold(&tenant_id);
        let image = st
            .media
            .accept(&capture.bytes, &mut held, Keep::Full)?
            .image;
        let reservation = st
            .meter
            .reserve(&tenant_id, &[Module::Liveness], false, store::now())?;
        let thresholds = tenancy::liveness_thresholds(&st.store, &tenant_id)?;
        let started = Instant::now();
        let verdict = st
            .vision
            .liveness(&image, &[], Challenges::default(), &thresholds);
        let sdk_ms = started.elapsed().as_millis() as u64;
        // Only a verdict is billed: a capture without a usable face is the client's problem.
        let billed = verdict.is_ok();
        let body = match verdict {
            Ok(r) => json!({
                "diagnostic": if r.is_live { "Live" } else { "NoLive" },
                "reason": if r.is_live { "None" } else { "UntrustedContent" },
                "probability": if r.is_live { r.confidence } else { 1.0 - r.confidence },
                "score": r.passive.signals.model.p_real,
                "faceProbability": r.face_score,
                "sdkDuration": sdk_ms,
                "queueDuration": queue_ms,
            }),
            Err(e) if !e.is_internal() => json!({
                "diagnostic": e.reason().unwrap_or("NoneBecauseImageDataError"),
                "reason": "None",
                "probability": 0.0,
                "score": 0.0,
                "faceProbability": 0.0,
                "sdkDuration": sdk_ms,
                "queueDuration": queue_ms,
            }),
            Err(e) => return Err(e.into()),
        };
        if billed {
            let payer = Payer {
                tenant_id: &tenant_id,
                key_id: None,
                sandbox: false,
            };
            st.meter
                .record(reservation, &request_id, payer, &[Module::Liveness])?;
        }
        Ok(body)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(body))
}

/// The image inside a capture, as base64 with its `mimeType`.
#[utoipa::path(post, path = "/api/v1/iad/extract", tag = "compat",
    request_body(content = Object, content_type = "multipart/form-data", description = "Field `capture`"),
    responses((status = 200, description = "The capture's image as base64 with its mimeType", body = Object)))]
async fn extract(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    if state.config.compat.facephi_tenant.is_none() {
        return Ok(not_enabled());
    }
    let _admitted = match admit(&state, &req).await? {
        Ok(a) => a,
        Err(resp) => return Ok(resp),
    };
    let capture = match read_within_timeout(&state, form).await? {
        Ok(c) => c,
        Err(resp) => return Ok(resp),
    };
    let format = intake::sniff(&capture.bytes)?;
    use base64::Engine;
    Ok(HttpResponse::Ok().json(json!({
        "mimeType": format.mime(),
        "image": base64::engine::general_purpose::STANDARD.encode(&capture.bytes),
    })))
}

/// FacePhi IAD replay-check settings.
#[utoipa::path(get, path = "/api/v1/iad/config", tag = "compat",
    responses((status = 200, description = "Replay-check settings", body = Object, example = json!({"replayCheck": false, "replayToleranceSeconds": 300}))))]
async fn get_config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.iad_settings())
}

/// Changes the IAD settings until restart; needs the operator token (FacePhi leaves its
/// management port open; kycd shares one port, so it asks for the operator).
#[utoipa::path(post, path = "/api/v1/iad/config", tag = "compat",
    request_body(content = Object, example = json!({"replayCheck": true, "replayToleranceSeconds": 120})),
    responses((status = 200, description = "The new settings (until restart)", body = Object)))]
async fn set_config(
    _: Operator,
    state: web::Data<AppState>,
    body: web::Json<IadSettingsPatch>,
) -> HttpResponse {
    let mut s = state.iad.write().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = body.replay_check {
        s.replay_check = v;
    }
    if let Some(v) = body.replay_tolerance_seconds {
        s.replay_tolerance_seconds = v;
    }
    HttpResponse::Ok().json(*s)
}

/// FacePhi IAD health probe.
#[utoipa::path(get, path = "/api/v1/iad/health", tag = "compat", responses((status = 200, description = "Up", body = Object)))]
async fn health(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        HttpResponse::Ok().json(json!({ "message": "Healthy" }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({ "message": "Unhealthy" }))
    }
}

/// FacePhi IAD version.
#[utoipa::path(get, path = "/api/v1/iad/version", tag = "compat", responses((status = 200, description = "Version", body = Object)))]
async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "message": format!("kycd {} (FacePhi IAD 2.0 compatible)", env!("CARGO_PKG_VERSION"))
    }))
}
