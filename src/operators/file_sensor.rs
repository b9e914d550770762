//! `type: file_sensor` and `type: http_sensor`: one poke each.
//!
//! This file owns what "the condition is met" means for files and HTTP endpoints. It must not
//! loop or sleep: the scheduler re-queues a sensor after `poke_interval` (holding no executor
//! slot meanwhile) and applies `timeout` and `soft_fail`; a poke answers once, at once.

use serde_json::Value;

use super::http::{self, HttpResponse};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::{FileSensorTask, HttpSensorTask};

/// At most this many matching paths are returned as XCom: a glob over a big folder must not
/// put thousands of names in the metadata database.
const MAX_PATHS: usize = 1000;

/// Done with the list of matching paths when the rendered path (a glob) matches anything.
pub async fn file(ctx: &TaskContext, task: &FileSensorTask) -> Result<Outcome, OperatorError> {
    let pattern = ctx.render("path", &task.path)?;
    // Walking folders is blocking I/O: keep it off the async workers.
    let pat = pattern.clone();
    let (found, total) = tokio::task::spawn_blocking(move || matches(&pat))
        .await
        .map_err(|e| OperatorError::Retryable(format!("file sensor: {e}")))??;
    if found.is_empty() {
        return Ok(Outcome::NotYet(format!("no file matches `{pattern}`")));
    }
    ctx.log.line(format!("{total} file(s) match `{pattern}`"));
    Ok(Outcome::Done(Some(Value::Array(found))))
}

/// The matching paths (at most [`MAX_PATHS`]) and how many there are.
fn matches(pattern: &str) -> Result<(Vec<Value>, usize), OperatorError> {
    let paths = glob::glob(pattern)
        .map_err(|e| OperatorError::Fatal(format!("`{pattern}` is not a valid glob: {e}")))?;
    let mut found = Vec::new();
    let mut total = 0usize;
    // Unreadable entries (permissions) are skipped: they may become readable later.
    for path in paths.flatten() {
        total += 1;
        if found.len() < MAX_PATHS {
            found.push(Value::String(path.display().to_string()));
        }
    }
    Ok((found, total))
}

/// One request. With `response_check`, done when the check renders truthy; without it, done
/// on an expected status. A 404 means "not there yet"; other errors are those of `http`.
pub async fn http(ctx: &TaskContext, task: &HttpSensorTask) -> Result<Outcome, OperatorError> {
    let req = &task.request;
    let resp = http::request(ctx, req).await?;
    if resp.status == 404 && !req.expected_status.contains(&404) {
        return Ok(Outcome::NotYet("the endpoint answered 404 Not Found".into()));
    }
    http::check_status(req, &resp)?;
    let Some(check) = &task.response_check else {
        return Ok(Outcome::Done(Some(resp.xcom())));
    };
    let verdict = check_response(ctx, check, &resp)?;
    if truthy(&verdict) {
        Ok(Outcome::Done(Some(resp.xcom())))
    } else {
        Ok(Outcome::NotYet(format!("response_check gave `{}`", verdict.trim())))
    }
}

/// Renders the check with the `response` variable (status, text, json, headers).
fn check_response(
    ctx: &TaskContext,
    check: &str,
    resp: &HttpResponse,
) -> Result<String, OperatorError> {
    let mut renderer = ctx.renderer();
    renderer.set("response", &resp.template_value());
    let out = renderer.render(check)?;
    ctx.record("response_check", Value::String(out.clone()));
    Ok(out)
}

/// Python-like truth of a rendered check: false when empty or a spelling of false or none.
fn truthy(text: &str) -> bool {
    !matches!(text.trim(), "" | "false" | "False" | "0" | "none" | "None")
}

#[cfg(test)]
mod tests {
    use super::truthy;

    #[test]
    fn truth_of_rendered_checks() {
        for t in ["true", "True", "1", "yes", "ok", " x "] {
            assert!(truthy(t), "{t}");
        }
        for f in ["", "  ", "false", "False", "0", "none", "None", "\nFalse\n"] {
            assert!(!truthy(f), "{f:?}");
        }
    }
}
