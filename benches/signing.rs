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

criterion_group!(benches, bench);
criterion_main!(benches);
