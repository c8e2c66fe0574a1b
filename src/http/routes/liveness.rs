//! `POST /v1/liveness/analyze`: passive liveness on a selfie, and active liveness on an optional
//! frame sequence.

use std::time::Instant;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, Code};
use crate::http::extract::{need, Authorized};
use crate::http::metered::{annotate, metered};
use crate::http::{request_id, resource, AppState};
use crate::media::intake::{self, Keep};
use crate::tenancy;
use crate::tenancy::plans::Module;
use crate::vision::liveness::active::{Challenges, MAX_FRAMES, MIN_FRAMES};
use crate::vision::service::LivenessReport;

/// Registers the liveness routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/liveness/analyze").route(web::post().to(analyze)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(analyze))]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyzeRequest {
    /// The selfie, base64 or `data:` URL.
    image_live_base64: String,
    /// A short capture sequence (3–30 frames) for active liveness.
    frames_base64: Option<Vec<String>>,
    /// The challenges the user was asked to perform during the sequence.
    #[serde(default)]
    hints: Challenges,
}

/// Judges the selfie (and the sequence, if any); billed as `liveness`.
#[utoipa::path(post, path = "/v1/liveness/analyze", security(("X-API-SIGN" = ["liveness"])), tag = "verification",
    request_body(content = Object, description = "`image_live_base64` (base64 or data: URL), optional `frames_base64` (3–30) and `hints` {blink, pose}",
        example = json!({"image_live_base64": "/9j/4AAQSkZJRg…", "frames_base64": null, "hints": {"blink": false, "pose": false}})),
    responses((status = 200, description = "Verdict; billed as one `liveness` unit", body = Object,
        example = json!({"is_live": true, "spoof_type": "none", "confidence": 0.97, "hints": [], "quality": {"sharpness": 212.4, "warnings": []}, "processing_ms": 96, "usage": {"module": "liveness", "units": 1, "billed": true, "overage": false}}))))]
async fn analyze(
    principal: Authorized<need::Liveness>,
    state: web::Data<AppState>,
    body: web::Json<AnalyzeRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let body = body.into_inner();
    let frames_b64 = body.frames_base64.unwrap_or_default();
    if !frames_b64.is_empty() && !(MIN_FRAMES..=MAX_FRAMES).contains(&frames_b64.len()) {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!("frames_base64 must hold {MIN_FRAMES} to {MAX_FRAMES} frames"),
        )
        .with_details(json!({ "field": "frames_base64", "count": frames_b64.len() })));
    }
    if (body.hints.blink || body.hints.pose) && frames_b64.is_empty() {
        return Err(ApiError::new(
            Code::InvalidInput,
            "hints.blink and hints.pose need frames_base64",
        )
        .with_details(json!({ "field": "hints" })));
    }
    let request_id = request_id::current();
    let sandbox = principal.sandbox;
    let st = state.clone();
    let (report, usage) = web::block(move || {
        metered(
            &st,
            &principal,
            &request_id,
            &[Module::Liveness],
            || -> Result<LivenessReport, ApiError> {
                let thresholds = tenancy::liveness_thresholds(&st.store, &principal.tenant_id)?;
                // Every decoded pixel this request holds is admitted first (waiting briefly,
                // else 503); frames are kept at most 1280 px on their long side.
                let mut held = st.media.hold(&principal.tenant_id);
                let live = intake::decode_base64(&body.image_live_base64, &st.media.limits)?;
                let live = st.media.accept(&live, &mut held, Keep::Full)?.image;
                let mut frames = Vec::with_capacity(frames_b64.len());
                for (i, f) in frames_b64.iter().enumerate() {
                    let bytes = intake::decode_base64(f, &st.media.limits)
                        .map_err(|e| ApiError::from(e).with_detail("frame", json!(i)))?;
                    let frame = st
                        .media
                        .accept(&bytes, &mut held, Keep::Frame)
                        .map_err(|e| ApiError::from(e).with_detail("frame", json!(i)))?;
                    frames.push(frame.image);
                }
                let inference = Instant::now();
                let report = st
                    .vision
                    .liveness(&live, &frames, body.hints, &thresholds)?;
                st.metrics
                    .inference_duration
                    .with_label_values(&["liveness"])
                    .observe(inference.elapsed().as_secs_f64());
                Ok(report)
            },
        )
    })
    .await
    .map_err(ApiError::internal)??;
    let s = &report.passive.signals;
    let mut out = json!({
        "is_live": report.is_live,
        "spoof_type": report.spoof_type,
        "confidence": report.confidence,
        "hints": report.hints,
        "quality": {
            "sharpness": report.quality.sharpness,
            "mean_luma": report.quality.mean_luma,
            "inter_eye_px": report.quality.inter_eye_px,
            "pose": report.quality.pose,
            "warnings": report.warnings,
        },
        "details": {
            "model": { "p_real": s.model.p_real, "minifasnet_v2": s.model.v2, "minifasnet_v1se": s.model.v1se },
            "texture": { "score": s.texture_score, "periodicity": s.periodicity },
            "frame": { "score": s.frame_score, "edges": s.frame },
            "active": report.active,
            "thresholds": report.thresholds,
        },
        "processing_ms": started.elapsed().as_millis() as u64,
    });
    annotate(&mut out, sandbox, &usage);
    Ok(HttpResponse::Ok().json(out))
}
