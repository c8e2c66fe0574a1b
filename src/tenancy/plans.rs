//! Plans: what a tenant may use each month, how fast, and at what price.
//!
//! A plan is JSON the operator can edit (`PUT /admin/v1/plans/{id}`); a tenant's overrides are a
//! JSON merge patch (RFC 7386) over its plan, so an override names only what differs
//! (`{"modules":{"ocr":{"monthly_quota":150}}}`). The effective plan is always the merge,
//! validated as a whole when either side changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A billable module: each is callable on its own, and a workflow bills each one it ran.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    /// Liveness and anti-spoof.
    Liveness,
    /// Document OCR.
    Ocr,
    /// Document (MRZ) validation.
    Validation,
    /// 1:1 face match.
    FaceMatch,
}

impl Module {
    /// Every module, in invoice order.
    pub const ALL: [Module; 4] = [
        Module::Liveness,
        Module::Ocr,
        Module::Validation,
        Module::FaceMatch,
    ];

    /// The module's name on the wire and in usage rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Module::Liveness => "liveness",
            Module::Ocr => "ocr",
            Module::Validation => "validation",
            Module::FaceMatch => "face_match",
        }
    }

    /// The module named `s`.
    pub fn parse(s: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What happens past a monthly quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaMode {
    /// Refuse with 429 `quota_exceeded`.
    Hard,
    /// Allow, and flag the units as overage.
    Soft,
}

/// One module's terms in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleTerms {
    /// Units per calendar month (UTC); `null` = unlimited.
    pub monthly_quota: Option<i64>,
    /// List price of one unit in micro-units of the currency (20 000 = 0.02 USD).
    pub unit_price_micros: i64,
}

/// A volume discount: from the `from_units`-th unit of a module in a month on, units cost
/// `discount_percent` less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The first unit (1-based, per module per month) the discount applies to.
    pub from_units: i64,
    /// Percent off the list price, 0–100.
    pub discount_percent: i64,
}

/// A request budget per API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Requests per minute (also the burst).
    pub per_minute: u32,
    /// Requests per day.
    pub per_day: u32,
}

/// Rate limits per API key: a default budget and per-endpoint ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per minute over every endpoint without its own budget.
    pub per_minute: u32,
    /// Requests per day over every endpoint without its own budget.
    pub per_day: u32,
    /// Budgets of their own, by route: `"POST /v1/kyc/verify"` or `"/v1/jobs/{id}"` (any method).
    #[serde(default)]
    pub endpoints: BTreeMap<String, Budget>,
}

impl RateLimits {
    /// The budget for a request and the bucket it counts against (`*` = the shared one).
    pub fn budget_for(&self, method: &str, pattern: &str) -> (String, Budget) {
        let exact = format!("{method} {pattern}");
        for name in [exact.as_str(), pattern] {
            if let Some(b) = self.endpoints.get(name) {
                return (name.to_owned(), *b);
            }
        }
        (
            "*".into(),
            Budget {
                per_minute: self.per_minute,
                per_day: self.per_day,
            },
        )
    }
}

/// A plan, as stored and as the operator edits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Display name.
    pub name: String,
    /// ISO 4217 code of the prices.
    pub currency: String,
    /// Every key of a tenant on this plan is a sandbox key: recorded, counted, never billed.
    pub sandbox_only: bool,
    /// What happens past a quota.
    pub quota_mode: QuotaMode,
    /// Terms for every module.
    pub modules: BTreeMap<Module, ModuleTerms>,
    /// Volume discounts, by ascending `from_units`.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    /// Request budgets per key.
    pub rate_limit: RateLimits,
    /// Units a month of each module that sandbox keys may use, counted apart from the quotas
    /// (on a sandbox-only plan the quotas themselves are the sandbox's).
    #[serde(default = "default_sandbox_quota")]
    pub sandbox_quota: i64,
}

fn default_sandbox_quota() -> i64 {
    500
}

/// The largest monthly quota a plan may set (beyond it, use `null`: unlimited).
pub const MAX_QUOTA: i64 = 1_000_000_000_000;

/// The plans every installation starts with.
pub const PLAN_IDS: [&str; 3] = ["free", "pro", "enterprise"];

fn terms(quota: Option<i64>, price: i64) -> ModuleTerms {
    ModuleTerms {
        monthly_quota: quota,
        unit_price_micros: price,
    }
}

impl Plan {
    /// The built-in definition of plan `id` (prices from the middle of the product's ranges:
    /// liveness 0.01–0.03, OCR 0.05–0.12, validation 0.01, face match 0.02–0.05 USD).
    pub fn builtin(id: &str) -> Option<Plan> {
        let modules = |q: Option<i64>, [l, o, v, f]: [i64; 4]| {
            BTreeMap::from([
                (Module::Liveness, terms(q, l)),
                (Module::Ocr, terms(q, o)),
                (Module::Validation, terms(q, v)),
                (Module::FaceMatch, terms(q, f)),
            ])
        };
        let limits = |per_minute, per_day| RateLimits {
            per_minute,
            per_day,
            endpoints: BTreeMap::new(),
        };
        let tier = |from_units, discount_percent| Tier {
            from_units,
            discount_percent,
        };
        Some(match id {
            "free" => Plan {
                name: "Free (sandbox)".into(),
                currency: "USD".into(),
                sandbox_only: true,
                quota_mode: QuotaMode::Hard,
                modules: modules(Some(100), [0; 4]),
                tiers: vec![],
                rate_limit: limits(60, 50_000),
                sandbox_quota: 100,
            },
            "pro" => Plan {
                name: "Pro".into(),
                currency: "USD".into(),
                sandbox_only: false,
                quota_mode: QuotaMode::Hard,
                modules: modules(Some(10_000), [20_000, 80_000, 10_000, 30_000]),
                tiers: vec![tier(1_001, 10), tier(5_001, 20)],
                rate_limit: limits(60, 50_000),
                sandbox_quota: 500,
            },
            "enterprise" => Plan {
                name: "Enterprise".into(),
                currency: "USD".into(),
                sandbox_only: false,
                quota_mode: QuotaMode::Soft,
                modules: modules(Some(1_000_000), [10_000, 50_000, 10_000, 20_000]),
                tiers: vec![tier(10_001, 10), tier(100_001, 20), tier(500_001, 30)],
                rate_limit: limits(600, 500_000),
                sandbox_quota: 2_000,
            },
            _ => return None,
        })
    }

    /// Checks the plan as a whole; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, r: &str| Err((f.to_owned(), r.to_owned()));
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return bad("name", "1 to 100 characters");
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad("currency", "an ISO 4217 code such as USD");
        }
        for m in Module::ALL {
            let Some(t) = self.modules.get(&m) else {
                return bad(&format!("modules.{}", m.as_str()), "missing");
            };
            if t.monthly_quota
                .is_some_and(|q| !(0..=MAX_QUOTA).contains(&q))
            {
                let f = format!("modules.{}.monthly_quota", m.as_str());
                return bad(&f, "0 to 10^12, or null for unlimited");
            }
            if !(0..=100_000_000).contains(&t.unit_price_micros) {
                let f = format!("modules.{}.unit_price_micros", m.as_str());
                return bad(&f, "0 to 100 000 000 (100 units of the currency)");
            }
        }
        if !(0..=MAX_QUOTA).contains(&self.sandbox_quota) {
            return bad("sandbox_quota", "0 to 10^12");
        }
        let mut last = 1;
        for (i, t) in self.tiers.iter().enumerate() {
            if t.from_units <= last {
                let f = format!("tiers[{i}].from_units");
                return bad(&f, "at least 2 and above the previous tier's");
            }
            if !(0..=100).contains(&t.discount_percent) {
                return bad(&format!("tiers[{i}].discount_percent"), "0 to 100");
            }
            last = t.from_units;
        }
        let budget_ok = |b: Budget| b.per_minute >= 1 && b.per_day >= 1;
        if !budget_ok(Budget {
            per_minute: self.rate_limit.per_minute,
            per_day: self.rate_limit.per_day,
        }) {
            return bad("rate_limit", "per_minute and per_day at least 1");
        }
        for (route, b) in &self.rate_limit.endpoints {
            let path = route.rsplit(' ').next().unwrap_or_default();
            if !path.starts_with('/') || !budget_ok(*b) {
                let f = format!("rate_limit.endpoints.{route}");
                return bad(
                    &f,
                    "a route like \"POST /v1/kyc/verify\" with budgets at least 1",
                );
            }
        }
        Ok(())
    }

    /// The discount for the `n`-th unit of a module in a month.
    pub fn discount_for(&self, n: i64) -> i64 {
        self.tiers
            .iter()
            .rev()
            .find(|t| n >= t.from_units)
            .map_or(0, |t| t.discount_percent)
    }
}

/// The price of a unit after a discount, rounded half up to a micro-unit.
pub fn discounted(list_micros: i64, discount_percent: i64) -> i64 {
    (list_micros * (100 - discount_percent) + 50) / 100
}

/// RFC 7386 JSON merge patch: `patch` applied to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().expect("an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// The plan that results from `overrides` over `plan`, validated.
pub fn apply_overrides(plan: &Plan, overrides: Option<&Value>) -> Result<Plan, (String, String)> {
    let Some(o) = overrides else {
        return Ok(plan.clone());
    };
    let mut v = serde_json::to_value(plan).map_err(|e| ("overrides".into(), e.to_string()))?;
    merge_patch(&mut v, o);
    let merged: Plan = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "overrides".to_owned()
        } else {
            format!("overrides.{path}")
        };
        (field, e.into_inner().to_string())
    })?;
    merged
        .validate()
        .map_err(|(f, r)| (format!("overrides.{f}"), r))?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_round_trip() {
        for id in PLAN_IDS {
            let p = Plan::builtin(id).unwrap();
            p.validate().unwrap();
            let back: Plan = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        assert!(Plan::builtin("gold").is_none());
    }

    #[test]
    fn tiers_apply_from_their_first_unit() {
        let p = Plan::builtin("pro").unwrap();
        assert_eq!(p.discount_for(1), 0);
        assert_eq!(p.discount_for(1_000), 0);
        assert_eq!(p.discount_for(1_001), 10);
        assert_eq!(p.discount_for(5_000), 10);
        assert_eq!(p.discount_for(5_001), 20);
        assert_eq!(discounted(20_000, 10), 18_000);
        assert_eq!(discounted(33_333, 10), 30_000);
        assert_eq!(discounted(5, 50), 3); // 2.5 rounds half up
        assert_eq!(discounted(80_000, 100), 0);
    }

    #[test]
    fn overrides_merge_and_are_validated_with_the_field() {
        let pro = Plan::builtin("pro").unwrap();
        let o = json!({"quota_mode": "soft", "modules": {"ocr": {"monthly_quota": 150}},
                       "rate_limit": {"endpoints": {"POST /v1/kyc/verify": {"per_minute": 5, "per_day": 100}}}});
        let p = apply_overrides(&pro, Some(&o)).unwrap();
        assert_eq!(p.quota_mode, QuotaMode::Soft);
        assert_eq!(p.modules[&Module::Ocr].monthly_quota, Some(150));
        assert_eq!(p.modules[&Module::Ocr].unit_price_micros, 80_000);
        assert_eq!(p.modules[&Module::Liveness], pro.modules[&Module::Liveness]);
        let (bucket, b) = p.rate_limit.budget_for("POST", "/v1/kyc/verify");
        assert_eq!((bucket.as_str(), b.per_minute), ("POST /v1/kyc/verify", 5));
        assert_eq!(p.rate_limit.budget_for("GET", "/v1/ping").0, "*");
        // null removes a key: here the quota, which means unlimited.
        let p = apply_overrides(
            &pro,
            Some(&json!({"modules": {"ocr": {"monthly_quota": null}}})),
        );
        assert_eq!(p.unwrap().modules[&Module::Ocr].monthly_quota, None);

        let err = |o: Value| apply_overrides(&pro, Some(&o)).unwrap_err().0;
        assert_eq!(
            err(json!({"modules": {"ocr": {"monthly_quota": -1}}})),
            "overrides.modules.ocr.monthly_quota"
        );
        assert_eq!(
            err(
                json!({"tiers": [{"from_units": 10, "discount_percent": 5}, {"from_units": 10, "discount_percent": 9}]})
            ),
            "overrides.tiers[1].from_units"
        );
        assert_eq!(err(json!({"quota_mode": "maybe"})), "overrides.quota_mode");
        assert_eq!(err(json!({"colour": 1})), "overrides.colour");
    }
}
