//! `/admin/v1`: the operator's API for tenants and keys. Every change is audited by the domain.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::keys;
use crate::auth::permissions::Permission;
use crate::error::ApiError;
use crate::http::extract::{optional_json, Operator};
use crate::http::{blocking, resource, AppState};
use crate::tenancy;

const ACTOR: &str = "operator";

/// Registers the admin routes (inside `/admin/v1`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/tenants")
            .route(web::get().to(list_tenants))
            .route(web::post().to(create_tenant)),
    )
    .service(resource("/tenants/{id}").route(web::get().to(get_tenant)))
    .service(resource("/tenants/{id}/suspend").route(web::post().to(suspend_tenant)))
    .service(resource("/tenants/{id}/activate").route(web::post().to(activate_tenant)))
    .service(resource("/tenants/{id}/face-match").route(web::put().to(set_face_match)))
    .service(
        resource("/tenants/{id}/liveness")
            .route(web::get().to(get_liveness))
            .route(web::put().to(set_liveness)),
    )
    .service(
        resource("/tenants/{id}/media-policy")
            .route(web::get().to(get_media_policy))
            .route(web::put().to(set_media_policy)),
    )
    .service(
        resource("/tenants/{id}/keys")
            .route(web::get().to(list_keys))
            .route(web::post().to(create_key)),
    )
    .service(
        resource("/tenants/{id}/callback-secret").route(web::post().to(tenant_callback_secret)),
    )
    .service(resource("/keys/{id}").route(web::patch().to(update_key)))
    .service(resource("/keys/{id}/revoke").route(web::post().to(revoke_key)))
    .service(resource("/keys/{id}/rotate").route(web::post().to(rotate_key)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_tenants,
    create_tenant,
    get_tenant,
    suspend_tenant,
    activate_tenant,
    set_face_match,
    get_liveness,
    set_liveness,
    get_media_policy,
    set_media_policy,
    list_keys,
    create_key,
    update_key,
    tenant_callback_secret,
    revoke_key,
    rotate_key
))]
pub struct Doc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
    /// free (default), pro or enterprise.
    #[serde(default = "default_plan")]
    plan: String,
}

fn default_plan() -> String {
    "free".into()
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    label: Option<String>,
    /// Also issue a Facia-compatible `hash_id`.
    #[serde(default)]
    facia_hash: bool,
    /// Modules the key may call (liveness, ocr, validation, face_match); absent = all.
    #[schema(value_type = Option<Vec<String>>)]
    scopes: Option<Vec<crate::tenancy::plans::Module>>,
    /// What the key may read or manage (`results:read`, `workflow:write`, …); absent =
    /// `["results:read"]`: it verifies and reads its own results.
    #[schema(value_type = Option<Vec<String>>)]
    permissions: Option<Vec<Permission>>,
    /// `sandbox` or `live`.
    environment: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateKey {
    /// Modules the key may call; `null` = all; absent = unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    scopes: Option<Option<Vec<crate::tenancy::plans::Module>>>,
    /// The key's whole permission list; absent = unchanged.
    #[schema(value_type = Option<Vec<String>>)]
    permissions: Option<Vec<Permission>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    /// How long the old secret keeps verifying (default 24 h, like the CLI).
    #[serde(default = "default_overlap")]
    overlap_seconds: i64,
}

impl Default for RotateKey {
    fn default() -> Self {
        RotateKey {
            overlap_seconds: default_overlap(),
        }
    }
}

fn default_overlap() -> i64 {
    86_400
}

/// Creates a tenant.
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "admin",
    request_body(content = CreateTenant, example = json!({"name": "Example Bank", "plan": "pro"})),
    responses((status = 201, description = "The tenant (audited)", body = Object, example = json!({"id": "ten_5b2c0e7a91d4f3a6", "name": "Example Bank", "plan": "pro", "status": "active", "created_at": 1795400000}))))]
async fn create_tenant(
    _: Operator,
    state: web::Data<AppState>,
    body: web::Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let t = blocking(move || tenancy::create_tenant(&state.store, &body.name, &body.plan, ACTOR))
        .await?;
    Ok(HttpResponse::Created().json(t))
}

/// Lists tenants.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "admin",
    responses((status = 200, description = "Every tenant", body = Object, example = json!({"tenants": [{"id": "ten_5b2c0e7a91d4f3a6", "name": "Example Bank", "plan": "pro", "status": "active", "created_at": 1795400000}]}))))]
async fn list_tenants(_: Operator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || tenancy::list_tenants(&state.store)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tenants": list })))
}

/// One tenant.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant", body = Object)))]
async fn get_tenant(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::get_tenant(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Suspends a tenant: its requests get 403 `tenant_suspended`.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/suspend", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Suspended: its requests get 403 tenant_suspended", body = Object)))]
async fn suspend_tenant(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::set_active(&state.store, &id, false, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Reactivates a tenant.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/activate", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Active again", body = Object)))]
async fn activate_tenant(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::set_active(&state.store, &id, true, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Creates a key; the response is the only time its secret is shown.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Option<CreateKey>, description = "Optional: an empty body creates a key with every module and `results:read`", example = json!({"label": "backend", "scopes": ["ocr", "validation"], "environment": "live", "facia_hash": false})),
    responses((status = 201, description = "The key with its secret, shown once", body = Object, example = json!({"id": "ak_0c1d2e3f4a5b6c7d8e9f0a1b", "tenant_id": "ten_…", "status": "active", "environment": "live", "secret": "sk_…"}))))]
async fn create_key(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: CreateKey = optional_json(&body)?;
    let spec = keys::KeySpec {
        label: body.label,
        facia_hash_id: body.facia_hash,
        scopes: body.scopes,
        permissions: body.permissions,
        environment: body.environment,
    };
    let k = blocking(move || keys::create_key_with(&state.store, &id, &spec, ACTOR)).await?;
    Ok(HttpResponse::Created().json(k))
}

/// Lists a tenant's keys, without secrets.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant's keys, never their secrets", body = Object, example = json!({"keys": [{"id": "ak_…", "status": "active", "environment": "live", "scopes": null, "last_used_at": 1795400000}]}))))]
async fn list_keys(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || keys::list_keys(&state.store, Some(&id))).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": list })))
}

/// Makes (or replaces) the tenant's callback secret (signs job `callback_url` deliveries); shown
/// only here.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/callback-secret", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 201, description = "The secret, shown once (audited)", body = Object, example = json!({"secret": "whsec_…"}))))]
async fn tenant_callback_secret(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let secret = blocking(move || {
        crate::workflow::webhooks::rotate_callback_secret(&state.store, &id, ACTOR)
    })
    .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "secret": secret })))
}

/// Changes what a key may do: its permissions and/or module scopes (audited).
#[utoipa::path(patch, path = "/admin/v1/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    request_body(content = UpdateKey, example = json!({"permissions": ["results:read_all", "workflow:write", "webhooks:write"]})),
    responses((status = 200, description = "The key with its new grants (audited)", body = Object)))]
async fn update_key(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<UpdateKey>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let change = keys::GrantChange {
        scopes: body.scopes,
        permissions: body.permissions,
    };
    let k = blocking(move || keys::set_grants(&state.store, &id, &change, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(k))
}

/// Revokes a key at once.
#[utoipa::path(post, path = "/admin/v1/keys/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "Revoked at once", body = Object)))]
async fn revoke_key(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let key_id = id.clone();
    let k = blocking(move || keys::revoke_key(&st.store, &key_id, ACTOR)).await?;
    state.rate_limiter.forget(&id);
    Ok(HttpResponse::Ok().json(k))
}

/// Gives a key a new secret (shown once); the old one verifies for `overlap_seconds` more.
#[utoipa::path(post, path = "/admin/v1/keys/{id}/rotate", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    request_body(content = Option<RotateKey>, description = "Optional: an empty body keeps the old secret for 24 h", example = json!({"overlap_seconds": 86400})),
    responses((status = 200, description = "The new secret, shown once; the old one verifies until previous_secret_valid_until", body = Object, example = json!({"id": "ak_…", "secret": "sk_…", "previous_secret_valid_until": 1795486400}))))]
async fn rotate_key(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let overlap = optional_json::<RotateKey>(&body)?.overlap_seconds;
    let k = blocking(move || keys::rotate_key(&state.store, &id, overlap, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(k))
}

/// How long the tenant's media is kept and which kinds.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/media-policy", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Media retention", body = Object, example = json!({"media_retention_days": 30, "media_kinds": ["selfie", "face_crop", "document_front", "document_back"]}))))]
async fn get_media_policy(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = blocking(move || tenancy::get_media_policy(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Sets how long the tenant's media is kept (0 = none is stored) and which kinds.
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/media-policy", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Object, example = json!({"media_retention_days": 7, "media_kinds": ["selfie"]})),
    responses((status = 200, description = "The policy (audited)", body = Object)))]
async fn set_media_policy(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<tenancy::MediaPolicy>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let p = blocking(move || tenancy::set_media_policy(&state.store, &id, &body, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(p))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct FaceMatchSettings {
    threshold: f32,
}

/// Sets the tenant's face-match threshold (requests may only be stricter).
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/face-match", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = FaceMatchSettings, example = json!({"threshold": 0.8})),
    responses((status = 200, description = "The threshold", body = Object, example = json!({"tenant_id": "ten_…", "threshold": 0.8}))))]
async fn set_face_match(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<FaceMatchSettings>,
) -> Result<HttpResponse, ApiError> {
    let threshold = body.threshold;
    let tenant = id.clone();
    let t =
        blocking(move || tenancy::set_face_match_threshold(&state.store, &id, threshold, ACTOR))
            .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tenant_id": tenant, "threshold": t })))
}

/// The tenant's liveness thresholds.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/liveness", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Liveness thresholds", body = Object, example = json!({"min_model_real": 0.5, "max_texture": 0.5, "max_frame": 0.5}))))]
async fn get_liveness(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::liveness_thresholds(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Sets the tenant's liveness thresholds; omitted fields take their defaults.
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/liveness", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Object, example = json!({"min_model_real": 0.6, "max_texture": 0.5, "max_frame": 0.5})),
    responses((status = 200, description = "The thresholds (audited)", body = Object)))]
async fn set_liveness(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<crate::vision::liveness::LivenessThresholds>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let t =
        blocking(move || tenancy::set_liveness_thresholds(&state.store, &id, &body, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(t))
}
