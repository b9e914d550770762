//! `updraft-bench`: prints the figures of the performance targets (docs/BENCHMARKS.md) that
//! the engine makes measurable.
//!
//! Each scenario runs the real scheduler and local executor in this process against a fresh
//! database (SQLite in a temp dir, or a fresh PostgreSQL database with `--postgres`, from
//! `UPDRAFT_BENCH_DATABASE_URL`). Only loopback traffic. Usage:
//!
//! ```text
//! updraft-bench [all|handoff|chain|fanout200|fanout10k|tries10k|load|idle|web]... [--postgres]
//! updraft-bench kafka_to_cassandra kafka_to_s3 [--messages=N] [--updraft-first]   (streaming)
//! updraft-bench records [--messages=N]   (Avro and transform cost per message, no servers)
//! updraft-bench assets   (asset events into runs: the API, and the Kafka watcher with a broker)
//! updraft-bench lineage  (hand-off with OpenLineage off, to a healthy and to a hanging endpoint)
//! updraft-bench kafka_to_sql sql_to_kafka [--messages=N]              (SQL streaming)
//! updraft-bench workers claims remote_handoff --postgres   (scheduler and workers as processes)
//! ```

mod assets;
mod distributed;
mod lineage;
mod records;
mod sql_streaming;
mod streaming;
mod web;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use updraft::cli::engine;
use updraft::config::{LineageSettings, Settings};
use updraft::dag::loader::DagFolder;
use updraft::model::RunType;
use updraft::scheduler::SchedulerOptions;
use updraft::store::{NewRun, RunRow, Store, TiRow};

/// Every wait of a scenario is bounded by this.
const LIMIT: Duration = Duration::from_secs(600);

struct Bench {
    postgres: bool,
    dir: PathBuf,
    /// Connections (by id) given to the engine: the streaming scenarios' servers.
    connections: Vec<(String, String)>,
    /// Streaming scenarios: run the Updraft side before the bare loop.
    updraft_first: bool,
}

fn rss_kb(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each scenario's peak is its own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

impl Bench {
    async fn database_url(&self, name: &str) -> String {
        if !self.postgres {
            return format!("sqlite://{}", self.dir.join(format!("{name}.db")).display());
        }
        let base = std::env::var("UPDRAFT_BENCH_DATABASE_URL")
            .expect("--postgres needs UPDRAFT_BENCH_DATABASE_URL (scripts/bench.sh sets it)");
        sqlx::any::install_default_drivers();
        let db = format!("bench_{name}_{}", Utc::now().timestamp_nanos_opt().unwrap_or(0));
        let mut conn = sqlx::AnyConnection::connect(&base).await.expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await.expect("create db");
        let _ = conn.close().await;
        let cut = base.rfind('/').expect("URL has a database");
        format!("{}/{db}", &base[..cut])
    }

    /// Runs one DAG (written to a fresh folder) once and returns the finished run, the store
    /// and the wall time from trigger to run end.
    async fn run_dag(
        &self,
        name: &str,
        yaml: &str,
        parallelism: usize,
    ) -> (RunRow, Store, Duration) {
        let (run, store, wall, _) =
            self.run_dag_with(name, yaml, parallelism, LineageSettings::default()).await;
        (run, store, wall)
    }

    /// [`Bench::run_dag`] with the engine's OpenLineage set to `lineage`; also the engine's
    /// figures (the lineage counters).
    async fn run_dag_with(
        &self,
        name: &str,
        yaml: &str,
        parallelism: usize,
        lineage: LineageSettings,
    ) -> (RunRow, Store, Duration, Arc<updraft::metrics::Metrics>) {
        let home = self.dir.join(name);
        let dags = home.join("dags");
        std::fs::create_dir_all(&dags).expect("dags dir");
        std::fs::write(dags.join(format!("{name}.yaml")), yaml).expect("write dag");
        let mut settings = Settings::for_home(&home, &dags);
        settings.parallelism = parallelism;
        settings.connections.extend(self.connections.iter().cloned());
        settings.database_url = self.database_url(name).await;
        settings.lineage = lineage;
        let store = Store::open(&settings.database_url).await.expect("open store");
        let shutdown = CancellationToken::new();
        let built = engine::build(
            Arc::new(settings),
            store.clone(),
            Some(DagFolder::new(dags)),
            SchedulerOptions::default(),
            "bench",
        );
        let metrics = built.metrics.clone();
        let (_tx, rx) = mpsc::unbounded_channel();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { built.scheduler.run(rx, token).await });
        let started = Instant::now();
        while store.get_dag(name).await.is_err() {
            assert!(started.elapsed() < LIMIT, "DAG {name} never loaded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (run, wall) = trigger_and_wait(&store, name).await;
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        (run, store, wall, metrics)
    }

    async fn chain(&self, print_handoff: bool) {
        let (run, store, wall) = self.run_dag("chain50", &chain_yaml("chain50", 50), 16).await;
        println!(
            "chain50: 50-task chain of `bash: true`, trigger -> run {}: {:.3} s (target < 0.5 s)",
            run.state,
            wall.as_secs_f64()
        );
        if !print_handoff {
            return;
        }
        let h = handoffs(&store, &run).await;
        println!(
            "handoff: upstream end -> downstream start over {} edges: median {:.2} ms, p95 {:.2} ms (target median <= 5 ms); runnable->queued median {:.2} ms, queued->started median {:.2} ms",
            h.handoff.len(),
            percentile(&h.handoff, 0.5),
            percentile(&h.handoff, 0.95),
            percentile(&h.to_queue, 0.5),
            percentile(&h.to_start, 0.5),
        );
    }

    /// 1 -> `width` -> 1 of `task` (the inside of a YAML flow map), `label` naming it.
    async fn fanout(&self, name: &str, width: usize, label: &str, task: &str, parallelism: usize) {
        let yaml = format!(
            "dag_id: {name}\nmax_active_tasks: 100000\ntasks:\n  start: {{ {task} }}\n  \
             fan: {{ {task}, depends_on: [start], foreach: {} }}\n  \
             end: {{ {task}, depends_on: [fan] }}\n",
            serde_json::to_string(&(0..width).collect::<Vec<_>>()).unwrap_or_default(),
        );
        reset_peak_rss();
        let (run, _store, wall) = self.run_dag(name, &yaml, parallelism).await;
        println!(
            "{name}: 1 -> {width} -> 1 of {label}, parallelism {parallelism}, trigger -> run {}: {:.3} s; peak RSS {:.1} MB",
            run.state,
            wall.as_secs_f64(),
            rss_kb("self", "VmHWM:") as f64 / 1024.0
        );
    }

    /// The 10,000-wide fan-out through tries: a `file_sensor` whose file exists, so each
    /// instance is claimed, started, poked once and finished by a worker, with no process.
    async fn tries10k(&self) {
        let ready = self.dir.join("ready");
        std::fs::write(&ready, "").expect("ready file");
        let task = format!("type: file_sensor, path: '{}'", ready.display());
        self.fanout("tries10k", 10_000, "`file_sensor` tries", &task, 16).await;
    }

    fn load(&self) {
        let dir = self.dir.join("load1000");
        std::fs::create_dir_all(&dir).expect("dir");
        for i in 0..1000 {
            let mut yaml =
                format!("dag_id: dag_{i:04}\nschedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n");
            for t in 0..10 {
                yaml.push_str(&format!("  t{t}:\n    type: bash\n    command: echo {t}\n"));
                if t > 0 {
                    yaml.push_str(&format!("    depends_on: [t{}]\n", t - 1));
                }
            }
            std::fs::write(dir.join(format!("dag_{i:04}.yaml")), yaml).expect("write");
        }
        let t0 = Instant::now();
        let bag = updraft::dag::loader::load_folder(&dir);
        let elapsed = t0.elapsed();
        assert_eq!(bag.dags.len(), 1000, "every file loads: {:?}", bag.errors.values().next());
        println!(
            "load: 1,000 DAG files of 10 tasks parsed and validated: {:.3} s (target < 1 s)",
            elapsed.as_secs_f64()
        );
    }

    async fn idle(&self) {
        let exe = std::env::current_exe().expect("exe");
        let updraft = exe.with_file_name("updraft");
        if !updraft.exists() {
            println!("idle: skipped, build the `updraft` binary first (cargo build --release)");
            return;
        }
        let home = self.dir.join("idle");
        let dags = home.join("dags");
        std::fs::create_dir_all(&dags).expect("dir");
        for i in 0..10 {
            let yaml = format!(
                "dag_id: idle_{i}\nschedule: '0 0 1 1 *'\nstart_date: 2026-01-01\ntasks:\n  a: {{ type: empty }}\n  b: {{ type: bash, command: 'true', depends_on: [a] }}\n"
            );
            std::fs::write(dags.join(format!("idle_{i}.yaml")), yaml).expect("write");
        }
        let mut child = std::process::Command::new(updraft)
            .arg("standalone")
            .env("UPDRAFT_HOME", &home)
            .env("UPDRAFT_DAGS_FOLDER", &dags)
            .env("UPDRAFT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start updraft standalone");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let pid = child.id().to_string();
        let rss = rss_kb(&pid, "VmRSS:");
        let _ = child.kill();
        let _ = child.wait();
        println!(
            "idle: `updraft standalone` with 10 DAGs after 5 s: {:.1} MB RSS (target < 30 MB)",
            rss as f64 / 1024.0
        );
    }
}

impl Bench {
    /// `kafka_to_cassandra` (a one-task DAG run by the engine) beside the bare loop.
    async fn to_cassandra(&self, servers: &streaming::Servers, n: usize) {
        let id = Utc::now().timestamp_millis();
        let (topic, ks) = (format!("bench_cass_{id}"), format!("bench_{id}"));
        servers.fill_topic(&topic, n).await;
        let session = servers.cassandra(&ks).await;
        let dag = streaming::cassandra_dag("to_cassandra", &topic, &ks);
        // Cassandra gets faster as its JVM warms up: `--updraft-first` swaps the order, so
        // that each side can be measured both first and second.
        let (bare, (run, _, updraft)) = if self.updraft_first {
            let u = self.run_dag("to_cassandra", &dag, 4).await;
            (servers.bare_cassandra(session, &ks, &topic, n).await, u)
        } else {
            let b = servers.bare_cassandra(session, &ks, &topic, n).await;
            (b, self.run_dag("to_cassandra", &dag, 4).await)
        };
        assert_eq!(run.state.as_str(), "success", "the kafka_to_cassandra run failed");
        streaming::report("kafka_to_cassandra", n, bare, updraft);
    }

    /// `kafka_to_s3` (a one-task DAG run by the engine) beside the bare loop.
    async fn to_s3(&self, servers: &streaming::Servers, n: usize) {
        let id = Utc::now().timestamp_millis();
        let (topic, bucket) = (format!("bench_s3_{id}"), format!("bench-{id}"));
        servers.fill_topic(&topic, n).await;
        servers.bucket(&bucket).await;
        let dag = streaming::s3_dag("to_s3", &topic, &bucket);
        let (bare, (run, _, updraft)) = if self.updraft_first {
            let u = self.run_dag("to_s3", &dag, 4).await;
            (servers.bare_s3(&bucket, &topic, n).await, u)
        } else {
            let b = servers.bare_s3(&bucket, &topic, n).await;
            (b, self.run_dag("to_s3", &dag, 4).await)
        };
        assert_eq!(run.state.as_str(), "success", "the kafka_to_s3 run failed");
        streaming::report("kafka_to_s3", n, bare, updraft);
    }
}

/// Triggers a manual run of `dag_id` and waits for its end; returns it with the wall time from
/// the trigger.
async fn trigger_and_wait(store: &Store, dag_id: &str) -> (RunRow, Duration) {
    let now = Utc::now();
    let run = NewRun {
        dag_id: dag_id.into(),
        run_id: NewRun::default_run_id(RunType::Manual, now),
        run_type: RunType::Manual,
        logical_date: now,
        data_interval_start: now,
        data_interval_end: now,
        conf: Default::default(),
        triggered_by: "bench".into(),
        deadlines: Vec::new(),
    };
    let t0 = Instant::now();
    let run = store.create_run(&run, now).await.expect("trigger");
    loop {
        let r = store.get_run(run.id).await.expect("run");
        if r.state.is_finished() {
            return (r, t0.elapsed());
        }
        assert!(t0.elapsed() < LIMIT, "run of {dag_id} did not finish");
        // Polls cost the engine's cores a query each: every 1 ms for short runs, and at most
        // 1/200 of the time run so far (0.5 %) for long ones.
        let every = (t0.elapsed() / 200).clamp(Duration::from_millis(1), Duration::from_millis(20));
        tokio::time::sleep(every).await;
    }
}

/// DAG `dag_id`: a chain of `n` `bash: true` tasks `t0`, `t1`, ...
fn chain_yaml(dag_id: &str, n: usize) -> String {
    let mut yaml = format!("dag_id: {dag_id}\ntasks:\n");
    for i in 0..n {
        yaml.push_str(&format!("  t{i}:\n    type: bash\n    command: 'true'\n"));
        if i > 0 {
            yaml.push_str(&format!("    depends_on: [t{}]\n", i - 1));
        }
    }
    yaml
}

/// The hand-offs of a finished chain run (`t0`, `t1`, ...), each sorted, in ms.
struct Handoffs {
    /// Upstream end -> downstream start.
    handoff: Vec<f64>,
    /// Runnable -> queued.
    to_queue: Vec<f64>,
    /// Queued -> started.
    to_start: Vec<f64>,
}

async fn handoffs(store: &Store, run: &RunRow) -> Handoffs {
    let mut tis: Vec<TiRow> = store.run_tis(run.id).await.expect("tis");
    tis.sort_by_key(|t| t.task_id[1..].parse::<u32>().unwrap_or(0));
    let (mut handoff, mut to_queue, mut to_start) = (Vec::new(), Vec::new(), Vec::new());
    for w in tis.windows(2) {
        let (Some(end), Some(start)) = (w[0].end_date, w[1].start_date) else { continue };
        handoff.push((start - end).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        let tries = store.tries(w[1].id).await.expect("tries");
        if let Some(t) = tries.first()
            && let (Some(r), Some(q), Some(s)) = (t.runnable_at, t.queued_at, t.start_date)
        {
            to_queue.push((q - r).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            to_start.push((s - q).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    for v in [&mut handoff, &mut to_queue, &mut to_start] {
        v.sort_by(f64::total_cmp);
    }
    Handoffs { handoff, to_queue, to_start }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("updraft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

const USAGE: &str = "usage: updraft-bench [SCENARIO]... [--postgres] [--messages=N] \
                     [--updraft-first]

scenarios: handoff, chain, fanout200, fanout10k, tries10k, load, idle, web (the default set,
           also `all`);
           assets (asset events into runs through the API; through the Kafka watcher too
           when UPDRAFT_BENCH_KAFKA_BROKERS is set);
           lineage (the hand-off with OpenLineage off, to a healthy endpoint and to one that
           never answers);
           kafka_to_cassandra, kafka_to_s3, kafka_to_sql, sql_to_kafka, records (need the
           servers: scripts/bench.sh starts them and sets UPDRAFT_BENCH_*);
           workers, claims, remote_handoff (the distributed executor: need --postgres and the
           `updraft` binary beside this one)
--postgres       the metadata database on UPDRAFT_BENCH_DATABASE_URL instead of SQLite
--messages=N     messages per streaming scenario (default 1,000,000)
--updraft-first  run the Updraft side before the bare loop";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let known =
        |a: &str| matches!(a, "--postgres" | "--updraft-first") || a.starts_with("--messages=");
    if let Some(bad) = args.iter().find(|a| a.starts_with('-') && !known(a)) {
        eprintln!("unknown option `{bad}`\n\n{USAGE}");
        std::process::exit(2);
    }
    let postgres = args.iter().any(|a| a == "--postgres");
    let mut chosen: Vec<&str> =
        args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    if chosen.is_empty() || chosen.contains(&"all") {
        chosen = vec!["handoff", "fanout200", "fanout10k", "tries10k", "load", "idle", "web"];
    }
    let messages = args
        .iter()
        .find_map(|a| a.strip_prefix("--messages="))
        .map_or(1_000_000, |n| n.parse().expect("--messages=N"));
    let servers = streaming::Servers::from_env();
    let connections = servers.as_ref().map(streaming::Servers::connections).unwrap_or_default();
    let updraft_first = args.iter().any(|a| a == "--updraft-first");
    let bench = Bench { postgres, dir: temp_dir(), connections, updraft_first };
    println!(
        "updraft-bench on {} ({} cores)",
        if postgres { "PostgreSQL" } else { "SQLite" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for scenario in chosen {
        match scenario {
            "handoff" => bench.chain(true).await,
            "chain" => bench.chain(false).await,
            "fanout200" => {
                bench.fanout("fanout200", 200, "`bash`", "type: bash, command: 'true'", 8).await
            }
            "fanout10k" => bench.fanout("fanout10k", 10_000, "`empty`", "type: empty", 16).await,
            "tries10k" => bench.tries10k().await,
            "load" => bench.load(),
            "idle" => bench.idle().await,
            "web" => bench.web().await,
            "assets" => bench.assets().await,
            "lineage" => lineage::run(&bench).await,
            "records" => records::run(messages.min(200_000)),
            "workers" | "claims" | "remote_handoff" if !postgres => {
                eprintln!("{scenario} needs --postgres (workers claim from PostgreSQL)")
            }
            "workers" => bench.workers().await,
            "claims" => bench.claims().await,
            "remote_handoff" => bench.remote_handoff().await,
            "kafka_to_cassandra" | "kafka_to_s3" => match &servers {
                Some(s) if scenario == "kafka_to_cassandra" => {
                    bench.to_cassandra(s, messages).await
                }
                Some(s) => bench.to_s3(s, messages).await,
                None => eprintln!(
                    "{scenario} needs UPDRAFT_BENCH_KAFKA_BROKERS, UPDRAFT_BENCH_CASSANDRA_HOST and \
                     UPDRAFT_BENCH_S3_ENDPOINT (scripts/bench.sh sets them)"
                ),
            },
            "kafka_to_sql" | "sql_to_kafka" => {
                let kafka = std::env::var("UPDRAFT_BENCH_KAFKA_BROKERS").unwrap_or_default();
                let dbs = sql_streaming::Db::from_env().await;
                if kafka.is_empty() || dbs.is_empty() {
                    eprintln!(
                        "{scenario} needs UPDRAFT_BENCH_KAFKA_BROKERS and UPDRAFT_BENCH_POSTGRES_URL \
                         and/or UPDRAFT_BENCH_MYSQL_URL"
                    );
                } else if scenario == "kafka_to_sql" {
                    bench.table_sink(&kafka, &dbs, messages).await;
                } else {
                    bench.table_source(&kafka, &dbs, messages).await;
                }
            }
            other => eprintln!("unknown scenario `{other}`\n\n{USAGE}"),
        }
    }
    remove(&bench.dir);
}
