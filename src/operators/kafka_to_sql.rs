//! `type: kafka_to_sql`: a consumer group's messages become rows of a PostgreSQL, MySQL/MariaDB
//! or SQLite table, a batch per transaction.
//!
//! Messages collect into a batch (`batch_size`, or `max_age` after its first message); the
//! batch's operations are de-duplicated by key (last message wins) and written in one
//! transaction (multi-row INSERT / upsert, a DELETE per tombstone) while the next batch fills.
//! A batch the database refuses for a row's fault is written again row by row, so only the
//! refused rows go to the dead-letter topic, each with the database's reason.
//!
//! Invariants: offsets are committed only after the transaction holding their rows committed
//! (or their dead letter was acknowledged), through `stream::Offsets`, so a crash re-delivers
//! and never loses; with `upsert` a re-delivery rewrites the same rows. No message is dropped:
//! each is a row, a delete, a dead letter, or part of a failed (retried) try. One batch is
//! written at a time, in order, so a later message for a key is never overwritten by an
//! earlier one.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use serde_json::json;
use sqlx::AnyPool;
use tokio::time::Instant;

use super::kafka_client::{config_for, consumer, producer};
use super::records::transform::{Pipeline, Program};
use super::records::{DecodeError, Decoder, Read};
use super::sql_link;
use super::sql_rows::{Op, SinkTable, bind, row_fault};
use super::stream::{DeadLetters, Offsets, Progress, Stopper, dead_letter_topic, end_try};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::KafkaToSqlTask;

/// How often committed offsets are sent to Kafka while running.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// One message of a batch.
struct Entry {
    partition: i32,
    offset: i64,
    op: Op,
    /// Key and payload, for the dead-letter topic.
    original: (Option<Vec<u8>>, Option<Vec<u8>>),
}

/// What writing one batch did.
#[derive(Default)]
struct Written {
    rows: u64,
    deleted: u64,
    dead_letters: u64,
    /// Rows the batch replaced by a later message of the same key.
    merged: u64,
    /// Messages a `filter` step dropped.
    filtered: u64,
    /// The messages now acknowledged.
    acked: Vec<(i32, i64)>,
}

/// Consumes until `until`; XCom: `{messages, rows, deleted, dead_letters, merged, table}`.
pub async fn run(ctx: &TaskContext, task: &KafkaToSqlTask) -> Result<Outcome, OperatorError> {
    let id = ctx.task.task_id.clone();
    let topic = ctx.render("topic", &task.topic)?;
    let group = ctx.render("group_id", &task.group_id)?;
    let dlq_topic = dead_letter_topic(ctx, task.dead_letter_topic.as_deref(), &topic)?;
    let (pool, dialect) = sql_link::connect(ctx, &task.sql_connection, "sql_connection").await?;
    let cols = sql_link::existing_columns(&pool, dialect, &task.table, &id).await?;
    let sink = Arc::new(SinkTable::new(task, &id, dialect, &cols)?);
    ctx.log.line(format!(
        "`{topic}` (group `{group}`) -> {} ({:?}); dead letters -> `{dlq_topic}`",
        task.table, task.mode
    ));
    // Avro or transforms: each message is decoded (and transformed) by `records`; plain JSON
    // messages go straight to the column mapping.
    let settings = &task.record_settings;
    let program = Program::for_task(ctx, settings);
    let records = if settings.is_plain() {
        None
    } else {
        Some((Decoder::new(ctx, settings).await?, program.compile()?))
    };
    let kafka = config_for(ctx, &task.kafka_connection)?;
    let dlq = Arc::new(DeadLetters::new(producer(kafka.clone(), &Default::default())?, dlq_topic));
    let consumer = consumer(kafka, &group, task.start_from, &task.consumer_config)?;
    consumer
        .subscribe(&[&topic])
        .map_err(|e| OperatorError::Fatal(format!("cannot subscribe to `{topic}`: {e}")))?;

    let mut r = Reader {
        offsets: Offsets::default(),
        stopper: Stopper::new(task.until),
        totals: Written::default(),
        batch: Vec::with_capacity(task.batch_size),
        batch_started: None,
        reading: true,
        failure: None,
    };
    let mut progress = Progress::default();
    let mut writing: Option<BoxFuture<'static, Result<Written, OperatorError>>> = None;
    let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
    let mut progress_tick =
        tokio::time::interval(task.progress_interval.0.max(Duration::from_millis(100)));
    let deadline = r.stopper.deadline().map(Instant::from_std);
    // One stream for the whole try: `recv()` would register a new waker per message.
    let mut stream = consumer.stream();
    let cancelled = loop {
        // A batch is written when it is full, old enough, or the last one; one at a time.
        let due = r.batch.len() >= task.batch_size
            || r.batch_started.is_some_and(|t| t.elapsed() >= task.max_age.0)
            || (!r.reading && !r.batch.is_empty());
        if writing.is_none() && due && r.failure.is_none() {
            let entries = std::mem::take(&mut r.batch);
            r.batch_started = None;
            let (pool, sink, dlq) = (pool.clone(), sink.clone(), dlq.clone());
            writing = Some(write(pool, sink, dlq, topic.clone(), entries).boxed());
        }
        if !r.reading && writing.is_none() && (r.batch.is_empty() || r.failure.is_some()) {
            break false;
        }
        let age_due = r.batch_started.map(|t| t + task.max_age.0);
        let room = r.reading && r.batch.len() < task.batch_size;
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => break true,
            done = async {
                match writing.as_mut() {
                    Some(w) => w.await,
                    None => std::future::pending().await,
                }
            }, if writing.is_some() => {
                writing = None;
                r.written(done);
            }
            msg = stream.next(), if room => {
                // The first message woke the loop; the ones already fetched behind it are
                // taken without going round the loop's timers again, up to the batch's size.
                let mut next = msg;
                while let Some(msg) = next.take() {
                    r.take(msg, &sink, records.as_ref(), &consumer, ctx).await;
                    if r.reading && r.batch.len() < task.batch_size {
                        next = stream.next().now_or_never().flatten();
                    }
                }
            }
            () = sleep_until(age_due), if writing.is_none() && age_due.is_some() => {}
            () = sleep_until(deadline), if r.reading => r.reading = false,
            _ = commit_tick.tick() => {
                if let Some(tpl) = r.offsets.to_commit(&topic) {
                    let _ = consumer.commit(&tpl, CommitMode::Async);
                }
                if r.reading && r.stopper.done(&consumer) {
                    r.reading = false;
                }
            }
            _ = progress_tick.tick() => {
                let t = &r.totals;
                let what = format!(
                    "{} rows written, {} deleted, {} dead letters",
                    t.rows, t.deleted, t.dead_letters
                );
                progress.log(ctx, &consumer, &topic, r.stopper.received, &what);
            }
        }
    };
    drop(stream);
    if cancelled && let Some(w) = writing.take() {
        // A transaction already sent may commit: wait for it, briefly, to commit its offsets.
        if let Ok(Ok(w)) = tokio::time::timeout(Duration::from_secs(5), w).await {
            r.ack(&w);
        }
    }
    let Reader { mut offsets, stopper, totals, failure, .. } = r;
    let summary = format!(
        "{} messages: {} rows written, {} deleted, {} dead letters, {} merged in batches \
         ({:.0} msg/s)",
        stopper.received,
        totals.rows,
        totals.deleted,
        totals.dead_letters,
        totals.merged,
        progress.average(stopper.received)
    );
    end_try(ctx, &consumer, &mut offsets, &topic, &summary, cancelled, failure)?;
    Ok(Outcome::Done(Some(json!({
        "topic": topic,
        "table": task.table,
        "messages": stopper.received,
        "rows": totals.rows,
        "deleted": totals.deleted,
        "dead_letters": totals.dead_letters,
        "merged": totals.merged,
        "filtered": totals.filtered,
    }))))
}

/// The reading side of a try: the batch being filled, what was read and acknowledged, and
/// whether reading goes on.
struct Reader {
    offsets: Offsets,
    stopper: Stopper,
    totals: Written,
    batch: Vec<Entry>,
    batch_started: Option<Instant>,
    reading: bool,
    /// Why the try fails; reading stops, the batch being written finishes.
    failure: Option<OperatorError>,
}

impl Reader {
    /// Takes one message (or partition end) from the consumer into the batch.
    async fn take(
        &mut self,
        msg: KafkaResult<BorrowedMessage<'_>>,
        sink: &SinkTable,
        records: Option<&(Decoder, Pipeline<'_>)>,
        consumer: &StreamConsumer,
        ctx: &TaskContext,
    ) {
        let m = match msg {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(p)) => {
                self.stopper.on_end(p);
                if self.stopper.done(consumer) {
                    self.reading = false;
                }
                return;
            }
            Err(e) => return ctx.log.line(format!("consumer: {e}")),
        };
        let (partition, offset) = (m.partition(), m.offset());
        self.stopper.on_message(partition);
        self.offsets.dispatched(partition, offset);
        let op = match records {
            None => Some(sink.op(&m)),
            // A tombstone has nothing to decode: the sink's delete rule reads it.
            Some(_) if m.payload().is_none() => Some(sink.op(&m)),
            Some((decoder, pipeline)) => match decoder.record(m.payload(), pipeline).await {
                Ok(Read::Record(v)) => Some(sink.op_of_record(&m, v)),
                Ok(Read::Filtered) => {
                    // Nothing to write: acknowledged now, committed in order.
                    self.offsets.acked(partition, offset);
                    self.totals.filtered += 1;
                    None
                }
                Err(DecodeError::DeadLetter(why)) => Some(Op::Reject(why)),
                Err(DecodeError::Failed(e)) => {
                    // Never acknowledged: the next try reads it again.
                    self.failure = Some(e);
                    self.reading = false;
                    None
                }
            },
        };
        if let Some(op) = op {
            let original = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec));
            self.batch.push(Entry { partition, offset, op, original });
            self.batch_started.get_or_insert_with(Instant::now);
        }
        if self.stopper.full() {
            self.reading = false;
        }
    }

    /// The messages of a committed batch are acknowledged.
    fn ack(&mut self, w: &Written) {
        for (p, o) in &w.acked {
            self.offsets.acked(*p, *o);
        }
    }

    /// A batch's write ended: its messages are acknowledged, or the try fails (they never
    /// are: the next try re-reads them).
    fn written(&mut self, done: Result<Written, OperatorError>) {
        match done {
            Ok(w) => {
                self.ack(&w);
                self.totals.rows += w.rows;
                self.totals.deleted += w.deleted;
                self.totals.dead_letters += w.dead_letters;
                self.totals.merged += w.merged;
            }
            Err(e) => {
                self.failure = Some(e);
                self.reading = false;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes one batch: its de-duplicated operations in one transaction, or, when the database
/// refuses the batch for a row's fault, row by row with the refused rows dead-lettered.
/// `topic` is the one the entries came from.
async fn write(
    pool: AnyPool,
    sink: Arc<SinkTable>,
    dlq: Arc<DeadLetters>,
    topic: String,
    entries: Vec<Entry>,
) -> Result<Written, OperatorError> {
    let ops: Vec<&Op> = entries.iter().map(|e| &e.op).collect();
    let keep = sink.dedupe(&ops);
    let mut w = Written {
        merged: (entries.len() - keep.len()) as u64,
        acked: entries.iter().map(|e| (e.partition, e.offset)).collect(),
        ..Written::default()
    };
    let kept: Vec<&Entry> = keep.iter().map(|&i| &entries[i]).collect();
    let mut letters = Vec::new();
    let (writes, deletes): (Vec<&Entry>, Vec<&Entry>) = kept
        .iter()
        .filter(|e| match &e.op {
            Op::Reject(reason) => {
                letters.push((*e, reason.clone()));
                false
            }
            _ => true,
        })
        .partition(|e| matches!(e.op, Op::Write(_)));
    match in_one_transaction(&pool, &sink, &writes, &deletes).await {
        Ok(()) => {
            w.rows += writes.len() as u64;
            w.deleted += deletes.len() as u64;
        }
        Err(e) if row_fault(&e).is_some() => {
            for entry in writes.iter().chain(&deletes) {
                let (ws, ds) = match entry.op {
                    Op::Write(_) => (std::slice::from_ref(entry), &[][..]),
                    _ => (&[][..], std::slice::from_ref(entry)),
                };
                match in_one_transaction(&pool, &sink, ws, ds).await {
                    Ok(()) if ws.is_empty() => w.deleted += 1,
                    Ok(()) => w.rows += 1,
                    Err(e) => match row_fault(&e) {
                        Some(reason) => {
                            letters.push((entry, format!("the database refused the row: {reason}")))
                        }
                        None => return Err(db_error(&e)),
                    },
                }
            }
        }
        Err(e) => return Err(db_error(&e)),
    }
    let sends: Vec<_> = letters
        .into_iter()
        .map(|(e, reason)| {
            let (key, payload) = e.original.clone();
            let source = format!("{topic}/{}/{}", e.partition, e.offset);
            dlq.send_owned(key, payload, source, reason)
        })
        .collect();
    w.dead_letters = sends.len() as u64;
    for r in futures::future::join_all(sends).await {
        r?;
    }
    Ok(w)
}

fn db_error(e: &sqlx::Error) -> OperatorError {
    OperatorError::Retryable(format!("writing the batch failed: {e}"))
}

/// Deletes, then multi-row INSERTs of `writes`, in one transaction.
async fn in_one_transaction(
    pool: &AnyPool,
    sink: &SinkTable,
    writes: &[&Entry],
    deletes: &[&Entry],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !deletes.is_empty() {
        let sql = sink.delete_sql();
        for e in deletes {
            let Op::Delete(values) = &e.op else { continue };
            let mut q = sqlx::query(&sql);
            for v in values {
                q = bind(q, v);
            }
            q.execute(&mut *tx).await?;
        }
    }
    for chunk in writes.chunks(sink.rows_per_statement()) {
        let sql = sink.insert_sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for e in chunk {
            let Op::Write(values) = &e.op else { continue };
            for v in values {
                q = bind(q, v);
            }
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}
