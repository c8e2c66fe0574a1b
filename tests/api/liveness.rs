//! `POST /v1/liveness/analyze` through the signed API with the real models.

use serde_json::{json, Value};

use crate::common::{Key, Resp, TestApp};
use kycd::vision::liveness::synthetic::{self, AttackKind, Rng};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/faces/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn analyze(app: &TestApp, key: &Key, body: Value) -> Resp {
    app.signed(
        key,
        "POST",
        "/v1/liveness/analyze",
        &serde_json::to_vec(&body).unwrap(),
    )
}

fn decoded(name: &str) -> image::RgbImage {
    image::load_from_memory(&fixture(name)).unwrap().to_rgb8()
}

#[test]
fn a_real_selfie_is_live_and_every_signal_is_reported() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": b64(&fixture("obama.jpg")) }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_live"], true, "{}", r.text);
    assert_eq!(r.body["spoof_type"], "none");
    let c = r.body["confidence"].as_f64().unwrap();
    assert!(c > 0.5 && c <= 1.0, "{c}");
    assert!(r.body["hints"].is_array());
    assert!(r.body["quality"]["sharpness"].as_f64().unwrap() > 0.0);
    let d = &r.body["details"];
    assert!(d["model"]["p_real"].as_f64().unwrap() > 0.9);
    assert!(d["texture"]["score"].as_f64().unwrap() < 0.5);
    assert!(d["frame"]["score"].as_f64().unwrap() < 0.5);
    assert_eq!(d["thresholds"]["min_model_real"], 0.5);
    assert!(d["active"].is_null());
    assert_eq!(r.body["usage"]["module"], "liveness");
    assert!(r.body["processing_ms"].is_u64());
}

#[test]
fn synthetic_attacks_are_not_live() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let mut rng = Rng::new(7);
    let src = decoded("obama2.jpg");
    for kind in [AttackKind::Screen, AttackKind::Print, AttackKind::Framed] {
        let img = synthetic::attack(&src, kind, &mut rng);
        let jpeg = kycd::media::intake::encode_jpeg(&img, 92);
        let r = analyze(&app, &key, json!({ "image_live_base64": b64(&jpeg) }));
        assert_eq!(r.status, 200, "{kind:?}: {}", r.text);
        assert_eq!(r.body["is_live"], false, "{kind:?}: {}", r.text);
        let t = r.body["spoof_type"].as_str().unwrap();
        assert!(["screen", "paper", "unknown"].contains(&t), "{kind:?}: {t}");
        assert!(r.body["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().contains("live camera")));
    }
}

#[test]
fn frame_sequences_are_checked() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let selfie = b64(&fixture("obama.jpg"));
    // The same picture three times: a replayed still.
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": selfie, "frames_base64": [selfie, selfie, selfie] }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_live"], false);
    let failures = &r.body["details"]["active"]["failures"];
    assert!(
        failures
            .as_array()
            .unwrap()
            .contains(&json!("static_sequence")),
        "{failures}"
    );
    // Another person swapped in mid-sequence.
    let frames = [
        b64(&fixture("obama.jpg")),
        b64(&fixture("obama2.jpg")),
        b64(&fixture("biden.jpg")),
    ];
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": selfie, "frames_base64": frames, "hints": { "blink": true } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_live"], false);
    let failures = r.body["details"]["active"]["failures"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        failures.contains(&json!("identity_changed")),
        "{failures:?}"
    );
    assert!(failures.contains(&json!("no_blink")), "{failures:?}");
    assert_eq!(
        r.body["details"]["active"]["frames"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn bad_input_is_a_clear_4xx() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let selfie = b64(&fixture("obama.jpg"));
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": selfie, "frames_base64": [selfie] }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "frames_base64");
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": selfie, "hints": { "pose": true } }),
    );
    r.assert_error(422, "invalid_input");
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": "not base64 at all!" }),
    );
    assert!((400..500).contains(&r.status), "{}", r.text);
    let blank = kycd::media::intake::encode_jpeg(&image::RgbImage::new(320, 240), 90);
    analyze(&app, &key, json!({ "image_live_base64": b64(&blank) })).assert_error(422, "no_face");
    analyze(&app, &key, json!({ "image": selfie })).assert_error(422, "invalid_input");
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": selfie, "frames_base64": [selfie, "%%%", selfie] }),
    );
    assert!((400..500).contains(&r.status), "{}", r.text);
}

#[test]
fn tenant_thresholds_are_validated_and_applied() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let path = format!("/tenants/{}/liveness", key.tenant_id);
    assert_eq!(app.admin("GET", &path, None).body["max_texture"], 0.5);
    app.admin("PUT", &path, Some(json!({ "min_model_real": 1.5 })))
        .assert_error(422, "invalid_input");
    app.admin("PUT", &path, Some(json!({ "max_moire": 0.5 })))
        .assert_error(422, "invalid_input");
    // So strict that the model's ~0.99 for a real selfie falls short.
    let r = app.admin("PUT", &path, Some(json!({ "min_model_real": 0.99999 })));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["max_frame"], 0.5,
        "omitted fields keep their defaults"
    );
    let r = analyze(
        &app,
        &key,
        json!({ "image_live_base64": b64(&fixture("obama2.jpg")) }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_live"], false, "{}", r.text);
    let applied = r.body["details"]["thresholds"]["min_model_real"]
        .as_f64()
        .unwrap();
    assert!((applied - 0.99999).abs() < 1e-6, "{applied}");
    let audit = app.admin("GET", "/audit?q=liveness", None);
    assert!(
        audit.text.contains("tenant.liveness_thresholds"),
        "{}",
        audit.text
    );
}
