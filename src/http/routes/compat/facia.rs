//! Facia-compatible endpoints: `GET /status_check` and `POST /process_face`.
//!
//! The body shapes follow the contract in the issue brief (Facia's on-premises "merged
//! solution": liveness + face match in one call). Facia's public pages do not show that API, so
//! field names and messages here are as briefed, not checked against a live Facia appliance;
//! scores are in [0, 1] like kycd's own.
//!
//! `hash_id` is a tenant credential from `kycd admin key create --facia-hash`; it is looked up
//! by its SHA-256 and follows its key's status (revoke the key, the hash stops working).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::vendor_error;
use crate::auth::keys;
use crate::auth::Principal;
use crate::error::{ApiError, Code};
use crate::http::extract::required_json;
use crate::http::{body, request_id, resource, AppState};
use crate::media::intake::{self, Keep};
use crate::store;
use crate::tenancy;
use crate::tenancy::plans::Module;
use crate::tenancy::subscription;
use crate::vision::liveness::active::Challenges;
use crate::vision::VisionError;

/// Registers `/status_check` and `/process_face`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/status_check").route(web::get().to(status_check)))
        .service(resource("/process_face").route(web::post().to(process_face)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(status_check, process_face))]
pub struct Doc;

/// `Service is live` once models are loaded; 503 before.
#[utoipa::path(get, path = "/status_check", tag = "compat",
    responses((status = 200, description = "Facia's liveness probe", content_type = "text/plain", body = String, example = json!("Service is live"))))]
async fn status_check(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("Service is live")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("Service is not ready")
    }
}

/// Facia's request: every field optional here so a missing one gets Facia's own message.
#[derive(Deserialize)]
struct ProcessFace {
    hash_id: Option<String>,
    selfie_image: Option<String>,
    document_image: Option<String>,
}

fn facia_error(status: StatusCode, message: &str, code: Code) -> HttpResponse {
    let api = ApiError::new(code, message);
    vendor_error(status, json!({ "message": message }), &api)
}

/// Which image failed, for Facia's per-image messages.
#[derive(Clone, Copy)]
enum Which {
    Selfie,
    Document,
}

/// Liveness on the selfie and face match of selfie against document; billed as one
/// `liveness` and one `face_match`.
#[utoipa::path(post, path = "/process_face", tag = "compat",
    request_body(content = Object, description = "Facia's body: `hash_id` (the credential: a key's Facia hash id), `selfie_image`, `document_image` (base64 or data: URLs)",
        example = json!({"hash_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "selfie_image": "/9j/…", "document_image": "/9j/…"})),
    responses((status = 201, description = "Facia's reply; billed as one liveness and one face_match", body = Object,
        example = json!({"face_similarity_result": {"is_match": true, "similarity_score": 0.93}, "liveness_result": {"is_live": true, "liveness_score": 0.97}, "message": "Success"}))))]
async fn process_face(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The credential is inside the body, so the body is read before anyone is known: its
    // bytes are admitted under the endpoint's own share of the body budget first.
    let limit = state.config.http.max_body_bytes;
    let declared = body::declared_length(req.headers());
    let mut lease = body::admit(
        &state.bodies,
        "compat:facia",
        "compat:facia",
        declared,
        limit,
    )
    .await?;
    let bytes = body::read(&mut payload, limit, declared, &mut lease).await?;
    let body: ProcessFace = required_json(&bytes)?;
    drop(bytes);
    let Some(hash_id) = body.hash_id.filter(|h| !h.is_empty()) else {
        return Ok(facia_error(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials",
            Code::MissingAuth,
        ));
    };
    let (Some(selfie), Some(document)) = (
        body.selfie_image.filter(|s| !s.is_empty()),
        body.document_image.filter(|s| !s.is_empty()),
    ) else {
        return Ok(facia_error(
            StatusCode::BAD_REQUEST,
            "Both selfie_image and document_image are required",
            Code::InvalidInput,
        ));
    };
    let request_id = request_id::current();
    let st = state.clone();
    let outcome = web::block(move || -> Result<Result<_, (Which, ApiError)>, ApiError> {
        let Some((key_id, tenant_id)) = keys::facia_principal(&st.store, &hash_id)? else {
            return Err(ApiError::new(Code::UnknownKey, "Invalid credentials"));
        };
        let modules = [Module::Liveness, Module::FaceMatch];
        let key = st
            .store
            .read(|c| store::keys::get(c, &key_id))?
            .ok_or_else(|| ApiError::new(Code::UnknownKey, "Invalid credentials"))?;
        let principal = Principal::from_key(&key);
        principal.require(&modules)?;
        // The key's rate limit applies here as on /v1 (its own bucket when the plan names one).
        let plan = st
            .store
            .read(|c| subscription::effective_plan(c, &tenant_id))?;
        let (bucket, budget) = plan.rate_limit.budget_for("POST", "/process_face");
        let decision = st.rate_limiter.check(&key_id, &bucket, budget);
        if !decision.allowed {
            return Err(crate::http::signed::rate_limited(&decision));
        }
        let reservation =
            st.meter
                .reserve(&tenant_id, &modules, principal.sandbox, store::now())?;
        let mut held = st.media.hold(&tenant_id);
        let mut decode = |b64: &str| {
            intake::decode_base64(b64, &st.media.limits)
                .map_err(ApiError::from)
                .and_then(|bytes| Ok(st.media.accept(&bytes, &mut held, Keep::Full)?.image))
        };
        let selfie = match decode(&selfie) {
            Ok(i) => i,
            Err(e) if e.code.status().is_server_error() => return Err(e),
            Err(e) => return Ok(Err((Which::Selfie, e))),
        };
        let document = match decode(&document) {
            Ok(i) => i,
            Err(e) if e.code.status().is_server_error() => return Err(e),
            Err(e) => return Ok(Err((Which::Document, e))),
        };
        let thresholds = tenancy::liveness_thresholds(&st.store, &tenant_id)?;
        let threshold = st
            .store
            .read(|c| store::tenants::face_match_threshold(c, &tenant_id))?;
        // One slot, one analysis of the selfie for both liveness and the match.
        let outcome = st.vision.exclusive(|v| {
            let (live, face) = v
                .liveness_with_face(&selfie, &[], Challenges::default(), &thresholds)
                .map_err(|e| (Which::Selfie, e))?;
            let matched = v
                .match_analyzed(face, &document, threshold)
                .map_err(|e| (Which::Document, e))?;
            Ok((live, matched))
        });
        let (live, matched) = match outcome {
            Ok(v) => v,
            Err((which, e)) => return face_problem(e, which),
        };
        st.meter
            .record(reservation, &request_id, principal.payer(), &modules)?;
        Ok(Ok((live, matched)))
    })
    .await
    .map_err(ApiError::internal)?;
    let (live, matched) = match outcome {
        Err(e) if e.code == Code::UnknownKey => {
            return Ok(facia_error(
                StatusCode::UNAUTHORIZED,
                "Invalid credentials",
                Code::UnknownKey,
            ))
        }
        Err(e) => return Err(e),
        Ok(Err((which, e))) => {
            let name = match which {
                Which::Selfie => "selfie",
                Which::Document => "document",
            };
            let message = if matches!(
                e.code,
                Code::NoFace
                    | Code::MultipleFaces
                    | Code::FaceTooSmall
                    | Code::FaceCropped
                    | Code::AngleTooLarge
            ) {
                format!("Face not detected properly in {name} image: {}", e.message)
            } else {
                format!(
                    "Invalid or corrupt {name} image. Please provide a valid base64 encoded image"
                )
            };
            return Ok(vendor_error(
                StatusCode::BAD_REQUEST,
                json!({ "message": message }),
                &ApiError::new(e.code, message.clone()).with_details(e.details.clone()),
            ));
        }
        Ok(Ok(v)) => v,
    };
    let liveness_score = if live.is_live {
        live.confidence
    } else {
        1.0 - live.confidence
    };
    Ok(HttpResponse::Created().json(json!({
        "face_similarity_result": {
            "is_match": matched.is_match,
            "similarity_score": matched.similarity,
        },
        "liveness_result": {
            "is_live": live.is_live,
            "liveness_score": liveness_score,
        },
        "message": "Request processed successfully",
    })))
}

/// A face problem is the caller's (reported per image); a model failure is ours.
fn face_problem<T>(e: VisionError, which: Which) -> Result<Result<T, (Which, ApiError)>, ApiError> {
    if e.is_internal() {
        return Err(ApiError::from(e));
    }
    Ok(Err((which, ApiError::from(e))))
}
