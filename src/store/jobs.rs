//! Verification jobs: queued by `POST /v1/kyc/verify`, claimed by workers, completed exactly
//! once. A job left `running` by a crash is queued again at start-up (at-least-once execution);
//! completion only moves a `running` job, in one transaction with its usage rows, so a result and
//! its bill are written once however often the job ran.

use super::{params, Conn, Optional, Result, Row, Tx};

/// A job as stored (its input and result are sealed; see the workflow module).
#[derive(Debug, Clone)]
pub struct JobRow {
    /// `job_…`.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The key that submitted it.
    pub key_id: Option<String>,
    /// The submitting request's id.
    pub request_id: String,
    /// Whose data it holds (the client's `reference` when usable, else the job id).
    pub subject_id: String,
    /// The client's reference.
    pub reference: Option<String>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Where to POST the result, besides the tenant's webhooks.
    pub callback_url: Option<String>,
    /// `queued`, `running`, `completed` or `failed`.
    pub status: String,
    /// Times a worker took it.
    pub attempts: i64,
    /// 0–100 once completed.
    pub score: Option<i64>,
    /// `accepted`, `review` or `rejected` once completed.
    pub decision: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Sealed result JSON.
    pub result: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
    /// When a worker last took it.
    pub started_at: Option<i64>,
    /// When it completed or failed.
    pub finished_at: Option<i64>,
    /// Submitted with a sandbox key.
    pub sandbox: bool,
}

pub(super) const COLUMNS: &str = "id, tenant_id, key_id, request_id, subject_id, reference, idempotency_key, \
    callback_url, status, attempts, score, decision, error, result, created_at, started_at, finished_at, \
    sandbox";

pub(super) fn row(r: &Row<'_>) -> Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        key_id: r.get(2)?,
        request_id: r.get(3)?,
        subject_id: r.get(4)?,
        reference: r.get(5)?,
        idempotency_key: r.get(6)?,
        callback_url: r.get(7)?,
        status: r.get(8)?,
        attempts: r.get(9)?,
        score: r.get(10)?,
        decision: r.get(11)?,
        error: r.get(12)?,
        result: r.get(13)?,
        created_at: r.get(14)?,
        started_at: r.get(15)?,
        finished_at: r.get(16)?,
        sandbox: r.get(17)?,
    })
}

/// The tenant's job with this idempotency key, if any.
pub fn by_idempotency_key(tx: &Conn<'_>, tenant_id: &str, key: &str) -> Result<Option<JobRow>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1 AND idempotency_key = ?2"),
        params![tenant_id, key],
        row,
    )
    .optional()
}

/// Queues a new job with its sealed input.
pub fn insert(tx: &Tx<'_>, job: &JobRow, sealed_input: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO jobs (id, tenant_id, key_id, request_id, subject_id, reference, idempotency_key, \
         callback_url, status, attempts, created_at, sandbox) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', 0, ?9, ?10)",
        params![
            job.id,
            job.tenant_id,
            job.key_id,
            job.request_id,
            job.subject_id,
            job.reference,
            job.idempotency_key,
            job.callback_url,
            job.created_at,
            job.sandbox
        ],
    )?;
    tx.execute(
        "INSERT INTO job_inputs (job_id, sealed) VALUES (?1, ?2)",
        params![job.id, sealed_input],
    )?;
    Ok(())
}

/// A tenant's job.
pub fn get(conn: &Conn<'_>, tenant_id: &str, id: &str) -> Result<Option<JobRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant_id, id],
        row,
    )
    .optional()
}

/// A tenant's jobs (only those `key_id` submitted, when given), newest first, optionally of one
/// status, after the `(created_at, id)` cursor.
pub fn list(
    conn: &Conn<'_>,
    tenant_id: &str,
    key_id: Option<&str>,
    status: Option<&str>,
    before: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<JobRow>> {
    let (at, id) = before.unzip();
    let rows = conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM jobs WHERE tenant_id = ?1 AND (status = ?2 OR ?2 IS NULL) \
         AND ((created_at, id) < (?3, ?4) OR ?3 IS NULL) AND (key_id = ?6 OR ?6 IS NULL) \
         ORDER BY created_at DESC, id DESC LIMIT ?5"
        ),
        params![tenant_id, status, at, id, limit, key_id],
        row,
    )?;
    Ok(rows)
}

/// Takes the next job, fairly across tenants: among tenants with queued jobs, the one with the
/// fewest running, then the one served longest ago, then the oldest queue; that tenant's oldest
/// job is marked running by `node` until `lease_until` and returned with its sealed input. One
/// tenant's backlog of hundreds therefore delays another tenant's job by at most one job per
/// worker. Jobs whose node let its lease run out (it died) are queued again first. Claims are
/// exclusive because every write transaction is serialised (SQLite's one writer; PostgreSQL's
/// cluster-wide advisory lock), so no row lock is needed.
pub fn claim_next(
    tx: &Tx<'_>,
    now: i64,
    node: &str,
    lease_until: i64,
) -> Result<Option<(JobRow, Vec<u8>)>> {
    let lapsed = tx.execute(
        "UPDATE jobs SET status = 'queued', claimed_by = NULL, lease_until = NULL \
         WHERE status = 'running' AND lease_until < ?1",
        params![now],
    )?;
    if lapsed > 0 {
        tracing::warn!(
            jobs = lapsed,
            "jobs whose node stopped renewing its lease queued again"
        );
    }
    let Some(id): Option<String> = tx
        .query_row(
            "WITH queued AS (SELECT tenant_id, MIN(created_at) AS oldest FROM jobs \
               WHERE status = 'queued' GROUP BY tenant_id), \
             pick AS (SELECT q.tenant_id FROM queued q ORDER BY \
               (SELECT COUNT(*) FROM jobs r WHERE r.tenant_id = q.tenant_id AND r.status = 'running'), \
               COALESCE((SELECT MAX(s.started_at) FROM jobs s WHERE s.tenant_id = q.tenant_id), 0), \
               q.oldest, q.tenant_id LIMIT 1) \
             SELECT id FROM jobs WHERE status = 'queued' AND tenant_id = (SELECT tenant_id FROM pick) \
             ORDER BY created_at, id LIMIT 1",
            params![],
            |r| r.get(0),
        )
        .optional()?
    else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?2, \
         claimed_by = ?3, lease_until = ?4, started_ms = ?5 WHERE id = ?1",
        params![id, now, node, lease_until, super::now_ms()],
    )?;
    let job = tx.query_row(
        &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
        params![id],
        row,
    )?;
    let input: Option<Vec<u8>> = tx
        .query_row(
            "SELECT sealed FROM job_inputs WHERE job_id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    match input {
        Some(input) => Ok(Some((job, input))),
        None => {
            // Its input is gone (its subject was erased): it can only fail, and must not stand
            // at the head of the queue.
            fail(
                tx,
                &id,
                node,
                "the job's input is gone (its subject was erased)",
                now,
            )?;
            claim_next(tx, now, node, lease_until)
        }
    }
}

/// Queues again the jobs `node` left running when it stopped (and any claimed before leases
/// existed); returns how many. Other nodes' jobs are theirs until their leases run out.
pub fn requeue_own(tx: &Tx<'_>, node: &str) -> Result<usize> {
    tx.execute(
        "UPDATE jobs SET status = 'queued', claimed_by = NULL, lease_until = NULL \
         WHERE status = 'running' AND (claimed_by = ?1 OR claimed_by IS NULL)",
        params![node],
    )
}

/// Extends `node`'s lease on a running job; `false` when the job is no longer its own (its
/// lease ran out and another node took it, or it ended).
pub fn renew_lease(tx: &Tx<'_>, id: &str, node: &str, lease_until: i64) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'",
        params![id, node, lease_until],
    )? == 1)
}

/// Records the result of a job `node` runs and drops its input; `false` (and nothing written)
/// when the job is no longer running there, so a result is stored once.
pub fn complete(
    tx: &Tx<'_>,
    id: &str,
    node: &str,
    score: i64,
    decision: &str,
    sealed_result: &[u8],
    now: i64,
) -> Result<bool> {
    let changed = tx.execute(
        "UPDATE jobs SET status = 'completed', score = ?2, decision = ?3, result = ?4, finished_at = ?5, \
         lease_until = NULL, run_ms = ?7 - started_ms \
         WHERE id = ?1 AND status = 'running' AND claimed_by = ?6",
        params![id, score, decision, sealed_result, now, node, super::now_ms()],
    )?;
    if changed == 1 {
        tx.execute("DELETE FROM job_inputs WHERE job_id = ?1", params![id])?;
        super::quota::release_job(tx, id)?;
    }
    Ok(changed == 1)
}

/// Marks a job `node` runs failed (its input could not be processed at all); `false` when it
/// was not running there.
pub fn fail(tx: &Tx<'_>, id: &str, node: &str, error: &str, now: i64) -> Result<bool> {
    let changed = tx.execute(
        "UPDATE jobs SET status = 'failed', error = ?2, finished_at = ?3, lease_until = NULL, \
         run_ms = ?5 - started_ms WHERE id = ?1 AND status = 'running' AND claimed_by = ?4",
        params![id, error, now, node, super::now_ms()],
    )?;
    if changed == 1 {
        tx.execute("DELETE FROM job_inputs WHERE job_id = ?1", params![id])?;
        super::quota::release_job(tx, id)?;
    }
    Ok(changed == 1)
}

/// Jobs waiting, and the age in seconds of the oldest.
pub fn queue_depth(conn: &Conn<'_>, now: i64) -> Result<(i64, i64)> {
    conn.query_row(
        "SELECT COUNT(*), COALESCE(?1 - MIN(created_at), 0) FROM jobs WHERE status = 'queued'",
        params![now],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A tenant's stored workflow configuration (JSON), if set.
pub fn workflow_config(conn: &Conn<'_>, tenant_id: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT config FROM workflow_configs WHERE tenant_id = ?1",
        params![tenant_id],
        |r| r.get(0),
    )
    .optional()
}

/// Stores a tenant's workflow configuration (already validated).
pub fn set_workflow_config(tx: &Tx<'_>, tenant_id: &str, json: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO workflow_configs (tenant_id, config, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(tenant_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
        params![tenant_id, json, now],
    )?;
    Ok(())
}

/// Counts by a status column.
pub type StatusCounts = Vec<(String, i64)>;

/// Jobs by status and the creation time of the oldest queued one, for `/metrics`.
pub fn queue_stats(conn: &Conn<'_>) -> Result<(StatusCounts, Option<i64>)> {
    let counts = conn.query_map(
        "SELECT status, COUNT(*) FROM jobs GROUP BY status",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let oldest = conn.query_row(
        "SELECT MIN(created_at) FROM jobs WHERE status = 'queued'",
        params![],
        |r| r.get(0),
    )?;
    Ok((counts, oldest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn job(id: &str, tenant: &str, at: i64) -> JobRow {
        JobRow {
            id: id.into(),
            tenant_id: tenant.into(),
            key_id: None,
            request_id: "req".into(),
            subject_id: id.into(),
            reference: None,
            idempotency_key: None,
            callback_url: None,
            status: "queued".into(),
            attempts: 0,
            score: None,
            decision: None,
            error: None,
            result: None,
            created_at: at,
            started_at: None,
            finished_at: None,
            sandbox: false,
        }
    }

    #[test]
    fn claims_go_round_the_tenants_and_a_job_without_input_fails_instead_of_blocking() {
        let (_dir, store) = test_store();
        let busy = crate::tenancy::create_tenant(&store, "Busy", "pro", "t")
            .unwrap()
            .id;
        let other = crate::tenancy::create_tenant(&store, "Other", "pro", "t")
            .unwrap()
            .id;
        store
            .write(|tx| {
                for i in 0..5 {
                    insert(tx, &job(&format!("job_b{i}"), &busy, 100 + i), b"x")?;
                }
                insert(tx, &job("job_o0", &other, 200), b"x")?;
                // A job whose input an erasure deleted, at the head of the queue.
                insert(tx, &job("job_a_orphan", &busy, 1), b"x")?;
                tx.execute(
                    "DELETE FROM job_inputs WHERE job_id = 'job_a_orphan'",
                    params![],
                )?;
                Ok(())
            })
            .unwrap();
        let claim = |now| {
            store
                .write(|tx| claim_next(tx, now, "node-a", now + 60))
                .unwrap()
                .map(|(j, _)| j.id)
        };
        // The orphan (the busy tenant's turn) fails; the other tenant's job, though the newest,
        // goes next; then the busy tenant's oldest; then, with one running each, the tenant
        // served longest ago.
        assert_eq!(claim(1000).as_deref(), Some("job_o0"));
        assert_eq!(claim(1001).as_deref(), Some("job_b0"));
        assert_eq!(claim(1002).as_deref(), Some("job_b1"));
        let orphan = store
            .read(|c| get(c, &busy, "job_a_orphan"))
            .unwrap()
            .unwrap();
        assert_eq!(orphan.status, "failed");
    }

    #[test]
    fn a_lapsed_lease_passes_the_job_to_another_node_and_only_the_holder_ends_it() {
        let (_dir, store) = test_store();
        let t = crate::tenancy::create_tenant(&store, "T", "pro", "t")
            .unwrap()
            .id;
        store
            .write(|tx| insert(tx, &job("job_1", &t, 100), b"x"))
            .unwrap();
        let claim = |node: &str, now: i64| {
            store
                .write(|tx| claim_next(tx, now, node, now + 60))
                .unwrap()
                .map(|(j, _)| (j.id, j.attempts))
        };
        assert_eq!(claim("a", 1000), Some(("job_1".into(), 1)));
        assert_eq!(claim("b", 1010), None, "a holds it");
        assert!(store
            .write(|tx| renew_lease(tx, "job_1", "a", 1090))
            .unwrap());
        assert_eq!(claim("b", 1080), None, "renewed");
        // a stops renewing (it died): after the lease, b takes it.
        assert_eq!(claim("b", 1091), Some(("job_1".into(), 2)));
        assert!(!store
            .write(|tx| renew_lease(tx, "job_1", "a", 1200))
            .unwrap());
        let done = |node: &str| {
            store
                .write(|tx| complete(tx, "job_1", node, 90, "approved", b"r", 1100))
                .unwrap()
        };
        assert!(!done("a"), "a's late result is refused");
        assert!(done("b"));
        assert!(!done("b"), "once");
        // A restarted node queues again only what it held itself.
        store
            .write(|tx| insert(tx, &job("job_2", &t, 200), b"x"))
            .unwrap();
        assert_eq!(claim("c", 1200).map(|j| j.0), Some("job_2".into()));
        assert_eq!(store.write(|tx| requeue_own(tx, "a")).unwrap(), 0);
        assert_eq!(store.write(|tx| requeue_own(tx, "c")).unwrap(), 1);
    }
}
