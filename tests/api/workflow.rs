//! The verification workflow through the signed API: jobs queued, run by the worker pool and
//! scored; workflow configuration and its errors.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::docgen;
use crate::common::{Key, TestApp};
use kycd::vision::liveness::synthetic::Rng;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn face(name: &str) -> image::RgbImage {
    let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
    image::open(path).unwrap().to_rgb8()
}

pub fn face_b64(name: &str) -> String {
    let path = format!("{}/tests/fixtures/faces/{name}", env!("CARGO_MANIFEST_DIR"));
    b64(&std::fs::read(path).unwrap())
}

/// A generated TD3 passport bearing `portrait`, as base64 JPEG, with its truth.
pub fn passport_b64(seed: u64, portrait: &str, expired: bool) -> (String, docgen::Truth) {
    let mut rng = Rng::new(seed);
    let years = if expired { (2015, 2020) } else { (2028, 2035) };
    let truth = docgen::identity_expiring(&mut rng, "TD3", years);
    let img = docgen::render(&truth, &face(portrait), &mut rng);
    (b64(&kycd::media::intake::encode_jpeg(&img, 92)), truth)
}

/// A job result's reasons.
fn reasons_of(job: &Value) -> Vec<&str> {
    job["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Submits a verification and returns the job id.
pub fn submit(app: &TestApp, key: &Key, body: &Value) -> String {
    let r = app.signed(
        key,
        "POST",
        "/v1/kyc/verify",
        &serde_json::to_vec(body).unwrap(),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "queued");
    r.body["job_id"].as_str().unwrap().to_owned()
}

/// Polls a job until it is completed or failed.
pub fn wait(app: &TestApp, key: &Key, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = app.signed(key, "GET", &format!("/v1/jobs/{id}"), b"");
        assert_eq!(r.status, 200, "{}", r.text);
        if ["completed", "failed"].contains(&r.body["status"].as_str().unwrap_or("")) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} still {}",
            r.body["status"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn same_person_is_accepted_another_rejected_and_an_expired_document_ruled() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let (doc, truth) = passport_b64(8, "obama.jpg", false);
    let same = submit(
        &app,
        &key,
        &json!({
            "selfie": face_b64("obama2.jpg"),
            "document_front": doc,
            "applicant": { "name": format!("{} {}", truth.given_names, truth.surname), "email": "holder@example.org" },
            "reference": "applicant-1",
        }),
    );
    let other = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("biden.jpg"), "document_front": doc }),
    );
    let (expired_doc, _) = passport_b64(11, "obama.jpg", true);
    let expired = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama2.jpg"), "document_front": expired_doc }),
    );

    let r = wait(&app, &key, &same);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["decision"], "accepted", "{r:#}");
    assert!(r["score"].as_u64().unwrap() >= 80, "{r:#}");
    assert_eq!(r["reference"], "applicant-1");
    assert_eq!(r["extracted"]["surname"], truth.surname.as_str(), "{r:#}");
    assert_eq!(
        r["extracted"]["document_number"],
        truth.document_number.as_str()
    );
    for factor in ["liveness", "face_match", "document", "kya"] {
        assert!(r["factors"][factor]["score"].is_number(), "{factor}: {r:#}");
    }
    assert_eq!(r["factors"]["face_match"]["weight"], 40);
    assert!(r["timings"]["total_ms"].is_number());

    let r = wait(&app, &key, &other);
    assert_eq!(r["decision"], "rejected", "{r:#}");
    let reasons = reasons_of(&r);
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("similarity ") && x.ends_with("< 0.75 threshold")),
        "{reasons:?}"
    );

    let r = wait(&app, &key, &expired);
    assert_eq!(r["decision"], "rejected", "{r:#}");
    let reasons = reasons_of(&r);
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("document expired on ")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"rule document_expired → rejected"),
        "{reasons:?}"
    );

    // The listing shows all three, newest first, and filters by status.
    let list = app.signed(&key, "GET", "/v1/jobs?status=completed&limit=2", b"");
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    let cursor = list.body["next_cursor"].as_str().unwrap();
    let rest = app.signed(
        &key,
        "GET",
        &format!("/v1/jobs?status=completed&cursor={cursor}"),
        b"",
    );
    assert_eq!(
        rest.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        rest.text
    );
    // Each job billed each module once.
    let usage: i64 = app.with_store(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM usage_events WHERE request_id = ?1",
            kycd::store::params![same],
            |r| r.get(0),
        )
    });
    assert_eq!(usage, 4);
    // Each decision is in the audit trail with ids and outcome only.
    let audit = app.signed(&key, "GET", "/v1/audit", b"");
    let decision = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "kyc.decision" && e["target"] == same.as_str())
        .unwrap_or_else(|| panic!("no decision for {same}: {}", audit.text))
        .clone();
    let details: serde_json::Value =
        serde_json::from_str(decision["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["decision"], "accepted");
    assert!(
        !decision.to_string().to_uppercase().contains("OBAMA"),
        "{decision}"
    );
    // And the job gauges in /metrics.
    let metrics = app.metrics();
    assert!(
        metrics.contains("kycd_jobs{status=\"completed\"} 3"),
        "{metrics}"
    );
}

#[test]
fn idempotency_key_returns_the_first_job_and_bad_input_is_refused_up_front() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let body = json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg") });
    let bytes = serde_json::to_vec(&body).unwrap();
    let send = |idem: &str| {
        let nonce = format!("idem-{idem}-{}", rand_u64());
        let mut h = crate::common::sign_headers(
            &key,
            "POST",
            "/v1/kyc/verify",
            &bytes,
            crate::common::now(),
            Some(&nonce),
        );
        h.push(("Idempotency-Key", idem.to_owned()));
        app.raw(
            "POST",
            "/v1/kyc/verify",
            &crate::common::with_json(h, &bytes),
            &bytes,
        )
    };
    let first = send("order-42");
    assert_eq!(first.status, 202, "{}", first.text);
    let again = send("order-42");
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["job_id"], first.body["job_id"]);
    // A page with no document still completes: the document factor scores 0, with the reason.
    let r = wait(&app, &key, first.body["job_id"].as_str().unwrap());
    assert_eq!(r["decision"], "rejected", "{r:#}");
    assert!(
        r["reasons"].to_string().contains("no document found"),
        "{r:#}"
    );

    let post = |b: Value| {
        app.signed(
            &key,
            "POST",
            "/v1/kyc/verify",
            &serde_json::to_vec(&b).unwrap(),
        )
    };
    let r = post(json!({ "selfie": "@@@", "document_front": face_b64("obama.jpg") }));
    r.assert_error(422, "invalid_image");
    assert_eq!(r.body["error"]["details"]["field"], "selfie");
    post(json!({ "document_front": face_b64("obama.jpg") })).assert_error(422, "invalid_input");
    let r = post(
        json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"), "frames": [face_b64("obama.jpg")] }),
    );
    r.assert_error(422, "invalid_input");
    assert_eq!(r.body["error"]["details"]["field"], "frames");
    let r = post(
        json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"), "callback_url": "ftp://x" }),
    );
    assert_eq!(
        r.body["error"]["details"]["field"], "callback_url",
        "{}",
        r.text
    );
    app.signed(&key, "GET", "/v1/jobs/job_nope", b"")
        .assert_error(404, "not_found");
    app.signed(&key, "GET", "/v1/jobs?status=done", b"")
        .assert_error(400, "invalid_query");
}

#[test]
fn workflow_config_is_read_written_and_errors_name_the_field() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let get = app.signed(&key, "GET", "/v1/workflow", b"");
    assert_eq!(get.status, 200, "{}", get.text);
    assert_eq!(
        get.body["weights"],
        json!({ "liveness": 30, "face_match": 40, "document": 25, "kya": 5 })
    );
    assert_eq!(get.body["bands"], json!({ "accepted": 80, "review": 60 }));
    let put = |b: Value| {
        app.signed(
            &key,
            "PUT",
            "/v1/workflow",
            &serde_json::to_vec(&b).unwrap(),
        )
    };
    let r = put(json!({ "weights": { "kya": 0 }, "thresholds": { "face_match": 0.8 } }));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["weights"]["kya"], 0);
    assert_eq!(
        app.signed(&key, "GET", "/v1/workflow", b"").body["thresholds"]["face_match"],
        0.8
    );
    for (body, field) in [
        (
            json!({ "weights": { "liveness": 101 } }),
            "weights.liveness",
        ),
        (
            json!({ "bands": { "accepted": 50, "review": 70 } }),
            "bands.review",
        ),
        (
            json!({ "thresholds": { "face_match": "high" } }),
            "thresholds.face_match",
        ),
        (json!({ "steps": ["face_match"] }), "steps"),
        (
            json!({ "mandatory_fields": ["shoe_size"] }),
            "mandatory_fields[0]",
        ),
        (
            json!({ "rules": [{ "when": "age_below", "decision": "rejected" }] }),
            "rules[0].value",
        ),
    ] {
        let r = put(body.clone());
        r.assert_error(422, "invalid_input");
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{body}: {}",
            r.text
        );
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            r.text
        );
    }
    // The operator reads and writes the same configuration; changes are audited.
    let tenant = &key.tenant_id;
    let r = app.admin("GET", &format!("/tenants/{tenant}/workflow"), None);
    assert_eq!(r.body["thresholds"]["face_match"], 0.8, "{}", r.text);
    let r = app.admin(
        "PUT",
        &format!("/tenants/{tenant}/workflow"),
        Some(json!({ "bands": { "accepted": 85, "review": 65 } })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.signed(&key, "GET", "/v1/workflow", b"").body["bands"]["accepted"],
        85
    );
    app.admin("GET", "/tenants/ten_nope/workflow", None)
        .assert_error(404, "not_found");
    let audited: i64 = app.with_store(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'workflow.update'",
            kycd::store::params![],
            |r| r.get(0),
        )
    });
    assert_eq!(audited, 2);
}

/// A signed JSON request to a `kycd serve` child process.
fn call(
    agent: &ureq::Agent,
    port: u16,
    key: &Key,
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    let nonce = format!("crash-{}-{}", crate::common::now(), rand_u64());
    let headers = crate::common::sign_headers(
        key,
        method,
        path,
        &bytes,
        crate::common::now(),
        Some(&nonce),
    );
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut req = ureq::http::Request::builder().method(method).uri(&url);
    for (k, v) in crate::common::with_json(headers, &bytes) {
        req = req.header(k, v);
    }
    let resp = agent.run(req.body(bytes).unwrap()).unwrap();
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn jobs_accepted_before_a_kill_9_finish_after_restart_billed_once() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port();
    let (mut child, agent) = crate::common::spawn_binary(port, dir.path(), &[], Stdio::null());
    let token = Command::new(env!("CARGO_BIN_EXE_kycd"))
        .arg("--data-dir")
        .arg(dir.path())
        .envs(crate::common::store_env(std::path::Path::new(&dir.path())))
        .args(["admin", "token"])
        .env_remove("KYCD_ADMIN_TOKEN")
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let admin = |method: &str, path: &str, body: &str| -> Value {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{port}/admin/v1{path}"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap();
        let text = agent
            .run(req)
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    // Enterprise: the polling below stays within its 600 requests a minute.
    let tenant = admin(
        "POST",
        "/tenants",
        r#"{"name":"Crash test","plan":"enterprise"}"#,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let k = admin(
        "POST",
        &format!("/tenants/{tenant}/keys"),
        r#"{"permissions":["workflow:write","results:read"]}"#,
    );
    let key = Key {
        tenant_id: tenant.clone(),
        key_id: k["id"].as_str().unwrap().to_owned(),
        secret: k["secret"].as_str().unwrap().to_owned(),
    };
    // Liveness and document reading only (a face photo as the "document": read, nothing found),
    // so twenty jobs take seconds rather than minutes.
    let (s, _) = call(
        &agent,
        port,
        &key,
        "PUT",
        "/v1/workflow",
        &json!({ "steps": ["liveness", "ocr"] }),
    );
    assert_eq!(s, 200);
    let body = json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama3.jpg") });
    let ids: Vec<String> = (0..20)
        .map(|_| {
            let (s, v) = call(&agent, port, &key, "POST", "/v1/kyc/verify", &body);
            assert_eq!(s, 202, "{v}");
            v["job_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let completed = |agent: &ureq::Agent, port: u16| {
        let (_, v) = call(
            agent,
            port,
            &key,
            "GET",
            "/v1/jobs?status=completed&limit=200",
            &Value::Null,
        );
        v["data"].as_array().map_or(0, Vec::len)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while completed(&agent, port) < 2 {
        assert!(Instant::now() < deadline, "no job completed");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let done_at_kill: i64 = crate::common::open_store(dir.path())
        .read(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM jobs WHERE status = 'completed'",
                kycd::store::params![],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert!(
        done_at_kill < 20,
        "killed too late to test anything: {done_at_kill} done"
    );

    let port = crate::common::free_port();
    let (mut child, agent) = crate::common::spawn_binary(port, dir.path(), &[], Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(180);
    while completed(&agent, port) < 20 {
        assert!(Instant::now() < deadline, "jobs lost after the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in &ids {
        let (s, v) = call(
            &agent,
            port,
            &key,
            "GET",
            &format!("/v1/jobs/{id}"),
            &Value::Null,
        );
        assert_eq!((s, v["status"].as_str()), (200, Some("completed")), "{v}");
    }
    let (events, distinct): (i64, i64) = crate::common::open_store(dir.path())
        .read(|db| {
            db.query_row(
                "SELECT COUNT(*), COUNT(DISTINCT request_id || module) FROM usage_events WHERE tenant_id = ?1",
                kycd::store::params![tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .unwrap();
    assert_eq!(
        (events, distinct),
        (40, 40),
        "two modules per job, each billed once"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The event ids of the `kyc.completed` events `got` received, by job, once `jobs` jobs have one
/// (or two minutes have passed).
#[allow(clippy::type_complexity)]
pub fn completed_events_by_job(
    got: &std::sync::Mutex<Vec<(std::collections::HashMap<String, String>, Vec<u8>)>>,
    jobs: usize,
) -> std::collections::HashMap<String, std::collections::HashSet<String>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let mut by_job: std::collections::HashMap<String, std::collections::HashSet<String>> =
            Default::default();
        for (_, body) in got.lock().unwrap().iter() {
            let event: Value = serde_json::from_slice(body).unwrap();
            if event["type"] == "kyc.completed" {
                by_job
                    .entry(event["data"]["job_id"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(event["id"].as_str().unwrap().to_owned());
            }
        }
        if by_job.len() == jobs || std::time::Instant::now() > deadline {
            return by_job;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A webhook receiver on 127.0.0.1 answering 500 to the first `failures` requests, then 200;
/// returns its URL and the requests it got (headers lower-cased, body).
#[allow(clippy::type_complexity)]
pub fn receiver(
    failures: usize,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(std::collections::HashMap<String, String>, Vec<u8>)>>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/kyc", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = std::collections::HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let n = {
                let mut g = seen.lock().unwrap();
                g.push((headers, body));
                g.len()
            };
            let status = if n <= failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

#[test]
fn webhook_arrives_signed_and_survives_three_failures() {
    let app = TestApp::spawn_with(|c| c.workflow.webhook_retry_scale = 0.01);
    let key = app.tenant_with_key();
    let (url, got) = receiver(3);
    let post =
        |path: &str, b: Value| app.signed(&key, "POST", path, &serde_json::to_vec(&b).unwrap());
    let hook = post("/v1/webhooks", json!({ "url": url }));
    assert_eq!(hook.status, 201, "{}", hook.text);
    let secret = hook.body["secret"].as_str().unwrap().to_owned();
    let hook_id = hook.body["id"].as_str().unwrap().to_owned();
    post("/v1/webhooks", json!({ "url": "mailto:x" })).assert_error(422, "invalid_input");
    post(
        "/v1/webhooks",
        json!({ "url": url, "events": ["kyc.done"] }),
    )
    .assert_error(422, "invalid_input");
    // The secret is shown once: the listing does not carry it.
    let list = app.signed(&key, "GET", "/v1/webhooks", b"");
    assert!(!list.text.contains(&secret));

    let put = app.signed(&key, "PUT", "/v1/workflow", br#"{"steps":["liveness"]}"#);
    assert_eq!(put.status, 200, "{}", put.text);
    let job = submit(
        &app,
        &key,
        &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg"), "reference": "hook-1" }),
    );
    let result = wait(&app, &key, &job);
    assert_eq!(result["status"], "completed");

    let deadline = Instant::now() + Duration::from_secs(90);
    while got.lock().unwrap().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "webhook not delivered after retries: {} requests",
            got.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let requests = got.lock().unwrap().clone();
    for (headers, body) in &requests {
        let sig = &headers["x-kycd-signature"];
        let (t, v1) = sig.split_once(',').unwrap();
        let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
        assert!((t - crate::common::now()).abs() < 120);
        let expected = kycd::workflow::webhooks::signature(secret.as_bytes(), t, body);
        assert_eq!(
            sig, &expected,
            "signature verifies with the endpoint's secret"
        );
        assert!(v1.starts_with("v1="));
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["type"], "kyc.completed");
        assert_eq!(event["data"]["job_id"], job.as_str());
        assert_eq!(event["data"]["reference"], "hook-1");
        assert!(event["data"]["decision"].is_string());
        // A wrong secret does not verify.
        assert_ne!(
            sig,
            &kycd::workflow::webhooks::signature(b"whsec_wrong", t, body)
        );
    }
    // The delivery log: one delivery, four attempts, the last one 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = app.signed(
            &key,
            "GET",
            &format!("/v1/webhooks/{hook_id}/deliveries"),
            b"",
        );
        if log.body["data"][0]["status"] == "delivered" || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let d = &log.body["data"][0];
    assert_eq!(d["status"], "delivered", "{}", log.text);
    assert_eq!(d["attempts"], 4);
    let statuses: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 500, 200]);

    // Manual redelivery and the test ping reach the receiver too.
    let r = post(
        &format!(
            "/v1/webhooks/deliveries/{}/redeliver",
            d["id"].as_str().unwrap()
        ),
        json!({}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let r = post(&format!("/v1/webhooks/{hook_id}/test"), json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().len() < 6 {
        assert!(
            Instant::now() < deadline,
            "redelivery and ping not received"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let events: Vec<String> = got.lock().unwrap()[4..]
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(events.contains(&"webhook.test".to_string()), "{events:?}");
    let r = app.signed(&key, "DELETE", &format!("/v1/webhooks/{hook_id}"), b"");
    assert_eq!(r.status, 204);
    app.signed(&key, "DELETE", &format!("/v1/webhooks/{hook_id}"), b"")
        .assert_error(404, "not_found");
}
