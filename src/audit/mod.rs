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

/// What is wrong at one place of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Break {
    /// The entry's content no longer matches its hash: it was edited.
    Edited {
        /// The entry.
        seq: i64,
    },
    /// Entries are missing before this one: deleted.
    Missing {
        /// First missing sequence number.
        from_seq: i64,
        /// Last missing sequence number.
        to_seq: i64,
    },
    /// The entry does not chain from the one before it: deleted, reordered or replaced.
    Unlinked {
        /// The entry.
        seq: i64,
    },
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// No break found.
    pub ok: bool,
    /// Entries read.
    pub entries: u64,
    /// Sequence number and hash of the last entry: keep it elsewhere (or export the log) to
    /// detect a later truncation of the tail, which a chain alone cannot show.
    pub head: Option<(i64, String)>,
    /// Every break, in chain order.
    pub breaks: Vec<Break>,
}

/// Checks entries given in ascending `seq` order: recomputes each hash from its content and
/// checks each link to the previous entry.
pub struct Verifier {
    expected_seq: i64,
    expected_prev: String,
    result: Verification,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            expected_seq: 1,
            expected_prev: GENESIS.to_owned(),
            result: Verification {
                ok: true,
                entries: 0,
                head: None,
                breaks: Vec::new(),
            },
        }
    }
}

impl Verifier {
    /// Checks the next entry.
    pub fn push(&mut self, row: &crate::store::audit::AuditRow) {
        let r = &mut self.result;
        r.entries += 1;
        if row.seq > self.expected_seq {
            r.breaks.push(Break::Missing {
                from_seq: self.expected_seq,
                to_seq: row.seq - 1,
            });
        } else if row.prev_hash != self.expected_prev {
            r.breaks.push(Break::Unlinked { seq: row.seq });
        }
        let recomputed = entry_hash(
            &row.prev_hash,
            row.seq,
            row.at,
            &row.actor,
            &row.action,
            row.tenant_id.as_deref(),
            row.target.as_deref(),
            &row.details,
        );
        if recomputed != row.hash {
            r.breaks.push(Break::Edited { seq: row.seq });
        }
        self.expected_seq = row.seq + 1;
        self.expected_prev = row.hash.clone();
        r.head = Some((row.seq, row.hash.clone()));
    }

    /// The verdict.
    pub fn finish(mut self) -> Verification {
        self.result.ok = self.result.breaks.is_empty();
        self.result
    }
}

/// Walks the whole stored chain.
pub fn verify(store: &crate::store::Store) -> crate::store::Result<Verification> {
    let mut v = Verifier::default();
    store.read(|c| crate::store::audit::for_each(c, |row| v.push(&row)))?;
    Ok(v.finish())
}

/// Writes every entry, chain fields included, as one JSON object per line (for WORM storage).
pub fn export(
    store: &crate::store::Store,
    out: &mut dyn std::io::Write,
) -> crate::store::Result<u64> {
    let mut n = 0;
    let mut failed = None;
    store.read(|c| {
        crate::store::audit::for_each(c, |row| {
            if failed.is_none() {
                let line = serde_json::to_string(&row).expect("plain row serialises");
                match writeln!(out, "{line}") {
                    Ok(()) => n += 1,
                    Err(e) => failed = Some(e),
                }
            }
        })
    })?;
    match failed {
        Some(e) => Err(crate::store::StoreError::Io(e)),
        None => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_names_edited_deleted_and_reordered_entries() {
        use crate::store::{audit as rows, test_store};
        let (_dir, store) = test_store();
        for i in 0..6 {
            store
                .write(|tx| rows::append(tx, &NewEntry::new("t", format!("a{i}")), 100 + i))
                .unwrap();
        }
        let clean = verify(&store).unwrap();
        assert!(clean.ok && clean.entries == 6, "{clean:?}");
        assert_eq!(clean.head.as_ref().unwrap().0, 6);
        // An attacker with the file: drop the guards, edit entry 2, delete entry 4.
        store
            .write(|tx| {
                tx.execute_batch(
                    "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
                     UPDATE audit_log SET actor = 'mallory' WHERE seq = 2;
                     DELETE FROM audit_log WHERE seq = 4;",
                )?;
                Ok(())
            })
            .unwrap();
        let broken = verify(&store).unwrap();
        assert!(!broken.ok);
        assert_eq!(
            broken.breaks,
            vec![
                Break::Edited { seq: 2 },
                Break::Missing {
                    from_seq: 4,
                    to_seq: 4
                }
            ]
        );
        // Swapping two entries' sequence numbers breaks their links.
        store
            .write(|tx| {
                tx.execute_batch(
                    "UPDATE audit_log SET seq = 100 WHERE seq = 5;
                     UPDATE audit_log SET seq = 5 WHERE seq = 6;
                     UPDATE audit_log SET seq = 6 WHERE seq = 100;",
                )?;
                Ok(())
            })
            .unwrap();
        // The hash covers the sequence number, so both moved entries fail, and 6 no longer
        // chains from 5.
        let swapped = verify(&store).unwrap();
        for b in [
            Break::Edited { seq: 5 },
            Break::Edited { seq: 6 },
            Break::Unlinked { seq: 6 },
        ] {
            assert!(swapped.breaks.contains(&b), "{b:?} in {swapped:?}");
        }
        let mut out = Vec::new();
        assert_eq!(export(&store, &mut out).unwrap(), 5);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 5);
    }

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
