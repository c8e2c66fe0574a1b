//! Units held under hard quotas while work runs (`quota_holds`), so every node judges a quota on
//! the same count: the committed counter plus the holds not yet lapsed.

use super::{params, Conn, Result, Tx};

/// A hold that outlives every request: a queued job's, released when the job ends.
pub const UNTIL_RELEASED: i64 = i64::MAX / 2;

/// Holds of one counter in `period` still in force at `now`, after deleting the lapsed ones.
pub fn in_force(
    tx: &Tx<'_>,
    tenant_id: &str,
    counter: &str,
    period: &str,
    now: i64,
) -> Result<i64> {
    tx.execute(
        "DELETE FROM quota_holds WHERE tenant_id = ?1 AND counter = ?2 AND period = ?3 AND expires_at <= ?4",
        params![tenant_id, counter, period, now],
    )?;
    held(tx, tenant_id, counter, period)
}

/// Holds of one counter in `period`.
pub fn held(conn: &Conn<'_>, tenant_id: &str, counter: &str, period: &str) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM quota_holds WHERE tenant_id = ?1 AND counter = ?2 AND period = ?3",
        params![tenant_id, counter, period],
        |r| r.get(0),
    )
}

/// Holds one unit until `expires_at`.
pub fn hold(
    tx: &Tx<'_>,
    id: &str,
    tenant_id: &str,
    counter: &str,
    period: &str,
    expires_at: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO quota_holds (id, tenant_id, counter, period, job_id, expires_at) VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        params![id, tenant_id, counter, period, expires_at],
    )?;
    Ok(())
}

/// Releases holds by id; how many there were.
pub fn release(tx: &Tx<'_>, ids: &[String]) -> Result<usize> {
    let mut n = 0;
    for id in ids {
        n += tx.execute("DELETE FROM quota_holds WHERE id = ?1", params![id])?;
    }
    Ok(n)
}

/// Hands holds to a queued job: they last until [`release_job`].
pub fn bind_to_job(tx: &Tx<'_>, ids: &[String], job_id: &str) -> Result<()> {
    for id in ids {
        tx.execute(
            "UPDATE quota_holds SET job_id = ?2, expires_at = ?3 WHERE id = ?1",
            params![id, job_id, UNTIL_RELEASED],
        )?;
    }
    Ok(())
}

/// Releases a job's holds (it ended); how many there were.
pub fn release_job(tx: &Tx<'_>, job_id: &str) -> Result<usize> {
    tx.execute("DELETE FROM quota_holds WHERE job_id = ?1", params![job_id])
}
