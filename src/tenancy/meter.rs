//! Metering: monthly quotas judged before the work, usage recorded with its price after it.
//!
//! A request first [`Meter::reserve`]s a unit of each module it will run: under a hard quota the
//! reservation is a row in `quota_holds` while the work runs, so 200 concurrent requests against
//! a quota of 150 let exactly 150 through, however many nodes share the database. On success the
//! units are recorded — usage row, counter, price, any threshold event, and the holds released,
//! in one transaction ([`record_in`]); a failed request drops its reservation (its holds are
//! deleted) and is not billed. `used + holds` is what the quota is judged on, and recording
//! moves a unit from one to the other in one transaction, so the sum never jumps. A node that
//! dies mid-request leaves holds that lapse after [`HOLD_SECS`]; a queued job's holds last until
//! the job ends.

use crate::store::Tx;
use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;

use super::plans::{discounted, Module, QuotaMode};
use super::subscription::effective_plan;
use crate::error::{Code, ErrorCode};
use crate::store::crypto::DataKey;
use crate::store::{self, Store, StoreError};
use crate::workflow::webhooks;

/// The thresholds (percent of a quota) announced once per period.
pub const THRESHOLDS: [i64; 2] = [80, 100];

/// Why a unit could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    /// The monthly quota of a module is used up.
    #[error(
        "the monthly {} of {module} is used up ({used} of {limit}); it resets at {resets_at}",
        if *sandbox { "sandbox allowance" } else { "quota" }
    )]
    QuotaExceeded {
        /// The module.
        module: &'static str,
        /// The quota.
        limit: i64,
        /// Units used (including ones in progress).
        used: i64,
        /// When the next period starts (RFC 3339).
        resets_at: String,
        /// The sandbox's own allowance, not the live quota.
        sandbox: bool,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorCode for MeterError {
    fn code(&self) -> Code {
        match self {
            MeterError::QuotaExceeded { .. } => Code::QuotaExceeded,
            MeterError::Store(e) => e.code(),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            MeterError::QuotaExceeded {
                module,
                limit,
                used,
                resets_at,
                sandbox,
            } => {
                let mut d = json!({ "module": module, "limit": limit, "used": used, "resets_at": resets_at });
                if *sandbox {
                    d["sandbox"] = json!(true);
                }
                d
            }
            MeterError::Store(_) => json!({}),
        }
    }
}

/// The calendar month (UTC) of Unix time `at`, as `YYYY-MM`.
pub fn period_of(at: i64) -> String {
    let d = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

/// Unix seconds of the first instant of `period` (`YYYY-MM`) and of the month after it.
pub fn period_bounds(period: &str) -> Option<(i64, i64)> {
    let (y, m) = period.split_once('-')?;
    let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
    if period.len() != 7 || !(1970..=9999).contains(&y) {
        return None;
    }
    let start = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, 1).ok()?;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let next = time::Date::from_calendar_date(ny, time::Month::try_from(nm).ok()?, 1).ok()?;
    let unix = |d: time::Date| d.midnight().assume_utc().unix_timestamp();
    Some((unix(start), unix(next)))
}

/// When the quotas of `period` reset, RFC 3339.
pub fn resets_at(period: &str) -> String {
    let next = period_bounds(period).map_or(0, |(_, n)| n);
    crate::workflow::jobs::rfc3339(next)
}

/// Which counter a unit goes to: a module's, or the sandbox's own for that module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counter {
    /// The module.
    pub module: Module,
    /// Sandbox units of a plan that is not sandbox-only: counted apart from the quota.
    pub sandbox: bool,
}

impl Counter {
    /// The counter's name in `usage_counters` (`ocr`, `sandbox.ocr`).
    pub fn name(self) -> String {
        if self.sandbox {
            format!("sandbox.{}", self.module.as_str())
        } else {
            self.module.as_str().to_owned()
        }
    }
}

/// How long a request's holds last if its node dies before it ends (then they lapse).
pub const HOLD_SECS: i64 = 600;

/// Units of modules held under their quotas while a request runs; released on drop unless
/// settled (recorded) or handed to a queued job.
pub struct Reservation {
    store: Arc<Store>,
    period: String,
    holds: Vec<String>,
    sandbox: bool,
    billed: bool,
    done: bool,
}

impl Reservation {
    /// The month the units count against.
    pub fn period(&self) -> &str {
        &self.period
    }

    /// After the transaction that recorded the units committed (it released the holds).
    pub fn settle(mut self) {
        self.done = true;
    }

    /// Inside the transaction that queues `job_id`: the holds now last until the job ends.
    pub fn bind_to_job(&self, tx: &Tx<'_>, job_id: &str) -> Result<(), StoreError> {
        store::quota::bind_to_job(tx, &self.holds, job_id)
    }

    /// After that transaction committed: the job owns the holds.
    pub fn handed_over(mut self) {
        self.done = true;
    }

    /// Whether the units go to the sandbox's own counter.
    pub fn sandbox(&self) -> bool {
        self.sandbox
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done || self.holds.is_empty() {
            return;
        }
        // A failed request gives its units back now; if this write fails they lapse anyway.
        if let Err(e) = self
            .store
            .write(|tx| store::quota::release(tx, &self.holds))
        {
            tracing::warn!(error = %e, "releasing quota holds failed; they lapse in {HOLD_SECS} s");
        }
    }
}

/// Who is billed for a unit.
#[derive(Debug, Clone, Copy)]
pub struct Payer<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// The key that signed the request, if any (compatibility routes have none).
    pub key_id: Option<&'a str>,
    /// A sandbox key: recorded and counted, not billed.
    pub sandbox: bool,
}

/// A unit as recorded, for the response's `usage`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    /// The module.
    pub module: &'static str,
    /// Units (always 1).
    pub units: u32,
    /// Whether it is billed.
    pub billed: bool,
    /// Beyond the quota on a soft-quota plan.
    pub overage: bool,
    /// Made with a sandbox key (counted against the sandbox allowance, never billed).
    pub sandbox: bool,
}

/// The metering service.
pub struct Meter {
    store: Arc<Store>,
}

impl Meter {
    /// A meter over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Meter { store }
    }

    /// Holds one unit of each module for a request at time `now`, or refuses with the first
    /// module whose hard quota is used up. Sandbox keys of a plan that is not sandbox-only draw
    /// on the plan's sandbox allowance instead (always hard), never on the live quota.
    /// Blocking: a hard quota is judged and held in one write transaction, which every node
    /// serialises, so no node can overshoot it.
    pub fn reserve(
        &self,
        tenant_id: &str,
        modules: &[Module],
        sandbox: bool,
        now: i64,
    ) -> Result<Reservation, MeterError> {
        let plan = self.store.read(|c| effective_plan(c, tenant_id))?;
        // Decided now, for the units' whole life: a plan changed before they are recorded does
        // not move them to another counter or bill them differently.
        let billed = !(sandbox || plan.sandbox_only);
        let sandbox = sandbox && !plan.sandbox_only;
        let period = period_of(now);
        let capped: Vec<(Module, Counter, i64)> = modules
            .iter()
            .filter_map(|m| {
                let counter = Counter {
                    module: *m,
                    sandbox,
                };
                let (hard, limit) = if sandbox {
                    (true, Some(plan.sandbox_quota))
                } else {
                    (
                        plan.quota_mode == QuotaMode::Hard,
                        plan.modules.get(m).and_then(|t| t.monthly_quota),
                    )
                };
                limit.filter(|_| hard).map(|l| (*m, counter, l))
            })
            .collect();
        let mut reservation = Reservation {
            store: self.store.clone(),
            period: period.clone(),
            holds: Vec::new(),
            sandbox,
            billed,
            done: false,
        };
        if capped.is_empty() {
            return Ok(reservation);
        }
        let judged = self.store.write(|tx| {
            for (m, counter, limit) in &capped {
                let name = counter.name();
                let used = store::usage::used(tx, tenant_id, &name, &period)?
                    + store::quota::in_force(tx, tenant_id, &name, &period, now)?;
                if used >= *limit {
                    // Nothing was held yet: committing holds nothing.
                    return Ok(Err(MeterError::QuotaExceeded {
                        module: m.as_str(),
                        limit: *limit,
                        used,
                        resets_at: resets_at(&period),
                        sandbox,
                    }));
                }
            }
            let mut holds = Vec::with_capacity(capped.len());
            for (_, counter, _) in &capped {
                let id = hold_id();
                store::quota::hold(
                    tx,
                    &id,
                    tenant_id,
                    &counter.name(),
                    &period,
                    now + HOLD_SECS,
                )?;
                holds.push(id);
            }
            Ok(Ok(holds))
        })?;
        reservation.holds = judged?;
        Ok(reservation)
    }

    /// The reservation a queued job's units are recorded under when it ends: its holds are
    /// released by the transaction that ends it (`store::jobs::complete` or `fail`), and its
    /// units are recorded whatever the quota says now, because nothing accepted is dropped.
    pub fn for_job(&self, tenant_id: &str, sandbox: bool, now: i64) -> Reservation {
        let sandbox_only = self
            .store
            .read(|c| effective_plan(c, tenant_id))
            .is_ok_and(|p| p.sandbox_only);
        Reservation {
            store: self.store.clone(),
            period: period_of(now),
            holds: Vec::new(),
            sandbox: sandbox && !sandbox_only,
            billed: !(sandbox || sandbox_only),
            done: false,
        }
    }

    /// Records the units of `ran` in their own transaction and settles the reservation.
    /// Blocking.
    pub fn record(
        &self,
        r: Reservation,
        request_id: &str,
        payer: Payer<'_>,
        ran: &[Module],
    ) -> Result<Vec<Recorded>, StoreError> {
        let hooks_key = self.store.data_key(webhooks::FAMILY)?;
        let now = store::now();
        let out = self
            .store
            .write(|tx| record_in(tx, &hooks_key, &r, request_id, payer, ran, now))?;
        r.settle();
        Ok(out)
    }
}

fn hold_id() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("hold_{}", hex::encode(raw))
}

/// Writes the usage rows of `ran` inside the caller's transaction: counter, price by the
/// volume tier the unit falls in, overage flag, and the `quota.threshold` event when a unit
/// crosses 80 % or 100 % of its quota (once per period, whatever the concurrency); releases the
/// reservation's holds (a job's go when the job ends). Call [`Reservation::settle`]
/// after the commit.
pub fn record_in(
    tx: &Tx<'_>,
    hooks_key: &DataKey,
    r: &Reservation,
    request_id: &str,
    payer: Payer<'_>,
    ran: &[Module],
    now: i64,
) -> Result<Vec<Recorded>, StoreError> {
    store::quota::release(tx, &r.holds)?;
    let plan = effective_plan(tx, payer.tenant_id)?;
    let billed = r.billed;
    let mut out = Vec::with_capacity(ran.len());
    for m in ran {
        let counter = Counter {
            module: *m,
            sandbox: r.sandbox,
        };
        let (n, billed_n) =
            store::usage::increment(tx, payer.tenant_id, &counter.name(), &r.period, billed)?;
        let terms = plan.modules.get(m).copied();
        let list = terms.map_or(0, |t| t.unit_price_micros);
        // The sandbox's allowance is not a quota: no overage, no threshold events.
        let quota = terms.and_then(|t| t.monthly_quota).filter(|_| !r.sandbox);
        // Volume tiers count billed units only: sandbox traffic earns no discount.
        let discount = if billed {
            plan.discount_for(billed_n)
        } else {
            0
        };
        let overage = quota.is_some_and(|q| n > q);
        store::usage::record(
            tx,
            &store::usage::UsageEvent {
                request_id,
                tenant_id: payer.tenant_id,
                key_id: payer.key_id,
                module: m.as_str(),
                period: &r.period,
                unit_price_micros: if billed {
                    discounted(list, discount)
                } else {
                    0
                },
                list_price_micros: list,
                discount_percent: discount,
                billed,
                overage,
                at: now,
            },
        )?;
        if let Some(q) = quota.filter(|q| *q > 0) {
            let crossed = |t: i64| i128::from(n) * 100 >= i128::from(q) * i128::from(t);
            for t in THRESHOLDS.into_iter().filter(|t| crossed(*t)) {
                let fresh = store::usage::mark_threshold(
                    tx,
                    payer.tenant_id,
                    m.as_str(),
                    &r.period,
                    (t, n, q),
                    now,
                )?;
                if fresh {
                    let data = json!({
                        "module": m.as_str(), "threshold_percent": t, "used": n, "quota": q,
                        "period": r.period, "resets_at": resets_at(&r.period),
                        "quota_mode": plan.quota_mode,
                    });
                    let body = webhooks::event_body("quota.threshold", data);
                    webhooks::enqueue_event(
                        hooks_key,
                        None,
                        tx,
                        payer.tenant_id,
                        "quota.threshold",
                        &body,
                        None,
                    )?;
                }
            }
        }
        out.push(Recorded {
            module: m.as_str(),
            units: 1,
            billed,
            overage,
            sandbox: !billed,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;
    use crate::tenancy::subscription::set_subscription;

    #[test]
    fn periods() {
        assert_eq!(period_of(1_790_000_000), "2026-09");
        let (s, e) = period_bounds("2026-12").unwrap();
        assert_eq!(period_of(s), "2026-12");
        assert_eq!(period_of(e), "2027-01");
        assert_eq!(period_of(e - 1), "2026-12");
        assert!(period_bounds("2026-13").is_none());
        assert!(period_bounds("26-1").is_none());
        assert_eq!(resets_at("2026-11"), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn hard_quota_counts_in_flight_units_and_thresholds_fire_once() {
        let (_dir, store) = test_store();
        let store = Arc::new(store);
        let t = super::super::create_tenant(&store, "Acme", "pro", "t").unwrap();
        let o = json!({"modules": {"validation": {"monthly_quota": 5}}});
        set_subscription(&store, &t.id, None, Some(&o), "t").unwrap();
        let meter = Meter::new(store.clone());
        let now = store::now();
        let payer = Payer {
            tenant_id: &t.id,
            key_id: None,
            sandbox: false,
        };
        let v = [Module::Validation];
        let held: Vec<_> = (0..5)
            .map(|_| meter.reserve(&t.id, &v, false, now).unwrap())
            .collect();
        let err = meter.reserve(&t.id, &v, false, now).err().unwrap();
        assert!(
            matches!(
                err,
                MeterError::QuotaExceeded {
                    limit: 5,
                    used: 5,
                    ..
                }
            ),
            "{err}"
        );
        // A failed request gives its unit back.
        let mut held = held.into_iter();
        drop(held.next());
        let again = meter.reserve(&t.id, &v, false, now).unwrap();
        for (i, r) in held.chain([again]).enumerate() {
            meter.record(r, &format!("req{i}"), payer, &v).unwrap();
        }
        assert!(meter.reserve(&t.id, &v, false, now).is_err());
        // Other modules have their own quotas.
        drop(meter.reserve(&t.id, &[Module::Ocr], false, now).unwrap());

        let period = period_of(now);
        let alerts = store
            .read(|c| store::usage::alerts(c, &t.id, &period))
            .unwrap();
        let marks: Vec<_> = alerts.iter().map(|a| (a.threshold, a.used)).collect();
        assert_eq!(marks, [(80, 4), (100, 5)]);
        let used = store.read(|c| store::usage::used(c, &t.id, "validation", &period));
        assert_eq!(used.unwrap(), 5);
    }

    #[test]
    fn prices_follow_tiers_and_sandbox_is_not_billed() {
        let (_dir, store) = test_store();
        let store = Arc::new(store);
        let t = super::super::create_tenant(&store, "Acme", "pro", "t").unwrap();
        let o = json!({"tiers": [{"from_units": 3, "discount_percent": 25}],
                       "modules": {"ocr": {"unit_price_micros": 100_000}}});
        set_subscription(&store, &t.id, None, Some(&o), "t").unwrap();
        let meter = Meter::new(store.clone());
        let now = store::now();
        let ocr = [Module::Ocr];
        for (i, sandbox) in [false, false, false, true, false].into_iter().enumerate() {
            let payer = Payer {
                tenant_id: &t.id,
                key_id: Some("ak_x"),
                sandbox,
            };
            let r = meter.reserve(&t.id, &ocr, sandbox, now).unwrap();
            meter.record(r, &format!("r{i}"), payer, &ocr).unwrap();
        }
        let groups = store
            .read(|c| store::usage::billed_groups(c, &t.id, &period_of(now)))
            .unwrap();
        let lines: Vec<_> = groups
            .iter()
            .map(|g| {
                (
                    g.discount_percent,
                    g.count,
                    g.unit_price_micros,
                    g.amount_micros,
                )
            })
            .collect();
        // Billed units 1–2 at list, 3–4 at 25 % off; the sandbox unit is counted against the
        // sandbox's own allowance, not billed, and does not move the tier.
        assert_eq!(lines, [(0, 2, 100_000, 200_000), (25, 2, 75_000, 150_000)]);
        let used = |counter: &str| {
            store
                .read(|c| store::usage::used(c, &t.id, counter, &period_of(now)))
                .unwrap()
        };
        assert_eq!((used("ocr"), used("sandbox.ocr")), (4, 1));
    }

    #[test]
    fn sandbox_keys_draw_on_their_own_allowance_not_the_live_quota() {
        let (_dir, store) = test_store();
        let store = Arc::new(store);
        let t = super::super::create_tenant(&store, "Acme", "pro", "t").unwrap();
        let o = json!({"sandbox_quota": 2, "modules": {"ocr": {"monthly_quota": 3}}});
        set_subscription(&store, &t.id, None, Some(&o), "t").unwrap();
        let meter = Meter::new(store.clone());
        let now = store::now();
        let ocr = [Module::Ocr];
        let run = |sandbox: bool| {
            let r = meter.reserve(&t.id, &ocr, sandbox, now)?;
            let payer = Payer {
                tenant_id: &t.id,
                key_id: None,
                sandbox,
            };
            Ok::<_, MeterError>(meter.record(r, "r", payer, &ocr).unwrap())
        };
        assert!(run(true).unwrap()[0].sandbox);
        run(true).unwrap();
        let err = run(true).unwrap_err();
        assert!(
            matches!(
                err,
                MeterError::QuotaExceeded {
                    limit: 2,
                    sandbox: true,
                    ..
                }
            ),
            "{err}"
        );
        // The live quota is untouched by the sandbox's units.
        for _ in 0..3 {
            assert!(!run(false).unwrap()[0].sandbox);
        }
        assert!(matches!(
            run(false).unwrap_err(),
            MeterError::QuotaExceeded {
                limit: 3,
                sandbox: false,
                ..
            }
        ));
    }
}
