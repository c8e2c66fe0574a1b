//! Resource bounds and fairness (issue 16): memory held by requests is admitted, not assumed;
//! unauthenticated surfaces have limits of their own; replays stay refused across a restart;
//! one tenant's backlog does not hold up another's; sandbox keys have their own allowance.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::{free_port, sign_headers, spawn_binary, with_json, Key, TestApp};
use crate::workflow::face_b64;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A request with the given head, whose body is `sent` bytes of a declared `declared`: the
/// connection is left open, as a slow client would.
fn slow_request(addr: &str, head: &str, declared: usize, sent: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "{head}Content-Length: {declared}\r\n\r\n").unwrap();
    s.write_all(&vec![b'{'; sent]).unwrap();
    s
}

/// The status line's code of whatever the server answers on `s` within `wait`.
fn status_of(s: &mut TcpStream, wait: Duration) -> Option<u16> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn signed_head(key: &Key, path: &str, ts: i64) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n");
    // The signature does not matter: bodies are admitted before it can be checked.
    for (k, v) in sign_headers(key, "POST", path, b"", ts, None) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head
}

#[test]
fn bodies_are_admitted_per_key_and_per_endpoint_before_they_are_read() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let other = app.tenant_with_key();
    let addr = app.base.trim_start_matches("http://").to_owned();
    let max = 16 * 1024 * 1024;
    let head = signed_head(&key, "/v1/document/validate", crate::common::now());
    // Four 16 MiB bodies of one key, all but their last byte sent, fill its 64 MiB share (bytes
    // are admitted as they arrive: an idle connection holds nothing)...
    let mut open: Vec<TcpStream> = (0..4)
        .map(|_| slow_request(&addr, &head, max, max - 1))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // ...so a fifth waits its 2 s, then is refused, never buffered.
    let started = Instant::now();
    let mut fifth = slow_request(&addr, &head, max, 1024);
    assert_eq!(status_of(&mut fifth, Duration::from_secs(10)), Some(503));
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // Another tenant's key is not held up.
    assert_eq!(app.signed(&other, "GET", "/v1/ping", b"").status, 200);
    // Facia's /process_face reads its credential from the body: its bodies have their own share.
    let facia = "POST /process_face HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    let mut compat: Vec<TcpStream> = (0..4)
        .map(|_| slow_request(&addr, facia, max, max - 1))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut fifth = slow_request(&addr, facia, max, 1024);
    assert_eq!(status_of(&mut fifth, Duration::from_secs(10)), Some(503));
    // A connection that declares a body and sends nothing holds nothing, and is dropped when
    // it stays silent.
    let other_head = signed_head(&other, "/v1/document/validate", crate::common::now());
    let mut idle = slow_request(&addr, &other_head, max, 0);
    assert_eq!(status_of(&mut idle, Duration::from_secs(20)), Some(400));
    // Once the slow clients go, room comes back.
    open.clear();
    compat.clear();
    std::thread::sleep(Duration::from_millis(300));
    let r = app.signed(
        &key,
        "POST",
        "/v1/document/validate",
        br#"{"mrz":["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<","L898902C36UTO7408122F1204159ZE184226B<<<<<10"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let metrics = app.metrics();
    assert!(
        metrics.contains("kycd_admission_refused_total{budget=\"request_bodies\"} 2"),
        "{metrics}"
    );
}

#[test]
fn the_clock_is_judged_again_once_a_slow_body_has_arrived() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key();
    let addr = app.base.trim_start_matches("http://").to_owned();
    let body = br#"{"mrz":"x"}"#;
    let ts = crate::common::now() - 297;
    let mut head = format!(
        "POST /v1/document/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in sign_headers(&key, "POST", "/v1/document/validate", body, ts, None) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // Within the skew when the headers came; beyond it when the body is complete.
    std::thread::sleep(Duration::from_secs(5));
    s.write_all(body).unwrap();
    let mut text = String::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("timestamp_out_of_range"), "{text}");
}

/// `/admin/v1` on a spawned binary.
fn admin(
    agent: &ureq::Agent,
    port: u16,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}/admin/v1{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let text = agent
        .run(req)
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn new_key(agent: &ureq::Agent, port: u16, token: &str, plan: &str) -> Key {
    let t = admin(
        agent,
        port,
        token,
        "POST",
        "/tenants",
        json!({ "name": "T", "plan": plan }),
    );
    let tenant = t["id"].as_str().unwrap().to_owned();
    let k = admin(
        agent,
        port,
        token,
        "POST",
        &format!("/tenants/{tenant}/keys"),
        json!({}),
    );
    Key {
        tenant_id: tenant,
        key_id: k["id"].as_str().unwrap().into(),
        secret: k["secret"].as_str().unwrap().into(),
    }
}

/// A signed request to a spawned binary with explicit headers (so it can be sent twice).
fn send(
    agent: &ureq::Agent,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let mut res = agent.run(req.body(body.to_vec()).unwrap()).unwrap();
    (
        res.status().as_u16(),
        res.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_replayed_request_is_refused_after_a_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, agent) = spawn_binary(port, dir.path(), &[], Stdio::null());
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let key = new_key(&agent, port, token.trim(), "pro");
    // A request signed without a nonce: the same headers again are a replay.
    let headers = sign_headers(&key, "GET", "/v1/ping", b"", crate::common::now(), None);
    assert_eq!(send(&agent, port, "GET", "/v1/ping", &headers, b"").0, 200);
    let (status, text) = send(&agent, port, "GET", "/v1/ping", &headers, b"");
    assert_eq!(status, 401, "{text}");
    std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let port = free_port();
    let (mut child, agent) = spawn_binary(port, dir.path(), &[], Stdio::null());
    let (status, text) = send(&agent, port, "GET", "/v1/ping", &headers, b"");
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed_request"), "{text}");
    // A fresh signature still passes.
    let fresh = sign_headers(
        &key,
        "GET",
        "/v1/ping",
        b"",
        crate::common::now(),
        Some("n1"),
    );
    assert_eq!(send(&agent, port, "GET", "/v1/ping", &fresh, b"").0, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn fifty_oversized_liveness_requests_at_once_stay_within_the_memory_bound() {
    const BOUND: u64 = 4 << 30;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, agent) = spawn_binary(port, dir.path(), &[], Stdio::null());
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let token = token.trim();
    let grant = json!({ "permissions": ["results:read"] });
    let attacker = new_key(&agent, port, token, "enterprise");
    let keys: Vec<Key> = (0..5)
        .map(|_| {
            let k = admin(
                &agent,
                port,
                token,
                "POST",
                &format!("/tenants/{}/keys", attacker.tenant_id),
                grant.clone(),
            );
            Key {
                tenant_id: attacker.tenant_id.clone(),
                key_id: k["id"].as_str().unwrap().into(),
                secret: k["secret"].as_str().unwrap().into(),
            }
        })
        .collect();
    let bystander = new_key(&agent, port, token, "enterprise");
    let baseline = peak_rss_bytes(child.id());
    // A flat 6000×6000 PNG is 117 KB and decodes to 108 MB: thirty of them fit in one 4.7 MB
    // body.
    let png = std::fs::read(format!(
        "{}/tests/fixtures/bombs/flat-6000x6000.png",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let frame = b64(&png);
    let body = serde_json::to_vec(&json!({
        "image_live_base64": face_b64("obama.jpg"),
        "frames_base64": vec![frame; 30],
    }))
    .unwrap();
    let body = std::sync::Arc::new(body);
    let start = std::sync::Arc::new(std::sync::Barrier::new(51));
    let flood: Vec<_> = (0..50)
        .map(|i| {
            let (key, body, start) = (keys[i % keys.len()].clone(), body.clone(), start.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(600)))
                    .build()
                    .into();
                let h = with_json(
                    sign_headers(
                        &key,
                        "POST",
                        "/v1/liveness/analyze",
                        &body,
                        crate::common::now(),
                        Some(&format!("f{i}")),
                    ),
                    &body,
                );
                start.wait();
                // A request refused before its body was read may see the connection closed
                // while it is still sending: that is a refusal too (status 0 here).
                let mut req = ureq::http::Request::builder()
                    .method("POST")
                    .uri(format!("http://127.0.0.1:{port}/v1/liveness/analyze"));
                for (k, v) in &h {
                    req = req.header(*k, v);
                }
                let Ok(mut res) = agent.run(req.body(body.to_vec()).unwrap()) else {
                    return (0, None);
                };
                let status = res.status().as_u16();
                let text = res.body_mut().read_to_string().unwrap_or_default();
                let code = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
                (status, code)
            })
        })
        .collect();
    start.wait();
    // While the flood is on, another tenant's ordinary request gets through.
    std::thread::sleep(Duration::from_millis(500));
    let small = serde_json::to_vec(&json!({ "image_live_base64": face_b64("obama.jpg") })).unwrap();
    let h = with_json(
        sign_headers(
            &bystander,
            "POST",
            "/v1/liveness/analyze",
            &small,
            crate::common::now(),
            Some("b1"),
        ),
        &small,
    );
    let bystander_started = Instant::now();
    let (status, text) = send(&agent, port, "POST", "/v1/liveness/analyze", &h, &small);
    assert_eq!(status, 200, "the other tenant's request: {text}");
    let bystander_ms = bystander_started.elapsed().as_millis();
    let outcomes: Vec<(u16, Option<String>)> =
        flood.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = peak_rss_bytes(child.id());
    let overloaded = outcomes
        .iter()
        .filter(|(s, _)| *s == 503 || *s == 0)
        .count();
    let closed_early = outcomes.iter().filter(|(s, _)| *s == 0).count();
    let done = outcomes.iter().filter(|(s, _)| *s > 0 && *s < 500).count();
    for (s, code) in &outcomes {
        assert!(
            *s < 500 || (*s == 503 && code.as_deref() == Some("overloaded")),
            "{s} {code:?}"
        );
    }
    assert!(overloaded > 0, "admission refused nothing: {outcomes:?}");
    assert!(done > 0, "admission refused everything: {outcomes:?}");
    // Still up and answering.
    let ping = sign_headers(
        &bystander,
        "GET",
        "/v1/ping",
        b"",
        crate::common::now(),
        Some("b2"),
    );
    assert_eq!(send(&agent, port, "GET", "/v1/ping", &ping, b"").0, 200);
    eprintln!(
        "50 oversized requests: {done} answered, {overloaded} refused (503 overloaded, {closed_early} \
         of them closed before the body was read); peak RSS {} MiB \
         (baseline {} MiB, bound {} MiB); the other tenant's request took {bystander_ms} ms",
        peak >> 20,
        baseline >> 20,
        BOUND >> 20
    );
    assert!(peak < BOUND, "peak RSS {} MiB", peak >> 20);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn metrics_need_the_operator_token_or_the_internal_listener_and_hide_tenants() {
    let metrics_port = free_port();
    let app = TestApp::spawn_with(|c| {
        c.metrics.listen = Some(format!("127.0.0.1:{metrics_port}").parse().unwrap());
    });
    let key = app.tenant_with_key();
    let r = app.signed(
        &key,
        "POST",
        "/v1/document/validate",
        br#"{"mrz":["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<","L898902C36UTO7408122F1204159ZE184226B<<<<<10"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    app.raw("GET", "/metrics", &[], b"")
        .assert_error(401, "missing_auth");
    let text = app.metrics();
    assert!(
        text.contains("kycd_quota_used_units{module=\"validation\",tenant=\"all\"} 1"),
        "{text}"
    );
    assert!(!text.contains(&key.tenant_id), "tenant ids are opt-in");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let internal = format!("http://127.0.0.1:{metrics_port}");
    let mut r = agent.get(format!("{internal}/metrics")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("kycd_build_info"));
    assert_eq!(
        agent
            .get(format!("{internal}/v1/ping"))
            .call()
            .unwrap()
            .status(),
        404
    );
    // Webhooks cannot be pointed at it either.
    let hook = json!({ "url": format!("{internal}/metrics") });
    let r = app.signed(
        &key,
        "POST",
        "/v1/webhooks",
        &serde_json::to_vec(&hook).unwrap(),
    );
    r.assert_error(422, "invalid_input");
}

#[test]
fn facephi_calls_have_their_own_secret_rate_and_concurrency() {
    let app = TestApp::spawn_with(|c| {
        let store = kycd::server::open_store(c).unwrap();
        let t = kycd::tenancy::create_tenant(&store, "FacePhi customer", "pro", "test").unwrap();
        c.compat.facephi_tenant = Some(t.id);
        c.compat.facephi_rate_per_minute = 3;
        c.compat.facephi_secret = Some("compat-secret-0123456789".into());
    });
    let selfie = std::fs::read(format!(
        "{}/tests/fixtures/faces/obama.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = crate::compat::evaluate(&app, "capture", &selfie);
    r.assert_error(401, "missing_auth");
    let (mut h, body) = crate::compat::multipart("capture", &selfie);
    h.push(("X-Compat-Secret", "compat-secret-0123456789".into()));
    let path = "/api/v1/iad/liveness/evaluate";
    for _ in 0..3 {
        let r = app.raw("POST", path, &h, &body);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = app.raw("POST", path, &h, &body);
    r.assert_error(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.body["message"], "Too many requests");
}

#[test]
fn one_tenants_backlog_does_not_hold_up_another_tenants_job() {
    let app = TestApp::spawn();
    let busy = app.tenant_with_key();
    let other = app.tenant_with_key();
    // The busy tenant's jobs read a document (about a second each); the other's is quick.
    let r = app.signed(
        &busy,
        "PUT",
        "/v1/workflow",
        br#"{"steps":["liveness","ocr"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.signed(&other, "PUT", "/v1/workflow", br#"{"steps":["liveness"]}"#);
    assert_eq!(r.status, 200, "{}", r.text);
    let body = serde_json::to_vec(
        &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama3.jpg") }),
    )
    .unwrap();
    for _ in 0..40 {
        assert_eq!(
            app.signed(&busy, "POST", "/v1/kyc/verify", &body).status,
            202
        );
    }
    let queued = || -> i64 {
        app.with_store(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM jobs WHERE tenant_id = ?1 AND status = 'queued'",
                kycd::store::params![busy.tenant_id],
                |r| r.get(0),
            )
        })
    };
    let r = app.signed(&other, "POST", "/v1/kyc/verify", &body);
    assert_eq!(r.status, 202);
    let queued_at_submit = queued();
    let job = r.body["job_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let r = app.signed(&other, "GET", &format!("/v1/jobs/{job}"), b"");
        if r.body["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.text);
        std::thread::sleep(Duration::from_millis(20));
    }
    let claimed_meanwhile = queued_at_submit - queued();
    eprintln!(
        "busy tenant: {queued_at_submit} jobs queued when the other tenant's job arrived, \
         {claimed_meanwhile} claimed before it finished"
    );
    assert!(
        queued_at_submit >= 10,
        "the backlog drained too fast to test anything"
    );
    assert!(
        claimed_meanwhile <= 3,
        "{claimed_meanwhile} of the busy tenant's jobs went first"
    );
}

#[test]
fn sandbox_keys_have_their_own_allowance_and_say_so() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant_on("Sandboxed", "pro");
    let r = app.admin(
        "PUT",
        &format!("/tenants/{tenant}/plan"),
        Some(json!({ "overrides": { "sandbox_quota": 2 } })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let sandbox = app.create_key_with(
        &tenant,
        json!({ "environment": "sandbox", "permissions": ["usage:read"] }),
    );
    let live = app.create_key_with(&tenant, json!({ "permissions": ["usage:read"] }));
    let validate = br#"{"mrz":["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<","L898902C36UTO7408122F1204159ZE184226B<<<<<10"]}"#;
    for _ in 0..2 {
        let r = app.signed(&sandbox, "POST", "/v1/document/validate", validate);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["sandbox"], true);
        assert_eq!(r.body["usage"]["billed"], false);
    }
    let r = app.signed(&sandbox, "POST", "/v1/document/validate", validate);
    r.assert_error(429, "quota_exceeded");
    assert_eq!(r.body["error"]["details"]["sandbox"], true);
    assert_eq!(r.body["error"]["details"]["limit"], 2);
    // The live quota was never touched by the sandbox's units.
    let r = app.signed(&live, "POST", "/v1/document/validate", validate);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("sandbox").is_none());
    let usage = app.signed(&live, "GET", "/v1/usage", b"");
    let validation = usage.body["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["module"] == "validation")
        .unwrap()
        .clone();
    assert_eq!(
        (
            validation["used"].as_i64(),
            validation["sandbox_used"].as_i64()
        ),
        (Some(1), Some(2)),
        "{}",
        usage.text
    );
    assert_eq!(usage.body["sandbox_allowance"], 2);
}

#[test]
fn a_verification_that_could_never_fit_its_tenants_share_is_refused_at_submission() {
    // Thirty-three 36 MP images in one job need more decoded memory than this tenant may hold:
    // refused up front (413), instead of a worker waiting for room that can never come.
    let app = TestApp::spawn_with(|c| {
        c.media.max_pixels = 36_000_000;
        c.limits.decoded_bytes_per_tenant = 690_000_000;
    });
    let key = app.tenant_with_key();
    let png = std::fs::read(format!(
        "{}/tests/fixtures/bombs/flat-6000x6000.png",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let image = b64(&png);
    let body = serde_json::to_vec(&json!({
        "selfie": image, "document_front": image, "document_back": image,
        "frames": vec![image.clone(); 30],
    }))
    .unwrap();
    let r = app.signed(&key, "POST", "/v1/kyc/verify", &body);
    r.assert_error(413, "payload_too_large");
    assert_eq!(
        r.body["error"]["details"]["budget"], "decoded_pixels",
        "{}",
        r.text
    );
    let queued: i64 = app.with_store(|db| {
        db.query_row("SELECT COUNT(*) FROM jobs", kycd::store::params![], |r| {
            r.get(0)
        })
    });
    assert_eq!(queued, 0);
}
