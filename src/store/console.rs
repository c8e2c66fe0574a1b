//! The tenant console's users, sessions and reviews.

use super::{params, Conn, Optional, Result, Row, Tx};

/// A console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// `usr_…`.
    pub id: String,
    /// The tenant whose console this is.
    pub tenant_id: String,
    /// Sign-in name (lower case).
    pub email: String,
    /// `owner`, `admin`, `reviewer` or `viewer`.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `active` or `disabled`.
    pub status: String,
    /// Wrong passwords since the last success.
    pub failed_logins: i64,
    /// Unix seconds until which sign-in is refused.
    pub locked_until: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last sign-in.
    pub last_login_at: Option<i64>,
}

const USER_COLUMNS: &str = "id, tenant_id, email, role, password_hash, status, failed_logins, \
                            locked_until, created_at, last_login_at";

fn user(r: &Row<'_>) -> Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        email: r.get(2)?,
        role: r.get(3)?,
        password_hash: r.get(4)?,
        status: r.get(5)?,
        failed_logins: r.get(6)?,
        locked_until: r.get(7)?,
        created_at: r.get(8)?,
        last_login_at: r.get(9)?,
    })
}

/// Inserts a user.
pub fn insert_user(tx: &Tx<'_>, u: &UserRow) -> Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO console_users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            u.id,
            u.tenant_id,
            u.email,
            u.role,
            u.password_hash,
            u.status,
            u.failed_logins,
            u.locked_until,
            u.created_at,
            u.last_login_at
        ],
    )?;
    Ok(())
}

/// The user signing in as `email`.
pub fn user_by_email(conn: &Conn<'_>, email: &str) -> Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM console_users WHERE email = ?1"),
        params![email],
        user,
    )
    .optional()
}

/// A tenant's users, by email.
pub fn users(conn: &Conn<'_>, tenant_id: &str) -> Result<Vec<UserRow>> {
    conn.query_map(
        &format!("SELECT {USER_COLUMNS} FROM console_users WHERE tenant_id = ?1 ORDER BY email"),
        params![tenant_id],
        user,
    )
}

/// Counts a wrong password; from the `lock_after`-th in a row the account is locked until
/// `now + lock_secs`. Returns the count.
pub fn login_failed(
    tx: &Tx<'_>,
    id: &str,
    now: i64,
    lock_after: i64,
    lock_secs: i64,
) -> Result<i64> {
    tx.execute(
        "UPDATE console_users SET failed_logins = failed_logins + 1, \
         locked_until = CASE WHEN failed_logins + 1 >= ?3 THEN ?2 ELSE locked_until END \
         WHERE id = ?1",
        params![id, now + lock_secs, lock_after],
    )?;
    tx.query_row(
        "SELECT failed_logins FROM console_users WHERE id = ?1",
        params![id],
        |r| r.get(0),
    )
}

/// A successful sign-in: the failure count and lock are cleared.
pub fn login_succeeded(tx: &Tx<'_>, id: &str, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE console_users SET failed_logins = 0, locked_until = NULL, last_login_at = ?2 \
         WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the cookie.
    pub token_hash: Vec<u8>,
    /// Its user.
    pub user_id: String,
    /// The token every change must carry.
    pub csrf: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request.
    pub last_seen: i64,
    /// Unix seconds after which it is over whatever happens (absolute expiry).
    pub expires_at: i64,
}

/// Inserts a session.
pub fn insert_session(tx: &Tx<'_>, s: &SessionRow) -> Result<()> {
    tx.execute(
        "INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, last_seen, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![s.token_hash, s.user_id, s.csrf, s.created_at, s.last_seen, s.expires_at],
    )?;
    Ok(())
}

/// The session with this cookie hash and its user.
pub fn session(conn: &Conn<'_>, token_hash: &[u8]) -> Result<Option<(SessionRow, UserRow)>> {
    conn.query_row(
        &format!(
            "SELECT s.token_hash, s.user_id, s.csrf, s.created_at, s.last_seen, s.expires_at, {} \
             FROM console_sessions s JOIN console_users u ON u.id = s.user_id \
             WHERE s.token_hash = ?1",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        params![token_hash],
        |r| {
            let s = SessionRow {
                token_hash: r.get(0)?,
                user_id: r.get(1)?,
                csrf: r.get(2)?,
                created_at: r.get(3)?,
                last_seen: r.get(4)?,
                expires_at: r.get(5)?,
            };
            let u = UserRow {
                id: r.get(6)?,
                tenant_id: r.get(7)?,
                email: r.get(8)?,
                role: r.get(9)?,
                password_hash: r.get(10)?,
                status: r.get(11)?,
                failed_logins: r.get(12)?,
                locked_until: r.get(13)?,
                created_at: r.get(14)?,
                last_login_at: r.get(15)?,
            };
            Ok((s, u))
        },
    )
    .optional()
}

/// Records a request on the session.
pub fn touch_session(tx: &Tx<'_>, token_hash: &[u8], now: i64) -> Result<()> {
    tx.execute(
        "UPDATE console_sessions SET last_seen = ?2 WHERE token_hash = ?1",
        params![token_hash, now],
    )?;
    Ok(())
}

/// Ends a session.
pub fn delete_session(tx: &Tx<'_>, token_hash: &[u8]) -> Result<()> {
    tx.execute(
        "DELETE FROM console_sessions WHERE token_hash = ?1",
        params![token_hash],
    )?;
    Ok(())
}

/// Deletes sessions past their absolute expiry or idle since `idle_before`.
pub fn delete_stale_sessions(tx: &Tx<'_>, now: i64, idle_before: i64) -> Result<usize> {
    tx.execute(
        "DELETE FROM console_sessions WHERE expires_at <= ?1 OR last_seen < ?2",
        params![now, idle_before],
    )
}

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewRow {
    /// The job.
    pub job_id: String,
    /// `approved` or `rejected`.
    pub outcome: String,
    /// The reviewer's email.
    pub reviewer: String,
    /// Why.
    pub comment: String,
    /// Unix seconds.
    pub at: i64,
}

/// Records a review; `false` when the job was reviewed already.
#[allow(clippy::too_many_arguments)]
pub fn insert_review(
    tx: &Tx<'_>,
    tenant_id: &str,
    job_id: &str,
    user_id: &str,
    reviewer: &str,
    outcome: &str,
    comment: &str,
    now: i64,
) -> Result<bool> {
    let n = tx.execute(
        "INSERT INTO job_reviews (job_id, tenant_id, user_id, reviewer, outcome, comment, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (job_id) DO NOTHING",
        params![job_id, tenant_id, user_id, reviewer, outcome, comment, now],
    )?;
    Ok(n == 1)
}

/// The review of a tenant's job, if any.
pub fn review(conn: &Conn<'_>, tenant_id: &str, job_id: &str) -> Result<Option<ReviewRow>> {
    conn.query_row(
        "SELECT job_id, outcome, reviewer, comment, at FROM job_reviews \
         WHERE tenant_id = ?1 AND job_id = ?2",
        params![tenant_id, job_id],
        |r| {
            Ok(ReviewRow {
                job_id: r.get(0)?,
                outcome: r.get(1)?,
                reviewer: r.get(2)?,
                comment: r.get(3)?,
                at: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Sets the final decision of a completed job in review; whether it was one.
pub fn decide(tx: &Tx<'_>, tenant_id: &str, job_id: &str, decision: &str) -> Result<bool> {
    let n = tx.execute(
        "UPDATE jobs SET decision = ?3 WHERE tenant_id = ?1 AND id = ?2 \
         AND status = 'completed' AND decision = 'review'",
        params![tenant_id, job_id, decision],
    )?;
    Ok(n == 1)
}

/// A tenant's jobs waiting for a person, oldest first.
pub fn review_queue(
    conn: &Conn<'_>,
    tenant_id: &str,
    limit: i64,
) -> Result<Vec<(String, i64, Option<i64>)>> {
    conn.query_map(
        "SELECT id, created_at, score FROM jobs WHERE tenant_id = ?1 AND status = 'completed' \
         AND decision = 'review' ORDER BY created_at, id LIMIT ?2",
        params![tenant_id, limit],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// A tenant's jobs created in `[from, to)`, counted by status and decision.
pub fn job_counts(
    conn: &Conn<'_>,
    tenant_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(String, Option<String>, i64)>> {
    conn.query_map(
        "SELECT status, decision, COUNT(*) FROM jobs WHERE tenant_id = ?1 \
         AND created_at >= ?2 AND created_at < ?3 GROUP BY status, decision",
        params![tenant_id, from, to],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Seconds from claim to result of a tenant's jobs finished in `[from, to)` (at most `limit`,
/// the latest).
pub fn run_seconds(
    conn: &Conn<'_>,
    tenant_id: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<i64>> {
    conn.query_map(
        "SELECT finished_at - started_at FROM jobs WHERE tenant_id = ?1 \
         AND finished_at >= ?2 AND finished_at < ?3 AND started_at IS NOT NULL \
         ORDER BY finished_at DESC LIMIT ?4",
        params![tenant_id, from, to, limit],
        |r| r.get(0),
    )
}

/// Sets a user's status (`active`, `disabled`); whether the user exists. Disabling ends their
/// sessions.
pub fn set_user_status(tx: &Tx<'_>, tenant_id: &str, id: &str, status: &str) -> Result<bool> {
    let n = tx.execute(
        "UPDATE console_users SET status = ?3 WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, id, status],
    )?;
    if status != "active" {
        tx.execute(
            "DELETE FROM console_sessions WHERE user_id = ?1",
            params![id],
        )?;
    }
    Ok(n == 1)
}

/// Replaces a user's password hash, clears a lock and ends their sessions; whether the user
/// exists.
pub fn set_password(tx: &Tx<'_>, tenant_id: &str, id: &str, hash: &str) -> Result<bool> {
    let n = tx.execute(
        "UPDATE console_users SET password_hash = ?3, failed_logins = 0, locked_until = NULL \
         WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, id, hash],
    )?;
    tx.execute(
        "DELETE FROM console_sessions WHERE user_id = ?1",
        params![id],
    )?;
    Ok(n == 1)
}

/// How many of a tenant's jobs wait for a person.
pub fn review_count(conn: &Conn<'_>, tenant_id: &str) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE tenant_id = ?1 AND status = 'completed' \
         AND decision = 'review'",
        params![tenant_id],
        |r| r.get(0),
    )
}
