//! `POST /v1/face/match` on the fixture photos, through the signed API with the real models.

use serde_json::{json, Value};

use crate::common::{Key, Resp, TestApp};

fn fixture(name: &str) -> String {
    use base64::Engine;
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap())
}

fn face_match(app: &TestApp, key: &Key, a: &str, b: &str, extra: Value) -> Resp {
    let mut body = json!({ "image_a_base64": fixture(a), "image_b_base64": fixture(b) });
    if let (Some(o), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    app.signed(
        key,
        "POST",
        "/v1/face/match",
        &serde_json::to_vec(&body).unwrap(),
    )
}

#[test]
fn same_person_matches_other_person_does_not() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    for (a, b) in [
        ("faces/obama.jpg", "faces/obama2.jpg"),
        ("faces/obama2.jpg", "faces/obama3.jpg"),
    ] {
        let r = face_match(&app, &key, a, b, json!({}));
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["match"], true, "{a} vs {b}: {}", r.text);
        assert!(r.body["similarity"].as_f64().unwrap() > 0.9);
        assert_eq!(r.body["threshold"], 0.75);
        assert!(r.body["faces"]["a"]["face"]["bbox"].is_array());
        assert!(
            r.body["faces"]["b"]["quality"]["inter_eye_px"]
                .as_f64()
                .unwrap()
                > 50.0
        );
        assert!(
            r.body["faces"]["a"].get("embedding").is_none(),
            "embeddings never leave"
        );
        assert_eq!(r.body["usage"]["module"], "face_match");
        assert!(r.body["processing_ms"].is_u64());
    }
    let r = face_match(&app, &key, "faces/obama.jpg", "faces/biden.jpg", json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["match"], false);
    assert!(r.body["similarity"].as_f64().unwrap() < 0.5);
}

#[test]
fn selfie_with_two_faces_or_none_is_refused() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = face_match(
        &app,
        &key,
        "faces/two_people.jpg",
        "faces/obama.jpg",
        json!({}),
    );
    r.assert_error(422, "multiple_faces");
    assert_eq!(
        r.body["error"]["details"]["reason"],
        "NoneBecauseTooManyFaces"
    );
    assert_eq!(r.body["error"]["details"]["faces"], 2);

    // A plain gradient: decodable, no face.
    let blank = image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x / 2) as u8, (y / 2) as u8, 128])
    });
    let blank = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(kycd::media::intake::encode_jpeg(&blank, 90))
    };
    let body = json!({ "image_a_base64": blank, "image_b_base64": fixture("faces/obama.jpg") });
    let r = app.signed(
        &key,
        "POST",
        "/v1/face/match",
        &serde_json::to_vec(&body).unwrap(),
    );
    r.assert_error(422, "no_face");
    assert_eq!(
        r.body["error"]["details"]["reason"],
        "NoneBecauseFaceNotFound"
    );

    let body = json!({ "image_a_base64": "!!!", "image_b_base64": fixture("faces/obama.jpg") });
    app.signed(
        &key,
        "POST",
        "/v1/face/match",
        &serde_json::to_vec(&body).unwrap(),
    )
    .assert_error(422, "invalid_image");
    app.signed(&key, "POST", "/v1/face/match", br#"{"image_a_base64":"x"}"#)
        .assert_error(422, "invalid_input");
}

#[test]
fn the_document_portrait_is_found_and_thresholds_only_get_stricter() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = face_match(
        &app,
        &key,
        "faces/obama.jpg",
        "documents/passport-td3.jpg",
        json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["match"], false, "the specimen holder is not obama");
    assert!(r.body["faces"]["b"]["face"]["bbox"][2].as_f64().unwrap() > 40.0);

    let r = face_match(
        &app,
        &key,
        "faces/obama.jpg",
        "faces/obama2.jpg",
        json!({ "threshold": 0.5 }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "threshold");
    let r = face_match(
        &app,
        &key,
        "faces/obama.jpg",
        "faces/obama2.jpg",
        json!({ "threshold": 0.995 }),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["match"], false,
        "a stricter request threshold applies"
    );

    let r = app.admin(
        "PUT",
        &format!("/tenants/{}/face-match", key.tenant_id),
        Some(json!({ "threshold": 0.9 })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = face_match(&app, &key, "faces/obama.jpg", "faces/obama2.jpg", json!({}));
    assert_eq!(r.body["threshold"].as_f64().unwrap(), 0.9f32 as f64);
    app.admin(
        "PUT",
        &format!("/tenants/{}/face-match", key.tenant_id),
        Some(json!({ "threshold": 0.2 })),
    )
    .assert_error(422, "invalid_input");
}
