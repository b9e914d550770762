//! The Kafka watcher: each message of the topic is one event per asset it watches for, its
//! `extra` the message's topic, partition, offset, key, value and timestamp.
//!
//! The consumer joins its own group (`group_id`, default `updraft-watch-<topic>`), never
//! auto-commits, and starts a new group at the earliest offset, so no message produced before
//! the first commit is lost. Messages are recorded in batches (what is already fetched, up to
//! [`BATCH`]) in one transaction; only then is each partition's next offset committed, so a
//! crash between the two delivers the batch again, which the dedup keys record once.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::{Source, value_of};
use crate::dag::assets::Watch;
use crate::dag::kinds::StartFrom;
use crate::operators::{OperatorError, kafka_client};
use crate::store::{EventSource, NewAssetEvent};

/// Messages recorded in one transaction at most.
const BATCH: usize = 500;

/// Pause between two attempts to record a batch the store refused (it is kept, not skipped).
const STORE_RETRY: Duration = Duration::from_millis(500);

/// Consumes until `stop` fires; an error ends the run (the caller starts it again).
pub(super) async fn run(source: &Source, stop: &CancellationToken) -> Result<(), OperatorError> {
    let Watch::Kafka { connection, topic, group_id } = &source.watch else {
        return Ok(());
    };
    let conn = source.connection(connection).await?;
    let cfg = kafka_client::client_config(&conn)?;
    let consumer = kafka_client::consumer(cfg, group_id, StartFrom::Earliest, &BTreeMap::new())?;
    consumer
        .subscribe(&[topic.as_str()])
        .map_err(|e| OperatorError::Retryable(format!("cannot subscribe to `{topic}`: {e}")))?;
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        let mut batch: Vec<Seen> = Vec::new();
        take(first, &mut batch)?;
        // What is already fetched joins the batch; nothing waits for more.
        while batch.len() < BATCH {
            match consumer.recv().now_or_never() {
                Some(m) => take(m, &mut batch)?,
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let events: Vec<NewAssetEvent> = batch
            .iter()
            .flat_map(|m| {
                source.uris.iter().map(move |uri| NewAssetEvent {
                    uri: uri.clone(),
                    source: EventSource::Kafka,
                    extra: m.extra.clone(),
                    dedup_key: Some(format!("{}:{}:{}", m.topic, m.partition, m.offset)),
                    created_by: None,
                })
            })
            .collect();
        // Recorded, or kept and tried again: never committed past an unrecorded message.
        loop {
            match source.store.record_asset_events(&events, chrono::Utc::now()).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(topic = %topic, error = %e, "cannot record asset events; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(STORE_RETRY) => {}
                    }
                }
            }
        }
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in &batch {
            let at = next.entry((m.topic.clone(), m.partition)).or_insert(0);
            *at = (*at).max(m.offset + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in next {
            tpl.add_partition_offset(&t, p, Offset::Offset(o))
                .map_err(|e| OperatorError::Retryable(e.to_string()))?;
        }
        // A lost commit only delivers the batch again, which records nothing new.
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(topic = %topic, error = %e, "cannot commit the watcher's offsets");
        }
    }
}

/// One consumed message, as its event tells it.
struct Seen {
    topic: String,
    partition: i32,
    offset: i64,
    extra: serde_json::Value,
}

fn take(
    m: Result<rdkafka::message::BorrowedMessage<'_>, KafkaError>,
    batch: &mut Vec<Seen>,
) -> Result<(), OperatorError> {
    let m = match m {
        Ok(m) => m,
        // The end of a partition: caught up.
        Err(KafkaError::PartitionEOF(_)) => return Ok(()),
        Err(e) => return Err(OperatorError::Retryable(format!("Kafka: {e}"))),
    };
    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let extra = serde_json::json!({
        "topic": m.topic(),
        "partition": m.partition(),
        "offset": m.offset(),
        "key": key,
        "value": value_of(m.payload()),
        "timestamp_ms": m.timestamp().to_millis(),
    });
    batch.push(Seen {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        extra,
    });
    Ok(())
}
