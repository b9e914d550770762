//! `type: sql`: one statement (`sql:`) or a script of several (`script:`) on one connection,
//! in one transaction unless `autocommit: true`; the last statement's rows become the XCom
//! (bounded) or a JSON-lines file in the run's folder.
//!
//! This file owns the order of things in a try: connect, begin, each statement (logged with
//! its line, rows and time), commit — or roll back on the first failure, so a failed task
//! leaves nothing behind — and what the rows become.
//!
//! Invariants: with a transaction, nothing is committed unless every statement succeeded; a
//! cancel or timeout stops the running statement on the server before the try ends (`Db`);
//! the XCom never exceeds [`XCOM_MAX_ROWS`] rows or [`XCOM_MAX_BYTES`] bytes, and the log says
//! when it was cut.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::prepare::{Ready, prepare};
use super::{Db, DbError, DbRow};
use crate::dag::kinds::{Fetch, Script, SqlTask};
use crate::operators::{OperatorError, Outcome, TaskContext, log_path};

/// At most this many rows go to the XCom (Airflow keeps XComs small too; `output:` takes any
/// number).
pub const XCOM_MAX_ROWS: usize = 1000;
/// At most this many bytes of JSON rows go to the XCom.
pub const XCOM_MAX_BYTES: usize = 1 << 20;

/// Runs the task's statements.
pub async fn run(ctx: &TaskContext, task: &SqlTask) -> Result<Outcome, OperatorError> {
    let id = ctx.task.task_id.clone();
    let conn = connection(ctx, &task.connection)?;
    let dialect = Db::dialect_of(&conn)
        .map_err(|e| OperatorError::Fatal(format!("task `{id}`, `connection`: {e}")))?;
    let (field, text) = match (&task.sql, &task.script) {
        (Some(sql), _) => ("sql", sql.clone()),
        (None, Some(Script::Inline(s))) => ("script", s.clone()),
        (None, Some(Script::File { file })) => ("script", read_script(ctx, file).await?),
        (None, None) => {
            return Err(OperatorError::Fatal(format!(
                "task `{id}` has neither `sql` nor `script`"
            )));
        }
    };
    let ready =
        prepare(ctx, dialect, field, &text, field == "sql", &task.parameters, &task.identifiers)?;
    ctx.note_tables(super::tables::tables(ready.iter().map(|r| r.sql.as_str()), dialect));
    let fetch = task.fetch.unwrap_or(if field == "sql" { Fetch::All } else { Fetch::None });
    let mut output = match &task.output {
        Some(name) => Some(Output::create(ctx, &ctx.render("output", name)?)?),
        None => None,
    };
    let mut db = Db::connect(&conn).await.map_err(|e| db_error(&id, &e))?;
    ctx.log.line(format!(
        "connected to `{}` ({}); {} statement(s){}",
        task.connection,
        dialect.name(),
        ready.len(),
        if task.autocommit { ", autocommit" } else { " in one transaction" }
    ));
    let result = statements(ctx, &mut db, &ready, task.autocommit, fetch, &mut output).await;
    db.close().await;
    let kept = result?;
    if let Some(out) = output {
        let (path, rows) = out.finish()?;
        ctx.log.line(format!("{rows} row(s) written to {}", path.display()));
        return Ok(Outcome::Done(Some(
            json!({"output": path.display().to_string(), "rows": rows}),
        )));
    }
    Ok(Outcome::Done(kept.into_xcom(ctx)))
}

/// Airflow's `sqlite_default`, when nobody defined it: a SQLite file in `UPDRAFT_HOME`, so
/// a SQL example runs on a fresh machine with no server and no configuration.
pub const SQLITE_DEFAULT: &str = "sqlite_default";

/// The named connection; `sqlite_default` falls back to `<UPDRAFT_HOME>/sqlite_default.db`.
pub(crate) fn connection(
    ctx: &TaskContext,
    conn_id: &str,
) -> Result<crate::operators::Connection, OperatorError> {
    match ctx.connection(conn_id) {
        Err(_)
            if conn_id.eq_ignore_ascii_case(SQLITE_DEFAULT)
                && !ctx.settings.connections.contains_key(SQLITE_DEFAULT)
                && !ctx.db_connections.contains_key(SQLITE_DEFAULT) =>
        {
            let file = ctx.settings.home.join("sqlite_default.db");
            let abs = std::path::absolute(&file).unwrap_or(file);
            crate::operators::Connection::parse(conn_id, &format!("sqlite://{}", abs.display()))
                .map_err(OperatorError::Fatal)
        }
        other => other,
    }
}

/// Begin, each statement, commit; on a failure, roll back and say so.
async fn statements(
    ctx: &TaskContext,
    db: &mut Db,
    ready: &[Ready],
    autocommit: bool,
    fetch: Fetch,
    output: &mut Option<Output>,
) -> Result<Kept, OperatorError> {
    let id = &ctx.task.task_id;
    if !autocommit {
        db.begin().await.map_err(|e| db_error(id, &e))?;
    }
    let mut kept = Kept { fetch, rows: Vec::new(), bytes: 0, total: 0, cut: false };
    let n = ready.len();
    for (i, r) in ready.iter().enumerate() {
        let last = i + 1 == n;
        let started = Instant::now();
        let mut sink = |row: DbRow<'_>| -> Result<(), String> {
            if !last {
                return Ok(());
            }
            let row = row.to_map()?;
            match output.as_mut() {
                Some(out) => out.write(&row),
                None => {
                    kept.push(row);
                    Ok(())
                }
            }
        };
        let result = db.execute(&r.sql, &r.values, &ctx.cancel, &mut sink).await;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let head = format!("statement {}/{n} (line {})", i + 1, r.line);
        match result {
            Ok(rows) => {
                ctx.log.line(format!("{head}: {} -> {rows} row(s) in {took:.1} ms", r.shown()))
            }
            Err(e) => {
                ctx.log.line(format!("{head} failed after {took:.1} ms: {}: {e}", r.shown()));
                if !autocommit {
                    let _ = db.rollback().await;
                    ctx.log.line("rolled back: nothing of this try was committed");
                } else if i > 0 {
                    ctx.log
                        .line(format!("autocommit: the {i} statement(s) before it stay committed"));
                }
                return Err(wrap(db_error(id, &e), &head));
            }
        }
    }
    if !autocommit {
        db.commit().await.map_err(|e| db_error(id, &e))?;
        ctx.log.line("committed");
    }
    Ok(kept)
}

fn wrap(e: OperatorError, head: &str) -> OperatorError {
    match e {
        OperatorError::Retryable(m) => OperatorError::Retryable(format!("{head}: {m}")),
        OperatorError::Fatal(m) => OperatorError::Fatal(format!("{head}: {m}")),
        other => other,
    }
}

/// A database error as an operator error: what the server refused or could not do may pass on
/// a retry (deadlocks, a table another DAG creates, a server restarting); a scheme or a row
/// that cannot be read as JSON will not.
pub(crate) fn db_error(task_id: &str, e: &DbError) -> OperatorError {
    match e {
        DbError::Scheme { .. } => {
            OperatorError::Fatal(format!("task `{task_id}`, `connection`: {e}"))
        }
        DbError::Row(_) => OperatorError::Fatal(e.to_string()),
        _ => OperatorError::Retryable(e.to_string()),
    }
}

/// The rows kept for the XCom.
struct Kept {
    fetch: Fetch,
    rows: Vec<Value>,
    bytes: usize,
    total: u64,
    cut: bool,
}

impl Kept {
    fn push(&mut self, row: Map<String, Value>) {
        self.total += 1;
        match self.fetch {
            Fetch::None => {}
            Fetch::One if self.rows.is_empty() => self.rows.push(Value::Object(row)),
            Fetch::One => {}
            Fetch::All if self.cut => {}
            Fetch::All => {
                let row = Value::Object(row);
                let size = row.to_string().len();
                if self.rows.len() >= XCOM_MAX_ROWS || self.bytes + size > XCOM_MAX_BYTES {
                    self.cut = true;
                } else {
                    self.bytes += size;
                    self.rows.push(row);
                }
            }
        }
    }

    fn into_xcom(self, ctx: &TaskContext) -> Option<Value> {
        if self.cut {
            ctx.log.line(format!(
                "XCom cut: it holds the first {} of {} rows (at most {XCOM_MAX_ROWS} rows and \
                 {} KiB); write them all with `output: file.jsonl`",
                self.rows.len(),
                self.total,
                XCOM_MAX_BYTES / 1024
            ));
        }
        match self.fetch {
            Fetch::None => None,
            Fetch::One => Some(self.rows.into_iter().next().unwrap_or(Value::Null)),
            Fetch::All => Some(Value::Array(self.rows)),
        }
    }
}

/// `output:`: JSON lines written to `<name>.partial` in the run's folder, renamed to `<name>`
/// once every row is in, so a reader never sees half a file under the final name.
struct Output {
    path: PathBuf,
    partial: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    rows: u64,
}

impl Output {
    fn create(ctx: &TaskContext, name: &str) -> Result<Output, OperatorError> {
        let id = &ctx.task.task_id;
        let inside = !name.is_empty()
            && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(OperatorError::Fatal(format!(
                "task `{id}`, `output`: `{name}` must be a relative file name in the run's \
                 folder (no `..`, not absolute)"
            )));
        }
        let dir = log_path::run_dir(&ctx.settings.log_dir(), &ctx.run.dag_id, &ctx.run.run_id);
        let path = dir.join(name);
        let partial = path.with_file_name(format!(
            "{}.partial",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let fail = |e: std::io::Error| {
            OperatorError::Fatal(format!(
                "task `{id}`, `output`: cannot write {}: {e}",
                path.display()
            ))
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let file = std::fs::File::create(&partial).map_err(fail)?;
        Ok(Output { file: std::io::BufWriter::new(file), path, partial, rows: 0 })
    }

    fn write(&mut self, row: &Map<String, Value>) -> Result<(), String> {
        serde_json::to_writer(&mut self.file, row).map_err(|e| e.to_string())?;
        self.file.write_all(b"\n").map_err(|e| e.to_string())?;
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<(PathBuf, u64), OperatorError> {
        let fail = |e: std::io::Error| {
            OperatorError::Retryable(format!("cannot finish {}: {e}", self.path.display()))
        };
        self.file.flush().map_err(fail)?;
        std::fs::rename(&self.partial, &self.path).map_err(fail)?;
        Ok((self.path.clone(), self.rows))
    }
}

/// The text of `script: {file: ...}`, relative to the DAG file's folder.
async fn read_script(ctx: &TaskContext, file: &str) -> Result<String, OperatorError> {
    let dag_file = if ctx.dag.fileloc.is_absolute() {
        ctx.dag.fileloc.clone()
    } else {
        ctx.settings.dags_folder.join(&ctx.dag.fileloc)
    };
    let path = dag_file.parent().unwrap_or(Path::new(".")).join(file);
    tokio::fs::read_to_string(&path).await.map_err(|e| {
        OperatorError::Fatal(format!(
            "task `{}`, `script.file`: cannot read {}: {e}",
            ctx.task.task_id,
            path.display()
        ))
    })
}
