//! Reading request bodies under the body budget: each body's bytes are admitted (per key or
//! endpoint, and in all) before they are buffered, and the lease is held until the request
//! ends, so what a flood of uploads can hold is bounded whether or not they authenticate.

use actix_web::http::header::{HeaderMap, CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::web;
use futures_util::StreamExt;

use std::sync::Arc;

use crate::admission::{Budget, Lease};
use crate::error::{ApiError, Code};

/// The body budget: every body's bytes are counted per key (or compatibility endpoint) and per
/// tenant, each with its own limit, under one total.
pub struct BodyBudget {
    /// Per key.
    pub by_key: Arc<Budget>,
    /// Per tenant.
    pub by_tenant: Arc<Budget>,
}

impl BodyBudget {
    /// Budgets of `total` bytes, at most `per_key` for a key and `per_tenant` for a tenant.
    pub fn new(total: u64, per_key: u64, per_tenant: u64, wait: std::time::Duration) -> Self {
        BodyBudget {
            by_key: Budget::new("request_bodies", total, per_key, wait),
            by_tenant: Budget::new("request_bodies_by_tenant", total, per_tenant, wait),
        }
    }
}

impl BodyBudget {
    async fn admit(&self, key: &str, tenant: &str, bytes: u64) -> Result<BodyLease, ApiError> {
        let key = self.by_key.acquire_async(key, bytes).await?;
        let tenant = self.by_tenant.acquire_async(tenant, bytes).await?;
        Ok(BodyLease { key, tenant })
    }
}

/// A request body's leases, kept in the request's extensions until it ends.
pub struct BodyLease {
    key: Lease,
    tenant: Lease,
}

impl BodyLease {
    fn bytes(&self) -> u64 {
        self.key.bytes()
    }

    async fn grow(&mut self, more: u64) -> Result<(), ApiError> {
        self.key.grow_async(more).await?;
        self.tenant.grow_async(more).await?;
        Ok(())
    }
}

/// Longest wait for a whole request body once the headers have been judged.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest pause between two pieces of a body.
pub const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

fn idle() -> ApiError {
    ApiError::new(Code::BadRequest, "request body stalled")
        .with_details(serde_json::json!({ "idle_timeout_seconds": BODY_IDLE.as_secs() }))
}

/// Bytes admitted at a time as a body arrives.
const STEP: u64 = 1 << 20;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("request body exceeds {limit} bytes"),
    )
    .with_details(serde_json::json!({ "limit_bytes": limit }))
}

/// The declared `Content-Length`; `Some(0)` for a request that declares no body at all
/// (neither a length nor a transfer coding: HTTP/1.1 says it has none); `None` for a body of
/// unknown length.
pub fn declared_length(headers: &HeaderMap) -> Option<usize> {
    match headers.get(CONTENT_LENGTH) {
        Some(v) => v.to_str().ok().and_then(|v| v.parse().ok()),
        None if headers.contains_key(TRANSFER_ENCODING) => None,
        None => Some(0),
    }
}

/// Admits the first step of a body of `declared` bytes (refusing one declared beyond `limit`)
/// for `key` of `tenant`; [`read`] admits the rest as it arrives.
pub async fn admit(
    budget: &BodyBudget,
    key: &str,
    tenant: &str,
    declared: Option<usize>,
    limit: usize,
) -> Result<BodyLease, ApiError> {
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    // Bytes are admitted as they arrive, a step at a time: a declared length is only a claim,
    // and an idle connection must not hold what it has not sent.
    let first = declared
        .map_or(STEP, |n| n as u64)
        .min(STEP)
        .min(limit as u64);
    budget.admit(key, tenant, first).await
}

/// Admits a whole body up front — its declared length, or `limit` when unknown — for readers
/// that do not grow a lease as they go (multipart forms). Prefer [`admit`] + [`read`].
pub async fn admit_whole(
    budget: &BodyBudget,
    key: &str,
    tenant: &str,
    declared: Option<usize>,
    limit: usize,
) -> Result<BodyLease, ApiError> {
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    budget
        .admit(key, tenant, declared.unwrap_or(limit) as u64)
        .await
}

/// Reads the whole body within `limit` bytes and `BODY_TIMEOUT`, growing `lease` when more
/// arrives than it holds.
pub async fn read(
    payload: &mut (impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>
              + Unpin),
    limit: usize,
    declared: Option<usize>,
    lease: &mut BodyLease,
) -> Result<web::Bytes, ApiError> {
    let reading = async {
        // Reserve at most 64 KiB up front: a declared length is only a claim until bytes arrive.
        let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit).min(64 * 1024));
        // A client that stops sending is dropped after BODY_IDLE, whatever the total timeout.
        while let Some(chunk) = tokio::time::timeout(BODY_IDLE, payload.next())
            .await
            .map_err(|_| idle())?
        {
            let chunk = chunk
                .map_err(|e| ApiError::new(Code::BadRequest, format!("cannot read body: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            let needed = (buf.len() + chunk.len()) as u64;
            if needed > lease.bytes() {
                let more = (needed - lease.bytes())
                    .max(STEP)
                    .min(limit as u64 - lease.bytes());
                lease.grow(more).await?;
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(BODY_TIMEOUT, reading)
        .await
        .map_err(|_| {
            ApiError::new(Code::BadRequest, "request body not received in time")
                .with_details(serde_json::json!({ "timeout_seconds": BODY_TIMEOUT.as_secs() }))
        })?
}
