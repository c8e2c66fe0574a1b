//! The OpenAPI 3.1 description of every route, generated from the code: each route module
//! annotates its handlers (`#[utoipa::path]`) and exports a `Doc`; this module merges them, adds
//! the error envelope, the signing scheme and the operator token, and keeps the list of routes
//! actually registered so a test can prove none is missing.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use actix_web::web;
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi, RefOr, ResponseBuilder, SecurityRequirement, ServerBuilder,
};
use utoipa::{OpenApi as _, ToSchema};

use super::routes;

thread_local! {
    static PREFIX: Cell<&'static str> = const { Cell::new("") };
}

static ROUTES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Notes a registered path (called by `http::resource`).
pub(crate) fn record(path: &str) {
    let full = format!("{}{path}", PREFIX.with(Cell::get));
    ROUTES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(full);
}

/// Runs a `configure` function with the scope prefix its paths live under, so they are recorded
/// in full.
pub fn scoped(
    prefix: &'static str,
    configure: fn(&mut web::ServiceConfig),
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let previous = PREFIX.with(|p| p.replace(prefix));
        configure(cfg);
        PREFIX.with(|p| p.set(previous));
    }
}

/// Every path registered so far in this process (after an app was built).
pub fn registered_routes() -> Vec<String> {
    ROUTES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// The error envelope every failure is answered with.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_input", "message": "threshold must be between the tenant's 0.75 and 1", "details": {"field": "threshold"}, "trace_id": "req_3f9a0c1d2e4b5a6978a1b2c3"}}))]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The body of [`ErrorEnvelope`].
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code (`invalid_signature`, `quota_exceeded`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Machine-readable context (`field`, `limit`, `retry_after_seconds`, …).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Equals the `X-Request-Id` response header.
    pub trace_id: String,
}

const SIGNING: &str = "Every `/v1` request is signed. `X-API-SIGN` = lowercase hex \
HMAC-SHA256(secret, timestamp + \"\\n\" + METHOD + \"\\n\" + path_with_query + \"\\n\" + \
hex(sha256(body))), with an optional fifth line: the `X-API-NONCE` header's value. \
`X-API-TIMESTAMP` is Unix seconds within ±300 s of the server's clock; a signature is accepted \
once (replays within 10 minutes are refused).";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "kycd",
        description = "On-premises eKYC appliance: liveness, document OCR and validation, face match and scored verification workflows. Errors are always `{\"error\":{code,message,details,trace_id}}`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    tags(
        (name = "ops", description = "Probes, metrics and this description"),
        (name = "verification", description = "Liveness, document, face match (each billed)"),
        (name = "workflow", description = "Asynchronous verification jobs, workflow config and webhooks"),
        (name = "data", description = "Media, erasure, usage and audit of the calling tenant"),
        (name = "faces", description = "The tenant's enrolled faces: enrolment, 1:N search, deletion"),
        (name = "admin", description = "The operator's API (bearer token)"),
        (name = "compat", description = "Drop-in Facia and FacePhi wire contracts")
    )
)]
struct Base;

/// Adds the shared error responses and the security requirement to one operation.
fn decorate(path: &str, post: bool, op: &mut Operation) {
    let (codes, security): (&[&str], Option<SecurityRequirement>) = if path.starts_with("/v1/") {
        // A handler names what it needs as a role of the signature scheme (`X-API-SIGN`:
        // `["workflow:write"]`); the requirement is the three headers, with that role.
        let needed = permission_of(op).map(|p| vec![p]).unwrap_or_default();
        op.security = None;
        let req = SecurityRequirement::new("X-API-KEY", Vec::<String>::new())
            .add("X-API-TIMESTAMP", Vec::<String>::new())
            .add("X-API-SIGN", needed);
        (
            &[
                "400", "401", "403", "404", "413", "415", "422", "429", "503",
            ],
            Some(req),
        )
    } else if path.starts_with("/admin/v1/")
        || (path == "/api/v1/iad/config" && post)
        || path == "/metrics"
    {
        let req = SecurityRequirement::new("operator", Vec::<String>::new());
        (
            &["400", "401", "404", "409", "413", "415", "422", "503"],
            Some(req),
        )
    } else if path == "/process_face" || path.starts_with("/api/v1/iad/") {
        // Credential-less or body-credential endpoints: their own limits answer 401/413/429/503.
        (
            &["400", "401", "404", "413", "415", "422", "429", "503"],
            None,
        )
    } else {
        (&["400", "422"], None)
    };
    for code in codes.iter().chain(&["500"]) {
        op.responses
            .responses
            .entry((*code).to_owned())
            .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::from_response_name("Error")));
    }
    if let Some(req) = security {
        if op.security.is_none() {
            op.security = Some(vec![req]);
        }
    }
}

/// The permission or module scope an operation declares on `X-API-SIGN`, if any.
pub fn permission_of(op: &Operation) -> Option<String> {
    op.security.as_ref()?.iter().find_map(|req| {
        let v = serde_json::to_value(req).ok()?;
        v.get("X-API-SIGN")?.get(0)?.as_str().map(str::to_owned)
    })
}

fn build() -> OpenApi {
    let mut doc = Base::openapi();
    for part in [
        routes::ops::Doc::openapi(),
        routes::ping::Doc::openapi(),
        routes::liveness::Doc::openapi(),
        routes::document::Doc::openapi(),
        routes::face::Doc::openapi(),
        routes::faces::Doc::openapi(),
        routes::workflow::Doc::openapi(),
        routes::webhooks::Doc::openapi(),
        routes::media::Doc::openapi(),
        routes::billing::Doc::openapi(),
        routes::audit::Doc::openapi(),
        routes::admin::Doc::openapi(),
        routes::compat::facia::Doc::openapi(),
        routes::compat::facephi::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    doc.servers = Some(vec![ServerBuilder::new()
        .url("/")
        .description(Some("this server"))
        .build()]);
    let components = doc.components.get_or_insert_with(Default::default);
    let header = |name: &str, text: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, text)))
    };
    components.add_security_scheme("X-API-KEY", header("X-API-KEY", "The key id (`ak_…`)."));
    components.add_security_scheme(
        "X-API-TIMESTAMP",
        header("X-API-TIMESTAMP", "Unix seconds, within ±300 s."),
    );
    components.add_security_scheme("X-API-SIGN", header("X-API-SIGN", SIGNING));
    components.add_security_scheme(
        "operator",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The operator token (`kycd admin token`)."))
                .build(),
        ),
    );
    let example = json!({"error": {"code": "invalid_signature", "message": "signature does not match the request", "details": {}, "trace_id": "req_3f9a0c1d2e4b5a6978a1b2c3"}});
    components.responses.insert(
        "Error".into(),
        RefOr::T(
            ResponseBuilder::new()
                .description("An error, always in the envelope; `code` says which.")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorEnvelope",
                        ))))
                        .example(Some(example))
                        .build(),
                )
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        for (post, op) in [
            (false, &mut item.get),
            (false, &mut item.put),
            (true, &mut item.post),
            (false, &mut item.delete),
            (false, &mut item.patch),
        ] {
            if let Some(op) = op {
                decorate(path, post, op);
            }
        }
    }
    doc
}

/// The description, built once.
pub fn spec() -> &'static OpenApi {
    static SPEC: OnceLock<OpenApi> = OnceLock::new();
    SPEC.get_or_init(build)
}

/// The description as JSON text, built once.
pub fn spec_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| spec().to_pretty_json().unwrap_or_default())
}
