//! Tenant webhook endpoints and the delivery log. A delivery is written in the same transaction
//! as the event it announces (a job's result), so an event is never lost and never doubled;
//! workers then take due deliveries and record every attempt.

use super::{params, Conn, Optional, Result, Row, Tx};

/// A webhook endpoint (its secret stays sealed in the table).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookRow {
    /// `whk_…`.
    pub id: String,
    /// Owner.
    #[serde(skip)]
    pub tenant_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

fn webhook(r: &Row<'_>) -> Result<WebhookRow> {
    let events: String = r.get(3)?;
    Ok(WebhookRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        url: r.get(2)?,
        events: events.split(',').map(str::to_owned).collect(),
        created_at: r.get(4)?,
    })
}

/// Adds an endpoint with its sealed secret.
pub fn insert(tx: &Tx<'_>, w: &WebhookRow, sealed_secret: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO webhooks (id, tenant_id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![w.id, w.tenant_id, w.url, w.events.join(","), sealed_secret, w.created_at],
    )?;
    Ok(())
}

/// A tenant's live endpoints.
pub fn list(conn: &Conn<'_>, tenant_id: &str) -> Result<Vec<WebhookRow>> {
    let rows = conn.query_map(
        "SELECT id, tenant_id, url, events, created_at FROM webhooks \
         WHERE tenant_id = ?1 AND deleted_at IS NULL ORDER BY created_at, id",
        params![tenant_id],
        webhook,
    )?;
    Ok(rows)
}

/// A tenant's live endpoint.
pub fn get(conn: &Conn<'_>, tenant_id: &str, id: &str) -> Result<Option<WebhookRow>> {
    conn.query_row(
        "SELECT id, tenant_id, url, events, created_at FROM webhooks \
             WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        params![tenant_id, id],
        webhook,
    )
    .optional()
}

/// Retires an endpoint (kept for the delivery log); pending deliveries to it are dropped.
pub fn delete(tx: &Tx<'_>, tenant_id: &str, id: &str, now: i64) -> Result<bool> {
    let n = tx.execute(
        "UPDATE webhooks SET deleted_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        params![tenant_id, id, now],
    )?;
    tx.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted' \
         WHERE webhook_id = ?1 AND status = 'pending'",
        params![id],
    )?;
    Ok(n == 1)
}

/// The sealed secret of an endpoint.
pub fn sealed_secret(conn: &Conn<'_>, id: &str) -> Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT secret FROM webhooks WHERE id = ?1 AND deleted_at IS NULL",
        params![id],
        |r| r.get(0),
    )
    .optional()
}

/// Sets (or replaces) a tenant's sealed callback secret.
pub fn set_callback_secret(tx: &Tx<'_>, tenant_id: &str, sealed: &[u8], now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO callback_secrets (tenant_id, secret, created_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(tenant_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
        params![tenant_id, sealed, now],
    )?;
    Ok(())
}

/// A tenant's sealed callback secret, if it made one.
pub fn callback_secret(conn: &Conn<'_>, tenant_id: &str) -> Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT secret FROM callback_secrets WHERE tenant_id = ?1",
        params![tenant_id],
        |r| r.get(0),
    )
    .optional()
}

/// A delivery of one event to one URL.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRow {
    /// `dlv_…`.
    pub id: String,
    /// The endpoint (none for a job's `callback_url`).
    pub webhook_id: Option<String>,
    /// Owner.
    #[serde(skip)]
    pub tenant_id: String,
    /// Target.
    pub url: String,
    /// For `callback_url` deliveries: the key whose secret signs them.
    #[serde(skip)]
    pub key_id: Option<String>,
    /// Whose data the payload holds (sealed with that subject's key); `None` = the webhooks key.
    #[serde(skip)]
    pub subject_id: Option<String>,
    /// `kyc.completed`, `kyc.failed`, `webhook.test`.
    pub event: String,
    /// Sealed JSON body.
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds).
    pub next_attempt_at: i64,
    /// HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When a 2xx came back.
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, tenant_id, url, key_id, event, payload, status, \
    attempts, next_attempt_at, last_status, last_error, created_at, delivered_at, subject_id";

fn delivery(r: &Row<'_>) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        tenant_id: r.get(2)?,
        url: r.get(3)?,
        key_id: r.get(4)?,
        event: r.get(5)?,
        payload: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        last_status: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        delivered_at: r.get(13)?,
        subject_id: r.get(14)?,
    })
}

/// Queues a delivery.
pub fn enqueue(tx: &Tx<'_>, d: &DeliveryRow) -> Result<()> {
    tx.execute(
        &format!("INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, NULL, NULL, ?9, NULL, ?10)"),
        params![d.id, d.webhook_id, d.tenant_id, d.url, d.key_id, d.event, d.payload, d.next_attempt_at, d.created_at, d.subject_id],
    )?;
    Ok(())
}

/// Takes up to `limit` due deliveries, at most `per_tenant` of one tenant and taking the
/// tenants in turn (each one's oldest first, so one tenant's backlog cannot hold up the
/// others), and pushes their next attempt `lease` seconds away, so a crash mid-attempt
/// retries later rather than never, and no other worker sends them meanwhile.
pub fn take_due(
    tx: &Tx<'_>,
    now: i64,
    lease: i64,
    limit: i64,
    per_tenant: i64,
) -> Result<Vec<DeliveryRow>> {
    let rows = tx.query_map(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER \
         (PARTITION BY tenant_id ORDER BY next_attempt_at, id) AS turn FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_at <= ?1) AS due WHERE turn <= ?3 \
         ORDER BY turn, next_attempt_at LIMIT ?2"
        ),
        params![now, limit, per_tenant],
        delivery,
    )?;
    for d in &rows {
        tx.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
            params![d.id, now + lease],
        )?;
    }
    Ok(rows)
}

/// One attempt's outcome.
pub struct Attempt<'a> {
    /// HTTP status, when a response came.
    pub status: Option<i64>,
    /// The failure class (`connect_failed`, `timeout`, `tls`, `http_5xx`, …); never raw text.
    pub error: Option<&'a str>,
    /// Duration of the attempt.
    pub duration_ms: i64,
    /// When to try again; `None` = delivered (2xx) or given up.
    pub retry_at: Option<i64>,
    /// Whether a 2xx came back.
    pub delivered: bool,
}

/// Records an attempt and moves the delivery on.
pub fn record_attempt(tx: &Tx<'_>, id: &str, now: i64, a: &Attempt<'_>) -> Result<()> {
    let attempt: i64 = tx.query_row(
        "SELECT attempts + 1 FROM webhook_deliveries WHERE id = ?1",
        params![id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, attempt, now, a.status, a.error, a.duration_ms],
    )?;
    let status = if a.delivered {
        "delivered"
    } else if a.retry_at.is_some() {
        "pending"
    } else {
        "failed"
    };
    tx.execute(
        "UPDATE webhook_deliveries SET attempts = ?2, status = ?3, next_attempt_at = COALESCE(?4, next_attempt_at), \
         last_status = ?5, last_error = ?6, delivered_at = CASE WHEN ?7 THEN ?8 ELSE delivered_at END \
         WHERE id = ?1 AND status = 'pending'",
        params![id, attempt, status, a.retry_at, a.status, a.error, a.delivered, now],
    )?;
    Ok(())
}

/// A tenant's deliveries, newest first (optionally of one endpoint).
pub fn deliveries(
    conn: &Conn<'_>,
    tenant_id: &str,
    webhook_id: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let rows = conn.query_map(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = ?1 AND (webhook_id = ?2 OR ?2 IS NULL) \
         ORDER BY created_at DESC, id DESC LIMIT ?3"
    ), params![tenant_id, webhook_id, limit], delivery)?;
    Ok(rows)
}

/// One recorded attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptRow {
    /// 1-based.
    pub attempt: i64,
    /// Unix seconds.
    pub at: i64,
    /// HTTP status, when a response came.
    pub status: Option<i64>,
    /// What went wrong.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// Every attempt of a delivery, in order.
pub fn attempts(conn: &Conn<'_>, delivery_id: &str) -> Result<Vec<AttemptRow>> {
    let rows = conn.query_map("SELECT attempt, at, status, error, duration_ms FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt", params![delivery_id], |r| {
            Ok(AttemptRow {
                attempt: r.get(0)?,
                at: r.get(1)?,
                status: r.get(2)?,
                error: r.get(3)?,
                duration_ms: r.get(4)?,
            })
        })?;
    Ok(rows)
}

/// Sends a delivery again now (manual redelivery). `NotFound` when the tenant has no such
/// delivery; `Conflict` while it is still pending (a second send could race the one under way) or
/// when its endpoint was deleted.
pub fn redeliver(tx: &Tx<'_>, tenant_id: &str, id: &str, now: i64) -> Result<()> {
    let row: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT d.status, w.deleted_at FROM webhook_deliveries d \
             LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.tenant_id = ?1 AND d.id = ?2",
            params![tenant_id, id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Err(super::StoreError::NotFound("delivery")),
        Some((status, _)) if status == "pending" => Err(super::StoreError::Conflict(
            "the delivery is still pending".into(),
        )),
        Some((_, Some(_))) => Err(super::StoreError::Conflict(
            "the webhook endpoint was deleted".into(),
        )),
        Some(_) => {
            tx.execute(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        }
    }
}

/// Deliveries by status (`pending`, `delivered`, `failed`), for `/metrics`.
pub fn delivery_counts(conn: &Conn<'_>) -> Result<Vec<(String, i64)>> {
    let rows = conn.query_map(
        "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows)
}
