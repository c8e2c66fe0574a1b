//! Admission control: byte budgets that bound what requests may hold in memory at once — request
//! bodies being buffered, images being decoded and the pixels a request keeps — in all and per
//! owner (a key before its signature is checked, a tenant after), so one caller can neither
//! take the memory of the box nor starve the others.
//!
//! A request that does not fit waits briefly for others to finish, then is refused with 503
//! `overloaded` and `Retry-After`; one that could never fit (more than an owner may hold) is
//! refused at once. Leases give their bytes back when dropped, so every exit path releases.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{Code, ErrorCode};

/// Why bytes were not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The budget stayed full for the whole wait.
    #[error("the server is busy ({budget}); retry in {retry_after_secs} s")]
    Overloaded {
        /// Which budget.
        budget: &'static str,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// More than one owner may ever hold: waiting would not help.
    #[error(
        "the request needs {needed} bytes of {budget}, more than the {limit} one caller may hold"
    )]
    TooLarge {
        /// Which budget.
        budget: &'static str,
        /// What was asked for.
        needed: u64,
        /// The per-owner limit.
        limit: u64,
    },
}

impl ErrorCode for Refused {
    fn code(&self) -> Code {
        match self {
            Refused::Overloaded { .. } => Code::Overloaded,
            Refused::TooLarge { .. } => Code::PayloadTooLarge,
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            Refused::Overloaded {
                budget,
                retry_after_secs,
            } => json!({ "budget": budget, "retry_after_seconds": retry_after_secs }),
            Refused::TooLarge {
                budget,
                needed,
                limit,
            } => json!({ "budget": budget, "needed_bytes": needed, "limit_bytes": limit }),
        }
    }
}

#[derive(Default)]
struct Inner {
    used: u64,
    owners: HashMap<String, u64>,
    /// Callers waiting for room, in arrival order: (ticket, owner, bytes).
    waiting: std::collections::VecDeque<(u64, String, u64)>,
    next_ticket: u64,
}

impl Inner {
    fn fits(&self, total: u64, per_owner: u64, owner: &str, bytes: u64) -> bool {
        let mine = self.owners.get(owner).copied().unwrap_or(0);
        self.used + bytes <= total && mine + bytes <= per_owner
    }
}

/// A byte budget with a total and a per-owner limit.
pub struct Budget {
    name: &'static str,
    total: u64,
    per_owner: u64,
    wait: Duration,
    inner: Mutex<Inner>,
    freed: Condvar,
    freed_async: tokio::sync::Notify,
    refused: std::sync::atomic::AtomicU64,
}

/// Bytes held under a [`Budget`]; given back on drop.
pub struct Lease {
    budget: Arc<Budget>,
    owner: String,
    bytes: u64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Lease({} {} B for {})",
            self.budget.name, self.bytes, self.owner
        )
    }
}

impl Budget {
    /// A budget of `total` bytes, at most `per_owner` for one owner; callers wait up to `wait`.
    pub fn new(name: &'static str, total: u64, per_owner: u64, wait: Duration) -> Arc<Budget> {
        Arc::new(Budget {
            name,
            total,
            per_owner: per_owner.min(total),
            wait,
            inner: Mutex::default(),
            freed: Condvar::new(),
            freed_async: tokio::sync::Notify::new(),
            refused: Default::default(),
        })
    }

    /// The budget's name (in errors and metrics).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The per-owner limit.
    pub fn per_owner(&self) -> u64 {
        self.per_owner
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_size(&self, bytes: u64) -> Result<(), Refused> {
        if bytes > self.per_owner {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(Refused::TooLarge {
                budget: self.name,
                needed: bytes,
                limit: self.per_owner,
            });
        }
        Ok(())
    }

    fn take(&self, inner: &mut Inner, owner: &str, bytes: u64) -> bool {
        if !inner.fits(self.total, self.per_owner, owner, bytes) {
            return false;
        }
        inner.used += bytes;
        *inner.owners.entry(owner.to_owned()).or_default() += bytes;
        true
    }

    /// Whether the waiter holding `ticket` may take its bytes now: they fit, and every caller
    /// that came earlier is stopped by its own owner's share (first come, first served — a big
    /// request is not overtaken for ever by small ones — but one owner at its share does not
    /// hold up the others).
    fn my_turn(&self, inner: &Inner, ticket: u64, owner: &str, bytes: u64) -> bool {
        let own_share_full =
            |o: &str, b: u64| inner.owners.get(o).copied().unwrap_or(0) + b > self.per_owner;
        inner.fits(self.total, self.per_owner, owner, bytes)
            && inner
                .waiting
                .iter()
                .take_while(|(t, _, _)| *t != ticket)
                .all(|(_, o, b)| own_share_full(o, *b))
    }

    /// Takes at once when nobody waits and the bytes fit; otherwise joins the queue.
    fn enter(&self, inner: &mut Inner, owner: &str, bytes: u64) -> Result<(), u64> {
        if (bytes == 0 || inner.waiting.is_empty()) && self.take(inner, owner, bytes) {
            return Ok(());
        }
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.waiting.push_back((ticket, owner.to_owned(), bytes));
        Err(ticket)
    }

    /// Takes for the waiter holding `ticket` if it is its turn; leaves the queue either way
    /// when it does.
    fn try_turn(&self, inner: &mut Inner, ticket: u64, owner: &str, bytes: u64) -> bool {
        if !self.my_turn(inner, ticket, owner, bytes) {
            return false;
        }
        inner.waiting.retain(|(t, _, _)| *t != ticket);
        let taken = self.take(inner, owner, bytes);
        if taken && !inner.waiting.is_empty() {
            // The next in line may fit too: let it look.
            self.freed.notify_all();
            self.freed_async.notify_waiters();
        }
        taken
    }

    fn leave(&self, inner: &mut Inner, ticket: u64) {
        inner.waiting.retain(|(t, _, _)| *t != ticket);
        // Those behind may go now.
        self.freed.notify_all();
        self.freed_async.notify_waiters();
    }

    fn overloaded(&self) -> Refused {
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Refused::Overloaded {
            budget: self.name,
            retry_after_secs: self.wait.as_secs().max(1),
        }
    }

    /// Takes `bytes` for `owner` if they fit now and nobody waits before it.
    pub fn try_acquire(
        self: &Arc<Self>,
        owner: &str,
        bytes: u64,
    ) -> Result<Option<Lease>, Refused> {
        self.check_size(bytes)?;
        let mut inner = self.lock();
        let free = bytes == 0 || inner.waiting.is_empty();
        Ok((free && self.take(&mut inner, owner, bytes)).then(|| self.lease(owner, bytes)))
    }

    fn lease(self: &Arc<Self>, owner: &str, bytes: u64) -> Lease {
        Lease {
            budget: self.clone(),
            owner: owner.to_owned(),
            bytes,
        }
    }

    /// Takes `bytes` for `owner`, waiting up to the budget's wait for room. Blocking.
    pub fn acquire(self: &Arc<Self>, owner: &str, bytes: u64) -> Result<Lease, Refused> {
        self.acquire_within(owner, bytes, self.wait)
    }

    /// Takes `bytes` for `owner`, waiting up to `wait` (first come, first served). Blocking.
    pub fn acquire_within(
        self: &Arc<Self>,
        owner: &str,
        bytes: u64,
        wait: Duration,
    ) -> Result<Lease, Refused> {
        self.check_size(bytes)?;
        let deadline = Instant::now() + wait;
        let mut inner = self.lock();
        let ticket = match self.enter(&mut inner, owner, bytes) {
            Ok(()) => return Ok(self.lease(owner, bytes)),
            Err(ticket) => ticket,
        };
        loop {
            if self.try_turn(&mut inner, ticket, owner, bytes) {
                return Ok(self.lease(owner, bytes));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.leave(&mut inner, ticket);
                return Err(self.overloaded());
            }
            inner = self
                .freed
                .wait_timeout(inner, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// [`Budget::acquire`] for async code: waits in the same queue without blocking a runtime
    /// thread. Dropping the future while it waits (a client gone, a timeout around it) leaves
    /// the queue, so it never holds up those behind it.
    pub async fn acquire_async(
        self: &Arc<Self>,
        owner: &str,
        bytes: u64,
    ) -> Result<Lease, Refused> {
        self.check_size(bytes)?;
        let deadline = tokio::time::Instant::now() + self.wait;
        let ticket = match self.enter(&mut self.lock(), owner, bytes) {
            Ok(()) => return Ok(self.lease(owner, bytes)),
            Err(ticket) => ticket,
        };
        let mut place = Place {
            budget: self,
            ticket,
            left: false,
        };
        loop {
            // Registered before the check, so a release between the two is not missed.
            let freed = self.freed_async.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_turn(&mut self.lock(), ticket, owner, bytes) {
                place.left = true;
                return Ok(self.lease(owner, bytes));
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                let mut inner = self.lock();
                // A release may have made it our turn just as the time ran out.
                place.left = true;
                if self.try_turn(&mut inner, ticket, owner, bytes) {
                    return Ok(self.lease(owner, bytes));
                }
                self.leave(&mut inner, ticket);
                return Err(self.overloaded());
            }
        }
    }

    fn give_back(&self, owner: &str, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.used = inner.used.saturating_sub(bytes);
        if let Some(n) = inner.owners.get_mut(owner) {
            *n = n.saturating_sub(bytes);
            if *n == 0 {
                inner.owners.remove(owner);
            }
        }
        drop(inner);
        self.freed.notify_all();
        self.freed_async.notify_waiters();
    }
}

/// A place in a budget's queue, given up if the waiting future is dropped.
struct Place<'a> {
    budget: &'a Budget,
    ticket: u64,
    left: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if !self.left {
            let mut inner = self.budget.lock();
            self.budget.leave(&mut inner, self.ticket);
        }
    }
}

impl Lease {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Gives back all but `to` bytes (after an image was shrunk, say).
    pub fn shrink(&mut self, to: u64) {
        if to < self.bytes {
            self.budget.give_back(&self.owner, self.bytes - to);
            self.bytes = to;
        }
    }

    /// Adds `more` bytes to the lease, waiting like [`Budget::acquire_async`]; on refusal the
    /// lease keeps what it had.
    pub async fn grow_async(&mut self, more: u64) -> Result<(), Refused> {
        // This lease counts against the owner's share too: past it, waiting cannot help.
        self.budget.check_size(self.bytes + more)?;
        let mut extra = self.budget.acquire_async(&self.owner, more).await?;
        self.bytes += extra.bytes;
        extra.bytes = 0;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.give_back(&self.owner, self.bytes);
    }
}

/// The leases one request (or job) holds, released together when it ends.
pub struct Held {
    budget: Arc<Budget>,
    owner: String,
    wait: Option<Duration>,
    leases: Vec<Lease>,
}

impl Held {
    /// Leases of `budget` for `owner`, waiting the budget's own wait.
    pub fn new(budget: Arc<Budget>, owner: &str) -> Held {
        Held {
            budget,
            owner: owner.to_owned(),
            wait: None,
            leases: Vec::new(),
        }
    }

    /// The same, waiting as long as `wait` (background work that must not be refused).
    pub fn patient(budget: Arc<Budget>, owner: &str, wait: Duration) -> Held {
        Held {
            wait: Some(wait),
            ..Held::new(budget, owner)
        }
    }

    /// Takes `bytes` more; the returned lease may be shrunk and is kept until the end. Blocking.
    pub fn take(&mut self, bytes: u64) -> Result<&mut Lease, Refused> {
        // What this request already holds counts: past the owner's share it could never fit,
        // however long it waited.
        self.budget.check_size(self.bytes() + bytes)?;
        let lease = match self.wait {
            Some(w) => self.budget.acquire_within(&self.owner, bytes, w)?,
            None => self.budget.acquire(&self.owner, bytes)?,
        };
        self.leases.push(lease);
        Ok(self.leases.last_mut().expect("just pushed"))
    }

    /// Bytes held in all.
    pub fn bytes(&self) -> u64 {
        self.leases.iter().map(Lease::bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_owner_shares_hold_and_leases_give_back() {
        let b = Budget::new("t", 100, 60, Duration::from_millis(30));
        let a1 = b.acquire("a", 50).unwrap();
        // Owner a may hold 60: 20 more waits, then is refused.
        let started = Instant::now();
        assert!(matches!(
            b.acquire("a", 20),
            Err(Refused::Overloaded { budget: "t", .. })
        ));
        assert!(started.elapsed() >= Duration::from_millis(25));
        // Another owner fits in what is left.
        let b1 = b.acquire("b", 50).unwrap();
        assert_eq!(b.used(), 100);
        assert!(b.try_acquire("c", 1).unwrap().is_none());
        // More than an owner may ever hold is refused at once.
        assert!(matches!(
            b.acquire("c", 61),
            Err(Refused::TooLarge { limit: 60, .. })
        ));
        drop(a1);
        let mut a2 = b.acquire("a", 40).unwrap();
        a2.shrink(10);
        assert_eq!(b.used(), 60);
        drop((a2, b1));
        assert_eq!(b.used(), 0);
        assert_eq!(b.refused(), 2);
    }

    #[test]
    fn waiters_are_served_in_order_but_not_held_up_by_an_owner_at_its_share() {
        let b = Budget::new("t", 10, 6, Duration::from_secs(5));
        let a = b.acquire("a", 6).unwrap();
        let c = b.acquire("c", 4).unwrap();
        // "x" waits for 8 bytes; "y", later, wants 2: it must not jump the queue once room
        // comes back... (queued behind x)
        let (b1, b2) = (b.clone(), b.clone());
        let x = std::thread::spawn(move || b1.acquire("x", 6).map(|l| (Instant::now(), l)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            b.try_acquire("y", 2).unwrap().is_none(),
            "a newcomer waits its turn"
        );
        // ...while an owner stopped by its own share ("a" already holds 6 of 6) does not
        // block anyone behind it.
        let a2 = std::thread::spawn(move || b2.acquire_within("a", 1, Duration::from_millis(200)));
        drop(c);
        drop(a);
        let (_, xl) = x.join().unwrap().unwrap();
        assert_eq!(xl.bytes(), 6);
        assert!(a2.join().unwrap().is_ok());
    }

    #[test]
    fn a_dropped_waiter_leaves_the_queue() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = Budget::new("t", 10, 10, Duration::from_secs(5));
            let held = b.acquire("a", 8).unwrap();
            // A waiter for 5 bytes is dropped (a timeout around it fires) while it waits.
            let gone =
                tokio::time::timeout(Duration::from_millis(20), b.acquire_async("x", 5)).await;
            assert!(gone.is_err());
            drop(held);
            // It no longer stands before anyone.
            assert!(b.try_acquire("y", 2).unwrap().is_some());
            assert_eq!(b.lock().waiting.len(), 0);
        });
    }

    #[test]
    fn a_request_never_waits_for_more_than_its_owner_may_hold() {
        let b = Budget::new("t", 100, 10, Duration::from_secs(5));
        let mut held = Held::new(b.clone(), "a");
        held.take(6).unwrap();
        let started = Instant::now();
        assert!(matches!(
            held.take(6),
            Err(Refused::TooLarge { needed: 12, .. })
        ));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "refused at once"
        );
    }

    #[test]
    fn a_waiter_is_admitted_when_bytes_come_back() {
        let b = Budget::new("t", 10, 10, Duration::from_secs(5));
        let held = b.acquire("a", 10).unwrap();
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || b2.acquire("b", 5).map(|l| l.bytes()));
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), 5);
    }
}
