//! What metering adds to a billable request: the plan read, a quota reservation, the usage row
//! with its counter and price (one SQLite transaction), and a rate-limit check.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use kycd::tenancy::meter::{Meter, Payer};
use kycd::tenancy::plans::{Budget, Module};
use kycd::tenancy::ratelimit::RateLimiter;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        kycd::store::Store::open(
            &dir.path().join("kycd.db"),
            kycd::store::crypto::MasterKey::generate(),
        )
        .unwrap(),
    );
    // Enterprise: a quota large enough for every iteration.
    let tenant = kycd::tenancy::create_tenant(&store, "bench", "enterprise", "bench").unwrap();
    let meter = Meter::new(store.clone());
    let payer = Payer {
        tenant_id: &tenant.id,
        key_id: Some("ak_bench"),
        sandbox: false,
    };
    let modules = [Module::Validation];
    let now = kycd::store::now();

    c.bench_function("meter_reserve_release", |b| {
        b.iter(|| drop(meter.reserve(&tenant.id, &modules, false, now).unwrap()))
    });
    let mut n = 0u64;
    c.bench_function("meter_reserve_record", |b| {
        b.iter(|| {
            n += 1;
            let r = meter.reserve(&tenant.id, &modules, false, now).unwrap();
            meter
                .record(r, &format!("req{n}"), payer, &modules)
                .unwrap();
        })
    });

    let limiter = RateLimiter::new();
    let budget = Budget {
        per_minute: u32::MAX,
        per_day: u32::MAX,
    };
    c.bench_function("rate_limit_check", |b| {
        b.iter(|| assert!(limiter.check("ak_bench", "*", budget).allowed))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
