//! The embedded store: one SQLite file in WAL mode, versioned migrations applied at open, one
//! serialised writer and a small pool of readers.
//!
//! This is the only module that writes SQL. Callers get typed functions (see the submodules); they
//! run on the calling thread, so async code calls them through `spawn_blocking`. Several processes
//! may open the same file at once (the CLI while `kycd serve` runs): writes take SQLite's
//! `BEGIN IMMEDIATE` lock and wait up to the busy timeout.

pub mod audit;
pub mod crypto;
pub mod jobs;
pub mod keys;
pub mod media;
mod migrations;
pub mod plans;
pub mod tenants;
pub mod usage;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Code, ErrorCode};
use crypto::{CryptoError, DataKey, MasterKey};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most reader connections open at once; a reader beyond that waits for one to be returned, so
/// connections are reused instead of being opened (and their schema parsed) per request.
const MAX_READERS: usize = 16;
/// Longest wait for a reader connection before the caller is told the server is busy.
const READER_WAIT: Duration = Duration::from_secs(5);

/// A store failure, with the code clients see.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed; a bug or a disk problem.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Sealing or opening a secret failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The data directory could not be created.
    #[error("cannot create the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A value a limit refuses (checked inside the transaction that would exceed it).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Every reader connection stayed busy for the whole wait.
    #[error("the database is busy; retry shortly")]
    Busy,
}

impl ErrorCode for StoreError {
    fn details(&self) -> serde_json::Value {
        match self {
            StoreError::Busy => serde_json::json!({ "retry_after_seconds": 1 }),
            StoreError::Invalid { field, .. } => serde_json::json!({ "field": field }),
            _ => serde_json::json!({}),
        }
    }

    fn code(&self) -> Code {
        match self {
            StoreError::NotFound(_) => Code::NotFound,
            StoreError::Conflict(_) => Code::Conflict,
            StoreError::Busy => Code::Overloaded,
            StoreError::Invalid { .. } => Code::InvalidInput,
            StoreError::Sqlite(_) | StoreError::Crypto(_) | StoreError::Io(_) => Code::Internal,
        }
    }
}

/// Result alias for store calls.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The open database plus the master key that seals secrets in it.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: ReaderPool,
    master: MasterKey,
    data_keys: Mutex<Vec<(String, DataKey)>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, master: MasterKey) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut writer = open_connection(path, false)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::apply(&mut writer)?;
        Ok(Store {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: ReaderPool::default(),
            master,
            data_keys: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` inside one write transaction (`BEGIN IMMEDIATE`), committing if it returns `Ok`.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on a read-only connection; readers never wait for the writer in WAL mode.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.take(&self.path)?;
        let out = f(&conn);
        self.readers.give_back(conn);
        out
    }

    /// Moves the WAL into the database and empties it, so frames holding deleted rows are gone
    /// from disk too (called after an erasure).
    pub fn checkpoint_truncate(&self) -> Result<()> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Proves the database accepts writes: takes and releases the write lock.
    pub fn check_writable(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute_batch("SELECT 1")?;
            Ok(())
        })
    }

    /// The data key of a family of secrets, created and stored wrapped on first use.
    pub fn data_key(&self, family: &str) -> Result<DataKey> {
        if let Some((_, key)) = self
            .data_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(f, _)| f == family)
        {
            return Ok(key.clone());
        }
        let key = self.write(|tx| {
            let wrapped: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT wrapped FROM data_keys WHERE family = ?1",
                    [family],
                    |r| r.get(0),
                )
                .map(Some)
                .or_else(none_if_no_rows)?;
            match wrapped {
                Some(w) => Ok(self.master.unwrap_key(&w, family)?),
                None => {
                    let key = DataKey::generate();
                    tx.execute(
                        "INSERT INTO data_keys (family, wrapped, created_at) VALUES (?1, ?2, ?3)",
                        rusqlite::params![family, self.master.wrap_key(&key, family)?, now()],
                    )?;
                    Ok(key)
                }
            }
        })?;
        self.data_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((family.to_owned(), key.clone()));
        Ok(key)
    }
}

/// Reader connections: reused, at most [`MAX_READERS`] open.
#[derive(Default)]
struct ReaderPool {
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

impl ReaderPool {
    fn take(&self, path: &Path) -> Result<Connection> {
        self.take_within(path, READER_WAIT)
    }

    fn take_within(&self, path: &Path, wait: Duration) -> Result<Connection> {
        let deadline = std::time::Instant::now() + wait;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                return open_connection(path, true).inspect_err(|_| {
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                });
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn give_back(&self, conn: Connection) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .idle
            .push(conn);
        self.returned.notify_one();
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The bundled SQLite has STAT4, which recompiles a cached statement on every step after its
    // parameters are re-bound (measured: two thirds of a signed request's CPU). A stable plan is
    // what we want for these point lookups anyway.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows (an erased subject's wrapped key) are overwritten with zeros instead of
    // lingering in free pages, so crypto-shredding holds for someone holding the disk.
    conn.pragma_update(None, "secure_delete", "ON")?;
    if !read_only {
        // NORMAL is durable across process crashes in WAL mode; only a power loss can drop the
        // last transactions, which FULL would cost an fsync per commit to prevent.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    Ok(conn)
}

/// Maps "no row" to `Ok(None)` for optional lookups.
pub(crate) fn none_if_no_rows<T>(e: rusqlite::Error) -> Result<Option<T>> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        other => Err(other.into()),
    }
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kycd.db"), MasterKey::generate()).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_twice_is_idempotent_and_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kycd.db");
        let key = MasterKey::generate();
        drop(Store::open(&path, key.clone()).unwrap());
        let store = Store::open(&path, key).unwrap();
        let mode: String = store
            .read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "wal");
        store.check_writable().unwrap();
    }

    #[test]
    fn a_reader_waits_a_bounded_time_for_a_connection() {
        let (dir, store) = test_store();
        let path = dir.path().join("kycd.db");
        let held: Vec<Connection> = (0..MAX_READERS)
            .map(|_| store.readers.take(&path).unwrap())
            .collect();
        let started = std::time::Instant::now();
        assert!(matches!(
            store.readers.take_within(&path, Duration::from_millis(50)),
            Err(StoreError::Busy)
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(StoreError::Busy.code(), Code::Overloaded);
        for c in held {
            store.readers.give_back(c);
        }
        assert!(store.readers.take_within(&path, Duration::ZERO).is_ok());
    }

    #[test]
    fn data_keys_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kycd.db");
        let master = MasterKey::generate();
        let store = Store::open(&path, master.clone()).unwrap();
        let sealed = store
            .data_key("t")
            .unwrap()
            .seal(b"secret", b"aad")
            .unwrap();
        drop(store);
        let store = Store::open(&path, master).unwrap();
        let opened = store.data_key("t").unwrap().open(&sealed, b"aad").unwrap();
        assert_eq!(&opened[..], b"secret");
    }
}
