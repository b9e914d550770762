//! The YAML level of a DAG file: a byte-order mark, more than one document, merge keys and
//! anchors in tasks, `x-` keys, and every YAML-level error at a real line and column. The
//! positions index and serde_yaml's merged tree must agree on every path.

use std::path::Path;

use serde_yaml::Value;

use super::{parse_dag_str, yaml};
use crate::dag::positions::Positions;
use crate::dag::{Dag, LoadError};

fn parse(src: &str) -> Result<Dag, Vec<LoadError>> {
    parse_dag_str(src, Path::new("sample.yaml"))
}

/// `(line, column, message)` of each error of `src`.
fn errors(src: &str) -> Vec<(usize, usize, String)> {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.into_iter().map(|e| (e.line, e.column, e.message)).collect(),
    }
}

const ANCHORS: &str = "\
x-retrying: &retrying
  retries: 3
  retry_delay: 10s
x-bash: &bash
  <<: *retrying
  type: bash
  env: {STAGE: prod}
dag_id: anchors
tasks:
  extract:
    <<: *bash
    command: echo extract
  load:
    <<: [*bash, {pool: loaders}]
    retries: 1
    depends_on: [extract]
    command: echo load
  report: &report
    type: empty
    depends_on: [load]
  report_again: *report
";

#[test]
fn a_byte_order_mark_is_accepted_and_positions_do_not_shift() {
    let dag = parse("\u{feff}dag_id: bom\ntasks:\n  a: {type: empty}\n").expect("valid");
    assert_eq!(dag.dag_id, "bom");
    let errs = errors("\u{feff}dag_id: bom\ntasks:\n  a: {type: bassh}\n");
    assert_eq!((errs[0].0, errs[0].1), (3, 13), "{errs:?}");
}

#[test]
fn anchors_aliases_and_merge_keys_work_in_tasks() {
    let dag = parse(ANCHORS).expect("valid");
    let extract = &dag.tasks["extract"];
    assert_eq!(extract.kind.type_name(), "bash");
    assert_eq!((extract.retries, extract.retry_delay.as_secs()), (3, 10), "nested merge");
    let load = &dag.tasks["load"];
    assert_eq!(load.retries, 1, "the task's own key wins over the merged one");
    assert_eq!(load.pool, "loaders", "every mapping of a merge list is merged");
    assert_eq!(dag.tasks["report_again"].depends_on, ["load"], "an alias copies a task");
    let ids: Vec<&str> = dag.tasks.keys().map(String::as_str).collect();
    assert_eq!(ids, ["extract", "load", "report", "report_again"]);
}

#[test]
fn top_level_x_keys_are_ignored_and_other_unknown_keys_are_not() {
    let dag = parse("x-anything: {a: 1}\nx-list: [1]\ntasks:\n  a: {type: empty}\n");
    assert!(dag.is_ok(), "{dag:?}");
    let errs = errors("xdefaults: 1\ntasks:\n  a: {type: empty, x-note: 1}\n");
    let shown: Vec<_> = errs.iter().map(|e| (e.0, e.1, e.2.contains("unknown"))).collect();
    assert_eq!(shown, [(1, 1, true), (3, 20, true)], "{errs:?}");
}

#[test]
fn yaml_level_errors_sit_at_a_real_line_and_column() {
    // (source, line, column, words of the message)
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "dag_id: a\ntasks:\n  a: {type: empty}\n---\ndag_id: b\n",
            4,
            1,
            "a DAG file holds one YAML document, and a second one starts here",
        ),
        ("dag_id: a\ntasks: {a: {type: empty}}\n...\nmore: 1\n", 4, 1, "second one starts here"),
        ("tasks:\n  a:\n    <<: 5\n    type: empty\n", 3, 5, "not the number `5`"),
        ("tasks:\n  a:\n    type: empty\n    <<: [{retries: 1}, oops]\n", 4, 24, "not the text"),
        ("x-t: &t !tagged {a: 1}\ntasks:\n  a:\n    <<: *t\n", 4, 5, "a value tagged"),
        ("a: &a [*a]\n", 1, 4, "YAML syntax error"),
    ];
    for (src, line, column, words) in cases {
        let errs = errors(src);
        assert_eq!(errs.len(), 1, "{src:?}: {errs:?}");
        let (l, c, message) = &errs[0];
        assert_eq!((*l, *c), (*line, *column), "{src:?}: {message}");
        assert!(message.contains(words), "{src:?}: want {words:?} in {message}");
    }
}

#[test]
fn errors_in_merged_content_point_into_the_anchor() {
    let src = "\
x-defaults: &defaults
  retries: many
  bogus: 1
tasks:
  a:
    <<: *defaults
    type: empty
";
    let errs = errors(src);
    let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(at, [(2, 12), (3, 3)], "{errs:?}");
    assert!(errs[0].2.contains("`retries` of task `a`"), "{errs:?}");
    assert!(errs[1].2.contains("unknown field `bogus` in task `a`"), "{errs:?}");
}

#[test]
fn not_utf8_text_is_refused_where_it_stops_being_utf8() {
    let cases: &[(&[u8], usize, usize, &str)] = &[
        (b"dag_id: a\ntasks:\n  caf\xe9: {type: empty}\n", 3, 6, "byte 0xE9"),
        (b"\xef\xbb\xbfa: \xff\n", 1, 4, "byte 0xFF"),
        (b"\xff\xfed\x00a\x00", 1, 1, "UTF-16"),
    ];
    for (bytes, line, column, words) in cases {
        let e = yaml::decode(bytes).expect_err("not UTF-8");
        assert_eq!((e.line, e.column), (*line, *column), "{bytes:?}: {}", e.message);
        assert!(e.message.contains(words), "{}", e.message);
    }
    assert_eq!(yaml::decode("\u{feff}é: 1".as_bytes()).ok(), Some("\u{feff}é: 1"));
}

/// Every mapping key of serde_yaml's merged tree has a position, and that position holds the
/// key's text (or the `*alias` / `<<` that brought it).
#[test]
fn positions_agree_with_the_merged_tree() {
    let docs = [
        ANCHORS,
        "a: &a {x: 1, y: [1, {z: 2}]}\nb: *a\nc: {<<: *a, x: 3}\nd: [*a, *a]\n",
        "base: &b\n  k: 1\nlist:\n  - <<: *b\n    j: 2\n  - {<<: [*b, {k: 5, m: 6}]}\n",
    ];
    for src in docs {
        let tree = yaml::load(src).expect("valid YAML");
        let pos = Positions::build(src);
        let lines: Vec<&str> = src.lines().collect();
        let mut stack: Vec<(Vec<String>, &Value)> = vec![(Vec::new(), &tree)];
        while let Some((path, v)) = stack.pop() {
            let children: Vec<(String, &Value)> = match v {
                Value::Mapping(m) => m
                    .iter()
                    .map(|(k, v)| (k.as_str().map(str::to_string).unwrap_or_default(), v))
                    .collect(),
                Value::Sequence(s) => {
                    s.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect()
                }
                _ => Vec::new(),
            };
            for (segment, child) in children {
                let mut p = path.clone();
                p.push(segment.clone());
                let at = pos.get(&p).unwrap_or_else(|| panic!("{p:?} not indexed in\n{src}"));
                let line = lines[at.key.line - 1];
                let text: String = line.chars().skip(at.key.column - 1).collect();
                let numbered = segment.parse::<usize>().is_ok();
                assert!(
                    numbered || text.starts_with(&segment),
                    "{p:?} at {}:{} is `{text}`",
                    at.key.line,
                    at.key.column
                );
                stack.push((p, child));
            }
        }
    }
}
