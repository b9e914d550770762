//! `type: external_task_sensor`: waits for a task (or a whole run) of another DAG.
//!
//! This file owns the matching of runs across DAGs (by logical date, as Airflow does) and the
//! comparison of their states with `allowed_states` / `failed_states`. It only reads the
//! store: it must never change another DAG's runs or task instances.

use chrono::{DateTime, NaiveDate, Utc};

use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::ExternalTaskSensorTask;

/// One poke: done when the external task (all its mapped instances) or run is in an allowed
/// state, fatal when any is in a failed state, not yet otherwise.
pub async fn run(
    ctx: &TaskContext,
    task: &ExternalTaskSensorTask,
) -> Result<Outcome, OperatorError> {
    let date = match &task.logical_date {
        Some(text) => parse_date(&ctx.render("logical_date", text)?)?,
        None => ctx.run.logical_date,
    };
    let dag_id = &task.external_dag_id;
    let run = ctx
        .store
        .find_run_by_logical_date(dag_id, date)
        .await
        .map_err(|e| OperatorError::Retryable(format!("reading runs of `{dag_id}`: {e}")))?;
    let Some(run) = run else {
        return Ok(Outcome::NotYet(format!(
            "DAG `{dag_id}` has no run with logical date {}",
            date.to_rfc3339()
        )));
    };
    let allowed = |s: &str| task.allowed_states.iter().any(|a| a == s);
    let failed = |s: &str| task.failed_states.iter().any(|f| f == s);

    let Some(task_id) = &task.external_task_id else {
        let state = run.state.as_str();
        let what = format!("run `{}` of DAG `{dag_id}` is {state}", run.run_id);
        return if failed(state) {
            Err(OperatorError::Fatal(what))
        } else if allowed(state) {
            ctx.log.line(&what);
            Ok(Outcome::Done(None))
        } else {
            Ok(Outcome::NotYet(what))
        };
    };

    let tis = ctx.store.run_tis(run.id).await.map_err(|e| {
        OperatorError::Retryable(format!("reading task instances of `{dag_id}`: {e}"))
    })?;
    let tis: Vec<_> = tis.into_iter().filter(|ti| &ti.task_id == task_id).collect();
    if tis.is_empty() {
        return Ok(Outcome::NotYet(format!(
            "run `{}` of DAG `{dag_id}` has no task `{task_id}` (yet)",
            run.run_id
        )));
    }
    let name = |map_index: i64| match map_index {
        -1 => format!("task `{task_id}`"),
        i => format!("task `{task_id}` [{i}]"),
    };
    if let Some(ti) = tis.iter().find(|ti| failed(ti.state.as_str())) {
        return Err(OperatorError::Fatal(format!(
            "{} of DAG `{dag_id}` (run `{}`) is {}",
            name(ti.map_index),
            run.run_id,
            ti.state
        )));
    }
    if let Some(ti) = tis.iter().find(|ti| !allowed(ti.state.as_str())) {
        return Ok(Outcome::NotYet(format!(
            "{} of DAG `{dag_id}` (run `{}`) is {}",
            name(ti.map_index),
            run.run_id,
            ti.state
        )));
    }
    ctx.log.line(format!(
        "task `{task_id}` of DAG `{dag_id}` (run `{}`) is done: {} instance(s)",
        run.run_id,
        tis.len()
    ));
    Ok(Outcome::Done(None))
}

/// An RFC 3339 time, or a `YYYY-MM-DD` date meaning midnight UTC.
fn parse_date(text: &str) -> Result<DateTime<Utc>, OperatorError> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map(|d| d.and_time(Default::default()).and_utc())
        .map_err(|_| {
            OperatorError::Fatal(format!(
                "logical_date `{t}` is neither an RFC 3339 time nor a YYYY-MM-DD date"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::parse_date;
    use chrono::{TimeZone, Utc};

    #[test]
    fn dates() {
        let midnight = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(parse_date("2026-01-02").unwrap(), midnight);
        assert_eq!(parse_date(" 2026-01-02T00:00:00+00:00 ").unwrap(), midnight);
        assert_eq!(parse_date("2026-01-02T01:00:00+01:00").unwrap(), midnight);
        assert!(parse_date("tomorrow").unwrap_err().to_string().contains("tomorrow"));
    }
}
