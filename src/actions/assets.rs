//! Asset events from outside, through the API (`POST /api/v1/assets/events`): the URI is
//! checked by the rule DAG files use, the asset must be one an active DAG names (as Airflow
//! answers 404 for an unknown asset, so a typo is an error, not an event nobody hears), and
//! the extra is bounded. The event row records who posted it; it is its own audit trail.

use chrono::Utc;
use serde_json::{Map, Value};

use super::{ActionError, Actor, Result};
use crate::dag::assets::check_uri;
use crate::store::{AssetEventRow, EventSource, NewAssetEvent, Store};

/// The largest `extra` an event may carry, in JSON bytes.
pub const MAX_EXTRA_BYTES: usize = 64 * 1024;

/// Records an event of `uri` with `extra`, posted by `actor`; the schedulers are told at once.
pub async fn post_event(
    store: &Store,
    actor: &Actor,
    uri: &str,
    extra: Map<String, Value>,
) -> Result<AssetEventRow> {
    check_uri(uri).map_err(|why| ActionError::Invalid(format!("`asset_uri`: {why}")))?;
    let extra = Value::Object(extra);
    let len = extra.to_string().len();
    if len > MAX_EXTRA_BYTES {
        return Err(ActionError::Invalid(format!(
            "`extra` is {len} bytes of JSON; at most {MAX_EXTRA_BYTES} are accepted"
        )));
    }
    if store.asset_uses(Some(uri)).await?.is_empty() {
        return Err(ActionError::NotFound(format!(
            "asset `{uri}` not found: no active DAG names it in a schedule, outlets or inlets"
        )));
    }
    let now = Utc::now();
    let event = NewAssetEvent {
        uri: uri.to_string(),
        source: EventSource::Api,
        extra: extra.clone(),
        dedup_key: None,
        created_by: Some(actor.name().to_string()),
    };
    let ids = store.record_asset_events(std::slice::from_ref(&event), now).await?;
    let Some(Some(id)) = ids.first().copied() else {
        return Err(ActionError::Internal("the event was not recorded".into()));
    };
    Ok(AssetEventRow {
        id,
        uri: event.uri,
        source: EventSource::Api.as_str().to_string(),
        source_dag_id: None,
        source_run_id: None,
        source_task_id: None,
        source_map_index: None,
        extra,
        created_by: event.created_by,
        timestamp: crate::store::from_us(crate::store::to_us(now)),
    })
}
