//! Middleware for `/v1`: buffers the body (within the size limit), verifies the HMAC signature
//! over it, counts the request against the key's rate limit, puts the [`Principal`] into the
//! request and hands the body on unchanged. Every authenticated response carries
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use futures_util::StreamExt;

use super::AppState;
use crate::auth::{signing, AuthError, SignedParts};
use crate::error::{ApiError, Code};
use crate::store;
use crate::tenancy::ratelimit::Decision;
use crate::tenancy::subscription;

/// Longest wait for a whole request body once the headers have been judged.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, AuthError> {
    let value = headers.get(name).ok_or(AuthError::MissingAuth(name))?;
    value.to_str().map_err(|_| AuthError::InvalidHeader {
        header: name,
        reason: "not visible ASCII",
    })
}

fn optional_header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(_) => header(headers, name).map(Some),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("request body exceeds {limit} bytes"),
    )
    .with_details(serde_json::json!({ "limit_bytes": limit }))
}

/// Reads the whole body, refusing it as soon as it passes `limit`.
async fn read_body(
    payload: &mut Payload,
    limit: usize,
    declared: Option<usize>,
) -> Result<web::Bytes, ApiError> {
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    // Reserve at most 64 KiB up front: a declared length is only a claim until bytes arrive.
    let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit).min(64 * 1024));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(Code::BadRequest, format!("cannot read body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The middleware function; see the module doc. Refusals are answered here, inside the
/// request's scope, so they carry its trace id.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let outcome = match authenticate(&mut req).await {
        Ok(decision) if !decision.allowed => Err((rate_limited(&decision), Some(decision))),
        Ok(decision) => Ok(decision),
        Err(err) => Err((err, None)),
    };
    match outcome {
        Ok(decision) => {
            let mut res = next.call(req).await?.map_into_left_body();
            rate_headers(res.headers_mut(), &decision);
            Ok(res)
        }
        Err((err, decision)) => {
            let state = req.app_data::<web::Data<AppState>>();
            // Refusals of who is calling; not body, size or storage errors.
            let auth_refusal = matches!(err.code.status().as_u16(), 401 | 403);
            if let Some(state) = state.filter(|_| decision.is_none() && auth_refusal) {
                state
                    .metrics
                    .auth_failures
                    .with_label_values(&[err.code.as_str()])
                    .inc();
                // The key is named only when it was found: the signature failed after lookup.
                let known = matches!(
                    err.code,
                    Code::InvalidSignature
                        | Code::KeyRevoked
                        | Code::TenantSuspended
                        | Code::ReplayedRequest
                );
                let key = known
                    .then(|| req.headers().get("X-API-KEY").and_then(|v| v.to_str().ok()))
                    .flatten();
                state.auth.failures.add(err.code.as_str(), key);
            }
            let mut res = req.error_response(err).map_into_right_body();
            if let Some(d) = decision {
                rate_headers(res.headers_mut(), &d);
            }
            Ok(res)
        }
    }
}

/// The 429 for a request over its key's rate limit.
pub fn rate_limited(d: &Decision) -> ApiError {
    let retry = d.retry_after_secs.unwrap_or(1);
    ApiError::new(
        Code::RateLimited,
        format!(
            "rate limit of {} requests reached; retry in {retry} s",
            d.limit
        ),
    )
    .with_details(serde_json::json!({ "limit": d.limit, "retry_after_seconds": retry }))
}

fn rate_headers(headers: &mut HeaderMap, d: &Decision) {
    use actix_web::http::header::{HeaderName, HeaderValue};
    for (name, value) in [
        ("x-ratelimit-limit", d.limit as u64),
        ("x-ratelimit-remaining", d.remaining as u64),
        ("x-ratelimit-reset", d.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// Writes a key's last-use time, at most once a minute per key, off the request's path.
fn touch_key(state: &web::Data<AppState>, key_id: &str, now: i64) {
    {
        let mut touched = state.key_touches.lock().unwrap_or_else(|p| p.into_inner());
        match touched.get(key_id) {
            Some(at) if now - at < 60 => return,
            _ => touched.insert(key_id.to_owned(), now),
        };
    }
    let (store, key_id) = (state.store.clone(), key_id.to_owned());
    actix_web::rt::spawn(async move {
        let written = web::block(move || store.write(|tx| store::keys::touch(tx, &key_id, now)));
        if let Ok(Err(e)) = written.await {
            tracing::warn!(error = %e, "recording a key's last use failed");
        }
    });
}

/// Verifies the request, counts it against its key's rate limit and stores its principal;
/// leaves the body readable for the handler.
async fn authenticate(req: &mut ServiceRequest) -> Result<Decision, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AppState missing"))?;
    let headers = req.headers();
    let key_id = header(headers, "X-API-KEY")
        .map_err(ApiError::from)?
        .to_owned();
    let timestamp = header(headers, "X-API-TIMESTAMP")
        .map_err(ApiError::from)?
        .to_owned();
    let signature = header(headers, "X-API-SIGN")
        .map_err(ApiError::from)?
        .to_owned();
    let nonce = optional_header(headers, "X-API-NONCE")
        .map_err(ApiError::from)?
        .map(str::to_owned);
    let declared = headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let method = req.method().as_str().to_owned();
    let path_with_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());

    // Judge what needs no body first: nobody gets megabytes buffered on a bad clock or an
    // unknown key.
    let auth = state.auth.clone();
    let (k, t, n) = (key_id.clone(), timestamp.clone(), nonce.clone());
    web::block(move || auth.precheck(&k, &t, n.as_deref(), store::now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;

    let mut payload = req.take_payload();
    let limit = state.config.http.max_body_bytes;
    let body = tokio::time::timeout(BODY_TIMEOUT, read_body(&mut payload, limit, declared))
        .await
        .map_err(|_| {
            ApiError::new(Code::BadRequest, "request body not received in time")
                .with_details(serde_json::json!({ "timeout_seconds": BODY_TIMEOUT.as_secs() }))
        })??;
    let digest = signing::body_digest(&body);
    // The key read again now the body is here: a revocation or rotation while a slow body
    // arrived takes effect. The tenant's plan comes in the same hop.
    let (auth, db, k) = (state.auth.clone(), state.store.clone(), key_id.clone());
    let (row, plan) = web::block(move || -> Result<_, ApiError> {
        let row = auth.key_row(&k)?;
        let plan = db.read(|c| subscription::effective_plan(c, &row.tenant_id))?;
        Ok((row, plan))
    })
    .await
    .map_err(ApiError::internal)??;
    // Pure CPU from here (HMAC over a cached key, the replay set): no blocking pool hop.
    let principal = state
        .auth
        .verify(
            &SignedParts {
                key_id: &key_id,
                timestamp: &timestamp,
                signature: &signature,
                nonce: nonce.as_deref(),
                method: &method,
                path_with_query: &path_with_query,
                body_digest: &digest,
            },
            row,
            store::now(),
        )
        .map_err(ApiError::from)?;

    tracing::Span::current().record("tenant_id", principal.tenant_id.as_str());
    let pattern = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    let (bucket, budget) = plan.rate_limit.budget_for(&method, &pattern);
    let decision = state.rate_limiter.check(&principal.key_id, &bucket, budget);
    touch_key(&state, &principal.key_id, store::now());
    req.extensions_mut().insert(principal);
    req.set_payload(Payload::from(body));
    Ok(decision)
}
