//! Which plan a tenant is on, with what overrides, and the operator's edits to plans. Every
//! change is validated as a whole effective plan and audited in its transaction.

use crate::store::Conn;
use serde::Serialize;
use serde_json::{json, Value};

use super::plans::{apply_overrides, Plan, PLAN_IDS};
use super::TenancyError;
use crate::audit::NewEntry;
use crate::store::{self, Store, StoreError};

/// A plan's definition: the operator's edit if any, else the built-in one.
pub fn plan(conn: &Conn<'_>, id: &str) -> Result<Plan, StoreError> {
    let builtin = Plan::builtin(id).ok_or(StoreError::NotFound("plan"))?;
    Ok(match store::plans::spec(conn, id)? {
        // Written only after validation: unreadable means tampering, so fall back and say so.
        Some(spec) => serde_json::from_str(&spec)
            .map_err(|e| tracing::warn!(plan = id, "stored plan unreadable: {e}"))
            .unwrap_or(builtin),
        None => builtin,
    })
}

/// A tenant's plan as it applies: its plan with its overrides merged in.
pub fn effective_plan(conn: &Conn<'_>, tenant_id: &str) -> Result<Plan, StoreError> {
    let (id, overrides) = store::plans::tenant_plan(conn, tenant_id)?;
    let base = plan(conn, &id)?;
    let overrides = overrides.and_then(|o| serde_json::from_str::<Value>(&o).ok());
    Ok(
        apply_overrides(&base, overrides.as_ref()).unwrap_or_else(|(f, r)| {
            // The plan changed under overrides that no longer fit it: the plan alone applies.
            tracing::warn!(
                tenant = tenant_id,
                "plan overrides no longer apply ({f}: {r})"
            );
            base
        }),
    )
}

/// A tenant's subscription as the operator sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    /// The tenant.
    pub tenant_id: String,
    /// `free`, `pro` or `enterprise`.
    pub plan: String,
    /// The tenant's overrides (a JSON merge patch over the plan), if any.
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Value>,
    /// What applies.
    pub effective: Plan,
}

/// A tenant's subscription.
pub fn subscription(store: &Store, tenant_id: &str) -> Result<Subscription, TenancyError> {
    Ok(store.read(|c| {
        let (plan, overrides) = store::plans::tenant_plan(c, tenant_id)?;
        Ok(Subscription {
            tenant_id: tenant_id.to_owned(),
            plan,
            overrides: overrides.and_then(|o| serde_json::from_str(&o).ok()),
            effective: effective_plan(c, tenant_id)?,
        })
    })?)
}

fn invalid((field, reason): (String, String)) -> TenancyError {
    TenancyError::InvalidField { field, reason }
}

/// Moves a tenant to `plan` (when given) and replaces its overrides (when given; `null` clears
/// them). Audited.
pub fn set_subscription(
    store: &Store,
    tenant_id: &str,
    plan_id: Option<&str>,
    overrides: Option<&Value>,
    actor: &str,
) -> Result<Subscription, TenancyError> {
    if let Some(p) = plan_id {
        if !PLAN_IDS.contains(&p) {
            return Err(invalid((
                "plan".into(),
                format!("must be one of {}", PLAN_IDS.join(", ")),
            )));
        }
    }
    if overrides.is_some_and(|o| !o.is_object() && !o.is_null()) {
        return Err(invalid((
            "overrides".into(),
            "a JSON object or null".into(),
        )));
    }
    let now = store::now();
    store.write(|tx| {
        let (current_plan, current_overrides) = store::plans::tenant_plan(tx, tenant_id)?;
        let plan_id = plan_id.unwrap_or(&current_plan);
        let overrides = match overrides {
            Some(Value::Null) => None,
            Some(o) => Some(o.clone()),
            None => current_overrides.and_then(|o| serde_json::from_str(&o).ok()),
        };
        let was_sandbox = effective_plan(tx, tenant_id)?.sandbox_only;
        let base = plan(tx, plan_id)?;
        let next = match apply_overrides(&base, overrides.as_ref()) {
            Ok(p) => p,
            Err(e) => return Ok(Err(invalid(e))),
        };
        let text = overrides.as_ref().map(Value::to_string);
        store::plans::set_tenant_plan(tx, tenant_id, plan_id, text.as_deref(), now)?;
        // Into a sandbox-only plan every key becomes a sandbox key; out of one (an upgrade from
        // Free), every key goes live, or the tenant would never be billed.
        let keys_changed = match (was_sandbox, next.sandbox_only) {
            (false, true) => store::keys::set_environment_for_tenant(tx, tenant_id, "sandbox")?,
            (true, false) => store::keys::set_environment_for_tenant(tx, tenant_id, "live")?,
            _ => 0,
        };
        store::audit::append(
            tx,
            &NewEntry::new(actor, "tenant.plan")
                .tenant(tenant_id)
                .target(tenant_id)
                .details(json!({
                    "plan": plan_id,
                    "overrides": overrides,
                    "keys_environment_changed": keys_changed,
                })),
            now,
        )?;
        Ok(Ok(()))
    })??;
    subscription(store, tenant_id)
}

/// Every plan as it is defined now.
pub fn list_plans(store: &Store) -> Result<Vec<(String, Plan)>, TenancyError> {
    Ok(store.read(|c| {
        PLAN_IDS
            .iter()
            .map(|id| Ok((id.to_string(), plan(c, id)?)))
            .collect()
    })?)
}

/// Replaces plan `id`'s definition (validated; audited with the whole new definition).
pub fn set_plan(store: &Store, id: &str, spec: &Plan, actor: &str) -> Result<Plan, TenancyError> {
    if !PLAN_IDS.contains(&id) {
        return Err(StoreError::NotFound("plan").into());
    }
    spec.validate().map_err(invalid)?;
    let text = serde_json::to_string(spec).map_err(|e| invalid(("plan".into(), e.to_string())))?;
    let now = store::now();
    store.write(|tx| {
        store::plans::put_spec(tx, id, &text, now)?;
        store::audit::append(
            tx,
            &NewEntry::new(actor, "plan.update")
                .target(id)
                .details(serde_json::to_value(spec).unwrap_or_default()),
            now,
        )
    })?;
    Ok(spec.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;
    use crate::tenancy::plans::{Module, QuotaMode};

    #[test]
    fn plans_overrides_and_audit() {
        let (_dir, store) = test_store();
        let t = super::super::create_tenant(&store, "Acme", "pro", "t").unwrap();
        let s = subscription(&store, &t.id).unwrap();
        assert_eq!(s.effective, Plan::builtin("pro").unwrap());

        let o = json!({"modules": {"ocr": {"monthly_quota": 150}}});
        let s = set_subscription(&store, &t.id, None, Some(&o), "t").unwrap();
        assert_eq!(s.effective.modules[&Module::Ocr].monthly_quota, Some(150));
        // A plan change keeps the overrides.
        let s = set_subscription(&store, &t.id, Some("enterprise"), None, "t").unwrap();
        assert_eq!(s.effective.quota_mode, QuotaMode::Soft);
        assert_eq!(s.effective.modules[&Module::Ocr].monthly_quota, Some(150));
        let bad = json!({"modules": {"ocr": {"unit_price_micros": -1}}});
        let e = set_subscription(&store, &t.id, None, Some(&bad), "t").unwrap_err();
        assert!(
            matches!(e, TenancyError::InvalidField { ref field, .. } if field == "overrides.modules.ocr.unit_price_micros"),
            "{e}"
        );
        let s = set_subscription(&store, &t.id, None, Some(&Value::Null), "t").unwrap();
        assert_eq!(s.overrides, None);

        let mut free = Plan::builtin("free").unwrap();
        free.modules
            .get_mut(&Module::Liveness)
            .unwrap()
            .monthly_quota = Some(5);
        set_plan(&store, "free", &free, "t").unwrap();
        let listed = list_plans(&store).unwrap();
        assert_eq!(listed[0].1, free);
        assert!(set_plan(&store, "gold", &free, "t").is_err());

        let audit = store.read(|c| store::audit::list(c, None, 20)).unwrap();
        let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "tenant.create",
                "tenant.plan",
                "tenant.plan",
                "tenant.plan",
                "plan.update"
            ]
        );
    }
}
