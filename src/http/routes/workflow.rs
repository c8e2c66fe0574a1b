//! The workflow over HTTP: `POST /v1/kyc/verify` (queues a job), `GET /v1/jobs/{id}`,
//! `GET /v1/jobs`, and the workflow configuration for the tenant (`GET|PUT /v1/workflow`) and the
//! operator (`GET|PUT /admin/v1/tenants/{id}/workflow`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, Code};
use crate::http::extract::Operator;
use crate::http::extract::{need, Authorized};
use crate::http::{request_id, resource, AppState};
use crate::store;
use crate::workflow::config::WorkflowConfig;
use crate::workflow::jobs::{self, VerifyRequest};
use crate::workflow::tenant_config;

/// Registers the tenant routes (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/kyc/verify").route(web::post().to(verify)))
        .service(resource("/jobs").route(web::get().to(list_jobs)))
        .service(resource("/jobs/{id}").route(web::get().to(get_job)))
        .service(
            resource("/workflow")
                .route(web::get().to(get_workflow))
                .route(web::put().to(put_workflow)),
        );
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    verify,
    get_job,
    list_jobs,
    get_workflow,
    put_workflow,
    admin_get_workflow,
    admin_put_workflow,
    admin_get_floors,
    admin_put_floors
))]
pub struct Doc;

/// Queues a verification: 202 with the job id, or the first job again for a repeated
/// `Idempotency-Key` (200).
#[utoipa::path(post, path = "/v1/kyc/verify", tag = "workflow",
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key returns the first job (200, `Idempotent-Replayed: true`)")),
    request_body(content = VerifyRequest, description = "`selfie`, `document_front`, optional `document_back`, `frames` (3–30), `applicant` {name, email, phone, country, ip}, `reference`, `callback_url`",
        example = json!({"selfie": "/9j/…", "document_front": "/9j/…", "applicant": {"name": "Anna Maria Eriksson", "email": "anna@example.com"}, "reference": "customer-42"})),
    responses((status = 202, description = "Queued", body = Object, example = json!({"job_id": "job_1a2b3c4d5e6f7a8b9c0d1e2f", "status": "queued"})),
        (status = 200, description = "Replayed: the job first queued with this Idempotency-Key", body = Object)))]
async fn verify(
    principal: Authorized<need::Verify>,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let idempotency = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::new(Code::InvalidInput, "Idempotency-Key must be visible ASCII")
                    .with_details(json!({ "field": "Idempotency-Key" }))
            })
        })
        .transpose()?;
    let request_id = request_id::current();
    let st = state.clone();
    let (job, created) = web::block(move || -> Result<_, ApiError> {
        let workflow = tenant_config::effective(&st.store, &principal.tenant_id)?;
        principal.require(&jobs::billed_modules(&workflow))?;
        Ok(st.jobs.submit(
            &principal.tenant_id,
            Some(&principal.key_id),
            !principal.sandbox,
            &request_id,
            &body,
            idempotency.as_deref(),
        )?)
    })
    .await
    .map_err(ApiError::internal)??;
    let mut body = json!({ "job_id": job.id, "status": job.status });
    if job.sandbox {
        body["sandbox"] = json!(true);
    }
    Ok(if created {
        HttpResponse::Accepted().json(body)
    } else {
        HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(body)
    })
}

/// A job: status, and once completed its score, decision, factors and reasons.
#[utoipa::path(get, path = "/v1/jobs/{id}", security(("X-API-SIGN" = ["results:read"])), tag = "workflow", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job, with its result once completed", body = Object,
        example = json!({"job_id": "job_1a2b3c4d5e6f7a8b9c0d1e2f", "status": "completed", "score": 94, "decision": "accepted", "reasons": ["score 94 ≥ 80 (accepted band)"], "factors": {"liveness": {"score": 97, "weight": 30}}}))))]
async fn get_job(
    principal: Authorized<need::ResultsRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let st = state.clone();
    let view = web::block(move || -> Result<_, ApiError> {
        // Without results:read_all a key sees only the jobs it submitted.
        let job = st
            .store
            .read(|c| store::jobs::get(c, &principal.tenant_id, &id))?
            .filter(|j| {
                principal.reads_all_results() || j.key_id.as_deref() == Some(&principal.key_id)
            })
            .ok_or_else(|| ApiError::new(Code::NotFound, "no such job"))?;
        Ok(st.jobs.view(&job))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Newest first; `next_cursor` continues the listing.
#[utoipa::path(get, path = "/v1/jobs", security(("X-API-SIGN" = ["results:read"])), tag = "workflow",
    params(("status" = Option<String>, Query, description = "queued, running, completed or failed"), ("cursor" = Option<String>, Query, description = "From a previous page's `next_cursor`"), ("limit" = Option<i64>, Query, description = "1–100, default 20")),
    responses((status = 200, description = "Newest first", body = Object, example = json!({"data": [{"job_id": "job_1a2b…", "status": "completed"}], "next_cursor": null}))))]
async fn list_jobs(
    principal: Authorized<need::ResultsRead>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if let Some(s) = &q.status {
        if !["queued", "running", "completed", "failed"].contains(&s.as_str()) {
            return Err(ApiError::new(
                Code::InvalidQuery,
                "status is one of queued, running, completed, failed",
            )
            .with_details(json!({ "field": "status" })));
        }
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(Code::InvalidQuery, "limit is 1 to 200")
            .with_details(json!({ "field": "limit" })));
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            c.split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    ApiError::new(Code::InvalidQuery, "cursor is not one this API returned")
                        .with_details(json!({ "field": "cursor" }))
                })
        })
        .transpose()?;
    let st = state.clone();
    let out = web::block(move || -> Result<_, ApiError> {
        let rows = st.store.read(|c| {
            store::jobs::list(
                c,
                &principal.tenant_id,
                (!principal.reads_all_results()).then_some(principal.key_id.as_str()),
                q.status.as_deref(),
                cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
                limit,
            )
        })?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| format!("{}.{}", r.created_at, r.id)))
            .flatten();
        let data: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "job_id": r.id, "status": r.status, "reference": r.reference,
                    "score": r.score, "decision": r.decision, "created_at": r.created_at,
                    "finished_at": r.finished_at,
                })
            })
            .collect();
        Ok(json!({ "data": data, "next_cursor": next }))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(out))
}

/// The calling tenant's workflow (the defaults until set).
#[utoipa::path(get, path = "/v1/workflow", security(("X-API-SIGN" = ["workflow:read"])), tag = "workflow",
    responses((status = 200, description = "The tenant's workflow (defaults until set)", body = Object,
        example = json!({"steps": ["liveness", "ocr", "validate", "face_match", "kya"], "weights": {"liveness": 30, "face_match": 40, "document": 25, "kya": 5}, "bands": {"accepted": 80, "review": 60}}))))]
async fn get_workflow(
    principal: Authorized<need::WorkflowRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let config =
        crate::http::blocking(move || tenant_config::effective(&st.store, &principal.tenant_id))
            .await?;
    Ok(HttpResponse::Ok().json(config))
}

/// Replaces the calling tenant's workflow; 422 names a bad field.
#[utoipa::path(put, path = "/v1/workflow", security(("X-API-SIGN" = ["workflow:write"])), tag = "workflow",
    request_body(content = Object, description = "Steps, thresholds, weights, bands, mandatory fields, rules; 422 names a bad field (`weights.liveness`)",
        example = json!({"weights": {"liveness": 30, "face_match": 40, "document": 25, "kya": 5}, "rules": [{"when": "spoof_detected", "decision": "rejected"}, {"when": "age_below", "value": 18, "decision": "rejected"}]})),
    responses((status = 200, description = "The stored workflow", body = Object)))]
async fn put_workflow(
    principal: Authorized<need::WorkflowWrite>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let actor = format!("key:{}", principal.key_id);
    let config = store_workflow(&state, &principal.tenant_id, &body, actor).await?;
    Ok(HttpResponse::Ok().json(config))
}

/// Validates and stores a tenant's workflow (audited); the 422 names the field.
pub async fn store_workflow(
    state: &web::Data<AppState>,
    tenant_id: &str,
    body: &[u8],
    actor: String,
) -> Result<WorkflowConfig, ApiError> {
    let (st, tenant, body) = (state.clone(), tenant_id.to_owned(), body.to_vec());
    crate::http::blocking(move || tenant_config::update(&st.store, &tenant, &body, &actor)).await
}

/// Registers the operator routes (inside the `/admin/v1` scope).
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/tenants/{id}/workflow")
            .route(web::get().to(admin_get_workflow))
            .route(web::put().to(admin_put_workflow)),
    )
    .service(
        resource("/tenants/{id}/workflow-floors")
            .route(web::get().to(admin_get_floors))
            .route(web::put().to(admin_put_floors)),
    );
}

/// The operator's floors for a tenant's workflow: a tenant may be stricter, never laxer.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/workflow-floors", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The floors (face_match is the tenant's face-match threshold)", body = Object,
        example = json!({"face_match": 0.75, "liveness": 0.5, "bands": {"accepted": 70, "review": 50}, "rules": [{"when": "spoof_detected", "decision": "rejected"}]}))))]
async fn admin_get_floors(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let floors = crate::http::blocking(move || tenant_config::floors(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(floors))
}

/// Changes a tenant's floors (a JSON merge patch over the current ones; audited). Workflows
/// stored below a new floor are held to it when they run.
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/workflow-floors", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Object, example = json!({"bands": {"accepted": 85}, "rules": [{"when": "spoof_detected", "decision": "rejected"}, {"when": "face_mismatch", "decision": "rejected"}]})),
    responses((status = 200, description = "The floors now (audited)", body = Object)))]
async fn admin_put_floors(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    let floors = crate::http::blocking(move || {
        tenant_config::update_floors(&state.store, &id, &patch, "operator")
    })
    .await?;
    Ok(HttpResponse::Ok().json(floors))
}

/// A tenant's workflow.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/workflow", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "A tenant's workflow", body = Object)))]
async fn admin_get_workflow(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let config = web::block(move || -> Result<_, ApiError> {
        if st.store.read(|c| store::tenants::get(c, &id))?.is_none() {
            return Err(ApiError::new(Code::NotFound, "no such tenant"));
        }
        Ok(tenant_config::effective(&st.store, &id)?)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(config))
}

/// Replaces a tenant's workflow (audited).
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/workflow", tag = "admin",
    params(("id" = String, Path, description = "Tenant id")),
    request_body(content = Object, example = json!({"bands": {"accepted": 85, "review": 60}})),
    responses((status = 200, description = "The stored workflow (audited)", body = Object)))]
async fn admin_put_workflow(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let config = store_workflow(&state, &id, &body, "operator".into()).await?;
    Ok(HttpResponse::Ok().json(config))
}
