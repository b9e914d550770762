//! Asset watchers against the real Kafka and S3 servers, in a scheduler process of its own.
//! The Kafka watcher under kill -9 of the scheduler neither loses nor doubles an event: 100
//! messages are exactly 100 events per watching asset, each consumed by exactly one run, with
//! the group's committed offsets at the end of the topic; two DAGs watching one topic share
//! one poller. The S3 watcher records each new object (by key and ETag) once, and an object
//! written before the watcher first started is not new.

use crate::support::common;
use crate::support::streaming::{Servers, unique};

use std::collections::{BTreeSet, HashMap};
use std::process::Child;
use std::time::Duration;

use common::{Db, Env};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use updraft::store::{AssetEventRow, EventsOf};

const LIMIT: Duration = Duration::from_secs(90);

fn start_scheduler(env: &Env, servers: &Servers) -> Child {
    env.scheduler_process(servers.conns())
}

fn stop(mut child: Child) {
    // SAFETY: SIGTERM asks the scheduler to stop gracefully.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    for _ in 0..300 {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn events(env: &Env, uri: &str) -> Vec<AssetEventRow> {
    env.store.asset_events(EventsOf::Asset(uri), None, 10_000).await.expect("events")
}

/// The ids of the events each asset-triggered run of `dag_id` consumed.
async fn consumed(env: &Env, dag_id: &str) -> Vec<Vec<i64>> {
    let runs = env.store.list_runs(dag_id, None, 10_000).await.expect("runs");
    let mut out = Vec::new();
    for r in runs {
        let (evs, total) = env.store.triggering_asset_events(r.id).await.expect("events");
        assert_eq!(total, evs.len() as i64);
        out.push(evs.iter().map(|e| e.id).collect());
    }
    out
}

/// Every event of `uri` consumed by exactly one run of `dag_id`, eventually.
async fn each_consumed_once(env: &Env, dag_id: &str, uri: &str) {
    let want: BTreeSet<i64> = events(env, uri).await.iter().map(|e| e.id).collect();
    env.wait_until(&format!("{dag_id} consumed every event"), LIMIT, || async {
        let got: Vec<i64> = consumed(env, dag_id).await.into_iter().flatten().collect();
        got.len() >= want.len()
    })
    .await;
    let got: Vec<i64> = consumed(env, dag_id).await.into_iter().flatten().collect();
    let unique: BTreeSet<i64> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "{dag_id}: an event consumed twice");
    assert_eq!(unique, want, "{dag_id}: every event, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_watcher_neither_loses_nor_doubles_across_kill_9() {
    let Some(servers) = Servers::get() else { return };
    let topic = unique("flights");
    servers.create_topic(&topic, 3).await;
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    // Three DAGs on one topic: one poller; `each` makes one run per message.
    let dags = [
        ("board", "kafka://flights", ""),
        ("audit", "flights_audit", ""),
        ("each", "flights_each", "\n  each_event: true"),
    ];
    for (dag, uri, each) in dags {
        env.write_dag(
            &format!("{dag}.yaml"),
            &format!(
                "dag_id: {dag}\nschedule:\n  any:\n    - uri: {uri}\n      \
                 watch: {{type: kafka, topic: {topic}}}{each}\ntasks:\n  t: {{type: empty}}\n"
            ),
        );
    }
    let message = |i: usize| (Some(format!("k{i}")), format!(r#"{{"flight": {i}}}"#).into_bytes());
    let first = start_scheduler(&env, &servers);
    env.wait_until("DAGs loaded", LIMIT, || async {
        env.store.get_dag("board").await.is_ok()
            && env.store.get_dag("audit").await.is_ok()
            && env.store.get_dag("each").await.is_ok()
    })
    .await;
    servers.produce(&topic, (0..60).map(message).collect()).await;
    env.wait_until("some events recorded", LIMIT, || async {
        events(&env, "kafka://flights").await.len() >= 20
    })
    .await;
    let mut first = first;
    first.kill().expect("kill -9");
    let _ = first.wait();
    servers.produce(&topic, (60..100).map(message).collect()).await;
    let second = start_scheduler(&env, &servers);
    for uri in ["kafka://flights", "flights_audit", "flights_each"] {
        env.wait_until(&format!("100 events of {uri}"), LIMIT, || async {
            events(&env, uri).await.len() >= 100
        })
        .await;
    }
    each_consumed_once(&env, "board", "kafka://flights").await;
    each_consumed_once(&env, "audit", "flights_audit").await;
    each_consumed_once(&env, "each", "flights_each").await;
    // Nothing more arrives: no message became two events.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(second);
    let per_message = consumed(&env, "each").await;
    assert_eq!(per_message.len(), 100, "`each_event`: exactly one run per message");
    assert!(per_message.iter().all(|r| r.len() == 1), "each run has its one event");
    for uri in ["kafka://flights", "flights_audit", "flights_each"] {
        let evs = events(&env, uri).await;
        assert_eq!(evs.len(), 100, "{uri}: exactly one event per message");
        let flights: BTreeSet<i64> =
            evs.iter().filter_map(|e| e.extra["value"]["flight"].as_i64()).collect();
        assert_eq!(flights, (0..100).collect(), "{uri}: every message");
        let offsets: BTreeSet<(i64, i64)> = evs
            .iter()
            .map(|e| {
                let p = e.extra["partition"].as_i64().expect("partition");
                (p, e.extra["offset"].as_i64().expect("offset"))
            })
            .collect();
        assert_eq!(offsets.len(), 100);
        assert!(evs.iter().all(|e| e.source == "kafka" && e.extra["topic"] == topic.as_str()));
    }
    // The group committed up to the end of every partition, and no further.
    let group = format!("updraft-watch-{topic}");
    let consumer: BaseConsumer =
        servers.client_config().set("group.id", &group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(&topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed");
    let mut per_partition: HashMap<i32, i64> = HashMap::new();
    for e in events(&env, "kafka://flights").await {
        let p = e.extra["partition"].as_i64().unwrap_or(-1) as i32;
        *per_partition.entry(p).or_insert(0) += 1;
    }
    for el in committed.elements() {
        let want = per_partition.get(&el.partition()).copied().unwrap_or(0);
        let got = match el.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        };
        assert_eq!(got, want, "partition {} committed at its end", el.partition());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_watcher_fires_once_per_new_object() {
    let Some(servers) = Servers::get() else { return };
    let bucket = unique("lake").replace('_', "-");
    servers.create_bucket(&bucket).await;
    let s3 = servers.s3_store(&bucket);
    let put = |key: &str, body: &str| {
        let (s3, key, body) = (&s3, key.to_string(), body.to_string());
        async move {
            s3.put(&Path::from(key.as_str()), PutPayload::from(body.into_bytes()))
                .await
                .expect("put")
        }
    };
    // Written before the watcher ever started: not new.
    put("in/old.csv", "old").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let env = Env::new(Db::Sqlite).await.expect("sqlite env");
    env.write_dag(
        "lake.yaml",
        &format!(
            "dag_id: lake\nschedule:\n  assets:\n    - uri: s3://{bucket}/in/\n      \
             watch: {{type: s3, prefix: s3://{bucket}/in/, poke_interval: 1s}}\ntasks:\n  \
             t: {{type: empty}}\n"
        ),
    );
    let uri = format!("s3://{bucket}/in/");
    let first = start_scheduler(&env, &servers);
    env.wait_until("DAG loaded", LIMIT, || async { env.store.get_dag("lake").await.is_ok() }).await;
    // The watcher records its start before its first listing, moments after the load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    put("in/a.csv", "a").await;
    put("in/b.csv", "b").await;
    put("other/c.csv", "c").await;
    env.wait_until("two events", LIMIT, || async { events(&env, &uri).await.len() >= 2 }).await;
    // Listed again and again, and after a restart: still one event per object.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop(first);
    let second = start_scheduler(&env, &servers);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let keys = |evs: &[AssetEventRow]| -> Vec<String> {
        let mut k: Vec<String> =
            evs.iter().map(|e| e.extra["key"].as_str().unwrap_or("").to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&events(&env, &uri).await), ["in/a.csv", "in/b.csv"]);
    // A rewritten object (a new ETag) is new again.
    put("in/a.csv", "a, second version").await;
    env.wait_until("the rewrite's event", LIMIT, || async { events(&env, &uri).await.len() >= 3 })
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let evs = events(&env, &uri).await;
    assert_eq!(keys(&evs), ["in/a.csv", "in/a.csv", "in/b.csv"]);
    assert!(evs.iter().all(
        |e| e.source == "s3" && e.extra["url"].as_str().is_some_and(|u| u.starts_with("s3://"))
    ));
    each_consumed_once(&env, "lake", &uri).await;
    stop(second);
}
