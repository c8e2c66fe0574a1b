//! Per-request state several nodes share through the database, each a single statement whose
//! outcome a row constraint decides (run through [`super::Store::autocommit`], outside the
//! serialised writers): the replay memory and the GCRA rate buckets.

use super::{params, Conn, Optional, Result};

/// Records a signature's fingerprint until `expires`; `false` when it is already there and not
/// yet expired at `now` (a replay).
pub fn first_use(conn: &Conn<'_>, fp: &[u8], expires: i64, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO replay_seen (fp, expires) VALUES (?1, ?2) \
         ON CONFLICT (fp) DO UPDATE SET expires = ?2 WHERE replay_seen.expires < ?3",
        params![fp, expires, now],
    )? == 1)
}

/// Forgets fingerprints expired before `now`; how many.
pub fn forget_replays(conn: &Conn<'_>, now: i64) -> Result<usize> {
    conn.execute("DELETE FROM replay_seen WHERE expires < ?1", params![now])
}

/// One GCRA step on bucket `(key_id, bucket)` at `now_ms`: takes a cell unless the bucket's
/// theoretical arrival time is more than `tolerance` ms ahead. `Ok(new tat)` when taken,
/// `Err(current tat)` when refused.
pub fn take_cell(
    conn: &Conn<'_>,
    key_id: &str,
    bucket: &str,
    now_ms: i64,
    interval: i64,
    tolerance: i64,
) -> Result<std::result::Result<i64, i64>> {
    let taken: Option<i64> = conn
        .query_row(
            "INSERT INTO rate_buckets (key_id, bucket, tat_ms) VALUES (?1, ?2, CAST(?3 AS BIGINT) + CAST(?4 AS BIGINT)) \
             ON CONFLICT (key_id, bucket) DO UPDATE SET tat_ms = \
               (CASE WHEN rate_buckets.tat_ms > ?3 THEN rate_buckets.tat_ms ELSE ?3 END) + ?4 \
             WHERE (CASE WHEN rate_buckets.tat_ms > ?3 THEN rate_buckets.tat_ms ELSE ?3 END) - ?3 <= CAST(?5 AS BIGINT) \
             RETURNING tat_ms",
            params![key_id, bucket, now_ms, interval, tolerance],
            |r| r.get(0),
        )
        .optional()?;
    match taken {
        Some(tat) => Ok(Ok(tat)),
        None => Ok(Err(conn.query_row(
            "SELECT tat_ms FROM rate_buckets WHERE key_id = ?1 AND bucket = ?2",
            params![key_id, bucket],
            |r| r.get(0),
        )?)),
    }
}

/// Deletes a key's buckets.
pub fn forget_buckets(conn: &Conn<'_>, key_id: &str) -> Result<usize> {
    conn.execute(
        "DELETE FROM rate_buckets WHERE key_id = ?1",
        params![key_id],
    )
}
