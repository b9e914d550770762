//! Parse tests of the Kafka, Cassandra and S3 task types: their settings and defaults, and the
//! cross-field problems reported with their line and column.

use std::path::Path;
use std::time::Duration;

use super::parse_dag_str;
use crate::dag::kinds::{CqlType, S3Operation, StartFrom, Until};
use crate::dag::{Dag, LoadError, TaskKind};

fn parse(src: &str) -> Result<Dag, Vec<LoadError>> {
    parse_dag_str(src, Path::new("dags/stream.yaml"))
}

fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
    }
}

#[test]
fn kafka_to_cassandra_settings_and_defaults() {
    let src = "\
tasks:
  sink:
    type: kafka_to_cassandra
    topic: users_created
    group_id: '{{ dag_id }}'
    table: spark_streams.created_users
    columns:
      id: {path: login.uuid, type: uuid}
      first_name: name.first
      key: $key
    until: {max_messages: 10}
";
    let dag = parse(src).expect("valid");
    let TaskKind::KafkaToCassandra(t) = &dag.tasks["sink"].kind else { panic!() };
    assert_eq!(t.kafka_connection, "kafka_default");
    assert_eq!(t.cassandra_connection, "cassandra_default");
    assert_eq!(t.until, Until::MaxMessages(10));
    assert_eq!(t.start_from, StartFrom::Earliest);
    assert!(t.write_timestamp);
    assert_eq!(t.concurrency, 256);
    let cols: Vec<(&str, &str, Option<CqlType>)> =
        t.columns.iter().map(|(k, v)| (k.as_str(), v.path.as_str(), v.cql_type)).collect();
    assert_eq!(
        cols,
        [
            ("id", "login.uuid", Some(CqlType::Uuid)),
            ("first_name", "name.first", None),
            ("key", "$key", None)
        ]
    );
    for (until, want) in [
        ("caught_up", Until::CaughtUp),
        ("forever", Until::Forever),
        ("{duration: 5m}", Until::Duration(crate::dag::kinds::Dur(Duration::from_secs(300)))),
    ] {
        let dag = parse(&src.replace("{max_messages: 10}", until)).expect(until);
        let TaskKind::KafkaToCassandra(t) = &dag.tasks["sink"].kind else { panic!() };
        assert_eq!(t.until, want);
    }
}

#[test]
fn streaming_types_with_their_defaults() {
    let src = "\
tasks:
  fetch:
    type: http_to_kafka
    connection: api
    endpoint: /api/
    records: results
    topic: t
    key: '{{ record.id }}'
    pagination: {page_param: page, last_page: info.pages}
  lake:
    type: kafka_to_s3
    topic: t
    group_id: g
    url: 's3://bucket/quotes'
  ls:
    type: s3
    operation: list
    url: 's3://bucket/quotes/'
  wait:
    type: kafka_sensor
    topic: t
    group_id: g
    min_messages: 5
    poke_interval: 2s
";
    let dag = parse(src).expect("valid");
    let TaskKind::HttpToKafka(h) = &dag.tasks["fetch"].kind else { panic!() };
    let p = h.pagination.as_ref().expect("pagination");
    assert_eq!((p.start_page, p.max_pages, h.request_retries), (1, 1000, 3));
    let TaskKind::KafkaToS3(s) = &dag.tasks["lake"].kind else { panic!() };
    assert_eq!((s.max_records, s.max_age.0), (100_000, Duration::from_secs(60)));
    assert_eq!(s.s3_connection, "aws_default");
    let TaskKind::S3(l) = &dag.tasks["ls"].kind else { panic!() };
    assert_eq!((l.operation, l.max_keys), (S3Operation::List, 1000));
    let sensor = dag.tasks["wait"].kind.sensor().expect("a sensor");
    assert_eq!(sensor.poke_interval, Duration::from_secs(2));
}

#[test]
fn cross_field_problems_are_load_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "tasks:\n  p:\n    type: kafka_produce\n    topic: t\n",
            "2:3: task `p` (kafka_produce) needs exactly one of `records`, `file` or `xcom`",
        ),
        (
            "tasks:\n  s:\n    type: s3\n    operation: put\n    source: /tmp/x\n",
            "2:3: task `s` (s3 put) needs `dest`",
        ),
        (
            "tasks:\n  s:\n    type: s3\n    operation: list\n    url: 'bucket/x'\n",
            "5:10: `url` of task `s` is `bucket/x`; write s3://bucket/key or file:///folder/key",
        ),
        (
            "tasks:\n  k:\n    type: kafka_to_cassandra\n    topic: t\n    group_id: g\n    \
             table: a.b.c\n    columns: {id: $nope}\n",
            "6:12: `table` of task `k` is `a.b.c`",
        ),
        (
            "tasks:\n  k:\n    type: kafka_to_cassandra\n    topic: t\n    group_id: g\n    \
             table: ks.t\n    columns: {id: $nope}\n    until: sometimes\n",
            "`until` must be caught_up, forever, {max_messages: N} or {duration: 5m}",
        ),
        (
            "tasks:\n  h:\n    type: http_to_kafka\n    url: 'http://x/'\n    topic: t\n    \
             pagination: {max_pages: 3}\n",
            "6:5: `pagination` of task `h` needs exactly one of `next_link`",
        ),
        (
            "tasks:\n  h:\n    type: http_to_kafka\n    topic: t\n",
            "task `h` (http_to_kafka) needs either `url`, or `connection` and `endpoint`",
        ),
        (
            "tasks:\n  c:\n    type: cql\n    statements: []\n",
            "4:5: task `c` (cql) has no `statements`",
        ),
        (
            "tasks:\n  c:\n    type: kafka_sensor\n    topic: t\n    min_mesages: 3\n",
            "unknown field `min_mesages` in task `c`; did you mean `min_messages`?",
        ),
    ];
    for (src, want) in cases {
        let errs = errors(src);
        assert!(errs.iter().any(|e| e.contains(want)), "{src}\nwant: {want}\ngot: {errs:#?}");
    }
    // The column path is checked too, beside the table.
    let errs = errors(cases[3].0);
    assert!(errs.iter().any(|e| e.contains("column `id` of task `k` reads `$nope`")), "{errs:?}");
}
