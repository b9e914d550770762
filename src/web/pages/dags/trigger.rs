//! `/dags/{dag_id}/trigger`: the trigger form, one input per declared param (by its type: a
//! list for `enum` and booleans, a number input with the bounds, a JSON area for lists and
//! objects, text otherwise), plus run id, logical date and a free JSON object.
//!
//! Merge rules: each declared param is set through its own field, whose text is converted by
//! the param's type (`"50"` becomes the integer 50; an empty field means "not given", except
//! for a string with a default, where it is the empty string). The free JSON object may only
//! add keys the DAG does not declare: a declared param there is refused with a message, so it
//! can never silently override its field. The whole conf is then checked by
//! `dag::params::check_conf` (inside `actions::trigger`); refusals are shown beside their
//! fields with a 400, and nothing is created.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::super::{Chrome, Flash, Form, redirect_with, render, url_encode};
use crate::actions::{self, ActionError, ConfInput, TriggerRequest};
use crate::dag::Dag;
use crate::dag::params::{ConfErrors, ParamSpec, ParamType};
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// One param's input.
struct ParamField {
    name: String,
    /// What the param accepts, in words.
    expected: String,
    title: Option<String>,
    description: Option<String>,
    /// `text`, `number`, `select` or `json`.
    input: &'static str,
    /// Choices of a `select`.
    options: Vec<String>,
    value: String,
    /// Bounds of a number input, and its step (`1` for integers).
    min: String,
    max: String,
    step: &'static str,
    /// No default: the field must be filled.
    required: bool,
    /// Why the value sent was refused.
    error: Option<String>,
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

/// How a value appears in an input: strings raw, everything else as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn field(
    name: &str,
    spec: &ParamSpec,
    sent: Option<&String>,
    errors: Option<&ConfErrors>,
) -> ParamField {
    let non_null: Vec<ParamType> =
        spec.types.iter().copied().filter(|t| *t != ParamType::Null).collect();
    let (input, mut options) = match (&spec.allowed, non_null.as_slice()) {
        (Some(allowed), _) => ("select", allowed.iter().map(shown).collect()),
        (None, [ParamType::Boolean]) => ("select", vec!["true".into(), "false".into()]),
        (None, [ParamType::Integer | ParamType::Number]) => ("number", Vec::new()),
        (None, [ParamType::Array | ParamType::Object]) => ("json", Vec::new()),
        _ => ("text", Vec::new()),
    };
    if input == "select" && spec.default.is_none() {
        // Nothing chosen yet: an empty first choice, so the default is not guessed.
        options.insert(0, String::new());
    }
    let bound =
        |b: &Option<serde_json::Number>| b.as_ref().map(ToString::to_string).unwrap_or_default();
    ParamField {
        name: name.to_string(),
        expected: spec.expected(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        input,
        options,
        value: sent
            .cloned()
            .unwrap_or_else(|| spec.default.as_ref().map(shown).unwrap_or_default()),
        min: bound(&spec.minimum),
        max: bound(&spec.maximum),
        step: if non_null == [ParamType::Integer] { "1" } else { "any" },
        required: spec.fallback().is_none(),
        error: errors.and_then(|e| e.about(name)).map(str::to_string),
    }
}

fn fields(
    dag: &Dag,
    sent: &BTreeMap<String, String>,
    errors: Option<&ConfErrors>,
) -> Vec<ParamField> {
    dag.param_specs
        .iter()
        .map(|(name, spec)| field(name, spec, sent.get(&format!("param.{name}")), errors))
        .collect()
}

async fn form(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
) -> Result<Response, WebError> {
    user.require(Action::Operate)?;
    let (_, dag) = actions::stored_dag(&state.store, &state.dags, &dag_id).await?;
    let page = TriggerPage {
        chrome: Chrome::new(&user, "dags", format!("Trigger {dag_id}")),
        dag_id_url: url_encode(&dag_id),
        params: fields(&dag, &BTreeMap::new(), None),
        dag_id,
        run_id: String::new(),
        logical_date: String::new(),
        conf: String::new(),
        error: None,
    };
    Ok(render(&page)?.into_response())
}

/// The request a posted form stands for; a refusal of the form itself (bad JSON, bad date) is
/// an `Invalid`.
fn request(dag: &Dag, sent: &BTreeMap<String, String>) -> Result<TriggerRequest, ActionError> {
    let get = |k: &str| sent.get(k).map(String::as_str).unwrap_or_default();
    let typed = dag
        .param_specs
        .keys()
        .filter_map(|name| sent.get(&format!("param.{name}")).map(|v| (name.clone(), v.clone())))
        .collect();
    let extra = match get("conf").trim() {
        "" => serde_json::Map::new(),
        text => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ActionError::Invalid(
                    "configuration: must be a JSON object, like {\"key\": \"value\"}".into(),
                ));
            }
            Err(e) => {
                return Err(ActionError::Invalid(format!("configuration: not valid JSON ({e})")));
            }
        },
    };
    let logical = get("logical_date").trim();
    let logical_date =
        if logical.is_empty() { None } else { Some(super::super::parse_logical_date(logical)?) };
    // An empty run id field means "the default"; anything else is checked as typed.
    let run_id = Some(get("run_id").to_string()).filter(|r| !r.is_empty());
    Ok(TriggerRequest { conf: ConfInput::Form { typed, extra }, run_id, logical_date })
}

async fn submit(
    State(state): State<AppState>,
    Path(dag_id): Path<String>,
    form: Form<BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    form.user.require(Action::Operate)?;
    let dag = actions::active_dag(&state.store, &state.dags, &dag_id).await?;
    let sent = &form.data;
    let result = match request(&dag, sent) {
        Ok(req) => actions::trigger(&state.store, &form.user.actor(), &dag, req).await,
        Err(e) => Err(e),
    };
    let (status, errors, error) = match result {
        Ok(run) => {
            let to = format!("/dags/{}", url_encode(&dag_id));
            let done = Flash::Done(format!("Triggered run {}", run.run_id));
            return redirect_with(&state, &form.user, &to, done).await;
        }
        Err(ActionError::Conf(errs)) => {
            let n = errs.0.len();
            let msg = format!("Not triggered: {n} param(s) refused; see below");
            (axum::http::StatusCode::BAD_REQUEST, Some(errs), msg)
        }
        Err(e @ (ActionError::Invalid(_) | ActionError::Conflict(_))) => {
            let e = WebError::from(e);
            (e.status(), None, e.to_string())
        }
        Err(e) => return Err(e.into()),
    };
    let get = |k: &str| sent.get(k).cloned().unwrap_or_default();
    let page = TriggerPage {
        chrome: Chrome::new(&form.user, "dags", format!("Trigger {dag_id}")),
        dag_id_url: url_encode(&dag_id),
        params: fields(&dag, sent, errors.as_ref()),
        dag_id,
        run_id: get("run_id"),
        logical_date: get("logical_date"),
        conf: get("conf"),
        error: Some(error),
    };
    Ok((status, render(&page)?).into_response())
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/dags/{dag_id}/trigger", get(form).post(submit))
}

#[cfg(test)]
mod tests {
    use crate::web::pages::parse_logical_date;

    #[test]
    fn the_pickers_value_is_utc_and_an_offset_is_honoured() {
        let utc =
            |s: &str| parse_logical_date(s).map(|t| t.to_rfc3339()).map_err(|e| e.to_string());
        assert_eq!(utc("2026-01-31T10:30"), Ok("2026-01-31T10:30:00+00:00".into()));
        assert_eq!(utc("2026-01-31T10:30:15"), Ok("2026-01-31T10:30:15+00:00".into()));
        assert_eq!(utc("2026-01-31T10:30:00+02:00"), Ok("2026-01-31T08:30:00+00:00".into()));
        let bad = utc("31/01/2026").expect_err("refused");
        assert!(bad.contains("`31/01/2026` is not a date and time"), "{bad}");
    }
}
