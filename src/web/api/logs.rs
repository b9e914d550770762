//! `GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}`:
//! the log of one try from a byte offset, for tailing.
//!
//! Invariant: only files under `settings.log_dir()` are ever opened. The file is derived from
//! the task instance's key with `worker::log_path` (never taken from the request or the
//! database), ids holding `/`, `..` or NUL are refused before any lookup, and the canonical
//! path is checked to lie inside the canonical log folder (a symlink cannot lead out).

use std::io::SeekFrom;
use std::path::Path;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{ApiError, PathArgs, Principal, QueryArgs};
use crate::actions;
use crate::web::auth::Action;
use crate::web::{AppState, WebError};

/// Most bytes one response carries; a client tails a bigger log in several calls.
const MAX_CHUNK: u64 = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogArgs {
    map_index: Option<i64>,
    /// Byte offset to read from: the `offset` of the previous answer (0 to `i64::MAX`, the
    /// range the document gives).
    offset: Option<i64>,
}

#[derive(Debug, Serialize)]
pub(super) struct LogChunk {
    /// Text from the asked offset (at most 1 MiB, cut at a character boundary).
    content: String,
    /// Where the content ends: pass it as `offset` to get what follows.
    offset: u64,
    /// The try is over: once a read at `offset` returns nothing, nothing more will come.
    finished: bool,
}

type LogPath = (String, String, String, i64);

/// The handler.
pub(super) async fn get(
    State(state): State<AppState>,
    user: Principal,
    PathArgs((dag_id, run_id, task_id, try_number)): PathArgs<LogPath>,
    QueryArgs(q): QueryArgs<LogArgs>,
) -> Result<Json<LogChunk>, ApiError> {
    user.require(Action::Read)?;
    actions::check_ids(&[&dag_id, &run_id, &task_id])?;
    let run = actions::find_run(&state.store, &dag_id, &run_id).await?;
    let ti = actions::find_ti(&state.store, &run, &task_id, q.map_index.unwrap_or(-1)).await?;
    if try_number < 1 || try_number > ti.try_number {
        return Err(WebError::NotFound(format!(
            "no try {try_number} of `{task_id}`: it has had {} tries",
            ti.try_number
        ))
        .into());
    }
    let finished =
        crate::model::try_is_over(ti.state, ti.try_number, ti.first_poke_at.is_some(), try_number);
    let file = crate::worker::log_path(&state.settings, &ti, try_number);
    let offset = u64::try_from(q.offset.unwrap_or(0))
        .map_err(|_| WebError::BadRequest("query parameter `offset`: below 0".into()))?;
    let (content, offset) = read_from(&state.settings.log_dir(), &file, offset).await?;
    Ok(Json(LogChunk { content, offset, finished }))
}

/// Reads `file` (which must lie inside `root`) from `offset`: the text and its end offset. A
/// log not written yet reads as empty; an offset past the end reads nothing and gives the end.
async fn read_from(root: &Path, file: &Path, offset: u64) -> Result<(String, u64), WebError> {
    let real = match tokio::fs::canonicalize(file).await {
        Ok(real) => real,
        // Not written yet: empty so far, whatever the offset.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((String::new(), 0)),
        Err(e) => return Err(WebError::Internal(format!("log {}: {e}", file.display()))),
    };
    let root = tokio::fs::canonicalize(root)
        .await
        .map_err(|e| WebError::Internal(format!("log folder {}: {e}", root.display())))?;
    if !real.starts_with(&root) {
        return Err(WebError::BadRequest("the log path leads outside the log folder".into()));
    }
    let io = |e: std::io::Error| WebError::Internal(format!("log {}: {e}", real.display()));
    let mut f = tokio::fs::File::open(&real).await.map_err(io)?;
    let len = f.metadata().await.map_err(io)?.len();
    // Past the end (as the raw log page answers): nothing, and where the log really ends, so
    // a client that overshot continues from there.
    if offset > len {
        return Ok((String::new(), len));
    }
    f.seek(SeekFrom::Start(offset)).await.map_err(io)?;
    let mut buf = Vec::with_capacity((len - offset).min(MAX_CHUNK) as usize);
    f.take(MAX_CHUNK).read_to_end(&mut buf).await.map_err(io)?;
    // A chunk may end inside a multi-byte character (cut by MAX_CHUNK or a write in
    // progress): stop before it, so the next read starts on a character boundary.
    let keep = match std::str::from_utf8(&buf) {
        Ok(_) => buf.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => buf.len(),
    };
    let text = String::from_utf8_lossy(&buf[..keep]).into_owned();
    Ok((text, offset + keep as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_from_offset_and_stops_at_a_character_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("1.log");
        std::fs::write(&file, "héllo\n").expect("write");
        let (text, end) = read_from(dir.path(), &file, 0).await.expect("read");
        assert_eq!((text.as_str(), end), ("héllo\n", 7));
        let (text, end) = read_from(dir.path(), &file, 3).await.expect("read");
        assert_eq!((text.as_str(), end), ("llo\n", 7));
        let (text, end) = read_from(dir.path(), &file, 100).await.expect("past the end");
        assert_eq!((text.as_str(), end), ("", 7), "nothing, and where the log ends");
        let missing = dir.path().join("2.log");
        assert_eq!(read_from(dir.path(), &missing, 5).await.expect("missing"), (String::new(), 0));
        // Half of `é` written so far: nothing past `h` is returned yet.
        std::fs::write(&file, [b'h', 0xC3]).expect("write");
        let (text, end) = read_from(dir.path(), &file, 0).await.expect("read");
        assert_eq!((text.as_str(), end), ("h", 1));
        let outside = tempfile::tempdir().expect("tempdir");
        assert!(read_from(outside.path(), &file, 0).await.is_err());
    }
}
