//! Unit tests of the record layer: Avro values both ways for every type the pipelines use,
//! the Confluent framing, and each transform step.

use apache_avro::Schema;
use serde_json::{Value, json};

use super::avro::Codec;
use super::transform::{Applied, Program};
use super::{frame, unframe};
use crate::dag::kinds::Transform;

const EVERY_TYPE: &str = r#"{
  "type": "record", "name": "Arrival", "namespace": "transit",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "count", "type": "int"},
    {"name": "ratio", "type": "double"},
    {"name": "ok", "type": "boolean"},
    {"name": "station", "type": "string"},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "fare", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "neg", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "trip", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "line", "type": {"type": "enum", "name": "Line", "symbols": ["red", "blue"]}},
    {"name": "delay", "type": ["null", "int"], "default": null},
    {"name": "note", "type": ["null", "string"]},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "counts", "type": {"type": "map", "values": "long"}},
    {"name": "raw", "type": "bytes"},
    {"name": "where", "type": {"type": "record", "name": "Place", "fields": [
      {"name": "lat", "type": "double"}, {"name": "lon", "type": "double"}]}},
    {"name": "from", "type": ["null", "Place"], "default": null},
    {"name": "platform", "type": "string", "default": "1"}
  ]}"#;

fn codec() -> Codec {
    Codec::new(&Schema::parse_str(EVERY_TYPE).expect("schema"))
}

fn full() -> Value {
    json!({
        "id": 9_007_199_254_740_993_i64, "count": 3, "ratio": 0.5, "ok": true, "station": "Clark/Lake",
        "day": "2026-01-02", "t_ms": "03:04:05.123", "t_us": "03:04:05.123456",
        "ts_ms": "2026-01-02T03:04:05.123Z", "ts_us": "2026-01-02T03:04:05.123456Z",
        "fare": "2.50", "neg": "-0.05", "trip": "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "line": "blue", "delay": 4, "note": null, "tags": ["a", "b"], "counts": {"x": 1},
        "raw": "AAEC", "where": {"lat": 41.88, "lon": -87.63},
        "from": {"lat": 1.0, "lon": 2.0}, "platform": "2"
    })
}

#[test]
fn every_type_round_trips_in_the_documented_json_shape() {
    let c = codec();
    let value = full();
    let datum = c.encode(&value).expect("encodes");
    let back = Codec::decode(&c, None, &datum).expect("decodes");
    assert_eq!(back, value);
}

#[test]
fn lenient_inputs_become_the_canonical_shape() {
    let c = codec();
    let mut v = full();
    v["ts_ms"] = json!("2026-01-02T04:04:05.123+01:00");
    v["ts_us"] = json!(1_767_323_045_123_456_i64);
    v["fare"] = json!(2.5);
    v["count"] = json!("3");
    v["day"] = json!(20455);
    let obj = v.as_object_mut().expect("object");
    obj.remove("delay");
    obj.remove("platform");
    obj.remove("note");
    obj.insert("unknown".into(), json!(1));
    let back = Codec::decode(&c, None, &c.encode(&v).expect("encodes")).expect("decodes");
    assert_eq!(back["ts_ms"], "2026-01-02T03:04:05.123Z");
    assert_eq!(back["ts_us"], "2026-01-02T03:04:05.123456Z");
    assert_eq!(back["fare"], "2.50");
    assert_eq!(back["count"], 3);
    assert_eq!(back["day"], "2026-01-02");
    assert_eq!(back["delay"], Value::Null, "default");
    assert_eq!(back["note"], Value::Null, "nullable without a default");
    assert_eq!(back["platform"], "1", "default");
    assert!(back.get("unknown").is_none());
}

#[test]
fn errors_name_the_field() {
    let c = codec();
    let cases = [
        ("line", json!("green"), "field `line` must be one of red, blue"),
        ("count", json!(1_i64 << 40), "field `count` must be a 32-bit whole number"),
        ("fare", json!("2.505"), "field `fare`: `2.505` is not a decimal with at most 2 decimals"),
        ("fare", json!("12345678.00"), "more than 9 digits"),
        ("ts_ms", json!("yesterday"), "field `ts_ms` must be a timestamp"),
        ("trip", json!("nope"), "field `trip` must be a UUID"),
    ];
    for (field, bad, want) in cases {
        let mut v = full();
        v[field] = bad;
        let err = c.encode(&v).expect_err(field);
        assert!(err.contains(want), "{field}: {err}");
    }
    let mut v = full();
    v["where"] = json!({"lat": 1.0});
    let err = c.encode(&v).expect_err("nested");
    assert!(err.contains("field `where.lon` is missing"), "{err}");
    v.as_object_mut().map(|o| o.remove("station"));
    assert!(c.encode(&v).is_err());
}

#[test]
fn a_reader_schema_resolves_the_writer_one() {
    let writer = Codec::new(
        &Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#)
            .expect("w"),
    );
    let reader = Codec::new(&Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":"x"}]}"#).expect("r"));
    let datum = writer.encode(&json!({"a": 5})).expect("encodes");
    let back = Codec::decode(&writer, Some(&reader), &datum).expect("resolves");
    assert_eq!(back, json!({"a": 5, "b": "x"}));
}

#[test]
fn confluent_framing() {
    let framed = frame(258, &[7, 8]);
    assert_eq!(framed, vec![0, 0, 0, 1, 2, 7, 8]);
    assert_eq!(unframe(&framed), Ok((258, &[7u8, 8][..])));
    assert!(unframe(b"{\"a\":1}").unwrap_err().contains("magic byte 0"));
    assert!(unframe(&[0, 1]).unwrap_err().contains("shorter"));
    assert!(unframe(&[]).is_err());
}

fn steps(yaml: &str) -> Vec<Transform> {
    serde_yaml::from_str(yaml).expect("steps")
}

fn run(yaml: &str, record: Value) -> Result<Applied, String> {
    let globals = [("ds".to_string(), minijinja::Value::from("2026-01-02"))].into();
    let program = Program::new(&steps(yaml), globals);
    let pipeline = program.compile().expect("compiles");
    pipeline.apply(record)
}

#[test]
fn transform_steps() {
    let flight = json!({"id": 1, "status": "landed", "airline": {"name": "KLM", "code": "KL"},
                        "times": {"sched": 100, "actual": 220}, "test": false});
    let out = run(
        r#"
- filter: "not test and status != 'cancelled'"
- compute: {delay_min: "(times.actual - times.sched) / 60", day: "ds", airline.upper: "airline.name | upper"}
- flatten: {separator: "_"}
- select: [id, airline_name, airline_upper, delay_min, day]
- rename: {airline_name: airline}
- drop: [day]
"#,
        flight.clone(),
    );
    assert_eq!(
        out,
        Ok(Applied::Keep(
            json!({"id": 1, "airline": "KLM", "airline_upper": "KLM", "delay_min": 2.0})
        ))
    );
    let mut cancelled = flight.clone();
    cancelled["status"] = json!("cancelled");
    assert_eq!(run("[{filter: \"status != 'cancelled'\"}]", cancelled), Ok(Applied::Filtered));
    // A missing field is undefined, not an error: the filter is false.
    assert_eq!(run("[{filter: \"missing\"}]", flight.clone()), Ok(Applied::Filtered));
    let nested =
        run("[{select: [airline.code, id]}, {rename: {airline.code: code}}]", flight.clone());
    assert_eq!(nested, Ok(Applied::Keep(json!({"id": 1, "airline": {}, "code": "KL"}))));
    let whole =
        run("[{compute: {n: \"record.airline.code ~ '-' ~ record.id\"}}, {select: [n]}]", flight);
    assert_eq!(whole, Ok(Applied::Keep(json!({"n": "KL-1"}))));
}

#[test]
fn a_step_that_fails_on_a_record_names_itself() {
    let err =
        run("[{compute: {x: \"missing.deeper\"}}]", json!({"a": 1})).expect_err("undefined.attr");
    assert!(err.starts_with("transform step 1 (compute.x):"), "{err}");
    let err = run("[{drop: [a]}]", json!([1, 2])).expect_err("not an object");
    assert!(err.contains("not a JSON object"), "{err}");
}
