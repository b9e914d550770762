//! Fixtures of the operator tests: a real SQLite store with a running task instance, a
//! `TaskContext` built the way a worker builds it, and a small HTTP server on 127.0.0.1.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::{DateTime, TimeZone, Utc};
use indexmap::IndexMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use updraft::config::Settings;
use updraft::dag::{Dag, DagGraph, Schedule, Task, TaskKind, TriggerRule};
use updraft::model::{RunType, TaskState, TiId};
use updraft::operators::{TaskContext, TaskLog};
use updraft::store::{NewRun, NewTi, QueueCaps, RunRow, Store, TiUpdate};

/// Logical date of the fixture's run: `ds` is 2026-01-02.
pub fn logical_date() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

/// A DAG whose tasks are given as `(task_id, YAML of the task type and settings)`.
pub fn dag(dag_id: &str, tasks: &[(&str, &str)]) -> Dag {
    let mut map = IndexMap::new();
    for (id, yaml) in tasks {
        let kind: TaskKind = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let task = Task {
            task_id: id.to_string(),
            kind,
            depends_on: vec![],
            trigger_rule: TriggerRule::AllSuccess,
            retries: 0,
            retry_delay: Duration::from_secs(1),
            retry_exponential_backoff: false,
            max_retry_delay: None,
            execution_timeout: None,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
            queue: "default".into(),
            foreach: None,
            doc: None,
            group: None,
            pulls_xcom: yaml.contains("xcom_pull"),
            outlets: Vec::new(),
            inlets: Vec::new(),
            notify: Default::default(),
        };
        map.insert(id.to_string(), task);
    }
    let graph = DagGraph::from_tasks(&map).unwrap();
    Dag {
        dag_id: dag_id.into(),
        fileloc: PathBuf::from(format!("{dag_id}.yaml")),
        description: None,
        schedule: Schedule::None,
        timezone: chrono_tz::Tz::UTC,
        asset_schedule: None,
        on_run_failure: vec![],
        on_run_success: vec![],
        deadlines: vec![],
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: 16,
        max_active_tasks: 16,
        tags: vec![],
        owner: "test".into(),
        params: serde_json::Map::new(),
        is_paused_upon_creation: false,
        param_specs: Default::default(),
        tasks: map,
        groups: IndexMap::new(),
        graph,
        source: String::new(),
        version: updraft::dag::version_of(""),
    }
}

/// A store with DAG `d` (the given tasks) and DAG `other` (one task `work`), and a started run
/// `manual__x` of `d`.
pub struct Fixture {
    pub dir: TempDir,
    pub store: Store,
    pub settings: Arc<Settings>,
    pub dag: Arc<Dag>,
    pub other: Dag,
    pub run: RunRow,
}

fn new_tis(dag: &Dag) -> Vec<NewTi> {
    dag.tasks
        .values()
        .map(|t| NewTi {
            task_id: t.task_id.clone(),
            map_index: -1,
            map_item: None,
            operator: t.kind.type_name().into(),
            pool: t.pool.clone(),
            pool_slots: 1,
            priority_weight: 1,
            queue: t.queue.clone(),
            max_tries: 1,
        })
        .collect()
}

impl Fixture {
    pub async fn new(tasks: &[(&str, &str)]) -> Fixture {
        Fixture::with_conns(tasks, &[]).await
    }

    /// With extra environment settings (`UPDRAFT_CONN_...`).
    pub async fn with_conns(tasks: &[(&str, &str)], vars: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&format!("sqlite://{}/db.sqlite", dir.path().display())).await.unwrap();
        let main = dag("d", tasks);
        let other = dag("other", &[("work", "type: empty")]);
        let now = Utc::now();
        store.sync_dags([&main, &other], [], now).await.unwrap();
        let run = store.create_run(&new_run("d", "manual__x"), now).await.unwrap();
        assert!(store.start_run(run.id, None, &new_tis(&main), now).await.unwrap());
        let run = store.get_run(run.id).await.unwrap();
        let mut env = vec![("UPDRAFT_HOME".to_string(), dir.path().display().to_string())];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = Arc::new(Settings::from_vars(env).unwrap());
        Fixture { dir, store, settings, dag: Arc::new(main), other, run }
    }

    /// The context of `task_id`'s first try, moved to running through the store as a worker
    /// would (queued by the scheduler, started with the worker's pid 1).
    pub async fn ctx(&self, task_id: &str) -> TaskContext {
        let now = Utc::now();
        let tis = self.store.run_tis(self.run.id).await.unwrap();
        let ti = tis.into_iter().find(|t| t.task_id == task_id).unwrap();
        let update =
            TiUpdate { id: ti.id, from: TaskState::None, to: TaskState::Scheduled, note: None };
        self.store.apply_ti_updates(&[update], now).await.unwrap();
        let no_caps = HashMap::new();
        let caps = QueueCaps::local(10, &no_caps);
        let queued = self.store.queue_scheduled(&caps, Some("test"), now).await.unwrap();
        let queued = queued.iter().find(|q| q.id == ti.id).unwrap_or(&ti).clone();
        // Each fixture is its own worker process, as in production: tests running side by side
        // in one binary must not share a try key (and so a cgroup) through equal instance ids.
        static FIXTURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = FIXTURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let owner = format!("test-{}-{n}", std::process::id());
        let ti = self
            .store
            .start_try(&queued, "test-host", 1, &owner, |n| format!("{n}.log"), now)
            .await
            .unwrap()
            .unwrap_or(ti);
        TaskContext {
            dag: self.dag.clone(),
            task: self.dag.tasks[task_id].clone(),
            run: self.run.clone(),
            xcoms: self.store.run_xcoms(self.run.id).await.unwrap(),
            db_variables: BTreeMap::new(),
            db_connections: Default::default(),
            store: self.store.clone(),
            settings: self.settings.clone(),
            log: TaskLog::open(
                self.dir.path().join(format!("logs/{task_id}/{}.log", ti.try_number)),
            )
            .unwrap(),
            cancel: CancellationToken::new(),
            rendered: Mutex::new(serde_json::Map::new()),
            triggering_asset_events: serde_json::json!({}),
            tables: Default::default(),
            ti,
        }
    }

    /// Creates and starts a run of `other` at the fixture's logical date.
    pub async fn start_other_run(&self) -> RunRow {
        let now = Utc::now();
        let run = self.store.create_run(&new_run("other", "other_run"), now).await.unwrap();
        assert!(self.store.start_run(run.id, None, &new_tis(&self.other), now).await.unwrap());
        self.store.get_run(run.id).await.unwrap()
    }

    pub async fn set_ti_state(&self, id: TiId, from: TaskState, to: TaskState) {
        let update = TiUpdate { id, from, to, note: None };
        assert_eq!(self.store.apply_ti_updates(&[update], Utc::now()).await.unwrap(), 1);
    }
}

fn new_run(dag_id: &str, run_id: &str) -> NewRun {
    let t = logical_date();
    NewRun {
        dag_id: dag_id.into(),
        run_id: run_id.into(),
        run_type: RunType::Manual,
        logical_date: t,
        data_interval_start: t,
        data_interval_end: t + chrono::Duration::days(1),
        conf: serde_json::Map::new(),
        triggered_by: "test".into(),
        deadlines: Vec::new(),
    }
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses: "123 (sleep) S ...".
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some(Some('Z')) | Some(None) | None)
}

/// Starts the test HTTP server on 127.0.0.1 and returns its base URL.
pub async fn serve() -> String {
    let ready_calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/json", get(|| async { Json(json!({"users": [1, 2]})) }))
        .route(
            "/text",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                format!("hello d={}", q.get("d").cloned().unwrap_or_default())
            }),
        )
        .route("/echo", post(|Json(body): Json<Value>| async move { Json(body) }))
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "nothing here") }))
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                // Base64 of "user:s3cretpw".
                if auth == Some("Basic dXNlcjpzM2NyZXRwdw==") {
                    (StatusCode::OK, "welcome user")
                } else {
                    (StatusCode::UNAUTHORIZED, "who are you")
                }
            }),
        )
        .route("/big", get(|| async { "a".repeat(2 * 1024 * 1024) }))
        .route(
            "/ready",
            get(move || {
                let n = ready_calls.fetch_add(1, Ordering::SeqCst);
                async move { Json(json!({"ready": n > 0})) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
