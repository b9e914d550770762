//! Tests of the DAG warnings: every `raw` in a bash command or SQL text is reported where it is
//! written.

use std::path::Path;

use super::*;
use crate::dag::parse_dag_str;

fn lint(yaml: &str) -> Vec<String> {
    let dag = parse_dag_str(yaml, Path::new("d.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
    warnings(&dag).iter().map(|w| format!("{}:{}:{}", w.file.display(), w.line, w.column)).collect()
}

#[test]
fn each_raw_in_a_bash_command_is_located() {
    let yaml = "\
dag_id: d
tasks:
  block:
    type: bash
    command: |
      echo {{ params.a | raw }} {{ params.b }}
      {{ params.c|upper|raw }}; {% filter raw %}x{% endfilter %}
  flow: { type: bash, command: 'echo {{ params.a | raw }}' }
  quoted:
    type: bash
    command: \"echo {{ params.a |\\n raw }}\"
";
    assert_eq!(
        lint(yaml),
        ["d.yaml:6:26", "d.yaml:7:25", "d.yaml:7:43", "d.yaml:8:52", "d.yaml:11:14"],
        "the last one cannot be found in the source (a YAML escape), so it points at the field"
    );
    let dag = parse_dag_str(yaml, Path::new("d.yaml")).unwrap();
    let w = &warnings(&dag)[0];
    assert!(w.message.contains("task `block`") && w.message.contains("env:"), "{}", w.message);
    assert!(w.to_string().starts_with("d.yaml:6:26: warning: "), "{w}");
}

#[test]
fn other_uses_of_the_word_are_not_warnings() {
    let yaml = "\
dag_id: d
tasks:
  a:
    type: bash
    command: echo raw '| raw' {{ 'x | raw' }} {{ params.raw }} {{ rawness | lower }}
  b:
    type: http
    url: 'http://127.0.0.1/{{ params.p | raw }}'
";
    assert!(lint(yaml).is_empty(), "{:?}", lint(yaml));
}

#[test]
fn counting_uses_in_templates() {
    assert_eq!(raw_uses("{{ a | raw }}{{ b|raw }}{% filter raw %}{% endfilter %}"), 3);
    assert_eq!(raw_uses("{{ '}}' | raw }}"), 1);
    assert_eq!(raw_uses("{{ a }} | raw {# {{ a | raw }} #}"), 0);
    assert_eq!(raw_uses("{{ a | rawx }} {{ a | safe }}"), 0);
}

#[test]
fn each_raw_in_sql_text_is_located() {
    let yaml = "\
dag_id: d
tasks:
  q:
    type: sql
    connection: db
    sql: SELECT * FROM {{ params.t | raw }}
  s:
    type: sql
    connection: db
    script: |
      DELETE FROM t WHERE day = {{ ds }};
      INSERT INTO {{ params.t | raw }} VALUES (1)
  wait: { type: sql_sensor, connection: db, sql: 'SELECT {{ params.x }}' }
";
    assert_eq!(lint(yaml), ["d.yaml:6:38", "d.yaml:12:33"]);
    let dag = parse_dag_str(yaml, Path::new("d.yaml")).unwrap();
    let w = &warnings(&dag)[0];
    assert!(w.message.contains("task `q`") && w.message.contains("parameters:"), "{}", w.message);
}

#[test]
fn an_asset_schedule_nothing_produces_is_a_warning() {
    let consumer = "\
dag_id: mart
schedule:
  assets:
    - s3://lake/day/
    - kafka://typo
    - uri: kafka://flights
      watch: {type: kafka, topic: flights}
tasks:
  t: {type: empty}
";
    let producer = "dag_id: lake\ntasks:\n  w: {type: empty, outlets: [s3://lake/day/]}\n";
    let dags = [
        parse_dag_str(consumer, Path::new("mart.yaml")).unwrap(),
        parse_dag_str(producer, Path::new("lake.yaml")).unwrap(),
    ];
    let found = asset_warnings(dags.iter());
    let at: Vec<String> =
        found.iter().map(|w| format!("{}:{}:{}", w.file.display(), w.line, w.column)).collect();
    // The produced asset and the watched one are fine; the typo is reported where it is.
    assert_eq!(at, ["mart.yaml:5:7"]);
    assert!(found[0].message.contains("`kafka://typo`"), "{}", found[0].message);
    // Without the producer, its asset is reported too.
    assert_eq!(asset_warnings(dags[..1].iter()).len(), 2);
}
