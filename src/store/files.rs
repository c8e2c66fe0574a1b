//! The embedded database as a file, outside a running [`Store`](super::Store): the consistent
//! snapshot a backup takes while the node serves, what a backup's manifest reads from it, and
//! the checks `kycd doctor` and `kycd restore` run. Opened read-only where they only look.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(30))?;
    Ok(c)
}

/// Copies the live database at `db` into a new file `to` (the online-backup API). One step
/// copies every page under one read transaction: a consistent snapshot that concurrent writers
/// (WAL) neither block nor restart.
pub fn snapshot(db: &Path, to: &Path) -> rusqlite::Result<()> {
    let src = read_only(db)?;
    let mut dst = Connection::open(to)?;
    let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
    loop {
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            rusqlite::backup::StepResult::More => {}
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// What a backup's manifest records of a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotFacts {
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Every sealed blob a media row refers to, sorted.
    pub objects: Vec<String>,
    /// Jobs by status.
    pub jobs: BTreeMap<String, i64>,
}

/// Reads [`SnapshotFacts`] from a snapshot file.
pub fn snapshot_facts(path: &Path) -> rusqlite::Result<SnapshotFacts> {
    let c = read_only(path)?;
    let schema_version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = c.prepare("SELECT DISTINCT object FROM media ORDER BY object")?;
    let objects = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
    let jobs = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(SnapshotFacts {
        schema_version,
        objects,
        jobs,
    })
}

/// `PRAGMA integrity_check` (`thorough`) or `quick_check`: "ok", or what is wrong.
pub fn check(path: &Path, thorough: bool) -> rusqlite::Result<String> {
    let pragma = if thorough {
        "PRAGMA integrity_check"
    } else {
        "PRAGMA quick_check"
    };
    read_only(path)?.query_row(pragma, [], |r| r.get(0))
}

/// The file's schema version (`PRAGMA user_version`).
pub fn schema_version(path: &Path) -> rusqlite::Result<i64> {
    read_only(path)?.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// The time (Unix seconds) of the newest audit entry, 0 when there is none.
pub fn newest_audit_at(path: &Path) -> rusqlite::Result<i64> {
    read_only(path)?.query_row("SELECT COALESCE(MAX(at), 0) FROM audit_log", [], |r| {
        r.get(0)
    })
}
