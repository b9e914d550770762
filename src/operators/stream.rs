//! What the Kafka sinks (`kafka_to_cassandra`, `kafka_to_s3`, `kafka_to_sql`) share: which
//! offsets may be committed, when to stop reading, dead letters, the progress line, and the end
//! of a try (`end_try`).
//!
//! Invariant: an offset is committed only when every message before it in its partition was
//! acknowledged by the sink (or by the dead-letter topic). Writes finish out of order, so the
//! committable offset of a partition is its lowest unacknowledged offset, never the highest
//! acknowledged one. A crash therefore re-delivers, never skips (at-least-once).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{OperatorError, TaskContext};
use crate::dag::kinds::Until;

/// Under `until: caught_up`, a group that got no partition after this long (a topic that does
/// not exist yet) is caught up with nothing to read.
pub const ASSIGN_TIMEOUT: Duration = Duration::from_secs(30);

/// Header of a dead letter that says why it is one.
pub const ERROR_HEADER: &str = "updraft.error";
/// Header of a dead letter that says where it came from: `topic/partition/offset`.
pub const SOURCE_HEADER: &str = "updraft.source";

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Offsets handed to the sink and not acknowledged yet.
    in_flight: BTreeSet<i64>,
    /// One past the highest acknowledged offset.
    next: i64,
    /// The offset last committed (or asked to be).
    committed: i64,
}

/// Per-partition bookkeeping of what the sink acknowledged.
#[derive(Debug, Default)]
pub struct Offsets {
    parts: HashMap<i32, PartitionOffsets>,
}

impl Offsets {
    /// A message was handed to the sink.
    pub fn dispatched(&mut self, partition: i32, offset: i64) {
        // The first message of a partition is where the group already stands: nothing to
        // commit before it.
        let p = self.parts.entry(partition).or_insert_with(|| PartitionOffsets {
            in_flight: BTreeSet::new(),
            next: offset,
            committed: offset,
        });
        p.in_flight.insert(offset);
    }

    /// The sink acknowledged a message.
    pub fn acked(&mut self, partition: i32, offset: i64) {
        let p = self.parts.entry(partition).or_default();
        p.in_flight.remove(&offset);
        p.next = p.next.max(offset + 1);
    }

    /// Messages handed to the sink and not acknowledged yet.
    pub fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.in_flight.len()).sum()
    }

    /// The offsets that moved since the last call: for each partition, the lowest offset not
    /// acknowledged yet (everything before it is). `None` when nothing moved.
    pub fn to_commit(&mut self, topic: &str) -> Option<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (partition, p) in &mut self.parts {
            let upto = p.in_flight.first().copied().unwrap_or(p.next);
            if upto > p.committed {
                p.committed = upto;
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(upto));
            }
        }
        (tpl.count() > 0).then_some(tpl)
    }
}

/// Decides when a sink stops reading.
pub struct Stopper {
    until: Until,
    started: Instant,
    /// Partitions whose end was reached and that got no message since.
    at_end: HashSet<i32>,
    /// Messages read.
    pub received: u64,
}

impl Stopper {
    pub fn new(until: Until) -> Stopper {
        Stopper { until, started: Instant::now(), at_end: HashSet::new(), received: 0 }
    }

    pub fn on_message(&mut self, partition: i32) {
        self.received += 1;
        if !self.at_end.is_empty() {
            self.at_end.remove(&partition);
        }
    }

    pub fn on_end(&mut self, partition: i32) {
        self.at_end.insert(partition);
    }

    /// Whether `max_messages` is reached: the per-message check, which must stay cheap (the
    /// full [`done`](Self::done) asks librdkafka for the assignment, so it runs on partition
    /// ends and ticks only).
    pub fn full(&self) -> bool {
        matches!(self.until, Until::MaxMessages(n) if self.received >= n)
    }

    /// Whether reading is over (in-flight writes still have to finish).
    pub fn done(&self, consumer: &StreamConsumer) -> bool {
        match self.until {
            Until::Forever => false,
            Until::MaxMessages(n) => self.received >= n,
            Until::Duration(d) => self.started.elapsed() >= d.0,
            Until::CaughtUp => {
                let Ok(assigned) = consumer.assignment() else { return false };
                let parts = assigned.elements();
                if parts.is_empty() {
                    return self.started.elapsed() >= ASSIGN_TIMEOUT;
                }
                parts.iter().all(|e| self.at_end.contains(&e.partition()))
            }
        }
    }

    /// When `until: duration` ends.
    pub fn deadline(&self) -> Option<Instant> {
        match self.until {
            Until::Duration(d) => Some(self.started + d.0),
            _ => None,
        }
    }
}

/// Where malformed messages go.
pub struct DeadLetters {
    producer: FutureProducer,
    /// The dead-letter topic.
    pub topic: String,
}

impl DeadLetters {
    pub fn new(producer: FutureProducer, topic: String) -> DeadLetters {
        DeadLetters { producer, topic }
    }

    /// Sends the message as it came (key and payload), with the reason and its origin in
    /// headers, so that it can be fixed and replayed. Resolves once the broker acknowledged.
    pub fn send(
        &self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
    ) -> impl Future<Output = Result<(), OperatorError>> + Send + 'static {
        let key = msg.key().map(<[u8]>::to_vec);
        let payload = msg.payload().map(<[u8]>::to_vec);
        let source = format!("{}/{}/{}", msg.topic(), msg.partition(), msg.offset());
        self.send_owned(key, payload, source, reason.to_string())
    }

    /// [`send`](Self::send) for a message already copied out of the consumer; `source` is
    /// `topic/partition/offset`.
    pub fn send_owned(
        &self,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        source: String,
        reason: String,
    ) -> impl Future<Output = Result<(), OperatorError>> + Send + 'static {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        async move {
            let headers = OwnedHeaders::new()
                .insert(Header { key: ERROR_HEADER, value: Some(reason.as_bytes()) })
                .insert(Header { key: SOURCE_HEADER, value: Some(source.as_bytes()) });
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).headers(headers);
            if let Some(k) = &key {
                record = record.key(k.as_slice());
            }
            if let Some(p) = &payload {
                record = record.payload(p.as_slice());
            }
            producer.send(record, Duration::from_secs(60)).await.map(|_| ()).map_err(|(e, _)| {
                OperatorError::Retryable(format!(
                    "cannot write to dead-letter topic `{topic}`: {e}"
                ))
            })
        }
    }
}

/// The periodic progress line of a streaming task.
pub struct Progress {
    started: Instant,
    last: Instant,
    last_count: u64,
    /// The lag last measured (-1: not yet), by a blocking task: measuring asks the broker for
    /// each partition's end offset, and the sink's loop must never wait on that.
    lag: Arc<AtomicI64>,
    measuring: Arc<AtomicBool>,
}

impl Default for Progress {
    fn default() -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            last_count: 0,
            lag: Arc::new(AtomicI64::new(-1)),
            measuring: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Progress {
    /// Logs rate, lag (as last measured; a new measure starts in the background) and the
    /// sink's own counters (`what`).
    pub fn log(
        &mut self,
        ctx: &TaskContext,
        consumer: &Arc<StreamConsumer>,
        topic: &str,
        count: u64,
        what: &str,
    ) {
        let secs = self.last.elapsed().as_secs_f64().max(0.001);
        let rate = (count - self.last_count) as f64 / secs;
        self.last = Instant::now();
        self.last_count = count;
        if !self.measuring.swap(true, Ordering::AcqRel) {
            let (consumer, topic) = (consumer.clone(), topic.to_string());
            let (lag, measuring) = (self.lag.clone(), self.measuring.clone());
            tokio::task::spawn_blocking(move || {
                lag.store(measure_lag(&consumer, &topic).unwrap_or(-1), Ordering::Release);
                measuring.store(false, Ordering::Release);
            });
        }
        let lag = match self.lag.load(Ordering::Acquire) {
            l if l >= 0 => l.to_string(),
            _ => "unknown".to_string(),
        };
        ctx.log.line(format!(
            "{count} messages in {:.0}s ({rate:.0} msg/s now), lag {lag}, {what}",
            self.started.elapsed().as_secs_f64()
        ));
    }

    /// Messages per second since the start.
    pub fn average(&self, count: u64) -> f64 {
        count as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

/// Messages between the consumer's position and the end of its assigned partitions. Blocks
/// (one broker request per partition).
fn measure_lag(consumer: &StreamConsumer, topic: &str) -> Option<i64> {
    let position = consumer.position().ok()?;
    let mut total = 0;
    for e in position.elements_for_topic(topic) {
        let (_, high) =
            consumer.fetch_watermarks(topic, e.partition(), Duration::from_secs(1)).ok()?;
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => continue,
        };
        total += (high - at).max(0);
    }
    Some(total)
}

/// `<topic>.dlq` unless the task names one.
pub fn dead_letter_topic(
    ctx: &TaskContext,
    given: Option<&str>,
    topic: &str,
) -> Result<String, OperatorError> {
    match given {
        Some(t) => ctx.render("dead_letter_topic", t),
        None => Ok(format!("{topic}.dlq")),
    }
}

/// The end of a sink's try, once reading stopped: commits what was acknowledged, logs
/// `summary`, and turns a kill (`cancelled`) or a write failure into the try's error. Nothing
/// unacknowledged is committed, so either way the next try reads it again.
pub fn end_try(
    ctx: &TaskContext,
    consumer: &StreamConsumer,
    offsets: &mut Offsets,
    topic: &str,
    summary: &str,
    cancelled: bool,
    failure: Option<OperatorError>,
) -> Result<(), OperatorError> {
    if let Some(tpl) = offsets.to_commit(topic) {
        consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
            OperatorError::Retryable(format!("cannot commit offsets of `{topic}`: {e}"))
        })?;
    }
    ctx.log.line(summary);
    if cancelled {
        return Err(OperatorError::Retryable(format!("killed after {summary}")));
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(tpl: Option<TopicPartitionList>) -> Vec<(i32, i64)> {
        let Some(tpl) = tpl else { return vec![] };
        let mut v: Vec<(i32, i64)> = tpl
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => (e.partition(), o),
                _ => (e.partition(), -1),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commits_stop_at_the_lowest_unacknowledged_offset() {
        let mut o = Offsets::default();
        for off in 0..5 {
            o.dispatched(0, off);
        }
        o.dispatched(1, 10);
        o.acked(0, 3);
        o.acked(0, 4);
        assert_eq!(committed(o.to_commit("t")), vec![], "offset 0 is still in flight");
        o.acked(0, 0);
        o.acked(1, 10);
        assert_eq!(committed(o.to_commit("t")), vec![(0, 1), (1, 11)]);
        assert_eq!(committed(o.to_commit("t")), vec![], "nothing moved");
        o.acked(0, 1);
        o.acked(0, 2);
        assert_eq!(committed(o.to_commit("t")), vec![(0, 5)]);
        assert_eq!(o.in_flight(), 0);
    }
}
