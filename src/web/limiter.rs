//! The login rate limit: exponential back-off per (user name, client address), and a looser
//! back-off per client address.
//!
//! Why this shape: a lock per user name lets anyone lock any account (the admin's included)
//! from anywhere, and a hard lock per address locks out everyone behind a shared address. A
//! back-off keyed on the pair slows a guesser of one account from one address without touching
//! the account's owner elsewhere; the per-address back-off, with a much larger allowance, slows
//! a guesser spraying many names from one address. Waits double per failure and are capped.
//!
//! Invariants: the user name is keyed exactly as it is looked up ([`login_name`]: trimmed,
//! case kept, because the store's user names are case-sensitive), so `"admin "` shares
//! `admin`'s budget; a refused attempt does not check the password, so it is not counted;
//! memory is bounded ([`MAX_ENTRIES`]); time is passed in, so tests need no sleeps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The name a login form's user field stands for: what the store looks up and what the limit
/// and the audit log are keyed on.
pub fn login_name(raw: &str) -> &str {
    raw.trim()
}

/// How one key backs off.
#[derive(Debug, Clone, Copy)]
struct Policy {
    /// Failures allowed before any wait.
    free: u32,
    /// First wait; each later failure doubles it.
    base: Duration,
    /// Longest wait.
    cap: Duration,
}

/// One user from one address: a forgotten password costs a few seconds, a guesser hours.
const PAIR: Policy =
    Policy { free: 5, base: Duration::from_secs(1), cap: Duration::from_secs(15 * 60) };
/// One address, whatever the names: room for a whole office mistyping, not for spraying.
const ADDRESS: Policy =
    Policy { free: 50, base: Duration::from_secs(1), cap: Duration::from_secs(5 * 60) };
/// Longest name part of a key: user names have at most 64 characters, and a posted name of a
/// megabyte must not become a megabyte of memory.
const KEY_CHARS: usize = 64;
/// Failures older than this (since the key's last failure) are forgotten.
const FORGET: Duration = Duration::from_secs(60 * 60);
/// Most keys remembered; beyond it, keys that no longer make anyone wait are dropped first.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, Option<IpAddr>),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// The key of `user` at `addr`.
fn pair(user: &str, addr: Option<IpAddr>) -> Key {
    Key::Pair(login_name(user).chars().take(KEY_CHARS).collect(), addr)
}

impl Policy {
    /// How long after the last failure the next attempt must wait.
    fn wait(self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(20);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }
}

/// Failed-login counters of this web server.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl LoginLimiter {
    /// Ok when `user` may try a password from `addr` at `now`; otherwise how long to wait.
    pub fn check(&self, user: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Ok(map) = self.entries.lock() else { return Ok(()) };
        let remaining = |key: &Key, policy: Policy| {
            map.get(key).map_or(Duration::ZERO, |e| {
                (e.last + policy.wait(e.failures)).saturating_duration_since(now)
            })
        };
        let mut wait = remaining(&pair(user, addr), PAIR);
        if let Some(a) = addr {
            wait = wait.max(remaining(&Key::Address(a), ADDRESS));
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Records a failed password for `user` from `addr`.
    pub fn failed(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let Ok(mut map) = self.entries.lock() else { return };
        if map.len() >= MAX_ENTRIES {
            prune(&mut map, now);
        }
        let mut bump = |key: Key| {
            let e = map.entry(key).or_insert(Entry { failures: 0, last: now });
            if now.saturating_duration_since(e.last) > FORGET {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        };
        bump(pair(user, addr));
        if let Some(a) = addr {
            bump(Key::Address(a));
        }
    }

    /// Forgets the pair's failures after a good password. The address keeps its count: logging
    /// in to one's own account must not buy more guesses at others.
    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&pair(user, addr));
        }
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops forgotten keys, then, if still full, every key that makes nobody wait now, then (an
/// attacker with endless addresses) the oldest half.
fn prune(map: &mut HashMap<Key, Entry>, now: Instant) {
    map.retain(|_, e| now.saturating_duration_since(e.last) <= FORGET);
    if map.len() >= MAX_ENTRIES {
        map.retain(|k, e| {
            let policy = if matches!(k, Key::Address(_)) { ADDRESS } else { PAIR };
            e.last + policy.wait(e.failures) > now
        });
    }
    if map.len() >= MAX_ENTRIES {
        let mut lasts: Vec<Instant> = map.values().map(|e| e.last).collect();
        lasts.sort_unstable();
        let cut = lasts[lasts.len() / 2];
        map.retain(|_, e| e.last > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn a_pair_backs_off_exponentially_and_others_are_untouched() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..PAIR.free {
            assert!(l.check("admin", a, t0).is_ok());
            l.failed("admin", a, t0);
        }
        assert_eq!(l.check("admin", a, t0), Err(Duration::from_secs(1)));
        // The owner from another address, and another user from the same address, go on.
        assert!(l.check("admin", b, t0).is_ok());
        assert!(l.check("alice", a, t0).is_ok());
        // Each further failure doubles the wait.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check("admin", a, t1).is_ok());
        l.failed("admin", a, t1);
        assert_eq!(l.check("admin", a, t1), Err(Duration::from_secs(2)));
        l.failed("admin", a, t1);
        assert_eq!(l.check("admin", a, t1), Err(Duration::from_secs(4)));
        // Capped.
        for _ in 0..40 {
            l.failed("admin", a, t1);
        }
        assert_eq!(l.check("admin", a, t1), Err(PAIR.cap));
        l.succeeded("admin", a);
        assert!(l.check("admin", a, t1).is_ok());
    }

    #[test]
    fn the_name_is_keyed_as_it_is_looked_up() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for name in ["admin ", " admin", "admin\t", "admin", "\nadmin"] {
            l.failed(name, None, now);
        }
        assert!(l.check("admin", None, now).is_err());
        assert!(l.check("admin  ", None, now).is_err());
        // User names are case-sensitive in the store: `Admin` is another account.
        assert!(l.check("Admin", None, now).is_ok());
    }

    #[test]
    fn an_address_spraying_names_backs_off_too() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        let a = ip("10.0.0.9");
        for i in 0..ADDRESS.free {
            assert!(l.check(&format!("u{i}"), a, now).is_ok(), "attempt {i}");
            l.failed(&format!("u{i}"), a, now);
        }
        assert_eq!(l.check("fresh", a, now), Err(ADDRESS.base));
        assert!(l.check("fresh", ip("10.0.0.10"), now).is_ok());
        // The back-off ends by itself, and old failures are forgotten.
        assert!(l.check("fresh", a, now + ADDRESS.base).is_ok());
        let later = now + FORGET + Duration::from_secs(1);
        l.failed("fresh", a, later);
        assert!(l.check("other", a, later).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            l.failed(&format!("u{i}"), None, now + Duration::from_micros(u64::from(i)));
        }
        assert!(l.len() <= MAX_ENTRIES, "{}", l.len());
    }
}
