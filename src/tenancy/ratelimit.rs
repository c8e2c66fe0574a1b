//! Request rate limits per API key: GCRA (the `governor` crate) over a per-minute and a per-day
//! budget, one pair of buckets per key and budget (the shared one, `*`, or an endpoint's own).
//!
//! On one node the buckets live in memory: a restart forgives a minute's burst, which is the
//! usual trade for a limiter that costs no disk write per request. Nodes sharing a PostgreSQL
//! database share the buckets: in Redis when `redis.url` is set ([`RateLimiter::redis`]: the same
//! GCRA as a script Redis runs atomically, on Redis's clock), else in the database
//! ([`RateLimiter::shared`]: one upsert per bucket and request in autocommit, outside the
//! serialised writers). Either way a key's budget holds across nodes.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter as Gcra};

use super::plans::Budget;
use crate::store::{self, Store, StoreError};

/// The outcome of one GCRA cell in a shared bucket.
enum Cell {
    /// Taken; this many more fit now.
    Taken { remaining: u32 },
    /// Refused; the next fits in this many milliseconds.
    Refused { wait_ms: i64 },
}

/// One GCRA step on the shared bucket `(key_id, bucket)`: `limit` cells per `period`, all of
/// them available as a burst. The theoretical arrival time (TAT) moves by one emission
/// interval per cell taken, in a single statement, so concurrent nodes never both take the last
/// cell.
fn shared_cell(
    store: &Store,
    key_id: &str,
    bucket: &str,
    limit: u32,
    period: Duration,
    now_ms: i64,
) -> Result<Cell, StoreError> {
    let limit = i64::from(limit.max(1));
    let interval = (period.as_millis() as i64 / limit).max(1);
    let tolerance = interval * (limit - 1);
    let step = store
        .autocommit(|c| store::shared::take_cell(c, key_id, bucket, now_ms, interval, tolerance))?;
    Ok(match step {
        Ok(tat) => Cell::Taken {
            remaining: ((tolerance + interval - (tat - now_ms)) / interval).clamp(0, limit) as u32,
        },
        Err(tat) => Cell::Refused {
            wait_ms: (tat - now_ms - tolerance).max(1),
        },
    })
}

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
    shared: Option<Shared>,
}

/// Where shared buckets live.
enum Shared {
    Database(Arc<Store>),
    Redis(r2d2::Pool<redis::Client>),
}

/// GCRA on Redis: KEYS[1] holds the bucket's theoretical arrival time (ms, Redis's clock);
/// ARGV = emission interval, tolerance. Returns {1, tat - now} when a cell is taken, {0, wait}
/// when refused. The key expires once the bucket is full again.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
local new = tat + interval
redis.call('SET', KEYS[1], new, 'PX', new - now + 1000)
return {1, new - now}
";

/// How long a Redis call may take before the request goes unlimited (and the log says so).
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Opens the Redis pool for `url` (`redis://host:port/db`), checking it answers.
pub fn redis_pool(url: &str) -> Result<r2d2::Pool<redis::Client>, String> {
    let client = redis::Client::open(url).map_err(|e| format!("redis.url: {e}"))?;
    let pool = r2d2::Pool::builder()
        .max_size(16)
        .connection_timeout(Duration::from_secs(2))
        .build(client)
        .map_err(|e| format!("Redis at {url} does not answer: {e}"))?;
    let mut conn = pool
        .get()
        .map_err(|e| format!("Redis at {url} does not answer: {e}"))?;
    redis::cmd("PING")
        .query::<String>(&mut *conn)
        .map_err(|e| format!("Redis at {url}: {e}"))?;
    Ok(pool)
}

fn redis_cell(
    pool: &r2d2::Pool<redis::Client>,
    key_id: &str,
    bucket: &str,
    limit: u32,
    period: Duration,
) -> Result<Cell, String> {
    let limit = i64::from(limit.max(1));
    let interval = (period.as_millis() as i64 / limit).max(1);
    let tolerance = interval * (limit - 1);
    let mut conn = pool.get_timeout(REDIS_TIMEOUT).map_err(|e| e.to_string())?;
    let conn: &mut redis::Connection = &mut conn;
    conn.set_read_timeout(Some(REDIS_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let (taken, value): (i64, i64) = redis::Script::new(GCRA_LUA)
        .key(format!("kycd:rate:{key_id}:{bucket}"))
        .arg(interval)
        .arg(tolerance)
        .invoke(conn)
        .map_err(|e| e.to_string())?;
    Ok(if taken == 1 {
        Cell::Taken {
            remaining: ((tolerance + interval - value) / interval).clamp(0, limit) as u32,
        }
    } else {
        Cell::Refused {
            wait_ms: value.max(1),
        }
    })
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// An allowed request's headers: the budget nearer exhaustion binds (`m` cells left of the
/// minute's, `d` of the day's).
fn allowed(budget: Budget, m: u32, d: u32) -> Decision {
    let (limit, remaining, period) = if d < m {
        (budget.per_day, d, Duration::from_secs(86_400))
    } else {
        (budget.per_minute, m, Duration::from_secs(60))
    };
    Decision {
        allowed: true,
        limit,
        remaining,
        reset_secs: reset_secs(limit, remaining, period),
        retry_after_secs: None,
    }
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

    /// A limiter whose buckets every node on `store`'s database shares.
    pub fn shared(store: Arc<Store>) -> Self {
        RateLimiter {
            shared: Some(Shared::Database(store)),
            ..Self::default()
        }
    }

    /// A limiter whose buckets every node shares in Redis.
    pub fn redis(pool: r2d2::Pool<redis::Client>) -> Self {
        RateLimiter {
            shared: Some(Shared::Redis(pool)),
            ..Self::default()
        }
    }

    fn check_shared(
        &self,
        shared: &Shared,
        key_id: &str,
        bucket: &str,
        budget: Budget,
    ) -> Decision {
        let now_ms = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()) as i64;
        let minute_period = Duration::from_secs(60);
        let day_period = Duration::from_secs(86_400);
        let step = |suffix: &str, limit: u32, period: Duration| {
            let bucket = format!("{bucket}:{suffix}");
            match shared {
                Shared::Database(store) => {
                    shared_cell(store, key_id, &bucket, limit, period, now_ms)
                        .map_err(|e| e.to_string())
                }
                Shared::Redis(pool) => redis_cell(pool, key_id, &bucket, limit, period),
            }
        };
        let refused = |limit: u32, period: Duration, wait_ms: i64| Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_secs: reset_secs(limit, 0, period),
            retry_after_secs: Some(ceil_secs(Duration::from_millis(wait_ms as u64)).max(1)),
        };
        let outcome = step("m", budget.per_minute, minute_period).and_then(|minute| {
            let Cell::Taken { remaining: m } = minute else {
                return Ok((minute, None));
            };
            step("d", budget.per_day, day_period)
                .map(|day| (Cell::Taken { remaining: m }, Some(day)))
        });
        match outcome {
            Ok((Cell::Refused { wait_ms }, _)) => {
                refused(budget.per_minute, minute_period, wait_ms)
            }
            Ok((_, Some(Cell::Refused { wait_ms }))) => {
                refused(budget.per_day, day_period, wait_ms)
            }
            Ok((Cell::Taken { remaining: m }, Some(Cell::Taken { remaining: d }))) => {
                allowed(budget, m, d)
            }
            Ok((Cell::Taken { .. }, None)) => {
                unreachable!("the day's bucket follows a taken minute")
            }
            Err(e) => {
                // The database is what every request needs anyway: the request will meet the
                // same failure in its own work. Let it through rather than refuse a key for it.
                tracing::warn!(error = %e, "shared rate bucket unavailable; request not limited");
                Decision {
                    allowed: true,
                    limit: budget.per_minute,
                    remaining: 0,
                    reset_secs: 0,
                    retry_after_secs: None,
                }
            }
        }
    }

    /// Counts one request of `key_id` against `budget` (bucket `bucket`). A budget changed since
    /// the bucket was made starts a fresh bucket.
    pub fn check(&self, key_id: &str, bucket: &str, budget: Budget) -> Decision {
        if let Some(shared) = &self.shared {
            return self.check_shared(shared, key_id, bucket, budget);
        }
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
                Ok(day) => allowed(
                    budget,
                    minute.remaining_burst_capacity(),
                    day.remaining_burst_capacity(),
                ),
            },
        }
    }

    /// Forgets the buckets of a key (revoked keys: they are refused before any bucket is
    /// consulted, and their Redis buckets expire by themselves within a day).
    pub fn forget(&self, key_id: &str) {
        if let Some(Shared::Database(store)) = &self.shared {
            if let Err(e) = store.autocommit(|c| store::shared::forget_buckets(c, key_id)) {
                tracing::warn!(error = %e, "forgetting a key's rate buckets failed");
            }
        }
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _), _| k != key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same behaviour whichever node of `nodes` each request reaches (round robin).
    fn burst_then_refusal(nodes: &[&RateLimiter]) {
        let mut turn = 0usize;
        let mut check = |key: &str, bucket: &str, b: Budget| {
            turn += 1;
            nodes[turn % nodes.len()].check(key, bucket, b)
        };
        let b = Budget {
            per_minute: 60,
            per_day: 50_000,
        };
        for i in 0..60 {
            let d = check("a", "*", b);
            assert!(d.allowed, "request {}", i + 1);
            assert_eq!((d.limit, d.remaining), (60, 59 - i));
        }
        let d = check("a", "*", b);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, Some(1));
        assert_eq!(d.reset_secs, 60);
        // Another key, and another bucket of the same key, are untouched.
        assert!(check("b", "*", b).allowed);
        assert!(check("a", "POST /v1/kyc/verify", b).allowed);
        // A day budget smaller than the minute's binds.
        let tight = Budget {
            per_minute: 10,
            per_day: 2,
        };
        assert_eq!(check("c", "*", tight).limit, 2);
        assert!(check("c", "*", tight).allowed);
        let d = check("c", "*", tight);
        assert!(!d.allowed && d.limit == 2 && d.retry_after_secs.unwrap() > 3600);
    }

    #[test]
    fn burst_then_refusal_with_retry_after_and_keys_independent() {
        burst_then_refusal(&[&RateLimiter::new()]);
    }

    #[test]
    fn two_nodes_sharing_the_database_share_each_budget() {
        let (_dir, store) = crate::store::test_store();
        let store = Arc::new(store);
        let (a, b) = (
            RateLimiter::shared(store.clone()),
            RateLimiter::shared(store.clone()),
        );
        burst_then_refusal(&[&a, &b]);
        a.forget("a");
        assert!(
            b.check(
                "a",
                "*",
                Budget {
                    per_minute: 60,
                    per_day: 50_000
                }
            )
            .allowed
        );
    }
}
