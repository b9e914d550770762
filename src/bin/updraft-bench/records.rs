//! `updraft-bench records`: the per-message cost of the record layer, in this process, no
//! servers: Avro encode and decode (Confluent framing included) of a pipeline-sized record with
//! every logical type, next to JSON parse + print of the same record, and a typical transform
//! (filter, compute, flatten, select, rename).
//!
//! Each figure is the median of five rounds of `n` messages, so one slow round (another
//! process on the two cores) does not decide it.

use std::time::Instant;

use apache_avro::Schema;
use serde_json::{Value, json};
use updraft::dag::kinds::Transform;
use updraft::operators::records::avro::Codec;
use updraft::operators::records::transform::{Applied, Program};
use updraft::operators::records::{frame, unframe};

const SCHEMA: &str = include_str!("../../../tests/fixtures/avro/arrival.avsc");

fn record(i: i64) -> Value {
    json!({
        "id": i, "count": 3, "ratio": 0.5, "ok": true, "station": "Clark/Lake",
        "day": "2026-01-02", "t_ms": "03:04:05.123", "t_us": "03:04:05.123456",
        "ts_ms": "2026-01-02T03:04:05.123Z", "ts_us": "2026-01-02T03:04:05.123456Z",
        "fare": "2.50", "trip": "67e55044-10b1-426f-9247-bb680e5fe0c8", "line": "blue",
        "delay": 4, "note": null, "tags": ["a", "b"], "counts": {"x": 1}, "raw": "AAEC",
        "where": {"lat": 41.88, "lon": -87.63}, "from": {"lat": 1.5, "lon": -2.5}
    })
}

/// Median nanoseconds per message of `f` over five rounds of `n`.
fn per_message(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn line(what: &str, ns: f64, bytes: usize) {
    println!("  {what:<44} {:>8.2} µs/msg {:>10.0} msg/s  ({bytes} B)", ns / 1000.0, 1e9 / ns);
}

pub fn run(n: usize) {
    let schema = Schema::parse_str(SCHEMA).expect("the fixture schema");
    let codec = Codec::new(&schema);
    let rec = record(42);
    let json_text = rec.to_string();
    let framed = frame(7, &codec.encode(&rec).expect("encodes"));
    println!("records: {n} messages x 5 rounds, median per message (one core)");

    let ns = per_message(n, |_| {
        let v: Value = serde_json::from_str(&json_text).expect("JSON");
        std::hint::black_box(v.to_string());
    });
    line("JSON parse + print (baseline)", ns, json_text.len());
    let ns = per_message(n, |_| {
        let datum = codec.encode(&rec).expect("encodes");
        std::hint::black_box(frame(7, &datum));
    });
    line("Avro encode (JSON value -> framed datum)", ns, framed.len());
    let ns = per_message(n, |_| {
        let (_, datum) = unframe(&framed).expect("framed");
        std::hint::black_box(Codec::decode(&codec, None, datum).expect("decodes"));
    });
    line("Avro decode (framed datum -> JSON value)", ns, framed.len());

    let steps: Vec<Transform> = serde_yaml::from_str(
        r#"
- filter: "ok and line != 'red'"
- compute: {fare_cents: "fare | float * 100", late: "delay > 2"}
- flatten: {separator: "_"}
- select: [id, station, ts_ms, fare_cents, late, where_lat, where_lon]
- rename: {where_lat: lat, where_lon: lon}
"#,
    )
    .expect("steps");
    let program = Program::new(&steps, Default::default());
    let pipeline = program.compile().expect("compiles");
    let mut kept = 0;
    let ns = per_message(n, |_| {
        if let Ok(Applied::Keep(v)) = pipeline.apply(rec.clone()) {
            kept += 1;
            std::hint::black_box(v);
        }
    });
    assert_eq!(kept, 5 * n, "every record passes the filter");
    line("transform: filter, 2 computes, flatten, select, rename", ns, 0);
    let select: Vec<Transform> =
        serde_yaml::from_str("[{select: [id, station, ts_ms]}, {rename: {ts_ms: at}}]")
            .expect("steps");
    let program = Program::new(&select, Default::default());
    let pipeline = program.compile().expect("compiles");
    let ns = per_message(n, |_| {
        std::hint::black_box(pipeline.apply(rec.clone()).ok());
    });
    line("transform: select, rename (no expression)", ns, 0);
    let ns = per_message(n, |_| {
        std::hint::black_box(rec.clone());
    });
    line("(the record's clone, included in the two above)", ns, 0);
}
