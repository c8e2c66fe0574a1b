//! Memory of recently accepted signatures, so a captured request cannot be sent again — not
//! even once after a restart or a `kill -9`.
//!
//! A signature is only valid while its timestamp is within the skew, so it needs remembering for
//! at most the replay window; entries expire in arrival order and are pruned from the front of a
//! queue. Each entry is a 16-byte fingerprint of (key id, signature): about 60 bytes with
//! overhead in memory. With a [`Journal`], every accepted fingerprint is also appended to a small
//! SQLite file (`replay.db`, WAL, `synchronous=NORMAL`: a committed row survives the process
//! dying) before the request is let through, and the unexpired ones are loaded at start-up; rows
//! are deleted by rowid range as they expire, and the file is checkpointed off the request path.
//!
//! Several nodes on one PostgreSQL share the memory instead ([`ReplayCache::shared`]): each
//! accepted fingerprint is one insert into `replay_seen` that a primary-key conflict refuses,
//! outside the serialised writers, so a request replayed to another node is refused there too.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use crate::store::{self, Store};

type Fingerprint = [u8; 16];

/// Recently seen (key, signature) pairs.
pub struct ReplayCache {
    window_secs: i64,
    inner: Mutex<Inner>,
    journal: Option<Journal>,
    shared: Option<Arc<Store>>,
}

#[derive(Default)]
struct Inner {
    seen: HashSet<Fingerprint>,
    /// (expiry, fingerprint, journal rowid) in arrival order.
    expiries: VecDeque<(i64, Fingerprint, i64)>,
    /// Journal rows up to this rowid have expired and may be deleted.
    expired_upto: i64,
}

/// The durable side of the cache: one table in its own SQLite file, so its per-request writes
/// never wait for the main database's writer.
pub struct Journal {
    conn: Mutex<Connection>,
}

impl Journal {
    /// Opens (creating) the journal at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Journal> {
        let conn = Connection::open(path)?;
        // Small pages: each insert's WAL frame is one page. One process owns the file, so no
        // shared-memory locking per transaction.
        conn.pragma_update(None, "page_size", 1024)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a committed row is in the WAL file when the insert returns, which
        // a killed process cannot take back; only a power loss can.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints happen in `sweep`, never inside a request's insert.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS seen (fp BLOB NOT NULL, expires INTEGER NOT NULL)",
        )?;
        Ok(Journal {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, fp: &Fingerprint, expires: i64) -> rusqlite::Result<i64> {
        let conn = self.lock();
        conn.prepare_cached("INSERT INTO seen (fp, expires) VALUES (?1, ?2)")?
            .execute(params![&fp[..], expires])?;
        Ok(conn.last_insert_rowid())
    }

    fn unexpired(&self, now: i64) -> rusqlite::Result<Vec<(i64, Fingerprint, i64)>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT expires, fp, rowid FROM seen WHERE expires > ?1 ORDER BY rowid")?;
        let rows = stmt
            .query_map([now], |r| {
                let fp: Vec<u8> = r.get(1)?;
                let mut out = [0u8; 16];
                let n = fp.len().min(16);
                out[..n].copy_from_slice(&fp[..n]);
                Ok((r.get(0)?, out, r.get(2)?))
            })?
            .collect();
        rows
    }
}

fn fingerprint(key_id: &str, signature: &str) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(key_id.as_bytes());
    h.update([0]);
    h.update(signature.as_bytes());
    let digest = h.finalize();
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&digest[..16]);
    fp
}

/// Why a pair could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The node's own journal file.
    #[error("the replay journal failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The memory shared through the database.
    #[error("the shared replay memory failed: {0}")]
    Store(#[from] store::StoreError),
}

impl ReplayCache {
    /// An in-memory cache that remembers each pair for `window_secs` (forgotten on restart).
    pub fn new(window_secs: i64) -> Self {
        ReplayCache {
            window_secs,
            inner: Mutex::new(Inner::default()),
            journal: None,
            shared: None,
        }
    }

    /// A memory every node on `store`'s database shares (several nodes on PostgreSQL).
    pub fn shared(window_secs: i64, store: Arc<Store>) -> Self {
        ReplayCache {
            shared: Some(store),
            ..Self::new(window_secs)
        }
    }

    /// A cache backed by `journal`, holding what it remembers from before `now`.
    pub fn durable(window_secs: i64, journal: Journal, now: i64) -> Result<Self, JournalError> {
        let mut inner = Inner::default();
        for (expires, fp, rowid) in journal.unexpired(now)? {
            if inner.seen.insert(fp) {
                inner.expiries.push_back((expires, fp, rowid));
            }
        }
        Ok(ReplayCache {
            window_secs,
            inner: Mutex::new(inner),
            journal: Some(journal),
            shared: None,
        })
    }

    /// Records the pair and returns `true` if it was not seen within the window. With a
    /// journal the pair is durable before `true` is returned. Blocking (a small write).
    pub fn first_use(&self, key_id: &str, signature: &str, now: i64) -> Result<bool, JournalError> {
        let fp = fingerprint(key_id, signature);
        if let Some(store) = &self.shared {
            // One statement: a fresh row, or a row whose pair expired (the same signature can
            // only come back valid after its timestamp's window, i.e. never within it).
            let expires = now + self.window_secs;
            return Ok(store.autocommit(|c| store::shared::first_use(c, &fp, expires, now))?);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // An entry is kept through its expiry second: a signature valid at the window's very
        // edge must still find it.
        while let Some(&(expires, old, rowid)) = inner.expiries.front() {
            if expires >= now {
                break;
            }
            inner.expiries.pop_front();
            inner.seen.remove(&old);
            inner.expired_upto = inner.expired_upto.max(rowid);
        }
        if inner.seen.contains(&fp) {
            return Ok(false);
        }
        let expires = now + self.window_secs;
        let rowid = match &self.journal {
            Some(j) => j.append(&fp, expires)?,
            None => 0,
        };
        inner.seen.insert(fp);
        inner.expiries.push_back((expires, fp, rowid));
        Ok(true)
    }

    /// Deletes expired journal rows and checkpoints the journal; returns rows deleted. Run it
    /// off the request path (every few seconds).
    pub fn sweep(&self) -> Result<usize, JournalError> {
        if let Some(store) = &self.shared {
            let now = store::now();
            return Ok(store.autocommit(|c| store::shared::forget_replays(c, now))?);
        }
        let Some(j) = &self.journal else {
            return Ok(0);
        };
        let upto = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expired_upto;
        let conn = j.lock();
        let deleted = conn.execute("DELETE FROM seen WHERE rowid <= ?1", [upto])?;
        // A few seconds of appends: copying them into the file takes a millisecond or two.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(deleted)
    }

    /// How many pairs are remembered now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_refused_until_the_window_passes() {
        let cache = ReplayCache::new(600);
        assert!(cache.first_use("k", "sig", 1000).unwrap());
        assert!(!cache.first_use("k", "sig", 1001).unwrap());
        assert!(cache.first_use("k2", "sig", 1001).unwrap(), "other key");
        assert!(!cache.first_use("k", "sig", 1599).unwrap());
        assert!(
            !cache.first_use("k", "sig", 1600).unwrap(),
            "kept through its expiry second"
        );
        assert!(
            cache.first_use("k", "sig", 1601).unwrap(),
            "expired entries are pruned"
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_journal_remembers_across_a_restart_and_forgets_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let cache = ReplayCache::durable(600, Journal::open(&path).unwrap(), 1000).unwrap();
        assert!(cache.first_use("k", "a", 1000).unwrap());
        assert!(cache.first_use("k", "b", 1300).unwrap());
        // The process dies without a word; a new one opens the same file.
        drop(cache);
        let cache = ReplayCache::durable(600, Journal::open(&path).unwrap(), 1400).unwrap();
        assert!(
            !cache.first_use("k", "a", 1400).unwrap(),
            "replayed after restart"
        );
        assert!(!cache.first_use("k", "b", 1401).unwrap());
        // After the window, "a" expired (pruned from memory, then deleted by the sweep).
        assert!(cache.first_use("k", "a", 1650).unwrap());
        assert_eq!(cache.sweep().unwrap(), 1);
        // The journal belongs to one process at a time.
        assert!(Journal::open(&path)
            .and_then(|j| j.append(&[0; 16], 1))
            .is_err());
        drop(cache);
        let cache = ReplayCache::durable(600, Journal::open(&path).unwrap(), 1650).unwrap();
        assert_eq!(cache.len(), 2, "b, and a's new use");
    }

    #[test]
    fn a_signature_used_on_one_node_is_refused_on_another() {
        let (_dir, store) = crate::store::test_store();
        let store = Arc::new(store);
        let (a, b) = (
            ReplayCache::shared(300, store.clone()),
            ReplayCache::shared(300, store.clone()),
        );
        assert!(a.first_use("ak_1", "sig", 1000).unwrap());
        assert!(!b.first_use("ak_1", "sig", 1001).unwrap());
        assert!(
            !a.first_use("ak_1", "sig", 1300).unwrap(),
            "kept through its expiry"
        );
        assert!(b.first_use("ak_2", "sig", 1001).unwrap(), "another key");
        assert!(
            b.first_use("ak_1", "sig", 1301).unwrap(),
            "after the window"
        );
    }
}
