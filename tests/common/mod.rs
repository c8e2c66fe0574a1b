//! Test harness: a real kycd server on 127.0.0.1 (random port, temporary data directory) and an
//! HTTP client that signs requests exactly as DESIGN.md §4 says a tenant's back end would.
#![allow(dead_code)]

pub mod docgen;
pub mod services;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use kycd::auth::signing;
use kycd::config::Config;
use serde_json::{json, Value};

/// The admin token every test server is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Every key permission.
pub const ALL_PERMISSIONS: &[&str] = &[
    "results:read",
    "results:read_all",
    "media:read",
    "media:write",
    "subjects:erase",
    "workflow:read",
    "workflow:write",
    "webhooks:read",
    "webhooks:write",
    "audit:read",
    "usage:read",
    "faces:write",
    "faces:search",
];

/// Permissions a sandbox key can never hold.
pub const LIVE_ONLY_PERMISSIONS: &[&str] = &["workflow:write", "webhooks:write"];

fn key_of(tenant_id: &str, r: &Resp) -> Key {
    Key {
        tenant_id: tenant_id.to_owned(),
        key_id: r.body["id"].as_str().unwrap().to_owned(),
        secret: r.body["secret"].as_str().unwrap().to_owned(),
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's data directory.
    pub data_dir: tempfile::TempDir,
    /// The server's PostgreSQL database, when the suite runs on PostgreSQL.
    pub database: Option<String>,
    agent: ureq::Agent,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

/// A tenant's API key as created through the admin API.
#[derive(Debug, Clone)]
pub struct Key {
    /// Owning tenant.
    pub tenant_id: String,
    /// `X-API-KEY`.
    pub key_id: String,
    /// The HMAC secret.
    pub secret: String,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// The body (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// Raw body text.
    pub text: String,
    /// `X-Request-Id`.
    pub request_id: Option<String>,
    /// Every response header, names in lower case.
    pub headers: std::collections::HashMap<String, String>,
}

impl Resp {
    /// The `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and, for errors, the code and the envelope's shape.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.text);
        assert_eq!(self.code(), code, "code; body: {}", self.text);
        let err = &self.body["error"];
        assert!(err["message"].is_string(), "{}", self.text);
        assert!(err["details"].is_object(), "{}", self.text);
        assert_eq!(
            err["trace_id"].as_str(),
            self.request_id.as_deref(),
            "trace_id equals X-Request-Id"
        );
    }
}

impl TestApp {
    /// Starts a server with default settings.
    pub fn spawn() -> TestApp {
        Self::spawn_with(|_| {})
    }

    /// Starts a server after `adjust` has changed its config.
    pub fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: data_dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_token: Some(ADMIN_TOKEN.into()),
            ..Config::default()
        };
        config.http.workers = 1;
        // Test receivers listen on this host over plain http; the SSRF tests put the defaults
        // back (`c.webhooks = Default::default()`).
        config.webhooks.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
        config.webhooks.allow_http = true;
        config.webhooks.allow_ports = Vec::new();
        let database = database_for(data_dir.path());
        config.store.url = database.clone();
        config.store.max_connections = 4;
        if let Some(bucket) = bucket_for(data_dir.path()) {
            services::s3()
                .expect("checked by bucket_for")
                .configure(&mut config.objects, bucket);
        }
        adjust(&mut config);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let running = kycd::server::start(config).expect("server starts");
                tx.send((running.addr, running.handle.clone())).unwrap();
                running.server.await.expect("server runs");
            })
        });
        let (addr, handle) = rx.recv().expect("server reported its address");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        TestApp {
            base: format!("http://{addr}"),
            data_dir,
            database,
            agent,
            handle,
            thread: Some(thread),
        }
    }

    /// Path of a file in the data directory.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.data_dir.path().join(name)
    }

    /// Sends a request with the given headers and body, unsigned.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Resp {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(body.to_vec()).expect("request");
        let mut res = self.agent.run(req).expect("HTTP exchange");
        let status = res.status().as_u16();
        let request_id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            text,
            request_id,
            headers,
        }
    }

    /// Calls the admin API with the operator token.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let mut headers = vec![("Authorization", format!("Bearer {ADMIN_TOKEN}"))];
        let bytes = match body {
            Some(v) => {
                headers.push(("Content-Type", "application/json".into()));
                serde_json::to_vec(&v).unwrap()
            }
            None => Vec::new(),
        };
        self.raw(method, &format!("/admin/v1{path}"), &headers, &bytes)
    }

    /// `/metrics`, scraped with the operator token.
    pub fn metrics(&self) -> String {
        let auth = ("Authorization", format!("Bearer {ADMIN_TOKEN}"));
        let r = self.raw("GET", "/metrics", &[auth], b"");
        assert_eq!(r.status, 200, "{}", r.text);
        r.text
    }

    /// Creates a tenant through the admin API, on the Enterprise plan (600 requests a minute
    /// per key: tests that poll jobs stay within it).
    pub fn create_tenant(&self, name: &str) -> String {
        self.create_tenant_on(name, "enterprise")
    }

    /// Creates a tenant on `plan` through the admin API.
    pub fn create_tenant_on(&self, name: &str, plan: &str) -> String {
        let r = self.admin(
            "POST",
            "/tenants",
            Some(json!({ "name": name, "plan": plan })),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a key for `tenant_id` through the admin API with every permission its
    /// environment allows (sandbox keys cannot change live configuration).
    pub fn create_key(&self, tenant_id: &str) -> Key {
        let path = format!("/tenants/{tenant_id}/keys");
        let r = self.admin(
            "POST",
            &path,
            Some(json!({ "permissions": ALL_PERMISSIONS })),
        );
        if r.status == 422 {
            let allowed: Vec<&str> = ALL_PERMISSIONS
                .iter()
                .copied()
                .filter(|p| !LIVE_ONLY_PERMISSIONS.contains(p))
                .collect();
            return self.create_key_with(tenant_id, json!({ "permissions": allowed }));
        }
        assert_eq!(r.status, 201, "{}", r.text);
        key_of(tenant_id, &r)
    }

    /// Creates a key for `tenant_id` with the admin API body `spec` (`scopes`, `permissions`,
    /// `environment`, …).
    pub fn create_key_with(&self, tenant_id: &str, spec: Value) -> Key {
        let r = self.admin("POST", &format!("/tenants/{tenant_id}/keys"), Some(spec));
        assert_eq!(r.status, 201, "{}", r.text);
        key_of(tenant_id, &r)
    }

    /// A new tenant with one key.
    pub fn tenant_with_key(&self) -> Key {
        let t = self.create_tenant("Test tenant");
        self.create_key(&t)
    }

    /// Runs `f` on a connection to the server's database (either engine).
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&kycd::store::Conn<'_>) -> kycd::store::Result<T>,
    ) -> T {
        open_store(self.data_dir.path()).read(f).unwrap()
    }

    /// Runs `f` in a write transaction on the server's database (either engine).
    pub fn write_store<T>(
        &self,
        f: impl FnOnce(&kycd::store::Tx<'_>) -> kycd::store::Result<T>,
    ) -> T {
        open_store(self.data_dir.path()).write(f).unwrap()
    }

    /// Sends a request signed now with `key` (and a fresh nonce, so repeats are not replays).
    pub fn signed(&self, key: &Key, method: &str, path: &str, body: &[u8]) -> Resp {
        let nonce = format!("n{}", rand_suffix());
        let headers = sign_headers(key, method, path, body, now(), Some(&nonce));
        self.raw(method, path, &with_json(headers, body), body)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ (now() as u64).rotate_left(20)
}

/// The signing headers for a request, as a client computes them.
pub fn sign_headers(
    key: &Key,
    method: &str,
    path: &str,
    body: &[u8],
    ts: i64,
    nonce: Option<&str>,
) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    let canonical =
        signing::canonical_string(&ts, method, path, &signing::body_digest(body), nonce);
    let mut h = vec![
        ("X-API-KEY", key.key_id.clone()),
        ("X-API-TIMESTAMP", ts),
        (
            "X-API-SIGN",
            signing::sign(key.secret.as_bytes(), &canonical),
        ),
    ];
    if let Some(n) = nonce {
        h.push(("X-API-NONCE", n.to_owned()));
    }
    h
}

/// Adds a JSON content type when there is a body.
pub fn with_json(
    mut headers: Vec<(&'static str, String)>,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json".into()));
    }
    headers
}

/// One request to a server on `port` of this host; `None` when the connection failed (the
/// server is down).
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<(u16, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let mut res = agent.run(req.body(body.to_vec()).unwrap()).ok()?;
    let text = res.body_mut().read_to_string().unwrap_or_default();
    Some((
        res.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ))
}

/// Submits a verification to the server on `port` under an `Idempotency-Key`, freshly signed:
/// `Some(Ok(job_id))` when accepted, `Some(Err(..))` when refused, `None` when the server could
/// not be reached (the caller retries, with the same key, on another node or after a restart).
pub fn submit_job(
    port: u16,
    key: &Key,
    body: &[u8],
    idempotency_key: &str,
) -> Option<Result<String, (u16, Value)>> {
    let nonce = format!("j{}", rand_suffix());
    let mut h = with_json(
        sign_headers(key, "POST", "/v1/kyc/verify", body, now(), Some(&nonce)),
        body,
    );
    h.push(("Idempotency-Key", idempotency_key.to_owned()));
    match call(port, "POST", "/v1/kyc/verify", &h, body)? {
        (202 | 200, v) => Some(Ok(v["job_id"].as_str().unwrap().to_owned())),
        (s, v) if s < 500 => Some(Err((s, v))),
        _ => None,
    }
}

/// Waits (up to ten minutes) until every job of `tenant_id` is completed, asserting all along
/// that there are exactly `accepted` of them (none queued twice, none lost). The deadline only
/// catches a hang: on CI's two cores another test runs beside this one (Chromium and inference
/// in the console tests), and 200 jobs once took more than five minutes there.
pub fn wait_all_completed(store: &kycd::store::Store, tenant_id: &str, accepted: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let (done, total): (i64, i64) = store
            .read(|db| {
                db.query_row(
                    "SELECT COUNT(*) FILTER (WHERE status = 'completed'), COUNT(*) FROM jobs WHERE tenant_id = ?1",
                    kycd::store::params![tenant_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .unwrap();
        assert_eq!(total as usize, accepted, "no job queued twice, none lost");
        if done == total {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{done} of {total} completed"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A stored-media request body: a generated `kind` JPEG, base64.
pub fn media_body(kind: &str, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(200, 160, |x, y| {
        image::Rgb([(x % 256) as u8, seed, (y % 256) as u8])
    });
    serde_json::to_vec(&json!({
        "kind": kind,
        "image_base64": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            kycd::media::intake::encode_jpeg(&img, 90),
        ),
    }))
    .unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A free loopback port (racy in principle; fine for tests that start one server each).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PostgreSQL database a server with this data directory uses when the suite runs on
/// PostgreSQL (made on first use, the same for every later server on that directory, so a
/// restarted node finds its data); `None` on SQLite.
pub fn database_for(data_dir: &Path) -> Option<String> {
    if !services::postgres_backend() {
        return None;
    }
    static DATABASES: Memo = Memo::new(Vec::new());
    Some(per_data_dir(&DATABASES, data_dir, || {
        services::postgres()
            .expect("KYCD_TEST_BACKEND=postgres needs PostgreSQL installed")
            .fresh_database()
    }))
}

type Memo = std::sync::Mutex<Vec<(PathBuf, String)>>;

/// What `memo` holds for `data_dir`, made by `make` the first time.
fn per_data_dir(memo: &Memo, data_dir: &Path, make: impl FnOnce() -> String) -> String {
    let mut known = memo.lock().unwrap();
    if let Some((_, v)) = known.iter().find(|(d, _)| d == data_dir) {
        return v.clone();
    }
    let v = make();
    known.push((data_dir.to_owned(), v.clone()));
    v
}

/// The bucket a server with this data directory keeps its media in when the suite runs on
/// PostgreSQL + S3 (one per directory, like the database); `None` on SQLite.
pub fn bucket_for(data_dir: &Path) -> Option<String> {
    if !services::postgres_backend() {
        return None;
    }
    static BUCKETS: Memo = Memo::new(Vec::new());
    Some(per_data_dir(&BUCKETS, data_dir, || {
        services::s3()
            .expect("KYCD_TEST_BACKEND=postgres needs moto_server installed")
            .fresh_bucket()
    }))
}

/// The store of a server's data directory, opened beside it (either engine).
pub fn open_store(data_dir: &Path) -> kycd::store::Store {
    let master =
        kycd::store::crypto::MasterKey::load_or_create(&data_dir.join("master.key")).unwrap();
    let location = match database_for(data_dir) {
        Some(url) => kycd::store::Location::Postgres(url),
        None => kycd::store::Location::Sqlite(data_dir.join("kycd.db")),
    };
    kycd::store::Store::connect(&location, master, 2).unwrap()
}

/// Environment for a `kycd` process on `data_dir`: its database and bucket when on PostgreSQL
/// + S3.
pub fn store_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(url) = database_for(data_dir) {
        env.push(("KYCD_DATABASE_URL", url));
    }
    if let Some(bucket) = bucket_for(data_dir) {
        env.push(("KYCD_OBJECTS_URL", bucket));
        env.extend(services::s3().expect("checked by bucket_for").env());
    }
    env
}

/// Starts the built `kycd serve` on `port` with `data_dir`, stderr to `stderr`, and waits until
/// `/readyz` answers 200. Returns the child and an HTTP agent.
pub fn spawn_binary(
    port: u16,
    data_dir: &Path,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (std::process::Child, ureq::Agent) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kycd"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("KYCD_ADMIN_TOKEN")
        .envs(store_env(data_dir))
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("kycd starts");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while agent
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .call()
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "kycd never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, agent)
}

/// A test that needs a tool this machine lacks: under `CI=true` that is a failure (README's test
/// command, `scripts/test`, installs every tool the tests use); elsewhere the part that needs it
/// is skipped with a note, and the caller returns.
pub fn tool_missing(tool: &str, what: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{tool} is not installed (CI=true): run the tests with scripts/test, which installs it"
    );
    eprintln!("{tool} not installed: {what} is skipped (scripts/test installs it)");
}
