//! Memory of recently accepted signatures, so a captured request cannot be sent again.
//!
//! A signature is only valid while its timestamp is within the skew, so it needs remembering for
//! at most the replay window; entries expire in arrival order and are pruned from the front of a
//! queue. Each entry is a 16-byte fingerprint of (key id, signature): about 50 bytes with overhead.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

type Fingerprint = [u8; 16];

/// Recently seen (key, signature) pairs.
pub struct ReplayCache {
    window_secs: i64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashSet<Fingerprint>,
    expiries: VecDeque<(i64, Fingerprint)>,
}

impl ReplayCache {
    /// A cache that remembers each pair for `window_secs`.
    pub fn new(window_secs: i64) -> Self {
        ReplayCache {
            window_secs,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Records the pair and returns `true` if it was not seen within the window.
    pub fn first_use(&self, key_id: &str, signature: &str, now: i64) -> bool {
        let mut h = Sha256::new();
        h.update(key_id.as_bytes());
        h.update([0]);
        h.update(signature.as_bytes());
        let digest = h.finalize();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&digest[..16]);

        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(expires, old)) = inner.expiries.front() {
            if expires > now {
                break;
            }
            inner.expiries.pop_front();
            inner.seen.remove(&old);
        }
        if !inner.seen.insert(fp) {
            return false;
        }
        inner.expiries.push_back((now + self.window_secs, fp));
        true
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
        assert!(cache.first_use("k", "sig", 1000));
        assert!(!cache.first_use("k", "sig", 1001));
        assert!(cache.first_use("k2", "sig", 1001), "other key");
        assert!(!cache.first_use("k", "sig", 1599));
        assert!(
            cache.first_use("k", "sig", 1600),
            "expired entries are pruned"
        );
        assert_eq!(cache.len(), 2);
    }
}
