//! How the bash operator starts and stops a command's processes: contained at spawn (its own
//! session and process group, the try's cgroup where the machine allows one, SIGKILL when
//! Updraft dies), stopped together, and killed by a drop guard if the try's future is dropped.
//! The environment a command starts from is built here too, without the server's secrets.
//!
//! Invariant: nothing runs in the forked child but async-signal-safe calls; every `UPDRAFT_*`
//! variable of the server stays out of a command's environment.

use std::time::Duration;

use tokio::process::{Child, Command};

use super::super::containment::cgroup::{self, TryCgroup};
use super::super::containment::{self, StopPlan, TryProcesses, procfs, reaper};
use super::super::{OperatorError, TaskContext, TaskLog};
use super::TERM_GRACE;

/// Starts the command contained: its own session and process group, SIGKILL when Updraft
/// dies, and the try's cgroup where the machine allows one (without it if joining fails).
pub(super) fn spawn(
    ctx: &TaskContext,
    build: impl Fn() -> Command,
    key: &str,
) -> Result<(Child, TryProcesses, i32), OperatorError> {
    let cgroup = match cgroup::base().filter(|_| ctx.settings.try_cgroups) {
        Some(base) => match TryCgroup::create(base, key) {
            Ok(cg) => Some(cg),
            Err(e) => {
                ctx.log
                    .line(format!("warning: no cgroup for this try ({e}); contained by session"));
                None
            }
        },
        None => None,
    };
    let started = |mut cmd: Command, cg: Option<&TryCgroup>| {
        contain(&mut cmd, cg);
        reaper::spawn_leader(|| {
            let child = cmd.spawn()?;
            let pid = child.id();
            Ok((child, pid))
        })
    };
    let child = match (started(build(), cgroup.as_ref()), &cgroup) {
        (Ok(child), _) => child,
        (Err(e), Some(cg)) => {
            ctx.log.line(format!(
                "warning: cannot start the command in cgroup {} ({e}); contained by session",
                cg.path().display()
            ));
            let _ = std::fs::remove_dir(cg.path());
            started(build(), None)
                .map_err(|e| OperatorError::Retryable(format!("cannot start bash: {e}")))?
        }
        (Err(e), None) => return Err(OperatorError::Retryable(format!("cannot start bash: {e}"))),
    };
    // A child that was just spawned and not yet waited for always has its pid.
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) else {
        return Err(OperatorError::Retryable("bash started without a pid".into()));
    };
    let cgroup = cgroup.map(|cg| cg.path().to_path_buf());
    let procs = TryProcesses {
        key: key.to_string(),
        pgid: Some(pid),
        sid: Some(pid),
        since: procfs::stat(pid).map(|p| p.starttime),
        leader: Some(pid),
        // With a cgroup its member list is the whole try; without one, look through /proc.
        scan: cgroup.is_none(),
        cgroup,
    };
    Ok((child, procs, pid))
}

/// How long the try's processes get after SIGTERM before SIGKILL, and how long to wait in all
/// before giving up on processes that do not go (stuck in the kernel).
const STOP: StopPlan = StopPlan { grace: TERM_GRACE, bound: Duration::from_secs(10) };

pub(super) async fn stop_all(
    procs: &TryProcesses,
    log: &TaskLog,
) -> Result<containment::Stopped, containment::Survivors> {
    containment::stop(procs, STOP, log).await
}

/// Makes the forked child, before it execs bash: the leader of a new session and process
/// group (`setsid`), SIGKILLed when the thread that spawned it dies (`PR_SET_PDEATHSIG`; tokio
/// spawns from runtime worker threads, which live as long as the runtime), and a member of the
/// try's cgroup. Only async-signal-safe calls run in the child.
///
/// This closure makes the standard library fork instead of posix_spawn (vfork): the page
/// tables of this process are copied and its pages write-protected until the child execs.
/// Measured on the project's 2-core machine (loaded): about 1.5 ms more per command for a
/// 10 MB process, 0 for a 1 MB one. It is the price of a session and a cgroup entered before
/// the command's first instruction; posix_spawn has no cgroup before glibc 2.41
/// (`posix_spawnattr_setcgroup_np`), which is the way back to vfork speed.
fn contain(cmd: &mut Command, cgroup: Option<&TryCgroup>) {
    let parent = std::process::id();
    let procs = cgroup.map(|cg| cg.procs_file().clone());
    // SAFETY: the closure runs in the forked child before exec; it only calls setsid, prctl,
    // getppid, _exit and (in `join_from_child`) open/write/close, all async-signal-safe, and
    // allocates nothing (the cgroup path was built before the fork).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal us.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            if let Some(procs) = &procs {
                cgroup::join_from_child(procs)?;
            }
            Ok(())
        });
    }
}

/// The environment a command starts from. With `append_env` (the default) it is this process's
/// environment without Updraft's own settings: every `UPDRAFT_*` variable is dropped, because
/// they hold connection URIs with passwords (`UPDRAFT_CONN_*`), the key that decrypts stored
/// connections, and the metadata database's URL. Variables (`UPDRAFT_VAR_*`) are not secrets,
/// but they reach tasks through `{{ var('name') }}`, like connections through the task types
/// that name them. Without `append_env`, only PATH, or `bash -c 'curl ...'` finds nothing.
/// (Passing the inherited environment on is not configuration, so it is read here.)
pub(super) fn base_environment(cmd: &mut Command, append_env: bool) {
    cmd.env_clear();
    if append_env {
        cmd.envs(std::env::vars_os().filter(|(name, _)| reaches_tasks(name)));
    } else if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
}

/// Whether an inherited environment variable may reach a task.
fn reaches_tasks(name: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    !name.as_bytes().starts_with(b"UPDRAFT_")
}

/// While armed, dropping it (the try's future was dropped: a timeout around it) SIGKILLs every
/// process of the try at once and cleans up in the background. (`kill_on_drop` alone would
/// kill only the leader, `bash`.)
pub(super) struct Guard(pub(super) Option<TryProcesses>);

impl Guard {
    /// The try's processes are gone (or stopping them was given up): nothing to do on drop.
    pub(super) fn disarm(&mut self, leader: i32) {
        self.0 = None;
        reaper::forget_leader(leader);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(procs) = self.0.take() else { return };
        procs.kill_now();
        if let Some(pid) = procs.leader {
            // tokio's orphan queue reaps the dropped leader.
            reaper::forget_leader(pid);
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // Waits for the processes to go, reaps them, removes the cgroup.
            let procs = TryProcesses { leader: None, ..procs };
            rt.spawn(async move {
                let _ = containment::stop(&procs, STOP, &TaskLog::sink()).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_updraft_setting_reaches_a_task() {
        for name in [
            "UPDRAFT_CONN_WAREHOUSE",
            "UPDRAFT_SECRET_KEY",
            "UPDRAFT_DATABASE_URL",
            "UPDRAFT_TEST_DATABASE_URL",
            "UPDRAFT_VAR_REGION",
            "UPDRAFT_HOME",
        ] {
            assert!(!reaches_tasks(name.as_ref()), "{name}");
        }
        for name in ["PATH", "HOME", "LANG", "AWS_REGION", "MY_UPDRAFT_THING"] {
            assert!(reaches_tasks(name.as_ref()), "{name}");
        }
    }
}
