//! Media rows and per-subject data keys.

use serde::Serialize;

use super::crypto::DataKey;
use super::{params, Conn, Optional, Result, Row, Store, StoreError, Tx};

/// A stored blob's metadata.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MediaRow {
    /// `med_…` identifier.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The tenant's subject (applicant) id.
    pub subject_id: String,
    /// `selfie`, `document_front`, `document_back`, `face_crop`, `frame`.
    pub kind: String,
    /// Address of the sealed blob in the object directory.
    #[serde(skip)]
    pub object: String,
    /// Plaintext size in bytes.
    pub size: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the retention sweeper deletes it.
    pub expires_at: i64,
}

fn subject_aad(tenant_id: &str, subject_id: &str) -> Vec<u8> {
    format!("subjects.wrapped_key:{tenant_id}:{subject_id}").into_bytes()
}

impl Store {
    /// The data key of a subject, created (and stored wrapped) inside `tx` on first use.
    pub fn subject_key(
        &self,
        tx: &Tx<'_>,
        tenant_id: &str,
        subject_id: &str,
        now: i64,
    ) -> Result<DataKey> {
        let aad = subject_aad(tenant_id, subject_id);
        let aad = std::str::from_utf8(&aad).expect("ascii");
        let wrapped: Option<Vec<u8>> = tx
            .query_row(
                "SELECT wrapped_key FROM subjects WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id, subject_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(w) = wrapped {
            return Ok(self.master.unwrap_key(&w, aad)?);
        }
        let key = DataKey::generate();
        tx.execute(
            "INSERT INTO subjects (tenant_id, id, wrapped_key, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![tenant_id, subject_id, self.master.wrap_key(&key, aad)?, now],
        )?;
        Ok(key)
    }

    /// A subject's data key from its stored (wrapped) form, read elsewhere in bulk.
    pub fn unwrap_subject_key(
        &self,
        tenant_id: &str,
        subject_id: &str,
        wrapped: &[u8],
    ) -> Result<DataKey> {
        let aad = subject_aad(tenant_id, subject_id);
        let aad = std::str::from_utf8(&aad).expect("ascii");
        Ok(self.master.unwrap_key(wrapped, aad)?)
    }

    /// The data key of an existing subject, or `NotFound` once it has been erased.
    pub fn existing_subject_key(
        &self,
        conn: &Conn<'_>,
        tenant_id: &str,
        subject_id: &str,
    ) -> Result<DataKey> {
        let aad = subject_aad(tenant_id, subject_id);
        let aad = std::str::from_utf8(&aad).expect("ascii");
        let wrapped: Vec<u8> = conn
            .query_row(
                "SELECT wrapped_key FROM subjects WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id, subject_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound("subject"))?;
        Ok(self.master.unwrap_key(&wrapped, aad)?)
    }
}

/// Every media row's object address (for moving the blobs elsewhere).
pub fn objects(conn: &Conn<'_>) -> Result<Vec<String>> {
    conn.query_map("SELECT object FROM media ORDER BY object", params![], |r| {
        r.get(0)
    })
}

fn from_row(r: &Row<'_>) -> Result<MediaRow> {
    Ok(MediaRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        subject_id: r.get(2)?,
        kind: r.get(3)?,
        object: r.get(4)?,
        size: r.get(5)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
    })
}

const COLUMNS: &str = "id, tenant_id, subject_id, kind, object, size, created_at, expires_at";

/// Inserts a media row.
pub fn insert(tx: &Tx<'_>, m: &MediaRow) -> Result<()> {
    tx.execute(
        "INSERT INTO media (id, tenant_id, subject_id, kind, object, size, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![m.id, m.tenant_id, m.subject_id, m.kind, m.object, m.size, m.created_at, m.expires_at],
    )?;
    Ok(())
}

/// One media row of a tenant.
pub fn get(conn: &Conn<'_>, tenant_id: &str, id: &str) -> Result<Option<MediaRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM media WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant_id, id],
        from_row,
    )
    .optional()
}

/// A subject's media, oldest first.
pub fn list_for_subject(
    conn: &Conn<'_>,
    tenant_id: &str,
    subject_id: &str,
) -> Result<Vec<MediaRow>> {
    let rows = conn.query_map(&format!(
        "SELECT {COLUMNS} FROM media WHERE tenant_id = ?1 AND subject_id = ?2 ORDER BY created_at, id"
    ), params![tenant_id, subject_id], from_row)?;
    Ok(rows)
}

/// Deletes and returns media rows whose retention ended at or before `now` (at most `limit`).
pub fn take_expired(tx: &Tx<'_>, now: i64, limit: i64) -> Result<Vec<MediaRow>> {
    let rows = tx.query_map(
        &format!("SELECT {COLUMNS} FROM media WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2"),
        params![now, limit],
        from_row,
    )?;
    for r in &rows {
        tx.execute("DELETE FROM media WHERE id = ?1", params![r.id])?;
    }
    Ok(rows)
}

/// What erasing a subject removed.
#[derive(Debug, Default)]
pub struct Erased {
    /// The media rows deleted (their blobs are the caller's to delete).
    pub media: Vec<MediaRow>,
    /// Whether the subject's data key was deleted (crypto-shredding everything sealed with it).
    pub key: bool,
    /// Jobs filed under the subject: their reference and callback URL removed, their subject
    /// id replaced by `pseudonym`; queued ones failed.
    pub jobs: usize,
    /// Webhook deliveries of the subject: undelivered ones failed, callback URLs removed.
    pub deliveries: usize,
}

/// Erases a subject: media rows and key deleted; jobs and deliveries filed under it keep only
/// ids and outcomes, under `pseudonym` (a non-reversible reference). `NotFound` when the
/// tenant holds nothing of the subject.
pub fn erase_subject(
    tx: &Tx<'_>,
    tenant_id: &str,
    subject_id: &str,
    pseudonym: &str,
    now: i64,
) -> Result<Erased> {
    let media = list_for_subject(tx, tenant_id, subject_id)?;
    tx.execute(
        "DELETE FROM media WHERE tenant_id = ?1 AND subject_id = ?2",
        params![tenant_id, subject_id],
    )?;
    let keys = tx.execute(
        "DELETE FROM subjects WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, subject_id],
    )?;
    // A reviewer's comment may describe the person.
    tx.execute(
        "UPDATE job_reviews SET comment = '' WHERE job_id IN \
         (SELECT id FROM jobs WHERE tenant_id = ?1 AND subject_id = ?2)",
        params![tenant_id, subject_id],
    )?;
    tx.execute(
        "DELETE FROM job_inputs WHERE job_id IN \
         (SELECT id FROM jobs WHERE tenant_id = ?1 AND subject_id = ?2)",
        params![tenant_id, subject_id],
    )?;
    let jobs = tx.execute(
        "UPDATE jobs SET reference = NULL, callback_url = NULL, subject_id = ?3, \
         status = CASE WHEN status IN ('queued', 'running') THEN 'failed' ELSE status END, \
         error = CASE WHEN status IN ('queued', 'running') THEN 'the subject was erased' ELSE error END, \
         finished_at = CASE WHEN status IN ('queued', 'running') THEN ?4 ELSE finished_at END \
         WHERE tenant_id = ?1 AND subject_id = ?2",
        params![tenant_id, subject_id, pseudonym, now],
    )?;
    let deliveries = tx.execute(
        "UPDATE webhook_deliveries SET subject_id = ?3, \
         url = CASE WHEN webhook_id IS NULL THEN '' ELSE url END, \
         status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END, \
         last_error = CASE WHEN status = 'pending' THEN 'subject_erased' ELSE last_error END \
         WHERE tenant_id = ?1 AND subject_id = ?2",
        params![tenant_id, subject_id, pseudonym],
    )?;
    if media.is_empty() && keys == 0 && jobs == 0 && deliveries == 0 {
        // Erasing again is not an error; erasing what was never there is.
        if !erased_before(tx, tenant_id, pseudonym)? {
            return Err(StoreError::NotFound("subject"));
        }
    }
    Ok(Erased {
        media,
        key: keys > 0,
        jobs,
        deliveries,
    })
}

/// Whether the tenant erased the subject known by `pseudonym` before.
fn erased_before(conn: &Conn<'_>, tenant_id: &str, pseudonym: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM audit_log WHERE tenant_id = ?1 AND target = ?2 \
         AND action = 'subject.erase')",
        params![tenant_id, pseudonym],
        |r| r.get(0),
    )
}

/// Whether the tenant holds or held anything of this subject: its key, a job filed under it,
/// or an erasure of it (`pseudonym` is its audit reference).
pub fn subject_known(
    conn: &Conn<'_>,
    tenant_id: &str,
    subject_id: &str,
    pseudonym: &str,
) -> Result<bool> {
    let held: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM subjects WHERE tenant_id = ?1 AND id = ?2) \
         OR EXISTS (SELECT 1 FROM jobs WHERE tenant_id = ?1 AND subject_id = ?2)",
        params![tenant_id, subject_id],
        |r| r.get(0),
    )?;
    Ok(held || erased_before(conn, tenant_id, pseudonym)?)
}

/// A tenant's media policy: retention in days (0 = store nothing) and the kinds kept
/// (comma-separated).
pub fn policy(conn: &Conn<'_>, tenant_id: &str) -> Result<(i64, String)> {
    conn.query_row(
        "SELECT media_retention_days, media_kinds FROM tenants WHERE id = ?1",
        params![tenant_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or(StoreError::NotFound("tenant"))
}

/// Sets a tenant's media policy.
pub fn set_policy(tx: &Tx<'_>, tenant_id: &str, days: i64, kinds: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE tenants SET media_retention_days = ?2, media_kinds = ?3 WHERE id = ?1",
        params![tenant_id, days, kinds],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("tenant"));
    }
    Ok(())
}
