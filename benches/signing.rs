//! Signature verification cost: the canonical string, HMAC-SHA256 and the constant-time compare,
//! plus the body digest for a small JSON body and for a 1 MB image upload.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kycd::auth::signing;

fn bench(c: &mut Criterion) {
    let secret = b"sk_3q2-7wEVKjXnBWdX0Tq0m1uL6jzPGvZ8cWk9yQ1sJdA";
    let digest = signing::body_digest(b"");
    let canonical = signing::canonical_string("1700000000", "GET", "/v1/ping", &digest, None);
    let sig = signing::sign(secret, &canonical);

    c.bench_function("verify_get_ping", |b| {
        b.iter(|| {
            let canonical = signing::canonical_string(
                black_box("1700000000"),
                "GET",
                black_box("/v1/ping"),
                &digest,
                None,
            );
            assert!(signing::verify(secret, &canonical, black_box(&sig)));
        })
    });

    // The whole check a request pays: key row from SQLite, secret unsealed, HMAC, replay cache.
    // Each iteration signs anew (≈0.5 µs of the figure) with a fresh nonce so none is a replay.
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        kycd::store::Store::open(
            &dir.path().join("kycd.db"),
            kycd::store::crypto::MasterKey::generate(),
        )
        .unwrap(),
    );
    let tenant = kycd::tenancy::create_tenant(&store, "bench", "free", "bench").unwrap();
    let key = kycd::auth::keys::create_key(&store, &tenant.id, None, false, "bench").unwrap();
    let auth = kycd::auth::Authenticator::new(store, &kycd::config::AuthConfig::default());
    let now = 1_700_000_000i64;
    let ts = now.to_string();
    let mut n = 0u64;
    c.bench_function("authenticate_full", |b| {
        b.iter(|| {
            n += 1;
            let nonce = n.to_string();
            let canonical =
                signing::canonical_string(&ts, "GET", "/v1/ping", &digest, Some(&nonce));
            let sig = signing::sign(key.secret.as_bytes(), &canonical);
            let parts = kycd::auth::SignedParts {
                key_id: &key.key.id,
                timestamp: &ts,
                signature: &sig,
                nonce: Some(&nonce),
                method: "GET",
                path_with_query: "/v1/ping",
                body_digest: &digest,
            };
            auth.authenticate(&parts, now).unwrap()
        })
    });

    let mut group = c.benchmark_group("body_digest");
    for size in [1_024usize, 1_048_576] {
        let body = vec![b'a'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{size}_bytes"), |b| {
            b.iter(|| signing::body_digest(black_box(&body)))
        });
    }
    group.finish();
}

/// What refusing replays costs a request: the in-memory set alone, and with the journal that
/// makes it survive a restart (one SQLite append per accepted signature).
fn replay(c: &mut Criterion) {
    use kycd::auth::replay::{Journal, ReplayCache};
    let mut group = c.benchmark_group("replay_first_use");
    let memory = ReplayCache::new(600);
    let mut n = 0u64;
    group.bench_function("memory", |b| {
        b.iter(|| {
            n += 1;
            assert!(memory
                .first_use("ak_bench", &n.to_string(), 1_700_000_000)
                .unwrap())
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("replay.db")).unwrap();
    let durable = ReplayCache::durable(600, journal, 1_700_000_000).unwrap();
    group.bench_function("journal", |b| {
        b.iter(|| {
            n += 1;
            assert!(durable
                .first_use("ak_bench", &n.to_string(), 1_700_000_000)
                .unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench, replay);
criterion_main!(benches);
