//! Plan definitions and tenants' plan choices and overrides (JSON text; parsed by `tenancy`).

use super::{params, Conn, Optional, Result, StoreError, Tx};

/// A stored plan definition, if the operator ever changed it from the built-in one.
pub fn spec(conn: &Conn<'_>, id: &str) -> Result<Option<String>> {
    conn.query_row("SELECT spec FROM plans WHERE id = ?1", params![id], |r| {
        r.get(0)
    })
    .optional()
}

/// Stores a plan definition.
pub fn put_spec(tx: &Tx<'_>, id: &str, spec: &str, at: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO plans (id, spec, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
        params![id, spec, at],
    )?;
    Ok(())
}

/// A tenant's plan id and overrides (a JSON merge patch), `NotFound` if there is no tenant.
pub fn tenant_plan(conn: &Conn<'_>, tenant_id: &str) -> Result<(String, Option<String>)> {
    conn.query_row(
        "SELECT plan, plan_overrides FROM tenants WHERE id = ?1",
        params![tenant_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or(StoreError::NotFound("tenant"))
}

/// Sets a tenant's plan and overrides.
pub fn set_tenant_plan(
    tx: &Tx<'_>,
    tenant_id: &str,
    plan: &str,
    overrides: Option<&str>,
    at: i64,
) -> Result<()> {
    let n = tx.execute(
        "UPDATE tenants SET plan = ?2, plan_overrides = ?3, updated_at = ?4 WHERE id = ?1",
        params![tenant_id, plan, overrides, at],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}
