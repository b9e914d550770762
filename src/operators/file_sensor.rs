//! `type: file_sensor`: one poke, done when a file matches the path or glob.
//!
//! This file owns what "the condition is met" means for files. It must not loop or sleep: a poke
//! answers once, at once; waiting `poke_interval` between pokes (holding no executor slot) and
//! applying `timeout` and `soft_fail` happen outside operators.

use serde_json::Value;

use super::{OperatorError, Outcome, TaskContext};
use crate::dag::kinds::FileSensorTask;

/// At most this many matching paths are returned as XCom: a glob over a big folder must not
/// put thousands of names in the metadata database.
const MAX_PATHS: usize = 1000;

/// Done with the list of matching paths when the rendered path (a glob) matches anything.
pub async fn run(ctx: &TaskContext, task: &FileSensorTask) -> Result<Outcome, OperatorError> {
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
