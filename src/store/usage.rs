//! Usage events (one row per metered module execution), the monthly counters quotas are judged
//! on, and the quota thresholds already announced.

use serde::Serialize;

use super::{params, Conn, Optional, Result, Tx};

/// A metered execution.
#[derive(Debug, Clone)]
pub struct UsageEvent<'a> {
    /// The request that caused it (its trace id, or the job id).
    pub request_id: &'a str,
    /// The tenant.
    pub tenant_id: &'a str,
    /// The key that signed the request.
    pub key_id: Option<&'a str>,
    /// `face_match`, `liveness`, `ocr`, `validation`.
    pub module: &'a str,
    /// The calendar month (UTC, `YYYY-MM`) whose quota the unit counts against.
    pub period: &'a str,
    /// The price charged, micro-units (0 when not billed).
    pub unit_price_micros: i64,
    /// The plan's list price, micro-units.
    pub list_price_micros: i64,
    /// The volume discount applied, percent.
    pub discount_percent: i64,
    /// Whether it is billed (sandbox keys' units are not).
    pub billed: bool,
    /// Beyond the quota on a soft-quota plan.
    pub overage: bool,
    /// Unix seconds.
    pub at: i64,
}

/// Records one execution.
pub fn record(tx: &Tx<'_>, e: &UsageEvent<'_>) -> Result<()> {
    tx.execute("INSERT INTO usage_events (request_id, tenant_id, key_id, module, period, unit_price_micros, \
         list_price_micros, discount_percent, billed, overage, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", params![
        e.request_id,
        e.tenant_id,
        e.key_id,
        e.module,
        e.period,
        e.unit_price_micros,
        e.list_price_micros,
        e.discount_percent,
        e.billed,
        e.overage,
        e.at
    ])?;
    Ok(())
}

/// Adds one unit (billed or not) to a tenant's monthly counters and returns the new counts:
/// (units, billed units).
pub fn increment(
    tx: &Tx<'_>,
    tenant_id: &str,
    module: &str,
    period: &str,
    billed: bool,
) -> Result<(i64, i64)> {
    tx
        .query_row("INSERT INTO usage_counters (tenant_id, module, period, used, billed) VALUES (?1, ?2, ?3, 1, ?4) \
             ON CONFLICT (tenant_id, module, period) DO UPDATE SET used = usage_counters.used + 1, billed = usage_counters.billed + ?4 \
             RETURNING used, billed", params![tenant_id, module, period, i64::from(billed)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
}

/// Units a tenant used of `module` in `period`.
pub fn used(conn: &Conn<'_>, tenant_id: &str, module: &str, period: &str) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT used FROM usage_counters WHERE tenant_id = ?1 AND module = ?2 AND period = ?3",
            params![tenant_id, module, period],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Records that a threshold was crossed; `false` when it already was this period.
pub fn mark_threshold(
    tx: &Tx<'_>,
    tenant_id: &str,
    module: &str,
    period: &str,
    (threshold, used, quota): (i64, i64, i64),
    at: i64,
) -> Result<bool> {
    let n = tx.execute(
        "INSERT INTO quota_alerts (tenant_id, module, period, threshold, used, quota, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        params![tenant_id, module, period, threshold, used, quota, at],
    )?;
    Ok(n == 1)
}

/// A threshold crossing, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Alert {
    /// The module.
    pub module: String,
    /// 80 or 100 (percent).
    pub threshold: i64,
    /// Units used when it was crossed.
    pub used: i64,
    /// The quota then.
    pub quota: i64,
    /// Unix seconds.
    pub at: i64,
}

/// The thresholds a tenant crossed in `period`.
pub fn alerts(conn: &Conn<'_>, tenant_id: &str, period: &str) -> Result<Vec<Alert>> {
    let rows = conn.query_map(
        "SELECT module, threshold, used, quota, at FROM quota_alerts \
         WHERE tenant_id = ?1 AND period = ?2 ORDER BY at, module, threshold",
        params![tenant_id, period],
        |r| {
            Ok(Alert {
                module: r.get(0)?,
                threshold: r.get(1)?,
                used: r.get(2)?,
                quota: r.get(3)?,
                at: r.get(4)?,
            })
        },
    )?;
    Ok(rows)
}

/// Billed units of one module at one price, the raw material of an invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceGroup {
    /// The module.
    pub module: String,
    /// List price, micro-units.
    pub list_price_micros: i64,
    /// Discount, percent.
    pub discount_percent: i64,
    /// Price charged per unit, micro-units.
    pub unit_price_micros: i64,
    /// Units.
    pub count: i64,
    /// Sum of the units' prices, micro-units.
    pub amount_micros: i64,
    /// Units of them beyond the quota.
    pub overage: i64,
}

/// A tenant's billed units in `period`, grouped by module and price.
pub fn billed_groups(conn: &Conn<'_>, tenant_id: &str, period: &str) -> Result<Vec<PriceGroup>> {
    let rows = conn.query_map(
        "SELECT module, list_price_micros, discount_percent, unit_price_micros, COUNT(*), \
         CAST(SUM(unit_price_micros) AS BIGINT), CAST(SUM(overage) AS BIGINT) FROM usage_events \
         WHERE tenant_id = ?1 AND period = ?2 AND billed = 1 \
         GROUP BY module, list_price_micros, discount_percent, unit_price_micros \
         ORDER BY module, discount_percent, list_price_micros",
        params![tenant_id, period],
        |r| {
            Ok(PriceGroup {
                module: r.get(0)?,
                list_price_micros: r.get(1)?,
                discount_percent: r.get(2)?,
                unit_price_micros: r.get(3)?,
                count: r.get(4)?,
                amount_micros: r.get(5)?,
                overage: r.get(6)?,
            })
        },
    )?;
    Ok(rows)
}

/// Units recorded but not billed (sandbox keys) in `period`, by module.
pub fn unbilled_counts(
    conn: &Conn<'_>,
    tenant_id: &str,
    period: &str,
) -> Result<Vec<(String, i64)>> {
    let rows = conn.query_map("SELECT module, COUNT(*) FROM usage_events WHERE tenant_id = ?1 AND period = ?2 AND billed = 0 \
         GROUP BY module ORDER BY module", params![tenant_id, period], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows)
}

/// Every tenant's units per module in `period`, for `/metrics`.
pub fn period_usage(conn: &Conn<'_>, period: &str) -> Result<Vec<(String, String, i64)>> {
    let rows = conn.query_map("SELECT tenant_id, module, used FROM usage_counters WHERE period = ?1 ORDER BY tenant_id, module", params![period], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows)
}
