//! Unit tests of the template context and rendering (pure: no database, no I/O).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use indexmap::IndexMap;
use serde_json::json;

use super::*;
use crate::dag::{DagGraph, Foreach, Schedule, Task, TaskKind, TriggerRule};
use crate::model::{DagRunState, RunPk, RunType};

/// A DAG with tasks `a` (plain), `m` (mapped) and `t` (the task rendered).
fn dag() -> Dag {
    let mut tasks = IndexMap::new();
    for (id, foreach) in
        [("a", None), ("m", Some(Foreach::List(vec![json!(1)].into()))), ("t", None)]
    {
        let kind: TaskKind = serde_yaml::from_str("type: empty").unwrap();
        tasks.insert(
            id.to_string(),
            Task {
                task_id: id.to_string(),
                kind,
                depends_on: vec![],
                trigger_rule: TriggerRule::AllSuccess,
                retries: 0,
                retry_delay: Duration::from_secs(1),
                retry_exponential_backoff: false,
                max_retry_delay: None,
                execution_timeout: None,
                pool: "default_pool".into(),
                pool_slots: 1,
                priority_weight: 1,
                queue: "default".into(),
                foreach,
                doc: None,
                group: None,
                pulls_xcom: true,
                outlets: vec![],
                inlets: vec![],
                notify: Default::default(),
            },
        );
    }
    let graph = DagGraph::from_tasks(&tasks).unwrap();
    Dag {
        dag_id: "d".into(),
        fileloc: PathBuf::from("d.yaml"),
        description: None,
        schedule: Schedule::None,
        timezone: chrono_tz::Tz::UTC,
        asset_schedule: None,
        on_run_failure: vec![],
        on_run_success: vec![],
        deadlines: vec![],
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: 1,
        max_active_tasks: 16,
        tags: vec![],
        owner: "me".into(),
        params: json!({"batch": 50, "region": "eu"}).as_object().unwrap().clone(),
        is_paused_upon_creation: false,
        param_specs: Default::default(),
        tasks,
        groups: IndexMap::new(),
        graph,
        source: String::new(),
        version: crate::dag::version_of(""),
    }
}

fn run() -> RunRow {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    RunRow {
        id: RunPk(1),
        dag_id: "d".into(),
        run_id: "manual__x".into(),
        run_type: RunType::Manual,
        state: DagRunState::Running,
        logical_date: t,
        data_interval_start: t,
        data_interval_end: t + chrono::Duration::days(1),
        conf: json!({"region": "us"}).as_object().unwrap().clone(),
        triggered_by: None,
        created_at: t,
        start_date: None,
        end_date: None,
        dag_version: None,
        backfill_id: None,
        note: None,
    }
}

fn xcom(task: &str, map_index: i64, key: &str, value: serde_json::Value) -> XComRow {
    XComRow { task_id: task.into(), map_index, key: key.into(), value }
}

fn renderer_with(item: Option<serde_json::Value>) -> Renderer {
    let dag = dag();
    let run = run();
    let xcoms = vec![
        xcom("a", -1, "return_value", json!({"n": 1})),
        xcom("a", -1, "other", json!("o")),
        xcom("m", 1, "return_value", json!("second")),
        xcom("m", 0, "return_value", json!("first")),
        xcom("s", -1, "return_value", json!("[\"x\", \"y\"]")),
    ];
    let settings = Settings::from_vars([
        ("UPDRAFT_VAR_REGION".to_string(), "env-region".to_string()),
        ("UPDRAFT_VAR_CFG".to_string(), "{\"k\": [1, 2]}".to_string()),
    ])
    .unwrap();
    let db: BTreeMap<String, String> =
        [("region".to_string(), "db-region".to_string()), ("only_db".into(), "db".into())].into();
    Renderer::new(RenderInput {
        dag: &dag,
        task_id: "t",
        run: &run,
        map_index: if item.is_some() { 3 } else { -1 },
        item: item.as_ref(),
        try_number: 2,
        xcoms: &xcoms,
        settings: &settings,
        db_variables: &db,
        triggering_asset_events: None,
    })
}

fn r(text: &str) -> String {
    renderer_with(None).render(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> String {
    match renderer_with(None).render(text) {
        Err(OperatorError::Fatal(m)) => m,
        other => panic!("{text}: expected a fatal error, got {other:?}"),
    }
}

#[test]
fn dates_and_ids() {
    assert_eq!(r("{{ ds }} {{ ds_nodash }}"), "2026-01-02 20260102");
    assert_eq!(r("{{ ts }}"), "2026-01-02T03:04:05+00:00");
    assert_eq!(r("{{ ts_nodash }}"), "20260102T030405");
    assert_eq!(r("{{ logical_date }}"), "2026-01-02T03:04:05+00:00");
    assert_eq!(r("{{ data_interval_end }}"), "2026-01-03T03:04:05+00:00");
    assert_eq!(r("{{ dag_id }}/{{ task_id }}/{{ run_id }}"), "d/t/manual__x");
    assert_eq!(r("{{ map_index }} {{ try_number }}"), "-1 2");
    assert_eq!(r("{{ ti.task_id }} {{ ti.try_number }} {{ dag_run.run_type }}"), "t 2 manual");
}

#[test]
fn params_are_overridden_by_conf() {
    assert_eq!(r("{{ params.batch }} {{ params.region }}"), "50 us");
    assert_eq!(r("{{ conf.region }}"), "us");
}

#[test]
fn plain_text_is_returned_as_is() {
    assert_eq!(r("echo hi\n"), "echo hi\n");
    assert_eq!(r("echo {{ ds }}\n"), "echo 2026-01-02\n");
    assert_eq!(r("{% for i in [1, 2] %}{{ i }}{% endfor %}"), "12");
}

#[test]
fn undefined_names_are_errors() {
    let m = err("x {{ nope }}");
    assert!(m.contains("undefined") && m.contains("line 1: `nope`"), "{m}");
    assert!(err("{{ params.missing }}").contains("undefined"));
    // `item` exists only for mapped instances.
    assert!(err("{{ item }}").contains("undefined"));
    let m = err("line one\n{{ oops(");
    assert!(m.contains("syntax error") && m.contains("line 2"), "{m}");
}

#[test]
fn item_of_a_mapped_instance() {
    let r = renderer_with(Some(json!({"name": "x"})));
    assert_eq!(r.render("{{ item.name }} {{ map_index }}").unwrap(), "x 3");
}

#[test]
fn xcom_pull_forms() {
    assert_eq!(r("{{ ti.xcom_pull('a').n }}"), "1");
    assert_eq!(r("{{ ti.xcom_pull(task_ids='a').n }}"), "1");
    assert_eq!(r("{{ task_instance.xcom_pull(task_ids='a', key='other') }}"), "o");
    assert_eq!(r("{{ ti.xcom_pull(task_ids=['a', 'a'], key='other') | join(',') }}"), "o,o");
    // A mapped upstream gives its instances' values in map-index order.
    assert_eq!(r("{{ ti.xcom_pull('m') | join(',') }}"), "first,second");
    assert_eq!(r("{{ ti.xcom_pull('m', map_indexes=1) }}"), "second");
    assert_eq!(r("{{ ti.xcom_pull('nothing') is none }}"), "True");
    assert_eq!(r("{{ ti.xcom_pull('nothing', default='d') }}"), "d");
    assert_eq!(r("{{ (ti.xcom_pull('s') | fromjson)[1] }}"), "y");
    assert!(err("{{ ti.xcom_pull() }}").contains("xcom_pull needs"));
    assert!(err("{{ ti.xcom_pull('a', bad=1) }}").contains("bad"));
    assert!(err("{{ ti.push(1) }}").contains("xcom_pull"));
}

#[test]
fn variables_env_first_then_db() {
    assert_eq!(r("{{ var('region') }}"), "env-region");
    assert_eq!(r("{{ var('only_db') }} {{ var.value.only_db }}"), "db db");
    assert_eq!(r("{{ var.value.region }}"), "env-region");
    assert_eq!(r("{{ var('missing', 'dflt') }}"), "dflt");
    assert_eq!(r("{{ var.value.get('missing', 'g') }}"), "g");
    assert_eq!(r("{{ var.json.cfg.k[1] }}"), "2");
    let m = err("{{ var('missing') }}");
    assert!(m.contains("`missing`") && m.contains("UPDRAFT_VAR_MISSING"), "{m}");
    let m = err("{{ var.value.missing }}");
    assert!(m.contains("`missing`"), "{m}");
}

#[test]
fn macros() {
    assert_eq!(r("{{ macros.ds_add(ds, 5) }}"), "2026-01-07");
    assert_eq!(r("{{ macros.ds_add('2026-03-01', -1) }}"), "2026-02-28");
    assert_eq!(r("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}"), "02/01/2026");
    assert_eq!(r("{{ macros.ds_format('20260102', '%Y%m%d', '%Y-%m-%d') }}"), "2026-01-02");
    assert!(err("{{ macros.ds_add('jan', 1) }}").contains("YYYY-MM-DD"));
    assert!(err("{{ macros.nope() }}").contains("ds_add"));
}

#[test]
fn render_json_renders_every_string() {
    let v =
        json!({"a": "{{ ds }}", "b": [1, "{{ params.batch }}", {"c": "{{ task_id }}"}], "d": true});
    let out = renderer_with(None).render_json(&v).unwrap();
    assert_eq!(out, json!({"a": "2026-01-02", "b": [1, "50", {"c": "t"}], "d": true}));
}

#[test]
fn render_list_from_expressions_and_text() {
    let rl = |text: &str| renderer_with(None).render_list(text);
    assert_eq!(rl("{{ ti.xcom_pull('m') }}").unwrap(), vec![json!("first"), json!("second")]);
    assert_eq!(rl("{{- [1, {'a': 2}] -}}").unwrap(), vec![json!(1), json!({"a": 2})]);
    // A string XCom holding a JSON list (what a bash task prints).
    assert_eq!(rl("{{ ti.xcom_pull('s') }}").unwrap(), vec![json!("x"), json!("y")]);
    // Mixed text is rendered, then parsed as JSON or YAML.
    assert_eq!(rl("[\"{{ ds }}\", 2]").unwrap(), vec![json!("2026-01-02"), json!(2)]);
    assert_eq!(rl("- a\n- {{ params.batch }}\n").unwrap(), vec![json!("a"), json!(50)]);
    let e = rl("{{ ti.xcom_pull('a') }}").unwrap_err();
    assert!(e.to_string().contains("list"), "{e}");
    assert!(rl("{{ nope }}").unwrap_err().to_string().contains("undefined"));
}

#[test]
fn set_adds_a_variable() {
    let mut r = renderer_with(None);
    r.set("response", &json!({"status": 200, "json": {"ok": true}}));
    assert_eq!(r.render("{{ response.status == 200 and response.json.ok }}").unwrap(), "True");
}

#[test]
fn lone_expressions() {
    assert_eq!(lone_expression("{{ x }}"), Some("x"));
    assert_eq!(lone_expression(" {{- x -}}\n"), Some("x"));
    assert_eq!(lone_expression("{{ a }} {{ b }}"), None);
    assert_eq!(lone_expression("[{{ a }}]"), None);
}

fn shell(r: &Renderer, text: &str) -> String {
    r.render_as(Escaping::Shell, text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A renderer whose context holds hostile values, as a trigger's conf could.
fn hostile() -> Renderer {
    let mut r = renderer_with(None);
    r.set("who", &json!("\"; id; \""));
    r.set("regions", &json!(["north", "it's"]));
    r.set("fake", &json!("\u{FDD0}0000000000000000{}22\u{FDD1}"));
    r
}

#[test]
fn shell_values_are_quoted_where_they_land() {
    let r = hostile();
    assert_eq!(shell(&r, "echo \"hello {{ who }}\""), r#"echo "hello \"; id; \"""#);
    assert_eq!(shell(&r, "echo {{ who }}"), r#"echo '"; id; "'"#);
    assert_eq!(shell(&r, "awk -v n={{ params.batch }} x"), "awk -v n='50' x");
    // Plain text and the other fields are untouched.
    assert_eq!(shell(&r, "echo $HOME"), "echo $HOME");
    assert_eq!(r.render("echo {{ who }}").unwrap(), r#"echo "; id; ""#);
    // Loops and branches: the state comes from the output, so each iteration's spot is known.
    assert_eq!(
        shell(&r, "{% for x in regions %}echo \"{{ x }}\" {{ x }}\n{% endfor %}"),
        "echo \"north\" 'north'\necho \"it's\" 'it'\\''s'\n"
    );
    assert_eq!(shell(&r, "echo {% if 1 %}'{% endif %}{{ who }}'"), r#"echo '"; id; "'"#);
}

#[test]
fn filters_give_one_value() {
    let r = hostile();
    assert_eq!(shell(&r, "echo {{ regions | join(' ') }}"), r"echo 'north it'\''s'");
    assert_eq!(shell(&r, "r='{{ regions | join(' ') }}'"), r"r='north it'\''s'");
    assert_eq!(shell(&r, "echo {{ who | upper }}"), r#"echo '"; ID; "'"#);
    assert_eq!(shell(&r, "echo {{ regions | tojson }}"), r#"echo '["north","it\u0027s"]'"#);
    // `safe` and `autoescape` are not ways out; only `raw` is.
    assert_eq!(shell(&r, "echo {{ who | safe }}"), r#"echo '"; id; "'"#);
    let off = "{% autoescape false %}echo {{ who }}{% endautoescape %}";
    assert_eq!(shell(&r, off), r#"echo '"; id; "'"#);
}

#[test]
fn raw_pastes_verbatim_and_blocks_are_values() {
    let r = hostile();
    assert_eq!(shell(&r, "{{ 'ls; ' | raw }}echo {{ who }}"), r#"ls; echo '"; id; "'"#);
    assert_eq!(shell(&r, "echo {{ who | raw }}"), r#"echo "; id; ""#);
    assert_eq!(r.render("echo {{ who | raw }}").unwrap(), r#"echo "; id; ""#);
    // A captured block is one value; with `raw` it is code whose inner values are still
    // quoted where they land.
    let set = "{% set c %}echo {{ who }}{% endset %}";
    assert_eq!(shell(&r, &format!("{set}{{{{ c }}}}")), r#"'echo "; id; "'"#);
    assert_eq!(shell(&r, &format!("{set}{{{{ c | raw }}}}")), r#"echo '"; id; "'"#);
    let mac = "{% macro q(x) %}\"{{ x }}\"{% endmacro %}";
    assert_eq!(shell(&r, &format!("{mac}echo {{{{ q(who) | raw }}}}")), r#"echo "\"; id; \"""#);
    // Text that looks like a marker is not one: values come out as they went in.
    assert_eq!(shell(&r, "echo {{ fake }}"), "echo '\u{FDD0}0000000000000000{}22\u{FDD1}'");
    assert_eq!(shell(&r, "echo {{ fake | raw }}"), "echo \u{FDD0}0000000000000000{}22\u{FDD1}");
}

#[test]
fn shell_errors_name_the_problem() {
    let r = hostile();
    let fatal = |text: &str| match r.render_as(Escaping::Shell, text) {
        Err(OperatorError::Fatal(m)) => m,
        other => panic!("{text}: expected a fatal error, got {other:?}"),
    };
    let m = fatal("echo ${x:-{{ who }}}");
    assert!(m.contains("${...}") && m.contains("env:"), "{m}");
    assert!(fatal("echo {{ nope }}").contains("undefined"));
    assert!(fatal("echo $(( {{ who }} ))").contains("integer"));
}

#[test]
fn sql_values_leave_the_text_as_sentinels() {
    use crate::dag::sql_text::value_sentinel as v;
    let r = renderer_with(None);
    let (text, values) = r
        .render_sql("SELECT {{ params.region }}, '{{ ds }}' FROM t{% for i in [1, 2] %}, {{ i }}{% endfor %}")
        .unwrap();
    assert_eq!(text, format!("SELECT {}, '{}' FROM t, {}, {}", v(0), v(1), v(2), v(3)));
    assert_eq!(values, ["us", "2026-01-02", "1", "2"]);
    // `| raw` is SQL text, as the author wrote it; plain text needs no rendering.
    let (text, values) = r.render_sql("SELECT * FROM {{ 'events' | raw }}").unwrap();
    assert_eq!((text.as_str(), values.len()), ("SELECT * FROM events", 0));
    assert_eq!(r.render_sql("SELECT 1").unwrap(), ("SELECT 1".to_string(), vec![]));
}
