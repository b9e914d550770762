//! The web server: server-rendered pages (axum + askama, templates in `templates/`) and the
//! JSON API under `/api/v1`, on `UPDRAFT_WEB_PORT`.
//!
//! Each page or API module has a `router()`; [`router`] merges them. Handlers take a
//! [`auth::Principal`] (or an [`auth::Form`] for posts) and check the role server-side.
//!
//! Invariants: the web layer talks to the store only — a trigger is a row the scheduler picks
//! up, a clear is a state write the scheduler reacts to; it never calls the scheduler or an
//! operator. It reads DAG files only through `pages::editor`, which confines paths to the DAGs
//! folder. All user text reaches HTML through askama's escaping. Every response passes through
//! [`headers::secure`] (nosniff, no framing, the pages' script policy), and every redirect to a
//! path a client supplied goes through [`redirect::safe_next`].

mod actor;
pub mod api;
pub mod auth;
pub mod error;
pub mod headers;
pub mod limiter;
pub mod metrics;
pub mod pages;
pub mod redirect;
pub mod svg;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::dag::{Dag, DagCache};
use crate::store::{RunDot, Store};

pub use error::{ApiError, WebError};
pub use metrics::Metrics;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    /// The metadata database.
    pub store: Store,
    /// Process settings (DAGs folder, session length).
    pub settings: Arc<Settings>,
    /// Failed-login counters.
    pub limiter: Arc<limiter::LoginLimiter>,
    /// Counters and histograms shared with the scheduler of this process, if any.
    pub metrics: Arc<Metrics>,
    /// DAGs parsed from their stored source, shared by every page and API call (and with
    /// the scheduler of this process, if any).
    pub dags: Arc<DagCache>,
    /// Where the OpenLineage events of users' actions go (an ABORT when a user ends a running
    /// run); off unless configured.
    pub lineage: crate::lineage::Lineage,
    /// Tags and owners for the DAG list's filter menus, with the time they were read.
    facets: Arc<std::sync::Mutex<Option<(std::time::Instant, Facets)>>>,
    /// The DAG list's recent runs per DAG, with the runs version they were read at.
    recent: Arc<std::sync::Mutex<RecentRuns>>,
}

/// Recent runs per DAG id: (runs version, runs per DAG asked, newest first). An entry is used
/// only while the DAG's `runs_version` is the one it was read at, so it is never stale: a run
/// created, changed or deleted in any process raises the version in the same transaction.
type RecentRuns = HashMap<String, (i64, i64, Arc<Vec<RunDot>>)>;

/// Entries of [`RecentRuns`] kept at most (one per DAG; beyond, it starts again).
const RECENT_MAX: usize = 20_000;

/// Distinct tags and owners of the active DAGs.
pub type Facets = (Vec<String>, Vec<String>);

/// How long the filter menus may lag behind DAG changes: they cost a scan of every DAG row,
/// which the list's own query (one indexed page) does not.
const FACETS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl AppState {
    /// State over `store` with fresh counters.
    pub fn new(store: Store, settings: Arc<Settings>, metrics: Arc<Metrics>) -> AppState {
        AppState {
            store,
            settings,
            limiter: Default::default(),
            metrics,
            dags: Default::default(),
            lineage: crate::lineage::Lineage::off(),
            facets: Default::default(),
            recent: Default::default(),
        }
    }

    /// The same state over `dags`, the DAGs this process's scheduler keeps (standalone), so
    /// that a page shows the folder's DAG without parsing it again.
    pub fn with_dags(mut self, dags: Arc<DagCache>) -> AppState {
        self.dags = dags;
        self
    }

    /// The same state sending its OpenLineage events to `lineage` (the process's emitter).
    pub fn with_lineage(mut self, lineage: crate::lineage::Lineage) -> AppState {
        self.lineage = lineage;
        self
    }

    /// Tags and owners of the active DAGs, re-read at most every [`FACETS_TTL`].
    pub async fn facets(&self) -> Result<Facets, WebError> {
        if let Ok(guard) = self.facets.lock()
            && let Some((at, f)) = guard.as_ref()
            && at.elapsed() < FACETS_TTL
        {
            return Ok(f.clone());
        }
        let fresh = self.store.dag_facets().await?;
        if let Ok(mut guard) = self.facets.lock() {
            *guard = Some((std::time::Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }

    /// The last `per_dag` runs of each DAG of `dags` (id, runs version as just read with the
    /// DAG's row), newest first: from memory for a DAG whose runs did not change since they
    /// were read, from one query for all the others.
    pub async fn recent_runs(
        &self,
        dags: &[(&str, i64)],
        per_dag: i64,
    ) -> Result<HashMap<String, Arc<Vec<RunDot>>>, WebError> {
        let mut out = HashMap::with_capacity(dags.len());
        let mut stale = Vec::new();
        if let Ok(cache) = self.recent.lock() {
            for (id, version) in dags {
                match cache.get(*id) {
                    Some((v, n, runs)) if v == version && *n == per_dag => {
                        out.insert(id.to_string(), runs.clone());
                    }
                    _ => stale.push(id.to_string()),
                }
            }
        } else {
            stale = dags.iter().map(|(id, _)| id.to_string()).collect();
        }
        if stale.is_empty() {
            return Ok(out);
        }
        // Read after the versions: what is read is at least as new as the version it is
        // kept under, so a later version always reads again.
        let mut fresh = self.store.recent_runs(&stale, per_dag).await?;
        let mut cache = self.recent.lock().ok();
        if let Some(c) = cache.as_mut().filter(|c| c.len() + stale.len() > RECENT_MAX) {
            c.clear();
        }
        for id in stale {
            let runs = Arc::new(fresh.remove(&id).unwrap_or_default());
            if let (Some(c), Some((_, v))) = (cache.as_mut(), dags.iter().find(|(d, _)| *d == id)) {
                c.insert(id.clone(), (*v, per_dag, runs.clone()));
            }
            out.insert(id, runs);
        }
        Ok(out)
    }

    /// The DAG `dag_id` as the scheduler last recorded it, parsed from its stored source once
    /// per version of it.
    pub async fn dag(&self, dag_id: &str) -> Result<(crate::store::DagRecord, Arc<Dag>), WebError> {
        Ok(crate::actions::stored_dag(&self.store, &self.dags, dag_id).await?)
    }
}

/// Every route of the web server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(
            pages::router()
                .layer(axum::middleware::from_fn_with_state(state.clone(), pages::error_pages)),
        )
        .merge(api::router())
        .route("/health", get(metrics::health))
        .route("/metrics", get(metrics::prometheus))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/static/codemirror.js", get(codemirror))
        .route("/static/editor.js", get(editor_js))
        .layer(axum::middleware::map_response(headers::secure))
        .with_state(state)
}

async fn css() -> impl IntoResponse {
    static_file("text/css; charset=utf-8", include_str!("../../templates/static/app.css"))
}

async fn js() -> impl IntoResponse {
    static_file("text/javascript; charset=utf-8", include_str!("../../templates/static/app.js"))
}

/// CodeMirror 6, bundled once by `scripts/codemirror.sh`; the editor page only.
async fn codemirror() -> impl IntoResponse {
    let body = include_str!("../../templates/static/codemirror.js");
    static_file("text/javascript; charset=utf-8", body)
}

async fn editor_js() -> impl IntoResponse {
    static_file("text/javascript; charset=utf-8", include_str!("../../templates/static/editor.js"))
}

fn static_file(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        body,
    )
}

/// Serves `state` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
