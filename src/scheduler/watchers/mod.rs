//! Asset watchers: the pollers of outside sources (a Kafka topic, an S3 prefix) that record
//! asset events for the DAGs scheduled on them (`watch:` in a schedule's asset).
//!
//! One poller per source ([`Watch::source_key`]): DAGs that watch the same topic with the same
//! group, or the same prefix, share it, and each event it records goes to every asset URI
//! they name for it. The scheduler reconciles the running pollers with its DAGs after every
//! folder scan ([`Watchers::reconcile`]): a source no DAG watches any more is stopped, a new
//! one started, one whose assets changed restarted.
//!
//! Invariants: a watcher only records events (`Store::record_asset_events`); runs are the
//! scheduler's, from the events. Every event a watcher records carries a dedup key (a message's
//! topic, partition and offset; an object's bucket, key and ETag), so recording it twice — a
//! message delivered again after a crash, an object listed again — records it once. A Kafka
//! offset is committed only after the events of every message before it in its partition are
//! committed to the store. Every loop stops when its token fires, and every wait is bounded.

mod kafka;
mod s3;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::dag::Dag;
use crate::dag::assets::Watch;
use crate::operators::{Connection, OperatorError};
use crate::store::Store;

/// Pause before a watcher that failed (a broker or a bucket unreachable, a bad connection)
/// tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The largest part of a message or object that an event's `extra` carries, in bytes.
const EXTRA_VALUE_MAX: usize = 16 * 1024;

/// What one poller needs.
#[derive(Clone)]
struct Source {
    watch: Watch,
    /// The asset URIs its events are recorded for.
    uris: BTreeSet<String>,
    store: Store,
    settings: Arc<Settings>,
}

impl Source {
    /// The watch's connection, from the environment or the store, as a try would find it.
    async fn connection(&self, conn_id: &str) -> Result<Connection, OperatorError> {
        let rows = self
            .store
            .list_connections()
            .await
            .map_err(|e| OperatorError::Retryable(e.to_string()))?;
        let stored = crate::operators::decrypt_connections(&self.settings, rows)
            .map_err(|e| OperatorError::Fatal(e.to_string()))?;
        crate::operators::find_connection(&self.settings, &stored, conn_id)
    }
}

struct Running {
    source: Source,
    stop: CancellationToken,
}

/// The pollers this scheduler runs, by source key.
#[derive(Default)]
pub(super) struct Watchers {
    running: HashMap<String, Running>,
}

impl Watchers {
    /// Starts, stops and restarts pollers so that exactly the sources `dags` watch are
    /// polled, each for the assets that name it.
    pub(super) fn reconcile(&mut self, dags: &[Arc<Dag>], store: &Store, settings: &Arc<Settings>) {
        let mut wanted: HashMap<String, Source> = HashMap::new();
        for dag in dags {
            let Some(schedule) = &dag.asset_schedule else { continue };
            for asset in &schedule.assets {
                let Some(watch) = &asset.watch else { continue };
                let key = watch.source_key();
                let source = wanted.entry(key.clone()).or_insert_with(|| Source {
                    watch: watch.clone(),
                    uris: BTreeSet::new(),
                    store: store.clone(),
                    settings: settings.clone(),
                });
                if source.watch != *watch {
                    tracing::warn!(dag_id = %dag.dag_id, source = %key, "another DAG watches this source with other settings; the first one read is used");
                }
                source.uris.insert(asset.uri.clone());
            }
        }
        self.running.retain(|key, r| {
            let keep = wanted
                .get(key)
                .is_some_and(|w| w.uris == r.source.uris && w.watch == r.source.watch);
            if !keep {
                r.stop.cancel();
                tracing::info!(source = %key, "asset watcher stopped");
            }
            keep
        });
        for (key, source) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            let stop = CancellationToken::new();
            tracing::info!(source = %key, assets = ?source.uris, "asset watcher started");
            tokio::spawn(watch(key.clone(), source.clone(), stop.clone()));
            self.running.insert(key, Running { source, stop });
        }
    }

    /// Stops every poller.
    pub(super) fn stop_all(&mut self) {
        for (_, r) in self.running.drain() {
            r.stop.cancel();
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Runs one poller until `stop` fires, starting it again after each failure.
async fn watch(key: String, source: Source, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let result = match &source.watch {
            Watch::Kafka { .. } => kafka::run(&source, &stop).await,
            Watch::S3 { .. } => s3::run(&key, &source, &stop).await,
        };
        if let Err(e) = result {
            tracing::error!(source = %key, error = %e, "asset watcher failed; trying again in {RETRY_AFTER:?}");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(RETRY_AFTER) => {}
        }
    }
}

/// A message's or an object's bytes as an event tells them: JSON when they are JSON, else
/// text (invalid UTF-8 replaced), or only their size when they are large.
fn value_of(bytes: Option<&[u8]>) -> serde_json::Value {
    let Some(bytes) = bytes else { return serde_json::Value::Null };
    if bytes.len() > EXTRA_VALUE_MAX {
        return serde_json::json!({ "bytes": bytes.len() });
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_json_text_or_a_size() {
        assert_eq!(value_of(Some(br#"{"a": 1}"#)), serde_json::json!({"a": 1}));
        assert_eq!(value_of(Some(b"plain \xff")), serde_json::json!("plain \u{fffd}"));
        assert_eq!(value_of(None), serde_json::Value::Null);
        let big = vec![b'x'; EXTRA_VALUE_MAX + 1];
        assert_eq!(value_of(Some(&big)), serde_json::json!({"bytes": EXTRA_VALUE_MAX + 1}));
    }
}
