//! The outermost middleware: gives every request an id, answers it in `X-Request-Id`, logs one
//! line per request, and guarantees that every error leaves in the JSON envelope with that id as
//! `trace_id` — including errors raised by actix itself or by inner middleware.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;
use rand::RngCore;
use tracing::Instrument;

use crate::error::{ApiError, Code};

/// Header carrying the request id in both directions.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, or an empty string outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Accepts an id from a trusted reverse proxy when it is short and plain; otherwise makes one.
fn choose_id(incoming: Option<&HeaderValue>) -> String {
    if let Some(v) = incoming.and_then(|v| v.to_str().ok()) {
        if (8..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return v.to_owned();
        }
    }
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("req_{}", hex::encode(raw))
}

/// Converts any actix error into our envelope, keeping its status class.
fn to_api_error(err: &actix_web::Error) -> ApiError {
    if let Some(api) = err.as_error::<ApiError>() {
        return api.clone();
    }
    let status = err.as_response_error().status_code();
    let code = match status {
        StatusCode::NOT_FOUND => Code::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
        s if s.is_client_error() => Code::BadRequest,
        _ => return ApiError::internal(err),
    };
    ApiError::new(code, err.to_string())
}

/// The middleware function; see the module doc.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = choose_id(req.headers().get(HEADER));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let fut = async move {
        let mut res = match next.call(req).await {
            Ok(res) => match res.response().error().map(to_api_error) {
                // An extractor or actix itself produced a plain-text error: re-render it (the
                // console renders its own, as pages).
                Some(api)
                    if res.response().error().is_some_and(|e| {
                        e.as_error::<ApiError>().is_none()
                            && e.as_error::<crate::console::ConsoleError>().is_none()
                    }) =>
                {
                    res.into_response(api.error_response())
                }
                _ => res.map_into_boxed_body(),
            },
            // Inner layers answer their own errors; an Err here is actix's and is rendered by it.
            Err(err) => return Err(err),
        };
        // The route pattern, never the raw path: paths carry tenants' subject ids, which must
        // reach neither logs nor metric labels.
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        tracing::Span::current().record("route", route.as_str());
        if let Some(state) = res
            .request()
            .app_data::<actix_web::web::Data<crate::http::AppState>>()
        {
            // Any token is a valid HTTP method: only the standard ones become label values, so
            // nobody can mint metric series by inventing methods.
            let method = match res.request().method().as_str() {
                m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
                _ => "other",
            }
            .to_owned();
            let status = res.status().as_u16().to_string();
            let m = &state.metrics;
            m.http_requests
                .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
                .inc();
            m.http_duration
                .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
                .observe(started.elapsed().as_secs_f64());
        }
        if let Ok(v) = HeaderValue::from_str(&current()) {
            res.headers_mut().insert(HeaderName::from_static(HEADER), v);
        }
        let status = res.status().as_u16();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status == 503 {
            // Load shed (overloaded, not ready): expected under pressure, not a fault.
            tracing::warn!(status, ms, "request refused: busy");
        } else if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else {
            tracing::info!(status, ms, "request");
        }
        Ok(res)
    };
    REQUEST_ID.scope(id, fut.instrument(span)).await
}
