//! Audit search: `GET /admin/v1/audit` (operator, every tenant) and `GET /v1/audit` (a tenant's own).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::error::{ApiError, Code};
use crate::http::extract::Operator;
use crate::http::extract::{need, Authorized};
use crate::http::{resource, AppState};
use crate::store::audit::{self, Search};

/// Registers `/audit` in the scope it is configured into.
pub fn configure_tenant(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/audit").route(web::get().to(tenant_audit)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(admin_audit, tenant_audit))]
pub struct Doc;

/// Registers `/audit` for the operator.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/audit").route(web::get().to(admin_audit)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Full-text query (FTS5 syntax) over actor, action, target and details.
    q: Option<String>,
    /// From: Unix seconds or RFC 3339.
    from: Option<String>,
    /// To: Unix seconds or RFC 3339.
    to: Option<String>,
    /// Only this tenant (operator only).
    tenant: Option<String>,
    /// At most this many entries (default 100, at most 1000).
    limit: Option<i64>,
}

fn instant(field: &'static str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(Some(secs));
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(t.unix_timestamp()))
        .map_err(|_| {
            ApiError::new(
                Code::InvalidQuery,
                format!("{field} must be Unix seconds or RFC 3339"),
            )
            .with_details(serde_json::json!({ "field": field }))
        })
}

async fn run_search(
    state: web::Data<AppState>,
    query: AuditQuery,
    tenant: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let from = instant("from", &query.from)?;
    let to = instant("to", &query.to)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = web::block(move || {
        state.store.read(|c| {
            audit::search(
                c,
                &Search {
                    query: query.q.as_deref().filter(|q| !q.trim().is_empty()),
                    tenant_id: tenant.as_deref(),
                    from,
                    to,
                    limit,
                },
            )
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        crate::store::StoreError::Conflict(msg) => {
            ApiError::new(Code::InvalidQuery, msg).with_details(serde_json::json!({ "field": "q" }))
        }
        other => other.into(),
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": rows })))
}

/// Searches the whole audit log.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin",
    params(("q" = Option<String>, Query, description = "FTS5 query"), ("from" = Option<String>, Query, description = "Unix seconds or RFC 3339"), ("to" = Option<String>, Query, description = "Unix seconds or RFC 3339"), ("tenant" = Option<String>, Query, description = "One tenant"), ("limit" = Option<i64>, Query, description = "1–1000, default 100")),
    responses((status = 200, description = "Entries, newest first, with their chain hashes", body = Object,
        example = json!({"entries": [{"seq": 12, "action": "key.revoke", "actor": "operator", "target": "ak_…", "hash": "9f2c…"}]}))))]
async fn admin_audit(
    _: Operator,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let tenant = query.tenant.clone();
    run_search(state, query, tenant).await
}

/// Searches the calling tenant's own audit entries.
#[utoipa::path(get, path = "/v1/audit", security(("X-API-SIGN" = ["audit:read"])), tag = "data",
    params(("q" = Option<String>, Query, description = "FTS5 query"), ("from" = Option<String>, Query, description = "Unix seconds or RFC 3339"), ("to" = Option<String>, Query, description = "Unix seconds or RFC 3339"), ("limit" = Option<i64>, Query, description = "1–1000, default 100")),
    responses((status = 200, description = "The calling tenant's own entries", body = Object)))]
async fn tenant_audit(
    principal: Authorized<need::AuditRead>,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if query
        .tenant
        .as_ref()
        .is_some_and(|t| *t != principal.tenant_id)
    {
        return Err(
            ApiError::new(Code::InvalidQuery, "tenant can only be your own")
                .with_details(serde_json::json!({ "field": "tenant" })),
        );
    }
    run_search(state, query, Some(principal.into_inner().tenant_id)).await
}
