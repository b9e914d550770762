//! DAG rows: what the scheduler's DAG folder holds, for other processes and the UI.

use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, from_us, opt_time, time, to_us};
use crate::dag::schedule::DataInterval;
use crate::dag::{Dag, LoadError};

/// One row of the `dag` table.
#[derive(Debug, Clone, PartialEq)]
pub struct DagRecord {
    /// Id of the DAG.
    pub dag_id: String,
    /// File it was read from, relative to the DAGs folder.
    pub fileloc: String,
    /// The YAML text; parse it with `dag::parse_dag_str` to get the `Dag`.
    pub source: String,
    /// Paused DAGs get no scheduled runs and no task of theirs is queued.
    pub is_paused: bool,
    /// False once its file is gone or broken.
    pub is_active: bool,
    /// The user's schedule expression, if any.
    pub schedule: Option<String>,
    /// Owner shown in the UI.
    pub owner: String,
    /// Tags shown in the UI.
    pub tags: Vec<String>,
    /// Description shown in the UI.
    pub description: Option<String>,
    /// Logical date of the next scheduled run.
    pub next_dagrun: Option<DateTime<Utc>>,
    /// Data interval of the next scheduled run; it is due at `end`.
    pub next_interval: Option<DataInterval>,
    /// Cap on concurrently running runs.
    pub max_active_runs: i64,
    /// Cap on concurrently queued or running task instances.
    pub max_active_tasks: i64,
}

const DAG_COLS: &str = "dag_id, fileloc, source, is_paused, is_active, schedule, owner, tags, \
    description, next_dagrun, next_data_interval_start, next_data_interval_end, \
    max_active_runs, max_active_tasks";

fn dag_row(row: &AnyRow) -> Result<DagRecord> {
    let start = opt_time(row, "next_data_interval_start")?;
    let end = opt_time(row, "next_data_interval_end")?;
    Ok(DagRecord {
        dag_id: row.try_get("dag_id")?,
        fileloc: row.try_get("fileloc")?,
        source: row.try_get("source")?,
        is_paused: row.try_get::<i64, _>("is_paused")? != 0,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        schedule: row.try_get("schedule")?,
        owner: row.try_get("owner")?,
        tags: super::json_col(row, "tags")?,
        description: row.try_get("description")?,
        next_dagrun: opt_time(row, "next_dagrun")?,
        next_interval: start.zip(end).map(|(start, end)| DataInterval { start, end }),
        max_active_runs: row.try_get("max_active_runs")?,
        max_active_tasks: row.try_get("max_active_tasks")?,
    })
}

/// One version of a DAG: a source it had, kept for the runs pinned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagVersion {
    /// The DAG.
    pub dag_id: String,
    /// The version key: the SHA-256 of `source` (`dag::version_of`).
    pub version: String,
    /// 1 for the first source the DAG had, counting up as new sources are seen.
    pub number: i64,
    /// The file it was read from.
    pub fileloc: String,
    /// The DAG's YAML text.
    pub source: String,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// The user whose editor save wrote it; None when the folder scan found it first.
    pub saved_by: Option<String>,
}

/// A version in the list of a DAG's versions (without its source).
#[derive(Debug, Clone, PartialEq)]
pub struct DagVersionInfo {
    /// The version key (SHA-256 of the source).
    pub version: String,
    /// 1, 2, …: the order the versions were first seen.
    pub number: i64,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// The user whose editor save wrote it; None when the folder scan found it first.
    pub saved_by: Option<String>,
    /// Runs pinned to it.
    pub runs: i64,
}

/// How a version is looked up: by its key or by its number.
#[derive(Clone, Copy)]
enum VersionKey<'a> {
    Hash(&'a str),
    Number(i64),
}

/// Versions a DAG's version list shows at most (the newest).
pub const VERSIONS_SHOWN: i64 = 500;

impl Store {
    /// The version `version` of DAG `dag_id`; [`StoreError::NotFound`] when none was recorded.
    pub async fn dag_version(&self, dag_id: &str, version: &str) -> Result<DagVersion> {
        self.find_dag_version(dag_id, VersionKey::Hash(version)).await
    }

    /// Version number `number` of DAG `dag_id`; [`StoreError::NotFound`] when there is none.
    pub async fn dag_version_numbered(&self, dag_id: &str, number: i64) -> Result<DagVersion> {
        self.find_dag_version(dag_id, VersionKey::Number(number)).await
    }

    async fn find_dag_version(&self, dag_id: &str, key: VersionKey<'_>) -> Result<DagVersion> {
        let cond = match key {
            VersionKey::Hash(_) => "source_hash = $2",
            VersionKey::Number(_) => "version_number = $2",
        };
        let sql = format!(
            "SELECT dag_id, source_hash, version_number, fileloc, source, created_at, saved_by \
             FROM dag_version WHERE dag_id = $1 AND {cond}"
        );
        let q = sqlx::query(&sql).bind(dag_id);
        let q = match key {
            VersionKey::Hash(h) => q.bind(h),
            VersionKey::Number(n) => q.bind(n),
        };
        let row = q.fetch_optional(&self.pool).await?;
        let key = match key {
            VersionKey::Hash(h) => h.to_string(),
            VersionKey::Number(n) => format!("v{n}"),
        };
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("version {key} of DAG `{dag_id}`")));
        };
        Ok(DagVersion {
            dag_id: row.try_get("dag_id")?,
            version: row.try_get("source_hash")?,
            number: row.try_get("version_number")?,
            fileloc: row.try_get("fileloc")?,
            source: row.try_get("source")?,
            created_at: time(&row, "created_at")?,
            saved_by: row.try_get("saved_by")?,
        })
    }

    /// The newest [`VERSIONS_SHOWN`] versions of DAG `dag_id`, newest first, each with the
    /// number of runs pinned to it.
    pub async fn dag_versions(&self, dag_id: &str) -> Result<Vec<DagVersionInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT v.source_hash, v.version_number, v.created_at, v.saved_by, \
             (SELECT COUNT(*) FROM dag_run r WHERE r.dag_id = v.dag_id \
              AND r.dag_version = v.source_hash) AS runs \
             FROM dag_version v WHERE v.dag_id = $1 ORDER BY v.version_number DESC \
             LIMIT {VERSIONS_SHOWN}"
        ))
        .bind(dag_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DagVersionInfo {
                    version: r.try_get("source_hash")?,
                    number: r.try_get("version_number")?,
                    created_at: time(r, "created_at")?,
                    saved_by: r.try_get("saved_by")?,
                    runs: r.try_get("runs")?,
                })
            })
            .collect()
    }

    /// Records `dag`'s source as a version saved by `user` from the editor (the folder scan
    /// that finds the file later keeps the name; a scan that found it first gets it added).
    pub async fn record_saved_version(
        &self,
        dag: &Dag,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        record_version(&mut tx, dag, now).await?;
        sqlx::query(
            "UPDATE dag_version SET saved_by = $1 WHERE dag_id = $2 AND source_hash = $3 \
             AND saved_by IS NULL",
        )
        .bind(user)
        .bind(&dag.dag_id)
        .bind(&dag.version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the DAGs of a folder scan: upserts `dags` (new ones start paused when their file
    /// says so), deactivates every other DAG, and replaces the import errors. One transaction.
    pub async fn sync_dags<'a>(
        &self,
        dags: impl IntoIterator<Item = &'a Dag>,
        errors: impl IntoIterator<Item = &'a LoadError>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE dag SET is_active = 0").execute(&mut *tx).await?;
        for dag in dags {
            let tags = serde_json::to_string(&dag.tags).unwrap_or_else(|_| "[]".into());
            let schedule = dag.schedule_text();
            sqlx::query(
                "INSERT INTO dag (dag_id, fileloc, source, source_hash, description, owner, tags, \
                 schedule, is_paused, is_active, max_active_runs, max_active_tasks, \
                 last_parsed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12) \
                 ON CONFLICT (dag_id) DO UPDATE SET fileloc = excluded.fileloc, \
                 source = excluded.source, source_hash = excluded.source_hash, \
                 description = excluded.description, owner = excluded.owner, \
                 tags = excluded.tags, schedule = excluded.schedule, is_active = 1, \
                 max_active_runs = excluded.max_active_runs, \
                 max_active_tasks = excluded.max_active_tasks, \
                 last_parsed_at = excluded.last_parsed_at",
            )
            .bind(&dag.dag_id)
            .bind(dag.fileloc.to_string_lossy().into_owned())
            .bind(&dag.source)
            .bind(&dag.version)
            .bind(dag.description.clone())
            .bind(&dag.owner)
            .bind(tags)
            .bind(schedule)
            .bind(i64::from(dag.is_paused_upon_creation))
            .bind(i64::from(dag.max_active_runs))
            .bind(i64::from(dag.max_active_tasks))
            .bind(to_us(now))
            .execute(&mut *tx)
            .await?;
            record_version(&mut tx, dag, now).await?;
            super::assets::sync_dag_assets_in(&mut tx, dag).await?;
        }
        sqlx::query("DELETE FROM import_error").execute(&mut *tx).await?;
        for e in errors {
            sqlx::query(
                "INSERT INTO import_error (filename, line, col, message, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(e.file.to_string_lossy().into_owned())
            .bind(e.line as i64)
            .bind(e.column as i64)
            .bind(&e.message)
            .bind(to_us(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes `dag` start paused when the scheduler first records its file (Airflow's
    /// `dags_are_paused_at_creation`, for DAGs created in the editor): inserts an inactive,
    /// paused row that the next folder sync activates without touching `is_paused`, or pauses
    /// an inactive row of the same id. An active DAG is left as it is (an operator may have
    /// unpaused it). Returns whether the DAG now waits for an unpause.
    pub async fn pause_at_creation(&self, dag: &Dag, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO dag (dag_id, fileloc, source, source_hash, description, owner, tags, \
             schedule, is_paused, is_active, max_active_runs, max_active_tasks, last_parsed_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, '[]', NULL, 1, 0, $6, $7, $8) \
             ON CONFLICT (dag_id) DO UPDATE SET is_paused = 1 WHERE dag.is_active = 0",
        )
        .bind(&dag.dag_id)
        .bind(dag.fileloc.to_string_lossy().into_owned())
        .bind(&dag.source)
        .bind(&dag.version)
        .bind(&dag.owner)
        .bind(i64::from(dag.max_active_runs))
        .bind(i64::from(dag.max_active_tasks))
        .bind(to_us(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every DAG row, active or not, ordered by id.
    pub async fn list_dags(&self) -> Result<Vec<DagRecord>> {
        let rows = sqlx::query(&format!("SELECT {DAG_COLS} FROM dag ORDER BY dag_id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(dag_row).collect()
    }

    /// One DAG row.
    pub async fn get_dag(&self, dag_id: &str) -> Result<DagRecord> {
        let row = sqlx::query(&format!("SELECT {DAG_COLS} FROM dag WHERE dag_id = $1"))
            .bind(dag_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => dag_row(&row),
            None => Err(StoreError::NotFound(format!("DAG `{dag_id}`"))),
        }
    }

    /// Pauses or unpauses a DAG.
    pub async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<()> {
        let done = sqlx::query("UPDATE dag SET is_paused = $1 WHERE dag_id = $2")
            .bind(i64::from(paused))
            .bind(dag_id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("DAG `{dag_id}`")));
        }
        Ok(())
    }

    /// Records when the next scheduled run of a DAG is due (None: no more scheduled runs).
    pub async fn set_next_dagrun(&self, dag_id: &str, next: Option<DataInterval>) -> Result<()> {
        sqlx::query(
            "UPDATE dag SET next_dagrun = $1, next_data_interval_start = $2, \
             next_data_interval_end = $3 WHERE dag_id = $4",
        )
        .bind(next.map(|i| to_us(i.start)))
        .bind(next.map(|i| to_us(i.start)))
        .bind(next.map(|i| to_us(i.end)))
        .bind(dag_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Import errors of the last folder scan, by file then line.
    pub async fn import_errors(&self) -> Result<Vec<LoadError>> {
        let rows = sqlx::query(
            "SELECT filename, line, col, message FROM import_error ORDER BY filename, line, col",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoadError {
                    file: Path::new(&r.try_get::<String, _>("filename")?).to_path_buf(),
                    line: r.try_get::<i64, _>("line")?.max(0) as usize,
                    column: r.try_get::<i64, _>("col")?.max(0) as usize,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    /// Logical date of the newest scheduled or backfill run of a DAG, with its interval.
    pub async fn last_scheduled_interval(&self, dag_id: &str) -> Result<Option<DataInterval>> {
        let row = sqlx::query(
            "SELECT data_interval_start, data_interval_end FROM dag_run \
             WHERE dag_id = $1 AND run_type IN ('scheduled', 'backfill') \
             ORDER BY data_interval_end DESC LIMIT 1",
        )
        .bind(dag_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(DataInterval {
                start: from_us(r.try_get("data_interval_start")?),
                end: from_us(r.try_get("data_interval_end")?),
            })),
        }
    }
    /// Ids of the paused DAGs.
    pub async fn paused_dags(&self) -> Result<std::collections::HashSet<String>> {
        let rows =
            sqlx::query("SELECT dag_id FROM dag WHERE is_paused = 1").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("dag_id")?)).collect()
    }
}

/// Records `dag`'s source as a version of its DAG unless it is one already, numbered after
/// the DAG's newest version. Two writers recording the same new source both end on its key;
/// two different sources racing for one number make the later writer number again (each
/// statement sees what committed before it), a bounded number of times.
pub(super) async fn record_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dag: &Dag,
    now: DateTime<Utc>,
) -> Result<()> {
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        let inserted = sqlx::query(
            "INSERT INTO dag_version (dag_id, source_hash, version_number, fileloc, source, \
             created_at) SELECT $1, $2, COALESCE(MAX(version_number), 0) + 1, $3, $4, $5 \
             FROM dag_version WHERE dag_id = $1 ON CONFLICT DO NOTHING",
        )
        .bind(&dag.dag_id)
        .bind(&dag.version)
        .bind(dag.fileloc.to_string_lossy().into_owned())
        .bind(&dag.source)
        .bind(to_us(now))
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(());
        }
        let known = sqlx::query("SELECT 1 FROM dag_version WHERE dag_id = $1 AND source_hash = $2")
            .bind(&dag.dag_id)
            .bind(&dag.version)
            .fetch_optional(&mut **tx)
            .await?;
        if known.is_some() {
            return Ok(());
        }
    }
    Err(StoreError::Conflict(format!(
        "version {} of DAG `{}`: its number was taken {ATTEMPTS} times in a row",
        dag.version, dag.dag_id
    )))
}
