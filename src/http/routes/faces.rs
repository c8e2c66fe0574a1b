//! `/v1/faces`: enrolled faces for 1:N search — enrol, search, delete.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, Code};
use crate::faces::Enrolment;
use crate::http::extract::{need, Authorized};
use crate::http::metered::{annotate, billed};
use crate::http::{request_id, resource, AppState};
use crate::media::intake::{self, Keep};
use crate::store;
use crate::tenancy::plans::Module;
use crate::vision::embed::Embedding;
use crate::vision::facematch::Role;

/// Registers the face-index routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/faces").route(web::post().to(enrol)))
        .service(resource("/faces/search").route(web::post().to(search)))
        .service(resource("/faces/{face_id}").route(web::delete().to(remove)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(enrol, search, remove))]
pub struct Doc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EnrolRequest {
    /// A photo of the person (exactly one face), base64 or `data:` URL.
    image_base64: Option<String>,
    /// Or a completed, accepted verification whose selfie is enrolled.
    job_id: Option<String>,
    /// The tenant's subject the face belongs to (required with an image; a job's own by default).
    subject_id: Option<String>,
    /// The collection (`default` when absent).
    collection: Option<String>,
}

/// Enrols a face: from an image (one `face_match` unit, refused below the quality floor) or
/// from an accepted job's selfie (not billed again).
#[utoipa::path(post, path = "/v1/faces", security(("X-API-SIGN" = ["faces:write"])), tag = "faces",
    request_body(content = EnrolRequest, description = "`image_base64` with `subject_id`, or `job_id`; optional `collection`",
        example = json!({"image_base64": "/9j/4AAQSkZJRg…", "subject_id": "customer-42", "collection": "customers"})),
    responses((status = 201, description = "Enrolled", body = Object,
        example = json!({"face_id": "face_3f9c…", "subject_id": "customer-42", "collection": "customers", "job_id": null, "quality": {"inter_eye_px": 61.2, "sharpness": 140.3}, "warnings": []})),
        (status = 422, description = "`face_quality_too_low` (with the warnings and measurements), `no_face`, `multiple_faces`, …")))]
async fn enrol(
    principal: Authorized<need::FacesWrite>,
    state: web::Data<AppState>,
    body: web::Json<EnrolRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request_id = request_id::current();
    let sandbox = principal.sandbox;
    let actor = format!("key:{}", principal.key_id);
    let st = state.clone();
    let out = web::block(move || -> Result<serde_json::Value, ApiError> {
        let now = store::now();
        match (body.image_base64, body.job_id) {
            (Some(image), None) => {
                let subject_id = body.subject_id.ok_or_else(|| {
                    ApiError::new(Code::InvalidInput, "subject_id is required with an image")
                        .with_details(json!({ "field": "subject_id" }))
                })?;
                let (enrolled, usage) =
                    billed(&st, &principal, &request_id, &[Module::FaceMatch], || {
                        let face = analyze(&st, &principal.tenant_id, &image)?;
                        let e = Enrolment {
                            tenant_id: &principal.tenant_id,
                            subject_id: &subject_id,
                            collection: body.collection.as_deref(),
                            job_id: None,
                        };
                        Ok(st.faces.enrol(&e, &face, now, &actor)?)
                    })?;
                let mut out = serde_json::to_value(&enrolled).map_err(ApiError::internal)?;
                annotate(&mut out, sandbox, &usage);
                Ok(out)
            }
            (None, Some(job_id)) => {
                let enrolled = st.faces.enrol_job(
                    &principal.tenant_id,
                    &job_id,
                    body.subject_id.as_deref(),
                    body.collection.as_deref(),
                    now,
                    &actor,
                )?;
                serde_json::to_value(&enrolled).map_err(ApiError::internal)
            }
            _ => Err(one_of("image_base64", "job_id")),
        }
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Created().json(out))
}

fn one_of(a: &str, b: &str) -> ApiError {
    ApiError::new(
        Code::InvalidInput,
        format!("send exactly one of `{a}` and `{b}`"),
    )
    .with_details(json!({ "field": a }))
}

/// Decodes an image under the tenant's pixel budget and analyses its one face.
fn analyze(
    st: &AppState,
    tenant_id: &str,
    b64: &str,
) -> Result<crate::vision::facematch::AnalyzedFace, ApiError> {
    let bytes = intake::decode_base64(b64, &st.media.limits)?;
    let mut held = st.media.hold(tenant_id);
    let image = st.media.accept(&bytes, &mut held, Keep::Full)?.image;
    Ok(st
        .vision
        .exclusive(|v| v.analyzer.analyze(&image, Role::Selfie))?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    /// A photo to search with (exactly one face).
    image_base64: Option<String>,
    /// Or an enrolled face of the tenant (itself is left out of the results).
    face_id: Option<String>,
    /// Candidates returned at most (1–100, default 10).
    top_k: Option<usize>,
    /// Lowest similarity returned (0–1; the tenant's face-match threshold by default).
    threshold: Option<f32>,
    /// Only this collection (every collection when absent).
    collection: Option<String>,
}

/// Searches the tenant's enrolled faces (never another tenant's); one `face_match` unit.
#[utoipa::path(post, path = "/v1/faces/search", security(("X-API-SIGN" = ["faces:search"])), tag = "faces",
    request_body(content = SearchRequest, description = "`image_base64` or `face_id`; optional `top_k`, `threshold`, `collection`",
        example = json!({"image_base64": "/9j/4AAQSkZJRg…", "top_k": 5})),
    responses((status = 200, description = "Candidates, most similar first", body = Object,
        example = json!({"candidates": [{"face_id": "face_3f9c…", "subject_id": "customer-42", "job_id": "job_…", "similarity": 0.97, "cosine": 0.66}], "threshold": 0.75, "searched": 1200, "usage": {"module": "face_match", "units": 1, "billed": true, "overage": false}}))))]
async fn search(
    principal: Authorized<need::FacesSearch>,
    state: web::Data<AppState>,
    body: web::Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request_id = request_id::current();
    let sandbox = principal.sandbox;
    let st = state.clone();
    let (out, usage) = web::block(move || {
        billed(&st, &principal, &request_id, &[Module::FaceMatch], || {
            let tenant = &principal.tenant_id;
            let (query, itself): (Embedding, Option<String>) =
                match (&body.image_base64, &body.face_id) {
                    (Some(image), None) => (analyze(&st, tenant, image)?.embedding, None),
                    (None, Some(id)) => {
                        let (row, embedding) = st.faces.embedding_of(tenant, id)?;
                        (embedding, Some(row.id))
                    }
                    _ => return Err(one_of("image_base64", "face_id")),
                };
            let threshold = match body.threshold {
                Some(t) => t,
                None => st
                    .store
                    .read(|c| store::tenants::face_match_threshold(c, tenant))?,
            };
            let top_k = body.top_k.unwrap_or(10);
            if !(1..=crate::faces::MAX_TOP_K).contains(&top_k) {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!("top_k must be 1 to {}", crate::faces::MAX_TOP_K),
                )
                .with_details(json!({ "field": "top_k" })));
            }
            // One more when searching with an enrolled face, which finds itself first.
            let asked = (top_k + usize::from(itself.is_some())).min(crate::faces::MAX_TOP_K);
            let mut candidates =
                st.faces
                    .search(tenant, &query, body.collection.as_deref(), asked, threshold)?;
            candidates.retain(|c| Some(&c.face_id) != itself.as_ref());
            candidates.truncate(top_k);
            Ok(json!({
                "candidates": candidates,
                "threshold": threshold,
                "searched": st.faces.index().len_of(tenant),
            }))
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let mut out = out;
    annotate(&mut out, sandbox, &usage);
    Ok(HttpResponse::Ok().json(out))
}

/// Deletes an enrolled face of the tenant; gone from search at once.
#[utoipa::path(delete, path = "/v1/faces/{face_id}", security(("X-API-SIGN" = ["faces:write"])), tag = "faces",
    params(("face_id" = String, Path, description = "The enrolled face")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such face for this tenant")))]
async fn remove(
    principal: Authorized<need::FacesWrite>,
    state: web::Data<AppState>,
    face_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = format!("key:{}", principal.key_id);
    let st = state.clone();
    web::block(move || {
        st.faces
            .remove(&principal.tenant_id, &face_id, &actor, store::now())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::NoContent().finish())
}
