//! Log files of tries: the raw text from a byte offset (for tailing by polling) and a
//! server-sent-events stream that follows a running try's log.
//!
//! Invariants: a log path is only ever derived with `worker::log_path` from a task instance
//! found in the store — never from request text — then canonicalized and checked to lie inside
//! `settings.log_dir()`. Ids containing `/`, `..`, `\` or NUL are refused with 400 before any
//! of that. A stream is bounded: it ends once its try is over and the file is fully sent, or
//! after [`STREAM_LIMIT`].

use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use crate::actions;
use crate::config::Settings;
use crate::model::TiId;
use crate::store::{Store, TiRow};
use crate::web::auth::{Action, Principal};
use crate::web::{AppState, WebError};

/// Most bytes one raw request returns; the client continues from `X-Log-Offset`.
const RAW_CHUNK: u64 = 4 * 1024 * 1024;
/// How often a stream looks at the file (and at the try's state).
const POLL: Duration = Duration::from_millis(300);
/// A stream never outlives this, whatever the try does.
const STREAM_LIMIT: Duration = Duration::from_secs(3600);
/// Most bytes a stream reads per poll, so a huge log does not sit in memory at once.
const STREAM_CHUNK: u64 = 256 * 1024;
/// A line longer than this is sent in pieces.
const MAX_LINE: usize = 64 * 1024;

pub(super) use crate::actions::check_ids;

/// The log file of try `n` of `ti` if it exists and lies inside the logs folder.
pub(super) async fn open_log(
    settings: &Settings,
    ti: &TiRow,
    n: i64,
) -> Result<Option<PathBuf>, WebError> {
    check_ids(&[&ti.dag_id, &ti.run_id, &ti.task_id])?;
    let candidate = crate::worker::log_path(settings, ti, n);
    Ok(inside(&settings.log_dir(), &candidate).await)
}

/// `path` canonicalized, if it exists and is inside `root` (symbolic links resolved).
async fn inside(root: &FsPath, path: &FsPath) -> Option<PathBuf> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let real = tokio::fs::canonicalize(path).await.ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// A part of a log made of whole lines: `text` is the file's bytes `start..end`.
#[derive(Debug, PartialEq)]
pub(super) struct LogPart {
    pub text: String,
    pub start: u64,
    pub end: u64,
    /// The number of the part's first line (1 for the file's first), when counting the lines
    /// before `start` reads at most [`COUNT_LINES_UP_TO`] bytes.
    pub first_line: Option<u64>,
}

/// Line numbers are given for parts that start within this many bytes of the file's start.
const COUNT_LINES_UP_TO: u64 = 64 * 1024 * 1024;

/// The whole lines that end at or before `before` (the file's end when None), starting at most
/// `limit` bytes earlier: a large log shows its end and loads earlier parts on demand, never a
/// line cut in half. A single line longer than `limit` is the only thing ever cut.
pub(super) async fn read_lines_before(
    path: &FsPath,
    before: Option<u64>,
    limit: u64,
) -> Result<LogPart, WebError> {
    let io = |e: std::io::Error| WebError::Internal(format!("reading {}: {e}", path.display()));
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let len = f.metadata().await.map_err(io)?.len();
    let end = before.unwrap_or(len).min(len);
    // Read one byte before the window too: a line break there means the window starts a line.
    let from = end.saturating_sub(limit).saturating_sub(1);
    f.seek(std::io::SeekFrom::Start(from)).await.map_err(io)?;
    let mut buf = Vec::with_capacity((end - from) as usize);
    (&mut f).take(end - from).read_to_end(&mut buf).await.map_err(io)?;
    // A line still being written at the end is left for the stream (or the next read).
    let keep_end = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if before.is_some() => buf.len(),
        None => 0,
    };
    // Start after the first line break in the window; at the file's start, at 0. A single line
    // longer than the window has no break before its end: it is cut at the window.
    let skip = if from == 0 {
        0
    } else {
        match buf[..keep_end].iter().position(|b| *b == b'\n') {
            Some(i) if i + 1 < keep_end => i + 1,
            _ => 1.min(keep_end),
        }
    };
    let start = from + skip as u64;
    let first_line = if start <= COUNT_LINES_UP_TO {
        f.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
        let mut head = Vec::with_capacity(start as usize);
        f.take(start).read_to_end(&mut head).await.map_err(io)?;
        Some(1 + head.iter().filter(|b| **b == b'\n').count() as u64)
    } else {
        None
    };
    Ok(LogPart {
        text: String::from_utf8_lossy(&buf[skip..keep_end]).into_owned(),
        start,
        end: from + keep_end as u64,
        first_line,
    })
}

/// Bytes of `path` from `offset`, at most `limit`.
async fn read_from(path: &FsPath, offset: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    if offset >= len {
        return Ok(Vec::new());
    }
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = Vec::with_capacity((len - offset).min(limit) as usize);
    f.take(limit).read_to_end(&mut buf).await?;
    Ok(buf)
}

#[derive(Deserialize, Default)]
pub(super) struct LogQuery {
    #[serde(default)]
    map_index: Option<i64>,
    /// Raw and stream: the byte to continue from.
    #[serde(default)]
    offset: Option<u64>,
    /// Raw: the whole lines before this byte instead (the page's "Load earlier").
    #[serde(default)]
    before: Option<u64>,
    /// Raw: the whole file as an attachment.
    #[serde(default)]
    download: Option<u8>,
}

/// Most bytes one "Load earlier" brings.
pub(super) const EARLIER_CHUNK: u64 = 256 * 1024;

type LogPath = Path<(String, String, String, i64)>;

/// The task instance and try a log URL names, checked to exist.
async fn find(
    state: &AppState,
    (dag_id, run_id, task_id, n): &(String, String, String, i64),
    map_index: i64,
) -> Result<TiRow, WebError> {
    check_ids(&[dag_id, run_id, task_id])?;
    let run = actions::find_run(&state.store, dag_id, run_id).await?;
    let ti = actions::find_ti(&state.store, &run, task_id, map_index).await?;
    if *n < 1 || *n > ti.try_number {
        return Err(WebError::NotFound(format!("task instance `{task_id}` has no try {n}")));
    }
    Ok(ti)
}

/// `GET .../logs/{try}`: the log from byte `offset`, as text; `X-Log-Offset` is where the
/// next request should continue. With `before`, the whole lines before that byte (at most
/// [`EARLIER_CHUNK`]), `X-Log-Start` saying where they start and `X-Log-First-Line` the number
/// of their first line. With `download=1`, the whole file as an attachment.
pub(super) async fn raw(
    State(state): State<AppState>,
    user: Principal,
    Path(key): LogPath,
    Query(q): Query<LogQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let ti = find(&state, &key, q.map_index.unwrap_or(-1)).await?;
    let path = open_log(&state.settings, &ti, key.3)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("try {} of `{}` has no log", key.3, key.2)))?;
    let io = |e: std::io::Error| WebError::Internal(format!("reading {}: {e}", path.display()));
    let mut resp = if q.download == Some(1) {
        let file = tokio::fs::File::open(&path).await.map_err(io)?;
        let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
        let name = format!("{}__{}__{}__try-{}.log", ti.dag_id, ti.run_id, ti.task_id, key.3);
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        let mut resp = body.into_response();
        let disposition = format!("attachment; filename=\"{name}\"");
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    } else if let Some(before) = q.before {
        let part = read_lines_before(&path, Some(before), EARLIER_CHUNK).await?;
        let mut resp = part.text.into_response();
        let h = resp.headers_mut();
        h.insert("x-log-start", HeaderValue::from(part.start));
        if let Some(n) = part.first_line {
            h.insert("x-log-first-line", HeaderValue::from(n));
        }
        resp
    } else {
        let offset = q.offset.unwrap_or(0);
        let bytes = read_from(&path, offset, RAW_CHUNK).await.map_err(io)?;
        let len = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
        let end = if bytes.is_empty() { offset.min(len) } else { offset + bytes.len() as u64 };
        let mut resp = bytes.into_response();
        resp.headers_mut().insert("x-log-offset", HeaderValue::from(end));
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET .../logs/{try}/stream`: the log from byte `offset` (0: all of it so far), then each new
/// line as it is written, one `data:` per line; an `end` event once the try is over and
/// everything was sent.
pub(super) async fn stream(
    State(state): State<AppState>,
    user: Principal,
    Path(key): LogPath,
    Query(q): Query<LogQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let ti = find(&state, &key, q.map_index.unwrap_or(-1)).await?;
    let candidate = crate::worker::log_path(&state.settings, &ti, key.3);
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    let follow = Follow {
        store: state.store.clone(),
        root: state.settings.log_dir(),
        path: candidate,
        ti_id: ti.id,
        try_number: key.3,
        offset: q.offset.unwrap_or(0),
    };
    tokio::spawn(follow.run(tx));
    let body =
        Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).keep_alive(KeepAlive::default());
    Ok(body.into_response())
}

/// One follower of one log file.
struct Follow {
    store: Store,
    root: PathBuf,
    path: PathBuf,
    ti_id: TiId,
    try_number: i64,
    /// Where to start reading.
    offset: u64,
}

impl Follow {
    /// Whether the try is over (or the instance gone): nothing more will be written.
    async fn finished(&self) -> bool {
        match self.store.get_ti(self.ti_id).await {
            Ok(Some(ti)) => crate::model::try_is_over(
                ti.state,
                ti.try_number,
                ti.first_poke_at.is_some(),
                self.try_number,
            ),
            Ok(None) | Err(_) => true,
        }
    }

    async fn run(self, tx: mpsc::Sender<Result<Event, Infallible>>) {
        let deadline = tokio::time::Instant::now() + STREAM_LIMIT;
        let mut offset = self.offset;
        let mut partial: Vec<u8> = Vec::new();
        loop {
            // Ask before reading: a try that is over has written everything we read next.
            let over = self.finished().await;
            let mut drained = false;
            while !drained {
                // The file may appear only once the try starts writing.
                let Some(real) = inside(&self.root, &self.path).await else { break };
                let bytes = read_from(&real, offset, STREAM_CHUNK).await.unwrap_or_default();
                drained = (bytes.len() as u64) < STREAM_CHUNK;
                offset += bytes.len() as u64;
                partial.extend_from_slice(&bytes);
                if !send_lines(&tx, &mut partial, false).await {
                    return;
                }
            }
            if over || tokio::time::Instant::now() >= deadline {
                if !send_lines(&tx, &mut partial, true).await {
                    return;
                }
                let _ = tx.send(Ok(Event::default().event("end").data("end"))).await;
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = tx.closed() => return,
            }
        }
    }
}

/// Sends every complete line of `buf` (and the rest too when `flush`); false once the
/// client has gone.
async fn send_lines(
    tx: &mpsc::Sender<Result<Event, Infallible>>,
    buf: &mut Vec<u8>,
    flush: bool,
) -> bool {
    let mut start = 0;
    let mut lines = Vec::new();
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' || i + 1 - start >= MAX_LINE {
            let end = if *b == b'\n' { i } else { i + 1 };
            lines.push(buf[start..end].to_vec());
            start = i + 1;
        }
    }
    if flush && start < buf.len() {
        lines.push(buf[start..].to_vec());
        start = buf.len();
    }
    buf.drain(..start);
    for line in lines {
        let text = String::from_utf8_lossy(&line).replace('\r', "");
        if tx.send(Ok(Event::default().data(text))).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_climb_are_refused() {
        for bad in ["..", "a/b", "x..y", "a\\b", "a\0b", ""] {
            assert!(check_ids(&["ok", bad]).is_err(), "{bad:?}");
        }
        assert!(check_ids(&["my_dag", "manual__2026-01-01T00:00:00+00:00", "task.1"]).is_ok());
    }

    #[tokio::test]
    async fn lines_are_split_and_the_rest_kept() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut buf = b"one\r\ntwo\nthr".to_vec();
        assert!(send_lines(&tx, &mut buf, false).await);
        assert_eq!(buf, b"thr");
        assert!(send_lines(&tx, &mut buf, true).await);
        assert!(buf.is_empty());
        drop(tx);
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn earlier_parts_are_whole_lines_and_count_the_lines_before_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("1.log");
        // 100 lines "line 000\n" .. "line 099\n", 9 bytes each, and a line being written.
        let mut text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        text.push_str("partial");
        std::fs::write(&path, &text).expect("write");
        // The end: whole lines only, the partial one left for the stream.
        let tail = read_lines_before(&path, None, 43).await.expect("tail");
        assert_eq!(tail.text, "line 096\nline 097\nline 098\nline 099\n");
        assert_eq!((tail.start, tail.end, tail.first_line), (96 * 9, 900, Some(97)));
        // Earlier: the lines before the tail's start, never starting mid-line.
        let earlier = read_lines_before(&path, Some(tail.start), 40).await.expect("earlier");
        assert_eq!(earlier.text, "line 092\nline 093\nline 094\nline 095\n");
        assert_eq!((earlier.start, earlier.end, earlier.first_line), (92 * 9, 96 * 9, Some(93)));
        let cut = read_lines_before(&path, Some(tail.start), 30).await.expect("earlier");
        assert_eq!((cut.text.as_str(), cut.start), ("line 093\nline 094\nline 095\n", 93 * 9));
        // The start of the file.
        let first = read_lines_before(&path, Some(18), 40).await.expect("first");
        assert_eq!(
            (first.text.as_str(), first.start, first.first_line),
            ("line 000\nline 001\n", 0, Some(1))
        );
        // The whole of a short log.
        let all = read_lines_before(&path, None, 1 << 20).await.expect("all");
        assert_eq!((all.start, all.end, all.text.lines().count()), (0, 900, 100));
        // One line longer than the limit is cut rather than lost.
        std::fs::write(&path, "x".repeat(100) + "\n").expect("write");
        let long = read_lines_before(&path, None, 40).await.expect("long");
        assert_eq!((long.text.len(), long.start, long.first_line), (40, 61, Some(1)));
    }

    #[tokio::test]
    async fn loading_earlier_parts_until_the_start_gives_every_line_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("1.log");
        let text: String =
            (1..=60_000).map(|i| format!("[2026-12-03T12:00:00.000Z] [out] line {i}\n")).collect();
        std::fs::write(&path, &text).expect("write");
        let mut part = read_lines_before(&path, None, 512 * 1024).await.expect("tail");
        let mut lines = part.text.lines().count();
        let mut parts = 1;
        while part.start > 0 && parts < 100 {
            let before = part.start;
            part = read_lines_before(&path, Some(before), EARLIER_CHUNK).await.expect("earlier");
            assert_eq!(part.end, before);
            let n = part.text.lines().count() as u64;
            assert_eq!(
                part.first_line.map(|f| f + n),
                Some(1 + text[..before as usize].lines().count() as u64)
            );
            lines += n as usize;
            parts += 1;
        }
        assert_eq!((part.start, lines), (0, 60_000));
    }

    #[tokio::test]
    async fn paths_outside_the_root_are_not_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("logs");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(root.join("a.log"), "x").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        assert!(inside(&root, &root.join("a.log")).await.is_some());
        assert!(inside(&root, &root.join("../secret")).await.is_none());
        assert!(inside(&root, &root.join("missing.log")).await.is_none());
    }
}
