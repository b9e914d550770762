//! Task groups: ids, default_args overlays, nesting, what `depends_on` a group means, and
//! every mistake at its line and column.

use std::path::Path;

use super::parse_dag_str;
use crate::dag::{Dag, LoadError};

fn parse(src: &str) -> Result<Dag, Vec<LoadError>> {
    parse_dag_str(src, Path::new("dags/g.yaml"))
}

fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
    }
}

fn deps<'d>(dag: &'d Dag, task: &str) -> Vec<&'d str> {
    let mut d: Vec<&str> = dag.tasks[task].depends_on.iter().map(String::as_str).collect();
    d.sort();
    d
}

const NESTED: &str = "\
default_args: {retries: 1, pool: dag_pool}
groups:
  extract:
    doc: Pull the sources
    default_args: {retries: 3}
    depends_on: [start]
    groups:
      raw:
        default_args: {pool: io}
tasks:
  start: {type: empty}
  fetch: {type: bash, command: echo, group: extract}
  parse: {type: bash, command: echo, group: extract, depends_on: [fetch]}
  dump: {type: bash, command: echo, group: extract.raw, retries: 0}
  side: {type: bash, command: echo, group: extract.raw}
  load: {type: empty, depends_on: [extract]}
";

#[test]
fn ids_defaults_and_nesting() {
    let dag = parse(NESTED).expect("valid");
    let ids: Vec<&str> = dag.tasks.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["start", "extract.fetch", "extract.parse", "extract.raw.dump", "extract.raw.side", "load"]
    );
    let groups: Vec<&str> = dag.groups.keys().map(String::as_str).collect();
    assert_eq!(groups, ["extract", "extract.raw"]);
    assert_eq!(dag.groups["extract.raw"].parent.as_deref(), Some("extract"));
    assert_eq!(dag.groups["extract"].doc.as_deref(), Some("Pull the sources"));
    assert_eq!(dag.task_groups("extract.raw.dump"), ["extract", "extract.raw"]);
    assert!(dag.task_groups("start").is_empty());
    // The group's default_args over the enclosing group's over the DAG's; the task's own win.
    let t = |id: &str| &dag.tasks[id];
    assert_eq!((t("start").retries, t("start").pool.as_str()), (1, "dag_pool"));
    assert_eq!((t("extract.fetch").retries, t("extract.fetch").pool.as_str()), (3, "dag_pool"));
    assert_eq!((t("extract.raw.side").retries, t("extract.raw.side").pool.as_str()), (3, "io"));
    assert_eq!(t("extract.raw.dump").retries, 0);
    assert_eq!(t("extract.raw.dump").group.as_deref(), Some("extract.raw"));
    // A sibling by its key; a group's depends_on goes to its roots; depending on a group is
    // depending on its leaves.
    assert_eq!(deps(&dag, "extract.parse"), ["extract.fetch"]);
    assert_eq!(deps(&dag, "extract.fetch"), ["start"]);
    assert_eq!(deps(&dag, "extract.raw.dump"), ["start"]);
    assert_eq!(deps(&dag, "load"), ["extract.parse", "extract.raw.dump", "extract.raw.side"]);
}

#[test]
fn a_group_without_a_section_is_made_by_its_tasks() {
    let src = "\
tasks:
  a: {type: empty, group: one.two}
  b: {type: empty, group: one, depends_on: [one.two]}
";
    let dag = parse(src).expect("valid");
    assert_eq!(dag.groups.keys().map(String::as_str).collect::<Vec<_>>(), ["one", "one.two"]);
    assert_eq!(deps(&dag, "one.b"), ["one.two.a"]);
    assert_eq!(dag.tasks["one.two.a"].group.as_deref(), Some("one.two"));
}

#[test]
fn mistakes_are_located() {
    let src = "\
groups:
  extract:
    default_args: {retris: 2}
    colour: red
  bad.name: {}
tasks:
  a: {type: empty, group: extrac}
  b: {type: empty, group: extract, depends_on: [extract]}
  c: {type: empty, depends_on: [nothing]}
  d.e: {type: empty, group: extract}
  f: {type: empty, group: 3}
";
    let got = errors(src);
    let want = [
        "3:20: unknown field `retris` in default_args; did you mean `retries`?",
        "4:5: unknown field `colour` in group `extract` (valid fields: doc, default_args, depends_on, groups)",
        "5:3: invalid group name `bad.name`; use letters, digits, `_` and `-` only (a `.` separates a group from what it holds)",
        "7:27: task `a` is in group `extrac`, which `groups` does not declare; did you mean `extract`?",
        "8:49: task `extract.b` depends on `extract`, the group it is in",
        "9:33: task `c` depends on `nothing`, which is not a task or a group of this DAG",
        "10:3: invalid task id `d.e` in group `extract`; a task in a group is named without dots (its id becomes `extract.<name>`)",
        "11:27: `group` of task `f` must be a string, not the number `3`; quote it to make it one",
    ];
    assert_eq!(got, want);
}

#[test]
fn ids_that_clash_are_refused() {
    let src = "\
tasks:
  x.a: {type: empty}
  a: {type: empty, group: x}
  x: {type: empty, group: y}
  y: {type: empty}
";
    let got = errors(src).join("\n");
    assert!(got.contains("3:3: two tasks have the id `x.a`"), "{got}");
    assert!(got.contains("group `y` has the id of a task; rename one of them"), "{got}");
}

#[test]
fn a_group_dependency_that_closes_a_cycle_is_a_cycle() {
    let src = "\
tasks:
  a: {type: empty, group: g}
  b: {type: empty, depends_on: [g]}
  c: {type: empty, group: g, depends_on: [b]}
";
    let got = errors(src).join("\n");
    assert!(got.contains("cycle:"), "{got}");
}
