//! Assets: their events (from tasks' outlets, the API and watchers), each asset-scheduled
//! DAG's queue of new events, the runs those create (consuming their events in the same
//! transaction), what each DAG names, and the watchers' start times.
//!
//! Invariants: whether a DAG's asset schedule is met is decided by `model::assets`; this file
//! counts and writes. A watcher's event carries a dedup key, so re-recording it (a Kafka
//! message delivered again after a crash, an object listed again) writes nothing. A run
//! consumes its events by a compare-and-set on the DAG's cursors, so two schedulers never
//! create a run for the same events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio::sync::Notify;

use super::runs::{INSERT_RUN, NewRun, RUN_COLS, bind_run, run_row};
use super::{Backend, Result, RunRow, Store, StoreError, conflict, opt_time, time, to_us};
use crate::dag::Dag;
use crate::model::RunPk;

/// The PostgreSQL channel that announces new asset events to schedulers in other processes.
pub const ASSETS_CHANNEL: &str = "updraft_assets";

/// How many triggering events a run's template context holds at most (the newest).
pub const TRIGGERING_EVENTS_SHOWN: i64 = 1000;

/// Where an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// A successful try of a task that lists the asset in its `outlets`.
    Task,
    /// `POST /api/v1/assets/events`.
    Api,
    /// A Kafka topic's watcher.
    Kafka,
    /// An S3 prefix's watcher.
    S3,
}

impl EventSource {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Task => "task",
            EventSource::Api => "api",
            EventSource::Kafka => "kafka",
            EventSource::S3 => "s3",
        }
    }
}

/// An event to record (tasks' events are written by `finish_try`, with their run).
#[derive(Debug, Clone)]
pub struct NewAssetEvent {
    /// The asset.
    pub uri: String,
    /// Who says it changed.
    pub source: EventSource,
    /// What the source tells about the change (a message's offset and value, an object's key).
    pub extra: serde_json::Value,
    /// For watchers: the same key twice is one event.
    pub dedup_key: Option<String>,
    /// The user, for API events.
    pub created_by: Option<String>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AssetEventRow {
    /// Its id: events of an asset are ordered by it.
    pub id: i64,
    /// The asset.
    pub uri: String,
    /// `task`, `api`, `kafka` or `s3`.
    pub source: String,
    /// The producing task's DAG, run, task and map index.
    pub source_dag_id: Option<String>,
    /// See `source_dag_id`.
    pub source_run_id: Option<String>,
    /// See `source_dag_id`.
    pub source_task_id: Option<String>,
    /// See `source_dag_id`.
    pub source_map_index: Option<i64>,
    /// What the source told about the change.
    pub extra: serde_json::Value,
    /// The user, for API events.
    pub created_by: Option<String>,
    /// When it was recorded.
    pub timestamp: DateTime<Utc>,
}

/// New events of one asset for one DAG scheduled on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetQueue {
    /// The DAG.
    pub dag_id: String,
    /// The asset.
    pub uri: String,
    /// The last event the DAG's runs consumed.
    pub consumed_id: i64,
    /// How many events came after it.
    pub new_events: i64,
    /// The newest of them.
    pub last_id: i64,
    /// When the oldest and the newest were recorded.
    pub first_at: DateTime<Utc>,
    /// See `first_at`.
    pub last_at: DateTime<Utc>,
}

/// An asset as the assets page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetSummary {
    /// The asset.
    pub uri: String,
    /// Active DAGs with a task listing it in `outlets`.
    pub producers: Vec<String>,
    /// Active DAGs scheduled on it.
    pub consumers: Vec<String>,
    /// Whether a consumer watches an outside source for it.
    pub watched: bool,
    /// Events recorded.
    pub events: i64,
    /// When the newest was recorded.
    pub last_event_at: Option<DateTime<Utc>>,
}

/// How an active DAG names an asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetUseRow {
    /// The DAG.
    pub dag_id: String,
    /// The asset.
    pub uri: String,
    /// `schedule`, `outlet` or `inlet`.
    pub kind: String,
    /// The task, for an outlet or an inlet (empty for a schedule).
    pub task_id: String,
    /// For a schedule: what its watcher reads, if it has one.
    pub watch: Option<String>,
}

const EVENT_COLS: &str = "id, asset_uri, source, dag_id, run_id, task_id, map_index, extra, \
    created_by, created_at";

fn event_row(r: &sqlx::any::AnyRow) -> Result<AssetEventRow> {
    let extra: String = r.try_get("extra")?;
    Ok(AssetEventRow {
        id: r.try_get("id")?,
        uri: r.try_get("asset_uri")?,
        source: r.try_get("source")?,
        source_dag_id: r.try_get("dag_id")?,
        source_run_id: r.try_get("run_id")?,
        source_task_id: r.try_get("task_id")?,
        source_map_index: r.try_get("map_index")?,
        extra: serde_json::from_str(&extra).map_err(|e| StoreError::Corrupt {
            column: "asset_event.extra",
            message: e.to_string(),
        })?,
        created_by: r.try_get("created_by")?,
        timestamp: time(r, "created_at")?,
    })
}

/// Records one event per outlet of a successful try, with its run, in the try's transaction.
pub(super) async fn record_outlets_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ti_id: crate::model::TiId,
    outlets: &[String],
    extra: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let extra = extra.to_string();
    for uri in outlets {
        sqlx::query(
            "INSERT INTO asset_event (asset_uri, source, dag_id, run_id, task_id, map_index, \
             extra, created_at) SELECT $1, 'task', r.dag_id, r.run_id, ti.task_id, ti.map_index, \
             $2, $3 FROM task_instance ti JOIN dag_run r ON r.id = ti.run_pk WHERE ti.id = $4",
        )
        .bind(uri)
        .bind(&extra)
        .bind(to_us(now))
        .bind(ti_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Rewrites what `dag` names, and starts a cursor, at the newest event, for each asset its
/// schedule lists that it had none for (so only events from now on trigger it); the cursors
/// of assets it no longer lists are dropped.
pub(super) async fn sync_dag_assets_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dag: &Dag,
) -> Result<()> {
    sqlx::query("DELETE FROM dag_asset WHERE dag_id = $1")
        .bind(&dag.dag_id)
        .execute(&mut **tx)
        .await?;
    let watch_of = |uri: &str| {
        let s = dag.asset_schedule.as_ref()?;
        let r = s.assets.iter().find(|a| a.uri == uri)?;
        r.watch.as_ref().map(|w| w.describe())
    };
    for (uri, u) in dag.asset_uses() {
        let watch = if u.task_id().is_none() { watch_of(uri) } else { None };
        sqlx::query(
            "INSERT INTO dag_asset (dag_id, asset_uri, kind, task_id, watch) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&dag.dag_id)
        .bind(uri)
        .bind(u.kind())
        .bind(u.task_id().unwrap_or(""))
        .bind(watch)
        .execute(&mut **tx)
        .await?;
    }
    let wanted: Vec<&str> = dag.asset_schedule.iter().flat_map(|s| s.uris()).collect();
    let held: Vec<String> = sqlx::query("SELECT asset_uri FROM asset_cursor WHERE dag_id = $1")
        .bind(&dag.dag_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("asset_uri"))
        .collect::<std::result::Result<_, _>>()?;
    for gone in held.iter().filter(|h| !wanted.contains(&h.as_str())) {
        sqlx::query("DELETE FROM asset_cursor WHERE dag_id = $1 AND asset_uri = $2")
            .bind(&dag.dag_id)
            .bind(gone)
            .execute(&mut **tx)
            .await?;
    }
    for uri in wanted.iter().filter(|w| !held.iter().any(|h| h == *w)) {
        sqlx::query(
            "INSERT INTO asset_cursor (dag_id, asset_uri, consumed_id) \
             SELECT $1, $2, COALESCE(MAX(id), 0) FROM asset_event WHERE asset_uri = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&dag.dag_id)
        .bind(*uri)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Woken after new asset events are committed by this process (other processes' arrive
    /// through [`ASSETS_CHANNEL`] on PostgreSQL, or the scheduler's poll).
    pub fn asset_events_announced(&self) -> Arc<Notify> {
        self.assets_changed.clone()
    }

    /// Tells this process's scheduler, and on PostgreSQL every scheduler, that asset events
    /// were committed. A lost announcement only delays: the scheduler's poll reads the queues.
    pub(super) async fn announce_asset_events(&self) {
        self.assets_changed.notify_one();
        if self.backend == Backend::Postgres
            && let Err(e) = self.notify(ASSETS_CHANNEL, "").await
        {
            tracing::debug!(error = %e, "cannot announce asset events; schedulers poll");
        }
    }

    /// Records events in one transaction; each answer is the event's id, or None for a
    /// watcher's event already recorded under its dedup key.
    pub async fn record_asset_events(
        &self,
        events: &[NewAssetEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>> {
        let mut tx = self.write_tx().await?;
        let mut ids = Vec::with_capacity(events.len());
        for e in events {
            let row = sqlx::query(
                "INSERT INTO asset_event (asset_uri, source, extra, dedup_key, created_by, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (asset_uri, dedup_key) DO NOTHING RETURNING id",
            )
            .bind(&e.uri)
            .bind(e.source.as_str())
            .bind(e.extra.to_string())
            .bind(e.dedup_key.as_deref())
            .bind(e.created_by.as_deref())
            .bind(to_us(now))
            .fetch_optional(&mut *tx)
            .await?;
            ids.push(row.map(|r| r.try_get("id")).transpose()?);
        }
        tx.commit().await?;
        if ids.iter().any(Option::is_some) {
            self.announce_asset_events().await;
        }
        Ok(ids)
    }

    /// For every asset-scheduled DAG and each of its assets with events it has not consumed:
    /// how many, up to which id, and when. One indexed query however many DAGs there are.
    pub async fn asset_queues(&self) -> Result<Vec<AssetQueue>> {
        let rows = sqlx::query(
            "SELECT c.dag_id, c.asset_uri, c.consumed_id, COUNT(e.id) AS n, MAX(e.id) AS last_id, \
             MIN(e.created_at) AS first_at, MAX(e.created_at) AS last_at \
             FROM asset_cursor c JOIN asset_event e ON e.asset_uri = c.asset_uri \
             AND e.id > c.consumed_id GROUP BY c.dag_id, c.asset_uri, c.consumed_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AssetQueue {
                    dag_id: r.try_get("dag_id")?,
                    uri: r.try_get("asset_uri")?,
                    consumed_id: r.try_get("consumed_id")?,
                    new_events: r.try_get("n")?,
                    last_id: r.try_get("last_id")?,
                    first_at: time(r, "first_at")?,
                    last_at: time(r, "last_at")?,
                })
            })
            .collect()
    }

    /// The first `limit` events of `uri` after `after` (an event id), oldest first: their ids
    /// and times, for a DAG that makes one run per event.
    pub async fn events_after(
        &self,
        uri: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT id, created_at FROM asset_event WHERE asset_uri = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(uri)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, time(r, "created_at")?))).collect()
    }

    /// Creates `run` (queued) for the events of `queues` and consumes them, in one
    /// transaction: each queue's cursor moves from the `consumed_id` it was read at to its
    /// `last_id`, or nothing is written (another scheduler consumed them first: None).
    pub async fn create_asset_run(
        &self,
        run: &NewRun,
        queues: &[&AssetQueue],
        now: DateTime<Utc>,
    ) -> Result<Option<RunRow>> {
        let mut tx = self.write_tx().await?;
        for q in queues {
            let moved = sqlx::query(
                "UPDATE asset_cursor SET consumed_id = $1 \
                 WHERE dag_id = $2 AND asset_uri = $3 AND consumed_id = $4",
            )
            .bind(q.last_id)
            .bind(&q.dag_id)
            .bind(&q.uri)
            .bind(q.consumed_id)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let sql = format!("{INSERT_RUN} RETURNING {RUN_COLS}");
        let row = bind_run(sqlx::query(&sql), run, None, now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("run `{}` of DAG `{}`", run.run_id, run.dag_id)))?;
        let created = run_row(&row)?;
        for q in queues {
            sqlx::query(
                "INSERT INTO dag_run_asset_event (run_pk, event_id) SELECT $1, id FROM asset_event \
                 WHERE asset_uri = $2 AND id > $3 AND id <= $4",
            )
            .bind(created.id)
            .bind(&q.uri)
            .bind(q.consumed_id)
            .bind(q.last_id)
            .execute(&mut *tx)
            .await?;
        }
        super::deadlines::insert_in(&mut tx, created.id, &run.dag_id, &run.deadlines).await?;
        tx.commit().await?;
        if !run.deadlines.is_empty() {
            self.deadlines_changed.notify_one();
        }
        Ok(Some(created))
    }

    /// The events a run was created for, oldest first (the newest
    /// [`TRIGGERING_EVENTS_SHOWN`]), and how many there are in all.
    pub async fn triggering_asset_events(
        &self,
        run_pk: RunPk,
    ) -> Result<(Vec<AssetEventRow>, i64)> {
        let cols = EVENT_COLS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols} FROM dag_run_asset_event l JOIN asset_event e ON e.id = l.event_id \
             WHERE l.run_pk = $1 ORDER BY e.id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(run_pk)
            .bind(TRIGGERING_EVENTS_SHOWN)
            .fetch_all(&self.pool)
            .await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>>>()?;
        events.reverse();
        let total: i64 = if (events.len() as i64) < TRIGGERING_EVENTS_SHOWN {
            events.len() as i64
        } else {
            sqlx::query("SELECT COUNT(*) AS n FROM dag_run_asset_event WHERE run_pk = $1")
                .bind(run_pk)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?
        };
        Ok((events, total))
    }

    /// The newest events, newest first: of one asset, of the assets one DAG names, or of
    /// all; only those older than `before` (an id) when given, for paging.
    pub async fn asset_events(
        &self,
        of: EventsOf<'_>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AssetEventRow>> {
        let before = before.unwrap_or(i64::MAX);
        let (filter, key) = match of {
            EventsOf::All => ("$1 = $1", String::new()),
            EventsOf::Asset(uri) => ("asset_uri = $1", uri.to_string()),
            EventsOf::Dag(dag_id) => (
                "asset_uri IN (SELECT asset_uri FROM dag_asset WHERE dag_id = $1 \
                 AND kind <> 'inlet')",
                dag_id.to_string(),
            ),
        };
        let sql = format!(
            "SELECT {EVENT_COLS} FROM asset_event WHERE {filter} AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(key).bind(before).bind(limit).fetch_all(&self.pool);
        rows.await?.iter().map(event_row).collect()
    }

    /// The runs each event triggered, for the events given.
    pub async fn runs_of_events(&self, event_ids: &[i64]) -> Result<Vec<(i64, String, String)>> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = super::placeholders(1, event_ids.len());
        let sql = format!(
            "SELECT l.event_id, r.dag_id, r.run_id FROM dag_run_asset_event l \
             JOIN dag_run r ON r.id = l.run_pk WHERE l.event_id IN ({list}) ORDER BY r.id"
        );
        let mut q = sqlx::query(&sql);
        for id in event_ids {
            q = q.bind(*id);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("event_id")?, r.try_get("dag_id")?, r.try_get("run_id")?)))
            .collect()
    }

    /// What active DAGs name which assets (all of them, or those of one asset).
    pub async fn asset_uses(&self, uri: Option<&str>) -> Result<Vec<AssetUseRow>> {
        let base = "SELECT a.dag_id, a.asset_uri, a.kind, a.task_id, a.watch FROM dag_asset a \
                    JOIN dag d ON d.dag_id = a.dag_id WHERE d.is_active = 1";
        let rows = match uri {
            Some(uri) => {
                let sql =
                    format!("{base} AND a.asset_uri = $1 ORDER BY a.dag_id, a.kind, a.task_id");
                sqlx::query(&sql).bind(uri.to_string()).fetch_all(&self.pool).await?
            }
            None => {
                let sql = format!("{base} ORDER BY a.asset_uri, a.dag_id, a.kind, a.task_id");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(AssetUseRow {
                    dag_id: r.try_get("dag_id")?,
                    uri: r.try_get("asset_uri")?,
                    kind: r.try_get("kind")?,
                    task_id: r.try_get("task_id")?,
                    watch: r.try_get("watch")?,
                })
            })
            .collect()
    }

    /// Every asset an active DAG names or an event was recorded for, by URI, with its
    /// producers, consumers and event count.
    pub async fn assets(&self) -> Result<Vec<AssetSummary>> {
        let mut by_uri: std::collections::BTreeMap<String, AssetSummary> = Default::default();
        let blank = |uri: &str| AssetSummary {
            uri: uri.to_string(),
            producers: Vec::new(),
            consumers: Vec::new(),
            watched: false,
            events: 0,
            last_event_at: None,
        };
        for u in self.asset_uses(None).await? {
            let a = by_uri.entry(u.uri.clone()).or_insert_with(|| blank(&u.uri));
            let list = match u.kind.as_str() {
                "outlet" => &mut a.producers,
                "schedule" => {
                    a.watched |= u.watch.is_some();
                    &mut a.consumers
                }
                _ => continue,
            };
            if !list.contains(&u.dag_id) {
                list.push(u.dag_id);
            }
        }
        let rows = sqlx::query(
            "SELECT asset_uri, COUNT(*) AS n, MAX(created_at) AS last_at FROM asset_event \
             GROUP BY asset_uri",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let uri: String = r.try_get("asset_uri")?;
            let a = by_uri.entry(uri.clone()).or_insert_with(|| blank(&uri));
            a.events = r.try_get("n")?;
            a.last_event_at = opt_time(r, "last_at")?;
        }
        Ok(by_uri.into_values().collect())
    }

    /// When the watcher of `source_key` first started (now, if it never did).
    pub async fn watch_started(
        &self,
        source_key: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        sqlx::query(
            "INSERT INTO asset_watch (source_key, started_at) VALUES ($1, $2) \
             ON CONFLICT (source_key) DO NOTHING",
        )
        .bind(source_key)
        .bind(to_us(now))
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT started_at FROM asset_watch WHERE source_key = $1")
            .bind(source_key)
            .fetch_one(&self.pool)
            .await?;
        time(&row, "started_at")
    }
}

/// Whose events [`Store::asset_events`] reads.
#[derive(Debug, Clone, Copy)]
pub enum EventsOf<'a> {
    /// Every asset's.
    All,
    /// One asset's.
    Asset(&'a str),
    /// Those of the assets a DAG is scheduled on or produces.
    Dag(&'a str),
}
