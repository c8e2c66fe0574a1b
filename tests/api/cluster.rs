//! Three `kycd serve` nodes on loopback ports sharing one PostgreSQL, one S3 server and one Redis
//! (the harness's throw-away ones): 300 verification jobs and 3,000 validations spread over them while
//! one node is killed with SIGKILL; then a hard quota, a rate limit and replay refusal across
//! nodes, the audit chain, an erasure made through one node seen through another, and a face
//! enrolled through one node found through another.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::services;
use crate::common::{
    call, free_port, media_body, sign_headers, spawn_binary, submit_job, wait_all_completed,
    with_json, Key,
};
use crate::workflow::{completed_events_by_job, face_b64, receiver};

const ADMIN: &str = "cluster-operator-token-0123456789";
const CLIENTS: usize = 10;
const JOBS_PER_CLIENT: usize = 30;
const VALIDATIONS_PER_CLIENT: usize = 300;
const MRZ: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];

fn nonce() -> String {
    static N: AtomicUsize = AtomicUsize::new(1);
    format!(
        "c{}-{}",
        N.fetch_add(1, Ordering::Relaxed),
        crate::common::now()
    )
}

fn signed(port: u16, key: &Key, method: &str, path: &str, body: &[u8]) -> Option<(u16, Value)> {
    let h = with_json(
        sign_headers(
            key,
            method,
            path,
            body,
            crate::common::now(),
            Some(&nonce()),
        ),
        body,
    );
    call(port, method, path, &h, body)
}

/// The cluster: every node's environment, ports and processes.
struct Cluster {
    env: Vec<(&'static str, String)>,
    ports: Vec<u16>,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Option<Child>>,
}

impl Cluster {
    fn start_node(&mut self, i: usize) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (child, _) = spawn_binary(self.ports[i], self.dirs[i].path(), &env, Stdio::null());
        self.nodes[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status()
                .unwrap();
            child.wait().unwrap();
        }
    }

    fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let h = [
            ("Authorization", format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json".into()),
        ];
        let (status, v) = call(
            self.ports[0],
            method,
            &format!("/admin/v1{path}"),
            &h,
            &serde_json::to_vec(&body).unwrap(),
        )
        .expect("node A answers");
        assert!(status < 300, "{method} {path}: {status} {v}");
        v
    }

    fn tenant(&self, name: &str, plan: &str, overrides: Option<Value>, keys: usize) -> Vec<Key> {
        let id = self.admin("POST", "/tenants", json!({ "name": name, "plan": plan }))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if let Some(o) = overrides {
            self.admin(
                "PUT",
                &format!("/tenants/{id}/plan"),
                json!({ "overrides": o }),
            );
        }
        let perms = json!({ "permissions": ["results:read", "workflow:write", "webhooks:write", "media:write", "media:read", "subjects:erase", "faces:write", "faces:search"] });
        (0..keys)
            .map(|_| {
                let k = self.admin("POST", &format!("/tenants/{id}/keys"), perms.clone());
                Key {
                    tenant_id: id.clone(),
                    key_id: k["id"].as_str().unwrap().into(),
                    secret: k["secret"].as_str().unwrap().into(),
                }
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The harness's PostgreSQL and S3 server when this is the PostgreSQL + S3 pass; `None` (saying
/// so) in the SQLite pass — `scripts/test` runs both.
fn pg_and_s3(what: &str) -> Option<(&'static services::Postgres, &'static services::S3)> {
    if !services::postgres_backend() {
        eprintln!("{what} runs in the PostgreSQL + S3 pass (KYCD_TEST_BACKEND=postgres)");
        return None;
    }
    Some((
        services::postgres().expect("PostgreSQL"),
        services::s3().expect("moto_server"),
    ))
}

#[test]
fn three_nodes_share_jobs_quotas_limits_replays_audit_and_erasure() {
    let Some((pg, s3)) = pg_and_s3("the three-node test") else {
        return;
    };
    let redis = services::redis().expect("redis-server");
    let shared = tempfile::tempdir().unwrap();
    let master = shared.path().join("master.key");
    kycd::store::crypto::MasterKey::load_or_create(&master).unwrap();
    let database = pg.fresh_database();
    let bucket = s3.fresh_bucket();
    let mut env = vec![
        ("KYCD_REDIS_URL", redis.url()),
        ("KYCD_DATABASE_URL", database.clone()),
        ("KYCD_OBJECTS_URL", bucket),
        ("KYCD_MASTER_KEY_FILE", master.display().to_string()),
        ("KYCD_ADMIN_TOKEN", ADMIN.into()),
        ("KYCD_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8".into()),
        ("KYCD_WEBHOOK_ALLOW_HTTP", "true".into()),
        ("KYCD_WEBHOOK_ALLOW_PORTS", String::new()),
        ("KYCD_JOB_LEASE_SECS", "5".into()),
    ];
    env.extend(s3.env());
    let mut cluster = Cluster {
        env,
        ports: (0..3).map(|_| free_port()).collect(),
        dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
        nodes: vec![None, None, None],
    };
    for i in 0..3 {
        cluster.start_node(i);
    }
    let ports = cluster.ports.clone();

    // --- 300 jobs and 3,000 validations over three nodes; node C killed in the middle.
    let keys = cluster.tenant("Cluster", "enterprise", None, CLIENTS);
    let workflow = serde_json::to_vec(&json!({ "steps": ["liveness"] })).unwrap();
    assert_eq!(
        signed(ports[1], &keys[0], "PUT", "/v1/workflow", &workflow)
            .unwrap()
            .0,
        200,
        "configured through node B"
    );
    let (url, got) = receiver(0);
    let hook = serde_json::to_vec(&json!({ "url": url })).unwrap();
    assert_eq!(
        signed(ports[2], &keys[0], "POST", "/v1/webhooks", &hook)
            .unwrap()
            .0,
        201
    );
    let down: Arc<Vec<AtomicBool>> = Arc::new((0..3).map(|_| AtomicBool::new(false)).collect());
    let accepted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let validated = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(AtomicUsize::new(0));
    let job_body = Arc::new(
        serde_json::to_vec(
            &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg") }),
        )
        .unwrap(),
    );
    let started = Instant::now();
    let clients: Vec<_> = keys
        .iter()
        .cloned()
        .enumerate()
        .map(|(c, key)| {
            let (down, accepted, validated, lost, job_body) = (
                down.clone(),
                accepted.clone(),
                validated.clone(),
                lost.clone(),
                job_body.clone(),
            );
            let ports = ports.clone();
            std::thread::spawn(move || {
                let mut turn = c;
                let mut next_port = || loop {
                    turn += 1;
                    if !down[turn % 3].load(Ordering::SeqCst) {
                        return ports[turn % 3];
                    }
                };
                let per_job = VALIDATIONS_PER_CLIENT / JOBS_PER_CLIENT;
                let validation = serde_json::to_vec(&json!({ "mrz": MRZ })).unwrap();
                for j in 0..JOBS_PER_CLIENT {
                    let idem = format!("client{c}-job{j}");
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        let port = next_port();
                        match submit_job(port, &key, &job_body, &idem) {
                            Some(Ok(job_id)) => {
                                accepted.lock().unwrap().insert(job_id);
                                break;
                            }
                            Some(Err((s, v))) => panic!("job refused: {s} {v}"),
                            None => {
                                assert!(Instant::now() < deadline, "no node took the job");
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    for _ in 0..per_job {
                        loop {
                            match signed(
                                next_port(),
                                &key,
                                "POST",
                                "/v1/document/validate",
                                &validation,
                            ) {
                                Some((200, v)) => {
                                    assert_eq!(v["format"], "td3", "{v}");
                                    validated.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Some((s, v)) if s < 500 => panic!("validation refused: {s} {v}"),
                                // The node died under it: whether it was recorded is unknown.
                                _ => {
                                    lost.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Kill node C once a third of the jobs are in.
    while accepted.lock().unwrap().len() < CLIENTS * JOBS_PER_CLIENT / 3 {
        if clients.iter().any(|c| c.is_finished()) {
            break; // a client failed: its panic surfaces at the join below
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    down[2].store(true, Ordering::SeqCst);
    cluster.kill(2);
    let killed_at = accepted.lock().unwrap().len();
    for c in clients {
        c.join().unwrap();
    }
    let submitted_in = started.elapsed();
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(
        accepted.len(),
        CLIENTS * JOBS_PER_CLIENT,
        "every submission accepted once"
    );
    let validated = validated.load(Ordering::Relaxed);
    assert_eq!(validated, CLIENTS * VALIDATIONS_PER_CLIENT);

    let store = kycd::store::Store::connect(
        &kycd::store::Location::Postgres(database.clone()),
        kycd::store::crypto::MasterKey::load_or_create(&master).unwrap(),
        2,
    )
    .unwrap();
    let tenant = keys[0].tenant_id.clone();
    let count = |sql: &str| -> i64 {
        store
            .read(|db| db.query_row(sql, kycd::store::params![tenant], |r| r.get(0)))
            .unwrap()
    };
    // Node C's running jobs pass to A and B when its 5 s leases run out.
    wait_all_completed(&store, &tenant, accepted.len());
    let all_done_in = started.elapsed();
    let liveness_units =
        count("SELECT COUNT(*) FROM usage_events WHERE tenant_id = ?1 AND module = 'liveness'");
    let distinct = count(
        "SELECT COUNT(DISTINCT request_id) FROM usage_events WHERE tenant_id = ?1 AND module = 'liveness'",
    );
    assert_eq!(
        (liveness_units, distinct),
        (300, 300),
        "one liveness unit per job"
    );
    let validation_units =
        count("SELECT COUNT(*) FROM usage_events WHERE tenant_id = ?1 AND module = 'validation'")
            as usize;
    let lost = lost.load(Ordering::Relaxed);
    assert!(
        (validated..=validated + lost).contains(&validation_units),
        "validation units {validation_units}: {validated} answered, {lost} cut off by the kill"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM webhook_deliveries WHERE tenant_id = ?1 AND event = 'kyc.completed'"),
        300,
        "one kyc.completed per job"
    );
    let by_job = completed_events_by_job(&got, accepted.len());
    assert_eq!(by_job.len(), accepted.len(), "every job announced");
    assert!(
        by_job.values().all(|ids| ids.len() == 1),
        "one event id per job"
    );
    let posts = got.lock().unwrap().len();
    let retaken = count("SELECT COUNT(*) FROM jobs WHERE tenant_id = ?1 AND attempts > 1");
    eprintln!(
        "cluster: node C killed after {killed_at} of 300 jobs were accepted; 300 jobs and \
         {validated} validations submitted in {:.1} s, all jobs done at {:.1} s; {retaken} jobs \
         run again after their node died; {validation_units} validation units ({lost} requests \
         cut off); {posts} webhook POSTs for 300 jobs",
        submitted_in.as_secs_f64(),
        all_done_in.as_secs_f64()
    );

    // Node C comes back; the next checks spread over all three again.
    cluster.start_node(2);

    // --- A hard quota of 150, 200 concurrent requests over three nodes: exactly 150 pass.
    let quota_keys = cluster.tenant(
        "Quota",
        "pro",
        Some(
            json!({ "quota_mode": "hard", "modules": { "validation": { "monthly_quota": 150 } } }),
        ),
        4,
    );
    let validation = Arc::new(serde_json::to_vec(&json!({ "mrz": MRZ })).unwrap());
    let outcomes: Vec<u16> = (0..200)
        .map(|i| {
            let (key, port, body) = (quota_keys[i % 4].clone(), ports[i % 3], validation.clone());
            std::thread::spawn(move || {
                signed(port, &key, "POST", "/v1/document/validate", &body)
                    .expect("node answers")
                    .0
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let passed = outcomes.iter().filter(|s| **s == 200).count();
    let refused = outcomes.iter().filter(|s| **s == 429).count();
    assert_eq!((passed, refused), (150, 50), "{outcomes:?}");

    // --- A key's 60 a minute holds across nodes (±1 for a cell freed while counting).
    let rate_keys = cluster.tenant(
        "Rate",
        "enterprise",
        Some(json!({ "rate_limit": { "per_minute": 60, "per_day": 100000 } })),
        1,
    );
    let rate_key = &rate_keys[0];
    let allowed = (0..90)
        .filter(|i| {
            signed(
                ports[i % 3],
                rate_key,
                "POST",
                "/v1/document/validate",
                &validation,
            )
            .expect("node answers")
            .0 == 200
        })
        .count();
    assert!((60..=61).contains(&allowed), "{allowed} of 90 allowed");

    // --- A request replayed to another node is refused there.
    let key = &keys[1];
    let body = serde_json::to_vec(&json!({ "mrz": MRZ })).unwrap();
    let h = with_json(
        sign_headers(
            key,
            "POST",
            "/v1/document/validate",
            &body,
            crate::common::now(),
            None,
        ),
        &body,
    );
    assert_eq!(
        call(ports[0], "POST", "/v1/document/validate", &h, &body)
            .unwrap()
            .0,
        200
    );
    let (status, v) = call(ports[1], "POST", "/v1/document/validate", &h, &body).unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"]["code"], "replayed_request", "{v}");

    // --- A subject erased through node A is unreadable through node B.
    let media = media_body("selfie", 9);
    let (status, v) = signed(ports[2], key, "POST", "/v1/subjects/erase-me/media", &media).unwrap();
    assert_eq!(status, 201, "stored through node C: {v}");
    let media_id = v["media"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/media/{media_id}");
    assert_eq!(
        signed(ports[1], key, "GET", &path, b"").unwrap().0,
        200,
        "read through B"
    );
    let (status, v) = signed(ports[0], key, "DELETE", "/v1/subjects/erase-me", b"").unwrap();
    assert_eq!((status, &v["deleted"]["media"]), (200, &json!(1)), "{v}");
    assert_eq!(
        signed(ports[1], key, "GET", &path, b"").unwrap().0,
        404,
        "gone through B"
    );

    // --- A face enrolled through node C is found through node B within a second or two (each
    // node's index follows the database); erased through node A, it is gone through B as soon.
    let enrol = json!({ "image_base64": face_b64("obama.jpg"), "subject_id": "enrolled-on-c" });
    let (status, v) = signed(
        ports[2],
        key,
        "POST",
        "/v1/faces",
        &serde_json::to_vec(&enrol).unwrap(),
    )
    .unwrap();
    assert_eq!(status, 201, "{v}");
    let query = serde_json::to_vec(&json!({ "image_base64": face_b64("obama2.jpg") })).unwrap();
    let found_through_b = || -> Vec<Value> {
        let (status, v) = signed(ports[1], key, "POST", "/v1/faces/search", &query).unwrap();
        assert_eq!(status, 200, "{v}");
        v["candidates"].as_array().unwrap().clone()
    };
    let until = |want: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = found_through_b();
            if found.len() == want {
                return found;
            }
            assert!(Instant::now() < deadline, "{found:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let found = until(1);
    assert_eq!(found[0]["subject_id"], "enrolled-on-c");
    let (status, v) = signed(ports[0], key, "DELETE", "/v1/subjects/enrolled-on-c", b"").unwrap();
    assert_eq!(
        (status, &v["deleted"]["embeddings"]),
        (200, &json!(1)),
        "{v}"
    );
    until(0);

    // --- The audit chain every node appended to verifies.
    let audit = Command::new(env!("CARGO_BIN_EXE_kycd"))
        .arg("--data-dir")
        .arg(shared.path())
        .env("KYCD_DATABASE_URL", &database)
        .env("KYCD_MASTER_KEY_FILE", &master)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}

#[test]
fn a_single_node_moves_to_postgres_and_s3_and_its_keys_verify_there() {
    let Some((pg, s3)) = pg_and_s3("the migration test") else {
        return;
    };
    // A populated single node on SQLite and its objects/ directory, still running.
    let app = crate::common::TestApp::spawn_with(|c| {
        c.store.url = None;
        c.objects = Default::default();
    });
    let key = app.tenant_with_key();
    let media = media_body("selfie", 7);
    let r = app.signed(&key, "POST", "/v1/subjects/moving/media", &media);
    assert_eq!(r.status, 201, "{}", r.text);
    let media_id = r.body["media"]["id"].as_str().unwrap().to_owned();
    let body = serde_json::to_vec(&json!({ "mrz": MRZ })).unwrap();
    for _ in 0..3 {
        assert_eq!(
            app.signed(&key, "POST", "/v1/document/validate", &body)
                .status,
            200
        );
    }
    assert!(
        app.data_dir.path().join("kycd.db").exists(),
        "SQLite, not PostgreSQL"
    );

    let database = pg.fresh_database();
    let bucket = s3.fresh_bucket();
    let migrate = |to: &str| {
        Command::new(env!("CARGO_BIN_EXE_kycd"))
            .args(["store", "migrate", "--from"])
            .arg(app.data_dir.path())
            .args(["--to", to, "--objects", &bucket])
            .envs(s3.env())
            .env_remove("KYCD_DATABASE_URL")
            .env_remove("KYCD_OBJECTS_URL")
            .output()
            .unwrap()
    };
    let out = migrate(&database);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("media: 1 blobs copied"), "{stdout}");
    eprintln!("kycd store migrate:\n{stdout}");
    // Run again (as after an interruption): it resumes, copies nothing twice, verifies again.
    let again = migrate(&database);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // A database some node already uses is refused.
    let used = pg.fresh_database();
    let shared = tempfile::tempdir().unwrap();
    let master = app.data_dir.path().join("master.key");
    let node = |dir: &std::path::Path, database: &str, bucket: &str| {
        let mut env: Vec<(&str, String)> = vec![
            ("KYCD_DATABASE_URL", database.to_owned()),
            ("KYCD_OBJECTS_URL", bucket.to_owned()),
            ("KYCD_MASTER_KEY_FILE", master.display().to_string()),
            ("KYCD_ADMIN_TOKEN", ADMIN.into()),
        ];
        env.extend(s3.env());
        let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let port = free_port();
        (port, spawn_binary(port, dir, &env_refs, Stdio::null()).0)
    };
    let (port, mut busy) = node(shared.path(), &used, &s3.fresh_bucket());
    let h = [
        ("Authorization", format!("Bearer {ADMIN}")),
        ("Content-Type", "application/json".into()),
    ];
    let made = call(
        port,
        "POST",
        "/admin/v1/tenants",
        &h,
        br#"{"name":"Busy","plan":"pro"}"#,
    );
    assert_eq!(made.unwrap().0, 201);
    let _ = busy.kill();
    let _ = busy.wait();
    let refused = migrate(&used);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already holds data"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A node of the cluster, on the copy with the same master key: the moved key signs, the
    // moved media decrypts from the bucket, the moved usage is there.
    let node_dir = tempfile::tempdir().unwrap();
    let (port, mut node) = node(node_dir.path(), &database, &bucket);
    assert_eq!(
        signed(port, &key, "GET", "/v1/ping", b"").unwrap().0,
        200,
        "the moved key verifies"
    );
    let (status, _) = signed(port, &key, "GET", &format!("/v1/media/{media_id}"), b"").unwrap();
    assert_eq!(status, 200, "the moved media decrypts from the bucket");
    let (status, usage) = signed(port, &key, "GET", "/v1/usage", b"").unwrap();
    assert_eq!(status, 200, "{usage}");
    assert!(usage.to_string().contains("validation"), "{usage}");
    let _ = node.kill();
    let _ = node.wait();
}

/// Median and 95th percentile of `v` in milliseconds.
fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95))
}

/// Signed validations from `clients` threads for `secs` over `ports`: (requests/s, p50 ms, p95 ms).
fn validations_per_second(
    ports: &[u16],
    keys: &[Key],
    clients: usize,
    secs: u64,
) -> (f64, f64, f64) {
    let body = Arc::new(serde_json::to_vec(&json!({ "mrz": MRZ })).unwrap());
    let stop = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (ports, key, body) = (ports.to_vec(), keys[c % keys.len()].clone(), body.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = c;
                while Instant::now() < stop {
                    i += 1;
                    let t = Instant::now();
                    let (status, v) = signed(
                        ports[i % ports.len()],
                        &key,
                        "POST",
                        "/v1/document/validate",
                        &body,
                    )
                    .expect("node answers");
                    assert_eq!(status, 200, "{v}");
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, p95) = percentiles(&mut all);
    (rate, p50, p95)
}

/// `n` liveness jobs submitted over `ports` and waited for: jobs/s from first submission to the
/// last completion.
fn jobs_per_second(ports: &[u16], keys: &[Key], n: usize) -> f64 {
    let body = Arc::new(
        serde_json::to_vec(
            &json!({ "selfie": face_b64("obama.jpg"), "document_front": face_b64("obama.jpg") }),
        )
        .unwrap(),
    );
    let started = Instant::now();
    let ids: Vec<String> = (0..n)
        .map(|i| {
            let (status, v) = signed(
                ports[i % ports.len()],
                &keys[i % keys.len()],
                "POST",
                "/v1/kyc/verify",
                &body,
            )
            .expect("node answers");
            assert_eq!(status, 202, "{v}");
            v["job_id"].as_str().unwrap().to_owned()
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        loop {
            let (status, v) = signed(
                ports[i % ports.len()],
                &keys[i % keys.len()],
                "GET",
                &format!("/v1/jobs/{id}"),
                b"",
            )
            .expect("node answers");
            assert_eq!(status, 200, "{v}");
            if v["status"] == "completed" {
                break;
            }
            assert_ne!(v["status"], "failed", "{v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The scale-out measurement (run by hand: `cargo test --release --test api cluster::throughput
/// -- --ignored --nocapture`): signed validations and jobs on one SQLite node, then on 1, 2 and
/// 3 nodes sharing PostgreSQL + S3. A report, not a test: it asserts only that requests succeed.
#[test]
#[ignore]
fn throughput_on_one_two_and_three_nodes() {
    const CLIENTS: usize = 16;
    const SECS: u64 = 15;
    const JOBS: usize = 60;
    let pg = services::postgres().expect("PostgreSQL");
    let s3 = services::s3().expect("moto_server");
    let shared = tempfile::tempdir().unwrap();
    let master = shared.path().join("master.key");
    kycd::store::crypto::MasterKey::load_or_create(&master).unwrap();
    let base = |database: Option<String>| {
        let mut env = vec![
            ("KYCD_MASTER_KEY_FILE", master.display().to_string()),
            ("KYCD_ADMIN_TOKEN", ADMIN.to_string()),
        ];
        if let Some(db) = database {
            env.push(("KYCD_DATABASE_URL", db));
            env.push(("KYCD_OBJECTS_URL", s3.fresh_bucket()));
            env.extend(s3.env());
        }
        env
    };
    let unlimited = json!({ "rate_limit": { "per_minute": 1_000_000, "per_day": 100_000_000 } });
    let mut report = Vec::new();
    for nodes in [0usize, 1, 2, 3] {
        // 0 = one node on SQLite and its directory.
        let database = (nodes > 0).then(|| pg.fresh_database());
        let count = nodes.max(1);
        let mut cluster = Cluster {
            env: base(database),
            ports: (0..count).map(|_| free_port()).collect(),
            dirs: (0..count).map(|_| tempfile::tempdir().unwrap()).collect(),
            nodes: (0..count).map(|_| None).collect(),
        };
        for i in 0..count {
            cluster.start_node(i);
        }
        let keys = cluster.tenant("Load", "enterprise", Some(unlimited.clone()), CLIENTS);
        let workflow = serde_json::to_vec(&json!({ "steps": ["liveness"] })).unwrap();
        assert_eq!(
            signed(cluster.ports[0], &keys[0], "PUT", "/v1/workflow", &workflow)
                .unwrap()
                .0,
            200
        );
        // Warm-up, then the measured runs.
        validations_per_second(&cluster.ports, &keys, CLIENTS, 2);
        let (rate, p50, p95) = validations_per_second(&cluster.ports, &keys, CLIENTS, SECS);
        let jobs = jobs_per_second(&cluster.ports, &keys, JOBS);
        let label = if nodes == 0 {
            "1 node, SQLite + directory".to_string()
        } else {
            format!("{nodes} node(s), PostgreSQL + S3")
        };
        report.push(format!(
            "| {label} | {rate:.0} | {p50:.1} | {p95:.1} | {jobs:.2} |"
        ));
        drop(cluster);
    }
    eprintln!("| set-up | signed validations/s ({CLIENTS} clients) | p50 ms | p95 ms | liveness jobs/s ({JOBS}) |");
    eprintln!("|---|---|---|---|---|");
    for line in report {
        eprintln!("{line}");
    }
}

#[test]
fn an_interrupted_copy_resumes_after_its_last_batch_and_copies_nothing_twice() {
    use kycd::store::copy::{copy_database, Progress};
    use kycd::store::{Location, Store};
    let Some((pg, _)) = pg_and_s3("the copy test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key =
        || kycd::store::crypto::MasterKey::load_or_create(&dir.path().join("master.key")).unwrap();
    let db = dir.path().join("kycd.db");
    let source = Store::connect(&Location::Sqlite(db.clone()), key(), 1).unwrap();
    // 1,234 audit entries: three batches of 500 and a rest.
    source
        .write(|tx| {
            for i in 0..1234 {
                let entry = kycd::audit::NewEntry::new("op", "test.entry").target(format!("t{i}"));
                kycd::store::audit::append(tx, &entry, 1_700_000_000 + i)?;
            }
            Ok(())
        })
        .unwrap();
    let dest = Store::connect(&Location::Postgres(pg.fresh_database()), key(), 2).unwrap();
    // Interrupted after the second committed batch of the audit log.
    let mut batches = 0;
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        copy_database(&db, &dest, &mut |p| {
            if let Progress::Rows(_) = p {
                batches += 1;
                if batches == 2 {
                    panic!("interrupted");
                }
            }
        })
    }));
    assert!(stopped.is_err(), "the copy was interrupted");
    let copied = |store: &Store| -> i64 {
        store
            .read(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM audit_log",
                    kycd::store::params![],
                    |r| r.get(0),
                )
            })
            .unwrap()
    };
    assert_eq!(copied(&dest), 1000, "two batches committed");
    // Resumed: the table starts at the row after the last batch.
    let mut resumed_at = None;
    let counts = copy_database(&db, &dest, &mut |p| {
        if let Progress::Table {
            name: "audit_log",
            done,
            ..
        } = p
        {
            resumed_at = Some(done);
        }
    })
    .unwrap();
    assert_eq!(resumed_at, Some(1000));
    let audit = counts.iter().find(|c| c.table == "audit_log").unwrap();
    assert_eq!((audit.source, audit.destination), (1234, 1234));
    assert!(
        counts.iter().all(|c| c.source == c.destination),
        "{counts:?}"
    );
    let (before, after) = (
        kycd::audit::verify(&source).unwrap(),
        kycd::audit::verify(&dest).unwrap(),
    );
    assert!(after.ok);
    assert_eq!((after.entries, &after.head), (1234, &before.head));
}
