//! Read-side queries shaped for the web UI and the API: a page of DAGs with their recent runs,
//! the grid of runs x task instances, a task instance by its key.
//!
//! Invariant: read only; each page is a bounded number of indexed queries (no query per row),
//! so the DAG list stays fast with thousands of DAGs and hundreds of thousands of instances.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::tis::{TI_COLS, ti_row};
use super::{Result, Store, from_us, json_col, opt_time, packed};
use crate::model::{DagRunState, RunPk, TaskState, TiId};
use crate::store::TiRow;

/// Filters of the DAG list.
#[derive(Debug, Clone, Default)]
pub struct DagFilter {
    /// Part of the DAG id (case-insensitive).
    pub search: Option<String>,
    /// Part of the id, a tag, the owner or the description (case-insensitive): the UI's search.
    pub text: Option<String>,
    /// Exact tag.
    pub tag: Option<String>,
    /// Exact owner.
    pub owner: Option<String>,
    /// Only paused (true) or only active (false) DAGs.
    pub paused: Option<bool>,
}

/// The order of the DAG list: a column, ascending or not. The id breaks ties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DagOrder {
    /// The column.
    pub by: DagColumn,
    /// Largest first.
    pub descending: bool,
}

/// A column the DAG list can be ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DagColumn {
    /// The DAG id.
    #[default]
    Id,
    /// The owner.
    Owner,
    /// The schedule text (manual DAGs last).
    Schedule,
    /// When the next scheduled run starts (none last).
    NextRun,
}

impl DagOrder {
    /// The `ORDER BY` clause; every piece is a fixed string, never user text.
    fn sql(self) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        let column = match self.by {
            DagColumn::Id => return format!("dag_id {dir}"),
            DagColumn::Owner => "owner",
            DagColumn::Schedule => "schedule",
            DagColumn::NextRun => "next_data_interval_end",
        };
        // NULLs last whichever way, alike on SQLite and PostgreSQL.
        format!("CASE WHEN {column} IS NULL THEN 1 ELSE 0 END, {column} {dir}, dag_id")
    }
}

/// One line of the DAG list (no source text: that is for the DAG page).
#[derive(Debug, Clone, PartialEq)]
pub struct DagSummary {
    /// Id.
    pub dag_id: String,
    /// File, relative to the DAGs folder.
    pub fileloc: String,
    /// Paused?
    pub is_paused: bool,
    /// Schedule expression (None: manual only).
    pub schedule: Option<String>,
    /// Owner.
    pub owner: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Logical date of the next scheduled run.
    pub next_dagrun: Option<DateTime<Utc>>,
    /// When the next scheduled run is due to start: the end of its data interval.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Raised (in the same transaction) by every change of the DAG's runs: what was read of
    /// its runs at this version is still true (`dag_runs_version`, kept by the triggers of
    /// `migrations/*/0008_dag_runs_version.sql`).
    pub runs_version: i64,
}

/// A run as the DAG list shows it: a coloured dot.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDot {
    /// Run id.
    pub run_id: String,
    /// State.
    pub state: DagRunState,
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// When it started running.
    pub start_date: Option<DateTime<Utc>>,
    /// When it finished.
    pub end_date: Option<DateTime<Utc>>,
}

/// A task instance as the grid shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    /// Run primary key.
    pub run_pk: RunPk,
    /// Task id.
    pub task_id: String,
    /// Map index (-1 unless mapped).
    pub map_index: i64,
    /// State.
    pub state: TaskState,
    /// Tries so far.
    pub try_number: i64,
    /// Start of the current or last try.
    pub start_date: Option<DateTime<Utc>>,
    /// End of the last try.
    pub end_date: Option<DateTime<Utc>>,
}

/// `text` as a LIKE pattern matching itself only: `%`, `_` and the escape character are
/// escaped, so a user's filter is never a wildcard. Used with `ESCAPE '\'`, which SQLite and
/// PostgreSQL read alike.
pub(super) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Builds the WHERE clause of the DAG list; binds are pushed in `$n` order.
fn dag_where(f: &DagFilter, binds: &mut Vec<String>) -> String {
    let mut clauses = vec!["is_active = 1".to_string()];
    if let Some(s) = f.search.as_deref().filter(|s| !s.is_empty()) {
        binds.push(format!("%{}%", like_literal(&s.to_lowercase())));
        clauses.push(format!("LOWER(dag_id) LIKE ${} ESCAPE '\\'", binds.len()));
    }
    if let Some(s) = f.text.as_deref().filter(|s| !s.is_empty()) {
        binds.push(format!("%{}%", like_literal(&s.to_lowercase())));
        let n = binds.len();
        clauses.push(format!(
            "(LOWER(dag_id) LIKE ${n} ESCAPE '\\' OR LOWER(owner) LIKE ${n} ESCAPE '\\' \
             OR LOWER(tags) LIKE ${n} ESCAPE '\\' \
             OR LOWER(COALESCE(description, '')) LIKE ${n} ESCAPE '\\')"
        ));
    }
    if let Some(t) = f.tag.as_deref().filter(|s| !s.is_empty()) {
        // Tags are stored as a JSON array of strings: match the quoted element.
        let quoted = serde_json::Value::String(t.to_string()).to_string();
        binds.push(format!("%{}%", like_literal(&quoted)));
        clauses.push(format!("tags LIKE ${} ESCAPE '\\'", binds.len()));
    }
    if let Some(o) = f.owner.as_deref().filter(|s| !s.is_empty()) {
        binds.push(o.to_string());
        clauses.push(format!("owner = ${}", binds.len()));
    }
    if let Some(p) = f.paused {
        clauses.push(format!("is_paused = {}", i64::from(p)));
    }
    clauses.join(" AND ")
}

impl Store {
    /// One page of active DAGs by id, and the number matching the filter.
    pub async fn dag_page(
        &self,
        f: &DagFilter,
        order: DagOrder,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<DagSummary>, i64)> {
        let mut binds = Vec::new();
        let cond = dag_where(f, &mut binds);
        let order = order.sql();
        let sql = format!(
            "SELECT dag_id, fileloc, is_paused, schedule, owner, tags, description, next_dagrun, \
             next_data_interval_end, COALESCE((SELECT version FROM dag_runs_version v \
             WHERE v.dag_id = dag.dag_id), 0) AS runs_version FROM dag WHERE {cond} \
             ORDER BY {order} \
             LIMIT {limit} OFFSET {offset}"
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let dags = rows
            .iter()
            .map(|r| {
                Ok(DagSummary {
                    dag_id: r.try_get("dag_id")?,
                    fileloc: r.try_get("fileloc")?,
                    is_paused: r.try_get::<i64, _>("is_paused")? != 0,
                    schedule: r.try_get("schedule")?,
                    owner: r.try_get("owner")?,
                    tags: json_col(r, "tags")?,
                    description: r.try_get("description")?,
                    next_dagrun: opt_time(r, "next_dagrun")?,
                    next_run_at: opt_time(r, "next_data_interval_end")?,
                    runs_version: r.try_get("runs_version")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The count is only needed when the page is full or does not start at zero.
        let total = if offset == 0 && (dags.len() as i64) < limit {
            dags.len() as i64
        } else {
            let sql = format!("SELECT COUNT(*) FROM dag WHERE {cond}");
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for b in &binds {
                q = q.bind(b);
            }
            q.fetch_one(&self.pool).await?
        };
        Ok((dags, total))
    }

    /// Distinct tags and owners of active DAGs, for the list's filter menus.
    pub async fn dag_facets(&self) -> Result<(Vec<String>, Vec<String>)> {
        let rows = sqlx::query("SELECT DISTINCT tags, owner FROM dag WHERE is_active = 1")
            .fetch_all(&self.pool)
            .await?;
        let mut tags = std::collections::BTreeSet::new();
        let mut owners = std::collections::BTreeSet::new();
        for r in &rows {
            let t: Vec<String> = json_col(r, "tags")?;
            tags.extend(t);
            owners.insert(r.try_get::<String, _>("owner")?);
        }
        Ok((tags.into_iter().collect(), owners.into_iter().collect()))
    }

    /// The newest `per_dag` runs of each DAG in `dag_ids`, newest first. One query.
    pub async fn recent_runs(
        &self,
        dag_ids: &[String],
        per_dag: i64,
    ) -> Result<HashMap<String, Vec<RunDot>>> {
        let mut out: HashMap<String, Vec<RunDot>> = HashMap::new();
        if dag_ids.is_empty() {
            return Ok(out);
        }
        // One indexed range scan per DAG (dag_id, logical_date), glued with UNION ALL: a window
        // function over all the DAGs' runs would sort every run of the page's DAGs first. One
        // row per DAG, its runs packed (`packed`): half the cost of a row per run.
        let parts: Vec<String> = (1..=dag_ids.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT dag_id, run_id, state, logical_date, start_date, end_date \
                     FROM dag_run \
                     WHERE dag_id = ${i} ORDER BY logical_date DESC, id DESC LIMIT {per_dag}) r{i}"
                )
            })
            .collect();
        let fields = ["run_id", "state", "logical_date", "start_date", "end_date"];
        let packed = packed::aggregate(self.backend, &packed::record(self.backend, &fields));
        let sql = format!(
            "SELECT dag_id, {packed} AS runs FROM ({}) recent GROUP BY dag_id",
            parts.join(" UNION ALL ")
        );
        let mut q = sqlx::query(&sql);
        for id in dag_ids {
            q = q.bind(id);
        }
        for r in q.fetch_all(&self.pool).await? {
            let text: String = r.try_get("runs")?;
            let col = "dag_run";
            let mut runs = Vec::new();
            for rec in packed::records::<5>(&text, col) {
                let [run_id, state, logical, start, end] = rec?;
                runs.push(RunDot {
                    run_id: run_id.to_string(),
                    state: packed::parsed(state, col)?,
                    logical_date: from_us(packed::int(logical, col)?),
                    start_date: packed::opt_int(start, col)?.map(from_us),
                    end_date: packed::opt_int(end, col)?.map(from_us),
                });
            }
            out.insert(r.try_get("dag_id")?, runs);
        }
        // UNION ALL promises no order: newest first, as documented.
        for runs in out.values_mut() {
            runs.sort_by_key(|b| std::cmp::Reverse(b.logical_date));
        }
        Ok(out)
    }

    /// The task instances of the given runs, for the grid (light columns only).
    pub async fn grid_cells(&self, run_pks: &[RunPk]) -> Result<Vec<GridCell>> {
        if run_pks.is_empty() {
            return Ok(Vec::new());
        }
        // Primary keys are integers we produced: inlining them is safe and avoids a bind
        // per run. One row per run, its instances packed (`packed`): 5,000 cells as rows
        // would cost three times as much.
        let ids: Vec<String> = run_pks.iter().map(RunPk::to_string).collect();
        let fields = ["task_id", "map_index", "state", "try_number", "start_date", "end_date"];
        let packed = packed::aggregate(self.backend, &packed::record(self.backend, &fields));
        let rows = sqlx::query(&format!(
            "SELECT run_pk, {packed} AS cells FROM task_instance WHERE run_pk IN ({}) \
             GROUP BY run_pk",
            ids.join(",")
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut cells = Vec::new();
        for r in &rows {
            let run_pk: RunPk = r.try_get("run_pk")?;
            let text: String = r.try_get("cells")?;
            for rec in packed::records::<6>(&text, "task_instance") {
                let [task_id, map_index, state, try_number, start, end] = rec?;
                let col = "task_instance";
                cells.push(GridCell {
                    run_pk,
                    task_id: task_id.to_string(),
                    map_index: packed::int(map_index, col)?,
                    state: packed::parsed(state, col)?,
                    try_number: packed::int(try_number, col)?,
                    start_date: packed::opt_int(start, col)?.map(from_us),
                    end_date: packed::opt_int(end, col)?.map(from_us),
                });
            }
        }
        Ok(cells)
    }

    /// A task instance by its key.
    pub async fn find_ti(
        &self,
        run_pk: RunPk,
        task_id: &str,
        map_index: i64,
    ) -> Result<Option<TiRow>> {
        let row = sqlx::query(&format!(
            "SELECT {TI_COLS} FROM task_instance WHERE run_pk = $1 AND task_id = $2 AND map_index = $3"
        ))
        .bind(run_pk)
        .bind(task_id)
        .bind(map_index)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ti_row).transpose()
    }

    /// Rendered template fields of a task instance's last try (JSON object), if recorded.
    pub async fn ti_rendered(
        &self,
        ti_id: TiId,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let row = sqlx::query("SELECT rendered FROM task_instance WHERE id = $1")
            .bind(ti_id)
            .fetch_optional(&self.pool)
            .await?;
        let text: Option<String> = match row {
            Some(r) => r.try_get("rendered")?,
            None => None,
        };
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
    }

    /// Task instances per state of one DAG's runs and across all DAGs, for metrics.
    pub async fn state_totals(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
        let runs = sqlx::query("SELECT state, COUNT(*) AS n FROM dag_run GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let tis = sqlx::query("SELECT state, COUNT(*) AS n FROM task_instance GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let pairs = |rows: Vec<sqlx::any::AnyRow>| -> Result<Vec<(String, i64)>> {
            rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
        };
        Ok((pairs(runs)?, pairs(tis)?))
    }
}
