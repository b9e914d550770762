//! The assets pages: every asset with its producing and consuming DAGs and the asset graph
//! across DAGs (`/assets`), one asset with its recent events and the runs they triggered
//! (`/assets/detail?uri=`), and an operator's event posted from that page. A DAG's own assets
//! and their events are its Assets tab (`dag/assets.rs`), drawn from the same pieces here.
//!
//! Invariant: a posted event goes through `crate::actions::assets`, as the API's does; every
//! text from a DAG file or an event (URIs, extras) is escaped by askama or `svg::escape`.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::store::{AssetEventRow, AssetSummary, AssetUseRow, EventsOf, Store};
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Flash, fmt_time, redirect_with, render, url_encode};
use crate::web::svg::{self, NodeInfo};
use crate::web::{AppState, WebError};

/// Events a page lists (the newest).
pub(crate) const EVENTS_SHOWN: i64 = 50;

/// Characters of an event's `extra` shown in a list (the whole in its tooltip).
const EXTRA_CHARS: usize = 160;

/// The link to an asset's page.
pub(crate) fn asset_href(uri: &str) -> String {
    format!("/assets/detail?uri={}", url_encode(uri))
}

/// One event in a list.
pub(crate) struct EventView {
    pub(crate) id: i64,
    pub(crate) uri: String,
    pub(crate) uri_href: String,
    pub(crate) when: String,
    pub(crate) source: String,
    /// The producing run's page, for a task's event.
    pub(crate) from: Option<(String, String)>,
    pub(crate) extra: String,
    pub(crate) extra_full: String,
    /// The runs it triggered: (text, link).
    pub(crate) runs: Vec<(String, String)>,
}

/// Events as the lists show them, with the runs each triggered.
pub(crate) async fn event_views(
    store: &Store,
    events: Vec<AssetEventRow>,
) -> Result<Vec<EventView>, WebError> {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut triggered: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for (event, dag_id, run_id) in store.runs_of_events(&ids).await? {
        let href = format!("/dags/{}/runs/{}", url_encode(&dag_id), url_encode(&run_id));
        triggered.entry(event).or_default().push((format!("{dag_id} · {run_id}"), href));
    }
    Ok(events
        .into_iter()
        .map(|e| {
            let full = e.extra.to_string();
            let extra = if full.chars().count() > EXTRA_CHARS {
                format!("{}…", full.chars().take(EXTRA_CHARS).collect::<String>())
            } else {
                full.clone()
            };
            let from = match (&e.source_dag_id, &e.source_run_id, &e.source_task_id) {
                (Some(d), Some(r), Some(t)) => Some((
                    format!("{d} · {t}"),
                    format!("/dags/{}/runs/{}", url_encode(d), url_encode(r)),
                )),
                _ => None,
            };
            let source = match (&e.created_by, e.source.as_str()) {
                (Some(user), "api") => format!("api · {user}"),
                (_, s) => s.to_string(),
            };
            EventView {
                id: e.id,
                uri_href: asset_href(&e.uri),
                uri: e.uri,
                when: fmt_time(Some(e.timestamp)),
                source,
                from,
                extra,
                extra_full: full,
                runs: triggered.remove(&e.id).unwrap_or_default(),
            }
        })
        .collect())
}

/// One asset in the list.
struct AssetView {
    uri: String,
    href: String,
    producers: Vec<(String, String)>,
    consumers: Vec<(String, String)>,
    watched: bool,
    events: i64,
    last_event: String,
    /// A DAG waits for it but nothing produces it.
    unproduced: bool,
}

fn dag_links(ids: &[String]) -> Vec<(String, String)> {
    ids.iter().map(|d| (d.clone(), format!("/dags/{}", url_encode(d)))).collect()
}

#[derive(Template)]
#[template(path = "assets.html")]
struct AssetsPage {
    chrome: Chrome,
    assets: Vec<AssetView>,
    graph: String,
    graph_note: String,
}

/// The asset graph: producing DAG -> asset -> consuming DAG, laid out like a DAG's graph.
/// Asset nodes are named `◆ <uri>`, which no DAG id can be.
fn asset_graph(uses: &[AssetUseRow]) -> Result<svg::Svg, String> {
    let asset = |uri: &str| format!("◆ {uri}");
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut watched: HashMap<String, bool> = HashMap::new();
    for u in uses {
        let a = asset(&u.uri);
        deps.entry(a.clone()).or_default();
        deps.entry(u.dag_id.clone()).or_default();
        match u.kind.as_str() {
            "outlet" => deps.entry(a.clone()).or_default().push(u.dag_id.clone()),
            _ => deps.entry(u.dag_id.clone()).or_default().push(a.clone()),
        }
        if u.watch.is_some() {
            watched.insert(a, true);
        }
    }
    for d in deps.values_mut() {
        d.sort();
        d.dedup();
    }
    let graph = crate::dag::DagGraph::build(
        deps.iter().map(|(id, d)| (id.as_str(), d.iter().map(String::as_str))),
    )
    .map_err(|e| format!("The asset graph is not drawn: {e}"))?;
    Ok(svg::layout(&graph, |id| match id.strip_prefix("◆ ") {
        Some(uri) => NodeInfo {
            kind: if watched.contains_key(id) { "asset · watched" } else { "asset" }.into(),
            href: Some(asset_href(uri)),
            title: Some(uri.to_string()),
            ..NodeInfo::default()
        },
        None => NodeInfo {
            kind: "DAG".into(),
            href: Some(format!("/dags/{}", url_encode(id))),
            ..NodeInfo::default()
        },
    }))
}

/// `GET /assets`.
async fn list(State(state): State<AppState>, user: Principal) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let summaries: Vec<AssetSummary> = state.store.assets().await?;
    let uses = state.store.asset_uses(None).await?;
    let (graph, graph_note) = if uses.is_empty() {
        (
            String::new(),
            "No DAG names an asset yet: declare `outlets:` on a task, or schedule a DAG on assets."
                .to_string(),
        )
    } else {
        match asset_graph(&uses) {
            Ok(svg) => (svg.markup, String::new()),
            Err(note) => (String::new(), note),
        }
    };
    let assets = summaries
        .into_iter()
        .map(|a| AssetView {
            href: asset_href(&a.uri),
            unproduced: !a.consumers.is_empty() && a.producers.is_empty() && !a.watched,
            producers: dag_links(&a.producers),
            consumers: dag_links(&a.consumers),
            watched: a.watched,
            events: a.events,
            last_event: fmt_time(a.last_event_at),
            uri: a.uri,
        })
        .collect();
    let page =
        AssetsPage { chrome: Chrome::new(&user, "assets", "Assets"), assets, graph, graph_note };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailQuery {
    uri: String,
    before: Option<i64>,
}

/// How a DAG names the asset, for its page.
struct UseView {
    dag_id: String,
    href: String,
    task_id: String,
    watch: String,
}

#[derive(Template)]
#[template(path = "asset.html")]
struct AssetPage {
    chrome: Chrome,
    uri: String,
    producers: Vec<UseView>,
    consumers: Vec<UseView>,
    readers: Vec<UseView>,
    events: Vec<EventView>,
    /// The link to older events, when there may be some.
    older: Option<String>,
    unproduced: bool,
}

/// `GET /assets/detail?uri=`.
async fn detail(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<DetailQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let uses = state.store.asset_uses(Some(&q.uri)).await?;
    let events = state.store.asset_events(EventsOf::Asset(&q.uri), q.before, EVENTS_SHOWN).await?;
    if uses.is_empty() && events.is_empty() && q.before.is_none() {
        return Err(WebError::NotFound(format!(
            "no asset `{}`: no active DAG names it and it has no events",
            q.uri
        )));
    }
    let view = |u: &AssetUseRow| UseView {
        dag_id: u.dag_id.clone(),
        href: format!("/dags/{}", url_encode(&u.dag_id)),
        task_id: u.task_id.clone(),
        watch: u.watch.clone().unwrap_or_default(),
    };
    let of = |kind: &str| uses.iter().filter(|u| u.kind == kind).map(view).collect::<Vec<_>>();
    let (producers, consumers, readers) = (of("outlet"), of("schedule"), of("inlet"));
    let older = (events.len() as i64 == EVENTS_SHOWN)
        .then(|| events.last().map(|e| format!("{}&before={}", asset_href(&q.uri), e.id)))
        .flatten();
    let unproduced = !consumers.is_empty()
        && producers.is_empty()
        && consumers.iter().all(|c| c.watch.is_empty());
    let page = AssetPage {
        chrome: Chrome::new(&user, "assets", format!("Asset {}", q.uri)),
        events: event_views(&state.store, events).await?,
        uri: q.uri,
        producers,
        consumers,
        readers,
        older,
        unproduced,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Deserialize)]
struct EventForm {
    uri: String,
    #[serde(default)]
    extra: String,
}

/// `POST /assets/events`: an operator records an event, as through the API.
async fn post_event(
    State(state): State<AppState>,
    form: crate::web::pages::Form<EventForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let uri = form.data.uri.trim().to_string();
    let extra = match form.data.extra.trim() {
        "" => Ok(serde_json::Map::new()),
        text => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err(WebError::BadRequest(
                "field `extra`: write a JSON object, such as {\"rows\": 3}".into(),
            )),
            Err(e) => Err(WebError::BadRequest(format!("field `extra`: not JSON ({e})"))),
        },
    };
    let result = match extra {
        Ok(extra) => {
            crate::actions::assets::post_event(&state.store, &form.user.actor(), &uri, extra)
                .await
                .map(|e| format!("Event #{} recorded for {}", e.id, e.uri))
                .map_err(WebError::from)
        }
        Err(e) => Err(e),
    };
    redirect_with(&state, &form.user, &asset_href(&uri), Flash::of(result)?).await
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets", get(list))
        .route("/assets/detail", get(detail))
        .route("/assets/events", post(post_event))
}
