//! The tenant console's users, sessions and reviews.

use super::{params, Conn, Optional, Result, Row, Tx};

/// Whose accounts: a tenant's console users, or the operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// People of a tenant (`/console`).
    Tenant,
    /// The operator's people (`/admin`).
    Operator,
}

impl Realm {
    /// The users table and the sessions table. Both realms' tables have the same columns
    /// (an operator's `tenant_id` is always empty), so every statement serves both.
    pub fn tables(self) -> (&'static str, &'static str) {
        match self {
            Realm::Tenant => ("console_users", "console_sessions"),
            Realm::Operator => ("operators", "operator_sessions"),
        }
    }
}

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
    /// The TOTP secret, sealed (`None`: no second factor).
    pub totp_secret: Option<Vec<u8>>,
    /// The last 30-second step a code was accepted for.
    pub totp_last_step: Option<i64>,
}

const USER_COLUMNS: &str = "id, tenant_id, email, role, password_hash, status, failed_logins, \
                            locked_until, created_at, last_login_at, totp_secret, totp_last_step";

fn user(r: &Row<'_>) -> Result<UserRow> {
    user_at(r, 0)
}

/// A user read from the columns starting at `o`.
fn user_at(r: &Row<'_>, o: usize) -> Result<UserRow> {
    Ok(UserRow {
        id: r.get(o)?,
        tenant_id: r.get(o + 1)?,
        email: r.get(o + 2)?,
        role: r.get(o + 3)?,
        password_hash: r.get(o + 4)?,
        status: r.get(o + 5)?,
        failed_logins: r.get(o + 6)?,
        locked_until: r.get(o + 7)?,
        created_at: r.get(o + 8)?,
        last_login_at: r.get(o + 9)?,
        totp_secret: r.get(o + 10)?,
        totp_last_step: r.get(o + 11)?,
    })
}

/// Inserts a user.
pub fn insert_user(tx: &Tx<'_>, realm: Realm, u: &UserRow) -> Result<()> {
    let ut = realm.tables().0;
    tx.execute(
        &format!(
            "INSERT INTO {ut} ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
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
            u.last_login_at,
            u.totp_secret,
            u.totp_last_step
        ],
    )?;
    Ok(())
}

/// The user signing in as `email`.
pub fn user_by_email(conn: &Conn<'_>, realm: Realm, email: &str) -> Result<Option<UserRow>> {
    let ut = realm.tables().0;
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM {ut} WHERE email = ?1"),
        params![email],
        user,
    )
    .optional()
}

/// A tenant's users, by email.
pub fn users(conn: &Conn<'_>, realm: Realm, tenant_id: &str) -> Result<Vec<UserRow>> {
    let ut = realm.tables().0;
    conn.query_map(
        &format!("SELECT {USER_COLUMNS} FROM {ut} WHERE tenant_id = ?1 ORDER BY email"),
        params![tenant_id],
        user,
    )
}

/// Counts a wrong password; from the `lock_after`-th in a row the account is locked until
/// `now + lock_secs`. Returns the count.
pub fn login_failed(
    tx: &Tx<'_>,
    realm: Realm,
    id: &str,
    now: i64,
    lock_after: i64,
    lock_secs: i64,
) -> Result<i64> {
    let ut = realm.tables().0;
    tx.execute(
        &format!(
            "UPDATE {ut} SET failed_logins = failed_logins + 1, \
         locked_until = CASE WHEN failed_logins + 1 >= ?3 THEN ?2 ELSE locked_until END \
         WHERE id = ?1"
        ),
        params![id, now + lock_secs, lock_after],
    )?;
    tx.query_row(
        &format!("SELECT failed_logins FROM {ut} WHERE id = ?1"),
        params![id],
        |r| r.get(0),
    )
}

/// A successful sign-in: the failure count and lock are cleared.
pub fn login_succeeded(tx: &Tx<'_>, realm: Realm, id: &str, now: i64) -> Result<()> {
    let ut = realm.tables().0;
    tx.execute(
        &format!(
            "UPDATE {ut} SET failed_logins = 0, locked_until = NULL, last_login_at = ?2 \
         WHERE id = ?1"
        ),
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
    /// The password was right; the second factor is still to come.
    pub mfa_pending: bool,
}

/// Inserts a session.
pub fn insert_session(tx: &Tx<'_>, realm: Realm, s: &SessionRow) -> Result<()> {
    let st = realm.tables().1;
    tx.execute(
        &format!("INSERT INTO {st} (token_hash, user_id, csrf, created_at, last_seen, expires_at, mfa_pending) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![s.token_hash, s.user_id, s.csrf, s.created_at, s.last_seen, s.expires_at, i64::from(s.mfa_pending)],
    )?;
    Ok(())
}

/// The session with this cookie hash and its user.
pub fn session(
    conn: &Conn<'_>,
    realm: Realm,
    token_hash: &[u8],
) -> Result<Option<(SessionRow, UserRow)>> {
    let (ut, st) = realm.tables();
    conn.query_row(
        &format!(
            "SELECT s.token_hash, s.user_id, s.csrf, s.created_at, s.last_seen, s.expires_at, \
             s.mfa_pending, {} FROM {st} s JOIN {ut} u ON u.id = s.user_id \
             WHERE s.token_hash = ?1",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        params![token_hash],
        |r| {
            let mfa: i64 = r.get(6)?;
            let s = SessionRow {
                token_hash: r.get(0)?,
                user_id: r.get(1)?,
                csrf: r.get(2)?,
                created_at: r.get(3)?,
                last_seen: r.get(4)?,
                expires_at: r.get(5)?,
                mfa_pending: mfa != 0,
            };
            Ok((s, user_at(r, 7)?))
        },
    )
    .optional()
}

/// Records a request on the session.
pub fn touch_session(tx: &Tx<'_>, realm: Realm, token_hash: &[u8], now: i64) -> Result<()> {
    let st = realm.tables().1;
    tx.execute(
        &format!("UPDATE {st} SET last_seen = ?2 WHERE token_hash = ?1"),
        params![token_hash, now],
    )?;
    Ok(())
}

/// Sets when a session ends whatever happens.
pub fn extend_session(tx: &Tx<'_>, realm: Realm, token_hash: &[u8], expires_at: i64) -> Result<()> {
    let st = realm.tables().1;
    tx.execute(
        &format!("UPDATE {st} SET expires_at = ?2 WHERE token_hash = ?1"),
        params![token_hash, expires_at],
    )?;
    Ok(())
}

/// Ends a session.
pub fn delete_session(tx: &Tx<'_>, realm: Realm, token_hash: &[u8]) -> Result<()> {
    let st = realm.tables().1;
    tx.execute(
        &format!("DELETE FROM {st} WHERE token_hash = ?1"),
        params![token_hash],
    )?;
    Ok(())
}

/// Deletes sessions past their absolute expiry or idle since `idle_before`.
pub fn delete_stale_sessions(
    tx: &Tx<'_>,
    realm: Realm,
    now: i64,
    idle_before: i64,
) -> Result<usize> {
    let st = realm.tables().1;
    tx.execute(
        &format!("DELETE FROM {st} WHERE expires_at <= ?1 OR last_seen < ?2"),
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

/// What the verifications list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// `queued`, `running`, `completed`, `failed`.
    pub status: Option<String>,
    /// `accepted`, `review`, `rejected`.
    pub decision: Option<String>,
    /// Created at or after (Unix seconds).
    pub from: Option<i64>,
    /// Created before (Unix seconds).
    pub to: Option<i64>,
    /// The client's reference, exactly.
    pub reference: Option<String>,
}

/// A tenant's jobs matching `f`, newest first.
pub fn search_jobs(
    conn: &Conn<'_>,
    tenant_id: &str,
    f: &JobFilter,
    limit: i64,
) -> Result<Vec<super::jobs::JobRow>> {
    conn.query_map(
        &format!(
            "SELECT {} FROM jobs WHERE tenant_id = ?1 AND (status = ?2 OR ?2 IS NULL) \
             AND (decision = ?3 OR ?3 IS NULL) AND (created_at >= ?4 OR ?4 IS NULL) \
             AND (created_at < ?5 OR ?5 IS NULL) AND (reference = ?6 OR ?6 IS NULL) \
             ORDER BY created_at DESC, id DESC LIMIT ?7",
            super::jobs::COLUMNS
        ),
        params![
            tenant_id,
            f.status,
            f.decision,
            f.from,
            f.to,
            f.reference,
            limit
        ],
        super::jobs::row,
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

/// Milliseconds from claim to result of a tenant's jobs finished in `[from, to)` (at most
/// `limit`, the latest).
pub fn run_ms(
    conn: &Conn<'_>,
    tenant_id: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<i64>> {
    conn.query_map(
        "SELECT run_ms FROM jobs WHERE tenant_id = ?1 \
         AND finished_at >= ?2 AND finished_at < ?3 AND run_ms IS NOT NULL \
         ORDER BY finished_at DESC LIMIT ?4",
        params![tenant_id, from, to, limit],
        |r| r.get(0),
    )
}

/// A tenant's jobs created in `[from, from + n·width)`, counted per bucket of `width` seconds
/// and outcome (the decision of a completed job, else its status): `(bucket, outcome, count)`.
pub fn job_histogram(
    conn: &Conn<'_>,
    tenant_id: &str,
    from: i64,
    width: i64,
    n: i64,
) -> Result<Vec<(i64, String, i64)>> {
    conn.query_map(
        "SELECT (created_at - ?2) / ?3 AS bucket, COALESCE(decision, status) AS outcome, COUNT(*) \
         FROM jobs WHERE tenant_id = ?1 AND created_at >= ?2 AND created_at < ?4 \
         GROUP BY bucket, outcome",
        params![tenant_id, from, width, from + n * width],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Stores a user's sealed TOTP secret (`None` removes the second factor); whether the user
/// exists.
pub fn set_totp(
    tx: &Tx<'_>,
    realm: Realm,
    tenant_id: &str,
    id: &str,
    sealed: Option<&[u8]>,
) -> Result<bool> {
    let ut = realm.tables().0;
    let n = tx.execute(
        &format!(
            "UPDATE {ut} SET totp_secret = ?3, totp_last_step = NULL \
         WHERE tenant_id = ?1 AND id = ?2"
        ),
        params![tenant_id, id, sealed],
    )?;
    Ok(n == 1)
}

/// Takes the TOTP step `step` for a user: `false` when a code of that step (or a later one) was
/// accepted already, so each code is good once.
pub fn take_totp_step(tx: &Tx<'_>, realm: Realm, id: &str, step: i64) -> Result<bool> {
    let ut = realm.tables().0;
    let n = tx.execute(
        &format!(
            "UPDATE {ut} SET totp_last_step = ?2 \
         WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)"
        ),
        params![id, step],
    )?;
    Ok(n == 1)
}

/// Turns a pending session into a full one under a new cookie hash (the second factor was
/// given); whether it was pending.
pub fn complete_mfa(
    tx: &Tx<'_>,
    realm: Realm,
    old_hash: &[u8],
    new_hash: &[u8],
    now: i64,
) -> Result<bool> {
    let st = realm.tables().1;
    let n = tx.execute(
        &format!(
            "UPDATE {st} SET token_hash = ?2, mfa_pending = 0, last_seen = ?3 \
         WHERE token_hash = ?1 AND mfa_pending = 1"
        ),
        params![old_hash, new_hash, now],
    )?;
    Ok(n == 1)
}

/// Sets a user's status (`active`, `disabled`); whether the user exists. Disabling ends their
/// sessions.
pub fn set_user_status(
    tx: &Tx<'_>,
    realm: Realm,
    tenant_id: &str,
    id: &str,
    status: &str,
) -> Result<bool> {
    let (ut, st) = realm.tables();
    let n = tx.execute(
        &format!("UPDATE {ut} SET status = ?3 WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant_id, id, status],
    )?;
    if status != "active" {
        tx.execute(&format!("DELETE FROM {st} WHERE user_id = ?1"), params![id])?;
    }
    Ok(n == 1)
}

/// Replaces a user's password hash, clears a lock and ends their sessions; whether the user
/// exists.
pub fn set_password(
    tx: &Tx<'_>,
    realm: Realm,
    tenant_id: &str,
    id: &str,
    hash: &str,
) -> Result<bool> {
    let (ut, st) = realm.tables();
    let n = tx.execute(
        &format!(
            "UPDATE {ut} SET password_hash = ?3, failed_logins = 0, locked_until = NULL \
         WHERE tenant_id = ?1 AND id = ?2"
        ),
        params![tenant_id, id, hash],
    )?;
    tx.execute(&format!("DELETE FROM {st} WHERE user_id = ?1"), params![id])?;
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
