//! The scheduler: turns DAGs into runs, decides which task instances are ready, queues them
//! within the caps and hands them to the executor.
//!
//! It is event-driven: the end of every try arrives on a channel and the affected run is
//! re-examined at once, so a downstream task starts within milliseconds. A poll every
//! [`SchedulerOptions::poll_interval`] picks up what no event announces (schedules falling
//! due, runs triggered by other processes, retries whose delay passed).
//!
//! Invariants: the scheduler never runs task code in its own loop; it decides no state itself
//! (`model` does; the scheduler reads the store, asks and applies); it reads time only from
//! its [`Clock`]; every decision is committed to the store before the executor sees it.

mod assets;
mod counts;
mod deadlines;
mod notifications;
mod recovery;
mod runs;
#[cfg(test)]
mod tests;
mod watchers;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::dag::DagCache;
use crate::dag::loader::DagFolder;
use crate::dag::schedule::DataInterval;
use crate::executor::Executor;
use crate::model::RunPk;
use crate::store::{ProcessRow, QueueCaps, Store, StoreError};
use crate::worker::TryReport;

/// Where the scheduler reads the time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(t))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|g| *g).unwrap_or_else(|_| Utc::now())
    }
}

/// Tuning of one scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Create runs from schedules (false for `dags test`).
    pub create_scheduled_runs: bool,
    /// How often the store is polled for work no event announced.
    pub poll_interval: Duration,
    /// How often the store is checked for newly triggered (queued) runs: a cheap indexed
    /// query, frequent so that a trigger from another process starts within tens of ms.
    pub trigger_poll_interval: Duration,
    /// How often this process renews its heartbeat.
    pub heartbeat_interval: Duration,
    /// A process whose heartbeat is older than this is dead: its task instances are recovered.
    pub process_timeout: Duration,
    /// Stop once this run has finished (for `dags test`).
    pub exit_after_run: Option<RunPk>,
    /// Grace given to running tries at shutdown before they are cancelled.
    pub shutdown_grace: Duration,
    /// How often the DAG folder is scanned although no file event came (re-checking unchanged
    /// files against connections added or removed since).
    pub rescan_interval: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            create_scheduled_runs: true,
            // One second bounds how late a cron run or an external trigger is noticed; events
            // make everything else immediate.
            poll_interval: Duration::from_secs(1),
            trigger_poll_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_secs(5),
            process_timeout: Duration::from_secs(30),
            exit_after_run: None,
            shutdown_grace: Duration::from_secs(10),
            rescan_interval: Duration::from_secs(30),
        }
    }
}

/// Errors that stop the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The metadata database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the DAG folder failed.
    #[error("cannot read the DAG folder: {0}")]
    Dags(String),
}

/// One scheduler, with everything its loop needs passed in.
pub struct Scheduler {
    store: Store,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    executor: Arc<dyn Executor>,
    dags: Arc<DagCache>,
    folder: Option<DagFolder>,
    /// The last scan changed something the store has not recorded yet (its write failed):
    /// the next scan records it even when the folder did not change again.
    folder_unsynced: bool,
    process: ProcessRow,
    opts: SchedulerOptions,
    reports: mpsc::UnboundedReceiver<TryReport>,
    /// Runs to re-examine before waiting again.
    dirty: BTreeSet<RunPk>,
    /// Running runs this scheduler knows: run primary key -> the DAG version it is pinned to.
    running: HashMap<RunPk, runs::Pin>,
    /// Interval of the newest scheduled run per DAG, once looked up.
    last_interval: HashMap<String, Option<DataInterval>>,
    /// The next scheduled interval last written to the store, per DAG.
    next_dagrun: HashMap<String, Option<DataInterval>>,
    /// `max_active_tasks` per DAG, for queueing.
    max_active_tasks: HashMap<String, i64>,
    /// DAG ids paused in the store, refreshed every poll.
    paused: std::collections::HashSet<String>,
    /// Something may be queueable: a slot freed, an instance became scheduled, or a poll may
    /// have seen changes made elsewhere (unpause, pool resize).
    queue_wanted: bool,
    /// Set when a run given by `exit_after_run` has finished.
    finished_target: bool,
    /// A run finished in this pass: a place under `max_active_runs` may have freed.
    run_ended: bool,
    /// Instance counts of running runs, kept between passes (`counts.rs`).
    counts: counts::KeptCounts,
    /// The queues live workers serve, as of the last sweep (distributed executor only).
    served_queues: std::collections::HashSet<String>,
    /// The slots of every live worker together, as of the last sweep.
    worker_slots: usize,
    /// Loop durations and executor slots, for `/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
    /// Asset events were committed: look for asset-triggered runs in this pass.
    assets_wanted: bool,
    /// The pollers of the outside sources the DAGs' assets watch.
    watchers: watchers::Watchers,
    /// The connection ids known at the last scan, sorted (notifiers are checked against them).
    known_connections: Vec<String>,
    /// Where the runs' OpenLineage events go (off unless [`Scheduler::with_lineage`]).
    lineage: crate::lineage::Lineage,
}

/// The pieces a scheduler is built from.
pub struct SchedulerParts {
    /// The metadata database.
    pub store: Store,
    /// Process settings.
    pub settings: Arc<Settings>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Where queued task instances go.
    pub executor: Arc<dyn Executor>,
    /// DAG definitions shared with the workers.
    pub dags: Arc<DagCache>,
    /// The DAG folder to scan; None when the caller fills `dags` itself.
    pub folder: Option<DagFolder>,
    /// This process, as recorded in the store.
    pub process: ProcessRow,
    /// Ends of tries, from the executor.
    pub reports: mpsc::UnboundedReceiver<TryReport>,
    /// Tuning.
    pub opts: SchedulerOptions,
    /// Where loop durations and executor slots are recorded.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Scheduler {
    /// Assembles a scheduler.
    pub fn new(p: SchedulerParts) -> Scheduler {
        Scheduler {
            store: p.store,
            settings: p.settings,
            clock: p.clock,
            executor: p.executor,
            dags: p.dags,
            folder: p.folder,
            folder_unsynced: false,
            process: p.process,
            opts: p.opts,
            reports: p.reports,
            dirty: BTreeSet::new(),
            running: HashMap::new(),
            last_interval: HashMap::new(),
            next_dagrun: HashMap::new(),
            max_active_tasks: HashMap::new(),
            paused: Default::default(),
            queue_wanted: true,
            finished_target: false,
            run_ended: false,
            counts: Default::default(),
            served_queues: Default::default(),
            worker_slots: 0,
            metrics: p.metrics,
            assets_wanted: true,
            watchers: Default::default(),
            known_connections: Vec::new(),
            lineage: crate::lineage::Lineage::off(),
        }
    }

    /// The scheduler, sending its runs' OpenLineage events to `lineage`.
    pub fn with_lineage(mut self, lineage: crate::lineage::Lineage) -> Scheduler {
        self.lineage = lineage;
        self
    }

    /// Runs until `shutdown` fires (or the `exit_after_run` run ends). `dag_changes` carries a
    /// message whenever a file in the DAG folder changed.
    pub async fn run(
        mut self,
        mut dag_changes: mpsc::UnboundedReceiver<()>,
        shutdown: CancellationToken,
    ) -> Result<(), SchedulerError> {
        self.store.heartbeat(&self.process, self.clock.now()).await?;
        self.reload_dags().await?;
        self.recover().await?;
        let mut next_poll = Instant::now();
        let mut next_trigger_poll = Instant::now();
        let mut next_heartbeat = Instant::now() + self.opts.heartbeat_interval;
        // The folder is watched; a scan now and then also re-checks unchanged files against
        // connections added or removed since (notifiers), and makes up for a lost event.
        let mut next_rescan = Instant::now() + self.opts.rescan_interval;
        let announced = self.store.asset_events_announced();
        let listening = CancellationToken::new();
        let _stop_listening = listening.clone().drop_guard();
        // `dags test` runs one run and notifies nobody.
        if self.opts.create_scheduled_runs {
            let (store, settings) = (self.store.clone(), self.settings.clone());
            tokio::spawn(notifications::run(store, settings, listening.clone()));
            tokio::spawn(deadlines::run(self.store.clone(), listening.clone()));
        }
        if self.store.backend() == crate::store::Backend::Postgres {
            let (url, wake) = (self.settings.database_url.clone(), announced.clone());
            let stop = listening.clone();
            tokio::spawn(async move {
                crate::store::listen(&url, crate::store::ASSETS_CHANNEL, stop, |_| {
                    wake.notify_one()
                })
                .await
            });
        }
        while !shutdown.is_cancelled() && !self.finished_target {
            if Instant::now() >= next_heartbeat {
                self.store.heartbeat(&self.process, self.clock.now()).await?;
                self.recover().await?;
                next_heartbeat = Instant::now() + self.opts.heartbeat_interval;
            }
            if Instant::now() >= next_rescan {
                if let Err(e) = self.reload_dags().await {
                    tracing::error!(error = %e, "rescanning the DAG folder failed; retrying");
                }
                next_rescan = Instant::now() + self.opts.rescan_interval;
            }
            if Instant::now() >= next_poll {
                if let Err(e) = self.poll().await {
                    tracing::error!(error = %e, "scheduler poll failed; retrying");
                }
                next_poll = Instant::now() + self.opts.poll_interval;
            } else if Instant::now() >= next_trigger_poll {
                if let Err(e) = self.start_queued_runs().await {
                    tracing::error!(error = %e, "starting triggered runs failed; retrying");
                }
                next_trigger_poll = Instant::now() + self.opts.trigger_poll_interval;
            }
            if std::mem::take(&mut self.assets_wanted)
                && let Err(e) = self.create_asset_runs().await
            {
                tracing::error!(error = %e, "creating asset-triggered runs failed; retrying");
            }
            let pass = std::time::Instant::now();
            let had_work = !self.dirty.is_empty() || self.queue_wanted;
            if let Err(e) = self.process_dirty().await {
                tracing::error!(error = %e, "scheduling failed; retrying at the next poll");
            }
            if had_work {
                self.metrics.scheduler_loop.observe(pass.elapsed());
            }
            self.record_slots();
            if self.finished_target {
                break;
            }
            let wake = next_poll.min(next_heartbeat).min(next_trigger_poll);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                report = self.reports.recv() => {
                    self.queue_wanted = true;
                    if let Some(r) = report {
                        self.on_report(&r);
                    }
                    while let Ok(r) = self.reports.try_recv() {
                        self.on_report(&r);
                    }
                }
                () = announced.notified() => self.assets_wanted = true,
                change = dag_changes.recv(), if self.folder.is_some() => {
                    if change.is_some() {
                        // Editors write a file in several steps: let them finish.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        while dag_changes.try_recv().is_ok() {}
                        self.reload_dags().await?;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        self.watchers.stop_all();
        self.executor.drain(self.opts.shutdown_grace).await;
        self.store.process_stopped(&self.process.id, self.clock.now()).await?;
        Ok(())
    }

    /// The end of a try, as the executor reports it: its run is examined in this pass.
    fn on_report(&mut self, r: &TryReport) {
        self.counts.try_ended(r.run_pk, &r.task_id, r.state);
        self.dirty.insert(r.run_pk);
    }

    /// Re-scans the DAG folder (only changed files are parsed) and records the result.
    pub async fn reload_dags(&mut self) -> Result<(), SchedulerError> {
        let Some(mut folder) = self.folder.take() else {
            self.refresh_caps();
            return Ok(());
        };
        let (folder, (bag, changed)) = tokio::task::spawn_blocking(move || {
            let r = folder.refresh();
            (folder, r)
        })
        .await
        .map_err(|e| SchedulerError::Dags(e.to_string()))?;
        self.folder = Some(folder);
        // Notifiers must name connections that exist: the environment's and the stored ones,
        // read each scan (a connection added or removed re-checks unchanged files).
        let mut known: Vec<String> = self.settings.connections.keys().cloned().collect();
        known.extend(self.store.list_connections().await?.into_iter().map(|c| c.conn_id));
        known.sort();
        let connections_changed = known != self.known_connections;
        self.known_connections = known;
        let mut bag = bag;
        let broken: Vec<(String, Vec<crate::dag::LoadError>)> = bag
            .dags
            .values()
            .map(|d| {
                (d.dag_id.clone(), crate::dag::check::unknown_notifiers(d, &self.known_connections))
            })
            .filter(|(_, e)| !e.is_empty())
            .collect();
        for (dag_id, errors) in broken {
            if let Some(dag) = bag.dags.remove(&dag_id) {
                bag.errors.entry(dag.fileloc.clone()).or_default().extend(errors);
            }
        }
        if changed || self.folder_unsynced || connections_changed {
            let errors: Vec<_> = bag.errors.values().flatten().collect();
            for e in &errors {
                tracing::warn!(error = %e, "DAG file has errors");
            }
            self.folder_unsynced = true;
            self.store.sync_dags(bag.dags.values(), errors, self.clock.now()).await?;
            self.folder_unsynced = false;
            tracing::info!(
                dags = bag.dags.len(),
                files_with_errors = bag.errors.len(),
                "DAGs loaded"
            );
            self.dags.replace_all(bag.dags.into_values());
            self.refresh_caps();
            if self.opts.create_scheduled_runs {
                self.watchers.reconcile(&self.dags.all(), &self.store, &self.settings);
            }
        }
        Ok(())
    }

    fn refresh_caps(&mut self) {
        self.max_active_tasks = self
            .dags
            .all()
            .iter()
            .map(|d| (d.dag_id.clone(), i64::from(d.max_active_tasks)))
            .collect();
    }

    /// Work no event announces: schedules, queued runs, retries, other processes' changes.
    async fn poll(&mut self) -> Result<(), SchedulerError> {
        self.queue_wanted = true;
        // The sweep: what this scheduler did not see (a user's clear or mark, another
        // process) is read again from the store.
        self.counts.clear();
        self.paused = self.store.paused_dags().await?;
        if self.opts.create_scheduled_runs {
            self.create_scheduled_runs().await?;
        }
        self.create_asset_runs().await?;
        self.start_queued_runs().await?;
        for run in self.store.runs_in_state(crate::model::DagRunState::Running, 10_000).await? {
            self.running.insert(run.id, runs::Pin::of(&run));
            self.dirty.insert(run.id);
        }
        Ok(())
    }

    /// Examines every dirty run, then queues what became ready.
    async fn process_dirty(&mut self) -> Result<(), SchedulerError> {
        // Bounded: expanding a mapped task marks its run dirty once more, at most once per
        // mapped task, so a handful of passes settle it.
        for _ in 0..8 {
            if std::mem::take(&mut self.run_ended) {
                // The place a finished run held under its DAG's `max_active_runs` goes to
                // the next run now, not at the next poll: a catch-up runs back to back.
                if self.opts.create_scheduled_runs {
                    self.create_scheduled_runs().await?;
                }
                self.start_queued_runs().await?;
            }
            if self.dirty.is_empty() {
                break;
            }
            let runs = std::mem::take(&mut self.dirty);
            for run_pk in runs {
                self.schedule_run(run_pk).await?;
            }
        }
        // Queueing is a write transaction: take it only when something may have become
        // queueable, not on every wake-up of the loop.
        if std::mem::take(&mut self.queue_wanted) {
            self.queue().await?;
        }
        Ok(())
    }

    fn record_slots(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.settings.slots() as u64;
        self.metrics.slots_total.store(total, Relaxed);
        self.metrics
            .slots_busy
            .store(total.saturating_sub(self.executor.free_slots() as u64), Relaxed);
    }

    /// Queues scheduled task instances within the caps and hands them to the executor.
    async fn queue(&mut self) -> Result<(), SchedulerError> {
        let free = self.executor.free_slots();
        if free == 0 {
            return Ok(());
        }
        let remote = self.executor.claims_remotely();
        let caps = QueueCaps {
            free_slots: free,
            max_active_tasks: &self.max_active_tasks,
            // No more queued or running than the live workers have slots (at least one, so
            // that an instance of a queue nobody serves is still looked at and noted): what
            // is queued is claimed at once, not left to age past the queued timeout.
            max_in_flight: remote
                .then_some(self.settings.parallelism.min(self.worker_slots.max(1))),
            served_queues: remote.then_some(&self.served_queues),
        };
        // A local executor's instances are this process's from the start; a worker's become
        // its own when it claims them.
        let owner = (!remote).then_some(self.process.id.as_str());
        let tis = self.store.queue_scheduled(&caps, owner, self.clock.now()).await?;
        for ti in tis {
            self.executor.submit(ti);
        }
        Ok(())
    }
}

/// The wait of a sender beside the loop (notifications, deadlines): until `next` (the store's
/// earliest due time; an error or none waits the whole `poll`), at most `poll`, cut short when
/// `wake` is notified (a row was written in this process). False when `stop` fired.
async fn nap(
    next: Result<Option<DateTime<Utc>>, StoreError>,
    poll: Duration,
    wake: &tokio::sync::Notify,
    stop: &CancellationToken,
) -> bool {
    let wait = match next {
        Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(poll),
        _ => poll,
    };
    tokio::select! {
        () = stop.cancelled() => false,
        () = wake.notified() => true,
        () = tokio::time::sleep(wait) => true,
    }
}
