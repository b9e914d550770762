//! Kafka clients built from a connection, and the bulk produce every producing task type uses.
//!
//! Connection URI: `kafka://[user:password@]host:port[?key=value...]`. Several brokers go in
//! the extra `bootstrap.servers=h1:9092,h2:9092`. Extras whose name contains a `.` are
//! librdkafka settings and are passed through (`security.protocol=SASL_SSL`,
//! `sasl.mechanism=SCRAM-SHA-512`, ...), as in Airflow's Kafka connection; a login and password
//! become `sasl.username`/`sasl.password` (mechanism PLAIN unless the extras say otherwise).
//!
//! Invariants: producers are idempotent (`enable.idempotence`, so librdkafka's own retries never
//! duplicate or reorder a message) and a produce call returns only after every message was
//! acknowledged by the broker; consumers never auto-commit: the sinks commit offsets themselves,
//! after their sink acknowledged.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::ClientConfig;
use std::sync::Arc;

use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use super::{Connection, OperatorError, TaskContext};
use crate::dag::kinds::StartFrom;

/// Messages in flight (sent, not yet acknowledged) per bulk produce: enough to keep librdkafka's
/// batches full, small enough to bound memory.
const IN_FLIGHT: usize = 10_000;

/// How long a message may wait in librdkafka's queue for a broker before it fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// librdkafka settings from a `kafka://` connection.
pub fn client_config(conn: &Connection) -> Result<ClientConfig, OperatorError> {
    let mut cfg = ClientConfig::new();
    let servers = match (conn.extra.get("bootstrap.servers"), &conn.host) {
        (Some(s), _) => s.clone(),
        (None, Some(host)) => format!("{host}:{}", conn.port.unwrap_or(9092)),
        (None, None) => {
            return Err(OperatorError::Fatal(format!(
                "connection `{}` names no broker: write kafka://host:port or add \
                 bootstrap.servers=h1:9092,h2:9092",
                conn.conn_id
            )));
        }
    };
    cfg.set("bootstrap.servers", servers);
    if let Some(user) = &conn.login {
        cfg.set("sasl.username", user);
        cfg.set("sasl.password", conn.password.as_deref().unwrap_or(""));
        cfg.set("security.protocol", "SASL_PLAINTEXT");
        cfg.set("sasl.mechanism", "PLAIN");
    }
    for (k, v) in conn.extra.iter().filter(|(k, _)| k.contains('.')) {
        cfg.set(k, v);
    }
    Ok(cfg)
}

/// The Kafka connection `conn_id` of this try. Secret settings passed as extras
/// (`sasl.password`, `ssl.key.password`, ...) are masked in the log like the password.
pub fn config_for(ctx: &TaskContext, conn_id: &str) -> Result<ClientConfig, OperatorError> {
    let conn = ctx.connection(conn_id)?;
    for (k, v) in &conn.extra {
        if k.contains("password") || k.contains("secret") {
            ctx.log.add_secret(v.clone());
        }
    }
    client_config(&conn)
}

/// An idempotent producer; `extra` (the task's `producer_config`) comes last and wins.
pub fn producer(
    mut cfg: ClientConfig,
    extra: &BTreeMap<String, String>,
) -> Result<FutureProducer, OperatorError> {
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string());
    for (k, v) in extra {
        cfg.set(k, v);
    }
    cfg.create().map_err(|e| OperatorError::Fatal(format!("cannot create a Kafka producer: {e}")))
}

/// A sink's group consumer. Closing one leaves the group, which waits on the broker, and a
/// rebalance arriving during the close can block it for good (librdkafka issue 4884: its
/// `rd_kafka_assign` waits without a timeout). So the last handle is dropped on the blocking
/// pool: a hung close then holds one blocking thread, not the task or an async worker.
pub struct GroupConsumer(Option<Arc<StreamConsumer>>);

impl std::ops::Deref for GroupConsumer {
    type Target = Arc<StreamConsumer>;
    fn deref(&self) -> &Arc<StreamConsumer> {
        // Set from construction until `drop`.
        self.0.as_ref().unwrap_or_else(|| unreachable!("consumer used after drop"))
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || drop(consumer))),
            Err(_) => drop(consumer),
        }
    }
}

/// A group consumer that never commits by itself and reports the end of each partition (so a
/// sink knows when it caught up).
pub fn consumer(
    mut cfg: ClientConfig,
    group_id: &str,
    start_from: StartFrom,
    extra: &BTreeMap<String, String>,
) -> Result<GroupConsumer, OperatorError> {
    let reset = match start_from {
        StartFrom::Earliest => "earliest",
        StartFrom::Latest => "latest",
    };
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", reset)
        // The sinks commit after each acknowledged batch: a short session timeout lets a
        // restarted task take its partitions back quickly from a killed one.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    for (k, v) in extra {
        cfg.set(k, v);
    }
    let consumer: StreamConsumer = cfg
        .create()
        .map_err(|e| OperatorError::Fatal(format!("cannot create a Kafka consumer: {e}")))?;
    Ok(GroupConsumer(Some(Arc::new(consumer))))
}

/// One message to produce: its key's bytes (none lets the producer spread them) and payload.
pub type KeyedMessage = (Option<Vec<u8>>, Vec<u8>);

/// What a bulk produce did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Produced {
    /// Messages acknowledged by the broker.
    pub messages: u64,
    /// Payload bytes acknowledged.
    pub bytes: u64,
}

/// Sends every `(key, payload)` to `topic` with at most [`IN_FLIGHT`] unacknowledged, and
/// returns once all are acknowledged. The first failed delivery fails the produce (retryable:
/// a broker that was away may be back); cancellation stops it at once.
pub async fn produce_all<I>(
    producer: &FutureProducer,
    topic: &str,
    records: I,
    cancel: &CancellationToken,
) -> Result<Produced, OperatorError>
where
    I: IntoIterator<Item = KeyedMessage>,
{
    let sends = futures::stream::iter(records)
        .map(|(key, payload)| async move {
            let mut record = FutureRecord::to(topic).payload(&payload);
            if let Some(k) = &key {
                record = record.key(k);
            }
            let len = payload.len() as u64;
            producer.send(record, DELIVERY_TIMEOUT).await.map(|_| len).map_err(|(e, _)| e)
        })
        .buffer_unordered(IN_FLIGHT);
    let mut sends = std::pin::pin!(sends);
    let mut done = Produced::default();
    loop {
        tokio::select! {
            next = sends.next() => match next {
                None => return Ok(done),
                Some(Ok(len)) => {
                    done.messages += 1;
                    done.bytes += len;
                }
                Some(Err(e)) => return Err(delivery_error(topic, &e, done.messages)),
            },
            () = cancel.cancelled() => {
                return Err(OperatorError::Retryable(format!(
                    "killed: producing to `{topic}` was cancelled after {} messages",
                    done.messages
                )));
            }
        }
    }
}

fn delivery_error(topic: &str, e: &KafkaError, sent: u64) -> OperatorError {
    OperatorError::Retryable(format!(
        "delivery to `{topic}` failed after {sent} acknowledged messages: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(uri: &str) -> ClientConfig {
        client_config(&Connection::parse("k", uri).unwrap()).unwrap()
    }

    #[test]
    fn connection_uris() {
        let c = cfg("kafka://127.0.0.1:19092");
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:19092"));
        assert_eq!(c.get("sasl.username"), None);
        let c = cfg("kafka://u:p@b1?bootstrap.servers=b1:1,b2:2&sasl.mechanism=SCRAM-SHA-512");
        assert_eq!(c.get("bootstrap.servers"), Some("b1:1,b2:2"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(cfg("kafka://h").get("bootstrap.servers"), Some("h:9092"));
    }
}
