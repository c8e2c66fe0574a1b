//! Hardening (issue 16): operator floors bind the workflow, webhooks cannot reach internal
//! addresses, erasure by reference is complete, callbacks are signed with the tenant's own
//! callback secret and never for revoked keys. Each test here failed on the code before.

use kycd::store::Optional;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{contains_bytes, Key, TestApp};
use crate::workflow::{face_b64, passport_b64, receiver, submit, wait};

fn post(app: &TestApp, key: &Key, path: &str, body: Value) -> crate::common::Resp {
    app.signed(key, "POST", path, &serde_json::to_vec(&body).unwrap())
}

fn put_workflow(app: &TestApp, key: &Key, body: Value) -> crate::common::Resp {
    app.signed(
        key,
        "PUT",
        "/v1/workflow",
        &serde_json::to_vec(&body).unwrap(),
    )
}

#[test]
fn operator_floors_bind_the_tenants_workflow() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    // The findings' own bodies: any face pair would match, everyone would be accepted.
    let r = put_workflow(&app, &key, json!({ "thresholds": { "face_match": 0 } }));
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "thresholds.face_match");
    let r = put_workflow(
        &app,
        &key,
        json!({ "bands": { "accepted": 0, "review": 0 }, "rules": [] }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "bands.accepted");
    let r = put_workflow(&app, &key, json!({ "thresholds": { "liveness": 0.1 } }));
    assert_eq!(r.body["error"]["details"]["field"], "thresholds.liveness");
    // Dropping the spoof rule is refused too, and so is taking the face match's weight away
    // while dropping the rule that rejects a mismatch whatever it weighs.
    let r = put_workflow(&app, &key, json!({ "rules": [] }));
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "rules");
    let r = put_workflow(
        &app,
        &key,
        json!({ "weights": { "face_match": 0 },
                "rules": [{ "when": "spoof_detected", "decision": "rejected" }] }),
    );
    r.assert_error(422, "invalid_input");
    assert!(r.text.contains("face_mismatch"), "{}", r.text);
    // A stricter age rule than a floor's is as good as the floor's.
    let r = app.admin(
        "PUT",
        &format!("/tenants/{}/workflow-floors", key.tenant_id),
        Some(json!({ "rules": [
            { "when": "spoof_detected", "decision": "rejected" },
            { "when": "face_mismatch", "decision": "rejected" },
            { "when": "age_below", "value": 18, "decision": "rejected" }
        ] })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = put_workflow(
        &app,
        &key,
        json!({ "rules": [
            { "when": "spoof_detected", "decision": "rejected" },
            { "when": "face_mismatch", "decision": "rejected" },
            { "when": "age_below", "value": 21, "decision": "rejected" }
        ] }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // Stricter than the floors is fine; fields left out keep their defaults.
    let r = put_workflow(
        &app,
        &key,
        json!({ "thresholds": { "face_match": 0.8 }, "bands": { "accepted": 85, "review": 65 } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["bands"]["accepted"], 85);

    // The operator raises the face-match floor above what the tenant stored: it binds the
    // workflow as it binds /v1/face/match.
    let r = app.admin(
        "PUT",
        &format!("/tenants/{}/workflow-floors", key.tenant_id),
        Some(json!({ "face_match": 0.97, "bands": { "accepted": 90 } })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["bands"]["review"], 50,
        "a merge patch over the floors"
    );
    let effective = app.signed(&key, "GET", "/v1/workflow", b"");
    assert_eq!(
        effective.body["bands"]["accepted"], 90,
        "{}",
        effective.text
    );
    let face = effective.body["thresholds"]["face_match"].as_f64().unwrap();
    assert!((face - 0.97).abs() < 1e-6, "{face}");
    let (doc, _) = passport_b64(8, "obama.jpg", false);
    let job = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama2.jpg"), "document_front": doc }),
    );
    let result = wait(&app, &key, &job);
    let threshold = result["steps"]["face_match"]["threshold"].as_f64().unwrap();
    assert!((threshold - 0.97).abs() < 1e-6, "{result}");
    // A floor the operator sets is validated too.
    let r = app.admin(
        "PUT",
        &format!("/tenants/{}/workflow-floors", key.tenant_id),
        Some(json!({ "bands": { "review": 95 } })),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "bands.review");
}

#[test]
fn workflow_documents_are_bounded_and_audited_by_hash() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let rule = json!({ "when": "spoof_detected", "decision": "rejected" });
    let many: Vec<Value> = (0..33).map(|_| rule.clone()).collect();
    let r = put_workflow(&app, &key, json!({ "rules": many }));
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "rules");
    let r = put_workflow(
        &app,
        &key,
        json!({ "mandatory_fields": ["surname", "surname"] }),
    );
    assert_eq!(r.body["error"]["details"]["field"], "mandatory_fields[1]");
    let mut rules: Vec<Value> = (0..31).map(|_| rule.clone()).collect();
    rules.push(json!({ "when": "face_mismatch", "decision": "rejected" }));
    let r = put_workflow(&app, &key, json!({ "rules": rules }));
    assert_eq!(r.status, 200, "{}", r.text);
    let audit = app.signed(&key, "GET", "/v1/audit?q=%22workflow.update%22", b"");
    let details: Value =
        serde_json::from_str(audit.body["entries"][0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["rules"], 32, "{details}");
    assert_eq!(details["changed"], json!(["rules"]));
    assert_eq!(details["sha256"].as_str().unwrap().len(), 64);
    assert!(
        audit.body["entries"][0]["details"].as_str().unwrap().len() < 1024,
        "the audit entry is a summary, not the document"
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// The delivery log of a webhook endpoint, once its first delivery has an attempt.
fn first_attempt(app: &TestApp, key: &Key, hook: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = app.signed(key, "GET", &format!("/v1/webhooks/{hook}/deliveries"), b"");
        assert_eq!(log.status, 200, "{}", log.text);
        if log.body["data"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            return log.body["data"][0].clone();
        }
        assert!(Instant::now() < deadline, "no attempt: {}", log.text);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn webhooks_cannot_reach_internal_addresses() {
    let app = TestApp::spawn_with(|c| c.webhooks = Default::default());
    let key = app.tenant_with_key();
    let hook = |url: &str| post(&app, &key, "/v1/webhooks", json!({ "url": url }));
    for (url, why) in [
        ("http://hooks.example.com/kyc", "https"),
        ("https://127.0.0.1:9/kyc", "loopback"),
        ("https://localhost:9/kyc", "loopback"),
        ("https://[::1]:9/kyc", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("https://10.0.0.1/kyc", "private"),
        ("https://192.168.1.1/kyc", "private"),
        ("https://[::ffff:10.0.0.1]/kyc", "private"),
        ("https://0.0.0.0/kyc", "unspecified"),
    ] {
        let r = hook(url);
        r.assert_error(422, "invalid_input");
        assert_eq!(r.body["error"]["details"]["field"], "url");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(why),
            "{url}: {}",
            r.text
        );
    }
    // A job's callback_url is held to the same rules.
    let r = app.admin(
        "POST",
        &format!("/tenants/{}/callback-secret", key.tenant_id),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = post(
        &app,
        &key,
        "/v1/kyc/verify",
        json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"),
                "callback_url": "https://169.254.169.254/latest/meta-data/" }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "callback_url");
}

#[test]
fn an_allowed_loopback_receiver_still_cannot_reach_kycd_and_the_log_keeps_classes() {
    // The harness allows 127.0.0.0/8 over http (test receivers live there).
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let own = format!("{}/v1/ping", app.base);
    let r = post(&app, &key, "/v1/webhooks", json!({ "url": own }));
    r.assert_error(422, "invalid_input");
    assert!(r.text.contains("own listener"), "{}", r.text);

    // A closed port: the log says connect_failed, not the OS's words (a port-scan oracle).
    let closed = format!("http://127.0.0.1:{}/hook", closed_port());
    let r = post(&app, &key, "/v1/webhooks", json!({ "url": closed }));
    assert_eq!(r.status, 201, "{}", r.text);
    let hook = r.body["id"].as_str().unwrap().to_owned();
    let r = post(&app, &key, &format!("/v1/webhooks/{hook}/test"), json!({}));
    assert_eq!(r.status, 202);
    let d = first_attempt(&app, &key, &hook);
    assert_eq!(d["attempt_log"][0]["error"], "connect_failed", "{d}");
    assert_eq!(d["last_error"], "connect_failed", "{d}");
    let text = d.to_string().to_lowercase();
    assert!(
        !text.contains("refused") && !text.contains("os error"),
        "{text}"
    );

    // The name is judged again at every delivery: an endpoint whose address changed after it
    // was stored (DNS rebinding, simulated by editing the row) is not called.
    let (url, got) = receiver(0);
    let r = post(&app, &key, "/v1/webhooks", json!({ "url": url }));
    assert_eq!(r.status, 201, "{}", r.text);
    let hook = r.body["id"].as_str().unwrap().to_owned();
    app.write_store(|db| {
        db.execute(
            "UPDATE webhooks SET url = 'http://169.254.169.254/latest/meta-data/' WHERE id = ?1",
            kycd::store::params![hook],
        )
    });
    let r = post(&app, &key, &format!("/v1/webhooks/{hook}/test"), json!({}));
    assert_eq!(r.status, 202);
    let d = first_attempt(&app, &key, &hook);
    assert_eq!(d["attempt_log"][0]["error"], "blocked_address", "{d}");
    assert!(got.lock().unwrap().is_empty());
}

#[test]
fn erasure_by_reference_removes_every_trace_of_the_reference() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let put = app.signed(&key, "PUT", "/v1/workflow", br#"{"steps":["liveness"]}"#);
    assert_eq!(put.status, 200, "{}", put.text);
    // A reference that is not a usable subject id is refused: erasure goes by it.
    let r = post(
        &app,
        &key,
        "/v1/kyc/verify",
        json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"),
                "reference": "Jane Doe <jane@example.com>" }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "reference");

    let secret = app.admin(
        "POST",
        &format!("/tenants/{}/callback-secret", key.tenant_id),
        None,
    );
    assert_eq!(secret.status, 201);
    let (url, got) = receiver(0);
    let reference = "cust-8c1f2e9a-erase-me";
    let callback = format!("{url}?who={reference}");
    let job = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"),
                 "reference": reference, "callback_url": callback }),
    );
    assert_eq!(wait(&app, &key, &job)["status"], "completed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "callback not delivered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = app.signed(&key, "DELETE", &format!("/v1/subjects/{reference}"), b"");
    assert_eq!(r.status, 200, "{}", r.text);
    // Its key, its job and the callback delivery.
    assert!(
        r.body["deleted"]["records"].as_i64().unwrap() >= 3,
        "{}",
        r.text
    );
    let view = app.signed(&key, "GET", &format!("/v1/jobs/{job}"), b"");
    assert_eq!(view.body["reference"], Value::Null, "{}", view.text);
    assert_eq!(view.body["erased"], true);
    // No row names the reference any more (either engine)…
    let rows: i64 = app.with_store(|db| {
        db.query_row(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE reference = ?1 OR subject_id = ?1 \
                     OR callback_url LIKE '%' || ?1 || '%') \
                  + (SELECT COUNT(*) FROM webhook_deliveries WHERE subject_id = ?1 \
                     OR url LIKE '%' || ?1 || '%') \
                  + (SELECT COUNT(*) FROM subjects WHERE id = ?1) \
                  + (SELECT COUNT(*) FROM media WHERE subject_id = ?1)",
            kycd::store::params![reference],
            |r| r.get(0),
        )
    });
    assert_eq!(rows, 0);
    // …and on SQLite not a byte of it is left in the database files (PostgreSQL's pages are
    // reclaimed by its own vacuum, outside kycd's files).
    for name in ["kycd.db", "kycd.db-wal"] {
        let bytes = std::fs::read(app.data_path(name)).unwrap_or_default();
        assert!(
            !contains_bytes(&bytes, reference.as_bytes()),
            "{name} still holds the reference"
        );
    }
    // Erasing again is fine; erasing a subject never seen is 404.
    let r = app.signed(&key, "DELETE", &format!("/v1/subjects/{reference}"), b"");
    assert_eq!(r.status, 200, "{}", r.text);
    app.signed(&key, "DELETE", "/v1/subjects/never-seen", b"")
        .assert_error(404, "not_found");
}

#[test]
fn callbacks_are_signed_with_the_tenants_callback_secret_and_never_for_revoked_keys() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let put = app.signed(&key, "PUT", "/v1/workflow", br#"{"steps":["liveness"]}"#);
    assert_eq!(put.status, 200, "{}", put.text);
    let (url, got) = receiver(0);
    let body = json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"),
                       "callback_url": url });
    // No callback secret yet: refused rather than signed with the API key's secret.
    let r = post(&app, &key, "/v1/kyc/verify", body.clone());
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "callback_url");
    let r = post(&app, &key, "/v1/webhooks/callback-secret", json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let job = submit(&app, &key, &body);
    assert_eq!(wait(&app, &key, &job)["status"], "completed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "callback not delivered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (headers, payload) = got.lock().unwrap()[0].clone();
    let sig = &headers["x-kycd-signature"];
    let t: i64 = sig.split(',').next().unwrap()[2..].parse().unwrap();
    assert_eq!(
        sig,
        &kycd::workflow::webhooks::signature(secret.as_bytes(), t, &payload),
        "signed with the callback secret"
    );
    assert_ne!(
        sig,
        &kycd::workflow::webhooks::signature(key.secret.as_bytes(), t, &payload),
        "not with the API key's secret"
    );

    // A job whose key is revoked before its callback goes out: nothing is sent.
    let other = app.create_key(&key.tenant_id);
    let (url2, got2) = receiver(0);
    let job = submit(
        &app,
        &other,
        &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"),
                 "callback_url": url2 }),
    );
    let r = app.admin("POST", &format!("/keys/{}/revoke", other.key_id), None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(wait(&app, &key, &job)["status"], "completed");
    let deadline = Instant::now() + Duration::from_secs(20);
    let class = loop {
        let class: Option<String> = app.with_store(|db| {
            db.query_row(
                "SELECT a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
                 WHERE d.url = ?1 ORDER BY a.attempt LIMIT 1",
                kycd::store::params![url2],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        });
        if class.is_some() || Instant::now() > deadline {
            break class;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(class.as_deref(), Some("key_revoked"));
    assert!(
        got2.lock().unwrap().is_empty(),
        "nothing reaches the receiver"
    );
}

#[test]
fn webhook_endpoints_and_their_events_are_bounded() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let (url, _got) = receiver(0);
    let r = post(
        &app,
        &key,
        "/v1/webhooks",
        json!({ "url": url, "events": ["kyc.completed", "kyc.completed"] }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "events[1]");
    for _ in 0..20 {
        let r = post(&app, &key, "/v1/webhooks", json!({ "url": url }));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = post(&app, &key, "/v1/webhooks", json!({ "url": url }));
    r.assert_error(422, "invalid_input");
    assert!(r.text.contains("at most 20"), "{}", r.text);
}
