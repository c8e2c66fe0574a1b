//! Versioned schema migrations, embedded in the binary and applied in order at open.
//!
//! Each engine has its own list. On SQLite the applied version is `user_version`; on PostgreSQL
//! it is the one row of `kycd_schema`, changed under a session advisory lock so nodes starting
//! together migrate once. A migration is never edited once released; changes go in a new file
//! (on both lists). A database newer than this binary is refused rather than guessed at.

use rusqlite::Connection;

use super::{Result, StoreError};

/// Every migration, in order; index + 1 is its version.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_media.sql"),
    include_str!("migrations/0003_face_match.sql"),
    include_str!("migrations/0004_audit_search.sql"),
    include_str!("migrations/0005_liveness_compat.sql"),
    include_str!("migrations/0006_workflow.sql"),
    include_str!("migrations/0007_billing.sql"),
    include_str!("migrations/0008_hardening.sql"),
    include_str!("migrations/0009_shared_state.sql"),
    include_str!("migrations/0010_faces.sql"),
    include_str!("migrations/0011_console.sql"),
    include_str!("migrations/0012_console_security.sql"),
    include_str!("migrations/0013_operators.sql"),
];

/// The SQLite schema version this kycd writes (and the newest it opens).
pub const SQLITE_VERSION: usize = MIGRATIONS.len();

/// PostgreSQL's migrations, in order; index + 1 is its version.
const POSTGRES: &[&str] = &[
    include_str!("migrations/postgres/0001_schema.sql"),
    include_str!("migrations/postgres/0002_shared_state.sql"),
    include_str!("migrations/postgres/0003_faces.sql"),
    include_str!("migrations/postgres/0004_console.sql"),
    include_str!("migrations/postgres/0005_console_security.sql"),
    include_str!("migrations/postgres/0006_operators.sql"),
];

/// The PostgreSQL schema version this kycd writes (and the newest it opens).
pub const POSTGRES_VERSION: usize = POSTGRES.len();

/// The schema version of the PostgreSQL database at `url` (0 when kycd never ran on it), read
/// without migrating: `kycd doctor` looks, it does not change.
pub fn postgres_version(url: &str) -> Result<i64> {
    let pool = super::postgres_pool::open(url, 1)?;
    let mut conn = pool.get()?;
    let conn = super::sql::Conn::postgres(&mut conn);
    let exists: bool = conn.query_row(
        "SELECT to_regclass('kycd_schema') IS NOT NULL",
        super::params![],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row("SELECT version FROM kycd_schema", super::params![], |r| {
        r.get(0)
    })
}

/// Brings a PostgreSQL schema up to the latest version, one transaction per migration.
pub(super) fn apply_postgres(conn: &mut super::sql::PgConn) -> Result<()> {
    let lock = super::postgres_pool::MIGRATION_LOCK;
    let conn = super::sql::Conn::postgres(conn);
    conn.execute_batch(&format!(
        "SELECT pg_advisory_lock({lock}); \
         CREATE TABLE IF NOT EXISTS kycd_schema (version BIGINT NOT NULL); \
         INSERT INTO kycd_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM kycd_schema)"
    ))?;
    let result = (|| -> Result<()> {
        let current: usize =
            conn.query_row("SELECT version FROM kycd_schema", super::params![], |r| {
                r.get(0)
            })?;
        if current > POSTGRES.len() {
            return Err(StoreError::Conflict(format!(
                "database schema version {current} is newer than this kycd ({}); upgrade kycd",
                POSTGRES.len()
            )));
        }
        for (index, sql) in POSTGRES.iter().enumerate().skip(current) {
            conn.execute_batch("BEGIN")?;
            let step = conn.execute_batch(sql).and_then(|_| {
                conn.execute(
                    "UPDATE kycd_schema SET version = ?1",
                    super::params![index + 1],
                )
            });
            match step {
                Ok(_) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    conn.execute_batch("ROLLBACK")?;
                    return Err(e);
                }
            }
        }
        Ok(())
    })();
    conn.execute_batch(&format!("SELECT pg_advisory_unlock({lock})"))?;
    result
}

/// Brings the schema up to the latest version, one transaction per migration.
pub(super) fn apply(conn: &mut Connection) -> Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Conflict(format!(
            "database schema version {current} is newer than this kycd ({}); upgrade kycd",
            MIGRATIONS.len()
        )));
    }
    if current > 0 && current < MIGRATIONS.len() {
        keep_a_copy(conn, current)?;
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now as usize > index {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Before an upgrade changes the schema: a consistent copy of the database as it was, in
/// `<data_dir>/backups/kycd-schema-v<N>-<unix time>.db` (0600, in the 0700 data directory), so a
/// failed or regretted upgrade can go back with the previous binary. Not for in-memory databases.
fn keep_a_copy(conn: &Connection, version: usize) -> Result<()> {
    let Some(db) = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
    else {
        return Ok(());
    };
    let dir = db
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("backups");
    let io = |e: std::io::Error| {
        StoreError::Conflict(format!("cannot keep a copy before migrating: {e}"))
    };
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&dir)
        .map_err(io)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let copy = dir.join(format!("kycd-schema-v{version}-{now}.db"));
    if copy.exists() {
        return Ok(());
    }
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])?;
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io)?;
    tracing::info!(copy = %copy.display(), from_version = version, "database copied before its schema upgrade");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_all_and_refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        apply(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        assert!(apply(&mut conn).is_err());
    }

    #[test]
    fn an_upgrade_keeps_a_copy_of_the_database_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kycd.db");
        let mut conn = Connection::open(&path).unwrap();
        // A database two migrations behind, with a row in it.
        for sql in &MIGRATIONS[..MIGRATIONS.len() - 2] {
            conn.execute_batch(sql).unwrap();
        }
        let old = (MIGRATIONS.len() - 2) as i64;
        conn.pragma_update(None, "user_version", old).unwrap();
        conn.execute(
            "INSERT INTO tenants (id, name, plan, status, created_at, updated_at) \
             VALUES ('t1', 'kept', 'free', 'active', 0, 0)",
            [],
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let copies: Vec<_> = std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(copies.len(), 1, "{copies:?}");
        let name = copies[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(&format!("kycd-schema-v{old}-")), "{name}");
        let copy = Connection::open(&copies[0]).unwrap();
        let version: i64 = copy
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, old, "the copy is the database before the upgrade");
        let name: String = copy
            .query_row("SELECT name FROM tenants WHERE id = 't1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "kept");
        // Up to date: no further copy.
        apply(&mut conn).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("backups"))
                .unwrap()
                .count(),
            1
        );
    }
}
