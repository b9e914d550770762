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

use serde_json::{Map, Value, json};

use super::kafka_client::{KeyedMessage, config_for, produce_all, producer};
use super::records::Encoder;
use super::records::transform::{Applied, Pipeline, Program};
use super::sql::{Cell, Db, DbError, DbRow, pg_reads_natively, quote_identifier};
use super::sql_link::{self, Dialect, SqlText};
use super::table_cursor::{Bind, FIRST_MESSAGE_COLUMN, MessageColumn, PollQuery, Position, Select};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::{SourceMode, SqlToKafkaTask, Until};

/// The messages of one poll, and the position of its last row.
#[derive(Default)]
struct Polled {
    messages: Vec<KeyedMessage>,
    /// Rows read (a filtered row counts: the cursor moves past it).
    rows: u64,
    /// Rows a filter dropped.
    filtered: u64,
    last: Option<Position>,
}

/// How rows become messages. Each row is read in Rust by the SQL layer's mapping of column
/// types to JSON (`operators::sql`, the `sql` task's). Plain JSON rows with no transform are
/// written straight to the message (the fast path); otherwise each row becomes a record that
/// is transformed and encoded (`records`: Avro with the registry, or JSON).
struct Messages<'p> {
    encoder: Encoder,
    pipeline: Pipeline<'p>,
    plain: bool,
    /// The message columns' names, in order.
    names: Vec<String>,
    /// The same names as JSON object keys with their colon (`"name":`), escaped once.
    keys: Vec<Vec<u8>>,
}

impl Messages<'_> {
    /// Reads one polled row into `out`. A row a step or the encoder fails on fails the try,
    /// naming its id: the table is the task's own input.
    fn take(&self, row: DbRow<'_>, out: &mut Polled) -> Result<(), String> {
        let Cell::Int(id) = row.cell(0)? else { return Err("a polled row has no id".into()) };
        let ts = text_of(row.cell(1)?);
        let bad = |why: String| format!("row with id {id}: {why}");
        let key = text_of(row.cell(2).map_err(bad)?);
        out.rows += 1;
        out.last = Some(Position { ts, id });
        if self.plain {
            out.messages.push((key.map(String::into_bytes), self.json(&row).map_err(bad)?));
            return Ok(());
        }
        let mut record = Map::with_capacity(self.names.len());
        for (i, name) in self.names.iter().enumerate() {
            record.insert(name.clone(), row.value(FIRST_MESSAGE_COLUMN + i).map_err(bad)?);
        }
        let record = match self.pipeline.apply(Value::Object(record)).map_err(bad)? {
            Applied::Keep(r) => r,
            Applied::Filtered => {
                out.filtered += 1;
                return Ok(());
            }
        };
        let key = match key {
            Some(k) => Some(self.encoder.key(&Value::String(k)).map_err(bad)?),
            None => None,
        };
        out.messages.push((key, self.encoder.value(&record).map_err(bad)?));
        Ok(())
    }

    /// The message columns of `row` as one JSON object, in column order.
    fn json(&self, row: &DbRow<'_>) -> Result<Vec<u8>, String> {
        let mut buf = Vec::with_capacity(16 * self.keys.len() + 2);
        buf.push(b'{');
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(key);
            row.cell(FIRST_MESSAGE_COLUMN + i)?.write_json(&mut buf)?;
        }
        buf.push(b'}');
        Ok(buf)
    }
}

/// The text of a polled column that the query cast to text (the timestamp, the key).
fn text_of(cell: Cell<'_>) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Text(s) => Some(s.to_string()),
        Cell::Owned(s) => Some(s),
        other => Some(other.into_value().to_string()),
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
    pool.close().await;
    let mut db = Db::connect(&ctx.connection(&task.sql_connection)?)
        .await
        .map_err(|e| OperatorError::Retryable(format!("`sql_connection` of task `{id}`: {e}")))?;
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
    let names: Vec<String> = query.columns.iter().map(|c| c.name.clone()).collect();
    let keys = names.iter().map(|n| format!("{}:", Value::String(n.clone())).into_bytes());
    let messages = Messages {
        encoder,
        pipeline: program.compile()?,
        plain: settings.is_plain(),
        keys: keys.collect(),
        names,
    };

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
    let mut polled = poll(&mut db, &query, &messages, cursor.as_ref(), task.batch_size, ctx)
        .await
        .map_err(|e| e.after(0))?;
    loop {
        polls += 1;
        let got = polled.rows;
        let full = got >= task.batch_size;
        let last = polled.last.take();
        filtered += polled.filtered;
        let produce = produce_all(&producer, &topic, polled.messages, &ctx.cancel);
        let ahead = async {
            match (&last, full) {
                (Some(at), true) => {
                    Some(poll(&mut db, &query, &messages, Some(at), task.batch_size, ctx).await)
                }
                _ => None,
            }
        };
        let (produced, ahead) = tokio::join!(produce, ahead);
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
        polled = match ahead {
            Some(next) => next.map_err(|e| e.after(rows))?,
            None => {
                let mut wait = task.poll_interval.0;
                if let Some(d) = deadline {
                    wait = wait.min(d.saturating_duration_since(Instant::now()));
                }
                tokio::select! {
                    () = ctx.cancel.cancelled() => return Err(killed(rows)),
                    () = tokio::time::sleep(wait) => {}
                }
                poll(&mut db, &query, &messages, cursor.as_ref(), task.batch_size, ctx)
                    .await
                    .map_err(|e| e.after(rows))?
            }
        };
    }
    db.close().await;
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

/// The task's polling queries, after checking every named column against the table.
async fn poll_query(
    pool: &sqlx::AnyPool,
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
    let chosen: Vec<&sql_link::Column> = match &task.columns {
        Some(list) => list
            .iter()
            .map(|c| sql_link::find(&cols, c, id, "columns", table))
            .collect::<Result<_, _>>()?,
        None => {
            for c in &cols {
                catalog_name(&c.name, dialect, id, table)?;
            }
            cols.iter().collect()
        }
    };
    let columns = chosen
        .into_iter()
        .map(|c| MessageColumn { name: c.name.clone(), select: select(dialect, &c.data_type) })
        .collect();
    let key = match &task.key_columns {
        Some(list) => {
            for c in list {
                sql_link::find(&cols, c, id, "key_columns", table)?;
            }
            list.clone()
        }
        None => {
            let pk = sql_link::primary_key(pool, dialect, table).await?;
            for c in &pk {
                catalog_name(c, dialect, id, table)?;
            }
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

/// A column name read from the catalog (every column, or the primary key), checked by the
/// rule the DAG's own names pass at load time before it is written into the polling query.
fn catalog_name(name: &str, dialect: Dialect, id: &str, table: &str) -> Result<(), OperatorError> {
    if !name.contains('.') && quote_identifier(name, dialect).is_ok() {
        return Ok(());
    }
    Err(OperatorError::Fatal(format!(
        "task `{id}`: column `{name}` of table `{table}` is not a plain name (letters, digits, \
         `_`), so it cannot be read; list the columns to send in `columns:`, and the key in \
         `key_columns:`"
    )))
}

/// How a message column of catalog type `data_type` is selected, so that the SQL layer's
/// mapping reads it as the `sql` task reads the same column where it can, and as text or
/// PostgreSQL's own JSON where the driver alone could not.
fn select(dialect: Dialect, data_type: &str) -> Select {
    match dialect {
        Dialect::Postgres if !pg_reads_natively(data_type) => Select::ToJson,
        Dialect::MySql if data_type.ends_with("char") || data_type.ends_with("text") => {
            Select::Text
        }
        _ => Select::Column,
    }
}

/// One poll: the next `limit` rows after `after`, completed to the end of the last
/// timestamp group when the LIMIT cut it.
async fn poll(
    db: &mut Db,
    q: &PollQuery,
    messages: &Messages<'_>,
    after: Option<&Position>,
    limit: u64,
    ctx: &TaskContext,
) -> Result<Polled, PollError> {
    let mut out = Polled::default();
    let (sql, binds) = q.next(after, limit);
    let mut got = fetch(db, &sql, binds, messages, &mut out, ctx).await?;
    while got >= limit {
        let Some(last) = out.last.clone() else { break };
        let Some((sql, binds)) = q.group_rest(&last, limit) else { break };
        got = fetch(db, &sql, binds, messages, &mut out, ctx).await?;
    }
    Ok(out)
}

/// Runs one polling query, reading its rows into `out`; the rows it read.
async fn fetch(
    db: &mut Db,
    sql: &str,
    binds: Vec<Bind>,
    messages: &Messages<'_>,
    out: &mut Polled,
    ctx: &TaskContext,
) -> Result<u64, PollError> {
    let values: Vec<Value> = binds
        .into_iter()
        .map(|b| match b {
            Bind::Text(t) => Value::String(t),
            Bind::Int(i) => Value::from(i),
        })
        .collect();
    let before = out.rows;
    db.execute(sql, &values, &ctx.cancel, &mut |row| messages.take(row, out))
        .await
        .map_err(PollError)?;
    Ok(out.rows - before)
}

/// Why a poll failed.
struct PollError(DbError);

impl PollError {
    /// The task's error, `rows` rows into the try. A row that cannot become a message fails
    /// the try for good (the table is the task's own input); a cancel is a kill; anything
    /// else (a lost connection, a lock timeout, a failover) may pass on a retry.
    fn after(self, rows: u64) -> OperatorError {
        match self.0 {
            DbError::Cancelled => killed(rows),
            DbError::Row(why) => OperatorError::Fatal(why),
            e => OperatorError::Retryable(format!("polling failed: {e}")),
        }
    }
}
