//! Request bodies of every route that takes one, through the real server (signed as a tenant's
//! back end would, so the handlers run): the first byte picks the route, the rest is the body.
//! Any 5xx or error outside the envelope fails the run.
#![no_main]

use kycd_fuzz::{assert_not_a_server_fault, server};
use libfuzzer_sys::fuzz_target;

/// Every route with a body (and the GETs with a query), as `(method, path)`.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/liveness/analyze"),
    ("POST", "/v1/face/match"),
    ("POST", "/v1/document/validate"),
    ("POST", "/v1/document/ocr"),
    ("POST", "/v1/kyc/verify"),
    ("PUT", "/v1/workflow"),
    ("POST", "/v1/webhooks"),
    ("POST", "/v1/webhooks/callback-secret"),
    ("POST", "/v1/subjects/fuzz-subject/media"),
    ("DELETE", "/v1/subjects/fuzz-subject"),
    ("GET", "/v1/jobs?status=queued&limit=5"),
    ("GET", "/v1/audit?q=key&limit=5"),
    ("GET", "/v1/usage?month=2026-12"),
    ("POST", "/process_face"),
    ("POST", "/admin/v1/tenants"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, path) = ROUTES[usize::from(pick) % ROUTES.len()];
    let s = server();
    let (status, text) = if path.starts_with("/admin/") {
        s.send_raw(
            method,
            path,
            &[
                ("Authorization", "Bearer fuzz-admin-token-0123456789".into()),
                ("Content-Type", "application/json".into()),
            ],
            body,
        )
    } else {
        s.send(method, path, "application/json", body)
    };
    assert_not_a_server_fault(method, path, status, &text);
});
