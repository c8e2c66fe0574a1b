//! The operator API: token checks, tenants and keys, and the audit trail they leave.

use serde_json::json;

use crate::common::TestApp;

#[test]
fn admin_routes_need_the_operator_token() {
    let app = TestApp::spawn();
    app.raw("GET", "/admin/v1/tenants", &[], b"")
        .assert_error(401, "missing_auth");
    app.raw(
        "GET",
        "/admin/v1/tenants",
        &[("Authorization", "Bearer nope".into())],
        b"",
    )
    .assert_error(401, "invalid_admin_token");
    app.raw(
        "GET",
        "/admin/v1/tenants",
        &[("Authorization", "Basic x".into())],
        b"",
    )
    .assert_error(401, "invalid_admin_token");
}

#[test]
fn tenants_and_keys_lifecycle() {
    let app = TestApp::spawn();
    let r = app.admin(
        "POST",
        "/tenants",
        Some(json!({ "name": "Bank A", "plan": "pro" })),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let tenant = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["plan"], "pro");
    assert_eq!(r.body["status"], "active");

    let r = app.admin("GET", "/tenants", None);
    assert_eq!(r.body["tenants"].as_array().unwrap().len(), 1);
    let r = app.admin("GET", &format!("/tenants/{tenant}"), None);
    assert_eq!(r.body["name"], "Bank A");
    app.admin("GET", "/tenants/ten_missing", None)
        .assert_error(404, "not_found");

    let key = app.create_key(&tenant);
    assert!(key.secret.starts_with("sk_"));
    let r = app.admin("GET", &format!("/tenants/{tenant}/keys"), None);
    let keys = r.body["keys"].as_array().expect(&r.text);
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].get("secret").is_none(),
        "secrets are shown only once"
    );
    assert!(!r.text.contains(&key.secret));
    app.admin("POST", "/tenants/ten_missing/keys", None)
        .assert_error(404, "not_found");
    app.admin("POST", "/keys/ak_missing/revoke", None)
        .assert_error(404, "not_found");
}
