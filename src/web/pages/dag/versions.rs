//! A DAG's versions: every distinct source it had (number, when first seen, who saved it, the
//! runs pinned to it), and the difference between any two, as a unified diff.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Header;
use crate::store::StoreError;
use crate::web::auth::{Action, Principal};
use crate::web::pages::{Chrome, fmt_time, render};
use crate::web::{AppState, WebError};

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// One version in the list.
struct VersionRow {
    number: i64,
    short: String,
    when: String,
    /// "editor: alice", or "folder" when the scan found it first.
    by: String,
    runs: i64,
    current: bool,
}

/// One line of the diff: `hunk` (an `@@` header), `del`, `add` or `ctx`, and its text.
struct DiffLine {
    kind: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "dag_versions.html")]
struct VersionsPage {
    chrome: Chrome,
    h: Header,
    versions: Vec<VersionRow>,
    /// The two versions compared (numbers), when there are two.
    from: i64,
    to: i64,
    diff: Vec<DiffLine>,
    /// Why no diff is shown (one version only, the same version twice), else empty.
    no_diff: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionsQuery {
    from: Option<i64>,
    to: Option<i64>,
}

pub(super) async fn versions(
    State(state): State<AppState>,
    user: Principal,
    Path(dag_id): Path<String>,
    Query(q): Query<VersionsQuery>,
) -> Result<Response, WebError> {
    user.require(Action::Read)?;
    let (rec, dag) = state.dag(&dag_id).await?;
    let list = state.store.dag_versions(&dag_id).await?;
    let newest = list.first().map(|v| v.number).unwrap_or(0);
    let to = q.to.unwrap_or(newest);
    let from = q.from.unwrap_or(to - 1);
    let found = |r: Result<crate::store::DagVersion, StoreError>, n: i64| match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound(_)) if q.from.is_none() && q.to.is_none() => Ok(None),
        Err(StoreError::NotFound(_)) => {
            Err(WebError::NotFound(format!("DAG `{dag_id}` has no version v{n}")))
        }
        Err(e) => Err(e.into()),
    };
    let (mut diff, mut no_diff) = (Vec::new(), String::new());
    if list.len() < 2 && q.from.is_none() && q.to.is_none() {
        no_diff = "One version so far: nothing to compare.".into();
    } else if from == to {
        no_diff = format!("v{from} compared with itself: no difference.");
    } else {
        let old = found(state.store.dag_version_numbered(&dag_id, from).await, from)?;
        let new = found(state.store.dag_version_numbered(&dag_id, to).await, to)?;
        if let (Some(old), Some(new)) = (old, new) {
            diff = unified(&old.source, &new.source, &format!("v{from}"), &format!("v{to}"));
            if diff.is_empty() {
                no_diff = format!("v{from} and v{to} have the same text.");
            }
        }
    }
    let versions = list
        .iter()
        .map(|v| VersionRow {
            number: v.number,
            short: v.version.chars().take(12).collect(),
            when: fmt_time(Some(v.created_at)),
            by: match &v.saved_by {
                Some(user) => format!("editor: {user}"),
                None => "folder".into(),
            },
            runs: v.runs,
            current: v.version == dag.version,
        })
        .collect();
    let page = VersionsPage {
        chrome: Chrome::new(&user, "dags", format!("{dag_id} · versions")),
        h: Header::new(&rec, &dag, "versions"),
        versions,
        from,
        to,
        diff,
        no_diff,
    };
    Ok(render(&page)?.into_response())
}

/// The unified diff of `old` to `new`, line by line (empty when they are the same).
fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> Vec<DiffLine> {
    let text = similar::TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    let mut udiff = text.unified_diff();
    udiff.context_radius(CONTEXT).header(old_name, new_name);
    for hunk in udiff.iter_hunks() {
        out.push(DiffLine { kind: "hunk", text: hunk.header().to_string() });
        for change in hunk.iter_changes() {
            let (kind, sign) = match change.tag() {
                similar::ChangeTag::Delete => ("del", '-'),
                similar::ChangeTag::Insert => ("add", '+'),
                similar::ChangeTag::Equal => ("ctx", ' '),
            };
            let line = change.value().trim_end_matches(['\n', '\r']);
            out.push(DiffLine { kind, text: format!("{sign}{line}") });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_diff_shows_what_changed_with_its_context() {
        let old = "a\nb\nc\n";
        let new = "a\nB\nc\nd\n";
        let lines: Vec<(&str, String)> =
            super::unified(old, new, "v1", "v2").into_iter().map(|l| (l.kind, l.text)).collect();
        let kinds: Vec<&str> = lines.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["hunk", "ctx", "del", "add", "ctx", "add"], "{lines:?}");
        assert_eq!(lines[0].1, "@@ -1,3 +1,4 @@");
        assert_eq!(lines[2].1, "-b");
        assert_eq!(lines[3].1, "+B");
        assert!(super::unified(old, old, "v1", "v1").is_empty());
    }
}
