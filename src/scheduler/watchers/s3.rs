//! The S3 watcher: each new object under the prefix (by key and ETag: a rewritten object is
//! new again) is one event per asset it watches for, its `extra` the object's URL, key, ETag,
//! size and time.
//!
//! "New" means written since the watcher of this source first started (its start time is
//! stored, so a restart does not make old objects new). The prefix is listed every
//! `poke_interval`; what was recorded is remembered in memory, and the dedup keys make the
//! first listing after a restart record nothing twice.

use std::collections::HashSet;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use tokio_util::sync::CancellationToken;

use super::Source;
use crate::dag::assets::Watch;
use crate::operators::{OperatorError, objects};
use crate::store::{EventSource, NewAssetEvent};

/// Lists until `stop` fires; an error ends the run (the caller starts it again).
pub(super) async fn run(
    key: &str,
    source: &Source,
    stop: &CancellationToken,
) -> Result<(), OperatorError> {
    let Watch::S3 { connection, bucket, prefix, poke_interval } = &source.watch else {
        return Ok(());
    };
    let conn = source.connection(connection).await?;
    let store = objects::s3_store(&conn, bucket)?;
    let since = source
        .store
        .watch_started(key, chrono::Utc::now())
        .await
        .map_err(|e| OperatorError::Retryable(e.to_string()))?;
    let list_prefix = (!prefix.is_empty()).then(|| Path::from(prefix.as_str()));
    let mut seen: HashSet<(String, String)> = HashSet::new();
    loop {
        let listed: Vec<object_store::ObjectMeta> = store
            .list(list_prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| objects::store_error(&format!("listing s3://{bucket}/{prefix}"), e))?;
        let mut events = Vec::new();
        let mut fresh = Vec::new();
        for o in listed {
            // A prefix is a string prefix, as in S3 (`in/day` matches `in/day-2/x`).
            if o.last_modified < since || !o.location.as_ref().starts_with(prefix.as_str()) {
                continue;
            }
            let etag = o.e_tag.clone().unwrap_or_default();
            let id = (o.location.to_string(), etag.clone());
            if seen.contains(&id) {
                continue;
            }
            let extra = serde_json::json!({
                "url": format!("s3://{bucket}/{}", o.location),
                "key": o.location.as_ref(),
                "etag": etag,
                "size": o.size,
                "last_modified": o.last_modified.to_rfc3339(),
            });
            for uri in &source.uris {
                events.push(NewAssetEvent {
                    uri: uri.clone(),
                    source: EventSource::S3,
                    extra: extra.clone(),
                    dedup_key: Some(format!("{bucket}/{}@{etag}", o.location)),
                    created_by: None,
                });
            }
            fresh.push(id);
        }
        if !events.is_empty() {
            source
                .store
                .record_asset_events(&events, chrono::Utc::now())
                .await
                .map_err(|e| OperatorError::Retryable(e.to_string()))?;
            seen.extend(fresh);
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(*poke_interval) => {}
        }
    }
}
