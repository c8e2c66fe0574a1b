//! Audit search over HTTP and `kycd audit verify` against tampering.

use std::process::Command;

use serde_json::Value;

use crate::common::TestApp;

fn kycd(app: &TestApp, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kycd"))
        .arg("--data-dir")
        .arg(app.data_dir.path())
        .envs(crate::common::store_env(std::path::Path::new(
            &app.data_dir.path(),
        )))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn operators_search_everything_tenants_only_their_own() {
    let app = TestApp::spawn();
    let a = app.tenant_with_key();
    let b = app.tenant_with_key();
    app.admin("POST", &format!("/keys/{}/revoke", b.key_id), None);

    let r = app.admin("GET", "/audit?q=revoke", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let entries = r.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "key.revoke");
    assert_eq!(entries[0]["target"], b.key_id.as_str());
    assert_eq!(entries[0]["hash"].as_str().unwrap().len(), 64);

    let r = app.admin("GET", &format!("/audit?tenant={}", a.tenant_id), None);
    assert_eq!(
        r.body["entries"].as_array().unwrap().len(),
        2,
        "tenant.create + key.create"
    );
    let r = app.admin(
        "GET",
        "/audit?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z",
        None,
    );
    assert!(r.body["entries"].as_array().unwrap().is_empty());
    app.admin("GET", "/audit?q=%22unbalanced", None)
        .assert_error(400, "invalid_query");
    app.admin("GET", "/audit?from=yesterday", None)
        .assert_error(400, "invalid_query");

    let r = app.signed(&a, "GET", "/v1/audit", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    let mine = r.body["entries"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["tenant_id"] == a.tenant_id.as_str()));
    app.signed(&a, "GET", &format!("/v1/audit?tenant={}", b.tenant_id), b"")
        .assert_error(400, "invalid_query");
}

#[test]
fn audit_verify_names_the_edited_and_the_deleted_entry() {
    let app = TestApp::spawn();
    for _ in 0..3 {
        app.tenant_with_key(); // 2 entries each
    }
    let (code, out) = kycd(&app, &["audit", "verify", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 6);

    let (code, out) = kycd(&app, &["audit", "export"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 6);

    // Tamper with the database directly, as someone with disk or superuser access could.
    let triggers_off = if app.database.is_some() {
        "ALTER TABLE audit_log DISABLE TRIGGER USER;"
    } else {
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
    };
    app.write_store(|db| {
        db.execute_batch(&format!(
            "{triggers_off}
             UPDATE audit_log SET details = '{{\"plan\":\"free\"}}' WHERE seq = 3;
             DELETE FROM audit_log WHERE seq = 5;"
        ))
    });
    let (code, out) = kycd(&app, &["audit", "verify", "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(
        v["breaks"],
        serde_json::json!([
            { "problem": "edited", "seq": 3 },
            { "problem": "missing", "from_seq": 5, "to_seq": 5 }
        ])
    );
    let (_, text) = kycd(&app, &["audit", "verify"]);
    assert!(text.contains("BROKEN"), "{text}");
}
