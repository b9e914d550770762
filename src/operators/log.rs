//! The log of one try: a file the UI tails while the task runs.
//!
//! This file owns the on-disk format of task logs and the masking of secrets in them. Every
//! line starts with the UTC time it was written, `[2026-01-01T00:00:00.000Z] `; Updraft's own
//! lines follow with their message, a command's output with its stream, `[out] ` or `[err] `,
//! then the line as the command printed it (ANSI colours and `::group::` markers included:
//! the web UI renders them, `templates/static/app.js` `logLine`). It must not buffer: every line is written and
//! flushed at once, because the UI reads the file while it grows and a crash must not lose the
//! last lines (they are usually the ones that explain the crash). It must never write a
//! registered secret: masking happens here, on the one path every write takes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;

/// Secrets shorter than this are not masked: masking a one- or two-character password would
/// replace that text everywhere in the log and make it unreadable, while such a password
/// protects nothing anyway. (Airflow has the same kind of floor.)
const MIN_SECRET_LEN: usize = 3;

/// What replaces a secret in the log.
const MASK: &str = "***";

/// Handle on one try's log file. Cheap to clone: clones share the file and the secrets, so
/// the stdout and stderr readers of a command write through the same handle.
#[derive(Clone)]
pub struct TaskLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// The file path; `None` for [`TaskLog::sink`].
    path: Option<PathBuf>,
    /// The open file; a mutex so that concurrent writers never interleave within a line.
    file: Option<Mutex<File>>,
    /// Strings replaced by `***`, longest first so that a secret containing another one is
    /// masked whole.
    secrets: RwLock<Vec<String>>,
    /// Set after the first failed write, so a full disk is reported once, not per line.
    write_failed: AtomicBool,
}

impl std::fmt::Debug for TaskLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets themselves.
        f.debug_struct("TaskLog").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl TaskLog {
    /// Opens (creating it and its parent folders) the log file at `path` for appending: a
    /// sensor's re-pokes and a resumed try add to the same file instead of erasing it.
    pub fn open(path: impl AsRef<Path>) -> io::Result<TaskLog> {
        let path = path.as_ref();
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // Logs may hold what a task printed: this user only (folders 0700, files 0600).
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        Ok(TaskLog::with(Some(path.to_path_buf()), Some(file)))
    }

    /// A log that writes nowhere, for tests and for callers that have no file.
    pub fn sink() -> TaskLog {
        TaskLog::with(None, None)
    }

    fn with(path: Option<PathBuf>, file: Option<File>) -> TaskLog {
        TaskLog {
            inner: Arc::new(Inner {
                path,
                file: file.map(Mutex::new),
                secrets: RwLock::new(Vec::new()),
                write_failed: AtomicBool::new(false),
            }),
        }
    }

    /// The file written to; `None` for a sink.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Writes `[<RFC 3339 UTC time with milliseconds>] msg` as one line.
    pub fn line(&self, msg: impl AsRef<str>) {
        self.write(&format!("[{}] {}\n", stamp(), msg.as_ref()));
    }

    /// Writes one line a command printed on `stream`, stamped with the time it is written (a
    /// trailing line break is dropped: the line gets exactly one).
    pub fn output(&self, stream: Stream, text: impl AsRef<str>) {
        let text = text.as_ref().strip_suffix('\n').unwrap_or(text.as_ref());
        self.write(&format!("[{}] [{}] {text}\n", stamp(), stream.tag()));
    }

    /// Registers a string that is replaced by `***` in everything written from now on, and in
    /// what [`TaskLog::mask`] returns. Empty and very short strings are ignored (see
    /// [`MIN_SECRET_LEN`]).
    pub fn add_secret(&self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.chars().count() < MIN_SECRET_LEN {
            return;
        }
        let Ok(mut secrets) = self.inner.secrets.write() else { return };
        if !secrets.contains(&secret) {
            secrets.push(secret);
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every registered secret replaced by `***`. Operators use it for error
    /// messages too, which end up in the UI.
    pub fn mask(&self, text: &str) -> String {
        let Ok(secrets) = self.inner.secrets.read() else {
            // A writer panicked while holding the lock: hide everything rather than leak.
            return MASK.to_string();
        };
        let mut out = text.to_string();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// `value` with every registered secret masked in every string it holds (not in object
    /// keys), for rendered fields, XCom and errors that the UI and the API show. Strings are
    /// masked one by one, so a secret holding a quote or a backslash is still found (it would
    /// be escaped in the JSON text).
    pub fn mask_value(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.mask_value(v)).collect())
            }
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, self.mask_value(v))).collect())
            }
            other => other,
        }
    }

    fn write(&self, text: &str) {
        let Some(file) = &self.inner.file else { return };
        let text = self.mask(text);
        // One write per line under the lock: lines from stdout and stderr never interleave.
        // A failure (full disk) must not fail the task, so it is reported once, not returned.
        let result = match file.lock() {
            Ok(mut f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
            Err(_) => Err(io::Error::other("log file lock poisoned")),
        };
        if let Err(e) = result
            && !self.inner.write_failed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(path = ?self.inner.path, error = %e, "cannot write task log");
        }
    }
}

/// Which output of a command a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The tag written after the time stamp.
    fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        }
    }
}

fn stamp() -> impl std::fmt::Display {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(log: &TaskLog) -> String {
        std::fs::read_to_string(log.path().unwrap()).unwrap()
    }

    #[test]
    fn every_line_is_stamped_and_output_names_its_stream() {
        let dir = tempfile::tempdir().unwrap();
        let log = TaskLog::open(dir.path().join("a/b/1.log")).unwrap();
        log.line("starting");
        log.output(Stream::Stdout, "output line");
        log.output(Stream::Stderr, "with newline\n");
        let text = read(&log);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // [2026-01-01T00:00:00.000Z] starting
        for line in &lines {
            assert!(line.starts_with("[20") && line.find("Z] ") == Some(24), "{line}");
            assert!(chrono::DateTime::parse_from_rfc3339(&line[1..25]).is_ok(), "{line}");
        }
        assert_eq!(&lines[0][27..], "starting");
        assert_eq!(&lines[1][27..], "[out] output line");
        assert_eq!(&lines[2][27..], "[err] with newline");
    }

    #[test]
    fn appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        TaskLog::open(&path).unwrap().line("first");
        TaskLog::open(&path).unwrap().line("second");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("] first\n[") && text.ends_with("] second\n"), "{text}");
    }

    #[test]
    fn secrets_are_masked_from_registration_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = TaskLog::open(dir.path().join("1.log")).unwrap();
        log.output(Stream::Stdout, "before s3cret");
        log.add_secret("s3cret");
        log.add_secret("s3cret-long");
        log.add_secret("ab"); // too short to mask
        let clone = log.clone();
        clone.output(Stream::Stderr, "after s3cret and s3cret-long, ab");
        log.line("pw=s3cret");
        let text = read(&log);
        assert!(text.lines().next().unwrap().ends_with("[out] before s3cret"), "{text}");
        assert!(text.contains("[err] after *** and ***, ab\n"), "{text}");
        assert!(text.trim_end().ends_with("pw=***"), "{text}");
        assert_eq!(log.mask("x s3cret y"), "x *** y");
        assert!(!format!("{log:?}").contains("s3cret"));
    }

    #[test]
    fn json_values_are_masked_string_by_string() {
        let log = TaskLog::sink();
        log.add_secret("pa\"ss");
        let v = serde_json::json!({"env": {"PW": "x pa\"ss y"}, "n": 3, "list": ["pa\"ss"]});
        let masked = log.mask_value(v);
        assert_eq!(masked, serde_json::json!({"env": {"PW": "x *** y"}, "n": 3, "list": ["***"]}));
    }

    #[test]
    fn sink_writes_nowhere() {
        let log = TaskLog::sink();
        log.line("nothing");
        log.add_secret("hidden");
        assert_eq!(log.path(), None);
        assert_eq!(log.mask("hidden"), "***");
    }
}
