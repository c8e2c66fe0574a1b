//! A document without an MRZ: a generated California driving licence whose back carries its
//! AAMVA record in PDF417 (encoded by the test with rxing). The reader decodes the barcode,
//! takes type and country from it, fills the fields and compares them with the front's print.

use serde_json::{json, Value};

use crate::common::{docgen, TestApp};
use kycd::vision::liveness::synthetic::Rng;

fn b64(img: &image::RgbImage) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(kycd::media::intake::encode_jpeg(img, 90))
}

fn portrait() -> image::RgbImage {
    let path = format!(
        "{}/tests/fixtures/faces/obama.jpg",
        env!("CARGO_MANIFEST_DIR")
    );
    image::open(path).unwrap().to_rgb8()
}

fn status<'a>(body: &'a Value, name: &str) -> &'a str {
    body["barcode"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no barcode checks: {body}"))
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no {name}: {}", body["barcode"]))
}

fn read(app: &TestApp, key: &crate::common::Key, front: &str, back: &str) -> Value {
    let body = json!({ "image_front_base64": front, "image_back_base64": back });
    let r = app.signed(
        key,
        "POST",
        "/v1/document/ocr",
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[test]
fn a_licence_without_an_mrz_is_read_from_its_pdf417() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let mut rng = Rng::new(417);
    let l = docgen::licence(&mut rng);
    let (front, back) = docgen::render_licence(&l, &portrait(), None, &mut rng);
    let b = read(&app, &key, &b64(&front), &b64(&back));

    assert_eq!(b["detected"]["type"], "driver_license", "{}", b["detected"]);
    assert_eq!(b["detected"]["country"], "USA");
    assert_eq!(b["detected"]["source"], "barcode");
    assert_eq!(b["barcode"]["format"], "pdf417");
    assert_eq!(b["barcode"]["standard"], "aamva");
    assert_eq!(b["barcode"]["aamva"]["issuer_iin"], "636014");
    assert_eq!(b["barcode"]["aamva"]["jurisdiction"], "CA");
    assert!(b["mrz"].is_null());
    let f = &b["fields"];
    assert_eq!(f["surname"], l.surname.as_str(), "{f}");
    assert_eq!(
        f["given_names"],
        format!("{} {}", l.first_name, l.middle_name),
        "{f}"
    );
    assert_eq!(f["document_number"], l.number.as_str());
    assert_eq!(f["date_of_birth"], l.birth_date.as_str());
    assert_eq!(f["date_of_expiry"], l.expiry_date.as_str());
    assert_eq!(f["date_of_issue"], l.issue_date.as_str());
    assert_eq!(f["sex"], l.sex.to_string());
    assert_eq!(f["issuing_country"], "USA");
    // Barcode and print agree on every field the front prints.
    for field in [
        "surname",
        "given_names",
        "document_number",
        "date_of_birth",
        "date_of_expiry",
        "date_of_issue",
    ] {
        assert_eq!(
            status(&b, &format!("barcode_print_consistency_{field}")),
            "pass",
            "{field}: {}\n{}",
            b["barcode"],
            b["text"]
        );
    }
    // The front alone is still a document (its printed keywords), without a barcode.
    let r = app.signed(
        &key,
        "POST",
        "/v1/document/ocr",
        &serde_json::to_vec(&json!({ "image_front_base64": b64(&front) })).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["detected"]["type"], "driver_license");
    assert_eq!(r.body["detected"]["source"], "printed");
    assert!(r.body["barcode"].is_null());
}

#[test]
fn a_licence_whose_print_was_altered_fails_the_barcode_check() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let mut rng = Rng::new(418);
    let l = docgen::licence(&mut rng);
    // The front prints another birth date than the barcode carries (day > 12: unambiguous).
    let day = if &l.birth_date[8..10] == "23" { 24 } else { 23 };
    let altered = format!("{}/{day}/{}", &l.birth_date[5..7], &l.birth_date[0..4]);
    let (front, back) = docgen::render_licence(&l, &portrait(), Some(&altered), &mut rng);
    let b = read(&app, &key, &b64(&front), &b64(&back));
    assert_eq!(b["detected"]["source"], "barcode");
    assert_eq!(
        status(&b, "barcode_print_consistency_date_of_birth"),
        "fail",
        "{}",
        b["barcode"]
    );
    assert_eq!(status(&b, "barcode_print_consistency_surname"), "pass");
    // The barcode's value is reported; the check's detail names no date.
    assert_eq!(b["fields"]["date_of_birth"], l.birth_date.as_str());
    let detail = b["barcode"]["checks"].to_string();
    assert!(!detail.contains(&altered) && !detail.contains(&l.birth_date));
}
