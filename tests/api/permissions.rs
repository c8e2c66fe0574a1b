//! Permissions on every `/v1` route and tenant isolation, both walked from the route table: a
//! route added later is covered without editing these tests (or fails them until it states
//! what it needs).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{Key, Resp, TestApp, ALL_PERMISSIONS};

/// Every documented `(method, path)` under `/v1`, with the need the OpenAPI document declares.
/// The openapi test proves every registered route is documented, so this is the route table.
fn v1_operations(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let spec = app.raw("GET", "/openapi.json", &[], b"");
    assert_eq!(spec.status, 200);
    let mut out = Vec::new();
    for (path, item) in spec.body["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let need = op["security"][0]["X-API-SIGN"][0]
                .as_str()
                .map(str::to_owned);
            out.push((method.to_uppercase(), path.clone(), need));
        }
    }
    // The route table as the server registered it: every /v1 path is walked.
    let registered: Vec<String> = kycd::http::openapi::registered_routes()
        .into_iter()
        .filter(|p| p.starts_with("/v1/"))
        .collect();
    for p in &registered {
        assert!(
            out.iter().any(|(_, path, _)| path == p),
            "{p} is registered but not walked"
        );
    }
    assert!(out.len() >= 20, "only {} operations", out.len());
    out
}

/// `path` with every `{param}` replaced by `fill(param name, path)`.
fn fill_path(path: &str, fill: &dyn Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(&fill(&rest[start + 1..end], path));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn call(app: &TestApp, key: &Key, method: &str, path: &str) -> Resp {
    let body: &[u8] = if matches!(method, "POST" | "PUT" | "PATCH") {
        b"{}"
    } else {
        b""
    };
    app.signed(key, method, path, body)
}

const MODULES: [&str; 4] = ["liveness", "ocr", "validation", "face_match"];

#[test]
fn every_v1_route_refuses_a_key_without_its_permission_and_admits_one_with_it() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Walker");
    // Keys that hold nothing but one module each.
    let bare = |module: &str| {
        app.create_key_with(&tenant, json!({ "scopes": [module], "permissions": [] }))
    };
    let only_validation = bare("validation");
    let only_ocr = bare("ocr");
    let ops = v1_operations(&app);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (method, path, need) in &ops {
        let url = fill_path(path, &|_, _| "id_that_does_not_exist".into());
        match need.as_deref() {
            None if path == "/v1/ping" => {
                let r = call(&app, &only_validation, method, &url);
                assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
                continue;
            }
            None if path == "/v1/kyc/verify" => {
                // Needs every module of the tenant's workflow (all four by default), judged
                // once the body has its shape.
                let body = br#"{"selfie":"","document_front":""}"#;
                let r = app.signed(&only_validation, method, &url, body);
                r.assert_error(403, "forbidden_module");
                continue;
            }
            None => panic!("{method} {path} states no permission in the OpenAPI document"),
            Some(m) if MODULES.contains(&m) => {
                let lacking = if m == "validation" {
                    &only_ocr
                } else {
                    &only_validation
                };
                let r = call(&app, lacking, method, &url);
                r.assert_error(403, "forbidden_module");
                assert_eq!(r.body["error"]["details"]["module"], m, "{method} {path}");
                let holding = bare(m);
                let r = call(&app, &holding, method, &url);
                assert_ne!(r.status, 403, "{method} {path} with {m}: {}", r.text);
            }
            Some(p) => {
                assert!(ALL_PERMISSIONS.contains(&p), "{method} {path}: unknown {p}");
                let r = call(&app, &only_validation, method, &url);
                r.assert_error(403, "forbidden_scope");
                assert_eq!(
                    r.body["error"]["details"]["permission"], p,
                    "{method} {path}: the server's need equals the documented one"
                );
                let holding = app.create_key_with(
                    &tenant,
                    json!({ "scopes": ["validation"], "permissions": [p] }),
                );
                let r = call(&app, &holding, method, &url);
                assert_ne!(r.status, 403, "{method} {path} with {p}: {}", r.text);
                assert_ne!(r.status, 401, "{method} {path} with {p}: {}", r.text);
            }
        }
        *seen.entry(need.clone().unwrap_or_default()).or_default() += 1;
    }
    // Management is never granted by default: a key created without a list reads only its own
    // results.
    let default_key = app.create_key_with(&tenant, json!({}));
    let r = app.admin("GET", &format!("/tenants/{tenant}/keys"), None);
    let listed = r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == default_key.key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["permissions"], json!(["results:read"]));
    for (method, path, body) in [
        (
            "PUT",
            "/v1/workflow",
            json!({"bands": {"accepted": 0, "review": 0}, "rules": []}),
        ),
        (
            "POST",
            "/v1/webhooks",
            json!({"url": "https://hooks.example.com/x"}),
        ),
        ("GET", "/v1/media/med_x", Value::Null),
        ("DELETE", "/v1/subjects/someone", Value::Null),
        ("GET", "/v1/audit", Value::Null),
        ("GET", "/v1/usage", Value::Null),
    ] {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        app.signed(&default_key, method, path, &bytes)
            .assert_error(403, "forbidden_scope");
    }
    eprintln!("routes walked by need: {seen:?}");
}

#[test]
fn sandbox_keys_never_change_live_configuration() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant_on("Sandboxed", "pro");
    // Refused at creation, naming the field.
    let r = app.admin(
        "POST",
        &format!("/tenants/{tenant}/keys"),
        Some(
            json!({ "environment": "sandbox", "permissions": ["results:read", "workflow:write"] }),
        ),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "permissions[1]");
    // A live key granted workflow:write that becomes a sandbox key when its tenant moves to Free
    // keeps its list, and is refused all the same.
    let key = app.create_key_with(&tenant, json!({ "permissions": ["workflow:write"] }));
    let body = br#"{"bands":{"accepted":90,"review":70}}"#;
    assert_eq!(app.signed(&key, "PUT", "/v1/workflow", body).status, 200);
    let r = app.admin(
        "PUT",
        &format!("/tenants/{tenant}/plan"),
        Some(json!({ "plan": "free" })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.signed(&key, "PUT", "/v1/workflow", body);
    r.assert_error(403, "forbidden_scope");
    assert!(r.body["error"]["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("sandbox"));
}

#[test]
fn grants_are_changed_by_the_operator_and_audited() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Granted");
    let key = app.create_key_with(&tenant, json!({}));
    let r = app.signed(&key, "GET", "/v1/usage", b"");
    r.assert_error(403, "forbidden_scope");
    let r = app.admin(
        "PATCH",
        &format!("/keys/{}", key.key_id),
        Some(json!({ "permissions": ["usage:read"], "scopes": ["ocr"] })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["permissions"], json!(["usage:read"]));
    assert_eq!(r.body["scopes"], json!(["ocr"]));
    assert_eq!(app.signed(&key, "GET", "/v1/usage", b"").status, 200);
    // Results were dropped from the list: even its own jobs are now out of reach.
    app.signed(&key, "GET", "/v1/jobs", b"")
        .assert_error(403, "forbidden_scope");
    let r = app.admin(
        "PATCH",
        &format!("/keys/{}", key.key_id),
        Some(json!({ "permissions": ["usage:reed"] })),
    );
    r.assert_error(422, "invalid_input");
    let audit = app.admin("GET", "/audit?q=%22key.grants%22", None);
    let entry = &audit.body["entries"][0];
    assert_eq!(entry["action"], "key.grants", "{}", audit.text);
    assert_eq!(entry["target"], key.key_id.as_str());
    let details: Value = serde_json::from_str(entry["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["permissions"]["after"], json!(["usage:read"]));
    assert_eq!(details["permissions"]["before"], json!(["results:read"]));
}

/// Base64 of a fixture face.
fn face_b64(name: &str) -> String {
    use base64::Engine;
    let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

#[test]
fn a_key_reads_its_own_results_and_results_read_all_reads_the_tenants() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Results");
    let submitter = app.create_key_with(&tenant, json!({}));
    let other = app.create_key_with(&tenant, json!({}));
    let auditor = app.create_key_with(&tenant, json!({ "permissions": ["results:read_all"] }));
    let body = json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama2.jpg") });
    let r = app.signed(
        &submitter,
        "POST",
        "/v1/kyc/verify",
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.body["job_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/jobs/{job}");
    assert_eq!(app.signed(&submitter, "GET", &path, b"").status, 200);
    app.signed(&other, "GET", &path, b"")
        .assert_error(404, "not_found");
    assert_eq!(app.signed(&auditor, "GET", &path, b"").status, 200);
    let listed = |k: &Key| {
        let r = app.signed(k, "GET", "/v1/jobs", b"");
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["data"].as_array().unwrap().len()
    };
    assert_eq!(listed(&submitter), 1);
    assert_eq!(listed(&other), 0);
    assert_eq!(listed(&auditor), 1);
}

#[test]
fn tenant_b_gets_404_for_every_id_of_tenant_a() {
    let app = TestApp::spawn();
    let a = app.tenant_with_key();
    let b = app.tenant_with_key();
    // Tenant A's objects: a job, a webhook endpoint and a delivery, a subject with media.
    let body = json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama2.jpg") });
    let r = app.signed(
        &a,
        "POST",
        "/v1/kyc/verify",
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.body["job_id"].as_str().unwrap().to_owned();
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", sink.local_addr().unwrap());
    let r = app.signed(
        &a,
        "POST",
        "/v1/webhooks",
        &serde_json::to_vec(&json!({ "url": url })).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let webhook = r.body["id"].as_str().unwrap().to_owned();
    let r = app.signed(&a, "POST", &format!("/v1/webhooks/{webhook}/test"), b"");
    assert_eq!(r.status, 202, "{}", r.text);
    let delivery = r.body["delivery_id"].as_str().unwrap().to_owned();
    let subject = "customer-of-a";
    let upload = json!({ "kind": "selfie", "image_base64": face_b64("obama.jpg") });
    let r = app.signed(
        &a,
        "POST",
        &format!("/v1/subjects/{subject}/media"),
        &serde_json::to_vec(&upload).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let media = r.body["media"]["id"].as_str().unwrap().to_owned();
    let enrol = json!({ "image_base64": face_b64("obama.jpg"), "subject_id": subject });
    let r = app.signed(
        &a,
        "POST",
        "/v1/faces",
        &serde_json::to_vec(&enrol).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let face = r.body["face_id"].as_str().unwrap().to_owned();

    let id_of = |param: &str, path: &str| -> String {
        match param {
            "subject_id" => subject.into(),
            "face_id" => face.clone(),
            "media_id" => media.clone(),
            "id" if path.starts_with("/v1/jobs/") => job.clone(),
            "id" if path.starts_with("/v1/webhooks/deliveries/") => delivery.clone(),
            "id" if path.starts_with("/v1/webhooks/") => webhook.clone(),
            other => panic!("{path}: no id of tenant A known for {{{other}}}; add one here"),
        }
    };
    let mut covered = 0;
    for (method, path, _) in v1_operations(&app) {
        if !path.contains('{') {
            continue;
        }
        let url = fill_path(&path, &id_of);
        let r = call(&app, &b, &method, &url);
        if method == "POST" && path == "/v1/subjects/{subject_id}/media" {
            // Subject ids are the tenant's own names: B storing media under the same name
            // creates B's subject, never touches A's (checked below).
            assert_eq!(r.status, 422, "{method} {url}: {}", r.text);
            continue;
        }
        assert_eq!(r.status, 404, "{method} {url} as tenant B: {}", r.text);
        covered += 1;
    }
    assert!(covered >= 8, "only {covered} routes with ids");
    // A's objects are intact.
    assert_eq!(
        app.signed(&a, "GET", &format!("/v1/jobs/{job}"), b"")
            .status,
        200
    );
    let r = app.signed(&a, "GET", &format!("/v1/subjects/{subject}/media"), b"");
    assert_eq!(
        r.body["media"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    assert_eq!(
        app.signed(&a, "GET", &format!("/v1/media/{media}"), b"")
            .status,
        200
    );
    eprintln!("isolation: {covered} routes with ids answered 404 to another tenant");
}
