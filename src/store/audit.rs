//! Audit rows: append at the end of the chain, read back in order.

use serde::Serialize;

use super::{params, Conn, Optional, Result, Row, Tx};
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
pub fn append(tx: &Tx<'_>, entry: &NewEntry, at: i64) -> Result<AuditRow> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
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

fn from_row(r: &Row<'_>) -> Result<AuditRow> {
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
}

/// Entries in chain order, optionally only one tenant's.
pub fn list(conn: &Conn<'_>, tenant_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
    let rows = conn.query_map("SELECT seq, at, actor, action, tenant_id, target, details, prev_hash, hash FROM audit_log \
         WHERE tenant_id = ?1 OR ?1 IS NULL ORDER BY seq LIMIT ?2", params![tenant_id, limit], from_row)?;
    Ok(rows)
}

/// Walks every entry in chain order, without loading the log into memory.
pub fn for_each(conn: &Conn<'_>, mut f: impl FnMut(AuditRow)) -> Result<()> {
    // Pages by `seq`, so neither engine holds more than a page (PostgreSQL's client would
    // otherwise receive the whole log before the first row).
    const PAGE: i64 = 1000;
    let mut after = i64::MIN;
    loop {
        let mut n = 0;
        let from = after;
        conn.for_each_row(
            "SELECT seq, at, actor, action, tenant_id, target, details, prev_hash, hash FROM audit_log \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![from, PAGE],
            |r| {
                let row = from_row(r)?;
                after = row.seq;
                n += 1;
                f(row);
                Ok(())
            },
        )?;
        if n < PAGE {
            return Ok(());
        }
    }
}

/// A search of the log: full-text `query` (FTS5 syntax) over actor, action, target and details,
/// a time range and an optional tenant; newest first.
#[derive(Debug, Clone, Default)]
pub struct Search<'a> {
    /// FTS5 query; `None` matches everything.
    pub query: Option<&'a str>,
    /// Only this tenant's entries.
    pub tenant_id: Option<&'a str>,
    /// From this Unix time (inclusive).
    pub from: Option<i64>,
    /// Until this Unix time (inclusive).
    pub to: Option<i64>,
    /// At most this many entries.
    pub limit: i64,
}

/// Runs a search; on SQLite a malformed FTS5 query is a `Conflict` naming its complaint (on
/// PostgreSQL the query is read as `websearch_to_tsquery` text, which accepts anything).
pub fn search(conn: &Conn<'_>, s: &Search<'_>) -> Result<Vec<AuditRow>> {
    // One rule on both engines for the commonest mistake.
    if s.query.is_some_and(|q| q.matches('"').count() % 2 == 1) {
        return Err(super::StoreError::Conflict(
            "invalid search query: unbalanced quote".into(),
        ));
    }
    // With a tenant, its own entries are walked newest first (index on tenant and seq) and each
    // is checked against the full-text query by rowid: one tenant's search never matches the
    // whole log before filtering. The operator's search over every tenant matches first.
    let sql = if conn.backend() == super::Backend::Postgres {
        "SELECT a.seq, a.at, a.actor, a.action, a.tenant_id, a.target, a.details, a.prev_hash, a.hash \
         FROM audit_log a \
         WHERE (a.tenant_id = ?2 OR ?2 IS NULL) AND (a.at >= ?3 OR ?3 IS NULL) AND (a.at <= ?4 OR ?4 IS NULL) \
           AND (to_tsvector('simple', translate(a.actor || ' ' || a.action || ' ' || coalesce(a.target, '') \
                || ' ' || a.details, '.:/', '   ')) @@ websearch_to_tsquery('simple', translate(?1, '.:/', '   ')) \
                OR ?1 IS NULL) \
         ORDER BY a.seq DESC LIMIT ?5"
    } else if s.tenant_id.is_some() {
        "SELECT a.seq, a.at, a.actor, a.action, a.tenant_id, a.target, a.details, a.prev_hash, a.hash \
         FROM audit_log a INDEXED BY audit_log_tenant_seq \
         WHERE a.tenant_id = ?2 AND (a.at >= ?3 OR ?3 IS NULL) AND (a.at <= ?4 OR ?4 IS NULL) \
           AND (?1 IS NULL OR EXISTS (SELECT 1 FROM audit_fts f WHERE audit_fts MATCH ?1 AND f.rowid = a.seq)) \
         ORDER BY a.seq DESC LIMIT ?5"
    } else {
        "SELECT a.seq, a.at, a.actor, a.action, a.tenant_id, a.target, a.details, a.prev_hash, a.hash \
         FROM audit_log a \
         WHERE (?1 IS NULL OR a.seq IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ?1)) \
           AND (a.tenant_id = ?2 OR ?2 IS NULL) AND (a.at >= ?3 OR ?3 IS NULL) AND (a.at <= ?4 OR ?4 IS NULL) \
         ORDER BY a.seq DESC LIMIT ?5"
    };
    conn.query_map(
        sql,
        params![s.query, s.tenant_id, s.from, s.to, s.limit],
        from_row,
    )
    .map_err(|e| match e {
        // SQLITE_ERROR while matching is FTS5 rejecting the query text (unbalanced quotes,
        // bare operators); anything else is ours.
        super::StoreError::Db(super::DbError::Sqlite(rusqlite::Error::SqliteFailure(f, msg)))
            if s.query.is_some() && f.code == rusqlite::ErrorCode::Unknown =>
        {
            super::StoreError::Conflict(format!(
                "invalid search query: {}",
                msg.unwrap_or_else(|| "syntax error".into())
            ))
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn a_tenants_search_walks_its_own_entries_first() {
        let (_dir, store) = test_store();
        store
            .write(|tx| {
                for i in 0..50 {
                    let t = if i % 10 == 0 { "mine" } else { "other" };
                    append(tx, &NewEntry::new("k", "key.create").tenant(t), 100 + i)?;
                }
                Ok(())
            })
            .unwrap();
        let found = store
            .read(|c| {
                search(
                    c,
                    &Search {
                        query: Some("create"),
                        tenant_id: Some("mine"),
                        limit: 100,
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(found.len(), 5);
        assert!(found.iter().all(|r| r.tenant_id.as_deref() == Some("mine")));
        let plan: String = store
            .read(|c| {
                c.query_row(
                    "EXPLAIN QUERY PLAN SELECT a.seq FROM audit_log a INDEXED BY audit_log_tenant_seq \
                     WHERE a.tenant_id = 'mine' ORDER BY a.seq DESC",
                    params![],
                    |r| r.get(3),
                )
            })
            .unwrap();
        assert!(plan.contains("audit_log_tenant_seq"), "{plan}");
    }

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
            .write(|tx| tx.execute("UPDATE audit_log SET actor = 'x'", params![]))
            .is_err());
        assert!(store
            .write(|tx| tx.execute("DELETE FROM audit_log", params![]))
            .is_err());
    }
}
