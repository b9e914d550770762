//! One streaming task run by a real `updraft tasks test` process, and its kill -9: what the
//! kill-and-restart tests of the sinks share (`streaming_recovery`, `kafka_to_sql`).
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A copy of the `updraft` binary this test crate was built with, in `dir`: a target folder
/// shared with other checkouts may get another checkout's binary at the same path while a
/// kill-and-restart test runs, and the restart must run the same code as the first process.
pub fn own_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let copy = dir.join("updraft-bin");
    if !copy.exists() {
        std::fs::copy(env!("CARGO_BIN_EXE_updraft"), &copy).expect("copy the updraft binary");
    }
    copy
}

/// One `updraft tasks test` process running `task_yaml` as task `sink` of DAG `crash`, with
/// `conns` (`UPDRAFT_CONN_*`) as its connections. Its output goes to `out.log` in `dir`.
pub fn spawn_task(
    dir: &std::path::Path,
    task_yaml: &str,
    conns: &[(String, String)],
) -> std::process::Child {
    let dags = dir.join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    let mut task = String::new();
    for line in task_yaml.lines() {
        task.push_str("      ");
        task.push_str(line);
        task.push('\n');
    }
    std::fs::write(dags.join("crash.yaml"), format!("dag_id: crash\ntasks:\n  sink:\n{task}"))
        .unwrap();
    let out =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join("out.log")).unwrap();
    let mut cmd = std::process::Command::new(own_binary(dir));
    cmd.args(["tasks", "test", "crash", "sink"])
        .env("UPDRAFT_HOME", dir.join("home"))
        .env("UPDRAFT_DAGS_FOLDER", &dags)
        .env("UPDRAFT_LOG", "warn")
        // The throw-away database of `tasks test` lives in TMPDIR: keep it in the test's folder.
        .env("TMPDIR", dir)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in conns {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start updraft tasks test")
}

/// Waits (bounded) until `progress` reaches `at`, then kills the process with SIGKILL: no
/// drain, no last commit, no destructor. Returns the progress seen at the kill.
pub async fn kill_9_at<F, Fut>(child: &mut std::process::Child, at: u64, mut progress: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let start = Instant::now();
    loop {
        let n = progress().await;
        if n >= at {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
            return n;
        }
        if let Some(status) = child.try_wait().expect("poll") {
            panic!("the sink ended before the kill ({status}) at progress {n}");
        }
        assert!(start.elapsed() < Duration::from_secs(180), "no progress past {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) for the restarted process and asserts it succeeded.
pub fn wait_success(mut child: std::process::Child, dir: &std::path::Path) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            let out = std::fs::read_to_string(dir.join("out.log")).unwrap_or_default();
            assert!(status.success(), "the restarted sink failed ({status}):\n{out}");
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "the restarted sink did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}
