//! Faults: the server killed with SIGKILL three times while ten clients submit 200
//! verifications. Every accepted job completes exactly once, is billed once, announces itself
//! once (the event id stays the same when a delivery is retried, so receivers can deduplicate),
//! and the audit chain still verifies.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    call, free_port, sign_headers, spawn_binary, submit_job, wait_all_completed, with_json, Key,
};
use crate::workflow::{completed_events_by_job, face_b64, receiver};

const CLIENTS: usize = 10;
const JOBS_PER_CLIENT: usize = 20;
const KILLS: usize = 3;

fn start(port: u16, dir: &std::path::Path) -> Child {
    let env = [
        ("KYCD_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8"),
        ("KYCD_WEBHOOK_ALLOW_HTTP", "true"),
        ("KYCD_WEBHOOK_ALLOW_PORTS", ""),
    ];
    spawn_binary(port, dir, &env, Stdio::null()).0
}

#[test]
fn two_hundred_jobs_survive_three_kill_9s_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start(port, dir.path());
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let bearer = [
        ("Authorization", format!("Bearer {}", token.trim())),
        ("Content-Type", "application/json".into()),
    ];
    let admin = |method: &str, path: &str, body: Value| {
        call(
            port,
            method,
            &format!("/admin/v1{path}"),
            &bearer,
            &serde_json::to_vec(&body).unwrap(),
        )
        .unwrap()
        .1
    };
    let tenant = admin(
        "POST",
        "/tenants",
        json!({ "name": "Faults", "plan": "enterprise" }),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let perms = json!({ "permissions": ["results:read", "workflow:write", "webhooks:write"] });
    let keys: Vec<Key> = (0..CLIENTS)
        .map(|_| {
            let k = admin("POST", &format!("/tenants/{tenant}/keys"), perms.clone());
            Key {
                tenant_id: tenant.clone(),
                key_id: k["id"].as_str().unwrap().into(),
                secret: k["secret"].as_str().unwrap().into(),
            }
        })
        .collect();
    let signed =
        |port: u16, key: &Key, method: &str, path: &str, body: &[u8], extra: &[(&str, String)]| {
            let nonce = format!("n{}", rand_u64());
            let mut h = with_json(
                sign_headers(key, method, path, body, crate::common::now(), Some(&nonce)),
                body,
            );
            h.extend(extra.iter().cloned());
            call(port, method, path, &h, body)
        };
    let put = |b: Value| {
        signed(
            port,
            &keys[0],
            "PUT",
            "/v1/workflow",
            &serde_json::to_vec(&b).unwrap(),
            &[],
        )
    };
    assert_eq!(put(json!({ "steps": ["liveness"] })).unwrap().0, 200);
    let (url, got) = receiver(0);
    let hook = signed(
        port,
        &keys[0],
        "POST",
        "/v1/webhooks",
        &serde_json::to_vec(&json!({ "url": url })).unwrap(),
        &[],
    );
    assert_eq!(hook.unwrap().0, 201);

    // Clients submit with an Idempotency-Key, so one whose response was lost to a kill retries
    // without queueing twice.
    let port_now = Arc::new(AtomicU16::new(port));
    let accepted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let body = Arc::new(
        serde_json::to_vec(
            &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg") }),
        )
        .unwrap(),
    );
    let clients: Vec<_> = keys
        .iter()
        .cloned()
        .enumerate()
        .map(|(c, key)| {
            let (port_now, accepted, body) = (port_now.clone(), accepted.clone(), body.clone());
            std::thread::spawn(move || {
                for j in 0..JOBS_PER_CLIENT {
                    let idem = format!("client{c}-job{j}");
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        let port = port_now.load(Ordering::SeqCst);
                        match submit_job(port, &key, &body, &idem) {
                            Some(Ok(job_id)) => {
                                accepted.lock().unwrap().insert(job_id);
                                break;
                            }
                            Some(Err((s, v))) => panic!("refused: {s} {v}"),
                            None => {
                                assert!(Instant::now() < deadline, "server never came back");
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // Three kills at moments that fall on submissions, running jobs and deliveries alike.
    let mut rng = kycd::vision::liveness::synthetic::Rng::new(crate::common::now() as u64);
    for kill in 0..KILLS {
        let wait_ms = rng.range(700.0, 3200.0) as u64;
        std::thread::sleep(Duration::from_millis(wait_ms));
        Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        eprintln!(
            "kill {} after {wait_ms} ms; {} accepted so far",
            kill + 1,
            accepted.lock().unwrap().len()
        );
        child = start(port, dir.path());
        port_now.store(port, Ordering::SeqCst);
    }
    for c in clients {
        c.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(
        accepted.len(),
        CLIENTS * JOBS_PER_CLIENT,
        "each submission accepted once"
    );

    let store = crate::common::open_store(dir.path());
    let one = |sql: &str| -> (i64, i64) {
        store
            .read(|db| {
                db.query_row(sql, kycd::store::params![tenant], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap()
    };
    wait_all_completed(&store, &tenant, accepted.len());
    // Billed once each: one liveness unit per job.
    let (units, distinct) =
        one("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM usage_events WHERE tenant_id = ?1");
    assert_eq!((units, distinct), (200, 200), "usage rows = modules run");
    let (completed_events, _) = one(
        "SELECT COUNT(*), 0 FROM webhook_deliveries WHERE tenant_id = ?1 AND event = 'kyc.completed'",
    );
    assert_eq!(completed_events, 200, "one kyc.completed per job");
    // Every job's event reached the receiver, under one event id however often it was sent.
    let by_job = completed_events_by_job(&got, accepted.len());
    let received = got.lock().unwrap().len();
    assert_eq!(by_job.len(), accepted.len(), "every job announced");
    assert!(
        by_job.values().all(|ids| ids.len() == 1),
        "one event id per job"
    );
    let audit = Command::new(env!("CARGO_BIN_EXE_kycd"))
        .arg("--data-dir")
        .arg(dir.path())
        .envs(crate::common::store_env(std::path::Path::new(&dir.path())))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    eprintln!(
        "faults: {KILLS} kill -9s; {} jobs accepted, all completed once, {units} usage rows, \
         {completed_events} kyc.completed deliveries, {received} POSTs received; audit chain verifies",
        accepted.len()
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn rand_u64() -> u64 {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed) ^ (crate::common::now() as u64).rotate_left(24)
}
