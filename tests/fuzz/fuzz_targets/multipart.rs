//! Multipart forms, through the real server: the media upload (signed) and FacePhi's
//! `evaluate` and `extract`; the first byte picks the route, the rest is the body under a
//! fixed boundary. Any 5xx or error outside the envelope fails the run.
#![no_main]

use kycd_fuzz::{assert_not_a_server_fault, server};
use libfuzzer_sys::fuzz_target;

const ROUTES: &[&str] = &[
    "/v1/subjects/fuzz-subject/media",
    "/api/v1/iad/liveness/evaluate",
    "/api/v1/iad/extract",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let path = ROUTES[usize::from(pick) % ROUTES.len()];
    let (status, text) = server().send(
        "POST",
        path,
        "multipart/form-data; boundary=kycdfuzzboundary",
        body,
    );
    assert_not_a_server_fault("POST", path, status, &text);
});
