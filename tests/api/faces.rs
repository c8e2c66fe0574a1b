//! The 1:N face index through the signed API, on the real fixture photos with the real models:
//! enrolment and its quality floor, search within a tenant only, a stored reference for 1:1
//! match, erasure, and the workflow's `dedup` step.

use serde_json::{json, Value};

use crate::common::{Key, Resp, TestApp};
use crate::workflow::{face_b64, passport_b64, submit, wait};

fn post(app: &TestApp, key: &Key, path: &str, body: Value) -> Resp {
    app.signed(key, "POST", path, &serde_json::to_vec(&body).unwrap())
}

fn enrol(app: &TestApp, key: &Key, photo: &str, subject: &str) -> String {
    let r = post(
        app,
        key,
        "/v1/faces",
        json!({ "image_base64": face_b64(photo), "subject_id": subject }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["subject_id"], subject);
    assert_eq!(r.body["collection"], "default");
    assert!(r.body["quality"]["inter_eye_px"].as_f64().unwrap() > 35.0);
    assert_eq!(r.body["usage"]["module"], "face_match");
    r.body["face_id"].as_str().unwrap().to_owned()
}

fn search(app: &TestApp, key: &Key, body: Value) -> Vec<Value> {
    let r = post(app, key, "/v1/faces/search", body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["candidates"].as_array().unwrap().clone()
}

fn subjects(candidates: &[Value]) -> Vec<&str> {
    candidates
        .iter()
        .map(|c| c["subject_id"].as_str().unwrap())
        .collect()
}

/// A second view of a fixture: mirrored, 25 % darker, scaled to 70 %.
fn other_view(name: &str) -> String {
    use base64::Engine;
    let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
    let img = image::open(path).unwrap().to_rgb8();
    let mut img = image::imageops::flip_horizontal(&img);
    for p in img.pixels_mut() {
        p.0 = p.0.map(|c| (f32::from(c) * 0.75) as u8);
    }
    let (w, h) = img.dimensions();
    let img = image::imageops::resize(
        &img,
        w * 7 / 10,
        h * 7 / 10,
        image::imageops::FilterType::Triangle,
    );
    base64::engine::general_purpose::STANDARD.encode(kycd::media::intake::encode_jpeg(&img, 85))
}

/// obama.jpg blurred until the face has no fine detail left (σ = 6).
fn blurred_obama() -> String {
    use base64::Engine;
    let path = format!(
        "{}/tests/fixtures/faces/obama.jpg",
        env!("CARGO_MANIFEST_DIR")
    );
    let img = image::open(path).unwrap().to_rgb8();
    let blurred = image::imageops::blur(&img, 6.0);
    base64::engine::general_purpose::STANDARD.encode(kycd::media::intake::encode_jpeg(&blurred, 90))
}

#[test]
fn enrolled_faces_are_found_from_other_photos_only_in_their_tenant_and_erased_at_once() {
    let app = TestApp::spawn();
    let a = app.tenant_with_key();
    let b = app.tenant_with_key();
    let obama = enrol(&app, &a, "obama.jpg", "obama");
    let biden = enrol(&app, &a, "biden.jpg", "biden");

    // Each other photo of the enrolled identity finds it at rank 1; the other identity stays
    // below the threshold (the tenant's face-match threshold, 0.75).
    for photo in ["obama2.jpg", "obama3.jpg"] {
        let found = search(&app, &a, json!({ "image_base64": face_b64(photo) }));
        assert_eq!(subjects(&found), ["obama"], "{photo}: {found:?}");
        assert_eq!(found[0]["face_id"], obama.as_str());
        assert!(found[0]["similarity"].as_f64().unwrap() >= 0.75);
        // With no threshold at all both come back, the right one first.
        let all = search(
            &app,
            &a,
            json!({ "image_base64": face_b64(photo), "threshold": 0.0, "top_k": 5 }),
        );
        assert_eq!(subjects(&all), ["obama", "biden"], "{photo}: {all:?}");
        assert!(all[1]["similarity"].as_f64().unwrap() < 0.5, "{all:?}");
    }
    // Biden has one photo in the fixtures: his other "photo" is it mirrored, darker and smaller.
    let found = search(&app, &a, json!({ "image_base64": other_view("biden.jpg") }));
    assert_eq!(subjects(&found), ["biden"], "{found:?}");
    assert_eq!(found[0]["face_id"], biden.as_str());

    // Searching with an enrolled face leaves the face itself out.
    let again = enrol(&app, &a, "obama2.jpg", "obama-again");
    let found = search(&app, &a, json!({ "face_id": obama }));
    assert_eq!(subjects(&found), ["obama-again"], "{found:?}");
    assert_eq!(found[0]["face_id"], again.as_str());
    // A collection narrows the search.
    let r = post(
        &app,
        &a,
        "/v1/faces",
        json!({ "image_base64": face_b64("obama3.jpg"), "subject_id": "staff-1", "collection": "staff" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let found = search(
        &app,
        &a,
        json!({ "image_base64": face_b64("obama2.jpg"), "collection": "staff" }),
    );
    assert_eq!(subjects(&found), ["staff-1"]);

    // The stored reference for a 1:1 match.
    let r = post(
        &app,
        &a,
        "/v1/face/match",
        json!({ "image_a_base64": face_b64("obama3.jpg"), "reference_id": obama }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["match"], true, "{}", r.text);
    assert_eq!(r.body["reference"]["subject_id"], "obama");
    let r = post(
        &app,
        &a,
        "/v1/face/match",
        json!({ "image_a_base64": face_b64("biden.jpg"), "reference_id": obama }),
    );
    assert_eq!(r.body["match"], false, "{}", r.text);

    // Tenant B sees none of it.
    let r = post(
        &app,
        &b,
        "/v1/faces/search",
        json!({ "image_base64": face_b64("obama2.jpg"), "threshold": 0.0 }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["candidates"], json!([]));
    assert_eq!(r.body["searched"], 0);
    post(&app, &b, "/v1/faces/search", json!({ "face_id": obama })).assert_error(404, "not_found");
    post(
        &app,
        &b,
        "/v1/face/match",
        json!({ "image_a_base64": face_b64("obama3.jpg"), "reference_id": obama }),
    )
    .assert_error(404, "not_found");
    app.signed(&b, "DELETE", &format!("/v1/faces/{obama}"), b"")
        .assert_error(404, "not_found");

    // The quality floor names why; two people are not one reference.
    let r = post(
        &app,
        &a,
        "/v1/faces",
        json!({ "image_base64": blurred_obama(), "subject_id": "blurry" }),
    );
    r.assert_error(422, "face_quality_too_low");
    let details = &r.body["error"]["details"];
    assert!(
        details["warnings"]
            .as_array()
            .unwrap()
            .contains(&json!("blurry")),
        "{details}"
    );
    assert!(details["quality"]["sharpness"].as_f64().unwrap() < 25.0);
    post(
        &app,
        &a,
        "/v1/faces",
        json!({ "image_base64": face_b64("two_people.jpg"), "subject_id": "two" }),
    )
    .assert_error(422, "multiple_faces");
    post(
        &app,
        &a,
        "/v1/faces",
        json!({ "image_base64": face_b64("obama.jpg") }),
    )
    .assert_error(422, "invalid_input");
    post(
        &app,
        &a,
        "/v1/faces/search",
        json!({ "face_id": obama, "top_k": 1000 }),
    )
    .assert_error(422, "invalid_input");

    // Without the permission, no enrolment and no search.
    let narrow = app.create_key_with(&a.tenant_id, json!({ "permissions": ["results:read"] }));
    let r = post(
        &app,
        &narrow,
        "/v1/faces",
        json!({ "image_base64": face_b64("obama.jpg"), "subject_id": "x" }),
    );
    r.assert_error(403, "forbidden_scope");
    assert_eq!(r.body["error"]["details"]["permission"], "faces:write");
    post(
        &app,
        &narrow,
        "/v1/faces/search",
        json!({ "face_id": obama }),
    )
    .assert_error(403, "forbidden_scope");
    post(
        &app,
        &narrow,
        "/v1/face/match",
        json!({ "image_a_base64": face_b64("obama3.jpg"), "reference_id": obama }),
    )
    .assert_error(403, "forbidden_scope");

    // Erasing a subject takes its faces out of search at once, and the receipt counts them.
    let r = app.signed(&a, "DELETE", "/v1/subjects/obama", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["deleted"]["embeddings"], 1, "{}", r.text);
    let found = search(&app, &a, json!({ "image_base64": face_b64("obama2.jpg") }));
    assert!(!subjects(&found).contains(&"obama"), "{found:?}");
    post(&app, &a, "/v1/faces/search", json!({ "face_id": obama })).assert_error(404, "not_found");
    let rows: i64 = app.with_store(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM faces WHERE subject_id = 'obama'",
            kycd::store::params![],
            |r| r.get(0),
        )
    });
    assert_eq!(rows, 0);
    // A deleted face is gone too.
    let r = app.signed(&a, "DELETE", &format!("/v1/faces/{biden}"), b"");
    assert_eq!(r.status, 204, "{}", r.text);
    let found = search(&app, &a, json!({ "image_base64": face_b64("biden.jpg") }));
    assert_eq!(subjects(&found), Vec::<&str>::new());
}

#[test]
fn a_face_enrolled_under_another_subject_sends_the_verification_to_review() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let mut steps = json!(["liveness", "ocr", "validate", "face_match", "kya", "dedup"]);
    let r = app.signed(
        &key,
        "PUT",
        "/v1/workflow",
        &serde_json::to_vec(&json!({ "steps": steps, "dedup": { "enrol_accepted": true } }))
            .unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dedup"]["enrol_accepted"], true);
    // `dedup` needs the selfie's face.
    steps = json!(["ocr", "dedup"]);
    let r = app.signed(
        &key,
        "PUT",
        "/v1/workflow",
        &serde_json::to_vec(&json!({ "steps": steps })).unwrap(),
    );
    r.assert_error(422, "invalid_input");

    let (doc, _) = passport_b64(8, "obama.jpg", false);
    let first = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama2.jpg"), "document_front": doc, "reference": "applicant-1" }),
    );
    let r = wait(&app, &key, &first);
    assert_eq!(r["decision"], "accepted", "{r:#}");
    assert_eq!(r["steps"]["dedup"]["matches"], json!([]), "{r:#}");

    // The same face under a new name: review, naming the other subject, job and similarity.
    let (doc, _) = passport_b64(9, "obama.jpg", false);
    let second = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama3.jpg"), "document_front": doc, "reference": "applicant-2" }),
    );
    let r = wait(&app, &key, &second);
    assert_eq!(r["decision"], "review", "{r:#}");
    let reasons: Vec<&str> = r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let duplicate = reasons
        .iter()
        .find(|x| x.starts_with("face already enrolled under subject applicant-1"))
        .unwrap_or_else(|| panic!("{reasons:?}"));
    assert!(duplicate.contains(&format!("job {first}")), "{duplicate}");
    assert!(duplicate.contains("at similarity 0."), "{duplicate}");
    assert!(
        reasons.contains(&"rule duplicate_face → review"),
        "{reasons:?}"
    );
    let hit = &r["steps"]["dedup"]["matches"][0];
    assert_eq!(hit["subject_id"], "applicant-1");
    assert_eq!(hit["job_id"], first.as_str());

    // Only an accepted verification's face can be enrolled from its job.
    post(&app, &key, "/v1/faces", json!({ "job_id": second })).assert_error(409, "conflict");
    // The first one's is enrolled already; enrolling it again under another collection works.
    let r = post(
        &app,
        &key,
        "/v1/faces",
        json!({ "job_id": first, "collection": "vip" }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["subject_id"], "applicant-1");
    assert_eq!(r.body["job_id"], first.as_str());

    // Configurable: the same rule can reject instead.
    let mut workflow = app.signed(&key, "GET", "/v1/workflow", b"").body;
    for rule in workflow["rules"].as_array_mut().unwrap() {
        if rule["when"] == "duplicate_face" {
            rule["decision"] = json!("rejected");
        }
    }
    let r = app.signed(
        &key,
        "PUT",
        "/v1/workflow",
        &serde_json::to_vec(&workflow).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (doc, _) = passport_b64(10, "obama.jpg", false);
    let third = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama3.jpg"), "document_front": doc, "reference": "applicant-3" }),
    );
    let r = wait(&app, &key, &third);
    assert_eq!(r["decision"], "rejected", "{r:#}");

    // Erasing the first applicant removes both embeddings: the enrolled faces and the job's.
    let r = app.signed(&key, "DELETE", "/v1/subjects/applicant-1", b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["deleted"]["embeddings"], 3,
        "two faces and one job's: {}",
        r.text
    );
    let found = search(
        &app,
        &key,
        json!({ "image_base64": face_b64("obama2.jpg"), "threshold": 0.0 }),
    );
    assert!(!subjects(&found).contains(&"applicant-1"), "{found:?}");
}

#[test]
fn faces_import_enrols_a_directory_and_the_running_server_finds_them() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let photos = tempfile::tempdir().unwrap();
    let fixtures = format!("{}/tests/fixtures/faces", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(photos.path().join("president-44")).unwrap();
    for (from, to) in [
        ("obama.jpg", "president-44/portrait.jpg"),
        ("biden.jpg", "biden.jpg"),
        ("two_people.jpg", "two_people.jpg"),
        ("README.md", "president-44/notes.md"),
    ] {
        std::fs::copy(format!("{fixtures}/{from}"), photos.path().join(to)).unwrap();
    }
    let (code, out, err) = crate::cli::kycd(
        app.data_dir.path(),
        &[
            "faces",
            "import",
            photos.path().to_str().unwrap(),
            "--tenant",
            &key.tenant_id,
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("enrolled 2 of 3 photos"), "{out}");
    assert!(out.contains("refused 1:"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("two_people.jpg") && l.contains("faces found where exactly one")),
        "{out}"
    );
    // The server's index follows what another process enrolled, within a second or two.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = search(
            &app,
            &key,
            json!({ "image_base64": face_b64("obama2.jpg") }),
        );
        if subjects(&found) == ["president-44"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{found:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, _, err) = crate::cli::kycd(
        app.data_dir.path(),
        &[
            "faces",
            "import",
            photos.path().to_str().unwrap(),
            "--tenant",
            "nope",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no tenant nope"), "{err}");
}
