//! The one place where machine error codes meet HTTP statuses.
//!
//! Every module has its own error type that knows its [`Code`]; this module owns the only table
//! from code to status and the only conversion into the JSON error envelope
//! `{"error":{"code","message","details","trace_id"}}`. Codes are part of the API contract: they are
//! snake_case, stable, and never renamed. Internal causes are logged, never echoed to clients.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;

use crate::http::request_id;

macro_rules! error_codes {
    ($($variant:ident => $status:ident, $name:literal;)*) => {
        /// A stable machine-readable error code, with the HTTP status it maps to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Code {
            /// The snake_case string clients switch on.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The HTTP status this code is answered with.
            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status,)* }
            }

            /// Every code, for documentation and tests.
            pub fn all() -> &'static [Code] {
                &[$(Code::$variant,)*]
            }
        }
    };
}

error_codes! {
    // 400: the request itself is malformed.
    BadRequest => BAD_REQUEST, "bad_request";
    InvalidJson => BAD_REQUEST, "invalid_json";
    InvalidQuery => BAD_REQUEST, "invalid_query";
    InvalidPath => BAD_REQUEST, "invalid_path";
    // 401/403: who is calling and whether they may.
    MissingAuth => UNAUTHORIZED, "missing_auth";
    InvalidAuthHeader => UNAUTHORIZED, "invalid_auth_header";
    UnknownKey => UNAUTHORIZED, "unknown_key";
    InvalidSignature => UNAUTHORIZED, "invalid_signature";
    TimestampOutOfRange => UNAUTHORIZED, "timestamp_out_of_range";
    ReplayedRequest => UNAUTHORIZED, "replayed_request";
    KeyRevoked => UNAUTHORIZED, "key_revoked";
    InvalidAdminToken => UNAUTHORIZED, "invalid_admin_token";
    ClientCertificateRequired => UNAUTHORIZED, "client_certificate_required";
    TenantSuspended => FORBIDDEN, "tenant_suspended";
    ForbiddenModule => FORBIDDEN, "forbidden_module";
    ForbiddenScope => FORBIDDEN, "forbidden_scope";
    // 404/405/409.
    NotFound => NOT_FOUND, "not_found";
    RouteNotFound => NOT_FOUND, "route_not_found";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "method_not_allowed";
    Conflict => CONFLICT, "conflict";
    // 413/415/422: the payload.
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload_too_large";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type";
    InvalidInput => UNPROCESSABLE_ENTITY, "invalid_input";
    InvalidImage => UNPROCESSABLE_ENTITY, "invalid_image";
    ImageTooLarge => UNPROCESSABLE_ENTITY, "image_too_large";
    MalwareDetected => UNPROCESSABLE_ENTITY, "malware_detected";
    MrzUnparseable => UNPROCESSABLE_ENTITY, "mrz_unparseable";
    NoDocumentFound => UNPROCESSABLE_ENTITY, "no_document_found";
    NoFace => UNPROCESSABLE_ENTITY, "no_face";
    MultipleFaces => UNPROCESSABLE_ENTITY, "multiple_faces";
    FaceTooSmall => UNPROCESSABLE_ENTITY, "face_too_small";
    FaceCropped => UNPROCESSABLE_ENTITY, "face_cropped";
    AngleTooLarge => UNPROCESSABLE_ENTITY, "angle_too_large";
    FaceQualityTooLow => UNPROCESSABLE_ENTITY, "face_quality_too_low";
    // 429: over a budget.
    QuotaExceeded => TOO_MANY_REQUESTS, "quota_exceeded";
    RateLimited => TOO_MANY_REQUESTS, "rate_limited";
    // FacePhi-compatible capture older than the freshness window (FacePhi answers 400).
    ReplayAttackDetected => BAD_REQUEST, "replay_attack_detected";
    // 503/500: our side.
    NotReady => SERVICE_UNAVAILABLE, "not_ready";
    AntivirusUnavailable => SERVICE_UNAVAILABLE, "antivirus_unavailable";
    Overloaded => SERVICE_UNAVAILABLE, "overloaded";
    Internal => INTERNAL_SERVER_ERROR, "internal";
}

/// An error on its way to a client: code, human message and structured details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The stable code; decides the status.
    pub code: Code,
    /// A sentence for humans; never contains secrets or personal data.
    pub message: String,
    /// Structured context a client can act on (field names, limits, positions).
    pub details: Value,
}

impl ApiError {
    /// An error with empty details.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Value::Object(Default::default()),
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Adds one detail, keeping the others (`retry_after_seconds`, say).
    pub fn with_detail(mut self, key: &str, value: Value) -> Self {
        if !self.details.is_object() {
            self.details = Value::Object(Default::default());
        }
        self.details[key] = value;
        self
    }

    /// A bug or an environment failure: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            Code::Internal,
            "internal error; see the server log for this trace_id",
        )
    }

    /// Renders the envelope with the current request's trace id.
    pub fn body(&self) -> Value {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            details: &'a Value,
            trace_id: String,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        serde_json::to_value(Envelope {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
                details: &self.details,
                trace_id: request_id::current(),
            },
        })
        .unwrap_or(Value::Null)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(
            self.code,
            Code::NotReady | Code::AntivirusUnavailable | Code::Overloaded
        ) {
            resp.insert_header((header::RETRY_AFTER, "1"));
        }
        if let Some(secs) = self.details["retry_after_seconds"].as_u64() {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        resp.json(self.body())
    }
}

/// Module errors that know their code convert into [`ApiError`] through this trait.
pub trait ErrorCode: std::error::Error {
    /// The stable code of this error.
    fn code(&self) -> Code;
    /// Structured details; empty by default.
    fn details(&self) -> Value {
        Value::Object(Default::default())
    }
}

impl<E: ErrorCode> From<E> for ApiError {
    fn from(err: E) -> Self {
        if err.code() == Code::Internal {
            return ApiError::internal(&err);
        }
        ApiError::new(err.code(), err.to_string()).with_details(err.details())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::all() {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn only_server_faults_are_5xx() {
        for code in Code::all() {
            let server_side = matches!(
                code,
                Code::Internal | Code::NotReady | Code::AntivirusUnavailable | Code::Overloaded
            );
            assert_eq!(code.status().is_server_error(), server_side, "{code:?}");
        }
    }
}
