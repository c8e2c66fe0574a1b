//! The store: by default one SQLite file in WAL mode (one serialised writer and a small pool of
//! readers); for several nodes, PostgreSQL (a pool of connections, writers serialised by an
//! advisory lock). Versioned migrations, one list per engine, are applied at open.
//!
//! This is the only module that writes SQL, written once for both engines (see [`sql`]). Callers
//! get typed functions (see the submodules); they run on the calling thread, so async code calls
//! them through `spawn_blocking`. Several processes may open the same SQLite file at once (the
//! CLI while `kycd serve` runs): writes take SQLite's `BEGIN IMMEDIATE` lock and wait up to the
//! busy timeout.

pub mod audit;
pub mod console;
pub mod copy;
pub mod crypto;
pub mod faces;
pub mod files;
pub mod jobs;
pub mod keys;
pub mod media;
pub mod migrations;
pub mod plans;
mod postgres_pool;
pub mod quota;
pub mod shared;
pub mod sql;
pub mod tenants;
pub mod usage;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Code, ErrorCode};
use crypto::{CryptoError, DataKey, MasterKey};
pub use sql::{params, Backend, Conn, DbError, Optional, Row, Tx};

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
    /// The database failed; a bug, a disk or a network problem.
    #[error("database error: {0}")]
    Db(#[from] DbError),
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
    /// Every connection stayed busy for the whole wait.
    #[error("the database is busy; retry shortly")]
    Busy,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(DbError::Sqlite(e))
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Db(DbError::Postgres(e))
    }
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
            StoreError::Db(_) | StoreError::Crypto(_) | StoreError::Io(_) => Code::Internal,
        }
    }
}

/// Result alias for store calls.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded SQLite file (the default: `<data_dir>/kycd.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL server (`postgres://user:password@host:port/db?options`), shared by nodes.
    Postgres(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` is PostgreSQL; anything else is a SQLite path.
    pub fn parse(url: &str) -> Location {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Location::Postgres(url.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url)))
        }
    }
}

/// The open database plus the master key that seals secrets in it.
pub struct Store {
    engine: Engine,
    master: MasterKey,
    data_keys: Mutex<Vec<(String, DataKey)>>,
}

enum Engine {
    Sqlite {
        path: PathBuf,
        writer: Mutex<Connection>,
        readers: ReaderPool,
    },
    Postgres(postgres_pool::Pool),
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    pub fn open(path: &Path, master: MasterKey) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut writer = open_connection(path, false)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::apply(&mut writer)?;
        Ok(Store {
            engine: Engine::Sqlite {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers: ReaderPool::default(),
            },
            master,
            data_keys: Mutex::new(Vec::new()),
        })
    }

    /// Opens the store at `location`: SQLite as [`Store::open`], or a pool of up to
    /// `max_connections` to PostgreSQL, whose schema is brought up to date under an advisory lock
    /// (several nodes may start at once).
    pub fn connect(location: &Location, master: MasterKey, max_connections: u32) -> Result<Store> {
        match location {
            Location::Sqlite(path) => Store::open(path, master),
            Location::Postgres(url) => {
                let pool = postgres_pool::open(url, max_connections)?;
                let mut conn = pool.get()?;
                migrations::apply_postgres(&mut conn)?;
                drop(conn);
                Ok(Store {
                    engine: Engine::Postgres(pool),
                    master,
                    data_keys: Mutex::new(Vec::new()),
                })
            }
        }
    }

    /// The engine this store runs on.
    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite { .. } => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `f` inside one write transaction, committing if it returns `Ok`. Writers are
    /// serialised: SQLite's `BEGIN IMMEDIATE` across processes on one file; on PostgreSQL a
    /// transaction-scoped advisory lock across every node, so read-then-write code (the audit
    /// chain's head, a job claim, a quota counter) is as safe on several nodes as on one.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite { writer, .. } => {
                let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&Tx(Conn::sqlite(&tx)))?;
                tx.commit()?;
                Ok(out)
            }
            Engine::Postgres(pool) => {
                let mut conn = pool.get()?;
                conn.batch_execute(postgres_pool::BEGIN_WRITE)?;
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    f(&Tx(Conn::postgres(&mut conn)))
                }));
                match out {
                    Ok(Ok(v)) => {
                        conn.batch_execute("COMMIT")?;
                        Ok(v)
                    }
                    Ok(Err(e)) => {
                        // The first error is the one to report; a connection that cannot roll
                        // back is broken and leaves the pool (`has_broken`).
                        if let Err(rollback) = conn.batch_execute("ROLLBACK") {
                            tracing::warn!(error = %rollback, "PostgreSQL rollback failed");
                        }
                        Err(e)
                    }
                    Err(panic) => {
                        let _ = conn.batch_execute("ROLLBACK");
                        std::panic::resume_unwind(panic)
                    }
                }
            }
        }
    }

    /// Runs `f`'s statements each on its own, for writes whose outcome a row constraint decides
    /// in one statement (an upsert, an insert that may conflict) rather than a read before
    /// them: on PostgreSQL in autocommit, outside the writers' lock, so per-request state (the
    /// replay memory, rate buckets) never queues behind the serialised writers; on SQLite in a
    /// write transaction like any other.
    pub fn autocommit<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite { .. } => self.write(|tx| f(tx)),
            Engine::Postgres(pool) => {
                let mut conn = pool.get()?;
                f(&Conn::postgres(&mut conn))
            }
        }
    }

    /// Runs `f` on a connection for reading; SQLite readers never wait for the writer in WAL
    /// mode, PostgreSQL's never do.
    pub fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite { path, readers, .. } => {
                let conn = readers.take(path)?;
                let out = f(&Conn::sqlite(&conn));
                readers.give_back(conn);
                out
            }
            Engine::Postgres(pool) => {
                let mut conn = pool.get()?;
                f(&Conn::postgres(&mut conn))
            }
        }
    }

    /// Moves SQLite's WAL into the database and empties it, so frames holding deleted rows are
    /// gone from disk too (called after an erasure). PostgreSQL's own vacuum does this there.
    pub fn checkpoint_truncate(&self) -> Result<()> {
        if let Engine::Sqlite { writer, .. } = &self.engine {
            let conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
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
                    params![family],
                    |r| r.get(0),
                )
                .optional()?;
            match wrapped {
                Some(w) => Ok(self.master.unwrap_key(&w, family)?),
                None => {
                    let key = DataKey::generate();
                    tx.execute(
                        "INSERT INTO data_keys (family, wrapped, created_at) VALUES (?1, ?2, ?3)",
                        params![family, self.master.wrap_key(&key, family)?, now()],
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
    // Every statement goes through the connection's cache (store::sql); the store has ~100.
    conn.set_prepared_statement_cache_capacity(128);
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

/// Current Unix time in seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
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
            .read(|c| c.query_row("PRAGMA journal_mode", params![], |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
        store.check_writable().unwrap();
    }

    #[test]
    fn a_reader_waits_a_bounded_time_for_a_connection() {
        let (dir, store) = test_store();
        let Engine::Sqlite { readers, .. } = &store.engine else {
            unreachable!()
        };
        let path = dir.path().join("kycd.db");
        let held: Vec<Connection> = (0..MAX_READERS)
            .map(|_| readers.take(&path).unwrap())
            .collect();
        let started = std::time::Instant::now();
        assert!(matches!(
            readers.take_within(&path, Duration::from_millis(50)),
            Err(StoreError::Busy)
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(StoreError::Busy.code(), Code::Overloaded);
        for c in held {
            readers.give_back(c);
        }
        assert!(readers.take_within(&path, Duration::ZERO).is_ok());
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
