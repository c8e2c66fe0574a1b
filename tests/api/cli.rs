//! The `kycd` binary itself: admin commands against a data directory a server is using, and a
//! graceful stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestApp;

pub fn kycd(data_dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kycd"))
        .arg("--data-dir")
        .arg(data_dir)
        .envs(crate::common::store_env(std::path::Path::new(&data_dir)))
        .args(args)
        .env_remove("KYCD_ADMIN_TOKEN")
        .output()
        .expect("kycd runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_cli_works_while_the_server_runs() {
    let app = TestApp::spawn();
    let dir = app.data_dir.path();
    let (code, out, err) = kycd(
        dir,
        &["admin", "tenant", "create", "--name", "CLI Bank", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let tenant: Value = serde_json::from_str(&out).unwrap();
    let tenant_id = tenant["tenant_id"].as_str().unwrap();

    let (code, out, err) = kycd(
        dir,
        &["admin", "key", "create", "--tenant", tenant_id, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let key = crate::common::Key {
        tenant_id: tenant_id.to_owned(),
        key_id: created["key_id"].as_str().unwrap().to_owned(),
        secret: created["secret"].as_str().unwrap().to_owned(),
    };
    // The running server accepts the key the CLI just made...
    assert_eq!(app.signed(&key, "GET", "/v1/ping", b"").status, 200);

    let (code, out, _) = kycd(dir, &["admin", "key", "list", "--json"]);
    assert_eq!(code, 0);
    assert!(!out.contains(&key.secret));
    let (code, out, _) = kycd(dir, &["admin", "tenant", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("CLI Bank"));

    // Rotation with a 24 h overlap: the new secret verifies, and so does the old one for now.
    let (code, out, err) = kycd(
        dir,
        &[
            "admin",
            "key",
            "rotate",
            "--key",
            &key.key_id,
            "--overlap",
            "24h",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let until = rotated["previous_secret_valid_until"].as_i64().unwrap();
    assert!((until - crate::common::now() - 86_400).abs() <= 5, "{out}");
    let new = crate::common::Key {
        secret: rotated["secret"].as_str().unwrap().to_owned(),
        ..key.clone()
    };
    assert_eq!(app.signed(&new, "GET", "/v1/ping", b"").status, 200);
    assert_eq!(app.signed(&key, "GET", "/v1/ping", b"").status, 200);
    let (code, _, err) = kycd(
        dir,
        &[
            "admin",
            "key",
            "rotate",
            "--key",
            &key.key_id,
            "--overlap",
            "40d",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("overlap"), "{err}");

    // Plans and a tenant's overrides from the CLI; the tenant (Free) has sandbox keys only.
    let (code, out, err) = kycd(dir, &["admin", "plan", "show", "--plan", "free"]);
    assert_eq!(code, 0, "{err}");
    let mut free: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(free["sandbox_only"], true);
    free["modules"]["ocr"]["monthly_quota"] = 7.into();
    let plan_file = dir.join("free.json");
    std::fs::write(&plan_file, free.to_string()).unwrap();
    let file = plan_file.to_str().unwrap();
    let (code, _, err) = kycd(
        dir,
        &["admin", "plan", "set", "--plan", "free", "--file", file],
    );
    assert_eq!(code, 0, "{err}");
    let overrides = dir.join("overrides.json");
    std::fs::write(&overrides, r#"{"modules":{"ocr":{"monthly_quota":-1}}}"#).unwrap();
    let o = overrides.to_str().unwrap();
    let (code, _, err) = kycd(
        dir,
        &[
            "admin",
            "tenant",
            "plan",
            "--tenant",
            tenant_id,
            "--overrides",
            o,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("overrides.modules.ocr.monthly_quota"), "{err}");
    let (code, _, err) = kycd(
        dir,
        &[
            "admin",
            "key",
            "create",
            "--tenant",
            tenant_id,
            "--environment",
            "live",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("environment"), "{err}");
    let (code, out, err) = kycd(
        dir,
        &[
            "admin",
            "key",
            "create",
            "--tenant",
            tenant_id,
            "--scopes",
            "ocr,validation",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("key_id"), "{out}");

    // ...and stops accepting it once the CLI revokes it or suspends the tenant.
    let (code, _, err) = kycd(dir, &["admin", "key", "revoke", "--key", &key.key_id]);
    assert_eq!(code, 0, "{err}");
    app.signed(&key, "GET", "/v1/ping", b"")
        .assert_error(401, "key_revoked");

    let (code, _, err) = kycd(dir, &["admin", "tenant", "create", "--name", " ", "--json"]);
    assert_ne!(code, 0);
    assert!(err.contains("name"), "{err}");
    let (code, _, _) = kycd(dir, &["admin", "key", "revoke", "--key", "ak_missing"]);
    assert_ne!(code, 0);
}

#[test]
fn serve_creates_its_files_becomes_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let (mut child, agent) = crate::common::spawn_binary(port, dir.path(), &[], Stdio::null());
    use std::os::unix::fs::PermissionsExt;
    for name in ["master.key", "admin.token"] {
        let meta = std::fs::metadata(dir.path().join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    let (code, token, _) = kycd(dir.path(), &["admin", "token"]);
    assert_eq!(code, 0);
    let r = agent
        .get(format!("http://127.0.0.1:{port}/admin/v1/tenants"))
        .header("Authorization", format!("Bearer {}", token.trim()))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

#[test]
fn document_ocr_reads_the_specimen_mrz_offline() {
    let dir = tempfile::tempdir().unwrap();
    let image = format!(
        "{}/tests/fixtures/documents/passport-td3.jpg",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out, err) = kycd(dir.path(), &["document", "ocr", &image, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["mrz"]["lines"][1], "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        "{out}"
    );
    // Every check digit holds; only the (2012) expiry fails.
    let failed: Vec<&str> = v["mrz"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["not_expired"], "{out}");
    assert_eq!(v["mrz"]["repairs"].as_array().unwrap().len(), 1);
    assert_eq!(v["detected"]["type"], "passport");
    assert_eq!(v["fields"]["surname"], "ERIKSSON");
    assert_eq!(v["fields"]["nationality"], "UTO");
    assert!(v["images"]["face_crop_base64"].is_string());
    assert!(v["text"].as_array().unwrap().len() > 20);
}

#[test]
fn verify_runs_the_whole_workflow_offline() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |p: &str| format!("{}/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR"));
    let (selfie, document) = (
        fixture("faces/obama2.jpg"),
        fixture("documents/passport-td3.jpg"),
    );
    let (code, out, err) = kycd(
        dir.path(),
        &[
            "verify",
            "--selfie",
            &selfie,
            "--document",
            &document,
            "--name",
            "Anna Maria Eriksson",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Not the same person, and the specimen expired in 2012.
    assert_eq!(v["decision"], "rejected", "{out}");
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("< 0.75 threshold"), "{reasons}");
    assert!(
        reasons.contains("document expired on 2012-04-15"),
        "{reasons}"
    );
    assert_eq!(v["extracted"]["surname"], "ERIKSSON");
    assert_eq!(
        v["factors"]["kya"]["details"]["passed"],
        serde_json::json!(["name_match"])
    );
    assert!(v["timings"]["total_ms"].is_number());
    // The readable report names the decision.
    let (code, out, _) = kycd(
        dir.path(),
        &["verify", "--selfie", &selfie, "--document", &document],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("decision: REJECTED"), "{out}");
}

#[test]
fn doctor_says_what_to_fix_and_health_follows_readiness() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn();
    let dir = app.data_dir.path();
    let check = |report: &Value, name: &str| -> Value {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
            .clone()
    };
    // A data directory other users can look into: a failure that names the fix.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out, _) = kycd(dir, &["doctor", "--no-models", "--json"]);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let finding = check(&report, "data directory");
    assert_eq!(finding["level"], "fail", "{report:#}");
    assert!(
        finding["fix"].as_str().unwrap().starts_with("chmod 0700"),
        "{finding}"
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    let (code, out, err) = kycd(dir, &["doctor", "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(code, 0, "{report:#}");
    for name in [
        "data directory",
        "master key",
        "disk",
        "clock",
        "database",
        "models",
    ] {
        assert_ne!(check(&report, name)["level"], "fail", "{report:#}");
    }
    assert_eq!(check(&report, "models")["level"], "ok", "{report:#}");

    // A master key others can read: a failure that names the fix.
    let key = dir.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, _) = kycd(dir, &["doctor", "--no-models", "--json"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    let finding = check(&report, "master key");
    assert_eq!(finding["level"], "fail", "{report:#}");
    assert!(
        finding["fix"].as_str().unwrap().contains("chmod 0600"),
        "{finding}"
    );
    // In words, too.
    let (code, out, _) = kycd(dir, &["doctor", "--no-models"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok   master key"), "{out}");

    // health: 0 while the server is ready, not 0 when nothing answers.
    let url = format!("{}/readyz", app.base);
    let (code, out, err) = kycd(dir, &["health", "--url", &url]);
    assert_eq!(code, 0, "{out}{err}");
    let closed = format!("http://127.0.0.1:{}/readyz", crate::common::free_port());
    let (code, _, err) = kycd(dir, &["health", "--url", &closed, "--timeout", "2"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn the_sample_set_gives_its_expected_outputs() {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/run"))
        .arg(env!("CARGO_BIN_EXE_kycd"))
        .output()
        .expect("python3 runs samples/run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("3 of 3 cases as expected"), "{text}");
}
