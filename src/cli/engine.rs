//! Composition of a running engine: store, DAG cache, executor, workers and scheduler, wired
//! together for `standalone`, `scheduler`, `dags test` and the benchmarks.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CmdResult, Failure};
use crate::config::{ExecutorKind, Settings};
use crate::dag::loader::{self, DagFolder};
use crate::executor::LocalExecutor;
use crate::scheduler::{Scheduler, SchedulerOptions, SchedulerParts, SystemClock};
use crate::store::{ProcessRow, Store};
use crate::worker::{DagCache, WorkerEnv};

/// A scheduler ready to run, and the DAG cache it shares with its workers.
pub struct Engine {
    /// The scheduler; call `run`.
    pub scheduler: Scheduler,
    /// DAGs known to this process.
    pub dags: Arc<DagCache>,
    /// This process's row in the store.
    pub process: ProcessRow,
}

/// The row identifying this process in the store.
pub fn this_process(kind: &str) -> ProcessRow {
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = i64::from(std::process::id());
    let now = Utc::now();
    ProcessRow {
        id: format!("{hostname}:{pid}:{}", now.timestamp_micros()),
        kind: kind.to_string(),
        hostname,
        pid,
        heartbeat_at: now,
        stopped_at: None,
    }
}

/// Builds a scheduler with a local executor of `settings.slots()` slots.
pub fn build(
    settings: Arc<Settings>,
    store: Store,
    folder: Option<DagFolder>,
    opts: SchedulerOptions,
    kind: &str,
) -> Engine {
    let process = this_process(kind);
    let dags = Arc::new(DagCache::new(store.clone()));
    let env = Arc::new(WorkerEnv {
        store: store.clone(),
        settings: settings.clone(),
        dags: dags.clone(),
        process_id: process.id.clone(),
        hostname: process.hostname.clone(),
        // Not a child of `shutdown`: at shutdown running tries get the executor's grace period
        // to finish before they are cancelled (`Executor::drain`).
        shutdown: CancellationToken::new(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let executor = Arc::new(LocalExecutor::new(settings.slots(), env, tx));
    let scheduler = Scheduler::new(SchedulerParts {
        store,
        settings,
        clock: Arc::new(SystemClock),
        executor,
        dags: dags.clone(),
        folder,
        process: process.clone(),
        reports: rx,
        opts,
    });
    Engine { scheduler, dags, process }
}

/// Opens (and migrates) the configured database, creating `UPDRAFT_HOME` for SQLite.
pub async fn open_store(settings: &Settings) -> Result<Store, Failure> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.home).map_err(|e| {
            Failure::usage(format!("cannot create UPDRAFT_HOME {}: {e}", settings.home.display()))
        })?;
    }
    Store::open(&settings.database_url)
        .await
        .map_err(|e| Failure::usage(format!("{e} ({})", redact_url(&settings.database_url))))
}

/// The database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// `updraft standalone` / `updraft scheduler`: runs until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings, standalone: bool) -> CmdResult {
    if settings.executor == ExecutorKind::Distributed {
        return Err(Failure::usage(
            "UPDRAFT_EXECUTOR=distributed needs `updraft worker` processes, which this build does not have yet; use local or sequential",
        ));
    }
    let settings = Arc::new(settings);
    let store = open_store(&settings).await?;
    if !settings.dags_folder.is_dir() {
        return Err(Failure::usage(format!(
            "the DAGs folder {} does not exist: create it or set UPDRAFT_DAGS_FOLDER",
            settings.dags_folder.display()
        )));
    }
    let shutdown = CancellationToken::new();
    let (change_tx, change_rx) = mpsc::unbounded_channel();
    let _watcher = loader::watch(&settings.dags_folder, move || {
        let _ = change_tx.send(());
    })
    .map_err(|e| Failure::usage(format!("cannot watch {}: {e}", settings.dags_folder.display())))?;
    let folder = DagFolder::new(settings.dags_folder.clone());
    let engine = build(
        settings.clone(),
        store.clone(),
        Some(folder),
        SchedulerOptions::default(),
        if standalone { "standalone" } else { "scheduler" },
    );
    println!(
        "Updraft {} running: DAGs from {}, database {}, task logs in {}, executor {:?} with {} slots. Ctrl-C stops.",
        if standalone { "standalone" } else { "scheduler" },
        settings.dags_folder.display(),
        redact_url(&settings.database_url),
        settings.log_dir().display(),
        settings.executor,
        settings.slots(),
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: letting running tasks finish");
        stop.cancel();
    });
    engine.scheduler.run(change_rx, shutdown).await.map_err(|e| Failure::problem(e.to_string()))?;
    store.close().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
