//! The distributed executor's figures: a scheduler and 1, 2 or 4 workers as separate
//! `updraft` processes on one PostgreSQL database (`--postgres`'s), all on 127.0.0.1.
//!
//! - `workers`: 2,000 tasks of `sleep 0.2` with 1, 2 and 4 workers of 8 slots (wall time from
//!   trigger to run end, and the speed-up over one worker).
//! - `claims`: 10,000 tries (`file_sensor`) with 1 and 4 workers: claims per second (instances over
//!   the time from the first try's start to the last's).
//! - `remote_handoff`: a 50-task chain of `bash: true` through one worker: upstream end ->
//!   downstream start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use updraft::store::{RunRow, Store};

use super::{Bench, LIMIT, percentile};

/// The processes of one scenario; killed when dropped.
struct Cluster {
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) on a child this process started; no memory involved.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for c in &mut self.children {
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn updraft_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?.with_file_name("updraft");
    exe.exists().then_some(exe)
}

fn spawn(exe: &Path, args: &[&str], home: &Path, dags: &Path, url: &str) -> Child {
    Command::new(exe)
        .args(args)
        .env("UPDRAFT_HOME", home)
        .env("UPDRAFT_DAGS_FOLDER", dags)
        .env("UPDRAFT_DATABASE_URL", url)
        .env("UPDRAFT_EXECUTOR", "distributed")
        .env("UPDRAFT_PARALLELISM", "64")
        .env("UPDRAFT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start an updraft process")
}

impl Bench {
    /// One run of `yaml` on a scheduler and `workers` workers of `slots` slots; returns the
    /// finished run, the store and the wall time from trigger to run end.
    async fn run_distributed(
        &self,
        name: &str,
        yaml: &str,
        workers: usize,
        slots: usize,
    ) -> Option<(RunRow, Store, Duration)> {
        let Some(exe) = updraft_exe() else {
            println!("{name}: skipped, build the `updraft` binary first (cargo build --release)");
            return None;
        };
        let home = self.dir.join(format!("{name}_{workers}"));
        let dags = home.join("dags");
        std::fs::create_dir_all(&dags).expect("dags dir");
        let dag_id = yaml.lines().next().and_then(|l| l.strip_prefix("dag_id: ")).expect("dag_id");
        std::fs::write(dags.join(format!("{dag_id}.yaml")), yaml).expect("write dag");
        let url = self.database_url(name).await;
        let store = Store::open(&url).await.expect("open store");
        let mut cluster =
            Cluster { children: vec![spawn(&exe, &["scheduler"], &home, &dags, &url)] };
        let started = Instant::now();
        while store.get_dag(dag_id).await.is_err() {
            assert!(started.elapsed() < LIMIT, "DAG {dag_id} never loaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.set_paused(dag_id, false).await.expect("unpause");
        let slots = slots.to_string();
        for i in 0..workers {
            let name = format!("w{i}");
            let args = ["worker", "--name", &name, "--slots", &slots];
            cluster.children.push(spawn(&exe, &args, &home, &dags, &url));
        }
        // Every worker registered (its first heartbeat) before the clock starts.
        while store
            .live_processes()
            .await
            .expect("processes")
            .iter()
            .filter(|p| p.kind == "worker")
            .count()
            < workers
        {
            assert!(started.elapsed() < LIMIT, "workers never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The scheduler learns of the workers' queues at its next sweep.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let (run, wall) = super::trigger_and_wait(&store, dag_id).await;
        drop(cluster);
        Some((run, store, wall))
    }

    /// 2,000 tasks of `sleep 0.2` with 1, 2 and 4 workers of 8 slots.
    pub(super) async fn workers(&self) {
        let yaml = format!(
            "dag_id: sleepers\nmax_active_tasks: 100000\ntasks:\n  nap:\n    type: bash\n    command: 'sleep 0.2'\n    foreach: {}\n",
            serde_json::to_string(&(0..2000).collect::<Vec<_>>()).unwrap_or_default()
        );
        let mut one = None;
        for workers in [1, 2, 4] {
            let Some((run, _, wall)) = self.run_distributed("sleepers", &yaml, workers, 8).await
            else {
                return;
            };
            let secs = wall.as_secs_f64();
            let base = *one.get_or_insert(secs);
            println!(
                "workers: 2,000 x `sleep 0.2`, {workers} worker(s) of 8 slots, trigger -> run {}: {secs:.1} s, {:.2}x one worker (ideal {workers}x; target 4 workers >= 3.5x)",
                run.state,
                base / secs
            );
        }
    }

    /// 10,000 tries with 1 and 4 workers: claims per second. Each is a `file_sensor` whose
    /// file exists (claimed, started, poked once, ended; no process): an `empty` task would
    /// never reach a worker.
    pub(super) async fn claims(&self) {
        let ready = self.dir.join("ready");
        std::fs::write(&ready, "").expect("ready file");
        let yaml = format!(
            "dag_id: empties\nmax_active_tasks: 100000\ntasks:\n  e:\n    type: file_sensor\n    path: '{}'\n    foreach: {}\n",
            ready.display(),
            serde_json::to_string(&(0..10_000).collect::<Vec<_>>()).unwrap_or_default()
        );
        for workers in [1, 4] {
            let Some((run, store, wall)) =
                self.run_distributed("empties", &yaml, workers, 16).await
            else {
                return;
            };
            let starts: Vec<_> = store
                .run_tis(run.id)
                .await
                .expect("tis")
                .iter()
                .filter_map(|t| t.start_date)
                .collect();
            let (Some(first), Some(last)) = (starts.iter().min(), starts.iter().max()) else {
                continue;
            };
            let span = (*last - *first).num_microseconds().unwrap_or(1).max(1) as f64 / 1e6;
            println!(
                "claims: 10,000 `file_sensor` tries, {workers} worker(s) of 16 slots: {:.0} claims/s (first to last start {span:.2} s), trigger -> run {}: {:.2} s",
                starts.len() as f64 / span,
                run.state,
                wall.as_secs_f64()
            );
        }
    }

    /// A 50-task chain through one remote worker: hand-off latency.
    pub(super) async fn remote_handoff(&self) {
        let mut yaml = String::from("dag_id: rchain\ntasks:\n");
        for i in 0..50 {
            yaml.push_str(&format!("  t{i}:\n    type: bash\n    command: 'true'\n"));
            if i > 0 {
                yaml.push_str(&format!("    depends_on: [t{}]\n", i - 1));
            }
        }
        let Some((run, store, wall)) = self.run_distributed("rchain", &yaml, 1, 8).await else {
            return;
        };
        let mut tis = store.run_tis(run.id).await.expect("tis");
        tis.sort_by_key(|t| t.task_id[1..].parse::<u32>().unwrap_or(0));
        let mut handoff: Vec<f64> = tis
            .windows(2)
            .filter_map(|w| {
                Some((w[1].start_date? - w[0].end_date?).num_microseconds()? as f64 / 1000.0)
            })
            .collect();
        handoff.sort_by(f64::total_cmp);
        println!(
            "remote_handoff: 50-task chain of `bash: true` through one worker, run {} in {:.2} s: hand-off median {:.2} ms, p95 {:.2} ms (target median <= 10 ms)",
            run.state,
            wall.as_secs_f64(),
            percentile(&handoff, 0.5),
            percentile(&handoff, 0.95)
        );
    }
}
