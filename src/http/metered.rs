//! The one way a billable route runs its work: scope check, quota reservation, the work, and the
//! usage rows on success (a failed request is not billed).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::AppState;
use crate::store;
use crate::tenancy::meter::Recorded;
use crate::tenancy::plans::Module;

/// Runs `work` billed as one unit of each of `modules` for `principal`, whose key must hold
/// those modules in its scopes. Blocking.
pub fn metered<T>(
    st: &AppState,
    principal: &Principal,
    request_id: &str,
    modules: &[Module],
    work: impl FnOnce() -> Result<T, ApiError>,
) -> Result<(T, Vec<Recorded>), ApiError> {
    principal.require(modules)?;
    billed(st, principal, request_id, modules, work)
}

/// [`metered`] for a route that states a permission instead of a module (the face index: a
/// search is billed as a `face_match` unit, and `faces:search` is what grants it), so the key's
/// module scopes are not consulted. The modules' quotas still apply.
pub fn billed<T>(
    st: &AppState,
    principal: &Principal,
    request_id: &str,
    modules: &[Module],
    work: impl FnOnce() -> Result<T, ApiError>,
) -> Result<(T, Vec<Recorded>), ApiError> {
    let reservation = st.meter.reserve(
        &principal.tenant_id,
        modules,
        principal.sandbox,
        store::now(),
    )?;
    let out = work()?;
    let recorded = st
        .meter
        .record(reservation, request_id, principal.payer(), modules)?;
    Ok((out, recorded))
}

/// Puts the `usage` of a billable call into its response, and `"sandbox": true` when a sandbox
/// key made it (its units count against the sandbox allowance and are never billed).
pub fn annotate(out: &mut serde_json::Value, sandbox: bool, recorded: &[Recorded]) {
    out["usage"] = usage_json(recorded);
    if sandbox {
        out["sandbox"] = serde_json::json!(true);
    }
}

/// The response's `usage` for a single-module call.
pub fn usage_json(recorded: &[Recorded]) -> serde_json::Value {
    match recorded {
        [one] => serde_json::to_value(one).unwrap_or_default(),
        many => serde_json::to_value(many).unwrap_or_default(),
    }
}
