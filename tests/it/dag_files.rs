//! DAG files from disk, through the public API: every kind of load error in
//! `tests/fixtures/dags_broken` (one file each) with its exact line, column (never 0) and
//! wording, and the valid DAGs of `tests/fixtures/dags_good` with their settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use updraft::dag::kinds::TaskKind;
use updraft::dag::loader::{DagFolder, load_folder};
use updraft::dag::{DagBag, Foreach, Schedule, TriggerRule};

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// (file, expected errors as (line, column, words the message contains)).
type Expect = (&'static str, &'static [(usize, usize, &'static str)]);

const BROKEN: &[Expect] = &[
    ("syntax_error.yaml", &[(6, 1, "YAML syntax error: found unexpected end of stream")]),
    ("unquoted_preset.yaml", &[(2, 11, "must be quoted, e.g. schedule: \"@daily\"")]),
    (
        "unknown_field.yaml",
        &[(6, 5, "unknown field `retires` in task `extract`; did you mean `retries`?")],
    ),
    (
        "unknown_top_field.yaml",
        &[(2, 1, "unknown top-level field `schedule_interval`; it is called `schedule`")],
    ),
    (
        "unknown_type.yaml",
        &[(
            4,
            11,
            "unknown task type `bassh` in task `extract`; did you mean `bash`? (valid types: bash, \
             empty, http, file_sensor, http_sensor, external_task_sensor, trigger_dag, \
             kafka_produce, http_to_kafka, kafka_to_cassandra, kafka_to_s3, s3, cql, kafka_sensor, \
             s3_key_sensor",
        )],
    ),
    (
        "missing_field.yaml",
        &[(3, 3, "task `wait_for_file` (type file_sensor) is missing the required field `path`")],
    ),
    (
        "wrong_type.yaml",
        &[
            (2, 18, "`max_active_runs` must be a whole number (1 or more), not the text `many`"),
            (8, 13, "`env.PORT` of task `a` must be a string, not the number `8080`; quote it"),
        ],
    ),
    ("cycle.yaml", &[(5, 18, "cycle: a -> b -> c -> a")]),
    (
        "unknown_dependency.yaml",
        &[(
            9,
            18,
            "task `load` depends on `trnsform`, which is not a task of this DAG; did you mean \
             `transform`?",
        )],
    ),
    ("self_dependency.yaml", &[(5, 18, "task `a` depends on itself")]),
    (
        "duplicate_task.yaml",
        &[(7, 3, "duplicate task id `extract`; it is already defined on line 3")],
    ),
    (
        "bad_cron.yaml",
        &[(2, 11, "invalid schedule `0 25 * * *`: hour field `25`: `25` is out of range 0-23")],
    ),
    (
        "bad_duration.yaml",
        &[
            (3, 16, "`default_args.retry_delay`: `5 fortnights` is not a duration"),
            (7, 24, "`execution_timeout` of task `a`: `-3` is not a duration"),
        ],
    ),
    ("bad_date.yaml", &[(3, 13, "`start_date`: `2026-02-30` is not a date")]),
    (
        "invalid_ids.yaml",
        &[
            (1, 9, "invalid dag_id `my dag!`; use letters, digits, `_`, `-` and `.` only"),
            (3, 3, "invalid task id `extract data`"),
        ],
    ),
    (
        "http_without_url.yaml",
        &[(3, 3, "task `call_api` (http) needs either `url`, or `connection` and `endpoint`")],
    ),
    (
        "http_url_and_connection.yaml",
        &[(6, 5, "task `api_up` (http_sensor) sets both `url` and `connection`")],
    ),
    ("empty_tasks.yaml", &[(3, 1, "`tasks` is empty; a DAG needs at least one task")]),
    (
        "many_errors.yaml",
        &[
            (2, 10, "`catchup` must be true or false, not the text `sometimes`"),
            (6, 5, "unknown field `comand` in task `extract`; did you mean `command`?"),
            (10, 27, "task `load` depends on `transform`, which is not a task of this DAG"),
            (
                11,
                19,
                "unknown trigger rule `all_sucess` in `trigger_rule` of task `load`; did you mean \
                 `all_success`?",
            ),
        ],
    ),
    ("dup/b_second.yaml", &[(2, 9, "dag_id `shared_id` is already defined in `dup/a_first.yaml`")]),
    // No `dag_id:` line to point at: the whole file, at 1:1 (never 0:0, which no editor opens).
    (
        "stem_dup/b/same.yaml",
        &[(1, 1, "dag_id `same` is already defined in `stem_dup/a/same.yaml`")],
    ),
    ("bad name.yaml", &[(1, 1, "the file name gives the dag_id `bad name`, which is invalid")]),
    (
        "two_documents.yaml",
        &[(4, 1, "a DAG file holds one YAML document, and a second one starts here")],
    ),
    (
        "bad_merge.yaml",
        &[(
            5,
            5,
            "`<<` (a merge key) takes a mapping or a list of mappings, such as `<<: *defaults`",
        )],
    ),
    ("not_utf8.yaml", &[(3, 6, "the file is not UTF-8 text: byte 0xE9 cannot be read here")]),
    (
        "sql_two_statements.yaml",
        &[
            (
                8,
                7,
                "`sql` of task `refresh` holds more than one statement (the second starts on line 2",
            ),
            (9, 3, "task `both` (sql) needs exactly one of `sql` (one statement) or `script`"),
            (18, 18, "`parameters` of task `names`: `my day` is not a name"),
            (
                22,
                20,
                "`script.file` of task `escape` must be a relative path inside the DAG's folder",
            ),
        ],
    ),
];

fn broken() -> DagBag {
    load_folder(fixtures("dags_broken"))
}

#[test]
fn every_broken_file_reports_its_errors_precisely() {
    let bag = broken();
    for (file, want) in BROKEN {
        let got = bag.errors.get(Path::new(file)).unwrap_or_else(|| panic!("no errors for {file}"));
        let shown: Vec<String> = got.iter().map(|e| e.to_string()).collect();
        assert_eq!(got.len(), want.len(), "{file}: {shown:#?}");
        for (e, (line, column, words)) in got.iter().zip(want.iter()) {
            assert_eq!((e.line, e.column), (*line, *column), "{file}: {shown:#?}");
            assert!(e.message.contains(words), "{file}: want {words:?} in {shown:#?}");
            // Display is `file:line:col: message`, the file relative to the DAGs folder.
            assert_eq!(e.to_string(), format!("{file}:{line}:{column}: {}", e.message));
        }
    }
}

#[test]
fn every_broken_file_is_covered_and_only_the_first_duplicate_loads() {
    let bag = broken();
    let mut covered: Vec<&str> = BROKEN.iter().map(|(f, _)| *f).collect();
    covered.sort_unstable();
    let files: Vec<String> = bag.errors.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(files, covered, "a fixture without expectations, or the reverse");
    assert_eq!(bag.dags.keys().collect::<Vec<_>>(), ["same", "shared_id"]);
    assert_eq!(bag.dags["shared_id"].fileloc, Path::new("dup/a_first.yaml"));
    assert_eq!(bag.dags["same"].fileloc, Path::new("stem_dup/a/same.yaml"));
}

#[test]
fn good_dags_load_with_their_settings() {
    let (bag, changed) = DagFolder::new(fixtures("dags_good")).refresh();
    assert!(changed);
    assert!(bag.errors.is_empty(), "{:#?}", bag.errors);
    let ids: Vec<&str> = bag.dags.keys().map(String::as_str).collect();
    let want =
        ["anchors", "api_watch", "etl_daily", "manual_sensors", "once_from_stem", "table_streams"];
    assert_eq!(ids, want);

    let etl = &bag.dags["etl_daily"];
    assert_eq!(etl.schedule.to_string(), "30 2 * * *");
    assert!(etl.catchup);
    assert_eq!(etl.max_active_runs, 1);
    assert_eq!(etl.owner, "data-eng");
    assert_eq!(etl.params["regions"][1], "us");
    assert_eq!(etl.end_date.map(|d| d.to_rfc3339()).as_deref(), Some("2026-12-31T23:59:59+00:00"));
    let transform = &etl.tasks["transform"];
    assert_eq!(transform.retries, 2);
    assert!(transform.retry_exponential_backoff);
    assert_eq!(transform.max_retry_delay, Some(Duration::from_secs(600)));
    assert_eq!(transform.execution_timeout, Some(Duration::from_secs(3600)));
    assert_eq!((transform.pool.as_str(), transform.pool_slots), ("cpu_heavy", 2));
    assert!(matches!(&transform.foreach, Some(Foreach::List(items)) if items.len() == 3));
    let notify = &etl.tasks["notify_failure"];
    assert_eq!((notify.trigger_rule, notify.retries), (TriggerRule::OneFailed, 0));
    assert!(matches!(&notify.kind, TaskKind::Http(h) if h.method == "POST"));
    assert_eq!(etl.graph.topo_order(), ["extract", "transform", "load", "notify_failure"]);
    assert!(etl.graph.is_leaf("notify_failure"));

    let api = &bag.dags["api_watch"];
    let sensor = api.tasks["api_up"].kind.sensor().expect("a sensor");
    assert_eq!(sensor.poke_interval, Duration::from_secs(30));
    assert!(sensor.soft_fail);
    assert!(api.tasks["downstream"].kind.sensor().is_some(), "waits for completion");

    let manual = &bag.dags["manual_sensors"];
    assert_eq!(manual.schedule, Schedule::None);
    assert!(manual.is_paused_upon_creation);
    assert_eq!(manual.fileloc, Path::new("nested/manual_sensors.yml"));
    assert_eq!(manual.graph.upstream("done"), ["wait_file", "wait_etl"]);

    // A byte-order mark, anchors under `x-` keys, merge keys (nested, and a list of them).
    let anchors = &bag.dags["anchors"];
    let (extract, load) = (&anchors.tasks["extract"], &anchors.tasks["load"]);
    assert!(matches!(&extract.kind, TaskKind::Bash(b) if b.env["STAGE"] == "prod"));
    assert_eq!((extract.retries, extract.retry_delay), (3, Duration::from_secs(10)));
    assert_eq!((load.retries, load.pool.as_str()), (1, "loaders"), "own keys win, lists merge");
    assert_eq!(load.depends_on, ["extract"]);

    let once = &bag.dags["once_from_stem"];
    assert_eq!(once.schedule, Schedule::Once);
    let first = once.schedule.next_interval(None, once.start_date, None, false, chrono::Utc::now());
    assert_eq!(first.map(|i| i.start.to_rfc3339()).as_deref(), Some("2026-03-01T05:00:00+00:00"));
}
