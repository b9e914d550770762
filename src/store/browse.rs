//! The lists people browse: runs and task instances, of one DAG or of all, filtered by state,
//! run type, logical date and text, newest first, paged by primary key (`before`).
//!
//! Invariant: a user's text reaches SQL only as a bind (`LIKE` through `like_literal`); what
//! is written into the SQL text is ours: state and type spellings from their enums, times as
//! microsecond integers.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::runs::{RUN_COLS, RunRow, run_row};
use super::tis::{TI_COLS, TiRow, ti_row};
use super::views::like_literal;
use super::{Result, Store, to_us};
use crate::model::{DagRunState, RunPk, RunType, TaskState, TiId};

/// Which runs a list shows; the default shows every run of every DAG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// One DAG's runs only.
    pub dag_id: Option<String>,
    /// Runs in one of these states (any state when empty).
    pub states: Vec<DagRunState>,
    /// Runs of this type only.
    pub run_type: Option<RunType>,
    /// Logical date at or after.
    pub from: Option<DateTime<Utc>>,
    /// Logical date at or before.
    pub to: Option<DateTime<Utc>>,
    /// Ended at or after (the home page's "failed in the last 24 hours").
    pub ended_from: Option<DateTime<Utc>>,
    /// The runs of one backfill (created or run again by it).
    pub backfill: Option<i64>,
}

impl RunFilter {
    /// Every run of one DAG.
    pub fn dag(dag_id: &str) -> RunFilter {
        RunFilter { dag_id: Some(dag_id.to_string()), ..RunFilter::default() }
    }
}

/// Which task instances a list shows; the default shows every one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TiFilter {
    /// Of one DAG only.
    pub dag_id: Option<String>,
    /// In one of these states (any state when empty).
    pub states: Vec<TaskState>,
    /// Whose task id contains this text (case-insensitive).
    pub task: Option<String>,
    /// Their run's logical date at or after.
    pub from: Option<DateTime<Utc>>,
    /// Their run's logical date at or before.
    pub to: Option<DateTime<Utc>>,
}

/// `column IN ('a', 'b')` for spellings of our own enums.
fn one_of<'a>(column: &str, values: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<String> = values.map(|v| format!("'{v}'")).collect();
    format!("{column} IN ({})", list.join(", "))
}

/// The conditions on `dag_run` of a run filter (binds pushed in `$n` order).
fn run_where(f: &RunFilter, binds: &mut Vec<String>) -> Vec<String> {
    let mut clauses = Vec::new();
    if let Some(d) = &f.dag_id {
        binds.push(d.clone());
        clauses.push(format!("dag_id = ${}", binds.len()));
    }
    if !f.states.is_empty() {
        clauses.push(one_of("state", f.states.iter().map(|s| s.as_str())));
    }
    if let Some(t) = f.run_type {
        clauses.push(format!("run_type = '{}'", t.as_str()));
    }
    if let Some(t) = f.from {
        clauses.push(format!("logical_date >= {}", to_us(t)));
    }
    if let Some(t) = f.to {
        clauses.push(format!("logical_date <= {}", to_us(t)));
    }
    if let Some(t) = f.ended_from {
        clauses.push(format!("end_date >= {}", to_us(t)));
    }
    if let Some(b) = f.backfill {
        // An integer the page parsed: inlined like the dates above.
        clauses.push(format!("backfill_id = {b}"));
    }
    clauses
}

fn ti_where(f: &TiFilter, binds: &mut Vec<String>) -> Vec<String> {
    let mut clauses = Vec::new();
    if let Some(d) = &f.dag_id {
        binds.push(d.clone());
        clauses.push(format!("dag_id = ${}", binds.len()));
    }
    if !f.states.is_empty() {
        clauses.push(one_of("state", f.states.iter().map(|s| s.as_str())));
    }
    if let Some(t) = f.task.as_deref().filter(|t| !t.is_empty()) {
        binds.push(format!("%{}%", like_literal(&t.to_lowercase())));
        clauses.push(format!("LOWER(task_id) LIKE ${} ESCAPE '\\'", binds.len()));
    }
    if f.from.is_some() || f.to.is_some() {
        let runs = RunFilter { from: f.from, to: f.to, ..RunFilter::default() };
        let dates = run_where(&runs, binds).join(" AND ");
        clauses.push(format!("run_pk IN (SELECT id FROM dag_run WHERE {dates})"));
    }
    clauses
}

fn and(clauses: Vec<String>, extra: &str) -> String {
    let mut all = clauses;
    all.push(extra.to_string());
    all.join(" AND ")
}

impl Store {
    /// One page of runs, newest first; `before` (a run primary key) pages backwards.
    pub async fn browse_runs(
        &self,
        f: &RunFilter,
        before: Option<RunPk>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let mut binds = Vec::new();
        let before = before.unwrap_or(RunPk(i64::MAX)).0;
        let cond = and(run_where(f, &mut binds), &format!("id < {before}"));
        let sql =
            format!("SELECT {RUN_COLS} FROM dag_run WHERE {cond} ORDER BY id DESC LIMIT {limit}");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool).await?.iter().map(run_row).collect()
    }

    /// How many runs match.
    pub async fn count_runs(&self, f: &RunFilter) -> Result<i64> {
        let mut binds = Vec::new();
        let cond = and(run_where(f, &mut binds), "1 = 1");
        let sql = format!("SELECT COUNT(*) FROM dag_run WHERE {cond}");
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        Ok(q.fetch_one(&self.pool).await?)
    }

    /// One page of task instances, newest first; `before` (an instance key) pages backwards.
    pub async fn browse_tis(
        &self,
        f: &TiFilter,
        before: Option<TiId>,
        limit: i64,
    ) -> Result<Vec<TiRow>> {
        let mut binds = Vec::new();
        let before = before.unwrap_or(TiId(i64::MAX)).0;
        let cond = and(ti_where(f, &mut binds), &format!("id < {before}"));
        let sql = format!(
            "SELECT {TI_COLS} FROM task_instance WHERE {cond} ORDER BY id DESC LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool).await?.iter().map(ti_row).collect()
    }

    /// Slots each pool has taken by running and by queued instances: `(pool, running,
    /// queued)`, for the home page.
    pub async fn pool_usage(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT pool, \
             CAST(SUM(CASE WHEN state = 'running' THEN pool_slots ELSE 0 END) AS BIGINT) \
             AS running, \
             CAST(SUM(CASE WHEN state = 'queued' THEN pool_slots ELSE 0 END) AS BIGINT) \
             AS queued \
             FROM task_instance WHERE state IN ('running', 'queued') GROUP BY pool",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("pool")?, r.try_get("running")?, r.try_get("queued")?)))
            .collect()
    }
}
