//! Signed webhooks: events are queued in the transaction that produces them, then delivered by
//! a background loop with retries (exponential backoff with jitter, 9 attempts over ~16 h). Each
//! attempt runs on its own blocking thread with a timeout, at most [`MAX_IN_FLIGHT`] at once and
//! [`MAX_PER_TENANT`] per tenant, so a slow or dead receiver never holds up job workers or other
//! tenants.
//!
//! Signature: `X-KYCD-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; endpoints
//! use their own secret (shown once at creation), a job's `callback_url` the tenant's callback
//! secret (`POST /v1/webhooks/callback-secret`, shown once) — never an API key's secret, and
//! nothing is sent for a job whose key was revoked since.

use crate::store::Tx;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;

use super::egress;
use crate::store::crypto::DataKey;
use crate::store::{self, webhooks::DeliveryRow, Store, StoreError};

/// Events a tenant can subscribe to.
pub const EVENTS: &[&str] = &[
    "kyc.completed",
    "kyc.failed",
    "kyc.reviewed",
    "quota.threshold",
];
/// Data-key family sealing webhook secrets and payloads.
pub const FAMILY: &str = "webhooks";
/// Delays before attempts 2…9 (seconds): 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h —
/// about 15.7 h in all before a delivery is given up.
const BACKOFF: [i64; 8] = [30, 120, 600, 1800, 3600, 7200, 14_400, 28_800];
/// Endpoints one tenant may have.
pub const MAX_ENDPOINTS: usize = 20;
/// Deliveries attempted at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Deliveries to one tenant attempted at once.
pub const MAX_PER_TENANT: usize = 4;
/// Time a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The signature header value for `body` at `t`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// When attempt `made + 1` is due after `made` failed ones, with ±20 % jitter, the schedule
/// multiplied by `scale` (1 in production; tests shrink it); `None` = give up.
pub fn next_attempt(now: i64, made: i64, scale: f64) -> Option<i64> {
    let base = *BACKOFF.get(usize::try_from(made - 1).ok()?)?;
    let jitter = rand::thread_rng().gen_range(-(base / 5)..=base / 5);
    let delay = ((base + jitter) as f64 * scale).round() as i64;
    Some(now + delay.max(1))
}

/// The event body.
pub fn event_body(event: &str, data: Value) -> Value {
    json!({
        "id": format!("evt_{}", random_hex(12)),
        "type": event,
        "created_at": store::now(),
        "data": data,
    })
}

/// Queues `event` to every endpoint of the tenant subscribed to it, and to `callback_url` (signed
/// with `key_id`'s secret), inside the caller's transaction. The payload is sealed with `key`:
/// the subject's key when it carries personal data (`subject_id` given, so erasing the subject
/// shreds undelivered payloads too), else the [`FAMILY`] key — fetched before the transaction
/// (fetching it the first time writes, and the writer is held).
pub fn enqueue_event(
    key: &DataKey,
    subject_id: Option<&str>,
    tx: &Tx<'_>,
    tenant_id: &str,
    event: &str,
    body: &Value,
    callback: Option<(&str, Option<&str>)>,
) -> Result<usize, StoreError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let now = store::now();
    let mut targets: Vec<(Option<String>, String, Option<String>)> =
        store::webhooks::list(tx, tenant_id)?
            .into_iter()
            .filter(|w| w.events.iter().any(|e| e == event))
            .map(|w| (Some(w.id), w.url, None))
            .collect();
    if let Some((url, key_id)) = callback {
        targets.push((None, url.to_owned(), key_id.map(str::to_owned)));
    }
    for (webhook_id, url, key_id) in targets.iter().cloned() {
        let target = Target {
            tenant_id,
            webhook_id,
            url,
            key_id,
            subject_id: subject_id.map(str::to_owned),
        };
        enqueue_one(key, tx, target, event, &bytes, now)?;
    }
    Ok(targets.len())
}

/// Where one delivery goes and how it is signed and sealed.
pub struct Target<'a> {
    /// Owner.
    pub tenant_id: &'a str,
    /// The endpoint (signed with its secret), or `None` for a callback URL.
    pub webhook_id: Option<String>,
    /// Where to POST.
    pub url: String,
    /// For a callback URL: the key whose secret signs it.
    pub key_id: Option<String>,
    /// The subject whose key sealed the payload, if any.
    pub subject_id: Option<String>,
}

/// Seals `body` for a new delivery to `target` and queues it; returns the delivery id.
pub fn enqueue_one(
    key: &DataKey,
    tx: &Tx<'_>,
    target: Target<'_>,
    event: &str,
    body: &[u8],
    now: i64,
) -> Result<String, StoreError> {
    let id = format!("dlv_{}", random_hex(12));
    let payload = key.seal(body, id.as_bytes())?;
    store::webhooks::enqueue(
        tx,
        &DeliveryRow {
            id: id.clone(),
            webhook_id: target.webhook_id,
            tenant_id: target.tenant_id.to_owned(),
            url: target.url,
            key_id: target.key_id,
            subject_id: target.subject_id,
            event: event.to_owned(),
            payload,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        },
    )?;
    Ok(id)
}

/// The delivery loop: every second (or when woken), due deliveries are attempted.
pub struct Deliverer {
    store: Arc<Store>,
    retry_scale: f64,
    egress: Arc<egress::Policy>,
    in_flight: Mutex<HashMap<String, usize>>,
    /// Wakes the loop early (after an event was queued).
    pub wake: tokio::sync::Notify,
}

impl Deliverer {
    /// A deliverer over `store`; `retry_scale` multiplies the backoff schedule.
    pub fn new(store: Arc<Store>, retry_scale: f64, egress: Arc<egress::Policy>) -> Self {
        Deliverer {
            store,
            retry_scale,
            egress,
            in_flight: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Runs the loop forever.
    pub async fn run(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
            let busy: usize = self.in_flight().values().sum();
            if busy >= MAX_IN_FLIGHT {
                continue;
            }
            let me = self.clone();
            let due = tokio::task::spawn_blocking(move || {
                me.store.write(|tx| {
                    store::webhooks::take_due(
                        tx,
                        store::now(),
                        60,
                        (MAX_IN_FLIGHT - busy) as i64,
                        MAX_PER_TENANT as i64,
                    )
                })
            })
            .await;
            let due = match due {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "reading due webhook deliveries failed");
                    continue;
                }
                Err(_) => continue,
            };
            for d in due {
                {
                    let mut map = self.in_flight();
                    let n = map.entry(d.tenant_id.clone()).or_default();
                    if *n >= MAX_PER_TENANT {
                        // Leased for a minute: picked up again then, when the tenant has room.
                        continue;
                    }
                    *n += 1;
                }
                let me = self.clone();
                tokio::task::spawn_blocking(move || {
                    // Released even if the attempt panics, so the tenant is not throttled forever.
                    let _slot = TenantSlot(&me, &d.tenant_id);
                    me.attempt(&d);
                });
            }
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One attempt, recorded. Blocking.
    pub fn attempt(&self, d: &DeliveryRow) {
        let started = Instant::now();
        let outcome = self.send(d);
        let now = store::now();
        let made = d.attempts + 1;
        // The log keeps a class, never the transport's own text: a tenant must not learn what
        // answers on which internal port from it.
        let (status, error, delivered) = match outcome {
            Ok(code) if (200..300).contains(&code) => (Some(i64::from(code)), None, true),
            Ok(code) => (Some(i64::from(code)), Some(status_class(code)), false),
            Err(class) => (None, Some(class), false),
        };
        // Some failures cannot heal: the payload was erased, the signing key revoked. A
        // missing callback secret can (the tenant may make one), and so can a busy store.
        let terminal = matches!(error, Some("payload_unreadable" | "key_revoked"));
        let retry_at = if delivered || terminal {
            None
        } else {
            next_attempt(now, made, self.retry_scale)
        };
        let attempt = store::webhooks::Attempt {
            status,
            error,
            duration_ms: started.elapsed().as_millis() as i64,
            retry_at,
            delivered,
        };
        if let Err(e) = self
            .store
            .write(|tx| store::webhooks::record_attempt(tx, &d.id, now, &attempt))
        {
            tracing::error!(delivery = %d.id, error = %e, "recording a webhook attempt failed");
        }
    }

    fn send(&self, d: &DeliveryRow) -> Result<u16, &'static str> {
        let key = match &d.subject_id {
            Some(subject) => self
                .store
                .read(|c| self.store.existing_subject_key(c, &d.tenant_id, subject)),
            None => self.store.data_key(FAMILY),
        };
        let body = key
            .and_then(|k| Ok(k.open(&d.payload, d.id.as_bytes())?.to_vec()))
            .map_err(|e| {
                tracing::warn!(delivery = %d.id, error = %e, "webhook payload unreadable");
                // Gone for good only when the key is gone or the ciphertext does not open; a
                // busy or failing store is tried again.
                match e {
                    StoreError::NotFound(_) | StoreError::Crypto(_) => "payload_unreadable",
                    _ => "store_unavailable",
                }
            })?;
        let secret = self.secret(d)?;
        let t = store::now();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            // Never through a proxy from the environment: the address checked is the one used.
            .proxy(None)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            egress::CheckedResolver(self.egress.clone()),
        );
        let resp = agent
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("kycd/", env!("CARGO_PKG_VERSION")))
            .header("X-KYCD-Event", &d.event)
            .header("X-KYCD-Delivery", &d.id)
            .header("X-KYCD-Signature", &signature(&secret, t, &body))
            .send(&body[..])
            .map_err(|e| {
                let class = error_class(&e);
                tracing::info!(delivery = %d.id, class, error = %e, "webhook attempt failed");
                class
            })?;
        Ok(resp.status().as_u16())
    }

    fn secret(&self, d: &DeliveryRow) -> Result<Vec<u8>, &'static str> {
        let result = match (&d.webhook_id, &d.key_id) {
            (Some(w), _) => self
                .store
                .read(|c| store::webhooks::sealed_secret(c, w))
                .and_then(|s| {
                    let sealed = s.ok_or(StoreError::NotFound("webhook"))?;
                    Ok(self
                        .store
                        .data_key(FAMILY)?
                        .open(&sealed, w.as_bytes())?
                        .to_vec())
                }),
            (None, Some(k)) => {
                // A callback of a job whose key was revoked since is not sent at all.
                let revoked = self
                    .store
                    .read(|c| store::keys::auth_row(c, k))
                    .map(|row| row.is_none_or(|r| r.revoked));
                match revoked {
                    Ok(true) => return Err("key_revoked"),
                    Ok(false) => open_callback_secret(&self.store, &d.tenant_id),
                    Err(e) => Err(e),
                }
            }
            (None, None) => Err(StoreError::NotFound("signing secret")),
        };
        result.map_err(|e| {
            tracing::warn!(delivery = %d.id, error = %e, "no webhook signing secret");
            match e {
                StoreError::NotFound(_) | StoreError::Crypto(_) => "no_signing_secret",
                _ => "store_unavailable",
            }
        })
    }
}

fn callback_aad(tenant_id: &str) -> Vec<u8> {
    format!("callback_secret:{tenant_id}").into_bytes()
}

/// The tenant's callback secret, opened.
fn open_callback_secret(store: &Store, tenant_id: &str) -> Result<Vec<u8>, StoreError> {
    let sealed = store
        .read(|c| store::webhooks::callback_secret(c, tenant_id))?
        .ok_or(StoreError::NotFound("callback secret"))?;
    Ok(store
        .data_key(FAMILY)?
        .open(&sealed, &callback_aad(tenant_id))?
        .to_vec())
}

/// Whether the tenant has a callback secret (a job's `callback_url` needs one).
pub fn has_callback_secret(store: &Store, tenant_id: &str) -> Result<bool, StoreError> {
    Ok(store
        .read(|c| store::webhooks::callback_secret(c, tenant_id))?
        .is_some())
}

/// Makes (or replaces) the tenant's callback secret and returns it: the only time it is shown.
/// Callbacks sent from then on (retries of earlier ones included) are signed with it. Audited.
pub fn rotate_callback_secret(
    store: &Store,
    tenant_id: &str,
    actor: &str,
) -> Result<String, StoreError> {
    let secret = format!("whsec_{}", random_hex(24));
    let key = store.data_key(FAMILY)?;
    let sealed = key.seal(secret.as_bytes(), &callback_aad(tenant_id))?;
    let now = store::now();
    store.write(|tx| {
        if store::tenants::get(tx, tenant_id)?.is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        store::webhooks::set_callback_secret(tx, tenant_id, &sealed, now)?;
        let entry = crate::audit::NewEntry::new(actor, "webhook.callback_secret")
            .tenant(tenant_id)
            .target(tenant_id);
        store::audit::append(tx, &entry, now)?;
        Ok(())
    })?;
    Ok(secret)
}

/// The class of a receiver's non-2xx answer.
fn status_class(code: u16) -> &'static str {
    match code {
        300..=399 => "http_3xx",
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}

/// The class of a failed attempt: what the delivery log shows instead of the raw error.
pub fn error_class(e: &ureq::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::HostNotFound => "dns_failed",
        ureq::Error::ConnectionFailed => "connect_failed",
        ureq::Error::Io(io) => match io.kind() {
            K::TimedOut | K::WouldBlock => "timeout",
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::BrokenPipe
            | K::UnexpectedEof => "connect_failed",
            _ => "io_error",
        },
        ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired => "tls",
        ureq::Error::Other(inner) => inner
            .downcast_ref::<egress::Refusal>()
            .map_or("request_failed", egress::Refusal::class),
        ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::BodyStalled => "protocol_error",
        _ => "request_failed",
    }
}

/// One of a tenant's in-flight places, given back on drop.
struct TenantSlot<'a>(&'a Deliverer, &'a str);

impl Drop for TenantSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.0.in_flight();
        if let Some(n) = map.get_mut(self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(self.1);
            }
        }
    }
}

/// Random lowercase hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
        let s = signature(b"whsec", 1_700_000_000, br#"{"a":1}"#);
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature(b"whsec", 1_700_000_001, br#"{"a":1}"#));
    }

    #[test]
    fn backoff_gives_nine_attempts_over_more_than_twelve_hours() {
        let mut at = 0;
        let mut attempts = 1;
        while let Some(next) = next_attempt(at, attempts, 1.0) {
            assert!(next > at);
            at = next;
            attempts += 1;
        }
        assert_eq!(attempts, 9);
        assert!(at >= 12 * 3600, "last attempt after {at} s");
    }
}
