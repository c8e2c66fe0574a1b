//! Audit rows: append at the end of the chain, read back in order.

use rusqlite::{params, Connection, Transaction};
use serde::Serialize;

use super::{none_if_no_rows, Result};
use crate::audit::{entry_hash, NewEntry, GENESIS};

/// A stored audit entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// Tenant concerned.
    pub tenant_id: Option<String>,
    /// Object acted on.
    pub target: Option<String>,
    /// JSON details, as stored.
    pub details: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

/// Appends `entry` after the current last entry, inside the caller's write transaction so that
/// the audited change and its entry commit together.
pub fn append(tx: &Transaction<'_>, entry: &NewEntry, at: i64) -> Result<AuditRow> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(Some)
        .or_else(none_if_no_rows)?;
    let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_owned()));
    let seq = prev_seq + 1;
    let details = entry.details.to_string();
    let hash = entry_hash(
        &prev_hash,
        seq,
        at,
        &entry.actor,
        &entry.action,
        entry.tenant_id.as_deref(),
        entry.target.as_deref(),
        &details,
    );
    let row = AuditRow {
        seq,
        at,
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        tenant_id: entry.tenant_id.clone(),
        target: entry.target.clone(),
        details,
        prev_hash,
        hash,
    };
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, action, tenant_id, target, details, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            row.seq,
            row.at,
            row.actor,
            row.action,
            row.tenant_id,
            row.target,
            row.details,
            row.prev_hash,
            row.hash
        ],
    )?;
    Ok(row)
}

/// Entries in chain order, optionally only one tenant's.
pub fn list(conn: &Connection, tenant_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, tenant_id, target, details, prev_hash, hash FROM audit_log \
         WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![tenant_id, limit], |r| {
        Ok(AuditRow {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            tenant_id: r.get(4)?,
            target: r.get(5)?,
            details: r.get(6)?,
            prev_hash: r.get(7)?,
            hash: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn entries_chain_and_cannot_be_updated_or_deleted() {
        let (_dir, store) = test_store();
        let a = store
            .write(|tx| append(tx, &NewEntry::new("cli", "tenant.create"), 100))
            .unwrap();
        let b = store
            .write(|tx| append(tx, &NewEntry::new("cli", "key.create").tenant("t1"), 101))
            .unwrap();
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.seq, 2);
        let rows = store.read(|c| list(c, None, 10)).unwrap();
        assert_eq!(rows, vec![a, b]);
        assert!(store
            .write(|tx| Ok(tx.execute("UPDATE audit_log SET actor = 'x'", [])?))
            .is_err());
        assert!(store
            .write(|tx| Ok(tx.execute("DELETE FROM audit_log", [])?))
            .is_err());
    }
}
