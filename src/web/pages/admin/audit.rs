//! `/admin/audit`: the audit log, newest first, 100 a page (keyset on the entry id with
//! `?before=`), optionally of one DAG.
//!
//! Invariant: read only; entries are written by the actions themselves.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::store::AuditRow;
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, fmt_time, render, url_encode};
use crate::web::{AppState, WebError};

/// Entries per page.
const PAGE: i64 = 100;

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    dag_id: String,
}

struct EntryView {
    at: String,
    /// The DAG's and the run's pages, when the entry names them.
    dag_href: Option<String>,
    run_href: Option<String>,
    row: AuditRow,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<EntryView>,
    dag_id: String,
    first_url: Option<String>,
    next_url: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    user: Principal,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Admin)?;
    let dag_id = q.dag_id.trim().to_string();
    let filter = (!dag_id.is_empty()).then_some(dag_id.as_str());
    // One more than a page tells whether there is a next page.
    let mut rows = state.store.list_audit(filter, q.before, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let base = format!("/admin/audit?dag_id={}", url_encode(&dag_id));
    let next_url = if more { rows.last().map(|r| format!("{base}&before={}", r.id)) } else { None };
    let page = AuditPage {
        chrome: Chrome::new(&user, "audit", "Audit log"),
        entries: rows
            .into_iter()
            .map(|row| EntryView {
                at: fmt_time(Some(row.at)),
                dag_href: row.dag_id.as_deref().map(|d| format!("/dags/{}", url_encode(d))),
                run_href: row
                    .dag_id
                    .as_deref()
                    .zip(row.run_id.as_deref())
                    .map(|(d, r)| crate::web::pages::dag::run_href(d, r)),
                row,
            })
            .collect(),
        first_url: q.before.map(|_| base),
        next_url,
        dag_id,
    };
    Ok(render(&page)?.into_response())
}

/// Routes of this page.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/audit", get(list))
}
