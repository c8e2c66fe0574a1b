//! `/openapi.json`, `/docs` and `kycd openapi --postman`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::TestApp;

fn spec(app: &TestApp) -> Value {
    let r = app.raw("GET", "/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    r.body
}

/// Every path the server registers is described, with responses, an example of success and the
/// error envelope.
#[test]
fn every_registered_route_is_described() {
    let app = TestApp::spawn();
    let spec = spec(&app);
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    let registered = kycd::http::openapi::registered_routes();
    assert!(registered.len() >= 45, "{registered:?}");
    for route in &registered {
        assert!(paths.contains_key(route), "{route} is not in /openapi.json");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let ok = responses.keys().find(|s| s.starts_with('2'));
            assert!(ok.is_some(), "{method} {path} has no success response");
            assert!(
                responses.contains_key("500"),
                "{method} {path}: no error envelope"
            );
            if path.starts_with("/v1/") {
                assert_eq!(op["security"][0].as_object().unwrap().len(), 3, "{path}");
                assert!(responses.contains_key("401") && responses.contains_key("429"));
            }
        }
    }
    let schemes = &spec["components"]["securitySchemes"];
    assert!(schemes["X-API-SIGN"]["description"]
        .as_str()
        .unwrap()
        .contains("HMAC-SHA256"));
    assert!(spec["components"]["schemas"]["ErrorEnvelope"].is_object());
    let verify = &spec["paths"]["/v1/kyc/verify"]["post"];
    assert!(verify["requestBody"]["content"]["application/json"]["example"].is_object());
}

/// An independent validator (Python's openapi-spec-validator) accepts the document.
#[test]
fn the_description_validates_as_openapi_3_1() {
    let app = TestApp::spawn();
    let file = app.data_path("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&spec(&app)).unwrap()).unwrap();
    // Installed once into target/ from PyPI when the machine lacks it.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyvalidator");
    let has = |pythonpath: &Path| {
        Command::new("python3")
            .args(["-c", "import openapi_spec_validator"])
            .env("PYTHONPATH", pythonpath)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(&target) {
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&target)
            .arg("openapi-spec-validator==0.9.0")
            .status()
            .expect("python3 runs");
        assert!(pip.success(), "installing openapi-spec-validator failed");
    }
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .env("PYTHONPATH", &target)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("OK"), "{text}");
}

/// `/docs` and its assets come from the binary; in headless Chromium (when installed) the page
/// renders the operations it loaded from `/openapi.json`.
#[test]
fn docs_load_offline_and_render_the_spec() {
    let app = TestApp::spawn();
    let page = app.raw("GET", "/docs", &[], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("url: \"/openapi.json\""),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains("https://"),
        "the page must not reach the network"
    );
    let js = app.raw("GET", "/docs/swagger-ui-bundle.js", &[], b"");
    assert_eq!(js.status, 200);
    assert!(js.text.len() > 1_000_000);
    assert_eq!(app.raw("GET", "/docs/swagger-ui.css", &[], b"").status, 200);
    app.raw("GET", "/docs/nope.js", &[], b"")
        .assert_error(404, "route_not_found");

    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        crate::common::tool_missing("chromium", "the rendering half of this test");
        return;
    }
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
            // Every non-loopback request goes to a dead proxy: the page must work offline.
            "--proxy-server=http://127.0.0.1:9",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{}/docs", app.base))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("/v1/kyc/verify"),
        "rendered page lacks the operations: {dom}"
    );
}

/// The Postman collection's pre-request script signs requests the server accepts (run in Node
/// with Postman's `pm` and `CryptoJS` stood in for, when Node is installed).
#[test]
fn postman_collection_signs_requests_the_server_accepts() {
    let app = TestApp::spawn();
    let out = Command::new(env!("CARGO_BIN_EXE_kycd"))
        .args(["openapi", "--postman"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let collection: Value = serde_json::from_slice(&out.stdout).unwrap();
    let operations: usize = collection["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["item"].as_array().unwrap().len())
        .sum();
    assert!(operations >= 55, "{operations} requests");
    let script: Vec<&str> = collection["event"][0]["script"]["exec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let script = script.join("\n");
    assert!(script.contains("HmacSHA256"));

    if Command::new("node").arg("--version").output().is_err() {
        crate::common::tool_missing("node", "the signing half of this test");
        return;
    }
    let key = app.tenant_with_key();
    let harness = format!(
        r#"const crypto = require('crypto');
const CryptoJS = {{
  SHA256: s => ({{ toString: () => crypto.createHash('sha256').update(s).digest('hex') }}),
  HmacSHA256: (m, k) => ({{ toString: () => crypto.createHmac('sha256', k).update(m).digest('hex') }}),
  enc: {{ Hex: 'hex' }},
}};
const vars = {{ apiKey: {key}, apiSecret: {secret} }};
const headers = {{}};
const pm = {{
  variables: {{ get: k => vars[k], replaceIn: s => s }},
  request: {{ method: 'POST', url: {{ getPathWithQuery: () => '/v1/document/validate' }},
             body: {{ mode: 'raw', raw: {body} }}, headers: {{ upsert: h => {{ headers[h.key] = h.value; }} }} }},
}};
{script}
console.log(JSON.stringify(headers));"#,
        key = serde_json::to_string(&key.key_id).unwrap(),
        secret = serde_json::to_string(&key.secret).unwrap(),
        body = serde_json::to_string(
            r#"{"mrz":["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<","L898902C36UTO7408122F1204159ZE184226B<<<<<10"]}"#
        )
        .unwrap(),
    );
    let out = Command::new("node")
        .args(["-e", &harness])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers: std::collections::HashMap<String, String> =
        serde_json::from_slice(&out.stdout).unwrap();
    let mut sent: Vec<(&str, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    sent.push(("Content-Type", "application/json".into()));
    let body = r#"{"mrz":["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<","L898902C36UTO7408122F1204159ZE184226B<<<<<10"]}"#;
    let r = app.raw("POST", "/v1/document/validate", &sent, body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
}
