//! The HTTP layer: app factory, middleware and routes. Thin by rule — handlers parse, authorise
//! (in their signature), call one domain function and map its error. Blocking work (SQLite,
//! crypto over blobs, inference) goes through `web::block`, never on the actix threads.

pub mod body;
pub mod extract;
pub mod metered;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod signed;
pub mod tls;
pub mod upload;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Condition, DefaultHeaders};
use actix_web::{web, App, HttpResponse, HttpServer};

use crate::auth::admin::AdminToken;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::media::MediaService;
use crate::store::Store;
use crate::telemetry::metrics::Metrics;
use crate::vision::service::Vision;
use openapi::scoped;

/// Everything a handler can reach.
pub struct AppState {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Arc<Store>,
    /// Signed-request verification.
    pub auth: Arc<Authenticator>,
    /// The operator token.
    pub admin_token: AdminToken,
    /// Image intake and encrypted media.
    pub media: Arc<MediaService>,
    /// Loaded, warmed-up face models.
    pub vision: Arc<Vision>,
    /// Verification jobs.
    pub jobs: Arc<crate::workflow::jobs::Jobs>,
    /// Enrolled faces and the 1:N index.
    pub faces: Arc<crate::faces::Faces>,
    /// Quotas and usage recording.
    pub meter: Arc<crate::tenancy::meter::Meter>,
    /// Request rate limits per key.
    pub rate_limiter: crate::tenancy::ratelimit::RateLimiter,
    /// When each key's last use was last written (keys are touched at most once a minute).
    pub key_touches: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Set once everything `/readyz` depends on has loaded.
    pub ready: AtomicBool,
    /// FacePhi IAD settings, changeable at run time through `POST /api/v1/iad/config`.
    pub iad: std::sync::RwLock<routes::compat::facephi::IadSettings>,
    /// Request bodies held at once: in all, per key (or compatibility endpoint), per tenant.
    pub bodies: body::BodyBudget,
    /// FacePhi evaluations in flight (units, not bytes).
    pub facephi_in_flight: Arc<crate::admission::Budget>,
}

impl AppState {
    /// Builds the state over an open store; the meter and metrics are the job service's.
    pub fn new(
        config: Config,
        store: Arc<Store>,
        admin_token: AdminToken,
        media: Arc<MediaService>,
        vision: Arc<Vision>,
        jobs: Arc<crate::workflow::jobs::Jobs>,
        auth: Arc<Authenticator>,
    ) -> Self {
        // The job service and the routes share one meter and one registry.
        let (meter, metrics) = (jobs.meter(), jobs.metrics());
        let iad = routes::compat::facephi::IadSettings {
            replay_check: config.compat.iad_replay_check,
            replay_tolerance_seconds: config.compat.iad_replay_tolerance_seconds,
        };
        let wait = std::time::Duration::from_millis(config.limits.admission_wait_ms);
        let bodies = body::BodyBudget::new(
            config.limits.buffered_bytes,
            config.limits.buffered_bytes_per_key,
            config.limits.buffered_bytes_per_tenant,
            wait,
        );
        let facephi_in_flight = crate::admission::Budget::new(
            "facephi_in_flight",
            config.compat.facephi_max_in_flight.max(1),
            config.compat.facephi_max_in_flight.max(1),
            wait,
        );
        AppState {
            faces: jobs.faces(),
            bodies,
            facephi_in_flight,
            config: Arc::new(config),
            store,
            auth,
            admin_token,
            media,
            vision,
            jobs,
            meter,
            // In memory; `server::start` puts the shared one of a cluster in its place.
            rate_limiter: Default::default(),
            key_touches: Default::default(),
            metrics,
            ready: AtomicBool::new(false),
            iad: std::sync::RwLock::new(iad),
        }
    }

    /// The current FacePhi IAD settings.
    pub fn iad_settings(&self) -> routes::compat::facephi::IadSettings {
        *self.iad.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether start-up finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Answers routes that do not exist.
async fn route_not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        Code::RouteNotFound,
        format!("no route for {}", req.path()),
    ))
}

/// Answers a known path called with a method it does not have.
async fn method_not_allowed(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        Code::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// Runs blocking domain work off the actix threads, mapping its error into the envelope.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(Into::into)
}

/// A resource whose unknown methods answer 405 in the error envelope.
pub fn resource(path: &str) -> actix_web::Resource {
    openapi::record(path);
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// The application, for `HttpServer` and for in-process tests.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let max_body = state.config.http.max_body_bytes;
    // HSTS only where kycd itself serves TLS (behind a proxy, the proxy sends it).
    let hsts = if state.config.tls.enabled() {
        state.config.tls.hsts_max_age_secs
    } else {
        0
    };
    App::new()
        .app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(max_body)
                .error_handler(extract::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(extract::query_error))
        .app_data(web::PathConfig::default().error_handler(extract::path_error))
        .app_data(web::PayloadConfig::default().limit(max_body))
        .configure(scoped("", routes::ops::configure))
        .configure(scoped("", routes::compat::configure))
        .configure(crate::console::configure)
        .service(
            web::scope("/admin/v1")
                .configure(scoped("/admin/v1", routes::admin::configure))
                .configure(scoped("/admin/v1", routes::workflow::configure_admin))
                .configure(scoped("/admin/v1", routes::audit::configure_admin))
                .configure(scoped("/admin/v1", routes::billing::configure_admin)),
        )
        .configure(crate::console::configure_operator)
        .service(
            web::scope("/v1")
                .wrap(from_fn(signed::middleware))
                .configure(scoped("/v1", routes::ping::configure))
                .configure(scoped("/v1", routes::media::configure))
                .configure(scoped("/v1", routes::document::configure))
                .configure(scoped("/v1", routes::face::configure))
                .configure(scoped("/v1", routes::faces::configure))
                .configure(scoped("/v1", routes::liveness::configure))
                .configure(scoped("/v1", routes::workflow::configure))
                .configure(scoped("/v1", routes::webhooks::configure))
                .configure(scoped("/v1", routes::audit::configure_tenant))
                .configure(scoped("/v1", routes::billing::configure))
                .default_service(web::to(route_not_found)),
        )
        .default_service(web::to(route_not_found))
        .wrap(from_fn(request_id::middleware))
        .wrap(Condition::new(
            hsts > 0,
            DefaultHeaders::new().add((
                actix_web::http::header::STRICT_TRANSPORT_SECURITY,
                format!("max-age={hsts}"),
            )),
        ))
}

/// Binds the internal metrics listener (`/metrics` only, no token).
pub fn bind_metrics(
    state: web::Data<AppState>,
    listen: SocketAddr,
) -> std::io::Result<(Server, SocketAddr)> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(routes::ops::metrics_open))
            .default_service(web::to(route_not_found))
            .wrap(from_fn(request_id::middleware))
    })
    .workers(1)
    .bind(listen)?;
    let addr = server.addrs()[0];
    Ok((server.run(), addr))
}

/// Binds the listener and returns the server future and the bound address.
pub fn bind(
    state: web::Data<AppState>,
    listen: SocketAddr,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<(Server, SocketAddr)> {
    let workers = match state.config.http.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let shutdown = state.config.http.shutdown_timeout_secs;
    let factory_state = state.clone();
    let server = HttpServer::new(move || build_app(factory_state.clone()))
        .workers(workers)
        .shutdown_timeout(shutdown)
        .on_connect(tls::on_connect);
    let server = match tls {
        Some(config) => server.bind_rustls_0_23(listen, config)?,
        None => server.bind(listen)?,
    };
    let addr = server.addrs()[0];
    Ok((server.run(), addr))
}
