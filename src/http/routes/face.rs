//! `POST /v1/face/match`: 1:1 face match of a selfie against a reference image.

use std::time::Instant;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::permissions::Permission;
use crate::error::{ApiError, Code};
use crate::http::extract::{need, Authorized};
use crate::http::metered::{annotate, metered};
use crate::http::{request_id, resource, AppState};
use crate::media::intake::{self, Keep};
use crate::store;
use crate::tenancy::plans::Module;
use crate::vision::facematch::{self, Role};

/// What the selfie is compared with.
enum Reference<'a> {
    /// A second image.
    Image(&'a str),
    /// An enrolled face.
    Enrolled(
        (
            crate::store::faces::FaceRow,
            crate::vision::embed::Embedding,
        ),
    ),
}

/// Registers the face routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/face/match").route(web::post().to(match_faces)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(match_faces))]
pub struct Doc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MatchRequest {
    /// The selfie (exactly one face), base64 or `data:` URL.
    image_a_base64: String,
    /// The reference (a document photo or another picture; its largest face is used).
    image_b_base64: Option<String>,
    /// Or an enrolled face of the tenant as the reference (the stored user photo; needs the
    /// `faces:search` permission as well).
    reference_id: Option<String>,
    /// Decision threshold on similarity; at least the tenant's own threshold.
    threshold: Option<f32>,
}

/// Compares the selfie's face with the reference's face; billed as `face_match`.
#[utoipa::path(post, path = "/v1/face/match", security(("X-API-SIGN" = ["face_match"])), tag = "verification",
    request_body(content = MatchRequest, description = "`image_a_base64` (the selfie), and `image_b_base64` (the reference) or `reference_id` (an enrolled face; needs `faces:search` too), optional stricter `threshold`",
        example = json!({"image_a_base64": "/9j/4AAQSkZJRg…", "image_b_base64": "/9j/4AAQSkZJRg…", "threshold": 0.8})),
    responses((status = 200, description = "Decision; billed as one `face_match` unit", body = Object,
        example = json!({"match": true, "similarity": 0.93, "cosine": 0.61, "threshold": 0.75, "processing_ms": 140, "usage": {"module": "face_match", "units": 1, "billed": true, "overage": false}}))))]
async fn match_faces(
    principal: Authorized<need::FaceMatch>,
    state: web::Data<AppState>,
    body: web::Json<MatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let body = body.into_inner();
    let request_id = request_id::current();
    let sandbox = principal.sandbox;
    let st = state.clone();
    let (report, usage) = web::block(move || {
        metered(&st, &principal, &request_id, &[Module::FaceMatch], || {
            let floor = st
                .store
                .read(|c| store::tenants::face_match_threshold(c, &principal.tenant_id))?;
            let threshold = match body.threshold {
                Some(t) if !(floor..=1.0).contains(&t) => {
                    return Err(ApiError::new(
                        Code::InvalidInput,
                        format!("threshold must be between the tenant's {floor:.2} and 1"),
                    )
                    .with_details(json!({ "field": "threshold", "min": floor })))
                }
                Some(t) => t,
                None => floor,
            };
            let reference = match (&body.image_b_base64, &body.reference_id) {
                (Some(b), None) => Reference::Image(b),
                (None, Some(id)) => {
                    principal.permit(Permission::FacesSearch)?;
                    Reference::Enrolled(st.faces.embedding_of(&principal.tenant_id, id)?)
                }
                _ => {
                    return Err(ApiError::new(
                        Code::InvalidInput,
                        "send exactly one of `image_b_base64` and `reference_id`",
                    )
                    .with_details(json!({ "field": "image_b_base64" })))
                }
            };
            let a = intake::decode_base64(&body.image_a_base64, &st.media.limits)?;
            let mut held = st.media.hold(&principal.tenant_id);
            let a = st.media.accept(&a, &mut held, Keep::Full)?.image;
            let inference = Instant::now();
            let report = match reference {
                Reference::Image(b) => {
                    let b = intake::decode_base64(b, &st.media.limits)?;
                    let b = st.media.accept(&b, &mut held, Keep::Full)?.image;
                    serde_json::to_value(st.vision.match_faces(&a, &b, threshold)?)
                        .map_err(ApiError::internal)?
                }
                Reference::Enrolled((row, embedding)) => {
                    let fa = st
                        .vision
                        .exclusive(|v| v.analyzer.analyze(&a, Role::Selfie))?;
                    let cosine = fa.embedding.cosine(&embedding);
                    let similarity = facematch::similarity(cosine);
                    json!({
                        "match": similarity >= threshold, "similarity": similarity,
                        "cosine": cosine, "threshold": threshold,
                        "reference": { "face_id": row.id, "subject_id": row.subject_id },
                        "faces": { "a": fa },
                    })
                }
            };
            st.metrics
                .inference_duration
                .with_label_values(&["face_match"])
                .observe(inference.elapsed().as_secs_f64());
            Ok(report)
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let mut out = report;
    out["processing_ms"] = json!(started.elapsed().as_millis() as u64);
    annotate(&mut out, sandbox, &usage);
    Ok(HttpResponse::Ok().json(out))
}
