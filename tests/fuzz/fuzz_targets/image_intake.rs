//! Image intake: any bytes (JPEG, PNG, WebP or anything else) and any base64 text through the
//! one path an image takes into kycd. Must never panic nor allocate beyond its limits (the
//! pixel limit is smaller here than in production so the fuzzer stays fast).
#![no_main]

use kycd::media::intake::{decode_base64, load, IntakeLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = IntakeLimits {
        max_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    let _ = load(data, &limits);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = decode_base64(text, &limits) {
            let _ = load(&bytes, &limits);
        }
    }
});
