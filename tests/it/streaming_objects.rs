//! S3 and the object-producing task types against the real servers (moto's S3 server and
//! Kafka on 127.0.0.1): s3 put/get/copy/delete/list on S3 and on a local folder,
//! s3_key_sensor, kafka_to_s3 (object names, contents, a re-run that adds nothing),
//! kafka_sensor, and http_to_kafka (pages, retries on 503) against a local HTTP server.

use crate::support::operators as operators_support;
use crate::support::streaming as streaming_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use updraft::operators::{OperatorError, Outcome, execute};

use operators_support::Fixture;
use streaming_support::{Servers, unique};

async fn fixture(servers: &Servers, tasks: &[(&str, &str)], extra: &[(&str, &str)]) -> Fixture {
    let mut vars = servers.conns();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Fixture::with_conns(tasks, &vars).await
}

fn done(r: Result<Outcome, OperatorError>) -> Value {
    match r {
        Ok(Outcome::Done(Some(v))) => v,
        other => panic!("expected Done with XCom, got {other:?}"),
    }
}

fn bucket_name() -> String {
    unique("b").replace('_', "-")
}

#[tokio::test]
async fn s3_operations_and_key_sensor_on_s3_and_local_folders() {
    let Some(s) = Servers::get() else { return };
    let bucket = bucket_name();
    s.create_bucket(&bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for (name, text) in [("a.csv", "1,2\n"), ("b.csv", "3,4\n"), ("c.txt", "x")] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let f = fixture(
        &s,
        &[
            ("wait", &format!("type: s3_key_sensor\nkey: 's3://{bucket}/in/'")),
            ("wait_one", &format!("type: s3_key_sensor\nkey: 's3://{bucket}/copy/a.csv'")),
            ("put", &format!("type: s3\noperation: put\nsource: '{d}/*.csv'\ndest: 's3://{bucket}/in/'")),
            ("list", &format!("type: s3\noperation: list\nurl: 's3://{bucket}/in/'")),
            ("get", &format!("type: s3\noperation: get\nsource: 's3://{bucket}/in/b.csv'\ndest: '{d}/got/b.csv'")),
            ("copy", &format!("type: s3\noperation: copy\nsource: 's3://{bucket}/in/a.csv'\ndest: 's3://{bucket}/copy/'")),
            ("to_local", &format!("type: s3\noperation: copy\nsource: 's3://{bucket}/in/a.csv'\ndest: 'file://{d}/lake/a.csv'")),
            ("local_list", &format!("type: s3\noperation: list\nurl: 'file://{d}/lake/'")),
            ("delete", &format!("type: s3\noperation: delete\nurl: 's3://{bucket}/in/'")),
            ("missing", &format!("type: s3\noperation: get\nsource: 's3://{bucket}/nope'\ndest: '{d}/x'")),
        ],
        &[],
    )
    .await;
    let run = |t: &'static str| {
        let f = &f;
        async move { execute(&f.ctx(t).await).await }
    };
    assert!(matches!(run("wait").await, Ok(Outcome::NotYet(_))));
    let put = done(run("put").await);
    assert_eq!(put, json!([format!("s3://{bucket}/in/a.csv"), format!("s3://{bucket}/in/b.csv")]));
    assert_eq!(done(run("wait").await).as_array().map(Vec::len), Some(2));
    assert_eq!(done(run("list").await), put);
    assert_eq!(done(run("get").await)["bytes"], json!(4));
    assert_eq!(std::fs::read_to_string(dir.path().join("got/b.csv")).unwrap(), "3,4\n");
    assert!(matches!(run("wait_one").await, Ok(Outcome::NotYet(_))));
    assert_eq!(done(run("copy").await), json!(format!("s3://{bucket}/copy/a.csv")));
    assert!(matches!(run("wait_one").await, Ok(Outcome::Done(_))));
    assert_eq!(done(run("to_local").await), json!(format!("file://{d}/lake/a.csv")));
    assert_eq!(done(run("local_list").await), json!([format!("file://{d}/lake/a.csv")]));
    assert_eq!(std::fs::read_to_string(dir.path().join("lake/a.csv")).unwrap(), "1,2\n");
    assert_eq!(done(run("delete").await), json!({"deleted": 2}));
    assert_eq!(s.objects(&bucket, "in").await, vec![]);
    assert!(matches!(run("missing").await, Err(OperatorError::Fatal(m)) if m.contains("nope")));
}

#[tokio::test]
async fn kafka_to_s3_writes_named_objects_once() {
    let Some(s) = Servers::get() else { return };
    let (topic, bucket) = (unique("quotes"), bucket_name());
    s.create_topic(&topic, 3).await;
    s.create_bucket(&bucket).await;
    let ts = 1_767_323_045_006; // 2026-01-02T03:04:05Z
    let msgs: Vec<(Option<String>, Vec<u8>)> = (0..250)
        .map(|i| (Some(format!("k{}", i % 7)), json!({"i": i}).to_string().into_bytes()))
        .collect();
    s.produce_at(&topic, msgs, Some(ts)).await;
    s.produce_at(&topic, vec![(Some("k1".into()), b"{broken".to_vec())], Some(ts)).await;
    let f = fixture(
        &s,
        &[(
            "lake",
            &format!(
                "type: kafka_to_s3\ntopic: {topic}\ngroup_id: {topic}\nurl: 's3://{bucket}/quotes'\n\
                 max_records: 40"
            ),
        )],
        &[],
    )
    .await;
    let out = done(execute(&f.ctx("lake").await).await);
    assert_eq!(
        (out["messages"].clone(), out["records"].clone()),
        (json!(251), json!(250)),
        "{out}"
    );
    assert_eq!(out["dead_letters"], json!(1));
    let objects = s.objects(&bucket, "quotes").await;
    assert_eq!(objects.len() as u64, out["objects"].as_u64().unwrap());
    let mut seen = Vec::new();
    for (key, body) in &objects {
        assert!(key.starts_with("quotes/dt=2026-01-02/hour=03/part-"), "{key}");
        assert!(key.ends_with(".jsonl"), "{key}");
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(!lines.is_empty() && lines.len() <= 40, "{key}: {}", lines.len());
        seen.extend(lines.iter().map(|l| l["i"].as_i64().unwrap()));
    }
    seen.sort();
    assert_eq!(seen, (0..250).collect::<Vec<i64>>(), "every message exactly once");
    let letters = s.read_all(&format!("{topic}.dlq"), Duration::from_secs(20));
    assert_eq!(letters.len(), 1);
    assert!(letters[0].2["updraft.error"].contains("not JSON"), "{letters:?}");

    // A second run of the same group adds nothing.
    let out = done(execute(&f.ctx("lake").await).await);
    assert_eq!(out["messages"], json!(0));
    assert_eq!(s.objects(&bucket, "quotes").await, objects);
}

#[tokio::test]
async fn kafka_sensor_counts_what_a_group_has_not_consumed() {
    let Some(s) = Servers::get() else { return };
    let topic = unique("sensed");
    let f = fixture(
        &s,
        &[
            ("any", &format!("type: kafka_sensor\ntopic: {topic}\nmin_messages: 3")),
            (
                "group",
                &format!("type: kafka_sensor\ntopic: {topic}\ngroup_id: {topic}\nmin_messages: 3"),
            ),
        ],
        &[],
    )
    .await;
    let ctx = f.ctx("any").await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(m)) if m.contains("does not exist")));
    s.create_topic(&topic, 2).await;
    s.produce(&topic, vec![(None, b"1".to_vec()), (None, b"2".to_vec())]).await;
    assert!(matches!(execute(&ctx).await, Ok(Outcome::NotYet(m)) if m.contains("2 message")));
    s.produce(&topic, vec![(None, b"3".to_vec())]).await;
    assert_eq!(done(execute(&ctx).await)["messages"], json!(3));
    assert_eq!(done(execute(&f.ctx("group").await).await)["messages"], json!(3));
}

/// A paged API: `?page=N` serves 2 users per page for pages 1-3, then none; the first
/// request of each page answers 503 once.
async fn paged_api() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new()
        .route(
            "/users",
            get(move |Query(q): Query<std::collections::HashMap<String, String>>| {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n.is_multiple_of(2) {
                        return Err((StatusCode::SERVICE_UNAVAILABLE, "busy"));
                    }
                    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                    let users: Vec<Value> = if page <= 3 {
                        (0..2).map(|i| json!({"id": format!("u{page}-{i}")})).collect()
                    } else {
                        vec![]
                    };
                    Ok(Json(
                        json!({"data": {"users": users}, "next": format!("/cursor?after={page}")}),
                    ))
                }
            }),
        )
        .route(
            "/cursor",
            get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
                let after: usize = q.get("after").and_then(|p| p.parse().ok()).unwrap_or(0);
                let next = (after < 2).then(|| format!("/cursor?after={}", after + 1));
                Json(json!({"data": {"users": [{"id": format!("c{after}")}]}, "next": next}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn http_to_kafka_follows_pages_and_retries_5xx() {
    let Some(s) = Servers::get() else { return };
    let (base, calls) = paged_api().await;
    let (t1, t2) = (unique("pages"), unique("links"));
    let f = fixture(
        &s,
        &[
            (
                "pages",
                &format!(
                    "type: http_to_kafka\nconnection: api\nendpoint: /users\nrecords: data.users\n\
                     topic: {t1}\nkey: '{{{{ record.id }}}}'\npagination: {{page_param: page}}"
                ),
            ),
            (
                "links",
                &format!(
                    "type: http_to_kafka\nconnection: api\nendpoint: /cursor\nrecords: data.users\n\
                     topic: {t2}\nkey: 'user-{{{{ record.id }}}}'\npagination: {{next_link: next}}"
                ),
            ),
        ],
        &[("UPDRAFT_CONN_API", &base)],
    )
    .await;
    let ctx = f.ctx("pages").await;
    let out = done(execute(&ctx).await);
    assert_eq!((out["pages"].clone(), out["records"].clone()), (json!(4), json!(6)), "{out}");
    assert_eq!(calls.load(Ordering::SeqCst), 8, "each page answered 503 once, then 200");
    let log = std::fs::read_to_string(ctx.log.path().unwrap()).unwrap();
    assert!(log.contains("attempt 1 failed (HTTP status 503"), "{log}");
    let mut keys: Vec<String> =
        s.read_all(&t1, Duration::from_secs(20)).into_iter().filter_map(|m| m.0).collect();
    keys.sort();
    assert_eq!(keys, ["u1-0", "u1-1", "u2-0", "u2-1", "u3-0", "u3-1"]);

    let out = done(execute(&f.ctx("links").await).await);
    assert_eq!((out["pages"].clone(), out["records"].clone()), (json!(3), json!(3)), "{out}");
    let mut keys: Vec<String> =
        s.read_all(&t2, Duration::from_secs(20)).into_iter().filter_map(|m| m.0).collect();
    keys.sort();
    assert_eq!(keys, ["user-c0", "user-c1", "user-c2"]);
}
