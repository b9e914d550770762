//! The DAG list (search, tag / owner / status filters, 50 a page, recent run dots, import
//! errors), the pause toggle and the trigger form with the DAG's params.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Chrome, Form, bool_field, fmt_time, redirect_with, render, url_encode};
use crate::model::DagRunState;
use crate::store::DagFilter;
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError, actions};

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
    #[serde(default)]
    flash: Option<String>,
}

impl ListQuery {
    fn url(&self, page: i64) -> String {
        format!(
            "/dags?q={}&tag={}&owner={}&status={}&page={page}",
            url_encode(&self.q),
            url_encode(&self.tag),
            url_encode(&self.owner),
            url_encode(&self.status)
        )
    }
}

struct Row {
    dag_id: String,
    dag_id_url: String,
    paused: bool,
    tags: Vec<String>,
    description: Option<String>,
    owner: String,
    schedule: String,
    next_run: String,
    last_run: String,
    /// (run id for URLs, state, logical date)
    recent: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "dags.html")]
struct DagsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    import_errors: Vec<String>,
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
        search: Some(q.q.clone()),
        tag: Some(q.tag.clone()),
        owner: Some(q.owner.clone()),
        paused: match q.status.as_str() {
            "paused" => Some(true),
            "active" => Some(false),
            _ => None,
        },
    };
    let page = q.page.unwrap_or(1).max(1);
    let (dags, total) = state.store.dag_page(&filter, (page - 1) * PAGE, PAGE).await?;
    let ids: Vec<String> = dags.iter().map(|d| d.dag_id.clone()).collect();
    let mut recent = state.store.recent_runs(&ids, DOTS).await?;
    let (all_tags, all_owners) = state.facets().await?;
    let import_errors = state.store.import_errors().await?.iter().map(|e| e.to_string()).collect();
    let mut any_running = false;
    let rows = dags
        .into_iter()
        .map(|d| {
            let runs = recent.remove(&d.dag_id).unwrap_or_default();
            any_running |=
                runs.iter().any(|r| matches!(r.state, DagRunState::Running | DagRunState::Queued));
            Row {
                dag_id_url: url_encode(&d.dag_id),
                paused: d.is_paused,
                tags: d.tags,
                description: d.description,
                owner: d.owner,
                schedule: d.schedule.unwrap_or_else(|| "manual".into()),
                next_run: if d.is_paused { "paused".into() } else { fmt_time(d.next_dagrun) },
                last_run: fmt_time(runs.first().map(|r| r.logical_date)),
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
        chrome: Chrome::new(&user, "dags", "DAGs").flash(q.flash.clone()),
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
    actions::set_paused(&state, &form.user, &dag_id, paused).await?;
    Ok(Redirect::to(crate::web::redirect::safe_next(&form.data.next)).into_response())
}

struct ParamField {
    name: String,
    kind: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "trigger.html")]
struct TriggerPage {
    chrome: Chrome,
    dag_id: String,
    dag_id_url: String,
    params: Vec<ParamField>,
    run_id: String,
    logical_date: String,
    conf: String,
    error: Option<String>,
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::String(_) => "text",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Bool(_) => "true/false",
        serde_json::Value::Null => "any JSON",
        serde_json::Value::Array(_) => "JSON list",
        serde_json::Value::Object(_) => "JSON object",
    }
}

/// How a param's value appears in its input: strings raw, everything else as JSON.
fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn trigger_form(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
) -> Result<Response, WebError> {
    user.require(Action::Operate)?;
    let (_, dag) = state.dag(&dag_id).await?;
    let params = dag
        .params
        .iter()
        .map(|(k, v)| ParamField { name: k.clone(), kind: kind_of(v), value: shown(v) })
        .collect();
    let page = TriggerPage {
        chrome: Chrome::new(&user, "dags", format!("Trigger {dag_id}")),
        dag_id_url: url_encode(&dag_id),
        dag_id,
        params,
        run_id: String::new(),
        logical_date: String::new(),
        conf: String::new(),
        error: None,
    };
    Ok(render(&page)?.into_response())
}

/// Turns the trigger form's fields into the run's conf. A param whose default is not text
/// must be valid JSON of the same kind; the error names the param.
fn conf_from_form(
    declared: &serde_json::Map<String, serde_json::Value>,
    fields: &std::collections::BTreeMap<String, String>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut conf = serde_json::Map::new();
    for (name, default) in declared {
        let Some(raw) = fields.get(&format!("param.{name}")) else { continue };
        let value = match default {
            serde_json::Value::String(_) => serde_json::Value::String(raw.clone()),
            _ => {
                let v: serde_json::Value = serde_json::from_str(raw.trim())
                    .map_err(|e| format!("param `{name}`: `{raw}` is not valid JSON ({e})"))?;
                if !default.is_null() && kind_of(&v) != kind_of(default) {
                    return Err(format!(
                        "param `{name}`: expected {}, got {}",
                        kind_of(default),
                        kind_of(&v)
                    ));
                }
                v
            }
        };
        conf.insert(name.clone(), value);
    }
    if let Some(extra) = fields.get("conf").filter(|c| !c.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(extra)
            .map_err(|e| format!("configuration: not valid JSON ({e})"))?;
        let serde_json::Value::Object(map) = v else {
            return Err("configuration: must be a JSON object, like {\"key\": \"value\"}".into());
        };
        conf.extend(map);
    }
    Ok(conf)
}

async fn trigger(
    State(state): State<AppState>,
    Path(dag_id): Path<String>,
    form: Form<std::collections::BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let (_, dag) = state.dag(&dag_id).await?;
    let fields = &form.data;
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let logical = get("logical_date");
    let result = async {
        let conf = conf_from_form(&dag.params, fields).map_err(WebError::BadRequest)?;
        let when = if logical.trim().is_empty() {
            None
        } else {
            Some(
                chrono::DateTime::parse_from_rfc3339(logical.trim())
                    .map_err(|e| {
                        WebError::BadRequest(format!(
                            "logical date `{logical}`: {e} (use e.g. 2026-01-31T00:00:00Z)"
                        ))
                    })?
                    .with_timezone(&chrono::Utc),
            )
        };
        actions::trigger(&state, &form.user, &dag_id, conf, Some(get("run_id")), when).await
    }
    .await;
    match result {
        Ok(run) => Ok(redirect_with(
            &format!("/dags/{}", url_encode(&dag_id)),
            &format!("Triggered run {}", run.run_id),
        )
        .into_response()),
        Err(e @ (WebError::BadRequest(_) | WebError::Conflict(_))) => {
            let status = e.status();
            let params = dag
                .params
                .iter()
                .map(|(k, v)| ParamField {
                    name: k.clone(),
                    kind: kind_of(v),
                    value: fields.get(&format!("param.{k}")).cloned().unwrap_or_else(|| shown(v)),
                })
                .collect();
            let page = TriggerPage {
                chrome: Chrome::new(&form.user, "dags", format!("Trigger {dag_id}")),
                dag_id_url: url_encode(&dag_id),
                dag_id: dag_id.clone(),
                params,
                run_id: get("run_id"),
                logical_date: logical,
                conf: get("conf"),
                error: Some(e.to_string()),
            };
            Ok((status, render(&page)?).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dags", get(list))
        .route("/dags/{dag_id}/pause", post(pause))
        .route("/dags/{dag_id}/trigger", get(trigger_form).post(trigger))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_keep_their_kind_and_errors_name_the_param() {
        let declared =
            json!({"n": 3, "name": "x", "flag": false}).as_object().cloned().unwrap_or_default();
        let mut f = std::collections::BTreeMap::new();
        f.insert("param.n".to_string(), "7".to_string());
        f.insert("param.name".to_string(), "42".to_string());
        f.insert("param.flag".to_string(), "true".to_string());
        let conf = conf_from_form(&declared, &f).expect("valid");
        assert_eq!(conf["n"], json!(7));
        assert_eq!(conf["name"], json!("42"));
        assert_eq!(conf["flag"], json!(true));
        f.insert("param.n".to_string(), "seven".to_string());
        let err = conf_from_form(&declared, &f).expect_err("bad number");
        assert!(err.starts_with("param `n`"), "{err}");
        f.insert("param.n".to_string(), "\"7\"".to_string());
        let err = conf_from_form(&declared, &f).expect_err("wrong kind");
        assert!(err.contains("expected number, got text"), "{err}");
        f.insert("param.n".to_string(), "1".to_string());
        f.insert("conf".to_string(), "[1]".to_string());
        assert!(conf_from_form(&declared, &f).expect_err("not object").contains("JSON object"));
    }
}
