//! Warnings about a valid DAG: things that load and run but deserve an author's second look.
//!
//! This file owns [`warnings`]; it reports every `| raw` in a `bash` command and in the SQL
//! text of `sql` / `sql_sensor` (and `{% filter raw %}`), because `raw` switches off the
//! quoting (bash) or the binding (SQL) that keeps a value from `conf` or an upstream XCom from
//! running as code.
//!
//! Invariants: pure (the template source is in the DAG; no I/O); a warning never fails a load;
//! each warning points at the file, line and column of the `raw` it is about, or at the field
//! holding it when the occurrence cannot be found in the source (a scalar with YAML escapes).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::positions::{Pos, Positions};
use super::{Dag, TaskKind};

/// One warning, located like a [`super::LoadError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The file, as the DAG was loaded from it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What deserves a look, and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every warning about `dag`, in task order.
pub fn warnings(dag: &Dag) -> Vec<Warning> {
    let positions = Positions::build(&dag.source);
    let mut out = Vec::new();
    for task in dag.tasks.values() {
        let (field, template, advice) = match &task.kind {
            TaskKind::Bash(bash) => ("command", bash.command.as_str(), BASH_ADVICE),
            TaskKind::Sql(t) => match (&t.sql, &t.script) {
                (Some(sql), _) => ("sql", sql.as_str(), SQL_ADVICE),
                (None, Some(super::kinds::Script::Inline(s))) => ("script", s.as_str(), SQL_ADVICE),
                _ => continue,
            },
            TaskKind::SqlSensor(t) => ("sql", t.sql.as_str(), SQL_ADVICE),
            _ => continue,
        };
        let uses = raw_uses(template);
        if uses == 0 {
            continue;
        }
        let path = ["tasks", task.task_id.as_str(), field];
        let field = positions.nearest(&path).value;
        let found = occurrences_after(&dag.source, field);
        for i in 0..uses {
            let at = found.get(i).copied().unwrap_or(field);
            out.push(Warning {
                file: dag.fileloc.clone(),
                line: at.line,
                column: at.column,
                message: format!("task `{}`: {advice}", task.task_id),
            });
        }
    }
    out
}

/// Every asset a DAG's schedule waits for that nothing among `dags` produces: no task lists
/// it in `outlets`, and the schedule does not watch an outside source for it. Such a DAG runs
/// only on events posted to the API (or produced by DAGs elsewhere), which deserves a look:
/// usually a typo in one of the two URIs.
pub fn asset_warnings<'a>(dags: impl IntoIterator<Item = &'a Dag> + Clone) -> Vec<Warning> {
    let produced: std::collections::HashSet<&str> = dags
        .clone()
        .into_iter()
        .flat_map(|d| d.tasks.values().flat_map(|t| t.outlets.iter().map(String::as_str)))
        .collect();
    let mut out = Vec::new();
    for dag in dags {
        let Some(schedule) = &dag.asset_schedule else { continue };
        let positions = Positions::build(&dag.source);
        for (i, asset) in schedule.assets.iter().enumerate() {
            if asset.watch.is_some() || produced.contains(asset.uri.as_str()) {
                continue;
            }
            let path = ["schedule".to_string(), schedule.mode.as_str().to_string(), i.to_string()];
            let at = positions.nearest(&path).value;
            out.push(Warning {
                file: dag.fileloc.clone(),
                line: at.line,
                column: at.column,
                message: format!(
                    "DAG `{}` is scheduled on asset `{}`, which no task lists in its `outlets` \
                     and no `watch:` reads: it runs only on events posted to the API \
                     (POST /api/v1/assets/events). Check the URI on both sides",
                    dag.dag_id, asset.uri
                ),
            });
        }
    }
    out
}

const BASH_ADVICE: &str = "`raw` pastes a value into the bash command unquoted; a value from \
     `conf` or an upstream XCom could then run commands. Pass it in `env:` and use \"$NAME\", \
     or drop `raw` to have it quoted";

const SQL_ADVICE: &str = "`raw` pastes a value into the SQL text instead of binding it; a \
     value from `conf` or an upstream XCom could then run as SQL. Pass it in `parameters:` (a \
     value) or `identifiers:` (a name), or drop `raw` to have it bound";

/// How many times `template` applies the `raw` filter: `| raw` inside `{{ }}` / `{% %}` (not
/// inside a string literal), or `{% filter raw %}`.
fn raw_uses(template: &str) -> usize {
    let mut count = 0;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => {
                // A comment: nothing in it is applied.
                rest = after.find("#}").map_or("", |end| &after[end + 2..]);
                continue;
            }
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let (inner, tail) = tag_body(body, close);
        count += raw_in_tag(inner);
        rest = tail;
    }
    count
}

/// Each character of a tag's text with its byte offset, and whether it is code: false inside a
/// string literal (`'...'` or `"..."`, with `\` escapes) and for the quotes themselves.
fn code_chars(text: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let mut quote = None;
    let mut escaped = false;
    text.char_indices().map(move |(i, c)| match quote {
        Some(q) => {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            (i, c, false)
        }
        None if c == '\'' || c == '"' => {
            quote = Some(c);
            (i, c, false)
        }
        None => (i, c, true),
    })
}

/// Splits `body` at the end of its tag (`close`, outside string literals).
fn tag_body<'a>(body: &'a str, close: &str) -> (&'a str, &'a str) {
    code_chars(body)
        .find(|&(i, _, code)| code && body[i..].starts_with(close))
        .map_or((body, ""), |(i, _, _)| (&body[..i], &body[i + close.len()..]))
}

/// Uses of `raw` in one tag's text, string literals left out.
fn raw_in_tag(tag: &str) -> usize {
    let code: String = code_chars(tag).map(|(_, c, code)| if code { c } else { ' ' }).collect();
    raw_tokens(&code).len()
}

/// Byte offsets of each `raw` token that follows `|` or `filter` in `text`.
fn raw_tokens(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut previous = "";
    for (at, token) in tokens(text) {
        if token == "raw" && (previous == "|" || previous == "filter") {
            out.push(at);
        }
        previous = token;
    }
    out
}

/// Words (`[A-Za-z0-9_]+`) and single other characters, blanks skipped, with byte offsets.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = &text[at..];
        let skip = rest.len() - rest.trim_start().len();
        at += skip;
        let rest = &text[at..];
        let first = rest.chars().next()?;
        let len = if word(first) {
            rest.find(|c: char| !word(c)).unwrap_or(rest.len())
        } else {
            first.len_utf8()
        };
        let token = (at, &rest[..len]);
        at += len;
        Some(token)
    })
}

/// Positions of `raw` filter uses in `source` at or after `from`, in order.
fn occurrences_after(source: &str, from: Pos) -> Vec<Pos> {
    let line_starts: Vec<usize> =
        std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let pos_of = |byte: usize| {
        let line = line_starts.partition_point(|s| *s <= byte);
        let start = line_starts[line - 1];
        Pos { line, column: source[start..byte].chars().count() + 1 }
    };
    let Some(line_start) = line_starts.get(from.line.saturating_sub(1)) else {
        return Vec::new();
    };
    let line_text = &source[*line_start..];
    let offset = line_text
        .char_indices()
        .nth(from.column.saturating_sub(1))
        .map_or(line_text.len(), |(i, _)| i);
    let start = line_start + offset;
    raw_tokens(&source[start..]).into_iter().map(|at| pos_of(start + at)).collect()
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
