//! Extractors that authorise in the handler's signature, and the error handlers that turn
//! actix's payload, JSON, query and path errors into coded errors.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde_json::json;

use super::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, Code};

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions().get::<Principal>().cloned().ok_or_else(|| {
                ApiError::new(Code::MissingAuth, "this route needs a signed request")
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
    serde_json::from_slice(body).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => Code::InvalidInput,
            _ => Code::InvalidJson,
        };
        ApiError::new(code, e.to_string())
            .with_details(json!({ "line": e.line(), "column": e.column() }))
    })
}

/// Query string errors → 400 `invalid_query`.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::InvalidQuery, err.to_string()).into()
}

/// Path parameter errors → 400 `invalid_path`.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::InvalidPath, err.to_string()).into()
}
