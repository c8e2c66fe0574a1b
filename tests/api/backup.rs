//! `kycd backup`, `kycd backup verify`, `kycd restore`: a backup taken from a serving node while
//! its jobs run, checked, refused when wrong or damaged, restored into a new directory, and the
//! restored node serves: its keys verify, its media decrypts, its audit chain verifies, and every
//! job accepted before the backup is there and completes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::kycd;
use crate::common::{call, free_port, media_body, sign_headers, spawn_binary, with_json, TestApp};

fn signed_call(
    port: u16,
    key: &crate::common::Key,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Value) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NONCE: AtomicU64 = AtomicU64::new(0);
    // Polling sends the same request within a second: a fresh nonce keeps each one new.
    let nonce = format!("restored-{}", NONCE.fetch_add(1, Ordering::Relaxed));
    let h = with_json(
        sign_headers(key, method, path, body, crate::common::now(), Some(&nonce)),
        body,
    );
    call(port, method, path, &h, body).expect("the restored node answers")
}

#[test]
fn a_backup_under_load_restores_into_a_node_that_serves() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let dir = app.data_dir.path();
    let work = tempfile::tempdir().unwrap();
    let pass = work.path().join("passphrase");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let file = work.path().join("node.kycdbak");
    let file_s = file.to_str().unwrap();
    let pass_s = pass.to_str().unwrap();

    if app.database.is_some() {
        // PostgreSQL + S3 have backups of their own: refused with that advice.
        let (code, _, err) = kycd(
            dir,
            &["backup", "--out", file_s, "--passphrase-file", pass_s],
        );
        assert_ne!(code, 0);
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!file.exists());
        return;
    }

    // Stored media, and eight verifications queued just before the backup: it runs while two
    // workers are busy with them.
    let r = app.signed(
        &key,
        "POST",
        "/v1/subjects/applicant-1/media",
        &media_body("selfie", 7),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let media_id = r.body["media"]["id"].as_str().unwrap().to_owned();
    let (doc, _) = crate::workflow::passport_b64(21, "obama.jpg", false);
    let body = json!({ "selfie": crate::workflow::face_b64("obama2.jpg"), "document_front": doc });
    let jobs: Vec<String> = (0..8)
        .map(|_| crate::workflow::submit(&app, &key, &body))
        .collect();

    let (code, out, err) = kycd(
        dir,
        &[
            "backup",
            "--out",
            file_s,
            "--passphrase-file",
            pass_s,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    let in_backup: i64 = made["jobs"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(in_backup, 8, "every accepted job is in the backup: {made}");
    let unfinished = ["queued", "running"]
        .iter()
        .map(|s| made["jobs"][s].as_i64().unwrap_or(0))
        .sum::<i64>();
    assert!(
        unfinished > 0,
        "the backup ran while jobs were still running: {made}"
    );
    assert!(made["objects"].as_u64().unwrap() >= 1, "{made}");
    let sidecar = std::fs::read_to_string(format!("{file_s}.sha256")).unwrap();
    assert!(
        sidecar.starts_with(made["sha256"].as_str().unwrap()),
        "{sidecar}"
    );
    // Encrypted: no plaintext JPEG, database or key material in the file.
    let bytes = std::fs::read(&file).unwrap();
    assert!(!crate::common::contains_bytes(&bytes, b"SQLite format 3"));
    assert!(!crate::common::contains_bytes(
        &bytes,
        &std::fs::read(dir.join("master.key")).unwrap()
    ));
    assert!(!crate::common::contains_bytes(&bytes, b"manifest.json"));

    // verify: the whole file, with the right passphrase only; a changed byte or a cut fails.
    let (code, out, err) = kycd(
        dir,
        &[
            "backup",
            "verify",
            file_s,
            "--passphrase-file",
            pass_s,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["sha256"], made["sha256"]);
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase at all").unwrap();
    let (code, _, err) = kycd(
        dir,
        &[
            "backup",
            "verify",
            file_s,
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("wrong passphrase"), "{err}");
    let damaged = work.path().join("damaged.kycdbak");
    let mut copy = bytes.clone();
    let middle = copy.len() / 2;
    copy[middle] ^= 0x01;
    std::fs::write(&damaged, &copy).unwrap();
    let (code, _, err) = kycd(
        dir,
        &[
            "backup",
            "verify",
            damaged.to_str().unwrap(),
            "--passphrase-file",
            pass_s,
        ],
    );
    assert_ne!(code, 0, "a flipped bit verified");
    assert!(
        err.contains("damaged") || err.contains("does not open"),
        "{err}"
    );
    let cut = work.path().join("cut.kycdbak");
    std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
    let (code, _, err) = kycd(
        dir,
        &[
            "backup",
            "verify",
            cut.to_str().unwrap(),
            "--passphrase-file",
            pass_s,
        ],
    );
    assert_ne!(code, 0, "a truncated backup verified");
    assert!(
        err.contains("truncated") || err.contains("does not open"),
        "{err}"
    );
    // A damaged backup is never half-restored.
    let refused_dir = work.path().join("refused");
    let (code, _, _) = kycd(
        &refused_dir,
        &[
            "restore",
            damaged.to_str().unwrap(),
            "--passphrase-file",
            pass_s,
        ],
    );
    assert_ne!(code, 0);
    assert!(!refused_dir.exists() || std::fs::read_dir(&refused_dir).unwrap().next().is_none());

    // restore into a new directory; not over a used one.
    let restored = work.path().join("restored");
    let (code, _, err) = kycd(&restored, &["restore", file_s, "--passphrase-file", pass_s]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kycd(&restored, &["restore", file_s, "--passphrase-file", pass_s]);
    assert_ne!(code, 0);
    assert!(err.contains("not empty"), "{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&restored).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let mode = std::fs::metadata(restored.join("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // The restored node serves.
    let (code, _, err) = kycd(&restored, &["audit", "verify"]);
    assert_eq!(code, 0, "the restored audit chain verifies: {err}");
    let port = free_port();
    let (mut child, _) = spawn_binary(port, &restored, &[], Stdio::null());
    let (status, _) = signed_call(port, &key, "GET", &format!("/v1/media/{media_id}"), b"");
    assert_eq!(
        status, 200,
        "the key verifies and the media decrypts on the restored node"
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    for id in &jobs {
        loop {
            let (status, job) = signed_call(port, &key, "GET", &format!("/v1/jobs/{id}"), b"");
            assert_eq!(status, 200, "{job}");
            if job["status"] == "completed" {
                assert!(job["decision"].is_string(), "{job}");
                break;
            }
            assert!(Instant::now() < deadline, "job {id} never completed: {job}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
