//! Start-up and shutdown of `kycd serve`: open the data directory, load keys, bind, mark ready,
//! and stop gracefully on SIGTERM or SIGINT (actix finishes in-flight requests first).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use anyhow::Context;

use crate::auth::admin::AdminToken;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::media::intake::IntakeLimits;
use crate::media::MediaService;
use crate::store::crypto::MasterKey;
use crate::store::Store;
use crate::vision::service::Vision;

/// Opens the store and secrets for `config`; shared by the server and the admin CLI.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    // A new data directory is the service user's alone (an existing one keeps its mode;
    // `kycd doctor` says when it is open to others).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let master = MasterKey::load_or_create(&config.master_key_path())?;
    Store::connect(
        &config.store_location(),
        master,
        config.store.max_connections,
    )
    .context("cannot open the database")
}

/// This node's name in job claims: `<host>-<random>`, made once and kept in the data directory,
/// so a restarted node takes back its own unfinished jobs at once and never another node's.
pub fn node_id(config: &Config) -> anyhow::Result<String> {
    let path = config.data_dir.join("node.id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    let mut raw = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    let id = format!(
        "{}-{}",
        if host.is_empty() { "kycd" } else { &host },
        hex::encode(raw)
    );
    std::fs::write(&path, format!("{id}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// The operator token: configured, or read from (or created in) the data directory.
pub fn admin_token(config: &Config) -> anyhow::Result<AdminToken> {
    match &config.admin_token {
        Some(value) => Ok(AdminToken::from_value(value)?),
        None => AdminToken::load_or_create(&config.admin_token_path())
            .with_context(|| format!("cannot read {}", config.admin_token_path().display())),
    }
}

/// A server that is accepting connections.
pub struct Running {
    /// The bound address (useful when listening on port 0).
    pub addr: SocketAddr,
    /// Stops the server.
    pub handle: ServerHandle,
    /// Completes when the server has stopped.
    pub server: actix_web::dev::Server,
    /// The authenticator, whose counted refusals are written to the audit log at stop.
    pub auth: Arc<crate::auth::Authenticator>,
    /// The store they are written to.
    pub store: Arc<crate::store::Store>,
}

/// Opens everything, loads and warms up the models, and binds; `/readyz` is 200 from the first
/// request it can answer. Must be called inside an actix/tokio runtime.
pub fn start(config: Config) -> anyhow::Result<Running> {
    let store = Arc::new(open_store(&config)?);
    let token = admin_token(&config)?;
    let listen = config.listen;
    let objects = crate::media::objects::Objects::open(&config.objects, &config.objects_dir())
        .context("cannot open the object storage")?;
    tracing::info!(objects = %objects.describe(), "object storage");
    let media = Arc::new(MediaService::new(
        store.clone(),
        objects,
        IntakeLimits {
            max_bytes: config.media.max_image_bytes,
            max_pixels: config.media.max_pixels,
        },
        config.antivirus.clone(),
        crate::admission::Budget::new(
            "decoded_pixels",
            config.limits.decoded_bytes,
            config.limits.decoded_bytes_per_tenant,
            Duration::from_millis(config.limits.admission_wait_ms),
        ),
    )?);
    let sweep_every = Duration::from_secs(config.media.sweep_interval_secs);
    let loading = std::time::Instant::now();
    let vision = Vision::load(&config.models).context("cannot load the models")?;
    vision
        .warm_up()
        .context("models failed their warm-up inference")?;
    tracing::info!(
        ms = loading.elapsed().as_millis() as u64,
        "models loaded and warmed up"
    );
    let vision = Arc::new(vision);
    let faces = Arc::new(crate::faces::Faces::new(
        store.clone(),
        media.face_index().clone(),
    ));
    let loaded = faces
        .load(&mut |_| {})
        .context("cannot rebuild the face index")?;
    tracing::info!(faces = loaded.faces, ms = loaded.ms, "face index rebuilt");
    let kya = crate::kya::settings(&config.kya).map_err(anyhow::Error::msg)?;
    let meter = Arc::new(crate::tenancy::meter::Meter::new(store.clone()));
    let metrics = Arc::new(crate::telemetry::metrics::Metrics::new());
    let egress = Arc::new(crate::workflow::egress::Policy::new(
        config.webhooks.allow_cidrs.clone(),
        config.webhooks.allow_http,
        config.webhooks.allow_ports.clone(),
    ));
    let jobs = Arc::new(crate::workflow::jobs::Jobs::new(
        store.clone(),
        media.clone(),
        vision.clone(),
        meter.clone(),
        metrics.clone(),
        crate::workflow::jobs::JobSettings {
            kya,
            webhook_retry_scale: config.workflow.webhook_retry_scale,
            egress: egress.clone(),
            node: node_id(&config)?,
            lease_secs: config.workflow.lease_secs,
            faces: faces.clone(),
        },
    ));
    let job_workers = config.workflow.workers;
    let auth = Arc::new(if store.backend() == crate::store::Backend::Postgres {
        // Every node sees every accepted signature (the journal file is one node's).
        crate::auth::Authenticator::shared(store.clone(), &config.auth)
    } else if config.auth.replay_journal {
        crate::auth::Authenticator::durable(store.clone(), &config.auth, &config.replay_path())
            .context("cannot open the replay journal")?
    } else {
        crate::auth::Authenticator::new(store.clone(), &config.auth)
    });
    // Rate buckets: Redis when configured, else the database when nodes share one, else memory.
    let rate_limiter = match &config.redis.url {
        Some(url) => crate::tenancy::ratelimit::RateLimiter::redis(
            crate::tenancy::ratelimit::redis_pool(url).map_err(anyhow::Error::msg)?,
        ),
        None if store.backend() == crate::store::Backend::Postgres => {
            crate::tenancy::ratelimit::RateLimiter::shared(store.clone())
        }
        None => crate::tenancy::ratelimit::RateLimiter::new(),
    };
    let mut state = AppState::new(
        config,
        store,
        token,
        media.clone(),
        vision,
        jobs.clone(),
        auth,
    );
    state.rate_limiter = rate_limiter;
    let state = web::Data::new(state);
    let tls = if state.config.tls.enabled() {
        let (config, certificates) =
            http::tls::server_config(&state.config.tls).context("cannot set up TLS")?;
        actix_web::rt::spawn(http::tls::reload_on_sighup(certificates));
        Some(config)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (server, addr) = http::bind(state.clone(), listen, tls)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut listeners = vec![addr];
    if let Some(metrics_listen) = state.config.metrics.listen {
        let (metrics_server, metrics_addr) = http::bind_metrics(state.clone(), metrics_listen)
            .with_context(|| format!("cannot listen on {metrics_listen} for /metrics"))?;
        tracing::info!(addr = %metrics_addr, "metrics listener");
        listeners.push(metrics_addr);
        actix_web::rt::spawn(metrics_server);
    }
    // Webhooks may never be pointed at kycd itself.
    egress.set_listeners(&listeners);
    state
        .auth
        .warm()
        .context("cannot load the key-secret data key")?;
    state.metrics.models_loaded.set(1);
    actix_web::rt::spawn(crate::media::retention_worker(
        media,
        state.metrics.clone(),
        sweep_every,
    ));
    actix_web::rt::spawn(replay_sweeper(state.auth.clone()));
    actix_web::rt::spawn(crate::faces::follower(faces));
    actix_web::rt::spawn(crate::auth::failures::flush_worker(
        state.auth.clone(),
        state.store.clone(),
        Duration::from_secs(60),
    ));
    jobs.start(job_workers)
        .context("cannot queue the jobs left by the previous process")?;
    state.ready.store(true, Ordering::Release);
    tracing::info!(%addr, scheme, version = env!("CARGO_PKG_VERSION"), "kycd ready");
    Ok(Running {
        addr,
        handle: server.handle(),
        server,
        auth: state.auth.clone(),
        store: state.store.clone(),
    })
}

/// Deletes expired replay-journal rows every few seconds, off the request path.
async fn replay_sweeper(auth: Arc<crate::auth::Authenticator>) {
    const EVERY: Duration = Duration::from_secs(5);
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let a = auth.clone();
        match tokio::task::spawn_blocking(move || a.sweep_replays()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "sweeping the replay journal failed"),
            Err(e) => tracing::warn!(error = %e, "replay sweeper task failed"),
        }
    }
}

/// Runs `kycd serve` until a shutdown signal.
pub fn serve(config: Config) -> anyhow::Result<()> {
    // Whatever the caller's umask (a container's is 022), what kycd writes is its own alone.
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    actix_web::rt::System::new().block_on(async move {
        let running = start(config)?;
        running.server.await.context("server failed")?;
        // The last minute's refused requests, which the periodic flush has not written yet.
        if let Err(e) = running.auth.failures.flush(&running.store, 60) {
            tracing::error!(error = %e, "writing auth failures to the audit log failed");
        }
        tracing::info!("kycd stopped");
        Ok(())
    })
}
