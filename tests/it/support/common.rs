//! Shared harness of the integration tests: a real store (SQLite in a temp dir, or a fresh
//! PostgreSQL database when `UPDRAFT_TEST_DATABASE_URL` is set), a DAGs folder, and a running
//! engine (scheduler + local executor) in the test's runtime.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use updraft::cli::engine;
use updraft::config::Settings;
use updraft::dag::loader::DagFolder;
use updraft::model::{DagRunState, RunPk, RunType, TaskState};
use updraft::scheduler::SchedulerOptions;
use updraft::store::{NewRun, RunRow, Store, TiRow};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database on the test server, or None (with a loud message) when the
/// test command did not start one.
pub async fn fresh_postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("UPDRAFT_TEST_DATABASE_URL") else {
        // In CI the test command always starts PostgreSQL: a missing URL there is a failure.
        assert!(std::env::var_os("CI").is_none(), "UPDRAFT_TEST_DATABASE_URL must be set in CI");
        eprintln!(
            "UPDRAFT_TEST_DATABASE_URL is not set: PostgreSQL part SKIPPED (scripts/test.sh sets it)"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let name =
        format!("t_{}_{}", std::process::id(), Utc::now().timestamp_nanos_opt().unwrap_or(0));
    let mut conn =
        sqlx::AnyConnection::connect(&base).await.expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    let cut = base.rfind('/').expect("database URL has a path");
    Some(format!("{}/{name}", &base[..cut]))
}

/// A test environment: home, DAGs folder and store.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub settings: Settings,
    pub store: Store,
}

impl Env {
    /// A new environment on `db`; None when that database is not available.
    pub async fn new(db: Db) -> Option<Env> {
        let dir = tempfile::tempdir().expect("tempdir");
        let dags = dir.path().join("dags");
        std::fs::create_dir_all(&dags).expect("dags folder");
        let mut settings = Settings::for_home(&dir.path().join("home"), &dags);
        std::fs::create_dir_all(&settings.home).expect("home");
        settings.parallelism = 8;
        if db == Db::Postgres {
            settings.database_url = fresh_postgres_url().await?;
        }
        let store = Store::open(&settings.database_url).await.expect("open store");
        Some(Env { dir, settings, store })
    }

    /// `updraft scheduler` as a process of its own on this environment's database and DAG
    /// folder (8 slots, warnings only), with `vars` added to its environment: what a kill -9
    /// test kills.
    pub fn scheduler_process<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        &self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_updraft"))
            .arg("scheduler")
            .env("UPDRAFT_PARALLELISM", "8")
            .env("UPDRAFT_LOG", "warn")
            .envs(vars)
            .env("UPDRAFT_HOME", &self.settings.home)
            .env("UPDRAFT_DAGS_FOLDER", self.dags_dir())
            .env("UPDRAFT_DATABASE_URL", &self.settings.database_url)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start updraft scheduler")
    }

    pub fn dags_dir(&self) -> PathBuf {
        self.settings.dags_folder.clone()
    }

    /// Writes a DAG file.
    pub fn write_dag(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dags_dir().join(name);
        std::fs::write(&path, yaml).expect("write dag");
        path
    }

    /// Starts an engine over the DAGs folder; stops when the returned handle drops.
    pub async fn start(&self) -> Running {
        self.start_with(SchedulerOptions {
            poll_interval: Duration::from_millis(200),
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(&self, opts: SchedulerOptions) -> Running {
        let shutdown = CancellationToken::new();
        let folder = DagFolder::new(self.dags_dir());
        let built = engine::build(
            Arc::new(self.settings.clone()),
            self.store.clone(),
            Some(folder),
            opts,
            "test",
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = updraft::dag::loader::watch(&self.dags_dir(), move || {
            let _ = tx.send(());
        })
        .expect("watch");
        let token = shutdown.clone();
        let (metrics, lineage) = (built.metrics.clone(), built.lineage.clone());
        let task = tokio::spawn(async move { built.scheduler.run(rx, token).await });
        Running { shutdown, task: Some(task), _watcher: watcher, metrics, lineage }
    }

    /// Triggers a manual run with `conf`.
    pub async fn trigger(&self, dag_id: &str, conf: serde_json::Value) -> RunRow {
        let now = Utc::now();
        let run = NewRun {
            dag_id: dag_id.into(),
            run_id: format!("manual__{}", now.timestamp_nanos_opt().unwrap_or(0)),
            run_type: RunType::Manual,
            logical_date: now,
            data_interval_start: now,
            data_interval_end: now,
            conf: conf.as_object().cloned().unwrap_or_default(),
            triggered_by: "test".into(),
            deadlines: Vec::new(),
        };
        self.store.create_run(&run, now).await.expect("create run")
    }

    /// Waits (at most `limit`) until the run is finished; panics with its states otherwise.
    pub async fn wait_run(&self, run_pk: RunPk, limit: Duration) -> RunRow {
        let start = Instant::now();
        loop {
            let run = self.store.get_run(run_pk).await.expect("get run");
            if run.state.is_finished() {
                return run;
            }
            if start.elapsed() > limit {
                let tis = self.store.run_tis(run_pk).await.unwrap_or_default();
                let states: Vec<String> = tis
                    .iter()
                    .map(|t| format!("{}[{}]={}", t.task_id, t.map_index, t.state))
                    .collect();
                panic!("run {} not finished after {limit:?}: {}", run.run_id, states.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `cond` holds on the store (bounded).
    pub async fn wait_until<F, Fut>(&self, what: &str, limit: Duration, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !cond().await {
            assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Task instances of a run by task id (sorted by map index).
    pub async fn tis(&self, run_pk: RunPk) -> Vec<TiRow> {
        let mut tis = self.store.run_tis(run_pk).await.expect("tis");
        tis.sort_by(|a, b| {
            (a.task_id.as_str(), a.map_index).cmp(&(b.task_id.as_str(), b.map_index))
        });
        tis
    }

    /// The state of one (unmapped) task of a run.
    pub async fn state(&self, run_pk: RunPk, task_id: &str) -> TaskState {
        self.tis(run_pk)
            .await
            .into_iter()
            .find(|t| t.task_id == task_id)
            .map(|t| t.state)
            .unwrap_or_else(|| panic!("no task {task_id}"))
    }

    /// Log text of one try.
    pub fn log(&self, ti: &TiRow, try_number: i64) -> String {
        std::fs::read_to_string(updraft::worker::log_path(&self.settings, ti, try_number))
            .unwrap_or_default()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// One manual run of a paused example DAG, as a user runs it once its servers are up:
    /// starts the engine, waits for the DAG, unpauses it, triggers a run with `conf` and waits
    /// for its end (bounded by `limit`); fails with the log of any task that did not succeed.
    /// The engine is stopped before the finished run is returned.
    pub async fn run_example(
        &self,
        dag_id: &str,
        conf: serde_json::Value,
        limit: Duration,
    ) -> RunRow {
        let running = self.start().await;
        self.wait_until("DAG loaded", limit, || async { self.store.get_dag(dag_id).await.is_ok() })
            .await;
        self.store.set_paused(dag_id, false).await.expect("unpause");
        let run = self.trigger(dag_id, conf).await;
        let run = self.wait_run(run.id, limit).await;
        for ti in self.tis(run.id).await {
            if ti.state != TaskState::Success {
                panic!("{} ended {}:\n{}", ti.task_id, ti.state, self.log(&ti, ti.try_number));
            }
        }
        assert_success(&run);
        running.stop().await;
        run
    }
}

/// A running engine; dropping it stops the scheduler.
pub struct Running {
    pub shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), updraft::scheduler::SchedulerError>>>,
    _watcher: notify::RecommendedWatcher,
    /// The engine's figures (what `/metrics` of a standalone process shows).
    pub metrics: Arc<updraft::metrics::Metrics>,
    /// The engine's OpenLineage emitter (a standalone web server shares it).
    pub lineage: updraft::lineage::Lineage,
}

impl Running {
    /// Stops the scheduler and waits for it (bounded).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let r =
                tokio::time::timeout(Duration::from_secs(30), task).await.expect("scheduler stops");
            r.expect("join").expect("scheduler ran without error");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn assert_success(run: &RunRow) {
    assert_eq!(run.state, DagRunState::Success, "run {} ended {}", run.run_id, run.state);
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs each named `async fn(Env)` once on SQLite and once on PostgreSQL (when the test command
/// started it), as `name::sqlite` and `name::postgres`.
#[allow(unused_macros)]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let env = Env::new(Db::Sqlite).await.expect("sqlite env");
                super::$name(env).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(env) = Env::new(Db::Postgres).await {
                    super::$name(env).await;
                }
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use both;
