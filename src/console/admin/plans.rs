//! Plans: quotas, prices, volume tiers and rate limits, edited as a form; a preview lists what
//! would change for which tenants (each tenant's effective terms, its overrides applied) before
//! anything is saved.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::{field_error, micros_of, money, Op};
use crate::console::operators::OpAction;
use crate::console::views::{csrf, page};
use crate::console::{blocking, internal, ok, ConsoleError, Fields};
use crate::http::AppState;
use crate::tenancy::plans::{apply_overrides, Module, Plan, QuotaMode, PLAN_IDS};
use crate::tenancy::{self, subscription, TenancyError};

/// Spare tier rows the form offers.
const SPARE_TIERS: usize = 2;
/// Tier rows read from a form at most.
const MAX_TIER_ROWS: usize = 20;

/// Registers the routes (inside `/admin`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/plans", web::get().to(list))
        .route("/plans/{id}", web::get().to(form))
        .route("/plans/{id}", web::post().to(submit));
}

async fn list(op: Op, state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewPlans)?;
    let (plans, tenants) = blocking(move || {
        Ok((
            subscription::list_plans(&state.store).map_err(internal)?,
            tenancy::list_tenants(&state.store).map_err(internal)?,
        ))
    })
    .await?;
    Ok(ok(page(
        "Plans",
        Some(&op.who),
        html! {
            table.plans {
                thead { tr { th { "plan" } th { "name" } th { "quota mode" } th { "modules (quota · price)" } th.num { "tenants" } } }
                tbody {
                    @for (id, p) in &plans {
                        tr data-plan=(id) {
                            td { a href={ "/admin/plans/" (id) } { (id) } }
                            td { (p.name) }
                            td { (serde_json::to_value(p.quota_mode).unwrap_or_default().as_str().unwrap_or("")) }
                            td {
                                @for (m, t) in &p.modules {
                                    (m.as_str()) " " (t.monthly_quota.map_or_else(|| "∞".to_owned(), |q| q.to_string())) " · " (money(t.unit_price_micros)) " " (p.currency) br;
                                }
                            }
                            td.num { (tenants.iter().filter(|t| t.plan == *id).count()) }
                        }
                    }
                }
            }
        },
    )))
}

async fn stored(state: &web::Data<AppState>, op: &Op, id: &str) -> Result<Plan, ConsoleError> {
    if !PLAN_IDS.contains(&id) {
        return Err(op.not_found());
    }
    let (st, id) = (state.clone(), id.to_owned());
    blocking(move || {
        st.store
            .read(|c| subscription::plan(c, &id))
            .map_err(internal)
    })
    .await
}

async fn form(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    op.may(OpAction::ViewPlans)?;
    let plan = stored(&state, &op, &id).await?;
    let values = Values::of(&plan);
    Ok(ok(plan_page(&op, &id, &values, None, None, false)))
}

/// The form's values, as typed (so a refused value is shown back).
struct Values(BTreeMap<String, String>);

impl Values {
    fn of(p: &Plan) -> Values {
        let mut v = BTreeMap::new();
        v.insert("name".into(), p.name.clone());
        v.insert("currency".into(), p.currency.clone());
        v.insert(
            "quota_mode".into(),
            serde_json::to_value(p.quota_mode)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
        v.insert(
            "sandbox_only".into(),
            if p.sandbox_only { "true" } else { "" }.into(),
        );
        v.insert("sandbox_quota".into(), p.sandbox_quota.to_string());
        for (m, t) in &p.modules {
            v.insert(
                format!("modules.{}.monthly_quota", m.as_str()),
                t.monthly_quota.map(|q| q.to_string()).unwrap_or_default(),
            );
            v.insert(
                format!("modules.{}.price", m.as_str()),
                money(t.unit_price_micros),
            );
        }
        for (i, t) in p.tiers.iter().enumerate() {
            v.insert(format!("tiers[{i}].from_units"), t.from_units.to_string());
            v.insert(
                format!("tiers[{i}].discount_percent"),
                t.discount_percent.to_string(),
            );
        }
        v.insert(
            "rate_limit.per_minute".into(),
            p.rate_limit.per_minute.to_string(),
        );
        v.insert(
            "rate_limit.per_day".into(),
            p.rate_limit.per_day.to_string(),
        );
        Values(v)
    }

    fn from_form(f: &Fields) -> Values {
        let mut v = BTreeMap::new();
        let mut names: Vec<String> = [
            "name",
            "currency",
            "quota_mode",
            "sandbox_only",
            "sandbox_quota",
            "rate_limit.per_minute",
            "rate_limit.per_day",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for m in Module::ALL {
            names.push(format!("modules.{}.monthly_quota", m.as_str()));
            names.push(format!("modules.{}.price", m.as_str()));
        }
        for i in 0..MAX_TIER_ROWS {
            names.push(format!("tiers[{i}].from_units"));
            names.push(format!("tiers[{i}].discount_percent"));
        }
        for n in names {
            if let Some(x) = f.get(&n) {
                v.insert(n, x.trim().to_owned());
            }
        }
        Values(v)
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    fn tiers(&self) -> usize {
        (0..MAX_TIER_ROWS)
            .take_while(|i| self.0.contains_key(&format!("tiers[{i}].from_units")))
            .count()
    }

    /// The plan these values describe (rate limits per endpoint kept from `base`), or the
    /// field that is wrong.
    fn to_plan(&self, base: &Plan) -> Result<Plan, (String, String)> {
        let int = |name: &str| -> Result<Value, (String, String)> {
            let s = self.get(name);
            s.parse::<i64>()
                .map(Value::from)
                .map_err(|_| (name.to_owned(), "a whole number".into()))
        };
        let mut modules = Map::new();
        for m in Module::ALL {
            let q = format!("modules.{}.monthly_quota", m.as_str());
            let p = format!("modules.{}.price", m.as_str());
            let quota = if self.get(&q).is_empty() {
                Value::Null
            } else {
                int(&q)?
            };
            let price =
                micros_of(self.get(&p)).ok_or((p.clone(), "a price such as 0.08".into()))?;
            modules.insert(
                m.as_str().into(),
                json!({ "monthly_quota": quota, "unit_price_micros": price }),
            );
        }
        let mut tiers = Vec::new();
        for i in 0..self.tiers() {
            let from = format!("tiers[{i}].from_units");
            let pct = format!("tiers[{i}].discount_percent");
            if self.get(&from).is_empty() && self.get(&pct).is_empty() {
                continue;
            }
            tiers.push(json!({ "from_units": int(&from)?, "discount_percent": int(&pct)? }));
        }
        let doc = json!({
            "name": self.get("name"),
            "currency": self.get("currency"),
            "sandbox_only": !self.get("sandbox_only").is_empty(),
            "quota_mode": self.get("quota_mode"),
            "modules": modules,
            "tiers": tiers,
            "rate_limit": {
                "per_minute": int("rate_limit.per_minute")?,
                "per_day": int("rate_limit.per_day")?,
                "endpoints": base.rate_limit.endpoints,
            },
            "sandbox_quota": int("sandbox_quota")?,
        });
        let plan: Plan = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            (path, e.inner().to_string())
        })?;
        plan.validate()?;
        Ok(plan)
    }
}

/// Every leaf of a JSON value by path.
fn leaves(v: &Value, at: &str, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{at}[{i}]"), out);
            }
            if a.is_empty() {
                out.insert(at.to_owned(), "[]".into());
            }
        }
        _ => {
            out.insert(at.to_owned(), v.to_string());
        }
    }
}

/// What differs between two plans, as `path: old → new`.
fn differences(old: &Plan, new: &Plan) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(&serde_json::to_value(old).unwrap_or_default(), "", &mut a);
    leaves(&serde_json::to_value(new).unwrap_or_default(), "", &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                a.get(k).map_or("–", String::as_str),
                b.get(k).map_or("–", String::as_str)
            )
        })
        .collect()
}

/// A preview: what changes in the plan, and for each tenant on it, what changes in the terms
/// that apply to it (its overrides may hide a change).
struct Preview {
    plan: Vec<String>,
    tenants: Vec<(String, String, Vec<String>)>,
}

async fn submit(
    op: Op,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let f = Fields::parse(&body)?;
    op.check_csrf(f.get("_csrf"))?;
    op.may(OpAction::EditPlans)?;
    let id = id.into_inner();
    let old = stored(&state, &op, &id).await?;
    let values = Values::from_form(&f);
    let new = match values.to_plan(&old) {
        Ok(p) => p,
        Err((field, why)) => {
            return Ok(crate::console::html(
                StatusCode::UNPROCESSABLE_ENTITY,
                plan_page(
                    &op,
                    &id,
                    &values,
                    Some((field.as_str(), why.as_str())),
                    None,
                    false,
                ),
            ))
        }
    };
    if f.get("intent") == Some("preview") {
        let (st, plan_id, old2, new2) = (state.clone(), id.clone(), old.clone(), new.clone());
        let tenants = blocking(move || {
            let mut out = Vec::new();
            for t in tenancy::list_tenants(&st.store).map_err(internal)? {
                if t.plan != plan_id {
                    continue;
                }
                let sub = subscription::subscription(&st.store, &t.id).map_err(internal)?;
                let before =
                    apply_overrides(&old2, sub.overrides.as_ref()).unwrap_or_else(|_| old2.clone());
                let after =
                    apply_overrides(&new2, sub.overrides.as_ref()).unwrap_or_else(|_| new2.clone());
                out.push((t.id, t.name, differences(&before, &after)));
            }
            Ok(out)
        })
        .await?;
        let preview = Preview {
            plan: differences(&old, &new),
            tenants,
        };
        return Ok(ok(plan_page(
            &op,
            &id,
            &values,
            None,
            Some(&preview),
            false,
        )));
    }
    let (st, actor, plan_id) = (state.clone(), op.actor(), id.clone());
    let saved = web::block(move || subscription::set_plan(&st.store, &plan_id, &new, &actor))
        .await
        .map_err(internal)?;
    match saved {
        Ok(p) => Ok(ok(plan_page(&op, &id, &Values::of(&p), None, None, true))),
        Err(TenancyError::InvalidField { field, reason }) => Ok(crate::console::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            plan_page(
                &op,
                &id,
                &values,
                Some((field.as_str(), reason.as_str())),
                None,
                false,
            ),
        )),
        Err(e) => Err(internal(e)),
    }
}

fn plan_page(
    op: &Op,
    id: &str,
    v: &Values,
    refused: Option<(&str, &str)>,
    preview: Option<&Preview>,
    saved: bool,
) -> Markup {
    let edit = op.role.allows(OpAction::EditPlans);
    let input = |name: &str, label: &str, kind: &str| -> Markup {
        html! {
            label {
                (label)
                input type=(kind) name=(name) value=(v.get(name)) disabled[!edit]
                    aria-invalid=[refused.is_some_and(|(f, _)| f == name).then_some("true")];
                (field_error(refused, name))
            }
        }
    };
    let tier_rows = v.tiers() + SPARE_TIERS;
    page(
        &format!("Plan {id}"),
        Some(&op.who),
        html! {
            @if saved { p.saved role="status" { "Saved. Usage from now on is priced and limited so." } }
            @if let Some((field, why)) = refused.filter(|(f, _)| !f.starts_with("modules") && !f.starts_with("tiers") && !f.starts_with("rate_limit") && !["name", "currency", "quota_mode", "sandbox_quota"].contains(f)) {
                p.error role="alert" data-field=(field) { (field) ": " (why) }
            }
            @if let Some(p) = preview {
                section.preview id="preview" {
                    h2 { "Preview (nothing saved yet)" }
                    @if p.plan.is_empty() { p { "No change." } }
                    ul { @for d in &p.plan { li { (d) } } }
                    h2 { "Tenants on this plan" }
                    @if p.tenants.is_empty() { p.empty { "None." } }
                    table {
                        thead { tr { th { "tenant" } th { "what changes for it" } } }
                        tbody {
                            @for (tid, name, changes) in &p.tenants {
                                tr data-tenant=(tid) {
                                    td { (name) " " code { (tid) } }
                                    td { @if changes.is_empty() { "nothing (its overrides set these terms)" } @else { (changes.join("; ")) } }
                                }
                            }
                        }
                    }
                }
            }
            form.workflow method="post" action={ "/admin/plans/" (id) } {
                (csrf(&op.who))
                fieldset.grid {
                    legend { "Plan" }
                    (input("name", "Name", "text"))
                    (input("currency", "Currency (ISO 4217)", "text"))
                    label { "Quota mode"
                        select name="quota_mode" disabled[!edit] {
                            @for m in [QuotaMode::Hard, QuotaMode::Soft] {
                                @let n = serde_json::to_value(m).unwrap_or_default().as_str().unwrap_or("").to_owned();
                                option value=(n) selected[v.get("quota_mode") == n] { (n) }
                            }
                        }
                        (field_error(refused, "quota_mode"))
                    }
                    label.inline { input type="checkbox" name="sandbox_only" value="true" checked[!v.get("sandbox_only").is_empty()] disabled[!edit]; " sandbox keys only" }
                    (input("sandbox_quota", "Sandbox units a month per module", "number"))
                }
                table.overrides {
                    thead { tr { th { "module" } th { "monthly quota (empty = unlimited)" } th { "unit price" } } }
                    tbody {
                        @for m in Module::ALL {
                            @let q = format!("modules.{}.monthly_quota", m.as_str());
                            @let p = format!("modules.{}.price", m.as_str());
                            tr data-module=(m.as_str()) {
                                td { (m.as_str()) }
                                td { input type="number" name=(q) value=(v.get(&q)) min="0" disabled[!edit]; (field_error(refused, &q)) }
                                td { input type="text" name=(p) value=(v.get(&p)) inputmode="decimal" disabled[!edit]; (field_error(refused, &p)) }
                            }
                        }
                    }
                }
                fieldset {
                    legend { "Volume tiers (from the n-th unit of a module in a month, percent off)" }
                    table.rules {
                        tbody {
                            @for i in 0..tier_rows {
                                @let from = format!("tiers[{i}].from_units");
                                @let pct = format!("tiers[{i}].discount_percent");
                                tr {
                                    td { input type="number" name=(from) value=(v.get(&from)) placeholder="from unit" disabled[!edit]; (field_error(refused, &from)) }
                                    td { input type="number" name=(pct) value=(v.get(&pct)) placeholder="% off" disabled[!edit]; (field_error(refused, &pct)) }
                                }
                            }
                        }
                    }
                    @if refused.is_some_and(|(f, _)| f == "tiers") { (field_error(refused, "tiers")) }
                }
                fieldset.grid {
                    legend { "Rate limit per key" }
                    (input("rate_limit.per_minute", "Requests a minute", "number"))
                    (input("rate_limit.per_day", "Requests a day", "number"))
                }
                @if edit {
                    button id="preview-plan" name="intent" value="preview" type="submit" { "Preview" }
                    button id="save-plan" name="intent" value="save" type="submit" { "Save" }
                }
            }
        },
    )
}
