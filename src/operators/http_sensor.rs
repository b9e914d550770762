//! `type: http_sensor`: one request per poke, done on an expected answer.
//!
//! This file owns what "the condition is met" means for HTTP endpoints. It must not loop or
//! sleep: a poke answers once, at once; waiting `poke_interval` between pokes (holding no
//! executor slot) and applying `timeout` and `soft_fail` happen outside operators.

use serde_json::Value;

use super::http::{self, HttpResponse};
use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::HttpSensorTask;

/// One request. With `response_check`, done when the check renders truthy; without it, done
/// on an expected status. A 404 means "not there yet"; other errors are those of `http`.
pub async fn run(ctx: &TaskContext, task: &HttpSensorTask) -> Result<Outcome, OperatorError> {
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
