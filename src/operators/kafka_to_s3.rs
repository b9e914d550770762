//! `type: kafka_to_s3`: a consumer group's messages become JSON-lines objects, one buffer per
//! Kafka partition, written when it holds `max_records` messages or `max_bytes` bytes, or
//! `max_age` after its first message, under
//! `<prefix>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first offset>.jsonl` (date and hour of the
//! first message's Kafka timestamp, UTC). Parquet is not offered yet.
//!
//! Invariants: a partition's offsets are committed (synchronously) right after its object is
//! written, and a partition has at most one object written but not committed. An object's name
//! is fixed by its partition and first offset, and a restart resumes at the first offset of
//! that uncommitted object: it rewrites the same key (whatever the new batch's length), so no
//! object is lost or duplicated and no message appears in two objects. Each message is decoded
//! (JSON, or Avro written as its JSON, see `records`) and transformed; a line is the record as
//! transformed, and JSON without transforms is copied as it came. Messages that do not decode
//! (or that a transform step fails on) go to the dead-letter topic (acknowledged before the
//! offsets that cover them are committed), never into an object. A partition that goes back to its committed offset (a
//! rebalance hands it back) drops its buffer, so a re-read message never lands twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::{ObjectStoreExt, PutPayload};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::json;

use super::kafka_client::{config_for, consumer, producer};
use super::objects::{Location, open, store_error};
use super::records::transform::Program;
use super::records::{DecodeError, Decoder, Read};
use super::stream::{DeadLetters, Progress, Stopper, dead_letter_topic};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::KafkaToS3Task;

/// At most this many object names go to XCom.
const MAX_XCOM_KEYS: usize = 100;

/// One partition's messages since its last object.
#[derive(Default)]
struct Buffer {
    /// First offset read into this buffer (a dead letter's included): the object's name.
    first: Option<i64>,
    /// Last offset read into it.
    last: i64,
    /// Kafka timestamp (ms) of the first message: the object's dt/hour.
    first_ts: i64,
    /// When the first message was read.
    opened: Option<Instant>,
    lines: Vec<u8>,
    records: usize,
}

/// A finished upload: partition, the offset to commit, records, the key (none when the buffer
/// held dead letters only).
type Uploaded = (i32, i64, usize, Option<String>);

/// Consumes until `until`, writing objects; XCom: `{messages, records, objects, keys, ...}`.
pub async fn run(ctx: &TaskContext, task: &KafkaToS3Task) -> Result<Outcome, OperatorError> {
    let topic = ctx.render("topic", &task.topic)?;
    let group = ctx.render("group_id", &task.group_id)?;
    let url = ctx.render("url", &task.url)?;
    let loc = open(ctx, &task.s3_connection, &format!("{}/", url.trim_end_matches('/')))?;
    let dlq_topic = dead_letter_topic(ctx, task.dead_letter_topic.as_deref(), &topic)?;
    let kafka = config_for(ctx, &task.kafka_connection)?;
    let dlq = DeadLetters::new(producer(kafka.clone(), &Default::default())?, dlq_topic.clone());
    let consumer = consumer(kafka, &group, task.start_from, &task.consumer_config)?;
    let decoder = Decoder::new(ctx, &task.record_settings).await?;
    let program = Program::for_task(ctx, &task.record_settings);
    let pipeline = program.compile()?;
    // JSON copied as it came: validated, never re-serialized (the common, fastest case).
    let verbatim = decoder.is_json() && pipeline.is_empty();
    consumer
        .subscribe(&[&topic])
        .map_err(|e| OperatorError::Fatal(format!("cannot subscribe to `{topic}`: {e}")))?;
    ctx.log.line(format!("`{topic}` (group `{group}`) -> {url}; dead letters -> `{dlq_topic}`"));

    let mut buffers: HashMap<i32, Buffer> = HashMap::new();
    let mut uploading: HashSet<i32> = HashSet::new();
    let mut uploads = FuturesUnordered::new();
    let mut stopper = Stopper::new(task.until);
    let mut progress = Progress::default();
    let (mut records, mut dead, mut keys) = (0u64, 0u64, Vec::<String>::new());
    let mut filtered = 0u64;
    let mut objects = 0u64;
    let mut reading = true;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut progress_tick =
        tokio::time::interval(task.progress_interval.0.max(Duration::from_millis(100)));
    let full = |b: &Buffer| b.records >= task.max_records || b.lines.len() as u64 >= task.max_bytes;
    let cancelled = loop {
        // A partition whose buffer is full while its previous object is still being written
        // holds reading back: one uncommitted object per partition at most.
        let blocked = buffers.iter().any(|(p, b)| full(b) && uploading.contains(p));
        if !reading {
            for (p, b) in buffers.iter_mut() {
                if b.first.is_some() && !uploading.contains(p) {
                    uploading.insert(*p);
                    uploads.push(upload(&loc, *p, std::mem::take(b)));
                }
            }
            if uploads.is_empty() {
                break false;
            }
        }
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => break true,
            Some(done) = uploads.next(), if !uploads.is_empty() => {
                let (p, next, n, key): Uploaded = done?;
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition_offset(&topic, p, Offset::Offset(next));
                consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
                    OperatorError::Retryable(format!("cannot commit offsets of `{topic}`: {e}"))
                })?;
                uploading.remove(&p);
                records += n as u64;
                if let Some(k) = key {
                    objects += 1;
                    if keys.len() < MAX_XCOM_KEYS {
                        keys.push(k);
                    }
                }
                if let Some(b) = buffers.get_mut(&p).filter(|b| full(b)) {
                    uploading.insert(p);
                    uploads.push(upload(&loc, p, std::mem::take(b)));
                }
            }
            msg = consumer.recv(), if reading && !blocked => match msg {
                Ok(m) => {
                    let p = m.partition();
                    stopper.on_message(p);
                    let b = buffers.entry(p).or_default();
                    if b.first.is_some() && m.offset() <= b.last {
                        // The partition went back to its committed offset (a rebalance gave
                        // it back): everything buffered is being read again, so keeping it
                        // would put those messages in the object twice.
                        ctx.log.line(format!("partition {p} rewound to offset {}", m.offset()));
                        *b = Buffer::default();
                    }
                    if b.first.is_none() {
                        b.first = Some(m.offset());
                        b.first_ts = m.timestamp().to_millis().unwrap_or_else(|| Utc::now().timestamp_millis());
                        b.opened = Some(Instant::now());
                    }
                    b.last = m.offset();
                    let line = if verbatim {
                        let payload = m.payload().unwrap_or_default();
                        match check_json(payload) {
                            Ok(compact) => {
                                b.lines.extend_from_slice(compact.as_deref().unwrap_or(payload));
                                Ok(true)
                            }
                            Err(reason) => Err(DecodeError::DeadLetter(reason)),
                        }
                    } else {
                        match decoder.record(m.payload(), &pipeline).await {
                            Ok(Read::Record(v)) => {
                                // Writing a Value into a Vec cannot fail.
                                let _ = serde_json::to_writer(&mut b.lines, &v);
                                Ok(true)
                            }
                            Ok(Read::Filtered) => Ok(false),
                            Err(e) => Err(e),
                        }
                    };
                    match line {
                        Ok(true) => {
                            b.lines.push(b'\n');
                            b.records += 1;
                        }
                        // Covered by the buffer's offsets: committed with its object.
                        Ok(false) => filtered += 1,
                        Err(DecodeError::DeadLetter(reason)) => {
                            // Acknowledged before this offset can be committed with the object.
                            dlq.send(&m, &reason).await?;
                            dead += 1;
                        }
                        // Nothing of this buffer is committed: the next try reads it again.
                        Err(DecodeError::Failed(e)) => return Err(e),
                    }
                    if full(b) && !uploading.contains(&p) {
                        uploading.insert(p);
                        uploads.push(upload(&loc, p, std::mem::take(b)));
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
            _ = tick.tick() => {
                for (p, b) in buffers.iter_mut() {
                    let old = b.opened.is_some_and(|t| t.elapsed() >= task.max_age.0);
                    if old && !uploading.contains(p) {
                        uploading.insert(*p);
                        uploads.push(upload(&loc, *p, std::mem::take(b)));
                    }
                }
                if reading && stopper.done(&consumer) {
                    reading = false;
                }
            }
            _ = progress_tick.tick() => {
                let what = format!("{objects} objects ({records} records) written, {dead} dead letters");
                progress.log(ctx, &consumer, &topic, stopper.received, &what);
            }
        }
    };
    let summary = format!(
        "{} messages: {objects} objects, {records} records, {dead} dead letters, {filtered} filtered out ({:.0} msg/s)",
        stopper.received,
        progress.average(stopper.received)
    );
    ctx.log.line(&summary);
    if cancelled {
        // Buffered messages are not committed: the next try reads them again.
        return Err(OperatorError::Retryable(format!("killed after {summary}")));
    }
    Ok(Outcome::Done(Some(json!({
        "topic": topic,
        "messages": stopper.received,
        "records": records,
        "objects": objects,
        "dead_letters": dead,
        "filtered": filtered,
        "keys": keys,
    }))))
}

/// Writes a buffer's object (if it holds records) and resolves to what to commit.
fn upload(
    loc: &Location,
    partition: i32,
    buffer: Buffer,
) -> futures::future::BoxFuture<'static, Result<Uploaded, OperatorError>> {
    let store = loc.store.clone();
    let Some(first) = buffer.first else {
        return Box::pin(async { Err(OperatorError::Fatal("empty buffer".into())) });
    };
    let key = loc.child(&object_name(partition, first, buffer.first_ts));
    let url = loc.url_of(&key);
    let next = buffer.last + 1;
    Box::pin(async move {
        if buffer.records == 0 {
            return Ok((partition, next, 0, None));
        }
        store
            .put(&key, PutPayload::from(buffer.lines))
            .await
            .map_err(|e| store_error(&format!("put {url}"), e))?;
        Ok((partition, next, buffer.records, Some(url)))
    })
}

/// `dt=YYYY-MM-DD/hour=HH/part-<partition>-<first offset>.jsonl`.
pub fn object_name(partition: i32, first_offset: i64, ts_ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ts_ms).unwrap_or_default();
    format!("{}/part-{partition}-{first_offset}.jsonl", t.format("dt=%Y-%m-%d/hour=%H"))
}

/// A payload belongs in a JSON-lines object when it is JSON. One that spans several lines
/// (pretty-printed) comes back re-serialized on one line; the common case is only validated.
fn check_json(payload: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let bad = |e: serde_json::Error| format!("the message is not JSON: {e}");
    if payload.contains(&b'\n') {
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(bad)?;
        return Ok(Some(value.to_string().into_bytes()));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(bad)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checks() {
        assert_eq!(
            object_name(2, 1500, 1_767_323_045_006),
            "dt=2026-01-02/hour=03/part-2-1500.jsonl"
        );
        assert_eq!(check_json(br#"{"a": 1}"#), Ok(None));
        assert!(check_json(b"nope").is_err());
        assert_eq!(check_json(b"{\"a\":\n1}"), Ok(Some(b"{\"a\":1}".to_vec())));
    }
}
