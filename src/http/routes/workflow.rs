//! The workflow over HTTP: `POST /v1/kyc/verify` (queues a job), `GET /v1/jobs/{id}`,
//! `GET /v1/jobs`, and the workflow configuration for the tenant (`GET|PUT /v1/workflow`) and the
//! operator (`GET|PUT /admin/v1/tenants/{id}/workflow`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::audit::NewEntry;
use crate::auth::Principal;
use crate::error::{ApiError, Code};
use crate::http::extract::Operator;
use crate::http::{request_id, resource, AppState};
use crate::store;
use crate::workflow::config::{self, WorkflowConfig};
use crate::workflow::jobs::{self, VerifyRequest};

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

/// Queues a verification: 202 with the job id, or the first job again for a repeated
/// `Idempotency-Key` (200).
async fn verify(
    principal: Principal,
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
        let workflow = jobs::workflow_config(&st.store, &principal.tenant_id);
        principal.require(&jobs::billed_modules(&workflow))?;
        Ok(st.jobs.submit(
            &principal.tenant_id,
            Some(&principal.key_id),
            &request_id,
            &body,
            idempotency.as_deref(),
        )?)
    })
    .await
    .map_err(ApiError::internal)??;
    let body = json!({ "job_id": job.id, "status": job.status });
    Ok(if created {
        HttpResponse::Accepted().json(body)
    } else {
        HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(body)
    })
}

async fn get_job(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let st = state.clone();
    let view = web::block(move || -> Result<_, ApiError> {
        let job = st
            .store
            .read(|c| store::jobs::get(c, &principal.tenant_id, &id))?
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
async fn list_jobs(
    principal: Principal,
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

async fn get_workflow(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let config = web::block(move || jobs::workflow_config(&st.store, &principal.tenant_id))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(config))
}

async fn put_workflow(
    principal: Principal,
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
    let config = config::from_json(body).map_err(|e| {
        ApiError::new(
            Code::InvalidInput,
            format!(
                "workflow {}: {}",
                if e.field.is_empty() { "body" } else { &e.field },
                e.message
            ),
        )
        .with_details(json!({ "field": e.field, "reason": e.message }))
    })?;
    let st = state.clone();
    let tenant = tenant_id.to_owned();
    let stored = config.clone();
    web::block(move || -> Result<(), ApiError> {
        let json = serde_json::to_string(&stored).map_err(ApiError::internal)?;
        st.store.write(|tx| {
            if store::tenants::get(tx, &tenant)?.is_none() {
                return Err(store::StoreError::NotFound("tenant"));
            }
            let now = store::now();
            store::jobs::set_workflow_config(tx, &tenant, &json, now)?;
            // The configuration holds no personal data, so the audit entry carries it whole.
            let entry = NewEntry::new(actor, "workflow.update")
                .tenant(&tenant)
                .target(&tenant)
                .details(serde_json::from_str(&json).unwrap_or_default());
            store::audit::append(tx, &entry, now)?;
            Ok(())
        })?;
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(config)
}

/// Registers the operator routes (inside the `/admin/v1` scope).
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/tenants/{id}/workflow")
            .route(web::get().to(admin_get_workflow))
            .route(web::put().to(admin_put_workflow)),
    );
}

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
        Ok(jobs::workflow_config(&st.store, &id))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(config))
}

async fn admin_put_workflow(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let config = store_workflow(&state, &id, &body, "operator".into()).await?;
    Ok(HttpResponse::Ok().json(config))
}
