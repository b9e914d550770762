//! Checks of a parsed DAG against what exists outside its file, given as data: the connection
//! ids its notifiers name. A notifier naming a connection that does not exist is a load error
//! at the id's file:line:col (the DAG does not load, as an import error), with the nearest
//! known id, because a notification that can never be sent fails silently otherwise.
//!
//! Invariant: pure; the caller says which connections exist (the environment's `UPDRAFT_CONN_*`
//! and the stored ones).

use super::parse::ctx_did_you_mean;
use super::positions::Positions;
use super::{Dag, LoadError};

/// Every notifier of `dag` naming a connection `known` does not hold (ids compared in lower
/// case, as connections are looked up).
pub fn unknown_notifiers(dag: &Dag, known: &[String]) -> Vec<LoadError> {
    let is_known = |id: &str| known.iter().any(|k| k.eq_ignore_ascii_case(id));
    let mut places: Vec<(Vec<String>, &str)> = Vec::new();
    for (field, ids) in
        [("on_run_failure", &dag.on_run_failure), ("on_run_success", &dag.on_run_success)]
    {
        places.extend(ids.iter().map(|id| (vec![field.to_string()], id.as_str())));
    }
    for d in &dag.deadlines {
        places.extend(d.notify.iter().map(|id| (vec!["deadline".to_string()], id.as_str())));
    }
    for t in dag.tasks.values() {
        for (field, ids) in [
            ("on_failure", &t.notify.on_failure),
            ("on_retry", &t.notify.on_retry),
            ("on_success", &t.notify.on_success),
        ] {
            places.extend(ids.iter().map(|id| (vec![field.to_string()], id.as_str())));
        }
    }
    let unknown: Vec<&str> = {
        let mut v: Vec<&str> =
            places.iter().map(|(_, id)| *id).filter(|id| !is_known(id)).collect();
        v.sort();
        v.dedup();
        v
    };
    if unknown.is_empty() {
        return Vec::new();
    }
    let positions = Positions::build(&dag.source);
    let lower: Vec<String> = known.iter().map(|k| k.to_lowercase()).collect();
    let mut out = Vec::new();
    for id in unknown {
        let at = occurrence(&dag.source, &positions, id);
        out.push(LoadError {
            file: dag.fileloc.clone(),
            line: at.line,
            column: at.column,
            message: format!(
                "notifier `{id}` names no connection (set UPDRAFT_CONN_{} to its URI: a webhook \
                 URL, `...?format=slack`, or smtp://...; or add it under Admin > Connections){}",
                id.to_uppercase(),
                ctx_did_you_mean(&id.to_lowercase(), lower.iter().map(String::as_str)),
            ),
        });
    }
    out
}

/// The keys whose values name notifiers (`notify` is a deadline's).
const NOTIFIER_KEYS: [&str; 6] =
    ["on_failure", "on_retry", "on_success", "on_run_failure", "on_run_success", "notify"];

/// Where `id` is first written as a notifier: the earliest item equal to it of a list under a
/// notifier key, wherever the YAML index (`Positions`) found one — a DAG's, a task's, a group's
/// or `default_args`' list, flow or block, through anchors; the `tasks` key when none is (it
/// came from somewhere the index does not reach).
fn occurrence(src: &str, positions: &Positions, id: &str) -> super::positions::Pos {
    let lines: Vec<&str> = src.lines().collect();
    let written_at = |at: super::positions::Pos| {
        let line = lines.get(at.line.wrapping_sub(1)).copied().unwrap_or("");
        let rest: String = line.chars().skip(at.column.saturating_sub(1)).collect();
        let rest = rest.trim_start_matches(['"', '\'']);
        let next = rest.get(id.len()..).and_then(|r| r.chars().next()).unwrap_or(' ');
        rest.starts_with(id) && !(next.is_ascii_alphanumeric() || matches!(next, '_' | '-' | '.'))
    };
    positions
        .iter()
        .filter(|(path, _)| match path {
            [.., key, index] => {
                NOTIFIER_KEYS.contains(&key.as_str()) && index.parse::<usize>().is_ok()
            }
            _ => false,
        })
        .map(|(_, at)| at.value)
        .filter(|at| written_at(*at))
        .min()
        .unwrap_or_else(|| positions.nearest(&["tasks"]).key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::parse_dag_str;

    #[test]
    fn an_unknown_notifier_is_an_error_where_it_is_written() {
        let src = "dag_id: d\non_run_failure: [pager]\ndefault_args:\n  on_failure: [ops_slak, pager]\n\
                   tasks:\n  t: {type: empty, on_success: [ops_slack]}\n";
        let dag = parse_dag_str(src, "d.yaml".as_ref()).expect("valid");
        let known = vec!["pager".to_string(), "OPS_SLACK".to_string()];
        let errors = unknown_notifiers(&dag, &known);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("d.yaml:4:16: notifier `ops_slak` names no connection"),
            "{text:?}"
        );
        assert!(
            text[0].contains("did you mean `ops_slack`?")
                && text[0].contains("UPDRAFT_CONN_OPS_SLAK"),
            "{text:?}"
        );
        assert!(
            unknown_notifiers(&dag, &["pager".into(), "ops_slak".into(), "ops_slack".into()])
                .is_empty()
        );
    }

    #[test]
    fn an_unknown_deadline_notifier_in_a_block_list_is_found_on_its_line() {
        let src = "dag_id: d\ndeadline:\n  reference: queued\n  interval: 1h\n  notify:\n    - pager\n    - oncal\n\
                   tasks:\n  t: {type: empty}\n";
        let dag = parse_dag_str(src, "d.yaml".as_ref()).expect("valid");
        let errors = unknown_notifiers(&dag, &["pager".to_string(), "oncall".to_string()]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("d.yaml:7:7: notifier `oncal` names no connection"),
            "{text:?}"
        );
        assert!(text[0].contains("did you mean `oncall`?"), "{text:?}");
    }

    #[test]
    fn text_that_only_looks_like_a_notifier_is_not_where_it_is_written() {
        // A command quoting `on_failure: [...]` comes first; the notifier is the group's.
        let src = "dag_id: d\ntasks:\n  a: {type: bash, command: 'echo on_failure: [ops_slak]'}\n  \
                   b: {type: empty, group: g}\ngroups:\n  g:\n    default_args:\n      \
                   on_failure:\n        - \"ops_slak\"\n";
        let dag = parse_dag_str(src, "d.yaml".as_ref()).expect("valid");
        let errors = unknown_notifiers(&dag, &["ops_slack".to_string()]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(text[0].starts_with("d.yaml:9:11: notifier `ops_slak`"), "{text:?}");
    }
}
