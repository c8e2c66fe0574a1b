//! `/admin/v1`: the operator's API for tenants and keys. Every change is audited by the domain.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::keys;
use crate::error::ApiError;
use crate::http::extract::{optional_json, Operator};
use crate::http::{resource, AppState};
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
    .service(resource("/keys/{id}/revoke").route(web::post().to(revoke_key)))
    .service(resource("/keys/{id}/rotate").route(web::post().to(rotate_key)));
}

/// Runs blocking domain work off the actix threads.
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(Into::into)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
    #[serde(default = "default_plan")]
    plan: String,
}

fn default_plan() -> String {
    "free".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    label: Option<String>,
    /// Also issue a Facia-compatible `hash_id`.
    #[serde(default)]
    facia_hash: bool,
    /// Modules the key may call; absent = all.
    scopes: Option<Vec<crate::tenancy::plans::Module>>,
    /// `sandbox` or `live`.
    environment: Option<String>,
}

#[derive(Deserialize)]
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
async fn list_tenants(_: Operator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || tenancy::list_tenants(&state.store)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tenants": list })))
}

/// One tenant.
async fn get_tenant(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::get_tenant(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Suspends a tenant: its requests get 403 `tenant_suspended`.
async fn suspend_tenant(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::set_active(&state.store, &id, false, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Reactivates a tenant.
async fn activate_tenant(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::set_active(&state.store, &id, true, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Creates a key; the response is the only time its secret is shown.
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
        environment: body.environment,
    };
    let k = blocking(move || keys::create_key_with(&state.store, &id, &spec, ACTOR)).await?;
    Ok(HttpResponse::Created().json(k))
}

/// Lists a tenant's keys, without secrets.
async fn list_keys(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = blocking(move || keys::list_keys(&state.store, Some(&id))).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": list })))
}

/// Revokes a key at once.
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
async fn get_media_policy(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = blocking(move || tenancy::get_media_policy(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Sets how long the tenant's media is kept (0 = none is stored) and which kinds.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaceMatchSettings {
    threshold: f32,
}

/// Sets the tenant's face-match threshold (requests may only be stricter).
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
async fn get_liveness(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = blocking(move || tenancy::liveness_thresholds(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(t))
}

/// Sets the tenant's liveness thresholds; omitted fields take their defaults.
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
