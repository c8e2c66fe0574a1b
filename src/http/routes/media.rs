//! `/v1/subjects/{id}/media`, `/v1/media/{id}` and `DELETE /v1/subjects/{id}`: store a subject's
//! images encrypted, read them back, and erase the subject.

use actix_multipart::Multipart;
use actix_web::{guard, web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{need, Authorized};
use crate::http::upload::{self, ImageSource};
use crate::http::{resource, AppState};
use crate::media::intake::Keep;
use crate::media::{intake, MediaKind, MediaService};
use crate::store::{self, media::MediaRow};

/// Registers the media routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/subjects/{subject_id}/media")
            .route(
                web::post()
                    .guard(guard::fn_guard(|ctx| upload::is_multipart(ctx.head())))
                    .to(upload_multipart),
            )
            .route(web::post().to(upload_json))
            .route(web::get().to(list_media)),
    )
    .service(resource("/subjects/{subject_id}").route(web::delete().to(erase_subject)))
    .service(resource("/media/{media_id}").route(web::get().to(get_media)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(upload_json, list_media, get_media, erase_subject))]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadJson {
    kind: MediaKind,
    image_base64: String,
}

#[derive(Serialize)]
struct UploadResult {
    /// Whether the image was kept (false when the tenant's retention is 0 days).
    stored: bool,
    media: Option<MediaRow>,
    image: ImageInfo,
}

#[derive(Serialize)]
struct ImageInfo {
    width: u32,
    height: u32,
    format: intake::Format,
    reoriented: bool,
}

fn store_upload(
    media: &MediaService,
    principal: &Principal,
    subject_id: &str,
    kind: MediaKind,
    source: ImageSource,
) -> Result<UploadResult, ApiError> {
    crate::media::validate_subject_id(subject_id)?;
    let bytes = match source {
        ImageSource::Base64(text) => intake::decode_base64(&text, &media.limits)?,
        ImageSource::Bytes(bytes) => bytes,
    };
    // Held until the image is stored: its pixels stay counted through the resize and encode.
    let mut held = media.hold(&principal.tenant_id);
    let accepted = media.accept(&bytes, &mut held, Keep::Full)?;
    let row = media.put(
        &principal.tenant_id,
        subject_id,
        kind,
        &accepted.image,
        store::now(),
    )?;
    Ok(UploadResult {
        stored: row.is_some(),
        media: row,
        image: ImageInfo {
            width: accepted.image.width(),
            height: accepted.image.height(),
            format: accepted.format,
            reoriented: accepted.reoriented,
        },
    })
}

/// Stores an image (JSON with base64) of a subject, encrypted under the subject's key.
#[utoipa::path(post, path = "/v1/subjects/{subject_id}/media", security(("X-API-SIGN" = ["media:write"])), tag = "data", params(("subject_id" = String, Path, description = "The client's subject id")),
    request_body(description = "`kind` (selfie, document_front, document_back, face_crop, frame) and `image_base64`; or multipart/form-data with the fields `kind` and `image`",
        content((Object = "application/json", example = json!({"kind": "selfie", "image_base64": "/9j/4AAQSkZJRg…"})), (Object = "multipart/form-data"))),
    responses((status = 201, description = "Stored, encrypted under the subject's key", body = Object,
        example = json!({"media_id": "med_…", "kind": "selfie", "bytes": 48213, "expires_at": "2026-12-23T10:00:00Z"}))))]
async fn upload_json(
    principal: Authorized<need::MediaWrite>,
    state: web::Data<AppState>,
    subject_id: web::Path<String>,
    body: web::Json<UploadJson>,
) -> Result<HttpResponse, ApiError> {
    let UploadJson { kind, image_base64 } = body.into_inner();
    let source = ImageSource::Base64(image_base64);
    created(&state, principal, subject_id, kind, source).await
}

/// Runs the upload on the blocking pool and answers 201 with what was stored.
async fn created(
    state: &AppState,
    principal: Authorized<need::MediaWrite>,
    subject_id: web::Path<String>,
    kind: MediaKind,
    source: ImageSource,
) -> Result<HttpResponse, ApiError> {
    let (principal, subject_id) = (principal.into_inner(), subject_id.into_inner());
    let media = state.media.clone();
    let result = web::block(move || store_upload(&media, &principal, &subject_id, kind, source))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Created().json(result))
}

/// Stores an image (multipart: `kind` text field, `image` file field) of a subject.
async fn upload_multipart(
    principal: Authorized<need::MediaWrite>,
    state: web::Data<AppState>,
    subject_id: web::Path<String>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let mut fields = upload::read_form(form, state.media.limits.max_bytes).await?;
    let kind_text = upload::text_field(&fields, "kind")?.ok_or_else(|| upload::missing("kind"))?;
    let kind: MediaKind =
        serde_json::from_value(serde_json::Value::String(kind_text)).map_err(|_| {
            ApiError::new(
                crate::error::Code::InvalidInput,
                "kind must be selfie, document_front, document_back, face_crop or frame",
            )
            .with_details(serde_json::json!({ "field": "kind" }))
        })?;
    let image = fields
        .remove("image")
        .ok_or_else(|| upload::missing("image"))?;
    let source = ImageSource::Bytes(image);
    created(&state, principal, subject_id, kind, source).await
}

/// Lists a subject's stored media (metadata only).
#[utoipa::path(get, path = "/v1/subjects/{subject_id}/media", security(("X-API-SIGN" = ["media:read"])), tag = "data", params(("subject_id" = String, Path, description = "The client's subject id")),
    responses((status = 200, description = "The subject's media (ids, kinds, sizes, expiry)", body = Object)))]
async fn list_media(
    principal: Authorized<need::MediaRead>,
    state: web::Data<AppState>,
    subject_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let media = state.media.clone();
    let rows = web::block(move || media.list(&principal.tenant_id, &subject_id))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "media": rows })))
}

/// Returns a stored image, decrypted, as JPEG.
#[utoipa::path(get, path = "/v1/media/{media_id}", security(("X-API-SIGN" = ["media:read"])), tag = "data", params(("media_id" = String, Path, description = "Media id")),
    responses((status = 200, description = "The image, decrypted", content_type = "image/jpeg", body = String)))]
async fn get_media(
    principal: Authorized<need::MediaRead>,
    state: web::Data<AppState>,
    media_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let media = state.media.clone();
    let (_, bytes) = web::block(move || media.get(&principal.tenant_id, &media_id))
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "no-store"))
        .body(bytes))
}

/// Right to erasure: deletes the subject's media, embeddings and personal data; returns a receipt.
#[utoipa::path(delete, path = "/v1/subjects/{subject_id}", security(("X-API-SIGN" = ["subjects:erase"])), tag = "data", params(("subject_id" = String, Path, description = "The client's subject id")),
    responses((status = 200, description = "Right to erasure: media, embeddings and records deleted", body = Object,
        example = json!({"subject_id": "customer-42", "deleted": {"media": 3, "embeddings": 1, "records": 2}, "at": "2026-11-23T10:00:00Z"}))))]
async fn erase_subject(
    principal: Authorized<need::SubjectsErase>,
    state: web::Data<AppState>,
    subject_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let media = state.media.clone();
    let actor = format!("key:{}", principal.key_id);
    let receipt = web::block(move || {
        media.erase_subject(&principal.tenant_id, &subject_id, &actor, store::now())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(receipt))
}
