//! The Facia- and FacePhi-compatible endpoints answer in the vendors' body shapes.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::{now, Resp, TestApp};

fn b64(name: &str) -> String {
    use base64::Engine;
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/faces/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn post_json(app: &TestApp, path: &str, body: Value) -> Resp {
    app.raw(
        "POST",
        path,
        &[("Content-Type", "application/json".into())],
        &serde_json::to_vec(&body).unwrap(),
    )
}

/// A vendor error: the vendor's `message` beside kycd's envelope.
fn assert_vendor_error(r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["message"], message, "{}", r.text);
    assert!(r.body["error"]["trace_id"].is_string(), "{}", r.text);
}

#[test]
fn facia_status_check_and_process_face() {
    let app = TestApp::spawn();
    let r = app.raw("GET", "/status_check", &[], b"");
    assert_eq!((r.status, r.text.as_str()), (200, "Service is live"));

    let tenant = app.create_tenant("Facia customer");
    let k = app.admin(
        "POST",
        &format!("/tenants/{tenant}/keys"),
        Some(json!({ "facia_hash": true })),
    );
    assert_eq!(k.status, 201, "{}", k.text);
    let hash_id = k.body["facia_hash_id"].as_str().unwrap().to_owned();
    assert_eq!(hash_id.len(), 32);

    let selfie = format!("data:image/jpeg;base64,{}", b64("obama.jpg"));
    let r = post_json(
        &app,
        "/process_face",
        json!({ "hash_id": hash_id, "selfie_image": selfie, "document_image": b64("obama2.jpg") }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        set(&["face_similarity_result", "liveness_result", "message"])
    );
    let fs = &r.body["face_similarity_result"];
    assert_eq!(keys(fs), set(&["is_match", "similarity_score"]));
    assert_eq!(fs["is_match"], true);
    assert!(fs["similarity_score"].as_f64().unwrap() > 0.75);
    let lr = &r.body["liveness_result"];
    assert_eq!(keys(lr), set(&["is_live", "liveness_score"]));
    assert_eq!(lr["is_live"], true);
    assert!(lr["liveness_score"].as_f64().unwrap() > 0.5);

    let other = post_json(
        &app,
        "/process_face",
        json!({ "hash_id": hash_id, "selfie_image": b64("obama.jpg"), "document_image": b64("biden.jpg") }),
    );
    assert_eq!(other.status, 201, "{}", other.text);
    assert_eq!(other.body["face_similarity_result"]["is_match"], false);

    let r = post_json(
        &app,
        "/process_face",
        json!({ "hash_id": "0123456789abcdef0123456789abcdef", "selfie_image": selfie, "document_image": selfie }),
    );
    assert_vendor_error(&r, 401, "Invalid credentials");
    let r = post_json(
        &app,
        "/process_face",
        json!({ "selfie_image": selfie, "document_image": selfie }),
    );
    assert_vendor_error(&r, 401, "Invalid credentials");
    let r = post_json(
        &app,
        "/process_face",
        json!({ "hash_id": hash_id, "selfie_image": selfie }),
    );
    assert_vendor_error(&r, 400, "Both selfie_image and document_image are required");
    let r = post_json(
        &app,
        "/process_face",
        json!({ "hash_id": hash_id, "selfie_image": "bm90IGFuIGltYWdl", "document_image": selfie }),
    );
    assert_vendor_error(
        &r,
        400,
        "Invalid or corrupt selfie image. Please provide a valid base64 encoded image",
    );

    // Revoking the key retires its hash_id.
    let key_id = k.body["id"].as_str().unwrap();
    assert_eq!(
        app.admin("POST", &format!("/keys/{key_id}/revoke"), None)
            .status,
        200
    );
    let r = post_json(
        &app,
        "/process_face",
        json!({ "hash_id": hash_id, "selfie_image": selfie, "document_image": selfie }),
    );
    assert_vendor_error(&r, 401, "Invalid credentials");
}

pub fn multipart(field: &str, content: &[u8]) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let boundary = "iadBoundary0b1c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"c\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let headers = vec![(
        "Content-Type",
        format!("multipart/form-data; boundary={boundary}"),
    )];
    (headers, body)
}

pub fn evaluate(app: &TestApp, field: &str, content: &[u8]) -> Resp {
    let (h, body) = multipart(field, content);
    app.raw("POST", "/api/v1/iad/liveness/evaluate", &h, &body)
}

fn facephi_app(replay_check: bool) -> TestApp {
    TestApp::spawn_with(|c| {
        let store = kycd::server::open_store(c).unwrap();
        let t = kycd::tenancy::create_tenant(&store, "FacePhi customer", "pro", "test").unwrap();
        c.compat.facephi_tenant = Some(t.id);
        c.compat.iad_replay_check = replay_check;
        c.compat.iad_replay_tolerance_seconds = 300;
    })
}

const IAD_FIELDS: [&str; 7] = [
    "diagnostic",
    "reason",
    "probability",
    "score",
    "faceProbability",
    "sdkDuration",
    "queueDuration",
];

#[test]
fn facephi_evaluate_extract_and_validation_diagnostics() {
    let off = TestApp::spawn();
    let r = evaluate(&off, "capture", b"x");
    assert_eq!(r.status, 404, "{}", r.text);

    let app = facephi_app(false);
    let selfie = std::fs::read(format!(
        "{}/tests/fixtures/faces/obama.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = evaluate(&app, "capture", &selfie);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(keys(&r.body), set(&IAD_FIELDS));
    assert_eq!(r.body["diagnostic"], "Live");
    assert_eq!(r.body["reason"], "None");
    assert!(r.body["probability"].as_f64().unwrap() > 0.5);
    assert!(r.body["faceProbability"].as_f64().unwrap() > 0.5);
    assert!(r.body["sdkDuration"].is_u64() && r.body["queueDuration"].is_u64());

    // Validation failures are diagnostics, as FacePhi reports them.
    let two = std::fs::read(format!(
        "{}/tests/fixtures/faces/two_people.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = evaluate(&app, "capture", &two);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["diagnostic"], "NoneBecauseTooManyFaces");
    let blank = kycd::media::intake::encode_jpeg(&image::RgbImage::new(320, 240), 90);
    let r = evaluate(&app, "capture", &blank);
    assert_eq!(
        r.body["diagnostic"], "NoneBecauseFaceNotFound",
        "{}",
        r.text
    );

    // The 1.x field name alone is refused; garbage is an image-data error.
    let r = evaluate(&app, "file", &selfie);
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("capture"));
    let r = evaluate(&app, "capture", b"definitely not an image");
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["diagnostic"], "NoneBecauseImageDataError");

    // JSON capture with a base64 image; extract gives the image back.
    let capture = json!({ "image": b64("obama.jpg"), "timestamp": now() });
    let (h, body) = multipart("capture", &serde_json::to_vec(&capture).unwrap());
    let r = app.raw("POST", "/api/v1/iad/extract", &h, &body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["mimeType"], "image/jpeg");
    assert_eq!(r.body["image"], b64("obama.jpg"));

    let r = app.raw("GET", "/api/v1/iad/health", &[], b"");
    assert_eq!(r.body, json!({ "message": "Healthy" }));
    let r = app.raw("GET", "/api/v1/iad/config", &[], b"");
    assert_eq!(
        r.body,
        json!({ "replayCheck": false, "replayToleranceSeconds": 300 })
    );
}

#[test]
fn facephi_replay_window() {
    let app = facephi_app(true);
    let fresh = json!({ "image": b64("obama.jpg"), "timestamp": now() });
    let r = evaluate(&app, "capture", &serde_json::to_vec(&fresh).unwrap());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["diagnostic"], "Live");
    let stale = json!({ "image": b64("obama.jpg"), "timestamp": now() - 301 });
    let r = evaluate(&app, "capture", &serde_json::to_vec(&stale).unwrap());
    assert_vendor_error(&r, 400, "Replay attack detected");
    assert_eq!(r.body["error"]["code"], "replay_attack_detected");
    // A bare image has no capture time, so it cannot be shown fresh.
    let bare = std::fs::read(format!(
        "{}/tests/fixtures/faces/obama.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_vendor_error(
        &evaluate(&app, "capture", &bare),
        400,
        "Replay attack detected",
    );
    // The operator can switch it off at run time; clients cannot.
    let patch = serde_json::to_vec(&json!({ "replayCheck": false })).unwrap();
    let r = app.raw(
        "POST",
        "/api/v1/iad/config",
        &[("Content-Type", "application/json".into())],
        &patch,
    );
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app.raw(
        "POST",
        "/api/v1/iad/config",
        &[
            ("Content-Type", "application/json".into()),
            (
                "Authorization",
                format!("Bearer {}", crate::common::ADMIN_TOKEN),
            ),
        ],
        &patch,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(evaluate(&app, "capture", &bare).status, 200);
}

#[test]
fn facephi_forms_cannot_pile_up_fields() {
    let app = facephi_app(false);
    let boundary = "manyFields01";
    let mut body = Vec::new();
    for i in 0..17 {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let h = [(
        "Content-Type",
        format!("multipart/form-data; boundary={boundary}"),
    )];
    let r = app.raw("POST", "/api/v1/iad/liveness/evaluate", &h, &body);
    r.assert_error(400, "bad_request");
}
