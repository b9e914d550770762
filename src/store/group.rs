//! Group commit of the hot path's writes: the start and the end of tries.
//!
//! Every try is started and ended by a write transaction of its own. On SQLite they queue for
//! the one writer, and each commit appends the same table and index pages to the write-ahead
//! log again; on PostgreSQL each commit waits for its own flush. Here the tries that start or
//! end while another batch commits are written together in the next transaction: the first
//! caller to find the writer free takes every job queued so far, runs them one after the other
//! in one transaction, and answers each its own result.
//!
//! Invariants: each job is exactly the statements it would run alone, so a job's answer (its
//! compare-and-set hit or missed) does not depend on its batch; a batch commits whole or not
//! at all, and when any statement of it fails, the batch is rolled back and each job runs
//! again alone, so an error reaches only the job that caused it. Batches run on a task of
//! their own: a caller that is dropped while its batch runs leaves the others' answers intact.
//! A batch writes its jobs in task-instance order (the jobs are independent, so the order
//! changes no answer): with lease renewals locking in the same order, PostgreSQL never finds
//! a batch and a renewal each holding a row the other waits for.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::tis::TiRow;
use super::tries::{FinishTry, finish_in, start_in};
use super::{Result, Store, StoreError};
use crate::model::TiId;

/// Jobs a batch takes at most: a bound on one transaction's length.
const MAX_BATCH: usize = 256;

/// The start of a try, as [`Store::start_try`] takes it.
pub(super) struct StartTry {
    pub ti_id: TiId,
    /// State, try number and first poke (microseconds) the instance was queued with.
    pub seen: (crate::model::TaskState, i64, Option<i64>),
    /// The process the instance was queued for (or claimed by).
    pub queued_by: String,
    pub hostname: String,
    pub pid: i64,
    pub owner_process: String,
    pub log_path: Box<dyn Fn(i64) -> String + Send + Sync>,
    pub now: DateTime<Utc>,
}

/// One queued write and where its answer goes.
pub(super) enum Job {
    Start(StartTry, oneshot::Sender<Result<Option<TiRow>>>),
    Finish(FinishTry, oneshot::Sender<Result<bool>>),
}

impl Job {
    fn ti_id(&self) -> TiId {
        match self {
            Job::Start(s, _) => s.ti_id,
            Job::Finish(f, _) => f.ti_id,
        }
    }
}

/// What a job answered, before it is sent.
enum Answer {
    Start(Option<Box<TiRow>>),
    Finish(bool),
}

/// The queue of one store's hot-path writes.
#[derive(Default)]
pub(super) struct Group {
    queue: Mutex<Vec<Job>>,
    /// Held by the caller whose batch is being written.
    turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queued = self.queue.lock().map_or(0, |q| q.len());
        f.debug_struct("Group").field("queued", &queued).finish()
    }
}

impl Store {
    /// Queues `job`, writes it (and whatever else is queued) when the writer is free, and
    /// returns its answer.
    pub(super) async fn group_write<T>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        if let Ok(mut q) = self.group.queue.lock() {
            q.push(job);
        }
        {
            let _turn = self.group.turn.lock().await;
            let mut jobs: Vec<Job> = match self.group.queue.lock() {
                Ok(mut q) => {
                    let n = q.len().min(MAX_BATCH);
                    q.drain(..n).collect()
                }
                Err(_) => Vec::new(),
            };
            // In task-instance order, the order every multi-row write of running instances
            // locks them in (`renew_leases`), so two transactions never wait on each other.
            jobs.sort_by_key(Job::ti_id);
            if !jobs.is_empty() {
                let store = self.clone();
                // A task of its own, so that the batch ends even if this caller is dropped.
                let _ = tokio::spawn(async move { store.write_batch(jobs).await }).await;
            }
        }
        answer.await.map_err(|_| StoreError::Unanswered("a batched write"))?
    }

    /// Writes `jobs` in one transaction, or each alone when the batch fails.
    async fn write_batch(&self, jobs: Vec<Job>) {
        if jobs.len() > 1 {
            match self.try_batch(&jobs).await {
                Ok(answers) => {
                    for (job, answer) in jobs.into_iter().zip(answers) {
                        reply(job, Ok(answer));
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, jobs = jobs.len(), "batched write failed; writing each alone");
                }
            }
        }
        for job in jobs {
            let answer = self.alone(&job).await;
            reply(job, answer);
        }
    }

    async fn try_batch(&self, jobs: &[Job]) -> Result<Vec<Answer>> {
        let mut tx = self.write_tx().await?;
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            answers.push(run(&mut tx, job).await?);
        }
        tx.commit().await?;
        Ok(answers)
    }

    async fn alone(&self, job: &Job) -> Result<Answer> {
        let mut tx = self.write_tx().await?;
        let answer = run(&mut tx, job).await?;
        tx.commit().await?;
        Ok(answer)
    }
}

async fn run(tx: &mut sqlx::Transaction<'static, sqlx::Any>, job: &Job) -> Result<Answer> {
    Ok(match job {
        Job::Start(s, _) => Answer::Start(start_in(tx, s).await?.map(Box::new)),
        Job::Finish(f, _) => Answer::Finish(finish_in(tx, f).await?),
    })
}

fn reply(job: Job, answer: Result<Answer>) {
    // `run` answers each job in its own kind; a receiver gone (its caller dropped) needs no
    // answer.
    match job {
        Job::Start(_, to) => {
            let _ = to.send(
                answer.map(|a| if let Answer::Start(ti) = a { ti.map(|t| *t) } else { None }),
            );
        }
        Job::Finish(_, to) => {
            let _ = to.send(answer.map(|a| matches!(a, Answer::Finish(true))));
        }
    }
}
