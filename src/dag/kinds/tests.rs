//! Tests over the declaration of the task types: every declared type parses a minimal task,
//! every example DAG uses declared types only, and the shared sensor settings behave the same
//! in every sensor (values, defaults, error positions).
//!
//! These tests iterate over `TaskKind::TYPE_NAMES`, so a new type is covered as soon as it is
//! declared — and fails here until it has its row in [`MINIMAL`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dag::kinds::SensorSettings;
use crate::dag::{Dag, LoadError, TaskKind, parse_dag_str};

/// The smallest valid settings of each type, written after `type: <name>, ` in a flow mapping.
const MINIMAL: &[(&str, &str)] = &[
    ("bash", "command: 'true'"),
    ("empty", ""),
    ("http", "url: 'http://x/', method: post"),
    ("file_sensor", "path: /tmp/x"),
    ("http_sensor", "connection: api, endpoint: /health"),
    ("external_task_sensor", "external_dag_id: other"),
    ("trigger_dag", "trigger_dag_id: other, wait_for_completion: true"),
    ("kafka_produce", "topic: t, records: [{a: 1}]"),
    ("http_to_kafka", "connection: api, endpoint: /u, topic: t"),
    ("kafka_to_cassandra", "topic: t, group_id: g, table: ks.t, columns: {id: id}"),
    ("kafka_to_s3", "topic: t, group_id: g, url: 's3://b/p'"),
    ("s3", "operation: list, url: 's3://b/p/'"),
    ("cql", "statements: ['SELECT 1']"),
    ("kafka_sensor", "topic: t"),
    ("s3_key_sensor", "key: 's3://b/k'"),
    ("sql", "connection: db, sql: 'SELECT 1'"),
    ("sql_sensor", "connection: db, sql: 'SELECT 1'"),
    (
        "sql_to_kafka",
        "sql_connection: db, table: t, mode: incrementing, incrementing_column: id, topic: t",
    ),
    ("kafka_to_sql", "sql_connection: db, topic: t, group_id: g, table: t, columns: {id: id}"),
];

/// A one-task DAG of `type_name` with `settings` (flow-mapping entries, may be empty).
fn one_task(type_name: &str, settings: &str) -> String {
    let sep = if settings.is_empty() { "" } else { ", " };
    format!("tasks:\n  t: {{type: {type_name}{sep}{settings}}}\n")
}

fn parse(src: &str) -> Result<Dag, Vec<LoadError>> {
    parse_dag_str(src, Path::new("dags/kinds.yaml"))
}

fn minimal(type_name: &str) -> &'static str {
    match MINIMAL.iter().find(|(name, _)| *name == type_name) {
        Some((_, settings)) => settings,
        None => panic!("task type `{type_name}` has no minimal example in kinds/tests.rs"),
    }
}

#[test]
fn every_declared_type_parses_its_minimal_task() {
    for name in TaskKind::TYPE_NAMES {
        let src = one_task(name, minimal(name));
        let dag = parse(&src).unwrap_or_else(|e| panic!("{src}\n{e:#?}"));
        assert_eq!(dag.tasks["t"].kind.type_name(), name, "{src}");
    }
    for (name, _) in MINIMAL {
        assert!(TaskKind::TYPE_NAMES.contains(name), "`{name}` is not a declared type");
    }
    // Normalization by the cross-field checks happened too.
    let dag = parse(&one_task("http", minimal("http"))).expect("valid");
    assert!(matches!(&dag.tasks["t"].kind, TaskKind::Http(h) if h.method == "POST"));
}

/// Every `.yaml`/`.yml` file under `dir`, recursively.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn example_dags_use_declared_types_only_and_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    yaml_files(&root.join("dags"), &mut files);
    yaml_files(&root.join("tests/fixtures/dags_good"), &mut files);
    assert!(files.len() >= 4, "no example DAGs found: {files:?}");
    for file in files {
        let src = std::fs::read_to_string(&file).expect("readable");
        // Read the `type:` values straight from the YAML, so an undeclared one is named here
        // even if the parser's message changes.
        let mut doc: serde_yaml::Value = serde_yaml::from_str(&src).expect("YAML");
        doc.apply_merge().expect("merge keys");
        let tasks = doc.get("tasks").and_then(|t| t.as_mapping()).expect("a tasks mapping");
        for (id, task) in tasks {
            let ty = task.get("type").and_then(|t| t.as_str()).unwrap_or("(none)");
            assert!(
                TaskKind::TYPE_NAMES.contains(&ty),
                "{}: task {id:?} has undeclared type `{ty}`",
                file.display()
            );
        }
        if let Err(errors) = parse_dag_str(&src, &file) {
            panic!("{}: {errors:#?}", file.display());
        }
    }
}

/// The declared types that poke, as their minimal task says.
fn sensor_types() -> Vec<&'static str> {
    let pokes = |name: &&str| {
        let dag = parse(&one_task(name, minimal(name))).expect("valid");
        dag.tasks["t"].kind.sensor().is_some()
    };
    TaskKind::TYPE_NAMES.into_iter().filter(pokes).collect()
}

#[test]
fn every_sensor_reads_the_shared_settings() {
    let sensors = sensor_types();
    assert!(sensors.len() >= 6, "{sensors:?}");
    for name in sensors {
        let dag = parse(&one_task(name, minimal(name))).expect("valid");
        assert_eq!(dag.tasks["t"].kind.sensor(), Some(SensorSettings::default()), "{name}");
        let settings = format!("{}, poke_interval: 7, timeout: 1h, soft_fail: true", minimal(name));
        let dag = parse(&one_task(name, &settings)).expect("valid");
        let want = SensorSettings {
            poke_interval: Duration::from_secs(7),
            timeout: Duration::from_secs(3600),
            soft_fail: true,
        };
        assert_eq!(dag.tasks["t"].kind.sensor(), Some(want), "{name}");
    }
    assert_eq!(
        SensorSettings::default(),
        SensorSettings {
            poke_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(7 * 24 * 3600),
            soft_fail: false
        },
        "Airflow's defaults"
    );
}

#[test]
fn trigger_dag_pokes_only_while_waiting() {
    let waiting = parse(&one_task("trigger_dag", minimal("trigger_dag"))).expect("valid");
    assert!(waiting.tasks["t"].kind.sensor().is_some());
    let fire_and_forget = parse(&one_task("trigger_dag", "trigger_dag_id: other, timeout: 5"));
    assert_eq!(fire_and_forget.expect("valid").tasks["t"].kind.sensor(), None);
}

/// The error messages of `src`, as `line:col: message`.
fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
    }
}

#[test]
fn sensor_settings_errors_are_placed_and_worded_in_every_sensor() {
    for name in sensor_types() {
        // Block layout: line 3 + the minimal settings, then the broken poke key.
        let own: Vec<&str> = split_entries(minimal(name));
        let mut src = format!("tasks:\n  t:\n    type: {name}\n");
        for entry in &own {
            src.push_str(&format!("    {entry}\n"));
        }
        let line = 4 + own.len();
        src.push_str("    poke_interval: soon\n    soft_fail: 5\n");
        let want = format!(
            "{line}:20: `poke_interval` of task `t`: `soon` is not a duration; write e.g. 30s, \
             10m, 1h30m or seconds"
        );
        assert_eq!(errors(&src), [want], "{name}\n{src}");
        // A near miss of a poke key is suggested, as for the type's own keys.
        let src = one_task(name, &format!("{}, poke_intervall: 5", minimal(name)));
        let msg = errors(&src).join("\n");
        assert!(msg.contains("did you mean `poke_interval`?"), "{name}: {msg}");
    }
}

#[test]
fn sensor_and_own_errors_come_in_the_order_written() {
    let own_first = errors("tasks:\n  t: {type: file_sensor, path: 5, poke_interval: abc}\n");
    assert_eq!(own_first.len(), 1, "{own_first:?}");
    assert!(own_first[0].starts_with("2:32: `path` of task `t` must be a string"), "{own_first:?}");
    let poke_first = errors("tasks:\n  t: {type: file_sensor, poke_interval: abc, path: 5}\n");
    assert_eq!(poke_first.len(), 1, "{poke_first:?}");
    assert!(poke_first[0].starts_with("2:41: `poke_interval` of task `t`"), "{poke_first:?}");
    // A missing field of the type is reported once its poke keys are valid.
    let missing = errors("tasks:\n  t: {type: file_sensor, timeout: 5}\n");
    assert_eq!(missing, ["2:3: task `t` (type file_sensor) is missing the required field `path`"]);
}

#[test]
fn types_that_do_not_poke_refuse_the_poke_keys() {
    let sensors = sensor_types();
    for name in TaskKind::TYPE_NAMES.into_iter().filter(|n| !sensors.contains(n)) {
        let settings = format!("{}, poke_interval: 5", minimal(name));
        let src = one_task(name, settings.trim_start_matches(", "));
        let msg = errors(&src).join("\n");
        assert!(msg.contains("unknown field `poke_interval` in task `t`"), "{name}: {msg}");
    }
}

#[test]
fn the_connections_flag_matches_the_connection_fields() {
    // A type whose settings name a connection must be declared `connections`, or its worker
    // would not load the stored connections; one without must not, to keep the hot path lean.
    for name in TaskKind::TYPE_NAMES {
        let dag = parse(&one_task(name, minimal(name))).expect("valid");
        let kind = &dag.tasks["t"].kind;
        let has_field = format!("{kind:?}").contains("connection: ");
        assert_eq!(kind.uses_connections(), has_field, "{name}: {kind:?}");
    }
}

/// `a: 1, b: {c: 2}` -> `["a: 1", "b: {c: 2}"]`: the top-level entries of a flow mapping body.
fn split_entries(body: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start, mut quoted) = (Vec::new(), 0i32, 0, false);
    for (i, c) in body.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !body[start..].trim().is_empty() {
        out.push(body[start..].trim());
    }
    out
}
