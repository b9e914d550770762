//! Cross-field checks of `sql` and `sql_sensor`: exactly one of `sql` and `script`, `sql`
//! holding one statement, names of `parameters` and `identifiers` that `:name` / `:!name` can
//! reach, and file names that stay where they belong.
//!
//! Pure, like `kind.rs`: the connection, hence the dialect, is only known at run time, so the
//! one-statement rule is applied here when every dialect reads two or more statements, and
//! again by the operator with the real dialect.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use super::ctx::{Ctx, child};
use crate::dag::kinds::{Script, SqlSensorTask, SqlTask};
use crate::dag::sql_text::statement_count_everywhere;

pub(super) fn check_sql(cx: &mut Ctx, t: &SqlTask, path: &[String]) {
    let id = &path[1];
    match (&t.sql, &t.script) {
        (Some(_), Some(_)) | (None, None) => {
            let msg = format!(
                "task `{id}` (sql) needs exactly one of `sql` (one statement) or `script` \
                 (several, split on `;`)"
            );
            cx.at_key(path, msg);
        }
        (Some(sql), None) => one_statement(cx, sql, "sql", path),
        (None, Some(Script::File { file })) => {
            if !relative_inside(file) {
                let msg = format!(
                    "`script.file` of task `{id}` must be a relative path inside the DAG's \
                     folder (no `..`, not absolute), not `{file}`"
                );
                cx.at_value(&child(&child(path, "script"), "file"), msg);
            }
        }
        (None, Some(Script::Inline(_))) => {}
    }
    if let Some(out) = &t.output
        && !out.contains("{{")
        && !relative_inside(out)
    {
        let msg = format!(
            "`output` of task `{id}` is a file name in the run's folder (relative, no `..`), \
             not `{out}`"
        );
        cx.at_value(&child(path, "output"), msg);
    }
    names(cx, &t.parameters, "parameters", path);
    names(cx, &t.identifiers, "identifiers", path);
}

pub(super) fn check_sensor(cx: &mut Ctx, t: &SqlSensorTask, path: &[String]) {
    one_statement(cx, &t.sql, "sql", path);
    names(cx, &t.parameters, "parameters", path);
    names(cx, &t.identifiers, "identifiers", path);
}

fn one_statement(cx: &mut Ctx, sql: &str, field: &str, path: &[String]) {
    if let Some(line) = statement_count_everywhere(sql) {
        let msg = format!(
            "`{field}` of task `{}` holds more than one statement (the second starts on line \
             {line} of it); `{field}` is exactly one statement — use `script:` for several",
            path[1]
        );
        // A block scalar (`sql: |` and the text below) maps its lines onto the file's: point
        // at the second statement itself. Elsewhere, at the value.
        let at = cx.pos.nearest(&child(path, field));
        if at.value.line > at.key.line {
            cx.at(at.value.line + line - 1, at.value.column, msg);
        } else {
            cx.at_value(&child(path, field), msg);
        }
    }
}

/// Keys must be names `:name` can reach: a letter or `_`, then letters, digits, `_`.
fn names<V>(cx: &mut Ctx, map: &BTreeMap<String, V>, field: &str, path: &[String]) {
    for key in map.keys() {
        let mut chars = key.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            let msg = format!(
                "`{field}` of task `{}`: `{key}` is not a name (letters, digits and `_`, not \
                 starting with a digit), so `:{key}` could not refer to it",
                path[1]
            );
            cx.at_key(&child(&child(path, field), key), msg);
        }
    }
}

/// A relative path whose every part is a plain name (no `..`, no root).
pub(crate) fn relative_inside(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}
