//! Enrolled faces, their change log, and each job's selfie embedding. Embeddings are stored only
//! sealed (under the subject's data key); these functions never see them in the clear.

use super::{params, Conn, Optional, Result, Row, Tx};

/// An enrolled face as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRow {
    /// `face_…` identifier.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The tenant's subject.
    pub subject_id: String,
    /// The collection it was enrolled in.
    pub collection: String,
    /// The embedding, sealed under the subject's key with the face id as AAD.
    pub sealed: Vec<u8>,
    /// The job it came from, when enrolled from one.
    pub job_id: Option<String>,
    /// The face's quality measurements (JSON).
    pub quality: String,
    /// Unix seconds.
    pub created_at: i64,
}

const COLUMNS: &str = "id, tenant_id, subject_id, collection, sealed, job_id, quality, created_at";

fn from_row(r: &Row<'_>) -> Result<FaceRow> {
    Ok(FaceRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        subject_id: r.get(2)?,
        collection: r.get(3)?,
        sealed: r.get(4)?,
        job_id: r.get(5)?,
        quality: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// Records that a face of `tenant_id` was added or removed.
fn changed(tx: &Tx<'_>, tenant_id: &str, face_id: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO face_events (tenant_id, face_id, at) VALUES (?1, ?2, ?3)",
        params![tenant_id, face_id, now],
    )?;
    Ok(())
}

/// Inserts a face (and its event).
pub fn insert(tx: &Tx<'_>, f: &FaceRow) -> Result<()> {
    tx.execute(
        &format!("INSERT INTO faces ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            f.id,
            f.tenant_id,
            f.subject_id,
            f.collection,
            f.sealed,
            f.job_id,
            f.quality,
            f.created_at
        ],
    )?;
    changed(tx, &f.tenant_id, &f.id, f.created_at)
}

/// One face of a tenant.
pub fn get(conn: &Conn<'_>, tenant_id: &str, id: &str) -> Result<Option<FaceRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM faces WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant_id, id],
        from_row,
    )
    .optional()
}

/// Faces of a tenant by id (those that exist), for naming search hits.
pub fn jobs_of(conn: &Conn<'_>, tenant_id: &str, ids: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for id in ids {
        let job: Option<Option<String>> = conn
            .query_row(
                "SELECT job_id FROM faces WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id, id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(Some(job)) = job {
            out.push(((*id).to_owned(), job));
        }
    }
    Ok(out)
}

/// Deletes a face of a tenant; whether it was there.
pub fn delete(tx: &Tx<'_>, tenant_id: &str, id: &str, now: i64) -> Result<bool> {
    let n = tx.execute(
        "DELETE FROM faces WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, id],
    )?;
    if n > 0 {
        changed(tx, tenant_id, id, now)?;
    }
    Ok(n > 0)
}

/// Faces a subject holds.
pub fn count_for_subject(conn: &Conn<'_>, tenant_id: &str, subject_id: &str) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM faces WHERE tenant_id = ?1 AND subject_id = ?2",
        params![tenant_id, subject_id],
        |r| r.get(0),
    )
}

/// Deletes every face of a subject and the selfie embeddings of its jobs; how many of each.
pub fn erase_subject(
    tx: &Tx<'_>,
    tenant_id: &str,
    subject_id: &str,
    now: i64,
) -> Result<(usize, usize)> {
    let ids: Vec<String> = tx.query_map(
        "SELECT id FROM faces WHERE tenant_id = ?1 AND subject_id = ?2",
        params![tenant_id, subject_id],
        |r| r.get(0),
    )?;
    for id in &ids {
        delete(tx, tenant_id, id, now)?;
    }
    let job_faces = tx.execute(
        "UPDATE jobs SET face = NULL WHERE tenant_id = ?1 AND subject_id = ?2 AND face IS NOT NULL",
        params![tenant_id, subject_id],
    )?;
    Ok((ids.len(), job_faces))
}

/// Up to `limit` faces with an id after `after` (every tenant's), in id order, each with its
/// subject's wrapped key (`None` once erased): the index is rebuilt from these at start.
pub fn page(conn: &Conn<'_>, after: &str, limit: i64) -> Result<Vec<(FaceRow, Option<Vec<u8>>)>> {
    conn.query_map(
        "SELECT f.id, f.tenant_id, f.subject_id, f.collection, f.sealed, f.job_id, f.quality,          f.created_at, s.wrapped_key FROM faces f          LEFT JOIN subjects s ON s.tenant_id = f.tenant_id AND s.id = f.subject_id          WHERE f.id > ?1 ORDER BY f.id LIMIT ?2",
        params![after, limit],
        |r| Ok((from_row(r)?, r.get(8)?)),
    )
}

/// The newest event's number (0 when none).
pub fn last_event(conn: &Conn<'_>) -> Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM face_events",
        params![],
        |r| r.get(0),
    )
}

/// A change to apply: the face as it is now, or `None` when it is gone.
pub type Change = (i64, String, String, Option<FaceRow>);

/// Up to `limit` events after `seq`, each with the face as the database holds it now.
pub fn changes_since(conn: &Conn<'_>, seq: i64, limit: i64) -> Result<Vec<Change>> {
    conn.query_map(
        "SELECT e.seq, e.tenant_id, e.face_id, f.id, f.tenant_id, f.subject_id, f.collection, \
         f.sealed, f.job_id, f.quality, f.created_at \
         FROM face_events e LEFT JOIN faces f ON f.tenant_id = e.tenant_id AND f.id = e.face_id \
         WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
        params![seq, limit],
        |r| {
            let id: Option<String> = r.get(3)?;
            let face = match id {
                Some(id) => Some(FaceRow {
                    id,
                    tenant_id: r.get(4)?,
                    subject_id: r.get(5)?,
                    collection: r.get(6)?,
                    sealed: r.get(7)?,
                    job_id: r.get(8)?,
                    quality: r.get(9)?,
                    created_at: r.get(10)?,
                }),
                None => None,
            };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, face))
        },
    )
}

/// Deletes events older than `before`; how many.
pub fn prune_events(tx: &Tx<'_>, before: i64) -> Result<usize> {
    tx.execute("DELETE FROM face_events WHERE at < ?1", params![before])
}

/// Keeps the sealed selfie embedding of a completed job.
pub fn set_job_face(tx: &Tx<'_>, job_id: &str, sealed: &[u8]) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET face = ?2 WHERE id = ?1",
        params![job_id, sealed],
    )?;
    Ok(())
}

/// A job's subject, decision (when finished) and sealed selfie embedding (when kept).
pub type JobFace = (String, Option<String>, Option<Vec<u8>>);

/// A job of the tenant: its subject, decision and sealed selfie embedding.
pub fn job_face(conn: &Conn<'_>, tenant_id: &str, job_id: &str) -> Result<Option<JobFace>> {
    conn.query_row(
        "SELECT subject_id, decision, face FROM jobs WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, job_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
}
