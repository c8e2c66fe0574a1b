//! Extractors that authorise in the handler's signature, and the error handlers that turn
//! actix's payload, JSON, query and path errors into coded errors.

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde_json::json;

use super::AppState;
use crate::auth::permissions::Permission;
use crate::auth::Principal;
use crate::error::{ApiError, Code};
use crate::tenancy::plans::Module;

/// What a `/v1` route needs of its caller, stated by the marker type of [`Authorized`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// Only a valid signature (`GET /v1/ping`).
    Signed,
    /// The module scope of a billable route (403 `forbidden_module`).
    Module(Module),
    /// The modules the tenant's workflow runs; judged by the handler against the stored
    /// workflow (`POST /v1/kyc/verify`).
    WorkflowModules,
    /// A permission (403 `forbidden_scope`).
    Permission(Permission),
}

/// A marker naming what a route needs; see [`need`].
pub trait Need {
    /// The requirement.
    const REQUIRED: Required;
}

/// The markers, one per requirement.
pub mod need {
    use super::{Need, Required};
    use crate::auth::permissions::Permission;
    use crate::tenancy::plans::Module;

    macro_rules! needs {
        ($($(#[$doc:meta])* $name:ident => $req:expr;)*) => {$(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Need for $name {
                const REQUIRED: Required = $req;
            }
        )*};
    }

    needs! {
        /// A valid signature only.
        Signed => Required::Signed;
        /// The `liveness` module.
        Liveness => Required::Module(Module::Liveness);
        /// The `ocr` module.
        Ocr => Required::Module(Module::Ocr);
        /// The `validation` module.
        Validation => Required::Module(Module::Validation);
        /// The `face_match` module.
        FaceMatch => Required::Module(Module::FaceMatch);
        /// The modules of the tenant's workflow.
        Verify => Required::WorkflowModules;
        /// `results:read` (own jobs; `results:read_all` widens it to the tenant's).
        ResultsRead => Required::Permission(Permission::ResultsRead);
        /// `media:read`.
        MediaRead => Required::Permission(Permission::MediaRead);
        /// `media:write`.
        MediaWrite => Required::Permission(Permission::MediaWrite);
        /// `subjects:erase`.
        SubjectsErase => Required::Permission(Permission::SubjectsErase);
        /// `workflow:read`.
        WorkflowRead => Required::Permission(Permission::WorkflowRead);
        /// `workflow:write`.
        WorkflowWrite => Required::Permission(Permission::WorkflowWrite);
        /// `webhooks:read`.
        WebhooksRead => Required::Permission(Permission::WebhooksRead);
        /// `webhooks:write`.
        WebhooksWrite => Required::Permission(Permission::WebhooksWrite);
        /// `audit:read`.
        AuditRead => Required::Permission(Permission::AuditRead);
        /// `usage:read`.
        UsageRead => Required::Permission(Permission::UsageRead);
        /// `faces:write`.
        FacesWrite => Required::Permission(Permission::FacesWrite);
        /// `faces:search`.
        FacesSearch => Required::Permission(Permission::FacesSearch);
    }
}

/// The signed caller of a `/v1` route, proven to hold what `N` names. There is no other way
/// for a handler to get a [`Principal`], so a route without this extractor cannot see who
/// called it.
#[derive(Debug)]
pub struct Authorized<N: Need> {
    /// The caller.
    pub principal: Principal,
    need: PhantomData<N>,
}

impl<N: Need> std::ops::Deref for Authorized<N> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<N: Need> Authorized<N> {
    /// The caller, by value.
    pub fn into_inner(self) -> Principal {
        self.principal
    }
}

/// Whether `principal` holds what `required` names.
pub fn authorize(principal: &Principal, required: Required) -> Result<(), ApiError> {
    match required {
        Required::Signed | Required::WorkflowModules => Ok(()),
        Required::Module(m) => Ok(principal.require(&[m])?),
        Required::Permission(p) => Ok(principal.permit(p)?),
    }
}

impl<N: Need> FromRequest for Authorized<N> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = req.extensions().get::<Principal>().cloned();
        ready(
            principal
                .ok_or_else(|| {
                    ApiError::new(Code::MissingAuth, "this route needs a signed request")
                })
                .and_then(|p| {
                    authorize(&p, N::REQUIRED)?;
                    Ok(Authorized {
                        principal: p,
                        need: PhantomData,
                    })
                }),
        )
    }
}

/// The platform operator, proven by `Authorization: Bearer <admin token>`.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let check = || {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("AppState missing"))?;
            let value = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .ok_or_else(|| {
                    ApiError::new(
                        Code::MissingAuth,
                        "missing Authorization: Bearer <admin token>",
                    )
                    .with_details(json!({ "header": "Authorization" }))
                })?;
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or_default();
            if !token.is_empty() && state.admin_token.matches(token) {
                if state.config.tls.admin_client_ca.is_some()
                    && req
                        .conn_data::<crate::http::tls::ClientCertificate>()
                        .is_none()
                {
                    state
                        .auth
                        .failures
                        .add(Code::ClientCertificateRequired.as_str(), None);
                    return Err(ApiError::new(
                        Code::ClientCertificateRequired,
                        "the admin API needs a client certificate issued by tls.admin_client_ca",
                    ));
                }
                Ok(Operator)
            } else {
                state
                    .auth
                    .failures
                    .add(Code::InvalidAdminToken.as_str(), None);
                Err(ApiError::new(
                    Code::InvalidAdminToken,
                    "invalid admin token",
                ))
            }
        };
        ready(check())
    }
}

/// JSON body errors: syntax → 400 with the position, wrong shape → 422, wrong type → 415.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            Code::PayloadTooLarge,
            format!("JSON body exceeds {limit} bytes"),
        )
        .with_details(json!({ "limit_bytes": limit })),
        JsonPayloadError::Deserialize(e) => {
            let code = match e.classify() {
                serde_json::error::Category::Data => Code::InvalidInput,
                _ => Code::InvalidJson,
            };
            ApiError::new(code, e.to_string())
                .with_details(json!({ "line": e.line(), "column": e.column() }))
        }
        other => ApiError::new(Code::InvalidJson, other.to_string()),
    };
    api.into()
}

/// A JSON body that may be absent: empty means `T::default()`; anything else must parse, with
/// the same codes as a required body (400 `invalid_json`, 422 `invalid_input`).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(body_error)
}

/// A required JSON body, read by hand (under a budget): the same codes as the `Json` extractor.
pub fn required_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(Code::InvalidJson, "a JSON body is required"));
    }
    serde_json::from_slice(body).map_err(body_error)
}

/// A JSON body that did not parse: syntax → 400 `invalid_json`, shape → 422 `invalid_input`, with
/// the position.
fn body_error(e: serde_json::Error) -> ApiError {
    let code = match e.classify() {
        serde_json::error::Category::Data => Code::InvalidInput,
        _ => Code::InvalidJson,
    };
    ApiError::new(code, e.to_string())
        .with_details(json!({ "line": e.line(), "column": e.column() }))
}

/// Query string errors → 400 `invalid_query`.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::InvalidQuery, err.to_string()).into()
}

/// Path parameter errors → 400 `invalid_path`.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::InvalidPath, err.to_string()).into()
}
