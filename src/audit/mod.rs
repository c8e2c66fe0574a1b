//! The append-only, hash-chained audit log: what an entry is and how its hash is computed.
//!
//! Each entry stores the SHA-256 of the previous entry's hash followed by its own canonical
//! content, so editing, deleting or reordering any entry breaks every hash after it. Entries name
//! ids and outcomes, never personal data or secrets. Storage is in [`crate::store::audit`].

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash the first entry chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry to append; sequence, time and hashes are assigned by the store.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Who acted: `operator`, `cli`, `key:<id>`, `system`.
    pub actor: String,
    /// What happened, dotted: `tenant.create`, `key.revoke`.
    pub action: String,
    /// The tenant concerned, if any.
    pub tenant_id: Option<String>,
    /// The object acted on (an id), if any.
    pub target: Option<String>,
    /// Structured context without personal data.
    pub details: Value,
}

impl NewEntry {
    /// An entry with empty details.
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        NewEntry {
            actor: actor.into(),
            action: action.into(),
            tenant_id: None,
            target: None,
            details: Value::Object(Default::default()),
        }
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The fields an entry's hash covers, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    tenant_id: Option<&'a str>,
    target: Option<&'a str>,
    details: &'a str,
}

/// The hash of an entry: lowercase hex SHA-256 of `prev_hash "\n" canonical_json`.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    tenant_id: Option<&str>,
    target: Option<&str>,
    details: &str,
) -> String {
    let canonical = serde_json::to_vec(&Canonical {
        seq,
        at,
        actor,
        action,
        tenant_id,
        target,
        details,
    })
    .expect("plain struct serialises");
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&canonical);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field_and_the_previous_hash() {
        let base = entry_hash(
            GENESIS,
            1,
            10,
            "cli",
            "tenant.create",
            Some("t"),
            None,
            "{}",
        );
        assert_eq!(base.len(), 64);
        assert_ne!(
            base,
            entry_hash("1", 1, 10, "cli", "tenant.create", Some("t"), None, "{}")
        );
        assert_ne!(
            base,
            entry_hash(
                GENESIS,
                2,
                10,
                "cli",
                "tenant.create",
                Some("t"),
                None,
                "{}"
            )
        );
        assert_ne!(
            base,
            entry_hash(
                GENESIS,
                1,
                11,
                "cli",
                "tenant.create",
                Some("t"),
                None,
                "{}"
            )
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, 10, "op", "tenant.create", Some("t"), None, "{}")
        );
        assert_ne!(
            base,
            entry_hash(GENESIS, 1, 10, "cli", "tenant.create", None, None, "{}")
        );
        assert_ne!(
            base,
            entry_hash(
                GENESIS,
                1,
                10,
                "cli",
                "tenant.create",
                Some("t"),
                None,
                "{ }"
            )
        );
    }
}
