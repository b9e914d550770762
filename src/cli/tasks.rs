//! `updraft tasks test` and `updraft dags test`: run tasks in this process on a throw-away
//! SQLite database, so an author can try a DAG without a scheduler and without touching the
//! real metadata database.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use clap::Subcommand;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bag::find_dag;
use super::{CmdResult, Failure, engine, parse_conf, parse_when};
use crate::actions::{self, ConfInput, TriggerRequest};
use crate::config::Settings;
use crate::dag::Dag;
use crate::dag::DagCache;
use crate::model::{DagRunState, RunType, TaskState};
use crate::scheduler::SchedulerOptions;
use crate::store::{NewRun, NewTi, QueueCaps, RunRow, Store, TiUpdate};
use crate::worker::{self, WorkerEnv};

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Runs one task in this process, ignoring its dependencies, and prints its log and result.
    Test {
        /// The DAG.
        dag_id: String,
        /// The task.
        task_id: String,
        /// Logical date (default now).
        logical_date: Option<String>,
        /// Params for the run, as a JSON object.
        #[arg(long)]
        conf: Option<String>,
    },
}

pub async fn run(cmd: TasksCommand, settings: Settings) -> CmdResult {
    match cmd {
        TasksCommand::Test { dag_id, task_id, logical_date, conf } => {
            test_task(settings, &dag_id, &task_id, logical_date, conf).await
        }
    }
}

/// A throw-away home with its own SQLite database; removed on drop.
struct Scratch {
    home: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch, Failure> {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let home =
            std::env::temp_dir().join(format!("updraft-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&home)
            .map_err(|e| Failure::usage(format!("cannot create {}: {e}", home.display())))?;
        Ok(Scratch { home })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Settings and store of a scratch run, with `dag` recorded and unpaused, and one manual run.
async fn scratch_run(
    settings: Settings,
    scratch: &Scratch,
    dag: &Dag,
    logical_date: Option<String>,
    conf: Option<String>,
) -> Result<(Arc<Settings>, Store, RunRow), Failure> {
    let conf = parse_conf(conf.as_deref())?;
    let now = Utc::now();
    let logical = logical_date.as_deref().map(parse_when).transpose()?.unwrap_or(now);
    let mut settings = settings;
    settings.home = scratch.home.clone();
    settings.database_url = format!("sqlite://{}", scratch.home.join("test.db").display());
    let store = Store::open(&settings.database_url).await?;
    store.sync_dags([dag], [], now).await?;
    store.set_paused(&dag.dag_id, false).await?;
    let req = TriggerRequest {
        conf: ConfInput::Json(conf),
        run_id: Some(NewRun::default_run_id(RunType::Manual, logical)),
        logical_date: Some(logical),
    };
    let run = actions::trigger(&store, &super::actor(), dag, req).await?;
    Ok((Arc::new(settings), store, run))
}

fn print_log(path: Option<&str>) {
    if let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) {
        for line in text.lines() {
            println!("    {line}");
        }
    }
}

/// `updraft dags test`.
pub async fn test_dag(
    settings: Settings,
    dag_id: &str,
    logical_date: Option<String>,
    conf: Option<String>,
    as_json: bool,
) -> CmdResult {
    let (dag, _) = find_dag(&settings, dag_id)?;
    let scratch = Scratch::new()?;
    let (settings, store, run) = scratch_run(settings, &scratch, &dag, logical_date, conf).await?;
    let shutdown = CancellationToken::new();
    let opts = SchedulerOptions {
        create_scheduled_runs: false,
        exit_after_run: Some(run.id),
        poll_interval: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let engine = engine::build(settings, store.clone(), None, opts, "dags-test");
    engine.dags.replace_all([dag.clone()]);
    let stop = shutdown.clone();
    let ctrl_c = tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let (_keep, changes) = mpsc::unbounded_channel();
    engine.scheduler.run(changes, shutdown).await.map_err(|e| Failure::problem(e.to_string()))?;
    ctrl_c.abort();
    let run = store.get_run(run.id).await?;
    let mut tis = store.run_tis(run.id).await?;
    let order: HashMap<&str, usize> =
        dag.graph.topo_order().iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    tis.sort_by_key(|t| {
        (order.get(t.task_id.as_str()).copied().unwrap_or(usize::MAX), t.map_index)
    });
    if as_json {
        let rows: Vec<_> = tis
            .iter()
            .map(|t| {
                serde_json::json!({"task_id": t.task_id, "map_index": t.map_index,
                    "state": t.state.as_str(), "try_number": t.try_number})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        for ti in &tis {
            let map = if ti.map_index >= 0 { format!("[{}]", ti.map_index) } else { String::new() };
            println!("== {}{map}: {} (try {})", ti.task_id, ti.state, ti.try_number);
            for t in store.tries(ti.id).await? {
                print_log(t.log_path.as_deref());
            }
        }
        println!("Run {} of {}: {}", run.run_id, dag.dag_id, run.state);
    }
    store.close().await;
    match run.state {
        DagRunState::Success => Ok(()),
        state => Err(Failure::problem(format!("run ended {state}"))),
    }
}

/// `updraft tasks test`.
async fn test_task(
    settings: Settings,
    dag_id: &str,
    task_id: &str,
    logical_date: Option<String>,
    conf: Option<String>,
) -> CmdResult {
    let (dag, _) = find_dag(&settings, dag_id)?;
    let Some(task) = dag.tasks.get(task_id) else {
        let known: Vec<&str> = dag.tasks.keys().map(String::as_str).collect();
        return Err(Failure::problem(format!(
            "DAG `{dag_id}` has no task `{task_id}`; its tasks: {}",
            known.join(", ")
        )));
    };
    let scratch = Scratch::new()?;
    let (settings, store, run) = scratch_run(settings, &scratch, &dag, logical_date, conf).await?;
    let now = Utc::now();
    store.start_run(run.id, Some(&dag), &[NewTi::for_task(task)], now).await?;
    let ti = store
        .run_tis(run.id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Failure::problem("no task instance"))?;
    let update =
        TiUpdate { id: ti.id, from: TaskState::None, to: TaskState::Scheduled, note: None };
    store.apply_ti_updates(&[update], now).await?;
    let process = engine::this_process("tasks-test");
    let caps = HashMap::new();
    let queued = store.queue_scheduled(&QueueCaps::local(1, &caps), Some(&process.id), now).await?;
    let Some(ti) = queued.into_iter().next() else {
        return Err(Failure::problem(format!(
            "task `{task_id}` could not be queued (is its pool defined?)"
        )));
    };
    let dags = Arc::new(DagCache::new());
    dags.replace_all([dag.clone()]);
    let env = WorkerEnv {
        store: store.clone(),
        settings,
        dags,
        process_id: process.id,
        hostname: process.hostname,
        shutdown: CancellationToken::new(),
        metrics: Default::default(),
        tries: Default::default(),
        // `tasks test` tries a task on a throw-away database: no lineage of it.
        lineage: crate::lineage::Lineage::off(),
    };
    let cancel = env.shutdown.clone();
    let ctrl_c = tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        cancel.cancel();
    });
    let report = worker::run_ti(&env, &ti).await?;
    ctrl_c.abort();
    for t in store.tries(ti.id).await? {
        print_log(t.log_path.as_deref());
    }
    let xcom = store.run_xcoms(run.id).await?;
    if let Some(x) = xcom.first() {
        println!("XCom return_value: {}", x.value);
    }
    let state = report.state.unwrap_or(TaskState::Failed);
    println!("{dag_id}.{task_id}: {state}");
    store.close().await;
    match state {
        TaskState::Success | TaskState::Skipped => Ok(()),
        TaskState::UpForReschedule => {
            println!("(a sensor whose condition is not met yet)");
            Ok(())
        }
        other => Err(Failure::problem(format!("task ended {other}"))),
    }
}
