//! Invoices: a tenant's billed usage of one month, a line per module and price.
//!
//! Lines are sums of the usage rows themselves (each row carries the price it was charged at,
//! tier discount included), so the total is the sum of the billed usage events by construction.
//! Amounts are micro-units; the total is also given in minor units (cents), rounded half up
//! once, at the end.

use serde::Serialize;

use super::meter::{period_bounds, period_of};
use super::subscription::effective_plan;
use super::TenancyError;
use crate::store::{self, Store};

/// One invoice line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Line {
    /// The module.
    pub module: String,
    /// Units.
    pub count: i64,
    /// The plan's list price per unit, micro-units.
    pub list_price_micros: i64,
    /// The volume tier's discount, percent.
    pub discount_percent: i64,
    /// The price charged per unit, micro-units.
    pub unit_price_micros: i64,
    /// count × unit price, micro-units.
    pub amount_micros: i64,
    /// Units of them beyond the quota (soft-quota plans).
    pub overage_units: i64,
}

/// A tenant's invoice for one month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    /// The tenant.
    pub tenant_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// `open` while the month runs, `closed` after it.
    pub status: &'static str,
    /// ISO 4217.
    pub currency: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// Units recorded for sandbox keys, by module: counted against quotas, not billed.
    pub unbilled_units: std::collections::BTreeMap<String, i64>,
    /// Sum of the lines, micro-units.
    pub total_micros: i64,
    /// The total in minor units (cents), rounded half up.
    pub total_minor: i64,
}

/// Micro-units to minor units (hundredths), rounded half up.
pub fn micros_to_minor(micros: i64) -> i64 {
    (micros + 5_000).div_euclid(10_000)
}

/// Builds the invoice of `month` (`YYYY-MM`) for a tenant.
pub fn invoice(store: &Store, tenant_id: &str, month: &str) -> Result<Invoice, TenancyError> {
    let (_, end) = period_bounds(month).ok_or_else(|| TenancyError::InvalidField {
        field: "month".into(),
        reason: "a month as YYYY-MM".into(),
    })?;
    let (groups, unbilled, plan) = store.read(|c| {
        Ok((
            store::usage::billed_groups(c, tenant_id, month)?,
            store::usage::unbilled_counts(c, tenant_id, month)?,
            effective_plan(c, tenant_id)?,
        ))
    })?;
    let lines: Vec<Line> = groups
        .into_iter()
        .map(|g| Line {
            module: g.module,
            count: g.count,
            list_price_micros: g.list_price_micros,
            discount_percent: g.discount_percent,
            unit_price_micros: g.unit_price_micros,
            amount_micros: g.amount_micros,
            overage_units: g.overage,
        })
        .collect();
    let total_micros = lines.iter().map(|l| l.amount_micros).sum();
    Ok(Invoice {
        tenant_id: tenant_id.to_owned(),
        month: month.to_owned(),
        status: if store::now() >= end {
            "closed"
        } else {
            "open"
        },
        currency: plan.currency,
        lines,
        unbilled_units: unbilled.into_iter().collect(),
        total_micros,
        total_minor: micros_to_minor(total_micros),
    })
}

/// One module's use of its quota in a month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModuleUsage {
    /// The module.
    pub module: &'static str,
    /// Units used (billed or not).
    pub used: i64,
    /// The monthly quota; `null` = unlimited.
    pub quota: Option<i64>,
    /// Units left; `null` = unlimited.
    pub remaining: Option<i64>,
    /// The list price per unit, micro-units.
    pub unit_price_micros: i64,
    /// Units sandbox keys used, counted against the sandbox allowance (never billed; on a
    /// sandbox-only plan they are `used`).
    pub sandbox_used: i64,
}

/// A tenant's usage and quota state for a month (`GET /v1/usage`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// `YYYY-MM`.
    pub month: String,
    /// When the quotas reset (RFC 3339).
    pub resets_at: String,
    /// `hard` or `soft`.
    pub quota_mode: super::plans::QuotaMode,
    /// Per module.
    pub modules: Vec<ModuleUsage>,
    /// Units a month of each module sandbox keys may use.
    pub sandbox_allowance: i64,
    /// Thresholds crossed this month.
    pub alerts: Vec<store::usage::Alert>,
    /// What the month costs so far.
    pub invoice: Invoice,
}

/// A tenant's usage of `month`.
pub fn usage_report(
    store: &Store,
    tenant_id: &str,
    month: &str,
) -> Result<UsageReport, TenancyError> {
    let invoice = invoice(store, tenant_id, month)?;
    let (plan, modules, alerts) = store.read(|c| {
        let plan = effective_plan(c, tenant_id)?;
        let mut modules = Vec::new();
        for m in super::plans::Module::ALL {
            let used = store::usage::used(c, tenant_id, m.as_str(), month)?;
            let counter = super::meter::Counter {
                module: m,
                sandbox: true,
            };
            let sandbox_used = store::usage::used(c, tenant_id, &counter.name(), month)?;
            let terms = plan.modules.get(&m).copied();
            let quota = terms.and_then(|t| t.monthly_quota);
            modules.push(ModuleUsage {
                module: m.as_str(),
                used,
                quota,
                remaining: quota.map(|q| (q - used).max(0)),
                unit_price_micros: terms.map_or(0, |t| t.unit_price_micros),
                sandbox_used,
            });
        }
        Ok((plan, modules, store::usage::alerts(c, tenant_id, month)?))
    })?;
    Ok(UsageReport {
        month: month.to_owned(),
        resets_at: super::meter::resets_at(month),
        quota_mode: plan.quota_mode,
        sandbox_allowance: plan.sandbox_quota,
        modules,
        alerts,
        invoice,
    })
}

/// The current month, `YYYY-MM`.
pub fn current_month() -> String {
    period_of(store::now())
}

/// Micro-units as a decimal amount with six places (`1.230000`).
fn decimal(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

impl Invoice {
    /// The invoice as CSV: a header, a row per line, and a total row.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "month,module,count,list_price,discount_percent,unit_price,amount,overage_units,currency\n",
        );
        for l in &self.lines {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                self.month,
                l.module,
                l.count,
                decimal(l.list_price_micros),
                l.discount_percent,
                decimal(l.unit_price_micros),
                decimal(l.amount_micros),
                l.overage_units,
                self.currency
            ));
        }
        out.push_str(&format!(
            "{},total,,,,,{},,{}\n",
            self.month,
            decimal(self.total_micros),
            self.currency
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formatting_and_rounding() {
        assert_eq!(decimal(1_230_000), "1.230000");
        assert_eq!(decimal(18_000), "0.018000");
        assert_eq!(micros_to_minor(18_000), 2); // 1.8 cents → 2
        assert_eq!(micros_to_minor(14_999), 1);
        assert_eq!(micros_to_minor(15_000), 2);
        assert_eq!(micros_to_minor(0), 0);
    }
}
