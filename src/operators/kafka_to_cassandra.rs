//! `type: kafka_to_cassandra`: a consumer group's messages become Cassandra rows.
//!
//! Each message is mapped to the values of one prepared INSERT (`cassandra_rows`) stamped
//! `USING TIMESTAMP` with its Kafka timestamp, and written as a single-partition write;
//! `concurrency` writes are in flight at once (the driver routes each to its token owner, which
//! is what small single-partition batches would buy, without their coordinator cost). Messages
//! are decoded (JSON or Avro) and transformed by `records` first; one a filter drops is
//! acknowledged at once. A message that does not decode or cannot become a row, or whose row
//! the server or the driver refuses (told apart from cluster trouble by the driver's error
//! kinds, see `rejects_the_row`), goes to the dead-letter topic with the reason in a header.
//!
//! Invariants: offsets are committed only up to the lowest offset not yet acknowledged by
//! Cassandra or the dead-letter topic (`stream::Offsets`), so a crash re-delivers and never
//! loses; with a primary key taken from the message, a re-delivery is an idempotent upsert.
//! No message is dropped: each one is a row, a dead letter, filtered out by the task's own
//! `filter`, or a failed (retried) try. The loop
//! stops promptly on cancellation, committing only what was acknowledged.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use scylla::client::session::Session;
use scylla::errors::{BadQuery, DbError, ExecutionError, RequestAttemptError};
use scylla::statement::prepared::PreparedStatement;
use serde_json::json;

use super::cassandra_client::session;
use super::cassandra_rows::{RowMapper, RowValues, insert_statement};
use super::kafka_client::{config_for, consumer, producer};
use super::records::transform::Program;
use super::records::{DecodeError, Decoder, Read};
use super::stream::{DeadLetters, Offsets, Progress, Stopper, dead_letter_topic, end_try};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::KafkaToCassandraTask;

/// Attempts per write before the try fails (timeouts and unavailable nodes may pass).
const WRITE_ATTEMPTS: u32 = 3;

/// How often acknowledged offsets are committed while running.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// How long in-flight writes may take to finish once reading stopped on a kill.
const DRAIN_ON_CANCEL: Duration = Duration::from_secs(5);

/// What became of one message.
enum Landed {
    Row,
    DeadLetter,
    /// The server refused the row as invalid: send it to the dead-letter topic.
    Rejected(String),
}

/// A message's key and payload, copied out of the consumer.
type Original = (Option<Vec<u8>>, Option<Vec<u8>>);

struct Done {
    partition: i32,
    offset: i64,
    result: Result<Landed, OperatorError>,
    /// The message, kept only to dead-letter a row the server rejected.
    original: Option<Original>,
}

/// Counters reported in the log and as XCom.
#[derive(Default)]
struct Counts {
    rows: u64,
    dead_letters: u64,
    /// Dropped by a `filter` step.
    filtered: u64,
}

/// Consumes until `until`, writing rows; XCom: `{messages, rows, dead_letters, filtered}`.
pub async fn run(ctx: &TaskContext, task: &KafkaToCassandraTask) -> Result<Outcome, OperatorError> {
    let topic = ctx.render("topic", &task.topic)?;
    let group = ctx.render("group_id", &task.group_id)?;
    let dlq_topic = dead_letter_topic(ctx, task.dead_letter_topic.as_deref(), &topic)?;
    let (session, keyspace) = session(ctx, &task.cassandra_connection).await?;
    let table = ctx.render("table", &task.table)?;
    let table = match (table.contains('.'), keyspace) {
        (true, _) => table,
        (false, Some(ks)) => format!("{ks}.{table}"),
        (false, None) => {
            return Err(OperatorError::Fatal(format!(
                "`table: {table}` names no keyspace and the connection has none; write \
                 keyspace.table"
            )));
        }
    };
    let cql = insert_statement(&table, task.columns.keys(), task.write_timestamp);
    let prepared = session.prepare(cql.as_str()).await.map_err(|e| {
        OperatorError::Fatal(format!("cannot prepare `{cql}` (does the table exist?): {e}"))
    })?;
    let mapper = RowMapper::new(&task.columns, &prepared, task.write_timestamp)?;
    let decoder = Decoder::new(ctx, &task.record_settings).await?;
    let program = Program::for_task(ctx, &task.record_settings);
    let pipeline = program.compile()?;
    ctx.log.line(format!("`{topic}` (group `{group}`) -> {table}; dead letters -> `{dlq_topic}`"));

    let kafka = config_for(ctx, &task.kafka_connection)?;
    let dlq = DeadLetters::new(producer(kafka.clone(), &Default::default())?, dlq_topic);
    let consumer = consumer(kafka, &group, task.start_from, &task.consumer_config)?;
    consumer
        .subscribe(&[&topic])
        .map_err(|e| OperatorError::Fatal(format!("cannot subscribe to `{topic}`: {e}")))?;
    let writer = Writer { session: Arc::new(session), prepared: Arc::new(prepared) };

    let mut inflight = FuturesUnordered::new();
    let mut offsets = Offsets::default();
    let mut stopper = Stopper::new(task.until);
    let mut counts = Counts::default();
    let mut progress = Progress::default();
    let mut failure: Option<OperatorError> = None;
    let mut reading = true;
    let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
    let mut progress_tick =
        tokio::time::interval(task.progress_interval.0.max(Duration::from_millis(100)));
    let deadline = stopper.deadline().map(tokio::time::Instant::from_std);
    let cancelled = loop {
        if !reading && inflight.is_empty() {
            break false;
        }
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => break true,
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let Done { partition, offset, result, original } = done;
                match result {
                    Ok(Landed::Row) => {
                        counts.rows += 1;
                        offsets.acked(partition, offset);
                    }
                    Ok(Landed::DeadLetter) => {
                        counts.dead_letters += 1;
                        offsets.acked(partition, offset);
                    }
                    Ok(Landed::Rejected(reason)) => {
                        // Stays in flight: it is acknowledged once the dead letter is.
                        let (key, payload) = original.unwrap_or_default();
                        inflight.push(dlq_owned(&dlq, &topic, partition, offset, key, payload, reason));
                    }
                    Err(e) => {
                        // Stop reading, never acknowledge it: what was acknowledged before is
                        // still committed below, and this message is re-read by the next try.
                        failure.get_or_insert(e);
                        reading = false;
                    }
                }
            }
            msg = consumer.recv(), if reading && inflight.len() < task.concurrency => match msg {
                Ok(m) => {
                    let (partition, offset) = (m.partition(), m.offset());
                    stopper.on_message(partition);
                    offsets.dispatched(partition, offset);
                    let row = match decoder.record(m.payload(), &pipeline).await {
                        Ok(Read::Record(record)) => {
                            let key = if mapper.uses_key() {
                                decoder.key(m.key()).await
                            } else {
                                Ok(None)
                            };
                            key.and_then(|k| {
                                mapper.values(&m, &record, k.as_ref()).map_err(DecodeError::DeadLetter)
                            })
                            .map(Some)
                        }
                        Ok(Read::Filtered) => Ok(None),
                        Err(e) => Err(e),
                    };
                    match row {
                        Ok(None) => {
                            counts.filtered += 1;
                            offsets.acked(partition, offset);
                        }
                        Ok(Some(values)) => {
                            let original = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec));
                            inflight.push(writer.write(partition, offset, values, original).boxed());
                        }
                        Err(DecodeError::DeadLetter(reason)) => {
                            let send = dlq.send(&m, &reason);
                            inflight.push(async move {
                                let result = send.await.map(|()| Landed::DeadLetter);
                                Done { partition, offset, result, original: None }
                            }.boxed());
                        }
                        Err(DecodeError::Failed(e)) => {
                            // Never acknowledged: the next try reads it again.
                            failure.get_or_insert(e);
                            reading = false;
                        }
                    }
                    if stopper.full() {
                        reading = false;
                    }
                }
                Err(KafkaError::PartitionEOF(p)) => {
                    stopper.on_end(p);
                    if stopper.done(&consumer) {
                        reading = false;
                    }
                }
                Err(e) => ctx.log.line(format!("consumer: {e}")),
            },
            () = sleep_until(deadline), if reading => reading = false,
            _ = commit_tick.tick() => {
                if let Some(tpl) = offsets.to_commit(&topic) {
                    let _ = consumer.commit(&tpl, CommitMode::Async);
                }
                if reading && stopper.done(&consumer) {
                    reading = false;
                }
            }
            _ = progress_tick.tick() => {
                let what = format!("{} rows written, {} dead letters, {} in flight", counts.rows, counts.dead_letters, inflight.len());
                progress.log(ctx, &consumer, &topic, stopper.received, &what);
            }
        }
    };
    if cancelled {
        // Let the writes already sent finish (briefly), so their offsets can be committed.
        let drain = async {
            while let Some(d) = inflight.next().await {
                if let Ok(Landed::Row | Landed::DeadLetter) = d.result {
                    offsets.acked(d.partition, d.offset);
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_ON_CANCEL, drain).await;
    }
    let summary = format!(
        "{} messages: {} rows, {} dead letters, {} filtered out ({:.0} msg/s)",
        stopper.received,
        counts.rows,
        counts.dead_letters,
        counts.filtered,
        progress.average(stopper.received)
    );
    end_try(ctx, &consumer, &mut offsets, &topic, &summary, cancelled, failure)?;
    Ok(Outcome::Done(Some(json!({
        "topic": topic,
        "table": table,
        "messages": stopper.received,
        "rows": counts.rows,
        "dead_letters": counts.dead_letters,
        "filtered": counts.filtered,
    }))))
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn dlq_owned(
    dlq: &DeadLetters,
    topic: &str,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    reason: String,
) -> futures::future::BoxFuture<'static, Done> {
    let send = dlq.send_owned(key, payload, format!("{topic}/{partition}/{offset}"), reason);
    async move {
        let result = send.await.map(|()| Landed::DeadLetter);
        Done { partition, offset, result, original: None }
    }
    .boxed()
}

/// The session and statement every write shares.
struct Writer {
    session: Arc<Session>,
    prepared: Arc<PreparedStatement>,
}

impl Writer {
    /// One row, retried on transient errors; a server rejection becomes `Rejected`.
    fn write(
        &self,
        partition: i32,
        offset: i64,
        values: RowValues,
        original: Original,
    ) -> impl Future<Output = Done> + Send + 'static {
        let session = self.session.clone();
        let prepared = self.prepared.clone();
        async move {
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                match session.execute_unpaged(&prepared, &values).await {
                    Ok(_) => break Ok(Landed::Row),
                    Err(e) => {
                        if rejects_the_row(&e) {
                            break Ok(Landed::Rejected(format!("Cassandra refused the row: {e}")));
                        }
                        if attempt >= WRITE_ATTEMPTS {
                            break Err(OperatorError::Retryable(format!(
                                "write failed {attempt} times: {e}"
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            };
            let original = matches!(result, Ok(Landed::Rejected(_))).then_some(original);
            Done { partition, offset, result, original }
        }
    }
}

/// Whether the error is about this row rather than the cluster, so that no retry can write it
/// and it belongs in the dead-letter topic: the server found the row invalid (a null key
/// column, say), or the driver could not serialize its values or its partition key. Anything
/// else (timeouts, overload, unavailable nodes, refused permissions) fails the try, to be
/// retried with the message still uncommitted.
fn rejects_the_row(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(
            RequestAttemptError::DbError(DbError::Invalid, _)
                | RequestAttemptError::SerializationError(_)
        ) | ExecutionError::BadQuery(
            BadQuery::SerializationError(_) | BadQuery::ValuesTooLongForKey(..)
        )
    )
}

#[cfg(test)]
mod tests {
    use scylla::errors::{BadQuery, DbError, ExecutionError, RequestAttemptError};
    use scylla::serialize::SerializationError;

    use super::rejects_the_row;

    fn from_server(error: DbError, message: &str) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, message.into()))
    }

    #[test]
    fn rows_the_server_or_driver_refuses_are_dead_letters_and_the_rest_retried() {
        let bad_value = SerializationError::new(std::fmt::Error);
        let rejected = [
            from_server(DbError::Invalid, "Invalid null value for partition key part id"),
            ExecutionError::BadQuery(BadQuery::SerializationError(bad_value.clone())),
            ExecutionError::BadQuery(BadQuery::ValuesTooLongForKey(70_000, 65_535)),
            ExecutionError::LastAttemptError(RequestAttemptError::SerializationError(bad_value)),
        ];
        for e in &rejected {
            assert!(rejects_the_row(e), "{e:?}");
        }
        // Transient or cluster-wide: a retry (or an operator) fixes these, not the message.
        let retried = [
            from_server(DbError::Overloaded, "Invalid state: too many requests"),
            from_server(DbError::ServerError, "java.lang.IllegalStateException: Invalid"),
            from_server(DbError::IsBootstrapping, ""),
            from_server(DbError::Unauthorized, "no MODIFY permission"),
            ExecutionError::RequestTimeout(std::time::Duration::from_secs(2)),
            ExecutionError::EmptyPlan,
        ];
        for e in &retried {
            assert!(!rejects_the_row(e), "{e:?}");
        }
    }
}
