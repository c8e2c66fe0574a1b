//! Usage events: one row per billed module execution.

use rusqlite::{params, Connection, Transaction};

use super::Result;

/// A billed execution.
#[derive(Debug, Clone)]
pub struct UsageEvent<'a> {
    /// The request that caused it (its trace id).
    pub request_id: &'a str,
    /// The tenant billed.
    pub tenant_id: &'a str,
    /// The key that signed the request.
    pub key_id: Option<&'a str>,
    /// `face_match`, `liveness`, `ocr`, `validation`, …
    pub module: &'a str,
    /// Unit price in minor currency units (prices arrive with plans).
    pub unit_price_minor: i64,
    /// Unix seconds.
    pub at: i64,
}

/// Records one billed execution.
pub fn record(tx: &Transaction<'_>, e: &UsageEvent<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO usage_events (request_id, tenant_id, key_id, module, unit_price_minor, billed, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
        params![e.request_id, e.tenant_id, e.key_id, e.module, e.unit_price_minor, e.at],
    )?;
    Ok(())
}

/// How many billed executions of `module` a tenant has.
pub fn count(conn: &Connection, tenant_id: &str, module: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM usage_events WHERE tenant_id = ?1 AND module = ?2 AND billed = 1",
        params![tenant_id, module],
        |r| r.get(0),
    )?)
}
