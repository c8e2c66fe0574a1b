//! The fuzzing harness: one real kycd server per fuzzing process (temporary data directory,
//! real models, loopback), a tenant with a key holding every permission, and signed requests.
//! Targets call [`send`] and fail on any answer of 500 or above: bad input must get a 4xx.

use std::sync::OnceLock;
use std::time::Duration;

use kycd::auth::signing;

/// The running server.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The key's id.
    pub key_id: String,
    /// The key's secret.
    pub secret: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

/// The server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = kycd::config::Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: Some("fuzz-admin-token-0123456789".into()),
        ..Default::default()
    };
    config.http.workers = 1;
    config.log.level = "off".into();
    let store = kycd::server::open_store(&config).expect("store");
    let tenant =
        kycd::tenancy::create_tenant(&store, "Fuzz", "enterprise", "fuzz").expect("tenant");
    let spec = kycd::auth::keys::KeySpec {
        permissions: Some(kycd::auth::permissions::Permission::ALL.to_vec()),
        ..Default::default()
    };
    let key = kycd::auth::keys::create_key_with(&store, &tenant.id, &spec, "fuzz").expect("key");
    drop(store);
    config.compat.facephi_tenant = Some(tenant.id.clone());
    // No rate limit gets in the way of millions of requests.
    config.compat.facephi_rate_per_minute = u32::MAX / 2000;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let running = kycd::server::start(config).expect("server starts");
            tx.send(running.addr).unwrap();
            running.server.await.expect("server runs");
        })
    });
    let addr = rx.recv().expect("address").to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let server = Server {
        addr,
        key_id: key.key.id.clone(),
        secret: key.secret,
        agent,
        _dir: dir,
    };
    // Plan with no rate limit for the fuzz key.
    let plan = serde_json::json!({ "rate_limit": { "per_minute": 1_000_000, "per_day": 100_000_000 } });
    let (s, body) = server.send_raw(
        "PUT",
        &format!("/admin/v1/tenants/{}/plan", tenant.id),
        &[("Authorization", "Bearer fuzz-admin-token-0123456789".into()), ("Content-Type", "application/json".into())],
        &serde_json::to_vec(&serde_json::json!({ "overrides": plan })).unwrap(),
    );
    assert_eq!(s, 200, "{body}");
    server
}

fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("fz{}", N.fetch_add(1, Ordering::Relaxed))
}

impl Server {
    /// Sends a request as is; returns the status and the body text.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let mut res = self
            .agent
            .run(req.body(body.to_vec()).expect("request"))
            .expect("the server answers");
        let status = res.status().as_u16();
        (status, res.body_mut().read_to_string().unwrap_or_default())
    }

    /// Sends a request signed with the fuzz key (for `/v1` paths) with `content_type`.
    pub fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let mut headers = vec![("Content-Type", content_type.to_owned())];
        if path.starts_with("/v1/") {
            let ts = kycd::store::now().to_string();
            let n = nonce();
            let canonical = signing::canonical_string(
                &ts,
                method,
                path,
                &signing::body_digest(body),
                Some(&n),
            );
            headers.push(("X-API-KEY", self.key_id.clone()));
            headers.push(("X-API-TIMESTAMP", ts));
            headers.push(("X-API-SIGN", signing::sign(self.secret.as_bytes(), &canonical)));
            headers.push(("X-API-NONCE", n));
        }
        self.send_raw(method, path, &headers, body)
    }
}

/// Fails the run on a server fault: bad input must be answered with a 4xx. A 503 `overloaded`
/// is the only 5xx allowed (load shedding), and never happens at fuzzing's concurrency of one.
pub fn assert_not_a_server_fault(method: &str, path: &str, status: u16, body: &str) {
    assert!(
        status < 500,
        "{method} {path} answered {status}: {}",
        body.chars().take(600).collect::<String>()
    );
    if status >= 400 {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert!(
            v["error"]["code"].is_string() && v["error"]["trace_id"].is_string(),
            "{method} {path} answered {status} outside the error envelope: {body}"
        );
    }
}
