//! `type: kafka_sensor`: one poke that counts the messages waiting in a topic.
//!
//! With `group_id`, "waiting" means not yet consumed by that group: the end offsets minus the
//! group's committed offsets (or minus the beginning, for partitions the group never committed)
//! -- what an Airflow user means by "new data for my consumer". Without a group it is every
//! message in the topic (end minus beginning offsets). A sensor keeps no state between pokes
//! (each poke may run in another process), which is why "new since the first poke" is not
//! offered: a group's committed offsets are that state, kept by Kafka.
//!
//! Invariant: the sensor only reads offsets; it never joins the group nor commits for it.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::kafka_client::config_for;
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::KafkaSensorTask;

/// Bound on each metadata and offset request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Done (XCom `{messages, partitions}`) when at least `min_messages` are waiting.
pub async fn run(ctx: &TaskContext, task: &KafkaSensorTask) -> Result<Outcome, OperatorError> {
    let topic = ctx.render("topic", &task.topic)?;
    let group = task.group_id.as_deref().map(|g| ctx.render("group_id", g)).transpose()?;
    let mut cfg = config_for(ctx, &task.connection)?;
    // A group id is needed to read committed offsets; without one any id does (nothing joins).
    cfg.set("group.id", group.as_deref().unwrap_or("updraft-kafka-sensor"));
    cfg.set("enable.auto.commit", "false");
    let consumer: BaseConsumer = cfg
        .create()
        .map_err(|e| OperatorError::Fatal(format!("cannot create a Kafka client: {e}")))?;
    let t = topic.clone();
    let has_group = group.is_some();
    // librdkafka's metadata and offset calls block: keep them off the async workers.
    let counts = tokio::task::spawn_blocking(move || waiting(&consumer, &t, has_group))
        .await
        .map_err(|e| OperatorError::Retryable(format!("kafka sensor: {e}")))??;
    let Some(counts) = counts else {
        return Ok(Outcome::NotYet(format!("topic `{topic}` does not exist yet")));
    };
    let total: i64 = counts.values().sum();
    let whose = group.map_or("in the topic".to_string(), |g| format!("for group `{g}`"));
    if (total.max(0) as u64) < task.min_messages {
        return Ok(Outcome::NotYet(format!(
            "{total} message(s) waiting {whose} in `{topic}`, want {}",
            task.min_messages
        )));
    }
    ctx.log.line(format!("{total} message(s) waiting {whose} in `{topic}`"));
    Ok(Outcome::Done(Some(json!({"topic": topic, "messages": total, "partitions": counts}))))
}

/// Messages waiting per partition; `None` when the topic has no partitions (does not exist).
fn waiting(
    consumer: &BaseConsumer,
    topic: &str,
    group: bool,
) -> Result<Option<BTreeMap<String, i64>>, OperatorError> {
    let err = |e: rdkafka::error::KafkaError| OperatorError::Retryable(format!("Kafka: {e}"));
    let meta = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT).map_err(err)?;
    let partitions: Vec<i32> = meta
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Ok(None);
    }
    let mut committed = BTreeMap::new();
    if group {
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let got = consumer.committed_offsets(tpl, REQUEST_TIMEOUT).map_err(err)?;
        for e in got.elements() {
            if let Offset::Offset(o) = e.offset() {
                committed.insert(e.partition(), o);
            }
        }
    }
    let mut out = BTreeMap::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, REQUEST_TIMEOUT).map_err(err)?;
        let from = committed.get(&p).copied().unwrap_or(low).max(low);
        out.insert(p.to_string(), (high - from).max(0));
    }
    Ok(Some(out))
}
