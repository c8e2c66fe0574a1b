//! MRZ parse + validate throughput on one core (issue goal: ≥ 1 million TD3 per second).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kycd::document::mrz::MrzInput;
use kycd::document::validate::{validate, ValidateOptions};

fn bench(c: &mut Criterion) {
    let opts = ValidateOptions::new(time::macros::date!(2026 - 11 - 23));
    let td3 = MrzInput::Text(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10".into(),
    );
    let td1 = MrzInput::Text(
        "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<".into(),
    );
    let ocr_td3 = MrzInput::Text(
        "P<UT0ERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UT07408122F1204159ZE184226B<<<<<10".into(),
    );
    let mut group = c.benchmark_group("mrz_validate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("td3", |b| {
        b.iter(|| validate(black_box(&td3), None, &opts).unwrap())
    });
    group.bench_function("td1", |b| {
        b.iter(|| validate(black_box(&td1), None, &opts).unwrap())
    });
    group.bench_function("td3_ocr_repair", |b| {
        b.iter(|| validate(black_box(&ocr_td3), None, &opts).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
