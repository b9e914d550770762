//! The `assets` scenario: asset events into runs, through the API and through the Kafka
//! watcher (when `UPDRAFT_BENCH_KAFKA_BROKERS` names a broker).
//!
//! For each source: the hand-off — one event at a time, from the event (the API call's record,
//! or the message's produce) to the start of the first task of the run it triggered, median
//! and p95 over 200 events — and the throughput — N events (5,000 through the API from 16
//! concurrent clients, 10,000 messages through Kafka) until every one is recorded and
//! consumed by a run. The engine and the web server run in this process on 127.0.0.1; the
//! consumer DAG's task is `bash: true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use updraft::cli::engine;
use updraft::config::Settings;
use updraft::dag::loader::DagFolder;
use updraft::scheduler::SchedulerOptions;
use updraft::store::{RunRow, Store};
use updraft::web::{AppState, Metrics};

use super::{Bench, LIMIT, percentile};

/// Events whose hand-off is measured, one at a time.
const HANDOFF_EVENTS: usize = 200;
/// Events posted through the API for the throughput.
const API_EVENTS: usize = 5_000;
/// Concurrent API clients.
const API_CLIENTS: usize = 16;
/// Messages produced for the watcher's throughput.
const KAFKA_EVENTS: usize = 10_000;

impl Bench {
    pub(super) async fn assets(&self) {
        let kafka = std::env::var("UPDRAFT_BENCH_KAFKA_BROKERS").ok().filter(|v| !v.is_empty());
        let topic = format!("bench_assets_{}", Utc::now().timestamp_micros());
        let home = self.dir.join("assets");
        let dags = home.join("dags");
        std::fs::create_dir_all(&dags).expect("dags dir");
        let mut yaml = String::from(
            "dag_id: on_api\nmax_active_runs: 64\nschedule: {assets: [bench_api]}\ntasks:\n  \
             t: {type: bash, command: 'true'}\n",
        );
        std::fs::write(dags.join("on_api.yaml"), &yaml).expect("write dag");
        if let Some(brokers) = &kafka {
            create_topic(brokers, &topic).await;
            yaml = format!(
                "dag_id: on_kafka\nmax_active_runs: 64\nschedule:\n  assets:\n    - uri: kafka://{topic}\n      \
                 watch: {{type: kafka, topic: {topic}}}\ntasks:\n  t: {{type: bash, command: 'true'}}\n"
            );
            std::fs::write(dags.join("on_kafka.yaml"), &yaml).expect("write dag");
        }
        let mut settings = Settings::for_home(&home, &dags);
        settings.parallelism = 16;
        if let Some(brokers) = &kafka {
            settings.connections.insert("kafka_default".into(), format!("kafka://{brokers}"));
        }
        settings.database_url = self.database_url("assets").await;
        let settings = Arc::new(settings);
        let store = Store::open(&settings.database_url).await.expect("open store");
        let shutdown = CancellationToken::new();
        let built = engine::build(
            settings.clone(),
            store.clone(),
            Some(DagFolder::new(dags)),
            SchedulerOptions::default(),
            "bench",
        );
        let (_tx, rx) = mpsc::unbounded_channel();
        let token = shutdown.clone();
        let dag_cache = built.dags.clone();
        let scheduler = tokio::spawn(async move { built.scheduler.run(rx, token).await });
        let started = Instant::now();
        while store.get_dag("on_api").await.is_err()
            || (kafka.is_some() && store.get_dag("on_kafka").await.is_err())
        {
            assert!(started.elapsed() < LIMIT, "the DAGs never loaded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let hash = updraft::web::auth::hash_password("bench-password".into()).await.expect("hash");
        store
            .create_user("bench", "", &hash, &["operator".into()], Utc::now())
            .await
            .expect("user");
        let user = store.find_user("bench").await.expect("user").expect("created");
        let actor = updraft::actions::Actor::user(user.id, "bench");
        let token = updraft::actions::tokens::issue_token(&store, &actor, &user, "bench", None)
            .await
            .expect("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = AppState::new(store.clone(), settings.clone(), Arc::new(Metrics::default()))
            .with_dags(dag_cache);
        let server = tokio::spawn(updraft::web::serve(listener, state, shutdown.clone()));
        let client = updraft::tls::http_client()
            .pool_max_idle_per_host(API_CLIENTS)
            .build()
            .expect("client");
        let url = format!("http://{addr}/api/v1/assets/events");
        let post = move |i: usize| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                let body = serde_json::json!({"asset_uri": "bench_api", "extra": {"i": i}});
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await;
                let r = r.expect("post event");
                assert!(r.status().is_success(), "post event: {}", r.status());
            }
        };

        // The API: hand-off, one event at a time.
        let mut handoffs = Vec::with_capacity(HANDOFF_EVENTS);
        for i in 0..HANDOFF_EVENTS {
            let before = runs_of(&store, "on_api").await;
            post(i).await;
            handoffs.push(next_start(&store, "on_api", before).await);
        }
        print_handoff("API", &mut handoffs);
        // The API: throughput.
        let t0 = Instant::now();
        let per = API_EVENTS / API_CLIENTS;
        let clients: Vec<_> = (0..API_CLIENTS)
            .map(|c| {
                let post = post.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        post(c * per + i).await;
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.expect("client");
        }
        let posted = t0.elapsed();
        consumed(&store, "on_api").await;
        let all = t0.elapsed();
        let n = per * API_CLIENTS;
        println!(
            "assets API: {n} events from {API_CLIENTS} clients posted in {:.2} s ({:.0} events/s), \
             all consumed by runs after {:.2} s ({:.0} events/s into runs, {} runs)",
            posted.as_secs_f64(),
            n as f64 / posted.as_secs_f64(),
            all.as_secs_f64(),
            n as f64 / all.as_secs_f64(),
            runs_of(&store, "on_api").await.saturating_sub(HANDOFF_EVENTS)
        );

        if let Some(brokers) = &kafka {
            let uri = format!("kafka://{topic}");
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("linger.ms", "0")
                .create()
                .expect("producer");
            // Let the watcher join its group and get its partitions.
            let t0 = Instant::now();
            loop {
                let before = runs_of(&store, "on_kafka").await;
                send(&producer, &topic, 0).await;
                if tokio::time::timeout(
                    Duration::from_secs(20),
                    next_start(&store, "on_kafka", before),
                )
                .await
                .is_ok()
                {
                    break;
                }
                assert!(t0.elapsed() < LIMIT, "the Kafka watcher never triggered a run");
            }
            let mut handoffs = Vec::with_capacity(HANDOFF_EVENTS);
            for i in 0..HANDOFF_EVENTS {
                let before = runs_of(&store, "on_kafka").await;
                let sent = Utc::now();
                send(&producer, &topic, i).await;
                let started = next_start_at(&store, "on_kafka", before).await;
                handoffs.push((started - sent).to_std().unwrap_or_default());
            }
            print_handoff("Kafka watcher", &mut handoffs);
            let t0 = Instant::now();
            let mut sends = Vec::with_capacity(KAFKA_EVENTS);
            for i in 0..KAFKA_EVENTS {
                let payload = format!(r#"{{"i": {i}}}"#);
                let record = FutureRecord::<(), _>::to(&topic).payload(&payload);
                match producer.send_result(record) {
                    Ok(f) => sends.push(f),
                    Err((e, _)) => panic!("produce: {e}"),
                }
            }
            for f in sends {
                let _ = f.await.expect("delivery").expect("acknowledged");
            }
            let produced = t0.elapsed();
            let want = (HANDOFF_EVENTS + 1 + KAFKA_EVENTS) as i64;
            loop {
                let events = store
                    .assets()
                    .await
                    .expect("assets")
                    .into_iter()
                    .find(|a| a.uri == uri)
                    .map_or(0, |a| a.events);
                if events >= want {
                    break;
                }
                assert!(t0.elapsed() < LIMIT, "{events} of {want} messages recorded");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            consumed(&store, "on_kafka").await;
            let all = t0.elapsed();
            println!(
                "assets Kafka watcher: {KAFKA_EVENTS} messages produced in {:.2} s, all recorded \
                 and consumed by runs after {:.2} s ({:.0} events/s into runs)",
                produced.as_secs_f64(),
                all.as_secs_f64(),
                KAFKA_EVENTS as f64 / all.as_secs_f64()
            );
        } else {
            println!(
                "assets Kafka watcher: skipped (set UPDRAFT_BENCH_KAFKA_BROKERS; scripts/bench.sh does)"
            );
        }
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), scheduler).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    }
}

async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin");
    let t = NewTopic::new(topic, 3, TopicReplication::Fixed(1));
    for r in admin.create_topics([&t], &AdminOptions::new()).await.expect("create topic") {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

async fn send(producer: &FutureProducer, topic: &str, i: usize) {
    let payload = format!(r#"{{"i": {i}}}"#);
    let record = FutureRecord::<(), _>::to(topic).payload(&payload);
    producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produce");
}

async fn runs(store: &Store, dag_id: &str) -> Vec<RunRow> {
    store.list_runs(dag_id, None, 100_000).await.expect("runs")
}

async fn runs_of(store: &Store, dag_id: &str) -> usize {
    runs(store, dag_id).await.len()
}

/// When the first task of the run after the first `before` runs started.
async fn next_start_at(store: &Store, dag_id: &str, before: usize) -> chrono::DateTime<Utc> {
    let t0 = Instant::now();
    loop {
        let mut all = runs(store, dag_id).await;
        all.sort_by_key(|r| r.id);
        if let Some(run) = all.get(before) {
            let tis = store.run_tis(run.id).await.expect("tis");
            if let Some(start) = tis.iter().filter_map(|t| t.start_date).min() {
                return start;
            }
        }
        assert!(t0.elapsed() < LIMIT, "no run of {dag_id} started");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// The hand-off of the next run: from its first triggering event to its first task's start.
async fn next_start(store: &Store, dag_id: &str, before: usize) -> Duration {
    let start = next_start_at(store, dag_id, before).await;
    let mut all = runs(store, dag_id).await;
    all.sort_by_key(|r| r.id);
    let run = &all[before];
    let (events, _) = store.triggering_asset_events(run.id).await.expect("events");
    let first = events.iter().map(|e| e.timestamp).min().expect("an event");
    (start - first).to_std().unwrap_or_default()
}

/// Waits until no event of `dag_id`'s assets is left unconsumed.
async fn consumed(store: &Store, dag_id: &str) {
    let t0 = Instant::now();
    loop {
        let queues = store.asset_queues().await.expect("queues");
        if !queues.iter().any(|q| q.dag_id == dag_id) {
            return;
        }
        assert!(t0.elapsed() < LIMIT, "events of {dag_id} never consumed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn print_handoff(what: &str, times: &mut [Duration]) {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "assets {what}: hand-off from event to first task start over {} events: median {:.1} ms, \
         p95 {:.1} ms (target median <= 20 ms)",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.95)
    );
}
