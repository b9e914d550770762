//! Containment of a try's processes: what identifies them on this host, how a command is
//! started inside its boundary, and how every process of a try is stopped — by the worker when
//! the try ends or is cancelled, and by crash recovery when the worker itself died.
//!
//! A command runs in its own session and process group (`setsid` before exec), in a cgroup v2
//! of its own where the machine allows it ([`cgroup`]), with `UPDRAFT_TRY_KEY=<key>` in its
//! environment, and with SIGKILL as its parent-death signal; the worker is a child subreaper
//! ([`reaper`]), so orphans of a try stay the worker's while it lives. A process belongs to a
//! try when it is in the try's cgroup, or in its process group or session, or carries its key.
//!
//! Invariant: [`stop`] returns Ok only once no process of the try is left (a zombie runs no
//! code and counts as gone; it is reaped when it is this process's child), and callers record
//! a try's end only after that, so a try never overlaps its next try or a downstream task.

pub mod cgroup;
pub mod procfs;
pub mod reaper;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::TaskLog;
use crate::model::TiId;

/// The environment variable that marks every process of a try. A process keeps it through
/// `setsid` and double forks; only a process that rebuilds its environment loses it.
pub const TRY_KEY_VAR: &str = "UPDRAFT_TRY_KEY";

/// How often [`stop`] looks again while processes are going away.
const POLL: Duration = Duration::from_millis(20);

/// The key of one try, unique on a host: the instance, the try number and the process that
/// runs it (whose id holds the host, its pid and its start time). Safe as a file name.
pub fn try_key(owner_process: &str, ti_id: TiId, try_number: i64) -> String {
    let owner: String = owner_process
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    format!("try-{ti_id}-{try_number}-{owner}")
}

/// What identifies the processes of one try on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TryProcesses {
    /// The value of [`TRY_KEY_VAR`] in the try's environment.
    pub key: String,
    /// The command's process group (the leader's pid). None when unknown, or recorded under
    /// another boot.
    pub pgid: Option<i32>,
    /// The command's session (the leader's pid too: `setsid` makes both). A process that left
    /// the group (`setpgid`, a shell's job control) keeps the session.
    pub sid: Option<i32>,
    /// The try's cgroup, when it has one.
    pub cgroup: Option<PathBuf>,
    /// Start time (ticks after boot) of the leader: no process of the try is older, so the
    /// environment scan skips older ones. None: look at every process.
    pub since: Option<u64>,
    /// A child whose exit status its owner collects (the leader, while tokio holds it): never
    /// reaped here.
    pub leader: Option<i32>,
    /// Scan `/proc` for the group, the session and the key. Without a cgroup this is the only
    /// way to see the processes; with one it finds what left the cgroup's view (nothing,
    /// short of a privileged task writing `cgroup.procs`), so the worker skips it then.
    pub scan: bool,
}

/// Bounds of [`stop`].
#[derive(Debug, Clone, Copy)]
pub struct StopPlan {
    /// After SIGTERM, how long the processes get to exit before SIGKILL.
    pub grace: Duration,
    /// How long in all before giving up with [`Survivors`].
    pub bound: Duration,
}

/// Processes of a try still alive when [`stop`] gave up (stuck in the kernel, or out of
/// reach of this user).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} process(es) of the try still alive after {}: {pids:?}", pids.len(), humantime::format_duration(*after))]
pub struct Survivors {
    /// Their pids.
    pub pids: Vec<i32>,
    /// How long stop tried.
    pub after: Duration,
}

/// What [`stop`] did, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Processes found alive at the first look.
    pub found: usize,
    /// SIGKILL was needed.
    pub killed: bool,
}

impl TryProcesses {
    /// The live processes of the try (the worker itself excluded), and the zombies among its
    /// members that are this process's to reap.
    fn look(&self, me: i32) -> (Vec<i32>, Vec<i32>) {
        let mut live = BTreeSet::new();
        let mut zombies = Vec::new();
        let mut classify = |p: procfs::Proc| {
            if p.pid == me {
                return;
            }
            if p.zombie {
                if p.ppid == me && Some(p.pid) != self.leader {
                    zombies.push(p.pid);
                }
            } else {
                live.insert(p.pid);
            }
        };
        if let Some(dir) = &self.cgroup {
            for pid in cgroup::members(dir) {
                if let Some(p) = procfs::stat(pid) {
                    classify(p);
                }
            }
        }
        if self.scan {
            let entry = format!("{TRY_KEY_VAR}={}", self.key);
            for p in procfs::all() {
                let in_group = self.pgid.is_some_and(|g| p.pgrp == g)
                    || self.sid.is_some_and(|s| p.session == s);
                let marked = !p.zombie
                    && !self.key.is_empty()
                    && self.since.is_none_or(|s| p.starttime >= s)
                    && procfs::environ_has(p.pid, entry.as_bytes());
                if in_group || marked {
                    classify(p);
                }
            }
        }
        (live.into_iter().collect(), zombies)
    }

    fn signal_all(&self, live: &[i32], sig: i32) {
        if sig == libc::SIGKILL
            && let Some(dir) = &self.cgroup
        {
            cgroup::kill_all(dir);
        }
        if let Some(pgid) = self.pgid {
            signal(-pgid, sig);
        }
        for &pid in live {
            signal(pid, sig);
        }
    }

    /// One round of SIGKILL to everything of the try, without waiting: for a drop guard,
    /// which cannot wait.
    pub fn kill_now(&self) {
        let (live, _) = self.look(std::process::id() as i32);
        self.signal_all(&live, libc::SIGKILL);
    }
}

/// Stops every process of the try: SIGTERM, up to `plan.grace` for them to exit, then SIGKILL
/// (repeated, for processes forked meanwhile), waiting until none is left, at most
/// `plan.bound`. Reaps the zombies among them that are this process's children, and removes
/// the try's cgroup once it is empty. Ok at once (with nothing found) when nothing is left.
pub async fn stop(t: &TryProcesses, plan: StopPlan, log: &TaskLog) -> Result<Stopped, Survivors> {
    let me = std::process::id() as i32;
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    let mut report = Stopped::default();
    let mut termed = false;
    loop {
        let (live, zombies) = t.look(me);
        for pid in zombies {
            reaper::reap_if_orphan(pid);
        }
        if !termed {
            report.found = live.len();
        }
        if live.is_empty() {
            // Members that exited between two looks may be zombies no look listed (a cgroup
            // lists no zombie): reap those that are ours.
            for pid in seen {
                if Some(pid) != t.leader {
                    reaper::reap_if_orphan(pid);
                }
            }
            if let Some(dir) = t.cgroup.clone() {
                // Empty is what matters; the folder goes in the background, so the try's end
                // does not wait for the kernel to finish tearing the last process down.
                tokio::spawn(async move { cgroup::remove(&dir).await });
            }
            return Ok(report);
        }
        seen.extend(live.iter().copied());
        let elapsed = start.elapsed();
        if elapsed >= plan.bound {
            return Err(Survivors { pids: live, after: elapsed });
        }
        if elapsed >= plan.grace {
            if !report.killed {
                log.line(format!(
                    "{} process(es) still alive {} after SIGTERM: sending SIGKILL",
                    live.len(),
                    humantime::format_duration(plan.grace)
                ));
            }
            report.killed = true;
            t.signal_all(&live, libc::SIGKILL);
        } else if !termed {
            log.line(format!("sending SIGTERM to {} process(es) of the try: {live:?}", live.len()));
            t.signal_all(&live, libc::SIGTERM);
            termed = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sends `sig` to `pid` (a negative pid names a process group); false when nothing received it.
pub fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: getpgrp reads this process's group id; no memory is involved.
    let own_group = unsafe { libc::getpgrp() };
    if pid == 0 || pid == -1 || pid == 1 || pid == -own_group || pid == std::process::id() as i32 {
        // 0 and -1 would signal this process's group or everything, 1 is init, and neither
        // this process nor its group is ever a try's.
        return false;
    }
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    unsafe { libc::kill(pid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_per_try_and_safe_as_file_names() {
        let a = try_key("host-1:123:456", TiId(7), 1);
        assert_eq!(a, "try-7-1-host-1_123_456");
        assert_ne!(a, try_key("host-1:123:456", TiId(7), 2));
        assert_ne!(a, try_key("host-1:124:456", TiId(7), 1));
        assert!(!try_key("a/../b c", TiId(1), 1).contains(['/', ' ']));
    }

    #[test]
    fn signal_refuses_the_pids_that_mean_everyone() {
        assert!(!signal(0, 0));
        assert!(!signal(-1, 0));
        assert!(!signal(1, 0));
    }

    #[tokio::test]
    async fn stop_with_nothing_left_returns_at_once() {
        let t = TryProcesses { key: "try-none".into(), scan: true, ..Default::default() };
        let plan = StopPlan { grace: Duration::from_secs(1), bound: Duration::from_secs(2) };
        let started = Instant::now();
        assert_eq!(stop(&t, plan, &TaskLog::sink()).await, Ok(Stopped::default()));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
