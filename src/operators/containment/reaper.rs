//! This process as a child subreaper, and the reaping of the orphans it inherits.
//!
//! Once the worker is a subreaper (`PR_SET_CHILD_SUBREAPER`), a process of a try whose parent
//! dies is re-parented to the worker instead of init: it stays findable as the worker's child
//! while the worker lives, and when it exits it is the worker's zombie to reap.
//!
//! Invariant: this file never reaps a child whose exit status someone else waits for. The
//! command leaders spawned by the bash operator are tokio's to reap: they are registered here
//! as they are spawned, and the orphan reaper skips its pass while a spawn is in flight, so a
//! leader that exits at once can never be mistaken for an orphan. Children that other code spawns stay in this
//! process's session, and only zombies in another session are reaped as orphans.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use super::procfs;

/// The command leaders whose exit status tokio collects, and how many are being spawned right
/// now (their pids are not known yet). Process-wide, like the subreaper flag and the zombies it
/// brings: every engine of this process shares them.
struct Leaders {
    pids: BTreeSet<i32>,
    spawning: usize,
}

static LEADERS: Mutex<Leaders> = Mutex::new(Leaders { pids: BTreeSet::new(), spawning: 0 });

fn leaders() -> MutexGuard<'static, Leaders> {
    // A panic while holding the lock leaves a valid state: keep using it.
    LEADERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes this process a child subreaper. Idempotent; false where the kernel refuses.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with integer arguments only; sets a flag on this process.
    let ok = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
    if !ok {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot become a child subreaper: orphans of tries go to init");
    }
    ok
}

/// Runs `spawn` (which forks the leader of a try) and registers the pid it returns. While a
/// spawn is in flight the orphan reaper skips its pass, so it never sees a leader that exited
/// before it was registered. Spawns do not wait for each other (a spawn waits for the child's
/// exec, a millisecond or more).
pub fn spawn_leader<T>(
    spawn: impl FnOnce() -> std::io::Result<(T, Option<u32>)>,
) -> std::io::Result<T> {
    leaders().spawning += 1;
    let spawned = spawn();
    let mut l = leaders();
    l.spawning -= 1;
    let (child, pid) = spawned?;
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        l.pids.insert(pid);
    }
    Ok(child)
}

/// Forgets a leader once tokio reaped it (or gave it up to its own orphan queue).
pub fn forget_leader(pid: i32) {
    leaders().pids.remove(&pid);
}

/// Reaps `pid` if it is a zombie child of this process and not a registered leader. Returns
/// whether it was reaped.
pub fn reap_if_orphan(pid: i32) -> bool {
    // A member of a try is never another try's leader (leaders are in sessions of their
    // own), so a spawn in flight cannot be this pid.
    if leaders().pids.contains(&pid) {
        return false;
    }
    let me = std::process::id() as i32;
    match procfs::stat(pid) {
        Some(p) if p.zombie && p.ppid == me => reap(pid),
        _ => false,
    }
}

/// Reaps every zombie child of this process in process group `pgid`. Only once the group's
/// leader was reaped by its owner (it is a member of its own group).
pub fn reap_group(pgid: i32) {
    // Bounded: each round reaps one zombie; a group has far fewer members than this.
    for _ in 0..4096 {
        // SAFETY: waitid writes into the zeroed siginfo we own; WNOHANG never blocks.
        let reaped = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PGID,
                pgid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            );
            r == 0 && info.si_pid() != 0
        };
        if !reaped {
            return;
        }
    }
}

/// Reaps the zombies this process inherited as a subreaper: children in another session that
/// are not registered leaders. Called every second by the worker, and cheap (one pass over
/// `/proc`).
pub fn reap_strays() -> usize {
    let l = leaders();
    if l.spawning > 0 {
        // A leader being spawned may already be a zombie without being registered: look
        // again next time.
        return 0;
    }
    let me = std::process::id() as i32;
    let session = procfs::own_session();
    let mut n = 0;
    for p in procfs::all() {
        if p.ppid == me
            && p.zombie
            && p.session != session
            && !l.pids.contains(&p.pid)
            && reap(p.pid)
        {
            n += 1;
        }
    }
    n
}

fn reap(pid: i32) -> bool {
    // SAFETY: waitid on one pid with WNOHANG writes only into the zeroed siginfo we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG) == 0
            && info.si_pid() != 0
    }
}
