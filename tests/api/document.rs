//! `POST /v1/document/validate` and `kycd mrz`.

use serde_json::{json, Value};

use crate::common::TestApp;

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

fn validate(app: &TestApp, key: &crate::common::Key, body: Value) -> crate::common::Resp {
    app.signed(
        key,
        "POST",
        "/v1/document/validate",
        &serde_json::to_vec(&body).unwrap(),
    )
}

fn check<'a>(body: &'a Value, name: &str) -> &'a str {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn icao_specimen_validates_and_is_reported_expired() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = validate(
        &app,
        &key,
        json!({ "mrz": TD3.join("\n"), "options": { "check_expiry": false } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["document_valid"], true);
    assert_eq!(r.body["fields"]["document_number"], "L898902C3");
    assert_eq!(r.body["fields"]["birth_date"], "1974-08-12");
    for name in [
        "mrz_checksum_document_number",
        "mrz_checksum_birth_date",
        "mrz_checksum_expiry",
        "mrz_checksum_composite",
    ] {
        assert_eq!(check(&r.body, name), "pass", "{name}");
    }
    // The specimen expired in 2012: by default that fails the document.
    let r = validate(&app, &key, json!({ "mrz": TD3 }));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["document_valid"], false);
    assert_eq!(check(&r.body, "not_expired"), "fail");
}

#[test]
fn a_wrong_check_digit_fails_its_check_and_printed_fields_are_compared() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let bad = TD3[1].replacen("7408122", "7408125", 1);
    let r = validate(
        &app,
        &key,
        json!({ "mrz": [TD3[0], bad], "options": { "check_expiry": false } }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["document_valid"], false);
    assert_eq!(check(&r.body, "mrz_checksum_birth_date"), "fail");
    assert_eq!(check(&r.body, "mrz_checksum_document_number"), "pass");

    let fields = json!({ "surname": "Eriksson", "given_names": "Anna Maria", "birth_date": "12.08.1974", "sex": "F" });
    let r = validate(
        &app,
        &key,
        json!({ "mrz": TD3, "fields": fields, "options": { "check_expiry": false } }),
    );
    assert_eq!(r.body["document_valid"], true, "{}", r.text);
    let fields = json!({ "surname": "Larsson", "birth_date": "1974-08-12" });
    let r = validate(
        &app,
        &key,
        json!({ "mrz": TD3, "fields": fields, "options": { "check_expiry": false } }),
    );
    assert_eq!(r.body["document_valid"], false, "{}", r.text);
}

#[test]
fn unparseable_mrz_is_422_never_500() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = validate(&app, &key, json!({ "mrz": [TD3[0], &TD3[1][..40]] }));
    r.assert_error(422, "mrz_unparseable");
    assert_eq!(r.body["error"]["details"]["line"], 2);
    assert_eq!(r.body["error"]["details"]["expected"], 44);
    assert_eq!(r.body["error"]["details"]["found"], 40);
    for garbage in [
        json!(""),
        json!("hello"),
        json!(["x", "x", "x", "x", "x"]),
        json!("P<UTO€RIKSSON"),
        json!("\u{0}\u{1}"),
    ] {
        validate(&app, &key, json!({ "mrz": garbage })).assert_error(422, "mrz_unparseable");
    }
    validate(&app, &key, json!({})).assert_error(422, "invalid_input");
    validate(&app, &key, json!({ "mrz": 42 })).assert_error(422, "invalid_input");
}

#[test]
fn cli_prints_the_same_result() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kycd"))
        .args(["mrz", "--json", "--no-expiry-check", &TD3.join("\\n")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["document_valid"], true);
    assert_eq!(v["fields"]["surname"], "ERIKSSON");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kycd"))
        .args(["mrz", TD3[0], TD3[1]])
        .output()
        .unwrap();
    assert!(!out.status.success(), "expired specimen fails by default");
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_expired"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kycd"))
        .args(["mrz", "garbage"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn fixture_b64(path: &str) -> String {
    use base64::Engine;
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn face_fixture(name: &str) -> image::RgbImage {
    let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
    image::open(path).unwrap().to_rgb8()
}

fn jpeg_b64(img: &image::RgbImage) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(kycd::media::intake::encode_jpeg(img, 92))
}

fn ocr(app: &TestApp, key: &crate::common::Key, body: Value) -> crate::common::Resp {
    app.signed(
        key,
        "POST",
        "/v1/document/ocr",
        &serde_json::to_vec(&body).unwrap(),
    )
}

#[test]
fn ocr_reads_the_td3_specimen() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let r = ocr(
        &app,
        &key,
        json!({ "image_front_base64": fixture_b64("documents/passport-td3.jpg") }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["detected"]["type"], "passport", "{}", r.text);
    assert_eq!(b["detected"]["country"], "UTO");
    assert_eq!(b["detected"]["source"], "mrz");
    assert_eq!(b["mrz"]["lines"], json!(TD3));
    assert_eq!(b["mrz"]["format"], "TD3");
    let f = &b["fields"];
    assert_eq!(f["surname"], "ERIKSSON");
    assert_eq!(f["given_names"], "ANNA MARIA");
    assert_eq!(f["document_number"], "L898902C3");
    assert_eq!(f["nationality"], "UTO");
    assert_eq!(f["date_of_birth"], "1974-08-12");
    assert_eq!(f["date_of_expiry"], "2012-04-15");
    assert_eq!(f["sex"], "F");
    // Printed-only fields, from their labels.
    assert_eq!(f["place_of_birth"], "ZENITH", "{f}");
    assert_eq!(f["date_of_issue"], "2007-04-16", "{f}");
    // The print agrees with the MRZ.
    for check in [
        "surname",
        "given_names",
        "document_number",
        "birth_date",
        "sex",
    ] {
        let c = b["mrz"]["print_checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("viz_mrz_consistency_{check}"))
            .unwrap_or_else(|| panic!("no {check}: {}", b["mrz"]["print_checks"]));
        assert_eq!(c["status"], "pass", "{c}");
    }
    assert!(b["images"]["face_crop_base64"].as_str().unwrap().len() > 1000);
    assert!(b["quality"]["sharpness"].as_f64().unwrap() > 0.0);
    assert_eq!(b["usage"]["module"], "ocr");
}

#[test]
fn ocr_refuses_pages_that_are_not_documents() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    // A face, no document.
    let r = ocr(
        &app,
        &key,
        json!({ "image_front_base64": fixture_b64("faces/obama.jpg") }),
    );
    r.assert_error(422, "no_document_found");
    use base64::Engine;
    let blank = kycd::media::intake::encode_jpeg(&image::RgbImage::new(640, 400), 90);
    let r = ocr(
        &app,
        &key,
        json!({ "image_front_base64": base64::engine::general_purpose::STANDARD.encode(blank) }),
    );
    r.assert_error(422, "no_document_found");
    ocr(&app, &key, json!({ "image_front_base64": "@@@" })).assert_error(422, "invalid_image");
}

/// A fixture page transformed by `f`, as base64 JPEG.
fn transformed_b64(path: &str, f: impl Fn(&image::RgbImage) -> image::RgbImage) -> String {
    use base64::Engine;
    let img = image::open(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .to_rgb8();
    let jpeg = kycd::media::intake::encode_jpeg(&f(&img), 92);
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

#[test]
fn ocr_turns_upside_down_and_sideways_pages_upright() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    type Turn = fn(&image::RgbImage) -> image::RgbImage;
    let cases: [(&str, Turn, u64); 3] = [
        ("passport-td3.jpg", image::imageops::rotate180, 180),
        ("passport-td3.jpg", image::imageops::rotate90, 270),
        ("passport-td2.jpg", image::imageops::rotate270, 90),
    ];
    for (file, turn, undone) in cases {
        let body =
            json!({ "image_front_base64": transformed_b64(&format!("documents/{file}"), turn) });
        let r = ocr(&app, &key, body);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["rotation"], undone, "{file}: {}", r.text);
        assert_eq!(r.body["fields"]["surname"], "ERIKSSON", "{file}");
        assert_eq!(r.body["fields"]["date_of_birth"], "1974-08-12", "{file}");
        if file == "passport-td3.jpg" {
            assert_eq!(r.body["mrz"]["lines"], json!(TD3), "{file}");
        }
        assert!(r.body["images"]["face_crop_base64"].is_string(), "{file}");
    }
}

#[test]
fn ocr_reports_the_sides_a_photo_cuts_off() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    // The right eighth of the page is outside the photo: the MRZ lines run off it.
    let cut = transformed_b64("documents/passport-td3.jpg", |img| {
        let w = img.width() * 7 / 8;
        image::imageops::crop_imm(img, 0, 0, w, img.height()).to_image()
    });
    let r = ocr(&app, &key, json!({ "image_front_base64": cut }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["missing_areas"], json!(["right"]), "{}", r.text);
    assert_eq!(r.body["quality"]["cropped"], true);
    // The whole page: nothing missing.
    let whole = ocr(
        &app,
        &key,
        json!({ "image_front_base64": fixture_b64("documents/passport-td3.jpg") }),
    );
    assert_eq!(whole.body["missing_areas"], json!([]), "{}", whole.text);
    assert_eq!(whole.body["quality"]["cropped"], false);
}

/// A generated passport whose printed surname was changed (the MRZ left as issued): the OCR
/// report's print check fails, the MRZ itself still validates.
#[test]
fn ocr_reports_a_printed_name_that_differs_from_the_mrz() {
    use crate::common::docgen;
    use kycd::vision::liveness::synthetic::Rng;
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let mut rng = Rng::new(9_303_777);
    let truth = docgen::identity(&mut rng, "TD3");
    let mut altered = truth.clone();
    altered.surname = if truth.surname == "KOWALSKI" {
        "NOWAK".into()
    } else {
        "KOWALSKI".into()
    };
    let img = docgen::render(&altered, &face_fixture("obama.jpg"), &mut rng);
    let r = ocr(&app, &key, json!({ "image_front_base64": jpeg_b64(&img) }));
    assert_eq!(r.status, 200, "{}", r.text);
    let m = &r.body["mrz"];
    assert_eq!(m["lines"], json!(truth.mrz), "{}", r.body["text"]);
    let surname = m["print_checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "viz_mrz_consistency_surname")
        .unwrap_or_else(|| panic!("{}", m["print_checks"]));
    assert_eq!(surname["status"], "fail", "{surname}");
    assert!(!surname.to_string().contains(&altered.surname));
}

/// A generated ID card lying on a desk, photographed at an angle (its far edge 25 % shorter than
/// its near one): the card is found by its edges, warped flat and read; its corners are reported
/// in the photo's pixels.
#[test]
fn ocr_finds_a_card_photographed_at_an_angle_and_reads_it_flat() {
    use crate::common::docgen;
    use kycd::vision::liveness::synthetic::Rng;
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let mut rng = Rng::new(7810);
    let truth = docgen::identity(&mut rng, "TD1");
    let page = docgen::page(&truth, &face_fixture("biden.jpg"), &mut rng);
    let corners = [
        [300.0, 150.0],
        [1000.0, 110.0],
        [1170.0, 760.0],
        [140.0, 790.0],
    ];
    let photo = docgen::on_desk(&page, corners, (1280, 900));
    let r = ocr(
        &app,
        &key,
        json!({ "image_front_base64": jpeg_b64(&photo) }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let found = r.body["card"]["corners"]
        .as_array()
        .unwrap_or_else(|| panic!("no card: {}", r.body["card"]));
    for (got, want) in found.iter().zip(corners) {
        let (x, y) = (got[0].as_f64().unwrap(), got[1].as_f64().unwrap());
        let off = (x - f64::from(want[0])).hypot(y - f64::from(want[1]));
        assert!(off < 10.0, "corner {got} vs {want:?}");
    }
    assert_eq!(
        r.body["mrz"]["lines"],
        json!(truth.mrz),
        "{}",
        r.body["text"]
    );
    assert_eq!(r.body["mrz"]["valid"], true);
    assert_eq!(r.body["missing_areas"], json!([]));
    assert_eq!(r.body["detected"]["type"], "id_card");
}
