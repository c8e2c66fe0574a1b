//! Liveness and readiness probes for systemd, load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::{ApiError, Code};
use crate::http::extract::Operator;
use crate::http::{resource, AppState};

/// Registers the probes, `/metrics`, `/openapi.json` and the docs UI.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/openapi.json").route(web::get().to(openapi)))
        .service(resource("/docs").route(web::get().to(docs)))
        .service(resource("/docs/{file}").route(web::get().to(docs_asset)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics, openapi, docs, docs_asset))]
pub struct Doc;

/// The docs UI (Swagger UI 5, Apache-2.0), embedded: `/docs` works without any network.
const DOCS_INDEX: &str = include_str!("../../../assets/docs/index.html");
const DOCS_JS: &[u8] = include_bytes!("../../../assets/docs/swagger-ui-bundle.js");
const DOCS_CSS: &[u8] = include_bytes!("../../../assets/docs/swagger-ui.css");

/// The OpenAPI 3.1 description of every route.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::http::openapi::spec_json())
}

/// The API documentation, rendered from `/openapi.json` by the embedded Swagger UI.
#[utoipa::path(get, path = "/docs", tag = "ops",
    responses((status = 200, description = "HTML page", content_type = "text/html", body = String)))]
async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_INDEX)
}

/// The docs UI's script and stylesheet.
#[utoipa::path(get, path = "/docs/{file}", tag = "ops",
    params(("file" = String, Path, description = "`swagger-ui-bundle.js` or `swagger-ui.css`")),
    responses((status = 200, description = "The asset", content((String = "text/javascript"), (String = "text/css"))), (status = 404, description = "No such asset")))]
async fn docs_asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (body, kind) = match file.as_str() {
        "swagger-ui-bundle.js" => (DOCS_JS, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (DOCS_CSS, "text/css; charset=utf-8"),
        other => {
            return Err(ApiError::new(
                Code::RouteNotFound,
                format!("no docs asset {other}"),
            ))
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(body))
}

#[utoipa::path(get, path = "/metrics", tag = "ops", security(("operator" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String,
        example = json!("kycd_http_requests_total{method=\"GET\",route=\"/v1/ping\",status=\"200\"} 3"))))]
/// Prometheus text exposition; gauges of stored state (jobs, deliveries, quotas) are read at
/// scrape time. On the main listener it needs the operator token; `metrics.listen` serves it
/// on an internal address without one.
async fn metrics(_: Operator, state: web::Data<AppState>) -> HttpResponse {
    render_metrics(&state).await
}

/// `/metrics` on the internal metrics listener (no token: bind it where only scrapers reach).
pub async fn metrics_open(state: web::Data<AppState>) -> HttpResponse {
    render_metrics(&state).await
}

async fn render_metrics(state: &web::Data<AppState>) -> HttpResponse {
    // The stored-state gauges are read at most every 10 s, so scraping cannot keep the
    // blocking pool busy with database reads.
    if state
        .metrics
        .stored_state_due(std::time::Duration::from_secs(10))
    {
        let store = state.store.clone();
        let read = move || crate::telemetry::metrics::stored_state(&store, crate::store::now());
        match web::block(read).await {
            Ok(Ok(s)) => state
                .metrics
                .set_stored_state(&s, state.config.metrics.tenant_labels),
            Ok(Err(e)) => tracing::warn!(error = %e, "reading stored state for /metrics failed"),
            Err(e) => tracing::warn!(error = %e, "reading stored state for /metrics failed"),
        }
    }
    state.metrics.set_admission(&[
        &state.bodies.by_key,
        &state.bodies.by_tenant,
        state.media.decoded_budget(),
        &state.facephi_in_flight,
    ]);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Up", body = Object, example = json!({"status": "ok", "version": "0.1.0"}))))]
/// The process is up and answering.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "Ready", body = Object, example = json!({"status": "ready", "checks": {"database": "ok", "models": "loaded"}})),
        (status = 503, description = "Starting, or the database is not writable", body = crate::http::openapi::ErrorEnvelope)))]
/// Start-up finished and the database accepts writes; 503 `not_ready` otherwise.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.is_ready() {
        return Err(ApiError::new(Code::NotReady, "starting up"));
    }
    let store = state.store.clone();
    web::block(move || store.check_writable())
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "database not writable");
            ApiError::new(Code::NotReady, "database is not writable")
        })?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "checks": { "database": "ok", "models": "loaded" }
    })))
}
