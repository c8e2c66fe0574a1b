//! Liveness and readiness probes for systemd, load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::{ApiError, Code};
use crate::http::{resource, AppState};

/// Registers `/healthz` and `/readyz`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/readyz").route(web::get().to(readyz)));
}

/// Prometheus text exposition; gauges of stored state (jobs, deliveries, quotas) are read at
/// scrape time.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    match web::block(move || crate::telemetry::metrics::stored_state(&store, crate::store::now()))
        .await
    {
        Ok(Ok(s)) => state.metrics.set_stored_state(&s),
        Ok(Err(e)) => tracing::warn!(error = %e, "reading stored state for /metrics failed"),
        Err(e) => tracing::warn!(error = %e, "reading stored state for /metrics failed"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// The process is up and answering.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

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
