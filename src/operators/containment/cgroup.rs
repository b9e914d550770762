//! A cgroup v2 per try, where the machine allows it: `updraft/<try key>` under this process's
//! own cgroup. A process cannot leave a cgroup by `setsid` or a double fork, so the cgroup is
//! the one boundary that holds even for a task that tries to hide from its process group.
//!
//! This file owns the cgroup directories: detecting whether they can be made (cgroup2 mounted,
//! writable, once per process), creating one per try, listing and killing its members, and
//! removing it. It must never touch a cgroup it did not create under `updraft/`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use procfs_core::FromRead;
use procfs_core::ProcessCGroups;
use procfs_core::process::MountInfos;

/// The folder holding the per-try cgroups of this process, when the machine allows them:
/// `<cgroup2 mount><own cgroup>/updraft`. Detected once.
pub fn base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| match detect() {
        Ok(dir) => {
            tracing::info!(dir = %dir.display(), "each try runs in a cgroup of its own");
            Some(dir)
        }
        Err(why) => {
            tracing::info!(reason = %why, "no cgroup per try; tries are contained by session, process group and environment marker");
            None
        }
    })
    .as_deref()
}

fn detect() -> Result<PathBuf, String> {
    let mounts = std::fs::read("/proc/self/mountinfo").map_err(|e| format!("mountinfo: {e}"))?;
    let mounts = MountInfos::from_read(mounts.as_slice()).map_err(|e| format!("mountinfo: {e}"))?;
    // A hybrid system mounts cgroup2 beside the v1 hierarchies (`/sys/fs/cgroup/unified`).
    let mount = mounts.0.iter().find(|m| m.fs_type == "cgroup2").ok_or("cgroup2 is not mounted")?;
    let own = std::fs::read("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let own = ProcessCGroups::from_read(own.as_slice()).map_err(|e| e.to_string())?;
    let own = own.0.iter().find(|c| c.hierarchy == 0).ok_or("no cgroup v2 membership")?;
    // The path is relative to the mount's root when the mount shows a subtree.
    let rel = own.pathname.strip_prefix(mount.root.as_str()).unwrap_or(&own.pathname);
    let dir = mount.mount_point.join(rel.trim_start_matches('/')).join("updraft");
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    // Creating the folder is not enough: moving a process in needs write access to the
    // cgroup files, which a read-only or undelegated hierarchy refuses.
    let probe = dir.join(format!("probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| format!("cannot create {}: {e}", probe.display()))?;
    let writable = std::fs::OpenOptions::new().write(true).open(probe.join("cgroup.procs"));
    let _ = std::fs::remove_dir(&probe);
    writable.map_err(|e| format!("cgroup.procs is not writable: {e}"))?;
    Ok(dir)
}

/// The cgroup of one try, created empty; the command's process moves itself in before exec.
#[derive(Debug)]
pub struct TryCgroup {
    path: PathBuf,
    procs: CString,
}

impl TryCgroup {
    /// Creates `<base>/<key>`. The key is unique per try on this host.
    pub fn create(base: &Path, key: &str) -> io::Result<TryCgroup> {
        let path = base.join(key);
        std::fs::create_dir(&path)?;
        let procs = CString::new(path.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| io::Error::other("cgroup path with a NUL byte"))?;
        Ok(TryCgroup { path, procs })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<path>/cgroup.procs`, ready for the forked child (which must not allocate).
    pub fn procs_file(&self) -> &CString {
        &self.procs
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs` ("0" names the
/// writer). Called in the forked child before exec: only async-signal-safe calls.
pub fn join_from_child(procs: &CString) -> io::Result<()> {
    // SAFETY: open/write/close on a NUL-terminated path owned by the caller; no allocation.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n != 1 {
            return Err(err);
        }
    }
    Ok(())
}

/// The pids in cgroup `dir` (empty when it is gone).
pub fn members(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// SIGKILLs every process in cgroup `dir` (and its sub-cgroups): `cgroup.kill` where the kernel
/// has it (5.14+), which also catches processes forking meanwhile; else each listed pid.
pub fn kill_all(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for pid in members(dir) {
        super::signal(pid, libc::SIGKILL);
    }
}

/// Removes an empty cgroup (a few tries: the kernel may still be tearing the last process
/// down). A cgroup that is gone already is fine.
pub async fn remove(dir: &Path) {
    let mut pause = std::time::Duration::from_millis(1);
    for _ in 0..12 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => tokio::time::sleep(pause).await,
        }
        // 1 ms, doubling: about 4 s in all.
        pause *= 2;
    }
    tracing::warn!(dir = %dir.display(), "cannot remove the cgroup of a finished try");
}

/// Whether `path` is a cgroup this code created: directly under a folder named `updraft`.
pub fn is_ours(path: &Path) -> bool {
    path.parent().and_then(Path::file_name).is_some_and(|n| n == "updraft")
        && path.join("cgroup.procs").exists()
}
