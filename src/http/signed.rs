//! Middleware for `/v1`: buffers the body (within the size limit), verifies the HMAC signature
//! over it, counts the request against the key's rate limit, puts the [`Principal`] into the
//! request and hands the body on unchanged. Every authenticated response carries
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::{body, AppState};
use crate::auth::{signing, AuthError, SignedParts};
use crate::error::{ApiError, Code};
use crate::store;
use crate::tenancy::ratelimit::Decision;
use crate::tenancy::subscription;

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
    let declared = body::declared_length(headers);
    let method = req.method().as_str().to_owned();
    let path_with_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());

    // Judge what needs no body first: nobody gets megabytes buffered on a bad clock or an
    // unknown key.
    let auth = state.auth.clone();
    let (k, t, n) = (key_id.clone(), timestamp.clone(), nonce.clone());
    let claimed = web::block(move || auth.precheck(&k, &t, n.as_deref(), store::now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;

    // The body's bytes are admitted per claimed key and in all before they are buffered, and
    // stay counted until the request ends (the lease rides in the request's extensions).
    let limit = state.config.http.max_body_bytes;
    let mut lease =
        body::admit(&state.bodies, &key_id, &claimed.tenant_id, declared, limit).await?;
    let mut payload = req.take_payload();
    let body = body::read(&mut payload, limit, declared, &mut lease).await?;
    req.extensions_mut().insert(lease);
    let digest = signing::body_digest(&body);
    // The key read again now the body is here (a revocation or rotation while a slow body
    // arrived takes effect), the signature, the clock once more and the replay journal, with
    // the tenant's plan: one hop to the blocking pool.
    let (auth, db) = (state.auth.clone(), state.store.clone());
    let (k, m, p, t, sig, n) = (
        key_id.clone(),
        method.clone(),
        path_with_query.clone(),
        timestamp,
        signature,
        nonce,
    );
    let (principal, plan) = web::block(move || -> Result<_, ApiError> {
        let row = auth.key_row(&k)?;
        let tenant = row.tenant_id.clone();
        let parts = SignedParts {
            key_id: &k,
            timestamp: &t,
            signature: &sig,
            nonce: n.as_deref(),
            method: &m,
            path_with_query: &p,
            body_digest: &digest,
        };
        let principal = auth.verify(&parts, row, store::now())?;
        let plan = db.read(|c| subscription::effective_plan(c, &tenant))?;
        Ok((principal, plan))
    })
    .await
    .map_err(ApiError::internal)??;

    tracing::Span::current().record("tenant_id", principal.tenant_id.as_str());
    let pattern = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    let (bucket, budget) = plan.rate_limit.budget_for(&method, &pattern);
    let decision = state.rate_limiter.check(&principal.key_id, &bucket, budget);
    touch_key(&state, &principal.key_id, store::now());
    req.extensions_mut().insert(principal);
    req.set_payload(Payload::from(body));
    Ok(decision)
}
