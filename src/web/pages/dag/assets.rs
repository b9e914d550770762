//! A DAG's Assets tab: the assets its schedule waits for (with the events waiting to trigger
//! it, and a warning for one nothing produces), the assets its tasks produce and read, and
//! the recent events of them, with the runs each triggered.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::Header;
use crate::store::EventsOf;
use crate::web::auth::{Action, Principal};
use crate::web::pages::assets::{EVENTS_SHOWN, EventView, asset_href, event_views};
use crate::web::pages::{Chrome, render};
use crate::web::{AppState, WebError};

/// An asset the schedule waits for.
struct Waited {
    uri: String,
    href: String,
    /// Events since the DAG's last asset-triggered run.
    waiting: i64,
    watch: String,
    /// No task of an active DAG produces it and no watch reads it.
    unproduced: bool,
}

/// An asset a task produces or reads.
struct Named {
    uri: String,
    href: String,
    task_id: String,
}

#[derive(Template)]
#[template(path = "dag_assets.html")]
struct AssetsTab {
    chrome: Chrome,
    h: Header,
    /// "every one" or "any one", when the DAG is scheduled on assets.
    mode: String,
    waited: Vec<Waited>,
    outlets: Vec<Named>,
    inlets: Vec<Named>,
    events: Vec<EventView>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let queues = state.store.asset_queues().await?;
    let mut waited = Vec::new();
    let mut mode = String::new();
    if let Some(s) = &dag.asset_schedule {
        mode = match s.mode {
            crate::dag::assets::AssetMode::All => "every one of these assets has a new event",
            crate::dag::assets::AssetMode::Any => "any of these assets has a new event",
        }
        .to_string();
        for a in &s.assets {
            let produced =
                state.store.asset_uses(Some(&a.uri)).await?.iter().any(|u| u.kind == "outlet");
            waited.push(Waited {
                href: asset_href(&a.uri),
                waiting: queues
                    .iter()
                    .find(|q| q.dag_id == dag_id && q.uri == a.uri)
                    .map_or(0, |q| q.new_events),
                watch: a.watch.as_ref().map(|w| w.describe()).unwrap_or_default(),
                unproduced: !produced && a.watch.is_none(),
                uri: a.uri.clone(),
            });
        }
    }
    let named = |pick: fn(&crate::dag::Task) -> &Vec<String>| {
        dag.tasks
            .values()
            .flat_map(|t| {
                pick(t).iter().map(|u| Named {
                    uri: u.clone(),
                    href: asset_href(u),
                    task_id: t.task_id.clone(),
                })
            })
            .collect::<Vec<_>>()
    };
    let (outlets, inlets) = (named(|t| &t.outlets), named(|t| &t.inlets));
    let events = state.store.asset_events(EventsOf::Dag(&dag_id), None, EVENTS_SHOWN).await?;
    let page = AssetsTab {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · assets")),
        h: Header::new(&rec, &dag, "assets"),
        mode,
        waited,
        outlets,
        inlets,
        events: event_views(&state.store, events).await?,
    };
    Ok(render(&page)?.into_response())
}
