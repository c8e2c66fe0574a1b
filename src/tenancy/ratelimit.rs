//! Request rate limits per API key: GCRA (the `governor` crate) over a per-minute and a per-day
//! budget, one pair of buckets per key and budget (the shared one, `*`, or an endpoint's own).
//!
//! Buckets live in memory: a restart forgives a minute's burst, which is the usual trade for a
//! limiter that costs no disk write per request.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter as Gcra};

use super::plans::Budget;

type Limiter = Gcra<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    StateInformationMiddleware,
>;

struct Buckets {
    budget: Budget,
    minute: Limiter,
    day: Limiter,
}

fn limiter(burst: u32, period: Duration) -> Limiter {
    let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
    let quota = Quota::with_period(period / burst.get())
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    Gcra::direct(quota).with_middleware::<StateInformationMiddleware>()
}

impl Buckets {
    fn new(budget: Budget) -> Self {
        Buckets {
            budget,
            minute: limiter(budget.per_minute, Duration::from_secs(60)),
            day: limiter(budget.per_day, Duration::from_secs(86_400)),
        }
    }
}

/// The outcome of one check, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The budget that binds (per minute, unless the day's is nearer exhaustion).
    pub limit: u32,
    /// Requests left in that budget right now.
    pub remaining: u32,
    /// Seconds until that budget is whole again.
    pub reset_secs: u64,
    /// When refused: seconds until a request would be allowed.
    pub retry_after_secs: Option<u64>,
}

/// Per-key limiters.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(String, String), Arc<Buckets>>>,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Seconds until a bucket with `remaining` of `limit` left is full, at `period / limit` a cell.
fn reset_secs(limit: u32, remaining: u32, period: Duration) -> u64 {
    let missing = limit.saturating_sub(remaining);
    ceil_secs(period / limit.max(1) * missing)
}

impl RateLimiter {
    /// A limiter with no buckets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request of `key_id` against `budget` (bucket `bucket`). A budget changed since
    /// the bucket was made starts a fresh bucket.
    pub fn check(&self, key_id: &str, bucket: &str, budget: Budget) -> Decision {
        let buckets = {
            let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map
                .entry((key_id.to_owned(), bucket.to_owned()))
                .or_insert_with(|| Arc::new(Buckets::new(budget)));
            if entry.budget != budget {
                *entry = Arc::new(Buckets::new(budget));
            }
            entry.clone()
        };
        let minute_period = Duration::from_secs(60);
        let day_period = Duration::from_secs(86_400);
        let now = DefaultClock::default().now();
        match buckets.minute.check() {
            Err(not_until) => Decision {
                allowed: false,
                limit: budget.per_minute,
                remaining: 0,
                reset_secs: reset_secs(budget.per_minute, 0, minute_period),
                retry_after_secs: Some(ceil_secs(not_until.wait_time_from(now)).max(1)),
            },
            Ok(minute) => match buckets.day.check() {
                Err(not_until) => Decision {
                    allowed: false,
                    limit: budget.per_day,
                    remaining: 0,
                    reset_secs: reset_secs(budget.per_day, 0, day_period),
                    retry_after_secs: Some(ceil_secs(not_until.wait_time_from(now)).max(1)),
                },
                Ok(day) => {
                    let (m, d) = (
                        minute.remaining_burst_capacity(),
                        day.remaining_burst_capacity(),
                    );
                    let (limit, remaining, period) = if d < m {
                        (budget.per_day, d, day_period)
                    } else {
                        (budget.per_minute, m, minute_period)
                    };
                    Decision {
                        allowed: true,
                        limit,
                        remaining,
                        reset_secs: reset_secs(limit, remaining, period),
                        retry_after_secs: None,
                    }
                }
            },
        }
    }

    /// Forgets the buckets of a key (revoked keys).
    pub fn forget(&self, key_id: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _), _| k != key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_retry_after_and_keys_independent() {
        let rl = RateLimiter::new();
        let b = Budget {
            per_minute: 60,
            per_day: 50_000,
        };
        for i in 0..60 {
            let d = rl.check("a", "*", b);
            assert!(d.allowed, "request {}", i + 1);
            assert_eq!((d.limit, d.remaining), (60, 59 - i));
        }
        let d = rl.check("a", "*", b);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, Some(1));
        assert_eq!(d.reset_secs, 60);
        // Another key, and another bucket of the same key, are untouched.
        assert!(rl.check("b", "*", b).allowed);
        assert!(rl.check("a", "POST /v1/kyc/verify", b).allowed);
        // A day budget smaller than the minute's binds.
        let tight = Budget {
            per_minute: 10,
            per_day: 2,
        };
        assert_eq!(rl.check("c", "*", tight).limit, 2);
        assert!(rl.check("c", "*", tight).allowed);
        let d = rl.check("c", "*", tight);
        assert!(!d.allowed && d.limit == 2 && d.retry_after_secs.unwrap() > 3600);
    }
}
