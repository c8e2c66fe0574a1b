//! API key rows. The secret column holds only AES-256-GCM ciphertext (see [`super::crypto`]).

use serde::Serialize;

use super::{params, Conn, Optional, Result, Row, StoreError, Tx};

/// The data-key family that seals API key secrets.
pub const SECRET_FAMILY: &str = "api_key_secret";

/// Associated data binding a sealed secret to its key id.
pub fn secret_aad(key_id: &str) -> Vec<u8> {
    format!("api_keys.secret_enc:{key_id}").into_bytes()
}

/// A key as listed: never the secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyRow {
    /// Public key id (`X-API-KEY`).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Free-form label.
    pub label: Option<String>,
    /// `active` or `revoked`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Modules the key may call; `None` = all.
    pub scopes: Option<Vec<String>>,
    /// What the key may read or manage (`results:read`, `workflow:write`, …).
    pub permissions: Vec<String>,
    /// `sandbox` (recorded, not billed) or `live`.
    pub environment: String,
    /// Unix seconds of the last rotation.
    pub rotated_at: Option<i64>,
    /// Until when (Unix seconds) the secret before the last rotation still verifies.
    pub previous_secret_valid_until: Option<i64>,
    /// Unix seconds of the last authenticated request (updated at most once a minute).
    pub last_used_at: Option<i64>,
}

/// What request verification needs about a key, in one read.
#[derive(Debug, Clone)]
pub struct KeyAuthRow {
    /// Owning tenant.
    pub tenant_id: String,
    /// The sealed secret.
    pub secret_enc: Vec<u8>,
    /// Whether the key was revoked.
    pub revoked: bool,
    /// Whether the owning tenant is suspended.
    pub tenant_suspended: bool,
    /// The secret before the last rotation and until when it verifies.
    pub previous: Option<(Vec<u8>, i64)>,
    /// A sandbox key.
    pub sandbox: bool,
    /// Modules the key may call (JSON array); `None` = all.
    pub scopes: Option<String>,
    /// Permissions (JSON array).
    pub permissions: String,
}

const COLUMNS: &str = "id, tenant_id, label, status, created_at, revoked_at, scopes, environment, \
                       rotated_at, prev_valid_until, last_used_at, permissions";

fn from_row(r: &Row<'_>) -> Result<KeyRow> {
    let scopes: Option<String> = r.get(6)?;
    Ok(KeyRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        label: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
        scopes: scopes.and_then(|s| serde_json::from_str(&s).ok()),
        environment: r.get(7)?,
        rotated_at: r.get(8)?,
        previous_secret_valid_until: r.get(9)?,
        last_used_at: r.get(10)?,
        permissions: serde_json::from_str(&r.get::<String>(11)?).unwrap_or_default(),
    })
}

/// Inserts a key with its sealed secret.
pub fn insert(tx: &Tx<'_>, key: &KeyRow, secret_enc: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO api_keys (id, tenant_id, secret_enc, label, status, created_at, scopes, environment, \
         permissions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            key.id,
            key.tenant_id,
            secret_enc,
            key.label,
            key.status,
            key.created_at,
            key.scopes.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()),
            key.environment,
            serde_json::to_string(&key.permissions).unwrap_or_else(|_| "[]".into())
        ],
    )?;
    Ok(())
}

/// The keys of one tenant, or of all tenants.
pub fn list(conn: &Conn<'_>, tenant_id: Option<&str>) -> Result<Vec<KeyRow>> {
    let rows = conn.query_map(
        &format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = ?1 OR ?1 IS NULL ORDER BY created_at, id"
    ),
        params![tenant_id],
        from_row,
    )?;
    Ok(rows)
}

/// One key by id.
pub fn get(conn: &Conn<'_>, id: &str) -> Result<Option<KeyRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
        params![id],
        from_row,
    )
    .optional()
}

/// The key and tenant state a signed request is checked against.
pub fn auth_row(conn: &Conn<'_>, id: &str) -> Result<Option<KeyAuthRow>> {
    conn.query_row("SELECT k.tenant_id, k.secret_enc, k.status, t.status, k.prev_secret_enc, k.prev_valid_until, \
         k.environment, k.scopes, k.permissions FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?1", params![id], |r| {
        let prev: Option<Vec<u8>> = r.get(4)?;
        let until: Option<i64> = r.get(5)?;
        Ok(KeyAuthRow {
            tenant_id: r.get(0)?,
            secret_enc: r.get(1)?,
            revoked: r.get::<String>(2)? == "revoked",
            tenant_suspended: r.get::<String>(3)? == "suspended",
            previous: prev.zip(until),
            sandbox: r.get::<String>(6)? == "sandbox",
            scopes: r.get(7)?,
            permissions: r.get(8)?,
        })
    })
    .optional()
}

/// Marks a key revoked; `NotFound` if absent, `Conflict` if already revoked.
pub fn revoke(tx: &Tx<'_>, id: &str, at: i64) -> Result<KeyRow> {
    let n = tx.execute(
        "UPDATE api_keys SET status = 'revoked', revoked_at = ?2 WHERE id = ?1 AND status = 'active'",
        params![id, at],
    )?;
    let row = get(tx, id)?.ok_or(StoreError::NotFound("key"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("key {id} is already revoked")));
    }
    Ok(row)
}

/// Attaches a Facia-compatible credential (its SHA-256) to a key.
pub fn set_facia_hash(tx: &Tx<'_>, id: &str, hash: &[u8; 32]) -> Result<()> {
    let n = tx.execute(
        "UPDATE api_keys SET facia_hash = ?2 WHERE id = ?1",
        params![id, &hash[..]],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("key"));
    }
    Ok(())
}

/// The key and tenant a Facia `hash_id` (by its SHA-256) belongs to, if the key is active and
/// the tenant not suspended.
pub fn by_facia_hash(conn: &Conn<'_>, hash: &[u8; 32]) -> Result<Option<(String, String)>> {
    conn.query_row(
        "SELECT k.id, k.tenant_id FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
         WHERE k.facia_hash = ?1 AND k.status = 'active' AND t.status = 'active'",
        params![&hash[..]],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Replaces a key's secret; the old one verifies until `prev_valid_until` (none when `None`).
pub fn rotate(
    tx: &Tx<'_>,
    id: &str,
    new_secret_enc: &[u8],
    prev_valid_until: Option<i64>,
    at: i64,
) -> Result<KeyRow> {
    let n = tx.execute(
        "UPDATE api_keys SET prev_secret_enc = CASE WHEN CAST(?3 AS BIGINT) IS NULL THEN NULL ELSE secret_enc END, \
         prev_valid_until = ?3, secret_enc = ?2, rotated_at = ?4 WHERE id = ?1 AND status = 'active'",
        params![id, new_secret_enc, prev_valid_until, at],
    )?;
    let row = get(tx, id)?.ok_or(StoreError::NotFound("key"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("key {id} is revoked")));
    }
    Ok(row)
}

/// Replaces what an active key may do: its module scopes (`None` = all) and permissions (JSON).
pub fn set_grants(
    tx: &Tx<'_>,
    id: &str,
    scopes: Option<&str>,
    permissions: &str,
) -> Result<KeyRow> {
    let n = tx.execute(
        "UPDATE api_keys SET scopes = ?2, permissions = ?3 WHERE id = ?1 AND status = 'active'",
        params![id, scopes, permissions],
    )?;
    let row = get(tx, id)?.ok_or(StoreError::NotFound("key"))?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("key {id} is revoked")));
    }
    Ok(row)
}

/// Records that a key was used at `at`.
pub fn touch(tx: &Tx<'_>, id: &str, at: i64) -> Result<()> {
    tx.execute(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        params![id, at],
    )?;
    Ok(())
}

/// Sets the environment of every key of a tenant (its plan moved into or out of sandbox-only);
/// returns how many keys changed.
pub fn set_environment_for_tenant(tx: &Tx<'_>, tenant_id: &str, env: &str) -> Result<usize> {
    tx.execute(
        "UPDATE api_keys SET environment = ?2 WHERE tenant_id = ?1 AND environment <> ?2",
        params![tenant_id, env],
    )
}
