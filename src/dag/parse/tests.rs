//! Table-driven tests of `parse_dag_str`: defaults of a valid file, and for each kind of
//! problem the exact line, column and words of the error.

use std::path::Path;
use std::time::Duration;

use super::parse_dag_str;
use crate::dag::{Dag, Foreach, LoadError, Schedule, TaskKind, TriggerRule};

fn parse(src: &str) -> Result<Dag, Vec<LoadError>> {
    parse_dag_str(src, Path::new("dags/sample.yaml"))
}

fn errors(src: &str) -> Vec<LoadError> {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e,
    }
}

#[test]
fn valid_file_with_defaults() {
    let src = "\
schedule: \"@hourly\"
start_date: 2026-01-01
tags: [a, b]
params: {batch_size: 50, nested: {x: [1, 2]}}
default_args:
  retries: 2
  retry_delay: 30s
  owner: data-eng
tasks:
  extract:
    type: bash
    command: echo hi
  load:
    type: empty
    depends_on: extract
    retries: 0
    pool: small
    trigger_rule: all_done
    foreach: [1, two]
";
    let dag = parse(src).expect("valid");
    assert_eq!(dag.dag_id, "sample");
    assert_eq!(dag.fileloc, Path::new("dags/sample.yaml"));
    assert_eq!(dag.schedule, Schedule::parse("@hourly").expect("preset"));
    assert_eq!(
        dag.start_date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-01-01T00:00:00+00:00")
    );
    assert!(!dag.catchup && !dag.is_paused_upon_creation);
    assert_eq!((dag.max_active_runs, dag.max_active_tasks), (16, 16));
    assert_eq!(dag.owner, "data-eng");
    assert_eq!(dag.tags, ["a", "b"]);
    assert_eq!(dag.params["nested"]["x"][1], 2);
    assert_eq!(dag.source, src);
    let ids: Vec<&str> = dag.tasks.keys().map(String::as_str).collect();
    assert_eq!(ids, ["extract", "load"]);
    let extract = &dag.tasks["extract"];
    assert!(matches!(&extract.kind, TaskKind::Bash(b) if b.command == "echo hi"));
    assert_eq!((extract.retries, extract.retry_delay), (2, Duration::from_secs(30)));
    assert_eq!((extract.pool.as_str(), extract.queue.as_str()), ("default_pool", "default"));
    assert_eq!((extract.pool_slots, extract.priority_weight), (1, 1));
    assert_eq!(extract.trigger_rule, TriggerRule::AllSuccess);
    let load = &dag.tasks["load"];
    assert_eq!(load.depends_on, ["extract"]);
    assert_eq!((load.retries, load.pool.as_str()), (0, "small"));
    assert_eq!(load.trigger_rule, TriggerRule::AllDone);
    assert_eq!(load.foreach, Some(Foreach::List(vec![1.into(), "two".into()].into())));
    assert_eq!(dag.graph.topo_order(), ["extract", "load"]);
}

#[test]
fn builtin_task_defaults() {
    let dag = parse("dag_id: d\ntasks:\n  a:\n    type: empty\n").expect("valid");
    let a = &dag.tasks["a"];
    assert_eq!(a.retry_delay, Duration::from_secs(300));
    assert_eq!((a.retries, a.retry_exponential_backoff), (0, false));
    assert_eq!((a.max_retry_delay, a.execution_timeout), (None, None));
    assert_eq!(dag.owner, "updraft");
    assert_eq!(dag.schedule, Schedule::None);
}

/// (source, expected errors as (line, column, words the message contains)).
type Case = (&'static str, &'static [(usize, usize, &'static str)]);

#[test]
fn errors_are_located_and_worded() {
    let cases: &[Case] = &[
        ("dag_id: x\ntasks: [\n", &[(3, 1, "YAML syntax error")]),
        (
            "tasks:\n  extract:\n    type: bash\n    command: x\n    retires: 3\n",
            &[(5, 5, "unknown field `retires` in task `extract`; did you mean `retries`?")],
        ),
        (
            "shedule: x\ntasks: {a: {type: empty}}\n",
            &[(1, 1, "unknown top-level field `shedule`; did you mean `schedule`?")],
        ),
        (
            "tasks:\n  a:\n    type: bassh\n",
            &[(
                3,
                11,
                "unknown task type `bassh` in task `a`; did you mean `bash`? (valid types: b",
            )],
        ),
        (
            "tasks:\n  a:\n    type: bash\n",
            &[(2, 3, "task `a` (type bash) is missing the required field `command`")],
        ),
        (
            "tasks:\n  a:\n    command: x\n",
            &[(2, 3, "task `a` is missing the required field `type`")],
        ),
        (
            "tasks:\n  a:\n    type: empty\n    retries: many\n",
            &[(
                4,
                14,
                "`retries` of task `a` must be a whole number (0 or more), not the text `many`",
            )],
        ),
        (
            "tasks:\n  a:\n    type: bash\n    command: 5\n",
            &[(4, 14, "`command` of task `a` must be a string, not the number `5`")],
        ),
        (
            "tasks:\n  a:\n    type: bash\n    command: x\n    env: {PORT: 80}\n",
            &[(5, 17, "`env.PORT` of task `a` must be a string")],
        ),
        (
            "tasks:\n  a: {type: empty, depends_on: [c]}\n  b: {type: empty, depends_on: [a]}\n  \
             c: {type: empty, depends_on: [b]}\n",
            &[(2, 33, "cycle: a -> b -> c -> a")],
        ),
        (
            "tasks:\n  transform: {type: empty}\n  load:\n    type: empty\n    \
             depends_on: [extract, trnsform]\n",
            &[
                (5, 18, "task `load` depends on `extract`, which is not a task of this DAG"),
                (
                    5,
                    27,
                    "depends on `trnsform`, which is not a task of this DAG; did you mean \
                     `transform`?",
                ),
            ],
        ),
        (
            "tasks:\n  a:\n    type: empty\n    depends_on: a\n",
            &[(4, 17, "task `a` depends on itself")],
        ),
        (
            "tasks:\n  a: {type: empty}\n  a: {type: bash}\n",
            &[(3, 3, "duplicate task id `a`; it is already defined on line 2")],
        ),
        (
            "schedule: '0 25 * * *'\ntasks: {a: {type: empty}}\n",
            &[(1, 11, "invalid schedule `0 25 * * *`: hour field `25`")],
        ),
        (
            "tasks:\n  a:\n    type: empty\n    retry_delay: 5 parsecs\n",
            &[(4, 18, "`retry_delay` of task `a`: `5 parsecs` is not a duration")],
        ),
        (
            "tasks:\n  a:\n    type: file_sensor\n    path: x\n    timeout: soon\n",
            &[(5, 14, "`timeout` of task `a`: `soon` is not a duration")],
        ),
        (
            "start_date: 2026-13-01\ntasks: {a: {type: empty}}\n",
            &[(1, 13, "`start_date`: `2026-13-01` is not a date")],
        ),
        ("dag_id: my dag\ntasks: {a: {type: empty}}\n", &[(1, 9, "invalid dag_id `my dag`")]),
        ("tasks:\n  a/b: {type: empty}\n", &[(2, 3, "invalid task id `a/b`")]),
        (
            "tasks:\n  h:\n    type: http\n    method: GET\n",
            &[(2, 3, "task `h` (http) needs either `url`, or `connection` and `endpoint`")],
        ),
        (
            "tasks:\n  h:\n    type: http_sensor\n    url: http://x\n    connection: c\n",
            &[(4, 5, "sets both `url` and `connection`")],
        ),
        ("tasks: {}\n", &[(1, 1, "`tasks` is empty")]),
        ("dag_id: x\n", &[(1, 1, "missing the required field `tasks`")]),
        (
            "tasks:\n  a:\n    type: empty\n    trigger_rule: all_sucess\n",
            &[(
                4,
                19,
                "unknown trigger rule `all_sucess` in `trigger_rule` of task `a`; did you mean",
            )],
        ),
        (
            "default_args:\n  start_date: 2026-01-01\ntasks: {a: {type: empty}}\n",
            &[(2, 3, "`start_date` belongs at the top level")],
        ),
        (
            "tasks:\n  a:\n    type: empty\n    foreach: a, b\n",
            &[(4, 14, "`foreach` of task `a` must be a list")],
        ),
        (
            "start_date: 2026-02-01\nend_date: 2026-01-01\ntasks: {a: {type: empty}}\n",
            &[(2, 11, "`end_date` is before `start_date`")],
        ),
        ("- a\n- b\n", &[(1, 1, "a DAG file must be a mapping")]),
        ("", &[(1, 1, "the file is empty")]),
        (
            "schedule: \"@once\"\ntasks: {a: {type: empty}}\n",
            &[(1, 11, "`schedule: \"@once\"` needs a `start_date`")],
        ),
        ("tasks:\n  a:\n    type: 5\n", &[(3, 11, "`type` of task `a` must be a string")]),
        (
            // Several problems in one file are all reported, top to bottom.
            "catchup: maybe\ntasks:\n  a:\n    type: empty\n    retires: 1\n  \
             b:\n    type: nope\n    depends_on: [zz]\n",
            &[
                (1, 10, "`catchup` must be true or false"),
                (5, 5, "unknown field `retires`"),
                (7, 11, "unknown task type `nope`"),
                (8, 18, "depends on `zz`"),
            ],
        ),
    ];
    for (src, want) in cases {
        let got = errors(src);
        let summary: Vec<String> = got.iter().map(|e| e.to_string()).collect();
        assert_eq!(got.len(), want.len(), "{src}\n{summary:#?}");
        for (e, (line, column, words)) in got.iter().zip(want.iter()) {
            assert_eq!((e.line, e.column), (*line, *column), "{src}\n{summary:#?}");
            assert!(e.message.contains(words), "{src}\nwant {words:?} in\n{summary:#?}");
            assert_eq!(e.file, Path::new("dags/sample.yaml"));
        }
    }
}

#[test]
fn display_is_file_line_column_message() {
    let e = errors("tasks: {}\n");
    assert_eq!(
        e[0].to_string(),
        "dags/sample.yaml:1:1: `tasks` is empty; a DAG needs at least one task"
    );
}

#[test]
fn dates_in_every_accepted_form() {
    let cases = [
        ("2026-01-01", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T06:30:00", "2026-01-01T06:30:00+00:00"),
        ("2026-01-01 06:30", "2026-01-01T06:30:00+00:00"),
        ("2026-01-01T06:30:00Z", "2026-01-01T06:30:00+00:00"),
        ("2026-01-01T06:30:00+02:00", "2026-01-01T04:30:00+00:00"),
        ("2026-01-01 06:30:00+02:00", "2026-01-01T04:30:00+00:00"),
    ];
    for (text, want) in cases {
        let got = super::ctx::parse_datetime(text, chrono_tz::Tz::UTC).map(|d| d.to_rfc3339());
        assert_eq!(got.as_deref(), Some(want), "{text}");
    }
}

/// `timezone:` reads the schedule and the file's dates on that zone's wall clock; an unknown
/// zone is an error where it is written, with the nearest name.
#[test]
fn a_dag_has_a_time_zone() {
    let dag = parse(
        "dag_id: paris\nstart_date: 2026-03-01\nend_date: '2026-07-01 06:30'\n\
         schedule: '0 2 * * *'\ntimezone: Europe/Paris\ntasks:\n  a: {type: empty}\n",
    )
    .expect("valid");
    assert_eq!(dag.timezone, chrono_tz::Europe::Paris);
    assert_eq!(
        dag.start_date.map(|d| d.to_rfc3339()).as_deref(),
        Some("2026-02-28T23:00:00+00:00")
    );
    assert_eq!(dag.end_date.map(|d| d.to_rfc3339()).as_deref(), Some("2026-07-01T04:30:00+00:00"));
    let first = dag.schedule.next_fire_after(dag.start_date.expect("start"));
    assert_eq!(first.map(|d| d.to_rfc3339()).as_deref(), Some("2026-03-01T01:00:00+00:00"));
    // An offset written in the file wins over the zone.
    let explicit = super::ctx::parse_datetime("2026-03-01T00:00:00Z", chrono_tz::Europe::Paris);
    assert_eq!(explicit.map(|d| d.to_rfc3339()).as_deref(), Some("2026-03-01T00:00:00+00:00"));
    // A wall time skipped by the spring change is the first instant after it.
    let gap = super::ctx::parse_datetime("2026-03-29 02:30", chrono_tz::Europe::Paris);
    assert_eq!(gap.map(|d| d.to_rfc3339()).as_deref(), Some("2026-03-29T01:00:00+00:00"));

    let errors = parse("dag_id: x\ntimezone: Europe/Pariss\ntasks:\n  a: {type: empty}\n")
        .expect_err("unknown zone");
    let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(text.contains(":2:11:"), "where it is written: {text}");
    assert!(
        text.contains("unknown time zone `Europe/Pariss`; did you mean `Europe/Paris`?"),
        "{text}"
    );
    let errors =
        parse("dag_id: x\ntimezone: 3\ntasks:\n  a: {type: empty}\n").expect_err("a number");
    assert!(errors.iter().any(|e| e.to_string().contains("timezone")), "{errors:?}");
}

#[test]
fn a_task_pulls_xcom_only_when_its_own_settings_name_it() {
    let dag = parse(
        r#"dag_id: x
tasks:
  list: { type: bash, command: "echo '[1, 2]'" }
  each:
    type: bash
    command: "echo {{ item }}"
    depends_on: [list]
    foreach: "{{ ti.xcom_pull('list') }}"
  sum:
    type: bash
    command: echo
    env: { TOTAL: "{{ ti.xcom_pull('each') | length }}" }
    depends_on: [each]
"#,
    )
    .expect("valid");
    let pulls = |id: &str| dag.tasks[id].pulls_xcom;
    assert!(!pulls("list"));
    assert!(!pulls("each"), "a foreach is rendered by the scheduler, not by the try");
    assert!(pulls("sum"), "a template nested in `env`");
}

#[test]
fn assets_schedules_outlets_and_watches() {
    use crate::dag::assets::{AssetMode, Watch};
    let dag = parse(
        "dag_id: mart\nschedule:\n  cron: '@daily'\n  any:\n    - postgres://mart/top\n    \
         - uri: kafka://flights\n      watch: {type: kafka, topic: flights}\n    \
         - uri: s3://lake/in/\n      watch: {type: s3, prefix: s3://lake/in/, connection: lake, poke_interval: 5s}\n\
         tasks:\n  a: {type: empty, outlets: [s3://lake/out/, report], inlets: postgres://mart/top}\n",
    )
    .expect("valid");
    assert_eq!(dag.schedule.to_string(), "@daily", "the cron part stays a schedule");
    let s = dag.asset_schedule.as_ref().expect("an asset schedule");
    assert_eq!(s.mode, AssetMode::Any);
    assert_eq!(
        s.uris().collect::<Vec<_>>(),
        ["postgres://mart/top", "kafka://flights", "s3://lake/in/"]
    );
    assert_eq!(s.assets[0].watch, None);
    assert_eq!(
        s.assets[1].watch,
        Some(Watch::Kafka {
            connection: "kafka_default".into(),
            topic: "flights".into(),
            group_id: "updraft-watch-flights".into()
        })
    );
    assert_eq!(
        s.assets[2].watch,
        Some(Watch::S3 {
            connection: "lake".into(),
            bucket: "lake".into(),
            prefix: "in/".into(),
            poke_interval: std::time::Duration::from_secs(5)
        })
    );
    assert_eq!(dag.tasks["a"].outlets, ["s3://lake/out/", "report"]);
    assert_eq!(dag.tasks["a"].inlets, ["postgres://mart/top"]);
    let only_assets = parse("dag_id: x\nschedule: {assets: [a, b]}\ntasks:\n  a: {type: empty}\n")
        .expect("valid");
    assert!(!only_assets.schedule.is_scheduled(), "no cron: runs come from assets only");
    assert_eq!(
        only_assets.asset_schedule.map(|s| (s.mode, s.each_event)),
        Some((AssetMode::All, false))
    );
    let each =
        parse("dag_id: x\nschedule: {any: [a, b], each_event: true}\ntasks:\n  a: {type: empty}\n")
            .expect("valid");
    assert_eq!(each.asset_schedule.map(|s| s.each_event), Some(true));

    // (file text after `dag_id: x`, where, what the error says)
    let cases: &[(&str, &str, &str)] = &[
        ("schedule: {assets: []}\n", ":2:20:", "the list of assets is empty"),
        ("schedule: {assets: [a, a]}\n", ":2:24:", "asset `a` is listed twice"),
        ("schedule: {assets: [a], any: [b]}\n", ":2:25:", "has both `assets` and `any`"),
        (
            "schedule: {asets: [a]}\n",
            ":2:12:",
            "unknown field `asets` in `schedule`; did you mean `assets`?",
        ),
        ("schedule: {cron: '@daily'}\n", ":2:1:", "needs `assets:`"),
        ("schedule: {assets: ['a b']}\n", ":2:21:", "contains a space"),
        (
            "schedule: {assets: [{uri: k, watch: {type: kafak}}]}\n",
            ":2:44:",
            "unknown watch type `kafak`; did you mean `kafka`?",
        ),
        (
            "schedule: {assets: [{uri: k, watch: {type: kafka}}]}\n",
            ":2:30:",
            "a kafka watch needs its `topic`",
        ),
        (
            "schedule: {assets: [{uri: k, watch: {type: s3, prefix: lake/in}}]}\n",
            ":2:56:",
            "not an S3 prefix",
        ),
        (
            "schedule: {assets: [{uri: k, watch: {type: kafka, topic: t, group: g}}]}\n",
            ":2:61:",
            "unknown field `group` in a kafka watch",
        ),
        ("schedule: {assets: [{watch: {type: kafka, topic: t}}]}\n", ":2:21:", "needs its `uri`"),
        ("schedule: {cron: '@often', assets: [a]}\n", ":2:18:", "unknown schedule preset `@often`"),
        (
            "schedule: {assets: [a, b], each_event: true}\n",
            ":2:40:",
            "`each_event: true` makes one run per event",
        ),
    ];
    for (text, at, says) in cases {
        let src = format!("dag_id: x\n{text}tasks:\n  a: {{type: empty}}\n");
        let found = errors(&src).iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(found.contains(at) && found.contains(says), "{text}: {found}");
        assert_eq!(found.lines().count(), 1, "one error for one problem: {found}");
    }
    let src = "dag_id: x\ntasks:\n  a: {type: empty, outlets: [x, '1x://y', x]}\n";
    let found = errors(src).iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(found.contains(":3:33:") && found.contains("invalid scheme `1x`"), "{found}");
    assert!(found.contains(":3:43:") && found.contains("asset `x` is listed twice"), "{found}");
}

#[test]
fn deadlines_are_read_and_their_mistakes_located() {
    use crate::dag::deadline::DeadlineRef;
    let dag = parse(
        "dag_id: d\ndeadline: {reference: logical_date, interval: 2h, notify: [pager]}\n\
         tasks:\n  t: {type: empty}\n",
    )
    .expect("valid");
    assert_eq!(dag.deadlines.len(), 1);
    assert_eq!(dag.deadlines[0].reference, DeadlineRef::LogicalDate);
    assert_eq!(dag.deadlines[0].interval, std::time::Duration::from_secs(7200));
    assert_eq!(dag.deadlines[0].notify, vec!["pager".to_string()]);
    assert_eq!(dag.deadlines[0].to_string(), "2h after the logical date");
    let two = parse(
        "deadline:\n  - {reference: queued, interval: 10m, notify: a}\n  - reference: run_start\n    \
         interval: 90\n    notify: [b, c]\ntasks:\n  t: {type: empty}\n",
    )
    .expect("valid");
    let refs: Vec<_> = two.deadlines.iter().map(|d| (d.reference, d.interval.as_secs())).collect();
    assert_eq!(refs, vec![(DeadlineRef::Queued, 600), (DeadlineRef::RunStart, 90)]);
    assert!(parse("tasks:\n  t: {type: empty}\n").expect("valid").deadlines.is_empty());

    let cases = [
        (
            "deadline: {reference: logical_dat, interval: 2h, notify: [p]}\n",
            "1:23: unknown deadline reference `logical_dat`; did you mean `logical_date`?",
        ),
        (
            "deadline: {reference: queued, interval: 0s, notify: [p]}\n",
            "1:41: a deadline's `interval` must be more than zero",
        ),
        ("deadline: {reference: queued, interval: soon, notify: [p]}\n", "1:41: "),
        ("deadline: {reference: queued, interval: 1h}\n", "1:1: a `deadline` needs `notify`"),
        (
            "deadline: {reference: queued, interval: 1h, notify: []}\n",
            "1:53: a deadline's `notify` must name at least one",
        ),
        (
            "deadline: {reference: queued, interval: 1h, notify: [p], notfy: [q]}\n",
            "1:58: unknown field `notfy` in a `deadline`; did you mean `notify`?",
        ),
        ("deadline: 2h\n", "1:11: `deadline` must be a mapping with `reference`"),
        ("deadline:\n  - 2h\n", "2:5: "),
        ("sla: 2h\n", "1:1: `sla` is not a field; a DAG's deadline alert is `deadline: "),
        (
            "deadline: {reference: queued, interval: 1h, notify: [p, p]}\n",
            "notifier `p` is listed twice",
        ),
    ];
    for (head, want) in cases {
        let src = format!("{head}tasks:\n  t: {{type: empty}}\n");
        let text: Vec<String> = errors(&src).iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|e| e.contains(want)), "{head:?}: want {want:?} in {text:?}");
    }
}
