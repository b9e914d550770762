//! `type: bash`: runs a shell command and streams its output to the try's log.
//!
//! This file owns the life of the command's processes: spawn them contained (their own session
//! and process group, the try's cgroup where there is one, the try's key in their environment;
//! see `containment`), record what identifies them before reading any output, stream output,
//! and stop every one of them when the try ends. It must never leave a process running after
//! the try is over: a command that exits has what it left behind stopped before the try's end
//! is recorded, a cancelled try has every process stopped (SIGTERM, then SIGKILL after a grace
//! period), a dropped try future SIGKILLs them (a drop guard), a dead Updraft kills the leader
//! through `PR_SET_PDEATHSIG`, and crash recovery kills the rest by what was recorded.

mod output;
mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::containment::{self, procfs, reaper};
use super::template::Escaping;
use super::{OperatorError, Outcome, Stream, TaskContext};
use crate::dag::kinds::BashTask;
use crate::store::TryProcess;
use output::{READER_GRACE, Reader};
use process::{Guard, base_environment, spawn, stop_all};

/// How long the command's process group gets to exit after SIGTERM before SIGKILL (Airflow
/// waits the same order of time before escalating).
const TERM_GRACE: Duration = Duration::from_secs(5);

/// Runs `bash -c <command>` and returns its last non-empty stdout line as XCom.
pub async fn run(ctx: &TaskContext, task: &BashTask) -> Result<Outcome, OperatorError> {
    let renderer = ctx.renderer();
    // Values are quoted for the shell state where they land; `env` values and `cwd` are not
    // parsed by a shell, so they are rendered as plain text.
    let command = renderer.render_as(Escaping::Shell, &task.command)?;
    ctx.record("command", serde_json::Value::String(command.clone()));
    let mut env = BTreeMap::new();
    for (name, value) in &task.env {
        env.insert(name.clone(), renderer.render(value)?);
    }
    if !env.is_empty() {
        ctx.record("env", serde_json::to_value(&env).unwrap_or_default());
    }
    let cwd = match &task.cwd {
        Some(c) => {
            let c = renderer.render(c)?;
            ctx.record("cwd", serde_json::Value::String(c.clone()));
            if !Path::new(&c).is_dir() {
                return Err(OperatorError::Fatal(format!("cwd `{c}` is not a directory")));
            }
            WorkDir::Given(PathBuf::from(c))
        }
        None => WorkDir::temp()
            .map_err(|e| OperatorError::Retryable(format!("cannot create a temporary cwd: {e}")))?,
    };

    let key = containment::try_key(
        ctx.ti.owner_process.as_deref().unwrap_or(""),
        ctx.ti.id,
        ctx.ti.try_number,
    );
    let build = || {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(&command).current_dir(cwd.path());
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        base_environment(&mut cmd, task.append_env);
        cmd.envs(&env);
        let ti = &ctx.ti;
        cmd.env("UPDRAFT_CTX_DAG_ID", &ti.dag_id)
            .env("UPDRAFT_CTX_TASK_ID", &ti.task_id)
            .env("UPDRAFT_CTX_RUN_ID", &ti.run_id)
            .env("UPDRAFT_CTX_TRY_NUMBER", ti.try_number.to_string())
            .env("UPDRAFT_CTX_LOGICAL_DATE", ctx.run.logical_date.to_rfc3339())
            .env("UPDRAFT_CTX_MAP_INDEX", ti.map_index.to_string())
            .env(containment::TRY_KEY_VAR, &key);
        cmd.kill_on_drop(true);
        cmd
    };

    ctx.log.line(format!("running: bash -c {command}"));
    let started = Instant::now();
    let (mut child, procs, pid) = spawn(ctx, build, &key)?;
    // From here until the try's processes are all gone, dropping this future kills them.
    let mut guard = Guard(Some(procs.clone()));
    let record = TryProcess {
        pid: i64::from(pid),
        pgid: procs.pgid.map(i64::from),
        sid: procs.sid.map(i64::from),
        cgroup: procs.cgroup.as_ref().map(|p| p.display().to_string()),
        boot_id: procfs::boot_id().map(str::to_string),
    };
    match ctx.store.set_try_process(ctx.ti.id, ctx.ti.try_number, &record).await {
        Ok(true) => {}
        Ok(false) => {
            // Recovered (or otherwise taken away) between start and spawn: not ours to run.
            let _ = stop_all(&procs, &ctx.log).await;
            let _ = tokio::time::timeout(READER_GRACE, child.wait()).await;
            guard.disarm(pid);
            return Err(OperatorError::Retryable(
                "the try was no longer running when its command started".into(),
            ));
        }
        Err(e) => {
            // The command runs anyway: recovery still finds it by cgroup and environment key.
            ctx.log.line(format!("warning: could not record the command's process group: {e}"));
        }
    }
    let stdout = child.stdout.take().map(|s| Reader::spawn(s, Stream::Stdout, &ctx.log));
    let stderr = child.stderr.take().map(|s| Reader::spawn(s, Stream::Stderr, &ctx.log));

    let status = tokio::select! {
        status = child.wait() => status,
        () = ctx.cancel.cancelled() => {
            ctx.log.line("cancelled: stopping every process of the try");
            if let Err(e) = stop_all(&procs, &ctx.log).await {
                ctx.log.line(format!("warning: {e}"));
            }
            let _ = tokio::time::timeout(READER_GRACE, child.wait()).await;
            guard.disarm(pid);
            reaper::reap_group(pid);
            for reader in [stdout, stderr].into_iter().flatten() {
                reader.abort();
            }
            return Err(OperatorError::Retryable(format!(
                "killed: the try was cancelled (timeout, kill, stop request or shutdown) after {} s",
                started.elapsed().as_secs()
            )));
        }
    };
    // The leader is reaped; what it left behind (background jobs, daemons) goes with the try.
    reaper::forget_leader(pid);
    reaper::reap_group(pid);
    match stop_all(&procs, &ctx.log).await {
        Ok(s) if s.found > 0 => ctx.log.line(format!(
            "stopped {} process(es) the command left running{}",
            s.found,
            if s.killed { " (SIGKILL)" } else { "" }
        )),
        Ok(_) => {}
        Err(e) => ctx.log.line(format!("warning: {e}")),
    }
    guard.disarm(pid);
    let status = status.map_err(|e| OperatorError::Retryable(format!("waiting for bash: {e}")))?;
    let last_out = Reader::finish(stdout).await;
    let last_err = Reader::finish(stderr).await;
    ctx.log.line(format!(
        "the command {} after {} ms",
        describe(status),
        started.elapsed().as_millis()
    ));
    outcome(ctx, task, status, last_out, last_err)
}

/// Maps the exit status to the task's result.
fn outcome(
    ctx: &TaskContext,
    task: &BashTask,
    status: ExitStatus,
    last_out: Option<String>,
    last_err: Option<String>,
) -> Result<Outcome, OperatorError> {
    match status.code() {
        Some(0) => Ok(Outcome::Done(last_out.map(serde_json::Value::String))),
        Some(code) if task.skip_on_exit_code.contains(&code) => {
            Err(OperatorError::Skip(format!("the command exited with code {code}")))
        }
        _ => {
            let last = last_err.or(last_out).map(|l| format!("; last output: {l}"));
            let msg = format!("the command {}{}", describe(status), last.unwrap_or_default());
            Err(OperatorError::Retryable(ctx.log.mask(&msg)))
        }
    }
}

/// "exited with code 3" / "was killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}{}", signal_name(sig)),
        (None, None) => "ended with an unknown status".to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        _ => "",
    }
}

/// The command's working directory: the user's, or a fresh temporary one removed on drop.
enum WorkDir {
    Given(PathBuf),
    Temp(PathBuf),
}

impl WorkDir {
    fn temp() -> std::io::Result<WorkDir> {
        // Unique per process and call; `create_dir` (not `_all`) fails rather than reuse one.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("updraft-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(WorkDir::Temp(dir))
    }

    fn path(&self) -> &Path {
        match self {
            WorkDir::Given(p) | WorkDir::Temp(p) => p,
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let WorkDir::Temp(p) = self {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}
