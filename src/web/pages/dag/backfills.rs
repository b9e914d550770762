//! A DAG's backfills page: the form (preview is a dry run by GET, creation a POST), the list
//! of its backfills with their runs by state, pause, resume and cancel. Every change goes
//! through `crate::actions::backfills`, as the API's does.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Header;
use crate::actions::backfills::{self, BackfillRequest};
use crate::model::{BackfillStep, Reprocess};
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, Flash, fmt_time, redirect_with, render, url_encode};
use crate::web::{AppState, WebError};

/// Backfills the page lists (the newest).
const LISTED: i64 = 20;

/// What the form holds (as typed, shown back).
#[derive(Deserialize, Default, Clone)]
pub(super) struct BackfillForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    reprocess: String,
    #[serde(default)]
    max_active_runs: String,
    /// The runs' conf, a JSON object (empty: none).
    #[serde(default)]
    conf: String,
}

/// The form's fields, checked: a 400 names the field.
fn request(form: &BackfillForm, dry_run: bool) -> Result<BackfillRequest, WebError> {
    let when = |field: &str, text: &str| {
        crate::web::pages::parse_logical_date(text.trim())
            .map_err(|e| WebError::BadRequest(format!("backfill field `{field}`: {e}")))
    };
    let reprocess = if form.reprocess.is_empty() {
        Reprocess::None
    } else {
        form.reprocess
            .parse()
            .map_err(|e| WebError::BadRequest(format!("backfill field `reprocess`: {e}")))?
    };
    let max_active_runs = match form.max_active_runs.trim() {
        "" => None,
        n => Some(n.parse::<i64>().map_err(|_| {
            WebError::BadRequest(format!("backfill field `max_active_runs`: `{n}` is not a number"))
        })?),
    };
    let conf = match form.conf.trim() {
        "" => serde_json::Map::new(),
        text => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                return Err(WebError::BadRequest(
                    "backfill field `conf`: write a JSON object, such as {\"rows\": 50}".into(),
                ));
            }
            Err(e) => {
                return Err(WebError::BadRequest(format!("backfill field `conf`: not JSON ({e})")));
            }
        },
    };
    Ok(BackfillRequest {
        from: when("from", &form.from)?,
        to: when("to", &form.to)?,
        reprocess,
        max_active_runs,
        conf,
        dry_run,
    })
}

/// One backfill in the list.
struct BackfillView {
    id: i64,
    by: String,
    range: String,
    reprocess: &'static str,
    counts: String,
    /// running, paused, cancelled or done.
    state: &'static str,
    /// The state's colour class.
    state_class: &'static str,
    paused: bool,
    /// Not cancelled and not done: it can be paused, resumed or cancelled.
    can_change: bool,
}

/// One date of a preview.
struct PlanView {
    date: String,
    action: String,
    run_id: String,
}

/// A dry run's answer, shown under the form.
struct Preview {
    summary: String,
    dates: Vec<PlanView>,
    /// Whether creating it would do anything.
    acts: bool,
}

/// The form as shown: what was typed, or the defaults.
struct FormView {
    from: String,
    to: String,
    reprocess: Reprocess,
    max_active_runs: String,
    conf: String,
}

#[derive(Template)]
#[template(path = "dag_backfills.html")]
struct BackfillsPage {
    chrome: Chrome,
    h: Header,
    form: FormView,
    reprocess_choices: Vec<(&'static str, &'static str)>,
    preview: Option<Preview>,
    backfills: Vec<BackfillView>,
    live: bool,
    /// Whether the DAG has a schedule (else there is nothing to backfill).
    scheduled: bool,
}

/// `GET /dags/{dag_id}/backfills`: the list, and with the form's fields a preview (a dry run:
/// nothing is written).
pub(super) async fn page(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
    Query(form): Query<BackfillForm>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let scheduled = dag.schedule.is_scheduled();
    let asked = scheduled && (!form.from.is_empty() || !form.to.is_empty());
    let preview = if asked && user.can(Action::Operate) {
        let req = request(&form, true)?;
        let actor = user.actor();
        let plan = backfills::create_backfill(&state.store, &state.dags, &actor, &dag, req).await?;
        let count = |f: fn(&BackfillStep) -> bool| plan.dates.iter().filter(|d| f(&d.step)).count();
        let created = count(|s| *s == BackfillStep::Create);
        let again = count(|s| matches!(s, BackfillStep::Reprocess { .. }));
        let summary = if plan.dates.is_empty() {
            "No schedule interval starts in this range: nothing to backfill.".to_string()
        } else {
            format!(
                "{} date(s): {created} run(s) to create, {again} to run again, {} left alone.",
                plan.dates.len(),
                plan.dates.len() - created - again
            )
        };
        Some(Preview {
            acts: created + again > 0,
            summary,
            dates: plan
                .dates
                .iter()
                .map(|d| PlanView {
                    date: fmt_time(Some(d.logical_date)),
                    action: match d.step {
                        BackfillStep::Create => "create".into(),
                        BackfillStep::Reprocess { only_failed: true } => {
                            "run its failed instances again".into()
                        }
                        BackfillStep::Reprocess { only_failed: false } => "run it again".into(),
                        BackfillStep::Skip(why) => format!("leave alone: {why}"),
                    },
                    run_id: d.run_id.clone(),
                })
                .collect(),
        })
    } else {
        None
    };
    let rows = state.store.list_backfills(Some(&dag_id), LISTED).await?;
    let live = rows.iter().any(|b| b.cancelled_at.is_none() && b.queued + b.running > 0);
    let backfills = rows
        .into_iter()
        .map(|b| {
            let done = b.queued + b.running == 0;
            let (state, state_class) = match (b.cancelled_at.is_some(), b.is_paused, done) {
                (true, _, _) => ("cancelled", "failed"),
                (false, _, true) => ("done", "success"),
                (false, true, false) => ("paused", "queued"),
                (false, false, false) => ("running", "running"),
            };
            BackfillView {
                id: b.id,
                by: b.created_by.unwrap_or_else(|| "?".into()),
                range: format!("{} → {}", fmt_time(Some(b.from)), fmt_time(Some(b.to))),
                reprocess: b.reprocess.as_str(),
                counts: format!(
                    "{} queued, {} running, {} success, {} failed",
                    b.queued, b.running, b.success, b.failed
                ),
                state,
                state_class,
                paused: b.is_paused,
                can_change: b.cancelled_at.is_none() && !done,
            }
        })
        .collect();
    let default_time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
    };
    let form = FormView {
        from: if form.from.is_empty() { default_time(dag.start_date) } else { form.from },
        to: if form.to.is_empty() { default_time(Some(Utc::now())) } else { form.to },
        reprocess: form.reprocess.parse().unwrap_or_default(),
        conf: form.conf.clone(),
        max_active_runs: if form.max_active_runs.is_empty() {
            dag.max_active_runs.to_string()
        } else {
            form.max_active_runs
        },
    };
    let page = BackfillsPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · backfills")),
        h: Header::new(&rec, &dag, "backfills"),
        form,
        reprocess_choices: vec![
            ("none", "none: only dates without a run"),
            ("failed", "failed: also the failed instances of failed runs"),
            ("all", "all: also every finished run, whole"),
        ],
        preview,
        backfills,
        live,
        scheduled,
    };
    Ok(render(&page)?.into_response())
}

/// `POST /dags/{dag_id}/backfills`: creates the backfill the form describes.
pub(super) async fn create(
    State(state): State<AppState>,
    Path(dag_id): Path<String>,
    form: crate::web::pages::Form<BackfillForm>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let dag = crate::actions::active_dag(&state.store, &state.dags, &dag_id).await?;
    let req = request(&form.data, false)?;
    let actor = form.user.actor();
    let result = backfills::create_backfill(&state.store, &state.dags, &actor, &dag, req)
        .await
        .map(|done| match done.backfill {
            Some(b) => format!(
                "Backfill #{} created: {} run(s) queued, {} running again",
                b.id, b.queued, b.running
            ),
            None => "Nothing to backfill in this range".to_string(),
        });
    let back = format!("/dags/{}/backfills", url_encode(&dag_id));
    redirect_with(&state, &form.user, &back, Flash::of(result)?).await
}

/// `POST /dags/{dag_id}/backfills/{id}/{pause|unpause|cancel}`.
pub(super) async fn change(
    State(state): State<AppState>,
    Path((dag_id, id, what)): Path<(String, i64, String)>,
    form: crate::web::pages::Form<NoFields>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let actor = form.user.actor();
    let b = backfills::find_backfill(&state.store, id).await?;
    if b.dag_id != dag_id {
        return Err(WebError::NotFound(format!("no backfill {id} of DAG `{dag_id}`")));
    }
    let result = match what.as_str() {
        "pause" => {
            backfills::pause_backfill(&state.store, &actor, id, true).await.map(|_| "paused")
        }
        "unpause" => {
            backfills::pause_backfill(&state.store, &actor, id, false).await.map(|_| "resumed")
        }
        "cancel" => backfills::cancel_backfill(&state.store, &actor, id).await.map(|_| "cancelled"),
        other => {
            return Err(WebError::NotFound(format!(
                "no backfill action `{other}` (pause, unpause or cancel)"
            )));
        }
    }
    .map(|done| format!("Backfill #{id} {done}"));
    let back = format!("/dags/{}/backfills", url_encode(&dag_id));
    redirect_with(&state, &form.user, &back, Flash::of(result)?).await
}

/// A form with no field but its CSRF token.
#[derive(Deserialize)]
pub(super) struct NoFields {}
