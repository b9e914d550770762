//! `/api/v1/assets`: the assets active DAGs name (with producers, consumers and event counts),
//! their events, and posting an event from outside (operator), as Airflow 3's
//! `POST /assets/events` does.
//!
//! Invariant: a posted event goes through `crate::actions::assets`, with the operator role
//! checked first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, JsonBody, Principal, QueryArgs, page_limit};
use crate::actions;
use crate::store::{AssetEventRow, AssetSummary, EventsOf};
use crate::web::AppState;
use crate::web::auth::Action;

/// An asset as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct AssetJson {
    uri: String,
    producing_dags: Vec<String>,
    consuming_dags: Vec<String>,
    watched: bool,
    events: i64,
    last_event_at: Option<DateTime<Utc>>,
}

impl From<AssetSummary> for AssetJson {
    fn from(a: AssetSummary) -> Self {
        AssetJson {
            uri: a.uri,
            producing_dags: a.producers,
            consuming_dags: a.consumers,
            watched: a.watched,
            events: a.events,
            last_event_at: a.last_event_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct AssetList {
    assets: Vec<AssetJson>,
    total_entries: usize,
}

/// `GET /assets`.
pub(super) async fn list(
    State(state): State<AppState>,
    user: Principal,
) -> Result<Json<AssetList>, ApiError> {
    user.require(Action::Read)?;
    let assets: Vec<AssetJson> =
        state.store.assets().await?.into_iter().map(AssetJson::from).collect();
    Ok(Json(AssetList { total_entries: assets.len(), assets }))
}

#[derive(Debug, Serialize)]
pub(super) struct EventList {
    asset_events: Vec<AssetEventRow>,
    total_entries: usize,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct EventArgs {
    asset_uri: Option<String>,
    dag_id: Option<String>,
    before_id: Option<i64>,
    limit: Option<i64>,
}

/// `GET /assets/events?asset_uri=&dag_id=&before_id=&limit=`: newest first.
pub(super) async fn events(
    State(state): State<AppState>,
    user: Principal,
    QueryArgs(q): QueryArgs<EventArgs>,
) -> Result<Json<EventList>, ApiError> {
    user.require(Action::Read)?;
    let limit = page_limit(q.limit)?;
    let of = match (&q.asset_uri, &q.dag_id) {
        (Some(uri), _) => EventsOf::Asset(uri),
        (None, Some(dag)) => EventsOf::Dag(dag),
        (None, None) => EventsOf::All,
    };
    let asset_events = state.store.asset_events(of, q.before_id, limit).await?;
    Ok(Json(EventList { total_entries: asset_events.len(), asset_events }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostBody {
    asset_uri: String,
    #[serde(default)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// `POST /assets/events`: an event of an asset an active DAG names.
pub(super) async fn post_event(
    State(state): State<AppState>,
    user: Principal,
    body: JsonBody,
) -> Result<Json<AssetEventRow>, ApiError> {
    user.require(Action::Operate)?;
    let body: PostBody = body.parse(&user)?;
    let event =
        actions::assets::post_event(&state.store, &user.actor(), &body.asset_uri, body.extra)
            .await?;
    Ok(Json(event))
}
