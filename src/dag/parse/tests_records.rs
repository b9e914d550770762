//! Parse tests of the record settings every Kafka task shares: formats, Avro schemas inline and
//! in files beside the DAG, transforms, and the load errors that name task and field.

use std::path::Path;

use super::{parse_dag_in, parse_dag_str};
use crate::dag::kinds::{Format, KeyFormat, SchemaSource, SubjectStrategy, Transform};
use crate::dag::{Dag, LoadError, TaskKind};

fn parse(src: &str) -> Result<Dag, Vec<LoadError>> {
    parse_dag_str(src, Path::new("dags/records.yaml"))
}

fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
    }
}

#[test]
fn defaults_are_json_with_string_keys_and_no_steps() {
    let dag =
        parse("tasks:\n  p: {type: kafka_produce, topic: t, records: [{a: 1}]}\n").expect("ok");
    let TaskKind::KafkaProduce(t) = &dag.tasks["p"].kind else { panic!() };
    let r = &t.record_settings;
    assert_eq!((r.format, r.key_format), (Format::Json, KeyFormat::String));
    assert_eq!(r.schema_registry, "schema_registry_default");
    assert_eq!(r.subject_strategy, SubjectStrategy::Topic);
    assert!(r.transform.is_empty() && r.schema.is_none());
}

#[test]
fn avro_settings_and_transforms_on_every_kafka_type() {
    let src = r#"
tasks:
  produce:
    type: kafka_produce
    topic: arrivals
    records: [{id: 1}]
    format: avro
    schema: {type: record, name: Arrival, fields: [{name: id, type: long}]}
    key_format: avro
    key_schema: long
    subject_strategy: topic_record
    transform:
      - filter: "id > 0"
      - compute: {id2: "id * 2"}
  sink:
    type: kafka_to_s3
    topic: arrivals
    group_id: g
    url: file:///tmp/x
    format: avro
    transform: [{flatten: {}}, {select: [id, a.b]}, {rename: {a.b: ab}}, {drop: [x]}]
"#;
    let dag = parse(src).unwrap_or_else(|e| panic!("{e:#?}"));
    let TaskKind::KafkaProduce(p) = &dag.tasks["produce"].kind else { panic!() };
    let r = &p.record_settings;
    assert_eq!(r.format, Format::Avro);
    let schema = r.value_schema().expect("parsed at load time");
    assert_eq!(schema.schema.name().map(|n| n.fullname(None)), Some("Arrival".into()));
    assert_eq!(r.key_avro_schema().map(|s| s.json.as_str()), Some("\"long\""));
    assert_eq!(r.subject_strategy, SubjectStrategy::TopicRecord);
    assert_eq!(r.transform[0], Transform::Filter("id > 0".into()));
    let TaskKind::KafkaToS3(s) = &dag.tasks["sink"].kind else { panic!() };
    assert_eq!(s.record_settings.transform.len(), 4);
    assert!(s.record_settings.schema.is_none(), "a consumer may read with the writer schema");
}

#[test]
fn broken_schemas_and_expressions_are_load_errors_at_their_task_and_field() {
    let src = r#"
tasks:
  p:
    type: kafka_produce
    topic: t
    records: [{a: 1}]
    format: avro
    schema: {type: record, name: R, fields: [{name: a, type: strng}]}
  q:
    type: kafka_to_s3
    topic: t
    group_id: g
    url: file:///tmp/x
    transform:
      - filter: "a >"
      - compute: {b: "1 +"}
  u:
    type: kafka_to_s3
    topic: t
    group_id: g
    url: file:///tmp/x
    transform: [{selct: [a]}]
  r:
    type: http_to_kafka
    url: http://x/
    topic: t
    format: avro
"#;
    let errs = errors(src);
    let has = |want: &str| errs.iter().any(|e| e.contains(want));
    assert!(
        has("8:13: `schema` of task `p`: not a valid Avro schema: Unknown primitive type: strng"),
        "{errs:#?}"
    );
    assert!(
        has("15:17: `filter` (step 1 of the transform of task `q`) is not a valid expression"),
        "{errs:#?}"
    );
    assert!(
        has("`compute.b` (step 2 of the transform of task `q`) is not a valid expression"),
        "{errs:#?}"
    );
    assert!(has("unknown field `selct`, expected one of `select`"), "{errs:#?}");
    assert!(has("task `r` has `format: avro` and needs the `schema` it writes with"), "{errs:#?}");
}

#[test]
fn schema_files_are_read_beside_the_dag_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let avsc =
        r#"{"type": "record", "name": "Station", "fields": [{"name": "id", "type": "int"}]}"#;
    std::fs::write(dir.path().join("station.avsc"), avsc).expect("write");
    std::fs::write(dir.path().join("broken.avsc"), "{\"type\": \"recrd\"}").expect("write");
    let src = |file: &str| {
        format!(
            "tasks:\n  p:\n    type: kafka_produce\n    topic: t\n    records: [{{id: 1}}]\n    format: avro\n    schema: {{file: {file}}}\n"
        )
    };
    let parse_in = |s: &str| parse_dag_in(s, Path::new("d.yaml"), Some(dir.path()));
    let dag = parse_in(&src("station.avsc")).unwrap_or_else(|e| panic!("{e:#?}"));
    let TaskKind::KafkaProduce(p) = &dag.tasks["p"].kind else { panic!() };
    let schema = p.record_settings.value_schema().expect("resolved");
    assert_eq!(schema.file.as_deref(), Some("station.avsc"));
    let msg = |s: &str| parse_in(s).expect_err("error").remove(0).message;
    assert!(
        msg(&src("broken.avsc"))
            .contains("`schema` of task `p`: `broken.avsc` is not a valid Avro schema")
    );
    assert!(msg(&src("missing.avsc")).contains("cannot read `missing.avsc`"));
    for outside in ["/etc/passwd", "../x.avsc", "a/../../x.avsc"] {
        assert!(msg(&src(outside)).contains("a relative path inside the DAG file's folder"));
    }
    // Without the folder (a stored copy), the file stays named, to be read by the run.
    let stored = parse(&src("station.avsc")).expect("a stored copy parses");
    let TaskKind::KafkaProduce(p) = &stored.tasks["p"].kind else { panic!() };
    assert_eq!(p.record_settings.schema, Some(SchemaSource::File("station.avsc".into())));
}
