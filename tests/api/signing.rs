//! Request signing (DESIGN.md §4): every way a signed request can be wrong.

use crate::common::{contains_bytes, files_under, now, sign_headers, with_json, TestApp};

#[test]
fn signed_ping_names_the_caller() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = app.signed(&key, "GET", "/v1/ping", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tenant_id"], key.tenant_id.as_str());
    assert_eq!(r.body["key_id"], key.key_id.as_str());
    assert!(r.request_id.is_some());
}

#[test]
fn missing_headers_are_missing_auth() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    app.raw("GET", "/v1/ping", &[], b"")
        .assert_error(401, "missing_auth");
    // Each header alone missing.
    let all = sign_headers(&key, "GET", "/v1/ping", b"", now(), None);
    for skip in 0..3 {
        let partial: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| h.clone())
            .collect();
        let r = app.raw("GET", "/v1/ping", &partial, b"");
        r.assert_error(401, "missing_auth");
        assert_eq!(r.body["error"]["details"]["header"], all[skip].0);
    }
}

#[test]
fn one_wrong_byte_in_body_or_path_is_invalid_signature() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let body = br#"{"name":"Anna"}"#;

    // Untouched, the signature holds: the request gets past auth to routing (405: ping is GET).
    let h = sign_headers(&key, "POST", "/v1/ping", body, now(), Some("a"));
    app.raw("POST", "/v1/ping", &with_json(h, body), body)
        .assert_error(405, "method_not_allowed");

    let h = sign_headers(&key, "POST", "/v1/ping", body, now(), Some("b"));
    let tampered = br#"{"name":"Anna!"}"#;
    let tampered = &tampered[..body.len()]; // same length, one byte differs
    assert_ne!(tampered, body);
    app.raw("POST", "/v1/ping", &with_json(h, tampered), tampered)
        .assert_error(401, "invalid_signature");

    let h = sign_headers(&key, "GET", "/v1/ping", b"", now(), Some("c"));
    app.raw("GET", "/v1/pinG", &h, b"")
        .assert_error(401, "invalid_signature");

    let h = sign_headers(&key, "GET", "/v1/ping?a=1", b"", now(), Some("d"));
    app.raw("GET", "/v1/ping?a=2", &h, b"")
        .assert_error(401, "invalid_signature");

    let h = sign_headers(&key, "GET", "/v1/ping", b"", now(), Some("e"));
    app.raw("DELETE", "/v1/ping", &h, b"")
        .assert_error(401, "invalid_signature");

    let mut wrong_secret = key.clone();
    wrong_secret.secret.push('x');
    let h = sign_headers(&wrong_secret, "GET", "/v1/ping", b"", now(), Some("f"));
    app.raw("GET", "/v1/ping", &h, b"")
        .assert_error(401, "invalid_signature");
}

#[test]
fn timestamps_beyond_300_seconds_are_refused() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    for ts in [now() - 301, now() + 301, now() - 100_000] {
        let h = sign_headers(&key, "GET", "/v1/ping", b"", ts, None);
        let r = app.raw("GET", "/v1/ping", &h, b"");
        r.assert_error(401, "timestamp_out_of_range");
        assert!(r.body["error"]["details"]["server_time"].is_i64());
    }
    // Within the window on both sides.
    for (ts, n) in [(now() - 290, "x"), (now() + 290, "y")] {
        let h = sign_headers(&key, "GET", "/v1/ping", b"", ts, Some(n));
        assert_eq!(app.raw("GET", "/v1/ping", &h, b"").status, 200);
    }
    let mut h = sign_headers(&key, "GET", "/v1/ping", b"", now(), None);
    h[1].1 = "yesterday".into();
    app.raw("GET", "/v1/ping", &h, b"")
        .assert_error(401, "invalid_auth_header");
}

#[test]
fn the_same_signed_request_twice_is_a_replay_unless_nonced() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let h = sign_headers(&key, "GET", "/v1/ping", b"", now(), None);
    assert_eq!(app.raw("GET", "/v1/ping", &h, b"").status, 200);
    app.raw("GET", "/v1/ping", &h, b"")
        .assert_error(401, "replayed_request");

    // Same second, same request, different nonces: both accepted.
    let ts = now();
    for nonce in ["poll-1", "poll-2"] {
        let h = sign_headers(&key, "GET", "/v1/ping", b"", ts, Some(nonce));
        assert_eq!(app.raw("GET", "/v1/ping", &h, b"").status, 200);
    }
    // A nonce is part of the signature: changing it breaks it.
    let mut h = sign_headers(&key, "GET", "/v1/ping", b"", ts, Some("poll-3"));
    h[3].1 = "poll-4".into();
    app.raw("GET", "/v1/ping", &h, b"")
        .assert_error(401, "invalid_signature");
    let h = sign_headers(&key, "GET", "/v1/ping", b"", ts, Some(&"n".repeat(65)));
    app.raw("GET", "/v1/ping", &h, b"")
        .assert_error(401, "invalid_auth_header");
}

#[test]
fn revoked_keys_and_suspended_tenants_are_refused() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let other = app.create_key(&key.tenant_id);
    assert_eq!(app.signed(&key, "GET", "/v1/ping", b"").status, 200);

    let r = app.admin("POST", &format!("/keys/{}/revoke", key.key_id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    app.signed(&key, "GET", "/v1/ping", b"")
        .assert_error(401, "key_revoked");
    assert_eq!(
        app.signed(&other, "GET", "/v1/ping", b"").status,
        200,
        "other key unaffected"
    );
    app.admin("POST", &format!("/keys/{}/revoke", key.key_id), None)
        .assert_error(409, "conflict");

    let r = app.admin("POST", &format!("/tenants/{}/suspend", key.tenant_id), None);
    assert_eq!(r.body["status"], "suspended");
    app.signed(&other, "GET", "/v1/ping", b"")
        .assert_error(403, "tenant_suspended");
    app.admin(
        "POST",
        &format!("/tenants/{}/activate", key.tenant_id),
        None,
    );
    assert_eq!(app.signed(&other, "GET", "/v1/ping", b"").status, 200);

    app.raw(
        "GET",
        "/v1/ping",
        &sign_headers(
            &crate::common::Key {
                key_id: "ak_unknown".into(),
                ..other.clone()
            },
            "GET",
            "/v1/ping",
            b"",
            now(),
            None,
        ),
        b"",
    )
    .assert_error(401, "unknown_key");
}

#[test]
fn key_secrets_never_reach_the_disk_in_plaintext() {
    let app = TestApp::spawn();
    let keys: Vec<_> = (0..3).map(|_| app.tenant_with_key()).collect();
    for k in &keys {
        assert_eq!(app.signed(k, "GET", "/v1/ping", b"").status, 200);
    }
    let files = files_under(app.data_dir.path());
    assert!(app.database.is_some() || files.iter().any(|f| f.ends_with("kycd.db")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for k in &keys {
            assert!(
                !contains_bytes(&bytes, k.secret.as_bytes()),
                "secret found in {}",
                file.display()
            );
            // Nor its random part alone.
            assert!(!contains_bytes(&bytes, &k.secret.as_bytes()[3..]));
        }
    }
}
