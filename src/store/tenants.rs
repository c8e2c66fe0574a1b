//! Tenant rows: create, list, look up, change status.

use serde::Serialize;

use super::{params, Conn, Optional, Result, Row, StoreError, Tx};

/// A tenant as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TenantRow {
    /// `ten_…` identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `free`, `pro` or `enterprise`.
    pub plan: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
}

fn from_row(r: &Row<'_>) -> Result<TenantRow> {
    Ok(TenantRow {
        id: r.get(0)?,
        name: r.get(1)?,
        plan: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
    })
}

const COLUMNS: &str = "id, name, plan, status, created_at";

/// Inserts a new tenant.
pub fn insert(tx: &Tx<'_>, t: &TenantRow) -> Result<()> {
    tx.execute(
        "INSERT INTO tenants (id, name, plan, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![t.id, t.name, t.plan, t.status, t.created_at],
    )?;
    Ok(())
}

/// One tenant by id.
pub fn get(conn: &Conn<'_>, id: &str) -> Result<Option<TenantRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM tenants WHERE id = ?1"),
        params![id],
        from_row,
    )
    .optional()
}

/// Every tenant, oldest first.
pub fn list(conn: &Conn<'_>) -> Result<Vec<TenantRow>> {
    let rows = conn.query_map(
        &format!("SELECT {COLUMNS} FROM tenants ORDER BY created_at, id"),
        params![],
        from_row,
    )?;
    Ok(rows)
}

/// Sets a tenant's status; `NotFound` if there is no such tenant.
pub fn set_status(tx: &Tx<'_>, id: &str, status: &str, at: i64) -> Result<()> {
    let n = tx.execute(
        "UPDATE tenants SET status = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, status, at],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}

/// A tenant's face-match threshold (calibrated similarity).
pub fn face_match_threshold(conn: &Conn<'_>, id: &str) -> Result<f32> {
    conn.query_row(
        "SELECT face_match_threshold FROM tenants WHERE id = ?1",
        params![id],
        |r| r.get::<f64>(0),
    )
    .optional()?
    .map(|t| t as f32)
    .ok_or(StoreError::NotFound("tenant"))
}

/// Sets a tenant's face-match threshold.
pub fn set_face_match_threshold(tx: &Tx<'_>, id: &str, threshold: f32) -> Result<()> {
    let n = tx.execute(
        "UPDATE tenants SET face_match_threshold = ?2 WHERE id = ?1",
        params![id, f64::from(threshold)],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}

/// A tenant's liveness thresholds as stored JSON; `None` when the defaults apply.
pub fn liveness_thresholds(conn: &Conn<'_>, id: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT liveness_thresholds FROM tenants WHERE id = ?1",
        params![id],
        |r| r.get::<Option<String>>(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound("tenant"))
}

/// Sets a tenant's liveness thresholds (JSON).
pub fn set_liveness_thresholds(tx: &Tx<'_>, id: &str, json: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE tenants SET liveness_thresholds = ?2 WHERE id = ?1",
        params![id, json],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}

/// A tenant's workflow floors as stored JSON and its face-match threshold (the face-match
/// floor); `None` JSON when the defaults apply.
pub fn workflow_floors(conn: &Conn<'_>, id: &str) -> Result<(Option<String>, f32)> {
    conn.query_row(
        "SELECT workflow_floors, face_match_threshold FROM tenants WHERE id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get::<f64>(1)? as f32)),
    )
    .optional()?
    .ok_or(StoreError::NotFound("tenant"))
}

/// Sets a tenant's workflow floors (JSON, already validated) and face-match threshold.
pub fn set_workflow_floors(tx: &Tx<'_>, id: &str, json: &str, face: f32) -> Result<()> {
    let n = tx.execute(
        "UPDATE tenants SET workflow_floors = ?2, face_match_threshold = ?3 WHERE id = ?1",
        params![id, json, f64::from(face)],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}
