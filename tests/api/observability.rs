//! Logs and metrics of the real binary carry no personal data and no secrets.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::json;

use crate::common::{sign_headers, with_json, Key};

#[test]
fn pii_and_secrets_reach_neither_logs_nor_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("kycd.log");
    let port = crate::common::free_port();
    let kycd = env!("CARGO_BIN_EXE_kycd");
    let data = dir.path().join("data");
    let stderr = Stdio::from(std::fs::File::create(&log_path).unwrap());
    let (otlp_url, spans) = otlp_receiver();
    let env = [
        ("KYCD_LOG_LEVEL", "debug"),
        ("KYCD_LOG_FORMAT", "json"),
        ("KYCD_OTLP_ENDPOINT", otlp_url.as_str()),
    ];
    let (mut child, agent) = crate::common::spawn_binary(port, &data, &env, stderr);
    let base = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(kycd)
            .arg("--data-dir")
            .arg(&data)
            .envs(crate::common::store_env(std::path::Path::new(&&data)))
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let tenant = run(&["admin", "tenant", "create", "--name", "Obs", "--json"]);
    let created = run(&[
        "admin",
        "key",
        "create",
        "--tenant",
        tenant["tenant_id"].as_str().unwrap(),
        "--permissions",
        "media:write,subjects:erase,results:read",
        "--json",
    ]);
    let key = Key {
        tenant_id: tenant["tenant_id"].as_str().unwrap().into(),
        key_id: created["key_id"].as_str().unwrap().into(),
        secret: created["secret"].as_str().unwrap().into(),
    };
    const MARKER: &str = "ZQXPIIMARKER";
    let send = |method: &str, path: &str, body: &[u8], nonce: &str| {
        let h = with_json(
            sign_headers(&key, method, path, body, crate::common::now(), Some(nonce)),
            body,
        );
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"));
        for (k, v) in h {
            req = req.header(k, v);
        }
        agent
            .run(req.body(body.to_vec()).unwrap())
            .unwrap()
            .status()
            .as_u16()
    };
    let validate = json!({
        "mrz": ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"],
        "fields": { "surname": MARKER, "given_names": "Anna Maria" }
    });
    assert_eq!(
        send(
            "POST",
            "/v1/document/validate",
            &serde_json::to_vec(&validate).unwrap(),
            "a"
        ),
        200
    );
    let bad_image = json!({ "kind": "selfie", "image_base64": format!("{MARKER}===") });
    assert_eq!(
        send(
            "POST",
            &format!("/v1/subjects/{MARKER}/media"),
            &serde_json::to_vec(&bad_image).unwrap(),
            "b"
        ),
        422
    );
    assert_eq!(
        send("DELETE", &format!("/v1/subjects/{MARKER}"), b"", "c"),
        404,
        "nothing was ever stored for the subject"
    );
    // A forged signature: refused, and counted for the audit log.
    let forged = agent
        .get(format!("{base}/v1/ping"))
        .header("X-API-KEY", &key.key_id)
        .header("X-API-TIMESTAMP", crate::common::now().to_string())
        .header("X-API-SIGN", "00".repeat(32))
        .call()
        .unwrap();
    assert_eq!(forged.status(), 401);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let metrics = agent
        .get(format!("{base}/metrics"))
        .header("Authorization", format!("Bearer {}", token.trim()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("kycd_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("route=\"/v1/subjects/{subject_id}/media\""),
        "route patterns label requests"
    );
    assert!(metrics.contains("kycd_models_loaded 1"));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    // Stopping wrote the refusals not yet flushed as one aggregated audit entry.
    let details: String = crate::common::open_store(&data)
        .read(|db| {
            db.query_row(
                "SELECT details FROM audit_log WHERE action = 'auth.failures'",
                kycd::store::params![],
                |r| r.get(0),
            )
        })
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(
        details["counts"][0],
        json!({ "code": "invalid_signature", "key_id": key.key_id, "count": 1 })
    );
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains(&key.tenant_id),
        "request lines carry the tenant id"
    );
    assert!(
        logs.lines()
            .filter(|l| l.contains("\"message\":\"request\""))
            .count()
            >= 3
    );
    // Shutting down flushed the spans: one per request, with its route pattern.
    let spans: Vec<u8> = spans.try_iter().flatten().collect();
    let spans = String::from_utf8_lossy(&spans).into_owned();
    assert!(
        spans.contains("/v1/document/validate"),
        "no request span exported"
    );
    assert!(spans.contains("/v1/subjects/{subject_id}"));
    assert!(spans.contains("kycd"), "service name");
    for (name, text) in [("logs", &logs), ("metrics", &metrics), ("traces", &spans)] {
        assert!(!text.contains(MARKER), "personal data in {name}");
        assert!(!text.contains(&key.secret), "key secret in {name}");
        assert!(!text.contains(&key.secret[3..]), "key secret in {name}");
    }
}

/// A minimal OTLP/HTTP collector on loopback: answers 200 to every POST and hands the bodies over.
fn otlp_receiver() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok() {
                let _ = tx.send(body);
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, rx)
}
