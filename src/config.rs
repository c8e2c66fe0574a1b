//! Settings: built-in defaults, then `kycd.toml`, then `KYCD_*` environment variables, then the few
//! command-line flags, merged into one [`Config`] and validated once at start-up.
//!
//! Layers are merged into the struct directly (never round-tripped through the process
//! environment), so parallel tests and the CLI can hold different configs in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything kycd can be told. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where all state lives: `kycd.db`, `objects/`, `master.key`, `admin.token`.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Master key file; default `<data_dir>/master.key`, created 0600 on first start.
    pub master_key_file: Option<PathBuf>,
    /// Operator bearer token; when unset, `<data_dir>/admin.token` is read or created.
    pub admin_token: Option<String>,
    /// HTTP tuning.
    pub http: HttpConfig,
    /// Request-signing tolerances.
    pub auth: AuthConfig,
    /// Log output.
    pub log: LogConfig,
    /// Image intake and media retention.
    pub media: MediaConfig,
    /// Optional clamd scanning of uploads.
    pub antivirus: crate::media::antivirus::AntivirusConfig,
    /// Inference models and threads.
    pub models: ModelsConfig,
    /// The Facia- and FacePhi-compatible endpoints.
    pub compat: CompatConfig,
    /// The verification workflow's job runner.
    pub workflow: WorkflowRunConfig,
    /// Know-your-applicant checks that need the outside world.
    pub kya: KyaConfig,
    /// Where webhooks and job callbacks may be sent.
    pub webhooks: WebhooksConfig,
    /// Memory held by requests at once: bodies and decoded pixels.
    pub limits: LimitsConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Where tenants, keys, jobs and usage live: the embedded SQLite file or PostgreSQL.
    pub store: StoreConfig,
    /// Where sealed media blobs live: the data directory or an S3-compatible bucket.
    pub objects: crate::media::s3::ObjectsConfig,
    /// Redis for the rate buckets several nodes share.
    pub redis: RedisConfig,
    /// HTTPS served by kycd itself (rustls), instead of or behind a reverse proxy.
    pub tls: TlsConfig,
}

/// TLS on the main listener (see `server::tls`). Both `cert` and `key`, or neither.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first (env `KYCD_TLS_CERT`, flag `--tls-cert`). Read again,
    /// with `key`, on SIGHUP: new connections get the new certificate, open ones keep theirs.
    pub cert: Option<PathBuf>,
    /// PEM private key: PKCS#8, PKCS#1 or SEC1 (env `KYCD_TLS_KEY`, flag `--tls-key`).
    pub key: Option<PathBuf>,
    /// PEM CA certificates: when set, `/admin/v1` also needs a client certificate issued by one
    /// of them (mutual TLS) besides the bearer token (env `KYCD_TLS_ADMIN_CLIENT_CA`).
    pub admin_client_ca: Option<PathBuf>,
    /// `Strict-Transport-Security: max-age=` sent on every TLS response (0 = no header).
    pub hsts_max_age_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            admin_client_ca: None,
            hsts_max_age_secs: 31_536_000,
        }
    }
}

impl TlsConfig {
    /// Whether the main listener serves TLS.
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }
}

/// Redis (see `tenancy::ratelimit`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`: keep the per-key rate buckets there (several nodes share them);
    /// unset = in the PostgreSQL database when nodes share one, else in memory (env
    /// `KYCD_REDIS_URL`, flag `--redis`).
    pub url: Option<String>,
}

/// The database (see `store`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database` to run on PostgreSQL ≥ 14 (several nodes
    /// share one); unset, the embedded SQLite file `<data_dir>/kycd.db` (env
    /// `KYCD_DATABASE_URL`, flag `--database`).
    pub url: Option<String>,
    /// Most PostgreSQL connections this node opens (1–1000).
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            max_connections: 16,
        }
    }
}

/// What requests may hold in memory at once (see `admission`). With the defaults, requests hold
/// at most ~3 × `buffered_bytes` (a body, its parsed copy, decoded base64) plus
/// `decoded_bytes` on top of the models.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Request bodies being buffered or processed, in all.
    pub buffered_bytes: u64,
    /// The same for one API key (counted before its signature is checked) or one compatibility
    /// endpoint; at least `http.max_body_bytes`.
    pub buffered_bytes_per_key: u64,
    /// The same for all the keys of one tenant; at least `buffered_bytes_per_key`.
    pub buffered_bytes_per_tenant: u64,
    /// Decoded images held at once, in all (working memory of a decode included).
    pub decoded_bytes: u64,
    /// The same for one tenant.
    pub decoded_bytes_per_tenant: u64,
    /// How long a request waits for room before 503 `overloaded`.
    pub admission_wait_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            buffered_bytes: 256 << 20,
            buffered_bytes_per_key: 64 << 20,
            buffered_bytes_per_tenant: 128 << 20,
            decoded_bytes: 1536 << 20,
            decoded_bytes_per_tenant: 768 << 20,
            admission_wait_ms: 2000,
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A second listener serving only `/metrics`, unauthenticated (bind it to an internal
    /// address); on the main listener `/metrics` needs the operator token.
    pub listen: Option<SocketAddr>,
    /// Label quota gauges by tenant (tenant ids and their volumes are then visible to whoever
    /// scrapes); off = per module only.
    pub tenant_labels: bool,
}

/// Where webhooks may go (see `workflow::egress`): loopback, link-local, the metadata service
/// and kycd's own listeners never; private ranges only inside `allow_cidrs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Private ranges receivers may live in (`["10.20.0.0/16"]`); a loopback range must be
    /// named itself (`127.0.0.0/8`) to allow a receiver on this host.
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Let live keys use plain `http://` receivers (sandbox keys always may).
    pub allow_http: bool,
    /// Ports receivers may listen on; empty = any.
    pub allow_ports: Vec<u16>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_cidrs: Vec::new(),
            allow_http: false,
            allow_ports: vec![80, 443, 8000, 8080, 8443],
        }
    }
}

/// How verification jobs run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowRunConfig {
    /// Jobs run at once (inference inside them is still bounded by the per-core slots). 0: this
    /// node accepts verifications but runs none — an API-only node of a cluster whose other
    /// nodes run the jobs (on a single node, nothing would ever finish).
    pub workers: usize,
    /// Multiplies the webhook retry schedule (1 = 30 s … 8 h; tests use 0.01).
    pub webhook_retry_scale: f64,
    /// Seconds a node's claim on a running job lasts unless renewed (every third of it); when a
    /// node dies, another runs its jobs after this (5–3600).
    pub lease_secs: i64,
}

impl Default for WorkflowRunConfig {
    fn default() -> Self {
        WorkflowRunConfig {
            workers: 2,
            webhook_retry_scale: 1.0,
            lease_secs: 60,
        }
    }
}

/// KYA's optional outside world: DNS for email MX records, a MaxMind-format IP database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KyaConfig {
    /// `off` (default: no DNS on an air-gapped host), `system` (/etc/resolv.conf) or `IP[:port]`.
    pub mx_resolver: String,
    /// DNS timeout in milliseconds.
    pub dns_timeout_ms: u64,
    /// A MaxMind-format country database (`.mmdb`) for the IP check; unset = skipped.
    pub geoip_db: Option<PathBuf>,
}

impl Default for KyaConfig {
    fn default() -> Self {
        KyaConfig {
            mx_resolver: "off".into(),
            dns_timeout_ms: 2000,
            geoip_db: None,
        }
    }
}

/// Settings of the drop-in compatibility endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompatConfig {
    /// Tenant billed for FacePhi-compatible calls (`/api/v1/iad/*`), which carry no credential
    /// of their own, as on FacePhi's appliance; unset = those endpoints answer 404.
    pub facephi_tenant: Option<String>,
    /// Refuse FacePhi captures whose timestamp is older (or newer) than the tolerance.
    pub iad_replay_check: bool,
    /// Freshness window of a FacePhi capture, in seconds.
    pub iad_replay_tolerance_seconds: u64,
    /// FacePhi calls accepted a minute (they carry no credential, so they get their own
    /// budget instead of a key's).
    pub facephi_rate_per_minute: u32,
    /// FacePhi evaluations running at once; more wait briefly, then 503 `overloaded`.
    pub facephi_max_in_flight: u64,
    /// When set, FacePhi calls must carry it in `X-Compat-Secret` (a reverse proxy can add it).
    pub facephi_secret: Option<String>,
}

impl Default for CompatConfig {
    fn default() -> Self {
        CompatConfig {
            facephi_tenant: None,
            iad_replay_check: false,
            iad_replay_tolerance_seconds: 300,
            facephi_rate_per_minute: 60,
            facephi_max_in_flight: 2,
            facephi_secret: None,
        }
    }
}

/// Where the models come from and how inference runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Load model files from this directory instead of the copies embedded in the binary
    /// (each is still checked against its sha256).
    pub dir: Option<PathBuf>,
    /// Threads of the inference pool; unset = one per physical core.
    pub threads: Option<usize>,
    /// The engine that runs the models: `rten` (pure Rust, in the binary; the default) or `ort`
    /// (ONNX Runtime, about twice as fast on CPU; needs a kycd built with the `ort` feature and
    /// the operator's own `libonnxruntime.so`, API 22 or later, at `ort_library`).
    pub backend: Backend,
    /// Path of `libonnxruntime.so` for the `ort` backend (env `KYCD_ORT_LIBRARY`, else
    /// `ORT_DYLIB_PATH`).
    pub ort_library: Option<PathBuf>,
}

/// An inference engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// rten, pure Rust, compiled into the binary.
    #[default]
    Rten,
    /// ONNX Runtime, loaded at start-up from the operator's library (feature `ort`).
    Ort,
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rten" => Ok(Backend::Rten),
            "ort" => Ok(Backend::Ort),
            other => Err(format!("backend must be rten or ort, not {other:?}")),
        }
    }
}

/// Image intake limits and retention housekeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Largest decoded image, in bytes.
    pub max_image_bytes: usize,
    /// Largest width × height, checked from the header before decoding.
    pub max_pixels: u64,
    /// How often expired media is swept, in seconds.
    pub sweep_interval_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_image_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
            sweep_interval_secs: 600,
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (base64 images are ~4/3 of their size).
    pub max_body_bytes: usize,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds given to in-flight requests on SIGTERM.
    pub shutdown_timeout_secs: u64,
}

/// Request-signing settings (DESIGN.md §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Largest accepted |now − X-API-TIMESTAMP|, in seconds.
    pub max_skew_secs: i64,
    /// How long a (key, signature) pair is remembered to refuse replays, in seconds.
    pub replay_window_secs: i64,
    /// Remember accepted signatures in `<data_dir>/replay.db` too, so a request captured before
    /// a restart (or a `kill -9`) is refused after it. Off = memory only.
    pub replay_journal: bool,
}

/// Log settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (default, for journald and collectors) or `pretty`.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `kycd=debug`.
    pub level: String,
    /// OTLP/HTTP collector (`http://collector:4318`): traces are exported there when set.
    pub otlp_endpoint: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".parse().expect("static address"),
            master_key_file: None,
            admin_token: None,
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            media: MediaConfig::default(),
            antivirus: Default::default(),
            models: ModelsConfig::default(),
            compat: CompatConfig::default(),
            workflow: WorkflowRunConfig::default(),
            kya: KyaConfig::default(),
            webhooks: WebhooksConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            store: StoreConfig::default(),
            objects: Default::default(),
            redis: RedisConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 16 * 1024 * 1024,
            workers: 0,
            shutdown_timeout_secs: 30,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_skew_secs: 300,
            replay_window_secs: 600,
            replay_journal: true,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Json,
            level: "info".into(),
            otlp_endpoint: None,
        }
    }
}

/// Why a configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for [`Config`].
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: Box<toml::de::Error>,
    },
    /// An environment variable holds a value of the wrong form.
    #[error("invalid value for {var}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The merged settings are inconsistent.
    #[error("invalid setting {field}: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Values given on the command line; `None` keeps the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub config_file: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--models-dir`.
    pub models_dir: Option<PathBuf>,
    /// `--database`.
    pub database: Option<String>,
    /// `--objects`.
    pub objects: Option<String>,
    /// `--redis`.
    pub redis: Option<String>,
    /// `serve --tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `serve --tls-key`.
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Builds the effective config from the process environment and `overrides`.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with(overrides, |name| std::env::var(name).ok())
    }

    /// Builds the effective config with `env` as the environment, so tests need no globals.
    pub fn load_with(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env("KYCD_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("kycd.toml")).filter(|p| p.exists()));
        let mut config = match file {
            Some(path) => Self::from_file(&path)?,
            None => Config::default(),
        };
        config.apply_env(&env)?;
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.models_dir {
            config.models.dir = Some(dir.clone());
        }
        if let Some(url) = &overrides.database {
            config.store.url = Some(url.clone());
        }
        if let Some(url) = &overrides.objects {
            config.objects.url = Some(url.clone());
        }
        if let Some(url) = &overrides.redis {
            config.redis.url = Some(url.clone());
        }
        if let Some(path) = &overrides.tls_cert {
            config.tls.cert = Some(path.clone());
        }
        if let Some(path) = &overrides.tls_key {
            config.tls.key = Some(path.clone());
        }
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                var,
                reason: e.to_string(),
            })
        }
        if let Some(v) = env("KYCD_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("KYCD_DATABASE_URL") {
            self.store.url = Some(v);
        }
        if let Some(v) = env("KYCD_OBJECTS_URL") {
            self.objects.url = Some(v);
        }
        if let Some(v) = env("KYCD_REDIS_URL") {
            self.redis.url = Some(v);
        }
        if let Some(v) = env("KYCD_TLS_CERT") {
            self.tls.cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_TLS_KEY") {
            self.tls.key = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_TLS_ADMIN_CLIENT_CA") {
            self.tls.admin_client_ca = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_LISTEN") {
            self.listen = parse("KYCD_LISTEN", v)?;
        }
        if let Some(v) = env("KYCD_MASTER_KEY_FILE") {
            self.master_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_ADMIN_TOKEN") {
            self.admin_token = Some(v);
        }
        if let Some(v) = env("KYCD_MAX_BODY_BYTES") {
            self.http.max_body_bytes = parse("KYCD_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = env("KYCD_WORKERS") {
            self.http.workers = parse("KYCD_WORKERS", v)?;
        }
        if let Some(v) = env("KYCD_MODELS_DIR") {
            self.models.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_INFERENCE_THREADS") {
            self.models.threads = Some(parse("KYCD_INFERENCE_THREADS", v)?);
        }
        if let Some(v) = env("KYCD_INFERENCE_BACKEND") {
            self.models.backend = parse("KYCD_INFERENCE_BACKEND", v)?;
        }
        if let Some(v) = env("KYCD_ORT_LIBRARY").or_else(|| env("ORT_DYLIB_PATH")) {
            self.models.ort_library = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_FACEPHI_TENANT") {
            self.compat.facephi_tenant = Some(v);
        }
        if let Some(v) = env("KYCD_IAD_REPLAY_CHECK") {
            self.compat.iad_replay_check = parse("KYCD_IAD_REPLAY_CHECK", v)?;
        }
        if let Some(v) = env("KYCD_IAD_REPLAY_TOLERANCE_SECONDS") {
            self.compat.iad_replay_tolerance_seconds =
                parse("KYCD_IAD_REPLAY_TOLERANCE_SECONDS", v)?;
        }
        if let Some(v) = env("KYCD_FACEPHI_SECRET") {
            self.compat.facephi_secret = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = env("KYCD_REPLAY_JOURNAL") {
            self.auth.replay_journal = parse("KYCD_REPLAY_JOURNAL", v)?;
        }
        if let Some(v) = env("KYCD_JOB_WORKERS") {
            self.workflow.workers = parse("KYCD_JOB_WORKERS", v)?;
        }
        if let Some(v) = env("KYCD_JOB_LEASE_SECS") {
            self.workflow.lease_secs = parse("KYCD_JOB_LEASE_SECS", v)?;
        }
        if let Some(v) = env("KYCD_MX_RESOLVER") {
            self.kya.mx_resolver = v;
        }
        if let Some(v) = env("KYCD_GEOIP_DB") {
            self.kya.geoip_db = Some(PathBuf::from(v));
        }
        if let Some(v) = env("KYCD_CLAMD") {
            self.antivirus.clamd = Some(v);
        }
        if let Some(v) = env("KYCD_WEBHOOK_ALLOW_CIDRS") {
            self.webhooks.allow_cidrs = v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| parse("KYCD_WEBHOOK_ALLOW_CIDRS", c.to_owned()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env("KYCD_WEBHOOK_ALLOW_PORTS") {
            self.webhooks.allow_ports = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| parse("KYCD_WEBHOOK_ALLOW_PORTS", p.to_owned()))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env("KYCD_WEBHOOK_ALLOW_HTTP") {
            self.webhooks.allow_http = parse("KYCD_WEBHOOK_ALLOW_HTTP", v)?;
        }
        if let Some(v) = env("KYCD_METRICS_LISTEN") {
            self.metrics.listen = Some(parse("KYCD_METRICS_LISTEN", v)?);
        }
        if let Some(v) = env("KYCD_LOG_LEVEL") {
            self.log.level = v;
        }
        if let Some(v) = env("KYCD_OTLP_ENDPOINT") {
            self.log.otlp_endpoint = Some(v);
        }
        if let Some(v) = env("KYCD_LOG_FORMAT") {
            self.log.format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => {
                    return Err(ConfigError::Env {
                        var: "KYCD_LOG_FORMAT",
                        reason: "expected json or pretty".into(),
                    })
                }
            };
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid {
                field: "tls.cert",
                reason: "tls.cert and tls.key go together (--tls-cert and --tls-key)".into(),
            });
        }
        if self.tls.admin_client_ca.is_some() && !self.tls.enabled() {
            return Err(ConfigError::Invalid {
                field: "tls.admin_client_ca",
                reason: "client certificates need TLS: set tls.cert and tls.key".into(),
            });
        }
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                field: "http.max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        if !(1..=3600).contains(&self.auth.max_skew_secs) {
            return Err(ConfigError::Invalid {
                field: "auth.max_skew_secs",
                reason: "must be between 1 and 3600".into(),
            });
        }
        if self.auth.replay_window_secs < 2 * self.auth.max_skew_secs {
            // A signature stays valid for 2 × skew (ts may be that far ahead or behind), so a
            // shorter memory would let a replay through.
            return Err(ConfigError::Invalid {
                field: "auth.replay_window_secs",
                reason: "must be at least twice auth.max_skew_secs".into(),
            });
        }
        if self.media.max_image_bytes > self.http.max_body_bytes {
            return Err(ConfigError::Invalid {
                field: "media.max_image_bytes",
                reason: "must not exceed http.max_body_bytes".into(),
            });
        }
        let l = &self.limits;
        if l.buffered_bytes_per_key < self.http.max_body_bytes as u64
            || l.buffered_bytes_per_tenant < l.buffered_bytes_per_key
            || l.buffered_bytes < l.buffered_bytes_per_tenant
        {
            return Err(ConfigError::Invalid {
                field: "limits.buffered_bytes_per_key",
                reason: "http.max_body_bytes ≤ buffered_bytes_per_key ≤ buffered_bytes_per_tenant ≤ buffered_bytes"
                    .into(),
            });
        }
        // One decode of the largest image allowed (a 16-bit RGBA PNG: its buffer and rows, an
        // RGBA8 copy, the RGB8 result and a turned copy) must fit what a tenant may hold.
        let largest_decode = self.media.max_pixels.saturating_mul(8 + 1 + 4 + 3 + 3);
        if l.decoded_bytes_per_tenant < largest_decode
            || l.decoded_bytes < l.decoded_bytes_per_tenant
        {
            return Err(ConfigError::Invalid {
                field: "limits.decoded_bytes_per_tenant",
                reason: format!(
                    "must be at least {largest_decode} (one decode of media.max_pixels) and at most limits.decoded_bytes"
                ),
            });
        }
        if self.media.sweep_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                field: "media.sweep_interval_secs",
                reason: "must be at least 1".into(),
            });
        }
        if self
            .compat
            .facephi_secret
            .as_ref()
            .is_some_and(|s| s.len() < 16)
        {
            return Err(ConfigError::Invalid {
                field: "compat.facephi_secret",
                reason: "at least 16 characters, or unset".into(),
            });
        }
        if !(5..=3600).contains(&self.workflow.lease_secs) {
            return Err(ConfigError::Invalid {
                field: "workflow.lease_secs",
                reason: "must be 5–3600".into(),
            });
        }
        if !(1..=1000).contains(&self.store.max_connections) {
            return Err(ConfigError::Invalid {
                field: "store.max_connections",
                reason: "must be 1–1000".into(),
            });
        }
        if let Some(url) = &self.objects.url {
            crate::media::s3::Bucket::parse(url).map_err(|reason| ConfigError::Invalid {
                field: "objects.url",
                reason,
            })?;
        }
        if let Some(token) = &self.admin_token {
            if token.trim().len() < crate::auth::admin::MIN_LEN {
                return Err(ConfigError::Invalid {
                    field: "admin_token",
                    reason: "must be at least 16 characters".into(),
                });
            }
        }
        Ok(())
    }

    /// Path of the SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("kycd.db")
    }

    /// Where the store lives: `store.url`, else the SQLite file in the data directory.
    pub fn store_location(&self) -> crate::store::Location {
        match &self.store.url {
            Some(url) => crate::store::Location::parse(url),
            None => crate::store::Location::Sqlite(self.db_path()),
        }
    }

    /// Path of the replay journal.
    pub fn replay_path(&self) -> PathBuf {
        self.data_dir.join("replay.db")
    }

    /// Path of the master key file.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The object directory.
    pub fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

    /// Path of the operator token file used when no token is configured.
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_with(&Overrides::default(), env_of(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kycd.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlisten = \"127.0.0.1:9000\"\n[http]\nworkers = 3\n",
        )
        .unwrap();
        let overrides = Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        };
        let c =
            Config::load_with(&overrides, env_of(&[("KYCD_LISTEN", "127.0.0.1:9001")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.http.workers, 3);

        let overrides = Overrides {
            config_file: Some(file),
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        let c = Config::load_with(&overrides, env_of(&[("KYCD_DATA_DIR", "/from/env")])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
    }

    #[test]
    fn the_shipped_example_parses_to_the_defaults() {
        let example: Config =
            toml::from_str(include_str!("../packaging/kycd.example.toml")).expect("example parses");
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&example).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "packaging/kycd.example.toml documents the defaults"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kycd.toml");
        std::fs::write(&file, "data_dri = \"x\"\n").unwrap();
        let overrides = Overrides {
            config_file: Some(file),
            ..Default::default()
        };
        assert!(matches!(
            Config::load_with(&overrides, env_of(&[])),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            Config::load_with(&Overrides::default(), env_of(&[("KYCD_LISTEN", "nope")])),
            Err(ConfigError::Env {
                var: "KYCD_LISTEN",
                ..
            })
        ));
        assert!(matches!(
            Config::load_with(
                &Overrides::default(),
                env_of(&[("KYCD_ADMIN_TOKEN", "short")])
            ),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
