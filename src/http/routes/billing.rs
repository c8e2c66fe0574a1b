//! Plans, subscriptions, usage and invoices: `GET /v1/usage` for a tenant, and the operator's
//! `/admin/v1/plans`, `/admin/v1/tenants/{id}/plan`, `…/usage` and `…/invoices/{month}`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, Code};
use crate::http::extract::Operator;
use crate::http::extract::{need, Authorized};
use crate::http::{blocking, resource, AppState};
use crate::tenancy::invoice::{self, current_month};
use crate::tenancy::plans::Plan;
use crate::tenancy::subscription;

const ACTOR: &str = "operator";

/// Registers the tenant's route (inside the signed `/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/usage").route(web::get().to(tenant_usage)));
}

/// This module's operations in the OpenAPI description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    tenant_usage,
    admin_usage,
    get_invoice,
    list_plans,
    get_plan,
    put_plan,
    get_subscription,
    put_subscription
))]
pub struct Doc;

/// Registers the operator's routes (inside `/admin/v1`).
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/plans").route(web::get().to(list_plans)))
        .service(
            resource("/plans/{id}")
                .route(web::get().to(get_plan))
                .route(web::put().to(put_plan)),
        )
        .service(
            resource("/tenants/{id}/plan")
                .route(web::get().to(get_subscription))
                .route(web::put().to(put_subscription)),
        )
        .service(resource("/tenants/{id}/usage").route(web::get().to(admin_usage)))
        .service(resource("/tenants/{id}/invoices/{month}").route(web::get().to(get_invoice)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MonthQuery {
    /// `YYYY-MM`; the current month when absent.
    month: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceQuery {
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The calling tenant's usage, quotas and charges for a month.
#[utoipa::path(get, path = "/v1/usage", security(("X-API-SIGN" = ["usage:read"])), tag = "data", params(("month" = Option<String>, Query, description = "YYYY-MM; the current month by default")),
    responses((status = 200, description = "Usage, quotas, thresholds crossed and charges so far", body = crate::tenancy::invoice::UsageReport,
        example = json!({"month": "2026-11", "resets_at": "2026-12-01T00:00:00Z", "quota_mode": "hard", "modules": [{"module": "ocr", "used": 120, "quota": 10000, "remaining": 9880, "unit_price_micros": 80000}], "alerts": [], "invoice": {"total_micros": 9600000, "total_minor": 960}}))))]
async fn tenant_usage(
    principal: Authorized<need::UsageRead>,
    state: web::Data<AppState>,
    query: web::Query<MonthQuery>,
) -> Result<HttpResponse, ApiError> {
    let month = query.into_inner().month.unwrap_or_else(current_month);
    let r =
        blocking(move || invoice::usage_report(&state.store, &principal.tenant_id, &month)).await?;
    Ok(HttpResponse::Ok().json(r))
}

/// A tenant's usage, as the operator sees it.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/usage", tag = "admin", params(("id" = String, Path, description = "Tenant id"), ("month" = Option<String>, Query, description = "YYYY-MM")),
    responses((status = 200, description = "A tenant's usage report", body = crate::tenancy::invoice::UsageReport)))]
async fn admin_usage(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<MonthQuery>,
) -> Result<HttpResponse, ApiError> {
    let month = query.into_inner().month.unwrap_or_else(current_month);
    let r = blocking(move || {
        crate::tenancy::get_tenant(&state.store, &id)?;
        invoice::usage_report(&state.store, &id, &month)
    })
    .await?;
    Ok(HttpResponse::Ok().json(r))
}

/// A tenant's invoice for a month, JSON or CSV (`?format=csv`).
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/invoices/{month}", tag = "admin",
    params(("id" = String, Path, description = "Tenant id"), ("month" = String, Path, description = "YYYY-MM"), ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "A line per module and price; the total is the sum of billed usage rows", body = crate::tenancy::invoice::Invoice,
        example = json!({"tenant_id": "ten_…", "month": "2026-11", "status": "open", "currency": "USD", "lines": [{"module": "validation", "count": 3, "list_price_micros": 30000, "discount_percent": 25, "unit_price_micros": 22500, "amount_micros": 67500, "overage_units": 0}], "unbilled_units": {}, "total_micros": 67500, "total_minor": 7}))))]
async fn get_invoice(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, month) = path.into_inner();
    let format = query.into_inner().format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(ApiError::new(Code::InvalidQuery, "format is json or csv")
            .with_details(json!({ "field": "format" })));
    }
    let inv = blocking(move || {
        crate::tenancy::get_tenant(&state.store, &id)?;
        invoice::invoice(&state.store, &id, &month)
    })
    .await?;
    Ok(if format == "csv" {
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(inv.to_csv())
    } else {
        HttpResponse::Ok().json(inv)
    })
}

/// Every plan.
#[utoipa::path(get, path = "/admin/v1/plans", tag = "admin",
    responses((status = 200, description = "free, pro and enterprise as defined now", body = Object)))]
async fn list_plans(_: Operator, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let plans = blocking(move || subscription::list_plans(&state.store)).await?;
    let plans: Vec<Value> = plans
        .into_iter()
        .map(|(id, p)| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            v["id"] = json!(id);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "plans": plans })))
}

/// One plan.
#[utoipa::path(get, path = "/admin/v1/plans/{id}", tag = "admin", params(("id" = String, Path, description = "free, pro or enterprise")),
    responses((status = 200, description = "The plan", body = Plan,
        example = json!({"name": "Pro", "currency": "USD", "sandbox_only": false, "quota_mode": "hard", "modules": {"ocr": {"monthly_quota": 10000, "unit_price_micros": 80000}}, "tiers": [{"from_units": 1001, "discount_percent": 10}], "rate_limit": {"per_minute": 60, "per_day": 50000, "endpoints": {}}}))))]
async fn get_plan(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = blocking(move || state.store.read(|c| subscription::plan(c, &id))).await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Replaces a plan's definition (every tenant on it is affected at once).
#[utoipa::path(put, path = "/admin/v1/plans/{id}", tag = "admin", params(("id" = String, Path, description = "free, pro or enterprise")),
    request_body(content = Plan, description = "The whole plan, as GET returns it"),
    responses((status = 200, description = "The stored plan (audited)", body = Plan)))]
async fn put_plan(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Plan>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let p = blocking(move || subscription::set_plan(&state.store, &id, &body, ACTOR)).await?;
    Ok(HttpResponse::Ok().json(p))
}

/// A tenant's plan, overrides and the effective terms.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/plan", tag = "admin", params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "Plan, overrides and effective terms", body = subscription::Subscription)))]
async fn get_subscription(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let s = blocking(move || subscription::subscription(&state.store, &id)).await?;
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscriptionChange {
    /// `free`, `pro` or `enterprise`; unchanged when absent.
    plan: Option<String>,
    /// A JSON merge patch over the plan; `null` clears, absent keeps.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    overrides: Option<Value>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(Value::Null)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Some(Value::deserialize(d)?))
}

/// Changes a tenant's plan and/or overrides.
#[utoipa::path(put, path = "/admin/v1/tenants/{id}/plan", tag = "admin", params(("id" = String, Path, description = "Tenant id")),
    request_body(content = SubscriptionChange, description = "`plan` and/or `overrides` (a JSON merge patch over the plan; null clears)",
        example = json!({"plan": "pro", "overrides": {"quota_mode": "soft", "modules": {"ocr": {"monthly_quota": 150}}}})),
    responses((status = 200, description = "The subscription (audited)", body = subscription::Subscription)))]
async fn put_subscription(
    _: Operator,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SubscriptionChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let s = blocking(move || {
        subscription::set_subscription(
            &state.store,
            &id,
            body.plan.as_deref(),
            body.overrides.as_ref(),
            ACTOR,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(s))
}
