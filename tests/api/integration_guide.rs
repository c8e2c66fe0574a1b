//! docs/integration.md's code, run as it stands: its Python blocks as one program and its Node.js
//! blocks as another, against a live server, with a webhook delivery that server really sent.

use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::TestApp;

/// The guide's fenced blocks of `language`, joined in order.
fn program(language: &str) -> String {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/integration.md"))
            .unwrap();
    let fence = format!("```{language}\n");
    let mut out = String::new();
    let mut rest = guide.as_str();
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("\n```").expect("closed fence");
        out.push_str(&body[..=end]);
        out.push('\n');
        rest = &body[end + 4..];
    }
    assert!(!out.is_empty(), "no {language} blocks in the guide");
    out
}

#[test]
fn the_guides_python_and_node_examples_run_against_a_live_server() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let work = tempfile::tempdir().unwrap();

    // A webhook endpoint on this host and one real delivery to it.
    let (url, got) = crate::workflow::receiver(0);
    let hook = app.signed(
        &key,
        "POST",
        "/v1/webhooks",
        &serde_json::to_vec(&json!({ "url": url })).unwrap(),
    );
    assert_eq!(hook.status, 201, "{}", hook.text);
    let webhook_secret = hook.body["secret"].as_str().unwrap().to_owned();
    let (doc, _) = crate::workflow::passport_b64(31, "obama.jpg", false);
    let selfie = crate::workflow::face_b64("obama2.jpg");
    crate::workflow::submit(
        &app,
        &key,
        &json!({ "selfie": selfie, "document_front": doc }),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let (headers, body) = loop {
        if let Some(d) = got.lock().unwrap().first().cloned() {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "no delivery");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(work.path().join("selfie.jpg"), b64.decode(&selfie).unwrap()).unwrap();
    std::fs::write(work.path().join("document.jpg"), b64.decode(&doc).unwrap()).unwrap();
    std::fs::write(work.path().join("delivery.json"), &body).unwrap();
    let env = [
        ("KYCD_URL", app.base.clone()),
        ("KYCD_KEY_ID", key.key_id.clone()),
        ("KYCD_SECRET", key.secret.clone()),
        (
            "KYCD_SELFIE",
            work.path().join("selfie.jpg").display().to_string(),
        ),
        (
            "KYCD_DOCUMENT",
            work.path().join("document.jpg").display().to_string(),
        ),
        ("KYCD_WEBHOOK_SECRET", webhook_secret),
        (
            "KYCD_WEBHOOK_BODY",
            work.path().join("delivery.json").display().to_string(),
        ),
        (
            "KYCD_WEBHOOK_SIGNATURE",
            headers["x-kycd-signature"].clone(),
        ),
    ];

    let mut ran = 0;
    for (language, runner, file) in [
        ("python", "python3", "guide.py"),
        ("javascript", "node", "guide.js"),
    ] {
        let path = work.path().join(file);
        std::fs::write(&path, program(language)).unwrap();
        if Command::new(runner).arg("--version").output().is_err() {
            crate::common::tool_missing(runner, "the guide's examples in that language");
            continue;
        }
        let out = Command::new(runner)
            .arg(&path)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{language}: {stdout}{stderr}");
        let result: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("{language}: {stdout}{stderr}"));
        assert_eq!(
            result["tenant_id"],
            key.tenant_id.as_str(),
            "{language}: {result}"
        );
        assert_eq!(
            result["error_code"], "invalid_input",
            "{language}: {result}"
        );
        assert_eq!(result["status"], "completed", "{language}: {result}");
        assert_eq!(result["decision"], "accepted", "{language}: {result}");
        assert!(
            result["score"].as_u64().unwrap() >= 80,
            "{language}: {result}"
        );
        assert_eq!(result["webhook_authentic"], true, "{language}: {result}");
        assert_eq!(result["tampered_authentic"], false, "{language}: {result}");
        let job = app.signed(
            &key,
            "GET",
            &format!("/v1/jobs/{}", result["job_id"].as_str().unwrap()),
            b"",
        );
        assert_eq!(job.body["decision"], "accepted", "{}", job.text);
        ran += 1;
    }
    assert!(ran > 0);
}
