//! Tenants: the list (plan, status, this month's units and amount), creation, a tenant's page
//! (suspend and reactivate; plan and overrides; workflow floors; media retention; its keys; its
//! console users; opening one verification's images with a reason).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use base64::Engine;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::{back, field_error, micros_of, money, Op};
use crate::console::operators::OpAction;
use crate::console::users::{self, Role, UserError};
use crate::console::views::{csrf, page, when};
use crate::console::{blocking, internal, ok, ConsoleError, Fields};
use crate::http::AppState;
use crate::store::console::Realm;
use crate::store::StoreError;
use crate::tenancy::plans::{Module, QuotaMode, PLAN_IDS};
use crate::tenancy::{self, subscription, TenancyError};
use crate::workflow::tenant_config::{self, ConfigError};

/// Tenants the list shows at most.
const LIST_TENANTS: usize = 500;

/// Registers the routes (inside `/admin`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(list))
        .route("/", web::get().to(list))
        .route("/tenants", web::post().to(create))
        .route("/tenants/{id}", web::get().to(show))
        .route("/tenants/{id}/plan", web::post().to(set_plan))
        .route("/tenants/{id}/suspend", web::post().to(suspend))
        .route("/tenants/{id}/activate", web::post().to(activate))
        .route("/tenants/{id}/floors", web::post().to(set_floors))
        .route("/tenants/{id}/media", web::post().to(set_media))
        .route("/tenants/{id}/keys", web::post().to(create_key))
        .route(
            "/tenants/{id}/keys/{key}/{change}",
            web::post().to(change_key),
        )
        .route("/tenants/{id}/users", web::post().to(invite))
        .route(
            "/tenants/{id}/users/{user}/{change}",
            web::post().to(change_user),
        )
        .route(
            "/tenants/{id}/verification",
            web::post().to(open_verification),
        );
}

/// One tenant in the list.
struct Line {
    tenant: crate::store::tenants::TenantRow,
    units: i64,
    amount_micros: i64,
    currency: String,
}

fn tenancy_error(op: &Op, e: TenancyError) -> ConsoleError {
    match e {
        TenancyError::Store(StoreError::NotFound(_)) => op.not_found(),
        TenancyError::Store(e) => internal(e),
        e => op.refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

async fn list(op: Op, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewTenants)?;
    let lines = blocking(move || {
        let month = crate::tenancy::invoice::current_month();
        let mut lines = Vec::new();
        for t in tenancy::list_tenants(&state.store)
            .map_err(internal)?
            .into_iter()
            .take(LIST_TENANTS)
        {
            let inv =
                crate::tenancy::invoice::invoice(&state.store, &t.id, &month).map_err(internal)?;
            lines.push(Line {
                units: inv.lines.iter().map(|l| l.count).sum(),
                amount_micros: inv.total_micros,
                currency: inv.currency,
                tenant: t,
            });
        }
        Ok(lines)
    })
    .await?;
    Ok(ok(list_page(&op, &lines, None)))
}

fn list_page(op: &Op, lines: &[Line], refused: Option<(&str, &str)>) -> Markup {
    page(
        "Tenants",
        Some(&op.who),
        html! {
            @if op.role.allows(OpAction::ManageTenants) {
                form.create method="post" action="/admin/tenants" {
                    (csrf(&op.who))
                    label { "Name" input type="text" name="name" required maxlength="200"; (field_error(refused, "name")) }
                    label { "Plan" select name="plan" { @for p in PLAN_IDS { option value=(p) { (p) } } } }
                    button id="create-tenant" type="submit" { "Create tenant" }
                }
            }
            table.tenants {
                thead { tr { th { "tenant" } th { "name" } th { "plan" } th { "status" } th.num { "units this month" } th.num { "amount this month" } } }
                tbody {
                    @for l in lines {
                        tr data-tenant=(l.tenant.id) data-status=(l.tenant.status) {
                            td { a href={ "/admin/tenants/" (l.tenant.id) } { code { (l.tenant.id) } } }
                            td { (l.tenant.name) }
                            td { (l.tenant.plan) }
                            td class={ "status " (l.tenant.status) } { (l.tenant.status) }
                            td.num { (l.units) }
                            td.num { (money(l.amount_micros)) " " (l.currency) }
                        }
                    }
                }
            }
        },
    )
}

async fn create(
    op: Op,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ManageTenants)?;
    let name = f.get("name").unwrap_or_default().to_owned();
    let plan = f.get("plan").unwrap_or("free").to_owned();
    let (st, actor) = (state.clone(), op.actor());
    let made = web::block(move || tenancy::create_tenant(&st.store, &name, &plan, &actor))
        .await
        .map_err(internal)?;
    match made {
        Ok(t) => Ok(back(&format!("/admin/tenants/{}", t.id))),
        Err(TenancyError::Invalid { field, reason }) => Err(op.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
        )),
        Err(e) => Err(tenancy_error(&op, e)),
    }
}

/// Everything the tenant page shows.
struct Detail {
    tenant: crate::store::tenants::TenantRow,
    sub: subscription::Subscription,
    floors: crate::workflow::config::Floors,
    media: tenancy::MediaPolicy,
    keys: Vec<crate::store::keys::KeyRow>,
    users: Vec<crate::store::console::UserRow>,
    invoice: crate::tenancy::invoice::Invoice,
}

async fn detail(op: &Op, state: &web::Data<AppState>, id: &str) -> Result<Detail, ConsoleError> {
    let (st, id) = (state.clone(), id.to_owned());
    let not_found = op.not_found();
    blocking(move || {
        let tenant = match tenancy::get_tenant(&st.store, &id) {
            Ok(t) => t,
            Err(TenancyError::Store(StoreError::NotFound(_))) => return Err(not_found),
            Err(e) => return Err(internal(e)),
        };
        Ok(Detail {
            sub: subscription::subscription(&st.store, &id).map_err(internal)?,
            floors: tenant_config::floors(&st.store, &id).map_err(internal)?,
            media: tenancy::get_media_policy(&st.store, &id).map_err(internal)?,
            keys: crate::auth::keys::list_keys(&st.store, Some(&id)).map_err(internal)?,
            users: st
                .store
                .read(|c| crate::store::console::users(c, Realm::Tenant, &id))
                .map_err(internal)?,
            invoice: crate::tenancy::invoice::invoice(
                &st.store,
                &id,
                &crate::tenancy::invoice::current_month(),
            )
            .map_err(internal)?,
            tenant,
        })
    })
    .await
}

/// What the tenant page shows besides the stored state.
#[derive(Default)]
struct Extra<'a> {
    /// A refused field and why.
    refused: Option<(&'a str, &'a str)>,
    /// A plan form as sent (refused), to show back.
    plan_form: Option<&'a Fields>,
    /// A secret or password made just now: (what, value).
    shown: Option<(&'a str, &'a str)>,
    /// A verification opened with a reason.
    opened: Option<Markup>,
}

async fn show(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewTenants)?;
    let d = detail(&op, &state, &id).await?;
    Ok(ok(tenant_page(&op, &d, Extra::default())))
}

async fn render(
    op: &Op,
    state: &web::Data<AppState>,
    id: &str,
    status: StatusCode,
    extra: Extra<'_>,
) -> Result<HttpResponse, ConsoleError> {
    let d = detail(op, state, id).await?;
    Ok(crate::console::html(status, tenant_page(op, &d, extra)))
}

/// The tenant page again with `refused` (field, why) beside its field, and the plan form as sent.
async fn refused_at(
    op: &Op,
    state: &web::Data<AppState>,
    id: &str,
    refused: (&str, &str),
    plan_form: Option<&Fields>,
) -> Result<HttpResponse, ConsoleError> {
    let extra = Extra {
        refused: Some(refused),
        plan_form,
        ..Extra::default()
    };
    render(op, state, id, StatusCode::UNPROCESSABLE_ENTITY, extra).await
}

/// The tenant page with a secret or password made just now, shown this once.
async fn with_secret(
    op: &Op,
    state: &web::Data<AppState>,
    id: &str,
    what: &str,
    value: &str,
) -> Result<HttpResponse, ConsoleError> {
    let extra = Extra {
        shown: Some((what, value)),
        ..Extra::default()
    };
    render(op, state, id, StatusCode::OK, extra).await
}

/// The plan form's value for `name`: as sent, or from the stored overrides.
fn plan_value(d: &Detail, sent: Option<&Fields>, name: &str) -> String {
    if let Some(f) = sent {
        return f.get(name).unwrap_or_default().to_owned();
    }
    let o = d.sub.overrides.clone().unwrap_or(Value::Null);
    match name.split('.').collect::<Vec<_>>().as_slice() {
        ["overrides", "quota_mode"] => o["quota_mode"].as_str().unwrap_or_default().to_owned(),
        ["overrides", "modules", m, "monthly_quota"] => o["modules"][m]["monthly_quota"]
            .as_i64()
            .map(|q| q.to_string())
            .unwrap_or_default(),
        ["overrides", "modules", m, "price"] => o["modules"][m]["unit_price_micros"]
            .as_i64()
            .map(money)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn tenant_page(op: &Op, d: &Detail, x: Extra<'_>) -> Markup {
    let manage = op.role.allows(OpAction::ManageTenants);
    let t = &d.tenant;
    let bad = x.refused;
    let base = |path: &str| format!("/admin/tenants/{}/{path}", t.id);
    let plan_sent = x.plan_form;
    let current_plan = plan_sent
        .and_then(|f| f.get("plan"))
        .unwrap_or(&d.sub.plan)
        .to_owned();
    page(
        &format!("Tenant {}", t.name),
        Some(&op.who),
        html! {
            p.summary {
                code { (t.id) } " · plan " strong id="plan" { (d.sub.plan) }
                " · status " strong id="status" class={ "status " (t.status) } { (t.status) }
                " · this month " (d.invoice.lines.iter().map(|l| l.count).sum::<i64>()) " units, "
                (money(d.invoice.total_micros)) " " (d.invoice.currency)
            }
            @if let Some((what, value)) = x.shown {
                div.secret role="status" { p { (what) ", shown this once:" } pre id="secret" { (value) } }
            }
            @if let Some((field, why)) = bad.filter(|(f, _)| f.is_empty()) {
                p.error role="alert" data-field=(field) { (why) }
            }
            @if manage {
                div.buttons {
                    @if t.status == "active" {
                        form method="post" action=(base("suspend")) { (csrf(&op.who)) button.danger id="suspend" type="submit" { "Suspend" } }
                    } @else {
                        form method="post" action=(base("activate")) { (csrf(&op.who)) button id="activate" type="submit" { "Reactivate" } }
                    }
                }
            }
            h2 { "Plan and overrides" }
            form.plan method="post" action=(base("plan")) {
                (csrf(&op.who))
                fieldset.grid {
                    label { "Plan" select name="plan" disabled[!manage] { @for p in PLAN_IDS { option value=(p) selected[*p == current_plan] { (p) } } } (field_error(bad, "plan")) }
                    label { "Quota mode" select name="overrides.quota_mode" disabled[!manage] {
                        @let qm = plan_value(d, plan_sent, "overrides.quota_mode");
                        option value="" { "the plan's (" (serde_json::to_value(d.sub.effective.quota_mode).unwrap_or_default().as_str().unwrap_or("")) ")" }
                        @for m in [QuotaMode::Hard, QuotaMode::Soft] {
                            @let name = serde_json::to_value(m).unwrap_or_default().as_str().unwrap_or("").to_owned();
                            option value=(name) selected[qm == name] { (name) }
                        }
                    } (field_error(bad, "overrides.quota_mode")) }
                }
                table.overrides {
                    thead { tr { th { "module" } th { "monthly quota (effective)" } th { "override" } th { "unit price (effective)" } th { "override" } } }
                    tbody {
                        @for m in Module::ALL {
                            @let terms = d.sub.effective.modules.get(&m);
                            @let q = format!("overrides.modules.{}.monthly_quota", m.as_str());
                            @let p = format!("overrides.modules.{}.price", m.as_str());
                            tr data-module=(m.as_str()) {
                                td { (m.as_str()) }
                                td { @match terms.and_then(|t| t.monthly_quota) { Some(q) => (q), None => "unlimited" } }
                                td { input type="number" name=(q) value=(plan_value(d, plan_sent, &q)) min="0" step="1" placeholder="plan's" disabled[!manage]; (field_error(bad, &q)) }
                                td { @if let Some(t) = terms { (money(t.unit_price_micros)) } }
                                td { input type="text" name=(p) value=(plan_value(d, plan_sent, &p)) placeholder="plan's" inputmode="decimal" disabled[!manage]; (field_error(bad, &p)) }
                            }
                        }
                    }
                }
                @if manage { button id="save-plan" type="submit" { "Save plan and overrides" } }
            }
            h2 { "Floors and media retention" }
            form.create method="post" action=(base("floors")) {
                (csrf(&op.who))
                label { "Face-match floor (0.5–0.99)" input type="number" name="face_match" step="0.01" value=(d.floors.face_match) disabled[!manage]; (field_error(bad, "face_match")) }
                label { "Liveness floor (0–1)" input type="number" name="liveness" step="0.01" value=(d.floors.liveness) disabled[!manage]; (field_error(bad, "liveness")) }
                @if manage { button id="save-floors" type="submit" { "Save floors" } }
            }
            form.create method="post" action=(base("media")) {
                (csrf(&op.who))
                label { "Keep images for (days, 0 = keep none)" input type="number" name="media_retention_days" min="0" max="3650" value=(d.media.media_retention_days) disabled[!manage]; (field_error(bad, "media_retention_days")) }
                fieldset {
                    legend { "Kinds kept" }
                    @for k in crate::media::MediaKind::ALL {
                        label.inline { input type="checkbox" name="media_kinds" value=(k.as_str()) checked[d.media.media_kinds.contains(&k)] disabled[!manage]; " " (k.as_str()) }
                    }
                }
                @if manage { button id="save-media" type="submit" { "Save retention" } }
            }
            h2 { "API keys" }
            @if manage {
                form.search method="post" action=(base("keys")) {
                    (csrf(&op.who))
                    input type="text" name="label" placeholder="label" maxlength="200";
                    button id="create-key" type="submit" { "Create key" }
                }
            }
            table.keys {
                thead { tr { th { "key" } th { "label" } th { "environment" } th { "scopes" } th { "last used" } th { "status" } th { "" } } }
                tbody {
                    @for k in &d.keys {
                        tr data-key=(k.id) {
                            td { code { (k.id) } }
                            td { (k.label.as_deref().unwrap_or("")) }
                            td { (k.environment) }
                            td { (k.scopes.as_ref().map_or_else(|| "all modules".to_owned(), |s| s.join(", "))) }
                            td { @if let Some(t) = k.last_used_at { (when(t)) } @else { "never" } }
                            td { (k.status) }
                            td.actions {
                                @if manage && k.status == "active" {
                                    form method="post" action=(base(&format!("keys/{}/rotate", k.id))) { (csrf(&op.who)) button type="submit" { "Rotate" } }
                                    form method="post" action=(base(&format!("keys/{}/revoke", k.id))) { (csrf(&op.who)) button.danger type="submit" { "Revoke" } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Console users" }
            @if manage {
                form.search method="post" action=(base("users")) {
                    (csrf(&op.who))
                    input type="email" name="email" placeholder="email" required;
                    select name="role" { @for r in Role::ALL { option value=(r.as_str()) { (r.as_str()) } } }
                    button id="invite-user" type="submit" { "Add user" }
                    (field_error(bad, "email"))
                }
            }
            table.users {
                thead { tr { th { "email" } th { "role" } th { "status" } th { "second factor" } th { "last sign-in" } th { "" } } }
                tbody {
                    @for u in &d.users {
                        tr data-user=(u.email) data-status=(u.status) {
                            td { (u.email) } td { (u.role) } td { (u.status) }
                            td { @if u.totp_secret.is_some() { "on" } @else { "off" } }
                            td { @if let Some(t) = u.last_login_at { (when(t)) } @else { "never" } }
                            td.actions {
                                @if manage {
                                    @let next = if u.status == "active" { ("disable", "Disable") } else { ("enable", "Enable") };
                                    form method="post" action=(base(&format!("users/{}/{}", u.id, next.0))) { (csrf(&op.who)) button.danger type="submit" { (next.1) } }
                                    form method="post" action=(base(&format!("users/{}/reset", u.id))) { (csrf(&op.who)) button.danger type="submit" { "Reset password" } }
                                }
                            }
                        }
                    }
                }
            }
            @if op.role.allows(OpAction::ViewPersonalData) {
                h2 { "Open a verification (personal data)" }
                form.search method="post" action=(base("verification")) {
                    (csrf(&op.who))
                    input type="text" name="job" placeholder="job_…" required maxlength="64";
                    input type="text" name="reason" placeholder="reason (ticket, request) — audited" required maxlength="500";
                    button id="open-verification" type="submit" { "Open" }
                    (field_error(bad, "reason"))
                }
                @if let Some(opened) = x.opened { (opened) }
            }
        },
    )
}

async fn set_plan(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ManageTenants)?;
    let id = id.into_inner();
    // The overrides as a merge patch: only what was filled in.
    let mut modules = Map::new();
    let mut refused: Option<(String, String)> = None;
    for m in Module::ALL {
        let mut terms = Map::new();
        let q = f
            .get(&format!("overrides.modules.{}.monthly_quota", m.as_str()))
            .unwrap_or_default()
            .trim();
        if !q.is_empty() {
            match q.parse::<i64>() {
                Ok(n) => {
                    terms.insert("monthly_quota".into(), json!(n));
                }
                Err(_) => {
                    refused.get_or_insert((
                        format!("overrides.modules.{}.monthly_quota", m.as_str()),
                        "a whole number of units".into(),
                    ));
                }
            }
        }
        let p = f
            .get(&format!("overrides.modules.{}.price", m.as_str()))
            .unwrap_or_default()
            .trim();
        if !p.is_empty() {
            match micros_of(p) {
                Some(micros) => {
                    terms.insert("unit_price_micros".into(), json!(micros));
                }
                None => {
                    refused.get_or_insert((
                        format!("overrides.modules.{}.price", m.as_str()),
                        "a price such as 0.08".into(),
                    ));
                }
            }
        }
        if !terms.is_empty() {
            modules.insert(m.as_str().into(), Value::Object(terms));
        }
    }
    let mut overrides = Map::new();
    if let Some(qm) = f.get("overrides.quota_mode").filter(|q| !q.is_empty()) {
        overrides.insert("quota_mode".into(), json!(qm));
    }
    if !modules.is_empty() {
        overrides.insert("modules".into(), Value::Object(modules));
    }
    if let Some((field, why)) = &refused {
        return refused_at(&op, &state, &id, (field.as_str(), why.as_str()), Some(&f)).await;
    }
    let overrides = if overrides.is_empty() {
        Value::Null
    } else {
        Value::Object(overrides)
    };
    let plan = f.get("plan").map(str::to_owned);
    let (st, actor, tenant) = (state.clone(), op.actor(), id.clone());
    let done = web::block(move || {
        subscription::set_subscription(
            &st.store,
            &tenant,
            plan.as_deref(),
            Some(&overrides),
            &actor,
        )
    })
    .await
    .map_err(internal)?;
    match done {
        Ok(_) => Ok(back(&format!("/admin/tenants/{id}"))),
        Err(TenancyError::InvalidField { field, reason }) => {
            refused_at(
                &op,
                &state,
                &id,
                (field.as_str(), reason.as_str()),
                Some(&f),
            )
            .await
        }
        Err(e) => Err(tenancy_error(&op, e)),
    }
}

#[derive(serde::Deserialize)]
struct CsrfOnly {
    _csrf: Option<String>,
}

async fn set_status(
    op: Op,
    state: web::Data<AppState>,
    id: String,
    csrf_sent: Option<String>,
    active: bool,
) -> Result<HttpResponse, ConsoleError> {
    op.check_csrf(csrf_sent.as_deref())?;
    op.may(OpAction::ManageTenants)?;
    let (st, actor, tenant) = (state.clone(), op.actor(), id.clone());
    let done = web::block(move || tenancy::set_active(&st.store, &tenant, active, &actor))
        .await
        .map_err(internal)?;
    done.map_err(|e| tenancy_error(&op, e))?;
    Ok(back(&format!("/admin/tenants/{id}")))
}

async fn suspend(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    set_status(op, state, id.into_inner(), form.into_inner()._csrf, false).await
}

async fn activate(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    set_status(op, state, id.into_inner(), form.into_inner()._csrf, true).await
}

async fn set_floors(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ManageTenants)?;
    let id = id.into_inner();
    let num = |name: &str| -> Value {
        let v = f.get(name).unwrap_or_default().trim();
        v.parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(v.to_owned()))
    };
    let patch = json!({ "face_match": num("face_match"), "liveness": num("liveness") });
    let (st, actor, tenant) = (state.clone(), op.actor(), id.clone());
    let done = web::block(move || tenant_config::update_floors(&st.store, &tenant, &patch, &actor))
        .await
        .map_err(internal)?;
    match done {
        Ok(_) => Ok(back(&format!("/admin/tenants/{id}"))),
        Err(ConfigError::Invalid(e)) => {
            refused_at(
                &op,
                &state,
                &id,
                (e.field.as_str(), e.message.as_str()),
                None,
            )
            .await
        }
        Err(ConfigError::Store(StoreError::NotFound(_))) => Err(op.not_found()),
        Err(e) => Err(internal(e)),
    }
}

async fn set_media(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ManageTenants)?;
    let id = id.into_inner();
    let days = f.get("media_retention_days").unwrap_or_default().trim();
    let Ok(days) = days.parse::<i64>() else {
        return refused_at(
            &op,
            &state,
            &id,
            ("media_retention_days", "a whole number of days"),
            None,
        )
        .await;
    };
    let kinds = f
        .all("media_kinds")
        .filter_map(|k| {
            crate::media::MediaKind::ALL
                .into_iter()
                .find(|m| m.as_str() == k)
        })
        .collect();
    let policy = tenancy::MediaPolicy {
        media_retention_days: days,
        media_kinds: kinds,
    };
    let (st, actor, tenant) = (state.clone(), op.actor(), id.clone());
    let done = web::block(move || tenancy::set_media_policy(&st.store, &tenant, &policy, &actor))
        .await
        .map_err(internal)?;
    match done {
        Ok(_) => Ok(back(&format!("/admin/tenants/{id}"))),
        Err(TenancyError::Invalid { field, reason }) => {
            refused_at(&op, &state, &id, (field, reason.as_str()), None).await
        }
        Err(e) => Err(tenancy_error(&op, e)),
    }
}

async fn create_key(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ManageTenants)?;
    let id = id.into_inner();
    let label = f.get("label").unwrap_or_default().trim().to_owned();
    let (st, actor, tenant) = (state.clone(), op.actor(), id.clone());
    let made = web::block(move || {
        let label = Some(label.as_str()).filter(|l| !l.is_empty());
        crate::auth::keys::create_key(&st.store, &tenant, label, false, &actor)
    })
    .await
    .map_err(internal)?
    .map_err(|e| tenancy_error(&op, e))?;
    let what = format!("Secret of key {}", made.key.id);
    with_secret(&op, &state, &id, &what, &made.secret).await
}

async fn change_key(
    op: Op,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    op.check_csrf(form._csrf.as_deref())?;
    op.may(OpAction::ManageTenants)?;
    let (id, key, change) = path.into_inner();
    let (st, actor, tenant, key_id) = (state.clone(), op.actor(), id.clone(), key.clone());
    let not_found = op.not_found();
    let secret = blocking(move || {
        let owned = crate::auth::keys::list_keys(&st.store, Some(&tenant))
            .map_err(internal)?
            .iter()
            .any(|k| k.id == key_id);
        if !owned {
            return Err(not_found);
        }
        match change.as_str() {
            "revoke" => {
                crate::auth::keys::revoke_key(&st.store, &key_id, &actor).map_err(internal)?;
                Ok(None)
            }
            // The old secret stops at once: an operator rotates after a leak.
            "rotate" => Ok(Some(
                crate::auth::keys::rotate_key(&st.store, &key_id, 0, &actor)
                    .map_err(internal)?
                    .secret,
            )),
            _ => Err(not_found),
        }
    })
    .await?;
    match secret {
        None => Ok(back(&format!("/admin/tenants/{id}"))),
        Some(secret) => {
            let what = format!("New secret of key {key}");
            with_secret(&op, &state, &id, &what, &secret).await
        }
    }
}

async fn invite(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ManageTenants)?;
    let id = id.into_inner();
    let email = f.get("email").unwrap_or_default().to_owned();
    let Some(role) = Role::parse(f.get("role").unwrap_or_default()) else {
        return Err(op.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "role: owner, admin, reviewer or viewer",
        ));
    };
    let password = users::generate_password();
    let (st, actor, tenant, pw) = (state.clone(), op.actor(), id.clone(), password.clone());
    let made = web::block(move || {
        users::create_user(
            &st.store,
            Realm::Tenant,
            &tenant,
            &email,
            role.as_str(),
            &pw,
            &actor,
        )
    })
    .await
    .map_err(internal)?;
    match made {
        Ok(u) => {
            let what = format!("Temporary password of {}", u.email);
            with_secret(&op, &state, &id, &what, &password).await
        }
        Err(UserError::Store(StoreError::Conflict(why))) => {
            Err(op.refused(StatusCode::CONFLICT, why))
        }
        Err(UserError::Store(StoreError::NotFound(_))) => Err(op.not_found()),
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(UserError::Invalid { field, reason }) => {
            refused_at(&op, &state, &id, (field, reason.as_str()), None).await
        }
        Err(e) => Err(op.refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
    }
}

async fn change_user(
    op: Op,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    op.check_csrf(form._csrf.as_deref())?;
    op.may(OpAction::ManageTenants)?;
    let (id, user, change) = path.into_inner();
    let change = match change.as_str() {
        "disable" => users::Change::Disable,
        "enable" => users::Change::Enable,
        "reset" => users::Change::ResetPassword,
        _ => return Err(op.not_found()),
    };
    // Made in the tenant's realm, looked up in that tenant only, audited as the operator.
    let (st, target, tenant, actor) = (state.clone(), user.clone(), id.clone(), op.actor());
    let done = web::block(move || {
        users::change_user_in(
            &st.store,
            Realm::Tenant,
            &tenant,
            "",
            &actor,
            &target,
            change,
        )
    })
    .await
    .map_err(internal)?;
    match done {
        Ok(Some(password)) => {
            let what = "Temporary password".to_owned();
            with_secret(&op, &state, &id, &what, &password).await
        }
        Ok(None) => Ok(back(&format!("/admin/tenants/{id}"))),
        Err(UserError::Store(StoreError::NotFound(_))) => Err(op.not_found()),
        Err(UserError::Store(e)) => Err(internal(e)),
        Err(e) => Err(op.refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
    }
}

/// Opens one verification of the tenant with its images, for an operator whose role allows it,
/// with the reason they typed: audited (`operator.personal_data`) before anything is shown. The
/// images are inlined in this one response (nothing else can fetch them).
async fn open_verification(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::ViewPersonalData)?;
    let id = id.into_inner();
    let job_id = f.get("job").unwrap_or_default().trim().to_owned();
    let reason = f.get("reason").unwrap_or_default().trim().to_owned();
    if reason.chars().count() < 10 {
        return refused_at(
            &op,
            &state,
            &id,
            ("reason", "say why (at least 10 characters): it is audited"),
            None,
        )
        .await;
    }
    let (st, actor, tenant) = (state.clone(), op.actor(), id.clone());
    let not_found = op.not_found();
    let (view, images) = blocking(move || {
        let job = st
            .store
            .read(|c| crate::store::jobs::get(c, &tenant, &job_id))
            .map_err(internal)?
            .ok_or(not_found)?;
        let now = crate::store::now();
        st.store
            .write(|tx| {
                crate::store::audit::append(
                    tx,
                    &crate::audit::NewEntry::new(&actor, "operator.personal_data")
                        .tenant(&tenant)
                        .target(&job.id)
                        .details(json!({ "reason": reason })),
                    now,
                )
                .map(drop)
            })
            .map_err(internal)?;
        let view = st.jobs.view(&job);
        let mut images = Vec::new();
        for kind in ["selfie", "face_crop", "document_front", "document_back"] {
            let Some(mid) = view["media"][kind].as_str() else {
                continue;
            };
            if let Ok((_, bytes)) = st.media.get(&tenant, mid) {
                images.push((
                    kind,
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                ));
            }
        }
        Ok((view, images))
    })
    .await?;
    let opened = html! {
        section.opened {
            p.summary {
                "Verification " code { (view["job_id"].as_str().unwrap_or("")) }
                " · decision " strong { (view["decision"].as_str().unwrap_or("–")) }
                @if let Some(s) = view["score"].as_i64() { " · score " (s) }
            }
            section.images {
                @for (kind, b64) in &images {
                    figure { img src={ "data:image/jpeg;base64," (b64) } alt=(kind); figcaption { (kind) } }
                }
            }
            @if let Some(reasons) = view["reasons"].as_array() {
                ul.reasons { @for r in reasons { li { (r.as_str().unwrap_or("")) } } }
            }
        }
    };
    render(
        &op,
        &state,
        &id,
        StatusCode::OK,
        Extra {
            opened: Some(opened),
            ..Extra::default()
        },
    )
    .await
}
