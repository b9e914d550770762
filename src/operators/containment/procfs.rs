//! The processes of this host as `/proc` shows them: the few fields containment needs (parent,
//! process group, session, state, start time), whether an environment carries a marker, and
//! the boot id that tells whether recorded pids still mean anything.
//!
//! This file only reads. It never signals or reaps; a process may vanish between two reads,
//! so every read is allowed to fail and then the process simply does not appear.

use std::path::Path;
use std::sync::OnceLock;

use procfs_core::FromRead;
use procfs_core::process::Stat;

/// One process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: i32,
    /// Parent process id (the subreaper or init once the parent died).
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// A zombie (or dead) process runs no code; it only waits for its parent to reap it.
    pub zombie: bool,
    /// Start time in clock ticks after boot: orders processes by age without pid reuse.
    pub starttime: u64,
}

/// `/proc/<pid>/stat`, or None when the process is gone (or unreadable).
pub fn stat(pid: i32) -> Option<Proc> {
    read_stat(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

fn read_stat(path: &Path) -> Option<Proc> {
    let bytes = std::fs::read(path).ok()?;
    // The crate handles a command name with spaces and parentheses, which a split on spaces
    // gets wrong (`(my (odd) cmd)`).
    let s = Stat::from_read(bytes.as_slice()).ok()?;
    Some(Proc {
        pid: s.pid,
        ppid: s.ppid,
        pgrp: s.pgrp,
        session: s.session,
        zombie: matches!(s.state, 'Z' | 'X' | 'x'),
        starttime: s.starttime,
    })
}

/// Every process of this host (of this pid namespace), in no particular order.
pub fn all() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        (pid > 0).then(|| read_stat(&e.path().join("stat"))).flatten()
    })
    .collect()
}

/// Whether `pid`'s environment holds exactly the entry `entry` (`NAME=value`). Processes of
/// other users are unreadable and answer false; so do zombies, whose memory is gone.
pub fn environ_has(pid: i32, entry: &[u8]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    env.split(|b| *b == 0).any(|e| e == entry)
}

/// This boot's id: pids, process groups and sessions recorded under another boot name other
/// processes now.
pub fn boot_id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
    })
    .as_deref()
}

/// The session of this process.
pub fn own_session() -> i32 {
    // SAFETY: getsid(0) reads the caller's session id; no memory is involved.
    unsafe { libc::getsid(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_with_its_group_and_session() {
        let me = std::process::id() as i32;
        let p = stat(me).expect("own stat");
        assert_eq!(p.pid, me);
        assert_eq!(p.session, own_session());
        // SAFETY: getpgrp only reads the caller's process group.
        assert_eq!(p.pgrp, unsafe { libc::getpgrp() });
        assert!(!p.zombie);
        assert!(all().iter().any(|q| q.pid == me));
        assert!(stat(i32::MAX).is_none(), "no such pid");
    }

    #[test]
    fn environment_entries_match_whole() {
        let me = std::process::id() as i32;
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(environ_has(me, format!("PATH={path}").as_bytes()));
        assert!(!environ_has(me, b"PATH="), "a prefix is not an entry");
        assert!(boot_id().is_some_and(|b| b.len() >= 32));
    }
}
