//! Authentication failures, aggregated for the audit log: one entry per interval with a count per
//! (error code, key), instead of one per refused request — an attacker cannot flood the chain,
//! and the operator still sees who was refused and why.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;

use crate::audit::NewEntry;
use crate::store::{self, Store, StoreError};

/// Most distinct (code, key) pairs kept per interval; beyond it, failures count under `other`.
const MAX_KINDS: usize = 1_000;

/// Failures counted since the last flush.
#[derive(Default)]
pub struct FailureTally {
    counts: Mutex<BTreeMap<(String, Option<String>), u64>>,
}

impl FailureTally {
    /// Counts one refused request. `key_id` only for keys known to exist (never an id a caller
    /// merely sent, which could be anything).
    pub fn add(&self, code: &str, key_id: Option<&str>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut entry = (code.to_owned(), key_id.map(str::to_owned));
        if counts.len() >= MAX_KINDS && !counts.contains_key(&entry) {
            entry = ("other".into(), None);
        }
        *counts.entry(entry).or_default() += 1;
    }

    /// Appends the counts so far as one `auth.failures` entry (none when there were none) and
    /// starts a new interval. Blocking. Returns the number of failures written.
    pub fn flush(&self, store: &Store, window_secs: u64) -> Result<u64, StoreError> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
        if counts.is_empty() {
            return Ok(0);
        }
        let total: u64 = counts.values().sum();
        let rows: Vec<_> = counts
            .iter()
            .map(|((code, key), n)| json!({ "code": code, "key_id": key, "count": n }))
            .collect();
        let now = store::now();
        let entry = NewEntry::new("system", "auth.failures").details(json!({
            "window_seconds": window_secs,
            "total": total,
            "counts": rows,
        }));
        store.write(|tx| store::audit::append(tx, &entry, now))?;
        Ok(total)
    }
}

/// Flushes `tally` every `interval` for the life of the process.
pub async fn flush_worker(
    tally: std::sync::Arc<super::Authenticator>,
    store: std::sync::Arc<Store>,
    interval: std::time::Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (t, s) = (tally.clone(), store.clone());
        let secs = interval.as_secs();
        match tokio::task::spawn_blocking(move || t.failures.flush(&s, secs)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "writing auth failures to the audit log failed")
            }
            Err(e) => tracing::error!(error = %e, "auth failure flush panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn failures_become_one_entry_per_interval() {
        let (_dir, store) = test_store();
        let tally = FailureTally::default();
        assert_eq!(tally.flush(&store, 60).unwrap(), 0);
        for _ in 0..3 {
            tally.add("invalid_signature", Some("ak_1"));
        }
        tally.add("unknown_key", None);
        assert_eq!(tally.flush(&store, 60).unwrap(), 4);
        assert_eq!(tally.flush(&store, 60).unwrap(), 0);
        let rows = store.read(|c| store::audit::list(c, None, 10)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action, "auth.failures");
        let d: serde_json::Value = serde_json::from_str(&rows[0].details).unwrap();
        assert_eq!(d["total"], 4);
        assert_eq!(
            d["counts"][0],
            json!({"code": "invalid_signature", "key_id": "ak_1", "count": 3})
        );
    }
}
