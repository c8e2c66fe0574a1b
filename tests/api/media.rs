//! Image intake over HTTP, encrypted media, read-back and erasure.

use image::{Rgb, RgbImage};
use serde_json::json;

use crate::common::{contains_bytes, files_under, now, sign_headers, TestApp};

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 90])
    });
    kycd::media::intake::encode_jpeg(&img, 90)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn upload(
    app: &TestApp,
    key: &crate::common::Key,
    subject: &str,
    kind: &str,
    image: &[u8],
) -> crate::common::Resp {
    let body = serde_json::to_vec(&json!({ "kind": kind, "image_base64": b64(image) })).unwrap();
    app.signed(key, "POST", &format!("/v1/subjects/{subject}/media"), &body)
}

/// A complete, tiny PNG whose header claims 50 000 × 50 000 pixels.
fn png_bomb() -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        out.extend_from_slice(&typed);
        out.extend_from_slice(&crc32(&typed).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 50_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&50_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn every_intake_rejection_has_its_status_and_code() {
    let app = TestApp::spawn_with(|c| c.media.max_image_bytes = 200_000);
    let key = app.tenant_with_key();
    upload(&app, &key, "s1", "selfie", &vec![0xFF; 250_000]).assert_error(413, "payload_too_large");
    upload(&app, &key, "s1", "selfie", b"GIF89a\x01\x00\x01\x00")
        .assert_error(415, "unsupported_media_type");
    // A PNG declared as JPEG is still sniffed as what it is; a PDF named .jpg is refused.
    upload(&app, &key, "s1", "selfie", b"%PDF-1.4 not an image")
        .assert_error(415, "unsupported_media_type");
    let r = upload(&app, &key, "s1", "selfie", &png_bomb());
    r.assert_error(422, "image_too_large");
    assert_eq!(r.body["error"]["details"]["width"], 50_000);
    let good = jpeg(64, 48);
    upload(&app, &key, "s1", "selfie", &good[..good.len() / 2]).assert_error(422, "invalid_image");
    let body = br#"{"kind":"selfie","image_base64":"@@@not base64@@@"}"#;
    app.signed(&key, "POST", "/v1/subjects/s1/media", body)
        .assert_error(422, "invalid_image");
    let body = br#"{"kind":"passport_scan","image_base64":"AAAA"}"#;
    app.signed(&key, "POST", "/v1/subjects/s1/media", body)
        .assert_error(422, "invalid_input");
    upload(&app, &key, "bad!subject", "selfie", &good).assert_error(422, "invalid_input");
    // Nothing refused was stored: the subject does not even exist.
    app.signed(&key, "GET", "/v1/subjects/s1/media", b"")
        .assert_error(404, "not_found");
}

#[test]
fn store_read_back_and_erase_over_http() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let other_tenant = app.tenant_with_key();
    let selfie = jpeg(640, 480);
    let r = upload(&app, &key, "applicant-42", "selfie", &selfie);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["stored"], true);
    assert_eq!(r.body["image"]["width"], 640);
    let id = r.body["media"]["id"].as_str().unwrap().to_owned();
    let doc = upload(
        &app,
        &key,
        "applicant-42",
        "document_front",
        &jpeg(1600, 1000),
    );
    assert_eq!(doc.body["image"]["width"], 1600);
    let keep = upload(&app, &key, "applicant-7", "selfie", &selfie);
    let keep_id = keep.body["media"]["id"].as_str().unwrap().to_owned();

    let back = app.signed(&key, "GET", &format!("/v1/media/{id}"), b"");
    assert_eq!(back.status, 200);
    app.signed(&other_tenant, "GET", &format!("/v1/media/{id}"), b"")
        .assert_error(404, "not_found");

    // No plaintext image bytes anywhere on disk.
    for file in files_under(app.data_dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains_bytes(&bytes, &selfie[300..364]),
            "upload bytes in {}",
            file.display()
        );
        assert!(
            !contains_bytes(&bytes, b"JFIF"),
            "a JPEG in {}",
            file.display()
        );
    }

    let r = app.signed(&key, "DELETE", "/v1/subjects/applicant-42", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["subject_id"], "applicant-42");
    assert_eq!(r.body["deleted"]["media"], 2);
    assert!(r.body["at"].as_str().unwrap().ends_with('Z'));
    app.signed(&key, "GET", &format!("/v1/media/{id}"), b"")
        .assert_error(404, "not_found");
    let r = app.signed(&key, "GET", "/v1/subjects/applicant-42/media", b"");
    assert!(r.body["media"].as_array().unwrap().is_empty());
    assert_eq!(
        app.signed(&key, "GET", &format!("/v1/media/{keep_id}"), b"")
            .status,
        200,
        "other subject kept"
    );
}

#[test]
fn multipart_upload_and_zero_retention() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let image = jpeg(320, 240);
    let boundary = "kycdBoundary7MA4YWxk";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nselfie\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"s.jpg\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(&image);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let path = "/v1/subjects/mp-1/media";
    let mut h = sign_headers(&key, "POST", path, &body, now(), Some("mp"));
    h.push((
        "Content-Type",
        format!("multipart/form-data; boundary={boundary}"),
    ));
    let r = app.raw("POST", path, &h, &body);
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["image"]["height"], 240);

    let policy_path = format!("/tenants/{}/media-policy", key.tenant_id);
    let r = app.admin("GET", &policy_path, None);
    assert_eq!(r.body["media_retention_days"], 30);
    assert_eq!(
        r.body["media_kinds"],
        json!(["selfie", "document_front", "document_back", "face_crop"])
    );
    let policy = json!({ "media_retention_days": 0, "media_kinds": ["selfie"] });
    let r = app.admin("PUT", &policy_path, Some(policy));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = upload(&app, &key, "mp-2", "selfie", &image);
    assert_eq!(r.status, 201);
    assert_eq!(r.body["stored"], false);
    assert!(r.body["media"].is_null());
    let bad = json!({ "media_retention_days": -1, "media_kinds": [] });
    app.admin("PUT", &policy_path, Some(bad))
        .assert_error(422, "invalid_input");
    let bad = json!({ "media_retention_days": 5, "media_kinds": ["passport"] });
    app.admin("PUT", &policy_path, Some(bad))
        .assert_error(422, "invalid_input");
}
