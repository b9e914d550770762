//! Composition of a running engine: store, DAG cache, executor, workers and scheduler, wired
//! together for `standalone`, `scheduler`, `dags test` and the benchmarks.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CmdResult, Failure};
use crate::config::{ExecutorKind, Settings};
use crate::dag::DagCache;
use crate::dag::loader::{self, DagFolder};
use crate::executor::{DistributedExecutor, Executor, LocalExecutor};
use crate::lineage::Lineage;
use crate::scheduler::{Scheduler, SchedulerOptions, SchedulerParts, SystemClock};
use crate::store::{ProcessRow, Store};
use crate::worker::WorkerEnv;

/// A scheduler ready to run, and the DAG cache it shares with its workers.
pub struct Engine {
    /// The scheduler; call `run`.
    pub scheduler: Scheduler,
    /// DAGs known to this process.
    pub dags: Arc<DagCache>,
    /// This process's row in the store.
    pub process: ProcessRow,
    /// Figures the scheduler and workers record, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The OpenLineage emitter of this process (shared with its web server).
    pub lineage: Lineage,
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
        ..Default::default()
    }
}

/// Builds a scheduler with the configured executor: a local one of `settings.slots()` slots,
/// or the distributed one (workers claim what it queues).
pub fn build(
    settings: Arc<Settings>,
    store: Store,
    folder: Option<DagFolder>,
    opts: SchedulerOptions,
    kind: &str,
) -> Engine {
    let process = this_process(kind);
    let dags = Arc::new(DagCache::new());
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let lineage = Lineage::start(&settings, metrics.clone());
    let env = Arc::new(WorkerEnv {
        metrics: metrics.clone(),
        lineage: lineage.clone(),
        store: store.clone(),
        settings: settings.clone(),
        dags: dags.clone(),
        process_id: process.id.clone(),
        hostname: process.hostname.clone(),
        // Not a child of `shutdown`: at shutdown running tries get the executor's grace period
        // to finish before they are cancelled (`Executor::drain`).
        shutdown: CancellationToken::new(),
        tries: Default::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let executor: Arc<dyn Executor> = if settings.executor == ExecutorKind::Distributed {
        let url = settings.database_url.clone();
        Arc::new(DistributedExecutor::new(store.clone(), url, settings.parallelism, tx))
    } else {
        Arc::new(LocalExecutor::new(settings.slots(), env, tx))
    };
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
        metrics: metrics.clone(),
    })
    .with_lineage(lineage.clone());
    Engine { scheduler, dags, process, metrics, lineage }
}

/// Opens (and migrates) the configured database, creating `UPDRAFT_HOME` for SQLite.
pub async fn open_store(settings: &Settings) -> Result<Store, Failure> {
    if settings.database_url.starts_with("sqlite:") {
        settings.prepare_home().map_err(|e| {
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

/// Which processes `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Scheduler, executor and web server in one process.
    Standalone,
    /// Scheduler and executor.
    Scheduler,
    /// Web server only.
    Webserver,
}

/// `updraft standalone` / `scheduler` / `webserver`: runs until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings, role: Role) -> CmdResult {
    let settings = Arc::new(settings);
    let store = open_store(&settings).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: letting running tasks finish");
        stop.cancel();
    });
    let engine = if role == Role::Webserver {
        None
    } else {
        if !settings.dags_folder.is_dir() {
            return Err(Failure::usage(format!(
                "the DAGs folder {} does not exist: create it or set UPDRAFT_DAGS_FOLDER",
                settings.dags_folder.display()
            )));
        }
        let folder = DagFolder::new(settings.dags_folder.clone());
        let kind = if role == Role::Standalone { "standalone" } else { "scheduler" };
        let opts = SchedulerOptions {
            process_timeout: settings.heartbeat_timeout,
            heartbeat_interval: settings.heartbeat_timeout / 6,
            ..SchedulerOptions::default()
        };
        Some(build(settings.clone(), store.clone(), Some(folder), opts, kind))
    };
    let metrics = engine.as_ref().map(|e| e.metrics.clone()).unwrap_or_default();
    let web = if role == Role::Scheduler {
        None
    } else {
        if role == Role::Standalone {
            ensure_admin(&store).await?;
        }
        let addr = format!("{}:{}", settings.web_host, settings.web_port);
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            Failure::usage(format!(
                "cannot listen on {addr}: {e} (set UPDRAFT_WEB_PORT or UPDRAFT_WEB_HOST)"
            ))
        })?;
        println!("Web UI and API on http://{addr}/");
        let state = crate::web::AppState::new(store.clone(), settings.clone(), metrics.clone());
        let state = match &engine {
            Some(engine) => {
                state.with_dags(engine.dags.clone()).with_lineage(engine.lineage.clone())
            }
            None => state.with_lineage(Lineage::start(&settings, metrics.clone())),
        };
        Some(tokio::spawn(crate::web::serve(listener, state, shutdown.clone())))
    };
    let Some(engine) = engine else {
        if let Some(web) = web {
            web.await
                .map_err(|e| Failure::problem(e.to_string()))?
                .map_err(|e| Failure::problem(e.to_string()))?;
        }
        store.close().await;
        return Ok(());
    };
    let (change_tx, change_rx) = mpsc::unbounded_channel();
    let _watcher = loader::watch(&settings.dags_folder, move || {
        let _ = change_tx.send(());
    })
    .map_err(|e| Failure::usage(format!("cannot watch {}: {e}", settings.dags_folder.display())))?;
    let kind = if role == Role::Standalone { "standalone" } else { "scheduler" };
    println!(
        "Updraft {kind} running: DAGs from {}, database {}, task logs in {}, executor {:?} with {} slots. Ctrl-C stops.",
        settings.dags_folder.display(),
        redact_url(&settings.database_url),
        settings.log_dir().display(),
        settings.executor,
        settings.slots(),
    );
    engine
        .scheduler
        .run(change_rx, shutdown.clone())
        .await
        .map_err(|e| Failure::problem(e.to_string()))?;
    shutdown.cancel();
    if let Some(web) = web {
        let _ = web.await;
    }
    store.close().await;
    Ok(())
}

/// On a database without users, creates `admin` with a generated password and prints it once
/// (Airflow standalone's behaviour).
async fn ensure_admin(store: &Store) -> CmdResult {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let password = crate::secrets::random_token()[..20].to_string();
    let roles = ["admin".to_string()];
    crate::actions::users::create_user(store, &super::actor(), "admin", "", &password, &roles)
        .await?;
    println!(
        "\nCreated the first user: admin / {password}\nThis password is shown once: note it, or set another with `updraft users password admin`.\n"
    );
    Ok(())
}

pub(super) async fn wait_for_signal() {
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
