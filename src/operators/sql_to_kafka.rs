//! `type: sql_to_kafka`: the incremental table source. Each poll reads the next rows after the
//! stored cursor (`table_cursor`), produces them to the topic keyed by the primary key, waits
//! until Kafka acknowledged every one, and only then stores the new cursor in the metadata
//! database; the next poll runs meanwhile.
//!
//! Invariants: the cursor never runs ahead of what Kafka acknowledged (a crash re-produces the
//! last batch at most: at-least-once, never a skipped row); it never stops inside a timestamp
//! group; in `timestamp+incrementing` rows younger than the database's clock minus `lag` wait
//! for a later poll, so a transaction that commits late with an older timestamp is still read.
//! Deletes are invisible to polling (no row is left to read); a soft-delete column is the way
//! to carry them.

use std::time::Instant;

use serde_json::json;
use sqlx::{AnyPool, Row};

use super::kafka_client::{KeyedMessage, config_for, produce_all, producer};
use super::records::Encoder;
use super::records::transform::{Applied, Pipeline, Program};
use super::sql_link::{self, Dialect, SqlText};
use super::table_cursor::{Bind, PollQuery, Position};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::{SourceMode, SqlToKafkaTask, Until};

/// One row as the database rendered it: its primary key as text, its columns as JSON text.
type RowText = (Option<String>, String);

/// Rows of one poll: position and row.
struct Polled {
    rows: Vec<(Position, RowText)>,
}

/// How rows become messages. Plain JSON rows with no transform go out as the database
/// rendered them (the fast path); otherwise each row is parsed, transformed and encoded
/// (`records`: Avro with the registry, or JSON).
struct Messages<'p> {
    encoder: Encoder,
    pipeline: Pipeline<'p>,
    plain: bool,
}

impl Messages<'_> {
    /// The messages of `rows` and how many a filter dropped. A row a step or the encoder fails
    /// on fails the try, naming its id: the table is the task's own input.
    fn encode(
        &self,
        rows: Vec<(Position, RowText)>,
    ) -> Result<(Vec<KeyedMessage>, u64), OperatorError> {
        if self.plain {
            let out =
                rows.into_iter().map(|(_, (k, v))| (k.map(String::into_bytes), v.into_bytes()));
            return Ok((out.collect(), 0));
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut filtered = 0;
        for (at, (key, payload)) in rows {
            let bad = |why: String| OperatorError::Fatal(format!("row with id {}: {why}", at.id));
            let record: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| bad(format!("the database's JSON of the row: {e}")))?;
            let record = match self.pipeline.apply(record).map_err(bad)? {
                Applied::Keep(r) => r,
                Applied::Filtered => {
                    filtered += 1;
                    continue;
                }
            };
            let key = match key {
                Some(k) => Some(self.encoder.key(&serde_json::Value::String(k)).map_err(bad)?),
                None => None,
            };
            out.push((key, self.encoder.value(&record).map_err(bad)?));
        }
        Ok((out, filtered))
    }
}

/// Polls until `until`, producing rows; XCom: `{rows, polls, cursor, table, topic, seconds}`.
pub async fn run(ctx: &TaskContext, task: &SqlToKafkaTask) -> Result<Outcome, OperatorError> {
    let id = ctx.task.task_id.clone();
    let topic = ctx.render("topic", &task.topic)?;
    let cursor_name = match &task.cursor_name {
        Some(n) => ctx.render("cursor_name", n)?,
        None => format!("{}.{}", ctx.dag.dag_id, id),
    };
    let (pool, dialect) = sql_link::connect(ctx, &task.sql_connection, "sql_connection").await?;
    if dialect == Dialect::Sqlite {
        return Err(OperatorError::Fatal(format!(
            "`sql_connection` of task `{id}`: sql_to_kafka reads PostgreSQL and MySQL/MariaDB \
             tables"
        )));
    }
    let query = poll_query(&pool, dialect, task, &id).await?;
    let store_err = |e: crate::store::StoreError| {
        OperatorError::Retryable(format!("cursor `{cursor_name}` in the metadata database: {e}"))
    };
    let mut cursor = match ctx.store.get_cursor(&cursor_name).await.map_err(store_err)? {
        Some(v) => Some(Position::from_json(&v, task.mode).map_err(|e| {
            OperatorError::Fatal(format!("cursor `{cursor_name}` of task `{id}`: {e}"))
        })?),
        None => None,
    };
    let start = cursor.as_ref().map_or("the start".to_string(), |c| c.to_json().to_string());
    ctx.log.line(format!("{} -> `{topic}`; cursor `{cursor_name}` at {start}", task.table));
    let producer = producer(config_for(ctx, &task.kafka_connection)?, &task.producer_config)?;
    let settings = &task.record_settings;
    let program = Program::for_task(ctx, settings);
    let encoder = Encoder::new(ctx, settings, &topic).await?;
    let messages = Messages { encoder, pipeline: program.compile()?, plain: settings.is_plain() };

    let started = Instant::now();
    let deadline = match task.until {
        Until::Duration(d) => Some(started + d.0),
        _ => None,
    };
    let (mut rows, mut polls, mut filtered) = (0u64, 0u64, 0u64);
    let mut last_progress = Instant::now();
    // The next poll runs while the current batch is produced: it reads after the batch's last
    // row, which moves nothing stored; the cursor is written only once the batch is
    // acknowledged.
    let mut polled =
        cancellable(ctx, poll(&pool, &query, cursor.as_ref(), task.batch_size)).await?;
    loop {
        polls += 1;
        let got = polled.rows.len() as u64;
        let full = got >= task.batch_size;
        let last = polled.rows.last().map(|(p, _)| p.clone());
        let (batch, dropped) = messages.encode(polled.rows)?;
        filtered += dropped;
        let produce = produce_all(&producer, &topic, batch, &ctx.cancel);
        let ahead = async {
            match (&last, full) {
                (Some(at), true) => Some(poll(&pool, &query, Some(at), task.batch_size).await),
                _ => None,
            }
        };
        let (produced, ahead) = tokio::join!(produce, cancellable(ctx, async { Ok(ahead.await) }));
        produced?;
        if let Some(last) = last {
            // Every message up to `last` is acknowledged: only now may the cursor move.
            ctx.store
                .set_cursor(&cursor_name, &last.to_json(), chrono::Utc::now())
                .await
                .map_err(store_err)?;
            cursor = Some(last);
            rows += got;
        }
        if last_progress.elapsed() >= task.progress_interval.0 {
            last_progress = Instant::now();
            let at = cursor.as_ref().map_or("none".into(), |c| c.to_json().to_string());
            ctx.log.line(format!("{rows} rows produced in {polls} polls, cursor {at}"));
        }
        let stop = match task.until {
            Until::CaughtUp => !full,
            Until::MaxMessages(n) => rows >= n,
            Until::Duration(_) | Until::Forever => false,
        };
        if stop || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        polled = match ahead? {
            Some(next) => next?,
            None => {
                let mut wait = task.poll_interval.0;
                if let Some(d) = deadline {
                    wait = wait.min(d.saturating_duration_since(Instant::now()));
                }
                tokio::select! {
                    () = ctx.cancel.cancelled() => return Err(killed(rows)),
                    () = tokio::time::sleep(wait) => {}
                }
                cancellable(ctx, poll(&pool, &query, cursor.as_ref(), task.batch_size)).await?
            }
        };
    }
    let secs = started.elapsed().as_secs_f64();
    let at = cursor.as_ref().map(Position::to_json);
    ctx.log.line(format!(
        "{rows} rows produced to `{topic}` in {polls} polls ({:.0} rows/s), cursor {}",
        rows as f64 / secs.max(0.001),
        at.as_ref().map_or("none".into(), ToString::to_string)
    ));
    Ok(Outcome::Done(Some(json!({
        "table": task.table,
        "topic": topic,
        "rows": rows,
        "polls": polls,
        "filtered": filtered,
        "cursor_name": cursor_name,
        "cursor": at,
        "seconds": secs,
    }))))
}

fn killed(rows: u64) -> OperatorError {
    OperatorError::Retryable(format!(
        "killed after {rows} rows; the cursor holds what was acknowledged"
    ))
}

async fn cancellable<T>(
    ctx: &TaskContext,
    f: impl Future<Output = Result<T, OperatorError>>,
) -> Result<T, OperatorError> {
    tokio::select! {
        () = ctx.cancel.cancelled() => Err(killed(0)),
        r = f => r,
    }
}

/// The task's polling queries, after checking every named column against the table.
async fn poll_query(
    pool: &AnyPool,
    dialect: Dialect,
    task: &SqlToKafkaTask,
    id: &str,
) -> Result<PollQuery, OperatorError> {
    let table = &task.table;
    let cols = sql_link::existing_columns(pool, dialect, table, id).await?;
    sql_link::find(&cols, &task.incrementing_column, id, "incrementing_column", table)?;
    let ts = match (&task.timestamp_column, task.mode) {
        (Some(ts), SourceMode::TimestampIncrementing) => {
            let col = sql_link::find(&cols, ts, id, "timestamp_column", table)?;
            if !col.data_type.contains("timestamp") && !col.data_type.contains("date") {
                return Err(OperatorError::Fatal(format!(
                    "`timestamp_column` of task `{id}`: column `{ts}` is {}, not a timestamp",
                    col.data_type
                )));
            }
            let cast = match dialect {
                Dialect::Postgres => col.cast_type.clone().unwrap_or_else(|| "timestamptz".into()),
                Dialect::MySql | Dialect::Sqlite => "DATETIME(6)".into(),
            };
            Some((dialect.quote(ts), cast))
        }
        _ => None,
    };
    let columns = match &task.columns {
        Some(list) => {
            for c in list {
                sql_link::find(&cols, c, id, "columns", table)?;
            }
            list.clone()
        }
        None => cols.iter().map(|c| c.name.clone()).collect(),
    };
    let key = match &task.key_columns {
        Some(list) => {
            for c in list {
                sql_link::find(&cols, c, id, "key_columns", table)?;
            }
            list.clone()
        }
        None => {
            let pk = sql_link::primary_key(pool, dialect, table).await?;
            if pk.is_empty() { vec![task.incrementing_column.clone()] } else { pk }
        }
    };
    Ok(PollQuery {
        dialect,
        table: dialect.quote(table),
        id: dialect.quote(&task.incrementing_column),
        ts,
        columns,
        key,
        lag_us: task.lag.0.as_micros(),
    })
}

/// One poll: the next `limit` rows after `after`, completed to the end of the last
/// timestamp group when the LIMIT cut it.
async fn poll(
    pool: &AnyPool,
    q: &PollQuery,
    after: Option<&Position>,
    limit: u64,
) -> Result<Polled, OperatorError> {
    let (sql, binds) = q.next(after, limit);
    let mut rows = fetch(pool, &sql, binds).await?;
    if rows.len() as u64 >= limit {
        while let Some((last, _)) = rows.last() {
            let Some((sql, binds)) = q.group_rest(last, limit) else { break };
            let rest = fetch(pool, &sql, binds).await?;
            let more = rest.len() as u64 >= limit;
            rows.extend(rest);
            if !more {
                break;
            }
        }
    }
    Ok(Polled { rows })
}

async fn fetch(
    pool: &AnyPool,
    sql: &str,
    binds: Vec<Bind>,
) -> Result<Vec<(Position, RowText)>, OperatorError> {
    let mut query = sqlx::query(sql);
    for b in binds {
        query = match b {
            Bind::Text(t) => query.bind(t),
            Bind::Int(i) => query.bind(i),
        };
    }
    let failed = |e: sqlx::Error| OperatorError::Retryable(format!("polling failed: {e}"));
    let rows = query.fetch_all(pool).await.map_err(failed)?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            let ts: Option<String> = r.try_get(1)?;
            let key: Option<String> = r.try_get(2)?;
            let payload: String = r.try_get(3)?;
            Ok((Position { ts, id }, (key, payload)))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(failed)
}
