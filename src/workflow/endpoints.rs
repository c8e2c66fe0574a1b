//! A tenant's webhook endpoints: add (the secret returned once), list, delete, the delivery log
//! with every attempt, a test ping, redelivery. The one implementation behind `/v1/webhooks` and
//! the console's webhooks page; every change is audited with its actor.

use serde_json::{json, Value};

use super::egress;
use super::webhooks::{self as hooks, FAMILY};
use crate::audit::NewEntry;
use crate::error::{Code, ErrorCode};
use crate::store::webhooks::{AttemptRow, DeliveryRow, WebhookRow};
use crate::store::{self, Store, StoreError};

/// Events an endpoint gets when none are named.
pub const DEFAULT_EVENTS: [&str; 3] = ["kyc.completed", "kyc.failed", "kyc.reviewed"];
/// Deliveries the log shows per endpoint.
pub const LOG_ROWS: i64 = 100;

/// Why an endpoint change was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A value is not acceptable (`field` is its JSON path: `url`, `events[1]`).
    #[error("{reason}")]
    Invalid {
        /// Which.
        field: String,
        /// Why.
        reason: String,
    },
    /// Not found, in conflict, or the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorCode for EndpointError {
    fn code(&self) -> Code {
        match self {
            EndpointError::Invalid { .. } => Code::InvalidInput,
            EndpointError::Store(e) => e.code(),
        }
    }

    fn details(&self) -> Value {
        match self {
            EndpointError::Invalid { field, .. } => json!({ "field": field }),
            EndpointError::Store(e) => e.details(),
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EndpointError {
    EndpointError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A new endpoint and its signing secret (this is the only time the secret is seen).
#[derive(Debug)]
pub struct Created {
    /// The endpoint.
    pub endpoint: WebhookRow,
    /// `whsec_…`.
    pub secret: String,
}

/// Checks the events asked for (default: [`DEFAULT_EVENTS`]).
fn events_or_default(events: Option<Vec<String>>) -> Result<Vec<String>, EndpointError> {
    let events = events.unwrap_or_else(|| DEFAULT_EVENTS.iter().map(|e| (*e).to_owned()).collect());
    if events.is_empty() {
        return Err(invalid("events", "at least one event"));
    }
    for (i, e) in events.iter().enumerate() {
        if events[..i].contains(e) {
            return Err(invalid(
                format!("events[{i}]"),
                format!("`{e}` is listed twice"),
            ));
        }
        if !hooks::EVENTS.contains(&e.as_str()) {
            return Err(invalid(
                format!("events[{i}]"),
                format!("unknown event `{e}`; known: {}", hooks::EVENTS.join(", ")),
            ));
        }
    }
    Ok(events)
}

/// Adds an endpoint for `tenant_id` (at most [`hooks::MAX_ENDPOINTS`]). The URL is judged by
/// the egress policy now (its host resolved; `live` demands https) and again before every
/// delivery.
pub fn create(
    store: &Store,
    egress: &egress::Policy,
    tenant_id: &str,
    live: bool,
    url: String,
    events: Option<Vec<String>>,
    actor: &str,
) -> Result<Created, EndpointError> {
    let events = events_or_default(events)?;
    egress
        .check(&url, live)
        .map_err(|e| invalid("url", format!("url {e}")))?;
    let secret = format!("whsec_{}", hooks::random_hex(24));
    let row = WebhookRow {
        id: format!("whk_{}", hooks::random_hex(12)),
        tenant_id: tenant_id.to_owned(),
        url,
        events,
        created_at: store::now(),
    };
    let key = store.data_key(FAMILY)?;
    let sealed = key
        .seal(secret.as_bytes(), row.id.as_bytes())
        .map_err(StoreError::from)?;
    store.write(|tx| {
        if store::webhooks::list(tx, &row.tenant_id)?.len() >= hooks::MAX_ENDPOINTS {
            return Err(StoreError::Invalid {
                field: "url",
                reason: format!(
                    "a tenant may have at most {} webhook endpoints; delete one first",
                    hooks::MAX_ENDPOINTS
                ),
            });
        }
        store::webhooks::insert(tx, &row, &sealed)?;
        let entry = NewEntry::new(actor, "webhook.create")
            .tenant(&row.tenant_id)
            .target(&row.id)
            .details(json!({ "url": row.url, "events": row.events }));
        store::audit::append(tx, &entry, row.created_at)?;
        Ok(())
    })?;
    Ok(Created {
        endpoint: row,
        secret,
    })
}

/// The tenant's endpoints (no secrets).
pub fn list(store: &Store, tenant_id: &str) -> Result<Vec<WebhookRow>, StoreError> {
    store.read(|c| store::webhooks::list(c, tenant_id))
}

/// Deletes an endpoint; its pending deliveries are dropped.
pub fn delete(store: &Store, tenant_id: &str, id: &str, actor: &str) -> Result<(), StoreError> {
    store.write(|tx| {
        let now = store::now();
        if !store::webhooks::delete(tx, tenant_id, id, now)? {
            return Err(StoreError::NotFound("webhook"));
        }
        let entry = NewEntry::new(actor, "webhook.delete")
            .tenant(tenant_id)
            .target(id);
        store::audit::append(tx, &entry, now)?;
        Ok(())
    })
}

/// An endpoint's deliveries, newest first (at most [`LOG_ROWS`]), each with its attempts.
pub fn deliveries(
    store: &Store,
    tenant_id: &str,
    webhook_id: &str,
) -> Result<Vec<(DeliveryRow, Vec<AttemptRow>)>, StoreError> {
    store.read(|c| {
        if store::webhooks::get(c, tenant_id, webhook_id)?.is_none() {
            return Err(StoreError::NotFound("webhook"));
        }
        let rows = store::webhooks::deliveries(c, tenant_id, Some(webhook_id), LOG_ROWS)?;
        let mut out = Vec::with_capacity(rows.len());
        for d in rows {
            let attempts = store::webhooks::attempts(c, &d.id)?;
            out.push((d, attempts));
        }
        Ok(out)
    })
}

/// Queues a `webhook.test` event to this endpoint only; returns the delivery id. Audited.
pub fn test_ping(
    store: &Store,
    tenant_id: &str,
    webhook_id: &str,
    actor: &str,
) -> Result<String, StoreError> {
    let hook = store
        .read(|c| store::webhooks::get(c, tenant_id, webhook_id))?
        .ok_or(StoreError::NotFound("webhook"))?;
    let body = hooks::event_body("webhook.test", json!({ "webhook_id": hook.id }));
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let key = store.data_key(FAMILY)?;
    store.write(|tx| {
        let now = store::now();
        let target = hooks::Target {
            tenant_id: &hook.tenant_id,
            webhook_id: Some(hook.id.clone()),
            url: hook.url.clone(),
            key_id: None,
            subject_id: None,
        };
        let id = hooks::enqueue_one(&key, tx, target, "webhook.test", &bytes, now)?;
        let entry = NewEntry::new(actor, "webhook.test")
            .tenant(tenant_id)
            .target(&hook.id)
            .details(json!({ "delivery": id }));
        store::audit::append(tx, &entry, now)?;
        Ok(id)
    })
}

/// Queues a settled delivery again: `NotFound` when the tenant has no such delivery,
/// `Conflict` while it is pending or when its endpoint was deleted. Audited.
pub fn redeliver(
    store: &Store,
    tenant_id: &str,
    delivery_id: &str,
    actor: &str,
) -> Result<(), StoreError> {
    store.write(|tx| {
        let now = store::now();
        store::webhooks::redeliver(tx, tenant_id, delivery_id, now)?;
        let entry = NewEntry::new(actor, "webhook.redeliver")
            .tenant(tenant_id)
            .target(delivery_id);
        store::audit::append(tx, &entry, now)?;
        Ok(())
    })
}
