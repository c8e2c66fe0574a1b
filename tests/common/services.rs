//! Throw-away servers the scale-out tests run against: a PostgreSQL cluster made with `initdb` in
//! a temporary directory and listening on a free loopback port, started once per test binary and
//! killed with it (the parent-death signal, set by `setpriv`, reaches it however the binary ends).
//!
//! An S3-compatible server (moto's `moto_server`, from PyPI's `moto[server]`) and Redis (Debian's
//! `redis-server`, no persistence) are started the same way, each on its own free port.
//!
//! `KYCD_TEST_BACKEND=postgres` runs the whole API suite on PostgreSQL and S3: every `TestApp`
//! then gets a database and a bucket of its own. Nothing on the machine needs to be running; the
//! binaries come from Debian's `postgresql` package and PyPI's `moto[server]` (`scripts/test`
//! installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The backend the API suite runs on (`KYCD_TEST_BACKEND`: `sqlite`, the default, or
/// `postgres`).
pub fn postgres_backend() -> bool {
    match std::env::var("KYCD_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("KYCD_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// A running throw-away PostgreSQL cluster.
pub struct Postgres {
    /// Its loopback port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// A URL for `database` as the cluster's superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new empty database; its URL.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "kycd_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        self.url(&name)
    }
}

/// Where Debian's PostgreSQL binaries are (`/usr/lib/postgresql/<version>/bin`, newest first),
/// or `initdb` on the PATH.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}

/// The cluster, started on first use; `None` (after saying so, and failing under `CI=true`) when
/// PostgreSQL is not installed.
pub fn postgres() -> Option<&'static Postgres> {
    static PG: OnceLock<Option<Postgres>> = OnceLock::new();
    PG.get_or_init(|| {
        let Some(bin) = postgres_bin() else {
            super::tool_missing(
                "PostgreSQL (initdb, postgres)",
                "the PostgreSQL backend tests",
            );
            return None;
        };
        Some(start_postgres(&bin))
    })
    .as_ref()
}

/// Whether the tests run as root.
fn root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// As root, the cluster runs as Debian's `postgres` user (PostgreSQL refuses to run as root).
fn as_cluster_user(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    if root() {
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    // SIGQUIT is PostgreSQL's immediate shutdown: the cluster goes when the test binary does.
    cmd.args(["--pdeathsig=QUIT", "--"]).arg(program);
    cmd
}

fn start_postgres(bin: &Path) -> Postgres {
    let dir = tempfile::Builder::new()
        .prefix("kycd-pg-")
        .tempdir()
        .expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if root() {
        let chown = Command::new("chown")
            .arg("-R")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .expect("chown runs");
        assert!(
            chown.success(),
            "the postgres user owns the cluster's directory"
        );
    }
    let out = as_cluster_user(&bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .output()
        .expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = super::free_port();
    let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
    let mut cmd = as_cluster_user(&bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir.path())
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=400",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=64MB",
        ])
        .stdout(Stdio::null())
        .stderr(log);
    spawn_for_life(cmd);
    let pg = Postgres { port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match postgres::Client::connect(&pg.url("postgres"), postgres::NoTls) {
            Ok(_) => return pg,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the test PostgreSQL did not start: {e}; log: {}",
                    std::fs::read_to_string(pg._dir.path().join("postgres.log"))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A running throw-away S3-compatible server (moto), which accepts any credentials.
pub struct S3 {
    /// Its loopback port.
    pub port: u16,
}

impl S3 {
    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new empty bucket; its `s3://bucket/prefix` URL.
    pub fn fresh_bucket(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "kycd-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .put(&format!("{}/{name}", self.endpoint()))
            .send_empty()
            .expect("the S3 server answers");
        assert_eq!(response.status(), 200, "bucket {name} created");
        format!("s3://{name}/media")
    }

    /// The environment a `kycd` process needs to reach it (the AWS variables object_store reads).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "kycd-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "kycd-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The same as `[objects]` settings for a server started in the test binary.
    pub fn configure(&self, objects: &mut kycd::media::s3::ObjectsConfig, url: String) {
        objects.url = Some(url);
        objects.endpoint = Some(self.endpoint());
        objects.region = Some("us-east-1".into());
        objects.access_key_id = Some("kycd-test".into());
        objects.secret_access_key = Some("kycd-test-secret".into());
        objects.allow_http = true;
    }
}

/// The S3 server, started on first use; `None` (after saying so, and failing under `CI=true`)
/// when `moto_server` is not installed.
pub fn s3() -> Option<&'static S3> {
    static S3_SERVER: OnceLock<Option<S3>> = OnceLock::new();
    S3_SERVER
        .get_or_init(|| {
            let Some(moto) = on_path("moto_server") else {
                super::tool_missing("moto_server (pip install 'moto[server]')", "the S3 tests");
                return None;
            };
            let port = super::free_port();
            let port_arg = port.to_string();
            start_on_port(
                &moto,
                &["-H", "127.0.0.1", "-p", &port_arg],
                port,
                "moto_server",
            );
            Some(S3 { port })
        })
        .as_ref()
}

/// A running throw-away Redis (no persistence), for the rate buckets nodes share.
pub struct Redis {
    /// Its loopback port.
    pub port: u16,
}

impl Redis {
    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// The Redis server, started on first use; `None` (after saying so, and failing under
/// `CI=true`) when `redis-server` is not installed.
pub fn redis() -> Option<&'static Redis> {
    static REDIS: OnceLock<Option<Redis>> = OnceLock::new();
    REDIS
        .get_or_init(|| {
            let Some(server) = on_path("redis-server") else {
                super::tool_missing("redis-server (Debian's redis-server)", "the Redis tests");
                return None;
            };
            let port = super::free_port();
            let port_arg = port.to_string();
            let args = [
                "--port",
                &port_arg,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ];
            start_on_port(&server, &args, port, "redis-server");
            Some(Redis { port })
        })
        .as_ref()
}

/// Starts `program` with `args` for the test binary's life (killed with it) and waits until it
/// accepts connections on `port`.
fn start_on_port(program: &Path, args: &[&str], port: u16, what: &str) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig=KILL", "--"])
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_for_life(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Spawns `cmd` from a thread that lives as long as the test binary: the parent-death signal is
/// sent when the *thread* that forked the child ends, and test threads end early.
fn spawn_for_life(mut cmd: Command) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let child: std::io::Result<Child> = cmd.spawn();
        let ok = child.is_ok();
        tx.send(child.map(|_| ())).unwrap();
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv().unwrap().expect("the service starts");
}
