//! The error envelope on every kind of failure, and the probes.

use crate::common::{with_json, TestApp, ADMIN_TOKEN};

#[test]
fn probes_answer() {
    let app = TestApp::spawn();
    let r = app.raw("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    let r = app.raw("GET", "/readyz", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
}

#[test]
fn unknown_routes_and_methods_are_json() {
    let app = TestApp::spawn();
    app.raw("GET", "/nope", &[], b"")
        .assert_error(404, "route_not_found");
    app.raw("DELETE", "/healthz", &[], b"")
        .assert_error(405, "method_not_allowed");
    let auth = [("Authorization", format!("Bearer {ADMIN_TOKEN}"))];
    app.raw("GET", "/admin/v1/nothing", &auth, b"")
        .assert_error(404, "route_not_found");
    app.raw("PUT", "/admin/v1/tenants", &auth, b"")
        .assert_error(405, "method_not_allowed");
}

#[test]
fn malformed_json_is_400_with_the_position() {
    let app = TestApp::spawn();
    let auth = vec![("Authorization", format!("Bearer {ADMIN_TOKEN}"))];
    let body = b"{\"name\": \"Acme\",\n  oops}";
    let r = app.raw(
        "POST",
        "/admin/v1/tenants",
        &with_json(auth.clone(), body),
        body,
    );
    r.assert_error(400, "invalid_json");
    assert_eq!(r.body["error"]["details"]["line"], 2);
    assert!(r.body["error"]["details"]["column"].as_u64().unwrap() > 0);

    let body = br#"{"name": 42}"#;
    app.raw(
        "POST",
        "/admin/v1/tenants",
        &with_json(auth.clone(), body),
        body,
    )
    .assert_error(422, "invalid_input");
    let body = br#"{"name": "Acme", "plan": "gold"}"#;
    let r = app.raw(
        "POST",
        "/admin/v1/tenants",
        &with_json(auth.clone(), body),
        body,
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "plan");
    let mut text = auth.clone();
    text.push(("Content-Type", "text/plain".into()));
    app.raw("POST", "/admin/v1/tenants", &text, b"{}")
        .assert_error(415, "unsupported_media_type");
}

#[test]
fn oversized_bodies_are_413_before_auth_work() {
    let app = TestApp::spawn_with(|c| c.http.max_body_bytes = 4096);
    let key = app.tenant_with_key();
    let body = vec![b'a'; 5000];
    app.signed(&key, "POST", "/v1/ping", &body)
        .assert_error(413, "payload_too_large");
    // Without a known key or a sane clock the body is never read: 401, not 413.
    let mut stranger = key.clone();
    stranger.key_id = "ak_unknown".into();
    app.signed(&stranger, "POST", "/v1/ping", &body)
        .assert_error(401, "unknown_key");
    let h = crate::common::sign_headers(&key, "POST", "/v1/ping", &body, 0, Some("old"));
    app.raw("POST", "/v1/ping", &h, &body)
        .assert_error(401, "timestamp_out_of_range");
}

#[test]
fn request_ids_from_a_proxy_are_kept_and_bad_ones_replaced() {
    let app = TestApp::spawn();
    let r = app.raw(
        "GET",
        "/nope",
        &[("X-Request-Id", "proxy-abc-12345".into())],
        b"",
    );
    assert_eq!(r.request_id.as_deref(), Some("proxy-abc-12345"));
    assert_eq!(r.body["error"]["trace_id"], "proxy-abc-12345");
    let r = app.raw(
        "GET",
        "/healthz",
        &[("X-Request-Id", "bad id with spaces".into())],
        b"",
    );
    assert!(r.request_id.unwrap().starts_with("req_"));
}
