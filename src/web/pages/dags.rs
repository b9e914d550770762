//! The DAG list (search, tag / owner / status filters, 50 a page, recent run dots, import
//! errors) and the pause toggle; the trigger form is [`trigger`].

mod trigger;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Chrome, Form, NextRun, bool_field, fmt_duration, fmt_time, render, url_encode};
use crate::actions;
use crate::store::{DagColumn, DagFilter, DagOrder};
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// DAGs per page.
const PAGE: i64 = 50;
/// Run dots per DAG.
const DOTS: i64 = 10;

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<i64>,
    /// A column to order by (`dag_id`, `owner`, `schedule`, `next_run`), `-` first for
    /// descending; anything else is the default order.
    #[serde(default)]
    sort: String,
}

impl ListQuery {
    fn url(&self, page: i64) -> String {
        self.url_sorted(page, &self.sort)
    }

    fn url_sorted(&self, page: i64, sort: &str) -> String {
        format!(
            "/dags?q={}&tag={}&owner={}&status={}&sort={}&page={page}",
            url_encode(&self.q),
            url_encode(&self.tag),
            url_encode(&self.owner),
            url_encode(&self.status),
            url_encode(sort)
        )
    }

    /// The order `sort` asks for; an unknown column is the default order (by id).
    fn order(&self) -> DagOrder {
        let (descending, name) = match self.sort.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, self.sort.as_str()),
        };
        match column(name) {
            Some(by) => DagOrder { by, descending },
            None => DagOrder::default(),
        }
    }

    /// The header of a sortable column: its link (which flips the order when the list is
    /// already sorted by it) and its `aria-sort`.
    fn header(&self, name: &'static str, label: &'static str) -> SortHeader {
        let now = self.order();
        let (href, aria) = if column(name) == Some(now.by) {
            let flip = if now.descending { name.to_string() } else { format!("-{name}") };
            let aria = if now.descending { "descending" } else { "ascending" };
            (self.url_sorted(1, &flip), aria)
        } else {
            (self.url_sorted(1, name), "none")
        };
        SortHeader { label, href, aria }
    }
}

/// The column a `sort` name stands for.
fn column(name: &str) -> Option<DagColumn> {
    match name {
        "dag_id" => Some(DagColumn::Id),
        "owner" => Some(DagColumn::Owner),
        "schedule" => Some(DagColumn::Schedule),
        "next_run" => Some(DagColumn::NextRun),
        _ => None,
    }
}

/// A sortable column header of the list.
struct SortHeader {
    label: &'static str,
    href: String,
    /// `ascending`, `descending` or `none`.
    aria: &'static str,
}

/// The last run of a DAG as its row shows it.
struct LastRun {
    run_id_url: String,
    state: String,
    when: String,
    duration: String,
}

/// A DAG file that does not load, with where to fix it.
struct Row {
    dag_id: String,
    dag_id_url: String,
    paused: bool,
    tags: Vec<String>,
    description: Option<String>,
    owner: String,
    schedule: String,
    next_run: NextRun,
    last_run: Option<LastRun>,
    /// (run id for URLs, state, logical date), newest first (drawn oldest left, as the grid).
    recent: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "dags.html")]
struct DagsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    import_errors: Vec<super::ImportErrorView>,
    /// Headers of the sortable columns: DAG, owner, schedule, next run.
    headers: Vec<SortHeader>,
    /// The current order, kept by the search form.
    sort: String,
    all_tags: Vec<String>,
    all_owners: Vec<String>,
    q: String,
    tag: String,
    owner: String,
    status: String,
    total: i64,
    page: i64,
    pages: i64,
    prev_url: Option<String>,
    next_url: Option<String>,
    self_url: String,
    any_running: bool,
}

async fn list(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let filter = DagFilter {
        search: None,
        text: Some(q.q.clone()),
        tag: Some(q.tag.clone()),
        owner: Some(q.owner.clone()),
        paused: match q.status.as_str() {
            "paused" => Some(true),
            "active" => Some(false),
            _ => None,
        },
    };
    let page = q.page.unwrap_or(1).max(1);
    let (dags, total) = state.store.dag_page(&filter, q.order(), (page - 1) * PAGE, PAGE).await?;
    let versions: Vec<(&str, i64)> =
        dags.iter().map(|d| (d.dag_id.as_str(), d.runs_version)).collect();
    let mut recent = state.recent_runs(&versions, DOTS).await?;
    let (all_tags, all_owners) = state.facets().await?;
    let import_errors = super::import_errors(&state, &user).await?;
    let mut any_running = false;
    let rows = dags
        .into_iter()
        .map(|d| {
            let runs = recent.remove(&d.dag_id).unwrap_or_default();
            any_running |= runs.iter().any(|r| super::dag::is_live(r.state));
            Row {
                dag_id_url: url_encode(&d.dag_id),
                paused: d.is_paused,
                tags: d.tags,
                description: d.description,
                owner: d.owner,
                schedule: d.schedule.unwrap_or_else(|| "manual".into()),
                next_run: NextRun::new(d.is_paused, d.next_dagrun, d.next_run_at),
                last_run: runs.first().map(|r| LastRun {
                    run_id_url: url_encode(&r.run_id),
                    state: r.state.to_string(),
                    when: fmt_time(Some(r.logical_date)),
                    duration: fmt_duration(r.start_date, r.end_date),
                }),
                recent: runs
                    .iter()
                    .map(|r| {
                        (url_encode(&r.run_id), r.state.to_string(), fmt_time(Some(r.logical_date)))
                    })
                    .collect(),
                dag_id: d.dag_id,
            }
        })
        .collect();
    let pages = ((total + PAGE - 1) / PAGE).max(1);
    let page_view = DagsPage {
        chrome: Chrome::new(&user, "dags", "DAGs"),
        rows,
        import_errors,
        all_tags,
        all_owners,
        total,
        page,
        pages,
        prev_url: (page > 1).then(|| q.url(page - 1)),
        next_url: (page < pages).then(|| q.url(page + 1)),
        self_url: q.url(page),
        headers: vec![
            q.header("dag_id", "DAG"),
            q.header("owner", "Owner"),
            q.header("schedule", "Schedule"),
            q.header("next_run", "Next run"),
        ],
        sort: q.sort.clone(),
        any_running,
        q: q.q,
        tag: q.tag,
        owner: q.owner,
        status: q.status,
    };
    Ok(render(&page_view)?.into_response())
}

#[derive(Deserialize)]
struct PauseForm {
    paused: String,
    #[serde(default)]
    next: String,
}

async fn pause(
    State(state): State<AppState>,
    Path(dag_id): Path<String>,
    form: Form<PauseForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let paused = bool_field("paused", &form.data.paused)?;
    actions::set_paused(&state.store, &form.user.actor(), &dag_id, paused).await?;
    Ok(Redirect::to(crate::web::redirect::safe_next(&form.data.next)).into_response())
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dags", get(list))
        .route("/dags/{dag_id}/pause", post(pause))
        .merge(trigger::router())
}
